//! `portcullis serve --config FILE`: load and validate the configuration
//! (every problem listed, before any port is bound), then run the gateway
//! until SIGTERM or Ctrl-C, draining open connections.
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
        Gateway::new(sites).serve(listener, shutdown_signal()).await;
        Ok(())
    })
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
