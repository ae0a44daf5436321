//! `portcullis demo`: the main job end to end, on embedded defaults, with
//! nothing installed. In a temp dir it makes a CA, another tenant's CA,
//! a server certificate and client certificates (valid, other CA,
//! expired, revoked + CRL); starts an echo origin and the gateway on
//! 127.0.0.1 ephemeral ports, in this process; sends requests with each
//! certificate and none to a `report` and an `enforce` hostname through an
//! in-process rustls client; then requests a token-protected path
//! (`/private/*` on the report hostname, Cloudflare-style signed URLs)
//! with a valid token, none, a tampered one and an expired one; prints
//! what the origin saw and exits 0 only if every outcome was the expected
//! one.
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use gateway::config::Config;
use gateway::{Gateway, Sites};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Bytes;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use time::OffsetDateTime;

/// Prints a line; a closed stdout (`| head`) is not an error worth a panic.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// Run the demo.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the temp dir (certificates, keys, gateway.toml) and print its path.
    #[arg(long)]
    pub keep: bool,
}

const HOSTS: [&str; 2] = ["report.demo.test", "enforce.demo.test"];
const REVOKED_SERIAL: u64 = 0x1004;
/// The demo's token secret (a real deployment reads it from a 0600 file:
/// `secret_files`).
const TOKEN_SECRET: &[u8] = b"demo-token-secret";
const TOKEN_TTL: u64 = 300;

struct Client {
    name: &'static str,
    /// Certificate chain PEM and key PEM; None: no certificate.
    cert: Option<(String, String)>,
}

/// What one request should produce.
struct Expect {
    status: u16,
    /// What the origin saw: None if it must not see the request, else
    /// (Client-Cert-Status, Client-Cert-Error).
    origin: Option<(&'static str, &'static str)>,
}

fn make_ca(cn: &str) -> anyhow::Result<(String, Issuer<'static, KeyPair>)> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Portcullis demo");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
    p.not_after = OffsetDateTime::now_utc() + time::Duration::days(30);
    let key = KeyPair::generate()?;
    let cert = p.self_signed(&key)?;
    Ok((cert.pem(), Issuer::new(p, key)))
}

