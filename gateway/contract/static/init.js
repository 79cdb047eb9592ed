// tribridge docs page: Swagger UI on the gateway's own OpenAPI document (no CDN, no validator).
window.ui = SwaggerUIBundle({
  url: document.documentElement.dataset.spec,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
