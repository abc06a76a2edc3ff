"""Helpers for the stats and scanner integration tests.

* ``TestClock``   the schedule clock's test offset (SOUK_TEST_CLOCK_FILE):
                  modules' schedules (heartbeats, rename windows, summaries,
                  scans) see time move by what the test adds.
* ``AuxFake``     a small fake server (fake_kucoin.py, fake_webhook.py) run as
                  a subprocess on a free port, with its control API.
* ``command()``   run a slash command in a guild of the fake Discord and
                  return the text souk answered.
"""
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from soukproc import sanitized

ROOT = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"
WAIT = 60 if sanitized() else 20
ADMINISTRATOR = str(1 << 3)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TestClock:
    """The offset file of souk's schedule clocks.  The offset only grows."""

    __test__ = False  # not a test class for pytest

    def __init__(self, path):
        self.path = Path(path)
        self.offset_ms = 0
        self._write()

    def _write(self):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("%d\n" % self.offset_ms)
        os.replace(tmp, self.path)

    def advance(self, seconds):
        self.offset_ms += int(seconds * 1000)
        self._write()

    def set_unix(self, unix_s):
        """Make the schedule clock read unix_s now (it must be ahead)."""
        want = int(unix_s * 1000 - time.time() * 1000)
        assert want >= self.offset_ms, "the test clock cannot go back"
        self.offset_ms = want
        self._write()

    def now(self):
        return time.time() + self.offset_ms / 1000.0

    def env(self):
        return {"SOUK_TEST_CLOCK_FILE": str(self.path)}


class AuxFake:
    def __init__(self, workdir, script, *args):
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        pf = workdir / (Path(script).stem + ".port")
        self.log_path = workdir / (Path(script).stem + ".log")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PYTHON, str(ROOT / "tests" / "fakes" / script), "--port", "0", "--port-file",
             str(pf), "--log-level", "WARNING", *[str(a) for a in args]],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 15
        while not (pf.exists() and pf.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("%s did not start: %s" % (script, self.log_path.read_text()))
            time.sleep(0.02)
        self.port = int(pf.read_text())
        self.base = "http://127.0.0.1:%d" % self.port

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with _OPENER.open(req, timeout=10) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise AssertionError("%s %s: %d %s" % (method, path, e.code, e.read()))

    def get(self, path):
        return self.call("GET", path)

    def post(self, path, body=None):
        return self.call("POST", path, body if body is not None else {})

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_until(pred, timeout=WAIT, what="condition", interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(interval)


def body_of(r):
    b = r.get("body")
    return json.loads(b) if isinstance(b, str) else b


def message_text(m):
    """A message's content, then each embed's title, description, fields
    and footer, one per line."""
    parts = [m.get("content") or ""]
    for e in m.get("embeds") or []:
        parts += [e.get("title") or "", e.get("description") or ""]
        parts += ["%s: %s" % (f["name"], f["value"]) for f in e.get("fields") or []]
        parts.append((e.get("footer") or {}).get("text") or "")
    return "\n".join(p for p in parts if p)


def answer(fake, iid, token):
    """The text souk answered an interaction with (message_text): the
    callback's message, or, when it was deferred, the edit of @original
    that followed."""
    def find():
        deferred = False
        for r in fake.requests():
            if r["method"] == "POST" and "/interactions/%s/" % iid in r["path"]:
                cb = body_of(r)
                if cb["type"] == 4:
                    return message_text(cb["data"]) or "(empty)"
                deferred = True
            if deferred and r["method"] == "PATCH" and token in r["path"] and \
                    r["path"].endswith("/messages/@original"):
                return message_text(body_of(r))
        return None
    return wait_until(find, what="an answer to interaction %s" % iid)


def command(fake, name, sub, guild=None, permissions=ADMINISTRATOR, group=None, **opts):
    """Run /name [group] sub option:value ... as the guild owner with the
    given permissions; returns souk's answer text."""
    types = {bool: 5, int: 4}
    options = []
    for k, v in opts.items():
        t = 7 if k in ("channel", "members", "online", "bans") else types.get(type(v), 3)
        options.append({"name": k, "type": t, "value": v})
    g = guild or fake.state(rest_log=False)["guilds"][0]
    leaf = {"name": sub, "type": 1, "options": options}
    top = [{"name": group, "type": 2, "options": [leaf]}] if group else [leaf]
    r = fake.interaction(name, guild_id=g["id"], user_id=g["owner_id"], options=top,
                         permissions=permissions)
    return answer(fake, r["id"], r["token"])


def text_channels(g):
    return [c["id"] for c in g["channels"] if c["type"] == 0]


def http_port(souk):
    line = souk.wait_log("listening on", timeout=WAIT)[0]
    return int(re.search(r":(\d+)\"?$", line.rstrip('"')).group(1))


def metrics(port):
    with _OPENER.open("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        return r.read().decode()


def metric(text, name, labels=""):
    """The value of one sample of the Prometheus text, or None."""
    for line in text.splitlines():
        if line.startswith(name + (("{" + labels + "}") if labels else " ")):
            return float(line.rsplit(" ", 1)[1])
    return None
