"""Streams over HTTP: Triple / gRPC server streams as SSE or NDJSON, client and bidi streams
over WebSocket (docs/streaming.md).

``formats`` (SSE / NDJSON framing) and ``websocket`` (handshake, close codes) are sans-IO;
``codecs`` turns JSON into upstream messages and back (Java-interface wrappers, protobuf);
``pumps`` moves messages between an HTTP stream and an upstream stream with back-pressure;
``calls`` is the entry point the routers call (``Streams``).
"""
