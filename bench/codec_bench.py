"""Codec micro-benchmark (issues 2, 17): our hessian2/Dubbo2 codec, compiled and pure
Python, vs the other Python ones.

    .venv/bin/python bench/codec_bench.py [--budget 0.1] [--repeat 5] [--profile [python]]

Our codec runs twice in one process: compiled (the Cython build of the same .py files) and
pure Python (those .py files, loaded beside it; ``tribridge.codecs._accel.swap``), so both
see the same machine at the same time.

Workload: a generic Dubbo2 request and a response carrying a ``com.tribridge.demo.User``
POJO (long id, String name, int age, double score, boolean active, String email), as one
User and as a list of 100 (ASCII, and for responses also CJK names).  Every operation is
timed with ``timeit`` (best of ``--repeat`` runs of about ``--budget`` seconds each, gc off as
timeit does, our runs alternating with the other library's) and reported in µs per operation
next to the closest equivalent in

* dubbo-ssl-python 0.9.6 (``dubbo_ssl.codec``): the only hessian2 *encoder* available in
  Python besides ours (pyhessian's encoder writes Hessian 1.0), and a hessian2 decoder;
* python-hessian (``pyhessian.parser.ParserV2``): a Hessian 2.0 decoder (stream based);
* hessian.js (``DecoderV2``, in node, from interop/node): a JavaScript decoder, for scale.

Ratios: pure / compiled (what compiling buys) and theirs / compiled (above 1 we are
faster).  Before timing, every other library's output is decoded by ours and compared with
what ours produced, and every other decoder's result is compared with ours, so each row times
the same logical value.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dubbo_ssl.codec.decoder as ds_dec
import dubbo_ssl.codec.encoder as ds_enc
from pyhessian.parser import Parser as PhParser
from pyhessian.protocol import Object as PhObject
from tribridge.codecs import _accel
from tribridge.codecs.dubbo import (
    FrameDecoder,
    decode_request_body,
    decode_response,
    encode_response,
    generic_args,
    generic_template,
)
from tribridge.codecs.hessian2 import HessianObject, Long

SERVICE = "com.tribridge.demo.UserService"
VERSION = "1.0.0"
USER = "com.tribridge.demo.User"
NOTES: dict[str, str] = {}


# ---- the values ----------------------------------------------------------------------------


def user_fields(i: int, cjk: bool = False) -> dict[str, Any]:
    return {
        "id": 10_000_000 + i,
        "name": f"张伟{i}号" if cjk else f"user-{i}",
        "age": 18 + i % 50,
        "score": (i * 37 % 1000) / 10.0,
        "active": i % 3 != 0,
        "email": f"user{i}@example.com",
    }


def ours_user(i: int, cjk: bool = False) -> HessianObject:
    f = user_fields(i, cjk)
    f["id"] = Long(f["id"])  # a Java long: written with the long tags like Java does
    return HessianObject(USER, f)


def ds_user(i: int, cjk: bool = False) -> ds_enc.Object:
    # dubbo-ssl has no long type: an int-range Python int is always written as a Java int.
    return ds_enc.Object(USER, user_fields(i, cjk))


ONE = ours_user(42)
HUNDRED = [ours_user(i) for i in range(1, 101)]
HUNDRED_CJK = [ours_user(i, cjk=True) for i in range(1, 101)]
DS_ONE = ds_user(42)
DS_HUNDRED = [ds_user(i) for i in range(1, 101)]
DS_HUNDRED_CJK = [ds_user(i, cjk=True) for i in range(1, 101)]


# ---- ours ----------------------------------------------------------------------------------

# Every function of ours is bound when a row is built (default arguments), not looked up
# when it runs, so a row keeps the implementation that was active when it was built.


def ours_request(method: str, types: list[str], args: list[Any]) -> Callable[[], bytes]:
    template = generic_template(SERVICE, VERSION)
    return lambda frame=template.frame, gen=generic_args: frame(7, gen(method, types, args))


def ours_response(value: Any) -> Callable[[], bytes]:
    return lambda enc=encode_response: enc(7, value)


def split(frame: bytes):
    (f,) = FrameDecoder().feed(frame)
    return f


# ---- dubbo-ssl-python ----------------------------------------------------------------------


def ds_request(method: str, args: list[Any]) -> Callable[[], bytes]:
    """dubbo-ssl's own request encoder (it derives the descriptor from the values)."""
    req = {
        "dubbo_version": "2.0.2",
        "path": SERVICE,
        "version": VERSION,
        "method": method,
        "arguments": args,
        "context": {"generic": "true"} if method == "$invoke" else None,
        "group": "",
    }
    return lambda: bytes(ds_enc.Request(req).encode())


