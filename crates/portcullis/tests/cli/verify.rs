//! `portcullis verify` against `openssl verify -purpose sslclient` on
//! chains generated with the openssl command line.

use std::path::Path;
use std::process::{Command, Output};

use tempfile::TempDir;

const OPENSSL: &str = "/usr/bin/openssl";

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(OPENSSL)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl")
}

fn ossl(dir: &Path, args: &[&str]) {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EXT: &str = "\
[root]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[int]
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[int_digsig]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[client]
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=DNS:client.test,URI:spiffe://example.test/ns/a/sa/b
[server]
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
authorityKeyIdentifier=keyid
[noeku]
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
authorityKeyIdentifier=keyid
[nodigsig]
basicConstraints=CA:FALSE
keyUsage=critical,keyEncipherment
extendedKeyUsage=clientAuth
authorityKeyIdentifier=keyid
[both]
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
authorityKeyIdentifier=keyid
";

const CA_CNF: &str = "\
[ca]
default_ca = d
[d]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 30
certificate = int.pem
private_key = int.key
crl_extensions = crl_ext
[crl_ext]
authorityKeyIdentifier=keyid
";

/// A small PKI made by openssl: root -> int -> leaves; other root -> leaf.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new().expect("tmp");
        let d = dir.path();
        std::fs::write(d.join("ext.cnf"), EXT).expect("write");
        std::fs::write(d.join("ca.cnf"), CA_CNF).expect("write");
        std::fs::write(d.join("index.txt"), "").expect("write");
        std::fs::write(d.join("crlnumber"), "01\n").expect("write");
        let key = |name: &str| {
            ossl(
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    &format!("{name}.key"),
                ],
            );
        };
        let sign = |name: &str, issuer: &str, ext: &str, days: &str| {
            key(name);
            ossl(
                d,
                &[
                    "req",
                    "-new",
                    "-key",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/O=Portcullis tests/CN={name}"),
                ],
            );
            ossl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    &format!("{issuer}.pem"),
                    "-CAkey",
                    &format!("{issuer}.key"),
                    "-CAcreateserial",
                    "-days",
                    days,
                    "-extfile",
                    "ext.cnf",
                    "-extensions",
                    ext,
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        };
        for r in ["root", "other"] {
            key(r);
            ossl(
                d,
                &[
                    "req",
                    "-x509",
                    "-new",
                    "-key",
                    &format!("{r}.key"),
                    "-out",
                    &format!("{r}.pem"),
                    "-days",
                    "3650",
                    "-subj",
                    &format!("/O=Portcullis tests/CN={r}"),
                    "-config",
                    "ext.cnf",
                    "-extensions",
                    "root",
                ],
            );
        }
        sign("int", "root", "int", "1825");
        sign("cadigsig", "root", "int_digsig", "1825");
        for leaf in ["client", "server", "noeku", "nodigsig", "both", "revoked"] {
            let ext = if leaf == "revoked" { "client" } else { leaf };
            sign(leaf, "int", ext, "30");
        }
        sign("stranger", "other", "client", "30");
        sign("deep", "client", "client", "30"); // signed by a leaf: not a CA
        ossl(d, &["ca", "-config", "ca.cnf", "-revoke", "revoked.pem"]);
        ossl(
            d,
            &["ca", "-config", "ca.cnf", "-gencrl", "-out", "int.crl"],
        );
        // Chain files: leaf then the intermediate.
        let int = std::fs::read_to_string(d.join("int.pem")).expect("int");
        for leaf in ["client", "server", "noeku", "nodigsig", "both", "revoked"] {
            let l = std::fs::read_to_string(d.join(format!("{leaf}.pem"))).expect("leaf");
            std::fs::write(d.join(format!("{leaf}-chain.pem")), format!("{l}{int}"))
                .expect("write");
        }
        Pki { dir }
    }
}

struct Ours {
    code: i32,
    json: serde_json::Value,
    stderr: String,
}

fn portcullis(dir: &Path, args: &[&str]) -> Ours {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("verify")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run portcullis");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    Ours {
        code: out.status.code().unwrap_or(-1),
        json: serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// openssl's answer for a leaf (with `-untrusted int.pem`).
fn openssl_ok(dir: &Path, leaf: &str, trust: &str, extra: &[&str]) -> bool {
    let mut args = vec![
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        trust,
        "-untrusted",
        "int.pem",
    ];
    args.extend_from_slice(extra);
    args.push(leaf);
    run(dir, &args).status.success()
}

/// Unix time in 60 days (every leaf has expired) and RFC 3339 of it.
fn later() -> (String, String) {
    let t = time::OffsetDateTime::now_utc() + time::Duration::days(60);
    (
        t.unix_timestamp().to_string(),
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("fmt"),
    )
}

/// (leaf file, chain file, trust file, our extra args, openssl's extra
/// args, expected reason or `None` for valid).
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Vec<&'a str>,
    Vec<&'a str>,
    Option<&'a str>,
);

