//! `[[egress]]` entries of the gateway configuration: the raw TOML types
//! (what was typed) and the validated [`EgressConfig`] (what will run).
//!
//! ```toml
//! [[egress]]
//! name = "api-to-db"
//! listen = "127.0.0.1:15432"        # loopback only, unless allow_non_loopback = true
//! mode = "tcp"                      # http | tcp
//! upstream = "db.internal:5432"     # tcp: host:port; http: https://host:port
//! cert = "api.pem"                  # the service's client certificate (chain, leaf first)
//! key = "api-key.pem"
//! ca = "db-ca.pem"                  # the upstream's certificate must chain to it
//! server_name = "db.internal"       # optional: SNI and expected DNS name / IP
//! spiffe_id = "spiffe://acme.test/db" # optional: required URI SAN of the upstream
//! starttls = "postgres"             # tcp only: PostgreSQL SSLRequest first
//!
//! [[egress.route]]                  # http only: per path prefix
//! path = "/billing/"
//! upstream = "https://billing.internal:8443"
//! cert = "api-billing.pem"          # every key but path is optional and
//! key = "api-billing-key.pem"       # inherited from the egress
//! ```

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::http::Uri;
use serde::Deserialize;

/// Raw `[[egress.route]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEgressRoute {
    path: String,
    upstream: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    ca: Option<String>,
    server_name: Option<String>,
    spiffe_id: Option<String>,
}

/// Raw `[[egress]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEgress {
    name: String,
    listen: String,
    mode: String,
    upstream: String,
    cert: Option<String>,
    key: Option<String>,
    ca: Option<String>,
    server_name: Option<String>,
    spiffe_id: Option<String>,
    starttls: Option<String>,
    allow_non_loopback: Option<bool>,
    max_connections: Option<i64>,
    connect_timeout: Option<i64>,
    response_timeout: Option<i64>,
    idle_timeout: Option<i64>,
    #[serde(default)]
    route: Vec<RawEgressRoute>,
}

/// What an egress listener speaks to the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EgressMode {
    /// Plain HTTP from the app; HTTPS (mTLS) to the upstream.
    Http,
    /// Raw TCP from the app; TLS (mTLS) to the upstream.
    Tcp,
}

impl EgressMode {
    /// `http` or `tcp`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EgressMode::Http => "http",
            EgressMode::Tcp => "tcp",
        }
    }
}

/// A protocol exchange done in the clear before TLS (tcp mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StartTls {
    /// PostgreSQL: send `SSLRequest`, expect `S`, then TLS.
    Postgres,
}

/// Where the private key of a service's identity is.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// A PEM file (PKCS#8, PKCS#1 or SEC1).
    File(PathBuf),
    /// An RFC 7512 `pkcs11:` URI: the key stays in the token (ECDSA).
    Pkcs11(String),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(p) => f.debug_tuple("File").field(p).finish(),
            // The query may carry pin-value: never printed.
            KeySource::Pkcs11(u) => {
                let path = u.split_once('?').map_or(u.as_str(), |(p, _)| p);
                f.debug_tuple("Pkcs11").field(&path).finish()
            }
        }
    }
}

impl KeySource {
    fn from_config(base: &Path, s: &str) -> KeySource {
        if s.starts_with("pkcs11:") {
            KeySource::Pkcs11(s.to_owned())
        } else {
            KeySource::File(base.join(s))
        }
    }

    /// The file, when the key is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            KeySource::File(p) => Some(p),
            KeySource::Pkcs11(_) => None,
        }
    }
}

/// Checks a `pkcs11:` key reference without echoing it (it may hold a PIN).
fn check_key(at: &str, key: &str, p: &mut Vec<String>) {
    if key.starts_with("pkcs11:") {
        if let Err(e) = pki::custody::Pkcs11Uri::parse(key) {
            p.push(format!("{at}: key is not a usable PKCS#11 URI: {e}"));
        }
    }
}

