//! PKCS#10 certificate requests: parse, verify the self-signature, and turn
//! the parts we use into rcgen values.

use crate::{PkiError, Result};
use rcgen::{DistinguishedName, DnType, DnValue, SanType};
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;
use x509_parser::x509::X509Name;

/// A verified certificate request.
#[derive(Debug)]
pub struct ParsedCsr {
    /// DER of the whole request.
    pub der: Vec<u8>,
    /// Subject as rcgen will encode it.
    pub subject: DistinguishedName,
    /// Subject as text (RFC 4514 style), for logs and the issuance record.
    pub subject_text: String,
    /// The requester's public key.
    pub public_key: RequestedKey,
    /// SANs requested in the extensionRequest attribute.
    pub sans: Vec<SanType>,
    /// True when the request carries basicConstraints cA=TRUE.
    pub requests_ca: bool,
    /// pathLenConstraint of the requested basicConstraints.
    pub requested_path_len: Option<u8>,
}

/// Largest CSR we look at; anything bigger is refused before parsing.
pub const MAX_CSR_BYTES: usize = 64 * 1024;

/// Parses a CSR given as PEM (`CERTIFICATE REQUEST` / `NEW CERTIFICATE REQUEST`)
/// or DER, and verifies its signature.
pub fn parse_csr(input: &[u8]) -> Result<ParsedCsr> {
    if input.len() > MAX_CSR_BYTES {
        return Err(PkiError::BadCsr(format!(
            "request is {} bytes; the limit is {MAX_CSR_BYTES}",
            input.len()
        )));
    }
    let trimmed = input.trim_ascii_start();
    let der = if trimmed.starts_with(b"-----") {
        let block = pem::parse(trimmed).map_err(|e| PkiError::BadCsr(format!("bad PEM: {e}")))?;
        match block.tag() {
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => block.into_contents(),
            other => {
                return Err(PkiError::BadCsr(format!(
                    "PEM block is {other:?}, not a CERTIFICATE REQUEST"
                )))
            }
        }
    } else {
        input.to_vec()
    };
    let (rest, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
        .map_err(|e| PkiError::BadCsr(format!("not a PKCS#10 request: {e}")))?;
    if !rest.is_empty() {
        return Err(PkiError::BadCsr("trailing data after the request".into()));
    }
    // Before the signature: a key outside the set would otherwise surface
    // as a misleading "signature does not verify" (RSA-1024, P-521).
    let alg = check_public_key(&csr.certification_request_info.subject_pki)?;
    csr.verify_signature().map_err(|_| PkiError::CsrSignature)?;
    let info = &csr.certification_request_info;
    let subject = to_rcgen_name(&info.subject)?;
    let subject_text = info.subject.to_string();
    let public_key = RequestedKey {
        alg,
        raw: info.subject_pki.subject_public_key.data.to_vec(),
    };
    let mut sans = Vec::new();
    let mut requests_ca = false;
    let mut requested_path_len = None;
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            match ext {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for n in &san.general_names {
                        sans.push(general_name_to_san(n)?);
                    }
                }
                ParsedExtension::BasicConstraints(bc) => {
                    requests_ca = bc.ca;
                    requested_path_len = bc
                        .path_len_constraint
                        .map(|p| u8::try_from(p).unwrap_or(u8::MAX));
                }
                _ => {}
            }
        }
    }
    Ok(ParsedCsr {
        der,
        subject,
        subject_text,
        public_key,
        sans,
        requests_ca,
        requested_path_len,
    })
}

/// The public key of a request: its algorithm (as rcgen names key types)
/// and the subjectPublicKey bits, taken from the already-parsed SPKI
/// rather than parsed a second time.
#[derive(Debug, Clone)]
pub struct RequestedKey {
    alg: &'static rcgen::SignatureAlgorithm,
    raw: Vec<u8>,
}

impl rcgen::PublicKeyData for RequestedKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

