//! Router-level tests of the management API: every request goes through
//! the real router (`oneshot`, no socket) onto a real SQLite store in a
//! temporary directory.

mod common;

mod bad_input;
mod crud;
mod isolation;
mod managed;
mod openapi;
