#!/usr/bin/env bash
# Installs the real etcd 3.4 (Debian's etcd-server package) for the side-by-side benchmark.
set -euo pipefail
if command -v etcd >/dev/null 2>&1; then
  etcd --version | head -1
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq etcd-server >/dev/null
# The package enables a system service; the benchmark starts its own members on loopback.
etcd --version | head -1
