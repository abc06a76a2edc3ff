#!/usr/bin/python3
"""Gateway benchmark: souk's RSS and CPU under a synthetic Discord load, with
discord.py (Debian's python3-discord) against the same fake as a baseline.

    /usr/bin/python3 bench/gateway_bench.py [--clients souk,discord.py]
        [--souk-bin PATH] [--events 100000] [--guilds 100] [--channels 10]
        [--members 100] [--batch 1] [--repeat 3] [--flat-tolerance-mb 1.0]
        [--strict]

For each client, in order:

1. a fresh fake Discord (tests/fakes/fake_discord.py) on a free port, with
   no guilds of its own and Discord's default heartbeat interval;
2. the client is started and connects; once the fake has sent READY (and,
   for discord.py, on_ready fired) a first blast sends the GUILD_CREATEs:
   GUILDS guilds of CHANNELS text channels and MEMBERS members, with the
   full member lists.  A "!ping" is then sent through the gateway and the
   bench waits for the client's "pong" (POST /channels/{id}/messages) to
   show up in the fake's message log: events are handled in order, so
   the client has processed every guild.  "RSS at ready" is VmRSS then;
3. CPU time (utime+stime of the process, all threads) is read, a second
   blast sends EVENTS realistic MESSAGE_CREATEs (~1 KB of JSON each,
   zlib-stream compressed) as fast as the client reads them, RSS is sampled
   every 100 ms, and once the fake has sent them all, a last "!ping" /
   "pong" proves the client has processed them all.  CPU and wall time
   are taken at that pong.

It prints a table and the targets (souk only), and writes everything to
bench/out/gateway.json.  Logs of each run are in bench/out/gateway-<client>/.

MB in this benchmark means MiB (2^20 bytes), as /proc, ps and top count.

Exit status: 0 when every client was measured (whatever the targets say,
unless --strict, which makes a missed souk target exit 3); 1 when a client
could not be measured (did not start, never answered, died).
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"
FAKE = os.path.join(ROOT, "tests", "fakes", "fake_discord.py")
DPY_BOT = os.path.join(ROOT, "bench", "dpy_bot.py")
OUT_DIR = os.path.join(ROOT, "bench", "out")

# The targets of issue 10: souk's own memory (RSS minus the floor of the
# libraries it links, same run) at 1,000 guilds, bytes per guild with no
# member cache, CPU against discord.py at 32 events per write, and CPU on
# plain (uncompressed) frames.
TARGET_OWN_MB = 2.0
# souk's own memory by the guilds a process holds: issue 10 at 1,000, and
# issue 15's scale-out process of 2,500 (member cache off, every module on)
TARGET_OWN_MB_AT = {1000: TARGET_OWN_MB, 2500: 4.0}
TARGET_PER_GUILD_BYTES = 1024
TARGET_CPU_RATIO = 10.0
TARGET_PLAIN_CPU_S = 0.25

CLK_TCK = os.sysconf("SC_CLK_TCK")
MiB = 1024.0 * 1024.0

# never let an http_proxy from the environment see loopback traffic
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BenchError(RuntimeError):
    pass


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ------------------------------------------------------------------ /proc
def proc_status_kb(pid, field):
    """A kB field of /proc/PID/status (VmRSS, VmHWM), or None if gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def proc_times(pid):
    """(utime, stime) of the whole process (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()  # fields[0] is field 3 (state)
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # fields 14 and 15


def proc_cpu_s(pid):
    """utime + stime of the whole process (all its threads), in seconds."""
    u, s = proc_times(pid)
    return u + s


def proc_ctxt_switches(pid):
    """Voluntary + involuntary context switches summed over live threads."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return None
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:",
                                        "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def proc_thread_cpu(pid):
    """{"tid comm": cpu seconds} for the live threads."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                st = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        out["%s %s" % (tid, comm)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def proc_rss_by_mapping(pid, top=15):
    """[(mapping, kB)] from /proc/PID/smaps: the largest RSS per file
    (anonymous mappings and [heap] etc. by their pseudo-names)."""
    per = {}
    name = None
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                head = line.split(None, 1)[0]
                if "-" in head and not head.endswith(":"):  # a mapping header
                    parts = line.split()
                    name = parts[5] if len(parts) > 5 else "[anon]"
                elif head == "Rss:" and name is not None:
                    per[name] = per.get(name, 0) + int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return sorted(((k, v) for k, v in per.items() if v), key=lambda kv: -kv[1])[:top]


def proc_threads(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except FileNotFoundError:
        return None


# ------------------------------------------------------------------ processes
class Proc:
    """A child in its own process group, output to a log file; kill() ends
    the whole group (TERM, then KILL)."""

    def __init__(self, name, cmd, log_path, env=None, cwd=None):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                  stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  start_new_session=True)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def check(self):
        if not self.alive():
            raise BenchError("%s exited with status %s; log tail:\n%s"
                             % (self.name, self.p.returncode, self.tail()))

    def tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join("    " + l for l in lines[-n:])
        except OSError:
            return "    (no log)"

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self, grace=5.0):
        try:
            if self.alive():
                try:
                    os.killpg(self.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.p.wait(grace)
                except subprocess.TimeoutExpired:
                    pass
            # whatever is left in the group (the leader or its children)
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        finally:
            self._log.close()


# ------------------------------------------------------------------ fake Discord
class Fake:
    def __init__(self, workdir, args, extra=()):
        port_file = os.path.join(workdir, "fake.port")
        cmd = [PY, FAKE, "--port", "0", "--port-file", port_file, "--guilds", "0",
               "--seed", str(args.seed), "--log-level", "INFO"] + list(extra)
        self.proc = Proc("fake_discord", cmd, os.path.join(workdir, "fake.log"),
                         env=clean_env(), cwd=workdir)
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            self.proc.check()
            if time.monotonic() > deadline:
                raise BenchError("fake did not start; log tail:\n" + self.proc.tail())
            time.sleep(0.05)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.http = "http://127.0.0.1:%d" % self.port
        self.api_base = self.http + "/api/v10"
        self.gateway = "ws://127.0.0.1:%d/gateway" % self.port
        st = self.state()
        self.token = st["token"]
        self.bot_id = st["bot_user_id"]

    def call(self, method, path, body=None, timeout=30.0, ok=(200,)):
        data, headers = None, {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.http + path, data=data, method=method, headers=headers)
        try:
            with _OPENER.open(req, timeout=timeout) as r:
                raw, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        out = json.loads(raw) if raw else {}
        if status not in ok:
            raise BenchError("fake: %s %s -> %d %s" % (method, path, status, out))
        return out

    def get(self, path, **q):
        return self.call("GET", path + (("?" + urllib.parse.urlencode(q)) if q else ""))

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body if body is not None else {}, **kw)

    def state(self):
        return self.get("/_fake/state", rest_log="0", delivered="0")

    def wait_ready(self, client, timeout):
        deadline = time.monotonic() + timeout
        while True:
            client.check()
            self.proc.check()
            try:
                self.call("GET", "/_fake/wait?for=ready&count=1&timeout=1", timeout=10)
                return
            except BenchError as e:
                if "408" not in str(e):
                    raise
            if time.monotonic() > deadline:
                raise BenchError("%s: no READY within %ds; client log tail:\n%s"
                                 % (client.name, timeout, client.tail()))

    def pongs(self, cid):
        return sum(1 for m in self.get("/_fake/messages", channel_id=cid)["messages"]
                   if (m.get("content") or "").startswith("pong") and (m.get("author") or {}).get("id") == self.bot_id)

    def ping_pong(self, client, cid, timeout):
        """Send "!ping" as a member; wait for the client's "pong" in the fake's
        message log.  Returns seconds from the ping to the pong being seen."""
        before = self.pongs(cid)
        t0 = time.monotonic()
        self.post("/_fake/gateway/message", {"channel_id": cid, "content": "!ping"})
        while True:
            if self.pongs(cid) > before:
                return time.monotonic() - t0
            client.check()
            self.proc.check()
            if time.monotonic() - t0 > timeout:
                raise BenchError("%s: no pong within %ds; client log tail:\n%s"
                                 % (client.name, timeout, client.tail()))
            time.sleep(0.01)

    def blast(self, client, body, timeout, progress=None):
        b = self.post("/_fake/gateway/blast", dict(body, wait=False))
        bid = b["id"]
        t0 = time.monotonic()
        last_note = t0
        while True:
            time.sleep(0.1)
            info = self.get("/_fake/gateway/blast/%s" % bid)
            if info.get("error"):
                raise BenchError("blast %s failed in the fake: %s" % (bid, info["error"]))
            if info["done"]:
                return info
            client.check()
            self.proc.check()
            now = time.monotonic()
            if progress and now - last_note >= 5:
                last_note = now
                log("%s: %d/%d events sent" % (progress, info["sent"], body["count"]))
            if now - t0 > timeout:
                raise BenchError("blast %s not done after %ds (sent %d, guilds %d)"
                                 % (bid, timeout, info["sent"], info["guilds_sent"]))


class RssSampler(threading.Thread):
    def __init__(self, pid, period=0.1):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.samples = []  # (seconds since start, kB)
        self._halt = threading.Event()

    def run(self):
        t0 = time.monotonic()
        n = 0
        while True:
            kb = proc_status_kb(self.pid, "VmRSS")
            if kb is not None:
                self.samples.append((round(time.monotonic() - t0, 3), kb))
            n += 1
            if self._halt.wait(max(0.0, t0 + n * self.period - time.monotonic())):
                return

    def stop(self):
        self._halt.set()
        self.join()


# ------------------------------------------------------------------ clients
def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SOUK_") and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def souk_bin(args):
    for p in ([args.souk_bin] if args.souk_bin else []) + \
            ([os.environ["SOUK_BIN"]] if os.environ.get("SOUK_BIN") else []) + \
            [os.path.join(ROOT, "build", "release", "souk")]:
        if p:
            return os.path.abspath(p)


def free_port():
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def start_souk(args, fake, workdir, datadir):
    binary = souk_bin(args)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise BenchError("souk binary %s not found (run `make build`, or set SOUK_BIN)" % binary)
    cfg = os.path.join(workdir, "souk.yaml")
    port = free_port()
    with open(cfg, "w") as f:
        f.write("core:\n"
                "  data_dir: %s\n"
                "  log:\n"
                "    level: warn\n"
                "discord:\n"
                "  api_base: %s\n"
                "%s"
                "http:\n"
                "  port: %d\n" % (json.dumps(datadir), json.dumps(fake.api_base),
                                   (("  compress: %s\n" % args.compress) if args.compress else "")
                                   + ("  cache:\n    members: true\n"
                                      if getattr(args, "member_cache", False) else ""),
                                   port))
    env = clean_env()
    env["SOUK_DISCORD_TOKEN"] = fake.token
    cmd = [binary, "run", "-c", cfg]
    heaptrack = getattr(args, "heaptrack_out", None)
    if heaptrack:
        cmd = ["heaptrack", "-o", heaptrack] + cmd
    p = Proc("souk", cmd, os.path.join(workdir, "souk.log"), env=env, cwd=workdir)
    p.binary = binary
    p.http_port = port
    p.heaptrack = heaptrack
    return p


def stop_under_heaptrack(client, timeout=120):
    """SIGKILL souk alone, so that what it holds stays allocated (heaptrack
    reports it as leaked: the heap as it was after the stream) and heaptrack
    (same process group) lives to write its data; then wait for heaptrack
    to finish."""
    pids = {client.pid}
    for _ in range(4):  # souk is a child or grandchild of heaptrack's script
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            comm = st[st.index("(") + 1:st.rindex(")")]
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            if ppid in pids:
                pids.add(int(d))
                if comm == "souk":
                    os.kill(int(d), signal.SIGKILL)
                    try:
                        client.p.wait(timeout)
                    except subprocess.TimeoutExpired:
                        pass
                    return


def heaptrack_attribution(path):
    """[(owner, bytes)] of souk's malloc heap when it was killed, from
    heaptrack's record (what was never freed): each allocation goes to the module (src/modules/NAME) nearest to
    it on its stack, else to the first file of souk's own on its stack that
    is not the allocator or the buffer helper, else to "libraries"."""
    out = subprocess.run(["heaptrack_print", "-f", path, "--print-peaks", "0",
                          "--peak-limit", "100000", "--sub-peak-limit", "100000",
                          "--print-allocators", "0", "--print-temporary", "0",
                          "--print-leaks", "1"],
                         capture_output=True, text=True, timeout=600).stdout
    units = {"B": 1, "K": 1e3, "M": 1e6, "G": 1e9}  # heaptrack_print's decimal units
    owners = {}
    cur = None

    def close(entry):
        if entry is None:
            return
        size, frames = entry
        mod = next((f.split("/")[1] for f in frames if f.startswith("modules/")), None)
        own = next((f for f in frames if f not in ("core/alloc.c", "core/buf.c")), None)
        key = ("module " + mod) if mod else (own or "libraries")
        owners[key] = owners.get(key, 0) + size

    for line in out.splitlines():
        m = re.match(r"^([0-9.]+)([BKMG]) leaked over \d+ calls from:$", line)
        if m:
            close(cur)
            cur = (float(m.group(1)) * units[m.group(2)], [])
            continue
        if cur is None:
            continue
        if re.match(r"^\S", line):  # a new group ("... leaked over ...") or the end
            close(cur)
            cur = None
            continue
        m = re.search(r"\bat \S*/src/(\S+?):\d+$", line)
        if m:
            cur[1].append(m.group(1))
    close(cur)
    return sorted(owners.items(), key=lambda kv: -kv[1])


# What "+use" does in every guild, as its owner would: the features that
# keep state per guild once used (slash commands through INTERACTION_CREATE).
USE_COMMANDS = (
    # economy: a member's balance and claim
    ("daily", None),
    # stats: a counter channel (the guild's counts are then polled and the
    # channel renamed)
    ("stats", lambda cid: [{"name": "channels", "type": 1,
                            "options": [{"name": "members", "type": 7, "value": cid}]}]),
    # settings: a server setting set by an admin
    ("settings", lambda cid: [{"name": "set", "type": 1,
                               "options": [{"name": "key", "type": 3, "value": "economy.enabled"},
                                           {"name": "value", "type": 3, "value": "on"}]}]),
)


# Every permission bit: what Discord gives a guild's owner in interactions.
OWNER_PERMISSIONS = str((1 << 51) - 1)


def wait_answered(fake, client, ids, timeout):
    """Until souk has answered every interaction of ids."""
    want = set(ids)
    t0 = time.monotonic()
    while True:
        its = fake.get("/_fake/state", rest_log="0", delivered="0")["interactions"]
        its = its.values() if isinstance(its, dict) else its
        answered = sum(1 for it in its if it["id"] in want and it["responded"])
        if answered == len(want):
            return
        client.check()
        fake.proc.check()
        if time.monotonic() - t0 > timeout:
            raise BenchError("+use: %d of %d interactions answered after %ds"
                             % (answered, len(want), timeout))
        time.sleep(0.2)


def use_every_guild(fake, client, st, timeout):
    """Run USE_COMMANDS in every guild of state st, as the guild's owner,
    and wait until souk has answered them all.  The owner (one user in
    every guild of the fake) first accepts the economy's Terms of Service,
    so that /daily pays rather than asks.  Returns what was sent."""
    t0 = time.monotonic()
    guilds = st["guilds"]
    g0 = guilds[0]
    c0 = next(c["id"] for c in g0["channels"] if c["type"] == 0)
    first = fake.post("/_fake/gateway/interaction",
                      {"name": "daily", "guild_id": g0["id"], "channel_id": c0,
                       "user_id": g0["owner_id"], "permissions": OWNER_PERMISSIONS})
    wait_answered(fake, client, [first["id"]], timeout)
    accept = None
    for m in fake.get("/_fake/messages", channel_id=c0)["messages"]:
        for row in m.get("components") or []:
            for comp in row.get("components") or []:
                if (comp.get("custom_id") or "").startswith("eco:tos:a:"):
                    accept = (comp["custom_id"], m["id"])
    if accept is None:
        raise BenchError("+use: /daily did not offer the Terms of Service")
    ok = fake.post("/_fake/gateway/interaction",
                   {"type": 3, "guild_id": g0["id"], "channel_id": c0, "user_id": g0["owner_id"],
                    "data": {"custom_id": accept[0], "component_type": 2},
                    "message": {"id": accept[1]}, "permissions": OWNER_PERMISSIONS})
    wait_answered(fake, client, [ok["id"]], timeout)
    sent = []
    for g in guilds:
        cid = next(c["id"] for c in g["channels"] if c["type"] == 0)
        for name, opts in USE_COMMANDS:
            body = {"name": name, "guild_id": g["id"], "channel_id": cid,
                    "user_id": g["owner_id"], "permissions": OWNER_PERMISSIONS}
            if opts:
                body["options"] = opts(cid)
            sent.append(fake.post("/_fake/gateway/interaction", body)["id"])
    wait_answered(fake, client, sent, timeout)
    return {"interactions": len(sent) + 2, "seconds": round(time.monotonic() - t0, 2)}


def souk_heap_bytes(client):
    """souk_process_heap_bytes from souk's /metrics: malloc'd bytes in use,
    exact where RSS moves by pages (None when unreachable)."""
    try:
        with _OPENER.open("http://127.0.0.1:%d/metrics" % client.http_port, timeout=10) as r:
            text = r.read().decode()
    except (OSError, urllib.error.URLError):
        return None
    m = re.search(r"^souk_process_heap_bytes ([0-9.e+]+)$", text, re.M)
    return int(float(m.group(1))) if m else None


def rss_floor_kb(args):
    """RSS of rss_floor_4_souk_libs (every library souk links, set up as
    souk sets them up, doing nothing), run now: souk's own memory is its
    RSS minus this, in the same run."""
    floor = os.path.join(os.path.dirname(souk_bin(args)), "bench", "rss_floor_4_souk_libs")
    if not os.access(floor, os.X_OK):
        return None
    out = subprocess.run([floor], capture_output=True, text=True, timeout=60).stdout.split()
    try:
        return int(float(out[1]) * 1024)
    except (IndexError, ValueError):
        return None


def start_dpy(args, fake, workdir, datadir):
    env = clean_env()
    env["DPY_BENCH_TOKEN"] = fake.token
    p = Proc("discord.py", [PY, DPY_BOT, "--api-base", fake.api_base, "--gateway", fake.gateway],
             os.path.join(workdir, "dpy.log"), env=env, cwd=workdir)
    p.binary = PY
    return p


CLIENTS = {"souk": start_souk, "discord.py": start_dpy}


def run_client(name, args):
    workdir = os.path.join(OUT_DIR, "gateway-" + name.replace(".", ""))
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    datadir = tempfile.mkdtemp(prefix="souk-bench-data-")
    fake = client = sampler = perf = None
    res = {"client": name, "ok": False, "logs": os.path.relpath(workdir, ROOT)}
    try:
        log("%s: starting the fake" % name)
        fake = Fake(workdir, args)
        t_start = time.monotonic()
        client = CLIENTS[name](args, fake, workdir, datadir)
        res["binary"] = client.binary
        fake.wait_ready(client, args.ready_timeout)
        if name == "discord.py":
            deadline = time.monotonic() + args.ready_timeout
            while "READY" not in client.output():
                client.check()
                if time.monotonic() > deadline:
                    raise BenchError("discord.py: on_ready did not fire; log tail:\n" + client.tail())
                time.sleep(0.05)
        res["connect_s"] = round(time.monotonic() - t_start, 3)
        log("%s: READY after %.2fs; sending %d GUILD_CREATEs" % (name, res["connect_s"], args.guilds))

        t = time.monotonic()
        g = fake.blast(client, {"count": 0, "guilds": args.guilds,
                                "channels_per_guild": args.channels,
                                "members_per_guild": args.members, "seed": args.seed},
                       args.blast_timeout)
        if g["guilds_sent"] != args.guilds:
            raise BenchError("fake sent %d GUILD_CREATEs, wanted %d" % (g["guilds_sent"], args.guilds))
        st = fake.state()
        cid = next(c["id"] for c in st["guilds"][0]["channels"] if c["type"] == 0)
        pong_s = fake.ping_pong(client, cid, args.pong_timeout)
        if getattr(args, "use", False):
            res["use"] = use_every_guild(fake, client, st, args.pong_timeout)
        res["guilds_s"] = round(time.monotonic() - t, 3)
        res["guilds_pong_latency_s"] = round(pong_s, 4)
        time.sleep(args.settle)
        client.check()
        rss_ready = proc_status_kb(client.pid, "VmRSS")
        res["rss_ready_kb"] = rss_ready
        res["hwm_ready_kb"] = proc_status_kb(client.pid, "VmHWM")
        # anonymous memory vs. mapped files (the binary and shared libraries)
        res["rss_ready_anon_kb"] = proc_status_kb(client.pid, "RssAnon")
        res["rss_ready_file_kb"] = proc_status_kb(client.pid, "RssFile")
        res["rss_ready_top_mappings_kb"] = proc_rss_by_mapping(client.pid)
        res["threads"] = proc_threads(client.pid)
        res["cpu_to_ready_s"] = round(proc_cpu_s(client.pid), 3)
        if name == "souk":
            res["heap_ready_bytes"] = souk_heap_bytes(client)
            res["rss_floor_kb"] = rss_floor_kb(args)
        res["fake_heartbeat_interval_ms"] = st["config"]["heartbeat_interval_ms"]
        log("%s: %d guilds processed; RSS %.2f MB" % (name, args.guilds, rss_ready / 1024))

        # ---- the stream
        sampler = RssSampler(client.pid)
        ctx0 = proc_ctxt_switches(client.pid)
        ut0, st0 = proc_times(client.pid)
        th0 = proc_thread_cpu(client.pid)
        if args.perf:
            perf = Proc("perf", ["perf", "record", "-F", "1999", "-g", "-p", str(client.pid),
                                 "-o", os.path.join(workdir, "perf.data")],
                        os.path.join(workdir, "perf.log"), cwd=workdir)
            time.sleep(0.5)
        cpu0 = proc_cpu_s(client.pid)
        fcpu0 = proc_cpu_s(fake.proc.pid)
        t0 = time.monotonic()
        sampler.start()
        b = fake.blast(client, {"count": args.events, "guilds": 0, "seed": args.seed + 1,
                                "batch": args.batch},
                       args.blast_timeout, progress=name)
        t_sent = time.monotonic()
        if b["sent"] != args.events:
            raise BenchError("fake sent %d events, wanted %d" % (b["sent"], args.events))
        final_pong_s = fake.ping_pong(client, cid, args.pong_timeout)
        t1 = time.monotonic()
        cpu1 = proc_cpu_s(client.pid)
        ut1, st1 = proc_times(client.pid)
        ctx1 = proc_ctxt_switches(client.pid)
        th1 = proc_thread_cpu(client.pid)
        if perf is not None:
            os.killpg(perf.pid, signal.SIGINT)
            try:
                perf.p.wait(30)
            except subprocess.TimeoutExpired:
                pass
            perf.kill()
            log("%s: profile in %s (perf report -i ...)" % (name, os.path.join(workdir, "perf.data")))
        fcpu1 = proc_cpu_s(fake.proc.pid)
        sampler.stop()
        rss_after = proc_status_kb(client.pid, "VmRSS")
        if name == "souk":
            res["heap_after_bytes"] = souk_heap_bytes(client)

        kbs = [kb for _, kb in sampler.samples] or [rss_after]
        cpu = cpu1 - cpu0
        res.update({
            "rss_stream_min_kb": min(kbs), "rss_stream_max_kb": max(kbs),
            "rss_stream_last_kb": kbs[-1], "rss_after_kb": rss_after,
            "hwm_after_kb": proc_status_kb(client.pid, "VmHWM"),
            "rss_samples": len(kbs),
            "cpu_s": round(cpu, 3),
            "cpu_per_100k_s": round(cpu * 100000.0 / args.events, 3),
            "us_per_event": round(cpu * 1e6 / args.events, 2),
            "user_s": round(ut1 - ut0, 3), "system_s": round(st1 - st0, 3),
            "context_switches": (ctx1 - ctx0) if None not in (ctx0, ctx1) else None,
            "thread_cpu_s": {k: round(v - th0.get(k, 0.0), 3) for k, v in th1.items()},
            "wall_s": round(t1 - t0, 3),
            "fake_send_s": round(t_sent - t0, 3),
            "final_pong_after_sent_s": round(final_pong_s, 3),
            "fake_cpu_s": round(fcpu1 - fcpu0, 3),
            "events": args.events,
            "event_json_bytes": b["bytes"],
            "samples": sampler.samples,
        })
        sampler = None
        st = fake.state()
        conns = st["connections"]
        res["gateway"] = {
            "connections": len(conns), "identifies": len(st["identifies"]),
            "resumes": len(st["resumes"]),
            "close_codes": [c.get("close_code") for c in conns if c.get("closed_at")],
            "bytes_out": sum(c.get("bytes_out") or 0 for c in conns),
            "compress": sorted({c.get("compress_mode") or "uncompressed" for c in conns}),
            "heartbeats": len(st["heartbeats"]),
        }
        allowed = {"user_agent"} if name == "discord.py" else set()
        res["violations"] = [v for v in st["violations"] if v["name"] not in allowed]
        res["ignored_violations"] = sorted({v["name"] for v in st["violations"]
                                            if v["name"] in allowed})
        if name == "discord.py":
            client.kill()  # SIGTERM: it prints how many messages it handled
            m = re.search(r"^MESSAGES (\d+)$", client.output(), re.M)
            res["messages_seen"] = int(m.group(1)) if m else None
            if res["messages_seen"] is not None and res["messages_seen"] < args.events:
                raise BenchError("discord.py saw only %d of %d messages"
                                 % (res["messages_seen"], args.events))
        res["ok"] = True
        log("%s: done: %.3f s CPU for %d events, %.1f s wall" % (name, cpu, args.events, t1 - t0))
    except BenchError as e:
        res["error"] = str(e)
        log("%s: FAILED: %s" % (name, e))
    finally:
        # each step on its own, so one failing does not leave a process behind
        if client is not None and getattr(client, "heaptrack", None):
            stop_under_heaptrack(client)
        for step in (perf and perf.kill, client and client.kill, fake and fake.proc.kill,
                     sampler and sampler.stop):
            if step:
                try:
                    step()
                except Exception as e:  # noqa: BLE001
                    log("%s: cleanup: %r" % (name, e))
        shutil.rmtree(datadir, ignore_errors=True)
    return res


# ------------------------------------------------------------------ report
def median_run(runs):
    """The run with the median CPU per 100k events, with every run's main
    figures attached as "runs": CPU time on a shared 2-core machine varies
    by a third from one run to the next, so one run proves little."""
    failed = [r for r in runs if not r.get("ok")]
    if failed:
        return failed[0]  # a client that failed once is not measured
    ok = sorted(runs, key=lambda r: r["cpu_per_100k_s"])
    best = dict(ok[(len(ok) - 1) // 2])
    best["runs"] = [{k: r.get(k) for k in ("ok", "cpu_per_100k_s", "user_s", "system_s",
                                           "rss_ready_kb", "rss_stream_max_kb", "error")}
                    for r in runs]
    return best


def mb(kb):
    return None if kb is None else kb / 1024.0


def own_kb(r):
    """souk's own memory: RSS when ready minus the library floor, same run."""
    if r.get("rss_floor_kb") is None or r.get("rss_ready_kb") is None:
        return None
    return r["rss_ready_kb"] - r["rss_floor_kb"]


