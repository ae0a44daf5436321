//! Crash consistency of the control plane's API writes: `kill -9` of
//! `portcullis serve` (SQLite store under `data_dir`) at a random point of
//! a burst of account and hostname creations, then a restart on the same
//! data dir, again and again. After each kill: SQLite's integrity and
//! foreign-key checks pass, every write answered 2xx is in the store, no
//! object is half-written (a hostname without its account, an account
//! without its managed CA, an object without its audit entry), and every acknowledged write has its audit
//! entry; the restarted server serves them through the API.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;

const TOKEN: &str = "crash-test-operator-token-0123456789abcdef";

/// One API call with curl: Ok((status, body)) when an answer came back,
/// Err when the connection failed or was cut off (the kill).
fn call(
    admin: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut c = Command::new("curl");
    c.args([
        "-sS",
        "--max-time",
        "20",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ])
    .args(["-H", &format!("Authorization: Bearer {TOKEN}")]);
    if let Some(b) = body {
        c.args(["-H", "content-type: application/json", "--data-binary"])
            .arg(b.to_string());
    }
    let out = c
        .arg(format!("http://127.0.0.1:{admin}{path}"))
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let code: u16 = code.trim().parse().unwrap_or(0);
    let v = serde_json::from_str(body).unwrap_or(Value::Null);
    Ok((code, v))
}

fn start(d: &Path, admin: u16) -> ChildGuard {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(d.join("serve.log"))
        .expect("log");
    let child = Command::new(bin())
        .args(["serve", "--config", "gw.toml"])
        .current_dir(d)
        .env("PORTCULLIS_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn serve");
    let mut g = ChildGuard(Some(child));
    wait_port(admin, &mut g);
    g
}

/// What the client thread was told.
#[derive(Default)]
struct Acked {
    /// Account ids answered 201.
    accounts: Vec<i64>,
    /// Hostname names answered 201, with their account.
    hostnames: Vec<(String, i64)>,
    /// Answers that are neither 201 nor a cut-off connection.
    unexpected: Vec<String>,
    cut_off: usize,
}

