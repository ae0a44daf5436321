//! Client-certificate verification for Portcullis.
//!
//! Given the chain a client presented on a hostname, this crate decides
//! whether it is trusted by that hostname's CAs ([`TrustStore::verify`]),
//! caches that decision ([`VerdictCache`]), extracts the leaf's facts
//! ([`CertFacts`]) and encodes what the origin is told ([`headers`]).
//! It does no I/O: callers pass bytes and a time.
//!
//! ```
//! use client_auth::{TrustStore, Verdict, pem_certs};
//! # let ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
//! # let mut ca = ca; ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
//! # let ca_key = rcgen::KeyPair::generate().unwrap();
//! # let ca_cert = ca.self_signed(&ca_key).unwrap();
//! # let issuer = rcgen::Issuer::new(ca, ca_key);
//! # let mut leaf = rcgen::CertificateParams::new(vec!["client.test".to_string()]).unwrap();
//! # leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
//! # let leaf_cert = leaf.signed_by(&rcgen::KeyPair::generate().unwrap(), &issuer).unwrap();
//! # let ca_pem = ca_cert.pem(); let chain_pem = leaf_cert.pem();
//! let store = TrustStore::builder()
//!     .anchors(pem_certs(ca_pem.as_bytes())?)
//!     .build()?;
//! let chain = pem_certs(chain_pem.as_bytes())?;
//! let verdict = store.verify(&chain, rustls_pki_types::UnixTime::now());
//! assert_eq!(verdict, Verdict::Valid);
//! # Ok::<(), client_auth::Error>(())
//! ```
//!
//! # What is checked
//! rustls-webpki builds and verifies the path (signatures, validity,
//! basic constraints, path length, name constraints, EKU, CRLs). On top,
//! [`Strictness::Standard`] (default) refuses: critical AKI/SKI,
//! non-critical policyConstraints, name constraints in a leaf or empty,
//! more than 1024 name-constraint subtrees or 256 name attributes
//! (denial of service), CA certificates with an empty subject, a leaf
//! with keyCertSign but no cA or a key usage without digitalSignature, a leaf key the TLS layer cannot use (RSA
//! under 2048 bits, DSA, curves other than P-256/384/521, Ed25519 OK),
//! expired or not-yet-valid trust anchors, trust anchors with unknown
//! critical extensions or a key usage without keyCertSign, a CRL issuer
//! without cRLSign, and CRLs without a non-critical CRLNumber.
//!
//! [`Strictness::Strict`] also refuses what some real private PKIs issue:
//! missing AKI keyIdentifier (non-self-issued) or CA SKI, non-critical name
//! constraints, DNS constraints with a leading period, serial numbers of
//! zero or over 20 octets, RSA sizes not a multiple of 8, undecodable or
//! empty AIA/other extensions, leaves without EKU or with
//! anyExtendedKeyUsage or a critical EKU, SAN criticality that does not
//! match an empty/non-empty subject, trust anchors without critical
//! basicConstraints, with an EKU, or with an AKI other than a keyIdentifier
//! equal to their SKI.
//!
//! CA certificates used as leaves are always refused (webpki).
//!
//! # Conformance (C2SP x509-limbo, 174 applicable cases)
//! Wrongly accepted / wrongly rejected: webpki alone 44 / 10;
//! `Standard` 25 / 10; `Strict` 0 / 13. The rejections left are
//! deliberate (CA as leaf), unsupported by webpki (self-issued
//! intermediates, DN and e-mail name constraints), or the loser of a pair
//! of cases limbo marks as conflicting. See `tests/it/limbo.rs`.
//!
//! # Cache
//! [`VerdictCache`] keys on SHA-256 of the chain and the store's
//! [`StoreVersion`]; see its docs for lifetimes and bounds.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
mod error;
mod facts;
pub mod headers;
mod input;
mod store;
mod strict;
mod verdict;
mod verify;

pub use cache::{CacheStats, VerdictCache};
pub use error::Error;
pub use facts::{CertFacts, SubjectAltName};
pub use input::{pem_certs, pem_or_der_certs, pem_or_der_crls};
pub use rustls_pki_types::{CertificateDer, UnixTime};
pub use store::{
    CrlExpiry, EkuPolicy, Policy, StoreVersion, Strictness, TrustStore, TrustStoreBuilder,
};
pub use verdict::{reason_for, Reason, Verdict};
