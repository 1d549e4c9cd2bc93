#!/usr/bin/env bash
# Debian's prometheus-mongodb-exporter (dcu/mongodb_exporter, mgo driver) against StratosDB:
# runs the binary directly (not the Debian service) on a free loopback port, scrapes /metrics and checks it.
set -euo pipefail
cd "$(dirname "$0")"
: "${MONGODB_URI:?MONGODB_URI is not set}" "${STRATOS_DB:?STRATOS_DB is not set}"
: "${WORK_DIR:=$(mktemp -d)}"
export WORK_DIR
test -x /usr/bin/prometheus-mongodb-exporter || { echo "FAILED: /usr/bin/prometheus-mongodb-exporter is missing" >&2; exit 1; }
echo "prometheus-mongodb-exporter $(dpkg-query -W -f='${Version}' prometheus-mongodb-exporter 2>/dev/null || echo '?')"
# check_exporter.py starts the exporter, relays its connection to log the commands, and always kills it.
exec timeout 60 python3 -B check_exporter.py
