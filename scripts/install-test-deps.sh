#!/usr/bin/env bash
# Installs what the test suite needs that is not a Rust crate, only when missing:
# openssl, curl, the stock CFSSL 1.2 client/server (Debian golang-cfssl), nginx,
# SoftHSM2, opensc (pkcs11-tool), redis-server (rate-limit tests start their
# own on an ephemeral port), PostgreSQL (server on 127.0.0.1:5432 with a
# `test` database, trust auth for `postgres`, for the store suite; initdb/pg_ctl
# for the fleet and egress tests' own clusters), Chromium, Node.js with
# playwright-core (the dashboard's browser test, in
# crates/portcullis/tests/dashboard) and cargo-nextest. Safe to run repeatedly.
set -euo pipefail

need=()
command -v openssl    >/dev/null || need+=(openssl)
command -v curl       >/dev/null || need+=(curl)
command -v cfssl      >/dev/null || need+=(golang-cfssl)
command -v cfssljson  >/dev/null || need+=(golang-cfssl)
command -v nginx      >/dev/null || need+=(nginx-light)
command -v softhsm2-util >/dev/null || need+=(softhsm2)
command -v pkcs11-tool >/dev/null || need+=(opensc)
command -v sqlite3    >/dev/null || need+=(sqlite3)
command -v psql       >/dev/null || need+=(postgresql-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[[ -x /usr/bin/chromium ]] || need+=(chromium)
command -v node       >/dev/null || need+=(nodejs)
command -v npm        >/dev/null || need+=(npm)
command -v redis-server >/dev/null || need+=(redis-server)

if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  echo "install-test-deps: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# PostgreSQL for the store suite (PORTCULLIS_TEST_PG, default
# postgres://postgres@127.0.0.1:5432/test). Started only when nothing answers
# on 127.0.0.1:5432; an existing server is used as it is.
pg_answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if [[ -z "${PORTCULLIS_TEST_PG:-}" ]]; then
  if pg_answers; then
    echo "install-test-deps: PostgreSQL answers on 127.0.0.1:5432; using it" >&2
  else
    if [[ $(id -u) -ne 0 ]]; then
      echo "install-test-deps: nothing answers on 127.0.0.1:5432 and we are not root: start PostgreSQL yourself (trust auth for user postgres, database test) or set PORTCULLIS_TEST_PG" >&2
      exit 1
    fi
    if command -v pg_ctlcluster >/dev/null && [[ -n "$(pg_lsclusters -h 2>/dev/null)" ]]; then
      read -r ver name _ < <(pg_lsclusters -h | head -1)
      # A test machine: let `postgres` in over 127.0.0.1 without a password
      # (the suite's default URL), as the project's machines are set up.
      hba=/etc/postgresql/$ver/$name/pg_hba.conf
      if [[ -f $hba ]] && ! grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
        sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
      fi
      echo "install-test-deps: starting PostgreSQL cluster $ver/$name" >&2
      pg_ctlcluster "$ver" "$name" start >&2 || true
    else
      bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
      data=/var/lib/postgresql/portcullis-test
      if [[ ! -s $data/PG_VERSION ]]; then
        echo "install-test-deps: creating a PostgreSQL cluster in $data" >&2
        install -d -o postgres -g postgres "$data"
        runuser -u postgres -- "$bindir/initdb" -D "$data" -A trust -U postgres >/dev/null
      fi
      runuser -u postgres -- "$bindir/pg_ctl" -D "$data" -l "$data/server.log" \
        -o "-c listen_addresses=127.0.0.1 -c port=5432" -w start >&2
    fi
    for _ in $(seq 50); do pg_answers && break; sleep 0.2; done
    pg_answers || { echo "install-test-deps: PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
  fi
  # The `test` database (trust auth for postgres over TCP is assumed, as on CI).
  if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'SELECT 1' >/dev/null 2>&1; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test' >&2 ||
      echo "install-test-deps: cannot create database test on 127.0.0.1:5432 as postgres (trust auth needed, or set PORTCULLIS_TEST_PG)" >&2
  fi
fi

# playwright-core (the pinned version of package-lock.json) for the dashboard
# test, in its own directory; it drives /usr/bin/chromium, so no browser is
# downloaded.
dash_e2e="$(cd "$(dirname "$0")/.." && pwd)/crates/portcullis/tests/dashboard"
if [[ ! -f $dash_e2e/node_modules/playwright-core/package.json ]]; then
  echo "install-test-deps: npm ci in $dash_e2e (playwright-core)" >&2
  (cd "$dash_e2e" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2)
fi

if ! command -v cargo-nextest >/dev/null; then
  echo "install-test-deps: installing cargo-nextest" >&2
  cargo install --locked cargo-nextest >&2
fi
echo "install-test-deps: ok" >&2
