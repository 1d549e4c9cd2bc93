#!/usr/bin/env bash
# Runs the Node.js-driver interop program against MONGODB_URI.
# The driver is Debian's node-mongodb (MongoDB Node.js driver 3.6, with its bundled bson 1.x),
# installed under /usr/share/nodejs; nothing is fetched from npm and nothing needs building.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${MONGODB_URI:?MONGODB_URI must be set}" "${STRATOS_DB:?STRATOS_DB must be set}"
if [ ! -f /usr/share/nodejs/mongodb/package.json ]; then
  echo "FAIL: /usr/share/nodejs/mongodb is missing (install node-mongodb)" >&2
  exit 1
fi
NODE="$(command -v node || command -v nodejs)" || { echo "FAIL: no node binary" >&2; exit 1; }
export NODE_PATH="/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}"
# --no-warnings: driver 3.6 on node >= 14 warns about a circular require and util.deprecate
# fires for collection.count(); neither concerns the server, and the harness shows the last line.
exec "$NODE" --no-warnings "$HERE/interop.js"
