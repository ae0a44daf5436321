//! Edge policy: rules in CEL compiled once, rate limits, and the decision
//! for one request. No socket is opened here except Redis connections of
//! fleet-wide rate limits; how a value was obtained (TLS, headers) is the
//! gateway's business.
//!
//! * [`rules`]: ordered rules per hostname, `block` / `log` / `skip`,
//!   `simulate`; [`rules::compile`] refuses a bad expression with its
//!   position, so nothing is parsed at request time.
//! * [`ratelimit`]: fixed-window counters per key, local (bounded memory)
//!   or on Redis, with a mitigation timeout and a fail-open/closed choice.
//!
//! ```
//! use policy::rules::{compile, ActionSpec, CertFacts, RequestFacts, RuleSpec, Verdict};
//! let set = compile(&[RuleSpec {
//!     name: "admin".into(),
//!     expression: r#"http.request.uri.path.startsWith("/admin") && !cf.tls_client_auth.cert_verified"#.into(),
//!     action: ActionSpec::Block(Default::default()),
//!     simulate: false,
//! }]).unwrap();
//! let conn = set.connection(&CertFacts::default());
//! let req = RequestFacts { host: "a.test", method: "GET", path: "/admin/x", ip: "127.0.0.1", ..Default::default() };
//! assert!(matches!(set.evaluate(&conn, &req).verdict, Verdict::Block { .. }));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ratelimit;
pub mod rules;
