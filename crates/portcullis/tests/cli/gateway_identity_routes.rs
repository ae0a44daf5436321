//! Per-hostname identity headers (renamed contract headers, certificate
//! fields mapped to headers of the hostname's choice) seen by the echo
//! origin through real `curl`; per-path origin-pull identities, the
//! `[server]` default one and HTTP/2 toward a real nginx origin with
//! `ssl_verify_client on`.

use std::path::Path;
use std::process::Command;

use crate::common::*;
use crate::gateway::{gateway_toml, gencert, headers, one, Env};

/// `report` renames `Client-Cert-Subject`, drops XFCC and maps the SPIFFE
/// ID, the CN and the DNS SANs to headers; forged copies of every custom
/// name are stripped (in `off` too), and a field the certificate lacks
/// sends no header.
#[test]
fn gateway_maps_certificate_fields_and_renames_headers() {
    let env = Env::start_with(|dir, port, origin| {
        gencert(
            dir,
            "svc",
            "ca",
            "client",
            r#""spiffe://acme.test/ns/prod/sa/api","svc.acme.test""#,
            false,
        );
        gateway_toml(port, origin)
            .replace(
                "mode = \"report\"\ncas = [\"acme\"]\n",
                "mode = \"report\"\ncas = [\"acme\"]\n\
                 headers = { \"Client-Cert-Subject\" = \"X-SSL-Client-DN\", \"X-Forwarded-Client-Cert\" = \"\" }\n\
                 [[hostname.mtls.map]]\nfield = \"spiffe_id\"\nheader = \"X-Spiffe-Id\"\n\
                 [[hostname.mtls.map]]\nfield = \"subject.cn\"\nheader = \"X-Service\"\n\
                 [[hostname.mtls.map]]\nfield = \"san.dns\"\nheader = \"X-Client-DNS\"\n\
                 [[hostname.mtls.map]]\nfield = \"subject.o\"\nheader = \"X-Client-Org\"\n",
            )
            .replace(
                "mode = \"off\"\ncas = [\"acme\"]\n",
                "mode = \"off\"\ncas = [\"acme\"]\n\
                 [[hostname.mtls.map]]\nfield = \"subject.cn\"\nheader = \"X-Service\"\n",
            )
    });
    let forged = [
        "-H",
        "X-Service: forged",
        "-H",
        "X-SSL-Client-DN: CN=forged",
        "-H",
        "X-Spiffe-Id: spiffe://evil/x",
        "-H",
        "X-Client-Org: forged",
        "-H",
        "X-Client-DNS: forged",
    ];
    for proto in ["--http1.1", "--http2"] {
        let mut args = vec![proto];
        args.extend(forged);
        let (code, _, body) = env.curl("report", Some("svc"), &args);
        assert_eq!(code, 200, "{body}\n{}", env.log());
        let h = headers(&body);
        assert_eq!(one(&h, "client-cert-status"), "valid");
        assert_eq!(one(&h, "x-ssl-client-dn"), "CN=svc");
        assert_eq!(one(&h, "x-spiffe-id"), "spiffe://acme.test/ns/prod/sa/api");
        assert_eq!(one(&h, "x-service"), "svc");
        assert_eq!(one(&h, "x-client-dns"), "svc.acme.test");
        for gone in [
            "client-cert-subject",
            "x-forwarded-client-cert",
            "x-client-org",
        ] {
            assert!(!h.contains_key(gone), "{gone} reached the origin: {body}");
        }
        assert!(h.contains_key("client-cert-fingerprint-sha256"), "{body}");

        // No certificate: the verdict only, every forged custom header gone.
        let (code, _, body) = env.curl("report", None, &args);
        assert_eq!(code, 200, "{body}");
        let h = headers(&body);
        assert_eq!(one(&h, "client-cert-status"), "none");
        for gone in [
            "x-service",
            "x-ssl-client-dn",
            "x-spiffe-id",
            "x-client-dns",
        ] {
            assert!(!h.contains_key(gone), "{gone} reached the origin: {body}");
        }

        // `off`: nothing is added, the mapped name is still stripped.
        let (code, _, body) = env.curl("off", None, &args);
        assert_eq!(code, 200, "{body}");
        let h = headers(&body);
        assert!(!h.contains_key("x-service"), "{body}");
        assert!(!h.contains_key("client-cert-status"), "{body}");
    }
}

/// Starts nginx serving TLS with `ssl_verify_client on` (trusting `ca.pem`)
/// and HTTP/2 on `port`, answering with the client DN it verified and the
/// protocol spoken; and plain-text HTTP/2 only ("h2c", prior knowledge) on
/// `h2c_port`.
fn start_nginx(dir: &Path, port: u16, h2c_port: u16) -> ChildGuard {
    let d = dir.display();
    let g = spawn_nginx(
        dir,
        &format!(
            r#"  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {d}/nginx.pem;
    ssl_certificate_key {d}/nginx-key.pem;
    ssl_client_certificate {d}/ca.pem;
    ssl_verify_client on;
    location / {{
      default_type text/plain;
      add_header X-Client-DN $ssl_client_s_dn;
      return 200 "dn=$ssl_client_s_dn proto=$server_protocol uri=$uri status=$http_client_cert_status\n";
    }}
  }}
  server {{
    listen 127.0.0.1:{h2c_port} http2;
    location / {{
      default_type text/plain;
      return 200 "h2c proto=$server_protocol uri=$uri host=$host status=$http_client_cert_status\n";
    }}
  }}
"#
        ),
        port,
    );
    g
}

