//! The edge policy phases, after mTLS enforcement and before forwarding
//! (docs/policy.md): **token → rules → rate limit**. Each phase may end
//! the request with a [`Rejection`](crate::proxy::Rejection); what it
//! found for the access log goes into [`Notes`].
//!
//! Built once per hostname at load ([`EdgePolicy::build`]), once per
//! connection ([`ConnEdge`]: the certificate as the rules see it), and run
//! per request ([`run`]).

pub mod config;

use std::path::Path;
use std::sync::Arc;

use hyper::http::{HeaderMap, Request};
use policy::ratelimit::{Check, Limiter};
use policy::rules::{CertFacts, ConnFacts, RequestFacts, RuleSet, Verdict as RuleVerdict};
use tokens::{akamai, cloudflare, nginx, Secret};

use crate::config::BlockResponse;
use crate::proxy::{ConnContext, Rejection};
use config::{EdgeConfig, RateKey, TokenConfig, TokenLocation, TokenScheme};

/// One token check, ready to run.
#[derive(Debug)]
struct TokenCheck {
    paths: Vec<String>,
    scheme: SchemeRt,
    secrets: Vec<Secret>,
    location: TokenLocation,
    block: Arc<BlockResponse>,
}

#[derive(Debug)]
enum SchemeRt {
    Cloudflare {
        expiry: cloudflare::Expiry,
        skew: u64,
    },
    Nginx {
        expression: nginx::Expression,
        expires_param: String,
    },
    Akamai {
        skew: u64,
    },
}

#[derive(Debug)]
struct LimitCheck {
    key: RateKey,
    limiter: Limiter,
}

/// A hostname's edge policy.
#[derive(Debug)]
pub struct EdgePolicy {
    tokens: Vec<TokenCheck>,
    rules: RuleSet,
    limits: Vec<LimitCheck>,
    /// Whether any limit is keyed by certificate fingerprint.
    needs_fingerprint: bool,
    /// Whether any limit is keyed by token id.
    needs_token_id: bool,
}

/// What the phases found, for the access log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Notes {
    /// Token result: `valid` or a refusal code (`missing`, `bad-mac`,
    /// `expired`, ...); `None` when no token check applied.
    pub token: Option<&'static str>,
    /// The accepted token's id (only when a rate limit is keyed by
    /// `token_id`).
    pub token_id: Option<String>,
    /// The rule that decided (`block` or `skip`), or the first logged one.
    pub rule: Option<String>,
    /// `block`, `skip` or `log`.
    pub action: Option<&'static str>,
    /// Every rule that matched with `log` or a simulated `block`.
    pub rules_logged: Vec<String>,
    /// Rules that failed to evaluate (did not match).
    pub rule_errors: Vec<String>,
    /// The rate limit that refused the request, or that could not reach
    /// Redis (then `rate_limit_store` says `failed-open`).
    pub rate_limit: Option<String>,
    /// `failed-open` when a Redis-backed limit let a request through
    /// because Redis was unreachable.
    pub rate_limit_store: Option<&'static str>,
}

/// Per connection: the certificate as rules and rate limits see it.
#[derive(Debug, Default)]
pub struct ConnEdge {
    fingerprint: Option<String>,
    facts: Option<ConnFacts>,
}

