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

use crate::config::{
    BlockResponse, Config, ConfigErrors, IdentityHeaders, Mode, OriginProtocol, OriginTimeouts,
    OriginTls,
};
use crate::metrics::CertExpiry;
use crate::origin::{
    http_client, http_client_with, https_client_with, HttpClient, HttpsClient, OriginClient, Target,
};
use crate::tls;
use hyper::http::HeaderName;

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
    /// The hostname's origin (the same as the fields above, with the
    /// client for `Upgrade` requests).
    pub origin: Target,
    /// `[[hostname.route]]`: path prefix and its origin, longest prefix
    /// first.
    pub routes: Vec<(String, Target)>,
    /// Renamed identity headers and mapped certificate fields.
    pub identity: IdentityHeaders,
    /// Header names removed from every request on top of the contract
    /// ones: the hostname's renamed and mapped headers.
    pub strip: Vec<HeaderName>,
    /// Idle client connections are closed after this long
    /// (`server.idle_timeout`).
    pub idle_timeout: std::time::Duration,
    /// The hostname as a URI authority: the authority of origin request
    /// URIs (pool key, HTTP/2 `:authority`).
    pub authority: Authority,
    /// Tokens, rules and rate limits (`None`: none configured).
    pub edge: Option<Arc<crate::edge::EdgePolicy>>,
}

impl Site {
    /// Where a request for `path` goes: the route with the longest prefix
    /// of `path`, else the hostname's origin.
    pub fn target(&self, path: &str) -> &Target {
        self.routes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map_or(&self.origin, |(_, t)| t)
    }
}

/// Number of shards of [`Sites`]: a change copies one shard (about
/// 1/256 of the hostnames) and the shard table, never the whole map.
const SHARDS: usize = 256;

/// All hostnames by SNI name. Immutable; a reload builds a new one, and
/// [`Sites::with_changes`] derives one that shares every untouched shard
/// (copy-on-write), so one hostname changes without a full rebuild. A
/// lookup is two hash lookups whatever the number of hostnames.
#[derive(Debug, Default, Clone)]
pub struct Sites {
    /// Empty, or exactly [`SHARDS`] maps; a name lives in the shard its
    /// hash picks.
    shards: Vec<Arc<HashMap<String, Arc<Site>>>>,
    len: usize,
    /// Expiry of every certificate the config names (server, origin-pull,
    /// CA, origin CA), for the days-to-expiry gauges.
    certificates: Arc<Vec<CertExpiry>>,
}

fn shard_of(name: &str) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    // Fixed keys: the shard of a name must not change between two Sites.
    (BuildHasherDefault::<DefaultHasher>::default().hash_one(name) as usize) % SHARDS
}

impl Sites {
    /// The site for an SNI name (case-insensitive).
    pub fn get(&self, sni: &str) -> Option<&Arc<Site>> {
        if self.shards.is_empty() {
            return None;
        }
        let name = sni.to_ascii_lowercase();
        self.shards[shard_of(&name)].get(&name)
    }

    /// Number of hostnames.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sites from a map of lowercase name → site.
    pub fn from_map(by_name: HashMap<String, Arc<Site>>) -> Sites {
        Sites::default().with_changes(by_name.into_values(), std::iter::empty::<&str>())
    }

