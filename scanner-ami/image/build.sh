#!/usr/bin/env bash
# Build the scanner image as a raw GPT disk image, without mounting anything
# (scanner-ami/image/README.md):
#
#   1. a Debian bookworm root: `debootstrap --variant=minbase --include=<+packages of packages.list>`
#      from the Debian mirror of this machine's apt sources, cached under $AGENTLESS_CACHE_DIR
#      (default ~/.cache/agentless) by the hash of the suite and packages.list;
#   2. a copy of it (OUT/rootfs), configured by install.sh (the same script the Packer path runs);
#   3. OUT/scanner.img: GPT, one ext4 partition filled from OUT/rootfs by `mkfs.ext4 -d`;
#   4. OUT/vmlinuz, OUT/initrd.img and OUT/build-info.env (kernel command line, identifiers, sizes)
#      for booting it with `qemu-system-x86_64 -kernel`: the image has no boot loader (the AMI is
#      made by the Packer path from Debian's own AMI, which has one).
#
#   build.sh [--agent FILE] [--out DIR]
#
#   --agent FILE  scanner-agent binary (default: target/release/scanner-agent; build it with
#                 `cargo build --release -p scanner-ami`)
#   --out DIR     output directory (default: target/scanner-image); its rootfs/ and scanner.img are
#                 replaced
#
# Environment: AGENTLESS_CACHE_DIR, AGENTLESS_DEBIAN_MIRROR (default: from the apt sources),
# AGENTLESS_DEBIAN_SUITE (bookworm). Needs root (debootstrap chroots; the tree's files are owned
# by root), debootstrap, sfdisk, mkfs.ext4, systemctl. Prints OUT/build-info.env's path on stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../scripts/lib.sh
. "$HERE/../../scripts/lib.sh"
REPO="$AGENTLESS_REPO_ROOT"

AGENT="$REPO/target/release/scanner-agent"
OUT="$REPO/target/scanner-image"
while [ "$#" -gt 0 ]; do
    case "$1" in
        --agent)
            AGENT="${2:?--agent needs a file}"
            shift 2
            ;;
        --out)
            OUT="${2:?--out needs a directory}"
            shift 2
            ;;
        -h | --help)
            sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[ -x "$AGENT" ] || die "no scanner-agent binary at $AGENT (cargo build --release -p scanner-ami, or --agent FILE)"
is_root || die "build.sh needs root: debootstrap chroots, and the image's files must be owned by root"
ensure_tools debootstrap:debootstrap sfdisk:fdisk mkfs.ext4:e2fsprogs e2fsck:e2fsprogs systemctl:systemd
AGENT="$(cd "$(dirname "$AGENT")" && pwd -P)/$(basename "$AGENT")"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd -P)"
start_all="$(now_s)"