def ds_response(value: Any) -> Callable[[], bytes]:
    """dubbo-ssl is client-only (no response encoder): a response body built from its hessian
    writer exactly the way its Request builds a body (int lists, mask, bytearray)."""
    head = [0xDA, 0xBB, 0x02, 20, 0, 0, 0, 0, 0, 0, 0, 7]

    def run() -> bytes:
        w = ds_enc.Request(None)
        body: list[int] = []
        body.extend(w._encode_single_value(4))  # RESPONSE_VALUE_WITH_ATTACHMENTS
        body.extend(w._encode_single_value(value))
        body.append(0x48)
        for k, v in (("dubbo", "2.0.2"),):
            body.extend(w._encode_single_value(k))
            body.extend(w._encode_single_value(v))
        body.append(0x5A)
        for i in range(len(body)):
            body[i] = body[i] & 0xFF
        return bytes(bytearray(head + ds_enc.get_request_body_length(body) + body))

    return run


def ds_read(body: bytes, count: int) -> Callable[[], list[Any]]:
    def run() -> list[Any]:
        r = ds_dec.Response(body)
        return [r.read_next() for _ in range(count)]

    return run


# ---- hessian.js (node) ---------------------------------------------------------------------

NODE_DIR = Path(__file__).resolve().parent.parent / "interop" / "node"
NODE_TIMER = """
const h = require('hessian.js');
const [hex, count, budget, repeat] = process.argv.slice(1);
const buf = Buffer.from(hex, 'hex');
function run() {
  const d = new h.DecoderV2(buf);
  const out = [];
  for (let i = 0; i < +count; i++) out.push(d.read());
  return out;
}
const values = run();
let n = 1;
for (;;) {  // calibrate (and let the JIT warm up), as timeit does on our side
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) run();
  const t = Number(process.hrtime.bigint() - t0) / 1e9;
  if (t >= +budget / 10) { n = Math.max(1, Math.round(n * +budget / t)); break; }
  n *= 4;
}
let best = Infinity;
for (let r = 0; r < +repeat; r++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) run();
  best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e3 / n);
}
process.stdout.write(JSON.stringify({us: best, values}));
"""


#: hessian.js rows need node and interop/node's npm packages (scripts/setup.sh installs both)
HAVE_NODE = (NODE_DIR / "node_modules" / "hessian.js").is_dir()


class NodeTiming:
    """hessian.js's DecoderV2 reading the same bytes, timed inside node (its own process:
    not interleaved with ours, so it is measured right after our cells of the same row)."""

    def __init__(self, body: bytes, count: int) -> None:
        self.body, self.count = body, count

    def run(self, budget: float, repeat: int) -> dict[str, Any]:
        out = subprocess.run(
            ["node", "-e", NODE_TIMER, self.body.hex(), str(self.count), str(budget), str(repeat)],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        return json.loads(out)


# ---- python-hessian ------------------------------------------------------------------------


def ph_read(body: bytes, count: int) -> Callable[[], list[Any]]:
    """pyhessian parses whole Hessian-RPC replies; for a bare value stream (a Dubbo body) we
    drive its ParserV2 directly, as its own parse_stream does after the 'R' marker."""

    def run() -> list[Any]:
        p = PhParser()
        p.version = 2
        p._stream = io.BytesIO(body)
        read = p._adapter._read_object
        return [read() for _ in range(count)]

    return run


# ---- sanity: everything must mean the same thing -------------------------------------------


def plain(v: Any) -> Any:
    """Normalize any library's decode result: POJOs -> dict without class, tuples -> lists."""
    if isinstance(v, PhObject):
        return {k: plain(x) for k, x in v.__getstate__().items()}
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items() if k != "class"}
    if isinstance(v, list | tuple):
        return [plain(x) for x in v]
    return v


def check(what: str, got: Any, want: Any) -> None:
    if plain(got) != plain(want):
        sys.exit(
            f"sanity check failed: {what}\n got:  {plain(got)!r:.300}\n want: {plain(want)!r:.300}"
        )


def request_args(frame: bytes) -> list[Any]:
    inv = decode_request_body(split(frame).body)
    assert inv.path == SERVICE and inv.version == VERSION, inv
    return inv.args


# ---- timing --------------------------------------------------------------------------------


def calibrate(fn: Callable[[], Any], budget: float) -> int:
    """How many calls take about ``budget`` seconds."""
    number = 1
    while True:
        t = timeit.timeit(fn, number=number)
        if t >= budget / 10:
            return max(1, round(number * budget / t))
        number *= 4 if t < budget / 100 else 2