fn query(db: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut st = db.prepare(sql).expect("prepare");
    st.query_map([], |r| r.get::<_, rusqlite::types::Value>(0))
        .expect("query")
        .map(|v| match v.expect("row") {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
        .collect()
}

fn rounds() -> usize {
    std::env::var("PORTCULLIS_CONTROL_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

#[test]
fn control_crash_kill9_during_api_writes_loses_no_acknowledged_write() {
    need("curl");
    let dir = tempdir();
    let d = dir.path();
    let admin = free_port();
    let https = free_port();
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["static.test".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    write(d, "server.pem", &cert.pem());
    write(d, "server-key.pem", &key.serialize_pem());
    write(
        d,
        "gw.toml",
        &format!(
            "[server]\nhttps = \"127.0.0.1:{https}\"\nadmin = \"127.0.0.1:{admin}\"\ndata_dir = \"data\"\n\n[[hostname]]\nname = \"static.test\"\ncert = \"server.pem\"\nkey = \"server-key.pem\"\norigin = \"http://127.0.0.1:9\"\n"
        ),
    );
    let mut rng: u64 = std::env::var("PORTCULLIS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_C0DE);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let db_path = d.join("data/portcullis.db");
    let mut all_accounts: Vec<i64> = Vec::new();
    let mut all_hostnames: Vec<(String, i64)> = Vec::new();
    let (mut total_cut, mut total_rows) = (0, 0);
    let rounds = rounds();
    let t0 = Instant::now();
    for round in 0..rounds {
        let mut server = start(d, admin);
        let kill_after = Duration::from_millis(next() % 1500);
        let acked = Arc::new(Mutex::new(Acked::default()));
        let killed = Arc::new(AtomicBool::new(false));
        let client = {
            let (acked, killed) = (acked.clone(), killed.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                // Bounded: at most 200 pairs of writes per round.
                for i in 0..200 {
                    if Instant::now() > deadline || killed.load(Ordering::SeqCst) {
                        break;
                    }
                    let name = format!("crash-{round}-{i}");
                    let r = call(
                        admin,
                        "POST",
                        "/api/v1/accounts",
                        Some(&json!({"name": name})),
                    );
                    let id = match r {
                        Ok((201, v)) => {
                            let id = v["id"].as_i64().expect("account id");
                            acked.lock().expect("lock").accounts.push(id);
                            id
                        }
                        Ok((code, v)) if !killed.load(Ordering::SeqCst) => {
                            acked
                                .lock()
                                .expect("lock")
                                .unexpected
                                .push(format!("account {code} {v}"));
                            break;
                        }
                        _ => {
                            acked.lock().expect("lock").cut_off += 1;
                            break;
                        }
                    };
                    let host = format!("h{i}.r{round}.crash.test");
                    let body =
                        json!({"name": host, "origin": "http://127.0.0.1:9", "account_id": id});
                    match call(admin, "POST", "/api/v1/hostnames", Some(&body)) {
                        Ok((201, _)) => acked.lock().expect("lock").hostnames.push((host, id)),
                        Ok((code, v)) if !killed.load(Ordering::SeqCst) => {
                            acked
                                .lock()
                                .expect("lock")
                                .unexpected
                                .push(format!("hostname {code} {v}"));
                            break;
                        }
                        _ => {
                            acked.lock().expect("lock").cut_off += 1;
                            break;
                        }
                    }
                }
            })
        };
        std::thread::sleep(kill_after);
        killed.store(true, Ordering::SeqCst);
        server.kill9();
        client.join().expect("client thread");
        let acked = std::mem::take(&mut *acked.lock().expect("lock"));
        assert!(
            acked.unexpected.is_empty(),
            "round {round}: unexpected answers while the server was up: {:?}",
            acked.unexpected
        );
        total_cut += acked.cut_off;
        all_accounts.extend(&acked.accounts);
        all_hostnames.extend(acked.hostnames.iter().cloned());

        // The store as the kill left it (opening it replays the WAL, as the
        // restarted server would).
        {
            let db = rusqlite::Connection::open(&db_path).expect("open the store");
            assert_eq!(
                query(&db, "PRAGMA integrity_check"),
                ["ok"],
                "round {round}"
            );
            assert!(
                query(&db, "PRAGMA foreign_key_check").is_empty(),
                "round {round}: foreign-key violations"
            );
            let accounts: HashSet<String> =
                query(&db, "SELECT id FROM accounts").into_iter().collect();
            let hostnames: HashSet<String> = query(&db, "SELECT name FROM hostnames")
                .into_iter()
                .collect();
            for id in &all_accounts {
                assert!(
                    accounts.contains(&id.to_string()),
                    "round {round}: acknowledged account {id} lost"
                );
            }
            for (h, _) in &all_hostnames {
                assert!(
                    hostnames.contains(h),
                    "round {round}: acknowledged hostname {h} lost"
                );
            }
            let orphans = query(
                &db,
                "SELECT h.name FROM hostnames h LEFT JOIN accounts a ON a.id = h.account_id WHERE a.id IS NULL",
            );
            assert!(
                orphans.is_empty(),
                "round {round}: hostnames without their account: {orphans:?}"
            );
            let without_ca = query(
                &db,
                "SELECT a.id FROM accounts a LEFT JOIN managed_cas m ON m.account_id = a.id WHERE m.account_id IS NULL",
            );
            assert!(
                without_ca.is_empty(),
                "round {round}: accounts without their managed CA: {without_ca:?}"
            );
            let audited: HashSet<String> = query(
                &db,
                "SELECT action || ' ' || target FROM audit_log WHERE action IN ('account.create', 'hostname.create')",
            )
            .into_iter()
            .collect();
            // Every object in the store (acknowledged or not) was written
            // with its audit entry, in the same transaction.
            for id in &accounts {
                assert!(
                    audited.contains(&format!("account.create account:{id}")),
                    "round {round}: account {id} has no audit entry"
                );
            }
            for h in &hostnames {
                if h.ends_with(".crash.test") {
                    assert!(
                        audited.contains(&format!("hostname.create hostname:{h}")),
                        "round {round}: hostname {h} has no audit entry"
                    );
                }
            }
            total_rows = accounts.len();
        }
    }
    // The restarted server serves everything acknowledged.
    let _server = start(d, admin);
    // Page through every account (pages of at most 1,000).
    let mut listed: HashSet<i64> = HashSet::new();
    let mut after = 0;
    loop {
        let (code, v) = call(
            admin,
            "GET",
            &format!("/api/v1/accounts?limit=1000&after_id={after}"),
            None,
        )
        .expect("list accounts");
        assert_eq!(code, 200, "{v}");
        let ids: Vec<i64> = v["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|a| a["id"].as_i64())
            .collect();
        let Some(last) = ids.iter().max() else { break };
        after = *last;
        listed.extend(ids);
    }
    for id in &all_accounts {
        assert!(listed.contains(id), "account {id} not served after restart");
    }
    // The store check above covers every hostname; through the API, a
    // bounded sample (every 10th, and the last one).
    let sample = all_hostnames.iter().step_by(10).chain(all_hostnames.last());
    for (h, id) in sample {
        let (code, v) = call(
            admin,
            "GET",
            &format!("/api/v1/hostnames/{h}?account_id={id}"),
            None,
        )
        .expect("get hostname");
        assert_eq!(code, 200, "{h}: {v}");
        assert_eq!(v["account_id"], *id);
    }
    // And takes writes again.
    let (code, v) = call(
        admin,
        "POST",
        "/api/v1/accounts",
        Some(&json!({"name": "after-crash"})),
    )
    .expect("create");
    assert_eq!(code, 201, "{v}");
    assert!(
        !all_accounts.is_empty(),
        "no write was acknowledged before any kill"
    );
    eprintln!(
        "control crash rounds: {rounds} kill -9 survived in {:.1} s, {} accounts and {} hostnames acknowledged, \
         all in the store with their audit entries, {total_cut} writes cut off by the kills, \
         {total_rows} accounts in the store",
        t0.elapsed().as_secs_f64(),
        all_accounts.len(),
        all_hostnames.len()
    );
}
