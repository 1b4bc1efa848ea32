//! The simulated account's bundled advisory data: the demo fleet's Alpine 3.4 instance is
//! assessed against Alpine's secdb for v3.4 (the archived `alpinelinux/alpine-secdb` at commit
//! 06f6e96, committed in `tests/data/vuln/alpine-secdb/v3.4`), compiled into the binary so
//! `agentless scan --cloud sim --all` shows real findings on first use without a download.
//!
//! Imported only into a simulated account's data directory that has no advisory database yet
//! (never with `--cloud aws`: a real fleet needs current data, `agentless vulndb update`). The
//! source is named so that `vulndb status` and every report say what it is.

use std::path::Path;

use super::db::{self, import};

/// The secdb files, as committed.
const MAIN_YAML: &[u8] = include_bytes!("../../tests/data/vuln/alpine-secdb/v3.4/main.yaml");
const COMMUNITY_YAML: &[u8] = include_bytes!("../../tests/data/vuln/alpine-secdb/v3.4/community.yaml");

/// The date of the snapshot's data: the newest fixes the v3.4 feed lists are curl 7.60.0's
/// (CVE-2018-1000300 and -1000301), released 2018-05-16; v3.4 reached its end of life that month
/// and its feed got no later entry. Used as the files' modification time, which the import
/// records as each record's `modified`.
pub const SNAPSHOT_DATE: &str = "2018-05-16T00:00:00Z";

/// The source name the bundled data is imported under.
pub const SOURCE_NAME: &str = "bundled demo snapshot: Alpine secdb v3.4 (alpine-secdb 06f6e96, data of 2018-05-16)";

/// Why the bundled data could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("writing the bundled demo advisories under {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("importing the bundled demo advisories: {0}")]
    Import(#[from] import::ImportError),
}

/// Import the bundled snapshot into `data_dir` when it has no advisory database. True when it
/// was imported now.
///
/// # Errors
///
/// The files cannot be written or the import fails (no database is installed then).
pub fn ensure_demo_advisories(data_dir: &Path, now: jiff::Timestamp) -> Result<bool, DemoError> {
    let db_path = db::path_in(data_dir);
    if db_path.exists() {
        return Ok(false);
    }
    let dir = data_dir.join("demo-advisories").join("alpine-secdb-v3.4");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DemoError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let when: jiff::Timestamp = SNAPSHOT_DATE.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let mtime = std::time::SystemTime::from(when);
    for (name, bytes) in [("main.yaml", MAIN_YAML), ("community.yaml", COMMUNITY_YAML)] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))?;
        let f = std::fs::File::options().write(true).open(&path).map_err(io(&path))?;
        f.set_modified(mtime).map_err(io(&path))?;
    }
    let input = import::Input {
        path: dir.clone(),
        name: Some(SOURCE_NAME.to_owned()),
        origin: Some("compiled into agentless from tests/data/vuln/alpine-secdb/v3.4".to_owned()),
    };
    import::import(&db_path, &[input], now)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_once_with_its_label_and_date() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let now = jiff::Timestamp::now();
        assert!(ensure_demo_advisories(tmp.path(), now).expect("import"));
        assert!(!ensure_demo_advisories(tmp.path(), now).expect("second call"), "an existing database is kept");
        let adb = db::AdvisoryDb::open(&db::path_in(tmp.path())).expect("open");
        let sources = adb.sources().expect("sources");
        assert_eq!(sources.len(), 1);
        let s = &sources[0];
        assert_eq!(s.name, SOURCE_NAME);
        assert_eq!(s.newest_modified.as_deref(), Some(SNAPSHOT_DATE));
        assert!(s.ecosystems.iter().any(|(e, n)| e == "Alpine:v3.4" && *n > 0), "{:?}", s.ecosystems);
        assert!(adb.covers("Alpine:v3.4").expect("covers"));
    }
}
