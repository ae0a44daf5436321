//! Edge policy keys of a `[[hostname]]` (docs/policy.md): the raw TOML
//! tables `[[hostname.token]]`, `[[hostname.rule]]`,
//! `[[hostname.rate_limit]]` and their validated forms. Validation
//! compiles every rule expression, so a config with a bad one is refused
//! (with the position) at start and at reload.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::http::{HeaderName, HeaderValue, StatusCode};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::config::BlockResponse;

/// Raw `[[hostname.token]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawToken {
    scheme: String,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    secret_files: Vec<String>,
    param: Option<String>,
    header: Option<String>,
    ttl: Option<i64>,
    expiry: Option<String>,
    max_future_skew: Option<i64>,
    expression: Option<String>,
    expires_param: Option<String>,
    block_status: Option<i64>,
    block_content_type: Option<String>,
    block_body: Option<String>,
}

/// Raw `[[hostname.rule]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    name: String,
    expression: String,
    action: String,
    #[serde(default)]
    simulate: bool,
    block_status: Option<i64>,
    block_content_type: Option<String>,
    block_body: Option<String>,
}

/// Raw `[[hostname.rate_limit]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    name: String,
    key: String,
    header: Option<String>,
    period: i64,
    limit: i64,
    mitigation_timeout: Option<i64>,
    store: Option<String>,
    redis_url: Option<String>,
    on_redis_error: Option<String>,
    max_keys: Option<i64>,
}

/// A secret written in the config. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct InlineSecret(pub Zeroizing<String>);

impl fmt::Debug for InlineSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret elided]")
    }
}

/// Token scheme and its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenScheme {
    /// Cloudflare `is_timed_hmac_valid_v0`.
    Cloudflare {
        /// `None`: `ts` is an absolute expiry; `Some(ttl)`: signing time.
        ttl: Option<u64>,
        /// Seconds a `ts` may be ahead.
        max_future_skew: u64,
    },
    /// nginx `secure_link_md5`.
    Nginx {
        /// The expression (validated).
        expression: String,
        /// Query parameter with the expiry.
        expires_param: String,
    },
    /// Akamai EdgeAuth 2.0 (hex key).
    Akamai {
        /// Seconds a start time may be ahead.
        max_future_skew: u64,
    },
}

impl TokenScheme {
    /// `cloudflare`, `nginx` or `akamai`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenScheme::Cloudflare { .. } => "cloudflare",
            TokenScheme::Nginx { .. } => "nginx",
            TokenScheme::Akamai { .. } => "akamai",
        }
    }
}

/// Where a token is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenLocation {
    /// A query parameter (for Cloudflare: the last one).
    Param(String),
    /// A request header.
    Header(HeaderName),
}

/// A validated `[[hostname.token]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenConfig {
    /// Path patterns (`*` matches any characters) this token guards.
    pub paths: Vec<String>,
    /// Scheme.
    pub scheme: TokenScheme,
    /// Secrets written in the config.
    pub secrets: Vec<InlineSecret>,
    /// Files holding one secret each (read with the certificates).
    pub secret_files: Vec<PathBuf>,
    /// Where the token is.
    pub location: TokenLocation,
    /// The answer to a refused token (default body
    /// `{"error":"invalid token","reason":"<code>"}`).
    pub block: BlockResponse,
}

/// How a rate limit's key is chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RateKey {
    /// SHA-256 fingerprint of the client certificate.
    CertFingerprint,
    /// Client IP.
    Ip,
    /// The id of the accepted token.
    TokenId,
    /// A request header's value.
    Header(HeaderName),
}

/// A validated `[[hostname.rate_limit]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// The key.
    pub key: RateKey,
    /// The limit (name, period, limit, mitigation, store).
    pub spec: policy::ratelimit::LimitSpec,
}

/// The edge policy of one hostname.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeConfig {
    /// Token checks, first matching path wins.
    pub tokens: Vec<TokenConfig>,
    /// Rules in order.
    pub rules: Vec<policy::rules::RuleSpec>,
    /// Rate limits, all applied.
    pub rate_limits: Vec<RateLimitConfig>,
}

