"""scripts/deps.sh leaves no service running or enabled that was not before.

apt-get, dpkg-query, systemctl and update-rc.d are replaced by small stubs
that behave like Debian's packages would: postgresql-15's install creates a
cluster unless createcluster.conf says create_main_cluster = false, and the
servers' installs enable their services and start them unless policy-rc.d
refuses (exit 101).  SOUK_DEPS_ROOT points the script's paths into a
temporary directory standing in for /.  Both kinds of machine are tried:
with systemd running, and without (SysV links; a container or chroot)."""
import os
import pathlib
import stat
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPS = ROOT / "scripts" / "deps.sh"

STUBS = {
    "id": 'echo 0\n',
    "dpkg-query": r'''
pkg="${@: -1}"
grep -qx "$pkg" "$S/installed" && printf 'install ok installed' || exit 1
''',
    "systemctl": r'''
case "$1" in
  is-enabled) grep -qx "$2" "$S/enabled" && echo enabled || { echo disabled; exit 1; } ;;
  is-active) grep -qx "${@: -1}" "$S/running" ;;
  disable) shift; [ "$1" = --quiet ] && shift; sed -i "/^$1\$/d" "$S/enabled"; echo "disable $1" >> "$S/log" ;;
  stop) sed -i "/^$2\$/d" "$S/running"; echo "stop $2" >> "$S/log" ;;
esac
''',
    "update-rc.d": r'''
for f in "$R"/etc/rc[2-5].d/S01"$1"; do [ -e "$f" ] && mv "$f" "${f/S01/K01}"; done
echo "update-rc.d $*" >> "$S/log"
''',
    "apt-get": r'''
echo "apt-get $*" >> "$S/log"
[ "$1" = update ] && exit 0
policy_ok() { [ ! -x "$R/usr/sbin/policy-rc.d" ] || "$R/usr/sbin/policy-rc.d" x start; }
service() {  # what a server package's maintainer scripts do
  if [ -d "$R/run/systemd/system" ]; then echo "$1" >> "$S/enabled"
  else mkdir -p "$R/etc/rc2.d"; touch "$R/etc/rc2.d/S01$1"; fi
  if policy_ok; then echo "$1" >> "$S/running"; fi
}
for p in "$@"; do
  case "$p" in -*) continue ;; esac
  echo "$p" >> "$S/installed"
  case "$p" in
    postgresql-common)
      mkdir -p "$R/etc/postgresql-common"
      printf '# defaults\nssl = on\n#create_main_cluster = true\n' > "$R/etc/postgresql-common/createcluster.conf"
      service postgresql ;;
    postgresql-15)
      grep -q '^create_main_cluster = false' "$R/etc/postgresql-common/createcluster.conf" ||
        mkdir -p "$R/var/lib/postgresql/15/main" ;;
    redis-server) service redis-server ;;
  esac
done
exit 0
''',
}


def make_machine(tmp_path, systemd, installed=(), policy=None):
    r = tmp_path / "root"
    s = tmp_path / "state"
    bin_ = tmp_path / "bin"
    for d in (r, s, bin_):
        d.mkdir()
    (r / "usr" / "sbin").mkdir(parents=True)
    if systemd:
        (r / "run" / "systemd" / "system").mkdir(parents=True)
    for f in ("installed", "enabled", "running", "log"):
        (s / f).write_text("")
    (s / "installed").write_text("".join(p + "\n" for p in installed))
    for name, body in STUBS.items():
        f = bin_ / name
        f.write_text("#!/bin/bash\n" + body)
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    if policy is not None:
        (r / "usr" / "sbin" / "policy-rc.d").write_text(policy)
        (r / "usr" / "sbin" / "policy-rc.d").chmod(0o755)
    env = dict(os.environ, SOUK_DEPS_ROOT=str(r), S=str(s), R=str(r),
               PATH=f"{bin_}:{os.environ['PATH']}")
    return r, s, env


def run_deps(env, what="bench"):
    return subprocess.run(["bash", str(DEPS), what], env=env, capture_output=True, text=True,
                          timeout=60)


# Everything but the servers is "installed" already, so the install is
# only what matters here.
def others():
    import re
    text = DEPS.read_text()
    names = set()
    for var in ("build_pkgs", "test_pkgs", "bench_pkgs"):
        m = re.search(var + r"=\(([^)]*)\)", text)
        names.update(m.group(1).split())
    return sorted(names - {"postgresql-15", "redis-server"})


@pytest.mark.parametrize("systemd", [True, False], ids=["systemd", "no-systemd"])
def test_installing_the_servers_leaves_no_service_and_no_cluster(tmp_path, systemd):
    r, s, env = make_machine(tmp_path, systemd, installed=others())
    p = run_deps(env)
    assert p.returncode == 0, p.stdout + p.stderr
    installed = (s / "installed").read_text().split()
    assert "postgresql-15" in installed and "redis-server" in installed
    # postgresql-common went in before postgresql-15, with the cluster off.
    assert installed.index("postgresql-common") < installed.index("postgresql-15")
    assert not (r / "var" / "lib" / "postgresql" / "15" / "main").exists()
    # The file is as the package wrote it once the install is over.
    assert (r / "etc" / "postgresql-common" / "createcluster.conf").read_text() == \
        "# defaults\nssl = on\n#create_main_cluster = true\n"
    # Nothing started, nothing left enabled, and the policy file is gone.
    assert (s / "running").read_text() == ""
    assert (s / "enabled").read_text().split() == []
    assert not list(r.glob("etc/rc[2-5].d/S*"))
    assert not (r / "usr" / "sbin" / "policy-rc.d").exists()
    out = p.stderr
    assert "no PostgreSQL cluster was created" in out
    assert "no service was started during the install" in out
    for svc in ("postgresql", "redis-server"):
        assert f"the {svc} service that the install enabled is disabled again" in out


def test_a_service_enabled_before_is_left_alone(tmp_path):
    r, s, env = make_machine(tmp_path, True, installed=others() + ["postgresql-common"])
    (s / "enabled").write_text("postgresql\n")
    (s / "running").write_text("postgresql\n")
    (r / "etc" / "postgresql-common").mkdir(parents=True)
    cc = r / "etc" / "postgresql-common" / "createcluster.conf"
    cc.write_text("create_main_cluster = true\nssl = off\n")
    p = run_deps(env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (s / "enabled").read_text().split() == ["postgresql"]
    assert (s / "running").read_text().split() == ["postgresql"]
    assert "disable postgresql" not in (s / "log").read_text()
    assert cc.read_text() == "create_main_cluster = true\nssl = off\n"
    assert not (r / "var" / "lib" / "postgresql" / "15" / "main").exists()
    # redis-server was new: disabled again.
    assert "the redis-server service that the install enabled is disabled again" in p.stderr


def test_the_machines_own_policy_file_is_kept(tmp_path):
    mine = "#!/bin/sh\nexit 101\n# the admin's\n"
    r, s, env = make_machine(tmp_path, False, installed=others(), policy=mine)
    p = run_deps(env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (r / "usr" / "sbin" / "policy-rc.d").read_text() == mine
    assert "a temporary" not in p.stderr


def test_nothing_missing_installs_nothing(tmp_path):
    r, s, env = make_machine(tmp_path, True, installed=others() + ["postgresql-15", "redis-server"])
    p = run_deps(env)
    assert p.returncode == 0 and p.stderr == ""
    assert (s / "log").read_text() == ""
