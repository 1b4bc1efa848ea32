//! The demo fleet (`tests/data/sim/demo-fleet.toml`) and its committed, compressed disk images
//! (`tests/data/demo/*.img.gz`, `scripts/make-demo-fleet.sh`): the fleet loads; every
//! image-backed volume is backed by an existing, decompressed disk whose first bytes are a GPT
//! header, an ext4 superblock or an LVM2 label; the decompression cache is the data directory's and is used
//! once; an image that expands beyond the limit (a gzip bomb, whatever its header claims) or is
//! not gzip at all is refused with the key it is about.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use agentless::cloud::sim::state::{Life, Manager, World};
use agentless::cloud::sim::{Fleet, FleetError, SimError};

fn demo_fleet() -> Fleet {
    Fleet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sim/demo-fleet.toml")).expect("demo fleet")
}

/// What the first bytes of a disk say it is.
#[derive(Debug, PartialEq, Eq)]
enum Layout {
    /// "EFI PART" at LBA 1 (UEFI specification, "GPT Header").
    Gpt,
    /// The ext2/3/4 magic 0xEF53 at byte 1080 (superblock at 1024, `s_magic` at +0x38).
    Ext4,
    /// A whole-disk LVM2 physical volume: "LABELONE", and "LVM2 001" 24 bytes further, in
    /// sector 1, where pvcreate writes its label (lvm2 `lib/label/label.h`).
    LvmPv,
    Other,
}

fn layout(path: &Path) -> Layout {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if bytes.get(512..520) == Some(b"EFI PART".as_slice()) {
        Layout::Gpt
    } else if bytes.get(1080..1082) == Some([0x53, 0xEF].as_slice()) {
        Layout::Ext4
    } else if bytes.get(512..520) == Some(b"LABELONE".as_slice()) && bytes.get(536..544) == Some(b"LVM2 001".as_slice())
    {
        Layout::LvmPv
    } else {
        Layout::Other
    }
}

/// One volume of the built world: (instance Name, device) -> (backing, encrypted, key manager,
/// volume type, delete on termination, used GiB).
type Volumes = BTreeMap<(String, String), (Option<PathBuf>, bool, Option<Manager>, String, bool, u32)>;

fn volumes(world: &World) -> Volumes {
    let mut out = BTreeMap::new();
    for a in world.accounts.values() {
        for r in a.regions.values() {
            for i in r.instances.values() {
                let name = i.tags.name().unwrap_or_default().to_owned();
                for att in &i.attachments {
                    let v = &r.volumes[&att.volume_id];
                    let manager = v.kms_key_id.as_ref().and_then(|k| r.key(k)).map(|k| k.manager);
                    out.insert(
                        (name.clone(), att.device_name.clone()),
                        (
                            v.backing.clone(),
                            v.encrypted,
                            manager,
                            v.volume_type.clone(),
                            att.delete_on_termination,
                            v.used_gib,
                        ),
                    );
                }
            }
        }
    }
    out
}

