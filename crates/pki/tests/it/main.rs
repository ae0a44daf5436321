//! Integration tests of the `pki` crate (one test binary).

mod issue;
mod log;
mod ocsp_crl;
