"""The Market Sim module through the real binary: `souk console` on the
simulated market (trades, portfolio, refusals, leaderboard, history,
settings, daily update, season reset), live prices from the fake price
APIs (tests/fakes/fake_prices.py) with fall-through, fallback to the last
known price and trades refused on it, and one slash /buy round trip
against the fake Discord."""
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import souk_config
from soukproc import Souk, TEST_TOKEN, sanitized, souk_bin

ROOT = Path(__file__).resolve().parents[2]
FAKE_PRICES = ROOT / "tests" / "fakes" / "fake_prices.py"
PYTHON = "/usr/bin/python3"
WAIT = 60 if sanitized() else 20
FH = "fh-test-token-0001"
PG = "pg-test-key-0002"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# The simulated market's prices depend on its seed; the default is a random
# one kept in the store, so tests that expect particular prices fix it.
SIM1 = "market:\n  sim:\n    seed: 1\n"


def console(tmp_path, script, cfg="core:\n  data_dir: ./d\n" + SIM1, env=None):
    (tmp_path / "c.yaml").write_text(cfg)
    e = dict(os.environ)
    e.pop("SOUK_DISCORD_TOKEN", None)
    for k in list(e):
        if k.startswith("SOUK_MARKET_"):
            e.pop(k)
    e.update(env or {})
    r = subprocess.run([souk_bin(), "console", "-c", str(tmp_path / "c.yaml")], cwd=tmp_path,
                       env=e, input=script, capture_output=True, text=True, timeout=WAIT * 2)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_sim_trading_in_the_console(tmp_path):
    out = console(tmp_path, "\n".join([
        "/market settings",
        "/price symbol:aapl",
        "/buy symbol:AAPL shares:10",
        "/buy symbol:AAPL shares:5",
        "/buy symbol:MSFT amount:$5,000",
        "/portfolio",
        "/sell symbol:AAPL shares:3",
        "/sell symbol:MSFT all:true",
        "/sell symbol:AAPL amount:$500",
        "/history",
        "/leaderboard",
        "/leaderboard by:roi",
    ]) + "\n")
    assert "Price source: simulated market" in out
    assert "Starting cash: $1,000,000.00" in out
    m = re.search(r"AAPL: \$([0-9.,]+) \(simulated market \(not a real price\)", out)
    assert m, out
    assert "Bought 10 AAPL" in out and "Bought 5 AAPL" in out
    # Two trades, two holdings changes: 10 then 15 shares.
    assert "Now holding: 10 shares" in out and "Now holding: 15 shares" in out
    assert re.search(r"Bought \d+ MSFT", out)
    assert "Simulated market: prices are made up" in out
    # The portfolio holds both and is valued near the starting cash.
    pf = out[out.index("Your portfolio"):]
    assert re.search(r"AAPL: 15 @ avg \$", pf) and "MSFT:" in pf
    assert re.search(r"Total value: \$99\d,\d{3}\.\d\d|Total value: \$1,000,000\.00", pf)
    assert "Started with: $1,000,000.00" in pf
    assert "Sold 3 AAPL" in out and "Now holding: 12 shares" in out
    assert re.search(r"Sold \d+ MSFT", out) and "Now holding: 0 shares" in out
    assert re.search(r"Sold [12] AAPL", out[out.index("Now holding: 0 shares"):])
    hist = out[out.index("Your trades, page 1"):]
    assert hist.count("(sim)") == 6
    assert "Leaderboard by value, season 1" in out and "Leaderboard by ROI, season 1" in out
    # The console user by the name it traded under, not a mention.
    assert "1. **console**" in out and "<@100000000000000001>" not in out


def test_refusals_are_clear_replies(tmp_path):
    out = console(tmp_path, "/portfolio\n/leaderboard\n")
    assert "your first /buy opens one with $1,000,000.00" in out
    assert "Nobody has traded in this season yet" in out
    out = console(tmp_path, "\n".join([
        "/buy symbol:ZZZZ shares:1",
        "/buy symbol:AAPL shares:100000000",
        "/sell symbol:AAPL shares:1",
        "/sell symbol:AAPL all:true",
        "/buy symbol:AAPL",
        "/buy symbol:AAPL shares:1 amount:100",
        "/buy symbol:AAPL amount:12abc",
        "/buy symbol:AAPL amount:0.01",
        "/buy symbol:A$PL shares:1",
        "/history",
        "/portfolio",
        "/leaderboard",
        "/price symbol:NOPE",
    ]) + "\n")
    assert "Unknown symbol ZZZZ" in out
    assert re.search(r"Not enough cash: 100000000 AAPL at \$[0-9.,]+ costs \$[0-9,.]+, and you "
                     r"have \$1,000,000\.00\.", out)
    assert "You cannot sell 1 AAPL" in out
    assert "You hold no AAPL to sell." in out
    assert out.count("exactly one of shares:<n>, amount:<dollars>") == 2
    assert "`12abc` is not a dollar amount" in out
    assert "does not buy a single share of AAPL" in out
    assert "is not a stock symbol" in out
    assert "You have no trades in this season yet." in out
    # A refused trade opens the account (with nothing in it) and nothing else.
    assert "No holdings yet" in out and "Total value: $1,000,000.00" in out
    assert "Leaderboard by value, season 1" in out
    assert "Unknown symbol NOPE" in out