impl ConnEdge {
    /// Computed once after the handshake (nothing when the hostname has no
    /// edge policy).
    pub fn new(
        edge: Option<&EdgePolicy>,
        verdict: Option<&client_auth::Verdict>,
        chain: &[client_auth::CertificateDer<'_>],
    ) -> ConnEdge {
        let Some(edge) = edge else {
            return ConnEdge::default();
        };
        if edge.rules.is_empty() && !edge.needs_fingerprint {
            return ConnEdge::default();
        }
        let parsed = chain
            .first()
            .and_then(|leaf| client_auth::CertFacts::from_der(leaf).ok());
        let mut cert = CertFacts {
            presented: !chain.is_empty(),
            ..CertFacts::default()
        };
        if let Some(v) = verdict {
            cert.verified = v.is_valid();
            if let Some(r) = v.reason() {
                cert.error = r.as_str().to_owned();
                cert.revoked = cert.error == "revoked";
            }
        }
        if let Some(f) = &parsed {
            cert.subject_dn = f.subject.clone();
            cert.issuer_dn = f.issuer.clone();
            cert.serial = f.serial.clone();
            cert.fingerprint_sha256 = f.sha256.clone();
            cert.ski = f.ski.clone().unwrap_or_default();
            cert.not_before = f.not_before.clone();
            cert.not_after = f.not_after.clone();
            for san in &f.sans {
                use client_auth::SubjectAltName as S;
                match san {
                    S::Dns(d) => cert.sans_dns.push(d.clone()),
                    S::Uri(u) => cert.sans_uri.push(u.clone()),
                    S::Email(e) => cert.sans_email.push(e.clone()),
                    S::Ip(i) => cert.sans_ip.push(i.to_string()),
                    _ => {}
                }
            }
        }
        ConnEdge {
            fingerprint: parsed.map(|f| f.sha256),
            facts: (!edge.rules.is_empty()).then(|| edge.rules.connection(&cert)),
        }
    }
}

type ReadFn<'a> = dyn Fn(&Path) -> std::io::Result<Vec<u8>> + 'a;

impl EdgePolicy {
    /// Builds a hostname's policy: reads secret files through `read`,
    /// compiles rules, creates limiters. `None` when nothing is
    /// configured. Problems are pushed to `p`.
    pub fn build(
        at: &str,
        cfg: &EdgeConfig,
        read: &ReadFn<'_>,
        p: &mut Vec<String>,
    ) -> Option<Arc<EdgePolicy>> {
        if cfg.is_empty() {
            return None;
        }
        let before = p.len();
        let mut tokens_out = Vec::new();
        for (i, t) in cfg.tokens.iter().enumerate() {
            if let Some(t) = token_check(&format!("{at}: token[{i}]"), t, read, p) {
                tokens_out.push(t);
            }
        }
        let rules = match policy::rules::compile(&cfg.rules) {
            Ok(r) => Some(r),
            Err(errors) => {
                for e in errors {
                    p.push(format!("{at}: {e}"));
                }
                None
            }
        };
        let mut limits = Vec::new();
        for l in &cfg.rate_limits {
            match Limiter::new(l.spec.clone()) {
                Ok(limiter) => limits.push(LimitCheck {
                    key: l.key.clone(),
                    limiter,
                }),
                Err(e) => p.push(format!("{at}: rate_limit {:?}: {e}", l.spec.name)),
            }
        }
        if p.len() != before {
            return None;
        }
        let needs_fingerprint = limits.iter().any(|l| l.key == RateKey::CertFingerprint);
        let needs_token_id = limits.iter().any(|l| l.key == RateKey::TokenId);
        Some(Arc::new(EdgePolicy {
            tokens: tokens_out,
            rules: rules?,
            limits,
            needs_fingerprint,
            needs_token_id,
        }))
    }
}

fn token_check(
    at: &str,
    t: &TokenConfig,
    read: &ReadFn<'_>,
    p: &mut Vec<String>,
) -> Option<TokenCheck> {
    let hex = matches!(t.scheme, TokenScheme::Akamai { .. });
    let make = |bytes: &[u8]| -> Result<Secret, tokens::SetupError> {
        if hex {
            Secret::from_hex(std::str::from_utf8(bytes).unwrap_or(""))
        } else {
            Secret::new(bytes.to_vec())
        }
    };
    let mut secrets = Vec::new();
    for s in &t.secrets {
        match make(s.0.as_bytes()) {
            Ok(s) => secrets.push(s),
            Err(e) => p.push(format!("{at}: {e}")),
        }
    }
    for f in &t.secret_files {
        match read(f) {
            Ok(b) => {
                let b = zeroize::Zeroizing::new(b);
                let mut text: &[u8] = &b;
                while let Some((last, rest)) = text.split_last() {
                    if *last == b'\n' || *last == b'\r' {
                        text = rest;
                    } else {
                        break;
                    }
                }
                match make(text) {
                    Ok(s) => secrets.push(s),
                    Err(e) => p.push(format!("{at}: {}: {e}", f.display())),
                }
            }
            Err(e) => p.push(format!("{at}: cannot read {}: {e}", f.display())),
        }
    }
    let scheme = match &t.scheme {
        TokenScheme::Cloudflare {
            ttl,
            max_future_skew,
        } => SchemeRt::Cloudflare {
            expiry: ttl.map_or(cloudflare::Expiry::Absolute, cloudflare::Expiry::Ttl),
            skew: *max_future_skew,
        },
        TokenScheme::Nginx {
            expression,
            expires_param,
        } => match nginx::Expression::parse(expression) {
            Ok(e) => SchemeRt::Nginx {
                expression: e,
                expires_param: expires_param.clone(),
            },
            Err(e) => {
                p.push(format!("{at}: {e}"));
                return None;
            }
        },
        TokenScheme::Akamai { max_future_skew } => SchemeRt::Akamai {
            skew: *max_future_skew,
        },
    };
    Some(TokenCheck {
        paths: t.paths.clone(),
        scheme,
        secrets,
        location: t.location.clone(),
        block: Arc::new(t.block.clone()),
    })
}

/// `*` matches any run of characters.
fn glob(pattern: &str, path: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = path.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for m in middle {
        match rest.find(m) {
            Some(i) => rest = &rest[i + m.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn header<'h>(h: &'h HeaderMap, name: &hyper::http::HeaderName) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Phase: token. The first token check whose path pattern matches
/// applies; none matching means no token is needed.
fn token_phase<B>(
    edge: &EdgePolicy,
    ctx: &ConnContext,
    req: &Request<B>,
    notes: &mut Notes,
) -> Result<(), Rejection> {
    let path = req.uri().path();
    let Some(t) = edge
        .tokens
        .iter()
        .find(|t| t.paths.iter().any(|p| p == "*" || glob(p, path)))
    else {
        return Ok(());
    };
    let pq = req.uri().path_and_query().map_or(path, |pq| pq.as_str());
    let query = req.uri().query().unwrap_or("");
    let now = now_secs();
    let ip = || ctx.peer.ip().to_string();
    let result = match (&t.scheme, &t.location) {
        (SchemeRt::Cloudflare { expiry, skew }, loc) => {
            let v = cloudflare::Verifier {
                secrets: &t.secrets,
                expiry: *expiry,
                max_future_skew: *skew,
            };
            match loc {
                TokenLocation::Param(q) => {
                    cloudflare::split_url(pq, q).and_then(|(m, tok)| v.verify(m, &tok, now))
                }
                TokenLocation::Header(h) => match header(req.headers(), h) {
                    None => Err(tokens::Error::Missing),
                    Some(tok) => v.verify(pq, tok, now),
                },
            }
        }
        (
            SchemeRt::Nginx {
                expression,
                expires_param,
            },
            TokenLocation::Param(q),
        ) => match query_param(query, q) {
            None => Err(tokens::Error::Missing),
            Some(md5) => nginx::verify(
                expression,
                &t.secrets,
                path,
                &ip(),
                md5,
                query_param(query, expires_param),
                now,
            ),
        },
        (SchemeRt::Nginx { .. }, TokenLocation::Header(_)) => Err(tokens::Error::Missing),
        (SchemeRt::Akamai { skew }, loc) => {
            let tok = match loc {
                TokenLocation::Param(q) => query_param(query, q),
                TokenLocation::Header(h) => header(req.headers(), h),
            };
            match tok {
                None => Err(tokens::Error::Missing),
                Some(tok) => akamai::verify(&t.secrets, tok, path, Some(&ip()), now, *skew),
            }
        }
    };
    match result {
        Ok(v) => {
            notes.token = Some("valid");
            if edge.needs_token_id {
                notes.token_id = Some(v.id());
            }
            Ok(())
        }
        Err(e) => {
            notes.token = Some(e.code());
            Err(Rejection::Token {
                reason: e.code(),
                block: t.block.clone(),
            })
        }
    }
}

/// Phase: rules, in order.
fn rules_phase<B>(
    edge: &EdgePolicy,
    ctx: &ConnContext,
    req: &Request<B>,
    notes: &mut Notes,
) -> Result<(), Rejection> {
    if edge.rules.is_empty() {
        return Ok(());
    }
    let empty;
    let conn = match &ctx.edge.facts {
        Some(f) => f,
        None => {
            empty = edge.rules.connection(&CertFacts::default());
            &empty
        }
    };
    let ip = ctx.peer.ip().to_string();
    let headers: Vec<(&str, &str)> = if edge.rules.needs_headers() {
        req.headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect()
    } else {
        Vec::new()
    };
    let facts = RequestFacts {
        host: &ctx.site.name,
        method: req.method().as_str(),
        path: req.uri().path(),
        query: req.uri().query().unwrap_or(""),
        headers,
        ip: &ip,
        timestamp: i64::try_from(now_secs()).unwrap_or(i64::MAX),
    };
    let out = edge.rules.evaluate(conn, &facts);
    notes.rules_logged = out.logged.iter().map(|s| (*s).to_owned()).collect();
    notes.rule_errors = out.errors.iter().map(|s| (*s).to_owned()).collect();
    for r in &out.logged {
        tracing::info!(rule = r, "rule matched (log)");
    }
    match out.verdict {
        RuleVerdict::Block { rule, response } => {
            notes.rule = Some(rule.to_owned());
            notes.action = Some("block");
            Err(Rejection::Rule {
                rule: rule.to_owned(),
                status: response.status,
                content_type: response.content_type.clone(),
                body: response.body.clone(),
            })
        }
        RuleVerdict::Skip { rule } => {
            notes.rule = Some(rule.to_owned());
            notes.action = Some("skip");
            Ok(())
        }
        RuleVerdict::Pass => {
            if let Some(first) = out.logged.first() {
                notes.rule = Some((*first).to_owned());
                notes.action = Some("log");
            }
            Ok(())
        }
    }
}

/// Phase: rate limits, each counted; the first over its limit refuses.
/// A request without the value a limit is keyed by (no certificate, no
/// token, no such header) is counted under its IP address instead.
async fn rate_limit_phase<B>(
    edge: &EdgePolicy,
    ctx: &ConnContext,
    req: &Request<B>,
    notes: &mut Notes,
) -> Result<(), Rejection> {
    for l in &edge.limits {
        let ip = || format!("ip:{}", ctx.peer.ip());
        let key = match &l.key {
            RateKey::Ip => ip(),
            RateKey::CertFingerprint => ctx
                .edge
                .fingerprint
                .as_ref()
                .map_or_else(ip, |f| format!("fp:{f}")),
            RateKey::TokenId => notes
                .token_id
                .as_ref()
                .map_or_else(ip, |t| format!("token:{t}")),
            RateKey::Header(h) => {
                header(req.headers(), h).map_or_else(ip, |v| format!("header:{v}"))
            }
        };
        let name = &l.limiter.spec().name;
        match l.limiter.check(&key).await {
            Check::Allowed | Check::Untracked => {}
            Check::FailedOpen => {
                notes.rate_limit = Some(name.clone());
                notes.rate_limit_store = Some("failed-open");
            }
            Check::Limited { retry_after } => {
                notes.rate_limit = Some(name.clone());
                return Err(Rejection::RateLimited {
                    limit: name.clone(),
                    retry_after,
                });
            }
            Check::Unavailable => {
                notes.rate_limit = Some(name.clone());
                notes.rate_limit_store = Some("failed-closed");
                return Err(Rejection::RateLimitUnavailable {
                    limit: name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Runs token → rules → rate limit for one request (nothing when the
/// hostname has no edge policy).
pub async fn run<B>(
    ctx: &ConnContext,
    req: &Request<B>,
    notes: &mut Notes,
) -> Result<(), Rejection> {
    let Some(edge) = ctx.site.edge.as_deref() else {
        return Ok(());
    };
    token_phase(edge, ctx, req, notes)?;
    rules_phase(edge, ctx, req, notes)?;
    rate_limit_phase(edge, ctx, req, notes).await
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("/*", "/a/b"));
        assert!(glob("/images/*.jpg", "/images/cat.jpg"));
        assert!(!glob("/images/*.jpg", "/images/cat.png"));
        assert!(glob("/exact", "/exact"));
        assert!(!glob("/exact", "/exact/more"));
    }
}
