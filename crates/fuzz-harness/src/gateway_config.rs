//! The gateway's TOML configuration (`gateway::config::Config::parse`).
//!
//! Two modes, picked by the first byte: raw TOML text, or a configuration
//! assembled field by field from the input (structure-aware, so most
//! inputs are well-formed TOML and reach validation). Oracles: parsing
//! never panics; a failure lists at least one non-empty problem; a success
//! keeps every hostname. [`config_error_templates`] lists one case per
//! problem the parser can report, which the stable tests check one by one.

use std::path::Path;

use gateway::config::Config;

use crate::Input;

/// `[hostname.mtls]` as typed: mode, cas, block_status, block_content_type.
pub type MtlsCase = (String, Vec<String>, Option<i64>, Option<String>);

/// One `[[hostname]]` as typed.
#[derive(Clone, Debug, Default)]
pub struct HostCase {
    /// `name`.
    pub name: String,
    /// `origin`.
    pub origin: String,
    /// `origin_ca`.
    pub origin_ca: Option<String>,
    /// `origin_cert`.
    pub origin_cert: Option<String>,
    /// `origin_key`.
    pub origin_key: Option<String>,
    /// `[hostname.mtls]`.
    pub mtls: Option<MtlsCase>,
}

/// A whole configuration as typed.
#[derive(Clone, Debug, Default)]
pub struct ConfigCase {
    /// `server.https`.
    pub https: String,
    /// `server.admin`.
    pub admin: Option<String>,
    /// `server.max_connections`.
    pub max_connections: Option<i64>,
    /// `server.origin_connect_timeout`.
    pub connect_timeout: Option<i64>,
    /// `[[ca]]` names.
    pub cas: Vec<String>,
    /// `[[hostname]]` entries.
    pub hostnames: Vec<HostCase>,
    /// An extra `key = "value"` line in `[server]`.
    pub extra: Option<String>,
}

impl ConfigCase {
    /// A valid configuration: one CA, one enforcing hostname.
    pub fn valid() -> Self {
        ConfigCase {
            https: "127.0.0.1:8443".into(),
            admin: Some("127.0.0.1:9443".into()),
            max_connections: Some(100),
            connect_timeout: Some(5),
            cas: vec!["acme".into()],
            hostnames: vec![HostCase {
                name: "api.acme.test".into(),
                origin: "http://127.0.0.1:9001".into(),
                mtls: Some(("enforce".into(), vec!["acme".into()], Some(401), None)),
                ..HostCase::default()
            }],
            extra: None,
        }
    }
}

/// A TOML basic string.
fn q(s: &str) -> String {
    // JSON string escapes are TOML escapes, except that TOML also wants
    // DEL escaped.
    serde_json::to_string(s)
        .expect("string")
        .replace('\u{7f}', "\\u007F")
}

/// The TOML text of a case.
pub fn render_config(c: &ConfigCase) -> String {
    let mut t = format!("[server]\nhttps = {}\n", q(&c.https));
    if let Some(a) = &c.admin {
        t += &format!("admin = {}\n", q(a));
    }
    if let Some(n) = c.max_connections {
        t += &format!("max_connections = {n}\n");
    }
    if let Some(n) = c.connect_timeout {
        t += &format!("origin_connect_timeout = {n}\n");
    }
    if let Some(x) = &c.extra {
        t += &format!("{} = 1\n", q(x));
    }
    for ca in &c.cas {
        t += &format!("\n[[ca]]\nname = {}\npem = \"ca.pem\"\n", q(ca));
    }
    for h in &c.hostnames {
        t += &format!(
            "\n[[hostname]]\nname = {}\ncert = \"c.pem\"\nkey = \"k.pem\"\norigin = {}\n",
            q(&h.name),
            q(&h.origin)
        );
        for (k, v) in [
            ("origin_ca", &h.origin_ca),
            ("origin_cert", &h.origin_cert),
            ("origin_key", &h.origin_key),
        ] {
            if let Some(v) = v {
                t += &format!("{k} = {}\n", q(v));
            }
        }
        if let Some((mode, cas, status, ctype)) = &h.mtls {
            let cas: Vec<String> = cas.iter().map(|c| q(c)).collect();
            t += &format!(
                "[hostname.mtls]\nmode = {}\ncas = [{}]\n",
                q(mode),
                cas.join(", ")
            );
            if let Some(s) = status {
                t += &format!("block_status = {s}\n");
            }
            if let Some(ct) = ctype {
                t += &format!("block_content_type = {}\n", q(ct));
            }
        }
    }
    t
}

