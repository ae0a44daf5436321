//! The management API of `portcullis serve` over real HTTP with `curl`:
//! the bootstrap operator token (printed once), every resource through the
//! admin listener, bad input as 4xx JSON that changes nothing, tenant
//! isolation, and the store surviving a restart.
//!
//! `control_end_to_end_through_the_gateway` runs issue 5's whole flow
//! through the API and the gateway (both with curl).

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::common::*;
use crate::gateway::{gateway_toml, Env};

/// `curl -X METHOD` on the admin listener; returns (status, JSON body).
fn api(
    admin: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let dir = tempdir();
    let mut c = Command::new("curl");
    c.args([
        "-sS",
        "--max-time",
        "20",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        let f = dir.path().join("body.json");
        std::fs::write(&f, serde_json::to_vec(b).expect("json")).expect("write");
        c.args(["-H", "content-type: application/json", "--data-binary"])
            .arg(format!("@{}", f.display()));
    }
    c.arg(format!("http://127.0.0.1:{admin}{path}"));
    let out = c.output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body}"))
    };
    let code: u16 = code.trim().parse().unwrap_or(0);
    assert!(code != 0 && code < 500, "{method} {path}: {code} {v}");
    if code >= 400 {
        assert!(
            v["error"]["code"].is_string() && v["error"]["message"].is_string(),
            "{v}"
        );
    }
    (code, v)
}

#[track_caller]
fn want(got: (u16, Value), status: u16, code: Option<&str>) -> Value {
    assert_eq!(got.0, status, "{}", got.1);
    if let Some(c) = code {
        assert_eq!(got.1["error"]["code"], c, "{}", got.1);
    }
    got.1
}

/// The operator token printed once on first start.
fn printed_token(log: &str) -> Option<String> {
    log.lines()
        .find_map(|l| l.split_once("operator token (shown once, keep it): "))
        .map(|(_, t)| t.trim().to_owned())
}

fn start(admin: u16) -> Env {
    Env::start_with(|_, port, origin| {
        gateway_toml(port, origin).replacen(
            "[server]\n",
            &format!("[server]\nadmin = \"127.0.0.1:{admin}\"\ndata_dir = \"data\"\n"),
            1,
        )
    })
}

fn wait_admin(admin: u16, env: &mut Env) {
    wait_port(admin, &mut env.gw);
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).expect("read")
}

