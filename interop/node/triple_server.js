// Triple provider on @apachedubbo/dubbo-node for tribridge's tests and benchmarks.
//
//   node triple_server.js h2 PORT      Triple/gRPC on cleartext HTTP/2 (h2c)
//   node triple_server.js http1 PORT   Triple on HTTP/1.1 (unary: application/json|proto)
//   node triple_server.js raw PORT     the wrapper-mode DemoService only, gRPC framing by hand
//                                      on node's http2 module (the benchmark's fast server)
//
// Prints "READY <port>" when listening; stops on SIGTERM.
//
// Two services, both built at run time (no code generation):
// * com.tribridge.demo.DemoService in Java-interface ("wrapper") mode, mirroring the Dubbo2
//   demo provider's greet/add: the method's messages are TripleRequestWrapper and
//   TripleResponseWrapper (package org.apache.dubbo.triple), arguments hessian2 via
//   hessian.js -- what a Java 3.3 provider does for a non-IDL interface.
// * com.tribridge.triple.JsonGreeter, an IDL-style service (plain protobuf messages) whose
//   JSON form is what Triple's HTTP/1.1 unary mode carries.
//
// Both are also registered as version 2.0.0 / group g2, answering with a "v2" marker:
// dubbo-node routes on the tri-service-version / tri-service-group request headers.
"use strict";

const http = require("http");
const http2 = require("http2");
const hessian = require("hessian.js");
const { proto3, ScalarType, MethodKind } = require("@bufbuild/protobuf");
const { DubboError } = require("@apachedubbo/dubbo");
const { dubboNodeAdapter } = require("@apachedubbo/dubbo-node");

const S = ScalarType.STRING;

const ReqWrapper = proto3.makeMessageType("org.apache.dubbo.triple.TripleRequestWrapper", [
  { no: 1, name: "serializeType", kind: "scalar", T: S },
  { no: 2, name: "args", kind: "scalar", T: ScalarType.BYTES, repeated: true },
  { no: 3, name: "argTypes", kind: "scalar", T: S, repeated: true },
]);
const RespWrapper = proto3.makeMessageType("org.apache.dubbo.triple.TripleResponseWrapper", [
  { no: 1, name: "serializeType", kind: "scalar", T: S },
  { no: 2, name: "data", kind: "scalar", T: ScalarType.BYTES },
  { no: 3, name: "type", kind: "scalar", T: S },
]);

const WRAPPED = {
  greet: { types: ["java.lang.String"], returns: "java.lang.String" },
  add: { types: ["int", "int"], returns: "int" },
};

function wrapperMethods() {
  const methods = {};
  for (const name of Object.keys(WRAPPED)) {
    methods[name] = { name, I: ReqWrapper, O: RespWrapper, kind: MethodKind.Unary };
  }
  return { typeName: "com.tribridge.demo.DemoService", methods };
}

function wrapped(tag) {
  const impl = {};
  for (const [name, sig] of Object.entries(WRAPPED)) {
    impl[name] = (req) => {
      if (req.serializeType !== "hessian4") {
        throw new DubboError(`serializeType ${req.serializeType}, expected hessian4`, 3);
      }
      if (req.argTypes.join(",") !== sig.types.join(",")) {
        throw new DubboError(`no overload ${name}(${req.argTypes.join(",")})`, 12);
      }
      const args = req.args.map((a) => hessian.decode(Buffer.from(a), "2.0"));
      let value;
      if (name === "greet") value = `Hello, ${args[0]}${tag}`;
      else value = (args[0] + args[1]) | 0;
      return new RespWrapper({
        serializeType: "hessian4",
        data: hessian.encode(value, "2.0"),
        type: sig.returns,
      });
    };
  }
  return impl;
}

const GreetRequest = proto3.makeMessageType("com.tribridge.triple.GreetRequest", [
  { no: 1, name: "name", kind: "scalar", T: S },
  { no: 2, name: "times", kind: "scalar", T: ScalarType.INT32 },
]);
const GreetReply = proto3.makeMessageType("com.tribridge.triple.GreetReply", [
  { no: 1, name: "message", kind: "scalar", T: S },
  { no: 2, name: "server", kind: "scalar", T: S },
  { no: 3, name: "big", kind: "scalar", T: ScalarType.INT64 },
]);
const FailRequest = proto3.makeMessageType("com.tribridge.triple.FailRequest", [
  { no: 1, name: "code", kind: "scalar", T: ScalarType.INT32 },
  { no: 2, name: "message", kind: "scalar", T: S },
]);
const HeadersReply = proto3.makeMessageType("com.tribridge.triple.HeadersReply", [
  { no: 1, name: "headers", kind: "map", K: S, V: { kind: "scalar", T: S } },
]);
const Empty = proto3.makeMessageType("com.tribridge.triple.Empty", []);

