use std::path::Path;

/// Mutations per target (override with FUZZ_REPLAY_MUTATIONS).
fn mutations() -> usize {
    std::env::var("FUZZ_REPLAY_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

/// xorshift64*: deterministic, so a failure here reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

/// A libFuzzer-like mutation: bit flips, interesting bytes, insertions,
/// deletions, duplications, truncation and splicing with another seed.
fn mutate(seed: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = [0x00, 0xff, 0x7f, 0x80, b'"', b'\\', b'\n', b'%'][rng.below(8)];
            }
            2 => {
                let i = rng.below(len + 1);
                v.insert(i, (rng.next() & 0xff) as u8);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(len - i + 1);
                v.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(64) + 1);
                let chunk = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            5 => v.truncate(rng.below(len + 1)),
            6 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            _ => {
                let i = rng.below(len + 1);
                let digits = rng.next().to_string();
                v.splice(i..i, digits.bytes());
            }
        }
    }
    v
}

fn replay(name: &str) {
    let body = fuzz_harness::target(name).expect("target");
    let seeds = fuzz_harness::seeds::seeds(name);
    assert!(!seeds.is_empty(), "{name} has no seeds");
    for s in &seeds {
        body(s);
    }
    // Saved crash inputs (minimized by cargo fuzz tmin), if any.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(name);
    let mut saved = 0;
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let data = std::fs::read(e.path()).expect("read regression input");
            body(&data);
            saved += 1;
        }
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    let n = mutations();
    for _ in 0..n {
        let a = &seeds[rng.below(seeds.len())];
        let b = &seeds[rng.below(seeds.len())];
        let input = mutate(a, b, &mut rng);
        body(&input);
    }
    eprintln!(
        "{name}: {} seeds, {saved} saved inputs, {n} mutations",
        seeds.len()
    );
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*
        #[test]
        fn every_target_is_replayed() {
            let mut ours = vec![$(stringify!($name)),*];
            let mut all: Vec<&str> = fuzz_harness::TARGETS.iter().map(|(n, _)| *n).collect();
            ours.sort_unstable();
            all.sort_unstable();
            assert_eq!(ours, all);
        }
    };
}

replay_tests!(
    csr_spec,
    signing_config,
    csr,
    certificate,
    crl,
    chain_verify,
    key,
    ocsp,
    rfc9440,
    xfcc,
    ca_api,
    gateway_config,
    tokens,
    rules,
);

#[test]
fn every_fuzz_target_file_calls_its_body() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    for (name, _) in fuzz_harness::TARGETS {
        let text = std::fs::read_to_string(dir.join(format!("{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz/fuzz_targets/{name}.rs: {e}"));
        assert!(text.contains(&format!("target(\"{name}\")")), "{name}.rs");
    }
}

/// The `ca_api` seeds get through parsing to signing (plain `sign` and
/// `authsign` with a valid token), so mutations start from deep states.
#[test]
fn ca_api_seeds_reach_signing() {
    let body = fuzz_harness::target("ca_api").expect("target");
    let before = fuzz_harness::ca_api_issued();
    for s in fuzz_harness::seeds::seeds("ca_api") {
        body(&s);
    }
    let issued = fuzz_harness::ca_api_issued() - before;
    assert!(
        issued >= 4,
        "only {issued} certificates issued by the seeds"
    );
}
