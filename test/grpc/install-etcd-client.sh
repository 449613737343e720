#!/usr/bin/env bash
# Installs the real etcdctl and etcd 3.4 (Debian's etcd-client and etcd-server packages) that
# the gRPC compatibility suite (test/grpc) runs against qkv and compares with, when missing.
set -euo pipefail
if command -v etcdctl >/dev/null 2>&1 && command -v etcd >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq etcd-client etcd-server >/dev/null
# The server package may enable a system service; the tests start their own etcd on loopback.
# Print the versions without a pipe into head: head closing the pipe early kills the writer
# with SIGPIPE (exit 141), which pipefail turns into a failed install.
versions="$(etcdctl version)"
echo "${versions%%$'\n'*}"
versions="$(etcd --version)"
echo "${versions%%$'\n'*}"
