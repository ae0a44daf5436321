#!/usr/bin/env bash
# Signing benchmark: the same HTTP signing load (P-256 client CSRs, CONCURRENCY
# keep-alive clients, REQUESTS requests) against
#   1. cfssl serve                 (stock Debian golang-cfssl, no cert DB)
#   2. cfssl serve -db-config      (SQLite cert DB, every certificate recorded)
#   3. portcullis ca serve --db    (every certificate durably recorded)
# on this machine, one after the other. Prints certificates/s, the server's CPU
# time per certificate (user+system from /proc/PID/stat: the load generator
# shares the cores, so wall-clock throughput alone would flatter nobody) and
# the ratios. See bench/README.md.
#
# Environment: REQUESTS (5000), CONCURRENCY (8), WARMUP (200), MAX_SECONDS (120,
# per run), START_TIMEOUT (10 s per server), AUTHSIGN=1 (use /authsign with an
# HMAC key instead of /sign), KEEP=1 (keep the temp dir), SERVERS (space-separated
# subset of "cfssl cfssl-db portcullis"), PORTCULLIS (path of a prebuilt
# portcullis binary to measure instead of building this checkout's), BENCH_DIR
# (where the temp dir with the CA and the cert DBs goes; default $TMPDIR or /tmp,
# and it should be on a disk, not tmpfs).
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-5000}
CONCURRENCY=${CONCURRENCY:-8}
WARMUP=${WARMUP:-200}
MAX_SECONDS=${MAX_SECONDS:-120}
START_TIMEOUT=${START_TIMEOUT:-10}
AUTHSIGN=${AUTHSIGN:-0}
KEEP=${KEEP:-0}
SERVERS=${SERVERS:-cfssl cfssl-db portcullis}

for v in REQUESTS CONCURRENCY WARMUP MAX_SECONDS START_TIMEOUT; do
  if [[ ! ${!v} =~ ^[0-9]+$ ]] || ((${!v} < 1)); then
    echo "ca-sign: $v must be a positive integer, got '${!v}'" >&2
    exit 2
  fi
done
for tool in cfssl cfssljson curl; do
  command -v "$tool" >/dev/null || {
    echo "ca-sign: $tool not found; run scripts/install-test-deps.sh" >&2
    exit 2
  }
done

# ---------------------------------------------------------------- build, once
target_dir=${CARGO_TARGET_DIR:-target}
echo "ca-sign: building sign_load and portcullis (release)" >&2
cargo build --release --locked -q -p ca-api --example sign_load
sign_load=$target_dir/release/examples/sign_load
portcullis_build=ok
if [[ -n ${PORTCULLIS:-} ]]; then
  portcullis_bin=$PORTCULLIS # a prebuilt binary, e.g. another checkout's
else
  portcullis_bin=$target_dir/release/portcullis
  if ! cargo build --release --locked -q -p portcullis --bin portcullis; then
    portcullis_build=failed
    echo "ca-sign: building portcullis failed; it will be SKIPPED" >&2
  fi
fi

loadavg=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------ temp dir, cleanup
# The cert DBs live here: it must be a disk, or "durably recorded" costs nothing.
load_pid=
work=$(mktemp -d -p "${BENCH_DIR:-${TMPDIR:-/tmp}}" portcullis-bench.XXXXXX)
fs_type=$(stat -f -c %T "$work")
if [[ $fs_type == tmpfs || $fs_type == ramfs ]]; then
  echo "ca-sign: WARNING: $work is on $fs_type: fsync is free there, the DB figures are not durable ones; set BENCH_DIR to a directory on disk" >&2
fi
server_pid=

stop_server() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}

