//! `portcullis agent` and the gateway's in-process agent against a real
//! `portcullis ca serve`, with 2-minute certificates, a recording HTTP
//! proxy between agent and CA, a CA restart, SIGKILLs in the middle of
//! writes, and a keep-alive TLS client on the gateway throughout.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::common::*;

/// The CA's signing config: `short` issues 2-minute certificates and needs
/// authsign with `k1`.
fn ca_config(dir: &Path) {
    write(
        dir,
        "config.json",
        &format!(
            r#"{{"signing":{{"default":{{"expiry":"168h"}},"profiles":{{
  "short":{{"usages":["signing","key encipherment","server auth","client auth"],
            "expiry":"2m","auth_key":"k1"}},
  "tiny":{{"usages":["signing","server auth"],"expiry":"3s","auth_key":"k1"}}
}}}},
"auth_keys":{{"k1":{{"type":"standard","key":"{AUTH_KEY}"}}}}}}"#
        ),
    );
}

/// `portcullis ca serve` on a given port (so that it can come back on the
/// same one after a kill).
fn ca_on(dir: &Path, port: u16) -> ChildGuard {
    let child = Command::new(bin())
        .args(["ca", "serve", "--ca", "ca.pem", "--ca-key", "ca-key.pem"])
        .args(["--config", "config.json", "--address", "127.0.0.1"])
        .args(["--port", &port.to_string(), "--db", "certs.db"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ca serve");
    let mut g = ChildGuard(Some(child));
    wait_port(port, &mut g);
    g
}

/// One request seen by the recording proxy.
struct Seen {
    path: String,
    body: Vec<u8>,
}

/// A recording HTTP proxy (hyper on tokio) between agent and CA: every
/// request's path and body is kept, then forwarded; 502 while the CA is
/// down.
struct Proxy {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        use http_body_util::{BodyExt, Full};
        use hyper::body::Bytes;
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        l.set_nonblocking(true).expect("nonblocking");
        let port = l.local_addr().expect("addr").port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let seen2 = seen.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(l).expect("tokio listener");
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .build_http::<Full<Bytes>>();
                let serve = async {
                    loop {
                        let Ok((s, _)) = l.accept().await else {
                            continue;
                        };
                        let (client, seen) = (client.clone(), seen2.clone());
                        tokio::spawn(async move {
                            let svc = hyper::service::service_fn(
                                move |req: hyper::Request<hyper::body::Incoming>| {
                                    let (client, seen) = (client.clone(), seen.clone());
                                    async move {
                                        let path = req.uri().path().to_string();
                                        let (parts, body) = req.into_parts();
                                        let body = body
                                            .collect()
                                            .await
                                            .map(|b| b.to_bytes())
                                            .unwrap_or_default();
                                        seen.lock().expect("lock").push(Seen {
                                            path: path.clone(),
                                            body: body.to_vec(),
                                        });
                                        let mut fwd = hyper::Request::builder()
                                            .method(parts.method)
                                            .uri(format!("http://127.0.0.1:{upstream}{path}"));
                                        if let Some(ct) = parts.headers.get("content-type") {
                                            fwd = fwd.header("content-type", ct);
                                        }
                                        let fwd = fwd.body(Full::new(body)).expect("request");
                                        let resp = match client.request(fwd).await {
                                            Ok(r) => {
                                                let (p, b) = r.into_parts();
                                                let b = b
                                                    .collect()
                                                    .await
                                                    .map(|b| b.to_bytes())
                                                    .unwrap_or_default();
                                                hyper::Response::from_parts(p, Full::new(b))
                                            }
                                            Err(_) => hyper::Response::builder()
                                                .status(502)
                                                .body(Full::new(Bytes::from_static(b"CA down")))
                                                .expect("response"),
                                        };
                                        Ok::<_, std::convert::Infallible>(resp)
                                    }
                                },
                            );
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {},
                    _ = rx => {},
                }
            });
        });
        Proxy {
            port,
            seen,
            _stop: tx,
        }
    }

    /// Asserts that the agent sent only CSRs (and `info` asks): every
    /// authsign request decodes to a sign request whose certificate request
    /// parses as a CSR, and no body holds a private key.
    fn assert_only_csrs(&self) -> usize {
        let b64 = base64::engine::general_purpose::STANDARD;
        let seen = self.seen.lock().expect("lock");
        let mut csrs = 0;
        for s in seen.iter() {
            let text = String::from_utf8_lossy(&s.body);
            assert!(!text.contains("PRIVATE KEY"), "a key went out: {}", s.path);
            let v: serde_json::Value = serde_json::from_slice(&s.body).expect("JSON body");
            match s.path.as_str() {
                "/api/v1/cfssl/authsign" => {
                    let inner = b64
                        .decode(v["request"].as_str().expect("request"))
                        .expect("base64 request");
                    let inner_text = String::from_utf8_lossy(&inner);
                    assert!(!inner_text.contains("PRIVATE KEY"), "a key went out");
                    let r: serde_json::Value = serde_json::from_slice(&inner).expect("sign JSON");
                    let csr = r["certificate_request"].as_str().expect("a CSR");
                    assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
                    pki::csr::parse_csr(csr.as_bytes()).expect("a valid CSR");
                    let keys: Vec<&String> =
                        r.as_object().expect("object").keys().collect::<Vec<_>>();
                    for k in keys {
                        assert!(
                            ["certificate_request", "profile", "label", "hosts"]
                                .contains(&k.as_str()),
                            "unexpected field {k}"
                        );
                    }
                    csrs += 1;
                }
                "/api/v1/cfssl/info" => {}
                other => panic!("the agent called {other}"),
            }
        }
        csrs
    }
}

