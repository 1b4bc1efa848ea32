#!/usr/bin/env bash
# Rebuild the disk images of the demo fleet (tests/data/sim/demo-fleet.toml), gzip-compressed
# into tests/data/demo/*.img.gz. What each image holds, and the baseline failures planted in
# them on purpose, is listed in tests/data/demo/README.md.
#
#   demo-rhel.img.gz     GPT: ext4 /boot + ext4 root of CBL-Mariner 2.0 (rpm, RHEL family) with
#                        the go-rpmdb rpmdb.sqlite fixture (129 packages); baseline failures
#   demo-alpine.img.gz   bare ext4: Alpine 3.4 root with Trivy's apk installed fixture;
#                        baseline failures
#   demo-pgdata.img.gz   bare ext4: a PostgreSQL data directory, no OS
#   demo-appdata.img.gz  bare ext4: application data, no OS
#   demo-logs.img.gz     GPT: one ext4 partition of application logs, no OS
#   demo-al2023.img.gz   GPT: BIOS boot + XFS root on Amazon Linux 2023's geometry, with
#                        CBL-Mariner 2.0's os-release and rpmdb.sqlite (129 packages)
#   demo-rhel8-root.img.gz  GPT: XFS /boot + XFS root of RHEL 8.8 whose fstab mounts /var and
#                        /var/log from LVs of the second disk
#   demo-rhel8-var.img.gz   whole-disk LVM2 PV (scripts/demo/lvm-pv.py), VG rhel: LVs log and
#                        var (XFS), /var/lib/rpm/Packages: RHEL 8 Berkeley DB (1 package)
#   demo-sles15.img.gz   GPT: BIOS boot + btrfs, SUSE/snapper subvolumes, NDB (35 packages)
#
# The Debian/Ubuntu root of the web server is demo-disk.img (scripts/make-demo-image.sh), left as
# it is: other tests and the README scan it uncompressed.
#
# The ext4 images are built without root and without mounting: each file system is `mkfs.ext4 -d` of a staged
# directory, then debugfs sets every inode's owner to root and its times to SOURCE_DATE_EPOCH
# (mkfs copies the staging files' owners and times); GPT disks are sfdisk scripts with fixed
# disk and partition UUIDs. File system UUIDs and directory hash seeds are fixed, mkfs's own
# clock is E2FSPROGS_FAKE_TIME and gzip runs with -n, so a rerun on the same machine gives the
# same bytes (mkfs -d adds files in the staging directory's readdir order, which another file
# system may return differently). The XFS images too (mkfs.xfs -p of a sorted protofile, times
# rewritten with xfs_db: see xfs_image), and the LVM PV (written by scripts/demo/lvm-pv.py).
# demo-sles15 needs root (its btrfs subvolumes are created on a read-write loop mount) and is not
# byte-identical between runs (the kernel stamps subvolume UUIDs, ctimes and generations); the
# script stops at it with a clear error when run without root, the other images built.
#
# Reads the package databases from ../shared/fixtures (override: AGENTLESS_FIXTURES).
# Idempotent: every image is rebuilt from scratch.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AGENTLESS_REPO_ROOT"
# mkfs.ext4, debugfs and sfdisk live in sbin, which a non-root PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"

FIXTURES="${AGENTLESS_FIXTURES:-../shared/fixtures}"
OUT=tests/data/demo
# 2025-01-01T00:00:00Z: the time of every inode, superblock and gzip header.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1735689600}"
export E2FSPROGS_FAKE_TIME="$SOURCE_DATE_EPOCH"
export TZ=UTC LC_ALL=C

ensure_tools mkfs.ext4:e2fsprogs debugfs:e2fsprogs sfdisk:fdisk gzip:gzip python3:python3 \
    mkfs.xfs:xfsprogs xfs_db:xfsprogs mkfs.btrfs:btrfs-progs btrfs:btrfs-progs
[ -f "$FIXTURES/go-rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite" ] ||
    die "fixtures not found under $FIXTURES (set AGENTLESS_FIXTURES to the shared fixtures directory)"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
: >"$TMP/modes"

# put FILE MODE [CONTENT on stdin]: write a staged file; fs_image gives it MODE in the image (the
# staged copy stays readable, so that mkfs run by a non-root user can read a mode 0000 file).
put() {
    mkdir -p "$(dirname "$1")"
    cat >"$1"
    chmod "$2" "$1"
    chmod u+r "$1"
    printf '%s %s\n' "$1" "$2" >>"$TMP/modes"
}

