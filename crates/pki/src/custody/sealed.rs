//! M-of-N custody: the CA key is wrapped (AES-256-GCM) under a random
//! key-encryption key (KEK), and the KEK is split into N Shamir shares with
//! threshold M (the `blahaj` crate, GF(256)). Each share is encrypted to its
//! holder's passphrase (Argon2id → AES-256-GCM) in its own file.
//!
//! A [`SealedKey`] starts sealed and refuses to sign. Holders decrypt their
//! share locally and submit it; once M distinct, valid shares are in, the
//! KEK is recovered, the CA key unwrapped and the submitted shares wiped.
//! [`SealedKey::seal`] drops the key from memory again.
//!
//! The sealed key file records a SHA-256 digest of every share, so a wrong
//! or tampered share is refused on submission, naming its index, instead of
//! silently producing a wrong KEK.

use super::Secret;
use crate::key::PrivateKey;
use crate::{PkiError, Result};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};
use zeroize::Zeroizing;

const SEALED_FORMAT: &str = "portcullis-sealed-key/1";
const SHARE_FORMAT: &str = "portcullis-key-share/1";
const KEK_LEN: usize = 32;

/// Argon2id parameters for share files (OWASP's 19 MiB, 2 passes).
const ARGON_M_KIB: u32 = 19 * 1024;
const ARGON_T: u32 = 2;
const ARGON_P: u32 = 1;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn sha256(b: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b)
        .as_ref()
        .to_vec()
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| PkiError::Generate("no randomness".into()))?;
    Ok(b)
}

