//! Edge policy through `portcullis serve` with real `curl`, client
//! certificates and Redis (docs/policy.md): signed URLs from
//! `portcullis token sign`, CEL rules, rate limits local and shared by two
//! gateway processes on one `redis-server` started on an ephemeral port.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::*;
use crate::gateway::{gateway_toml, hup, Env};

const TOKEN_BODY: &str = r#"{"error":"signed URL required"}"#;
const ADMIN_BODY: &str = r#"{"error":"admins only"}"#;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// curl `https://HOST.acme.test:PORT{target}` (target sent as is), with
/// `--cert NAME.pem` unless None; returns (status, headers, body).
fn get(
    env_dir: &Path,
    port: u16,
    host: &str,
    cert: Option<&str>,
    target: &str,
    extra: &[&str],
) -> (u16, String, String) {
    let name = format!("{host}.acme.test");
    let mut c = Command::new("curl");
    c.current_dir(env_dir)
        .args([
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            "ca.pem",
            "--path-as-is",
            "--resolve",
        ])
        .arg(format!("{name}:{port}:127.0.0.1"))
        .args(["-D", "-", "-o", "-", "-w", "\n%{http_code}"]);
    if let Some(cert) = cert {
        c.args([
            "--cert",
            &format!("{cert}.pem"),
            "--key",
            &format!("{cert}-key.pem"),
        ]);
    }
    c.args(extra).arg(format!("https://{name}:{port}{target}"));
    let out = c.output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (rest, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    (
        code.trim().parse().unwrap_or(0),
        head.to_owned(),
        body.to_owned(),
    )
}

fn access_log(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("access.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The access records of requests to `path`, waiting briefly for the log
/// line (written after the response head).
fn records_for(dir: &Path, path: &str, want: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r: Vec<_> = access_log(dir)
            .into_iter()
            .filter(|r| r["path"] == path)
            .collect();
        if r.len() >= want || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (up to 5 s) for an access record matching `pred`.
fn wait_record(dir: &Path, pred: impl Fn(&serde_json::Value) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if access_log(dir).iter().any(&pred) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// report.acme.test: tokens on /private/*, rules; off.acme.test: a local
/// rate limit by IP.
fn policy_toml(dir: &Path, port: u16, origin: u16) -> String {
    write(dir, "old-secret.txt", "old-secret\n");
    let mut s = gateway_toml(port, origin);
    // Sub-tables attach to the last [[hostname]]: move report after off.
    s = s.replace(
        &format!(
            "\n[[hostname]]\nname = \"report.acme.test\"\ncert = \"server.pem\"\nkey = \"server-key.pem\"\norigin = \"http://127.0.0.1:{origin}\"\n\n[hostname.mtls]\nmode = \"report\"\ncas = [\"acme\"]\n"
        ),
        "",
    );
    s.push_str(&format!(
        r#"
[[hostname.rate_limit]]
name = "per-ip"
key = "ip"
period = 60
limit = 3
mitigation_timeout = 30

[[hostname]]
name = "report.acme.test"
cert = "server.pem"
key = "server-key.pem"
origin = "http://127.0.0.1:{origin}"

[hostname.mtls]
mode = "report"
cas = ["acme"]

[[hostname.token]]
scheme = "cloudflare"
paths = ["/private/*"]
secrets = ["new-secret"]
secret_files = ["old-secret.txt"]
ttl = 300
max_future_skew = 60
block_status = 401
block_content_type = "application/json"
block_body = '{TOKEN_BODY}'

[[hostname.token]]
scheme = "nginx"
paths = ["/dl/*"]
secrets = ["ngx-secret"]

[[hostname.token]]
scheme = "akamai"
paths = ["/video/*"]
header = "x-akamai-token"
secrets = ["0a1b2c3d4e5f"]

[[hostname.rule]]
name = "health"
expression = 'http.request.uri.path == "/admin/health"'
action = "skip"

[[hostname.rule]]
name = "watch"
expression = 'http.request.uri.path.startsWith("/public/watch")'
action = "log"

[[hostname.rule]]
name = "beta"
expression = 'http.request.uri.path.startsWith("/beta")'
action = "block"
simulate = true

[[hostname.rule]]
name = "admin"
expression = '''http.request.uri.path.startsWith("/admin")
  && !(cf.tls_client_auth.cert_verified && cf.tls_client_auth.cert_subject_dn in ["CN=alice"])'''
action = "block"
block_status = 403
block_body = '{ADMIN_BODY}'

[[hostname.rule]]
name = "evil-header"
expression = '"x-evil" in http.request.headers && http.request.headers["x-evil"][0] == "1"'
action = "block"
"#
    ));
    s
}

fn sign(dir: &Path, path: &str, args: &[&str]) -> String {
    let mut a = vec!["token", "sign", path];
    a.extend_from_slice(args);
    let out: serde_json::Value = serde_json::from_str(&ok(portcullis(dir, &a))).expect("json");
    out["url"].as_str().expect("url").to_owned()
}

/// A URL from `portcullis token sign` passes; each tampered or stale
/// variant is refused with the configured body and never reaches the
/// origin.
#[test]
fn policy_signed_urls_accepted_and_every_forgery_refused() {
    let env = Env::start_with(policy_toml);
    let d = env.path();
    let t0 = now();
    let t = t0.to_string();
    let good = sign(
        d,
        "/private/cat.jpg",
        &["--secret", "new-secret", "--time", &t],
    );
    let before = env.origin.count();
    let (code, _, body) = get(d, env.port, "report", Some("alice"), &good, &[]);
    assert_eq!(code, 200, "{body}\n{}", env.log());
    assert!(body.starts_with(&format!("GET {good} HTTP/1.1")), "{body}");
    // Rotation: a URL signed with the older secret (from secret_files) passes.
    let old = sign(
        d,
        "/private/cat.jpg",
        &["--secret", "old-secret", "--time", &t],
    );
    assert_eq!(get(d, env.port, "report", None, &old, &[]).0, 200);
    // Header-less, no-cert client: the token alone decides.
    assert_eq!(env.origin.count(), before + 2);

    let (path_part, token_part) = good.split_once("?verify=").expect("signed url");
    let ts = &token_part[..10];
    let other_ts = (t0 - 1).to_string();
    let expired = sign(
        d,
        "/private/cat.jpg",
        &[
            "--secret",
            "new-secret",
            "--time",
            &(now() - 400).to_string(),
        ],
    );
    let future = sign(
        d,
        "/private/cat.jpg",
        &[
            "--secret",
            "new-secret",
            "--time",
            &(now() + 3600).to_string(),
        ],
    );
    let retired = sign(
        d,
        "/private/cat.jpg",
        &["--secret", "retired-secret", "--time", &t],
    );
    let cases = [
        (
            "path changed",
            good.replace("/private/cat.jpg", "/private/dog.jpg"),
            "bad-mac",
        ),
        (
            "timestamp changed",
            good.replacen(ts, &other_ts, 1),
            "bad-mac",
        ),
        (
            "MAC truncated",
            good[..good.len() - 6].to_owned(),
            "bad-mac|malformed",
        ),
        ("expired", expired, "expired"),
        ("from the future", future, "future"),
        ("rotated-out secret", retired, "bad-mac"),
        (
            "moved to another parameter",
            format!("{path_part}?token={token_part}"),
            "missing",
        ),
        ("not the last parameter", format!("{good}&x=1"), "malformed"),
        ("no token", path_part.to_owned(), "missing"),
    ];
    let before = env.origin.count();
    for (what, url, reason) in &cases {
        let (code, head, body) = get(d, env.port, "report", Some("alice"), url, &[]);
        assert_eq!(code, 401, "{what}: {url} → {body}");
        assert_eq!(body, TOKEN_BODY, "{what}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let case_path = url.split('?').next().unwrap_or(url);
        let found = wait_record(d, |r| {
            r["path"] == case_path
                && reason.split('|').any(|x| r["token"] == x)
                && r["outcome"] == "token"
        });
        assert!(
            found,
            "{what}: no access record with token {reason}: {:?}",
            access_log(d)
        );
    }
    assert_eq!(
        env.origin.count(),
        before,
        "no forged request reached the origin"
    );
    // Outside /private/* no token is needed.
    assert_eq!(get(d, env.port, "report", None, "/public/x", &[]).0, 200);
    // nginx secure_link_md5 and Akamai EdgeAuth through the gateway.
    let ngx = sign(
        d,
        "/dl/file.zip",
        &[
            "--scheme",
            "nginx",
            "--secret",
            "ngx-secret",
            "--remote-addr",
            "127.0.0.1",
        ],
    );
    assert_eq!(get(d, env.port, "report", None, &ngx, &[]).0, 200, "{ngx}");
    let ngx_bad = ngx.replace("/dl/file.zip", "/dl/other.zip");
    // These tables keep the default block response: 403 and a JSON reason.
    let (code, _, body) = get(d, env.port, "report", None, &ngx_bad, &[]);
    assert_eq!(
        (code, body.as_str()),
        (403, r#"{"error":"invalid token","reason":"bad-mac"}"#)
    );
    let out: serde_json::Value = serde_json::from_str(&ok(portcullis(
        d,
        &[
            "token",
            "sign",
            "/video/*",
            "--scheme",
            "akamai",
            "--secret",
            "0a1b2c3d4e5f",
        ],
    )))
    .expect("json");
    let tok = out["token"].as_str().expect("token");
    let hdr = format!("X-Akamai-Token: {tok}");
    assert_eq!(
        get(d, env.port, "report", None, "/video/a.mp4", &["-H", &hdr]).0,
        200
    );
    let forged = format!("X-Akamai-Token: {}", tok.replace("acl=/video/*", "acl=/*"));
    assert_eq!(
        get(
            d,
            env.port,
            "report",
            None,
            "/video/a.mp4",
            &["-H", &forged]
        )
        .0,
        403
    );
    assert_eq!(get(d, env.port, "report", None, "/video/a.mp4", &[]).0, 403);

    // The secrets never show in the gateway's logs.
    let logs = env.log() + &std::fs::read_to_string(d.join("access.log")).unwrap_or_default();
    assert!(!logs.contains("new-secret") && !logs.contains("old-secret"));
}

/// Rules with client certificates: block, log (request reaches the origin
/// and the access record names the rule), skip, simulate.
#[test]
fn policy_rules_block_log_skip_simulate() {
    let env = Env::start_with(policy_toml);
    let d = env.path();
    let p = env.port;
    // block: /admin without alice's valid certificate.
    for cert in [None, Some("mallory"), Some("carol")] {
        let (code, _, body) = get(d, p, "report", cert, "/admin/users", &[]);
        assert_eq!((code, body.as_str()), (403, ADMIN_BODY), "{cert:?}");
    }
    let (code, _, body) = get(d, p, "report", Some("alice"), "/admin/users", &[]);
    assert_eq!(code, 200, "{body}");
    let recs = records_for(d, "/admin/users", 4);
    let blocked: Vec<_> = recs.iter().filter(|r| r["status"] == 403).collect();
    assert_eq!(blocked.len(), 3, "{recs:?}");
    for r in &blocked {
        assert_eq!(
            (
                r["rule"].as_str(),
                r["action"].as_str(),
                r["outcome"].as_str()
            ),
            (Some("admin"), Some("block"), Some("rule"))
        );
    }
    // skip: the health rule stops evaluation before "admin".
    let (code, _, _) = get(d, p, "report", None, "/admin/health", &[]);
    assert_eq!(code, 200);
    let r = records_for(d, "/admin/health", 1);
    assert_eq!(
        (r[0]["rule"].as_str(), r[0]["action"].as_str()),
        (Some("health"), Some("skip"))
    );
    // log: let through, recorded.
    let before = env.origin.count();
    let (code, _, body) = get(d, p, "report", None, "/public/watch/1", &[]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        env.origin.count(),
        before + 1,
        "a log rule lets the request reach the origin"
    );
    let r = records_for(d, "/public/watch/1", 1);
    assert_eq!(
        (r[0]["rule"].as_str(), r[0]["action"].as_str()),
        (Some("watch"), Some("log"))
    );
    assert_eq!(r[0]["rules_logged"], serde_json::json!(["watch"]));
    // simulate: a block rule in simulation only logs.
    let (code, _, _) = get(d, p, "report", None, "/beta/feature", &[]);
    assert_eq!(code, 200);
    let r = records_for(d, "/beta/feature", 1);
    assert_eq!(r[0]["rules_logged"], serde_json::json!(["beta"]));
    assert_eq!(r[0]["action"], "log");
    // A header rule, default block body naming the rule.
    let (code, _, body) = get(d, p, "report", None, "/public/h", &["-H", "X-Evil: 1"]);
    assert_eq!(code, 403);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json body");
    assert_eq!(v["rule"], "evil-header");
    assert_eq!(
        get(d, p, "report", None, "/public/h", &["-H", "X-Evil: 0"]).0,
        200
    );

    // Reload: a bad expression is refused with its position and the
    // running rules stay; a valid change (admin → simulate) applies.
    let path = d.join("gateway.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let broken = text.replace(
        r#"expression = 'http.request.uri.path.startsWith("/beta")'"#,
        r#"expression = 'http.request.uri.path.startsWith("/beta"'"#,
    );
    assert_ne!(broken, text);
    write(d, "gateway.toml", &broken);
    hup(&env);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env.log().contains("reload refused") {
        assert!(Instant::now() < deadline, "no refusal: {}", env.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        env.log().contains("rule[2] \"beta\": line 1, column"),
        "{}",
        env.log()
    );
    assert_eq!(get(d, p, "report", None, "/admin/users", &[]).0, 403);
    let simulated = text.replace(
        "action = \"block\"\nblock_status = 403",
        "action = \"block\"\nsimulate = true\nblock_status = 403",
    );
    assert_ne!(simulated, text);
    write(d, "gateway.toml", &simulated);
    hup(&env);
    let mut got = 0;
    for _ in 0..100 {
        got = get(d, p, "report", None, "/admin/users", &[]).0;
        if got == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(got, 200, "simulated after reload: {}", env.log());
}

/// A local limit by IP: over the limit → 429 with Retry-After, the origin
/// is not contacted.
#[test]
fn policy_local_rate_limit_429_with_retry_after() {
    let env = Env::start_with(policy_toml);
    let d = env.path();
    for i in 0..3 {
        assert_eq!(
            get(d, env.port, "off", None, "/r", &[]).0,
            200,
            "request {i}"
        );
    }
    let before = env.origin.count();
    let (code, head, body) = get(d, env.port, "off", None, "/r", &[]);
    assert_eq!(code, 429, "{body}");
    let retry: u64 = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse().ok())
        .expect("Retry-After header");
    assert!((1..=30).contains(&retry), "{retry}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["limit"], "per-ip");
    assert_eq!(env.origin.count(), before);
}

/// `portcullis token sign|verify`: the CONTRACT vector, JSON out, exit 0
/// valid / 1 invalid / 2 usage; secrets from a file or the environment.
#[test]
fn token_cli_sign_verify() {
    let d = tempdir();
    let dir = d.path();
    let out = ok(portcullis(
        dir,
        &[
            "token",
            "sign",
            "/images/cat.jpg",
            "--secret",
            "mysecrettoken",
            "--time",
            "1484063787",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v["url"],
        "/images/cat.jpg?verify=1484063787-XsZ5NmtNBxOd4f4fBOtqVmpWRnDRNkHKVZieqDPKu3U%3D"
    );
    write(dir, "secret.txt", "mysecrettoken\n");
    let url = "https://cdn.test/images/cat.jpg?verify=1484063787-XsZ5NmtNBxOd4f4fBOtqVmpWRnDRNkHKVZieqDPKu3U%3D";
    let verify = |extra: &[&str], env_secret: Option<&str>| {
        let mut c = Command::new(bin());
        c.current_dir(dir)
            .args(["token", "verify", url])
            .args(extra);
        c.env_remove("PORTCULLIS_TOKEN_SECRET");
        if let Some(s) = env_secret {
            c.env("PORTCULLIS_TOKEN_SECRET", s);
        }
        let o = c.output().expect("run");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, _) = verify(
        &[
            "--secret-file",
            "secret.txt",
            "--ttl",
            "60",
            "--time",
            "1484063800",
        ],
        None,
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"valid\":true"), "{out}");
    let (code, out, _) = verify(
        &["--ttl", "60", "--time", "1484063900"],
        Some("mysecrettoken"),
    );
    assert_eq!(code, Some(1));
    assert!(out.contains("\"reason\":\"expired\""), "{out}");
    let (code, out, _) = verify(&["--ttl", "60", "--time", "1484063800"], Some("wrong"));
    assert_eq!(code, Some(1));
    assert!(out.contains("bad-mac"), "{out}");
    let (code, _, err) = verify(&["--ttl", "60"], None);
    assert_eq!(code, Some(2));
    assert!(err.contains("no secret"), "{err}");
    let (code, _, _) = verify(&["--secret", "x"], None);
    assert_eq!(code, Some(2), "--ttl or --absolute is required");
}

/// Config load refuses a bad rule expression with its position, and a
/// misspelled field name, before any port is bound.
#[test]
fn policy_invalid_expression_refused_at_load() {
    let d = tempdir();
    let port = free_port();
    let text = format!(
        r#"[server]
https = "127.0.0.1:{port}"

[[hostname]]
name = "a.acme.test"
cert = "server.pem"
key = "server-key.pem"
origin = "http://127.0.0.1:9"

[[hostname.rule]]
name = "broken"
expression = 'http.request.uri.path == '
action = "block"

[[hostname.rule]]
name = "typo"
expression = 'htp.host == "x"'
action = "log"

[[hostname.rate_limit]]
name = "r"
key = "nope"
period = 0
limit = 0
"#
    );
    write(d.path(), "bad.toml", &text);
    let out = Command::new(bin())
        .args(["serve", "--config", "bad.toml"])
        .current_dir(d.path())
        .stdout(Stdio::null())
        .output()
        .expect("run serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rule[0] \"broken\": line 1, column"), "{err}");
    assert!(err.contains("unknown name \"htp\""), "{err}");
    assert!(err.contains("key \"nope\""), "{err}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "no port bound"
    );
}

struct Redis {
    guard: ChildGuard,
    port: u16,
}

fn start_redis(dir: &Path) -> Redis {
    need("redis-server");
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let mut guard = ChildGuard(Some(child));
    wait_port(port, &mut guard);
    Redis { guard, port }
}

/// Two gateway processes with one Redis enforce one budget, exactly (the
/// Lua script counts atomically; tolerance 0 within one window). With
/// Redis stopped, a fail-closed limit answers 503 + Retry-After and a
/// fail-open one lets requests through and says so in the access log.
#[test]
fn policy_two_gateways_share_one_redis_budget() {
    let redis_dir = tempdir();
    let mut redis = start_redis(redis_dir.path());
    let rport = redis.port;
    let toml = move |_: &Path, port: u16, origin: u16| {
        let mut s = gateway_toml(port, origin);
        // Sub-tables attach to the last hostname (off.acme.test).
        s.push_str(&format!(
            r#"
[[hostname.rate_limit]]
name = "fleet"
key = "header"
header = "x-api-key"
period = 60
limit = 10
mitigation_timeout = 60
store = "redis"
redis_url = "redis://127.0.0.1:{rport}"
on_redis_error = "closed"

[[hostname.rate_limit]]
name = "fleet-open"
key = "ip"
period = 60
limit = 1000
store = "redis"
redis_url = "redis://127.0.0.1:{rport}"
on_redis_error = "open"
"#
        ));
        s
    };
    let env = Env::start_with(toml);
    let d = env.path();
    // The second node: same config, another port.
    let port2 = free_port();
    let text = std::fs::read_to_string(d.join("gateway.toml"))
        .expect("config")
        .replace(
            &format!("127.0.0.1:{}\"", env.port),
            &format!("127.0.0.1:{port2}\""),
        );
    write(d, "gateway2.toml", &text);
    let mut gw2 = ChildGuard(Some(
        Command::new(bin())
            .args(["serve", "--config", "gateway2.toml"])
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn second gateway"),
    ));
    wait_port(port2, &mut gw2);

    let key = ["-H", "X-Api-Key: tenant-1"];
    let mut statuses = Vec::new();
    for i in 0..16 {
        let port = if i % 2 == 0 { env.port } else { port2 };
        let (code, head, _) = get(d, port, "off", None, "/fleet", &key);
        if code == 429 {
            assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
        }
        statuses.push(code);
    }
    let ok200 = statuses.iter().filter(|c| **c == 200).count();
    let limited = statuses.iter().filter(|c| **c == 429).count();
    assert_eq!(
        (ok200, limited),
        (10, 6),
        "one budget of 10 across both nodes: {statuses:?}"
    );
    assert_eq!(&statuses[..10], &[200; 10], "{statuses:?}");
    // Another key has its own budget, on either node.
    assert_eq!(
        get(
            d,
            port2,
            "off",
            None,
            "/fleet",
            &["-H", "X-Api-Key: tenant-2"]
        )
        .0,
        200
    );

    // Redis stopped: "fleet" is fail-closed → 503 with Retry-After.
    redis.guard.kill9();
    let (code, head, body) = get(
        d,
        env.port,
        "off",
        None,
        "/down",
        &["-H", "X-Api-Key: tenant-3"],
    );
    assert_eq!(code, 503, "{body}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    assert!(body.contains("fleet"), "{body}");
    let r = records_for(d, "/down", 1);
    assert_eq!(r[0]["rate_limit_store"], "failed-closed", "{r:?}");
}

/// A fail-open limit with Redis unreachable lets requests through and
/// marks them in the access log.
#[test]
fn policy_redis_unreachable_fail_open() {
    let dead = free_port();
    let env = Env::start_with(move |_: &Path, port, origin| {
        let mut s = gateway_toml(port, origin);
        s.push_str(&format!(
            "\n[[hostname.rate_limit]]\nname = \"open\"\nkey = \"ip\"\nperiod = 60\nlimit = 1\n\
             store = \"redis\"\nredis_url = \"redis://127.0.0.1:{dead}\"\non_redis_error = \"open\"\n"
        ));
        s
    });
    for _ in 0..3 {
        assert_eq!(get(env.path(), env.port, "off", None, "/open", &[]).0, 200);
    }
    let r = records_for(env.path(), "/open", 3);
    assert!(
        r.iter().all(|r| r["rate_limit_store"] == "failed-open"),
        "{r:?}"
    );
}