cleanup() {
  if [[ -n $load_pid ]]; then
    kill "$load_pid" 2>/dev/null || true
    wait "$load_pid" 2>/dev/null || true
  fi
  stop_server
  if [[ $KEEP == 1 ]]; then
    echo "ca-sign: kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------- CA, config, DB
cat >"$work/ca-csr.json" <<'EOF'
{"CN":"Portcullis Bench CA","key":{"algo":"ecdsa","size":256},
 "names":[{"O":"Portcullis bench"}],"ca":{"expiry":"87600h"}}
EOF
(cd "$work" && cfssl gencert -loglevel 5 -initca ca-csr.json | cfssljson -bare ca)

auth_key=
auth_json=
auth_keys_json=
if [[ $AUTHSIGN == 1 ]]; then
  auth_key=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  auth_json=',"auth_key":"bench"'
  auth_keys_json=',"auth_keys":{"bench":{"type":"standard","key":"'$auth_key'"}}'
fi
cat >"$work/config.json" <<EOF
{"signing":{
  "default":{"expiry":"8760h"},
  "profiles":{"client":{
    "usages":["signing","digital signature","key encipherment","client auth"],
    "expiry":"8760h"$auth_json}}}
$auth_keys_json}
EOF

# cfssl's SQLite cert DB: the schema of cfssl's certdb/sqlite/migrations
# (001_CreateCertificates, plus 002's metadata columns, unused by cfssl 1.2).
have_sqlite=0
if command -v sqlite3 >/dev/null; then
  have_sqlite=1
  sqlite3 "$work/cfssl-certs.db" <<'EOF'
CREATE TABLE certificates (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  ca_label                 blob,
  status                   blob NOT NULL,
  reason                   int,
  created_at               timestamp,
  expiry                   timestamp,
  revoked_at               timestamp,
  pem                      blob NOT NULL,
  issued_at                timestamp,
  not_before               timestamp,
  originating_host         text,
  sans                     text,
  tags                     text,
  common_name              text,
  filename                 text,
  application_name         text,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
CREATE INDEX certificates_created_at ON certificates (created_at);
CREATE INDEX certificates_revoked_at ON certificates (revoked_at);
CREATE TABLE ocsp_responses (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  body                     blob NOT NULL,
  expiry                   timestamp,
  PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier)
    REFERENCES certificates(serial_number, authority_key_identifier)
);
EOF
  printf '{"driver":"sqlite3","data_source":"%s"}\n' "$work/cfssl-certs.db" >"$work/db.json"
fi

# ------------------------------------------------------------------ helpers
clk_tck=$(getconf CLK_TCK)

# utime+stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat;
# the command name in field 2 may hold spaces, so count from its closing ')').
cpu_ticks() {
  local stat rest
  stat=$(<"/proc/$1/stat")
  rest=${stat##*) }
  local -a f
  read -r -a f <<<"$rest"
  echo $((f[11] + f[12]))
}

json_field() { sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" <<<"$1"; }

# server_cmd NAME PORT: the command line that starts server NAME on PORT.
server_cmd() {
  local name=$1 port=$2
  case $name in
    cfssl)
      cmd=(cfssl serve -address 127.0.0.1 -port "$port" -ca "$work/ca.pem"
        -ca-key "$work/ca-key.pem" -config "$work/config.json" -loglevel 3) ;;
    cfssl-db)
      cmd=(cfssl serve -address 127.0.0.1 -port "$port" -ca "$work/ca.pem"
        -ca-key "$work/ca-key.pem" -config "$work/config.json"
        -db-config "$work/db.json" -loglevel 3) ;;
    portcullis)
      cmd=("$portcullis_bin" ca serve --ca "$work/ca.pem" --ca-key "$work/ca-key.pem"
        --config "$work/config.json" --address 127.0.0.1 --port "$port"
        --db "$work/portcullis.db") ;;
  esac
}

# start_server NAME: starts it on a free loopback port, waits until it answers
# HTTP. Sets server_pid and port; returns 1 if it did not come up in time.
start_server() {
  local name=$1 attempt i
  for ((attempt = 1; attempt <= 3; attempt++)); do
    port=$("$sign_load" --free-port)
    server_cmd "$name" "$port"
    "${cmd[@]}" >>"$work/$name.log" 2>&1 &
    server_pid=$!
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
      if ! kill -0 "$server_pid" 2>/dev/null; then
        break # exited: the port may have been taken meanwhile; try another
      fi
      # Any HTTP answer (even 404 from a server without /health) means it listens.
      if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/api/v1/cfssl/health"; then
        return 0
      fi
      sleep 0.1
    done
    stop_server
    if ((i >= START_TIMEOUT * 10)); then
      return 1 # alive but silent: no retry
    fi
  done
  return 1
}

declare -A status rate cpu gen p50 p99 okn errn

# run_load OUT ERR ARGS…: sign_load in the background, so that a signal's trap
# runs at once (bash defers traps until a foreground command ends).
run_load() {
  local out=$1 err=$2 rc=0
  shift 2
  "$sign_load" "$@" >"$out" 2>"$err" &
  load_pid=$!
  wait "$load_pid" || rc=$?
  load_pid=
  return "$rc"
}

load_args() {
  local -a a=(--url "http://127.0.0.1:$port" --concurrency "$CONCURRENCY"
    --profile client --max-seconds "$MAX_SECONDS")
  if [[ -n $auth_key ]]; then
    a+=(--authsign-key "$auth_key")
  fi
  printf '%s\n' "${a[@]}"
}

