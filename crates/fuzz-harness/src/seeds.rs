//! Seed inputs for every target, made at run time: from the fuzz PKI
//! (made by the crates under test), the x509-limbo conformance data in
//! `../shared/conformance` when it is there, and hand-picked edge cases.
//! Nothing binary is committed; `fuzz-seeds DIR` writes these to
//! `DIR/<target>/` for cargo-fuzz.

use std::path::Path;

use base64::Engine as _;

use crate::ca_api::ENDPOINTS;
use crate::fixtures::{pki, LEAF_SPEC, SIGNING_CONFIG};
use crate::gateway_config::{config_error_templates, render_config, ConfigCase};

/// How many certificates, chains and CRLs to take from x509-limbo.
const LIMBO_MAX: usize = 300;

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    pem::encode(&pem::Pem::new(label, der.to_vec())).into_bytes()
}

/// Inputs taken from x509-limbo.
#[derive(Default)]
struct Limbo {
    certs: Vec<Vec<u8>>,
    /// Peer certificate, intermediates and roots, as one PEM text.
    chains: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
}

/// x509-limbo's certificates, chains and CRLs (PEM).
fn limbo() -> Limbo {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/x509-limbo/limbo.json");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("note: {} not found: no x509-limbo seeds", path.display());
        return Default::default();
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Default::default();
    };
    let (mut certs, mut chains, mut crls) = (Vec::new(), Vec::new(), Vec::new());
    let strings = |x: &serde_json::Value| -> Vec<String> {
        x.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    for tc in v["testcases"].as_array().into_iter().flatten() {
        let peer = tc["peer_certificate"].as_str().unwrap_or_default();
        if certs.len() < LIMBO_MAX {
            certs.push(peer.as_bytes().to_vec());
        }
        if chains.len() < LIMBO_MAX {
            let mut chain = peer.to_owned();
            for s in strings(&tc["untrusted_intermediates"]) {
                chain += &s;
            }
            for s in strings(&tc["trusted_certs"]) {
                chain += &s;
            }
            chains.push(chain.into_bytes());
        }
        for c in strings(&tc["crls"]) {
            if crls.len() < LIMBO_MAX {
                crls.push(c.into_bytes());
            }
        }
    }
    Limbo {
        certs,
        chains,
        crls,
    }
}

fn ocsp_request() -> Option<Vec<u8>> {
    let p = pki();
    let dir = tempfile::tempdir().ok()?;
    std::fs::write(dir.path().join("ca.pem"), pem("CERTIFICATE", &p.root_der)).ok()?;
    std::fs::write(dir.path().join("leaf.pem"), pem("CERTIFICATE", &p.leaf_der)).ok()?;
    let ok = std::process::Command::new("openssl")
        .current_dir(dir.path())
        .args(["ocsp", "-issuer", "ca.pem", "-cert", "leaf.pem"])
        .args(["-reqout", "req.der", "-no_nonce"])
        .output()
        .ok()?
        .status
        .success();
    ok.then(|| std::fs::read(dir.path().join("req.der")).ok())
        .flatten()
}

fn prefixed(b: u8, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![b];
    v.extend_from_slice(rest);
    v
}

fn endpoint(path: &str) -> u8 {
    let i = ENDPOINTS
        .iter()
        .position(|(_, p)| *p == path)
        .expect("endpoint");
    u8::try_from(i).expect("few endpoints")
}

