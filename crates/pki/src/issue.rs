//! Issuance: a CA (certificate + signing key) signs requests under a profile.

use crate::config::{Profile, SigningPolicy};
use crate::csr::{parse_csr, san_to_string, to_rcgen_name, ParsedCsr};
use crate::csr_spec::{hosts_to_sans, CsrSpec};
use crate::duration::parse_go_duration;
use crate::key::PrivateKey;
use crate::serial::Serial;
use crate::{PkiError, Result};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyUsagePurpose, SigningKey};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A request to sign a CSR (the body of CFSSL's `sign`).
#[derive(Debug, Clone, Default)]
pub struct SignRequest {
    /// The PKCS#10 request, PEM or DER.
    pub csr: Vec<u8>,
    /// Replaces the CSR's SANs when present (CFSSL's `hosts`).
    pub hosts: Option<Vec<String>>,
    /// Profile name; empty means `default`.
    pub profile: String,
    /// Replaces the CSR's subject when present (CFSSL's `subject`).
    pub subject: Option<CsrSpec>,
}

/// A certificate that was just made, with what the issuance log records.
#[derive(Debug, Clone)]
pub struct Issued {
    /// DER of the certificate.
    pub der: Vec<u8>,
    /// PEM of the certificate.
    pub pem: String,
    /// The serial number.
    pub serial: Serial,
    /// The issuing CA's key identifier (AKI of the certificate), lowercase hex.
    pub aki_hex: String,
    /// Validity start.
    pub not_before: OffsetDateTime,
    /// Validity end.
    pub not_after: OffsetDateTime,
    /// SANs as text.
    pub sans: Vec<String>,
    /// Subject as text.
    pub subject: String,
    /// Profile name used.
    pub profile: String,
}

/// A certificate authority: its certificate and a key that can sign.
pub struct CertificateAuthority<K: SigningKey> {
    cert_der: Vec<u8>,
    cert_pem: String,
    issuer: rcgen::Issuer<'static, K>,
    aki_hex: String,
    path_len: Option<u8>,
    not_after: OffsetDateTime,
    subject: String,
}

impl<K: SigningKey> std::fmt::Debug for CertificateAuthority<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("subject", &self.subject)
            .field("aki", &self.aki_hex)
            .finish_non_exhaustive()
    }
}

/// Reads the first certificate of a PEM or DER input.
pub fn cert_der_from(input: &[u8]) -> Result<Vec<u8>> {
    let t = input.trim_ascii_start();
    if t.starts_with(b"-----") {
        let blocks =
            pem::parse_many(t).map_err(|e| PkiError::BadCertificate(format!("bad PEM: {e}")))?;
        blocks
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .map(|b| b.into_contents())
            .ok_or_else(|| PkiError::BadCertificate("no CERTIFICATE block in PEM".into()))
    } else {
        Ok(input.to_vec())
    }
}

/// PEM-encodes DER with the given label.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

fn to_time(t: x509_parser::time::ASN1Time) -> OffsetDateTime {
    t.to_datetime()
}

