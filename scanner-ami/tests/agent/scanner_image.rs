//! The scanner image recipe (`scanner-ami/image/`): `build.sh` builds the raw image once per test
//! run (a cached debootstrap root + `install.sh` + `mkfs.ext4 -d`, plus an EFI System Partition
//! holding a Unified Kernel Image, nothing mounted), with this build's `scanner-agent`. The tests
//! then scan it with our own agent (CLI, `--baseline`), read its files back through our own ext4
//! reader, check the unit with `systemd-analyze`, check the LVM settings with `lvmconfig`, and boot
//! the disk image itself under QEMU through UEFI firmware (OVMF) against a fake IMDSv2 and
//! collector: the unit runs the agent, the bundle arrives signed, the VM powers itself off; with a
//! look-alike of the scanner's own disk attached as the target, the VM still boots our root.
//!
//! All are `#[ignore]`d (root, debootstrap, the Debian mirror or the cache, QEMU): scripts/test.sh
//! runs them. The build is shared by the tests of this module (one `OnceLock`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use scanner_ami::agent::egress;
use scanner_ami::bundle::{BundleLimits, DeviceStatus, read_bundle, verify};
use scanner_ami::disk::{BlockSource, Disk, Region};
use scanner_ami::fs::ext4::Ext4Fs;
use scanner_ami::fs::{FileKind, RootFs};

use crate::run_mode::{demo_image, fake_collector, fake_imds, job, target};
use crate::util::{dpkg_oracle, project_root, run};

fn image_dir() -> PathBuf {
    project_root().join("scanner-ami/image")
}

/// What build.sh made (its build-info.env).
struct Built {
    image: PathBuf,
    rootfs: PathBuf,
    cmdline: String,
    partuuid: String,
    fs_uuid: String,
    esp_partuuid: String,
    info: BTreeMap<String, String>,
    build_secs: f64,
}

static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();

/// The image, built on first use.
fn built() -> &'static Built {
    match BUILT.get_or_init(build) {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

fn build() -> Result<Built, String> {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scanner-image");
    // The previous build's identifiers, if any: this build's must differ (random per build).
    let previous = std::fs::read_to_string(out.join("build-info.env")).unwrap_or_default();
    let started = Instant::now();
    let result = Command::new(image_dir().join("build.sh"))
        .arg("--agent")
        .arg(env!("CARGO_BIN_EXE_scanner-agent"))
        .arg("--out")
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run build.sh: {e}"))?;
    let build_secs = started.elapsed().as_secs_f64();
    if !result.status.success() {
        return Err(format!(
            "scanner-ami/image/build.sh failed ({}):\n{}",
            result.status,
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    let info_path = String::from_utf8_lossy(&result.stdout).trim().to_owned();
    // build-info.env is shell (printf %q): let bash read it.
    let keys = [
        "IMAGE",
        "ROOTFS",
        "KERNEL",
        "KERNEL_VERSION",
        "INITRD",
        "OS_RELEASE",
        "UKI",
        "UKI_BYTES",
        "CMDLINE",
        "PARTUUID",
        "FS_UUID",
        "ESP_PARTUUID",
        "DISK_GUID",
        "ROOT_OFFSET_MIB",
        "ROOT_MIB",
        "ESP_OFFSET_MIB",
        "ESP_MIB",
        "PACKAGES",
        "IMAGE_MIB",
        "IMAGE_ALLOCATED_MIB",
    ];
    let script = format!(". \"$1\"; for k in {}; do printf '%s=%s\\0' \"$k\" \"${{!k}}\"; done", keys.join(" "));
    let dump = run(Command::new("bash").arg("-c").arg(script).arg("-").arg(&info_path));
    let info: BTreeMap<String, String> =
        dump.split('\0').filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))).collect();
    let get = |k: &str| info.get(k).cloned().ok_or_else(|| format!("{info_path} has no {k}"));
    eprintln!("scanner image built in {build_secs:.1} s: {info:?}");
    for key in ["PARTUUID", "FS_UUID", "ESP_PARTUUID", "DISK_GUID"] {
        let old = previous.lines().find_map(|l| l.strip_prefix(&format!("{key}=")));
        if let (Some(old), Some(new)) = (old, info.get(key))
            && old == new
        {
            return Err(format!("{key} {new} is the previous build's: identifiers must be random per build"));
        }
    }
    Ok(Built {
        image: get("IMAGE")?.into(),
        rootfs: get("ROOTFS")?.into(),
        cmdline: get("CMDLINE")?,
        partuuid: get("PARTUUID")?,
        fs_uuid: get("FS_UUID")?,
        esp_partuuid: get("ESP_PARTUUID")?,
        info,
        build_secs,
    })
}

/// `+` and `-` packages of packages.list.
fn package_lists() -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(image_dir().join("packages.list")).expect("packages.list");
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(p) = line.strip_prefix('+') {
            include.push(p.to_owned());
        } else if let Some(p) = line.strip_prefix('-') {
            exclude.push(p.to_owned());
        }
    }
    (include, exclude)
}

/// `scanner-agent scan --image IMG --baseline --format json --out DIR`: exit code, inventory, baseline.
fn cli_scan(img: &Path) -> (i32, serde_json::Value, serde_json::Value) {
    let out = tempfile::tempdir().expect("tmp");
    let status = Command::new(env!("CARGO_BIN_EXE_scanner-agent"))
        .args(["scan", "--baseline", "--format", "json", "--image"])
        .arg(img)
        .arg("--out")
        .arg(out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("scanner-agent");
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.path().join(name)).expect(name)).expect(name)
    };
    (status.code().unwrap_or(-1), read("inventory.json"), read("baseline.json"))
}

static SCAN: OnceLock<(i32, serde_json::Value, serde_json::Value)> = OnceLock::new();

fn scanned() -> &'static (i32, serde_json::Value, serde_json::Value) {
    SCAN.get_or_init(|| cli_scan(&built().image))
}

#[test]
#[ignore = "builds the scanner image (root, debootstrap, the Debian mirror or ~/.cache/agentless)"]
fn scanner_image_is_debian_12_with_exactly_the_recipes_packages() {
    let b = built();
    let (code, inv, _) = scanned();
    assert_eq!(*code, 0, "a complete scan; errors: {}", inv["errors"]);
    assert_eq!(inv["os"]["id"], "debian", "{}", inv["os"]);
    assert_eq!(inv["os"]["version_id"], "12", "{}", inv["os"]);
    let names: BTreeSet<&str> =
        inv["packages"].as_array().expect("packages").iter().filter_map(|p| p["name"].as_str()).collect();
    let (include, exclude) = package_lists();
    for p in &include {
        assert!(names.contains(p.as_str()), "{p} is not in the image's inventory");
    }
    for p in &exclude {
        assert!(!names.contains(p.as_str()), "{p} is in the image's inventory");
    }
    // The requirements themselves, whatever packages.list says.
    for p in ["systemd", "udev", "amazon-ec2-utils", "linux-image-cloud-amd64"] {
        assert!(names.contains(p), "{p} missing");
    }
    for p in ["openssh-server", "cloud-init", "udisks2", "lvm2", "mdadm", "unattended-upgrades"] {
        assert!(!names.contains(p), "{p} installed");
    }
    // Our inventory of the image equals dpkg-query on the tree it was made from.
    let ours: BTreeSet<String> = inv["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let epoch = p["epoch"].as_u64().map(|e| format!("{e}:")).unwrap_or_default();
            let release = p["release"].as_str().map(|r| format!("-{r}")).unwrap_or_default();
            format!("{}={epoch}{}{release}", p["name"].as_str().unwrap_or(""), p["version"].as_str().unwrap_or(""))
        })
        .collect();
    let oracle = dpkg_oracle(&b.rootfs);
    assert_eq!(ours, oracle, "our inventory of the image vs dpkg-query of its tree");
    assert_eq!(b.info.get("PACKAGES").map(String::as_str), Some(oracle.len().to_string().as_str()));
    eprintln!(
        "scanner image: {} packages, {} MiB ({} MiB allocated), built in {:.1} s",
        oracle.len(),
        b.info["IMAGE_MIB"],
        b.info["IMAGE_ALLOCATED_MIB"],
        b.build_secs
    );
}

