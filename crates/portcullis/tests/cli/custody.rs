//! CA key custody against real peers: the native Argon2id key file,
//! encrypted PKCS#8 with openssl, `ca init`'s refusal of plaintext keys, the
//! hash-chained audit log, M-of-N sealing, PKCS#11 in SoftHSM2.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Stdio};

const PASS: &str = "tr0ub4dor&3 passphrase";

fn openssl(dir: &Path, args: &[&str]) -> String {
    need("openssl");
    ok(run_in(dir, Command::new("openssl").args(args)))
}

/// `portcullis ARGS` with extra environment variables.
fn portcullis_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(bin());
    c.args(args).env_remove("PORTCULLIS_KEY_PASSPHRASE");
    for (k, v) in env {
        c.env(k, v);
    }
    run_in(dir, &mut c)
}

fn csr_json(dir: &Path) {
    write(
        dir,
        "csr.json",
        r#"{"CN":"svc","hosts":["svc.acme.test"],"key":{"algo":"ecdsa","size":256}}"#,
    );
}

/// Starts `ca serve` with `key_ref` and extra args/env, logging stderr to
/// `serve.log` in `dir` (for the no-secrets-in-logs checks).
pub fn serve_with(
    dir: &Path,
    key_ref: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (ChildGuard, u16) {
    let port = free_port();
    let port_s = port.to_string();
    let mut args = vec![
        "ca",
        "serve",
        "--ca",
        "ca.pem",
        "--ca-key",
        key_ref,
        "--config",
        "config.json",
        "--address",
        "127.0.0.1",
        "--port",
        &port_s,
        "--db",
        "certs.db",
    ];
    args.extend_from_slice(extra);
    let log = std::fs::File::create(dir.join("serve.log")).expect("serve.log");
    let mut c = Command::new(bin());
    c.args(&args)
        .current_dir(dir)
        .env_remove("PORTCULLIS_KEY_PASSPHRASE")
        .env("PORTCULLIS_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in env {
        c.env(k, v);
    }
    let mut g = ChildGuard(Some(c.spawn().expect("spawn ca serve")));
    wait_port(port, &mut g);
    (g, port)
}

fn sign_body(dir: &Path, name: &str) -> Vec<u8> {
    let csr = openssl_csr(
        dir,
        name,
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &format!("/CN={name}"),
        &[],
    );
    let pem = std::fs::read_to_string(csr).expect("csr");
    serde_json::to_vec(&serde_json::json!({"certificate_request": pem, "profile": "plain"}))
        .expect("json")
}

#[test]
fn encrypted_key_written_by_portcullis_is_read_by_openssl_pkey() {
    let d = tempdir();
    let dir = d.path();
    write(
        dir,
        "ca-csr.json",
        r#"{"CN":"Enc Root","key":{"algo":"ecdsa","size":256}}"#,
    );
    let out = portcullis_env(
        dir,
        &["ca", "init", "ca-csr.json", "--key-format", "pkcs8"],
        &[("PORTCULLIS_KEY_PASSPHRASE", PASS)],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(!err.contains("unencrypted"), "{err}");
    let key = std::fs::read_to_string(dir.join("ca-key.pem")).expect("key");
    assert!(
        key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{key}"
    );
    // openssl decrypts it with the same passphrase: same public key as the cert.
    let mut c = Command::new("openssl");
    c.args([
        "pkey",
        "-in",
        "ca-key.pem",
        "-passin",
        "env:PK_PASS",
        "-pubout",
    ])
    .env("PK_PASS", PASS);
    let from_key = ok(run_in(dir, &mut c));
    let from_cert = openssl(dir, &["x509", "-in", "ca.pem", "-noout", "-pubkey"]);
    assert_eq!(from_key, from_cert);
    // … and refuses a wrong one.
    let mut c = Command::new("openssl");
    c.args([
        "pkey",
        "-in",
        "ca-key.pem",
        "-passin",
        "pass:nope",
        "-noout",
    ]);
    fails(run_in(dir, &mut c));

    // Portcullis signs with it given the passphrase in a file …
    write(dir, "pass.txt", &format!("{PASS}\n"));
    csr_json(dir);
    ok(portcullis_env(
        dir,
        &[
            "ca",
            "gencert",
            "csr.json",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--passphrase-file",
            "pass.txt",
            "--out",
            "svc",
        ],
        &[],
    ));
    openssl(dir, &["verify", "-CAfile", "ca.pem", "svc.pem"]);
    // … and says what is missing without one, or that it is wrong.
    let err = fails(portcullis_env(
        dir,
        &[
            "ca",
            "gencert",
            "csr.json",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--out",
            "x",
        ],
        &[],
    ));
    assert!(err.contains("PORTCULLIS_KEY_PASSPHRASE"), "{err}");
    let err = fails(portcullis_env(
        dir,
        &[
            "ca",
            "gencert",
            "csr.json",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--out",
            "x",
        ],
        &[("PORTCULLIS_KEY_PASSPHRASE", "not the passphrase")],
    ));
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(!err.contains("not the passphrase"), "{err}");
}

/// Re-encodes a native key file with one byte of its ciphertext flipped.
fn tamper_native(pem_text: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body: String = pem_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let json = b64.decode(body).expect("PEM body");
    let mut f: serde_json::Value = serde_json::from_slice(&json).expect("JSON header");
    let mut ct = b64
        .decode(f["ciphertext"].as_str().expect("ciphertext"))
        .expect("b64");
    ct[5] ^= 0x40;
    f["ciphertext"] = b64.encode(&ct).into();
    let body = b64.encode(serde_json::to_vec(&f).expect("json"));
    let mut out = String::from("-----BEGIN PORTCULLIS ENCRYPTED PRIVATE KEY-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("ascii"));
        out.push('\n');
    }
    out.push_str("-----END PORTCULLIS ENCRYPTED PRIVATE KEY-----\n");
    out
}

#[test]
fn native_argon2id_key_file_round_trip_wrong_passphrase_and_tampering() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempdir();
    let dir = d.path();
    write(
        dir,
        "ca-csr.json",
        r#"{"CN":"Native Root","key":{"algo":"ecdsa","size":256}}"#,
    );
    write(dir, "pass.txt", &format!("{PASS}\n"));
    let out = portcullis_env(
        dir,
        &["ca", "init", "ca-csr.json", "--passphrase-file", "pass.txt"],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(!err.contains("unencrypted"), "{err}");
    let key = std::fs::read_to_string(dir.join("ca-key.pem")).expect("key");
    assert!(
        key.starts_with("-----BEGIN PORTCULLIS ENCRYPTED PRIVATE KEY-----"),
        "{key}"
    );
    let mode = std::fs::metadata(dir.join("ca-key.pem"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // ca serve decrypts it (passphrase in the environment) and signs,
    // without flagging it.
    server_config(dir);
    {
        let (_srv, port) = serve_with(
            dir,
            "ca-key.pem",
            &[],
            &[("PORTCULLIS_KEY_PASSPHRASE", PASS)],
        );
        let (code, body) = curl_post(
            &format!("http://127.0.0.1:{port}/api/v1/cfssl/sign"),
            &sign_body(dir, "n"),
        );
        assert_eq!(code, 200, "{body}");
    }
    let log = std::fs::read_to_string(dir.join("serve.log")).expect("log");
    assert!(!log.contains("unencrypted"), "{log}");
    assert!(!log.contains(PASS), "{log}");

    // ca gencert with the passphrase file; openssl verifies the result.
    csr_json(dir);
    let gencert = |key: &str, out: &str, pass_file: bool, env: &[(&str, &str)]| {
        let mut args = vec![
            "ca", "gencert", "csr.json", "--ca", "ca.pem", "--ca-key", key, "--out", out,
        ];
        if pass_file {
            args.extend(["--passphrase-file", "pass.txt"]);
        }
        portcullis_env(dir, &args, env)
    };
    ok(gencert("ca-key.pem", "svc", true, &[]));
    openssl(dir, &["verify", "-CAfile", "ca.pem", "svc.pem"]);

    // A wrong passphrase: refused, not echoed, nothing written.
    let err = fails(gencert(
        "ca-key.pem",
        "x",
        false,
        &[("PORTCULLIS_KEY_PASSPHRASE", "Not-The-Passphrase-9")],
    ));
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(!err.contains("Not-The-Passphrase-9"), "{err}");
    assert!(!dir.join("x.pem").exists());
    // No passphrase: says where to put one.
    let err = fails(gencert("ca-key.pem", "x", false, &[]));
    assert!(err.contains("PORTCULLIS_KEY_PASSPHRASE"), "{err}");

    // A flipped ciphertext byte: refused as tampered, with the right passphrase.
    write(dir, "tampered-key.pem", &tamper_native(&key));
    let err = fails(gencert("tampered-key.pem", "x", true, &[]));
    assert!(err.contains("tampered"), "{err}");
    assert!(!err.contains(PASS), "{err}");
    assert!(!dir.join("x.pem").exists());
}

#[test]
fn ca_init_without_passphrase_refuses_unless_insecure_plaintext_key() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempdir();
    let dir = d.path();
    write(
        dir,
        "ca-csr.json",
        r#"{"CN":"Plain Root","key":{"algo":"ecdsa","size":256}}"#,
    );
    let before = listing(dir);
    for extra in [&[][..], &["--stdout"][..], &["--key-format", "native"][..]] {
        let mut args = vec!["ca", "init", "ca-csr.json"];
        args.extend_from_slice(extra);
        let out = portcullis_env(dir, &args, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = fails(out);
        for needle in [
            "PORTCULLIS_KEY_PASSPHRASE",
            "--passphrase-file",
            "--insecure-plaintext-key",
        ] {
            assert!(err.contains(needle), "{extra:?}: {err}");
        }
        assert!(stdout.trim().is_empty(), "{extra:?}: {stdout}");
        assert_eq!(listing(dir), before, "{extra:?} wrote something");
    }
    // Both a passphrase and the opt-out: refused, nothing written.
    let err = fails(portcullis_env(
        dir,
        &["ca", "init", "ca-csr.json", "--insecure-plaintext-key"],
        &[("PORTCULLIS_KEY_PASSPHRASE", PASS)],
    ));
    assert!(err.contains("choose one"), "{err}");
    assert_eq!(listing(dir), before);

    // The explicit opt-out writes a 0600 plaintext key, with a warning …
    let out = portcullis_env(
        dir,
        &["ca", "init", "ca-csr.json", "--insecure-plaintext-key"],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(err.contains("unencrypted"), "{err}");
    let key = std::fs::read_to_string(dir.join("ca-key.pem")).expect("key");
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    let mode = std::fs::metadata(dir.join("ca-key.pem"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // … which ca serve flags at start-up.
    server_config(dir);
    {
        let (_srv, port) = serve_with(dir, "ca-key.pem", &[], &[]);
        let (code, body) = curl_post(
            &format!("http://127.0.0.1:{port}/api/v1/cfssl/sign"),
            &sign_body(dir, "p"),
        );
        assert_eq!(code, 200, "{body}");
    }
    let log = std::fs::read_to_string(dir.join("serve.log")).expect("log");
    assert!(log.contains("stored unencrypted"), "{log}");
}

#[test]
fn openssl_genpkey_aes256_key_is_read_by_portcullis() {
    let d = tempdir();
    let dir = d.path();
    for (name, alg) in [
        ("ec", "ec_paramgen_curve:P-384"),
        ("rsa", "rsa_keygen_bits:2048"),
    ] {
        let algo = if name == "ec" { "EC" } else { "RSA" };
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                algo,
                "-pkeyopt",
                alg,
                "-aes256",
                "-pass",
                &format!("pass:{PASS}"),
                "-out",
                &format!("{name}-key.pem"),
            ],
        );
        let key = std::fs::read_to_string(dir.join(format!("{name}-key.pem"))).expect("key");
        assert!(key.contains("ENCRYPTED PRIVATE KEY"), "{key}");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &format!("{name}-key.pem"),
                "-passin",
                &format!("pass:{PASS}"),
                "-subj",
                &format!("/CN=OpenSSL {name} Root"),
                "-days",
                "30",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-out",
                &format!("{name}-ca.pem"),
            ],
        );
        write(dir, "pass.txt", PASS);
        csr_json(dir);
        ok(portcullis_env(
            dir,
            &[
                "ca",
                "gencert",
                "csr.json",
                "--ca",
                &format!("{name}-ca.pem"),
                "--ca-key",
                &format!("{name}-key.pem"),
                "--passphrase-file",
                "pass.txt",
                "--out",
                &format!("{name}-svc"),
            ],
            &[],
        ));
        openssl(
            dir,
            &[
                "verify",
                "-CAfile",
                &format!("{name}-ca.pem"),
                &format!("{name}-svc.pem"),
            ],
        );
    }
}

#[test]
fn ca_serve_flags_a_plaintext_key_and_serves_an_encrypted_one() {
    let d = tempdir();
    let dir = d.path();
    init_ca(dir); // plaintext, with a warning
    server_config(dir);
    {
        let (_srv, port) = serve_with(dir, "ca-key.pem", &[], &[]);
        let (code, body) = curl_post(
            &format!("http://127.0.0.1:{port}/api/v1/cfssl/sign"),
            &sign_body(dir, "a"),
        );
        assert_eq!(code, 200, "{body}");
    }
    let log = std::fs::read_to_string(dir.join("serve.log")).expect("log");
    assert!(log.contains("stored unencrypted"), "{log}");

    // Encrypt the same key with openssl; serve it with the passphrase in env.
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "ca-key.pem",
            "-v2",
            "aes-256-cbc",
            "-passout",
            &format!("pass:{PASS}"),
            "-out",
            "ca-key-enc.pem",
        ],
    );
    {
        let (_srv, port) = serve_with(
            dir,
            "ca-key-enc.pem",
            &[],
            &[("PORTCULLIS_KEY_PASSPHRASE", PASS)],
        );
        let (code, body) = curl_post(
            &format!("http://127.0.0.1:{port}/api/v1/cfssl/sign"),
            &sign_body(dir, "b"),
        );
        assert_eq!(code, 200, "{body}");
    }
    let log = std::fs::read_to_string(dir.join("serve.log")).expect("log");
    assert!(!log.contains("unencrypted"), "{log}");
    assert!(!log.contains(PASS), "{log}");
}

#[test]
fn audit_verify_fails_at_the_one_edited_entry() {
    let d = tempdir();
    let dir = d.path();
    init_ca(dir);
    csr_json(dir);
    for i in 0..3 {
        ok(portcullis(
            dir,
            &[
                "ca",
                "gencert",
                "csr.json",
                "--ca",
                "ca.pem",
                "--ca-key",
                "ca-key.pem",
                "--db",
                "certs.db",
                "--out",
                &format!("svc{i}"),
            ],
        ));
    }
    let info: serde_json::Value =
        serde_json::from_str(&ok(portcullis(dir, &["cert", "info", "svc1.pem"]))).expect("json");
    let serial = info["serial_number"].as_str().expect("serial").to_string();
    ok(portcullis(
        dir,
        &[
            "ca", "revoke", "--serial", &serial, "--ca", "ca.pem", "--db", "certs.db",
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
    let db = dir.join("certs.db");
    assert_eq!(
        sqlite(&db, "SELECT event FROM audit ORDER BY seq;"),
        ["issue", "issue", "issue", "revoke", "crl"]
    );
    let v: serde_json::Value = serde_json::from_str(&ok(portcullis(
        dir,
        &["ca", "audit", "verify", "--db", "certs.db"],
    )))
    .expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["entries"], 5, "{v}");

    // Rewrite history: entry 2 now names another subject.
    sqlite(
        &db,
        "UPDATE audit SET detail = replace(detail, 'svc', 'evil') WHERE seq = 2;",
    );
    let out = portcullis(dir, &["ca", "audit", "verify", "--db", "certs.db"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["entries"], 1, "{v}");
    assert_eq!(v["broken"]["seq"], 2, "{v}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("entry 2"));

    // Recomputing that entry's own hash does not help: entry 3 then breaks.
    // (Deleting an entry breaks the chain too.)
    sqlite(&db, "DELETE FROM audit WHERE seq = 2;");
    let out = portcullis(dir, &["ca", "audit", "verify", "--db", "certs.db"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["broken"]["seq"], 3, "{v}");

    // No log at all is a usage error, not a broken chain.
    let out = portcullis(dir, &["ca", "audit", "verify", "--db", "missing.db"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

const ADMIN_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn unseal(
    dir: &Path,
    port: u16,
    share: usize,
    pass_file: &str,
    admin: &str,
) -> std::process::Output {
    portcullis_env(
        dir,
        &[
            "ca",
            "unseal",
            "--remote",
            &format!("http://127.0.0.1:{port}"),
            "--share",
            &format!("sealed/share-{share}.json"),
            "--passphrase-file",
            pass_file,
            "--admin-key-file",
            admin,
        ],
        &[],
    )
}

#[test]
fn three_of_five_sealed_ca_signs_only_between_unseal_and_seal() {
    need("curl");
    let d = tempdir();
    let dir = d.path();
    init_ca(dir);
    server_config(dir);
    write(dir, "admin.key", ADMIN_HEX);
    write(dir, "other.key", &ADMIN_HEX.replace('0', "f"));
    let files: Vec<String> = (1..=5)
        .map(|i| {
            write(
                dir,
                &format!("p{i}.txt"),
                &format!("holder {i} says swordfish"),
            );
            format!("p{i}.txt")
        })
        .collect();
    ok(portcullis(
        dir,
        &[
            "ca",
            "split",
            "--ca-key",
            "ca-key.pem",
            "--shares",
            "5",
            "--threshold",
            "3",
            "--share-passphrase-files",
            &files.join(","),
            "--out",
            "sealed",
        ],
    ));
    for i in 1..=5 {
        let t = std::fs::read_to_string(dir.join(format!("sealed/share-{i}.json"))).expect("share");
        assert!(!t.contains("BEGIN"), "{t}");
    }
    let (_srv, port) = serve_with(
        dir,
        "sealed:sealed/sealed-key.json",
        &["--admin-key-file", "admin.key"],
        &[],
    );
    let sign_url = format!("http://127.0.0.1:{port}/api/v1/cfssl/sign");
    let sealed_503 = |name: &str| {
        let (code, body) = curl_post(&sign_url, &sign_body(dir, name));
        assert_eq!(code, 503, "{body}");
        assert_cfssl_error(&body, 2003, "sealed");
    };
    sealed_503("s0");
    let (code, body) = curl_get(&format!(
        "http://127.0.0.1:{port}/api/v1/portcullis/seal_status"
    ));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""sealed":true"#), "{body}");

    // Two holders: still sealed.
    ok(unseal(dir, port, 1, "p1.txt", "admin.key"));
    let out = ok(unseal(dir, port, 4, "p4.txt", "admin.key"));
    assert!(
        out.contains(r#""sealed":true"#) && out.contains(r#""submitted":2"#),
        "{out}"
    );
    sealed_503("s1");
    // A repeated share, a wrong passphrase, a tampered share file and a
    // wrong admin key do not count and say why.
    let err = fails(unseal(dir, port, 4, "p4.txt", "admin.key"));
    assert!(err.contains("share 4 was already submitted"), "{err}");
    let err = fails(unseal(dir, port, 2, "p3.txt", "admin.key"));
    assert!(err.contains("wrong passphrase or tampered"), "{err}");
    let share2 = dir.join("sealed/share-2.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&share2).expect("share")).expect("json");
    let ct = v["ciphertext"].as_str().expect("ct").to_string();
    let mid = ct.len() / 2;
    let swapped = if &ct[mid..=mid] == "A" { "B" } else { "A" };
    v["ciphertext"] = format!("{}{swapped}{}", &ct[..mid], &ct[mid + 1..]).into();
    std::fs::write(dir.join("sealed/share-9.json"), v.to_string()).expect("write");
    let err = fails(unseal(dir, port, 9, "p2.txt", "admin.key"));
    assert!(err.contains("tampered"), "{err}");
    let err = fails(unseal(dir, port, 2, "p2.txt", "other.key"));
    assert!(err.contains("invalid token"), "{err}");
    sealed_503("s2");

    // The third distinct holder unseals: the CA signs, openssl agrees.
    let out = ok(unseal(dir, port, 2, "p2.txt", "admin.key"));
    assert!(out.contains(r#""sealed":false"#), "{out}");
    let (code, body) = curl_post(&sign_url, &sign_body(dir, "s3"));
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    write(
        dir,
        "s3.pem",
        v["result"]["certificate"].as_str().expect("cert"),
    );
    openssl(dir, &["verify", "-CAfile", "ca.pem", "s3.pem"]);
    let (code, body) = curl_get(&format!("http://127.0.0.1:{port}/api/v1/cfssl/crl"));
    assert_eq!(code, 200, "{body}");

    // Sealed again: refuses.
    ok(portcullis(
        dir,
        &[
            "ca",
            "seal",
            "--remote",
            &format!("http://127.0.0.1:{port}"),
            "--admin-key-file",
            "admin.key",
        ],
    ));
    sealed_503("s4");

    // Every step is in the audit log, whose chain holds.
    let events = sqlite(
        &dir.join("certs.db"),
        "SELECT event FROM audit ORDER BY seq;",
    );
    assert_eq!(
        events,
        [
            "unseal_share",
            "unseal_share",
            "unseal_refused",
            "unseal",
            "issue",
            "crl",
            "seal"
        ]
    );
    ok(portcullis(
        dir,
        &["ca", "audit", "verify", "--db", "certs.db"],
    ));

    // No passphrase, admin key or share ever reaches the logs.
    let log = std::fs::read_to_string(dir.join("serve.log")).expect("log");
    assert!(log.contains("key share accepted"), "{log}");
    for secret in ["swordfish", ADMIN_HEX] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

pub(crate) const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "pin-7f3a9c";

/// A fresh SoftHSM2 token labelled `portcullis` in `dir/tokens`; returns
/// the SOFTHSM2_CONF path.
pub(crate) fn softhsm_token(dir: &Path) -> String {
    need("softhsm2-util");
    assert!(
        Path::new(SOFTHSM).exists(),
        "{SOFTHSM} missing: run scripts/install-test-deps.sh"
    );
    std::fs::create_dir(dir.join("tokens")).expect("token dir");
    let conf = write(
        dir,
        "softhsm2.conf",
        &format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.join("tokens").display()
        ),
    );
    let conf = conf.display().to_string();
    let mut c = Command::new("softhsm2-util");
    c.args([
        "--init-token",
        "--free",
        "--label",
        "portcullis",
        "--so-pin",
        "so-pin-1234",
        "--pin",
        PIN,
    ])
    .env("SOFTHSM2_CONF", &conf);
    ok(run_in(dir, &mut c));
    write(dir, "pin.txt", &format!("{PIN}\n"));
    conf
}

#[test]
fn softhsm2_ca_key_never_leaves_the_token_and_cfssl_gets_certificates() {
    need("cfssl");
    need("cfssljson");
    need("pkcs11-tool");
    let d = tempdir();
    let dir = d.path();
    let conf = softhsm_token(dir);
    let env = [("SOFTHSM2_CONF", conf.as_str())];
    let uri = format!(
        "pkcs11:token=portcullis;object=root-ca?module-path={SOFTHSM}&pin-source=file:pin.txt"
    );
    write(
        dir,
        "ca-csr.json",
        r#"{"CN":"HSM Root","names":[{"O":"Portcullis Test"}]}"#,
    );
    ok(portcullis_env(
        dir,
        &["ca", "init", "ca-csr.json", "--ca-key", &uri],
        &env,
    ));
    assert!(dir.join("ca.pem").exists() && dir.join("ca.csr").exists());
    assert!(!dir.join("ca-key.pem").exists(), "{:?}", listing(dir));
    // The same label twice is refused (no silent second key).
    let err = fails(portcullis_env(
        dir,
        &[
            "ca",
            "init",
            "ca-csr.json",
            "--ca-key",
            &uri,
            "--out",
            "again",
        ],
        &env,
    ));
    assert!(err.contains("already holds a key"), "{err}");
    // A wrong PIN is refused without being echoed.
    let bad = uri.replace("pin-source=file:pin.txt", "pin-value=wrong-pin-55");
    let err = fails(portcullis_env(
        dir,
        &[
            "ca",
            "init",
            "ca-csr.json",
            "--ca-key",
            &bad.replace("root-ca", "other"),
            "--out",
            "x",
        ],
        &env,
    ));
    assert!(err.contains("refused the PIN"), "{err}");
    assert!(!err.contains("wrong-pin-55"), "{err}");

    // The token says: sensitive (always), never extractable.
    let mut c = Command::new("pkcs11-tool");
    c.args([
        "--module",
        SOFTHSM,
        "--login",
        "--pin",
        PIN,
        "--list-objects",
        "--type",
        "privkey",
    ])
    .env("SOFTHSM2_CONF", &conf);
    let objects = ok(run_in(dir, &mut c));
    assert!(objects.contains("root-ca"), "{objects}");
    let access = objects
        .lines()
        .find(|l| l.trim_start().starts_with("Access:"))
        .unwrap_or_else(|| panic!("no Access line: {objects}"));
    for flag in ["sensitive", "always sensitive", "never extractable"] {
        assert!(access.contains(flag), "{access}");
    }

    // ca serve signs through the token; the stock cfssl client gets a certificate.
    server_config(dir);
    let (_srv, port) = serve_with(dir, &uri, &[], &env);
    write(
        dir,
        "config_client.json",
        &format!(
            r#"{{"signing":{{
  "default":{{"auth_remote":{{"remote":"caserver","auth_key":"k1"}}}},
  "profiles":{{"client":{{"usages":["signing","key encipherment","client auth"],"expiry":"8760h",
                         "auth_remote":{{"remote":"caserver","auth_key":"k1"}}}}}}}},
 "auth_keys":{{"k1":{{"type":"standard","key":"{AUTH_KEY}"}}}},
 "remotes":{{"caserver":"http://127.0.0.1:{port}"}}}}"#
        ),
    );
    write(
        dir,
        "csr.json",
        r#"{"CN":"svc","hosts":["svc.acme.test"],"key":{"algo":"ecdsa","size":256}}"#,
    );
    ok(run_in(
        dir,
        Command::new("sh").arg("-c").arg(
            "cfssl gencert -config config_client.json -profile client csr.json | cfssljson -bare svc",
        ),
    ));
    openssl(dir, &["verify", "-CAfile", "ca.pem", "svc.pem"]);

    // CRLs are signed by the token too, and verify under the CA.
    let (code, body) = curl_get(&format!("http://127.0.0.1:{port}/api/v1/cfssl/crl"));
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(v["result"].as_str().expect("crl"))
        .expect("base64");
    std::fs::write(dir.join("crl.der"), der).expect("write");
    let out = run_in(
        dir,
        Command::new("openssl").args([
            "crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-noout",
        ]),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("verify OK"),
        "{out:?}"
    );

    // OCSP responses too.
    let svc = std::fs::read_to_string(dir.join("svc.pem")).expect("svc.pem");
    let (code, body) = curl_post(
        &format!("http://127.0.0.1:{port}/api/v1/cfssl/ocspsign"),
        serde_json::json!({ "certificate": svc, "status": "good" })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let der = base64::engine::general_purpose::STANDARD
        .decode(v["result"]["ocspResponse"].as_str().expect("ocsp"))
        .expect("base64");
    std::fs::write(dir.join("ocsp.der"), der).expect("write");
    let out = run_in(
        dir,
        Command::new("openssl").args([
            "ocsp", "-respin", "ocsp.der", "-issuer", "ca.pem", "-CAfile", "ca.pem", "-cert",
            "svc.pem",
        ]),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Response verify OK") && text.contains("svc.pem: good"),
        "{text}"
    );
    assert_eq!(
        sqlite(
            &dir.join("certs.db"),
            "SELECT event FROM audit ORDER BY seq;"
        ),
        ["issue", "crl", "ocspsign"]
    );

    let log = std::fs::read_to_string(dir.join("serve.log")).expect("log");
    assert!(!log.contains(PIN), "{log}");
}

#[test]
fn no_passphrase_or_share_in_trace_logs_of_custody_commands() {
    let d = tempdir();
    let dir = d.path();
    write(dir, "ca-csr.json", r#"{"CN":"Quiet Root"}"#);
    write(dir, "pass.txt", PASS);
    write(dir, "h1.txt", "holder-one-secret");
    write(dir, "h2.txt", "holder-two-secret");
    let trace = [
        ("PORTCULLIS_LOG", "trace"),
        ("PORTCULLIS_KEY_PASSPHRASE", PASS),
    ];
    let mut outputs = vec![portcullis_env(dir, &["ca", "init", "ca-csr.json"], &trace)];
    outputs.push(portcullis_env(
        dir,
        &[
            "ca",
            "split",
            "--ca-key",
            "ca-key.pem",
            "--shares",
            "2",
            "--threshold",
            "2",
            "--share-passphrase-files",
            "h1.txt,h2.txt",
            "--out",
            "sealed",
        ],
        &trace,
    ));
    csr_json(dir);
    // Wrong passphrases, in every place one can be given.
    outputs.push(portcullis_env(
        dir,
        &[
            "ca",
            "gencert",
            "csr.json",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--out",
            "x",
        ],
        &[
            ("PORTCULLIS_LOG", "trace"),
            ("PORTCULLIS_KEY_PASSPHRASE", "holder-one-secret"),
        ],
    ));
    outputs.push(portcullis_env(
        dir,
        &[
            "ca",
            "unseal",
            "--remote",
            "http://127.0.0.1:9",
            "--share",
            "sealed/share-1.json",
            "--passphrase-file",
            "h2.txt",
            "--admin-key-file",
            "pass.txt",
        ],
        &[("PORTCULLIS_LOG", "trace")],
    ));
    assert!(outputs[0].status.success() && outputs[1].status.success());
    assert!(!outputs[2].status.success() && !outputs[3].status.success());
    for out in &outputs {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for secret in [PASS, "holder-one-secret", "holder-two-secret"] {
            assert!(!text.contains(secret), "{secret:?} printed:\n{text}");
        }
    }
}
