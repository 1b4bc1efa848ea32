//! The job manifest: what the orchestrator tells a scanner instance, as its EC2 user data
//! (docs/bundle.md, "The job manifest (user data)"): the job, the scanner's name in the job, where to upload the result
//! bundle, the scanner's own HMAC key that signs it ([`HmacKey::for_scanner`]: derived from the
//! job's key, so one scanner's key signs nothing for its siblings), and which attached device
//! holds which target volume.
//!
//! It is JSON (the user data is its base64, as `RunInstances` takes it). It is shared by the
//! orchestrator (which writes it) and the agent's `run` mode (which reads it from IMDSv2), so both
//! sides agree on one type. Parsing is strict (`deny_unknown_fields`, a known [`JOB_MANIFEST_VERSION`],
//! bounded sizes): the user data is input like any other.
//!
//! Version 2 added `collector_cert_sha256`: with an `https://` collector URL the manifest pins the
//! collector's TLS certificate by the SHA-256 of its DER encoding, and the agent accepts no other
//! (`agent::pin`); an `http://` URL carries no pin. Version 1 manifests (no pin, so `http://`
//! only) are still read.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The job manifest format version this build writes (2: `collector_cert_sha256`).
pub const JOB_MANIFEST_VERSION: u32 = 2;

/// The oldest version this build reads: version 1 is version 2 without the pin.
pub const MIN_JOB_MANIFEST_VERSION: u32 = 1;

/// A SHA-256 fingerprint in hex: 32 bytes (FIPS 180-4, SHA-256's output size).
const SHA256_HEX_LEN: usize = 64;

/// EC2 user data is at most 16 KiB before base64 (EC2 User Guide, "Run commands when you launch an
/// EC2 instance with user data input"); a manifest larger than that cannot have come from us.
pub const MAX_USER_DATA_BYTES: usize = 16 * 1024;

/// Devices one scanner can be handed: the attachment limit of the scanner type (26 on the
/// shared-limit Nitro types, docs/references.md) with room for larger configured limits.
pub const MAX_DEVICES: usize = 128;

/// An HMAC key (the job's, or one scanner's derived from it): secret. `Debug` and `Display` never
/// show it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HmacKey(String);

impl HmacKey {
    /// A key from its lower-case hex form (32 bytes = 64 hex digits are what the orchestrator makes).
    ///
    /// # Errors
    ///
    /// Not 32 to 128 hex digits.
    pub fn from_hex(hex: &str) -> Result<HmacKey, ManifestError> {
        let ok = (64..=256).contains(&hex.len())
            && hex.len().is_multiple_of(2)
            && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if ok { Ok(HmacKey(hex.to_ascii_lowercase())) } else { Err(ManifestError::BadKey) }
    }

    /// A fresh random key (two v4 UUIDs: 244 random bits from the OS generator).
    #[must_use]
    pub fn generate() -> HmacKey {
        let a = uuid::Uuid::new_v4();
        let b = uuid::Uuid::new_v4();
        HmacKey(format!("{}{}", a.simple(), b.simple()))
    }

    /// The key bytes.
    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        self.0
            .as_bytes()
            .chunks(2)
            .filter_map(|pair| std::str::from_utf8(pair).ok().and_then(|s| u8::from_str_radix(s, 16).ok()))
            .collect()
    }

    /// The key of scanner `scanner` of job `job`, derived from this (the job's) key: HKDF-Expand
    /// (RFC 5869 section 2.3) with HMAC-SHA256, one 32-byte block, `info` =
    /// [`SCANNER_KEY_INFO`] `|| 0x00 || job || 0x00 || scanner`. The job key is uniformly random
    /// ([`HmacKey::generate`]), so it serves as the pseudorandom key directly (HKDF-Extract is for
    /// keys that are not). Knowing one scanner's key tells nothing about the job key or about any
    /// other scanner's key (HMAC is a PRF), so a scanner whose disk turned hostile cannot sign for
    /// its siblings; the collector derives the same key to verify.
    #[must_use]
    pub fn for_scanner(&self, job: &str, scanner: &str) -> HmacKey {
        use hmac::{Hmac, KeyInit, Mac};
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut mac = match <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.bytes()) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(SCANNER_KEY_INFO.as_bytes());
        mac.update(&[0]);
        mac.update(job.as_bytes());
        mac.update(&[0]);
        mac.update(scanner.as_bytes());
        // HKDF-Expand's block counter: T(1) = HMAC(PRK, info || 0x01).
        mac.update(&[1]);
        let okm = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(2 * okm.len());
        for b in okm.iter() {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        HmacKey(hex)
    }

    /// The hex form, for storing it (never for logging).
    #[must_use]
    pub fn expose_hex(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

/// The HKDF `info` label of [`HmacKey::for_scanner`] (a version string: a new derivation gets a
/// new label, so keys of two derivations never coincide).
pub const SCANNER_KEY_INFO: &str = "agentless.scanner-key/v1";

/// One attached device and the target volume it is a snapshot of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceTarget {
    /// The block device mapping name given to `RunInstances`, e.g. `/dev/sdf`. On Nitro the
    /// kernel names it `/dev/nvmeXn1`; the agent resolves it (see `agent`).
    pub device_name: String,
    /// The target instance the volume belongs to (`i-...`).
    pub instance_id: String,
    /// The target's volume (`vol-...`) the snapshot was taken of.
    pub volume_id: String,
    /// Our snapshot (`snap-...`) the device was created from.
    pub snapshot_id: String,
}

