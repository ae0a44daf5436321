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

/// The documented memory ceiling of the gateway under the hostile suite
/// (docs/reliability.md): peak resident set (VmHWM) below 512 MiB, with
/// 10,000 idle connections, 200 slow readers or a 10,000-SAN certificate.
pub(crate) const MEMORY_CEILING_KIB: u64 = 512 * 1024;

/// (VmRSS, VmHWM) of the gateway process in KiB, from /proc.
pub(crate) fn gateway_memory_kib(env: &Env) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", env.gw.pid()))
        .expect("gateway /proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[track_caller]
fn assert_memory_bounded(env: &Env, what: &str) {
    let (rss, hwm) = gateway_memory_kib(env);
    eprintln!("{what}: gateway VmRSS {rss} KiB, VmHWM {hwm} KiB");
    assert!(
        hwm < MEMORY_CEILING_KIB,
        "{what}: gateway peak memory {hwm} KiB (ceiling {MEMORY_CEILING_KIB} KiB)"
    );
}

/// Whether the long versions run (scripts/hostile.sh sets this).
fn full() -> bool {
    std::env::var("PORTCULLIS_HOSTILE_FULL").is_ok()
}

/// Sends `bytes` in pieces until the gateway stops reading (closes or
/// resets); returns how many bytes it accepted. Bounded by `bytes` and by
/// a 15 s read timeout.
fn push_until_refused(port: u16, bytes: &[u8]) -> usize {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_write_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut sent = 0;
    for chunk in bytes.chunks(4096) {
        match s.write(chunk) {
            Ok(n) if n > 0 => sent += n,
            _ => break,
        }
    }
    // The gateway must end the connection (alert and/or close), not wait.
    let mut sink = Vec::new();
    let r = s.take(1 << 20).read_to_end(&mut sink);
    assert!(
        !matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "the gateway kept an oversized ClientHello open: {r:?}"
    );
    sent
}

/// Oversized ClientHellos: a handshake message that claims 16 MiB, a
/// record longer than TLS allows, and a real ClientHello followed by 1 MiB
/// of more handshake records. Each connection is ended by the gateway long
/// before the claimed size; it stays up and keeps serving.
#[test]
fn gateway_hostile_oversized_client_hello() {
    let mut env = Env::start();
    let hello = client_hello(&env);
    let mib = 1 << 20;
    // 1. Handshake header: ClientHello of 0xFFFFFF bytes, in max records.
    let mut huge = Vec::with_capacity(mib + 4096);
    let mut first = true;
    while huge.len() < mib {
        huge.extend([0x16, 0x03, 0x01, 0x40, 0x00]);
        let mut body = if first {
            vec![0x01, 0xff, 0xff, 0xff]
        } else {
            Vec::new()
        };
        first = false;
        body.extend(noise(huge.len() as u64, 0x4000 - body.len()));
        huge.extend(body);
    }
    let accepted = push_until_refused(env.port, &huge);
    eprintln!("16 MiB ClientHello claim: gateway read at most {accepted} bytes before closing");
    // 2. One record longer than 2^14 + 2048 (RFC 8446 5.2).
    let mut long_record = vec![0x16, 0x03, 0x01, 0xff, 0xff];
    long_record.extend(noise(9, 0xffff));
    push_until_refused(env.port, &long_record);
    // 3. A real ClientHello whose length field is raised to 64 KiB with
    //    1 MiB of handshake records after it.
    let mut grown = hello.clone();
    grown[6..9].copy_from_slice(&[0x00, 0xff, 0xff]);
    while grown.len() < mib {
        grown.extend([0x16, 0x03, 0x03, 0x40, 0x00]);
        grown.extend(noise(grown.len() as u64, 0x4000));
    }
    push_until_refused(env.port, &grown);
    assert_memory_bounded(&env, "oversized ClientHellos");
    assert_healthy(&mut env);
    assert_eq!(env.origin.count(), 1, "only the legitimate request");
}

/// TLS 1.2 client-initiated renegotiation (`openssl s_client`, command
/// `R`) is refused: no second handshake completes, the connection either
/// goes on or ends, and the gateway keeps serving. TLS 1.3 key updates
/// (`K`) are not renegotiation and are allowed.
#[test]
fn gateway_hostile_renegotiation_is_refused() {
    need("openssl");
    let mut env = Env::start();
    for (proto, cmd) in [("-tls1_2", "R"), ("-tls1_3", "K")] {
        let mut child = Command::new("openssl")
            .current_dir(env.path())
            .args(["s_client", proto, "-connect"])
            .arg(format!("127.0.0.1:{}", env.port))
            .args(["-servername", "off.acme.test", "-CAfile", "ca.pem"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn s_client");
        let mut guard = ChildGuard(None);
        {
            let stdin = child.stdin.as_mut().expect("stdin");
            // Wait for the handshake, renegotiate, then send a request.
            std::thread::sleep(Duration::from_millis(1000));
            let _ = stdin.write_all(format!("{cmd}\n").as_bytes());
            std::thread::sleep(Duration::from_millis(1000));
            let _ = stdin.write_all(
                b"GET /after HTTP/1.1\r\nHost: off.acme.test\r\nConnection: close\r\n\r\n",
            );
        }
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        guard.0 = Some(child);
        let got = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let read_all = |mut r: Box<dyn Read + Send>| {
            let got = got.clone();
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let mut buf = [0u8; 4096];
                while v.len() < 1 << 20 {
                    match r.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            v.extend_from_slice(&buf[..n]);
                            got.lock()
                                .expect("lock")
                                .push_str(&String::from_utf8_lossy(&buf[..n]));
                        }
                    }
                }
                String::from_utf8_lossy(&v).into_owned()
            })
        };
        let out = read_all(Box::new(stdout));
        let err = read_all(Box::new(stderr));
        // Until the answer came or s_client ended (at most 15 s). A
        // refused renegotiation leaves s_client waiting for a ServerHello
        // that never comes (the gateway's header timeout ends it later):
        // give a second handshake 2 s to show up, then stop.
        let until = Instant::now() + Duration::from_secs(15);
        let mut reneg_seen: Option<Instant> = None;
        while Instant::now() < until {
            let exited = guard.0.as_mut().and_then(|c| c.try_wait().ok().flatten());
            let text = got.lock().expect("lock").clone();
            if exited.is_some() || text.contains("HTTP/1.1 ") {
                break;
            }
            if text.contains("RENEGOTIATING") {
                let at = *reneg_seen.get_or_insert_with(Instant::now);
                if at.elapsed() > Duration::from_secs(2) {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        guard.kill9();
        let (out, err) = (
            out.join().expect("stdout thread"),
            err.join().expect("stderr thread"),
        );
        let both = format!("{out}\n{err}");
        eprintln!(
            "{proto} {cmd}: {}",
            both.lines()
                .filter(|l| l.contains("RENEGOTIAT")
                    || l.contains("KEYUPDATE")
                    || l.contains("alert")
                    || l.contains("HTTP/1.1"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        if cmd == "R" {
            // rustls has no renegotiation: it answers no_renegotiation
            // (a warning) or ends the connection; never a 2nd handshake.
            assert!(
                both.contains("RENEGOTIATING"),
                "s_client did not try:\n{both}"
            );
            let verified = both.matches("Verify return code: 0").count();
            assert!(verified <= 1, "a second handshake completed:\n{both}");
        } else {
            assert!(
                both.contains("KEYUPDATE"),
                "s_client did not send a key update:\n{both}"
            );
            assert!(
                out.contains("HTTP/1.1 200"),
                "served after a key update:\n{both}"
            );
        }
    }
    assert_healthy(&mut env);
}

/// A client certificate with 10,000 DNS SANs (about 150 KB): more than a
/// TLS handshake message may carry, so the handshake is refused, or if it
/// got through, `enforce` answers 403. A 2,000-SAN certificate (about
/// 30 KB, which fits) is parsed, reported `invalid` and forwarded with
/// bounded headers. Memory stays under the ceiling.
#[test]
fn gateway_hostile_client_certificate_with_10000_sans() {
    let mut env = Env::start();
    let dir = env.path().to_path_buf();
    for n in [10_000usize, 2_000] {
        let sans: Vec<String> = (0..n).map(|i| format!("DNS:h{i}.acme.test")).collect();
        write(
            &dir,
            &format!("sans{n}.cnf"),
            &format!(
                "[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=sans{n}\n[ext]\nsubjectAltName={}\nextendedKeyUsage=clientAuth\n",
                sans.join(",")
            ),
        );
        ok(run_in(
            &dir,
            Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-days",
                    "2",
                ])
                .arg("-config")
                .arg(format!("sans{n}.cnf"))
                .args(["-extensions", "ext", "-keyout"])
                .arg(format!("sans{n}-key.pem"))
                .arg("-out")
                .arg(format!("sans{n}.pem")),
        ));
        let (code, _, body) = env.curl("enforce", Some(&format!("sans{n}")), &["--http1.1"]);
        assert!(code == 403 || code == 0, "{n} SANs, enforce: {code} {body}");
        let (code, _, body) = env.curl("report", Some(&format!("sans{n}")), &["--http2"]);
        if code == 200 {
            let h = headers(&body);
            assert_eq!(one(&h, "client-cert-status"), "invalid", "{n}: {body:.300}");
            eprintln!(
                "{n} SANs, report: forwarded, request head {} bytes",
                body.len()
            );
        } else {
            assert_eq!(code, 0, "{n} SANs, report: {code} {body:.300}");
            eprintln!("{n} SANs, report: handshake refused");
        }
    }
    assert_memory_bounded(&env, "10,000-SAN certificates");
    assert_healthy(&mut env);
}

/// Idle connections: 2,000 in the suite, 10,000 with
/// PORTCULLIS_HOSTILE_FULL (scripts/hostile.sh). Half send nothing, half a
/// partial ClientHello. While they are held, legitimate requests are
/// served (within the 10 s handshake timeout that frees their slots when
/// they fill `max_connections`), and memory stays under the ceiling.
#[test]
fn gateway_hostile_idle_connections_flood() {
    let n = if full() { 10_000 } else { 2_000 };
    // Room for n client sockets here and n on the gateway side.
    let _ = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg("--nofile=20000:20000")
        .status();
    let mut env = Env::start();
    let hello = client_hello(&env);
    let mut idle = Vec::with_capacity(n);
    for i in 0..n {
        match TcpStream::connect(("127.0.0.1", env.port)) {
            Ok(mut s) => {
                if i % 2 == 1 {
                    let _ = s.write_all(&hello[..hello.len() / 2]);
                }
                idle.push(s);
            }
            Err(e) => panic!("connection {i} of {n}: {e} (RLIMIT_NOFILE too low?)"),
        }
    }
    let mut served = 0;
    for _ in 0..3 {
        let (code, _, body) = env.curl("enforce", Some("alice"), &["--http2"]);
        assert_eq!(code, 200, "with {n} idle: {body}\n{}", env.log());
        served += 1;
    }
    assert_memory_bounded(&env, &format!("{n} idle connections"));
    eprintln!("{n} idle connections held: {served} legitimate requests served");
    drop(idle);
    assert_healthy(&mut env);
}
