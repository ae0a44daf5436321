//! The request phases, in order (docs/gateway.md draws them):
//!
//! 1. [`strip_owned_headers`]: every identity header a client sent is
//!    removed, in every mode (`off` included), and so are the hostname's
//!    renamed and mapped identity headers.
//! 2. [`check_host`]: unless the mode is `off`, the request's host (HTTP/2
//!    `:authority`, else `Host`, port removed) must equal the TLS server
//!    name, or the answer is 421 Misdirected Request.
//! 3. [`enforce`]: in `enforce` mode a verdict other than `valid` gets the
//!    hostname's block response.
//! 4. [`crate::edge::run`]: token → rules → rate limit, when the hostname
//!    has an edge policy (docs/policy.md).
//! 5. [`forward`]: to the origin of the longest matching
//!    `[[hostname.route]]` (else the hostname's), with the identity headers
//!    (not in `off`) and `X-Forwarded-For` / `X-Forwarded-Proto`; an
//!    HTTP/1.1 `Upgrade` request (WebSocket) becomes a tunnel when the
//!    origin answers 101.
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
use hyper::http::uri::{Authority, PathAndQuery, Uri};
use hyper::http::{Request, Response, StatusCode, Version};
use tracing::Instrument as _;

use crate::config::{Mode, OriginProtocol};
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
    /// SKI and fingerprint of the presented leaf (report/enforce), for the
    /// access log and stored events, whatever the headers are named.
    pub leaf: Option<Arc<LeafIds>>,
    /// The certificate as the edge policy sees it.
    pub edge: crate::edge::ConnEdge,
}

