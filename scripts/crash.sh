#!/usr/bin/env bash
# Crash consistency, 50 rounds each (CRASH_ROUNDS), kill points seeded
# (CRASH_SEED):
#
# 1. `portcullis ca serve`: a signing burst from 4 curl clients killed with
#    SIGKILL at a random point, then a restart on the same issuance log and
#    the checks: SQLite integrity_check is ok, every certificate any client
#    received is in the log, no serial repeats.
# 2. `portcullis serve` (control plane, SQLite store): a burst of API
#    writes (accounts, hostnames) killed the same way, then the checks:
#    integrity and foreign-key checks pass, every write answered 2xx is in
#    the store with its audit entry, nothing half-written (a hostname
#    without its account, an account without its managed CA), and the
#    restarted server serves it.
#
# The test suite runs the same tests with 3 rounds. Prints the figures
# lines for docs/reliability.md.
#
#   scripts/crash.sh                 # both, 50 rounds
#   scripts/crash.sh control         # only the control plane (or: ca)
#   CRASH_ROUNDS=200 CRASH_SEED=7 scripts/crash.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh >/dev/null
which=${1:-all}
export PORTCULLIS_CRASH_ITERATIONS=${CRASH_ROUNDS:-50}
export PORTCULLIS_CONTROL_CRASH_ROUNDS=${CRASH_ROUNDS:-50}
export PORTCULLIS_CRASH_SEED=${CRASH_SEED:-1592594093}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() { # test name, figures line prefix
  nice -n 10 cargo nextest run --locked -p portcullis --test cli \
    "$1" --no-capture 2>&1 | tee "$log" |
    grep -E "^($2|.*panicked|.*round [0-9]+)" || true
  grep -q "$2" "$log" || { echo "scripts/crash.sh: $1 FAILED (see output above)"; tail -n 40 "$log"; exit 1; }
}
case $which in
  all|ca) run ca_crash_kill9_at_random_points_repeatedly 'crash rounds:' ;;
esac
case $which in
  all|control) run control_crash_kill9_during_api_writes_loses_no_acknowledged_write 'control crash rounds:' ;;
esac
