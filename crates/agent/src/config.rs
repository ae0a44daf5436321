//! The agent configuration: raw TOML types (what was typed, unknown keys
//! refused) and the validated [`AgentConfig`] (what will run). Validation
//! lists every problem at once. The same table is read from an agent file
//! (`portcullis agent --config`) or from the `[agent]` section of a
//! gateway configuration.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pki::config::{AuthKey, AuthKeyFile};
use pki::csr_spec::CsrSpec;
use serde::Deserialize;

/// Default point of the lifetime at which a certificate is renewed.
pub const DEFAULT_RENEW_AT: f64 = 2.0 / 3.0;
/// Default random jitter, as a fraction of the lifetime, taken off the
/// renewal point.
pub const DEFAULT_JITTER: f64 = 0.1;
/// Default first retry delay while the CA is failing.
pub const DEFAULT_RETRY_MIN: Duration = Duration::from_secs(1);
/// Default cap of the retry delay.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(300);

/// Raw agent table (top level of an agent file, `[agent]` in a gateway file).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    state_dir: Option<String>,
    metrics: Option<String>,
    #[serde(default)]
    certificate: Vec<RawCertificate>,
}

/// Raw `[[certificate]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificate {
    name: String,
    /// A CSR JSON file path, or an inline table in CFSSL's CSR JSON shape.
    csr: Option<toml::Value>,
    remote: Option<String>,
    #[serde(default)]
    profile: String,
    auth_key: Option<String>,
    key: Option<String>,
    cert: Option<String>,
    chain: Option<String>,
    bundle: Option<String>,
    socket: Option<String>,
    renew_at: Option<f64>,
    jitter: Option<f64>,
    retry_min: Option<String>,
    retry_max: Option<String>,
    hook: Option<RawHook>,
}

/// Raw `[certificate.hook]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    command: Option<Vec<String>>,
    signal: Option<String>,
    pid: Option<i64>,
    pidfile: Option<String>,
}

/// Where a certificate goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// On disk: each path is a symbolic link into the agent's current
    /// generation directory (see [`crate::store`]).
    Files(FileOutputs),
    /// Only in memory; handed out on a Unix socket (mode 0600).
    Memory {
        /// The socket path.
        socket: PathBuf,
    },
}

/// The files of a certificate; at least `key` + `cert`, or `bundle`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileOutputs {
    /// Private key, PKCS#8 PEM, mode 0600.
    pub key: Option<PathBuf>,
    /// The leaf certificate, PEM.
    pub cert: Option<PathBuf>,
    /// The issuing CA certificate(s), PEM.
    pub chain: Option<PathBuf>,
    /// Key, leaf and CA in one file, mode 0600.
    pub bundle: Option<PathBuf>,
}

/// A process to signal after a renewal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PidSource {
    /// A fixed pid.
    Pid(i32),
    /// A file holding the pid, read at each renewal.
    File(PathBuf),
}

/// What runs after each renewal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Run this program with these arguments (no shell).
    Command(Vec<String>),
    /// Send a signal.
    Signal {
        /// Signal name without `SIG` (`HUP`, `USR1`, …).
        signal: String,
        /// Who receives it.
        target: PidSource,
    },
}

/// One validated certificate entry.
#[derive(Clone)]
pub struct CertificateConfig {
    /// Unique name (letters, digits, `.`, `_`, `-`): metric label, state key
    /// and directory name.
    pub name: String,
    /// The request: subject, hosts, key algorithm.
    pub spec: CsrSpec,
    /// CA base URL.
    pub remote: String,
    /// CA signing profile ("" is the default profile).
    pub profile: String,
    /// The authsign HMAC key.
    pub auth_key: AuthKey,
    /// Where the result goes.
    pub output: Output,
    /// Fraction of the lifetime after which to renew (0 < x < 1).
    pub renew_at: f64,
    /// Random fraction of the lifetime taken off `renew_at` (0 ≤ j < renew_at).
    pub jitter: f64,
    /// First retry delay while the CA fails.
    pub retry_min: Duration,
    /// Cap of the retry delay.
    pub retry_max: Duration,
    /// Post-renewal action.
    pub hook: Option<Hook>,
}

