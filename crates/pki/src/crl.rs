//! Certificate revocation lists (RFC 5280 section 5), signed by the CA key.
//!
//! The CRL is built from `x509-cert` types and signed with the CA's
//! [`rcgen::SigningKey`]. It names the right CA: the issuer is the CA
//! certificate's subject exactly as encoded there, the authority key
//! identifier is the CA certificate's subject key identifier, and the
//! signing key must be the CA certificate's key.
//!
//! Why not rcgen's CRL builder: it re-creates the issuer name from its own
//! `DistinguishedName`, which keeps one value per attribute type (a CA with
//! `OU=a, OU=b` would get a CRL issued by `OU=b`) and refuses multi-valued
//! RDNs. A CRL whose issuer differs from the CA's subject by a byte is a CRL
//! for nobody.

use std::time::Duration as StdDuration;

use aws_lc_rs::digest;
use der::asn1::{BitString, GeneralizedTime, OctetString, Uint, UtcTime};
use der::{Decode, Encode};
use rcgen::SigningKey;
use time::OffsetDateTime;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, CrlReason};
use x509_cert::ext::AsExtension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;
use x509_cert::Version;

use crate::revocation::{RevocationReason, RevokedEntry};

/// Why a CRL could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// The CA certificate is not a DER X.509 certificate.
    #[error("the CA certificate cannot be parsed: {0}")]
    InvalidCaCert(String),
    /// The signing key is not the key of the CA certificate.
    #[error("the signing key does not belong to the CA certificate")]
    KeyMismatch,
    /// The CA certificate has a key usage extension without `cRLSign`.
    #[error("the CA certificate's key usage does not allow signing CRLs")]
    NotCrlSigner,
    /// The key's signature algorithm is not supported.
    #[error("signature algorithm of the CA key is not supported")]
    UnsupportedAlgorithm,
    /// `next_update` is not after `this_update`.
    #[error("nextUpdate ({next_update}) must be after thisUpdate ({this_update})")]
    InvalidValidity {
        /// thisUpdate as given
        this_update: OffsetDateTime,
        /// nextUpdate as given
        next_update: OffsetDateTime,
    },
    /// A time is outside what X.509 can express here (years 1970 to 9999).
    #[error("{what} {at} is outside the years 1970 to 9999")]
    TimeOutOfRange {
        /// which time
        what: &'static str,
        /// the time as given
        at: OffsetDateTime,
    },
    /// A revoked entry has an empty or over-long (more than 20 significant
    /// bytes) serial number.
    #[error("revoked entry has an invalid serial number ({0})")]
    InvalidSerial(String),
    /// Encoding failed.
    #[error("encoding the CRL failed: {0}")]
    Encoding(String),
    /// The key failed to sign.
    #[error("signing the CRL failed: {0}")]
    Signing(#[from] rcgen::Error),
}

impl From<der::Error> for CrlError {
    fn from(e: der::Error) -> Self {
        CrlError::Encoding(e.to_string())
    }
}

/// Largest serial number RFC 5280 allows, in significant bytes.
const MAX_SERIAL_LEN: usize = 20;

