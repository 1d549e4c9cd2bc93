#!/usr/bin/env bash
# Builds and runs the Go-driver interop program against MONGODB_URI.
# The driver is Debian's golang-mongodb-mongo-driver-dev (go.mongodb.org/mongo-driver 1.8) under
# /usr/share/gocode, built in GOPATH mode: no module proxy is needed or contacted.
# Everything built goes to $WORK_DIR (a cold build takes ~8-10 s on 2 cores).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${MONGODB_URI:?MONGODB_URI must be set}" "${STRATOS_DB:?STRATOS_DB must be set}"
WORK_DIR="${WORK_DIR:-$(mktemp -d)}"
if [ ! -d /usr/share/gocode/src/go.mongodb.org/mongo-driver/mongo ]; then
  echo "FAIL: go.mongodb.org/mongo-driver is not under /usr/share/gocode/src (install golang-mongodb-mongo-driver-dev)" >&2
  exit 1
fi
SRC="$WORK_DIR/gopath/src/stratosinterop"
mkdir -p "$SRC"
cp "$HERE/main.go" "$SRC/main.go"
export GO111MODULE=off GOFLAGS= GOPROXY=off GOPATH="$WORK_DIR/gopath:/usr/share/gocode"
export GOCACHE="${STRATOS_GOCACHE:-$WORK_DIR/gocache}"   # STRATOS_GOCACHE: optional reusable cache
start=$(date +%s%N)
(cd "$SRC" && go build -o "$WORK_DIR/interop-go" .)
echo "built in $(( ($(date +%s%N) - start) / 1000000 )) ms with $(go version | cut -d' ' -f3)"
exec "$WORK_DIR/interop-go"
