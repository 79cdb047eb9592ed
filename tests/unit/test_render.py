"""Replies -> JSON (``routing.render``): enum objects as names, ``class`` keys dropped, in
one place for every shape the decoder makes, shared objects (hessian references) included."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import orjson
from tribridge.codecs.hessian2 import PairMap
from tribridge.invoke.call import Call, Outcome
from tribridge.routing.render import result_response

COLOR = "com.x.Color"


def render(value: Any, include_class: bool = False) -> Any:
    svc = SimpleNamespace(
        enum_classes=frozenset({COLOR}),
        cfg=SimpleNamespace(include_class=include_class, response_attachments=[], interface="S"),
    )
    return orjson.loads(result_response(svc, Call("m", []), Outcome(value)).body)  # type: ignore[arg-type]


def test_shared_objects_render_the_same_at_every_reference() -> None:
    """A hessian reference decodes as the same Python object in several places: each place
    shows the enum's name and the object without its class, however often it is visited."""
    red = {"class": COLOR, "name": "RED"}
    addr = {"class": "com.x.Addr", "city": "X", "color": red}
    user = {"class": "com.x.User", "home": addr, "work": addr, "fav": red, "n": Decimal("1.5")}
    got = render([user, user, red, addr])
    u = {"home": {"city": "X", "color": "RED"}, "work": {"city": "X", "color": "RED"},
         "fav": "RED", "n": "1.5"}  # fmt: skip
    assert got == [u, u, "RED", {"city": "X", "color": "RED"}]


def test_class_kept_when_configured_and_enum_keys_become_names() -> None:
    red = {"class": COLOR, "name": "RED"}
    got = render({"class": "com.x.Box", "items": [red, {"class": "com.x.Y", "v": 1}]}, True)
    assert got == {"class": "com.x.Box", "items": ["RED", {"class": "com.x.Y", "v": 1}]}
    m = PairMap("java.util.HashMap", [({"class": COLOR, "name": "BLUE"}, 2)])
    assert render(m) == {"BLUE": 2}


def test_scalar_replies_pass_untouched() -> None:
    for v in ("s", 1, 2.5, True, None):
        assert render(v) == v
