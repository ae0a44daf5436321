//! HTTP mode: plain HTTP/1.1 (or h2c) from the app, HTTPS with the
//! service's certificate to the upstream chosen by the request path.
//! Failures are answered with a JSON body naming what failed:
//! `502 {"error":"upstream_tls","message":"upstream certificate: unknown issuer …"}`,
//! `502 upstream_connect`, `504 upstream_timeout`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::http::header::{self, HeaderValue};
use hyper::http::uri::{Scheme, Uri};
use hyper::http::{Request, Response, StatusCode, Version};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tracing::Instrument as _;

use super::upstream::UpstreamError;
use super::Egress;
use crate::proxy::Body;

/// Longest wait for a complete request head from the app.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head accepted from the app.
const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Serves one app connection; when `stop` turns true (shutdown, or the
/// listener is rebound), finishes the current request and closes.
pub(super) async fn serve_connection(
    e: Arc<Egress>,
    tcp: TcpStream,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let svc = service_fn(move |req: Request<Incoming>| {
        let e = e.clone();
        async move { Ok::<_, Infallible>(handle(&e, req).await) }
    });
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX));
    let conn = b.serve_connection(TokioIo::new(tcp), svc);
    tokio::pin!(conn);
    let r = tokio::select! {
        r = conn.as_mut() => r,
        () = async {
            let _ = stop.wait_for(|stopped| *stopped).await;
        } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = r {
        tracing::debug!(error = %err, "app connection ended with an error");
    }
}

fn json(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    let mut r = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// What went wrong with an upstream request, from the client's error.
fn classify(err: &hyper_util::client::legacy::Error) -> (StatusCode, &'static str, String) {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(u) = e.downcast_ref::<UpstreamError>() {
            let status = match u {
                UpstreamError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::BAD_GATEWAY,
            };
            return (status, u.code(), u.to_string());
        }
        // A TLS 1.3 upstream that refuses our certificate says so after
        // the handshake, on the first read.
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return (
                    StatusCode::BAD_GATEWAY,
                    "upstream_tls",
                    format!("the upstream ended the TLS connection: {t}; does it trust this service's certificate?"),
                );
            }
        }
        cur = e.source();
    }
    let mut message = format!("upstream request failed: {err}");
    let mut src = std::error::Error::source(err);
    while let Some(s) = src {
        message.push_str(": ");
        message.push_str(&s.to_string());
        src = s.source();
    }
    (StatusCode::BAD_GATEWAY, "upstream_error", message)
}

/// One request: choose the route, forward, map failures to JSON.
async fn handle(e: &Egress, req: Request<Incoming>) -> Response<Body> {
    let up = e.route(req.uri().path()).clone();
    let span = tracing::info_span!(
        "egress_request",
        method = %req.method(),
        path = %req.uri().path(),
        upstream = %up.authority,
        status = tracing::field::Empty,
    );
    async move {
        let resp = forward(e, &up, req).await;
        tracing::Span::current().record("status", resp.status().as_u16());
        tracing::debug!("done");
        resp
    }
    .instrument(span)
    .await
}

async fn forward(e: &Egress, up: &super::Upstream, req: Request<Incoming>) -> Response<Body> {
    let Some(client) = &up.client else {
        return json(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no HTTP client for this upstream",
        );
    };
    let (mut parts, body) = req.into_parts();
    crate::proxy::strip_hop_by_hop(&mut parts.headers);
    let pq = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    parts.uri = match Uri::builder()
        .scheme(Scheme::HTTPS)
        .authority(up.authority.clone())
        .path_and_query(pq)
        .build()
    {
        Ok(u) => u,
        Err(_) => {
            return json(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "unusable request target",
            )
        }
    };
    parts.version = Version::HTTP_11;
    parts.headers.insert(header::HOST, up.host_header.clone());
    let req = Request::from_parts(parts, body);
    let limit = e.response_timeout;
    match tokio::time::timeout(limit, client.request(req)).await {
        Err(_) => {
            e.metrics.outcome(&e.name, "upstream_timeout");
            let message = format!(
                "upstream {} did not answer within {} s",
                up.authority,
                limit.as_secs()
            );
            tracing::warn!(%message, "upstream timed out");
            json(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", &message)
        }
        Ok(Err(err)) => {
            let (status, code, message) = classify(&err);
            e.metrics.outcome(&e.name, code);
            tracing::warn!(code, %message, "upstream request failed");
            json(status, code, &message)
        }
        Ok(Ok(resp)) => {
            e.metrics.outcome(&e.name, "ok");
            let (mut parts, body) = resp.into_parts();
            crate::proxy::strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.boxed())
        }
    }
}
