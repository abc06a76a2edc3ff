#!/usr/bin/env bash
# Prove the README's two commands on a minimal Debian 12: debootstrap a
# minbase bookworm (no make, compiler, cmake, sudo or CA certificates),
# copy this checkout into it, and run `./souk.sh test` and then
# `./souk.sh run` (with a few console lines on its input) inside it as root
# through chroot.  Not part of the test suite: it downloads a few hundred MB
# of packages and takes a while.
#
#   scripts/minbase-check.sh [DIR]     (default /var/tmp/souk-minbase)
#
# MIRROR overrides the Debian mirror; KEEP=1 keeps DIR afterwards (a second
# run then reuses it, packages and all); SOUK_TEST_SKIP is passed on.
# Needs root and debootstrap (apt-get install debootstrap).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/var/tmp/souk-minbase}
mirror=${MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" -eq 0 ] || { echo "minbase-check: run as root" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "minbase-check: apt-get install debootstrap" >&2; exit 2; }

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  if [ "${KEEP:-}" != 1 ]; then rm -rf "$dir"; fi
}
trap cleanup EXIT

if [ ! -x "$dir/bin/bash" ]; then
  echo "== debootstrap --variant=minbase bookworm $dir"
  debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.debootstrap.log" 2>&1 ||
    { tail -20 "$dir.debootstrap.log"; exit 1; }
fi
# /dev with what is mounted under it (/dev/pts, /dev/shm for Chromium).
for m in proc sys dev; do
  mkdir -p "$dir/$m"
  case $m in
    proc) mount -t proc proc "$dir/proc" ;;
    sys) mount -t sysfs sys "$dir/sys" ;;
    dev) mount --rbind /dev "$dir/dev" && mount --make-rslave "$dir/dev" ;;
  esac
  mounted+=("$dir/$m")
done
cp /etc/resolv.conf "$dir/etc/resolv.conf"

echo "== what the minimal system lacks"
for t in make cc gcc cmake sudo git curl; do
  if chroot "$dir" /bin/bash -c "command -v $t" >/dev/null 2>&1; then echo "  $t: present"; else echo "  $t: missing"; fi
done

echo "== a clone of this checkout in $dir/root/souk"
rm -rf "$dir/root/souk"
git -C "$here" ls-files -z | (cd "$here" && tar --null -T - -cf -) |
  (mkdir -p "$dir/root/souk" && tar -C "$dir/root/souk" -xf -)

# An extra CA certificate this machine needs to reach the npm registry (a
# proxy that inspects TLS) goes along the way the README says: by
# NODE_EXTRA_CA_CERTS.
extra=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  cp "$NODE_EXTRA_CA_CERTS" "$dir/root/extra-ca.pem"
  extra+=(NODE_EXTRA_CA_CERTS=/root/extra-ca.pem)
  echo "== NODE_EXTRA_CA_CERTS is set here: passed on as /root/extra-ca.pem"
fi
for v in HTTPS_PROXY HTTP_PROXY NO_PROXY https_proxy http_proxy no_proxy; do
  if [ -n "${!v:-}" ]; then extra+=("$v=${!v}"); fi
done

in_chroot() {
  chroot "$dir" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TERM=dumb LANG=C.UTF-8 SOUK_TEST_SKIP="${SOUK_TEST_SKIP:-}" "${extra[@]}" /bin/bash -c "$1"
}

status=0
echo "== ./souk.sh test"
start=$(date +%s)
in_chroot "cd /root/souk && ./souk.sh test" || status=$?
echo "== ./souk.sh test: exit status $status after $(( $(date +%s) - start )) s"

echo "== ./souk.sh run (console; /ping, /help, end of input)"
run_status=0
in_chroot "cd /root/souk && printf '/ping\n/help\n' | ./souk.sh run" >"$dir.run.log" 2>&1 || run_status=$?
tail -20 "$dir.run.log"
if ! grep -q pong "$dir.run.log" && [ "$run_status" -eq 0 ]; then run_status=1; fi
echo "== ./souk.sh run: exit status $run_status"

echo "== services left running or enabled inside"
in_chroot "ls /etc/rc[2-5].d/ 2>/dev/null | grep -E '^S.*(postgresql|redis)' || echo '  no start links for postgresql or redis-server'"
in_chroot "ls /var/lib/postgresql/15/main >/dev/null 2>&1 && echo '  a PostgreSQL cluster exists' || echo '  no PostgreSQL cluster'"
procs=""
for p in /proc/[0-9]*; do
  if [ "$(readlink "$p/root" 2>/dev/null)" = "$dir" ]; then
    procs+="$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"$'\n'
  fi
done
if [ -n "$procs" ]; then echo "  still running inside:"; echo "$procs" | sed 's/^/    /'; status=1
else echo "  no process left running inside"; fi

[ $status -eq 0 ] && [ "$run_status" -eq 0 ] && { echo "minbase-check: both commands worked"; exit 0; }
echo "minbase-check: FAILED (test: $status, run: $run_status)"
exit 1
