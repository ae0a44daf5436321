//! The CA against real peers: the stock cfssl 1.2 client and server, openssl.

use crate::common::*;
use std::path::Path;
use std::process::Command;

fn sh(dir: &Path, script: &str) -> std::process::Output {
    run_in(dir, Command::new("sh").arg("-c").arg(script))
}

/// A cfssl client config whose every profile (default included: cfssl 1.2
/// otherwise wants a local CA key) signs remotely with authsign.
fn client_config(dir: &Path, port: u16, key: &str) {
    write(
        dir,
        "config_client.json",
        &format!(
            r#"{{"signing":{{
  "default":{{"auth_remote":{{"remote":"caserver","auth_key":"k1"}}}},
  "profiles":{{"client":{{"usages":["signing","key encipherment","client auth"],"expiry":"8760h",
                         "auth_remote":{{"remote":"caserver","auth_key":"k1"}}}}}}}},
 "auth_keys":{{"k1":{{"type":"standard","key":"{key}"}}}},
 "remotes":{{"caserver":"http://127.0.0.1:{port}"}}}}"#
        ),
    );
}

fn db_rows(dir: &Path, sql: &str) -> String {
    need("sqlite3");
    ok(run_in(
        dir,
        Command::new("sqlite3").arg("certs.db").arg(sql),
    ))
}