impl<K: SigningKey> CertificateAuthority<K> {
    /// Loads a CA from its certificate (PEM or DER) and signing key. Refuses
    /// a certificate that is not a CA, a key that does not match it, and a
    /// subject rcgen could not reproduce byte for byte.
    pub fn new(cert: &[u8], key: K) -> Result<Self> {
        let der = cert_der_from(cert)?;
        let (_, x) = X509Certificate::from_der(&der)
            .map_err(|e| PkiError::BadCertificate(format!("cannot parse CA certificate: {e}")))?;
        let bc = x
            .basic_constraints()
            .map_err(|e| PkiError::BadCertificate(e.to_string()))?
            .map(|b| b.value.clone());
        let Some(bc) = bc.filter(|b| b.ca) else {
            return Err(PkiError::BadCertificate(
                "the certificate is not a CA (basicConstraints cA is not set)".into(),
            ));
        };
        if let Ok(Some(ku)) = x.key_usage() {
            if !ku.value.key_cert_sign() {
                return Err(PkiError::BadCertificate(
                    "the CA certificate's key usage does not allow certificate signing".into(),
                ));
            }
        }
        if key.subject_public_key_info() != x.public_key().raw {
            return Err(PkiError::KeyMismatch);
        }
        // Refuse names rcgen would re-encode differently (also guards rcgen's
        // own panic on an empty RDN).
        to_rcgen_name(x.subject())?;
        let ski = x
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(k.0.to_vec())
                }
                _ => None,
            });
        let aki = match ski {
            Some(s) => s,
            None => {
                let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, x.public_key().raw);
                d.as_ref()[..20].to_vec()
            }
        };
        let path_len = bc
            .path_len_constraint
            .map(|p| u8::try_from(p).unwrap_or(u8::MAX));
        let not_after = to_time(x.validity().not_after);
        let subject = x.subject().to_string();
        let issuer = rcgen::Issuer::from_ca_cert_der(&der.as_slice().into(), key)
            .map_err(|e| PkiError::BadCertificate(format!("unusable CA certificate: {e}")))?;
        Ok(CertificateAuthority {
            cert_pem: to_pem("CERTIFICATE", &der),
            cert_der: der,
            issuer,
            aki_hex: hex::encode(aki),
            path_len,
            not_after,
            subject,
        })
    }

    /// The CA certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }
    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }
    /// The key identifier issued certificates carry as AKI (lowercase hex).
    pub fn aki_hex(&self) -> &str {
        &self.aki_hex
    }
    /// The CA's subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// The signing key.
    pub fn key(&self) -> &K {
        self.issuer.key()
    }

    /// Signs a request under the named profile at time `now`. Checks, in
    /// order: profile exists, CSR parses and its signature verifies, CA
    /// status and path length are allowed, every name passes `name_whitelist`.
    pub fn sign(
        &self,
        policy: &SigningPolicy,
        req: &SignRequest,
        now: OffsetDateTime,
    ) -> Result<Issued> {
        let profile = policy.profile(&req.profile)?;
        let csr = parse_csr(&req.csr)?;
        self.sign_parsed(profile, &req.profile, csr, req, now)
    }

    fn sign_parsed(
        &self,
        profile: &Profile,
        profile_name: &str,
        csr: ParsedCsr,
        req: &SignRequest,
        now: OffsetDateTime,
    ) -> Result<Issued> {
        let mut params = CertificateParams::default();
        params.distinguished_name = match &req.subject {
            Some(s) if !s.cn.is_empty() || !s.names.is_empty() => s.distinguished_name(),
            _ => csr.subject,
        };
        let subject_text = match &req.subject {
            Some(s) if !s.cn.is_empty() || !s.names.is_empty() => format!("CN={}", s.cn),
            _ => csr.subject_text,
        };
        params.subject_alt_names = match &req.hosts {
            Some(h) if !h.is_empty() => hosts_to_sans(h)?,
            _ => csr.sans,
        };
        params.is_ca = if let Some(cac) = profile.ca {
            // The child's path length: the tightest of profile, request and issuer.
            let issuer_limit = match self.path_len {
                Some(0) => {
                    return Err(PkiError::PathLen(
                        "the issuing CA has pathlen 0 and cannot issue CA certificates".into(),
                    ))
                }
                Some(n) => Some(n - 1),
                None => None,
            };
            let wanted = [cac.max_path_len, csr.requested_path_len, issuer_limit]
                .into_iter()
                .flatten()
                .min();
            IsCa::Ca(match wanted {
                Some(n) => BasicConstraints::Constrained(n),
                None => BasicConstraints::Unconstrained,
            })
        } else if csr.requests_ca {
            return Err(PkiError::CaNotAllowed);
        } else {
            IsCa::ExplicitNoCa
        };
        // Names last, as documented: a CA request to a leaf profile is
        // refused as such, not for its (CA-like) name.
        if let Some(re) = &profile.name_whitelist {
            let cn = params
                .distinguished_name
                .get(&rcgen::DnType::CommonName)
                .map(dn_value_text);
            let names = cn
                .into_iter()
                .chain(params.subject_alt_names.iter().map(san_to_string));
            for n in names {
                if !re.is_match(&n) {
                    return Err(PkiError::NameNotAllowed(n));
                }
            }
        }
        params.key_usages = profile.key_usages.clone();
        if profile.ca.is_some() && !params.key_usages.contains(&KeyUsagePurpose::KeyCertSign) {
            params.key_usages.push(KeyUsagePurpose::KeyCertSign);
        }
        params.extended_key_usages = profile.extended_key_usages.clone();
        params.use_authority_key_identifier_extension = true;
        if let Some(url) = &profile.crl_url {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![url.clone()],
            }];
        }
        // X.509 validity starts at 1950 (UTCTime); rcgen panics on years it
        // cannot encode, so an out-of-range backdate is an error here.
        let not_before = time::Duration::try_from(profile.backdate)
            .ok()
            .and_then(|d| now.checked_sub(d))
            .filter(|t| t.year() >= 1950)
            .ok_or_else(|| {
                PkiError::Generate(format!(
                    "profile {profile_name:?}: a backdate of {}s puts notBefore before 1950",
                    profile.backdate.as_secs()
                ))
            })?;
        // Never outlive the issuer: cap rather than fail (CFSSL would
        // issue a certificate that no verifier accepts past the CA's end).
        let not_after = time::Duration::try_from(profile.expiry)
            .ok()
            .and_then(|d| now.checked_add(d))
            .map_or(self.not_after, |t| t.min(self.not_after));
        params.not_before = not_before;
        params.not_after = not_after;
        let serial = Serial::random();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial.as_bytes()));
        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(|e| PkiError::Generate(e.to_string()))?;
        let der = cert.der().to_vec();
        Ok(Issued {
            pem: to_pem("CERTIFICATE", &der),
            der,
            serial,
            aki_hex: self.aki_hex.clone(),
            not_before: truncate(not_before),
            not_after: truncate(not_after),
            sans: params.subject_alt_names.iter().map(san_to_string).collect(),
            subject: subject_text,
            profile: if profile_name.is_empty() {
                "default".into()
            } else {
                profile_name.to_string()
            },
        })
    }
}

fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn dn_value_text(v: &rcgen::DnValue) -> String {
    match v {
        rcgen::DnValue::Utf8String(s) => s.clone(),
        rcgen::DnValue::PrintableString(s) => s.as_str().to_string(),
        rcgen::DnValue::Ia5String(s) => s.as_str().to_string(),
        rcgen::DnValue::TeletexString(s) => s.as_str().to_string(),
        other => format!("{other:?}"),
    }
}

/// The result of `ca init`: a new self-signed root.
#[derive(Debug)]
pub struct NewRoot {
    /// The root's private key.
    pub key: PrivateKey,
    /// The certificate (PEM).
    pub cert_pem: String,
    /// A CSR for the same key and subject (PEM), as CFSSL writes `ca.csr`.
    pub csr_pem: String,
}

/// Makes a self-signed root CA from a CSR spec (CFSSL's `gencert -initca`).
/// Default lifetime 5 years; `ca.pathlen`/`ca.pathlenzero` as CFSSL reads them.
pub fn init_root(spec: &CsrSpec, now: OffsetDateTime) -> Result<NewRoot> {
    spec.validate()?;
    let key = PrivateKey::generate(spec.key_request().algorithm()?)?;
    let (cert_pem, csr_pem) = init_root_with_key(spec, &key, now)?;
    Ok(NewRoot {
        cert_pem,
        key,
        csr_pem,
    })
}

/// [`init_root`] for a key made elsewhere (in a PKCS#11 token): returns the
/// certificate and CSR PEMs.
pub fn init_root_with_key<K: SigningKey>(
    spec: &CsrSpec,
    key: &K,
    now: OffsetDateTime,
) -> Result<(String, String)> {
    spec.validate()?;
    let mut params = spec.params()?;
    let ca = spec.ca.clone().unwrap_or_default();
    let lifetime = if ca.expiry.is_empty() {
        std::time::Duration::from_secs(43800 * 3600)
    } else {
        parse_go_duration(&ca.expiry)
            .map_err(|e| PkiError::BadCsrJson(format!("ca.expiry: {e}")))?
    };
    params.is_ca = IsCa::Ca(if ca.pathlen > 0 || ca.pathlenzero {
        BasicConstraints::Constrained(ca.pathlen)
    } else {
        BasicConstraints::Unconstrained
    });
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.not_before = truncate(now - std::time::Duration::from_secs(300));
    params.not_after = truncate(now + lifetime);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(Serial::random().as_bytes()));
    let csr_pem = spec
        .params()?
        .serialize_request(key)
        .and_then(|c| c.pem())
        .map_err(|e| PkiError::Generate(format!("CSR: {e}")))?;
    let cert = params
        .self_signed(key)
        .map_err(|e| PkiError::Generate(e.to_string()))?;
    Ok((to_pem("CERTIFICATE", cert.der()), csr_pem))
}