const ADDRS: &[&str] = &["127.0.0.1:8443", "[::1]:0", "0.0.0.0:0", "localhost:1", ""];
const NAMES: &[&str] = &[
    "api.acme.test",
    "API.acme.test.",
    "127.0.0.1",
    "*.acme.test",
    "",
];
const ORIGINS: &[&str] = &[
    "http://127.0.0.1:9001",
    "https://origin.test:443",
    "http://127.0.0.1:9001/path",
    "ftp://x",
    "http://",
];
const MODES: &[&str] = &["off", "report", "enforce", "Enforce"];
const CAS: &[&str] = &["acme", "other", ""];

fn number(inp: &mut Input<'_>) -> Option<i64> {
    match inp.choose(4) {
        0 => None,
        1 => Some(i64::from(inp.byte())),
        2 => Some(-i64::from(inp.byte())),
        _ => Some(i64::from_be_bytes([
            inp.byte(),
            inp.byte(),
            inp.byte(),
            inp.byte(),
            inp.byte(),
            inp.byte(),
            inp.byte(),
            inp.byte(),
        ])),
    }
}

fn case_from(inp: &mut Input<'_>) -> ConfigCase {
    let mut c = ConfigCase {
        https: inp.string(30, ADDRS),
        admin: inp.flag().then(|| inp.string(30, ADDRS)),
        max_connections: number(inp),
        connect_timeout: number(inp),
        ..ConfigCase::default()
    };
    for _ in 0..inp.choose(3) {
        c.cas.push(inp.string(10, CAS));
    }
    for _ in 0..inp.choose(4) {
        let mut h = HostCase {
            name: inp.string(40, NAMES),
            origin: inp.string(40, ORIGINS),
            ..HostCase::default()
        };
        if inp.flag() {
            h.origin_ca = Some(inp.string(10, &["ca.pem"]));
        }
        if inp.flag() {
            h.origin_cert = Some(inp.string(10, &["c.pem"]));
        }
        if inp.flag() {
            h.origin_key = Some(inp.string(10, &["k.pem"]));
        }
        if inp.flag() {
            let mode = inp.string(10, MODES);
            let cas = (0..inp.choose(3)).map(|_| inp.string(10, CAS)).collect();
            let status = number(inp);
            let ctype = inp
                .flag()
                .then(|| inp.string(30, &["text/plain", "a\nb", "é"]));
            h.mtls = Some((mode, cas, status, ctype));
        }
        c.hostnames.push(h);
    }
    if inp.byte() == 0xff {
        c.extra = Some(inp.string(10, &["bogus"]));
    }
    c
}

fn check(text: &str, expect_hosts: Option<usize>) {
    match Config::parse(text, Path::new("/etc/portcullis")) {
        Ok(c) => {
            if let Some(n) = expect_hosts {
                assert_eq!(c.hostnames.len(), n, "a hostname was dropped:\n{text}");
            }
        }
        Err(e) => {
            assert!(!e.0.is_empty(), "failure without a problem:\n{text}");
            for m in &e.0 {
                assert!(!m.trim().is_empty(), "empty problem:\n{text}");
            }
        }
    }
}

/// See the module docs.
pub fn gateway_config(data: &[u8]) {
    let mut inp = Input::new(data);
    if inp.flag() {
        let case = case_from(&mut inp);
        check(&render_config(&case), Some(case.hostnames.len()));
    } else {
        check(&String::from_utf8_lossy(inp.rest()), None);
    }
}

