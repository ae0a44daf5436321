//! Integration tests of `client-auth` (one test binary).

mod cache;
mod common;
mod headers;
mod limbo;
mod verdicts;
