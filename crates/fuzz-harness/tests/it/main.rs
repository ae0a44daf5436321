//! Stable replay of the fuzz targets: every seed, every saved crash
//! input (`fuzz/regressions/<target>/`), and a fixed number of
//! deterministic mutations of the seeds go through each target body, with
//! its oracles. This is the fuzzing that runs in every CI run even where
//! no nightly toolchain is installed; scripts/fuzz.sh runs the same bodies
//! under libFuzzer.

mod config;
mod replay;