impl EdgeConfig {
    /// Nothing configured.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.rules.is_empty() && self.rate_limits.is_empty()
    }
}

fn block(
    at: &str,
    status: Option<i64>,
    ct: Option<&String>,
    body: Option<&String>,
    p: &mut Vec<String>,
) -> BlockResponse {
    let mut b = BlockResponse::default();
    if let Some(s) = status {
        match u16::try_from(s)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
        {
            Some(st) if (200..=599).contains(&st.as_u16()) => b.status = st,
            _ => p.push(format!(
                "{at}: block_status {s} is not an HTTP status from 200 to 599"
            )),
        }
    }
    if let Some(ct) = ct {
        match HeaderValue::from_str(ct) {
            Ok(v) => b.content_type = v,
            Err(_) => p.push(format!(
                "{at}: block_content_type {ct:?} is not a valid header value"
            )),
        }
    }
    b.body = body.cloned();
    b
}

fn secs(at: &str, what: &str, v: i64, min: i64, p: &mut Vec<String>) -> u64 {
    if (min..=31_536_000).contains(&v) {
        v.unsigned_abs()
    } else {
        p.push(format!(
            "{at}: {what} = {v} is not a number of seconds from {min} to 31536000"
        ));
        min.unsigned_abs()
    }
}

fn header_name(at: &str, h: &str, p: &mut Vec<String>) -> Option<HeaderName> {
    match HeaderName::from_bytes(h.as_bytes()) {
        Ok(n) => Some(n),
        Err(_) => {
            p.push(format!("{at}: {h:?} is not a header name"));
            None
        }
    }
}

