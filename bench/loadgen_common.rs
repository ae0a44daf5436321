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

/// Runs a load generator's main future on a tokio runtime of `threads`
/// worker threads (1 = current-thread) and maps its outcome to the exit
/// code: 0 all requests succeeded, 1 some failed, 2 could not run.
pub fn run_to_exit(
    name: &str,
    threads: usize,
    main: impl std::future::Future<Output = Result<bool, String>>,
) -> std::process::ExitCode {
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: cannot build the tokio runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(main) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(msg) => {
            eprintln!("{name}: {msg}");
            std::process::ExitCode::from(2)
        }
    }
}
