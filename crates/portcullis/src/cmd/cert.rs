//! `portcullis cert info`.
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum CertCommand {
    /// Print JSON facts of a certificate or CSR (PEM or DER): subject, issuer,
    /// serial, SANs, SKI, AKI, SHA-256 fingerprint, validity, key usages.
    Info {
        /// Certificate or CSR file.
        file: PathBuf,
    },
}

pub fn run(c: CertCommand) -> Result<()> {
    match c {
        CertCommand::Info { file } => {
            let data = super::files::read(&file)?;
            let is_csr = data
                .windows(b"CERTIFICATE REQUEST".len())
                .any(|w| w == b"CERTIFICATE REQUEST");
            let v = if is_csr {
                serde_json::to_value(pki::info::csr_info(&data)?)?
            } else {
                match pki::info::cert_info(&data) {
                    Ok(i) => serde_json::to_value(i)?,
                    // DER input may be a CSR as well.
                    Err(e) => match pki::info::csr_info(&data) {
                        Ok(i) => serde_json::to_value(i)?,
                        Err(_) => return Err(e.into()),
                    },
                }
            };
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
    }
}
