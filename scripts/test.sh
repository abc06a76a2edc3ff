#!/usr/bin/env bash
# The whole test suite: unit tests (ctest), the fakes' and scripts' own
# tests, integration tests against the real binary, the dashboard in a
# browser, all of it again under ASan+UBSan, and a valgrind leak check of
# one full start-work-stop run.
#
# Every stage runs even when an earlier one failed or could not run (npm
# unreachable, say), except those that need what failed (tests of a build
# that failed).  The run ends with one line per stage -- passed, FAILED, or
# NOT RUN and why -- and fails if any stage did not pass.  SOUK_TEST_SKIP
# lists stages to leave out on purpose (e.g. SOUK_TEST_SKIP="browser
# valgrind"); they are shown as skipped and do not fail the run.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
JOBS=${JOBS:-$(nproc)}
export PYTHONDONTWRITEBYTECODE=1
SKIP=" ${SOUK_TEST_SKIP:-} "
# Integration tests spend most of their time waiting (on timers the tests
# speed up, on fakes, on restarts), so they run several at a time, each
# with its own processes, fakes and free ports: python3-pytest-xdist, 4
# workers by default (SOUK_TEST_WORKERS=1 runs them one by one).
WORKERS=${SOUK_TEST_WORKERS:-4}
par=()
if [ "$WORKERS" -gt 1 ] && "$PY" -c 'import xdist' 2>/dev/null; then
  par=(-n "$WORKERS")
elif [ "$WORKERS" -gt 1 ]; then
  echo "souk: python3-pytest-xdist is not installed: integration tests run one at a time" >&2
fi

names=()
results=()
declare -A status

step() { printf '\n==== %s ====\n' "$*"; }

# record NAME RESULT: RESULT is "passed", "FAILED (...)", "NOT RUN: why"
# or "skipped: why".
record() {
  names+=("$1")
  results+=("$2")
  case "$2" in
    passed) status[$1]=ok ;;
    skipped*) status[$1]=skip ;;
    *) status[$1]=bad ;;
  esac
}

# stage NAME TITLE NEEDS -- COMMAND...: run COMMAND unless a stage it needs
# did not pass, or the stage is skipped on purpose.
stage() {
  local name=$1 title=$2 needs=$3
  shift 4
  step "$title"
  if [[ "$SKIP" == *" $name "* ]]; then
    echo "skipped: SOUK_TEST_SKIP names it"
    record "$name" "skipped: SOUK_TEST_SKIP"
    return
  fi
  local n
  for n in $needs; do
    if [ "${status[$n]:-}" != ok ]; then
      echo "not run: stage '$n' did not pass"
      record "$name" "NOT RUN: needs '$n', which did not pass"
      return
    fi
  done
  "$@"
  local rc=$?
  if [ $rc -eq 0 ]; then record "$name" passed; else record "$name" "FAILED (exit status $rc)"; fi
}

pytest_run() {
  # pytest exits 5 when it collected nothing: that is a failure here too.
  "$PY" -m pytest -q -p no:cacheprovider "$@"
}

build() {
  cmake -S . -B "$1" -DCMAKE_BUILD_TYPE=Debug "${@:2}" >/dev/null && cmake --build "$1" -j"$JOBS"
}

unit() { (cd "$1" && ctest --output-on-failure -j"$JOBS" --timeout "$2"); }

# The dashboard in Debian's Chromium, driven by playwright-core from npm.
# What cannot run is said as such: the stage then counts as not run.
browser() {
  local chromium=${CHROMIUM:-/usr/bin/chromium}
  if [ ! -x "$chromium" ]; then
    scripts/deps.sh test || echo "souk: could not install the test packages" >&2
  fi
  if [ ! -x "$chromium" ]; then
    browser_why="Chromium is not installed and could not be (apt-get install chromium)"
    return 100
  fi
  if ! command -v npm >/dev/null; then
    browser_why="npm is not installed (apt-get install npm)"
    return 100
  fi
  if ! (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error); then
    browser_why="npm ci could not install playwright-core from the npm registry (offline, or a proxy or CA certificate is needed: see the README, Tests)"
    return 100
  fi
  (root=$PWD && cd tests/browser && CHROMIUM="$chromium" SOUK_BIN="$root/build/test/souk" \
    SOUK_TEST_OUTPUT="$root/build/test-output" node --test dashboard.test.mjs) || return $?
  echo "screenshots: build/test-output/browser/"
}