def test_daily_update_season_reset_and_owner_commands(tmp_path):
    out = console(tmp_path, "\n".join([
        "/buy symbol:AAPL shares:1",
        "/market daily-update",
        "/market daily-update",
        "/market dashboard state:on",
        "/market set commission:2 start_cash:10000 hours:last_price",
        "/market set",
        "/market set start_cash:-5",
        "/market settings",
        "/market season-reset source:sim",
        "1",
        "/portfolio",
        "/market settings",
        "/market flushcache",
        "/market clearcache",
        "/market reloadcache",
        "/market cache",
    ]) + "\n")
    # The first run writes today's row (unless the task, which also runs at
    # start after daily_update.hour, got there first); a rerun never does.
    runs = re.findall(r"Daily update done: .*", out)
    assert len(runs) == 2
    assert ("1 snapshots written, 0 already there" in runs[0]
            or "0 snapshots written, 1 already there" in runs[0])
    assert "0 snapshots written, 1 already there today" in runs[1]
    assert "dashboard is now public" in out and "Dashboard: public" in out
    assert "Market settings saved: starting cash $10,000.00" in out
    assert "Give at least one of start_cash, commission or hours." in out
    assert "`-5` is negative: `start_cash` must be from $0.00 to $1,000,000,000,000.00" in out
    assert "Starting cash: $10,000.00" in out and "Commission: $2.00" in out
    assert "Start season 2 on the simulated market?" in out
    assert "Season 2 has started" in out
    assert "your first /buy opens one with $10,000.00" in out
    assert "Season: 2" in out
    assert "Done: 0 prices." in out
    assert "Price cache: 0 entries" in out


def test_commission_start_cash_and_hours_policy(tmp_path):
    cfg = ("core:\n  data_dir: ./d\nmarket:\n  start_cash: \"$2,500\"\n"
           "  commission_cents: 150\n  sim:\n    seed: 1\n")
    out = console(tmp_path, "\n".join([
        "/market settings",
        "/buy symbol:AAPL shares:1",
        "/buy symbol:AAPL shares:100",
        "/sell symbol:AAPL all:true",
    ]) + "\n", cfg=cfg)
    assert "Starting cash: $2,500.00" in out and "Commission: $1.50" in out
    assert "Bought 1 AAPL" in out
    bought = out[out.index("Bought 1 AAPL"):]
    assert "| Commission: $1.50" in bought
    assert re.search(r"Not enough cash: 100 AAPL at \$[0-9.,]+ costs \$[0-9,.]+ with commission", out)
    assert "Sold 1 AAPL" in out
    # open_only: refused with the next opening while the NYSE is closed.
    t = time.gmtime()
    if t.tm_wday >= 5:  # a UTC weekend day is a closed market all day long in New York
        out = console(tmp_path, "/buy symbol:MSFT shares:1\n",
                      cfg="core:\n  data_dir: ./d2\nmarket:\n  hours: open_only\n")
        assert "The US market is closed" in out and "opens again" in out
    # A start_cash that is not an amount stops the start with the reason.
    (tmp_path / "bad.yaml").write_text("core:\n  data_dir: ./d3\nmarket:\n  start_cash: lots\n")
    r = subprocess.run([souk_bin(), "console", "-c", str(tmp_path / "bad.yaml")], cwd=tmp_path,
                       input="", capture_output=True, text=True, timeout=WAIT)
    assert r.returncode != 0 and "market.start_cash" in r.stderr


# ---- live prices from the fake price APIs ---------------------------------


class FakePrices:
    def __init__(self, tmp, *args):
        pf = tmp / "prices.port"
        self.log = open(tmp / "fake_prices.log", "w")
        self.proc = subprocess.Popen([PYTHON, str(FAKE_PRICES), "--port", "0", "--port-file",
                                      str(pf), "--log-level", "WARNING", *args], stderr=self.log)
        deadline = time.monotonic() + 15
        while not pf.exists() or not pf.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("fake_prices did not start")
            time.sleep(0.02)
        self.port = int(pf.read_text())
        self.base = "http://127.0.0.1:%d" % self.port

    def post(self, path, body):
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with _OPENER.open(req, timeout=10) as r:
            return json.loads(r.read().decode())

    def requests(self):
        with _OPENER.open(self.base + "/_fake/requests", timeout=10) as r:
            return json.loads(r.read().decode())["requests"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def fake_prices(tmp_path):
    f = FakePrices(tmp_path)
    yield f
    f.stop()


class Console:
    """souk console fed line by line, so the test can steer the fakes
    between commands."""

    def __init__(self, tmp_path, cfg):
        self.s = Souk(tmp_path / "souk", cfg, env={"SOUK_DISCORD_TOKEN": ""},
                      args=("console",))
        for k in list(self.s.env):
            if k.startswith("SOUK_MARKET_") or k == "SOUK_DISCORD_TOKEN":
                self.s.env.pop(k)
        self.s.start()
        self.seen = 0

    def run(self, line, until, timeout=WAIT):
        self.s.proc.stdin.write((line + "\n").encode())
        self.s.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.s._cv:
                text = "\n".join(self.s.stdout_lines[self.seen:])
            if until in text:
                with self.s._cv:
                    self.seen = len(self.s.stdout_lines)
                return text
            if self.s.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {until!r} after {line!r}; stdout:\n{text}\nlog:\n" +
                             self.s.log_text()[-3000:])

    def close(self):
        self.s.proc.stdin.close()
        return self.s.wait(WAIT)