/// What identifies a presented client certificate in logs and events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafIds {
    /// Subject Key Identifier, lowercase hex, when the certificate has one.
    pub ski: Option<String>,
    /// SHA-256 of the leaf DER, lowercase hex.
    pub sha256: String,
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
    /// The token check refused the request (client's fault).
    Token {
        /// `missing`, `malformed`, `bad-mac`, `expired`, `future`, `scope`.
        reason: &'static str,
        /// The token check's configured answer.
        block: Arc<crate::config::BlockResponse>,
    },
    /// A `block` rule matched (client's fault).
    Rule {
        /// The rule's name.
        rule: String,
        /// Configured status.
        status: u16,
        /// Configured content type.
        content_type: String,
        /// Configured body (`None`: a JSON body naming the rule).
        body: Option<String>,
    },
    /// A rate limit was exceeded (client's fault; retry later).
    RateLimited {
        /// The limit's name.
        limit: String,
        /// Seconds until the key may try again.
        retry_after: u64,
    },
    /// A fail-closed rate limit could not reach Redis (our fault; retry).
    RateLimitUnavailable {
        /// The limit's name.
        limit: String,
    },
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
            Rejection::Token { .. } => "token",
            Rejection::Rule { .. } => "rule",
            Rejection::RateLimited { .. } => "rate-limited",
            Rejection::RateLimitUnavailable { .. } => "rate-limit-unavailable",
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
            Rejection::Token { reason, block } => {
                tracing::info!(reason, "blocked: token refused");
                let body = match &block.body {
                    Some(b) => b.clone(),
                    None => format!("{{\"error\":\"invalid token\",\"reason\":\"{reason}\"}}"),
                };
                fixed(block.status, block.content_type.clone(), body)
            }
            Rejection::Rule {
                rule,
                status,
                content_type,
                body,
            } => {
                tracing::info!(rule, "blocked by rule");
                let body = body.unwrap_or_else(|| {
                    serde_json::json!({"error": "blocked by rule", "rule": rule}).to_string()
                });
                fixed(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
                    HeaderValue::from_str(&content_type)
                        .unwrap_or(HeaderValue::from_static("application/json")),
                    body,
                )
            }
            Rejection::RateLimited { limit, retry_after } => {
                tracing::info!(limit, retry_after, "rate limited");
                let body = serde_json::json!({
                    "error": "rate limited", "limit": limit, "retry_after": retry_after
                });
                let mut r = fixed(
                    StatusCode::TOO_MANY_REQUESTS,
                    HeaderValue::from_static("application/json"),
                    body.to_string(),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                r
            }
            Rejection::RateLimitUnavailable { limit } => {
                tracing::warn!(limit, "rate limit store unavailable (fail-closed)");
                let body = serde_json::json!({
                    "error": "service unavailable", "reason": "rate limit store unreachable", "limit": limit
                });
                let mut r = fixed(
                    StatusCode::SERVICE_UNAVAILABLE,
                    HeaderValue::from_static("application/json"),
                    body.to_string(),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
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
    /// The client certificate's Subject Key Identifier (hex), if one was
    /// presented (report/enforce).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ski: Option<&'a str>,
    /// SHA-256 of the client certificate (hex), if one was presented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<&'a str>,
    /// Origin part of it (request sent to response head), in
    /// milliseconds, when the request reached the origin.
    pub origin_ms: Option<u64>,
    /// Token check: `valid` or why it was refused (absent: no check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<&'static str>,
    /// The rule that decided (`block`/`skip`) or the first that logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The rule action taken: `block`, `skip` or `log`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
    /// Every rule that matched with `log` or a simulated `block`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules_logged: Vec<String>,
    /// The rate limit that refused the request (or could not count it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// `failed-open` / `failed-closed` when Redis was unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_store: Option<&'static str>,
}

/// How long the origin took to send its response head; set by
/// [`forward`] in the response's extensions.
#[derive(Clone, Copy, Debug)]
pub struct OriginTiming(pub std::time::Duration);

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
        let mut notes = crate::edge::Notes::default();
        let (resp, outcome) = match phases(ctx, req, &mut notes).await {
            Ok(r) => (r, "origin"),
            Err(rej) => {
                let outcome = rej.name();
                (rej.into_response(&ctx.site), outcome)
            }
        };
        tracing::Span::current().record("status", resp.status().as_u16());
        tracing::debug!("done");
        let elapsed = start.elapsed();
        let origin = resp.extensions().get::<OriginTiming>().map(|t| t.0);
        metrics.request_timed(
            &ctx.site.name,
            ctx.status(),
            outcome,
            resp.status().as_u16(),
            Some(elapsed),
            origin,
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
                duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                ski: ctx.leaf.as_ref().and_then(|l| l.ski.as_deref()),
                fingerprint: ctx.leaf.as_ref().map(|l| l.sha256.as_str()),
                origin_ms: origin.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                token: notes.token,
                rule: notes.rule,
                action: notes.action,
                rules_logged: notes.rules_logged,
                rate_limit: notes.rate_limit,
                rate_limit_store: notes.rate_limit_store,
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
    notes: &mut crate::edge::Notes,
) -> Result<Response<Body>, Rejection> {
    strip_owned_headers(req.headers_mut());
    for name in &ctx.site.strip {
        req.headers_mut().remove(name);
    }
    let host = check_host(ctx, &req)?;
    enforce(ctx)?;
    crate::edge::run(ctx, &req, notes).await?;
    forward(ctx, host, req).await
}

/// Phase 1: remove every header Portcullis owns.
pub fn strip_owned_headers(h: &mut HeaderMap) {
    // Most requests carry none: one pass over the few names present is
    // cheaper than twelve lookups.
    let any = h.keys().any(|k| {
        let k = k.as_str();
        k.starts_with("client-cert") || k == "x-forwarded-client-cert"
    });
    if any {
        for name in client_auth::headers::OWNED_HEADERS {
            h.remove(name);
        }
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

pub(crate) fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Usually there are none: check the names present first.
    let any = h
        .keys()
        .any(|k| HOP_BY_HOP.contains(&k.as_str()) || k == header::TRANSFER_ENCODING);
    if !any {
        return;
    }
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
    // An HTTP/1.1 `Upgrade` (WebSocket): the protocol asked for, kept
    // across the hop-by-hop cleaning below, and the client side's upgrade.
    let upgrade = upgrade_protocol(&parts);
    let client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    strip_hop_by_hop(&mut parts.headers);
    let site = &ctx.site;
    let target = site.target(parts.uri.path());
    // The URI names the hostname (the pool key: one per hostname, whatever
    // Host values clients send) and is HTTP/2's `:authority`; the
    // connectors connect to the target's address whatever it says.
    parts.uri = Uri::builder()
        .scheme(target.scheme.clone())
        .authority(site.authority.clone())
        .path_and_query(
            parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        )
        .build()
        .map_err(|_| Rejection::BadRequest("unusable request target"))?;
    parts.version = Version::HTTP_11;
    let h = &mut parts.headers;
    // HTTP/1.1: the checked host, whatever Host header the client sent.
    // HTTP/2 origins get `:authority` (the hostname) and no Host header,
    // which they would take as a second, conflicting one.
    if target.protocol == OriginProtocol::Http1 || upgrade.is_some() {
        let host =
            HeaderValue::from_str(host.as_str()).map_err(|_| Rejection::BadRequest("bad Host"))?;
        h.insert(header::HOST, host);
    } else {
        h.remove(header::HOST);
    }
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
    // RFC 7239, replaced like X-Forwarded-For (an IPv6 address is quoted
    // and bracketed, the host quoted).
    let forwarded = match ctx.peer.ip() {
        std::net::IpAddr::V4(ip) => format!("for={ip};proto=https;host=\"{host}\""),
        std::net::IpAddr::V6(ip) => format!("for=\"[{ip}]\";proto=https;host=\"{host}\""),
    };
    h.insert(
        header::FORWARDED,
        HeaderValue::from_str(&forwarded).map_err(|_| Rejection::BadRequest("bad Host"))?,
    );
    if let Some(proto) = &upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, proto.clone());
    }
    let req = Request::from_parts(parts, body);
    let limit = site.origin_timeouts.response;
    let client = if upgrade.is_some() {
        &target.upgrade
    } else {
        &target.client
    };
    let sent = std::time::Instant::now();
    let mut resp = tokio::time::timeout(limit, client.request(req))
        .await
        .map_err(|_| Rejection::OriginTimeout(limit))?
        .map_err(|e| {
            if client_body_failed(&e) {
                Rejection::BadRequest("malformed or incomplete request body")
            } else {
                Rejection::Origin(e)
            }
        })?;
    let origin_took = sent.elapsed();
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    let origin_upgrade = if switching && upgrade.is_some() {
        Some(hyper::upgrade::on(&mut resp))
    } else {
        None
    };
    let (mut parts, body) = resp.into_parts();
    let agreed = parts.headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(&mut parts.headers);
    match (origin_upgrade, client_upgrade, agreed) {
        (Some(origin_side), Some(client_side), Some(agreed)) => {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, agreed);
            tokio::spawn(tunnel(client_side, origin_side).in_current_span());
        }
        _ if switching => {
            // 101 without an upgrade we asked for, or over HTTP/2: not
            // something a client can use.
            return Err(Rejection::BadRequest(
                "the origin switched protocols unasked",
            ));
        }
        _ => {}
    }
    parts.extensions.insert(OriginTiming(origin_took));
    Ok(Response::from_parts(parts, body.boxed()))
}

