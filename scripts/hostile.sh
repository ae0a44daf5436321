#!/usr/bin/env bash
# The hostile-client suite against a running gateway at full size
# (PORTCULLIS_HOSTILE_FULL=1): 10,000 idle connections instead of 2,000,
# 200 slow readers of a 32 MiB response instead of 40, plus every other
# hostile test (random bytes, truncated and oversized ClientHellos,
# renegotiation, 100-certificate chain, 10,000-SAN certificate, request
# smuggling, 64 KiB headers, slowloris, origin timeouts). Prints the
# figures (memory peaks, what the client got for each smuggling attempt).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh >/dev/null
export PORTCULLIS_HOSTILE_FULL=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
nice -n 10 cargo nextest run --locked -p portcullis --test cli \
  -E 'test(/gateway_hostile|hostile_regression|gateway_max_connections|gateway_origin_timeouts/)' \
  --no-capture >"$log" 2>&1
rc=$?
set -e
grep -E 'KiB|client got|idle connections|SANs|ClientHello claim|RENEGOTIAT|KEYUPDATE|PASS|FAIL|Summary' "$log" | grep -v 'START' || true
[[ $rc -eq 0 ]] || { echo "scripts/hostile.sh: FAILED"; grep -A 15 panicked "$log" | head -n 60; }
exit $rc