/// Where an upstream is and how it must prove who it is: the service's
/// identity (client certificate), the CA the upstream must chain to, and the
/// expected name and SPIFFE ID. Connections are pooled per distinct value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Binding {
    /// Upstream host (DNS name or IP address, without brackets).
    pub host: String,
    /// Upstream port.
    pub port: u16,
    /// Client certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// Its private key: a PEM file or a PKCS#11 URI.
    pub key: KeySource,
    /// CA certificates the upstream's certificate must chain to.
    pub ca: PathBuf,
    /// SNI and the name the upstream's certificate must be valid for;
    /// `None`: the upstream host, unless `spiffe_id` is set (then only the
    /// SPIFFE ID is checked).
    pub server_name: Option<String>,
    /// A URI SAN the upstream's certificate must carry.
    pub spiffe_id: Option<String>,
}

impl Binding {
    /// The name sent as SNI and, unless only a SPIFFE ID is expected,
    /// checked against the certificate.
    pub fn tls_name(&self) -> &str {
        self.server_name.as_deref().unwrap_or(&self.host)
    }

    /// `host:port` as written in a URI authority (IPv6 in brackets).
    pub fn authority(&self) -> String {
        authority(&self.host, self.port)
    }
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A validated `[[egress.route]]`: requests whose path starts with `path`
/// go to `binding`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressRoute {
    /// Path prefix (starts with `/`).
    pub path: String,
    /// Upstream and identity for it.
    pub binding: Binding,
}

/// A validated `[[egress]]` entry; paths are joined with the config's
/// directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressConfig {
    /// Unique name (logs, spans).
    pub name: String,
    /// Local listen address.
    pub listen: SocketAddr,
    /// `http` or `tcp`.
    pub mode: EgressMode,
    /// The default upstream and identity.
    pub binding: Binding,
    /// HTTP: per path prefix, longest first.
    pub routes: Vec<EgressRoute>,
    /// TCP: exchange before TLS.
    pub starttls: Option<StartTls>,
    /// Most app connections open at once (default 1024).
    pub max_connections: usize,
    /// TCP connect, STARTTLS and TLS handshake to the upstream (default 5 s).
    pub connect_timeout: Duration,
    /// HTTP: from sending the request to the response head (default 30 s).
    pub response_timeout: Duration,
    /// TCP: close a connection with no byte in either direction for this
    /// long (`None`, the default: never).
    pub idle_timeout: Option<Duration>,
}

/// Default `egress.max_connections`.
pub const DEFAULT_EGRESS_MAX_CONNECTIONS: usize = 1024;

impl EgressConfig {
    /// Every file this egress names (certificates, keys, CAs), routes
    /// included.
    pub fn files(&self) -> Vec<&Path> {
        let mut v = Vec::new();
        for b in std::iter::once(&self.binding).chain(self.routes.iter().map(|r| &r.binding)) {
            v.extend([b.cert.as_path(), b.ca.as_path()]);
            v.extend(b.key.file());
        }
        v
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

/// `host:port` for tcp mode.
fn host_port(s: &str) -> Option<(String, u16)> {
    let u = format!("tcp://{s}").parse::<Uri>().ok()?;
    if u.path_and_query().is_some_and(|pq| pq.as_str() != "/") || s.contains('/') {
        return None;
    }
    let a = u.authority()?;
    if a.as_str().contains('@') {
        return None;
    }
    let host = a.host().trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), a.port_u16()?))
}

/// `https://host[:port]` for http mode (no path).
fn https_base(s: &str) -> Result<(String, u16), &'static str> {
    let u = s
        .parse::<Uri>()
        .map_err(|_| "is not an https://host:port URL")?;
    if u.scheme_str() != Some("https") {
        return Err("is not an https:// URL (the egress speaks TLS to the upstream)");
    }
    let a = u.authority().ok_or("is not an https://host:port URL")?;
    if a.as_str().contains('@') {
        return Err("has user information; only https://host:port is supported");
    }
    if u.path_and_query().is_some_and(|pq| pq.as_str() != "/") {
        return Err("has a path or query; only https://host:port is supported");
    }
    let host = a.host().trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_owned(), a.port_u16().unwrap_or(443)))
}