/// What a scanner is told to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobManifest {
    /// [`JOB_MANIFEST_VERSION`].
    pub version: u32,
    /// The job id (`agentless:job` tag value).
    pub job: String,
    /// The scanner's name within the job (`s0`, `s1`...): the bundle upload path's last part.
    pub scanner: String,
    /// Base URL of the collector, e.g. `https://10.0.0.5:8443`; the agent PUTs to
    /// `<collector_url>/v1/jobs/<job>/bundles/<scanner>`.
    pub collector_url: String,
    /// With an `https://` collector URL (required then, absent with `http://`): the SHA-256 of the
    /// collector's leaf certificate (DER), 64 lower-case hex digits. The agent accepts that
    /// certificate and no other, with no CA involved. Since version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector_cert_sha256: Option<String>,
    /// This scanner's key ([`HmacKey::for_scanner`]) of the bundle's `X-Agentless-Signature` and
    /// `X-Agentless-Auth`.
    pub hmac_key: HmacKey,
    /// Evaluate the baseline rules too.
    pub baseline: bool,
    /// Upload deadline, Unix seconds: after it the orchestrator no longer waits, so the agent stops
    /// retrying and powers off.
    pub deadline_unix: i64,
    pub devices: Vec<DeviceTarget>,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("job manifest is {0} bytes, more than EC2 user data can hold ({MAX_USER_DATA_BYTES})")]
    TooLarge(usize),
    #[error("job manifest is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "job manifest version {0} is not supported (this agent reads versions {MIN_JOB_MANIFEST_VERSION} to \
         {JOB_MANIFEST_VERSION})"
    )]
    Version(u32),
    #[error("job manifest lists {0} devices, more than {MAX_DEVICES}")]
    TooManyDevices(usize),
    #[error("job manifest names device {0:?} twice")]
    DuplicateDevice(String),
    #[error("job manifest field {field} is not valid: {value:?}")]
    BadField { field: &'static str, value: String },
    #[error("the job's HMAC key is not 64 to 256 hex digits")]
    BadKey,
    #[error(
        "job manifest: the collector URL {url:?} is https:// but no certificate is pinned \
         (collector_cert_sha256, manifest version 2): the agent trusts no CA, so it would have nothing to verify"
    )]
    MissingPin { url: String },
    #[error("job manifest: collector_cert_sha256 given for the plain http:// collector URL {url:?}")]
    PinWithoutTls { url: String },
    #[error("job manifest: collector_cert_sha256 is not {SHA256_HEX_LEN} lower-case hex digits")]
    BadPin,
}

