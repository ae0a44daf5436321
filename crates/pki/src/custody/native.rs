//! Portcullis-native encrypted key files: the default for CA keys that
//! `portcullis ca init` writes.
//!
//! A PEM block labelled `PORTCULLIS ENCRYPTED PRIVATE KEY` whose contents
//! are UTF-8 JSON (serde), versioned by its `format` field:
//!
//! ```json
//! {"format":"portcullis-encrypted-key/1",
//!  "kdf":{"algorithm":"argon2id","version":19,"m_cost_kib":65536,"t_cost":3,"p_cost":1,"salt":"<b64 16 bytes>"},
//!  "cipher":"aes-256-gcm","nonce":"<b64 12 bytes>",
//!  "check":"<b64 16 bytes>","ciphertext":"<b64 PKCS#8 DER + 16-byte tag>"}
//! ```
//!
//! Argon2id(passphrase, salt, m, t, p) gives 64 bytes: the first 32 are the
//! AES-256-GCM key, SHA-256 of the last 32 (truncated to 16 bytes) is
//! `check`, which tells a wrong passphrase apart from a tampered
//! ciphertext. The AAD is the header (every field but `ciphertext`) in a
//! fixed text form, see [`aad`], so no header field can be changed without
//! the file failing to decrypt.
//!
//! Only Portcullis reads this format; `--key-format pkcs8` writes the
//! OpenSSL-readable PKCS#8 of [`super::encrypted`] instead.

use super::Secret;
use crate::key::PrivateKey;
use crate::{PkiError, Result};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// PEM label of a Portcullis-native encrypted key.
pub const NATIVE_LABEL: &str = "PORTCULLIS ENCRYPTED PRIVATE KEY";

const FORMAT: &str = "portcullis-encrypted-key/1";
const CIPHER: &str = "aes-256-gcm";
const KDF: &str = "argon2id";
const SALT_LEN: usize = 16;
const CHECK_LEN: usize = 16;

/// Argon2id cost written (RFC 9106's second recommended option, with one
/// lane: 64 MiB, 3 passes).
pub const ARGON_M_KIB: u32 = 64 * 1024;
/// Argon2id passes written.
pub const ARGON_T: u32 = 3;
/// Argon2id lanes written.
pub const ARGON_P: u32 = 1;

/// Costs above these are refused before being spent (a hostile file must
/// not make `ca serve` allocate gigabytes).
const MAX_M_KIB: u32 = 1024 * 1024;
const MAX_T: u32 = 64;
const MAX_P: u32 = 16;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: String,
    kdf: Kdf,
    cipher: String,
    nonce: String,
    check: String,
    ciphertext: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    algorithm: String,
    version: u32,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The AAD: the header fields, in order, joined by `|` (base64 values as
/// they appear in the file).
fn aad(f: &KeyFile) -> Vec<u8> {
    format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        f.format,
        f.kdf.algorithm,
        f.kdf.version,
        f.kdf.m_cost_kib,
        f.kdf.t_cost,
        f.kdf.p_cost,
        f.kdf.salt,
        f.cipher,
        f.nonce,
        f.check
    )
    .into_bytes()
}

/// 64 bytes of Argon2id: the AEAD key and the passphrase check.
fn derive(pass: &Secret, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; 64]>> {
    let params = argon2::Params::new(m, t, p, Some(64))
        .map_err(|e| PkiError::Custody(format!("bad Argon2id parameters: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 64]);
    a.hash_password_into(pass.expose(), salt, out.as_mut())
        .map_err(|e| PkiError::Custody(format!("Argon2id failed: {e}")))?;
    Ok(out)
}

fn check_value(derived: &[u8; 64]) -> Vec<u8> {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &derived[32..]);
    d.as_ref()[..CHECK_LEN].to_vec()
}

fn aead_key(derived: &[u8; 64]) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, &derived[..32])
        .map(LessSafeKey::new)
        .map_err(|_| PkiError::Custody("bad AEAD key".into()))
}

/// Encrypts `key` under `passphrase` in the native format (PEM), with the
/// default Argon2id cost.
pub fn encrypt_pem(key: &PrivateKey, passphrase: &Secret) -> Result<Zeroizing<String>> {
    encrypt_pem_with(key, passphrase, ARGON_M_KIB, ARGON_T, ARGON_P)
}

/// [`encrypt_pem`] with an explicit Argon2id cost (memory in KiB, passes,
/// lanes).
pub fn encrypt_pem_with(
    key: &PrivateKey,
    passphrase: &Secret,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
) -> Result<Zeroizing<String>> {
    if passphrase.expose().is_empty() {
        return Err(PkiError::Custody("the passphrase is empty".into()));
    }
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut salt)
        .and_then(|_| aws_lc_rs::rand::fill(&mut nonce))
        .map_err(|_| PkiError::Generate("no randomness".into()))?;
    let derived = derive(passphrase, &salt, m_cost_kib, t_cost, p_cost)?;
    let mut f = KeyFile {
        format: FORMAT.into(),
        kdf: Kdf {
            algorithm: KDF.into(),
            version: 0x13,
            m_cost_kib,
            t_cost,
            p_cost,
            salt: b64().encode(salt),
        },
        cipher: CIPHER.into(),
        nonce: b64().encode(nonce),
        check: b64().encode(check_value(&derived)),
        ciphertext: String::new(),
    };
    // Room for the tag up front: appending it must not reallocate and
    // leave a copy of the key behind.
    let der = key.to_pkcs8_der();
    let mut buf = Zeroizing::new(Vec::with_capacity(der.len() + AES_256_GCM.tag_len()));
    buf.extend_from_slice(&der);
    aead_key(&derived)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(&f)),
            &mut *buf,
        )
        .map_err(|_| PkiError::Generate("key encryption failed".into()))?;
    f.ciphertext = b64().encode(&*buf);
    let json = serde_json::to_vec(&f).map_err(|e| PkiError::Generate(e.to_string()))?;
    Ok(Zeroizing::new(pem::encode_config(
        &pem::Pem::new(NATIVE_LABEL, json),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )))
}

