#!/usr/bin/env bash
# Install the Debian 12 packages souk needs, only those missing.
# Usage: scripts/deps.sh [build|test|bench]  (test and bench include build)
set -euo pipefail
what=${1:-build}

build_pkgs=(build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev
  zlib1g-dev libzstd-dev libyaml-dev libssl-dev
  libsqlite3-dev libpq-dev libhiredis-dev libmicrohttpd-dev libdeflate-dev
  tzdata)  # time-zone settings are checked against /usr/share/zoneinfo
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev valgrind tmux postgresql-15 redis-server python3 python3-aiohttp
  python3-pytest python3-jsonschema python3-prometheus-client python3-websockets python3-cryptography
  python3-zstandard)
bench_pkgs=(python3-discord python3-aiohttp libcjson-dev libjansson-dev)
# The dashboard's browser test (tests/browser): Debian's Chromium, driven by
# playwright-core from npm (installed there with `npm ci`, never by the build).
browser_pkgs=(chromium fonts-dejavu-core)

pkgs=("${build_pkgs[@]}")
case "$what" in
  test) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}" "${browser_pkgs[@]}") ;;
  bench) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  build) ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js and npm for the browser test; a nodejs package that already
# brings npm (NodeSource's does) is kept as it is.
if [ "$what" = test ] && ! command -v npm >/dev/null; then
  command -v node >/dev/null || missing+=(nodejs)
  missing+=(npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "souk: installing missing packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "souk: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