fn days_valid(dir: &Path, pem: &str) -> i64 {
    let info: serde_json::Value =
        serde_json::from_str(&ok(portcullis(dir, &["cert", "info", pem]))).expect("info JSON");
    let t = |k: &str| {
        time::OffsetDateTime::parse(
            info[k].as_str().expect("time"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339")
    };
    (t("not_after") - t("not_before")).whole_days()
}

#[test]
fn cfssl_client_gencert_with_authsign_against_portcullis() {
    need("cfssl");
    need("cfssljson");
    let d = tempdir();
    let dir = d.path();
    init_ca(dir);
    server_config(dir);
    let (_srv, port) = start_ca_serve(dir, &[]);
    client_config(dir, port, AUTH_KEY);
    write(
        dir,
        "csr.json",
        r#"{"CN":"svc","hosts":["svc.acme.test","127.0.0.1"],"key":{"algo":"ecdsa","size":256}}"#,
    );
    ok(sh(
        dir,
        "cfssl gencert -config config_client.json -profile client csr.json | cfssljson -bare svc",
    ));
    ok(run_in(
        dir,
        Command::new("openssl").args(["verify", "-CAfile", "ca.pem", "svc.pem"]),
    ));
    let text = ok(run_in(
        dir,
        Command::new("openssl").args(["x509", "-in", "svc.pem", "-noout", "-text"]),
    ));
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(!text.contains("TLS Web Server Authentication"), "{text}");
    assert!(text.contains("DNS:svc.acme.test") && text.contains("IP Address:127.0.0.1"));
    // 8760h, plus the 5 minute backdate.
    assert_eq!(days_valid(dir, "svc.pem"), 365);
    // Recorded before it was returned.
    let serial = serde_json::from_str::<serde_json::Value>(&ok(portcullis(
        dir,
        &["cert", "info", "svc.pem"],
    )))
    .expect("json")["serial_number"]
        .as_str()
        .expect("serial")
        .to_string();
    let row = db_rows(
        dir,
        &format!("select profile, status from certificates where serial_number = '{serial}'"),
    );
    assert_eq!(row.trim(), "client|good");

    // Same with a wrong auth key: refused with HTTP 400, nothing issued.
    client_config(dir, port, "00000000000000000000000000000000");
    let err = String::from_utf8_lossy(
        &sh(
            dir,
            "cfssl gencert -config config_client.json -profile client csr.json 2>&1 >/dev/null",
        )
        .stdout,
    )
    .into_owned();
    assert!(
        err.contains("invalid token") && err.contains("7400"),
        "{err}"
    );
    let (status, body) = curl_post(
        &format!("http://127.0.0.1:{port}/api/v1/cfssl/authsign"),
        br#"{"token":"AAAA","request":"e30="}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        db_rows(dir, "select count(*) from certificates").trim(),
        "1"
    );
}

#[test]
fn cfssl_sign_and_info_against_portcullis() {
    need("cfssl");
    need("cfssljson");
    let d = tempdir();
    let dir = d.path();
    init_ca(dir);
    server_config(dir);
    let (_srv, port) = start_ca_serve(dir, &[]);
    client_config(dir, port, AUTH_KEY);
    ok(sh(
        dir,
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.pem \
         -subj /CN=signed.acme.test -out r.csr 2>/dev/null",
    ));
    let url = format!("http://127.0.0.1:{port}");
    ok(sh(
        dir,
        &format!("cfssl sign -remote {url} -profile plain r.csr | cfssljson -bare signed"),
    ));
    ok(run_in(
        dir,
        Command::new("openssl").args(["verify", "-CAfile", "ca.pem", "signed.pem"]),
    ));
    assert_eq!(days_valid(dir, "signed.pem"), 30);
    // `info` returns our CA certificate.
    let info = ok(sh(
        dir,
        &format!("cfssl info -remote {url} -config config_client.json -profile client"),
    ));
    let v: serde_json::Value = serde_json::from_str(&info).expect("info JSON");
    let ca = std::fs::read_to_string(dir.join("ca.pem")).expect("ca.pem");
    assert_eq!(v["certificate"].as_str().map(str::trim), Some(ca.trim()));
    assert_eq!(v["expiry"], "8760h");
    // An unknown profile is an error, not a silent fallback to default.
    let out = sh(
        dir,
        &format!("cfssl sign -remote {url} -profile nosuch r.csr"),
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("unknown signing profile"), "{all}");
}

/// cfssl's sqlite-free `serve` on a CA cfssl made; `portcullis ca gencert
/// --remote` makes the key here and sends only the CSR.
#[test]
fn portcullis_gencert_remote_against_cfssl_serve() {
    need("cfssl");
    need("cfssljson");
    let d = tempdir();
    let dir = d.path();
    write(
        dir,
        "ca-csr.json",
        r#"{"CN":"cfssl Root","key":{"algo":"ecdsa","size":256}}"#,
    );
    ok(sh(
        dir,
        "cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca",
    ));
    server_config(dir);
    let port = free_port();
    let child = Command::new("cfssl")
        .args(["serve", "-address", "127.0.0.1", "-port", &port.to_string()])
        .args([
            "-ca",
            "ca.pem",
            "-ca-key",
            "ca-key.pem",
            "-config",
            "config.json",
        ])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("cfssl serve");
    let mut g = ChildGuard(Some(child));
    wait_port(port, &mut g);
    client_config(dir, port, AUTH_KEY);
    write(
        dir,
        "csr.json",
        r#"{"CN":"agent","hosts":["agent.acme.test"],"key":{"algo":"ecdsa","size":256}}"#,
    );
    let url = format!("http://127.0.0.1:{port}");
    // authsign (the profile has auth_remote)
    ok(portcullis(
        dir,
        &[
            "ca",
            "gencert",
            "csr.json",
            "--remote",
            &url,
            "--config",
            "config_client.json",
            "--profile",
            "client",
            "--out",
            "agent",
        ],
    ));
    ok(run_in(
        dir,
        Command::new("openssl").args(["verify", "-CAfile", "ca.pem", "agent.pem"]),
    ));
    // The certificate is for the key made here.
    let cert_pub = ok(run_in(
        dir,
        Command::new("openssl").args(["x509", "-in", "agent.pem", "-noout", "-pubkey"]),
    ));
    let key_pub = ok(run_in(
        dir,
        Command::new("openssl").args(["pkey", "-in", "agent-key.pem", "-pubout"]),
    ));
    assert_eq!(cert_pub, key_pub);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("agent-key.pem"))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // plain `sign` (no auth) with --stdout JSON that cfssljson accepts.
    ok(sh(
        dir,
        &format!(
            "{} ca gencert csr.json --remote {url} --profile plain --stdout | cfssljson -bare plain",
            bin().display()
        ),
    ));
    ok(run_in(
        dir,
        Command::new("openssl").args(["verify", "-CAfile", "ca.pem", "plain.pem"]),
    ));
    // A wrong auth key toward cfssl fails too.
    client_config(dir, port, "00000000000000000000000000000000");
    let err = fails(portcullis(
        dir,
        &[
            "ca",
            "gencert",
            "csr.json",
            "--remote",
            &url,
            "--config",
            "config_client.json",
            "--profile",
            "client",
            "--out",
            "bad",
        ],
    ));
    assert!(err.contains("refused"), "{err}");
    assert!(!dir.join("bad.pem").exists() && !dir.join("bad-key.pem").exists());
}

#[test]
fn local_init_and_gencert_pass_openssl_for_every_key_type() {
    let d = tempdir();
    let dir = d.path();
    init_ca_encrypted(dir);
    let ca_text = ok(run_in(
        dir,
        Command::new("openssl").args(["x509", "-in", "ca.pem", "-noout", "-text"]),
    ));
    assert!(ca_text.contains("CA:TRUE") && ca_text.contains("Certificate Sign, CRL Sign"));
    assert!(ca_text.contains("Subject Key Identifier"));
    server_config(dir);
    for (algo, size) in [
        ("ecdsa", 256),
        ("ecdsa", 384),
        ("ed25519", 0),
        ("rsa", 2048),
    ] {
        let name = format!("leaf-{algo}-{size}");
        write(
            dir,
            "leaf.json",
            &format!(
                r#"{{"CN":"{name}","hosts":["{name}.acme.test","10.1.2.3","ops@acme.test","spiffe://acme.test/svc"],
                     "key":{{"algo":"{algo}","size":{size}}},"names":[{{"C":"US","O":"Acme","OU":"Ops"}}]}}"#
            ),
        );
        ok(portcullis(
            dir,
            &[
                "ca",
                "gencert",
                "leaf.json",
                "--ca",
                "ca.pem",
                "--ca-key",
                "ca-key.pem",
                "--passphrase-file",
                "pass.txt",
                "--config",
                "config.json",
                "--profile",
                "plain",
                "--out",
                &name,
                "--db",
                "local.db",
            ],
        ));
        let pem = format!("{name}.pem");
        ok(run_in(
            dir,
            Command::new("openssl").args([
                "verify",
                "-purpose",
                "sslclient",
                "-CAfile",
                "ca.pem",
                &pem,
            ]),
        ));
        let text = ok(run_in(
            dir,
            Command::new("openssl").args(["x509", "-in", &pem, "-noout", "-text"]),
        ));
        for needle in [
            "X509v3 Subject Key Identifier",
            "X509v3 Authority Key Identifier",
            "X509v3 Key Usage",
            "Digital Signature",
            "TLS Web Client Authentication",
            "CA:FALSE",
            "DNS:",
            "IP Address:10.1.2.3",
            "email:ops@acme.test",
            "URI:spiffe://acme.test/svc",
            "C = US, O = Acme, OU = Ops",
        ] {
            assert!(
                text.contains(needle),
                "{algo}-{size}: missing {needle:?} in\n{text}"
            );
        }
        // 20-byte positive serial.
        let info: serde_json::Value =
            serde_json::from_str(&ok(portcullis(dir, &["cert", "info", &pem]))).expect("json");
        assert_eq!(
            info["serial_hex"].as_str().map(str::len),
            Some(40),
            "{info}"
        );
        assert_eq!(
            info["authority_key_id"],
            ok(portcullis(dir, &["cert", "info", "ca.pem"]))
                .parse::<serde_json::Value>()
                .expect("json")["subject_key_id"]
        );
    }
}

