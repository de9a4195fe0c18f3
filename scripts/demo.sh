#!/usr/bin/env bash
# The offline run: installs what it needs, then runs the whole lifecycle on Azurite + the Speech emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m local.demo "$@"
