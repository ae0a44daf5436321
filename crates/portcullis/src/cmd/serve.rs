//! `portcullis serve --config FILE`: load and validate the configuration
//! (every problem listed, before any port is bound), then run the gateway
//! until SIGTERM or Ctrl-C, draining open connections. SIGHUP, or a change
//! to the config file or a file it names, reloads the configuration (all or
//! nothing). One JSON access-log line per request goes to stdout.
//! `server.admin`, when set, serves `GET /metrics`. An `[agent]` section
//! makes the process obtain and renew its own certificates from the CA
//! (docs/agent.md); the files it writes are reloaded like any other.
//!
//! With `server.data_dir` (or `server.store`), hostnames also come from the
//! control-plane store (SQLite `portcullis.db` in the data dir, or
//! PostgreSQL) and follow it live (see `live.rs` and docs/store.md); the
//! TOML file's hostnames win over store hostnames of the same name. The
//! same loop, with `Role::Node`, is `portcullis gateway` (a fleet node).
//! `serve` with a store is also the control plane: the management API
//! (`/api/v1`, docs/control-api.md) is served on `server.admin` beside
//! `/metrics`, and the first start makes an operator token (printed once,
//! or `PORTCULLIS_ADMIN_TOKEN`).
//! `[[egress]]` listeners (docs/egress.md) start with the gateway and
//! reload with it.
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use gateway::config::Config;
use gateway::egress::{EgressListeners, EgressMetrics, Egresses};
use gateway::{Gateway, Sites};
use std::sync::Arc;

/// Run the gateway.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Gateway configuration (TOML). Relative paths in it are relative to
    /// the file's directory.
    #[arg(long, value_name = "FILE", default_value = "portcullis.toml")]
    pub config: PathBuf,
}

/// Reads and validates a config file and the files it names.
pub fn load(path: &Path) -> anyhow::Result<(Config, Sites)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let config = Config::parse(&text, base).with_context(|| format!("{}", path.display()))?;
    let sites = Sites::load(&config, &|p| std::fs::read(p))
        .with_context(|| format!("{}", path.display()))?;
    Ok((config, sites))
}

/// Reads the certificates, keys and CAs that the `[[egress]]` entries of
/// a validated config name, counting into `metrics`.
pub fn load_egress(
    path: &Path,
    config: &Config,
    metrics: Arc<EgressMetrics>,
) -> anyhow::Result<Egresses> {
    Egresses::load_with_metrics(&config.egress, &|p| std::fs::read(p), metrics)
        .with_context(|| format!("{}", path.display()))
}

/// [`load`] and [`load_egress`]: everything a start or a reload needs.
fn load_all(path: &Path, metrics: Arc<EgressMetrics>) -> anyhow::Result<(Config, Sites, Egresses)> {
    let (config, sites) = load(path)?;
    let egress = load_egress(path, &config, metrics)?;
    Ok((config, sites, egress))
}

/// Access-log lines gathered in memory and written to stdout in batches
/// (every 100 ms, at 64 KiB, and at exit) instead of one write per request.
#[derive(Default)]
struct LogBuffer(std::sync::Mutex<Vec<u8>>);

/// A batch is written once it reaches this size.
const LOG_BATCH: usize = 64 * 1024;

impl LogBuffer {
    fn push(&self, line: &[u8]) {
        let mut b = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        b.extend_from_slice(line);
        if b.len() >= LOG_BATCH {
            // Written under the lock, so batches keep their order.
            let _ = std::io::stdout().lock().write_all(&b);
            b.clear();
        }
    }

    fn flush(&self) {
        let mut b = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !b.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&b);
            let _ = out.flush();
            b.clear();
        }
    }
}