def live_config(tmp_path, fake):
    return {
        "core": {"data_dir": str(tmp_path / "data")},
        "market": {
            "finnhub": {"key": FH, "url": fake.base},
            "polygon": {"key": PG, "url": fake.base},
            "min_interval": "0s",
            "timeout": "2s",
            "cache": {"refresh": "0s"},
        },
    }


def test_live_prices_fall_through_and_fallback(tmp_path, fake_prices):
    fake = fake_prices
    c = Console(tmp_path, live_config(tmp_path, fake))
    try:
        out = c.run("/market settings", "Providers:")
        assert "Price source: live prices" in out and "Providers: finnhub, polygon" in out
        out = c.run("/price symbol:AAPL", "AAPL:")
        assert "AAPL: $189.25 (finnhub;" in out and "simulated" not in out
        out = c.run("/buy symbol:AAPL shares:2", "AAPL")
        assert "Bought 2 AAPL" in out and "Source: finnhub" in out
        assert "Cost: $378.50" in out and "Cash after: $999,621.50" in out
        # Finnhub's all-zero quote for MSFT: Polygon answers.
        fake.post("/_fake/script", {"provider": "finnhub", "responses": [{"nodata": True}]})
        out = c.run("/quote symbol:MSFT", "MSFT quote")
        assert "Price: $415.10" in out and "Source: polygon" in out
        # A 429 from Finnhub: falls through as well (and Finnhub backs off).
        fake.post("/_fake/script", {"provider": "finnhub",
                                    "responses": [{"status": 429, "retry_after": 30}]})
        out = c.run("/buy symbol:MSFT shares:1", "MSFT")
        assert "Bought 1 MSFT" in out and "Source: polygon" in out
        # The daily update refreshes stale held symbols first, so nothing is
        # valued at cost; both were just fetched, so it asks nobody.
        n0 = len(fake.requests())
        out = c.run("/market daily-update", "Daily update")
        assert "1 accounts valued, 1 snapshots written" in out
        assert "0 holdings without a price" in out
        assert len(fake.requests()) == n0
        out = c.run("/leaderboard", "Leaderboard")
        assert "1. **console**" in out and "simulated" not in out
        # Every provider fails: /price shows the cached price with its age,
        # trades refuse.
        fake.post("/_fake/script", {"provider": "*", "responses": [{"status": 503, "repeat": -1}]})
        out = c.run("/price symbol:AAPL", "AAPL:")
        # (Finnhub is backing off after its 429, so Polygon priced it last.)
        assert re.search(r"AAPL: \$189\.25 \((finnhub|polygon); last known price, \d+ [\w ]+ old", out)
        assert "not tradable" in out
        out = c.run("/buy symbol:AAPL shares:1", "nothing was traded")
        assert "No fresh price for AAPL" in out and "not answering" in out
        out = c.run("/sell symbol:AAPL all:true", "nothing was traded")
        assert "No fresh price for AAPL" in out
        # A symbol never seen: no price at all.
        out = c.run("/buy symbol:IBM shares:1", "nothing was traded")
        assert "No price for IBM" in out
        out = c.run("/portfolio", "Valued at")
        assert "AAPL: 2 @ avg $189.25" in out
        # Last-known prices are marked as such, and so is the footer.
        assert re.search(r"AAPL: 2 @ avg \$189\.25, now \$189\.25 = \$378\.50 \([^)]*\) "
                         r"\(last known, \d+ [\w ]+ old\)", out), out
        assert re.search(r"MSFT: 1 .*\(last known, \d+ [\w ]+ old\)", out), out
        assert "Valued at live prices, except 2 holdings at the last known price" in out
        out = c.run("/history", "Your trades")
        assert out.count("BUY ") == 2 and "(sim)" not in out
        # Persisted: flush, clear memory, reload from the store.
        out = c.run("/market flushcache", "Done:")
        assert "Done: 2 prices." in out
        c.run("/market clearcache", "Cleared 2 prices")
        c.run("/market reloadcache", "Done: 2 prices.")
        out = c.run("/price symbol:AAPL", "AAPL:")
        assert "last known price" in out
        assert c.close() == 0
    finally:
        c.s.kill()
    provs = [r["provider"] for r in fake.requests()]
    assert "finnhub" in provs and "polygon" in provs