/// The public key (PEM) of a private key file and of a certificate file,
/// by openssl.
fn pubkeys(key: &Path, cert: &Path) -> (String, String) {
    let k = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(key)
        .output()
        .expect("openssl pkey");
    let c = Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(cert)
        .output()
        .expect("openssl x509");
    assert!(k.status.success(), "unreadable key {}", key.display());
    assert!(c.status.success(), "unreadable cert {}", cert.display());
    (
        String::from_utf8_lossy(&k.stdout).into_owned(),
        String::from_utf8_lossy(&c.stdout).into_owned(),
    )
}

#[track_caller]
fn assert_pair(key: &Path, cert: &Path) {
    let (k, c) = pubkeys(key, cert);
    assert_eq!(k, c, "{} does not match {}", key.display(), cert.display());
}

fn state(path: &Path) -> serde_json::Value {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn count(state: &serde_json::Value, name: &str, what: &str) -> u64 {
    state[name][what].as_u64().unwrap_or(0)
}

/// Polls `f` every 200 ms until it is true; panics after `limit`.
#[track_caller]
fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

/// An HTTP/1.1 origin answering `ok` to every request, keep-alive.
fn origin() -> (u16, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind origin");
    l.set_nonblocking(true).expect("nonblocking");
    let port = l.local_addr().expect("addr").port();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(400);
        while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
            match l.accept() {
                Ok((s, _)) => {
                    std::thread::spawn(move || {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
                        let mut r = BufReader::new(s);
                        for _ in 0..2000 {
                            let mut line = String::new();
                            let mut len = 0usize;
                            loop {
                                line.clear();
                                match r.read_line(&mut line) {
                                    Ok(0) | Err(_) => return,
                                    Ok(_) => {}
                                }
                                let lower = line.to_ascii_lowercase();
                                if let Some(v) = lower.strip_prefix("content-length:") {
                                    len = v.trim().parse().unwrap_or(0);
                                }
                                if line == "\r\n" {
                                    break;
                                }
                            }
                            let mut body = vec![0; len];
                            if r.read_exact(&mut body).is_err() {
                                return;
                            }
                            let out = r.get_mut();
                            if out
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                                .is_err()
                            {
                                return;
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (port, stop)
}

fn tls_config(ca_pem: &Path) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(ca_pem).expect("ca.pem") {
        roots.add(c.expect("ca cert")).expect("root");
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

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A verified TLS connection to the gateway (rustls checks the chain and
/// the validity period at the current time).
fn connect(cfg: &Arc<rustls::ClientConfig>, port: u16) -> Result<Tls, String> {
    let name = rustls_pki_types::ServerName::try_from("api.acme.test").expect("name");
    let conn = rustls::ClientConnection::new(cfg.clone(), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(tls)
}

/// One GET on a kept-alive connection; the status line and body.
fn get(tls: &mut Tls) -> Result<String, String> {
    tls.write_all(b"GET / HTTP/1.1\r\nhost: api.acme.test\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut b).map_err(|e| e.to_string())?;
        head.push(b[0]);
        if head.len() > 16 * 1024 {
            return Err("head too long".into());
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no content-length")?;
    let mut body = vec![0; len];
    tls.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(format!(
        "{} {}",
        head.lines().next().unwrap_or_default(),
        String::from_utf8_lossy(&body)
    ))
}

/// The headline test: a gateway that obtains its own 2-minute certificate
/// through the in-process agent renews it several times in a row, across a
/// CA restart (failures, backoff, then success); a new handshake never
/// meets an expired certificate, a keep-alive connection opened at the
/// start keeps working throughout, and the CA only ever saw CSRs.
#[test]
fn agent_in_gateway_renews_2m_certificates_across_a_ca_restart() {
    let t = tempdir();
    let dir = t.path();
    init_ca(dir);
    ca_config(dir);
    let ca_port = free_port();
    let mut ca = ca_on(dir, ca_port);
    let proxy = Proxy::start(ca_port);
    let (origin_port, origin_stop) = origin();
    let https = free_port();
    let metrics = free_port();
    write(
        dir,
        "gw.toml",
        &format!(
            r#"
[server]
https = "127.0.0.1:{https}"
data_dir = "data"

[[hostname]]
name = "api.acme.test"
cert = "live/api.pem"
key = "live/api-key.pem"
origin = "http://127.0.0.1:{origin_port}"

[agent]
metrics = "127.0.0.1:{metrics}"

[[agent.certificate]]
name = "api"
csr = {{ CN = "api.acme.test", hosts = ["api.acme.test"] }}
remote = "http://127.0.0.1:{}"
profile = "short"
auth_key = "{AUTH_KEY}"
key = "live/api-key.pem"
cert = "live/api.pem"
chain = "live/ca.pem"
renew_at = 0.25
jitter = 0.05
retry_min = "1s"
retry_max = "4s"
"#,
            proxy.port
        ),
    );
    let gw = Command::new(bin())
        .args(["serve", "--config", "gw.toml"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn serve");
    let mut gw = ChildGuard(Some(gw));
    wait_port(https, &mut gw);
    let state_file = dir.join("data/agent/state.json");
    assert_eq!(count(&state(&state_file), "api", "successes"), 1);
    assert_pair(&dir.join("live/api-key.pem"), &dir.join("live/api.pem"));

    // Watch the gateway from two clients for the whole test.
    let tls = tls_config(&dir.join("ca.pem"));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (tls, stop) = (tls.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut kept = connect(&tls, https).expect("keep-alive connection");
            let (mut requests, mut handshakes) = (0u32, 0u32);
            let mut seen = HashSet::new();
            let deadline = Instant::now() + Duration::from_secs(300);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let r = get(&mut kept).expect("the kept-alive connection keeps working");
                assert!(r.starts_with("http/1.1 200") && r.ends_with("ok"), "{r}");
                requests += 1;
                let mut fresh = connect(&tls, https)
                    .expect("a new handshake verifies (never an expired certificate)");
                let leaf = fresh
                    .conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.as_ref().to_vec())
                    .expect("leaf");
                seen.insert(leaf);
                handshakes += 1;
                let r = get(&mut fresh).expect("request on a new connection");
                assert!(r.starts_with("http/1.1 200"), "{r}");
                std::thread::sleep(Duration::from_millis(700));
            }
            (requests, handshakes, seen.len())
        })
    };

    // Renewals in a row: the first issuance plus two renewals.
    wait_for("two renewals", Duration::from_secs(100), || {
        count(&state(&state_file), "api", "successes") >= 3
    });
    // The CA goes away: attempts fail and are retried with backoff.
    ca.kill9();
    let before = count(&state(&state_file), "api", "successes");
    wait_for(
        "failed attempts while the CA is down",
        Duration::from_secs(60),
        || count(&state(&state_file), "api", "failures") >= 3,
    );
    assert_eq!(count(&state(&state_file), "api", "successes"), before);
    let s = state(&state_file);
    assert_eq!(s["api"]["last_result"], "failure", "{s}");
    // Back on the same port: the next retry (at most 4 s away) succeeds,
    // and renewals go on.
    let _ca = ca_on(dir, ca_port);
    wait_for(
        "renewals after the CA restart",
        Duration::from_secs(80),
        || count(&state(&state_file), "api", "successes") >= before + 2,
    );
    stop.store(true, Ordering::Relaxed);
    let (requests, handshakes, distinct) = watcher.join().expect("watcher passed");
    origin_stop.store(true, Ordering::Relaxed);
    assert!(requests > 10 && handshakes > 10, "{requests} {handshakes}");
    assert!(
        distinct >= 3,
        "the gateway presented {distinct} distinct certificates"
    );
    assert_pair(&dir.join("live/api-key.pem"), &dir.join("live/api.pem"));

    // Metrics say the same.
    let (code, text) = curl_get(&format!("http://127.0.0.1:{metrics}/metrics"));
    assert_eq!(code, 200);
    let value = |needle: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {needle} in {text}"))
    };
    assert!(
        value("portcullis_agent_renewals_total{certificate=\"api\",result=\"success\"}")
            >= (before + 2) as f64
    );
    assert!(
        value("portcullis_agent_renewals_total{certificate=\"api\",result=\"failure\"}") >= 3.0
    );
    assert!(value("portcullis_agent_certificate_seconds_to_expiry{certificate=\"api\"}") > 0.0);
    assert!(value("portcullis_agent_last_success_timestamp_seconds{certificate=\"api\"}") > 0.0);

    // status understands the gateway file's [agent] section.
    let out = ok(portcullis(dir, &["agent", "status", "--config", "gw.toml"]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["certificates"][0]["subject"], "CN=api.acme.test", "{v}");
    assert_eq!(v["certificates"][0]["expired"], false, "{v}");

    // Only CSRs ever went to the CA.
    let csrs = proxy.assert_only_csrs();
    assert!(csrs >= 5, "{csrs} sign requests");
}

fn agent_toml(dir: &Path, remote_port: u16, auth: &str, extra: &str) -> PathBuf {
    write(
        dir,
        "agent.toml",
        &format!(
            r#"
state_dir = "state"

[[certificate]]
name = "svc"
csr = "svc-csr.json"
remote = "127.0.0.1:{remote_port}"
profile = "short"
auth_key = "{auth}"
{extra}
"#
        ),
    )
}

/// `--once`, `status`, the hook, a fresh key per issuance, and the errors:
/// bad config, unreachable CA, wrong auth key.
#[test]
fn agent_once_status_hook_and_errors() {
    let t = tempdir();
    let dir = t.path();
    init_ca(dir);
    ca_config(dir);
    write(
        dir,
        "svc-csr.json",
        r#"{"CN":"svc.acme.test","hosts":["svc.acme.test"]}"#,
    );
    let files = "key = \"out/svc-key.pem\"\ncert = \"out/svc.pem\"\nbundle = \"out/svc-bundle.pem\"\n\
                 [certificate.hook]\ncommand = [\"sh\", \"-c\", \"echo $PORTCULLIS_AGENT_CERTIFICATE >> hook.log\"]\n";

    // Bad config: every problem listed, exit 1, nothing contacted.
    write(
        dir,
        "bad.toml",
        "metrics = \"nowhere\"\n[[certificate]]\nname = \"a b\"\ncsr = \"missing.json\"\n\
         remote = \"127.0.0.1:1\"\nauth_key = \"xyz\"\nrenew_at = 2.0\nbogus = 1\n",
    );
    let err = fails(portcullis(
        dir,
        &["agent", "--config", "bad.toml", "--once"],
    ));
    assert!(err.contains("bogus"), "{err}");
    write(
        dir,
        "bad.toml",
        "metrics = \"nowhere\"\n[[certificate]]\nname = \"a b\"\ncsr = \"missing.json\"\n\
         remote = \"127.0.0.1:1\"\nauth_key = \"xyz\"\nrenew_at = 2.0\n",
    );
    let err = fails(portcullis(
        dir,
        &["agent", "--config", "bad.toml", "--once"],
    ));
    for needle in [
        "metrics",
        "name must be",
        "missing.json",
        "not valid hex",
        "renew_at",
        "give key and cert",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }

    // Unreachable CA.
    let nothing = free_port();
    agent_toml(dir, nothing, AUTH_KEY, files);
    let out = portcullis(dir, &["agent", "--config", "agent.toml", "--once"]);
    let err = fails(out);
    assert!(err.contains("cannot reach the CA"), "{err}");
    assert!(!dir.join("out/svc-key.pem").exists());

    let ca_port = free_port();
    let _ca = ca_on(dir, ca_port);

    // Wrong auth key: the CA refuses, exit 1, nothing written.
    agent_toml(dir, ca_port, "00112233445566778899aabbccddeeff", files);
    let err = fails(portcullis(
        dir,
        &["agent", "--config", "agent.toml", "--once"],
    ));
    assert!(err.contains("refused"), "{err}");
    assert!(!dir.join("out/svc-key.pem").exists());

    // The right key: obtained, files in place, the hook ran.
    agent_toml(dir, ca_port, AUTH_KEY, files);
    let out = ok(portcullis(
        dir,
        &["agent", "--config", "agent.toml", "--once"],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["certificates"][0]["result"], "renewed", "{v}");
    let (key, cert) = (dir.join("out/svc-key.pem"), dir.join("out/svc.pem"));
    assert_pair(&key, &cert);
    let bundle = dir.join("out/svc-bundle.pem");
    assert_pair(&bundle, &bundle);
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(&key).expect("key");
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("hook.log")).expect("hook ran"),
        "svc\n"
    );
    // Not due yet: nothing happens, exit 0.
    let out = ok(portcullis(
        dir,
        &["agent", "--config", "agent.toml", "--once"],
    ));
    assert!(out.contains("\"not_due\""), "{out}");
    // --force: a new certificate with a new key.
    let (k1, _) = pubkeys(&key, &cert);
    ok(portcullis(
        dir,
        &["agent", "--config", "agent.toml", "--once", "--force"],
    ));
    let (k2, c2) = pubkeys(&key, &cert);
    assert_eq!(k2, c2);
    assert_ne!(k1, k2, "every issuance makes a fresh key");

    // A signal hook: the process named by the pidfile gets SIGTERM.
    let mut sleeper = ChildGuard(Some(
        Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep"),
    ));
    write(dir, "svc.pid", &format!("{}\n", sleeper.pid()));
    agent_toml(
        dir,
        ca_port,
        AUTH_KEY,
        "bundle = \"out/svc-bundle.pem\"\n[certificate.hook]\nsignal = \"TERM\"\npidfile = \"svc.pid\"\n",
    );
    ok(portcullis(
        dir,
        &["agent", "--config", "agent.toml", "--once", "--force"],
    ));
    let st = sleeper.0.take().expect("child").wait().expect("reap sleep");
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(15), "{st}");
    }

    // status: JSON from the state file, no secrets needed.
    std::fs::write(
        dir.join("agent.toml"),
        std::fs::read_to_string(dir.join("agent.toml"))
            .expect("read")
            .replace(AUTH_KEY, "env:NOT_SET_ANYWHERE"),
    )
    .expect("write");
    let out = ok(portcullis(
        dir,
        &["agent", "status", "--config", "agent.toml"],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let c = &v["certificates"][0];
    assert_eq!(c["name"], "svc");
    assert_eq!(c["subject"], "CN=svc.acme.test", "{v}");
    assert_eq!(c["last_result"], "success");
    assert_eq!(c["expired"], false);
    assert_eq!(c["successes"], 3);
    assert_eq!(c["failures"], 2, "unreachable CA and wrong key: {v}");
    assert!(c["seconds_to_expiry"].as_i64().expect("number") > 0);
    assert!(c["not_after"].as_str().expect("time").ends_with('Z'));

    // After expiry: authsign is authenticated by its HMAC, not by the
    // current certificate, so an expired one is simply renewed.
    std::fs::write(
        dir.join("agent.toml"),
        std::fs::read_to_string(dir.join("agent.toml"))
            .expect("read")
            .replace("env:NOT_SET_ANYWHERE", AUTH_KEY)
            .replace("\"short\"", "\"tiny\""),
    )
    .expect("write");
    ok(portcullis(
        dir,
        &["agent", "--config", "agent.toml", "--once", "--force"],
    ));
    std::thread::sleep(Duration::from_secs(4));
    let out = ok(portcullis(
        dir,
        &["agent", "status", "--config", "agent.toml"],
    ));
    assert!(out.contains("\"expired\":true"), "{out}");
    let out = ok(portcullis(
        dir,
        &["agent", "--config", "agent.toml", "--once"],
    ));
    assert!(out.contains("\"renewed\""), "{out}");
}

/// `portcullis serve` with an `[agent]` section: problems of the gateway
/// and of the agent are listed together; a certificate the gateway needs
/// and cannot get stops the start with the CA's error.
#[test]
fn serve_with_agent_refuses_bad_config_and_unreachable_ca() {
    let t = tempdir();
    let dir = t.path();
    let https = free_port();
    let nothing = free_port();
    let gw = |agent_extra: &str, host: &str| {
        format!(
            r#"
[server]
https = "127.0.0.1:{https}"
data_dir = "data"

[[hostname]]
name = "{host}"
cert = "live/api.pem"
key = "live/api-key.pem"
origin = "http://127.0.0.1:1"

[agent]
[[agent.certificate]]
name = "api"
csr = {{ CN = "api.acme.test" }}
remote = "http://127.0.0.1:{nothing}"
auth_key = "{AUTH_KEY}"
key = "live/api-key.pem"
cert = "live/api.pem"
{agent_extra}
"#
        )
    };
    write(
        dir,
        "gw.toml",
        &gw("renew_at = 7\nsocket = \"x.sock\"", "not a name"),
    );
    let err = fails(portcullis(dir, &["serve", "--config", "gw.toml"]));
    for needle in [
        "not a DNS name",
        "agent.certificate[0]",
        "renew_at = 7",
        "socket",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
    write(dir, "gw.toml", &gw("", "api.acme.test"));
    let err = fails(portcullis(dir, &["serve", "--config", "gw.toml"]));
    assert!(
        err.contains("cannot obtain certificates the gateway needs"),
        "{err}"
    );
    assert!(err.contains("api: cannot reach the CA"), "{err}");
    assert!(
        TcpStream::connect(("127.0.0.1", https)).is_err(),
        "nothing bound"
    );
}

/// In-memory mode: the key is never written; a local process fetches key
/// and certificate from a 0600 Unix socket.
#[test]
fn agent_in_memory_hands_out_over_a_unix_socket() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempdir();
    let dir = t.path();
    init_ca(dir);
    ca_config(dir);
    write(dir, "svc-csr.json", r#"{"CN":"mem.acme.test"}"#);
    let ca_port = free_port();
    let _ca = ca_on(dir, ca_port);
    agent_toml(dir, ca_port, AUTH_KEY, "socket = \"svc.sock\"\n");
    let err = fails(portcullis(
        dir,
        &["agent", "--config", "agent.toml", "--once"],
    ));
    assert!(err.contains("in-memory"), "{err}");
    let child = Command::new(bin())
        .args(["agent", "--config", "agent.toml"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn agent");
    let _agent = ChildGuard(Some(child));
    let sock = dir.join("svc.sock");
    let mut text = String::new();
    wait_for("a bundle on the socket", Duration::from_secs(30), || {
        text.clear();
        std::os::unix::net::UnixStream::connect(&sock)
            .and_then(|mut s| s.read_to_string(&mut text))
            .is_ok()
            && text.contains("CERTIFICATE")
    });
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let b = write(dir, "fetched.pem", &text);
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_pair(&b, &b);
    std::fs::remove_file(&b).expect("rm");
    // Nothing under the agent's state holds a key.
    let mut stack = vec![dir.join("state")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(s) = std::fs::read_to_string(&p) {
                assert!(!s.contains("PRIVATE KEY"), "{} holds a key", p.display());
            }
        }
    }
}

/// SIGKILL at many points of `agent --once --force`: the key beside the
/// certificate always matches it (links into one generation switched by
/// one rename), and so does the bundle.
#[test]
fn agent_killed_mid_write_never_leaves_a_mismatched_pair() {
    let t = tempdir();
    let dir = t.path();
    init_ca(dir);
    ca_config(dir);
    write(dir, "svc-csr.json", r#"{"CN":"svc.acme.test"}"#);
    let ca_port = free_port();
    let _ca = ca_on(dir, ca_port);
    agent_toml(
        dir,
        ca_port,
        AUTH_KEY,
        "key = \"out/key.pem\"\ncert = \"out/cert.pem\"\nbundle = \"out/bundle.pem\"\n",
    );
    ok(portcullis(
        dir,
        &["agent", "--config", "agent.toml", "--once"],
    ));
    let (key, cert, bundle) = (
        dir.join("out/key.pem"),
        dir.join("out/cert.pem"),
        dir.join("out/bundle.pem"),
    );
    let mut serials = HashSet::new();
    for i in 0..16u64 {
        let child = Command::new(bin())
            .args(["agent", "--config", "agent.toml", "--once", "--force"])
            .env("PORTCULLIS_AGENT_TEST_PAUSE_MS", "40")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agent");
        let mut g = ChildGuard(Some(child));
        // Spread the kills over start-up, the CA round trip and the writes.
        std::thread::sleep(Duration::from_millis(20 + (i * 37) % 400));
        g.kill9();
        assert_pair(&key, &cert);
        assert_pair(&bundle, &bundle);
        let (_, c) = pubkeys(&key, &cert);
        serials.insert(c);
    }
    // Some kills came after a switch, some before.
    assert!(serials.len() >= 2, "no kill landed after a renewal");
    // The agent still works, and left no stray generations behind.
    ok(portcullis(
        dir,
        &["agent", "--config", "agent.toml", "--once", "--force"],
    ));
    assert_pair(&key, &cert);
    let gens = std::fs::read_dir(dir.join("state/certs/svc"))
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("gen-"))
        .count();
    assert_eq!(gens, 1, "stray generations left");
}

/// An origin-pull identity from the agent: the gateway presents the
/// certificate its in-process agent obtained to an nginx origin that
/// requires a client certificate from the same CA.
#[test]
fn agent_gives_the_gateway_its_origin_pull_identity() {
    need("nginx");
    let t = tempdir();
    let dir = t.path();
    init_ca(dir);
    ca_config(dir);
    let ca_port = free_port();
    let _ca = ca_on(dir, ca_port);
    write(
        dir,
        "nginx-csr.json",
        r#"{"CN":"origin","hosts":["127.0.0.1"]}"#,
    );
    ok(portcullis(
        dir,
        &[
            "ca",
            "gencert",
            "nginx-csr.json",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--config",
            "config.json",
            "--profile",
            "short",
            "--out",
            "nginx",
        ],
    ));
    let nginx_port = free_port();
    let d = dir.display();
    let _nginx = spawn_nginx(
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
      return 200 "verify=$ssl_client_verify dn=$ssl_client_s_dn\n";
    }}
  }}
"#
        ),
        nginx_port,
    );
    let https = free_port();
    write(
        dir,
        "gw.toml",
        &format!(
            r#"
[server]
https = "127.0.0.1:{https}"
data_dir = "data"

[[hostname]]
name = "api.acme.test"
cert = "live/api.pem"
key = "live/api-key.pem"
origin = "https://127.0.0.1:{nginx_port}"
origin_ca = "ca.pem"
origin_cert = "live/pull.pem"
origin_key = "live/pull-key.pem"

[agent]
[[agent.certificate]]
name = "api"
csr = {{ CN = "api.acme.test", hosts = ["api.acme.test"] }}
remote = "http://127.0.0.1:{ca_port}"
profile = "short"
auth_key = "{AUTH_KEY}"
key = "live/api-key.pem"
cert = "live/api.pem"

[[agent.certificate]]
name = "pull"
csr = {{ CN = "gateway-pull.acme.test" }}
remote = "http://127.0.0.1:{ca_port}"
profile = "short"
auth_key = "{AUTH_KEY}"
key = "live/pull-key.pem"
cert = "live/pull.pem"
"#
        ),
    );
    let gw = Command::new(bin())
        .args(["serve", "--config", "gw.toml"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut gw = ChildGuard(Some(gw));
    wait_port(https, &mut gw);
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(dir.join("ca.pem"))
        .args([
            "--resolve",
            &format!("api.acme.test:{https}:127.0.0.1"),
            &format!("https://api.acme.test:{https}/"),
        ])
        .output()
        .expect("curl");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{body} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(body.contains("verify=SUCCESS"), "{body}");
    assert!(body.contains("CN=gateway-pull.acme.test"), "{body}");
}
