"""``tribridge run``, ``tribridge demo`` and ``tribridge call``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any
from urllib.parse import urlsplit

import orjson

DEMO_SERVICE = "com.tribridge.demo.DemoService"


def add_subcommands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help="run the gateway from a YAML config")
    run.add_argument("-c", "--config", required=True)
    run.add_argument("--port", type=int, help="override listen.port")
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the port with SO_REUSEPORT (docs/operations.md)",
    )
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="an embedded demo provider behind the gateway")
    demo.add_argument("--port", type=int, default=8080, help="HTTP port (0 = any free port)")
    demo.set_defaults(func=cmd_demo)

    call = sub.add_parser("call", help="call a Dubbo service from the shell, grpcurl-style")
    call.add_argument("target", help="dubbo://host:port")
    call.add_argument("method", help="INTERFACE.METHOD")
    call.add_argument("args", nargs="?", default="[]", help="JSON array of arguments")
    call.add_argument("--types", help="comma-separated Java types or a JVM descriptor")
    call.add_argument("--version", default="")
    call.add_argument("--group", default="")
    call.add_argument("--timeout", type=float, default=5.0, help="seconds")
    call.add_argument("--generic", action="store_true", help="use $invoke even with --types")
    call.set_defaults(func=cmd_call)


def _run(coro: Any) -> Any:
    from .http_server import run

    return run(coro)


def cmd_run(args: argparse.Namespace) -> int:
    from .app import Gateway, serve_forever, setup_logging
    from .config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    if args.port is not None:
        cfg.port = args.port
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
                print(
                    f"tribridge {who}admin on http://{cfg.admin_host}:{gw.admin.port}",
                    file=sys.stderr,
                    flush=True,
                )
            await serve_forever(gw)

        _run(main())
        return 0

    if workers == 1:
        return worker(0)
    from .workers import supervise

    return supervise(workers, worker)


def demo_config(provider_port: int, http_port: int) -> str:
    """The demo's config, as YAML a user could copy."""
    from tribridge.interop.demo_provider import DEMO_SIGNATURES, DEMO_TYPES

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
            }
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
    }
    import yaml

    return yaml.safe_dump(doc, sort_keys=False)


def demo_curl_lines(base: str) -> list[str]:
    s = DEMO_SERVICE
    return [
        f"curl {base}/hello/world",
        f"curl '{base}/add?a=2&b=40'",
        f"curl {base}/users/7",
        f'curl -X POST {base}/users -d \'{{"id": 1, "name": "Ada", "age": 36}}\'',
        f"curl -X POST {base}/{s}/addLong -d '[9007199254740993, 1]'",
        f"curl -X POST {base}/{s}/listUsers -d '[2]'",
        f"curl -X POST {base}/{s}/fail -d '[\"boom\"]'",
        f"curl -X POST {base}/{s}/nextColor -d '[\"RED\"]'",
    ]


def cmd_demo(args: argparse.Namespace) -> int:
    from tribridge.interop.demo_provider import DemoProvider

    from .app import Gateway, serve_forever, setup_logging
    from .config import parse_config

    setup_logging()

    async def main() -> None:
        provider = DemoProvider(version="1.0.0")
        await provider.start()
        cfg = parse_config(demo_config(provider.port, args.port), "<demo>")
        gw = Gateway(cfg)
        await gw.start()
        base = f"http://127.0.0.1:{gw.port}"
        print(f"demo provider (Dubbo2) on 127.0.0.1:{provider.port}", flush=True)
        print(f"tribridge gateway on {base} — try:", flush=True)
        for line in demo_curl_lines(base):
            print("  " + line, flush=True)
        try:
            await serve_forever(gw)
        finally:
            await provider.close(0.5)

    _run(main())
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    from tribridge.codecs.hessian2 import HessianError, parse_types
    from tribridge.registries.base import Endpoint, ServiceKey, Snapshot

    from .errors import GatewayError
    from .invoker import Call, MethodConfig, Service, ServiceConfig
    from .jsonmap import dumps
    from .upstream import PoolSet, UpstreamSettings

    def fail(code: str, message: str, status: int = 1) -> int:
        sys.stderr.write(
            orjson.dumps({"error": {"code": code, "message": message}}).decode() + "\n"
        )
        return status

    u = urlsplit(args.target)
    if u.scheme != "dubbo" or not u.hostname or not u.port:
        return fail("bad_target", f"expected dubbo://host:port, got {args.target!r}", 2)
    iface, _, method = args.method.rpartition(".")
    if not iface or not method:
        return fail("bad_method", f"expected INTERFACE.METHOD, got {args.method!r}", 2)
    try:
        values = orjson.loads(args.args)
    except orjson.JSONDecodeError as e:
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

    async def main() -> int:
        pools = PoolSet(UpstreamSettings(connect_timeout=min(args.timeout, 5.0)))
        svc = Service(cfg, pools)
        svc.update(Snapshot(ServiceKey(iface), (Endpoint(u.hostname or "", u.port or 0),)))
        call = Call(method, values)
        try:
            res = await svc.invoke(call)
            if not res.ok:
                raise svc.result_error(res, call)
            sys.stdout.write(dumps(res.value).decode() + "\n")
            return 0
        except GatewayError as e:
            sys.stderr.write(e.body().decode() + "\n")
            return 1
        finally:
            pools.close()

    return int(asyncio.run(main()))
