//! Hostile HTTP through the gateway to a real nginx origin: request
//! smuggling attempts (CL+TE, duplicate Content-Length, obs-fold, bad
//! chunk sizes...) and slow-read clients.
//!
//! The smuggling oracle: every request nginx logs is one the gateway
//! logged itself (same paths, same order), no request nginx sees is the
//! smuggled `/smuggled`, and every attack is either refused with 400 or
//! read one unambiguous way. Requests are written raw over TLS (rustls
//! client in the test), since curl will not send malformed requests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::common::*;
use crate::gateway::Env;
use crate::gateway_hostile::{gateway_memory_kib, MEMORY_CEILING_KIB};

/// nginx on a free port as the origin of every hostname: `/` answers
/// 200 (reading and discarding any body), `/big` serves a 32 MiB file.
/// Each request is logged as `<uri> <status> <request_length>`.
struct Nginx {
    _guard: ChildGuard,
    port: u16,
}

const BIG_BYTES: usize = 32 * 1024 * 1024;

fn start_nginx(dir: &Path) -> Nginx {
    need("nginx");
    let port = free_port();
    let root = dir.join("nginx");
    std::fs::create_dir_all(root.join("logs")).expect("mkdir");
    std::fs::create_dir_all(root.join("www")).expect("mkdir");
    std::fs::write(root.join("www/big"), vec![b'x'; BIG_BYTES]).expect("big file");
    let d = root.display();
    write(
        &root,
        "nginx.conf",
        &format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
  log_format paths '$request_uri $status $request_length';
  access_log {d}/access.log paths;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location = /big {{ root {d}/www; }}
    location / {{
      default_type text/plain;
      return 200 "origin saw $request_uri\n";
    }}
  }}
}}
"#
        ),
    );
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&root)
        .arg("-c")
        .arg(root.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nginx");
    let mut g = ChildGuard(Some(child));
    wait_port(port, &mut g);
    Nginx { _guard: g, port }
}

/// The gateway (three hostnames, as in gateway.rs) in front of nginx.
fn start() -> (Env, Nginx) {
    let mut nginx = None;
    let env = Env::start_with(|dir, port, origin| {
        let n = start_nginx(dir);
        let toml = crate::gateway::gateway_toml(port, origin).replace(
            &format!("http://127.0.0.1:{origin}"),
            &format!("http://127.0.0.1:{}", n.port),
        );
        nginx = Some(n);
        toml
    });
    (env, nginx.expect("nginx started"))
}

