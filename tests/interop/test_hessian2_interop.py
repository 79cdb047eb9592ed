"""Both directions against Caucho Hessian 4.0.38 (Java) and hessian.js 2.11 (Node).

Ours -> theirs: their decoder reads our bytes to the value we meant.  Theirs -> ours: our
decoder reads their bytes to the same value, and where Java's encoding is canonical our
bytes equal theirs.
"""

from __future__ import annotations

import orjson
import pytest
from tribridge.codecs.hessian2 import decode, encode
from tribridge.codecs.hessian2.tjson import to_tjson
from tribridge.interop import peers

from tests.helpers.hessian_corpus import corpus

CORPUS = corpus()
IDS = [f"{i:03d} {name}" for i, (name, _, _) in enumerate(CORPUS)]


def _normalize(tj, ordered: bool):  # type: ignore[no-untyped-def]
    """Unordered collections (HashMap / HashSet) compare as sorted entries."""
    if not isinstance(tj, list) or not tj:
        return tj
    tag = tj[0]
    if tag == "list":
        items = [_normalize(x, ordered) for x in tj[2]]
        if not ordered and tj[1] == "java.util.HashSet":
            items.sort(key=orjson.dumps)
        return [tag, tj[1], items, *tj[3:]]
    if tag == "map":
        entries = [[_normalize(k, ordered), _normalize(v, ordered)] for k, v in tj[2]]
        if not ordered and tj[1] is None:
            entries.sort(key=orjson.dumps)
        return [tag, tj[1], entries, *tj[3:]]
    if tag == "object":
        return [tag, tj[1], [[f, _normalize(v, ordered)] for f, v in tj[2]], *tj[3:]]
    return tj


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 300, len(CORPUS)


def _check(peer: peers.LinePeer, value, canonical: bool, byte_exact: bool) -> None:  # type: ignore[no-untyped-def]
    expected = _normalize(to_tjson(value), canonical)
    ours = encode(value)
    assert _normalize(peers.decode(peer, ours), canonical) == expected, "peer read our bytes wrong"
    theirs = peers.encode(peer, to_tjson(value))
    assert _normalize(to_tjson(decode(theirs, typed=True)), canonical) == expected
    if canonical and byte_exact:
        assert theirs.hex() == ours.hex()


@pytest.mark.interop
@pytest.mark.parametrize(("name", "value", "canonical"), CORPUS, ids=IDS)
def test_caucho(caucho: peers.LinePeer, name: str, value, canonical: bool) -> None:  # type: ignore[no-untyped-def]
    _check(caucho, value, canonical, byte_exact=True)


@pytest.mark.interop
@pytest.mark.parametrize(("name", "value", "canonical"), CORPUS, ids=IDS)
def test_hessianjs(hessianjs: peers.LinePeer, name: str, value, canonical: bool) -> None:  # type: ignore[no-untyped-def]
    _check(hessianjs, value, canonical, byte_exact=False)


# ---- class-tagged Java value classes with no declared types (issue 15) -----------------------

ORDER = "com.tribridge.interop.Order"
BIG = 123456789012345678901234567890


def _big_tjson(fields: list) -> int:  # type: ignore[type-arg]
    """The int a TJSON java.math.BigInteger object (JDK fields) holds."""
    f = dict(fields)
    mag = b"".join((w[1] & 0xFFFFFFFF).to_bytes(4, "big") for w in f["mag"][2])
    v = int.from_bytes(mag, "big")
    return -v if f["signum"][1] < 0 else v


