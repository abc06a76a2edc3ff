"""deploy/: the systemd template unit runs the shard range its instance
names, and the Grafana dashboard only asks for metrics souk exports."""
import os
import re
import shlex
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(ROOT, "deploy", "souk@.service")


def unit_service(path):
    """The [Service] section as (key, value) pairs, continuation lines
    joined, in order."""
    out, section, cont = [], None, ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if cont:
                line, cont = cont + line.lstrip(), ""
            if line.endswith("\\"):
                cont = line[:-1] + " "
                continue
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section == "Service":
                k, v = line.split("=", 1)
                out.append((k, v))
    return out


def specifiers(v, instance):
    """systemd's expansion of the specifiers the unit uses: %i, %%."""
    return re.sub(r"%(.)", lambda m: {"i": instance, "%": "%"}[m.group(1)], v)


def run_instance(instance, tmp_path, extra_env=None):
    """Run the unit's ExecStart as systemd would for souk@<instance>, with
    souk replaced by a script that prints its environment."""
    svc = unit_service(UNIT)
    env = {"PATH": "/usr/bin:/bin"}
    for k, v in svc:
        if k == "Environment":
            name, val = specifiers(v, instance).split("=", 1)
            env[name] = val
    env.update(extra_env or {})
    execs = [v for k, v in svc if k == "ExecStart"]
    assert len(execs) == 1
    # In a command line systemd also turns "$$" into "$".
    argv = shlex.split(specifiers(execs[0], instance).replace("$$", "$"))
    stub = tmp_path / "souk"
    stub.write_text("#!/bin/sh\necho \"argv=$*\"\nenv\n")
    stub.chmod(0o755)
    argv = [a.replace("/usr/local/bin/souk", str(stub)) for a in argv]
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=10)
    got = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    return r.returncode, got, r.stderr


def test_template_unit_runs_the_instance_range(tmp_path):
    rc, env, err = run_instance("0-3", tmp_path)
    assert rc == 0, err
    assert env["SOUK_DISCORD_SHARDS_FIRST"] == "0" and env["SOUK_DISCORD_SHARDS_LAST"] == "3"
    assert env["SOUK_HTTP_PORT"] == "8400"
    assert env["SOUK_CORE_DATA_DIR"] == "/var/lib/souk/0-3"
    assert env["argv"] == "run -c /etc/souk/souk.yaml"

    rc, env, err = run_instance("12-15", tmp_path)
    assert rc == 0, err
    assert (env["SOUK_DISCORD_SHARDS_FIRST"], env["SOUK_DISCORD_SHARDS_LAST"]) == ("12", "15")
    assert env["SOUK_HTTP_PORT"] == "8412"

    # /etc/souk/<range>.env may set the port.
    rc, env, err = run_instance("4-7", tmp_path, {"SOUK_HTTP_PORT": "9100"})
    assert rc == 0 and env["SOUK_HTTP_PORT"] == "9100", err

    # One shard alone.
    rc, env, err = run_instance("5", tmp_path)
    assert rc == 0, err
    assert (env["SOUK_DISCORD_SHARDS_FIRST"], env["SOUK_DISCORD_SHARDS_LAST"]) == ("5", "5")


@pytest.mark.parametrize("bad", ["all", "1-x", "-2", "2-", "1-2-3", ""])
def test_template_unit_refuses_a_name_that_is_not_a_range(tmp_path, bad):
    rc, env, err = run_instance(bad, tmp_path)
    # 2 is in RestartPreventExitStatus: not restarted in a loop.
    assert rc == 2 and "FIRST-LAST" in err and "argv" not in env


def test_units_pass_systemd_analyze(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    for name in ("souk@.service", "souk.target"):
        shutil.copy(os.path.join(ROOT, "deploy", name), tmp_path / name)
    for unit in ("souk@0-3.service", "souk.target"):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / unit)],
                           capture_output=True, text=True, timeout=60)
        # verify exits 0 on most problems, which it prints: any line about
        # our files is one.
        ours = [l for l in (r.stdout + r.stderr).splitlines() if str(tmp_path) in l]
        assert r.returncode == 0 and not ours, r.stdout + r.stderr
