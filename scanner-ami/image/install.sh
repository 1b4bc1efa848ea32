#!/usr/bin/env bash
# Install the agentless scanner into a Debian 12 root: build.sh's staging tree
# (scanner-ami/image/README.md).
#
#   install.sh --root DIR --agent FILE
#
#   --root DIR    the root to configure (build.sh chose its packages at debootstrap time)
#   --agent FILE  the release scanner-agent binary (x86_64 Linux)
#
# It installs the agent (/usr/local/bin/scanner-agent), its unit, the configuration in rootfs/
# beside this script, masks what must never run, enables what must, and then checks the result:
# every +package installed, no -package, the files in place. Exit 0 only if every check passed.
# Run as root. Idempotent. Nothing here reads the network.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT=""
AGENT=""

say() { printf '[install.sh] %s\n' "$*" >&2; }
die() {
    printf '[install.sh] ERROR: %s\n' "$*" >&2
    exit 1
}

while [ "$#" -gt 0 ]; do
    case "$1" in
        --root)
            ROOT="${2:?--root needs a directory}"
            shift 2
            ;;
        --agent)
            AGENT="${2:?--agent needs a file}"
            shift 2
            ;;
        -h | --help)
            sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[ -n "$ROOT" ] || die "--root DIR is required"
[ -n "$AGENT" ] || die "--agent FILE is required"
[ -d "$ROOT" ] || die "--root $ROOT is not a directory"
[ -f "$AGENT" ] || die "--agent $AGENT is not a file"
[ "$(id -u)" -eq 0 ] || die "run as root (the files must end up owned by root)"
ROOT="$(cd "$ROOT" && pwd -P)"
[ -f "$ROOT/etc/debian_version" ] || die "$ROOT is not a Debian root (no etc/debian_version)"
# r PATH: PATH inside the root.
r() { printf '%s%s\n' "${ROOT%/}" "$1"; }

# ------------------------------------------------------------------ package lists
INCLUDE=()
EXCLUDE=()
while read -r line; do
    case "$line" in
        +*) INCLUDE+=("${line#+}") ;;
        -*) EXCLUDE+=("${line#-}") ;;
    esac
done < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$HERE/packages.list")
[ "${#INCLUDE[@]}" -gt 0 ] || die "no +packages in $HERE/packages.list"

