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

pub use crate::identity::{CertField, IdentityHeaders};

/// Raw `[server]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    https: String,
    admin: Option<String>,
    data_dir: Option<String>,
    store: Option<String>,
    store_key: Option<String>,
    max_connections: Option<i64>,
    origin_connect_timeout: Option<i64>,
    origin_response_timeout: Option<i64>,
    idle_timeout: Option<i64>,
    origin_ca: Option<String>,
    origin_cert: Option<String>,
    origin_key: Option<String>,
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
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    map: Vec<RawMap>,
}

/// Raw `[[hostname.mtls.map]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    field: String,
    header: String,
}

/// Raw `[[hostname.route]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    path: String,
    origin: Option<String>,
    origin_ca: Option<String>,
    origin_cert: Option<String>,
    origin_key: Option<String>,
    origin_protocol: Option<String>,
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
    origin_protocol: Option<String>,
    mtls: Option<RawMtls>,
    #[serde(default)]
    route: Vec<RawRoute>,
    /// `[[hostname.token]]` (docs/policy.md).
    #[serde(default)]
    token: Vec<crate::edge::config::RawToken>,
    /// `[[hostname.rule]]`.
    #[serde(default)]
    rule: Vec<crate::edge::config::RawRule>,
    /// `[[hostname.rate_limit]]`.
    #[serde(default)]
    rate_limit: Vec<crate::edge::config::RawRateLimit>,
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
    /// `[agent]`: certificates the process obtains and renews itself. The
    /// agent crate validates it (the binary wires the two); accepted here
    /// so that the unknown-key check lets it through.
    #[serde(default, rename = "agent")]
    _agent: Option<toml::Table>,
    #[serde(default)]
    egress: Vec<crate::egress::config::RawEgress>,
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
    /// Renamed identity headers and certificate fields mapped to headers
    /// (`headers`, `[[hostname.mtls.map]]`).
    pub identity: IdentityHeaders,
}

/// The HTTP version spoken to an origin (`origin_protocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OriginProtocol {
    /// `http1` (default): HTTP/1.1.
    #[default]
    Http1,
    /// `h2`: HTTP/2 only (ALPN `h2` for `https://`, prior knowledge "h2c"
    /// for `http://`).
    H2,
    /// `auto`: ALPN offers `h2` and `http/1.1` and the origin chooses
    /// (`https://`); HTTP/1.1 for `http://`.
    Auto,
}

/// A validated `[[hostname.route]]`: requests whose path starts with
/// `path` (longest prefix wins) go to this origin, with this origin-pull
/// identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteConfig {
    /// Path prefix, starting with `/`.
    pub path: String,
    /// Origin base URI (the hostname's unless the route names one).
    pub origin: Uri,
    /// TLS to an `https://` origin.
    pub origin_tls: Option<OriginTls>,
    /// HTTP version toward the origin.
    pub origin_protocol: OriginProtocol,
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
    /// HTTP version toward the origin (`origin_protocol`).
    pub origin_protocol: OriginProtocol,
    /// Per-path origins and origin-pull identities (`[[hostname.route]]`).
    pub routes: Vec<RouteConfig>,
    /// Tokens, rules and rate limits (docs/policy.md); empty by default.
    pub edge: crate::edge::config::EdgeConfig,
}

/// TLS to an `https://` origin (authenticated origin pulls).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginTls {
    /// CA certificates the origin's server certificate must chain to.
    pub ca: PathBuf,
    /// Client certificate chain and key the gateway presents, if any
    /// (the route's, else the hostname's, else `[server]`'s).
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
    /// Data directory: the embedded SQLite store of `portcullis serve`,
    /// and a fleet node's local copy of the last snapshot.
    pub data_dir: Option<PathBuf>,
    /// `server.store`: the PostgreSQL URL a fleet node (`portcullis
    /// gateway`) follows.
    pub store: Option<String>,
    /// `server.store_key`: file with the hex key that seals private keys in
    /// the store (default for SQLite: `<data_dir>/store.key`).
    pub store_key: Option<PathBuf>,
    /// Most TLS connections open at once (`server.max_connections`,
    /// default 10,000); at the limit, new connections wait in the kernel's
    /// accept queue.
    pub max_connections: usize,
    /// Origin connect and response-head timeouts.
    pub origin_timeouts: OriginTimeouts,
    /// How long a client connection may stay open with no request in
    /// flight (`server.idle_timeout`, seconds, default 60): HTTP/1.1
    /// keep-alive and idle HTTP/2 connections are then closed (HTTP/2 with
    /// GOAWAY).
    pub idle_timeout: Duration,
    /// CA sets.
    pub cas: Vec<CaConfig>,
    /// Hostnames.
    pub hostnames: Vec<HostnameConfig>,
    /// Egress listeners (`[[egress]]`, see `docs/egress.md`).
    pub egress: Vec<crate::egress::config::EgressConfig>,
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

