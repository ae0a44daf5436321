//! The Portcullis gateway: an SNI-routed TLS listener that verifies client
//! certificates and forwards requests to HTTP origins.
//!
//! * [`config`]: the TOML configuration, raw and validated (the caller reads
//!   the file; paths are resolved against a directory it passes).
//! * [`Sites`]: the hostnames ready to serve (TLS configs, trust stores).
//! * [`snapshot`]: sites from in-memory PEM bytes, one hostname at a time
//!   (the control-plane store's live changes).
//! * [`edge`]: the edge policy phases (token → rules → rate limit).
//! * [`Gateway`]: the listener: ClientHello → SNI → per-hostname handshake
//!   → verdict once per connection → per-request phases ([`proxy`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let text = std::fs::read_to_string("/etc/portcullis/gateway.toml")?;
//! let config = gateway::config::Config::parse(&text, std::path::Path::new("/etc/portcullis"))?;
//! let sites = gateway::Sites::load(&config, &|p| std::fs::read(p))?;
//! let listener = tokio::net::TcpListener::bind(config.https).await?;
//! gateway::Gateway::new(sites).serve(listener, std::future::pending()).await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod edge;
pub mod egress;
pub mod identity;
pub mod metrics;
pub mod origin;
pub mod proxy;
mod server;
mod site;
pub mod snapshot;
pub mod tls;

pub use server::{AccessLog, Gateway};
pub use site::{Site, Sites};
