#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# systemd-analyze verify on the shipped amberd.service, as make check runs
# it: its ExecStart lines point at the built amberd and its Documentation=
# man pages are found on MANPATH. Any complaint, even a warning, fails.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/man/man5" "$tmp/man/man8"
cp "$top/userspace/amberd.8" "$tmp/man/man8/"
cp "$top/userspace/amberd.conf.5" "$tmp/man/man5/"
sed "s|/usr/sbin/amberd|$top/userspace/amberd|g" "$top/userspace/amberd.service" \
	>"$tmp/amberd.service"
rc=0
out=$(cd "$tmp" && MANPATH=$tmp/man systemd-analyze verify ./amberd.service 2>&1) || rc=$?
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
	echo "systemd-analyze verify amberd.service (exit $rc):"
	echo "$out"
	exit 1
fi