def targets_for(r, args, dpy=None):
    if not r.get("ok"):
        return None
    growth_mb = mb(r["rss_stream_max_kb"] - r["rss_ready_kb"])
    out = []
    own = own_kb(r)
    if own is not None:
        out.append({"name": "own memory when ready",
                    "target": "RSS - rss_floor_4_souk_libs <= %.1f MB" % TARGET_OWN_MB,
                    "value": "%.2f MB (RSS %.2f - floor %.2f)"
                             % (mb(own), mb(r["rss_ready_kb"]), mb(r["rss_floor_kb"])),
                    "pass": mb(own) <= TARGET_OWN_MB})
    out.append({"name": "RSS flat while events stream",
                "target": "max during stream - RSS when ready <= %.2f MB" % args.flat_tolerance_mb,
                "value": "%+.2f MB (last - ready %+.2f MB)"
                         % (growth_mb, mb(r["rss_stream_last_kb"] - r["rss_ready_kb"])),
                "pass": growth_mb <= args.flat_tolerance_mb})
    if dpy is not None and dpy.get("ok") and r["cpu_s"] > 0:
        ratio = dpy["cpu_s"] / r["cpu_s"]
        out.append({"name": "CPU against discord.py",
                    "target": ">= %.0fx less than discord.py" % TARGET_CPU_RATIO,
                    "value": "%.1fx (%.3f s against %.3f s per 100k)"
                             % (ratio, r["cpu_per_100k_s"], dpy["cpu_per_100k_s"]),
                    "pass": ratio >= TARGET_CPU_RATIO})
    if args.compress == "none" and args.batch >= 32:
        out.append({"name": "CPU per 100,000 plain frames",
                    "target": "<= %.2f s" % TARGET_PLAIN_CPU_S,
                    "value": "%.3f s" % r["cpu_per_100k_s"],
                    "pass": r["cpu_per_100k_s"] <= TARGET_PLAIN_CPU_S})
    return out


