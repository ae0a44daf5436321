//! Store scale benchmark (bench/store-scale.sh): N hostnames in the store
//! (SQLite or PostgreSQL), then
//!
//! * snapshot build: reading every hostname from the store, and building
//!   the gateway's sites from it (TLS configs, shared trust stores);
//! * memory per hostname: resident memory held by the sites, per hostname;
//! * lookup: `Sites::get` by SNI, at N and at 1,000 hostnames;
//! * propagation of one change, p50/p99 over `--changes` changes: from the
//!   writer's call until the gateway serves the new mode, through the same
//!   path as `portcullis serve`/`gateway` (announcement, `changes_since`,
//!   partial snapshot, one site rebuilt, copy-on-write swap). On
//!   PostgreSQL the follower is a second store (its own connections), so
//!   the announcement goes through NOTIFY.
//!
//! Prints one JSON object per run on stdout.
//!
//! Usage: `store_scale --backend sqlite|postgres [--hostnames N]
//! [--changes N] [--pg URL]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::config::{BlockResponse, Mode, OriginTimeouts};
use gateway::snapshot::{CaSource, SiteBuilder, SiteSource};
use gateway::{Gateway, Site, Sites};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use store::{
    Actor, Changes, HostnameUpdate, MtlsMode, NewAccount, NewCa, NewHostname, Secret, SnapshotData,
    Store, StoreOptions,
};

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn mode(m: MtlsMode) -> Mode {
    match m {
        MtlsMode::Off => Mode::Off,
        MtlsMode::Report => Mode::Report,
        MtlsMode::Enforce => Mode::Enforce,
    }
}

