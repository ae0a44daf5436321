//! The gateway config parser: every problem it can report is reached by
//! a known input, and the table of those inputs covers every place in
//! crates/gateway/src/config.rs that reports a problem.

use std::path::Path;

use fuzz_harness::{config_error_templates, render_config, ConfigCase};

#[test]
fn valid_config_parses() {
    let text = render_config(&ConfigCase::valid());
    gateway::config::Config::parse(&text, Path::new("/etc/pc"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
}

#[test]
fn every_config_error_message_is_produced() {
    let mut missing = Vec::new();
    for (needle, text) in config_error_templates() {
        match gateway::config::Config::parse(&text, Path::new("/etc/pc")) {
            Ok(_) => missing.push(format!("{needle:?}: config was accepted:\n{text}")),
            Err(e) if !e.to_string().contains(needle) => {
                missing.push(format!("{needle:?}: got {e}\n{text}"))
            }
            Err(_) => {}
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n---\n"));
}

#[test]
fn templates_cover_every_reported_problem() {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway/src/config.rs"),
    )
    .expect("config.rs");
    // Only the non-test part reports problems.
    let code = src.split("#[cfg(test)]").next().unwrap_or(&src);
    let sites = code.matches("p.push(").count() + code.matches("problems.push(").count();
    // + 1: the TOML syntax error, which is not a push.
    assert_eq!(
        config_error_templates().len(),
        sites + 1,
        "a problem was added to or removed from gateway::config: update config_error_templates()"
    );
}