# ------------------------------------------------------------------ 1. cached base root
PACKAGES="$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$HERE/packages.list" | sed -n 's/^+//p' | paste -sd, -)"
[ -n "$PACKAGES" ] || die "no +packages in $HERE/packages.list"
# systemd-resolved's postinst turns the chroot's /etc/resolv.conf into a link to a stub that does
# not run there, which breaks debootstrap's configure stage; it comes in the second phase.
LATE="systemd-resolved"
INCLUDE="$(printf '%s\n' "${PACKAGES//,/$'\n'}" | grep -vxF "$LATE" | paste -sd, -)"
key="$(printf '%s\n%s\n' "$AGENTLESS_DEBIAN_SUITE" "$PACKAGES" | sha256sum | cut -c1-12)"
BASE="$AGENTLESS_CACHE_DIR/scanner-image-$AGENTLESS_DEBIAN_SUITE-$key"
MARKER=".agentless-scanner-base-complete"
mkdir -p "$AGENTLESS_CACHE_DIR"
exec {lockfd}>"$AGENTLESS_CACHE_DIR/.scanner-image.lock"
flock "$lockfd"
if [ -f "$BASE/$MARKER" ]; then
    log "base root cached: $BASE"
else
    for stale in "$BASE".tmp.*; do
        [ -e "$stale" ] || continue
        log "removing incomplete $stale"
        _umount_under "$stale"
        rm -rf --one-file-system "$stale"
    done
    mirror="$(debian_mirror "$AGENTLESS_DEBIAN_SUITE")" ||
        die "no Debian mirror for '$AGENTLESS_DEBIAN_SUITE' in the apt sources; set AGENTLESS_DEBIAN_MIRROR"
    tmp="$BASE.tmp.$$"
    dlog="$AGENTLESS_CACHE_DIR/scanner-image-debootstrap.log"
    log "debootstrap --variant=minbase --include=$INCLUDE $AGENTLESS_DEBIAN_SUITE (cold cache: a few minutes)"
    t0="$(now_s)"
    if ! debootstrap --variant=minbase --include="$INCLUDE" "$AGENTLESS_DEBIAN_SUITE" "$tmp" "$mirror" >"$dlog" 2>&1; then
        tail -n 30 "$dlog" >&2
        if [ -f "$tmp/debootstrap/debootstrap.log" ]; then
            cp -f "$tmp/debootstrap/debootstrap.log" "$dlog.inner"
            tail -n 30 "$dlog.inner" >&2
        fi
        _umount_under "$tmp"
        rm -rf --one-file-system "$tmp"
        die "debootstrap failed (log: $dlog)"
    fi
    _umount_under "$tmp"
    # Second phase: every +package debootstrap did not install, with apt inside the chroot (the
    # sources.list debootstrap wrote names the same mirror; no Recommends, as debootstrap).
    missing=()
    for p in ${PACKAGES//,/ }; do
        [ "$(dpkg-query --admindir="$tmp/var/lib/dpkg" -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] ||
            missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "apt-get install ${missing[*]} (in the chroot)"
        if ! chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >>"$dlog" 2>&1; then
            tail -n 30 "$dlog" >&2
            _umount_under "$tmp"
            rm -rf --one-file-system "$tmp"
            die "apt-get install in the chroot failed (log: $dlog)"
        fi
        chroot "$tmp" apt-get clean
    fi
    rm -f "$tmp"/var/cache/apt/archives/*.deb
    date -u +%Y-%m-%dT%H:%M:%SZ >"$tmp/$MARKER"
    mv -T "$tmp" "$BASE"
    log "debootstrap done in $(elapsed "$t0") s: $BASE ($(du -sh "$BASE" | cut -f1))"
fi

# ------------------------------------------------------------------ 2. staging tree
STAGING="$OUT/rootfs"
if [ -e "$STAGING" ]; then
    _umount_under "$STAGING"
    rm -rf --one-file-system "$STAGING"
fi
t0="$(now_s)"
cp -a --reflink=auto "$BASE" "$STAGING"
rm -f "$STAGING/$MARKER"
exec {lockfd}>&-
log "copied the base root in $(elapsed "$t0") s"

# Random per build, never committed: an attached volume copied from another image must not share
# the scanner root's identifiers (a duplicate PARTUUID or UUID can make the boot pick the wrong
# disk: README.md, "Identifiers").
PARTUUID="$(cat /proc/sys/kernel/random/uuid)"
FS_UUID="$(cat /proc/sys/kernel/random/uuid)"
printf '# agentless scanner (scanner-ami/image/build.sh)\nPARTUUID=%s / ext4 defaults,errors=remount-ro 0 1\n' \
    "$PARTUUID" >"$STAGING/etc/fstab"

"$HERE/install.sh" --root "$STAGING" --agent "$AGENT"

# ------------------------------------------------------------------ 3. disk image
IMG="$OUT/scanner.img"
rm -f "$IMG"
tree_mib="$(du -sm --apparent-size "$STAGING" | cut -f1)"
# ext4 metadata and slack: a quarter more plus 64 MiB; 1 MiB before the partition, 1 MiB after it
# for the backup GPT.
fs_mib=$((tree_mib + tree_mib / 4 + 64))
total_mib=$((fs_mib + 2))
truncate -s "${total_mib}M" "$IMG"
# Type: plain "Linux filesystem data", not the discoverable x86-64 root type: nothing should
# auto-discover anything on a scanner.
printf 'label: gpt\nstart=2048, size=%s, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=%s, name="scanner-root"\n' \
    "$((fs_mib * 2048))" "$PARTUUID" | sfdisk -q --no-reread --no-tell-kernel "$IMG" >&2
t0="$(now_s)"
mkfs.ext4 -q -F -L scanner-root -U "$FS_UUID" -E offset=1048576 -d "$STAGING" "$IMG" "${fs_mib}M" >&2
e2fsck -fn "$IMG?offset=1048576" >&2 || die "e2fsck found errors in the new filesystem"
log "mkfs.ext4 -d in $(elapsed "$t0") s"

# ------------------------------------------------------------------ 4. boot files, build info
kernel="$(find "$STAGING/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)"
[ -n "$kernel" ] || die "no kernel in $STAGING/boot"
kver="${kernel##*/vmlinuz-}"
[ -f "$STAGING/boot/initrd.img-$kver" ] || die "no initrd.img-$kver in $STAGING/boot"
cp -f "$kernel" "$OUT/vmlinuz"
cp -f "$STAGING/boot/initrd.img-$kver" "$OUT/initrd.img"
npkg="$(dpkg-query --admindir="$STAGING/var/lib/dpkg" -W -f '${db:Status-Abbrev}\n' | grep -c '^ii' || true)"
alloc_mib="$(du -sm "$IMG" | cut -f1)"
INFO="$OUT/build-info.env"
{
    echo "# Written by scanner-ami/image/build.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); shell syntax."
    printf 'IMAGE=%q\n' "$IMG"
    printf 'ROOTFS=%q\n' "$STAGING"
    printf 'KERNEL=%q\n' "$OUT/vmlinuz"
    printf 'INITRD=%q\n' "$OUT/initrd.img"
    printf 'KERNEL_VERSION=%q\n' "$kver"
    printf 'CMDLINE=%q\n' "root=PARTUUID=$PARTUUID ro console=ttyS0 systemd.gpt_auto=0 rd.systemd.gpt_auto=0 raid=noautodetect"
    printf 'PARTUUID=%q\n' "$PARTUUID"
    printf 'FS_UUID=%q\n' "$FS_UUID"
    printf 'PACKAGES=%q\n' "$npkg"
    printf 'IMAGE_MIB=%q\n' "$total_mib"
    printf 'IMAGE_ALLOCATED_MIB=%q\n' "$alloc_mib"
    printf 'BASE=%q\n' "$BASE"
    printf 'AGENT_VERSION=%q\n' "$("$AGENT" --version)"
} >"$INFO"
log "scanner image: $IMG (${total_mib} MiB, ${alloc_mib} MiB allocated, $npkg packages, kernel $kver) in $(elapsed "$start_all") s"
printf '%s\n' "$INFO"