impl Built {
    fn info_kver(&self) -> &str {
        &self.info["KERNEL_VERSION"]
    }

    /// A number of build-info.env.
    fn num(&self, key: &str) -> u64 {
        self.info.get(key).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("build-info.env: {key}"))
    }
}

const MIB: u64 = 1024 * 1024;

/// The image's root filesystem through our own userspace ext4 reader (as a scanner reads a disk).
fn image_fs(b: &Built) -> Ext4Fs {
    let disk: Arc<dyn BlockSource> = Arc::new(Disk::open(&b.image).expect("open image"));
    // build.sh: partition 1 (the root) at ROOT_OFFSET_MIB, ROOT_MIB long; the ESP after it.
    let region = Region::new(disk, b.num("ROOT_OFFSET_MIB") * MIB, b.num("ROOT_MIB") * MIB).expect("region");
    Ext4Fs::load(region).expect("the image's ext4 root")
}

fn read(fs: &dyn RootFs, path: &str) -> Vec<u8> {
    scanner_ami::fs::read_file(fs, path, 256 * 1024 * 1024).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn link(fs: &dyn RootFs, path: &str) -> String {
    fs.read_link(path).unwrap_or_else(|e| panic!("{path} is not a symlink: {e}"))
}

#[test]
#[ignore = "builds the scanner image (root, debootstrap, the Debian mirror or ~/.cache/agentless)"]
fn scanner_image_files_read_back_from_the_image() {
    let b = built();
    let fs = image_fs(b);
    let repo = image_dir();
    // The unit, and every overlay file, byte for byte; the helper executable.
    assert_eq!(
        read(&fs, "/etc/systemd/system/agentless-scanner.service"),
        std::fs::read(repo.join("agentless-scanner.service")).expect("unit")
    );
    let overlay = run(Command::new("find").arg(repo.join("rootfs")).args(["-type", "f", "-printf", "%P\\n"]));
    let overlay: Vec<&str> = overlay.lines().collect();
    for want in [
        "etc/udev/rules.d/59-agentless-scanner-hostile-disks.rules",
        "usr/lib/agentless-scanner/is-root-disk",
        "etc/lvm/lvmlocal.conf",
        "etc/mdadm/mdadm.conf",
        "etc/modprobe.d/agentless-scanner.conf",
        "etc/cloud/cloud-init.disabled",
    ] {
        assert!(overlay.contains(&want), "{want} not in rootfs/");
    }
    for rel in &overlay {
        assert_eq!(
            read(&fs, &format!("/{rel}")),
            std::fs::read(repo.join("rootfs").join(rel)).expect("overlay"),
            "{rel}"
        );
    }
    let helper = fs.metadata("/usr/lib/agentless-scanner/is-root-disk").expect("helper");
    assert_eq!(helper.mode & 0o7777, 0o755);
    assert_eq!((helper.uid, helper.gid), (0, 0));
    // The agent is the binary we gave, root-owned and executable.
    let agent = fs.metadata("/usr/local/bin/scanner-agent").expect("agent");
    assert_eq!((agent.mode & 0o7777, agent.uid), (0o755, 0));
    assert!(
        read(&fs, "/usr/local/bin/scanner-agent") == std::fs::read(env!("CARGO_BIN_EXE_scanner-agent")).expect("bin")
    );
    // Enabled, and the NVMe naming rule of amazon-ec2-utils that gives /dev/sdf.
    assert_eq!(
        link(&fs, "/etc/systemd/system/multi-user.target.wants/agentless-scanner.service"),
        "/etc/systemd/system/agentless-scanner.service"
    );
    for unit in [
        "multi-user.target.wants/systemd-networkd.service",
        "sysinit.target.wants/systemd-resolved.service",
        "sysinit.target.wants/nftables.service",
    ] {
        assert!(fs.symlink_metadata(&format!("/etc/systemd/system/{unit}")).is_ok(), "{unit} not enabled");
    }
    let nvme = String::from_utf8(read(&fs, "/lib/udev/rules.d/70-ec2-nvme-devices.rules")).expect("utf-8");
    assert!(
        nvme.lines().any(|l| l.contains("Amazon Elastic Block Store")
            && l.contains("PROGRAM=\"/usr/sbin/ebsnvme-id -u /dev/%k\"")
            && l.contains("SYMLINK+=\"%c\"")),
        "{nvme}"
    );
    assert!(fs.metadata("/usr/sbin/ebsnvme-id").is_ok_and(|m| m.kind == FileKind::File && m.mode & 0o111 != 0));
    // Masked: disk-content consumers, ingress, cloud-init, updates, logins, gpt-auto.
    for masked in [
        "/etc/systemd/system-generators/systemd-gpt-auto-generator",
        "/etc/udev/rules.d/64-md-raid-assembly.rules",
        "/etc/udev/rules.d/69-lvm.rules",
        "/etc/udev/rules.d/96-e2scrub.rules",
        "/etc/systemd/system/ssh.service",
        "/etc/systemd/system/cloud-init.service",
        "/etc/systemd/system/apt-daily.timer",
        "/etc/systemd/system/apt-daily-upgrade.timer",
        "/etc/systemd/system/udisks2.service",
        "/etc/systemd/system/lvm2-monitor.service",
        "/etc/systemd/system/e2scrub_all.timer",
        "/etc/systemd/system/serial-getty@.service",
        "/etc/systemd/system/systemd-firstboot.service",
    ] {
        assert_eq!(link(&fs, masked), "/dev/null", "{masked}");
    }
    // A fresh machine id at every boot; the root by the random PARTUUID; /tmp and /dev/shm noexec.
    assert_eq!(read(&fs, "/etc/machine-id"), b"");
    let fstab = String::from_utf8(read(&fs, "/etc/fstab")).expect("utf-8");
    assert!(fstab.contains(&format!("PARTUUID={} / ext4", b.partuuid)), "{fstab}");
    assert!(fstab.lines().any(|l| l.starts_with("tmpfs /tmp tmpfs nodev,nosuid,noexec")), "{fstab}");
    assert!(fstab.lines().any(|l| l.starts_with("tmpfs /dev/shm tmpfs nodev,nosuid,noexec")), "{fstab}");
    assert!(b.cmdline.contains(&format!("root=PARTUUID={}", b.partuuid)) && b.cmdline.contains("systemd.gpt_auto=0"));
    assert_eq!(link(&fs, "/etc/resolv.conf"), "../run/systemd/resolve/stub-resolv.conf");
    // No SSH host keys, no apt lists, no build leftovers.
    let ssh = fs.read_dir("/etc/ssh").map(|v| v.into_iter().map(|e| e.name).collect::<Vec<_>>()).unwrap_or_default();
    assert!(ssh.iter().all(|n| !n.starts_with("ssh_host_")), "{ssh:?}");
    assert!(fs.metadata("/.agentless-scanner-base-complete").is_err());
}

/// `[Section] Key=` values of a unit file, in order (no continuation lines in ours).
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(|v| v.trim().to_owned())
        .collect()
}

