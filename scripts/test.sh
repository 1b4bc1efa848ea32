#!/usr/bin/env bash
# The project's test command (README, CI): ./scripts/test.sh [TEST-HARNESS-ARGS...]
#
#   1. scripts/setup-test-env.sh  (system tools, .venv, cached debootstrap root)
#   2. cargo fmt --all -- --check
#   3. cargo clippy --workspace --all-targets --locked -- -D warnings
#   4. cargo test --workspace --locked --no-fail-fast -- --include-ignored [TEST-HARNESS-ARGS...]
#      with AGENTLESS_DEBOOTSTRAP_ROOT and AGENTLESS_PYTHON exported.
#
# Every step runs even if an earlier one failed (set TEST_FAIL_FAST=1 to stop
# at the first failure); the exit status is non-zero if any step failed.
# An existing CARGO_TARGET_DIR is respected (cargo reads it itself).
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AGENTLESS_REPO_ROOT"

FAIL_FAST="${TEST_FAIL_FAST:-0}"
declare -a STEP_NAMES=() STEP_RESULTS=() STEP_TIMES=()
overall_start="$(now_s)"
failed=0

# run_step NAME CMD...: run CMD with a header and timing; record the result.
run_step() {
    local name="$1" start rc
    shift
    section "$name"
    printf '+ %s\n' "$*" >&2
    start="$(now_s)"
    set +e
    "$@"
    rc=$?
    set -e
    local t
    t="$(elapsed "$start")"
    STEP_NAMES+=("$name")
    STEP_TIMES+=("$t")
    if [ "$rc" -eq 0 ]; then
        STEP_RESULTS+=("ok")
        log "$name: ok (${t} s)"
    else
        STEP_RESULTS+=("FAILED (exit $rc)")
        log "$name: FAILED with exit $rc (${t} s)"
        failed=1
        if [ "$FAIL_FAST" = 1 ]; then
            summary
            exit "$rc"
        fi
    fi
}

summary() {
    section "summary"
    local i
    for i in "${!STEP_NAMES[@]}"; do
        printf '  %-8s %-18s %7s s\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}" "${STEP_TIMES[$i]}" >&2
    done
    printf '  total wall time: %s s\n' "$(elapsed "$overall_start")" >&2
}

# 1. environment. Its failure is fatal: the tests cannot run meaningfully without it.
section "setup"
setup_start="$(now_s)"
if ! "$AGENTLESS_REPO_ROOT/scripts/setup-test-env.sh"; then
    die "scripts/setup-test-env.sh failed"
fi
# shellcheck source=/dev/null
. "$AGENTLESS_REPO_ROOT/target/test-env.sh"
export AGENTLESS_DEBOOTSTRAP_ROOT AGENTLESS_PYTHON
STEP_NAMES+=("setup")
STEP_RESULTS+=("ok")
STEP_TIMES+=("$(elapsed "$setup_start")")
log "AGENTLESS_DEBOOTSTRAP_ROOT=$AGENTLESS_DEBOOTSTRAP_ROOT"
log "AGENTLESS_PYTHON=$AGENTLESS_PYTHON"
log "CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-<unset: $AGENTLESS_REPO_ROOT/target>}"
log "$(cargo --version) / $(rustc --version)"

# 2-4. the checks
run_step fmt cargo fmt --all -- --check
# Advisories: offline against the RustSec snapshot in ../shared, always. cargo-audit is installed
# into ~/.cargo/bin when missing (once; a compile of a few minutes, then cached). Any advisory
# fails the step unless .cargo/audit.toml ignores it with a written reason.
ADVISORY_DB="$AGENTLESS_REPO_ROOT/../shared/advisory-db"
if [ ! -d "$ADVISORY_DB" ]; then
    log "audit: no advisory database at $ADVISORY_DB"
    exit 1
fi
if ! cargo audit --version >/dev/null 2>&1; then
    log "audit: installing cargo-audit (cargo install cargo-audit --locked; cached in ~/.cargo/bin)"
    run_step audit-install cargo install cargo-audit --locked
fi
run_step audit cargo audit --db "$ADVISORY_DB" --no-fetch --deny warnings
run_step clippy cargo clippy --workspace --all-targets --locked -- -D warnings
# cargo_tests ARGS...: cargo test with its output kept in target/test-output.log, so the totals
# over all test binaries can be printed as the closing line.
TEST_LOG="$AGENTLESS_REPO_ROOT/target/test-output.log"
cargo_tests() {
    mkdir -p "$(dirname "$TEST_LOG")"
    cargo test --workspace --locked --no-fail-fast -- --include-ignored "$@" 2>&1 | tee "$TEST_LOG"
    return "${PIPESTATUS[0]}"
}
run_step test cargo_tests "$@"

summary
if [ "$failed" -ne 0 ]; then
    log "test.sh: FAILED"
else
    log "test.sh: all steps ok"
fi
# The closing line: totals over every test binary (doc-test binaries with 0 tests print the
# last "test result:" line otherwise).
if [ -f "$TEST_LOG" ]; then
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i; if ($(i+1) ~ /^ignored;/) s += $i } }
         END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$TEST_LOG"
fi
exit "$failed"
