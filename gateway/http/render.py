"""Rendering responses for the HTTP/1.1 listener: status, content-type and content-length
lines cached as bytes, a whole response joined into one ``bytes`` for one ``transport.write``,
and the prebuilt answers (500 body, the 503 past the connection cap)."""

from __future__ import annotations

from http import HTTPStatus

from tribridge.http.messages import Response, error_response

STATUS_LINES: dict[int, bytes] = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("latin-1")) for s in HTTPStatus
}
# statuses whose responses carry content-length and a body
FAST_STATUS_LINES = {
    s: line for s, line in STATUS_LINES.items() if s >= 200 and s not in (204, 304)
}
CL_LINES = [b"content-length: %d\r\n" % i for i in range(2048)]
CT_LINES: dict[str, bytes] = {"application/json": b"content-type: application/json\r\n"}
CONN_KEEP = b"connection: keep-alive\r\n\r\n"
CONN_CLOSE = b"connection: close\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_RESERVED = frozenset(("content-length", "connection", "date", "transfer-encoding"))


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        if type(status) is not int or not 100 <= status <= 999:
            raise ValueError(f"invalid HTTP status {status!r}")
        line = b"HTTP/1.1 %d Unknown\r\n" % status
    return line


def ct_line(ct: str) -> bytes:
    line = CT_LINES.get(ct)
    if line is None:
        if not ct:
            return b""
        if "\r" in ct or "\n" in ct:
            raise ValueError("CR/LF in content-type")
        line = b"content-type: " + ct.encode("latin-1") + b"\r\n"
        if len(CT_LINES) < 256:
            CT_LINES[ct] = line
    return line


def _extra_headers(headers: list[tuple[str, str]]) -> bytes:
    out = []
    for name, value in headers:
        if name.lower() in _RESERVED:
            continue
        line = f"{name}: {value}\r\n"
        if "\r" in line[:-2] or "\n" in line[:-2]:
            raise ValueError(f"CR/LF in response header {name!r}")
        out.append(line)
    return "".join(out).encode("latin-1")


def render(resp: Response, head: bool, close: bool, date: bytes) -> bytes:
    status = resp.status
    body = resp.body
    extra = _extra_headers(resp.headers) if resp.headers else b""
    conn = CONN_CLOSE if close else CONN_KEEP
    if status < 200 or status == 204 or status == 304:
        # no body and no content-length for these
        return b"".join((status_line(status), date, extra, conn))
    n = len(body)
    cl = CL_LINES[n] if n < 2048 else b"content-length: %d\r\n" % n
    return b"".join(
        (
            status_line(status),
            date,
            ct_line(resp.content_type),
            cl,
            extra,
            conn,
            b"" if head else body,
        )
    )


_INTERNAL_BYTES: bytes = error_response(500, "internal", "internal server error").body
_BUSY_BODY: bytes = error_response(
    503, "too_many_connections", "connection limit reached; retry later"
).body
#: the whole answer to a connection past the cap (no request read, no Date line)
BUSY: bytes = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nretry-after: 1\r\nconnection: close\r\n\r\n%s"
    % (len(_BUSY_BODY), _BUSY_BODY)
)


def internal() -> Response:
    return Response(500, _INTERNAL_BYTES)