/// The seeds of `target` (empty for an unknown name).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let p = pki();
    let b = |s: &str| s.as_bytes().to_vec();
    match target {
        "csr_spec" => [
            LEAF_SPEC,
            r#"{"CN":"x"}"#,
            r#"{"hosts":["a.test","10.0.0.1","::1","u@x.test","spiffe://x/y"]}"#,
            r#"{"CN":"ca","key":{"algo":"rsa","size":2048},"ca":{"expiry":"87600h","pathlen":1}}"#,
            r#"{"CN":"ca","ca":{"pathlenzero":true,"expiry":"1h30m"}}"#,
            r#"{"CN":"x","names":null,"hosts":null,"serialnumber":"123"}"#,
            r#"{"names":[{"C":"US","ST":"CA","L":"SF","O":"Acme","OU":"Ops"},{"O":"Second"}]}"#,
            r#"{"CN":"x","key":{"algo":"ecdsa","size":384}}"#,
            r#"{"CN":"x","key":{"algo":"ed25519"}}"#,
            r#"{"CN":"x","hosts":[""]}"#,
            r#"{"CN":"\u0000\ud83d\ude00"}"#,
        ]
        .map(b)
        .to_vec(),
        "signing_config" => [
            SIGNING_CONFIG,
            "{}",
            r#"{"signing":{"default":{"expiry":"1h","usages":["signing"],"backdate":"5m"}}}"#,
            r#"{"signing":{"profiles":{"r":{"remote":"ca1","auth_remote":{"remote":"ca1","auth_key":"k"}}}},"remotes":{"ca1":"127.0.0.1:8888"}}"#,
            "8760h",
            "1h2m3.5s",
            "-1.5h",
            "9223372036854775807ns",
            "0x01ff",
            "123456789012345678901234567890",
            "keyCompromise",
        ]
        .map(b)
        .to_vec(),
        "csr" => {
            let mut v = vec![b(&p.leaf_csr_pem)];
            if let Ok(block) = pem::parse(&p.leaf_csr_pem) {
                v.push(block.contents().to_vec());
            }
            for spec in [
                r#"{"CN":"rsa.acme.test","key":{"algo":"rsa","size":2048},"hosts":["rsa.acme.test"]}"#,
                r#"{"CN":"ca.acme.test","ca":{"pathlen":2}}"#,
                r#"{"names":[{"O":"No CN"}],"hosts":["*.acme.test","1.2.3.4"]}"#,
            ] {
                if let Ok((_, csr)) = pki::csr_spec::CsrSpec::from_json(spec.as_bytes())
                    .and_then(|s| s.generate())
                {
                    v.push(csr.into_bytes());
                }
            }
            v
        }
        "certificate" => {
            let mut v = vec![
                pem("CERTIFICATE", &p.leaf_der),
                p.leaf_der.clone(),
                pem("CERTIFICATE", &p.root_der),
                p.root_der.clone(),
            ];
            v.extend(limbo().certs);
            v
        }
        "crl" => {
            let mut v = vec![pem("X509 CRL", &p.crl_der), p.crl_der.clone()];
            v.extend(limbo().crls);
            v
        }
        "chain_verify" => {
            let mut both = pem("CERTIFICATE", &p.leaf_der);
            both.extend(pem("CERTIFICATE", &p.root_der));
            let mut der = vec![0, 0, 0];
            for c in [&p.leaf_der, &p.root_der] {
                der.extend(u16::try_from(c.len()).unwrap_or(0).to_be_bytes());
                der.extend_from_slice(c);
            }
            let mut v = vec![[&[0, 0, 1][..], &both].concat(), der];
            v.extend(limbo().chains.iter().map(|c| [&[0, 0, 1][..], c].concat()));
            v
        }
        "key" => {
            let mut v = vec![prefixed(0, p.leaf_key_pem.as_bytes())];
            if let Ok(block) = pem::parse(&p.leaf_key_pem) {
                v.push(prefixed(1, block.contents()));
            }
            if let Ok(k) = pki::key::PrivateKey::from_pem(&p.leaf_key_pem) {
                let pass = pki::custody::Secret::new(b"fuzz".to_vec());
                if let Ok(enc) = pki::custody::native::encrypt_pem_with(&k, &pass, 8, 1, 1) {
                    v.push(prefixed(0, enc.as_bytes()));
                }
            }
            for s in [
                "file:/etc/portcullis/ca-key.pem",
                "pkcs11:token=portcullis;object=ca?pin-source=file:/run/pin",
                "pkcs11:token=a%20b;id=%01%02?pin-value=1234",
                "sealed:/var/lib/portcullis/ca.sealed.json",
            ] {
                v.push(prefixed(2, s.as_bytes()));
            }
            v.push(prefixed(
                3,
                br#"{"format":"portcullis-sealed-key-v1","key_id":"k","threshold":2,"shares":3,"public_key":"","ciphertext":""}"#,
            ));
            v
        }
        "ocsp" => {
            let mut v: Vec<Vec<u8>> = ocsp_request().into_iter().collect();
            let get: Vec<Vec<u8>> = v
                .iter()
                .map(|r| b(&base64::engine::general_purpose::STANDARD.encode(r)))
                .collect();
            v.extend(get);
            v.push(b"MEMwQTA/MD0wOzAJBgUrDgMCGgUABBQ%2F%2B".to_vec());
            v
        }
        "rfc9440" => vec![
            [&[0u8, 5][..], b"hello"].concat(),
            [&[3u8, 2][..], b"ab", &[1], b"c", &[0], &[4], b"\r\n\0,"].concat(),
            [&[1u8][..], &p.leaf_der[..]].concat(),
        ],
        "xfcc" => vec![
            [&[1u8, 0, 0, 4, 2][..], &[0, 8, 0, 12, 0, 16, 1], &[1, 20, 1]].concat(),
            [&[0u8, 4][..], &[1, 8, 0], &[1, 40, 1, 30], b"bytes of a certificate"].concat(),
            b"\x01\x05spiffe\x09CN=a\"b\\c\x02\x00\x05a;b=c\x01\x03a,b".to_vec(),
        ],
        "ca_api" => {
            let sign = endpoint("/api/v1/cfssl/sign");
            let mut v = vec![
                prefixed(sign, br#"{"certificate_request":"$CSR","profile":"client"}"#),
                prefixed(
                    sign,
                    br#"{"certificate_request":"$CSR","hosts":["a.acme.test","b.acme.test"],"profile":"server"}"#,
                ),
                prefixed(
                    sign,
                    br#"{"certificate_request":"$CSR","hostname":"x.acme.test, y.acme.test","subject":{"CN":"s","names":[{"O":"o"}]}}"#,
                ),
                prefixed(
                    endpoint("authsign-valid"),
                    br#"{"certificate_request":"$CSR","profile":"auth"}"#,
                ),
                prefixed(
                    endpoint("/api/v1/cfssl/authsign"),
                    br#"{"token":"AAAA","request":"e30="}"#,
                ),
                prefixed(endpoint("/api/v1/cfssl/info"), br#"{"profile":"server"}"#),
                prefixed(endpoint("/api/v1/cfssl/info"), b""),
                prefixed(
                    endpoint("/api/v1/cfssl/certinfo"),
                    br#"{"certificate":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}"#,
                ),
                prefixed(
                    endpoint("/api/v1/cfssl/revoke"),
                    br#"{"serial":"123","authority_key_id":"abcd","reason":"keyCompromise"}"#,
                ),
                prefixed(
                    endpoint("/api/v1/cfssl/ocspsign"),
                    br#"{"certificate":"x","status":"revoked","reason":"1","revoked_at":"now"}"#,
                ),
                prefixed(endpoint("/api/v1/portcullis/unseal"), br#"{"share":"x"}"#),
                prefixed(endpoint("/api/v1/cfssl/crl?"), b"expiry=1h"),
                prefixed(endpoint("/api/v1/cfssl/crl?"), b"expiry=99999999999h"),
                prefixed(endpoint("/ocsp/"), b"MEMwQTA%2F"),
                prefixed(endpoint("/api/v1/cfssl/health"), b""),
            ];
            let cert = serde_json::to_string(&String::from_utf8_lossy(&pem(
                "CERTIFICATE",
                &p.leaf_der,
            )))
            .unwrap_or_default();
            v.push(prefixed(
                endpoint("/api/v1/cfssl/certinfo"),
                format!(r#"{{"certificate":{cert}}}"#).as_bytes(),
            ));
            v.push(prefixed(
                endpoint("/api/v1/cfssl/ocspsign"),
                format!(r#"{{"certificate":{cert},"status":"good"}}"#).as_bytes(),
            ));
            if let Some(r) = ocsp_request() {
                v.push(prefixed(endpoint("/ocsp"), &r));
            }
            v
        }
        "gateway_config" => {
            let mut v = vec![prefixed(0, render_config(&ConfigCase::valid()).as_bytes())];
            v.extend(
                config_error_templates()
                    .into_iter()
                    .map(|(_, t)| prefixed(0, t.as_bytes())),
            );
            v.push(vec![1; 64]);
            v.push((0u8..=255).collect());
            v
        }
        "tokens" => {
            let mut v: Vec<Vec<u8>> = [
                "/images/cat.jpg?verify=1484063787-XsZ5NmtNBxOd4f4fBOtqVmpWRnDRNkHKVZieqDPKu3U%3D",
                "1700000003-jyIqK4eTfM7QzAbKCZWvrPgWUcnwNH_2NTzSNKi-COM",
                "$secure_link_expires$uri$remote_addr $secret",
                "st=1700000000~exp=1700000100~acl=/*~hmac=00ff",
                "ip=::1~exp=1~id=a~data=b~hmac=zz",
            ]
            .iter()
            .map(|t| {
                // Mode 0 (raw), the time, then `a` as a counted string.
                let mut s = vec![0u8, 7, 1, u8::try_from(t.len()).unwrap_or(255)];
                s.extend_from_slice(t.as_bytes());
                s.extend_from_slice(t.as_bytes());
                s
            })
            .collect();
            // Round trips: every scheme, a few times and byte changes.
            for scheme in 0u8..4 {
                for k in 0u8..4 {
                    let mut s = vec![1, scheme, k, 0x12, 0x34, k, 3 * k, 0, b'0' + k];
                    s.extend_from_slice(&[1, 13, 5, 9, 1, 1, 1, 8]);
                    s.extend_from_slice(b"/some/path?q=1 \xc3\xa9~x");
                    v.push(s);
                }
            }
            v
        }
        "rules" => [
            "\x00true",
            "\x00cf.verified && !cf.revoked",
            "\x00http.request.method == \"GET\" && http.request.uri.path.startsWith(\"/admin\")",
            "\x00\"a.test\" in cf.sans_dns || ip.src == \"127.0.0.1\"",
            "\x00http.request.headers[\"x-a\"] == \"1\"",
            "\x00http.request.timestamp.sec > 0 && size(http.request.full_uri) < 100",
            "\x00cf.subject_dn.matches(\"^CN=.*\")",
            "\x00(1 + ",
            "\x00true &&\n  nope(",
            "\x00[1, 2, 3].exists(x, x > 2)",
            "\x00{\"a\": 1}.a == 1",
            "\x00'\\u0000' == \"\\x00\"",
            "\x01\x08true && falseip.src == \"::1\"",
            "\x02\x00\x04truehttp.host != \"\"",
        ]
        .map(b)
        .to_vec(),
        _ => Vec::new(),
    }
}
