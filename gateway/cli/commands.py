"""``tribridge run``, ``demo``, ``call`` and ``registry ls``."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import re
import sys
from typing import Any

import orjson
from tribridge.extras import missing

DEMO_SERVICE = "com.tribridge.demo.DemoService"
#: the demo's gRPC streaming service (interop/protos/stream.proto)
STREAM_SERVICE = "idl.stream.v1.Ticker"


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help="run the gateway from a YAML config")
    run.add_argument("-c", "--config", required=True)
    run.add_argument("--port", type=int, help="override listen.port")
    run.add_argument("--host", help="override listen.host (0.0.0.0 in a container)")
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the port with SO_REUSEPORT (docs/operations.md)",
    )
    run.set_defaults(func=cmd_run)

    from tribridge.contract.cli import cmd_openapi

    oa = sub.add_parser("openapi", help="print the OpenAPI 3.1 document of a config")
    oa.add_argument("-c", "--config", required=True)
    oa.add_argument("--offline", action="store_true", help="do not ask the registries")
    oa.set_defaults(func=cmd_openapi)

    demo = sub.add_parser("demo", help="an embedded demo provider behind the gateway")
    demo.add_argument("--port", type=int, default=8080, help="HTTP port (0 = any free port)")
    demo.add_argument(
        "--provider-port", type=int, default=20880, help="the demo provider's Dubbo2 port (0 = any)"
    )
    demo.set_defaults(func=cmd_demo)

    call = sub.add_parser("call", help="call a Dubbo service from the shell, grpcurl-style")
    call.add_argument(
        "target",
        help="SCHEME://HOST:PORT[/PATH]: a provider (dubbo://, tri://, static://) or a registry "
        "(zookeeper://, nacos://, eureka://host:8761/eureka, kubernetes:// ...)",
    )
    call.add_argument(
        "method",
        help="SERVICE.METHOD (just METHOD when the target ends in /SERVICE)",
    )
    call.add_argument("args", nargs="?", default="[]", help="JSON array of arguments")
    call.add_argument("--types", help="comma-separated Java types or a JVM descriptor")
    call.add_argument("--version", default="", help="service version, for every scheme")
    call.add_argument("--group", default="", help="service group, for every scheme")
    call.add_argument("--timeout", type=float, default=5.0, help="seconds")
    call.add_argument("--generic", action="store_true", help="use $invoke even with --types")
    call.add_argument(
        "--stream",
        choices=("server", "client", "bidi"),
        help="a Triple streaming method (tri://): messages printed as NDJSON; client and bidi "
        "streams read their messages as NDJSON from stdin",
    )
    call.set_defaults(func=cmd_call)

    reg = sub.add_parser("registry", help="look into a registry (zookeeper://, nacos:// …)")
    rsub = reg.add_subparsers(dest="registry_command", required=True)
    ls = rsub.add_parser("ls", help="list services, or the instances of SERVICE")
    ls.add_argument("url", help="registry URL, e.g. zookeeper://127.0.0.1:2181")
    ls.add_argument("service", nargs="?", help="interface name")
    ls.add_argument("--version", default="", help="only this version (default: all)")
    ls.add_argument("--group", default="*", help='only this group ("" = none; default: all)')
    ls.add_argument("--timeout", type=float, default=5.0, help="seconds")
    ls.add_argument("--json", action="store_true", help="JSON output")
    ls.set_defaults(func=cmd_registry_ls)
    certs = sub.add_parser("certs", help="test certificates for relay links (mutual TLS)")
    csub = certs.add_subparsers(dest="certs_command", required=True)
    make = csub.add_parser("make", help="write a test CA, server and client certs to DIR")
    make.add_argument("dir")
    make.add_argument("--san", action="append", help="subject alt name (repeat; IP or DNS)")
    make.add_argument("--client", action="append", help="client cert name (repeat)")
    make.add_argument("--days", type=int, default=365)
    make.set_defaults(func=cmd_certs_make)


#: errors binding a listening socket: one line for the user, not a traceback
_BIND_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


def quiet_client_logs() -> None:
    """A one-shot command answers with one line: client libraries' retry warnings (kazoo
    logs "Connection dropped" at every backoff) would bury it, so log records are dropped."""
    logging.getLogger().addHandler(logging.NullHandler())


def _run(coro: Any, flags: str = "--port") -> Any:
    """Run the server coroutine; a port it cannot bind is one line naming ``flags``."""
    from tribridge.http.server import run

    try:
        return run(coro)
    except OSError as e:
        if e.errno not in _BIND_ERRORS:
            raise
        why = re.sub(r"^\[Errno \d+\] ", "", str(e))
        hint = f"; another process has it: stop it or choose another port ({flags})"
        print(
            f"error: cannot listen: {why}{hint if e.errno == errno.EADDRINUSE else ''}",
            file=sys.stderr,
        )
        return 1


def cmd_run(args: argparse.Namespace) -> int:
    from tribridge.config.model import ConfigError, load_config
    from tribridge.routing.app import Gateway
    from tribridge.routing.serve import serve_forever, setup_logging

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    if args.port is not None:
        cfg.port = args.port
    if args.host is not None:
        cfg.host = args.host
    workers = args.workers
    if workers < 1 or workers > 256:
        print("--workers: expected 1..256", file=sys.stderr)
        return 2
    if workers > 1 and cfg.port == 0:
        print("--workers needs a fixed listen port (not 0)", file=sys.stderr)
        return 2
    setup_logging()

    def worker(index: int) -> int:
        async def main() -> None:
            gw = Gateway(cfg)
            admin = cfg.admin_port
            if admin and workers > 1:
                admin += index  # worker i: admin.port + i
            await gw.start(admin_port=admin, reuse_port=workers > 1)
            gw.watch(args.config)  # poll per reload.interval; SIGHUP re-reads at once
            who = f"worker {index} (pid {os.getpid()}) " if workers > 1 else ""
            print(
                f"tribridge {who}listening on http://{cfg.host}:{gw.port}",
                file=sys.stderr,
                flush=True,
            )
            if gw.admin is not None:
                from tribridge.ops.admin import auth_summary

                scheme = "https" if cfg.admin.tls is not None else "http"
                print(
                    f"tribridge {who}admin on {scheme}://{cfg.admin_host}:{gw.admin.port}",
                    file=sys.stderr,
                    flush=True,
                )
                print(f"tribridge {who}{auth_summary(cfg.admin)}", file=sys.stderr, flush=True)
            await serve_forever(gw)

        return int(_run(main()) or 0)

    if workers == 1:
        return worker(0)
    from tribridge.ops.workers import supervise

    return supervise(workers, worker)


def demo_config(provider_port: int, http_port: int, stream_port: int | None = None) -> str:
    """The demo's config, as YAML a user could copy; ``stream_port``: the demo's gRPC
    streaming service (idl.stream.v1.Ticker, read by server reflection)."""
    from tribridge.config.contract import mcp_available
    from tribridge.interop.demo_provider import DEMO_RETURN_TYPES, DEMO_SIGNATURES, DEMO_TYPES

    methods = {m: {"types": d} for m, d in DEMO_SIGNATURES.items()}
    doc = {
        "listen": {"host": "127.0.0.1", "port": http_port},
        "registries": {
            "static": {
                "type": "static",
                "services": {DEMO_SERVICE: [f"127.0.0.1:{provider_port}?version=1.0.0"]},
            }
        },
        "services": [
            {
                "interface": DEMO_SERVICE,
                "version": "1.0.0",
                "methods": methods,
                "types": DEMO_TYPES,
            },
            *(
                [
                    {
                        "interface": STREAM_SERVICE,
                        "protocol": "grpc",
                        "endpoints": [f"127.0.0.1:{stream_port}"],
                        "idl": {"reflection": True},
                    }
                ]
                if stream_port
                else []
            ),
        ],
        "routes": [
            {
                "method": "GET",
                "path": "/hello/{name}",
                "service": DEMO_SERVICE,
                "call": "greet",
                "params": [{"from": "path", "name": "name", "type": "java.lang.String"}],
            },
            {
                "method": "GET",
                "path": "/users/{id}",
                "service": DEMO_SERVICE,
                "call": "getUser",
                "params": [{"from": "path", "name": "id", "type": "long"}],
            },
            {
                "method": "GET",
                "path": "/add",
                "service": DEMO_SERVICE,
                "call": "add",
                "params": [
                    {"from": "query", "name": "a", "type": "int"},
                    {"from": "query", "name": "b", "type": "int"},
                ],
            },
            {
                "method": "POST",
                "path": "/users",
                "service": DEMO_SERVICE,
                "call": "echoUser",
                "params": [{"from": "body", "type": "com.tribridge.demo.User"}],
            },
        ],
        "auto_routes": {"prefix": "/", "expose": [DEMO_SERVICE]},
        # /openapi.json, /docs and /mcp (docs/contract.md); return types for the schemas
        "contract": {
            "mcp": {"allow": [f"{DEMO_SERVICE}#*"], "enabled": mcp_available()},
            "methods": {f"{DEMO_SERVICE}#{m}": {"returns": r} for m, r in DEMO_RETURN_TYPES.items()},
        },
    }
    import yaml

    return yaml.safe_dump(doc, sort_keys=False)


def demo_curl_lines(base: str, streaming: bool = True) -> list[str]:
    s = DEMO_SERVICE
    lines = [
        f"curl {base}/hello/world",
        f"curl '{base}/add?a=2&b=40'",
        f"curl {base}/users/7",
        f'curl -X POST {base}/users -d \'{{"id": 1, "name": "Ada", "age": 36}}\'',
        f"curl -X POST {base}/{s}/addLong -d '[9007199254740993, 1]'",
        f"curl -X POST {base}/{s}/listUsers -d '[2]'",
        f"curl -X POST {base}/{s}/fail -d '[\"boom\"]'",
        f"curl -X POST {base}/{s}/nextColor -d '[\"RED\"]'",
    ]
    if streaming:
        # a server stream as Server-Sent Events (application/x-ndjson for NDJSON)
        lines.append(
            f"curl -N -H 'accept: text/event-stream' -X POST {base}/{STREAM_SERVICE}/Count "
            f'-d \'{{"id": "demo", "count": 5, "delayMs": 500}}\''
        )
    return lines


def demo_contract_lines(base: str) -> list[str]:
    """Where the demo's contract is: OpenAPI, the docs page, the MCP endpoint."""
    from tribridge.config.contract import mcp_available

    return [
        f"OpenAPI 3.1:       curl {base}/openapi.json",
        f"API docs:          open {base}/docs in a browser (Swagger UI, served by the gateway)",
        f"MCP (Streamable HTTP): {base}/mcp — e.g. npx @modelcontextprotocol/inspector, "
        "or the Python SDK's Client(URL)"
        if mcp_available()
        else "MCP: off (pip install 'tribridge[contract]' to serve /mcp)",
    ]


