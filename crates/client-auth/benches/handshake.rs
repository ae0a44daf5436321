//! The ceiling for the gateway benchmark (`bench/gateway.sh`): rustls's own
//! TLS 1.3 mutual-auth handshake, client and server in one process, no
//! sockets, with the same kind of certificates the benchmark uses (ECDSA P-256;
//! the client sends leaf + intermediate, the server verifies it with
//! `WebPkiClientVerifier` against the root) and the same provider (aws-lc-rs).
//!
//! Benches:
//! - `mtls_handshake/x25519/full`: one whole handshake (both sides) per op;
//! - `mtls_handshake/x25519/server_side`: the same handshake, but only the
//!   time spent in the server's calls is counted (`iter_custom`): the server
//!   work per handshake, the figure to set beside a server's CPU per handshake;
//! - `mtls_handshake/default_groups/…`: the same with rustls's default key
//!   exchange groups (X25519MLKEM768 first), what two rustls peers negotiate.
//!
//! X25519 is the group nginx 1.22 with OpenSSL 3.0 negotiates, and the one the
//! load generator (`crates/portcullis/examples/tls_load.rs`) offers by default.
//! No session tickets, no resumption: every handshake is a full one.
//!
//! ```text
//! cargo bench -p client-auth --bench handshake
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::Resumption;
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

const SNI: &str = "bench.test";

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = true;
    p
}

fn leaf_params(san: &str, cn: &str, eku: ExtendedKeyUsagePurpose) -> CertificateParams {
    let mut p = CertificateParams::new(vec![san.to_string()]).expect("leaf params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![eku];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    p
}

fn pkcs8(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

/// Root → intermediate → client leaf, and root → server leaf; all P-256.
struct Pki {
    root: CertificateDer<'static>,
    client_chain: Vec<CertificateDer<'static>>,
    client_key: PrivateKeyDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let root_key = KeyPair::generate().expect("root key");
    let root_p = ca_params("Bench Root");
    let root = root_p.self_signed(&root_key).expect("root cert");
    let root_issuer = Issuer::new(root_p, root_key);

    let int_key = KeyPair::generate().expect("intermediate key");
    let int_p = ca_params("Bench Intermediate");
    let int = int_p
        .signed_by(&int_key, &root_issuer)
        .expect("intermediate cert");
    let int_issuer = Issuer::new(int_p, int_key);

    let client_key = KeyPair::generate().expect("client key");
    let client = leaf_params(
        "client.bench.test",
        "bench client",
        ExtendedKeyUsagePurpose::ClientAuth,
    )
    .signed_by(&client_key, &int_issuer)
    .expect("client cert");

    let server_key = KeyPair::generate().expect("server key");
    let server = leaf_params(SNI, SNI, ExtendedKeyUsagePurpose::ServerAuth)
        .signed_by(&server_key, &root_issuer)
        .expect("server cert");

    Pki {
        root: root.der().clone(),
        client_chain: vec![client.der().clone(), int.der().clone()],
        client_key: pkcs8(&client_key),
        server_chain: vec![server.der().clone()],
        server_key: pkcs8(&server_key),
    }
}

fn configs(pki: &Pki, x25519_only: bool) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let mut provider = aws_lc_rs::default_provider();
    if x25519_only {
        provider.kx_groups = vec![aws_lc_rs::kx_group::X25519];
    }
    let provider: Arc<CryptoProvider> = Arc::new(provider);
    let mut roots = RootCertStore::empty();
    roots.add(pki.root.clone()).expect("root into store");
    let roots = Arc::new(roots);

    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .expect("client verifier");
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3 server")
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .expect("server cert");
    server.send_tls13_tickets = 0;

    let mut client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3 client")
        .with_root_certificates(roots)
        .with_client_auth_cert(pki.client_chain.clone(), pki.client_key.clone_key())
        .expect("client cert");
    client.resumption = Resumption::disabled();
    (Arc::new(client), Arc::new(server))
}

/// Moves all pending TLS records from one side to the other.
fn pump(
    from: &mut dyn FnMut(&mut Vec<u8>) -> usize,
    to: &mut dyn FnMut(&[u8]),
    buf: &mut Vec<u8>,
) -> bool {
    buf.clear();
    if from(buf) == 0 {
        return false;
    }
    to(buf);
    true
}

/// One full handshake; returns the time spent in the server's calls.
fn handshake(client_cfg: &Arc<ClientConfig>, server_cfg: &Arc<ServerConfig>) -> Duration {
    let name = ServerName::try_from(SNI).expect("server name");
    let mut client = ClientConnection::new(client_cfg.clone(), name).expect("client conn");
    let started = Instant::now();
    let mut server = ServerConnection::new(server_cfg.clone()).expect("server conn");
    let mut server_time = started.elapsed();
    let mut buf = Vec::with_capacity(8192);
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 20, "handshake does not finish");
        // client → server
        let c2s = pump(
            &mut |b| {
                let mut n = 0;
                while client.wants_write() {
                    n += client.write_tls(b).expect("client write_tls");
                }
                n
            },
            &mut |b| {
                let t = Instant::now();
                let mut rd = b;
                while !rd.is_empty() {
                    server.read_tls(&mut rd).expect("server read_tls");
                    server
                        .process_new_packets()
                        .expect("server rejects the handshake");
                }
                server_time += t.elapsed();
            },
            &mut buf,
        );
        // server → client
        let t = Instant::now();
        let mut out = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut out).expect("server write_tls");
        }
        server_time += t.elapsed();
        let s2c = !out.is_empty();
        if s2c {
            let mut rd = &out[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).expect("client read_tls");
                client
                    .process_new_packets()
                    .expect("client rejects the handshake");
            }
        }
        if !c2s && !s2c && !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
    }
    assert!(server.peer_certificates().is_some_and(|c| c.len() == 2));
    server_time
}

fn bench(c: &mut Criterion) {
    let pki = pki();
    let mut group = c.benchmark_group("mtls_handshake");
    for (label, x25519_only) in [("x25519", true), ("default_groups", false)] {
        let (client_cfg, server_cfg) = configs(&pki, x25519_only);
        handshake(&client_cfg, &server_cfg); // fails loudly if misconfigured
        group.bench_function(format!("{label}/full"), |b| {
            b.iter(|| handshake(&client_cfg, &server_cfg))
        });
        group.bench_function(format!("{label}/server_side"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| handshake(&client_cfg, &server_cfg))
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
