//! Helpers shared by the load generators (`crates/ca-api/examples/sign_load.rs`
//! and `crates/portcullis/examples/tls_load.rs`), included by `#[path]`.

use std::time::Duration;

/// The p-th percentile (nearest rank) of sorted latencies, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    sorted[idx].as_secs_f64() * 1000.0
}

/// CPU time this process has used so far, in milliseconds: the sum over its
/// threads of `/proc/self/task/*/schedstat` (nanoseconds on CPU). `None` where
/// procfs is not available. Lets a run show whether the load generator, which
/// shares the cores with the server, was itself the bottleneck.
pub fn own_cpu_ms() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e6)
}

/// Rounds to three decimals for the JSON line.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
