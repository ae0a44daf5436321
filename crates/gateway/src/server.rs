//! The listener: accept TCP, read the ClientHello, pick the hostname by
//! SNI, finish the handshake with that hostname's config, compute the
//! verdict once, then serve HTTP/1.1 or HTTP/2 on the connection.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use client_auth::{CertificateDer, UnixTime, VerdictCache};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_rustls::StartHandshake;
use tracing::Instrument as _;

use crate::config::Mode;
use crate::metrics::Metrics;
use crate::proxy::{self, ConnContext};
use crate::site::{Site, Sites};
use crate::tls::UNRECOGNIZED_NAME_ALERT;

/// Longest time from TCP accept to the end of the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a complete HTTP/1.1 request head (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open connections may finish their requests at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Verdicts cached across connections (keyed by chain and trust store).
const VERDICT_CACHE_ENTRIES: usize = 10_000;
/// Largest request head: HTTP/1.1 read buffer (a longer head is answered
/// 431) and HTTP/2 header list (SETTINGS_MAX_HEADER_LIST_SIZE).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most header fields in an HTTP/1.1 request head (431 beyond).
const MAX_HEADERS: usize = 100;

/// Requests in flight on one connection and when the last one ended: the
/// idle timeout closes a connection with none in flight for that long
/// (HTTP/1.1 keep-alive, idle HTTP/2).
#[derive(Debug)]
struct Idle {
    in_flight: std::sync::atomic::AtomicUsize,
    /// Milliseconds since `epoch` when the last request ended (or the
    /// connection started).
    last: std::sync::atomic::AtomicU64,
    epoch: tokio::time::Instant,
}

impl Default for Idle {
    fn default() -> Self {
        Idle {
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            last: std::sync::atomic::AtomicU64::new(0),
            epoch: tokio::time::Instant::now(),
        }
    }
}

/// One request in flight; its end is activity.
struct Busy(Arc<Idle>);

impl Drop for Busy {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = u64::try_from(self.0.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last.store(now, Relaxed);
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Idle {
    fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Completes once no request has been in flight for `limit`. Sleeps
    /// until the earliest moment that can be true, then checks again.
    async fn expired(&self, limit: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        loop {
            let last = Duration::from_millis(self.last.load(Relaxed));
            let at = self.epoch + last + limit;
            if self.in_flight.load(Relaxed) == 0 && tokio::time::Instant::now() >= at {
                return;
            }
            let wake = at.max(tokio::time::Instant::now() + Duration::from_millis(100));
            tokio::time::sleep_until(if self.in_flight.load(Relaxed) == 0 {
                wake
            } else {
                tokio::time::Instant::now() + limit
            })
            .await;
        }
    }
}

/// Why a connection ended before HTTP.
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("connection closed before a ClientHello")]
    Eof,
    #[error("no configured hostname for SNI {0:?}")]
    UnknownSni(Option<String>),
    #[error("handshake timed out")]
    Timeout,
}

/// The data plane: hostnames, the verdict cache, the origin client.
pub struct Gateway {
    /// The current hostnames. A reload swaps the `Arc`; connections keep
    /// the site they were accepted with, so none is dropped.
    sites: RwLock<Arc<Sites>>,
    cache: VerdictCache,
    access_log: Option<AccessLog>,
    metrics: Metrics,
    /// Most connections open at once; at the limit, accepting waits.
    max_connections: usize,
}

