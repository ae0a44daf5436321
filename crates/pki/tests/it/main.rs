//! Integration tests of the `pki` crate (one test binary).

mod log;
mod ocsp_crl;
