//! The result bundle (docs/bundle.md): what a scanner uploads to the collector.
//!
//! A tar archive (ustar, regular files only): `manifest.json` first ([`BundleManifest`]), then
//! for each scanned device with index `N` (its position in the manifest's `devices`):
//! `vN/inventory.json`, `vN/sbom.cdx.json`, `vN/baseline.json`. Uploaded with
//! `PUT /v1/jobs/<job>/bundles/<scanner>`, a `Content-Length`, `X-Agentless-Signature:
//! sha256=<hex HMAC-SHA256 of the body under the scanner's key>` ([`sign`], [`verify`],
//! [`BodyMac`]) and `X-Agentless-Auth: sha256=<hex HMAC-SHA256 under the same key of
//! "agentless.upload/v1\n<content length>\n<signature header>">` ([`upload_token`]). The
//! scanner's key is [`HmacKey::for_scanner`] of the job's key. The auth header depends on headers
//! only, so the collector refuses a sender without the scanner's key before reading a byte of the
//! body; the signature then authenticates the body, which the collector streams to disk while
//! computing it.
//!
//! Shared by the agent (which writes it) and the collector (which reads it): the reader
//! [`read_bundle`] treats the body as hostile. It works in memory on the body, never unpacks onto
//! disk, and refuses: sizes over [`BundleLimits`], entry names that are absolute, contain `..`,
//! or are not one of the names above, links and any non-regular entry, duplicate names, a missing
//! or unknown-version manifest, a manifest whose devices do not match the entries, truncated
//! archives, and result files that are not JSON of the expected kind (the inventory's `schema`,
//! the SBOM's `bomFormat`) or nest deeper than serde_json's default limit of 128 levels.
//!
//! The reader parses the tar headers itself (512-byte ustar blocks over the in-memory body) rather
//! than through the `tar` crate's iterator, so that every field it relies on is checked here: the
//! header checksum, the `ustar\0` `00` magic, the octal or base-256 size (compared with the limit
//! before any data is touched: no allocation follows a header's claim), the type flag, the name
//! (NUL-terminated, nothing after the NUL), that the data and its padding are all there, and the
//! two zero blocks that end the archive with nothing but zeros after them. Refused entry types:
//! everything but a regular file (`0` or the old `\0`): hard links, symlinks, character and block
//! devices, directories, FIFOs, contiguous files, pax extended headers (`x`, `g`) and the GNU
//! long-name/long-link, sparse and volume extensions (`L`, `K`, `S`, `V`...). Only ustar headers
//! are read (no GNU or v7 magic): the writer [`write_bundle`] never produces anything else.

use std::collections::{BTreeMap, BTreeSet};

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::job::{HmacKey, is_path_safe_name};

/// The bundle format this build writes and reads (`manifest.json` `format`).
pub const BUNDLE_FORMAT: &str = "agentless.bundle/v1";

/// Outcome of one device in a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceStatus {
    /// Scanned, nothing went wrong: all three files present.
    Complete,
    /// Scanned with errors (see the inventory's `errors`): all three files present.
    Partial,
    /// The device was found but nothing could be scanned: no files.
    Failed,
    /// The device named in the job manifest was not attached / not found: no files.
    Missing,
}

/// One device of the job manifest, as scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    /// The job manifest's device name (`/dev/sdf`).
    pub device_name: String,
    /// Where the agent found it (`/dev/nvme1n1`), if it did.
    pub resolved_path: Option<String>,
    pub instance_id: String,
    pub volume_id: String,
    pub snapshot_id: String,
    pub status: DeviceStatus,
    /// Why `failed` / `missing`, or a summary of a `partial` scan.
    pub error: Option<String>,
    /// OS pretty name if detected.
    pub os: Option<String>,
    pub packages: usize,
    /// Application packages by ecosystem (`golang`, `pypi`, `maven`, `kernel`...), from the
    /// inventory's `applications` (empty when none were found or they were not inventoried).
    #[serde(default)]
    pub app_packages: std::collections::BTreeMap<String, usize>,
    /// Baseline rules that failed (0 without baseline).
    pub baseline_failed: usize,
    /// Produced by the simulated account's fast stand-in agent for a synthetic volume (no disk
    /// bytes were read): every output that shows this result must say so.
    #[serde(default)]
    pub synthetic: bool,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    pub job: String,
    pub scanner: String,
    /// The scanner's own EC2 instance id from IMDS, when known.
    pub scanner_instance: Option<String>,
    /// `scanner-agent <version>`.
    pub agent_version: String,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: String,
    /// Same order as the job manifest's devices; index `N` is entry prefix `vN/`.
    pub devices: Vec<DeviceEntry>,
    /// Errors not tied to one device.
    pub errors: Vec<String>,
}

/// Bounds on what the reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleLimits {
    /// Whole body.
    pub max_body_bytes: u64,
    /// One entry.
    pub max_entry_bytes: u64,
    /// Number of entries (manifest + 3 per device).
    pub max_entries: usize,
}

