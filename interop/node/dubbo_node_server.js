// IDL demo provider on @apachedubbo/dubbo-node: serves idl.demo.v1.Demo over Triple and gRPC
// (h2c) on 127.0.0.1. Usage: node dubbo_node_server.js <descriptor-set.pb> [port]
// Messages come from the descriptor set at run time (no code generation), the same set the
// gateway tests load. Prints "READY <port>" when listening; stops on SIGTERM.
//
// The service is registered twice: unversioned, and as version 2.0.0 / group g2, whose
// answers say "v2" -- dubbo-node routes by the tri-service-version/-group request headers.
"use strict";

const fs = require("fs");
const http2 = require("http2");
const { createRegistryFromDescriptors } = require("@bufbuild/protobuf");
const { DubboError, Code } = require("@apachedubbo/dubbo");
const { dubboNodeAdapter } = require("@apachedubbo/dubbo-node");

const [setPath, portArg] = process.argv.slice(2);
if (!setPath) {
  console.error("usage: node dubbo_node_server.js <descriptor-set.pb> [port]");
  process.exit(2);
}
const registry = createRegistryFromDescriptors(new Uint8Array(fs.readFileSync(setPath)));
const Demo = registry.findService("idl.demo.v1.Demo");
const Ticker = registry.findService("idl.stream.v1.Ticker");
if (!Demo && !Ticker) {
  console.error("descriptor set has neither idl.demo.v1.Demo nor idl.stream.v1.Ticker");
  process.exit(2);
}
const Summary = registry.findMessage("idl.demo.v1.Summary");
const Book = registry.findMessage("idl.demo.v1.Book");
const SlowReply = registry.findMessage("idl.demo.v1.SlowReply");

function impl(tag) {
  return {
    async echo(p) {
      return p;
    },
    async describe(p) {
      let total = 0n;
      for (const v of Object.values(p.counts)) total += BigInt(v);
      return new Summary({
        text: `${p.name} (${p.age})`,
        tagCount: p.tags.length,
        countsTotal: total,
        color: p.color,
        city: p.address ? p.address.city : "",
        idPlusOne: BigInt(p.id) + 1n,
        server: tag,
      });
    },
    async fail(req) {
      throw new DubboError(req.message, req.code);
    },
    async slow(req) {
      await new Promise((r) => setTimeout(r, Math.max(req.millis, 0)));
      return new SlowReply({ sleptMillis: req.millis });
    },
    async getBook(req) {
      return new Book({
        name: req.name,
        id: req.id,
        title: `Book ${req.id} on ${req.name}`,
        view: req.view,
        fields: req.fields,
        verbose: req.verbose,
        color: req.color,
        city: req.where ? req.where.city : "",
      });
    },
    async updateBook(req) {
      const b = new Book(req.book || {});
      b.name = req.name;
      b.id = req.id;
      b.title = (req.book ? req.book.title : "") + " (updated)";
      return b;
    },
  };
}

// idl.stream.v1.Ticker (interop/protos/stream.proto): server, client and bidi streams, and
// Inspect, which tells what the server saw of a stream (messages sent, a cancel).
function tickerImpl() {
  const Tick = registry.findMessage("idl.stream.v1.Tick");
  const Num = registry.findMessage("idl.stream.v1.Num");
  const Total = registry.findMessage("idl.stream.v1.Total");
  const Probe = registry.findMessage("idl.stream.v1.Probe");
  const seen = new Map(); // id -> {sent, cancelled, finished}; bounded below
  const track = (id) => {
    if (seen.size > 10000) seen.clear();
    if (!seen.has(id)) seen.set(id, { sent: 0, cancelled: false, finished: false, traceparent: "" });
    return seen.get(id);
  };
  const sleep = (ms, signal) =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
    });
  return {
    async *count(req, ctx) {
      const s = track(req.id);
      s.traceparent = ctx.requestHeader.get("traceparent") || "";
      try {
        for (let n = 0; n < req.count; n++) {
          if (ctx.signal.aborted) return;
          if (req.failAt && n === req.failAt) throw new DubboError(`failed at ${n}`, req.failCode);
          yield new Tick({ n, id: req.id, pad: "x".repeat(req.size) });
          s.sent++;
          if (req.delayMs) await sleep(req.delayMs, ctx.signal);
        }
        s.finished = true;
      } finally {
        if (!s.finished && ctx.signal.aborted) s.cancelled = true;
      }
    },
    async sum(reqs) {
      let sum = 0n;
      let count = 0;
      for await (const r of reqs) {
        sum += BigInt(r.value);
        count++;
      }
      return new Total({ sum, count });
    },
    async *echo(reqs) {
      for await (const r of reqs) yield new Num({ value: r.value * 2, id: r.id });
    },
    async inspect(q) {
      const s = seen.get(q.id) || { sent: 0, cancelled: false, finished: false };
      return new Probe(s);
    },
  };
}

const handler = dubboNodeAdapter({
  routes(router) {
    if (Demo) {
      router.service(Demo, impl("dubbo-node"));
      router.service(Demo, impl("dubbo-node v2"), { serviceVersion: "2.0.0", serviceGroup: "g2" });
    }
    if (Ticker) router.service(Ticker, tickerImpl());
  },
});
const server = http2.createServer(handler);
server.listen(Number(portArg || 0), "127.0.0.1", () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});
process.on("SIGTERM", () => {
  server.close();
  process.exit(0);
});