# installed NAME: is NAME installed in the root (dpkg status "install ok installed")?
installed() {
    [ "$(dpkg-query --admindir="$(r /var/lib/dpkg)" -W -f '${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# ------------------------------------------------------------------ files
say "installing into $ROOT"
install -D -m 0755 -o root -g root "$AGENT" "$(r /usr/local/bin/scanner-agent)"
install -D -m 0644 -o root -g root "$HERE/agentless-scanner.service" "$(r /etc/systemd/system/agentless-scanner.service)"
install -D -m 0644 -o root -g root "$HERE/README.md" "$(r /usr/share/doc/agentless-scanner/README.md)"
# The overlay: every file of rootfs/ at the same path, 0755 if executable in the repository, else 0644.
while IFS= read -r -d '' f; do
    rel="${f#"$HERE/rootfs"}"
    mode=0644
    [ -x "$f" ] && mode=0755
    install -D -m "$mode" -o root -g root "$f" "$(r "$rel")"
done < <(find "$HERE/rootfs" -type f -print0)

# mask PATH: a symlink to /dev/null (how udev rules, generators and units are disabled for good).
mask() {
    mkdir -p "$(dirname "$(r "$1")")"
    ln -sfn /dev/null "$(r "$1")"
}
# udev: no RAID assembly, no LVM autoactivation, no e2scrub of LVM snapshots, from any event.
mask /etc/udev/rules.d/64-md-raid-assembly.rules
mask /etc/udev/rules.d/69-lvm.rules
mask /etc/udev/rules.d/69-lvm-metad.rules
mask /etc/udev/rules.d/96-e2scrub.rules
mask /etc/udev/rules.d/80-udisks2.rules
# systemd-gpt-auto-generator mounts partitions of the boot disk found by type GUID, and activates
# swap partitions there; the kernel command line says systemd.gpt_auto=0 too.
mask /etc/systemd/system-generators/systemd-gpt-auto-generator
# Units that must never run on a scanner, installed or not: ingress, cloud-init (user data is the
# job manifest), package updates, disk daemons, timers that touch filesystems, logins, first-boot
# prompts on the console, and ifupdown (never installed here; systemd-networkd configures the
# network).
for u in \
    ssh.service ssh.socket sshd.service \
    cloud-init-local.service cloud-init.service cloud-config.service cloud-final.service cloud-init.target \
    apt-daily.timer apt-daily.service apt-daily-upgrade.timer apt-daily-upgrade.service \
    unattended-upgrades.service \
    udisks2.service lvm2-monitor.service lvm2-lvmpolld.socket lvm2-lvmpolld.service \
    mdmonitor.service mdcheck_start.timer mdcheck_continue.timer mdmonitor-oneshot.timer \
    e2scrub_all.timer e2scrub_all.service e2scrub_reap.service fstrim.timer man-db.timer \
    cron.service anacron.service anacron.timer \
    getty.target getty@.service serial-getty@.service console-getty.service \
    systemd-firstboot.service \
    networking.service ifup@.service ifupdown-pre.service ifupdown-wait-online.service; do
    mask "/etc/systemd/system/$u"
done

# Enable what the job needs (offline: systemctl --root edits symlinks only).
systemctl --root="$ROOT" --quiet enable \
    agentless-scanner.service systemd-networkd.service systemd-resolved.service systemd-timesyncd.service \
    nftables.service
# The resolver: systemd-resolved's stub (DHCP-provided servers).
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$(r /etc/resolv.conf)"
printf 'agentless-scanner\n' >"$(r /etc/hostname)"

# fstab: /tmp and /dev/shm nodev,nosuid,noexec (the root line is the image's own: build.sh writes
# it, the Debian AMI has one).
touch "$(r /etc/fstab)"
add_fstab() {
    if ! awk -v m="$2" '$0 !~ /^[ \t]*#/ && $2 == m { found = 1 } END { exit !found }' "$(r /etc/fstab)"; then
        printf '%s\n' "$1" >>"$(r /etc/fstab)"
    fi
}
add_fstab 'tmpfs /tmp tmpfs nodev,nosuid,noexec,mode=1777,size=25% 0 0' /tmp
add_fstab 'tmpfs /dev/shm tmpfs nodev,nosuid,noexec 0 0' /dev/shm

# Account defaults (CIS-style baseline: README.md, "Baseline"): no account logs in, but the
# defaults should be right should one ever be added.
set_login_defs() {
    if grep -qE "^[[:space:]]*$1[[:space:]]" "$(r /etc/login.defs)"; then
        sed -i -E "s/^[[:space:]]*$1[[:space:]].*/$1\t$2/" "$(r /etc/login.defs)"
    else
        printf '%s\t%s\n' "$1" "$2" >>"$(r /etc/login.defs)"
    fi
}
set_login_defs UMASK 027
set_login_defs PASS_MAX_DAYS 365
set_login_defs PASS_MIN_DAYS 1
if grep -qE '^[#[:space:]]*INACTIVE=' "$(r /etc/default/useradd)"; then
    sed -i -E 's/^[#[:space:]]*INACTIVE=.*/INACTIVE=30/' "$(r /etc/default/useradd)"
else
    printf 'INACTIVE=30\n' >>"$(r /etc/default/useradd)"
fi
grep -qxF 'umask 027' "$(r /etc/bash.bashrc)" || printf '\n# agentless scanner\numask 027\n' >>"$(r /etc/bash.bashrc)"
# Logs readable by root and group adm only.
find "$(r /var/log)" -type f -perm /g+wx,o+rwx -exec chmod g-wx,o-rwx {} +

# The kernel command line is not here: it is fixed in the UKI (build.sh, uki.sh); there is no boot
# loader and no /etc/default/grub.

# The initramfs again, now that /etc is configured: it carries /etc/modprobe.d (no dm/md/foreign
# filesystem modules there either) and fsck for the root of /etc/fstab.
if [ -x "$(r /usr/sbin/update-initramfs)" ]; then
    say "update-initramfs -u -k all"
    if [ "$ROOT" = / ]; then
        update-initramfs -u -k all >&2
    else
        chroot "$ROOT" update-initramfs -u -k all >&2
    fi
fi

# A fresh identity on every boot of every scanner; no leftovers of the build.
: >"$(r /etc/machine-id)"
# (D-Bus's copy only when it is a file: Debian makes it a link to /etc/machine-id.)
[ -L "$(r /var/lib/dbus/machine-id)" ] || rm -f "$(r /var/lib/dbus/machine-id)"
rm -f "$(r /var/lib/systemd/random-seed)" "$(r /root/.bash_history)"
rm -f "$(r /etc/ssh)"/ssh_host_*_key "$(r /etc/ssh)"/ssh_host_*_key.pub
rm -rf "$(r /var/lib/cloud)" "$(r /var/lib/apt/lists)"/*_Packages "$(r /var/lib/apt/lists)"/*_InRelease
rm -f "$(r /var/cache/apt/archives)"/*.deb "$(r /var/cache/apt)"/*.bin

# ------------------------------------------------------------------ checks
fail=0
bad() {
    say "CHECK FAILED: $*"
    fail=1
}
for p in "${INCLUDE[@]}"; do installed "$p" || bad "package $p is not installed"; done
for p in "${EXCLUDE[@]}"; do ! installed "$p" || bad "package $p is installed"; done
[ -x "$(r /usr/local/bin/scanner-agent)" ] || bad "no executable /usr/local/bin/scanner-agent"
[ -L "$(r /etc/systemd/system/multi-user.target.wants/agentless-scanner.service)" ] ||
    bad "agentless-scanner.service is not enabled"
[ -e "$(r /lib/udev/rules.d/70-ec2-nvme-devices.rules)" ] ||
    bad "no 70-ec2-nvme-devices.rules: /dev/sdX names of Nitro NVMe volumes would be missing"
[ "$(readlink "$(r /etc/systemd/system-generators/systemd-gpt-auto-generator)")" = /dev/null ] ||
    bad "systemd-gpt-auto-generator is not masked"
[ ! -s "$(r /etc/machine-id)" ] || bad "/etc/machine-id is not empty"
if [ "$fail" -ne 0 ]; then
    die "the root does not meet the scanner image's requirements (above)"
fi
say "done: $ROOT is a scanner root ($("$(r /usr/local/bin/scanner-agent)" --version 2>/dev/null || echo 'agent not runnable here'))"
