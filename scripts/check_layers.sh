#!/usr/bin/env bash
# Layering and typing checks (docs/architecture.md): import contracts (import-linter), no
# import cycle among production modules (scripts/check_cycles.py, grimp) and mypy --strict on
# tribridge.codecs, tribridge.config, the routing / ops modules and the call path's core
# modules (call and outcome types, events, the attempt loop, reply mapping, upstream
# Protocols) listed below.  These tools find a package by its folder, and ours map folders
# onto one import package (pyproject package-dir), which the editable install serves through a
# finder they cannot read; so all run on a throw-away regular install of this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TRIBRIDGE_PURE_PYTHON=1 .venv/bin/python -m pip install -q --no-deps --no-build-isolation --target "$tmp/site" .  # types, not speed
PYTHONPATH="$tmp/site" .venv/bin/lint-imports --no-cache
PYTHONPATH="$tmp/site" .venv/bin/python -P scripts/check_cycles.py
cd "$tmp/site"
# the routing / ops modules of the service directory, the call path's core and the streaming
# modules (issue 16, 19); routing.app joins once its remaining loose types are annotated
"$root/.venv/bin/mypy" --config-file "$root/pyproject.toml" --cache-dir "$tmp/mypy" \
    -p tribridge.codecs -p tribridge.config \
    -m tribridge.routing.directory -m tribridge.routing.state -m tribridge.routing.routes \
    -m tribridge.routing.params -m tribridge.routing.render -m tribridge.routing.readiness \
    -m tribridge.routing.serve -m tribridge.ops.hotconfig -m tribridge.ops.admin \
    -m tribridge.invoke.call -m tribridge.invoke.events -m tribridge.invoke.attempts \
    -m tribridge.invoke.replies -m tribridge.invoke.triple_calls -m tribridge.invoke.invoker \
    -m tribridge.invoke.prepared \
    -m tribridge.ingress.routes -m tribridge.upstream.protocols -m tribridge.upstream.errors \
    -m tribridge.upstream.balancers -m tribridge.statuses -m tribridge.errors \
    -p tribridge.streaming -m tribridge.http.streaming -m tribridge.upstream.triple_stream \
    -m tribridge.cli.stream_call
