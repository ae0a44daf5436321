//! Integration tests of the `pki` crate (one test binary).

mod ocsp_crl;