/// Default `server.idle_timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

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
            for t in &h.edge.tokens {
                all.extend(t.secret_files.iter().map(PathBuf::as_path));
            }
            let tls = std::iter::once(&h.origin_tls).chain(h.routes.iter().map(|r| &r.origin_tls));
            for o in tls.flatten() {
                all.push(&o.ca);
                if let Some((c, k)) = &o.client {
                    all.extend([c.as_path(), k.as_path()]);
                }
            }
        }
        for e in &self.egress {
            all.extend(e.files());
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
    let store = raw.server.store.clone();
    if let Some(url) = &store {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            p.push(format!(
                "server.store {:?} is not a postgres:// or postgresql:// URL",
                url.split('@').next_back().unwrap_or_default()
            ));
        }
    }
    let store_key = raw.server.store_key.as_deref().map(|k| path(base, k));
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

    let idle_timeout = secs(
        "server.idle_timeout",
        raw.server.idle_timeout,
        DEFAULT_IDLE_TIMEOUT,
        &mut p,
    );
    let defaults = OriginDefaults {
        ca: raw.server.origin_ca.as_deref().map(|c| path(base, c)),
        client: pair(
            "server",
            &raw.server.origin_cert,
            &raw.server.origin_key,
            base,
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
    // With a store (data_dir or server.store) the hostnames may all come
    // from it; a config may also hold only [[egress]] listeners.
    if raw.hostname.is_empty() && raw.egress.is_empty() && data_dir.is_none() && store.is_none() {
        p.push("no [[hostname]] (or [[egress]]) is configured".to_owned());
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
        let origin = origin_uri(&at, &h.origin, &mut p);
        let own_client = pair(&at, &h.origin_cert, &h.origin_key, base, &mut p);
        let https_origin = origin
            .as_ref()
            .is_some_and(|u| u.scheme_str() == Some("https"));
        if !https_origin
            && (h.origin_ca.is_some() || h.origin_cert.is_some() || h.origin_key.is_some())
            && origin.is_some()
        {
            p.push(format!(
                "{at}: origin_ca, origin_cert and origin_key need an https:// origin"
            ));
        }
        let hostname_ca = h.origin_ca.as_deref().map(|c| path(base, c));
        let hostname_client = own_client.or_else(|| defaults.client.clone());
        let origin_tls = origin.as_ref().and_then(|u| {
            origin_tls_of(
                &at,
                u,
                hostname_ca.clone().or_else(|| defaults.ca.clone()),
                hostname_client.clone(),
                &mut p,
            )
        });
        let origin_protocol = protocol(
            &at,
            h.origin_protocol.as_deref(),
            OriginProtocol::default(),
            &mut p,
        );
        let mut routes: Vec<RouteConfig> = Vec::new();
        for (j, r) in h.route.iter().enumerate() {
            let rat = format!("{at}: route[{j}] ({:?})", r.path);
            if !r.path.starts_with('/') {
                p.push(format!("{rat}: path must start with /"));
            } else if routes.iter().any(|o| o.path == r.path) {
                p.push(format!("{rat}: the same path as another route"));
            }
            let route_origin = match &r.origin {
                Some(o) => origin_uri(&rat, o, &mut p),
                None => origin.clone(),
            };
            let https = route_origin
                .as_ref()
                .is_some_and(|u| u.scheme_str() == Some("https"));
            let client = pair(&rat, &r.origin_cert, &r.origin_key, base, &mut p);
            if !https
                && route_origin.is_some()
                && (r.origin_ca.is_some() || r.origin_cert.is_some())
            {
                p.push(format!(
                    "{rat}: origin_ca, origin_cert and origin_key need an https:// origin"
                ));
            }
            let ca = r
                .origin_ca
                .as_deref()
                .map(|c| path(base, c))
                .or_else(|| hostname_ca.clone())
                .or_else(|| defaults.ca.clone());
            let client = client.or_else(|| hostname_client.clone());
            let tls = route_origin
                .as_ref()
                .and_then(|u| origin_tls_of(&rat, u, ca, client, &mut p));
            let proto = protocol(&rat, r.origin_protocol.as_deref(), origin_protocol, &mut p);
            if let Some(u) = route_origin {
                routes.push(RouteConfig {
                    path: r.path.clone(),
                    origin: u,
                    origin_tls: tls,
                    origin_protocol: proto,
                });
            }
        }
        let mtls = match &h.mtls {
            None => MtlsConfig {
                mode: Mode::Off,
                cas: Vec::new(),
                block: BlockResponse::default(),
                identity: IdentityHeaders::default(),
            },
            Some(m) => mtls(&at, m, &ca_names, &mut p),
        };
        let edge = crate::edge::config::validate(
            &at,
            &name,
            &h.token,
            &h.rule,
            &h.rate_limit,
            base,
            &mut p,
        );
        if let Some(origin) = origin {
            hostnames.push(HostnameConfig {
                name,
                cert: path(base, &h.cert),
                key: path(base, &h.key),
                origin,
                origin_tls,
                mtls,
                origin_protocol,
                routes,
                edge,
            });
        }
    }
    let egress = crate::egress::config::validate(&raw.egress, base, https, &mut p);
    match (p.is_empty(), https) {
        (true, Some(https)) => Ok(Config {
            https,
            admin,
            data_dir,
            store,
            store_key,
            max_connections,
            origin_timeouts,
            idle_timeout,
            cas,
            hostnames,
            egress,
        }),
        _ => Err(ConfigErrors(p)),
    }
}

/// `[server]` origin-pull defaults for `https://` origins.
struct OriginDefaults {
    ca: Option<PathBuf>,
    client: Option<(PathBuf, PathBuf)>,
}

/// An origin URL: `http://` or `https://`, host and port, no path.
fn origin_uri(at: &str, text: &str, p: &mut Vec<String>) -> Option<Uri> {
    match text.parse::<Uri>() {
        Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some() => {
            if u.path_and_query().is_some_and(|pq| pq.as_str() != "/") {
                p.push(format!(
                    "{at}: origin {text:?} has a path; only scheme://host:port is supported"
                ));
            }
            Some(u)
        }
        _ => {
            p.push(format!(
                "{at}: origin {text:?} is not an http:// or https:// host:port URL"
            ));
            None
        }
    }
}

/// `origin_cert` and `origin_key`, which go together.
fn pair(
    at: &str,
    cert: &Option<String>,
    key: &Option<String>,
    base: &Path,
    p: &mut Vec<String>,
) -> Option<(PathBuf, PathBuf)> {
    match (cert, key) {
        (Some(c), Some(k)) => Some((path(base, c), path(base, k))),
        (None, None) => None,
        _ => {
            p.push(format!("{at}: origin_cert and origin_key go together"));
            None
        }
    }
}

/// TLS settings of an `https://` origin (`None` for `http://`).
fn origin_tls_of(
    at: &str,
    origin: &Uri,
    ca: Option<PathBuf>,
    client: Option<(PathBuf, PathBuf)>,
    p: &mut Vec<String>,
) -> Option<OriginTls> {
    if origin.scheme_str() != Some("https") {
        return None;
    }
    match ca {
        Some(ca) => Some(OriginTls { ca, client }),
        None => {
            p.push(format!(
                "{at}: an https:// origin needs origin_ca (the CA of its server certificate), here or in [server]"
            ));
            None
        }
    }
}

/// `origin_protocol`: `http1`, `h2` or `auto`.
fn protocol(
    at: &str,
    v: Option<&str>,
    default: OriginProtocol,
    p: &mut Vec<String>,
) -> OriginProtocol {
    match v {
        None => default,
        Some("http1") => OriginProtocol::Http1,
        Some("h2") => OriginProtocol::H2,
        Some("auto") => OriginProtocol::Auto,
        Some(other) => {
            p.push(format!(
                "{at}: origin_protocol {other:?} is not one of http1, h2, auto"
            ));
            default
        }
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
    let headers: Vec<(String, String)> = m
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let map: Vec<(String, String)> = m
        .map
        .iter()
        .map(|e| (e.field.clone(), e.header.clone()))
        .collect();
    MtlsConfig {
        mode,
        cas: m.cas.clone(),
        block,
        identity: IdentityHeaders::parse(at, &headers, &map, p),
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
    fn agent_table_is_left_to_the_agent_crate() {
        let text =
            format!("{GOOD}\n[agent]\nstate_dir = \"x\"\n[[agent.certificate]]\nname = \"api\"\n");
        Config::parse(&text, Path::new("/")).expect("accepted");
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

    #[test]
    fn routes_inherit_and_server_defaults_apply() {
        let text = GOOD
            .replace(
                "data_dir = \"data\"",
                "origin_ca = \"o.pem\"\norigin_cert = \"d.pem\"\norigin_key = \"d-key.pem\"\nidle_timeout = 5",
            )
            .replace(
                "origin = \"http://127.0.0.1:9001\"",
                "origin = \"https://127.0.0.1:9001\"\norigin_protocol = \"auto\"\n\
                 [[hostname.route]]\npath = \"/billing\"\norigin_cert = \"b.pem\"\norigin_key = \"b-key.pem\"\n\
                 [[hostname.route]]\npath = \"/plain\"\norigin = \"http://127.0.0.1:9009\"\norigin_protocol = \"h2\"\n\
                 [[hostname.route]]\npath = \"/\"",
            );
        let c = Config::parse(&text, Path::new("/d")).expect("valid");
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        let h = &c.hostnames[0];
        assert_eq!(h.origin_protocol, OriginProtocol::Auto);
        let default = Some((PathBuf::from("/d/d.pem"), PathBuf::from("/d/d-key.pem")));
        assert_eq!(
            h.origin_tls,
            Some(OriginTls {
                ca: PathBuf::from("/d/o.pem"),
                client: default.clone(),
            })
        );
        assert_eq!(h.routes.len(), 3);
        assert_eq!(
            h.routes[0]
                .origin_tls
                .as_ref()
                .and_then(|t| t.client.clone()),
            Some((PathBuf::from("/d/b.pem"), PathBuf::from("/d/b-key.pem")))
        );
        assert_eq!(h.routes[0].origin_protocol, OriginProtocol::Auto);
        assert_eq!(h.routes[1].origin_tls, None);
        assert_eq!(h.routes[1].origin_protocol, OriginProtocol::H2);
        assert_eq!(
            h.routes[2]
                .origin_tls
                .as_ref()
                .and_then(|t| t.client.clone()),
            default
        );
        assert!(c.files().contains(&Path::new("/d/b-key.pem")));
        // The http:// hostname does not pick the https defaults up.
        assert_eq!(c.hostnames[1].origin_tls, None);
    }

    #[test]
    fn bad_routes_protocols_and_header_maps_are_all_listed() {
        let text = GOOD
            .replace("data_dir = \"data\"", "origin_cert = \"d.pem\"\nidle_timeout = 0")
            .replace(
                "origin = \"http://127.0.0.1:9001\"",
                "origin = \"http://127.0.0.1:9001\"\norigin_protocol = \"h3\"\n\
                 [[hostname.route]]\npath = \"billing\"\norigin = \"https://127.0.0.1:1\"\n\
                 [[hostname.route]]\npath = \"/a\"\norigin_cert = \"x.pem\"\norigin_key = \"x-key.pem\"",
            )
            .replace(
                "block_body = \"no\"",
                "block_body = \"no\"\nheaders = { \"Client-Cert-Subject\" = \"X Bad\" }\n\
                 [[hostname.mtls.map]]\nfield = \"san.nope\"\nheader = \"X-Ok\"",
            );
        let e = Config::parse(&text, Path::new("/")).expect_err("invalid");
        let all = e.to_string();
        for needle in [
            "server: origin_cert and origin_key go together",
            "server.idle_timeout = 0",
            "origin_protocol \"h3\"",
            "route[0] (\"billing\"): path must start with /",
            "route[0] (\"billing\"): an https:// origin needs origin_ca",
            "route[1] (\"/a\"): origin_ca, origin_cert and origin_key need an https:// origin",
            "\"X Bad\" is not a valid header name",
            "field \"san.nope\"",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
        assert_eq!(e.0.len(), 8, "{all}");
    }
}