impl Default for BundleLimits {
    /// 256 MiB body, 64 MiB per entry, 1 + 3 × [`crate::job::MAX_DEVICES`] entries: an SBOM of a
    /// large server is a few MiB, so these leave two orders of magnitude of room while bounding
    /// the collector's memory per upload.
    fn default() -> Self {
        BundleLimits {
            max_body_bytes: 256 * 1024 * 1024,
            max_entry_bytes: 64 * 1024 * 1024,
            max_entries: 1 + 3 * crate::job::MAX_DEVICES,
        }
    }
}

/// The three result files of one device, as raw JSON bytes (already checked to parse).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumeFiles {
    pub inventory: Vec<u8>,
    pub sbom: Vec<u8>,
    pub baseline: Vec<u8>,
}

/// A bundle read and checked by [`read_bundle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub manifest: BundleManifest,
    /// By device index; present exactly for devices with status `complete` or `partial`.
    pub volumes: BTreeMap<usize, VolumeFiles>,
}

impl DeviceStatus {
    /// True for the statuses whose device carries the three result files (`complete`, `partial`).
    #[must_use]
    pub fn has_files(self) -> bool {
        matches!(self, DeviceStatus::Complete | DeviceStatus::Partial)
    }

    /// The status as written in `manifest.json`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Complete => "complete",
            DeviceStatus::Partial => "partial",
            DeviceStatus::Failed => "failed",
            DeviceStatus::Missing => "missing",
        }
    }
}

/// The first entry of every bundle.
pub const MANIFEST_NAME: &str = "manifest.json";

/// The HTTP header carrying [`sign`]'s value.
pub const SIGNATURE_HEADER: &str = "X-Agentless-Signature";

/// The HTTP header carrying [`upload_token`]'s value: proves the key from headers alone.
pub const AUTH_HEADER: &str = "X-Agentless-Auth";

/// The HTTP header carrying the scanner's AWS-signed instance identity: the `rsa2048` PKCS#7
/// signature IMDS serves at `/latest/dynamic/instance-identity/rsa2048` (base64, which carries
/// the identity document itself; EC2 User Guide, "Verify the instance identity document using the
/// RSA-2048 signature"), whitespace removed. In a header so the collector can refuse before the
/// body.
pub const IDENTITY_HEADER: &str = "X-Agentless-Identity";

/// The largest [`IDENTITY_HEADER`] value sent or accepted: AWS's `rsa2048` is about 1.5 KiB of
/// base64 (a ~500-byte document, two signed attributes and a 256-byte signature); 8 KiB is far
/// above it and within every HTTP server's default header limit (hyper's is 16 KiB in all).
pub const MAX_IDENTITY_HEADER_BYTES: usize = 8 * 1024;

/// The label [`upload_token`] MACs first (a version string, so a token is never a valid MAC of
/// anything else signed with the key: a bundle body starts with a tar header, never with this).
pub const UPLOAD_TOKEN_LABEL: &str = "agentless.upload/v1";

/// The signature scheme prefix of [`SIGNATURE_HEADER`] (docs/bundle.md).
pub const SIGNATURE_PREFIX: &str = "sha256=";

/// The `Content-Type` of an uploaded bundle.
pub const CONTENT_TYPE: &str = "application/x-tar";

/// The tar block: headers and data padding come in 512-byte blocks (POSIX.1-1988 ustar).
const BLOCK: usize = 512;

/// How much of a hostile string (a name, a format value) an error message quotes.
const QUOTE_CHARS: usize = 120;

/// One of the three result files of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VolumeFile {
    /// `inventory.json`: the inventory report (schema [`crate::report::SCHEMA`]).
    Inventory,
    /// `sbom.cdx.json`: the CycloneDX 1.6 SBOM.
    Sbom,
    /// `baseline.json`: the baseline findings, or `null` when the job did not ask for them.
    Baseline,
}

impl VolumeFile {
    /// The three files, in archive order.
    pub const ALL: [VolumeFile; 3] = [VolumeFile::Inventory, VolumeFile::Sbom, VolumeFile::Baseline];

    /// The file name under `vN/`.
    #[must_use]
    pub fn file_name(self) -> &'static str {
        match self {
            VolumeFile::Inventory => "inventory.json",
            VolumeFile::Sbom => "sbom.cdx.json",
            VolumeFile::Baseline => "baseline.json",
        }
    }

    /// The archive entry name of this file for device `index`.
    #[must_use]
    pub fn entry_name(self, index: usize) -> String {
        format!("v{index}/{}", self.file_name())
    }

    fn from_file_name(name: &str) -> Option<VolumeFile> {
        VolumeFile::ALL.into_iter().find(|f| f.file_name() == name)
    }
}

impl VolumeFiles {
    /// The bytes of one file.
    #[must_use]
    pub fn get(&self, file: VolumeFile) -> &[u8] {
        match file {
            VolumeFile::Inventory => &self.inventory,
            VolumeFile::Sbom => &self.sbom,
            VolumeFile::Baseline => &self.baseline,
        }
    }

    fn set(&mut self, file: VolumeFile, bytes: Vec<u8>) {
        match file {
            VolumeFile::Inventory => self.inventory = bytes,
            VolumeFile::Sbom => self.sbom = bytes,
            VolumeFile::Baseline => self.baseline = bytes,
        }
    }
}

