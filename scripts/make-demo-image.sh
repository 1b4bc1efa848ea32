#!/usr/bin/env bash
# Rebuild tests/data/demo/demo-disk.img: the small disk the README's first command scans.
# GPT with a 1 MiB-aligned vfat EFI partition and an ext4 root holding an Ubuntu 18.04
# os-release and Trivy's dpkg status fixture (90 packages; Apache-2.0, see tests/data/demo/README.md).
# Built without mounting: sfdisk + mkfs.vfat + mkfs.ext4 -E offset -d.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/data/demo/demo-disk.img
fixtures=../shared/fixtures
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/etc" "$tmp/root/var/lib/dpkg/info"
cat > "$tmp/root/etc/os-release" <<'OS'
NAME="Ubuntu"
VERSION="18.04.1 LTS (Bionic Beaver)"
ID=ubuntu
ID_LIKE=debian
PRETTY_NAME="Ubuntu 18.04.1 LTS"
VERSION_ID="18.04"
VERSION_CODENAME=bionic
OS
cp "$fixtures/trivy/dpkg/status" "$tmp/root/var/lib/dpkg/status"
rm -f "$out"
truncate -s 12M "$out"
printf 'label: gpt\nlabel-id: 5B0C0A6E-1D7E-4A58-9E0C-0A6E1D7E4A58\nstart=2048, size=2048, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI"\nstart=4096, size=18432, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"\n' \
  | sfdisk -q --no-reread --no-tell-kernel "$out"
truncate -s 1M "$tmp/efi.fat"
mkfs.vfat -n EFI "$tmp/efi.fat" >/dev/null
dd if="$tmp/efi.fat" of="$out" bs=64K seek=1048576 oflag=seek_bytes conv=notrunc status=none
mkfs.ext4 -q -F -E offset=$((4096 * 512)),root_owner=0:0 -U 8a3d9a3c-6b6e-4f55-9d1e-0d7c2f0e5a11 -L root -d "$tmp/root" "$out" 9216k
echo "wrote $out ($(du -h --apparent-size "$out" | cut -f1) apparent, $(du -h "$out" | cut -f1) allocated)"
