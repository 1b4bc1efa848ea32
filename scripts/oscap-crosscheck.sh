#!/usr/bin/env bash
# Cross-check our baseline against OpenSCAP on the same root tree.
#
# Usage: scripts/oscap-crosscheck.sh [ROOT] [--profile ID] [--datastream FILE]
#   ROOT defaults to the cached debootstrap root (scripts/setup-test-env.sh).
#
# OpenSCAP's SSG content gates on the distribution (CPE): the Ubuntu 22.04 datastream only
# evaluates a root whose /etc/os-release and /etc/lsb-release say Ubuntu 22.04. The script works
# on a *copy* of ROOT, writes those two files there, then runs both scanners on that copy:
#   oscap-chroot COPY xccdf eval --profile cis_level1_server ssg-ubuntu2204-ds.xml
#   scanner-agent scan --root COPY --format baseline
# and joins the results on the SSG rule id. Rule types that OpenSCAP evaluates against the
# *host* in chroot mode (sysctl runtime values, mounted partitions, running services) are flagged
# (docs/references.md, "Baseline checks (CIS)"). Output: a markdown table on stdout (also target/oscap-crosscheck.md).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AGENTLESS_REPO_ROOT"

ROOT=""
PROFILE=xccdf_org.ssgproject.content_profile_cis_level1_server
DS=/usr/share/xml/scap/ssg/content/ssg-ubuntu2204-ds.xml
while [ "$#" -gt 0 ]; do
    case "$1" in
        --profile) PROFILE="$2"; shift 2 ;;
        --datastream) DS="$2"; shift 2 ;;
        -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
        *) ROOT="$1"; shift ;;
    esac
done
ensure_tools oscap-chroot:openscap-utils oscap:openscap-scanner
[ -f "$DS" ] || apt_install ssg-base ssg-debderived ssg-debian ssg-nondebian
[ -f "$DS" ] || die "no SCAP datastream at $DS"
if [ -z "$ROOT" ]; then ROOT="$(ensure_debootstrap_root)"; fi

work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
log "copying $ROOT"
cp -a "$ROOT" "$work/root"
cat > "$work/root/etc/os-release" <<'OS'
NAME="Ubuntu"
VERSION_ID="22.04"
ID=ubuntu
ID_LIKE=debian
PRETTY_NAME="Ubuntu 22.04.3 LTS"
VERSION_CODENAME=jammy
OS
printf 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\nDISTRIB_DESCRIPTION="Ubuntu 22.04.3 LTS"\n' > "$work/root/etc/lsb-release"

log "cargo build -p scanner-ami --bin scanner-agent"
cargo build -q -p scanner-ami --bin scanner-agent
agent="${CARGO_TARGET_DIR:-$AGENTLESS_REPO_ROOT/target}/debug/scanner-agent"
"$agent" scan --root "$work/root" --format baseline > "$work/ours.json" || true
log "oscap-chroot ($PROFILE)"
oscap-chroot "$work/root" xccdf eval --profile "$PROFILE" --results "$work/oscap.xml" "$DS" > "$work/oscap.txt" 2>&1 || true

mkdir -p target
python3 - "$work/ours.json" "$work/oscap.xml" <<'PY' | tee target/oscap-crosscheck.md
import json, sys, xml.etree.ElementTree as ET
ours = json.load(open(sys.argv[1]))
ns = {"x": "http://checklists.nist.gov/xccdf/1.2"}
tree = ET.parse(sys.argv[2])
oscap = {}
for rr in tree.iter("{http://checklists.nist.gov/xccdf/1.2}rule-result"):
    rid = rr.get("idref", "").replace("xccdf_org.ssgproject.content_rule_", "")
    res = rr.find("x:result", ns)
    if res is not None and res.text != "notselected":
        oscap[rid] = res.text
# Rule families OpenSCAP evaluates against the host in chroot mode (docs/references.md).
def host_bound(rid):
    return rid.startswith(("sysctl_", "partition_for_", "service_", "mount_option_", "socket_")) or "_enabled" in rid
rows, agree, disagree, only_ours = [], 0, 0, 0
for f in ours["findings"]:
    sid = f.get("ssg_id")
    if not sid:
        continue
    o = oscap.get(sid)
    if o is None:
        only_ours += 1
        continue
    same = o == f["status"]
    agree += same
    disagree += not same
    note = "host-bound in oscap-chroot" if host_bound(sid) else ""
    rows.append((sid, f["id"], f["status"], o, "yes" if same else "NO", note))
print(f"# Baseline vs OpenSCAP ({len(rows)} rules evaluated by both; {agree} agree, {disagree} differ; {only_ours} of ours not in the profile)\n")
print("| ssg rule | our id | ours | oscap | agree | note |\n|---|---|---|---|---|---|")
for r in sorted(rows, key=lambda r: (r[4] == "yes", r[0])):
    print("| " + " | ".join(r) + " |")
PY
