//! A bounded verdict cache keyed by the chain and the trust store's
//! version (anchors, policy and CRLs), with single flight: while one
//! caller verifies a chain, others asking for the same chain wait for its
//! verdict instead of verifying again.
//!
//! Lookups hash a sample of the chain (lengths and the last bytes of each
//! certificate, where the signature is) with a per-cache random SipHash
//! key, then compare the full chain bytes: a hit never depends on a hash
//! being collision-free, and costs far less than SHA-256 over the chain.
//! Chains over [`VerdictCache::INLINE_LIMIT`] bytes are identified by
//! their SHA-256 instead of being stored.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustls_pki_types::{CertificateDer, UnixTime};

use crate::store::{Hasher, TrustStore};
use crate::verify::Outcome;
use crate::Verdict;

/// Exactly which chain under which store an entry is for.
#[derive(Clone, PartialEq, Eq)]
struct Ident {
    store: [u8; 64],
    chain: ChainId,
}

#[derive(Clone, PartialEq, Eq)]
enum ChainId {
    /// Length-prefixed concatenation of the certificates.
    Bytes(Box<[u8]>),
    /// SHA-256 of the length-prefixed certificates (large chains).
    Digest([u8; 32]),
}

impl Ident {
    fn new(store: &TrustStore, chain: &[CertificateDer<'_>], total: usize) -> Ident {
        let id = if total <= VerdictCache::INLINE_LIMIT {
            let mut b = Vec::with_capacity(total + 4 * chain.len());
            for c in chain {
                b.extend_from_slice(&(c.len() as u32).to_be_bytes());
                b.extend_from_slice(c);
            }
            ChainId::Bytes(b.into_boxed_slice())
        } else {
            let mut h = Hasher::new(b"portcullis chain v1");
            for c in chain {
                h.field(c);
            }
            ChainId::Digest(h.finish())
        };
        Ident {
            store: store.digest(),
            chain: id,
        }
    }

    /// Compare without allocating (the hit path).
    fn matches(&self, store: &[u8; 64], chain: &[CertificateDer<'_>], total: usize) -> bool {
        if &self.store != store {
            return false;
        }
        match &self.chain {
            ChainId::Bytes(b) => {
                if total > VerdictCache::INLINE_LIMIT || b.len() != total + 4 * chain.len() {
                    return false;
                }
                let mut rest: &[u8] = b;
                for c in chain {
                    if rest.len() < 4 {
                        return false;
                    }
                    let (len, tail) = rest.split_at(4);
                    if len != (c.len() as u32).to_be_bytes() || !tail.starts_with(c) {
                        return false;
                    }
                    rest = &tail[c.len()..];
                }
                rest.is_empty()
            }
            ChainId::Digest(d) => {
                total > VerdictCache::INLINE_LIMIT && {
                    let mut h = Hasher::new(b"portcullis chain v1");
                    for c in chain {
                        h.field(c);
                    }
                    &h.finish() == d
                }
            }
        }
    }

    fn bytes(&self) -> usize {
        match &self.chain {
            ChainId::Bytes(b) => b.len() + 64,
            ChainId::Digest(_) => 96,
        }
    }
}

#[derive(Clone)]
struct Ready {
    verdict: Verdict,
    /// Unix seconds: usable while `from <= now < until`.
    from: u64,
    until: u64,
}

type Slot = Arc<Mutex<Option<Ready>>>;

struct Entry {
    ident: Ident,
    state: State,
}

enum State {
    Ready(Ready),
    Pending(Slot),
}

struct Inner {
    map: HashMap<u64, Entry>,
    order: VecDeque<u64>,
    bytes: usize,
}

/// Counters for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache (including waits on another
    /// caller's verification).
    pub hits: u64,
    /// Lookups that ran a verification.
    pub verifications: u64,
    /// Entries dropped to stay within the limits.
    pub evictions: u64,
}

/// Cache of verdicts, bounded in entries and in bytes.
///
/// An entry is reused only for the same chain bytes under the same store
/// version, and never at or after the earliest notAfter of the verified
/// path or the CRLs' nextUpdate (valid verdicts), nor after one hour.
pub struct VerdictCache {
    inner: Mutex<Inner>,
    max_entries: usize,
    max_bytes: usize,
    sip: RandomState,
    hits: AtomicU64,
    verifications: AtomicU64,
    evictions: AtomicU64,
}

impl std::fmt::Debug for VerdictCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerdictCache")
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Fixed per-entry overhead counted against the byte budget (map slot,
/// order slot, verdict with its bounded detail).
const ENTRY_OVERHEAD: usize = 128 + crate::verdict::MAX_DETAIL;

impl VerdictCache {
    /// Chains up to this many bytes are kept verbatim for comparison;
    /// larger ones are identified by SHA-256.
    pub const INLINE_LIMIT: usize = 16 * 1024;

    /// At most `max_entries` entries (at least 1) and about 4 KiB per entry.
    pub fn new(max_entries: usize) -> Self {
        let max_entries = max_entries.max(1);
        Self::with_limits(max_entries, max_entries.saturating_mul(4096))
    }

    /// At most `max_entries` entries and `max_bytes` bytes of entries.
    pub fn with_limits(max_entries: usize, max_bytes: usize) -> Self {
        let max_entries = max_entries.max(1);
        VerdictCache {
            inner: Mutex::new(Inner {
                map: HashMap::with_capacity(max_entries.min(4096)),
                order: VecDeque::with_capacity(max_entries.min(4096)),
                bytes: 0,
            }),
            max_entries,
            max_bytes,
            sip: RandomState::new(),
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

    /// Bytes counted against the budget now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bucket key: a keyed hash of the store digest and a sample of each
    /// certificate (length and last 64 bytes). Equality is checked on the
    /// full bytes afterwards.
    fn bucket(&self, store: &[u8; 64], chain: &[CertificateDer<'_>]) -> u64 {
        let mut h = self.sip.build_hasher();
        h.write(store);
        h.write_usize(chain.len());
        for c in chain {
            h.write_usize(c.len());
            h.write(&c[c.len().saturating_sub(64)..]);
        }
        h.finish()
    }

    /// The cached verdict for `chain` at `now`, if one is ready; never
    /// verifies and never waits (a caller on an async worker can try this
    /// first and move to a blocking thread only on a miss).
    pub fn cached(
        &self,
        store: &TrustStore,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Option<Verdict> {
        if chain.is_empty() {
            return Some(Verdict::None);
        }
        let t = now.as_secs();
        let sd = store.digest();
        let total: usize = chain.iter().map(|c| c.len()).sum();
        let key = self.bucket(&sd, chain);
        let inner = self.lock();
        let e = inner.map.get(&key)?;
        if !e.ident.matches(&sd, chain, total) {
            return None;
        }
        match &e.state {
            State::Ready(r) if r.from <= t && t < r.until => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(r.verdict.clone())
            }
            _ => None,
        }
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
        let sd = store.digest();
        let total: usize = chain.iter().map(|c| c.len()).sum();
        let key = self.bucket(&sd, chain);
        let slot: Slot = {
            let mut inner = self.lock();
            if let Some(e) = inner.map.get(&key) {
                if e.ident.matches(&sd, chain, total) {
                    match &e.state {
                        State::Ready(r) if r.from <= t && t < r.until => {
                            self.hits.fetch_add(1, Ordering::Relaxed);
                            return r.verdict.clone();
                        }
                        State::Pending(slot) => {
                            let slot = slot.clone();
                            drop(inner);
                            // Wait for the verifying caller, then reuse its
                            // result if it applies at our time.
                            let got = slot.lock().unwrap_or_else(PoisonError::into_inner).clone();
                            if let Some(r) = got {
                                if r.from <= t && t < r.until {
                                    self.hits.fetch_add(1, Ordering::Relaxed);
                                    return r.verdict;
                                }
                            }
                            self.verifications.fetch_add(1, Ordering::Relaxed);
                            return store.verify(chain, now);
                        }
                        State::Ready(_) => {}
                    }
                }
            }
            let slot: Slot = Arc::new(Mutex::new(None));
            let entry = Entry {
                ident: Ident::new(store, chain, total),
                state: State::Pending(slot.clone()),
            };
            self.insert(&mut inner, key, entry);
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
        if let Some(e) = inner.map.get_mut(&key) {
            if matches!(&e.state, State::Pending(s) if Arc::ptr_eq(s, &slot)) {
                e.state = State::Ready(ready);
            }
        }
        verdict
    }

    fn insert(&self, inner: &mut Inner, key: u64, entry: Entry) {
        let size = entry.ident.bytes() + ENTRY_OVERHEAD;
        if let Some(old) = inner.map.insert(key, entry) {
            // Same bucket: replaced in place; its place in `order` stays.
            inner.bytes = inner.bytes - (old.ident.bytes() + ENTRY_OVERHEAD) + size;
        } else {
            inner.order.push_back(key);
            inner.bytes += size;
        }
        // Evict oldest first. Every key in `order` is in `map` exactly once,
        // so this ends; the new entry is kept even if alone over budget.
        while inner.map.len() > self.max_entries
            || (inner.bytes > self.max_bytes && inner.map.len() > 1)
        {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if old == key {
                inner.order.push_back(old);
                if inner.order.len() == 1 {
                    break;
                }
                continue;
            }
            if let Some(e) = inner.map.remove(&old) {
                inner.bytes -= e.ident.bytes() + ENTRY_OVERHEAD;
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Drop every entry.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.order.clear();
        inner.bytes = 0;
    }
}
