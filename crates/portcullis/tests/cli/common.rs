//! Shared helpers: the binary, temp dirs, ephemeral ports, child guards.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_portcullis"))
}

/// Fails loudly when an outside tool the suite relies on is missing
/// (scripts/install-test-deps.sh installs them).
pub fn need(tool: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{tool} is not installed: run scripts/install-test-deps.sh (the README's test command does)"
    );
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("portcullis-test-")
        .tempdir()
        .expect("temp dir")
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Kills (SIGKILL) and reaps the child when dropped.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.0.as_ref().map(|c| c.id()).unwrap_or(0)
    }
    /// SIGKILL now (crash simulation) and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs a command in `dir`, returning its output.
pub fn run_in(dir: &Path, cmd: &mut Command) -> Output {
    cmd.current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `portcullis ARGS` in `dir`.
pub fn portcullis(dir: &Path, args: &[&str]) -> Output {
    run_in(dir, Command::new(bin()).args(args))
}

/// Asserts success and returns stdout as text.
#[track_caller]
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts failure and returns stderr as text.
#[track_caller]
pub fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "command unexpectedly succeeded:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}

/// Waits until something accepts TCP connections on 127.0.0.1:port.
pub fn wait_port(port: u16, child: &mut ChildGuard) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(c) = child.0.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                panic!("server exited early with {st}");
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listened on port {port} within 20 s");
}

/// A root CA made by `portcullis ca init` in `dir` (ca.pem, ca-key.pem).
/// The key is plaintext (`--insecure-plaintext-key`): these tests are about
/// the CFSSL API and the gateway, and read `ca-key.pem` without a passphrase;
/// encrypted keys are tested in `custody.rs`.
pub fn init_ca(dir: &Path) {
    write(
        dir,
        "ca-csr.json",
        r#"{"CN":"Test Root","names":[{"C":"US","O":"Portcullis Test"}],"key":{"algo":"ecdsa","size":256}}"#,
    );
    ok(portcullis(
        dir,
        &["ca", "init", "ca-csr.json", "--insecure-plaintext-key"],
    ));
}

/// A root CA like [`init_ca`], its key encrypted at rest as `ca init` does
/// by default (native Argon2id format) under the passphrase in `pass.txt`:
/// give `--passphrase-file pass.txt` to the commands that use the key.
pub fn init_ca_encrypted(dir: &Path) {
    write(
        dir,
        "ca-csr.json",
        r#"{"CN":"Test Root","names":[{"C":"US","O":"Portcullis Test"}],"key":{"algo":"ecdsa","size":256}}"#,
    );
    write(dir, "pass.txt", "test CA passphrase\n");
    ok(portcullis(
        dir,
        &["ca", "init", "ca-csr.json", "--passphrase-file", "pass.txt"],
    ));
    let key = std::fs::read_to_string(dir.join("ca-key.pem")).expect("ca-key.pem");
    assert!(key.starts_with("-----BEGIN PORTCULLIS ENCRYPTED PRIVATE KEY-----"));
}

pub const AUTH_KEY: &str = "0123456789ABCDEF0123456789ABCDEF";

/// Server-side signing config: `client` needs authsign; `plain` does not.
pub fn server_config(dir: &Path) -> PathBuf {
    write(
        dir,
        "config.json",
        &format!(
            r#"{{"signing":{{"default":{{"expiry":"168h"}},"profiles":{{
  "client":{{"usages":["signing","key encipherment","client auth"],"expiry":"8760h","auth_key":"k1"}},
  "plain":{{"usages":["signing","client auth"],"expiry":"720h"}},
  "server":{{"usages":["signing","key encipherment","server auth"],"expiry":"720h",
             "name_whitelist":"^[a-z0-9.-]+\\.acme\\.test$"}},
  "intermediate":{{"usages":["cert sign","crl sign"],"expiry":"43800h",
             "ca_constraint":{{"is_ca":true,"max_path_len":0,"max_path_len_zero":true}}}}
}}}},
"auth_keys":{{"k1":{{"type":"standard","key":"{AUTH_KEY}"}}}}}}"#
        ),
    )
}

