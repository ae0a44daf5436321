//! Router-level tests of the management API: every request goes through
//! the real router (`oneshot`, no socket) onto a real store: a fresh
//! SQLite file, and for the isolation matrix, bad hostnames and the CA
//! lifecycle also a fresh PostgreSQL schema.

mod common;

mod bad_input;
mod crud;
mod edge;
mod isolation;
mod managed;
mod openapi;
