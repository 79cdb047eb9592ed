#!/usr/bin/env bash
# Layering and typing checks (docs/architecture.md): import contracts (import-linter) and
# mypy --strict on tribridge.codecs, tribridge.config and the call path's core modules (call
# and outcome types, events, the attempt loop, reply mapping, upstream Protocols).  Both
# tools find a package by its folder, and ours map folders onto one import package
# (pyproject package-dir), which the editable install serves through a finder they cannot
# read; so both run on a throw-away regular install of this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TRIBRIDGE_PURE_PYTHON=1 .venv/bin/python -m pip install -q --no-deps --no-build-isolation --target "$tmp/site" .  # types, not speed
PYTHONPATH="$tmp/site" .venv/bin/lint-imports --no-cache
cd "$tmp/site"
"$root/.venv/bin/mypy" --config-file "$root/pyproject.toml" --cache-dir "$tmp/mypy" \
    -p tribridge.codecs -p tribridge.config \
    -m tribridge.invoke.call -m tribridge.invoke.events -m tribridge.invoke.attempts \
    -m tribridge.invoke.replies -m tribridge.invoke.triple_calls -m tribridge.invoke.invoker \
    -m tribridge.ingress.routes -m tribridge.upstream.protocols -m tribridge.upstream.errors \
    -m tribridge.upstream.balancers -m tribridge.statuses -m tribridge.errors
