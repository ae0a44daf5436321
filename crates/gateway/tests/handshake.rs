//! The gateway in-process against an in-process rustls client: what the
//! handshake proves (CertificateVerify) and what it refuses (unknown SNI).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gateway::config::Config;
use gateway::{Gateway, Sites};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Bytes;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

struct Pki {
    ca_pem: String,
    files: HashMap<PathBuf, Vec<u8>>,
    alice: (String, String),
    other_key: String,
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.distinguished_name.push(DnType::CommonName, "Unit Root");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("key");
    let ca_pem = ca.self_signed(&ca_key).expect("ca").pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |sans: Vec<String>, eku| {
        let mut p = CertificateParams::new(sans).expect("params");
        p.distinguished_name.push(DnType::CommonName, "leaf");
        p.extended_key_usages = vec![eku];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let k = KeyPair::generate().expect("key");
        (
            p.signed_by(&k, &issuer).expect("sign").pem(),
            k.serialize_pem(),
        )
    };
    let server = leaf(
        vec!["a.test".to_owned()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let alice = leaf(vec![], ExtendedKeyUsagePurpose::ClientAuth);
    let other_key = KeyPair::generate().expect("key").serialize_pem();
    let mut files = HashMap::new();
    files.insert(PathBuf::from("/m/ca.pem"), ca_pem.clone().into_bytes());
    files.insert(PathBuf::from("/m/s.pem"), server.0.into_bytes());
    files.insert(PathBuf::from("/m/s-key.pem"), server.1.into_bytes());
    Pki {
        ca_pem,
        files,
        alice,
        other_key,
    }
}

/// An origin answering with the `Client-Cert-Status` it received.
async fn origin() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| {
                        let v = req
                            .headers()
                            .get("client-cert-status")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("absent")
                            .to_owned();
                        async move {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from(v),
                            )))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

async fn start(p: &Pki, mode: &str) -> SocketAddr {
    let origin = origin().await;
    let text = format!(
        "[server]\nhttps = \"127.0.0.1:0\"\n[[ca]]\nname = \"u\"\npem = \"ca.pem\"\n\
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
    tokio::spawn(Gateway::new(sites).serve(l, std::future::pending()));
    addr
}

/// Presents `chain` but signs the CertificateVerify with `key`, whatever it
/// is (rustls' own builder would refuse a mismatch).
#[derive(Debug)]
struct Presents(Arc<CertifiedKey>);

impl ResolvesClientCert for Presents {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

async fn get(
    gw: SocketAddr,
    sni: &str,
    ca_pem: &str,
    client: Option<(&str, &str)>,
    tls13: bool,
) -> Result<(u16, String), String> {
    let provider = gateway::tls::provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let versions: &[&rustls::SupportedProtocolVersion] = if tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12]
    };
    let b = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let cfg = match client {
        None => b.with_no_client_auth(),
        Some((chain, key)) => {
            let chain = CertificateDer::pem_slice_iter(chain.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| e.to_string())?;
            let signer = provider
                .key_provider
                .load_private_key(key)
                .map_err(|e| e.to_string())?;
            b.with_client_cert_resolver(Arc::new(Presents(Arc::new(CertifiedKey::new(
                chain, signer,
            )))))
        }
    };
    let tcp = tokio::net::TcpStream::connect(gw)
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(
            ServerName::try_from(sni.to_owned()).map_err(|e| e.to_string())?,
            tcp,
        )
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = hyper::Request::get("/")
        .header("host", sni)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn valid_certificate_is_forwarded_as_valid_on_tls12_and_tls13() {
    let p = pki();
    let gw = start(&p, "enforce").await;
    for tls13 in [true, false] {
        let r = get(
            gw,
            "a.test",
            &p.ca_pem,
            Some((&p.alice.0, &p.alice.1)),
            tls13,
        )
        .await;
        assert_eq!(r, Ok((200, "valid".to_owned())), "tls13={tls13}");
    }
}

/// A client that shows Alice's certificate without her key fails the
/// handshake: the CertificateVerify is always checked, even in `report`
/// where an untrusted chain would still be forwarded.
#[tokio::test]
async fn certificate_without_its_key_fails_the_handshake() {
    let p = pki();
    for mode in ["report", "enforce"] {
        let gw = start(&p, mode).await;
        for tls13 in [true, false] {
            let r = get(
                gw,
                "a.test",
                &p.ca_pem,
                Some((&p.alice.0, &p.other_key)),
                tls13,
            )
            .await;
            assert!(r.is_err(), "{mode} tls13={tls13}: {r:?}");
            // The same connection with the right key works.
            let r = get(
                gw,
                "a.test",
                &p.ca_pem,
                Some((&p.alice.0, &p.alice.1)),
                tls13,
            )
            .await;
            assert!(r.is_ok(), "{mode} tls13={tls13}: {r:?}");
        }
    }
}

#[tokio::test]
async fn unknown_sni_gets_unrecognized_name() {
    let p = pki();
    let gw = start(&p, "report").await;
    let r = get(gw, "b.test", &p.ca_pem, None, true).await;
    let e = r.expect_err("handshake must fail");
    assert!(e.contains("UnrecognisedName"), "{e}");
    let r = get(gw, "a.test", &p.ca_pem, None, true).await;
    assert_eq!(r, Ok((200, "none".to_owned())));
}

/// A hostname changed live (built from in-memory PEM bytes, applied
/// copy-on-write with `Gateway::update_sites`): a connection opened before
/// the change keeps working with the policy it started with, new
/// connections get the new one, and nothing is dropped.
#[tokio::test]
async fn live_change_keeps_open_connections_and_applies_to_new_ones() {
    use gateway::config::{BlockResponse, Mode, OriginTimeouts};
    use gateway::snapshot::{CaSource, SiteBuilder, SiteSource};

    let p = pki();
    let origin = origin().await;
    let ca = CaSource {
        pem: p.ca_pem.clone().into_bytes(),
        crl: None,
    };
    let file = |n: &str| p.files[&PathBuf::from(format!("/m/{n}"))].clone();
    let (cert, key) = (file("s.pem"), file("s-key.pem"));
    let src = |mode| SiteSource {
        name: "a.test",
        cert_pem: &cert,
        key_pem: &key,
        origin: format!("http://{origin}").parse().expect("uri"),
        origin_tls: None,
        mode,
        block: BlockResponse::default(),
        cas: vec![&ca],
        identity: Default::default(),
        edge: Default::default(),
    };
    let mut b = SiteBuilder::new(OriginTimeouts::default());
    let site = b.build(&src(Mode::Report)).expect("site");
    let gw = Gateway::new(Sites::default().with_changes([site], std::iter::empty::<&str>()));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(gw.clone().serve(l, std::future::pending()));

    // One keep-alive connection, no client certificate.
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(p.ca_pem.as_bytes()) {
        roots.add(c.expect("ca")).expect("root");
    }
    let cfg = rustls::ClientConfig::builder_with_provider(gateway::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("a.test").expect("name"), tcp)
        .await
        .expect("handshake");
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .expect("http");
    tokio::spawn(conn);
    let req = || {
        hyper::Request::get("/")
            .header("host", "a.test")
            .body(Empty::<Bytes>::new())
            .expect("request")
    };
    let r = send.send_request(req()).await.expect("first request");
    assert_eq!(r.status(), 200);
    let _ = r.into_body().collect().await;

    // Switch the hostname to enforce.
    let enforce = b.build(&src(Mode::Enforce)).expect("site");
    gw.update_sites(|cur| cur.with_changes([enforce], std::iter::empty::<&str>()));
    assert_eq!(
        gw.sites().get("a.test").map(|s| s.mode),
        Some(Mode::Enforce)
    );

    // The open connection is not dropped: it finishes with its policy.
    let r = send
        .send_request(req())
        .await
        .expect("the open connection still works");
    assert_eq!(r.status(), 200);
    let body = r.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"none");
    // A new connection gets the new policy.
    let r = get(addr, "a.test", &p.ca_pem, None, true).await;
    assert_eq!(r.map(|(s, _)| s), Ok(403));
    let r = get(
        addr,
        "a.test",
        &p.ca_pem,
        Some((&p.alice.0, &p.alice.1)),
        true,
    )
    .await;
    assert_eq!(r, Ok((200, "valid".to_owned())));
}
/// Upgrades (WebSocket), idle connections, graceful shutdown.
#[path = "handshake/flow.rs"]
mod flow;
