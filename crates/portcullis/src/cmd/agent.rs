//! `portcullis agent`: keys made here, certificates from the CA, renewed
//! before they expire (see docs/agent.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use agent::config::AgentConfig;
use agent::{Agent, Outcome};
use anyhow::Context as _;

/// Obtain and renew certificates where they are used.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
    /// Agent configuration (TOML); relative paths in it are relative to
    /// the file's directory.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Obtain or renew whatever is missing or due, then exit: 0 when every
    /// certificate is in place and not due, 1 otherwise. Prints JSON.
    #[arg(long)]
    pub once: bool,
    /// With --once: renew every certificate now, due or not.
    #[arg(long, requires = "once")]
    pub force: bool,
}

/// Agent subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AgentCommand {
    /// Each certificate's subject, expiry and last renewal result (JSON),
    /// from the agent's state file. Needs no secrets and no running agent.
    Status {
        /// Agent configuration (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn base(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads and validates an agent file.
pub fn load(path: &Path) -> anyhow::Result<AgentConfig> {
    let text = read(path)?;
    AgentConfig::parse(&text, base(path)).with_context(|| format!("{}", path.display()))
}

fn rfc3339(unix: i64) -> serde_json::Value {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map(Into::into)
        .unwrap_or(serde_json::Value::Null)
}

fn unix(t: std::time::SystemTime) -> i64 {
    agent::state::unix(t)
}

/// Runs the command.
pub fn main(a: AgentArgs) -> ExitCode {
    match a.command {
        Some(AgentCommand::Status { config }) => super::exit(status(&config)),
        None => {
            let Some(config) = a.config else {
                eprintln!("error: give --config FILE (or `portcullis agent status --config FILE`)");
                return ExitCode::from(2);
            };
            match run(&config, a.once, a.force) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => super::exit(Err(e)),
            }
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")
}

fn run(path: &Path, once: bool, force: bool) -> anyhow::Result<bool> {
    let cfg = load(path)?;
    if once {
        let mem = cfg.memory_only();
        if !mem.is_empty() {
            anyhow::bail!(
                "{}: --once cannot keep in-memory certificates ({}); run the agent without --once",
                path.display(),
                mem.join(", ")
            );
        }
    }
    let agent = Arc::new(Agent::new(cfg).context("cannot open the agent's state")?);
    let rt = runtime()?;
    if once {
        let results = rt.block_on(agent.once(force));
        let mut ok = true;
        let mut rows = Vec::new();
        for (name, r) in results {
            rows.push(match r {
                Ok(Outcome::Renewed(f)) => {
                    eprintln!("portcullis agent: {name}: obtained serial {}", f.serial);
                    serde_json::json!({"name": name, "result": "renewed", "serial": f.serial,
                        "subject": f.subject, "not_after": rfc3339(unix(f.not_after))})
                }
                Ok(Outcome::NotDue { current, due }) => serde_json::json!({
                    "name": name, "result": "not_due", "serial": current.serial,
                    "subject": current.subject, "not_after": rfc3339(unix(current.not_after)),
                    "due": rfc3339(unix(due))}),
                Err(e) => {
                    ok = false;
                    eprintln!("error: {name}: {e}");
                    serde_json::json!({"name": name, "result": "failure", "error": e.to_string()})
                }
            });
        }
        println!("{}", serde_json::json!({ "certificates": rows }));
        return Ok(ok);
    }
    let n = agent.config().certificates.len();
    eprintln!(
        "portcullis agent: keeping {n} certificate{} (state in {})",
        if n == 1 { "" } else { "s" },
        agent.config().state_dir.display()
    );
    if let Some(m) = agent.config().metrics {
        eprintln!("portcullis agent: metrics on http://{m}/metrics");
    }
    rt.block_on(agent.run(super::serve::shutdown_signal()))?;
    Ok(true)
}

fn status(path: &Path) -> anyhow::Result<()> {
    let text = read(path)?;
    let (dir, names) =
        AgentConfig::locate(&text, base(path)).with_context(|| format!("{}", path.display()))?;
    let states = agent::state::StateFile::read(&dir)?;
    let now = unix(std::time::SystemTime::now());
    let rows: Vec<_> = names
        .iter()
        .map(|n| {
            let s = states.get(n).cloned().unwrap_or_default();
            let has = s.not_after != 0;
            serde_json::json!({
                "name": n,
                "subject": s.subject,
                "serial": s.serial,
                "not_before": if has { rfc3339(s.not_before) } else { serde_json::Value::Null },
                "not_after": if has { rfc3339(s.not_after) } else { serde_json::Value::Null },
                "seconds_to_expiry": if has { (s.not_after - now).into() } else { serde_json::Value::Null },
                "expired": has && s.not_after <= now,
                "last_result": if s.last_result.is_empty() { serde_json::Value::Null } else { s.last_result.clone().into() },
                "last_error": s.last_error,
                "last_attempt": if s.last_attempt != 0 { rfc3339(s.last_attempt) } else { serde_json::Value::Null },
                "last_success": if s.last_success != 0 { rfc3339(s.last_success) } else { serde_json::Value::Null },
                "hook_error": s.hook_error,
                "successes": s.successes,
                "failures": s.failures,
            })
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({ "state_dir": dir, "certificates": rows })
    );
    Ok(())
}
