#!/usr/bin/python3
"""Scale-out memory benchmark: N souk processes, one shard each.

usage: /usr/bin/python3 bench/cluster_bench.py [--processes 10]
        [--guilds-per-process 2500] [--channels 10] [--members 100]
        [--member-cache off,on] [--store postgres|sqlite] [--no-redis]
        [--souk-bin PATH] [--out bench/out/cluster.json] [--strict]

One fake Discord gateway (tests/fakes/fake_discord.py) serves N shards.
souk process k runs shard k of N (discord.shards.count N, first = last =
k); every process shares one throwaway PostgreSQL (or its own SQLite file
with --store sqlite) and one throwaway Redis (cache.url), as a scaled-out
deployment does.  When every shard is READY, the fake sends shard k its
guilds, each with an id that Discord's formula (guild_id >> 22) %
num_shards puts on shard k, so each process receives exactly the guilds
Discord would give it.  A "!ping" in one of each shard's guilds, answered
by that shard's process, shows that its guilds were processed.  The
benchmark then prints, per process, RSS, souk's own memory (RSS minus the
library floor, rss_floor_4_souk_libs, run in the same run) and its malloc
heap (souk_process_heap_bytes from its /metrics), once per member-cache
setting, and checks the target of issue 15: at most 4 MB of souk's own
memory per process of 2,500 guilds.

It is also the engine other benchmarks and tests of several processes can
reuse: Cluster(...) starts the servers, the fake and the processes, and
stop() ends them all (see bench/README.md, "Scale-out benchmark").
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_bench as gb  # noqa: E402  (the fake, processes, /proc readers)

PG_BIN = os.environ.get("SOUK_PG_BIN") or "/usr/lib/postgresql/15/bin"
REDIS_SERVER = os.environ.get("SOUK_TEST_REDIS_SERVER") or "/usr/bin/redis-server"
TARGET_OWN_MB_PER_PROCESS = 4.0  # issue 15, for 2,500 guilds
TARGET_PER_GUILD_BYTES = 1024


# ------------------------------------------------------------------ servers
class Postgres:
    """A throwaway PostgreSQL on a free loopback port, trust auth, run as
    the `postgres` user when we are root (initdb refuses root)."""

    def __init__(self, workdir):
        if not os.access(os.path.join(PG_BIN, "initdb"), os.X_OK):
            raise gb.BenchError("no PostgreSQL in %s (install postgresql-15 or set SOUK_PG_BIN)"
                                % PG_BIN)
        self.dir = tempfile.mkdtemp(prefix="souk-bench-pg-")
        self.port = gb.free_port()
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.log = os.path.join(workdir, "postgres.log")
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.dir + "/data", "-A", "trust",
                   "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])
        self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.dir + "/data", "-w", "-t", "30",
                   "-l", self.dir + "/server.log", "-o",
                   "-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s "
                   "-c fsync=off -c synchronous_commit=off -c max_connections=200"
                   % (self.port, self.dir), "start"])
        self.started = True

    def _run(self, cmd):
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        with open(self.log, "ab") as f:
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=120)
        if r.returncode != 0:
            raise gb.BenchError("%s failed; see %s" % (os.path.basename(cmd[-1]), self.log))

    def create_db(self, name):
        self._run([os.path.join(PG_BIN, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                   "postgres", "-d", "postgres", "-q", "-c", "CREATE DATABASE %s" % name])
        return "postgres://postgres@127.0.0.1:%d/%s" % (self.port, name)

    def stop(self):
        try:
            self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.dir + "/data", "-m",
                       "immediate", "-w", "-t", "30", "stop"])
        except (gb.BenchError, subprocess.SubprocessError, OSError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    """A throwaway redis-server on a free loopback port, no persistence."""

    def __init__(self, workdir):
        if not os.access(REDIS_SERVER, os.X_OK):
            raise gb.BenchError("no redis-server at %s (install redis-server)" % REDIS_SERVER)
        self.port = gb.free_port()
        self.proc = gb.Proc("redis", [REDIS_SERVER, "--port", str(self.port), "--bind",
                                      "127.0.0.1", "--save", "", "--appendonly", "no",
                                      "--daemonize", "no"],
                            os.path.join(workdir, "redis.log"), env=gb.clean_env(), cwd=workdir)
        deadline = time.monotonic() + 15
        while "Ready to accept connections" not in self.proc.output():
            self.proc.check()
            if time.monotonic() > deadline:
                raise gb.BenchError("redis-server did not start:\n" + self.proc.tail())
            time.sleep(0.05)
        self.url = "redis://127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.kill()


# ------------------------------------------------------------------ the cluster
class Cluster:
    """One fake gateway of `processes` shards and one souk process per
    shard, sharing `store_url` (None: each its own SQLite) and `cache_url`
    (None: each its own memory cache).  `config` is extra YAML put in every
    process's config, `env` extra environment."""

    def __init__(self, args, workdir, processes, store_url=None, cache_url=None, config="",
                 env=None):
        self.args, self.workdir, self.n = args, workdir, processes
        self.procs = []
        self.fake = gb.Fake(workdir, args, extra=["--shards", str(processes),
                                                  "--max-concurrency", str(processes)])
        lock = os.path.join(workdir, "identify.lock")
        for k in range(processes):
            pdir = os.path.join(workdir, "souk-%d" % k)
            os.makedirs(pdir, exist_ok=True)
            data = os.path.join(pdir, "data")
            os.makedirs(data, exist_ok=True)
            port = gb.free_port()
            cfg = os.path.join(pdir, "souk.yaml")
            with open(cfg, "w") as f:
                f.write("core:\n  data_dir: %s\n  log:\n    level: warn\n" % json.dumps(data))
                f.write("discord:\n  api_base: %s\n" % json.dumps(self.fake.api_base))
                f.write("  shards:\n    count: %d\n    first: %d\n    last: %d\n"
                        "    identify_lock: %s\n" % (processes, k, k, json.dumps(lock)))
                if getattr(args, "member_cache", False):
                    f.write("  cache:\n    members: true\n")
                f.write("http:\n  port: %d\n" % port)
                if store_url:
                    f.write("store:\n  url: %s\n" % json.dumps(store_url))
                if cache_url:
                    f.write("cache:\n  url: %s\n  key_prefix: %s\n"
                            % (json.dumps(cache_url), json.dumps("souk-bench:")))
                f.write(config)
            e = gb.clean_env()
            e["SOUK_DISCORD_TOKEN"] = self.fake.token
            e.update(env or {})
            p = gb.Proc("souk-%d" % k, [gb.souk_bin(args), "run", "-c", cfg],
                        os.path.join(pdir, "souk.log"), env=e, cwd=pdir)
            p.http_port = port
            p.shard = k
            self.procs.append(p)

    def wait_ready(self, timeout):
        """Until the fake has sent READY to every shard."""
        deadline = time.monotonic() + timeout
        while True:
            for p in self.procs:
                p.check()
            self.fake.proc.check()
            try:
                self.fake.call("GET", "/_fake/wait?for=ready&count=%d&timeout=1" % self.n,
                               timeout=10)
                return
            except gb.BenchError as e:
                if "408" not in str(e):
                    raise
            if time.monotonic() > deadline:
                raise gb.BenchError("not every shard READY within %ds" % timeout)

    def send_guilds(self, guilds, channels, members, seed, timeout):
        """Give each shard `guilds` guilds by Discord's shard formula, all
        shards at once; then a ping in each shard shows they were processed.
        Returns each shard's channel that was pinged."""
        bids = []
        for p in self.procs:
            b = self.fake.post("/_fake/gateway/blast", {
                "shard": p.shard, "count": 0, "guilds": guilds, "channels_per_guild": channels,
                "members_per_guild": members, "seed": seed + p.shard, "shard_formula": True})
            bids.append(b["id"])
        chans = []
        deadline = time.monotonic() + timeout
        for p, bid in zip(self.procs, bids):
            while True:
                info = self.fake.get("/_fake/gateway/blast/%s" % bid)
                if info.get("error"):
                    raise gb.BenchError("blast for shard %d failed: %s" % (p.shard, info["error"]))
                if info["done"]:
                    break
                for q in self.procs:
                    q.check()
                self.fake.proc.check()
                if time.monotonic() > deadline:
                    raise gb.BenchError("shard %d: %d of %d guilds sent after %ds"
                                        % (p.shard, info["guilds_sent"], guilds, timeout))
                time.sleep(0.2)
            chans.append(info["first_channel_id"])
        for p, cid in zip(self.procs, chans):
            self.fake.ping_pong(p, cid, timeout)
        return chans

    def memory(self, floor_kb):
        """Per process: RSS, own memory and heap, in kB and bytes."""
        out = []
        for p in self.procs:
            rss = gb.proc_status_kb(p.pid, "VmRSS")
            out.append({"shard": p.shard, "pid": p.pid, "rss_kb": rss,
                        "own_kb": (rss - floor_kb) if rss is not None and floor_kb else None,
                        "heap_bytes": gb.souk_heap_bytes(p),
                        "threads": gb.proc_threads(p.pid)})
        return out

    def stop(self):
        for p in self.procs:
            try:
                p.kill()
            except Exception:  # noqa: BLE001  (every process must still be stopped)
                pass
        self.fake.proc.kill()


