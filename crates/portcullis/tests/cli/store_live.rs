//! `portcullis serve` with a data dir follows its SQLite store live: a
//! change written through the `Store` trait (here from the test process,
//! on the same file) is served without a restart, checked with real curl.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::*;

use crate::gateway::Env;

/// Waits (bounded) until `f` is true; returns how long it took.
pub(crate) fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not seen within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).expect("read PKI file")
}

fn status(body: &str) -> String {
    let h = crate::gateway::headers(body);
    h.get("client-cert-status")
        .and_then(|v| v.first().cloned())
        .unwrap_or_default()
}

#[test]
fn serve_follows_its_sqlite_store_live() {
    let env = Env::start_with(|_, port, origin| {
        // One hostname from the file; the others come from the store.
        format!(
            r#"[server]
https = "127.0.0.1:{port}"
data_dir = "data"

[[hostname]]
name = "off.acme.test"
cert = "server.pem"
key = "server-key.pem"
origin = "http://127.0.0.1:{origin}"
"#
        )
    });
    let dir = env.path();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let key = load_or_create_key(&dir.join("data/store.key")).expect("store key");
    let s: Arc<SqlStore> = rt
        .block_on(open_sqlite(
            &dir.join("data/portcullis.db"),
            StoreOptions {
                secret_key: Some(key),
                ..StoreOptions::default()
            },
        ))
        .expect("open the serve's store");
    let actor = Actor::System;
    let acme = rt
        .block_on(s.create_account(
            &actor,
            NewAccount {
                name: "acme".into(),
                ca_limit: None,
            },
        ))
        .expect("account");
    let ca = rt
        .block_on(s.create_ca(
            &actor,
            acme.id,
            NewCa {
                name: "acme".into(),
                pem: read(dir, "ca.pem"),
                subject: "CN=Test Root".into(),
                not_after: 4_000_000_000,
                crl_pem: Some(read(dir, "ca.crl")),
            },
        ))
        .expect("ca");
    // Not served yet.
    assert_eq!(env.curl("report", Some("alice"), &[]).0, 0);

    let h = rt
        .block_on(s.create_hostname(
            &actor,
            acme.id,
            NewHostname {
                name: "report.acme.test".into(),
                cert_pem: read(dir, "server.pem"),
                key_pem: Secret::from(read(dir, "server-key.pem")),
                origin: format!("http://127.0.0.1:{}", env.origin.port),
                mode: MtlsMode::Report,
                ca_ids: vec![ca.id],
                ..NewHostname::default()
            },
        ))
        .expect("hostname");
    let took = eventually("new store hostname served", Duration::from_secs(15), || {
        env.curl("report", Some("alice"), &[]).0 == 200
    });
    eprintln!("store_live: new hostname served after {took:?}");
    let (code, _, body) = env.curl("report", Some("alice"), &[]);
    assert_eq!(code, 200);
    assert_eq!(status(&body), "valid", "{body}");
    let (_, _, body) = env.curl("report", Some("mallory"), &[]);
    assert_eq!(status(&body), "invalid", "{body}");
    let (_, _, body) = env.curl("report", Some("carol"), &[]);
    assert_eq!(
        status(&body),
        "invalid",
        "revoked by the stored CRL: {body}"
    );

    // Report mode: the verdicts become stored events (batched, off the
    // request path).
    eventually("events stored", Duration::from_secs(15), || {
        let ev = rt
            .block_on(s.query_events(EventQuery {
                hostname: Some("report.acme.test".into()),
                ..EventQuery::default()
            }))
            .expect("events");
        ev.iter()
            .any(|e| e.verdict == "valid" && e.fingerprint.is_some() && e.ski.is_some())
            && ev
                .iter()
                .any(|e| e.verdict == "invalid" && e.reason.is_some())
    });
    let counts = rt
        .block_on(s.event_counts(EventQuery {
            account_id: Some(acme.id),
            ..EventQuery::default()
        }))
        .expect("counts");
    assert!(counts.iter().any(|c| c.verdict == "valid"), "{counts:?}");

    // Switch to enforce: requests without a valid certificate are blocked.
    rt.block_on(s.update_hostname(
        &actor,
        acme.id,
        h.id,
        HostnameUpdate {
            mode: Some(MtlsMode::Enforce),
            ..HostnameUpdate::default()
        },
    ))
    .expect("enforce");
    let took = eventually("enforce applied", Duration::from_secs(15), || {
        env.curl("report", None, &[]).0 == 403
    });
    eprintln!("store_live: enforce applied after {took:?}");
    assert_eq!(env.curl("report", Some("alice"), &[]).0, 200);

    // The file's hostname wins over a store hostname of the same name.
    rt.block_on(s.create_hostname(
        &actor,
        acme.id,
        NewHostname {
            name: "off.acme.test".into(),
            cert_pem: read(dir, "server.pem"),
            key_pem: Secret::from(read(dir, "server-key.pem")),
            origin: format!("http://127.0.0.1:{}", env.origin.port),
            mode: MtlsMode::Enforce,
            ca_ids: vec![ca.id],
            ..NewHostname::default()
        },
    ))
    .expect("shadowed hostname");
    // Let the follower see it (the next change proves it has).
    let probe = rt
        .block_on(s.create_hostname(
            &actor,
            acme.id,
            NewHostname {
                name: "enforce.acme.test".into(),
                cert_pem: read(dir, "server.pem"),
                key_pem: Secret::from(read(dir, "server-key.pem")),
                origin: format!("http://127.0.0.1:{}", env.origin.port),
                mode: MtlsMode::Off,
                ..NewHostname::default()
            },
        ))
        .expect("probe hostname");
    eventually("probe served", Duration::from_secs(15), || {
        env.curl("enforce", None, &[]).0 == 200
    });
    assert_eq!(
        env.curl("off", None, &[]).0,
        200,
        "the file's off-mode hostname still serves"
    );

    // Deleted: no longer served (unknown name fails the handshake).
    rt.block_on(s.delete_hostname(&actor, acme.id, probe.id))
        .expect("delete");
    eventually("deletion applied", Duration::from_secs(15), || {
        env.curl("enforce", None, &[]).0 == 0
    });
    assert!(env.log().contains("gateway listening"), "{}", env.log());
}
