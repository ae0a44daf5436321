//! Facts about the leaf certificate, for headers and logs.

use std::fmt::Write as _;
use std::net::IpAddr;

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::x509::X509Name;

use crate::verdict::rfc3339;
use crate::Error;

/// A subject alternative name of the leaf.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
#[non_exhaustive]
pub enum SubjectAltName {
    /// dNSName.
    Dns(String),
    /// iPAddress.
    Ip(IpAddr),
    /// rfc822Name.
    Email(String),
    /// uniformResourceIdentifier (SPIFFE IDs are `spiffe://` URIs).
    Uri(String),
}

/// What the origin is told about the leaf. Strings are ASCII and safe as
/// HTTP header values (see [`CertFacts::subject`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CertFacts {
    /// Subject Key Identifier from the extension, lowercase hex. `None`
    /// when the certificate has no SKI extension: we do not derive one from
    /// the key, since the origin could not tell a derived value from the
    /// CA's, and the header is then left out.
    pub ski: Option<String>,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
    /// Serial number, lowercase hex of the DER INTEGER content.
    pub serial: String,
    /// RFC 4514 subject. Every character outside printable ASCII is written
    /// as `\XX` escapes of its UTF-8 bytes (allowed by RFC 4514).
    pub subject: String,
    /// RFC 4514 issuer, same escaping.
    pub issuer: String,
    /// Subject alternative names in certificate order. Text values are kept
    /// as in the certificate (they may contain any byte the CA allowed).
    pub sans: Vec<SubjectAltName>,
    /// notBefore, RFC 3339 UTC.
    pub not_before: String,
    /// notAfter, RFC 3339 UTC.
    pub not_after: String,
}

impl CertFacts {
    /// Extract the facts of one certificate (DER).
    pub fn from_der(der: &[u8]) -> Result<CertFacts, Error> {
        let (_, c) = x509_parser::parse_x509_certificate(der).map_err(|e| Error::Decode {
            what: "certificate",
            reason: e.to_string(),
        })?;
        let mut ski = None;
        let mut sans = Vec::new();
        for e in c.extensions() {
            match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(hex::encode(k.0)),
                ParsedExtension::SubjectAlternativeName(s) => {
                    for n in &s.general_names {
                        match n {
                            GeneralName::DNSName(d) => sans.push(SubjectAltName::Dns((*d).into())),
                            GeneralName::RFC822Name(m) => {
                                sans.push(SubjectAltName::Email((*m).into()))
                            }
                            GeneralName::URI(u) => sans.push(SubjectAltName::Uri((*u).into())),
                            GeneralName::IPAddress(b) => {
                                if let Ok(a) = <[u8; 4]>::try_from(*b) {
                                    sans.push(SubjectAltName::Ip(IpAddr::from(a)));
                                } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                                    sans.push(SubjectAltName::Ip(IpAddr::from(a)));
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        let ts = |t: i64| rfc3339(u64::try_from(t).unwrap_or(0));
        Ok(CertFacts {
            ski,
            sha256: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der)),
            serial: hex::encode(c.raw_serial()),
            subject: rfc4514(c.subject()),
            issuer: rfc4514(c.issuer()),
            sans,
            not_before: ts(c.validity().not_before.timestamp()),
            not_after: ts(c.validity().not_after.timestamp()),
        })
    }

    /// The first `spiffe://` URI SAN, if any.
    pub fn spiffe_id(&self) -> Option<&str> {
        self.sans.iter().find_map(|s| match s {
            SubjectAltName::Uri(u) if u.starts_with("spiffe://") => Some(u.as_str()),
            _ => None,
        })
    }

    /// DNS SANs.
    pub fn dns_names(&self) -> impl Iterator<Item = &str> {
        self.sans.iter().filter_map(|s| match s {
            SubjectAltName::Dns(d) => Some(d.as_str()),
            _ => None,
        })
    }

    /// URI SANs.
    pub fn uris(&self) -> impl Iterator<Item = &str> {
        self.sans.iter().filter_map(|s| match s {
            SubjectAltName::Uri(d) => Some(d.as_str()),
            _ => None,
        })
    }
}

fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 4514 string of a name: RDNs last-to-first, `+` inside an RDN.
pub(crate) fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = atv.attr_type().to_id_string();
            out.push_str(short_name(&oid).unwrap_or(&oid));
            out.push('=');
            match atv.as_str() {
                Ok(s) => escape_value(s, &mut out),
                Err(_) => {
                    // Not a string type: RFC 4514 "#" form, hex of the
                    // value's DER encoding.
                    use x509_parser::der_parser::asn1_rs::ToDer as _;
                    out.push('#');
                    match atv.attr_value().to_der_vec() {
                        Ok(der) => out.push_str(&hex::encode(der)),
                        Err(_) => out.push_str(&hex::encode(atv.attr_value().data)),
                    }
                }
            }
        }
    }
    out
}

fn escape_value(s: &str, out: &mut String) {
    let n = s.chars().count();
    for (i, ch) in s.chars().enumerate() {
        let special = matches!(ch, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (ch == '#' || ch == ' '))
            || (i + 1 == n && ch == ' ');
        if special {
            out.push('\\');
            out.push(ch);
        } else if ch.is_ascii_graphic() || ch == ' ' {
            out.push(ch);
        } else {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\{b:02x}");
            }
        }
    }
}
