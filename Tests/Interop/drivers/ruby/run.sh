#!/usr/bin/env bash
# Ruby driver (ruby-mongo 2.5 from Debian) interop program; see interop.rb.
set -euo pipefail
cd "$(dirname "$0")"
: "${MONGODB_URI:?MONGODB_URI must be set}" "${STRATOS_DB:?STRATOS_DB must be set}"
exec ruby -W0 interop.rb