@pytest.mark.interop
@pytest.mark.parametrize("generic", [False, True], ids=["direct", "generic"])
def test_caucho_reads_class_tagged_values_in_an_untyped_pojo(
    caucho: peers.LinePeer, generic: bool
) -> None:
    """A POJO nobody declared (no configured types, no metadata): class tags make Java
    build a real BigDecimal / BigInteger / Timestamp / UUID / Class in typed fields, in an
    Object field, in a List<Object> and in a Map<String, Object>; a JSON integer beyond 64
    bits is a BigInteger wherever nothing says otherwise."""
    from tribridge.codecs.hessian2.coercion import infer
    from tribridge.codecs.hessian2.javatypes import EMPTY_REGISTRY
    from tribridge.invoke.jsonmap import loads

    body = loads(
        b'{"class": "com.tribridge.interop.Order",'
        b' "amount": {"class": "java.math.BigDecimal", "value": "12.50"},'
        b' "count": {"class": "java.math.BigInteger", "value": "123456789012345678901234567890"},'
        b' "placed": {"class": "java.sql.Timestamp", "value": "2024-01-02T03:04:05.006Z"},'
        b' "due": "2024-01-02T00:00:00Z",'
        b' "any": 123456789012345678901234567890,'
        b' "items": [{"class": "java.math.BigDecimal", "value": "0.1"}, -99999999999999999999],'
        b' "extras": {"k": {"class": "java.math.BigDecimal", "value": "1E+3"},'
        b'   "u": {"class": "java.util.UUID", "value": "123e4567-e89b-12d3-a456-426614174000"},'
        b'   "c": {"class": "java.lang.Class", "value": "java.lang.String"}}}'
    )
    body["due"] = {"class": "java.util.Date", "value": body["due"]}
    wire = encode(infer(body, "args[0]", generic, EMPTY_REGISTRY))
    if generic:  # $invoke sends the POJO as a map with "class"; PojoUtils realizes it
        got = peers.decode(caucho, wire)
        assert got[0] == "map"
        fields = {k[1]: v for k, v in got[2]}
    else:
        got = peers.decode(caucho, wire)
        assert got[:2] == ["object", ORDER]
        fields = dict(got[2])

    def decimal(tj: list) -> str:  # type: ignore[type-arg]
        assert tj[:2] == ["object", "java.math.BigDecimal"], tj
        return tj[2][0][1][1]

    assert decimal(fields["amount"]) == "12.50"
    assert fields["count"][:2] == ["object", "java.math.BigInteger"]
    assert _big_tjson(fields["count"][2]) == BIG
    assert _big_tjson(fields["any"][2]) == BIG
    placed = fields["placed"]
    if placed[0] == "object":  # the generic map keeps the Timestamp object as written
        placed = dict(placed[2])["value"]
    assert placed == ["date", 1704164645006]
    assert fields["due"] == ["date", 1704153600000]
    items = fields["items"][2]
    assert decimal(items[0]) == "0.1" and _big_tjson(items[1][2]) == -99999999999999999999
    extras = {k[1]: v for k, v in fields["extras"][2]}
    assert decimal(extras["k"]) == "1E+3"
    assert extras["u"] == [
        "object",
        "java.util.UUID",
        [["value", ["string", "123e4567-e89b-12d3-a456-426614174000"]]],
    ]
    assert extras["c"] == ["object", "java.lang.Class", [["name", ["string", "java.lang.String"]]]]


@pytest.mark.interop
def test_caucho_rejects_an_untagged_decimal_and_the_gateway_points_at_the_fix(
    caucho: peers.LinePeer,
) -> None:
    """Without a tag a decimal-looking string stays a String (no guessing): Java's reader
    refuses it in a BigDecimal field with the message users see from Dubbo (status 40), and
    the gateway's answer to that message names the fix."""
    from tribridge.codecs.dubbo.messages import Result
    from tribridge.codecs.hessian2.coercion import infer
    from tribridge.codecs.hessian2.javatypes import EMPTY_REGISTRY
    from tribridge.config.services import ServiceConfig
    from tribridge.config.upstream import UpstreamSettings
    from tribridge.invoke.invoker import TYPE_HINT, Call, Service
    from tribridge.upstream.pool import PoolSet

    wire = encode(infer({"class": ORDER, "amount": "12.50"}, "args[0]", False, EMPTY_REGISTRY))
    with pytest.raises(peers.PeerReplyError) as ei:
        peers.decode(caucho, wire)
    java = str(ei.value)
    assert "BigDecimalDeserializer: unexpected object java.lang.String" in java
    svc = Service(ServiceConfig("com.x.Svc"), PoolSet(UpstreamSettings()))
    err = svc.result_error(Result(1, 40, error=java), Call("m", []))
    assert err.code == "provider_rejected_request" and TYPE_HINT in err.message


@pytest.mark.interop
def test_caucho_biginteger_reads_back_exactly(caucho: peers.LinePeer) -> None:
    """Java's own BigInteger bytes (JDK fields, as hessian-lite writes them) decode to the
    exact int, and JSON writes every digit."""
    from tribridge.invoke.jsonmap import dumps

    ours = encode([BIG, -BIG, 2**64])
    theirs = peers.encode(caucho, peers.decode(caucho, ours))
    assert decode(theirs) == [BIG, -BIG, 2**64]
    assert dumps(decode(theirs)) == b"[%d,%d,%d]" % (BIG, -BIG, 2**64)


@pytest.mark.interop
def test_caucho_reads_a_class_tagged_enum_in_an_object_field(caucho: peers.LinePeer) -> None:
    """An enum where nothing declares it: ``{"class": E, "name": C}`` (README), read by Java
    as the enum constant (Caucho writes an enum object back; a HashMap would be a map)."""
    from tribridge.codecs.hessian2.coercion import infer
    from tribridge.codecs.hessian2.javatypes import EMPTY_REGISTRY

    color = {"class": "com.tribridge.interop.Color", "name": "BLUE"}
    box = {"class": "com.tribridge.interop.Box", "value": color}
    got = peers.decode(caucho, encode(infer(box, "args[0]", False, EMPTY_REGISTRY)))
    fields = dict(got[2])
    assert fields["value"] == [
        "object",
        "com.tribridge.interop.Color",
        [["name", ["string", "BLUE"]]],
    ]
