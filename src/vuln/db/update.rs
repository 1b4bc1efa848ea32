//! `vulndb update`: download osv.dev's per-ecosystem `all.zip` archives over HTTPS into the data
//! directory, resumably, then import them all at once (atomically, as [`super::import`] does).
//!
//! - Resumable: bytes go to `<dir>/<ecosystem>/all.zip.partial`; a later run asks for the rest
//!   with `Range: bytes=N-` and `If-Range` (the ETag or Last-Modified the first response gave),
//!   so a changed archive is downloaded again from the start instead of spliced.
//! - Verified: OSV publishes no checksums. What we check: TLS (the server's certificate against
//!   the OS trust store), the size (the bytes received must equal `Content-Length`, or the total
//!   of `Content-Range`), each archive entry's CRC-32 as the import reads it (the zip reader
//!   checks it at the end of every entry), and the archive's structure and limits
//!   ([`super::archive`]). The SHA-256 of each archive is recorded in its source, so two
//!   databases can be compared and an archive traced.
//! - Sources are named `osv.dev:<ecosystem>` and replaced whole by each update.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};

use super::import::{self, ImportError, ImportReport, Input, sha256_file};
use crate::vuln::osv;

/// Where osv.dev publishes its archives (`<base>/<ecosystem>/all.zip`; OSV documentation, "Data
/// dumps").
pub const DEFAULT_BASE_URL: &str = "https://osv-vulnerabilities.storage.googleapis.com";

/// The ecosystems updated by default: the distributions the scanner inventories and osv.dev
/// covers (docs/references.md, "OSV advisory data"; Amazon Linux and Oracle Linux have no OSV data).
pub const DEFAULT_ECOSYSTEMS: &[&str] = &["AlmaLinux", "Alpine", "Debian", "Rocky Linux", "Ubuntu"];

/// Largest archive downloaded. osv.dev's largest per-ecosystem archives (Debian, Ubuntu) are a
/// few hundred MB; 2 GiB stops a server that streams without end from filling the disk.
pub const MAX_DOWNLOAD_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// How long to wait for a connection (a reachable server answers in well under a second).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a download may stall between two reads before it is abandoned (and resumed by the
/// next run): a minute without a byte is a dead connection, not a slow one.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The download directory of the data directory.
pub const DOWNLOAD_DIR: &str = "vulndb-downloads";

/// Why an update failed (nothing is imported then; finished downloads are kept for the next run).
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("unknown ecosystem {0:?} (not in the OSV schema's list)")]
    UnknownEcosystem(String),
    #[error("cannot build the HTTPS client: {0}")]
    Client(reqwest::Error),
    #[error("{url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url}: the server answered {status}")]
    Status { url: String, status: StatusCode },
    #[error("{url}: {reason}")]
    Protocol { url: String, reason: String },
    #[error("{url}: {size} bytes, over the {MAX_DOWNLOAD_BYTES}-byte limit")]
    TooLarge { url: String, size: u64 },
    #[error("{url}: received {got} bytes of {expected}; the partial file is kept and the next update resumes it")]
    Short { url: String, expected: u64, got: u64 },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// Progress of the downloads, for a progress bar or a log.
pub trait Progress {
    /// A download starts: `total` bytes expected (when known), `resumed` of them already here.
    fn start(&mut self, ecosystem: &str, total: Option<u64>, resumed: u64);
    /// `n` more bytes arrived.
    fn advance(&mut self, n: u64);
    /// The download finished.
    fn finish(&mut self, download: &Download);
}

/// A progress that reports nothing.
#[derive(Debug, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn start(&mut self, _: &str, _: Option<u64>, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self, _: &Download) {}
}

/// A finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub ecosystem: String,
    pub url: String,
    pub path: PathBuf,
    pub bytes: u64,
    /// Bytes that were already in the partial file from an earlier run.
    pub resumed_from: u64,
    pub sha256: String,
}

/// The archive URL of an ecosystem (its name percent-encoded: `Rocky Linux` → `Rocky%20Linux`).
#[must_use]
pub fn archive_url(base: &str, ecosystem: &str) -> String {
    let mut encoded = String::with_capacity(ecosystem.len());
    for b in ecosystem.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{}/{encoded}/all.zip", base.trim_end_matches('/'))
}

