//! What the origin is told about the client certificate, per hostname:
//! the CONTRACT section 4 headers, possibly renamed (or dropped), plus any
//! certificate field mapped to a header of the hostname's choice
//! (`[hostname.mtls.headers]`, `[[hostname.mtls.map]]`).
//!
//! Everything here runs once per connection (the verdict is per
//! connection); requests copy the ready header pairs.

use std::collections::HashMap;

use client_auth::{CertFacts, CertificateDer, SubjectAltName, Verdict};
use hyper::http::header::{HeaderName, HeaderValue};

/// A certificate field that can be mapped to a header
/// (`[[hostname.mtls.map]] field = "…"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertField {
    /// `subject`: the RFC 4514 subject.
    Subject,
    /// `issuer`: the RFC 4514 issuer.
    Issuer,
    /// `subject.cn`: the subject's commonName values.
    SubjectCn,
    /// `subject.o`: the subject's organizationName values.
    SubjectO,
    /// `subject.ou`: the subject's organizationalUnitName values.
    SubjectOu,
    /// `issuer.cn`: the issuer's commonName values.
    IssuerCn,
    /// `san.dns`: DNS subject alternative names.
    SanDns,
    /// `san.uri`: URI subject alternative names.
    SanUri,
    /// `san.email`: rfc822Name subject alternative names.
    SanEmail,
    /// `san.ip`: IP address subject alternative names.
    SanIp,
    /// `spiffe_id`: the first `spiffe://` URI SAN.
    SpiffeId,
    /// `serial`: lowercase hex.
    Serial,
    /// `ski`: Subject Key Identifier, lowercase hex.
    Ski,
    /// `fingerprint_sha256`: SHA-256 of the leaf DER, lowercase hex.
    FingerprintSha256,
    /// `not_before`: RFC 3339 UTC.
    NotBefore,
    /// `not_after`: RFC 3339 UTC.
    NotAfter,
    /// `status`: `none`, `valid` or `invalid` (sent even without a
    /// certificate).
    Status,
    /// `error`: the `Client-Cert-Error` value, when invalid.
    Error,
}

impl CertField {
    /// Every field with its config name.
    pub const ALL: [(&'static str, CertField); 18] = [
        ("subject", CertField::Subject),
        ("issuer", CertField::Issuer),
        ("subject.cn", CertField::SubjectCn),
        ("subject.o", CertField::SubjectO),
        ("subject.ou", CertField::SubjectOu),
        ("issuer.cn", CertField::IssuerCn),
        ("san.dns", CertField::SanDns),
        ("san.uri", CertField::SanUri),
        ("san.email", CertField::SanEmail),
        ("san.ip", CertField::SanIp),
        ("spiffe_id", CertField::SpiffeId),
        ("serial", CertField::Serial),
        ("ski", CertField::Ski),
        ("fingerprint_sha256", CertField::FingerprintSha256),
        ("not_before", CertField::NotBefore),
        ("not_after", CertField::NotAfter),
        ("status", CertField::Status),
        ("error", CertField::Error),
    ];

    /// The field of a config name.
    pub fn from_name(name: &str) -> Option<CertField> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The config name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }
}

/// Validated identity-header settings of one hostname. The default sends
/// the CONTRACT section 4 headers under their own names and nothing else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityHeaders {
    /// Contract header (lowercase) → the name to send instead, or `None`
    /// to not send it.
    pub rename: HashMap<&'static str, Option<HeaderName>>,
    /// Certificate fields sent under names of the hostname's choice, in
    /// config order.
    pub map: Vec<(CertField, HeaderName)>,
}

/// Header names a hostname may not choose: framing, routing and the
/// headers the gateway sets itself.
const RESERVED: [&str; 16] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "x-forwarded-for",
    "x-forwarded-proto",
    "forwarded",
    "cookie",
];

