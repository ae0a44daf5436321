//! Hostnames ready to serve: a validated [`Config`] plus the bytes of the
//! files it names, turned into TLS configs and trust stores.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use hyper::http::Uri;
use rustls::crypto::CryptoProvider;
use std::sync::Arc;

use client_auth::{pem_or_der_certs, pem_or_der_crls, CertificateDer, TrustStore};
use hyper::http::uri::{Authority, Scheme};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::PrivateKeyDer;

use crate::config::{BlockResponse, Config, ConfigErrors, Mode, OriginTimeouts, OriginTls};
use crate::origin::{http_client, https_client, HttpClient, HttpsClient};
use crate::tls;

/// One hostname, ready to serve.
#[derive(Debug)]
pub struct Site {
    /// SNI name, lowercase.
    pub name: String,
    /// mTLS mode.
    pub mode: Mode,
    /// The TLS config chosen for this SNI.
    pub tls: Arc<ServerConfig>,
    /// The CAs the client certificate is verified against (not `off`).
    pub trust: Option<TrustStore>,
    /// What `enforce` answers.
    pub block: BlockResponse,
    /// Origin scheme.
    pub origin_scheme: Scheme,
    /// Origin host and port.
    pub origin_authority: Authority,
    /// The pooled client for an `https://` origin (`None`: [`Site::http`]).
    pub https: Option<HttpsClient>,
    /// The pooled client for an `http://` origin.
    pub http: HttpClient,
    /// How long to wait on the origin.
    pub origin_timeouts: OriginTimeouts,
    /// Tokens, rules and rate limits (`None`: none configured).
    pub edge: Option<Arc<crate::edge::EdgePolicy>>,
}

/// All hostnames by SNI name. Immutable; a reload builds a new one.
#[derive(Debug, Default)]
pub struct Sites {
    by_name: HashMap<String, Arc<Site>>,
}

impl Sites {
    /// The site for an SNI name (case-insensitive).
    pub fn get(&self, sni: &str) -> Option<&Arc<Site>> {
        self.by_name.get(&sni.to_ascii_lowercase())
    }