#[test]
fn agrees_with_openssl_verify_sslclient() {
    let pki = Pki::new();
    let d = pki.dir.path();
    let (later_unix, later_rfc) = later();
    // (leaf file, chain file, trust, our extra args, openssl extra args, expected reason)
    let cases: Vec<Case<'_>> = vec![
        (
            "client.pem",
            "client-chain.pem",
            "root.pem",
            vec![],
            vec![],
            None,
        ),
        (
            "both.pem",
            "both-chain.pem",
            "root.pem",
            vec![],
            vec![],
            None,
        ),
        (
            "noeku.pem",
            "noeku-chain.pem",
            "root.pem",
            vec![],
            vec![],
            None,
        ),
        (
            "server.pem",
            "server-chain.pem",
            "root.pem",
            vec![],
            vec![],
            Some("bad-usage"),
        ),
        (
            "nodigsig.pem",
            "nodigsig-chain.pem",
            "root.pem",
            vec![],
            vec![],
            Some("bad-usage"),
        ),
        (
            "client.pem",
            "client-chain.pem",
            "other.pem",
            vec![],
            vec![],
            Some("unknown-issuer"),
        ),
        (
            "stranger.pem",
            "stranger.pem",
            "root.pem",
            vec![],
            vec![],
            Some("unknown-issuer"),
        ),
        (
            "deep.pem",
            "deep.pem",
            "root.pem",
            vec!["--intermediates", "client-chain.pem"],
            vec!["-untrusted", "client.pem"],
            Some("bad-usage"),
        ),
        (
            "client.pem",
            "client-chain.pem",
            "root.pem",
            vec!["--time", &later_rfc],
            vec!["-attime", &later_unix],
            Some("expired"),
        ),
        (
            "revoked.pem",
            "revoked-chain.pem",
            "root.pem",
            vec!["--crl", "int.crl"],
            vec!["-crl_check", "-CRLfile", "int.crl"],
            Some("revoked"),
        ),
        (
            "client.pem",
            "client-chain.pem",
            "root.pem",
            vec!["--crl", "int.crl"],
            vec!["-crl_check", "-CRLfile", "int.crl"],
            None,
        ),
        (
            "revoked.pem",
            "revoked-chain.pem",
            "root.pem",
            vec![],
            vec![],
            None,
        ),
    ];
    for (leaf, chain, trust, ours_extra, ossl_extra, want) in cases {
        let mut args = vec![chain, "--trust", trust];
        args.extend(ours_extra.iter().copied());
        let ours = portcullis(d, &args);
        let theirs = openssl_ok(d, leaf, trust, &ossl_extra);
        let label = format!("{leaf} trust={trust} {ours_extra:?}");
        assert_eq!(
            ours.code == 0,
            theirs,
            "{label}: ours {} {} vs openssl {theirs}",
            ours.json,
            ours.stderr
        );
        match want {
            None => {
                assert_eq!(ours.code, 0, "{label}: {}", ours.json);
                assert_eq!(ours.json["verdict"], "valid");
                assert!(ours.json["reason"].is_null());
            }
            Some(r) => {
                assert_eq!(ours.code, 1, "{label}: {}", ours.json);
                assert_eq!(ours.json["verdict"], "invalid");
                assert_eq!(ours.json["reason"], r, "{label}: {}", ours.json);
                assert!(ours.json["detail"].is_string());
            }
        }
    }
}

#[test]
fn valid_output_carries_leaf_facts() {
    let pki = Pki::new();
    let ours = portcullis(pki.dir.path(), &["client-chain.pem", "--trust", "root.pem"]);
    assert_eq!(ours.code, 0, "{}", ours.stderr);
    let leaf = &ours.json["leaf"];
    assert_eq!(leaf["subject"], "CN=client,O=Portcullis tests");
    assert_eq!(leaf["issuer"], "CN=int,O=Portcullis tests");
    assert_eq!(leaf["sha256"].as_str().map(str::len), Some(64));
    assert!(leaf["ski"].is_string());
    let sans = leaf["sans"].as_array().expect("sans");
    assert!(sans
        .contains(&serde_json::json!({"type": "uri", "value": "spiffe://example.test/ns/a/sa/b"})));
}

