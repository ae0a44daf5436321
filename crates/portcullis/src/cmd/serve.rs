//! `portcullis serve --config FILE`: load and validate the configuration
//! (every problem listed, before any port is bound), then run the gateway
//! until SIGTERM or Ctrl-C, draining open connections. SIGHUP reloads the
//! configuration (all or nothing). One JSON access-log line per request
//! goes to stdout. `server.admin`, when set, serves `GET /metrics`.
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
        let gw = Gateway::with_options(sites, Some(access_log()), config.max_connections);
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
        tokio::spawn(reload_on_sighup(
            gw.clone(),
            a.config.clone(),
            config.clone(),
        ));
        gw.serve(listener, shutdown_signal()).await;
        if let Some(a) = admin {
            a.abort();
        }
        Ok(())
    })
}

/// SIGHUP: read and validate the config again; swap the hostnames if it is
/// valid, keep the running ones (and say why) if not. Open connections are
/// never dropped. The listen address cannot change without a restart.
async fn reload_on_sighup(gw: std::sync::Arc<Gateway>, path: PathBuf, running: Config) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot install the SIGHUP handler; reload disabled");
            return;
        };
        while hup.recv().await.is_some() {
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
                    tracing::info!(hostnames = n, "configuration reloaded");
                    eprintln!("portcullis: configuration reloaded ({n} hostnames)");
                }
                Ok(Err(e)) => {
                    eprintln!("portcullis: reload refused, the running configuration stays: {e:#}");
                }
                Err(e) => eprintln!("portcullis: reload failed: {e}"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (gw, path, running);
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
