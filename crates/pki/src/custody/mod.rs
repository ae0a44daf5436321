//! CA key custody: where a CA's private key lives and how it is used
//! without being handed around.
//!
//! A [`CaKey`] can sign (it implements [`rcgen::SigningKey`], so
//! [`crate::issue::CertificateAuthority`], [`crate::ocsp::OcspResponder`]
//! and [`crate::crl::make_crl`] take it as they are) but need not reveal the
//! key: it is either
//! - in memory, read from a PEM file that may be encrypted
//!   ([`native`]: Argon2id + AES-256-GCM, the default of `ca init`;
//!   [`encrypted`]: PKCS#8 PBES2, which `openssl pkey` reads);
//! - sealed under M-of-N key shares ([`sealed`]): it refuses to sign until
//!   enough holders have submitted their shares;
//! - inside a PKCS#11 token ([`pkcs11`], cargo feature `pkcs11`): every
//!   signature is made by the token.
//!
//! Which one is named by a [`KeyRef`]: a path, an RFC 7512 `pkcs11:` URI or
//! `sealed:PATH`.

pub mod encrypted;
pub mod native;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
pub mod sealed;

use crate::key::PrivateKey;
use crate::{PkiError, Result};
use std::path::PathBuf;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A secret typed by a person or read from a file: a key passphrase, a
/// token PIN. Zeroed on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }

    /// Reads a secret file; one trailing newline (`\n` or `\r\n`) is not
    /// part of the secret. An empty secret is refused.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let mut bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
            PkiError::Custody(format!("cannot read secret file {}: {e}", path.display()))
        })?);
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        let s = Secret::new(bytes.to_vec());
        if s.expose().is_empty() {
            return Err(PkiError::Custody(format!(
                "secret file {} is empty",
                path.display()
            )));
        }
        Ok(s)
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[secret elided]")
    }
}

/// Where a CA key is, as named on the command line or in a config
/// (CONTRACT section 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A PEM file: PKCS#8 (plaintext or encrypted), the native encrypted
    /// format, SEC1 or PKCS#1.
    File(PathBuf),
    /// An object in a PKCS#11 token.
    Pkcs11(Pkcs11Uri),
    /// A sealed key file written by `portcullis ca split`.
    Sealed(PathBuf),
}

impl KeyRef {
    /// Parses a key reference: `pkcs11:…` (RFC 7512), `sealed:PATH`, or
    /// else a file path.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Err(PkiError::BadKey("empty key reference".into()));
        }
        if s.starts_with("pkcs11:") {
            return Ok(KeyRef::Pkcs11(Pkcs11Uri::parse(s)?));
        }
        if let Some(p) = s.strip_prefix("sealed:") {
            if p.is_empty() {
                return Err(PkiError::BadKey("sealed: needs a path".into()));
            }
            return Ok(KeyRef::Sealed(PathBuf::from(p)));
        }
        Ok(KeyRef::File(PathBuf::from(s)))
    }
}

/// Where a token PIN comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// `pin-source=file:PATH` (or a bare path).
    File(PathBuf),
    /// `pin-value=…` (for tests; the URI then holds the PIN).
    Value(SecretText),
    /// No PIN in the URI: `PORTCULLIS_PKCS11_PIN` must hold it.
    Env,
}

/// A secret string that compares but never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(Zeroizing<String>);

impl SecretText {
    /// The secret.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[secret elided]")
    }
}

/// An RFC 7512 PKCS#11 URI, reduced to what Portcullis uses:
/// `pkcs11:token=LABEL;object=LABEL?module-path=PATH&pin-source=file:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// Token label.
    pub token: String,
    /// Key object label (`CKA_LABEL`).
    pub object: String,
    /// The PKCS#11 module (shared library).
    pub module_path: PathBuf,
    /// Where the user PIN comes from.
    pub pin: PinSource,
}

fn pct_decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| PkiError::BadKey("bad percent-encoding in pkcs11: URI".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PkiError::BadKey("pkcs11: URI is not UTF-8".into()))
}

