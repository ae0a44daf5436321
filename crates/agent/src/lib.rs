//! The Portcullis agent: certificates where they are used.
//!
//! For each configured certificate the agent makes a fresh private key on
//! this machine, sends only a CSR to the CA (CFSSL `authsign`), stores the
//! result atomically (files, see [`store`], or memory plus a Unix socket,
//! see [`socket`]) and renews it at a configured fraction of its lifetime,
//! with jitter, backing off exponentially while the CA fails. After each
//! renewal it runs a hook (command or signal). A small state file feeds
//! `portcullis agent status`; Prometheus metrics are optional.
//!
//! ```no_run
//! # async fn f() -> Result<(), agent::AgentError> {
//! let text = std::fs::read_to_string("agent.toml").unwrap_or_default();
//! let cfg = agent::config::AgentConfig::parse(&text, std::path::Path::new("."))?;
//! let agent = std::sync::Arc::new(agent::Agent::new(cfg)?);
//! for (name, r) in agent.once(false).await {
//!     println!("{name}: {:?}", r.map(|o| o.renewed()));
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod hook;
pub mod issue;
pub mod metrics;
#[cfg(unix)]
pub mod socket;
pub mod state;
pub mod store;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

pub use error::{AgentError, Result};

use config::{AgentConfig, CertificateConfig, Output};
use issue::CertFacts;
use metrics::Metrics;
use state::StateFile;
use store::Issued;

/// What one pass did for a certificate.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// A new certificate was obtained and stored.
    Renewed(CertFacts),
    /// The current certificate is not due yet.
    NotDue {
        /// The current certificate.
        current: CertFacts,
        /// When it becomes due.
        due: SystemTime,
    },
}

impl Outcome {
    /// Whether a certificate was obtained.
    pub fn renewed(&self) -> bool {
        matches!(self, Outcome::Renewed(_))
    }
}