#[test]
fn control_api_over_http_end_to_end() {
    let admin = free_port();
    let mut env = start(admin);
    wait_admin(admin, &mut env);
    let root = printed_token(&env.log()).expect("operator token printed on first start");
    // The store and its key live under the data dir, key 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(env.path().join("data/store.key"))
            .expect("store key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "store.key is {mode:o}");
    }
    want(
        api(admin, "GET", "/api/v1/whoami", None, None),
        401,
        Some("unauthenticated"),
    );
    let me = want(
        api(admin, "GET", "/api/v1/whoami", Some(&root), None),
        200,
        None,
    );
    assert_eq!(me["scopes"], json!(["admin"]));
    let doc = want(
        api(admin, "GET", "/api/v1/openapi.json", None, None),
        200,
        None,
    );
    assert!(doc["paths"]["/api/v1/hostnames/{name}/cas/{ca_id}"]["put"].is_object());
    // /metrics still served next to the API.
    let (code, body) = curl_get(&format!("http://127.0.0.1:{admin}/metrics"));
    assert_eq!(code, 200, "{body}");

    // Two tenants, each with a read+write token.
    let mut tenants = Vec::new();
    for name in ["acme", "globex"] {
        let a = want(
            api(
                admin,
                "POST",
                "/api/v1/accounts",
                Some(&root),
                Some(&json!({"name": name})),
            ),
            201,
            None,
        );
        let id = a["id"].as_i64().expect("id");
        let t = want(
            api(
                admin,
                "POST",
                &format!("/api/v1/accounts/{id}/tokens"),
                Some(&root),
                Some(&json!({"name": "ci", "scopes": ["read", "write"]})),
            ),
            201,
            None,
        );
        tenants.push((id, t["token"].as_str().expect("token").to_owned()));
    }
    let (a_id, a) = tenants[0].clone();
    let (_b_id, b) = tenants[1].clone();

    // Upload a CA (the test PKI's root), create a hostname, associate, report.
    let ca_pem = read(&env.path().join("ca.pem"));
    let ca = want(
        api(
            admin,
            "POST",
            "/api/v1/cas",
            Some(&a),
            Some(&json!({"name": "acme-root", "certificates": ca_pem})),
        ),
        201,
        None,
    );
    let ca_id = ca["id"].as_i64().expect("ca id");
    let origin = format!("http://127.0.0.1:{}", env.origin.port);
    let h = want(
        api(
            admin,
            "POST",
            "/api/v1/hostnames",
            Some(&a),
            Some(&json!({"name": "api.tenant-a.test", "origin": origin})),
        ),
        201,
        None,
    );
    assert_eq!(h["account_id"], a_id);
    let h = want(
        api(
            admin,
            "PUT",
            &format!("/api/v1/hostnames/api.tenant-a.test/cas/{ca_id}"),
            Some(&a),
            None,
        ),
        200,
        None,
    );
    assert_eq!(h["ca_ids"], json!([ca_id]));
    let h = want(
        api(
            admin,
            "PATCH",
            "/api/v1/hostnames/api.tenant-a.test",
            Some(&a),
            Some(&json!({"mode": "report"})),
        ),
        200,
        None,
    );
    assert_eq!(h["mode"], "report");
    want(
        api(
            admin,
            "GET",
            "/api/v1/events?hostname=api.tenant-a.test",
            Some(&a),
            None,
        ),
        200,
        None,
    );
    want(
        api(admin, "GET", "/api/v1/events/counts", Some(&a), None),
        200,
        None,
    );
    // Managed CA: a client certificate with a server-made key.
    let issued = want(
        api(
            admin,
            "POST",
            "/api/v1/managed-ca/certificates",
            Some(&a),
            Some(&json!({"common_name": "laptop-1"})),
        ),
        201,
        None,
    );
    assert!(issued["pkcs12"].is_string() && issued["private_key"].is_string());
    // The PKCS#12 opens with openssl and the given password.
    if Command::new("openssl").arg("version").output().is_ok() {
        let d = tempdir();
        let p12 = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            issued["pkcs12"].as_str().expect("p12"),
        )
        .expect("b64");
        std::fs::write(d.path().join("c.p12"), p12).expect("write");
        let out = Command::new("openssl")
            .args(["pkcs12", "-in", "c.p12", "-nodes", "-passin"])
            .arg(format!(
                "pass:{}",
                issued["pkcs12_password"].as_str().expect("pw")
            ))
            .current_dir(d.path())
            .output()
            .expect("openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("PRIVATE KEY")
                && (text.contains("CN=laptop-1") || text.contains("CN = laptop-1")),
            "{text}"
        );
    }
    let serial = issued["serial"].as_str().expect("serial");
    let r = want(
        api(
            admin,
            "POST",
            &format!("/api/v1/managed-ca/certificates/{serial}/revoke"),
            Some(&a),
            None,
        ),
        200,
        None,
    );
    assert!(r["revoked_at"].is_i64());
    let m = want(
        api(admin, "GET", "/api/v1/managed-ca", Some(&a), None),
        200,
        None,
    );
    assert!(m["crl"].as_str().is_some_and(|c| c.contains("X509 CRL")));

    // Bad input: 4xx JSON, nothing changes.
    let audit_len = |t: &str| {
        want(
            api(admin, "GET", "/api/v1/audit?limit=1000", Some(t), None),
            200,
            None,
        )["items"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = audit_len(&root);
    want(
        api(
            admin,
            "POST",
            "/api/v1/cas",
            Some(&a),
            Some(&json!({"name": "x", "certificates": "garbage"})),
        ),
        422,
        Some("invalid_ca"),
    );
    let leaf = read(&env.path().join("alice.pem"));
    want(
        api(
            admin,
            "POST",
            "/api/v1/cas",
            Some(&a),
            Some(&json!({"name": "x", "certificates": leaf})),
        ),
        422,
        Some("invalid_ca"),
    );
    want(
        api(
            admin,
            "POST",
            "/api/v1/cas",
            Some(&a),
            Some(&json!({"name": "x", "certificates": ca_pem, "color": 1})),
        ),
        400,
        Some("unknown_field"),
    );
    want(
        api(
            admin,
            "POST",
            "/api/v1/hostnames",
            Some(&b),
            Some(&json!({"name": "api.tenant-a.test", "origin": "http://127.0.0.1:9"})),
        ),
        409,
        Some("hostname_taken"),
    );
    want(
        api(
            admin,
            "POST",
            "/api/v1/hostnames",
            Some(&b),
            Some(&json!({"name": "not a name", "origin": "http://127.0.0.1:9"})),
        ),
        422,
        Some("invalid_hostname"),
    );
    // 10 MB body, with and without Content-Length.
    let d = tempdir();
    let mut big = br#"{"name":"x","certificates":""#.to_vec();
    big.resize(10 * 1024 * 1024, b'A');
    big.extend_from_slice(b"\"}");
    let f = d.path().join("big.json");
    std::fs::write(&f, &big).expect("write");
    for chunked in [false, true] {
        let mut c = Command::new("curl");
        c.args([
            "-sS",
            "--max-time",
            "30",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-H",
            &format!("Authorization: Bearer {a}"),
        ])
        .args(["-H", "content-type: application/json"]);
        if chunked {
            c.args(["-H", "Transfer-Encoding: chunked"]);
        }
        let out = c
            .arg("--data-binary")
            .arg(format!("@{}", f.display()))
            .arg(format!("http://127.0.0.1:{admin}/api/v1/cas"))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        assert_eq!(
            code.trim(),
            "413",
            "chunked={chunked}: {text:.200} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_str(body).expect("JSON 413");
        assert_eq!(v["error"]["code"], "body_too_large");
    }
    assert_eq!(audit_len(&root), before);
    let cas = want(api(admin, "GET", "/api/v1/cas", Some(&a), None), 200, None);
    assert_eq!(cas["items"].as_array().map(Vec::len), Some(1));

    // Isolation over HTTP: B sees nothing of A's.
    want(
        api(
            admin,
            "GET",
            "/api/v1/hostnames/api.tenant-a.test",
            Some(&b),
            None,
        ),
        404,
        Some("not_found"),
    );
    want(
        api(
            admin,
            "GET",
            &format!("/api/v1/cas/{ca_id}"),
            Some(&b),
            None,
        ),
        404,
        Some("not_found"),
    );
    want(
        api(
            admin,
            "DELETE",
            "/api/v1/hostnames/api.tenant-a.test",
            Some(&b),
            None,
        ),
        404,
        Some("not_found"),
    );
    want(
        api(
            admin,
            "GET",
            &format!("/api/v1/accounts/{a_id}"),
            Some(&b),
            None,
        ),
        404,
        Some("not_found"),
    );
    let hs = want(
        api(admin, "GET", "/api/v1/hostnames", Some(&b), None),
        200,
        None,
    );
    assert_eq!(hs["items"], json!([]));

    // Every change is in the audit log with its actor.
    let log = want(
        api(admin, "GET", "/api/v1/audit?limit=1000", Some(&root), None),
        200,
        None,
    );
    let actions: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for wanted in [
        "account.create",
        "token.create",
        "ca.create",
        "hostname.create",
        "hostname.update",
        "certificate.issue",
        "certificate.revoke",
    ] {
        assert!(actions.contains(&wanted), "{wanted} not in {actions:?}");
    }
    // A delete of the associated CA is refused, cascade works.
    want(
        api(
            admin,
            "DELETE",
            &format!("/api/v1/cas/{ca_id}"),
            Some(&a),
            None,
        ),
        409,
        Some("in_use"),
    );

    // Restart on the same data dir: same data, same token, no new token.
    env.gw.kill9();
    let log2 = std::fs::File::create(env.path().join("gateway2.log")).expect("log");
    let child = Command::new(bin())
        .args(["serve", "--config", "gateway.toml"])
        .current_dir(env.path())
        .env(
            "PORTCULLIS_ADMIN_TOKEN",
            "this-is-ignored-because-a-token-exists-already",
        )
        .stdout(std::process::Stdio::null())
        .stderr(log2)
        .spawn()
        .expect("spawn serve");
    let mut g = ChildGuard(Some(child));
    wait_port(admin, &mut g);
    let log2 = read(&env.path().join("gateway2.log"));
    assert!(
        printed_token(&log2).is_none() && !log2.contains("operator token"),
        "{log2}"
    );
    let hs = want(
        api(admin, "GET", "/api/v1/hostnames", Some(&a), None),
        200,
        None,
    );
    assert_eq!(hs["items"][0]["name"], "api.tenant-a.test");
    want(
        api(admin, "GET", "/api/v1/whoami", Some(&root), None),
        200,
        None,
    );
    want(
        api(
            admin,
            "GET",
            "/api/v1/whoami",
            Some("this-is-ignored-because-a-token-exists-already"),
            None,
        ),
        401,
        None,
    );
}

/// `PORTCULLIS_ADMIN_TOKEN` sets the first operator token; nothing is
/// printed.
#[test]
fn control_bootstrap_token_from_environment() {
    need("curl");
    let d = tempdir();
    let admin = free_port();
    let https = free_port();
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["static.test".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    write(d.path(), "server.pem", &cert.pem());
    write(d.path(), "server-key.pem", &key.serialize_pem());
    write(
        d.path(),
        "gw.toml",
        &format!(
            "[server]\nhttps = \"127.0.0.1:{https}\"\nadmin = \"127.0.0.1:{admin}\"\ndata_dir = \"data\"\n\n[[hostname]]\nname = \"static.test\"\ncert = \"server.pem\"\nkey = \"server-key.pem\"\norigin = \"http://127.0.0.1:9\"\n"
        ),
    );
    let token = "operator-secret-from-the-environment-0123456789";
    let log = std::fs::File::create(d.path().join("log")).expect("log");
    let child = Command::new(bin())
        .args(["serve", "--config", "gw.toml"])
        .current_dir(d.path())
        .env("PORTCULLIS_ADMIN_TOKEN", token)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn");
    let mut g = ChildGuard(Some(child));
    wait_port(admin, &mut g);
    let text = read(&d.path().join("log"));
    assert!(!text.contains(token), "the token was printed: {text}");
    let me = want(
        api(admin, "GET", "/api/v1/whoami", Some(token), None),
        200,
        None,
    );
    assert_eq!(me["scopes"], json!(["admin"]));
    want(
        api(
            admin,
            "GET",
            "/api/v1/whoami",
            Some("operator-secret-from-the-environment-012345678X"),
            None,
        ),
        401,
        None,
    );
}

/// The Client-Cert-Status the origin saw (from the echoed request head).
fn seen_status(body: &str) -> String {
    crate::gateway::headers(body)
        .get("client-cert-status")
        .and_then(|v| v.first().cloned())
        .unwrap_or_default()
}

/// Waits (bounded, 15 s) until `f` holds; returns how long it took.
fn eventually(what: &str, mut f: impl FnMut() -> bool) -> std::time::Duration {
    let start = std::time::Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "{what}: not seen within 15 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// Issue 5's end-to-end flow, every step through the API with curl and
/// every verdict through the gateway with curl: account → CA → hostname →
/// associate → report → requests → events → enforce → a managed-CA client
/// certificate accepted → revoked → rejected; and the data-plane half of
/// tenant isolation: a client certificate from B's CA is never valid on
/// A's hostname, even when A uploads the same CA certificate (without
/// associating it), and B's managed-CA certificates are not valid on A's
/// hostname that trusts A's managed CA. Propagation times are printed.
#[test]
fn control_end_to_end_through_the_gateway() {
    let admin = free_port();
    let mut env = Env::start_with(|_, port, origin| {
        format!(
            "[server]\nhttps = \"127.0.0.1:{port}\"\nadmin = \"127.0.0.1:{admin}\"\ndata_dir = \"data\"\n\n[[hostname]]\nname = \"off.acme.test\"\ncert = \"server.pem\"\nkey = \"server-key.pem\"\norigin = \"http://127.0.0.1:{origin}\"\n"
        )
    });
    wait_port(admin, &mut env.gw);
    let root = printed_token(&env.log()).expect("operator token");
    let dir = env.path().to_path_buf();
    let mut tenants = Vec::new();
    for name in ["acme", "globex"] {
        let acc = want(
            api(
                admin,
                "POST",
                "/api/v1/accounts",
                Some(&root),
                Some(&json!({"name": name})),
            ),
            201,
            None,
        );
        let id = acc["id"].as_i64().expect("id");
        let t = want(
            api(
                admin,
                "POST",
                &format!("/api/v1/accounts/{id}/tokens"),
                Some(&root),
                Some(&json!({"name": "ci", "scopes": ["read", "write"]})),
            ),
            201,
            None,
        );
        tenants.push(t["token"].as_str().expect("token").to_owned());
    }
    let (a, b) = (tenants[0].clone(), tenants[1].clone());
    let origin = format!("http://127.0.0.1:{}", env.origin.port);
    let server_pem = read(&dir.join("server.pem"));
    let server_key = read(&dir.join("server-key.pem"));
    let other_pem = read(&dir.join("other.pem"));

    // A: its CA with its CRL (carol is revoked), and a copy of B's CA that
    // it does not associate.
    let ca_a = want(
        api(admin, "POST", "/api/v1/cas", Some(&a), Some(&json!({"name": "acme", "certificates": read(&dir.join("ca.pem")), "crl": read(&dir.join("ca.crl"))}))),
        201,
        None,
    )["id"]
        .as_i64()
        .expect("id");
    want(
        api(
            admin,
            "POST",
            "/api/v1/cas",
            Some(&a),
            Some(&json!({"name": "copy-of-globex", "certificates": other_pem})),
        ),
        201,
        None,
    );
    want(
        api(
            admin,
            "POST",
            "/api/v1/hostnames",
            Some(&a),
            Some(
                &json!({"name": "report.acme.test", "origin": origin, "certificate": server_pem, "private_key": server_key}),
            ),
        ),
        201,
        None,
    );
    want(
        api(
            admin,
            "PUT",
            &format!("/api/v1/hostnames/report.acme.test/cas/{ca_a}"),
            Some(&a),
            None,
        ),
        200,
        None,
    );
    want(
        api(
            admin,
            "PATCH",
            "/api/v1/hostnames/report.acme.test",
            Some(&a),
            Some(&json!({"mode": "report", "headers": {
                "rename": {"Client-Cert-Subject": "X-Client-DN"},
                "map": {"X-Client-CN": "subject.cn"}}})),
        ),
        200,
        None,
    );
    // B: the other CA on its own hostname.
    let ca_b = want(
        api(
            admin,
            "POST",
            "/api/v1/cas",
            Some(&b),
            Some(&json!({"name": "globex", "certificates": other_pem})),
        ),
        201,
        None,
    )["id"]
        .as_i64()
        .expect("id");
    want(
        api(
            admin,
            "POST",
            "/api/v1/hostnames",
            Some(&b),
            Some(
                &json!({"name": "enforce.acme.test", "origin": origin, "certificate": server_pem, "private_key": server_key, "mode": "report", "ca_ids": [ca_b]}),
            ),
        ),
        201,
        None,
    );

    let took = eventually("report hostname served", || {
        let (code, _, body) = env.curl("report", Some("alice"), &[]);
        code == 200 && seen_status(&body) == "valid"
    });
    // The hostname's header settings reach the gateway: a renamed
    // contract header and a mapped certificate field, under their new names.
    let (_, _, body) = env.curl("report", Some("alice"), &[]);
    let seen = crate::gateway::headers(&body);
    assert!(
        seen.contains_key("x-client-dn"),
        "renamed header missing: {body}"
    );
    assert!(
        !seen.contains_key("client-cert-subject"),
        "old name still sent: {body}"
    );
    assert!(
        seen.contains_key("x-client-cn"),
        "mapped field missing: {body}"
    );
    // Settings the gateway would refuse are refused by the API.
    want(
        api(
            admin,
            "PATCH",
            "/api/v1/hostnames/report.acme.test",
            Some(&a),
            Some(&json!({"headers": {"map": {"X-Client-CN": "no.such.field"}}})),
        ),
        422,
        Some("invalid_headers"),
    );
    eprintln!("control e2e: new hostname served in report mode after {took:?}");
    let check = |host: &str, cert: Option<&str>, code: u16, status: &str| {
        let (c, _, body) = env.curl(host, cert, &[]);
        assert_eq!(c, code, "{host} with {cert:?}: {body}");
        if !status.is_empty() {
            assert_eq!(seen_status(&body), status, "{host} with {cert:?}: {body}");
        }
    };
    check("report", Some("mallory"), 200, "invalid");
    check("report", Some("carol"), 200, "invalid");
    check("report", None, 200, "none");
    eventually("B's hostname served", || {
        env.curl("enforce", Some("mallory"), &[]).0 == 200
    });
    check("enforce", Some("mallory"), 200, "valid");
    check("enforce", Some("alice"), 200, "invalid");

    // Events show the report-mode verdicts, to A only.
    eventually("events of A", || {
        let v = want(
            api(
                admin,
                "GET",
                "/api/v1/events?hostname=report.acme.test",
                Some(&a),
                None,
            ),
            200,
            None,
        );
        let items = v["items"].as_array().cloned().unwrap_or_default();
        let has = |verdict: &str| items.iter().any(|e| e["verdict"] == verdict);
        has("valid") && has("invalid") && has("none")
    });
    let v = want(
        api(
            admin,
            "GET",
            "/api/v1/events?verdict=invalid&hostname=report.acme.test",
            Some(&a),
            None,
        ),
        200,
        None,
    );
    assert!(
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|e| e["verdict"] == "invalid" && e["reason"].is_string()),
        "{v}"
    );
    let v = want(
        api(
            admin,
            "GET",
            "/api/v1/events/counts?hostname=report.acme.test",
            Some(&a),
            None,
        ),
        200,
        None,
    );
    assert!(!v["items"].as_array().expect("items").is_empty(), "{v}");
    let v = want(
        api(
            admin,
            "GET",
            "/api/v1/events?hostname=report.acme.test",
            Some(&b),
            None,
        ),
        200,
        None,
    );
    assert_eq!(v["items"], json!([]), "B sees A's events: {v}");

    // Enforce: blocked (measured from the API answer).
    want(
        api(
            admin,
            "PATCH",
            "/api/v1/hostnames/report.acme.test",
            Some(&a),
            Some(&json!({"mode": "enforce"})),
        ),
        200,
        None,
    );
    let took = eventually("enforce applied", || env.curl("report", None, &[]).0 == 403);
    eprintln!("control e2e: enforce applied after {took:?}");
    check("report", Some("alice"), 200, "valid");
    check("report", Some("mallory"), 403, "");
    check("report", Some("carol"), 403, "");

    // Managed CA: A's client certificate (key made by the server).
    for (tok, name) in [(&a, "laptop"), (&b, "intruder")] {
        let v = want(
            api(
                admin,
                "POST",
                "/api/v1/managed-ca/certificates",
                Some(tok),
                Some(&json!({"common_name": name})),
            ),
            201,
            None,
        );
        write(
            &dir,
            &format!("{name}.pem"),
            v["pem"].as_str().expect("pem"),
        );
        write(
            &dir,
            &format!("{name}-key.pem"),
            v["private_key"].as_str().expect("key"),
        );
    }
    check("report", Some("laptop"), 403, "");
    want(
        api(
            admin,
            "PATCH",
            "/api/v1/hostnames/report.acme.test",
            Some(&a),
            Some(&json!({"trust_managed_ca": true})),
        ),
        200,
        None,
    );
    let took = eventually("managed CA trusted", || {
        env.curl("report", Some("laptop"), &[]).0 == 200
    });
    eprintln!("control e2e: managed-CA certificate accepted after {took:?}");
    check("report", Some("intruder"), 403, "");
    check("report", Some("mallory"), 403, "");
    check("report", Some("alice"), 200, "valid");
    // Revoke: rejected within seconds.
    let laptop = want(
        api(
            admin,
            "GET",
            "/api/v1/managed-ca/certificates",
            Some(&a),
            None,
        ),
        200,
        None,
    )["items"][0]["serial"]
        .as_str()
        .expect("serial")
        .to_owned();
    want(
        api(
            admin,
            "POST",
            &format!("/api/v1/managed-ca/certificates/{laptop}/revoke"),
            Some(&a),
            Some(&json!({"reason": "keycompromise"})),
        ),
        200,
        None,
    );
    let took = eventually("revocation applied", || {
        env.curl("report", Some("laptop"), &[]).0 == 403
    });
    eprintln!("control e2e: revoked certificate rejected after {took:?}");
    check("report", Some("alice"), 200, "valid");
    // B's hostname is untouched by all of A's changes.
    check("enforce", Some("mallory"), 200, "valid");
}

/// curl to `https://report.acme.test:PORT{path}` (no client certificate);
/// returns (status, body).
fn edge_curl(env: &Env, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .current_dir(env.path())
        .args(["-sS", "--max-time", "20", "--cacert", "ca.pem", "--resolve"])
        .arg(format!("report.acme.test:{}:127.0.0.1", env.port))
        .args(["-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("https://report.acme.test:{}{path}", env.port))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// Issue 6 through the management API: an edge policy PUT on a store
/// hostname (mode `off`) reaches the gateway within seconds — a rule
/// blocks `/admin` with its configured answer, a `log` rule lets the
/// request through and is an event with action `log`, a token check
/// refuses a request without a token; a bad expression is a 422 naming
/// the line and column and the served policy stays; secrets are never
/// shown; another account cannot read or change the policy.
#[test]
fn edge_policy_through_the_api_reaches_the_gateway() {
    let admin = free_port();
    // The file config serves only off.acme.test: report.acme.test comes
    // from the store.
    let mut env = Env::start_with(|_, port, origin| {
        format!(
            "[server]\nhttps = \"127.0.0.1:{port}\"\nadmin = \"127.0.0.1:{admin}\"\ndata_dir = \"data\"\n\n[[hostname]]\nname = \"off.acme.test\"\ncert = \"server.pem\"\nkey = \"server-key.pem\"\norigin = \"http://127.0.0.1:{origin}\"\n"
        )
    });
    wait_admin(admin, &mut env);
    let root = printed_token(&env.log()).expect("operator token");
    let dir = env.path().to_path_buf();
    let mut tenants = Vec::new();
    for name in ["acme", "globex"] {
        let id = want(
            api(
                admin,
                "POST",
                "/api/v1/accounts",
                Some(&root),
                Some(&json!({"name": name})),
            ),
            201,
            None,
        )["id"]
            .as_i64()
            .expect("id");
        let t = want(
            api(
                admin,
                "POST",
                &format!("/api/v1/accounts/{id}/tokens"),
                Some(&root),
                Some(&json!({"name": "ci", "scopes": ["read", "write"]})),
            ),
            201,
            None,
        );
        tenants.push(t["token"].as_str().expect("token").to_owned());
    }
    let (a, b) = (tenants[0].clone(), tenants[1].clone());
    want(
        api(
            admin,
            "POST",
            "/api/v1/hostnames",
            Some(&a),
            Some(&json!({"name": "report.acme.test", "mode": "off",
                "origin": format!("http://127.0.0.1:{}", env.origin.port),
                "certificate": read(&dir.join("server.pem")),
                "private_key": read(&dir.join("server-key.pem"))})),
        ),
        201,
        None,
    );
    let edge = "/api/v1/hostnames/report.acme.test/edge";
    let empty = want(api(admin, "GET", edge, Some(&a), None), 200, None);
    assert_eq!(empty, json!({"token": [], "rule": [], "rate_limit": []}));
    eventually("hostname served", || edge_curl(&env, "/admin").0 == 200);

    let policy = json!({
        "rule": [
            {"name": "no-admin", "expression": "http.request.uri.path.startsWith(\"/admin\")",
             "action": "block", "block_status": 451, "block_content_type": "text/plain",
             "block_body": "admin is closed"},
            {"name": "watch", "expression": "http.request.uri.path == \"/logged\"",
             "action": "log"},
        ],
        "token": [{"scheme": "cloudflare", "paths": ["/tok/*"], "secrets": ["s3cr3t-edge"],
                   "ttl": 60}],
    });
    let shown = want(api(admin, "PUT", edge, Some(&a), Some(&policy)), 200, None);
    assert!(!shown.to_string().contains("s3cr3t-edge"), "{shown}");
    assert_eq!(shown["token"][0]["secrets"], json!(["[secret elided]"]));
    assert_eq!(shown["rule"], policy["rule"]);
    let took = eventually("rule applied", || edge_curl(&env, "/admin/x").0 == 451);
    eprintln!("edge policy applied after {took:?}");
    assert_eq!(
        edge_curl(&env, "/admin"),
        (451, "admin is closed".to_owned())
    );
    let (code, body) = edge_curl(&env, "/other");
    assert_eq!(code, 200, "{body}");
    let before = env.origin.count();
    let (code, body) = edge_curl(&env, "/logged");
    assert_eq!(code, 200, "{body}");
    assert!(
        env.origin.count() > before,
        "the logged request reached no origin"
    );
    let (code, body) = edge_curl(&env, "/tok/file");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("invalid token"), "{body}");

    // Events (mode off): the log hit, the rule block and the token refusal.
    eventually("edge events", || {
        let v = want(
            api(
                admin,
                "GET",
                "/api/v1/events?hostname=report.acme.test",
                Some(&a),
                None,
            ),
            200,
            None,
        );
        let items = v["items"].as_array().cloned().unwrap_or_default();
        let has = |action: &str| items.iter().any(|e| e["action"] == action);
        has("log") && has("rule") && has("token")
    });
    let v = want(
        api(
            admin,
            "GET",
            "/api/v1/events?hostname=report.acme.test",
            Some(&b),
            None,
        ),
        200,
        None,
    );
    assert_eq!(v["items"], json!([]), "B sees A's events: {v}");

    // A bad expression: 422 with the position; nothing changes.
    let bad = json!({"rule": [{"name": "broken", "expression": "http.request.uri.path ==",
                                "action": "block"}]});
    let e = want(
        api(admin, "PUT", edge, Some(&a), Some(&bad)),
        422,
        Some("invalid_edge_policy"),
    );
    let msg = e["error"]["message"].as_str().expect("message");
    assert!(msg.contains("line 1, column"), "{msg}");
    want(
        api(admin, "PUT", edge, Some(&a), Some(&json!({"rules": []}))),
        422,
        Some("invalid_edge_policy"),
    );
    // A document read back (secrets elided) is not taken as secrets.
    want(
        api(admin, "PUT", edge, Some(&a), Some(&shown)),
        422,
        Some("invalid_edge_policy"),
    );
    let still = want(api(admin, "GET", edge, Some(&a), None), 200, None);
    assert_eq!(still, shown);
    assert_eq!(edge_curl(&env, "/admin").0, 451);

    // Another account: 404 for reading and changing.
    want(
        api(admin, "GET", edge, Some(&b), None),
        404,
        Some("not_found"),
    );
    want(
        api(admin, "PUT", edge, Some(&b), Some(&json!({}))),
        404,
        Some("not_found"),
    );
    assert_eq!(edge_curl(&env, "/admin").0, 451);

    // Emptied: everything passes again.
    want(
        api(admin, "PUT", edge, Some(&a), Some(&json!({}))),
        200,
        None,
    );
    eventually("policy removed", || edge_curl(&env, "/admin").0 == 200);

    // Audited: the two accepted changes, none of the refused ones, no secret.
    let log = want(
        api(admin, "GET", "/api/v1/audit?limit=1000", Some(&root), None),
        200,
        None,
    );
    assert!(!log.to_string().contains("s3cr3t-edge"), "{log}");
    let edge_changes = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| {
            e["action"] == "hostname.update"
                && e["detail"]["changed"]
                    .as_array()
                    .is_some_and(|c| c.contains(&json!("edge")))
        })
        .count();
    assert_eq!(edge_changes, 2, "{log}");
}
