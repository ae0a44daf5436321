//! Private keys: CFSSL key requests, generation, PEM in and out.

use crate::{PkiError, Result};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A CFSSL key request: `{"algo": "ecdsa", "size": 256}`.
///
/// Defaults to ECDSA P-256, as CFSSL does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRequest {
    /// `ecdsa`, `rsa` or `ed25519`.
    #[serde(default = "default_algo")]
    pub algo: String,
    /// Curve size for ECDSA (256, 384), modulus bits for RSA (2048, 3072, 4096).
    #[serde(default)]
    pub size: u32,
}

fn default_algo() -> String {
    "ecdsa".into()
}

impl Default for KeyRequest {
    fn default() -> Self {
        KeyRequest {
            algo: default_algo(),
            size: 256,
        }
    }
}

/// The key algorithms Portcullis issues and signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the default).
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA with a 2048-bit modulus, PKCS#1 v1.5 SHA-256 signatures.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
}

impl KeyRequest {
    /// Validates the request against the allowed set.
    pub fn algorithm(&self) -> Result<KeyAlgorithm> {
        match (self.algo.to_ascii_lowercase().as_str(), self.size) {
            ("ecdsa", 0 | 256) => Ok(KeyAlgorithm::EcdsaP256),
            ("ecdsa", 384) => Ok(KeyAlgorithm::EcdsaP384),
            ("ecdsa", s) => Err(PkiError::BadKeyRequest(format!(
                "ecdsa key size {s} is not allowed (use 256 or 384)"
            ))),
            ("ed25519", 0 | 256) => Ok(KeyAlgorithm::Ed25519),
            ("ed25519", s) => Err(PkiError::BadKeyRequest(format!(
                "ed25519 keys have no size choice (got {s})"
            ))),
            ("rsa", 0 | 2048) => Ok(KeyAlgorithm::Rsa2048),
            ("rsa", 3072) => Ok(KeyAlgorithm::Rsa3072),
            ("rsa", 4096) => Ok(KeyAlgorithm::Rsa4096),
            ("rsa", s) => Err(PkiError::BadKeyRequest(format!(
                "rsa key size {s} is not allowed (use 2048, 3072 or 4096)"
            ))),
            (a, _) => Err(PkiError::BadKeyRequest(format!(
                "unknown key algorithm {a:?} (use ecdsa, rsa or ed25519)"
            ))),
        }
    }
}

/// A private key held in memory. It cannot be printed: `Debug` shows
/// `[private key elided]`, and the PEM export is wrapped in [`Zeroizing`].
pub struct PrivateKey {
    inner: rcgen::KeyPair,
}

/// rcgen zeroizes its copy of the PKCS#8 DER only when asked; ask on drop.
/// (aws-lc clears the key it holds itself when it frees it.)
impl Drop for PrivateKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.inner);
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[private key elided]")
    }
}

