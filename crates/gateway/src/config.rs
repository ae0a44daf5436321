//! The gateway configuration (CONTRACT section 2): the raw TOML types
//! (what was typed) and the validated [`Config`] (what will run).
//!
//! This module parses a string; the caller reads the file and passes the
//! directory that relative paths are resolved against. Validation collects
//! every problem instead of stopping at the first, so an operator fixes a
//! config in one round.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::http::{HeaderValue, StatusCode, Uri};
use serde::Deserialize;

/// Raw `[server]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    https: String,
    admin: Option<String>,
    data_dir: Option<String>,
    max_connections: Option<i64>,
    origin_connect_timeout: Option<i64>,
    origin_response_timeout: Option<i64>,
}

/// Raw `[[ca]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCa {
    name: String,
    pem: String,
    crl: Option<String>,
}

/// Raw `[hostname.mtls]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMtls {
    mode: String,
    #[serde(default)]
    cas: Vec<String>,
    block_status: Option<i64>,
    block_content_type: Option<String>,
    block_body: Option<String>,
}

/// Raw `[[hostname]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHostname {
    name: String,
    cert: String,
    key: String,
    origin: String,
    origin_ca: Option<String>,
    origin_cert: Option<String>,
    origin_key: Option<String>,
    mtls: Option<RawMtls>,
}

/// The whole raw file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    #[serde(default)]
    ca: Vec<RawCa>,
    #[serde(default)]
    hostname: Vec<RawHostname>,
}

/// Client-certificate mode of a hostname.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No certificate is requested; identity headers are not sent (but
    /// client-sent ones are still stripped).
    Off,
    /// A certificate is requested; every request is forwarded with the
    /// verdict in the identity headers.
    Report,
    /// Like `report`, but a request without a valid certificate gets the
    /// block response and never reaches the origin.
    Enforce,
}

impl Mode {
    /// `off`, `report` or `enforce`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Report => "report",
            Mode::Enforce => "enforce",
        }
    }
}

/// The response sent when `enforce` blocks a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockResponse {
    /// HTTP status, default 403.
    pub status: StatusCode,
    /// Content type, default `application/json`.
    pub content_type: HeaderValue,
    /// Body. `None`: the default JSON body
    /// `{"error":"client certificate required","reason":"<reason>"}`.
    pub body: Option<String>,
}

impl Default for BlockResponse {
    fn default() -> Self {
        BlockResponse {
            status: StatusCode::FORBIDDEN,
            content_type: HeaderValue::from_static("application/json"),
            body: None,
        }
    }
}

/// Validated `[hostname.mtls]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MtlsConfig {
    /// The mode.
    pub mode: Mode,
    /// Names of `[[ca]]` entries whose certificates this hostname trusts
    /// (non-empty unless the mode is `off`).
    pub cas: Vec<String>,
    /// What `enforce` answers.
    pub block: BlockResponse,
}

/// A validated `[[ca]]` entry; paths are absolute or relative to the
/// current directory (already joined with the config's directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaConfig {
    /// Name referenced by `hostname.mtls.cas`.
    pub name: String,
    /// CA certificates (PEM, one or more).
    pub pem: PathBuf,
    /// Optional CRL (PEM or DER).
    pub crl: Option<PathBuf>,
}

/// A validated `[[hostname]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostnameConfig {
    /// The SNI name, lowercase.
    pub name: String,
    /// Server certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// Origin base URI (`http://host:port` or `https://host:port`).
    pub origin: Uri,
    /// For `https://` origins: how the origin is verified and what the
    /// gateway presents to it.
    pub origin_tls: Option<OriginTls>,
    /// Client-certificate policy (`off` when the table is absent).
    pub mtls: MtlsConfig,
}

/// TLS to an `https://` origin (authenticated origin pulls).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginTls {
    /// CA certificates the origin's server certificate must chain to.
    pub ca: PathBuf,
    /// Client certificate chain and key the gateway presents, if any.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// How long the gateway waits on an origin (`[server]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OriginTimeouts {
    /// TCP connect (`origin_connect_timeout`, seconds, default 5). An
    /// origin that cannot be reached in time is a 502.
    pub connect: Duration,
    /// From sending the request to the response head, connect and origin
    /// TLS included (`origin_response_timeout`, seconds, default 30). An
    /// origin that does not answer in time is a 504.
    pub response: Duration,
}

