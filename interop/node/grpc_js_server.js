// IDL demo provider on @grpc/grpc-js with @grpc/reflection: a second, independent gRPC
// server reflection implementation (grpcio-reflection implements only v1alpha; this one
// implements v1 and v1alpha). Usage:
//   node grpc_js_server.js <proto dir> [port] [v1,v1alpha]
// Messages come from interop/protos/demo.proto via @grpc/proto-loader at run time. Prints
// "READY <port>" when listening on 127.0.0.1; stops on SIGTERM.
"use strict";

const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const { ReflectionService } = require("@grpc/reflection");

const [protoDir, portArg, reflArg] = process.argv.slice(2);
if (!protoDir) {
  console.error("usage: node grpc_js_server.js <proto dir> [port] [v1,v1alpha]");
  process.exit(2);
}
const def = protoLoader.loadSync(path.join(protoDir, "demo.proto"), {
  includeDirs: [protoDir],
  longs: String,
  enums: String,
  defaults: true,
});
const pkg = grpc.loadPackageDefinition(def);
const Demo = pkg.idl.demo.v1.Demo;

const impl = {
  Echo(call, cb) {
    cb(null, call.request);
  },
  Describe(call, cb) {
    const p = call.request;
    let total = 0n;
    for (const v of Object.values(p.counts || {})) total += BigInt(v);
    cb(null, {
      text: `${p.name} (${p.age})`,
      tagCount: (p.tags || []).length,
      countsTotal: total.toString(),
      color: p.color,
      city: p.address ? p.address.city : "",
      idPlusOne: (BigInt(p.id || "0") + 1n).toString(),
      server: "grpc-js",
    });
  },
  Fail(call, cb) {
    cb({ code: call.request.code, details: call.request.message });
  },
  Slow(call, cb) {
    const ms = Math.max(call.request.millis, 0);
    setTimeout(() => cb(null, { sleptMillis: call.request.millis }), ms);
  },
  GetBook(call, cb) {
    const r = call.request;
    cb(null, { name: r.name, id: r.id, title: `Book ${r.id} on ${r.name}` });
  },
  UpdateBook(call, cb) {
    const r = call.request;
    cb(null, { ...(r.book || {}), name: r.name, id: r.id, title: `${r.book ? r.book.title : ""} (updated)` });
  },
};

const server = new grpc.Server();
server.addService(Demo.service, impl);
const wanted = (reflArg || "v1,v1alpha").split(",");
const reflection = new ReflectionService(def);
if (wanted.includes("v1")) reflection.v1.addToServer(server);
if (wanted.includes("v1alpha")) reflection.v1Alpha.addToServer(server);
server.bindAsync(`127.0.0.1:${Number(portArg || 0)}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(err.message);
    process.exit(1);
  }
  process.stdout.write(`READY ${port}\n`);
});
process.on("SIGTERM", () => {
  server.forceShutdown();
  process.exit(0);
});
