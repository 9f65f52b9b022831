#!/usr/bin/env bash
# The mesh tests and `npm run bench -- --scope mesh` start real nats-server processes: install
# Debian's package when it is missing (needs root and apt). Exits 0 when nats-server is there.
set -euo pipefail
if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || [ -n "${NATS_SERVER:-}" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "nats-server is missing and this is not root on a Debian-like system: install it (apt-get install nats-server, or a release from nats.io) or set NATS_SERVER" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends nats-server >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y --no-install-recommends nats-server >/dev/null; }
# Debian enables a system service with the package; the tests start their own servers.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nats-server >/dev/null 2>&1 || true; fi
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]
