//! A bounded verdict cache keyed by the chain's SHA-256 and the trust
//! store's version (anchors, policy and CRLs), with single flight: while
//! one caller verifies a chain, others asking for the same key wait for
//! its verdict instead of verifying again.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustls_pki_types::{CertificateDer, UnixTime};

use crate::store::{Hasher, TrustStore};
use crate::verify::Outcome;
use crate::Verdict;

type Key = [u8; 32];

#[derive(Clone)]
struct Ready {
    verdict: Verdict,
    /// Unix seconds: usable while `from <= now < until`.
    from: u64,
    until: u64,
}

type Slot = Arc<Mutex<Option<Ready>>>;

enum Entry {
    Ready(Ready),
    Pending(Slot),
}

struct Inner {
    map: HashMap<Key, Entry>,
    order: VecDeque<Key>,
}

/// Counters for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache (including waits on another
    /// caller's verification).
    pub hits: u64,
    /// Lookups that ran a verification.
    pub verifications: u64,
    /// Entries dropped to stay within capacity.
    pub evictions: u64,
}

/// Cache of verdicts. Memory is bounded by `capacity` entries of at most
/// about 700 bytes each (key, bounded detail string, bookkeeping).
///
/// An entry is reused only for the same chain bytes under the same store
/// version, and never at or after the earliest notAfter of the verified
/// path or the CRLs' nextUpdate (valid verdicts), nor after one hour.
pub struct VerdictCache {
    inner: Mutex<Inner>,
    capacity: usize,
    hits: AtomicU64,
    verifications: AtomicU64,
    evictions: AtomicU64,
}

impl std::fmt::Debug for VerdictCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerdictCache")
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

impl VerdictCache {
    /// A cache of at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        VerdictCache {
            inner: Mutex::new(Inner {
                map: HashMap::with_capacity(capacity.min(4096)),
                order: VecDeque::with_capacity(capacity.min(4096)),
            }),
            capacity,
            hits: AtomicU64::new(0),
            verifications: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            verifications: self.verifications.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cache key of a chain under a store.
    pub fn key(store: &TrustStore, chain: &[CertificateDer<'_>]) -> [u8; 32] {
        let mut h = Hasher::new(b"portcullis verdict v1");
        h.field(&store.digest());
        for c in chain {
            h.field(c);
        }
        h.finish()
    }

    /// [`TrustStore::verify`] through the cache.
    pub fn verify(
        &self,
        store: &TrustStore,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Verdict {
        if chain.is_empty() {
            return Verdict::None;
        }
        let t = now.as_secs();
        let key = Self::key(store, chain);
        let slot: Slot = {
            let mut inner = self.lock();
            match inner.map.get(&key) {
                Some(Entry::Ready(r)) if r.from <= t && t < r.until => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return r.verdict.clone();
                }
                Some(Entry::Pending(slot)) => {
                    let slot = slot.clone();
                    drop(inner);
                    // Wait for the verifying caller, then reuse its result
                    // if it applies at our time.
                    let got = slot.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    if let Some(r) = got {
                        if r.from <= t && t < r.until {
                            self.hits.fetch_add(1, Ordering::Relaxed);
                            return r.verdict;
                        }
                    }
                    return self.verify_uncached(store, chain, now);
                }
                _ => {}
            }
            let slot: Slot = Arc::new(Mutex::new(None));
            self.insert(&mut inner, key, Entry::Pending(slot.clone()));
            slot
        };
        // Hold the slot while verifying so that waiters block on it.
        let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let Outcome {
            verdict,
            reuse_until,
        } = store.verify_outcome(chain, now);
        let ready = Ready {
            verdict: verdict.clone(),
            from: t,
            until: reuse_until,
        };
        *guard = Some(ready.clone());
        drop(guard);
        let mut inner = self.lock();
        if let Some(e @ Entry::Pending(_)) = inner.map.get_mut(&key) {
            *e = Entry::Ready(ready);
        }
        verdict
    }

    fn verify_uncached(
        &self,
        store: &TrustStore,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Verdict {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        store.verify(chain, now)
    }

    fn insert(&self, inner: &mut Inner, key: Key, entry: Entry) {
        if inner.map.insert(key, entry).is_some() {
            // Replaced in place (a stale entry); its place in `order` stays.
            return;
        }
        inner.order.push_back(key);
        while inner.map.len() > self.capacity {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if old != key && inner.map.remove(&old).is_some() {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            } else if old == key {
                inner.order.push_back(old);
            }
        }
        // Keys are only in `order` once and only while in `map`, except
        // the `old == key` rotation above, so `order` stays bounded too.
    }

    /// Drop every entry (e.g. on a deliberate flush).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.order.clear();
    }
}
