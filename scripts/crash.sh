#!/usr/bin/env bash
# Crash consistency of `portcullis ca serve`: 50 rounds (CRASH_ROUNDS) of a
# signing burst from 4 curl clients killed with SIGKILL at a random point
# (seeded: CRASH_SEED), each followed by a restart on the same issuance log
# and the checks: SQLite integrity_check is ok, every certificate any
# client received is in the log, no serial repeats. The test suite runs the
# same test with 3 rounds. Prints the figures line for docs/reliability.md.
#
#   scripts/crash.sh                 # 50 rounds
#   CRASH_ROUNDS=200 CRASH_SEED=7 scripts/crash.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh >/dev/null
export PORTCULLIS_CRASH_ITERATIONS=${CRASH_ROUNDS:-50}
export PORTCULLIS_CRASH_SEED=${CRASH_SEED:-1592594093}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
nice -n 10 cargo nextest run --locked -p portcullis --test cli \
  ca_crash_kill9_at_random_points_repeatedly --no-capture 2>&1 | tee "$log" |
  grep -E '^(crash rounds|.*panicked|.*round [0-9]+)' || true
grep -q 'crash rounds:' "$log" || { echo "scripts/crash.sh: FAILED (see output above)"; tail -n 40 "$log"; exit 1; }
