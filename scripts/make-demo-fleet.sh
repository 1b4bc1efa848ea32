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
#
# The Debian/Ubuntu root of the web server is demo-disk.img (scripts/make-demo-image.sh), left as
# it is: other tests and the README scan it uncompressed.
#
# Built without root and without mounting: each file system is `mkfs.ext4 -d` of a staged
# directory, then debugfs sets every inode's owner to root and its times to SOURCE_DATE_EPOCH
# (mkfs copies the staging files' owners and times); GPT disks are sfdisk scripts with fixed
# disk and partition UUIDs. File system UUIDs and directory hash seeds are fixed, mkfs's own
# clock is E2FSPROGS_FAKE_TIME and gzip runs with -n, so a rerun on the same machine gives the
# same bytes (mkfs -d adds files in the staging directory's readdir order, which another file
# system may return differently).
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

ensure_tools mkfs.ext4:e2fsprogs debugfs:e2fsprogs sfdisk:fdisk gzip:gzip
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

log "done: $(cd "$OUT" && printf '%s ' demo-*.img.gz)"