/// AES-256-GCM seal: returns nonce || ciphertext || tag.
fn aead_seal(key: &[u8], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    let k = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| PkiError::Generate("bad AEAD key".into()))?,
    );
    let nonce = random::<NONCE_LEN>()?;
    let mut buf = plain.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| PkiError::Generate("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

/// AES-256-GCM open of nonce || ciphertext || tag; `None` if it does not
/// authenticate.
fn aead_open(key: &[u8], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let (nonce, ct) = sealed.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = Zeroizing::new(ct.to_vec());
    let n = k.open_in_place(nonce, Aad::from(aad), &mut buf).ok()?.len();
    buf.truncate(n);
    Some(buf)
}

fn argon2id(pass: &Secret, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; 32]>> {
    let params = argon2::Params::new(m, t, p, Some(32))
        .map_err(|e| PkiError::Custody(format!("bad Argon2id parameters: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(pass.expose(), salt, out.as_mut())
        .map_err(|e| PkiError::Custody(format!("Argon2id failed: {e}")))?;
    Ok(out)
}

/// The sealed key file (JSON): public parts and the wrapped key.
#[derive(Debug, Serialize, Deserialize)]
struct SealedFile {
    format: String,
    /// Key identifier: hex SHA-256 of the public key (SPKI DER), 16 bytes.
    key_id: String,
    threshold: u8,
    shares: u8,
    /// SubjectPublicKeyInfo DER, base64.
    public_key: String,
    /// nonce || AES-256-GCM(KEK, PKCS#8 DER), base64; AAD = key_id.
    wrapped_key: String,
    /// Share index → hex SHA-256 of the share.
    share_digests: BTreeMap<u8, String>,
}

/// One holder's share file (JSON).
#[derive(Debug, Serialize, Deserialize)]
struct ShareFile {
    format: String,
    key_id: String,
    index: u8,
    threshold: u8,
    shares: u8,
    kdf: KdfParams,
    /// nonce || AES-256-GCM(argon2id(passphrase), share), base64; AAD =
    /// `format|key_id|index`.
    ciphertext: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct KdfParams {
    algorithm: String,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

fn share_aad(key_id: &str, index: u8) -> Vec<u8> {
    format!("{SHARE_FORMAT}|{key_id}|{index}").into_bytes()
}

/// What `portcullis ca split` writes: the sealed key file and one share
/// file per holder (JSON text; the share files are encrypted).
#[derive(Debug)]
pub struct Split {
    /// The sealed key file.
    pub sealed: String,
    /// Share files, index 1..=N in order.
    pub shares: Vec<String>,
}

/// Seals `key` under an M-of-N split; `passphrases[i]` protects share i+1.
pub fn split(key: &PrivateKey, threshold: u8, passphrases: &[Secret]) -> Result<Split> {
    let n = passphrases.len();
    if threshold < 2 {
        return Err(PkiError::Custody("the threshold must be at least 2".into()));
    }
    let n = u8::try_from(n)
        .ok()
        .filter(|n| *n >= threshold)
        .ok_or_else(|| {
            PkiError::Custody(format!("need between {threshold} and 255 shares, got {n}"))
        })?;
    if passphrases.iter().any(|p| p.expose().is_empty()) {
        return Err(PkiError::Custody("a share passphrase is empty".into()));
    }
    let spki = key.public_key_der();
    let key_id = hex::encode(&sha256(&spki)[..16]);
    let kek = Zeroizing::new(random::<KEK_LEN>()?);
    let wrapped = aead_seal(kek.as_ref(), key_id.as_bytes(), &key.to_pkcs8_der())?;
    let dealt: Vec<blahaj::Share> = blahaj::Sharks(threshold)
        .dealer(kek.as_ref())
        .take(usize::from(n))
        .collect();
    let mut digests = BTreeMap::new();
    let mut files = Vec::with_capacity(usize::from(n));
    for (share, pass) in dealt.iter().zip(passphrases) {
        let bytes = Zeroizing::new(Vec::<u8>::from(share));
        let index = share.x.0;
        digests.insert(index, hex::encode(sha256(&bytes)));
        let salt = random::<16>()?;
        let k = argon2id(pass, &salt, ARGON_M_KIB, ARGON_T, ARGON_P)?;
        let ct = aead_seal(k.as_ref(), &share_aad(&key_id, index), &bytes)?;
        let f = ShareFile {
            format: SHARE_FORMAT.into(),
            key_id: key_id.clone(),
            index,
            threshold,
            shares: n,
            kdf: KdfParams {
                algorithm: "argon2id".into(),
                m_cost_kib: ARGON_M_KIB,
                t_cost: ARGON_T,
                p_cost: ARGON_P,
                salt: b64().encode(salt),
            },
            ciphertext: b64().encode(ct),
        };
        files.push(to_json(&f)?);
    }
    let sealed = SealedFile {
        format: SEALED_FORMAT.into(),
        key_id,
        threshold,
        shares: n,
        public_key: b64().encode(&spki),
        wrapped_key: b64().encode(wrapped),
        share_digests: digests,
    };
    Ok(Split {
        sealed: to_json(&sealed)?,
        shares: files,
    })
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| PkiError::Generate(e.to_string()))
}

/// A decrypted share, ready to submit. Zeroed on drop; `Debug` shows only
/// its index.
pub struct ShareSecret {
    /// The sealed key it belongs to.
    pub key_id: String,
    /// Share index (1..=N).
    pub index: u8,
    bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ShareSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShareSecret(index {}, [secret elided])", self.index)
    }
}

impl ShareSecret {
    /// The share bytes (index byte then the KEK's share).
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }
}

/// Decrypts a share file with its holder's passphrase. A wrong passphrase
/// and a tampered file are told apart from a malformed file, never shown.
pub fn open_share(text: &str, passphrase: &Secret) -> Result<ShareSecret> {
    let f: ShareFile = serde_json::from_str(text)
        .map_err(|e| PkiError::Custody(format!("not a share file: {e}")))?;
    if f.format != SHARE_FORMAT || f.kdf.algorithm != "argon2id" {
        return Err(PkiError::Custody(format!(
            "unsupported share file format {:?}",
            f.format
        )));
    }
    // Refuse absurd costs before spending them.
    if f.kdf.m_cost_kib > 4 * 1024 * 1024 || f.kdf.t_cost > 64 || f.kdf.p_cost > 64 {
        return Err(PkiError::Custody(
            "share file KDF cost is out of range".into(),
        ));
    }
    let salt = b64()
        .decode(&f.kdf.salt)
        .map_err(|_| PkiError::Custody("share file salt is not base64".into()))?;
    let ct = b64()
        .decode(&f.ciphertext)
        .map_err(|_| PkiError::Custody("share file ciphertext is not base64".into()))?;
    let k = argon2id(
        passphrase,
        &salt,
        f.kdf.m_cost_kib,
        f.kdf.t_cost,
        f.kdf.p_cost,
    )?;
    let bytes = aead_open(k.as_ref(), &share_aad(&f.key_id, f.index), &ct).ok_or_else(|| {
        PkiError::Custody(format!(
            "share {}: wrong passphrase or tampered share file",
            f.index
        ))
    })?;
    if bytes.first() != Some(&f.index) {
        return Err(PkiError::Custody(format!(
            "share {}: the share does not match its index",
            f.index
        )));
    }
    Ok(ShareSecret {
        key_id: f.key_id,
        index: f.index,
        bytes,
    })
}

/// Where unsealing stands after a share was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UnsealStatus {
    /// True while the key cannot sign.
    pub sealed: bool,
    /// Distinct valid shares submitted so far (0 once unsealed).
    pub submitted: usize,
    /// Shares needed.
    pub threshold: u8,
}

/// A CA key sealed under M-of-N shares. Signs only while unsealed.
pub struct SealedKey {
    file: SealedFile,
    algorithm: &'static rcgen::SignatureAlgorithm,
    spki: Vec<u8>,
    public_bits: Vec<u8>,
    key: RwLock<Option<PrivateKey>>,
    pending: Mutex<BTreeMap<u8, Zeroizing<Vec<u8>>>>,
}

impl std::fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedKey")
            .field("key_id", &self.file.key_id)
            .field("threshold", &self.file.threshold)
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

impl SealedKey {
    /// Reads a sealed key file; the key starts sealed.
    pub fn open(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            PkiError::BadKey(format!("cannot read sealed key {}: {e}", path.display()))
        })?;
        Self::from_json(&text)
    }

    /// Parses a sealed key file.
    pub fn from_json(text: &str) -> Result<Self> {
        let file: SealedFile = serde_json::from_str(text)
            .map_err(|e| PkiError::BadKey(format!("not a sealed key file: {e}")))?;
        if file.format != SEALED_FORMAT {
            return Err(PkiError::BadKey(format!(
                "unsupported sealed key format {:?}",
                file.format
            )));
        }
        if file.threshold < 2 || file.share_digests.len() != usize::from(file.shares) {
            return Err(PkiError::BadKey("inconsistent sealed key file".into()));
        }
        let spki = b64()
            .decode(&file.public_key)
            .map_err(|_| PkiError::BadKey("sealed key: public key is not base64".into()))?;
        if hex::encode(&sha256(&spki)[..16]) != file.key_id {
            return Err(PkiError::BadKey(
                "sealed key: the key id does not match the public key".into(),
            ));
        }
        let (algorithm, public_bits) = super::spki_algorithm(&spki)?;
        Ok(SealedKey {
            file,
            algorithm,
            spki,
            public_bits,
            key: RwLock::new(None),
            pending: Mutex::new(BTreeMap::new()),
        })
    }

    /// The key identifier shares must carry.
    pub fn key_id(&self) -> &str {
        &self.file.key_id
    }

    /// True while the key cannot sign.
    pub fn is_sealed(&self) -> bool {
        self.key.read().map(|k| k.is_none()).unwrap_or(true)
    }

    /// Current status.
    pub fn status(&self) -> UnsealStatus {
        let submitted = self.pending.lock().map(|p| p.len()).unwrap_or(0);
        UnsealStatus {
            sealed: self.is_sealed(),
            submitted,
            threshold: self.file.threshold,
        }
    }

    /// Takes one holder's share (as [`ShareSecret::expose`] gives it).
    /// Refuses a share of another key, a malformed, wrong or repeated share
    /// with [`PkiError::Custody`], saying which. When the threshold is
    /// reached the key is unsealed and the shares are wiped.
    pub fn submit_share(&self, key_id: &str, share: &[u8]) -> Result<UnsealStatus> {
        if key_id != self.file.key_id {
            return Err(PkiError::Custody(
                "the share belongs to another sealed key".into(),
            ));
        }
        let index = match share.first() {
            Some(i) if share.len() == KEK_LEN + 1 && *i != 0 => *i,
            _ => return Err(PkiError::Custody("malformed share".into())),
        };
        let Some(digest) = self.file.share_digests.get(&index) else {
            return Err(PkiError::Custody(format!(
                "share {index} is not one of this key's shares"
            )));
        };
        let ok: bool = {
            let d = sha256(share);
            let want = hex::decode(digest).unwrap_or_default();
            aws_lc_rs::constant_time::verify_slices_are_equal(&d, &want).is_ok()
        };
        if !ok {
            return Err(PkiError::Custody(format!(
                "share {index} is wrong: it does not match the sealed key"
            )));
        }
        if !self.is_sealed() {
            return Ok(self.status());
        }
        let lock = || PkiError::Custody("unseal state lock poisoned".into());
        let mut pending = self.pending.lock().map_err(|_| lock())?;
        if pending.contains_key(&index) {
            return Err(PkiError::Custody(format!(
                "share {index} was already submitted"
            )));
        }
        pending.insert(index, Zeroizing::new(share.to_vec()));
        if pending.len() < usize::from(self.file.threshold) {
            return Ok(UnsealStatus {
                sealed: true,
                submitted: pending.len(),
                threshold: self.file.threshold,
            });
        }
        let shares: Vec<blahaj::Share> = pending
            .values()
            .filter_map(|b| blahaj::Share::try_from(b.as_slice()).ok())
            .collect();
        let kek = blahaj::Sharks(self.file.threshold)
            .recover(&shares)
            .map(Zeroizing::new)
            .map_err(|e| PkiError::Custody(format!("cannot recover the key: {e}")));
        pending.clear();
        let kek = kek?;
        let wrapped = b64()
            .decode(&self.file.wrapped_key)
            .map_err(|_| PkiError::BadKey("sealed key: wrapped key is not base64".into()))?;
        let der = aead_open(&kek, self.file.key_id.as_bytes(), &wrapped).ok_or_else(|| {
            PkiError::Custody("the shares do not unwrap the key (sealed key file tampered?)".into())
        })?;
        let key = PrivateKey::from_pkcs8_der(&der)?;
        if key.public_key_der() != self.spki {
            return Err(PkiError::KeyMismatch);
        }
        *self.key.write().map_err(|_| lock())? = Some(key);
        Ok(UnsealStatus {
            sealed: false,
            submitted: 0,
            threshold: self.file.threshold,
        })
    }

    /// Drops the key (and any submitted shares) from memory.
    pub fn seal(&self) {
        if let Ok(mut k) = self.key.write() {
            *k = None;
        }
        if let Ok(mut p) = self.pending.lock() {
            p.clear();
        }
    }

    pub(crate) fn public_key_bits(&self) -> &[u8] {
        &self.public_bits
    }

    pub(crate) fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        let k = self.key.read().map_err(|_| rcgen::Error::RemoteKeyError)?;
        match k.as_ref() {
            Some(k) => rcgen::SigningKey::sign(k, msg),
            None => Err(rcgen::Error::RemoteKeyError),
        }
    }
}
