//! CRL generation and the OCSP responder, checked against the real
//! `openssl` command line tool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use der::{Decode, Encode};
use pki::crl::{crl_to_pem, make_crl, CrlError};
use pki::ocsp::{CertStatus, OcspResponder};
use pki::revocation::{RevocationReason, RevokedEntry};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, SerialNumber, SignatureAlgorithm,
};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};
use x509_ocsp::{BasicOcspResponse, OcspRequest, OcspResponse, OcspResponseStatus};

const OPENSSL: &str = "/usr/bin/openssl";

/// A CA in its own temp dir, with `ca.pem` written.
struct TestCa {
    dir: TempDir,
    key: KeyPair,
    der: Vec<u8>,
    /// Made by openssl (which then also issues its leaves; rcgen cannot
    /// issue from a CA with a multi-valued RDN).
    openssl_made: bool,
}

impl TestCa {
    fn new(alg: &'static SignatureAlgorithm) -> Self {
        Self::with(alg, "Portcullis Test CA", |_| {})
    }

    fn with(
        alg: &'static SignatureAlgorithm,
        cn: &str,
        tweak: impl FnOnce(&mut CertificateParams),
    ) -> Self {
        let key = match alg {
            a if a == &rcgen::PKCS_RSA_SHA256 => {
                KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_2048).unwrap()
            }
            _ => KeyPair::generate_for(alg).unwrap(),
        };
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn.push(DnType::OrganizationName, "Portcullis");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(30);
        tweak(&mut params);
        let cert = params.self_signed(&key).unwrap();
        let dir = TempDir::new().unwrap();
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).unwrap();
        Self {
            dir,
            key,
            der: cert.der().to_vec(),
            openssl_made: false,
        }
    }

    /// A CA made by `openssl req -x509` (not by rcgen), with `subj`.
    fn from_openssl(subj: &str, extra: &[&str]) -> Self {
        let dir = TempDir::new().unwrap();
        let mut args = vec![
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            subj,
        ];
        args.extend_from_slice(extra);
        let (ok, out) = openssl(dir.path(), &args);
        assert!(ok, "{out}");
        let key =
            KeyPair::from_pem(&std::fs::read_to_string(dir.path().join("ca-key.pem")).unwrap())
                .unwrap();
        let pem = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
        let der = pem::parse(pem).unwrap().into_contents();
        Self {
            dir,
            key,
            der,
            openssl_made: true,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Issues a leaf with this serial and writes it as `name`.
    fn leaf(&self, name: &str, serial: &[u8]) -> Vec<u8> {
        if self.openssl_made {
            return self.openssl_leaf(name, serial);
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec!["leaf.test".to_string()]).unwrap();
        params.serial_number = Some(SerialNumber::from_slice(serial));
        params.use_authority_key_identifier_extension = true;
        params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(7);
        let issuer = Issuer::from_ca_cert_der(&self.der.as_slice().into(), &self.key).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(self.path(name), cert.pem()).unwrap();
        cert.der().to_vec()
    }

    fn openssl_leaf(&self, name: &str, serial: &[u8]) -> Vec<u8> {
        let (ok, out) = openssl(
            self.dir.path(),
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "leaf-key.pem",
                "-subj",
                "/CN=leaf.test",
                "-out",
                "leaf.csr",
            ],
        );
        assert!(ok, "{out}");
        let serial = format!("0x{}", hex::encode(serial));
        let (ok, out) = openssl(
            self.dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-set_serial",
                &serial,
                "-days",
                "7",
                "-out",
                name,
            ],
        );
        assert!(ok, "{out}");
        let pem = std::fs::read_to_string(self.path(name)).unwrap();
        pem::parse(pem).unwrap().into_contents()
    }

    fn responder(&self) -> OcspResponder<&KeyPair> {
        OcspResponder::new(self.der.clone(), &self.key).unwrap()
    }
}

/// Runs openssl in `dir`; returns (success, stdout + stderr).
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(OPENSSL)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

// ---------------------------------------------------------------- CRL

