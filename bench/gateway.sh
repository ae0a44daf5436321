#!/usr/bin/env bash
# Gateway benchmark: the same mTLS load against
#   1. nginx (Debian 1.22, OpenSSL 3) with ssl_verify_client on, proxy_pass to the origin
#   2. portcullis serve --config gw.toml           (hostname.mtls mode = "enforce")
# one after the other, in one run, with the same certificates (P-256; client
# chain root -> intermediate -> leaf, the client sends leaf + intermediate) and
# the same origin (a separate nginx process answering `return 200`).
#
# Scenarios (load: crates/portcullis/examples/tls_load.rs, rustls client):
#   1. full mTLS handshakes, a new TLS 1.3 connection per request (+ one GET);
#   2. requests over keep-alive mTLS connections: unpaced (throughput), then at
#      a fixed rate below saturation (p50/p99 latency);
#   3. as 2 (unpaced) while an attacker floods handshakes with a certificate
#      from another CA: legitimate throughput as a share of 2's.
# For each: the rate and the server's CPU time per unit of work (user+system of
# its whole process tree from /proc: the load generator shares the cores, so
# rates alone would mislead). Also the ceiling: rustls's in-memory mutual-auth
# handshake (criterion bench crates/client-auth/benches/handshake.rs). Prints
# one table with the ratios and the goals. See bench/README.md.
#
# Environment: HS_SECONDS (5), HS_CONCURRENCY (8), KA_SECONDS (5),
# KA_CONCURRENCY (16), RATE (2000 requests/s), RATE_SECONDS (5), FLOOD_SECONDS
# (5), FLOOD_CONCURRENCY (4), WARMUP (200 handshakes, 10x as many keep-alive
# requests), LOAD_THREADS (1), NGINX_WORKERS (auto), MAX_SECONDS (60, hard
# bound per load run), START_TIMEOUT (10 s per server), CEILING (1: run the
# criterion bench; 0: skip), SERVERS (subset of "nginx portcullis"),
# PORTCULLIS (a prebuilt portcullis binary instead of this checkout's),
# NGINX (/usr/sbin/nginx), KEEP=1 (keep the temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."

HS_SECONDS=${HS_SECONDS:-5}
HS_CONCURRENCY=${HS_CONCURRENCY:-8}
KA_SECONDS=${KA_SECONDS:-5}
KA_CONCURRENCY=${KA_CONCURRENCY:-16}
RATE=${RATE:-2000}
RATE_SECONDS=${RATE_SECONDS:-5}
FLOOD_SECONDS=${FLOOD_SECONDS:-5}
FLOOD_CONCURRENCY=${FLOOD_CONCURRENCY:-4}
WARMUP=${WARMUP:-200}
LOAD_THREADS=${LOAD_THREADS:-1}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
MAX_SECONDS=${MAX_SECONDS:-60}
START_TIMEOUT=${START_TIMEOUT:-10}
CEILING=${CEILING:-1}
KEEP=${KEEP:-0}
SERVERS=${SERVERS:-nginx portcullis}
NGINX=${NGINX:-/usr/sbin/nginx}

for v in HS_SECONDS HS_CONCURRENCY KA_SECONDS KA_CONCURRENCY RATE RATE_SECONDS \
  FLOOD_SECONDS FLOOD_CONCURRENCY WARMUP LOAD_THREADS MAX_SECONDS START_TIMEOUT; do
  if [[ ! ${!v} =~ ^[0-9]+$ ]] || ((${!v} < 1)); then
    echo "gateway: $v must be a positive integer, got '${!v}'" >&2
    exit 2
  fi
done
if [[ $NGINX_WORKERS != auto && ! $NGINX_WORKERS =~ ^[1-9][0-9]*$ ]]; then
  echo "gateway: NGINX_WORKERS must be auto or a positive integer, got '$NGINX_WORKERS'" >&2
  exit 2
fi
for tool in openssl curl "$NGINX"; do
  command -v "$tool" >/dev/null || {
    echo "gateway: $tool not found (apt-get install nginx-light openssl curl)" >&2
    exit 2
  }