impl fmt::Debug for CertificateConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateConfig")
            .field("name", &self.name)
            .field("remote", &self.remote)
            .field("profile", &self.profile)
            .field("auth_key", &self.auth_key)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

/// A validated agent configuration.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Where the agent keeps its state file and certificate generations.
    pub state_dir: PathBuf,
    /// Prometheus listener.
    pub metrics: Option<SocketAddr>,
    /// The certificates.
    pub certificates: Vec<CertificateConfig>,
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid agent configuration ({} problem", self.0.len())?;
        if self.0.len() != 1 {
            f.write_str("s")?;
        }
        f.write_str("):")?;
        for p in &self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// A gateway file seen by the agent: only `[agent]` matters here, the
/// gateway validates the rest.
#[derive(Deserialize)]
struct GatewayFile {
    agent: Option<RawAgent>,
}

/// What `status` needs from a gateway file.
#[derive(Deserialize)]
struct GatewayView {
    agent: Option<RawAgent>,
    server: Option<ServerView>,
}

#[derive(Deserialize)]
struct ServerView {
    data_dir: Option<String>,
}

impl AgentConfig {
    /// Parses and validates an agent file. Relative paths are joined to
    /// `base_dir`; the default state directory is `portcullis-agent` there.
    pub fn parse(text: &str, base_dir: &Path) -> Result<AgentConfig, ConfigErrors> {
        let raw: RawAgent = toml::from_str(text)
            .map_err(|e| ConfigErrors(vec![e.to_string().trim().to_owned()]))?;
        validate(raw, base_dir, &base_dir.join("portcullis-agent"), "")
    }

    /// The `[agent]` section of a gateway file, if any. Problems are
    /// prefixed with `agent.`. `default_state_dir` is usually
    /// `<data_dir>/agent`.
    pub fn from_gateway(
        text: &str,
        base_dir: &Path,
        default_state_dir: &Path,
    ) -> Result<Option<AgentConfig>, ConfigErrors> {
        let raw: GatewayFile = toml::from_str(text)
            .map_err(|e| ConfigErrors(vec![e.to_string().trim().to_owned()]))?;
        match raw.agent {
            None => Ok(None),
            Some(a) => validate(a, base_dir, default_state_dir, "agent.").map(Some),
        }
    }

    /// The state directory and certificate names of an agent file, without
    /// validating the rest (for `status`, which needs no secrets).
    /// A gateway file is understood too (its `[agent]` section, state in
    /// `<data_dir>/agent`).
    pub fn locate(text: &str, base_dir: &Path) -> Result<(PathBuf, Vec<String>), ConfigErrors> {
        let (raw, default) = match toml::from_str::<RawAgent>(text) {
            Ok(raw) => (raw, base_dir.join("portcullis-agent")),
            Err(e) => match toml::from_str::<GatewayView>(text) {
                Ok(GatewayView {
                    agent: Some(raw),
                    server,
                }) => {
                    let data = server
                        .and_then(|s| s.data_dir)
                        .unwrap_or_else(|| "portcullis-data".into());
                    (raw, base_dir.join(data).join("agent"))
                }
                _ => return Err(ConfigErrors(vec![e.to_string().trim().to_owned()])),
            },
        };
        let dir = raw
            .state_dir
            .as_deref()
            .map(|d| base_dir.join(d))
            .unwrap_or(default);
        Ok((dir, raw.certificate.into_iter().map(|c| c.name).collect()))
    }

    /// Names of the certificates kept only in memory.
    pub fn memory_only(&self) -> Vec<&str> {
        self.certificates
            .iter()
            .filter(|c| matches!(c.output, Output::Memory { .. }))
            .map(|c| c.name.as_str())
            .collect()
    }
}

fn duration(
    at: &str,
    what: &str,
    v: &Option<String>,
    d: Duration,
    p: &mut Vec<String>,
) -> Duration {
    let Some(s) = v else { return d };
    match pki::duration::parse_go_duration(s) {
        Ok(x) if !x.is_zero() => x,
        Ok(_) => {
            p.push(format!("{at}: {what} must be positive"));
            d
        }
        Err(e) => {
            p.push(format!("{at}: {what}: {e}"));
            d
        }
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !n.starts_with('.')
}

fn validate(
    raw: RawAgent,
    base: &Path,
    default_state: &Path,
    prefix: &str,
) -> Result<AgentConfig, ConfigErrors> {
    let mut p = Vec::new();
    let state_dir = raw
        .state_dir
        .as_deref()
        .map(|d| base.join(d))
        .unwrap_or_else(|| default_state.to_path_buf());
    let metrics = raw.metrics.as_deref().and_then(|m| match m.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            p.push(format!(
                "{prefix}metrics = {m:?} is not an IP address and port (like \"127.0.0.1:9100\")"
            ));
            None
        }
    });
    if raw.certificate.is_empty() {
        p.push(format!("no [[{prefix}certificate]] is configured"));
    }
    let mut names = std::collections::HashSet::new();
    let mut sockets = std::collections::HashSet::new();
    let mut certificates = Vec::new();
    for (i, c) in raw.certificate.iter().enumerate() {
        let at = format!("{prefix}certificate[{i}] ({:?})", c.name);
        if !valid_name(&c.name) {
            p.push(format!(
                "{at}: name must be 1 to 64 letters, digits, '.', '_' or '-' (not starting with '.')"
            ));
        } else if !names.insert(c.name.clone()) {
            p.push(format!("{at}: name is used twice"));
        }
        let spec = match &c.csr {
            None => {
                p.push(format!(
                    "{at}: csr is missing (a CSR JSON file, or an inline table)"
                ));
                None
            }
            Some(toml::Value::String(file)) => {
                let path = base.join(file);
                match std::fs::read(&path) {
                    Ok(b) => match CsrSpec::from_json(&b) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            p.push(format!("{at}: csr {}: {e}", path.display()));
                            None
                        }
                    },
                    Err(e) => {
                        p.push(format!("{at}: cannot read csr {}: {e}", path.display()));
                        None
                    }
                }
            }
            Some(v @ toml::Value::Table(_)) => match v.clone().try_into::<CsrSpec>() {
                Ok(s) => match s.validate() {
                    Ok(()) => Some(s),
                    Err(e) => {
                        p.push(format!("{at}: csr: {e}"));
                        None
                    }
                },
                Err(e) => {
                    p.push(format!("{at}: csr: {}", e.to_string().trim()));
                    None
                }
            },
            Some(_) => {
                p.push(format!("{at}: csr must be a file path or an inline table"));
                None
            }
        };
        if spec.as_ref().is_some_and(|s| s.ca.is_some()) {
            p.push(format!(
                "{at}: csr asks for a CA certificate; the agent only requests leaves"
            ));
        }
        let remote = match c.remote.as_deref() {
            None => {
                p.push(format!(
                    "{at}: remote (the CA's URL, like \"http://127.0.0.1:8888\") is missing"
                ));
                None
            }
            Some(r) => match ca_api::client::RemoteCa::new(r) {
                Ok(_) => Some(pki::config::remote_url(r)),
                Err(e) => {
                    p.push(format!("{at}: remote: {e}"));
                    None
                }
            },
        };
        let auth_key = match c.auth_key.as_deref() {
            None => {
                p.push(format!(
                    "{at}: auth_key is missing (hex, \"env:VAR\" or \"file:PATH\"; the CA profile's authsign key)"
                ));
                None
            }
            Some(k) => {
                // A relative file: path is relative to the config file.
                let k = match k.strip_prefix("file:") {
                    Some(f) => format!("file:{}", base.join(f).display()),
                    None => k.to_string(),
                };
                let f = AuthKeyFile {
                    kind: "standard".into(),
                    key: k,
                };
                match f.resolve(&c.name) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        p.push(format!("{at}: {e}"));
                        None
                    }
                }
            }
        };
        let files = FileOutputs {
            key: c.key.as_deref().map(|x| base.join(x)),
            cert: c.cert.as_deref().map(|x| base.join(x)),
            chain: c.chain.as_deref().map(|x| base.join(x)),
            bundle: c.bundle.as_deref().map(|x| base.join(x)),
        };
        let any_file = files != FileOutputs::default();
        let output = match (&c.socket, any_file) {
            (Some(_), true) => {
                p.push(format!(
                    "{at}: socket (in-memory mode) excludes key, cert, chain and bundle"
                ));
                None
            }
            (Some(s), false) => {
                let socket = base.join(s);
                if !sockets.insert(socket.clone()) {
                    p.push(format!("{at}: socket {} is used twice", socket.display()));
                }
                Some(Output::Memory { socket })
            }
            (None, false) => {
                p.push(format!(
                    "{at}: give key and cert (and optionally chain, bundle), or bundle, or socket for in-memory mode"
                ));
                None
            }
            (None, true) => {
                if files.key.is_some() != files.cert.is_some() {
                    p.push(format!("{at}: key and cert go together"));
                } else if files.key.is_none() && files.bundle.is_none() {
                    p.push(format!(
                        "{at}: chain alone is not enough; add key and cert, or bundle"
                    ));
                }
                Some(Output::Files(files))
            }
        };
        let renew_at = c.renew_at.unwrap_or(DEFAULT_RENEW_AT);
        if !(renew_at > 0.0 && renew_at < 1.0) {
            p.push(format!(
                "{at}: renew_at = {renew_at} is not a fraction of the lifetime between 0 and 1"
            ));
        }
        let jitter = c.jitter.unwrap_or(DEFAULT_JITTER.min(renew_at / 2.0));
        if !(jitter >= 0.0 && jitter < renew_at) {
            p.push(format!(
                "{at}: jitter = {jitter} must be at least 0 and less than renew_at ({renew_at})"
            ));
        }
        let retry_min = duration(&at, "retry_min", &c.retry_min, DEFAULT_RETRY_MIN, &mut p);
        let retry_max = duration(&at, "retry_max", &c.retry_max, DEFAULT_RETRY_MAX, &mut p);
        if retry_min > retry_max {
            p.push(format!("{at}: retry_min is larger than retry_max"));
        }
        let hook = c.hook.as_ref().and_then(|h| hook(&at, h, base, &mut p));
        if let (Some(spec), Some(remote), Some(auth_key), Some(output)) =
            (spec, remote, auth_key, output)
        {
            certificates.push(CertificateConfig {
                name: c.name.clone(),
                spec,
                remote,
                profile: c.profile.clone(),
                auth_key,
                output,
                renew_at,
                jitter,
                retry_min,
                retry_max,
                hook,
            });
        }
    }
    if p.is_empty() {
        Ok(AgentConfig {
            state_dir,
            metrics,
            certificates,
        })
    } else {
        Err(ConfigErrors(p))
    }
}

