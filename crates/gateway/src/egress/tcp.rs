//! TCP mode: each app connection becomes one TLS connection to the
//! upstream with the service's certificate, then bytes flow both ways. A
//! TLS failure closes the app's connection and is logged with its reason.
//!
//! With `starttls = "postgres"`, the egress sends PostgreSQL's
//! `SSLRequest` before TLS, and answers an app's own `SSLRequest` or
//! `GSSENCRequest` with `N` (no TLS between the app and the egress), so
//! clients with `sslmode=prefer` work as well as `sslmode=disable`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::config::StartTls;
use super::upstream::{PG_GSSENC_REQUEST, PG_SSL_REQUEST};
use super::Egress;

/// How long the app may take to send its first PostgreSQL message.
const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads the app's first PostgreSQL message head (8 bytes), answering
/// `SSLRequest` / `GSSENCRequest` with `N`; returns the bytes to send
/// upstream once TLS is up.
async fn pg_first_message(app: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    for _ in 0..3 {
        let mut head = [0u8; 8];
        app.read_exact(&mut head).await?;
        if head == PG_SSL_REQUEST || head == PG_GSSENC_REQUEST {
            app.write_all(b"N").await?;
            continue;
        }
        return Ok(head.to_vec());
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "too many SSLRequest/GSSENCRequest messages",
    ))
}

/// Serves one app connection.
pub(super) async fn serve_connection(e: Arc<Egress>, mut app: TcpStream) {
    let up = e.default.clone();
    let prefix = if e.starttls == Some(StartTls::Postgres) {
        match tokio::time::timeout(FIRST_MESSAGE_TIMEOUT, pg_first_message(&mut app)).await {
            Ok(Ok(p)) => p,
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "app connection ended before its first message");
                return;
            }
            Err(_) => {
                tracing::info!("app sent no first message in time; closing");
                return;
            }
        }
    } else {
        Vec::new()
    };
    let mut tls = match up.connector.connect().await {
        Ok(t) => t,
        Err(err) => {
            tracing::warn!(
                code = err.code(),
                error = %err,
                "upstream connection failed; closing the app's connection"
            );
            let _ = app.shutdown().await;
            return;
        }
    };
    tracing::debug!(upstream = %up.authority, "upstream TLS established");
    if !prefix.is_empty() {
        if let Err(err) = tls.write_all(&prefix).await {
            tracing::warn!(error = %err, "upstream write failed");
            return;
        }
    }
    match tokio::io::copy_bidirectional(&mut app, &mut tls).await {
        Ok((to_upstream, to_app)) => {
            tracing::debug!(to_upstream, to_app, "connection closed");
        }
        Err(err) => {
            // A TLS 1.3 server that refuses our certificate says so on
            // the first read after the handshake.
            match err
                .get_ref()
                .and_then(|i| i.downcast_ref::<rustls::Error>())
            {
                Some(t) => tracing::warn!(
                    error = %t,
                    "upstream ended the TLS connection; does it trust this service's certificate?"
                ),
                None => tracing::info!(error = %err, "connection ended with an error"),
            }
        }
    }
}