/// Makes a DER CRL (v2) signed by `key`, the key of the CA certificate
/// `ca_cert_der`.
///
/// The CRL carries the authority key identifier (the CA certificate's
/// subject key identifier, or the SHA-1 of its public key when the
/// certificate has none: RFC 5280 method 1), the CRL number, and for each
/// entry a reasonCode extension (left out for `unspecified`, as RFC 5280
/// section 5.3.1 asks). Times before 2050 are UTCTime, later ones
/// GeneralizedTime (RFC 5280 section 5.1.2.4).
pub fn make_crl<S: SigningKey>(
    ca_cert_der: &[u8],
    key: &S,
    revoked: &[RevokedEntry],
    crl_number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Result<Vec<u8>, CrlError> {
    if next_update <= this_update {
        return Err(CrlError::InvalidValidity {
            this_update,
            next_update,
        });
    }
    let this_update = x509_time("thisUpdate", this_update)?;
    let next_update = x509_time("nextUpdate", next_update)?;

    let ca = inspect_ca(ca_cert_der)?;
    if ca.public_key != key.der_bytes() {
        return Err(CrlError::KeyMismatch);
    }
    if ca.crl_sign == Some(false) {
        return Err(CrlError::NotCrlSigner);
    }
    let signature = crate::ocsp::signature_algorithm(key).ok_or(CrlError::UnsupportedAlgorithm)?;

    let revoked_certs = revoked
        .iter()
        .map(|entry| revoked_cert(entry, &ca.subject))
        .collect::<Result<Vec<_>, _>>()?;

    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(ca.key_id)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let number = CrlNumber(Uint::new(&crl_number.to_be_bytes())?);
    let extensions = vec![
        aki.to_extension(&ca.subject, &[])?,
        number.to_extension(&ca.subject, &[])?,
    ];

    let tbs_cert_list = TbsCertList {
        version: Version::V2,
        signature: signature.clone(),
        issuer: ca.subject,
        this_update,
        next_update: Some(next_update),
        // RFC 5280 5.1.2.6: absent, not empty, when nothing is revoked.
        revoked_certificates: (!revoked_certs.is_empty()).then_some(revoked_certs),
        crl_extensions: Some(extensions),
    };
    let signed = key.sign(&tbs_cert_list.to_der()?)?;
    let crl = CertificateList {
        tbs_cert_list,
        signature_algorithm: signature,
        signature: BitString::from_bytes(&signed)?,
    };
    Ok(crl.to_der()?)
}

/// PEM (`-----BEGIN X509 CRL-----`) form of a DER CRL.
pub fn crl_to_pem(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("X509 CRL", der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// What a CRL needs from its CA certificate.
struct CaFacts {
    /// The subject, to be the CRL's issuer.
    subject: Name,
    /// The subject key identifier, to be the CRL's authority key identifier.
    key_id: Vec<u8>,
    /// The subjectPublicKey bits, to check the signing key against.
    public_key: Vec<u8>,
    /// Whether key usage allows CRL signing (`None`: no key usage extension).
    crl_sign: Option<bool>,
}

fn inspect_ca(ca_cert_der: &[u8]) -> Result<CaFacts, CrlError> {
    use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

    let (rest, cert) = X509Certificate::from_der(ca_cert_der)
        .map_err(|e| CrlError::InvalidCaCert(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CrlError::InvalidCaCert("trailing data".into()));
    }
    // Decoding the subject's own bytes and encoding them again gives the
    // same bytes (DER has one encoding), so the issuer matches exactly.
    let raw_subject = cert.tbs_certificate.subject.as_raw();
    let subject = Name::from_der(raw_subject)
        .map_err(|e| CrlError::InvalidCaCert(format!("subject: {e}")))?;
    if subject.to_der()? != raw_subject {
        return Err(CrlError::InvalidCaCert("subject is not DER".into()));
    }
    let public_key = cert.public_key().subject_public_key.data.to_vec();
    let mut key_id = None;
    let mut crl_sign = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => key_id = Some(id.0.to_vec()),
            ParsedExtension::KeyUsage(ku) => crl_sign = Some(ku.crl_sign()),
            _ => {}
        }
    }
    let key_id = key_id.unwrap_or_else(|| {
        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &public_key)
            .as_ref()
            .to_vec()
    });
    Ok(CaFacts {
        subject,
        key_id,
        public_key,
        crl_sign,
    })
}

fn revoked_cert(entry: &RevokedEntry, issuer: &Name) -> Result<RevokedCert, CrlError> {
    let significant = match entry.serial.iter().position(|&b| b != 0) {
        Some(i) => &entry.serial[i..],
        // All zero: serial number 0 is not allowed by RFC 5280 but exists in
        // the wild; an empty vector is a caller bug.
        None if !entry.serial.is_empty() => &[0u8][..],
        None => return Err(CrlError::InvalidSerial("empty".into())),
    };
    if significant.len() > MAX_SERIAL_LEN {
        return Err(CrlError::InvalidSerial(format!(
            "{} bytes, at most {MAX_SERIAL_LEN} allowed",
            significant.len()
        )));
    }
    // Through the decoder: `SerialNumber::new` refuses a 20-byte serial with
    // the high bit set (21 octets encoded), which real CAs have issued and
    // which must therefore be revocable.
    let serial_number = SerialNumber::from_der(&Uint::new(significant)?.to_der()?)
        .map_err(|e| CrlError::InvalidSerial(e.to_string()))?;
    let crl_entry_extensions = match crl_reason(entry.reason) {
        Some(reason) => Some(vec![reason.to_extension(issuer, &[])?]),
        None => None,
    };
    Ok(RevokedCert {
        serial_number,
        revocation_date: x509_time("revocation time", entry.revoked_at)?,
        crl_entry_extensions,
    })
}

/// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 5.1.2.4),
/// whole seconds.
fn x509_time(what: &'static str, at: OffsetDateTime) -> Result<Time, CrlError> {
    let out_of_range = || CrlError::TimeOutOfRange { what, at };
    let secs = u64::try_from(at.unix_timestamp()).map_err(|_| out_of_range())?;
    let unix = StdDuration::from_secs(secs);
    if at.to_offset(time::UtcOffset::UTC).year() <= i32::from(UtcTime::MAX_YEAR) {
        UtcTime::from_unix_duration(unix).map(Time::UtcTime)
    } else {
        GeneralizedTime::from_unix_duration(unix).map(Time::GeneralTime)
    }
    .map_err(|_| out_of_range())
}

/// The wire reason, `None` for `unspecified` (RFC 5280 5.3.1: absent
/// rather than unspecified).
pub(crate) fn crl_reason(reason: RevocationReason) -> Option<CrlReason> {
    Some(match reason {
        RevocationReason::Unspecified => return None,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::CertificateHold => CrlReason::CertificateHold,
        RevocationReason::RemoveFromCrl => CrlReason::RemoveFromCRL,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => CrlReason::AaCompromise,
    })
}
