//! The agent's small state file (`<state_dir>/state.json`): per
//! certificate, what was issued last and how the last attempt went. It is
//! what `portcullis agent status` prints; it never holds a key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{AgentError, Result};
use crate::issue::CertFacts;

/// One certificate's record.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertState {
    /// Subject of the current certificate (RFC 4514).
    #[serde(default)]
    pub subject: String,
    /// Its serial, lowercase hex.
    #[serde(default)]
    pub serial: String,
    /// Validity start, Unix seconds.
    #[serde(default)]
    pub not_before: i64,
    /// Validity end, Unix seconds.
    #[serde(default)]
    pub not_after: i64,
    /// `success` or `failure` (empty before the first attempt).
    #[serde(default)]
    pub last_result: String,
    /// The last failure's message (kept after a later success is cleared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Unix seconds of the last attempt.
    #[serde(default)]
    pub last_attempt: i64,
    /// Unix seconds of the last successful issuance.
    #[serde(default)]
    pub last_success: i64,
    /// The post-renewal hook's last failure, if the last one failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_error: Option<String>,
    /// Successful issuances recorded (all runs).
    #[serde(default)]
    pub successes: u64,
    /// Failed attempts recorded (all runs).
    #[serde(default)]
    pub failures: u64,
}

/// Unix seconds of a time.
pub fn unix(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The state file, shared by the renewal loops of one process.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    map: Mutex<BTreeMap<String, CertState>>,
}

impl StateFile {
    /// The file path in a state directory.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("state.json")
    }

    /// Reads the file (missing: empty; unreadable JSON: an error).
    pub fn read(state_dir: &Path) -> Result<BTreeMap<String, CertState>> {
        let path = Self::path_in(state_dir);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                AgentError::Refused(format!("{}: not a state file: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(AgentError::io(path, e)),
        }
    }

    /// Opens (or starts) the state of a directory.
    pub fn open(state_dir: &Path) -> Result<Self> {
        crate::store::private_dir(state_dir)?;
        let map = Self::read(state_dir).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "starting with an empty state");
            BTreeMap::new()
        });
        Ok(StateFile {
            path: Self::path_in(state_dir),
            map: Mutex::new(map),
        })
    }

    /// One certificate's record.
    pub fn get(&self, name: &str) -> CertState {
        self.map
            .lock()
            .map(|m| m.get(name).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut CertState)) -> Result<()> {
        let text = {
            let mut m = self
                .map
                .lock()
                .map_err(|_| AgentError::Refused("state lock poisoned".into()))?;
            f(m.entry(name.to_string()).or_default());
            serde_json::to_vec_pretty(&*m)
                .map_err(|e| AgentError::Refused(format!("state: {e}")))?
        };
        crate::store::write_atomic(&self.path, &text, false)
    }

    /// Records a successful issuance.
    pub fn success(&self, name: &str, f: &CertFacts, hook_error: Option<String>) -> Result<()> {
        let now = unix(SystemTime::now());
        self.update(name, |s| {
            s.subject = f.subject.clone();
            s.serial = f.serial.clone();
            s.not_before = unix(f.not_before);
            s.not_after = unix(f.not_after);
            s.last_result = "success".into();
            s.last_error = None;
            s.last_attempt = now;
            s.last_success = now;
            s.hook_error = hook_error;
            s.successes += 1;
        })
    }

    /// Records a failed attempt.
    pub fn failure(&self, name: &str, error: &str) -> Result<()> {
        let now = unix(SystemTime::now());
        self.update(name, |s| {
            s.last_result = "failure".into();
            s.last_error = Some(error.to_string());
            s.last_attempt = now;
            s.failures += 1;
        })
    }
}
