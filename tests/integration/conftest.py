"""Shared fixtures for souk's integration tests (run with /usr/bin/python3 -m pytest).

* ``free_port()``        a free TCP port on 127.0.0.1 (helper, not a fixture)
* ``tmp_souk_dir``       a fresh directory for one test's config, database, logs
* ``fake_discord``       the fake Discord (tests/fakes/fake_discord.py) started
                         as a subprocess on a free port; yields a FakeDiscord
                         client; on teardown the test FAILS if the fake
                         recorded any protocol/schema violation that the test
                         did not allow, and the subprocess is always killed.

Extra command-line flags for the fake go in a marker::

    @pytest.mark.fake_discord_args("--heartbeat-interval", "500", "--shards", "2")
    def test_something(fake_discord): ...

A test that provokes a violation on purpose says so with
``fake_discord.allow_violations("avoidable_429")`` or clears them with
``fake_discord.reset_violations()``.
"""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE_DISCORD = ROOT / "tests" / "fakes" / "fake_discord.py"
PYTHON = "/usr/bin/python3"

# never let an http_proxy from the environment see loopback traffic
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeDiscordError(RuntimeError):
    pass


class FakeDiscord:
    """Client for a running fake Discord: wraps its /_fake control API."""

    def __init__(self, proc, port, log_path):
        self.proc = proc
        self.port = port
        self.log_path = Path(log_path)
        self.http_url = "http://127.0.0.1:%d" % port
        self.base_url = self.http_url + "/api/v10"
        self.gateway_url = "ws://127.0.0.1:%d/gateway" % port
        self.resume_url = "ws://127.0.0.1:%d/resume" % port
        self.allowed = set()
        st = self.state(rest_log=False)
        self.token = st["token"]
        self.application_id = st["application_id"]
        self.bot_user_id = st["bot_user_id"]
        self.guilds = st["guilds"]

    # -- plumbing
    def _call(self, method, path, body=None, timeout=30.0, ok_statuses=(200,)):
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.http_url + path, data=data, method=method,
                                     headers=headers)
        try:
            with _OPENER.open(req, timeout=timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        out = json.loads(raw) if raw else {}
        if status not in ok_statuses:
            raise FakeDiscordError("%s %s -> %d %s" % (method, path, status, out))
        return out

    def get(self, path, **query):
        q = ("?" + urllib.parse.urlencode(query)) if query else ""
        return self._call("GET", path + q)

    def post(self, path, body=None, **kw):
        return self._call("POST", path, body if body is not None else {}, **kw)

    # -- state
    def state(self, rest_log=True):
        return self.get("/_fake/state", rest_log="1" if rest_log else "0")

    def violations(self):
        return self.get("/_fake/violations")["violations"]

    def reset_violations(self):
        return self.post("/_fake/reset_violations")["violations"]

    def allow_violations(self, *names):
        self.allowed.update(names)

    def unexpected_violations(self):
        return [v for v in self.violations() if v["name"] not in self.allowed]

    def config(self, **knobs):
        if knobs:
            return self.post("/_fake/config", knobs)["config"]
        return self.get("/_fake/config")

    def requests(self, since=0):
        return self.get("/_fake/rest/requests", since=since)["requests"]

    def messages(self, channel_id=None):
        q = {"channel_id": channel_id} if channel_id else {}
        return self.get("/_fake/messages", **q)["messages"]

    def add_guild(self, name="Extra Guild", channels=3, members=4, **kw):
        return self.post("/_fake/guilds", dict(kw, name=name, channels=channels, members=members))

    def wait(self, what, count=1, timeout=10.0):
        """Long-poll until `count` events of kind `what` (identify, ready,
        resume, resumed, heartbeat, request, connection, violation) exist."""
        return self._call("GET", "/_fake/wait?%s" % urllib.parse.urlencode(
            {"for": what, "count": count, "timeout": timeout}), timeout=timeout + 5)

    def wait_for(self, predicate, timeout=10.0, interval=0.05, what="condition"):
        """Poll state until predicate(state) is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.state()
            v = predicate(st)
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s" % what)
            time.sleep(interval)

    # -- REST scripting
    def script_rest(self, method, path_regex, responses):
        return self.post("/_fake/rest/script", {"method": method, "path": path_regex,
                                                "responses": list(responses)})

    def clear_scripts(self):
        return self.post("/_fake/rest/script/clear")

    def set_limit(self, route, limit, window_s):
        return self.post("/_fake/rest/limits", {"route": route, "limit": limit,
                                                "window_s": window_s})

    # -- gateway
    @staticmethod
    def _target(kw):
        return {k: v for k, v in kw.items() if k in ("conn", "session_id", "shard") and v is not None}

    def dispatch(self, t, d, shard=None, session_id=None, force=False):
        return self.post("/_fake/gateway/dispatch", dict(
            self._target({"shard": shard, "session_id": session_id}), t=t, d=d, force=force),
            ok_statuses=(200,))

    def message(self, content="hello", channel_id=None, **kw):
        return self.post("/_fake/gateway/message", dict(kw, content=content, channel_id=channel_id))

    def interaction(self, name="price", options=None, **kw):
        body = dict(kw, name=name)
        if options is not None:
            body["options"] = options
        return self.post("/_fake/gateway/interaction", body)

    def reconnect(self, **target):
        return self.post("/_fake/gateway/reconnect", self._target(target))

    def invalid_session(self, resumable=False, **target):
        return self.post("/_fake/gateway/invalid_session",
                         dict(self._target(target), resumable=resumable))

    def close(self, code=4000, reason=None, invalidate=None, **target):
        b = dict(self._target(target), code=code)
        if reason is not None:
            b["reason"] = reason
        if invalidate is not None:
            b["invalidate"] = invalidate
        return self.post("/_fake/gateway/close", b)

    def drop(self, **target):
        return self.post("/_fake/gateway/drop", self._target(target))

    def acks(self, enabled, all=False, **target):
        b = dict(self._target(target), enabled=enabled)
        if all:
            b["all"] = True
        return self.post("/_fake/gateway/acks", b)

    def heartbeat_request(self, **target):
        return self.post("/_fake/gateway/heartbeat_request", self._target(target))

    def split(self, count=1, parts=2, mode="messages", default=False, **target):
        b = dict(self._target(target), count=count, parts=parts, mode=mode)
        if default:
            b["default"] = True
        return self.post("/_fake/gateway/split", b)

    def expire_session(self, **target):
        return self.post("/_fake/gateway/expire_session", self._target(target))

    def blast(self, shard=0, count=1000, guilds=1, channels_per_guild=5,
              members_per_guild=50, wait=False, **kw):
        return self.post("/_fake/gateway/blast", dict(
            kw, shard=shard, count=count, guilds=guilds, channels_per_guild=channels_per_guild,
            members_per_guild=members_per_guild, wait=wait), timeout=600)

    def blast_status(self, blast_id):
        return self.get("/_fake/gateway/blast/%s" % blast_id)

    # -- lifecycle
    def log_tail(self, n=60):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_fake_discord(workdir, *args, timeout=15.0):
    """Start tests/fakes/fake_discord.py on a free port; return a FakeDiscord."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port_file = workdir / "fake_discord.port"
    log_path = workdir / "fake_discord.log"
    if port_file.exists():
        port_file.unlink()
    log = open(log_path, "wb")
    proc = subprocess.Popen([PYTHON, str(FAKE_DISCORD), "--port", "0", "--port-file",
                             str(port_file)] + [str(a) for a in args],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise FakeDiscordError("fake_discord exited with %s:\n%s" % (
                    proc.returncode, log_path.read_text(errors="replace")[-3000:]))
            if port_file.exists():
                text = port_file.read_text().strip()
                if text:
                    return FakeDiscord(proc, int(text), log_path)
            if time.monotonic() > deadline:
                raise FakeDiscordError("fake_discord did not start in %.0fs" % timeout)
            time.sleep(0.02)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "fake_discord_args(*args): extra command-line flags for the fake Discord")
    config.addinivalue_line(
        "markers", "hypixel_args(*args): flags for the fake Hypixel (test_skyblock.py)")


@pytest.fixture
def tmp_souk_dir(tmp_path):
    d = tmp_path / "souk"
    d.mkdir()
    return d


@pytest.fixture
def fake_discord(request, tmp_path):
    marker = request.node.get_closest_marker("fake_discord_args")
    args = list(marker.args) if marker else []
    fake = start_fake_discord(tmp_path / "fake_discord", *args)
    problems = None
    try:
        yield fake
        if fake.proc.poll() is not None:
            problems = "fake_discord died during the test (exit %s)" % fake.proc.returncode
        else:
            bad = fake.unexpected_violations()
            if bad:
                problems = "fake Discord recorded %d violation(s):\n%s" % (
                    len(bad), "\n".join(json.dumps(v, default=str)[:600] for v in bad))
    finally:
        fake.stop()
    if problems:
        pytest.fail("%s\n--- fake_discord log tail ---\n%s" % (problems, fake.log_tail()),
                    pytrace=False)


# -- the real souk binary ----------------------------------------------------

import sys  # noqa: E402

# tests/fakes imports this file too, from its own directory.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soukproc import Souk, TEST_TOKEN  # noqa: E402


def souk_config(fake, data_dir, **overrides):
    """A config dict pointing souk at the fake; overrides merge per section."""
    cfg = {
        "core": {"data_dir": str(data_dir), "log": {"level": "debug"}, "shutdown_grace": "5s"},
        # Several processes run at once: each takes a free port.
        "http": {"port": 0},
        "discord": {"api_base": fake.base_url if fake else "http://127.0.0.1:9/api/v10"},
    }
    for section, values in overrides.items():
        merged = dict(cfg.get(section, {}))
        for k, v in values.items():
            if isinstance(v, dict) and isinstance(merged.get(k), dict):
                merged[k] = dict(merged[k], **v)
            else:
                merged[k] = v
        cfg[section] = merged
    return cfg


@pytest.fixture
def souk_factory(tmp_path):
    """Start souk processes; every one still running at teardown is killed.
    souk_factory(fake, name="a", config=..., env=..., args=("run",))."""
    procs = []

    def make(fake, name="souk", config=None, env=None, args=("run",), wrap=None, start=True,
             stdin=None):
        workdir = tmp_path / name
        cfg = config if config is not None else souk_config(fake, workdir / "data")
        e = {"SOUK_DISCORD_TOKEN": fake.token if fake else TEST_TOKEN}
        e.update(env or {})
        s = Souk(workdir, cfg, env=e, args=args, wrap=wrap, stdin=stdin)
        procs.append(s)
        if start:
            s.start()
        return s

    yield make
    for s in procs:
        s.kill()
