//! Hostile input on the gateway's TLS port: random bytes, truncated
//! ClientHellos, a 100-certificate client chain, a 64 KiB request header,
//! a thousand idle connections, origins that never answer. In every case
//! the gateway stays up, never panics, and a legitimate `curl` request is
//! served during and after.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::gateway::{gateway_toml, headers, one, Env};

/// The gateway process is still running and has not panicked; a request
/// with a valid certificate is answered 200.
#[track_caller]
fn assert_healthy(env: &mut Env) {
    let (code, _, body) = env.curl("enforce", Some("alice"), &[]);
    assert_eq!(code, 200, "{body}\n{}", env.log());
    let exited = env.gw.0.as_mut().and_then(|c| c.try_wait().ok().flatten());
    assert!(
        exited.is_none(),
        "gateway exited: {exited:?}\n{}",
        env.log()
    );
    assert!(!env.log().contains("panicked"), "{}", env.log());
}

/// A real ClientHello for `enforce.acme.test`, as curl sends it (captured
/// on a listener of our own; curl then fails, which is fine).
fn client_hello(env: &Env) -> Vec<u8> {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let mut curl = Command::new("curl")
        .current_dir(env.path())
        .args(["-sS", "--max-time", "10", "--http1.1", "--resolve"])
        .arg(format!("enforce.acme.test:{port}:127.0.0.1"))
        .arg(format!("https://enforce.acme.test:{port}/"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn curl");
    let (mut s, _) = l.accept().expect("accept curl");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut hello = Vec::new();
    let mut chunk = [0u8; 4096];
    while hello.len() < 5 || hello.len() < 5 + usize::from(u16::from_be_bytes([hello[3], hello[4]]))
    {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => hello.extend_from_slice(&chunk[..n]),
        }
    }
    drop(s);
    let _ = curl.kill();
    let _ = curl.wait();
    assert!(
        hello.len() > 100 && hello[0] == 0x16,
        "not a ClientHello: {hello:?}"
    );
    hello
}

/// Deterministic pseudo-random bytes (xorshift), so a failure replays.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// Sends `bytes`, half-closes, and reads whatever comes back (bounded).
fn poke(port: u16, bytes: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut sink = Vec::new();
    let _ = s.take(1 << 20).read_to_end(&mut sink);
}

/// Random bytes (with and without a TLS record header in front) and every
/// kind of truncated ClientHello: the gateway drops the connection, stays
/// up and keeps serving.
#[test]
fn gateway_hostile_random_bytes_and_truncated_client_hello() {
    let mut env = Env::start();
    for (seed, len) in [(1u64, 1usize), (2, 5), (3, 300), (4, 16_384), (5, 100_000)] {
        poke(env.port, &noise(seed, len));
        let mut framed = vec![0x16, 0x03, 0x01, 0x40, 0x00];
        framed.extend(noise(seed + 100, len));
        poke(env.port, &framed);
    }
    let hello = client_hello(&env);
    for cut in [1, 4, 5, 6, 9, 43, hello.len() / 2, hello.len() - 1] {
        poke(env.port, &hello[..cut]);
    }
    // A whole ClientHello, then garbage where the handshake continues.
    let mut rest = hello.clone();
    rest.extend(noise(7, 2000));
    poke(env.port, &rest);
    assert_healthy(&mut env);
    assert_eq!(
        env.origin.count(),
        1,
        "only the legitimate request was forwarded"
    );
}

/// A 100-deep chain (leaf plus 99 CA certificates, each signed by the
/// next) sent as the client certificate: `enforce` answers 403 (or the
/// handshake fails), `report` forwards `invalid` without echoing the chain
/// to the origin, and the gateway keeps serving.
#[test]
fn gateway_hostile_client_chain_of_100_certificates() {
    let mut env = Env::start();
    let dir = env.path().to_path_buf();
    let sh = |args: &[&str]| ok(run_in(&dir, Command::new("openssl").args(args)));
    sh(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "deep-key.pem",
    ]);
    sh(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "deep-key.pem",
        "-subj",
        "/CN=deep0",
        "-days",
        "2",
        "-out",
        "deep0.pem",
    ]);
    for i in 1..100 {
        let (prev, this, cn) = (
            format!("deep{}.pem", i - 1),
            format!("deep{i}.pem"),
            format!("/CN=deep{i}"),
        );
        sh(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "deep-key.pem",
            "-subj",
            &cn,
            "-days",
            "2",
            "-CA",
            &prev,
            "-CAkey",
            "deep-key.pem",
            "-out",
            &this,
        ]);
    }
    // Leaf first: deep99, deep98, …, deep0 (100 certificates).
    let mut pem = String::new();
    for i in (0..100).rev() {
        pem.push_str(&std::fs::read_to_string(dir.join(format!("deep{i}.pem"))).expect("read"));
    }
    write(&dir, "deep.pem", &pem);
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 100);

    for proto in ["--http1.1", "--http2"] {
        let (code, _, body) = env.curl("enforce", Some("deep"), &[proto]);
        assert!(
            code == 403 || code == 0,
            "{proto}: {code} {body}\n{}",
            env.log()
        );
        if code == 403 {
            let v: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(v["error"], "client certificate required", "{body}");
        }
    }
    assert_eq!(
        env.origin.count(),
        0,
        "a 100-certificate chain reached the origin"
    );
    let (code, _, body) = env.curl("report", Some("deep"), &["--http2"]);
    if code == 200 {
        let h = headers(&body);
        assert_eq!(one(&h, "client-cert-status"), "invalid", "{body}");
        assert!(
            !h.contains_key("client-cert-chain"),
            "the 100-certificate chain was forwarded"
        );
        assert!(
            body.len() < 8 * 1024,
            "{} bytes of request head reached the origin",
            body.len()
        );
    } else {
        assert_eq!(code, 0, "{body}\n{}", env.log());
    }
    assert!(
        env.log().contains("client sent 100 certificates"),
        "{}",
        env.log()
    );
    assert_healthy(&mut env);
}