    /// Number of hostnames.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Reads every file the config names through `read` and builds the
    /// sites; every problem (unreadable file, bad PEM, key not matching its
    /// certificate, unusable CA set) is listed.
    pub fn load(
        config: &Config,
        read: &dyn Fn(&Path) -> io::Result<Vec<u8>>,
    ) -> Result<Sites, ConfigErrors> {
        let mut p = Vec::new();
        let provider = tls::provider();
        let file = |path: &Path, p: &mut Vec<String>| match read(path) {
            Ok(b) => Some(b),
            Err(e) => {
                p.push(format!("cannot read {}: {e}", path.display()));
                None
            }
        };

        // CA sets by name: anchors and CRLs.
        let mut cas: HashMap<&str, (Vec<CertificateDer<'static>>, Vec<Vec<u8>>)> = HashMap::new();
        for ca in &config.cas {
            let mut anchors = Vec::new();
            let mut crls = Vec::new();
            if let Some(b) = file(&ca.pem, &mut p) {
                match pem_or_der_certs(&b) {
                    Ok(c) => anchors = c,
                    Err(e) => p.push(format!("ca {:?}: {}: {e}", ca.name, ca.pem.display())),
                }
            }
            if let Some(crl) = &ca.crl {
                if let Some(b) = file(crl, &mut p) {
                    match pem_or_der_crls(&b) {
                        Ok(c) => crls = c,
                        Err(e) => p.push(format!("ca {:?}: {}: {e}", ca.name, crl.display())),
                    }
                }
            }
            cas.insert(ca.name.as_str(), (anchors, crls));
        }

        let mut by_name = HashMap::new();
        for h in &config.hostnames {
            let at = format!("hostname {:?}", h.name);
            let certified = certified_key(&at, &h.cert, &h.key, &provider, &file, &mut p);
            let https = match &h.origin_tls {
                None => Ok(None),
                Some(o) => origin_client(
                    &at,
                    &h.origin,
                    o,
                    config.origin_timeouts,
                    &provider,
                    &file,
                    &mut p,
                ),
            };
            let trust = if h.mtls.mode == Mode::Off {
                None
            } else {
                let mut b = TrustStore::builder();
                for name in &h.mtls.cas {
                    if let Some((anchors, crls)) = cas.get(name.as_str()) {
                        b = b.anchors(anchors.iter());
                        for crl in crls {
                            b = b.crl(crl);
                        }
                    }
                }
                match b.build() {
                    Ok(t) => Some(t),
                    Err(e) => {
                        p.push(format!("{at}: CA set {:?}: {e}", h.mtls.cas));
                        None
                    }
                }
            };
            let edge = crate::edge::EdgePolicy::build(&at, &h.edge, read, &mut p);
            let (Some(certified), Some(authority), Ok(https)) =
                (certified, h.origin.authority().cloned(), https)
            else {
                continue;
            };
            if h.mtls.mode != Mode::Off && trust.is_none() {
                continue;
            }
            let tls = match tls::server_config(provider.clone(), certified, h.mtls.mode) {
                Ok(c) => c,
                Err(e) => {
                    p.push(format!("{at}: TLS configuration: {e}"));
                    continue;
                }
            };
            by_name.insert(
                h.name.clone(),
                Arc::new(Site {
                    name: h.name.clone(),
                    mode: h.mtls.mode,
                    tls: Arc::new(tls),
                    trust,
                    block: h.mtls.block.clone(),
                    origin_scheme: h.origin.scheme().cloned().unwrap_or(Scheme::HTTP),
                    origin_authority: authority,
                    https,
                    http: http_client(config.origin_timeouts),
                    origin_timeouts: config.origin_timeouts,
                    edge,
                }),
            );
        }
        if p.is_empty() {
            Ok(Sites { by_name })
        } else {
            Err(ConfigErrors(p))
        }
    }
}

pub(crate) type ReadFn<'a> = dyn Fn(&Path, &mut Vec<String>) -> Option<Vec<u8>> + 'a;

/// A certificate chain and its key, checked to match. The key's bytes are
/// never printed: errors name the file only.
pub(crate) fn certified_key(
    at: &str,
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
    file: &ReadFn<'_>,
    p: &mut Vec<String>,
) -> Option<Arc<CertifiedKey>> {
    let chain = file(cert, p).and_then(|b| match pem_or_der_certs(&b) {
        Ok(c) => Some(c),
        Err(e) => {
            p.push(format!("{at}: {}: {e}", cert.display()));
            None
        }
    });
    let key_der = file(key, p).and_then(|b| match PrivateKeyDer::from_pem_slice(&b) {
        Ok(k) => Some(k),
        Err(_) => {
            p.push(format!(
                "{at}: {}: no usable PEM private key (PKCS#8, PKCS#1 or SEC1)",
                key.display()
            ));
            None
        }
    });
    let (chain, key_der) = (chain?, key_der?);
    match provider.key_provider.load_private_key(key_der) {
        Ok(signer) => {
            let ck = CertifiedKey::new(chain, signer);
            match ck.keys_match() {
                Ok(())
                | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                    Some(Arc::new(ck))
                }
                Err(_) => {
                    p.push(format!(
                        "{at}: the key {} does not match the certificate {}",
                        key.display(),
                        cert.display()
                    ));
                    None
                }
            }
        }
        Err(e) => {
            p.push(format!("{at}: {}: unusable key: {e}", key.display()));
            None
        }
    }
}

/// The pooled client of an `https://` origin.
fn origin_client(
    at: &str,
    origin: &Uri,
    o: &OriginTls,
    timeouts: OriginTimeouts,
    provider: &CryptoProvider,
    file: &ReadFn<'_>,
    p: &mut Vec<String>,
) -> Result<Option<HttpsClient>, ()> {
    let mut roots = rustls::RootCertStore::empty();
    let before = p.len();
    if let Some(b) = file(&o.ca, p) {
        match pem_or_der_certs(&b) {
            Ok(certs) => {
                for c in certs {
                    if let Err(e) = roots.add(c) {
                        p.push(format!("{at}: origin_ca {}: {e}", o.ca.display()));
                    }
                }
            }
            Err(e) => p.push(format!("{at}: origin_ca {}: {e}", o.ca.display())),
        }
    }
    let client = match &o.client {
        None => None,
        Some((c, k)) => Some(certified_key(at, c, k, provider, file, p).ok_or(())?),
    };
    if p.len() != before {
        return Err(());
    }
    match https_client(origin, roots, client, timeouts) {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            p.push(format!("{at}: origin {origin}: {e}"));
            Err(())
        }
    }
}
