//! Rules: CEL expressions over the request and the client certificate.
//!
//! ## Field names
//! The fields are Cloudflare's Rules language names. CEL identifiers have
//! no dots, so each dotted name is a field selection on a map variable:
//! `http.request.uri.path` selects `request`, `uri`, `path` from the
//! variable `http`, and reads exactly as in Cloudflare.
//!
//! | field | type | value |
//! |---|---|---|
//! | `http.host` | string | request host (the TLS server name) |
//! | `http.request.method` | string | `GET`, … |
//! | `http.request.uri.path` | string | path, no query |
//! | `http.request.uri.query` | string | query without `?` (`""` if none) |
//! | `http.request.full_uri` | string | `https://host/path?query` |
//! | `http.request.headers` | map(string, list(string)) | lowercase names |
//! | `http.request.timestamp.sec` | int | Unix time of the request |
//! | `ip.src` | string | client IP address |
//! | `cf.tls_client_auth.cert_presented` | bool | a certificate was sent |
//! | `cf.tls_client_auth.cert_verified` | bool | verdict `valid` |
//! | `cf.tls_client_auth.cert_revoked` | bool | verdict `invalid`, reason `revoked` |
//! | `cf.tls_client_auth.cert_error` | string | `Client-Cert-Error` value or `""` |
//! | `cf.tls_client_auth.cert_subject_dn`, `cert_issuer_dn` | string | RFC 4514 |
//! | `cf.tls_client_auth.cert_serial` | string | lowercase hex |
//! | `cf.tls_client_auth.cert_fingerprint_sha256`, `cert_ski` | string | lowercase hex |
//! | `cf.tls_client_auth.cert_not_before`, `cert_not_after` | string | RFC 3339 |
//! | `cf.tls_client_auth.cert_sans_dns`, `cert_sans_uri`, `cert_sans_email`, `cert_sans_ip` | list(string) | SANs by type |
//!
//! Every field is always present (empty string, `false` or empty list when
//! there is no certificate), so a rule never fails on a missing field;
//! only a missing header key does (`http.request.headers["x"]`): write
//! `"x" in http.request.headers && …`. A rule that fails at run time does
//! not match and is counted in [`Outcome::errors`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, ExecutionError, Program, Value};

/// A `block` action's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockResponse {
    /// HTTP status (default 403).
    pub status: u16,
    /// Content type (default `application/json`).
    pub content_type: String,
    /// Body (default `{"error":"blocked by rule","rule":"<name>"}`
    /// when `None`).
    pub body: Option<String>,
}

