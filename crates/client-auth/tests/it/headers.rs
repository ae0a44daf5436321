//! Facts and header encodings, including hostile certificates.

use base64::Engine as _;
use client_auth::headers::{client_cert, client_cert_chain, identity_headers, xfcc, xfcc_value};
use client_auth::{CertFacts, CertificateDer, SubjectAltName, TrustStore, Verdict};
use rcgen::{DnType, KeyPair, SanType};

use crate::common::*;

/// Parse one XFCC header into elements of (key, unescaped value) pairs,
/// the way a strict consumer would: `,` between elements, `;` between
/// pairs, `=` after the key, double quotes with backslash escapes.
fn parse_xfcc(h: &str) -> Vec<Vec<(String, String)>> {
    let mut elements = vec![];
    let mut pairs = vec![];
    let (mut key, mut val, mut in_key, mut quoted) = (String::new(), String::new(), true, false);
    let mut chars = h.chars();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '\\' => val.push(chars.next().expect("escape at end")),
                '"' => quoted = false,
                c => val.push(c),
            }
            continue;
        }
        match c {
            '"' if !in_key => quoted = true,
            '=' if in_key => in_key = false,
            ';' | ',' => {
                pairs.push((std::mem::take(&mut key), std::mem::take(&mut val)));
                in_key = true;
                if c == ',' {
                    elements.push(std::mem::take(&mut pairs));
                }
            }
            c if in_key => key.push(c),
            c => val.push(c),
        }
    }
    assert!(!quoted, "unterminated quote in {h}");
    pairs.push((key, val));
    elements.push(pairs);
    elements
}

fn hostile_leaf(ca: &Ca, cn: &str, sans: Vec<SanType>) -> CertificateDer<'static> {
    let mut p = leaf_params(&LeafOpts::default());
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "O\"; By=evil, Hash=0");
    p.subject_alt_names = sans;
    p.signed_by(&KeyPair::generate().expect("key"), &ca.issuer)
        .expect("sign")
        .der()
        .clone()
}

fn ia5(s: &str) -> rcgen::string::Ia5String {
    rcgen::string::Ia5String::try_from(s).expect("ia5")
}

const HOSTILE: &[&str] = &[
    "plain",
    "quote\"in, comma; semi=eq",
    "ends with backslash\\",
    "\\\";By=spiffe://evil;Hash=00",
    "new\nline\r\nX-Injected: yes",
    "tab\tand\u{7f}del",
    "non-ASCII: é 日本 \u{202e}",
    "#leading hash and trailing space ",
    " leading space",
    "+plus<less>greater",
];

fn assert_header_safe(name: &str, v: &str) {
    assert!(
        v.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "{name} has a byte outside printable ASCII: {v:?}"
    );
}

#[test]
fn hostile_subjects_and_sans_never_break_headers() {
    let ca = root("Root");
    let mut cns: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    cns.push("A".repeat(10 * 1024));
    cns.push("\",;=\\".repeat(2048));
    for cn in &cns {
        let sans = vec![
            SanType::DnsName(ia5("evil.test;By=x,Hash=\"y\"")),
            SanType::DnsName(ia5("new\nline.test")),
            SanType::URI(ia5("spiffe://example.org/ns/a;b=c,d\"e\\")),
            SanType::Rfc822Name(ia5("a\"b@example.org")),
        ];
        let l = hostile_leaf(&ca, cn, sans);
        let chain = vec![l.clone(), ca.der.clone()];
        let facts = CertFacts::from_der(&l).expect("facts");
        let v = TrustStore::builder()
            .anchor(&ca.der)
            .build()
            .expect("s")
            .verify(&chain, now());
        assert_eq!(v, Verdict::Valid);
        for (name, value) in identity_headers(&v, Some(&facts), &chain) {
            assert_header_safe(name, &value);
        }
        let h = xfcc(Some("spiffe://gw.example/ns/gateway"), &facts, &chain, true);
        assert_header_safe("xfcc", &h);
        let parsed = parse_xfcc(&h);
        assert_eq!(parsed.len(), 1, "one element, no injected element: {h}");
        let keys: Vec<&str> = parsed[0].iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["By", "Hash", "Cert", "Chain", "Subject", "URI", "DNS", "DNS"],
            "{h}"
        );
        let get = |k: &str| {
            parsed[0]
                .iter()
                .find(|(kk, _)| kk == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("Subject").as_deref(), Some(facts.subject.as_str()));
        assert_eq!(get("Hash").as_deref(), Some(facts.sha256.as_str()));
        assert_eq!(
            get("URI").as_deref(),
            Some("spiffe://example.org/ns/a;b=c,d\"e\\")
        );
        assert_eq!(get("DNS").as_deref(), Some("evil.test;By=x,Hash=\"y\""));
        // A newline inside a SAN is percent-encoded, never raw.
        assert!(
            parsed[0]
                .iter()
                .any(|(k, v)| k == "DNS" && v == "new%0Aline.test"),
            "{h}"
        );
    }
}

