//! The control plane inside `portcullis serve` (the store is opened by
//! `live.rs`): the bootstrap operator token, and the admin listener's
//! router (management API under `/api/v1` plus `/metrics`).

use std::sync::Arc;

use anyhow::Context as _;

/// Environment variable that sets the first operator token (instead of a
/// random one printed once). At least 32 characters.
pub const ADMIN_TOKEN_ENV: &str = "PORTCULLIS_ADMIN_TOKEN";

/// Makes the first operator token when there is none: from
/// `PORTCULLIS_ADMIN_TOKEN`, or random and printed once to stderr.
pub async fn bootstrap(store: &dyn store::Store) -> anyhow::Result<()> {
    let from_env = std::env::var(ADMIN_TOKEN_ENV)
        .ok()
        .filter(|s| !s.is_empty());
    let given = from_env.is_some();
    match control::bootstrap_admin(store, from_env)
        .await
        .context("bootstrap operator token")?
    {
        Some(_) if given => {
            eprintln!("portcullis: operator token taken from {ADMIN_TOKEN_ENV}");
        }
        Some(secret) => {
            eprintln!(
                "portcullis: first start: operator token (shown once, keep it): {}",
                secret.expose()
            );
        }
        None => {}
    }
    Ok(())
}

/// The admin listener's router: the management API and `/metrics`.
pub fn admin_router(store: Arc<dyn store::Store>, gw: Arc<gateway::Gateway>) -> axum::Router {
    let metrics = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let gw = gw.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    gw.metrics().render(),
                )
            }
        }),
    );
    metrics.merge(control::router(control::AppState::new(store)))
}

/// How often the managed CAs' CRLs are checked (and signed again when
/// past half their validity).
const CRL_REFRESH: std::time::Duration = std::time::Duration::from_secs(3600);

/// Keeps the managed CAs' CRLs fresh, hourly, for as long as serve runs.
pub fn spawn_crl_refresh(store: Arc<dyn store::Store>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CRL_REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = time::OffsetDateTime::now_utc();
            match control::managed::refresh_crls(store.as_ref(), now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(renewed = n, "managed CA CRLs signed again"),
                Err(e) => tracing::warn!(error = %e, "managed CA CRL refresh failed"),
            }
        }
    });
}