fn leaf(
    cn: &str,
    sans: Vec<String>,
    eku: ExtendedKeyUsagePurpose,
    serial: u64,
    valid: (OffsetDateTime, OffsetDateTime),
    issuer: &Issuer<'_, KeyPair>,
) -> anyhow::Result<(String, String)> {
    let mut p = CertificateParams::new(sans)?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![eku];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    p.serial_number = Some(SerialNumber::from(serial));
    (p.not_before, p.not_after) = valid;
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Certificates and the config in `dir`; returns the clients.
fn make_pki(dir: &Path, origin: SocketAddr) -> anyhow::Result<(String, Vec<Client>)> {
    let now = OffsetDateTime::now_utc();
    let year = (
        now - time::Duration::days(1),
        now + time::Duration::days(365),
    );
    let (ca_pem, ca) = make_ca("Demo Root")?;
    let (other_pem, other) = make_ca("Other Tenant Root")?;
    let server_names: Vec<String> = HOSTS.iter().map(|h| h.to_string()).collect();
    let (server, server_key) = leaf(
        "gateway",
        server_names,
        ExtendedKeyUsagePurpose::ServerAuth,
        0x1000,
        year,
        &ca,
    )?;
    let client = ExtendedKeyUsagePurpose::ClientAuth;
    let valid = leaf("alice", vec![], client.clone(), 0x1001, year, &ca)?;
    let other_tenant = leaf("mallory", vec![], client.clone(), 0x1002, year, &other)?;
    let y2020 = time::macros::datetime!(2020-01-01 0:00 UTC);
    let expired = leaf(
        "old",
        vec![],
        client.clone(),
        0x1003,
        (y2020, y2020 + time::Duration::days(1)),
        &ca,
    )?;
    let revoked = leaf("carol", vec![], client, REVOKED_SERIAL, year, &ca)?;
    let crl = CertificateRevocationListParams {
        this_update: now - time::Duration::hours(1),
        next_update: now + time::Duration::days(7),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(REVOKED_SERIAL),
            revocation_time: now - time::Duration::hours(1),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca)?;
    for (name, text) in [
        ("ca.pem", ca_pem.as_str()),
        ("other.pem", other_pem.as_str()),
        ("ca.crl", crl.pem()?.as_str()),
        ("server.pem", server.as_str()),
        ("server-key.pem", server_key.as_str()),
    ] {
        std::fs::write(dir.join(name), text).with_context(|| format!("write {name}"))?;
    }
    let mut toml = String::from(
        "[server]\nhttps = \"127.0.0.1:0\"\n\n[[ca]]\nname = \"demo\"\npem = \"ca.pem\"\n\
         crl = \"ca.crl\"\n\n[[ca]]\nname = \"other\"\npem = \"other.pem\"\n",
    );
    for (host, mode) in HOSTS.iter().zip(["report", "enforce"]) {
        let _ = write!(
            toml,
            "\n[[hostname]]\nname = \"{host}\"\ncert = \"server.pem\"\nkey = \"server-key.pem\"\n\
             origin = \"http://{origin}\"\n\n[hostname.mtls]\nmode = \"{mode}\"\ncas = [\"demo\"]\n"
        );
        if mode == "report" {
            let _ = write!(
                toml,
                "\n[[hostname.token]]\nscheme = \"cloudflare\"\npaths = [\"/private/*\"]\n\
                 secrets = [\"{}\"]\nttl = {TOKEN_TTL}\nblock_status = 401\n",
                String::from_utf8_lossy(TOKEN_SECRET)
            );
        }
    }
    std::fs::write(dir.join("gateway.toml"), &toml).context("write gateway.toml")?;
    let clients = vec![
        Client {
            name: "no certificate",
            cert: None,
        },
        Client {
            name: "valid",
            cert: Some(valid),
        },
        Client {
            name: "other tenant's CA",
            cert: Some(other_tenant),
        },
        Client {
            name: "expired",
            cert: Some(expired),
        },
        Client {
            name: "revoked",
            cert: Some(revoked),
        },
    ];
    Ok((ca_pem, clients))
}

fn expected(mode: &str, client: &str) -> Expect {
    let (status, error) = match client {
        "no certificate" => ("none", "-"),
        "valid" => ("valid", "-"),
        "other tenant's CA" => ("invalid", "unknown-issuer"),
        "expired" => ("invalid", "expired"),
        _ => ("invalid", "revoked"),
    };
    if mode == "enforce" && status != "valid" {
        Expect {
            status: 403,
            origin: None,
        }
    } else {
        Expect {
            status: 200,
            origin: Some((status, error)),
        }
    }
}

type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// The origin: records the identity headers it receives, answers 200.
async fn origin(listener: tokio::net::TcpListener, seen: Seen) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let get = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-")
                            .to_owned()
                    };
                    if let Ok(mut s) = seen.lock() {
                        s.push((get("client-cert-status"), get("client-cert-error")));
                    }
                    async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from("hello from the origin\n"),
                        )))
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                .await;
        });
    }
}

/// One HTTPS request through the gateway; returns (status, body).
async fn request(
    gw: SocketAddr,
    host: &str,
    ca_pem: &str,
    cert: Option<&(String, String)>,
) -> anyhow::Result<(u16, String)> {
    request_path(gw, host, "/", ca_pem, cert).await
}

/// One HTTPS request for `path` through the gateway; returns (status, body).
async fn request_path(
    gw: SocketAddr,
    host: &str,
    path: &str,
    ca_pem: &str,
    cert: Option<&(String, String)>,
) -> anyhow::Result<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let b = rustls::ClientConfig::builder_with_provider(gateway::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut cfg = match cert {
        None => b.with_no_client_auth(),
        Some((chain, key)) => {
            let chain =
                CertificateDer::pem_slice_iter(chain.as_bytes()).collect::<Result<Vec<_>, _>>()?;
            b.with_client_auth_cert(chain, PrivateKeyDer::from_pem_slice(key.as_bytes())?)?
        }
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(gw).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from(host.to_owned())?, tcp)
        .await?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .body(Empty::<Bytes>::new())?;
    let resp = send.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Runs the demo; `Ok(false)` when an outcome was not the expected one.
pub fn run(a: DemoArgs) -> anyhow::Result<bool> {
    let dir = tempfile::Builder::new()
        .prefix("portcullis-demo-")
        .tempdir()
        .context("temp dir")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let all_ok = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), demo(dir.path()))
            .await
            .map_err(|_| anyhow!("the demo did not finish within 120 s"))?
    })?;
    if a.keep {
        let kept = dir.keep();
        say!("files kept in {}", kept.display());
    }
    Ok(all_ok)
}

