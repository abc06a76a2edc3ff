#!/usr/bin/python3
"""SkyBlock steady RSS: the real souk binary sweeping the fake Hypixel once a
simulated minute, for simulated hours, on a test clock.

    /usr/bin/python3 bench/skyblock_rss.py [--souk-bin PATH] [--pages 20]
        [--minutes 150] [--window-hours 1] [--every 10] [--json PATH]
        [--flat-tolerance-mb 2.0] [--strict]

Issue 12's target: "steady RSS with the module running a sweep every minute
for a simulated hour (a test clock, not an hour of wall time) on the fake:
flat once the window is full".  The module's hours are data time (the hour
of a sweep's lastUpdated), so the fake Hypixel's clock is the one that
matters; souk's schedule clocks (SOUK_TEST_CLOCK_FILE) are moved in step.

1. A fake Discord and a fake Hypixel (tests/fakes/fake_hypixel.py, PAGES
   pages of 1,000 auctions, the market on: about 250 listings appear and
   120 sell a refresh, listings expire), its clock paused at the start of
   an hour.
2. souk runs the module live against it (skyblock.window_hours WINDOW,
   summaries and checkpoints on).  Each simulated minute the bench moves
   both clocks 60 s (the fake makes a refresh with a new lastUpdated) and
   waits until souk logs the complete sweep of that lastUpdated: one sweep
   a simulated minute, as fast as souk and the fake go.
3. Every EVERY simulated minutes it prints VmRSS, VmHWM, RssAnon of the
   process and the module's gauges (/metrics: markets, live listings,
   closed hours in the window, sales in the window).

The window is full once WINDOW closed hours are held (the first hour
closes 90 s after it ends, so from simulated minute WINDOW * 60 + 2): from
then on hours and sales leave it as fast as they come, and RSS should be
flat.
The verdict compares RSS at the first sample with the window full with
the largest sample after it.

MB means MiB.  Exit status: 0 when measured (whatever the verdict unless
--strict, which makes a drift over the tolerance exit 3), 1 when it could
not be measured.
"""
import argparse
import json
import os
import re
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import subprocess  # noqa: E402

from conftest import souk_config, start_fake_discord  # noqa: E402
from modtools import TestClock  # noqa: E402
from soukproc import Souk  # noqa: E402

PY = "/usr/bin/python3"
FAKE = os.path.join(ROOT, "tests", "fakes", "fake_hypixel.py")
HOUR = 3_600_000
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def mb(kb):
    return kb / 1024.0


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    return out


