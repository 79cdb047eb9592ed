"""Reading requests: the ``httptools`` parser callbacks of a listener connection.

A mixin of ``connection.HttpConnection`` (state lives in its slots): URL and header limits,
request-smuggling defences (CL+TE, bad Content-Length, unknown Transfer-Encoding), the body
limit, the one canonical path per target, and handing the finished ``Request`` to the
responder (at once when nothing is in flight, else through the pipeline).
"""

from __future__ import annotations

from time import perf_counter

from tribridge.http.canonical import PathError, split_target
from tribridge.http.messages import HttpError, Request, Response
from tribridge.http.responder import Pending
from tribridge.http.states import BODY, HEAD, IDLE, NOBODY, P_CLOSING, P_PIPE, P_WRITE, STOP

_METHODS: dict[bytes, str] = {
    m.encode(): m
    for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT")
}
_HEADER_NAMES: dict[bytes, str] = {}
_URLS: dict[bytes, tuple[str, str]] = {}  # request target -> (canonical path, raw query)


class _Abort(Exception):
    """Raised inside parser callbacks to stop parsing; the reason is in ``conn._abort``."""


class RequestReader:
    """Parser callbacks (httptools calls them by name) and the request's own limits."""

    __slots__ = ()

    # ---------------------------------------------------------------- parser callbacks

    # (no on_message_begin: one callback less per request; the first URL fragment is the
    # start of a request as far as we are concerned)

    def on_url(self, url: bytes) -> None:
        if self.phase == IDLE:  # first fragment of a new request
            if self.closing or self.draining:
                self.closing = True
                self._abort = STOP
                raise _Abort
            self.phase = HEAD
            self.nbegun += 1
            self.url = url
            self.hdr_bytes = n = len(url)
            if self.access_log is not None:
                # the access line's clock: uvloop's loop.time() counts whole milliseconds
                self.t0 = perf_counter()
        else:
            self.url += url
            self.hdr_bytes = n = self.hdr_bytes + len(url)
        if n > self.max_hdr:
            self._raise(431, "header_too_large", "request line is too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.phase != HEAD:  # trailer fields of a chunked body: counted, not kept
            self.body_len += len(name) + len(value) + 4
            if self.body_len > self.max_body:
                self._raise(413, "body_too_large", "request body is too large")
            return
        self.hdr_bytes += len(name) + len(value) + 4
        if self.hdr_bytes > self.max_hdr:
            self._raise(431, "header_too_large", "request headers are too large")
        key = _HEADER_NAMES.get(name)
        if key is None:
            key = name.decode("latin-1").lower()
            if len(_HEADER_NAMES) < 512:
                _HEADER_NAMES[name] = key
        h = self.headers
        if key in h:
            h[key] = h[key] + ", " + value.decode("latin-1")
        else:
            h[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        h = self.headers
        has_body = False
        te = h.get("transfer-encoding")
        if te is not None:
            if "content-length" in h:
                self._raise(400, "bad_request", "both Content-Length and Transfer-Encoding")
            if te.strip().lower() != "chunked":
                self._raise(501, "not_implemented", f"Transfer-Encoding {te!r} not supported")
            has_body = True
        else:
            cl = h.get("content-length")
            if cl is not None:
                cl = cl.strip()
                if not (cl.isascii() and cl.isdigit()):
                    self._raise(400, "bad_request", "invalid Content-Length")
                n = int(cl)
                if n > self.max_body:
                    self._raise(
                        413, "body_too_large", f"request body exceeds {self.max_body} bytes"
                    )
                has_body = n > 0
        parser = self.parser
        ka = parser.should_keep_alive()
        # upgrades / CONNECT (authority-form target) are not supported: answer, then close
        if ka and ("upgrade" in h or self.url[:1] != b"/") and parser.should_upgrade():
            ka = False
        self.keep_alive = ka
        if has_body:
            self.phase = BODY
            exp = h.get("expect")
            if (
                exp is not None
                and exp.lower() == "100-continue"
                and parser.get_http_version() == "1.1"
            ):
                self.want_continue = True
        else:
            self.phase = NOBODY

    def on_body(self, data: bytes) -> None:
        n = self.body_len + len(data)
        if n > self.max_body:
            self._raise(413, "body_too_large", f"request body exceeds {self.max_body} bytes")
        self.body_len = n
        body = self.body
        if not body:
            self.body = data
        elif type(body) is bytes:
            b = bytearray(body)
            b += data
            self.body = b
        else:
            body += data

    def on_message_complete(self) -> None:
        url = self.url
        pq = _URLS.get(url)
        if pq is None:
            pq = self._split_url(url)
        m = self.parser.get_method()
        method = _METHODS.get(m) or m.decode("latin-1")
        body = self.body
        if body:
            if type(body) is not bytes:
                body = bytes(body)
            self.body = b""
            self.body_len = 0
        if self.held:  # (a body that spanned reads; trailers alone count too)
            self._release()
        ka = self.keep_alive
        req = Request(method, pq[0], pq[1], self.headers, body, self.client, ka)
        self.headers = {}
        self.phase = IDLE
        if self.want_continue or self.send_continue:
            self.want_continue = self.send_continue = False
        if not ka or self.draining:
            self.closing = True  # this is the last request read on this connection
        q = self.queue
        if not q and not self.backlog and not self.paused and self.stream is None:
            # the common case, nothing in flight: call the handler right here
            try:
                res = self.handler(req)
            except Exception as exc:
                res = self._handler_failed(req, exc)
            if type(res) is Response:
                self._send(req, res, self.t0)
            else:
                self._dispatch_result(req, res, self.t0)
            if self.closing:
                self._pause(P_CLOSING)
            return
        if self.backlog or len(q) >= self.max_pipeline or self.paused & P_WRITE:
            # pipeline full, or the peer does not read: park it (bounded by one read)
            self.backlog.append(Pending(self, req, None, self.t0))
        else:
            self._dispatch(req, self.t0)
        if self.transport is None:
            return
        if self.closing:
            self._pause(P_CLOSING)
        elif len(q) + len(self.backlog) >= self.max_pipeline:
            self._pause(P_PIPE)

    def _split_url(self, url: bytes) -> tuple[str, str]:
        """The canonical path (gateway/http/canonical.py) and raw query; 400 for a target with
        no single reading. Computed here once: every later layer reads ``Request.path``."""
        try:
            path, query, authority = split_target(url)
        except PathError as e:
            self._raise(400, "bad_request", f"invalid request target: {e}")
        if authority is not None:
            self.headers["host"] = authority  # absolute-form: its authority is the Host
        pq = (path, query)
        if len(url) <= 256 and authority is None:  # origin-form only: headers untouched
            if len(_URLS) >= 4096:
                _URLS.clear()
            _URLS[url] = pq
        return pq

    def _raise(self, status: int, code: str, message: str) -> None:
        self._abort = HttpError(status, code, message)
        raise _Abort