def cmd_demo(args: argparse.Namespace) -> int:
    from tribridge.config.model import parse_config
    from tribridge.interop.demo_provider import DemoProvider
    from tribridge.routing.app import Gateway
    from tribridge.routing.serve import serve_forever, setup_logging

    setup_logging()

    # the streaming demo reads its gRPC service by reflection: the idl extra
    no_streams = missing("idl", "the streaming demo (a gRPC service read by reflection)")

    async def main() -> None:
        provider = DemoProvider(version="1.0.0", port=args.provider_port)
        await provider.start()
        streams: Any = None
        try:
            stream_port = None
            if no_streams is None:
                from tribridge.interop.grpc_server import start as start_stream_server

                streams, stream_port = await start_stream_server("stream")
            cfg = parse_config(demo_config(provider.port, args.port, stream_port), "<demo>")
            gw = Gateway(cfg)
            await gw.start()
            base = f"http://127.0.0.1:{gw.port}"
            print(f"demo provider (Dubbo2) on 127.0.0.1:{provider.port}", flush=True)
            if stream_port is not None:
                print(f"demo streaming provider (gRPC) on 127.0.0.1:{stream_port}", flush=True)
            print(f"tribridge gateway on {base} — try:", flush=True)
            for line in demo_curl_lines(base, streaming=stream_port is not None):
                print("  " + line, flush=True)
            if no_streams is not None:
                print(no_streams, flush=True)
            for line in demo_contract_lines(base):
                print(line, flush=True)
            await serve_forever(gw)
        finally:
            # also when the gateway cannot start (port in use): nothing left running
            await provider.close(0.5)
            if streams is not None:
                await streams.stop(0.5)

    return int(_run(main(), "--port, --provider-port") or 0)


