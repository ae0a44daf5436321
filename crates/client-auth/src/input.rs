//! Decoding PEM/DER bytes the caller has already read.

use rustls_pki_types::CertificateDer;

use crate::Error;

fn looks_like_pem(b: &[u8]) -> bool {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    b[start..].starts_with(b"-----BEGIN")
}

fn pem_blocks(bytes: &[u8], tag: &str, what: &'static str) -> Result<Vec<Vec<u8>>, Error> {
    let blocks = pem::parse_many(bytes).map_err(|e| Error::Decode {
        what,
        reason: e.to_string(),
    })?;
    let out: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|p| p.tag() == tag)
        .map(|p| p.into_contents())
        .collect();
    if out.is_empty() {
        return Err(Error::Decode {
            what,
            reason: format!("no PEM block labelled {tag}"),
        });
    }
    Ok(out)
}

/// All `CERTIFICATE` blocks of a PEM text, in order. None is an error.
pub fn pem_certs(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    Ok(pem_blocks(bytes, "CERTIFICATE", "certificate")?
        .into_iter()
        .map(CertificateDer::from)
        .collect())
}

/// PEM (any number of certificates) or one DER certificate.
pub fn pem_or_der_certs(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    if looks_like_pem(bytes) {
        pem_certs(bytes)
    } else if bytes.is_empty() {
        Err(Error::Decode {
            what: "certificate",
            reason: "empty input".into(),
        })
    } else if bytes[0] != 0x30 {
        // A DER certificate is a SEQUENCE; anything else is not one.
        Err(Error::Decode {
            what: "certificate",
            reason: "neither PEM nor DER".into(),
        })
    } else {
        Ok(vec![CertificateDer::from(bytes.to_vec())])
    }
}

/// PEM (`X509 CRL` blocks) or one DER CRL, as DER.
pub fn pem_or_der_crls(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    if looks_like_pem(bytes) {
        pem_blocks(bytes, "X509 CRL", "CRL")
    } else if bytes.is_empty() {
        Err(Error::Decode {
            what: "CRL",
            reason: "empty input".into(),
        })
    } else if bytes[0] != 0x30 {
        Err(Error::Decode {
            what: "CRL",
            reason: "neither PEM nor DER".into(),
        })
    } else {
        Ok(vec![bytes.to_vec()])
    }
}