fn check_name(at: &str, what: &str, name: &str, p: &mut Vec<String>) {
    if rustls_pki_types::ServerName::try_from(name).is_err() {
        p.push(format!(
            "{at}: {what} {name:?} is not a DNS name or IP address"
        ));
    }
}

fn check_spiffe(at: &str, id: &str, p: &mut Vec<String>) {
    let ok = id
        .parse::<Uri>()
        .ok()
        .is_some_and(|u| u.scheme_str().is_some() && u.authority().is_some());
    if !ok || !id.is_ascii() || id.contains(char::is_whitespace) {
        p.push(format!(
            "{at}: spiffe_id {id:?} is not a URI (like \"spiffe://acme.test/ns/prod/sa/db\")"
        ));
    }
}

/// Validates every `[[egress]]`; problems are appended to `p`. `https` is
/// the gateway's TLS listener (an egress may not take its address).
pub(crate) fn validate(
    raw: &[RawEgress],
    base: &Path,
    https: Option<SocketAddr>,
    p: &mut Vec<String>,
) -> Vec<EgressConfig> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    let mut listens = HashSet::new();
    for (i, e) in raw.iter().enumerate() {
        let at = format!("egress[{i}] ({:?})", e.name);
        if e.name.trim().is_empty() {
            p.push(format!("{at}: name is empty"));
        } else if !names.insert(e.name.clone()) {
            p.push(format!("{at}: name is defined twice"));
        }
        let listen = match e.listen.parse::<SocketAddr>() {
            Ok(a) => {
                if !a.ip().is_loopback() && e.allow_non_loopback != Some(true) {
                    p.push(format!(
                        "{at}: listen {a} is not a loopback address (127.0.0.1, ::1); apps reach \
                         the egress locally. Set allow_non_loopback = true to listen elsewhere"
                    ));
                }
                if a.port() != 0 && !listens.insert(a) {
                    p.push(format!("{at}: listen {a} is used by another egress"));
                }
                if https == Some(a) && a.port() != 0 {
                    p.push(format!("{at}: listen {a} is server.https"));
                }
                Some(a)
            }
            Err(_) => {
                p.push(format!(
                    "{at}: listen {:?} is not an IP address and port (like \"127.0.0.1:15432\")",
                    e.listen
                ));
                None
            }
        };
        let mode = match e.mode.as_str() {
            "http" => Some(EgressMode::Http),
            "tcp" => Some(EgressMode::Tcp),
            other => {
                p.push(format!("{at}: mode {other:?} is not one of http, tcp"));
                None
            }
        };
        let upstream = |s: &str, at: &str, p: &mut Vec<String>| -> Option<(String, u16)> {
            match mode {
                Some(EgressMode::Tcp) => {
                    let r = host_port(s);
                    if r.is_none() {
                        p.push(format!(
                            "{at}: upstream {s:?} is not host:port (tcp mode, like \"db.internal:5432\")"
                        ));
                    }
                    r
                }
                Some(EgressMode::Http) => match https_base(s) {
                    Ok(r) => Some(r),
                    Err(why) => {
                        p.push(format!("{at}: upstream {s:?} {why}"));
                        None
                    }
                },
                None => None,
            }
        };
        let up = upstream(&e.upstream, &at, p);
        for (what, v) in [("cert", &e.cert), ("key", &e.key), ("ca", &e.ca)] {
            if v.is_none() {
                p.push(format!("{at}: {what} is required"));
            }
        }
        if let Some(n) = &e.server_name {
            check_name(&at, "server_name", n, p);
        }
        if let Some(id) = &e.spiffe_id {
            check_spiffe(&at, id, p);
        }
        if let Some(k) = &e.key {
            check_key(&at, k, p);
        }
        let starttls = match (e.starttls.as_deref(), mode) {
            (None, _) => None,
            (Some("postgres"), Some(EgressMode::Tcp)) => Some(StartTls::Postgres),
            (Some("postgres"), Some(EgressMode::Http)) => {
                p.push(format!("{at}: starttls needs mode = \"tcp\""));
                None
            }
            (Some("postgres"), None) => None,
            (Some(other), _) => {
                p.push(format!("{at}: starttls {other:?} is not one of postgres"));
                None
            }
        };
        if mode == Some(EgressMode::Tcp) && e.response_timeout.is_some() {
            p.push(format!("{at}: response_timeout needs mode = \"http\""));
        }
        let idle_timeout = match (e.idle_timeout, mode) {
            (None, _) => None,
            (Some(_), Some(EgressMode::Http)) => {
                p.push(format!("{at}: idle_timeout needs mode = \"tcp\""));
                None
            }
            (Some(s @ 1..=86_400), _) => Some(Duration::from_secs(s.unsigned_abs())),
            (Some(s), _) => {
                p.push(format!(
                    "{at}: idle_timeout = {s} is not a number of seconds from 1 to 86400"
                ));
                None
            }
        };
        if mode == Some(EgressMode::Tcp) && !e.route.is_empty() {
            p.push(format!(
                "{at}: [[egress.route]] needs mode = \"http\" (a tcp egress has one upstream)"
            ));
        }
        let max_connections = match e.max_connections {
            None => DEFAULT_EGRESS_MAX_CONNECTIONS,
            Some(n @ 1..=1_000_000) => usize::try_from(n).unwrap_or(DEFAULT_EGRESS_MAX_CONNECTIONS),
            Some(n) => {
                p.push(format!(
                    "{at}: max_connections = {n} is not a number from 1 to 1000000"
                ));
                DEFAULT_EGRESS_MAX_CONNECTIONS
            }
        };
        let connect_timeout = secs(
            &format!("{at}: connect_timeout"),
            e.connect_timeout,
            Duration::from_secs(5),
            p,
        );
        let response_timeout = secs(
            &format!("{at}: response_timeout"),
            e.response_timeout,
            Duration::from_secs(30),
            p,
        );
        let default = match (up, &e.cert, &e.key, &e.ca) {
            (Some((host, port)), Some(cert), Some(key), Some(ca)) => Some(Binding {
                host,
                port,
                cert: base.join(cert),
                key: KeySource::from_config(base, key),
                ca: base.join(ca),
                server_name: e.server_name.as_ref().map(|n| n.to_ascii_lowercase()),
                spiffe_id: e.spiffe_id.clone(),
            }),
            _ => None,
        };
        let mut routes = Vec::new();
        let mut paths = HashSet::new();
        for (j, r) in e.route.iter().enumerate() {
            let at = format!("{at}: route[{j}] ({:?})", r.path);
            if !r.path.starts_with('/') || r.path.parse::<hyper::http::uri::PathAndQuery>().is_err()
            {
                p.push(format!("{at}: path must start with / (a path prefix)"));
            } else if r.path.contains('?') {
                p.push(format!("{at}: path must not have a query"));
            } else if !paths.insert(r.path.clone()) {
                p.push(format!("{at}: the same path as another route"));
            }
            if r.cert.is_some() != r.key.is_some() {
                p.push(format!("{at}: cert and key go together"));
            }
            if let Some(n) = &r.server_name {
                check_name(&at, "server_name", n, p);
            }
            if let Some(id) = &r.spiffe_id {
                check_spiffe(&at, id, p);
            }
            if let Some(k) = &r.key {
                check_key(&at, k, p);
            }
            let up = match &r.upstream {
                Some(u) => upstream(u, &at, p),
                None => default.as_ref().map(|b| (b.host.clone(), b.port)),
            };
            let (Some(d), Some((host, port))) = (&default, up) else {
                continue;
            };
            // A route to another upstream does not inherit the egress's
            // expected name: that name belongs to the egress's upstream.
            let same_upstream = r.upstream.is_none();
            routes.push(EgressRoute {
                path: r.path.clone(),
                binding: Binding {
                    host,
                    port,
                    cert: r.cert.as_ref().map_or(d.cert.clone(), |c| base.join(c)),
                    key: r
                        .key
                        .as_ref()
                        .map_or(d.key.clone(), |k| KeySource::from_config(base, k)),
                    ca: r.ca.as_ref().map_or(d.ca.clone(), |c| base.join(c)),
                    server_name: match &r.server_name {
                        Some(n) => Some(n.to_ascii_lowercase()),
                        None if same_upstream => d.server_name.clone(),
                        None => None,
                    },
                    spiffe_id: match &r.spiffe_id {
                        Some(s) => Some(s.clone()),
                        None if same_upstream => d.spiffe_id.clone(),
                        None => None,
                    },
                },
            });
        }
        // Longest prefix first: the first match wins.
        routes.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
        if let (Some(listen), Some(mode), Some(binding)) = (listen, mode, default) {
            out.push(EgressConfig {
                name: e.name.clone(),
                listen,
                mode,
                binding,
                routes,
                starttls,
                max_connections,
                connect_timeout,
                response_timeout,
                idle_timeout,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;
    use std::time::Duration;

    const BASE: &str = r#"
[server]
https = "127.0.0.1:8443"
"#;

    const GOOD: &str = r#"
[[egress]]
name = "api-http"
listen = "127.0.0.1:15080"
mode = "http"
upstream = "https://127.0.0.1:8443"
server_name = "Orders.acme.test"
cert = "api.pem"
key = "api-key.pem"
ca = "svc-ca.pem"
response_timeout = 7

[[egress.route]]
path = "/billing/"
upstream = "https://billing.acme.test:9443"
cert = "api-billing.pem"
key = "api-billing-key.pem"
spiffe_id = "spiffe://acme.test/billing"

[[egress.route]]
path = "/"
ca = "other-ca.pem"

[[egress]]
name = "api-db"
listen = "[::1]:15432"
mode = "tcp"
upstream = "db.acme.test:5432"
cert = "/abs/api.pem"
key = "api-key.pem"
ca = "db-ca.pem"
starttls = "postgres"
max_connections = 20
connect_timeout = 3
idle_timeout = 600
"#;

    #[test]
    fn egress_only_config_parses() {
        let c = Config::parse(&format!("{BASE}{GOOD}"), Path::new("/etc/pc")).expect("valid");
        assert!(c.hostnames.is_empty());
        assert_eq!(c.egress.len(), 2);
        let h = &c.egress[0];
        assert_eq!(h.mode, super::EgressMode::Http);
        assert_eq!(h.binding.host, "127.0.0.1");
        assert_eq!(h.binding.port, 8443);
        assert_eq!(h.binding.tls_name(), "orders.acme.test");
        assert_eq!(h.response_timeout.as_secs(), 7);
        // Longest prefix first; a route to another upstream does not
        // inherit the expected name, one to the same upstream does.
        assert_eq!(h.routes[0].path, "/billing/");
        assert_eq!(h.routes[0].binding.authority(), "billing.acme.test:9443");
        assert_eq!(h.routes[0].binding.server_name, None);
        assert_eq!(
            h.routes[0].binding.cert,
            Path::new("/etc/pc/api-billing.pem")
        );
        assert_eq!(
            h.routes[1].binding.server_name.as_deref(),
            Some("orders.acme.test")
        );
        assert_eq!(h.routes[1].binding.ca, Path::new("/etc/pc/other-ca.pem"));
        assert_eq!(h.routes[1].binding.cert, Path::new("/etc/pc/api.pem"));
        let t = &c.egress[1];
        assert_eq!(t.listen, "[::1]:15432".parse().expect("addr"));
        assert_eq!(t.starttls, Some(super::StartTls::Postgres));
        assert_eq!(t.max_connections, 20);
        assert_eq!(t.connect_timeout.as_secs(), 3);
        assert_eq!(t.idle_timeout, Some(Duration::from_secs(600)));
        assert_eq!(h.idle_timeout, None);
        assert_eq!(t.binding.cert, Path::new("/abs/api.pem"));
        assert!(c.files().contains(&Path::new("/etc/pc/db-ca.pem")));
        assert!(c
            .files()
            .contains(&Path::new("/etc/pc/api-billing-key.pem")));
    }

    #[test]
    fn unknown_egress_keys_are_refused() {
        let text = format!(
            "{BASE}{}",
            GOOD.replace("mode = \"tcp\"", "mode = \"tcp\"\nretries = 3")
        );
        let e = Config::parse(&text, Path::new("/")).expect_err("unknown key");
        assert!(e.0[0].contains("retries"), "{e}");
        let text = format!(
            "{BASE}{}",
            GOOD.replace("path = \"/\"", "path = \"/\"\nweight = 1")
        );
        let e = Config::parse(&text, Path::new("/")).expect_err("unknown key");
        assert!(e.0[0].contains("weight"), "{e}");
    }

    #[test]
    fn every_egress_problem_is_listed() {
        let bad = r#"
[[egress]]
name = "a"
listen = "0.0.0.0:15080"
mode = "http"
upstream = "http://plain.acme.test"
server_name = "not a name"
spiffe_id = "nope"
starttls = "postgres"
max_connections = 0
idle_timeout = 5

[[egress.route]]
path = "billing"
cert = "x.pem"

[[egress]]
name = "a"
listen = "127.0.0.1:8443"
mode = "udp"
upstream = "db:5432"
cert = "c"
key = "k"
ca = "ca"

[[egress]]
name = "t"
listen = "localhost:1"
mode = "tcp"
upstream = "https://db:5432"
cert = "c"
key = "k"
ca = "ca"
starttls = "mysql"
response_timeout = 0

[[egress.route]]
path = "/"
"#;
        let e = Config::parse(&format!("{BASE}{bad}"), Path::new("/")).expect_err("invalid");
        let all = e.to_string();
        for needle in [
            "not a loopback address",
            "is not an https:// URL",
            "cert is required",
            "key is required",
            "ca is required",
            "\"not a name\" is not a DNS name",
            "spiffe_id \"nope\"",
            "starttls needs mode = \"tcp\"",
            "max_connections = 0",
            "path must start with /",
            "cert and key go together",
            "name is defined twice",
            "is server.https",
            "\"udp\" is not one of http, tcp",
            "\"localhost:1\" is not an IP address",
            "\"https://db:5432\" is not host:port",
            "\"mysql\" is not one of postgres",
            "response_timeout needs mode = \"http\"",
            "idle_timeout needs mode = \"tcp\"",
            "response_timeout = 0",
            "[[egress.route]] needs mode = \"http\"",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
        assert_eq!(e.0.len(), 21, "{all}");
    }

    #[test]
    fn the_documented_example_is_valid() {
        let text = include_str!("../../../../docs/examples/egress.toml");
        let c =
            Config::parse(text, Path::new("/etc/portcullis")).expect("docs/examples/egress.toml");
        assert_eq!(c.egress.len(), 2);
        assert_eq!(
            c.egress[0].routes[0].binding.authority(),
            "billing.internal:9443"
        );
        assert_eq!(c.egress[1].binding.authority(), "db.internal:5432");
    }

    #[test]
    fn pkcs11_keys_are_not_files_and_their_pin_is_not_printed() {
        let uri = "pkcs11:token=t;object=api?module-path=/m.so&pin-value=s3cret";
        let text = format!(
            "{BASE}{}",
            GOOD.replace(
                "key = \"api-key.pem\"\nca = \"svc-ca.pem\"",
                &format!("key = \"{uri}\"\nca = \"svc-ca.pem\"")
            )
        );
        let c = Config::parse(&text, Path::new("/etc/pc")).expect("valid");
        assert_eq!(
            c.egress[0].binding.key,
            super::KeySource::Pkcs11(uri.to_owned())
        );
        assert!(!c
            .files()
            .iter()
            .any(|f| f.to_string_lossy().contains("pkcs11")));
        assert!(!format!("{c:?}").contains("s3cret"));
        let text = text.replace(uri, "pkcs11:token=t;object");
        let e = Config::parse(&text, Path::new("/")).expect_err("bad URI");
        assert!(e.to_string().contains("not a usable PKCS#11 URI"), "{e}");
    }

    #[test]
    fn non_loopback_listen_needs_explicit_permission() {
        let text = format!(
            "{BASE}{}",
            GOOD.replace(
                "listen = \"127.0.0.1:15080\"",
                "listen = \"0.0.0.0:15080\"\nallow_non_loopback = true"
            )
        );
        let c = Config::parse(&text, Path::new("/")).expect("valid");
        assert!(c.egress[0].listen.ip().is_unspecified());
    }
}
