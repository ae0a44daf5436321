//! Counters of the data plane, rendered in the Prometheus text format.
//! Labels are bounded: hostnames come from the configuration (unknown SNI
//! is counted without its name), outcomes and verdicts are closed sets.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Label values of `portcullis_requests_total`: hostname, verdict,
/// outcome, status class (2 for 2xx, ...).
type RequestKey = (String, &'static str, &'static str, u16);

/// The gateway's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    connections: AtomicU64,
    handshake_failures: AtomicU64,
    unknown_sni: AtomicU64,
    /// (hostname, verdict, outcome, status class) → count.
    requests: Mutex<BTreeMap<RequestKey, u64>>,
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

    pub(crate) fn request(
        &self,
        hostname: &str,
        verdict: &'static str,
        outcome: &'static str,
        status: u16,
    ) {
        let mut m = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *m.entry((hostname.to_owned(), verdict, outcome, status / 100))
            .or_insert(0) += 1;
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
        let m = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        for ((host, verdict, outcome, class), n) in m.iter() {
            let _ = writeln!(
                s,
                "portcullis_requests_total{{hostname=\"{host}\",verdict=\"{verdict}\",outcome=\"{outcome}\",status=\"{class}xx\"}} {n}"
            );
        }
        drop(m);
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