/// One hostname, one nginx origin, different client identities per path:
/// the `[server]` default pull certificate for the hostname, its own for
/// `/billing`, another tenant's (which nginx refuses) for `/other`; and
/// `origin_protocol = "h2"` / `"auto"` routes speak HTTP/2 to nginx, over
/// TLS and in plain text ("h2c").
#[test]
fn gateway_origin_pull_per_route_default_identity_and_h2_to_nginx() {
    need("nginx");
    let nginx_port = free_port();
    let h2c_port = free_port();
    let admin = free_port();
    let mut nginx = None;
    let env = Env::start_with(|dir, port, _| {
        gencert(dir, "server2", "ca", "server", r#""pull.acme.test""#, false);
        gencert(dir, "nginx", "ca", "server", r#""127.0.0.1""#, false);
        gencert(dir, "gateway-default", "ca", "client", "", false);
        gencert(dir, "billing-pull", "ca", "client", "", false);
        gencert(dir, "stranger", "other", "client", "", false);
        nginx = Some(start_nginx(dir, nginx_port, h2c_port));
        format!(
            r#"[server]
https = "127.0.0.1:{port}"
admin = "127.0.0.1:{admin}"
origin_ca = "ca.pem"
origin_cert = "gateway-default.pem"
origin_key = "gateway-default-key.pem"

[[ca]]
name = "acme"
pem = "ca.pem"

[[hostname]]
name = "pull.acme.test"
cert = "server2.pem"
key = "server2-key.pem"
origin = "https://127.0.0.1:{nginx_port}"

[hostname.mtls]
mode = "report"
cas = ["acme"]

[[hostname.route]]
path = "/billing"
origin_cert = "billing-pull.pem"
origin_key = "billing-pull-key.pem"

[[hostname.route]]
path = "/other"
origin_cert = "stranger.pem"
origin_key = "stranger-key.pem"

[[hostname.route]]
path = "/h2"
origin_protocol = "h2"

[[hostname.route]]
path = "/plain"
origin = "http://127.0.0.1:{h2c_port}"
origin_protocol = "h2"

[[hostname.route]]
path = "/billing/h2"
origin_cert = "billing-pull.pem"
origin_key = "billing-pull-key.pem"
origin_protocol = "auto"
"#
        )
    });
    let _nginx = nginx;
    let get = |path: &str, extra: &[&str]| -> (u16, String) {
        let name = "pull.acme.test";
        let out = Command::new("curl")
            .current_dir(env.path())
            .args(["-sS", "--max-time", "20", "--cacert", "ca.pem", "--resolve"])
            .arg(format!("{name}:{}:127.0.0.1", env.port))
            .args(["--cert", "alice.pem", "--key", "alice-key.pem"])
            .args(["-o", "-", "-w", "\n%{http_code}"])
            .args(extra)
            .arg(format!("https://{name}:{}{path}", env.port))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    };
    for (path, dn, proto) in [
        ("/", "CN=gateway-default", "HTTP/1.1"),
        ("/billing/pay", "CN=billing-pull", "HTTP/1.1"),
        ("/h2/x", "CN=gateway-default", "HTTP/2.0"),
        ("/billing/h2/x", "CN=billing-pull", "HTTP/2.0"),
    ] {
        for client in ["--http1.1", "--http2"] {
            // Twice: the second request reuses the pooled origin connection.
            for _ in 0..2 {
                let (code, body) = get(path, &[client]);
                let nginx_log =
                    std::fs::read_to_string(env.path().join("nginx.log")).unwrap_or_default();
                assert_eq!(
                    code,
                    200,
                    "{path} {client}: {body}\n{}\n{nginx_log}",
                    env.log()
                );
                let want = format!("dn={dn} proto={proto} uri={path} status=valid");
                assert!(
                    body.contains(&want),
                    "{path} {client}: want {want:?} in {body:?}"
                );
            }
        }
    }
    // An http:// route with origin_protocol = "h2": HTTP/2 with prior
    // knowledge, `:authority` the hostname.
    for client in ["--http1.1", "--http2"] {
        let (code, body) = get("/plain/x", &[client]);
        assert_eq!(code, 200, "{client}: {body}\n{}", env.log());
        assert!(
            body.contains("h2c proto=HTTP/2.0 uri=/plain/x host=pull.acme.test status=valid"),
            "{client}: {body}"
        );
    }
    // Expiry gauges for the origin-pull certificates (default and per
    // route) and the origin CA, scraped like Prometheus would.
    let (code, metrics) = curl_get(&format!("http://127.0.0.1:{admin}/metrics"));
    assert_eq!(code, 200, "{metrics}");
    for pull in ["gateway-default.pem", "billing-pull.pem", "stranger.pem"] {
        // The file as the config names it (relative to the config's directory).
        let want =
            format!("portcullis_certificate_expiry_days{{kind=\"origin_pull\",name=\"./{pull}\"");
        assert!(metrics.contains(&want), "{want} missing in {metrics}");
    }
    assert!(
        metrics.contains("portcullis_certificate_expiry_days{kind=\"origin_ca\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_origin_duration_seconds_count{hostname=\"pull.acme.test\"}"),
        "{metrics}"
    );
    // Another tenant's certificate on /other: nginx refuses that identity.
    let (code, body) = get("/other", &[]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("SSL certificate error"), "{body}");
}