fn token(at: &str, t: &RawToken, base: &Path, p: &mut Vec<String>) -> Option<TokenConfig> {
    let skew = t
        .max_future_skew
        .map_or(60, |s| secs(at, "max_future_skew", s, 0, p));
    let scheme = match t.scheme.as_str() {
        "cloudflare" => {
            let ttl = match (t.expiry.as_deref().unwrap_or("ttl"), t.ttl) {
                ("ttl", Some(ttl)) => Some(secs(at, "ttl", ttl, 1, p)),
                ("ttl", None) => {
                    p.push(format!(
                        "{at}: a cloudflare token needs ttl (or expiry = \"absolute\")"
                    ));
                    None
                }
                ("absolute", None) => None,
                ("absolute", Some(_)) => {
                    p.push(format!(
                        "{at}: ttl has no meaning with expiry = \"absolute\""
                    ));
                    None
                }
                (other, _) => {
                    p.push(format!(
                        "{at}: expiry {other:?} is not one of ttl, absolute"
                    ));
                    None
                }
            };
            TokenScheme::Cloudflare {
                ttl,
                max_future_skew: skew,
            }
        }
        "nginx" => {
            let expression = t
                .expression
                .clone()
                .unwrap_or_else(|| tokens::nginx::DEFAULT_EXPRESSION.to_owned());
            if let Err(e) = tokens::nginx::Expression::parse(&expression) {
                p.push(format!("{at}: expression: {e}"));
            }
            TokenScheme::Nginx {
                expression,
                expires_param: t
                    .expires_param
                    .clone()
                    .unwrap_or_else(|| "expires".to_owned()),
            }
        }
        "akamai" => TokenScheme::Akamai {
            max_future_skew: skew,
        },
        other => {
            p.push(format!(
                "{at}: scheme {other:?} is not one of cloudflare, nginx, akamai"
            ));
            return None;
        }
    };
    if !matches!(scheme, TokenScheme::Cloudflare { .. }) && t.ttl.is_some() {
        p.push(format!(
            "{at}: ttl is for cloudflare tokens (nginx and akamai tokens carry their expiry)"
        ));
    }
    if !matches!(scheme, TokenScheme::Nginx { .. })
        && (t.expression.is_some() || t.expires_param.is_some())
    {
        p.push(format!(
            "{at}: expression and expires_param are for nginx tokens"
        ));
    }
    let location = match (&t.param, &t.header) {
        (Some(_), Some(_)) => {
            p.push(format!("{at}: param and header exclude each other"));
            return None;
        }
        (None, Some(h)) => {
            if matches!(scheme, TokenScheme::Nginx { .. }) {
                p.push(format!("{at}: nginx tokens are read from query parameters"));
            }
            TokenLocation::Header(header_name(at, h, p)?)
        }
        (Some(q), None) => TokenLocation::Param(q.clone()),
        (None, None) => TokenLocation::Param(
            match scheme {
                TokenScheme::Cloudflare { .. } => tokens::cloudflare::DEFAULT_PARAM,
                TokenScheme::Nginx { .. } => "md5",
                TokenScheme::Akamai { .. } => "__token__",
            }
            .to_owned(),
        ),
    };
    if let TokenLocation::Param(q) = &location {
        if q.is_empty() || q.contains(['&', '=', '?', '#']) {
            p.push(format!("{at}: param {q:?} is not a query parameter name"));
        }
    }
    if t.secrets.is_empty() && t.secret_files.is_empty() {
        p.push(format!("{at}: needs at least one of secrets, secret_files"));
    }
    for s in &t.secrets {
        let ok = match scheme {
            TokenScheme::Akamai { .. } => tokens::Secret::from_hex(s).is_ok(),
            _ => !s.is_empty(),
        };
        if !ok {
            // Never echo the secret itself.
            p.push(format!(
                "{at}: a secret is empty{}",
                if matches!(scheme, TokenScheme::Akamai { .. }) {
                    " or not even-length hex (akamai keys are hex)"
                } else {
                    ""
                }
            ));
        }
    }
    let paths = if t.paths.is_empty() {
        vec!["/*".to_owned()]
    } else {
        t.paths.clone()
    };
    for path in &paths {
        if !path.starts_with('/') && path != "*" {
            p.push(format!("{at}: path pattern {path:?} must start with '/'"));
        }
    }
    let block = block(
        at,
        t.block_status,
        t.block_content_type.as_ref(),
        t.block_body.as_ref(),
        p,
    );
    Some(TokenConfig {
        paths,
        scheme,
        secrets: t
            .secrets
            .iter()
            .map(|s| InlineSecret(Zeroizing::new(s.clone())))
            .collect(),
        secret_files: t.secret_files.iter().map(|f| base.join(f)).collect(),
        location,
        block,
    })
}

fn rule(at: &str, r: &RawRule, p: &mut Vec<String>) -> policy::rules::RuleSpec {
    use policy::rules::{ActionSpec, BlockResponse as RuleBlock};
    let has_block_fields =
        r.block_status.is_some() || r.block_content_type.is_some() || r.block_body.is_some();
    let action = match r.action.as_str() {
        "block" => {
            let b = block(
                at,
                r.block_status,
                r.block_content_type.as_ref(),
                r.block_body.as_ref(),
                p,
            );
            ActionSpec::Block(RuleBlock {
                status: b.status.as_u16(),
                content_type: b
                    .content_type
                    .to_str()
                    .unwrap_or("application/json")
                    .to_owned(),
                body: b.body,
            })
        }
        "log" | "skip" | "allow" => {
            if has_block_fields {
                p.push(format!("{at}: block_* keys need action = \"block\""));
            }
            if r.action == "log" {
                ActionSpec::Log
            } else {
                ActionSpec::Skip
            }
        }
        other => {
            p.push(format!(
                "{at}: action {other:?} is not one of block, log, skip, allow"
            ));
            ActionSpec::Log
        }
    };
    policy::rules::RuleSpec {
        name: r.name.clone(),
        expression: r.expression.clone(),
        action,
        simulate: r.simulate,
    }
}