def times_us(fns: list[Callable[[], Any]], budget: float, repeat: int) -> list[float]:
    """Best-of-``repeat`` µs per call of each, their runs interleaved (a, b, c, a, b, ...)
    so that load from elsewhere on the machine hits every side alike."""
    numbers = [calibrate(fn, budget) for fn in fns]
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, (fn, n) in enumerate(zip(fns, numbers, strict=True)):
            best[i] = min(best[i], timeit.timeit(fn, number=n) / n)
    return [b * 1e6 for b in best]


Row = tuple[str, Callable[[], Any], str, "Callable[[], Any] | NodeTiming", str]


def rows_on(impl: str) -> list[Row]:
    """The rows, with our side bound to ``impl`` (``compiled`` or ``python``)."""
    undo = _accel.swap(impl, [globals()])
    try:
        return build_rows()
    finally:
        undo()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=0.1, help="seconds per timing run")
    ap.add_argument("--repeat", type=int, default=5, help="timing runs per cell (best kept)")
    ap.add_argument(
        "--profile",
        nargs="?",
        const="python",
        choices=("python", "compiled"),
        help="cProfile two of our hot paths instead (pure Python by default)",
    )
    opts = ap.parse_args()
    t_start = time.perf_counter()
    built = _accel.implementation(sys.modules[n] for n in _accel.ACCELERATED)
    if built != "compiled":
        sys.exit(f"the compiled codecs are not active ({built}): run scripts/setup.sh")
    if opts.profile:
        undo = _accel.swap(opts.profile, [globals()])
        profile(
            ours_request("saveUsers", ["java.util.List"], [HUNDRED]),
            split(ours_response(HUNDRED)()),
        )
        undo()
        return

    # -- time --------------------------------------------------------------------------------
    compiled, pure = rows_on("compiled"), rows_on("python")
    table = []
    for (op, c_fn, lib, theirs_fn, note), p_row in zip(compiled, pure, strict=True):
        if isinstance(theirs_fn, NodeTiming):
            c_us, p_us = times_us([c_fn, p_row[1]], opts.budget, opts.repeat)
            theirs_us = theirs_fn.run(opts.budget, opts.repeat)["us"]
        else:
            c_us, p_us, theirs_us = times_us([c_fn, p_row[1], theirs_fn], opts.budget, opts.repeat)
        table.append((op, c_us, p_us, lib, theirs_us, note))

    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.machine()} x {os.cpu_count()} CPUs, "
        f"timeit best of {opts.repeat} x ~{opts.budget:g}s (the three sides interleaved), gc off\n"
    )
    w = max(len(r[0]) for r in table)
    print(
        f"| {'operation':<{w}} | compiled µs | pure µs | pure/compiled | theirs µs "
        "| theirs/compiled | theirs = | notes |"
    )
    print(
        f"|{'-' * (w + 2)}|------------:|--------:|--------------:|----------:|----------------:|----------|-------|"
    )
    for op, c_us, p_us, lib, theirs_us, note in table:
        print(
            f"| {op:<{w}} | {c_us:11.1f} | {p_us:7.1f} | {p_us / c_us:13.2f} | {theirs_us:9.1f} "
            f"| {theirs_us / c_us:15.2f} | {lib} | {note} |"
        )
    print()
    for k in sorted(NOTES):
        print(f"({k}) {NOTES[k]}")
    print("\ntheirs / compiled > 1 means tribridge (compiled) is faster.")
    print(f"total {time.perf_counter() - t_start:.1f}s")


