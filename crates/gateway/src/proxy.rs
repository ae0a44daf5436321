//! The request phases, in order (docs/gateway.md draws them):
//!
//! 1. [`strip_owned_headers`]: every identity header a client sent is
//!    removed, in every mode (`off` included).
//! 2. [`check_host`]: unless the mode is `off`, the request's host (HTTP/2
//!    `:authority`, else `Host`, port removed) must equal the TLS server
//!    name, or the answer is 421 Misdirected Request.
//! 3. [`enforce`]: in `enforce` mode a verdict other than `valid` gets the
//!    hostname's block response.
//! 4. [`forward`]: to the origin, with the identity headers (not in `off`)
//!    and `X-Forwarded-For` / `X-Forwarded-Proto`.
//!
//! Each phase may end the request with a [`Rejection`];
//! [`Rejection::into_response`] is the one place that turns rejections into
//! responses.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use client_auth::Verdict;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{Authority, Uri};
use hyper::http::{Request, Response, StatusCode, Version};
use tracing::Instrument as _;

use crate::config::Mode;
use crate::site::Site;

/// Response body: streamed from the origin, or a small fixed body.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// What a connection established, computed once after the handshake.
#[derive(Debug)]
pub struct ConnContext {
    /// Client address.
    pub peer: SocketAddr,
    /// The hostname chosen by SNI.
    pub site: Arc<Site>,
    /// The client-certificate verdict (`None` in mode `off`).
    pub verdict: Option<Verdict>,
    /// The identity headers for the origin (empty in mode `off`).
    pub identity: Vec<(HeaderName, HeaderValue)>,
}

impl ConnContext {
    /// `none`/`valid`/`invalid`, or `off`.
    pub fn status(&self) -> &'static str {
        self.verdict.as_ref().map_or("off", Verdict::status)
    }
}

/// Why a request ended before (or instead of) reaching the origin.
#[derive(Debug)]
pub enum Rejection {
    /// Host / `:authority` missing or not the TLS server name (client's fault).
    Misdirected {
        /// What the client asked for.
        host: Option<String>,
    },
    /// `enforce` mode and no valid certificate (client's fault).
    ClientCert {
        /// `none` or a `Client-Cert-Error` value.
        reason: &'static str,
    },
    /// The origin could not be reached or failed (origin's fault).
    Origin(hyper_util::client::legacy::Error),
    /// The origin sent no response head within `origin_response_timeout`
    /// (origin's fault).
    OriginTimeout(std::time::Duration),
    /// The request could not be turned into an origin request (client's
    /// fault).
    BadRequest(&'static str),
}

fn fixed(status: StatusCode, content_type: HeaderValue, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, content_type);
    r
}

impl Rejection {
    /// A short name for logs: `misdirected`, `blocked`, `origin-error`,
    /// `bad-request`.
    pub fn name(&self) -> &'static str {
        match self {
            Rejection::Misdirected { .. } => "misdirected",
            Rejection::ClientCert { .. } => "blocked",
            Rejection::Origin(_) => "origin-error",
            Rejection::OriginTimeout(_) => "origin-timeout",
            Rejection::BadRequest(_) => "bad-request",
        }
    }

    /// The response for this rejection on `site`.
    pub fn into_response(self, site: &Site) -> Response<Body> {
        let text = HeaderValue::from_static("text/plain; charset=utf-8");
        match self {
            Rejection::Misdirected { host } => {
                tracing::info!(host = host.as_deref().unwrap_or(""), "misdirected request");
                fixed(
                    StatusCode::MISDIRECTED_REQUEST,
                    text,
                    "misdirected request: the Host does not match the TLS server name\n",
                )
            }
            Rejection::ClientCert { reason } => {
                tracing::info!(reason, "blocked: no valid client certificate");
                let b = &site.block;
                let body = match &b.body {
                    Some(body) => body.clone(),
                    None => format!(
                        "{{\"error\":\"client certificate required\",\"reason\":\"{reason}\"}}"
                    ),
                };
                fixed(b.status, b.content_type.clone(), body)
            }
            Rejection::Origin(e) => {
                tracing::warn!(error = %e, "origin request failed");
                fixed(
                    StatusCode::BAD_GATEWAY,
                    HeaderValue::from_static("application/json"),
                    "{\"error\":\"bad gateway\",\"reason\":\"origin unreachable or failed\"}",
                )
            }
            Rejection::OriginTimeout(after) => {
                tracing::warn!(after_ms = after.as_millis(), "origin response timed out");
                fixed(
                    StatusCode::GATEWAY_TIMEOUT,
                    HeaderValue::from_static("application/json"),
                    "{\"error\":\"gateway timeout\",\"reason\":\"origin did not answer in time\"}",
                )
            }
            Rejection::BadRequest(why) => {
                tracing::info!(why, "bad request");
                fixed(
                    StatusCode::BAD_REQUEST,
                    text,
                    format!("bad request: {why}\n"),
                )
            }
        }
    }
}