/// Why a bundle was refused (by [`read_bundle`]) or could not be written (by [`write_bundle`]).
///
/// Every message names the entry concerned; hostile strings are quoted escaped and cut to
/// [`QUOTE_CHARS`] characters. [`BundleError::is_too_large`] tells the size refusals (HTTP 413)
/// from the rest (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle body is {size} bytes, more than the limit of {limit}")]
    BodyTooLarge { size: u64, limit: u64 },
    #[error("bundle has more than {limit} entries")]
    TooManyEntries { limit: usize },
    #[error("bundle entry {name:?} claims {size} bytes, more than the per-entry limit of {limit}")]
    EntryTooLarge { name: String, size: u64, limit: u64 },
    #[error("bundle is not a valid ustar archive at byte {offset}: {reason}")]
    Malformed { offset: usize, reason: String },
    #[error("bundle is truncated: {what}")]
    Truncated { what: String },
    #[error("bundle entry name {name:?} is refused: {reason}")]
    UnsafeName { name: String, reason: &'static str },
    #[error("bundle entry {name:?} is a {kind}; only regular files are accepted")]
    NotRegularFile { name: String, kind: &'static str },
    #[error("bundle entry {name:?} is not one of manifest.json, vN/inventory.json, vN/sbom.cdx.json, vN/baseline.json")]
    UnknownEntry { name: String },
    #[error("bundle entry {name:?} names device {index}, but manifest.json lists {devices} devices")]
    NoSuchDevice { name: String, index: usize, devices: usize },
    #[error("bundle entry {name:?} appears twice")]
    DuplicateEntry { name: String },
    #[error("bundle has no manifest.json")]
    ManifestMissing,
    #[error("bundle's first entry is {name:?}; manifest.json must come first")]
    ManifestNotFirst { name: String },
    #[error("manifest.json is not a valid bundle manifest: {reason}")]
    ManifestInvalid { reason: String },
    #[error("manifest.json: unknown format version {found:?} (this build reads {BUNDLE_FORMAT:?})")]
    UnknownFormat { found: String },
    #[error("manifest.json: {field} {value:?} is not a path-safe name")]
    UnsafeManifestName { field: &'static str, value: String },
    #[error("bundle entry {name:?} belongs to a device whose status is {status}, which carries no files")]
    UnexpectedDeviceFile { name: String, status: &'static str },
    #[error("bundle entry {name:?} is missing: its device's status is {status}, which carries all three files")]
    MissingDeviceFile { name: String, status: &'static str },
    #[error("bundle entry {name:?} is not valid JSON: {reason}")]
    InvalidJson { name: String, reason: String },
    #[error("bundle entry {name:?} is JSON but not the expected document: {reason}")]
    WrongContent { name: String, reason: String },
    #[error("cannot write bundle entry {name:?}: {reason}")]
    Write { name: String, reason: String },
}

impl BundleError {
    /// True for the refusals about size (body, entry, entry count): HTTP 413 rather than 400.
    #[must_use]
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            BundleError::BodyTooLarge { .. } | BundleError::TooManyEntries { .. } | BundleError::EntryTooLarge { .. }
        )
    }
}

/// A hostile string cut for an error message.
fn quote(s: &str) -> String {
    s.chars().take(QUOTE_CHARS).collect()
}

/// Write a bundle: `manifest.json`, then the three files of each device in `volumes`, as a ustar
/// archive of regular files (mode 0644, owner 0:0, mtime 0: the same input gives the same bytes).
///
/// # Errors
///
/// The manifest fails the reader's checks (format, names, device count), `volumes` has an index
/// outside `manifest.devices`, or a device's status does not match whether it has files
/// (`complete`/`partial` need them, `failed`/`missing` must not have them).
pub fn write_bundle(manifest: &BundleManifest, volumes: &BTreeMap<usize, VolumeFiles>) -> Result<Vec<u8>, BundleError> {
    check_manifest(manifest)?;
    if let Some((&index, _)) = volumes.range(manifest.devices.len()..).next() {
        return Err(BundleError::NoSuchDevice {
            name: VolumeFile::Inventory.entry_name(index),
            index,
            devices: manifest.devices.len(),
        });
    }
    for (index, device) in manifest.devices.iter().enumerate() {
        let name = VolumeFile::Inventory.entry_name(index);
        let status = device.status.as_str();
        match (device.status.has_files(), volumes.contains_key(&index)) {
            (true, false) => return Err(BundleError::MissingDeviceFile { name, status }),
            (false, true) => return Err(BundleError::UnexpectedDeviceFile { name, status }),
            _ => {}
        }
    }
    let manifest_json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| BundleError::Write { name: MANIFEST_NAME.into(), reason: e.to_string() })?;
    let mut builder = tar::Builder::new(Vec::new());
    append(&mut builder, MANIFEST_NAME, &manifest_json)?;
    for (&index, files) in volumes {
        for file in VolumeFile::ALL {
            append(&mut builder, &file.entry_name(index), files.get(file))?;
        }
    }
    builder.into_inner().map_err(|e| BundleError::Write { name: "(end of archive)".into(), reason: e.to_string() })
}

fn append(builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) -> Result<(), BundleError> {
    let write_err = |e: std::io::Error| BundleError::Write { name: name.to_owned(), reason: e.to_string() };
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(u64::try_from(data.len()).unwrap_or(u64::MAX));
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    builder.append_data(&mut header, name, data).map_err(write_err)
}

/// What an accepted entry name stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Manifest,
    Volume(usize, VolumeFile),
}

