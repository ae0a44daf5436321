//! `portcullis gateway --config FILE`: a data-plane node of a fleet. Same
//! gateway as `serve`, its hostnames from the PostgreSQL store named by
//! `server.store` (LISTEN/NOTIFY plus a periodic check), a local copy of
//! the last snapshot in `server.data_dir` to start from when PostgreSQL is
//! down, catching up when it returns.
use std::path::PathBuf;

/// Run a fleet node.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// Gateway configuration (TOML) with `server.store = "postgres://…"`
    /// and, for the local snapshot copy, `server.data_dir`.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Runs the command.
pub fn run(a: GatewayArgs) -> anyhow::Result<()> {
    super::serve::run_role(&a.config, super::serve::Role::Node)
}