/// Starts `portcullis ca serve` in `dir` on a free port; returns guard and port.
pub fn start_ca_serve(dir: &Path, extra: &[&str]) -> (ChildGuard, u16) {
    let port = free_port();
    let port_s = port.to_string();
    let mut args = vec![
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
        &port_s,
        "--db",
        "certs.db",
    ];
    args.extend_from_slice(extra);
    let child = Command::new(bin())
        .args(&args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ca serve");
    let mut g = ChildGuard(Some(child));
    wait_port(port, &mut g);
    (g, port)
}

/// POSTs a body with curl; returns (HTTP status, body).
pub fn curl_post(url: &str, body: &[u8]) -> (u16, String) {
    let dir = tempdir();
    let f = dir.path().join("body");
    std::fs::write(&f, body).expect("write body");
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-H",
            "content-type: application/json",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", f.display()))
        .arg(url)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// GETs a URL with curl; returns (HTTP status, body).
pub fn curl_get(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .arg(url)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Runs one SQL query on an SQLite file with the `sqlite3` CLI; returns its
/// output lines.
pub fn sqlite(db: &Path, sql: &str) -> Vec<String> {
    need("sqlite3");
    let out = Command::new("sqlite3")
        .args(["-batch", "-cmd", ".timeout 10000"])
        .arg(db)
        .arg(sql)
        .output()
        .expect("run sqlite3");
    assert!(
        out.status.success(),
        "sqlite3 {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Number of rows in the issuance log's `certificates` table.
pub fn cert_rows(db: &Path) -> u64 {
    let lines = sqlite(db, "SELECT count(*) FROM certificates;");
    lines
        .first()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected sqlite3 output {lines:?}"))
}

/// Sorted names of the entries of `dir` (to show that nothing was written).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

/// Asserts a CFSSL error envelope,
/// `{"success":false,"result":null,"errors":[{"code":N,"message":"…"}],"messages":[]}`,
/// with exactly one error of `code` whose message contains `needle`.
#[track_caller]
pub fn assert_cfssl_error(body: &str, code: u64, needle: &str) {
    let v: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("response is not JSON ({e}): {body:?}"));
    assert_eq!(v["success"], serde_json::json!(false), "{body}");
    assert!(v["result"].is_null(), "{body}");
    assert_eq!(v["messages"], serde_json::json!([]), "{body}");
    let errors = v["errors"].as_array().expect("errors array");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["code"].as_u64(), Some(code), "{body}");
    let msg = errors[0]["message"].as_str().expect("message text");
    assert!(
        msg.contains(needle),
        "message {msg:?} does not contain {needle:?}"
    );
}

/// Makes a key and CSR with `openssl req` in `dir` (`NAME.key`, `NAME.csr`)
/// and returns the CSR's path. `newkey` are the key arguments, e.g.
/// `["-newkey", "rsa:2048"]`; `extra` goes to `openssl req` as is
/// (`-addext …`).
pub fn openssl_csr(dir: &Path, name: &str, newkey: &[&str], subj: &str, extra: &[&str]) -> PathBuf {
    need("openssl");
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let mut args = vec!["req", "-new", "-nodes"];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", subj]);
    args.extend_from_slice(extra);
    ok(run_in(dir, Command::new("openssl").args(&args)));
    dir.join(csr)
}

/// Starts nginx in the foreground (one process, its temporary files under
/// `dir/nginx`, its error log in `dir/nginx.log`) with `servers` (the
/// `server { … }` blocks) inside its `http` block, and waits until it
/// listens on `port`.
pub fn spawn_nginx(dir: &Path, servers: &str, port: u16) -> ChildGuard {
    let d = dir.display();
    std::fs::create_dir_all(dir.join("nginx/logs")).expect("mkdir");
    write(
        dir,
        "nginx/nginx.conf",
        &format!(
            r#"daemon off;
master_process off;
pid {d}/nginx/nginx.pid;
error_log stderr info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/nginx/body;
  proxy_temp_path {d}/nginx/proxy;
  fastcgi_temp_path {d}/nginx/fastcgi;
  uwsgi_temp_path {d}/nginx/uwsgi;
  scgi_temp_path {d}/nginx/scgi;
{servers}}}
"#
        ),
    );
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir.join("nginx"))
        .arg("-c")
        .arg(dir.join("nginx/nginx.conf"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("nginx.log")).expect("log"))
        .spawn()
        .expect("spawn nginx");
    let mut g = ChildGuard(Some(child));
    wait_port(port, &mut g);
    g
}
