#!/bin/bash
# systemd-analyze verify needs ExecStart='s binary at its installed path. In a private mount
# namespace, overlay /usr/bin with a directory holding the binary (cmk-syncer or cmk-vault) so the real unit file can be
# verified unchanged, without installing anything on the host.
#   verify-unit.sh UNIT_FILE BINARY
# Prints verify's stdout and stderr (stderr last, after a "--- stderr" line); exits with its status.
set -euo pipefail
unit=$1 binary=$2
work=$(mktemp -d /tmp/cmk-verify.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/upper" "$work/work"
cp "$binary" "$work/upper/$(basename "$binary")"
exec unshare --mount --propagation private bash -c '
    mount -t overlay overlay -o "lowerdir=/usr/bin,upperdir=$1/upper,workdir=$1/work" /usr/bin
    systemd-analyze verify "$2" >"$1/stdout" 2>"$1/stderr"; status=$?
    cat "$1/stdout"; echo "--- stderr"; cat "$1/stderr"
    exit $status' verify "$work" "$unit"
