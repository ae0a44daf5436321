//! One issuance: a fresh key made here, a CSR, `authsign` at the CA, and
//! the answer checked before anything is stored.

use std::time::{Duration, SystemTime};

use ca_api::client::RemoteCa;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::CertificateConfig;
use crate::error::{AgentError, Result};
use crate::store::Issued;

/// What the agent needs to know about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFacts {
    /// Subject, RFC 4514.
    pub subject: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// SubjectPublicKeyInfo DER.
    pub spki: Vec<u8>,
}

fn to_system(t: x509_parser::time::ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH
    }
}

/// Reads the facts of the first certificate of a PEM text.
pub fn facts(pem_text: &str) -> Result<CertFacts> {
    let der = pki::issue::cert_der_from(pem_text.as_bytes())?;
    let (_, x) = X509Certificate::from_der(&der)
        .map_err(|e| AgentError::BadCertificate(format!("cannot parse it: {e}")))?;
    Ok(CertFacts {
        subject: pki::info::rfc4514(x.subject()),
        serial: pki::serial::Serial::from_bytes(x.raw_serial()).to_hex(),
        not_before: to_system(x.validity().not_before),
        not_after: to_system(x.validity().not_after),
        spki: x.tbs_certificate.subject_pki.raw.to_vec(),
    })
}

/// Obtains a new certificate: generates the key locally, sends only the
/// CSR (authsign), fetches the CA certificate for the chain, and checks
/// that the certificate is for this key and still valid.
pub async fn obtain(c: &CertificateConfig) -> Result<(Issued, CertFacts)> {
    // A fresh key for every issuance: a renewal never reuses the old key.
    let (key, csr_pem) = c.spec.generate()?;
    let ca = RemoteCa::new(&c.remote)?;
    let mut req = serde_json::json!({
        "certificate_request": csr_pem,
        "profile": c.profile,
        "label": "",
    });
    if !c.spec.hosts.is_empty() {
        req["hosts"] = c.spec.hosts.clone().into();
    }
    let cert_pem = ca.sign(&req, Some(&c.auth_key)).await?;
    let chain_pem = ca.info(&c.profile).await?;
    let f = facts(&cert_pem)?;
    if f.spki != key.public_key_der() {
        return Err(AgentError::BadCertificate(
            "its public key is not the key of the request".into(),
        ));
    }
    if f.not_after <= SystemTime::now() {
        return Err(AgentError::BadCertificate("it has already expired".into()));
    }
    facts(&chain_pem)
        .map_err(|e| AgentError::BadCertificate(format!("the CA certificate from info: {e}")))?;
    Ok((
        Issued {
            key_pem: key.to_pem(),
            cert_pem,
            chain_pem,
            obtained: SystemTime::now(),
        },
        f,
    ))
}
