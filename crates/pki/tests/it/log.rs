//! The issuance log under concurrency: many writers through the group-commit
//! thread, a reopen, and refusal of a repeated (serial, AKI).

use pki::log::{CertLog, CertRecord};
use pki::serial::Serial;
use pki::PkiError;
use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use time::{Duration, OffsetDateTime};

const AKI: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";

fn record(serial: &str, aki: &str, n: usize) -> CertRecord {
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero nanoseconds");
    CertRecord {
        serial: serial.to_string(),
        aki: aki.to_string(),
        ca_label: "CN=Test Root".into(),
        profile: "plain".into(),
        subject: format!("CN=client-{n}"),
        sans: vec![format!("client-{n}.acme.test"), "10.0.0.1".into()],
        not_before: now - Duration::minutes(5),
        not_after: now + Duration::days(30),
        pem: format!("-----BEGIN CERTIFICATE-----\nfake {n}\n-----END CERTIFICATE-----\n"),
        status: "good".into(),
        reason: 0,
        revoked_at: None,
    }
}

#[test]
fn concurrent_records_are_all_found_after_reopen() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 50;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("certs.db");
    let log = Arc::new(CertLog::open(&path).expect("open"));
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (log, start) = (log.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..PER_THREAD)
                    .map(|i| {
                        let rec = record(&Serial::random().to_decimal(), AKI, t * PER_THREAD + i);
                        log.record(rec.clone()).expect("record");
                        rec
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let written: Vec<CertRecord> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("writer thread"))
        .collect();
    assert_eq!(written.len(), THREADS * PER_THREAD);
    // Every record() returned, so every row is durable: reopen and look.
    drop(Arc::try_unwrap(log).expect("last handle"));
    let log = CertLog::open(&path).expect("reopen");
    assert_eq!(log.count().expect("count"), (THREADS * PER_THREAD) as u64);
    let serials: HashSet<String> = log.serials(AKI).expect("serials").into_iter().collect();
    assert_eq!(serials.len(), THREADS * PER_THREAD);
    for rec in &written {
        assert!(serials.contains(&rec.serial));
        let got = log.get(&rec.serial, AKI).expect("get").expect("present");
        assert_eq!(&got, rec);
    }
}

#[test]
fn a_repeated_serial_and_aki_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("certs.db");
    let log = CertLog::open(&path).expect("open");
    let serial = Serial::random().to_decimal();
    log.record(record(&serial, AKI, 1)).expect("first");
    match log.record(record(&serial, AKI, 2)) {
        Err(PkiError::Log(m)) => assert!(m.contains("already in the issuance log"), "{m}"),
        other => panic!("a repeated serial was not refused: {other:?}"),
    }
    // The first record stands, unchanged.
    assert_eq!(log.count().expect("count"), 1);
    let got = log.get(&serial, AKI).expect("get").expect("present");
    assert_eq!(got.subject, "CN=client-1");
    // The same serial under another issuer is another certificate.
    let other_aki = "ffeeddccbbaa99887766554433221100ffeeddcc";
    log.record(record(&serial, other_aki, 3))
        .expect("same serial, other issuer");
    assert_eq!(log.count().expect("count"), 2);
    // And after a reopen the refusal still holds.
    drop(log);
    let log = CertLog::open(&path).expect("reopen");
    assert!(log.record(record(&serial, AKI, 4)).is_err());
    assert_eq!(log.count().expect("count"), 2);
}

#[test]
fn a_duplicate_inside_a_group_commit_fails_alone() {
    // Writers released together so their jobs share commits; among them,
    // pairs race for the same serial. Exactly one of each pair wins and
    // every other record of the group is kept.
    const PAIRS: usize = 16;
    const SOLOS: usize = 32;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("certs.db");
    let log = Arc::new(CertLog::open(&path).expect("open"));
    let pair_serials: Vec<String> = (0..PAIRS).map(|_| Serial::random().to_decimal()).collect();
    let mut jobs: Vec<(String, usize)> = Vec::new();
    for (i, s) in pair_serials.iter().enumerate() {
        jobs.push((s.clone(), 2 * i));
        jobs.push((s.clone(), 2 * i + 1));
    }
    let solo_serials: Vec<String> = (0..SOLOS).map(|_| Serial::random().to_decimal()).collect();
    for (i, s) in solo_serials.iter().enumerate() {
        jobs.push((s.clone(), 1000 + i));
    }
    let start = Arc::new(Barrier::new(jobs.len()));
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|(serial, n)| {
            let (log, start) = (log.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                (serial.clone(), log.record(record(&serial, AKI, n)).is_ok())
            })
        })
        .collect();
    let results: Vec<(String, bool)> = handles
        .into_iter()
        .map(|h| h.join().expect("writer thread"))
        .collect();
    for s in &pair_serials {
        let wins = results.iter().filter(|(x, ok)| x == s && *ok).count();
        assert_eq!(wins, 1, "serial {s} was recorded {wins} times");
    }
    for s in &solo_serials {
        assert!(results.iter().any(|(x, ok)| x == s && *ok), "{s} was lost");
    }
    drop(Arc::try_unwrap(log).expect("last handle"));
    let log = CertLog::open(&path).expect("reopen");
    assert_eq!(log.count().expect("count"), (PAIRS + SOLOS) as u64);
}