def test_prices_survive_a_restart(tmp_path, fake_prices):
    fake = fake_prices
    cfg = live_config(tmp_path, fake)
    c = Console(tmp_path, cfg)
    try:
        c.run("/price symbol:AAPL", "AAPL: $189.25")
        assert c.close() == 0
    finally:
        c.s.kill()
    fake.post("/_fake/script", {"provider": "*", "responses": [{"status": 503, "repeat": -1}]})
    c = Console(tmp_path, cfg)
    try:
        out = c.run("/price symbol:AAPL", "AAPL:")
        assert "AAPL: $189.25 (finnhub; last known price" in out
        assert c.close() == 0
    finally:
        c.s.kill()


# ---- a slash /buy against the fake Discord -----------------------------------


def callbacks(fake, iid):
    out = []
    for r in fake.requests():
        if r["method"] == "POST" and f"/interactions/{iid}/" in r["path"]:
            body = r.get("body")
            out.append(json.loads(body) if isinstance(body, str) else body)
    return out


def wait_callback(fake, iid):
    fake.wait_for(lambda _st: callbacks(fake, iid), timeout=WAIT, what=f"a callback for {iid}")
    return callbacks(fake, iid)[0]


def test_slash_buy_round_trip(fake_discord, souk_factory):
    fake = fake_discord
    s = souk_factory(fake)
    fake.wait("ready", timeout=WAIT)
    s.wait_log("shard 0 ready", timeout=WAIT)
    r = fake.interaction("buy", options=[{"name": "symbol", "type": 3, "value": "AAPL"},
                                         {"name": "shares", "type": 4, "value": 3}])
    cb = wait_callback(fake, r["id"])
    assert cb["type"] == 4, cb
    emb = cb["data"]["embeds"][0]
    assert emb["title"] == "Bought 3 AAPL"
    assert "Simulated market" in emb["footer"]["text"]
    # Autocomplete of the symbol from the simulated market's list.
    r = fake.interaction("price", type=4, options=[
        {"name": "symbol", "type": 3, "value": "MS", "focused": True}])
    cb = wait_callback(fake, r["id"])
    assert cb["type"] == 8
    assert "MSFT" in [c["value"] for c in cb["data"]["choices"]]
    assert s.stop() == 0


