//! HTTP signing load generator for a CFSSL-compatible CA (`portcullis ca serve`
//! or the stock `cfssl serve`). Used by `bench/ca-sign.sh`.
//!
//! It generates a few P-256 CSRs up front, then sends exactly `--requests` POSTs
//! to `/api/v1/cfssl/sign` (or `/api/v1/cfssl/authsign` with `--authsign-key`)
//! over `--concurrency` keep-alive HTTP/1.1 connections, checks that every
//! answer is `"success":true` with a certificate, and prints one JSON line
//! (`client_cpu_ms` is the generator's own CPU time during the run):
//!
//! ```text
//! {"requests":5000,"ok":5000,"errors":0,"unsent":0,"seconds":1.2,"per_second":4100.0,"p50_ms":1.8,"p99_ms":4.9,"client_cpu_ms":310.5}
//! ```
//!
//! ```text
//! cargo run --release -p ca-api --example sign_load -- \
//!     --url http://127.0.0.1:8888 --requests 5000 --concurrency 8 --profile client
//! cargo run --release -p ca-api --example sign_load -- --free-port   # prints a free loopback port
//! ```
//!
//! The exit status is 0 only when every request succeeded. The generator is
//! loopback-only on purpose: it is a benchmark tool, not a stress tool for
//! other people's servers.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

#[path = "../../../bench/loadgen_common.rs"]
mod loadgen_common;
use loadgen_common::{own_cpu_ms, percentile_ms, round3, run_to_exit};

const USAGE: &str = "\
usage: sign_load --url http://127.0.0.1:PORT [--requests N] [--concurrency C]
                 [--profile P] [--csr FILE] [--csrs K] [--authsign-key HEX]
                 [--max-seconds S] [--threads T]
       sign_load --free-port

  --url            base URL of the CA, loopback only (http://127.0.0.1:PORT)
  --requests       number of signing requests to send (default 1000)
  --concurrency    concurrent keep-alive connections (default 8)
  --profile        signing profile (default client)
  --csr            PEM CSR to send instead of generated P-256 CSRs
  --csrs           how many P-256 CSRs to generate and rotate through (default 4)
  --authsign-key   hex HMAC key: use /authsign with a token instead of /sign
  --max-seconds    stop sending after this many seconds (default 120)
  --threads        load generator worker threads (default 1: leave the cores to the server)
  --free-port      print a free TCP port on 127.0.0.1 and exit";

/// What was typed, validated.
struct Args {
    addr: SocketAddr,
    requests: usize,
    concurrency: usize,
    profile: String,
    csr_file: Option<String>,
    csrs: usize,
    authsign_key: Option<Vec<u8>>,
    max_seconds: f64,
    threads: usize,
}

enum Mode {
    Load(Args),
    FreePort,
}

fn parse_args() -> Result<Mode, String> {
    let mut url = None;
    let mut requests = 1000usize;
    let mut concurrency = 8usize;
    let mut profile = "client".to_string();
    let mut csr_file = None;
    let mut csrs = 4usize;
    let mut authsign_key = None;
    let mut max_seconds = 120f64;
    let mut threads = 1usize;

    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--free-port" {
            return Ok(Mode::FreePort);
        }
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| -> Result<usize, String> {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: not a number: {v:?}"))
        };
        match flag.as_str() {
            "--url" => url = Some(value),
            "--requests" => requests = num(&value)?,
            "--concurrency" => concurrency = num(&value)?,
            "--profile" => profile = value,
            "--csr" => csr_file = Some(value),
            "--csrs" => csrs = num(&value)?,
            "--authsign-key" => {
                let key = hex::decode(value.trim())
                    .map_err(|e| format!("--authsign-key: not hex: {e}"))?;
                authsign_key = Some(key);
            }
            "--max-seconds" => {
                max_seconds = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--max-seconds: not a positive number: {value:?}"))?
            }
            "--threads" => threads = num(&value)?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }

    let url = url.ok_or("--url is required")?;
    let addr = parse_loopback_url(&url)?;
    if concurrency == 0 || csrs == 0 || threads == 0 {
        return Err("--concurrency, --csrs and --threads must be at least 1".into());
    }
    Ok(Mode::Load(Args {
        addr,
        requests,
        concurrency,
        profile,
        csr_file,
        csrs,
        authsign_key,
        max_seconds,
        threads,
    }))
}

