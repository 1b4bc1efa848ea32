#!/usr/bin/env bash
# Seed each fuzz target's corpus with the real fixtures (run from scanner-ami/fuzz).
set -euo pipefail
cd "$(dirname "$0")"
fx=../../../shared/fixtures
mkdir -p corpus/{partition_table,disk_scan,rpm_header,rpm_bdb,rpm_ndb,dpkg_status,apk_installed,btrfs,lvm,xfs,xfs_log,apps_zip}
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
# Java archives: Trivy's war, and the jars of the Syft differential (tests/agent/apps_java.rs).
cp "$fx/trivy/lang/java/maven.war" corpus/apps_zip/maven.war
python3 - "$tmp/jars" <<'PY'
import io, os, sys, zipfile
out = sys.argv[1]; os.makedirs(out)
def jar(entries):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n, c in entries:
            z.writestr(n, c)
    return b.getvalue()
pom = lambda g, a, v: f"groupId={g}\nartifactId={a}\nversion={v}\n"
mf = "Manifest-Version: 1.0\r\nImplementation-Vendor-Id: org.mf\r\nImplementation-Title: mf-lib\r\nImplementation-Version: 3.1\r\n\r\n"
plain = jar([("META-INF/MANIFEST.MF", mf), ("META-INF/maven/org.acme/plain-lib/pom.properties", pom("org.acme", "plain-lib", "1.2.3"))])
shaded = jar([("META-INF/maven/a/b/pom.properties", pom("a", "b", "1")), ("META-INF/maven/c/d/pom.properties", pom("c", "d", "2"))])
war = jar([("WEB-INF/lib/plain-lib-1.2.3.jar", plain), ("WEB-INF/lib/shaded-2.jar", shaded)])
ear = jar([("web.war", war), ("META-INF/maven/e/app/pom.properties", pom("e", "app", "1"))])
for n, c in {"plain.jar": plain, "shaded.jar": shaded, "web.war": war, "app.ear": ear}.items():
    open(os.path.join(out, n), "wb").write(c)
PY
cp "$tmp"/jars/* corpus/apps_zip/
echo "corpus seeded"
