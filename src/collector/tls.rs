//! TLS without a PKI for the collector's listener (and the daemon's API on the same listener):
//! which certificate it serves, whether it may serve plain HTTP at all, and the accept loop that
//! runs the handshakes.
//!
//! - [`TlsIdentity`]: the user's certificate chain and key (PEM, `--tls-cert`/`--tls-key`,
//!   `server.tls_cert`/`server.tls_key`), or by default a self-signed ECDSA P-256 certificate
//!   generated once into `<data_dir>/tls/` (key mode 0600) and reused on every start, so the
//!   fingerprint scanners pin stays the same; regenerated, with a warning, only if the stored one
//!   cannot be used. Its SHA-256 fingerprint (of the leaf's DER) goes into every scanner's job
//!   manifest (`scanner_ami::agent::pin`), so scanners verify the collector with no CA; with a
//!   CA-signed certificate the pin still applies (to the leaf).
//! - [`plan`]: TLS or plain HTTP. Plain `http://` collector URLs are refused on AWS, and plain
//!   HTTP on a non-loopback address is refused everywhere (the API token would travel in clear),
//!   unless the loudly named `--insecure-plaintext-collector` (`server.insecure_plaintext_collector`)
//!   allows it; then every start logs a warning.
//! - [`TlsListener`]: an [`axum::serve::Listener`] whose connections are TLS streams. The
//!   handshakes run in their own tasks, bounded in number and time, so a client that stalls its
//!   handshake holds neither the accept loop nor other clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// The directory under the data directory holding the self-signed identity.
pub const TLS_DIR: &str = "tls";
/// The self-signed certificate (PEM).
pub const CERT_FILE: &str = "collector.crt";
/// Its private key (PKCS#8 PEM, mode 0600).
pub const KEY_FILE: &str = "collector.key";

/// The longest a client may take over its handshake. Scanners are in the job's VPC (or on
/// loopback): a TLS 1.3 handshake is one round trip (RFC 8446 section 2), milliseconds there. Ten
/// seconds leaves room for a loaded host and still frees a stalled connection's slot quickly.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; further connections are closed unanswered until one ends. The
/// collector's upload slots (`UploadLimits`) bound the work after the handshake; this bounds the
/// handshakes themselves (each holds a socket and a few KiB), well above a Region's scanners.
pub const MAX_HANDSHAKES: usize = 256;

/// After a failed `accept` (e.g. out of file descriptors), wait this long before the next one
/// rather than spin; the value hyper's and axum's own accept loops use (one second).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Why the listener's TLS could not be set up, or plain HTTP was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: not a PEM {what}: {reason}", path.display())]
    Pem { path: PathBuf, what: &'static str, reason: String },
    #[error("{}: no certificate in it", path.display())]
    NoCertificate { path: PathBuf },
    #[error("the certificate {} and the key {} do not go together: {reason}", cert.display(), key.display())]
    Unusable { cert: PathBuf, key: PathBuf, reason: String },
    #[error("cannot generate the collector's self-signed certificate: {0}")]
    Generate(String),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error(
        "give both a TLS certificate and its key (--tls-cert and --tls-key, or server.tls_cert and server.tls_key), or neither"
    )]
    HalfGiven,
    #[error("a TLS certificate is given but the collector URL {url} is plain http://: make it https://")]
    CertWithPlainUrl { url: String },
    #[error(
        "refusing the plain http:// collector URL {url} with AWS: scanners' bundles would cross the network \
         unencrypted. Use an https:// URL (the collector then serves TLS with a self-signed certificate the scanners \
         pin, or --tls-cert/--tls-key), or, knowing what it means, {flag}"
    )]
    PlaintextOnAws { url: String, flag: &'static str },
    #[error(
        "refusing to serve plain HTTP on {listen}, a non-loopback address: uploads (and the API token) would travel \
         in clear. Serve TLS (an https:// collector URL, --tls, or a certificate), listen on loopback, or, knowing \
         what it means, {flag}"
    )]
    PlaintextExposed { listen: SocketAddr, flag: &'static str },
}

