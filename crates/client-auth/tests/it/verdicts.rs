//! One test per verdict reason, with rcgen-made certificates (and
//! openssl-made ones at the end).

use client_auth::{
    pem_certs, CertificateDer, CrlExpiry, EkuPolicy, Error, Policy, Reason, Strictness, TrustStore,
    Verdict,
};
use rcgen::{CustomExtension, ExtendedKeyUsagePurpose};

use crate::common::*;

fn store(ca: &Ca) -> TrustStore {
    TrustStore::builder()
        .anchor(&ca.der)
        .build()
        .expect("store")
}

fn reason(v: &Verdict) -> Option<Reason> {
    v.reason()
}

#[test]
fn two_deep_chain_is_valid_and_empty_chain_is_none() {
    let root = root("Root");
    let int = intermediate("Issuing", &root);
    let leaf = leaf(&int);
    let s = store(&root);
    assert_eq!(
        s.verify(&[leaf.clone(), int.der.clone()], now()),
        Verdict::Valid
    );
    assert_eq!(s.verify(&[], now()), Verdict::None);
    // Without the intermediate there is no path.
    assert_eq!(
        reason(&s.verify(std::slice::from_ref(&leaf), now())),
        Some(Reason::UnknownIssuer)
    );
    // An operator-supplied intermediate completes the path.
    let s2 = TrustStore::builder()
        .anchor(&root.der)
        .intermediate(&int.der)
        .build()
        .expect("store");
    assert_eq!(s2.verify(&[leaf], now()), Verdict::Valid);
}

#[test]
fn expired_leaf() {
    let root = root("Root");
    let l = leaf_with(
        &root,
        &LeafOpts {
            not_before: NOW - days(30),
            not_after: NOW - days(1),
            ..Default::default()
        },
    );
    let v = store(&root).verify(&[l], now());
    assert_eq!(reason(&v), Some(Reason::Expired), "{v:?}");
    let Verdict::Invalid { detail, .. } = v else {
        unreachable!()
    };
    assert!(detail.contains("expired at"), "{detail}");
}

#[test]
fn expired_intermediate() {
    let root = root("Root");
    let int = intermediate_with(
        "Old issuing",
        &root,
        &CaOpts {
            not_before: NOW - days(400),
            not_after: NOW - days(2),
        },
    );
    let l = leaf(&int);
    let v = store(&root).verify(&[l, int.der.clone()], now());
    assert_eq!(reason(&v), Some(Reason::Expired), "{v:?}");
}

#[test]
fn expired_root_is_refused_at_standard_but_not_by_webpki_alone() {
    let root = root_with(
        "Old root",
        &CaOpts {
            not_before: NOW - days(400),
            not_after: NOW - days(2),
        },
    );
    let l = leaf(&root);
    assert_eq!(
        reason(&store(&root).verify(std::slice::from_ref(&l), now())),
        Some(Reason::Expired)
    );
    let webpki_only = TrustStore::builder()
        .anchor(&root.der)
        .strictness(Strictness::WebpkiOnly)
        .build()
        .expect("store");
    assert_eq!(webpki_only.verify(&[l], now()), Verdict::Valid);
}

#[test]
fn not_yet_valid_and_skew() {
    let root = root("Root");
    let soon = leaf_with(
        &root,
        &LeafOpts {
            not_before: NOW + 30,
            ..Default::default()
        },
    );
    // Default skew (60 s) accepts a leaf valid in 30 s.
    assert_eq!(
        store(&root).verify(std::slice::from_ref(&soon), now()),
        Verdict::Valid
    );
    let no_skew = TrustStore::builder()
        .anchor(&root.der)
        .skew_secs(0)
        .build()
        .expect("store");
    assert_eq!(
        reason(&no_skew.verify(&[soon], now())),
        Some(Reason::NotYetValid)
    );
    let later = leaf_with(
        &root,
        &LeafOpts {
            not_before: NOW + days(1),
            ..Default::default()
        },
    );
    assert_eq!(
        reason(&store(&root).verify(&[later], now())),
        Some(Reason::NotYetValid)
    );
    // Expired 30 s ago is within the skew too.
    let just = leaf_with(
        &root,
        &LeafOpts {
            not_after: NOW - 30,
            ..Default::default()
        },
    );
    assert_eq!(
        store(&root).verify(std::slice::from_ref(&just), now()),
        Verdict::Valid
    );
    assert_eq!(
        reason(&no_skew.verify(&[just], now())),
        Some(Reason::Expired)
    );
}

