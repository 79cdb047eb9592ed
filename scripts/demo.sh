#!/usr/bin/env bash
# The one demo command: a virtualenv, then an embedded demo provider behind the gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --python
exec .venv/bin/tribridge demo "$@"
