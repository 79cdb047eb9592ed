"""A kube-apiserver emulator for Services, Endpoints and EndpointSlices: list and watch only.

No kube-apiserver runs on these machines; this follows the API conventions (kubernetes.io
"API concepts") closely enough that kubernetes_asyncio and lightkube work
against it unmodified (``tests/interop/test_k8s_emulator.py``):

* ``GET /api/v1/[namespaces/{ns}/]{services,endpoints}[/{name}]`` and
  ``GET /apis/discovery.k8s.io/v1/[namespaces/{ns}/]endpointslices[/{name}]``: lists carry
  ``metadata.resourceVersion`` (one global counter, like etcd's revision); items have theirs;
* ``labelSelector`` (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``,
  ``k notin (a,b)``) and ``fieldSelector`` on ``metadata.name`` / ``metadata.namespace``;
* ``?watch=1``: a chunked stream of ``{"type", "object"}`` lines.  From
  ``resourceVersion=N`` it replays the retained history after N; without one (or ``0``) it
  starts with ``ADDED`` for every current object.  ``allowWatchBookmarks=true`` enables
  ``BOOKMARK`` events (an object with only ``metadata.resourceVersion``), sent by
  ``bookmark()`` or every ``bookmark_interval`` seconds; ``timeoutSeconds`` ends the stream;
* a ``resourceVersion`` older than the retained history (``compact()`` drops it) is
  answered the way kube-apiserver does for watches: HTTP 200 and one ``ERROR`` event whose
  object is a ``Status`` with ``code: 410`` (reason ``Expired``); with ``gone_as_http=True``
  it is an HTTP 410 ``Status`` instead, as for lists;
* bearer-token authentication when ``token`` is set (401 ``Status`` otherwise) and TLS when
  an ``ssl.SSLContext`` is given;
* writes come from the test API (``apply``, ``delete``), not HTTP; ``restart()`` closes
  every connection and comes back on the same port with the same objects (etcd keeps them).

Not emulated: pagination (``limit`` is ignored, the whole list is returned), other kinds,
RBAC, server-side apply.  Standalone: ``python -m tribridge.interop.k8s_emulator --port N``
prints ``READY <port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import re
import ssl
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson
from tribridge.interop.standalone import serve_until_signalled

#: resource plural -> (group/version path prefix, apiVersion, kind)
KINDS: dict[str, tuple[str, str, str]] = {
    "services": ("/api/v1", "v1", "Service"),
    "endpoints": ("/api/v1", "v1", "Endpoints"),
    "endpointslices": ("/apis/discovery.k8s.io/v1", "discovery.k8s.io/v1", "EndpointSlice"),
}
_BY_KIND = {v[2]: k for k, v in KINDS.items()}
MAX_HEAD = 64 * 1024


def status_obj(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


# ---------------------------------------------------------------------------- selectors

_REQ = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9._/-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<val>[A-Za-z0-9._-]*)|\s+(?P<setop>in|notin)\s*\((?P<set>[^)]*)\))?\s*$"
)


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        parts.append("".join(cur))
    return [p for p in parts if p.strip()]


class SelectorError(ValueError):
    pass


def label_matcher(text: str) -> Any:
    reqs = []
    for part in _split_selector(text):
        m = _REQ.match(part)
        if not m:
            raise SelectorError(f"unable to parse requirement: {part!r}")
        reqs.append(m.groupdict())

    def match(labels: dict[str, str]) -> bool:
        for r in reqs:
            key = r["key"]
            if r["neg"]:
                if key in labels:
                    return False
            elif r["op"] in ("=", "=="):
                if labels.get(key) != r["val"]:
                    return False
            elif r["op"] == "!=":
                if labels.get(key) == r["val"]:
                    return False
            elif r["setop"]:
                values = {v.strip() for v in r["set"].split(",")}
                if r["setop"] == "in" and labels.get(key) not in values:
                    return False
                if r["setop"] == "notin" and labels.get(key) in values:
                    return False
            elif key not in labels:
                return False
        return True

    return match


def field_matcher(text: str) -> Any:
    reqs = []
    for part in _split_selector(text):
        key, op, val = re.split(r"(==|!=|=)", part, maxsplit=1) if "=" in part else (part, "", "")
        if key.strip() not in ("metadata.name", "metadata.namespace") or not op:
            raise SelectorError(f"field selector {part!r} is not supported")
        reqs.append((key.strip().split(".")[1], op, val.strip()))

    def match(obj: dict[str, Any]) -> bool:
        md = obj.get("metadata", {})
        return all((md.get(k) == v) == (op != "!=") for k, op, v in reqs)

    return match


# ---------------------------------------------------------------------------- watches


@dataclass(eq=False)
class _Watch:
    plural: str
    namespace: str | None
    labels: Any
    fields: Any
    bookmarks: bool
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)

    def wants(self, plural: str, obj: dict[str, Any]) -> bool:
        md = obj.get("metadata", {})
        return (
            plural == self.plural
            and (self.namespace is None or md.get("namespace") == self.namespace)
            and self.labels(md.get("labels") or {})
            and self.fields(obj)
        )


def _invalid_watch(message: str) -> dict[str, Any]:
    return status_obj(422, "Invalid", message)


def _event(kind: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class KubeEmulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        token: str | None = None,
        history: int = 10_000,
        bookmark_interval: float | None = None,
        gone_as_http: bool = False,
        unserved: tuple[str, ...] = (),
    ) -> None:
        self.host = host
        #: plurals answered with 404, like a cluster without that API (e.g. endpointslices)
        self.unserved = set(unserved)
        self._port = port
        self.ssl_context = ssl_context
        self.token = token
        self.bookmark_interval = bookmark_interval
        self.gone_as_http = gone_as_http
        self.rv = 1
        #: (plural, namespace, name) -> object
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        #: (rv, plural, type, object) for watches resuming from a resourceVersion
        self.history: deque[tuple[int, str, str, dict[str, Any]]] = deque(maxlen=history)
        self.compacted_rv = 0  # versions at or below this are gone
        self.watches: set[_Watch] = set()
        self.requests: list[str] = []
        #: (plural, query parameters, outcome) of every watch: "gone" (410), "stream"
        self.watch_log: list[tuple[str, dict[str, str], str]] = []
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._ticker: asyncio.Task[None] | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> KubeEmulator:
        self._server = await asyncio.start_server(
            self._serve, self.host, self._port, ssl=self.ssl_context, limit=MAX_HEAD
        )
        self._port = self._server.sockets[0].getsockname()[1]
        if self.bookmark_interval:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())
        return self

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        for w in list(self.watches):
            w.queue.put_nowait(None)
        self.watches.clear()
        if self._server is not None:
            self._server.close()
            for c in list(self._conns):
                c.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def restart(self, down_for: float = 0.0) -> None:
        await self.stop()
        if down_for:
            await asyncio.sleep(down_for)
        await self.start()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self._port}"

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.bookmark_interval or 1.0)
            self.bookmark()

    # ---- test API ------------------------------------------------------------------------

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object (kind and metadata.namespace/name required)."""
        obj = copy.deepcopy(obj)
        plural = _BY_KIND[obj["kind"]]
        md = obj.setdefault("metadata", {})
        md.setdefault("namespace", "default")
        key = (plural, md["namespace"], md["name"])
        old = self.objects.get(key)
        obj["apiVersion"] = KINDS[plural][1]
        md["uid"] = old["metadata"]["uid"] if old else str(uuid.uuid4())
        md.setdefault(
            "creationTimestamp",
            old["metadata"]["creationTimestamp"]
            if old
            else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        self.rv += 1
        md["resourceVersion"] = str(self.rv)
        self.objects[key] = obj
        self._emit(plural, "MODIFIED" if old else "ADDED", obj)
        return obj

    def delete(self, kind: str, name: str, namespace: str = "default") -> bool:
        plural = _BY_KIND[kind]
        obj = self.objects.pop((plural, namespace, name), None)
        if obj is None:
            return False
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._emit(plural, "DELETED", obj)
        return True

    def get(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
        return self.objects.get((_BY_KIND[kind], namespace, name))

    def compact(self) -> None:
        """Forget the watch history (as etcd compaction does): older versions get 410."""
        self.history.clear()
        self.compacted_rv = self.rv

    def bookmark(self) -> int:
        """Send a BOOKMARK at the current resourceVersion to every watch that allows them."""
        n = 0
        for w in list(self.watches):
            if w.bookmarks:
                w.queue.put_nowait(_event("BOOKMARK", self._bookmark_obj(w.plural)))
                n += 1
        return n

    def _bookmark_obj(self, plural: str, initial_end: bool = False) -> dict[str, Any]:
        """A BOOKMARK's object: the watched kind with only metadata.resourceVersion (and, at
        the end of a streaming list's initial events, the ``k8s.io/initial-events-end``
        annotation that client-go's reflector waits for before it reports synced)."""
        _, api_version, kind = KINDS[plural]
        md: dict[str, Any] = {"resourceVersion": str(self.rv)}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": kind, "apiVersion": api_version, "metadata": md}

    def end_watches(self) -> None:
        """Close every watch stream cleanly (as an apiserver does at its watch timeout)."""
        for w in list(self.watches):
            w.queue.put_nowait(None)

    def _emit(self, plural: str, kind: str, obj: dict[str, Any]) -> None:
        self.history.append((self.rv, plural, kind, obj))
        if self.history.maxlen and len(self.history) == self.history.maxlen:
            self.compacted_rv = self.history[0][0] - 1
        line = _event(kind, obj)
        for w in list(self.watches):
            if w.wants(plural, obj):
                w.queue.put_nowait(line)

    # ---- HTTP ----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, _ = lines[0].split(" ", 2)
                except ValueError:
                    await self._send(writer, 400, status_obj(400, "BadRequest", "bad request"))
                    return
                headers = {}
                for h in lines[1:]:
                    if ":" in h:
                        k, _, v = h.partition(":")
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(min(length, 1 << 20))
                keep = await self._request(method, target, headers, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._conns.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _send(self, writer: asyncio.StreamWriter, code: int, body: dict[str, Any]) -> bool:
        data = orjson.dumps(body)
        writer.write(
            b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
            % (code, len(data))
            + data
        )
        await writer.drain()
        return True

    async def _request(
        self, method: str, target: str, headers: dict[str, str], writer: asyncio.StreamWriter
    ) -> bool:
        u = urlsplit(target)
        path = unquote(u.path)
        q = dict(parse_qsl(u.query, keep_blank_values=True))
        self.requests.append(f"{method} {path}{'?watch' if q.get('watch') else ''}")
        if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
            return await self._send(writer, 401, status_obj(401, "Unauthorized", "Unauthorized"))
        if method != "GET":
            return await self._send(
                writer, 405, status_obj(405, "MethodNotAllowed", "the emulator only reads")
            )
        if path == "/version":
            return await self._send(
                writer, 200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-tribridge"}
            )
        parsed = self._parse_path(path)
        if parsed is None or parsed[0] in self.unserved:
            return await self._send(writer, 404, status_obj(404, "NotFound", f"{path} not found"))
        plural, ns, name = parsed
        try:
            labels = label_matcher(q.get("labelSelector", ""))
            fields = field_matcher(q.get("fieldSelector", ""))
        except SelectorError as e:
            return await self._send(writer, 400, status_obj(400, "BadRequest", str(e)))
        if name is not None:
            obj = self.objects.get((plural, ns or "default", name))
            if obj is None:
                return await self._send(
                    writer, 404, status_obj(404, "NotFound", f'{plural} "{name}" not found')
                )
            return await self._send(writer, 200, obj)
        if q.get("watch", "").lower() in ("1", "true"):
            return await self._watch(writer, plural, ns, labels, fields, q)
        items = [
            o
            for (p, n, _), o in sorted(self.objects.items())
            if p == plural
            and (ns is None or n == ns)
            and labels(o["metadata"].get("labels") or {})
            and fields(o)
        ]
        _, api_version, kind = KINDS[plural]
        return await self._send(
            writer,
            200,
            {
                "kind": f"{kind}List",
                "apiVersion": api_version,
                "metadata": {"resourceVersion": str(self.rv)},
                "items": items,
            },
        )

    @staticmethod
    def _parse_path(path: str) -> tuple[str, str | None, str | None] | None:
        for plural, (prefix, _, _) in KINDS.items():
            if not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1 :].strip("/").split("/")
            ns = None
            if rest[0] == "namespaces" and len(rest) >= 3:
                ns, rest = rest[1], rest[2:]
            if rest[0] != plural or len(rest) > 2:
                continue
            return plural, ns, rest[1] if len(rest) == 2 else None
        return None

    async def _watch(
        self,
        writer: asyncio.StreamWriter,
        plural: str,
        ns: str | None,
        labels: Any,
        fields: Any,
        q: dict[str, str],
    ) -> bool:
        rv_text = q.get("resourceVersion", "")
        try:
            since = int(rv_text) if rv_text else 0
        except ValueError:
            return await self._send(
                writer, 400, status_obj(400, "BadRequest", f"bad resourceVersion {rv_text!r}")
            )
        # streaming lists (KEP-3157, client-go's WatchList, on by default in recent clients):
        # sendInitialEvents=true sends the current state as ADDED, then a BOOKMARK annotated
        # k8s.io/initial-events-end; the apiserver insists on resourceVersionMatch=NotOlderThan
        # and bookmarks, and refuses resourceVersionMatch on a watch without it (422)
        initial = q.get("sendInitialEvents", "").lower()
        bookmarks = q.get("allowWatchBookmarks", "").lower() in ("true", "1")
        if initial in ("true", "false"):
            if q.get("resourceVersionMatch") != "NotOlderThan" or not bookmarks:
                return await self._send(
                    writer,
                    422,
                    _invalid_watch(
                        "sendInitialEvents needs resourceVersionMatch=NotOlderThan "
                        "and allowWatchBookmarks=true"
                    ),
                )
        elif q.get("resourceVersionMatch"):
            return await self._send(
                writer,
                422,
                _invalid_watch(
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
                ),
            )
        streaming = initial == "true"
        gone = since != 0 and since < self.compacted_rv and not streaming
        self.watch_log.append((plural, dict(q), "gone" if gone else "stream"))
        if gone and self.gone_as_http:
            return await self._send(
                writer, 410, status_obj(410, "Expired", f"too old resource version: {since}")
            )
        w = _Watch(plural, ns, labels, fields, bookmarks)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        if gone:
            err = status_obj(
                410, "Expired", f"too old resource version: {since} ({self.compacted_rv})"
            )
            writer.write(_chunk(_event("ERROR", err)) + b"0\r\n\r\n")
            await writer.drain()
            return True
        if streaming or (since == 0 and initial != "false"):
            for (p, _n, _), o in sorted(self.objects.items()):
                if w.wants(p, o):
                    writer.write(_chunk(_event("ADDED", o)))
            if streaming:
                writer.write(
                    _chunk(_event("BOOKMARK", self._bookmark_obj(plural, initial_end=True)))
                )
        elif since != 0:
            for rv, p, kind, o in self.history:
                if rv > since and w.wants(p, o):
                    writer.write(_chunk(_event(kind, o)))
        self.watches.add(w)
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        deadline = time.monotonic() + timeout if timeout else None
        try:
            await writer.drain()
            while True:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    line = await asyncio.wait_for(w.queue.get(), wait)
                except TimeoutError:
                    line = None
                if writer.is_closing():
                    # the client went away (uvloop raises RuntimeError on a write then)
                    return False
                if line is None:
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
                    return self._server is not None
                writer.write(_chunk(line))
                await writer.drain()
        finally:
            self.watches.discard(w)


# ---------------------------------------------------------------------------- objects


def endpoint_slice(
    name: str,
    service: str,
    endpoints: list[dict[str, Any]],
    ports: list[dict[str, Any]],
    namespace: str = "default",
) -> dict[str, Any]:
    """An EndpointSlice as the controller writes it (``kubernetes.io/service-name`` label)."""
    return {
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }


def slice_endpoint(
    ip: str,
    *,
    ready: bool | None = True,
    serving: bool | None = None,
    terminating: bool | None = None,
    pod: str | None = None,
) -> dict[str, Any]:
    cond: dict[str, bool] = {}
    if ready is not None:
        cond["ready"] = ready
    if serving is not None:
        cond["serving"] = serving
    if terminating is not None:
        cond["terminating"] = terminating
    ep: dict[str, Any] = {"addresses": [ip], "conditions": cond}
    if pod:
        ep["targetRef"] = {"kind": "Pod", "name": pod, "namespace": "default"}
    return ep


def service(
    name: str,
    annotations: dict[str, str] | None = None,
    namespace: str = "default",
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": dict(annotations or {})},
        "spec": {"selector": {"app": name}, "ports": ports or []},
    }


def endpoints(
    name: str,
    addresses: list[str],
    ports: list[dict[str, Any]],
    not_ready: list[str] = (),  # type: ignore[assignment]
    namespace: str = "default",
) -> dict[str, Any]:
    subset: dict[str, Any] = {"addresses": [{"ip": a} for a in addresses], "ports": ports}
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": a} for a in not_ready]
    return {
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": namespace},
        "subsets": [subset] if addresses or not_ready else [],
    }


async def _run(args: argparse.Namespace) -> None:
    emu = KubeEmulator(args.host, args.port, bookmark_interval=args.bookmarks or None)
    await emu.start()
    await serve_until_signalled(str(emu.port), emu.stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tribridge.interop.k8s_emulator",
        description="a kube-apiserver emulator (list/watch of Services, Endpoints, "
        "EndpointSlices; prints READY <port> once listening)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--bookmarks", type=float, default=0, help="bookmark interval, s")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        from tribridge.http.server import run

        run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
