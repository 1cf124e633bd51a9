#!/bin/bash
# A real systemd-journald for tests, in private PID and mount namespaces with tmpfs on /run
# (so /run/systemd/journal and /run/log are private) and on /var/log; the catalog database the
# host's journalctl reads is replaced, inside the namespace only, by one compiled from our catalog.
#   journal-sandbox.sh WORKDIR CMK_SYNCER_BINARY CATALOG_FILE
# WORKDIR must hold good.yaml, missing-key.yaml and bad.yaml. Writes to WORKDIR:
#   catalog-list.txt, catalog-dump.txt   journalctl --root … --list-catalog / --dump-catalog
#   run-*.status                         exit status of each daemon run
#   entries.json                         journalctl -o json (one object per line) for cmk-syncer
#   explained.txt                        journalctl -x for cmk-syncer
set -euo pipefail
work=$1 binary=$2 catalog=$3

case ${4:-outer} in
outer)
    root=$work/root
    mkdir -p "$root/usr/lib/systemd/catalog" "$root/var/lib/systemd/catalog"
    cp "$catalog" "$root/usr/lib/systemd/catalog/cmk-syncer.catalog"
    journalctl --root="$root" --update-catalog
    journalctl --root="$root" --list-catalog >"$work/catalog-list.txt"
    journalctl --root="$root" --dump-catalog >"$work/catalog-dump.txt"
    exec unshare --fork --pid --mount --mount-proc --propagation private "$0" "$work" "$binary" "$catalog" inner
    ;;
inner)
    mount -t tmpfs -o mode=0755 tmpfs /run
    mount -t tmpfs -o mode=0755 tmpfs /var/log
    mount --bind "$work/root/var/lib/systemd/catalog/database" /var/lib/systemd/catalog/database
    mkdir -p /run/systemd/journal /run/log
    /lib/systemd/systemd-journald >"$work/journald.log" 2>&1 &
    journald=$!
    for _ in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
    [ -S /run/systemd/journal/socket ] || { echo "journald did not start:"; cat "$work/journald.log"; exit 1; } >&2

    run() { # name, args…
        local name=$1; shift
        set +e; "$binary" "$@" >"$work/run-$name.out" 2>&1; echo $? >"$work/run-$name.status"; set -e
    }
    run good run --once --log-format journal --config "$work/good.yaml"
    run missing-key run --once --log-format journal --config "$work/missing-key.yaml"
    # The production path for an invalid configuration: stderr connected to the journal
    # ($JOURNAL_STREAM, as systemd sets it), log format auto.
    set +e
    systemd-cat --identifier=cmk-syncer-stderr bash -c \
        'export JOURNAL_STREAM=$(stat -L -c "%d:%i" /proc/self/fd/2); exec "$0" run --once --config "$1"' \
        "$binary" "$work/bad.yaml"
    echo $? >"$work/run-bad.status"
    set -e
    journalctl --sync 2>/dev/null || sleep 1
    journalctl --no-pager -o json SYSLOG_IDENTIFIER=cmk-syncer >"$work/entries.json"
    SYSTEMD_COLORS=0 journalctl --no-pager -x -o short-monotonic SYSLOG_IDENTIFIER=cmk-syncer >"$work/explained.txt"
    kill "$journald"
    wait "$journald" || true
    ;;
esac
