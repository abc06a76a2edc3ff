"""The futures scanner in the real souk binary, against the fake KuCoin
(tests/fakes/fake_kucoin.py) and the fake Discord:

* the ranking matches the README's score, computed here independently from
  the synthetic fixture;
* a 429 storm, an error code with HTTP 200 and slow scans (on a moved test
  clock) turn the health WARNING and then CRITICAL, in /scan status, on
  /metrics and in the periodic health report; the error code also reaches
  the alert webhook, whose URL never shows in the log;
* a top-list change is posted once, and not again while nothing changes,
  not even after a restart;
* it goes to every server's configured channel, including one this
  process never sees (a guild on another shard).
"""
import math
import re
import sqlite3
import subprocess
import time
from decimal import Decimal

import json
import pytest

from conftest import souk_config
from modtools import (ROOT, WAIT, AuxFake, TestClock, command, http_port, metric, metrics,
                      text_channels, wait_until)
from soukproc import souk_bin

FIX = ROOT / "tests" / "fixtures" / "marketdata" / "kucoin-futures"
SYNTH = FIX / "contracts-active-synthetic.json"
WEIGHTS = (0.4, 0.3, 0.15, 0.15)


@pytest.fixture
def kucoin_factory(tmp_path):
    fakes = []

    def make(*args):
        f = AuxFake(tmp_path / ("kucoin%d" % len(fakes)), "fake_kucoin.py", *args)
        fakes.append(f)
        return f
    yield make
    for f in fakes:
        f.stop()


def start(fake, souk_factory, kucoin, clock=None, name="souk", env=None, **scanner):
    cfg = dict({"enabled": True, "url": kucoin.base, "period": "60s"}, **scanner)
    e = dict(clock.env() if clock else {}, **(env or {}))
    s = souk_factory(fake, name=name, env=e,
                     config=souk_config(fake, f"{name}-data", scanner=cfg,
                                        health={"report_interval": "2s"}))
    fake.wait("ready", timeout=WAIT)
    # "registered", or "unchanged since the last registration" on a restart.
    s.wait_log("slash commands", timeout=WAIT)
    return s


def requests(kucoin):
    return kucoin.get("/_fake/requests")["requests"]


def status(fake):
    return command(fake, "scan", "status")


# ---- the score, computed here from the README's definition -----------------------

def reference_ranking(contracts, weights=WEIGHTS):
    rows = []
    for c in contracts:
        if c.get("status") != "Open" or c.get("quoteCurrency") != "USDT":
            continue
        turnover = float(Decimal(str(c["turnoverOf24h"])))
        oi = float(Decimal(c["openInterest"]) * Decimal(str(c["multiplier"])) *
                   Decimal(str(c["markPrice"])))
        rows.append({"symbol": c["symbol"], "turnover": turnover,
                     "f": [math.log10(1 + turnover), abs(float(c["priceChgPct"])),
                           abs(float(c["fundingFeeRate"])), math.log10(1 + oi)]})
    wsum = sum(weights)
    lo = [min(r["f"][i] for r in rows) for i in range(4)]
    hi = [max(r["f"][i] for r in rows) for i in range(4)]
    for r in rows:
        r["points"] = [100 * weights[i] * ((r["f"][i] - lo[i]) / (hi[i] - lo[i])
                                           if hi[i] > lo[i] else 0) / wsum for i in range(4)]
        r["score"] = round(sum(r["points"]), 4)
    rows.sort(key=lambda r: (-r["score"], -r["turnover"], r["symbol"]))
    return rows


LINE = re.compile(r"^#(\d+) (\S+) .* score (\d+\.\d\d)$")
WHY = re.compile(r"= T ([\d.]+) \+ M ([\d.]+) \+ F ([\d.]+) \+ OI ([\d.]+)$")


