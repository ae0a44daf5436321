//! Post-renewal hooks: run a command, or signal a process.

use std::time::Duration;

use crate::config::{Hook, PidSource};
use crate::error::{AgentError, Result};

/// How long a hook command may run.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the hook of certificate `name`.
pub async fn run(name: &str, hook: &Hook) -> Result<()> {
    match hook {
        Hook::Command(argv) => {
            let mut cmd = tokio::process::Command::new(&argv[0]);
            cmd.args(&argv[1..])
                .env("PORTCULLIS_AGENT_CERTIFICATE", name)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true);
            let mut child = cmd
                .spawn()
                .map_err(|e| AgentError::Hook(format!("cannot start {:?}: {e}", argv[0])))?;
            match tokio::time::timeout(HOOK_TIMEOUT, child.wait()).await {
                Ok(Ok(s)) if s.success() => Ok(()),
                Ok(Ok(s)) => Err(AgentError::Hook(format!("{:?} exited with {s}", argv[0]))),
                Ok(Err(e)) => Err(AgentError::Hook(format!("{:?}: {e}", argv[0]))),
                Err(_) => Err(AgentError::Hook(format!(
                    "{:?} still running after {}s; killed",
                    argv[0],
                    HOOK_TIMEOUT.as_secs()
                ))),
            }
        }
        Hook::Signal { signal, target } => {
            let pid = match target {
                PidSource::Pid(p) => *p,
                PidSource::File(f) => {
                    let text = tokio::fs::read_to_string(f)
                        .await
                        .map_err(|e| AgentError::Hook(format!("{}: {e}", f.display())))?;
                    text.trim().parse::<i32>().map_err(|_| {
                        AgentError::Hook(format!("{} does not hold a pid", f.display()))
                    })?
                }
            };
            send(pid, signal)
        }
    }
}

#[cfg(unix)]
fn send(pid: i32, signal: &str) -> Result<()> {
    use rustix::process::{kill_process, Pid, Signal};
    let sig = match signal {
        "HUP" => Signal::HUP,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        "TERM" => Signal::TERM,
        "INT" => Signal::INT,
        "QUIT" => Signal::QUIT,
        other => return Err(AgentError::Hook(format!("unknown signal {other}"))),
    };
    let p = Pid::from_raw(pid)
        .filter(|_| pid > 1)
        .ok_or_else(|| AgentError::Hook(format!("{pid} is not a process id above 1")))?;
    kill_process(p, sig).map_err(|e| AgentError::Hook(format!("signal {signal} to {pid}: {e}")))
}

#[cfg(not(unix))]
fn send(_pid: i32, _signal: &str) -> Result<()> {
    Err(AgentError::Hook("signals need Unix".into()))
}
