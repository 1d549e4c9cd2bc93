#!/usr/bin/env bash
# Runs the ext-mongodb interop program (MongoDB\Driver API) against $MONGODB_URI. Nothing to build.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
: "${MONGODB_URI:?MONGODB_URI must be set}" "${STRATOS_DB:?STRATOS_DB must be set}"
if ! php -r 'exit(extension_loaded("mongodb") ? 0 : 1);'; then
    echo "FAIL: the PHP mongodb extension is not loaded (php -m lacks mongodb)" >&2
    exit 1
fi
echo "PHP $(php -r 'echo PHP_VERSION;'), ext-mongodb $(php -r 'echo phpversion("mongodb");')"
exec php -d display_errors=stderr -d error_reporting=E_ALL "$HERE/interop.php"
