#!/usr/bin/env bash
# Edge policy benchmark: requests per second through `portcullis serve` over
# keep-alive mTLS connections (mode enforce) to an nginx `return 200` origin,
#   1. "off":    the hostname without edge policy;
#   2. "policy": the same with a Cloudflare token check on every request
#                (signed URL from `portcullis token sign`), 10 CEL rules
#                (none matching, so all 10 are evaluated) and a local rate
#                limit keyed by certificate fingerprint (high enough never to
#                refuse);
# one after the other in one run, same certificates and load, and prints the
# ratio (goal: policy keeps >= 90% of off). Load: the rustls client of
# crates/portcullis/examples/tls_load.rs (also used by bench/gateway.sh).
#
# Environment: SECONDS_PER_RUN (5), CONCURRENCY (16), ROUNDS (2: off/policy
# alternate, best of each kept), MAX_SECONDS (60, hard bound per load run),
# PORTCULLIS (a prebuilt binary), NGINX (/usr/sbin/nginx), KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONCURRENCY=${CONCURRENCY:-16}
ROUNDS=${ROUNDS:-2}
MAX_SECONDS=${MAX_SECONDS:-60}
KEEP=${KEEP:-0}
NGINX=${NGINX:-/usr/sbin/nginx}
for v in SECONDS_PER_RUN CONCURRENCY ROUNDS MAX_SECONDS; do
  if [[ ! ${!v} =~ ^[0-9]+$ ]] || ((${!v} < 1)); then
    echo "policy: $v must be a positive integer, got '${!v}'" >&2
    exit 2
  fi
done
for tool in openssl curl "$NGINX"; do
  command -v "$tool" >/dev/null || {
    echo "policy: $tool not found (apt-get install nginx-light openssl curl)" >&2
    exit 2
  }
done

target_dir=${CARGO_TARGET_DIR:-target}
echo "policy: building tls_load and portcullis (release)" >&2
cargo build --release --locked -q -p portcullis --example tls_load
tls_load=$target_dir/release/examples/tls_load
if [[ -n ${PORTCULLIS:-} ]]; then
  portcullis_bin=$PORTCULLIS
else
  cargo build --release --locked -q -p portcullis --bin portcullis
  portcullis_bin=$target_dir/release/portcullis
fi

work=$(mktemp -d -p "${TMPDIR:-/tmp}" portcullis-policybench.XXXXXX)
server_pid=
origin_pid=
stop_pid() {
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
cleanup() {
  stop_pid "$server_pid"
  stop_pid "$origin_pid"
  if [[ $KEEP == 1 ]]; then echo "policy: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Certificates: root -> client leaf, root -> server leaf (bench.test), P-256.
cat >"$work/ext.cnf" <<'X'
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:bench.test
X
mkcert() { # mkcert NAME CN EXT [ISSUER]
  local name=$1 cn=$2 ext=$3 issuer=${4:-}
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$name-key.pem" 2>/dev/null
  openssl req -new -key "$work/$name-key.pem" -subj "/O=Portcullis bench/CN=$cn" -out "$work/$name.csr"
  local -a sign=(-signkey "$work/$name-key.pem")
  [[ -z $issuer ]] || sign=(-CA "$work/$issuer.pem" -CAkey "$work/$issuer-key.pem")
  openssl x509 -req -in "$work/$name.csr" "${sign[@]}" -sha256 -days 30 \
    -set_serial "0x$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" \
    -extfile "$work/ext.cnf" -extensions "$ext" -out "$work/$name.pem" 2>/dev/null
}
mkcert root "Bench Root" root
mkcert client "bench client" client root
mkcert server bench.test server root
umask 077
printf 'bench-token-secret\n' >"$work/token-secret"

# Origin: nginx, one worker, return 200.
origin_port=$("$tls_load" --free-port)
mkdir -p "$work/origin-tmp"
user_line=
((EUID != 0)) || user_line="user root root;"
cat >"$work/origin.conf" <<X
daemon off;
worker_processes 1;
$user_line
pid $work/origin.pid;
error_log $work/origin-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/origin-tmp/body;
  proxy_temp_path $work/origin-tmp/proxy;
  fastcgi_temp_path $work/origin-tmp/fastcgi;
  uwsgi_temp_path $work/origin-tmp/uwsgi;
  scgi_temp_path $work/origin-tmp/scgi;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$origin_port; location / { return 200 "ok\n"; } }
}
X
"$NGINX" -p "$work" -c "$work/origin.conf" >"$work/origin.log" 2>&1 &
origin_pid=$!
for ((i = 0; i < 50; i++)); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$origin_port/") == 200 ]] && break
  sleep 0.1
