//! The web dashboard (`/dashboard/` on the admin listener) in a real
//! browser: `portcullis serve` with a data dir, then
//! `crates/portcullis/tests/dashboard/e2e.mjs` drives Debian's Chromium
//! headless through playwright-core (both installed by
//! `scripts/install-test-deps.sh`): sign in (a wrong token refused), upload a
//! CA, create a hostname, associate, `report`, traffic with curl and client
//! certificates, the chart's counts equal the events API's, `enforce` with
//! the share it blocks, a managed-CA certificate issued (PEM, key and
//! PKCS#12 downloaded), used and revoked; a cross-site form post answered
//! 401, a revoked and an expired token sending the page back to sign-in.
//!
//! Screenshots go to a temporary directory, or to `DASHBOARD_SCREENSHOTS`
//! when set (`docs/screenshots/` is refreshed that way).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::gateway::Env;

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard")
}

/// Node, playwright-core and Chromium, or a message naming the installer.
fn need_browser() {
    need("node");
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "/usr/bin/chromium is missing: run scripts/install-test-deps.sh (installs Debian's chromium)"
    );
    assert!(
        e2e_dir()
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is missing in {}: run scripts/install-test-deps.sh (npm ci there)",
        e2e_dir().display()
    );
}

/// The operator token printed once on first start.
fn printed_token(log: &str) -> Option<String> {
    log.lines()
        .find_map(|l| l.split_once("operator token (shown once, keep it): "))
        .map(|(_, t)| t.trim().to_owned())
}

/// `curl -i` of a dashboard path: (status, lowercase header lines).
fn head(admin: u16, path: &str) -> (u16, Vec<String>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "/dev/null", "-D", "-"])
        .arg(format!("http://127.0.0.1:{admin}{path}"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text.lines().map(str::to_owned).collect())
}

/// The assets are served from the binary with a strict policy.
#[test]
fn dashboard_assets_served_with_a_strict_policy() {
    let admin = free_port();
    let mut env = Env::start_with(|_, port, _| {
        format!(
            "[server]\nhttps = \"127.0.0.1:{port}\"\nadmin = \"127.0.0.1:{admin}\"\ndata_dir = \"data\"\n"
        )
    });
    wait_port(admin, &mut env.gw);
    for (path, ctype) in [
        ("/dashboard/", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
    ] {
        let (status, headers) = head(admin, path);
        assert_eq!(status, 200, "{path}: {headers:?}");
        let has = |p: &str| headers.iter().any(|h| h.starts_with(p));
        assert!(
            has(&format!("content-type: {ctype}")),
            "{path}: {headers:?}"
        );
        assert!(
            has("content-security-policy: default-src 'none'; script-src 'self'"),
            "{path}: {headers:?}"
        );
        assert!(has("x-frame-options: deny"), "{path}: {headers:?}");
        assert!(!has("access-control-"), "{path}: {headers:?}");
    }
    let (status, headers) = head(admin, "/dashboard");
    assert_eq!(status, 308, "{headers:?}");
    assert!(headers.iter().any(|h| h == "location: /dashboard/"));
    let (status, _) = head(admin, "/dashboard/nope.js");
    assert_eq!(status, 404);
}

/// Issue 9's browser flow (see the module comment); the steps are in
/// `tests/dashboard/e2e.mjs`, which prints each one.
#[test]
fn dashboard_end_to_end_in_chromium() {
    need_browser();
    need("openssl");
    let admin = free_port();
    let mut env = Env::start_with(|_, port, _| {
        format!(
            "[server]\nhttps = \"127.0.0.1:{port}\"\nadmin = \"127.0.0.1:{admin}\"\ndata_dir = \"data\"\n"
        )
    });
    wait_port(admin, &mut env.gw);
    let root = printed_token(&env.log()).expect("operator token printed on first start");
    let work = tempdir();
    let shots = std::env::var_os("DASHBOARD_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| work.path().join("screenshots"));
    let out = Command::new("node")
        .arg(e2e_dir().join("e2e.mjs"))
        .current_dir(e2e_dir())
        .env("DASH_ADMIN", admin.to_string())
        .env("DASH_ROOT", &root)
        .env("DASH_GW", env.port.to_string())
        .env(
            "DASH_ORIGIN",
            format!("http://127.0.0.1:{}", env.origin.port),
        )
        .env("DASH_PKI", env.path())
        .env("DASH_SHOTS", &shots)
        .env("DASH_WORK", work.path().join("downloads"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "dashboard e2e failed ({}):\n{stdout}\n{stderr}\n--- serve log ---\n{}",
        out.status,
        env.log()
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    for shot in [
        "signin",
        "cas",
        "hostnames",
        "mode-confirm",
        "events",
        "events-enforce",
        "managed-ca",
        "tokens",
    ] {
        let p = shots.join(format!("{shot}.png"));
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "screenshot {} missing or empty", p.display());
    }
}
