#!/usr/bin/env bash
# Installs everything the tests need (Debian's Chromium for the browser tests, the Noto fonts it needs to draw
# Chinese, Korean and Arabic, redis-server for the shared-state test, the Python packages) and runs the whole
# suite. Safe to run again: installed pieces are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=()
command -v chromium >/dev/null && command -v chromedriver >/dev/null || packages+=(chromium chromium-driver)
command -v redis-server >/dev/null || packages+=(redis-server)
for fonts in fonts-noto-cjk fonts-noto-core; do dpkg -s "$fonts" >/dev/null 2>&1 || packages+=("$fonts"); done
if [ ${#packages[@]} -gt 0 ]; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}" >/dev/null
fi
python3 -m pip install -q -r requirements-dev.txt
python3 -m pip install -q -r requirements-ray.txt   # Ray Serve, for tests/test_ray_serve.py
python3 -m pytest "$@"
