//! C2SP x509-limbo conformance: every case whose result does not depend
//! on hostname matching runs through our verifier at three strictness
//! levels; each level has an explicit list of known divergences, and the
//! test fails both on a new divergence and on a listed case that now
//! agrees with the expected result.
//!
//! Harness choices (documented in SOURCE.md / testcase-notes.json):
//! - skipped: `use == "hostname"`, the `max-chain-depth` feature (5), and
//!   the 2 cases with a non-empty `key_usage`;
//! - EKU: `clientAuth` / `serverAuth` from the case, else any;
//! - trust anchors that webpki cannot use are dropped (none left = FAILURE);
//! - `untrusted_intermediates` become the store's (untrusted) intermediate
//!   pool, so our client-sent certificate limit does not apply;
//! - a store that refuses to build (e.g. an unusable CRL) is a FAILURE.

use std::collections::BTreeMap;

use client_auth::{pem_certs, pem_or_der_crls, EkuPolicy, Strictness, TrustStore, UnixTime};
use serde_json::Value;

const LIMBO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/x509-limbo/limbo.json"
);
const NOTES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/x509-limbo/testcase-notes.json"
);

/// Known divergences with only webpki's checks: these must be exactly the
/// cases where testcase-notes.json records `chain_only` != expected
/// (computed from the notes, not listed here) - the "before" figure.
///
/// Known divergences at `Standard` (the default): (id, what we do).
const STANDARD_DIVERGENCES: &[(&str, Outcome)] = &[
    // Deliberate rejections (expected SUCCESS).
    (
        "pathlen::validation-ignores-pathlen-in-leaf",
        Outcome::Reject,
    ), // CA cert as leaf (webpki)
    ("rfc5280::ca-as-leaf", Outcome::Reject), // CA cert as leaf (webpki)
    ("pathlen::self-issued-certs-pathlen", Outcome::Reject), // webpki: no self-issued chains
    ("rfc5280::nc::permitted-self-issued", Outcome::Reject), // webpki: no self-issued chains
    ("rfc5280::nc::permitted-dn-match", Outcome::Reject), // webpki: no DN constraints
    ("rfc5280::nc::nc-permits-email-exact", Outcome::Reject), // webpki: no RFC822 constraints
    ("rfc5280::nc::nc-permits-email-domain", Outcome::Reject),
    (
        "rfc5280::nc::nc-permits-email-literal-asterisk-exact-match",
        Outcome::Reject,
    ),
    (
        "rfc5280::nc::nc-permits-email-literal-double-asterisk",
        Outcome::Reject,
    ),
    (
        "rfc5280::nc::nc-permits-email-literal-mid-asterisk",
        Outcome::Reject,
    ),
    // Accepted at Standard, refused at Strict (rules some private PKIs break).
    ("rfc5280::aki::leaf-missing-aki", Outcome::Accept),
    ("rfc5280::aki::intermediate-missing-aki", Outcome::Accept),
    (
        "rfc5280::aki::cross-signed-root-missing-aki",
        Outcome::Accept,
    ),
    ("rfc5280::ski::root-missing-ski", Outcome::Accept),
    ("rfc5280::ski::intermediate-missing-ski", Outcome::Accept),
    (
        "rfc5280::nc::permitted-dns-match-noncritical",
        Outcome::Accept,
    ),
    (
        "rfc5280::nc::invalid-dnsname-leading-period",
        Outcome::Accept,
    ),
    (
        "rfc5280::san::noncritical-with-empty-subject",
        Outcome::Accept,
    ),
    ("rfc5280::serial::too-long", Outcome::Accept),
    ("rfc5280::serial::zero", Outcome::Accept),
    ("rfc5280::root-missing-basic-constraints", Outcome::Accept),
    (
        "rfc5280::root-non-critical-basic-constraints",
        Outcome::Accept,
    ),
    (
        "webpki::aki::root-with-aki-missing-keyidentifier",
        Outcome::Accept,
    ),
    (
        "webpki::aki::root-with-aki-authoritycertissuer",
        Outcome::Accept,
    ),
    (
        "webpki::aki::root-with-aki-authoritycertserialnumber",
        Outcome::Accept,
    ),
    ("webpki::aki::root-with-aki-all-fields", Outcome::Accept),
    ("webpki::aki::root-with-aki-ski-mismatch", Outcome::Accept),
    ("webpki::eku::ee-anyeku", Outcome::Accept),
    ("webpki::eku::ee-critical-eku", Outcome::Accept),
    ("webpki::eku::ee-without-eku", Outcome::Accept),
    ("webpki::eku::root-has-eku", Outcome::Accept),
    (
        "webpki::san::san-critical-with-nonempty-subject",
        Outcome::Accept,
    ),
    ("webpki::malformed-aia", Outcome::Accept),
    (
        "webpki::forbidden-rsa-not-divisible-by-8-in-root",
        Outcome::Accept,
    ),
    (
        "webpki::forbidden-rsa-key-not-divisible-by-8-in-leaf",
        Outcome::Accept,
    ),
];