/// `manifest.json` or `v<N>/<file>` with `N` a decimal index without leading zeros.
fn classify(name: &str) -> Option<EntryKind> {
    if name == MANIFEST_NAME {
        return Some(EntryKind::Manifest);
    }
    let (dir, file) = name.split_once('/')?;
    let digits = dir.strip_prefix('v')?;
    let canonical = !digits.is_empty()
        && digits.len() <= 6
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    let index = digits.parse().ok()?;
    Some(EntryKind::Volume(index, VolumeFile::from_file_name(file)?))
}

/// One parsed and checked tar header.
#[derive(Debug)]
struct Header {
    name: String,
    size: u64,
}

/// The bytes of a NUL-terminated header field, refusing anything but NULs after the first NUL.
fn c_field(field: &[u8]) -> Result<&[u8], ()> {
    match field.iter().position(|&b| b == 0) {
        Some(end) => {
            if field[end..].iter().all(|&b| b == 0) {
                Ok(&field[..end])
            } else {
                Err(())
            }
        }
        None => Ok(field),
    }
}

/// A tar numeric field: octal digits (optionally space-padded, NUL- or space-terminated), or the
/// base-256 form (first byte `0x80`, then big-endian) GNU tar uses for sizes of 8 GiB and more.
/// A base-256 value beyond `u64` saturates (it is refused as too large anyway).
fn parse_number(field: &[u8]) -> Option<u64> {
    if let Some((&first, rest)) = field.split_first()
        && first & 0x80 != 0
    {
        if first != 0x80 {
            return None; // negative (0xff) or an unknown marker
        }
        return Some(
            rest.iter().try_fold(0u64, |v, &b| v.checked_mul(256)?.checked_add(u64::from(b))).unwrap_or(u64::MAX),
        );
    }
    let start = field.iter().position(|&b| b != b' ')?;
    let digits = &field[start..];
    let end = digits.iter().position(|&b| b == 0 || b == b' ').unwrap_or(digits.len());
    if end == 0 || !digits[end..].iter().all(|&b| b == 0 || b == b' ') {
        return None;
    }
    digits[..end].iter().try_fold(0u64, |v, &b| {
        if (b'0'..=b'7').contains(&b) { v.checked_mul(8)?.checked_add(u64::from(b - b'0')) } else { None }
    })
}

/// What a tar type flag is, for the refusal message.
fn entry_kind_name(flag: u8) -> &'static str {
    match flag {
        b'1' => "hard link",
        b'2' => "symbolic link",
        b'3' => "character device",
        b'4' => "block device",
        b'5' => "directory",
        b'6' => "FIFO",
        b'7' => "contiguous file",
        b'x' => "pax extended header",
        b'g' => "pax global header",
        b'L' => "GNU long name",
        b'K' => "GNU long link name",
        b'S' => "GNU sparse file",
        b'V' => "GNU volume header",
        b'M' => "GNU multi-volume continuation",
        _ => "entry of an unknown type",
    }
}

/// Why a name is refused before it is even compared with the accepted names.
fn unsafe_name_reason(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty")
    } else if name.starts_with('/') {
        Some("absolute path")
    } else if name.contains('\\') {
        Some("contains a backslash")
    } else if name.split('/').any(|c| c == "..") {
        Some("contains a `..` component")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    }
}

/// Parse and check the header block at `offset` (field offsets per POSIX.1-1988 ustar).
fn parse_header(block: &[u8], offset: usize, limits: &BundleLimits) -> Result<Header, BundleError> {
    let malformed = |reason: &str| BundleError::Malformed { offset, reason: reason.to_owned() };
    let stored = parse_number(&block[148..156]).ok_or_else(|| malformed("header checksum field is not a number"))?;
    let computed: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { u64::from(b' ') } else { u64::from(b) })
        .sum();
    if stored != computed {
        return Err(malformed("header checksum mismatch"));
    }
    if &block[257..263] != b"ustar\0" || &block[263..265] != b"00" {
        return Err(malformed("not a POSIX ustar header (GNU, v7 or unknown magic)"));
    }
    let raw_name = c_field(&block[0..100]);
    let raw_prefix = c_field(&block[345..500]);
    let (Ok(name_bytes), Ok(prefix_bytes)) = (raw_name, raw_prefix) else {
        let lossy = String::from_utf8_lossy(&block[0..100]).into_owned();
        return Err(BundleError::UnsafeName { name: quote(&lossy), reason: "contains a NUL byte" });
    };
    let mut full = Vec::with_capacity(prefix_bytes.len() + 1 + name_bytes.len());
    if !prefix_bytes.is_empty() {
        full.extend_from_slice(prefix_bytes);
        full.push(b'/');
    }
    full.extend_from_slice(name_bytes);
    let name = match String::from_utf8(full) {
        Ok(n) => n,
        Err(e) => {
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            return Err(BundleError::UnsafeName { name: quote(&lossy), reason: "not UTF-8" });
        }
    };
    if let Some(reason) = unsafe_name_reason(&name) {
        return Err(BundleError::UnsafeName { name: quote(&name), reason });
    }
    let flag = block[156];
    if flag != b'0' && flag != 0 {
        return Err(BundleError::NotRegularFile { name, kind: entry_kind_name(flag) });
    }
    let size = parse_number(&block[124..136]).ok_or_else(|| malformed("size field is not a number"))?;
    if size > limits.max_entry_bytes {
        return Err(BundleError::EntryTooLarge { name, size, limit: limits.max_entry_bytes });
    }
    Ok(Header { name, size })
}

