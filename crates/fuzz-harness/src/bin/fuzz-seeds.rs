//! Writes the seed corpus of every fuzz target: `fuzz-seeds DIR` creates
//! `DIR/<target>/seed-NNNN` files (used by scripts/fuzz.sh; the corpus is
//! made at run time, never committed).

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: fuzz-seeds DIR");
        return ExitCode::from(2);
    };
    let dir = std::path::PathBuf::from(dir);
    for (name, _) in fuzz_harness::TARGETS {
        let d = dir.join(name);
        let seeds = fuzz_harness::seeds::seeds(name);
        if let Err(e) = std::fs::create_dir_all(&d) {
            eprintln!("fuzz-seeds: {}: {e}", d.display());
            return ExitCode::FAILURE;
        }
        for (i, s) in seeds.iter().enumerate() {
            if let Err(e) = std::fs::write(d.join(format!("seed-{i:04}")), s) {
                eprintln!("fuzz-seeds: {}: {e}", d.display());
                return ExitCode::FAILURE;
            }
        }
        println!("{name}: {} seeds", seeds.len());
    }
    ExitCode::SUCCESS
}