fn rate_limit(
    at: &str,
    hostname: &str,
    r: &RawRateLimit,
    p: &mut Vec<String>,
) -> Option<RateLimitConfig> {
    use policy::ratelimit::{LimitSpec, OnError, Store};
    let key = match (r.key.as_str(), &r.header) {
        ("cert_fingerprint", None) => RateKey::CertFingerprint,
        ("ip", None) => RateKey::Ip,
        ("token_id", None) => RateKey::TokenId,
        ("header", Some(h)) => RateKey::Header(header_name(at, h, p)?),
        ("header", None) => {
            p.push(format!("{at}: key = \"header\" needs header = \"<name>\""));
            return None;
        }
        (_, Some(_)) => {
            p.push(format!("{at}: header = … needs key = \"header\""));
            return None;
        }
        (other, None) => {
            p.push(format!(
                "{at}: key {other:?} is not one of cert_fingerprint, ip, token_id, header"
            ));
            return None;
        }
    };
    let period = secs(at, "period", r.period, 1, p);
    let limit = match u64::try_from(r.limit) {
        Ok(l) if l >= 1 => l,
        _ => {
            p.push(format!("{at}: limit = {} is not at least 1", r.limit));
            1
        }
    };
    let mitigation = r
        .mitigation_timeout
        .map_or(0, |m| secs(at, "mitigation_timeout", m, 0, p));
    let store = match (r.store.as_deref().unwrap_or("local"), &r.redis_url) {
        ("local", None) => {
            if r.on_redis_error.is_some() {
                p.push(format!("{at}: on_redis_error needs store = \"redis\""));
            }
            let max_keys = match r.max_keys {
                None => policy::ratelimit::DEFAULT_MAX_KEYS,
                Some(n @ 1..=10_000_000) => usize::try_from(n).unwrap_or(1),
                Some(n) => {
                    p.push(format!(
                        "{at}: max_keys = {n} is not a number from 1 to 10000000"
                    ));
                    1
                }
            };
            Store::Local { max_keys }
        }
        ("redis", Some(url)) => {
            if r.max_keys.is_some() {
                p.push(format!("{at}: max_keys is for store = \"local\""));
            }
            let on_error = match r.on_redis_error.as_deref().unwrap_or("open") {
                "open" => OnError::Open,
                "closed" => OnError::Closed,
                other => {
                    p.push(format!(
                        "{at}: on_redis_error {other:?} is not one of open, closed"
                    ));
                    OnError::Open
                }
            };
            Store::Redis {
                url: url.clone(),
                on_error,
            }
        }
        ("redis", None) => {
            p.push(format!("{at}: store = \"redis\" needs redis_url"));
            return None;
        }
        ("local", Some(_)) => {
            p.push(format!("{at}: redis_url needs store = \"redis\""));
            return None;
        }
        (other, _) => {
            p.push(format!("{at}: store {other:?} is not one of local, redis"));
            return None;
        }
    };
    let spec = LimitSpec {
        name: r.name.clone(),
        namespace: hostname.to_owned(),
        period: Duration::from_secs(period),
        limit,
        mitigation_timeout: Duration::from_secs(mitigation),
        store,
    };
    // Builds the limiter once to check it (Redis URL syntax; no I/O).
    if let Err(e) = policy::ratelimit::Limiter::new(spec.clone()) {
        p.push(format!("{at}: {e}"));
    }
    Some(RateLimitConfig { key, spec })
}

