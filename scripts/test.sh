#!/usr/bin/env bash
# The test command: installs what it needs, then runs the whole suite (Azurite and the Speech emulator are
# started and stopped by the tests themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check .
exec .venv/bin/python -m pytest "$@"