impl Default for OriginTimeouts {
    fn default() -> Self {
        OriginTimeouts {
            connect: Duration::from_secs(5),
            response: Duration::from_secs(30),
        }
    }
}

/// Default `server.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// TLS listener address.
    pub https: SocketAddr,
    /// Management listener address (accepted; not served yet).
    pub admin: Option<SocketAddr>,
    /// Data directory (accepted; not used yet).
    pub data_dir: Option<PathBuf>,
    /// Most TLS connections open at once (`server.max_connections`,
    /// default 10,000); at the limit, new connections wait in the kernel's
    /// accept queue.
    pub max_connections: usize,
    /// Origin connect and response-head timeouts.
    pub origin_timeouts: OriginTimeouts,
    /// CA sets.
    pub cas: Vec<CaConfig>,
    /// Hostnames.
    pub hostnames: Vec<HostnameConfig>,
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem", self.0.len())?;
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

impl Config {
    /// Every file this configuration names (CA PEMs, CRLs, server
    /// certificates and keys, origin CAs and pull certificates and keys),
    /// in config order, without duplicates: what a reload reads again.
    pub fn files(&self) -> Vec<&Path> {
        let mut all: Vec<&Path> = Vec::new();
        for ca in &self.cas {
            all.push(&ca.pem);
            all.extend(ca.crl.as_deref());
        }
        for h in &self.hostnames {
            all.extend([h.cert.as_path(), h.key.as_path()]);
            if let Some(o) = &h.origin_tls {
                all.push(&o.ca);
                if let Some((c, k)) = &o.client {
                    all.extend([c.as_path(), k.as_path()]);
                }
            }
        }
        let mut v: Vec<&Path> = Vec::with_capacity(all.len());
        for p in all {
            if !v.contains(&p) {
                v.push(p);
            }
        }
        v
    }

    /// Parses and validates TOML text. Relative paths are joined to
    /// `base_dir` (the config file's directory). Files are not read here.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| ConfigErrors(vec![e.to_string().trim().to_owned()]))?;
        validate(raw, base_dir)
    }
}

fn addr(what: &str, s: &str, problems: &mut Vec<String>) -> Option<SocketAddr> {
    match s.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            problems.push(format!(
                "{what} = {s:?} is not an IP address and port (like \"127.0.0.1:8443\")"
            ));
            None
        }
    }
}

/// A whole number of seconds from 1 to 3600.
fn secs(what: &str, v: Option<i64>, default: Duration, p: &mut Vec<String>) -> Duration {
    match v {
        None => default,
        Some(s @ 1..=3600) => Duration::from_secs(s.unsigned_abs()),
        Some(s) => {
            p.push(format!(
                "{what} = {s} is not a number of seconds from 1 to 3600"
            ));
            default
        }
    }
}

fn path(base: &Path, s: &str) -> PathBuf {
    base.join(s)
}

