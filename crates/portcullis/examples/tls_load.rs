//! mTLS load generator for the gateway benchmark (`bench/gateway.sh`): the
//! same load against `portcullis serve` and against nginx with
//! `ssl_verify_client on`.
//!
//! Modes (all TLS 1.3 with a client certificate, rustls with aws-lc-rs, no
//! session resumption, loopback only):
//! - `handshake`: a new connection per request: full handshake, one
//!   `GET / HTTP/1.1` with `Connection: close`, the whole response read;
//! - `keepalive`: `--concurrency` keep-alive connections share `--requests`
//!   requests; with `--rate R` the requests are sent on a fixed schedule
//!   (request *i* at *i/R* s) and each latency is measured from its scheduled
//!   time, so a stalled server is not hidden by a stalled client;
//! - `flood`: handshakes as fast as possible with the given (invalid)
//!   certificate, no request sent; each attempt ends with the client's
//!   `close_notify` and waits for the server's alert or close, so the server
//!   really verifies the certificate. `ok` counts the handshakes the server
//!   went through, `rejected_in_tls` those it refused with an alert (nginx
//!   finishes the handshake and refuses at the HTTP level instead).
//!
//! Every response must be `200` (anything else is an error). A run is bounded
//! by `--requests` and `--max-seconds`; `--seconds S` makes it a timed run
//! instead (stop sending after S s). One JSON line on stdout:
//!
//! ```text
//! {"mode":"keepalive","requests":20000,"ok":20000,"errors":0,"unsent":0,"seconds":2.1,"per_second":9500.0,"p50_ms":0.8,"p99_ms":2.9,"client_cpu_ms":900.0,"rejected_in_tls":0}
//! ```
//!
//! ```text
//! cargo run --release -p portcullis --example tls_load -- --mode handshake \
//!     --addr 127.0.0.1:8443 --sni bench.test --ca root.pem --cert client.pem \
//!     --key client-key.pem --requests 2000 --concurrency 8
//! cargo run --release -p portcullis --example tls_load -- --free-port
//! ```
//!
//! The client offers only X25519 for key exchange by default (`--kx default`
//! offers rustls's defaults, X25519MLKEM768 first): X25519 is what nginx 1.22
//! with OpenSSL 3.0 negotiates, so both servers do the same key exchange.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::Resumption;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

#[path = "../../../bench/loadgen_common.rs"]
mod loadgen_common;
use loadgen_common::{own_cpu_ms, percentile_ms, round3, run_to_exit};

const USAGE: &str = "\
usage: tls_load --mode handshake|keepalive|flood --addr 127.0.0.1:PORT --sni NAME
                --ca ROOT.pem --cert CHAIN.pem --key KEY.pem
                [--requests N] [--concurrency C] [--rate R] [--seconds S]
                [--max-seconds S] [--threads T] [--path P] [--kx x25519|default]
       tls_load --free-port

  --mode         handshake: new TLS connection per request (Connection: close)
                 keepalive: C keep-alive connections share N requests
                 flood: handshakes only, as fast as possible, until --seconds
  --addr         server address, loopback only
  --sni          server name sent and verified (the server certificate's SAN)
  --ca           PEM root(s) that sign the server certificate
  --cert         PEM client chain, leaf first (leaf + intermediate)
  --key          PEM client private key (PKCS#8 or SEC1)
  --requests     requests (handshake attempts in flood mode) to send (default
                 1000; unlimited with --seconds)
  --concurrency  concurrent connections (default 8)
  --rate         keepalive: send at this fixed rate (requests/s), latency
                 measured from each request's scheduled time
  --seconds      a timed run: stop sending after S seconds (required for flood)
  --max-seconds  hard bound: stop sending after this many seconds (default 120)
  --threads      load generator worker threads (default 1: leave the cores to the server)
  --path         request path (default /)
  --kx           key exchange groups offered: x25519 (default) or rustls's default
  --free-port    print a free TCP port on 127.0.0.1 and exit";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LoadMode {
    Handshake,
    Keepalive,
    Flood,
}

impl LoadMode {
    fn name(self) -> &'static str {
        match self {
            LoadMode::Handshake => "handshake",
            LoadMode::Keepalive => "keepalive",
            LoadMode::Flood => "flood",
        }
    }
}

