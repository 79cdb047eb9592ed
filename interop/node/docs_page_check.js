// Drives tribridge's /docs page (Swagger UI) in headless Chromium with playwright-core:
// the page loads the gateway's OpenAPI document, one operation is opened, "Try it out" is
// pressed, a value is typed, "Execute" sends the call through the gateway, and the live
// response is read back. A screenshot of the page is saved. One JSON line on stdout.
//
//   node docs_page_check.js BASE_URL PATH_TEXT PARAM VALUE SCREENSHOT [CHROMIUM]
"use strict";
const { chromium } = require("playwright-core");

async function main() {
  const [base, pathText, param, value, shot, exe] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: exe || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--no-proxy-server"],
  });
  const out = { requests: [], console: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    page.on("request", (r) => out.requests.push(r.url()));
    page.on("console", (m) => { if (m.type() === "error") out.console.push(m.text()); });
    page.on("pageerror", (e) => out.console.push(String(e)));
    await page.goto(base + "/docs", { waitUntil: "networkidle" });
    await page.locator(".opblock-summary-path", { hasText: pathText }).first().waitFor({ timeout: 20000 });
    out.title = await page.locator(".information-container .title").first().innerText();
    out.operations = await page.locator(".opblock").count();
    const block = page.locator(".opblock", { has: page.locator(".opblock-summary-path", { hasText: pathText }) }).first();
    await block.locator(".opblock-summary").click();
    await block.locator(".try-out__btn").click();
    await block.locator(`tr[data-param-name="${param}"] input`).fill(value);
    await block.locator(".execute").click();
    const status = block.locator(".live-responses-table .response .response-col_status").first();
    await status.waitFor({ timeout: 20000 });
    out.status = (await status.innerText()).trim();
    out.body = (await block.locator(".live-responses-table .response-col_description pre").first().innerText()).trim();
    await page.screenshot({ path: shot, fullPage: false });
    out.screenshot = shot;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack || e) }) + "\n");
  process.exit(1);
});
