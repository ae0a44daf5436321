//! Verification cost: a 2-deep chain (leaf + intermediate under a root,
//! ECDSA P-256) cold and from the verdict cache, and fact extraction.

use client_auth::{CertFacts, CertificateDer, TrustStore, UnixTime, VerdictCache};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = true;
    p
}

fn chain() -> (CertificateDer<'static>, Vec<CertificateDer<'static>>) {
    let root_key = KeyPair::generate().expect("key");
    let root_p = ca_params("Bench Root");
    let root = root_p.self_signed(&root_key).expect("root");
    let root_issuer = Issuer::new(root_p, root_key);
    let int_key = KeyPair::generate().expect("key");
    let int_p = ca_params("Bench Issuing");
    let int = int_p.signed_by(&int_key, &root_issuer).expect("int");
    let int_issuer = Issuer::new(int_p, int_key);
    let mut leaf_p = CertificateParams::new(vec!["client.bench.test".to_string()]).expect("p");
    leaf_p
        .distinguished_name
        .push(DnType::CommonName, "bench client");
    leaf_p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf_p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_p.use_authority_key_identifier_extension = true;
    let leaf = leaf_p
        .signed_by(&KeyPair::generate().expect("key"), &int_issuer)
        .expect("leaf");
    (
        root.der().clone(),
        vec![leaf.der().clone(), int.der().clone()],
    )
}

fn bench(c: &mut Criterion) {
    let (root, chain) = chain();
    let store = TrustStore::builder().anchor(&root).build().expect("store");
    let now = UnixTime::now();
    assert!(store.verify(&chain, now).is_valid());
    c.bench_function("verify_2deep_cold", |b| {
        b.iter(|| store.verify(black_box(&chain), now))
    });
    let cache = VerdictCache::new(10_000);
    assert!(cache.verify(&store, &chain, now).is_valid());
    c.bench_function("verify_2deep_cached", |b| {
        b.iter(|| cache.verify(&store, black_box(&chain), now))
    });
    c.bench_function("facts_leaf", |b| {
        b.iter(|| CertFacts::from_der(black_box(&chain[0])))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
