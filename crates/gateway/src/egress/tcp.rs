//! TCP mode: each app connection becomes one TLS connection to the
//! upstream with the service's certificate, then bytes flow both ways. A
//! TLS failure closes the app's connection and is logged with its reason.
//!
//! With `starttls = "postgres"`, the egress sends PostgreSQL's
//! `SSLRequest` before TLS, and answers an app's own `SSLRequest` or
//! `GSSENCRequest` with `N` (no TLS between the app and the egress), so
//! clients with `sslmode=prefer` work as well as `sslmode=disable`.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
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
            e.metrics.outcome(&e.name, err.code());
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
    e.metrics.outcome(&e.name, "ok");
    if !prefix.is_empty() {
        if let Err(err) = tls.write_all(&prefix).await {
            tracing::warn!(error = %err, "upstream write failed");
            return;
        }
    }
    match copy_both_ways(&mut app, &mut tls, e.idle_timeout).await {
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
                // Written before the alert was read: the same refusal.
                None if matches!(
                    err.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ) =>
                {
                    tracing::warn!(
                        error = %err,
                        "connection closed by a peer; if the upstream closed it right after the \
                         handshake, does it trust this service's certificate?"
                    )
                }
                None => tracing::info!(error = %err, "connection ended with an error"),
            }
        }
    }
}

/// A stream that records when bytes last moved (milliseconds since `start`).
struct Watched<'a, S> {
    inner: &'a mut S,
    start: Instant,
    last: Arc<AtomicU64>,
}

impl<S> Watched<'_, S> {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut *self.inner).poll_read(cx, buf);
        if buf.filled().len() != before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut *self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

/// Copies both ways until either side closes; with an idle timeout, ends
/// the connection when no byte moved in either direction for that long.
async fn copy_both_ways<A, B>(
    a: &mut A,
    b: &mut B,
    idle: Option<Duration>,
) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let Some(idle) = idle else {
        return tokio::io::copy_bidirectional(a, b).await;
    };
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut wa = Watched {
        inner: a,
        start,
        last: last.clone(),
    };
    let mut wb = Watched {
        inner: b,
        start,
        last: last.clone(),
    };
    let copy = tokio::io::copy_bidirectional(&mut wa, &mut wb);
    tokio::pin!(copy);
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    loop {
        let since = u64::try_from(start.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_sub(last.load(Ordering::Relaxed));
        if since >= idle_ms {
            tracing::info!(idle_s = idle.as_secs(), "idle timeout; closing both sides");
            return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"));
        }
        let wait = Duration::from_millis(idle_ms - since);
        tokio::select! {
            r = &mut copy => return r,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn idle_connections_are_closed() {
        let (mut app, mut app_peer) = tokio::io::duplex(64);
        let (mut up, mut up_peer) = tokio::io::duplex(64);
        let proxy = tokio::spawn(async move {
            copy_both_ways(
                &mut app_peer,
                &mut up_peer,
                Some(Duration::from_millis(300)),
            )
            .await
        });
        for _ in 0..3 {
            app.write_all(b"ping").await.expect("write");
            let mut b = [0u8; 4];
            up.read_exact(&mut b).await.expect("read");
            assert_eq!(&b, b"ping");
            up.write_all(b"pong").await.expect("write");
            app.read_exact(&mut b).await.expect("read");
            assert_eq!(&b, b"pong");
        }
        // Then silence, both sides still open: closed by the egress.
        let r = tokio::time::timeout(Duration::from_secs(30), proxy)
            .await
            .expect("closed by the idle timeout")
            .expect("task");
        assert_eq!(r.expect_err("idle").kind(), io::ErrorKind::TimedOut);
        drop((app, up));
    }
}