# fs_image STAGE OUT SIZE UUID LABEL: an ext4 file system of STAGE's contents in OUT (SIZE bytes,
# as truncate spells it), every inode owned by root:root with SOURCE_DATE_EPOCH times.
fs_image() {
    local stage="$1" out="$2" size="$3" uuid="$4" label="$5" cmds="$TMP/debugfs.cmds" p rel f mode
    rm -f "$out"
    truncate -s "$size" "$out"
    # The hash seed only has to be fixed; deriving it from the UUID keeps one constant per image.
    mkfs.ext4 -q -F -U "$uuid" -L "$label" -E "hash_seed=$uuid,root_owner=0:0" -d "$stage" "$out"
    : >"$cmds"
    while IFS= read -r p; do
        rel="/${p#"$stage"}"
        rel="${rel//\/\//\/}"
        printf 'sif %s uid 0\nsif %s gid 0\n' "$rel" "$rel" >>"$cmds"
        mode="$(awk -v p="$p" '$1 == p { m = $2 } END { print m }' "$TMP/modes")"
        [ -z "$mode" ] || printf 'sif %s mode 0100%s\n' "$rel" "$(printf '%03o' "$((8#$mode))")" >>"$cmds"
        for f in atime ctime mtime crtime; do
            printf 'sif %s %s @%s\nsif %s %s_extra 0\n' "$rel" "$f" "$SOURCE_DATE_EPOCH" "$rel" "$f" >>"$cmds"
        done
    done < <(find "$stage" -mindepth 1 | sort)
    if debugfs -w -f "$cmds" "$out" 2>&1 >/dev/null | grep -v '^debugfs [0-9]' | grep .; then
        die "debugfs could not set the owners and times of $out"
    fi
}

# gpt_disk OUT SIZE_MIB DISK_UUID: a GPT disk of SIZE_MIB MiB with the partitions read on stdin
# (sfdisk lines `start=..., size=..., type=..., uuid=..., name=...`, in 512-byte sectors).
gpt_disk() {
    rm -f "$1"
    truncate -s "$2M" "$1"
    { printf 'label: gpt\nlabel-id: %s\n' "$3"; cat; } | sfdisk -q --no-reread --no-tell-kernel "$1"
}

# place FS DISK START_SECTOR: copy a file system image into a disk at a partition's start.
place() {
    dd if="$1" of="$2" bs=64K seek=$(($3 * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
}

# xfs_image STAGE OUT SIZE UUID LABEL [MKFS_OPTION...]: an XFS file system of STAGE's contents
# in OUT (SIZE bytes, as truncate spells it), every inode owned by root:root with
# SOURCE_DATE_EPOCH times. mkfs.xfs -p builds it from a protofile (scripts/demo/xfs-proto.py);
# xfsprogs 6.1 stamps every inode it makes with the clock (mtime, ctime, crtime), so xfs_db -x
# rewrites the times of each staged path and of the realtime bitmap and summary inodes, and sets
# the sticky bit a protofile cannot carry (xfs_db recomputes the inode CRCs).
#
# mkfs.xfs refuses file systems under 300 MiB unless run by fstests, which it recognises by
# TEST_DIR, TEST_DEV and QA_CHECK_FS in the environment: set for this call only, so that the demo
# disks stay tens of MiB once decompressed by the sim (every test data directory gets a copy).
xfs_image() {
    local stage="$1" out="$2" size="$3" uuid="$4" label="$5" cmds="$TMP/xfs_db.cmds" rel ino t v
    shift 5
    rm -f "$out"
    truncate -s "$size" "$out"
    python3 scripts/demo/xfs-proto.py "$stage" "$TMP/modes" >"$TMP/proto" 2>"$TMP/proto.sticky"
    [ -z "$label" ] || set -- -L "$label" "$@"
    TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f -m "uuid=$uuid" -p "$TMP/proto" "$@" "$out"
    # xfs_db 6.1 writes the whole 64-bit on-disk timestamp through the `.sec` name (and a write
    # of `.nsec` clears it whole): for a bigtime inode nanoseconds since 1901-12-13T20:45:52Z,
    # otherwise seconds since 1970 in the high 32 bits and nanoseconds in the low ones.
    local times=""
    if xfs_db -r -c version "$out" | grep -q BIGTIME; then
        v=$(((SOURCE_DATE_EPOCH + 2147483648) * 1000000000))
    else
        v=$((SOURCE_DATE_EPOCH << 32))
    fi
    for t in core.atime core.mtime core.ctime v3.crtime; do times+="write $t.sec $v"$'\n'; done
    : >"$cmds"
    while IFS= read -r rel; do
        printf 'path /%s\n%s' "$rel" "$times"
    done < <(cd "$stage" && find . -mindepth 1 | sed 's|^\./||' | sort; echo) >>"$cmds"
    for ino in $(xfs_db -r -c 'sb 0' -c 'p rbmino rsumino' "$out" | awk '{ print $3 }'); do
        printf 'inode %s\n%s' "$ino" "$times"
    done >>"$cmds"
    while read -r _ rel mode; do
        printf 'path %s\nwrite core.mode 0%o\n' "$rel" "$((8#$mode | 8#40000))"
    done < <(grep '^STICKY ' "$TMP/proto.sticky" || true) >>"$cmds"
    grep -v '^STICKY ' "$TMP/proto.sticky" >&2 || true
    # xfs_db reports errors on stdout too: every line it prints must be a written field's value.
    if xfs_db -x -f -c "source $cmds" "$out" 2>&1 | grep -Ev '^[a-z0-9_.]+ = '; then
        die "xfs_db could not set the times and modes of $out"
    fi
}

# finish RAW NAME: gzip RAW into $OUT/NAME.img.gz; print the sizes.
finish() {
    local raw="$1" gz="$OUT/$2.img.gz"
    gzip -n -9 -c "$raw" >"$gz.tmp"
    mv -f "$gz.tmp" "$gz"
    log "$gz: $(stat -c %s "$raw") bytes raw, $(stat -c %s "$gz") compressed"
}

LINUX_GUID=0FC63DAF-8483-4772-8E79-3D69D8477DE4

# ---------------------------------------------------------------- demo-rhel: CBL-Mariner 2.0
# The rpm database fixture is CBL-Mariner 2.0's (129 packages, release suffix .cm2), so the root
# says it is CBL-Mariner 2.0 (ID=mariner, RHEL family for the scanner) rather than claiming Rocky
# or RHEL with packages those distributions never shipped.
section "demo-rhel (CBL-Mariner 2.0)"
R="$TMP/rhel-root"
put "$R/etc/os-release" 0644 <<'EOF'
NAME="Common Base Linux Mariner"
VERSION="2.0.20220226"
ID=mariner
VERSION_ID="2.0"
PRETTY_NAME="CBL-Mariner/Linux"
ANSI_COLOR="1;34"
EOF
put "$R/etc/mariner-release" 0644 <<<'CBL-Mariner 2.0.20220226'
mkdir -p "$R/var/lib/rpm"
cp "$FIXTURES/go-rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite" "$R/var/lib/rpm/rpmdb.sqlite"
chmod 0644 "$R/var/lib/rpm/rpmdb.sqlite"
put "$R/etc/passwd" 0644 <<'EOF'
root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/dev/null:/bin/false
daemon:x:6:6:Daemon User:/dev/null:/bin/false
nobody:x:65534:65533:Unprivileged User:/dev/null:/bin/false
postgres:x:26:26:PostgreSQL Server:/var/lib/pgsql:/bin/bash
EOF
put "$R/etc/group" 0644 <<'EOF'
root:x:0:
bin:x:1:daemon
daemon:x:6:
nogroup:x:65533:
postgres:x:26:
EOF
# Deliberate failure: /etc/shadow world-readable (accounts.etc_shadow_permissions).
put "$R/etc/shadow" 0644 <<'EOF'
root:$6$demo$e5YzSUl1FnM0Ab6QWnxJ2rM1qXXP8zVZ7y6bNQm.3mEodzqX9C7B2eKp3wWzSrJ9P8xkXWn6uJf0QpMDSY5x1:20089:1:90:7:30::
bin:!:20089::::::
daemon:!:20089::::::
nobody:!:20089::::::
postgres:!:20089::::::
EOF
put "$R/etc/gshadow" 0000 <<'EOF'
root:::
bin:::daemon
daemon:::
nogroup:::
postgres:::
EOF
# Deliberate failure: root may log in over SSH (ssh.permit_root_login).
put "$R/etc/ssh/sshd_config" 0600 <<'EOF'
# Demo fleet: deliberately weak settings (see tests/data/demo/README.md).
PermitRootLogin yes
X11Forwarding no
UsePAM yes
EOF
# sudo is in the rpm database: its configuration exists, as on a real root.
put "$R/etc/sudoers" 0440 <<'EOF'
Defaults use_pty
Defaults logfile=/var/log/sudo.log
root ALL=(ALL:ALL) ALL
%wheel ALL=(ALL:ALL) ALL
EOF
mkdir -p "$R/root" "$R/var/lib/pgsql" "$R/tmp" "$R/boot"
chmod 0700 "$R/root" "$R/var/lib/pgsql"
chmod 1777 "$R/tmp"
B="$TMP/rhel-boot"
put "$B/grub2/grub.cfg" 0600 <<'EOF'
# Demo fleet: a /boot partition holds no OS packages.
set timeout=0
menuentry "CBL-Mariner" { linux /vmlinuz-5.15.2.1-1.cm2 root=PARTLABEL=root ro }
EOF
put "$B/config-5.15.2.1-1.cm2" 0644 <<<'# placeholder kernel configuration'
fs_image "$B" "$TMP/rhel-boot.ext4" 2M 3b0b7e43-7f3e-4c31-9a0f-6d0c2a1b7e01 boot
fs_image "$R" "$TMP/rhel-root.ext4" 9M 3b0b7e43-7f3e-4c31-9a0f-6d0c2a1b7e02 root
# 1 MiB of GPT and alignment, /boot at 1 MiB (2 MiB), root at 3 MiB (9 MiB), 1 MiB for the
# backup GPT: 13 MiB.
gpt_disk "$TMP/rhel.img" 13 3B0B7E43-7F3E-4C31-9A0F-6D0C2A1B7E00 <<EOF
start=2048, size=4096, type=$LINUX_GUID, uuid=3B0B7E43-7F3E-4C31-9A0F-6D0C2A1B7E11, name="boot"
start=6144, size=18432, type=$LINUX_GUID, uuid=3B0B7E43-7F3E-4C31-9A0F-6D0C2A1B7E12, name="root"
EOF
place "$TMP/rhel-boot.ext4" "$TMP/rhel.img" 2048
place "$TMP/rhel-root.ext4" "$TMP/rhel.img" 6144
finish "$TMP/rhel.img" demo-rhel

# ---------------------------------------------------------------- demo-alpine: Alpine 3.4
# Trivy's apk fixture lists musl 1.1.14-r10 and busybox 1.24.2-r9: Alpine 3.4's.
section "demo-alpine (Alpine 3.4)"
A="$TMP/alpine-root"
put "$A/etc/alpine-release" 0644 <<<'3.4.6'
put "$A/etc/os-release" 0644 <<'EOF'
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.4.6
PRETTY_NAME="Alpine Linux v3.4"
EOF
mkdir -p "$A/lib/apk/db"
cp "$FIXTURES/trivy/apk/installed" "$A/lib/apk/db/installed"
chmod 0644 "$A/lib/apk/db/installed"
put "$A/etc/passwd" 0644 <<'EOF'
root:x:0:0:root:/root:/bin/ash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
app:x:1000:1000:Application:/home/app:/bin/ash
EOF
put "$A/etc/group" 0644 <<'EOF'
root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
shadow:x:42:
nogroup:x:65534:
app:x:1000:
EOF
# Deliberate failure: the app account has an empty password field (accounts.no_empty_passwords).
put "$A/etc/shadow" 0640 <<'EOF'
root:!::0:::::
bin:!::0:::::
daemon:!::0:::::
nobody:!::0:::::
app::20089:0:99999:7:::
EOF
# Deliberate failure: IPv4 forwarding on (net.ip_forward), from a drop-in the evidence names.
put "$A/etc/sysctl.d/99-router.conf" 0644 <<'EOF'
# Demo fleet: this host was once a NAT box.
net.ipv4.ip_forward = 1
EOF
# Deliberate failure: SSH accepts empty passwords (ssh.permit_empty_passwords).
put "$A/etc/ssh/sshd_config" 0600 <<'EOF'
# Demo fleet: deliberately weak settings (see tests/data/demo/README.md).
PermitEmptyPasswords yes
PermitRootLogin no
EOF
mkdir -p "$A/root" "$A/home/app" "$A/tmp"
chmod 0700 "$A/root"
chmod 0750 "$A/home/app"
chmod 1777 "$A/tmp"
fs_image "$A" "$TMP/alpine.img" 4M 5d2f6a10-2b4c-4e8a-b1c3-7e9f0a2d4c01 alpine-root
finish "$TMP/alpine.img" demo-alpine

# ---------------------------------------------------------------- data volumes (no OS)
section "data volumes"
P="$TMP/pgdata"
put "$P/pgsql/data/PG_VERSION" 0600 <<<'15'
put "$P/pgsql/data/postgresql.conf" 0600 <<'EOF'
listen_addresses = '*'
max_connections = 100
shared_buffers = 128MB
EOF
put "$P/pgsql/data/pg_hba.conf" 0600 <<'EOF'
local   all   all                 peer
host    all   all   10.0.0.0/8    scram-sha-256
EOF
mkdir -p "$P/pgsql/data/base/1" "$P/pgsql/data/global" "$P/pgsql/data/pg_wal"
fs_image "$P" "$TMP/pgdata.img" 2M 6e4a1c20-3d5b-4f9a-a2d4-8f0b1c3e5d01 pgdata
finish "$TMP/pgdata.img" demo-pgdata

D="$TMP/appdata"
put "$D/app/config.yaml" 0640 <<'EOF'
# Demo fleet: application data volume (no operating system on it).
listen: 0.0.0.0:8080
storage: /data/app/uploads
EOF
put "$D/app/uploads/README.txt" 0644 <<<'uploaded files land here'
fs_image "$D" "$TMP/appdata.img" 2M 7f5b2d30-4e6c-4a0b-b3e5-9a1c2d4f6e01 appdata
finish "$TMP/appdata.img" demo-appdata

L="$TMP/logs"
put "$L/app/access.log" 0640 <<'EOF'
10.0.1.12 - - [01/Jan/2025:00:00:00 +0000] "GET /health HTTP/1.1" 200 2
10.0.1.12 - - [01/Jan/2025:00:00:05 +0000] "GET /health HTTP/1.1" 200 2
EOF
put "$L/app/error.log" 0640 <<<'2025-01-01T00:00:00Z level=info msg="started"'
fs_image "$L" "$TMP/logs.ext4" 2M 8a6c3e40-5f7d-4b1c-84f6-0b2d3e5a7f01 logs
gpt_disk "$TMP/logs.img" 4 8A6C3E40-5F7D-4B1C-84F6-0B2D3E5A7F00 <<EOF
start=2048, size=4096, type=$LINUX_GUID, uuid=8A6C3E40-5F7D-4B1C-84F6-0B2D3E5A7F11, name="logs"
EOF
place "$TMP/logs.ext4" "$TMP/logs.img" 2048
finish "$TMP/logs.img" demo-logs

BIOS_BOOT_GUID=21686148-6449-6E6F-744E-656564454649

# ---------------------------------------------------------------- demo-al2023: XFS root
# Amazon Linux 2023's disk geometry, CBL-Mariner 2.0's packages: no Amazon Linux rpm database is
# among the fixtures, so the root says it is Mariner (as demo-rhel does) on AL2023's layout: GPT,
# a 1 MiB BIOS boot partition then the root; XFS v5 with 4 allocation groups of a
# non-power-of-two size (68 MiB: 4352 blocks each), 512-byte inodes, ftype, finobt, and what
# xfsprogs >= 5.15 (AL2023 ships 5.18) turns on by default: bigtime, inobtcount, reflink.
section "demo-al2023 (XFS, Amazon Linux 2023 geometry, CBL-Mariner 2.0 packages)"
AL_UUID=9c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e401
X="$TMP/al-root"
put "$X/etc/os-release" 0644 <<'EOF'
NAME="Common Base Linux Mariner"
VERSION="2.0.20220226"
ID=mariner
VERSION_ID="2.0"
PRETTY_NAME="CBL-Mariner/Linux"
ANSI_COLOR="1;34"
EOF
put "$X/etc/mariner-release" 0644 <<<'CBL-Mariner 2.0.20220226'
put "$X/etc/fstab" 0644 <<EOF
UUID=$AL_UUID     /           xfs    defaults,noatime  1   1
EOF
mkdir -p "$X/var/lib/rpm"
cp "$FIXTURES/go-rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite" "$X/var/lib/rpm/rpmdb.sqlite"
chmod 0644 "$X/var/lib/rpm/rpmdb.sqlite"
put "$X/etc/passwd" 0644 <<'EOF'
root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/dev/null:/bin/false
daemon:x:6:6:Daemon User:/dev/null:/bin/false
nobody:x:65534:65533:Unprivileged User:/dev/null:/bin/false
ec2-user:x:1000:1000:EC2 Default User:/home/ec2-user:/bin/bash
EOF
put "$X/etc/group" 0644 <<'EOF'
root:x:0:
bin:x:1:daemon
daemon:x:6:
wheel:x:10:ec2-user
nogroup:x:65533:
ec2-user:x:1000:
EOF
put "$X/etc/shadow" 0000 <<'EOF'
root:*LOCK*:20089::::::
bin:!:20089::::::
daemon:!:20089::::::
nobody:!:20089::::::
ec2-user:!!:20089:0:99999:7:::
EOF
put "$X/etc/gshadow" 0000 <<'EOF'
root:::
bin:::daemon
daemon:::
wheel:::ec2-user
nogroup:::
ec2-user:!::
EOF
put "$X/etc/ssh/sshd_config" 0600 <<'EOF'
PermitRootLogin no
PasswordAuthentication no
X11Forwarding no
UsePAM yes
EOF
put "$X/etc/sudoers" 0440 <<'EOF'
Defaults use_pty
root ALL=(ALL:ALL) ALL
%wheel ALL=(ALL:ALL) NOPASSWD: ALL
EOF
mkdir -p "$X/root" "$X/home/ec2-user" "$X/tmp" "$X/boot"
chmod 0700 "$X/root" "$X/home/ec2-user"
chmod 1777 "$X/tmp"
# The applications of this app server (what `scanner-agent` inventories besides the rpms): Go
# binaries (Trivy's fixtures: one built by go1.15.2 with three dependencies, one by go1.22.1 whose
# version comes from -ldflags -X), a Rust binary built with cargo auditable, a Java web archive
# with its WEB-INF/lib jars, a Python distribution (dist-info and egg-info), a Node application
# and its node_modules, and two installed kernels with the BLS entry GRUB boots by default. The
# vmlinuz files are placeholders: the kernel inventory reads names and boot configuration only.
G="$FIXTURES/trivy/golang-binary" L="$FIXTURES/trivy/lang"
put "$X/usr/local/bin/legacy-agent" 0755 <"$G/test.elf"
put "$X/usr/local/bin/ldflags-app" 0755 <"$G/main-version-via-ldflags.elf"
put "$X/usr/local/bin/crate-tool" 0755 <"$FIXTURES/trivy/rust-binary/test.elf"
put "$X/opt/tomcat/webapps/shop.war" 0644 <"$L/java/maven.war"
for d in distlib-0.3.1.dist-info distlib-0.3.1.egg-info; do
    for f in "$L/python/$d"/*; do
        put "$X/usr/local/lib/python3.9/site-packages/$d/$(basename "$f")" 0644 <"$f"
    done
done
put "$X/srv/web/package.json" 0644 <"$L/nodejs/package.json"
put "$X/srv/web/node_modules/lodash/package.json" 0644 <<'EOF'
{
  "name": "lodash",
  "version": "4.17.20",
  "license": "MIT",
  "main": "lodash.js"
}
EOF
for k in 6.1.61-85.amzn2023.x86_64 6.1.72-96.amzn2023.x86_64; do
    put "$X/boot/vmlinuz-$k" 0755 <<<"placeholder kernel image $k"
    put "$X/lib/modules/$k/modules.dep" 0644 </dev/null
    put "$X/boot/loader/entries/ec2d0e1f2a3b4c5d6e7f8091a2b3c4d5-$k.conf" 0644 <<EOF
title Amazon Linux ($k) 2023
version $k
linux /boot/vmlinuz-$k
options root=UUID=$AL_UUID ro console=tty0 console=ttyS0,115200n8 nvme_core.io_timeout=4294967295
EOF
done
put "$X/boot/grub2/grubenv" 0644 <<'EOF'
# GRUB Environment Block
saved_entry=ec2d0e1f2a3b4c5d6e7f8091a2b3c4d5-6.1.61-85.amzn2023.x86_64
boot_success=1
EOF
xfs_image "$X" "$TMP/al-root.xfs" 68M "$AL_UUID" / -d agcount=4 -i size=512 -n ftype=1 -m finobt=1
# 1 MiB of GPT and alignment, BIOS boot at 1 MiB (1 MiB), root at 2 MiB (68 MiB), 1 MiB for the
# backup GPT: 71 MiB.
gpt_disk "$TMP/al.img" 71 9C1D2E3F-4A5B-4C6D-8E7F-A0B1C2D3E400 <<EOF
start=2048, size=2048, type=$BIOS_BOOT_GUID, uuid=9C1D2E3F-4A5B-4C6D-8E7F-A0B1C2D3E411, name="BIOS Boot Partition"
start=4096, size=139264, type=$LINUX_GUID, uuid=9C1D2E3F-4A5B-4C6D-8E7F-A0B1C2D3E412, name="Linux"
EOF
place "$TMP/al-root.xfs" "$TMP/al.img" 4096
finish "$TMP/al.img" demo-al2023

# ---------------------------------------------------------------- demo-rhel8: root + LVM /var
# One instance, two volumes. The root disk: GPT with an XFS /boot and an XFS root (RHEL 8.8's
# identity and fstab); RHEL 8's xfsprogs (5.0) predates bigtime and inobtcount, so both are off.
# The second disk is an LVM2 PV (whole disk, no partition table) with VG rhel: LV log (extents
# 0-3) mounted at /var/log by /dev/rhel/log, and LV var (extents 4-7) mounted at /var by
# /dev/mapper/rhel-var, whose lib/rpm/Packages is the RHEL 8 Berkeley DB fixture (libuuid
# 2.32.1-42.el8_8): the packages of the root on volume 1 are on volume 2. The PV is written by
# scripts/demo/lvm-pv.py (no lvm2 tools, no device-mapper), each LV's XFS file system at
# pe_start + start_extent x extent_size.
section "demo-rhel8 (XFS root, LVM2 /var and /var/log on a second disk)"
R8_BOOT_UUID=2a7e4c1b-9d3f-4e58-b6a0-5c8d1e2f3b01
R8_ROOT_UUID=2a7e4c1b-9d3f-4e58-b6a0-5c8d1e2f3b02
R8_VAR_UUID=2a7e4c1b-9d3f-4e58-b6a0-5c8d1e2f3b03
R8_LOG_UUID=2a7e4c1b-9d3f-4e58-b6a0-5c8d1e2f3b04
R8_XFS=(-m bigtime=0,inobtcount=0)
R8="$TMP/rhel8-root"
put "$R8/etc/os-release" 0644 <<'EOF'
NAME="Red Hat Enterprise Linux"
VERSION="8.8 (Ootpa)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="8.8"
PLATFORM_ID="platform:el8"
PRETTY_NAME="Red Hat Enterprise Linux 8.8 (Ootpa)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:redhat:enterprise_linux:8::baseos"
HOME_URL="https://www.redhat.com/"
BUG_REPORT_URL="https://bugzilla.redhat.com/"
EOF
put "$R8/etc/redhat-release" 0644 <<<'Red Hat Enterprise Linux release 8.8 (Ootpa)'
put "$R8/etc/fstab" 0644 <<EOF
#
# /etc/fstab
# Created by anaconda
#
UUID=$R8_ROOT_UUID /                       xfs     defaults        0 0
UUID=$R8_BOOT_UUID /boot                   xfs     defaults        0 0
/dev/mapper/rhel-var    /var                    xfs     defaults        0 0
/dev/rhel/log           /var/log                xfs     defaults        0 0
EOF
put "$R8/etc/passwd" 0644 <<'EOF'
root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
nobody:x:65534:65534:Kernel Overflow User:/:/sbin/nologin
ec2-user:x:1000:1000:Cloud User:/home/ec2-user:/bin/bash
EOF
put "$R8/etc/group" 0644 <<'EOF'
root:x:0:
bin:x:1:
daemon:x:2:
wheel:x:10:ec2-user
nobody:x:65534:
ec2-user:x:1000:
EOF
put "$R8/etc/shadow" 0000 <<'EOF'
root:!!:20089:0:99999:7:::
bin:*:20089:0:99999:7:::
daemon:*:20089:0:99999:7:::
nobody:*:20089:0:99999:7:::
ec2-user:!!:20089:0:99999:7:::
EOF
put "$R8/etc/gshadow" 0000 <<'EOF'
root:::
bin:::
daemon:::
wheel:::ec2-user
nobody:::
ec2-user:!::
EOF
put "$R8/etc/ssh/sshd_config" 0600 <<'EOF'
PermitRootLogin no
PasswordAuthentication no
UsePAM yes
EOF
mkdir -p "$R8/var" "$R8/boot" "$R8/root" "$R8/home/ec2-user" "$R8/tmp"
chmod 0550 "$R8/root"
chmod 0700 "$R8/home/ec2-user"
chmod 1777 "$R8/tmp"
B8="$TMP/rhel8-boot"
put "$B8/loader/entries/demo-4.18.0-477.10.1.el8_8.x86_64.conf" 0600 <<'EOF'
title Red Hat Enterprise Linux (4.18.0-477.10.1.el8_8.x86_64) 8.8 (Ootpa)
version 4.18.0-477.10.1.el8_8.x86_64
linux /vmlinuz-4.18.0-477.10.1.el8_8.x86_64
options root=UUID=2a7e4c1b-9d3f-4e58-b6a0-5c8d1e2f3b02 ro
EOF
put "$B8/config-4.18.0-477.10.1.el8_8.x86_64" 0644 <<<'# placeholder kernel configuration'
V8="$TMP/rhel8-var"
mkdir -p "$V8/lib/rpm" "$V8/log" "$V8/cache" "$V8/tmp"
chmod 1777 "$V8/tmp"
cp "$FIXTURES/go-rpmdb/libuuid-bdb/Packages" "$V8/lib/rpm/Packages"
chmod 0644 "$V8/lib/rpm/Packages"
L8="$TMP/rhel8-log"
put "$L8/dnf.rpm.log" 0644 <<'EOF'
2025-01-01T00:00:00+0000 SUBDEBUG Installed: libuuid-2.32.1-42.el8_8.x86_64
EOF
mkdir -p "$L8/audit"
chmod 0700 "$L8/audit"
# 16 MiB each: one allocation group, the smallest mkfs.xfs makes with its fstests allowance.
xfs_image "$B8" "$TMP/rhel8-boot.xfs" 16M "$R8_BOOT_UUID" "" "${R8_XFS[@]}"
xfs_image "$R8" "$TMP/rhel8-root.xfs" 16M "$R8_ROOT_UUID" "" "${R8_XFS[@]}"
xfs_image "$V8" "$TMP/rhel8-var.xfs" 16M "$R8_VAR_UUID" "" "${R8_XFS[@]}"
xfs_image "$L8" "$TMP/rhel8-log.xfs" 16M "$R8_LOG_UUID" "" "${R8_XFS[@]}"
# 1 MiB of GPT and alignment, /boot at 1 MiB, root at 17 MiB, 1 MiB for the backup GPT: 34 MiB.
gpt_disk "$TMP/rhel8-root.img" 34 2A7E4C1B-9D3F-4E58-B6A0-5C8D1E2F3B00 <<EOF
start=2048, size=32768, type=$LINUX_GUID, uuid=2A7E4C1B-9D3F-4E58-B6A0-5C8D1E2F3B11
start=34816, size=32768, type=$LINUX_GUID, uuid=2A7E4C1B-9D3F-4E58-B6A0-5C8D1E2F3B12
EOF
place "$TMP/rhel8-boot.xfs" "$TMP/rhel8-root.img" 2048
place "$TMP/rhel8-root.xfs" "$TMP/rhel8-root.img" 34816
finish "$TMP/rhel8-root.img" demo-rhel8-root
# The PV: 1 MiB of label and metadata, 8 extents of 4 MiB: 33 MiB.
python3 scripts/demo/lvm-pv.py "$TMP/rhel8-var.img" --vg rhel \
    --vg-uuid Rhel8V-Gdem-o000-0000-0000-0000-000001 --pv-uuid Rhel8P-Vdem-o000-0000-0000-0000-000001 \
    --time "$SOURCE_DATE_EPOCH" --host demo-rhel8-1 --device /dev/nvme1n1 \
    "log:Rhel8L-Vlog-0000-0000-0000-0000-000001:4:$TMP/rhel8-log.xfs" \
    "var:Rhel8L-Vvar-0000-0000-0000-0000-000001:4:$TMP/rhel8-var.xfs" >&2
finish "$TMP/rhel8-var.img" demo-rhel8-var

# ---------------------------------------------------------------- demo-sles15: btrfs, snapper
# SUSE's layout: subvolume @ at the top, the OS in the snapper snapshot @/.snapshots/1/snapshot
# (the default subvolume, what a mount without subvol= gives), @/var and @/home mounted by the
# fstab with subvol=, /var/lib/rpm a link into /usr/lib/sysimage/rpm where the NDB Packages.db
# lives. Subvolumes are made by the kernel: this part mounts the file system read-write on a loop
# device, so it needs root.
section "demo-sles15 (btrfs, snapper-style subvolumes)"
is_root || die "demo-sles15 needs root: its btrfs subvolumes are created on a read-write loop mount (the other images are built; rerun as root)"
SLES_UUID=4f3e2d1c-0b9a-4887-a665-544332211001
S="$TMP/sles-os"
put "$S/etc/os-release" 0644 <<'EOF'
NAME="SLES"
VERSION="15-SP3"
VERSION_ID="15.3"
PRETTY_NAME="SUSE Linux Enterprise Server 15 SP3"
ID="sles"
ID_LIKE="suse"
ANSI_COLOR="0;32"
CPE_NAME="cpe:/o:suse:sles:15:sp3"
DOCUMENTATION_URL="https://documentation.suse.com/"
EOF
put "$S/etc/fstab" 0644 <<EOF
UUID=$SLES_UUID  /                       btrfs  defaults                      0  0
UUID=$SLES_UUID  /var                    btrfs  subvol=/@/var                 0  0
UUID=$SLES_UUID  /home                   btrfs  subvol=/@/home                0  0
UUID=$SLES_UUID  /.snapshots             btrfs  subvol=/@/.snapshots          0  0
EOF
put "$S/etc/passwd" 0644 <<'EOF'
root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:Daemon:/sbin:/sbin/nologin
nobody:x:65534:65534:nobody:/var/lib/nobody:/bin/bash
ec2-user:x:1000:100::/home/ec2-user:/bin/bash
EOF
put "$S/etc/group" 0644 <<'EOF'
root:x:0:
bin:x:1:daemon
daemon:x:2:
users:x:100:
nobody:x:65533:
nogroup:x:65534:nobody
EOF
put "$S/etc/shadow" 0640 <<'EOF'
root:!:20089::::::
bin:!:20089::::::
daemon:!:20089::::::
nobody:!:20089::::::
ec2-user:!:20089:0:99999:7:::
EOF
put "$S/etc/ssh/sshd_config" 0600 <<'EOF'
PermitRootLogin no
PasswordAuthentication no
UsePAM yes
EOF
mkdir -p "$S/usr/lib/sysimage/rpm" "$S/var" "$S/home" "$S/.snapshots" "$S/root" "$S/tmp"
cp "$FIXTURES/go-rpmdb/sle15-bci-ndb/Packages.db" "$S/usr/lib/sysimage/rpm/Packages.db"
chmod 0644 "$S/usr/lib/sysimage/rpm/Packages.db"
chmod 0700 "$S/root"
chmod 1777 "$S/tmp"
SV="$TMP/sles-var"
put "$SV/log/zypper.log" 0640 <<'EOF'
2025-01-01 00:00:00 <1> demo-sles-1(1) [zypper] main.cc(main):134 ===== Hi, me zypper 1.14.46
2025-01-01 00:00:00 <1> demo-sles-1(1) [zypper] main.cc(main):135 ===== 'zypper' '--non-interactive' 'refresh' =====
EOF
mkdir -p "$SV/lib" "$SV/tmp" "$SV/cache/zypp"
ln -s ../../usr/lib/sysimage/rpm "$SV/lib/rpm"
chmod 1777 "$SV/tmp"
SH="$TMP/sles-home"
put "$SH/ec2-user/.bashrc" 0644 <<<'# demo fleet: a user home on the @/home subvolume'
chmod 0700 "$SH/ec2-user"
put "$TMP/sles-info.xml" 0644 <<'EOF'
<?xml version="1.0"?>
<snapshot>
  <type>single</type>
  <num>1</num>
  <date>2025-01-01 00:00:00</date>
  <description>first root filesystem</description>
</snapshot>
EOF
# 110 MiB: the smallest file system mkfs.btrfs 6.2 makes with its default profiles (DUP metadata).
rm -f "$TMP/sles-root.btrfs"
truncate -s 110M "$TMP/sles-root.btrfs"
mkfs.btrfs -q -f -U "$SLES_UUID" -L ROOT "$TMP/sles-root.btrfs" >/dev/null
MNT="$TMP/sles-mnt"
mkdir -p "$MNT"
mount -o loop "$TMP/sles-root.btrfs" "$MNT"
# Unmounted on any exit, the failing command's message on stderr (set -e).
trap 'umount "$MNT" 2>/dev/null || true; rm -rf "$TMP"' EXIT
btrfs -q subvolume create "$MNT/@"
btrfs -q subvolume create "$MNT/@/.snapshots"
mkdir "$MNT/@/.snapshots/1"
cp "$TMP/sles-info.xml" "$MNT/@/.snapshots/1/info.xml"
btrfs -q subvolume create "$MNT/@/.snapshots/1/snapshot"
btrfs -q subvolume create "$MNT/@/var"
btrfs -q subvolume create "$MNT/@/home"
cp -a "$S/." "$MNT/@/.snapshots/1/snapshot/"
cp -a "$SV/." "$MNT/@/var/"
cp -a "$SH/." "$MNT/@/home/"
# put() leaves staged files readable by their owner: the modes it recorded, then the times.
while read -r p mode; do
    case "$p" in
    "$S"/*) chmod "$mode" "$MNT/@/.snapshots/1/snapshot/${p#"$S"/}" ;;
    "$SV"/*) chmod "$mode" "$MNT/@/var/${p#"$SV"/}" ;;
    "$SH"/*) chmod "$mode" "$MNT/@/home/${p#"$SH"/}" ;;
    esac
done <"$TMP/modes"
chown -R -h 0:0 "$MNT"
find "$MNT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
id=$(btrfs subvolume show "$MNT/@/.snapshots/1/snapshot" | awk '$1 == "Subvolume" && $2 == "ID:" { print $3 }')
btrfs subvolume set-default "$id" "$MNT"
sync
umount "$MNT"
trap 'rm -rf "$TMP"' EXIT
# 1 MiB of GPT and alignment, a 2 MiB BIOS boot partition (SUSE's), the root at 3 MiB (110 MiB),
# 1 MiB for the backup GPT: 114 MiB.
gpt_disk "$TMP/sles.img" 114 4F3E2D1C-0B9A-4887-A665-544332211000 <<EOF
start=2048, size=4096, type=$BIOS_BOOT_GUID, uuid=4F3E2D1C-0B9A-4887-A665-544332211011
start=6144, size=225280, type=$LINUX_GUID, uuid=4F3E2D1C-0B9A-4887-A665-544332211012
EOF
place "$TMP/sles-root.btrfs" "$TMP/sles.img" 6144
finish "$TMP/sles.img" demo-sles15

log "done: $(cd "$OUT" && printf '%s ' demo-*.img.gz)"