/// Accepts `http://127.0.0.1:PORT` (an optional trailing `/`) and nothing else.
fn parse_loopback_url(url: &str) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--url must start with http://: {url:?}"))?;
    let hostport = rest.trim_end_matches('/');
    let hostport = match hostport.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => hostport.to_string(),
    };
    let addr: SocketAddr = hostport
        .parse()
        .map_err(|_| format!("--url must be http://127.0.0.1:PORT: {url:?}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("--url must point at a loopback address: {url:?}"));
    }
    Ok(addr)
}

/// One request body per CSR, serialized once so the load loop only clones `Bytes`.
fn request_bodies(args: &Args) -> Result<Vec<Bytes>, String> {
    let csr_pems = match &args.csr_file {
        Some(path) => {
            let pem = std::fs::read_to_string(path).map_err(|e| format!("--csr {path}: {e}"))?;
            if !pem.contains("CERTIFICATE REQUEST") {
                return Err(format!("--csr {path}: no PEM CERTIFICATE REQUEST inside"));
            }
            vec![pem]
        }
        None => (0..args.csrs)
            .map(|i| generate_csr(i).map_err(|e| format!("generating a P-256 CSR: {e}")))
            .collect::<Result<Vec<_>, _>>()?,
    };

    Ok(csr_pems
        .into_iter()
        .map(|pem| {
            let sign = serde_json::json!({
                "certificate_request": pem,
                "profile": args.profile,
            })
            .to_string();
            match &args.authsign_key {
                None => Bytes::from(sign),
                Some(key) => {
                    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
                    let token = hmac::sign(&key, sign.as_bytes());
                    let timestamp = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    let body = serde_json::json!({
                        "token": B64.encode(token.as_ref()),
                        "request": B64.encode(sign.as_bytes()),
                        "timestamp": timestamp,
                    });
                    Bytes::from(body.to_string())
                }
            }
        })
        .collect())
}

fn generate_csr(i: usize) -> Result<String, rcgen::Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("sign-load-client-{i}"));
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Portcullis bench");
    params.serialize_request(&key)?.pem()
}

/// What one worker saw.
#[derive(Default)]
struct Tally {
    ok: usize,
    errors: usize,
    latencies: Vec<Duration>,
    first_error: Option<String>,
}

struct Shared {
    addr: SocketAddr,
    path: &'static str,
    bodies: Vec<Bytes>,
    requests: usize,
    next: AtomicUsize,
    deadline: Instant,
}