/// Revocation through the API, a CRL openssl verifies, and OCSP answers
/// (POST through `openssl ocsp -url`, GET through curl).
#[test]
fn revoke_crl_and_ocsp_with_openssl() {
    let d = tempdir();
    let dir = d.path();
    init_ca_encrypted(dir);
    server_config(dir);
    let (_srv, port) = start_ca_serve(dir, &["--passphrase-file", "pass.txt"]);
    let base = format!("http://127.0.0.1:{port}");
    let mut serials = vec![];
    for name in ["good", "bad"] {
        ok(sh(
            dir,
            &format!(
                "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                 -keyout {name}-key.pem -subj /CN={name} -out {name}.csr 2>/dev/null"
            ),
        ));
        let csr = std::fs::read_to_string(dir.join(format!("{name}.csr"))).expect("csr");
        let body = serde_json::json!({"certificate_request": csr, "profile": "plain"});
        let (st, resp) = curl_post(
            &format!("{base}/api/v1/cfssl/sign"),
            body.to_string().as_bytes(),
        );
        assert_eq!(st, 200, "{resp}");
        let v: serde_json::Value = serde_json::from_str(&resp).expect("json");
        write(
            dir,
            &format!("{name}.pem"),
            v["result"]["certificate"].as_str().expect("cert"),
        );
        let info: serde_json::Value = serde_json::from_str(&ok(portcullis(
            dir,
            &["cert", "info", &format!("{name}.pem")],
        )))
        .expect("json");
        serials.push((
            info["serial_number"].as_str().expect("s").to_string(),
            info["serial_hex"].as_str().expect("s").to_uppercase(),
        ));
    }
    let ocsp = |cert: &str| {
        ok(run_in(
            dir,
            Command::new("openssl").args([
                "ocsp",
                "-issuer",
                "ca.pem",
                "-cert",
                cert,
                "-CAfile",
                "ca.pem",
                "-url",
                &format!("{base}/ocsp"),
            ]),
        ))
    };
    assert!(ocsp("bad.pem").contains("bad.pem: good"));
    let (st, resp) = curl_post(
        &format!("{base}/api/v1/cfssl/revoke"),
        serde_json::json!({"serial": serials[1].0, "reason": "keycompromise"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(st, 200, "{resp}");
    let out = ocsp("bad.pem");
    assert!(
        out.contains("bad.pem: revoked") && out.contains("keyCompromise"),
        "{out}"
    );
    assert!(ocsp("good.pem").contains("good.pem: good"));

    // GET form, no nonce.
    ok(run_in(
        dir,
        Command::new("openssl").args([
            "ocsp",
            "-issuer",
            "ca.pem",
            "-cert",
            "good.pem",
            "-no_nonce",
            "-reqout",
            "req.der",
        ]),
    ));
    let req = std::fs::read(dir.join("req.der")).expect("req");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(req);
    let enc: String = b64
        .chars()
        .map(|c| match c {
            '+' => "%2B".to_string(),
            '/' => "%2F".to_string(),
            '=' => "%3D".to_string(),
            c => c.to_string(),
        })
        .collect();
    ok(run_in(
        dir,
        Command::new("curl").args(["-sSf", "-o", "resp.der", &format!("{base}/ocsp/{enc}")]),
    ));
    let out = ok(run_in(
        dir,
        Command::new("openssl").args([
            "ocsp",
            "-respin",
            "resp.der",
            "-issuer",
            "ca.pem",
            "-CAfile",
            "ca.pem",
            "-cert",
            "good.pem",
            "-no_nonce",
        ]),
    ));
    assert!(out.contains("good.pem: good"), "{out}");

    // CRL from the API lists the revoked serial and verifies.
    let out = ok(run_in(
        dir,
        Command::new("curl").args(["-sSf", &format!("{base}/api/v1/cfssl/crl")]),
    ));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let der = base64::engine::general_purpose::STANDARD
        .decode(v["result"].as_str().expect("b64"))
        .expect("base64");
    std::fs::write(dir.join("crl.der"), der).expect("write");
    let text = ok(run_in(
        dir,
        Command::new("openssl").args([
            "crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-verify", "-noout",
            "-text",
        ]),
    ));
    assert!(text.contains(&serials[1].1), "{text}");
    assert!(!text.contains(&serials[0].1), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
}

/// The same, offline: `ca revoke --db` and `ca crl`.
#[test]
fn cli_revoke_and_crl() {
    let d = tempdir();
    let dir = d.path();
    init_ca(dir);
    server_config(dir);
    write(dir, "leaf.json", r#"{"CN":"x","hosts":["x.acme.test"]}"#);
    ok(portcullis(
        dir,
        &[
            "ca",
            "gencert",
            "leaf.json",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--config",
            "config.json",
            "--profile",
            "plain",
            "--out",
            "x",
            "--db",
            "certs.db",
        ],
    ));
    let info: serde_json::Value =
        serde_json::from_str(&ok(portcullis(dir, &["cert", "info", "x.pem"]))).expect("json");
    let serial = info["serial_number"].as_str().expect("serial");
    ok(portcullis(
        dir,
        &[
            "ca",
            "revoke",
            "--db",
            "certs.db",
            "--ca",
            "ca.pem",
            "--serial",
            serial,
            "--reason",
            "superseded",
        ],
    ));
    // Unknown serial: an error.
    fails(portcullis(
        dir,
        &[
            "ca", "revoke", "--db", "certs.db", "--ca", "ca.pem", "--serial", "12345",
        ],
    ));
    ok(portcullis(
        dir,
        &[
            "ca",
            "crl",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--db",
            "certs.db",
            "--out",
            "ca.crl",
        ],
    ));
    let text = ok(run_in(
        dir,
        Command::new("openssl").args([
            "crl", "-in", "ca.crl", "-CAfile", "ca.pem", "-verify", "-noout", "-text",
        ]),
    ));
    assert!(
        text.contains(&info["serial_hex"].as_str().expect("hex").to_uppercase())
            && text.contains("Superseded"),
        "{text}"
    );
    // openssl verify with CRL checking rejects the revoked certificate.
    let out = run_in(
        dir,
        Command::new("openssl").args([
            "verify",
            "-crl_check",
            "-CRLfile",
            "ca.crl",
            "-CAfile",
            "ca.pem",
            "x.pem",
        ]),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("revoked")
            || String::from_utf8_lossy(&out.stderr).contains("revoked")
    );
}

/// Wrong methods and unknown paths get CFSSL envelopes, not empty bodies.
#[test]
fn wrong_method_and_unknown_path_get_envelopes() {
    let d = tempdir();
    let dir = d.path();
    init_ca(dir);
    server_config(dir);
    let (_srv, port) = start_ca_serve(dir, &[]);
    for (method, path, status) in [
        ("GET", "/api/v1/cfssl/sign", "405"),
        ("DELETE", "/api/v1/cfssl/health", "405"),
        ("GET", "/api/v1/cfssl/nosuch", "404"),
    ] {
        let out = ok(run_in(
            dir,
            Command::new("curl").args([
                "-s",
                "-X",
                method,
                "-w",
                "\n%{http_code}",
                &format!("http://127.0.0.1:{port}{path}"),
            ]),
        ));
        let (body, code) = out.rsplit_once('\n').expect("status line");
        assert_eq!(code, status, "{method} {path}: {body}");
        let v: serde_json::Value = serde_json::from_str(body).expect("JSON envelope");
        assert_eq!(v["success"], false);
        assert!(v["errors"][0]["message"].is_string(), "{v}");
    }
}

/// What `ca gencert --remote` sends: a CSR, never the private key. A
/// listener in the test records the request and refuses it.
#[test]
fn gencert_remote_sends_only_the_csr() {
    use std::io::{Read, Write};
    let d = tempdir();
    let dir = d.path();
    write(
        dir,
        "csr.json",
        r#"{"CN":"agent","hosts":["agent.acme.test"]}"#,
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let recorder = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .ok();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // Read headers and body (bounded).
        while buf.len() < 1 << 20 {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..h]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= h + 4 + len {
                    break;
                }
            }
        }
        let body = br#"{"success":false,"result":null,"errors":[{"code":7001,"message":"recorded"}],"messages":[]}"#;
        let _ = write!(
            s,
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(body);
        buf
    });
    let err = fails(portcullis(
        dir,
        &[
            "ca",
            "gencert",
            "csr.json",
            "--remote",
            &format!("http://127.0.0.1:{port}"),
            "--out",
            "agent",
        ],
    ));
    assert!(err.contains("recorded"), "{err}");
    let sent = String::from_utf8_lossy(&recorder.join().expect("recorder")).into_owned();
    assert!(sent.contains("POST /api/v1/cfssl/sign"), "{sent}");
    assert!(sent.contains("BEGIN CERTIFICATE REQUEST"), "{sent}");
    assert!(
        !sent.contains("PRIVATE KEY"),
        "the key left the machine: {sent}"
    );
    // Refused: nothing written, not even the key.
    assert!(!dir.join("agent-key.pem").exists() && !dir.join("agent.pem").exists());
}