def cmd_certs_make(args: argparse.Namespace) -> int:
    from tribridge.security.certs import make_certs

    paths = make_certs(args.dir, args.san, args.client, args.days)
    for role, p in paths.items():
        print(f"{role}: {p}")
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    from tribridge.cli.client import TargetError, parse_target
    from tribridge.codecs.hessian2 import HessianError, parse_types
    from tribridge.config.services import MethodConfig, ServiceConfig
    from tribridge.config.upstream import UpstreamSettings
    from tribridge.errors import GatewayError
    from tribridge.invoke.invoker import Call, Service
    from tribridge.invoke.jsonmap import JSONDecodeError, dumps, loads
    from tribridge.registries import RegistryError
    from tribridge.registries.base import Endpoint, ServiceKey, Snapshot
    from tribridge.upstream.pool import PoolSet

    quiet_client_logs()

    def fail(code: str, message: str, status: int = 1) -> int:
        sys.stderr.write(
            orjson.dumps({"error": {"code": code, "message": message}}).decode() + "\n"
        )
        return status

    try:
        target = parse_target(args.target, args.method)
    except TargetError as e:
        return fail("bad_target", str(e), 2)
    iface, method = target.interface, target.method
    try:
        values = loads(args.args)
    except JSONDecodeError as e:
        return fail("invalid_json", f"arguments are not JSON: {e}", 2)
    if not isinstance(values, list):
        values = [values]
    try:
        types = parse_types(args.types) if args.types is not None else None
    except HessianError as e:
        return fail("bad_types", str(e), 2)
    cfg = ServiceConfig(iface, args.version, args.group, timeout=args.timeout, retries=0)
    if args.generic:
        cfg.call = "generic"
    if types is not None:
        cfg.methods[method] = MethodConfig(method, types)
    if args.stream:
        from tribridge.cli.stream_call import call_stream

        return call_stream(cfg, target, method, values, args.stream, args.timeout)

    async def main() -> int:
        pools = PoolSet(UpstreamSettings(connect_timeout=min(args.timeout, 5.0)))
        svc = Service(cfg, pools)
        call = Call(method, values)
        try:
            if target.endpoint is not None:
                svc.update(Snapshot(ServiceKey(iface), (Endpoint(*target.endpoint),)))
            else:
                url = target.registry_url or ""
                snap = await _lookup(url, ServiceKey(iface, args.version, args.group), args.timeout)
                if not snap.endpoints:
                    who = f"{iface}" + "".join(
                        f" {k} {v!r}"
                        for k, v in (("version", args.version), ("group", args.group))
                        if v
                    )
                    raise GatewayError(
                        503,
                        "no_provider",
                        f"{url}: no provider of {who}",
                        service=iface,
                        method=method,
                    )
                svc.update(snap)
            value = (await svc.invoke(call)).unwrap()
            from tribridge.routing.render import enum_names

            # enums as their constant names, as the HTTP doors answer
            value = enum_names(value, svc.enum_classes) if svc.enum_classes else value
            sys.stdout.write(dumps(value).decode() + "\n")
            return 0
        except GatewayError as e:
            if e.code == "not_found" and not args.version:  # the usual cause: see the hint
                e.extra["hint"] = "providers often export a service under a version: add --version"
            sys.stderr.write(e.body().decode() + "\n")
            return 1
        except RegistryError as e:
            return fail("registry_error", str(e))
        finally:
            await pools.aclose()

    return int(asyncio.run(main()))


