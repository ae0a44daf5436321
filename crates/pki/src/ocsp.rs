//! OCSP responder core (RFC 6960), for one CA whose key signs the responses.
//!
//! [`OcspResponder::respond`] turns the bytes of an `OCSPRequest` into the
//! bytes of an `OCSPResponse`; it never fails and never panics, whatever the
//! input. Every problem becomes one of the response statuses RFC 6960
//! defines:
//!
//! | situation | response |
//! |---|---|
//! | not a DER `OCSPRequest`, an empty request list, or a nonce of 0 or more than 128 octets (RFC 9654) | `malformedRequest` |
//! | no entry of the request names this CA | `unauthorized` |
//! | a time cannot be encoded, or signing fails | `internalError` |
//! | otherwise | `successful`, one `SingleResponse` per request entry |
//!
//! Why `unauthorized` when no entry is ours: RFC 6960 section 2.3 (and the
//! RFC 5019 profile) use it for "this responder is not authoritative for that
//! certificate"; a signed answer of `unknown` for every entry would say the
//! same thing at the cost of a signature per stray request. Entries of a
//! mixed request that name another issuer get `unknown`.
//!
//! A request entry names this CA when its CertID's issuerNameHash and
//! issuerKeyHash match, under SHA-1 (openssl's default), SHA-256, SHA-384
//! or SHA-512; the response echoes each CertID as received.
//!
//! How the HTTP layer gets here: for `POST`, the body is the request; for
//! `GET`, [`decode_get_path`] turns the last path component back into it.
//!
//! The response is signed directly by the CA key (no delegated responder
//! certificate), the responder is identified by the SHA-1 hash of the CA's
//! public key (`byKey`), and a request nonce is echoed unchanged.

use std::fmt;

use aws_lc_rs::digest;
use base64::Engine;
use der::asn1::{Any, BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use rcgen::SigningKey;
use time::OffsetDateTime;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, OcspGeneralizedTime, OcspRequest, OcspResponse, OcspResponseStatus,
    ResponderId, ResponseData, RevokedInfo, SingleResponse, Version,
};

use crate::revocation::RevocationReason;

/// What the CA knows about a certificate it is asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// Issued by this CA and not revoked.
    Good,
    /// Revoked at `at` for `reason`.
    Revoked {
        /// revocation time
        at: OffsetDateTime,
        /// revocation reason (`unspecified` is sent without a reason)
        reason: RevocationReason,
    },
    /// This CA has no record of the serial number.
    Unknown,
}

/// Why a responder could not be built, or a GET path could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    /// The CA certificate is not a DER X.509 certificate.
    #[error("the CA certificate cannot be parsed: {0}")]
    InvalidCaCert(String),
    /// The signing key is not the key of the CA certificate.
    #[error("the signing key does not belong to the CA certificate")]
    KeyMismatch,
    /// The key's signature algorithm cannot sign OCSP responses here.
    #[error("signature algorithm of the CA key is not supported for OCSP")]
    UnsupportedAlgorithm,
    /// The GET path component has a bad `%` escape.
    #[error("bad percent-encoding in OCSP GET path")]
    BadPercentEncoding,
    /// The GET path component is not base64.
    #[error("OCSP GET path is not base64: {0}")]
    BadBase64(String),
    /// The GET path component is empty.
    #[error("OCSP GET path is empty")]
    EmptyRequest,
}

/// Hash algorithms accepted in a request's `CertID`.
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Signature algorithms (RFC 5758, RFC 8410, RFC 4055).
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");

/// id-pkix-ocsp-nonce (RFC 6960 section 4.4.1)
const ID_PKIX_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");

/// Longest nonce accepted (RFC 9654 section 2.1).
const MAX_NONCE_LEN: usize = 128;

/// This CA's issuerNameHash and issuerKeyHash under one hash algorithm.
#[derive(Clone, Debug)]
struct IssuerHashes {
    algorithm: ObjectIdentifier,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
}

/// An OCSP responder for one CA, signing with that CA's key.
pub struct OcspResponder<S> {
    ca_cert_der: Vec<u8>,
    key: S,
    issuer_hashes: Vec<IssuerHashes>,
    responder_id: ResponderId,
    signature_algorithm: AlgorithmIdentifierOwned,
}