impl Default for BlockResponse {
    fn default() -> Self {
        BlockResponse {
            status: 403,
            content_type: "application/json".to_owned(),
            body: None,
        }
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionSpec {
    /// Answer with this response; the origin is not contacted.
    Block(BlockResponse),
    /// Record the hit and go on with the next rule.
    Log,
    /// Stop evaluating rules; the request goes on (`allow` is a synonym).
    Skip,
}

/// A rule as configured (what was typed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// Name, for logs and events (unique per hostname).
    pub name: String,
    /// CEL expression, must evaluate to a bool.
    pub expression: String,
    /// What to do when it matches.
    pub action: ActionSpec,
    /// Turn `block` into `log` (roll out a rule without blocking).
    pub simulate: bool,
}

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CompileError {
    /// Index of the rule in its list.
    pub index: usize,
    /// Its name.
    pub rule: String,
    /// 1-based line and column in the expression, when known.
    pub position: Option<(u32, u32)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule[{}] {:?}: ", self.index, self.rule)?;
        if let Some((l, c)) = self.position {
            write!(f, "line {l}, column {c}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Name.
    pub name: String,
    program: Program,
    /// Action.
    pub action: ActionSpec,
    /// Simulated: a block is logged instead.
    pub simulate: bool,
}

/// The ordered, compiled rules of one hostname.
pub struct RuleSet {
    rules: Vec<Rule>,
    env: Arc<Env>,
    needs: Needs,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// Facts about the client certificate of a connection (see the table in
/// the module docs); `Default` is "no certificate".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertFacts {
    /// A certificate was presented.
    pub presented: bool,
    /// It verified (`valid`).
    pub verified: bool,
    /// It is revoked.
    pub revoked: bool,
    /// `Client-Cert-Error` value when invalid.
    pub error: String,
    /// RFC 4514 subject.
    pub subject_dn: String,
    /// RFC 4514 issuer.
    pub issuer_dn: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint_sha256: String,
    /// Subject Key Identifier, lowercase hex.
    pub ski: String,
    /// notBefore, RFC 3339.
    pub not_before: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// dNSName SANs.
    pub sans_dns: Vec<String>,
    /// URI SANs.
    pub sans_uri: Vec<String>,
    /// rfc822Name SANs.
    pub sans_email: Vec<String>,
    /// iPAddress SANs, as text.
    pub sans_ip: Vec<String>,
}

/// One request's facts, borrowed from the request.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    /// Host (the TLS server name).
    pub host: &'a str,
    /// Method.
    pub method: &'a str,
    /// Path without the query.
    pub path: &'a str,
    /// Query without `?`.
    pub query: &'a str,
    /// Headers (lowercase names); only read when a rule mentions
    /// `headers` (see [`RuleSet::needs_headers`]).
    pub headers: Vec<(&'a str, &'a str)>,
    /// Client IP, as text.
    pub ip: &'a str,
    /// Unix time.
    pub timestamp: i64,
}

/// The certificate part of the rule context, built once per connection
/// (already in the evaluator's own representation, so a request does not
/// convert it again).
#[derive(Debug)]
pub struct ConnFacts(Box<dyn Val>);

impl ConnFacts {
    fn new(cert: &CertFacts) -> ConnFacts {
        ConnFacts(to_val(cert.to_value()))
    }
}

/// The variables of one evaluation: `http` and `ip` built for the request,
/// `cf` borrowed from the connection.
struct Vars<'a> {
    http: Box<dyn Val>,
    ip: Box<dyn Val>,
    cf: &'a dyn Val,
}

impl VariableResolver for Vars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        match variable {
            "http" => Some(CowVal::Borrowed(&*self.http)),
            "ip" => Some(CowVal::Borrowed(&*self.ip)),
            "cf" => Some(CowVal::Borrowed(self.cf)),
            _ => None,
        }
    }
}

/// Maps of strings, bools, ints and lists always convert; `null` otherwise.
fn to_val(v: Value) -> Box<dyn Val> {
    Box::<dyn Val>::try_from(v).unwrap_or_else(|_| Box::new(cel::common::types::CelNull))
}

/// How rule evaluation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'r> {
    /// No rule blocked or skipped.
    Pass,
    /// A `skip` rule matched: the rest were not evaluated.
    Skip {
        /// The rule.
        rule: &'r str,
    },
    /// A `block` rule matched.
    Block {
        /// The rule.
        rule: &'r str,
        /// Its response.
        response: &'r BlockResponse,
    },
}

/// Everything rule evaluation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<'r> {
    /// The end result.
    pub verdict: Verdict<'r>,
    /// Rules that matched with `log`, or with a simulated `block`, in order.
    pub logged: Vec<&'r str>,
    /// Rules whose evaluation failed (not matched).
    pub errors: Vec<&'r str>,
}

fn s(v: &str) -> Value {
    Value::String(Arc::new(v.to_owned()))
}

fn list(v: &[String]) -> Value {
    Value::List(Arc::new(v.iter().map(|x| s(x)).collect()))
}

