"""Mutation check for the class policy: remove one rule at a time and show that the tests of
that rule fail (docs/security.md, "Class policy"). Each line prints the rule removed and the
pytest summary of the tests selected for it; every line must show failures. Files are
restored after each run. Usage: ``.venv/bin/python scripts/class_policy_mutations.py [name]``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

W = Path(__file__).resolve().parents[1]
T = "tests/integration/test_security_class_doors.py"
#: (rule, file, text that implements it, text without it, pytest -k of its tests)
M: list[tuple[str, str, str, str, str]] = [
    (
        "class field of a Map class def",
        "codecs/hessian2/decoder.py",
        'if f == "class" and isinstance(v, str):\n                # a Map class',
        "if False:\n                # a Map class",
        "class_field_of_a_map",
    ),
    (
        "bytes after the attachments",
        "codecs/dubbo/messages.py",
        "        if not dec.at_end():\n            # Nothing follows",
        "        if False:\n            # Nothing follows",
        "after_the_attachments",
    ),
    (
        "class_keys side channel",
        "codecs/hessian2/decoder.py",
        "                self._class_keys.append(v)",
        "                pass",
        "pairmap_class_key or pairmap_nested or no_mode_attachment or class_key_unlisted",
    ),
    (
        "list/map types side channel",
        "codecs/hessian2/decoder.py",
        "return (*(c[0] for c in self._classes), *self._types)",
        "return tuple(c[0] for c in self._classes)",
        "typed_list_type or array_of_denied or typed_map",
    ),
    (
        "class defs side channel",
        "codecs/hessian2/decoder.py",
        "return (*(c[0] for c in self._classes), *self._types)",
        "return tuple(self._types)",
        "pairmap_key or pairmap_value or class_def or enum or reference or attachment_value or real_consumer",
    ),
    (
        "descriptor",
        "gateway/security/policy.py",
        '(n, "descriptor", True) for n in descriptor_names(inv.desc)',
        '(n, "descriptor", True) for n in ()',
        "descriptor",
    ),
    (
        "every $invoke spelling",
        "gateway/security/policy.py",
        "generic = inv.method in GENERIC_METHODS",
        "generic = inv.is_generic",
        "class_key_unlisted and not canonical",
    ),
    (
        "generic modes",
        "gateway/security/policy.py",
        "not isinstance(mode, str) or not self.generic_mode_allowed(inv.path, mode)",
        "False",
        "generic_mode",
    ),
    (
        "java-serialized bytes",
        "gateway/security/policy.py",
        "if inv.java_serialized and not",
        "if False and not",
        "java_serialized",
    ),
    (
        "shared depth limit",
        "gateway/ingress/dubbo.py",
        "inv = decode_request_body(fr.body, max_depth=policy.max_depth)",
        "inv = decode_request_body(fr.body, max_depth=10**6)",
        "depth",
    ),
    (
        "signature allowlist",
        "gateway/ingress/dubbo.py",
        "known = known_classes(overloads, reg) if overloads else None",
        "known = None",
        "unlisted",
    ),
    (
        "path attachment",
        "gateway/security/policy.py",
        "if v is not None and v != inv.path:",
        "if False:",
        "path_attachment",
    ),
    (
        "$invoke parameter types",
        "gateway/security/policy.py",
        '(t, "$invoke parameter types", True) for t in inv.args[1] if',
        '(t, "$invoke parameter types", True) for t in () if',
        "invoke_parameter_type",
    ),
    (
        "HTTP generic attachment",
        "gateway/invoke/invoker.py",
        "self.class_policy.check_attachments(cfg.interface, call.attachments)",
        "pass",
        "generic_mode_header",
    ),
    ("deny javax.swing", "gateway/security/policy.py", '    "javax.swing.*",\n', "", "enum or swing"),
    (
        "deny javax.activation",
        "gateway/security/policy.py",
        '    "javax.activation.*",\n',
        "",
        "class_def_in_a_field or explicit_pojo_field",
    ),
]


def main(only: list[str]) -> int:
    bad = 0
    for name, f, old, new, k in M:
        if only and not any(o in name for o in only):
            continue
        p = W / f
        src = p.read_text()
        assert old in src, (name, old)
        p.write_text(src.replace(old, new, 1))
        try:
            r = subprocess.run(
                [
                    "nice",
                    ".venv/bin/python",
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    T,
                    "-k",
                    k,
                ],
                cwd=W,
                capture_output=True,
                text=True,
                timeout=600,
            )
        finally:
            p.write_text(src)
        last = r.stdout.strip().splitlines()[-1]
        bad += "failed" not in last
        print(f"{name:32s} -> {last}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
