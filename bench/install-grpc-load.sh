#!/usr/bin/env bash
# Builds bench/grpc-load (the gRPC load generator, on etcd's own Go client, clientv3 3.4) into
# .qkv-tmp/bin/qkv-grpc-load. Go modules are not used: the build runs in GOPATH mode over
# Debian's Go sources (golang-etcd-server-dev puts etcd 3.4's clientv3 and its dependencies
# under /usr/share/gocode). Installs golang-go and golang-etcd-server-dev when missing, and
# rebuilds only when main.go is newer than the binary. Prints the Go version and the binary.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/bench/grpc-load/main.go"
BIN="$ROOT/.qkv-tmp/bin/qkv-grpc-load"
GOCODE=/usr/share/gocode
need=()
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -d "$GOCODE/src/go.etcd.io/etcd/clientv3" ] || need+=(golang-etcd-server-dev)
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  echo "installing ${need[*]} (apt-get)" >&2
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
go version
if [ ! -x "$BIN" ] || [ "$SRC" -nt "$BIN" ]; then
  # GOPATH mode: a private GOPATH holds the program (a package path of its own), Debian's tree
  # the imports. GOFLAGS=-mod=mod would reach for the module proxy, so it is cleared.
  work="$ROOT/.qkv-tmp/gopath"
  mkdir -p "$work/src/qkv-grpc-load" "$(dirname "$BIN")"
  cp "$SRC" "$work/src/qkv-grpc-load/main.go"
  (
    cd "$work/src/qkv-grpc-load"
    GO111MODULE=off GOFLAGS= GOPATH="$work:$GOCODE" GOCACHE="$ROOT/.qkv-tmp/gocache" go build -o "$BIN" .
  )
  echo "built $BIN" >&2
fi
echo "$BIN"
