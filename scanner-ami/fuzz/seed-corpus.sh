#!/usr/bin/env bash
# Seed each fuzz target's corpus with the real fixtures (run from scanner-ami/fuzz).
set -euo pipefail
cd "$(dirname "$0")"
fx=../../../shared/fixtures
mkdir -p corpus/{partition_table,disk_scan,rpm_header,rpm_bdb,rpm_ndb,dpkg_status,apk_installed,btrfs,lvm,xfs,xfs_log,apps_zip,apps_binary}
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
# Executables: Trivy's Go and Rust binaries (whole, and rebuilt as small ELFs keeping the headers,
# section table, names and the two records at their offsets, so the fuzzer can reach them within
# its 64 KiB max_len), plus a non-ELF file.
python3 - "$fx/trivy" corpus/apps_binary <<'PY'
import os, struct, sys
src, out = sys.argv[1], sys.argv[2]
for rel in ["golang-binary/test.elf", "golang-binary/main-version-via-ldflags.elf", "golang-binary/goexperiment",
            "rust-binary/test.elf", "golang-binary/dummy"]:
    data = open(os.path.join(src, rel), "rb").read()
    name = rel.replace("/", "-")
    open(os.path.join(out, name), "wb").write(data)
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        continue
    # Compact copy: header, program headers, section headers, .shstrtab and the records, moved to
    # the front; offsets rewritten (the addresses keep mapping through the rewritten PT_LOADs).
    shoff, = struct.unpack_from("<Q", data, 0x28); shnum, shstrndx = struct.unpack_from("<HH", data, 0x3c)
    phoff, = struct.unpack_from("<Q", data, 0x20); phnum, = struct.unpack_from("<H", data, 0x38)
    secs = [list(struct.unpack_from("<IIQQQQIIQQ", data, shoff + 64 * i)) for i in range(shnum)]
    stroff, strsize = secs[shstrndx][4], secs[shstrndx][5]
    names = data[stroff:stroff + strsize]
    def nm(s): return names[s[0]:names.index(b"\0", s[0])].decode()
    keep = {i for i, s in enumerate(secs) if nm(s) in (".go.buildinfo", ".dep-v0", ".shstrtab")}
    body = bytearray(data[:64 + 56 * phnum] if phoff == 64 else data[:64])
    newoff = {}
    for i in sorted(keep):
        newoff[i] = len(body); body += data[secs[i][4]:secs[i][4] + secs[i][5]]
    phs = [list(struct.unpack_from("<IIQQQQQQ", data, phoff + 56 * i)) for i in range(phnum)]
    for ph in phs:
        for i in keep:
            s = secs[i]
            if ph[0] == 1 and s[3] and ph[3] <= s[3] < ph[3] + ph[5]:
                ph[2] = newoff[i] - (s[3] - ph[3])
    if phoff == 64:
        for j, ph in enumerate(phs): struct.pack_into("<IIQQQQQQ", body, 64 + 56 * j, *ph)
    sh = bytearray()
    for i, s in enumerate(secs):
        s = list(s)
        s[4] = newoff.get(i, 0)
        if i not in keep and s[1] != 0: s[1] = 8  # SHT_NOBITS: no file data
        sh += struct.pack("<IIQQQQIIQQ", *s)
    struct.pack_into("<Q", body, 0x28, len(body)); body += sh
    if len(body) <= 65536:
        open(os.path.join(out, name + ".small"), "wb").write(bytes(body))
PY
echo "corpus seeded"