/// The follower's build step (what cmd/live.rs does).
fn build(b: &mut SiteBuilder, data: &SnapshotData) -> Vec<Arc<Site>> {
    let cas: std::collections::BTreeMap<&str, CaSource> = data
        .cas
        .iter()
        .map(|(k, c)| {
            (
                k.as_str(),
                CaSource {
                    pem: c.pem.as_bytes().to_vec(),
                    crl: None,
                },
            )
        })
        .collect();
    data.hostnames
        .iter()
        .filter_map(|h| {
            let src = SiteSource {
                name: &h.name,
                cert_pem: h.cert_pem.as_bytes(),
                key_pem: h.key_pem.expose(),
                origin: h.origin.parse().ok()?,
                origin_tls: None,
                mode: mode(h.mode),
                block: BlockResponse::default(),
                cas: h.trust.iter().filter_map(|t| cas.get(t.as_str())).collect(),
                identity: Default::default(),
                edge: Default::default(),
            };
            b.build(&src).ok()
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

struct Args {
    backend: String,
    hostnames: usize,
    changes: usize,
    pg: String,
}

fn args() -> Args {
    let mut a = Args {
        backend: "sqlite".into(),
        hostnames: 100_000,
        changes: 100,
        pg: "postgres://postgres@127.0.0.1:5432/test".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--backend" => a.backend = v,
            "--hostnames" => a.hostnames = v.parse().unwrap_or(a.hostnames),
            "--changes" => a.changes = v.parse().unwrap_or(a.changes),
            "--pg" => a.pg = v,
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    a
}

async fn open(a: &Args, dir: &std::path::Path, schema: &str) -> Arc<dyn Store> {
    let opts = StoreOptions {
        secret_key: Some([3u8; 32]),
        pg_schema: (a.backend == "postgres").then(|| schema.to_owned()),
        ..StoreOptions::default()
    };
    let r: store::Result<Arc<dyn Store>> = if a.backend == "postgres" {
        store::open_postgres(&a.pg, opts)
            .await
            .map(|s| s as Arc<dyn Store>)
    } else {
        store::open_sqlite(&dir.join("store.db"), opts)
            .await
            .map(|s| s as Arc<dyn Store>)
    };
    match r {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot open the {} store: {e}", a.backend);
            std::process::exit(1);
        }
    }
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let schema = format!("bench_{}", std::process::id());
    let writer = open(&a, dir.path(), &schema).await;

    // Material: one CA, one server certificate and key for every hostname.
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("key");
    let ca_pem = ca.self_signed(&ca_key).expect("ca").pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = CertificateParams::new(vec!["*.bench.test".to_owned()]).expect("params");
    let leaf_key = KeyPair::generate().expect("key");
    let cert_pem = leaf.signed_by(&leaf_key, &issuer).expect("leaf").pem();
    let key_pem = leaf_key.serialize_pem();

    let actor = Actor::System;
    let acc = writer
        .create_account(
            &actor,
            NewAccount {
                name: "bench".into(),
                ca_limit: None,
            },
        )
        .await
        .expect("account");
    let ca = writer
        .create_ca(
            &actor,
            acc.id,
            NewCa {
                name: "root".into(),
                pem: ca_pem,
                subject: "CN=bench".into(),
                not_after: 4_000_000_000,
                crl_pem: None,
            },
        )
        .await
        .expect("ca");
    let t = Instant::now();
    let names: Vec<String> = (0..a.hostnames)
        .map(|i| format!("h{i}.bench.test"))
        .collect();
    for chunk in names.chunks(10_000) {
        let batch = chunk
            .iter()
            .map(|n| NewHostname {
                name: n.clone(),
                cert_pem: cert_pem.clone(),
                key_pem: Secret::from(key_pem.as_str()),
                origin: "http://127.0.0.1:9".into(),
                mode: MtlsMode::Report,
                ca_ids: vec![ca.id],
                ..NewHostname::default()
            })
            .collect();
        writer
            .create_hostnames(&actor, acc.id, batch)
            .await
            .expect("import");
    }
    let import_s = t.elapsed().as_secs_f64();

    // Snapshot build.
    let follower_store = if a.backend == "postgres" {
        open(&a, dir.path(), &schema).await
    } else {
        writer.clone()
    };
    let rss0 = rss_bytes();
    let t = Instant::now();
    let data = follower_store.snapshot(None).await.expect("snapshot");
    let read_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut builder = SiteBuilder::new(OriginTimeouts::default());
    let built = build(&mut builder, &data);
    assert_eq!(built.len(), a.hostnames, "every hostname builds");
    let sites = Sites::default().with_changes(built, std::iter::empty::<&str>());
    let build_s = t.elapsed().as_secs_f64();
    let mut version = data.version;
    drop(data);
    let rss1 = rss_bytes();
    let per_host = rss1.saturating_sub(rss0) as f64 / a.hostnames as f64;

    // Lookups: at N, and at 1,000 for comparison.
    let lookups = 1_000_000usize;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let probe: Vec<String> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            names[(x % a.hostnames as u64) as usize].clone()
        })
        .collect();
    let t = Instant::now();
    let mut hits = 0usize;
    for i in 0..lookups {
        hits += usize::from(sites.get(&probe[i % probe.len()]).is_some());
    }
    let lookup_ns = t.elapsed().as_nanos() as f64 / lookups as f64;
    assert_eq!(hits, lookups);
    let small: Vec<Arc<Site>> = sites.iter().take(1000).cloned().collect();
    let small_names: Vec<String> = small.iter().map(|s| s.name.clone()).collect();
    let small = Sites::default().with_changes(small, std::iter::empty::<&str>());
    let t = Instant::now();
    for i in 0..lookups {
        hits += usize::from(small.get(&small_names[i % small_names.len()]).is_some());
    }
    let lookup_small_ns = t.elapsed().as_nanos() as f64 / lookups as f64;
    assert_eq!(hits, 2 * lookups);

    // Propagation: a follower like the gateway's, and 100 changes.
    let gw = Gateway::new(sites);
    let gw2 = gw.clone();
    let fs = follower_store.clone();
    let follower = tokio::spawn(async move {
        let mut rx = fs.subscribe();
        loop {
            if let Ok(Changes::Hostnames { version: v, names }) = fs.changes_since(version).await {
                let data = fs.snapshot(Some(names.clone())).await.expect("partial");
                let ups = build(&mut builder, &data);
                gw2.update_sites(|cur| cur.with_changes(ups, std::iter::empty::<&str>()));
                version = v;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                () = tokio::time::sleep(Duration::from_secs(1)) => {},
            }
        }
    });
    let mut times = Vec::with_capacity(a.changes);
    for i in 0..a.changes {
        let name = &names[(i * 7919) % a.hostnames];
        let h = writer
            .find_hostname(name)
            .await
            .expect("find")
            .expect("exists");
        let to = if h.mode == MtlsMode::Enforce {
            MtlsMode::Report
        } else {
            MtlsMode::Enforce
        };
        let t = Instant::now();
        writer
            .update_hostname(
                &actor,
                acc.id,
                h.id,
                HostnameUpdate {
                    mode: Some(to),
                    ..HostnameUpdate::default()
                },
            )
            .await
            .expect("update");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if gw.sites().get(name).is_some_and(|s| s.mode == mode(to)) {
                break;
            }
            assert!(Instant::now() < deadline, "change not applied within 10 s");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        times.push(t.elapsed());
    }
    follower.abort();
    times.sort();
    println!(
        "{}",
        serde_json::json!({
            "backend": a.backend,
            "hostnames": a.hostnames,
            "import_s": (import_s * 1000.0).round() / 1000.0,
            "snapshot_read_s": (read_s * 1000.0).round() / 1000.0,
            "sites_build_s": (build_s * 1000.0).round() / 1000.0,
            "memory_per_hostname_bytes": per_host.round(),
            "lookup_ns": (lookup_ns * 10.0).round() / 10.0,
            "lookup_ns_at_1000": (lookup_small_ns * 10.0).round() / 10.0,
            "changes": a.changes,
            "propagation_p50_ms": (percentile(&times, 0.5) * 100.0).round() / 100.0,
            "propagation_p99_ms": (percentile(&times, 0.99) * 100.0).round() / 100.0,
        })
    );
    if a.backend == "postgres" {
        drop(follower_store);
        drop(writer);
        if let Ok((c, conn)) = tokio_postgres_cleanup(&a.pg).await {
            tokio::spawn(conn);
            let _ = c
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .await;
        }
    }
}

async fn tokio_postgres_cleanup(
    url: &str,
) -> Result<
    (
        tokio_postgres::Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    tokio_postgres::Error,
> {
    tokio_postgres::connect(url, tokio_postgres::NoTls).await
}
