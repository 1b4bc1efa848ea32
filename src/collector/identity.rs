//! The scanner's AWS-signed instance identity document: parsing and verifying
//! the PKCS#7 `rsa2048` signature IMDS serves (EC2 User Guide, "Verify the instance identity
//! document using the RSA-2048 signature": `GET /latest/dynamic/instance-identity/rsa2048`, a
//! base64 PKCS#7 `SignedData` without PEM armour that carries the document itself), against the
//! per-Region RSA-2048 certificates AWS publishes (EC2 User Guide, "AWS public certificates for
//! instance identity document signatures"), and the comparison of its `instanceId`, `accountId`
//! and `region` with what the ledger recorded for the scanner.
//!
//! Owns: the [`IdentityTrust`] (which keys sign identity documents, per Region, loaded from a
//! directory of `<region>.pem` files or the simulated account's [`TestCa`]), the BER/DER reader the
//! PKCS#7 and certificates are parsed with (RFC 5652 `SignedData`, RFC 5280 certificates; BER
//! indefinite lengths accepted, as `openssl smime` streams them), and the test CA the simulated
//! account's IMDS and the test stand-ins sign with. The verification code is the same whichever
//! key signed: only the trust differs, and a non-AWS key is trusted only when configured, loudly.
//!
//! Not checked: the document's `pendingTime` (a document is a bearer proof that stays valid for
//! the instance's life; the per-scanner HMAC key, revoked with the scanner, bounds replay).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;

/// The upload header carrying the `rsa2048` signature as IMDS serves it (base64, whitespace
/// removed); defined with the agent ([`scanner_ami::bundle::IDENTITY_HEADER`]).
pub use scanner_ami::bundle::{IDENTITY_HEADER, MAX_IDENTITY_HEADER_BYTES};

/// The largest identity document accepted: AWS's is about 500 bytes of JSON (EC2 User Guide,
/// "Instance identity documents", the example document); 16 KiB leaves room for fields added.
const MAX_DOCUMENT_BYTES: usize = 16 * 1024;

/// Nesting depth of the BER reader: a `SignedData` with its signer info and attributes is 8
/// levels deep (RFC 5652 §5); anything beyond 32 is not one.
const MAX_DEPTH: usize = 32;

/// OIDs (content octets of the DER encoding). RFC 5652 §5.1 `id-signedData` 1.2.840.113549.1.7.2,
/// §4 `id-data` 1.2.840.113549.1.7.1, §11.1 `id-contentType` 1.2.840.113549.1.9.3, §11.2
/// `id-messageDigest` 1.2.840.113549.1.9.4.
const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const OID_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const OID_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
/// RFC 8017 appendix C: `rsaEncryption` 1.2.840.113549.1.1.1, `sha256WithRSAEncryption` …1.11.
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
/// RFC 5754 §2: `id-sha256` 2.16.840.1.101.3.4.2.1, `id-sha384` …2.2, `id-sha512` …2.3; RFC 3370
/// §2.1 `sha-1` 1.3.14.3.2.26.
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// RFC 5280 §4.1.2.4 / X.520 `id-at-commonName` 2.5.4.3.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// Why an identity document was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("no {IDENTITY_HEADER} header: the scanner sent no instance identity document")]
    Missing,
    #[error("the {IDENTITY_HEADER} header is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("the identity signature is not base64: {0}")]
    Base64(String),
    #[error("the identity signature is not a PKCS#7 SignedData: {0}")]
    Malformed(String),
    #[error("the identity signature uses {0}, which is not supported (SHA-1/256/384/512 with RSA)")]
    Unsupported(String),
    #[error("no trusted certificate for Region {region} ({source_desc})")]
    NoCertificate { region: String, source_desc: String },
    #[error("the identity signature does not verify with any certificate trusted for Region {region}")]
    BadSignature { region: String },
    #[error("the signed identity document is not the JSON of an instance identity document: {0}")]
    Document(String),
    #[error("the signed message digest is not the digest of the document: it was altered after signing")]
    DigestMismatch,
    #[error("the identity document's {field} is {document:?}, the ledger recorded {expected:?}")]
    Mismatch { field: &'static str, document: String, expected: String },
}

impl IdentityError {
    /// The refusal reason it is counted under (`agentless_collector_refusals_total`).
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            IdentityError::Missing => "identity_missing",
            IdentityError::TooLarge { .. }
            | IdentityError::Base64(_)
            | IdentityError::Malformed(_)
            | IdentityError::Unsupported(_)
            | IdentityError::Document(_) => "identity_malformed",
            IdentityError::NoCertificate { .. } => "identity_no_certificate",
            IdentityError::BadSignature { .. } | IdentityError::DigestMismatch => "identity_bad_signature",
            IdentityError::Mismatch { .. } => "identity_mismatch",
        }
    }
}

