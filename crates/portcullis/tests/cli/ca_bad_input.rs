//! Bad input to the CA, over the CFSSL-compatible HTTP API and on the
//! command line. Each is refused with a clear error, nothing is written
//! (no row in the issuance log, no output file), nothing panics, and the
//! server keeps serving.

use crate::common::*;
use base64::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

const P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// A CA (made by `portcullis ca init`) served by `portcullis ca serve` with
/// the suite's `server_config`, in its own temp dir on an ephemeral port.
struct Served {
    dir: tempfile::TempDir,
    server: ChildGuard,
    port: u16,
}

impl Served {
    fn start() -> Self {
        need("curl");
        let dir = tempdir();
        init_ca(dir.path());
        server_config(dir.path());
        let (server, port) = start_ca_serve(dir.path(), &[]);
        Served { dir, server, port }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn url(&self, endpoint: &str) -> String {
        format!("http://127.0.0.1:{}/api/v1/cfssl/{endpoint}", self.port)
    }

    fn rows(&self) -> u64 {
        cert_rows(&self.path().join("certs.db"))
    }

    /// The server process is running and `health` answers.
    #[track_caller]
    fn assert_alive(&mut self) {
        if let Some(c) = self.server.0.as_mut() {
            let st = c.try_wait().expect("try_wait");
            assert!(st.is_none(), "ca serve exited: {st:?}");
        }
        let (status, body) = curl_get(&self.url("health"));
        assert_eq!(status, 200, "health after a bad request: {body}");
        let v: Value = serde_json::from_str(&body).expect("health JSON");
        assert_eq!(v["result"]["healthy"], json!(true), "{body}");
    }

    /// POSTs `body`; asserts the HTTP status, a CFSSL error envelope with
    /// `code` and a message containing `needle`, that the server still
    /// serves, and that the issuance log did not gain a row.
    #[track_caller]
    fn refused(&mut self, endpoint: &str, body: &[u8], status: u16, code: u64, needle: &str) {
        let before = self.rows();
        let (got, text) = curl_post(&self.url(endpoint), body);
        assert_eq!(
            got,
            status,
            "{endpoint} with {:?}: {text}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
        assert_cfssl_error(&text, code, needle);
        self.assert_alive();
        assert_eq!(
            self.rows(),
            before,
            "{endpoint}: a refused request wrote a row"
        );
    }

    /// POSTs `body`; asserts success and returns `result`.
    #[track_caller]
    fn accepted(&mut self, endpoint: &str, body: &[u8]) -> Value {
        let (got, text) = curl_post(&self.url(endpoint), body);
        assert_eq!(got, 200, "{endpoint}: {text}");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["success"], json!(true), "{text}");
        v["result"].clone()
    }

    /// Signs `csr` under `profile`; asserts one new row; returns the PEM.
    #[track_caller]
    fn signs(&mut self, csr: &str, profile: &str) -> String {
        let before = self.rows();
        let r = self.accepted("sign", &sign_body(csr, profile, json!({})));
        assert_eq!(self.rows(), before + 1);
        r["certificate"].as_str().expect("certificate").to_string()
    }
}

/// A `sign` request body; `extra` members are merged in.
fn sign_body(csr: &str, profile: &str, extra: Value) -> Vec<u8> {
    let mut v = json!({ "certificate_request": csr, "profile": profile });
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    serde_json::to_vec(&v).expect("JSON")
}

fn read_text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// PEM text of DER with a label, 64 columns.
fn pem_encode(label: &str, der: &[u8]) -> String {
    let b = B64.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// A valid P-256 CSR from openssl, then one byte of its signature flipped
/// (the last byte of the DER lies inside the signature BIT STRING). Returns
/// (good PEM path, bad DER path, bad PEM path); openssl agrees that the bad
/// one does not verify.
fn bad_signature_csr(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let good = openssl_csr(
        dir,
        "flip",
        P256,
        "/CN=api.acme.test",
        &["-addext", "subjectAltName=DNS:api.acme.test"],
    );
    ok(run_in(
        dir,
        Command::new("openssl").args([
            "req", "-in", "flip.csr", "-outform", "DER", "-out", "flip.der",
        ]),
    ));
    let mut der = std::fs::read(dir.join("flip.der")).expect("read DER");
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let bad_der = dir.join("bad-sig.der");
    std::fs::write(&bad_der, &der).expect("write");
    let bad_pem = write(dir, "bad-sig.csr", &pem_encode("CERTIFICATE REQUEST", &der));
    // The fixture is what it claims: it parses, and only the signature fails.
    ok(run_in(
        dir,
        Command::new("openssl").args(["req", "-in", "bad-sig.csr", "-noout", "-subject"]),
    ));
    let v = run_in(
        dir,
        Command::new("openssl").args(["req", "-in", "bad-sig.csr", "-noout", "-verify"]),
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    assert!(
        !said.contains("verify OK"),
        "openssl verifies the flipped CSR: {said}"
    );
    (good, bad_der, bad_pem)
}

// ---------------------------------------------------------------- HTTP API

#[test]
fn api_malformed_json_is_refused_on_every_endpoint() {
    let mut s = Served::start();
    let truncated: &[u8] = br#"{"certificate_request": "-----BEGIN"#;
    for ep in [
        "sign", "authsign", "newcert", "revoke", "certinfo", "ocspsign", "info",
    ] {
        s.refused(ep, truncated, 400, 7002, "invalid JSON");
        s.refused(ep, b"not json at all", 400, 7002, "invalid JSON");
        s.refused(ep, b"\xff\xfe\x00{", 400, 7002, "invalid JSON");
        s.refused(ep, b"[1,2,3]", 400, 7002, "invalid JSON");
    }
    // newkey and init_ca take the CSR JSON itself.
    for ep in ["newkey", "init_ca"] {
        s.refused(ep, truncated, 400, 9003, "invalid certificate request JSON");
        s.refused(ep, b"", 400, 9003, "invalid certificate request JSON");
        s.refused(ep, b"{}", 400, 9003, "no CN, no names and no hosts");
        s.refused(
            ep,
            br#"{"CN":"x","hosts":"not-a-list"}"#,
            400,
            9003,
            "invalid certificate request JSON",
        );
    }
    // Regression: a zero CA lifetime made a root that was expired at birth.
    s.refused(
        "init_ca",
        br#"{"CN":"Root","ca":{"expiry":"0"}}"#,
        400,
        9003,
        "ca.expiry must be positive",
    );
    // Well-formed JSON of the wrong shape.
    s.refused("sign", b"", 400, 7002, "invalid JSON");
    s.refused(
        "sign",
        br#"{"certificate_request": 5}"#,
        400,
        7002,
        "invalid type",
    );
    s.refused(
        "sign",
        b"{}",
        400,
        9003,
        "missing parameter 'certificate_request'",
    );
    s.refused(
        "sign",
        br#"{"certificate_request": "   "}"#,
        400,
        9003,
        "missing parameter 'certificate_request'",
    );
    s.refused(
        "sign",
        br#"{"certificate_request": "x", "hosts": "a.acme.test"}"#,
        400,
        7002,
        "invalid JSON",
    );
    s.refused("newcert", br#"{"profile":"plain"}"#, 400, 7002, "request");
    s.refused(
        "newcert",
        br#"{"request":"CN=x","profile":"plain"}"#,
        400,
        9003,
        "invalid certificate request JSON",
    );
    // The only GET with input.
    let before = s.rows();
    let (status, body) = curl_get(&format!("{}?expiry=forever", s.url("crl")));
    assert_eq!(status, 400, "{body}");
    assert_cfssl_error(&body, 7002, "expiry");
    let (status, body) = curl_get(&format!("{}?expiry=-5h", s.url("crl")));
    assert_eq!(status, 400, "{body}");
    assert_cfssl_error(&body, 7002, "negative duration");
    // Regression: a zero lifetime was a 500 (nextUpdate == thisUpdate).
    for zero in ["0", "0s", "0.1ns"] {
        let (status, body) = curl_get(&format!("{}?expiry={zero}", s.url("crl")));
        assert_eq!(status, 400, "expiry={zero}: {body}");
        assert_cfssl_error(&body, 7002, "expiry must be positive");
    }
    s.assert_alive();
    assert_eq!(s.rows(), before);
}

#[test]
fn api_sign_refuses_a_pem_that_is_not_a_csr() {
    let mut s = Served::start();
    let ca_pem = read_text(&s.path().join("ca.pem"));
    let ca_key = read_text(&s.path().join("ca-key.pem"));
    s.refused(
        "sign",
        &sign_body(&ca_pem, "plain", json!({})),
        400,
        9003,
        "PEM block is \"CERTIFICATE\", not a CERTIFICATE REQUEST",
    );
    s.refused(
        "sign",
        &sign_body(&ca_key, "plain", json!({})),
        400,
        9003,
        "not a CERTIFICATE REQUEST",
    );
    s.refused(
        "sign",
        &sign_body(
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAAAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "plain",
            json!({}),
        ),
        400,
        9003,
        "not a PKCS#10 request",
    );
    s.refused(
        "sign",
        &sign_body(
            "-----BEGIN CERTIFICATE REQUEST-----\n%%%% not base64 %%%%\n-----END CERTIFICATE REQUEST-----\n",
            "plain",
            json!({}),
        ),
        400,
        9003,
        "bad PEM",
    );
    s.refused(
        "sign",
        &sign_body("hello, I am a CSR", "plain", json!({})),
        400,
        9003,
        "not a PKCS#10 request",
    );
    // certinfo is the endpoint for certificates, and refuses a CSR or garbage.
    let csr = openssl_csr(s.path(), "c", P256, "/CN=c.acme.test", &[]);
    let body = serde_json::to_vec(&json!({ "certificate": read_text(&csr) })).expect("JSON");
    s.refused("certinfo", &body, 400, 1003, "no CERTIFICATE block");
    s.refused(
        "certinfo",
        br#"{"certificate":"garbage"}"#,
        400,
        1003,
        "cannot parse certificate",
    );
    s.refused(
        "certinfo",
        br#"{}"#,
        400,
        1001,
        "missing parameter 'certificate'",
    );
    // A CSR bigger than the CSR limit but under the body limit.
    let big = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        "A".repeat(100 * 1024)
    );
    s.refused(
        "sign",
        &sign_body(&big, "plain", json!({})),
        400,
        9003,
        "the limit is 65536",
    );
    // Valid PKCS#10 that the CA cannot represent faithfully.
    let other_name = openssl_csr(
        s.path(),
        "othername",
        P256,
        "/CN=o.acme.test",
        &["-addext", "subjectAltName=otherName:1.2.3.4;UTF8:hello"],
    );
    s.refused(
        "sign",
        &sign_body(&read_text(&other_name), "plain", json!({})),
        400,
        9003,
        "unsupported subjectAltName type",
    );
    let multi = openssl_csr(
        s.path(),
        "multi",
        P256,
        "/CN=m.acme.test+O=Acme",
        &["-multivalue-rdn"],
    );
    s.refused(
        "sign",
        &sign_body(&read_text(&multi), "plain", json!({})),
        400,
        5003,
        "multi-valued RDNs are not supported",
    );
}

#[test]
fn api_sign_refuses_a_csr_whose_signature_is_wrong() {
    let mut s = Served::start();
    let (good, _bad_der, bad_pem) = bad_signature_csr(s.path());
    let bad = read_text(&bad_pem);
    for profile in ["plain", "server"] {
        s.refused(
            "sign",
            &sign_body(&bad, profile, json!({})),
            400,
            9004,
            "certificate request signature does not verify",
        );
    }
    // A hosts override does not make a forged request acceptable.
    s.refused(
        "sign",
        &sign_body(&bad, "server", json!({ "hosts": ["api.acme.test"] })),
        400,
        9004,
        "signature does not verify",
    );
    // The same request before the flip is signed: the refusal was the signature.
    s.signs(&read_text(&good), "server");
}

#[test]
fn api_sign_refuses_names_outside_the_whitelist() {
    let mut s = Served::start();
    let evil = openssl_csr(
        s.path(),
        "evil",
        P256,
        "/CN=evil.example.com",
        &["-addext", "subjectAltName=DNS:evil.example.com"],
    );
    let evil = read_text(&evil);
    let good = openssl_csr(
        s.path(),
        "good",
        P256,
        "/CN=api.acme.test",
        &["-addext", "subjectAltName=DNS:api.acme.test"],
    );
    let good = read_text(&good);
    let san_only = openssl_csr(
        s.path(),
        "san",
        P256,
        "/CN=web.acme.test",
        &["-addext", "subjectAltName=DNS:web.acme.test,DNS:other.test"],
    );
    let san_only = read_text(&san_only);
    let refused_name =
        |n: &str| format!("name {n:?} is not permitted by the profile's name_whitelist");
    s.refused(
        "sign",
        &sign_body(&evil, "server", json!({})),
        400,
        5005,
        &refused_name("evil.example.com"),
    );
    s.refused(
        "sign",
        &sign_body(&san_only, "server", json!({})),
        400,
        5005,
        &refused_name("other.test"),
    );
    // A hosts override that leaves the whitelist.
    s.refused(
        "sign",
        &sign_body(
            &good,
            "server",
            json!({ "hosts": ["api.acme.test", "evil.example.com"] }),
        ),
        400,
        5005,
        &refused_name("evil.example.com"),
    );
    s.refused(
        "sign",
        &sign_body(&good, "server", json!({ "hosts": ["10.0.0.1"] })),
        400,
        5005,
        &refused_name("10.0.0.1"),
    );
    s.refused(
        "sign",
        &sign_body(
            &good,
            "server",
            json!({ "hostname": "api.acme.test,evil.example.com" }),
        ),
        400,
        5005,
        &refused_name("evil.example.com"),
    );
    // Overriding the SANs does not launder a CN outside the whitelist.
    s.refused(
        "sign",
        &sign_body(&evil, "server", json!({ "hosts": ["api.acme.test"] })),
        400,
        5005,
        &refused_name("evil.example.com"),
    );
    // Nor does a subject override.
    s.refused(
        "sign",
        &sign_body(
            &good,
            "server",
            json!({ "subject": { "CN": "evil.example.com" } }),
        ),
        400,
        5005,
        &refused_name("evil.example.com"),
    );
    // An invalid host is a bad request, not a 5xx.
    s.refused(
        "sign",
        &sign_body(&good, "server", json!({ "hosts": ["bad host"] })),
        400,
        5003,
        "in hosts is not valid",
    );
    // newcert goes through the same policy.
    s.refused(
        "newcert",
        &serde_json::to_vec(&json!({
            "request": { "CN": "evil.example.com", "hosts": ["evil.example.com"] },
            "profile": "server",
        }))
        .expect("JSON"),
        400,
        5005,
        &refused_name("evil.example.com"),
    );
    // Inside the whitelist: signed, including with an override.
    s.signs(&good, "server");
    let before = s.rows();
    s.accepted(
        "sign",
        &sign_body(
            &good,
            "server",
            json!({ "hosts": ["a.acme.test", "b.acme.test"] }),
        ),
    );
    assert_eq!(s.rows(), before + 1);
}

#[test]
fn api_ca_request_is_refused_unless_the_profile_allows_it() {
    let mut s = Served::start();
    let ca_csr = openssl_csr(
        s.path(),
        "sub",
        P256,
        "/CN=Sub CA",
        &["-addext", "basicConstraints=critical,CA:TRUE"],
    );
    let ca_csr = read_text(&ca_csr);
    for profile in ["plain", "server", ""] {
        s.refused(
            "sign",
            &sign_body(&ca_csr, profile, json!({})),
            400,
            5003,
            "the profile does not allow issuing CA certificates",
        );
    }
    // The intermediate profile issues it, with pathlen 0.
    let pem = s.signs(&ca_csr, "intermediate");
    let f = write(s.path(), "sub.pem", &pem);
    let text = ok(run_in(
        s.path(),
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", "basicConstraints", "-in"])
            .arg(&f),
    ));
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    // A request for a deeper path is clamped to the profile's limit.
    let deep = openssl_csr(
        s.path(),
        "deep",
        P256,
        "/CN=Deep CA",
        &["-addext", "basicConstraints=critical,CA:TRUE,pathlen:3"],
    );
    let pem = s.signs(&read_text(&deep), "intermediate");
    let f = write(s.path(), "deep.pem", &pem);
    let text = ok(run_in(
        s.path(),
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", "basicConstraints", "-in"])
            .arg(&f),
    ));
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
}

#[test]
fn api_key_size_outside_the_allowed_set_is_refused() {
    let mut s = Served::start();
    let spec = |algo: &str, size: u32| json!({ "CN": "k.acme.test", "key": { "algo": algo, "size": size } });
    let cases = [
        ("rsa", 1024, "rsa key size 1024 is not allowed"),
        ("rsa", 8192, "rsa key size 8192 is not allowed"),
        ("ecdsa", 521, "ecdsa key size 521 is not allowed"),
        ("ecdsa", 128, "ecdsa key size 128 is not allowed"),
        ("ed25519", 384, "ed25519 keys have no size choice"),
        ("dsa", 2048, "unknown key algorithm \"dsa\""),
    ];
    for (algo, size, msg) in cases {
        let body = serde_json::to_vec(&spec(algo, size)).expect("JSON");
        s.refused("newkey", &body, 400, 2002, msg);
        s.refused("init_ca", &body, 400, 2002, msg);
        let nc = serde_json::to_vec(&json!({ "request": spec(algo, size), "profile": "plain" }))
            .expect("JSON");
        s.refused("newcert", &nc, 400, 2002, msg);
    }
    // A CSR carrying a key outside the set: the CA does not sign weak or
    // unsupported keys it would never have generated itself.
    for (name, newkey, msg) in [
        (
            "rsa1024",
            &["-newkey", "rsa:1024"][..],
            "rsa key of 1024 bits",
        ),
        (
            "p521",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"][..],
            "curve",
        ),
    ] {
        let csr = openssl_csr(s.path(), name, newkey, "/CN=k.acme.test", &[]);
        s.refused(
            "sign",
            &sign_body(&read_text(&csr), "plain", json!({})),
            400,
            2002,
            msg,
        );
    }
    // Inside the set, for contrast.
    let body = serde_json::to_vec(&spec("ecdsa", 384)).expect("JSON");
    s.accepted("newkey", &body);
    for (name, newkey) in [
        ("rsa2048", &["-newkey", "rsa:2048"][..]),
        (
            "p384",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
        ),
        ("ed25519", &["-newkey", "ed25519"][..]),
    ] {
        let csr = openssl_csr(s.path(), name, newkey, "/CN=k.acme.test", &[]);
        s.signs(&read_text(&csr), "plain");
    }
    let nc = serde_json::to_vec(&json!({ "request": spec("ed25519", 0), "profile": "plain" }))
        .expect("JSON");
    s.accepted("newcert", &nc);
}

#[test]
fn api_unknown_profile_is_refused() {
    let mut s = Served::start();
    let csr = openssl_csr(s.path(), "c", P256, "/CN=c.acme.test", &[]);
    let csr = read_text(&csr);
    let msg = "unknown signing profile \"nope\"";
    s.refused("sign", &sign_body(&csr, "nope", json!({})), 400, 5004, msg);
    s.refused(
        "newcert",
        &serde_json::to_vec(&json!({ "request": { "CN": "c.acme.test" }, "profile": "nope" }))
            .expect("JSON"),
        400,
        5004,
        msg,
    );
    s.refused("info", br#"{"profile":"nope"}"#, 400, 5004, msg);
    // authsign looks the profile up to find its key: a valid token does not
    // make an unknown profile known.
    let request = sign_body(&csr, "nope", json!({}));
    let key = pki::config::AuthKey::new("k1", hex::decode(AUTH_KEY).expect("hex"));
    let body = serde_json::to_vec(&json!({
        "token": B64.encode(key.token(&request)),
        "request": B64.encode(&request),
        "timestamp": 0,
    }))
    .expect("JSON");
    s.refused("authsign", &body, 400, 5004, msg);
}

#[test]
fn api_oversized_body_gets_413() {
    let mut s = Served::start();
    let limit = 1024 * 1024;
    let mut big = br#"{"certificate_request":""#.to_vec();
    big.resize(limit + 1 - 2, b'A');
    big.extend_from_slice(b"\"}");
    assert_eq!(big.len(), limit + 1);
    for ep in [
        "sign", "authsign", "newcert", "newkey", "init_ca", "revoke", "certinfo", "ocspsign",
        "info",
    ] {
        s.refused(
            ep,
            &big,
            413,
            7003,
            "request body is larger than 1048576 bytes",
        );
    }
    // Far over the limit too.
    let huge = vec![b' '; 4 * limit];
    s.refused("sign", &huge, 413, 7003, "larger than 1048576 bytes");
    // Without a Content-Length (chunked), the limit still holds.
    let before = s.rows();
    let f = write(s.path(), "huge.json", &String::from_utf8_lossy(&huge));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .args(["-H", "content-type: application/json"])
        .args(["-H", "Transfer-Encoding: chunked"])
        .arg("--data-binary")
        .arg(format!("@{}", f.display()))
        .arg(s.url("sign"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    assert_eq!(code.trim(), "413", "{text}");
    assert_cfssl_error(body, 7003, "larger than 1048576 bytes");
    s.assert_alive();
    assert_eq!(s.rows(), before);
}

#[test]
fn api_authsign_with_a_wrong_token_is_refused() {
    let mut s = Served::start();
    let csr = openssl_csr(s.path(), "c", P256, "/CN=client-1", &[]);
    let csr = read_text(&csr);
    let request = sign_body(&csr, "client", json!({}));
    let right = pki::config::AuthKey::new("k1", hex::decode(AUTH_KEY).expect("hex"));
    let wrong = pki::config::AuthKey::new("k1", b"not the key".to_vec());
    let body = |token: &str, request: &[u8]| {
        serde_json::to_vec(&json!({
            "token": token,
            "request": B64.encode(request),
            "timestamp": 0,
        }))
        .expect("JSON")
    };
    let wrong_token = B64.encode(wrong.token(&request));
    s.refused(
        "authsign",
        &body(&wrong_token, &request),
        400,
        7001,
        "invalid token",
    );
    s.refused("authsign", &body("", &request), 400, 7001, "invalid token");
    s.refused(
        "authsign",
        &body("%%%", &request),
        400,
        7001,
        "invalid token",
    );
    // A right token over other bytes (the request was changed in transit).
    let other = sign_body(&csr, "client", json!({ "hosts": ["x.test"] }));
    let token_for_other = B64.encode(right.token(&other));
    s.refused(
        "authsign",
        &body(&token_for_other, &request),
        400,
        7001,
        "invalid token",
    );
    // Malformed envelopes around the request.
    s.refused(
        "authsign",
        br#"{"token":"AAAA","request":"%%% not base64","timestamp":0}"#,
        400,
        7002,
        "request is not valid base64",
    );
    let not_json = B64.encode(b"this is not JSON");
    s.refused(
        "authsign",
        format!(r#"{{"token":"AAAA","request":"{not_json}"}}"#).as_bytes(),
        400,
        7002,
        "unable to parse authenticated sign request",
    );
    // A profile without an auth key has no business on authsign, and a
    // profile with one cannot be used on plain sign.
    let plain = sign_body(&csr, "plain", json!({}));
    s.refused(
        "authsign",
        &body(&B64.encode(right.token(&plain)), &plain),
        400,
        7001,
        "no authentication provider for this profile",
    );
    s.refused("sign", &request, 400, 7001, "authentication required");
    // The right token is accepted and recorded.
    let before = s.rows();
    s.accepted(
        "authsign",
        &body(&B64.encode(right.token(&request)), &request),
    );
    assert_eq!(s.rows(), before + 1);
}

#[test]
fn api_revoke_ocspsign_and_crl_refuse_bad_input() {
    let mut s = Served::start();
    let csr = openssl_csr(s.path(), "c", P256, "/CN=c.acme.test", &[]);
    let cert = s.signs(&read_text(&csr), "plain");
    let info = s.accepted(
        "certinfo",
        &serde_json::to_vec(&json!({ "certificate": cert })).expect("JSON"),
    );
    let serial = info["serial_number"].as_str().expect("serial").to_string();
    let status = |s: &Served| {
        sqlite(
            &s.path().join("certs.db"),
            &format!("SELECT status FROM certificates WHERE serial_number = '{serial}';"),
        )
    };
    assert_eq!(status(&s), vec!["good".to_string()]);
    let revoke = |v: Value| serde_json::to_vec(&v).expect("JSON");
    s.refused(
        "revoke",
        &revoke(json!({ "serial": "12ab", "reason": "keycompromise" })),
        400,
        11003,
        "serial must be a decimal number",
    );
    s.refused(
        "revoke",
        &revoke(json!({})),
        400,
        11003,
        "serial must be a decimal number",
    );
    s.refused(
        "revoke",
        &revoke(json!({ "serial": "123456789", "reason": "keycompromise" })),
        400,
        11004,
        "certificate not found",
    );
    s.refused(
        "revoke",
        &revoke(json!({ "serial": serial, "authority_key_id": "00ff", "reason": "superseded" })),
        400,
        11004,
        "certificate not found",
    );
    s.refused(
        "revoke",
        &revoke(json!({ "serial": serial, "reason": "because I said so" })),
        400,
        11003,
        "because I said so",
    );
    // None of those touched the certificate.
    assert_eq!(status(&s), vec!["good".to_string()]);

    let ocsp = |v: Value| serde_json::to_vec(&v).expect("JSON");
    s.refused(
        "ocspsign",
        &ocsp(json!({ "certificate": "garbage", "status": "good" })),
        400,
        1003,
        "cannot parse certificate",
    );
    s.refused(
        "ocspsign",
        &ocsp(json!({ "certificate": cert, "status": "maybe" })),
        400,
        8002,
        "status \"maybe\" is not good, revoked or unknown",
    );
    s.refused(
        "ocspsign",
        &ocsp(json!({ "certificate": cert, "status": "revoked", "reason": 99 })),
        400,
        8002,
        "unknown revocation reason code",
    );
    s.refused(
        "ocspsign",
        &ocsp(json!({ "certificate": cert, "status": "revoked", "reason": 300 })),
        400,
        7002,
        "invalid JSON",
    );
    s.refused(
        "ocspsign",
        &ocsp(json!({ "certificate": cert, "status": "revoked", "revoked_at": "yesterday" })),
        400,
        8002,
        "revoked_at must be RFC 3339 or now",
    );
    // A certificate of another CA.
    let other = tempdir();
    init_ca(other.path());
    let other_ca = read_text(&other.path().join("ca.pem"));
    s.refused(
        "ocspsign",
        &ocsp(json!({ "certificate": other_ca, "status": "good" })),
        400,
        8003,
        "the certificate was not issued by this CA",
    );
    assert_eq!(status(&s), vec!["good".to_string()]);
}

// ---------------------------------------------------------------- CLI

/// Runs `portcullis ARGS` in `dir`; asserts a plain failure (exit 1, not a
/// panic), a message on stderr containing `needle`, nothing on stdout and
/// no new or changed entry in `dir`.
#[track_caller]
fn cli_refused(dir: &Path, args: &[&str], needle: &str) {
    let before = listing(dir);
    let out = portcullis(dir, args);
    let code = out.status.code();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = fails(out);
    assert_eq!(code, Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert!(
        err.contains(needle),
        "stderr of {args:?} does not say {needle:?}: {err}"
    );
    assert!(stdout.trim().is_empty(), "{args:?} printed {stdout}");
    assert_eq!(listing(dir), before, "{args:?} wrote files");
}

/// A CA dir with the suite's config, a second unrelated CA (`other/`), a
/// leaf certificate and key (`leaf.pem`, `leaf-key.pem`) and garbage files.
fn cli_fixture() -> tempfile::TempDir {
    let dir = tempdir();
    let d = dir.path();
    init_ca(d);
    server_config(d);
    std::fs::create_dir(d.join("other")).expect("mkdir");
    init_ca(&d.join("other"));
    write(
        d,
        "leaf.json",
        r#"{"CN":"leaf.acme.test","hosts":["leaf.acme.test"]}"#,
    );
    ok(portcullis(
        d,
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
            "leaf",
        ],
    ));
    write(d, "garbage.txt", "this is neither PEM nor DER\n");
    write(
        d,
        "bad-config.json",
        r#"{"signing":{"profiles":{"x":{"usages":["flying"]}}}}"#,
    );
    write(
        d,
        "backdate-config.json",
        r#"{"signing":{"profiles":{"old":{"usages":["signing"],"expiry":"1h","backdate":"27000000h"}}}}"#,
    );
    write(
        d,
        "good.json",
        r#"{"CN":"api.acme.test","hosts":["api.acme.test"]}"#,
    );
    write(
        d,
        "evil.json",
        r#"{"CN":"evil.example.com","hosts":["evil.example.com"]}"#,
    );
    write(
        d,
        "weak.json",
        r#"{"CN":"api.acme.test","key":{"algo":"rsa","size":1024}}"#,
    );
    dir
}

#[test]
fn cli_init_refuses_bad_input_and_writes_nothing() {
    let dir = tempdir();
    let d = dir.path();
    let cases = [
        (
            "truncated.json",
            r#"{"CN":"Root","key":"#,
            "invalid certificate request JSON",
        ),
        ("empty.json", "{}", "no CN, no names and no hosts"),
        (
            "notjson.json",
            "CN=Root",
            "invalid certificate request JSON",
        ),
        (
            "rsa1024.json",
            r#"{"CN":"Root","key":{"algo":"rsa","size":1024}}"#,
            "rsa key size 1024 is not allowed",
        ),
        (
            "p521.json",
            r#"{"CN":"Root","key":{"algo":"ecdsa","size":521}}"#,
            "ecdsa key size 521 is not allowed",
        ),
        (
            "dsa.json",
            r#"{"CN":"Root","key":{"algo":"dsa","size":2048}}"#,
            "unknown key algorithm",
        ),
        (
            "expiry.json",
            r#"{"CN":"Root","ca":{"expiry":"forever"}}"#,
            "ca.expiry",
        ),
        (
            "expiry0.json",
            r#"{"CN":"Root","ca":{"expiry":"0s"}}"#,
            "ca.expiry must be positive",
        ),
        (
            "pathlen.json",
            r#"{"CN":"Root","ca":{"pathlen":-1}}"#,
            "invalid certificate request JSON",
        ),
        (
            "hosts.json",
            r#"{"CN":"Root","hosts":["bad host"]}"#,
            "in hosts is not valid",
        ),
    ];
    for (name, text, _) in cases {
        write(d, name, text);
    }
    for (name, _, needle) in cases {
        cli_refused(d, &["ca", "init", name], needle);
        cli_refused(d, &["ca", "init", name, "--stdout"], needle);
        cli_refused(d, &["ca", "init", name, "--out", "root"], needle);
    }
    cli_refused(
        d,
        &["ca", "init", "missing.json"],
        "cannot read missing.json",
    );
    // A valid request, but the output directory does not exist.
    write(d, "ok.json", r#"{"CN":"Root"}"#);
    cli_refused(
        d,
        &[
            "ca",
            "init",
            "ok.json",
            "--out",
            "no/such/dir/ca",
            "--insecure-plaintext-key",
        ],
        "cannot create",
    );
    assert!(!d.join("no").exists());
}

#[test]
fn cli_gencert_refuses_bad_input_and_writes_nothing() {
    let dir = cli_fixture();
    let d = dir.path();
    let local = |json: &str, extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "ca",
            "gencert",
            json,
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--config",
            "config.json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: Vec<String>, needle: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_refused(d, &a, needle);
    };
    run(
        local("good.json", &["--profile", "nope"]),
        "unknown signing profile \"nope\"",
    );
    run(
        local("weak.json", &["--profile", "plain"]),
        "rsa key size 1024 is not allowed",
    );
    run(
        local("garbage.txt", &["--profile", "plain"]),
        "invalid certificate request JSON",
    );
    run(
        local("missing.json", &["--profile", "plain"]),
        "cannot read missing.json",
    );
    run(
        local("evil.json", &["--profile", "server"]),
        "name \"evil.example.com\" is not permitted",
    );
    run(
        local("good.json", &["--profile", "plain", "--db", "garbage.txt"]),
        "issuance log",
    );
    let with_ca = |ca: &str, key: &str| -> Vec<String> {
        [
            "ca",
            "gencert",
            "good.json",
            "--ca",
            ca,
            "--ca-key",
            key,
            "--config",
            "config.json",
            "--profile",
            "plain",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    run(
        with_ca("ca.pem", "missing-key.pem"),
        "cannot read missing-key.pem",
    );
    run(with_ca("ca.pem", "garbage.txt"), "invalid private key");
    run(with_ca("ca.pem", "ca.pem"), "is not a private key");
    run(
        with_ca("garbage.txt", "ca-key.pem"),
        "cannot parse CA certificate",
    );
    run(
        with_ca("missing.pem", "ca-key.pem"),
        "cannot read missing.pem",
    );
    run(with_ca("ca-key.pem", "ca-key.pem"), "no CERTIFICATE block");
    run(
        with_ca("ca.pem", "other/ca-key.pem"),
        "does not match the CA certificate",
    );
    run(
        with_ca("leaf.pem", "leaf-key.pem"),
        "the certificate is not a CA",
    );
    // Regression: a backdate reaching before 1950 made rcgen panic at
    // signing time; it is now refused when the configuration is read.
    run(
        [
            "ca",
            "gencert",
            "good.json",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--config",
            "backdate-config.json",
            "--profile",
            "old",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        "backdate \"27000000h\" reaches before 1950",
    );
    run(
        [
            "ca",
            "gencert",
            "good.json",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--config",
            "bad-config.json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        "invalid signing configuration",
    );
}

#[test]
fn cli_sign_refuses_bad_input_and_writes_nothing() {
    let dir = cli_fixture();
    let d = dir.path();
    let (good, bad_der, bad_pem) = bad_signature_csr(d);
    openssl_csr(
        d,
        "sub",
        P256,
        "/CN=Sub CA",
        &["-addext", "basicConstraints=critical,CA:TRUE"],
    );
    openssl_csr(
        d,
        "rsa1024",
        &["-newkey", "rsa:1024"],
        "/CN=api.acme.test",
        &[],
    );
    ok(run_in(
        d,
        Command::new("openssl")
            .args(["x509", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der"]),
    ));
    let good = good
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    let bad_der = bad_der
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    let bad_pem = bad_pem
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    let sign = |csr: &str, profile: &str, extra: &[&str], needle: &str| {
        let mut a = vec![
            "ca",
            "sign",
            csr,
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--config",
            "config.json",
            "--profile",
            profile,
            "--db",
            "certs.db",
        ];
        a.extend_from_slice(extra);
        cli_refused(d, &a, needle);
    };
    sign("ca.pem", "plain", &[], "not a CERTIFICATE REQUEST");
    sign("ca.der", "plain", &[], "not a PKCS#10 request");
    sign(
        "leaf.pem",
        "plain",
        &["--stdout"],
        "not a CERTIFICATE REQUEST",
    );
    sign("garbage.txt", "plain", &[], "not a PKCS#10 request");
    let mut trailing = std::fs::read(d.join("flip.der")).expect("read DER");
    trailing.push(0);
    std::fs::write(d.join("trailing.der"), trailing).expect("write");
    sign(
        "trailing.der",
        "plain",
        &[],
        "trailing data after the request",
    );
    sign("missing.csr", "plain", &[], "cannot read missing.csr");
    sign(
        &bad_pem,
        "plain",
        &[],
        "certificate request signature does not verify",
    );
    sign(
        &bad_der,
        "server",
        &[],
        "certificate request signature does not verify",
    );
    sign(
        "sub.csr",
        "plain",
        &[],
        "the profile does not allow issuing CA certificates",
    );
    sign("rsa1024.csr", "plain", &[], "rsa key of 1024 bits");
    sign(&good, "nope", &[], "unknown signing profile \"nope\"");
    sign(
        &good,
        "server",
        &["--hosts", "api.acme.test,evil.example.com"],
        "name \"evil.example.com\" is not permitted",
    );
    sign(
        &good,
        "server",
        &["--hosts", "bad host"],
        "in hosts is not valid",
    );
    // Nothing was recorded either: the log was never even created.
    assert!(!d.join("certs.db").exists());
    // Without a log, an unwritable output is an error and leaves nothing.
    cli_refused(
        d,
        &[
            "ca",
            "sign",
            &good,
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--config",
            "config.json",
            "--profile",
            "plain",
            "--out",
            "no/such/dir/cert",
        ],
        "cannot create",
    );
    // The good CSR does sign with the same arguments.
    ok(portcullis(
        d,
        &[
            "ca",
            "sign",
            &good,
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--config",
            "config.json",
            "--profile",
            "server",
            "--db",
            "certs.db",
        ],
    ));
    assert!(d.join("cert.pem").exists());
    assert_eq!(cert_rows(&d.join("certs.db")), 1);
}

#[test]
fn cli_remote_refusal_writes_nothing() {
    let mut s = Served::start();
    let d = s.path().to_path_buf();
    write(
        &d,
        "evil.json",
        r#"{"CN":"evil.example.com","hosts":["evil.example.com"]}"#,
    );
    openssl_csr(&d, "evil", P256, "/CN=evil.example.com", &[]);
    let url = format!("http://127.0.0.1:{}", s.port);
    let before = s.rows();
    cli_refused(
        &d,
        &[
            "ca",
            "gencert",
            "evil.json",
            "--remote",
            &url,
            "--config",
            "config.json",
            "--profile",
            "server",
        ],
        "name \"evil.example.com\" is not permitted",
    );
    cli_refused(
        &d,
        &[
            "ca",
            "sign",
            "evil.csr",
            "--remote",
            &url,
            "--config",
            "config.json",
            "--profile",
            "server",
        ],
        "is not permitted by the profile's name_whitelist",
    );
    s.assert_alive();
    assert_eq!(s.rows(), before);
    // authsign with a key the server does not have: "invalid token".
    let wrong = std::fs::read_to_string(d.join("config.json"))
        .expect("config")
        .replace(AUTH_KEY, "00112233445566778899AABBCCDDEEFF");
    write(&d, "wrong-key-config.json", &wrong);
    write(&d, "client.json", r#"{"CN":"client-1"}"#);
    cli_refused(
        &d,
        &[
            "ca",
            "gencert",
            "client.json",
            "--remote",
            &url,
            "--config",
            "wrong-key-config.json",
            "--profile",
            "client",
        ],
        "invalid token",
    );
    s.assert_alive();
    assert_eq!(s.rows(), before);
    // Nobody listening: a transport error, still nothing written.
    let dead = format!("http://127.0.0.1:{}", free_port());
    cli_refused(
        &d,
        &[
            "ca",
            "gencert",
            "evil.json",
            "--remote",
            &dead,
            "--config",
            "config.json",
            "--profile",
            "plain",
        ],
        "cannot reach the CA",
    );
}

#[test]
fn cli_serve_refuses_a_config_that_cannot_sign() {
    let dir = cli_fixture();
    let d = dir.path();
    let port = free_port().to_string();
    for (config, needle) in [
        ("bad-config.json", "unknown usage \"flying\""),
        ("backdate-config.json", "reaches before 1950"),
        ("garbage.txt", "invalid signing configuration"),
    ] {
        cli_refused(
            d,
            &[
                "ca",
                "serve",
                "--ca",
                "ca.pem",
                "--ca-key",
                "ca-key.pem",
                "--config",
                config,
                "--address",
                "127.0.0.1",
                "--port",
                &port,
                "--db",
                "certs.db",
            ],
            needle,
        );
    }
    cli_refused(
        d,
        &[
            "ca",
            "serve",
            "--ca",
            "leaf.pem",
            "--ca-key",
            "leaf-key.pem",
            "--config",
            "config.json",
            "--address",
            "127.0.0.1",
            "--port",
            &port,
            "--db",
            "certs.db",
        ],
        "the certificate is not a CA",
    );
    cli_refused(
        d,
        &[
            "ca",
            "serve",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--config",
            "config.json",
            "--address",
            "127.0.0.1",
            "--port",
            &port,
            "--db",
            "garbage.txt",
        ],
        "issuance log garbage.txt",
    );
}

#[test]
fn cli_revoke_and_crl_refuse_bad_input_and_write_nothing() {
    let dir = cli_fixture();
    let d = dir.path();
    ok(portcullis(
        d,
        &[
            "ca",
            "gencert",
            "good.json",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--config",
            "config.json",
            "--profile",
            "plain",
            "--db",
            "certs.db",
            "--out",
            "issued",
        ],
    ));
    let info: Value =
        serde_json::from_str(&ok(portcullis(d, &["cert", "info", "issued.pem"]))).expect("JSON");
    let serial = info["serial_number"].as_str().expect("serial").to_string();
    let db = d.join("certs.db");
    let state = || {
        (
            sqlite(
                &db,
                "SELECT serial_number, status, reason FROM certificates;",
            ),
            sqlite(&db, "SELECT name, value FROM counters;"),
        )
    };
    let before = state();
    assert_eq!(before.0, vec![format!("{serial}|good|0")]);
    let revoke = |extra: &[&str], needle: &str| {
        let mut a = vec!["ca", "revoke"];
        a.extend_from_slice(extra);
        cli_refused(d, &a, needle);
    };
    revoke(
        &["--serial", "12ab", "--db", "certs.db", "--ca", "ca.pem"],
        "--serial must be a decimal number",
    );
    revoke(
        &[
            "--serial", &serial, "--db", "certs.db", "--ca", "ca.pem", "--reason", "because",
        ],
        "unknown revocation reason \"because\"",
    );
    revoke(
        &[
            "--serial",
            "123456789",
            "--db",
            "certs.db",
            "--ca",
            "ca.pem",
        ],
        "certificate not found",
    );
    revoke(
        &["--serial", &serial, "--db", "certs.db", "--aki", "00ff"],
        "certificate not found",
    );
    revoke(
        &["--serial", &serial, "--db", "certs.db"],
        "give --aki or --ca",
    );
    // Regression: a mistyped --db used to create a fresh, empty log.
    revoke(
        &["--serial", &serial, "--db", "missing.db", "--ca", "ca.pem"],
        "no issuance log at missing.db",
    );
    let crl = |extra: &[&str], needle: &str| {
        let mut a = vec!["ca", "crl", "--ca", "ca.pem"];
        a.extend_from_slice(extra);
        cli_refused(d, &a, needle);
    };
    // Regression: a CRL from a mistyped --db was an empty, validly signed
    // CRL (and a new empty log file).
    crl(
        &["--ca-key", "ca-key.pem", "--db", "missing.db"],
        "no issuance log at missing.db",
    );
    crl(
        &[
            "--ca-key",
            "ca-key.pem",
            "--db",
            "certs.db",
            "--expiry",
            "0",
        ],
        "--expiry must be positive",
    );
    crl(
        &[
            "--ca-key",
            "ca-key.pem",
            "--db",
            "certs.db",
            "--expiry",
            "forever",
        ],
        "--expiry",
    );
    crl(
        &["--ca-key", "other/ca-key.pem", "--db", "certs.db"],
        "does not match the CA certificate",
    );
    crl(
        &["--ca-key", "garbage.txt", "--db", "certs.db"],
        "invalid private key",
    );
    // Nothing above touched the log: same rows, same CRL counter.
    assert_eq!(state(), before);
    // An unwritable output: no file, though the CRL number was used.
    crl(
        &[
            "--ca-key",
            "ca-key.pem",
            "--db",
            "certs.db",
            "--out",
            "no/such/dir/crl.pem",
        ],
        "cannot create",
    );
    assert_eq!(state().0, before.0);
}

#[test]
fn cli_output_in_the_way_leaves_no_partial_bundle() {
    let dir = cli_fixture();
    let d = dir.path();
    // A directory where the certificate would go: the key and CSR, which
    // come first, must not be left behind either.
    std::fs::create_dir(d.join("out.pem")).expect("mkdir");
    write(d, "root.json", r#"{"CN":"Another Root"}"#);
    cli_refused(
        d,
        &[
            "ca",
            "init",
            "root.json",
            "--out",
            "out",
            "--insecure-plaintext-key",
        ],
        "cannot write out.pem: it is a directory",
    );
    cli_refused(
        d,
        &[
            "ca",
            "gencert",
            "good.json",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--config",
            "config.json",
            "--profile",
            "plain",
            "--out",
            "out",
        ],
        "cannot write out.pem: it is a directory",
    );
    // A directory where the key would go.
    std::fs::create_dir(d.join("k-key.pem")).expect("mkdir");
    cli_refused(
        d,
        &[
            "ca",
            "init",
            "root.json",
            "--out",
            "k",
            "--insecure-plaintext-key",
        ],
        "cannot write k-key.pem: it is a directory",
    );
}