stage build "build (debug)" "" -- build build/test
stage unit "unit tests" "build" -- unit build/test 300
stage fakes "fake servers' own tests" "" -- pytest_run tests/fakes
stage scripts "the scripts' own tests" "" -- pytest_run tests/scripts
stage integration "integration tests" "build" -- \
  env SOUK_BIN="$PWD/build/test/souk" "$PY" -m pytest -q -p no:cacheprovider "${par[@]}" tests/integration

browser_why=""
step "browser test of the dashboard (headless Chromium + playwright-core)"
if [[ "$SKIP" == *" browser "* ]]; then
  record browser "skipped: SOUK_TEST_SKIP"
elif [ "${status[build]:-}" != ok ]; then
  record browser "NOT RUN: needs 'build', which did not pass"
else
  browser
  rc=$?
  if [ $rc -eq 0 ]; then
    record browser passed
  elif [ $rc -eq 100 ]; then
    echo "souk: browser test NOT RUN: $browser_why" >&2
    record browser "NOT RUN: $browser_why"
  else
    record browser "FAILED (exit status $rc)"
  fi
fi

# souk's Parquet writer, read back by hyparquet and DuckDB from npm.
parquet() {
  if ! command -v npm >/dev/null; then
    echo "souk: npm is not installed (apt-get install npm)" >&2
    return 100
  fi
  tests/parquet/run.sh "$PWD/build/test"
}
step "Parquet files read back by hyparquet and DuckDB (tests/parquet)"
if [[ "$SKIP" == *" parquet "* ]]; then
  record parquet "skipped: SOUK_TEST_SKIP"
elif [ "${status[build]:-}" != ok ]; then
  record parquet "NOT RUN: needs 'build', which did not pass"
else
  parquet
  rc=$?
  if [ $rc -eq 0 ]; then
    record parquet passed
  elif [ $rc -eq 100 ]; then
    record parquet "NOT RUN: npm is not installed"
  else
    record parquet "FAILED (exit status $rc; npm ci needs the npm registry: see the README, Tests)"
  fi
fi

# The release binary `./souk.sh run` and `./souk.sh build` make: -O2 finds
# warnings (and so, with -Werror, errors) that a Debug build does not.
stage release-build "build (release, as ./souk.sh run builds it)" "" -- \
  build build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOUK_TESTS=OFF
stage asan-build "build (ASan + UBSan)" "" -- build build/asan -DSOUK_SANITIZE=ON
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
stage asan-unit "unit tests under ASan + UBSan" "asan-build" -- unit build/asan 600
stage asan-integration "integration tests under ASan + UBSan" "asan-build" -- \
  env SOUK_BIN="$PWD/build/asan/souk" SOUK_SANITIZED=1 "$PY" -m pytest -q -p no:cacheprovider \
  "${par[@]}" tests/integration
unset ASAN_OPTIONS UBSAN_OPTIONS
stage valgrind "valgrind leak check (start, work, stop)" "build" -- \
  env SOUK_BIN="$PWD/build/test/souk" SOUK_VALGRIND=1 "$PY" -m pytest -q -p no:cacheprovider \
  tests/integration -k valgrind

step "summary"
bad=0 good=0 skipped=0
for i in "${!names[@]}"; do
  printf '  %-17s %s\n' "${names[$i]}" "${results[$i]}"
  case "${status[${names[$i]}]}" in
    bad) bad=$((bad + 1)) ;;
    ok) good=$((good + 1)) ;;
    *) skipped=$((skipped + 1)) ;;
  esac
done
echo "stages: $good passed, $bad failed, $skipped skipped"
[ $bad -eq 0 ] && exit 0
echo "souk: $bad test stage(s) failed or could not run: see the summary above" >&2
exit 1