def test_leaderboard_pages_with_buttons(fake_discord, souk_factory):
    fake = fake_discord
    s = souk_factory(fake)
    fake.wait("ready", timeout=WAIT)
    s.wait_log("shard 0 ready", timeout=WAIT)
    fake.post("/_fake/guilds", {"name": "Traders", "channels": 2, "members": 14})
    g = next(g for g in fake.state(rest_log=False)["guilds"] if g["name"] == "Traders")
    users = [u for u in g["member_ids"] if u != fake.bot_user_id][:12]
    assert len(users) == 12
    for k, uid in enumerate(users):
        r = fake.interaction("buy", user_id=uid, guild_id=g["id"], options=[
            {"name": "symbol", "type": 3, "value": "AAPL"},
            {"name": "shares", "type": 4, "value": k + 1}])
        assert wait_callback(fake, r["id"])["data"]["embeds"][0]["title"].startswith("Bought")
    r = fake.interaction("leaderboard", guild_id=g["id"])
    cb = wait_callback(fake, r["id"])
    emb = cb["data"]["embeds"][0]
    assert emb["title"] == "Leaderboard by value, season 1"
    assert "Page 1 of 2 - 12 traders" in emb["footer"]["text"]
    assert emb["description"].count("\n") >= 9
    buttons = cb["data"]["components"][0]["components"]
    assert buttons[0]["disabled"] is True and not buttons[1].get("disabled")
    nxt = buttons[1]["custom_id"]
    assert nxt.startswith("market:lb:2:v:1:")
    msg = next(m for m in fake.messages()
               if m["id"] == next(i for i in fake.state(rest_log=False)["interactions"]
                                  if i["id"] == r["id"])["original"])
    r2 = fake.interaction(type=3, data={"custom_id": nxt, "component_type": 2}, message=msg,
                          guild_id=g["id"])
    cb2 = wait_callback(fake, r2["id"])
    assert cb2["type"] == 7
    assert "Page 2 of 2" in cb2["data"]["embeds"][0]["footer"]["text"]
    assert cb2["data"]["embeds"][0]["description"].startswith("11. ")
    # A page from an old snapshot is refreshed with a note; one from another
    # season is refused with the reason.
    old = re.sub(r":\d+$", ":1", nxt)
    cb3 = wait_callback(fake, fake.interaction(type=3, data={"custom_id": old,
                                                             "component_type": 2},
                                               message=msg, guild_id=g["id"])["id"])
    assert "over 15 minutes old" in cb3["data"]["embeds"][0]["description"]
    other = nxt.replace(":v:1:", ":v:7:")
    cb4 = wait_callback(fake, fake.interaction(type=3, data={"custom_id": other,
                                                             "component_type": 2},
                                               message=msg, guild_id=g["id"])["id"])
    assert "season 7, which has ended" in cb4["data"]["content"]
    # A forged page or minute: bounded, answered like a stale page with the
    # current first page (no overflow in the offset).
    now_min = int(time.time() // 60)
    for forged in (re.sub(r"^market:lb:2:", "market:lb:9223372036854775807:", nxt),
                   re.sub(r":\d+$", ":%d" % (now_min + 5000), nxt),
                   re.sub(r":\d+$", ":-9223372036854775807", nxt)):
        cbf = wait_callback(fake, fake.interaction(type=3, data={"custom_id": forged,
                                                                 "component_type": 2},
                                                   message=msg, guild_id=g["id"])["id"])
        assert cbf["type"] == 7, (forged, cbf)
        embf = cbf["data"]["embeds"][0]
        assert "over 15 minutes old" in embf["description"], forged
        assert "Page 1 of 2" in embf["footer"]["text"], forged
    bad = wait_callback(fake, fake.interaction(type=3, data={"custom_id": "market:lb:x",
                                                             "component_type": 2},
                                               message=msg, guild_id=g["id"])["id"])
    assert "no longer valid" in bad["data"]["content"]
    assert s.stop() == 0


def test_live_slash_price_and_metrics(fake_discord, fake_prices, souk_factory, tmp_path):
    fake = fake_discord
    cfg = souk_config(fake, tmp_path / "live-data", market={
        "finnhub": {"key": FH, "url": fake_prices.base},
        "min_interval": "0s", "timeout": "2s"})
    s = souk_factory(fake, config=cfg)
    fake.wait("ready", timeout=WAIT)
    s.wait_log("shard 0 ready", timeout=WAIT)
    line = s.wait_log("listening on", timeout=WAIT)[0]
    port = int(re.search(r":(\d+)\"?$", line.rstrip('"')).group(1))
    for _ in range(3):
        r = fake.interaction("price", options=[{"name": "symbol", "type": 3, "value": "AAPL"}])
        cb = wait_callback(fake, r["id"])
        assert cb["data"]["content"].startswith("AAPL: $189.25 (finnhub;"), cb
    # The key never reaches the log.
    assert FH not in s.log_text()
    with _OPENER.open("http://127.0.0.1:%d/metrics" % port, timeout=10) as resp:
        body = resp.read().decode()
    def val(name):
        m = re.search(r"^%s (\S+)$" % re.escape(name), body, re.M)
        assert m, name
        return float(m.group(1))
    assert val("souk_market_price_cache_misses_total") == 1
    assert val("souk_market_price_cache_hits_total") == 2
    assert val('souk_market_provider_requests_total{provider="finnhub"}') == 1
    assert val('souk_market_provider_enabled{provider="polygon"}') == 0
    assert val("souk_market_price_cache_entries") == 1
    assert s.stop() == 0


def test_check_config_reports_providers_and_checks_keys(tmp_path, fake_prices):
    """souk check-config lists which providers are configured; --online asks
    each one alone for a quote, so a wrong key is named."""
    from soukproc import to_yaml
    cfg = live_config(tmp_path, fake_prices)
    cfg["market"]["polygon"]["key"] = "wrong-key"
    path = tmp_path / "c.yaml"
    path.write_text(to_yaml(cfg) + "\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SOUK_MARKET_") and k != "SOUK_DISCORD_TOKEN"}
    # The token is given here only: without it check-config says what
    # `souk run` would (exit 2), after the market's report.
    r = subprocess.run([souk_bin(), "check-config", "-c", str(path)],
                       env=dict(env, SOUK_DISCORD_TOKEN=TEST_TOKEN), cwd=tmp_path,
                       capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"finnhub\s+configured", r.stdout)
    assert re.search(r"alpaca\s+not configured \(set SOUK_MARKET_ALPACA_KEY_ID", r.stdout)
    assert "new guilds trade on: live" in r.stdout
    r = subprocess.run([souk_bin(), "check-config", "--online", "-c", str(path)], env=env,
                       cwd=tmp_path, capture_output=True, text=True, timeout=WAIT)
    assert r.returncode != 0
    assert re.search(r"finnhub\s+OK \(AAPL \$", r.stdout), r.stdout
    assert re.search(r"polygon\s+FAILED: .*401", r.stdout), r.stdout
    # Keys never appear in what is printed or logged.
    assert FH not in r.stdout + r.stderr and "wrong-key" not in r.stdout + r.stderr


def test_two_console_sessions_never_share_a_trade(tmp_path):
    """Each console session's commands have their own keys: a second
    session's first /buy is a new trade, not the first session's."""
    out1 = console(tmp_path, "/buy symbol:AAPL shares:3\n")
    assert "Bought 3 AAPL" in out1
    out2 = console(tmp_path, "/buy symbol:MSFT shares:5\n/portfolio\n")
    assert "Bought 5 MSFT" in out2 and "already carried out" not in out2
    assert "AAPL" in out2 and "MSFT" in out2.split("Bought 5 MSFT", 1)[1]