/// Validates the edge tables of hostname `at` (`name` lowercase).
pub(crate) fn validate(
    at: &str,
    name: &str,
    tokens: &[RawToken],
    rules: &[RawRule],
    limits: &[RawRateLimit],
    base: &Path,
    p: &mut Vec<String>,
) -> EdgeConfig {
    let mut out = EdgeConfig::default();
    for (i, t) in tokens.iter().enumerate() {
        if let Some(t) = token(&format!("{at}: token[{i}]"), t, base, p) {
            out.tokens.push(t);
        }
    }
    for (i, r) in rules.iter().enumerate() {
        out.rules
            .push(rule(&format!("{at}: rule[{i}] ({:?})", r.name), r, p));
    }
    if let Err(errors) = policy::rules::compile(&out.rules) {
        for e in errors {
            p.push(format!("{at}: {e}"));
        }
    }
    let mut names = std::collections::HashSet::new();
    for (i, r) in limits.iter().enumerate() {
        let a = format!("{at}: rate_limit[{i}] ({:?})", r.name);
        if r.name.trim().is_empty() || r.name.contains(':') {
            p.push(format!("{a}: name must be non-empty and without ':'"));
        } else if !names.insert(r.name.as_str()) {
            p.push(format!("{a}: another rate_limit has the same name"));
        }
        if let Some(l) = rate_limit(&a, name, r, p) {
            out.rate_limits.push(l);
        }
    }
    out
}

/// A whole edge policy as one document: the `[[hostname.token]]`,
/// `[[hostname.rule]]` and `[[hostname.rate_limit]]` tables under the keys
/// `token`, `rule` and `rate_limit` (the control-plane store keeps it as
/// JSON).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdge {
    #[serde(default)]
    token: Vec<RawToken>,
    #[serde(default)]
    rule: Vec<RawRule>,
    #[serde(default)]
    rate_limit: Vec<RawRateLimit>,
}

/// `msg` with every token secret and Redis URL of `doc` replaced (serde
/// quotes the offending value in a type error).
fn elide(doc: &serde_json::Value, mut msg: String) -> String {
    let mut secret = Vec::new();
    let lists = ["token", "rate_limit"].map(|k| doc.get(k).and_then(|v| v.as_array()));
    for item in lists.into_iter().flatten().flatten() {
        for key in ["secrets", "redis_url"] {
            match item.get(key) {
                Some(serde_json::Value::String(s)) => secret.push(s.clone()),
                Some(serde_json::Value::Array(a)) => {
                    secret.extend(a.iter().filter_map(|v| v.as_str().map(str::to_owned)))
                }
                _ => {}
            }
        }
    }
    for s in secret.iter().filter(|s| !s.is_empty()) {
        msg = msg.replace(s.as_str(), "[secret elided]");
    }
    msg
}

