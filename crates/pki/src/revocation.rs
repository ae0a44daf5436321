//! Revocation vocabulary shared by the CRL generator and the OCSP responder.
//!
//! [`RevocationReason`] speaks three dialects: the RFC 5280 `CRLReason` code
//! (what goes on the wire), CFSSL's lowercase reason strings (what its
//! `revoke` endpoint and command line accept), and serde (the lowercase
//! string, so stored and JSON forms read like CFSSL's).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

/// Why a certificate was revoked: the RFC 5280 section 5.3.1 `CRLReason`.
///
/// Code 7 is unassigned in RFC 5280 and is not representable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// `unspecified` (0). RFC 5280 says not to put this code in a CRL, so the
    /// CRL and OCSP encoders leave the reason out for it.
    #[default]
    Unspecified,
    /// `keyCompromise` (1)
    KeyCompromise,
    /// `cACompromise` (2)
    CaCompromise,
    /// `affiliationChanged` (3)
    AffiliationChanged,
    /// `superseded` (4)
    Superseded,
    /// `cessationOfOperation` (5)
    CessationOfOperation,
    /// `certificateHold` (6)
    CertificateHold,
    /// `removeFromCRL` (8)
    RemoveFromCrl,
    /// `privilegeWithdrawn` (9)
    PrivilegeWithdrawn,
    /// `aACompromise` (10)
    AaCompromise,
}

impl RevocationReason {
    /// Every reason, in code order.
    pub const ALL: [RevocationReason; 10] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::RemoveFromCrl,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// The RFC 5280 `CRLReason` code.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::RemoveFromCrl => 8,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// The reason for an RFC 5280 code, `None` for 7 and anything above 10.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// CFSSL's lowercase name of the reason (`keycompromise`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keycompromise",
            Self::CaCompromise => "cacompromise",
            Self::AffiliationChanged => "affiliationchanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationofoperation",
            Self::CertificateHold => "certificatehold",
            Self::RemoveFromCrl => "removefromcrl",
            Self::PrivilegeWithdrawn => "privilegewithdrawn",
            Self::AaCompromise => "aacompromise",
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was neither a CFSSL reason name nor an RFC 5280 reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown revocation reason {0:?}")]
pub struct UnknownReason(pub String);

impl FromStr for RevocationReason {
    type Err = UnknownReason;

    /// Accepts CFSSL's reason names in any case (`KeyCompromise`,
    /// `keycompromise`) and the decimal code (`1`). The empty string is
    /// rejected: a caller that means "no reason" should say `unspecified`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return t
                .parse::<u8>()
                .ok()
                .and_then(Self::from_code)
                .ok_or_else(|| UnknownReason(s.to_owned()));
        }
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

impl Serialize for RevocationReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RevocationReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One revoked certificate, as the CRL generator needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The serial number, big-endian unsigned; leading zero bytes are allowed
    /// and ignored.
    pub serial: Vec<u8>,
    /// When the certificate was revoked.
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cfssl_names_in_any_case() {
        assert_eq!(
            "keycompromise".parse::<RevocationReason>(),
            Ok(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            "KeyCompromise".parse::<RevocationReason>(),
            Ok(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            "CACOMPROMISE".parse::<RevocationReason>(),
            Ok(RevocationReason::CaCompromise)
        );
        assert_eq!(
            "removeFromCRL".parse::<RevocationReason>(),
            Ok(RevocationReason::RemoveFromCrl)
        );
        for r in RevocationReason::ALL {
            assert_eq!(r.as_str().parse::<RevocationReason>(), Ok(r));
            assert_eq!(r.code().to_string().parse::<RevocationReason>(), Ok(r));
        }
    }

    #[test]
    fn parses_codes_and_rejects_the_rest() {
        assert_eq!(
            "0".parse::<RevocationReason>(),
            Ok(RevocationReason::Unspecified)
        );
        assert_eq!(
            "10".parse::<RevocationReason>(),
            Ok(RevocationReason::AaCompromise)
        );
        for bad in [
            "",
            "7",
            "11",
            "256",
            "-1",
            "+1",
            "key compromise",
            "keycompromised",
            "0x1",
        ] {
            assert!(bad.parse::<RevocationReason>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn codes_match_rfc5280() {
        let codes: Vec<u8> = RevocationReason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 8, 9, 10]);
        assert_eq!(RevocationReason::from_code(7), None);
    }

    #[test]
    fn serde_uses_the_lowercase_name() {
        let json = serde_json::to_string(&RevocationReason::CessationOfOperation).unwrap();
        assert_eq!(json, "\"cessationofoperation\"");
        let back: RevocationReason = serde_json::from_str("\"Superseded\"").unwrap();
        assert_eq!(back, RevocationReason::Superseded);
        assert!(serde_json::from_str::<RevocationReason>("\"nope\"").is_err());
    }
}
