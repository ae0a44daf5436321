//! Validation of what operators upload: raw input in, a checked value or a
//! precise [`ApiError`] (4xx) out. Nothing here touches the store.

use crate::error::ApiError;
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

/// Most certificates in one CA upload (a root and its intermediates).
pub const MAX_BUNDLE: usize = 10;

/// Facts about one CA certificate of an accepted upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaCertFacts {
    /// RFC 4514 subject.
    pub subject: String,
    /// RFC 4514 issuer.
    pub issuer: String,
    /// Subject Key Identifier, lowercase hex (empty when absent).
    pub ski: String,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint_sha256: String,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    /// Subject equals issuer.
    pub self_signed: bool,
    /// `not_after` as Unix seconds.
    #[serde(skip)]
    pub not_after_unix: i64,
}

/// A CA upload that passed every check.
#[derive(Debug, Clone)]
pub struct CaBundle {
    /// The certificates, as uploaded (order kept).
    pub ders: Vec<Vec<u8>>,
    /// Normalized PEM of the bundle (what is stored and served).
    pub pem: String,
    /// Facts of each certificate, in order.
    pub certs: Vec<CaCertFacts>,
}

impl CaBundle {
    /// The earliest expiry in the bundle (Unix seconds).
    pub fn not_after(&self) -> i64 {
        self.certs
            .iter()
            .map(|c| c.not_after_unix)
            .min()
            .unwrap_or(0)
    }

    /// The SHA-256 fingerprint of the first certificate: the bundle's
    /// identity in listings.
    pub fn fingerprint(&self) -> &str {
        self.certs
            .first()
            .map(|c| c.fingerprint_sha256.as_str())
            .unwrap_or("")
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn bad_ca(message: impl Into<String>) -> ApiError {
    ApiError::invalid("invalid_ca", message)
}

/// Checks a CA upload (PEM text of one or more `CERTIFICATE` blocks) at
/// time `now`: every certificate parses, is a CA (basicConstraints cA and
/// keyUsage keyCertSign) and has not expired. A private key in the upload
/// is refused (and not echoed).
pub fn ca_bundle(pem_text: &str, now: OffsetDateTime) -> Result<CaBundle, ApiError> {
    let text = pem_text.trim();
    if text.is_empty() {
        return Err(bad_ca("the PEM is empty"));
    }
    let blocks = pem::parse_many(text).map_err(|e| bad_ca(format!("not valid PEM: {e}")))?;
    if blocks.is_empty() {
        return Err(bad_ca(
            "no PEM block found (expected -----BEGIN CERTIFICATE-----)",
        ));
    }
    if blocks.iter().any(|b| b.tag().contains("PRIVATE KEY")) {
        return Err(bad_ca(
            "the upload contains a private key; upload only CA certificates (and keep the key secret)",
        ));
    }
    if let Some(b) = blocks.iter().find(|b| b.tag() != "CERTIFICATE") {
        return Err(bad_ca(format!(
            "unexpected PEM block {:?}; only CERTIFICATE blocks are accepted",
            b.tag()
        )));
    }
    if blocks.len() > MAX_BUNDLE {
        return Err(bad_ca(format!(
            "{} certificates in one upload; at most {MAX_BUNDLE}",
            blocks.len()
        )));
    }
    let mut ders = Vec::with_capacity(blocks.len());
    let mut certs = Vec::with_capacity(blocks.len());
    for (i, b) in blocks.into_iter().enumerate() {
        let der = b.into_contents();
        let at = format!("certificate {}", i + 1);
        let facts = ca_cert(&der, now).map_err(|m| bad_ca(format!("{at}: {m}")))?;
        if certs
            .iter()
            .any(|c: &CaCertFacts| c.fingerprint_sha256 == facts.fingerprint_sha256)
        {
            return Err(bad_ca(format!("{at} appears twice in the upload")));
        }
        certs.push(facts);
        ders.push(der);
    }
    let pem = ders
        .iter()
        .map(|d| pki::issue::to_pem("CERTIFICATE", d))
        .collect::<String>();
    Ok(CaBundle { ders, pem, certs })
}

fn ca_cert(der: &[u8], now: OffsetDateTime) -> Result<CaCertFacts, String> {
    let (rest, x) =
        X509Certificate::from_der(der).map_err(|e| format!("not a parsable certificate: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the certificate".into());
    }
    let subject = pki::info::rfc4514(x.subject());
    let ca = x
        .basic_constraints()
        .map_err(|e| format!("bad basicConstraints: {e}"))?
        .is_some_and(|b| b.value.ca);
    if !ca {
        return Err(format!(
            "{subject} is not a CA certificate (basicConstraints cA is not set); upload the CA that issues your client certificates, not a leaf"
        ));
    }
    let ku = x.key_usage().map_err(|e| format!("bad keyUsage: {e}"))?;
    if !ku.is_some_and(|k| k.value.key_cert_sign()) {
        return Err(format!(
            "{subject}: keyUsage does not allow certificate signing (keyCertSign)"
        ));
    }
    let not_before = x.validity().not_before.to_datetime();
    let not_after = x.validity().not_after.to_datetime();
    if not_after <= now {
        return Err(format!("{subject} expired at {}", rfc3339(not_after)));
    }
    let ski = x
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                Some(hex::encode(k.0))
            }
            _ => None,
        })
        .unwrap_or_default();
    Ok(CaCertFacts {
        issuer: pki::info::rfc4514(x.issuer()),
        self_signed: x.subject().as_raw() == x.issuer().as_raw(),
        subject,
        ski,
        fingerprint_sha256: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der)),
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        not_after_unix: not_after.unix_timestamp(),
    })
}