done

# ---------------------------------------------------------------- build, once
target_dir=${CARGO_TARGET_DIR:-target}
echo "gateway: building tls_load and portcullis (release)" >&2
cargo build --release --locked -q -p portcullis --example tls_load
tls_load=$target_dir/release/examples/tls_load
portcullis_build=ok
if [[ -n ${PORTCULLIS:-} ]]; then
  portcullis_bin=$PORTCULLIS # a prebuilt binary, e.g. another checkout's
elif [[ " $SERVERS " == *" portcullis "* ]]; then
  portcullis_bin=$target_dir/release/portcullis
  if ! cargo build --release --locked -q -p portcullis --bin portcullis; then
    portcullis_build=failed
    echo "gateway: building portcullis failed; it will be SKIPPED" >&2
  fi
fi

loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
cores=$(nproc)

# ------------------------------------------------------------ temp dir, cleanup
work=$(mktemp -d -p "${TMPDIR:-/tmp}" portcullis-gwbench.XXXXXX)
server_pid=
origin_pid=
declare -a load_pids=()

stop_pid() { # stop_pid PID: TERM, wait up to 5 s, then KILL
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_server() {
  stop_pid "$server_pid"
  server_pid=
}

cleanup() {
  local pid
  for pid in "${load_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  stop_server
  stop_pid "$origin_pid"
  if [[ $KEEP == 1 ]]; then
    echo "gateway: kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ certificates
# root -> intermediate -> client leaf; root -> server leaf (bench.test);
# attacker root -> attacker intermediate -> attacker leaf. All ECDSA P-256,
# PKCS#8 keys, 30 days.
cat >"$work/ext.cnf" <<'EOF'
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:client.bench.test
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:bench.test
EOF

# mkcert NAME CN EXT [ISSUER]: NAME.pem and NAME-key.pem, signed by ISSUER
# (ISSUER.pem, ISSUER-key.pem) or self-signed.
mkcert() {
  local name=$1 cn=$2 ext=$3 issuer=${4:-}
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$name-key.pem" 2>/dev/null
  openssl req -new -key "$work/$name-key.pem" -subj "/O=Portcullis bench/CN=$cn" -out "$work/$name.csr"
  local -a sign=(-signkey "$work/$name-key.pem")
  if [[ -n $issuer ]]; then
    sign=(-CA "$work/$issuer.pem" -CAkey "$work/$issuer-key.pem")
  fi
  openssl x509 -req -in "$work/$name.csr" "${sign[@]}" -sha256 -days 30 \
    -set_serial "0x$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" \
    -extfile "$work/ext.cnf" -extensions "$ext" -out "$work/$name.pem" 2>/dev/null
}
echo "gateway: making certificates in $work" >&2
mkcert root "Bench Root" root
mkcert intermediate "Bench Intermediate" intermediate root
mkcert client "bench client" client intermediate
mkcert server bench.test server root
mkcert attacker-root "Attacker Root" root
mkcert attacker-intermediate "Attacker Intermediate" intermediate attacker-root
mkcert attacker "attacker" client attacker-intermediate
cat "$work/client.pem" "$work/intermediate.pem" >"$work/client-chain.pem"
cat "$work/attacker.pem" "$work/attacker-intermediate.pem" >"$work/attacker-chain.pem"
openssl verify -CAfile "$work/root.pem" -untrusted "$work/intermediate.pem" "$work/client.pem" >/dev/null

# ------------------------------------------------------------------ helpers
clk_tck=$(getconf CLK_TCK)

# tree_ticks PID: utime+stime (clock ticks) of PID and all its descendants,
# from /proc/*/stat (fields 14 and 15; the command name in field 2 may hold
# spaces, so count from its closing ')'). nginx: the master and its workers.
tree_ticks() {
  local root=$1 f pid stat rest changed total=0
  local -A parent=() ticks=() in_tree=()
  local -a fl
  for f in /proc/[0-9]*/stat; do
    { stat=$(<"$f"); } 2>/dev/null || continue
    pid=${f#/proc/}
    pid=${pid%/stat}
    rest=${stat##*) }
    read -r -a fl <<<"$rest"
    parent[$pid]=${fl[1]}
    ticks[$pid]=$((fl[11] + fl[12]))
  done
  [[ -n ${ticks[$root]:-} ]] || return 1
  in_tree[$root]=1
  changed=1
  while ((changed)); do
    changed=0
    for pid in "${!parent[@]}"; do
      if [[ -z ${in_tree[$pid]:-} && -n ${in_tree[${parent[$pid]}]:-} ]]; then
        in_tree[$pid]=1
        changed=1
      fi
    done
  done
  for pid in "${!in_tree[@]}"; do
    total=$((total + ticks[$pid]))
  done
  echo "$total"
}

json_field() { sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" <<<"$1"; }
calc() { awk "BEGIN { $1 }"; } # calc 'printf "%.1f", 1/3'

free_port() { "$tls_load" --free-port; }

ratio() { # ratio A B -> A/B with 2 decimals, or "-"
  if [[ -n ${1:-} && -n ${2:-} ]]; then
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
  else
    echo "-"
  fi
}

# nginx_conf FILE NAME BODY: a standalone nginx config (own prefix, pid and logs
# in the temp dir, in the foreground) whose http{} block is BODY.
nginx_conf() {
  local file=$1 name=$2 body=$3 workers=$4 user_line=
  if ((EUID == 0)); then
    user_line="user root root;" # workers read the 0700 temp dir
  fi
  mkdir -p "$work/$name-tmp"
  cat >"$file" <<EOF
daemon off;
master_process on;
worker_processes $workers;
$user_line
pid $work/$name.pid;
error_log $work/$name-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/$name-tmp/body;
  proxy_temp_path $work/$name-tmp/proxy;
  fastcgi_temp_path $work/$name-tmp/fastcgi;
  uwsgi_temp_path $work/$name-tmp/uwsgi;
  scgi_temp_path $work/$name-tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
$body
}
EOF
}

# --------------------------------------------------------------- the origin
# Its own nginx process, one worker, `return 200`; shared by both fronts. Its
# CPU is not counted as the server's.
start_origin() {
  local attempt i
  for ((attempt = 1; attempt <= 3; attempt++)); do
    origin_port=$(free_port)
    nginx_conf "$work/origin.conf" origin "  server {
    listen 127.0.0.1:$origin_port;
    location / { return 200 \"ok\\n\"; }
  }" 1
    "$NGINX" -p "$work" -c "$work/origin.conf" >>"$work/origin.log" 2>&1 &
    origin_pid=$!
    for ((i = 0; i < 50; i++)); do
      kill -0 "$origin_pid" 2>/dev/null || break
      if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$origin_port/") == 200 ]]; then
        return 0
      fi
      sleep 0.1
    done
    stop_pid "$origin_pid"
    origin_pid=
  done
  echo "gateway: the origin (nginx) did not start:" >&2
  tail -n 20 "$work/origin.log" "$work/origin-error.log" >&2 2>/dev/null || true
  exit 1
}
start_origin
echo "gateway: origin on 127.0.0.1:$origin_port" >&2

# -------------------------------------------------------------- the servers
# server_start NAME PORT: starts NAME's front on PORT in the background.
server_start() {
  local name=$1 port=$2
  case $name in
    nginx)
      nginx_conf "$work/front.conf" front "  upstream origin {
    server 127.0.0.1:$origin_port;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$port ssl;
    server_name bench.test;
    ssl_certificate $work/server.pem;
    ssl_certificate_key $work/server-key.pem;
    ssl_protocols TLSv1.3;
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_client_certificate $work/root.pem;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }
  }" "$NGINX_WORKERS"
      "$NGINX" -p "$work" -c "$work/front.conf" >>"$work/nginx.log" 2>&1 &
      ;;
    portcullis)
      admin_port=$(free_port)
      mkdir -p "$work/data"
      cat >"$work/gw.toml" <<EOF
[server]
https = "127.0.0.1:$port"
admin = "127.0.0.1:$admin_port"
data_dir = "$work/data"

[[ca]]
name = "bench-root"
pem = "root.pem"

[[hostname]]
name = "bench.test"
cert = "server.pem"
key = "server-key.pem"
origin = "http://127.0.0.1:$origin_port"

[hostname.mtls]
mode = "enforce"
cas = ["bench-root"]
EOF
      "$portcullis_bin" serve --config "$work/gw.toml" >>"$work/portcullis.log" 2>&1 &
      ;;
  esac
  server_pid=$!
}

