//! HMAC tokens checked at the edge: sign and verify, no I/O.
//!
//! Three schemes, each compatible with the system it is named after:
//!
//! * [`cloudflare`]: `is_timed_hmac_valid_v0`, `<ts>-<base64 mac>` in the
//!   `verify` query parameter (the last one) or a header;
//! * [`nginx`]: `secure_link_md5`, an MD5 of an expression, base64url
//!   without padding, with an optional `expires` parameter;
//! * [`akamai`]: EdgeAuth 2.0 tokens `st=…~exp=…~acl=…~hmac=<hex>` with a
//!   hex key and HMAC-SHA256.
//!
//! Every verifier takes several [`Secret`]s at once (so a secret can be
//! rotated without a flag day), compares MACs in constant time and tells
//! why a token was refused with a typed [`Error`]. The caller passes the
//! current time; nothing here reads a clock.
//!
//! ```
//! use tokens::{cloudflare, Secret};
//! let secret = Secret::new(b"mysecrettoken".to_vec()).unwrap();
//! let url = cloudflare::sign_url(&secret, "/images/cat.jpg", 1484063787);
//! assert_eq!(url, "/images/cat.jpg?verify=1484063787-XsZ5NmtNBxOd4f4fBOtqVmpWRnDRNkHKVZieqDPKu3U%3D");
//! let v = cloudflare::Verifier {
//!     secrets: std::slice::from_ref(&secret),
//!     expiry: cloudflare::Expiry::Ttl(60),
//!     max_future_skew: 5,
//! };
//! let (message, token) = cloudflare::split_url(&url, cloudflare::DEFAULT_PARAM).unwrap();
//! assert!(v.verify(message, &token, 1484063787 + 10).is_ok());
//! assert!(v.verify(message, &token, 1484063787 + 60).is_err());
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod akamai;
pub mod cloudflare;
pub mod nginx;
mod secret;

pub use secret::Secret;

/// Why a token was refused. The messages never contain a secret or a MAC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request carries no token where the configuration says to look.
    #[error("no token in the request")]
    Missing,
    /// The token is not in the scheme's syntax.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The MAC matches none of the active secrets (forged, altered,
    /// truncated, or signed with a secret that was rotated out).
    #[error("token MAC does not match")]
    BadMac,
    /// The token is authentic but no longer valid.
    #[error("token expired at {expired_at} (now {now})")]
    Expired {
        /// Unix time from which the token is refused.
        expired_at: u64,
        /// The time of the check.
        now: u64,
    },
    /// The token's time is further in the future than the allowed skew.
    #[error("token time {ts} is in the future (now {now}, allowed skew {skew} s)")]
    Future {
        /// The token's timestamp (or start time).
        ts: u64,
        /// The time of the check.
        now: u64,
        /// The allowed clock skew in seconds.
        skew: u64,
    },
    /// The token is authentic but does not cover this request (Akamai ACL
    /// or IP).
    #[error("token does not cover this request: {0}")]
    Scope(&'static str),
}

impl Error {
    /// A short stable code for logs and JSON: `missing`, `malformed`,
    /// `bad-mac`, `expired`, `future`, `scope`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Missing => "missing",
            Error::Malformed(_) => "malformed",
            Error::BadMac => "bad-mac",
            Error::Expired { .. } => "expired",
            Error::Future { .. } => "future",
            Error::Scope(_) => "scope",
        }
    }
}

/// A configuration value that cannot be used (raised when a verifier is
/// built, never at request time).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A secret is empty.
    #[error("a token secret is empty")]
    EmptySecret,
    /// An Akamai key is not an even-length hex string.
    #[error("an EdgeAuth key must be an even-length hexadecimal string")]
    BadHexKey,
    /// An nginx expression names a variable we do not provide.
    #[error("unknown variable ${0} in the secure_link_md5 expression (known: $secure_link_expires, $uri, $remote_addr, $secret)")]
    UnknownVariable(String),
}

/// What a verifier learned from an accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The MAC bytes (up to 32), kept to derive [`Verified::id`] on demand.
    mac: [u8; 32],
    mac_len: usize,
    /// Akamai's `id` field, when present.
    named_id: Option<String>,
    /// When the token stops being valid, if it says.
    pub expires: Option<u64>,
    /// Index of the secret that matched (0 = first configured).
    pub secret_index: usize,
}

impl Verified {
    pub(crate) fn new(
        mac: &[u8],
        named_id: Option<String>,
        expires: Option<u64>,
        secret_index: usize,
    ) -> Verified {
        let mut m = [0u8; 32];
        let mac_len = mac.len().min(32);
        m[..mac_len].copy_from_slice(&mac[..mac_len]);
        Verified {
            mac: m,
            mac_len,
            named_id,
            expires,
            secret_index,
        }
    }

    /// An identifier of the token for rate limiting: Akamai's `id` field
    /// when present, else the token's MAC (base64url), unique per signed
    /// token. Computed when asked (not on the verification path).
    pub fn id(&self) -> String {
        use base64::Engine as _;
        match &self.named_id {
            Some(id) => id.clone(),
            None => {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.mac[..self.mac_len])
            }
        }
    }
}

/// Constant-time equality (aws-lc's `CRYPTO_memcmp`; lengths may differ).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}