fn sample_revoked() -> Vec<RevokedEntry> {
    vec![
        RevokedEntry {
            serial: vec![0x01, 0x23, 0x45],
            revoked_at: at(1_767_323_045), // 2026-01-02 03:04:05 UTC
            reason: RevocationReason::KeyCompromise,
        },
        RevokedEntry {
            // High bit set: needs a leading zero on the wire.
            serial: vec![0x80, 0xab],
            revoked_at: at(1_767_323_045),
            reason: RevocationReason::Superseded,
        },
        RevokedEntry {
            // Leading zero given by the caller: ignored.
            serial: vec![0x00, 0x0a],
            revoked_at: at(1_767_323_045),
            reason: RevocationReason::Unspecified,
        },
    ]
}

fn crl_for(ca: &TestCa, revoked: &[RevokedEntry], number: u64) -> Vec<u8> {
    let now = OffsetDateTime::now_utc();
    make_crl(
        &ca.der,
        &ca.key,
        revoked,
        number,
        now - Duration::minutes(1),
        now + Duration::days(7),
    )
    .unwrap()
}

fn assert_crl_verifies(ca: &TestCa, crl: &[u8]) -> String {
    std::fs::write(ca.path("crl.der"), crl).unwrap();
    let (ok, out) = openssl(
        ca.dir.path(),
        &[
            "crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-noout", "-verify",
        ],
    );
    assert!(
        ok && out.contains("verify OK"),
        "openssl crl -verify: {out}"
    );
    let (ok, text) = openssl(
        ca.dir.path(),
        &["crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text"],
    );
    assert!(ok, "openssl crl -text: {text}");

    // The issuer is the CA's subject, byte for byte.
    let (_, cert) = x509_parser::parse_x509_certificate(&ca.der).unwrap();
    let (_, parsed) = x509_parser::parse_x509_crl(crl).unwrap();
    assert_eq!(
        parsed.tbs_cert_list.issuer.as_raw(),
        cert.tbs_certificate.subject.as_raw()
    );
    text
}

/// The hex key id on the line after `header` in openssl's text output.
fn key_id_after(text: &str, header: &str) -> String {
    let mut lines = text.lines().skip_while(|l| !l.contains(header));
    lines
        .next()
        .unwrap_or_else(|| panic!("no {header} in {text}"));
    let line = lines.next().unwrap().trim();
    line.trim_start_matches("keyid:").to_string()
}

#[test]
fn crl_lists_revoked_serials_reasons_and_number() {
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let crl = crl_for(&ca, &sample_revoked(), 42);
    let text = assert_crl_verifies(&ca, &crl);

    assert!(text.contains("Version 2"), "{text}");
    assert!(
        text.contains("Issuer: CN = Portcullis Test CA, O = Portcullis"),
        "{text}"
    );
    let number = text
        .lines()
        .skip_while(|l| !l.contains("X509v3 CRL Number"))
        .nth(1)
        .unwrap()
        .trim();
    assert_eq!(number, "42", "{text}");

    assert!(text.contains("Serial Number: 012345"), "{text}");
    assert!(text.contains("Serial Number: 80AB"), "{text}");
    assert!(text.contains("Serial Number: 0A"), "{text}");
    assert!(
        text.contains("Revocation Date: Jan  2 03:04:05 2026 GMT"),
        "{text}"
    );
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains("Superseded"), "{text}");
    // Two reason codes: unspecified is left out, as RFC 5280 asks.
    assert_eq!(text.matches("X509v3 CRL Reason Code").count(), 2, "{text}");
}

#[test]
fn crl_takes_longest_serials_and_times_after_2049() {
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    // 20 bytes with the high bit set: 21 octets on the wire, as some CAs
    // have issued.
    let entry = RevokedEntry {
        serial: vec![0xff; 20],
        revoked_at: at(1_767_323_045),
        reason: RevocationReason::CessationOfOperation,
    };
    let this_update = OffsetDateTime::now_utc() - Duration::minutes(1);
    let next_update = at(2_556_143_999); // 2050-12-31 23:59:59 UTC
    let crl = make_crl(&ca.der, &ca.key, &[entry], 9, this_update, next_update).unwrap();
    let text = assert_crl_verifies(&ca, &crl);
    assert!(
        text.contains(&format!("Serial Number: {}", "FF".repeat(20))),
        "{text}"
    );
    assert!(text.contains("Cessation Of Operation"), "{text}");
    assert!(
        text.contains("Next Update: Dec 31 23:59:59 2050 GMT"),
        "{text}"
    );
}

