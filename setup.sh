#!/usr/bin/env bash
# Sets up a fresh checkout: a virtual environment, the package, and the verified assets.
#   ./setup.sh          runtime (+ evaluation plots)
#   ./setup.sh --test   also pytest, the optional Ultralytics backend (pulls torch, ~6 GB), and a
#                       PostgreSQL server and a mosquitto MQTT broker (Debian packages) that the tests start on loopback,
#                       chromium for the console's browser tests, and GStreamer's RTSP server for real RTSP cameras
set -euo pipefail
cd "$(dirname "$0")"
extras="eval"
if [ "${1:-}" = "--test" ]; then
  extras="eval,test,ultralytics"
  missing=""
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="postgresql"
  [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || missing="$missing mosquitto"
  [ -x /usr/bin/chromium ] || missing="$missing chromium"  # the console's browser tests (Playwright drives it)
  fc-list :lang=ko 2>/dev/null | grep -q . || missing="$missing fonts-noto-cjk"  # Korean labels in its screenshots
  # real RTSP cameras for the tests: GStreamer's RTSP server, driven from the system python3
  /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null \
    || missing="$missing python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-rtsp"
  if [ -n "$missing" ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${extras}]"
.venv/bin/opt_in_out --opt_out >/dev/null 2>&1 || true  # OpenVINO telemetry off
.venv/bin/cctv assets
