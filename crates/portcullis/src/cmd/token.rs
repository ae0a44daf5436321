//! `portcullis token sign|verify`: HMAC URL tokens (CONTRACT section 5) on
//! the command line, with the same `tokens` code the gateway runs.
//!
//! Secrets come from `--secret` (repeatable), `--secret-file FILE`
//! (repeatable; the file's content, trailing newline removed) or the
//! environment variable `PORTCULLIS_TOKEN_SECRET`, so they need not appear
//! in a process list or shell history. `verify` accepts a token signed by
//! any of the secrets given (rotation).
//!
//! Output is JSON on stdout. Exit codes as `portcullis verify`: 0 valid
//! (or signed), 1 invalid token, 2 usage or unreadable input.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use serde_json::json;
use tokens::{akamai, cloudflare, nginx, Secret};

/// Token subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Sign a path: prints the token and the signed URL.
    Sign(SignArgs),
    /// Verify a signed URL: prints {"valid":…}; exit 0 valid, 1 invalid.
    Verify(VerifyArgs),
}

/// Token schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheme {
    /// Cloudflare is_timed_hmac_valid_v0: `?verify=<ts>-<base64 mac>`.
    Cloudflare,
    /// nginx secure_link_md5: `?md5=<base64url md5>&expires=<unix>`.
    Nginx,
    /// Akamai EdgeAuth 2.0: `?__token__=st=…~exp=…~acl=…~hmac=<hex>` (hex key).
    Akamai,
}

/// Where the secrets come from.
#[derive(Debug, clap::Args)]
pub struct Secrets {
    /// A secret (repeatable). Prefer --secret-file or the environment.
    #[arg(
        long = "secret",
        value_name = "S",
        env = "PORTCULLIS_TOKEN_SECRET",
        hide_env_values = true
    )]
    pub secret: Vec<String>,
    /// A file holding one secret (repeatable).
    #[arg(long = "secret-file", value_name = "FILE")]
    pub secret_file: Vec<PathBuf>,
}

/// `token sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The path (and query) to sign, e.g. /images/cat.jpg. For akamai, the
    /// ACL pattern (e.g. /videos/*).
    pub path: String,
    #[command(flatten)]
    pub secrets: Secrets,
    /// Signing time (Unix seconds), default now.
    #[arg(long, value_name = "UNIX")]
    pub time: Option<u64>,
    /// Token scheme.
    #[arg(long, value_enum, default_value_t = Scheme::Cloudflare)]
    pub scheme: Scheme,
    /// nginx and akamai: lifetime in seconds (expiry = time + ttl).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub ttl: u64,
    /// Query parameter for the token (default: verify, md5, __token__).
    #[arg(long, value_name = "NAME")]
    pub param: Option<String>,
    /// nginx: the secure_link_md5 expression.
    #[arg(long, default_value = nginx::DEFAULT_EXPRESSION)]
    pub expression: String,
    /// nginx: the client address the link is for ($remote_addr).
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub remote_addr: String,
}

/// `token verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The signed URL (https://host/path?… or /path?…).
    pub url: String,
    #[command(flatten)]
    pub secrets: Secrets,
    /// Lifetime of a token after its timestamp (cloudflare; required
    /// unless --absolute).
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<u64>,
    /// Verification time (Unix seconds), default now.
    #[arg(long, value_name = "UNIX")]
    pub time: Option<u64>,
    /// Token scheme.
    #[arg(long, value_enum, default_value_t = Scheme::Cloudflare)]
    pub scheme: Scheme,
    /// Cloudflare: the timestamp is an absolute expiry (no --ttl needed).
    #[arg(long)]
    pub absolute: bool,
    /// Seconds a token's time may be ahead of ours.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub skew: u64,
    /// Query parameter of the token (default: verify, md5, __token__).
    #[arg(long, value_name = "NAME")]
    pub param: Option<String>,
    /// nginx: the secure_link_md5 expression.
    #[arg(long, default_value = nginx::DEFAULT_EXPRESSION)]
    pub expression: String,
    /// nginx and akamai: the client address.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub remote_addr: String,
}

