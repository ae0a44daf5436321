//! JSON facts of a certificate or CSR (`portcullis cert info`, CFSSL's `certinfo`).

use crate::{PkiError, Result};
use serde::Serialize;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

/// Subject or issuer in CFSSL's shape plus the RFC 4514 string.
#[derive(Debug, Clone, Serialize, Default)]
pub struct NameInfo {
    /// CN.
    pub common_name: String,
    /// C.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub country: Vec<String>,
    /// ST.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub province: Vec<String>,
    /// L.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locality: Vec<String>,
    /// O.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub organization: Vec<String>,
    /// OU.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub organizational_unit: Vec<String>,
    /// RFC 4514 form (most specific attribute first).
    pub dn: String,
}

/// Facts of a certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    /// Subject.
    pub subject: NameInfo,
    /// Issuer.
    pub issuer: NameInfo,
    /// Serial, decimal (CFSSL's form).
    pub serial_number: String,
    /// Serial, lowercase hex.
    pub serial_hex: String,
    /// SANs: DNS names, IPs, emails, URIs.
    pub sans: Vec<String>,
    /// NotBefore, RFC 3339 UTC.
    pub not_before: String,
    /// NotAfter, RFC 3339 UTC.
    pub not_after: String,
    /// Signature algorithm.
    pub sigalg: String,
    /// AKI, lowercase hex (empty if absent).
    pub authority_key_id: String,
    /// SKI, lowercase hex (empty if absent).
    pub subject_key_id: String,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256_fingerprint: String,
    /// Key usages.
    pub key_usages: Vec<String>,
    /// Extended key usages.
    pub ext_key_usages: Vec<String>,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// Path length constraint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_len: Option<u32>,
    /// The certificate PEM.
    pub pem: String,
}

/// Facts of a CSR.
#[derive(Debug, Clone, Serialize)]
pub struct CsrInfo {
    /// Subject.
    pub subject: NameInfo,
    /// Requested SANs.
    pub sans: Vec<String>,
    /// Signature algorithm.
    pub sigalg: String,
    /// Whether the self-signature verifies.
    pub signature_valid: bool,
}

