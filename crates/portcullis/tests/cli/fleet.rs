//! A fleet: two `portcullis gateway` nodes on one PostgreSQL (a temporary
//! cluster this test starts with initdb/pg_ctl as the `postgres` user, on
//! an ephemeral port). A change written through the `Store` trait (the
//! control plane's path) is served by both nodes; they keep serving with
//! the control plane down and with PostgreSQL down (a node restarted then
//! starts from its local copy), and catch up when it returns.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use store::*;

use crate::common::*;
use crate::gateway::{headers, make_pki, Origin};
use crate::store_live::{eventually, read};

/// A PostgreSQL cluster of our own; stopped on drop.
struct TempPg {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bindir: PathBuf,
    port: u16,
}

fn pg_bindir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.retain(|d| d.join("initdb").exists() && d.join("pg_ctl").exists());
    dirs.sort();
    dirs.pop().expect(
        "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql: \
         run scripts/install-test-deps.sh",
    )
}

fn as_postgres(args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runuser")
}

impl TempPg {
    fn start() -> TempPg {
        need("runuser");
        let bindir = pg_bindir();
        let dir = tempdir();
        let data = dir.path().join("pg");
        std::fs::create_dir(&data).expect("mkdir");
        // The postgres user must reach and own its data directory.
        ok(run_in(
            dir.path(),
            Command::new("chmod").args(["0755", "."]),
        ));
        ok(run_in(
            dir.path(),
            Command::new("chown").args(["-R", "postgres:postgres", "pg"]),
        ));
        let d = data.to_string_lossy().into_owned();
        let initdb = bindir.join("initdb").to_string_lossy().into_owned();
        ok(as_postgres(&[
            &initdb,
            "-D",
            &d,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]));
        let pg = TempPg {
            _dir: dir,
            data,
            bindir,
            port: free_port(),
        };
        pg.up();
        pg
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let pg_ctl = self.bindir.join("pg_ctl").to_string_lossy().into_owned();
        let d = self.data.to_string_lossy().into_owned();
        let mut all = vec![pg_ctl.as_str(), "-D", d.as_str()];
        all.extend_from_slice(args);
        as_postgres(&all)
    }

