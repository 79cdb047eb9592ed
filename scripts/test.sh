#!/usr/bin/env bash
# The one test command: installs what the tests need, then lints and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
bash scripts/check_layers.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
