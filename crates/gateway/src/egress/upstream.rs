//! The upstream side of an egress: the service's identity (client
//! certificate), the verifier of the upstream's certificate (the egress's
//! CA, expected name, SPIFFE ID), and the connector (TCP, optional
//! PostgreSQL `SSLRequest`, TLS) with typed errors that say what failed.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use client_auth::{CertFacts, SubjectAltName};
use hyper::http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;

use super::config::{Binding, StartTls};

/// Why a connection to an upstream failed. The message is what the app
/// gets in the 502/504 body (and what the log says for tcp mode): it names
/// the upstream and the failure, never a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// TCP connect refused, unreachable, reset.
    #[error("cannot connect to upstream {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The socket error.
        source: io::Error,
    },
    /// Connect, STARTTLS or handshake took longer than `connect_timeout`.
    #[error("upstream {addr} did not complete {stage} within {} s", after.as_secs())]
    Timeout {
        /// `host:port`.
        addr: String,
        /// `TCP connect`, `SSLRequest` or `the TLS handshake`.
        stage: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The clear-text exchange before TLS failed (PostgreSQL said `N`).
    #[error("upstream {addr}: {message}")]
    StartTls {
        /// `host:port`.
        addr: String,
        /// What happened.
        message: String,
    },
    /// The TLS handshake failed: the upstream's certificate did not verify,
    /// or the upstream refused ours.
    #[error("{message}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// What failed, e.g. `upstream certificate: unknown issuer …`.
        message: String,
    },
}

impl UpstreamError {
    /// The `error` field of the JSON body: `upstream_connect`,
    /// `upstream_timeout`, `upstream_starttls` or `upstream_tls`.
    pub fn code(&self) -> &'static str {
        match self {
            UpstreamError::Connect { .. } => "upstream_connect",
            UpstreamError::Timeout { .. } => "upstream_timeout",
            UpstreamError::StartTls { .. } => "upstream_starttls",
            UpstreamError::Tls { .. } => "upstream_tls",
        }
    }
}

/// A SPIFFE ID (URI SAN) was expected and not found.
#[derive(Debug)]
struct SpiffeMismatch {
    expected: String,
    found: Vec<String>,
}

impl fmt::Display for SpiffeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected URI SAN {:?}, ", self.expected)?;
        if self.found.is_empty() {
            f.write_str("the certificate has none")
        } else {
            write!(f, "the certificate has {}", self.found.join(", "))
        }
    }
}

impl std::error::Error for SpiffeMismatch {}

/// Describes a failed handshake for the app and the log.
fn describe_tls(e: &rustls::Error, b: &Binding) -> String {
    use rustls::Error as E;
    let ca = b.ca.display();
    match e {
        E::InvalidCertificate(c) => {
            let what = match c {
                CertificateError::UnknownIssuer => {
                    format!("unknown issuer (it does not chain to the CA in {ca})")
                }
                CertificateError::NotValidForName => {
                    format!("not valid for name {:?}", b.tls_name())
                }
                CertificateError::NotValidForNameContext { .. } => c.to_string(),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    format!("expired ({c})")
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    format!("not valid yet ({c})")
                }
                CertificateError::Revoked => "revoked".to_owned(),
                CertificateError::BadEncoding => "malformed".to_owned(),
                CertificateError::BadSignature => "bad signature".to_owned(),
                CertificateError::InvalidPurpose
                | CertificateError::InvalidPurposeContext { .. } => {
                    "not for server authentication (extended key usage)".to_owned()
                }
                CertificateError::Other(OtherError(inner)) => inner.to_string(),
                other => format!("{other:?}"),
            };
            format!("upstream certificate: {what}")
        }
        E::AlertReceived(alert) => {
            use rustls::AlertDescription as A;
            match alert {
                A::UnrecognisedName => format!(
                    "the upstream does not serve the name {:?} (alert unrecognized_name); \
                     check server_name",
                    b.tls_name()
                ),
                A::BadCertificate
                | A::UnknownCA
                | A::CertificateRequired
                | A::CertificateUnknown
                | A::CertificateExpired
                | A::CertificateRevoked
                | A::UnsupportedCertificate
                | A::AccessDenied => format!(
                    "the upstream refused this service's certificate {} (alert {alert:?})",
                    b.cert.display()
                ),
                other => format!("the upstream ended the TLS handshake with alert {other:?}"),
            }
        }
        E::NoCertificatesPresented => "the upstream presented no certificate".to_owned(),
        other => format!("TLS handshake with the upstream failed: {other}"),
    }
}

/// Checks the upstream's certificate: chains to the egress's CA (no
/// system roots), valid for the expected name (unless only a SPIFFE ID is
/// expected), carries the SPIFFE ID when one is expected.
#[derive(Debug)]
struct UpstreamVerifier {
    roots: Arc<RootCertStore>,
    algs: WebPkiSupportedAlgorithms,
    check_name: bool,
    spiffe_id: Option<String>,
}

impl ServerCertVerifier for UpstreamVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algs.all,
        )?;
        if self.check_name {
            verify_server_name(&cert, server_name)?;
        }
        if let Some(expected) = &self.spiffe_id {
            let facts = CertFacts::from_der(end_entity)
                .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
            let found: Vec<String> = facts
                .sans
                .into_iter()
                .filter_map(|s| match s {
                    SubjectAltName::Uri(u) => Some(u),
                    _ => None,
                })
                .collect();
            if !found.iter().any(|u| u == expected) {
                return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(SpiffeMismatch {
                        expected: expected.clone(),
                        found,
                    })),
                )));
            }
        }
        Ok(ServerCertVerified::assertion())
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

