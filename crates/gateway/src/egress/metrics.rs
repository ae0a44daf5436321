//! Egress counters, rendered after the gateway's on `/metrics`. Labels are
//! bounded: egress names come from the configuration, outcomes are a
//! closed set.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

/// Counters of every egress, kept across reloads.
#[derive(Debug, Default)]
pub struct EgressMetrics {
    /// (egress, outcome) → HTTP requests (http mode) or connections (tcp).
    requests: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// egress → TLS connections opened to upstreams (a pooled connection
    /// is counted once, however many requests it carries).
    handshakes: Mutex<BTreeMap<String, u64>>,
}

impl EgressMetrics {
    /// One request or connection ended with `outcome` (`ok` or an
    /// `UpstreamError` code).
    pub(crate) fn outcome(&self, egress: &str, outcome: &'static str) {
        let mut m = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *m.entry((egress.to_owned(), outcome)).or_insert(0) += 1;
    }

    /// One upstream TLS handshake completed.
    pub(crate) fn handshake(&self, egress: &str) {
        let mut m = self
            .handshakes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *m.entry(egress.to_owned()).or_insert(0) += 1;
    }

    /// Appends the Prometheus text exposition.
    pub fn render(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "# HELP portcullis_egress_requests_total Egress HTTP requests (http mode) or connections (tcp mode), by egress and outcome.\n\
             # TYPE portcullis_egress_requests_total counter"
        );
        let m = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        for ((egress, outcome), n) in m.iter() {
            let _ = writeln!(
                s,
                "portcullis_egress_requests_total{{egress=\"{egress}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        drop(m);
        let _ = writeln!(
            s,
            "# HELP portcullis_egress_upstream_handshakes_total TLS connections opened to upstreams, by egress.\n\
             # TYPE portcullis_egress_upstream_handshakes_total counter"
        );
        let m = self
            .handshakes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (egress, n) in m.iter() {
            let _ = writeln!(
                s,
                "portcullis_egress_upstream_handshakes_total{{egress=\"{egress}\"}} {n}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        let m = EgressMetrics::default();
        m.outcome("api", "ok");
        m.outcome("api", "ok");
        m.outcome("api", "upstream_tls");
        m.handshake("api");
        let mut s = String::new();
        m.render(&mut s);
        assert!(
            s.contains("portcullis_egress_requests_total{egress=\"api\",outcome=\"ok\"} 2\n"),
            "{s}"
        );
        assert!(
            s.contains("{egress=\"api\",outcome=\"upstream_tls\"} 1\n"),
            "{s}"
        );
        assert!(
            s.contains("portcullis_egress_upstream_handshakes_total{egress=\"api\"} 1\n"),
            "{s}"
        );
    }
}
