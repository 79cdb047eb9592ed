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
if (!Demo) {
  console.error("descriptor set has no idl.demo.v1.Demo");
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

const handler = dubboNodeAdapter({
  routes(router) {
    router.service(Demo, impl("dubbo-node"));
    router.service(Demo, impl("dubbo-node v2"), { serviceVersion: "2.0.0", serviceGroup: "g2" });
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
