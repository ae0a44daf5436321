//! The verdict on a presented chain, its reasons, and the one place where
//! webpki's errors become reasons.

use std::fmt;
use std::sync::Arc;

/// Why a chain is invalid: the closed set of `Client-Cert-Error` values
/// (CONTRACT section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Reason {
    /// A certificate of the chain is past its notAfter.
    Expired,
    /// A certificate of the chain is before its notBefore.
    NotYetValid,
    /// A certificate of the chain is listed on its issuer's CRL.
    Revoked,
    /// No path to a trust anchor of the store.
    UnknownIssuer,
    /// A signature does not verify, or uses an algorithm we do not accept.
    BadSignature,
    /// A certificate is used for what it may not do: EKU, CA as leaf, path
    /// length, name constraints.
    BadUsage,
    /// Undecodable or non-conforming certificate.
    Malformed,
    /// Anything else: revocation status unknown (expired CRL), limits, ...
    Other,
}

impl Reason {
    /// The header / JSON token, e.g. `not-yet-valid`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Expired => "expired",
            Reason::NotYetValid => "not-yet-valid",
            Reason::Revoked => "revoked",
            Reason::UnknownIssuer => "unknown-issuer",
            Reason::BadSignature => "bad-signature",
            Reason::BadUsage => "bad-usage",
            Reason::Malformed => "malformed",
            Reason::Other => "other",
        }
    }

    /// Every reason, for tests and docs.
    pub const ALL: [Reason; 8] = [
        Reason::Expired,
        Reason::NotYetValid,
        Reason::Revoked,
        Reason::UnknownIssuer,
        Reason::BadSignature,
        Reason::BadUsage,
        Reason::Malformed,
        Reason::Other,
    ];
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of verifying what a client presented.
///
/// Cheap to clone (the detail is shared).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The client sent no certificate.
    None,
    /// The chain leads to a trust anchor of the store under its policy.
    Valid,
    /// The chain is not acceptable.
    Invalid {
        /// The reason sent to the origin.
        reason: Reason,
        /// The detailed error, for logs only (never sent to the origin,
        /// never contains key material).
        detail: Arc<str>,
    },
}

impl Verdict {
    /// `none`, `valid` or `invalid`: the `Client-Cert-Status` value.
    pub const fn status(&self) -> &'static str {
        match self {
            Verdict::None => "none",
            Verdict::Valid => "valid",
            Verdict::Invalid { .. } => "invalid",
        }
    }

    /// The reason, when invalid.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Verdict::Invalid { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// True for [`Verdict::Valid`].
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid)
    }

    pub(crate) fn invalid(reason: Reason, detail: impl Into<String>) -> Self {
        let mut detail: String = detail.into();
        truncate(&mut detail, MAX_DETAIL);
        Verdict::Invalid {
            reason,
            detail: detail.into(),
        }
    }
}

/// Details are bounded so that cached verdicts have a bounded size.
pub(crate) const MAX_DETAIL: usize = 512;

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
}

/// Map a webpki error to a contract reason. This is the only place where
/// that mapping is decided.
#[allow(deprecated)] // the deprecated variants can still be returned
pub fn reason_for(err: &webpki::Error) -> Reason {
    use webpki::Error as E;
    match err {
        E::CertExpired { .. } => Reason::Expired,
        E::CertNotValidYet { .. } => Reason::NotYetValid,
        E::CertRevoked => Reason::Revoked,
        E::UnknownIssuer | E::CertDistrusted => Reason::UnknownIssuer,
        E::InvalidSignatureForPublicKey
        | E::SignatureAlgorithmMismatch
        | E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => Reason::BadSignature,
        E::CaUsedAsEndEntity
        | E::EndEntityUsedAsCa
        | E::RequiredEkuNotFound
        | E::RequiredEkuNotFoundContext(_)
        | E::PathLenConstraintViolated
        | E::NameConstraintViolation => Reason::BadUsage,
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::UnsupportedCertVersion
        | E::UnsupportedCriticalExtension
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::EmptyEkuExtension
        | E::InvalidCertValidity
        | E::InvalidSerialNumber
        | E::MalformedNameConstraint
        | E::MalformedDnsIdentifier
        | E::InvalidNetworkMaskConstraint => Reason::Malformed,
        // CRL problems (expired CRL, unknown status, bad CRL signature or
        // encoding), complexity limits, and name checks we never ask for.
        _ => Reason::Other,
    }
}

/// A one-line description of a webpki error for logs.
pub(crate) fn describe(err: &webpki::Error) -> String {
    use webpki::Error as E;
    match err {
        E::CertExpired { time, not_after } => format!(
            "certificate expired at {} (verification time {})",
            rfc3339(not_after.as_secs()),
            rfc3339(time.as_secs())
        ),
        E::CertNotValidYet { time, not_before } => format!(
            "certificate not valid before {} (verification time {})",
            rfc3339(not_before.as_secs()),
            rfc3339(time.as_secs())
        ),
        E::CrlExpired { time, next_update } => format!(
            "CRL expired at {} (verification time {}); revocation status unknown",
            rfc3339(next_update.as_secs()),
            rfc3339(time.as_secs())
        ),
        other => format!("{other:?}"),
    }
}

/// Unix seconds as RFC 3339 UTC, or the number if out of range.
pub(crate) fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{secs}"))
}
