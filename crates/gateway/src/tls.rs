//! Per-hostname TLS: the rustls `ServerConfig` built for each hostname's
//! policy, and the client-certificate verifier used in `report` and
//! `enforce` modes.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::config::Mode;

/// The crypto provider of the gateway (aws-lc-rs).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Requests a client certificate without letting the chain decide the
/// handshake.
///
/// * `verify_client_cert` only checks that the leaf is a parsable X.509
///   certificate (the CertificateVerify check needs its public key) and
///   stores nothing: the chain verdict is computed by `client-auth` after
///   the handshake, once per connection, so that the gateway can answer
///   with an HTTP response (or forward with `Client-Cert-Status: invalid`)
///   instead of a TLS alert.
/// * The CertificateVerify signature is always checked, with the
///   provider's algorithms: a client that presents a certificate must hold
///   its key, or the handshake fails.
/// * The certificate is optional (`client_auth_mandatory` is false): no
///   certificate is the verdict `none`.
/// * No CA names are sent in the CertificateRequest
///   (`root_hint_subjects` is empty), so a large CA set can never exceed
///   the 64 KiB handshake-message limit; clients offer whatever
///   certificate they are configured with.
#[derive(Debug)]
pub struct RequestClientCert {
    algs: WebPkiSupportedAlgorithms,
}

impl RequestClientCert {
    /// A verifier using `provider`'s signature algorithms.
    pub fn new(provider: &CryptoProvider) -> Self {
        RequestClientCert {
            algs: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        webpki::EndEntityCert::try_from(end_entity)
            .map(|_| ClientCertVerified::assertion())
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Always the one certificate of a hostname (SNI was matched before this
/// config was chosen).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The `ServerConfig` of one hostname: TLS 1.3 and 1.2, ALPN `h2` and
/// `http/1.1`, a client certificate requested unless the mode is `off`.
///
/// For `report` and `enforce`, session resumption is disabled (no session
/// cache, no tickets): every connection makes a full handshake, so the
/// verdict always comes from a certificate presented on that connection
/// and checked against the current trust store.
pub fn server_config(
    provider: Arc<CryptoProvider>,
    key: Arc<CertifiedKey>,
    mode: Mode,
) -> Result<ServerConfig, rustls::Error> {
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let mut cfg = if mode == Mode::Off {
        builder
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(key)))
    } else {
        builder
            .with_client_cert_verifier(Arc::new(RequestClientCert::new(&provider)))
            .with_cert_resolver(Arc::new(Fixed(key)))
    };
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if mode != Mode::Off {
        cfg.session_storage = Arc::new(NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
    }
    Ok(cfg)
}

/// The fatal `unrecognized_name` (112) alert, as a plaintext TLS record:
/// sent when the ClientHello names no configured hostname, or none.
pub const UNRECOGNIZED_NAME_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70];
