#!/usr/bin/env bash
# Install the Debian 12 packages souk needs, only those missing.
# Usage: scripts/deps.sh [build|test|bench]  (test and bench include build)
#
# Installing postgresql-15 and redis-server would normally create a
# PostgreSQL cluster and start, and enable at boot, a PostgreSQL and a Redis
# server.  souk's tests start throwaway servers of their own, so this script
# leaves no service running or enabled that was not before, and prints what
# it did about it:
#  - no cluster: postgresql-common goes in first, then create_main_cluster
#    is set to false in /etc/postgresql-common/createcluster.conf while
#    postgresql-15 installs, and the file is put back as it was;
#  - nothing starts during the install: a policy-rc.d that refuses every
#    start (exit 101) is in place meanwhile, unless the machine has one;
#  - a service the install newly enabled (systemd unit, or SysV links where
#    systemd does not run) is disabled again, and stopped if it runs.
#
# SOUK_DEPS_ROOT (tests only) stands in for / in the paths above.
set -euo pipefail
what=${1:-build}
R=${SOUK_DEPS_ROOT:-}

build_pkgs=(build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev
  zlib1g-dev libzstd-dev libyaml-dev libssl-dev
  libsqlite3-dev libpq-dev libhiredis-dev libmicrohttpd-dev libdeflate-dev
  tzdata)  # time-zone settings are checked against /usr/share/zoneinfo
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev valgrind tmux postgresql-15 redis-server python3 python3-aiohttp
  python3-pytest python3-jsonschema python3-prometheus-client python3-websockets python3-cryptography
  python3-zstandard python3-pytest-xdist)
bench_pkgs=(python3-discord python3-aiohttp libcjson-dev libjansson-dev heaptrack)
# The dashboard's browser test (tests/browser): Debian's Chromium, driven by
# playwright-core from npm (installed there with `npm ci`, never by the build).
# ca-certificates lets npm reach its registry over HTTPS.
browser_pkgs=(chromium fonts-dejavu-core ca-certificates)
# Services that packages above install, by package.
services=(postgresql redis-server)

pkgs=("${build_pkgs[@]}")
case "$what" in
  test) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}" "${browser_pkgs[@]}") ;;
  bench) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  build) ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${pkgs[@]}"; do
  installed "$p" || missing+=("$p")
done
# Node.js and npm for the browser test; a nodejs package that already
# brings npm (NodeSource's does) is kept as it is.
if [ "$what" = test ] && ! command -v npm >/dev/null; then
  command -v node >/dev/null || missing+=(nodejs)
  missing+=(npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "souk: these Debian packages are missing: ${missing[*]}" >&2
    echo "souk: run this as root, or install sudo, or install them yourself:" >&2
    echo "      apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  sudo="sudo"
fi
echo "souk: installing missing packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  $sudo apt-get install -y -qq --no-install-recommends "$@"
}

changes=()
note() { changes+=("$1"); }

# What is installed as a service, and how it stood before.
is_missing() {
  local m
  for m in "${missing[@]}"; do [ "$m" = "$1" ] && return 0; done
  return 1
}
svc_pkgs=()
is_missing postgresql-15 && svc_pkgs+=(postgresql)
is_missing redis-server && svc_pkgs+=(redis-server)
systemd=false
[ -d "$R/run/systemd/system" ] && systemd=true

declare -A enabled_before active_before
svc_enabled() {
  if $systemd; then
    [ "$($sudo systemctl is-enabled "$1" 2>/dev/null || true)" = enabled ]
  else
    compgen -G "$R/etc/rc[2-5].d/S[0-9][0-9]$1" >/dev/null
  fi
}
svc_active() { $systemd && $sudo systemctl is-active --quiet "$1" 2>/dev/null; }
for s in "${services[@]}"; do
  enabled_before[$s]=no
  active_before[$s]=no
  svc_enabled "$s" && enabled_before[$s]=yes
  svc_active "$s" && active_before[$s]=yes
done

policy="$R/usr/sbin/policy-rc.d"
our_policy=false
made_policy=false
cc="$R/etc/postgresql-common/createcluster.conf"
cc_saved=""
cleanup() {
  if $our_policy; then
    $sudo rm -f "$policy"
    our_policy=false
  fi
  if [ -n "$cc_saved" ]; then
    $sudo cp "$cc_saved" "$cc"
    rm -f "$cc_saved"
    cc_saved=""
  fi
}
trap cleanup EXIT

if [ ${#svc_pkgs[@]} -gt 0 ] && [ ! -e "$policy" ]; then
  # invoke-rc.d and deb-systemd-invoke ask it before starting anything.
  printf '#!/bin/sh\n# souk scripts/deps.sh: no service starts while it installs.\nexit 101\n' |
    $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  our_policy=true
  made_policy=true
fi

$sudo apt-get update -qq

if is_missing postgresql-15; then
  # The cluster is made by postgresql-15's own install, so the setting must
  # be in place before it: postgresql-common (which owns the file) first.
  if ! installed postgresql-common; then
    apt_install postgresql-common
  fi
  if [ -f "$cc" ]; then
    cc_saved=$(mktemp)
    cp "$cc" "$cc_saved"
    if grep -Eq '^[[:space:]]*#?[[:space:]]*create_main_cluster[[:space:]]*=' "$cc"; then
      $sudo sed -i -E 's/^[[:space:]]*#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' "$cc"
    else
      echo "create_main_cluster = false" | $sudo tee -a "$cc" >/dev/null
    fi
    note "no PostgreSQL cluster was created (create_main_cluster = false during the install; $cc is as it was)"
  fi
fi

apt_install "${missing[@]}"
cleanup
$made_policy && note "no service was started during the install (a temporary $policy refused them; it is removed)"

for s in "${services[@]}"; do
  if [ "${enabled_before[$s]}" = no ] && svc_enabled "$s"; then
    if $systemd; then
      $sudo systemctl disable --quiet "$s" 2>/dev/null || true
    else
      $sudo update-rc.d "$s" disable >/dev/null 2>&1 || true
    fi
    note "the $s service that the install enabled is disabled again"
  fi
  if [ "${active_before[$s]}" = no ] && svc_active "$s"; then
    $sudo systemctl stop "$s" 2>/dev/null || true
    note "the $s service that the install started is stopped"
  fi
done

if [ ${#changes[@]} -gt 0 ]; then
  echo "souk: installed as test dependencies only; what this script changed about services:" >&2
  for c in "${changes[@]}"; do echo "souk:   - $c" >&2; done
fi
