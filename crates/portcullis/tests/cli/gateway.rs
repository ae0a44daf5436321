//! `portcullis serve` as a gateway, driven by real `curl` and
//! `openssl s_client`, in front of an echo origin that runs in the test
//! process and answers with the request head it received.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

/// An HTTP/1.1 origin on 127.0.0.1 that records each request head and
/// sends it back as the body.
pub(crate) struct Origin {
    pub(crate) port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Origin {
    pub(crate) fn start() -> Origin {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        l.set_nonblocking(true).expect("nonblocking");
        let port = l.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            let mut served = 0;
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline && served < 1000 {
                match l.accept() {
                    Ok((s, _)) => {
                        served += 1;
                        let seen = s2.clone();
                        std::thread::spawn(move || echo(s, &seen));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Origin { port, seen, stop }
    }

    pub(crate) fn count(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serves requests on one connection (keep-alive), at most 100.
fn echo(mut s: TcpStream, seen: &Mutex<Vec<String>>) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let mut buf = Vec::new();
    for _ in 0..100 {
        // Read a head.
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 256 * 1024 {
                return;
            }
            let mut chunk = [0u8; 8192];
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let len: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body_have = buf.len() - end;
        while body_have < len {
            let mut chunk = [0u8; 8192];
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    body_have += n;
                }
            }
        }
        buf.drain(..end + len);
        seen.lock().expect("lock").push(head.clone());
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{head}",
            head.len()
        );
        if s.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// The headers of an echoed request head: lowercase name → values.
pub(crate) fn headers(head: &str) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for l in head.lines().skip(1) {
        if let Some((k, v)) = l.split_once(':') {
            m.entry(k.trim().to_ascii_lowercase())
                .or_default()
                .push(v.trim().to_owned());
        }
    }
    m
}

pub(crate) fn one<'a>(h: &'a HashMap<String, Vec<String>>, name: &str) -> &'a str {
    match h.get(name).map(Vec::as_slice) {
        Some([v]) => v,
        other => panic!("expected one {name} header, got {other:?} in {h:?}"),
    }
}

const SIGNING: &str = r#"{"signing":{"default":{"expiry":"168h"},"profiles":{
  "client":{"usages":["signing","key encipherment","client auth"],"expiry":"720h"},
  "server":{"usages":["signing","key encipherment","server auth"],"expiry":"720h"}}}}"#;

const OSSL_CA: &str = "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\n\
serial = serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n\
[ext]\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n";

