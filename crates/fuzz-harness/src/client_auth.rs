//! Targets for what clients hand to `pki`/`client-auth`: certificates
//! (PEM/DER), chains, CRLs.

use client_auth::{CertFacts, CertificateDer, UnixTime};

use crate::fixtures::{leaf, pki};
use crate::headers::assert_header_value;
use crate::Input;

/// One certificate, PEM or DER: `pki::info::cert_info` (what `certinfo`
/// answers) and `CertFacts` (what the origin is told). Every identity
/// header made from a parsed certificate must be a valid header value.
pub fn certificate(data: &[u8]) {
    let _ = pki::info::cert_info(data);
    let Ok(certs) = client_auth::pem_or_der_certs(data) else {
        return;
    };
    for c in &certs {
        let Ok(facts) = CertFacts::from_der(c) else {
            continue;
        };
        let verdict = pki().store.verify(std::slice::from_ref(c), UnixTime::now());
        for (name, value) in client_auth::headers::identity_headers(&verdict, Some(&facts), &certs)
        {
            assert_header_value(name, &value);
        }
    }
}

/// CRLs (PEM or DER) loaded next to the fuzz root; the leaf is then
/// verified against the new store.
pub fn crl(data: &[u8]) {
    let Ok(crls) = client_auth::pem_or_der_crls(data) else {
        return;
    };
    if let Ok(store) = pki().store.with_crls(&crls) {
        let verdict = store.verify(&[leaf()], UnixTime::now());
        assert_header_value("client-cert-status", verdict.status());
    }
}

/// A chain as a client presents it: PEM (any number of blocks) or DER
/// certificates each preceded by a 2-byte length, the leaf first,
/// verified against the fuzz root at a time chosen by the input. Never
/// panics, and the verdict fits in headers.
pub fn chain_verify(data: &[u8]) {
    let mut inp = Input::new(data);
    let when = u64::from(inp.byte()) << 24 | u64::from(inp.byte()) << 16;
    let pem = inp.flag();
    let rest = inp.rest();
    let chain: Vec<CertificateDer<'static>> = if pem {
        client_auth::pem_certs(rest).unwrap_or_default()
    } else {
        let mut out = Vec::new();
        let mut r = rest;
        while r.len() >= 2 && out.len() < 16 {
            let n = usize::from(u16::from_be_bytes([r[0], r[1]])).min(r.len() - 2);
            out.push(CertificateDer::from(r[2..2 + n].to_vec()));
            r = &r[2 + n..];
        }
        out
    };
    let now = if when == 0 {
        UnixTime::now()
    } else {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(when * 16))
    };
    let verdict = pki().store.verify(&chain, now);
    assert_header_value("client-cert-status", verdict.status());
    if let Some(r) = verdict.reason() {
        assert_header_value("client-cert-error", r.as_str());
    }
}
