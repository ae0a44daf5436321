//! Crash test: `kill -9` of `ca serve` in the middle of a burst of signing.
//! After a restart on the same issuance log, every certificate any client
//! received is in the log, no serial repeats, and the CA signs again.

use crate::common::*;
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const THREADS: usize = 4;
const MAX_PER_THREAD: usize = 150;

/// What the client threads saw.
#[derive(Default)]
struct Seen {
    /// Certificates (PEM) from complete, successful answers.
    received: Vec<String>,
    /// Failures while the server was meant to be up (must stay empty).
    unexpected: Vec<String>,
    /// Requests cut off by the kill.
    cut_off: usize,
}

/// One `sign` request with curl; the certificate PEM on success.
fn sign_once(url: &str, body_file: &Path) -> Result<String, String> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-H",
            "content-type: application/json",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", body_file.display()))
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "curl {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    if code.trim() != "200" {
        return Err(format!("HTTP {code}: {body}"));
    }
    let v: Value = serde_json::from_str(body).map_err(|e| format!("bad JSON ({e}): {body}"))?;
    v["result"]["certificate"]
        .as_str()
        .filter(|_| v["success"] == Value::Bool(true))
        .map(str::to_string)
        .ok_or_else(|| format!("no certificate in {body}"))
}

/// Decimal serial and AKI of a certificate, by `portcullis cert info`.
fn serial_and_aki(dir: &Path, pem: &str, i: usize) -> (String, String) {
    let name = format!("received-{i}.pem");
    write(dir, &name, pem);
    let v: Value =
        serde_json::from_str(&ok(portcullis(dir, &["cert", "info", &name]))).expect("info JSON");
    (
        v["serial_number"].as_str().expect("serial").to_string(),
        v["authority_key_id"].as_str().expect("aki").to_string(),
    )
}

