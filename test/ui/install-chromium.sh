#!/usr/bin/env bash
# Installs Debian's chromium, the headless browser the web console's test (test/ui) drives with
# playwright-core, when missing. playwright-core never downloads a browser of its own.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
version="$(/usr/bin/chromium --version)"
echo "${version%%$'\n'*}"
