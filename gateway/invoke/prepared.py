"""A call made ready for the wire before an instance is chosen.

Its own module because both halves of a service build on it: ``invoke.invoker.Service``
prepares it (signature, arguments, template, candidates) and sends it over Dubbo2, and
``invoke.triple_calls`` sends the same prepared call over Triple; neither half imports the
other's module for the type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tribridge.codecs.dubbo import RequestTemplate
from tribridge.codecs.hessian2 import JavaType, TypeRegistry
from tribridge.invoke.call import Call
from tribridge.registries.base import Endpoint, Snapshot
from tribridge.upstream.protocols import UpstreamPool


@dataclass(slots=True)
class Prepared:
    """Everything about a call that does not depend on the instance chosen."""

    call: Call
    tmpl: RequestTemplate
    wire: list[Any]
    eps: tuple[Endpoint, ...]  # the snapshot's own tuple, shared
    timeout: float
    idempotent: bool
    hash_key: str | None
    types: list[JavaType] | None = None
    generic: bool = False
    #: ``time.monotonic()`` when the call's timeout runs out (set by the attempt loop's
    #: first run: the fast path's single attempt has its own timer)
    deadline: float = 0.0
    #: the instance ``send_fast`` chose when it handed over to the async path
    first: Endpoint | None = None
    #: ``send_fast`` started a Triple call: its waiter gets a ``TripleReply``
    triple: bool = False
    #: the pool of the instance ``send_fast`` sent the call to (for ``finish``)
    pool: UpstreamPool | None = None


@dataclass(slots=True, frozen=True)
class MethodPlan:
    """What every call of one method (argument count, version, group, timeout) shares while
    one snapshot is current: ``Service.prepare`` works it out once, not per call."""

    #: the snapshot it was made from: a new one (endpoints, provider metadata) voids it
    snap: Snapshot
    types: list[JavaType] | None
    #: where the types came from (error messages)
    source: str
    reg: TypeRegistry
    #: True / False; None: "auto" with a signature, decided per call by the arguments
    generic: bool | None
    generic_names: list[str] | None
    timeout: float
    idempotent: bool
    eps: tuple[Endpoint, ...]
    #: the request templates of a direct and of a generic call (None: never used)
    tmpl: RequestTemplate | None
    tmpl_generic: RequestTemplate | None