/// One JSON line per request on stdout (`ts` first, then the record's
/// fields), batched by `buffer`, which a thread flushes every 100 ms; and,
/// with a store, the event of each report/enforce request (queued, never
/// blocking the request).
fn access_log(
    buffer: std::sync::Arc<LogBuffer>,
    events: Option<super::live::EventSink>,
) -> gateway::AccessLog {
    let flusher = buffer.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        flusher.flush();
    });
    Box::new(move |r| {
        if let Some(ev) = &events {
            ev.record(r);
        }
        let ts = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut line = Vec::with_capacity(320);
        line.extend_from_slice(b"{\"ts\":\"");
        line.extend_from_slice(ts.as_bytes());
        line.extend_from_slice(b"\",");
        let start = line.len();
        if serde_json::to_writer(&mut line, r).is_err() || line.get(start) != Some(&b'{') {
            return;
        }
        // The record's own `{` becomes the separator after `ts`.
        line.remove(start);
        line.push(b'\n');
        buffer.push(&line);
    })
}

/// Validates the gateway configuration and its `[agent]` section together
/// (every problem of both listed), without reading the files they name.
fn agent_section(path: &Path) -> anyhow::Result<Option<agent::config::AgentConfig>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let gw = Config::parse(&text, base);
    let state = match &gw {
        Ok(c) => c
            .data_dir
            .clone()
            .unwrap_or_else(|| base.join("portcullis-data"))
            .join("agent"),
        Err(_) => base.join("portcullis-data/agent"),
    };
    let ag = agent::config::AgentConfig::from_gateway(&text, base, &state);
    match (gw, ag) {
        (Ok(_), Ok(None)) => Ok(None),
        (Ok(_), Ok(Some(a))) => {
            let mem = a.memory_only();
            if !mem.is_empty() {
                anyhow::bail!(
                    "{}: agent.certificate {} keep keys in memory (socket); the gateway reads files: give key and cert",
                    path.display(),
                    mem.join(", ")
                );
            }
            Ok(Some(a))
        }
        (g, a) => {
            let mut all = Vec::new();
            if let Err(e) = g {
                all.extend(e.0);
            }
            if let Err(e) = a {
                all.extend(e.0);
            }
            Err(gateway::config::ConfigErrors(all)).with_context(|| format!("{}", path.display()))
        }
    }
}

/// Starts the in-process agent: certificates that are missing are obtained
/// before the gateway reads its files (an error if the CA cannot give
/// them); due ones are renewed, and a failure there only warns (the loop
/// retries with backoff while the current certificate serves).
async fn start_agent(cfg: agent::config::AgentConfig) -> anyhow::Result<()> {
    let n = cfg.certificates.len();
    let agent = std::sync::Arc::new(
        agent::Agent::new(cfg).context("agent: cannot open the agent's state")?,
    );
    let mut missing = Vec::new();
    for (name, r) in agent.once(false).await {
        if let Err(e) = r {
            let present = agent
                .config()
                .certificates
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| agent.current(c))
                .is_some();
            if present {
                eprintln!("portcullis: agent: {name}: renewal failed, retrying later: {e}");
            } else {
                missing.push(format!("{name}: {e}"));
            }
        }
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "agent: cannot obtain certificates the gateway needs:\n  - {}",
            missing.join("\n  - ")
        );
    }
    let tasks = agent.start().await.context("agent")?;
    eprintln!("portcullis: agent keeping {n} certificates");
    // The loops live as long as the process.
    tokio::spawn(async move {
        let _tasks = tasks;
        std::future::pending::<()>().await
    });
    Ok(())
}

/// Which command runs the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `portcullis serve`: one machine; the store (SQLite under the data
    /// dir, or `server.store`) must open at start.
    Serve,
    /// `portcullis gateway`: a fleet node on `server.store` (PostgreSQL);
    /// starts from its local copy when PostgreSQL is down.
    Node,
}

/// Runs the command.
pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    run_role(&a.config, Role::Serve)
}

