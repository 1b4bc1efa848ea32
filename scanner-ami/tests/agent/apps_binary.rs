//! Executables (`apps::binary`): Trivy's Go and Rust binary fixtures give exactly the packages of
//! their `expected.json` and match the `go version -m` text kept beside them; every Go binary on this
//! machine and `cargo auditable` sections built with objcopy match the `pygorpmrustinfo` oracle
//! (Go's own `debug/buildinfo` and go-rustaudit); hostile files are per-file errors; bytes read stay
//! a few KiB per binary.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use scanner_ami::apps::{AppPackage, AppRole, binary, golang, rustaudit};
use scanner_ami::fs::{FileRead, FsError, MemFile};

use crate::util::{fixtures, project_root, run};

/// A host file that counts the bytes and reads asked of it.
struct Counting {
    file: std::fs::File,
    len: u64,
    bytes: u64,
    reads: u64,
}

impl Counting {
    fn open(path: &Path) -> Self {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let len = file.metadata().expect("metadata").len();
        Counting { file, len, bytes: 0, reads: 0 }
    }
}

impl FileRead for Counting {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        self.bytes += buf.len() as u64;
        self.reads += 1;
        self.file.read_exact_at(buf, offset).map_err(|e| FsError::Io { path: "<host>".into(), reason: e.to_string() })
    }
}

/// Read one host file: its packages (or error) and the bytes read.
fn scan(path: &Path) -> (Result<Vec<AppPackage>, String>, u64) {
    let mut f = Counting::open(path);
    let r = binary::read(&mut f, &path.to_string_lossy()).map_err(|e| e.to_string());
    (r, f.bytes)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).expect("json")
}

/// Compare one fixture directory with its `expected.json`: the same (name, version) set, the
/// `root` relationship as the application, `stdlib` as the stdlib; build-only crates (which Trivy
/// drops) excluded; `error` entries give no packages. Returns the packages per file.
fn check_expected(dir: &str) -> BTreeMap<String, Vec<AppPackage>> {
    let dir = fixtures().join(dir);
    let expected = json(&dir.join("expected.json"));
    let files = expected["files"].as_object().expect("files");
    let mut out = BTreeMap::new();
    for (name, want) in files {
        let (got, bytes) = scan(&dir.join(name));
        let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
        if want.get("error").is_some() {
            assert_eq!(got, [], "{name}: Trivy reports {}", want["error"]);
            continue;
        }
        let mut want_set = BTreeSet::new();
        for p in want["packages"].as_array().expect("packages") {
            let (n, v) = (
                p["name"].as_str().expect("valid in this test").to_owned(),
                p["version"].as_str().expect("valid in this test").to_owned(),
            );
            let role = match (p["relationship"].as_str(), n.as_str()) {
                (Some("root"), _) => AppRole::Application,
                (_, "stdlib") => AppRole::Stdlib,
                _ => AppRole::Library,
            };
            want_set.insert((n, v, role));
        }
        let got_set: BTreeSet<_> = got
            .iter()
            .filter(|p| p.role != AppRole::BuildDependency)
            .map(|p| (p.name.clone(), p.version.clone(), p.role))
            .collect();
        assert_eq!(got_set, want_set, "{name}");
        assert_eq!(got.len(), want_set.len(), "{name}: no duplicates");
        for p in &got {
            assert_eq!(p.location, dir.join(name).to_string_lossy(), "{name}");
        }
        // Trivy's dependency edges, where stated (Rust).
        if let Some(edges) = want.get("dependencies").and_then(|d| d.as_array()) {
            for e in edges {
                let id = e["id"].as_str().expect("valid in this test");
                let (n, v) = id.rsplit_once('@').expect("valid in this test");
                let p = got.iter().find(|p| p.name == n && p.version == v).unwrap_or_else(|| panic!("{id}"));
                let want_deps: Vec<String> = e["dependsOn"]
                    .as_array()
                    .expect("valid in this test")
                    .iter()
                    .map(|d| {
                        let (n, v) =
                            d.as_str().expect("valid in this test").rsplit_once('@').expect("valid in this test");
                        format!("pkg:cargo/{n}@{v}")
                    })
                    .collect();
                assert_eq!(p.depends_on, want_deps, "{name}: {id}");
            }
        }
        eprintln!(
            "{name}: {} packages, {bytes} bytes read of {}",
            got.len(),
            std::fs::metadata(dir.join(name)).expect("valid in this test").len()
        );
        out.insert(name.clone(), got);
    }
    out
}

