"""The SkyBlock module through the real binary, against the fake Hypixel
(tests/fakes/fake_hypixel.py) and the fake Discord: from a listing to the
alert, each dedupe rule and a restart in between, a manipulated market that
must not move the value, 404/503/slow pages and pages that disagree on
lastUpdated, DMs refused, and `souk console` on the simulated market."""
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import souk_config
from soukproc import TEST_TOKEN, sanitized, souk_bin

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "fakes" / "fake_hypixel.py"
PYTHON = "/usr/bin/python3"
WAIT = 90 if sanitized() else 40
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# A real item of the captured page: the Gold Gift Talisman (18.5M there).
ITEM = 96
SELLER = "5e11e75e11e75e11e75e11e75e11e75e"


class FakeHypixel:
    def __init__(self, workdir, *args):
        workdir.mkdir(parents=True, exist_ok=True)
        pf = workdir / "fh.port"
        self.log = open(workdir / "fake_hypixel.log", "wb")
        self.proc = subprocess.Popen([PYTHON, str(FAKE), "--port", "0", "--port-file", str(pf),
                                      *args], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not pf.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("fake_hypixel did not start")
            time.sleep(0.02)
        self.base = "http://127.0.0.1:%d" % int(pf.read_text())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def get(self, path):
        with _OPENER.open(self.base + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path, body=None):
        req = urllib.request.Request(self.base + path, data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with _OPENER.open(req, timeout=30) as r:
            return json.loads(r.read())

    def requests(self, since=0):
        return self.get("/_fake/requests?since=%d" % since)["requests"]

    def refresh(self):
        return self.post("/_fake/refresh")["last_updated"]


@pytest.fixture
def hypixel(tmp_path, request):
    marker = request.node.get_closest_marker("hypixel_args")
    args = list(marker.args) if marker else ["--pages", "3", "--paused", "--no-market",
                                              "--no-refresh-jitter"]
    f = FakeHypixel(tmp_path / "hypixel", *args)
    yield f
    f.stop()


def sky_config(fake, hypixel, data_dir, channel, **sky):
    base = {"source": "live", "api_url": hypixel.base, "interval": "2s",
            "sniper": {"channels": [channel]}, "fmv": {"min_sales": 3}}
    for k, v in sky.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = dict(base[k], **v)
        else:
            base[k] = v
    return souk_config(fake, data_dir, skyblock=base)


def guild_channel(fake):
    g = fake.state(rest_log=False)["guilds"][0]
    return g["id"], g["channels"][0]["id"]


def metrics(s):
    line = s.wait_log("listening on", timeout=WAIT)[0]
    port = int(re.search(r":(\d+)\"?$", line.rstrip('"')).group(1))
    with _OPENER.open("http://127.0.0.1:%d/metrics" % port, timeout=10) as resp:
        return resp.read().decode()


def metric(body, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), body, re.M)
    return float(m.group(1)) if m else None


def wait_metric(s, name, pred, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        v = metric(metrics(s), name)
        if v is not None and pred(v):
            return v
        if time.monotonic() > deadline:
            raise AssertionError("%s never satisfied the test (last %r); log tail:\n%s" % (
                name, v, "\n".join(s.lines[-30:])))
        time.sleep(0.2)


def wait_sweep_of(s, lu, timeout=WAIT):
    """Wait until a complete sweep of lastUpdated lu was applied."""
    return s.wait_log("of lastUpdated %d: complete" % lu, timeout=timeout)


def alerts(fake, channel):
    return [m for m in fake.messages(channel) if m.get("embeds")
            and m["embeds"][0].get("title", "").startswith("Snipe:")]


def market_with_value(hypixel, price=10_000_000):
    """Five sales around price by ten accounts, and four listings above it."""
    hypixel.post("/_fake/sales", {"template": ITEM, "sales": [
        {"price": price + k * 10_000, "seller": "%032x" % (0xa0 + k),
         "buyer": "%032x" % (0xb0 + k)} for k in range(5)]})
    for k in range(4):
        hypixel.post("/_fake/list", {"template": ITEM, "price": price + 500_000 + k * 100_000,
                                     "seller": "%032x" % (0xc0 + k)})
    return hypixel.refresh()


PARQUET = ROOT / "tests" / "parquet"


def read_back(summaries, expect, workdir):
    """Read every hourly summary under summaries with the two independent
    Parquet readers of tests/parquet (hyparquet and DuckDB, from npm):
    tests/parquet/summary.test.mjs checks the hive layout, every value, each
    column chunk's min/max/null count against the rows, and expect (the
    files with their rows, and rows this test knows)."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are needed to read the summaries back (apt-get install npm)")
    if not (PARQUET / "node_modules" / "hyparquet").is_dir():
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=PARQUET, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, "npm ci in tests/parquet failed:\n" + r.stderr
    ef = workdir / "expect.json"
    ef.write_text(json.dumps(expect))
    r = subprocess.run(["node", "--test", "summary.test.mjs"], cwd=PARQUET, capture_output=True,
                       text=True, timeout=300,
                       env=dict(os.environ, SOUK_PQ_SUMMARIES=str(summaries),
                                SOUK_PQ_EXPECT=str(ef)))
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert re.search(r"^# fail 0$", r.stdout, re.M) and not re.search(r"^# skipped [1-9]", r.stdout,
                                                                        re.M), r.stdout


def start_live(fake, hypixel, souk_factory, tmp_path, name="souk", **sky):
    gid, ch = guild_channel(fake)
    cfg = sky_config(fake, hypixel, tmp_path / "data", ch, **sky)
    s = souk_factory(fake, name=name, config=cfg)
    fake.wait("ready", timeout=WAIT)
    return s, gid, ch


def test_listing_to_alert_and_each_dedupe_rule(fake_discord, hypixel, souk_factory, tmp_path):
    fake = fake_discord
    # Every refresh moves the fake's clock a minute: listings stay young
    # enough to be judged again after the restart below.
    s, gid, ch = start_live(fake, hypixel, souk_factory, tmp_path,
                            sniper={"max_listing_age": "1h"})
    wait_sweep_of(s, hypixel.get("/_fake/state")["last_updated"])
    lu = market_with_value(hypixel)
    wait_sweep_of(s, lu)
    assert alerts(fake, ch) == []
    # A new BIN listing far under the value: one alert, from this page.
    snipe = hypixel.post("/_fake/list", {"template": ITEM, "price": 3_000_000,
                                         "seller": SELLER})["uuid"]
    lu = hypixel.refresh()
    fake.wait_for(lambda _st: alerts(fake, ch), timeout=WAIT, what="the alert")
    [msg] = alerts(fake, ch)
    emb = msg["embeds"][0]
    assert emb["title"] == "Snipe: Gold Gift Talisman"
    assert "/viewauction %s" % snipe in emb["description"]
    f = {x["name"]: x["value"] for x in emb["fields"]}
    assert f["Price"] == "3,000,000 coins"
    # The median of the five sales: 10,020,000.
    assert f["Fair value"].startswith("10,020,000 coins each: median of 5 sales in 12 h"), f
    # 2% listing fee + 1% claim tax on 10,020,000 is 300,600.
    assert f["Profit"].startswith("6,719,400 coins") and "300,600 in fees" in f["Profit"], f
    assert f["Seller"] == "`%s`" % SELLER
    # The four listings above it, and the real page's Gold Gift Talismans.
    assert f["Floor"].startswith("next BIN 10,500,000; 4 within 10% of it;"), f
    assert int(re.search(r"(\d+) listed", f["Floor"]).group(1)) >= 5, f
    # Rule 1: one alert per auction uuid, however often it is seen.
    for _ in range(2):
        wait_sweep_of(s, hypixel.refresh())
    assert len(alerts(fake, ch)) == 1
    # Rule 2: the same seller's same item again only 10% cheaper or more.
    # (Each listing is bought or withdrawn before the next: a cheap listing
    # still up is the floor, and caps the value of the next one.)
    hypixel.post("/_fake/sell", {"uuid": snipe, "buyer": "b" * 32})
    wait_sweep_of(s, hypixel.refresh())
    worse = hypixel.post("/_fake/list", {"template": ITEM, "price": 2_800_000,
                                         "seller": SELLER})["uuid"]
    wait_sweep_of(s, hypixel.refresh())
    assert len(alerts(fake, ch)) == 1
    body = metrics(s)
    assert metric(body, 'souk_skyblock_verdicts_total{verdict="same_seller"}') == 1
    hypixel.post("/_fake/expire", {"uuid": worse})
    wait_sweep_of(s, hypixel.refresh())
    better = hypixel.post("/_fake/list", {"template": ITEM, "price": 2_700_000,
                                          "seller": SELLER})["uuid"]
    hypixel.refresh()
    fake.wait_for(lambda _st: len(alerts(fake, ch)) == 2, timeout=WAIT, what="a better price")
    assert better in alerts(fake, ch)[1]["embeds"][0]["description"]
    hypixel.post("/_fake/expire", {"uuid": better})
    wait_sweep_of(s, hypixel.refresh())
    # Another seller at the first price is another alert.
    other = hypixel.post("/_fake/list", {"template": ITEM, "price": 3_000_000,
                                         "seller": "0" * 31 + "7"})["uuid"]
    hypixel.refresh()
    fake.wait_for(lambda _st: len(alerts(fake, ch)) == 3, timeout=WAIT, what="another seller")
    assert other in alerts(fake, ch)[2]["embeds"][0]["description"]
    body = metrics(s)
    assert metric(body, 'souk_skyblock_verdicts_total{verdict="alert"}') == 3
    assert metric(body, "souk_skyblock_alerts_total") == 3
    # The alert was judged as its page arrived: latency is measured.
    assert 0 < metric(body, "souk_skyblock_alert_latency_seconds") < 1

    # A restart in between: the dedupe state survives, so the listings seen
    # again (new to the fresh process, still young) are not alerted again.
    assert s.stop() == 0
    s2, _, _ = start_live(fake, hypixel, souk_factory, tmp_path, name="souk2",
                          sniper={"max_listing_age": "1h"})
    # Same data dir: start_live builds the config from tmp_path / "data".
    assert s2.workdir != s.workdir
    s2.wait_log("sniper state: 3 alerted auctions", timeout=WAIT)
    s2.wait_log("checkpoint loaded", timeout=WAIT)
    wait_sweep_of(s2, hypixel.get("/_fake/state")["last_updated"])
    body = metrics(s2)
    # The third alert's listing is still up: judged again, a duplicate.
    assert metric(body, 'souk_skyblock_verdicts_total{verdict="duplicate"}') == 1
    assert metric(body, 'souk_skyblock_verdicts_total{verdict="alert"}') == 0
    assert len(alerts(fake, ch)) == 3
    # ... while a new snipe still alerts after the restart (valued against
    # the 3M listing still up: the floor).
    late = hypixel.post("/_fake/list", {"template": ITEM, "price": 1_000_000,
                                        "seller": "0" * 31 + "9"})["uuid"]
    hypixel.refresh()
    fake.wait_for(lambda _st: len(alerts(fake, ch)) == 4, timeout=WAIT, what="after restart")
    assert late in alerts(fake, ch)[3]["embeds"][0]["description"]
    assert s2.stop() == 0


def callbacks(fake, iid):
    out = []
    for r in fake.requests():
        if r["method"] == "POST" and f"/interactions/{iid}/" in r["path"]:
            body = r.get("body")
            out.append(json.loads(body) if isinstance(body, str) else body)
    return out


def answer(fake, r):
    """The data of the answer to interaction r."""
    fake.wait_for(lambda _st: callbacks(fake, r["id"]), timeout=WAIT,
                  what=f"a callback for {r['id']}")
    return callbacks(fake, r["id"])[0]["data"]


def ah_price(fake, value):
    return answer(fake, fake.interaction("ah", options=[{"name": "price", "type": 1, "options": [
        {"name": "item", "type": 3, "value": value}]}]))


def test_manipulated_market_does_not_move_the_value(fake_discord, hypixel, souk_factory,
                                                    tmp_path):
    fake = fake_discord
    s, gid, ch = start_live(fake, hypixel, souk_factory, tmp_path)
    wait_sweep_of(s, hypixel.get("/_fake/state")["last_updated"])
    wait_sweep_of(s, market_with_value(hypixel))
    # Autocomplete finds the item by its name and gives its key as value.
    choices = answer(fake, fake.interaction("ah", type=4, options=[
        {"name": "price", "type": 1, "options": [
            {"name": "item", "type": 3, "value": "gold gift", "focused": True}]}]))["choices"]
    assert choices and choices[0]["name"].startswith("Gold Gift Talisman")
    key = choices[0]["value"]
    before = ah_price(fake, key)["embeds"][0]
    fv = {x["name"]: x["value"] for x in before["fields"]}
    assert fv["Fair value"].startswith("10,020,000 coins: median of 5 sales"), fv
    # Two accounts trade the item back and forth at ten times its price.
    a, b = "ab" * 16, "cd" * 16
    hypixel.post("/_fake/manipulate", {"template": ITEM, "accounts": [a, b],
                                       "price": 100_000_000, "per_refresh": 6, "refreshes": 3})
    for _ in range(3):
        wait_sweep_of(s, hypixel.refresh())
    after = ah_price(fake, key)["embeds"][0]
    fa = {x["name"]: x["value"] for x in after["fields"]}
    assert fa["Fair value"] == fv["Fair value"], (fv, fa)
    assert "18 back-and-forth" in fa["Left out (manipulation guard)"], fa
    # A listing at 3x the value but under the pumped price is no snipe.
    hypixel.post("/_fake/list", {"template": ITEM, "price": 30_000_000, "seller": SELLER})
    wait_sweep_of(s, hypixel.refresh())
    assert alerts(fake, ch) == []
    assert s.stop() == 0


def sniper_settings(fake, guild, permissions, **opts):
    types = {int: 4, bool: 5}
    options = [{"name": k, "type": 7 if k == "channel" else types.get(type(v), 3), "value": v}
               for k, v in opts.items()]
    return answer(fake, fake.interaction(
        "sniper", guild_id=guild["id"], user_id=guild["owner_id"], permissions=permissions,
        options=[{"name": "settings", "type": 1, "options": options}]))


def test_admin_sniper_settings_route_and_filter_alerts(fake_discord, hypixel, souk_factory,
                                                       tmp_path):
    """/sniper settings needs Manage Server; a server's channel gets the
    alerts that pass its own thresholds, which may ask more than the bot's."""
    fake = fake_discord
    s, gid, ch = start_live(fake, hypixel, souk_factory, tmp_path, sniper={"channels": []})
    g = fake.state(rest_log=False)["guilds"][0]
    ch2 = g["channels"][1]["id"]
    wait_sweep_of(s, hypixel.get("/_fake/state")["last_updated"])
    r = sniper_settings(fake, g, "0", channel=ch2)
    assert r["flags"] == 64 and "Manage Server" in r["content"], r
    r = sniper_settings(fake, g, str(1 << 3), channel=ch2, min_profit=8_000_000)
    assert r["content"].startswith("Saved."), r
    assert re.search(r"Least profit: 8,?000,?000 coins", r["content"]), r
    assert ch2 in r["content"], r
    wait_sweep_of(s, market_with_value(hypixel))
    # 3M against a value of 10,020,000: 6,719,400 of profit, under the
    # server's 8M: judged an alert (the bot's minimum is 1M), not posted.
    cheap = hypixel.post("/_fake/list", {"template": ITEM, "price": 3_000_000,
                                         "seller": SELLER})["uuid"]
    wait_sweep_of(s, hypixel.refresh())
    assert metric(metrics(s), 'souk_skyblock_verdicts_total{verdict="alert"}') == 1
    time.sleep(1.0)
    assert alerts(fake, ch2) == [] and alerts(fake, ch) == []
    # Gone again (else it is the floor that caps the next one's value); 1M
    # makes 8,719,400: posted in the server's channel, nowhere else.
    hypixel.post("/_fake/expire", {"uuid": cheap})
    wait_sweep_of(s, hypixel.refresh())
    snipe = hypixel.post("/_fake/list", {"template": ITEM, "price": 1_000_000,
                                         "seller": "0" * 31 + "5"})["uuid"]
    hypixel.refresh()
    fake.wait_for(lambda _st: alerts(fake, ch2), timeout=WAIT, what="the server's alert")
    [msg] = alerts(fake, ch2)
    assert snipe in msg["embeds"][0]["description"]
    assert alerts(fake, ch) == []
    # Alerts off: the next snipe is judged and not posted.
    r = sniper_settings(fake, g, str(1 << 3), alerts=False)
    assert "Alerts: " in r["content"], r
    hypixel.post("/_fake/expire", {"uuid": snipe})
    wait_sweep_of(s, hypixel.refresh())
    hypixel.post("/_fake/list", {"template": ITEM, "price": 900_000, "seller": "0" * 31 + "6"})
    wait_sweep_of(s, hypixel.refresh())
    assert metric(metrics(s), 'souk_skyblock_verdicts_total{verdict="alert"}') == 3
    time.sleep(1.0)
    assert len(alerts(fake, ch2)) == 1
    assert s.stop() == 0


@pytest.mark.hypixel_args("--pages", "8", "--paused", "--no-market", "--no-refresh-jitter")
def test_faults_404_503_slow_and_disagreeing_pages(fake_discord, hypixel, souk_factory, tmp_path):
    fake = fake_discord
    s, gid, ch = start_live(fake, hypixel, souk_factory, tmp_path)
    lu = hypixel.get("/_fake/state")["last_updated"]
    wait_sweep_of(s, lu)
    st = hypixel.get("/_fake/state")
    # At most skyblock.concurrency (4) requests at once, never more.
    assert st["max_inflight"] <= 4
    # A slow page: the sweep waits for it and completes.
    hypixel.post("/_fake/script", {"endpoint": "auctions", "page": 3,
                                   "responses": [{"delay_ms": 2500}]})
    lu = hypixel.refresh()
    wait_sweep_of(s, lu)
    assert 2 <= hypixel.get("/_fake/state")["max_inflight"] <= 4
    # Pages that disagree on lastUpdated restart the sweep.
    lu = hypixel.refresh()
    hypixel.post("/_fake/stale", {"pages": [5], "count": 1})
    wait_sweep_of(s, lu)
    assert wait_metric(s, "souk_skyblock_sweep_restarts_total", lambda v: v >= 1) >= 1
    # 404 past the last page ends the sweep there.
    hypixel.post("/_fake/script", {"endpoint": "auctions", "page": 7, "responses": [
        {"status": 404, "body": {"success": False, "cause": "Page not found"}}]})
    lu = hypixel.refresh()
    wait_sweep_of(s, lu)
    # 503 while not populated: the poller waits (5 s, then 10 s), never hammers.
    n0 = len(hypixel.requests())
    hypixel.post("/_fake/populated", {"populated": False, "count": 2})
    lu = hypixel.refresh()
    wait_sweep_of(s, lu, timeout=WAIT + 20)
    log = hypixel.requests(n0)
    codes = [(r["at"], r["status"]) for r in log if r["endpoint"] == "auctions"]
    bad = [i for i, (_, c) in enumerate(codes) if c == 503]
    assert len(bad) == 2, codes
    gap1 = codes[bad[1]][0] - codes[bad[0]][0]
    gap2 = codes[bad[1] + 1][0] - codes[bad[1]][0]
    assert gap1 >= 4.5 and gap2 >= 9.5, (gap1, gap2)
    # Over reused connections: about one per request in flight at once,
    # not one per request.
    asked = [r for r in hypixel.requests() if r["endpoint"] in ("auctions", "auctions_ended")]
    conns = {r["conn"] for r in asked}
    assert len(asked) >= 40 and len(conns) <= 10, (len(asked), sorted(conns))
    body = metrics(s)
    assert metric(body, "souk_skyblock_not_populated_total") == 2
    assert metric(body, "souk_skyblock_sweeps_complete_total") >= 5
    text = answer(fake, fake.interaction("sniper_status"))["content"]
    assert "source: live" in text and "2 not populated (503)" in text
    assert re.search(r"Auctions: [\d,]+ live", text) and "items tracked" in text
    assert "restarts" in text and "suppressed:" in text and "Memory: RSS" in text
    assert s.stop() == 0


def test_sniper_watch_filters_choose_who_gets_the_dm(fake_discord, hypixel, souk_factory,
                                                     tmp_path):
    """/sniper watch's filters: the item's words, the least profit and the
    most price each keep a subscriber's DM away from snipes outside them."""
    fake = fake_discord
    s, gid, ch = start_live(fake, hypixel, souk_factory, tmp_path)
    wait_sweep_of(s, hypixel.get("/_fake/state")["last_updated"])
    members = [u for u in fake.state(rest_log=False)["guilds"][0]["member_ids"]
               if u != fake.bot_user_id]
    cheap_only, rich_only, other_item = members[0], members[1], members[2]
    subs = {cheap_only: [("item", 3, "gold gift"), ("max_price", 4, 2_000_000)],
            rich_only: [("item", 3, "gold gift"), ("min_profit", 4, 8_000_000)],
            other_item: [("item", 3, "hyperion")]}
    for uid, opts in subs.items():
        got = answer(fake, fake.interaction("sniper", user_id=uid, guild_id=gid, channel_id=ch,
                                            options=[{"name": "watch", "type": 1, "options": [
                                                {"name": n, "type": t, "value": v}
                                                for n, t, v in opts]}]))
        assert "You will get a DM" in got["content"], got

    def dms_of(uid):
        cid = fake.state(rest_log=False)["actions"]["dm_channels"].get(uid)
        return [m for m in fake.messages(cid) if m.get("embeds")] if cid else []

    wait_sweep_of(s, market_with_value(hypixel))
    # 3M: 6,719,400 of profit.  Over cheap_only's price, under rich_only's
    # profit, not other_item's item: the channel's alert only.
    first = hypixel.post("/_fake/list", {"template": ITEM, "price": 3_000_000,
                                         "seller": SELLER})["uuid"]
    hypixel.refresh()
    fake.wait_for(lambda _st: len(alerts(fake, ch)) == 1, timeout=WAIT, what="the alert")
    time.sleep(1.0)
    assert [dms_of(u) for u in members[:3]] == [[], [], []]
    # 1M (the first bought meanwhile): 8,719,400 of profit, both gold gift
    # subscribers get it by DM, the other does not.
    hypixel.post("/_fake/sell", {"uuid": first, "buyer": "b" * 32})
    wait_sweep_of(s, hypixel.refresh())
    snipe = hypixel.post("/_fake/list", {"template": ITEM, "price": 1_000_000,
                                         "seller": "1" * 32})["uuid"]
    hypixel.refresh()
    fake.wait_for(lambda _st: dms_of(cheap_only) and dms_of(rich_only), timeout=WAIT,
                  what="the DMs")
    for uid in (cheap_only, rich_only):
        [dm] = dms_of(uid)
        assert snipe in dm["embeds"][0]["description"]
    time.sleep(1.0)
    assert dms_of(other_item) == []
    assert s.stop() == 0


def test_dm_refused_pauses_and_says_so(fake_discord, hypixel, souk_factory, tmp_path):
    fake = fake_discord
    s, gid, ch = start_live(fake, hypixel, souk_factory, tmp_path)
    wait_sweep_of(s, hypixel.get("/_fake/state")["last_updated"])
    members = [u for u in fake.state(rest_log=False)["guilds"][0]["member_ids"]
               if u != fake.bot_user_id]
    closed, open_ = members[0], members[1]
    for uid in (closed, open_):
        got = answer(fake, fake.interaction("sniper", user_id=uid, guild_id=gid, channel_id=ch,
                                            options=[{"name": "watch", "type": 1, "options": [
                                                {"name": "item", "type": 3,
                                                 "value": "gold gift"}]}]))
        assert "You will get a DM for every snipe of `gold gift`" in got["content"]
    fake.post("/_fake/users/%s/dms" % closed, {"open": False})
    wait_sweep_of(s, market_with_value(hypixel))
    n0 = len(fake.requests())
    first = hypixel.post("/_fake/list", {"template": ITEM, "price": 3_000_000,
                                         "seller": SELLER})["uuid"]
    hypixel.refresh()
    # The user whose DMs are open gets the alert by DM.
    fake.wait_for(lambda _st: len(alerts(fake, ch)) == 1, timeout=WAIT, what="the alert")
    note = fake.wait_for(lambda _st: [m for m in fake.messages(ch)
                                      if "DMs are closed" in (m.get("content") or "")],
                         timeout=WAIT, what="the note in the channel")
    assert note[0]["content"].startswith("<@%s>" % closed)
    assert "paused" in note[0]["content"]
    dm_posts = [r for r in fake.requests(n0) if r["method"] == "POST"
                and re.search(r"/channels/\d+/messages$", r["path"]) and r["status"] in (200, 403)]
    refused = [r for r in dm_posts if r["status"] == 403]
    assert len(refused) == 1
    # Another snipe (the first one bought meanwhile): the paused user is not
    # asked again, the other is.
    hypixel.post("/_fake/sell", {"uuid": first, "buyer": "b" * 32})
    wait_sweep_of(s, hypixel.refresh())
    n1 = len(fake.requests())
    hypixel.post("/_fake/list", {"template": ITEM, "price": 2_500_000, "seller": "1" * 32})
    hypixel.refresh()
    fake.wait_for(lambda _st: len(alerts(fake, ch)) == 2, timeout=WAIT, what="second alert")
    time.sleep(1)
    later = [r for r in fake.requests(n1) if r["status"] == 403]
    assert later == []
    body = metrics(s)
    assert metric(body, "souk_skyblock_dm_refused_total") == 1
    dms = [m for m in fake.messages() if m.get("embeds") and m["channel_id"] != ch
           and m["embeds"][0].get("title", "").startswith("Snipe:")]
    assert len(dms) == 2  # both snipes reached the user with open DMs
    # /sniper list shows the pause to the user.
    got = answer(fake, fake.interaction("sniper", user_id=closed, guild_id=gid, channel_id=ch,
                                        options=[{"name": "list", "type": 1}]))
    assert "PAUSED" in got["content"]
    assert s.stop() == 0


def test_console_shows_snipes_and_prices_offline(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("core:\n  data_dir: ./d\nskyblock:\n  sim:\n    interval: 300ms\n")
    env = dict(os.environ)
    env.pop("SOUK_DISCORD_TOKEN", None)
    p = subprocess.Popen([souk_bin(), "console", "-c", str(cfg)], cwd=tmp_path, env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        # Snipes come to whoever watches: in the console, as DMs it prints.
        p.stdin.write("/sniper watch\n")
        p.stdin.flush()
        out = ""
        deadline = time.monotonic() + WAIT
        while "Snipe:" not in out or "/viewauction" not in out:
            assert time.monotonic() < deadline, out[-3000:]
            r, _, _ = select.select([p.stdout], [], [], 0.5)
            if r:
                out += os.read(p.stdout.fileno(), 65536).decode()
        name = re.search(r"Snipe: (.+)", out).group(1).strip()
        p.stdin.write('/ah price item:"%s"\n/sniper_status\n/watchlist\n' % name)
        p.stdin.close()  # end of input: the console quits after these
        while True:
            assert time.monotonic() < deadline + WAIT, out[-3000:]
            chunk = os.read(p.stdout.fileno(), 65536).decode()
            if not chunk:
                break
            out += chunk
        p.wait(timeout=WAIT)
        err = p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    # The alert, the value with its method and evidence, and the status.
    assert "Fair value:" in out and "Profit:" in out and "Seller:" in out
    tail = out[out.index("/viewauction"):]
    assert re.search(r"Fair value: [\d,]+ coins: (median of \d+ sales|lowest BIN|2nd-lowest)",
                     tail), tail[:2000]
    assert "source: sim (offline simulated market)" in tail
    assert re.search(r"Alerts: [1-9]\d* sent", tail)
    assert "Most active items" in tail
    assert "You will get a DM for every snipe" in out
    # Nothing went to the network: no live source in the console.
    assert "api.hypixel.net" not in err


def test_hour_summary_spool_and_replay(fake_discord, hypixel, souk_factory, tmp_path):
    """An hour closes into a Parquet summary; the raw spool of the same pages,
    replayed with `souk skyblock replay`, rebuilds that hour with the same
    items."""
    fake = fake_discord
    s, gid, ch = start_live(fake, hypixel, souk_factory, tmp_path, spool=True)
    wait_sweep_of(s, hypixel.get("/_fake/state")["last_updated"])
    wait_sweep_of(s, market_with_value(hypixel))
    # The next hour, and its 90 s of grace: the hour closes at this sweep.
    state = hypixel.get("/_fake/state")
    to_next = 3_600_000 - state["fake_ms"] % 3_600_000 + 120_000
    hypixel.post("/_fake/clock", {"advance_ms": to_next})
    lu = hypixel.refresh()
    wait_sweep_of(s, lu)
    line = s.wait_log("hourly summary written", timeout=WAIT)[0]
    m = re.search(r"written: (\S+/date=[\d-]+/hour=\d\d/part-souk\.parquet) \((\d+) items\)", line)
    assert m, line
    path, items = Path(m.group(1)), int(m.group(2))
    if not path.is_absolute():
        path = Path(s.workdir) / path
    data = path.read_bytes()
    assert data[:4] == b"PAR1" and data[-4:] == b"PAR1" and len(data) < 1_000_000
    # The checkpoint was saved right after the hour closed.
    s.wait_log("comp=skyblock", timeout=WAIT)
    assert s.stop() == 0
    spool = tmp_path / "data" / "skyblock" / "spool"
    files = sorted(spool.glob("raw-*.ndjson.zst"))
    assert files, list(spool.iterdir())
    out = tmp_path / "replayed"
    r = subprocess.run([souk_bin(), "skyblock", "replay", str(spool), str(out), "-c",
                        s.config_path], cwd=s.workdir, capture_output=True, text=True,
                       timeout=WAIT * 2, env=s.env)
    assert r.returncode == 0, r.stderr + r.stdout
    rel = path.relative_to(path.parents[2])  # date=.../hour=.../part-souk.parquet
    assert ("%s: %d items" % (out / rel, items)) in r.stdout, r.stdout
    assert (out / rel).read_bytes()[:4] == b"PAR1"
    assert re.search(r"replay: \d+ files, [1-9]\d* auction pages", r.stdout)
    # Both files, read back by hyparquet and DuckDB.  The five sales of
    # market_with_value are in the closed hour: count, volume, min and max
    # as they were sold.
    hour_ms = (state["fake_ms"] // 3_600_000) * 3_600_000
    sold = [10_000_000 + k * 10_000 for k in range(5)]
    known = [{"where": {"hour_start": str(hour_ms), "name": "Gold Gift Talisman", "sales": 5},
              "want": {"volume": str(sum(sold)), "sale_min": str(min(sold)),
                       "sale_max": str(max(sold)), "sale_median": str(sold[2])}}]
    live_root = tmp_path / "data" / "skyblock" / "summaries"
    read_back(live_root, {"files": {str(rel): items}, "rows": known}, tmp_path)
    replayed = {str(Path(p).relative_to(out)): int(n)
                for p, n in re.findall(r"^  (\S+\.parquet): (\d+) items$", r.stdout, re.M)}
    assert replayed.get(str(rel)) == items, r.stdout
    read_back(out, {"files": replayed, "rows": known}, tmp_path)


def test_retention_oldest_first_within_the_cap(fake_discord, hypixel, souk_factory, tmp_path):
    """The storage janitor applies the module's retentions (summaries 30
    days, spool 2 hours) and the disk cap with its headroom (the seed's
    cap_gb and headroom_gb, whole GB, are these keys), deleting the oldest
    partitions first."""
    fake = fake_discord
    gid, ch = guild_channel(fake)
    data = tmp_path / "data"
    sky = data / "skyblock"
    now = time.time()
    day = lambda d: time.strftime("%Y-%m-%d", time.gmtime(now - d * 86400))  # noqa: E731
    hour = lambda h: time.strftime("%Y%m%d%H", time.gmtime(now - h * 3600))  # noqa: E731
    parts = {}
    for d in (40, 5, 4, 3, 2):
        f = sky / "summaries" / ("date=%s" % day(d)) / "hour=05" / "part-souk.parquet"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"PAR1" + bytes(100_000) + b"PAR1")
        parts[d] = f.parent.parent
    spool = sky / "spool"
    spool.mkdir(parents=True)
    (spool / ("raw-%s.ndjson.zst" % hour(5))).write_bytes(bytes(1000))
    (spool / ("raw-%s.ndjson.zst" % hour(0))).write_bytes(bytes(1000))
    # After the retentions, four summaries of about 108 KB (the file and
    # two directories) are over a cap of 320 KB, and the janitor deletes
    # down to 270 KB: the two oldest go.
    cfg = sky_config(fake, hypixel, data, ch)
    cfg["janitor"] = {"cap": "320KB", "headroom_size": "50KB"}
    s = souk_factory(fake, config=cfg)
    fake.wait("ready", timeout=WAIT)
    # /admin answers the application's owners, known once souk has asked.
    s.wait_log("owner-only commands answer", timeout=WAIT)
    g = fake.state(rest_log=False)["guilds"][0]
    r = answer(fake, fake.interaction("admin", user_id=g["owner_id"], options=[
        {"name": "janitor", "type": 1}]))
    text = r["content"]
    assert re.search(r"set skyblock.summaries: 5 partitions, \d+ bytes; deleted 3", text), text
    assert re.search(r"set skyblock.spool: 2 partitions, \d+ bytes; deleted 1", text), text
    assert not parts[40].exists() and not parts[5].exists() and not parts[4].exists()
    assert parts[3].exists() and parts[2].exists()
    assert sorted(p.name for p in spool.iterdir()) == ["raw-%s.ndjson.zst" % hour(0)]
    assert s.stop() == 0


def test_check_config_names_the_seed_aliases(tmp_path):
    """The seed's soft_rss_mb, cap_gb and headroom_gb are the memory guard's
    and the janitor's keys under other names: check-config says which key
    each sets, and refuses both names at once."""
    cfg = tmp_path / "souk.yaml"
    cfg.write_text("core:\n  data_dir: %s\nskyblock:\n  soft_rss_mb: 300\n  cap_gb: 5\n"
                   "  headroom_gb: 1\n" % (tmp_path / "data"))
    env = dict(os.environ, SOUK_DISCORD_TOKEN=TEST_TOKEN)
    r = subprocess.run([souk_bin(), "check-config", "-c", str(cfg)], capture_output=True,
                       text=True, timeout=60, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "memguard.soft_limit = 300MB (%s:4 as skyblock.soft_rss_mb)" % cfg in out, out
    assert "janitor.cap = 5GB (%s:5 as skyblock.cap_gb)" % cfg in out, out
    assert "janitor.headroom_size = 1GB (%s:6 as skyblock.headroom_gb)" % cfg in out, out
    assert "skyblock.cap_gb = alias of janitor.cap, set here to 5" in out, out
    cfg.write_text("core:\n  data_dir: %s\njanitor:\n  cap: 2GB\nskyblock:\n  cap_gb: 5\n"
                   % (tmp_path / "data"))
    r = subprocess.run([souk_bin(), "check-config", "-c", str(cfg)], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode != 0
    assert "skyblock.cap_gb: is another name for janitor.cap, which is set too" in r.stderr + \
        r.stdout


def test_memory_decisions_are_counted_and_shown(fake_discord, hypixel, souk_factory, tmp_path):
    """rows_soft_cap cuts a sweep, and the memory guard above its soft limit
    skips cycles and shrinks the window: each decision counted in /metrics
    and in /sniper_status."""
    fake = fake_discord
    gid, ch = guild_channel(fake)
    cfg = sky_config(fake, hypixel, tmp_path / "data", ch, rows_soft_cap=1500)
    s = souk_factory(fake, config=cfg)
    fake.wait("ready", timeout=WAIT)
    # 3 pages of ~1,000: the sweep is cut after the second page.
    wait_metric(s, 'souk_skyblock_memory_decisions_total{decision="rows_cap"}', lambda v: v >= 1)
    text = answer(fake, fake.interaction("sniper_status"))["content"]
    assert re.search(r"sweeps cut at rows_soft_cap [1-9]", text), text
    assert s.stop() == 0
    # (Discord allows one IDENTIFY per 5 s: the next process waits for it.)
    time.sleep(5.5)
    # A soft limit below any process: every cycle is skipped, never fetched.
    cfg = sky_config(fake, hypixel, tmp_path / "data2", ch)
    cfg["memguard"] = {"soft_limit": "1MB", "hard_limit": "2GB", "interval": "200ms"}
    n0 = len(hypixel.requests())
    s2 = souk_factory(fake, name="souk2", config=cfg)
    fake.wait("ready", count=2, timeout=WAIT)
    wait_metric(s2, 'souk_skyblock_memory_decisions_total{decision="skip_cycle"}',
                lambda v: v >= 1)
    # The window shrinks too, though no sweep runs: from 12 hours to 3.
    wait_metric(s2, 'souk_skyblock_memory_decisions_total{decision="shrink_window"}',
                lambda v: v >= 1)
    assert metric(metrics(s2), "souk_skyblock_window_hours") == 3
    text = answer(fake, fake.interaction("sniper_status"))["content"]
    assert re.search(r"cycles skipped [1-9]", text) and "guard soft" in text, text
    assert re.search(r"window 3 h \(configured 12 h\).*window shrunk 1,", text), text
    # Skipped cycles ask Hypixel nothing (one may have run before the
    # guard's first sample).
    r1 = len(hypixel.requests(n0))
    time.sleep(2.5)
    assert len(hypixel.requests(n0)) == r1
    assert metric(metrics(s2), 'souk_skyblock_memory_decisions_total{decision="skip_cycle"}') >= 2
    assert s2.stop() == 0


def test_ah_auction_asks_the_api_with_the_key(fake_discord, hypixel, souk_factory, tmp_path):
    fake = fake_discord
    key = "00000000-0000-4000-8000-00000000beef"  # the fake's
    gid, ch = guild_channel(fake)
    cfg = sky_config(fake, hypixel, tmp_path / "data", ch)
    s = souk_factory(fake, config=cfg, env={"SOUK_SKYBLOCK_API_KEY": key})
    fake.wait("ready", timeout=WAIT)
    wait_sweep_of(s, hypixel.get("/_fake/state")["last_updated"])
    uid = hypixel.post("/_fake/list", {"template": ITEM, "price": 12_345_678,
                                       "seller": SELLER})["uuid"]
    hypixel.refresh()
    n0 = len(hypixel.requests())
    # Three users: the command has a per-user cooldown (each call spends
    # the key's quota).
    users = [u for u in fake.state(rest_log=False)["guilds"][0]["member_ids"]
             if u != fake.bot_user_id]

    def auction(uuid, who):
        return answer(fake, fake.interaction("ah", user_id=users[who], guild_id=gid,
                                             channel_id=ch, options=[
            {"name": "auction", "type": 1, "options": [
                {"name": "uuid", "type": 3, "value": uuid}]}]))

    got = auction(uid, 0)
    emb = got["embeds"][0]
    assert emb["title"] == "Gold Gift Talisman"
    f = {x["name"]: x["value"] for x in emb["fields"]}
    assert f["Price"].startswith("12,345,678 coins, BIN")
    assert f["Item"] == "`GOLD_GIFT_TALISMAN`"
    assert f["Seller"].startswith("`%s`" % SELLER)
    asked = [r for r in hypixel.requests(n0) if r["endpoint"] == "auction"]
    assert [r["api_key"] for r in asked] == ["ok"]
    # An auction that is not there, and a malformed id.
    assert "No active auction" in auction("0" * 32, 1)["content"]
    assert "is not an auction id" in auction("z" * 32, 2)["content"]
    assert s.stop() == 0
    # The key is never logged.
    assert key not in s.log_text()


@pytest.mark.skipif(os.environ.get("SOUK_VALGRIND") != "1" or sanitized(),
                    reason="valgrind run: scripts/test.sh sets SOUK_VALGRIND=1")
def test_valgrind_skyblock_live_sweeps_and_alerts_leak_nothing(fake_discord, hypixel,
                                                               souk_factory, tmp_path):
    """The module's whole path under valgrind: sweeps through the thread
    pool, decoding, an hour closing into Parquet, an alert with its DM and
    store writes, the checkpoint, then SIGTERM."""
    fake = fake_discord
    log = tmp_path / "valgrind.log"
    gid, ch = guild_channel(fake)
    cfg = sky_config(fake, hypixel, tmp_path / "data", ch, spool=True)
    s = souk_factory(fake, config=cfg, wrap=[
        "valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
        "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
        f"--log-file={log}"])
    fake.wait("ready", timeout=120)
    wait_sweep_of(s, hypixel.get("/_fake/state")["last_updated"], timeout=300)
    wait_sweep_of(s, market_with_value(hypixel), timeout=300)
    hypixel.post("/_fake/list", {"template": ITEM, "price": 3_000_000, "seller": SELLER})
    hypixel.refresh()
    fake.wait_for(lambda _st: alerts(fake, ch), timeout=300, what="the alert")
    state = hypixel.get("/_fake/state")
    hypixel.post("/_fake/clock", {"advance_ms": 3_600_000 - state["fake_ms"] % 3_600_000
                                  + 120_000})
    hypixel.refresh()
    s.wait_log("hourly summary written", timeout=300)
    rc = s.stop(signal.SIGTERM, timeout=180)
    text = log.read_text()
    assert rc == 0, text[-4000:]
    assert "ERROR SUMMARY: 0 errors" in text, text[-4000:]
    assert "definitely lost: 0 bytes" in text or "no leaks are possible" in text, text[-4000:]
