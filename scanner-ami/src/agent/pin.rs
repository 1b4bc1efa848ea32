//! The upload's TLS without a PKI: the job manifest pins the collector's leaf certificate by the
//! SHA-256 of its DER encoding (`collector_cert_sha256`), and this module owns the client side of
//! that pin.
//!
//! [`PinnedVerifier`] is a rustls [`ServerCertVerifier`] that accepts exactly the pinned
//! certificate: no CA, no name or validity check (the pin says which certificate, and the
//! orchestrator that wrote the pin also made or was given that certificate), but the handshake
//! signature is still verified with the crypto provider's algorithms, so only the holder of the
//! certificate's private key can complete the handshake. [`PinnedTlsConnector`] runs that TLS
//! (1.3 only: the other end is always our own rustls collector) under `ureq` on the TCP
//! connection `ureq` opened, since `ureq`'s own TLS settings take CA roots, not a verifier.

use std::fmt;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use sha2::{Digest, Sha256};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};

/// The SHA-256 fingerprint of a certificate's DER encoding, as the manifest writes it (64
/// lower-case hex digits).
#[must_use]
pub fn fingerprint(der: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(2 * digest.len());
    for b in digest.iter() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Why the collector's certificate was refused (the handshake's error, in the upload's log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the collector's certificate (SHA-256 {got}) is not the one the job manifest pins ({expected}); refusing to \
     upload to it"
)]
pub struct PinMismatch {
    pub expected: String,
    pub got: String,
}

/// The last certificate a verifier refused, shared with whoever must tell a refused certificate
/// from a network error (the upload does not retry the former).
pub type Refusals = Arc<Mutex<Option<PinMismatch>>>;

/// Accepts the one certificate whose SHA-256 is the pin.
#[derive(Debug)]
pub struct PinnedVerifier {
    pin: String,
    algorithms: WebPkiSupportedAlgorithms,
    refused: Refusals,
}

impl PinnedVerifier {
    /// A verifier of `pin` (lower-case hex) checking handshake signatures with `provider`'s
    /// algorithms.
    #[must_use]
    pub fn new(pin: &str, provider: &CryptoProvider) -> PinnedVerifier {
        PinnedVerifier {
            pin: pin.to_ascii_lowercase(),
            algorithms: provider.signature_verification_algorithms,
            refused: Refusals::default(),
        }
    }

    /// The last certificate this verifier refused.
    #[must_use]
    pub fn refusals(&self) -> Refusals {
        Arc::clone(&self.refused)
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint(end_entity.as_ref());
        // Both are public values (the pin is in the user data, the certificate on the wire): a
        // plain comparison leaks nothing.
        if got == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            let mismatch = PinMismatch { expected: self.pin.clone(), got };
            *self.refused.lock().unwrap_or_else(PoisonError::into_inner) = Some(mismatch.clone());
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(mismatch)))))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The client configuration that trusts the certificate `pin` names and nothing else (the ring
/// provider `ureq` already brings, TLS 1.3), and its verifier's [`Refusals`].
///
/// # Errors
///
/// The provider does not support TLS 1.3 (never with ring).
pub fn client_config(pin: &str) -> Result<(Arc<ClientConfig>, Refusals), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedVerifier::new(pin, &provider));
    let refused = verifier.refusals();
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((Arc::new(config), refused))
}

/// A `ureq` connector that wraps the TCP connection of an `https://` URL in TLS verified by
/// [`PinnedVerifier`] (and leaves `http://` alone; the upload never builds it for one).
pub struct PinnedTlsConnector {
    config: Arc<ClientConfig>,
    refused: Refusals,
}

impl PinnedTlsConnector {
    /// A connector trusting exactly the certificate `pin` names.
    ///
    /// # Errors
    ///
    /// See [`client_config`].
    pub fn new(pin: &str) -> Result<PinnedTlsConnector, rustls::Error> {
        let (config, refused) = client_config(pin)?;
        Ok(PinnedTlsConnector { config, refused })
    }

    /// The certificates refused on this connector's connections.
    #[must_use]
    pub fn refusals(&self) -> Refusals {
        Arc::clone(&self.refused)
    }
}

impl fmt::Debug for PinnedTlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedTlsConnector").finish_non_exhaustive()
    }
}

impl<In: Transport> Connector<In> for PinnedTlsConnector {
    type Out = Either<In, PinnedTlsTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Err(ureq::Error::Tls("no TCP connection to run the pinned TLS on"));
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().ok_or(ureq::Error::Tls("the collector URL has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        // The name is only sent as SNI (none for an IP address); the verifier ignores it.
        let name = ServerName::try_from(host.to_owned()).map_err(|_| ureq::Error::Tls("bad collector host name"))?;
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), Arc::clone(&details.current_time));
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(PinnedTlsTransport { buffers, stream: StreamOwned { conn, sock } })))
    }
}

