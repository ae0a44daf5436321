//! CA keys inside a PKCS#11 token (an HSM, SoftHSM2) through the `cryptoki`
//! crate: the key is generated in the token as sensitive and
//! non-extractable, and every signature is made by the token.
//!
//! Supported: ECDSA P-256 and P-384 keys (`CKM_ECDSA` over a SHA-256/384
//! digest computed here; the token's raw `r||s` is DER-encoded for X.509).

use super::{Pkcs11Uri, Secret};
use crate::{PkiError, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::sync::Mutex;

fn tok(what: &str) -> impl Fn(cryptoki::error::Error) -> PkiError + '_ {
    move |e| PkiError::Token(format!("{what}: {e}"))
}

/// A logged-in session on the token named by a URI.
fn session(uri: &Pkcs11Uri, rw: bool) -> Result<(Pkcs11, Session)> {
    let ctx = Pkcs11::new(&uri.module_path).map_err(|e| {
        PkiError::Token(format!(
            "cannot load PKCS#11 module {}: {e}",
            uri.module_path.display()
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => return Err(PkiError::Token(format!("C_Initialize: {e}"))),
    }
    let slots = ctx.get_slots_with_token().map_err(tok("listing slots"))?;
    let slot = slots
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|i| i.label().trim_end() == uri.token)
                .unwrap_or(false)
        })
        .ok_or_else(|| PkiError::Token(format!("no token labelled {:?}", uri.token)))?;
    let s = if rw {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .map_err(tok("opening a session"))?;
    let pin: Secret = uri.read_pin()?;
    let pin_text = std::str::from_utf8(pin.expose())
        .map_err(|_| PkiError::Custody("the token PIN is not UTF-8".into()))?;
    s.login(UserType::User, Some(&AuthPin::from(pin_text)))
        .map_err(|e| match e {
            cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::PinIncorrect, _) => {
                PkiError::Custody("the token refused the PIN".into())
            }
            e => PkiError::Token(format!("login: {e}")),
        })?;
    Ok((ctx, s))
}

fn find(s: &Session, class: ObjectClass, label: &str) -> Result<Vec<ObjectHandle>> {
    s.find_objects(&[
        Attribute::Class(class),
        Attribute::Label(label.as_bytes().to_vec()),
    ])
    .map_err(tok("finding the key"))
}

/// DER of the named-curve OID for `EcParams`.
fn curve_params(alg: crate::key::KeyAlgorithm) -> Result<Vec<u8>> {
    use crate::key::KeyAlgorithm::*;
    Ok(match alg {
        // 1.2.840.10045.3.1.7
        EcdsaP256 => vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        // 1.3.132.0.34
        EcdsaP384 => vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
        other => {
            return Err(PkiError::BadKeyRequest(format!(
                "{other:?} keys are not supported in PKCS#11 tokens (use ecdsa 256 or 384)"
            )))
        }
    })
}

/// Generates a CA key pair inside the token: private half sensitive,
/// non-extractable, signing only. Refuses if the label is taken.
pub fn generate(uri: &Pkcs11Uri, alg: crate::key::KeyAlgorithm) -> Result<TokenKey> {
    let params = curve_params(alg)?;
    {
        let (_ctx, s) = session(uri, true)?;
        if !find(&s, ObjectClass::PRIVATE_KEY, &uri.object)?.is_empty() {
            return Err(PkiError::Token(format!(
                "the token already holds a key labelled {:?}",
                uri.object
            )));
        }
        let label = Attribute::Label(uri.object.as_bytes().to_vec());
        let id = Attribute::Id(uri.object.as_bytes().to_vec());
        s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Verify(true),
                Attribute::EcParams(params),
                label.clone(),
                id.clone(),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Decrypt(false),
                Attribute::Derive(false),
                label,
                id,
            ],
        )
        .map_err(tok("generating the key pair"))?;
    }
    TokenKey::open(uri)
}

/// A CA key in a token: a logged-in session and the key's handle.
pub struct TokenKey {
    session: Mutex<Session>,
    key: ObjectHandle,
    algorithm: &'static rcgen::SignatureAlgorithm,
    digest: &'static aws_lc_rs::digest::Algorithm,
    public_bits: Vec<u8>,
    // Kept last: the session must close before the module is finalised.
    _ctx: Pkcs11,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([in token])")
    }
}

