"""The command line: codec decode/encode and call, as a user runs them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tribridge.cli.client import TargetError, parse_target
from tribridge.interop.testing import BackgroundLoop

from tests.conftest import tb


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


# ---- one target grammar for every scheme (issue 15 item 4) ----------------------------------

GRAMMAR_CASES: list[tuple[str, str, tuple[str, str, Any, str | None]]] = [
    # target, SERVICE.METHOD or METHOD -> (interface, method, endpoint, registry URL)
    ("dubbo://h:20880", "com.x.Svc.m", ("com.x.Svc", "m", ("h", 20880, "dubbo"), None)),
    ("dubbo://h:20880/com.x.Svc", "m", ("com.x.Svc", "m", ("h", 20880, "dubbo"), None)),
    ("dubbo://h:20880/com.x.Svc", "com.x.Svc.m", ("com.x.Svc", "m", ("h", 20880, "dubbo"), None)),
    ("tri://h:50051", "com.x.Svc.m", ("com.x.Svc", "m", ("h", 50051, "tri"), None)),
    ("static://h:1", "com.x.Svc.m", ("com.x.Svc", "m", ("h", 1, "dubbo"), None)),
    ("static://h:1?protocol=tri", "com.x.Svc.m", ("com.x.Svc", "m", ("h", 1, "tri"), None)),
    ("zookeeper://h:2181", "com.x.Svc.m", ("com.x.Svc", "m", None, "zookeeper://h:2181")),
    ("zk://h:2181?root=r", "com.x.Svc.m", ("com.x.Svc", "m", None, "zk://h:2181?root=r")),
    (
        "zookeeper://h:2181/com.x.Svc?root=r",
        "m",
        ("com.x.Svc", "m", None, "zookeeper://h:2181?root=r"),
    ),
    (
        "nacos://h:8848?namespace=dev",
        "com.x.Svc.m",
        ("com.x.Svc", "m", None, "nacos://h:8848?namespace=dev"),
    ),
    (
        "eureka://h:8761/eureka/v2",
        "com.x.Svc.m",
        ("com.x.Svc", "m", None, "eureka://h:8761/eureka/v2"),
    ),
    (
        "eureka://h:8761/eureka/v2/com.x.Svc",
        "m",
        ("com.x.Svc", "m", None, "eureka://h:8761/eureka/v2"),
    ),
    (
        "kubernetes://?namespace=shop",
        "com.x.Svc.m",
        ("com.x.Svc", "m", None, "kubernetes://?namespace=shop"),
    ),
    ("k8s://h:6443/com.x.Svc", "com.x.Svc.m", ("com.x.Svc", "m", None, "k8s://h:6443")),
]


@pytest.mark.parametrize(("target", "service_method", "expected"), GRAMMAR_CASES)
def test_target_grammar(target: str, service_method: str, expected: tuple[Any, ...]) -> None:
    t = parse_target(target, service_method)
    assert (t.interface, t.method, t.endpoint, t.registry_url) == expected


@pytest.mark.parametrize(
    ("target", "service_method", "words"),
    [
        ("http://h:80", "com.x.Svc.m", "unknown scheme 'http'"),
        ("127.0.0.1:20880", "com.x.Svc.m", "SCHEME://HOST:PORT"),
        ("dubbo://h", "com.x.Svc.m", "needs HOST:PORT"),
        ("tri://h:port", "com.x.Svc.m", "needs HOST:PORT"),
        ("dubbo://h:1", "m", "SERVICE.METHOD"),
        ("zookeeper://h:2181", "m", "SERVICE.METHOD"),
        ("dubbo://h:1/com.x.A", "com.x.B.m", "names service com.x.A but the call names com.x.B"),
        ("nacos://h:1/com.x.A", "com.x.B.m", "names service com.x.A but the call names com.x.B"),
        ("dubbo://h:1/extra/com.x.A", "m", "no path before the service"),
        ("static://h:1?protocol=grpc", "com.x.Svc.m", "protocol must be dubbo or tri"),
    ],
)
def test_wrong_targets_one_line_error(target: str, service_method: str, words: str) -> None:
    with pytest.raises(TargetError, match=words):
        parse_target(target, service_method)
    r = tb("call", target, service_method, "[]")
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    err = orjson.loads(r.stderr)["error"]
    assert err["code"] == "bad_target" and words in err["message"]


SVC = "com.tribridge.demo.DemoService"


def _call(target: str, *extra: str, method: str = f"{SVC}.add", args: str = "[40, 2]") -> Any:
    return tb("call", target, method, args, "--timeout", "5", *extra)


def test_every_scheme_takes_the_same_grammar_and_group_version(zookeeper: str) -> None:
    """``tribridge call SCHEME://HOST:PORT SERVICE.METHOD ARGS --version V --group G`` for
    each scheme, against real peers (the demo provider, a real ZooKeeper, a Triple server)
    and the registry emulators; --group/--version choose the provider everywhere."""
    import uuid

    from tribridge.interop.eureka_emulator import EurekaEmulator
    from tribridge.interop.k8s_emulator import KubeEmulator, endpoint_slice, service, slice_endpoint
    from tribridge.interop.nacos_emulator import start_emulator_process
    from tribridge.interop.nacos_registration import (
        DubboNacosProvider,
        demo_provider_url,
        demo_service_definition,
    )
    from tribridge.interop.registration import ZkPublisher, register_demo_provider

    gv = ("--version", "1.0.0", "--group", "g1")
    root = "t" + uuid.uuid4().hex[:8]
    with BackgroundLoop() as bg:
        p = bg.start_provider(version="1.0.0", group="g1")
        addr = f"127.0.0.1:{p.port}"
        pub = ZkPublisher(zookeeper, root=root, metadata_root=root + "-meta").start()
        eu = bg.run(EurekaEmulator().start())
        kube = bg.run(KubeEmulator().start())
        nacos = start_emulator_process(0)
        cleanups: list[Any] = []
        try:
            register_demo_provider(pub, p)

            async def on_loop() -> None:
                meta = {"dubbo.interfaces": SVC, "dubbo.port": str(p.port)}
                eu.register(
                    "CLI-GRAMMAR",
                    "g-1",
                    p.port,
                    metadata={**meta, "dubbo.version": "1.0.0", "dubbo.group": "g1"},
                )
                ann = {
                    "tribridge.io/interfaces": SVC,
                    "tribridge.io/version": "1.0.0",
                    "tribridge.io/group": "g1",
                }
                kube.apply(service("demo", ann))
                port = [{"name": "dubbo", "port": p.port, "protocol": "TCP"}]
                kube.apply(
                    endpoint_slice(
                        "demo-0", "demo", [slice_endpoint("127.0.0.1", pod="demo-0")], port
                    )
                )

            bg.run(on_loop())
            ns = "ns-" + uuid.uuid4().hex[:8]
            reg = DubboNacosProvider(
                nacos.address,
                demo_provider_url(p.port, group="g1"),
                namespace=ns,
                definition=demo_service_definition(),
            )
            bg.run(reg.start())
            cleanups.append(lambda: bg.run(reg.close()))
            targets = [
                f"dubbo://{addr}",
                f"static://{addr}",
                f"zookeeper://{zookeeper}?root={root}&metadata_root={root}-meta",
                f"nacos://{nacos.address}?namespace={ns}",
                f"eureka://127.0.0.1:{eu.port}/eureka",
                f"kubernetes://127.0.0.1:{kube.port}?namespace=default",
            ]
            for target in targets:
                r = _call(target, *gv)
                assert (r.returncode, r.stdout.strip()) == (0, "42"), (target, r.stderr)
            # the old form (service as the last path segment) still works
            r = _call(f"zookeeper://{zookeeper}/{SVC}?root={root}", *gv, method="add")
            assert (r.returncode, r.stdout.strip()) == (0, "42"), r.stderr
            # without the group: no provider in the registries, "not found" from the provider
            r = _call(targets[2], "--version", "1.0.0")
            assert r.returncode == 1 and orjson.loads(r.stderr)["error"]["code"] == "no_provider"
            assert "no provider of com.tribridge.demo.DemoService version '1.0.0'" in r.stderr
            r = _call(targets[0], "--version", "1.0.0")
            assert r.returncode == 1 and orjson.loads(r.stderr)["error"]["code"] == "not_found"
            # exact numbers through the CLI: a >64-bit integer into an Object slot
            big = "123456789012345678901234567890"
            r = _call(targets[0], *gv, method=f"{SVC}.echoObject", args=f"[{big}]")
            assert (r.returncode, r.stdout.strip()) == (0, big), r.stderr
            sent = p.last_args["echoObject"][0]
            assert sent.cls == "java.math.BigInteger"
        finally:
            for c in cleanups:
                c()
            pub.stop()
            bg.run(eu.stop())
            bg.run(kube.stop())
            nacos.close()


def test_tri_targets_and_exact_numbers_over_triple() -> None:
    """tri:// and static://…?protocol=tri take the same grammar; a class-tagged BigDecimal
    written as a long JSON number and a >64-bit integer reach a Triple server exactly
    (read there by python-hessian, an independent hessian implementation)."""
    from tribridge.interop.triple_peers import SERVICE as TRI_SERVICE
    from tribridge.interop.triple_peers import start_peer

    from tests.conftest import free_port

    peer = start_peer("grpc", free_port())
    try:
        for target in (
            f"tri://127.0.0.1:{peer.port}",
            f"static://127.0.0.1:{peer.port}?protocol=tri",
        ):
            r = tb("call", target, f"{TRI_SERVICE}.add", "[2, 3]", "--types", "int,int")
            assert (r.returncode, r.stdout.strip()) == (0, "5"), r.stderr
        arg = '[{"class": "java.math.BigDecimal", "value": 0.1234567890123456789012345}]'
        r = tb(
            "call",
            f"tri://127.0.0.1:{peer.port}",
            f"{TRI_SERVICE}.echo",
            arg,
            "--types",
            "java.lang.Object",
        )
        assert r.returncode == 0, r.stderr
        assert orjson.loads(r.stdout) == {"value": "0.1234567890123456789012345"}  # echoed as a map
        big = 123456789012345678901234567890
        r = tb(
            "call",
            f"tri://127.0.0.1:{peer.port}",
            f"{TRI_SERVICE}.echo",
            f"[{big}]",
            "--types",
            "java.lang.Object",
        )
        assert r.returncode == 0, r.stderr
        got = orjson.loads(r.stdout)  # BigInteger's JDK fields, echoed as a map
        mag = b"".join((w & 0xFFFFFFFF).to_bytes(4, "big") for w in got["mag"])
        assert got["signum"] == 1 and int.from_bytes(mag, "big") == big
    finally:
        peer.close()


def test_direct_client_takes_the_same_provider_schemes() -> None:
    """``Client.direct`` parses its URL with the CLI's rules: static:// is a Dubbo2 provider
    (or Triple with ?protocol=tri), a registry URL or a bad one is a ValueError."""
    from tribridge import Client

    with BackgroundLoop() as bg:
        p = bg.start_provider(version="1.0.0")
        with Client.direct(f"static://127.0.0.1:{p.port}") as c:
            assert c.call(SVC, "add", 2, 40, types="int,int", version="1.0.0") == 42
            big = 2**100 + 7  # exact both ways: a BigInteger into an Object slot and back
            assert c.call(SVC, "echoObject", big, version="1.0.0") == big
    for bad in ("zookeeper://h:2181", "dubbo://h", "static://h:1?protocol=grpc"):
        with pytest.raises(ValueError):
            Client.direct(bad)