impl Pkcs11Uri {
    /// Parses `pkcs11:path-attrs?query-attrs`. `token`, `object` and
    /// `module-path` are required; the PIN comes from `pin-source`,
    /// `pin-value` or else the `PORTCULLIS_PKCS11_PIN` environment variable.
    /// Other standard attributes are accepted and ignored.
    pub fn parse(s: &str) -> Result<Self> {
        let rest = s
            .strip_prefix("pkcs11:")
            .ok_or_else(|| PkiError::BadKey("not a pkcs11: URI".into()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut token, mut object, mut module, mut pin) = (None, None, None, None);
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (k, v) = attr.split_once('=').ok_or_else(|| {
                PkiError::BadKey(format!(
                    "pkcs11: URI attribute {k:?} has no value",
                    k = attr
                ))
            })?;
            match k {
                "token" => token = Some(pct_decode(v)?),
                "object" => object = Some(pct_decode(v)?),
                "id"
                | "type"
                | "manufacturer"
                | "model"
                | "serial"
                | "library-description"
                | "library-manufacturer"
                | "library-version"
                | "slot-description"
                | "slot-id"
                | "slot-manufacturer" => {}
                other => {
                    return Err(PkiError::BadKey(format!(
                        "unknown pkcs11: URI attribute {other:?}"
                    )))
                }
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            match k {
                "module-path" => module = Some(PathBuf::from(pct_decode(v)?)),
                "pin-source" => {
                    let v = pct_decode(v)?;
                    let p = v.strip_prefix("file:").unwrap_or(&v);
                    pin = Some(PinSource::File(PathBuf::from(p)));
                }
                "pin-value" => {
                    pin = Some(PinSource::Value(SecretText(Zeroizing::new(pct_decode(v)?))))
                }
                "module-name" => {}
                other => {
                    return Err(PkiError::BadKey(format!(
                        "unknown pkcs11: URI query attribute {other:?}"
                    )))
                }
            }
        }
        let need = |v: Option<String>, what: &str| {
            v.filter(|s| !s.is_empty())
                .ok_or_else(|| PkiError::BadKey(format!("pkcs11: URI needs {what}")))
        };
        Ok(Pkcs11Uri {
            token: need(token, "token=LABEL")?,
            object: need(object, "object=LABEL")?,
            module_path: module
                .ok_or_else(|| PkiError::BadKey("pkcs11: URI needs ?module-path=PATH".into()))?,
            pin: pin.unwrap_or(PinSource::Env),
        })
    }

    /// Reads the user PIN from where the URI says.
    pub fn read_pin(&self) -> Result<Secret> {
        match &self.pin {
            PinSource::File(p) => Secret::from_file(p),
            PinSource::Value(v) => Ok(Secret::new(v.expose().as_bytes().to_vec())),
            PinSource::Env => std::env::var("PORTCULLIS_PKCS11_PIN")
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| Secret::new(Zeroizing::new(v).as_bytes().to_vec()))
                .ok_or_else(|| {
                    PkiError::Custody(
                        "no token PIN: give pin-source=file:PATH in the URI or set PORTCULLIS_PKCS11_PIN"
                            .into(),
                    )
                }),
        }
    }
}

/// How a CA key is kept, for start-up messages and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Custody {
    /// A plaintext key file: anyone who can read the file holds the CA.
    Plaintext,
    /// A passphrase-encrypted key file, decrypted into memory.
    Encrypted,
    /// Sealed under M-of-N shares.
    Sealed,
    /// Inside a PKCS#11 token.
    Token,
}

impl Custody {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Custody::Plaintext => "plaintext",
            Custody::Encrypted => "encrypted",
            Custody::Sealed => "sealed",
            Custody::Token => "pkcs11",
        }
    }
}

// One per process, behind an Arc: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Source {
    Memory(PrivateKey, Custody),
    Sealed(sealed::SealedKey),
    #[cfg(feature = "pkcs11")]
    Token(pkcs11::TokenKey),
}

/// A CA signing key, wherever it is kept. Cheap to clone (a shared handle,
/// not a copy of the key); `Debug` shows only how it is kept.
#[derive(Clone)]
pub struct CaKey(Arc<Source>);

impl std::fmt::Debug for CaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CaKey({}, [private key elided])",
            self.custody().as_str()
        )
    }
}

impl CaKey {
    /// A key held in memory; `custody` says where it came from.
    pub fn in_memory(key: PrivateKey, custody: Custody) -> Self {
        CaKey(Arc::new(Source::Memory(key, custody)))
    }

    /// A sealed key (see [`sealed`]).
    pub fn sealed(key: sealed::SealedKey) -> Self {
        CaKey(Arc::new(Source::Sealed(key)))
    }

    /// A key in a PKCS#11 token.
    #[cfg(feature = "pkcs11")]
    pub fn token(key: pkcs11::TokenKey) -> Self {
        CaKey(Arc::new(Source::Token(key)))
    }

    /// Opens what a key reference names. `passphrase` is used for
    /// encrypted key files only.
    pub fn open(r: &KeyRef, passphrase: Option<&Secret>) -> Result<Self> {
        match r {
            KeyRef::File(p) => {
                let text =
                    Zeroizing::new(std::fs::read_to_string(p).map_err(|e| {
                        PkiError::BadKey(format!("cannot read {}: {e}", p.display()))
                    })?);
                let (key, custody) = encrypted::read_pem(&text, passphrase)?;
                Ok(CaKey::in_memory(key, custody))
            }
            KeyRef::Sealed(p) => Ok(CaKey::sealed(sealed::SealedKey::open(p)?)),
            #[cfg(feature = "pkcs11")]
            KeyRef::Pkcs11(u) => Ok(CaKey::token(pkcs11::TokenKey::open(u)?)),
            #[cfg(not(feature = "pkcs11"))]
            KeyRef::Pkcs11(_) => Err(PkiError::BadKey(
                "this build has no PKCS#11 support (cargo feature pkcs11)".into(),
            )),
        }
    }