fn nginx_log(env: &Env) -> Vec<String> {
    std::fs::read_to_string(env.path().join("nginx/access.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Paths of the requests the gateway handled (its access log), whatever
/// the outcome.
fn gateway_forwarded(env: &Env) -> Vec<String> {
    std::fs::read_to_string(env.path().join("access.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["path"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn tls_config(env: &Env) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(env.path().join("ca.pem")).expect("ca.pem") {
        roots.add(c.expect("cert")).expect("root");
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// Writes `bytes` on a TLS connection to `off.acme.test` and reads what
/// comes back until the gateway closes the connection (at most 20 s).
fn raw_exchange(env: &Env, cfg: &Arc<rustls::ClientConfig>, bytes: &[u8]) -> String {
    let tcp = TcpStream::connect(("127.0.0.1", env.port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let name = ServerName::try_from("off.acme.test").expect("name");
    let conn = rustls::ClientConnection::new(cfg.clone(), name).expect("client");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let _ = tls.write_all(bytes);
    let _ = tls.flush();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Status codes of the responses in a raw HTTP/1.1 byte stream.
fn statuses(raw: &str) -> Vec<u16> {
    raw.split("HTTP/1.1 ")
        .skip(1)
        .filter_map(|s| s.get(..3)?.parse().ok())
        .collect()
}

const HOST: &str = "Host: off.acme.test\r\n";
/// The request a smuggling attack tries to hide inside the first one.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: off.acme.test\r\n\r\n";
/// A legitimate last request that closes the connection, so each attack
/// ends quickly when the gateway keeps reading.
const LAST: &str = "GET /last HTTP/1.1\r\nHost: off.acme.test\r\nConnection: close\r\n\r\n";

/// (name, bytes) of every attack.
fn attacks() -> Vec<(&'static str, String)> {
    let post =
        |headers: &str, body: &str| format!("POST /first HTTP/1.1\r\n{HOST}{headers}\r\n{body}");
    vec![
        // CL.TE / TE.CL: both framings in one request.
        (
            "cl-te",
            post(
                "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
                &format!("0\r\n\r\n{SMUGGLED}"),
            ),
        ),
        (
            "te-cl",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                &format!("5c\r\n{SMUGGLED}\r\n0\r\n\r\n"),
            ),
        ),
        // Two different Content-Lengths, and a list of them.
        (
            "duplicate-content-length",
            post(
                "Content-Length: 0\r\nContent-Length: 47\r\n",
                SMUGGLED,
            ),
        ),
        (
            "content-length-list",
            post("Content-Length: 0, 47\r\n", SMUGGLED),
        ),
        ("content-length-plus", post("Content-Length: +47\r\n", SMUGGLED)),
        // Obsolete line folding hides a Content-Length or a TE.
        (
            "obs-fold-content-length",
            post("X-Fold: a\r\n Content-Length: 47\r\n", SMUGGLED),
        ),
        (
            "obs-fold-transfer-encoding",
            post(
                "Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n",
                &format!("0\r\n\r\n{SMUGGLED}"),
            ),
        ),
        // Transfer-Encoding spellings front ends disagree on.
        (
            "te-space-before-colon",
            post(
                "Content-Length: 5\r\nTransfer-Encoding : chunked\r\n",
                &format!("0\r\n\r\n{SMUGGLED}"),
            ),
        ),
        (
            "te-xchunked",
            post(
                "Content-Length: 5\r\nTransfer-Encoding: xchunked\r\n",
                &format!("0\r\n\r\n{SMUGGLED}"),
            ),
        ),
        (
            "te-chunked-identity",
            post(
                "Transfer-Encoding: chunked, identity\r\n",
                &format!("0\r\n\r\n{SMUGGLED}"),
            ),
        ),
        (
            "te-in-http10",
            format!(
                "POST /first HTTP/1.0\r\n{HOST}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"
            ),
        ),
        // Bad chunk sizes.
        (
            "chunk-size-not-hex",
            post("Transfer-Encoding: chunked\r\n", &format!("zz\r\n{SMUGGLED}\r\n0\r\n\r\n")),
        ),
        (
            "chunk-size-overflow",
            post(
                "Transfer-Encoding: chunked\r\n",
                &format!("10000000000000001\r\nab\r\n0\r\n\r\n{SMUGGLED}"),
            ),
        ),
        (
            "chunk-size-negative",
            post("Transfer-Encoding: chunked\r\n", &format!("-1\r\n{SMUGGLED}\r\n0\r\n\r\n")),
        ),
        (
            "chunk-size-too-short",
            post(
                "Transfer-Encoding: chunked\r\n",
                &format!("1\r\nabcdef\r\n0\r\n\r\n{SMUGGLED}"),
            ),
        ),
        (
            "chunk-bare-lf",
            post("Transfer-Encoding: chunked\r\n", &format!("3\nabc\n0\n\n{SMUGGLED}")),
        ),
        // A NUL and a bare CR inside header values.
        ("nul-in-header", post("X-A: a\0b\r\nContent-Length: 0\r\n", "")),
        ("bare-cr-in-header", post("X-A: a\rContent-Length: 47\r\n", SMUGGLED)),
    ]
}

/// Every smuggling attempt is refused with 400 or read one unambiguous
/// way; nginx never sees `/smuggled` and sees exactly what the gateway
/// forwarded; a legitimate curl request works after each.
#[test]
fn gateway_hostile_request_smuggling_is_refused_or_unambiguous() {
    let (env, _nginx) = start();
    let cfg = tls_config(&env);
    let mut report = Vec::new();
    for (name, attack) in attacks() {
        let before_nginx = nginx_log(&env).len();
        let before_gw = gateway_forwarded(&env).len();
        let raw = raw_exchange(&env, &cfg, format!("{attack}{LAST}").as_bytes());
        let codes = statuses(&raw);
        // The gateway's log is written after the response: give it a moment.
        std::thread::sleep(Duration::from_millis(200));
        let seen: Vec<String> = nginx_log(&env)[before_nginx..].to_vec();
        let fwd: Vec<String> = gateway_forwarded(&env)[before_gw..].to_vec();
        let seen_paths: Vec<&str> = seen.iter().filter_map(|l| l.split(' ').next()).collect();
        assert!(
            !seen.iter().any(|l| l.starts_with("/smuggled")),
            "{name}: the smuggled request reached the origin: {seen:?}\n{raw}"
        );
        report.push(format!("{name}: client got {codes:?}, nginx saw {seen:?}"));
        assert!(
            !seen_paths.contains(&"/smuggled"),
            "{name}: the smuggled request reached the origin: {seen:?}\n{raw}"
        );
        // Every request nginx saw is one the gateway handled itself (a
        // request whose body the client botched is cut off on the way and
        // logged `bad-request` by the gateway; nginx may log it too).
        assert!(
            seen_paths.len() <= fwd.len() && seen_paths.iter().all(|p| fwd.iter().any(|f| f == p)),
            "{name}: the origin saw {seen_paths:?}, the gateway handled {fwd:?}\n{raw}"
        );
        assert!(!codes.is_empty(), "{name}: no answer at all\n{raw}");
        assert!(
            codes
                .iter()
                .all(|c| matches!(c, 200 | 400 | 411 | 413 | 501)),
            "{name}: unexpected statuses {codes:?}\n{raw}\n{}",
            env.log()
        );
        // What a refused request was never forwarded as: a 400 ends the
        // connection (nothing after it is read).
        if let Some(i) = codes.iter().position(|c| *c == 400) {
            assert_eq!(
                i + 1,
                codes.len(),
                "{name}: requests read after a 400\n{raw}"
            );
        }
    }
    eprintln!("{}", report.join("\n"));
    let (code, _, body) = env.curl("enforce", Some("alice"), &[]);
    assert_eq!(code, 200, "{body}\n{}", env.log());
    assert!(!env.log().contains("panicked"), "{}", env.log());
}

/// Clients that request 32 MiB and read it slowly (or not at all): the
/// gateway does not buffer their responses (memory stays under the
/// ceiling), and a legitimate client is served while they hang on.
#[test]
fn gateway_hostile_slow_read_clients() {
    let (mut env, _nginx) = start();
    let cfg = tls_config(&env);
    let n = if std::env::var("PORTCULLIS_HOSTILE_FULL").is_ok() {
        200
    } else {
        40
    };
    let name = ServerName::try_from("off.acme.test").expect("name");
    let mut slow = Vec::new();
    for _ in 0..n {
        let tcp = TcpStream::connect(("127.0.0.1", env.port)).expect("connect");
        // A small receive window, so the backlog stays on the gateway side.
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let conn = rustls::ClientConnection::new(cfg.clone(), name.clone()).expect("client");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(b"GET /big HTTP/1.1\r\nHost: off.acme.test\r\n\r\n")
            .expect("send");
        // Read the first bytes only: the response has started.
        let mut first = [0u8; 64];
        let got = tls.read(&mut first).unwrap_or(0);
        assert!(
            first[..got].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&first[..got])
        );
        slow.push(tls);
    }
    // While they stall: a legitimate request is served, memory is bounded.
    for _ in 0..3 {
        let (code, _, body) = env.curl("enforce", Some("alice"), &[]);
        assert_eq!(code, 200, "{body}\n{}", env.log());
        // One slow reader drips a little.
        let mut b = [0u8; 1024];
        let _ = slow[0].read(&mut b);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (rss, hwm) = gateway_memory_kib(&env);
    eprintln!(
        "{n} slow readers of {BIG_BYTES} bytes each: gateway VmRSS {rss} KiB, VmHWM {hwm} KiB"
    );
    assert!(
        hwm < MEMORY_CEILING_KIB,
        "gateway peak memory {hwm} KiB with {n} slow readers (ceiling {MEMORY_CEILING_KIB} KiB)"
    );
    drop(slow);
    let exited = env.gw.0.as_mut().and_then(|c| c.try_wait().ok().flatten());
    assert!(exited.is_none(), "gateway exited: {exited:?}");
    assert!(!env.log().contains("panicked"), "{}", env.log());
}

/// Found by the smuggling attacks above: a request whose chunked body is
/// malformed after the head was forwarded made the origin request fail,
/// and the gateway blamed the origin (502). It is the client's fault: 400,
/// logged `bad-request`, and the connection ends.
#[test]
fn hostile_regression_bad_chunk_size_answers_400_not_502() {
    let (env, _nginx) = start();
    let cfg = tls_config(&env);
    for body in ["zz\r\nabc\r\n0\r\n\r\n", "1\r\nabcdef\r\n0\r\n\r\n"] {
        let raw = raw_exchange(
            &env,
            &cfg,
            format!("POST /chunks HTTP/1.1\r\n{HOST}Transfer-Encoding: chunked\r\n\r\n{body}")
                .as_bytes(),
        );
        assert_eq!(statuses(&raw), vec![400], "{body:?}:\n{raw}");
        assert!(
            raw.contains("malformed or incomplete request body"),
            "{raw}"
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    let access = std::fs::read_to_string(env.path().join("access.log")).expect("access log");
    assert!(access.contains("\"outcome\":\"bad-request\""), "{access}");
    assert!(!access.contains("\"status\":502"), "{access}");
}