#[test]
fn go_fixtures_match_trivy_expected() {
    let got = check_expected("trivy/golang-binary");
    assert_eq!(got.len(), 3);
    let test = &got["test.elf"];
    let main = test.iter().find(|p| p.role == AppRole::Application).expect("valid in this test");
    assert_eq!(main.purl, "pkg:golang/github.com/aquasecurity/test");
    assert_eq!(main.depends_on.len(), 4, "three modules and stdlib");
    assert!(main.depends_on.contains(&"pkg:golang/stdlib@v1.15.2".to_owned()));
    let ld = &got["main-version-via-ldflags.elf"];
    let main = ld.iter().find(|p| p.role == AppRole::Application).expect("valid in this test");
    assert_eq!(main.purl, "pkg:golang/github.com/aquasecurity/test@v1.0.0");
    let props: BTreeMap<_, _> = main.properties.iter().cloned().collect();
    assert_eq!(props["go.build.-ldflags"], "-w -X main.version=v1.0.0");
    assert_eq!(props["go.version"], "go1.22.1");
    assert_eq!(props["go.build.vcs.revision"], "9640d75c13845419f5797e2e3ac3475f8d801d79");
}

#[test]
fn rust_fixture_matches_trivy_expected() {
    let got = check_expected("trivy/rust-binary");
    let pk = &got["test.elf"];
    assert_eq!(pk[0].role, AppRole::Application);
    assert_eq!(pk[0].properties, [("cargo.source".to_owned(), "local".to_owned())]);
}

/// One binary's modules as `go version -m` printed them.
#[derive(Debug, Default)]
struct GoVersionM {
    go: String,
    path: String,
    main: Option<(String, String)>,
    deps: Vec<(String, String)>,
    build: Vec<(String, String)>,
}

/// Parse `go-version-m.oracle.txt`: `== dir/file` headers, `file: goversion`, then tab-indented
/// `path`, `mod`, `dep`, `=>`, `build` lines (build values Go-quoted when they hold spaces).
fn parse_go_version_m(text: &str) -> BTreeMap<String, GoVersionM> {
    let mut out: BTreeMap<String, GoVersionM> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("== ") {
            let name = h.rsplit('/').next().expect("valid in this test").to_owned();
            out.insert(name.clone(), GoVersionM::default());
            cur = Some(name);
            continue;
        }
        let m = out.get_mut(cur.as_ref().expect("header first")).expect("valid in this test");
        let Some(body) = line.strip_prefix('\t') else {
            m.go = line.split_once(": ").expect("file: version").1.to_owned();
            continue;
        };
        let cols: Vec<&str> = body.split('\t').collect();
        match cols[0] {
            "path" => m.path = cols[1].to_owned(),
            "mod" => m.main = Some((cols[1].to_owned(), cols[2].to_owned())),
            "dep" => m.deps.push((cols[1].to_owned(), cols[2].to_owned())),
            "=>" => *m.deps.last_mut().expect("valid in this test") = (cols[1].to_owned(), cols[2].to_owned()),
            "build" => {
                let (k, v) = cols[1].split_once('=').expect("valid in this test");
                let v = if v.starts_with('"') {
                    serde_json::from_str::<String>(v).expect("valid in this test")
                } else {
                    v.to_owned()
                };
                m.build.push((k.to_owned(), v));
            }
            other => panic!("unknown line {other}"),
        }
    }
    out
}