#[test]
fn unit_runs_the_agent_unprivileged_and_always_powers_off() {
    let unit = std::fs::read_to_string(image_dir().join("agentless-scanner.service")).expect("unit");
    let one = |k: &str| {
        let v = unit_values(&unit, k);
        assert_eq!(v.len(), 1, "{k}: {v:?}");
        v[0].clone()
    };
    assert_eq!(one("Type"), "oneshot");
    assert_eq!(
        one("ExecStart"),
        format!("/usr/local/bin/scanner-agent run --no-poweroff --require-egress {}", egress::DEFAULT_STATE_FILE)
    );
    // Egress: applied as root before the scan, without `-` (a failure fails the unit: `run` never
    // starts); the drop counter reported at the end whatever happened.
    let pre = unit_values(&unit, "ExecStartPre");
    assert_eq!(pre.len(), 2, "{pre:?}");
    assert!(pre[0].starts_with("-+/usr/bin/udevadm settle"), "{pre:?}");
    assert_eq!(pre[1], "+/usr/local/bin/scanner-agent egress apply");
    assert_eq!(one("ExecStopPost"), "-+/usr/local/bin/scanner-agent egress report");
    // systemd powers off whatever the agent did; a hang is cut by the timeouts.
    assert_eq!(one("SuccessAction"), "poweroff");
    assert_eq!(one("FailureAction"), "poweroff");
    assert_eq!(one("JobTimeoutAction"), "poweroff-force");
    assert_eq!(one("SuccessExitStatus"), scanner_ami::agent::EXIT_INCOMPLETE.to_string());
    // No privileges: a dynamic user in group disk, no capabilities, block devices read-only.
    assert_eq!(one("DynamicUser"), "yes");
    assert_eq!(one("SupplementaryGroups"), "disk");
    assert_eq!(one("CapabilityBoundingSet"), "");
    assert_eq!(one("NoNewPrivileges"), "yes");
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("DevicePolicy"), "closed");
    let devices = unit_values(&unit, "DeviceAllow");
    assert!(!devices.is_empty() && devices.iter().all(|d| d.starts_with("block-") && d.ends_with(" r")), "{devices:?}");
    assert!(devices.contains(&"block-blkext r".to_owned()), "NVMe namespaces (Nitro) are blkext");

    // The timeouts against the job deadline: the deadline is launch + the orchestrator's scan
    // timeout (30 min: `scan_timeout` in src/job/mod.rs); the agent's last upload attempt may start
    // just before it and last DEFAULT_UPLOAD_TIMEOUT; udevadm settle may take its --timeout first.
    let minutes = |v: &str| -> u64 { v.strip_suffix("min").and_then(|m| m.parse().ok()).expect("N min") };
    let start = Duration::from_secs(60 * minutes(&one("TimeoutStartSec")));
    let job = Duration::from_secs(60 * minutes(&one("JobTimeoutSec")));
    let scan_timeout = Duration::from_secs(30 * 60);
    let settle = Duration::from_secs(120);
    assert!(pre[0].contains("--timeout=120"));
    let needed = scan_timeout + scanner_ami::agent::DEFAULT_UPLOAD_TIMEOUT + settle;
    assert!(
        start >= needed,
        "TimeoutStartSec {start:?} < {needed:?}: the unit would kill a scan the job still waits for"
    );
    assert!(start <= needed + Duration::from_secs(5 * 60), "TimeoutStartSec {start:?} is far past the deadline");
    assert!(job > start, "the boot backstop must leave the unit its own timeout");
}

#[test]
#[ignore = "needs systemd-analyze and the built image (scripts/setup-test-env.sh)"]
fn unit_verifies_and_its_exposure_is_at_most_2() {
    let b = built();
    // verify: syntax, the executables exist in the image, dependencies resolve in the image.
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", b.rootfs.display()))
        .arg("/etc/systemd/system/agentless-scanner.service")
        .stdin(Stdio::null())
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed:\n{stderr}");
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("agentless-scanner")).collect();
    assert!(ours.is_empty(), "warnings about our unit:\n{}", ours.join("\n"));
    // security: systemd's exposure score (0 = fully sandboxed, 10 = none); ours is 1.5 in
    // systemd 252; --threshold (on a 0-100 scale) makes it exit non-zero above 2.0.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
        .arg(format!("--root={}", b.rootfs.display()))
        .arg("agentless-scanner.service")
        .stdin(Stdio::null())
        .output()
        .expect("systemd-analyze");
    let text = String::from_utf8_lossy(&out.stdout);
    let overall = text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or("no overall line");
    eprintln!("{overall}");
    assert!(out.status.success(), "exposure above 2:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
#[ignore = "needs lvm2's lvmconfig (scripts/setup-test-env.sh)"]
fn lvm_reads_our_settings_and_activates_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    // LVM's own defaults, then our lvmlocal.conf beside them, read by the real lvmconfig.
    std::fs::write(dir.path().join("lvm.conf"), "").expect("lvm.conf");
    std::fs::copy(image_dir().join("rootfs/etc/lvm/lvmlocal.conf"), dir.path().join("lvmlocal.conf")).expect("copy");
    let out = run(Command::new("lvmconfig")
        .env("LVM_SYSTEM_DIR", dir.path())
        .args(["--typeconfig", "current"])
        .args(["global/event_activation", "activation/auto_activation_volume_list"])
        .args(["devices/global_filter", "activation/monitoring"]));
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(
        got,
        ["event_activation=0", "auto_activation_volume_list=[]", "global_filter=\"r|.*|\"", "monitoring=0"]
    );
}

/// Where the collector is, seen from the VM (a slirp guestfwd to the fake collector on loopback).
const VM_COLLECTOR: &str = "169.254.169.200:8443";

/// An address that is not the collector, seen from the VM: a slirp guestfwd to a host listener
/// that must never see a connection once the egress rules are on (the scan test's probe).
const VM_FORBIDDEN: &str = "169.254.169.201:8443";

