#!/usr/bin/env bash
# The README's picture of the status page (docs/status-page.png): the offline demo's final state, as GET /api/status
# renders it, in headless Chromium (Debian's chromium: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p bench/out
.venv/bin/python -m local.demo --status-html bench/out/demo-status.html > bench/out/demo.log
.venv/bin/python -m local.browser screenshot bench/out/demo-status.html docs/status-page.png --size "${SIZE:-1400x1030}"
echo "docs/status-page.png from bench/out/demo-status.html (demo log: bench/out/demo.log)"