def parse_top(text):
    out = []
    for line in text.splitlines():
        m = LINE.match(line.strip())
        if m:
            out.append({"rank": int(m.group(1)), "symbol": m.group(2),
                        "score": float(m.group(3))})
            continue
        w = WHY.search(line.strip())
        if w and out:
            out[-1]["points"] = [float(w.group(i)) for i in range(1, 5)]
    return out


def test_ranking_matches_the_documented_score(fake_discord, souk_factory, kucoin_factory):
    fake = fake_discord
    kucoin = kucoin_factory("--contracts-file", SYNTH)
    s = start(fake, souk_factory, kucoin)
    s.wait_log("scan 1: 33 contracts", timeout=WAIT)
    ref = reference_ranking(json.loads(SYNTH.read_text())["data"])
    assert len(ref) == 33
    got = parse_top(command(fake, "scan", "top", n=25))
    assert [g["symbol"] for g in got] == [r["symbol"] for r in ref[:25]]
    assert [g["rank"] for g in got] == list(range(1, 26))
    for g, r in zip(got, ref):
        assert abs(g["score"] - r["score"]) <= 0.006, (g, r["score"])
        for a, b in zip(g["points"], r["points"]):
            assert abs(a - b) <= 0.006, (g["symbol"], g["points"], r["points"])
    # One contract in full: its normalised factors.
    sym = ref[3]["symbol"]
    text = command(fake, "scan", "contract", symbol=sym.lower())
    assert f"**{sym}** ranks #4 of 33" in text
    assert "Signals only" in text
    # Nothing but the one list was asked for: no keys, no orders.
    assert {r["path"] for r in requests(kucoin)} == {"/api/v1/contracts/active"}


def test_429_storm_turns_health_warning_then_critical(fake_discord, souk_factory,
                                                     kucoin_factory, tmp_path):
    fake = fake_discord
    kucoin = kucoin_factory()
    clock = TestClock(tmp_path / "clock")
    s = start(fake, souk_factory, kucoin, clock, backoff_max="30s")
    port = http_port(s)
    s.wait_log("scan 1: 40 contracts", timeout=WAIT)
    assert "**Futures scanner: HEALTHY**" in status(fake)
    kucoin.post("/_fake/script", {"responses": [{"status": 429, "repeat": -1, "reset_ms": 500}]})
    seen = {5: "WARNING", 10: "WARNING", 11: "CRITICAL"}
    for i in range(1, 12):
        # Each wait: the period first, then the 30 s backoff (backoff_max).
        clock.advance(61 if i == 1 else 31)
        wait_until(lambda: len(requests(kucoin)) == 1 + i, what=f"429 number {i}")
        # souk has taken the 429 in, and so timed its backoff from the clock
        # as it is now, before the clock moves again.
        s.wait_log(f"(429 number {i} in a row)", timeout=WAIT)
        if i in seen:
            text = wait_until(lambda: (lambda t: t if f"{i} errors in 15 min" in t else None)(
                status(fake)), what=f"{i} errors in status")
            assert f"**Futures scanner: {seen[i]}**" in text, text
            assert "breaker: closed" in text
    m = metrics(port)
    assert metric(m, "souk_scanner_health") == 2
    assert metric(m, "souk_scanner_errors_15m") == 11
    assert metric(m, "souk_scanner_errors_total", 'kind="rate_limited"') == 11
    # The periodic health report (every 2 s here) lists the scanner.
    wait_until(lambda: re.search(r"scanner\s+CRITICAL\s+avg scan", s.log_text()),
               what="the scanner in the health report")
    # Backing off: the one-second tick asks KuCoin nothing more.
    time.sleep(2.5)
    assert len(requests(kucoin)) == 12
    # The storm ends; 15 minutes later the errors have left the window.
    kucoin.post("/_fake/script/clear")
    clock.advance(31)
    s.wait_log("scan 2: 40 contracts", timeout=WAIT)
    clock.advance(15 * 60)
    assert "**Futures scanner: HEALTHY**" in status(fake)