/// The certificate chain and key the listener serves, and the leaf's fingerprint.
pub struct TlsIdentity {
    leaf: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    fingerprint: String,
    config: Arc<rustls::ServerConfig>,
    /// Where it came from, for the log.
    pub source: IdentitySource,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("certificates", &self.chain.len())
            .field("fingerprint", &self.fingerprint)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Where a [`TlsIdentity`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// The user's certificate and key.
    Given { cert: PathBuf, key: PathBuf },
    /// The self-signed certificate in the data directory, read back from an earlier start.
    Reused { cert: PathBuf },
    /// The self-signed certificate, generated on this start.
    Generated { cert: PathBuf },
}

fn pem_error(path: &Path, what: &'static str, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem { path: path.to_path_buf(), what, reason: e.to_string() }
}

/// The crypto provider of the listener: aws-lc-rs, as the rest of the orchestrator's TLS.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl TlsIdentity {
    /// The certificate chain in `cert` (PEM, leaf first) and the private key in `key` (PEM:
    /// PKCS#8, PKCS#1 or SEC1); they must go together.
    ///
    /// # Errors
    ///
    /// A file cannot be read or parsed, has no certificate, or the key is not the certificate's.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
        let cert_pem = std::fs::read(cert).map_err(|source| TlsError::Read { path: cert.to_path_buf(), source })?;
        let key_pem = std::fs::read(key).map_err(|source| TlsError::Read { path: key.to_path_buf(), source })?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| pem_error(cert, "certificate", e))?;
        let Some(leaf) = chain.first().cloned() else {
            return Err(TlsError::NoCertificate { path: cert.to_path_buf() });
        };
        let fingerprint = scanner_ami::agent::pin::fingerprint(leaf.as_ref());
        let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| pem_error(key, "private key", e))?;
        let unusable = |e: rustls::Error| TlsError::Unusable {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: e.to_string(),
        };
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(unusable)?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), private.clone_key())
            .map_err(unusable)?;
        Ok(TlsIdentity {
            leaf,
            chain,
            key: private,
            fingerprint,
            config: Arc::new(config),
            source: IdentitySource::Given { cert: cert.to_path_buf(), key: key.to_path_buf() },
        })
    }

    /// The self-signed identity of `data_dir`: read back if `<data_dir>/tls/` holds a usable one,
    /// else generated (ECDSA P-256, valid for `hosts`: IP addresses and DNS names) and written
    /// there, the key with mode 0600. A stored identity that cannot be used is replaced, with a
    /// warning: scanners already launched with the old pin will refuse the new certificate.
    ///
    /// # Errors
    ///
    /// The certificate cannot be generated or written.
    pub fn self_signed(data_dir: &Path, hosts: &[String]) -> Result<TlsIdentity, TlsError> {
        let dir = data_dir.join(TLS_DIR);
        let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
        if cert.exists() || key.exists() {
            match TlsIdentity::from_pem_files(&cert, &key) {
                Ok(mut id) => {
                    id.source = IdentitySource::Reused { cert };
                    return Ok(id);
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "the collector's stored self-signed certificate cannot be used; generating a new one (scanners \
                         already launched pinned the old one and will refuse this one)"
                    );
                    eprintln!(
                        "agentless: warning: the stored TLS certificate cannot be used ({e}); generating a new one \
                         in {}",
                        dir.display()
                    );
                }
            }
        }
        generate(&dir, &cert, &key, hosts)?;
        let mut id = TlsIdentity::from_pem_files(&cert, &key)?;
        id.source = IdentitySource::Generated { cert };
        Ok(id)
    }

    /// The SHA-256 of the leaf certificate's DER, 64 lower-case hex digits: the manifest's pin.
    #[must_use]
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The rustls server configuration (aws-lc-rs; TLS 1.2 and 1.3).
    #[must_use]
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.config)
    }

    /// The leaf certificate (DER), e.g. for a client to trust.
    #[must_use]
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.leaf
    }

    /// The private key's kind, for the log (never the key).
    #[must_use]
    pub fn key_kind(&self) -> &'static str {
        match self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA (PKCS#1)",
            PrivateKeyDer::Sec1(_) => "EC (SEC1)",
            _ => "PKCS#8",
        }
    }
}