fn block_at(body: &[u8], offset: usize) -> Option<&[u8]> {
    body.get(offset..offset.checked_add(BLOCK)?)
}

/// Read and check a bundle (hostile input): see the module documentation for what is refused.
///
/// # Errors
///
/// The first refusal met, as a [`BundleError`] naming the entry.
pub fn read_bundle(body: &[u8], limits: &BundleLimits) -> Result<Bundle, BundleError> {
    let size = u64::try_from(body.len()).unwrap_or(u64::MAX);
    if size > limits.max_body_bytes {
        return Err(BundleError::BodyTooLarge { size, limit: limits.max_body_bytes });
    }
    let mut offset = 0usize;
    let mut entries = 0usize;
    let mut seen = BTreeSet::new();
    let mut manifest: Option<BundleManifest> = None;
    let mut volumes: BTreeMap<usize, VolumeFiles> = BTreeMap::new();
    loop {
        let Some(block) = block_at(body, offset) else {
            let what = if offset >= body.len() {
                "the archive ends without its end-of-archive marker".to_owned()
            } else {
                format!("the archive ends inside the header at byte {offset}")
            };
            return Err(BundleError::Truncated { what });
        };
        if block.iter().all(|&b| b == 0) {
            let Some(second) = block_at(body, offset + BLOCK) else {
                return Err(BundleError::Truncated {
                    what: "only one of the two end-of-archive blocks is present".into(),
                });
            };
            if !second.iter().all(|&b| b == 0) {
                return Err(BundleError::Malformed {
                    offset,
                    reason: "a zero block followed by more entries (hidden after an end marker)".into(),
                });
            }
            if body[offset + 2 * BLOCK..].iter().any(|&b| b != 0) {
                return Err(BundleError::Malformed {
                    offset: offset + 2 * BLOCK,
                    reason: "non-zero bytes after the end-of-archive marker".into(),
                });
            }
            break;
        }
        entries += 1;
        if entries > limits.max_entries {
            return Err(BundleError::TooManyEntries { limit: limits.max_entries });
        }
        let header = parse_header(block, offset, limits)?;
        let name = header.name;
        let data_start = offset + BLOCK;
        let available = body.len() - data_start;
        let data_len = match usize::try_from(header.size) {
            Ok(n) if n <= available => n,
            _ => {
                return Err(BundleError::Truncated {
                    what: format!("entry {name:?} claims {} bytes but only {available} follow its header", header.size),
                });
            }
        };
        let data = &body[data_start..data_start + data_len];
        let padded = data_len.div_ceil(BLOCK) * BLOCK;
        if padded > available {
            return Err(BundleError::Truncated { what: format!("entry {name:?} is cut inside its padding") });
        }
        offset = data_start + padded;

        let Some(kind) = classify(&name) else {
            return Err(BundleError::UnknownEntry { name });
        };
        if !seen.insert(name.clone()) {
            return Err(BundleError::DuplicateEntry { name });
        }
        match (&manifest, kind) {
            (None, EntryKind::Manifest) => manifest = Some(parse_manifest(data)?),
            (None, EntryKind::Volume(..)) => return Err(BundleError::ManifestNotFirst { name }),
            // A second manifest.json is a duplicate name, refused above.
            (Some(_), EntryKind::Manifest) => return Err(BundleError::DuplicateEntry { name }),
            (Some(m), EntryKind::Volume(index, file)) => {
                let Some(device) = m.devices.get(index) else {
                    return Err(BundleError::NoSuchDevice { name, index, devices: m.devices.len() });
                };
                if !device.status.has_files() {
                    return Err(BundleError::UnexpectedDeviceFile { name, status: device.status.as_str() });
                }
                check_json(file, &name, data)?;
                volumes.entry(index).or_default().set(file, data.to_vec());
            }
        }
    }
    let Some(manifest) = manifest else {
        return Err(BundleError::ManifestMissing);
    };
    for (index, device) in manifest.devices.iter().enumerate() {
        if !device.status.has_files() {
            continue;
        }
        for file in VolumeFile::ALL {
            let name = file.entry_name(index);
            if !seen.contains(&name) {
                return Err(BundleError::MissingDeviceFile { name, status: device.status.as_str() });
            }
        }
    }
    Ok(Bundle { manifest, volumes })
}