def build_rows() -> list[Row]:
    """Every row, sanity-checked: both sides must produce / read the same logical value."""
    rows: list[Row] = []

    # -- requests: encode --------------------------------------------------------------------
    req1 = ours_request("saveUser", [USER], [ONE])
    req100 = ours_request("saveUsers", ["java.util.List"], [HUNDRED])
    ds_req1 = ds_request("$invoke", ["saveUser", [USER], [DS_ONE]])
    ds_req100 = ds_request("saveUsers", [DS_HUNDRED])
    a1 = request_args(req1())
    a100 = request_args(req100())
    check("dubbo-ssl request, 1 User", request_args(ds_req1())[2][0], a1[2][0])
    check("dubbo-ssl request, 100 Users", request_args(ds_req100())[0], a100[2][0])
    NOTES["a"] = (
        "dubbo-ssl derives the descriptor from the values: for $invoke it sends "
        "`...;[Lcom/tribridge/demo/User;` instead of `[Ljava/lang/Object;`, writes `id` as an "
        "int (no long type) and typed lists (`[string`, `[object`); attachments also carry "
        "`group`."
    )
    NOTES["b"] = (
        "dubbo-ssl cannot put a list inside a list (Object[] holding a List raises "
        "HessianTypeError), so its row is the direct call saveUsers(User[]) with the same 100 "
        "Users, not $invoke."
    )
    rows += [
        ("encode request $invoke(User)", req1, "dubbo-ssl", ds_req1, "a"),
        ("encode request $invoke(List<User> x100)", req100, "dubbo-ssl", ds_req100, "a,b"),
    ]

    # -- requests: decode (the bytes ours wrote, i.e. what a Java consumer writes) ------------
    for label, frame in (("User", req1()), ("List<User> x100", req100())):
        body = split(frame).body
        ours = decode_request_body(body)
        want = [ours.dubbo_version, ours.path, ours.version, ours.method, ours.desc]
        want += [*ours.args, ours.attachments]
        n = len(want)
        check(f"python-hessian request {label}", ph_read(body, n)(), want)
        check(f"dubbo-ssl request {label}", ds_read(body, n)(), want)

        def ours_fn(body: bytes = body, dec: Any = decode_request_body) -> Any:
            return dec(body)

        rows += [
            (f"decode request $invoke({label})", ours_fn, "python-hessian", ph_read(body, n), "c"),
            (f"decode request $invoke({label})", ours_fn, "dubbo-ssl", ds_read(body, n), "c"),
        ]
        if HAVE_NODE:
            js = NodeTiming(body, n)
            check(f"hessian.js request {label}", js.run(0.001, 1)["values"], want)
            rows.append((f"decode request $invoke({label})", ours_fn, "hessian.js", js, "c,f"))
    NOTES["c"] = (
        "ours = decode_request_body (5 head strings, descriptor parsed to count the args, "
        "args, attachments); the others read the same 9 values in a row."
    )

    # -- responses --------------------------------------------------------------------------
    for label, value, ds_value in (
        ("User", ONE, DS_ONE),
        ("List<User> x100", HUNDRED, DS_HUNDRED),
        ("List<User> x100, CJK names", HUNDRED_CJK, DS_HUNDRED_CJK),
    ):
        enc, ds_encode = ours_response(value), ds_response(ds_value)
        frame = split(enc())
        ours = decode_response(frame)
        assert ours.ok and ours.attachments == {"dubbo": "2.0.2"}, ours
        check(f"dubbo-ssl response {label}", decode_response(split(ds_encode())).value, ours.value)
        want = [frame.body[0] - 0x90, ours.value, ours.attachments]
        check(f"python-hessian response {label}", ph_read(frame.body, 3)(), want)
        check(f"dubbo-ssl decode response {label}", ds_read(frame.body, 3)(), want)

        def ours_fn(frame: Any = frame, dec: Any = decode_response) -> Any:
            return dec(frame)

        enc_note = "e,d" if isinstance(value, list) else "e"
        rows += [
            (f"encode response {label}", enc, "dubbo-ssl", ds_encode, enc_note),
            (f"decode response {label}", ours_fn, "python-hessian", ph_read(frame.body, 3), ""),
            (f"decode response {label}", ours_fn, "dubbo-ssl", ds_read(frame.body, 3), ""),
        ]
        if HAVE_NODE:
            js = NodeTiming(frame.body, 3)
            check(f"hessian.js response {label}", js.run(0.001, 1)["values"], want)
            rows.append((f"decode response {label}", ours_fn, "hessian.js", js, "f"))
    NOTES["f"] = (
        "hessian.js 2.11.0 (DecoderV2) in node 20, timed inside node (its own process, right after "
        "our two cells of the row, not interleaved with them), JIT warmed by the calibration."
    )
    NOTES["d"] = (
        "ours writes the list untyped (`X`), as Java writes an ArrayList; dubbo-ssl can only "
        "write a typed `[object` list."
    )
    NOTES["e"] = (
        "dubbo-ssl has no response encoder: its row is a response body (flag 4, value, "
        "{dubbo: 2.0.2}) built with its hessian writer the way its Request builds bodies."
    )

    return rows


def profile(encode_fn: Callable[[], Any], frame: Any) -> None:
    for what, fn in (
        ("encode request $invoke(List<User> x100)", encode_fn),
        ("decode response List<User> x100", lambda dec=decode_response: dec(frame)),
    ):
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(300):
            fn()
        prof.disable()
        print(f"== {what}: 300 calls")
        pstats.Stats(prof).sort_stats("tottime").print_stats(8)


if __name__ == "__main__":
    main()