/// Why trusted certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("reading identity certificates from {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("{0}: no `<region>.pem` certificate in it")]
    Empty(PathBuf),
    #[error("generating the test CA: {0}")]
    TestCa(String),
}

/// What the ledger recorded for a scanner: its identity document must say the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedIdentity {
    pub instance_id: String,
    pub account_id: String,
    pub region: String,
}

/// The fields of an instance identity document we check (EC2 User Guide, "Instance identity
/// documents"; the other fields are ignored).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityDocument {
    pub instance_id: String,
    pub account_id: String,
    pub region: String,
}

/// One trusted signing key.
#[derive(Debug, Clone)]
struct TrustedKey {
    /// Where it came from (file, or "test CA"), for messages.
    label: String,
    /// PKCS#1 `RSAPublicKey` DER, as `aws-lc-rs` verifies with.
    rsa_public_key: Vec<u8>,
}

/// Which keys sign instance identity documents.
#[derive(Debug, Clone, Default)]
pub struct IdentityTrust {
    by_region: BTreeMap<String, Vec<TrustedKey>>,
    /// Keys trusted for every Region: only the simulated account's test CA.
    any_region: Vec<TrustedKey>,
    /// Where the trust came from, for messages.
    source: String,
}

impl IdentityTrust {
    /// The certificates of `dir`: one `<region>.pem` per Region (e.g. `us-east-1.pem`), each
    /// holding one or more PEM `CERTIFICATE` blocks copied from AWS's page. Each loaded
    /// certificate is logged with its subject.
    ///
    /// # Errors
    ///
    /// The directory or a file cannot be read, a file holds no RSA certificate, or there is none.
    pub fn from_dir(dir: &Path) -> Result<IdentityTrust, TrustError> {
        let io = |path: &Path, source| TrustError::Io { path: path.to_path_buf(), source };
        let mut by_region: BTreeMap<String, Vec<TrustedKey>> = BTreeMap::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect();
        entries.sort();
        for path in entries {
            let Some(region) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else { continue };
            let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
            let certs =
                pem_certificates(&text).map_err(|reason| TrustError::Certificate { path: path.clone(), reason })?;
            if certs.is_empty() {
                return Err(TrustError::Certificate { path, reason: "no CERTIFICATE block".into() });
            }
            for der in certs {
                let cert =
                    parse_certificate(&der).map_err(|reason| TrustError::Certificate { path: path.clone(), reason })?;
                tracing::info!(%region, file = %path.display(), subject = %cert.subject, "trusting an instance identity certificate");
                by_region.entry(region.clone()).or_default().push(TrustedKey {
                    label: format!("{} ({})", path.display(), cert.subject),
                    rsa_public_key: cert.rsa_public_key,
                });
            }
        }
        if by_region.is_empty() {
            return Err(TrustError::Empty(dir.to_path_buf()));
        }
        Ok(IdentityTrust { by_region, any_region: Vec::new(), source: dir.display().to_string() })
    }

    /// Trust `ca` for every Region. For the simulated account and tests only: logged as a
    /// warning, since a document it signs proves nothing about AWS.
    ///
    /// # Errors
    ///
    /// The CA's certificate does not parse (it is ours: never).
    pub fn test_ca(ca: &TestCa) -> Result<IdentityTrust, TrustError> {
        let cert = parse_certificate(&ca.cert_der).map_err(TrustError::TestCa)?;
        tracing::warn!(
            subject = %cert.subject,
            "the collector trusts a TEST CA for instance identity documents, not AWS's certificates: \
             for the simulated account and tests only"
        );
        Ok(IdentityTrust {
            by_region: BTreeMap::new(),
            any_region: vec![TrustedKey {
                label: format!("test CA ({})", cert.subject),
                rsa_public_key: cert.rsa_public_key,
            }],
            source: "the simulated account's test CA".into(),
        })
    }

    /// The Regions with a certificate of their own.
    #[must_use]
    pub fn regions(&self) -> Vec<String> {
        self.by_region.keys().cloned().collect()
    }

    /// Whether documents of `region` can be verified.
    #[must_use]
    pub fn covers(&self, region: &str) -> bool {
        !self.any_region.is_empty() || self.by_region.contains_key(region)
    }

