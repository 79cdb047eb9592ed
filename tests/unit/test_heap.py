"""ops.heap: the started gateway's heap frozen out of full collections, settled again on a
reload so that frozen state a reload replaced can still be collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from tribridge.ops import heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Leave the test process's collector as it was found (pytest itself never freezes)."""
    assert not heap.frozen()
    try:
        yield
    finally:
        gc.unfreeze()


def test_settle_freezes_what_is_alive_and_collects_the_rest(unfrozen: None) -> None:
    garbage = Node()
    dead = weakref.ref(garbage)
    del garbage
    alive = Node()
    heap.settle()
    assert heap.frozen() and dead() is None
    assert gc.get_freeze_count() > 0
    # a frozen object is not in any generation a collection scans
    assert not any(o is alive for o in gc.get_objects())


def test_a_settle_again_frees_frozen_state_that_became_garbage(unfrozen: None) -> None:
    """What a reload replaces was frozen at start; without a second settle its cycles would
    never be collected."""
    old = Node()
    replaced = weakref.ref(old)
    heap.settle()
    del old
    gc.collect()
    assert replaced() is not None  # frozen: no collection reaches it
    heap.settle()
    assert replaced() is None