# probe PORT CHAIN KEY: the HTTP status a curl mTLS request gets ("000": none).
probe() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$work/root.pem" \
    --cert "$work/$2" --key "$work/$3" --resolve "bench.test:$1:127.0.0.1" \
    "https://bench.test:$1/" 2>/dev/null || true
}

# start_server NAME: on a free port; waits until an mTLS request gets 200.
# Sets server_pid and port; returns 1 if that did not happen within START_TIMEOUT.
start_server() {
  local name=$1 attempt i
  for ((attempt = 1; attempt <= 3; attempt++)); do
    port=$(free_port)
    server_start "$name" "$port"
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
      if ! kill -0 "$server_pid" 2>/dev/null; then
        break # exited: the port may have been taken meanwhile; try another
      fi
      if [[ $(probe "$port" client-chain.pem client-key.pem) == 200 ]]; then
        return 0
      fi
      sleep 0.1
    done
    stop_server
    if ((i >= START_TIMEOUT * 10)); then
      return 1 # alive but not answering: no retry
    fi
  done
  return 1
}

forget_pid() { # forget_pid PID: drop PID from load_pids
  local p
  local -a keep=()
  for p in "${load_pids[@]}"; do
    [[ $p == "$1" ]] || keep+=("$p")
  done
  load_pids=("${keep[@]}")
}

