#!/usr/bin/env bash
# The main job on a machine with no cluster: build the built-in lab (a 3-node cluster dataplane
# in network namespaces), break it the way real clusters break, diagnose it with
# `netdoctor check --all`, and tear it down again, also when interrupted. Needs root.
#   FAULT=vxlan-blocked ./scripts/demo.sh     (netdoctor lab faults lists them)
set -uo pipefail
cd "$(dirname "$0")/.."
ND=.venv/bin/netdoctor
FAULT=${FAULT:-nodeport-rules-missing}
NAME=${LAB_NAME:-demo}

if [ "$(id -u)" != 0 ]; then echo "demo: the lab needs root (network namespaces)" >&2; exit 3; fi
trap '$ND lab down --name "$NAME" >/dev/null 2>&1' EXIT INT TERM
$ND lab up --name "$NAME" || exit 3
$ND lab fault "$FAULT" --name "$NAME" || exit 3
echo
$ND check --all --lab "$NAME" "$@"
rc=$?
echo
echo "demo: the lab had fault '$FAULT' injected; netdoctor exited $rc (1 = it found a failing finding)." >&2
exit $rc