/// Runs the gateway in `role`.
pub fn run_role(config_path: &Path, role: Role) -> anyhow::Result<()> {
    let a = ServeArgs {
        config: config_path.to_path_buf(),
    };
    let agent_cfg = agent_section(&a.config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    if let Some(cfg) = agent_cfg {
        rt.block_on(start_agent(cfg))?;
    }
    let (config, sites, egresses) = load_all(&a.config, Arc::default())?;
    if role == Role::Node && config.store.is_none() {
        anyhow::bail!(
            "{}: a fleet node needs server.store = \"postgres://…\"",
            a.config.display()
        );
    }
    rt.block_on(async move {
        // The store: `serve` needs it now; a node may start without it.
        let (store, pending) = match role {
            Role::Serve => (super::live::open_store(&config).await?, None),
            Role::Node => {
                let fast = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    super::live::open_store(&config),
                )
                .await;
                match fast {
                    Ok(Ok(s)) => (s, None),
                    Ok(Err(e)) => {
                        eprintln!("portcullis: store unavailable at start ({e:#}); serving the local copy");
                        (None, Some(()))
                    }
                    Err(_) => {
                        eprintln!("portcullis: store unavailable at start (timeout); serving the local copy");
                        (None, Some(()))
                    }
                }
            }
        };
        // `serve` with a store is also the control plane: the operator
        // token, and the management API beside /metrics on the admin
        // listener. A fleet node serves no API.
        let api_store = match (&store, role) {
            (Some(s), Role::Serve) => {
                super::control::bootstrap(s.as_ref()).await?;
                super::control::spawn_crl_refresh(s.clone());
                Some(s.clone())
            }
            _ => None,
        };
        let (store_tx, store_rx) = tokio::sync::oneshot::channel::<std::sync::Arc<dyn store::Store>>();
        let events = if store.is_some() || pending.is_some() {
            let now = store.clone();
            Some(super::live::start_events(async move {
                match now {
                    Some(s) => Some(s),
                    None => store_rx.await.ok(),
                }
            }))
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind(config.https)
            .await
            .with_context(|| format!("cannot listen on {}", config.https))?;
        let local = listener.local_addr().context("local address")?;
        let log = std::sync::Arc::new(LogBuffer::default());
        let gw = Gateway::with_options(
            Sites::default(),
            Some(access_log(log.clone(), events)),
            config.max_connections,
        );
        let layers = std::sync::Arc::new(super::live::Layers::default());
        layers.set_file(&gw, sites);
        let local_copy = if role == Role::Node { config.data_dir.as_deref() } else { None };
        let mut follower = super::live::Follower::new(layers.clone(), gw.clone(), &config, local_copy)?;
        match (store, pending) {
            (Some(s), _) => {
                if role == Role::Serve {
                    super::live::start_maintenance(s.clone());
                }
                follower
                    .sync(s.as_ref())
                    .await
                    .context("cannot load the hostnames of the store")?;
                tokio::spawn(follower.run(s));
            }
            (None, Some(())) => {
                let n = follower.load_local()?;
                eprintln!("portcullis: serving {n} hostnames from the local snapshot copy");
                tokio::spawn(super::live::follow_when_reachable(config.clone(), follower, store_tx));
            }
            (None, None) => drop(store_tx),
        }
        let hostnames = gw.sites().len();
        tracing::info!(https = %local, hostnames, "gateway listening");
        eprintln!("portcullis: gateway listening on https://{local}");
        let egress = EgressListeners::start(egresses)
            .await
            .map_err(anyhow::Error::msg)?;
        for (name, addr) in egress.local_addrs() {
            eprintln!("portcullis: egress {name:?} listening on {addr}");
        }
        let counters = egress.metrics();
        gw.metrics()
            .add_source(Box::new(move |out| counters.render(out)));
        let admin = match (config.admin, api_store) {
            (None, _) => None,
            (Some(addr), Some(store)) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (server.admin)"))?;
                let local = l.local_addr().context("local address")?;
                eprintln!(
                    "portcullis: management API on http://{local}/api/v1 (metrics on /metrics)"
                );
                let app = super::control::admin_router(store, gw.clone());
                Some(tokio::spawn(async move {
                    if let Err(e) = axum::serve(l, app).await {
                        eprintln!("portcullis: admin listener stopped: {e}");
                    }
                }))
            }
            (Some(addr), None) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (server.admin)"))?;
                let local = l.local_addr().context("local address")?;
                eprintln!("portcullis: metrics on http://{local}/metrics");
                Some(tokio::spawn(
                    gw.clone().serve_admin(l, std::future::pending()),
                ))
            }
        };
        let egress = Arc::new(tokio::sync::Mutex::new(egress));
        tokio::spawn(reload_loop(
            gw.clone(),
            layers,
            egress.clone(),
            a.config.clone(),
            config.clone(),
        ));
        // One signal stops both the gateway and the egress listeners; they
        // drain at the same time.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let drain_egress = async {
            stopped(stop_rx.clone()).await;
            egress.lock().await.shutdown().await;
        };
        tokio::join!(gw.serve(listener, stopped(stop_rx.clone())), drain_egress);
        log.flush();
        if let Some(a) = admin {
            a.abort();
        }
        Ok(())
    })
}