impl IdentityHeaders {
    /// Validates the raw `headers` table and `map` entries, appending every
    /// problem to `p` (prefixed with `at`).
    pub fn parse(
        at: &str,
        headers: &[(String, String)],
        map: &[(String, String)],
        p: &mut Vec<String>,
    ) -> IdentityHeaders {
        let mut out = IdentityHeaders::default();
        // Every name sent, to refuse two sources for one header.
        let mut sent: HashMap<HeaderName, String> = HashMap::new();
        for (from, to) in headers {
            let from_l = from.to_ascii_lowercase();
            let Some(owned) = client_auth::headers::OWNED_HEADERS
                .iter()
                .find(|h| **h == from_l)
            else {
                p.push(format!(
                    "{at}: mtls.headers: {from:?} is not one of the identity headers ({})",
                    client_auth::headers::OWNED_HEADERS.join(", ")
                ));
                continue;
            };
            if to.is_empty() {
                out.rename.insert(owned, None);
                continue;
            }
            if let Some(h) = custom(at, &mut sent, format!("mtls.headers.{from}"), to, p) {
                out.rename.insert(owned, Some(h));
            }
        }
        // Contract headers keep their names unless renamed; a mapped or
        // renamed header may not take one of those names.
        for owned in client_auth::headers::OWNED_HEADERS {
            if !out.rename.contains_key(owned) {
                let h = HeaderName::from_static(owned);
                if let Some(other) = sent.get(&h) {
                    p.push(format!(
                        "{at}: {other}: {owned:?} is already the name of an identity header (rename that one first)"
                    ));
                }
                sent.insert(h, format!("the identity header {owned}"));
            }
        }
        for (i, (field, header)) in map.iter().enumerate() {
            let what = format!("mtls.map[{i}]");
            let f = CertField::from_name(field);
            if f.is_none() {
                p.push(format!(
                    "{at}: {what}: field {field:?} is not one of {}",
                    CertField::ALL.map(|(n, _)| n).join(", ")
                ));
            }
            let h = custom(at, &mut sent, what, header, p);
            if let (Some(f), Some(h)) = (f, h) {
                out.map.push((f, h));
            }
        }
        out
    }

    /// Settings kept as maps (the control-plane store's shape): `rename`
    /// from identity header to new name (`""`: not sent), `map` from header
    /// name to certificate field. Every problem is listed.
    pub fn from_settings<'a>(
        at: &str,
        rename: impl IntoIterator<Item = (&'a String, &'a String)>,
        map: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<IdentityHeaders, Vec<String>> {
        let headers: Vec<(String, String)> = rename
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let fields: Vec<(String, String)> = map
            .into_iter()
            .map(|(header, field)| (field.clone(), header.clone()))
            .collect();
        let mut p = Vec::new();
        let out = IdentityHeaders::parse(at, &headers, &fields, &mut p);
        if p.is_empty() {
            Ok(out)
        } else {
            Err(p)
        }
    }

    /// Names that are removed from every incoming request on top of
    /// `OWNED_HEADERS`: the renamed and mapped ones.
    pub fn custom_names(&self) -> Vec<HeaderName> {
        let mut v: Vec<HeaderName> = self.rename.values().flatten().cloned().collect();
        v.extend(self.map.iter().map(|(_, h)| h.clone()));
        v
    }

    /// The headers for a verdict and the chain it was given for.
    pub fn headers(
        &self,
        verdict: &Verdict,
        chain: &[CertificateDer<'_>],
    ) -> Vec<(HeaderName, HeaderValue)> {
        let facts = chain.first().and_then(|l| CertFacts::from_der(l).ok());
        let mut out: Vec<(HeaderName, HeaderValue)> =
            client_auth::headers::identity_headers(verdict, facts.as_ref(), chain)
                .into_iter()
                .filter_map(|(n, v)| {
                    let name = match self.rename.get(n) {
                        None => HeaderName::from_static(n),
                        Some(None) => return None,
                        Some(Some(h)) => h.clone(),
                    };
                    Some((name, HeaderValue::from_str(&v).ok()?))
                })
                .collect();
        for (field, name) in &self.map {
            let values = field_values(*field, verdict, facts.as_ref(), chain.first());
            if values.is_empty() {
                continue;
            }
            let joined = values
                .iter()
                .map(|v| header_text(v))
                .collect::<Vec<_>>()
                .join(",");
            if let Ok(v) = HeaderValue::from_str(&joined) {
                out.push((name.clone(), v));
            }
        }
        out
    }
}

/// A header name a hostname chose for `what`: valid, not reserved, not
/// already sent by something else (recorded in `sent`).
fn custom(
    at: &str,
    sent: &mut HashMap<HeaderName, String>,
    what: String,
    name: &str,
    p: &mut Vec<String>,
) -> Option<HeaderName> {
    let Ok(h) = HeaderName::from_bytes(name.as_bytes()) else {
        p.push(format!("{at}: {what}: {name:?} is not a valid header name"));
        return None;
    };
    if RESERVED.contains(&h.as_str()) {
        p.push(format!(
            "{at}: {what}: {name:?} is a header the gateway manages itself"
        ));
        return None;
    }
    if let Some(other) = sent.get(&h) {
        p.push(format!(
            "{at}: {what}: header {name:?} is already sent by {other}"
        ));
        return None;
    }
    sent.insert(h.clone(), what);
    Some(h)
}

/// A value as header text: printable ASCII kept, except `%` and `,` (the
/// list separator); those and every other byte become `%XX`, so a value
/// can neither end the header nor add a list item.
fn header_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' && b != b',' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn field_values(
    field: CertField,
    verdict: &Verdict,
    facts: Option<&CertFacts>,
    leaf: Option<&CertificateDer<'_>>,
) -> Vec<String> {
    match field {
        CertField::Status => return vec![verdict.status().to_owned()],
        CertField::Error => {
            return verdict
                .reason()
                .map(|r| r.as_str().to_owned())
                .into_iter()
                .collect()
        }
        _ => {}
    }
    let Some(f) = facts else {
        return Vec::new();
    };
    let sans =
        |pick: fn(&SubjectAltName) -> Option<String>| f.sans.iter().filter_map(pick).collect();
    match field {
        CertField::Subject => vec![f.subject.clone()],
        CertField::Issuer => vec![f.issuer.clone()],
        CertField::SubjectCn | CertField::SubjectO | CertField::SubjectOu | CertField::IssuerCn => {
            leaf.map_or_else(Vec::new, |l| name_attrs(field, l))
        }
        CertField::SanDns => sans(|s| match s {
            SubjectAltName::Dns(d) => Some(d.clone()),
            _ => None,
        }),
        CertField::SanUri => sans(|s| match s {
            SubjectAltName::Uri(d) => Some(d.clone()),
            _ => None,
        }),
        CertField::SanEmail => sans(|s| match s {
            SubjectAltName::Email(d) => Some(d.clone()),
            _ => None,
        }),
        CertField::SanIp => sans(|s| match s {
            SubjectAltName::Ip(d) => Some(d.to_string()),
            _ => None,
        }),
        CertField::SpiffeId => f.spiffe_id().map(str::to_owned).into_iter().collect(),
        CertField::Serial => vec![f.serial.clone()],
        CertField::Ski => f.ski.clone().into_iter().collect(),
        CertField::FingerprintSha256 => vec![f.sha256.clone()],
        CertField::NotBefore => vec![f.not_before.clone()],
        CertField::NotAfter => vec![f.not_after.clone()],
        CertField::Status | CertField::Error => Vec::new(),
    }
}

