#!/usr/bin/env bash
# Sets up a fresh checkout: a virtual environment, the package, and the verified assets.
#   ./setup.sh          runtime (+ evaluation plots)
#   ./setup.sh --test   also pytest and the optional Ultralytics backend (pulls torch, ~6 GB)
set -euo pipefail
cd "$(dirname "$0")"
extras="eval"
if [ "${1:-}" = "--test" ]; then extras="eval,test,ultralytics"; fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${extras}]"
.venv/bin/opt_in_out --opt_out >/dev/null 2>&1 || true  # OpenVINO telemetry off
.venv/bin/cctv assets
