#!/usr/bin/env bash
# The README's commands, on a machine that has nothing but a clone of this
# repository (a minimal Debian 12: no make, compiler, cmake or sudo).
#
#   ./souk.sh run     install what is missing, build, start `souk console`
#   ./souk.sh test    install what is missing, run the whole test suite
#   ./souk.sh build   the release binary, build/release/souk
#   ./souk.sh bench   the benchmarks (bench/README.md)
#   ./souk.sh fuzz    the libFuzzer targets, built with clang into build/fuzz
#
# Debian packages are installed by scripts/deps.sh, only the missing ones,
# as root or through sudo.  The Makefile's targets call this script.
set -euo pipefail
cd "$(dirname "$0")"
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

usage() {
  sed -n '5,9p' "$0" | sed 's/^# //'
}

build_release() {
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOUK_TESTS=OFF >/dev/null
  cmake --build build/release -j"$JOBS"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  run)
    scripts/deps.sh build
    build_release
    exec build/release/souk console "$@"
    ;;
  build)
    scripts/deps.sh build
    build_release
    echo "souk: built build/release/souk"
    ;;
  test)
    scripts/deps.sh test
    exec scripts/test.sh "$@"
    ;;
  bench)
    scripts/deps.sh bench
    exec scripts/bench.sh "$@"
    ;;
  fuzz)
    scripts/deps.sh test
    cmake -S . -B build/fuzz -DSOUK_FUZZ=ON -DSOUK_TESTS=OFF -DSOUK_BENCH=OFF \
      -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build/fuzz -j"$JOBS" --target fuzz
    echo "fuzz targets in build/fuzz/tests/fuzz: run e.g." \
      "build/fuzz/tests/fuzz/fuzz_json tests/fuzz/corpus/json"
    ;;
  -h | --help | help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