#[test]
fn the_demo_fleet_is_backed_by_decompressed_images_in_the_data_directory() {
    let data = tempfile::tempdir().expect("tempdir");
    let world = demo_fleet().build_in(Some(data.path())).expect("build");
    let vols = volumes(&world);
    let images = std::path::absolute(data.path().join("images")).expect("absolute");
    let expect = [
        ("demo-web-1", "/dev/xvda", Some("demo-disk.img"), Layout::Gpt),
        ("demo-db-1", "/dev/xvda", Some("demo-rhel"), Layout::Gpt),
        ("demo-db-1", "/dev/sdf", Some("demo-pgdata"), Layout::Ext4),
        ("demo-app-1", "/dev/xvda", Some("demo-alpine"), Layout::Ext4),
        ("demo-app-1", "/dev/sdf", Some("demo-appdata"), Layout::Ext4),
        ("demo-app-1", "/dev/sdg", Some("demo-logs"), Layout::Gpt),
        ("demo-batch-1", "/dev/xvda", None, Layout::Other),
        ("demo-al-1", "/dev/xvda", Some("demo-al2023"), Layout::Gpt),
        ("demo-rhel8-1", "/dev/xvda", Some("demo-rhel8-root"), Layout::Gpt),
        ("demo-rhel8-1", "/dev/sdf", Some("demo-rhel8-var"), Layout::LvmPv),
        ("demo-sles-1", "/dev/xvda", Some("demo-sles15"), Layout::Gpt),
    ];
    assert_eq!(vols.len(), expect.len(), "{vols:#?}");
    for (name, device, image, want) in expect {
        let (backing, _, _, _, _, used) = &vols[&(name.to_owned(), device.to_owned())];
        match (image, backing) {
            (None, None) => {}
            (Some(image), Some(path)) => {
                assert!(path.is_absolute() && path.is_file(), "{name} {device}: {}", path.display());
                let file = path.file_name().and_then(|f| f.to_str()).expect("file name");
                if image.ends_with(".img") {
                    // Uncompressed: the committed file itself.
                    assert!(path.ends_with(format!("tests/data/demo/{image}")), "{}", path.display());
                } else {
                    assert!(path.starts_with(&images), "{} not in {}", path.display(), images.display());
                    assert!(file.starts_with(&format!("{image}-")) && file.ends_with(".img"), "{file}");
                }
                assert_eq!(layout(path), want, "{name} {device}: {}", path.display());
                assert_eq!(*used, 1, "{name} {device}: small used size, short demo snapshots");
            }
            other => panic!("{name} {device}: {other:?}"),
        }
    }
    // The database's data volume is under the customer managed key, whose key policy names our
    // principal as a key user and does not defer to IAM; the application's data volume under
    // aws/ebs; the log volume is st1 and kept.
    let db = &vols[&("demo-db-1".to_owned(), "/dev/sdf".to_owned())];
    assert_eq!((db.1, db.2), (true, Some(Manager::Customer)));
    assert!(world.settings.keys_allowing_account_use.is_empty());
    assert_eq!(world.settings.keys_allowing_caller_use.len(), 1);
    let app = &vols[&("demo-app-1".to_owned(), "/dev/sdf".to_owned())];
    assert_eq!((app.1, app.2), (true, Some(Manager::Aws)));
    let logs = &vols[&("demo-app-1".to_owned(), "/dev/sdg".to_owned())];
    assert_eq!((logs.3.as_str(), logs.4), ("st1", false));
    let stopped = world
        .accounts
        .values()
        .flat_map(|a| a.regions.values())
        .flat_map(|r| r.instances.values())
        .filter(|i| i.life == Life::Stopped)
        .count();
    assert_eq!(stopped, 1);
    // Demo-friendly latencies and a vCPU quota.
    assert_eq!(world.settings.latencies.instance_boot_ms, 2000);
    assert_eq!(world.settings.quotas.vcpus_per_region, Some(64));
}

#[test]
fn images_are_decompressed_once() {
    let data = tempfile::tempdir().expect("tempdir");
    let fleet = demo_fleet();
    let backing = |w: &World| {
        let mut v: Vec<PathBuf> = volumes(w).into_values().filter_map(|v| v.0).collect();
        v.sort();
        v
    };
    let first = backing(&fleet.build_in(Some(data.path())).expect("first"));
    let stamps = |paths: &[PathBuf]| {
        paths.iter().map(|p| std::fs::metadata(p).and_then(|m| m.modified()).expect("mtime")).collect::<Vec<_>>()
    };
    let before = stamps(&first);
    let second = backing(&fleet.build_in(Some(data.path())).expect("second"));
    assert_eq!(first, second, "same cache files");
    assert_eq!(stamps(&second), before, "not written again");
    let cached = std::fs::read_dir(data.path().join("images")).expect("cache").count();
    assert_eq!(cached, 9, "one file per compressed image, no temporary file left");
}

/// A gzip of `len` zero bytes whose trailer claims `claimed` bytes (RFC 1952: ISIZE, the last 4
/// bytes, little-endian).
fn gz_of_zeros(path: &Path, len: usize, claimed: u32) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        enc.write_all(&chunk[..n]).expect("compress");
        left -= n;
    }
    let mut gz = enc.finish().expect("finish");
    let at = gz.len() - 4;
    gz[at..].copy_from_slice(&claimed.to_le_bytes());
    std::fs::write(path, gz).expect("write gz");
}

fn one_volume_fleet(image: &Path, size_gib: u32, max_image_mib: u64) -> Fleet {
    Fleet::parse(&format!(
        "max_image_mib = {max_image_mib}\n[[accounts]]\nid = \"111122223333\"\nregions = [\"us-east-1\"]\n\
         [[accounts.instances]]\nregion = \"us-east-1\"\n[[accounts.instances.volumes]]\nsize_gib = {size_gib}\n\
         image = \"{}\"\n",
        image.display()
    ))
    .expect("fleet")
}