impl TokenKey {
    /// Opens the key a URI names (private key by label; its public half
    /// from the matching public key object).
    pub fn open(uri: &Pkcs11Uri) -> Result<Self> {
        let (ctx, s) = session(uri, false)?;
        let key = match find(&s, ObjectClass::PRIVATE_KEY, &uri.object)?.as_slice() {
            [k] => *k,
            [] => {
                return Err(PkiError::Token(format!(
                    "no private key labelled {:?} in token {:?}",
                    uri.object, uri.token
                )))
            }
            _ => {
                return Err(PkiError::Token(format!(
                    "several private keys are labelled {:?}",
                    uri.object
                )))
            }
        };
        let kt = s
            .get_attributes(key, &[AttributeType::KeyType])
            .map_err(tok("reading the key type"))?;
        if !kt
            .iter()
            .any(|a| matches!(a, Attribute::KeyType(k) if *k == KeyType::EC))
        {
            return Err(PkiError::Token(
                "only EC keys are supported in tokens".into(),
            ));
        }
        let public = find(&s, ObjectClass::PUBLIC_KEY, &uri.object)?;
        let public = public
            .first()
            .ok_or_else(|| PkiError::Token(format!("no public key labelled {:?}", uri.object)))?;
        let attrs = s
            .get_attributes(*public, &[AttributeType::EcParams, AttributeType::EcPoint])
            .map_err(tok("reading the public key"))?;
        let (mut params, mut point) = (None, None);
        for a in attrs {
            match a {
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let (Some(params), Some(point)) = (params, point) else {
            return Err(PkiError::Token("the public key has no EC point".into()));
        };
        let (algorithm, digest): (_, &'static aws_lc_rs::digest::Algorithm) =
            if params == curve_params(crate::key::KeyAlgorithm::EcdsaP256)? {
                (&rcgen::PKCS_ECDSA_P256_SHA256, &aws_lc_rs::digest::SHA256)
            } else if params == curve_params(crate::key::KeyAlgorithm::EcdsaP384)? {
                (&rcgen::PKCS_ECDSA_P384_SHA384, &aws_lc_rs::digest::SHA384)
            } else {
                return Err(PkiError::Token("unsupported EC curve in token".into()));
            };
        // CKA_EC_POINT is the DER OCTET STRING of the uncompressed point
        // (some modules give the raw point).
        let public_bits = match point.as_slice() {
            [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest.to_vec(),
            [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest.to_vec(),
            raw => raw.to_vec(),
        };
        Ok(TokenKey {
            session: Mutex::new(s),
            key,
            algorithm,
            digest,
            public_bits,
            _ctx: ctx,
        })
    }

    /// The key's attributes that matter for custody, as the token reports
    /// them: (sensitive, extractable, always sensitive, never extractable).
    pub fn protection(&self) -> Result<(bool, bool, bool, bool)> {
        let s = self
            .session
            .lock()
            .map_err(|_| PkiError::Token("session lock poisoned".into()))?;
        let attrs = s
            .get_attributes(
                self.key,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                ],
            )
            .map_err(tok("reading key attributes"))?;
        let mut out = (false, true, false, false);
        for a in attrs {
            match a {
                Attribute::Sensitive(b) => out.0 = b,
                Attribute::Extractable(b) => out.1 = b,
                Attribute::AlwaysSensitive(b) => out.2 = b,
                Attribute::NeverExtractable(b) => out.3 = b,
                _ => {}
            }
        }
        Ok(out)
    }

    pub(crate) fn public_key_bits(&self) -> &[u8] {
        &self.public_bits
    }

    pub(crate) fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        let digest = aws_lc_rs::digest::digest(self.digest, msg);
        let raw = {
            let s = self
                .session
                .lock()
                .map_err(|_| rcgen::Error::RemoteKeyError)?;
            s.sign(&Mechanism::Ecdsa, self.key, digest.as_ref())
                .map_err(|e| {
                    tracing::error!(error = %e, "PKCS#11 signing failed");
                    rcgen::Error::RemoteKeyError
                })?
        };
        ecdsa_raw_to_der(&raw).ok_or(rcgen::Error::RemoteKeyError)
    }
}

/// PKCS#11 ECDSA signatures are `r || s`; X.509 wants
/// `SEQUENCE { INTEGER r, INTEGER s }`.
fn ecdsa_raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || raw.len() & 1 == 1 {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let int = |v: &[u8]| -> Vec<u8> {
        let v = match v.iter().position(|b| *b != 0) {
            Some(i) => &v[i..],
            None => &[0u8][..],
        };
        let mut out = vec![0x02];
        let pad = v[0] & 0x80 != 0;
        out.push(u8::try_from(v.len() + usize::from(pad)).unwrap_or(0));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
        out
    };
    let body: Vec<u8> = [int(r), int(s)].concat();
    let mut out = vec![0x30];
    if body.len() < 0x80 {
        out.push(u8::try_from(body.len()).ok()?);
    } else {
        out.push(0x81);
        out.push(u8::try_from(body.len()).ok()?);
    }
    out.extend(body);
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn raw_signature_to_der() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80;
        raw[63] = 1;
        let der = super::ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(&der[..4], &[0x30, 38, 0x02, 33]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 1, 1]);
        assert!(super::ecdsa_raw_to_der(&[1, 2, 3]).is_none());
    }
}