/// Checks a custom hostname: a DNS name of at least two labels, lowercase
/// ASCII letters, digits and hyphens, labels of 1..=63 characters that
/// neither start nor end with a hyphen, at most 253 characters, not an IP
/// address, no trailing dot, no wildcard.
pub fn hostname(name: &str) -> Result<(), ApiError> {
    let bad = |why: &str| {
        ApiError::invalid(
            "invalid_hostname",
            format!("{name:?} is not a valid hostname: {why}"),
        )
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad("must be lowercase"));
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(bad("an IP address is not a hostname"));
    }
    if name.ends_with('.') {
        return Err(bad("no trailing dot"));
    }
    if name.starts_with("*.") {
        return Err(bad("wildcards are not supported"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(bad("needs at least two labels (like api.example.com)"));
    }
    for l in &labels {
        if l.is_empty() {
            return Err(bad("empty label"));
        }
        if l.len() > 63 {
            return Err(bad("a label is longer than 63 characters"));
        }
        if !l
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad(
                "only letters a-z, digits and hyphens are allowed (use punycode for IDNs)",
            ));
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Err(bad("a label starts or ends with a hyphen"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("the last label is all digits"));
    }
    Ok(())
}

/// A CRL that passed: issued by one of the CA's certificates, signature
/// verified.
#[derive(Debug, Clone)]
pub struct CheckedCrl {
    /// DER.
    pub der: Vec<u8>,
    /// PEM (`X509 CRL`).
    pub pem: String,
    /// Number of revoked entries.
    pub revoked: usize,
    /// RFC 3339.
    pub this_update: String,
    /// RFC 3339, when present.
    pub next_update: Option<String>,
}

/// Checks a CRL (PEM `X509 CRL` or base64 DER) for a CA bundle: it parses,
/// its issuer is one of the bundle's certificates and that certificate's
/// key signed it.
pub fn crl(input: &str, ca: &[Vec<u8>]) -> Result<CheckedCrl, ApiError> {
    let bad = |m: String| ApiError::invalid("invalid_crl", m);
    let text = input.trim();
    let der = if text.starts_with("-----") {
        let blocks = pem::parse_many(text).map_err(|e| bad(format!("not valid PEM: {e}")))?;
        let mut crls = blocks.into_iter().filter(|b| b.tag() == "X509 CRL");
        let first = crls
            .next()
            .ok_or_else(|| bad("no X509 CRL block in the PEM".into()))?;
        if crls.next().is_some() {
            return Err(bad("one CRL per upload".into()));
        }
        first.into_contents()
    } else {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| bad("neither PEM nor base64 DER".into()))?
    };
    let (rest, crl) = CertificateRevocationList::from_der(&der)
        .map_err(|e| bad(format!("not a parsable CRL: {e}")))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the CRL".into()));
    }
    let mut issuer_found = false;
    for c in ca {
        let Ok((_, x)) = X509Certificate::from_der(c) else {
            continue;
        };
        if x.subject().as_raw() != crl.issuer().as_raw() {
            continue;
        }
        issuer_found = true;
        if crl.verify_signature(x.public_key()).is_ok() {
            return Ok(CheckedCrl {
                pem: pki::issue::to_pem("X509 CRL", &der),
                revoked: crl.iter_revoked_certificates().count(),
                this_update: rfc3339(crl.last_update().to_datetime()),
                next_update: crl.next_update().map(|t| rfc3339(t.to_datetime())),
                der,
            });
        }
    }
    Err(bad(if issuer_found {
        "the CRL's signature does not verify with the CA's key".into()
    } else {
        format!(
            "the CRL is issued by {}, which is not a certificate of this CA",
            pki::info::rfc4514(crl.issuer())
        )
    }))
}