/// Known divergences at `Strict`.
const STRICT_DIVERGENCES: &[(&str, Outcome)] = &[
    (
        "pathlen::validation-ignores-pathlen-in-leaf",
        Outcome::Reject,
    ),
    ("rfc5280::ca-as-leaf", Outcome::Reject),
    ("pathlen::self-issued-certs-pathlen", Outcome::Reject),
    ("rfc5280::nc::permitted-self-issued", Outcome::Reject),
    ("rfc5280::nc::permitted-dn-match", Outcome::Reject),
    ("rfc5280::nc::nc-permits-email-exact", Outcome::Reject),
    ("rfc5280::nc::nc-permits-email-domain", Outcome::Reject),
    (
        "rfc5280::nc::nc-permits-email-literal-asterisk-exact-match",
        Outcome::Reject,
    ),
    (
        "rfc5280::nc::nc-permits-email-literal-double-asterisk",
        Outcome::Reject,
    ),
    (
        "rfc5280::nc::nc-permits-email-literal-mid-asterisk",
        Outcome::Reject,
    ),
    // Pairs limbo marks `conflicts_with`: Strict takes the stricter side.
    ("rfc5280::eku::ee-without-eku", Outcome::Reject), // vs webpki::eku::ee-without-eku (CABF)
    (
        "webpki::nc::permitted-dns-match-noncritical",
        Outcome::Reject,
    ), // vs rfc5280:: (RFC 5280)
    // Its trust anchor is a cross-certificate without AKI: the same shape
    // as rfc5280::aki::cross-signed-root-missing-aki, which must fail.
    ("cve::cve-2024-0567", Outcome::Reject),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Accept,
    Reject,
}

struct Case {
    id: String,
    expected: Outcome,
    webpki_notes: Option<Outcome>,
    run: Box<dyn Fn(Strictness) -> (Outcome, String)>,
}