#[test]
fn leaf_signed_by_another_ca() {
    let ours = root("Ours");
    let theirs = root("Theirs");
    let l = leaf(&theirs);
    assert_eq!(
        reason(&store(&ours).verify(&[l], now())),
        Some(Reason::UnknownIssuer)
    );
}

#[test]
fn same_name_other_key_is_bad_signature() {
    let ours = root("Same name");
    let impostor = root("Same name");
    let l = leaf(&impostor);
    assert_eq!(
        reason(&store(&ours).verify(&[l], now())),
        Some(Reason::BadSignature)
    );
}

#[test]
fn tampered_signature_is_bad_signature() {
    let root = root("Root");
    let mut der = leaf(&root).to_vec();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let v = store(&root).verify(&[CertificateDer::from(der)], now());
    assert_eq!(reason(&v), Some(Reason::BadSignature), "{v:?}");
}

#[test]
fn revoked_via_crl_and_replaced_at_run_time() {
    let root = root("Root");
    let int = intermediate("Issuing", &root);
    let good = leaf_with(
        &int,
        &LeafOpts {
            serial: 7,
            ..Default::default()
        },
    );
    let bad = leaf_with(
        &int,
        &LeafOpts {
            serial: 8,
            ..Default::default()
        },
    );
    let s = TrustStore::builder()
        .anchor(&root.der)
        .crl(fresh_crl(&int, &[8], 1))
        .build()
        .expect("store");
    assert_eq!(
        s.verify(&[good.clone(), int.der.clone()], now()),
        Verdict::Valid
    );
    assert_eq!(
        reason(&s.verify(&[bad.clone(), int.der.clone()], now())),
        Some(Reason::Revoked)
    );
    // Revoking the intermediate at the root revokes everything under it.
    let s_root = s
        .with_crls([
            fresh_crl(&int, &[8], 1),
            fresh_crl(&root, &[0x2a, 0x1001], 1),
        ])
        .expect("crls");
    assert_eq!(
        s_root.verify(&[good.clone(), int.der.clone()], now()),
        Verdict::Valid
    );
    // Replace the CRL at run time: now 7 is revoked and 8 is not.
    let s2 = s.with_crls([fresh_crl(&int, &[7], 2)]).expect("crls");
    assert_ne!(s.version(), s2.version());
    assert_eq!(s.version().trust, s2.version().trust);
    assert_eq!(
        reason(&s2.verify(&[good, int.der.clone()], now())),
        Some(Reason::Revoked)
    );
    assert_eq!(s2.verify(&[bad, int.der.clone()], now()), Verdict::Valid);
}

#[test]
fn expired_crl_fails_closed_by_default() {
    let root = root("Root");
    let l = leaf(&root);
    let stale = crl(&root, &[], NOW - days(10), NOW - days(3), 1);
    let s = TrustStore::builder()
        .anchor(&root.der)
        .crl(&stale)
        .build()
        .expect("store");
    let v = s.verify(std::slice::from_ref(&l), now());
    assert_eq!(reason(&v), Some(Reason::Other), "{v:?}");
    let lenient = TrustStore::builder()
        .anchor(&root.der)
        .crl(&stale)
        .crl_expiry(CrlExpiry::Ignore)
        .build()
        .expect("store");
    assert_eq!(lenient.verify(&[l], now()), Verdict::Valid);
}

#[test]
fn wrong_eku() {
    let root = root("Root");
    let server_only = leaf_with(
        &root,
        &LeafOpts {
            eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
            ..Default::default()
        },
    );
    assert_eq!(
        reason(&store(&root).verify(std::slice::from_ref(&server_only), now())),
        Some(Reason::BadUsage)
    );
    for (eku, ok) in [
        (EkuPolicy::Server, true),
        (EkuPolicy::Any, true),
        (EkuPolicy::Client, false),
    ] {
        let s = TrustStore::builder()
            .anchor(&root.der)
            .eku(eku)
            .build()
            .expect("store");
        assert_eq!(
            s.verify(std::slice::from_ref(&server_only), now())
                .is_valid(),
            ok,
            "{eku:?}"
        );
    }
    // No EKU at all: allowed by RFC 5280 for every policy at Standard.
    let none = leaf_with(
        &root,
        &LeafOpts {
            eku: vec![],
            ..Default::default()
        },
    );
    assert!(store(&root).verify(&[none], now()).is_valid());
}

