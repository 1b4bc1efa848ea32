#!/usr/bin/env bash
# Seed each fuzz target's corpus with the real fixtures (run from scanner-ami/fuzz).
set -euo pipefail
cd "$(dirname "$0")"
fx=../../../shared/fixtures
mkdir -p corpus/{partition_table,disk_scan,rpm_header,rpm_bdb,rpm_ndb,dpkg_status,apk_installed,btrfs,lvm,xfs,xfs_log}
cp "$fx/go-rpmdb/libuuid-bdb/Packages" corpus/rpm_bdb/libuuid
cp "$fx/go-rpmdb/sle15-bci-ndb/Packages.db" corpus/rpm_ndb/sle15
cp "$fx/trivy/dpkg/status" corpus/dpkg_status/ubuntu
for f in "$fx"/syft/debian/status.d/*; do cp "$f" "corpus/dpkg_status/$(basename "$f")"; done
cp "$fx/trivy/apk/installed" corpus/apk_installed/trivy
# The demo disk's first 64 KiB (GPT + start of EFI) and a small bare ext4 image.
head -c 65536 ../../tests/data/demo/demo-disk.img > corpus/partition_table/demo-gpt
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/etc" "$tmp/root/var/lib/dpkg"
printf 'ID=debian\nVERSION_ID=12\n' > "$tmp/root/etc/os-release"
printf 'Package: a\nStatus: install ok installed\nVersion: 1:2-3\n\n' > "$tmp/root/var/lib/dpkg/status"
truncate -s 256K "$tmp/e.img"
mkfs.ext4 -q -F -b 1024 -N 32 -O ^has_journal,^resize_inode -d "$tmp/root" "$tmp/e.img"
cp "$tmp/e.img" corpus/disk_scan/tiny-ext4
# A small btrfs (mixed block groups allow 16 MiB), cut after its last chunk (about 8 MiB).
ln -s os-release "$tmp/root/etc/link"
truncate -s 16M "$tmp/b.img"
mkfs.btrfs -q --mixed --rootdir "$tmp/root" "$tmp/b.img" >/dev/null
end=$(btrfs inspect-internal dump-tree -t chunk "$tmp/b.img" |
    awk '/ length /{len=$2} /stripe 0 devid/{e=$6+len; if (e>m) m=e} END{print m}')
truncate -s "$end" "$tmp/b.img"
cp "$tmp/b.img" corpus/btrfs/mixed-small
# XFS: the first 256 KiB of a small populated image (the xfs target reads the rest as zeros;
# mkfs.xfs allows under 300 MiB only to fstests, which it recognises by these variables), and the
# first 64 blocks of its (clean) log for the log-replay target.
python3 ../../../shared/tools/mkproto.py "$tmp/root" > "$tmp/proto" 2>/dev/null
for v in 5 4; do
    crc=1; [ "$v" = 4 ] && crc=0
    truncate -s 32M "$tmp/x$v.img"
    TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f -m crc=$crc -d agcount=2 -p "$tmp/proto" "$tmp/x$v.img"
    head -c 262144 "$tmp/x$v.img" > "corpus/xfs/small-v$v"
done
logstart=$(xfs_db -r -c 'sb 0' -c 'p logstart' "$tmp/x5.img" | awk '{print $3}')
dd if="$tmp/x5.img" of=corpus/xfs_log/clean-log bs=4096 skip="$logstart" count=64 status=none
# rpm header blobs: one per sqlite row of the mariner fixture.
python3 - "$fx/go-rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite" corpus/rpm_header <<'PY'
import sqlite3, sys, shutil, tempfile, os
d = tempfile.mkdtemp(); p = os.path.join(d, "db"); shutil.copy(sys.argv[1], p)
for i, (blob,) in enumerate(sqlite3.connect(p).execute("select blob from Packages limit 20")):
    open(os.path.join(sys.argv[2], f"mariner-{i}"), "wb").write(blob)
PY
echo "corpus seeded"