/// One case per problem `Config::parse` can report: (a fragment of the
/// message, a configuration that must produce it).
pub fn config_error_templates() -> Vec<(&'static str, String)> {
    let v = ConfigCase::valid;
    let with = |f: &dyn Fn(&mut ConfigCase)| {
        let mut c = v();
        f(&mut c);
        render_config(&c)
    };
    let host = |f: &dyn Fn(&mut HostCase)| {
        let mut c = v();
        f(&mut c.hostnames[0]);
        render_config(&c)
    };
    vec![
        ("TOML parse error", "[server\n".to_owned()),
        (
            "is not an IP address and port",
            with(&|c| c.https = "localhost:1".into()),
        ),
        (
            "are the same address",
            with(&|c| c.admin = Some(c.https.clone())),
        ),
        (
            "is not a number from 1 to 1000000",
            with(&|c| c.max_connections = Some(0)),
        ),
        (
            "is not a number of seconds from 1 to 3600",
            with(&|c| c.connect_timeout = Some(3601)),
        ),
        ("name is empty", with(&|c| c.cas.push(" ".into()))),
        ("is defined twice", with(&|c| c.cas.push("acme".into()))),
        (
            "no [[hostname]] (or [[egress]]) is configured",
            with(&|c| c.hostnames.clear()),
        ),
        (
            "is not a postgres:// or postgresql:// URL",
            render_config(&v()).replacen("[server]\n", "[server]\nstore = \"mysql://x\"\n", 1),
        ),
        (
            "origin_protocol \"h3\" is not one of http1, h2, auto",
            format!(
                "{}\n[[hostname]]\nname = \"b.acme.test\"\ncert = \"c.pem\"\nkey = \"k.pem\"\norigin = \"http://127.0.0.1:9002\"\norigin_protocol = \"h3\"\n",
                render_config(&v())
            ),
        ),
        (
            "path must start with /",
            format!("{}\n[[hostname.route]]\npath = \"x\"\n", render_config(&v())),
        ),
        (
            "the same path as another route",
            format!(
                "{}\n[[hostname.route]]\npath = \"/a\"\n\n[[hostname.route]]\npath = \"/a\"\n",
                render_config(&v())
            ),
        ),
        (
            "origin_ca, origin_cert and origin_key need an https:// origin",
            format!(
                "{}\n[[hostname.route]]\npath = \"/a\"\norigin_ca = \"ca.pem\"\n",
                render_config(&v())
            ),
        ),
        ("name is not a DNS name", host(&|h| h.name = "a b".into())),
        (
            "name is an IP address",
            host(&|h| h.name = "127.0.0.1".into()),
        ),
        (
            "same name as hostname[0]",
            with(&|c| {
                let mut h = c.hostnames[0].clone();
                h.name = "API.ACME.TEST.".into();
                c.hostnames.push(h);
            }),
        ),
        (
            "has a path",
            host(&|h| h.origin = "http://127.0.0.1:9001/x".into()),
        ),
        (
            "is not an http:// or https:// host:port URL",
            host(&|h| h.origin = "ftp://x".into()),
        ),
        (
            "origin_cert and origin_key go together",
            host(&|h| {
                h.origin = "https://o.test".into();
                h.origin_ca = Some("ca.pem".into());
                h.origin_cert = Some("c.pem".into());
            }),
        ),
        (
            "an https:// origin needs origin_ca",
            host(&|h| h.origin = "https://o.test".into()),
        ),
        (
            "need an https:// origin",
            host(&|h| h.origin_ca = Some("ca.pem".into())),
        ),
        (
            "is not one of off, report, enforce",
            host(&|h| h.mtls = Some(("strict".into(), vec!["acme".into()], None, None))),
        ),
        (
            "needs at least one CA in mtls.cas",
            host(&|h| h.mtls = Some(("report".into(), vec![], None, None))),
        ),
        (
            "which no [[ca]] defines",
            host(&|h| h.mtls = Some(("enforce".into(), vec!["nope".into()], None, None))),
        ),
        (
            "is not an HTTP status from 200 to 599",
            host(&|h| h.mtls = Some(("enforce".into(), vec!["acme".into()], Some(99), None))),
        ),
        (
            "is not a valid header value",
            host(&|h| {
                h.mtls = Some((
                    "enforce".into(),
                    vec!["acme".into()],
                    None,
                    Some("a\nb".into()),
                ))
            }),
        ),
    ]
}