/// What was typed, validated.
#[derive(Debug)]
struct Args {
    mode: LoadMode,
    addr: SocketAddr,
    sni: ServerName<'static>,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    requests: usize,
    concurrency: usize,
    rate: Option<f64>,
    seconds: Option<f64>,
    max_seconds: f64,
    threads: usize,
    path: String,
    x25519_only: bool,
}

enum Command {
    Load(Box<Args>),
    FreePort,
}

fn positive_f64(flag: &str, v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| format!("{flag}: not a positive number: {v:?}"))
}

fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut mode = None;
    let mut addr = None;
    let mut sni = None;
    let mut ca = None;
    let mut cert = None;
    let mut key = None;
    let mut requests = None;
    let mut concurrency = 8usize;
    let mut rate = None;
    let mut seconds = None;
    let mut max_seconds = 120f64;
    let mut threads = 1usize;
    let mut path = "/".to_string();
    let mut x25519_only = true;

    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--free-port" {
            return Ok(Command::FreePort);
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
            "--mode" => {
                mode = Some(match value.as_str() {
                    "handshake" => LoadMode::Handshake,
                    "keepalive" => LoadMode::Keepalive,
                    "flood" => LoadMode::Flood,
                    other => return Err(format!("--mode: unknown mode {other:?}")),
                })
            }
            "--addr" => {
                let a: SocketAddr = value
                    .parse()
                    .map_err(|_| format!("--addr: not IP:PORT: {value:?}"))?;
                if !a.ip().is_loopback() || a.port() == 0 {
                    return Err(format!("--addr: loopback address with a port only: {a}"));
                }
                addr = Some(a);
            }
            "--sni" => {
                sni = Some(
                    ServerName::try_from(value.clone())
                        .map_err(|_| format!("--sni: not a server name: {value:?}"))?,
                )
            }
            "--ca" => ca = Some(PathBuf::from(value)),
            "--cert" => cert = Some(PathBuf::from(value)),
            "--key" => key = Some(PathBuf::from(value)),
            "--requests" => requests = Some(num(&value)?),
            "--concurrency" => concurrency = num(&value)?,
            "--rate" => rate = Some(positive_f64(&flag, &value)?),
            "--seconds" => seconds = Some(positive_f64(&flag, &value)?),
            "--max-seconds" => max_seconds = positive_f64(&flag, &value)?,
            "--threads" => threads = num(&value)?,
            "--path" => {
                if !value.starts_with('/') || value.bytes().any(|b| b.is_ascii_whitespace()) {
                    return Err(format!(
                        "--path: an absolute path without spaces: {value:?}"
                    ));
                }
                path = value;
            }
            "--kx" => {
                x25519_only = match value.as_str() {
                    "x25519" => true,
                    "default" => false,
                    other => return Err(format!("--kx: x25519 or default, not {other:?}")),
                }
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }

    let mode = mode.ok_or("--mode is required")?;
    if mode == LoadMode::Flood && seconds.is_none() {
        return Err("--mode flood needs --seconds".into());
    }
    if rate.is_some() && mode != LoadMode::Keepalive {
        return Err("--rate applies to --mode keepalive only".into());
    }
    if concurrency == 0 || threads == 0 {
        return Err("--concurrency and --threads must be at least 1".into());
    }
    let requests = match (requests, seconds) {
        (Some(n), _) => n,
        (None, Some(_)) => usize::MAX,
        (None, None) => 1000,
    };
    Ok(Command::Load(Box::new(Args {
        mode,
        addr: addr.ok_or("--addr is required")?,
        sni: sni.ok_or("--sni is required")?,
        ca: ca.ok_or("--ca is required")?,
        cert: cert.ok_or("--cert is required")?,
        key: key.ok_or("--key is required")?,
        requests,
        concurrency,
        rate,
        seconds,
        max_seconds,
        threads,
        path,
        x25519_only,
    })))
}