#[test]
fn an_image_that_expands_beyond_the_limit_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("data dir");
    // 3 MiB of zeros (a few KiB compressed) whose header claims 1 KiB, under a 1 MiB limit.
    let bomb = dir.path().join("bomb.img.gz");
    gz_of_zeros(&bomb, 3 << 20, 1024);
    match one_volume_fleet(&bomb, 8, 1).build_in(Some(data.path())).expect_err("refused") {
        SimError::Fleet(FleetError::Invalid { key, message }) => {
            assert_eq!(key, "accounts[0].instances[0].volumes[0].image");
            assert!(message.contains("max_image_mib = 1") && message.contains("bomb.img.gz"), "{message}");
        }
        other => panic!("{other}"),
    }
    let left: Vec<_> = std::fs::read_dir(data.path().join("images")).expect("cache dir").collect();
    assert!(left.is_empty(), "nothing kept: {left:?}");
    // Exactly at the limit it is accepted, and backs the volume.
    let fits = dir.path().join("fits.img.gz");
    gz_of_zeros(&fits, 1 << 20, 1 << 20);
    let world = one_volume_fleet(&fits, 8, 1).build_in(Some(data.path())).expect("within the limit");
    let backing: Vec<PathBuf> = volumes(&world).into_values().filter_map(|v| v.0).collect();
    assert_eq!(backing.len(), 1);
    assert_eq!(std::fs::metadata(&backing[0]).expect("decompressed").len(), 1 << 20);
    // Not gzip at all.
    let junk = dir.path().join("junk.img.gz");
    std::fs::write(&junk, b"this is not gzip").expect("write");
    match one_volume_fleet(&junk, 8, 1).build_in(Some(data.path())).expect_err("not gzip") {
        SimError::Fleet(FleetError::Invalid { key, message }) => {
            assert_eq!(key, "accounts[0].instances[0].volumes[0].image");
            assert!(message.contains("not a readable gzip file"), "{message}");
        }
        other => panic!("{other}"),
    }
}

