//! Service-to-service mTLS through `[[egress]]` listeners (issue 12), with
//! real processes: two `portcullis serve` (the apps' side with the egress
//! listeners, and an ingress gateway in `enforce` mode trusting only the
//! service CA), the echo origin, `curl` as the plain-HTTP app, and a
//! temporary PostgreSQL cluster with `clientcert=verify-full` for the raw
//! TCP egress.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::gateway::{headers, one, Origin};

const SIGNING: &str = r#"{"signing":{"default":{"expiry":"168h"},"profiles":{
  "client":{"usages":["signing","key encipherment","client auth"],"expiry":"720h"},
  "server":{"usages":["signing","key encipherment","server auth"],"expiry":"720h"}}}}"#;

/// A root CA `NAME.pem` / `NAME-key.pem` made by `portcullis ca init`.
fn ca(dir: &Path, name: &str) {
    write(
        dir,
        &format!("{name}-csr.json"),
        &format!(r#"{{"CN":"{name} root","key":{{"algo":"ecdsa","size":256}}}}"#),
    );
    ok(portcullis(
        dir,
        &[
            "ca",
            "init",
            &format!("{name}-csr.json"),
            "--out",
            name,
            "--insecure-plaintext-key",
        ],
    ));
}

/// `OUT.pem` / `OUT-key.pem` with common name `cn` and SANs `hosts` (DNS
/// names, IPs, `spiffe://` URIs), signed by CA `ca` with `profile`.
fn cert(dir: &Path, out: &str, cn: &str, hosts: &[&str], ca: &str, profile: &str) {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
    write(
        dir,
        &format!("{out}.json"),
        &format!(
            r#"{{"CN":"{cn}","hosts":[{}],"key":{{"algo":"ecdsa","size":256}}}}"#,
            hosts.join(",")
        ),
    );
    ok(portcullis(
        dir,
        &[
            "ca",
            "gencert",
            &format!("{out}.json"),
            "--ca",
            &format!("{ca}.pem"),
            "--ca-key",
            &format!("{ca}-key.pem"),
            "--config",
            "signing.json",
            "--profile",
            profile,
            "--out",
            out,
        ],
    ));
}

/// Three CAs: `svc` (the services' identities: a, b, postgres), `edge`
/// (the servers the egresses talk to: the ingress gateway, PostgreSQL),
/// `other` (someone else's: mallory).
fn make_pki(dir: &Path) {
    write(dir, "signing.json", SIGNING);
    for name in ["svc", "edge", "other"] {
        ca(dir, name);
    }
    cert(dir, "a", "a", &["spiffe://acme.test/a"], "svc", "client");
    cert(dir, "b", "b", &["spiffe://acme.test/b"], "svc", "client");
    cert(
        dir,
        "mallory",
        "postgres",
        &["spiffe://evil.test/m"],
        "other",
        "client",
    );
    cert(
        dir,
        "orders",
        "orders",
        &["orders.acme.test", "spiffe://acme.test/orders"],
        "edge",
        "server",
    );
}

/// Starts `portcullis serve --config NAME.toml` in `dir`, stderr to
/// `NAME.log`; waits for `port`.
fn serve(dir: &Path, name: &str, port: u16) -> ChildGuard {
    serve_env(dir, name, port, &[])
}

/// [`serve`] with extra environment variables.
fn serve_env(dir: &Path, name: &str, port: u16, env: &[(&str, &str)]) -> ChildGuard {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
    let child = Command::new(bin())
        .args(["serve", "--config", &format!("{name}.toml")])
        .current_dir(dir)
        .env("PORTCULLIS_LOG", "gateway=info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn serve");
    let mut g = ChildGuard(Some(child));
    wait_port(port, &mut g);
    g
}

fn read_log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

/// An `[[egress]]` in http mode on `port` to the ingress.
fn http_egress(name: &str, port: u16, ingress: u16, extra: &str) -> String {
    format!(
        r#"
[[egress]]
name = "{name}"
listen = "127.0.0.1:{port}"
mode = "http"
upstream = "https://127.0.0.1:{ingress}"
{extra}
"#
    )
}

/// The JSON error body of the egress: (`error`, `message`).
fn egress_error(body: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("egress answer is not JSON ({e}): {body:?}"));
    (
        v["error"].as_str().unwrap_or_default().to_owned(),
        v["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// `n` distinct free ports.
fn free_ports(n: usize) -> Vec<u16> {
    let mut v = Vec::new();
    for _ in 0..1000 {
        if v.len() == n {
            break;
        }
        let p = free_port();
        if !v.contains(&p) {
            v.push(p);
        }
    }
    assert_eq!(v.len(), n, "not enough free ports");
    v
}

/// The Prometheus text of a gateway's admin listener.
fn metrics(admin: u16) -> String {
    let (code, text) = curl_get(&format!("http://127.0.0.1:{admin}/metrics"));
    assert_eq!(code, 200, "{text}");
    text
}

/// The value of the sample `name` (with its labels) in `text`.
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// `portcullis_connections_total` of a gateway's admin listener.
fn connections(admin: u16) -> u64 {
    counter(&metrics(admin), "portcullis_connections_total")
}

/// App A (curl, plain HTTP) → egress with identity A → ingress in enforce
/// mode trusting only the service CA → origin sees A; B is told apart
/// (its own egress, and a route of A's egress that presents B); another
/// CA's identity is refused by the ingress; an upstream certificate from
/// the wrong CA, for the wrong name or without the expected SPIFFE ID is
/// refused by the egress with a JSON 502 naming the TLS failure; an
/// upstream that never answers is a 504; upstream connections are pooled
/// per identity; a renewed certificate file is picked up without a
/// restart.
#[test]
fn egress_http_presents_per_service_identities_to_the_ingress() {
    need("curl");
    let d = tempdir();
    let dir = d.path();
    make_pki(dir);
    for (from, to) in [("a.pem", "rot.pem"), ("a-key.pem", "rot-key.pem")] {
        std::fs::copy(dir.join(from), dir.join(to)).expect("copy");
    }
    let origin = Origin::start();

    // The ingress: enforce, only the service CA.
    let (ingress, admin) = (free_port(), free_port());
    write(
        dir,
        "ingress.toml",
        &format!(
            r#"[server]
https = "127.0.0.1:{ingress}"
admin = "127.0.0.1:{admin}"

[[ca]]
name = "svc"
pem = "svc.pem"

[[hostname]]
name = "orders.acme.test"
cert = "orders.pem"
key = "orders-key.pem"
origin = "http://127.0.0.1:{o}"

[hostname.mtls]
mode = "enforce"
cas = ["svc"]

# Only the a service may write (docs/policy.md).
[[hostname.rule]]
name = "only-a-writes"
expression = '''http.request.method in ["POST", "PUT", "PATCH", "DELETE"]
  && !("spiffe://acme.test/a" in cf.tls_client_auth.cert_sans_uri)'''
action = "block"
block_body = '{{"error":"only the a service may write"}}'

# Serves the orders certificate under a name it is not valid for.
[[hostname]]
name = "misnamed.acme.test"
cert = "orders.pem"
key = "orders-key.pem"
origin = "http://127.0.0.1:{o}"
"#,
            o = origin.port
        ),
    );
    let _ingress = serve(dir, "ingress", ingress);

    // Accepts TCP and never answers: the TLS handshake times out.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();

    // The apps' side: egress listeners only.
    let ports: Vec<u16> = free_ports(10);
    let [pa, pb, pspiffe, pspiffe_bad, pwrong_ca, pwrong_name, pmallory, pslow, prot, punknown] =
        ports[..]
    else {
        unreachable!()
    };
    let ident = |c: &str| format!("cert = \"{c}.pem\"\nkey = \"{c}-key.pem\"");
    let orders = "server_name = \"orders.acme.test\"";
    let apps_admin = free_port();
    let mut apps = format!(
        "[server]\nhttps = \"127.0.0.1:{}\"\nadmin = \"127.0.0.1:{apps_admin}\"\n",
        free_port()
    );
    apps += &http_egress(
        "a",
        pa,
        ingress,
        &format!(
            "{orders}\n{}\nca = \"edge.pem\"\n\n[[egress.route]]\npath = \"/as-b/\"\n{}",
            ident("a"),
            ident("b")
        ),
    );
    apps += &http_egress(
        "b",
        pb,
        ingress,
        &format!("{orders}\n{}\nca = \"edge.pem\"", ident("b")),
    );
    apps += &http_egress(
        "spiffe",
        pspiffe,
        ingress,
        &format!(
            "{orders}\nspiffe_id = \"spiffe://acme.test/orders\"\n{}\nca = \"edge.pem\"",
            ident("a")
        ),
    );
    apps += &http_egress(
        "spiffe-mismatch",
        pspiffe_bad,
        ingress,
        &format!(
            "{orders}\nspiffe_id = \"spiffe://acme.test/billing\"\n{}\nca = \"edge.pem\"",
            ident("a")
        ),
    );
    // Trusts the service CA for the upstream: the ingress's certificate
    // comes from the edge CA.
    apps += &http_egress(
        "wrong-ca",
        pwrong_ca,
        ingress,
        &format!("{orders}\n{}\nca = \"svc.pem\"", ident("a")),
    );
    apps += &http_egress(
        "wrong-name",
        pwrong_name,
        ingress,
        &format!(
            "server_name = \"misnamed.acme.test\"\n{}\nca = \"edge.pem\"",
            ident("a")
        ),
    );
    apps += &http_egress(
        "unknown-name",
        punknown,
        ingress,
        &format!(
            "server_name = \"nobody.acme.test\"\n{}\nca = \"edge.pem\"",
            ident("a")
        ),
    );
    apps += &http_egress(
        "mallory",
        pmallory,
        ingress,
        &format!("{orders}\n{}\nca = \"edge.pem\"", ident("mallory")),
    );
    apps += &format!(
        r#"
[[egress]]
name = "slow"
listen = "127.0.0.1:{pslow}"
mode = "http"
upstream = "https://127.0.0.1:{silent_port}"
{orders}
{}
ca = "edge.pem"
connect_timeout = 1
"#,
        ident("a")
    );
    apps += &http_egress(
        "rotating",
        prot,
        ingress,
        &format!("{orders}\n{}\nca = \"edge.pem\"", ident("rot")),
    );
    write(dir, "apps.toml", &apps);
    let mut apps_proc = serve(dir, "apps", pa);
    let logs = || {
        format!(
            "apps:\n{}\ningress:\n{}",
            read_log(dir, "apps"),
            read_log(dir, "ingress")
        )
    };

    // A: the origin sees A's verified identity. Sequential requests from
    // separate app connections share pooled upstream connections.
    let before = connections(admin);
    for i in 0..5 {
        let (code, body) = curl_get(&format!("http://127.0.0.1:{pa}/orders/{i}?x=1"));
        assert_eq!(code, 200, "{body}\n{}", logs());
        assert!(
            body.starts_with(&format!("GET /orders/{i}?x=1 HTTP/1.1")),
            "{body}"
        );
        let h = headers(&body);
        assert_eq!(one(&h, "client-cert-status"), "valid", "{body}");
        assert_eq!(one(&h, "client-cert-subject"), "CN=a", "{body}");
        assert_eq!(
            one(&h, "host"),
            format!("orders.acme.test:{ingress}"),
            "{body}"
        );
        let xfcc = one(&h, "x-forwarded-client-cert");
        assert!(xfcc.contains("URI=spiffe://acme.test/a"), "{xfcc}");
    }
    let after_a = connections(admin);
    assert!(
        after_a - before < 5,
        "5 requests with identity A opened {} upstream connections: no reuse",
        after_a - before
    );
    // The egress counts the same: requests and upstream handshakes.
    let m = metrics(apps_admin);
    assert_eq!(
        counter(
            &m,
            "portcullis_egress_requests_total{egress=\"a\",outcome=\"ok\"}"
        ),
        5,
        "{m}"
    );
    let handshakes = counter(
        &m,
        "portcullis_egress_upstream_handshakes_total{egress=\"a\"}",
    );
    assert!((1..5).contains(&handshakes), "{m}");
    // The route of A's egress presents B: another identity, another pool.
    let (code, body) = curl_get(&format!("http://127.0.0.1:{pa}/as-b/x"));
    assert_eq!(code, 200, "{body}\n{}", logs());
    let h = headers(&body);
    assert_eq!(one(&h, "client-cert-subject"), "CN=b", "{body}");
    assert!(one(&h, "x-forwarded-client-cert").contains("URI=spiffe://acme.test/b"));
    assert!(
        connections(admin) > after_a,
        "identity B reused a connection of A"
    );

    // h2c with prior knowledge from the app works too.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--http2-prior-knowledge"])
        .arg(format!("http://127.0.0.1:{pa}/h2c"))
        .output()
        .expect("run curl");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.starts_with("GET /h2c HTTP/1.1"), "{body}\n{}", logs());
    assert_eq!(
        one(&headers(&body), "client-cert-subject"),
        "CN=a",
        "{body}"
    );

    // Writes: a rule at the ingress lets only the a service POST. B can
    // read (above) but its POST is refused there; A's POST reaches the
    // origin.
    let seen = origin.count();
    let (code, body) = curl_post(&format!("http://127.0.0.1:{pb}/orders"), b"{\"n\":1}");
    assert_eq!(code, 403, "{body}\n{}", logs());
    assert!(body.contains("only the a service may write"), "{body}");
    assert_eq!(origin.count(), seen, "the origin saw B's POST");
    let (code, body) = curl_get(&format!("http://127.0.0.1:{pb}/orders"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        one(&headers(&body), "client-cert-subject"),
        "CN=b",
        "{body}"
    );
    let (code, body) = curl_post(&format!("http://127.0.0.1:{pa}/orders"), b"{\"n\":2}");
    assert_eq!(code, 200, "{body}\n{}", logs());
    assert!(body.starts_with("POST /orders HTTP/1.1"), "{body}");
    assert_eq!(
        one(&headers(&body), "client-cert-subject"),
        "CN=a",
        "{body}"
    );

    // The expected SPIFFE ID is there.
    let (code, body) = curl_get(&format!("http://127.0.0.1:{pspiffe}/"));
    assert_eq!(code, 200, "{body}\n{}", logs());

    // Another CA's identity reaches the ingress, which refuses it.
    let (code, body) = curl_get(&format!("http://127.0.0.1:{pmallory}/"));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("client certificate required"), "{body}");

    // The upstream's certificate does not chain to the egress's CA.
    let (code, body) = curl_get(&format!("http://127.0.0.1:{pwrong_ca}/"));
    assert_eq!(code, 502, "{body}");
    let (error, message) = egress_error(&body);
    assert_eq!(error, "upstream_tls", "{body}");
    assert!(
        message.starts_with("upstream certificate: unknown issuer"),
        "{message}"
    );
    assert!(message.contains("svc.pem"), "{message}");

    // Valid for another name than expected.
    let (code, body) = curl_get(&format!("http://127.0.0.1:{pwrong_name}/"));
    assert_eq!(code, 502, "{body}");
    let (error, message) = egress_error(&body);
    assert_eq!(error, "upstream_tls", "{body}");
    assert!(
        message.contains("not valid for name \"misnamed.acme.test\""),
        "{message}"
    );

    // A name the ingress does not serve: it answers unrecognized_name.
    let (code, body) = curl_get(&format!("http://127.0.0.1:{punknown}/"));
    assert_eq!(code, 502, "{body}");
    let (error, message) = egress_error(&body);
    assert_eq!(error, "upstream_tls", "{body}");
    assert!(
        message.contains("does not serve the name \"nobody.acme.test\""),
        "{message}"
    );

    // Without the expected SPIFFE ID.
    let (code, body) = curl_get(&format!("http://127.0.0.1:{pspiffe_bad}/"));
    assert_eq!(code, 502, "{body}");
    let (error, message) = egress_error(&body);
    assert_eq!(error, "upstream_tls", "{body}");
    assert!(
        message.contains("expected URI SAN \"spiffe://acme.test/billing\"")
            && message.contains("spiffe://acme.test/orders"),
        "{message}"
    );

    let m = metrics(apps_admin);
    for (egress, outcome) in [
        ("wrong-ca", "upstream_tls"),
        ("wrong-name", "upstream_tls"),
        ("spiffe-mismatch", "upstream_tls"),
    ] {
        let line = format!(
            "portcullis_egress_requests_total{{egress=\"{egress}\",outcome=\"{outcome}\"}}"
        );
        assert_eq!(counter(&m, &line), 1, "{m}");
    }

    // An upstream that never answers the handshake.
    let (code, body) = curl_get(&format!("http://127.0.0.1:{pslow}/"));
    assert_eq!(code, 504, "{body}");
    let (error, message) = egress_error(&body);
    assert_eq!(error, "upstream_timeout", "{body}");
    assert!(message.contains("TLS handshake"), "{message}");
    drop(silent);

    // A certificate renewed in place (by rename, as an agent does) is
    // presented on the next connections, without a restart.
    let (code, body) = curl_get(&format!("http://127.0.0.1:{prot}/"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(one(&headers(&body), "client-cert-subject"), "CN=a");
    for (from, to) in [("b-key.pem", "rot-key.pem"), ("b.pem", "rot.pem")] {
        std::fs::copy(dir.join(from), dir.join("tmp")).expect("copy");
        std::fs::rename(dir.join("tmp"), dir.join(to)).expect("rename");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = curl_get(&format!("http://127.0.0.1:{prot}/"));
        if code == 200 && one(&headers(&body), "client-cert-subject") == "CN=b" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not picked up: {code} {body}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        read_log(dir, "apps").contains("configuration reloaded"),
        "{}",
        logs()
    );

    // SIGTERM: the egress listeners drain with the gateway; exit 0.
    ok(run_in(
        dir,
        Command::new("kill").args(["-TERM", &apps_proc.pid().to_string()]),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = apps_proc
            .0
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "no exit after SIGTERM\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}\n{}", logs());
}

/// A non-Portcullis upstream: `openssl s_server` that requires a client
/// certificate from the service CA and aborts the handshake otherwise
/// (TLS 1.2, so the refusal comes during the handshake). Identity A gets
/// the page; another CA's identity gets the JSON 502 saying the upstream
/// refused this service's certificate.
#[test]
fn egress_http_to_openssl_s_server_requiring_a_client_certificate() {
    need("openssl");
    need("curl");
    let d = tempdir();
    let dir = d.path();
    make_pki(dir);
    let [upstream, pa, pm, https, pnew] = free_ports(5)[..] else {
        unreachable!()
    };
    let child = Command::new("openssl")
        .args(["s_server", "-accept", &format!("127.0.0.1:{upstream}")])
        .args([
            "-cert",
            "orders.pem",
            "-key",
            "orders-key.pem",
            "-CAfile",
            "svc.pem",
        ])
        .args(["-Verify", "1", "-verify_return_error", "-tls1_2", "-www"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openssl s_server");
    let mut server = ChildGuard(Some(child));
    wait_port(upstream, &mut server);
    let mut apps = format!("[server]\nhttps = \"127.0.0.1:{https}\"\n");
    for (name, port, id) in [("a", pa, "a"), ("mallory", pm, "mallory")] {
        apps += &http_egress(
            name,
            port,
            upstream,
            &format!(
                "server_name = \"orders.acme.test\"\ncert = \"{id}.pem\"\nkey = \"{id}-key.pem\"\nca = \"edge.pem\""
            ),
        );
    }
    write(dir, "apps.toml", &apps);
    let apps_proc = serve(dir, "apps", pa);

    let (code, body) = curl_get(&format!("http://127.0.0.1:{pa}/"));
    assert_eq!(code, 200, "{body}\n{}", read_log(dir, "apps"));
    assert!(body.contains("Client certificate"), "{body}");

    // A new [[egress]] and SIGHUP: bound without a restart.
    apps += &http_egress(
        "added",
        pnew,
        upstream,
        "server_name = \"orders.acme.test\"\ncert = \"b.pem\"\nkey = \"b-key.pem\"\nca = \"edge.pem\"",
    );
    write(dir, "apps.toml.tmp", &apps);
    std::fs::rename(dir.join("apps.toml.tmp"), dir.join("apps.toml")).expect("rename");
    ok(run_in(
        dir,
        Command::new("kill").args(["-HUP", &apps_proc.pid().to_string()]),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", pnew)).is_err() {
        assert!(
            Instant::now() < deadline,
            "not bound after SIGHUP\n{}",
            read_log(dir, "apps")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, body) = curl_get(&format!("http://127.0.0.1:{pnew}/"));
    assert_eq!(code, 200, "{body}\n{}", read_log(dir, "apps"));
    let (code, body) = curl_get(&format!("http://127.0.0.1:{pm}/"));
    assert_eq!(code, 502, "{body}");
    let (error, message) = egress_error(&body);
    assert_eq!(error, "upstream_tls", "{body}");
    assert!(
        message.contains("the upstream refused this service's certificate"),
        "{message}"
    );
    assert!(message.contains("mallory.pem"), "{message}");
}

/// An egress identity whose key never leaves a PKCS#11 token (SoftHSM2):
/// the key is made in the token (`portcullis ca init --ca-key pkcs11:…`,
/// which also writes a CSR signed by it), the service CA signs that CSR,
/// and the egress presents the certificate with the token signing each
/// handshake; the ingress in enforce mode forwards the identity.
#[test]
fn egress_identity_key_in_a_pkcs11_token() {
    need("curl");
    let d = tempdir();
    let dir = d.path();
    make_pki(dir);
    let conf = crate::custody::softhsm_token(dir);
    let env = [("SOFTHSM2_CONF", conf.as_str())];
    let uri = format!(
        "pkcs11:token=portcullis;object=api-hsm?module-path={}&pin-source=file:pin.txt",
        crate::custody::SOFTHSM
    );
    write(dir, "api-hsm-csr.json", r#"{"CN":"api-hsm"}"#);
    let mut c = Command::new(bin());
    c.args([
        "ca",
        "init",
        "api-hsm-csr.json",
        "--ca-key",
        &uri,
        "--out",
        "api-hsm-self",
    ])
    .envs(env);
    ok(run_in(dir, &mut c));
    ok(portcullis(
        dir,
        &[
            "ca",
            "sign",
            "api-hsm-self.csr",
            "--ca",
            "svc.pem",
            "--ca-key",
            "svc-key.pem",
            "--config",
            "signing.json",
            "--profile",
            "client",
            "--hosts",
            "spiffe://acme.test/api-hsm",
            "--out",
            "api-hsm",
        ],
    ));
    assert!(!dir.join("api-hsm-key.pem").exists());

    let origin = Origin::start();
    let ingress = free_port();
    write(
        dir,
        "ingress.toml",
        &format!(
            r#"[server]
https = "127.0.0.1:{ingress}"

[[ca]]
name = "svc"
pem = "svc.pem"

[[hostname]]
name = "orders.acme.test"
cert = "orders.pem"
key = "orders-key.pem"
origin = "http://127.0.0.1:{o}"

[hostname.mtls]
mode = "enforce"
cas = ["svc"]
"#,
            o = origin.port
        ),
    );
    let _ingress = serve(dir, "ingress", ingress);
    let [pe, https] = free_ports(2)[..] else {
        unreachable!()
    };
    let mut apps = format!("[server]\nhttps = \"127.0.0.1:{https}\"\n");
    apps += &http_egress(
        "hsm",
        pe,
        ingress,
        &format!(
            "server_name = \"orders.acme.test\"\ncert = \"api-hsm.pem\"\nkey = \"{uri}\"\nca = \"edge.pem\""
        ),
    );
    write(dir, "apps.toml", &apps);
    let _apps = serve_env(dir, "apps", pe, &env);
    for i in 0..3 {
        let (code, body) = curl_get(&format!("http://127.0.0.1:{pe}/hsm/{i}"));
        assert_eq!(code, 200, "{body}\n{}", read_log(dir, "apps"));
        let h = headers(&body);
        assert_eq!(one(&h, "client-cert-subject"), "CN=api-hsm", "{body}");
        assert!(one(&h, "x-forwarded-client-cert").contains("URI=spiffe://acme.test/api-hsm"));
    }
    assert!(
        !read_log(dir, "apps").contains("pin"),
        "{}",
        read_log(dir, "apps")
    );
}

/// The PostgreSQL major version directories' `bin`, newest first.
fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| Some(e.ok()?.path().join("bin")))
                .filter(|b| b.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: run \
             scripts/install-test-deps.sh (installs the postgresql package)"
        )
    })
}

fn id(flag: &str, user: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, user])
        .output()
        .expect("run id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no {user} user (install postgresql)"))
}

/// A temporary PostgreSQL cluster, stopped on drop.
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
}

impl Postgres {
    /// initdb as the postgres user in `dir/pg`, TLS on with the server
    /// certificate `server` and client CA `client_ca`; only `hostssl` with
    /// `clientcert=verify-full` from 127.0.0.1.
    fn start(dir: &Path, server: &str, client_ca: &str) -> Postgres {
        need("runuser");
        need("psql");
        use std::os::unix::fs::PermissionsExt as _;
        let bin = pg_bin();
        let (uid, gid) = (id("-u", "postgres"), id("-g", "postgres"));
        // The postgres user must reach the directory.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let root = dir.join("pg");
        std::fs::create_dir(&root).expect("mkdir");
        std::os::unix::fs::chown(&root, Some(uid), Some(gid)).expect("chown");
        let data = root.join("data");
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (from, to) in [
            (format!("{server}.pem"), "server.crt"),
            (format!("{server}-key.pem"), "server.key"),
            (format!("{client_ca}.pem"), "root.crt"),
        ] {
            let p = data.join(to);
            std::fs::copy(dir.join(from), &p).expect("copy");
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).expect("chown");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let port = free_port();
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).expect("conf");
        conf += &format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             ssl_ca_file = 'root.crt'\nfsync = off\n",
            root.display()
        );
        std::fs::write(data.join("postgresql.conf"), conf).expect("conf");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust clientcert=verify-full\n",
        )
        .expect("pg_hba");
        let pg = Postgres { bin, data, port };
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&pg.data)
            .arg("-l")
            .arg(root.join("log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(root.join("log")).unwrap_or_default()
        );
        pg
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `psql CONNINFO -tAc SQL`: (success, stdout, stderr). `HOME` is the test
/// dir, so no `~/.postgresql` client certificate is picked up.
fn psql(home: &Path, conninfo: &str, sql: &str) -> (bool, String, String) {
    let out = Command::new("psql")
        .arg(format!(
            "{conninfo} user=postgres dbname=postgres connect_timeout=20"
        ))
        .args(["-X", "-tA", "-c", sql])
        .env("HOME", home)
        .env_remove("PGSSLCERT")
        .env_remove("PGSSLKEY")
        .output()
        .expect("run psql");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A raw TCP egress to a real PostgreSQL that only accepts TLS clients
/// with a certificate from the service CA whose CN is the user
/// (`hostssl … clientcert=verify-full`): through the egress, psql without
/// TLS works and PostgreSQL sees the service's certificate; connecting
/// directly without a certificate, through an egress with another CA's
/// identity, or through one that does not trust PostgreSQL's CA is refused.
#[test]
fn egress_tcp_to_postgres_with_clientcert_verify_full() {
    let d = tempdir();
    let dir = d.path();
    make_pki(dir);
    cert(
        dir,
        "api-db",
        "postgres",
        &["spiffe://acme.test/api"],
        "svc",
        "client",
    );
    cert(
        dir,
        "pg",
        "pg",
        &["127.0.0.1", "localhost"],
        "edge",
        "server",
    );
    let pg = Postgres::start(dir, "pg", "svc");

    // Directly, without a client certificate: refused.
    let direct = format!("host=127.0.0.1 port={}", pg.port);
    let (okd, out, err) = psql(dir, &format!("{direct} sslmode=require"), "SELECT 1");
    assert!(!okd, "connected without a certificate: {out}");
    assert!(err.contains("certificate"), "{err}");
    let (okd, _, err) = psql(dir, &format!("{direct} sslmode=disable"), "SELECT 1");
    assert!(!okd, "connected without TLS");
    assert!(err.contains("no pg_hba.conf entry"), "{err}");

    let ports: Vec<u16> = free_ports(3);
    let [pdb, pother, pwrong_ca] = ports[..] else {
        unreachable!()
    };
    let egress = |name: &str, port: u16, cert: &str, ca: &str| {
        format!(
            r#"
[[egress]]
name = "{name}"
listen = "127.0.0.1:{port}"
mode = "tcp"
upstream = "127.0.0.1:{pg}"
cert = "{cert}.pem"
key = "{cert}-key.pem"
ca = "{ca}.pem"
starttls = "postgres"
max_connections = 8
"#,
            pg = pg.port
        )
    };
    let mut apps = format!("[server]\nhttps = \"127.0.0.1:{}\"\n", free_port());
    apps += &egress("db", pdb, "api-db", "edge");
    apps += &egress("db-other-identity", pother, "mallory", "edge");
    apps += &egress("db-wrong-ca", pwrong_ca, "api-db", "svc");
    write(dir, "apps.toml", &apps);
    let _apps = serve(dir, "apps", pdb);

    // Through the egress: no TLS on the app's side, the service's
    // certificate on PostgreSQL's.
    let via = format!("host=127.0.0.1 port={pdb}");
    let (okv, out, err) = psql(dir, &format!("{via} sslmode=disable"), "SELECT 1");
    assert!(okv, "{err}\n{}", read_log(dir, "apps"));
    assert_eq!(out, "1");
    let (okv, out, err) = psql(
        dir,
        &format!("{via} sslmode=disable"),
        "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    assert!(okv, "{err}");
    assert_eq!(out, "t|/CN=postgres");
    // sslmode=prefer: the app's own SSLRequest is answered N by the egress.
    let (okv, out, err) = psql(dir, &via, "SELECT 2");
    assert!(okv, "{err}");
    assert_eq!(out, "2");

    // Another CA's identity: PostgreSQL refuses the handshake.
    let (oko, out, _) = psql(
        dir,
        &format!("host=127.0.0.1 port={pother} sslmode=disable"),
        "SELECT 1",
    );
    assert!(!oko, "another CA's identity got in: {out}");

    // The egress does not trust PostgreSQL's certificate: it closes the
    // app's connection and logs why.
    let (okw, out, _) = psql(
        dir,
        &format!("host=127.0.0.1 port={pwrong_ca} sslmode=disable"),
        "SELECT 1",
    );
    assert!(!okw, "an untrusted upstream was used: {out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = read_log(dir, "apps");
        // (PostgreSQL's refusal of another CA's identity comes after the
        // TLS 1.3 handshake: logged as its alert or as the closed
        // connection, whichever the egress sees first; psql failing above
        // is the assertion for that case.)
        if log.contains("upstream certificate: unknown issuer") {
            break;
        }
        assert!(Instant::now() < deadline, "reasons not logged:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A bad `[[egress]]` is refused with every problem listed before any
/// port is bound; a listen address in use stops the start.
#[test]
fn egress_config_problems_stop_the_start() {
    let d = tempdir();
    let dir = d.path();
    let https = free_port();
    write(
        dir,
        "bad.toml",
        &format!(
            r#"[server]
https = "127.0.0.1:{https}"

[[egress]]
name = "db"
listen = "0.0.0.0:{p}"
mode = "tcp"
upstream = "https://db:5432"
cert = "api.pem"
key = "api-key.pem"
starttls = "mysql"
"#,
            p = free_port()
        ),
    );
    let err = fails(portcullis(dir, &["serve", "--config", "bad.toml"]));
    for needle in [
        "not a loopback address",
        "is not host:port",
        "ca is required",
        "\"mysql\" is not one of postgres",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
    assert!(std::net::TcpStream::connect(("127.0.0.1", https)).is_err());

    // Valid, but the address is taken.
    make_pki(dir);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    write(
        dir,
        "busy.toml",
        &format!(
            r#"[server]
https = "127.0.0.1:{https}"

[[egress]]
name = "a"
listen = "127.0.0.1:{port}"
mode = "http"
upstream = "https://orders.acme.test"
cert = "a.pem"
key = "a-key.pem"
ca = "edge.pem"
"#
        ),
    );
    let err = fails(portcullis(dir, &["serve", "--config", "busy.toml"]));
    assert!(
        err.contains(&format!("egress \"a\": cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
}
