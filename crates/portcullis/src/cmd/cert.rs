//! `portcullis cert …` (placeholder).
#[derive(Debug, clap::Subcommand)]
pub enum CertCommand {
    /// JSON facts of a certificate or CSR.
    Info { file: std::path::PathBuf },
}

pub fn run(_c: CertCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
