//! Token secrets: never printed, zeroed on drop, HMAC key schedule done once.

use std::fmt;

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::SetupError;

/// One token secret. Its bytes are zeroed when dropped and its `Debug`
/// output is `[secret elided]`; it cannot be printed by accident.
#[derive(Clone)]
pub struct Secret {
    raw: Zeroizing<Vec<u8>>,
    key: hmac::Key,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret elided]")
    }
}

impl Secret {
    /// A secret from its bytes (Cloudflare and nginx use the text as is).
    pub fn new(bytes: Vec<u8>) -> Result<Secret, SetupError> {
        let raw = Zeroizing::new(bytes);
        if raw.is_empty() {
            return Err(SetupError::EmptySecret);
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, &raw);
        Ok(Secret { raw, key })
    }

    /// An Akamai EdgeAuth key: hex text, the HMAC key is the decoded bytes.
    pub fn from_hex(text: &str) -> Result<Secret, SetupError> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| SetupError::BadHexKey)?);
        Secret::new(bytes.to_vec())
    }

    /// The HMAC-SHA256 key.
    pub(crate) fn key(&self) -> &hmac::Key {
        &self.key
    }

    /// The raw bytes (nginx puts them into the hashed expression).
    pub(crate) fn raw(&self) -> &[u8] {
        &self.raw
    }
}