#[test]
fn crl_authority_key_id_is_the_ca_subject_key_id() {
    // A pre-specified SKI that no hash of the key would produce: the CRL
    // must copy it, not recompute it.
    let ca = TestCa::with(&rcgen::PKCS_ECDSA_P256_SHA256, "Odd SKI CA", |p| {
        p.key_identifier_method = KeyIdMethod::PreSpecified(vec![0xa5; 20]);
    });
    let crl = crl_for(&ca, &[], 1);
    let text = assert_crl_verifies(&ca, &crl);
    let aki = key_id_after(&text, "X509v3 Authority Key Identifier");
    assert_eq!(aki, ["A5"; 20].join(":"), "{text}");

    let (ok, ca_text) = openssl(ca.dir.path(), &["x509", "-in", "ca.pem", "-noout", "-text"]);
    assert!(ok, "{ca_text}");
    assert_eq!(aki, key_id_after(&ca_text, "X509v3 Subject Key Identifier"));
}

#[test]
fn empty_crl_verifies() {
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let crl = crl_for(&ca, &[], 7);
    let text = assert_crl_verifies(&ca, &crl);
    assert!(text.contains("No Revoked Certificates."), "{text}");
    assert!(text.contains("X509v3 CRL Number"), "{text}");
}

#[test]
fn crl_verifies_for_every_key_type_and_as_pem() {
    for alg in [
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_ED25519,
        &rcgen::PKCS_RSA_SHA256,
    ] {
        let ca = TestCa::new(alg);
        let crl = crl_for(&ca, &sample_revoked(), u64::MAX);
        let text = assert_crl_verifies(&ca, &crl);
        assert!(text.contains("18446744073709551615"), "{text}");

        let pem = crl_to_pem(&crl);
        assert!(pem.starts_with("-----BEGIN X509 CRL-----\n"), "{pem}");
        std::fs::write(ca.path("crl.pem"), pem).unwrap();
        let (ok, out) = openssl(
            ca.dir.path(),
            &[
                "crl", "-in", "crl.pem", "-CAfile", "ca.pem", "-noout", "-verify",
            ],
        );
        assert!(ok && out.contains("verify OK"), "{out}");
    }
}

#[test]
fn crl_and_ocsp_work_with_a_ca_made_by_openssl() {
    for (subj, extra) in [
        ("/C=US/ST=CA/O=Acme, Inc./OU=PKI/CN=Acme Root", &[][..]),
        ("/O=Acme+CN=Multi-valued RDN Root", &["-multivalue-rdn"][..]),
        ("/O=Acme/OU=Team A/OU=Team B/CN=Two OUs Root", &[][..]),
    ] {
        let ca = TestCa::from_openssl(subj, extra);
        let crl = crl_for(&ca, &sample_revoked(), 3);
        let text = assert_crl_verifies(&ca, &crl);
        assert!(text.contains("Key Compromise"), "{text}");
        check_all_statuses(&ca, &[]);
    }
}

#[test]
fn crl_refuses_wrong_key_bad_window_and_bad_serial() {
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let now = OffsetDateTime::now_utc();
    let week = now + Duration::days(7);

    let err = make_crl(&ca.der, &other, &[], 1, now, week).unwrap_err();
    assert!(matches!(err, CrlError::KeyMismatch), "{err}");

    let err = make_crl(&ca.der, &ca.key, &[], 1, now, now).unwrap_err();
    assert!(matches!(err, CrlError::InvalidValidity { .. }), "{err}");

    let err = make_crl(b"not a cert", &ca.key, &[], 1, now, week).unwrap_err();
    assert!(matches!(err, CrlError::InvalidCaCert(_)), "{err}");

    for serial in [vec![], vec![0x11; 21]] {
        let entry = RevokedEntry {
            serial,
            revoked_at: now,
            reason: RevocationReason::KeyCompromise,
        };
        let err = make_crl(&ca.der, &ca.key, &[entry], 1, now, week).unwrap_err();
        assert!(matches!(err, CrlError::InvalidSerial(_)), "{err}");
    }

    // Years rcgen cannot encode are an error, not a panic.
    let ancient = at(-200_000_000_000);
    let entry = RevokedEntry {
        serial: vec![1],
        revoked_at: ancient,
        reason: RevocationReason::KeyCompromise,
    };
    let err = make_crl(&ca.der, &ca.key, &[entry], 1, now, week).unwrap_err();
    assert!(matches!(err, CrlError::TimeOutOfRange { .. }), "{err}");
}