pub(crate) fn gencert(dir: &Path, name: &str, ca: &str, profile: &str, hosts: &str, db: bool) {
    write(
        dir,
        &format!("{name}.json"),
        &format!(r#"{{"CN":"{name}","hosts":[{hosts}],"key":{{"algo":"ecdsa","size":256}}}}"#),
    );
    let mut args = vec![
        "ca".to_owned(),
        "gencert".into(),
        format!("{name}.json"),
        "--ca".into(),
        format!("{ca}.pem"),
        "--ca-key".into(),
        format!("{ca}-key.pem"),
        "--config".into(),
        "signing.json".into(),
        "--profile".into(),
        profile.into(),
        "--out".into(),
        name.into(),
    ];
    if db {
        args.extend(["--db".into(), "certs.db".into()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(portcullis(dir, &args));
}

/// CA `ca` (Test Root), CA `other` (another tenant), server cert for the
/// three hostnames, and client certs: alice (valid), mallory (other CA),
/// old (expired, via openssl ca), carol (revoked, in ca.crl), bob
/// (serverAuth only).
pub(crate) fn make_pki(dir: &Path) {
    need("openssl");
    init_ca(dir);
    write(
        dir,
        "other-csr.json",
        r#"{"CN":"Other Tenant Root","key":{"algo":"ecdsa","size":256}}"#,
    );
    ok(portcullis(
        dir,
        &[
            "ca",
            "init",
            "other-csr.json",
            "--out",
            "other",
            "--insecure-plaintext-key",
        ],
    ));
    write(dir, "signing.json", SIGNING);
    gencert(
        dir,
        "server",
        "ca",
        "server",
        r#""enforce.acme.test","report.acme.test","off.acme.test""#,
        false,
    );
    gencert(dir, "alice", "ca", "client", "", true);
    gencert(dir, "carol", "ca", "client", "", true);
    gencert(dir, "bob", "ca", "server", "", false);
    gencert(dir, "mallory", "other", "client", "", false);
    // Expired: valid in 2020 only.
    write(dir, "ossl-ca.cnf", OSSL_CA);
    write(dir, "index.txt", "");
    write(dir, "serial", "1000\n");
    openssl_csr(
        dir,
        "old",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=old",
        &[],
    );
    ok(run_in(
        dir,
        Command::new("openssl").args([
            "ca",
            "-batch",
            "-config",
            "ossl-ca.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca-key.pem",
            "-in",
            "old.csr",
            "-out",
            "old.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
            "-extensions",
            "ext",
            "-notext",
        ]),
    ));
    std::fs::rename(dir.join("old.key"), dir.join("old-key.pem")).expect("rename");
    // Revoke carol, then the CRL.
    let info: serde_json::Value =
        serde_json::from_str(&ok(portcullis(dir, &["cert", "info", "carol.pem"]))).expect("json");
    let serial = info["serial_number"].as_str().expect("serial");
    ok(portcullis(
        dir,
        &[
            "ca", "revoke", "--db", "certs.db", "--ca", "ca.pem", "--serial", serial,
        ],
    ));
    ok(portcullis(
        dir,
        &[
            "ca",
            "crl",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--db",
            "certs.db",
            "--out",
            "ca.crl",
        ],
    ));
}

pub(crate) fn gateway_toml(https_port: u16, origin_port: u16) -> String {
    let mut s = format!(
        r#"[server]
https = "127.0.0.1:{https_port}"

[[ca]]
name = "acme"
pem = "ca.pem"
crl = "ca.crl"

[[ca]]
name = "other"
pem = "other.pem"
"#
    );
    for (host, mode) in [("enforce", "enforce"), ("report", "report"), ("off", "off")] {
        s.push_str(&format!(
            r#"
[[hostname]]
name = "{host}.acme.test"
cert = "server.pem"
key = "server-key.pem"
origin = "http://127.0.0.1:{origin_port}"

[hostname.mtls]
mode = "{mode}"
cas = ["acme"]
"#
        ));
    }
    s
}

pub(crate) struct Env {
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    pub(crate) origin: Origin,
    pub(crate) gw: ChildGuard,
}

impl Env {
    pub(crate) fn start() -> Env {
        Env::start_with(|_, port, origin| gateway_toml(port, origin))
    }

    /// Like `start`, with the config from `toml(dir, https_port, origin_port)`
    /// (the PKI is made first, so it can add to it).
    pub(crate) fn start_with(toml: impl FnOnce(&Path, u16, u16) -> String) -> Env {
        need("curl");
        let d = tempdir();
        make_pki(d.path());
        let origin = Origin::start();
        let port = free_port();
        let text = toml(d.path(), port, origin.port);
        write(d.path(), "gateway.toml", &text);
        let log = std::fs::File::create(d.path().join("gateway.log")).expect("log file");
        let access = std::fs::File::create(d.path().join("access.log")).expect("log file");
        let child = Command::new(bin())
            .args(["serve", "--config", "gateway.toml"])
            .current_dir(d.path())
            .env("PORTCULLIS_LOG", "gateway=debug")
            .stdout(access)
            .stderr(log)
            .spawn()
            .expect("spawn serve");
        let mut g = ChildGuard(Some(child));
        wait_port(port, &mut g);
        Env {
            dir: d,
            port,
            origin,
            gw: g,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// curl to `https://HOST.acme.test:PORT/PATH` with `--cert NAME.pem`
    /// (unless `cert` is None) and extra args; returns (status, content
    /// type, body). Status 0 when curl failed.
    pub(crate) fn curl(
        &self,
        host: &str,
        cert: Option<&str>,
        extra: &[&str],
    ) -> (u16, String, String) {
        let name = format!("{host}.acme.test");
        let mut c = Command::new("curl");
        c.current_dir(self.path())
            .args(["-sS", "--max-time", "20", "--cacert", "ca.pem", "--resolve"])
            .arg(format!("{name}:{}:127.0.0.1", self.port))
            .args(["-o", "-", "-w", "\n%{http_code} %{content_type}"]);
        if let Some(cert) = cert {
            c.args([
                "--cert",
                &format!("{cert}.pem"),
                "--key",
                &format!("{cert}-key.pem"),
            ]);
        }
        c.args(extra)
            .arg(format!("https://{name}:{}/some/path?q=1", self.port));
        let out = c.output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, tail) = text.rsplit_once('\n').unwrap_or(("", ""));
        let (code, ct) = tail.split_once(' ').unwrap_or((tail, ""));
        (
            code.trim().parse().unwrap_or(0),
            ct.trim().to_owned(),
            body.to_owned(),
        )
    }

    fn cert_info(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&ok(portcullis(
            self.path(),
            &["cert", "info", &format!("{name}.pem")],
        )))
        .expect("cert info json")
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("gateway.log")).unwrap_or_default()
    }
}

/// A valid client certificate is forwarded with every identity header, over
/// HTTP/1.1 and HTTP/2, and headers the client forged never reach the
/// origin.
#[test]
fn gateway_valid_cert_forwarded_with_identity_headers() {
    let env = Env::start();
    let info = env.cert_info("alice");
    for proto in ["--http1.1", "--http2"] {
        let (code, _, body) = env.curl(
            "enforce",
            Some("alice"),
            &[
                proto,
                "-H",
                "Client-Cert-Status: spoofed",
                "-H",
                "Client-Cert-Subject: CN=admin",
                "-H",
                "X-Forwarded-Client-Cert: By=evil;Subject=\"CN=admin\"",
                "-H",
                "Client-Cert: :ZXZpbA==:",
                "-H",
                "X-Forwarded-For: 6.6.6.6",
                "-H",
                "Forwarded: for=6.6.6.6",
            ],
        );
        assert_eq!(code, 200, "{proto}: {body}\n{}", env.log());
        assert!(body.starts_with("GET /some/path?q=1 HTTP/1.1"), "{body}");
        let h = headers(&body);
        assert_eq!(one(&h, "client-cert-status"), "valid", "{body}");
        assert!(!h.contains_key("client-cert-error"), "{body}");
        assert_eq!(
            one(&h, "client-cert-ski"),
            info["subject_key_id"].as_str().expect("ski")
        );
        let fp = info["sha256_fingerprint"].as_str().expect("fp");
        assert_eq!(one(&h, "client-cert-fingerprint-sha256"), fp);
        assert_eq!(one(&h, "client-cert-subject"), "CN=alice");
        assert_eq!(
            one(&h, "client-cert-issuer"),
            info["issuer"]["dn"].as_str().expect("issuer")
        );
        assert_eq!(
            one(&h, "client-cert-serial"),
            info["serial_hex"].as_str().expect("serial")
        );
        assert!(one(&h, "client-cert").starts_with(':'), "{body}");
        let xfcc = one(&h, "x-forwarded-client-cert");
        assert!(xfcc.starts_with(&format!("Hash={fp};")), "{xfcc}");
        assert!(xfcc.contains("Subject=\"CN=alice\""), "{xfcc}");
        assert_eq!(one(&h, "x-forwarded-proto"), "https");
        assert_eq!(one(&h, "x-forwarded-for"), "127.0.0.1");
        assert_eq!(
            one(&h, "forwarded"),
            format!(
                "for=127.0.0.1;proto=https;host=\"enforce.acme.test:{}\"",
                env.port
            ),
            "{body}"
        );
        assert_eq!(
            one(&h, "host"),
            format!("enforce.acme.test:{}", env.port),
            "{body}"
        );
        assert!(!body.contains("spoofed") && !body.contains("evil") && !body.contains("admin"));
    }
    assert_eq!(env.origin.count(), 2);
}

/// `enforce`: no certificate, another tenant's CA, expired, revoked (CRL)
/// and wrong EKU all get the default 403 JSON, and the origin sees nothing.
#[test]
fn gateway_enforce_blocks_invalid_and_missing_certs() {
    let env = Env::start();
    for (cert, reason) in [
        (None, "none"),
        (Some("mallory"), "unknown-issuer"),
        (Some("old"), "expired"),
        (Some("carol"), "revoked"),
        (Some("bob"), "bad-usage"),
    ] {
        for proto in ["--http1.1", "--http2"] {
            let (code, ct, body) = env.curl("enforce", cert, &[proto]);
            assert_eq!(code, 403, "{cert:?} {proto}: {body}\n{}", env.log());
            assert_eq!(ct, "application/json", "{cert:?}");
            let v: serde_json::Value = serde_json::from_str(&body).expect("json body");
            assert_eq!(
                v,
                serde_json::json!({"error":"client certificate required","reason":reason}),
                "{cert:?}"
            );
        }
    }
    assert_eq!(env.origin.count(), 0, "the origin saw a blocked request");
}

/// `report`: everything is forwarded, with the verdict and its reason.
#[test]
fn gateway_report_forwards_with_verdict() {
    let env = Env::start();
    for (cert, status, error) in [
        (None, "none", None),
        (Some("alice"), "valid", None),
        (Some("mallory"), "invalid", Some("unknown-issuer")),
        (Some("old"), "invalid", Some("expired")),
        (Some("carol"), "invalid", Some("revoked")),
        (Some("bob"), "invalid", Some("bad-usage")),
    ] {
        let (code, _, body) = env.curl("report", cert, &["--http2", "-H", "Client-Cert-Error: x"]);
        assert_eq!(code, 200, "{cert:?}: {body}\n{}", env.log());
        let h = headers(&body);
        assert_eq!(one(&h, "client-cert-status"), status, "{cert:?}: {body}");
        match error {
            Some(e) => assert_eq!(one(&h, "client-cert-error"), e, "{cert:?}"),
            None => assert!(!h.contains_key("client-cert-error"), "{cert:?}: {body}"),
        }
        if cert.is_none() {
            assert!(!h.contains_key("client-cert-subject"), "{body}");
            assert!(!h.contains_key("x-forwarded-client-cert"), "{body}");
        } else {
            let subject = format!("CN={}", cert.unwrap_or_default());
            assert!(one(&h, "client-cert-subject").contains(&subject), "{body}");
        }
    }
    assert_eq!(env.origin.count(), 6);
}

/// What `openssl s_client -msg` prints for a handshake with `name`.
fn s_client(env: &Env, name: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .current_dir(env.path())
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{}", env.port))
        .args(extra)
        .args(["-msg", "-CAfile", "ca.pem"])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = name;
    (out.status.success(), text)
}

/// `off`: no CertificateRequest in the handshake (TLS 1.3 and 1.2), and
/// neither client-sent nor gateway identity headers reach the origin;
/// `report` as the control: a CertificateRequest with no CA names.
#[test]
fn gateway_off_mode_requests_no_certificate() {
    need("openssl");
    let env = Env::start();
    for v in ["-tls1_3", "-tls1_2"] {
        let (okk, text) = s_client(&env, "off", &["-servername", "off.acme.test", v]);
        assert!(okk, "{text}");
        assert!(text.contains("ServerHello"), "{text}");
        assert!(!text.contains("CertificateRequest"), "{v}: {text}");
        let (okk, text) = s_client(&env, "report", &["-servername", "report.acme.test", v]);
        assert!(okk, "{text}");
        assert!(text.contains("CertificateRequest"), "{v}: {text}");
        assert!(
            text.contains("No client certificate CA names sent"),
            "{v}: {text}"
        );
    }
    let (code, _, body) = env.curl(
        "off",
        Some("alice"),
        &[
            "-H",
            "Client-Cert-Status: valid",
            "-H",
            "X-Forwarded-Client-Cert: Hash=00",
        ],
    );
    assert_eq!(code, 200, "{body}");
    let h = headers(&body);
    for owned in [
        "client-cert-status",
        "x-forwarded-client-cert",
        "client-cert",
    ] {
        assert!(!h.contains_key(owned), "{owned} reached the origin: {body}");
    }
    assert_eq!(one(&h, "x-forwarded-proto"), "https");
}

/// The request's host must be the TLS server name: 421 over HTTP/1.1 and
/// HTTP/2, and the origin never sees it.
#[test]
fn gateway_host_must_match_sni() {
    let env = Env::start();
    for proto in ["--http1.1", "--http2"] {
        for host in [
            "report.acme.test".to_owned(),
            format!("report.acme.test:{}", env.port),
            "evil.test".to_owned(),
        ] {
            let (code, _, body) = env.curl(
                "enforce",
                Some("alice"),
                &[proto, "-H", &format!("Host: {host}")],
            );
            assert_eq!(code, 421, "{proto} {host}: {body}");
        }
        // Case and port do not matter.
        let (code, _, body) = env.curl(
            "enforce",
            Some("alice"),
            &[proto, "-H", "Host: ENFORCE.Acme.Test:1"],
        );
        assert_eq!(code, 200, "{proto}: {body}");
    }
    assert_eq!(env.origin.count(), 2);
}

/// An SNI no hostname has, or none at all: the handshake fails with an
/// `unrecognized_name` alert.
#[test]
fn gateway_unknown_sni_fails_handshake() {
    need("openssl");
    let env = Env::start();
    let (code, _, _) = env.curl("nosuch", None, &[]);
    assert_eq!(code, 0, "curl got an answer for an unknown name");
    let (okk, text) = s_client(&env, "nosuch", &["-servername", "nosuch.acme.test"]);
    assert!(!okk, "{text}");
    assert!(text.contains("unrecognized name"), "{text}");
    let (okk, text) = s_client(&env, "", &["-noservername"]);
    assert!(!okk, "{text}");
    assert!(text.contains("unrecognized name"), "{text}");
    assert_eq!(env.origin.count(), 0);
}

/// Garbage, half a ClientHello, plain HTTP and an abrupt close on the TLS
/// port do not stop the gateway: a real request works afterwards.
#[test]
fn gateway_survives_garbage_on_the_tls_port() {
    let env = Env::start();
    let garbage: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: enforce.acme.test\r\n\r\n".to_vec(),
        vec![0u8; 5000],
        (0..=255u8).cycle().take(70_000).collect(),
        vec![0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00],
        vec![0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00],
        Vec::new(),
    ];
    for g in &garbage {
        let mut s = TcpStream::connect(("127.0.0.1", env.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let _ = s.write_all(g);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    let (code, _, body) = env.curl("enforce", Some("alice"), &[]);
    assert_eq!(code, 200, "{body}\n{}", env.log());
}

/// A bad configuration: every problem on stderr, a non-zero exit, and no
/// port bound.
#[test]
fn serve_refuses_bad_config_listing_every_problem() {
    let d = tempdir();
    let dir = d.path();
    let port = free_port();
    write(
        dir,
        "bad.toml",
        &format!(
            r#"[server]
https = "127.0.0.1:{port}"
[[ca]]
name = "acme"
pem = "missing-ca.pem"
[[hostname]]
name = "a.acme.test"
cert = "missing.pem"
key = "missing-key.pem"
origin = "http://127.0.0.1:1"
[hostname.mtls]
mode = "enforse"
cas = ["acme", "nope"]
"#
        ),
    );
    let err = fails(portcullis(dir, &["serve", "--config", "bad.toml"]));
    for needle in ["\"enforse\"", "\"nope\""] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    // Structure is fine: now the files are checked, all of them.
    let text = std::fs::read_to_string(dir.join("bad.toml"))
        .expect("read")
        .replace("enforse", "enforce")
        .replace(", \"nope\"", "");
    write(dir, "bad.toml", &text);
    let err = fails(portcullis(dir, &["serve", "--config", "bad.toml"]));
    for needle in ["missing-ca.pem", "missing.pem", "missing-key.pem"] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    // Unknown keys are refused.
    write(
        dir,
        "bad.toml",
        &text.replace("[server]", "[server]\nhttp = \"x\""),
    );
    let err = fails(portcullis(dir, &["serve", "--config", "bad.toml"]));
    assert!(err.contains("http"), "{err}");
}

/// `portcullis demo` runs end to end with nothing but the binary and exits
/// 0: every outcome (report and enforce, each client certificate and none,
/// and a token-protected path with and without a valid token) was the
/// expected one.
#[test]
fn demo_exits_zero() {
    let d = tempdir();
    let out = ok(portcullis(d.path(), &["demo"]));
    assert!(out.contains("every outcome was as expected"), "{out}");
    assert!(!out.contains("UNEXPECTED"), "{out}");
    // Token cases: with a valid token the origin sees the request;
    // without, tampered or expired, the gateway refuses it.
    assert!(
        out.contains("token checks on https://report.demo.test"),
        "{out}"
    );
    for row in [
        "valid token       200  origin saw request  ok",
        "no token          401  origin saw nothing  ok",
        "tampered path     401  origin saw nothing  ok",
        "expired token     401  origin saw nothing  ok",
    ] {
        assert!(out.contains(row), "{row} missing in {out}");
    }
    for row in ["enforce  revoked", "report   expired", "enforce  valid"] {
        assert!(out.contains(row), "{row} missing in {out}");
    }
    assert!(
        out.contains(r#"{"error":"client certificate required","reason":"revoked"}"#),
        "{out}"
    );
}

/// SIGTERM: the gateway stops accepting and exits 0.
#[test]
fn serve_exits_cleanly_on_sigterm() {
    let mut env = Env::start();
    let (code, _, body) = env.curl("report", Some("alice"), &[]);
    assert_eq!(code, 200, "{body}");
    let pid = env.gw.pid().to_string();
    ok(Command::new("kill")
        .args(["-TERM", &pid])
        .output()
        .expect("kill"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let child = env.gw.0.as_mut().expect("child");
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}\n{}", env.log());
    let (code, _, _) = env.curl("report", Some("alice"), &[]);
    assert_eq!(code, 0, "still answering after SIGTERM");
}

/// One JSON access-log line per request on stdout, blocked ones included.
#[test]
fn serve_writes_a_json_access_log_line_per_request() {
    let env = Env::start();
    assert_eq!(env.curl("enforce", Some("alice"), &["--http2"]).0, 200);
    assert_eq!(env.curl("enforce", Some("mallory"), &[]).0, 403);
    assert_eq!(
        env.curl("enforce", Some("alice"), &["-H", "Host: report.acme.test"])
            .0,
        421
    );
    // The line is written before the body is streamed; wait (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let lines: Vec<serde_json::Value> = loop {
        let text = std::fs::read_to_string(env.path().join("access.log")).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if lines.len() >= 3 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines.len(), 3, "{lines:?}");
    let l = &lines[0];
    assert_eq!(l["hostname"], "enforce.acme.test");
    assert_eq!(l["method"], "GET");
    assert_eq!(l["path"], "/some/path");
    assert_eq!(l["version"], "HTTP/2.0");
    assert_eq!(l["status"], 200);
    assert_eq!(l["verdict"], "valid");
    assert_eq!(l["outcome"], "origin");
    assert!(l["ts"].is_string() && l["duration_ms"].is_u64(), "{l}");
    assert!(l["origin_ms"].is_u64(), "{l}");
    assert!(lines[1]["origin_ms"].is_null(), "{}", lines[1]);
    assert_eq!(lines[1]["status"], 403);
    assert_eq!(lines[1]["verdict"], "invalid");
    assert_eq!(lines[1]["reason"], "unknown-issuer");
    assert_eq!(lines[1]["outcome"], "blocked");
    assert_eq!(lines[2]["status"], 421);
    assert_eq!(lines[2]["outcome"], "misdirected");
}

/// Sends SIGHUP to the gateway.
pub(crate) fn hup(env: &Env) {
    let pid = env.gw.pid().to_string();
    ok(Command::new("kill")
        .args(["-HUP", &pid])
        .output()
        .expect("kill"));
}

/// Polls (bounded) until curl on `host` with `cert` answers `want`.
fn wait_status(env: &Env, host: &str, cert: &str, want: u16) -> u16 {
    let mut got = 0;
    for _ in 0..100 {
        got = env.curl(host, Some(cert), &[]).0;
        if got == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    got
}

/// SIGHUP reloads a valid config (report becomes enforce: 200 then 403),
/// and refuses an invalid one while the running config keeps serving.
#[test]
fn serve_reloads_on_sighup_all_or_nothing() {
    let env = Env::start();
    assert_eq!(env.curl("report", Some("mallory"), &[]).0, 200);
    let path = env.path().join("gateway.toml");
    let text = std::fs::read_to_string(&path).expect("read");
    let enforcing = text.replacen("mode = \"report\"", "mode = \"enforce\"", 1);
    assert_ne!(text, enforcing);
    write(env.path(), "gateway.toml", &enforcing);
    hup(&env);
    assert_eq!(
        wait_status(&env, "report", "mallory", 403),
        403,
        "{}",
        env.log()
    );
    assert_eq!(env.curl("report", Some("alice"), &[]).0, 200);
    // Broken: an unknown key and a missing file. Refused as a whole.
    let broken = text
        .replace("[server]", "[server]\nbogus = 1")
        .replace("ca.crl", "missing.crl");
    write(env.path(), "gateway.toml", &broken);
    hup(&env);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env.log().contains("reload refused") {
        assert!(
            Instant::now() < deadline,
            "no refusal logged: {}",
            env.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(env.log().contains("bogus"), "{}", env.log());
    assert_eq!(env.curl("report", Some("mallory"), &[]).0, 403);
    assert_eq!(env.curl("report", Some("alice"), &[]).0, 200);
}

/// nginx with `ssl_verify_client on` as an https:// origin: the gateway
/// presents its origin-pull certificate and verifies nginx's against
/// `origin_ca`. Without a pull certificate nginx refuses (400, forwarded);
/// with an `origin_ca` that does not match, the gateway answers 502.
#[test]
fn gateway_authenticated_origin_pull_to_nginx() {
    need("nginx");
    let nginx_port = free_port();
    let mut nginx = None;
    let env = Env::start_with(|dir, port, _| {
        gencert(
            dir,
            "server2",
            "ca",
            "server",
            r#""pull.acme.test","nopull.acme.test","badca.acme.test""#,
            false,
        );
        gencert(dir, "nginx", "ca", "server", r#""127.0.0.1""#, false);
        gencert(dir, "gateway-pull", "ca", "client", "", false);
        let d = dir.display();
        let g = spawn_nginx(
            dir,
            &format!(
                r#"  server {{
    listen 127.0.0.1:{nginx_port} ssl;
    ssl_certificate {d}/nginx.pem;
    ssl_certificate_key {d}/nginx-key.pem;
    ssl_client_certificate {d}/ca.pem;
    ssl_verify_client on;
    location / {{
      default_type text/plain;
      return 200 "verify=$ssl_client_verify dn=$ssl_client_s_dn status=$http_client_cert_status host=$host\n";
    }}
  }}
"#
            ),
            nginx_port,
        );
        nginx = Some(g);
        let mut t = format!(
            "[server]\nhttps = \"127.0.0.1:{port}\"\n[[ca]]\nname = \"acme\"\npem = \"ca.pem\"\n"
        );
        for (host, extra) in [
            (
                "pull",
                "origin_ca = \"ca.pem\"\norigin_cert = \"gateway-pull.pem\"\norigin_key = \"gateway-pull-key.pem\"\n",
            ),
            ("nopull", "origin_ca = \"ca.pem\"\n"),
            (
                "badca",
                "origin_ca = \"other.pem\"\norigin_cert = \"gateway-pull.pem\"\norigin_key = \"gateway-pull-key.pem\"\n",
            ),
        ] {
            t.push_str(&format!(
                "[[hostname]]\nname = \"{host}.acme.test\"\ncert = \"server2.pem\"\nkey = \"server2-key.pem\"\n\
                 origin = \"https://127.0.0.1:{nginx_port}\"\n{extra}[hostname.mtls]\nmode = \"report\"\ncas = [\"acme\"]\n"
            ));
        }
        t
    });
    let _nginx = nginx;
    let (code, _, body) = env.curl("pull", Some("alice"), &[]);
    assert_eq!(code, 200, "{body}\n{}", env.log());
    assert!(body.contains("verify=SUCCESS"), "{body}");
    assert!(body.contains("dn=CN=gateway-pull"), "{body}");
    assert!(body.contains("status=valid"), "{body}");
    assert!(body.contains("host=pull.acme.test"), "{body}");
    // Pooled: a second request on the same origin works too.
    assert_eq!(env.curl("pull", None, &["--http2"]).0, 200);
    let (code, _, body) = env.curl("nopull", Some("alice"), &[]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("No required SSL certificate"), "{body}");
    let (code, _, body) = env.curl("badca", Some("alice"), &[]);
    assert_eq!(code, 502, "{body}");
}

/// Session resumption is off for mTLS hostnames (every connection shows and
/// has its certificate checked) and on for `off` hostnames (the control
/// that the probe can see a resumption), TLS 1.2 session IDs.
#[test]
fn gateway_no_session_resumption_on_mtls_hostnames() {
    need("openssl");
    let env = Env::start();
    for (host, resumes) in [("off", true), ("report", false), ("enforce", false)] {
        let name = format!("{host}.acme.test");
        let sess = format!("{host}.sess");
        let base = [
            "-servername",
            name.as_str(),
            "-tls1_2",
            "-cert",
            "alice.pem",
            "-key",
            "alice-key.pem",
        ];
        let mut first: Vec<&str> = base.to_vec();
        first.extend(["-sess_out", sess.as_str()]);
        let (okk, text) = s_client(&env, host, &first);
        assert!(okk && text.contains("New, TLSv1.2"), "{host}: {text}");
        // s_client writes no file when the server gave nothing resumable.
        if !env.path().join(&sess).exists() {
            assert!(!resumes, "{host}: no session to resume: {text}");
            continue;
        }
        let mut second: Vec<&str> = base.to_vec();
        second.extend(["-sess_in", sess.as_str()]);
        let (okk, text) = s_client(&env, host, &second);
        assert!(okk, "{host}: {text}");
        assert_eq!(text.contains("Reused, TLSv1.2"), resumes, "{host}: {text}");
    }
}

/// Request bodies are streamed to the origin (1 MiB POST, HTTP/1.1 and
/// HTTP/2) and the origin's answer comes back.
#[test]
fn gateway_forwards_request_bodies() {
    let env = Env::start();
    let body = "x".repeat(1024 * 1024);
    write(env.path(), "body.bin", &body);
    for proto in ["--http1.1", "--http2"] {
        let (code, _, echoed) = env.curl(
            "enforce",
            Some("alice"),
            &[
                proto,
                "--data-binary",
                "@body.bin",
                "-H",
                "content-type: application/octet-stream",
            ],
        );
        assert_eq!(code, 200, "{proto}: {echoed}");
        assert!(
            echoed.starts_with("POST /some/path?q=1 HTTP/1.1"),
            "{echoed}"
        );
        let h = headers(&echoed);
        let len = h.get("content-length").map(|v| v.join(","));
        let chunked = h.get("transfer-encoding").map(|v| v.join(","));
        assert!(
            len.as_deref() == Some("1048576") || chunked.is_some(),
            "{proto}: {echoed}"
        );
    }
    assert_eq!(env.origin.count(), 2);
}

/// `server.admin` serves Prometheus counters: requests by hostname,
/// verdict, outcome and status class, and unknown-SNI handshakes.
#[test]
fn serve_exposes_metrics_on_admin() {
    let admin = free_port();
    let env = Env::start_with(|_, port, origin| {
        gateway_toml(port, origin).replacen(
            "[server]\n",
            &format!("[server]\nadmin = \"127.0.0.1:{admin}\"\n"),
            1,
        )
    });
    assert_eq!(env.curl("enforce", Some("alice"), &[]).0, 200);
    assert_eq!(env.curl("enforce", None, &[]).0, 403);
    assert_eq!(env.curl("nosuch", None, &[]).0, 0);
    let url = format!("http://127.0.0.1:{admin}/metrics");
    let want = [
        "hostname=\"enforce.acme.test\",verdict=\"valid\",outcome=\"origin\",status=\"2xx\"} 1",
        "hostname=\"enforce.acme.test\",verdict=\"none\",outcome=\"blocked\",status=\"4xx\"} 1",
        "portcullis_handshake_failures_total{cause=\"unknown_sni\"} 1",
        // Latency histograms: two requests for the hostname, one of them
        // reached the origin.
        "portcullis_request_duration_seconds_count{hostname=\"enforce.acme.test\"} 2",
        "portcullis_request_duration_seconds_bucket{hostname=\"enforce.acme.test\",le=\"+Inf\"} 2",
        "portcullis_origin_duration_seconds_count{hostname=\"enforce.acme.test\"} 1",
        // Expiry gauges for every configured certificate: the hostnames'
        // server certificate and both CAs.
        "portcullis_certificate_expiry_days{kind=\"server\",name=\"enforce.acme.test\",subject=\"CN=server\"} ",
        "portcullis_certificate_expiry_days{kind=\"ca\",name=\"acme\",subject=",
        "portcullis_certificate_expiry_days{kind=\"ca\",name=\"other\",subject=",
        "# TYPE portcullis_request_duration_seconds histogram",
    ];
    // Counters are bumped as the response head is sent; poll (bounded).
    let mut body = String::new();
    for _ in 0..100 {
        let (code, b) = curl_get(&url);
        assert_eq!(code, 200, "{b}");
        body = b;
        if want.iter().all(|w| body.contains(w)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for w in want {
        assert!(body.contains(w), "{w} missing in {body}");
    }
    // The server certificate was issued for 720 h just now.
    let days: f64 = body
        .lines()
        .find(|l| l.starts_with(want[6]))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("expiry gauge value");
    assert!(days > 29.0 && days <= 30.0, "{days}");
    assert_eq!(curl_get(&format!("http://127.0.0.1:{admin}/other")).0, 404);
}

/// Concurrent connections with different certificates (and the same
/// certificate many times, which shares one cached verdict) each get their
/// own verdict.
#[test]
fn gateway_concurrent_connections_keep_their_own_verdicts() {
    let env = Env::start();
    let cases: Vec<(Option<&str>, u16)> = (0..6)
        .flat_map(|_| [(Some("alice"), 200), (Some("mallory"), 403), (None, 403)])
        .collect();
    let results: Vec<(Option<&str>, u16, u16)> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|&(cert, want)| {
                let env = &env;
                s.spawn(move || (cert, want, env.curl("enforce", cert, &["--http2"]).0))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for (cert, want, got) in results {
        assert_eq!(got, want, "{cert:?}\n{}", env.log());
    }
    assert_eq!(env.origin.count(), 6);
}

/// Reload under load: while two clients send requests in a bounded loop,
/// the config is rewritten and SIGHUP'd 20 times (the `report` hostname
/// flips between report and enforce, and the `other` CA is added to and
/// removed from its trust). No request fails except mallory's 403 under
/// enforce without `other`; alice always gets 200; the server stays up.
#[test]
fn serve_reload_under_load_fails_no_request() {
    let mut env = Env::start();
    let base = std::fs::read_to_string(env.path().join("gateway.toml")).expect("read");
    let (head, tail) = base
        .split_once("name = \"report.acme.test\"")
        .expect("report section");
    let variant = |enforce: bool, other: bool| {
        let mut t = tail.to_owned();
        if enforce {
            t = t.replacen("mode = \"report\"", "mode = \"enforce\"", 1);
        }
        if other {
            t = t.replacen("cas = [\"acme\"]", "cas = [\"acme\", \"other\"]", 1);
        }
        format!("{head}name = \"report.acme.test\"{t}")
    };
    let stop = AtomicBool::new(false);
    let (alice, mallory, off) = std::thread::scope(|s| {
        let env = &env;
        let stop = &stop;
        let client = move |host: &'static str, cert: Option<&'static str>| {
            s.spawn(move || {
                let mut got = Vec::new();
                while !stop.load(Ordering::Relaxed) && got.len() < 500 {
                    got.push(env.curl(host, cert, &["--http2"]).0);
                }
                got
            })
        };
        let a = client("report", Some("alice"));
        let m = client("report", Some("mallory"));
        let o = client("off", None);
        for i in 0..20 {
            let text = variant(i % 2 == 0, i % 4 >= 2);
            let tmp = env.path().join("gateway.toml.new");
            std::fs::write(&tmp, &text).expect("write");
            std::fs::rename(&tmp, env.path().join("gateway.toml")).expect("rename");
            hup(env);
            let deadline = Instant::now() + Duration::from_secs(20);
            while env.log().matches("configuration reloaded").count() < i + 1 {
                assert!(
                    Instant::now() < deadline,
                    "reload {i} not seen:\n{}",
                    env.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
        let join = |h: std::thread::ScopedJoinHandle<'_, Vec<u16>>| h.join().expect("client");
        (join(a), join(m), join(o))
    });
    assert!(!alice.is_empty() && !mallory.is_empty() && !off.is_empty());
    assert!(
        alice.iter().all(|&c| c == 200),
        "alice: {alice:?}\n{}",
        env.log()
    );
    assert!(off.iter().all(|&c| c == 200), "off: {off:?}\n{}", env.log());
    assert!(
        mallory.iter().all(|&c| c == 200 || c == 403),
        "mallory: {mallory:?}\n{}",
        env.log()
    );
    // The policy did change: enforce without `other` blocks mallory.
    write(env.path(), "gateway.toml", &variant(true, false));
    hup(&env);
    assert_eq!(wait_status(&env, "report", "mallory", 403), 403);
    assert_eq!(env.curl("report", Some("alice"), &[]).0, 200);
    assert!(!env.log().contains("reload refused"), "{}", env.log());
    assert!(!env.log().contains("panicked"), "{}", env.log());
    let exited = env.gw.0.as_mut().and_then(|c| c.try_wait().ok().flatten());
    assert!(exited.is_none(), "gateway exited: {exited:?}");
}

/// Reload on file change, no SIGHUP: alice is revoked and a new CRL
/// replaces `ca.crl` (by rename, as deploy tools do); within the polling
/// interval alice is refused under enforce. Then a broken CA file is
/// refused and the running configuration stays.
#[test]
fn serve_reloads_when_a_referenced_file_changes() {
    let env = Env::start();
    assert_eq!(env.curl("enforce", Some("alice"), &[]).0, 200);
    let dir = env.path();
    let serial = env.cert_info("alice")["serial_number"]
        .as_str()
        .expect("serial")
        .to_owned();
    ok(portcullis(
        dir,
        &[
            "ca", "revoke", "--db", "certs.db", "--ca", "ca.pem", "--serial", &serial,
        ],
    ));
    ok(portcullis(
        dir,
        &[
            "ca",
            "crl",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--db",
            "certs.db",
            "--out",
            "ca.crl.new",
        ],
    ));
    std::fs::rename(dir.join("ca.crl.new"), dir.join("ca.crl")).expect("rename");
    assert_eq!(
        wait_status(&env, "enforce", "alice", 403),
        403,
        "{}",
        env.log()
    );
    assert!(env.log().contains("a file changed"), "{}", env.log());
    // A broken referenced file: refused, the running configuration stays.
    write(dir, "other.pem", "not a certificate");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env.log().contains("reload refused") {
        assert!(Instant::now() < deadline, "no refusal: {}", env.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(env.curl("enforce", Some("alice"), &[]).0, 403);
    assert_eq!(env.curl("report", Some("mallory"), &[]).0, 200);
}