#[test]
fn rfc4514_subject_escaping() {
    let ca = root("Root");
    let l = hostile_leaf(&ca, "a,b+c\"d\\e;f<g>h", vec![]);
    let f = CertFacts::from_der(&l).expect("facts");
    // Last RDN first.
    assert_eq!(
        f.subject,
        r#"O=O\"\; By=evil\, Hash=0,CN=a\,b\+c\"d\\e\;f\<g\>h"#
    );
    let l = hostile_leaf(&ca, "é\n", vec![]);
    let f = CertFacts::from_der(&l).expect("facts");
    assert!(f.subject.ends_with(r"CN=\c3\a9\0a"), "{}", f.subject);
    let l = hostile_leaf(&ca, "#x ", vec![]);
    let f = CertFacts::from_der(&l).expect("facts");
    assert!(f.subject.ends_with(r"CN=\#x\ "), "{}", f.subject);
    assert_eq!(f.issuer, "O=Portcullis tests,CN=Root");
}

#[test]
fn facts_of_a_leaf() {
    let ca = root("Root");
    let mut p = leaf_params(&LeafOpts {
        serial: 0x0a0b0c,
        ..Default::default()
    });
    p.subject_alt_names = vec![
        SanType::DnsName(ia5("svc.example.test")),
        SanType::IpAddress("192.0.2.7".parse().expect("ip")),
        SanType::IpAddress("2001:db8::1".parse().expect("ip")),
        SanType::Rfc822Name(ia5("ops@example.test")),
        SanType::URI(ia5("spiffe://example.test/ns/prod/sa/api")),
    ];
    let l = p
        .signed_by(&KeyPair::generate().expect("key"), &ca.issuer)
        .expect("sign");
    let f = CertFacts::from_der(l.der()).expect("facts");
    assert_eq!(f.serial, "0a0b0c");
    assert_eq!(f.subject, "CN=client-1");
    assert_eq!(f.not_before, "2025-12-31T00:00:00Z");
    assert_eq!(f.not_after, "2026-04-01T00:00:00Z");
    assert_eq!(f.sha256.len(), 64);
    // rcgen writes no SKI in end-entity certificates (IsCa::NoCa).
    assert_eq!(f.ski, None);
    let ca_facts = CertFacts::from_der(&ca.der).expect("facts");
    let ski = ca_facts.ski.expect("CA has an SKI");
    assert_eq!(ski.len(), 40, "rcgen: SHA-256 key id truncated to 20 bytes");
    assert_eq!(ski, ski.to_lowercase());
    assert_eq!(f.spiffe_id(), Some("spiffe://example.test/ns/prod/sa/api"));
    assert_eq!(
        f.sans,
        vec![
            SubjectAltName::Dns("svc.example.test".into()),
            SubjectAltName::Ip("192.0.2.7".parse().expect("ip")),
            SubjectAltName::Ip("2001:db8::1".parse().expect("ip")),
            SubjectAltName::Email("ops@example.test".into()),
            SubjectAltName::Uri("spiffe://example.test/ns/prod/sa/api".into()),
        ]
    );
    assert!(CertFacts::from_der(b"junk").is_err());
}

#[test]
fn leaf_without_ski_has_no_ski_header() {
    let ca = root("Root");
    let der = leaf(&ca);
    let f = CertFacts::from_der(&der).expect("facts");
    assert_eq!(f.ski, None);
    let h = identity_headers(&Verdict::Valid, Some(&f), &[der]);
    assert!(h.iter().all(|(k, _)| *k != "client-cert-ski"));
    assert!(h
        .iter()
        .any(|(k, _)| *k == "client-cert-fingerprint-sha256"));
}

#[test]
fn rfc9440_encodings() {
    let ca = root("Root");
    let int = intermediate("Issuing", &ca);
    let l = leaf(&int);
    let h = client_cert(&l);
    assert!(h.starts_with(':') && h.ends_with(':'));
    let b = base64::engine::general_purpose::STANDARD
        .decode(&h[1..h.len() - 1])
        .expect("b64");
    assert_eq!(b, l.to_vec());
    let c = client_cert_chain(&[int.der.clone(), ca.der.clone()]).expect("chain");
    let parts: Vec<&str> = c.split(", ").collect();
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|p| p.starts_with(':') && p.ends_with(':')));
    assert_eq!(client_cert_chain(&[]), None);
}

#[test]
fn xfcc_quoting_rules() {
    assert_eq!(xfcc_value("spiffe://a/b"), "spiffe://a/b");
    assert_eq!(xfcc_value("a,b"), "\"a,b\"");
    assert_eq!(xfcc_value("a;b"), "\"a;b\"");
    assert_eq!(xfcc_value("a=b"), "\"a=b\"");
    assert_eq!(xfcc_value("a\"b"), "\"a\\\"b\"");
    assert_eq!(xfcc_value("a\\"), "\"a\\\\\"");
    assert_eq!(xfcc_value("a\nb"), "a%0Ab");
}

#[test]
fn invalid_and_none_headers() {
    let v = Verdict::None;
    assert_eq!(
        identity_headers(&v, None, &[]),
        vec![("client-cert-status", "none".to_string())]
    );
    let ca = root("Root");
    let l = leaf(&root("Other"));
    let v = TrustStore::builder()
        .anchor(&ca.der)
        .build()
        .expect("s")
        .verify(std::slice::from_ref(&l), now());
    let f = CertFacts::from_der(&l).expect("facts");
    let h = identity_headers(&v, Some(&f), &[l]);
    assert_eq!(h[0], ("client-cert-status", "invalid".to_string()));
    assert_eq!(h[1], ("client-cert-error", "unknown-issuer".to_string()));
}