    /// How the key is kept.
    pub fn custody(&self) -> Custody {
        match &*self.0 {
            Source::Memory(_, c) => *c,
            Source::Sealed(_) => Custody::Sealed,
            #[cfg(feature = "pkcs11")]
            Source::Token(_) => Custody::Token,
        }
    }

    /// True while the key cannot sign because it is sealed.
    pub fn is_sealed(&self) -> bool {
        match &*self.0 {
            Source::Sealed(s) => s.is_sealed(),
            _ => false,
        }
    }

    /// The sealed key, for unseal and seal calls.
    pub fn as_sealed(&self) -> Option<&sealed::SealedKey> {
        match &*self.0 {
            Source::Sealed(s) => Some(s),
            _ => None,
        }
    }

    /// Fails with [`PkiError::Sealed`] while the key is sealed: call before
    /// signing to tell "sealed" apart from a signing failure.
    pub fn ready(&self) -> Result<()> {
        if self.is_sealed() {
            Err(PkiError::Sealed)
        } else {
            Ok(())
        }
    }
}

impl rcgen::PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match &*self.0 {
            Source::Memory(k, _) => rcgen::PublicKeyData::der_bytes(k),
            Source::Sealed(s) => s.public_key_bits(),
            #[cfg(feature = "pkcs11")]
            Source::Token(t) => t.public_key_bits(),
        }
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match &*self.0 {
            Source::Memory(k, _) => rcgen::PublicKeyData::algorithm(k),
            Source::Sealed(s) => s.algorithm(),
            #[cfg(feature = "pkcs11")]
            Source::Token(t) => t.algorithm(),
        }
    }
}

impl rcgen::SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        match &*self.0 {
            Source::Memory(k, _) => rcgen::SigningKey::sign(k, msg),
            Source::Sealed(s) => s.sign(msg),
            #[cfg(feature = "pkcs11")]
            Source::Token(t) => t.sign(msg),
        }
    }
}

/// The rcgen algorithm for a public key given as SubjectPublicKeyInfo DER,
/// and the key's raw bits (what [`rcgen::PublicKeyData::der_bytes`] returns).
pub(crate) fn spki_algorithm(
    spki_der: &[u8],
) -> Result<(&'static rcgen::SignatureAlgorithm, Vec<u8>)> {
    use x509_parser::prelude::FromDer;
    use x509_parser::x509::SubjectPublicKeyInfo;
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|_| PkiError::BadKey("unparsable public key".into()))?;
    let oid = spki.algorithm.algorithm.to_id_string();
    let alg: &'static rcgen::SignatureAlgorithm = match oid.as_str() {
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => &rcgen::PKCS_ECDSA_P256_SHA256,
                "1.3.132.0.34" => &rcgen::PKCS_ECDSA_P384_SHA384,
                c => return Err(PkiError::BadKey(format!("unsupported EC curve {c}"))),
            }
        }
        "1.3.101.112" => &rcgen::PKCS_ED25519,
        "1.2.840.113549.1.1.1" => &rcgen::PKCS_RSA_SHA256,
        o => return Err(PkiError::BadKey(format!("unsupported key algorithm {o}"))),
    };
    Ok((alg, spki.subject_public_key.data.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_refs() {
        assert_eq!(
            KeyRef::parse("ca-key.pem").unwrap(),
            KeyRef::File("ca-key.pem".into())
        );
        assert_eq!(
            KeyRef::parse("sealed:/x/sealed.json").unwrap(),
            KeyRef::Sealed("/x/sealed.json".into())
        );
        let KeyRef::Pkcs11(u) = KeyRef::parse(
            "pkcs11:token=port%20cullis;object=root-ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:pin.txt",
        )
        .unwrap() else {
            panic!("not pkcs11")
        };
        assert_eq!(u.token, "port cullis");
        assert_eq!(u.object, "root-ca");
        assert_eq!(u.pin, PinSource::File("pin.txt".into()));
        assert!(KeyRef::parse("pkcs11:token=a?module-path=/m").is_err());
        assert!(KeyRef::parse("pkcs11:token=a;object=b").is_err());
        assert!(KeyRef::parse("pkcs11:token=a;object=b;bogus=1?module-path=/m").is_err());
        assert!(KeyRef::parse("pkcs11:token=%zz;object=b?module-path=/m").is_err());
        assert!(KeyRef::parse("").is_err());
        assert!(KeyRef::parse("sealed:").is_err());
    }

    #[test]
    fn debug_never_shows_pins_or_keys() {
        let r =
            KeyRef::parse("pkcs11:token=t;object=o?module-path=/m&pin-value=S3cretPin").unwrap();
        assert!(!format!("{r:?}").contains("S3cretPin"), "{r:?}");
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "[secret elided]");
        let k = CaKey::in_memory(
            PrivateKey::generate(crate::key::KeyAlgorithm::EcdsaP256).unwrap(),
            Custody::Plaintext,
        );
        assert_eq!(format!("{k:?}"), "CaKey(plaintext, [private key elided])");
    }
}