const JsonGreeter = {
  typeName: "com.tribridge.triple.JsonGreeter",
  methods: {
    greet: { name: "greet", I: GreetRequest, O: GreetReply, kind: MethodKind.Unary },
    fail: { name: "fail", I: FailRequest, O: Empty, kind: MethodKind.Unary },
    headers: { name: "headers", I: Empty, O: HeadersReply, kind: MethodKind.Unary },
    slow: { name: "slow", I: GreetRequest, O: GreetReply, kind: MethodKind.Unary },
  },
};

function json(tag, proto) {
  return {
    greet(req, ctx) {
      ctx.responseHeader.set("x-served-by", "dubbo-node");
      ctx.responseTrailer.set("x-trace", `t-${req.name}`);
      const n = Math.max(req.times || 1, 1);
      return new GreetReply({
        message: `Hello, ${req.name}${tag}`.repeat(Math.min(n, 100000)),
        server: `dubbo-node/${proto}`,
        big: 9007199254740993n,
      });
    },
    fail(req) {
      throw new DubboError(req.message, req.code);
    },
    async slow(req) {
      await new Promise((r) => setTimeout(r, Math.max(req.times, 0)));
      return new GreetReply({ message: `slept ${req.times}`, server: `dubbo-node/${proto}` });
    },
    headers(_req, ctx) {
      const headers = {};
      ctx.requestHeader.forEach((v, k) => {
        headers[k] = v;
      });
      return new HeadersReply({ headers });
    },
  };
}

// "raw": node's http2 (nghttp2) with the gRPC framing done here, no router or interceptors:
// per call it costs about what the Dubbo2 demo provider does, so the benchmark compares
// the gateway's two paths, not two servers of very different speed.
function rawServer() {
  const impl = wrapped("");
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const name = headers[":path"].split("/").pop();
    const chunks = [];
    stream.on("data", (c) => chunks.push(c));
    stream.on("end", () => {
      let status = "0";
      let message = "";
      let frame = null;
      try {
        const body = Buffer.concat(chunks);
        if (!impl[name] || body.length < 5) throw new DubboError(`no method ${name}`, 12);
        const req = ReqWrapper.fromBinary(body.subarray(5, 5 + body.readUInt32BE(1)));
        const out = impl[name](req).toBinary();
        frame = Buffer.allocUnsafe(5 + out.length);
        frame[0] = 0;
        frame.writeUInt32BE(out.length, 1);
        frame.set(out, 5);
      } catch (e) {
        status = String(e.code || 2);
        message = encodeURIComponent(e.rawMessage || String(e));
      }
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () =>
        stream.sendTrailers(message ? { "grpc-status": status, "grpc-message": message } : { "grpc-status": status })
      );
      stream.end(frame || undefined);
    });
  });
  return server;
}

const [mode, portArg] = process.argv.slice(2);
if (mode !== "h2" && mode !== "http1" && mode !== "raw") {
  console.error("usage: node triple_server.js h2|http1|raw PORT");
  process.exit(2);
}
const handler = dubboNodeAdapter({
  routes(router) {
    router.service(wrapperMethods(), wrapped(""));
    router.service(wrapperMethods(), wrapped(" v2"), { serviceVersion: "2.0.0", serviceGroup: "g2" });
    router.service(JsonGreeter, json("", mode));
    router.service(JsonGreeter, json(" v2", mode), { serviceVersion: "2.0.0", serviceGroup: "g2" });
  },
});
const server =
  mode === "raw"
    ? rawServer()
    : mode === "h2"
      ? http2.createServer(handler)
      : http.createServer(handler);
if (mode === "http1") server.keepAliveTimeout = 30000;
// without this, Nagle + delayed ACKs add ~40 ms to small responses whose headers, data and
// trailers leave in separate writes
server.on("connection", (socket) => socket.setNoDelay(true));
server.listen(Number(portArg || 0), "127.0.0.1", () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});
process.on("SIGTERM", () => {
  server.close();
  process.exit(0);
});
