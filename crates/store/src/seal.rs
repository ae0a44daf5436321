//! Sealing of private keys at rest: AES-256-GCM under the store key when
//! one is configured, otherwise kept as is behind a marker (the API types
//! never return keys either way).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::error::{Result, StoreError};
use crate::model::Secret;

const SEALED: &[u8] = b"pcs1:aes256gcm:";
const PLAIN: &[u8] = b"pcs1:plain:";

/// Seals and opens secrets.
pub(crate) struct Sealer {
    key: Option<LessSafeKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("encrypting", &self.key.is_some())
            .finish()
    }
}

impl Sealer {
    /// `key`: 32 bytes, or none (keys stored unencrypted).
    pub(crate) fn new(key: Option<&[u8; 32]>) -> Result<Sealer> {
        let key = match key {
            None => None,
            Some(k) => Some(LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, k)
                    .map_err(|_| StoreError::Internal("bad store key".into()))?,
            )),
        };
        Ok(Sealer { key })
    }

    pub(crate) fn seal(&self, secret: &Secret, aad: &str) -> Result<Vec<u8>> {
        let Some(key) = &self.key else {
            let mut out = PLAIN.to_vec();
            out.extend_from_slice(secret.expose());
            return Ok(out);
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| StoreError::Internal("no randomness".into()))?;
        let mut buf = secret.expose().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut buf,
        )
        .map_err(|_| StoreError::Internal("sealing failed".into()))?;
        let mut out = SEALED.to_vec();
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        zeroize::Zeroize::zeroize(&mut buf);
        Ok(out)
    }

    pub(crate) fn open(&self, sealed: &[u8], aad: &str) -> Result<Secret> {
        if let Some(rest) = sealed.strip_prefix(PLAIN) {
            return Ok(Secret::new(rest.to_vec()));
        }
        let Some(rest) = sealed.strip_prefix(SEALED) else {
            return Err(StoreError::Sealed("unknown format".into()));
        };
        let Some(key) = &self.key else {
            return Err(StoreError::Sealed(
                "the secret is encrypted and no store key is configured".into(),
            ));
        };
        if rest.len() < NONCE_LEN {
            return Err(StoreError::Sealed("truncated".into()));
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let mut nonce_b = [0u8; NONCE_LEN];
        nonce_b.copy_from_slice(nonce);
        let mut buf = ct.to_vec();
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce_b),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .map_err(|_| StoreError::Sealed("wrong store key or corrupt secret".into()))?;
        let out = Secret::new(plain.to_vec());
        zeroize::Zeroize::zeroize(&mut buf);
        Ok(out)
    }
}