#[test]
fn ca_certificate_used_as_leaf() {
    let root = root("Root");
    let int = intermediate("Issuing", &root);
    let v = store(&root).verify(std::slice::from_ref(&int.der), now());
    assert_eq!(reason(&v), Some(Reason::BadUsage), "{v:?}");
}

#[test]
fn chain_longer_than_the_limit() {
    let root = root("Root");
    let mut cas = vec![intermediate("I0", &root)];
    for i in 1..8 {
        let next = intermediate(&format!("I{i}"), cas.last().expect("ca"));
        cas.push(next);
    }
    let l = leaf(cas.last().expect("ca"));
    let mut chain = vec![l];
    chain.extend(cas.iter().rev().map(|c| c.der.clone()));
    // 9 certificates sent: over the default limit of 8.
    let v = store(&root).verify(&chain, now());
    assert_eq!(reason(&v), Some(Reason::Other), "{v:?}");
    // With a higher limit, webpki's own depth limit (6 intermediates) holds.
    let mut p = Policy::default();
    p.max_chain_certs = 16;
    let s = TrustStore::builder()
        .anchor(&root.der)
        .policy(p)
        .build()
        .expect("store");
    let v = s.verify(&chain, now());
    assert!(!v.is_valid(), "{v:?}");
    // Six intermediates are fine.
    let short: Vec<_> = {
        let l = leaf(&cas[5]);
        let mut c = vec![l];
        c.extend(cas[..6].iter().rev().map(|c| c.der.clone()));
        c
    };
    assert_eq!(store(&root).verify(&short, now()), Verdict::Valid);
}

#[test]
fn garbage_der_is_malformed() {
    let root = root("Root");
    let s = store(&root);
    for junk in [
        vec![],
        vec![0u8; 3],
        b"not a certificate".to_vec(),
        vec![0x30, 0x82, 0xff, 0xff],
    ] {
        let v = s.verify(&[CertificateDer::from(junk)], now());
        assert_eq!(reason(&v), Some(Reason::Malformed), "{v:?}");
    }
    // Garbage intermediates do not crash path building either.
    let l = leaf(&root);
    let v = s.verify(&[l, CertificateDer::from(vec![1, 2, 3])], now());
    assert!(v.is_valid(), "{v:?}");
}

#[test]
fn one_megabyte_certificate_is_refused() {
    let root = root("Root");
    let big = leaf_with(
        &root,
        &LeafOpts {
            extra: vec![CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 55555, 1],
                // An OCTET STRING of ~1 MB.
                {
                    let n = 1024 * 1024;
                    let mut v = vec![0x04, 0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8];
                    v.resize(5 + n, b'A');
                    v
                },
            )],
            ..Default::default()
        },
    );
    assert!(big.len() > 1024 * 1024);
    let v = store(&root).verify(&[big], now());
    assert_eq!(reason(&v), Some(Reason::Malformed), "{v:?}");
}

#[test]
fn store_build_errors() {
    assert!(matches!(
        TrustStore::builder().build(),
        Err(Error::NoTrustAnchors { .. })
    ));
    assert!(matches!(
        TrustStore::builder().anchor(b"junk").build(),
        Err(Error::BadCaCertificate { index: 0, .. })
    ));
    let root = root("Root");
    assert!(matches!(
        TrustStore::builder().anchor(&root.der).crl(b"junk").build(),
        Err(Error::BadCrl { index: 0, .. })
    ));
    assert!(TrustStore::builder()
        .anchor(&root.der)
        .skew_secs(10 * 86_400)
        .build()
        .is_err());
}

#[test]
fn same_content_same_version() {
    let root = root("Root");
    let a = store(&root);
    let b = store(&root);
    assert_eq!(a.version(), b.version());
    let c = TrustStore::builder()
        .anchor(&root.der)
        .eku(EkuPolicy::Any)
        .build()
        .expect("s");
    assert_ne!(a.version().trust, c.version().trust);
}