/// Download every ecosystem's archive into `data_dir/vulndb-downloads/`, then import them into
/// `db_path` as the sources `osv.dev:<ecosystem>`.
///
/// # Errors
///
/// An ecosystem is unknown, a download fails (what was received is kept for the next run), or
/// the import fails (the database in use is unchanged).
pub async fn update(
    db_path: &Path,
    data_dir: &Path,
    base_url: &str,
    ecosystems: &[String],
    progress: &mut dyn Progress,
) -> Result<(Vec<Download>, ImportReport), UpdateError> {
    for ecosystem in ecosystems {
        if osv::known_ecosystem(ecosystem).is_none() || ecosystem.contains(':') {
            return Err(UpdateError::UnknownEcosystem(ecosystem.clone()));
        }
    }
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("agentless/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(UpdateError::Client)?;
    let mut downloads = Vec::with_capacity(ecosystems.len());
    for ecosystem in ecosystems {
        let url = archive_url(base_url, ecosystem);
        let dir = data_dir.join(DOWNLOAD_DIR).join(ecosystem);
        let download = download(&client, ecosystem, &url, &dir, progress).await?;
        progress.finish(&download);
        downloads.push(download);
    }
    let inputs: Vec<Input> = downloads
        .iter()
        .map(|d| Input {
            path: d.path.clone(),
            name: Some(format!("osv.dev:{}", d.ecosystem)),
            origin: Some(d.url.clone()),
        })
        .collect();
    let db_path = db_path.to_path_buf();
    let report =
        tokio::task::spawn_blocking(move || import::import(&db_path, &inputs, jiff::Timestamp::now())).await.map_err(
            |e| UpdateError::Io { path: data_dir.to_path_buf(), source: std::io::Error::other(e.to_string()) },
        )??;
    Ok((downloads, report))
}

/// Download one archive into `dir/all.zip`, resuming `dir/all.zip.partial`.
async fn download(
    client: &reqwest::Client,
    ecosystem: &str,
    url: &str,
    dir: &Path,
    progress: &mut dyn Progress,
) -> Result<Download, UpdateError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| UpdateError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let partial = dir.join("all.zip.partial");
    let validator_path = dir.join("all.zip.validator");
    let done = dir.join("all.zip");
    let http = |source| UpdateError::Http { url: url.to_string(), source };
    let protocol = |reason: String| UpdateError::Protocol { url: url.to_string(), reason };

    let mut have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    let validator = std::fs::read_to_string(&validator_path).ok().filter(|v| !v.is_empty());
    if validator.is_none() {
        // Without a validator a resumed file could be spliced from two versions: start over.
        have = 0;
    }
    let mut request = client.get(url);
    if have > 0
        && let Some(v) = &validator
    {
        request = request.header(RANGE, format!("bytes={have}-")).header(IF_RANGE, v.as_str());
    }
    let mut response = request.send().await.map_err(http)?;
    let status = response.status();
    let (resumed, total) = match status {
        StatusCode::PARTIAL_CONTENT if have > 0 => {
            let range = header(&response, CONTENT_RANGE).ok_or_else(|| protocol("206 without Content-Range".into()))?;
            let (start, total) =
                parse_content_range(&range).ok_or_else(|| protocol(format!("bad Content-Range {range:?}")))?;
            if start != have {
                return Err(protocol(format!("asked for bytes from {have}, got a range from {start}")));
            }
            (have, total)
        }
        StatusCode::OK => {
            let total = header(&response, CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
            let total = total.ok_or_else(|| protocol("no Content-Length: the size cannot be verified".into()))?;
            (0, total)
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            // The partial file is not a prefix of the current archive: start over next time.
            let _ = std::fs::remove_file(&partial);
            let _ = std::fs::remove_file(&validator_path);
            return Err(UpdateError::Status { url: url.to_string(), status });
        }
        status => return Err(UpdateError::Status { url: url.to_string(), status }),
    };
    if total > MAX_DOWNLOAD_BYTES {
        return Err(UpdateError::TooLarge { url: url.to_string(), size: total });
    }
    if resumed == 0 {
        let new_validator = header(&response, ETAG).or_else(|| header(&response, LAST_MODIFIED)).unwrap_or_default();
        std::fs::write(&validator_path, new_validator).map_err(io(&validator_path))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed > 0)
        .truncate(resumed == 0)
        .open(&partial)
        .map_err(io(&partial))?;
    progress.start(ecosystem, Some(total), resumed);
    let mut got = resumed;
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        got += chunk.len() as u64;
        if got > total {
            return Err(protocol(format!("more than the {total} bytes announced")));
        }
        file.write_all(&chunk).map_err(io(&partial))?;
        progress.advance(chunk.len() as u64);
    }
    file.sync_all().map_err(io(&partial))?;
    drop(file);
    if got != total {
        return Err(UpdateError::Short { url: url.to_string(), expected: total, got });
    }
    std::fs::rename(&partial, &done).map_err(io(&done))?;
    let _ = std::fs::remove_file(&validator_path);
    let sha256 = sha256_file(&done)?;
    Ok(Download {
        ecosystem: ecosystem.to_string(),
        url: url.to_string(),
        path: done,
        bytes: got,
        resumed_from: resumed,
        sha256,
    })
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// `bytes START-END/TOTAL` → (START, TOTAL).
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, total) = (start.parse::<u64>().ok()?, end.parse::<u64>().ok()?, total.parse::<u64>().ok()?);
    (start <= end && end < total).then_some((start, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_ranges() {
        assert_eq!(
            archive_url("https://osv-vulnerabilities.storage.googleapis.com/", "Rocky Linux"),
            "https://osv-vulnerabilities.storage.googleapis.com/Rocky%20Linux/all.zip"
        );
        assert_eq!(archive_url("http://h", "crates.io"), "http://h/crates.io/all.zip");
        assert_eq!(parse_content_range("bytes 100-199/200"), Some((100, 200)));
        assert_eq!(parse_content_range("bytes 100-199/*"), None);
        assert_eq!(parse_content_range("bytes 200-100/300"), None);
        assert_eq!(parse_content_range("bytes 0-200/200"), None);
    }
}
