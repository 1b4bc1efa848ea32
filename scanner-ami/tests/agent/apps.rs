//! The application inventory end to end ([`scanner_ami::apps::collect`] through the scan): one
//! tree holding every kind of application the agent reads (Trivy's Go, Rust and language
//! fixtures, a node_modules tree, a gemspec, Composer and .NET metadata, kernels) gives the same
//! packages from the directory, from an ext4 image and from an XFS image; the walk never follows
//! a symlink, skips the virtual directories and `.git`, stops at its caps with a note and goes on,
//! strips control characters, and leaves out metadata dpkg installed.

use std::collections::BTreeSet;
use std::process::Command;

use scanner_ami::apps::{AppEcosystem, AppPackage, AppRole, Applications};

use crate::util::{Tree, blank_image, fixtures, mkfs_ext4, run, scan_image, scan_root, syft, syft_json, tree_size};

/// (ecosystem, name, version, purl, location) of every package, sorted.
fn keyed(apps: &Applications) -> BTreeSet<(String, String, String, String, String)> {
    apps.packages
        .iter()
        .map(|p| {
            let eco = serde_json::to_value(p.ecosystem).expect("json").as_str().unwrap_or("").to_owned();
            (eco, p.name.clone(), p.version.clone(), p.purl.clone(), p.location.clone())
        })
        .collect()
}

fn find<'a>(apps: &'a Applications, purl: &str, location: &str) -> &'a AppPackage {
    apps.packages
        .iter()
        .find(|p| p.purl == purl && p.location == location)
        .unwrap_or_else(|| panic!("{purl} at {location} not found in {:#?}", keyed(apps)))
}