#[test]
fn go_fixtures_match_go_version_m() {
    let dir = fixtures().join("trivy/golang-binary");
    let oracle =
        parse_go_version_m(&std::fs::read_to_string(dir.join("go-version-m.oracle.txt")).expect("valid in this test"));
    assert_eq!(oracle.len(), 3);
    for (name, want) in &oracle {
        let mut f = Counting::open(&dir.join(name));
        let elf = scanner_ami::apps::elf::ElfFile::read(&mut f, name)
            .expect("valid in this test")
            .expect("valid in this test");
        let info = golang::read_build_info(&elf, &mut f, name).expect("valid in this test").expect("Go build info");
        assert_eq!(info.go_version, want.go, "{name}");
        assert_eq!(info.path, want.path, "{name}");
        assert_eq!(info.main.as_ref().map(|m| (m.path.clone(), m.version.clone())), want.main, "{name}");
        let deps: Vec<_> = info
            .deps
            .iter()
            .map(|d| {
                let m = d.replace.as_deref().unwrap_or(d);
                (m.path.clone(), m.version.clone())
            })
            .collect();
        assert_eq!(deps, want.deps, "{name}");
        assert_eq!(info.settings, want.build, "{name}");
        // And the packages carry those settings.
        let pk = binary::read(&mut Counting::open(&dir.join(name)), name).expect("valid in this test");
        if let Some(main) = pk.iter().find(|p| p.role == AppRole::Application) {
            let n = main.properties.iter().filter(|(k, _)| k.starts_with("go.build.")).count();
            assert_eq!(n, want.build.len(), "{name}");
        }
    }
}

#[test]
fn bytes_read_stay_small() {
    // Go fixtures of 1.3–2.6 MB and the Rust one of 400 KB: headers, names and the two records.
    for (rel, most) in [
        ("trivy/golang-binary/test.elf", 16 << 10),
        ("trivy/golang-binary/main-version-via-ldflags.elf", 16 << 10),
        ("trivy/golang-binary/goexperiment", 16 << 10),
        ("trivy/rust-binary/test.elf", 16 << 10),
        ("trivy/golang-binary/dummy", 4),
    ] {
        let path = fixtures().join(rel);
        let (r, bytes) = scan(&path);
        assert!(r.is_ok(), "{rel}");
        let size = std::fs::metadata(&path).expect("valid in this test").len();
        eprintln!("{rel}: {bytes} bytes read of {size}");
        assert!(bytes <= most, "{rel}: {bytes} bytes read, bound {most}");
    }
    // A non-Go, non-Rust ELF: headers only.
    let (r, bytes) = scan(Path::new("/bin/true"));
    assert_eq!(r, Ok(Vec::new()));
    assert!(bytes <= 16 << 10, "/bin/true: {bytes} bytes");
}

/// The project's Python venv (a symlink to the main checkout's in a worktree).
fn venv_python() -> Option<PathBuf> {
    let py = project_root().join(".venv/bin/python");
    let ok = py.exists()
        && Command::new(&py)
            .args(["-c", "import pygorpmrustinfo"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    ok.then_some(py)
}

/// Run the oracle on `paths` in one process: `{path: result}` (`get_go_build_info` or
/// `get_rust_audit`).
fn oracle(py: &Path, func: &str, paths: &[PathBuf]) -> BTreeMap<String, serde_json::Value> {
    let list = tempfile::NamedTempFile::new().expect("valid in this test");
    let names: Vec<String> = paths.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    std::fs::write(list.path(), names.join("\n")).expect("valid in this test");
    let script = format!(
        "import json,sys,pygorpmrustinfo as p\nr={{}}\nfor f in open(sys.argv[1]).read().split('\\n'):\n    if f: r[f]=p.{func}(f)\nprint(json.dumps(r))"
    );
    let out = run(Command::new(py).arg("-c").arg(script).arg(list.path()));
    serde_json::from_str(&out).expect("oracle json")
}

/// ELF files of at least 64 KiB under the usual binary directories (no symlinks, depth ≤ 6),
/// plus the oracle's own c-shared Go library: at most `cap`.
fn elf_candidates(cap: usize) -> Vec<PathBuf> {
    let venv_lib = project_root().join(".venv/lib");
    let mut roots: Vec<PathBuf> =
        ["/usr/local/bin", "/usr/bin", "/usr/sbin", "/usr/libexec", "/usr/lib", "/root/go/bin", "/opt"]
            .iter()
            .map(PathBuf::from)
            .collect();
    roots.push(venv_lib);
    let mut out = Vec::new();
    let mut stack: Vec<(PathBuf, usize)> = roots.into_iter().map(|r| (r, 0)).collect();
    stack.reverse();
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(ft) = e.file_type() else { continue };
            let p = e.path();
            if ft.is_dir() && depth < 6 {
                stack.push((p, depth + 1));
            } else if ft.is_file() {
                let Ok(m) = e.metadata() else { continue };
                if m.len() < 64 << 10 {
                    continue;
                }
                let mut magic = [0u8; 4];
                let Ok(f) = std::fs::File::open(&p) else { continue };
                if f.read_exact_at(&mut magic, 0).is_ok() && &magic == b"\x7fELF" {
                    out.push(p);
                    if out.len() >= cap {
                        return out;
                    }
                }
            }
        }
    }
    out
}

