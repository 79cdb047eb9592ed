"""Which implementation of the hot codec modules runs: compiled (Cython) or pure Python.

The compiled build (``setup.py``) compiles the SAME ``.py`` files listed in ``ACCELERATED``
(with the C types of their ``.pxd`` twins) into extension modules of the same names; the
import system prefers an extension module over a ``.py`` file, so a built tree runs compiled
and an unbuilt one (no compiler at install time) runs the ``.py`` files, the reference.

``TRIBRIDGE_PURE_PYTHON=1`` in the environment forces the ``.py`` files even when the
extensions are built (a finder placed before the path finder answers for these names).
Tests and benchmarks also need both in ONE process: ``pure_twins`` loads the ``.py`` files
as separate module objects and ``swap`` points every already-imported name at one side.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

#: the modules compiled by the accelerated build (setup.py reads this list); a module comes
#: after the accelerated modules it imports at load time (``pure_twins`` loads them in order)
ACCELERATED = (
    "tribridge.codecs.hessian2.plainvalues",
    "tribridge.codecs.hessian2.decoder",
    "tribridge.codecs.hessian2.encoder",
    "tribridge.codecs.dubbo.frame",
    "tribridge.codecs.dubbo.messages",
    "tribridge.codecs.hessian2.javatypes",
    "tribridge.codecs.hessian2.javatime",
    "tribridge.codecs.hessian2.coercion",
)
ENV = "TRIBRIDGE_PURE_PYTHON"
_HERE = Path(__file__).resolve().parent


def pure_python_requested() -> bool:
    """``TRIBRIDGE_PURE_PYTHON`` set to anything but empty / ``0``."""
    return os.environ.get(ENV, "") not in ("", "0")


def source_path(name: str) -> Path:
    """The ``.py`` file of an accelerated module (``tribridge.codecs.x.y`` -> ``codecs/x/y.py``)."""
    return _HERE.joinpath(*name.split(".")[2:]).with_suffix(".py")


def implementation_of(module: ModuleType) -> str:
    """``"compiled"`` for an extension module, ``"python"`` for a source one."""
    file = getattr(module, "__file__", None) or ""
    return "compiled" if file.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)) else "python"


def implementation(modules: Iterable[ModuleType]) -> str:
    """One word for a package: ``compiled``, ``python``, or ``mixed`` (a partial build)."""
    kinds = {implementation_of(m) for m in modules}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def source_digest(name: str) -> str:
    """A digest of what an accelerated module is compiled from (its ``.py`` and ``.pxd``);
    the build writes it beside the extension (``<extension>.digest``)."""
    h = hashlib.sha256()
    src = source_path(name)
    for p in (src, src.with_suffix(".pxd")):
        h.update(p.read_bytes() if p.exists() else b"-")
    return h.hexdigest()


def stale_extensions() -> list[str]:
    """Loaded extensions built from sources other than the current ones (a codec edited
    after the last build; ``scripts/setup.sh`` rebuilds), whose compiled side would otherwise
    be tested as if it were the current code."""
    out = []
    for name in ACCELERATED:
        mod = sys.modules.get(name)
        if mod is None or implementation_of(mod) != "compiled":
            continue
        stamp = Path(f"{mod.__file__}.digest")
        if not stamp.exists() or stamp.read_text().strip() != source_digest(name):
            out.append(name)
    return out


class _SourceFinder:
    """Answers for the accelerated names with their ``.py`` files (``TRIBRIDGE_PURE_PYTHON``)."""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in ACCELERATED:
            return None
        return importlib.util.spec_from_file_location(name, source_path(name))


def install_source_finder() -> None:
    """Force the ``.py`` modules for the rest of this process (idempotent); must run before
    the accelerated modules are first imported (``tribridge.codecs`` does it on import)."""
    if not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder())


_twins: dict[str, ModuleType] = {}


def pure_twins() -> dict[str, ModuleType]:
    """The ``.py`` version of every accelerated module, loaded beside whatever is imported
    (same ``__name__`` and package, so their relative imports resolve to the shared
    ``values`` / ``errors`` modules; not registered in ``sys.modules`` once loaded).
    The twins are one closed pure-Python implementation: while they load, each stands in
    ``sys.modules`` for its compiled module, so a twin importing from an earlier one gets
    the twin's objects, tables included (``decoder`` imports ``plainvalues``'
    ``PLAIN_CONVERTERS``); and where one still holds a class or function of a compiled
    module (imported through a package, as ``messages`` gets ``Decoder``) it is rebound to
    the twin's, so a pure function stays pure whatever ``swap`` does later."""
    if not _twins:
        # the regular modules (and their packages) first: a twin importing its package
        # must find the package complete, not run its __init__ against half-loaded twins
        saved = {name: importlib.import_module(name) for name in ACCELERATED}
        try:
            for name in ACCELERATED:
                spec = importlib.util.spec_from_file_location(name, source_path(name))
                assert spec is not None and spec.loader is not None
                mod = importlib.util.module_from_spec(spec)
                sys.modules[name] = mod
                spec.loader.exec_module(mod)
                _twins[name] = mod
        finally:
            sys.modules.update(saved)
        to_pure = _mapping("python")
        for mod in _twins.values():
            ns = vars(mod)
            for k, v in list(ns.items()):
                ns[k] = to_pure.get(id(v), v)
    return _twins


def _defined_objects(mod: ModuleType) -> dict[str, Any]:
    """Classes and functions a module defines itself (not the ones it imports)."""
    return {
        k: v
        for k, v in vars(mod).items()
        if callable(v) and getattr(v, "__module__", None) == mod.__name__
    }


def _mapping(to: str) -> dict[int, Any]:
    """id(object of the other side) -> the same-named object of side ``to``."""
    mapping: dict[int, Any] = {}
    for name, pure in _twins.items():
        loaded = sys.modules.get(name)
        if loaded is None or loaded is pure:
            continue
        for k, p in _defined_objects(pure).items():
            c = getattr(loaded, k, None)
            if c is None or c is p:
                continue
            src, dst = (c, p) if to == "python" else (p, c)
            mapping[id(src)] = dst
    return mapping


def swap(to: str, extra: Iterable[dict[str, Any]] = ()) -> Callable[[], None]:
    """Point every imported ``tribridge.*`` / ``tests.*`` module (and each ``extra`` namespace)
    at the ``to`` side (``"python"`` or ``"compiled"``) of the accelerated classes and
    functions; returns the undo.  Values built before the swap keep their class."""
    pure_twins()
    mapping = _mapping(to)
    undo: list[tuple[dict[str, Any], str, Any]] = []
    skip = set(ACCELERATED)
    spaces = [
        vars(m)
        for n, m in list(sys.modules.items())
        if m is not None and n not in skip and n.split(".")[0] in ("tribridge", "tests")
    ]
    spaces += list(extra)
    for ns in spaces:
        for k, v in list(ns.items()):
            new = mapping.get(id(v))
            if new is not None and new is not v:
                undo.append((ns, k, v))
                ns[k] = new

    def restore() -> None:
        for ns, k, v in reversed(undo):
            ns[k] = v

    return restore
