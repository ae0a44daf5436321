//! `portcullis serve --config FILE`: load and validate the configuration
//! (every problem listed, before any port is bound), then run the gateway
//! until SIGTERM or Ctrl-C, draining open connections. SIGHUP, or a change
//! to the config file or a file it names, reloads the configuration (all or
//! nothing). One JSON access-log line per request goes to stdout.
//! `server.admin`, when set, serves `GET /metrics`. `[[egress]]` listeners
//! (docs/egress.md) start with the gateway and reload with it.
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

/// One JSON line per request on stdout.
fn access_log() -> gateway::AccessLog {
    Box::new(|r| {
        let Ok(mut v) = serde_json::to_value(r) else {
            return;
        };
        let ts = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        v["ts"] = serde_json::Value::from(ts);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
    })
}

/// Runs the command.
pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let (config, sites, egresses) = load_all(&a.config, Arc::default())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.https)
            .await
            .with_context(|| format!("cannot listen on {}", config.https))?;
        let local = listener.local_addr().context("local address")?;
        tracing::info!(https = %local, hostnames = sites.len(), "gateway listening");
        eprintln!("portcullis: gateway listening on https://{local}");
        let egress = EgressListeners::start(egresses)
            .await
            .map_err(anyhow::Error::msg)?;
        for (name, addr) in egress.local_addrs() {
            eprintln!("portcullis: egress {name:?} listening on {addr}");
        }
        let gw = Gateway::with_options(sites, Some(access_log()), config.max_connections);
        let counters = egress.metrics();
        gw.metrics()
            .add_source(Box::new(move |out| counters.render(out)));
        let admin = match config.admin {
            None => None,
            Some(addr) => {
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
                gw.replace_sites(sites);
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