/// Generate the self-signed certificate and key into `dir` (0700): the key written 0600 to a
/// temporary file then renamed, so a crash leaves either no key or a whole one.
fn generate(dir: &Path, cert: &Path, key: &Path, hosts: &[String]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let mut names: Vec<String> = Vec::new();
    for h in hosts {
        let h = h.trim_start_matches('[').trim_end_matches(']').to_owned();
        if !h.is_empty() && !names.contains(&h) {
            names.push(h);
        }
    }
    if names.is_empty() {
        names.push("localhost".to_owned());
    }
    let signing =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(names.clone()).map_err(|e| TlsError::Generate(e.to_string()))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "agentless collector");
    let certificate = params.self_signed(&signing).map_err(|e| TlsError::Generate(e.to_string()))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| TlsError::Write { path: dir.to_path_buf(), source })?;
    let write = |path: &Path, text: &str, mode: u32| -> Result<(), TlsError> {
        let err = |source| TlsError::Write { path: path.to_path_buf(), source };
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(err)?;
        // The mode given to `open` is filtered by the umask; restate it.
        f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    };
    write(key, &signing.serialize_pem(), 0o600)?;
    write(cert, &certificate.pem(), 0o644)?;
    tracing::warn!(
        cert = %cert.display(),
        names = ?names,
        "generated the collector's self-signed TLS certificate (ECDSA P-256); scanners pin its SHA-256"
    );
    Ok(())
}

/// Whether the listener serves TLS, and with what, for one start.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// The user's certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// Serve TLS (the self-signed certificate unless one is given) even where plain HTTP is allowed.
    pub tls: bool,
    /// Allow plain HTTP where it is otherwise refused (an `http://` collector URL on AWS, a
    /// non-loopback listener).
    pub insecure_plaintext: bool,
}

/// The name of the flag (and configuration key) that allows plain HTTP, in refusals and warnings.
pub const INSECURE_FLAG: &str = "--insecure-plaintext-collector (server.insecure_plaintext_collector = true)";

/// The host of an `http(s)://host[:port][/...]` URL (IPv6 in brackets kept bracketed).
#[must_use]
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// Decide TLS or plain HTTP for a listener on `listen` whose scanners upload to `collector_url`
/// (`None`: the listener's own address will be used), on AWS or not; load or make the identity.
/// `None` is plain HTTP (allowed: loopback off AWS, or the insecure flag, which is then warned
/// about).
///
/// # Errors
///
/// See [`TlsError`]: a refusal, or the identity cannot be loaded or made.
pub fn plan(
    options: &TlsOptions,
    aws: bool,
    collector_url: Option<&str>,
    listen: SocketAddr,
    data_dir: &Path,
) -> Result<Option<TlsIdentity>, TlsError> {
    let https = collector_url.is_some_and(|u| u.starts_with("https://"));
    let given = match (&options.cert, &options.key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err(TlsError::HalfGiven),
    };
    let tls = https || given.is_some() || options.tls;
    if tls {
        if let Some(url) = collector_url.filter(|u| u.starts_with("http://")) {
            return Err(TlsError::CertWithPlainUrl { url: url.to_owned() });
        }
        let id = match given {
            Some((c, k)) => TlsIdentity::from_pem_files(c, k)?,
            None => {
                let mut hosts: Vec<String> = collector_url.and_then(url_host).map(str::to_owned).into_iter().collect();
                if !listen.ip().is_unspecified() {
                    hosts.push(listen.ip().to_string());
                }
                TlsIdentity::self_signed(data_dir, &hosts)?
            }
        };
        tracing::info!(fingerprint = id.fingerprint(), source = ?id.source, key = id.key_kind(), "serving TLS");
        return Ok(Some(id));
    }
    if options.insecure_plaintext {
        tracing::warn!(%listen, url = ?collector_url, "INSECURE: serving plain HTTP: bundles and the API token travel in clear");
        eprintln!(
            "agentless: WARNING: INSECURE: serving plain HTTP on {listen}{}: bundles (and the API token) travel in clear \
             ({INSECURE_FLAG})",
            collector_url.map(|u| format!(", scanners upload to {u}")).unwrap_or_default()
        );
        return Ok(None);
    }
    if aws && let Some(url) = collector_url {
        return Err(TlsError::PlaintextOnAws { url: url.to_owned(), flag: INSECURE_FLAG });
    }
    if !listen.ip().is_loopback() {
        return Err(TlsError::PlaintextExposed { listen, flag: INSECURE_FLAG });
    }
    Ok(None)
}

