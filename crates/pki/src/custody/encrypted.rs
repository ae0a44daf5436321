//! Encrypted key files: PKCS#8 `ENCRYPTED PRIVATE KEY` (RFC 5958, PBES2 of
//! RFC 8018), the format `openssl pkey`/`openssl genpkey -aes256` read and
//! write.
//!
//! Portcullis writes PBES2 with **scrypt** (N = 2^14, r = 8, p = 1: 16 MiB;
//! OpenSSL refuses scrypt needing 32 MiB or more by default) and
//! AES-256-CBC; it reads PBES2 with scrypt or PBKDF2 (HMAC-SHA-256/384/512)
//! and AES-128/192/256-CBC, which covers what OpenSSL 1.1 and 3 write by
//! default. Argon2id cannot be expressed in PKCS#8 (there is no PBES2 KDF
//! identifier for it that OpenSSL knows), so this format stays on scrypt for
//! interoperability (`portcullis ca init --key-format pkcs8`); the default
//! for keys Portcullis generates is the Argon2id format of
//! [`super::native`], which only Portcullis reads.

use super::{Custody, Secret};
use crate::key::PrivateKey;
use crate::{PkiError, Result};
use pkcs8::der::Decode;
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo};
use zeroize::Zeroizing;

/// PEM label of an encrypted PKCS#8 key.
pub const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// Encrypts `key` under `passphrase` as PKCS#8 PEM (PBES2, scrypt,
/// AES-256-CBC). The PEM is not secret, but it is zeroed anyway.
pub fn encrypt_pem(key: &PrivateKey, passphrase: &Secret) -> Result<Zeroizing<String>> {
    if passphrase.expose().is_empty() {
        return Err(PkiError::Custody("the passphrase is empty".into()));
    }
    let der = key.to_pkcs8_der();
    let info = PrivateKeyInfo::from_der(&der)
        .map_err(|e| PkiError::Generate(format!("cannot re-read own PKCS#8: {e}")))?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt)
        .and_then(|_| aws_lc_rs::rand::fill(&mut iv))
        .map_err(|_| PkiError::Generate("no randomness".into()))?;
    let scrypt = pkcs8::pkcs5::scrypt::Params::new(14, 8, 1, 32)
        .map_err(|e| PkiError::Generate(format!("scrypt parameters: {e}")))?;
    let params = pkcs8::pkcs5::pbes2::Parameters::scrypt_aes256cbc(scrypt, &salt, &iv)
        .map_err(|e| PkiError::Generate(format!("PBES2 parameters: {e}")))?;
    let doc = info
        .encrypt_with_params(params, passphrase.expose())
        .map_err(|e| PkiError::Generate(format!("key encryption failed: {e}")))?;
    doc.to_pem(ENCRYPTED_LABEL, pkcs8::LineEnding::LF)
        .map_err(|e| PkiError::Generate(format!("PEM encoding failed: {e}")))
}

/// Decrypts an `ENCRYPTED PRIVATE KEY` (DER contents of the PEM block).
pub fn decrypt_der(der: &[u8], passphrase: &Secret) -> Result<PrivateKey> {
    let enc = EncryptedPrivateKeyInfo::from_der(der)
        .map_err(|_| PkiError::BadKey("corrupt encrypted private key".into()))?;
    // A wrong passphrase shows as bad padding or, rarely, as garbage that
    // does not parse: one message for both, and never the passphrase.
    let wrong = || PkiError::Custody("wrong passphrase or corrupt encrypted key".into());
    let doc = enc.decrypt(passphrase.expose()).map_err(|e| match e {
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::AlgorithmParametersInvalid {
            ..
        })
        | pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::UnsupportedAlgorithm { .. }) => {
            PkiError::BadKey(format!("unsupported key encryption: {e}"))
        }
        _ => wrong(),
    })?;
    PrivateKey::from_pkcs8_der(doc.as_bytes()).map_err(|_| wrong())
}

/// Reads a PEM private key, decrypting it when it is encrypted (PKCS#8
/// `ENCRYPTED PRIVATE KEY` or the native `PORTCULLIS ENCRYPTED PRIVATE KEY`
/// of [`super::native`]). Says
/// whether it was ([`Custody::Encrypted`]) or not ([`Custody::Plaintext`]).
pub fn read_pem(text: &str, passphrase: Option<&Secret>) -> Result<(PrivateKey, Custody)> {
    let block =
        pem::parse(text).map_err(|e| PkiError::BadKey(format!("not a PEM private key: {e}")))?;
    let native = block.tag() == super::native::NATIVE_LABEL;
    if block.tag() != ENCRYPTED_LABEL && !native {
        return Ok((PrivateKey::from_pem(text)?, Custody::Plaintext));
    }
    let Some(pass) = passphrase else {
        return Err(PkiError::Custody(
            "the key is encrypted: give its passphrase (PORTCULLIS_KEY_PASSPHRASE or --passphrase-file)"
                .into(),
        ));
    };
    let der = Zeroizing::new(block.into_contents());
    let key = if native {
        super::native::decrypt_contents(&der, pass)?
    } else {
        decrypt_der(&der, pass)?
    };
    Ok((key, Custody::Encrypted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyAlgorithm;

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let pass = Secret::new(b"correct horse".to_vec());
        let pem = encrypt_pem(&k, &pass).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let (again, c) = read_pem(&pem, Some(&pass)).unwrap();
        assert_eq!(c, Custody::Encrypted);
        assert_eq!(again.public_key_der(), k.public_key_der());
        let e = read_pem(&pem, Some(&Secret::new(b"wrong".to_vec()))).unwrap_err();
        assert!(matches!(e, PkiError::Custody(_)), "{e}");
        assert!(!e.to_string().contains("wrong\""));
        assert!(matches!(read_pem(&pem, None), Err(PkiError::Custody(_))));
        assert!(encrypt_pem(&k, &Secret::new(vec![])).is_err());
        let (_, c) = read_pem(&k.to_pem(), None).unwrap();
        assert_eq!(c, Custody::Plaintext);
    }

    #[test]
    fn read_pem_detects_the_native_label() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let pass = Secret::new(b"correct horse".to_vec());
        let pem = super::super::native::encrypt_pem_with(&k, &pass, 1024, 1, 1).unwrap();
        let (again, c) = read_pem(&pem, Some(&pass)).unwrap();
        assert_eq!(c, Custody::Encrypted);
        assert_eq!(again.public_key_der(), k.public_key_der());
        assert!(matches!(read_pem(&pem, None), Err(PkiError::Custody(_))));
    }
}
