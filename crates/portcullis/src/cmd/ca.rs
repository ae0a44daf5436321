//! `portcullis ca …` (placeholder).
#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Create a new self-signed root CA.
    Init,
}

pub fn run(_c: CaCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