/// Refuses a requested public key outside the set the CA issues keys for
/// (the set [`crate::key::KeyRequest`] allows): ECDSA P-256 and P-384,
/// Ed25519, RSA with 2048, 3072 or 4096 bits.
fn check_public_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<&'static rcgen::SignatureAlgorithm> {
    let alg = &spki.algorithm.algorithm;
    let refuse = |m: String| Err(PkiError::BadKeyRequest(format!("the request's {m}")));
    if *alg == OID_PKCS1_RSAENCRYPTION {
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err(PkiError::BadCsr("malformed RSA public key".into()));
        };
        let m = rsa.modulus;
        let m = &m[m.iter().position(|&b| b != 0).unwrap_or(m.len())..];
        let bits = match m.first() {
            Some(top) => m.len() * 8 - top.leading_zeros() as usize,
            None => 0,
        };
        match bits {
            2048 | 3072 | 4096 => Ok(&rcgen::PKCS_RSA_SHA256),
            b => refuse(format!(
                "rsa key of {b} bits is not allowed (use 2048, 3072 or 4096)"
            )),
        }
    } else if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        match curve {
            Some(c) if c == OID_EC_P256 => Ok(&rcgen::PKCS_ECDSA_P256_SHA256),
            Some(c) if c == OID_NIST_EC_P384 => Ok(&rcgen::PKCS_ECDSA_P384_SHA384),
            Some(c) if c == OID_NIST_EC_P521 => {
                refuse("ecdsa key on curve P-521 is not allowed (use P-256 or P-384)".into())
            }
            Some(c) => refuse(format!(
                "ecdsa key on curve {} is not allowed (use P-256 or P-384)",
                c.to_id_string()
            )),
            None => refuse("ecdsa key names no named curve (use P-256 or P-384)".into()),
        }
    } else if *alg == OID_SIG_ED25519 {
        Ok(&rcgen::PKCS_ED25519)
    } else {
        refuse(format!(
            "key algorithm {} is not allowed (use ecdsa, rsa or ed25519)",
            alg.to_id_string()
        ))
    }
}

fn general_name_to_san(n: &GeneralName<'_>) -> Result<SanType> {
    let bad = |what: &str| PkiError::BadCsr(format!("invalid {what} in subjectAltName"));
    Ok(match n {
        GeneralName::DNSName(s) => SanType::DnsName((*s).try_into().map_err(|_| bad("DNS name"))?),
        GeneralName::RFC822Name(s) => {
            SanType::Rfc822Name((*s).try_into().map_err(|_| bad("email"))?)
        }
        GeneralName::URI(s) => SanType::URI((*s).try_into().map_err(|_| bad("URI"))?),
        GeneralName::IPAddress(b) => match b.len() {
            4 => {
                let a: [u8; 4] = (*b).try_into().map_err(|_| bad("IP address"))?;
                SanType::IpAddress(a.into())
            }
            16 => {
                let a: [u8; 16] = (*b).try_into().map_err(|_| bad("IP address"))?;
                SanType::IpAddress(a.into())
            }
            _ => return Err(bad("IP address")),
        },
        _ => {
            return Err(PkiError::BadCsr(
                "unsupported subjectAltName type (only DNS, IP, email, URI)".into(),
            ))
        }
    })
}

/// Converts a parsed X.509 name into rcgen's form. Multi-valued RDNs and
/// repeated attribute types cannot be represented by rcgen and are refused
/// rather than silently changed.
pub fn to_rcgen_name(name: &X509Name<'_>) -> Result<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    let bad = |m: &str| PkiError::BadRequest(format!("subject: {m}"));
    for rdn in name.iter() {
        let attrs: Vec<_> = rdn.iter().collect();
        let [attr] = attrs.as_slice() else {
            return Err(bad("empty or multi-valued RDNs are not supported"));
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| bad("attribute OID too large"))?
            .collect();
        let ty = DnType::from_oid(&oid);
        if dn.get(&ty).is_some() {
            return Err(bad("repeated attribute types are not supported"));
        }
        let v = attr.attr_value();
        let text = || std::str::from_utf8(v.data).map_err(|_| bad("attribute is not valid text"));
        let value = match v.header.tag() {
            Tag::PrintableString => DnValue::PrintableString(
                text()?
                    .try_into()
                    .map_err(|_| bad("invalid PrintableString"))?,
            ),
            Tag::Utf8String => DnValue::Utf8String(text()?.to_string()),
            Tag::Ia5String => {
                DnValue::Ia5String(text()?.try_into().map_err(|_| bad("invalid IA5String"))?)
            }
            Tag::T61String => DnValue::TeletexString(
                text()?
                    .try_into()
                    .map_err(|_| bad("invalid TeletexString"))?,
            ),
            Tag::BmpString => DnValue::BmpString(
                rcgen::string::BmpString::from_utf16be(v.data.to_vec())
                    .map_err(|_| bad("invalid BMPString"))?,
            ),
            _ => return Err(bad("unsupported attribute string type")),
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

/// Text form of a SAN for records and `info`.
pub fn san_to_string(s: &SanType) -> String {
    match s {
        SanType::DnsName(n) => n.as_str().to_string(),
        SanType::Rfc822Name(n) => n.as_str().to_string(),
        SanType::URI(n) => n.as_str().to_string(),
        SanType::IpAddress(ip) => ip.to_string(),
        other => format!("{other:?}"),
    }
}
