//! Subcommands. Each module owns its clap arguments and a `run` function.

pub mod agent;
pub mod ca;
pub mod cert;
pub mod control;
pub mod demo;
pub mod files;
pub mod gateway;
pub mod live;
pub mod serve;
pub mod token;
pub mod verify;

use std::process::ExitCode;

/// Logs go to stderr (stdout is reserved for machine-readable output).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Turns a command result into an exit code, printing the error chain to stderr.
pub fn exit(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
