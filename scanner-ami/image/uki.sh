#!/usr/bin/env bash
# Make the scanner image's EFI System Partition: a FAT32 filesystem image holding one Unified Kernel
# Image at \EFI\BOOT\BOOTX64.EFI (the removable-media path every UEFI firmware boots without a boot
# entry), without mounting anything (scanner-ami/image/README.md, "Boot").
#
#   uki.sh --kernel FILE --initrd FILE --os-release FILE --cmdline STRING --esp OUT [--esp-mib N]
#          [--uki OUT.efi]
#
# The UKI is systemd-boot's EFI stub (Debian 12: package systemd-boot-efi,
# /usr/lib/systemd/boot/efi/linuxx64.efi.stub; override with AGENTLESS_EFI_STUB) with the kernel,
# the initramfs, the kernel command line and os-release added as PE sections by binutils' objcopy
# (bookworm has no ukify: systemd-ukify exists from systemd 253 on). The stub loads .linux with
# .initrd and .cmdline; the firmware needs nothing else: no GRUB, no boot loader, no boot entry.
# The FAT filesystem: mkfs.vfat (dosfstools) with a random volume id and no label; the file is
# written into it by mtools' mcopy.
#
# Used by build.sh, and by scanner-ami/tests/agent/scanner_image.rs to make a test-only ESP whose
# command line has diagnostics appended. Prints the UKI's size in bytes on stdout.
set -euo pipefail

die() {
    printf '[uki.sh] ERROR: %s\n' "$*" >&2
    exit 1
}

KERNEL=""
INITRD=""
OSREL=""
CMDLINE=""
ESP=""
ESP_MIB=""
UKI=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --kernel | --initrd | --os-release | --cmdline | --esp | --esp-mib | --uki)
            [ "$#" -ge 2 ] || die "$1 needs a value"
            case "$1" in
                --kernel) KERNEL="$2" ;;
                --initrd) INITRD="$2" ;;
                --os-release) OSREL="$2" ;;
                --cmdline) CMDLINE="$2" ;;
                --esp) ESP="$2" ;;
                --esp-mib) ESP_MIB="$2" ;;
                --uki) UKI="$2" ;;
            esac
            shift 2
            ;;
        -h | --help)
            sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
for f in "$KERNEL" "$INITRD" "$OSREL"; do
    [ -f "$f" ] || die "--kernel, --initrd and --os-release need existing files"
done
[ -n "$CMDLINE" ] || die "--cmdline is required"
[ -n "$ESP" ] || die "--esp OUT is required"
STUB="${AGENTLESS_EFI_STUB:-/usr/lib/systemd/boot/efi/linuxx64.efi.stub}"
[ -f "$STUB" ] || die "no EFI stub at $STUB (apt-get install systemd-boot-efi)"
for t in objcopy:binutils objdump:binutils mkfs.vfat:dosfstools mcopy:mtools mmd:mtools; do
    command -v "${t%%:*}" >/dev/null 2>&1 || die "${t%%:*} not found (apt-get install ${t#*:})"
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%s' "$CMDLINE" >"$work/cmdline"

# Each added section starts page-aligned after the stub's last section (in this order; .linux
# last). Its virtual address is what the stub finds it by.
align=4096
end=0
while read -r size vma; do
    [ $((0x$vma + 0x$size)) -le "$end" ] || end=$((0x$vma + 0x$size))
done < <(objdump -h "$STUB" | awk 'NF == 7 && $1 ~ /^[0-9]+$/ { print $3, $4 }')
[ "${end:-0}" -gt 0 ] || die "cannot read the sections of $STUB"
args=()
next=$(((end + align - 1) / align * align))
for s in osrel:"$OSREL" cmdline:"$work/cmdline" initrd:"$INITRD" linux:"$KERNEL"; do
    name=".${s%%:*}"
    file="${s#*:}"
    args+=(--add-section "$name=$file" --change-section-vma "$(printf '%s=0x%x' "$name" "$next")")
    size="$(stat -Lc %s "$file")"
    next=$(((next + size + align - 1) / align * align))
done
objcopy "${args[@]}" "$STUB" "$work/BOOTX64.EFI"
uki_bytes="$(stat -c %s "$work/BOOTX64.EFI")"

# FAT32 needs 65525 clusters at least: 64 MiB of 512-byte clusters is enough; more when the UKI
# needs it.
min_mib=$((uki_bytes / 1048576 + 16))
[ "$min_mib" -ge 64 ] || min_mib=64
ESP_MIB="${ESP_MIB:-$min_mib}"
[ "$ESP_MIB" -ge "$min_mib" ] || die "--esp-mib $ESP_MIB is too small for a ${uki_bytes}-byte UKI (>= $min_mib)"
rm -f "$ESP"
volid="$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')"
mkfs.vfat -F 32 -s 1 -S 512 -i "$volid" -C "$ESP" $((ESP_MIB * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$ESP" ::/EFI ::/EFI/BOOT
mcopy -i "$ESP" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
if [ -n "$UKI" ]; then
    cp -f "$work/BOOTX64.EFI" "$UKI"
fi
printf '%s\n' "$uki_bytes"