# run_load OUT ERR ARGS…: tls_load in the background, so that a signal's trap
# runs at once (bash defers traps until a foreground command ends).
run_load() {
  local out=$1 err=$2 rc=0 pid
  shift 2
  "$tls_load" "$@" >"$out" 2>"$err" &
  pid=$!
  load_pids+=("$pid")
  wait "$pid" || rc=$?
  forget_pid "$pid"
  return "$rc"
}

declare -A status val

# measure NAME KEY ARGS…: one load run with the server's tree CPU around it.
# Sets val[NAME.KEY.*]: rate, cpu_us (server CPU per ok), p50, p99, ok, errors,
# load_us (generator CPU per ok). Returns 1 if nothing succeeded.
measure() {
  local name=$1 key=$2 before after out
  shift 2
  before=$(tree_ticks "$server_pid") || return 1
  run_load "$work/$name.$key.out" "$work/$name.$key.err" "${common[@]}" "$@" || true
  after=$(tree_ticks "$server_pid") || {
    echo "gateway: $name exited during $key" >&2
    return 1
  }
  out=$(<"$work/$name.$key.out")
  record "$name" "$key" "$out" $((after - before))
}

# record NAME KEY JSON TICKS
record() {
  local name=$1 key=$2 out=$3 ticks=$4 ok
  ok=$(json_field "$out" ok)
  val[$name.$key.ok]=$ok
  val[$name.$key.errors]=$(json_field "$out" errors)
  if [[ -z $ok || $ok == 0 ]]; then
    echo "gateway: $name $key: nothing succeeded: $(head -c 300 "$work/$name.$key.err" | tr '\n' ' ')" >&2
    return 1
  fi
  if [[ ${val[$name.$key.errors]} != 0 ]]; then
    echo "gateway: $name $key: ${val[$name.$key.errors]} errors: $(head -c 300 "$work/$name.$key.err" | tr '\n' ' ')" >&2
  fi
  val[$name.$key.rate]=$(calc "printf \"%.0f\", $(json_field "$out" per_second)")
  val[$name.$key.p50]=$(json_field "$out" p50_ms)
  val[$name.$key.p99]=$(json_field "$out" p99_ms)
  val[$name.$key.cpu_us]=$(calc "printf \"%.1f\", $ticks * 1e6 / $clk_tck / $ok")
  val[$name.$key.load_us]=$(calc "printf \"%.1f\", $(json_field "$out" client_cpu_ms) * 1000 / $ok")
}

