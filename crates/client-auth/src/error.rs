//! The crate's one error type.

/// Errors from building trust stores, parsing inputs and extracting facts.
///
/// Verification of a client chain never returns this type: a bad chain is a
/// [`Verdict`](crate::Verdict), not an error. These are the operator's
/// mistakes (an unusable CA set, a bad CRL) or unparsable input to helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The trust store would have no usable trust anchor.
    #[error("trust store has no usable CA certificate{}", fmt_problems(.problems))]
    NoTrustAnchors {
        /// Why each offered certificate was refused.
        problems: Vec<String>,
    },
    /// A CA certificate offered to the trust store is unusable.
    #[error("CA certificate #{index} is unusable: {reason}")]
    BadCaCertificate {
        /// Position of the certificate in the input, from 0.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A CRL offered to the trust store is unusable.
    #[error("CRL #{index} is unusable: {reason}")]
    BadCrl {
        /// Position of the CRL in the input, from 0.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// PEM or DER input could not be decoded.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded ("certificate", "CRL", "PEM").
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// An option value is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

fn fmt_problems(p: &[String]) -> String {
    if p.is_empty() {
        " (none given)".to_owned()
    } else {
        format!(": {}", p.join("; "))
    }
}
