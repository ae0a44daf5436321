//! Key custody in the library: the audit chain under concurrent writers,
//! M-of-N sealing (threshold, repeats, wrong shares, seal again).

use pki::csr_spec::CsrSpec;
use pki::custody::sealed::{open_share, split, SealedKey};
use pki::custody::{CaKey, Secret};
use pki::issue::{init_root, CertificateAuthority, SignRequest};
use pki::log::{CertLog, CertRecord};
use pki::PkiError;
use std::sync::Arc;
use time::OffsetDateTime;

#[test]
fn audit_chain_stays_intact_under_concurrent_issue_and_appends() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = Arc::new(CertLog::open(dir.path().join("certs.db")).expect("open"));
    let now = OffsetDateTime::now_utc();
    let root = init_root(&CsrSpec::from_json(br#"{"CN":"Audit Root"}"#).unwrap(), now).unwrap();
    let ca = Arc::new(CertificateAuthority::new(root.cert_pem.as_bytes(), root.key).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (log, ca) = (log.clone(), ca.clone());
            std::thread::spawn(move || {
                for i in 0..10 {
                    let (_k, csr) = CsrSpec::from_json(br#"{"CN":"svc"}"#)
                        .unwrap()
                        .generate()
                        .unwrap();
                    let req = SignRequest {
                        csr: csr.into_bytes(),
                        ..Default::default()
                    };
                    let issued = ca
                        .sign(&pki::config::SigningPolicy::builtin(), &req, now)
                        .unwrap();
                    log.record(CertRecord::from_issued(&issued, "t")).unwrap();
                    log.audit_append("ocsp", &serde_json::json!({ "t": t, "i": i }))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let report = log.audit_verify().unwrap();
    assert_eq!(report.entries, 80);
    assert_eq!(report.broken, None);
    let events = log.audit_entries().unwrap();
    assert_eq!(events.iter().filter(|e| e.event == "issue").count(), 40);
}

fn pass(i: usize) -> Secret {
    Secret::new(format!("holder {i} passphrase").into_bytes())
}

#[test]
fn three_of_five_unseals_only_with_three_distinct_right_shares() {
    let now = OffsetDateTime::now_utc();
    let root = init_root(
        &CsrSpec::from_json(br#"{"CN":"Sealed Root"}"#).unwrap(),
        now,
    )
    .unwrap();
    let passes: Vec<Secret> = (1..=5).map(pass).collect();
    let s = split(&root.key, 3, &passes).unwrap();
    assert_eq!(s.shares.len(), 5);
    let sealed = SealedKey::from_json(&s.sealed).unwrap();
    let key_id = sealed.key_id().to_string();
    let key = CaKey::sealed(sealed);
    let ca = CertificateAuthority::new(root.cert_pem.as_bytes(), key.clone()).unwrap();
    let policy = pki::config::SigningPolicy::builtin();
    let req = || {
        let (_k, csr) = CsrSpec::from_json(br#"{"CN":"svc"}"#)
            .unwrap()
            .generate()
            .unwrap();
        SignRequest {
            csr: csr.into_bytes(),
            ..Default::default()
        }
    };
    assert!(key.is_sealed());
    assert!(matches!(key.ready(), Err(PkiError::Sealed)));
    assert!(ca.sign(&policy, &req(), now).is_err());

    // Wrong passphrase and a tampered share file are caught by the holder.
    let e = open_share(&s.shares[0], &pass(2)).unwrap_err();
    assert!(e.to_string().contains("wrong passphrase"), "{e}");
    let mut tampered: serde_json::Value = serde_json::from_str(&s.shares[0]).unwrap();
    let ct = tampered["ciphertext"].as_str().unwrap().to_string();
    let flipped = if ct.starts_with('A') {
        ct.replacen('A', "B", 1)
    } else {
        format!("A{}", &ct[1..])
    };
    tampered["ciphertext"] = flipped.into();
    assert!(open_share(&tampered.to_string(), &pass(1)).is_err());

    let shares: Vec<_> = (0..5)
        .map(|i| open_share(&s.shares[i], &pass(i + 1)).unwrap())
        .collect();
    let sealed = key.as_sealed().unwrap();
    let st = sealed.submit_share(&key_id, shares[0].expose()).unwrap();
    assert!(st.sealed && st.submitted == 1);
    // A repeated share does not count.
    let e = sealed
        .submit_share(&key_id, shares[0].expose())
        .unwrap_err();
    assert!(e.to_string().contains("already submitted"), "{e}");
    let st = sealed.submit_share(&key_id, shares[3].expose()).unwrap();
    assert!(st.sealed && st.submitted == 2);
    // A wrong share (one byte changed, as a decrypted-then-altered share) is refused by index.
    let mut bad = shares[4].expose().to_vec();
    bad[5] ^= 1;
    let e = sealed.submit_share(&key_id, &bad).unwrap_err();
    assert!(e.to_string().contains("share 5 is wrong"), "{e}");
    assert!(sealed.submit_share("00", shares[4].expose()).is_err());
    assert!(key.is_sealed());
    assert!(ca.sign(&policy, &req(), now).is_err());
    // The third distinct share unseals.
    let st = sealed.submit_share(&key_id, shares[2].expose()).unwrap();
    assert!(!st.sealed);
    assert!(!key.is_sealed());
    ca.sign(&policy, &req(), now).unwrap();
    // Sealed again: refuses.
    sealed.seal();
    assert!(key.is_sealed());
    assert!(ca.sign(&policy, &req(), now).is_err());
    assert!(!format!("{:?} {:?}", key, shares[0]).contains(&hex_of(shares[0].expose())));
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn split_refuses_bad_thresholds() {
    let now = OffsetDateTime::now_utc();
    let root = init_root(&CsrSpec::from_json(br#"{"CN":"R"}"#).unwrap(), now).unwrap();
    let p: Vec<Secret> = (1..=3).map(pass).collect();
    assert!(split(&root.key, 1, &p).is_err());
    assert!(split(&root.key, 4, &p).is_err());
    assert!(split(&root.key, 2, &[pass(1), Secret::new(vec![])]).is_err());
    assert!(SealedKey::from_json("{}").is_err());
}

#[test]
fn native_key_file_opens_by_its_label_and_signs() {
    use pki::custody::{Custody, KeyRef};
    let dir = tempfile::tempdir().expect("temp dir");
    let now = OffsetDateTime::now_utc();
    let root = init_root(
        &CsrSpec::from_json(br#"{"CN":"Native Root"}"#).unwrap(),
        now,
    )
    .unwrap();
    let good = Secret::new(b"native passphrase".to_vec());
    let pem = pki::custody::native::encrypt_pem(&root.key, &good).unwrap();
    assert!(pem.starts_with("-----BEGIN PORTCULLIS ENCRYPTED PRIVATE KEY-----"));
    let path = dir.path().join("ca-key.pem");
    std::fs::write(&path, pem.as_bytes()).unwrap();
    let r = KeyRef::parse(path.to_str().unwrap()).unwrap();

    let key = CaKey::open(&r, Some(&good)).unwrap();
    assert_eq!(key.custody(), Custody::Encrypted);
    let ca = CertificateAuthority::new(root.cert_pem.as_bytes(), key).unwrap();
    let (_k, csr) = CsrSpec::from_json(br#"{"CN":"svc"}"#)
        .unwrap()
        .generate()
        .unwrap();
    let req = SignRequest {
        csr: csr.into_bytes(),
        ..Default::default()
    };
    ca.sign(&pki::config::SigningPolicy::builtin(), &req, now)
        .unwrap();

    let e = CaKey::open(&r, Some(&Secret::new(b"guess-42".to_vec()))).unwrap_err();
    assert!(matches!(e, PkiError::Custody(_)), "{e}");
    assert!(e.to_string().contains("wrong passphrase"), "{e}");
    assert!(!e.to_string().contains("guess-42"), "{e}");
    let e = CaKey::open(&r, None).unwrap_err();
    assert!(e.to_string().contains("PORTCULLIS_KEY_PASSPHRASE"), "{e}");
}