/// A uniform random number in [0, 1).
fn rand01() -> f64 {
    let mut b = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// When a certificate is due: `renew_at` of its lifetime, minus `r` (0..1)
/// times `jitter` of its lifetime.
pub fn renewal_time(c: &CertificateConfig, f: &CertFacts, r: f64) -> SystemTime {
    let life = f
        .not_after
        .duration_since(f.not_before)
        .unwrap_or(Duration::ZERO);
    let frac = (c.renew_at - c.jitter * r.clamp(0.0, 1.0)).max(0.0);
    f.not_before + life.mul_f64(frac)
}

/// The delay before retry number `n` (1, 2, …): `retry_min` doubled each
/// time, capped at `retry_max`, then scaled by a random factor in
/// [0.5, 1) so that many agents do not retry in step.
pub fn backoff(c: &CertificateConfig, n: u32, r: f64) -> Duration {
    let exp = 2f64.powi(i32::try_from(n.saturating_sub(1).min(30)).unwrap_or(30));
    let d = c.retry_min.mul_f64(exp).min(c.retry_max);
    d.mul_f64(0.5 + 0.5 * r.clamp(0.0, 1.0))
}

/// The agent: its configuration, state file, metrics and in-memory slots.
pub struct Agent {
    cfg: AgentConfig,
    state: StateFile,
    metrics: Arc<Metrics>,
    slots: HashMap<String, Arc<RwLock<Option<Arc<Issued>>>>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Opens the state directory; completes the links of certificates
    /// already on disk (an interrupted first install).
    pub fn new(cfg: AgentConfig) -> Result<Self> {
        let state = StateFile::open(&cfg.state_dir)?;
        let metrics = Arc::new(Metrics::new(
            cfg.certificates.iter().map(|c| c.name.as_str()),
        ));
        let mut slots = HashMap::new();
        for c in &cfg.certificates {
            match &c.output {
                Output::Memory { .. } => {
                    slots.insert(c.name.clone(), Arc::new(RwLock::new(None)));
                }
                Output::Files(out) => {
                    let dir = store::cert_dir(&cfg.state_dir, &c.name);
                    if store::current_cert(&dir).is_some() {
                        store::link_outputs(&dir, out)?;
                    }
                }
            }
        }
        let agent = Agent {
            cfg,
            state,
            metrics,
            slots,
        };
        for c in &agent.cfg.certificates {
            if let Some(f) = agent.current(c) {
                agent.metrics.current(&c.name, f.not_after);
            }
        }
        Ok(agent)
    }

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.cfg
    }

    /// The metrics (for an embedding process's own listener).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The certificate in place now, if any. Its `not_before` is moved up
    /// to when the agent obtained it: CAs backdate notBefore (ours by 5
    /// minutes by default), which would otherwise stretch the lifetime the
    /// renewal point is computed on.
    pub fn current(&self, c: &CertificateConfig) -> Option<CertFacts> {
        let (pem, obtained) = match &c.output {
            Output::Files(_) => {
                let dir = store::cert_dir(&self.cfg.state_dir, &c.name);
                (store::current_cert(&dir)?, store::current_obtained(&dir))
            }
            Output::Memory { .. } => {
                let g = self.slots.get(&c.name)?.read().ok()?;
                let i = g.as_ref()?;
                (i.cert_pem.clone(), Some(i.obtained))
            }
        };
        let mut f = issue::facts(&pem).ok()?;
        if let Some(t) = obtained {
            f.not_before = f.not_before.max(t.min(f.not_after));
        }
        Some(f)
    }

    /// Obtains and stores a new certificate now, then runs the hook. The
    /// result is recorded in the state file and the metrics either way.
    pub async fn renew(&self, c: &CertificateConfig) -> Result<CertFacts> {
        let r = self.obtain_and_store(c).await;
        match &r {
            Ok(f) => {
                self.metrics.success(&c.name, f.not_after);
                let hook_error = match &c.hook {
                    None => None,
                    Some(h) => hook::run(&c.name, h).await.err().map(|e| {
                        tracing::warn!(certificate = %c.name, error = %e, "post-renewal hook failed");
                        e.to_string()
                    }),
                };
                tracing::info!(certificate = %c.name, serial = %f.serial, subject = %f.subject,
                    "certificate obtained");
                if let Err(e) = self.state.success(&c.name, f, hook_error) {
                    tracing::warn!(error = %e, "cannot write the state file");
                }
            }
            Err(e) => {
                self.metrics.failure(&c.name);
                tracing::warn!(certificate = %c.name, error = %e, "cannot obtain a certificate");
                if let Err(e) = self.state.failure(&c.name, &e.to_string()) {
                    tracing::warn!(error = %e, "cannot write the state file");
                }
            }
        }
        r
    }

    async fn obtain_and_store(&self, c: &CertificateConfig) -> Result<CertFacts> {
        let (issued, facts) = issue::obtain(c).await?;
        match &c.output {
            Output::Files(out) => {
                let dir = store::cert_dir(&self.cfg.state_dir, &c.name);
                let out = out.clone();
                tokio::task::spawn_blocking(move || store::install(&dir, &out, &issued))
                    .await
                    .map_err(|e| AgentError::Refused(format!("install task: {e}")))??;
            }
            Output::Memory { .. } => {
                let slot = self
                    .slots
                    .get(&c.name)
                    .ok_or_else(|| AgentError::Refused("no in-memory slot".into()))?;
                let mut g = slot
                    .write()
                    .map_err(|_| AgentError::Refused("slot lock poisoned".into()))?;
                *g = Some(Arc::new(issued));
            }
        }
        Ok(facts)
    }

    /// One pass: every certificate that is missing or due (all of them with
    /// `force`) is obtained now. In-memory certificates are refused (they
    /// would vanish with the process).
    pub async fn once(&self, force: bool) -> Vec<(String, Result<Outcome>)> {
        let mut out = Vec::new();
        for c in &self.cfg.certificates {
            let r = if matches!(c.output, Output::Memory { .. }) {
                Err(AgentError::Refused(
                    "in-memory certificates need the long-running agent (no --once)".into(),
                ))
            } else {
                match self.current(c) {
                    Some(f) if !force => {
                        let due = renewal_time(c, &f, rand01());
                        if SystemTime::now() < due {
                            Ok(Outcome::NotDue { current: f, due })
                        } else {
                            self.renew(c).await.map(Outcome::Renewed)
                        }
                    }
                    _ => self.renew(c).await.map(Outcome::Renewed),
                }
            };
            out.push((c.name.clone(), r));
        }
        out
    }

    /// Binds the metrics listener and the in-memory sockets (an error here
    /// is returned before anything runs), then spawns the renewal loops.
    /// The tasks stop when the returned set is dropped.
    pub async fn start(self: Arc<Self>) -> Result<tokio::task::JoinSet<()>> {
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(addr) = self.cfg.metrics {
            let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                AgentError::Refused(format!("cannot listen on {addr} (metrics): {e}"))
            })?;
            tasks.spawn(self.metrics.clone().serve(l));
        }
        for c in &self.cfg.certificates {
            if let Output::Memory { socket } = &c.output {
                #[cfg(unix)]
                {
                    let l = socket::bind(socket)?;
                    let slot = self.slots.get(&c.name).cloned().unwrap_or_default();
                    tasks.spawn(socket::serve(c.name.clone(), l, slot));
                }
                #[cfg(not(unix))]
                return Err(AgentError::Refused(format!(
                    "{}: in-memory mode needs Unix sockets",
                    socket.display()
                )));
            }
        }
        for i in 0..self.cfg.certificates.len() {
            tasks.spawn(self.clone().keep(i));
        }
        Ok(tasks)
    }

    /// [`Agent::start`], then keeps every certificate renewed until
    /// `shutdown` completes; removes the in-memory sockets on the way out.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) -> Result<()> {
        let mut tasks = self.clone().start().await?;
        shutdown.await;
        tasks.abort_all();
        for c in &self.cfg.certificates {
            if let Output::Memory { socket } = &c.output {
                let _ = std::fs::remove_file(socket);
            }
        }
        Ok(())
    }

    /// The renewal loop of one certificate.
    async fn keep(self: Arc<Self>, i: usize) {
        let Some(c) = self.cfg.certificates.get(i) else {
            return;
        };
        // Longest single sleep: the wall clock is looked at again after it
        // (a suspended machine wakes up to a due certificate).
        const NAP: Duration = Duration::from_secs(30);
        let mut failures: u32 = 0;
        let mut planned: Option<(String, SystemTime)> = None;
        loop {
            let now = SystemTime::now();
            let wait = if failures > 0 {
                backoff(c, failures, rand01())
            } else {
                match self.current(c) {
                    None => Duration::ZERO,
                    Some(f) => {
                        let due = match &planned {
                            Some((serial, due)) if *serial == f.serial => *due,
                            _ => {
                                let due = renewal_time(c, &f, rand01());
                                planned = Some((f.serial.clone(), due));
                                due
                            }
                        };
                        let left = due.duration_since(now).unwrap_or(Duration::ZERO);
                        if left > NAP {
                            tokio::time::sleep(NAP).await;
                            continue;
                        }
                        left
                    }
                }
            };
            tokio::time::sleep(wait).await;
            let span =
                tracing::info_span!("renewal", certificate = %c.name, attempt = failures + 1);
            match tracing::Instrument::instrument(self.renew(c), span).await {
                Ok(_) => failures = 0,
                Err(_) => failures = failures.saturating_add(1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> CertificateConfig {
        let text = "[[certificate]]\nname = \"a\"\ncsr = { CN = \"a\" }\nremote = \"127.0.0.1:1\"\n\
                    auth_key = \"00\"\nbundle = \"b.pem\"\nretry_min = \"1s\"\nretry_max = \"10s\"\n";
        config::AgentConfig::parse(text, std::path::Path::new("/"))
            .expect("valid")
            .certificates
            .remove(0)
    }

    #[test]
    fn renewal_point_and_jitter() {
        let c = cert();
        let nb = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let f = CertFacts {
            subject: String::new(),
            serial: String::new(),
            not_before: nb,
            not_after: nb + Duration::from_secs(120),
            spki: vec![],
        };
        assert_eq!(renewal_time(&c, &f, 0.0), nb + Duration::from_secs(80));
        let late = renewal_time(&c, &f, 0.999_999);
        assert!(late < nb + Duration::from_secs(80) && late >= nb + Duration::from_secs(68));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = cert();
        assert_eq!(backoff(&c, 1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(&c, 2, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(&c, 4, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(&c, 5, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(&c, 500, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(&c, 500, 0.0), Duration::from_secs(5));
    }
}