#[test]
fn crl_refuses_a_ca_without_crl_sign() {
    let ca = TestCa::with(&rcgen::PKCS_ECDSA_P256_SHA256, "No CRL CA", |p| {
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    });
    let now = OffsetDateTime::now_utc();
    let err = make_crl(&ca.der, &ca.key, &[], 1, now, now + Duration::days(1)).unwrap_err();
    assert!(matches!(err, CrlError::NotCrlSigner), "{err}");
}

// ---------------------------------------------------------------- OCSP

const GOOD_SERIAL: &[u8] = &[0x01, 0x02, 0x03];
const REVOKED_SERIAL: &[u8] = &[0x80, 0x01]; // high bit: 00 80 01 on the wire
const UNKNOWN_SERIAL: &[u8] = &[0x77, 0x66];

/// The CA's records for the three leaves.
fn lookup(serial: &[u8]) -> CertStatus {
    let table: HashMap<&[u8], CertStatus> = [
        (GOOD_SERIAL, CertStatus::Good),
        (
            REVOKED_SERIAL,
            CertStatus::Revoked {
                at: at(1_767_323_045),
                reason: RevocationReason::KeyCompromise,
            },
        ),
    ]
    .into_iter()
    .collect();
    table.get(serial).copied().unwrap_or(CertStatus::Unknown)
}

