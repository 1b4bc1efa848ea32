#!/usr/bin/env bash
# Build the scanner image as a raw GPT disk image, without mounting anything
# (scanner-ami/image/README.md):
#
#   1. a Debian bookworm root: `debootstrap --variant=minbase --include=<+packages of packages.list>`
#      from the Debian mirror of this machine's apt sources, cached under $AGENTLESS_CACHE_DIR
#      (default ~/.cache/agentless) by the hash of the suite and packages.list;
#   2. a copy of it (OUT/rootfs), configured by install.sh (the same script the Packer path runs);
#   3. OUT/scanner.img: GPT with the ext4 root (partition 1, filled from OUT/rootfs by
#      `mkfs.ext4 -d`) and an EFI System Partition (partition 2, FAT32 made by uki.sh) whose only
#      file is a Unified Kernel Image at \EFI\BOOT\BOOTX64.EFI: the root's own kernel and
#      initramfs with a fixed command line naming the root by its PARTUUID. UEFI firmware boots it
#      as it is: this image is the AMI (register.sh);
#   4. OUT/vmlinuz, OUT/initrd.img, OUT/BOOTX64.EFI and OUT/build-info.env (kernel command line,
#      identifiers, partition offsets, sizes).
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
# by root), debootstrap, sfdisk, mkfs.ext4, systemctl, and uki.sh's objcopy, mkfs.vfat, mtools and
# systemd-boot-efi's stub. Prints OUT/build-info.env's path on stdout.
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
            sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[ -x "$AGENT" ] || die "no scanner-agent binary at $AGENT (cargo build --release -p scanner-ami, or --agent FILE)"
is_root || die "build.sh needs root: debootstrap chroots, and the image's files must be owned by root"
ensure_tools debootstrap:debootstrap sfdisk:fdisk mkfs.ext4:e2fsprogs e2fsck:e2fsprogs systemctl:systemd \
    objcopy:binutils mkfs.vfat:dosfstools mcopy:mtools
[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] || [ -n "${AGENTLESS_EFI_STUB:-}" ] || apt_install systemd-boot-efi
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
# the scanner root's identifiers (a duplicate PARTUUID can make the initramfs mount the wrong root:
# README.md, "Identifiers"). The boot path names the root by its PARTUUID only (the UKI's command
# line, fstab); nothing searches by a label or a filesystem UUID.
PARTUUID="$(cat /proc/sys/kernel/random/uuid)"
FS_UUID="$(cat /proc/sys/kernel/random/uuid)"
ESP_PARTUUID="$(cat /proc/sys/kernel/random/uuid)"
DISK_GUID="$(cat /proc/sys/kernel/random/uuid)"
printf '# agentless scanner (scanner-ami/image/build.sh)\nPARTUUID=%s / ext4 defaults,errors=remount-ro 0 1\n' \
    "$PARTUUID" >"$STAGING/etc/fstab"

"$HERE/install.sh" --root "$STAGING" --agent "$AGENT"

# ------------------------------------------------------------------ 3. boot files: the UKI
kernel="$(find "$STAGING/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)"
[ -n "$kernel" ] || die "no kernel in $STAGING/boot"
kver="${kernel##*/vmlinuz-}"
[ -f "$STAGING/boot/initrd.img-$kver" ] || die "no initrd.img-$kver in $STAGING/boot"
cp -f "$kernel" "$OUT/vmlinuz"
cp -f "$STAGING/boot/initrd.img-$kver" "$OUT/initrd.img"
# The fixed kernel command line (README.md, "Boot"): the root by our random PARTUUID only;
# gpt-auto and RAID autodetection off; panic=0: the initramfs never offers a shell on the (EC2
# serial) console when it cannot find the root, it waits (the orchestrator terminates the
# instance at the job's deadline); lockdown=integrity: no unsigned kernel code, /dev/mem, kexec.
CMDLINE="root=PARTUUID=$PARTUUID ro console=ttyS0,115200n8 systemd.gpt_auto=0 rd.systemd.gpt_auto=0 raid=noautodetect panic=0 lockdown=integrity"
ESP_IMG="$OUT/esp.img"
t0="$(now_s)"
uki_bytes="$("$HERE/uki.sh" --kernel "$OUT/vmlinuz" --initrd "$OUT/initrd.img" \
    --os-release "$STAGING/usr/lib/os-release" --cmdline "$CMDLINE" --esp "$ESP_IMG" --uki "$OUT/BOOTX64.EFI")"
