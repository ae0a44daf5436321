//! placeholder

pub mod crl;
pub mod ocsp;
pub mod revocation;