    /// Verify `header` (the [`IDENTITY_HEADER`] value) against the certificates of `expected`'s
    /// Region (from the ledger, never from the document), then compare the document's instance
    /// id, account and Region with `expected`.
    ///
    /// # Errors
    ///
    /// See [`IdentityError`].
    pub fn verify(&self, header: Option<&str>, expected: &ExpectedIdentity) -> Result<IdentityDocument, IdentityError> {
        let header = header.ok_or(IdentityError::Missing)?;
        if header.len() > MAX_IDENTITY_HEADER_BYTES {
            return Err(IdentityError::TooLarge { size: header.len(), limit: MAX_IDENTITY_HEADER_BYTES });
        }
        let compact: String = header.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| IdentityError::Base64(e.to_string()))?;
        let signed = parse_signed_data(&der)?;
        let keys: Vec<&TrustedKey> =
            self.by_region.get(&expected.region).into_iter().flatten().chain(self.any_region.iter()).collect();
        if keys.is_empty() {
            return Err(IdentityError::NoCertificate {
                region: expected.region.clone(),
                source_desc: self.source.clone(),
            });
        }
        let Some(key) = keys.iter().find(|k| signed.verify_with(&k.rsa_public_key)) else {
            return Err(IdentityError::BadSignature { region: expected.region.clone() });
        };
        tracing::debug!(key = %key.label, "identity signature verified");
        let doc: IdentityDocument =
            serde_json::from_slice(&signed.content).map_err(|e| IdentityError::Document(e.to_string()))?;
        let check = |field: &'static str, document: &str, expected: &str| {
            if document == expected {
                Ok(())
            } else {
                Err(IdentityError::Mismatch { field, document: document.to_owned(), expected: expected.to_owned() })
            }
        };
        check("instanceId", &doc.instance_id, &expected.instance_id)?;
        check("accountId", &doc.account_id, &expected.account_id)?;
        check("region", &doc.region, &expected.region)?;
        Ok(doc)
    }
}

/// The base64 bodies of the PEM `CERTIFICATE` blocks of `text`, decoded.
fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let end = after.find(END).ok_or("a CERTIFICATE block has no END line")?;
        let body: String = after[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
        out.push(
            base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .map_err(|e| format!("a CERTIFICATE block is not base64: {e}"))?,
        );
        rest = &after[end + END.len()..];
    }
    Ok(out)
}

/// What we need of a certificate.
struct Certificate {
    subject: String,
    rsa_public_key: Vec<u8>,
}

/// The subject (its common name, else "(no CN)") and RSA public key of a DER certificate
/// (RFC 5280 §4.1). Its own signature and validity are not checked: the certificate is trusted
/// because it was configured, as AWS's page says (`openssl smime -verify -noverify`).
fn parse_certificate(der: &[u8]) -> Result<Certificate, String> {
    let cert = ber::single(der).map_err(|e| e.to_string())?;
    let parts = cert.children().map_err(|e| e.to_string())?;
    let tbs = parts.first().ok_or("empty certificate")?;
    let mut fields = tbs.children().map_err(|e| e.to_string())?.into_iter().peekable();
    // [0] EXPLICIT version, optional.
    if fields.peek().is_some_and(|f| f.tag == 0xa0) {
        fields.next();
    }
    let _serial = fields.next().ok_or("no serial number")?;
    let _algorithm = fields.next().ok_or("no signature algorithm")?;
    let _issuer = fields.next().ok_or("no issuer")?;
    let _validity = fields.next().ok_or("no validity")?;
    let subject = fields.next().ok_or("no subject")?;
    let spki = fields.next().ok_or("no subject public key info")?;
    let spki = spki.children().map_err(|e| e.to_string())?;
    let (Some(alg), Some(key)) = (spki.first(), spki.get(1)) else {
        return Err("incomplete subject public key info".into());
    };
    let alg_oid = alg.children().map_err(|e| e.to_string())?.into_iter().next().ok_or("no key algorithm")?;
    if alg_oid.tag != ber::OID || alg_oid.content != OID_RSA_ENCRYPTION {
        return Err("the certificate's key is not RSA (the RSA-2048 certificate is needed)".into());
    }
    if key.tag != ber::BIT_STRING || key.content.first() != Some(&0) {
        return Err("malformed subject public key".into());
    }
    let rsa_public_key = key.content.get(1..).unwrap_or_default().to_vec();
    Ok(Certificate { subject: common_name(&subject).unwrap_or_else(|| "(no CN)".into()), rsa_public_key })
}

/// The first common name of a `Name`.
fn common_name(name: &ber::Tlv<'_>) -> Option<String> {
    for rdn in name.children().ok()? {
        for atv in rdn.children().ok()? {
            let kv = atv.children().ok()?;
            if kv.first().is_some_and(|o| o.content == OID_COMMON_NAME) {
                return kv.get(1).map(|v| String::from_utf8_lossy(v.content).into_owned());
            }
        }
    }
    None
}

/// A parsed `SignedData` with one signer.
struct SignedData {
    /// The encapsulated content: the identity document.
    content: Vec<u8>,
    digest: &'static digest::Algorithm,
    verification: &'static signature::RsaParameters,
    /// What the signature covers: the signed attributes re-tagged as a SET (RFC 5652 §5.4), or
    /// the content when there are none.
    signed_bytes: Vec<u8>,
    signature: Vec<u8>,
}

impl SignedData {
    fn verify_with(&self, rsa_public_key: &[u8]) -> bool {
        UnparsedPublicKey::new(self.verification, rsa_public_key).verify(&self.signed_bytes, &self.signature).is_ok()
    }
}