/// The checks shared by the reader and the writer.
fn check_manifest(m: &BundleManifest) -> Result<(), BundleError> {
    if m.format != BUNDLE_FORMAT {
        return Err(BundleError::UnknownFormat { found: quote(&m.format) });
    }
    for (field, value) in [("job", &m.job), ("scanner", &m.scanner)] {
        if !is_path_safe_name(value) {
            return Err(BundleError::UnsafeManifestName { field, value: quote(value) });
        }
    }
    if m.devices.len() > crate::job::MAX_DEVICES {
        return Err(BundleError::ManifestInvalid {
            reason: format!("{} devices, more than {}", m.devices.len(), crate::job::MAX_DEVICES),
        });
    }
    Ok(())
}

fn parse_manifest(data: &[u8]) -> Result<BundleManifest, BundleError> {
    /// The format first, leniently: a newer format may have fields this build does not know.
    #[derive(Deserialize)]
    struct FormatOnly {
        format: String,
    }
    let invalid = |e: serde_json::Error| BundleError::ManifestInvalid { reason: e.to_string() };
    let head: FormatOnly = serde_json::from_slice(data).map_err(invalid)?;
    if head.format != BUNDLE_FORMAT {
        return Err(BundleError::UnknownFormat { found: quote(&head.format) });
    }
    let m: BundleManifest = serde_json::from_slice(data).map_err(invalid)?;
    check_manifest(&m)?;
    Ok(m)
}

/// Check that a result file is JSON of the right kind. Only the identifying fields are
/// deserialised; the rest is validated and skipped (`IgnoredAny`), so memory stays proportional to
/// the entry, not to a value tree of it.
fn check_json(file: VolumeFile, name: &str, data: &[u8]) -> Result<(), BundleError> {
    #[derive(Deserialize)]
    struct InventoryHead {
        schema: String,
    }
    #[derive(Deserialize)]
    struct SbomHead {
        #[serde(rename = "bomFormat")]
        bom_format: String,
    }
    let json_err = |e: serde_json::Error| {
        if e.is_data() {
            BundleError::WrongContent { name: name.to_owned(), reason: e.to_string() }
        } else {
            BundleError::InvalidJson { name: name.to_owned(), reason: e.to_string() }
        }
    };
    let wrong = |field: &str, found: &str, expected: &str| BundleError::WrongContent {
        name: name.to_owned(),
        reason: format!("{field} is {:?}, expected {expected:?}", quote(found)),
    };
    if nesting_exceeds(data, MAX_JSON_DEPTH) {
        return Err(BundleError::InvalidJson {
            name: name.to_owned(),
            reason: format!("nested deeper than {MAX_JSON_DEPTH} levels"),
        });
    }
    match file {
        VolumeFile::Inventory => {
            let head: InventoryHead = serde_json::from_slice(data).map_err(json_err)?;
            if head.schema != crate::report::SCHEMA {
                return Err(wrong("schema", &head.schema, crate::report::SCHEMA));
            }
        }
        VolumeFile::Sbom => {
            let head: SbomHead = serde_json::from_slice(data).map_err(json_err)?;
            if head.bom_format != "CycloneDX" {
                return Err(wrong("bomFormat", &head.bom_format, "CycloneDX"));
            }
        }
        VolumeFile::Baseline => {
            serde_json::from_slice::<serde::de::IgnoredAny>(data).map_err(json_err)?;
        }
    }
    Ok(())
}

/// Deepest JSON nesting accepted: serde_json's default recursion limit, so whatever the reader
/// accepts, a consumer parsing it with `serde_json::from_slice` into any type can parse too (the
/// reader itself skips values without that limit).
const MAX_JSON_DEPTH: usize = 128;