impl<S> fmt::Debug for OcspResponder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OcspResponder")
            .field("signature_algorithm", &self.signature_algorithm.oid)
            .field("responder_id", &self.responder_id)
            .field("key", &"[secret key elided]")
            .finish_non_exhaustive()
    }
}

impl<S: SigningKey> OcspResponder<S> {
    /// A responder for the CA certificate `ca_cert_der` whose key is `key`.
    ///
    /// Fails if the certificate does not parse, `key` is not its key, or the
    /// key's algorithm is not one of ECDSA (P-256, P-384, P-521), Ed25519 or
    /// RSA PKCS#1 v1.5.
    pub fn new(ca_cert_der: Vec<u8>, key: S) -> Result<Self, OcspError> {
        use x509_parser::prelude::{FromDer, X509Certificate};

        let (issuer_hashes, key_bits) = {
            let (rest, cert) = X509Certificate::from_der(&ca_cert_der)
                .map_err(|e| OcspError::InvalidCaCert(e.to_string()))?;
            if !rest.is_empty() {
                return Err(OcspError::InvalidCaCert("trailing data".into()));
            }
            let name = cert.tbs_certificate.subject.as_raw();
            let key_bits = cert.public_key().subject_public_key.data.to_vec();
            let issuer_hashes = [
                (SHA1, &digest::SHA1_FOR_LEGACY_USE_ONLY),
                (SHA256, &digest::SHA256),
                (SHA384, &digest::SHA384),
                (SHA512, &digest::SHA512),
            ]
            .into_iter()
            .map(|(algorithm, alg)| IssuerHashes {
                algorithm,
                name_hash: digest::digest(alg, name).as_ref().to_vec(),
                key_hash: digest::digest(alg, &key_bits).as_ref().to_vec(),
            })
            .collect::<Vec<_>>();
            (issuer_hashes, key_bits)
        };
        if key.der_bytes() != key_bits.as_slice() {
            return Err(OcspError::KeyMismatch);
        }
        let signature_algorithm =
            signature_algorithm(&key).ok_or(OcspError::UnsupportedAlgorithm)?;

        // RFC 6960 section 4.2.1: KeyHash is the SHA-1 of the public key bits.
        let key_hash = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &key_bits);
        let responder_id = ResponderId::ByKey(
            OctetString::new(key_hash.as_ref())
                .map_err(|e| OcspError::InvalidCaCert(e.to_string()))?,
        );