esp_mib=$(($(stat -c %s "$ESP_IMG") / 1048576))
log "UKI (${uki_bytes} bytes) and ESP (${esp_mib} MiB) in $(elapsed "$t0") s"

# ------------------------------------------------------------------ 4. disk image
IMG="$OUT/scanner.img"
rm -f "$IMG"
tree_mib="$(du -sm --apparent-size "$STAGING" | cut -f1)"
# ext4 metadata and slack: a quarter more plus 64 MiB. Layout: 1 MiB (GPT), the root (partition 1),
# the ESP (partition 2), free space up to the last MiB, the backup GPT. The root stays partition 1 at 1 MiB (nvme0n1p1 on the
# scanner); the firmware finds the ESP by its type, wherever it is.
fs_mib=$((tree_mib + tree_mib / 4 + 64))
esp_start_mib=$((1 + fs_mib))
# A whole number of GiB (sparse: the tail costs nothing): an EBS snapshot's volume size is in GiB,
# and the backup GPT must be at the end of the volume the image is written to (register.sh).
total_mib=$(((esp_start_mib + esp_mib + 1 + 1023) / 1024 * 1024))
truncate -s "${total_mib}M" "$IMG"
# Root type: plain "Linux filesystem data", not the discoverable x86-64 root type: nothing should
# auto-discover anything on a scanner.
{
    printf 'label: gpt\nlabel-id: %s\n' "$DISK_GUID"
    printf 'start=2048, size=%s, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=%s, name="scanner-root"\n' \
        "$((fs_mib * 2048))" "$PARTUUID"
    printf 'start=%s, size=%s, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=%s, name="scanner-esp"\n' \
        "$((esp_start_mib * 2048))" "$((esp_mib * 2048))" "$ESP_PARTUUID"
} | sfdisk -q --no-reread --no-tell-kernel "$IMG" >&2
t0="$(now_s)"
mkfs.ext4 -q -F -L scanner-root -U "$FS_UUID" -E offset=1048576 -d "$STAGING" "$IMG" "${fs_mib}M" >&2
e2fsck -fn "$IMG?offset=1048576" >&2 || die "e2fsck found errors in the new filesystem"
log "mkfs.ext4 -d in $(elapsed "$t0") s"
dd if="$ESP_IMG" of="$IMG" bs=1M seek="$esp_start_mib" conv=notrunc,sparse status=none
rm -f "$ESP_IMG"
# What the firmware and the initramfs will see.
sfdisk --dump "$IMG" | grep -qi "uuid=$PARTUUID" || die "the partition table does not carry $PARTUUID"

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
    printf 'UKI=%q\n' "$OUT/BOOTX64.EFI"
    printf 'OS_RELEASE=%q\n' "$STAGING/usr/lib/os-release"
    printf 'CMDLINE=%q\n' "$CMDLINE"
    printf 'PARTUUID=%q\n' "$PARTUUID"
    printf 'FS_UUID=%q\n' "$FS_UUID"
    printf 'ESP_PARTUUID=%q\n' "$ESP_PARTUUID"
    printf 'DISK_GUID=%q\n' "$DISK_GUID"
    printf 'ROOT_OFFSET_MIB=%q\n' 1
    printf 'ROOT_MIB=%q\n' "$fs_mib"
    printf 'ESP_OFFSET_MIB=%q\n' "$esp_start_mib"
    printf 'ESP_MIB=%q\n' "$esp_mib"
    printf 'UKI_BYTES=%q\n' "$uki_bytes"
    printf 'PACKAGES=%q\n' "$npkg"
    printf 'IMAGE_MIB=%q\n' "$total_mib"
    printf 'IMAGE_ALLOCATED_MIB=%q\n' "$alloc_mib"
    printf 'BASE=%q\n' "$BASE"
    printf 'AGENT_VERSION=%q\n' "$("$AGENT" --version)"
} >"$INFO"
log "scanner image: $IMG (${total_mib} MiB, ${alloc_mib} MiB allocated, $npkg packages, kernel $kver) in $(elapsed "$start_all") s"
printf '%s\n' "$INFO"
