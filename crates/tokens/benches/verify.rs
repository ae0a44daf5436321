//! Token verification against a bare HMAC-SHA256 of the same bytes (goal:
//! verify within 1.5× of the bare HMAC).

use aws_lc_rs::hmac;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tokens::{cloudflare, Secret};

fn bench(c: &mut Criterion) {
    let secret = Secret::new(b"mysecrettoken".to_vec()).expect("secret");
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"mysecrettoken");
    let message = "/images/cat.jpg";
    let ts = 1_700_000_003u64;
    let url = cloudflare::sign_url(&secret, message, ts);
    let token = cloudflare::token(&secret, message, ts);
    let secrets = [secret];
    let v = cloudflare::Verifier {
        secrets: &secrets,
        expiry: cloudflare::Expiry::Ttl(300),
        max_future_skew: 60,
    };
    let bytes = format!("{message}{ts}");
    let mut g = c.benchmark_group("cloudflare");
    g.bench_function("bare_hmac_sha256", |b| {
        b.iter(|| hmac::sign(&key, black_box(bytes.as_bytes())))
    });
    g.bench_function("verify_token", |b| {
        b.iter(|| v.verify(black_box(message), black_box(&token), ts + 1))
    });
    g.bench_function("split_url_and_verify", |b| {
        b.iter(|| {
            let (m, t) = cloudflare::split_url(black_box(&url), "verify")?;
            v.verify(m, &t, ts + 1)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
