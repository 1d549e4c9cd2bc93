#!/usr/bin/env bash
# Installs the system libraries StratosDB links against, only when one is missing.
set -euo pipefail
needed=()
for package in libsqlite3-dev liblmdb-dev libsodium-dev libpcre2-dev libintelrdfpmath-dev libicu-dev libstemmer-dev libssl-dev pkg-config openssl; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || needed+=("$package")
done
if [ ${#needed[@]} -eq 0 ]; then
    exit 0
fi
echo "Installing missing system packages: ${needed[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${needed[@]}"
