#!/usr/bin/env bash
# Builds the libmongoc interop program into $WORK_DIR and runs it against $MONGODB_URI.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
: "${MONGODB_URI:?MONGODB_URI must be set}" "${STRATOS_DB:?STRATOS_DB must be set}"
WORK_DIR="${WORK_DIR:-$(mktemp -d)}"
mkdir -p "$WORK_DIR"
gcc -std=gnu11 -O0 -g -Wall -Wno-deprecated-declarations -o "$WORK_DIR/interop-c" "$HERE/interop.c" \
    $(pkg-config --cflags --libs libmongoc-1.0) -lm
echo "built with libmongoc $(pkg-config --modversion libmongoc-1.0)"
exec "$WORK_DIR/interop-c"