/// The tree of an application server.
pub(crate) fn app_tree() -> Tree {
    let t = Tree::new();
    t.os_release("amzn", "2023", "Amazon Linux 2023");
    t.copy("usr/local/bin/legacy-agent", "trivy/golang-binary/test.elf")
        .copy("usr/local/bin/ldflags-app", "trivy/golang-binary/main-version-via-ldflags.elf")
        .copy("usr/local/bin/crate-tool", "trivy/rust-binary/test.elf")
        .copy("usr/local/bin/dummy", "trivy/golang-binary/dummy")
        .copy("opt/tomcat/webapps/shop.war", "trivy/lang/java/maven.war")
        .copy(
            "usr/lib/python3.11/site-packages/distlib-0.3.1.dist-info/METADATA",
            "trivy/lang/python/distlib-0.3.1.dist-info/METADATA",
        )
        .copy("opt/legacy/distlib-0.3.1.egg-info/PKG-INFO", "trivy/lang/python/distlib-0.3.1.egg-info/PKG-INFO")
        .copy("srv/web/package.json", "trivy/lang/nodejs/package.json")
        .put("srv/web/node_modules/lodash/package.json", br#"{"name":"lodash","version":"4.17.20","license":"MIT"}"#)
        .put("srv/web/node_modules/@babel/core/package.json", br#"{"name":"@babel/core","version":"7.12.3"}"#)
        .put("srv/web/node_modules/lodash/fp/package.json", br#"{"name":"lodash-fp-helper","version":"0.0.0"}"#)
        .copy("usr/share/gems/specifications/multiple_licenses.gemspec", "trivy/lang/ruby/multiple_licenses.gemspec")
        .copy("var/www/app/vendor/composer/installed.json", "trivy/lang/php/installed.json")
        .copy("opt/collector/datacollector.deps.json", "trivy/lang/dotnet/datacollector.deps.json")
        .copy(
            "usr/lib/python3/dist-packages/_cgo.cpython-311-x86_64-linux-gnu.so",
            "trivy/golang-binary/main-version-via-ldflags.elf",
        )
        .put("boot/vmlinuz-6.1.61-85.amzn2023.x86_64", b"placeholder")
        .put("lib/modules/6.1.61-85.amzn2023.x86_64/modules.dep", b"");
    for bin in ["legacy-agent", "ldflags-app", "crate-tool", "dummy"] {
        let p = t.path().join("usr/local/bin").join(bin);
        run(Command::new("chmod").arg("0755").arg(&p));
    }
    t
}

fn assert_app_server(apps: &Applications, what: &str) {
    // Go: the go1.15.2 binary's main module (devel: no version), stdlib and three modules.
    let bin = "/usr/local/bin/legacy-agent";
    assert_eq!(find(apps, "pkg:golang/stdlib@v1.15.2", bin).role, AppRole::Stdlib, "{what}");
    find(apps, "pkg:golang/golang.org/x/xerrors@v0.0.0-20200804184101-5ec99f83aff1", bin);
    find(apps, "pkg:golang/github.com/aquasecurity/go-version@v0.0.0-20210121072130-637058cfe492", bin);
    let main = find(apps, "pkg:golang/github.com/aquasecurity/test", bin);
    assert_eq!((main.role, main.version.as_str()), (AppRole::Application, ""), "{what}");
    // The main module's version from -ldflags -X main.version.
    find(apps, "pkg:golang/github.com/aquasecurity/test@v1.0.0", "/usr/local/bin/ldflags-app");
    // A Go c-shared library without an execute bit (a cgo Python extension) is read for its name.
    find(apps, "pkg:golang/stdlib@v1.22.1", "/usr/lib/python3/dist-packages/_cgo.cpython-311-x86_64-linux-gnu.so");
    // Rust: the root crate and its library.
    let root = find(apps, "pkg:cargo/crate_with_features@0.1.0", "/usr/local/bin/crate-tool");
    assert_eq!(root.role, AppRole::Application, "{what}");
    assert_eq!(root.depends_on, ["pkg:cargo/library_crate@0.1.0"], "{what}");
    // Java: the war's own identity and a nested jar.
    find(apps, "pkg:maven/com.example/web-app@1.0-SNAPSHOT", "/opt/tomcat/webapps/shop.war");
    let jar = "/opt/tomcat/webapps/shop.war!/WEB-INF/lib/jackson-databind-2.9.10.6.jar";
    find(apps, "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.10.6", jar);
    // Python, dist-info and egg-info.
    find(apps, "pkg:pypi/distlib@0.3.1", "/usr/lib/python3.11/site-packages/distlib-0.3.1.dist-info/METADATA");
    find(apps, "pkg:pypi/distlib@0.3.1", "/opt/legacy/distlib-0.3.1.egg-info/PKG-INFO");
    // Node: package roots only (not lodash/fp's helper), scoped names encoded.
    find(apps, "pkg:npm/lodash@4.17.20", "/srv/web/node_modules/lodash/package.json");
    find(apps, "pkg:npm/%40babel/core@7.12.3", "/srv/web/node_modules/@babel/core/package.json");
    assert!(
        !apps.packages.iter().any(|p| p.name == "lodash-fp-helper"),
        "{what}: a subpath package.json is no package"
    );
    // One of each other ecosystem, and the kernel.
    for (eco, n) in [(AppEcosystem::Gem, 1), (AppEcosystem::Kernel, 1)] {
        assert_eq!(apps.packages.iter().filter(|p| p.ecosystem == eco).count(), n, "{what}: {eco:?}");
    }
    for eco in [AppEcosystem::Composer, AppEcosystem::Nuget] {
        assert!(apps.packages.iter().any(|p| p.ecosystem == eco), "{what}: no {eco:?} package");
    }
    find(apps, "pkg:generic/linux-kernel@6.1.61-85.amzn2023.x86_64", "/boot/vmlinuz-6.1.61-85.amzn2023.x86_64");
    // `dummy` is an executable but not ELF: nothing, and no error.
    assert!(apps.errors.is_empty(), "{what}: {:#?}", apps.errors);
    assert!(apps.stats.truncated.is_empty(), "{what}: {:?}", apps.stats.truncated);
}

/// The same packages from the tree, an ext4 image and an XFS image of it; and the readers take a
/// small part of the bytes the files hold.
#[test]
fn the_same_applications_from_a_directory_ext4_and_xfs() {
    let t = app_tree();
    let dir = scan_root(t.path()).applications.expect("applications");
    assert_app_server(&dir, "directory");
    let expected = keyed(&dir);

    let work = tempfile::tempdir().expect("tempdir");
    let mib = tree_size(t.path()) / (1024 * 1024) * 2 + 64;
    let ext4 = blank_image(work.path(), "apps.ext4", mib);
    mkfs_ext4(&ext4, 0, mib * 1024 * 1024, Some(t.path()), &[]);
    let from_ext4 = scan_image(&ext4);
    assert_eq!(keyed(from_ext4.applications.as_ref().expect("ext4 applications")), expected, "ext4");

    let xfs = blank_image(work.path(), "apps.xfs", mib.max(300));
    let proto = work.path().join("proto");
    let out = run(Command::new("python3").arg(fixtures().join("../tools/mkproto.py")).arg(t.path()));
    std::fs::write(&proto, out).expect("protofile");
    run(Command::new("mkfs.xfs").args(["-q", "-f", "-p"]).arg(&proto).arg(&xfs));
    let from_xfs = scan_image(&xfs);
    assert_eq!(keyed(from_xfs.applications.as_ref().expect("xfs applications")), expected, "xfs");

    // Bytes: the three binaries hold 4.3 MB but cost their headers, section tables and two
    // records (a few KiB each); the war's nested jars are deflated members that must be inflated
    // whole (2.5 MB), the metadata files are read whole (a few KiB).
    let size = |rel: &str| std::fs::metadata(t.path().join(rel)).expect("size").len();
    let binaries: u64 =
        ["legacy-agent", "ldflags-app", "crate-tool"].iter().map(|b| size(&format!("usr/local/bin/{b}"))).sum();
    let war = size("opt/tomcat/webapps/shop.war");
    let read = dir.stats.bytes_read;
    eprintln!("application readers: {read} bytes read; the binaries hold {binaries}, the war {war}");
    assert!(read < war + 64 * 1024, "{read} bytes read: more than the war and 64 KiB for everything else");
    assert!(binaries > 4_000_000, "the binaries hold {binaries} bytes");
}

/// No symlink is followed (a loop, a link to the root, a link into another node_modules), the
/// virtual directories and `.git` are not entered.
#[test]
fn the_walk_follows_no_symlink_and_skips_virtual_and_git_directories() {
    let t = Tree::new();
    t.os_release("debian", "12", "Debian GNU/Linux 12 (bookworm)")
        .put("srv/a/node_modules/left-pad/package.json", br#"{"name":"left-pad","version":"1.3.0"}"#)
        .symlink("srv/a/loop", "..")
        .symlink("srv/b", "/srv/a")
        .symlink("srv/root", "/")
        .symlink("srv/c/node_modules/left-pad", "/srv/a/node_modules/left-pad")
        .put("proc/1/root/package.json", br#"{"name":"in-proc","version":"1.0.0"}"#)
        .put("sys/x/package.json", br#"{"name":"in-sys","version":"1.0.0"}"#)
        .put("dev/package.json", br#"{"name":"in-dev","version":"1.0.0"}"#)
        .put("srv/repo/.git/package.json", br#"{"name":"in-git","version":"1.0.0"}"#)
        .put("srv/repo/package.json", br#"{"name":"repo","version":"2.0.0"}"#);
    let apps = scan_root(t.path()).applications.expect("applications");
    let names: Vec<(&str, &str)> = apps.packages.iter().map(|p| (p.name.as_str(), p.location.as_str())).collect();
    assert_eq!(
        names,
        [("left-pad", "/srv/a/node_modules/left-pad/package.json"), ("repo", "/srv/repo/package.json")],
        "{:#?}",
        apps
    );
    assert!(apps.stats.truncated.is_empty(), "{:?}", apps.stats.truncated);
}

/// The caps: a chain of directories deeper than 64 and a directory of 200,000 entries are noted
/// (the report says the application walk is incomplete) and the rest of the tree is still read.
#[test]
fn walk_caps_are_noted_and_the_walk_goes_on() {
    let t = Tree::new();
    t.os_release("debian", "12", "Debian GNU/Linux 12 (bookworm)");
    let deep: String = (0..70).map(|i| format!("d{i}/")).collect();
    t.put(&format!("srv/{deep}package.json"), br#"{"name":"too-deep","version":"1.0.0"}"#);
    let big = t.path().join("var/cache/big");
    std::fs::create_dir_all(&big).expect("mkdir");
    for i in 0..200_000 {
        std::fs::File::create(big.join(format!("f{i:06}"))).expect("create");
    }
    t.put("var/cache/zzz/package.json", br#"{"name":"after-the-big-directory","version":"1.0.0"}"#);
    let report = scan_root(t.path());
    let apps = report.applications.as_ref().expect("applications");
    let names: Vec<&str> = apps.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["after-the-big-directory"], "{apps:#?}");
    let notes = apps.stats.truncated.join("\n");
    assert!(notes.contains("deeper than 64 levels"), "{notes}");
    assert!(notes.contains("/var/cache/big: not listed") && notes.contains("more than 100000 entries"), "{notes}");
    assert_eq!(report.errors.iter().filter(|e| e.starts_with("applications: ")).count(), 2, "{:?}", report.errors);
}

/// Control and ANSI characters in names, versions and paths do not reach the output.
#[test]
fn control_characters_are_stripped() {
    let t = Tree::new();
    t.os_release("debian", "12", "Debian GNU/Linux 12 (bookworm)").put(
        "srv/evil\u{1b}[2J/package.json",
        "{\"name\":\"evil\\u001b[31m-pkg\",\"version\":\"1.0.0\\r\\u009b\"}".as_bytes(),
    );
    let apps = scan_root(t.path()).applications.expect("applications");
    let p = apps.packages.first().unwrap_or_else(|| panic!("{apps:#?}"));
    assert_eq!(
        (p.name.as_str(), p.version.as_str(), p.location.as_str()),
        ("evil[31m-pkg", "1.0.0", "/srv/evil[2J/package.json")
    );
    assert!(!p.purl.chars().any(char::is_control), "{}", p.purl);
}

/// Metadata that a dpkg package installed is reported once, as the OS package; a binary that a
/// dpkg package installed is kept and names its package.
#[test]
fn metadata_owned_by_dpkg_is_left_out_and_owned_binaries_are_marked() {
    let t = Tree::new();
    let meta = "usr/lib/python3/dist-packages/distlib-0.3.1.dist-info/METADATA";
    t.os_release("debian", "12", "Debian GNU/Linux 12 (bookworm)")
        .put("var/lib/dpkg/status", b"")
        .copy(meta, "trivy/lang/python/distlib-0.3.1.dist-info/METADATA")
        .copy(
            "usr/local/lib/python3.11/dist-packages/distlib-0.3.1.dist-info/METADATA",
            "trivy/lang/python/distlib-0.3.1.dist-info/METADATA",
        )
        .copy("usr/bin/ldflags-app", "trivy/golang-binary/main-version-via-ldflags.elf")
        .put(
            "var/lib/dpkg/info/python3-distlib.list",
            format!("/.\n/usr\n/usr/lib/python3/dist-packages\n/{meta}\n").as_bytes(),
        )
        .put("var/lib/dpkg/info/ldflags-app:amd64.list", b"/.\n/usr\n/usr/bin\n/usr/bin/ldflags-app\n");
    run(Command::new("chmod").arg("0755").arg(t.path().join("usr/bin/ldflags-app")));
    let apps = scan_root(t.path()).applications.expect("applications");
    let pypi: Vec<&str> =
        apps.packages.iter().filter(|p| p.ecosystem == AppEcosystem::Pypi).map(|p| p.location.as_str()).collect();
    assert_eq!(pypi, ["/usr/local/lib/python3.11/dist-packages/distlib-0.3.1.dist-info/METADATA"], "{apps:#?}");
    assert_eq!(apps.stats.os_owned_skipped, 1);
    let go = find(&apps, "pkg:golang/github.com/aquasecurity/test@v1.0.0", "/usr/bin/ldflags-app");
    assert!(go.properties.contains(&("os.package".to_owned(), "ldflags-app".to_owned())), "{go:#?}");
}

/// `--no-apps` leaves the application inventory out.
#[test]
fn no_apps_leaves_them_out() {
    let t = app_tree();
    let r =
        scanner_ami::scan::scan_root(t.path(), scanner_ami::scan::ScanOptions { no_apps: true, ..Default::default() })
            .expect("scan");
    assert!(r.applications.is_none());
}

/// The same with an rpm database made by rpm itself: the file lists in its headers say which
/// metadata and binaries the OS installed.
#[test]
fn metadata_owned_by_rpm_is_left_out_and_owned_binaries_are_marked() {
    let work = tempfile::tempdir().expect("tempdir");
    let meta = "/usr/lib/python3.9/site-packages/distlib-0.3.1.dist-info/METADATA";
    let spec = work.path().join("distlib.spec");
    std::fs::write(
        &spec,
        format!(
            "Name: python3-distlib\nVersion: 0.3.1\nRelease: 1\nSummary: s\nLicense: PSF\nBuildArch: noarch\n\
             %description\nstand-in (file list only)\n%install\n\
             mkdir -p %{{buildroot}}/usr/lib/python3.9/site-packages/distlib-0.3.1.dist-info %{{buildroot}}/usr/bin\n\
             touch %{{buildroot}}{meta} %{{buildroot}}/usr/bin/ldflags-app\n%files\n{meta}\n/usr/bin/ldflags-app\n"
        ),
    )
    .expect("spec");
    let top = work.path().join("rpmbuild");
    run(Command::new("rpmbuild")
        .arg("-bb")
        .args(["--define", &format!("_topdir {}", top.display())])
        .args(["--define", "__os_install_post %{nil}"])
        .arg(&spec));
    let t = Tree::new();
    t.os_release("almalinux", "9.1", "AlmaLinux 9.1 (Lime Lynx)")
        .copy(meta.trim_start_matches('/'), "trivy/lang/python/distlib-0.3.1.dist-info/METADATA")
        .copy(
            "opt/venv/lib/python3.9/site-packages/distlib-0.3.1.dist-info/METADATA",
            "trivy/lang/python/distlib-0.3.1.dist-info/METADATA",
        )
        .copy("usr/bin/ldflags-app", "trivy/golang-binary/main-version-via-ldflags.elf");
    run(Command::new("chmod").arg("0755").arg(t.path().join("usr/bin/ldflags-app")));
    run(Command::new("rpm")
        .arg("--root")
        .arg(t.path())
        .args(["--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite"])
        .args(["--justdb", "--nodeps", "--noscripts", "--notriggers", "-i"])
        .arg(top.join("RPMS/noarch/python3-distlib-0.3.1-1.noarch.rpm")));
    let apps = scan_root(t.path()).applications.expect("applications");
    let pypi: Vec<&str> =
        apps.packages.iter().filter(|p| p.ecosystem == AppEcosystem::Pypi).map(|p| p.location.as_str()).collect();
    assert_eq!(pypi, ["/opt/venv/lib/python3.9/site-packages/distlib-0.3.1.dist-info/METADATA"], "{apps:#?}");
    assert_eq!(apps.stats.os_owned_skipped, 1);
    let go = find(&apps, "pkg:golang/github.com/aquasecurity/test@v1.0.0", "/usr/bin/ldflags-app");
    assert!(go.properties.contains(&("os.package".to_owned(), "python3-distlib".to_owned())), "{go:#?}");
}

/// Syft on the Go and Rust binaries of the app server tree: the same modules and crates, with
/// the three differences below written down.
#[test]
fn binaries_against_syft() {
    let Some(syft) = syft() else {
        eprintln!("SKIP binaries_against_syft: no syft in the venv (scripts/setup-test-env.sh)");
        return;
    };
    let t = app_tree();
    t.copy("usr/local/bin/goexperiment", "trivy/golang-binary/goexperiment");
    run(Command::new("chmod").arg("0755").arg(t.path().join("usr/local/bin/goexperiment")));
    let doc = syft_json(&syft, t.path());
    let theirs: BTreeSet<(String, String)> = doc["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .filter(|a| a["type"] == "go-module" || a["type"] == "rust-crate")
        .filter_map(|a| Some((a["purl"].as_str()?.to_owned(), a["locations"][0]["path"].as_str()?.to_owned())))
        // Our Go rules, which Trivy shares, where Syft differs:
        .filter_map(|(purl, loc)| {
            // 1. A main module built as `(devel)` has no version for us (the issue: never
            //    `(devel)`; Trivy blanks it too): no advisory range can match "(devel)".
            let purl = purl.strip_suffix("@(devel)").map_or(purl.clone(), str::to_owned);
            // 2. `go run`/`go build file.go` binaries record `path command-line-arguments` and no
            //    `mod` line: no module, so no package for us (Trivy: only stdlib).
            if purl.starts_with("pkg:golang/command-line-arguments") {
                return None;
            }
            // 3. The Go toolchain as `stdlib@v1.22.1` (Trivy's form, which its Go advisories use);
            //    Syft writes `stdlib@1.22.1`.
            let purl = match purl.strip_prefix("pkg:golang/stdlib@") {
                Some(v) => format!("pkg:golang/stdlib@v{v}"),
                None => purl,
            };
            Some((purl, loc))
        })
        .collect();
    let apps = scan_root(t.path()).applications.expect("applications");
    let ours: BTreeSet<(String, String)> = apps
        .packages
        .iter()
        .filter(|p| matches!(p.ecosystem, AppEcosystem::Golang | AppEcosystem::Cargo))
        .map(|p| (p.purl.clone(), p.location.clone()))
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 12, "{ours:#?}");
}
