//! The gateway's HTTP behaviour beyond one request: HTTP/1.1 `Upgrade`
//! tunnels (WebSocket), the idle timeout, and graceful shutdown finishing
//! a request in flight. Origins are hyper servers in the test process.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gateway::config::Config;
use gateway::{Gateway, Sites};
use http_body_util::Full;
use hyper::body::Bytes;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::client::TlsStream;

use super::{pki, Pki, Presents};

/// Starts a gateway for `a.test` in `mode` in front of `origin`, with
/// `server_extra` added to `[server]`; it stops when `stop` fires.
async fn gateway(
    p: &Pki,
    mode: &str,
    origin: SocketAddr,
    server_extra: &str,
    stop: oneshot::Receiver<()>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let text = format!(
        "[server]\nhttps = \"127.0.0.1:0\"\n{server_extra}\n[[ca]]\nname = \"u\"\npem = \"ca.pem\"\n\
         [[hostname]]\nname = \"a.test\"\ncert = \"s.pem\"\nkey = \"s-key.pem\"\n\
         origin = \"http://{origin}\"\n[hostname.mtls]\nmode = \"{mode}\"\ncas = [\"u\"]\n"
    );
    let config = Config::parse(&text, Path::new("/m")).expect("config");
    let files = p.files.clone();
    let sites = Sites::load(&config, &move |path| {
        files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    })
    .expect("sites");
    let l = tokio::net::TcpListener::bind(config.https)
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(Gateway::new(sites).serve(l, async move {
        let _ = stop.await;
    }));
    (addr, task)
}

/// A TLS connection to the gateway as `a.test`, with Alice's certificate
/// or none, ALPN `http/1.1`.
async fn connect(gw: SocketAddr, p: &Pki, alice: bool) -> TlsStream<TcpStream> {
    let provider = gateway::tls::provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(p.ca_pem.as_bytes()) {
        roots.add(c.expect("pem")).expect("root");
    }
    let b = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut cfg = if alice {
        let chain = CertificateDer::pem_slice_iter(p.alice.0.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("chain");
        let key = PrivateKeyDer::from_pem_slice(p.alice.1.as_bytes()).expect("key");
        let signer = provider.key_provider.load_private_key(key).expect("signer");
        b.with_client_cert_resolver(Arc::new(Presents(Arc::new(CertifiedKey::new(
            chain, signer,
        )))))
    } else {
        b.with_no_client_auth()
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(gw).await.expect("connect");
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("a.test").expect("name"), tcp)
        .await
        .expect("handshake")
}

/// Reads a response head (up to the blank line), bounded in size and time.
async fn read_head(s: &mut TlsStream<TcpStream>) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(20), async {
        while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
            match s.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    })
    .await
    .expect("response head in time");
    String::from_utf8_lossy(&head).into_owned()
}

/// An origin that accepts `Upgrade: echo` (answering 101 with the
/// `Client-Cert-Status` it saw in a response header) and then echoes every
/// byte; other requests get 200 "plain". Each upgrade is reported on `up`.
async fn upgrade_origin(up: mpsc::UnboundedSender<String>) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let up = up.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |mut req: hyper::Request<hyper::body::Incoming>| {
                        let up = up.clone();
                        async move {
                            let status = req
                                .headers()
                                .get("client-cert-status")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("absent")
                                .to_owned();
                            let wants = req
                                .headers()
                                .get("upgrade")
                                .is_some_and(|v| v.as_bytes() == b"echo");
                            if !wants {
                                return Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                    Full::new(Bytes::from("plain")),
                                ));
                            }
                            let on = hyper::upgrade::on(&mut req);
                            let seen = status.clone();
                            tokio::spawn(async move {
                                if let Ok(io) = on.await {
                                    let _ = up.send(seen);
                                    let mut io = hyper_util::rt::TokioIo::new(io);
                                    let mut buf = [0u8; 1024];
                                    while let Ok(n) = io.read(&mut buf).await {
                                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                                            break;
                                        }
                                    }
                                }
                            });
                            let mut r = hyper::Response::new(Full::new(Bytes::new()));
                            *r.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
                            r.headers_mut()
                                .insert("connection", "upgrade".parse().expect("value"));
                            r.headers_mut()
                                .insert("upgrade", "echo".parse().expect("value"));
                            r.headers_mut()
                                .insert("x-seen-status", status.parse().expect("value"));
                            Ok(r)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\n\