/// The `Upgrade` value of an HTTP/1.1 request that asks for one
/// (`Connection: upgrade` and an `Upgrade` header).
fn upgrade_protocol(parts: &hyper::http::request::Parts) -> Option<HeaderValue> {
    if parts.version != Version::HTTP_11 {
        return None;
    }
    let asks = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if asks {
        parts.headers.get(header::UPGRADE).cloned()
    } else {
        None
    }
}

/// Copies bytes both ways between the upgraded client and origin
/// connections until either side closes.
async fn tunnel(client: hyper::upgrade::OnUpgrade, origin: hyper::upgrade::OnUpgrade) {
    let (c, o) = match tokio::try_join!(client, origin) {
        Ok(x) => x,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let mut c = hyper_util::rt::TokioIo::new(c);
    let mut o = hyper_util::rt::TokioIo::new(o);
    match tokio::io::copy_bidirectional(&mut c, &mut o).await {
        Ok((up, down)) => tracing::debug!(up, down, "tunnel closed"),
        Err(e) => tracing::debug!(error = %e, "tunnel ended with an error"),
    }
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
/// The contract names; [`crate::identity::IdentityHeaders::headers`] applies
/// a hostname's renames and mappings.
pub fn identity_headers(
    verdict: &Verdict,
    chain: &[client_auth::CertificateDer<'_>],
) -> Vec<(HeaderName, HeaderValue)> {
    crate::identity::IdentityHeaders::default().headers(verdict, chain)
}