bench_one() {
  local name=$1 flood_pid before after out flood_out
  if [[ $name == portcullis && $portcullis_build != ok ]]; then
    status[$name]="SKIPPED (portcullis serve unavailable: build failed)"
    echo "portcullis serve unavailable: SKIPPED (build failed)"
    return
  fi
  echo "gateway: $name: starting" >&2
  if ! start_server "$name"; then
    if [[ $name == portcullis ]]; then
      status[$name]="SKIPPED (portcullis serve unavailable)"
      echo "SKIPPED (portcullis serve unavailable: no 200 over mTLS within ${START_TIMEOUT}s; last log lines: $(tail -n 3 "$work/portcullis.log" | tr '\n' ' '))"
    else
      status[$name]="FAILED (did not start)"
      echo "gateway: $name did not start; log:" >&2
      tail -n 20 "$work/$name.log" "$work/front-error.log" >&2 2>/dev/null || true
    fi
    return
  fi
  # The attacker's certificate must be refused (in TLS or with an HTTP error),
  # or scenario 3 means nothing.
  local refused
  refused=$(probe "$port" attacker-chain.pem attacker-key.pem)
  echo "gateway: $name: the attacker's certificate gets HTTP $refused (000: refused in TLS)" >&2
  if [[ $refused == 200 ]]; then
    status[$name]="FAILED (accepted the attacker's certificate)"
    stop_server
    return
  fi

  common=(--addr "127.0.0.1:$port" --sni bench.test --ca "$work/root.pem"
    --cert "$work/client-chain.pem" --key "$work/client-key.pem"
    --threads "$LOAD_THREADS" --max-seconds "$MAX_SECONDS")
  echo "gateway: $name: warm-up" >&2
  run_load /dev/null "$work/$name.warmup.err" "${common[@]}" --mode handshake \
    --requests "$WARMUP" --concurrency "$HS_CONCURRENCY" || true
  run_load /dev/null "$work/$name.warmup.err" "${common[@]}" --mode keepalive \
    --requests $((WARMUP * 10)) --concurrency "$KA_CONCURRENCY" || true

  status[$name]=ok
  echo "gateway: $name: 1. handshakes, ${HS_SECONDS}s, $HS_CONCURRENCY connections" >&2
  measure "$name" hs --mode handshake --seconds "$HS_SECONDS" \
    --concurrency "$HS_CONCURRENCY" || status[$name]="FAILED (handshakes)"
  echo "gateway: $name: 2. keep-alive, ${KA_SECONDS}s, $KA_CONCURRENCY connections" >&2
  measure "$name" ka --mode keepalive --seconds "$KA_SECONDS" \
    --concurrency "$KA_CONCURRENCY" || status[$name]="FAILED (keep-alive)"
  echo "gateway: $name: 2. keep-alive at $RATE/s for ${RATE_SECONDS}s" >&2
  measure "$name" rate --mode keepalive --rate "$RATE" --requests $((RATE * RATE_SECONDS)) \
    --concurrency "$KA_CONCURRENCY" || status[$name]="FAILED (fixed rate)"

  echo "gateway: $name: 3. keep-alive under a handshake flood, ${FLOOD_SECONDS}s" >&2
  before=$(tree_ticks "$server_pid")
  "$tls_load" --mode flood --addr "127.0.0.1:$port" --sni bench.test --ca "$work/root.pem" \
    --cert "$work/attacker-chain.pem" --key "$work/attacker-key.pem" \
    --concurrency "$FLOOD_CONCURRENCY" --seconds $((FLOOD_SECONDS + 1)) \
    --max-seconds $((FLOOD_SECONDS + 5)) \
    >"$work/$name.flood.out" 2>"$work/$name.flood.err" &
  flood_pid=$!
  load_pids+=("$flood_pid")
  sleep 0.5 # let the flood reach its pace first
  run_load "$work/$name.legit.out" "$work/$name.legit.err" "${common[@]}" --mode keepalive \
    --seconds "$FLOOD_SECONDS" --concurrency "$KA_CONCURRENCY" || true
  wait "$flood_pid" || true
  forget_pid "$flood_pid"
  after=$(tree_ticks "$server_pid") || after=
  if [[ -z $after ]]; then
    status[$name]="FAILED (exited during the flood)"
  else
    out=$(<"$work/$name.legit.out")
    record "$name" legit "$out" $((after - before)) || status[$name]="FAILED (flood)"
    flood_out=$(<"$work/$name.flood.out")
    val[$name.flood.rate]=$(calc "printf \"%.0f\", $(json_field "$flood_out" per_second) + 0")
    val[$name.flood.tls_share]=$(calc "n = $(json_field "$flood_out" ok) + 0; printf \"%.2f\", n ? $(json_field "$flood_out" rejected_in_tls) / n : 0")
    if [[ $(json_field "$flood_out" errors) != 0 ]]; then
      echo "gateway: $name flood: $(json_field "$flood_out" errors) errors: $(head -c 300 "$work/$name.flood.err" | tr '\n' ' ')" >&2
    fi
    if [[ -n ${val[$name.ka.rate]:-} && -n ${val[$name.legit.rate]:-} ]]; then
      val[$name.share]=$(ratio "${val[$name.legit.rate]}" "${val[$name.ka.rate]}")
    fi
  fi
  stop_server
}