def test_reply_texts_match_what_was_done(tmp_path):
    """One page is "1 page"; a sale by amount is not "after commission" (the
    commission comes off the proceeds); a change too small to show is
    0.00%, never -0.00% or +0.00%."""
    cfg = "core:\n  data_dir: ./d\n" + SIM1 + "  commission_cents: 50\n"
    out = console(tmp_path, "\n".join([
        "/buy symbol:AAPL shares:1",
        "/leaderboard page:5",
        "/sell symbol:AAPL amount:0.01",
        "/buy symbol:AAPL amount:0.40",
        "/portfolio",
    ]) + "\n", cfg=cfg)
    assert "Bought 1 AAPL" in out
    assert "There is only 1 page of the leaderboard." in out
    m = re.search(r"That amount does not sell a single share of AAPL at \$[0-9,]+\.[0-9]+(.*)",
                  out)
    assert m and m.group(1) == ".", out
    assert re.search(r"That amount does not buy a single share of AAPL at \$[0-9.,]+ after "
                     r"commission\.", out)
    pf = out[out.index("Your portfolio"):]
    assert "| ROI: 0.00%" in pf, pf
    assert "-0.00%" not in out and "+0.00%" not in out


def test_portfolio_day_change_names_its_snapshot(tmp_path):
    out = console(tmp_path, "/buy symbol:AAPL shares:1\n/portfolio\n")
    assert "n/a (no snapshot before today)" in out
    db = sqlite3.connect(tmp_path / "d" / "souk.db")
    guild, season, user = db.execute(
        "SELECT guild_id, season, user_id FROM market_accounts").fetchone()
    db.execute("INSERT INTO market_history (guild_id, season, user_id, day, value_cents, "
               "created_at) VALUES (?, ?, ?, 20200102, 100000000, 0)", (guild, season, user))
    db.commit()
    db.close()
    out = console(tmp_path, "/portfolio\n")
    # A change that rounds to nothing reads 0.00%, with no sign.
    assert re.search(r"\| Day change: -?\$[0-9.,]+ \(([+-]\d+\.\d\d|0\.00)%\) since the "
                     r"2020-01-02 snapshot", out), out
    assert "-0.00%" not in out and "+0.00%" not in out


def test_sim_seed_is_random_and_kept(tmp_path):
    """Without market.sim.seed the simulated market's seed is random, made
    at the first start and kept in the store; a configured seed is used
    as it is."""
    def kept(d):
        db = sqlite3.connect(tmp_path / d / "souk.db")
        row = db.execute("SELECT value FROM kv WHERE namespace = 'market' AND "
                         "key = 'sim_seed'").fetchone()
        db.close()
        return None if row is None else bytes(row[0]).decode()
    console(tmp_path, "/price symbol:AAPL\n", cfg="core:\n  data_dir: ./fixed\n" + SIM1)
    assert kept("fixed") is None
    console(tmp_path, "/price symbol:AAPL\n", cfg="core:\n  data_dir: ./r\n")
    seed = kept("r")
    assert seed and seed.isdigit() and int(seed) not in (0, 1)
    console(tmp_path, "/price symbol:AAPL\n", cfg="core:\n  data_dir: ./r\n")
    assert kept("r") == seed
    console(tmp_path, "/price symbol:AAPL\n", cfg="core:\n  data_dir: ./r2\n")
    assert kept("r2") != seed


def test_daily_update_refreshes_only_stale_symbols_up_to_max_fetch(tmp_path, fake_prices):
    """The daily update asks the providers only for held symbols whose
    cached quote is no longer fresh, stalest first, at most
    daily_update.max_fetch of them; the rest are valued at cached prices."""
    fake = fake_prices
    cfg = live_config(tmp_path, fake)
    # Long enough for two buys and an update under ASan on a busy machine.
    cfg["market"]["fresh_for"] = "3s"
    cfg["market"]["daily_update"] = {"max_fetch": 1}
    c = Console(tmp_path, cfg)
    try:
        c.run("/buy symbol:AAPL shares:1", "Bought 1 AAPL")
        c.run("/buy symbol:MSFT shares:1", "Bought 1 MSFT")
        n0 = len(fake.requests())
        out = c.run("/market daily-update", "Daily update")
        assert "0 holdings without a price" in out
        assert len(fake.requests()) == n0  # both still fresh
        time.sleep(3.5)
        out = c.run("/market daily-update", "Daily update")
        assert "0 holdings without a price" in out
        new = fake.requests()[n0:]
        syms = {re.search(r"(?:symbol=|ticker/)([A-Z.]+)", r["path"]).group(1) for r in new}
        assert syms == {"AAPL"}, new  # the stalest, and only max_fetch of them
        assert c.close() == 0
    finally:
        c.s.kill()
    # The console logs to its data directory (stderr keeps warnings only).
    assert "refreshing 1 (daily_update.max_fetch" in (tmp_path / "data" / "console.log").read_text()