/// A loopback listener that counts the connections it accepts (and closes them).
struct CountingListener {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl CountingListener {
    fn start() -> CountingListener {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stream.is_ok() {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        CountingListener { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Test-only probe on the kernel command line (a `systemd.run` after [`DIAGNOSTICS`]' ones, as
/// root, outside the agent's sandbox): once the egress table exists (polled each second for up to
/// 10 min), connect to the collector (allowed: shows the probe itself can connect) and to
/// [`VM_FORBIDDEN`] (must be dropped), 3 s each, print `EGRESS-PROBE <which> connected|blocked`,
/// then the drop counter. Perl (perl-base is in every Debian): no `$` (systemd would expand it) and
/// no double quote (the kernel command line's own quoting) anywhere.
fn egress_probe() -> String {
    let connect = |what: &str, addr: &str| {
        format!(
            "say IO::Socket::INET->new(PeerAddr => q{{{addr}}}, Timeout => 3) \
             ? q{{EGRESS-PROBE {what} connected}} : q{{EGRESS-PROBE {what} blocked}};"
        )
    };
    format!(
        "systemd.run=\"/usr/bin/perl -MIO::Socket::INET -E 'for (1..600) {{ last if system(q{{nft list table inet \
         agentless_egress >/dev/null 2>&1}}) == 0; sleep 1 }} {} {} print qx{{nft list counter inet agentless_egress \
         dropped}};'\"",
        connect("collector", VM_COLLECTOR),
        connect("other", VM_FORBIDDEN)
    )
}

/// `packets N` of an `nft list counter` listing on the console, after line `from`.
fn counter_packets(console: &str, from: usize) -> Option<u64> {
    console.lines().skip(from).find_map(|l| {
        let rest = &l[l.find("packets ")? + "packets ".len()..];
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
}

/// One boot of the scanner image under QEMU: how it ended, the serial console, how long it took.
struct Boot {
    /// QEMU's exit status, or None when it was killed at the timeout.
    exit: Option<std::process::ExitStatus>,
    console: String,
    secs: f64,
}

/// The UEFI firmware: Debian's OVMF (package ovmf), without Secure Boot (EC2's default for an AMI
/// registered without UEFI data), and a fresh copy of its variable store per boot (no boot entry:
/// the firmware boots the removable-media path `\EFI\BOOT\BOOTX64.EFI` of the boot disk, as EC2's
/// does for a new instance).
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// The disk a test boots: the image itself, or, with `extra_cmdline`, a copy of it whose ESP holds a
/// UKI made by the same `uki.sh` from the same kernel and initramfs with the image's command line
/// plus `extra_cmdline` (systemd-stub ignores a command line from the firmware when the UKI has
/// one: the test diagnostics have to be in the UKI).
fn boot_disk(b: &Built, name: &str, extra_cmdline: &str) -> PathBuf {
    if extra_cmdline.is_empty() {
        return b.image.clone();
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scanner-image");
    let disk = dir.join(format!("disk-{name}.img"));
    let esp = dir.join(format!("esp-{name}.img"));
    run(Command::new("cp").args(["--sparse=always", "--reflink=auto", "-f"]).arg(&b.image).arg(&disk));
    run(Command::new(image_dir().join("uki.sh"))
        .arg("--kernel")
        .arg(&b.info["KERNEL"])
        .arg("--initrd")
        .arg(&b.info["INITRD"])
        .arg("--os-release")
        .arg(&b.info["OS_RELEASE"])
        .args(["--cmdline", &format!("{} {extra_cmdline}", b.cmdline)])
        .arg("--esp")
        .arg(&esp)
        .args(["--esp-mib", &b.info["ESP_MIB"]]));
    run(Command::new("dd").arg(format!("if={}", esp.display())).arg(format!("of={}", disk.display())).args([
        "bs=1M",
        &format!("seek={}", b.info["ESP_OFFSET_MIB"]),
        "conv=notrunc,sparse",
        "status=none",
    ]));
    let _ = std::fs::remove_file(&esp);
    disk
}

/// Boot the disk image through UEFI firmware (OVMF: the firmware finds the ESP and starts the UKI;
/// no `-kernel`) with `volume` attached as the second NVMe device (`/dev/nvme1n1`), IMDS at
/// 169.254.169.254:80 and the collector at
/// [`VM_COLLECTOR`] forwarded to the loopback ports of the fake servers (a `socat` per guest
/// connection: slirp's `tcp:` chardev form would be one connection for the VM's whole life).
/// `restrict=on`: the VM reaches nothing else, not even this host. Writes go to temporary overlays
/// (`snapshot=on`).
///
/// TCG by default: nested KVM on this kind of machine opens but hangs; set AGENTLESS_QEMU_ACCEL=kvm
/// where it works.
/// `forbidden`: the loopback port of a host listener the VM reaches at [`VM_FORBIDDEN`] if its
/// egress rules let it (a third guestfwd, there only for the probe of the scan test).
fn boot(
    b: &Built,
    name: &str,
    volume: &Path,
    ports: (u16, u16),
    forbidden: Option<u16>,
    extra_cmdline: &str,
    timeout: Duration,
) -> Boot {
    let (imds_port, collector_port) = ports;
    // Kept for a look after the test: target/tmp/scanner-image/console-<name>.log.
    let console = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scanner-image").join(format!("console-{name}.log"));
    let _ = std::fs::remove_file(&console);
    let accel = std::env::var("AGENTLESS_QEMU_ACCEL").unwrap_or_else(|_| "tcg".into());
    let netdev = format!(
        "user,id=n0,restrict=on,net=169.254.169.0/24,host=169.254.169.2,dns=169.254.169.3,dhcpstart=169.254.169.15,\
         guestfwd=tcp:169.254.169.254:80-cmd:socat STDIO TCP:127.0.0.1:{imds_port},\
         guestfwd=tcp:{VM_COLLECTOR}-cmd:socat STDIO TCP:127.0.0.1:{collector_port}"
    );
    let netdev = match forbidden {
        Some(port) => format!("{netdev},guestfwd=tcp:{VM_FORBIDDEN}-cmd:socat STDIO TCP:127.0.0.1:{port}"),
        None => netdev,
    };
    let drive = |path: &Path, id: &str| format!("file={},if=none,id={id},format=raw,snapshot=on", path.display());
    let disk = boot_disk(b, name, extra_cmdline);
    let vars = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scanner-image").join(format!("ovmf-vars-{name}.fd"));
    std::fs::copy(OVMF_VARS, &vars).expect("OVMF variable store (apt-get install ovmf; scripts/setup-test-env.sh)");
    let started = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-machine", &format!("q35,accel={accel}"), "-cpu", if accel == "kvm" { "host" } else { "max" }])
        .args(["-smp", "1", "-m", "1024", "-nodefaults", "-display", "none", "-monitor", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .args(["-drive", &format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}")])
        .args(["-drive", &format!("if=pflash,format=raw,unit=1,file={}", vars.display())])
        // The root volume first, and the boot device (EC2 boots the AMI's root device).
        .args(["-drive", &drive(&disk, "root"), "-device", "nvme,drive=root,serial=scannerroot,bootindex=0"])
        .args(["-drive", &drive(volume, "vol1"), "-device", "nvme,drive=vol1,serial=vol0a1b2c3d4e5f60718"])
        .args(["-netdev", &netdev, "-device", "virtio-net-pci,netdev=n0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-x86_64 (apt-get install qemu-system-x86; scripts/setup-test-env.sh)");
    let exit = loop {
        if let Some(status) = child.try_wait().expect("wait qemu") {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    if disk != b.image {
        let _ = std::fs::remove_file(&disk);
    }
    let _ = std::fs::remove_file(&vars);
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let mut console = String::from_utf8_lossy(&std::fs::read(&console).unwrap_or_default()).into_owned();
    if !stderr.trim().is_empty() {
        console.push_str("\n--- qemu stderr ---\n");
        console.push_str(&stderr);
    }
    Boot { exit, console: plain(&console), secs: started.elapsed().as_secs_f64() }
}

/// The console without ANSI colour sequences (systemd colours its status lines on a serial console).
fn plain(console: &str) -> String {
    let mut out = String::with_capacity(console.len());
    let mut chars = console.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            // CSI: parameters up to the final byte (@..~).
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) && d != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Status lines of the console about our unit with `verb` (the image sets StatusUnitFormat=name).
fn unit_lines<'a>(console: &'a str, verb: &str) -> Vec<&'a str> {
    console.lines().filter(|l| l.contains(&format!("{verb} agentless-scanner.service"))).collect()
}

/// The last lines of a console, for assertion messages.
fn tail(console: &str, n: usize) -> String {
    let lines: Vec<&str> = console.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Test-only diagnostics on the kernel command line (systemd-run-generator runs them once, in order,
/// after boot; their output reaches the console through the journal): udev's database once the
/// coldplug events are processed, the mounts and the active swap. systemd.run makes its own target
/// the default one: `systemd.unit` puts multi-user.target (our unit) back, `systemd.wants` keeps the
/// diagnostics.
const DIAGNOSTICS: &str = "systemd.unit=multi-user.target systemd.wants=kernel-command-line.service \
    systemd.run=\"/usr/bin/udevadm settle --timeout=120\" \
    systemd.run=\"/usr/bin/udevadm info --export-db\" systemd.run=\"/usr/bin/findmnt -rn -o SOURCE,TARGET\" \
    systemd.run=\"/usr/bin/cat /proc/swaps\" systemd.run_success_action=none systemd.run_failure_action=none";

/// udev's database as `udevadm info --export-db` printed it on the console: device node name ->
/// its `E:` properties.
fn udev_db(console: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut db = BTreeMap::new();
    let mut name: Option<String> = None;
    let mut props = BTreeMap::new();
    let mut flush = |name: &mut Option<String>, props: &mut BTreeMap<String, String>| {
        if let Some(n) = name.take() {
            db.insert(n, std::mem::take(props));
        }
        props.clear();
    };
    for line in console.lines() {
        let Some((_, rest)) = line.split_once("udevadm[") else { continue };
        let Some((_, record)) = rest.split_once("]: ") else { continue };
        if record.starts_with("P: ") {
            flush(&mut name, &mut props);
        } else if let Some(n) = record.strip_prefix("N: ") {
            name = Some(n.trim().to_owned());
        } else if let Some((k, v)) = record.strip_prefix("E: ").and_then(|kv| kv.split_once('=')) {
            props.insert(k.to_owned(), v.trim().to_owned());
        }
    }
    flush(&mut name, &mut props);
    db
}

/// The firmware started the UKI of our disk (the NVMe controller with serial `scannerroot`), the
/// kernel ran with our command line (the root by our PARTUUID), and the only ext4 filesystem the
/// kernel mounted is partition 1 of our disk.
fn assert_booted_our_root(b: &Built, console: &str) {
    let starts: Vec<&str> = console.lines().filter(|l| l.contains("BdsDxe: starting")).collect();
    assert!(
        starts.len() == 1 && starts[0].contains("NVMe Ctrl scannerroot"),
        "the firmware did not start our disk's UKI (once): {starts:?}\n{}",
        tail(console, 40)
    );
    let cmdline = console.lines().find(|l| l.contains("Kernel command line:")).unwrap_or("no command line");
    let roots: Vec<&str> = cmdline.split_whitespace().filter(|w| w.starts_with("root=")).collect();
    assert_eq!(roots, [format!("root=PARTUUID={}", b.partuuid)], "{cmdline}");
    let mounts: Vec<&str> = console.lines().filter(|l| l.contains("EXT4-fs (") && l.contains("mounted")).collect();
    assert!(
        !mounts.is_empty() && mounts.iter().all(|l| l.contains("EXT4-fs (nvme0n1p1)")),
        "the kernel mounted something else than our root: {mounts:?}"
    );
}

/// Generous: a TCG boot takes about a minute on an idle 2-core machine, several under load.
const BOOT_TIMEOUT: Duration = Duration::from_secs(900);

#[test]
#[ignore = "boots the scanner image under QEMU (qemu-system-x86; scripts/setup-test-env.sh)"]
fn scanner_image_boots_scans_the_attached_volume_uploads_and_powers_off() {
    let b = built();
    let collector = fake_collector(&[]);
    // The volume the VM sees as /dev/nvme1n1; /dev/sdg is not attached (reported missing: the
    // agent exits 1, which the unit counts as success).
    let manifest = job(&format!("http://{VM_COLLECTOR}"), vec![target("/dev/nvme1n1", 1), target("/dev/sdg", 2)]);
    let imds = fake_imds(manifest.to_json().expect("json"), 0);
    let ports = (port_of(&imds.url()), port_of(&collector.url()));
    let forbidden = CountingListener::start();
    let cmdline = format!("{DIAGNOSTICS} {}", egress_probe());
    let run = boot(b, "scan", &demo_image(), ports, Some(forbidden.port), &cmdline, BOOT_TIMEOUT);
    eprintln!("boot to power-off: {:.1} s", run.secs);
    let ctx = || format!("after {:.0} s; console tail:\n{}", run.secs, tail(&run.console, 60));
    // It powered itself off: QEMU exits 0 on the guest's power-off (-no-reboot), before the timeout.
    assert!(run.exit.is_some_and(|s| s.success()), "the VM did not power off by itself: {:?} {}", run.exit, ctx());
    assert!(run.console.contains("reboot: Power down"), "{}", ctx());
    assert_booted_our_root(b, &run.console);

    // IMDSv2 only: the token first, then token-bearing reads.
    let imds_log = imds.requests();
    assert!(
        imds_log.first().is_some_and(|r| r.method == "PUT" && r.path == "/latest/api/token"),
        "{imds_log:?} {}",
        ctx()
    );
    assert!(imds_log.iter().any(|r| r.path == "/latest/user-data"), "{}", ctx());
    assert!(imds_log.iter().filter(|r| r.method == "GET").all(|r| r.header("X-aws-ec2-metadata-token").is_some()));

    // One signed bundle; the attached volume scanned completely, through the sandboxed unit.
    let uploads = collector.requests();
    assert_eq!(uploads.len(), 1, "{}", ctx());
    let up = &uploads[0];
    assert_eq!(up.path, format!("/v1/jobs/{}/bundles/{}", manifest.job, manifest.scanner));
    assert!(verify(&manifest.hmac_key, &up.body, up.header("X-Agentless-Signature").unwrap_or("")));
    let bundle = read_bundle(&up.body, &BundleLimits::default()).expect("bundle");
    let m = &bundle.manifest;
    assert!(m.scanner_instance.as_deref().is_some_and(|i| i.starts_with("i-")), "{m:?}");
    assert_eq!(m.devices.len(), 2);
    let d0 = &m.devices[0];
    assert_eq!(d0.status, DeviceStatus::Complete, "{d0:?}");
    assert_eq!(d0.resolved_path.as_deref(), Some("/dev/nvme1n1"));
    assert_eq!(d0.os.as_deref(), Some("Ubuntu 18.04.1 LTS"));
    assert_eq!(d0.packages, 90);
    assert!(d0.baseline_failed > 0);
    assert_eq!(m.devices[1].status, DeviceStatus::Missing, "{:?}", m.devices[1]);

    // udev probed the scanner's own root partition (its fstab needs the links) and nothing of the
    // attached disk: no filesystem type, no by-uuid/by-label/by-partuuid link, only the links made
    // from the hardware and the kernel (by-id, by-path, by-diskseq).
    let db = udev_db(&run.console);
    let root = db.get("nvme0n1p1").unwrap_or_else(|| panic!("no nvme0n1p1 in udev's db {db:?} {}", ctx()));
    assert_eq!(root.get("ID_FS_TYPE").map(String::as_str), Some("ext4"), "{root:?}");
    assert!(!root.contains_key("UDEV_DISABLE_PERSISTENT_STORAGE_BLKID_FLAG"), "{root:?}");
    for dev in ["nvme1n1", "nvme1n1p1", "nvme1n1p2"] {
        let p = db.get(dev).unwrap_or_else(|| panic!("no {dev} in udev's db {db:?}"));
        assert_eq!(p.get("UDEV_DISABLE_PERSISTENT_STORAGE_BLKID_FLAG").map(String::as_str), Some("1"), "{dev}: {p:?}");
        for key in ["ID_FS_TYPE", "ID_FS_UUID", "ID_PART_TABLE_TYPE", "ID_PART_ENTRY_UUID"] {
            assert!(!p.contains_key(key), "{dev} was probed: {key} in {p:?}");
        }
        let links = p.get("DEVLINKS").map(String::as_str).unwrap_or("");
        assert!(
            links.split(' ').all(|l| ["by-id", "by-path", "by-diskseq"]
                .iter()
                .any(|kind| l.starts_with(&format!("/dev/disk/{kind}/")))),
            "{dev}: {links}"
        );
    }
    // Nothing mounted it, nothing swaps on it.
    let mentions_volume: Vec<&str> =
        run.console.lines().filter(|l| (l.contains("findmnt[") || l.contains("cat[")) && l.contains("nvme1")).collect();
    assert!(mentions_volume.is_empty(), "{mentions_volume:?}");
    assert!(run.console.lines().any(|l| l.contains("findmnt[") && l.contains("nvme0n1p1 /")), "{}", ctx());

    // The unit ran and ended as designed; nothing failed on the way.
    assert_eq!(unit_lines(&run.console, "Finished").len(), 1, "{}", ctx());
    for bad in ["Failed to start", "FAILED", "Dependency failed", "Timed out"] {
        let hits: Vec<&str> = run.console.lines().filter(|l| l.contains(bad)).collect();
        assert!(hits.is_empty(), "{bad}: {hits:?}\n{}", ctx());
    }

    // Egress: the rules were applied from the manifest before the scan, and checked by the agent.
    let lines: Vec<&str> = run.console.lines().collect();
    let applied = lines.iter().position(|l| l.contains("egress rules applied")).unwrap_or_else(|| panic!("{}", ctx()));
    assert!(lines[applied].contains(&format!("collector=[{VM_COLLECTOR}]")), "{}", lines[applied]);
    assert!(lines[applied].contains("dns=[]"), "an address literal needs no DNS: {}", lines[applied]);
    let in_place =
        lines.iter().position(|l| l.contains("egress rules in place")).unwrap_or_else(|| panic!("{}", ctx()));
    let scanned = lines.iter().position(|l| l.contains("device scanned")).unwrap_or_else(|| panic!("{}", ctx()));
    assert!(applied < in_place && in_place < scanned, "egress before the scan: {applied} {in_place} {scanned}");
    // The probe, with the rules on: the collector is reachable, the other address is not, and the
    // host listener behind it saw nothing; the drop counter counted it.
    let probe = |what: &str| -> (usize, &str) {
        lines
            .iter()
            .enumerate()
            // `perl[PID]: EGRESS-PROBE ...` (the kernel's echo of its command line holds the text too).
            .find_map(|(i, l)| l.split_once(&format!("]: EGRESS-PROBE {what} ")).map(|(_, r)| (i, r.trim())))
            .unwrap_or_else(|| panic!("no {what} probe on the console: {}", ctx()))
    };
    assert_eq!(probe("collector").1, "connected", "the probe can connect where the rules allow: {}", ctx());
    let (other_at, other) = probe("other");
    assert_eq!(other, "blocked", "{}", ctx());
    assert_eq!(forbidden.accepted(), 0, "a connection reached the forbidden address's listener");
    let dropped = counter_packets(&run.console, other_at).unwrap_or_else(|| panic!("no counter listing {}", ctx()));
    assert!(dropped >= 1, "the blocked probe was not counted: {dropped}");
    // The upload went through the same rules (checked above: one signed bundle). At the end the
    // unit logs the counter; when the probe ran before it, the count includes the probe's drop.
    let report = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| {
            let rest = l.split_once("egress: ")?.1;
            let n: u64 = rest.strip_suffix(" bytes) dropped").and(rest.split_whitespace().next())?.parse().ok()?;
            Some((i, n))
        })
        .unwrap_or_else(|| panic!("no drop count reported: {}", ctx()));
    if other_at < report.0 {
        assert!(report.1 >= 1, "reported {} dropped after the blocked probe", report.1);
    }
    eprintln!("egress: probe blocked; {dropped} packets dropped at the probe, {} at the end", report.1);
}

#[test]
#[ignore = "boots the scanner image under QEMU (qemu-system-x86; scripts/setup-test-env.sh)"]
fn user_data_script_is_never_executed_and_a_failed_job_still_powers_off() {
    let b = built();
    let collector = fake_collector(&[]);
    // A cloud-init style script as user data: no cloud-init runs it, the agent refuses it (not a
    // job manifest), the unit fails, FailureAction powers off.
    let script = b"#!/bin/sh\necho \"$((6 * 7))-USER-DATA-EXECUTED\" > /dev/console\n".to_vec();
    let imds = fake_imds(script, 0);
    let ports = (port_of(&imds.url()), port_of(&collector.url()));
    let run = boot(b, "script", &demo_image(), ports, None, "", BOOT_TIMEOUT);
    eprintln!("boot to power-off (failed job): {:.1} s", run.secs);
    let ctx = || format!("after {:.0} s; console tail:\n{}", run.secs, tail(&run.console, 60));
    assert!(run.exit.is_some_and(|s| s.success()), "the VM did not power off by itself: {:?} {}", run.exit, ctx());
    assert!(imds.requests().iter().any(|r| r.path == "/latest/user-data"), "{}", ctx());
    assert!(!run.console.contains("42-USER-DATA-EXECUTED"), "the user data ran: {}", ctx());
    assert!(run.console.contains("job manifest is not valid JSON"), "{}", ctx());
    assert_eq!(unit_lines(&run.console, "Failed to start").len(), 1, "{}", ctx());
    assert!(collector.requests().is_empty(), "nothing was uploaded");
    // The product image itself (no test diagnostics in its UKI) booted our root.
    assert_booted_our_root(b, &run.console);
}

/// `sfdisk --json IMG`: the partitions (start, size, type, uuid, name).
fn partitions(img: &Path) -> Vec<serde_json::Value> {
    let json: serde_json::Value =
        serde_json::from_str(&run(Command::new("sfdisk").arg("--json").arg(img))).expect("sfdisk --json");
    json["partitiontable"]["partitions"].as_array().expect("partitions").clone()
}

fn field<'a>(p: &'a serde_json::Value, key: &str) -> &'a str {
    p[key].as_str().unwrap_or_else(|| panic!("no {key} in {p}"))
}

#[test]
#[ignore = "builds the scanner image (root, debootstrap, the Debian mirror or ~/.cache/agentless)"]
fn image_boots_by_uefi_from_a_uki_naming_the_root_by_partuuid_only() {
    let b = built();
    // GPT: the root (plain Linux data type, our PARTUUID) and the ESP (our ESP PARTUUID), nothing else.
    let parts = partitions(&b.image);
    assert_eq!(parts.len(), 2, "{parts:?}");
    let (root, esp) = (&parts[0], &parts[1]);
    assert_eq!(field(root, "type"), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
    assert_eq!(field(root, "uuid").to_lowercase(), b.partuuid);
    assert_eq!(root["start"].as_u64(), Some(b.num("ROOT_OFFSET_MIB") * 2048));
    assert_eq!(field(esp, "type"), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    assert_eq!(field(esp, "uuid").to_lowercase(), b.esp_partuuid);
    assert_eq!(esp["start"].as_u64(), Some(b.num("ESP_OFFSET_MIB") * 2048));
    // Four random identifiers, all different (and different from the previous build's: build()).
    let ids: BTreeSet<&str> =
        ["PARTUUID", "FS_UUID", "ESP_PARTUUID", "DISK_GUID"].iter().map(|k| b.info[*k].as_str()).collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    // The ESP (read with mtools, not mounted): one file, the UKI build.sh made.
    let img_at = format!("{}@@{}M", b.image.display(), b.info["ESP_OFFSET_MIB"]);
    let files = run(Command::new("mdir").env("MTOOLS_SKIP_CHECK", "1").args(["-/", "-b", "-i", &img_at, "::/"]));
    let files: Vec<&str> = files.lines().filter(|l| !l.ends_with('/')).collect();
    assert_eq!(files, ["::/EFI/BOOT/BOOTX64.EFI"], "the ESP holds exactly the UKI");
    let dir = tempfile::tempdir().expect("tmp");
    let uki = dir.path().join("BOOTX64.EFI");
    run(Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-n", "-i", &img_at, "::/EFI/BOOT/BOOTX64.EFI"])
        .arg(&uki));
    assert!(std::fs::read(&uki).expect("uki") == std::fs::read(&b.info["UKI"]).expect("UKI"), "ESP's UKI != build's");
    // The UKI's sections: the root's own kernel and initramfs, the fixed command line, os-release.
    let section = |name: &str| -> Vec<u8> {
        let out = dir.path().join(name.trim_start_matches('.'));
        run(Command::new("objcopy").arg("-O").arg("binary").arg(format!("--only-section={name}")).arg(&uki).arg(&out));
        std::fs::read(&out).expect("section")
    };
    let kver = &b.info["KERNEL"];
    assert!(section(".linux") == std::fs::read(kver).expect("vmlinuz"), ".linux is not the image's kernel");
    assert!(section(".initrd") == std::fs::read(&b.info["INITRD"]).expect("initrd"), ".initrd is not the image's");
    assert_eq!(section(".osrel"), std::fs::read(b.rootfs.join("usr/lib/os-release")).expect("os-release"));
    let cmdline = String::from_utf8(section(".cmdline")).expect("utf-8");
    assert_eq!(cmdline, b.cmdline);
    // The root named by our PARTUUID, and by nothing else; no label, no filesystem UUID anywhere in
    // the boot path (command line, fstab).
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    let roots: Vec<&&str> = words.iter().filter(|w| w.starts_with("root=")).collect();
    assert_eq!(roots, [&format!("root=PARTUUID={}", b.partuuid).as_str()]);
    for w in
        ["console=ttyS0,115200n8", "ro", "systemd.gpt_auto=0", "rd.systemd.gpt_auto=0", "raid=noautodetect", "panic=0"]
    {
        assert!(words.contains(&w), "{w} not in {cmdline}");
    }
    let fstab = String::from_utf8(read(&image_fs(b), "/etc/fstab")).expect("utf-8");
    for (text, what) in [(cmdline.as_str(), "command line"), (fstab.as_str(), "fstab")] {
        for bad in ["UUID=", "LABEL=", "PARTLABEL=", &b.fs_uuid] {
            let hits: Vec<&str> = text
                .split_whitespace()
                .filter(|w| w.contains(bad) && !w.starts_with("PARTUUID=") && !w.starts_with("root=PARTUUID="))
                .collect();
            assert!(hits.is_empty(), "{what} names {bad}: {hits:?}");
        }
    }
    // The kernel has NVMe and ext4 built in; the initramfs carries ENA and our modprobe settings.
    let config = std::fs::read_to_string(b.rootfs.join(format!("boot/config-{}", b.info_kver()))).expect("config");
    for opt in ["CONFIG_BLK_DEV_NVME=y", "CONFIG_EXT4_FS=y", "CONFIG_EFI_STUB=y"] {
        assert!(config.lines().any(|l| l == opt), "{opt}");
    }
    let listing = run(Command::new("chroot")
        .arg(&b.rootfs)
        .arg("lsinitramfs")
        .arg(format!("/boot/initrd.img-{}", b.info_kver())));
    for want in ["/ena.ko", "etc/modprobe.d/agentless-scanner.conf", "scripts/local"] {
        assert!(listing.lines().any(|l| l.ends_with(want)), "{want} not in the initramfs");
    }
}

/// A copy of our own image as a customer's volume could look to the initramfs and the firmware:
/// the same partition layout and names, the same disk GUID, the same ext4 filesystem UUID and label
/// (`scanner-root`), a bootable ESP with the same UKI, but partition GUIDs of its own (a volume never
/// carries our random PARTUUID: README.md, "Identifiers").
fn look_alike(b: &Built) -> (PathBuf, String) {
    let disk = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scanner-image").join("look-alike.img");
    run(Command::new("cp").args(["--sparse=always", "--reflink=auto", "-f"]).arg(&b.image).arg(&disk));
    let theirs = std::fs::read_to_string("/proc/sys/kernel/random/uuid").expect("uuid").trim().to_owned();
    let their_esp = std::fs::read_to_string("/proc/sys/kernel/random/uuid").expect("uuid").trim().to_owned();
    for (n, uuid) in [("1", &theirs), ("2", &their_esp)] {
        run(Command::new("sfdisk")
            .args(["-q", "--no-reread", "--no-tell-kernel", "--part-uuid"])
            .arg(&disk)
            .args([n, uuid]));
    }
    let parts = partitions(&disk);
    assert_eq!(field(&parts[0], "uuid").to_lowercase(), theirs);
    assert_eq!(field(&parts[0], "name"), "scanner-root");
    // Same filesystem UUID and label as ours (dumpe2fs of the copy's partition 1).
    let sb = run(Command::new("dumpe2fs").arg("-h").arg(format!(
        "{}?offset={}",
        disk.display(),
        b.num("ROOT_OFFSET_MIB") * MIB
    )));
    assert!(sb.lines().any(|l| l.starts_with("Filesystem UUID:") && l.ends_with(&b.fs_uuid)), "{sb}");
    assert!(sb.lines().any(|l| l.starts_with("Filesystem volume name:") && l.ends_with("scanner-root")), "{sb}");
    (disk, theirs)
}

#[test]
#[ignore = "boots the scanner image under QEMU (qemu-system-x86, ovmf; scripts/setup-test-env.sh)"]
fn a_look_alike_of_our_own_disk_attached_as_the_target_does_not_boot() {
    let b = built();
    let (volume, theirs) = look_alike(b);
    let collector = fake_collector(&[]);
    let manifest = job(&format!("http://{VM_COLLECTOR}"), vec![target("/dev/nvme1n1", 1)]);
    let imds = fake_imds(manifest.to_json().expect("json"), 0);
    let ports = (port_of(&imds.url()), port_of(&collector.url()));
    // The product image as it is (no test diagnostics): what the firmware and the initramfs see.
    let run = boot(b, "look-alike", &volume, ports, None, "", BOOT_TIMEOUT);
    let _ = std::fs::remove_file(&volume);
    eprintln!("boot to power-off (look-alike target): {:.1} s", run.secs);
    let ctx = || format!("after {:.0} s; console tail:\n{}", run.secs, tail(&run.console, 60));
    assert!(run.exit.is_some_and(|s| s.success()), "the VM did not power off by itself: {:?} {}", run.exit, ctx());
    // The firmware started our UKI, the kernel mounted our root (nvme0n1p1), not the copy's.
    assert_booted_our_root(b, &run.console);
    assert!(!run.console.contains(&theirs), "the console names the look-alike's PARTUUID: {}", ctx());
    assert!(!run.console.lines().any(|l| l.contains("EXT4-fs (nvme1")), "the kernel mounted the look-alike: {}", ctx());
    // And the agent scanned the look-alike as a target, from our root: Debian 12, every package.
    let uploads = collector.requests();
    assert_eq!(uploads.len(), 1, "{}", ctx());
    assert!(verify(&manifest.hmac_key, &uploads[0].body, uploads[0].header("X-Agentless-Signature").unwrap_or("")));
    let bundle = read_bundle(&uploads[0].body, &BundleLimits::default()).expect("bundle");
    let d0 = &bundle.manifest.devices[0];
    assert_eq!(d0.status, DeviceStatus::Complete, "{d0:?}");
    assert!(d0.os.as_deref().is_some_and(|os| os.contains("Debian") && os.contains("12")), "{d0:?}");
    assert_eq!(d0.packages.to_string(), b.info["PACKAGES"], "{d0:?}");
    assert_eq!(unit_lines(&run.console, "Finished").len(), 1, "{}", ctx());
}

/// The baseline rules our own scanner image fails, each with why it is left so (README.md,
/// "Baseline of the scanner image"). Any other failure, or an error, fails the test.
const SCANNER_IMAGE_FAILS: &[(&str, &str)] = &[
    // one root partition: an ephemeral instance whose volume is deleted at termination, with no
    // users and nothing writing
    ("fs.var_partition", "single root partition"),
    ("fs.var_tmp_partition", "single root partition"),
    ("fs.var_log_partition", "single root partition"),
    ("fs.var_log_audit_partition", "single root partition"),
    ("fs.home_partition", "single root partition"),
    // an audit daemon and rsyslog on an instance that lives minutes and whose disk is deleted:
    // the journal (volatile) and the EC2 console carry the agent's log
    ("audit.installed", "no auditd"),
    ("log.rsyslog_installed", "journald only"),
    ("log.journald_storage", "Storage=volatile on purpose"),
    // removed on purpose (packages.list): nothing to schedule, no privilege escalation path
    ("cron.enabled", "no cron"),
    ("sudo.installed", "no sudo"),
    // nobody can log in (no sshd, no getty, every account locked): password policy has no subject
    ("pam.pwquality_minlen", "no password logins"),
    ("pam.pwquality_minclass", "no password logins"),
    ("pam.faillock_deny", "no password logins"),
    ("pam.pwhistory_remember", "no password logins"),
    ("pam.su_restricted", "no password logins"),
];

#[test]
#[ignore = "builds the scanner image (root, debootstrap, the Debian mirror or ~/.cache/agentless)"]
fn scanner_image_fails_only_the_known_baseline_rules() {
    let (_, _, baseline) = scanned();
    let findings = baseline["findings"].as_array().expect("findings");
    let with = |status: &str| -> BTreeSet<&str> {
        findings.iter().filter(|f| f["status"] == status).filter_map(|f| f["id"].as_str()).collect()
    };
    assert!(with("error").is_empty(), "rules in error: {:?}", with("error"));
    let expected: BTreeSet<&str> = SCANNER_IMAGE_FAILS.iter().map(|(id, _)| *id).collect();
    let failed = with("fail");
    let new: Vec<_> = failed.difference(&expected).collect();
    let fixed: Vec<_> = expected.difference(&failed).collect();
    assert!(
        new.is_empty() && fixed.is_empty(),
        "newly failing: {new:?}; no longer failing (update the list): {fixed:?}"
    );
    // What the image fixes on purpose (install.sh, rootfs/): these pass.
    for id in [
        "fs.module_cramfs_disabled",
        "fs.module_squashfs_disabled",
        "fs.module_usb-storage_disabled",
        "fs.tmp_noexec",
        "fs.dev_shm_noexec",
        "kernel.suid_dumpable",
        "kernel.core_hard_limit",
        "net.ip_forward",
        "net.all_accept_redirects",
        "net.firewall_installed",
        "net.firewall_default_deny",
        "banner.issue_content",
        "log.var_log_permissions",
        "accounts.umask_login_defs",
        "accounts.tmout",
        "time.daemon_installed",
        "time.sync_configured",
        "ssh.sshd_config_permissions",
    ] {
        let f = findings.iter().find(|f| f["id"] == id).unwrap_or_else(|| panic!("no rule {id}"));
        assert!(f["status"] == "pass" || (id.starts_with("ssh.") && f["status"] == "notapplicable"), "{id}: {f}");
    }
    eprintln!("baseline of the scanner image: {}", baseline["summary"]);
}

/// The egress rules against the real kernel without a VM: in a throwaway network namespace
/// (`unshare -n`: the host's firewall is never touched), with the image's own `nft` (chroot into
/// the built root), `egress apply` loads the rules for a collector at 10.9.0.2:8443 on a veth
/// link with nobody behind it (the output hook sees each SYN before the neighbour lookup); a
/// connection to the collector leaves uncounted, one to another address and one to the collector's
/// address on another port are dropped and counted. IPv6 is off in the namespace
/// so its own neighbour discovery and MLD traffic cannot move the counter.
#[test]
#[ignore = "builds the scanner image (root, debootstrap); unshare, ip"]
fn egress_rules_load_in_the_kernel_and_count_all_but_the_collector() {
    let b = built();
    let dir = tempfile::tempdir().expect("tmp");
    let manifest = job("http://10.9.0.2:8443", vec![]);
    let manifest_path = dir.path().join("job.json");
    std::fs::write(&manifest_path, manifest.to_json().expect("json")).expect("write");
    let nft = dir.path().join("nft");
    std::fs::write(&nft, format!("#!/bin/sh\nexec chroot {} /usr/sbin/nft \"$@\"\n", b.rootfs.display())).expect("nft");
    run(Command::new("chmod").arg("755").arg(&nft));
    let agent = env!("CARGO_BIN_EXE_scanner-agent");
    let (m, n, st) = (manifest_path.display(), nft.display(), dir.path().join("egress.json"));
    let st = st.display();
    // Each step prints a marker, then the counter (`egress: N outbound packets (B bytes) dropped`).
    let script = format!(
        "set -e
        sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        ip link set lo up
        ip link add x0 type veth peer name x1
        ip addr add 10.9.0.1/24 dev x0
        ip link set x1 up
        ip link set x0 up
        {agent} egress apply --manifest {m} --nft {n} --state {st} 2>&1
        echo STEP applied; {agent} egress report --nft {n} 2>/dev/null
        timeout 2 bash -c 'exec 3<>/dev/tcp/10.9.0.2/8443' 2>/dev/null || true
        echo STEP collector; {agent} egress report --nft {n} 2>/dev/null
        timeout 2 bash -c 'exec 3<>/dev/tcp/10.9.0.3/8443' 2>/dev/null || true
        echo STEP other-address; {agent} egress report --nft {n} 2>/dev/null
        timeout 2 bash -c 'exec 3<>/dev/tcp/10.9.0.2/9999' 2>/dev/null || true
        echo STEP other-port; {agent} egress report --nft {n} 2>/dev/null
        {n} list table inet agentless_egress"
    );
    let out =
        Command::new("unshare").args(["-n", "bash", "-c", &script]).stdin(Stdio::null()).output().expect("unshare");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("egress rules applied"), "{text}");
    let count_after = |step: &str| -> u64 {
        let mut lines = text.lines().skip_while(|l| *l != format!("STEP {step}"));
        lines
            .nth(1)
            .and_then(|l| l.strip_prefix("egress: "))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count after {step}: {text}"))
    };
    assert_eq!(count_after("applied"), 0, "{text}");
    assert_eq!(count_after("collector"), 0, "the collector's SYN left uncounted: {text}");
    let other = count_after("other-address");
    assert!(other >= 1, "a SYN to another address was not dropped: {text}");
    assert!(
        count_after("other-port") > other,
        "a SYN to the collector's address on another port was not dropped: {text}"
    );
    assert!(text.contains("ip daddr 10.9.0.2 tcp dport 8443 accept"), "{text}");
    eprintln!(
        "egress in a network namespace: dropped after the collector 0, another address {other}, another port {}",
        count_after("other-port")
    );
}
