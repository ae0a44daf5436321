//! Counters, histograms and gauges of the data plane, rendered in the
//! Prometheus text format. Labels are bounded: hostnames come from the
//! configuration (unknown SNI is counted without its name), outcomes and
//! verdicts are closed sets, certificates are those the config names.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use client_auth::CertificateDer;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram: cumulative buckets are computed at render time,
/// so recording is two atomic adds and one bucket increment.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self, s: &mut String, name: &str, host: &str) {
        let mut cum = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cum += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(s, "{name}_bucket{{hostname=\"{host}\",le=\"{b}\"}} {cum}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "{name}_bucket{{hostname=\"{host}\",le=\"+Inf\"}} {count}\n\
             {name}_sum{{hostname=\"{host}\"}} {}\n\
             {name}_count{{hostname=\"{host}\"}} {count}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
    }
}

/// Verdict, outcome, status class.
type HostKey = (&'static str, &'static str, u16);

/// Per-hostname request metrics.
#[derive(Debug, Default)]
struct HostMetrics {
    /// (verdict, outcome, status class) → count; a handful of entries.
    requests: Mutex<Vec<(HostKey, u64)>>,
    /// Request to response head.
    request_duration: Histogram,
    /// Origin request to origin response head.
    origin_duration: Histogram,
}

/// The expiry of one configured certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertExpiry {
    /// `server`, `origin_pull`, `ca` or `origin_ca`.
    pub kind: &'static str,
    /// The hostname (server), CA name (ca) or file (origin_pull, origin_ca).
    pub name: String,
    /// RFC 4514 subject.
    pub subject: String,
    /// notAfter, Unix seconds.
    pub not_after: i64,
}

impl CertExpiry {
    /// Records each certificate of `certs` (unparsable ones are skipped:
    /// loading reports them), once per (kind, name, subject).
    pub fn note(
        all: &mut Vec<CertExpiry>,
        kind: &'static str,
        name: &str,
        certs: &[CertificateDer<'_>],
    ) {
        for c in certs {
            let Ok((_, x)) = x509_parser::parse_x509_certificate(c.as_ref()) else {
                continue;
            };
            let e = CertExpiry {
                kind,
                name: name.to_owned(),
                subject: x.subject().to_string(),
                not_after: x.validity().not_after.timestamp(),
            };
            if !all
                .iter()
                .any(|o| o.kind == e.kind && o.name == e.name && o.subject == e.subject)
            {
                all.push(e);
            }
        }
    }
}

/// A Prometheus label value: `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The days-to-expiry gauges of `certs` at `now` (Unix seconds).
pub fn render_expiry(certs: &[CertExpiry], now: i64) -> String {
    let mut s = String::from(
        "# HELP portcullis_certificate_expiry_days Days until a configured certificate expires (negative: expired).\n\
         # TYPE portcullis_certificate_expiry_days gauge\n",
    );
    for c in certs {
        let days = (c.not_after - now) as f64 / 86_400.0;
        let _ = writeln!(
            s,
            "portcullis_certificate_expiry_days{{kind=\"{}\",name=\"{}\",subject=\"{}\"}} {days:.3}",
            c.kind,
            label(&c.name),
            label(&c.subject)
        );
    }
    s.push_str(
        "# HELP portcullis_certificate_not_after_seconds notAfter of a configured certificate, Unix time.\n\
         # TYPE portcullis_certificate_not_after_seconds gauge\n",
    );
    for c in certs {
        let _ = writeln!(
            s,
            "portcullis_certificate_not_after_seconds{{kind=\"{}\",name=\"{}\",subject=\"{}\"}} {}",
            c.kind,
            label(&c.name),
            label(&c.subject),
            c.not_after
        );
    }
    s
}

/// Label values of `portcullis_requests_total` and the count: verdict,
/// outcome, status class (2 for 2xx, ...), n.
type RequestKey = (&'static str, &'static str, u16, u64);

/// The gateway's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    connections: AtomicU64,
    handshake_failures: AtomicU64,
    unknown_sni: AtomicU64,
    /// Per hostname; written once per new hostname, read per request.
    hosts: RwLock<HashMap<String, Arc<HostMetrics>>>,
    /// More counters appended to the exposition (egress listeners).
    sources: Mutex<Sources>,
}

/// Appends Prometheus text for counters kept elsewhere.
pub type Source = Box<dyn Fn(&mut String) + Send + Sync>;