fn esc_rfc4514(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c)
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == n => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c if c.is_control() => {
                let mut b = [0u8; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    out.push_str(&format!("\\{byte:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn attr_short(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "SERIALNUMBER",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// RFC 4514 string of a name: RDNs in reverse order, `,` between them,
/// `+` inside multi-valued RDNs, special characters escaped, values that
/// are not strings as `#hex`.
pub fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|a| {
                    let oid = a.attr_type().to_id_string();
                    let key = attr_short(&oid).map(str::to_string).unwrap_or(oid);
                    match a.as_str() {
                        Ok(s) => format!("{key}={}", esc_rfc4514(s)),
                        Err(_) => format!("{key}=#{}", hex::encode(a.attr_value().data)),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn name_info(name: &X509Name<'_>) -> NameInfo {
    let vals = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        it.filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect::<Vec<_>>()
    };
    NameInfo {
        common_name: vals(&mut name.iter_common_name())
            .into_iter()
            .next()
            .unwrap_or_default(),
        country: vals(&mut name.iter_country()),
        province: vals(&mut name.iter_state_or_province()),
        locality: vals(&mut name.iter_locality()),
        organization: vals(&mut name.iter_organization()),
        organizational_unit: vals(&mut name.iter_organizational_unit()),
        dn: rfc4514(name),
    }
}

fn general_name(g: &GeneralName<'_>) -> Option<String> {
    Some(match g {
        GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => s.to_string(),
        GeneralName::IPAddress(b) => match b.len() {
            4 => std::net::IpAddr::from(<[u8; 4]>::try_from(*b).ok()?).to_string(),
            16 => std::net::IpAddr::from(<[u8; 16]>::try_from(*b).ok()?).to_string(),
            _ => return None,
        },
        _ => return None,
    })
}

fn sigalg_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.4.3.2" => "ECDSAWithSHA256",
        "1.2.840.10045.4.3.3" => "ECDSAWithSHA384",
        "1.2.840.10045.4.3.4" => "ECDSAWithSHA512",
        "1.3.101.112" => "Ed25519",
        "1.2.840.113549.1.1.11" => "SHA256WithRSA",
        "1.2.840.113549.1.1.12" => "SHA384WithRSA",
        "1.2.840.113549.1.1.13" => "SHA512WithRSA",
        "1.2.840.113549.1.1.5" => "SHA1WithRSA",
        "1.2.840.113549.1.1.10" => "RSAPSS",
        other => return other.to_string(),
    }
    .to_string()
}

fn rfc3339(t: x509_parser::time::ASN1Time) -> String {
    t.to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Facts of a certificate (PEM or DER).
pub fn cert_info(input: &[u8]) -> Result<CertInfo> {
    let der = crate::issue::cert_der_from(input)?;
    let (_, x) = X509Certificate::from_der(&der)
        .map_err(|e| PkiError::BadCertificate(format!("cannot parse certificate: {e}")))?;
    let mut info = CertInfo {
        subject: name_info(x.subject()),
        issuer: name_info(x.issuer()),
        serial_number: x.serial.to_str_radix(10),
        serial_hex: crate::serial::Serial::from_bytes(x.raw_serial()).to_hex(),
        sans: vec![],
        not_before: rfc3339(x.validity().not_before),
        not_after: rfc3339(x.validity().not_after),
        sigalg: sigalg_name(&x.signature_algorithm.algorithm.to_id_string()),
        authority_key_id: String::new(),
        subject_key_id: String::new(),
        sha256_fingerprint: hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &der,
        )),
        key_usages: vec![],
        ext_key_usages: vec![],
        is_ca: false,
        path_len: None,
        pem: crate::issue::to_pem("CERTIFICATE", &der),
    };
    for ext in x.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(s) => {
                info.sans = s.general_names.iter().filter_map(general_name).collect()
            }
            ParsedExtension::SubjectKeyIdentifier(k) => info.subject_key_id = hex::encode(k.0),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                if let Some(k) = &a.key_identifier {
                    info.authority_key_id = hex::encode(k.0)
                }
            }
            ParsedExtension::BasicConstraints(b) => {
                info.is_ca = b.ca;
                info.path_len = b.path_len_constraint;
            }
            ParsedExtension::KeyUsage(k) => {
                let flags = [
                    (k.digital_signature(), "digital signature"),
                    (k.non_repudiation(), "content commitment"),
                    (k.key_encipherment(), "key encipherment"),
                    (k.data_encipherment(), "data encipherment"),
                    (k.key_agreement(), "key agreement"),
                    (k.key_cert_sign(), "cert sign"),
                    (k.crl_sign(), "crl sign"),
                    (k.encipher_only(), "encipher only"),
                    (k.decipher_only(), "decipher only"),
                ];
                info.key_usages = flags
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| n.to_string())
                    .collect();
            }
            ParsedExtension::ExtendedKeyUsage(e) => {
                let mut v = Vec::new();
                for (on, n) in [
                    (e.any, "any"),
                    (e.server_auth, "server auth"),
                    (e.client_auth, "client auth"),
                    (e.code_signing, "code signing"),
                    (e.email_protection, "email protection"),
                    (e.time_stamping, "timestamping"),
                    (e.ocsp_signing, "ocsp signing"),
                ] {
                    if on {
                        v.push(n.to_string())
                    }
                }
                v.extend(e.other.iter().map(|o| o.to_id_string()));
                info.ext_key_usages = v;
            }
            _ => {}
        }
    }
    Ok(info)
}

/// Facts of a CSR (PEM or DER); a bad signature is reported, not an error.
pub fn csr_info(input: &[u8]) -> Result<CsrInfo> {
    let t = input.trim_ascii_start();
    let der = if t.starts_with(b"-----") {
        pem::parse(t)
            .map_err(|e| PkiError::BadCsr(format!("bad PEM: {e}")))?
            .into_contents()
    } else {
        input.to_vec()
    };
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
        .map_err(|e| PkiError::BadCsr(format!("not a PKCS#10 request: {e}")))?;
    let mut sans = vec![];
    if let Some(exts) = csr.requested_extensions() {
        for e in exts {
            if let ParsedExtension::SubjectAlternativeName(s) = e {
                sans = s.general_names.iter().filter_map(general_name).collect();
            }
        }
    }
    Ok(CsrInfo {
        subject: name_info(&csr.certification_request_info.subject),
        sans,
        sigalg: sigalg_name(&csr.signature_algorithm.algorithm.to_id_string()),
        signature_valid: csr.verify_signature().is_ok(),
    })
}
