//! Chain verification: rustls-webpki builds and checks the path, our
//! `strict` module adds the checks webpki leaves out.

use std::cell::{Cell, RefCell};

use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{
    EndEntityCert, ExpirationPolicy, ExtendedKeyUsageValidator, KeyPurposeIdIter, KeyUsage,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy, VerifiedPath,
};

use crate::store::{CrlExpiry, EkuPolicy, TrustStore};
use crate::strict::{self, Violation};
use crate::verdict::{describe, reason_for, Reason, Verdict};

/// Longest a verdict is reused when nothing else bounds it (seconds).
pub(crate) const MAX_CACHE_SECS: u64 = 3600;

/// A verdict and the time until which it may be reused.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    pub(crate) verdict: Verdict,
    /// Unix seconds; the verdict must not be reused at or after this time.
    pub(crate) reuse_until: u64,
}

/// EKU validator accepting any (well-formed) EKU or none: `EkuPolicy::Any`.
/// webpki offers only "required" and "required if present" for one OID,
/// so "any" is this trait implementation rather than a path callback.
struct AnyEku;

impl ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for id in iter {
            id?;
        }
        Ok(())
    }
}

impl TrustStore {
    /// Verify what a client presented: `chain[0]` is the leaf, the rest are
    /// the intermediates it sent (any order). `now` is the verification
    /// time. An empty chain is [`Verdict::None`].
    ///
    /// Never panics and never fails: every problem is an invalid verdict.
    pub fn verify(&self, chain: &[CertificateDer<'_>], now: UnixTime) -> Verdict {
        self.verify_outcome(chain, now).verdict
    }

    pub(crate) fn verify_outcome(&self, chain: &[CertificateDer<'_>], now: UnixTime) -> Outcome {
        let t = now.as_secs();
        let default_until = t.saturating_add(MAX_CACHE_SECS);
        let invalid = |reason, detail: String| Outcome {
            verdict: Verdict::invalid(reason, detail),
            reuse_until: default_until,
        };
        let policy = &self.trust.policy;
        let Some(leaf) = chain.first() else {
            return Outcome {
                verdict: Verdict::None,
                reuse_until: default_until,
            };
        };
        if chain.len() > policy.max_chain_certs {
            return invalid(
                Reason::Other,
                format!(
                    "client sent {} certificates, limit is {}",
                    chain.len(),
                    policy.max_chain_certs
                ),
            );
        }
        if let Some((i, c)) = chain
            .iter()
            .enumerate()
            .find(|(_, c)| c.len() > policy.max_cert_bytes)
        {
            return invalid(
                Reason::Malformed,
                format!(
                    "certificate #{i} is {} bytes, limit is {}",
                    c.len(),
                    policy.max_cert_bytes
                ),
            );
        }
        let ee = match EndEntityCert::try_from(leaf) {
            Ok(ee) => ee,
            Err(e) => return invalid(reason_for(&e), format!("leaf: {}", describe(&e))),
        };
        let mut intermediates: Vec<CertificateDer<'_>> =
            Vec::with_capacity(chain.len() - 1 + self.trust.intermediates.len());
        intermediates.extend(chain[1..].iter().map(|c| CertificateDer::from(c.as_ref())));
        intermediates.extend(
            self.trust
                .intermediates
                .iter()
                .map(|c| CertificateDer::from(c.as_ref())),
        );

        let first = self.attempt(&ee, &intermediates, t);
        let outcome = match &first {
            // Within the skew: try again at the shifted time, once.
            Err(Failure::Webpki(webpki::Error::CertExpired { not_after, .. }))
                if not_after.as_secs().saturating_add(policy.skew_secs) >= t =>
            {
                self.attempt(&ee, &intermediates, t.saturating_sub(policy.skew_secs))
            }
            Err(Failure::Webpki(webpki::Error::CertNotValidYet { not_before, .. }))
                if not_before.as_secs() <= t.saturating_add(policy.skew_secs) =>
            {
                self.attempt(&ee, &intermediates, t.saturating_add(policy.skew_secs))
            }
            _ => first,
        };
        match outcome {
            Ok(path_not_after) => {
                let mut until = default_until.min(path_not_after.saturating_add(1));
                if policy.crl_expiry == CrlExpiry::FailClosed {
                    if let Some(nu) = self.crls.next_update {
                        until = until.min(nu);
                    }
                }
                Outcome {
                    verdict: Verdict::Valid,
                    reuse_until: until,
                }
            }
            Err(Failure::Strict(v)) => invalid(v.reason, v.detail),
            Err(Failure::Webpki(e)) => {
                let mut detail = describe(&e);
                if e == webpki::Error::UnknownIssuer {
                    // Say whom the client claimed as issuer; helps operators.
                    if let Ok((_, c)) = x509_parser::parse_x509_certificate(leaf) {
                        detail = format!(
                            "no path to a trust anchor of this store (leaf issuer: {})",
                            crate::facts::rfc4514(c.issuer())
                        );
                    }
                }
                let mut out = invalid(reason_for(&e), detail);
                if let webpki::Error::CertNotValidYet { not_before, .. } = e {
                    // It may become valid: do not reuse past its start.
                    out.reuse_until = out
                        .reuse_until
                        .min(not_before.as_secs().saturating_sub(policy.skew_secs))
                        .max(t);
                }
                out
            }
        }
    }

    /// One webpki run at time `t`, with our checks as the path callback so
    /// that a path refused by them lets webpki try another path.
    /// On success returns the earliest notAfter of the path.
    fn attempt(
        &self,
        ee: &EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        t: u64,
    ) -> Result<u64, Failure> {
        let policy = &self.trust.policy;
        let violation: RefCell<Option<Violation>> = RefCell::new(None);
        let not_after = Cell::new(u64::MAX);
        let callback = |path: &VerifiedPath<'_>| -> Result<(), webpki::Error> {
            let leaf_der = path.end_entity().der();
            let mut ders: Vec<&[u8]> = Vec::with_capacity(8);
            ders.push(leaf_der.as_ref());
            let inters: Vec<CertificateDer<'_>> =
                path.intermediate_certificates().map(|c| c.der()).collect();
            ders.extend(inters.iter().map(|c| c.as_ref()));
            let anchor = path.anchor();
            let anchor_der = self
                .trust
                .anchors
                .iter()
                .zip(&self.trust.anchor_ders)
                .find(|(a, _)| {
                    a.subject.as_ref() == anchor.subject.as_ref()
                        && a.subject_public_key_info.as_ref()
                            == anchor.subject_public_key_info.as_ref()
                })
                .map(|(_, d)| d.as_ref());
            let Some(anchor_der) = anchor_der else {
                return Err(webpki::Error::UnknownIssuer);
            };
            ders.push(anchor_der);
            match strict::check_path(&ders, &self.crls, t, policy) {
                Ok(na) => {
                    not_after.set(na);
                    Ok(())
                }
                Err(v) => {
                    let e = v.as_webpki();
                    *violation.borrow_mut() = Some(v);
                    Err(e)
                }
            }
        };
        let crl_refs: Vec<&webpki::CertRevocationList<'_>> = self.crls.list.iter().collect();
        let revocation = if crl_refs.is_empty() {
            None
        } else {
            RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
                b.with_depth(RevocationCheckDepth::Chain)
                    .with_status_policy(UnknownStatusPolicy::Allow)
                    .with_expiration_policy(match policy.crl_expiry {
                        CrlExpiry::FailClosed => ExpirationPolicy::Enforce,
                        CrlExpiry::Ignore => ExpirationPolicy::Ignore,
                    })
                    .build()
            })
        };
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(t));
        let algs = webpki::ALL_VERIFICATION_ALGS;
        let anchors = &self.trust.anchors;
        let cb: Option<&PathCheck<'_>> = Some(&callback);
        let res = match policy.eku {
            EkuPolicy::Client => ee.verify_for_usage(
                algs,
                anchors,
                intermediates,
                time,
                KeyUsage::client_auth(),
                revocation,
                cb,
            ),
            EkuPolicy::Server => ee.verify_for_usage(
                algs,
                anchors,
                intermediates,
                time,
                KeyUsage::server_auth(),
                revocation,
                cb,
            ),
            EkuPolicy::Any => {
                ee.verify_for_usage(algs, anchors, intermediates, time, AnyEku, revocation, cb)
            }
        };
        match res {
            Ok(_) => Ok(not_after.get()),
            Err(e) => match violation.into_inner() {
                Some(v) if v.as_webpki() == e => Err(Failure::Strict(v)),
                _ => Err(Failure::Webpki(e)),
            },
        }
    }
}

/// The path callback webpki takes.
type PathCheck<'a> = dyn Fn(&VerifiedPath<'_>) -> Result<(), webpki::Error> + 'a;

enum Failure {
    Webpki(webpki::Error),
    Strict(Violation),
}
