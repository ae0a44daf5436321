#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of untrusted input (cargo-fuzz,
# libFuzzer). Each target runs for FUZZ_SECONDS (default 15); at the end a
# table gives executions, corpus size and crashes per target. Exit status 1
# when any target crashed (the input is in fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh                      # every target, 15 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh     # a long campaign
#   scripts/fuzz.sh csr ca_api           # some targets only
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 15)
#   FUZZ_SANITIZER  address (default) or none (faster build, no ASan)
#   FUZZ_OPTIONAL=1 exit 0 with a notice when no nightly toolchain is
#                   installed (the stable replay tests still run in CI)
#   FUZZ_TABLE      also write the table (markdown) to this file
#
# Seeds are made at run time by `fuzz-seeds` (crates/fuzz-harness) into
# fuzz/seeds/; what libFuzzer learns is kept in fuzz/corpus/ (gitignored).
# A crash: minimize it with `cargo +nightly fuzz tmin <target> <file>`, copy
# it to fuzz/regressions/<target>/, fix the bug, and add a regression test
# named fuzz_regression_<target>_<what> in the crate that had it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${FUZZ_SECONDS:-15}
sanitizer=${FUZZ_SANITIZER:-address}

if ! cargo +nightly --version >/dev/null 2>&1; then
  msg="scripts/fuzz.sh: no nightly toolchain (cargo +nightly); libFuzzer runs need one"
  if [[ ${FUZZ_OPTIONAL:-0} == 1 ]]; then
    echo "NOTICE: $msg: fuzzing SKIPPED (the stable replay tests of crates/fuzz-harness ran)" >&2
    exit 0
  fi
  echo "$msg" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "scripts/fuzz.sh: installing cargo-fuzz" >&2
  nice -n 15 cargo install --locked cargo-fuzz >&2
fi

all_targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^portcullis-fuzz$')
targets=${*:-$all_targets}

echo "== seeds" >&2
rm -rf fuzz/seeds
nice -n 15 cargo run -q --locked -p fuzz-harness --bin fuzz-seeds -- fuzz/seeds >&2

echo "== build (nightly, sanitizer: $sanitizer)" >&2
build_start=$(date +%s)
if [[ $# -eq 0 ]]; then
  (cd fuzz && nice -n 15 cargo +nightly fuzz build -O --sanitizer "$sanitizer") >&2
else
  for t in $targets; do
    (cd fuzz && nice -n 15 cargo +nightly fuzz build -O --sanitizer "$sanitizer" "$t") >&2
  done
fi
echo "build: $(( $(date +%s) - build_start )) s" >&2

bin_dir=$(ls -d fuzz/target/*/release | head -n 1)
table="| target | seconds | executions | exec/s | corpus | crashes |
| --- | ---: | ---: | ---: | ---: | ---: |"
failed=0
total_execs=0
for t in $targets; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log="fuzz/artifacts/$t/last-run.log"
  echo "== $t (${seconds} s)" >&2
  touch "fuzz/artifacts/$t/.start"
  set +e
  nice -n 15 "$bin_dir/$t" "fuzz/corpus/$t" "fuzz/seeds/$t" \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  crashes=$(find "fuzz/artifacts/$t" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) -newer "fuzz/artifacts/$t/.start" 2>/dev/null | wc -l || true)
  if [[ $rc -ne 0 ]]; then
    failed=1
    crashes=$(( crashes > 0 ? crashes : 1 ))
    echo "!! $t failed (exit $rc); see $log" >&2
    grep -E 'panicked|ERROR: AddressSanitizer|SUMMARY|Test unit written' "$log" | head -n 5 >&2 || true
  fi
  total_execs=$(( total_execs + ${execs:-0} ))
  table+="
| $t | $seconds | ${execs:-0} | ${rate:-0} | $corpus | $crashes |"
done
table+="
| **all** | | **$total_execs** | | | |"

echo
echo "$table"
if [[ -n ${FUZZ_TABLE:-} ]]; then
  echo "$table" >"$FUZZ_TABLE"
fi
exit $failed
