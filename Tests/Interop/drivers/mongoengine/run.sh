#!/usr/bin/env bash
# mongoengine (PyPI) on pymongo: the 12 interop checks through mongoengine's Document/QuerySet API.
set -euo pipefail
cd "$(dirname "$0")"
: "${MONGODB_URI:?MONGODB_URI is not set}" "${STRATOS_DB:?STRATOS_DB is not set}"
python3 -c 'import mongoengine, pymongo; print("mongoengine", mongoengine.__version__, "on pymongo", pymongo.version)'
# -B: write no __pycache__ into the repository.
exec python3 -B app.py