/// The TLS stream of one connection.
pub struct PinnedTlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for PinnedTlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedTlsTransport").finish_non_exhaustive()
    }
}

impl Transport for PinnedTlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, SystemTime};

    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;

    use super::*;
    use crate::agent::upload::{UploadError, UploadPolicy, upload_to};
    use crate::job::HmacKey;

    /// A self-signed certificate for `127.0.0.1` and its PKCS#8 key.
    fn identity() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("rcgen");
        let key = PrivateKeyDer::from_pem_slice(c.signing_key.serialize_pem().as_bytes()).expect("key");
        (c.cert.der().clone(), key)
    }

    /// A one-thread HTTPS server on loopback presenting `cert`: answers each request 200 with
    /// `stored`; counts the connections it accepted and the requests it read.
    struct Server {
        url: String,
        connections: Arc<AtomicUsize>,
        requests: Arc<Mutex<Vec<Seen>>>,
    }

    /// A request line and body the server read.
    type Seen = (String, Vec<u8>);

    fn serve(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> Server {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("server config");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("https://{}", listener.local_addr().expect("addr"));
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (c, r) = (Arc::clone(&connections), Arc::clone(&requests));
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&config)) else { return };
                let mut tls = BufReader::new(StreamOwned::new(conn, tcp));
                let mut head = String::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if tls.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if head.is_empty() {
                        head.clone_from(&line);
                    }
                    if line == "\r\n" {
                        let mut body = vec![0; length];
                        if tls.read_exact(&mut body).is_ok() {
                            r.lock().expect("lock").push((head.trim().to_owned(), body));
                            let answer = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nstored\n";
                            let _ = tls.get_mut().write_all(answer.as_bytes());
                            let _ = tls.get_mut().flush();
                            tls.get_mut().conn.send_close_notify();
                            let _ = tls.get_mut().flush();
                        }
                        break;
                    }
                }
            }
        });
        Server { url, connections, requests }
    }

    fn policy() -> UploadPolicy {
        UploadPolicy {
            max_attempts: 5,
            attempt_timeout: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            deadline: SystemTime::now() + Duration::from_secs(60),
        }
    }

    #[test]
    fn the_pinned_certificate_is_accepted_and_the_bundle_arrives() {
        let (cert, key) = identity();
        let pin = fingerprint(cert.as_ref());
        let server = serve(cert, key);
        let url = format!("{}/v1/jobs/j-1/bundles/s0", server.url);
        let receipt =
            upload_to(&url, &HmacKey::generate(), Some(&pin), b"the bundle", None, &policy()).expect("upload");
        assert_eq!((receipt.status, receipt.attempts), (200, 1));
        let got = server.requests.lock().expect("lock").clone();
        assert_eq!(got, vec![("PUT /v1/jobs/j-1/bundles/s0 HTTP/1.1".to_owned(), b"the bundle".to_vec())]);
    }

    #[test]
    fn another_certificate_is_refused_before_a_byte_is_sent_and_not_retried() {
        let (cert, key) = identity();
        let served = fingerprint(cert.as_ref());
        let (other, _) = identity();
        let pin = fingerprint(other.as_ref());
        assert_ne!(pin, served);
        let server = serve(cert, key);
        let url = format!("{}/v1/jobs/j-1/bundles/s0", server.url);
        let e =
            upload_to(&url, &HmacKey::generate(), Some(&pin), b"the bundle", None, &policy()).expect_err("wrong cert");
        assert_eq!(e, UploadError::WrongCertificate(PinMismatch { expected: pin.clone(), got: served.clone() }));
        assert!(e.to_string().contains(&served) && e.to_string().contains(&pin), "{e}");
        // One handshake, refused: no request, no retry (5 attempts were allowed).
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
        assert!(server.requests.lock().expect("lock").is_empty());
    }

    #[test]
    fn https_needs_a_pin_and_a_pin_needs_https() {
        let key = HmacKey::generate();
        let pin = "ab".repeat(32);
        let e = upload_to("https://127.0.0.1:1/x", &key, None, b"b", None, &policy()).expect_err("no pin");
        assert!(matches!(e, UploadError::NoPin { .. }), "{e}");
        let e = upload_to("http://127.0.0.1:1/x", &key, Some(&pin), b"b", None, &policy()).expect_err("pin, http");
        assert!(matches!(e, UploadError::PinWithoutTls { .. }), "{e}");
    }

    #[test]
    fn fingerprint_is_sha256_in_lower_case_hex() {
        // SHA-256("abc"), FIPS 180-4 appendix B.1.
        assert_eq!(fingerprint(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
