//! The bodies of Portcullis's fuzz targets and the oracles they check.
//!
//! Each target is a plain function `fn(&[u8])` that feeds the bytes to one
//! parser of untrusted input and panics only when an invariant is broken
//! (a parser panicked, an encoded header can split a request, a round trip
//! lost information, an API answered 5xx...). The same functions run in
//! two places:
//!
//! - `fuzz/` (cargo-fuzz, nightly, libFuzzer + sanitizers): one
//!   `fuzz_target!` per entry of [`TARGETS`], for coverage-guided runs
//!   (`scripts/fuzz.sh`);
//! - `tests/it` of this crate (stable, part of the normal suite): every
//!   seed from [`seeds`], every saved regression input, and a fixed number
//!   of deterministic mutations of the seeds.
//!
//! ```
//! for (name, body) in fuzz_harness::TARGETS {
//!     body(b"not a certificate");
//!     assert!(!name.is_empty());
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ca_api;
mod client_auth;
mod fixtures;
mod gateway_config;
mod headers;
mod input;
mod pki_targets;
pub mod seeds;
mod tokens_rules;

pub use gateway_config::{config_error_templates, render_config, ConfigCase};
pub use input::Input;

/// A fuzz target body.
pub type Body = fn(&[u8]);

/// Every target: (name, body). The names are those of `fuzz/fuzz_targets/*.rs`.
pub const TARGETS: &[(&str, Body)] = &[
    ("csr_spec", pki_targets::csr_spec),
    ("signing_config", pki_targets::signing_config),
    ("csr", pki_targets::csr),
    ("certificate", client_auth::certificate),
    ("crl", client_auth::crl),
    ("chain_verify", client_auth::chain_verify),
    ("key", pki_targets::key),
    ("ocsp", pki_targets::ocsp),
    ("rfc9440", headers::rfc9440),
    ("xfcc", headers::xfcc),
    ("ca_api", ca_api::ca_api),
    ("gateway_config", gateway_config::gateway_config),
    ("tokens", tokens_rules::tokens),
    ("rules", tokens_rules::rules),
];

/// How many certificates the `ca_api` target's CA has issued so far in
/// this process (to check that the seeds reach signing, not only parsing).
pub fn ca_api_issued() -> u64 {
    fixtures::ca_state().log.count().unwrap_or(0)
}

/// The body of the target called `name`.
pub fn target(name: &str) -> Option<Body> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}
