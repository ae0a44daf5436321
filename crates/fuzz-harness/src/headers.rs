//! The header encoders (client-auth `headers`): no-injection and
//! round-trip invariants, not just "does not crash".
//!
//! The decoders below are test oracles written from the formats' texts
//! (RFC 9440 / RFC 8941 byte sequences, Envoy's XFCC grammar), kept apart
//! from the encoders they check.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use client_auth::headers::{client_cert, client_cert_chain, xfcc as encode_xfcc};
use client_auth::{CertFacts, CertificateDer, SubjectAltName};

use crate::Input;

/// A value the gateway puts in a header must be one hyper accepts, carry
/// no CR, LF or NUL (so it can never end the header or start another), and
/// have no leading or trailing whitespace (which a receiving parser would
/// strip, changing the value).
pub fn assert_header_value(name: &str, v: &str) {
    assert!(
        !v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)),
        "{name}: CR/LF/NUL in {v:?}"
    );
    assert!(
        hyper::header::HeaderValue::from_str(v).is_ok(),
        "{name}: not a valid header value: {v:?}"
    );
    assert!(
        v.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "{name}: not printable ASCII: {v:?}"
    );
    assert_eq!(v.trim(), v, "{name}: leading/trailing whitespace in {v:?}");
}

/// Decodes one RFC 8941 byte sequence `:base64:`.
fn sf_binary(s: &str) -> Vec<u8> {
    let inner = s
        .strip_prefix(':')
        .and_then(|s| s.strip_suffix(':'))
        .unwrap_or_else(|| panic!("not a byte sequence: {s:?}"));
    STANDARD
        .decode(inner)
        .unwrap_or_else(|e| panic!("bad base64 in {s:?}: {e}"))
}

/// RFC 9440 `Client-Cert` and `Client-Cert-Chain`: valid header values
/// that decode back to exactly the certificates given, in order.
pub fn rfc9440(data: &[u8]) {
    let mut inp = Input::new(data);
    let n = inp.choose(5);
    let certs: Vec<CertificateDer<'static>> = (0..=n)
        .map(|_| CertificateDer::from(inp.bytes(200).to_vec()))
        .collect();
    let leaf = client_cert(&certs[0]);
    assert_header_value("client-cert", &leaf);
    assert_eq!(sf_binary(&leaf), certs[0].as_ref());
    match client_cert_chain(&certs[1..]) {
        None => assert_eq!(certs.len(), 1, "a chain header for no certificates"),
        Some(list) => {
            assert_header_value("client-cert-chain", &list);
            let back: Vec<Vec<u8>> = list.split(", ").map(sf_binary).collect();
            let want: Vec<Vec<u8>> = certs[1..].iter().map(|c| c.to_vec()).collect();
            assert_eq!(back, want, "chain round trip");
        }
    }
}

/// One XFCC element split into (key, unquoted value) pairs, following
/// Envoy's grammar: `;` separates pairs, `,` separates elements, a value
/// may be double-quoted with `\` escaping the next character.
pub fn xfcc_decode(s: &str) -> Vec<Vec<(String, String)>> {
    let mut elements = vec![Vec::new()];
    let mut key = String::new();
    let mut val = String::new();
    let mut in_key = true;
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '\\' => val.extend(chars.next()),
                '"' => quoted = false,
                _ => val.push(c),
            }
            continue;
        }
        match c {
            '=' if in_key => in_key = false,
            '"' if !in_key && val.is_empty() => quoted = true,
            ';' | ',' => {
                let pair = (std::mem::take(&mut key), std::mem::take(&mut val));
                elements.last_mut().expect("one element").push(pair);
                in_key = true;
                if c == ',' {
                    elements.push(Vec::new());
                }
            }
            _ if in_key => key.push(c),
            _ => val.push(c),
        }
    }
    assert!(!quoted, "unterminated quoted value in {s:?}");
    elements.last_mut().expect("one element").push((key, val));
    elements
}

/// What an XFCC value says after unquoting: the text with every byte
/// outside printable ASCII as `%XX` (the documented transformation).
fn printable(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if (0x20..0x7f).contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Percent-decoding, for the `Cert=` value (url-encoded PEM).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("ascii");
            out.push(u8::from_str_radix(hex, 16).expect("hex after %"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

const SAMPLES: &[&str] = &[
    "spiffe://acme.test/ns/prod/sa/web",
    "a\"b\\",
    "x;URI=evil",
    "y,By=evil",
    "line\r\nX-Injected: 1",
    "caf\u{e9}",
    " lead",
    "trail ",
    "\0",
    "=",
];

/// `X-Forwarded-Client-Cert` for arbitrary certificate facts (hostile
/// subjects, URIs and DNS names): one element, exactly the expected keys
/// in order, each value decoding to the documented text, the certificate
/// coming back byte for byte from `Cert=`.
pub fn xfcc(data: &[u8]) {
    let mut inp = Input::new(data);
    let by = inp.flag().then(|| inp.string(80, SAMPLES));
    let subject = inp.string(120, SAMPLES);
    let mut sans = Vec::new();
    for _ in 0..inp.choose(4) {
        let v = inp.string(80, SAMPLES);
        sans.push(match inp.choose(3) {
            0 => SubjectAltName::Uri(v),
            1 => SubjectAltName::Dns(v),
            _ => SubjectAltName::Email(v),
        });
    }
    let leaf = inp
        .flag()
        .then(|| CertificateDer::from(inp.bytes(120).to_vec()));
    let sha256: String = inp.bytes(32).iter().map(|b| format!("{b:02x}")).collect();
    let facts = CertFacts {
        ski: None,
        sha256: sha256.clone(),
        serial: "01".into(),
        subject: subject.clone(),
        issuer: "CN=x".into(),
        sans: sans.clone(),
        not_before: "2026-01-01T00:00:00Z".into(),
        not_after: "2027-01-01T00:00:00Z".into(),
    };
    let chain: Vec<CertificateDer<'static>> = leaf.into_iter().collect();
    let value = encode_xfcc(by.as_deref(), &facts, &chain, false);
    assert_header_value("x-forwarded-client-cert", &value);

    let mut want: Vec<(&str, String)> = Vec::new();
    if let Some(b) = &by {
        want.push(("By", printable(b)));
    }
    want.push(("Hash", sha256));
    if !chain.is_empty() {
        want.push(("Cert", String::new()));
    }
    want.push(("Subject", printable(&subject)));
    for s in &sans {
        if let SubjectAltName::Uri(u) = s {
            want.push(("URI", printable(u)));
        }
    }
    for s in &sans {
        if let SubjectAltName::Dns(d) = s {
            want.push(("DNS", printable(d)));
        }
    }
    let got = xfcc_decode(&value);
    assert_eq!(
        got.len(),
        1,
        "one hop became {} elements: {value:?}",
        got.len()
    );
    let got = &got[0];
    assert_eq!(
        got.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        want.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        "keys of {value:?}"
    );
    for ((k, g), (_, w)) in got.iter().zip(&want) {
        if k == "Cert" {
            let pem_text = percent_decode(g);
            let block = pem::parse(&pem_text).expect("Cert= is a PEM certificate");
            assert_eq!(block.contents(), chain[0].as_ref(), "Cert= round trip");
        } else {
            assert_eq!(g, w, "{k} in {value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_reads_quotes_and_escapes() {
        let e = xfcc_decode(r#"By=a;Subject="x\"y\\;z",URI=u"#);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0][1], ("Subject".into(), r#"x"y\;z"#.into()));
        assert_eq!(e[1][0], ("URI".into(), "u".into()));
    }
}