/// The images of the XFS, LVM and btrfs instances, scanned by the agent's code directly (the
/// disks of one instance together, as a scanner sees them: `scan_images`), give what their
/// fixtures hold (tests/data/demo/README.md): demo-al2023 the 129 CBL-Mariner packages on XFS;
/// demo-rhel8's root on the first disk, its /var and /var/log logical volumes on the second (an
/// LVM2 PV written by scripts/demo/lvm-pv.py), and through /var the one package of the RHEL 8
/// Berkeley DB; demo-sles15 the 35 packages of SUSE's NDB database in the snapper snapshot, /var
/// and /home from their subvolumes. Alone, the RHEL 8 root disk finds its OS but no package.
#[test]
fn the_xfs_lvm_and_btrfs_instances_scan_to_their_fixtures() {
    use scanner_ami::scan::{ScanOptions, scan_images};
    let data = tempfile::tempdir().expect("tempdir");
    let world = demo_fleet().build_in(Some(data.path())).expect("build");
    let vols = volumes(&world);
    let image = |name: &str, device: &str| -> PathBuf {
        vols[&(name.to_owned(), device.to_owned())].0.clone().unwrap_or_else(|| panic!("{name} {device}"))
    };
    let scan = |paths: &[&Path]| -> Vec<serde_json::Value> {
        scan_images(paths, ScanOptions { baseline: false, ..Default::default() })
            .expect("scan")
            .iter()
            .map(|r| serde_json::to_value(r).expect("json"))
            .collect()
    };
    let count = |r: &serde_json::Value| r["packages"].as_array().map_or(0, Vec::len);
    let mounts = |r: &serde_json::Value| -> BTreeMap<String, (String, String)> {
        r["mounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let s = |k: &str| m[k].as_str().unwrap_or("").to_owned();
                (s("target"), (serde_json::to_string(&m["status"]).unwrap_or_default(), s("volume")))
            })
            .collect()
    };

    let al = scan(&[&image("demo-al-1", "/dev/xvda")]);
    assert_eq!((al[0]["os"]["id"].as_str(), count(&al[0])), (Some("mariner"), 129), "{:#}", al[0]);
    assert_eq!(al[0]["errors"], serde_json::json!([]), "{:#}", al[0]);
    // The app server's applications (tests/data/demo/README.md), read off XFS.
    let apps: BTreeSet<(String, String)> = al[0]["applications"]["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (p["purl"].as_str().unwrap_or("").to_owned(), p["location"].as_str().unwrap_or("").to_owned()))
        .collect();
    for (purl, location) in [
        ("pkg:golang/stdlib@v1.15.2", "/usr/local/bin/legacy-agent"),
        ("pkg:golang/golang.org/x/xerrors@v0.0.0-20200804184101-5ec99f83aff1", "/usr/local/bin/legacy-agent"),
        ("pkg:golang/github.com/aquasecurity/test@v1.0.0", "/usr/local/bin/ldflags-app"),
        ("pkg:cargo/crate_with_features@0.1.0", "/usr/local/bin/crate-tool"),
        ("pkg:maven/com.example/web-app@1.0-SNAPSHOT", "/opt/tomcat/webapps/shop.war"),
        (
            "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.10.6",
            "/opt/tomcat/webapps/shop.war!/WEB-INF/lib/jackson-databind-2.9.10.6.jar",
        ),
        ("pkg:pypi/distlib@0.3.1", "/usr/local/lib/python3.9/site-packages/distlib-0.3.1.dist-info/METADATA"),
        ("pkg:npm/lodash@4.17.20", "/srv/web/node_modules/lodash/package.json"),
        ("pkg:generic/linux-kernel@6.1.72-96.amzn2023.x86_64", "/boot/vmlinuz-6.1.72-96.amzn2023.x86_64"),
    ] {
        assert!(apps.contains(&(purl.to_owned(), location.to_owned())), "{purl} at {location}: {apps:#?}");
    }
    let default_kernel: Vec<&str> = al[0]["applications"]["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["properties"].as_array().into_iter().flatten().any(|kv| kv[0] == "kernel.default-boot"))
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(default_kernel, ["6.1.61-85.amzn2023.x86_64"], "GRUB's saved_entry names the BLS entry of 6.1.61");

    let (root, var) = (image("demo-rhel8-1", "/dev/xvda"), image("demo-rhel8-1", "/dev/sdf"));
    let rhel = scan(&[&root, &var]);
    assert_eq!((rhel[0]["os"]["id"].as_str(), rhel[0]["os"]["version_id"].as_str()), (Some("rhel"), Some("8.8")));
    let names: Vec<String> = rhel[0]["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or("").to_owned();
            format!("{} {}-{}", s("name"), s("version"), s("release"))
        })
        .collect();
    assert_eq!(names, ["libuuid 2.32.1-42.el8_8"], "{:#}", rhel[0]);
    assert_eq!(rhel[0]["errors"], serde_json::json!([]), "{:#}", rhel[0]);
    let m = mounts(&rhel[0]);
    for (target, lv) in [("/var", "rhel/var"), ("/var/log", "rhel/log")] {
        let (status, volume) = &m[target];
        assert!(status == "\"assembled\"" && volume.contains(lv), "{target}: {m:?}");
    }
    assert_eq!(m["/boot"].0, "\"assembled\"", "{m:?}");
    // The PV disk: no OS, its two LVs listed, assembled into the root of the first disk.
    assert_eq!((count(&rhel[1]), rhel[1]["os"].is_null()), (0, true), "{:#}", rhel[1]);
    assert!(rhel[1]["assembled_into"].as_str().is_some(), "{:#}", rhel[1]);
    let lvs: BTreeSet<(String, String, u64)> = rhel[1]["logical_volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                l["vg"].as_str().unwrap_or("").to_owned(),
                l["name"].as_str().unwrap_or("").to_owned(),
                l["size"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let lv = |n: &str| ("rhel".to_owned(), n.to_owned(), 16 << 20);
    assert_eq!(lvs, BTreeSet::from([lv("log"), lv("var")]), "{:#}", rhel[1]);
    // The root disk alone: RHEL 8.8, but /var (and with it the rpm database) is missing.
    let alone = scan(&[&root]);
    assert_eq!((alone[0]["os"]["id"].as_str(), count(&alone[0])), (Some("rhel"), 0), "{:#}", alone[0]);

    let sles = scan(&[&image("demo-sles-1", "/dev/xvda")]);
    assert_eq!((sles[0]["os"]["id"].as_str(), sles[0]["os"]["version_id"].as_str()), (Some("sles"), Some("15.3")));
    assert_eq!(count(&sles[0]), 35, "{:#}", sles[0]);
    assert_eq!(sles[0]["errors"], serde_json::json!([]), "{:#}", sles[0]);
    let m = mounts(&sles[0]);
    for target in ["/var", "/home"] {
        assert_eq!(m[target].0, "\"assembled\"", "{target}: {m:?}");
    }
}

/// `losetup -d` on drop.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

/// `umount` on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The LVM2 physical volume of demo-rhel8-var, written by scripts/demo/lvm-pv.py without lvm2,
/// is what lvm2's own tools read (the oracle; read-only loop device, a private configuration
/// that sees only it, no activation, no backup): PV and VG UUIDs, pe_start 1 MiB, 4 MiB extents,
/// seqno 1, LV log on extents 0-3 and LV var on 4-7; and the kernel mounts the XFS at
/// pe_start + 4 extents, with the RHEL 8 rpm database in it.
#[test]
fn the_rhel8_pv_is_what_lvm2_and_the_kernel_read() {
    let data = tempfile::tempdir().expect("tempdir");
    let world = demo_fleet().build_in(Some(data.path())).expect("build");
    let vols = volumes(&world);
    let image = vols[&("demo-rhel8-1".to_owned(), "/dev/sdf".to_owned())].0.clone().expect("image");
    let dev = run(std::process::Command::new("losetup").args(["-f", "--show", "-r"]).arg(&image)).trim().to_owned();
    assert!(dev.starts_with("/dev/loop"), "losetup gave {dev:?}");
    let lo = Loop(dev);
    let etc = data.path().join("lvm");
    std::fs::create_dir_all(&etc).expect("mkdir");
    std::fs::write(
        etc.join("lvm.conf"),
        format!(
            "devices {{ obtain_device_list_from_udev = 0 use_devicesfile = 0 filter = [ \"a|^{}$|\", \"r|.*|\" ] }}\n\
             global {{ activation = 0 }}\nbackup {{ backup = 0 archive = 0 }}\n",
            lo.0
        ),
    )
    .expect("lvm.conf");
    let report = |args: &[&str]| -> Vec<Vec<String>> {
        let out = run(std::process::Command::new("lvm")
            .args(&args[..1])
            .args(["--noheadings", "--nosuffix", "--units", "b", "--separator", "|"])
            .args(&args[1..])
            .env("LVM_SYSTEM_DIR", &etc)
            .env("LVM_SUPPRESS_FD_WARNINGS", "1"));
        out.lines().filter(|l| !l.trim().is_empty()).map(|l| l.trim().split('|').map(str::to_owned).collect()).collect()
    };
    let pvs = report(&["pvs", "-o", "pv_name,vg_name,pv_uuid,pe_start,pv_size,dev_size"]);
    let size = (33u64 << 20).to_string();
    assert_eq!(
        pvs,
        [[
            lo.0.as_str(),
            "rhel",
            "Rhel8P-Vdem-o000-0000-0000-0000-000001",
            "1048576",
            &(32u64 << 20).to_string(),
            &size
        ]],
    );
    let vgs = report(&["vgs", "-o", "vg_uuid,vg_extent_size,vg_seqno,lv_count,vg_free", "rhel"]);
    assert_eq!(vgs, [["Rhel8V-Gdem-o000-0000-0000-0000-000001", "4194304", "1", "2", "0"]]);
    let lvs = report(&["lvs", "--segments", "-o", "lv_name,lv_uuid,lv_size,segtype,seg_pe_ranges", "rhel"]);
    let range = |r: &str| format!("{}:{r}", lo.0);
    let lv = |n: &str, id: &str, r: &str| {
        vec![n.to_owned(), id.to_owned(), (16u64 << 20).to_string(), "linear".into(), range(r)]
    };
    assert_eq!(
        lvs,
        [
            lv("log", "Rhel8L-Vlog-0000-0000-0000-0000-000001", "0-3"),
            lv("var", "Rhel8L-Vvar-0000-0000-0000-0000-000001", "4-7")
        ],
    );
    // The var LV's first byte: pe_start + start extent 4 x 4 MiB (mount refuses a second loop
    // device over the same file, so the first goes).
    drop(lo);
    let mnt = data.path().join("var");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let opts = format!("ro,loop,offset={},sizelimit={}", (1u64 << 20) + 4 * (4u64 << 20), 16u64 << 20);
    run(std::process::Command::new("mount").args(["-t", "xfs", "-o", &opts]).arg(&image).arg(&mnt));
    let mnt = Mounted(mnt);
    let db = std::fs::metadata(mnt.0.join("lib/rpm/Packages")).expect("the rpm database on the var LV");
    assert_eq!(db.len(), 94208, "go-rpmdb's libuuid Packages");
    assert!(mnt.0.join("log").is_dir(), "the /var/log mount point");
}
