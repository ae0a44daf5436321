//! # CFSSL-compatible CA HTTP API
//!
//! Serves `/api/v1/cfssl/*` so that stock `cfssl` clients (`gencert -remote`,
//! `sign -remote`, `info -remote`) work against Portcullis unchanged, and
//! offers the matching client ([`client`]) for `portcullis ca … --remote`.
//!
//! Differences from CFSSL, on purpose: an unknown profile is an error
//! (CFSSL falls back to `default`); request bodies over 1 MiB get 413; every
//! certificate is durably in the issuance log before the response is sent.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod envelope;
mod handlers;

pub use handlers::{router, CaState};

/// Largest request body accepted (bigger gets 413).
pub const MAX_BODY: usize = 1024 * 1024;

/// Serves the API on a bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: std::sync::Arc<CaState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