fn malformed(what: &str) -> IdentityError {
    IdentityError::Malformed(what.to_owned())
}

fn digest_of(oid: &[u8]) -> Result<(&'static digest::Algorithm, &'static signature::RsaParameters), IdentityError> {
    match oid {
        OID_SHA256 => Ok((&digest::SHA256, &signature::RSA_PKCS1_2048_8192_SHA256)),
        OID_SHA384 => Ok((&digest::SHA384, &signature::RSA_PKCS1_2048_8192_SHA384)),
        OID_SHA512 => Ok((&digest::SHA512, &signature::RSA_PKCS1_2048_8192_SHA512)),
        // SHA-1 signatures still verify with a 2048-bit key; accepted for documents signed before
        // AWS moved to SHA-256, never produced here.
        OID_SHA1 => Ok((&digest::SHA1_FOR_LEGACY_USE_ONLY, &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY)),
        other => Err(IdentityError::Unsupported(format!("digest algorithm OID {}", hex(other)))),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 5652 §3 `ContentInfo` → §5.1 `SignedData` → §5.2 the encapsulated content → §5.3 the one
/// `SignerInfo`, and the bytes its signature covers.
fn parse_signed_data(der: &[u8]) -> Result<SignedData, IdentityError> {
    let bad = |e: ber::BerError| IdentityError::Malformed(e.to_string());
    let info = ber::single(der).map_err(bad)?;
    let info = info.children().map_err(bad)?;
    match (info.first(), info.get(1)) {
        (Some(oid), Some(_)) if oid.tag == ber::OID && oid.content == OID_SIGNED_DATA => {}
        _ => return Err(malformed("the ContentInfo is not signedData")),
    }
    let explicit = info.get(1).ok_or_else(|| malformed("no content"))?;
    let sd = explicit.children().map_err(bad)?.into_iter().next().ok_or_else(|| malformed("empty [0]"))?;
    let fields = sd.children().map_err(bad)?;
    // version, digestAlgorithms, encapContentInfo, [0] certificates?, [1] crls?, signerInfos.
    let encap = fields.get(2).ok_or_else(|| malformed("no encapsulated content"))?;
    let signer_infos = fields.last().ok_or_else(|| malformed("no signer infos"))?;
    let encap = encap.children().map_err(bad)?;
    match encap.first() {
        Some(oid) if oid.tag == ber::OID && oid.content == OID_DATA => {}
        _ => return Err(malformed("the encapsulated content is not id-data")),
    }
    let wrapped = encap.get(1).ok_or_else(|| malformed("the document is not in the signature (detached)"))?;
    let octets = wrapped.children().map_err(bad)?.into_iter().next().ok_or_else(|| malformed("empty eContent"))?;
    let content = octets.octets(MAX_DOCUMENT_BYTES).map_err(bad)?;
    let signers = signer_infos.children().map_err(bad)?;
    let [signer] = signers.as_slice() else {
        return Err(malformed("not exactly one signer"));
    };
    let parts = signer.children().map_err(bad)?;
    // version, sid, digestAlgorithm, [0] signedAttrs?, signatureAlgorithm, signature, [1]?.
    let digest_alg = parts.get(2).ok_or_else(|| malformed("no digest algorithm"))?;
    let digest_oid =
        digest_alg.children().map_err(bad)?.into_iter().next().ok_or_else(|| malformed("empty digest algorithm"))?;
    let (digest_alg, verification) = digest_of(digest_oid.content)?;
    let (attrs, rest) = match parts.get(3) {
        Some(a) if a.tag == 0xa0 => (Some(a), &parts[4..]),
        _ => (None, parts.get(3..).unwrap_or_default()),
    };
    let sig_alg = rest.first().ok_or_else(|| malformed("no signature algorithm"))?;
    let sig_oid =
        sig_alg.children().map_err(bad)?.into_iter().next().ok_or_else(|| malformed("empty signature algorithm"))?;
    if sig_oid.content != OID_RSA_ENCRYPTION && !is_rsa_with(sig_oid.content, digest_oid.content) {
        return Err(IdentityError::Unsupported(format!("signature algorithm OID {}", hex(sig_oid.content))));
    }
    let signature = rest.get(1).filter(|s| s.tag == ber::OCTET_STRING).ok_or_else(|| malformed("no signature"))?;
    let signed_bytes = match attrs {
        None => content.clone(),
        Some(attrs) => {
            let want = digest::digest(digest_alg, &content);
            check_signed_attributes(attrs, want.as_ref())?;
            // RFC 5652 §5.4: the signature covers the DER of the attributes as an explicit SET OF.
            let raw = attrs.raw_definite().ok_or_else(|| malformed("indefinite-length signed attributes"))?;
            let mut b = raw.to_vec();
            b[0] = 0x31;
            b
        }
    };
    Ok(SignedData { content, digest: digest_alg, verification, signed_bytes, signature: signature.content.to_vec() })
}

/// `sha*WithRSAEncryption` matching the digest (RFC 8017 appendix C; RFC 4055 §5 for 384/512).
fn is_rsa_with(sig_oid: &[u8], digest_oid: &[u8]) -> bool {
    let Some((&last, prefix)) = sig_oid.split_last() else { return false };
    if prefix != &OID_SHA256_WITH_RSA[..OID_SHA256_WITH_RSA.len() - 1] {
        return false;
    }
    matches!((last, digest_oid), (0x05, OID_SHA1) | (0x0b, OID_SHA256) | (0x0c, OID_SHA384) | (0x0d, OID_SHA512))
}

/// RFC 5652 §5.3: with signed attributes, `content-type` must be the content's type and
/// `message-digest` the digest of the content.
fn check_signed_attributes(attrs: &ber::Tlv<'_>, digest: &[u8]) -> Result<(), IdentityError> {
    let bad = |e: ber::BerError| IdentityError::Malformed(e.to_string());
    let (mut content_type, mut message_digest) = (false, false);
    for attr in attrs.children().map_err(bad)? {
        let kv = attr.children().map_err(bad)?;
        let (Some(oid), Some(values)) = (kv.first(), kv.get(1)) else { continue };
        let value = values.children().map_err(bad)?.into_iter().next();
        if oid.content == OID_CONTENT_TYPE {
            content_type = value.is_some_and(|v| v.content == OID_DATA);
        } else if oid.content == OID_MESSAGE_DIGEST {
            message_digest = value.is_some_and(|v| v.tag == ber::OCTET_STRING && v.content == digest);
        }
    }
    if !content_type {
        return Err(malformed("the signed content-type attribute is missing or not id-data"));
    }
    if !message_digest {
        return Err(IdentityError::DigestMismatch);
    }
    Ok(())
}

impl std::fmt::Debug for SignedData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedData")
            .field("content_bytes", &self.content.len())
            .field("digest", self.digest)
            .field("signature_bytes", &self.signature.len())
            .finish_non_exhaustive()
    }
}

