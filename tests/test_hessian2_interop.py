"""Both directions against Caucho Hessian 4.0.38 (Java) and hessian.js 2.11 (Node).

Ours -> theirs: their decoder reads our bytes to the value we meant.  Theirs -> ours: our
decoder reads their bytes to the same value, and where Java's encoding is canonical our
bytes equal theirs.
"""

from __future__ import annotations

import orjson
import pytest
from tribridge.codecs.hessian2 import decode, encode
from tribridge.interop import peers
from tribridge.interop.tjson import to_tjson

from .hessian_corpus import corpus

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
