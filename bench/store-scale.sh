#!/usr/bin/env bash
# Store scale benchmark: 100,000 hostnames (HOSTNAMES) in the control-plane
# store, on SQLite and on PostgreSQL, measured by
# crates/portcullis/examples/store_scale.rs (release build):
#   - import (one transaction per 10,000 hostnames),
#   - snapshot build: reading every hostname from the store, then building
#     the gateway's sites (TLS configs, shared trust stores),
#   - memory per hostname held by the sites (resident set growth / N),
#   - SNI lookup time at N and at 1,000 hostnames,
#   - propagation of one change, p50/p99 over CHANGES (100) changes, from
#     the writer's call until the gateway serves it (PostgreSQL: through
#     NOTIFY to a second store).
# One JSON line per backend. See bench/README.md.
#
# Environment: HOSTNAMES (100000), CHANGES (100), BACKENDS ("sqlite postgres"),
# PORTCULLIS_TEST_PG (postgres://postgres@127.0.0.1:5432/test; a schema is
# created and dropped), MAX_SECONDS (900 per backend).
set -euo pipefail
cd "$(dirname "$0")/.."

HOSTNAMES=${HOSTNAMES:-100000}
CHANGES=${CHANGES:-100}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PG=${PORTCULLIS_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}
MAX_SECONDS=${MAX_SECONDS:-900}

cargo build --release --quiet -p portcullis --example store_scale
for b in $BACKENDS; do
  echo "store-scale: $b, $HOSTNAMES hostnames, $CHANGES changes" >&2
  timeout "$MAX_SECONDS" target/release/examples/store_scale \
    --backend "$b" --hostnames "$HOSTNAMES" --changes "$CHANGES" --pg "$PG"
done