/// Checks a certificate chain (PEM, leaf first) and its private key (PEM,
/// PKCS#8): both parse, the key is the leaf's, the leaf has not expired,
/// and when `name` is given the leaf's DNS SANs cover it. `what` names the
/// fields in messages. The key is never echoed.
pub fn cert_and_key(
    what: &str,
    cert_pem: &str,
    key_pem: &str,
    name: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    let bad = |m: String| ApiError::invalid("invalid_certificate", format!("{what}: {m}"));
    let ders = certs(cert_pem).map_err(&bad)?;
    let leaf = ders.first().ok_or_else(|| bad("no certificate".into()))?;
    let (_, x) = X509Certificate::from_der(leaf)
        .map_err(|e| bad(format!("not a parsable certificate: {e}")))?;
    if x.validity().not_after.to_datetime() <= now {
        return Err(bad(format!(
            "the certificate expired at {}",
            rfc3339(x.validity().not_after.to_datetime())
        )));
    }
    let key = pki::key::PrivateKey::from_pem(key_pem).map_err(|_| {
        ApiError::invalid(
            "invalid_private_key",
            format!("{what}: the private key is not a readable PEM key (PKCS#8, EC or RSA)"),
        )
    })?;
    if key.public_key_der() != x.public_key().raw {
        return Err(ApiError::invalid(
            "key_mismatch",
            format!("{what}: the private key does not belong to the certificate"),
        ));
    }
    if let Some(name) = name {
        let sans: Vec<String> = match x.subject_alternative_name() {
            Ok(Some(ext)) => ext
                .value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        Some(d.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let covered = sans.iter().any(|s| {
            s == name
                || s.strip_prefix("*.")
                    .is_some_and(|base| name.split_once('.').is_some_and(|(_, rest)| rest == base))
        });
        if !covered {
            return Err(bad(format!(
                "the certificate does not cover {name:?} (its DNS names: {})",
                if sans.is_empty() {
                    "none".to_owned()
                } else {
                    sans.join(", ")
                }
            )));
        }
    }
    Ok(())
}

/// The DER of every `CERTIFICATE` block of a PEM text (at least one).
pub fn certs(pem_text: &str) -> Result<Vec<Vec<u8>>, String> {
    let blocks = pem::parse_many(pem_text.trim()).map_err(|e| format!("not valid PEM: {e}"))?;
    let ders: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect();
    if ders.is_empty() {
        return Err("no CERTIFICATE block in the PEM".into());
    }
    for (i, d) in ders.iter().enumerate() {
        X509Certificate::from_der(d)
            .map_err(|e| format!("certificate {} does not parse: {e}", i + 1))?;
    }
    Ok(ders)
}

/// Checks an origin URL: `http://` or `https://`, a host, an optional
/// port, no path beyond `/`, no query, no user info.
pub fn origin(url: &str) -> Result<(), ApiError> {
    let bad = |m: &str| ApiError::invalid("invalid_origin", format!("origin {url:?}: {m}"));
    let uri: axum::http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(bad("the scheme must be http or https")),
    }
    let auth = uri.authority().ok_or_else(|| bad("no host"))?;
    if auth.as_str().contains('@') {
        return Err(bad("user info is not allowed"));
    }
    if auth.host().is_empty() {
        return Err(bad("no host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad(
            "no path or query is allowed (the request's path is kept)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        for ok in [
            "api.acme.test",
            "a.b",
            "x-1.example.com",
            "xn--bcher-kva.example",
        ] {
            assert!(hostname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "localhost",
            "API.acme.test",
            "api..acme.test",
            "-a.acme.test",
            "a-.acme.test",
            "api.acme.test.",
            "*.acme.test",
            "127.0.0.1",
            "::1",
            "under_score.test",
            "sp ace.test",
            "ünï.test",
            "a.123",
        ] {
            let e = hostname(bad).unwrap_err();
            assert_eq!(e.code, "invalid_hostname", "{bad}");
        }
        let long = format!("{}.test", "a".repeat(64));
        assert!(hostname(&long).is_err());
        let too_long = ["abcdefghi"; 26].join(".");
        assert!(too_long.len() > 253);
        assert!(hostname(&too_long).is_err());
    }
}
