#!/usr/bin/env bash
# What `npm run test:hosts` needs beyond `npm test`'s: root, and iproute2's `ip` (Debian's
# iproute2) for the network namespaces; etcdctl comes from test/grpc/install-etcd-client.sh.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "test:hosts makes network namespaces: run it as root" >&2
  exit 1
fi
if ! command -v ip >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq iproute2 >/dev/null
fi
bash "$(dirname "$0")/../grpc/install-etcd-client.sh"
