#!/usr/bin/env bash
# Set up netdoctor on a fresh Debian/Ubuntu machine: system tools the probe reads with, and a
# virtualenv (.venv) holding netdoctor and its test dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS="iproute2 iptables nftables conntrack libpcap0.8 dnsmasq-base iputils-ping procps openssh-client python3-venv"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing system packages:$missing" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup: missing system packages:$missing (install them as root; continuing)" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
log=$(mktemp)
if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e '.[test]'; } >"$log" 2>&1; then
  cat "$log" >&2; rm -f "$log"
  echo "setup: installing the Python packages failed (output above)" >&2
  exit 1
fi
rm -f "$log"
echo "setup: ready (.venv/bin/netdoctor)" >&2