/// True if `data` nests arrays/objects deeper than `limit` (brackets inside strings do not count).
/// Meant for text that is otherwise valid JSON, which the parser checks.
fn nesting_exceeds(data: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in data {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A MAC over `key`. HMAC takes keys of any length (RFC 2104 section 2: longer keys are hashed,
/// shorter ones padded), so `new_from_slice` has no failing case for it.
fn mac(key: &HmacKey) -> Hmac<Sha256> {
    match <Hmac<Sha256> as KeyInit>::new_from_slice(&key.bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// `sha256=<lower-case hex>` of a tag.
fn tag_header(tag: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(SIGNATURE_PREFIX.len() + 2 * tag.len());
    out.push_str(SIGNATURE_PREFIX);
    for b in tag {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// The tag of a `sha256=<64 hex digits>` header (either case), or `None` if malformed.
fn parse_tag_header(header: &str) -> Option<Vec<u8>> {
    let hex = header.trim().strip_prefix(SIGNATURE_PREFIX)?;
    // SHA-256: 32 bytes, 64 hex digits.
    if hex.len() != 64 {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
    hex.as_bytes().chunks(2).map(|pair| Some(digit(*pair.first()?)? << 4 | digit(*pair.get(1)?)?)).collect()
}

/// The [`SIGNATURE_HEADER`] value of `body` under `key`: `sha256=<lower-case hex HMAC-SHA256>`.
#[must_use]
pub fn sign(key: &HmacKey, body: &[u8]) -> String {
    let mut m = BodyMac::new(key);
    m.update(body);
    m.finish()
}

/// True if `header` is `sha256=<hex>` with the HMAC-SHA256 of `body` under `key`. The comparison
/// is constant-time (`Mac::verify_slice`); a malformed header is simply false.
#[must_use]
pub fn verify(key: &HmacKey, body: &[u8], header: &str) -> bool {
    let mut m = BodyMac::new(key);
    m.update(body);
    m.verify(header)
}

/// The body's HMAC-SHA256 computed incrementally, as the collector receives it in chunks.
#[derive(Clone)]
pub struct BodyMac(Hmac<Sha256>);

impl std::fmt::Debug for BodyMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyMac(<keyed>)")
    }
}

impl BodyMac {
    /// A MAC under `key` over nothing yet.
    #[must_use]
    pub fn new(key: &HmacKey) -> BodyMac {
        BodyMac(mac(key))
    }

    /// Add the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The [`SIGNATURE_HEADER`] value of what was added.
    #[must_use]
    pub fn finish(self) -> String {
        tag_header(&self.0.finalize().into_bytes())
    }

    /// True if `header` is the signature of what was added (constant-time; malformed: false).
    #[must_use]
    pub fn verify(self, header: &str) -> bool {
        let Some(tag) = parse_tag_header(header) else {
            return false;
        };
        self.0.verify_slice(&tag).is_ok()
    }
}

/// The [`AUTH_HEADER`] value of an upload of `content_length` bytes whose
/// [`SIGNATURE_HEADER`] is `signature`, under the scanner's `key`: `sha256=<hex HMAC-SHA256 of
/// "agentless.upload/v1\n<content_length>\n<signature>">`. It binds the key to the headers the
/// collector sees before the body, so a sender without the key is refused before the body is read.
#[must_use]
pub fn upload_token(key: &HmacKey, content_length: u64, signature: &str) -> String {
    let mut m = mac(key);
    m.update(format!("{UPLOAD_TOKEN_LABEL}\n{content_length}\n{}", signature.trim()).as_bytes());
    tag_header(&m.finalize().into_bytes())
}

/// True if `token` is [`upload_token`] of `content_length` and `signature` under `key`
/// (constant-time; a malformed token is simply false).
#[must_use]
pub fn verify_upload_token(key: &HmacKey, content_length: u64, signature: &str, token: &str) -> bool {
    let Some(tag) = parse_tag_header(token) else {
        return false;
    };
    let mut m = mac(key);
    m.update(format!("{UPLOAD_TOKEN_LABEL}\n{content_length}\n{}", signature.trim()).as_bytes());
    m.verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(status: DeviceStatus) -> DeviceEntry {
        DeviceEntry {
            device_name: "/dev/sdf".into(),
            resolved_path: Some("/dev/nvme1n1".into()),
            instance_id: "i-0123456789abcdef0".into(),
            volume_id: "vol-0123456789abcdef0".into(),
            snapshot_id: "snap-0123456789abcdef0".into(),
            status,
            error: None,
            os: Some("Ubuntu 22.04.4 LTS".into()),
            packages: 1,
            app_packages: Default::default(),
            baseline_failed: 0,
            synthetic: false,
        }
    }

    fn sample() -> (BundleManifest, BTreeMap<usize, VolumeFiles>) {
        let manifest = BundleManifest {
            format: BUNDLE_FORMAT.into(),
            job: "j-1".into(),
            scanner: "s0".into(),
            scanner_instance: Some("i-0aaaaaaaaaaaaaaaa".into()),
            agent_version: "scanner-agent 0.1.0".into(),
            started_at: "2026-11-29T00:00:00Z".into(),
            finished_at: "2026-11-29T00:00:01Z".into(),
            devices: vec![device(DeviceStatus::Complete), device(DeviceStatus::Missing)],
            errors: vec![],
        };
        let files = VolumeFiles {
            inventory: br#"{"schema":"agentless.inventory/v1","packages":[]}"#.to_vec(),
            sbom: br#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#.to_vec(),
            baseline: b"null".to_vec(),
        };
        (manifest, BTreeMap::from([(0, files)]))
    }

    #[test]
    fn writes_reproducibly_and_reads_back() {
        let (m, v) = sample();
        let a = write_bundle(&m, &v).expect("write");
        let b = write_bundle(&m, &v).expect("write");
        assert_eq!(a, b, "same input, same bytes");
        assert_eq!(&a[..MANIFEST_NAME.len()], MANIFEST_NAME.as_bytes(), "manifest first");
        let back = read_bundle(&a, &BundleLimits::default()).expect("read");
        assert_eq!(back.manifest, m);
        assert_eq!(back.volumes, v);
        // The tar crate reads it as plain regular files too.
        let mut archive = tar::Archive::new(a.as_slice());
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry").path().expect("path").display().to_string())
            .collect();
        assert_eq!(names, ["manifest.json", "v0/inventory.json", "v0/sbom.cdx.json", "v0/baseline.json"]);
    }

    #[test]
    fn writer_refuses_inconsistent_input() {
        let (m, mut v) = sample();
        v.insert(1, v[&0].clone());
        assert!(matches!(write_bundle(&m, &v), Err(BundleError::UnexpectedDeviceFile { .. })));
        v.insert(5, VolumeFiles::default());
        assert!(matches!(write_bundle(&m, &v), Err(BundleError::NoSuchDevice { index: 5, .. })));
        let (m, _) = sample();
        assert!(matches!(write_bundle(&m, &BTreeMap::new()), Err(BundleError::MissingDeviceFile { .. })));
        let (mut m, v) = sample();
        m.job = "../x".into();
        assert!(matches!(write_bundle(&m, &v), Err(BundleError::UnsafeManifestName { field: "job", .. })));
    }

    #[test]
    fn signs_and_verifies() {
        let key = HmacKey::generate();
        let sig = sign(&key, b"body");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
        assert!(verify(&key, b"body", &sig));
        assert!(verify(&key, b"body", &sig.to_ascii_uppercase().replace("SHA256=", "sha256=")));
        assert!(!verify(&key, b"body2", &sig));
        assert!(!verify(&HmacKey::generate(), b"body", &sig));
        assert!(!verify(&key, b"body", &sig[..sig.len() - 2]));
        assert!(!verify(&key, b"body", &sig.replace("sha256=", "sha1=")));
        assert!(!verify(&key, b"body", "sha256=zz"));
        assert!(!verify(&key, b"body", &format!("sha256={}", "é".repeat(32))));
    }

    #[test]
    fn known_hmac_vector() {
        // RFC 4231 test case 2 has a 4-byte key, shorter than HmacKey allows; test case 1's key is
        // 20 bytes of 0x0b. Use a 32-byte key and compare with a value computed by
        // `openssl dgst -sha256 -mac HMAC -macopt hexkey:0b0b...0b` (32 bytes of 0x0b) of "Hi There".
        let key = HmacKey::from_hex(&"0b".repeat(32)).expect("key");
        assert_eq!(sign(&key, b"Hi There"), "sha256=198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7");
    }

    #[test]
    fn upload_token_vector_and_incremental_mac() {
        let key = HmacKey::from_hex(&"0b".repeat(32)).expect("key");
        let sig = format!("sha256={}", "ab".repeat(32));
        // Python: hmac.new(bytes.fromhex("0b"*32), b"agentless.upload/v1\n1234\n" + sig, sha256).
        let token = upload_token(&key, 1234, &sig);
        assert_eq!(token, "sha256=28dd76f46c8d181aeedc7910ec791cc593577ef3ccfafeb10f66c0b2d4f45df3");
        assert!(verify_upload_token(&key, 1234, &sig, &token));
        assert!(!verify_upload_token(&key, 1235, &sig, &token), "bound to the length");
        assert!(!verify_upload_token(&key, 1234, &sig.replace("ab", "cd"), &token), "bound to the signature");
        assert!(!verify_upload_token(&HmacKey::generate(), 1234, &sig, &token), "bound to the key");
        assert!(!verify_upload_token(&key, 1234, &sig, "sha256=00"));
        let mut m = BodyMac::new(&key);
        m.update(b"Hi ");
        m.update(b"There");
        assert_eq!(m.clone().finish(), sign(&key, b"Hi There"));
        assert!(m.verify(&sign(&key, b"Hi There")));
    }

    #[test]
    fn numbers_and_names() {
        assert_eq!(parse_number(b"00000001750\0"), Some(0o1750));
        assert_eq!(parse_number(b"     1750 \0\0"), Some(0o1750));
        assert_eq!(parse_number(b"0000000175x\0"), None);
        assert_eq!(parse_number(b"\0\0\0\0"), None);
        assert_eq!(parse_number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(parse_number(&[0xff; 12]), None);
        assert_eq!(
            parse_number(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Some(u64::MAX)
        );
        assert_eq!(classify("manifest.json"), Some(EntryKind::Manifest));
        assert_eq!(classify("v12/sbom.cdx.json"), Some(EntryKind::Volume(12, VolumeFile::Sbom)));
        assert_eq!(classify("v0/baseline.json"), Some(EntryKind::Volume(0, VolumeFile::Baseline)));
        assert!(!nesting_exceeds(br#"[[["]]]]]][[[[[[[\"["]]]"#, 3));
        assert!(nesting_exceeds(b"[[[[]]]]", 3));
        assert!(!nesting_exceeds(b"[[[]]][[[]]]", 3));
        for bad in [
            "v01/sbom.cdx.json",
            "v/sbom.cdx.json",
            "v1/x.json",
            "v1/sub/inventory.json",
            "./manifest.json",
            "v+1/sbom.cdx.json",
        ] {
            assert_eq!(classify(bad), None, "{bad}");
        }
    }
}