/// TLS 1.3 only, the client chain presented, no resumption: every connection
/// is a full handshake.
fn client_config(args: &Args) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&args.ca)
        .map_err(|e| format!("--ca {}: {e}", args.ca.display()))?
    {
        let cert = cert.map_err(|e| format!("--ca {}: {e}", args.ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("--ca {}: {e}", args.ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("--ca {}: no certificate", args.ca.display()));
    }
    let chain = CertificateDer::pem_file_iter(&args.cert)
        .map_err(|e| format!("--cert {}: {e}", args.cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--cert {}: {e}", args.cert.display()))?;
    if chain.is_empty() {
        return Err(format!("--cert {}: no certificate", args.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&args.key)
        .map_err(|e| format!("--key {}: {e}", args.key.display()))?;

    let mut provider = aws_lc_rs::default_provider();
    if args.x25519_only {
        provider.kx_groups = vec![aws_lc_rs::kx_group::X25519];
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS 1.3 client config: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("--cert/--key: {e}"))?;
    config.resumption = Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What one worker saw.
#[derive(Default)]
struct Tally {
    ok: usize,
    errors: usize,
    /// flood: handshakes the server refused in TLS (the rest it completed).
    rejected_in_tls: usize,
    latencies: Vec<Duration>,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

struct Shared {
    args: Args,
    connector: TlsConnector,
    next: AtomicUsize,
    start: Instant,
    /// `--max-seconds`: requests not sent by then are reported as unsent.
    deadline: Instant,
    /// `--seconds`: the planned end of a timed run.
    stop_at: Option<Instant>,
}

impl Shared {
    /// The next request to send and the time it is due, or `None` when all
    /// were taken or time is up.
    fn take(&self) -> Option<Instant> {
        let now = Instant::now();
        if now >= self.deadline || self.stop_at.is_some_and(|s| now >= s) {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.args.requests {
            return None;
        }
        Some(match self.args.rate {
            Some(r) => self.start + Duration::from_secs_f64(i as f64 / r),
            None => now,
        })
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    async fn tls_connect(&self) -> Result<TlsStream<TcpStream>, String> {
        let addr = self.args.addr;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        self.connector
            .connect(self.args.sni.clone(), tcp)
            .await
            .map_err(|e| format!("TLS handshake with {addr}: {e}"))
    }
}

/// `Ok(())` for `HTTP/1.x 200`, the status line otherwise.
fn check_status(response: &[u8]) -> Result<(), String> {
    let line_end = response
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(response.len().min(80));
    let line = &response[..line_end];
    if line.starts_with(b"HTTP/1.") && line.get(8..13) == Some(b" 200 ".as_slice())
        || line == b"HTTP/1.1 200"
    {
        Ok(())
    } else if response.is_empty() {
        Err("empty response".into())
    } else {
        Err(format!("response {:?}", String::from_utf8_lossy(line)))
    }
}

/// One full handshake, one request with `Connection: close`, the response
/// read to its end.
async fn handshake_once(shared: &Shared, request: &[u8]) -> Result<(), String> {
    let mut tls = shared.tls_connect().await?;
    tls.write_all(request)
        .await
        .map_err(|e| format!("sending request: {e}"))?;
    let mut response = Vec::with_capacity(1024);
    match tls.read_to_end(&mut response).await {
        Ok(_) => {}
        // A server that closes without close_notify: the response is whole anyway.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(e) => return Err(format!("reading response: {e}")),
    }
    check_status(&response)
}

async fn handshake_worker(shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        shared.args.path,
        shared.args.sni.to_str()
    )
    .into_bytes();
    while let Some(due) = shared.take() {
        let attempt = tokio::time::timeout(shared.remaining(), handshake_once(&shared, &request));
        match attempt.await {
            Ok(Ok(())) => {
                tally.ok += 1;
                tally.latencies.push(due.elapsed());
            }
            Ok(Err(e)) => tally.error(e),
            Err(_) => tally.error("timed out at --max-seconds".into()),
        }
    }
    tally
}

async fn http_connect(shared: &Shared) -> Result<SendRequest<Empty<Bytes>>, String> {
    let tls = shared.tls_connect().await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(async move {
        // The connection ends when the server closes it or the sender is dropped.
        let _ = conn.await;
    });
    Ok(sender)
}

async fn keepalive_once(
    shared: &Shared,
    sender: &mut SendRequest<Empty<Bytes>>,
) -> Result<(), String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection not ready: {e}"))?;
    let req = hyper::Request::get(shared.args.path.as_str())
        .header(hyper::header::HOST, shared.args.sni.to_str().as_ref())
        .body(Empty::new())
        .map_err(|e| format!("building request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("sending request: {e}"))?;
    let status = resp.status();
    resp.into_body()
        .collect()
        .await
        .map_err(|e| format!("reading response: {e}"))?;
    if status == hyper::StatusCode::OK {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

async fn keepalive_worker(shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    while let Some(due) = shared.take() {
        tokio::time::sleep_until(due.into()).await;
        let attempt = async {
            let s = match sender.as_mut() {
                Some(s) if !s.is_closed() => s,
                _ => sender.insert(http_connect(&shared).await?),
            };
            keepalive_once(&shared, s).await
        };
        match tokio::time::timeout(shared.remaining(), attempt).await {
            Ok(Ok(())) => {
                tally.ok += 1;
                tally.latencies.push(due.elapsed());
            }
            Ok(Err(e)) => {
                tally.error(e);
                sender = None; // start over on a fresh connection
            }
            Err(_) => tally.error("timed out at --max-seconds".into()),
        }
    }
    tally
}

/// How a flood handshake ended.
enum Verdict {
    /// The server refused the certificate in the handshake (an alert).
    RejectedInTls,
    /// The server finished the handshake; whatever it decides about the
    /// certificate it says at the HTTP level (nginx answers 400, a gateway in
    /// enforce mode its block status), which the flood does not ask for.
    Completed,
}

/// One handshake with the (invalid) certificate. In TLS 1.3 the client is
/// done before the server has looked at its certificate, so the flood then
/// sends `close_notify` and waits for the server to close: the server has
/// verified the certificate by then, and no request is sent.
async fn flood_once(shared: &Shared) -> Result<Verdict, String> {
    let addr = shared.args.addr;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let mut tls = match shared.connector.connect(shared.args.sni.clone(), tcp).await {
        Ok(tls) => tls,
        // Refused before the client was done: an alert, a reset or a close.
        Err(e) if is_alert(&e) || is_dropped(&e) => return Ok(Verdict::RejectedInTls),
        Err(e) => return Err(format!("TLS handshake with {addr}: {e}")),
    };
    let mut sink = [0u8; 512];
    let verdict = async {
        if let Err(e) = tls.shutdown().await {
            return if is_alert(&e) {
                Ok(Verdict::RejectedInTls)
            } else if is_dropped(&e) {
                Ok(Verdict::Completed)
            } else {
                Err(format!("sending close_notify: {e}"))
            };
        }
        loop {
            match tls.read(&mut sink).await {
                Ok(0) => return Ok(Verdict::Completed),
                Ok(_) => continue, // a response nobody asked for: drain it
                Err(e) if is_alert(&e) => return Ok(Verdict::RejectedInTls),
                // Closed without its own close_notify: done all the same.
                Err(e) if is_dropped(&e) => return Ok(Verdict::Completed),
                Err(e) => return Err(format!("waiting for the server to close: {e}")),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), verdict)
        .await
        .map_err(|_| "the server did not close within 5 s after close_notify".to_string())?
}

/// A fatal alert received from the server.
fn is_alert(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| matches!(tls, rustls::Error::AlertReceived(_)))
}

/// The connection closed or reset by the server.
fn is_dropped(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe
    )
}

async fn flood_worker(shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    while let Some(due) = shared.take() {
        match tokio::time::timeout(shared.remaining(), flood_once(&shared)).await {
            Ok(Ok(verdict)) => {
                tally.ok += 1;
                if matches!(verdict, Verdict::RejectedInTls) {
                    tally.rejected_in_tls += 1;
                }
                tally.latencies.push(due.elapsed());
            }
            Ok(Err(e)) => tally.error(e),
            Err(_) => tally.error("timed out at --max-seconds".into()),
        }
    }
    tally
}

async fn run(args: Args) -> Result<bool, String> {
    let connector = TlsConnector::from(client_config(&args)?);
    let cpu_before = own_cpu_ms();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        stop_at: args.seconds.map(|s| start + Duration::from_secs_f64(s)),
        deadline: start + Duration::from_secs_f64(args.max_seconds),
        connector,
        next: AtomicUsize::new(0),
        start,
        args,
    });
    let args = &shared.args;

    let workers: Vec<_> = (0..args.concurrency.min(args.requests.max(1)))
        .map(|_| match args.mode {
            LoadMode::Handshake => tokio::spawn(handshake_worker(shared.clone())),
            LoadMode::Keepalive => tokio::spawn(keepalive_worker(shared.clone())),
            LoadMode::Flood => tokio::spawn(flood_worker(shared.clone())),
        })
        .collect();
    let mut total = Tally::default();
    for w in workers {
        let t = w.await.map_err(|e| format!("worker failed: {e}"))?;
        total.ok += t.ok;
        total.errors += t.errors;
        total.rejected_in_tls += t.rejected_in_tls;
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

    let sent = total.ok + total.errors;
    // A timed run sends what fits in its time; only a count cut short by
    // --max-seconds leaves requests unsent.
    let (requests, unsent) = if args.seconds.is_some() && args.requests == usize::MAX {
        (sent, 0)
    } else {
        (args.requests, args.requests.saturating_sub(sent))
    };
    let per_second = if seconds > 0.0 {
        total.ok as f64 / seconds
    } else {
        0.0
    };
    // Written by hand to keep the fields in this order.
    println!(
        r#"{{"mode":"{}","requests":{},"ok":{},"errors":{},"unsent":{},"seconds":{},"per_second":{},"p50_ms":{},"p99_ms":{},"client_cpu_ms":{},"rejected_in_tls":{}}}"#,
        args.mode.name(),
        requests,
        total.ok,
        total.errors,
        unsent,
        round3(seconds),
        round3(per_second),
        round3(percentile_ms(&total.latencies, 50.0)),
        round3(percentile_ms(&total.latencies, 99.0)),
        client_cpu_ms,
        total.rejected_in_tls,
    );
    if let Some(e) = &total.first_error {
        eprintln!("tls_load: {} error(s); first: {e}", total.errors);
    }
    if unsent > 0 {
        eprintln!(
            "tls_load: {unsent} request(s) not sent: --max-seconds {} reached",
            args.max_seconds
        );
    }
    Ok(total.errors == 0 && unsent == 0)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Command::FreePort) => {
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
        Ok(Command::Load(args)) => *args,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("tls_load: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };

    run_to_exit("tls_load", args.threads, run(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    const BASE: &str = "--addr 127.0.0.1:8443 --sni bench.test --ca r --cert c --key k";

    #[test]
    fn loopback_only_and_flood_needs_seconds() {
        let ok = parse_args(argv(&format!("--mode handshake {BASE}")));
        assert!(matches!(ok, Ok(Command::Load(_))));
        let remote = "--mode handshake --addr 10.0.0.1:8443 --sni a --ca r --cert c --key k";
        assert!(parse_args(argv(remote)).is_err());
        assert!(parse_args(argv(&format!("--mode flood {BASE}"))).is_err());
        assert!(parse_args(argv(&format!("--mode flood {BASE} --seconds 2"))).is_ok());
        assert!(parse_args(argv(&format!("--mode handshake {BASE} --rate 5"))).is_err());
    }

    #[test]
    fn status_lines() {
        assert!(check_status(b"HTTP/1.1 200 OK\r\n\r\n").is_ok());
        assert!(check_status(b"HTTP/1.0 200 OK\r\n").is_ok());
        assert!(check_status(b"HTTP/1.1 403 Forbidden\r\n").is_err());
        assert!(check_status(b"HTTP/1.1 2000\r\n").is_err());
        assert!(check_status(b"").is_err());
    }

    #[test]
    fn percentiles() {
        let v: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&v, 50.0), 50.0);
        assert_eq!(percentile_ms(&v, 99.0), 99.0);
    }
}