/// A test-only certificate authority: an RSA-2048 key generated at run time and its self-signed
/// certificate. The simulated account's IMDS and the tests' stand-ins sign identity documents
/// with it in the same PKCS#7 form AWS uses, so the collector's verification runs unchanged; the
/// collector trusts it only through [`IdentityTrust::test_ca`].
pub struct TestCa {
    key: KeyPair,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").field("cert_bytes", &self.cert_der.len()).finish_non_exhaustive()
    }
}

/// The test CA's subject common name.
pub const TEST_CA_NAME: &str = "agentless TEST identity CA (not AWS)";

impl TestCa {
    /// A fresh key and certificate.
    ///
    /// # Errors
    ///
    /// Key generation or signing failed.
    pub fn generate() -> Result<TestCa, TrustError> {
        let key = KeyPair::generate(KeySize::Rsa2048).map_err(|e| TrustError::TestCa(e.to_string()))?;
        let name = der::name(TEST_CA_NAME);
        let alg = der::algorithm(OID_SHA256_WITH_RSA);
        let spki = der::seq(&[der::algorithm(OID_RSA_ENCRYPTION), der::bit_string(key.public_key().as_ref())]);
        let validity = der::seq(&[
            der::tlv(0x17, b"250101000000Z"),
            // RFC 5280 §4.1.2.5: dates in 2050 or later are GeneralizedTime.
            der::tlv(0x18, b"20991231235959Z"),
        ]);
        let tbs = der::seq(&[
            der::tlv(0xa0, &der::integer(&[2])),
            der::integer(&[1]),
            alg.clone(),
            name.clone(),
            validity,
            name,
            spki,
        ]);
        let sig = rsa_sign(&key, &tbs).map_err(TrustError::TestCa)?;
        let cert_der = der::seq(&[tbs, alg, der::bit_string(&sig)]);
        Ok(TestCa { key, cert_der })
    }