# ----------------------------------------------------------- rustls ceiling
ceiling_full_ns=
ceiling_server_ns=
criterion_mean() { # criterion_mean DIR: mean point estimate (ns) of one bench
  local f=$target_dir/criterion/mtls_handshake/$1/new/estimates.json
  [[ -f $f ]] || return 0
  sed -n 's/.*"mean":{"confidence_interval":{[^}]*},"point_estimate":\([0-9.eE+-]*\).*/\1/p' "$f"
}
if [[ $CEILING == 1 ]]; then
  echo "gateway: rustls ceiling: cargo bench -p client-auth --bench handshake (x25519)" >&2
  if cargo bench --locked -q -p client-auth --bench handshake -- \
    --warm-up-time 1 --measurement-time 3 'mtls_handshake/x25519/' >"$work/ceiling.log" 2>&1; then
    ceiling_full_ns=$(criterion_mean x25519_full)
    ceiling_server_ns=$(criterion_mean x25519_server_side)
  else
    echo "gateway: the criterion bench failed:" >&2
    tail -n 20 "$work/ceiling.log" >&2
  fi
fi

for name in $SERVERS; do
  case $name in
    nginx | portcullis) bench_one "$name" ;;
    *) echo "gateway: unknown server '$name' in SERVERS" >&2; exit 2 ;;
  esac
done

# ------------------------------------------------------------------ report
v() { echo "${val[$1]:--}"; }
row() { # row LABEL KEY: one metric for both servers and their ratio
  local n p
  n=$(v "nginx.$2")
  p=$(v "portcullis.$2")
  printf '%-44s %12s %12s %8s\n' "$1" "$n" "$p" \
    "$(ratio "${val[portcullis.$2]:-}" "${val[nginx.$2]:-}")"
}
if [[ $NGINX_WORKERS == auto ]]; then
  workers_shown="auto (= $cores)"
else
  workers_shown=$NGINX_WORKERS
fi

echo
echo "Gateway benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $cores cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), load average at start: $loadavg"
echo "nginx: $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), $(openssl version | cut -d' ' -f1-2), worker_processes $workers_shown; portcullis: ${PORTCULLIS:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')}"
echo "load: tls_load (rustls, aws-lc-rs, TLS 1.3, X25519, no resumption), $LOAD_THREADS thread(s); P-256 certificates, client sends leaf + intermediate"
echo
for name in $SERVERS; do
  printf '%-12s %s\n' "$name" "${status[$name]:-not run}"