/// What a watched file looked like: modification time and length (`None`
/// when it cannot be read, which is a change too when it reappears).
type Stamp = Vec<(PathBuf, Option<(std::time::SystemTime, u64)>)>;

/// The config file and every file it names.
fn watched(path: &Path, config: &Config) -> Vec<PathBuf> {
    let mut v = vec![path.to_path_buf()];
    v.extend(config.files().into_iter().map(Path::to_path_buf));
    v
}

fn stamp(paths: &[PathBuf]) -> Stamp {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (p.clone(), m)
        })
        .collect()
}

/// How often the config file and the files it names are checked for
/// changes.
const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Reloads on SIGHUP, and when the config file or a file it names (CA
/// PEMs, CRLs, certificates, keys) changes (modification time or length,
/// checked every second). A reload reads and validates the config again;
/// the hostnames are swapped if it is valid, the running ones kept (and
/// the reason printed) if not. Open connections are never dropped. The
/// listen address and the connection limit cannot change without a
/// restart. Egress listeners get the new certificates for new connections;
/// one whose address, mode or limit changed is rebound.
async fn reload_loop(
    gw: std::sync::Arc<Gateway>,
    layers: std::sync::Arc<super::live::Layers>,
    egress: Arc<tokio::sync::Mutex<EgressListeners>>,
    path: PathBuf,
    running: Config,
) {
    #[cfg(unix)]
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(_) => {
            tracing::warn!("cannot install the SIGHUP handler; reload on file change only");
            None
        }
    };
    let mut files = watched(&path, &running);
    let mut seen = stamp(&files);
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hup_recv = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup_recv = std::future::pending::<Option<()>>();
        let why = tokio::select! {
            r = hup_recv => match r {
                Some(()) => "SIGHUP",
                None => return,
            },
            _ = tick.tick() => {
                let list = files.clone();
                let now = match tokio::task::spawn_blocking(move || stamp(&list)).await {
                    Ok(s) => s,
                    Err(_) => continue,
                };
                if now == seen {
                    continue;
                }
                "a file changed"
            }
        };
        // Stamped before reading, so a change during the load is seen on
        // the next tick.
        let list = files.clone();
        let before = tokio::task::spawn_blocking(move || stamp(&list))
            .await
            .unwrap_or_default();
        let p = path.clone();
        let counters = egress.lock().await.metrics();
        match tokio::task::spawn_blocking(move || load_all(&p, counters)).await {
            Ok(Ok((config, sites, egresses))) => {
                if config.https != running.https {
                    eprintln!(
                        "portcullis: server.https changed to {}; still listening on {} until a restart",
                        config.https, running.https
                    );
                }
                if config.max_connections != running.max_connections {
                    eprintln!(
                        "portcullis: server.max_connections changed to {}; still {} until a restart",
                        config.max_connections, running.max_connections
                    );
                }
                let n = sites.len();
                layers.set_file(&gw, sites);
                let e = egresses.len();
                for problem in egress.lock().await.apply(egresses).await {
                    eprintln!("portcullis: {problem}");
                }
                tracing::info!(hostnames = n, egress = e, why, "configuration reloaded");
                eprintln!("portcullis: configuration reloaded ({why}; {n} hostnames, {e} egress)");
                let new_files = watched(&path, &config);
                seen = if new_files == files {
                    before
                } else {
                    files = new_files;
                    let list = files.clone();
                    tokio::task::spawn_blocking(move || stamp(&list))
                        .await
                        .unwrap_or_default()
                };
            }
            Ok(Err(e)) => {
                // Not retried until something changes again.
                seen = before;
                eprintln!(
                    "portcullis: reload refused ({why}), the running configuration stays: {e:#}"
                );
            }
            Err(e) => {
                seen = before;
                eprintln!("portcullis: reload failed: {e}");
            }
        }
    }
}

/// SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}