/// The oracle's build info as our model, to build the packages we must give.
fn oracle_build_info(v: &serde_json::Value) -> golang::BuildInfo {
    let module = |m: &serde_json::Value| golang::Module {
        path: m["Path"].as_str().unwrap_or_default().to_owned(),
        version: m["Version"].as_str().unwrap_or_default().to_owned(),
        sum: m["Sum"].as_str().unwrap_or_default().to_owned(),
        replace: m.get("Replace").filter(|r| !r.is_null()).map(|r| {
            Box::new(golang::Module {
                path: r["Path"].as_str().unwrap_or_default().to_owned(),
                version: r["Version"].as_str().unwrap_or_default().to_owned(),
                sum: r["Sum"].as_str().unwrap_or_default().to_owned(),
                replace: None,
            })
        }),
    };
    golang::BuildInfo {
        go_version: v["GoVersion"].as_str().expect("valid in this test").to_owned(),
        path: v["Path"].as_str().unwrap_or_default().to_owned(),
        main: v.get("Main").filter(|m| m.get("Path").is_some()).map(module),
        deps: v.get("Deps").and_then(|d| d.as_array()).map(|d| d.iter().map(module).collect()).unwrap_or_default(),
        settings: v
            .get("Settings")
            .and_then(|s| s.as_array())
            .map(|s| {
                s.iter()
                    .map(|kv| {
                        (
                            kv["Key"].as_str().expect("valid in this test").to_owned(),
                            kv["Value"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[test]
fn go_binaries_on_this_machine_match_the_oracle() {
    let Some(py) = venv_python() else {
        eprintln!("SKIPPED: .venv with pygorpmrustinfo absent (scripts/setup-test-env.sh installs it)");
        return;
    };
    let candidates = elf_candidates(4000);
    let mut go = Vec::new();
    let mut ours = BTreeMap::new();
    for p in &candidates {
        let (r, bytes) = scan(p);
        if let Ok(pk) = &r
            && pk.iter().any(|p| p.role == AppRole::Stdlib)
        {
            go.push(p.clone());
        }
        ours.insert(p.to_string_lossy().into_owned(), (r, bytes));
    }
    // Every ELF candidate through the oracle, so a Go binary we miss is caught too.
    let results = oracle(&py, "get_go_build_info", &candidates);
    let (mut compared, mut modules, mut replaced, mut total_bytes, mut total_size) = (0, 0, 0, 0u64, 0u64);
    for (path, want) in &results {
        let (got, bytes) = &ours[path];
        let is_go = want.get("GoVersion").and_then(|v| v.as_str()).is_some_and(|v| !v.is_empty());
        let got = got.as_ref().unwrap_or_else(|e| panic!("{path}: ours failed ({e}), oracle {want}"));
        let got_go: Vec<&AppPackage> =
            got.iter().filter(|p| p.ecosystem == scanner_ami::apps::AppEcosystem::Golang).collect();
        if !is_go {
            assert!(got_go.is_empty(), "{path}: we found Go modules, the oracle says {want}");
            continue;
        }
        let info = oracle_build_info(want);
        let expected = golang::packages(&info, path);
        let got_go: Vec<AppPackage> = got_go.into_iter().cloned().collect();
        if got_go != expected {
            let first = got_go.iter().zip(&expected).find(|(a, b)| a != b);
            panic!(
                "{path}: {} packages, oracle {}; first difference (ours, oracle): {first:#?}",
                got_go.len(),
                expected.len()
            );
        }
        // And the facts themselves, independently of `packages`.
        let stdlib = got_go.iter().find(|p| p.role == AppRole::Stdlib).expect("valid in this test");
        assert_eq!(stdlib.version, golang::stdlib_version(&info.go_version), "{path}");
        let libs: BTreeSet<(String, String)> =
            got_go.iter().filter(|p| p.role == AppRole::Library).map(|p| (p.name.clone(), p.version.clone())).collect();
        let want_libs: BTreeSet<(String, String)> = info
            .deps
            .iter()
            .filter(|d| !d.path.is_empty())
            .map(|d| {
                let m = d.replace.as_deref().unwrap_or(d);
                (m.path.clone(), if m.version == "(devel)" { String::new() } else { m.version.clone() })
            })
            .collect();
        assert_eq!(libs, want_libs, "{path}");
        let main = got_go.iter().find(|p| p.role == AppRole::Application).map(|p| p.name.clone());
        assert_eq!(main, info.main.as_ref().map(|m| m.path.clone()), "{path}");
        compared += 1;
        modules += info.deps.len();
        replaced += info.deps.iter().filter(|d| d.replace.is_some()).count();
        total_bytes += bytes;
        let size = std::fs::metadata(path).expect("valid in this test").len();
        total_size += size;
        assert!(*bytes < 1 << 20, "{path}: {bytes} bytes read of {size}");
    }
    eprintln!(
        "oracle: {} ELF files, {compared} Go binaries compared, {modules} modules ({replaced} replaced), {total_bytes} bytes read of {total_size}",
        candidates.len()
    );
    assert_eq!(compared, go.len());
    assert!(compared >= 1, "the oracle's own Go library at least");
}

/// A copy of /bin/true carrying `.dep-v0` with `json` zlib-compressed (as `cargo auditable` does).
fn auditable_elf(dir: &Path, name: &str, json: &str) -> PathBuf {
    let z = dir.join(format!("{name}.zlib"));
    std::fs::write(&z, miniz_oxide::deflate::compress_to_vec_zlib(json.as_bytes(), 9)).expect("valid in this test");
    let out = dir.join(name);
    run(Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".dep-v0={}", z.display()))
        .args(["--set-section-flags", ".dep-v0=noload,readonly", "/bin/true"])
        .arg(&out));
    out
}

const RUST_GRAPHS: [(&str, &str); 3] = [
    (
        "mixed",
        r#"{"format":8,"packages":[
        {"name":"tool","version":"2.1.0","source":"local","dependencies":[1,2,4],"root":true},
        {"name":"serde","version":"1.0.219","source":"crates.io","kind":"runtime","dependencies":[3]},
        {"name":"cc","version":"1.2.16","source":"crates.io","kind":"build"},
        {"name":"serde_derive","version":"1.0.219","source":"crates.io","kind":"build"},
        {"name":"forked","version":"0.3.0-alpha.1","source":"git","dependencies":[5]},
        {"name":"vendored","version":"0.1.0","source":"registry"}]}"#,
    ),
    ("single", r#"{"packages":[{"name":"hello","version":"0.1.0","source":"local","root":true}]}"#),
    (
        "diamond",
        r#"{"format":1,"packages":[
        {"name":"a","version":"1.0.0","source":"crates.io","dependencies":[1,2],"root":true},
        {"name":"b","version":"1.0.0","source":"crates.io","dependencies":[3]},
        {"name":"c","version":"1.0.0","source":"crates.io","dependencies":[3]},
        {"name":"d","version":"0.0.1","source":"crates.io"}]}"#,
    ),
];

#[test]
fn rust_auditable_binaries_match_the_oracle() {
    let dir = tempfile::tempdir().expect("valid in this test");
    let files: Vec<PathBuf> = RUST_GRAPHS.iter().map(|(n, j)| auditable_elf(dir.path(), n, j)).collect();
    let ours: Vec<Vec<AppPackage>> = files.iter().map(|f| scan(f).0.expect("valid in this test")).collect();
    // Without the oracle, still check the mixed graph against its JSON.
    let mixed = &ours[0];
    let roles: Vec<_> = mixed.iter().map(|p| (p.name.as_str(), p.role)).collect();
    assert_eq!(
        roles,
        [
            ("tool", AppRole::Application),
            ("serde", AppRole::Library),
            ("cc", AppRole::BuildDependency),
            ("serde_derive", AppRole::BuildDependency),
            ("forked", AppRole::Library),
            ("vendored", AppRole::Library),
        ]
    );
    assert_eq!(mixed[4].properties, [("cargo.source".to_owned(), "git".to_owned())]);
    assert_eq!(mixed[4].depends_on, ["pkg:cargo/vendored@0.1.0"]);
    let Some(py) = venv_python() else {
        eprintln!("SKIPPED oracle part: .venv with pygorpmrustinfo absent (scripts/setup-test-env.sh installs it)");
        return;
    };
    let results = oracle(&py, "get_rust_audit", &files);
    let mut crates = 0;
    for (file, got) in files.iter().zip(&ours) {
        let want = &results[&*file.to_string_lossy()]["packages"];
        let want = want.as_array().unwrap_or_else(|| panic!("{}: oracle {want}", file.display()));
        assert_eq!(got.len(), want.len(), "{}", file.display());
        let purl = |i: &serde_json::Value| {
            let w = &want[i.as_u64().expect("valid in this test") as usize];
            format!(
                "pkg:cargo/{}@{}",
                w["name"].as_str().expect("valid in this test"),
                w["version"].as_str().expect("valid in this test")
            )
        };
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.name, w["name"].as_str().expect("valid in this test"));
            assert_eq!(g.version, w["version"].as_str().expect("valid in this test"));
            let role = if w["root"].as_bool() == Some(true) {
                AppRole::Application
            } else if w["kind"].as_str() == Some("build") {
                AppRole::BuildDependency
            } else {
                AppRole::Library
            };
            assert_eq!(g.role, role, "{}", g.name);
            let mut deps: Vec<String> =
                w["dependencies"].as_array().map(|d| d.iter().map(purl).collect()).unwrap_or_default();
            deps.sort();
            assert_eq!(g.depends_on, deps, "{}", g.name);
            let source = w["source"].as_str().expect("valid in this test");
            let prop = g.properties.iter().find(|(k, _)| k == "cargo.source").map(|(_, v)| v.as_str());
            assert_eq!(prop, (source != "crates.io").then_some(source), "{}", g.name);
            crates += 1;
        }
    }
    eprintln!("rust oracle: {} binaries, {crates} crates compared", files.len());
    assert_eq!(crates, 11);
}

/// Hostile files through `binary::read`: each a per-file error naming the file, none a panic.
#[test]
fn hostile_binaries_are_per_file_errors() {
    let good =
        std::fs::read(fixtures().join("trivy/golang-binary/main-version-via-ldflags.elf")).expect("valid in this test");
    let read = |bytes: Vec<u8>| binary::read(&mut MemFile(bytes), "/usr/bin/evil");
    let le64 = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("valid in this test"));
    let shoff = le64(&good, 0x28) as usize;
    let shnum = u16::from_le_bytes(good[0x3c..0x3e].try_into().expect("valid in this test")) as usize;
    let section = |name: &str| {
        let mut f = MemFile(good.clone());
        let elf = scanner_ami::apps::elf::ElfFile::read(&mut f, "x")
            .expect("valid in this test")
            .expect("valid in this test");
        elf.sections.iter().position(|s| s.name == name).expect("valid in this test")
    };
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut b = good.clone();
    b[0x28..0x30].copy_from_slice(&(good.len() as u64 + 4096).to_le_bytes());
    cases.push(("e_shoff past the end", b));
    let mut b = good.clone();
    b[0x3a..0x3e].copy_from_slice(&[0xff; 4]);
    cases.push(("e_shentsize = e_shnum = 0xffff", b));
    let mut b = good.clone();
    b[0x3c..0x3e].copy_from_slice(&[0xff; 2]);
    cases.push(("e_shnum = 0xffff", b));
    // Every section's offset past the end.
    let mut b = good.clone();
    for i in 1..shnum {
        let at = shoff + i * 64 + 24;
        b[at..at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    }
    cases.push(("section offsets past the end", b));
    // .go.buildinfo claims 2^63 bytes and its header's varint 2^62.
    let bi = section(".go.buildinfo");
    let bi_off = le64(&good, shoff + bi * 64 + 24) as usize;
    let mut b = good.clone();
    b[shoff + bi * 64 + 32..shoff + bi * 64 + 40].copy_from_slice(&(1u64 << 63).to_le_bytes());
    b[bi_off + 32..bi_off + 41].copy_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
    cases.push(("varint length 2^62 in a 2^63-byte section", b));
    for (what, bytes) in cases {
        let err = read(bytes).expect_err(what);
        assert_eq!(err.path, "/usr/bin/evil", "{what}");
        eprintln!("{what}: {}", err.reason);
    }
    // The 2^63-byte section alone: the search is bounded and the blob is still read.
    let mut b = good.clone();
    b[shoff + bi * 64 + 32..shoff + bi * 64 + 40].copy_from_slice(&(1u64 << 63).to_le_bytes());
    assert_eq!(read(b).expect("valid in this test").len(), 2);
    // .dep-v0: a 1 GiB zlib bomb, two roots, a cycle, an index out of range.
    let dir = tempfile::tempdir().expect("valid in this test");
    let bomb = dir.path().join("bomb.zlib");
    run(Command::new("python3").arg("-c").arg(format!(
        "import zlib\nc=zlib.compressobj(9)\nz=b''.join(c.compress(bytes(1<<24)) for _ in range(64))+c.flush()\nopen('{}','wb').write(z)",
        bomb.display()
    )));
    let bomb_elf = dir.path().join("bomb");
    run(Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".dep-v0={}", bomb.display()))
        .args(["--set-section-flags", ".dep-v0=noload,readonly", "/bin/true"])
        .arg(&bomb_elf));
    let err = read(std::fs::read(&bomb_elf).expect("valid in this test")).expect_err("an error");
    assert!(err.reason.contains("more than"), "{err}");
    let p = |deps: &str, root: bool| {
        format!(r#"{{"name":"x","version":"1.0.0","source":"crates.io","dependencies":{deps},"root":{root}}}"#)
    };
    for (name, json, why) in [
        ("tworoots", format!(r#"{{"packages":[{},{}]}}"#, p("[]", true), p("[]", true)), "2 root"),
        ("cycle", format!(r#"{{"packages":[{},{},{}]}}"#, p("[1]", true), p("[2]", false), p("[1]", false)), "cycle"),
        ("range", format!(r#"{{"packages":[{}]}}"#, p("[3]", true)), "out of range"),
    ] {
        let f = auditable_elf(dir.path(), name, &json);
        let err = read(std::fs::read(&f).expect("valid in this test")).expect_err("an error");
        assert!(err.reason.contains(why), "{name}: {err}");
    }
    // Control and ANSI characters in module names are stripped.
    let f = auditable_elf(
        dir.path(),
        "ansi",
        r#"{"packages":[{"name":"\u001b]0;pwned\u0007evil","version":"1.0.0\r","source":"crates.io","root":true}]}"#,
    );
    let pk = read(std::fs::read(&f).expect("valid in this test")).expect("valid in this test");
    assert_eq!((pk[0].name.as_str(), pk[0].version.as_str()), ("]0;pwnedevil", "1.0.0"));
    // Unchanged sanity: rustaudit's bound is the one stated.
    assert_eq!(rustaudit::MAX_INFLATED, 8 << 20);
}