/// openssl builds a request for `leaf`, the responder answers it, and
/// openssl checks the answer; returns openssl's output.
fn ocsp_round_trip(ca: &TestCa, leaf: &str, extra_req_args: &[&str]) -> String {
    // openssl wants the digest option before -cert.
    let mut args = vec!["ocsp"];
    args.extend_from_slice(extra_req_args);
    args.extend_from_slice(&["-issuer", "ca.pem", "-cert", leaf, "-reqout", "req.der"]);
    let (ok, out) = openssl(ca.dir.path(), &args);
    assert!(ok, "openssl ocsp -reqout: {out}");

    let req = std::fs::read(ca.path("req.der")).unwrap();
    let resp = ca
        .responder()
        .respond(&req, OffsetDateTime::now_utc(), Duration::hours(1), lookup);
    std::fs::write(ca.path("resp.der"), &resp).unwrap();

    // The nonce, if any, is echoed exactly.
    let req = OcspRequest::from_der(&req).unwrap();
    let resp = OcspResponse::from_der(&resp).unwrap();
    assert_eq!(resp.response_status, OcspResponseStatus::Successful);
    let basic =
        BasicOcspResponse::from_der(resp.response_bytes.unwrap().response.as_bytes()).unwrap();
    assert_eq!(basic.nonce(), req.nonce());
    assert_eq!(
        basic.tbs_response_data.responses[0].cert_id,
        req.tbs_request.request_list[0].req_cert
    );

    // openssl only compares nonces against a request it did not build
    // itself: with -cert it makes a fresh request (fresh nonce), so the
    // nonce is checked in a run with -reqin and no -cert ...
    let (ok, out) = openssl(
        ca.dir.path(),
        &[
            "ocsp",
            "-reqin",
            "req.der",
            "-respin",
            "resp.der",
            "-CAfile",
            "ca.pem",
            "-verify_other",
            "ca.pem",
        ],
    );
    assert!(ok, "openssl ocsp -reqin -respin: {out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(!out.contains("Nonce Verify error"), "{out}");
    assert!(!out.to_lowercase().contains("warning"), "{out}");

    // ... and the statuses in a run with -cert (and -no_nonce, so that the
    // fresh request has no nonce to compare).
    // The CertID must be made with the request's digest to be found.
    let mut args: Vec<&str> = vec!["ocsp"];
    args.extend(extra_req_args.iter().filter(|a| a.starts_with("-sha")));
    args.extend_from_slice(&[
        "-respin",
        "resp.der",
        "-issuer",
        "ca.pem",
        "-CAfile",
        "ca.pem",
        "-cert",
        leaf,
        "-no_nonce",
        "-resp_text",
    ]);
    let (ok, out) = openssl(ca.dir.path(), &args);
    assert!(ok, "openssl ocsp -respin: {out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(!out.contains("Nonce Verify error"), "{out}");
    out
}

fn check_all_statuses(ca: &TestCa, extra_req_args: &[&str]) {
    ca.leaf("good.pem", GOOD_SERIAL);
    ca.leaf("revoked.pem", REVOKED_SERIAL);
    ca.leaf("unknown.pem", UNKNOWN_SERIAL);

    let out = ocsp_round_trip(ca, "good.pem", extra_req_args);
    assert!(out.contains("good.pem: good"), "{out}");
    assert!(out.contains("Next Update:"), "{out}");

    let out = ocsp_round_trip(ca, "revoked.pem", extra_req_args);
    assert!(out.contains("revoked.pem: revoked"), "{out}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");
    assert!(
        out.contains("Revocation Time: Jan  2 03:04:05 2026 GMT"),
        "{out}"
    );

    let out = ocsp_round_trip(ca, "unknown.pem", extra_req_args);
    assert!(out.contains("unknown.pem: unknown"), "{out}");
}

#[test]
fn ocsp_p256_sha1_cert_id_with_nonce() {
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    check_all_statuses(&ca, &[]);
    let out = ocsp_round_trip(&ca, "good.pem", &[]);
    assert!(out.contains("OCSP Nonce"), "{out}");
    assert!(
        out.contains("Signature Algorithm: ecdsa-with-SHA256"),
        "{out}"
    );
    assert!(out.contains("Hash Algorithm: sha1"), "{out}");

    // The signature check is real: a flipped bit in the signature fails it.
    let mut tampered = std::fs::read(ca.path("resp.der")).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    std::fs::write(ca.path("tampered.der"), tampered).unwrap();
    let (ok, out) = openssl(
        ca.dir.path(),
        &[
            "ocsp",
            "-respin",
            "tampered.der",
            "-issuer",
            "ca.pem",
            "-CAfile",
            "ca.pem",
            "-cert",
            "good.pem",
            "-no_nonce",
        ],
    );
    assert!(!ok || !out.contains("Response verify OK"), "{out}");
    assert!(out.contains("Response Verify Failure"), "{out}");

    // The nonce check above is real: a response to another request (another
    // nonce) fails it.
    let resp = std::fs::read(ca.path("resp.der")).unwrap();
    let (ok, out) = openssl(
        ca.dir.path(),
        &[
            "ocsp", "-issuer", "ca.pem", "-cert", "good.pem", "-reqout", "req2.der",
        ],
    );
    assert!(ok, "{out}");
    std::fs::write(ca.path("resp1.der"), resp).unwrap();
    let (ok, out) = openssl(
        ca.dir.path(),
        &[
            "ocsp",
            "-reqin",
            "req2.der",
            "-respin",
            "resp1.der",
            "-CAfile",
            "ca.pem",
            "-verify_other",
            "ca.pem",
        ],
    );
    assert!(!ok || out.contains("Nonce Verify error"), "{out}");
    assert!(out.contains("Nonce Verify error"), "{out}");
}

#[test]
fn ocsp_p256_sha256_cert_id_without_nonce() {
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    check_all_statuses(&ca, &["-sha256", "-no_nonce"]);
    let out = ocsp_round_trip(&ca, "good.pem", &["-sha256", "-no_nonce"]);
    assert!(!out.contains("OCSP Nonce"), "{out}");
    assert!(out.contains("Hash Algorithm: sha256"), "{out}");
}

#[test]
fn ocsp_p384() {
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P384_SHA384);
    check_all_statuses(&ca, &[]);
    let out = ocsp_round_trip(&ca, "good.pem", &["-sha256"]);
    assert!(
        out.contains("Signature Algorithm: ecdsa-with-SHA384"),
        "{out}"
    );
}

#[test]
fn ocsp_ed25519() {
    let ca = TestCa::new(&rcgen::PKCS_ED25519);
    check_all_statuses(&ca, &[]);
    let out = ocsp_round_trip(&ca, "good.pem", &["-sha256"]);
    assert!(out.contains("Signature Algorithm: ED25519"), "{out}");
}

#[test]
fn ocsp_rsa() {
    let ca = TestCa::new(&rcgen::PKCS_RSA_SHA256);
    check_all_statuses(&ca, &[]);
    let out = ocsp_round_trip(&ca, "good.pem", &["-sha256"]);
    assert!(
        out.contains("Signature Algorithm: sha256WithRSAEncryption"),
        "{out}"
    );
}

#[test]
fn ocsp_mixed_request_answers_other_issuer_unknown() {
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let other = TestCa::with(&rcgen::PKCS_ECDSA_P256_SHA256, "Other CA", |_| {});
    ca.leaf("good.pem", GOOD_SERIAL);
    // Same serial, other issuer: must not be looked up as ours.
    let other_leaf = other.leaf("x.pem", GOOD_SERIAL);
    std::fs::write(
        ca.path("other.pem"),
        std::fs::read(other.path("ca.pem")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        ca.path("other-leaf.pem"),
        std::fs::read(other.path("x.pem")).unwrap(),
    )
    .unwrap();
    assert!(!other_leaf.is_empty());

    let (ok, out) = openssl(
        ca.dir.path(),
        &[
            "ocsp",
            "-issuer",
            "ca.pem",
            "-cert",
            "good.pem",
            "-issuer",
            "other.pem",
            "-cert",
            "other-leaf.pem",
            "-reqout",
            "req.der",
        ],
    );
    assert!(ok, "{out}");
    let req = std::fs::read(ca.path("req.der")).unwrap();
    let resp = ca
        .responder()
        .respond(&req, OffsetDateTime::now_utc(), Duration::hours(1), lookup);
    std::fs::write(ca.path("resp.der"), &resp).unwrap();
    let (ok, out) = openssl(
        ca.dir.path(),
        &[
            "ocsp",
            "-respin",
            "resp.der",
            "-issuer",
            "ca.pem",
            "-CAfile",
            "ca.pem",
            "-cert",
            "good.pem",
            "-issuer",
            "other.pem",
            "-cert",
            "other-leaf.pem",
            "-no_nonce",
            "-resp_text",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("good.pem: good"), "{out}");
    assert!(out.contains("other-leaf.pem: unknown"), "{out}");
}

#[test]
fn ocsp_request_for_another_ca_only_is_unauthorized() {
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let other = TestCa::with(&rcgen::PKCS_ECDSA_P256_SHA256, "Other CA", |_| {});
    other.leaf("x.pem", GOOD_SERIAL);
    let (ok, out) = openssl(
        other.dir.path(),
        &[
            "ocsp", "-issuer", "ca.pem", "-cert", "x.pem", "-reqout", "req.der",
        ],
    );
    assert!(ok, "{out}");
    let req = std::fs::read(other.path("req.der")).unwrap();
    let resp = ca
        .responder()
        .respond(&req, OffsetDateTime::now_utc(), Duration::hours(1), |_| {
            panic!("lookup must not be called for another CA")
        });
    let parsed = OcspResponse::from_der(&resp).unwrap();
    assert_eq!(parsed.response_status, OcspResponseStatus::Unauthorized);
    assert!(parsed.response_bytes.is_none());

    std::fs::write(other.path("resp.der"), &resp).unwrap();
    let (_, out) = openssl(
        other.dir.path(),
        &["ocsp", "-respin", "resp.der", "-resp_text"],
    );
    assert!(out.contains("unauthorized"), "{out}");
}

#[test]
fn ocsp_garbage_is_malformed_request() {
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let responder = ca.responder();
    let resp = responder.respond(
        b"this is not DER",
        OffsetDateTime::now_utc(),
        Duration::hours(1),
        lookup,
    );
    let parsed = OcspResponse::from_der(&resp).unwrap();
    assert_eq!(parsed.response_status, OcspResponseStatus::MalformedRequest);

    std::fs::write(ca.path("resp.der"), &resp).unwrap();
    let (_, out) = openssl(
        ca.dir.path(),
        &["ocsp", "-respin", "resp.der", "-resp_text"],
    );
    assert!(out.contains("malformedrequest"), "{out}");

    assert_eq!(resp, pki::ocsp::malformed_request_response());
    let try_later = OcspResponse::from_der(&pki::ocsp::try_later_response()).unwrap();
    assert_eq!(try_later.response_status, OcspResponseStatus::TryLater);
}

#[test]
fn ocsp_never_panics_on_mangled_requests() {
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    ca.leaf("good.pem", GOOD_SERIAL);
    let (ok, out) = openssl(
        ca.dir.path(),
        &[
            "ocsp", "-issuer", "ca.pem", "-cert", "good.pem", "-reqout", "req.der",
        ],
    );
    assert!(ok, "{out}");
    let req = std::fs::read(ca.path("req.der")).unwrap();
    let responder = ca.responder();
    let now = OffsetDateTime::now_utc();

    let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0x30], vec![0x30, 0x00], vec![0xff; 64]];
    inputs.extend((0..req.len()).map(|n| req[..n].to_vec()));
    for i in 0..req.len() {
        for bit in [0x01, 0x80] {
            let mut m = req.clone();
            m[i] ^= bit;
            inputs.push(m);
        }
    }
    let mut trailing = req.clone();
    trailing.push(0);
    inputs.push(trailing);

    for input in &inputs {
        let resp = responder.respond(input, now, Duration::hours(1), lookup);
        let parsed = OcspResponse::from_der(&resp).expect("always a DER OCSPResponse");
        if input == &req {
            assert_eq!(parsed.response_status, OcspResponseStatus::Successful);
        }
    }
    // The intact request still works, and extreme times are handled.
    for (now, validity) in [
        (now, Duration::hours(1)),
        (now, Duration::ZERO),
        (now, Duration::MAX),
        (at(-1), Duration::hours(1)),
    ] {
        let resp = responder.respond(&req, now, validity, lookup);
        OcspResponse::from_der(&resp).expect("always a DER OCSPResponse");
    }
}

#[test]
fn ocsp_responder_rejects_a_foreign_key() {
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let err = OcspResponder::new(ca.der.clone(), &other).unwrap_err();
    assert!(matches!(err, pki::ocsp::OcspError::KeyMismatch), "{err}");
    let err = OcspResponder::new(b"junk".to_vec(), &ca.key).unwrap_err();
    assert!(
        matches!(err, pki::ocsp::OcspError::InvalidCaCert(_)),
        "{err}"
    );
}

#[test]
fn ocsp_get_form_round_trip() {
    use base64::Engine;
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    ca.leaf("good.pem", GOOD_SERIAL);
    let (ok, out) = openssl(
        ca.dir.path(),
        &[
            "ocsp", "-issuer", "ca.pem", "-cert", "good.pem", "-reqout", "req.der",
        ],
    );
    assert!(ok, "{out}");
    let req = std::fs::read(ca.path("req.der")).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&req);
    let escaped = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    assert_eq!(pki::ocsp::decode_get_path(&escaped).unwrap(), req);
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&req);
    assert_eq!(pki::ocsp::decode_get_path(&url_safe).unwrap(), req);
    // The decoded bytes are a request the responder accepts.
    let resp = ca
        .responder()
        .respond(&req, OffsetDateTime::now_utc(), Duration::hours(1), lookup);
    assert_eq!(
        OcspResponse::from_der(&resp).unwrap().response_status,
        OcspResponseStatus::Successful
    );
}

