#!/usr/bin/env bash
# Builds the fuzz targets (libFuzzer + AddressSanitizer) and runs each for SECONDS seconds on its
# committed corpus (Fuzz/Corpus/<target>) plus a working corpus under .build-fuzz, then prints a
# line per target: executions, coverage (libFuzzer's cov/ft), corpus units and findings.
# Exits non-zero on any finding (a crash, a sanitizer report, a timeout, an out-of-memory) and
# keeps the input in .build-fuzz/findings/<target>/. docs/testing/fuzzing.md.
#   Fuzz/run.sh [SECONDS] [TARGET...]      (make fuzz FUZZ_SECONDS=…, make fuzz-smoke)
#   Fuzz/run.sh --build-only               (scripts/test.sh builds the targets while the tests run)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
BUILD_ONLY=0
if [[ ${1:-} == --build-only ]]; then BUILD_ONLY=1; shift; fi
SECONDS_PER_TARGET=${1:-60}
shift || true
SCRATCH=.build-fuzz
# Not `--sanitize=fuzzer --sanitize=address`: SwiftPM hands swiftc the two in a random order and the
# driver keeps only the last, so half the builds had Swift code without coverage (libFuzzer: "Is the
# code instrumented for coverage?") or without ASan, and every order change rebuilt everything.
# `--sanitize=fuzzer` alone (SwiftPM then links libFuzzer's main) and one combined swiftc flag after it
# are deterministic; C and C++ get ASan from -Xcc/-Xcxx.
FLAGS=(--package-path Fuzz --scratch-path "$SCRATCH" --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
       -Xcc -fsanitize=address -Xcxx -fsanitize=address)

# The same dependency versions as the main build when it has resolved them. Copied once: SwiftPM
# rewrites the copy for this package (its own origin hash), and copying it again on every run made it
# resolve, and rebuild everything, again.
if [[ -f Package.resolved && ! -f Fuzz/Package.resolved ]]; then cp Package.resolved Fuzz/Package.resolved; fi
started=$(date +%s)
mkdir -p "$SCRATCH"
if ! swift build "${FLAGS[@]}" >"$SCRATCH/build.log" 2>&1; then
    grep -v 'Cannot export local symbol' "$SCRATCH/build.log" | tail -40 >&2
    echo "fuzz: the build failed (log: $SCRATCH/build.log)" >&2
    exit 1
fi
echo "fuzz: built in $(( $(date +%s) - started )) s"
if ((BUILD_ONLY)); then exit 0; fi
bin=$(swift build "${FLAGS[@]}" --show-bin-path)

if [[ $# -gt 0 ]]; then targets=("$@"); else
    mapfile -t targets < <(sed -n 's/.*executableTarget(name: "\(fuzz-[a-z0-9-]*\)".*/\1/p' Fuzz/Package.swift)
fi

# The Swift runtime's backtracer would wait on a crashing fuzz target; libFuzzer reports instead.
# Leak checking is off: the Swift runtime and concurrency pool keep allocations for the process's life.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1

failed=0
printf '%-22s %12s %8s %8s %8s %9s\n' target executions cov ft corpus findings
for target in "${targets[@]}"; do
    name=${target#fuzz-}
    work="$SCRATCH/corpus/$name" findings="$SCRATCH/findings/$name" log="$SCRATCH/logs/$name.log"
    mkdir -p "$work" "$findings" "$(dirname "$log")"
    dict=()
    case $name in
        configuration) dict=(-dict=Fuzz/Dictionaries/yaml.dict) ;;
        keyring|security-record|azure-bodies|vault-log|vault-requests|local-vault|pkcs11-record) dict=(-dict=Fuzz/Dictionaries/json.dict) ;;
        event-receiver) dict=(-dict=Fuzz/Dictionaries/http.dict) ;;
    esac
    before=$(ls "$findings" | wc -l)
    status=0
    timeout --kill-after=10 $((SECONDS_PER_TARGET + 120)) "$bin/$target" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -detect_leaks=0 \
        -timeout=10 -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$findings/" "${dict[@]}" "$work" "Fuzz/Corpus/$name" >"$log" 2>&1 || status=$?
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    units=$(( $(ls "$work" | wc -l) + $(ls "Fuzz/Corpus/$name" | wc -l) ))
    found=$(( $(ls "$findings" | wc -l) - before ))
    if [[ $status -ne 0 && $found -eq 0 ]]; then found=1; fi
    printf '%-22s %12s %8s %8s %8s %9s\n' "$name" "${executions:-?}" "${cov:-?}" "${ft:-?}" "$units" "$found"
    if [[ $found -ne 0 ]]; then
        failed=1
        echo "fuzz: $name: finding (exit $status); input in $findings/, log $log:" >&2
        grep -E -A12 '^==[0-9]+==ERROR|Fatal error|SUMMARY|deadly signal|timeout' "$log" | head -40 >&2 || true
    fi
done
exit $failed