#[test]
fn eku_option() {
    let pki = Pki::new();
    let d = pki.dir.path();
    assert_eq!(
        portcullis(
            d,
            &["server-chain.pem", "--trust", "root.pem", "--eku", "server"]
        )
        .code,
        0
    );
    assert_eq!(
        portcullis(
            d,
            &["server-chain.pem", "--trust", "root.pem", "--eku", "any"]
        )
        .code,
        0
    );
    assert_eq!(
        portcullis(
            d,
            &["client-chain.pem", "--trust", "root.pem", "--eku", "server"]
        )
        .code,
        1
    );
    assert_eq!(
        portcullis(
            d,
            &["client-chain.pem", "--trust", "root.pem", "--eku", "bogus"]
        )
        .code,
        2
    );
}

/// Deliberate differences from openssl, each shown.
#[test]
fn deliberate_differences_from_openssl() {
    let pki = Pki::new();
    let d = pki.dir.path();
    // 1. A CA certificate presented as the client certificate: openssl's
    //    sslclient purpose accepts one whose key usage has digitalSignature;
    //    we never accept a CA certificate as a leaf.
    assert!(run(
        d,
        &[
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            "root.pem",
            "cadigsig.pem"
        ]
    )
    .status
    .success());
    let ours = portcullis(d, &["cadigsig.pem", "--trust", "root.pem"]);
    assert_eq!(
        (ours.code, ours.json["reason"].as_str()),
        (1, Some("bad-usage")),
        "{}",
        ours.json
    );
    // 2. Trusting an intermediate: every --trust certificate is an anchor
    //    (openssl needs -partial_chain for that).
    assert!(!run(
        d,
        &[
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            "int.pem",
            "client.pem"
        ]
    )
    .status
    .success());
    assert!(run(
        d,
        &[
            "verify",
            "-purpose",
            "sslclient",
            "-partial_chain",
            "-CAfile",
            "int.pem",
            "client.pem"
        ]
    )
    .status
    .success());
    assert_eq!(portcullis(d, &["client.pem", "--trust", "int.pem"]).code, 0);
}

#[test]
fn strict_option() {
    let pki = Pki::new();
    let d = pki.dir.path();
    // openssl-made chains pass the strict profile...
    let ours = portcullis(d, &["client-chain.pem", "--trust", "root.pem", "--strict"]);
    assert_eq!(ours.code, 0, "{}", ours.json);
    // ...except a leaf without extendedKeyUsage (a CA/B Forum rule).
    let ours = portcullis(d, &["noeku-chain.pem", "--trust", "root.pem", "--strict"]);
    assert_eq!(
        (ours.code, ours.json["reason"].as_str()),
        (1, Some("bad-usage")),
        "{}",
        ours.json
    );
}

#[test]
fn usage_and_unreadable_input_exit_2() {
    let pki = Pki::new();
    let d = pki.dir.path();
    std::fs::write(d.join("junk.pem"), "hello").expect("write");
    std::fs::write(
        d.join("badblock.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    for args in [
        vec!["client-chain.pem"],                           // no --trust
        vec!["missing.pem", "--trust", "root.pem"],         // unreadable chain
        vec!["client-chain.pem", "--trust", "missing.pem"], // unreadable trust
        vec!["client-chain.pem", "--trust", "junk.pem"],    // no certificate in trust file
        vec![
            "client-chain.pem",
            "--trust",
            "root.pem",
            "--crl",
            "junk.pem",
        ], // bad CRL
        vec![
            "client-chain.pem",
            "--trust",
            "root.pem",
            "--time",
            "yesterday",
        ],
        vec!["junk.pem", "--trust", "root.pem"],
    ] {
        let ours = portcullis(d, &args);
        assert_eq!(ours.code, 2, "{args:?}: {}", ours.json);
        assert!(ours.stderr.contains("error"), "{args:?}: {}", ours.stderr);
        assert!(ours.json.is_null(), "nothing on stdout for {args:?}");
    }
    // A PEM block that is not a certificate is readable input: invalid.
    let ours = portcullis(d, &["badblock.pem", "--trust", "root.pem"]);
    assert_eq!(
        (ours.code, ours.json["reason"].as_str()),
        (1, Some("malformed")),
        "{}",
        ours.json
    );
}
