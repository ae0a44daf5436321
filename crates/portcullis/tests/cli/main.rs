//! Integration tests of the `portcullis` binary against real peers
//! (openssl, the stock cfssl client and server, curl, nginx, SoftHSM2). One
//! test binary for the crate; each module is one area.

mod agent;
mod ca_bad_input;
mod ca_crash;
mod ca_interop;
mod common;
mod control;
mod control_crash;
mod custody;
mod dashboard;
mod egress;
mod fleet;
mod gateway;
mod gateway_hostile;
mod gateway_hostile_http;
mod gateway_identity_routes;
mod policy;
mod store_live;
mod verify;