# ------------------------------------------------------------------ the benchmark
def run_mode(args, member_cache, pg, redis, floor_kb):
    label = "member cache %s" % ("on" if member_cache else "off")
    workdir = os.path.join(gb.OUT_DIR, "cluster-%s" % ("members" if member_cache else "default"))
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    args.member_cache = member_cache
    store = pg.create_db("souk_bench_%s" % ("members" if member_cache else "default")) \
        if pg else None
    cluster = None
    res = {"member_cache": member_cache, "ok": False, "logs": os.path.relpath(workdir, gb.ROOT)}
    try:
        gb.log("%s: starting %d processes" % (label, args.processes))
        cluster = Cluster(args, workdir, args.processes, store_url=store,
                          cache_url=redis.url if redis else None)
        t0 = time.monotonic()
        cluster.wait_ready(args.ready_timeout)
        res["ready_s"] = round(time.monotonic() - t0, 2)
        gb.log("%s: every shard READY after %.1fs; sending %d x %d guilds"
               % (label, res["ready_s"], args.processes, args.guilds_per_process))
        t0 = time.monotonic()
        cluster.send_guilds(args.guilds_per_process, args.channels, args.members, args.seed,
                            args.guilds_timeout)
        res["guilds_s"] = round(time.monotonic() - t0, 2)
        time.sleep(args.settle)
        res["processes"] = cluster.memory(floor_kb)
        st = cluster.fake.state()
        res["violations"] = st["violations"]
        res["ok"] = all(r["rss_kb"] for r in res["processes"])
        gb.log("%s: done in %.1fs" % (label, res["guilds_s"]))
    except gb.BenchError as e:
        res["error"] = str(e)
        gb.log("%s: FAILED: %s" % (label, e))
    finally:
        if cluster:
            cluster.stop()
    return res


