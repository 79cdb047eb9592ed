"""The gateway's own cost per routed request, without sockets: A/B across installed trees.

``Gateway.handle`` runs in process over a provider connection that answers at once with real
reply bytes, so what is timed is routing, argument coercion and encoding, the call path
(request context, fast path, outcome, event hooks) and the JSON answer — not the kernel, the
HTTP parser or the provider, which the socket benchmarks (cpu_per_request.py) include and
which make their figures move by more than this path costs.

Each variant is a site directory holding a regular install of one tree (codecs compiled or
not, as installed); rounds alternate between variants, each in a fresh child process, the
order reversed every other round (the second slot of a round measured slower by about 1 µs on
a busy machine), and the median CPU time per request per variant is printed::

    pip install --no-deps --no-build-isolation --target /tmp/site-base <tree at the base>
    pip install --no-deps --no-build-isolation --target /tmp/site-new .
    .venv/bin/python bench/call_path_bench.py base=/tmp/site-base new=/tmp/site-new

Only APIs both sides of a change have are used (``Gateway(cfg)``, the state's registries,
``InstancePool.ready_connection``), so a tree from before the call-path redesign runs too.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_per_request import alternate_children

CHILD = r"""
import asyncio, sys, time
from tribridge.codecs.dubbo import FrameDecoder, encode_response
from tribridge.config.model import parse_config
from tribridge.http.messages import Request, Response
from tribridge.routing.app import Gateway
from tribridge.upstream import pool as pool_mod

CFG = '''
listen: {host: 127.0.0.1, port: 0}
access_log: false
registries:
  static: {type: static, services: {com.x.Greeter: ["127.0.0.1:1"]}}
services:
  - interface: com.x.Greeter
    retries: 0
    methods: {greet: {types: [java.lang.String]}}
routes:
  - {method: GET, path: "/hello/{name}", service: com.x.Greeter, call: greet,
     params: [{from: path, name: name, type: java.lang.String}]}
'''
(REPLY,) = FrameDecoder().feed(encode_response(1, "Hello, world"))


class Conn:
    usable = True
    closed = False

    def __init__(self):
        self.n = 0

    def next_id(self):
        self.n += 1
        return self.n

    def call(self, rid, frame, timeout):
        fut = asyncio.get_running_loop().create_future()
        self.send(rid, frame, timeout, fut)
        return fut

    def send(self, rid, frame, timeout, waiter):
        # the provider's reply arrives in a later callback (data_received), as on a socket
        asyncio.get_running_loop().call_soon(waiter.set_result, REPLY)


CONN = Conn()
pool_mod.InstancePool.ready_connection = lambda self: CONN


async def main(n):
    gw = Gateway(parse_config(CFG))
    st = gw.state
    for svc in st.services.values():
        reg = st.registry_for(svc.cfg)
        svc.update(reg.subscribe(svc.cfg.key, svc.update))
    req = Request("GET", "/hello/world", "", {"host": "x"}, b"", ("127.0.0.1", 1), True)
    await burst(gw, req, 2000)  # warm up
    c0 = time.process_time()
    await burst(gw, req, n)
    cpu = time.process_time() - c0
    print(cpu / n * 1e6)


async def burst(gw, req, n, width=50):
    # n requests, ``width`` in flight at a time (as wrk -c50 keeps them), each answer taken
    # as the listener takes it: a Response at once, else a continuation on the Later or the
    # future the handler returned (never an ``await`` per request, which the listener has not)
    loop = asyncio.get_running_loop()
    for _ in range(n // width):
        left = width
        done = loop.create_future()

        def one(x):
            nonlocal left
            r = x if isinstance(x, Response) else (x.outcome() if hasattr(x, "outcome") else x.result())
            assert r.status == 200 and r.body == b'"Hello, world"', r
            left -= 1
            if left == 0:
                done.set_result(None)

        for _ in range(width):
            res = gw.handle(req)
            if isinstance(res, Response):
                one(res)
            elif hasattr(res, "then"):
                res.then(one)
            else:
                res.add_done_callback(one)
        await done


from tribridge.http.server import run  # the listener's loop (uvloop when installed)
run(main(int(sys.argv[1])))
"""


def main() -> int:
    return alternate_children(CHILD, sys.argv[1:], n=30000)


if __name__ == "__main__":
    sys.exit(main())
