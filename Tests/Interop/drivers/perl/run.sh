#!/usr/bin/env bash
# Perl driver (libmongodb-perl 2.2 from Debian) interop program; see interop.pl.
set -euo pipefail
cd "$(dirname "$0")"
: "${MONGODB_URI:?MONGODB_URI must be set}" "${STRATOS_DB:?STRATOS_DB must be set}"
exec perl interop.pl