def fmt(v, f="%.2f"):
    return "-" if v is None else f % v


def print_report(results, args):
    print()
    print("Gateway benchmark: %d guilds x %d channels x %d members, %d MESSAGE_CREATE events"
          % (args.guilds, args.channels, args.members, args.events))
    print("Delivery: %s" % ("one event per socket write (--batch 1)" if args.batch == 1 else
                            "%d events per socket write (--batch %d)" % (args.batch, args.batch)))
    print("(MB = MiB; RSS = VmRSS; CPU = utime+stime of the client process, all threads)")
    print()
    head = ["client", "RSS ready MB", "stream min MB", "stream max MB", "stream last MB",
            "CPU s/100k", "us/event", "wall s"]
    rows = []
    for r in results:
        if r.get("ok"):
            rows.append([r["client"], fmt(mb(r["rss_ready_kb"])), fmt(mb(r["rss_stream_min_kb"])),
                         fmt(mb(r["rss_stream_max_kb"])), fmt(mb(r["rss_stream_last_kb"])),
                         fmt(r["cpu_per_100k_s"], "%.3f"), fmt(r["us_per_event"], "%.2f"),
                         fmt(r["wall_s"], "%.1f")])
        else:
            rows.append([r["client"], "not measured"] + [""] * (len(head) - 2))
    w = [max(len(str(x[i])) for x in [head] + rows) for i in range(len(head))]
    line = lambda cells: "  ".join(str(c).rjust(w[i]) if i else str(c).ljust(w[i])  # noqa: E731
                                   for i, c in enumerate(cells)).rstrip()
    print(line(head))
    print(line(["-" * x for x in w]))
    for row in rows:
        print(line(row))
    for r in results:
        if not r.get("ok"):
            print("\n%s: not measured: %s" % (r["client"], r.get("error", "?").splitlines()[0]))
    print()
    for r in results:
        if len(r.get("runs", [])) > 1:
            print("%s: %d runs, the median by CPU is shown; CPU s/100k of each: %s; "
                  "RSS when ready of each: %s MB"
                  % (r["client"], len(r["runs"]),
                     ", ".join(fmt(x["cpu_per_100k_s"], "%.3f") if x["ok"] else "failed"
                               for x in r["runs"]),
                     ", ".join(fmt(mb(x["rss_ready_kb"])) if x["ok"] else "-"
                               for x in r["runs"])))
    for r in results:
        if r.get("ok"):
            print("%s: RSS when ready = %.2f MB anonymous + %.2f MB mapped files (binary, libraries)"
                  % (r["client"], mb(r["rss_ready_anon_kb"] or 0), mb(r["rss_ready_file_kb"] or 0)))
            if own_kb(r) is not None:
                print("%s: own memory when ready = RSS %.2f MB - library floor %.2f MB = %.2f MB; "
                      "malloc heap in use %.2f MB when ready, %.2f MB after the stream"
                      % (r["client"], mb(r["rss_ready_kb"]), mb(r["rss_floor_kb"]),
                         mb(own_kb(r)), (r.get("heap_ready_bytes") or 0) / MiB,
                         (r.get("heap_after_bytes") or 0) / MiB))
    for r in results:
        if r.get("ok"):
            gw = r["gateway"]
            print("%s: fake sent the events in %.1f s (fake CPU %.1f s), last pong %.2f s later; "
                  "%d connection(s), %d identify, %d resume(s), %.1f MB on the wire (%s); "
                  "RSS peak (VmHWM) %.2f MB; %s thread(s); CPU user %.2f s + system %.2f s, "
                  "%s context switches"
                  % (r["client"], r["fake_send_s"], r["fake_cpu_s"], r["final_pong_after_sent_s"],
                     gw["connections"], gw["identifies"], gw["resumes"], gw["bytes_out"] / MiB,
                     ",".join(gw["compress"]), mb(r["hwm_after_kb"]), r["threads"],
                     r["user_s"], r["system_s"], r["context_switches"]))
            if r["violations"]:
                names = sorted({v["name"] for v in r["violations"]})
                print("  !! the fake recorded violations: %s" % ", ".join(names))
            if r["ignored_violations"]:
                print("  (ignored for the baseline: %s)" % ", ".join(r["ignored_violations"]))
    souk = next((r for r in results if r["client"] == "souk"), None)
    dpy = next((r for r in results if r["client"] == "discord.py"), None)
    if souk is not None:
        print()
        print("souk targets:")
        tg = targets_for(souk, args, dpy)
        if tg is None:
            print("  FAIL  souk was not measured")
        else:
            for t in tg:
                print("  %s  %-30s %-48s %s" % ("PASS" if t["pass"] else "FAIL", t["name"],
                                               t["target"], t["value"]))
    if souk and dpy and souk.get("ok") and dpy.get("ok"):
        print()
        print("souk / discord.py:")
        for label, key in (("RSS when ready", "rss_ready_kb"), ("RSS max while streaming",
                                                                 "rss_stream_max_kb"),
                           ("CPU for the events", "cpu_s"), ("wall time", "wall_s")):
            a, b = souk[key], dpy[key]
            if b:
                print("  %-26s %.3f  (discord.py uses %.1fx souk's)"
                      % (label, a / b, (b / a) if a else float("inf")))
    print()