#[derive(Default)]
struct Sources(Vec<Source>);

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} metrics sources", self.0.len())
    }
}

impl Metrics {
    pub(crate) fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn handshake_failed(&self, unknown_sni: bool) {
        if unknown_sni {
            self.unknown_sni.fetch_add(1, Ordering::Relaxed);
        } else {
            self.handshake_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn host(&self, hostname: &str) -> Arc<HostMetrics> {
        if let Some(h) = self
            .hosts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hostname)
        {
            return h.clone();
        }
        self.hosts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(hostname.to_owned())
            .or_default()
            .clone()
    }

    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn request(
        &self,
        hostname: &str,
        verdict: &'static str,
        outcome: &'static str,
        status: u16,
    ) {
        self.request_timed(hostname, verdict, outcome, status, None, None);
    }

    /// Counts a request and records its duration (to the response head)
    /// and, when it reached the origin, the origin's.
    pub(crate) fn request_timed(
        &self,
        hostname: &str,
        verdict: &'static str,
        outcome: &'static str,
        status: u16,
        duration: Option<Duration>,
        origin: Option<Duration>,
    ) {
        let h = self.host(hostname);
        {
            let key = (verdict, outcome, status / 100);
            let mut m = h.requests.lock().unwrap_or_else(PoisonError::into_inner);
            match m.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => m.push((key, 1)),
            }
        }
        if let Some(d) = duration {
            h.request_duration.observe(d);
        }
        if let Some(d) = origin {
            h.origin_duration.observe(d);
        }
    }

    /// Adds counters kept elsewhere (the egress listeners') to
    /// [`Metrics::render`].
    pub fn add_source(&self, source: Source) {
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .push(source);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP portcullis_connections_total TCP connections accepted on the TLS listener.\n\
             # TYPE portcullis_connections_total counter\n\
             portcullis_connections_total {}",
            self.connections.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP portcullis_handshake_failures_total TLS handshakes that failed, by cause.\n\
             # TYPE portcullis_handshake_failures_total counter\n\
             portcullis_handshake_failures_total{{cause=\"unknown_sni\"}} {}\n\
             portcullis_handshake_failures_total{{cause=\"other\"}} {}",
            self.unknown_sni.load(Ordering::Relaxed),
            self.handshake_failures.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP portcullis_requests_total HTTP requests, by hostname, client-certificate verdict, outcome and status class.\n\
             # TYPE portcullis_requests_total counter"
        );
        let hosts: BTreeMap<String, Arc<HostMetrics>> = self
            .hosts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (host, h) in &hosts {
            let mut m: Vec<RequestKey> = h
                .requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|((v, o, c), n)| (*v, *o, *c, *n))
                .collect();
            m.sort_unstable();
            for (verdict, outcome, class, n) in m {
                let _ = writeln!(
                    s,
                    "portcullis_requests_total{{hostname=\"{host}\",verdict=\"{verdict}\",outcome=\"{outcome}\",status=\"{class}xx\"}} {n}"
                );
            }
        }
        s.push_str(
            "# HELP portcullis_request_duration_seconds Time from a request to its response head, by hostname.\n\
             # TYPE portcullis_request_duration_seconds histogram\n",
        );
        for (host, h) in &hosts {
            h.request_duration
                .render(&mut s, "portcullis_request_duration_seconds", host);
        }
        s.push_str(
            "# HELP portcullis_origin_duration_seconds Time from sending a request to the origin to its response head, by hostname.\n\
             # TYPE portcullis_origin_duration_seconds histogram\n",
        );
        for (host, h) in &hosts {
            h.origin_duration
                .render(&mut s, "portcullis_origin_duration_seconds", host);
        }
        for source in self
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .iter()
        {
            source(&mut s);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.connection();
        m.handshake_failed(true);
        m.request("a.test", "valid", "origin", 200);
        m.request("a.test", "valid", "origin", 204);
        m.request("a.test", "none", "blocked", 403);
        let t = m.render();
        assert!(t.contains("portcullis_connections_total 1\n"), "{t}");
        assert!(t.contains("cause=\"unknown_sni\"} 1\n"), "{t}");
        assert!(
            t.contains(
                "{hostname=\"a.test\",verdict=\"valid\",outcome=\"origin\",status=\"2xx\"} 2\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("verdict=\"none\",outcome=\"blocked\",status=\"4xx\"} 1\n"),
            "{t}"
        );
    }
}