bench_one() {
  local name=$1 out before after ticks
  if [[ $name == cfssl-db && $have_sqlite == 0 ]]; then
    status[$name]="SKIPPED (sqlite3 missing: scripts/install-test-deps.sh)"
    return
  fi
  if [[ $name == portcullis && $portcullis_build != ok ]]; then
    status[$name]="SKIPPED (build failed)"
    echo "portcullis ca serve unavailable: SKIPPED (build failed)"
    return
  fi
  echo "ca-sign: $name: starting" >&2
  if ! start_server "$name"; then
    status[$name]="SKIPPED (did not start in ${START_TIMEOUT}s)"
    if [[ $name == portcullis ]]; then
      echo "portcullis ca serve unavailable: SKIPPED (no HTTP answer within ${START_TIMEOUT}s; last log lines: $(tail -n 3 "$work/$name.log" | tr '\n' ' '))"
    else
      echo "ca-sign: $name did not start; log:" >&2
      tail -n 20 "$work/$name.log" >&2
    fi
    return
  fi
  local -a args
  mapfile -t args < <(load_args)

  echo "ca-sign: $name: warm-up, $WARMUP requests" >&2
  if ! run_load /dev/null "$work/$name.warmup.err" "${args[@]}" --requests "$WARMUP"; then
    status[$name]="FAILED (warm-up: $(head -c 300 "$work/$name.warmup.err" | tr '\n' ' '))"
    stop_server
    return
  fi

  echo "ca-sign: $name: $REQUESTS requests, $CONCURRENCY connections" >&2
  before=$(cpu_ticks "$server_pid")
  run_load "$work/$name.load.out" "$work/$name.load.err" "${args[@]}" --requests "$REQUESTS" || true
  out=$(<"$work/$name.load.out")
  after=$(cpu_ticks "$server_pid" 2>/dev/null) || after=
  stop_server
  if [[ -z $after ]]; then
    status[$name]="FAILED (server exited during the run; see its log)"
    return
  fi

  okn[$name]=$(json_field "$out" ok)
  errn[$name]=$(json_field "$out" errors)
  if [[ -z ${okn[$name]} || ${okn[$name]} == 0 ]]; then
    status[$name]="FAILED ($(head -c 300 "$work/$name.load.err" | tr '\n' ' '))"
    return
  fi
  ticks=$((after - before))
  rate[$name]=$(json_field "$out" per_second)
  p50[$name]=$(json_field "$out" p50_ms)
  p99[$name]=$(json_field "$out" p99_ms)
  cpu[$name]=$(awk -v t="$ticks" -v hz="$clk_tck" -v n="${okn[$name]}" 'BEGIN { printf "%.3f", t * 1000 / hz / n }')
  gen[$name]=$(awk -v c="$(json_field "$out" client_cpu_ms)" -v n="${okn[$name]}" \
    'BEGIN { if (c != "") printf "%.3f", c / n; else print "-" }')
  status[$name]=ok
  if [[ ${errn[$name]} != 0 || $(json_field "$out" unsent) != 0 ]]; then
    status[$name]="ok, but $(json_field "$out" errors) errors, $(json_field "$out" unsent) unsent: $(head -c 200 "$work/$name.load.err" | tr '\n' ' ')"
  fi
}

for name in $SERVERS; do
  case $name in
    cfssl | cfssl-db | portcullis) bench_one "$name" ;;
    *) echo "ca-sign: unknown server '$name' in SERVERS" >&2; exit 2 ;;
  esac
done

# ------------------------------------------------------------------ report
ratio() { # ratio A B -> A/B with 2 decimals, or "-"
  if [[ -n ${1:-} && -n ${2:-} ]]; then
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
  else
    echo "-"
  fi
}

echo
echo "CA signing benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1))"
echo "load: $REQUESTS x POST /api/v1/cfssl/$([[ -n $auth_key ]] && echo authsign || echo sign), P-256 CSRs, profile client, $CONCURRENCY keep-alive connections, warm-up $WARMUP"
echo "cfssl: $(cfssl version 2>/dev/null | sed -n 's/^Version: //p'), portcullis: ${PORTCULLIS:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')}, load average at start: $loadavg, DBs on $fs_type"
echo
printf '%-12s %10s %14s %9s %9s %8s %14s  %s\n' server certs/s "cpu ms/cert" "p50 ms" "p99 ms" ok "load ms/cert" status
for name in $SERVERS; do
  shown_rate=-
  if [[ -n ${rate[$name]:-} ]]; then
    shown_rate=$(awk -v r="${rate[$name]}" 'BEGIN { printf "%.0f", r }')
  fi
  printf '%-12s %10s %14s %9s %9s %8s %14s  %s\n' "$name" "$shown_rate" "${cpu[$name]:--}" \
    "${p50[$name]:--}" "${p99[$name]:--}" "${okn[$name]:--}" "${gen[$name]:--}" "${status[$name]:-not run}"
done
echo
echo "cpu ms/cert: the server's user+system CPU time per certificate; load ms/cert: the load generator's"
echo
echo "ratios (throughput: higher is better for portcullis; CPU per cert: lower is better)"
for base in cfssl cfssl-db; do
  printf '  portcullis/%-9s throughput %6s   cpu/cert %6s\n' "$base" \
    "$(ratio "${rate[portcullis]:-}" "${rate[$base]:-}")" "$(ratio "${cpu[portcullis]:-}" "${cpu[$base]:-}")"
done
goal=$(ratio "${rate[portcullis]:-}" "${rate[cfssl]:-}")
if [[ $goal == - ]]; then
  echo "goal (portcullis >= 2x cfssl without DB): not measured"
elif awk -v g="$goal" 'BEGIN { exit !(g >= 2) }'; then
  echo "goal (portcullis >= 2x cfssl without DB): MET (${goal}x)"
else
  echo "goal (portcullis >= 2x cfssl without DB): NOT MET (${goal}x)"
fi
