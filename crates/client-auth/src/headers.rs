//! Encodings of what the origin is told (CONTRACT section 4).
//!
//! Every value produced here is printable ASCII with no control
//! characters, so it can never split a header or start a new one, and
//! XFCC values that contain a delimiter are quoted so they cannot inject a
//! key. Hostile certificate fields (quotes, commas, semicolons, newlines,
//! non-ASCII, very long names) are covered by tests.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rustls_pki_types::CertificateDer;

use crate::{CertFacts, Verdict};

/// The header names Portcullis owns. Any of these arriving from a client is
/// removed before forwarding, in every mode.
pub const OWNED_HEADERS: [&str; 12] = [
    "client-cert-status",
    "client-cert-error",
    "client-cert-ski",
    "client-cert-fingerprint-sha256",
    "client-cert-subject",
    "client-cert-issuer",
    "client-cert-serial",
    "client-cert-not-before",
    "client-cert-not-after",
    "client-cert",
    "client-cert-chain",
    "x-forwarded-client-cert",
];

/// RFC 9440 `Client-Cert`: the leaf DER as a structured-field byte sequence.
pub fn client_cert(leaf: &[u8]) -> String {
    sf_binary(leaf)
}

/// RFC 9440 `Client-Cert-Chain`: the certificates other than the leaf, in
/// the order given, as a structured-field list of byte sequences. `None`
/// when there are none (the header is then omitted).
pub fn client_cert_chain(chain_without_leaf: &[CertificateDer<'_>]) -> Option<String> {
    if chain_without_leaf.is_empty() {
        return None;
    }
    let parts: Vec<String> = chain_without_leaf.iter().map(|c| sf_binary(c)).collect();
    Some(parts.join(", "))
}

fn sf_binary(b: &[u8]) -> String {
    format!(":{}:", STANDARD.encode(b))
}

/// Envoy `X-Forwarded-Client-Cert` for one element (one proxy hop).
///
/// `by` is the gateway's own identity (a URI SAN of its certificate), if
/// any; `chain` is the full chain the client sent (leaf first) and goes in
/// `Chain=` only when `include_chain` is set.
pub fn xfcc(
    by: Option<&str>,
    facts: &CertFacts,
    chain: &[CertificateDer<'_>],
    include_chain: bool,
) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(by) = by {
        pairs.push(("By", xfcc_value(by)));
    }
    pairs.push(("Hash", facts.sha256.clone()));
    if let Some(leaf) = chain.first() {
        pairs.push((
            "Cert",
            xfcc_value(&url_encode(&pem_of(std::slice::from_ref(leaf)))),
        ));
    }
    if include_chain && !chain.is_empty() {
        pairs.push(("Chain", xfcc_value(&url_encode(&pem_of(chain)))));
    }
    pairs.push(("Subject", quoted(&facts.subject)));
    for u in facts.uris() {
        pairs.push(("URI", xfcc_value(u)));
    }
    for d in facts.dns_names() {
        pairs.push(("DNS", xfcc_value(d)));
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn pem_of(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.as_ref().to_vec())))
        .collect::<Vec<_>>()
        .join("")
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One XFCC value: bytes outside printable ASCII are percent-encoded
/// (`%XX`, so a newline can never end the header), then the value is
/// double-quoted if it contains `,` `;` `=` `"` `\` or a space, with `"`
/// and `\` escaped by a backslash inside the quotes. Escaping the
/// backslash too is stricter than Envoy's text but needed: otherwise a
/// value ending in `\` would escape the closing quote.
pub fn xfcc_value(s: &str) -> String {
    let mut clean = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) {
            clean.push(b as char);
        } else {
            clean.push_str(&format!("%{b:02X}"));
        }
    }
    if clean
        .bytes()
        .any(|b| matches!(b, b',' | b';' | b'=' | b'"' | b'\\' | b' '))
    {
        quoted(&clean)
    } else {
        clean
    }
}

fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        if ch.is_ascii_graphic() || ch == ' ' {
            out.push(ch);
        } else {
            for b in ch.to_string().bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out.push('"');
    out
}

/// Every CONTRACT section 4 header for a verdict, as (lowercase name,
/// value) pairs. `facts` are those of `chain[0]`; pass `None` when there
/// is no certificate or it could not be parsed.
pub fn identity_headers(
    verdict: &Verdict,
    facts: Option<&CertFacts>,
    chain: &[CertificateDer<'_>],
) -> Vec<(&'static str, String)> {
    let mut h = vec![("client-cert-status", verdict.status().to_owned())];
    if let Some(r) = verdict.reason() {
        h.push(("client-cert-error", r.as_str().to_owned()));
    }
    if let Some(f) = facts {
        if let Some(ski) = &f.ski {
            h.push(("client-cert-ski", ski.clone()));
        }
        h.push(("client-cert-fingerprint-sha256", f.sha256.clone()));
        h.push(("client-cert-subject", f.subject.clone()));
        h.push(("client-cert-issuer", f.issuer.clone()));
        h.push(("client-cert-serial", f.serial.clone()));
        h.push(("client-cert-not-before", f.not_before.clone()));
        h.push(("client-cert-not-after", f.not_after.clone()));
        if let Some(leaf) = chain.first() {
            h.push(("client-cert", client_cert(leaf)));
        }
        if let Some(c) = chain.get(1..).and_then(client_cert_chain) {
            h.push(("client-cert-chain", c));
        }
        h.push(("x-forwarded-client-cert", xfcc(None, f, chain, false)));
    }
    h
}