fn validate(raw: RawConfig, base: &Path) -> Result<Config, ConfigErrors> {
    let mut p = Vec::new();
    let https = addr("server.https", &raw.server.https, &mut p);
    let admin = raw
        .server
        .admin
        .as_deref()
        .and_then(|a| addr("server.admin", a, &mut p));
    if let (Some(h), Some(a)) = (https, admin) {
        if h == a && h.port() != 0 {
            p.push(format!(
                "server.https and server.admin are the same address {h}"
            ));
        }
    }
    let data_dir = raw.server.data_dir.as_deref().map(|d| path(base, d));
    let max_connections = match raw.server.max_connections {
        None => DEFAULT_MAX_CONNECTIONS,
        Some(n @ 1..=1_000_000) => usize::try_from(n).unwrap_or(DEFAULT_MAX_CONNECTIONS),
        Some(n) => {
            p.push(format!(
                "server.max_connections = {n} is not a number from 1 to 1000000"
            ));
            DEFAULT_MAX_CONNECTIONS
        }
    };
    let d = OriginTimeouts::default();
    let origin_timeouts = OriginTimeouts {
        connect: secs(
            "server.origin_connect_timeout",
            raw.server.origin_connect_timeout,
            d.connect,
            &mut p,
        ),
        response: secs(
            "server.origin_response_timeout",
            raw.server.origin_response_timeout,
            d.response,
            &mut p,
        ),
    };

    let mut cas = Vec::new();
    let mut ca_names = HashSet::new();
    for (i, ca) in raw.ca.iter().enumerate() {
        if ca.name.trim().is_empty() {
            p.push(format!("ca[{i}].name is empty"));
        } else if !ca_names.insert(ca.name.clone()) {
            p.push(format!("ca[{i}].name {:?} is defined twice", ca.name));
        }
        cas.push(CaConfig {
            name: ca.name.clone(),
            pem: path(base, &ca.pem),
            crl: ca.crl.as_deref().map(|c| path(base, c)),
        });
    }

    let mut hostnames = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    if raw.hostname.is_empty() {
        p.push("no [[hostname]] is configured".to_owned());
    }
    for (i, h) in raw.hostname.iter().enumerate() {
        let at = format!("hostname[{i}] ({:?})", h.name);
        let name = h.name.trim_end_matches('.').to_ascii_lowercase();
        // The IP check comes first: DnsName refuses IP addresses too, and
        // the operator deserves the precise reason.
        if name.parse::<std::net::IpAddr>().is_ok() {
            p.push(format!(
                "{at}: name is an IP address; clients send no SNI for those"
            ));
        } else if rustls_pki_types::DnsName::try_from(name.as_str()).is_err() || name.is_empty() {
            p.push(format!("{at}: name is not a DNS name"));
        }
        if let Some(j) = seen.insert(name.clone(), i) {
            p.push(format!("{at}: same name as hostname[{j}]"));
        }
        let origin = match h.origin.parse::<Uri>() {
            Ok(u)
                if matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some() =>
            {
                if u.path_and_query().is_some_and(|pq| pq.as_str() != "/") {
                    p.push(format!(
                        "{at}: origin {:?} has a path; only scheme://host:port is supported",
                        h.origin
                    ));
                }
                Some(u)
            }
            _ => {
                p.push(format!(
                    "{at}: origin {:?} is not an http:// or https:// host:port URL",
                    h.origin
                ));
                None
            }
        };
        let https = origin
            .as_ref()
            .is_some_and(|u| u.scheme_str() == Some("https"));
        let client = match (&h.origin_cert, &h.origin_key) {
            (Some(c), Some(k)) => Some((path(base, c), path(base, k))),
            (None, None) => None,
            _ => {
                p.push(format!("{at}: origin_cert and origin_key go together"));
                None
            }
        };
        let origin_tls = match (&h.origin_ca, https) {
            (Some(ca), true) => Some(OriginTls {
                ca: path(base, ca),
                client,
            }),
            (None, true) => {
                p.push(format!(
                    "{at}: an https:// origin needs origin_ca (the CA of its server certificate)"
                ));
                None
            }
            (_, false) => {
                if h.origin_ca.is_some() || h.origin_cert.is_some() || h.origin_key.is_some() {
                    p.push(format!(
                        "{at}: origin_ca, origin_cert and origin_key need an https:// origin"
                    ));
                }
                None
            }
        };
        let mtls = match &h.mtls {
            None => MtlsConfig {
                mode: Mode::Off,
                cas: Vec::new(),
                block: BlockResponse::default(),
            },
            Some(m) => mtls(&at, m, &ca_names, &mut p),
        };
        if let Some(origin) = origin {
            hostnames.push(HostnameConfig {
                name,
                cert: path(base, &h.cert),
                key: path(base, &h.key),
                origin,
                origin_tls,
                mtls,
            });
        }
    }
    match (p.is_empty(), https) {
        (true, Some(https)) => Ok(Config {
            https,
            admin,
            data_dir,
            max_connections,
            origin_timeouts,
            cas,
            hostnames,
        }),
        _ => Err(ConfigErrors(p)),
    }
}