/// One request, for the access log.
#[derive(Debug, serde::Serialize)]
pub struct AccessRecord<'a> {
    /// Client address.
    pub peer: SocketAddr,
    /// The hostname (TLS server name).
    pub hostname: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Request path (no query: it may carry secrets).
    pub path: &'a str,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Response status.
    pub status: u16,
    /// mTLS mode of the hostname.
    pub mode: &'static str,
    /// `off`, `none`, `valid` or `invalid`.
    pub verdict: &'static str,
    /// The `Client-Cert-Error` value, when invalid.
    pub reason: Option<&'static str>,
    /// Which phase answered: `origin`, or the rejection.
    pub outcome: &'static str,
    /// Time to the response head, in milliseconds.
    pub duration_ms: u64,
}

/// Runs the phases for one request. Never fails: rejections become
/// responses here.
pub async fn handle(
    ctx: &ConnContext,
    req: Request<Incoming>,
    access_log: Option<&(dyn Fn(&AccessRecord<'_>) + Send + Sync)>,
    metrics: &crate::metrics::Metrics,
) -> Response<Body> {
    let start = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let version = format!("{:?}", req.version());
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        hostname = %ctx.site.name,
        verdict = ctx.status(),
        status = tracing::field::Empty,
    );
    async move {
        let (resp, outcome) = match phases(ctx, req).await {
            Ok(r) => (r, "origin"),
            Err(rej) => {
                let outcome = rej.name();
                (rej.into_response(&ctx.site), outcome)
            }
        };
        tracing::Span::current().record("status", resp.status().as_u16());
        tracing::debug!("done");
        metrics.request(
            &ctx.site.name,
            ctx.status(),
            outcome,
            resp.status().as_u16(),
        );
        if let Some(log) = access_log {
            log(&AccessRecord {
                peer: ctx.peer,
                hostname: &ctx.site.name,
                method: method.as_str(),
                path: &path,
                version,
                status: resp.status().as_u16(),
                mode: ctx.site.mode.as_str(),
                verdict: ctx.status(),
                reason: ctx
                    .verdict
                    .as_ref()
                    .and_then(Verdict::reason)
                    .map(|r| r.as_str()),
                outcome,
                duration_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            });
        }
        resp
    }
    .instrument(span)
    .await
}

async fn phases(
    ctx: &ConnContext,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Rejection> {
    strip_owned_headers(req.headers_mut());
    let host = check_host(ctx, &req)?;
    enforce(ctx)?;
    forward(ctx, host, req).await
}

/// Phase 1: remove every header Portcullis owns.
pub fn strip_owned_headers(h: &mut HeaderMap) {
    for name in client_auth::headers::OWNED_HEADERS {
        h.remove(name);
    }
}

/// The authority the request is for: the URI's (HTTP/2 `:authority`,
/// HTTP/1.1 absolute form), else the `Host` header.
fn request_authority<B>(req: &Request<B>) -> Option<Authority> {
    if let Some(a) = req.uri().authority() {
        return Some(a.clone());
    }
    let host = req.headers().get(header::HOST)?.to_str().ok()?;
    host.parse::<Authority>().ok()
}

/// Phase 2: the host must be the SNI name (not checked in mode `off`).
/// Returns the authority to send to the origin as `Host`.
pub fn check_host<B>(ctx: &ConnContext, req: &Request<B>) -> Result<Authority, Rejection> {
    let authority = request_authority(req);
    if ctx.site.mode == Mode::Off {
        return authority.ok_or(Rejection::BadRequest("no Host"));
    }
    match authority {
        Some(a)
            if a.host()
                .trim_end_matches('.')
                .eq_ignore_ascii_case(&ctx.site.name) =>
        {
            Ok(a)
        }
        other => Err(Rejection::Misdirected {
            host: other.map(|a| a.to_string()),
        }),
    }
}

/// Phase 3: in `enforce` mode, only a valid certificate passes.
pub fn enforce(ctx: &ConnContext) -> Result<(), Rejection> {
    match (&ctx.site.mode, &ctx.verdict) {
        (Mode::Enforce, Some(Verdict::Valid)) | (Mode::Off | Mode::Report, _) => Ok(()),
        (Mode::Enforce, v) => Err(Rejection::ClientCert {
            reason: v
                .as_ref()
                .and_then(Verdict::reason)
                .map_or("none", |r| r.as_str()),
        }),
    }
}

/// Hop-by-hop headers (RFC 9110 section 7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    let listed: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in listed {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(n);
    }
    h.remove(header::TRANSFER_ENCODING);
}