/// Signal names a hook may send.
pub const SIGNALS: [&str; 6] = ["HUP", "USR1", "USR2", "TERM", "INT", "QUIT"];

fn hook(at: &str, h: &RawHook, base: &Path, p: &mut Vec<String>) -> Option<Hook> {
    match (&h.command, &h.signal) {
        (Some(_), Some(_)) => {
            p.push(format!(
                "{at}: hook has both command and signal; choose one"
            ));
            None
        }
        (None, None) => {
            p.push(format!("{at}: hook needs command or signal"));
            None
        }
        (Some(cmd), None) => {
            if h.pid.is_some() || h.pidfile.is_some() {
                p.push(format!(
                    "{at}: hook pid and pidfile go with signal, not command"
                ));
            }
            if cmd.is_empty() || cmd[0].is_empty() {
                p.push(format!("{at}: hook command is empty"));
                return None;
            }
            Some(Hook::Command(cmd.clone()))
        }
        (None, Some(sig)) => {
            let s = sig.trim_start_matches("SIG").to_ascii_uppercase();
            if !SIGNALS.contains(&s.as_str()) {
                p.push(format!(
                    "{at}: hook signal {sig:?} is not one of {}",
                    SIGNALS.join(", ")
                ));
            }
            let target = match (h.pid, &h.pidfile) {
                (Some(pid), None) => match i32::try_from(pid) {
                    Ok(n) if n > 1 => Some(PidSource::Pid(n)),
                    _ => {
                        p.push(format!("{at}: hook pid {pid} is not a process id above 1"));
                        None
                    }
                },
                (None, Some(f)) => Some(PidSource::File(base.join(f))),
                _ => {
                    p.push(format!(
                        "{at}: hook signal needs exactly one of pid and pidfile"
                    ));
                    None
                }
            }?;
            Some(Hook::Signal { signal: s, target })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
state_dir = "st"
metrics = "127.0.0.1:9100"

[[certificate]]
name = "api"
csr = { CN = "api.acme.test", hosts = ["api.acme.test"] }
remote = "127.0.0.1:8888"
profile = "server"
auth_key = "00112233"
key = "api-key.pem"
cert = "api.pem"
chain = "ca.pem"

[certificate.hook]
signal = "SIGHUP"
pidfile = "/run/x.pid"

[[certificate]]
name = "mem"
csr = { CN = "mem" }
remote = "http://127.0.0.1:8888"
auth_key = "aabb"
socket = "mem.sock"
renew_at = 0.5
jitter = 0.0
retry_min = "2s"
retry_max = "10s"
"#;

    #[test]
    fn parses_a_good_file() {
        let c = AgentConfig::parse(GOOD, Path::new("/etc/a")).expect("valid");
        assert_eq!(c.state_dir, PathBuf::from("/etc/a/st"));
        assert_eq!(c.certificates.len(), 2);
        let api = &c.certificates[0];
        assert_eq!(api.remote, "http://127.0.0.1:8888");
        assert!((api.renew_at - DEFAULT_RENEW_AT).abs() < 1e-9);
        assert_eq!(
            api.hook,
            Some(Hook::Signal {
                signal: "HUP".into(),
                target: PidSource::File("/run/x.pid".into())
            })
        );
        assert_eq!(c.memory_only(), ["mem"]);
        assert_eq!(c.certificates[1].retry_max, Duration::from_secs(10));
    }

    #[test]
    fn lists_every_problem() {
        let text = GOOD
            .replace("127.0.0.1:9100", "nowhere")
            .replace("name = \"mem\"", "name = \"api\"")
            .replace("auth_key = \"aabb\"", "auth_key = \"zz\"")
            .replace("renew_at = 0.5", "renew_at = 1.5")
            .replace("retry_min = \"2s\"", "retry_min = \"2 days\"")
            .replace("cert = \"api.pem\"\n", "")
            .replace("signal = \"SIGHUP\"", "signal = \"KILL\"");
        let e = AgentConfig::parse(&text, Path::new("/")).expect_err("invalid");
        let all = e.to_string();
        for needle in [
            "metrics",
            "used twice",
            "not valid hex",
            "renew_at = 1.5",
            "retry_min",
            "key and cert go together",
            "\"KILL\"",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
    }

    #[test]
    fn unknown_keys_and_missing_parts() {
        let e = AgentConfig::parse("bogus = 1", Path::new("/")).expect_err("unknown");
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = AgentConfig::parse("[[certificate]]\nname = \"x\"\n", Path::new("/"))
            .expect_err("incomplete");
        let all = e.to_string();
        for needle in [
            "csr is missing",
            "remote",
            "auth_key is missing",
            "give key and cert",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
    }

    #[test]
    fn gateway_section() {
        let gw = format!(
            "[server]\nhttps = \"127.0.0.1:1\"\n\n[agent]\n{}",
            GOOD.replace("[[certificate]]", "[[agent.certificate]]")
                .replace("[certificate.hook]", "[agent.certificate.hook]")
        );
        let c = AgentConfig::from_gateway(&gw, Path::new("/g"), Path::new("/g/data/agent"))
            .expect("valid")
            .expect("present");
        assert_eq!(c.certificates.len(), 2);
        let (dir, names) = AgentConfig::locate(&gw, Path::new("/g")).expect("located");
        assert_eq!(dir, PathBuf::from("/g/st"));
        assert_eq!(names, ["api", "mem"]);
        assert!(
            AgentConfig::from_gateway("[server]\n", Path::new("/"), Path::new("/"))
                .expect("valid")
                .is_none()
        );
    }
}
