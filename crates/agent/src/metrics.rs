//! Prometheus metrics of the agent (one label, `certificate`, bounded by
//! the configuration).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::state::unix;

#[derive(Clone, Copy, Debug, Default)]
struct One {
    expiry: i64,
    last_success: i64,
    success: u64,
    failure: u64,
}

/// Counters and gauges per certificate.
#[derive(Debug, Default)]
pub struct Metrics {
    certs: Mutex<BTreeMap<String, One>>,
}

impl Metrics {
    /// Starts with every configured name at zero.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        Metrics {
            certs: Mutex::new(
                names
                    .into_iter()
                    .map(|n| (n.to_string(), One::default()))
                    .collect(),
            ),
        }
    }

    fn with(&self, name: &str, f: impl FnOnce(&mut One)) {
        if let Ok(mut m) = self.certs.lock() {
            if let Some(o) = m.get_mut(name) {
                f(o);
            }
        }
    }

    /// A certificate is in place (issued now, or found at start).
    pub fn current(&self, name: &str, not_after: SystemTime) {
        self.with(name, |o| o.expiry = unix(not_after));
    }

    /// A successful issuance.
    pub fn success(&self, name: &str, not_after: SystemTime) {
        let now = unix(SystemTime::now());
        self.with(name, |o| {
            o.expiry = unix(not_after);
            o.last_success = now;
            o.success += 1;
        });
    }

    /// A failed attempt.
    pub fn failure(&self, name: &str) {
        self.with(name, |o| o.failure += 1);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let now = unix(SystemTime::now());
        let m = match self.certs.lock() {
            Ok(m) => m.clone(),
            Err(_) => BTreeMap::new(),
        };
        let mut s = String::new();
        let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, i64)>| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(s, "{name}{{{labels}}} {v}");
            }
        };
        let lbl = |n: &str| format!("certificate=\"{n}\"");
        family(
            "portcullis_agent_certificate_expiry_timestamp_seconds",
            "gauge",
            "NotAfter of the current certificate (0: none yet).",
            m.iter().map(|(n, o)| (lbl(n), o.expiry)).collect(),
        );
        family(
            "portcullis_agent_certificate_seconds_to_expiry",
            "gauge",
            "Seconds until the current certificate expires (negative: expired).",
            m.iter()
                .filter(|(_, o)| o.expiry != 0)
                .map(|(n, o)| (lbl(n), o.expiry - now))
                .collect(),
        );
        family(
            "portcullis_agent_renewals_total",
            "counter",
            "Issuance attempts by result.",
            m.iter()
                .flat_map(|(n, o)| {
                    [
                        (format!("{},result=\"success\"", lbl(n)), o.success as i64),
                        (format!("{},result=\"failure\"", lbl(n)), o.failure as i64),
                    ]
                })
                .collect(),
        );
        family(
            "portcullis_agent_last_success_timestamp_seconds",
            "gauge",
            "Time of the last successful issuance by this process (0: none).",
            m.iter().map(|(n, o)| (lbl(n), o.last_success)).collect(),
        );
        s
    }

    /// Serves `GET /metrics` (any path, in fact) on `listener` until the
    /// task is dropped.
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let body = me.render();
                    async move {
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "text/plain; version=0.0.4")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap_or_default(),
                        )
                    }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await
                {
                    tracing::debug!(%peer, error = %e, "metrics connection");
                }
            });
        }
    }
}