/// A 64 KiB request header: 431 (or the connection is closed) over
/// HTTP/1.1 and HTTP/2, never forwarded.
#[test]
fn gateway_hostile_64k_request_header_is_refused() {
    let mut env = Env::start();
    let big = format!("X-Big: {}", "a".repeat(64 * 1024));
    for proto in ["--http1.1", "--http2"] {
        let (code, _, body) = env.curl("enforce", Some("alice"), &[proto, "-H", &big]);
        assert!(
            code == 431 || code == 0,
            "{proto}: {code} {body}\n{}",
            env.log()
        );
    }
    // Many small headers add up the same way.
    let mut args = vec!["--http1.1".to_owned()];
    for i in 0..2000 {
        args.extend(["-H".to_owned(), format!("X-H{i}: {i}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, body) = env.curl("enforce", Some("alice"), &args);
    assert!(code == 431 || code == 0, "many headers: {code} {body}");
    assert_eq!(
        env.origin.count(),
        0,
        "an oversized head reached the origin"
    );
    assert_healthy(&mut env);
}

/// Slowloris: 1,000 idle connections (half sent nothing, half a partial
/// ClientHello) held for about 2 s. A legitimate request is served while
/// they are open and after they are gone.
#[test]
fn gateway_hostile_slowloris_1000_idle_connections() {
    let mut env = Env::start();
    let hello = client_hello(&env);
    let mut idle = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut s = TcpStream::connect(("127.0.0.1", env.port)).expect("connect idle");
        if i % 2 == 1 {
            let _ = s.write_all(&hello[..hello.len() / 2]);
        }
        idle.push(s);
    }
    let held = Instant::now();
    let (code, _, body) = env.curl("enforce", Some("alice"), &["--http2"]);
    assert_eq!(code, 200, "during: {body}\n{}", env.log());
    let rest = Duration::from_secs(2).saturating_sub(held.elapsed());
    std::thread::sleep(rest);
    drop(idle);
    assert_healthy(&mut env);
}

/// `server.max_connections`: with the limit taken by idle connections, a
/// new connection waits in the accept queue and is served once they go;
/// the limit is logged.
#[test]
fn gateway_max_connections_bounds_open_connections() {
    let mut env = Env::start_with(|_, port, origin| {
        gateway_toml(port, origin).replace("[server]\n", "[server]\nmax_connections = 20\n")
    });
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", env.port)).expect("connect idle"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env.log().contains("connection limit reached") {
        assert!(
            Instant::now() < deadline,
            "limit not logged:\n{}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let code = std::thread::scope(|s| {
        let waiting = s.spawn(|| env.curl("enforce", Some("alice"), &[]).0);
        std::thread::sleep(Duration::from_millis(300));
        drop(idle);
        waiting.join().expect("curl thread")
    });
    assert_eq!(code, 200, "{}", env.log());
    assert_healthy(&mut env);
}

/// An origin that accepts connections and never answers (it holds them
/// until dropped, at most 60 s).
struct SilentOrigin {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SilentOrigin {
    fn start() -> SilentOrigin {
        use std::sync::atomic::Ordering;
        let l = TcpListener::bind("127.0.0.1:0").expect("bind silent origin");
        l.set_nonblocking(true).expect("nonblocking");
        let port = l.local_addr().expect("addr").port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut held = Vec::new();
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline && held.len() < 100 {
                match l.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SilentOrigin { port, stop }
    }
}

impl Drop for SilentOrigin {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `origin_response_timeout`: an origin that accepts and never answers is
/// a 504 JSON; an origin that refuses connections is a 502 JSON; the other
/// hostnames keep working, and the access log names the outcome.
#[test]
fn gateway_origin_timeouts_answer_504_and_502_json() {
    let silent = SilentOrigin::start();
    let refused = free_port();
    let mut env = Env::start_with(|_, port, origin| {
        let line = format!("origin = \"http://127.0.0.1:{origin}\"");
        gateway_toml(port, origin)
            .replace(
                "[server]\n",
                "[server]\norigin_response_timeout = 1\norigin_connect_timeout = 1\n",
            )
            .replacen(
                &line,
                &format!("origin = \"http://127.0.0.1:{}\"", silent.port),
                1,
            )
            .replacen(
                &line,
                &format!("origin = \"http://127.0.0.1:{refused}\""),
                1,
            )
    });
    for proto in ["--http1.1", "--http2"] {
        let (code, ct, body) = env.curl("enforce", Some("alice"), &[proto]);
        assert_eq!(code, 504, "{proto}: {body}\n{}", env.log());
        assert_eq!(ct, "application/json");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["error"], "gateway timeout", "{body}");
        let (code, ct, body) = env.curl("report", Some("alice"), &[proto]);
        assert_eq!(code, 502, "{proto}: {body}\n{}", env.log());
        assert_eq!(ct, "application/json");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["error"], "bad gateway", "{body}");
    }
    let (code, _, body) = env.curl("off", None, &[]);
    assert_eq!(code, 200, "{body}");
    // Access-log lines are written in batches (every 100 ms): poll, bounded.
    let mut access = String::new();
    for _ in 0..100 {
        access = std::fs::read_to_string(env.path().join("access.log")).expect("access log");
        if access.contains("origin-timeout") && access.contains("origin-error") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        access.contains("\"outcome\":\"origin-timeout\""),
        "{access}"
    );
    assert!(access.contains("\"outcome\":\"origin-error\""), "{access}");
    let exited = env.gw.0.as_mut().and_then(|c| c.try_wait().ok().flatten());
    assert!(exited.is_none(), "gateway exited: {exited:?}");
    assert!(!env.log().contains("panicked"), "{}", env.log());
}