/// Phase 4: forward to the origin, streaming both bodies. The response
/// head must arrive within the hostname's `origin_response_timeout`.
pub async fn forward(
    ctx: &ConnContext,
    host: Authority,
    req: Request<Incoming>,
) -> Result<Response<Body>, Rejection> {
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let site = &ctx.site;
    parts.uri = Uri::builder()
        .scheme(site.origin_scheme.clone())
        .authority(site.origin_authority.clone())
        .path_and_query(
            parts
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_owned(),
        )
        .build()
        .map_err(|_| Rejection::BadRequest("unusable request target"))?;
    parts.version = Version::HTTP_11;
    let h = &mut parts.headers;
    // The checked host, whatever Host header came with an HTTP/2 request.
    let host =
        HeaderValue::from_str(host.as_str()).map_err(|_| Rejection::BadRequest("bad Host"))?;
    h.insert(header::HOST, host);
    for (name, value) in &ctx.identity {
        h.insert(name.clone(), value.clone());
    }
    // We are the edge: what a client claims here is replaced, not appended.
    h.insert(
        HeaderName::from_static("x-forwarded-for"),
        HeaderValue::from_str(&ctx.peer.ip().to_string())
            .map_err(|_| Rejection::BadRequest("peer address"))?,
    );
    h.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("https"),
    );
    let req = Request::from_parts(parts, body);
    let limit = site.origin_timeouts.response;
    let resp = match &site.https {
        Some(https) => tokio::time::timeout(limit, https.request(req)).await,
        None => tokio::time::timeout(limit, site.http.request(req)).await,
    }
    .map_err(|_| Rejection::OriginTimeout(limit))?
    .map_err(|e| {
        if client_body_failed(&e) {
            Rejection::BadRequest("malformed or incomplete request body")
        } else {
            Rejection::Origin(e)
        }
    })?;
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, body.boxed()))
}

/// Whether an origin request failed because the client's own request body
/// did (a bad chunk size, a body cut short): hyper reports the body stream's
/// error as a "user" error of the origin request. That is the client's
/// fault, answered 400, not the origin's (502).
fn client_body_failed(e: &hyper_util::client::legacy::Error) -> bool {
    let mut cur = std::error::Error::source(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_user)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The identity headers of a verdict, as header pairs (values that are not
/// valid header values, which `client-auth` never produces, are dropped).
pub fn identity_headers(
    verdict: &Verdict,
    chain: &[client_auth::CertificateDer<'_>],
) -> Vec<(HeaderName, HeaderValue)> {
    let facts = chain
        .first()
        .and_then(|leaf| client_auth::CertFacts::from_der(leaf).ok());
    client_auth::headers::identity_headers(verdict, facts.as_ref(), chain)
        .into_iter()
        .filter_map(|(n, v)| Some((HeaderName::from_static(n), HeaderValue::from_str(&v).ok()?)))
        .collect()
}