class Hypixel:
    def __init__(self, workdir, pages, start_ms):
        pf = os.path.join(workdir, "fh.port")
        self.log = open(os.path.join(workdir, "fake_hypixel.log"), "wb")
        self.proc = subprocess.Popen(
            [PY, FAKE, "--port", "0", "--port-file", pf, "--pages", str(pages), "--paused",
             "--no-refresh-jitter", "--start-ms", str(start_ms), "--log-level", "WARNING"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (os.path.exists(pf) and open(pf).read().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("fake_hypixel did not start")
            time.sleep(0.05)
        self.base = "http://127.0.0.1:%d" % int(open(pf).read())

    def call(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data,
                                     headers={"Content-Type": "application/json"},
                                     method="GET" if body is None else "POST")
        with _OPENER.open(req, timeout=120) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def gauges(port):
    with _OPENER.open("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        body = r.read().decode()
    out = {}
    for name in ("souk_skyblock_items", "souk_skyblock_live_listings",
                 "souk_skyblock_window_sales", "souk_skyblock_store_bytes"):
        m = re.search(r"^%s (\S+)$" % name, body, re.M)
        out[name] = float(m.group(1)) if m else None
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--souk-bin", default=os.environ.get("SOUK_BIN",
                                                         os.path.join(ROOT, "build/release/souk")))
    ap.add_argument("--pages", type=int, default=20, help="fake pages of 1,000 auctions")
    ap.add_argument("--minutes", type=int, default=150, help="simulated minutes (one sweep each)")
    ap.add_argument("--window-hours", type=int, default=1)
    ap.add_argument("--every", type=int, default=10, help="simulated minutes between samples")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "out", "skyblock_rss.json"))
    ap.add_argument("--flat-tolerance-mb", type=float, default=2.0)
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args()
    os.environ["SOUK_BIN"] = os.path.abspath(a.souk_bin)
    if not os.access(a.souk_bin, os.X_OK):
        print("skyblock_rss: no souk binary at %s" % a.souk_bin, file=sys.stderr)
        return 1

    work = tempfile.mkdtemp(prefix="souk-skyblock-rss-")
    clock = TestClock(os.path.join(work, "clock"))
    # The fake starts 30 s into the next whole hour, in the future, so that
    # souk's schedule clock can be set to the same time (it only goes
    # forward) and simulated minute m falls in hour m // 60.
    start_ms = (int(time.time() * 1000) // HOUR + 1) * HOUR + 30_000
    clock.set_unix(start_ms / 1000.0)
    fake = start_fake_discord(os.path.join(work, "discord"))
    hyp = Hypixel(work, a.pages, start_ms)
    souk = None
    samples = []
    rc = 0
    try:
        g = fake.state(rest_log=False)["guilds"][0]
        cfg = souk_config(fake, os.path.join(work, "data"), skyblock={
            "source": "live", "api_url": hyp.base, "interval": "2s",
            "window_hours": a.window_hours, "sniper": {"channels": [g["channels"][0]["id"]]}})
        cfg["core"]["log"]["level"] = "debug"
        souk = Souk(os.path.join(work, "souk"), cfg,
                    env={"SOUK_DISCORD_TOKEN": fake.token, **clock.env()})
        souk.start()
        line = souk.wait_log("listening on", timeout=60)[0]
        port = int(re.search(r":(\d+)\"?$", line.rstrip('"')).group(1))
        lu = hyp.call("/_fake/state")["last_updated"]
        souk.wait_log("of lastUpdated %d: complete" % lu, timeout=300)
        t0 = time.monotonic()
        print("%4s %8s %8s %8s %8s %8s %8s %9s %8s" % (
            "min", "RSS MB", "HWM MB", "anon MB", "items", "listings", "sales", "store MB",
            "wall s"))
        for minute in range(1, a.minutes + 1):
            clock.advance(60)
            hyp.call("/_fake/clock", {"advance_ms": 60_000})
            lu = hyp.call("/_fake/state")["last_updated"]
            souk.wait_log("of lastUpdated %d: complete" % lu, timeout=300)
            if minute % a.every == 0:
                st = proc_status(souk.proc.pid)
                gv = gauges(port)
                s = {"minute": minute, "rss_kb": st["VmRSS"], "hwm_kb": st["VmHWM"],
                     "anon_kb": st.get("RssAnon"), "wall_s": round(time.monotonic() - t0, 1),
                     **{k.replace("souk_skyblock_", ""): v for k, v in gv.items()}}
                samples.append(s)
                fmt = lambda v, d=1.0: "-" if v is None else "%.0f" % (v / d)  # noqa: E731
                print("%4d %8.1f %8.1f %8.1f %8s %8s %8s %9s %8.0f" % (
                    minute, mb(s["rss_kb"]), mb(s["hwm_kb"]), mb(s["anon_kb"] or 0),
                    fmt(s["items"]), fmt(s["live_listings"]), fmt(s["window_sales"]),
                    "-" if s["store_bytes"] is None else "%.1f" % (s["store_bytes"] / 2**20),
                    s["wall_s"]), flush=True)
        summaries = sum(len(f) for _, _, f in os.walk(os.path.join(work, "data", "skyblock",
                                                                    "summaries")))
        # The first hour closes 90 s after it ends (simulated minute 61.5):
        # from then on the window holds window_hours closed hours (or all
        # there are) and the open one, and each hour that closes pushes the
        # oldest out once window_hours are held.
        full_at = a.window_hours * 60 + 2
        full = [s for s in samples if s["minute"] >= full_at]
        verdict = {"pages": a.pages, "minutes": a.minutes, "window_hours": a.window_hours,
                   "summaries_written": summaries, "samples": samples}
        if len(full) >= 2:
            base = full[0]["rss_kb"]
            peak = max(s["rss_kb"] for s in full[1:])
            drift = mb(peak - base)
            verdict.update(window_full_at_minute=full[0]["minute"], rss_full_mb=mb(base),
                           rss_peak_after_mb=mb(peak), drift_mb=drift,
                           flat=drift <= a.flat_tolerance_mb)
            print("window full at minute %d: RSS %.1f MB; largest after it %.1f MB (%+.1f MB, "
                  "tolerance %.1f): %s" % (full[0]["minute"], mb(base), mb(peak), drift,
                                           a.flat_tolerance_mb,
                                           "flat" if verdict["flat"] else "NOT flat"))
            if a.strict and not verdict["flat"]:
                rc = 3
        else:
            print("the window was full for fewer than two samples: run more --minutes")
            verdict["flat"] = None
        print("%d hourly summaries written; %d sweeps in %.0f s of wall time" % (
            summaries, a.minutes, time.monotonic() - t0))
        os.makedirs(os.path.dirname(a.json), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(verdict, f, indent=1)
        if souk.stop() != 0:
            print("souk did not exit cleanly", file=sys.stderr)
            rc = rc or 1
    except Exception as e:  # noqa: BLE001 -- report and fail the bench
        print("skyblock_rss: not measured: %s" % e, file=sys.stderr)
        rc = 1
    finally:
        if souk:
            souk.kill()
        hyp.stop()
        fake.stop()
    return rc


if __name__ == "__main__":
    sys.exit(main())
