//! A small PKI made once per process: a P-256 root CA with an in-memory
//! key, a client leaf it signed, a CRL, a trust store and a signing policy
//! with an authsign profile. Built with the crates under test, so the
//! fuzzers start from what Portcullis itself produces.

use std::sync::{Arc, OnceLock};

use client_auth::{CertificateDer, TrustStore};
use pki::config::SigningPolicy;
use pki::csr_spec::CsrSpec;
use pki::custody::{CaKey, Custody};
use pki::issue::{CertificateAuthority, SignRequest};
use pki::revocation::{RevocationReason, RevokedEntry};
use time::OffsetDateTime;

/// The signing config the fuzzers use (and a seed of `signing_config`).
pub const SIGNING_CONFIG: &str = r#"{"signing":{"default":{"expiry":"168h"},"profiles":{
  "auth":{"usages":["signing","key encipherment","client auth"],"expiry":"8760h","auth_key":"k1"},
  "client":{"usages":["signing","client auth"],"expiry":"720h"},
  "server":{"usages":["signing","key encipherment","server auth"],"expiry":"720h",
            "name_whitelist":"^[a-z0-9.-]+\\.acme\\.test$"},
  "intermediate":{"usages":["cert sign","crl sign"],"expiry":"43800h",
            "ca_constraint":{"is_ca":true,"max_path_len":0,"max_path_len_zero":true}}}},
"auth_keys":{"k1":{"type":"standard","key":"0123456789ABCDEF0123456789ABCDEF"}}}"#;

/// The CSR spec of the leaf (a seed of `csr_spec`).
pub const LEAF_SPEC: &str = r#"{"CN":"client.acme.test","hosts":["client.acme.test","127.0.0.1","ops@acme.test","spiffe://acme.test/ns/prod/sa/web"],"key":{"algo":"ecdsa","size":256},"names":[{"C":"US","O":"Acme","OU":"Ops"}]}"#;

/// Everything made once.
pub struct Pki {
    /// The CA.
    pub ca: CertificateAuthority<CaKey>,
    /// The CA key (for the OCSP responder and CRLs).
    pub key: CaKey,
    /// The policy of [`SIGNING_CONFIG`].
    pub policy: SigningPolicy,
    /// Root certificate, DER.
    pub root_der: Vec<u8>,
    /// A leaf signed by the root, DER.
    pub leaf_der: Vec<u8>,
    /// The leaf's CSR, PEM.
    pub leaf_csr_pem: String,
    /// The leaf's key, PKCS#8 PEM.
    pub leaf_key_pem: String,
    /// A CRL of the root revoking one serial, DER.
    pub crl_der: Vec<u8>,
    /// A trust store of the root.
    pub store: TrustStore,
    /// The root's OCSP responder.
    pub ocsp: pki::ocsp::OcspResponder<CaKey>,
}

/// The shared PKI (made on first use).
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(make)
}

fn make() -> Pki {
    let now = OffsetDateTime::now_utc();
    let root_spec = CsrSpec::from_json(
        br#"{"CN":"Portcullis Fuzz Root","key":{"algo":"ecdsa","size":256},"names":[{"O":"Portcullis"}]}"#,
    )
    .expect("root spec");
    let root = pki::issue::init_root(&root_spec, now).expect("root");
    let root_der = pki::issue::cert_der_from(root.cert_pem.as_bytes()).expect("root der");
    let key = CaKey::in_memory(root.key, Custody::Plaintext);
    let ca = CertificateAuthority::new(root.cert_pem.as_bytes(), key.clone()).expect("ca");
    let policy = SigningPolicy::from_json(SIGNING_CONFIG.as_bytes()).expect("policy");
    let spec = CsrSpec::from_json(LEAF_SPEC.as_bytes()).expect("leaf spec");
    let (leaf_key, leaf_csr_pem) = spec.generate().expect("leaf csr");
    let leaf = ca
        .sign(
            &policy,
            &SignRequest {
                csr: leaf_csr_pem.clone().into_bytes(),
                hosts: None,
                profile: "client".into(),
                subject: None,
            },
            now,
        )
        .expect("leaf");
    let crl_der = pki::crl::make_crl(
        &root_der,
        &key,
        &[RevokedEntry {
            serial: vec![0x01, 0x02, 0x03],
            revoked_at: now,
            reason: RevocationReason::KeyCompromise,
        }],
        1,
        now,
        now + time::Duration::days(7),
    )
    .expect("crl");
    let store = TrustStore::builder()
        .anchor(&root_der)
        .crl(&crl_der)
        .build()
        .expect("store");
    let ocsp = pki::ocsp::OcspResponder::new(root_der.clone(), key.clone()).expect("ocsp");
    Pki {
        ocsp,
        ca,
        key,
        policy,
        root_der,
        leaf_der: leaf.der,
        leaf_csr_pem,
        leaf_key_pem: leaf_key.to_pem().to_string(),
        crl_der,
        store,
    }
}

/// The CA API state (with an issuance log in a temporary directory that
/// lives as long as the process).
pub fn ca_state() -> &'static Arc<ca_api::CaState> {
    static STATE: OnceLock<(tempfile::TempDir, Arc<ca_api::CaState>)> = OnceLock::new();
    &STATE
        .get_or_init(|| {
            let p = pki();
            let dir = tempfile::tempdir().expect("tempdir");
            let log = pki::log::CertLog::open(dir.path().join("certs.db")).expect("log");
            let ca = CertificateAuthority::new(&p.root_der, p.key.clone()).expect("ca");
            let ocsp =
                pki::ocsp::OcspResponder::new(p.root_der.clone(), p.key.clone()).expect("ocsp");
            let state = Arc::new(ca_api::CaState {
                label: ca.subject().to_string(),
                ca,
                ocsp,
                ocsp_validity: time::Duration::hours(4),
                crl_validity: time::Duration::days(7),
                policy: SigningPolicy::from_json(SIGNING_CONFIG.as_bytes()).expect("policy"),
                log,
                admin_key: Some(pki::config::AuthKey::new(
                    "admin",
                    b"fuzz-admin-key".to_vec(),
                )),
            });
            (dir, state)
        })
        .1
}

/// A current-thread runtime for the API target.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// The leaf as a rustls certificate.
pub fn leaf() -> CertificateDer<'static> {
    CertificateDer::from(pki().leaf_der.clone())
}