/// Always this service's certificate for this binding.
#[derive(Debug)]
struct Presents(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for Presents {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Opens mutually authenticated TLS connections to one upstream with one
/// identity. Cheap to clone.
#[derive(Clone)]
pub struct UpstreamConnector {
    tls: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    binding: Arc<Binding>,
    connect_timeout: Duration,
    starttls: Option<StartTls>,
    /// Counts completed handshakes for this egress.
    metrics: (Arc<super::EgressMetrics>, Arc<str>),
}

impl fmt::Debug for UpstreamConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamConnector")
            .field("upstream", &self.binding.authority())
            .field("name", &self.name)
            .field("cert", &self.binding.cert)
            .finish_non_exhaustive()
    }
}

/// The PostgreSQL `SSLRequest` message: length 8, code 80877103.
pub(crate) const PG_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// The PostgreSQL `GSSENCRequest` message: length 8, code 80877104.
pub(crate) const PG_GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

impl UpstreamConnector {
    /// A connector for `binding` presenting `identity`, trusting only
    /// `roots`. `alpn`: protocols to offer (`http/1.1` for http mode).
    pub(crate) fn new(
        binding: &Binding,
        identity: Arc<CertifiedKey>,
        roots: RootCertStore,
        connect_timeout: Duration,
        starttls: Option<StartTls>,
        alpn: Vec<Vec<u8>>,
        metrics: (Arc<super::EgressMetrics>, Arc<str>),
    ) -> Result<UpstreamConnector, String> {
        let provider = crate::tls::provider();
        let name = ServerName::try_from(binding.tls_name().to_owned())
            .map_err(|e| format!("server name {:?}: {e}", binding.tls_name()))?;
        let verifier = UpstreamVerifier {
            roots: Arc::new(roots),
            algs: provider.signature_verification_algorithms,
            check_name: binding.server_name.is_some() || binding.spiffe_id.is_none(),
            spiffe_id: binding.spiffe_id.clone(),
        };
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(Arc::new(Presents(identity)));
        cfg.alpn_protocols = alpn;
        Ok(UpstreamConnector {
            tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
            name,
            binding: Arc::new(binding.clone()),
            connect_timeout,
            starttls,
            metrics,
        })
    }

    /// The upstream's `host:port`.
    pub fn authority(&self) -> String {
        self.binding.authority()
    }

    /// TCP connect, the STARTTLS exchange if any, and the TLS handshake,
    /// each within `connect_timeout`.
    pub async fn connect(
        &self,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, UpstreamError> {
        let b = &self.binding;
        let addr = b.authority();
        let limit = self.connect_timeout;
        let timeout = |stage| UpstreamError::Timeout {
            addr: addr.clone(),
            stage,
            after: limit,
        };
        let mut tcp = tokio::time::timeout(limit, TcpStream::connect((b.host.as_str(), b.port)))
            .await
            .map_err(|_| timeout("TCP connect"))?
            .map_err(|source| UpstreamError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        if self.starttls == Some(StartTls::Postgres) {
            tokio::time::timeout(limit, pg_ssl_request(&mut tcp))
                .await
                .map_err(|_| timeout("SSLRequest"))?
                .map_err(|message| UpstreamError::StartTls {
                    addr: addr.clone(),
                    message,
                })?;
        }
        let tls = tokio::time::timeout(limit, self.tls.connect(self.name.clone(), tcp))
            .await
            .map_err(|_| timeout("the TLS handshake"))?
            .map_err(|e| {
                let message = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    Some(t) => describe_tls(t, b),
                    None => format!("TLS handshake with the upstream failed: {e}"),
                };
                UpstreamError::Tls {
                    addr: addr.clone(),
                    message,
                }
            })?;
        self.metrics.0.handshake(&self.metrics.1);
        Ok(tls)
    }
}

/// PostgreSQL's SSLRequest: 8 bytes out, one byte back (`S`: go on with
/// TLS; `N`: the server has no TLS).
async fn pg_ssl_request(tcp: &mut TcpStream) -> Result<(), String> {
    tcp.write_all(&PG_SSL_REQUEST)
        .await
        .map_err(|e| format!("SSLRequest: {e}"))?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer)
        .await
        .map_err(|e| format!("SSLRequest: no answer: {e}"))?;
    match answer[0] {
        b'S' => Ok(()),
        b'N' => Err(
            "the PostgreSQL server does not accept TLS (SSLRequest answered N; is ssl = on?)"
                .to_owned(),
        ),
        other => Err(format!(
            "SSLRequest answered with byte {other:#04x}; is the upstream PostgreSQL?"
        )),
    }
}

/// One TLS connection made for the HTTP client pool.
#[derive(Debug)]
pub struct UpstreamStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for UpstreamStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// For the pooled HTTP client: every URI of one client goes to the
/// connector's one upstream (the pool key is the binding).
impl tower_service::Service<Uri> for UpstreamConnector {
    type Response = TokioIo<UpstreamStream>;
    type Error = UpstreamError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, UpstreamError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _dst: Uri) -> Self::Future {
        let me = self.clone();
        Box::pin(async move { Ok(TokioIo::new(UpstreamStream(me.connect().await?))) })
    }
}
