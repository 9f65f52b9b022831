#!/usr/bin/env bash
# The HTTP server's tests make a KServe v2 request with the real curl (issue 8): install Debian's
# package when it is missing (needs root and apt). Exits 0 when curl is there.
set -euo pipefail
if command -v curl >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "curl is missing and this is not root on a Debian-like system: install curl" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends curl >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y --no-install-recommends curl >/dev/null; }
command -v curl >/dev/null 2>&1