#[test]
fn every_reason_has_its_token() {
    let tokens: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        tokens,
        [
            "expired",
            "not-yet-valid",
            "revoked",
            "unknown-issuer",
            "bad-signature",
            "bad-usage",
            "malformed",
            "other"
        ]
    );
}

/// Certificates made by the `openssl` command line.
mod openssl_made {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("/usr/bin/openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn read(dir: &Path, f: &str) -> Vec<CertificateDer<'static>> {
        pem_certs(&std::fs::read(dir.join(f)).expect("read")).expect("pem")
    }

    /// root -> leaf (clientAuth) and root -> leaf (serverAuth), by openssl.
    fn make(dir: &Path) {
        std::fs::write(
            dir.join("ext.cnf"),
            "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n\
             [client]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nsubjectAltName=URI:spiffe://example.org/ns/a\n\
             [server]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=OpenSSL Root",
                "-days",
                "3650",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        for kind in ["client", "server"] {
            openssl(
                dir,
                &[
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    &format!("{kind}.key"),
                    "-out",
                    &format!("{kind}.csr"),
                    "-subj",
                    &format!("/CN={kind}"),
                ],
            );
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{kind}.csr"),
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "30",
                    "-extfile",
                    "ext.cnf",
                    "-extensions",
                    kind,
                    "-out",
                    &format!("{kind}.pem"),
                ],
            );
        }
    }

    #[test]
    fn openssl_chains() {
        let dir = tempfile::TempDir::new().expect("tmp");
        make(dir.path());
        let ca = read(dir.path(), "ca.pem");
        let s = TrustStore::builder().anchors(&ca).build().expect("store");
        let client = read(dir.path(), "client.pem");
        let server = read(dir.path(), "server.pem");
        let real_now = client_auth::UnixTime::now();
        assert_eq!(s.verify(&client, real_now), Verdict::Valid);
        assert_eq!(reason(&s.verify(&server, real_now)), Some(Reason::BadUsage));
        let later = t(real_now.as_secs() as i64 + 86_400 * 60);
        assert_eq!(reason(&s.verify(&client, later)), Some(Reason::Expired));
        let other = root("Not OpenSSL Root");
        let s2 = store(&other);
        assert_eq!(
            reason(&s2.verify(&client, real_now)),
            Some(Reason::UnknownIssuer)
        );
        let f = client_auth::CertFacts::from_der(&client[0]).expect("facts");
        assert_eq!(f.subject, "CN=client");
        assert_eq!(f.issuer, "CN=OpenSSL Root");
        assert_eq!(f.spiffe_id(), Some("spiffe://example.org/ns/a"));
        assert!(f.ski.is_some());
    }
}

#[test]
fn mutated_and_truncated_certificates_never_panic() {
    let root = root("Root");
    let int = intermediate("Issuing", &root);
    let good = leaf(&int);
    let s = store(&root);
    let cache = client_auth::VerdictCache::new(64);
    let mut valid = 0;
    // Bounded: every 3rd byte of the leaf flipped, and truncations.
    for i in (0..good.len()).step_by(3) {
        for variant in 0..2 {
            let mut der = good.to_vec();
            if variant == 0 {
                der[i] ^= 0xff;
            } else {
                der.truncate(i);
            }
            let der = CertificateDer::from(der);
            let chain = [der.clone(), int.der.clone()];
            let v = s.verify(&chain, now());
            assert_eq!(v, cache.verify(&s, &chain, now()));
            if v.is_valid() {
                valid += 1;
            }
            if let Ok(f) = client_auth::CertFacts::from_der(&der) {
                let _ = client_auth::headers::identity_headers(&v, Some(&f), &chain);
            }
        }
    }
    // Flipping a byte can only keep validity where DER ignores it (none
    // expected here); never a panic.
    assert!(valid <= 1, "{valid} mutated certificates verified");
}

#[test]
fn unknown_issuer_detail_names_the_issuer() {
    let l = leaf(&root("Stranger CA"));
    let v = store(&root("Ours")).verify(&[l], now());
    let Verdict::Invalid { detail, .. } = v else {
        panic!("{v:?}")
    };
    assert!(detail.contains("CN=Stranger CA"), "{detail}");
}
