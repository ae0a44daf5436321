//! Certificate revocation lists (RFC 5280 section 5), signed by the CA key.
//!
//! The encoding is rcgen's; this module maps Portcullis' revocation records
//! onto it and makes sure the result names the right CA: the issuer is the
//! CA certificate's subject, the authority key identifier is the CA
//! certificate's subject key identifier, and the signing key must be the
//! CA certificate's key.

use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, RevokedCertParams, SerialNumber,
    SigningKey,
};
use time::OffsetDateTime;

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
    /// `next_update` is not after `this_update`.
    #[error("nextUpdate ({next_update}) must be after thisUpdate ({this_update})")]
    InvalidValidity {
        /// thisUpdate as given
        this_update: OffsetDateTime,
        /// nextUpdate as given
        next_update: OffsetDateTime,
    },
    /// A revoked entry has an empty or over-long (more than 20 significant
    /// bytes) serial number.
    #[error("revoked entry has an invalid serial number ({0})")]
    InvalidSerial(String),
    /// A time is outside what the encoders can express (years 1970 to 9999).
    #[error("{what} {at} is outside the years 1970 to 9999")]
    TimeOutOfRange {
        /// which time
        what: &'static str,
        /// the time as given
        at: OffsetDateTime,
    },
    /// Encoding or signing failed.
    #[error("signing the CRL failed: {0}")]
    Signing(#[from] rcgen::Error),
}

/// Largest serial number RFC 5280 allows, in significant bytes.
const MAX_SERIAL_LEN: usize = 20;

/// Makes a DER CRL (v2) signed by `key`, the key of the CA certificate
/// `ca_cert_der`.
///
/// The CRL carries the authority key identifier (the CA certificate's
/// subject key identifier, or rcgen's SHA-256 key id when the certificate
/// has none), the CRL number, and for each entry a reasonCode extension
/// (left out for `unspecified`, as RFC 5280 section 5.3.1 asks).
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

    // rcgen asserts (panics) on years it cannot encode and checks the year
    // before converting to UTC: hand it UTC times in range only.
    let this_update = checked_utc("thisUpdate", this_update)?;
    let next_update = checked_utc("nextUpdate", next_update)?;

    let (key_identifier_method, ca_public_key, has_crl_sign) = inspect_ca(ca_cert_der)?;
    if ca_public_key != key.der_bytes() {
        return Err(CrlError::KeyMismatch);
    }
    if has_crl_sign == Some(false) {
        return Err(CrlError::NotCrlSigner);
    }

    let revoked_certs = revoked
        .iter()
        .map(revoked_params)
        .collect::<Result<Vec<_>, _>>()?;

    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from(crl_number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method,
    };
    let issuer = Issuer::from_ca_cert_der(&ca_cert_der.into(), key)?;
    let crl = params.signed_by(&issuer)?;
    Ok(crl.der().to_vec())
}

/// PEM (`-----BEGIN X509 CRL-----`) form of a DER CRL.
pub fn crl_to_pem(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("X509 CRL", der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// The CA's key id method (its SKI), public key bits, and whether its key
/// usage allows CRL signing (`None`: no key usage extension).
fn inspect_ca(ca_cert_der: &[u8]) -> Result<(KeyIdMethod, Vec<u8>, Option<bool>), CrlError> {
    use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

    let (rest, cert) = X509Certificate::from_der(ca_cert_der)
        .map_err(|e| CrlError::InvalidCaCert(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CrlError::InvalidCaCert("trailing data".into()));
    }
    let mut ski = None;
    let mut crl_sign = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => ski = Some(id.0.to_vec()),
            ParsedExtension::KeyUsage(ku) => crl_sign = Some(ku.crl_sign()),
            _ => {}
        }
    }
    let method = match ski {
        Some(id) => KeyIdMethod::PreSpecified(id),
        None => KeyIdMethod::Sha256,
    };
    let public_key = cert.public_key().subject_public_key.data.to_vec();
    Ok((method, public_key, crl_sign))
}

fn revoked_params(entry: &RevokedEntry) -> Result<RevokedCertParams, CrlError> {
    let first = entry.serial.iter().position(|&b| b != 0);
    let significant = match first {
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
    Ok(RevokedCertParams {
        serial_number: SerialNumber::from_slice(significant),
        revocation_time: checked_utc("revocation time", entry.revoked_at)?,
        reason_code: rcgen_reason(entry.reason),
        invalidity_date: None,
    })
}

fn checked_utc(what: &'static str, at: OffsetDateTime) -> Result<OffsetDateTime, CrlError> {
    let utc = at.to_offset(time::UtcOffset::UTC);
    if (1970..=9999).contains(&utc.year()) {
        Ok(utc)
    } else {
        Err(CrlError::TimeOutOfRange { what, at })
    }
}

fn rcgen_reason(reason: RevocationReason) -> Option<rcgen::RevocationReason> {
    use rcgen::RevocationReason as R;
    Some(match reason {
        RevocationReason::Unspecified => return None,
        RevocationReason::KeyCompromise => R::KeyCompromise,
        RevocationReason::CaCompromise => R::CaCompromise,
        RevocationReason::AffiliationChanged => R::AffiliationChanged,
        RevocationReason::Superseded => R::Superseded,
        RevocationReason::CessationOfOperation => R::CessationOfOperation,
        RevocationReason::CertificateHold => R::CertificateHold,
        RevocationReason::RemoveFromCrl => R::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => R::AaCompromise,
    })
}