/// A listener whose accepted connections have completed a TLS handshake.
#[derive(Debug)]
pub struct TlsListener {
    incoming: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accept on `listener`, handshaking with `config`, in the background.
    ///
    /// # Errors
    ///
    /// The listener's address cannot be read.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<TlsListener> {
        let addr = listener.local_addr()?;
        let (tx, incoming) = tokio::sync::mpsc::channel(MAX_HANDSHAKES);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(%peer, "{MAX_HANDSHAKES} TLS handshakes in progress; connection closed");
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::warn!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::warn!(%peer, "TLS handshake not done in {HANDSHAKE_TIMEOUT:?}; closed"),
                    }
                });
            }
        });
        Ok(TlsListener { incoming, addr, task })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(x) => x,
            // The accept loop ended (only when aborted): no connection will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Serve `app` on `listener`, over TLS with `tls`, else plain HTTP, until the server fails.
///
/// # Errors
///
/// The server stops on an I/O error.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<()> {
    match tls {
        Some(config) => axum::serve(TlsListener::new(listener, config)?, app).await,
        None => axum::serve(listener, app).await,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn the_self_signed_certificate_persists_across_starts_with_a_0600_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = TlsIdentity::self_signed(dir.path(), &["10.0.0.5".into()]).expect("first start");
        let cert = dir.path().join(TLS_DIR).join(CERT_FILE);
        let key = dir.path().join(TLS_DIR).join(KEY_FILE);
        assert_eq!(first.source, IdentitySource::Generated { cert: cert.clone() });
        assert_eq!(mode(&key), 0o600, "the key is the owner's alone");
        assert_eq!(mode(&dir.path().join(TLS_DIR)), 0o700);
        assert_eq!(first.fingerprint(), scanner_ami::agent::pin::fingerprint(first.leaf().as_ref()));
        assert!(scanner_ami::job::is_sha256_hex(first.fingerprint()), "{}", first.fingerprint());
        let again = TlsIdentity::self_signed(dir.path(), &["10.0.0.5".into()]).expect("second start");
        assert_eq!(again.source, IdentitySource::Reused { cert: cert.clone() });
        assert_eq!(again.fingerprint(), first.fingerprint(), "the same certificate: pins stay valid");
        assert_eq!(mode(&key), 0o600);

        // A key that no longer reads is replaced by a new certificate (a new pin).
        std::fs::write(&key, "not a key").expect("spoil the key");
        let replaced = TlsIdentity::self_signed(dir.path(), &["10.0.0.5".into()]).expect("third start");
        assert_eq!(replaced.source, IdentitySource::Generated { cert });
        assert_ne!(replaced.fingerprint(), first.fingerprint());
        assert_eq!(mode(&key), 0o600);
    }

    #[test]
    fn a_given_certificate_is_pinned_by_its_leaf_and_must_match_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = rcgen::generate_simple_self_signed(vec!["collector.example".to_owned()]).expect("a");
        let b = rcgen::generate_simple_self_signed(vec!["collector.example".to_owned()]).expect("b");
        let (cert, key, other_key) = (dir.path().join("a.crt"), dir.path().join("a.key"), dir.path().join("b.key"));
        std::fs::write(&cert, a.cert.pem()).expect("cert");
        std::fs::write(&key, a.signing_key.serialize_pem()).expect("key");
        std::fs::write(&other_key, b.signing_key.serialize_pem()).expect("other key");
        let id = TlsIdentity::from_pem_files(&cert, &key).expect("given");
        assert_eq!(id.fingerprint(), scanner_ami::agent::pin::fingerprint(a.cert.der()));
        let e = TlsIdentity::from_pem_files(&cert, &other_key).expect_err("another key");
        assert!(matches!(e, TlsError::Unusable { .. }), "{e}");
        let e = TlsIdentity::from_pem_files(&key, &key).expect_err("no certificate");
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
        let e = TlsIdentity::from_pem_files(&dir.path().join("missing"), &key).expect_err("missing");
        assert!(matches!(e, TlsError::Read { .. }), "{e}");
    }

    #[test]
    fn a_ca_signed_chain_is_pinned_by_its_leaf() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "test CA");
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf = rcgen::CertificateParams::new(vec!["collector.example".to_owned()])
            .expect("leaf params")
            .signed_by(&leaf_key, &issuer)
            .expect("leaf");
        let (cert, key) = (dir.path().join("chain.pem"), dir.path().join("leaf.key"));
        std::fs::write(&cert, format!("{}{}", leaf.pem(), ca.pem())).expect("chain");
        std::fs::write(&key, leaf_key.serialize_pem()).expect("key");
        let id = TlsIdentity::from_pem_files(&cert, &key).expect("a CA-signed chain");
        assert_eq!(id.chain.len(), 2);
        assert_eq!(id.fingerprint(), scanner_ami::agent::pin::fingerprint(leaf.der()), "the leaf, not the CA");
        assert_ne!(id.fingerprint(), scanner_ami::agent::pin::fingerprint(ca.der()));
    }

    #[test]
    fn plain_http_is_refused_on_aws_and_off_loopback_unless_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let any: SocketAddr = "0.0.0.0:8443".parse().expect("addr");
        let lo: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let plain = TlsOptions::default();
        let insecure = TlsOptions { insecure_plaintext: true, ..TlsOptions::default() };

        let e = plan(&plain, true, Some("http://10.0.0.5:8443"), any, dir.path()).expect_err("http on aws");
        assert!(matches!(e, TlsError::PlaintextOnAws { .. }), "{e}");
        assert!(e.to_string().contains("--insecure-plaintext-collector"), "{e}");
        let e = plan(&plain, true, Some("http://127.0.0.1:8443"), lo, dir.path()).expect_err("even on loopback");
        assert!(matches!(e, TlsError::PlaintextOnAws { .. }), "{e}");
        assert!(plan(&insecure, true, Some("http://10.0.0.5:8443"), any, dir.path()).expect("allowed").is_none());

        let e = plan(&plain, false, None, any, dir.path()).expect_err("sim, plain, every address");
        assert!(matches!(e, TlsError::PlaintextExposed { .. }), "{e}");
        assert!(plan(&insecure, false, None, any, dir.path()).expect("allowed").is_none());
        assert!(plan(&plain, false, None, lo, dir.path()).expect("sim on loopback").is_none());
        assert!(!dir.path().join(TLS_DIR).exists(), "no certificate made for plain HTTP");

        // https:// (or --tls) serves the self-signed certificate, made for the URL's host.
        let id = plan(&plain, true, Some("https://10.0.0.5:8443"), any, dir.path()).expect("https").expect("tls");
        assert!(matches!(id.source, IdentitySource::Generated { .. }));
        let tls = TlsOptions { tls: true, ..TlsOptions::default() };
        let again = plan(&tls, false, None, lo, dir.path()).expect("--tls").expect("tls");
        assert_eq!(again.fingerprint(), id.fingerprint());

        let e = plan(&TlsOptions { cert: Some("c".into()), ..plain.clone() }, false, None, lo, dir.path())
            .expect_err("half");
        assert!(matches!(e, TlsError::HalfGiven));
        let e = plan(&tls, false, Some("http://127.0.0.1:1"), lo, dir.path()).expect_err("tls with an http URL");
        assert!(matches!(e, TlsError::CertWithPlainUrl { .. }), "{e}");
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://10.0.0.5:8443"), Some("10.0.0.5"));
        assert_eq!(url_host("https://collector.example/x"), Some("collector.example"));
        assert_eq!(url_host("https://[fd00::5]:8443/"), Some("[fd00::5]"));
        assert_eq!(url_host("http://u@h:1"), Some("h"));
        assert_eq!(url_host("ftp://h"), None);
        assert_eq!(url_host("https://"), None);
    }
}