impl Shared {
    /// The index of the next request to send, or `None` when all were taken or time is up.
    fn take(&self) -> Option<usize> {
        if Instant::now() >= self.deadline {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.requests).then_some(i)
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    tokio::spawn(async move {
        // The connection ends when the server closes it or the sender is dropped.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request on `sender` and checks the CFSSL envelope.
async fn sign_once(
    shared: &Shared,
    sender: &mut SendRequest<Full<Bytes>>,
    body: Bytes,
) -> Result<(), String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection not ready: {e}"))?;
    let req = hyper::Request::post(shared.path)
        .header(hyper::header::HOST, shared.addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|e| format!("building request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("sending request: {e}"))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading response: {e}"))?
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "HTTP {status}: response is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )
    })?;
    let success = v.get("success").and_then(|s| s.as_bool()) == Some(true);
    let has_cert = v
        .pointer("/result/certificate")
        .and_then(|c| c.as_str())
        .is_some_and(|c| c.contains("BEGIN CERTIFICATE"));
    if success && has_cert && status.is_success() {
        Ok(())
    } else {
        let errors = v.get("errors").map(|e| e.to_string()).unwrap_or_default();
        Err(format!(
            "HTTP {status}: success={success} certificate={has_cert} errors={errors}"
        ))
    }
}

async fn worker(shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    while let Some(i) = shared.take() {
        let body = shared.bodies[i % shared.bodies.len()].clone();
        let started = Instant::now();
        let remaining = shared.deadline.saturating_duration_since(started);
        let attempt = async {
            let s = match sender.as_mut() {
                Some(s) if !s.is_closed() => s,
                _ => sender.insert(connect(shared.addr).await?),
            };
            sign_once(&shared, s, body).await
        };
        let result = match tokio::time::timeout(remaining, attempt).await {
            Ok(r) => r,
            Err(_) => Err("timed out at --max-seconds".to_string()),
        };
        match result {
            Ok(()) => {
                tally.ok += 1;
                tally.latencies.push(started.elapsed());
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
                // Start over on a fresh connection after any failure.
                sender = None;
            }
        }
    }
    tally
}

async fn run(args: Args) -> Result<bool, String> {
    let bodies = request_bodies(&args)?;
    let path = if args.authsign_key.is_some() {
        "/api/v1/cfssl/authsign"
    } else {
        "/api/v1/cfssl/sign"
    };
    let cpu_before = own_cpu_ms();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        addr: args.addr,
        path,
        bodies,
        requests: args.requests,
        next: AtomicUsize::new(0),
        deadline: start + Duration::from_secs_f64(args.max_seconds),
    });

    let workers: Vec<_> = (0..args.concurrency.min(args.requests.max(1)))
        .map(|_| tokio::spawn(worker(shared.clone())))
        .collect();
    let mut total = Tally::default();
    for w in workers {
        let t = w.await.map_err(|e| format!("worker failed: {e}"))?;
        total.ok += t.ok;
        total.errors += t.errors;
        total.latencies.extend(t.latencies);
        if total.first_error.is_none() {
            total.first_error = t.first_error;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let client_cpu_ms = match (cpu_before, own_cpu_ms()) {
        (Some(b), Some(a)) => round3(a - b).to_string(),
        _ => "null".to_string(),
    };
    total.latencies.sort_unstable();

    let unsent = args.requests.saturating_sub(total.ok + total.errors);
    let per_second = if seconds > 0.0 {
        total.ok as f64 / seconds
    } else {
        0.0
    };
    // Written by hand to keep the fields in this order.
    let line = format!(
        r#"{{"requests":{},"ok":{},"errors":{},"unsent":{},"seconds":{},"per_second":{},"p50_ms":{},"p99_ms":{},"client_cpu_ms":{}}}"#,
        args.requests,
        total.ok,
        total.errors,
        unsent,
        round3(seconds),
        round3(per_second),
        round3(percentile_ms(&total.latencies, 50.0)),
        round3(percentile_ms(&total.latencies, 99.0)),
        client_cpu_ms,
    );
    println!("{line}");
    if let Some(e) = &total.first_error {
        eprintln!("sign_load: {} error(s); first: {e}", total.errors);
    }
    if unsent > 0 {
        eprintln!(
            "sign_load: {unsent} request(s) not sent: --max-seconds {} reached",
            args.max_seconds
        );
    }
    Ok(total.errors == 0 && unsent == 0)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Mode::FreePort) => {
            // The kernel picks an ephemeral port; the caller binds it right after.
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .expect("binding 127.0.0.1:0 to find a free port");
            let port = listener
                .local_addr()
                .expect("reading the bound address")
                .port();
            println!("{port}");
            return ExitCode::SUCCESS;
        }
        Ok(Mode::Load(args)) => args,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("sign_load: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };

    run_to_exit("sign_load", args.threads, run(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls() {
        assert!(parse_loopback_url("http://127.0.0.1:8888").is_ok());
        assert!(parse_loopback_url("http://127.0.0.1:8888/").is_ok());
        assert!(parse_loopback_url("http://localhost:8888").is_ok());
        assert!(parse_loopback_url("http://10.0.0.1:8888").is_err());
        assert!(parse_loopback_url("https://127.0.0.1:8888").is_err());
        assert!(parse_loopback_url("http://127.0.0.1").is_err());
    }

    #[test]
    fn percentiles() {
        let v: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&v, 50.0), 50.0);
        assert_eq!(percentile_ms(&v, 99.0), 99.0);
        assert_eq!(percentile_ms(&[], 99.0), 0.0);
    }
}
