//! Identities whose private key stays in a PKCS#11 token: `pki`'s custody
//! key ([`pki::custody::CaKey`]) behind rustls' signing interface. Token
//! keys are ECDSA (P-256 or P-384); the token signs each handshake's
//! CertificateVerify.

use std::path::Path;
use std::sync::Arc;

use client_auth::pem_or_der_certs;
use pki::custody::{CaKey, KeyRef};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::site::ReadFn;

/// A custody key as a rustls signing key with one scheme.
#[derive(Debug)]
struct TokenSigningKey {
    key: CaKey,
    scheme: SignatureScheme,
    algorithm: SignatureAlgorithm,
}

impl SigningKey for TokenSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered.contains(&self.scheme).then(|| {
            Box::new(TokenSigner {
                key: self.key.clone(),
                scheme: self.scheme,
            }) as Box<dyn Signer>
        })
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }
}

#[derive(Debug)]
struct TokenSigner {
    key: CaKey,
    scheme: SignatureScheme,
}

impl Signer for TokenSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        rcgen::SigningKey::sign(&self.key, message)
            .map_err(|_| rustls::Error::General("the PKCS#11 token did not sign".into()))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// The certificate chain in `cert` with the token key `uri` named by a
/// `pkcs11:` URI; checks that the key is the certificate's. Problems go to
/// `p`, naming files but never the URI's query (it may hold a PIN).
pub(super) fn token_identity(
    at: &str,
    cert: &Path,
    uri: &str,
    file: &ReadFn<'_>,
    p: &mut Vec<String>,
) -> Option<Arc<CertifiedKey>> {
    let chain = file(cert, p).and_then(|b| match pem_or_der_certs(&b) {
        Ok(c) if !c.is_empty() => Some(c),
        Ok(_) => {
            p.push(format!("{at}: {}: no certificate", cert.display()));
            None
        }
        Err(e) => {
            p.push(format!("{at}: {}: {e}", cert.display()));
            None
        }
    });
    let key = KeyRef::parse(uri)
        .and_then(|r| CaKey::open(&r, None))
        .map_err(|e| p.push(format!("{at}: key (PKCS#11 token): {e}")))
        .ok();
    let (chain, key) = (chain?, key?);
    let alg = rcgen::PublicKeyData::algorithm(&key);
    let (scheme, algorithm) = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureAlgorithm::ECDSA,
        )
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            SignatureAlgorithm::ECDSA,
        )
    } else {
        p.push(format!(
            "{at}: key (PKCS#11 token): only ECDSA P-256 and P-384 token keys can sign TLS handshakes"
        ));
        return None;
    };
    let leaf_key = x509_parser::parse_x509_certificate(&chain[0])
        .ok()
        .map(|(_, c)| c.public_key().subject_public_key.data.to_vec());
    if leaf_key.as_deref() != Some(rcgen::PublicKeyData::der_bytes(&key)) {
        p.push(format!(
            "{at}: the key in the PKCS#11 token does not match the certificate {}",
            cert.display()
        ));
        return None;
    }
    Some(Arc::new(CertifiedKey::new(
        chain,
        Arc::new(TokenSigningKey {
            key,
            scheme,
            algorithm,
        }),
    )))
}
