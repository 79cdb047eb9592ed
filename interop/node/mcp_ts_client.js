// The official MCP TypeScript SDK (@modelcontextprotocol/sdk) as a client of tribridge's /mcp.
// Prints one JSON line per step on stdout:
//   {"step":"ready", tools, calls}   after listing the tools and calling a few
//   {"step":"changed", tools}        after a notifications/tools/list_changed, re-listed
// Usage: node mcp_ts_client.js URL API_KEY CALLS_JSON [WAIT_FOR_CHANGES]
//   CALLS_JSON: [[toolName, arguments], ...]
"use strict";
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
const { ToolListChangedNotificationSchema } = require("@modelcontextprotocol/sdk/types.js");

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

async function main() {
  const [url, key, callsJson, waitFor] = process.argv.slice(2);
  const headers = key ? { "x-api-key": key } : {};
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = new Client({ name: "tribridge-ts-check", version: "1.0.0" });
  let changed = 0;
  let wake = null;
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    changed += 1;
    if (wake) wake();
  });
  await client.connect(transport);
  const tools = (await client.listTools()).tools;
  const calls = [];
  for (const [name, args] of JSON.parse(callsJson)) {
    const r = await client.callTool({ name, arguments: args });
    calls.push({ name, isError: !!r.isError, structured: r.structuredContent ?? null, text: r.content?.[0]?.text ?? null });
  }
  emit({ step: "ready", protocol: transport.protocolVersion ?? null, session: transport.sessionId ?? null,
    tools: tools.map((t) => ({ name: t.name, inputSchema: t.inputSchema, outputSchema: t.outputSchema ?? null })), calls });
  const waits = Number(waitFor || 0);
  for (let i = 0; i < waits; i++) {
    const seen = changed;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no tools/list_changed within 30 s")), 30000);
      wake = () => { clearTimeout(timer); resolve(); };
      if (changed > seen) wake();
    });
    wake = null;
    const now = (await client.listTools()).tools;
    emit({ step: "changed", tools: now.map((t) => t.name) });
  }
  await transport.terminateSession().catch(() => {});
  await client.close();
}

main().catch((e) => {
  emit({ step: "error", error: String(e && e.stack || e) });
  process.exit(1);
});