/// Validates an edge policy kept as a JSON document (`{"token": [...],
/// "rule": [...], "rate_limit": [...]}`, keys as in the TOML tables; `null`
/// or `{}`: none) for hostname `name`. Every problem is listed, rule
/// expressions with their line and column. `secret_files` are refused: a
/// stored policy has its secrets inline.
pub fn from_json(at: &str, name: &str, doc: &serde_json::Value) -> Result<EdgeConfig, Vec<String>> {
    if doc.is_null() {
        return Ok(EdgeConfig::default());
    }
    let raw: RawEdge =
        RawEdge::deserialize(doc).map_err(|e| vec![elide(doc, format!("{at}: {e}"))])?;
    let mut p = Vec::new();
    for (i, t) in raw.token.iter().enumerate() {
        if !t.secret_files.is_empty() {
            p.push(format!(
                "{at}: token[{i}]: secret_files are not available here; put the secrets in `secrets`"
            ));
        }
    }
    let cfg = validate(
        at,
        name,
        &raw.token,
        &raw.rule,
        &raw.rate_limit,
        Path::new("/"),
        &mut p,
    );
    if p.is_empty() {
        Ok(cfg)
    } else {
        Err(p)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    const BASE: &str = r#"
[server]
https = "127.0.0.1:8443"

[[hostname]]
name = "a.test"
cert = "a.pem"
key = "a-key.pem"
origin = "http://127.0.0.1:9001"
"#;

    #[test]
    fn json_documents_are_validated_like_the_toml_tables() {
        use super::from_json;
        let ok = serde_json::json!({
            "rule": [{"name": "admin", "expression": "http.request.uri.path == \"/admin\"",
                      "action": "block", "block_status": 403, "block_body": "no"}],
            "token": [{"scheme": "cloudflare", "secrets": ["s"], "paths": ["/p/*"], "ttl": 60}],
            "rate_limit": [{"name": "ip", "key": "ip", "period": 10, "limit": 5}],
        });
        let c = from_json("edge", "a.test", &ok).expect("valid");
        assert_eq!(
            (c.tokens.len(), c.rules.len(), c.rate_limits.len()),
            (1, 1, 1)
        );
        assert!(from_json("edge", "a.test", &serde_json::Value::Null)
            .expect("null")
            .is_empty());
        let bad = serde_json::json!({
            "rule": [{"name": "x", "expression": "http.request.uri.path ==", "action": "block"}],
            "token": [{"scheme": "cloudflare", "secret_files": ["k"]}],
        });
        let p = from_json("edge", "a.test", &bad).expect_err("invalid");
        assert!(p.iter().any(|m| m.contains("line 1")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("secret_files")), "{p:?}");
        let p = from_json("edge", "a.test", &serde_json::json!({"rules": []})).expect_err("key");
        assert!(p[0].contains("unknown field"), "{p:?}");
        // A secret of the wrong type is not quoted back.
        let doc = serde_json::json!({"token": [{"scheme": "nginx", "secrets": "hunter2-x"}]});
        let p = from_json("edge", "a.test", &doc).expect_err("type");
        assert!(
            !p.join(" ").contains("hunter2-x") && p[0].contains("invalid type"),
            "{p:?}"
        );
    }

    #[test]
    fn full_edge_config_parses() {
        let text = format!(
            r#"{BASE}
[[hostname.token]]
scheme = "cloudflare"
paths = ["/p/*"]
secrets = ["s"]
secret_files = ["k.txt"]
ttl = 60
header = "x-token"

[[hostname.token]]
scheme = "nginx"
secrets = ["s"]

[[hostname.token]]
scheme = "akamai"
secrets = ["0a0b"]
expiry = "ttl"

[[hostname.rule]]
name = "r"
expression = 'ip.src == "1.2.3.4"'
action = "block"
block_status = 451

[[hostname.rate_limit]]
name = "l"
key = "header"
header = "x-api-key"
period = 10
limit = 5
store = "redis"
redis_url = "redis://127.0.0.1:1"
on_redis_error = "closed"
"#
        );
        let text = text.replace("expiry = \"ttl\"\n", "");
        let c = Config::parse(&text, Path::new("/d")).expect("valid");
        let e = &c.hostnames[0].edge;
        assert_eq!(e.tokens.len(), 3);
        assert_eq!(e.rules.len(), 1);
        assert_eq!(e.rate_limits.len(), 1);
        assert_eq!(e.tokens[0].secret_files, [Path::new("/d/k.txt")]);
        assert!(c.files().contains(&Path::new("/d/k.txt")));
        // Secrets are not printed.
        assert!(!format!("{:?}", e.tokens[0]).contains("\"s\""));
    }

    #[test]
    fn edge_problems_are_listed_without_secrets() {
        let text = format!(
            r#"{BASE}
[[hostname.token]]
scheme = "cloudflare"
secrets = ["topsecret"]

[[hostname.token]]
scheme = "akamai"
secrets = ["not-hex-topsecret"]

[[hostname.token]]
scheme = "rot13"

[[hostname.rule]]
name = "bad"
expression = 'http.host =='
action = "block"

[[hostname.rule]]
name = "act"
expression = 'true'
action = "deny"

[[hostname.rate_limit]]
name = "l"
key = "ip"
period = 0
limit = 0
store = "redis"
"#
        );
        let e = Config::parse(&text, Path::new("/")).expect_err("invalid");
        let all = e.to_string();
        for needle in [
            "needs ttl",
            "not even-length hex",
            "\"rot13\"",
            "rule[0] \"bad\": line 1, column",
            "\"deny\"",
            "period = 0",
            "limit = 0",
            "needs redis_url",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
        assert!(!all.contains("topsecret"), "{all}");
    }
}