/// The string values of one attribute of the subject or issuer name.
fn name_attrs(field: CertField, leaf: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::oid_registry as oids;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return Vec::new();
    };
    let (name, oid) = match field {
        CertField::SubjectCn => (cert.subject(), oids::OID_X509_COMMON_NAME),
        CertField::SubjectO => (cert.subject(), oids::OID_X509_ORGANIZATION_NAME),
        CertField::SubjectOu => (cert.subject(), oids::OID_X509_ORGANIZATIONAL_UNIT),
        _ => (cert.issuer(), oids::OID_X509_COMMON_NAME),
    };
    name.iter_attributes()
        .filter(|a| *a.attr_type() == oid)
        .filter_map(|a| a.as_str().ok().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn parses_renames_and_maps() {
        let mut p = Vec::new();
        let h = IdentityHeaders::parse(
            "h",
            &[
                s("Client-Cert-Subject", "X-SSL-Client-DN"),
                s("x-forwarded-client-cert", ""),
            ],
            &[s("spiffe_id", "X-Spiffe-Id"), s("subject.cn", "X-Service")],
            &mut p,
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            h.rename.get("client-cert-subject"),
            Some(&Some(HeaderName::from_static("x-ssl-client-dn")))
        );
        assert_eq!(h.rename.get("x-forwarded-client-cert"), Some(&None));
        assert_eq!(h.map.len(), 2);
        let names: Vec<String> = h.custom_names().iter().map(|n| n.to_string()).collect();
        for n in ["x-ssl-client-dn", "x-spiffe-id", "x-service"] {
            assert!(names.contains(&n.to_owned()), "{names:?}");
        }
    }

    #[test]
    fn lists_every_problem() {
        let mut p = Vec::new();
        IdentityHeaders::parse(
            "h",
            &[
                s("Client-Cert-Nope", "X-A"),
                s("Client-Cert-Serial", "bad name"),
            ],
            &[
                s("subject.xx", "X-B"),
                s("serial", "Host"),
                s("ski", "client-cert-issuer"),
                s("subject.cn", "X-C"),
                s("subject.o", "x-c"),
            ],
            &mut p,
        );
        let all = p.join("\n");
        for needle in [
            "\"Client-Cert-Nope\" is not one of",
            "\"bad name\" is not a valid header name",
            "field \"subject.xx\"",
            "\"Host\" is a header the gateway manages",
            "\"client-cert-issuer\" is already sent by the identity header client-cert-issuer",
            "\"x-c\" is already sent by mtls.map[3]",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
        assert_eq!(p.len(), 6, "{all}");
    }

    #[test]
    fn header_text_cannot_split_or_add_items() {
        assert_eq!(header_text("spiffe://a/b"), "spiffe://a/b");
        assert_eq!(header_text("a,b%\r\nc é"), "a%2Cb%25%0D%0Ac %C3%A9");
    }
}
