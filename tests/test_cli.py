"""The command line: codec decode/encode and call, as a user runs them."""

from __future__ import annotations

import orjson
import pytest
from tribridge.interop.testing import BackgroundLoop

from .conftest import tb


def test_decode_value() -> None:
    r = tb("codec", "decode", "c830")
    assert r.returncode == 0 and r.stdout.strip() == "48"


def test_decode_from_stdin_typed() -> None:
    r = tb("codec", "decode", "--typed", stdin="e8\n")
    assert r.returncode == 0 and orjson.loads(r.stdout) == ["long", "8"]


def test_decode_frame() -> None:
    frame = "dabb021400000000000000010000001b940b68656c6c6f20776f726c644805647562626f05322e302e325a"
    r = tb("codec", "decode", "--frame", frame)
    out = orjson.loads(r.stdout)
    assert out["status"] == 20 and out["value"] == "hello world" and out["request_id"] == 1


def test_encode_typed() -> None:
    assert tb("codec", "encode", "--type", "long", "8").stdout.strip() == "e8"
    assert tb("codec", "encode", "-t", "int[]", "[1,2]").stdout.strip() == "72045b696e749192"


@pytest.mark.parametrize(
    "args",
    [("codec", "decode", "zz"), ("codec", "decode", "4c00"), ("codec", "encode", "-t", "int", "[")],
)
def test_bad_input_one_line_error(args: tuple[str, ...]) -> None:
    r = tb(*args)
    assert r.returncode != 0
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1


def test_call_against_demo_provider() -> None:
    with BackgroundLoop() as bg:
        p = bg.start_provider(version="1.0.0")
        target = f"dubbo://127.0.0.1:{p.port}"
        ok = tb(
            "call",
            target,
            "com.tribridge.demo.DemoService.addLong",
            "[1, 2]",
            "--types",
            "long,long",
            "--version",
            "1.0.0",
        )
        assert ok.returncode == 0 and ok.stdout.strip() == "3"
        generic = tb(
            "call", target, "com.tribridge.demo.DemoService.greet", '["g"]', "--version", "1.0.0"
        )
        assert generic.returncode == 0 and generic.stdout.strip() == '"Hello, g"'
        bad = tb(
            "call",
            target,
            "com.tribridge.demo.DemoService.fail",
            '["x"]',
            "--types",
            "java.lang.String",
            "--version",
            "1.0.0",
        )
        assert bad.returncode == 1 and orjson.loads(bad.stderr)["error"]["message"] == "x"
    dead = tb("call", "dubbo://127.0.0.1:1", "a.B.c", "[]", "--timeout", "1")
    assert dead.returncode == 1 and orjson.loads(dead.stderr)["error"]["code"] == "connect_failed"
