#![no_main]
//! See fuzz_harness for what this target feeds and checks.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn body() -> fuzz_harness::Body {
    static BODY: OnceLock<fuzz_harness::Body> = OnceLock::new();
    *BODY.get_or_init(|| fuzz_harness::target("rules").expect("known target"))
}

fuzz_target!(|data: &[u8]| body()(data));
