//! Integration tests of the `pki` crate (one test binary).

mod custody;
mod issue;
mod log;
mod ocsp_crl;