/// Runs a token subcommand.
pub fn main(c: TokenCommand) -> ExitCode {
    let r = match c {
        TokenCommand::Sign(a) => sign(&a).map(|j| (j, true)),
        TokenCommand::Verify(a) => verify(&a),
    };
    match r {
        Ok((j, ok)) => {
            println!("{j}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load_secrets(s: &Secrets, scheme: Scheme) -> anyhow::Result<Vec<Secret>> {
    let mut texts: Vec<zeroize::Zeroizing<String>> = s
        .secret
        .iter()
        .map(|t| zeroize::Zeroizing::new(t.clone()))
        .collect();
    for p in &s.secret_file {
        let t =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        texts.push(zeroize::Zeroizing::new(
            t.trim_end_matches(['\r', '\n']).to_owned(),
        ));
    }
    if texts.is_empty() {
        bail!("no secret: give --secret, --secret-file or PORTCULLIS_TOKEN_SECRET");
    }
    texts
        .iter()
        .map(|t| match scheme {
            Scheme::Akamai => Secret::from_hex(t),
            _ => Secret::new(t.as_bytes().to_vec()),
        })
        .collect::<Result<Vec<_>, _>>()
        .context("secret")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn sign(a: &SignArgs) -> anyhow::Result<serde_json::Value> {
    let secrets = load_secrets(&a.secrets, a.scheme)?;
    let secret = &secrets[0];
    let t = a.time.unwrap_or_else(now);
    if !a.path.starts_with('/') {
        bail!("PATH must start with '/'");
    }
    Ok(match a.scheme {
        Scheme::Cloudflare => {
            if !(1_000_000_000..=9_999_999_999).contains(&t) {
                bail!("--time must be a 10-digit Unix time");
            }
            let param = a.param.as_deref().unwrap_or(cloudflare::DEFAULT_PARAM);
            json!({
                "scheme": "cloudflare",
                "path": a.path,
                "time": t,
                "token": cloudflare::token(secret, &a.path, t),
                "token_url_safe": cloudflare::token_url_safe(secret, &a.path, t),
                "url": cloudflare::sign_url_param(secret, &a.path, t, param),
            })
        }
        Scheme::Nginx => {
            let expr = nginx::Expression::parse(&a.expression).context("--expression")?;
            let expires = t.saturating_add(a.ttl);
            let md5 = nginx::sign(&expr, secret, &a.path, &a.remote_addr, Some(expires));
            let param = a.param.as_deref().unwrap_or("md5");
            let sep = if a.path.contains('?') { '&' } else { '?' };
            json!({
                "scheme": "nginx",
                "path": a.path,
                "expires": expires,
                "token": md5,
                "url": format!("{}{sep}{param}={md5}&expires={expires}", a.path),
            })
        }
        Scheme::Akamai => {
            let exp = t.saturating_add(a.ttl);
            let token = akamai::sign(
                secret,
                &akamai::Params {
                    start: Some(t),
                    exp,
                    acl: Some(&a.path),
                    ..akamai::Params::default()
                },
            );
            let param = a.param.as_deref().unwrap_or("__token__");
            let base = a.path.trim_end_matches('*');
            json!({
                "scheme": "akamai",
                "acl": a.path,
                "expires": exp,
                "token": token,
                "url": format!("{base}?{param}={token}"),
            })
        }
    })
}

/// The path and query of a URL given as `https://host/p?q` or `/p?q`.
fn path_and_query(url: &str) -> anyhow::Result<&str> {
    if url.starts_with('/') {
        return Ok(url);
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .context("URL must start with https://, http:// or /")?;
    Ok(rest.find('/').map_or("/", |i| &rest[i..]))
}

fn query_param<'q>(pq: &'q str, name: &str) -> Option<&'q str> {
    let q = pq.split_once('?')?.1;
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn verify(a: &VerifyArgs) -> anyhow::Result<(serde_json::Value, bool)> {
    let secrets = load_secrets(&a.secrets, a.scheme)?;
    let now = a.time.unwrap_or_else(now);
    let pq = path_and_query(&a.url)?;
    let path = pq.split('?').next().unwrap_or("/");
    let r = match a.scheme {
        Scheme::Cloudflare => {
            let expiry = match (a.absolute, a.ttl) {
                (true, _) => cloudflare::Expiry::Absolute,
                (false, Some(t)) => cloudflare::Expiry::Ttl(t),
                (false, None) => bail!("--ttl is required (or --absolute)"),
            };
            let v = cloudflare::Verifier {
                secrets: &secrets,
                expiry,
                max_future_skew: a.skew,
            };
            let param = a.param.as_deref().unwrap_or(cloudflare::DEFAULT_PARAM);
            cloudflare::split_url(pq, param).and_then(|(m, t)| v.verify(m, &t, now))
        }
        Scheme::Nginx => {
            let expr = nginx::Expression::parse(&a.expression).context("--expression")?;
            let param = a.param.as_deref().unwrap_or("md5");
            match query_param(pq, param) {
                None => Err(tokens::Error::Missing),
                Some(md5) => nginx::verify(
                    &expr,
                    &secrets,
                    path,
                    &a.remote_addr,
                    md5,
                    query_param(pq, "expires"),
                    now,
                ),
            }
        }
        Scheme::Akamai => {
            let param = a.param.as_deref().unwrap_or("__token__");
            match query_param(pq, param) {
                None => Err(tokens::Error::Missing),
                Some(t) => akamai::verify(&secrets, t, path, Some(&a.remote_addr), now, a.skew),
            }
        }
    };
    Ok(match r {
        Ok(v) => (
            json!({"valid": true, "expires": v.expires, "secret_index": v.secret_index}),
            true,
        ),
        Err(e) => (
            json!({"valid": false, "reason": e.code(), "detail": e.to_string()}),
            false,
        ),
    })
}