    /// The certificate, PEM.
    #[must_use]
    pub fn certificate_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.cert_der);
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }

    /// An identity document of an instance, in AWS's JSON form (EC2 User Guide, "Instance
    /// identity documents"; the fields we know).
    #[must_use]
    pub fn document(instance_id: &str, account_id: &str, region: &str) -> Vec<u8> {
        let doc = serde_json::json!({
            "accountId": account_id,
            "architecture": "x86_64",
            "availabilityZone": format!("{region}a"),
            "instanceId": instance_id,
            "region": region,
            "version": "2017-09-30",
        });
        serde_json::to_vec_pretty(&doc).unwrap_or_default()
    }

    /// `document` signed as IMDS's `rsa2048`: base64 of a PKCS#7 `SignedData` carrying it, with
    /// `content-type` and `message-digest` signed attributes, SHA-256 with RSA.
    ///
    /// # Errors
    ///
    /// Signing failed.
    pub fn sign(&self, document: &[u8]) -> Result<String, TrustError> {
        self.sign_encoded(document, false)
    }

    /// [`TestCa::sign`], with BER indefinite lengths on the outer structures and the document as
    /// a constructed OCTET STRING, as `openssl smime` streams its output.
    ///
    /// # Errors
    ///
    /// Signing failed.
    pub fn sign_indefinite(&self, document: &[u8]) -> Result<String, TrustError> {
        self.sign_encoded(document, true)
    }

    fn sign_encoded(&self, document: &[u8], indefinite: bool) -> Result<String, TrustError> {
        let digest = digest::digest(&digest::SHA256, document);
        let content_type = der::seq(&[der::oid(OID_CONTENT_TYPE), der::tlv(0x31, &der::oid(OID_DATA))]);
        let message_digest =
            der::seq(&[der::oid(OID_MESSAGE_DIGEST), der::tlv(0x31, &der::tlv(ber::OCTET_STRING, digest.as_ref()))]);
        // DER SET OF: sorted encodings (X.690 §11.6); the content-type one is shorter.
        let mut attrs = [content_type, message_digest];
        attrs.sort();
        let attrs = attrs.concat();
        let signed_set = der::tlv(0x31, &attrs);
        let sig = rsa_sign(&self.key, &signed_set).map_err(TrustError::TestCa)?;
        let signer = der::seq(&[
            der::integer(&[1]),
            der::seq(&[der::name(TEST_CA_NAME), der::integer(&[1])]),
            der::algorithm(OID_SHA256),
            der::tlv(0xa0, &attrs),
            der::algorithm(OID_RSA_ENCRYPTION),
            der::tlv(ber::OCTET_STRING, &sig),
        ]);
        let wrap =
            |tag: u8, content: &[u8]| if indefinite { der::indefinite(tag, content) } else { der::tlv(tag, content) };
        let e_content = if indefinite {
            let chunks: Vec<Vec<u8>> = document.chunks(100).map(|c| der::tlv(ber::OCTET_STRING, c)).collect();
            der::indefinite(0x24, &chunks.concat())
        } else {
            der::tlv(ber::OCTET_STRING, document)
        };
        let encap = wrap(0x30, &[der::oid(OID_DATA), wrap(0xa0, &e_content)].concat());
        let signed_data = wrap(
            0x30,
            &[der::integer(&[1]), der::tlv(0x31, &der::algorithm(OID_SHA256)), encap, der::tlv(0x31, &signer)].concat(),
        );
        let info = wrap(0x30, &[der::oid(OID_SIGNED_DATA), wrap(0xa0, &signed_data)].concat());
        Ok(base64::engine::general_purpose::STANDARD.encode(info))
    }
}

fn rsa_sign(key: &KeyPair, msg: &[u8]) -> Result<Vec<u8>, String> {
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig).map_err(|e| e.to_string())?;
    Ok(sig)
}

/// A small BER reader (X.690 §8): definite and indefinite lengths, low tag numbers only, depth
/// and size bounded by the input.
mod ber {
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    const CONSTRUCTED: u8 = 0x20;

    #[derive(Debug, thiserror::Error)]
    pub enum BerError {
        #[error("truncated at byte {0}")]
        Truncated(usize),
        #[error("high tag numbers are not used by PKCS#7")]
        HighTag,
        #[error("a length of {0} bytes is not supported")]
        LongLength(usize),
        #[error("an indefinite length on a primitive element")]
        IndefinitePrimitive,
        #[error("nested deeper than {0}")]
        TooDeep(usize),
        #[error("trailing bytes after the element")]
        Trailing,
        #[error("an OCTET STRING of more than {0} bytes")]
        TooLarge(usize),
        #[error("tag {0:#04x} where an OCTET STRING was expected")]
        NotOctets(u8),
    }