    /// Every site, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Site>> {
        self.shards.iter().flat_map(|s| s.values())
    }

    /// A new `Sites` with `upserts` added or replaced (by [`Site::name`])
    /// and `removals` gone. Only the shards these touch are copied; the
    /// rest are shared with `self`.
    pub fn with_changes<'a>(
        &self,
        upserts: impl IntoIterator<Item = Arc<Site>>,
        removals: impl IntoIterator<Item = &'a str>,
    ) -> Sites {
        let mut shards = if self.shards.is_empty() {
            (0..SHARDS).map(|_| Arc::new(HashMap::new())).collect()
        } else {
            self.shards.clone()
        };
        let mut len = self.len;
        for name in removals {
            let name = name.to_ascii_lowercase();
            let shard = &mut shards[shard_of(&name)];
            if shard.contains_key(&name) && Arc::make_mut(shard).remove(&name).is_some() {
                len -= 1;
            }
        }
        for site in upserts {
            let shard = &mut shards[shard_of(&site.name)];
            if Arc::make_mut(shard)
                .insert(site.name.clone(), site)
                .is_none()
            {
                len += 1;
            }
        }
        Sites {
            shards,
            len,
            certificates: self.certificates.clone(),
        }
    }

    /// How many shards differ from `other`'s (tests of copy-on-write).
    #[cfg(test)]
    pub(crate) fn shards_differing(&self, other: &Sites) -> usize {
        self.shards
            .iter()
            .zip(&other.shards)
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .count()
    }

    /// Every configured certificate's expiry (server, origin-pull, CA,
    /// origin CA).
    pub fn certificates(&self) -> &[CertExpiry] {
        &self.certificates
    }

    /// Reads every file the config names through `read` and builds the
    /// sites; every problem (unreadable file, bad PEM, key not matching its
    /// certificate, unusable CA set) is listed.
    pub fn load(
        config: &Config,
        read: &dyn Fn(&Path) -> io::Result<Vec<u8>>,
    ) -> Result<Sites, ConfigErrors> {
        let mut p = Vec::new();
        let mut expiry: Vec<CertExpiry> = Vec::new();
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
                    Ok(c) => {
                        CertExpiry::note(&mut expiry, "ca", &ca.name, &c);
                        anchors = c;
                    }
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
            if let Some(ck) = &certified {
                CertExpiry::note(
                    &mut expiry,
                    "server",
                    &h.name,
                    &ck.cert[..ck.cert.len().min(1)],
                );
            }
            let mut target = |at: &str, origin: &Uri, tls: Option<&OriginTls>, proto| {
                origin_target(
                    at,
                    origin,
                    tls,
                    proto,
                    config.origin_timeouts,
                    &provider,
                    &file,
                    &mut p,
                    &mut expiry,
                )
            };
            let main = target(&at, &h.origin, h.origin_tls.as_ref(), h.origin_protocol);
            let mut routes = Vec::new();
            let mut routes_ok = true;
            for r in &h.routes {
                let rat = format!("{at} route {:?}", r.path);
                match target(&rat, &r.origin, r.origin_tls.as_ref(), r.origin_protocol) {
                    Some(t) => routes.push((r.path.clone(), t)),
                    None => routes_ok = false,
                }
            }
            routes.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
            let https = match &main {
                Some(t) => match &t.client {
                    OriginClient::Https(c) => Ok(Some(c.clone())),
                    OriginClient::Http(_) => Ok(None),
                },
                None => Err(()),
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
            let own = h.name.parse::<Authority>().ok();
            if own.is_none() {
                p.push(format!("{at}: the name is not a URI authority"));
            }
            let edge = crate::edge::EdgePolicy::build(&at, &h.edge, read, &mut p);
            let (Some(certified), Some(authority), Ok(https), Some(main), true, Some(own)) = (
                certified,
                h.origin.authority().cloned(),
                https,
                main,
                routes_ok,
                own,
            ) else {
                continue;
            };
            let http = match &main.client {
                OriginClient::Http(c) => c.clone(),
                OriginClient::Https(_) => http_client(&h.origin, config.origin_timeouts),
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
                    http,
                    origin_timeouts: config.origin_timeouts,
                    origin: main,
                    routes,
                    identity: h.mtls.identity.clone(),
                    strip: h.mtls.identity.custom_names(),
                    idle_timeout: config.idle_timeout,
                    authority: own,
                    edge,
                }),
            );
        }
        if p.is_empty() {
            Ok(Sites {
                certificates: Arc::new(expiry),
                ..Sites::from_map(by_name)
            })
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

/// The pooled clients of one origin (`None` after listing a problem).
#[allow(clippy::too_many_arguments)]
fn origin_target(
    at: &str,
    origin: &Uri,
    o: Option<&OriginTls>,
    protocol: OriginProtocol,
    timeouts: OriginTimeouts,
    provider: &CryptoProvider,
    file: &ReadFn<'_>,
    p: &mut Vec<String>,
    expiry: &mut Vec<CertExpiry>,
) -> Option<Target> {
    let authority = origin.authority()?.clone();
    let scheme = origin.scheme().cloned().unwrap_or(Scheme::HTTP);
    let Some(o) = o else {
        let client = http_client_with(origin, timeouts, protocol);
        let upgrade = if protocol == OriginProtocol::H2 {
            http_client(origin, timeouts)
        } else {
            client.clone()
        };
        return Some(Target {
            scheme,
            authority,
            client: OriginClient::Http(client),
            upgrade: OriginClient::Http(upgrade),
            protocol,
        });
    };
    let mut roots = rustls::RootCertStore::empty();
    let before = p.len();
    if let Some(b) = file(&o.ca, p) {
        match pem_or_der_certs(&b) {
            Ok(certs) => {
                CertExpiry::note(expiry, "origin_ca", &o.ca.display().to_string(), &certs);
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
        Some((c, k)) => {
            let ck = certified_key(at, c, k, provider, file, p)?;
            CertExpiry::note(
                expiry,
                "origin_pull",
                &c.display().to_string(),
                &ck.cert[..ck.cert.len().min(1)],
            );
            Some(ck)
        }
    };
    if p.len() != before {
        return None;
    }
    let build = |proto| https_client_with(origin, roots.clone(), client.clone(), timeouts, proto);
    let main = build(protocol);
    let upgrade = if protocol == OriginProtocol::Http1 {
        main.clone()
    } else {
        build(OriginProtocol::Http1)
    };
    match (main, upgrade) {
        (Ok(c), Ok(u)) => Some(Target {
            scheme,
            authority,
            client: OriginClient::Https(c),
            upgrade: OriginClient::Https(u),
            protocol,
        }),
        (Err(e), _) | (_, Err(e)) => {
            p.push(format!("{at}: origin {origin}: {e}"));
            None
        }
    }
}
