//! Rule evaluation time for 10 and 100 rules (none matching, so every rule
//! is evaluated: the worst case), context building included.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use policy::rules::{compile, ActionSpec, BlockResponse, CertFacts, RequestFacts, RuleSpec};

fn rules(n: usize) -> Vec<RuleSpec> {
    (0..n)
        .map(|i| RuleSpec {
            name: format!("r{i}"),
            expression: match i % 3 {
                0 => format!(r#"http.request.uri.path.startsWith("/admin/{i}") && !cf.tls_client_auth.cert_verified"#),
                1 => format!(r#"ip.src == "10.0.0.{i}" || http.request.method == "DELETE""#),
                _ => format!(r#"cf.tls_client_auth.cert_subject_dn == "CN=blocked-{i}""#),
            },
            action: ActionSpec::Block(BlockResponse::default()),
            simulate: false,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rules");
    for n in [10, 100] {
        let set = compile(&rules(n)).expect("compiles");
        let conn = set.connection(&CertFacts {
            presented: true,
            verified: true,
            subject_dn: "CN=alice".into(),
            ..CertFacts::default()
        });
        let req = RequestFacts {
            host: "api.acme.test",
            method: "GET",
            path: "/images/cat.jpg",
            query: "a=1",
            ip: "127.0.0.1",
            timestamp: 1_700_000_000,
            ..RequestFacts::default()
        };
        g.bench_with_input(BenchmarkId::new("evaluate", n), &n, |b, _| {
            b.iter(|| {
                set.evaluate(black_box(&conn), black_box(&req)).verdict
                    == policy::rules::Verdict::Pass
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
