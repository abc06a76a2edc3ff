"""deploy/: the systemd template unit runs the shard range its instance
names, and the Grafana dashboard only asks for metrics souk exports."""
import json
import os
import re
import shlex
import shutil
import subprocess

import pytest

from modtools import answer, http_port, metrics
from redisproc import RedisServer, available as redis_available
from soukproc import sanitized

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(ROOT, "deploy", "souk@.service")
WAIT = 60 if sanitized() else 20


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


# -- the Grafana dashboard ---------------------------------------------------

DASHBOARD = os.path.join(ROOT, "deploy", "grafana-souk.json")

# PromQL's own words; any other name in a query must be a metric.
PROMQL = {"sum", "max", "min", "avg", "count", "rate", "increase", "irate", "histogram_quantile",
          "by", "without", "on", "ignoring", "and", "or", "unless", "bool", "offset"}


def dashboard_queries():
    with open(DASHBOARD) as f:
        d = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                out.append((p["title"], t["expr"]))
    walk(d["panels"])
    return out


def metric_names(expr):
    """The metric names an expression reads: what is left once label
    matchers, ranges, grouping clauses, strings, numbers and PromQL's words
    are taken out."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", e)
    e = re.sub(r"\b\d+(\.\d+)?\b", "", e)
    words = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", e)
    return {w for w in words if w not in PROMQL}


def exported(text):
    """Every name /metrics serves a sample under (histograms: _bucket,
    _sum, _count) or declares with # TYPE."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()[:4]
            names.add(name)
            if kind == "histogram":
                names.update({name + "_bucket", name + "_sum", name + "_count"})
        elif line and not line.startswith("#"):
            names.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0))
    return names


def test_metric_names_reads_the_queries():
    assert metric_names('sum by (le) (rate(souk_x_bucket{instance=~"$i"}[5m])) / '
                        'max(process_y{a="b"}) == 1') == {"souk_x_bucket", "process_y"}
    assert metric_names("histogram_quantile(0.95, sum(rate(souk_z[1m])))") == {"souk_z"}


def test_dashboard_covers_what_operators_need():
    exprs = " ".join(e for _, e in dashboard_queries())
    for name in ("souk_gateway_events_received_total", "souk_command_latency_seconds_bucket",
                 "souk_rest_queue_length", "souk_rest_ratelimited_total", "souk_cache_hits_total",
                 "souk_cluster_leader", "process_resident_memory_bytes", "souk_task_failures_total",
                 "souk_skyblock_refresh_delay_seconds", "souk_gateway_handoff_resumed_total"):
        assert name in exprs, name


@pytest.mark.skipif(not redis_available(), reason="redis-server not installed")
def test_every_metric_the_dashboard_uses_is_served(fake_discord, souk_factory, tmp_path):
    # With Redis, as a cluster runs: the lease, the shared REST limit and
    # the hand-off are on and export their figures.
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        souk = souk_factory(fake_discord, env={"SOUK_CACHE_URL": redis.url})
        souk.wait_log("owner-only commands answer", timeout=WAIT)
        # A command and a scrape, so the histograms have their series.
        r = fake_discord.interaction("ping")
        assert answer(fake_discord, r["id"], r["token"]).startswith("pong")
        port = http_port(souk)
        metrics(port)
        served = exported(metrics(port))
    finally:
        redis.stop()
    missing = {}
    for title, expr in dashboard_queries():
        for name in metric_names(expr) - served:
            missing.setdefault(name, []).append(title)
    assert not missing, missing