/// A job/scanner name as it may appear in a URL path: 1-128 of `[A-Za-z0-9._-]`, not starting
/// with `.`.
#[must_use]
pub fn is_path_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// 64 lower-case hex digits.
#[must_use]
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == SHA256_HEX_LEN && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl JobManifest {
    /// Parse and check a manifest (the decoded user data).
    ///
    /// # Errors
    ///
    /// See [`ManifestError`].
    pub fn parse(bytes: &[u8]) -> Result<JobManifest, ManifestError> {
        if bytes.len() > MAX_USER_DATA_BYTES {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        let m: JobManifest = serde_json::from_slice(bytes)?;
        m.check()?;
        Ok(m)
    }

    /// The checks [`JobManifest::parse`] makes, for a manifest built in code.
    ///
    /// # Errors
    ///
    /// See [`ManifestError`].
    pub fn check(&self) -> Result<(), ManifestError> {
        if !(MIN_JOB_MANIFEST_VERSION..=JOB_MANIFEST_VERSION).contains(&self.version) {
            return Err(ManifestError::Version(self.version));
        }
        HmacKey::from_hex(self.hmac_key.expose_hex())?;
        if !is_path_safe_name(&self.job) {
            return Err(ManifestError::BadField { field: "job", value: self.job.clone() });
        }
        if !is_path_safe_name(&self.scanner) {
            return Err(ManifestError::BadField { field: "scanner", value: self.scanner.clone() });
        }
        let https = self.collector_url.starts_with("https://");
        if !(https || self.collector_url.starts_with("http://")) {
            return Err(ManifestError::BadField { field: "collector_url", value: self.collector_url.clone() });
        }
        match (&self.collector_cert_sha256, https) {
            (None, true) => return Err(ManifestError::MissingPin { url: self.collector_url.clone() }),
            (Some(_), false) => return Err(ManifestError::PinWithoutTls { url: self.collector_url.clone() }),
            (Some(pin), true) if !is_sha256_hex(pin) => return Err(ManifestError::BadPin),
            _ => {}
        }
        if self.devices.len() > MAX_DEVICES {
            return Err(ManifestError::TooManyDevices(self.devices.len()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in &self.devices {
            if !seen.insert(d.device_name.as_str()) {
                return Err(ManifestError::DuplicateDevice(d.device_name.clone()));
            }
            let checks: [(&'static str, &str, &str); 4] = [
                ("devices.device_name", &d.device_name, "/dev/"),
                ("devices.instance_id", &d.instance_id, "i-"),
                ("devices.volume_id", &d.volume_id, "vol-"),
                ("devices.snapshot_id", &d.snapshot_id, "snap-"),
            ];
            for (field, value, prefix) in checks {
                let rest = value.strip_prefix(prefix).unwrap_or("");
                if rest.is_empty() || rest.len() > 64 || !is_path_safe_name(rest) {
                    return Err(ManifestError::BadField { field, value: value.to_owned() });
                }
            }
        }
        Ok(())
    }

    /// The JSON text (what goes, base64-encoded, into the user data).
    ///
    /// # Errors
    ///
    /// Never in practice (plain data); kept as a `Result` so no `unwrap` is needed.
    pub fn to_json(&self) -> Result<Vec<u8>, ManifestError> {
        Ok(serde_json::to_vec(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> JobManifest {
        JobManifest {
            version: JOB_MANIFEST_VERSION,
            job: "j-20261129-abcdef".into(),
            scanner: "s0".into(),
            collector_url: "http://127.0.0.1:9000".into(),
            collector_cert_sha256: None,
            hmac_key: HmacKey::generate(),
            baseline: true,
            deadline_unix: 1_800_000_000,
            devices: vec![DeviceTarget {
                device_name: "/dev/sdf".into(),
                instance_id: "i-0123456789abcdef0".into(),
                volume_id: "vol-0123456789abcdef0".into(),
                snapshot_id: "snap-0123456789abcdef0".into(),
            }],
        }
    }

    #[test]
    fn round_trips_and_never_shows_the_key() {
        let m = manifest();
        let bytes = m.to_json().expect("json");
        let back = JobManifest::parse(&bytes).expect("parse");
        assert_eq!(back, m);
        assert_eq!(m.hmac_key.bytes().len(), 32);
        assert!(!format!("{m:?}").contains(m.hmac_key.expose_hex()));
    }

    #[test]
    fn each_scanner_gets_its_own_key() {
        let job = HmacKey::from_hex(&"0b".repeat(32)).expect("key");
        // Computed with Python's `hmac.new(bytes.fromhex("0b"*32),
        // b"agentless.scanner-key/v1\x00j-1\x00s0\x01", hashlib.sha256).hexdigest()`.
        assert_eq!(
            job.for_scanner("j-1", "s0").expose_hex(),
            "05c449164297381d96e7f4d26dfd423230f507029650e5665bb729b5b7b992a5"
        );
        let s0 = job.for_scanner("j-1", "s0");
        assert_eq!(s0, job.for_scanner("j-1", "s0"), "deterministic: the collector derives the same");
        assert_ne!(s0, job.for_scanner("j-1", "s1"));
        assert_ne!(s0, job.for_scanner("j-2", "s0"));
        assert_ne!(s0, job);
        // The separator keeps (job, scanner) pairs apart that concatenate alike.
        assert_ne!(job.for_scanner("j-1", "1s0"), job.for_scanner("j-11", "s0"));
        assert!(HmacKey::from_hex(s0.expose_hex()).is_ok(), "a valid manifest key");
    }

    #[test]
    fn refuses_bad_manifests() {
        let mut m = manifest();
        m.version = 3;
        assert!(matches!(m.check(), Err(ManifestError::Version(3))));
        let mut m = manifest();
        m.version = 0;
        assert!(matches!(m.check(), Err(ManifestError::Version(0))));
        let mut m = manifest();
        m.job = "../etc".into();
        assert!(matches!(m.check(), Err(ManifestError::BadField { field: "job", .. })));
        let mut m = manifest();
        m.devices.push(m.devices[0].clone());
        assert!(matches!(m.check(), Err(ManifestError::DuplicateDevice(_))));
        let mut m = manifest();
        m.devices[0].volume_id = "vol-../x".into();
        assert!(matches!(m.check(), Err(ManifestError::BadField { field: "devices.volume_id", .. })));
        let big = vec![b' '; MAX_USER_DATA_BYTES + 1];
        assert!(matches!(JobManifest::parse(&big), Err(ManifestError::TooLarge(_))));
        assert!(JobManifest::parse(b"{\"version\":1,\"extra\":true}").is_err());
        assert!(HmacKey::from_hex("abc").is_err());
    }
}

#[cfg(test)]
mod pin_tests {
    use super::*;

    const PIN: &str = "5f1d3c0a9e8b7f6e5d4c3b2a19080706f5e4d3c2b1a09f8e7d6c5b4a39281706";

    fn v1_json(url: &str) -> String {
        format!(
            r#"{{"version":1,"job":"j-1","scanner":"s0","collector_url":"{url}","hmac_key":"{}","baseline":false,"deadline_unix":1800000000,"devices":[]}}"#,
            "0b".repeat(32)
        )
    }

    #[test]
    fn an_https_manifest_carries_the_pin_and_round_trips() {
        let json = v1_json("https://10.0.0.5:8443")
            .replace(r#""version":1"#, r#""version":2"#)
            .replace(r#""baseline""#, &format!(r#""collector_cert_sha256":"{PIN}","baseline""#));
        let m = JobManifest::parse(json.as_bytes()).expect("a version 2 manifest with a pin");
        assert_eq!(m.collector_cert_sha256.as_deref(), Some(PIN));
        let back = JobManifest::parse(&m.to_json().expect("json")).expect("parse");
        assert_eq!(back, m);
    }

    #[test]
    fn https_without_a_pin_a_pin_without_https_and_bad_pins_are_refused() {
        let m = JobManifest::parse(v1_json("http://10.0.0.5:8080").as_bytes()).expect("version 1 over http is read");
        assert_eq!(m.version, 1);
        assert_eq!(m.collector_cert_sha256, None);
        assert!(!m.to_json().expect("json").windows(9).any(|w| w == b"cert_sha2"), "no pin written without one");
        let e = JobManifest::parse(v1_json("https://10.0.0.5:8443").as_bytes()).expect_err("https, no pin");
        assert!(matches!(e, ManifestError::MissingPin { .. }), "{e}");
        assert!(e.to_string().contains("no certificate is pinned"), "{e}");
        let mut m2 = m.clone();
        m2.version = JOB_MANIFEST_VERSION;
        m2.collector_cert_sha256 = Some(PIN.into());
        assert!(matches!(m2.check(), Err(ManifestError::PinWithoutTls { .. })));
        m2.collector_url = "https://10.0.0.5:8443".into();
        assert!(m2.check().is_ok());
        for bad in [&PIN[..63], &PIN.to_uppercase(), &format!("{}g", &PIN[..63]), ""] {
            m2.collector_cert_sha256 = Some(bad.to_owned());
            assert!(matches!(m2.check(), Err(ManifestError::BadPin)), "{bad:?}");
        }
    }
}