        Ok(Self {
            ca_cert_der,
            key,
            issuer_hashes,
            responder_id,
            signature_algorithm,
        })
    }

    /// The CA certificate this responder answers for.
    pub fn ca_cert_der(&self) -> &[u8] {
        &self.ca_cert_der
    }

    /// Answers the DER `OCSPRequest` in `request_der` with a DER
    /// `OCSPResponse` (see the module docs for which status when).
    ///
    /// `lookup` gets the serial number of each entry that names this CA, as
    /// big-endian unsigned bytes without leading zero bytes, and says what
    /// the CA knows about it. thisUpdate and producedAt are `now`; nextUpdate
    /// is `now + validity` (left out if `validity` is not positive, which
    /// tells clients newer information is always available).
    pub fn respond(
        &self,
        request_der: &[u8],
        now: OffsetDateTime,
        validity: time::Duration,
        lookup: impl Fn(&[u8]) -> CertStatus,
    ) -> Vec<u8> {
        let response = match self.try_respond(request_der, now, validity, lookup) {
            Ok(response) => response,
            Err(status) => OcspResponse {
                response_status: status,
                response_bytes: None,
            },
        };
        encode_response(&response)
    }

    fn try_respond(
        &self,
        request_der: &[u8],
        now: OffsetDateTime,
        validity: time::Duration,
        lookup: impl Fn(&[u8]) -> CertStatus,
    ) -> Result<OcspResponse, OcspResponseStatus> {
        let request =
            OcspRequest::from_der(request_der).map_err(|_| OcspResponseStatus::MalformedRequest)?;
        let tbs = &request.tbs_request;
        if tbs.request_list.is_empty() {
            return Err(OcspResponseStatus::MalformedRequest);
        }

        // Echo the nonce extension byte for byte: clients compare the
        // extension value, whatever its inner encoding.
        let nonce = tbs
            .request_extensions
            .iter()
            .flatten()
            .find(|ext| ext.extn_id == ID_PKIX_OCSP_NONCE);
        if let Some(ext) = nonce {
            // RFC 9654: the value is an OCTET STRING of 1 to 128 octets, and
            // requests with 0 or more than 128 are refused. Pre-RFC 6960 clients put
            // the bare bytes in the extension; measure those then.
            let raw = ext.extn_value.as_bytes();
            let len = OctetString::from_der(raw).map_or(raw.len(), |o| o.as_bytes().len());
            if len == 0 || len > MAX_NONCE_LEN {
                return Err(OcspResponseStatus::MalformedRequest);
            }
        }
        let nonce = nonce.map(|ext| x509_cert::ext::Extension {
            extn_id: ext.extn_id,
            critical: false,
            extn_value: ext.extn_value.clone(),
        });

        let this_update = ocsp_time(now).ok_or_else(|| internal("thisUpdate out of range"))?;
        let next_update = if validity.is_positive() {
            let at = now
                .checked_add(validity)
                .ok_or_else(|| internal("nextUpdate out of range"))?;
            Some(ocsp_time(at).ok_or_else(|| internal("nextUpdate out of range"))?)
        } else {
            None
        };

        let mut any_ours = false;
        let mut responses = Vec::with_capacity(tbs.request_list.len());
        for entry in &tbs.request_list {
            let cert_id = &entry.req_cert;
            let status = if self.is_ours(cert_id) {
                any_ours = true;
                lookup(serial_bytes(cert_id.serial_number.as_bytes()))
            } else {
                CertStatus::Unknown
            };
            responses.push(SingleResponse {
                cert_id: cert_id.clone(),
                cert_status: wire_status(status)?,
                this_update,
                next_update,
                single_extensions: None,
            });
        }
        if !any_ours {
            return Err(OcspResponseStatus::Unauthorized);
        }

        let tbs_response_data = ResponseData {
            version: Version::V1,
            responder_id: self.responder_id.clone(),
            produced_at: this_update,
            responses,
            response_extensions: nonce.map(|n| vec![n]),
        };
        let signed = tbs_response_data
            .to_der()
            .map_err(|e| internal(&format!("encoding ResponseData: {e}")))?;
        let signature = self
            .key
            .sign(&signed)
            .map_err(|e| internal(&format!("signing: {e}")))?;
        let basic = BasicOcspResponse {
            tbs_response_data,
            signature_algorithm: self.signature_algorithm.clone(),
            signature: BitString::from_bytes(&signature)
                .map_err(|e| internal(&format!("encoding signature: {e}")))?,
            certs: None,
        };
        OcspResponse::successful(basic)
            .map_err(|e| internal(&format!("encoding BasicOCSPResponse: {e}")))
    }

    /// Signs a response for one serial of this CA with a status decided by
    /// the caller (CFSSL's `ocspsign`): the same as answering a SHA-1 CertID
    /// request for that serial. `None` if the serial is not a valid INTEGER.
    pub fn sign_status(
        &self,
        serial: &[u8],
        status: CertStatus,
        now: OffsetDateTime,
        validity: time::Duration,
    ) -> Option<Vec<u8>> {
        let sha1 = self.issuer_hashes.first()?;
        let cert_id = CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: sha1.algorithm,
                parameters: Some(Any::from(Null)),
            },
            issuer_name_hash: OctetString::new(sha1.name_hash.clone()).ok()?,
            issuer_key_hash: OctetString::new(sha1.key_hash.clone()).ok()?,
            serial_number: x509_cert::serial_number::SerialNumber::new(serial).ok()?,
        };
        let request = OcspRequest {
            tbs_request: x509_ocsp::TbsRequest {
                version: Version::V1,
                requestor_name: None,
                request_list: vec![x509_ocsp::Request {
                    req_cert: cert_id,
                    single_request_extensions: None,
                }],
                request_extensions: None,
            },
            optional_signature: None,
        };
        let der = request.to_der().ok()?;
        Some(self.respond(&der, now, validity, move |_| status))
    }

    /// Whether a CertID names this CA: a supported hash algorithm (with
    /// absent or NULL parameters) and both issuer hashes equal.
    fn is_ours(&self, cert_id: &CertId) -> bool {
        let params_ok = match &cert_id.hash_algorithm.parameters {
            None => true,
            Some(any) => any.is_null(),
        };
        params_ok
            && self.issuer_hashes.iter().any(|h| {
                h.algorithm == cert_id.hash_algorithm.oid
                    && h.name_hash == cert_id.issuer_name_hash.as_bytes()
                    && h.key_hash == cert_id.issuer_key_hash.as_bytes()
            })
    }
}