def test_code_error_with_http_200_reaches_the_alert_webhook(fake_discord, souk_factory,
                                                            kucoin_factory, tmp_path):
    fake = fake_discord
    kucoin = kucoin_factory()
    hook = AuxFake(tmp_path / "hook", "fake_webhook.py")
    try:
        url = hook.base + "/api/webhooks/1234/S3CRET-hook-token/slack"
        clock = TestClock(tmp_path / "clock")
        s = start(fake, souk_factory, kucoin, clock, env={"SOUK_OPS_ALERTS_WEBHOOK_URL": url})
        s.wait_log("scan 1: 40 contracts", timeout=WAIT)
        kucoin.post("/_fake/script", {"responses": [{"code": "400100", "msg": "Parameter error"}]})
        clock.advance(61)
        wait_until(lambda: len(requests(kucoin)) == 2, what="the second request")
        post = wait_until(lambda: next((p for p in hook.get("/_fake/posts")["posts"]
                                        if "scanner.api" in (p["json"] or {}).get("text", "")),
                                       None), what="the alert at the webhook")
        assert post["status"] == 200 and post["path"].endswith("/slack")
        assert "400100" in post["json"]["text"] and "Parameter error" in post["json"]["text"]
        text = status(fake)
        assert "1 API" in text and "last error: code 400100: Parameter error" in text
        # The last good ranking still answers.
        assert "#1 " in command(fake, "scan", "top", n=3)
        # The webhook's URL is a secret: never in the log, nor in check-config.
        assert "S3CRET-hook-token" not in s.log_text()
        out = subprocess.run([souk_bin(), "check-config", "-c", s.config_path], cwd=s.workdir,
                             env=dict(s.env), capture_output=True, text=True, timeout=60)
        assert "alerts.webhook_url" in out.stdout + out.stderr
        assert "S3CRET-hook-token" not in out.stdout + out.stderr
        s.stop()
        assert "S3CRET-hook-token" not in s.log_text()
    finally:
        hook.stop()


def test_slow_scans_turn_health_warning_then_critical(fake_discord, souk_factory,
                                                     kucoin_factory, tmp_path):
    fake = fake_discord
    kucoin = kucoin_factory()
    clock = TestClock(tmp_path / "clock")
    # A long period, so only the scans the test starts run.
    s = start(fake, souk_factory, kucoin, clock, period="10m")
    s.wait_log("scan 1: 40 contracts", timeout=WAIT)
    def slow(n, seconds):
        kucoin.post("/_fake/script", {"responses": [{"delay_ms": 2000}]})
        clock.advance(601)
        s.wait_log(f"request {n} sent to KuCoin", timeout=WAIT)
        clock.advance(seconds)
        s.wait_log(f"scan {n}: 40 contracts", timeout=WAIT)

    def avg(text):
        return float(re.search(r"avg scan ([\d.]+) s", text).group(1))

    # The average of the last ten: (0 + 70) / 2 = 35 s, then
    # (0 + 70 + 220) / 3 = 96.7 s; each slow scan also took about 2 s of
    # real time (the fake's delay) on top of the jump.
    slow(2, 70)
    text = status(fake)
    assert "**Futures scanner: WARNING**" in text and 35 <= avg(text) < 38, text
    slow(3, 220)
    text = status(fake)
    assert "**Futures scanner: CRITICAL**" in text and 96.6 <= avg(text) < 99, text
    assert "0 errors in 15 min" in text


