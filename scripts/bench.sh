#!/usr/bin/env bash
# The benchmarks (`make bench`): build the release binary, then run every
# benchmark in bench/.  Each prints its figures; bench/out/ keeps them as
# JSON (git-ignored).  See bench/README.md.
#   scripts/bench.sh [extra arguments for bench/gateway_bench.py]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
JOBS=${JOBS:-$(nproc)}
BUILD=build/release
export PYTHONDONTWRITEBYTECODE=1

step() { printf '\n==== %s ====\n' "$*"; }

step "build (release: RelWithDebInfo)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOUK_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$JOBS"

status=0

# Micro-benchmarks built by CMake (bench/CMakeLists.txt), when present.
bench_json=""
for cand in "$BUILD/bench/bench_json" "$BUILD/bench_json"; do
  if [ -x "$cand" ]; then bench_json=$cand; break; fi
done
if [ -n "$bench_json" ]; then
  step "JSON benchmark ($bench_json)"
  "$bench_json" || status=$?
else
  step "JSON benchmark: no bench_json binary in $BUILD, skipped"
fi

if [ -x "$BUILD/bench/dashboard_bench" ]; then
  step "dashboard benchmark (10,000 players on SQLite)"
  "$BUILD/bench/dashboard_bench" || status=$?
fi

step "gateway benchmark (souk, then discord.py against the fake Discord)"
SOUK_BIN="${SOUK_BIN:-$PWD/$BUILD/souk}" "$PY" bench/gateway_bench.py "$@" || status=$?

exit "$status"