Upgrade: echo\r\nClient-Cert-Status: valid\r\n\r\n";

/// An HTTP/1.1 Upgrade through the gateway: the origin sees the verified
/// identity on the upgrade request (not the forged one), answers 101, and
/// bytes then flow both ways. Under `enforce`, a client without a valid
/// certificate gets the block response and the origin never upgrades.
#[tokio::test]
async fn upgrade_is_tunnelled_after_the_mtls_verdict() {
    let p = pki();
    let (up_tx, mut up_rx) = mpsc::unbounded_channel();
    let origin = upgrade_origin(up_tx).await;
    let (_stop, stop) = oneshot::channel();
    let (gw, _task) = gateway(&p, "enforce", origin, "", stop).await;

    let mut s = connect(gw, &p, true).await;
    s.write_all(UPGRADE).await.expect("write");
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("upgrade: echo"), "{head}");
    assert!(lower.contains("x-seen-status: valid"), "{head}");
    assert_eq!(up_rx.recv().await.as_deref(), Some("valid"));
    for msg in [&b"hello"[..], &b"second message"[..]] {
        s.write_all(msg).await.expect("write");
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut got))
            .await
            .expect("echo in time")
            .expect("echo");
        assert_eq!(got, msg);
    }

    // No certificate: blocked before the origin.
    let mut s = connect(gw, &p, false).await;
    s.write_all(UPGRADE).await.expect("write");
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(
        up_rx.try_recv().is_err(),
        "the origin upgraded a blocked client"
    );
}

/// `server.idle_timeout`: a keep-alive connection with no request in flight
/// is closed by the gateway (the client reads end-of-stream).
#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    let p = pki();
    let (up_tx, _up_rx) = mpsc::unbounded_channel();
    let origin = upgrade_origin(up_tx).await;
    let (_stop, stop) = oneshot::channel();
    let (gw, _task) = gateway(&p, "report", origin, "idle_timeout = 1", stop).await;
    let mut s = connect(gw, &p, true).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .expect("write");
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut body = [0u8; 5];
    s.read_exact(&mut body).await.expect("body");
    assert_eq!(&body, b"plain");
    // Nothing more is sent; the gateway closes the connection (bounded).
    let mut rest = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut rest)).await;
    assert!(r.is_ok(), "the idle connection was not closed");
    assert!(rest.is_empty(), "{rest:?}");
}

/// Shutdown while a request is at the origin: the gateway stops accepting
/// but the request in flight still gets its answer.
#[tokio::test]
async fn graceful_shutdown_finishes_the_request_in_flight() {
    let p = pki();
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel::<()>();
    let (release_tx, release) = tokio::sync::watch::channel(false);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let arrived_tx = arrived_tx.clone();
            let release = release.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let arrived_tx = arrived_tx.clone();
                    let mut release = release.clone();
                    async move {
                        let _ = arrived_tx.send(());
                        let _ = release.wait_for(|r| *r).await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from("finished"),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    let (stop_tx, stop) = oneshot::channel();
    let (gw, task) = gateway(&p, "report", origin, "", stop).await;
    let mut s = connect(gw, &p, true).await;
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .expect("write");
    tokio::time::timeout(Duration::from_secs(20), arrived.recv())
        .await
        .expect("request reached the origin");
    stop_tx.send(()).expect("stop");
    // New connections are refused once the listener is dropped (bounded).
    let mut refused = false;
    for _ in 0..200 {
        if TcpStream::connect(gw).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "still accepting after shutdown");
    release_tx.send(true).expect("release");
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest)).await;
    assert!(
        String::from_utf8_lossy(&rest).contains("finished"),
        "{rest:?}"
    );
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("serve returned after draining")
        .expect("serve task");
}