def memory_mode(args):
    """souk alone at several sizes: own memory (RSS - library floor) and the
    malloc heap when ready, RSS while the events stream, and from the heap
    differences the bytes per guild, per channel and per member."""
    import copy
    rows = []
    for spec in args.scales.split(","):
        flags = spec.lower().split("+")
        cache, use = "members" in flags[1:], "use" in flags[1:]
        g, c, m = (int(x) for x in flags[0].split("x"))
        a = copy.copy(args)
        a.guilds, a.channels, a.members, a.member_cache, a.use = g, c, m, cache, use
        log("memory: %d guilds x %d channels x %d members%s%s"
            % (g, c, m, ", member cache on" if cache else "",
               ", features used in every guild" if use else ""))
        r = median_run([run_client("souk", a) for _ in range(args.repeat)])
        r["scale"] = {"guilds": g, "channels": c, "members": m, "member_cache": cache,
                      "use": use}
        rows.append(r)
    print()
    print("souk's memory by size (%d MESSAGE_CREATE streamed at %d per write; MB = MiB)"
          % (args.events, args.batch))
    print("%-16s %9s %9s %9s %10s %10s %10s" % ("guilds x ch x mem", "RSS", "floor", "own",
                                               "heap", "heap after", "stream max"))
    for r in rows:
        sc = r["scale"]
        label = "%dx%dx%d%s%s" % (sc["guilds"], sc["channels"], sc["members"],
                                   "+members" if sc["member_cache"] else "",
                                   "+use" if sc["use"] else "")
        if not r.get("ok"):
            print("%-16s not measured: %s" % (label, (r.get("error") or "?").splitlines()[0]))
            continue
        print("%-16s %9.2f %9.2f %9.2f %10.2f %10.2f %10.2f"
              % (label, mb(r["rss_ready_kb"]), mb(r["rss_floor_kb"] or 0), mb(own_kb(r) or 0),
                 (r["heap_ready_bytes"] or 0) / MiB, (r["heap_after_bytes"] or 0) / MiB,
                 mb(r["rss_stream_max_kb"])))
    costs = {}
    ok = [r for r in rows if r.get("ok") and r.get("heap_ready_bytes") is not None]
    for a in ok:
        for b in ok:
            sa, sb = a["scale"], b["scale"]
            if sa["use"] or sb["use"]:
                if sb["use"] and not sa["use"] and sa["member_cache"] == sb["member_cache"] \
                        and all(sa[k] == sb[k] for k in ("guilds", "channels", "members")) \
                        and "used guild" not in costs:
                    costs["used guild"] = (b["heap_ready_bytes"] - a["heap_ready_bytes"]) / \
                        sa["guilds"]
                continue
            if sb["member_cache"] and not sa["member_cache"] and sa["guilds"] == sb["guilds"] \
                    and sa["channels"] == sb["channels"] and sa["members"] == sb["members"] \
                    and "cached member" not in costs:
                costs["cached member"] = (b["heap_ready_bytes"] - a["heap_ready_bytes"]) / \
                    (sa["guilds"] * sa["members"])
            if sa["member_cache"] or sb["member_cache"]:
                continue
            d = b["heap_ready_bytes"] - a["heap_ready_bytes"]
            if sb["guilds"] > sa["guilds"] and sa["channels"] == sb["channels"] \
                    and sa["members"] == sb["members"] and "guild" not in costs:
                costs["guild"] = d / (sb["guilds"] - sa["guilds"])
            if sb["channels"] > sa["channels"] and sa["guilds"] == sb["guilds"] \
                    and sa["members"] == sb["members"] and "channel" not in costs:
                costs["channel"] = d / (sa["guilds"] * (sb["channels"] - sa["channels"]))
            if sb["members"] > sa["members"] and sa["guilds"] == sb["guilds"] \
                    and sa["channels"] == sb["channels"] and "member" not in costs:
                costs["member"] = d / (sa["guilds"] * (sb["members"] - sa["members"]))
    print()
    notes = {"member": "a member in GUILD_CREATE, not cached",
             "cached member": "discord.cache.members on",
             "used guild": "more, once /daily, /stats channels and /settings set ran there"}
    for k in ("guild", "channel", "member", "cached member", "used guild"):
        if k in costs:
            print("bytes per %-15s %8.1f  (malloc heap when ready%s)"
                  % (k + ":", costs[k], ", " + notes[k] if k in notes else ""))
    print()
    print("souk targets:")
    big = max((r for r in ok if not r["scale"]["member_cache"] and not r["scale"]["use"]),
              key=lambda r: r["scale"]["guilds"], default=None)
    for r in ok:
        sc = r["scale"]
        if sc["member_cache"] or sc["use"] or sc["guilds"] not in TARGET_OWN_MB_AT or \
                own_kb(r) is None:
            continue
        print("  %s  own memory at %dx%dx%d <= %.1f MB: %.2f MB"
              % ("PASS" if mb(own_kb(r)) <= TARGET_OWN_MB_AT[sc["guilds"]] else "FAIL",
                 sc["guilds"], sc["channels"], sc["members"], TARGET_OWN_MB_AT[sc["guilds"]],
                 mb(own_kb(r))))
    if big is not None and own_kb(big) is not None:
        grow = mb(big["rss_stream_max_kb"] - big["rss_ready_kb"])
        print("  %s  RSS flat while %d events stream (<= +%.1f MB): %+.2f MB"
              % ("PASS" if grow <= args.flat_tolerance_mb else "FAIL", args.events,
                 args.flat_tolerance_mb, grow))
    if "guild" in costs:
        print("  %s  <= %d bytes per guild (no member cache): %.0f"
              % ("PASS" if costs["guild"] <= TARGET_PER_GUILD_BYTES else "FAIL",
                 TARGET_PER_GUILD_BYTES, costs["guild"]))
    attribution = None
    if args.attribute and big is not None:
        small = min((r["scale"] for r in ok if not r["scale"]["member_cache"]
                     and not r["scale"]["use"]
                     and r["scale"]["channels"] == big["scale"]["channels"]
                     and r["scale"]["members"] == big["scale"]["members"]),
                    key=lambda sc: sc["guilds"])
        attribution = attribute(args, small, big["scale"])
    out = {"benchmark": "gateway-memory", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "params": {"scales": args.scales, "events": args.events, "batch": args.batch,
                      "repeat": args.repeat, "compress": args.compress},
           "environment": environment(), "costs_bytes": costs, "results": rows,
           "heap_by_owner_bytes": attribution}
    path = args.out if args.out != os.path.join(OUT_DIR, "gateway.json") else \
        os.path.join(OUT_DIR, "gateway-memory.json")
    with open(path + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)
    print("figures written to %s" % os.path.relpath(path, os.getcwd()))
    return 0 if all(r.get("ok") for r in rows) else 1