/// Decrypts the contents of a `PORTCULLIS ENCRYPTED PRIVATE KEY` block.
/// A wrong passphrase and a tampered file give different errors; neither
/// shows the passphrase.
pub fn decrypt_contents(contents: &[u8], passphrase: &Secret) -> Result<PrivateKey> {
    let corrupt = |what: &str| PkiError::Custody(format!("corrupt encrypted key file: {what}"));
    let f: KeyFile = serde_json::from_slice(contents).map_err(|_| corrupt("unreadable header"))?;
    if f.format != FORMAT {
        return Err(PkiError::BadKey(format!(
            "unsupported encrypted key format {:?} (this Portcullis reads {FORMAT})",
            f.format
        )));
    }
    if f.kdf.algorithm != KDF || f.kdf.version != 0x13 || f.cipher != CIPHER {
        return Err(PkiError::BadKey(format!(
            "unsupported key encryption {} v{} / {}",
            f.kdf.algorithm, f.kdf.version, f.cipher
        )));
    }
    if f.kdf.m_cost_kib > MAX_M_KIB || f.kdf.t_cost > MAX_T || f.kdf.p_cost > MAX_P {
        return Err(corrupt("Argon2id cost out of range"));
    }
    let dec = |s: &str, what: &str| b64().decode(s).map_err(|_| corrupt(what));
    let salt = dec(&f.kdf.salt, "salt is not base64")?;
    let nonce = dec(&f.nonce, "nonce is not base64")?;
    let check = dec(&f.check, "check is not base64")?;
    let ct = Zeroizing::new(dec(&f.ciphertext, "ciphertext is not base64")?);
    let nonce = Nonce::try_assume_unique_for_key(&nonce).map_err(|_| corrupt("bad nonce"))?;
    let derived = derive(
        passphrase,
        &salt,
        f.kdf.m_cost_kib,
        f.kdf.t_cost,
        f.kdf.p_cost,
    )?;
    let expect = check_value(&derived);
    if aws_lc_rs::constant_time::verify_slices_are_equal(&expect, &check).is_err() {
        return Err(PkiError::Custody(
            "wrong passphrase for the encrypted key".into(),
        ));
    }
    let mut buf = ct;
    let n = aead_key(&derived)?
        .open_in_place(nonce, Aad::from(aad(&f)), &mut buf)
        .map_err(|_| {
            PkiError::Custody(
                "the encrypted key file was tampered with or is corrupt (authentication failed)"
                    .into(),
            )
        })?
        .len();
    buf.truncate(n);
    PrivateKey::from_pkcs8_der(&buf).map_err(|_| corrupt("the decrypted key is not PKCS#8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyAlgorithm;

    fn cheap(k: &PrivateKey, p: &Secret) -> String {
        encrypt_pem_with(k, p, 1024, 1, 1).unwrap().to_string()
    }

    #[test]
    fn round_trip_wrong_passphrase_and_tampering() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let pass = Secret::new(b"correct horse".to_vec());
        let text = cheap(&k, &pass);
        assert!(text.starts_with("-----BEGIN PORTCULLIS ENCRYPTED PRIVATE KEY-----"));
        let block = pem::parse(&text).unwrap();
        let again = decrypt_contents(block.contents(), &pass).unwrap();
        assert_eq!(again.public_key_der(), k.public_key_der());

        let e = decrypt_contents(block.contents(), &Secret::new(b"hunter2".to_vec()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("wrong passphrase"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");

        let mut f: serde_json::Value = serde_json::from_slice(block.contents()).unwrap();
        // A flipped ciphertext byte.
        let mut ct = b64().decode(f["ciphertext"].as_str().unwrap()).unwrap();
        ct[3] ^= 1;
        let mut t = f.clone();
        t["ciphertext"] = b64().encode(&ct).into();
        let e = decrypt_contents(&serde_json::to_vec(&t).unwrap(), &pass).unwrap_err();
        assert!(e.to_string().contains("tampered"), "{e}");
        // A changed header field bound by the AAD (the nonce).
        let mut t = f.clone();
        t["nonce"] = b64().encode([7u8; NONCE_LEN]).into();
        let e = decrypt_contents(&serde_json::to_vec(&t).unwrap(), &pass).unwrap_err();
        assert!(e.to_string().contains("tampered"), "{e}");
        // Absurd costs are refused before Argon2id runs.
        f["kdf"]["m_cost_kib"] = (u32::MAX).into();
        let e = decrypt_contents(&serde_json::to_vec(&f).unwrap(), &pass).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        assert!(decrypt_contents(b"not json", &pass).is_err());
        assert!(encrypt_pem_with(&k, &Secret::new(vec![]), 1024, 1, 1).is_err());
    }
}