#[test]
fn ca_crash_kill9_during_signing_burst_loses_no_issued_certificate() {
    need("curl");
    need("openssl");
    let dir = tempdir();
    let d = dir.path();
    init_ca(d);
    server_config(d);
    // One CSR for every request: each signing still draws a fresh serial.
    let csr = openssl_csr(
        d,
        "burst",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=burst.acme.test",
        &[],
    );
    let csr = std::fs::read_to_string(csr).expect("read CSR");
    let body = serde_json::json!({ "certificate_request": csr, "profile": "plain" });
    let body_file = write(d, "sign.json", &body.to_string());
    let ca_ski = {
        let v: Value = serde_json::from_str(&ok(portcullis(d, &["cert", "info", "ca.pem"])))
            .expect("info JSON");
        v["subject_key_id"].as_str().expect("ski").to_string()
    };

    let (mut server, port) = start_ca_serve(d, &[]);
    let url = format!("http://127.0.0.1:{port}/api/v1/cfssl/sign");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let killed = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let clients: Vec<_> = (0..THREADS)
        .map(|_| {
            let (seen, killed, url, body_file) =
                (seen.clone(), killed.clone(), url.clone(), body_file.clone());
            std::thread::spawn(move || {
                for _ in 0..MAX_PER_THREAD {
                    if Instant::now() > deadline {
                        break;
                    }
                    // Read the flag before the request: a failure is only
                    // expected if the kill may have happened during it.
                    let kill_may_have_begun = killed.load(Ordering::SeqCst);
                    let r = sign_once(&url, &body_file);
                    let after = killed.load(Ordering::SeqCst);
                    let mut s = seen.lock().expect("lock");
                    match r {
                        Ok(pem) => s.received.push(pem),
                        Err(_) if after => {
                            s.cut_off += 1;
                            break;
                        }
                        Err(e) => {
                            s.unexpected.push(e);
                            break;
                        }
                    }
                    if kill_may_have_begun {
                        // The server is gone; no point in asking again.
                        break;
                    }
                }
            })
        })
        .collect();

    // Kill mid-burst: after ~0.7 s, or once half the burst is answered if
    // that comes first, and never before the first answer.
    let poll_until = Instant::now() + Duration::from_secs(30);
    loop {
        let n = seen.lock().expect("lock").received.len();
        let elapsed = start.elapsed();
        if n >= 1 && (elapsed >= Duration::from_millis(700) || n >= THREADS * MAX_PER_THREAD / 2) {
            break;
        }
        if Instant::now() > poll_until || !seen.lock().expect("lock").unexpected.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    killed.store(true, Ordering::SeqCst);
    server.kill9();
    for c in clients {
        c.join().expect("client thread");
    }
    let seen = std::mem::take(&mut *seen.lock().expect("lock"));
    assert!(
        seen.unexpected.is_empty(),
        "requests failed while the server was up: {:?}",
        seen.unexpected
    );
    assert!(
        !seen.received.is_empty(),
        "no certificate was issued before the kill"
    );

    // What the clients hold.
    let mut received = HashSet::new();
    for (i, pem) in seen.received.iter().enumerate() {
        let (serial, aki) = serial_and_aki(d, pem, i);
        assert_eq!(aki, ca_ski, "certificate {i} names another issuer");
        assert!(
            received.insert(serial.clone()),
            "serial {serial} was issued twice"
        );
    }

    // Restart on the same log.
    let (_server, port) = start_ca_serve(d, &[]);
    let db = d.join("certs.db");
    assert_eq!(
        sqlite(&db, "PRAGMA integrity_check;"),
        vec!["ok".to_string()]
    );
    let logged: Vec<String> = sqlite(&db, "SELECT serial_number FROM certificates;");
    let logged_set: HashSet<&String> = logged.iter().collect();
    assert_eq!(
        logged_set.len(),
        logged.len(),
        "a serial repeats in the log"
    );
    let repeats = sqlite(
        &db,
        "SELECT serial_number FROM certificates GROUP BY serial_number HAVING count(*) > 1;",
    );
    assert!(repeats.is_empty(), "serials repeat: {repeats:?}");
    let lost: Vec<&String> = received
        .iter()
        .filter(|s| !logged_set.contains(s))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} received certificates are not in the log after the crash: {lost:?}",
        lost.len(),
        received.len()
    );
    eprintln!(
        "crash test: {} certificates received before the kill, {} requests cut off by it, \
         {} rows in the log after restart",
        received.len(),
        seen.cut_off,
        logged.len()
    );

    // The restarted CA signs again, and records it.
    let (status, text) = curl_post(
        &format!("http://127.0.0.1:{port}/api/v1/cfssl/sign"),
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    let pem = v["result"]["certificate"].as_str().expect("certificate");
    let (serial, _) = serial_and_aki(d, pem, usize::MAX);
    assert!(
        !logged_set.contains(&serial),
        "the restarted CA reused serial {serial}"
    );
    assert_eq!(cert_rows(&db), logged.len() as u64 + 1);
    assert_eq!(
        sqlite(
            &db,
            &format!("SELECT count(*) FROM certificates WHERE serial_number = '{serial}';")
        ),
        vec!["1".to_string()]
    );
}

