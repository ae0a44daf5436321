//! The one error type of the PKI core.

/// Everything that can go wrong in the PKI core, grouped by who is at fault.
///
/// The first group is the caller's fault (bad input or a request the policy
/// refuses): an API turns those into 4xx answers. The last group is ours.
/// No variant ever carries private key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The CSR JSON (CFSSL's certificate request spec) is not valid.
    #[error("invalid certificate request JSON: {0}")]
    BadCsrJson(String),
    /// The signing configuration JSON is not valid.
    #[error("invalid signing configuration: {0}")]
    BadConfig(String),
    /// The requested key algorithm or size is not allowed.
    #[error("invalid key request: {0}")]
    BadKeyRequest(String),
    /// The input is not a parsable PKCS#10 certificate request.
    #[error("invalid certificate request: {0}")]
    BadCsr(String),
    /// The certificate request's self-signature does not verify.
    #[error("certificate request signature does not verify")]
    CsrSignature,
    /// The request names a profile the configuration does not define.
    #[error("unknown signing profile {0:?}")]
    UnknownProfile(String),
    /// A name in the request is not matched by the profile's `name_whitelist`.
    #[error("name {0:?} is not permitted by the profile's name_whitelist")]
    NameNotAllowed(String),
    /// The request asks for a CA certificate and the profile does not allow it.
    #[error("the profile does not allow issuing CA certificates")]
    CaNotAllowed,
    /// The request asks for a CA deeper than the issuer's path length allows.
    #[error("path length constraint violated: {0}")]
    PathLen(String),
    /// A request field has a bad value (a SAN, a serial, a subject).
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// A certificate given to us (a CA certificate) cannot be used.
    #[error("invalid certificate: {0}")]
    BadCertificate(String),
    /// A private key given to us cannot be used. Never contains key bytes.
    #[error("invalid private key: {0}")]
    BadKey(String),
    /// A passphrase, share or sealed key file is wrong or unusable. Never
    /// contains the secret itself.
    #[error("key custody: {0}")]
    Custody(String),
    /// The CA key is sealed: M-of-N shares must unseal it before it signs.
    #[error("the CA key is sealed: submit key shares to unseal it")]
    Sealed,
    /// A PKCS#11 token refused or failed an operation.
    #[error("PKCS#11 token: {0}")]
    Token(String),
    /// The private key does not belong to the certificate.
    #[error("the private key does not match the CA certificate")]
    KeyMismatch,
    /// No such certificate in the issuance log.
    #[error("certificate not found")]
    NotFound,
    /// Building or signing a certificate failed inside the library.
    #[error("certificate generation failed: {0}")]
    Generate(String),
    /// The issuance log could not record or read.
    #[error("issuance log error: {0}")]
    Log(String),
}

impl PkiError {
    /// True when the caller caused the error (bad input or refused by policy).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            PkiError::Generate(_) | PkiError::Log(_) | PkiError::Sealed | PkiError::Token(_)
        )
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = PkiError> = std::result::Result<T, E>;
