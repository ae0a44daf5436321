//! Issuance with profiles built in code (bypassing config validation):
//! out-of-range validity is an error, never a panic.

use pki::config::SigningPolicy;
use pki::csr_spec::CsrSpec;
use pki::issue::{init_root, CertificateAuthority, SignRequest};
use pki::PkiError;
use std::time::Duration;
use time::OffsetDateTime;

fn ca_and_csr() -> (CertificateAuthority<pki::key::PrivateKey>, Vec<u8>) {
    let now = OffsetDateTime::now_utc();
    let root = init_root(
        &CsrSpec::from_json(br#"{"CN":"Limits Root"}"#).expect("spec"),
        now,
    )
    .expect("root");
    let ca = CertificateAuthority::new(root.cert_pem.as_bytes(), root.key).expect("CA");
    let (_key, csr) = CsrSpec::from_json(br#"{"CN":"svc","hosts":["svc.test"]}"#)
        .expect("spec")
        .generate()
        .expect("CSR");
    (ca, csr.into_bytes())
}

#[test]
fn a_backdate_before_1950_is_an_error_not_a_panic() {
    let (ca, csr) = ca_and_csr();
    let mut policy = SigningPolicy::builtin();
    policy.default.backdate = Duration::from_secs(100_000_000_000);
    let req = SignRequest {
        csr,
        ..Default::default()
    };
    match ca.sign(&policy, &req, OffsetDateTime::now_utc()) {
        Err(PkiError::Generate(m)) => assert!(m.contains("before 1950"), "{m}"),
        other => panic!("expected a generation error, got {other:?}"),
    }
    // An absurd expiry is capped at the CA's end rather than overflowing.
    policy.default.backdate = Duration::from_secs(300);
    policy.default.expiry = Duration::MAX;
    let issued = ca
        .sign(&policy, &req, OffsetDateTime::now_utc())
        .expect("signed");
    assert!(issued.not_after > issued.not_before);
}

#[test]
fn a_config_backdate_before_1950_is_refused_when_read() {
    let cfg = br#"{"signing":{"default":{"backdate":"27000000h"}}}"#;
    match SigningPolicy::from_json(cfg) {
        Err(PkiError::BadConfig(m)) => assert!(m.contains("reaches before 1950"), "{m}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}
