//! Revocation reasons (RFC 5280 CRLReason) and revoked entries.
//! (Provisional copy; the CRL/OCSP work owns this module.)

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// RFC 5280 CRLReason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationReason {
    /// unspecified (0)
    Unspecified,
    /// keyCompromise (1)
    KeyCompromise,
    /// cACompromise (2)
    CaCompromise,
    /// affiliationChanged (3)
    AffiliationChanged,
    /// superseded (4)
    Superseded,
    /// cessationOfOperation (5)
    CessationOfOperation,
    /// certificateHold (6)
    CertificateHold,
    /// removeFromCRL (8)
    RemoveFromCrl,
    /// privilegeWithdrawn (9)
    PrivilegeWithdrawn,
    /// aACompromise (10)
    AaCompromise,
}

impl RevocationReason {
    /// The RFC 5280 code.
    pub fn code(self) -> u8 {
        use RevocationReason::*;
        match self {
            Unspecified => 0,
            KeyCompromise => 1,
            CaCompromise => 2,
            AffiliationChanged => 3,
            Superseded => 4,
            CessationOfOperation => 5,
            CertificateHold => 6,
            RemoveFromCrl => 8,
            PrivilegeWithdrawn => 9,
            AaCompromise => 10,
        }
    }

    /// CFSSL's lowercase name.
    pub fn as_str(self) -> &'static str {
        use RevocationReason::*;
        match self {
            Unspecified => "unspecified",
            KeyCompromise => "keycompromise",
            CaCompromise => "cacompromise",
            AffiliationChanged => "affiliationchanged",
            Superseded => "superseded",
            CessationOfOperation => "cessationofoperation",
            CertificateHold => "certificatehold",
            RemoveFromCrl => "removefromcrl",
            PrivilegeWithdrawn => "privilegewithdrawn",
            AaCompromise => "aacompromise",
        }
    }

    fn all() -> [RevocationReason; 10] {
        use RevocationReason::*;
        [
            Unspecified,
            KeyCompromise,
            CaCompromise,
            AffiliationChanged,
            Superseded,
            CessationOfOperation,
            CertificateHold,
            RemoveFromCrl,
            PrivilegeWithdrawn,
            AaCompromise,
        ]
    }
}

impl std::str::FromStr for RevocationReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let l = s.trim().to_ascii_lowercase();
        if l.is_empty() {
            return Ok(RevocationReason::Unspecified);
        }
        Self::all()
            .into_iter()
            .find(|r| r.as_str() == l || r.code().to_string() == l)
            .ok_or_else(|| format!("unknown revocation reason {s:?}"))
    }
}

/// One revoked certificate, as a CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial, big-endian unsigned.
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
}
