"""Build hook for the compiled codec hot path (everything else is in pyproject.toml).

The modules named in ``codecs/_accel.py`` (``ACCELERATED``) are compiled by Cython from
their own ``.py`` source plus the C types in the ``.pxd`` beside it, so the pure-Python
file stays the one source of truth and the fallback.  Compiling is optional: without
Cython or a C compiler the build warns and installs the pure-Python package, which works
the same, only slower.  ``TRIBRIDGE_PURE_PYTHON=1`` at build time skips compiling;
``TRIBRIDGE_REQUIRE_COMPILED=1`` (set by ``scripts/setup.sh``, so by CI) turns any
failure to compile into a build error, so a test run can never pass untested C code off as
tested.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
#: Cython finds a module's ``.pxd`` beside its ``.py`` and derives the module name from
#: the ``__init__.py`` chain, so the sources are mirrored under their import names
#: (``codecs/`` is installed as ``tribridge.codecs``)
STAGE = Path("build") / "cython-src"
DIRECTIVES = {
    "language_level": 3,
    # the .pxd files are the only C typing; annotations in the .py stay Python hints
    "annotation_typing": False,
    # every index is checked against the decoder's own end first (see Decoder._need)
    "boundscheck": False,
}


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def _accel() -> ModuleType:
    """``codecs/_accel.py`` (the list of compiled modules, their source digests), loaded on
    its own: the package is not importable while it is being built."""
    spec = importlib.util.spec_from_file_location("_tribridge_accel", ROOT / "codecs" / "_accel.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ACCEL = _accel()


def _mirror(src: Path, dst: Path) -> None:
    """Copy when changed, keeping the mtime so Cython's up-to-date check still works."""
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def extensions() -> list[Extension]:
    out = []
    stage = ROOT / STAGE
    (stage / "tribridge").mkdir(parents=True, exist_ok=True)
    (stage / "tribridge" / "__init__.py").touch()
    for name in ACCEL.ACCELERATED:
        parts = name.split(".")[2:]  # tribridge.codecs.<pkg>.<mod>
        src = ROOT.joinpath("codecs", *parts)
        dst = stage.joinpath("tribridge", "codecs", *parts)
        for pkg in (src.parent.parent, src.parent):
            rel = pkg.relative_to(ROOT / "codecs")
            _mirror(pkg / "__init__.py", stage / "tribridge" / "codecs" / rel / "__init__.py")
        _mirror(src.with_suffix(".py"), dst.with_suffix(".py"))
        if src.with_suffix(".pxd").exists():  # a module without one compiles untyped
            _mirror(src.with_suffix(".pxd"), dst.with_suffix(".pxd"))
        out.append(Extension(name, [str(STAGE / dst.relative_to(stage).with_suffix(".py"))]))
    return out


class OptionalBuildExt(build_ext):
    """Cythonize and compile; on any failure fall back to pure Python, unless required."""

    def finalize_options(self) -> None:
        exts = self.distribution.ext_modules or []
        try:
            from Cython.Build import cythonize

            exts = cythonize(
                exts,
                compiler_directives=DIRECTIVES,
                build_dir=str(Path("build") / "cython-c"),
                quiet=True,
            )
        except Exception as e:
            self._fallback(e)
            exts = []
        self.distribution.ext_modules = exts
        super().finalize_options()

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:
            self._fallback(e)
            return
        for ext in self.extensions:  # what each was built from (tests refuse stale builds)
            out = Path(self.get_ext_fullpath(ext.name))
            if out.exists():
                Path(f"{out}.digest").write_text(ACCEL.source_digest(ext.name) + "\n")

    @staticmethod
    def _fallback(e: Exception) -> None:
        if _flag("TRIBRIDGE_REQUIRE_COMPILED"):
            raise e
        print(
            f"tribridge: compiled codecs not built ({type(e).__name__}: {e}); "
            "installing the pure-Python codecs",
            file=sys.stderr,
        )


os.chdir(ROOT)
setup(
    ext_modules=[] if _flag("TRIBRIDGE_PURE_PYTHON") else extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
