//! The verdict cache: reuse, invalidation, bounds and single flight.

use std::sync::Arc;

use client_auth::{Reason, TrustStore, Verdict, VerdictCache};

use crate::common::*;

#[test]
fn flood_of_the_same_invalid_chain_verifies_once() {
    let ours = root("Ours");
    let bad = leaf(&root("Theirs"));
    let store = TrustStore::builder().anchor(&ours.der).build().expect("s");
    let cache = Arc::new(VerdictCache::new(1024));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, store, bad) = (cache.clone(), store.clone(), bad.clone());
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let v = cache.verify(&store, std::slice::from_ref(&bad), now());
                    assert_eq!(v.reason(), Some(Reason::UnknownIssuer));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let s = cache.stats();
    assert_eq!(s.verifications, 1, "{s:?}");
    assert_eq!(s.hits, 8 * 200 - 1);
}

#[test]
fn crl_update_invalidates() {
    let ca = root("Root");
    let l = leaf_with(
        &ca,
        &LeafOpts {
            serial: 5,
            ..Default::default()
        },
    );
    let s1 = TrustStore::builder()
        .anchor(&ca.der)
        .crl(fresh_crl(&ca, &[], 1))
        .build()
        .expect("s");
    let cache = VerdictCache::new(16);
    assert_eq!(
        cache.verify(&s1, std::slice::from_ref(&l), now()),
        Verdict::Valid
    );
    assert_eq!(
        cache.verify(&s1, std::slice::from_ref(&l), now()),
        Verdict::Valid
    );
    let s2 = s1.with_crls([fresh_crl(&ca, &[5], 2)]).expect("crls");
    assert_eq!(
        cache.verify(&s2, std::slice::from_ref(&l), now()).reason(),
        Some(Reason::Revoked)
    );
    assert_eq!(cache.stats().verifications, 2);
}

#[test]
fn entries_do_not_outlive_the_certificate_or_the_crl() {
    let ca = root("Root");
    let l = leaf_with(
        &ca,
        &LeafOpts {
            not_after: NOW + 600,
            ..Default::default()
        },
    );
    let s = TrustStore::builder()
        .anchor(&ca.der)
        .skew_secs(0)
        .build()
        .expect("s");
    let cache = VerdictCache::new(16);
    assert!(cache.verify(&s, std::slice::from_ref(&l), now()).is_valid());
    assert!(cache
        .verify(&s, std::slice::from_ref(&l), t(NOW + 599))
        .is_valid());
    assert_eq!(cache.stats().verifications, 1);
    assert_eq!(
        cache
            .verify(&s, std::slice::from_ref(&l), t(NOW + 601))
            .reason(),
        Some(Reason::Expired)
    );
    assert_eq!(cache.stats().verifications, 2);

    // The CRL's nextUpdate bounds a valid verdict too (fail closed).
    let l2 = leaf(&ca);
    let s = TrustStore::builder()
        .anchor(&ca.der)
        .skew_secs(0)
        .crl(crl(&ca, &[], NOW - 60, NOW + 300, 1))
        .build()
        .expect("s");
    assert!(cache
        .verify(&s, std::slice::from_ref(&l2), now())
        .is_valid());
    assert_eq!(
        cache.verify(&s, &[l2], t(NOW + 301)).reason(),
        Some(Reason::Other)
    );
}

#[test]
fn not_yet_valid_is_not_cached_past_its_start() {
    let ca = root("Root");
    let l = leaf_with(
        &ca,
        &LeafOpts {
            not_before: NOW + 1000,
            ..Default::default()
        },
    );
    let s = TrustStore::builder()
        .anchor(&ca.der)
        .skew_secs(0)
        .build()
        .expect("s");
    let cache = VerdictCache::new(16);
    assert_eq!(
        cache.verify(&s, std::slice::from_ref(&l), now()).reason(),
        Some(Reason::NotYetValid)
    );
    assert!(cache.verify(&s, &[l], t(NOW + 1001)).is_valid());
}