/// How many kill/restart rounds: 3 in the suite, 50 from scripts/crash.sh
/// (PORTCULLIS_CRASH_ITERATIONS).
fn crash_iterations() -> usize {
    std::env::var("PORTCULLIS_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// Serial (decimal) and AKI of a PEM certificate, parsed in-process (a
/// process per certificate would dominate 50 rounds).
fn serial_aki_of(pem: &str) -> (String, String) {
    let info = pki::info::cert_info(pem.as_bytes()).expect("received certificate parses");
    (info.serial_number, info.authority_key_id)
}

/// `kill -9` of `ca serve` at a random point of a signing burst, again and
/// again on the same issuance log. After every restart: SQLite's
/// integrity check passes, every certificate any client ever received is
/// in the log, and no serial repeats (in the log or among what clients
/// hold). The kill points come from a seeded generator
/// (PORTCULLIS_CRASH_SEED), so a failing round replays.
#[test]
fn ca_crash_kill9_at_random_points_repeatedly() {
    need("curl");
    need("openssl");
    need("sqlite3");
    let dir = tempdir();
    let d = dir.path();
    init_ca(d);
    server_config(d);
    let csr = openssl_csr(
        d,
        "burst",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=burst.acme.test",
        &[],
    );
    let csr = std::fs::read_to_string(csr).expect("read CSR");
    let body = serde_json::json!({ "certificate_request": csr, "profile": "plain" });
    let body_file = write(d, "sign.json", &body.to_string());
    let ca_ski = {
        let v: Value = serde_json::from_str(&ok(portcullis(d, &["cert", "info", "ca.pem"])))
            .expect("info JSON");
        v["subject_key_id"].as_str().expect("ski").to_string()
    };
    let db = d.join("certs.db");
    let mut rng: u64 = std::env::var("PORTCULLIS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_CAFE)
        | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let rounds = crash_iterations();
    let mut held: HashSet<String> = HashSet::new();
    let (mut total_cut, mut total_received) = (0usize, 0usize);
    for round in 0..rounds {
        let (mut server, port) = start_ca_serve(d, &[]);
        let url = format!("http://127.0.0.1:{port}/api/v1/cfssl/sign");
        // Kill between 0 and 1.5 s into the burst.
        let kill_after = Duration::from_millis(next() % 1500);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let killed = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + Duration::from_secs(30);
        let clients: Vec<_> = (0..THREADS)
            .map(|_| {
                let (seen, killed, url, body_file) =
                    (seen.clone(), killed.clone(), url.clone(), body_file.clone());
                std::thread::spawn(move || {
                    for _ in 0..MAX_PER_THREAD {
                        if Instant::now() > deadline || killed.load(Ordering::SeqCst) {
                            break;
                        }
                        let r = sign_once(&url, &body_file);
                        let after = killed.load(Ordering::SeqCst);
                        let mut s = seen.lock().expect("lock");
                        match r {
                            Ok(pem) => s.received.push(pem),
                            Err(_) if after => {
                                s.cut_off += 1;
                                break;
                            }
                            Err(e) => {
                                s.unexpected.push(e);
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(kill_after);
        killed.store(true, Ordering::SeqCst);
        server.kill9();
        for c in clients {
            c.join().expect("client thread");
        }
        let seen = std::mem::take(&mut *seen.lock().expect("lock"));
        assert!(
            seen.unexpected.is_empty(),
            "round {round}: requests failed while the server was up: {:?}",
            seen.unexpected
        );
        for pem in &seen.received {
            let (serial, aki) = serial_aki_of(pem);
            assert_eq!(aki, ca_ski, "round {round}: another issuer");
            assert!(
                held.insert(serial.clone()),
                "round {round}: serial {serial} was issued twice"
            );
        }
        total_cut += seen.cut_off;
        total_received += seen.received.len();

        // The store after the crash, before anything else touches it.
        assert_eq!(
            sqlite(&db, "PRAGMA integrity_check;"),
            vec!["ok".to_string()],
            "round {round}: integrity check"
        );
        let logged = sqlite(&db, "SELECT serial_number FROM certificates;");
        let logged_set: HashSet<&String> = logged.iter().collect();
        assert_eq!(
            logged_set.len(),
            logged.len(),
            "round {round}: a serial repeats in the log"
        );
        let lost: Vec<&String> = held.iter().filter(|s| !logged_set.contains(s)).collect();
        assert!(
            lost.is_empty(),
            "round {round} (kill after {kill_after:?}): {} received certificates are not in the log: {lost:?}",
            lost.len()
        );
    }
    // The CA signs again after the last crash.
    let (_server, port) = start_ca_serve(d, &[]);
    let (status, text) = curl_post(
        &format!("http://127.0.0.1:{port}/api/v1/cfssl/sign"),
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    eprintln!(
        "crash rounds: {rounds} kill -9 survived, {total_received} certificates received \
         (all in the log, no serial repeated), {total_cut} requests cut off, {} rows in the log",
        cert_rows(&db)
    );
}
