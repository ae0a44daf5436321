//! `portcullis`: the command-line edge of the Portcullis libraries.
//!
//! This binary only parses arguments, loads files and wires libraries
//! together; every rule lives in a library crate.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Portcullis: mTLS edge gateway, private PKI (CFSSL-compatible) and control plane.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Private CA: initialise, issue, sign, serve the CFSSL-compatible API, revoke, CRL.
    #[command(subcommand)]
    Ca(cmd::ca::CaCommand),
    /// Inspect certificates and CSRs.
    #[command(subcommand)]
    Cert(cmd::cert::CertCommand),
    /// Verify a client-certificate chain with the gateway's own verifier.
    Verify(cmd::verify::VerifyArgs),
    /// Run the gateway: TLS on the configured hostnames, client-certificate
    /// checks, proxy to the origins, and the `[[egress]]` listeners (local
    /// plain HTTP/TCP → mTLS upstream with a service's certificate) until
    /// SIGTERM or Ctrl-C. With server.data_dir, also the hostnames of the
    /// control-plane store, live; with server.admin too, the management API
    /// (/api/v1) and the web dashboard (/dashboard/) on the admin listener;
    /// the first start prints an operator token once (or takes
    /// PORTCULLIS_ADMIN_TOKEN).
    Serve(cmd::serve::ServeArgs),
    /// Keys made here, certificates from the CA (authsign), renewed before
    /// they expire: `--config FILE [--once]`, or `status --config FILE`.
    Agent(cmd::agent::AgentArgs),
    /// Run a fleet node: the gateway with its hostnames from the PostgreSQL
    /// store (`server.store`), live, and a local copy for when it is down.
    Gateway(cmd::gateway::GatewayArgs),
    /// HMAC URL tokens (Cloudflare, nginx secure_link, Akamai EdgeAuth): sign and verify.
    #[command(subcommand)]
    Token(cmd::token::TokenCommand),
    /// End-to-end demo in a temp dir: CA, client certs, origin and gateway on
    /// 127.0.0.1; exits 0 only if every outcome is the expected one.
    Demo(cmd::demo::DemoArgs),
}

fn main() -> ExitCode {
    cmd::init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Ca(c) => cmd::ca::main(c),
        Command::Cert(c) => cmd::exit(cmd::cert::run(c)),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Token(c) => cmd::token::main(c),
        Command::Serve(a) => cmd::exit(cmd::serve::run(a)),
        Command::Agent(a) => cmd::agent::main(a),
        Command::Gateway(a) => cmd::exit(cmd::gateway::run(a)),
        Command::Demo(a) => match cmd::demo::run(a) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => cmd::exit(Err(e)),
        },
    }
}