fn map(entries: Vec<(&'static str, Value)>) -> Value {
    let m: HashMap<&str, Value> = entries.into_iter().collect();
    Value::from(m)
}

impl CertFacts {
    fn to_value(&self) -> Value {
        let tca = map(vec![
            ("cert_presented", Value::Bool(self.presented)),
            ("cert_verified", Value::Bool(self.verified)),
            ("cert_revoked", Value::Bool(self.revoked)),
            ("cert_error", s(&self.error)),
            ("cert_subject_dn", s(&self.subject_dn)),
            ("cert_issuer_dn", s(&self.issuer_dn)),
            ("cert_serial", s(&self.serial)),
            ("cert_fingerprint_sha256", s(&self.fingerprint_sha256)),
            ("cert_ski", s(&self.ski)),
            ("cert_not_before", s(&self.not_before)),
            ("cert_not_after", s(&self.not_after)),
            ("cert_sans_dns", list(&self.sans_dns)),
            ("cert_sans_uri", list(&self.sans_uri)),
            ("cert_sans_email", list(&self.sans_email)),
            ("cert_sans_ip", list(&self.sans_ip)),
        ]);
        map(vec![("tls_client_auth", tca)])
    }
}

/// Which optional parts of `http` the rules mention (by name in their
/// text: a conservative test), so a request builds only what is read.
#[derive(Debug, Clone, Copy)]
struct Needs {
    headers: bool,
    full_uri: bool,
    timestamp: bool,
}

impl Needs {
    const ALL: Needs = Needs {
        headers: true,
        full_uri: true,
        timestamp: true,
    };
}

fn http_value(r: &RequestFacts<'_>, needs: Needs) -> Value {
    let mut request = vec![
        ("method", s(r.method)),
        ("uri", map(vec![("path", s(r.path)), ("query", s(r.query))])),
    ];
    if needs.headers {
        let mut headers: HashMap<String, Vec<Value>> = HashMap::new();
        for (k, v) in &r.headers {
            headers.entry((*k).to_owned()).or_default().push(s(v));
        }
        let headers: HashMap<String, Value> = headers
            .into_iter()
            .map(|(k, v)| (k, Value::List(Arc::new(v))))
            .collect();
        request.push(("headers", Value::from(headers)));
    }
    if needs.full_uri {
        let full_uri = if r.query.is_empty() {
            format!("https://{}{}", r.host, r.path)
        } else {
            format!("https://{}{}?{}", r.host, r.path, r.query)
        };
        request.push(("full_uri", s(&full_uri)));
    }
    if needs.timestamp {
        request.push(("timestamp", map(vec![("sec", Value::Int(r.timestamp))])));
    }
    map(vec![("host", s(r.host)), ("request", map(request))])
}

/// Compiles one expression and checks it against sample facts: a syntax
/// error (with its position), an unknown variable or function, or a result
/// that is not a bool is refused.
fn compile_one(env: &Arc<Env>, index: usize, spec: &RuleSpec) -> Result<Program, CompileError> {
    let err = |position, message: String| CompileError {
        index,
        rule: spec.name.clone(),
        position,
        message,
    };
    if spec.expression.trim().is_empty() {
        return Err(err(None, "the expression is empty".into()));
    }
    let program = env
        .compile(&spec.expression)
        .map_err(|e| match e.errors.first() {
            Some(first) => err(
                Some((
                    u32::try_from(first.pos.0).unwrap_or(0),
                    // cel reports 0-based columns.
                    u32::try_from(first.pos.1).unwrap_or(0) + 1,
                )),
                first.msg.clone(),
            ),
            None => err(None, e.to_string()),
        })?;
    // A trial run on sample facts finds misspelled variables and non-bool
    // results before the rule is accepted.
    let sample = RequestFacts {
        host: "example.test",
        method: "GET",
        path: "/",
        ip: "127.0.0.1",
        ..RequestFacts::default()
    };
    let conn = ConnFacts::new(&CertFacts::default());
    let vars = vars(&conn, &sample, Needs::ALL);
    let mut ctx = Context::with_env(env.clone());
    ctx.set_variable_resolver(&vars);
    match program.execute(&ctx) {
        Ok(Value::Bool(_)) => Ok(program),
        Ok(other) => Err(err(
            None,
            format!("the expression must be a bool, not {:?}", other.type_of()),
        )),
        Err(ExecutionError::UndeclaredReference(name)) => {
            Err(err(None, format!("unknown name {name:?}")))
        }
        Err(ExecutionError::FunctionError { function, message })
            if message.contains("Undeclared") =>
        {
            Err(err(None, format!("{function}: {message}")))
        }
        // Other run-time errors depend on the request (a missing header).
        Err(_) => Ok(program),
    }
}

fn vars<'a>(conn: &'a ConnFacts, r: &RequestFacts<'_>, needs: Needs) -> Vars<'a> {
    Vars {
        http: to_val(http_value(r, needs)),
        ip: to_val(map(vec![("src", s(r.ip))])),
        cf: &*conn.0,
    }
}

/// Compiles and validates a rule list (the function a management API
/// calls before storing rules). Every problem is returned, not only the
/// first.
pub fn compile(specs: &[RuleSpec]) -> Result<RuleSet, Vec<CompileError>> {
    let env = Arc::new(Env::stdlib());
    let mut rules = Vec::with_capacity(specs.len());
    let mut errors = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, spec) in specs.iter().enumerate() {
        if spec.name.trim().is_empty() {
            errors.push(CompileError {
                index: i,
                rule: spec.name.clone(),
                position: None,
                message: "the rule has no name".into(),
            });
        } else if !names.insert(spec.name.as_str()) {
            errors.push(CompileError {
                index: i,
                rule: spec.name.clone(),
                position: None,
                message: "another rule has the same name".into(),
            });
        }
        match compile_one(&env, i, spec) {
            Ok(program) => rules.push(Rule {
                name: spec.name.clone(),
                program,
                action: spec.action.clone(),
                simulate: spec.simulate,
            }),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mentions = |word: &str| specs.iter().any(|s| s.expression.contains(word));
    let needs = Needs {
        headers: mentions("headers"),
        full_uri: mentions("full_uri"),
        timestamp: mentions("timestamp"),
    };
    Ok(RuleSet { rules, env, needs })
}

impl RuleSet {
    /// No rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether any rule reads `http.request.headers` (if not, the caller
    /// need not collect them).
    pub fn needs_headers(&self) -> bool {
        self.needs.headers
    }

    /// The certificate facts as the rules see them, once per connection.
    pub fn connection(&self, cert: &CertFacts) -> ConnFacts {
        ConnFacts::new(cert)
    }

    /// Evaluates the rules in order for one request.
    pub fn evaluate<'r>(&'r self, conn: &ConnFacts, req: &RequestFacts<'_>) -> Outcome<'r> {
        let mut out = Outcome {
            verdict: Verdict::Pass,
            logged: Vec::new(),
            errors: Vec::new(),
        };
        if self.rules.is_empty() {
            return out;
        }
        let vars = vars(conn, req, self.needs);
        let mut ctx = Context::with_env(self.env.clone());
        ctx.set_variable_resolver(&vars);
        for rule in &self.rules {
            match rule.program.execute(&ctx) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => continue,
                Ok(_) | Err(_) => {
                    out.errors.push(&rule.name);
                    continue;
                }
            }
            match &rule.action {
                ActionSpec::Log => out.logged.push(&rule.name),
                ActionSpec::Block(_) if rule.simulate => out.logged.push(&rule.name),
                ActionSpec::Block(response) => {
                    out.verdict = Verdict::Block {
                        rule: &rule.name,
                        response,
                    };
                    return out;
                }
                ActionSpec::Skip => {
                    out.verdict = Verdict::Skip { rule: &rule.name };
                    return out;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, expr: &str, action: ActionSpec) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            expression: expr.into(),
            action,
            simulate: false,
        }
    }

    fn block() -> ActionSpec {
        ActionSpec::Block(BlockResponse::default())
    }

    fn req<'a>(path: &'a str, headers: Vec<(&'a str, &'a str)>) -> RequestFacts<'a> {
        RequestFacts {
            host: "api.test",
            method: "GET",
            path,
            query: "a=1",
            headers,
            ip: "127.0.0.1",
            timestamp: 1_700_000_000,
        }
    }

    #[test]
    fn order_and_actions() {
        let set = compile(&[
            rule("health", r#"http.request.uri.path == "/health""#, ActionSpec::Skip),
            rule("watch", r#"http.request.uri.path.startsWith("/")"#, ActionSpec::Log),
            rule(
                "admin",
                r#"http.request.uri.path.startsWith("/admin") && !(cf.tls_client_auth.cert_verified && cf.tls_client_auth.cert_subject_dn in ["CN=alice"])"#,
                block(),
            ),
        ])
        .expect("compiles");
        let anon = set.connection(&CertFacts::default());
        let alice = set.connection(&CertFacts {
            presented: true,
            verified: true,
            subject_dn: "CN=alice".into(),
            ..CertFacts::default()
        });
        let o = set.evaluate(&anon, &req("/health", vec![]));
        assert_eq!(o.verdict, Verdict::Skip { rule: "health" });
        assert!(o.logged.is_empty());
        let o = set.evaluate(&anon, &req("/admin/x", vec![]));
        assert!(matches!(o.verdict, Verdict::Block { rule: "admin", .. }));
        assert_eq!(o.logged, ["watch"]);
        let o = set.evaluate(&alice, &req("/admin/x", vec![]));
        assert_eq!(o.verdict, Verdict::Pass);
    }

    #[test]
    fn simulate_turns_block_into_log() {
        let mut r = rule("all", "true", block());
        r.simulate = true;
        let set = compile(&[r]).expect("compiles");
        let o = set.evaluate(&set.connection(&CertFacts::default()), &req("/", vec![]));
        assert_eq!(o.verdict, Verdict::Pass);
        assert_eq!(o.logged, ["all"]);
    }

    #[test]
    fn fields() {
        let set = compile(&[rule(
            "f",
            r#"http.host == "api.test" && http.request.method == "GET" && http.request.uri.query == "a=1"
               && http.request.full_uri == "https://api.test/p?a=1" && ip.src == "127.0.0.1"
               && http.request.timestamp.sec > 0 && http.request.headers["x-k"][0] == "v"
               && "spiffe://t/a" in cf.tls_client_auth.cert_sans_uri && cf.tls_client_auth.cert_serial == "0a""#,
            block(),
        )])
        .expect("compiles");
        let conn = set.connection(&CertFacts {
            presented: true,
            serial: "0a".into(),
            sans_uri: vec!["spiffe://t/a".into()],
            ..CertFacts::default()
        });
        assert!(set.needs_headers());
        let o = set.evaluate(&conn, &req("/p", vec![("x-k", "v")]));
        assert!(matches!(o.verdict, Verdict::Block { .. }), "{o:?}");
        // A missing header: an evaluation error, not a match.
        let o = set.evaluate(&conn, &req("/p", vec![]));
        assert_eq!(o.verdict, Verdict::Pass);
        assert_eq!(o.errors, ["f"]);
    }

    #[test]
    fn bad_expressions_are_refused_with_position() {
        let e = compile(&[
            rule("ok", "true", ActionSpec::Log),
            rule("syntax", "http.host == ", block()),
            rule("typo", r#"htp.host == "x""#, block()),
            rule("notbool", "http.host", block()),
            rule("ok", "false", ActionSpec::Log),
            rule("empty", " ", ActionSpec::Log),
        ])
        .expect_err("refused");
        assert_eq!(e.len(), 5, "{e:?}");
        assert_eq!(e[0].index, 1);
        assert_eq!(e[0].position.map(|p| p.0), Some(1), "{}", e[0]);
        assert!(e[1].message.contains("htp"), "{}", e[1]);
        assert!(e[2].message.contains("bool"), "{}", e[2]);
        assert!(e[3].message.contains("same name"), "{}", e[3]);
        assert!(e[4].message.contains("empty"), "{}", e[4]);
    }
}
