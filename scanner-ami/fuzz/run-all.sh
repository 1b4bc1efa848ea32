#!/usr/bin/env bash
# Run every fuzz target for SECONDS (default 120), two at a time (2-core machines), and print
# executions, corpus size and crashes per target. Logs in fuzz/logs/. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-120}"
mkdir -p logs
[ -d corpus ] || ./seed-corpus.sh
targets=(partition_table disk_scan rpm_header rpm_bdb rpm_ndb dpkg_status apk_installed btrfs lvm xfs xfs_log apps_binary apps_zip)
run() {
    local t="$1" maxlen=()
    # The XFS targets read their input as the head of a 1 GiB device: 256 KiB covers AG 0's
    # metadata and a log; apps_binary 64 KiB, room for headers, tables and a build info blob
    # (its seeds are cut to that); the others take the length of their largest seed (libFuzzer's
    # default).
    case "$t" in xfs | xfs_log) maxlen=(-max_len=262144) ;; apps_binary) maxlen=(-max_len=65536) ;; esac
    cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 "${maxlen[@]}" \
        -timeout=10 > "logs/$t.log" 2>&1 || true
}
for ((i = 0; i < ${#targets[@]}; i += 2)); do
    run "${targets[$i]}" &
    if [ -n "${targets[$((i + 1))]:-}" ]; then run "${targets[$((i + 1))]}" & fi
    wait
done
printf '%-16s %14s %8s %s\n' target executions corpus result
for t in "${targets[@]}"; do
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo "?")
    corpus=$(find "corpus/$t" -type f | wc -l)
    if grep -q 'ERROR: libFuzzer\|panicked\|SUMMARY:' "logs/$t.log"; then res="CRASH (see logs/$t.log, artifacts/$t)"; else res="no crash"; fi
    printf '%-16s %14s %8s %s\n' "$t" "$execs" "$corpus" "$res"
done
