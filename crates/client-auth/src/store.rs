//! Trust stores: CA certificates, operator-supplied intermediates, CRLs and
//! the verification policy, identified by a content-derived version.

use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use webpki::{CertRevocationList, OwnedCertRevocationList};

use crate::Error;

/// Which extended key usage the leaf must allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum EkuPolicy {
    /// `id-kp-clientAuth` if the leaf has an EKU extension (the default).
    #[default]
    Client,
    /// `id-kp-serverAuth` if the leaf has an EKU extension.
    Server,
    /// Any EKU, or none. For the CLI and tests; a gateway should use
    /// [`EkuPolicy::Client`].
    Any,
}

/// How much to check beyond rustls-webpki. See the crate docs for the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum Strictness {
    /// Only rustls-webpki's checks. Kept to measure what the extra checks
    /// add (the x509-limbo "before" figure); do not deploy it.
    WebpkiOnly,
    /// webpki plus the RFC 5280 checks that certificates of working
    /// deployments satisfy (the default).
    #[default]
    Standard,
    /// Standard plus RFC 5280 / CA/Browser Forum rules that some private
    /// PKIs break (missing AKI/SKI, no EKU, zero serials, ...).
    Strict,
}

/// What to do when a CRL is past its nextUpdate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CrlExpiry {
    /// Revocation status is unknown: the chain is invalid (`other`). Default.
    #[default]
    FailClosed,
    /// Use the stale CRL anyway.
    Ignore,
}

/// Verification policy of a store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Policy {
    /// Required EKU of the leaf.
    pub eku: EkuPolicy,
    /// Extra checks over webpki.
    pub strictness: Strictness,
    /// Clock skew tolerated on notBefore/notAfter, in seconds.
    pub skew_secs: u64,
    /// Expired CRL handling.
    pub crl_expiry: CrlExpiry,
    /// Most certificates a client may send (leaf included).
    pub max_chain_certs: usize,
    /// Largest certificate accepted, in bytes of DER.
    pub max_cert_bytes: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            eku: EkuPolicy::Client,
            strictness: Strictness::Standard,
            skew_secs: 60,
            crl_expiry: CrlExpiry::FailClosed,
            max_chain_certs: 8,
            max_cert_bytes: 64 * 1024,
        }
    }
}

/// Identifies the content of a [`TrustStore`]: anchors, intermediates and
/// policy (`trust`) and the CRL set (`crls`). Equal content gives equal
/// versions, so caches keyed by it stay correct across rebuilds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StoreVersion {
    /// Digest of anchors, intermediates and policy.
    pub trust: u64,
    /// Digest of the CRLs.
    pub crls: u64,
}

impl std::fmt::Display for StoreVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}-{:016x}", self.trust, self.crls)
    }
}

pub(crate) struct Trust {
    pub(crate) anchors: Vec<rustls_pki_types::TrustAnchor<'static>>,
    pub(crate) anchor_ders: Vec<CertificateDer<'static>>,
    pub(crate) intermediates: Vec<CertificateDer<'static>>,
    pub(crate) policy: Policy,
    pub(crate) digest: [u8; 32],
}

pub(crate) struct Crls {
    pub(crate) list: Vec<CertRevocationList<'static>>,
    /// Raw DER of each CRL's issuer Name (with its SEQUENCE header).
    pub(crate) issuers: Vec<Vec<u8>>,
    /// Earliest nextUpdate, Unix seconds.
    pub(crate) next_update: Option<u64>,
    pub(crate) digest: [u8; 32],
}

/// A set of trust anchors (and optional intermediates) with CRLs and a
/// policy. Immutable and cheap to clone; replace CRLs with
/// [`TrustStore::with_crls`], which gives a store with a new version.
#[derive(Clone)]
pub struct TrustStore {
    pub(crate) trust: Arc<Trust>,
    pub(crate) crls: Arc<Crls>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("version", &self.version())
            .field("anchors", &self.trust.anchors.len())
            .field("intermediates", &self.trust.intermediates.len())
            .field("crls", &self.crls.list.len())
            .field("policy", &self.trust.policy)
            .finish()
    }
}

impl TrustStore {
    /// Start a store.
    pub fn builder() -> TrustStoreBuilder {
        TrustStoreBuilder::default()
    }

    /// The version caches must key on.
    pub fn version(&self) -> StoreVersion {
        StoreVersion {
            trust: first_u64(&self.trust.digest),
            crls: first_u64(&self.crls.digest),
        }
    }

    /// The policy of this store.
    pub fn policy(&self) -> &Policy {
        &self.trust.policy
    }

    /// The earliest nextUpdate of the store's CRLs (Unix seconds).
    pub fn crl_next_update(&self) -> Option<u64> {
        self.crls.next_update
    }

    /// The same anchors and policy with a new CRL set (DER each).
    /// The CRL version changes, so cached verdicts are not reused.
    pub fn with_crls<I, B>(&self, crls: I) -> Result<TrustStore, Error>
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        let owned: Vec<Vec<u8>> = crls.into_iter().map(|c| c.as_ref().to_vec()).collect();
        Ok(TrustStore {
            trust: self.trust.clone(),
            crls: Arc::new(build_crls(&owned, self.trust.policy.strictness)?),
        })
    }

    pub(crate) fn digest(&self) -> [u8; 64] {
        let mut d = [0u8; 64];
        d[..32].copy_from_slice(&self.trust.digest);
        d[32..].copy_from_slice(&self.crls.digest);
        d
    }
}

