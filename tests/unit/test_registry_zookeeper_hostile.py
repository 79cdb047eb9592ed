"""ZooKeeper records are untrusted input: every parser of a record the registry reads (provider
and configurator URLs, Curator instances, interface→application mappings, service definitions,
MetadataInfo documents) turns any input into a value or a typed ``RecordRejected`` — never
another exception — in bounded time.  A hostile corpus (each case with the reason it must get)
and hypothesis fuzzing; the real-ZooKeeper test that a bad record beside good ones stops
nothing is ``test_registry_zookeeper.py::test_hostile_records_beside_good_ones``."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tribridge.registries.base import DubboURL, RegistryError
from tribridge.registries.metadata import ServiceDefinition
from tribridge.registries.metadata_service import MetadataInfo
from tribridge.registries.records import (
    BAD_HOST,
    BAD_JSON,
    BAD_PORT,
    BAD_TYPE,
    BAD_URL,
    BAD_VALUE,
    MISSING,
    NOT_UTF8,
    TOO_LARGE,
    RecordRejected,
)
from tribridge.registries.zookeeper_nodes import (
    OverrideURL,
    parse_child,
    parse_definition,
    parse_instance,
    parse_mapping,
    parse_provider_url,
    url_encode,
)

S = "com.x.Svc"
#: examples per fuzzed parser (six parsers, two input shapes for most)
FUZZ = settings(
    max_examples=1000,
    deadline=500,  # ms per example: a record never costs more
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---- the hostile corpus: (input, reason it must be rejected with) ---------------------------

BAD_URLS: list[tuple[str, str]] = [
    (f"dubbo://[::1:20880/{S}", BAD_URL),  # the unclosed IPv6 bracket of issue 21
    (f"dubbo://[::1/{S}", BAD_URL),
    (f"dubbo://::1]:20880/{S}", BAD_URL),
    (f"dubbo://[fe80::zz]:20880/{S}", BAD_URL),
    (f"dubbo://fe80::1:20880/{S}", BAD_PORT),
    (f"dubbo://[not-ipv6]:20880/{S}", BAD_URL),
    (f"dubbo://127.0.0.1:99999/{S}", BAD_PORT),
    (f"dubbo://127.0.0.1:0/{S}", BAD_PORT),
    (f"dubbo://127.0.0.1:-1/{S}", BAD_PORT),
    (f"dubbo://127.0.0.1:abc/{S}", BAD_PORT),
    (f"dubbo://127.0.0.1/{S}", BAD_PORT),
    (f"dubbo://127.0.0.1:{'9' * 5000}/{S}", BAD_PORT),
    (f"dubbo://:20880/{S}", BAD_HOST),
    (f"dubbo://bad host:20880/{S}", BAD_HOST),
    (f"dubbo://h\u00e9st:20880/{S}", BAD_HOST),
    (f"dubbo://\u2100:20880/{S}", BAD_URL),  # NFKC-decomposes into a netloc separator
    (f"dubbo://a\x00b:20880/{S}", BAD_HOST),
    (f"dubbo://{'a' * 300}:20880/{S}", BAD_HOST),
    (f"dubbo://user@:20880/{S}", BAD_HOST),
    (f"du bbo://127.0.0.1:20880/{S}", BAD_URL),
    (f"1dubbo://127.0.0.1:20880/{S}", BAD_URL),
    (f"://127.0.0.1:20880/{S}", BAD_URL),
    ("not-a-url", BAD_URL),
    ("", BAD_URL),
    (f"dubbo://127.0.0.1:20880/{S}?weight=-1", BAD_VALUE),
    (f"dubbo://127.0.0.1:20880/{S}?weight=1000000000000", BAD_VALUE),
    (f"dubbo://127.0.0.1:20880/{S}?weight=abc", BAD_VALUE),
    (f"dubbo://127.0.0.1:20880/{S}?weight=1e9", BAD_VALUE),
    (f"dubbo://127.0.0.1:20880/{S}?weight=\u0663", BAD_VALUE),  # an Arabic-Indic digit
    (f"dubbo://127.0.0.1:20880/{S}?timeout=99999999999", BAD_VALUE),
    (f"dubbo://127.0.0.1:20880/{S}?timeout=-5", BAD_VALUE),
    (f"dubbo://127.0.0.1:20880/{S}?" + "&".join(f"k{i}=v" for i in range(1500)), BAD_URL),
    (f"dubbo://127.0.0.1:20880/{S}?x=" + "y" * 20_000, TOO_LARGE),
]

GOOD_URLS = [
    f"dubbo://127.0.0.1:20880/{S}?group=g1&version=1.0.0&weight=0",
    f"tri://[::1]:50051/{S}?weight=100&timeout=3000",
    f"dubbo://provider-1.svc.cluster.local:20880/{S}",
    f"dubbo://10.0.0.7:20880/{S}?methods=a,b&weight=",
]

BAD_INSTANCES: list[tuple[bytes, str]] = [
    (b"{", BAD_JSON),
    (b"\xff\xfe\x00garbage", BAD_JSON),
    (b'{"address": "h\xff", "port": 1}', BAD_JSON),  # not UTF-8 inside a string
    (b"[1, 2]", BAD_TYPE),
    (b'"text"', BAD_TYPE),
    (b"null", BAD_TYPE),
    (b"{}", MISSING),
    (b'{"address": "127.0.0.1"}', MISSING),
    (b'{"address": 7, "port": 1}', BAD_HOST),
    (b'{"address": ["127.0.0.1"], "port": 1}', BAD_HOST),
    (b'{"address": "127.0.0.1", "port": "20880"}', BAD_PORT),
    (b'{"address": "127.0.0.1", "port": true}', BAD_PORT),
    (b'{"address": "127.0.0.1", "port": 70000}', BAD_PORT),
    (b'{"address": "127.0.0.1", "port": -1}', BAD_PORT),
    (b'{"address": "127.0.0.1", "port": 1.5}', BAD_PORT),
    (b'{"address": "127.0.0.1", "port": 1e400}', BAD_JSON),
    (b'{"address": "a/../b", "port": 1}', BAD_HOST),
    (b'{"address": "127.0.0.1", "port": 1, "payload": []}', BAD_TYPE),
    (b'{"address": "127.0.0.1", "port": 1, "payload": {"metadata": "x"}}', BAD_TYPE),
    (b'{"address": "127.0.0.1", "port": 1, "name": 5}', BAD_TYPE),
    (b"[" * 5000 + b"]" * 5000, BAD_JSON),  # deeper than the JSON parser goes
    (b'{"address": "127.0.0.1", "port": 1, "x": "' + b"a" * 300_000 + b'"}', TOO_LARGE),
]

BAD_MAPPINGS: list[tuple[bytes, str]] = [
    (b"app\xff", NOT_UTF8),
    (b"a," * 40_000, TOO_LARGE),
]
BAD_APP_NAMES = ["../escape", "a/b", ".", "..", "sp ace", "x" * 300, "\u00e9t\u00e9", "a\x00"]

BAD_DEFINITIONS: list[tuple[bytes, str]] = [
    (b"\x00\x01binary", BAD_JSON),
    (b"[]", BAD_TYPE),
    (b'{"methods": []}', BAD_TYPE),
    (b'{"canonicalName": 5}', BAD_TYPE),
    (b'{"canonicalName": "a", "methods": 5}', BAD_TYPE),
    (b'{"canonicalName": "a", "methods": [5]}', BAD_TYPE),
    (b'{"canonicalName": "a", "methods": [{"name": "m", "parameterTypes": 5}]}', BAD_TYPE),
    (b'{"canonicalName": "a", "methods": [{"name": "m", "parameterTypes": [5]}]}', BAD_TYPE),
    (b'{"canonicalName": "a", "methods": [{"name": "m", "parameterTypes": ["int<"]}]}', BAD_TYPE),
    (b'{"canonicalName": "a", "types": 5}', BAD_TYPE),
    (b'{"canonicalName": "a", "types": {"type": "x.T"}}', BAD_TYPE),
    (b"[" * 5000 + b"]" * 5000, BAD_JSON),
    (b'{"canonicalName": "a", "x": "' + b"a" * (5 * 1024 * 1024) + b'"}', TOO_LARGE),
]


def hostile_case_count() -> int:
    """How many hand-written hostile cases this module holds (docs/security.md quotes it)."""
    return (
        len(BAD_URLS)
        + len(BAD_INSTANCES)
        + len(BAD_MAPPINGS)
        + len(BAD_APP_NAMES)
        + len(BAD_DEFINITIONS)
        + len(BAD_CONFIGURATORS)
    )


BAD_CONFIGURATORS: list[tuple[str, str]] = [
    ("override://[::1/S?weight=1", BAD_URL),
    ("override://127.0.0.1:99999/S", BAD_PORT),
    ("route://127.0.0.1/S", BAD_URL),
    ("override://bad host/S", BAD_HOST),
    ("override://0.0.0.0/S?weight=abc", BAD_VALUE),  # would make every provider unusable
    ("override://0.0.0.0/S?weight=99999999999", BAD_VALUE),
    ("override://0.0.0.0/S?timeout=-1", BAD_VALUE),
]


@pytest.mark.parametrize(
    ("text", "reason"), BAD_URLS, ids=[f"url{i}" for i in range(len(BAD_URLS))]
)
def test_bad_provider_urls_are_rejected_with_a_reason(text: str, reason: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(RecordRejected) as e:
        parse_provider_url(text)
    assert e.value.reason == reason, e.value
    assert len(str(e.value)) < 1000 and time.perf_counter() - t0 < 0.1
    # as the node name Dubbo writes (URL-encoded), the same verdict
    with pytest.raises(RecordRejected):
        parse_child(url_encode(text))


def test_bad_type_entries_are_left_out_not_fatal() -> None:
    """One malformed TypeDefinition must not hide the methods or the other types."""
    doc = {
        "canonicalName": "a.B",
        "methods": [{"name": "m", "parameterTypes": ["x.T"]}],
        "types": [{"type": 5}, {"type": "x.U", "properties": []}, {"type": "x.T", "enums": {}}],
    }
    d = parse_definition(orjson.dumps(doc), "t")
    assert d.signature("m", 1) is not None and "x.U" in d.types.defs


def test_good_provider_urls_parse() -> None:
    got = [parse_child(url_encode(u)) for u in GOOD_URLS]
    assert [(u.host, u.port, u.get("group")) for u in got] == [
        ("127.0.0.1", 20880, "g1"),
        ("::1", 50051, ""),
        ("provider-1.svc.cluster.local", 20880, ""),
        ("10.0.0.7", 20880, ""),
    ]


@pytest.mark.parametrize(
    ("data", "reason"), BAD_INSTANCES, ids=[f"inst{i}" for i in range(len(BAD_INSTANCES))]
)
def test_bad_instances_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(RecordRejected) as e:
        parse_instance(data)
    assert e.value.reason == reason, e.value


def test_instance_metadata_of_other_types_is_text() -> None:
    data = orjson.dumps(
        {"address": "10.0.0.1", "port": 1, "payload": {"metadata": {"a": 1, "b": [1], "c": None}}}
    )
    assert parse_instance(data)[3] == {"a": "1", "b": "[1]"}


def test_mappings_keep_good_names_and_reject_bad_ones() -> None:
    for data, reason in BAD_MAPPINGS:
        with pytest.raises(RecordRejected) as e:
            parse_mapping(data)
        assert e.value.reason == reason
    apps, bad = parse_mapping(",".join(["good-app", *BAD_APP_NAMES, " other.app "]).encode())
    assert apps == ["good-app", "other.app"]
    assert len(bad) == len(BAD_APP_NAMES) and {e.reason for _, e in bad} == {BAD_VALUE}


@pytest.mark.parametrize(
    ("data", "reason"), BAD_DEFINITIONS, ids=[f"def{i}" for i in range(len(BAD_DEFINITIONS))]
)
def test_bad_definitions_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(RecordRejected) as e:
        parse_definition(data, "test")
    assert e.value.reason == reason, e.value


@pytest.mark.parametrize(("text", "reason"), BAD_CONFIGURATORS)
def test_bad_configurators_are_rejected(text: str, reason: str) -> None:
    with pytest.raises(RecordRejected) as e:
        OverrideURL.parse(text)
    assert e.value.reason == reason, e.value


# ---- fuzzing: any input is a value or a typed rejection, in bounded time ---------------------

URL_PIECES = st.sampled_from(
    [
        "dubbo://",
        "tri://",
        "override://",
        "[",
        "]",
        ":",
        "::1",
        "127.0.0.1",
        "/",
        "?",
        "&",
        "=",
        "%",
        "%3A",
        "%2F",
        "%5B",
        "+",
        "@",
        "#",
        "weight",
        "timeout",
        "group",
        "version",
        "interface",
        S,
        "20880",
        "0",
        "-1",
        "99999",
        "\u0663",
        "\x00",
        "\ufffd",
        " ",
        "\n",
    ]
)
URLISH = st.lists(st.one_of(URL_PIECES, st.text(max_size=8)), max_size=30).map("".join)


def _typed(fn: Any, *args: Any) -> Any:
    """Call a record parser: a value, or RecordRejected — anything else fails the test."""
    try:
        return fn(*args)
    except RecordRejected as e:
        assert e.reason and isinstance(e.reason, str)
        return e


@FUZZ
@given(st.one_of(URLISH, st.text(max_size=300)))
def test_fuzz_provider_node_names(text: str) -> None:
    for value in (_typed(parse_child, text), _typed(parse_provider_url, text)):
        if isinstance(value, DubboURL):
            assert 0 < value.port < 65536 and value.host


@FUZZ
@given(st.one_of(URLISH, st.text(max_size=300)))
def test_fuzz_configurator_urls(text: str) -> None:
    _typed(OverrideURL.parse, text)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
INSTANCE_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "address": JSON | st.sampled_from(["127.0.0.1", "::1", "[::1", "a/b", ""]),
        "port": JSON | st.integers(-5, 70_000),
        "sslPort": JSON,
        "name": JSON,
        "enabled": JSON,
        "payload": JSON
        | st.fixed_dictionaries(
            {}, optional={"metadata": JSON | st.dictionaries(st.text(max_size=30), JSON)}
        ),
    },
)


@FUZZ
@given(
    st.one_of(st.binary(max_size=400), INSTANCE_FIELDS.map(orjson.dumps), JSON.map(orjson.dumps))
)
def test_fuzz_instances(data: bytes) -> None:
    value = _typed(parse_instance, data)
    if not isinstance(value, RecordRejected):
        _name, host, port, meta, _enabled = value
        assert isinstance(host, str) and 0 < port < 65536
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())


@FUZZ
@given(st.one_of(st.binary(max_size=400), st.text(max_size=200).map(str.encode)))
def test_fuzz_mappings(data: bytes) -> None:
    value = _typed(parse_mapping, data)
    if not isinstance(value, RecordRejected):
        apps, _bad = value
        assert all("/" not in a and a not in (".", "..") for a in apps)


NAMES = st.sampled_from(
    ["int", "long", "java.lang.String", "T", "java.util.List<T>", "int[]", "<", ""]
)
DEFINITION = st.fixed_dictionaries(
    {},
    optional={
        "canonicalName": JSON | st.just("com.x.A"),
        "methods": JSON
        | st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": JSON | st.just("m"),
                    "parameterTypes": JSON | st.lists(NAMES | JSON, max_size=3),
                    "returnType": JSON | NAMES,
                },
            ),
            max_size=3,
        ),
        "types": JSON
        | st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "type": JSON | NAMES,
                    "properties": JSON
                    | st.dictionaries(st.text(max_size=5), NAMES | JSON, max_size=3),
                    "enums": JSON | st.lists(st.text(max_size=5) | JSON, max_size=3),
                    "items": JSON | st.lists(NAMES, max_size=2),
                },
            ),
            max_size=3,
        ),
    },
)


@FUZZ
@given(st.one_of(st.binary(max_size=400), DEFINITION.map(orjson.dumps), JSON.map(orjson.dumps)))
def test_fuzz_service_definitions(data: bytes) -> None:
    value = _typed(parse_definition, data, "fuzz")
    assert isinstance(value, (ServiceDefinition, RecordRejected))


METADATA_INFO = st.fixed_dictionaries(
    {},
    optional={
        "app": JSON | st.just("app"),
        "revision": JSON | st.just("r1"),
        "services": JSON
        | st.dictionaries(
            st.text(max_size=20),
            JSON
            | st.fixed_dictionaries(
                {},
                optional={
                    "name": JSON | st.just(S),
                    "group": JSON,
                    "version": JSON,
                    "protocol": JSON | st.just("dubbo"),
                    "port": JSON | st.integers(-5, 70_000),
                    "path": JSON,
                    "params": JSON | st.dictionaries(st.text(max_size=10), JSON, max_size=3),
                },
            ),
            max_size=3,
        ),
    },
)


@FUZZ
@given(st.one_of(st.binary(max_size=400), METADATA_INFO.map(orjson.dumps), JSON.map(orjson.dumps)))
def test_fuzz_metadata_info_documents(data: bytes) -> None:
    """``/dubbo/metadata/{app}/{revision}`` (remote MetadataInfo): a value or a RegistryError."""
    try:
        MetadataInfo.from_json(data)
    except RegistryError:
        pass


def test_big_records_cost_bounded_time() -> None:
    """The largest records the bounds admit are parsed (or refused) fast."""
    cases = [
        (parse_child, "x" * 10_000_000),
        (parse_child, url_encode(f"dubbo://127.0.0.1:1/{S}?" + "a=b&" * 4000)),
        (parse_instance, b'{"address": "' + b"a" * 1_000_000 + b'"}'),
        (parse_mapping, b"a," * 32_000),
        (parse_definition, b" " * (4 * 1024 * 1024)),
    ]
    for fn, arg in cases:
        t0 = time.perf_counter()
        _typed(fn, *([arg, "t"] if fn is parse_definition else [arg]))
        assert time.perf_counter() - t0 < 1.0, fn


def test_a_flood_of_children_is_read_up_to_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anyone can create children: past MAX_CHILDREN they are reported, not read."""
    from tribridge.registries import zookeeper as zkmod
    from tribridge.registries.zookeeper_state import Entry

    monkeypatch.setattr(zkmod, "MAX_CHILDREN", 100)
    reg = zkmod.ZookeeperRegistry("127.0.0.1:1", interface_discovery=True, app_discovery=False)
    good = url_encode(f"dubbo://10.0.0.1:20880/{S}?interface={S}")
    flood = sorted([good] + [url_encode(f"dubbo://[::{i}/{S}") for i in range(5000)])

    def children(path: str, watch: Any) -> list[str]:
        return flood if path.endswith("/providers") else []

    monkeypatch.setattr(reg, "_children", children)
    read = reg._read_interface(Entry(S))
    assert len(read.skipped) == 101  # 100 bad ones read, and one report of the rest
    assert read.skipped[0][0] == "providers" and read.skipped[0][1].reason == TOO_LARGE
