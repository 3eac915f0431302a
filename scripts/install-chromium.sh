#!/usr/bin/env bash
# Chromium from Debian for the dashboard's browser tests (tests/dashboard; Playwright drives it
# with executable_path: its own browser download cannot work offline). Idempotent.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then  # a developer machine: the browser tests skip, saying why
  echo "install-chromium: Chromium is missing; installing it needs root" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
echo "install-chromium: $(/usr/bin/chromium --version)"