done

# The signed path every "policy" request uses (valid for 1 hour).
signed=$("$portcullis_bin" token sign /bench/asset.bin --secret-file "$work/token-secret" |
  sed -n 's/.*"url":"\([^"]*\)".*/\1/p')

config() { # config NAME PORT
  cat <<X
[server]
https = "127.0.0.1:$2"

[[ca]]
name = "root"
pem = "root.pem"

[[hostname]]
name = "bench.test"
cert = "server.pem"
key = "server-key.pem"
origin = "http://127.0.0.1:$origin_port"

[hostname.mtls]
mode = "enforce"
cas = ["root"]
X
  [[ $1 == policy ]] || return 0
  cat <<X

[[hostname.token]]
scheme = "cloudflare"
paths = ["/bench/*"]
secret_files = ["token-secret"]
ttl = 3600

[[hostname.rate_limit]]
name = "per-cert"
key = "cert_fingerprint"
period = 60
limit = 100000000
X
  local i
  for ((i = 0; i < 10; i++)); do
    case $((i % 3)) in
      0) e="http.request.uri.path.startsWith(\"/admin/$i\") && !cf.tls_client_auth.cert_verified" ;;
      1) e="ip.src == \"10.0.0.$i\" || http.request.method == \"DELETE\"" ;;
      *) e="cf.tls_client_auth.cert_subject_dn == \"CN=blocked-$i\"" ;;
    esac
    printf '\n[[hostname.rule]]\nname = "r%d"\nexpression = %s\naction = "block"\n' "$i" "'$e'"
  done
}

declare -A best=()
run() { # run NAME
  local name=$1 port i out rate
  port=$("$tls_load" --free-port)
  config "$name" "$port" >"$work/$name.toml"
  "$portcullis_bin" serve --config "$work/$name.toml" >/dev/null 2>"$work/$name.log" &
  server_pid=$!
  for ((i = 0; i < 100; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$work/root.pem" \
      --cert "$work/client.pem" --key "$work/client-key.pem" \
      --resolve "bench.test:$port:127.0.0.1" "https://bench.test:$port$signed") == 200 ]] && break
    sleep 0.1
  done
  local -a common=(--addr "127.0.0.1:$port" --sni bench.test --ca "$work/root.pem"
    --cert "$work/client.pem" --key "$work/client-key.pem" --path "$signed"
    --max-seconds "$MAX_SECONDS")
  "$tls_load" "${common[@]}" --mode keepalive --concurrency "$CONCURRENCY" --requests 2000 >/dev/null 2>&1 || true
  out=$("$tls_load" "${common[@]}" --mode keepalive --concurrency "$CONCURRENCY" \
    --seconds "$SECONDS_PER_RUN" 2>"$work/$name.load.err" || true)
  stop_pid "$server_pid"
  server_pid=
  rate=$(sed -n 's/.*"per_second":\([0-9.]*\).*/\1/p' <<<"$out")
  errors=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' <<<"$out")
  echo "policy: $name: ${rate:-?} requests/s, ${errors:-?} errors" >&2
  if [[ -n $rate && ${errors:-1} == 0 ]] && awk -v a="$rate" -v b="${best[$name]:-0}" 'BEGIN{exit !(a>b)}'; then
    best[$name]=$rate
  fi
}
for ((r = 0; r < ROUNDS; r++)); do
  run off
  run policy
done
off=${best[off]:-}
pol=${best[policy]:-}
if [[ -z $off || -z $pol ]]; then
  echo "policy: a run failed (see $work; KEEP=1 keeps it)" >&2
  exit 1
fi
ratio=$(awk -v a="$pol" -v b="$off" 'BEGIN { printf "%.2f", a / b }')
printf '\n%-34s %12s\n' "keep-alive mTLS, $CONCURRENCY connections" "requests/s"
printf '%-34s %12.0f\n' "off (no edge policy)" "$off"
printf '%-34s %12.0f\n' "token + 10 rules + local limit" "$pol"
printf '%-34s %12s   (goal >= 0.90)\n' "ratio" "$ratio"
printf 'cores %s, load %s\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