    /// One element.
    #[derive(Debug, Clone, Copy)]
    pub struct Tlv<'a> {
        pub tag: u8,
        /// The contents (without an indefinite length's end-of-contents).
        pub content: &'a [u8],
        /// The whole encoding, when the length is definite.
        raw: Option<&'a [u8]>,
        depth: usize,
    }

    impl<'a> Tlv<'a> {
        /// The elements of a constructed element.
        pub fn children(&self) -> Result<Vec<Tlv<'a>>, BerError> {
            let mut out = Vec::new();
            let mut rest = self.content;
            let mut offset = 0;
            while !rest.is_empty() {
                let (t, used) = parse(rest, self.depth + 1, offset)?;
                out.push(t);
                rest = &rest[used..];
                offset += used;
            }
            Ok(out)
        }

        /// The whole encoding of a definite-length element.
        pub fn raw_definite(&self) -> Option<&'a [u8]> {
            self.raw
        }

        /// The octets of an OCTET STRING, primitive or constructed (X.690 §8.7.3), at most `limit`.
        pub fn octets(&self, limit: usize) -> Result<Vec<u8>, BerError> {
            let mut out = Vec::new();
            self.collect_octets(&mut out, limit)?;
            Ok(out)
        }

        fn collect_octets(&self, out: &mut Vec<u8>, limit: usize) -> Result<(), BerError> {
            match self.tag {
                OCTET_STRING => {
                    if out.len() + self.content.len() > limit {
                        return Err(BerError::TooLarge(limit));
                    }
                    out.extend_from_slice(self.content);
                    Ok(())
                }
                t if t == OCTET_STRING | CONSTRUCTED => {
                    for c in self.children()? {
                        c.collect_octets(out, limit)?;
                    }
                    Ok(())
                }
                t => Err(BerError::NotOctets(t)),
            }
        }
    }

    /// `input` is exactly one element.
    pub fn single(input: &[u8]) -> Result<Tlv<'_>, BerError> {
        let (t, used) = parse(input, 0, 0)?;
        if used != input.len() {
            return Err(BerError::Trailing);
        }
        Ok(t)
    }

    /// One element at the start of `input`, and the bytes it used (`offset` for messages).
    fn parse(input: &[u8], depth: usize, offset: usize) -> Result<(Tlv<'_>, usize), BerError> {
        if depth > super::MAX_DEPTH {
            return Err(BerError::TooDeep(super::MAX_DEPTH));
        }
        let truncated = || BerError::Truncated(offset + input.len());
        let &tag = input.first().ok_or_else(truncated)?;
        if tag & 0x1f == 0x1f {
            return Err(BerError::HighTag);
        }
        let &first = input.get(1).ok_or_else(truncated)?;
        if first == 0x80 {
            if tag & CONSTRUCTED == 0 {
                return Err(BerError::IndefinitePrimitive);
            }
            // Children until the end-of-contents octets 00 00.
            let mut pos = 2;
            loop {
                let rest = input.get(pos..).ok_or_else(truncated)?;
                if rest.starts_with(&[0, 0]) {
                    let content = &input[2..pos];
                    return Ok((Tlv { tag, content, raw: None, depth }, pos + 2));
                }
                let (_, used) = parse(rest, depth + 1, offset + pos)?;
                pos += used;
            }
        }
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n > 4 {
                return Err(BerError::LongLength(n));
            }
            let bytes = input.get(2..2 + n).ok_or_else(truncated)?;
            (bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b)), 2 + n)
        };
        let end = header.checked_add(len).ok_or_else(truncated)?;
        let content = input.get(header..end).ok_or_else(truncated)?;
        Ok((Tlv { tag, content, raw: Some(&input[..end]), depth }, end))
    }
}

