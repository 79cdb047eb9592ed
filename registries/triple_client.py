"""A minimal one-shot Triple (gRPC over h2c) unary client for the registries layer.

Why it exists: Dubbo 3.3 exports its ``MetadataService`` over Triple whenever the ``tri``
protocol is enabled (observed on Apache Dubbo 3.3.6: instance metadata
``dubbo.metadata-service.url-params`` = ``{"protocol":"tri","port":"50051",...}``), so
application-level discovery has to speak Triple to learn which services an instance serves.
The gateway's Triple transports are pooled, multiplexed and live in ``tribridge`` (the
gateway package), which the registries layer must not import; metadata calls are rare (one
per new revision, cached), so one short h2c connection per call on the ``h2`` state machine
plus our own sans-IO codecs is enough.

Everything the peer sends is bounded: the answer's total size (``max_size``), the number of
header fields, and the time (the caller's ``asyncio.timeout``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from tribridge.codecs.triple import MessageDecoder, TripleProtocolError

#: an answer bigger than this is not a metadata answer
DEFAULT_MAX_ANSWER = 4 * 1024 * 1024
_MAX_HEADER_FIELDS = 200


class TripleCallError(Exception):
    """The Triple call failed below the application: connection, HTTP/2, gRPC framing."""


@dataclass(slots=True)
class TripleAnswer:
    """What one unary Triple call returned: response headers, messages, trailers."""

    headers: dict[str, str] = field(default_factory=dict)
    messages: list[bytes] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        """A header or trailer (trailers win; a Trailers-Only answer has only headers)."""
        return self.trailers.get(name, self.headers.get(name))


def _pairs(raw: list[tuple[bytes | str, bytes | str]]) -> dict[str, str]:
    if len(raw) > _MAX_HEADER_FIELDS:
        raise TripleCallError(f"{len(raw)} header fields (limit {_MAX_HEADER_FIELDS})")
    out: dict[str, str] = {}
    for k, v in raw:
        ks = k.decode("latin-1") if isinstance(k, bytes) else k
        vs = v.decode("latin-1") if isinstance(v, bytes) else v
        out[ks.lower()] = vs
    return out


async def unary_call(
    host: str,
    port: int,
    path: str,
    message: bytes,
    headers: list[tuple[str, str]],
    *,
    max_size: int = DEFAULT_MAX_ANSWER,
) -> TripleAnswer:
    """POST one length-prefixed ``message`` to ``path`` over h2c and read the answer.

    The caller bounds the time (``asyncio.timeout``).  Raises ``TripleCallError`` for
    transport trouble and ``OSError`` when the connection cannot be made."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        req = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", f"{host}:{port}"),
            ("content-type", "application/grpc+proto"),
            ("te", "trailers"),
            *headers,
        ]
        conn.send_headers(sid, req)
        conn.send_data(sid, message, end_stream=True)
        writer.write(conn.data_to_send())
        answer = TripleAnswer()
        decoder = MessageDecoder(max_size)
        got = 0
        while True:
            data = await reader.read(65536)
            if not data:
                raise TripleCallError("connection closed before the answer ended")
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                raise TripleCallError(f"HTTP/2 protocol error: {e}") from None
            for ev in events:
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    answer.headers = _pairs(ev.headers)
                elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                    answer.trailers = _pairs(ev.headers)
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    got += len(ev.data)
                    if got > max_size + 5:
                        raise TripleCallError(f"answer larger than {max_size} bytes")
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                    try:
                        answer.messages.extend(decoder.feed(ev.data))
                    except TripleProtocolError as e:
                        raise TripleCallError(str(e)) from None
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    raise TripleCallError(f"stream reset by the peer (error code {ev.error_code})")
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    raise TripleCallError(f"connection terminated by the peer ({ev.error_code})")
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    try:
                        decoder.close()
                    except TripleProtocolError as e:
                        raise TripleCallError(str(e)) from None
                    return answer
            out = conn.data_to_send()
            if out:
                writer.write(out)
    finally:
        writer.close()