/// A DER `OCSPResponse` with status `malformedRequest`, for an HTTP layer
/// that could not even get the request bytes (bad GET path, empty body).
pub fn malformed_request_response() -> Vec<u8> {
    encode_response(&OcspResponse::malformed_request())
}

/// A DER `OCSPResponse` with status `tryLater`, for when the revocation
/// store cannot be read.
pub fn try_later_response() -> Vec<u8> {
    encode_response(&OcspResponse::try_later())
}

/// Decodes the RFC 6960 appendix A.1 GET form: the last path component is
/// the URL-encoded base64 of the DER request.
///
/// Tolerates what clients actually send: leading `/`, URL-safe base64
/// (`-`, `_`) and missing `=` padding.
pub fn decode_get_path(path_component: &str) -> Result<Vec<u8>, OcspError> {
    let unescaped = percent_decode(path_component.as_bytes())?;
    // A DER request starts with 0x30, which is base64 'M': a leading '/' is
    // a path separator, never part of the request.
    let text: Vec<u8> = unescaped
        .iter()
        .skip_while(|&&b| b == b'/')
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'/',
            other => other,
        })
        .collect();
    if text.is_empty() {
        return Err(OcspError::EmptyRequest);
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let der = engine
        .decode(&text)
        .map_err(|e| OcspError::BadBase64(e.to_string()))?;
    if der.is_empty() {
        return Err(OcspError::EmptyRequest);
    }
    Ok(der)
}

fn percent_decode(input: &[u8]) -> Result<Vec<u8>, OcspError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let hex = input
                .get(i + 1..i + 3)
                .ok_or(OcspError::BadPercentEncoding)?;
            let mut byte = [0u8; 1];
            hex::decode_to_slice(hex, &mut byte).map_err(|_| OcspError::BadPercentEncoding)?;
            out.push(byte[0]);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn encode_response(response: &OcspResponse) -> Vec<u8> {
    match response.to_der() {
        Ok(der) => der,
        Err(e) => {
            // Only reachable if the successful response itself cannot be
            // encoded; a status-only response always can.
            tracing::error!(error = %e, "cannot encode OCSP response");
            OcspResponse::internal_error().to_der().unwrap_or_default()
        }
    }
}

fn internal(what: &str) -> OcspResponseStatus {
    tracing::error!(what, "OCSP response failed");
    OcspResponseStatus::InternalError
}

/// Serial number bytes as `lookup` sees them: no leading zero bytes (but at
/// least one byte).
fn serial_bytes(raw: &[u8]) -> &[u8] {
    match raw.iter().position(|&b| b != 0) {
        Some(i) => &raw[i..],
        None => &raw[raw.len().saturating_sub(1)..],
    }
}

/// A time as GeneralizedTime, whole seconds, UTC; `None` outside 1970..=9999.
fn ocsp_time(at: OffsetDateTime) -> Option<OcspGeneralizedTime> {
    let secs = u64::try_from(at.unix_timestamp()).ok()?;
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .ok()
        .map(OcspGeneralizedTime)
}

fn wire_status(status: CertStatus) -> Result<x509_ocsp::CertStatus, OcspResponseStatus> {
    Ok(match status {
        CertStatus::Good => x509_ocsp::CertStatus::good(),
        CertStatus::Unknown => x509_ocsp::CertStatus::unknown(),
        CertStatus::Revoked { at, reason } => x509_ocsp::CertStatus::revoked(RevokedInfo {
            revocation_time: ocsp_time(at)
                .ok_or_else(|| internal("revocation time out of range"))?,
            revocation_reason: crate::crl::crl_reason(reason),
        }),
    })
}