def test_top_list_changes_are_posted_once(fake_discord, souk_factory, kucoin_factory, tmp_path):
    fake = fake_discord
    kucoin = kucoin_factory("--contracts-file", SYNTH)
    clock = TestClock(tmp_path / "clock")
    g = fake.state(rest_log=False)["guilds"][0]
    cid = text_channels(g)[1]
    # The channel is in the configuration too, so the first scan, which
    # runs at start and may finish before /scan channel set is answered,
    # posts to it either way; the server's own setting of the same channel
    # must not make a second post.
    s = start(fake, souk_factory, kucoin, clock, top=5, post_every="0s", channel=str(cid))
    assert f"<#{cid}>" in command(fake, "scan", "set", group="channel", channel=cid)
    s.wait_log("scan 1: 33 contracts", timeout=WAIT)

    def posts():
        return [m for m in fake.messages(cid) if "Futures scanner" in (m.get("content") or "")]

    first = wait_until(lambda: posts() or None, what="the first post")[0]["content"]
    ref = reference_ranking(json.loads(SYNTH.read_text())["data"])
    top5 = [r["symbol"] for r in ref[:5]]
    quiet = ref[-1]["symbol"]
    for i, sym in enumerate(top5):
        assert f"▲ {sym} entered at #{i + 1}" in first
    assert "Signals only" in first
    # Nothing changes: no post, scan after scan.
    for n in (2, 3, 4):
        clock.advance(61)
        s.wait_log(f"scan {n}: 33 contracts", timeout=WAIT)
    time.sleep(1)
    assert len(posts()) == 1
    # A quiet contract wakes up: one post with who entered and who left.
    kucoin.post("/_fake/contracts", {quiet: {"turnoverOf24h": "9000000000",
                                                  "priceChgPct": "0.35",
                                                  "fundingFeeRate": "0.003"}})
    clock.advance(61)
    s.wait_log("scan 5: 33 contracts", timeout=WAIT)
    second = wait_until(lambda: posts()[1:] or None, what="the second post")[0]["content"]
    assert f"▲ {quiet} entered at #1" in second
    assert f"▼ {top5[4]} left (was #5)" in second
    # A restart reads what was posted: the same list is not posted again.
    s.stop()
    s2 = start(fake, souk_factory, kucoin, clock, name="souk", top=5, post_every="0s")
    s2.wait_log("scan 1: 33 contracts", timeout=WAIT)
    clock.advance(61)
    s2.wait_log("scan 2: 33 contracts", timeout=WAIT)
    time.sleep(1)
    assert len(posts()) == 2


def test_top_list_goes_to_servers_this_process_never_sees(fake_discord, souk_factory,
                                                          kucoin_factory, tmp_path):
    fake = fake_discord
    fake.config(shards=2, max_concurrency=2)
    while {(int(g["id"]) >> 22) % 2 for g in fake.state(rest_log=False)["guilds"]} != {0, 1}:
        fake.add_guild(name="More")
    guilds = fake.state(rest_log=False)["guilds"]
    far = next(g for g in guilds if (int(g["id"]) >> 22) % 2 == 1)
    cid = text_channels(far)[1]
    kucoin = kucoin_factory("--contracts-file", SYNTH)
    db = tmp_path / "shared.db"

    def run():
        # Shard 0 only: the guild on shard 1 never reaches this process.
        cfg = souk_config(fake, tmp_path / "souk-data", store={"url": f"sqlite://{db}"},
                          discord={"shards": {"count": 2, "first": 0, "last": 0}},
                          scanner={"enabled": True, "url": kucoin.base, "period": "60s",
                                   "top": 5, "post_every": "0s"})
        s = souk_factory(fake, name="souk", config=cfg)
        s.wait_log("slash commands", timeout=WAIT)
        return s

    s = run()
    assert s.stop() == 0
    # The channel was set for that guild earlier (by the process of its shard).
    c = sqlite3.connect(str(db))
    with c:
        c.execute("INSERT INTO settings (scope_id, key, value, set_by, updated_at) "
                  "VALUES (?, 'scanner.channel', ?, ?, ?)",
                  (int(far["id"]), cid, int(far["owner_id"]), int(time.time() * 1000)))
    c.close()
    s = run()
    s.wait_log("scan 1: 33 contracts", timeout=WAIT)
    post = wait_until(lambda: [m for m in fake.messages(cid)
                               if "Futures scanner" in (m.get("content") or "")] or None,
                      what="the post in the unseen guild's channel")[0]["content"]
    assert "entered at #1" in post
    assert s.stop() == 0