fn first_u64(d: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// Builds a [`TrustStore`]; see [`TrustStore::builder`].
#[derive(Default, Debug)]
pub struct TrustStoreBuilder {
    anchors: Vec<Vec<u8>>,
    intermediates: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
    policy: Policy,
}

impl TrustStoreBuilder {
    /// Add a trust anchor (DER).
    pub fn anchor(mut self, der: impl AsRef<[u8]>) -> Self {
        self.anchors.push(der.as_ref().to_vec());
        self
    }

    /// Add trust anchors (DER each).
    pub fn anchors<I: IntoIterator<Item = B>, B: AsRef<[u8]>>(mut self, ders: I) -> Self {
        self.anchors
            .extend(ders.into_iter().map(|d| d.as_ref().to_vec()));
        self
    }

    /// Add an operator-supplied intermediate (DER): used to build paths,
    /// not trusted by itself.
    pub fn intermediate(mut self, der: impl AsRef<[u8]>) -> Self {
        self.intermediates.push(der.as_ref().to_vec());
        self
    }

    /// Add a CRL (DER).
    pub fn crl(mut self, der: impl AsRef<[u8]>) -> Self {
        self.crls.push(der.as_ref().to_vec());
        self
    }

    /// Set the whole policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Set the EKU policy.
    pub fn eku(mut self, eku: EkuPolicy) -> Self {
        self.policy.eku = eku;
        self
    }

    /// Set the strictness.
    pub fn strictness(mut self, s: Strictness) -> Self {
        self.policy.strictness = s;
        self
    }

    /// Set the tolerated clock skew in seconds (at most one day).
    pub fn skew_secs(mut self, secs: u64) -> Self {
        self.policy.skew_secs = secs;
        self
    }

    /// Set the expired-CRL behaviour.
    pub fn crl_expiry(mut self, e: CrlExpiry) -> Self {
        self.policy.crl_expiry = e;
        self
    }

    /// Build, refusing an empty set, any unusable CA certificate, and any
    /// unusable CRL.
    pub fn build(self) -> Result<TrustStore, Error> {
        let p = &self.policy;
        if p.skew_secs > 86_400 {
            return Err(Error::InvalidOption(format!(
                "skew of {} s exceeds one day",
                p.skew_secs
            )));
        }
        if p.max_chain_certs == 0 || p.max_cert_bytes < 128 {
            return Err(Error::InvalidOption(
                "chain or certificate limit too small".into(),
            ));
        }
        if self.anchors.is_empty() {
            return Err(Error::NoTrustAnchors { problems: vec![] });
        }
        let mut anchors = Vec::with_capacity(self.anchors.len());
        let mut anchor_ders = Vec::with_capacity(self.anchors.len());
        for (index, der) in self.anchors.iter().enumerate() {
            let cert = CertificateDer::from(der.clone());
            let anchor = webpki::anchor_from_trusted_cert(&cert)
                .map_err(|e| Error::BadCaCertificate {
                    index,
                    reason: format!("{e:?}"),
                })?
                .to_owned();
            if x509_parser::parse_x509_certificate(der).is_err() {
                return Err(Error::BadCaCertificate {
                    index,
                    reason: "not a parsable X.509 certificate".into(),
                });
            }
            anchors.push(anchor);
            anchor_ders.push(cert);
        }
        let mut intermediates = Vec::with_capacity(self.intermediates.len());
        for (i, der) in self.intermediates.iter().enumerate() {
            if x509_parser::parse_x509_certificate(der).is_err() {
                return Err(Error::BadCaCertificate {
                    index: self.anchors.len() + i,
                    reason: "intermediate is not a parsable X.509 certificate".into(),
                });
            }
            intermediates.push(CertificateDer::from(der.clone()));
        }
        let mut h = Hasher::new(b"portcullis trust v1");
        h.field(format!("{:?}", self.policy).as_bytes());
        for a in &self.anchors {
            h.field(b"anchor");
            h.field(a);
        }
        for i in &self.intermediates {
            h.field(b"intermediate");
            h.field(i);
        }
        let crls = build_crls(&self.crls, p.strictness)?;
        Ok(TrustStore {
            trust: Arc::new(Trust {
                anchors,
                anchor_ders,
                intermediates,
                digest: h.finish(),
                policy: self.policy,
            }),
            crls: Arc::new(crls),
        })
    }
}

fn build_crls(ders: &[Vec<u8>], strictness: Strictness) -> Result<Crls, Error> {
    let mut list = Vec::with_capacity(ders.len());
    let mut issuers = Vec::with_capacity(ders.len());
    let mut next_update: Option<u64> = None;
    let mut h = Hasher::new(b"portcullis crls v1");
    for (index, der) in ders.iter().enumerate() {
        let bad = |reason: String| Error::BadCrl { index, reason };
        let owned = OwnedCertRevocationList::from_der(der).map_err(|e| bad(format!("{e:?}")))?;
        let (_, parsed) = x509_parser::parse_x509_crl(der)
            .map_err(|e| bad(format!("not a parsable CRL: {e}")))?;
        if strictness >= Strictness::Standard {
            crate::strict::check_crl(&parsed).map_err(bad)?;
        }
        if let Some(nu) = parsed.next_update() {
            let t = u64::try_from(nu.timestamp()).unwrap_or(0);
            next_update = Some(next_update.map_or(t, |n| n.min(t)));
        }
        issuers.push(parsed.issuer().as_raw().to_vec());
        list.push(CertRevocationList::Owned(owned));
        h.field(der);
    }
    Ok(Crls {
        list,
        issuers,
        next_update,
        digest: h.finish(),
    })
}

/// SHA-256 over length-prefixed fields.
pub(crate) struct Hasher(aws_lc_rs::digest::Context);

impl Hasher {
    pub(crate) fn new(domain: &[u8]) -> Self {
        let mut h = Hasher(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256));
        h.field(domain);
        h
    }

    pub(crate) fn field(&mut self, bytes: &[u8]) {
        self.0.update(&(bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    pub(crate) fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}
