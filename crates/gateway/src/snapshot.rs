//! Sites from in-memory PEM bytes (the control-plane store), one hostname
//! at a time, so a change rebuilds only the hostname it touches.
//!
//! [`SiteBuilder`] shares what hostnames have in common: one pooled HTTP
//! client for every `http://` origin, and one [`TrustStore`] per distinct
//! CA set (100,000 hostnames of one tenant share one store). Combine with
//! [`Sites::with_changes`](crate::Sites::with_changes) to apply a change
//! copy-on-write.

use std::collections::HashMap;
use std::sync::Arc;

use client_auth::{pem_or_der_certs, pem_or_der_crls, TrustStore};
use hyper::http::uri::Scheme;
use hyper::http::Uri;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::PrivateKeyDer;

use crate::config::{BlockResponse, Mode, OriginProtocol, OriginTimeouts};
use crate::edge::config::EdgeConfig;
use crate::identity::IdentityHeaders;
use crate::origin::{http_client, https_client, OriginClient, Target};
use crate::site::Site;
use crate::tls;

/// A CA set member: certificates (PEM or DER) and an optional CRL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaSource {
    /// One or more CA certificates.
    pub pem: Vec<u8>,
    /// CRL (PEM or DER).
    pub crl: Option<Vec<u8>>,
}

/// TLS toward an `https://` origin.
pub struct OriginTlsSource<'a> {
    /// CAs the origin's certificate must chain to.
    pub ca_pem: &'a [u8],
    /// Client certificate chain and key presented to the origin.
    pub client: Option<(&'a [u8], &'a [u8])>,
}

/// One hostname, described in memory.
pub struct SiteSource<'a> {
    /// SNI name (lowercased here).
    pub name: &'a str,
    /// Server certificate chain (PEM, leaf first).
    pub cert_pem: &'a [u8],
    /// Server private key (PEM). Never echoed in errors.
    pub key_pem: &'a [u8],
    /// Origin base URI.
    pub origin: Uri,
    /// TLS toward an `https://` origin (default roots are not used: an
    /// `https://` origin without it is an error).
    pub origin_tls: Option<OriginTlsSource<'a>>,
    /// mTLS mode.
    pub mode: Mode,
    /// Block response.
    pub block: BlockResponse,
    /// The CA set (ignored in mode `off`; must not be empty otherwise).
    pub cas: Vec<&'a CaSource>,
    /// Renamed identity headers and mapped certificate fields (see
    /// [`IdentityHeaders::from_settings`]).
    pub identity: IdentityHeaders,
    /// Tokens, rules and rate limits (see
    /// [`from_json`](crate::edge::config::from_json)); secrets inline only.
    pub edge: EdgeConfig,
}

/// Builds [`Site`]s from [`SiteSource`]s, sharing clients and trust stores.
pub struct SiteBuilder {
    provider: Arc<CryptoProvider>,
    timeouts: OriginTimeouts,
    idle_timeout: std::time::Duration,
    trust: HashMap<Vec<u8>, TrustStore>,
}

/// Trust stores remembered at most (distinct CA sets); beyond, the cache
/// starts over.
const TRUST_CACHE: usize = 10_000;

impl std::fmt::Debug for SiteBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteBuilder")
            .field("trust_sets", &self.trust.len())
            .finish()
    }
}

impl SiteBuilder {
    /// A builder whose sites use `timeouts` toward origins.
    pub fn new(timeouts: OriginTimeouts) -> SiteBuilder {
        SiteBuilder {
            provider: tls::provider(),
            timeouts,
            idle_timeout: crate::config::DEFAULT_IDLE_TIMEOUT,
            trust: HashMap::new(),
        }
    }

    /// Idle client connections of the sites built are closed after `d`
    /// (`server.idle_timeout`).
    pub fn with_idle_timeout(mut self, d: std::time::Duration) -> SiteBuilder {
        self.idle_timeout = d;
        self
    }

    /// The trust store of a CA set, shared with every other hostname that
    /// has the same set (same bytes).
    fn trust_store(&mut self, cas: &[&CaSource]) -> Result<TrustStore, String> {
        let mut key = Vec::new();
        for ca in cas {
            key.extend_from_slice(&(ca.pem.len() as u64).to_le_bytes());
            key.extend_from_slice(&ca.pem);
            let crl = ca.crl.as_deref().unwrap_or_default();
            key.extend_from_slice(&(crl.len() as u64).to_le_bytes());
            key.extend_from_slice(crl);
        }
        if let Some(t) = self.trust.get(&key) {
            return Ok(t.clone());
        }
        let mut b = TrustStore::builder();
        for ca in cas {
            let anchors = pem_or_der_certs(&ca.pem).map_err(|e| format!("CA certificates: {e}"))?;
            b = b.anchors(anchors.iter());
            if let Some(crl) = &ca.crl {
                for c in pem_or_der_crls(crl).map_err(|e| format!("CRL: {e}"))? {
                    b = b.crl(c);
                }
            }
        }
        let t = b.build().map_err(|e| format!("CA set: {e}"))?;
        if self.trust.len() >= TRUST_CACHE {
            self.trust.clear();
        }
        self.trust.insert(key, t.clone());
        Ok(t)
    }

