//! Targets for crates/pki: CSR JSON, signing config, PKCS#10, keys, OCSP.

use der::Decode as _;
use pki::config::{ConfigFile, SigningPolicy};
use pki::csr_spec::CsrSpec;
use pki::issue::SignRequest;
use pki::ocsp::CertStatus;
use time::OffsetDateTime;

use crate::fixtures::pki;
use crate::Input;

/// An error must say something: an empty message helps no operator.
fn says_something(e: &impl std::fmt::Display) {
    assert!(!e.to_string().trim().is_empty(), "empty error message");
}

/// CFSSL CSR JSON: parse, validate, and build the subject and SANs. A spec
/// that parsed must also give certificate parameters (validate() promised
/// so). Keys are not generated: RSA generation would make the target slow
/// without reaching more parser code.
pub fn csr_spec(data: &[u8]) {
    let spec = match CsrSpec::from_json(data) {
        Ok(s) => s,
        Err(e) => return says_something(&e),
    };
    spec.validate()
        .expect("from_json returned a spec that fails validate()");
    let _ = spec.distinguished_name();
    let params = spec.params().expect("a validated spec gives parameters");
    assert_eq!(params.subject_alt_names.len(), spec.hosts.len());
    spec.key_request()
        .algorithm()
        .expect("a validated spec names a supported key");
    // Serializing a spec and reading it back gives the same spec.
    let again = serde_json::to_vec(&spec).expect("serialize");
    let back = CsrSpec::from_json(&again).expect("a serialized spec parses again");
    assert_eq!(format!("{back:?}"), format!("{spec:?}"));
}

/// CFSSL signing config JSON (and the Go durations and serials inside it).
pub fn signing_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        // Go durations: whatever parses prints (to the second, as
        // documented) in a form that parses back to the same seconds.
        if let Ok(d) = pki::duration::parse_go_duration(text) {
            let printed = pki::duration::format_go_duration(d);
            let back = pki::duration::parse_go_duration(&printed)
                .unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not parse: {e}"));
            assert_eq!(back.as_secs(), d.as_secs(), "{text:?} -> {printed:?}");
        }
        // Serials: hex and decimal forms agree.
        for s in [
            pki::serial::Serial::from_hex(text),
            pki::serial::Serial::from_decimal(text),
        ]
        .into_iter()
        .flatten()
        {
            let hex = pki::serial::Serial::from_hex(&s.to_hex())
                .unwrap_or_else(|| panic!("{s:?} from {text:?}: own hex does not parse"));
            assert_eq!(hex.as_bytes(), s.as_bytes());
            // from_decimal takes up to 60 digits (RFC 5280 serials have at
            // most 20 bytes, 49 digits).
            let decimal = s.to_decimal();
            if decimal.len() <= 60 {
                let dec = pki::serial::Serial::from_decimal(&decimal).unwrap_or_else(|| {
                    panic!("{s:?} from {text:?}: own decimal {decimal:?} does not parse")
                });
                assert_eq!(dec.as_bytes(), s.as_bytes());
            }
        }
        let _ = text.parse::<pki::revocation::RevocationReason>();
    }
    let file = match ConfigFile::from_json(data) {
        Ok(f) => f,
        Err(e) => return says_something(&e),
    };
    // `file:` and `env:` auth keys read the machine's files and
    // environment: that is the operator's choice, not input to fuzz.
    if file
        .auth_keys
        .values()
        .any(|k| k.key.starts_with("file:") || k.key.starts_with("env:"))
    {
        return;
    }
    let policy = match SigningPolicy::from_file(&file) {
        Ok(p) => p,
        Err(e) => return says_something(&e),
    };
    policy
        .profile("")
        .expect("the default profile always exists");
    if let Some(s) = &file.signing {
        for name in s.profiles.keys() {
            policy
                .profile(name)
                .expect("every configured profile exists");
        }
    }
}

/// PKCS#10: parse and describe, then sign under each profile with the
/// fuzz CA. Whatever is issued must parse back as a certificate.
pub fn csr(data: &[u8]) {
    let _ = pki::info::csr_info(data).map_err(|e| says_something(&e));
    if let Err(e) = pki::csr::parse_csr(data) {
        return says_something(&e);
    }
    let p = pki();
    let now = OffsetDateTime::now_utc();
    for profile in ["", "client", "server", "intermediate"] {
        let req = SignRequest {
            csr: data.to_vec(),
            hosts: None,
            profile: profile.into(),
            subject: None,
        };
        match p.ca.sign(&p.policy, &req, now) {
            Ok(issued) => {
                let info = pki::info::cert_info(issued.pem.as_bytes())
                    .expect("an issued certificate parses");
                assert_eq!(info.serial_number, issued.serial.to_decimal());
                client_auth::CertFacts::from_der(&issued.der).expect("facts of an issued cert");
            }
            Err(e) => says_something(&e),
        }
    }
}

/// Private keys and key references: PEM/PKCS#8 keys, encrypted key files
/// (only up to the passphrase: the KDF is not run), `KeyRef` strings,
/// PKCS#11 URIs and sealed-key files.
pub fn key(data: &[u8]) {
    let mut inp = Input::new(data);
    let which = inp.choose(4);
    let rest = inp.rest();
    let text = String::from_utf8_lossy(rest);
    match which {
        0 => {
            if let Ok(k) = pki::key::PrivateKey::from_pem(&text) {
                let again = pki::key::PrivateKey::from_pem(&k.to_pem()).expect("own PEM");
                assert_eq!(again.public_key_der(), k.public_key_der());
            }
            let _ = pki::custody::encrypted::read_pem(&text, None);
        }
        1 => {
            if let Ok(k) = pki::key::PrivateKey::from_pkcs8_der(rest) {
                let again =
                    pki::key::PrivateKey::from_pkcs8_der(&k.to_pkcs8_der()).expect("own DER");
                assert_eq!(again.public_key_der(), k.public_key_der());
            }
        }
        2 => {
            let _ = pki::custody::KeyRef::parse(&text);
            let _ = pki::custody::Pkcs11Uri::parse(&text);
        }
        _ => {
            let _ = pki::custody::sealed::SealedKey::from_json(&text);
        }
    }
}

/// OCSP: any request gets a DER OCSPResponse that decodes; GET paths
/// decode or fail cleanly.
pub fn ocsp(data: &[u8]) {
    let p = pki();
    let responder = &p.ocsp;
    let now = OffsetDateTime::now_utc();
    let lookup = |serial: &[u8]| match serial.first() {
        Some(b) if b % 3 == 0 => CertStatus::Good,
        Some(b) if b % 3 == 1 => CertStatus::Revoked {
            at: now,
            reason: pki::revocation::RevocationReason::KeyCompromise,
        },
        _ => CertStatus::Unknown,
    };
    let out = responder.respond(data, now, time::Duration::hours(1), lookup);
    x509_ocsp::OcspResponse::from_der(&out).expect("every answer is a DER OCSPResponse");
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(req) = pki::ocsp::decode_get_path(text) {
            let out = responder.respond(&req, now, time::Duration::hours(1), lookup);
            x509_ocsp::OcspResponse::from_der(&out).expect("GET answer decodes");
        }
    }
}
