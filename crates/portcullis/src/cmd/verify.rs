//! `portcullis verify` (placeholder, owned by the client-auth work).
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// PEM file with the leaf certificate first, then any intermediates.
    pub chain: std::path::PathBuf,
}

pub fn run(_a: VerifyArgs) -> ExitCode {
    eprintln!("not implemented yet");
    ExitCode::from(2)
}