def test_seed_bot_names_are_aliases_listed_in_help(tmp_path):
    """People coming from the Python seed bot type its prefix commands:
    each runs the matching /market command, and /help lists it."""
    out = console(tmp_path, "\n".join([
        "/buy symbol:AAPL shares:1",
        "!daily_update",
        "!flushcache",
        "!clearcache",
        "!reloadcache",
        "!season_reset source:sim",
        "/help command:market",
    ]) + "\n")
    assert re.search(r"Daily update done: 1 accounts valued", out), out
    assert out.count("Done: ") == 2, out  # flushcache and reloadcache
    assert "Cleared " in out
    assert "Start season 2 on the simulated market?" in out
    for name, sub in (("daily_update", "daily-update"), ("flushcache", "flushcache"),
                      ("clearcache", "clearcache"), ("reloadcache", "reloadcache"),
                      ("season_reset", "season-reset")):
        assert re.search(r"`/market %s[^\n]*\(also `!%s`\)" % (sub, name), out), (name, out)


def test_names_on_the_leaderboard_and_forget_user(tmp_path):
    """A player's display name is kept with their trades and shown on the
    leaderboard (the console's user is "console"); `souk db forget-user`
    removes it with the rest of their market data, though no module runs
    in that command."""
    out = console(tmp_path, "/buy symbol:AAPL shares:1\n/leaderboard\n")
    assert re.search(r"1\. \*\*console\*\* \$", out), out
    assert "<@" not in out
    db = sqlite3.connect(tmp_path / "d" / "souk.db")
    (user, name), = db.execute("SELECT user_id, name FROM market_players").fetchall()
    db.close()
    assert name == "console"
    r = subprocess.run([souk_bin(), "db", "forget-user", str(user), "-c",
                        str(tmp_path / "c.yaml")], cwd=tmp_path, capture_output=True, text=True,
                       timeout=WAIT)
    assert r.returncode == 0, r.stderr
    deleted = int(re.search(r"(\d+) row\(s\) deleted", r.stdout).group(1))
    assert deleted >= 4, r.stdout  # account, holding, trade and name at least
    db = sqlite3.connect(tmp_path / "d" / "souk.db")
    for table in ("market_players", "market_accounts", "market_transactions"):
        assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = ?",
                          (user,)).fetchone()[0] == 0, table
    db.close()


FH2 = "fh-test-token-0009"


def test_finnhub_keys_rotate_when_one_runs_out(tmp_path):
    """Two Finnhub keys (the seed's secondary key): when the first runs out
    of its quota (the provider answers 429 past its budget), the second is
    used, and Polygon is asked only once both are out."""
    fake = FakePrices(tmp_path, "--finnhub-token", FH + "," + FH2)
    try:
        cfg = live_config(tmp_path, fake)
        cfg["market"]["finnhub"]["key"] = FH + "," + FH2
        # Each key may be asked twice a minute; the provider answers 429 past it.
        fake.post("/_fake/limits", {"finnhub": {"limit": 2, "window_s": 60}})
        c = Console(tmp_path, cfg)
        try:
            for sym in ("AAPL", "MSFT", "IBM", "NVDA"):
                out = c.run("/price symbol:%s" % sym, "%s:" % sym)
                assert "(finnhub;" in out, out
            out = c.run("/price symbol:TSLA", "TSLA:")
            assert "(polygon;" in out, out
            fake.post("/_fake/limits", {"finnhub": None})
            assert c.close() == 0
        finally:
            c.s.kill()
        fh = [(r["key"], r["status"]) for r in fake.requests() if r["provider"] == "finnhub"]
        # Two from the first key, its 429, two from the second, its 429.
        assert fh == [(FH, 200), (FH, 200), (FH, 429), (FH2, 200), (FH2, 200), (FH2, 429)], fh
        log = c.s.log_text()
        assert "finnhub answered 429 to key 1 of 2" in log
        assert FH not in log and FH2 not in log  # keys never reach the log
    finally:
        fake.stop()


def _seeded_for_daily(tmp_path, name):
    """A data dir with one account and no daily update done today."""
    d = tmp_path / name
    d.mkdir()
    out = console(d, "/buy symbol:AAPL shares:1\n", cfg="core:\n  data_dir: ./d\n" + SIM1)
    assert "Bought 1 AAPL" in out
    db = sqlite3.connect(d / "d" / "souk.db")
    # The console's own task may have done today's already (after its hour).
    db.execute("DELETE FROM idempotency WHERE key LIKE 'market:daily:%'")
    db.execute("DELETE FROM kv WHERE namespace = 'market' AND key = 'daily_day'")
    db.execute("DELETE FROM market_history")
    db.commit()
    db.close()
    return d


def _cron(d):
    return subprocess.run([souk_bin(), "market", "daily-update", "-c", str(d / "c.yaml")], cwd=d,
                          capture_output=True, text=True, timeout=WAIT * 2,
                          env={k: v for k, v in os.environ.items()
                               if not k.startswith("SOUK_MARKET_")})


def _wait_log(path, needle, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"no {needle!r} in {path}:\n" + (path.read_text() if path.exists()
                                                          else "(none)"))