    fn up(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.data.display()
        );
        let log = self.data.join("server.log").to_string_lossy().into_owned();
        ok(self.pg_ctl(&["-w", "-t", "30", "-l", &log, "-o", &opts, "start"]));
    }

    fn down(&self) {
        ok(self.pg_ctl(&["-w", "-m", "fast", "stop"]));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for TempPg {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}

struct Node {
    port: u16,
    name: String,
    guard: ChildGuard,
}

fn start_node(dir: &Path, name: &str, port: u16, pg: &TempPg) -> Node {
    write(
        dir,
        &format!("{name}.toml"),
        &format!(
            r#"[server]
https = "127.0.0.1:{port}"
data_dir = "{name}-data"
store = "{}"
store_key = "store.key"
"#,
            pg.url()
        ),
    );
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .expect("log");
    let child = Command::new(bin())
        .args(["gateway", "--config", &format!("{name}.toml")])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn gateway node");
    let mut guard = ChildGuard(Some(child));
    wait_port(port, &mut guard);
    Node {
        port,
        name: name.to_owned(),
        guard,
    }
}

/// curl through a node: (status, Client-Cert-Status seen by the origin).
fn curl(dir: &Path, node: &Node, host: &str, cert: Option<&str>) -> (u16, String) {
    let name = format!("{host}.acme.test");
    let mut c = Command::new("curl");
    c.current_dir(dir)
        .args(["-sS", "--max-time", "10", "--cacert", "ca.pem", "--resolve"])
        .arg(format!("{name}:{}:127.0.0.1", node.port))
        .args(["-o", "-", "-w", "\n%{http_code}"]);
    if let Some(cert) = cert {
        c.args([
            "--cert",
            &format!("{cert}.pem"),
            "--key",
            &format!("{cert}-key.pem"),
        ]);
    }
    c.arg(format!("https://{name}:{}/", node.port));
    let out = c.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let status = headers(body)
        .get("client-cert-status")
        .and_then(|v| v.first().cloned())
        .unwrap_or_default();
    (code.trim().parse().unwrap_or(0), status)
}

fn control_plane(rt: &tokio::runtime::Runtime, pg: &TempPg, key: [u8; 32]) -> Arc<SqlStore> {
    rt.block_on(open_postgres(
        &pg.url(),
        StoreOptions {
            secret_key: Some(key),
            ..StoreOptions::default()
        },
    ))
    .expect("control plane opens the store")
}

#[test]
fn fleet_of_two_nodes_follows_postgres_and_survives_outages() {
    need("curl");
    let pg = TempPg::start();
    let d = tempdir();
    let dir = d.path();
    make_pki(dir);
    let origin = Origin::start();
    let key = load_or_create_key(&dir.join("store.key")).expect("key");
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    // The control plane writes an account, its CA and a report hostname.
    let cp = control_plane(&rt, &pg, key);
    let actor = Actor::System;
    let acme = rt
        .block_on(cp.create_account(
            &actor,
            NewAccount {
                name: "acme".into(),
                ca_limit: None,
            },
        ))
        .expect("account");
    let ca = rt
        .block_on(cp.create_ca(
            &actor,
            acme.id,
            NewCa {
                name: "acme".into(),
                pem: read(dir, "ca.pem"),
                subject: "CN=Test Root".into(),
                not_after: 4_000_000_000,
                crl_pem: Some(read(dir, "ca.crl")),
            },
        ))
        .expect("ca");
    let host = |name: &str, mode: MtlsMode| NewHostname {
        name: format!("{name}.acme.test"),
        cert_pem: read(dir, "server.pem"),
        key_pem: Secret::from(read(dir, "server-key.pem")),
        origin: format!("http://127.0.0.1:{}", origin.port),
        mode,
        ca_ids: if mode == MtlsMode::Off {
            vec![]
        } else {
            vec![ca.id]
        },
        ..NewHostname::default()
    };
    let report = rt
        .block_on(cp.create_hostname(&actor, acme.id, host("report", MtlsMode::Report)))
        .expect("hostname");

    let n1 = start_node(dir, "node1", free_port(), &pg);
    let mut n2 = start_node(dir, "node2", free_port(), &pg);
    for n in [&n1, &n2] {
        assert_eq!(
            curl(dir, n, "report", Some("alice")),
            (200, "valid".into()),
            "{}",
            n.name
        );
        assert_eq!(curl(dir, n, "report", Some("mallory")).1, "invalid");
    }

    // The nodes' report-mode verdicts become events in the shared store.
    eventually("events from the nodes", Duration::from_secs(15), || {
        let ev = rt
            .block_on(cp.query_events(EventQuery {
                hostname: Some("report.acme.test".into()),
                ..EventQuery::default()
            }))
            .expect("events");
        ev.iter().filter(|e| e.verdict == "valid").count() >= 2
            && ev.iter().any(|e| e.verdict == "invalid")
    });

    // A change through the store reaches both nodes.
    rt.block_on(cp.update_hostname(
        &actor,
        acme.id,
        report.id,
        HostnameUpdate {
            mode: Some(MtlsMode::Enforce),
            ..HostnameUpdate::default()
        },
    ))
    .expect("enforce");
    for n in [&n1, &n2] {
        let took = eventually("enforce on every node", Duration::from_secs(15), || {
            curl(dir, n, "report", None).0 == 403
        });
        eprintln!("fleet: {} enforced after {took:?}", n.name);
        assert_eq!(curl(dir, n, "report", Some("alice")).0, 200);
    }

    // Control plane down: the nodes depend on PostgreSQL only.
    drop(cp);
    for n in [&n1, &n2] {
        assert_eq!(curl(dir, n, "report", Some("alice")).0, 200);
    }

    // PostgreSQL down: both keep serving; a node restarted meanwhile
    // starts from its local copy.
    pg.down();
    for n in [&n1, &n2] {
        assert_eq!(
            curl(dir, n, "report", Some("alice")).0,
            200,
            "{} with PostgreSQL down",
            n.name
        );
        assert_eq!(curl(dir, n, "report", None).0, 403);
    }
    let port2 = n2.port;
    n2.guard.kill9();
    let n2b = start_node(dir, "node2", port2, &pg);
    eventually(
        "restarted node serves its local copy",
        Duration::from_secs(15),
        || curl(dir, &n2b, "report", Some("alice")).0 == 200,
    );
    assert_eq!(curl(dir, &n2b, "report", None).0, 403);
    let log2 = std::fs::read_to_string(dir.join("node2.log")).unwrap_or_default();
    assert!(log2.contains("local snapshot copy"), "{log2}");
    // The local copy holds the server key sealed, not as PEM.
    let key_pem = read(dir, "server-key.pem");
    let key_line = key_pem.lines().nth(1).expect("key body");
    for f in ["node1-data/snapshot.db", "node1-data/snapshot.db-wal"] {
        let bytes = std::fs::read(dir.join(f)).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(key_line),
            "{f} holds the key in the clear"
        );
    }

    // PostgreSQL back, control plane back: a new hostname reaches both.
    pg.up();
    let cp = control_plane(&rt, &pg, key);
    rt.block_on(cp.create_hostname(&actor, acme.id, host("off", MtlsMode::Off)))
        .expect("new hostname");
    for n in [&n1, &n2b] {
        let took = eventually("catch up after the outage", Duration::from_secs(30), || {
            curl(dir, n, "off", None).0 == 200
        });
        eprintln!("fleet: {} caught up after {took:?}", n.name);
    }
    drop(n2);
}

#[test]
fn gateway_node_refuses_a_config_without_a_postgres_store() {
    let d = tempdir();
    let port = free_port();
    write(
        d.path(),
        "a.toml",
        &format!("[server]\nhttps = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\n"),
    );
    let e = fails(portcullis(d.path(), &["gateway", "--config", "a.toml"]));
    assert!(e.contains("server.store"), "{e}");
    write(
        d.path(),
        "b.toml",
        &format!("[server]\nhttps = \"127.0.0.1:{port}\"\nstore = \"mysql://user:pw@db/x\"\n"),
    );
    let e = fails(portcullis(d.path(), &["gateway", "--config", "b.toml"]));
    assert!(e.contains("not a postgres://"), "{e}");
    assert!(!e.contains("pw"), "the URL's password is not echoed: {e}");
}