/// Called once per request with what happened, after the response head is
/// ready (the body may still be streaming).
pub type AccessLog = Box<dyn Fn(&proxy::AccessRecord<'_>) + Send + Sync>;

impl Gateway {
    /// A gateway serving `sites`.
    pub fn new(sites: Sites) -> Arc<Gateway> {
        Self::with_access_log(sites, None)
    }

    /// A gateway serving `sites` that reports every request to `log`.
    pub fn with_access_log(sites: Sites, log: Option<AccessLog>) -> Arc<Gateway> {
        Self::with_options(sites, log, crate::config::DEFAULT_MAX_CONNECTIONS)
    }

    /// A gateway serving `sites`, reporting every request to `log`, with
    /// at most `max_connections` connections open at once (`server.max_connections`;
    /// at least 1). At the limit, new connections wait in the kernel's
    /// accept queue until one closes.
    pub fn with_options(
        sites: Sites,
        log: Option<AccessLog>,
        max_connections: usize,
    ) -> Arc<Gateway> {
        Arc::new(Gateway {
            sites: RwLock::new(Arc::new(sites)),
            cache: VerdictCache::new(VERDICT_CACHE_ENTRIES),
            access_log: log,
            metrics: Metrics::default(),
            max_connections: max_connections.max(1),
        })
    }

    /// Replaces the hostnames (a validated reload). New connections use
    /// them; open connections finish with the ones they started with.
    pub fn replace_sites(&self, sites: Sites) {
        let mut g = self.sites.write().unwrap_or_else(PoisonError::into_inner);
        *g = Arc::new(sites);
    }

    /// Derives new hostnames from the current ones under the write lock
    /// (no concurrent update is lost) and swaps them in. Open connections
    /// keep the sites they started with.
    pub fn update_sites(&self, f: impl FnOnce(&Sites) -> Sites) {
        let mut g = self.sites.write().unwrap_or_else(PoisonError::into_inner);
        let next = f(&g);
        *g = Arc::new(next);
    }

    /// The hostnames being served now.
    pub fn sites(&self) -> Arc<Sites> {
        self.current_sites()
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves `GET /metrics` (Prometheus text) over plain HTTP/1.1 on
    /// `listener` until `shutdown`. Anything else is a 404.
    pub async fn serve_admin(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let (tcp, _) = tokio::select! {
                () = &mut shutdown => return,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let gw = self.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<Incoming>| {
                    let gw = gw.clone();
                    async move {
                        let (status, ct, body) = if req.uri().path() == "/metrics" {
                            let mut text = gw.metrics.render();
                            let now = UnixTime::now().as_secs();
                            text.push_str(&crate::metrics::render_expiry(
                                gw.current_sites().certificates(),
                                i64::try_from(now).unwrap_or(i64::MAX),
                            ));
                            (200, "text/plain; version=0.0.4", text)
                        } else {
                            (404, "text/plain", "not found\n".to_owned())
                        };
                        let mut r = hyper::Response::new(http_body_util::Full::new(
                            hyper::body::Bytes::from(body),
                        ));
                        *r.status_mut() =
                            hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
                        r.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static(ct),
                        );
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    }

    fn current_sites(&self) -> Arc<Sites> {
        self.sites
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Accepts connections on `listener` until `shutdown` completes, then
    /// stops accepting, lets open connections finish their requests (up to
    /// 10 s) and returns.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let mut at_limit = false;
        tokio::pin!(shutdown);
        loop {
            // A slot first, then accept: at the limit, new connections wait
            // in the kernel's accept queue instead of costing us memory.
            let slot = tokio::select! {
                () = &mut shutdown => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                s = slots.clone().acquire_owned() => match s {
                    Ok(s) => s,
                    Err(_) => break,
                },
            };
            let full = slots.available_permits() == 0;
            if full && !at_limit {
                tracing::warn!(
                    max_connections = self.max_connections,
                    "connection limit reached; new connections wait"
                );
            }
            at_limit = full;
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                r = listener.accept() => match r {
                    Ok((tcp, peer)) => {
                        let conn = self.clone().connection(tcp, peer, stop_rx.clone());
                        conns.spawn(async move {
                            conn.await;
                            drop(slot);
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        tracing::info!(open = conns.len(), "shutting down: draining connections");
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(open = conns.len(), "drain timed out; closing connections");
            conns.abort_all();
        }
    }

    async fn connection(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        mut stop: watch::Receiver<bool>,
    ) {
        let span = tracing::info_span!("conn", %peer, sni = tracing::field::Empty);
        async move {
            self.metrics.connection();
            let _ = tcp.set_nodelay(true);
            let hs = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.handshake(tcp));
            let (site, tls) = tokio::select! {
                r = hs => match r {
                    Ok(Ok(x)) => x,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "handshake failed");
                        self.metrics.handshake_failed(matches!(e, HandshakeError::UnknownSni(_)));
                        return;
                    }
                    Err(_) => {
                        self.metrics.handshake_failed(false);
                        tracing::debug!(error = %HandshakeError::Timeout, "handshake failed");
                        return;
                    }
                },
                _ = stop.changed() => return,
            };
            let chain: Vec<CertificateDer<'static>> = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default();
            // Verification (and waiting on another connection verifying the
            // same chain) is CPU work and may block: off the async workers.
            let cached = match (&site.trust, site.mode) {
                (Some(store), Mode::Report | Mode::Enforce) => {
                    self.cache.cached(store, &chain, UnixTime::now())
                }
                _ => None,
            };
            let ctx = if site.mode == Mode::Off || cached.is_some() {
                // Nothing to verify (a cached verdict, or no policy): the
                // headers are cheap enough for this worker.
                self.context_with(peer, site, &chain, cached)
            } else {
                let gw = self.clone();
                let span = tracing::Span::current();
                let task = move || span.in_scope(|| gw.context(peer, site, &chain));
                match tokio::task::spawn_blocking(task).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "verdict task failed");
                        return;
                    }
                }
            };
            let ctx = Arc::new(ctx);
            tracing::debug!(verdict = ctx.status(), "handshake done");
            let idle_timeout = ctx.site.idle_timeout;
            let idle = Arc::new(Idle::default());
            let gw = self.clone();
            let idle2 = idle.clone();
            let svc = service_fn(move |req: hyper::Request<Incoming>| {
                let gw = gw.clone();
                let ctx = ctx.clone();
                let guard = idle2.busy();
                async move {
                    let log = gw.access_log.as_deref();
                    let resp = proxy::handle(&ctx, req, log, &gw.metrics).await;
                    drop(guard);
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .max_headers(MAX_HEADERS)
                .http2()
                .timer(TokioTimer::new())
                .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX))
                .keep_alive_interval(Some(Duration::from_secs(30)));
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc);
            tokio::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
                () = idle.expired(idle_timeout) => {
                    tracing::debug!("idle timeout: closing the connection");
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        .instrument(span)
        .await
    }

    /// Reads the ClientHello, chooses the site by SNI and completes the
    /// handshake with its config. Unknown or missing SNI: a fatal
    /// `unrecognized_name` alert.
    async fn handshake(
        &self,
        mut tcp: TcpStream,
    ) -> Result<(Arc<Site>, TlsStream<TcpStream>), HandshakeError> {
        let mut acceptor = rustls::server::Acceptor::default();
        let mut buf = vec![0u8; 16 * 1024];
        let accepted = loop {
            let n = tcp.read(&mut buf).await?;
            if n == 0 {
                return Err(HandshakeError::Eof);
            }
            let mut rd = &buf[..n];
            while !rd.is_empty() {
                if acceptor.read_tls(&mut rd)? == 0 {
                    return Err(HandshakeError::Eof);
                }
            }
            match acceptor.accept() {
                Ok(None) => continue,
                Ok(Some(a)) => break a,
                Err((e, mut alert)) => {
                    let mut out = Vec::new();
                    let _ = alert.write_all(&mut out);
                    let _ = tcp.write_all(&out).await;
                    return Err(e.into());
                }
            }
        };
        let sni = accepted
            .client_hello()
            .server_name()
            .map(str::to_ascii_lowercase);
        if let Some(s) = &sni {
            tracing::Span::current().record("sni", s.as_str());
        }
        let sites = self.current_sites();
        let Some(site) = sni.as_deref().and_then(|s| sites.get(s)).cloned() else {
            let _ = tcp.write_all(&UNRECOGNIZED_NAME_ALERT).await;
            let _ = tcp.shutdown().await;
            return Err(HandshakeError::UnknownSni(sni));
        };
        let tls = StartHandshake::from_parts(accepted, tcp)
            .into_stream(site.tls.clone())
            .await?;
        Ok((site, tls))
    }

    /// The verdict and identity headers, once per connection.
    fn context(
        &self,
        peer: SocketAddr,
        site: Arc<Site>,
        chain: &[CertificateDer<'static>],
    ) -> ConnContext {
        self.context_with(peer, site, chain, None)
    }

    /// Like [`Gateway::context`], with the verdict when it is known already.
    fn context_with(
        &self,
        peer: SocketAddr,
        site: Arc<Site>,
        chain: &[CertificateDer<'static>],
        known: Option<client_auth::Verdict>,
    ) -> ConnContext {
        let (verdict, identity) = match (&site.trust, site.mode) {
            (Some(store), Mode::Report | Mode::Enforce) => {
                let v = known.unwrap_or_else(|| self.cache.verify(store, chain, UnixTime::now()));
                if let client_auth::Verdict::Invalid { reason, detail } = &v {
                    tracing::info!(%reason, %detail, "client certificate invalid");
                }
                // A chain over the policy's limit is refused by the verdict;
                // it is not echoed to the origin either (Client-Cert-Chain,
                // XFCC): the leaf's facts are enough to say who it was.
                let forwarded = if chain.len() > store.policy().max_chain_certs {
                    &chain[..1]
                } else {
                    chain
                };
                // Under `enforce`, only a valid verdict is ever forwarded:
                // no headers to build for the others (an invalid-certificate
                // flood costs no header work).
                let h = if site.mode == Mode::Enforce && v != client_auth::Verdict::Valid {
                    Vec::new()
                } else {
                    site.identity.headers(&v, forwarded)
                };
                (Some(v), h)
            }
            _ => (None, Vec::new()),
        };
        // Logs and events name the presented leaf whatever the mode does
        // with headers (renamed, or not built for a blocked connection).
        let leaf = match (&verdict, chain.first()) {
            (Some(_), Some(der)) => Some(Arc::new(crate::proxy::LeafIds {
                ski: client_auth::CertFacts::from_der(der)
                    .ok()
                    .and_then(|f| f.ski),
                sha256: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der)),
            })),
            _ => None,
        };
        let edge = crate::edge::ConnEdge::new(site.edge.as_deref(), verdict.as_ref(), chain);
        ConnContext {
            peer,
            site,
            verdict,
            identity,
            leaf,
            edge,
        }
    }
}