fn load() -> Option<Vec<Case>> {
    let (Ok(limbo), Ok(notes)) = (std::fs::read(LIMBO), std::fs::read(NOTES)) else {
        eprintln!(
            "\n\n*** WARNING: x509-limbo data not found at {LIMBO}: the limbo conformance suite is SKIPPED ***\n\n"
        );
        return None;
    };
    let limbo: Value = serde_json::from_slice(&limbo).expect("limbo.json parses");
    let notes: Value = serde_json::from_slice(&notes).expect("notes parse");
    let notes = &notes["testcases"];
    let mut out = Vec::new();
    for tc in limbo["testcases"].as_array().expect("testcases") {
        let id = tc["id"].as_str().expect("id").to_owned();
        let note = &notes[&id];
        if note["use"] == "hostname" {
            continue;
        }
        let features: Vec<&str> = tc["features"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if features.contains(&"max-chain-depth") {
            continue;
        }
        if tc["key_usage"].as_array().is_some_and(|a| !a.is_empty()) {
            continue;
        }
        let outcome = |s: &str| {
            if s == "SUCCESS" {
                Outcome::Accept
            } else {
                Outcome::Reject
            }
        };
        let expected = outcome(tc["expected_result"].as_str().expect("expected"));
        let webpki_notes = note["rustls_webpki_0_103_17"]["chain_only"]
            .as_str()
            .map(outcome);
        let tc = tc.clone();
        out.push(Case {
            id,
            expected,
            webpki_notes,
            run: Box::new(move |s| run_case(&tc, s)),
        });
    }
    Some(out)
}

fn pems(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn run_case(tc: &Value, strictness: Strictness) -> (Outcome, String) {
    let ekus = pems(&tc["extended_key_usage"]);
    let eku = if ekus.iter().any(|e| e == "clientAuth") {
        EkuPolicy::Client
    } else if ekus.iter().any(|e| e == "serverAuth") {
        EkuPolicy::Server
    } else {
        EkuPolicy::Any
    };
    let now = match tc["validation_time"].as_str() {
        Some(t) => {
            let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .expect("validation_time");
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(t.unix_timestamp() as u64))
        }
        None => UnixTime::now(),
    };
    let mut builder = TrustStore::builder()
        .eku(eku)
        .strictness(strictness)
        .skew_secs(0);
    let mut anchors = 0;
    for p in pems(&tc["trusted_certs"]) {
        for der in pem_certs(p.as_bytes()).unwrap_or_default() {
            if webpki::anchor_from_trusted_cert(&der).is_ok() {
                builder = builder.anchor(&der);
                anchors += 1;
            }
        }
    }
    if anchors == 0 {
        return (Outcome::Reject, "no usable trust anchor".into());
    }
    for p in pems(&tc["untrusted_intermediates"]) {
        for der in pem_certs(p.as_bytes()).unwrap_or_default() {
            builder = builder.intermediate(&der);
        }
    }
    for p in pems(&tc["crls"]) {
        match pem_or_der_crls(p.as_bytes()) {
            Ok(ders) => {
                for d in ders {
                    builder = builder.crl(d);
                }
            }
            Err(e) => return (Outcome::Reject, format!("CRL: {e}")),
        }
    }
    let store = match builder.build() {
        Ok(s) => s,
        Err(e) => return (Outcome::Reject, format!("store: {e}")),
    };
    let leaf = match tc["peer_certificate"]
        .as_str()
        .map(|p| pem_certs(p.as_bytes()))
    {
        Some(Ok(l)) => l,
        _ => return (Outcome::Reject, "peer certificate unparsable".into()),
    };
    let v = store.verify(&leaf[..1], now);
    if v.is_valid() {
        (Outcome::Accept, String::new())
    } else {
        (Outcome::Reject, format!("{v:?}"))
    }
}

fn check_level(
    cases: &[Case],
    level: Strictness,
    listed: &BTreeMap<String, Outcome>,
) -> (Vec<String>, usize, usize) {
    let mut problems = Vec::new();
    let (mut wrong_accept, mut wrong_reject) = (0, 0);
    for c in cases {
        let (got, detail) = (c.run)(level);
        let diverges = got != c.expected;
        if diverges {
            match got {
                Outcome::Accept => wrong_accept += 1,
                Outcome::Reject => wrong_reject += 1,
            }
        }
        match (diverges, listed.get(&c.id)) {
            (true, Some(o)) if *o == got => {}
            (true, _) => problems.push(format!(
                "{level:?}: NEW divergence {}: expected {:?}, got {got:?} {detail}",
                c.id, c.expected
            )),
            (false, Some(_)) => problems.push(format!(
                "{level:?}: listed divergence {} now agrees ({got:?}): remove it from the list",
                c.id
            )),
            (false, None) => {}
        }
    }
    (problems, wrong_accept, wrong_reject)
}

#[test]
fn limbo_conformance() {
    let Some(cases) = load() else { return };
    let mut problems = Vec::new();
    let mut summary = Vec::new();

    // Before: webpki alone must reproduce the recorded divergences.
    let before: BTreeMap<String, Outcome> = cases
        .iter()
        .filter_map(|c| match c.webpki_notes {
            Some(o) if o != c.expected => Some((c.id.clone(), o)),
            _ => None,
        })
        .collect();
    for (level, list) in [
        (Strictness::WebpkiOnly, before),
        (Strictness::Standard, to_map(STANDARD_DIVERGENCES)),
        (Strictness::Strict, to_map(STRICT_DIVERGENCES)),
    ] {
        let (p, wa, wr) = check_level(&cases, level, &list);
        problems.extend(p);
        summary.push(format!(
            "{level:?}: {} cases, {} divergences: {wa} wrongly accepted, {wr} wrongly rejected",
            cases.len(),
            wa + wr
        ));
    }
    eprintln!("x509-limbo:\n  {}", summary.join("\n  "));
    assert!(problems.is_empty(), "x509-limbo:\n{}", problems.join("\n"));
}

fn to_map(l: &[(&str, Outcome)]) -> BTreeMap<String, Outcome> {
    l.iter().map(|(id, o)| ((*id).to_owned(), *o)).collect()
}