done
echo
printf '%-44s %12s %12s %8s\n' "" nginx portcullis "p/n"
row "1. cpu us per handshake (+1 request)" hs.cpu_us
row "1. handshakes/s ($HS_CONCURRENCY conns, ${HS_SECONDS}s)" hs.rate
row "1. load generator cpu us per handshake" hs.load_us
row "2. cpu us per keep-alive request" ka.cpu_us
row "2. requests/s ($KA_CONCURRENCY conns, ${KA_SECONDS}s)" ka.rate
row "2. at $RATE/s: cpu us per request" rate.cpu_us
row "2. at $RATE/s: p50 ms" rate.p50
row "2. at $RATE/s: p99 ms" rate.p99
row "3. legit requests/s under flood" legit.rate
row "3. legit share of 2's requests/s" share
row "3. flood handshakes/s (bad certificate)" flood.rate
row "3. share of them refused in TLS (alert)" flood.tls_share
row "3. cpu us per legit request (flood incl.)" legit.cpu_us
echo
if [[ -n $ceiling_full_ns && -n $ceiling_server_ns ]]; then
  ceiling_us=$(calc "printf \"%.1f\", $ceiling_server_ns / 1000")
  echo "rustls ceiling (in-memory mTLS handshake, same certs and provider, X25519, criterion):"
  echo "  $(calc "printf \"%.0f\", 1e9 / $ceiling_full_ns") handshakes/s on one core (both sides, $(calc "printf \"%.1f\", $ceiling_full_ns / 1000") us), server side $ceiling_us us per handshake"
else
  ceiling_us=
  echo "rustls ceiling: not measured (CEILING=$CEILING)"
fi
echo
echo "cpu: user+system of the server's process tree (/proc) during the run, per successful request;"
echo "nginx: master + workers; the origin's CPU is not counted. p/n: portcullis / nginx."
echo
goal() { # goal TEXT MET(0/1/empty) DETAIL
  if [[ -z $2 ]]; then
    echo "goal ($1): not measured"
  elif [[ $2 == 1 ]]; then
    echo "goal ($1): MET ($3)"
  else
    echo "goal ($1): NOT MET ($3)"
  fi
}
check() { calc "print (($1) ? 1 : 0)"; } # check AWK_CONDITION -> 1 or 0
pc=${val[portcullis.hs.cpu_us]:-}
nc=${val[nginx.hs.cpu_us]:-}
met=
[[ -n $pc && -n $nc ]] && met=$(check "$pc <= 0.5 * $nc")
goal "cpu per handshake <= 0.5x nginx" "$met" "$(ratio "$pc" "$nc")x"
met=
[[ -n $pc && -n $ceiling_us ]] && met=$(check "$pc <= 1.5 * $ceiling_us")
goal "cpu per handshake <= 1.5x the rustls ceiling" "$met" "$(ratio "$pc" "$ceiling_us")x of $ceiling_us us"
met=
pk=${val[portcullis.ka.cpu_us]:-}
nk=${val[nginx.ka.cpu_us]:-}
pp=${val[portcullis.rate.p99]:-}
np=${val[nginx.rate.p99]:-}
[[ -n $pk && -n $nk && -n $pp && -n $np ]] && met=$(check "$pk <= 0.8 * $nk && $pp <= $np")
goal "cpu per keep-alive request <= 0.8x nginx, p99 no worse" "$met" "cpu $(ratio "$pk" "$nk")x, p99 $pp vs $np ms"
met=
ps=${val[portcullis.share]:-}
[[ $ps =~ ^[0-9.]+$ ]] && met=$(check "$ps >= 0.8")
goal ">= 80% of legitimate throughput under the flood" "$met" "portcullis ${ps:--}, nginx ${val[nginx.share]:--}"