    fn certified_key(
        &self,
        what: &str,
        cert: &[u8],
        key: &[u8],
    ) -> Result<Arc<CertifiedKey>, String> {
        let chain = pem_or_der_certs(cert).map_err(|e| format!("{what} certificate: {e}"))?;
        let key_der = PrivateKeyDer::from_pem_slice(key).map_err(|_| {
            format!("{what} key: no usable PEM private key (PKCS#8, PKCS#1 or SEC1)")
        })?;
        let signer = self
            .provider
            .key_provider
            .load_private_key(key_der)
            .map_err(|e| format!("{what} key: unusable: {e}"))?;
        let ck = CertifiedKey::new(chain, signer);
        match ck.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                Ok(Arc::new(ck))
            }
            Err(_) => Err(format!("the {what} key does not match its certificate")),
        }
    }

    /// Builds one site. The error names the hostname and the problem,
    /// never key material.
    pub fn build(&mut self, src: &SiteSource<'_>) -> Result<Arc<Site>, String> {
        let name = src.name.to_ascii_lowercase();
        let at = |e: String| format!("hostname {name:?}: {e}");
        let certified = self
            .certified_key("server", src.cert_pem, src.key_pem)
            .map_err(at)?;
        let trust = if src.mode == Mode::Off {
            None
        } else if src.cas.is_empty() {
            return Err(at(format!(
                "mode {} needs at least one CA; not served",
                src.mode.as_str()
            )));
        } else {
            Some(self.trust_store(&src.cas).map_err(at)?)
        };
        let scheme = src.origin.scheme().cloned().unwrap_or(Scheme::HTTP);
        let authority = src
            .origin
            .authority()
            .cloned()
            .ok_or_else(|| at(format!("origin {} has no host", src.origin)))?;
        // Every site has its own pooled origin client (the client is bound
        // to the origin's address); store hostnames speak HTTP/1.1 to it.
        let (https, client) = if scheme == Scheme::HTTPS {
            let o = src
                .origin_tls
                .as_ref()
                .ok_or_else(|| at("an https:// origin needs origin CAs".into()))?;
            let mut roots = rustls::RootCertStore::empty();
            for c in pem_or_der_certs(o.ca_pem).map_err(|e| at(format!("origin CA: {e}")))? {
                roots.add(c).map_err(|e| at(format!("origin CA: {e}")))?;
            }
            let client = match o.client {
                None => None,
                Some((c, k)) => Some(self.certified_key("origin-pull", c, k).map_err(at)?),
            };
            let c = https_client(&src.origin, roots, client, self.timeouts)
                .map_err(|e| at(format!("origin {}: {e}", src.origin)))?;
            (Some(c.clone()), OriginClient::Https(c))
        } else {
            (
                None,
                OriginClient::Http(http_client(&src.origin, self.timeouts)),
            )
        };
        let own = name
            .parse::<hyper::http::uri::Authority>()
            .map_err(|_| at("the name is not a URI authority".into()))?;
        let http = match &client {
            OriginClient::Http(c) => c.clone(),
            OriginClient::Https(_) => http_client(&src.origin, self.timeouts),
        };
        let target = Target {
            scheme: scheme.clone(),
            authority: authority.clone(),
            client: client.clone(),
            upgrade: client,
            protocol: OriginProtocol::Http1,
        };
        // Stored policies have their secrets inline: no file is read.
        let no_files = |p: &std::path::Path| -> std::io::Result<Vec<u8>> {
            Err(std::io::Error::other(format!(
                "{} is not read for a stored policy",
                p.display()
            )))
        };
        let mut problems = Vec::new();
        let edge = crate::edge::EdgePolicy::build(
            &format!("hostname {name:?}"),
            &src.edge,
            &no_files,
            &mut problems,
        );
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let tls = tls::server_config(self.provider.clone(), certified, src.mode)
            .map_err(|e| at(format!("TLS configuration: {e}")))?;
        Ok(Arc::new(Site {
            name,
            mode: src.mode,
            tls: Arc::new(tls),
            trust,
            block: src.block.clone(),
            origin_scheme: scheme,
            origin_authority: authority,
            https,
            http,
            origin_timeouts: self.timeouts,
            origin: target,
            routes: Vec::new(),
            strip: src.identity.custom_names(),
            identity: src.identity.clone(),
            idle_timeout: self.idle_timeout,
            authority: own,
            edge,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sites;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};

    struct Material {
        ca: CaSource,
        cert: String,
        key: String,
        other_key: String,
    }

    fn material() -> Material {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("key");
        let ca_pem = ca.self_signed(&ca_key).expect("ca").pem();
        let issuer = Issuer::new(ca, ca_key);
        let p = CertificateParams::new(vec!["a.test".to_owned()]).expect("params");
        let k = KeyPair::generate().expect("key");
        Material {
            ca: CaSource {
                pem: ca_pem.into_bytes(),
                crl: None,
            },
            cert: p.signed_by(&k, &issuer).expect("sign").pem(),
            key: k.serialize_pem(),
            other_key: KeyPair::generate().expect("key").serialize_pem(),
        }
    }

    fn src<'a>(m: &'a Material, name: &'a str, mode: Mode) -> SiteSource<'a> {
        SiteSource {
            name,
            cert_pem: m.cert.as_bytes(),
            key_pem: m.key.as_bytes(),
            origin: Uri::from_static("http://127.0.0.1:9"),
            origin_tls: None,
            mode,
            block: BlockResponse::default(),
            cas: vec![&m.ca],
            identity: IdentityHeaders::default(),
            edge: EdgeConfig::default(),
        }
    }

    #[test]
    fn one_change_copies_one_shard_and_leaves_the_old_sites_alone() {
        let m = material();
        let mut b = SiteBuilder::new(OriginTimeouts::default());
        let names: Vec<String> = (0..2000).map(|i| format!("h{i}.test")).collect();
        let sites: Vec<_> = names
            .iter()
            .map(|n| b.build(&src(&m, n, Mode::Enforce)).expect("build"))
            .collect();
        // One trust store for the one CA set.
        assert_eq!(b.trust.len(), 1);
        let v1 = Sites::default().with_changes(sites, std::iter::empty::<&str>());
        assert_eq!(v1.len(), 2000);
        assert_eq!(v1.get("H7.TEST").map(|s| s.mode), Some(Mode::Enforce));

        let changed = b.build(&src(&m, "h7.test", Mode::Report)).expect("build");
        let added = b.build(&src(&m, "new.test", Mode::Off)).expect("build");
        let v2 = v1.with_changes([changed, added], ["h8.test", "absent.test"]);
        assert_eq!(v2.len(), 2000);
        assert_eq!(v2.get("h7.test").map(|s| s.mode), Some(Mode::Report));
        assert!(v2.get("h8.test").is_none());
        assert!(v2.get("new.test").is_some());
        // The old generation is untouched (open connections keep it).
        assert_eq!(v1.get("h7.test").map(|s| s.mode), Some(Mode::Enforce));
        assert!(v1.get("h8.test").is_some());
        assert!(v1.get("new.test").is_none());
        // At most three shards were copied; the others are shared.
        assert!(
            v1.shards_differing(&v2) <= 3,
            "{}",
            v1.shards_differing(&v2)
        );
        assert_eq!(v2.iter().count(), 2000);
    }

    #[test]
    fn bad_sources_are_refused_with_the_hostname_and_without_key_bytes() {
        let m = material();
        let mut b = SiteBuilder::new(OriginTimeouts::default());
        let mut s = src(&m, "a.test", Mode::Enforce);
        s.cas.clear();
        let e = b.build(&s).expect_err("no CA");
        assert!(
            e.contains("a.test") && e.contains("needs at least one CA"),
            "{e}"
        );

        let mut s = src(&m, "a.test", Mode::Off);
        s.key_pem = m.other_key.as_bytes();
        let e = b.build(&s).expect_err("mismatch");
        assert!(e.contains("does not match"), "{e}");

        let mut s = src(&m, "a.test", Mode::Off);
        s.key_pem = b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n";
        let e = b.build(&s).expect_err("garbage key");
        assert!(!e.contains("c2VjcmV0"), "{e}");

        let mut s = src(&m, "a.test", Mode::Off);
        s.origin = Uri::from_static("https://127.0.0.1:9");
        let e = b.build(&s).expect_err("https without CA");
        assert!(e.contains("origin CAs"), "{e}");

        let bad_ca = CaSource {
            pem: b"not a pem".to_vec(),
            crl: None,
        };
        let mut s = src(&m, "a.test", Mode::Report);
        s.cas = vec![&bad_ca];
        assert!(b.build(&s).is_err());
    }
}