def test_cron_daily_update_runs_once_a_day_beside_the_daemon(tmp_path):
    """`souk market daily-update` does the daily task's work once: a second
    run, or the daemon's task after it (or it after the task), finds the
    day done and does nothing; its exit status says whether it worked."""
    d = _seeded_for_daily(tmp_path, "cron-first")
    r = _cron(d)
    assert r.returncode == 0, r.stderr
    assert re.search(r"daily update \d{4}-\d\d-\d\d done: 1 accounts valued, 1 snapshots written",
                     r.stdout), r.stdout
    r = _cron(d)
    assert r.returncode == 0 and "already done today; nothing to do" in r.stdout, r.stdout
    # The daemon starts after cron's run: its task (due at once with hour
    # 0) finds the day done.
    cfg = {"core": {"data_dir": str(d / "d")},
           "market": {"sim": {"seed": 1}, "daily_update": {"hour": 0}}}
    c = Console(d, cfg)
    try:
        # The task runs at start after a jitter of up to 30 s (market.c).
        _wait_log(d / "d" / "console.log", "already done today, nothing to do", WAIT + 30)
        assert c.close() == 0
    finally:
        c.s.kill()
    db = sqlite3.connect(d / "d" / "souk.db")
    assert db.execute("SELECT COUNT(*) FROM market_history").fetchone()[0] == 1
    db.close()

    # The other way round: the daemon's task first, cron while it runs.
    d = _seeded_for_daily(tmp_path, "daemon-first")
    cfg["core"]["data_dir"] = str(d / "d")
    c = Console(d, cfg)
    try:
        _wait_log(d / "d" / "console.log", ": 1 accounts, 1 written", WAIT + 30)
        (d / "c.yaml").write_text("core:\n  data_dir: ./d\n" + SIM1)
        r = _cron(d)
        assert r.returncode == 0 and "already done today; nothing to do" in r.stdout, (
            r.stdout + r.stderr)
        assert c.close() == 0
    finally:
        c.s.kill()

    # A store it cannot open: a non-zero status and why.
    (d / "bad.yaml").write_text("core:\n  data_dir: ./d\nstore:\n  url: postgres://127.0.0.1:1/x\n")
    r = subprocess.run([souk_bin(), "market", "daily-update", "-c", str(d / "bad.yaml")], cwd=d,
                       capture_output=True, text=True, timeout=WAIT * 2)
    assert r.returncode != 0 and "already done" not in r.stdout and "done:" not in r.stdout
    r = subprocess.run([souk_bin(), "market", "frobnicate", "-c", str(d / "c.yaml")], cwd=d,
                       capture_output=True, text=True, timeout=WAIT * 2)
    assert r.returncode == 2 and "usage: souk market daily-update" in r.stderr


def _get(url):
    try:
        with _OPENER.open(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_console_http_serves_the_dashboard(tmp_path):
    """`souk console --http` starts the HTTP server with the modules' pages,
    so the console's own server has a dashboard without Discord; without
    --http nothing listens, and `souk run` refuses the option."""
    cfg = {"core": {"data_dir": str(tmp_path / "data")}, "http": {"port": 0},
           "market": {"sim": {"seed": 1}}}
    c = Console(tmp_path, cfg)
    try:
        c.run("/buy symbol:AAPL shares:3", "Bought 3 AAPL")
        assert not any("web pages are on" in l for l in c.s.lines)
        assert c.close() == 0
    finally:
        c.s.kill()

    s = Souk(tmp_path / "http", cfg, env={"SOUK_DISCORD_TOKEN": ""}, args=("console", "--http"))
    for k in list(s.env):
        if k.startswith("SOUK_MARKET_") or k == "SOUK_DISCORD_TOKEN":
            s.env.pop(k)
    s.start()
    try:
        line = s.wait_log("web pages are on http://127.0.0.1:", timeout=WAIT)[0]
        base = re.search(r"(http://127\.0\.0\.1:\d+)/", line).group(1)
        guild = "100000000000000002"  # the console's server
        # Off until the server turns it on, as on Discord.
        assert _get(f"{base}/market/{guild}")[0] == 404
        s.proc.stdin.write(b"/market dashboard state:on\n")
        s.proc.stdin.flush()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and not any("now public" in l for l in s.stdout_lines):
            time.sleep(0.05)
        status, body = _get(f"{base}/market/{guild}")
        assert status == 200, body
        # The earlier console session's trade, its player by name.
        assert '<span class="player">console</span>' in body
        assert _get(f"{base}/healthz")[0] == 200
        s.proc.stdin.close()
        assert s.wait(WAIT) == 0
    finally:
        s.kill()
    with pytest.raises(OSError):
        _OPENER.open(f"{base}/healthz", timeout=2)

    r = subprocess.run([souk_bin(), "run", "--http", "-c", s.config_path], capture_output=True,
                       text=True, timeout=WAIT)
    assert r.returncode == 2 and "--http is an option of `souk console`" in r.stderr
