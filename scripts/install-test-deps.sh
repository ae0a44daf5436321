#!/usr/bin/env bash
# Installs what the test suite needs that is not a Rust crate, only when missing:
# openssl, curl, the stock CFSSL 1.2 client/server (Debian golang-cfssl), nginx,
# SoftHSM2, opensc (pkcs11-tool), redis-server (rate-limit tests start their
# own on an ephemeral port), PostgreSQL (server binaries for the egress test's
# temporary cluster, and psql), and cargo-nextest. Safe to run repeatedly.
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
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)

if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  echo "install-test-deps: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

if ! command -v cargo-nextest >/dev/null; then
  echo "install-test-deps: installing cargo-nextest" >&2
  cargo install --locked cargo-nextest >&2
fi
echo "install-test-deps: ok" >&2
