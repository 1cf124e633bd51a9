#!/usr/bin/env bash
# `make demo`: a narrated tour of cmk-syncer on a throw-away embedded setup (local vault, one
# account of each of the five kinds). Runs the real daemon and drives it with cmkctl.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(swift build --show-bin-path 2>/dev/null || echo .build/debug)
root=$(mktemp -d /tmp/cmk-demo.XXXXXX)
config=$root/cmk-syncer.yaml
{ echo "state-directory: $root/state"; grep -v '^#' config/embedded.yaml; } > "$config"
chmod 600 "$config"  # whatever the umask: a configuration group or others may write is refused
export CMK_SYNCER_CONFIG=$config

if [ -t 1 ]; then bold=$'\e[1m'; dim=$'\e[2m'; reset=$'\e[0m'; else bold=; dim=; reset=; fi
step=0
say() { step=$((step + 1)); printf '\n%s== %d. %s ==%s\n' "$bold" "$step" "$*" "$reset"; }
run() { printf '%s$ %s%s\n' "$dim" "$*" "$reset"; "$@"; }
expect_fail() { printf '%s$ %s   # expected to fail%s\n' "$dim" "$*" "$reset"; if "$@"; then echo "demo: expected failure did not happen" >&2; exit 1; else echo "(exit $?)"; fi; }
cmkctl() { "$bin/cmkctl" "$@"; }

daemon_pid=
cleanup() {
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; fi
    rm -rf "$root"
}
trap cleanup EXIT

say "Start the daemon on the embedded default (it creates the vault, the key and five accounts)"
"$bin/cmk-syncer" run --config "$config" --log-format text 2>"$root/daemon.log" &
daemon_pid=$!
for _ in $(seq 1 200); do [ -f "$root/state/status.json" ] && break; sleep 0.1; done
run cmkctl status

say "Write data to all five accounts"
for account in files-1 sql-1 audit-1 analytics-1 secrets-1; do
    echo "quarterly numbers for $account" | run cmkctl data put "$account" report.txt -
done
run cmkctl keys list

say "The customer rotates the root key; the syncer rebinds every account"
run cmkctl keys rotate
run cmkctl sync --wait
run cmkctl status

say "Reading old data works and re-encrypts it under the newest DEK (lazy re-encryption)"
run cmkctl accounts show files-1
run cmkctl data get files-1 report.txt
echo "(a second read finds it already under the active DEK: no rewrite)"
run cmkctl data get files-1 report.txt
run cmkctl data sweep sql-1

say "The customer pulls the key: the platform goes dark"
run cmkctl keys pull
cmkctl sync --wait || true
run cmkctl status || true
expect_fail cmkctl data get sql-1 report.txt

say "The customer restores the key: the platform comes back without a ticket"
run cmkctl keys restore
run cmkctl sync --wait
run cmkctl status
run cmkctl data get sql-1 report.txt

say "Everything that happened is in the tamper-evident security log"
run cmkctl audit list
run cmkctl audit verify

say "Done. The daemon's journal-style log, key events and pass summaries"
# No `| head`: under pipefail a producer cut off early dies of SIGPIPE and fails the demo.
grep -E 'cmk_event=key-|Sync pass finished' "$root/daemon.log" | sed 's/^/    /'