async def _lookup(url: str, key: Any, timeout: float) -> Any:
    from tribridge.registries import open_registry

    reg = open_registry(url, "cli")
    await reg.start()
    try:
        return await reg.lookup(key, timeout)
    finally:
        await reg.close()


def cmd_registry_ls(args: argparse.Namespace) -> int:
    """Services a registry knows, or the instances of one, as the gateway would see them."""
    from tribridge.registries import RegistryError, open_registry
    from tribridge.registries.base import ServiceKey

    quiet_client_logs()

    def fail(e: RegistryError) -> int:
        msg = {"error": {"code": "registry_error", "message": str(e)}}
        sys.stderr.write(orjson.dumps(msg).decode() + "\n")
        return 1

    async def main() -> int:
        try:
            reg = open_registry(args.url, "cli")
        except RegistryError as e:
            return fail(e)
        await reg.start()
        try:
            if args.service is None:
                names = await _retrying(reg.list_services, args.timeout)
                if args.json:
                    sys.stdout.write(orjson.dumps(names).decode() + "\n")
                elif not names:
                    sys.stderr.write(f"{args.url}: the registry is empty (no services)\n")
                else:
                    for n in names:
                        sys.stdout.write(n + "\n")
                return 0
            key = ServiceKey(args.service, args.version, args.group)
            snap = await reg.lookup(key, args.timeout)
            rows = [
                {
                    "protocol": e.protocol,
                    "address": f"{e.host}:{e.port}",
                    "weight": e.weight,
                    "version": e.version,
                    "group": e.group,
                    "enabled": e.enabled,
                    "healthy": snap.healthy,
                    "methods": list(e.methods),
                    "application": e.metadata.get("application", ""),
                }
                for e in snap.endpoints
            ]
            # records of this service the registry skipped as malformed (registries/records.py)
            # plus records not tied to one interface (a Kubernetes object, a Eureka instance)
            skipped = [
                r.as_dict() for src in (args.service, "*") for r in reg.skips.records(src)
            ]
            if args.json:
                out = {
                    "service": args.service,
                    "instances": rows,
                    "healthy": snap.healthy,
                    "error": snap.error,
                    "signatures": snap.definition.source if snap.definition else None,
                    "skipped": skipped,
                }
                sys.stdout.write(orjson.dumps(out).decode() + "\n")
                return 0 if rows else 1
            notes = [f"skipped: {r['where']}: {r['reason']} {r['detail']}\n" for r in skipped]
            if not rows:
                sys.stdout.write(f"no instances of {args.service}\n" + "".join(notes))
                return 1
            head = ("PROTOCOL", "ADDRESS", "WEIGHT", "VERSION", "GROUP", "STATUS", "METHODS")
            table = [head] + [
                (
                    r["protocol"],
                    r["address"],
                    str(r["weight"]),
                    r["version"] or "-",
                    r["group"] or "-",
                    ("enabled" if r["enabled"] else "disabled")
                    + ("" if r["healthy"] else " (stale)"),
                    ",".join(r["methods"]) or "-",
                )
                for r in rows
            ]
            widths = [max(len(row[i]) for row in table) for i in range(len(head) - 1)]
            for row in table:
                cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)] + [row[-1]]
                sys.stdout.write("  ".join(cells).rstrip() + "\n")
            if snap.definition is not None:
                sys.stdout.write(f"signatures: {snap.definition.source}\n")
            if not snap.healthy:
                sys.stdout.write(f"registry: {snap.error}\n")
            sys.stdout.write("".join(notes))
            return 0
        except RegistryError as e:
            return fail(e)
        finally:
            await reg.close()

    return int(asyncio.run(main()))


async def _retrying(fn: Any, timeout: float) -> Any:
    """Registries connect in the background: retry until they answer or time runs out."""
    from tribridge.registries import RegistryError

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await fn()
        except RegistryError:
            if loop.time() >= deadline:
                raise
            await asyncio.sleep(0.05)
