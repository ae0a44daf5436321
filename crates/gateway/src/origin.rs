//! Clients toward origins. TLS to `https://` origins (authenticated origin
//! pulls): a pooled connector that verifies the origin against its
//! `origin_ca` and presents the gateway's client certificate when one is
//! configured; ALPN `h2` when `origin_protocol` allows it. Each origin a
//! hostname or route forwards to is a [`Target`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::http::uri::{Authority, Scheme};
use hyper::http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::sign::CertifiedKey;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::{OriginProtocol, OriginTimeouts};

/// A pooled client to one `https://` origin.
pub type HttpsClient = Client<TlsOriginConnector, hyper::body::Incoming>;

/// A pooled client to one `http://` origin.
pub type HttpClient = Client<FixedHttpConnector, hyper::body::Incoming>;

/// Plain TCP to one origin address, whatever authority the request URI
/// names: requests carry the client's host in their URI (HTTP/1.1 `Host`,
/// HTTP/2 `:authority`) while the connection goes to the configured origin.
#[derive(Clone, Debug)]
pub struct FixedHttpConnector {
    inner: HttpConnector,
    origin: Uri,
}

impl tower_service::Service<Uri> for FixedHttpConnector {
    type Response = TokioIo<TcpStream>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, _dst: Uri) -> Self::Future {
        let fut = self.inner.call(self.origin.clone());
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

/// A pooled plain-HTTP client whose TCP connects give up after
/// `timeouts.connect`.
pub fn http_client(origin: &Uri, timeouts: OriginTimeouts) -> HttpClient {
    http_client_with(origin, timeouts, OriginProtocol::Http1)
}

/// A pooled plain-HTTP client speaking `protocol` (`h2`: HTTP/2 with prior
/// knowledge, "h2c"; otherwise HTTP/1.1).
pub fn http_client_with(
    origin: &Uri,
    timeouts: OriginTimeouts,
    protocol: OriginProtocol,
) -> HttpClient {
    let mut inner = HttpConnector::new();
    inner.set_connect_timeout(Some(timeouts.connect));
    inner.set_nodelay(true);
    let c = FixedHttpConnector {
        inner,
        origin: origin.clone(),
    };
    let mut b = Client::builder(TokioExecutor::new());
    b.timer(TokioTimer::new()).pool_timer(TokioTimer::new());
    if protocol == OriginProtocol::H2 {
        b.http2_only(true);
    }
    b.build(c)
}

/// A pooled client to one origin, plain or TLS.
#[derive(Clone, Debug)]
pub enum OriginClient {
    /// `http://`.
    Http(HttpClient),
    /// `https://`.
    Https(HttpsClient),
}

impl OriginClient {
    /// Sends a request (its URI names the origin).
    pub fn request(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> hyper_util::client::legacy::ResponseFuture {
        match self {
            OriginClient::Http(c) => c.request(req),
            OriginClient::Https(c) => c.request(req),
        }
    }
}

/// Where a hostname (or one of its routes) forwards: the origin's scheme
/// and authority, the pooled client, and an HTTP/1.1-only client for
/// `Upgrade` requests (the same one when the protocol is `http1`).
#[derive(Clone, Debug)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host and port.
    pub authority: Authority,
    /// The pooled client.
    pub client: OriginClient,
    /// The client for HTTP/1.1 `Upgrade` requests (WebSocket).
    pub upgrade: OriginClient,
    /// The protocol spoken (`origin_protocol`).
    pub protocol: OriginProtocol,
}

/// One TLS connection to an origin.
#[derive(Debug)]
pub struct OriginStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for OriginStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for OriginStream {
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

impl Connection for OriginStream {
    fn connected(&self) -> Connected {
        if self.0.get_ref().1.alpn_protocol() == Some(b"h2") {
            Connected::new().negotiated_h2()
        } else {
            Connected::new()
        }
    }
}

/// Connects TCP then TLS to one origin (whatever authority the request
/// URI names, like [`FixedHttpConnector`]).
#[derive(Clone)]
pub struct TlsOriginConnector {
    tls: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    host: String,
    port: u16,
    connect_timeout: std::time::Duration,
}

impl std::fmt::Debug for TlsOriginConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOriginConnector")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl tower_service::Service<Uri> for TlsOriginConnector {
    type Response = TokioIo<OriginStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _dst: Uri) -> Self::Future {
        let tls = self.tls.clone();
        let name = self.name.clone();
        let connect_timeout = self.connect_timeout;
        let (host, port) = (self.host.clone(), self.port);
        Box::pin(async move {
            let tcp =
                tokio::time::timeout(connect_timeout, TcpStream::connect((host.as_str(), port)))
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "origin connect timed out")
                    })??;
            let _ = tcp.set_nodelay(true);
            let s = tls.connect(name, tcp).await?;
            Ok(TokioIo::new(OriginStream(s)))
        })
    }
}

/// A pooled HTTPS client for `origin`, trusting `roots` and presenting
/// `client` (if any); TCP connects give up after `timeouts.connect`.
pub fn https_client(
    origin: &Uri,
    roots: rustls::RootCertStore,
    client: Option<Arc<CertifiedKey>>,
    timeouts: OriginTimeouts,
) -> Result<HttpsClient, String> {
    https_client_with(origin, roots, client, timeouts, OriginProtocol::Http1)
}

/// Like [`https_client`], offering ALPN per `protocol`: `http1` offers
/// `http/1.1`, `h2` offers `h2`, `auto` offers both (the origin chooses).
pub fn https_client_with(
    origin: &Uri,
    roots: rustls::RootCertStore,
    client: Option<Arc<CertifiedKey>>,
    timeouts: OriginTimeouts,
    protocol: OriginProtocol,
) -> Result<HttpsClient, String> {
    let host = origin
        .host()
        .ok_or("origin without host")?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let b = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut cfg = match client {
        None => b.with_no_client_auth(),
        Some(ck) => b.with_client_cert_resolver(Arc::new(Presents(ck))),
    };
    cfg.alpn_protocols = match protocol {
        OriginProtocol::Http1 => vec![b"http/1.1".to_vec()],
        OriginProtocol::H2 => vec![b"h2".to_vec()],
        OriginProtocol::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    let connector = TlsOriginConnector {
        tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
        name,
        host: host.to_owned(),
        port: origin.port_u16().unwrap_or(443),
        connect_timeout: timeouts.connect,
    };
    let mut b = Client::builder(TokioExecutor::new());
    b.timer(TokioTimer::new()).pool_timer(TokioTimer::new());
    if protocol == OriginProtocol::H2 {
        b.http2_only(true);
    }
    Ok(b.build(connector))
}

/// Always the gateway's one origin-pull certificate.
#[derive(Debug)]
struct Presents(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for Presents {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
