#!/usr/bin/env bash
# The whole test suite: unit tests (ctest), the fakes' own tests, integration
# tests against the real binary, all of it again under ASan+UBSan, and a
# valgrind leak check of one full start-work-stop run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
JOBS=${JOBS:-$(nproc)}
export PYTHONDONTWRITEBYTECODE=1

step() { printf '\n==== %s ====\n' "$*"; }

pytest_run() {
  # pytest exits 5 when it collected nothing: that is a failure here too.
  "$PY" -m pytest -q -p no:cacheprovider "$@"
}

step "build (debug)"
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build/test -j"$JOBS"

step "unit tests"
(cd build/test && ctest --output-on-failure -j"$JOBS" --timeout 300)

step "fake servers' own tests"
pytest_run tests/fakes

step "integration tests"
SOUK_BIN="$PWD/build/test/souk" pytest_run tests/integration

step "browser test of the dashboard (headless Chromium + playwright-core)"
# Runs the real binary's dashboard in Debian's Chromium.  It is skipped only
# where Chromium cannot be installed, and never under CI.
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  scripts/deps.sh test || echo "souk: could not install the test packages" >&2
fi
if [ -x "$CHROMIUM" ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
  (root=$PWD && cd tests/browser && CHROMIUM="$CHROMIUM" SOUK_BIN="$root/build/test/souk" \
    SOUK_TEST_OUTPUT="$root/build/test-output" node --test dashboard.test.mjs)
  echo "screenshots: build/test-output/browser/"
elif [ -n "${CI:-}" ]; then
  echo "souk: Chromium is required for the browser test in CI (apt-get install chromium)" >&2
  exit 1
else
  echo "souk: WARNING: browser test SKIPPED: Chromium is not installed and could not be" >&2
  echo "      (scripts/deps.sh test, or apt-get install chromium)" >&2
fi

step "Parquet files read back by hyparquet and DuckDB (tests/parquet)"
tests/parquet/run.sh "$PWD/build/test"

step "build (ASan + UBSan)"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DSOUK_SANITIZE=ON >/dev/null
cmake --build build/asan -j"$JOBS"

step "unit tests under ASan + UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build/asan && ctest --output-on-failure -j"$JOBS" --timeout 600)

step "integration tests under ASan + UBSan"
SOUK_BIN="$PWD/build/asan/souk" SOUK_SANITIZED=1 pytest_run tests/integration

unset ASAN_OPTIONS UBSAN_OPTIONS
step "valgrind leak check (start, work, stop)"
SOUK_BIN="$PWD/build/test/souk" SOUK_VALGRIND=1 pytest_run tests/integration -k valgrind

step "all tests passed"