async fn demo(dir: &Path) -> anyhow::Result<bool> {
    let origin_l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin_addr = origin_l.local_addr()?;
    let seen: Seen = Arc::default();
    let origin_task = tokio::spawn(origin(origin_l, seen.clone()));

    let (ca_pem, clients) = make_pki(dir, origin_addr)?;
    // The same path as `portcullis serve`: parse, validate, load.
    let (config, sites) = crate::cmd::serve::load(&dir.join("gateway.toml"))?;
    let config: Config = config;
    let sites: Sites = sites;
    let listener = tokio::net::TcpListener::bind(config.https).await?;
    let gw_addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let gw_task = tokio::spawn(Gateway::new(sites).serve(listener, async {
        let _ = stop_rx.await;
    }));

    say!("Portcullis demo: origin http://{origin_addr}, gateway https://{gw_addr}");
    say!(
        "{:<8} {:<18} {:>6}  {:<10} {:<18} {:<17} result",
        "mode",
        "client cert",
        "status",
        "origin saw",
        "Client-Cert-Status",
        "Client-Cert-Error"
    );
    let mut all_ok = true;
    for (host, mode) in HOSTS.iter().zip(["report", "enforce"]) {
        for c in &clients {
            let before = seen.lock().map(|s| s.len()).unwrap_or(0);
            let got = request(gw_addr, host, &ca_pem, c.cert.as_ref()).await;
            let after: Vec<(String, String)> = seen
                .lock()
                .map(|s| s.get(before..).map(<[_]>::to_vec).unwrap_or_default())
                .unwrap_or_default();
            let want = expected(mode, c.name);
            let (status, body) = match got {
                Ok(x) => x,
                Err(e) => (0, format!("request failed: {e:#}")),
            };
            let saw: Option<(String, String)> = after.first().cloned();
            let good = status == want.status
                && after.len() <= 1
                && match (&want.origin, &saw) {
                    (None, None) => true,
                    (Some((s, e)), Some((gs, ge))) => s == gs && e == ge,
                    _ => false,
                };
            all_ok &= good;
            let (origin_col, st, er) = match &saw {
                Some((s, e)) => ("request", s.as_str(), e.as_str()),
                None => ("nothing", "", ""),
            };
            say!(
                "{mode:<8} {:<18} {status:>6}  {origin_col:<10} {st:<18} {er:<17} {}",
                c.name,
                if good { "ok" } else { "UNEXPECTED" }
            );
            if !good || status != 200 {
                say!("         gateway answered: {}", body.trim());
            }
        }
    }
    all_ok &= token_cases(gw_addr, &ca_pem, &clients, &seen).await;
    let _ = stop_tx.send(());
    let _ = gw_task.await;
    origin_task.abort();
    say!(
        "\n{}",
        if all_ok {
            "every outcome was as expected"
        } else {
            "SOME OUTCOMES WERE NOT AS EXPECTED"
        }
    );
    Ok(all_ok)
}

/// Token cases on the report hostname's `/private/*` (valid client
/// certificate each time, so only the token decides).
async fn token_cases(gw: SocketAddr, ca_pem: &str, clients: &[Client], seen: &Seen) -> bool {
    let Ok(secret) = tokens::Secret::new(TOKEN_SECRET.to_vec()) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let path = "/private/report.pdf";
    let signed = tokens::cloudflare::sign_url(&secret, path, now);
    let tampered = signed.replace("/private/report.pdf", "/private/salaries.pdf");
    let expired = tokens::cloudflare::sign_url(&secret, path, now - TOKEN_TTL - 10);
    let cases: [(&str, &str, u16); 4] = [
        ("valid token", signed.as_str(), 200),
        ("no token", path, 401),
        ("tampered path", tampered.as_str(), 401),
        ("expired token", expired.as_str(), 401),
    ];
    let cert = clients
        .iter()
        .find(|c| c.name == "valid")
        .and_then(|c| c.cert.as_ref());
    say!(
        "\ntoken checks on https://{}{path} (ttl {TOKEN_TTL} s):",
        HOSTS[0]
    );
    let mut all_ok = true;
    for (name, target, want) in cases {
        let before = seen.lock().map(|s| s.len()).unwrap_or(0);
        let (status, body) = match request_path(gw, HOSTS[0], target, ca_pem, cert).await {
            Ok(x) => x,
            Err(e) => (0, format!("request failed: {e:#}")),
        };
        let reached = seen.lock().map(|s| s.len()).unwrap_or(0) > before;
        let good = status == want && reached == (want == 200);
        all_ok &= good;
        say!(
            "  {name:<14} {status:>6}  origin saw {:<8} {}",
            if reached { "request" } else { "nothing" },
            if good { "ok" } else { "UNEXPECTED" }
        );
        if status != 200 {
            say!("                 gateway answered: {}", body.trim());
        }
    }
    all_ok
}