def report(results, args, floor_kb):
    mb = lambda kb: kb / 1024.0  # noqa: E731
    print()
    print("Scale-out memory: %d processes, one shard each, %d guilds x %d channels x %d members "
          "per process; store %s, %s (MB = MiB)"
          % (args.processes, args.guilds_per_process, args.channels, args.members, args.store,
             "Redis" if not args.no_redis else "no Redis"))
    print("library floor (rss_floor_4_souk_libs): %.2f MB" % mb(floor_kb))
    fails = []
    for r in results:
        print()
        print("member cache %s" % ("on" if r["member_cache"] else "off"))
        if not r["ok"]:
            print("  not measured: %s" % r.get("error"))
            fails.append("member cache %s not measured" % ("on" if r["member_cache"] else "off"))
            continue
        print("  %-6s %8s %8s %8s" % ("shard", "RSS", "own", "heap"))
        for p in r["processes"]:
            print("  %-6d %8.2f %8.2f %8.2f"
                  % (p["shard"], mb(p["rss_kb"]), mb(p["own_kb"]), p["heap_bytes"] / gb.MiB))
        own = [p["own_kb"] for p in r["processes"]]
        rss = [p["rss_kb"] for p in r["processes"]]
        r["own_max_kb"], r["own_mean_kb"] = max(own), sum(own) / len(own)
        print("  own memory per process: mean %.2f MB, max %.2f MB; RSS mean %.2f MB; "
              "all %d processes: RSS %.1f MB"
              % (mb(r["own_mean_kb"]), mb(r["own_max_kb"]), mb(sum(rss) / len(rss)),
                 len(rss), mb(sum(rss))))
        if r["violations"]:
            print("  fake violations: %s" % sorted({v["name"] for v in r["violations"]}))
        if not r["member_cache"] and args.guilds_per_process == 2500:
            ok = r["own_max_kb"] <= TARGET_OWN_MB_PER_PROCESS * 1024
            print("  %s  own memory <= %.1f MB per process of 2,500 guilds: %.2f MB (max)"
                  % ("PASS" if ok else "FAIL", TARGET_OWN_MB_PER_PROCESS, mb(r["own_max_kb"])))
            if not ok:
                fails.append("own memory per process")
    return fails


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=10)
    ap.add_argument("--guilds-per-process", type=int, default=2500)
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--member-cache", default="off,on",
                    help="comma-separated: off, on (a run each)")
    ap.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--no-redis", action="store_true", help="no Redis (each its own memory)")
    ap.add_argument("--souk-bin", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--ready-timeout", type=int, default=120)
    ap.add_argument("--guilds-timeout", type=int, default=1800)
    ap.add_argument("--out", default=os.path.join(gb.OUT_DIR, "cluster.json"))
    ap.add_argument("--strict", action="store_true", help="exit 3 when a target is missed")
    args = ap.parse_args(argv)
    modes = [m.strip() for m in args.member_cache.split(",") if m.strip()]
    if args.processes < 1 or args.guilds_per_process < 1 or args.members < 3 or \
            any(m not in ("off", "on") for m in modes):
        ap.error("need processes >= 1, guilds >= 1, members >= 3, --member-cache off,on")

    def _raise(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _raise)
    os.makedirs(gb.OUT_DIR, exist_ok=True)
    floor_kb = gb.rss_floor_kb(args)
    if not floor_kb:
        print("rss_floor_4_souk_libs not found next to the souk binary (build/release/bench)",
              file=sys.stderr)
        return 1
    pg = redis = None
    results = []
    try:
        if args.store == "postgres":
            pg = Postgres(gb.OUT_DIR)
        if not args.no_redis:
            redis = Redis(gb.OUT_DIR)
        for m in modes:
            results.append(run_mode(args, m == "on", pg, redis, floor_kb))
    finally:
        if redis:
            redis.stop()
        if pg:
            pg.stop()
    fails = report(results, args, floor_kb)
    with open(args.out, "w") as f:
        json.dump({"benchmark": "cluster", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "params": {k: v for k, v in vars(args).items()},
                   "rss_floor_kb": floor_kb, "results": results}, f, indent=1)
    print("figures written to %s" % os.path.relpath(args.out, gb.ROOT))
    if any(not r["ok"] for r in results):
        return 1
    return 3 if args.strict and fails else 0


if __name__ == "__main__":
    sys.exit(main())