def heaptrack_run(args, scale):
    """[(owner, bytes)] of one run of souk at `scale` under heaptrack, or
    None when it failed."""
    import copy
    a = copy.copy(args)
    a.guilds, a.channels, a.members = scale["guilds"], scale["channels"], scale["members"]
    a.member_cache = scale["member_cache"]
    a.events = min(args.events, 5000)
    tmp = tempfile.mkdtemp(prefix="souk-bench-heaptrack-")
    a.heaptrack_out = os.path.join(tmp, "souk")
    log("memory: %d guilds under heaptrack, for the heap by owner" % a.guilds)
    try:
        r = run_client("souk", a)
        files = [f for f in os.listdir(tmp) if f.startswith("souk.")]
        if not r.get("ok") or not files:
            print("\nheap by owner: the heaptrack run failed: %s" % r.get("error"))
            return None
        return heaptrack_attribution(os.path.join(tmp, files[0]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def attribute(args, small, big):
    """Runs of souk under heaptrack at the smallest and the largest size
    (without the member cache), to say which module (or which file of
    souk's core) holds the heap, and how much of it per guild."""
    if not shutil.which("heaptrack") or not shutil.which("heaptrack_print"):
        print("\nheap by owner: heaptrack is not installed (Debian package heaptrack)")
        return None
    hi = heaptrack_run(args, big)
    lo = heaptrack_run(args, small) if small is not None and small != big else None
    if hi is None:
        return None
    lo_d = dict(lo or [])
    dg = big["guilds"] - small["guilds"] if lo else 0
    total = sum(v for _, v in hi) or 1
    print()
    print("souk's heap after the stream by owner (heaptrack: bytes asked of malloc, without "
          "malloc's own overhead; KB = 1,000 bytes)")
    print("  %-30s %11s %11s %8s" % ("owner", "%d guilds" % small["guilds"] if lo else "",
                                     "%d guilds" % big["guilds"], "per guild" if lo else ""))
    rows = []
    for k, v in hi:
        rows.append({"owner": k, "bytes": v, "bytes_small": lo_d.get(k, 0) if lo else None,
                     "per_guild": (v - lo_d.get(k, 0)) / dg if dg else None})
    for r in rows[:20]:
        print("  %-30s %11s %8.1f KB %8s"
              % (r["owner"], "%8.1f KB" % (r["bytes_small"] / 1e3) if lo else "",
                 r["bytes"] / 1e3, "%8.0f" % r["per_guild"] if dg else ""))
    rest = rows[20:]
    if rest:
        print("  %-30s %11s %8.1f KB" % ("(%d others)" % len(rest), "",
                                         sum(r["bytes"] for r in rest) / 1e3))
    print("  %-30s %11s %8.1f KB %8s"
          % ("total", "%8.1f KB" % (sum(v for _, v in lo) / 1e3) if lo else "", total / 1e3,
             "%8.0f" % ((total - sum(v for _, v in lo)) / dg) if dg else ""))
    return rows


def environment():
    env = {"python": sys.version.split()[0], "platform": platform.platform(),
           "nproc": os.cpu_count(), "clk_tck": CLK_TCK}
    try:
        import discord
        env["discord.py"] = discord.__version__
    except Exception:  # noqa: BLE001
        pass
    try:
        with open("/proc/cpuinfo") as f:
            env["cpu"] = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")),
                              None)
    except OSError:
        pass
    try:
        env["git"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True, timeout=5).stdout.strip()
        env["git_dirty"] = bool(subprocess.run(["git", "-C", ROOT, "status", "--porcelain"],
                                               capture_output=True, text=True,
                                               timeout=10).stdout.strip())
    except Exception:  # noqa: BLE001
        pass
    return env


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", default="souk,discord.py",
                    help="comma list of: %s (default: both, souk first)" % ", ".join(CLIENTS))
    ap.add_argument("--souk-bin", help="souk binary (default: $SOUK_BIN, else build/release/souk)")
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--guilds", type=int, default=100)
    ap.add_argument("--channels", type=int, default=10, help="text channels per guild")
    ap.add_argument("--members", type=int, default=100, help="members per guild")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1,
                    help="payloads per socket write during the stream (1: one write per event; "
                         "N: N zlib-flushed frames written together, as when Discord has a backlog)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per client; the run with the median CPU is reported (default 3)")
    ap.add_argument("--flat-tolerance-mb", type=float, default=1.0,
                    help="'RSS flat' target: max RSS while streaming may exceed RSS when "
                         "ready by this much (default 1.0 MB)")
    ap.add_argument("--settle", type=float, default=1.5,
                    help="seconds to wait after the ready pong before reading RSS "
                         "(souk gives freed heap back once a second: 1.5 s lets the "
                         "burst of GUILD_CREATEs settle)")
    ap.add_argument("--ready-timeout", type=float, default=60)
    ap.add_argument("--blast-timeout", type=float, default=600)
    ap.add_argument("--pong-timeout", type=float, default=120)
    ap.add_argument("--compress", choices=("zlib-stream", "zstd-stream", "none"),
                    help="souk's discord.compress (default: souk's default); discord.py "
                         "always uses zlib-stream")
    ap.add_argument("--scales", default=None,
                    help="memory mode, souk only: comma list of GUILDSxCHANNELSxMEMBERS "
                         "(e.g. 100x10x100,1000x10x100,1000x20x100,1000x10x200), each with "
                         "+members (member cache on) and/or +use (features used in every "
                         "guild); prints souk's own memory at each and the cost per guild, "
                         "channel, member, cached member and used guild")
    ap.add_argument("--attribute", action="store_true",
                    help="memory mode: runs at the smallest and the largest size without "
                         "the member cache under heaptrack, printing the heap by module and "
                         "by file, and each one's bytes per guild")
    ap.add_argument("--out", default=os.path.join(OUT_DIR, "gateway.json"))
    ap.add_argument("--perf", action="store_true",
                    help="record a perf profile of each client during the stream "
                         "(bench/out/gateway-<client>/perf.data; its CPU is not the client's)")
    ap.add_argument("--strict", action="store_true", help="exit 3 when souk misses a target")
    args = ap.parse_args(argv)
    names = [c.strip() for c in args.clients.split(",") if c.strip()]
    for n in names:
        if n not in CLIENTS:
            ap.error("unknown client %r" % n)
    if args.repeat < 1:
        ap.error("need --repeat >= 1")
    if args.events <= 0 or args.guilds <= 0 or args.channels <= 0 or args.members < 3:
        ap.error("need events > 0, guilds > 0, channels > 0, members >= 3")

    os.makedirs(OUT_DIR, exist_ok=True)
    # SIGTERM/SIGHUP unwind like Ctrl-C, so every finally: kills its children.
    def _raise(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGHUP, _raise)

    if args.scales:
        return memory_mode(args)

    results = []
    for n in names:
        results.append(median_run([run_client(n, args) for _ in range(args.repeat)]))

    print_report(results, args)
    out = {
        "benchmark": "gateway",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "params": {"guilds": args.guilds, "channels_per_guild": args.channels,
                   "members_per_guild": args.members, "events": args.events,
                   "seed": args.seed, "batch": args.batch, "repeat": args.repeat,
                   "rss_sample_period_s": 0.1, "mb": "MiB"},
        "environment": environment(),
        "targets": {"own_mb": TARGET_OWN_MB, "per_guild_bytes": TARGET_PER_GUILD_BYTES,
                    "cpu_ratio": TARGET_CPU_RATIO, "plain_cpu_per_100k_s": TARGET_PLAIN_CPU_S,
                    "flat_tolerance_mb": args.flat_tolerance_mb},
        "results": results,
    }
    souk = next((r for r in results if r["client"] == "souk"), None)
    dpy = next((r for r in results if r["client"] == "discord.py"), None)
    if souk is not None:
        out["souk_targets"] = targets_for(souk, args, dpy)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    os.replace(tmp, args.out)
    print("figures written to %s" % os.path.relpath(args.out, os.getcwd()))

    if not all(r.get("ok") for r in results):
        return 1
    if args.strict and souk is not None and not all(t["pass"] for t in out["souk_targets"]):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