#[test]
fn ocsp_nonce_length_limits() {
    use x509_ocsp::ext::Nonce;
    let ca = TestCa::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    ca.leaf("good.pem", GOOD_SERIAL);
    let (ok, out) = openssl(
        ca.dir.path(),
        &[
            "ocsp", "-issuer", "ca.pem", "-cert", "good.pem", "-reqout", "req.der",
        ],
    );
    assert!(ok, "{out}");
    let original = OcspRequest::from_der(&std::fs::read(ca.path("req.der")).unwrap()).unwrap();
    let responder = ca.responder();

    // Replace the nonce (an OCTET STRING inside the extension value).
    let with_nonce = |len: usize| {
        let mut req = original.clone();
        let ext = req
            .tbs_request
            .request_extensions
            .as_mut()
            .unwrap()
            .iter_mut()
            .find(|e| e.extn_id == <Nonce as der::oid::AssociatedOid>::OID)
            .unwrap();
        let nonce = Nonce::new(vec![0x5a; len]).unwrap();
        ext.extn_value = der::asn1::OctetString::new(nonce.to_der().unwrap()).unwrap();
        let resp = responder.respond(
            &req.to_der().unwrap(),
            OffsetDateTime::now_utc(),
            Duration::hours(1),
            lookup,
        );
        OcspResponse::from_der(&resp).unwrap()
    };

    for len in [1, 16, 32, 128] {
        let resp = with_nonce(len);
        assert_eq!(
            resp.response_status,
            OcspResponseStatus::Successful,
            "{len}"
        );
        let basic =
            BasicOcspResponse::from_der(resp.response_bytes.unwrap().response.as_bytes()).unwrap();
        assert_eq!(
            basic.nonce().unwrap().0.as_bytes(),
            vec![0x5a; len].as_slice()
        );
    }
    for len in [0, 129, 1000] {
        assert_eq!(
            with_nonce(len).response_status,
            OcspResponseStatus::MalformedRequest,
            "{len}"
        );
    }
}
