"""``tribridge openapi -c FILE``: the document a gateway with this config would serve.

The registries are asked first (unless ``--offline``), for at most the config's
``registry_wait``, so signatures the providers publish in their metadata are in it as they
would be on ``/openapi.json``; no listener is opened and no provider is called.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson


async def build(config: str, offline: bool) -> bytes:
    from tribridge.config.model import load_config
    from tribridge.routing.app import Gateway

    cfg = load_config(config)
    gw = Gateway(cfg)
    st = gw.state
    try:
        if not offline:
            for r in st.registries.values():
                await r.start()
            for svc in st.services.values():
                gw.directory.follow(st, svc)
            waits = [svc.settled(cfg.registry_wait) for svc in st.services.values()]
            if waits:
                await asyncio.gather(*waits)
        return orjson.dumps(gw.contract.openapi(), option=orjson.OPT_INDENT_2)
    finally:
        await gw.pools.aclose()
        for r in st.registries.values():
            await r.close()


def cmd_openapi(args: argparse.Namespace) -> int:
    from tribridge.config.model import ConfigError
    from tribridge.http.server import run

    try:
        out = run(build(args.config, args.offline))
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(out.decode() + "\n")
    return 0
