//! # Portcullis PKI core
//!
//! Keys, CFSSL's CSR JSON and signing configuration, issuance under
//! profiles, the durable issuance log, revocation, CRLs and OCSP. This crate
//! knows nothing about HTTP or the gateway.
//!
//! ```
//! use pki::{csr_spec::CsrSpec, issue::{init_root, CertificateAuthority, SignRequest}};
//! use pki::config::SigningPolicy;
//! let now = time::OffsetDateTime::now_utc();
//! let root = init_root(&CsrSpec::from_json(br#"{"CN":"Example Root"}"#).unwrap(), now).unwrap();
//! let ca = CertificateAuthority::new(root.cert_pem.as_bytes(), root.key).unwrap();
//! let (_key, csr) = CsrSpec::from_json(br#"{"CN":"svc","hosts":["svc.test"]}"#).unwrap().generate().unwrap();
//! let policy = SigningPolicy::builtin();
//! let cert = ca.sign(&policy, &SignRequest { csr: csr.into_bytes(), ..Default::default() }, now).unwrap();
//! assert!(cert.pem.starts_with("-----BEGIN CERTIFICATE-----"));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod crl;
pub mod csr;
pub mod csr_spec;
pub mod custody;
pub mod duration;
mod error;
pub mod info;
pub mod issue;
pub mod key;
pub mod log;
pub mod ocsp;
pub mod revocation;
pub mod serial;

pub use error::{PkiError, Result};