#[test]
fn bounded_in_entries() {
    let ca = root("Root");
    let s = TrustStore::builder().anchor(&ca.der).build().expect("s");
    let cache = VerdictCache::new(4);
    for i in 0..10 {
        let l = leaf_with(
            &ca,
            &LeafOpts {
                serial: 100 + i,
                ..Default::default()
            },
        );
        assert!(cache.verify(&s, &[l], now()).is_valid());
        assert!(cache.len() <= 4);
    }
    assert_eq!(cache.stats().evictions, 6);
    assert_eq!(cache.verify(&s, &[], now()), Verdict::None);
}

#[test]
fn same_sample_different_bytes_is_not_a_hit() {
    // A forgery that keeps the length and the signature bytes of a valid
    // certificate lands in the same bucket; full comparison must miss.
    let ca = root("Root");
    let good = leaf(&ca);
    let mut forged = good.to_vec();
    let mid = forged.len() / 3;
    forged[mid] ^= 0x20;
    let forged = client_auth::CertificateDer::from(forged);
    let s = TrustStore::builder().anchor(&ca.der).build().expect("s");
    let cache = VerdictCache::new(16);
    assert!(cache
        .verify(&s, std::slice::from_ref(&good), now())
        .is_valid());
    assert!(!cache
        .verify(&s, std::slice::from_ref(&forged), now())
        .is_valid());
    assert!(cache.verify(&s, &[good], now()).is_valid());
    assert!(!cache.verify(&s, &[forged], now()).is_valid());
}

#[test]
fn bounded_in_bytes_and_large_chains_by_digest() {
    let ca = root("Root");
    let s = TrustStore::builder().anchor(&ca.der).build().expect("s");
    let cache = VerdictCache::with_limits(1000, 8 * 1024);
    for i in 0..20 {
        let l = leaf_with(
            &ca,
            &LeafOpts {
                serial: 200 + i,
                ..Default::default()
            },
        );
        assert!(cache.verify(&s, &[l], now()).is_valid());
        assert!(cache.bytes() <= 8 * 1024, "{}", cache.bytes());
    }
    assert!(cache.stats().evictions > 0);
    // A chain over the inline limit is cached by digest.
    let big = leaf_with(
        &ca,
        &LeafOpts {
            extra: vec![rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 55555, 2],
                {
                    let n = 20_000usize;
                    let mut v = vec![0x04, 0x82, (n >> 8) as u8, n as u8];
                    v.resize(4 + n, b'B');
                    v
                },
            )],
            ..Default::default()
        },
    );
    let cache = VerdictCache::new(16);
    let before = cache.stats().verifications;
    assert!(cache
        .verify(&s, std::slice::from_ref(&big), now())
        .is_valid());
    assert!(cache.verify(&s, &[big], now()).is_valid());
    assert_eq!(cache.stats().verifications, before + 1);
    assert!(cache.bytes() < 2048);
}

/// `cached` answers only from a ready entry: a miss before the first
/// verification, the same verdict after, and a miss for another store.
#[test]
fn cached_answers_only_what_is_ready() {
    let ca = root("Root");
    let l = leaf(&ca);
    let s = TrustStore::builder().anchor(&ca.der).build().expect("s");
    let other = TrustStore::builder()
        .anchor(&root("Other").der)
        .build()
        .expect("s");
    let cache = VerdictCache::new(16);
    let chain = std::slice::from_ref(&l);
    assert_eq!(cache.cached(&s, chain, now()), None);
    assert_eq!(cache.stats().verifications, 0);
    assert_eq!(cache.verify(&s, chain, now()), Verdict::Valid);
    assert_eq!(cache.cached(&s, chain, now()), Some(Verdict::Valid));
    assert_eq!(cache.cached(&other, chain, now()), None);
    assert_eq!(cache.cached(&s, &[], now()), Some(Verdict::None));
    assert_eq!(cache.stats().verifications, 1);
}