impl PrivateKey {
    /// Generates a fresh key of the given algorithm.
    pub fn generate(alg: KeyAlgorithm) -> Result<Self> {
        let gen = |e: rcgen::Error| PkiError::Generate(format!("key generation failed: {e}"));
        let inner = match alg {
            KeyAlgorithm::EcdsaP256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlgorithm::EcdsaP384 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyAlgorithm::Ed25519 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519),
            KeyAlgorithm::Rsa2048 => {
                rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
            KeyAlgorithm::Rsa3072 => {
                rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
            }
            KeyAlgorithm::Rsa4096 => {
                rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096)
            }
        }
        .map_err(gen)?;
        Ok(PrivateKey { inner })
    }

    /// Reads a plaintext PEM private key: PKCS#8 (`PRIVATE KEY`), SEC1
    /// (`EC PRIVATE KEY`, as CFSSL writes) or PKCS#1 (`RSA PRIVATE KEY`).
    pub fn from_pem(pem_text: &str) -> Result<Self> {
        let block = pem::parse(pem_text)
            .map_err(|e| PkiError::BadKey(format!("not a PEM private key: {e}")))?;
        match block.tag() {
            "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" => {}
            "ENCRYPTED PRIVATE KEY" => {
                return Err(PkiError::BadKey(
                    "the key is encrypted: give its passphrase (PORTCULLIS_KEY_PASSPHRASE or --passphrase-file)".into(),
                ))
            }
            other => {
                return Err(PkiError::BadKey(format!(
                    "PEM block {other:?} is not a private key"
                )))
            }
        }
        let inner = rcgen::KeyPair::from_pem(pem_text)
            .map_err(|_| PkiError::BadKey("unsupported or corrupt private key".into()))?;
        Ok(PrivateKey { inner })
    }

    /// Reads an unencrypted PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let inner = rcgen::KeyPair::try_from(der)
            .map_err(|_| PkiError::BadKey("unsupported or corrupt private key".into()))?;
        Ok(PrivateKey { inner })
    }

    /// PKCS#8 DER of the key; zeroed when dropped.
    pub fn to_pkcs8_der(&self) -> zeroize::Zeroizing<Vec<u8>> {
        Zeroizing::new(self.inner.serialize_der())
    }

    /// PKCS#8 PEM of the key; zeroed when dropped.
    pub fn to_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.inner.serialize_pem())
    }

    /// The SubjectPublicKeyInfo DER of the public half.
    pub fn public_key_der(&self) -> Vec<u8> {
        use rcgen::PublicKeyData;
        self.inner.subject_public_key_info()
    }

    /// The key as an rcgen signing key.
    pub fn signing_key(&self) -> &rcgen::KeyPair {
        &self.inner
    }
}

impl rcgen::PublicKeyData for PrivateKey {
    fn der_bytes(&self) -> &[u8] {
        self.inner.der_bytes()
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.inner.algorithm()
    }
}

impl rcgen::SigningKey for PrivateKey {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        self.inner.sign(msg)
    }
}

/// One private key used by several signers of one process (certificates,
/// CRLs, OCSP) without copying the secret: a shared handle, not a clone of
/// the key material.
#[derive(Clone)]
pub struct SharedKey(std::sync::Arc<PrivateKey>);

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[private key elided]")
    }
}

impl From<PrivateKey> for SharedKey {
    fn from(k: PrivateKey) -> Self {
        SharedKey(std::sync::Arc::new(k))
    }
}

impl rcgen::PublicKeyData for SharedKey {
    fn der_bytes(&self) -> &[u8] {
        rcgen::PublicKeyData::der_bytes(&*self.0)
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        rcgen::PublicKeyData::algorithm(&*self.0)
    }
}

impl rcgen::SigningKey for SharedKey {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        rcgen::SigningKey::sign(&*self.0, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_p256() {
        assert_eq!(
            KeyRequest::default().algorithm().unwrap(),
            KeyAlgorithm::EcdsaP256
        );
        let r: KeyRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(r.algorithm().unwrap(), KeyAlgorithm::EcdsaP256);
    }

    #[test]
    fn refuses_sizes_outside_the_allowed_set() {
        for (a, s) in [
            ("rsa", 1024),
            ("rsa", 8192),
            ("ecdsa", 521),
            ("ecdsa", 128),
            ("dsa", 2048),
        ] {
            let r = KeyRequest {
                algo: a.into(),
                size: s,
            };
            assert!(
                matches!(r.algorithm(), Err(PkiError::BadKeyRequest(_))),
                "{a}/{s}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert_eq!(format!("{k:?}"), "[private key elided]");
        let pem = k.to_pem();
        let again = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(again.public_key_der(), k.public_key_der());
    }

    #[test]
    fn rejects_non_keys() {
        assert!(PrivateKey::from_pem("garbage").is_err());
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            PrivateKey::from_pem(cert),
            Err(PkiError::BadKey(_))
        ));
    }
}