fn mtls(at: &str, m: &RawMtls, ca_names: &HashSet<String>, p: &mut Vec<String>) -> MtlsConfig {
    let mode = match m.mode.as_str() {
        "off" => Mode::Off,
        "report" => Mode::Report,
        "enforce" => Mode::Enforce,
        other => {
            p.push(format!(
                "{at}: mtls.mode {other:?} is not one of off, report, enforce"
            ));
            Mode::Enforce
        }
    };
    if mode != Mode::Off && m.cas.is_empty() {
        p.push(format!(
            "{at}: mtls.mode {:?} needs at least one CA in mtls.cas",
            mode.as_str()
        ));
    }
    for c in &m.cas {
        if !ca_names.contains(c) {
            p.push(format!(
                "{at}: mtls.cas names {c:?}, which no [[ca]] defines"
            ));
        }
    }
    let mut block = BlockResponse::default();
    if let Some(s) = m.block_status {
        match u16::try_from(s)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
        {
            Some(st) if (200..=599).contains(&st.as_u16()) => block.status = st,
            _ => p.push(format!(
                "{at}: mtls.block_status {s} is not an HTTP status from 200 to 599"
            )),
        }
    }
    if let Some(ct) = &m.block_content_type {
        match HeaderValue::from_str(ct) {
            Ok(v) => block.content_type = v,
            Err(_) => p.push(format!(
                "{at}: mtls.block_content_type {ct:?} is not a valid header value"
            )),
        }
    }
    block.body = m.block_body.clone();
    MtlsConfig {
        mode,
        cas: m.cas.clone(),
        block,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
https = "127.0.0.1:8443"
admin = "127.0.0.1:9443"
data_dir = "data"

[[ca]]
name = "acme"
pem = "acme.pem"
crl = "/abs/acme.crl"

[[hostname]]
name = "API.acme.test"
cert = "api.pem"
key = "api-key.pem"
origin = "http://127.0.0.1:9001"

[hostname.mtls]
mode = "enforce"
cas = ["acme"]
block_status = 401
block_content_type = "text/plain"
block_body = "no"

[[hostname]]
name = "www.acme.test"
cert = "www.pem"
key = "www-key.pem"
origin = "http://127.0.0.1:9002/"
"#;

    /// Found by the config error-message table of crates/fuzz-harness:
    /// an IP address as hostname name was reported as "not a DNS name",
    /// and the IP-address message was unreachable.
    #[test]
    fn fuzz_regression_gateway_config_ip_hostname_message() {
        for ip in ["127.0.0.1", "::1", "10.0.0.1."] {
            let text = GOOD.replace("API.acme.test", ip);
            let e = Config::parse(&text, Path::new("/")).expect_err("IP as hostname");
            let all = e.to_string();
            assert!(all.contains("name is an IP address"), "{ip}: {all}");
            assert!(!all.contains("not a DNS name"), "{ip}: {all}");
        }
    }

    #[test]
    fn parses_and_resolves_relative_paths() {
        let c = Config::parse(GOOD, Path::new("/etc/pc")).expect("valid");
        assert_eq!(c.https, "127.0.0.1:8443".parse().expect("addr"));
        assert_eq!(c.cas[0].pem, PathBuf::from("/etc/pc/acme.pem"));
        assert_eq!(c.cas[0].crl, Some(PathBuf::from("/abs/acme.crl")));
        assert_eq!(c.hostnames[0].name, "api.acme.test");
        assert_eq!(c.hostnames[0].mtls.mode, Mode::Enforce);
        assert_eq!(c.hostnames[0].mtls.block.status, StatusCode::UNAUTHORIZED);
        assert_eq!(c.hostnames[0].mtls.block.body.as_deref(), Some("no"));
        assert_eq!(c.hostnames[1].mtls.mode, Mode::Off);
        assert_eq!(c.data_dir, Some(PathBuf::from("/etc/pc/data")));
        assert_eq!(c.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(
            c.files(),
            [
                "/etc/pc/acme.pem",
                "/abs/acme.crl",
                "/etc/pc/api.pem",
                "/etc/pc/api-key.pem",
                "/etc/pc/www.pem",
                "/etc/pc/www-key.pem"
            ]
            .map(Path::new)
        );
        assert_eq!(c.origin_timeouts, OriginTimeouts::default());
    }

    #[test]
    fn limits_and_timeouts() {
        let text = GOOD.replace(
            "data_dir = \"data\"",
            "max_connections = 50\norigin_connect_timeout = 2\norigin_response_timeout = 7",
        );
        let c = Config::parse(&text, Path::new("/")).expect("valid");
        assert_eq!(c.max_connections, 50);
        assert_eq!(c.origin_timeouts.connect, Duration::from_secs(2));
        assert_eq!(c.origin_timeouts.response, Duration::from_secs(7));
        let text = GOOD.replace(
            "data_dir = \"data\"",
            "max_connections = 0\norigin_connect_timeout = 0\norigin_response_timeout = -1",
        );
        let e = Config::parse(&text, Path::new("/")).expect_err("invalid");
        assert_eq!(e.0.len(), 3, "{e}");
    }

    #[test]
    fn unknown_key_is_an_error() {
        let text = GOOD.replace("data_dir = \"data\"", "data_dir = \"data\"\nbogus = 1");
        let e = Config::parse(&text, Path::new("/")).expect_err("unknown key");
        assert!(e.0[0].contains("bogus"), "{e}");
        let text = GOOD.replace("mode = \"enforce\"", "mode = \"enforce\"\nmood = 1");
        let e = Config::parse(&text, Path::new("/")).expect_err("unknown key");
        assert!(e.0[0].contains("mood"), "{e}");
    }

    #[test]
    fn every_problem_is_listed() {
        let text = GOOD
            .replace("127.0.0.1:8443", "nowhere")
            .replace("mode = \"enforce\"", "mode = \"block\"")
            .replace("cas = [\"acme\"]", "cas = [\"acme\", \"nope\"]")
            .replace("block_status = 401", "block_status = 42")
            .replace("http://127.0.0.1:9002/", "ftp://x")
            .replace("www.acme.test", "api.acme.test");
        let e = Config::parse(&text, Path::new("/")).expect_err("invalid");
        let all = e.to_string();
        for needle in [
            "server.https",
            "\"block\"",
            "\"nope\"",
            "block_status 42",
            "ftp://x",
            "same name as hostname[0]",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
        assert_eq!(e.0.len(), 6, "{all}");
    }

    #[test]
    fn report_without_cas_and_https_origin_without_ca_are_refused() {
        let text = GOOD
            .replace("mode = \"enforce\"\ncas = [\"acme\"]", "mode = \"report\"")
            .replace("http://127.0.0.1:9001", "https://127.0.0.1:9001")
            .replace(
                "origin = \"http://127.0.0.1:9002/\"",
                "origin = \"http://127.0.0.1:9002/\"\norigin_cert = \"c.pem\"",
            );
        let e = Config::parse(&text, Path::new("/")).expect_err("invalid");
        let all = e.to_string();
        assert!(all.contains("needs at least one CA"), "{all}");
        assert!(all.contains("needs origin_ca"), "{all}");
        assert!(all.contains("go together"), "{all}");
        assert!(all.contains("need an https:// origin"), "{all}");
    }

    #[test]
    fn https_origin_with_client_certificate() {
        let text = GOOD.replace(
            "origin = \"http://127.0.0.1:9001\"",
            "origin = \"https://127.0.0.1:9001\"\norigin_ca = \"o.pem\"\n\
             origin_cert = \"gw.pem\"\norigin_key = \"gw-key.pem\"",
        );
        let c = Config::parse(&text, Path::new("/d")).expect("valid");
        assert_eq!(
            c.hostnames[0].origin_tls,
            Some(OriginTls {
                ca: PathBuf::from("/d/o.pem"),
                client: Some((PathBuf::from("/d/gw.pem"), PathBuf::from("/d/gw-key.pem"))),
            })
        );
        assert_eq!(c.hostnames[1].origin_tls, None);
    }
}