/// The DER writer of the test CA (X.690 §10: definite lengths, minimal).
mod der {
    /// Tag, minimal definite length, content.
    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend_from_slice(&bytes);
        }
        out.extend_from_slice(content);
        out
    }

    /// BER indefinite length (X.690 §8.1.3.6).
    pub fn indefinite(tag: u8, content: &[u8]) -> Vec<u8> {
        [&[tag, 0x80][..], content, &[0, 0]].concat()
    }

    pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    pub fn oid(content: &[u8]) -> Vec<u8> {
        tlv(super::ber::OID, content)
    }

    /// A non-negative INTEGER from big-endian magnitude bytes.
    pub fn integer(magnitude: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = magnitude.iter().copied().skip_while(|&b| b == 0).collect();
        if v.first().is_none_or(|&b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        tlv(0x02, &v)
    }

    /// `AlgorithmIdentifier` with NULL parameters (RFC 8017 appendix C).
    pub fn algorithm(oid_content: &[u8]) -> Vec<u8> {
        seq(&[oid(oid_content), vec![0x05, 0x00]])
    }

    pub fn bit_string(bytes: &[u8]) -> Vec<u8> {
        tlv(super::ber::BIT_STRING, &[&[0u8][..], bytes].concat())
    }

    /// A `Name` of one common name (UTF8String).
    pub fn name(cn: &str) -> Vec<u8> {
        let atv = seq(&[oid(super::OID_COMMON_NAME), tlv(0x0c, cn.as_bytes())]);
        seq(&[tlv(0x31, &atv)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected() -> ExpectedIdentity {
        ExpectedIdentity {
            instance_id: "i-0123456789abcdef0".into(),
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
        }
    }

    fn signed(ca: &TestCa, e: &ExpectedIdentity) -> String {
        ca.sign(&TestCa::document(&e.instance_id, &e.account_id, &e.region)).expect("sign")
    }

    #[test]
    fn a_document_signed_by_the_trusted_ca_for_the_right_instance_verifies() {
        let ca = TestCa::generate().expect("ca");
        let trust = IdentityTrust::test_ca(&ca).expect("trust");
        let doc = trust.verify(Some(&signed(&ca, &expected())), &expected()).expect("verifies");
        assert_eq!(doc.instance_id, "i-0123456789abcdef0");
        assert_eq!(doc.account_id, "123456789012");
        assert_eq!(doc.region, "us-east-1");
        // openssl's streamed form (indefinite lengths, constructed OCTET STRING) verifies too.
        let e = expected();
        let ber = ca.sign_indefinite(&TestCa::document(&e.instance_id, &e.account_id, &e.region)).expect("sign");
        assert_ne!(ber, signed(&ca, &e));
        assert_eq!(trust.verify(Some(&ber), &e).expect("BER verifies"), doc);
    }

    #[test]
    fn certificates_load_from_a_region_directory_and_only_for_their_region() {
        let ca = TestCa::generate().expect("ca");
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("eu-west-1.pem"), ca.certificate_pem()).expect("write");
        std::fs::write(dir.path().join("README.md"), "not a certificate").expect("write");
        let trust = IdentityTrust::from_dir(dir.path()).expect("loads");
        assert_eq!(trust.regions(), vec!["eu-west-1".to_owned()]);
        let mut e = expected();
        e.region = "eu-west-1".into();
        trust.verify(Some(&signed(&ca, &e)), &e).expect("verifies for eu-west-1");
        // The same document claiming us-east-1: no certificate for it.
        let err = trust.verify(Some(&signed(&ca, &expected())), &expected()).expect_err("no us-east-1 certificate");
        assert_eq!(err.reason(), "identity_no_certificate", "{err}");
        let empty = tempfile::tempdir().expect("tmp");
        assert!(matches!(IdentityTrust::from_dir(empty.path()), Err(TrustError::Empty(_))));
    }

    #[test]
    fn wrong_fields_other_keys_tampering_and_absence_are_refused() {
        let ca = TestCa::generate().expect("ca");
        let trust = IdentityTrust::test_ca(&ca).expect("trust");
        let e = expected();
        for (field, mutate) in [
            ("instanceId", (|x: &mut ExpectedIdentity| x.instance_id = "i-0fffffffffffffff0".into()) as fn(&mut _)),
            ("accountId", |x| x.account_id = "210987654321".into()),
            ("region", |x| x.region = "eu-west-1".into()),
        ] {
            let mut other = e.clone();
            mutate(&mut other);
            let header = signed(&ca, &other);
            match trust.verify(Some(&header), &e) {
                Err(IdentityError::Mismatch { field: f, .. }) => assert_eq!(f, field),
                r => panic!("{field}: {r:?}"),
            }
        }
        let stranger = TestCa::generate().expect("other ca");
        let err = trust.verify(Some(&signed(&stranger, &e)), &e).expect_err("another key");
        assert_eq!(err.reason(), "identity_bad_signature", "{err}");

        // Tampered: the document's instance id changed after signing (same length).
        let der = base64::engine::general_purpose::STANDARD.decode(signed(&ca, &e)).expect("b64");
        let at = der.windows(19).position(|w| w == b"i-0123456789abcdef0").expect("id in the document");
        let mut tampered = der.clone();
        tampered[at + 18] = b'1';
        let header = base64::engine::general_purpose::STANDARD.encode(&tampered);
        let err = trust.verify(Some(&header), &e).expect_err("tampered");
        assert_eq!(err.reason(), "identity_bad_signature", "{err}");
        // Tampered signature bytes.
        let mut sig_flipped = der;
        let last = sig_flipped.len() - 1;
        sig_flipped[last] ^= 1;
        let header = base64::engine::general_purpose::STANDARD.encode(&sig_flipped);
        assert_eq!(trust.verify(Some(&header), &e).expect_err("bad sig").reason(), "identity_bad_signature");

        assert_eq!(trust.verify(None, &e).expect_err("missing").reason(), "identity_missing");
        assert_eq!(trust.verify(Some("%%%"), &e).expect_err("not b64").reason(), "identity_malformed");
        let junk = base64::engine::general_purpose::STANDARD.encode([0x30, 0x03, 0x02, 0x01]);
        assert_eq!(trust.verify(Some(&junk), &e).expect_err("truncated").reason(), "identity_malformed");
        let huge = "A".repeat(MAX_IDENTITY_HEADER_BYTES + 1);
        assert_eq!(trust.verify(Some(&huge), &e).expect_err("huge").reason(), "identity_malformed");
    }

    #[test]
    fn ber_reader_bounds_depth_and_lengths() {
        let deep = [0x30u8, 0x80].repeat(MAX_DEPTH + 2);
        assert!(matches!(ber::single(&deep), Err(ber::BerError::TooDeep(_))));
        assert!(matches!(ber::single(&[0x30, 0x85, 1, 1, 1, 1, 1]), Err(ber::BerError::LongLength(5))));
        assert!(matches!(ber::single(&[0x04, 0x80, 0, 0]), Err(ber::BerError::IndefinitePrimitive)));
        assert!(matches!(ber::single(&[0x04, 0x05, 1]), Err(ber::BerError::Truncated(_))));
    }
}
