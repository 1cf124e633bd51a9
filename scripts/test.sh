#!/usr/bin/env bash
# `make test` after the test build: runs every test serially and, meanwhile, builds what comes after
# the tests in the background at the lowest CPU priority.
#
# The suite spends most of its time waiting on real processes (daemons, journald, systemd, PostgreSQL,
# HSM emulators, browsers), so one of the machine's two cores is mostly idle while it runs. The
# release binaries that `make test-deb` needs (and, with CMK_PREBUILD_FUZZ=1 as .ci/run sets it, the
# fuzz targets of `make fuzz-smoke`) are built in that idle time under SCHED_IDLE (`chrt --idle 0`):
# the tests' own processes always get the CPU first. Not `nice -n 19`: SwiftPM's threads set their
# own nice values (-4 and 0 were seen under a `nice -n 19 swift build`), so the compilers ran at
# normal priority; the SCHED_IDLE policy is inherited by every thread and child. The test binary is run directly rather than through
# `swift test --skip-build`, because SwiftPM holds the build directory's lock for as long as its
# command runs, and the release build would wait for the whole suite.
#   scripts/test.sh [arguments for the test binary, e.g. --filter NAME]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH

bin=$(swift build --show-bin-path)
tests="$bin/cmk-syncerPackageTests.xctest"
[[ -x $tests ]] || { echo "test: $tests is missing; run swift build --build-tests first" >&2; exit 1; }

logs=.build/background
mkdir -p "$logs"
background=()
setsid chrt --idle 0 make --no-print-directory release-for-deb >"$logs/release.log" 2>&1 &
background+=("$!:release binaries for make test-deb:$logs/release.log")
if [[ ${CMK_PREBUILD_FUZZ:-0} == 1 ]]; then
    setsid chrt --idle 0 bash Fuzz/run.sh --build-only >"$logs/fuzz.log" 2>&1 &
    background+=("$!:fuzz targets for make fuzz-smoke:$logs/fuzz.log")
fi
# A failed or interrupted run does not leave the background builds running (each has its own
# process group, setsid, so the compilers under it end too).
trap 'for job in "${background[@]}"; do kill -- "-${job%%:*}" 2>/dev/null || true; done' EXIT

status=0
"$tests" --testing-library swift-testing --no-parallel "$@" || status=$?

for job in "${background[@]}"; do
    IFS=: read -r pid what log <<<"$job"
    started=$(date +%s)
    if ! wait "$pid"; then
        echo "test: the background build of the $what failed (log: $log):" >&2
        tail -30 "$log" >&2
        status=1
    else
        echo "test: the $what were built in the background ($(( $(date +%s) - started )) s waited after the tests)"
    fi
done
trap - EXIT
exit $status
