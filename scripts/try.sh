#!/usr/bin/env bash
# Try Portcullis: build it and run `portcullis demo` (a CA, client
# certificates, an origin and the gateway on 127.0.0.1, requests in report and
# enforce mode; exits 0 only if every outcome is as expected). Needs only the
# Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p portcullis
exec target/release/portcullis demo "$@"
