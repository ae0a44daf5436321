//! `portcullis serve --config FILE`: load and validate the configuration
//! (every problem listed, before any port is bound), then run the gateway
//! until SIGTERM or Ctrl-C, draining open connections. SIGHUP, or a change
//! to the config file or a file it names, reloads the configuration (all or
//! nothing). One JSON access-log line per request goes to stdout.
//! `server.admin`, when set, serves `GET /metrics`.
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use gateway::config::Config;
use gateway::{Gateway, Sites};

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
/// fields), batched by `buffer`, which a thread flushes every 100 ms.
fn access_log(buffer: std::sync::Arc<LogBuffer>) -> gateway::AccessLog {
    let flusher = buffer.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        flusher.flush();
    });
    Box::new(move |r| {
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

/// Runs the command.
pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let (config, sites) = load(&a.config)?;
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
        let log = std::sync::Arc::new(LogBuffer::default());
        let gw =
            Gateway::with_options(sites, Some(access_log(log.clone())), config.max_connections);
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
        tokio::spawn(reload_loop(gw.clone(), a.config.clone(), config.clone()));
        gw.serve(listener, shutdown_signal()).await;
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
/// restart.
async fn reload_loop(gw: std::sync::Arc<Gateway>, path: PathBuf, running: Config) {
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
        match tokio::task::spawn_blocking(move || load(&p)).await {
            Ok(Ok((config, sites))) => {
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
                tracing::info!(hostnames = n, why, "configuration reloaded");
                eprintln!("portcullis: configuration reloaded ({why}; {n} hostnames)");
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
