//! The agent's one error type.

use std::path::PathBuf;

/// What can go wrong obtaining, storing or handing out a certificate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The configuration is invalid; every problem is listed.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigErrors),
    /// The CA could not be reached or refused the request (retried with
    /// backoff by the renewal loop).
    #[error("{0}")]
    Ca(#[from] ca_api::client::ClientError),
    /// Making the key or the CSR failed.
    #[error("{0}")]
    Pki(#[from] pki::PkiError),
    /// The CA answered with a certificate we cannot use.
    #[error("the CA returned an unusable certificate: {0}")]
    BadCertificate(String),
    /// A file or directory could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The post-renewal hook failed (the certificate is in place).
    #[error("post-renewal hook: {0}")]
    Hook(String),
    /// Anything else the agent refuses to do.
    #[error("{0}")]
    Refused(String),
}

impl AgentError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AgentError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with [`AgentError`].
pub type Result<T> = std::result::Result<T, AgentError>;