/// The AlgorithmIdentifier of the signatures `key` makes.
/// `None` for algorithms not listed here (RSA-PSS, ML-DSA).
pub(crate) fn signature_algorithm(key: &impl SigningKey) -> Option<AlgorithmIdentifierOwned> {
    let alg = key.algorithm();
    let (oid, null_params) = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        (ECDSA_WITH_SHA256, false)
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        (ECDSA_WITH_SHA384, false)
    } else if alg == &rcgen::PKCS_ECDSA_P521_SHA256 {
        (ECDSA_WITH_SHA256, false)
    } else if alg == &rcgen::PKCS_ECDSA_P521_SHA384 {
        (ECDSA_WITH_SHA384, false)
    } else if alg == &rcgen::PKCS_ECDSA_P521_SHA512 {
        (ECDSA_WITH_SHA512, false)
    } else if alg == &rcgen::PKCS_ED25519 {
        (ID_ED25519, false)
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        (SHA256_WITH_RSA, true)
    } else if alg == &rcgen::PKCS_RSA_SHA384 {
        (SHA384_WITH_RSA, true)
    } else if alg == &rcgen::PKCS_RSA_SHA512 {
        (SHA512_WITH_RSA, true)
    } else {
        return None;
    };
    Some(AlgorithmIdentifierOwned {
        oid,
        parameters: null_params.then(|| Any::from(Null)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0xfb];

    #[test]
    fn get_path_standard_base64() {
        assert_eq!(decode_get_path("MAMCAfs=").unwrap(), REQ);
    }

    #[test]
    fn get_path_url_encoded_missing_padding_and_url_safe() {
        assert_eq!(decode_get_path("MAMCAfs%3D").unwrap(), REQ);
        assert_eq!(decode_get_path("MAMCAfs").unwrap(), REQ);
        assert_eq!(decode_get_path("/MAMCAfs=").unwrap(), REQ);
        // 0xfb 0xff encode to "+/8" in standard base64.
        let std = [0x30, 0x02, 0xfb, 0xff];
        assert_eq!(decode_get_path("MAL7/w==").unwrap(), std);
        assert_eq!(decode_get_path("MAL7_w").unwrap(), std);
        assert_eq!(decode_get_path("MAL7%2Fw%3D%3D").unwrap(), std);
        assert_eq!(decode_get_path("MAL7%2fw").unwrap(), std);
        let plus = [0x30, 0x02, 0xfb, 0xf8];
        assert_eq!(decode_get_path("MAL7%2BA%3D%3D").unwrap(), plus);
        assert_eq!(decode_get_path("MAL7+A==").unwrap(), plus);
        assert_eq!(decode_get_path("MAL7-A").unwrap(), plus);
    }

    #[test]
    fn get_path_rejects_garbage() {
        assert!(matches!(decode_get_path(""), Err(OcspError::EmptyRequest)));
        assert!(matches!(decode_get_path("/"), Err(OcspError::EmptyRequest)));
        assert!(matches!(
            decode_get_path("%"),
            Err(OcspError::BadPercentEncoding)
        ));
        assert!(matches!(
            decode_get_path("MA%3"),
            Err(OcspError::BadPercentEncoding)
        ));
        assert!(matches!(
            decode_get_path("MA%zz"),
            Err(OcspError::BadPercentEncoding)
        ));
        assert!(matches!(
            decode_get_path("MA!!"),
            Err(OcspError::BadBase64(_))
        ));
        assert!(matches!(decode_get_path("M"), Err(OcspError::BadBase64(_))));
        assert!(matches!(
            decode_get_path("%C3%A9"),
            Err(OcspError::BadBase64(_))
        ));
    }

    #[test]
    fn serial_bytes_strips_leading_zeros() {
        assert_eq!(serial_bytes(&[0, 0x80, 1]), &[0x80, 1]);
        assert_eq!(serial_bytes(&[0x7f]), &[0x7f]);
        assert_eq!(serial_bytes(&[0, 0]), &[0]);
        assert_eq!(serial_bytes(&[]), &[] as &[u8]);
    }
}
