"""Tests of the fake Hypixel SkyBlock API itself (tests/fakes/fake_hypixel.py).

Run: /usr/bin/python3 -m pytest -q tests/fakes/test_fake_hypixel.py
Each test starts its own fake as a subprocess (--port 0 --port-file) and
talks to it over HTTP with urllib, as a client would.  What it serves is
checked against the captured page (tests/fixtures/hypixel).
"""

import concurrent.futures
import gzip
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "fakes" / "fake_hypixel.py"
FIX = ROOT / "tests" / "fixtures" / "hypixel"
KEY = "00000000-0000-4000-8000-00000000beef"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Fake:
    def __init__(self, tmp, *args):
        pf = tmp / "port"
        self.proc = subprocess.Popen([sys.executable, str(FAKE), "--port", "0", "--port-file",
                                      str(pf), *args], stderr=subprocess.DEVNULL)
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

    def raw(self, path, headers=None, timeout=30):
        req = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with _OPENER.open(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def get(self, path, headers=None):
        st, _, body = self.raw(path, headers)
        return st, json.loads(body)

    def post(self, path, body=None):
        req = urllib.request.Request(self.base + path, data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with _OPENER.open(req, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise AssertionError("%s -> %d %s" % (path, e.code, e.read()))

    def page(self, n):
        st, body = self.get("/v2/skyblock/auctions?page=%d" % n)
        assert st == 200, body
        return body

    def state(self):
        return self.get("/_fake/state")[1]


def start(tmp_path, *args):
    return Fake(tmp_path, *args)


@pytest.fixture
def real_page():
    with gzip.open(FIX / "auctions-page0-2025-06-08.json.gz", "rt") as f:
        return json.load(f)


@pytest.fixture
def small(tmp_path):
    f = start(tmp_path, "--pages", "3", "--paused", "--seed", "7")
    yield f
    f.stop()


def test_page_zero_is_the_real_page_on_the_fake_clock(small, real_page):
    p0 = small.page(0)
    assert p0["success"] is True and p0["page"] == 0
    assert list(p0)[:5] == ["success", "page", "totalPages", "totalAuctions", "lastUpdated"]
    shift = p0["lastUpdated"] - real_page["lastUpdated"]
    assert len(p0["auctions"]) == 1000
    for got, want in zip(p0["auctions"], real_page["auctions"]):
        assert list(got) == list(want)  # the real field order
        for k in want:
            if k in ("start", "end", "last_updated"):
                assert got[k] == want[k] + shift
            elif k == "bids":
                assert [b["amount"] for b in got[k]] == [b["amount"] for b in want[k]]
            else:
                assert got[k] == want[k], k


def test_synthetic_pages_copy_real_items_and_end_with_404(small, real_page):
    real_bytes = {a["item_bytes"] for a in real_page["auctions"]}
    p0 = small.page(0)
    total, n, prev_lu, uuids = p0["totalAuctions"], 0, None, set()
    assert p0["totalPages"] == 3
    for i in range(p0["totalPages"]):
        p = small.page(i)
        assert p["lastUpdated"] == p0["lastUpdated"] and p["totalPages"] == 3
        for a in p["auctions"]:
            assert a["item_bytes"] in real_bytes
            assert a["starting_bid"] >= 1 and a["end"] > a["start"]
            if prev_lu is not None:
                assert a["last_updated"] <= prev_lu  # most recently updated first
            prev_lu = a["last_updated"]
            uuids.add(a["uuid"])
            n += 1
    assert n == total == len(uuids)
    assert 2900 <= total <= 3000
    st, body = small.get("/v2/skyblock/auctions?page=3")
    assert st == 404 and body == {"success": False, "cause": "Page not found"}
    st, body = small.get("/v2/skyblock/auctions?page=x")
    assert st == 422 and body["success"] is False


def test_synthetic_statistics_follow_the_real_page(tmp_path, real_page):
    f = start(tmp_path, "--pages", "6", "--paused", "--seed", "3")
    try:
        auctions = [a for i in range(1, 6) for a in f.page(i)["auctions"]]
    finally:
        f.stop()
    share = sum(a["bin"] for a in auctions) / len(auctions)
    real_share = sum(a["bin"] for a in real_page["auctions"]) / 1000
    assert abs(share - real_share) < 0.04
    sellers = {a["auctioneer"] for a in auctions}
    assert len(sellers) > 1000  # many sellers, as on the real page (470 per 1,000)


def test_clock_paused_then_advanced_refreshes_about_every_minute(small):
    lu0 = small.page(0)["lastUpdated"]
    time.sleep(0.3)
    assert small.page(0)["lastUpdated"] == lu0  # paused: nothing moves
    r = small.post("/_fake/clock", {"advance_ms": 62001})
    assert 58000 <= r["last_updated"] - lu0 <= 62000
    assert small.page(0)["lastUpdated"] == r["last_updated"]
    gaps = []
    last = r["last_updated"]
    for _ in range(5):
        lu = small.post("/_fake/refresh")["last_updated"]
        gaps.append(lu - last)
        last = lu
    assert all(58000 <= g <= 62000 for g in gaps), gaps
    assert len(set(gaps)) > 1  # about 60 s, not exactly


def test_speed_runs_the_clock_faster(tmp_path):
    f = start(tmp_path, "--pages", "1", "--speed", "300", "--seed", "2")
    try:
        lu0 = f.page(0)["lastUpdated"]
        deadline = time.monotonic() + 10
        while f.page(0)["lastUpdated"] == lu0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert f.state()["generation"] >= 1
    finally:
        f.stop()


def test_listing_appears_sells_and_leaves(small):
    small.post("/_fake/quiet", {"quiet": True})
    seller = "ab" * 16
    r = small.post("/_fake/list", {"template": 5, "price": 12345, "seller": seller})
    u = r["uuid"]
    assert all(a["uuid"] != u for a in small.page(0)["auctions"])  # not before the refresh
    lu = small.post("/_fake/refresh")["last_updated"]
    top = small.page(0)["auctions"][0]
    assert top["uuid"] == u and top["starting_bid"] == 12345 and top["auctioneer"] == seller
    assert top["bin"] is True and top["last_updated"] <= lu
    small.post("/_fake/sell", {"uuid": u, "buyer": "cd" * 16})
    lu2 = small.post("/_fake/refresh")["last_updated"]
    st, ended = small.get("/v2/skyblock/auctions_ended")
    assert st == 200 and ended["success"] is True and ended["lastUpdated"] == lu2
    sale = [s for s in ended["auctions"] if s["auction_id"] == u]
    assert len(sale) == 1
    assert sale[0]["price"] == 12345 and sale[0]["seller"] == seller
    assert sale[0]["buyer"] == "cd" * 16 and lu2 - 60000 < sale[0]["timestamp"] <= lu2
    assert list(sale[0]) == ["auction_id", "seller", "seller_profile", "buyer", "buyer_profile",
                             "timestamp", "price", "bin", "item_bytes"]
    assert all(a["uuid"] != u for i in range(3) for a in small.page(i)["auctions"])
    # A minute later the sale has left auctions_ended (it holds about 60 s).
    small.post("/_fake/refresh")
    assert all(s["auction_id"] != u for s in small.get("/v2/skyblock/auctions_ended")[1]["auctions"])


def test_expire_removes_a_listing(small):
    small.post("/_fake/quiet", {"quiet": True})
    u = small.post("/_fake/list", {"template": 1, "price": 99})["uuid"]
    small.post("/_fake/refresh")
    assert small.page(0)["auctions"][0]["uuid"] == u
    small.post("/_fake/expire", {"uuid": u})
    small.post("/_fake/refresh")
    assert all(a["uuid"] != u for i in range(3) for a in small.page(i)["auctions"])
    assert all(s["auction_id"] != u for s in small.get("/v2/skyblock/auctions_ended")[1]["auctions"])


def test_random_market_moves(small):
    before = {a["uuid"] for i in range(3) for a in small.page(i)["auctions"]}
    small.post("/_fake/refresh")
    after = {a["uuid"] for i in range(3) for a in small.page(i)["auctions"]}
    ended = small.get("/v2/skyblock/auctions_ended")[1]["auctions"]
    assert after - before, "no new listings"
    assert before - after, "nothing sold or expired"
    assert ended and all(s["auction_id"] in before for s in ended if s["bin"])


def test_manipulated_market_trades_back_and_forth(small):
    small.post("/_fake/quiet", {"quiet": True})
    a, b = "a1" * 16, "b2" * 16
    small.post("/_fake/manipulate", {"template": 3, "accounts": [a, b], "price": 5000000,
                                     "per_refresh": 6, "refreshes": 2})
    small.post("/_fake/sales", {"template": 3, "sales": [{"price": 100}, {"price": 110}]})
    small.post("/_fake/refresh")
    ended = small.get("/v2/skyblock/auctions_ended")[1]["auctions"]
    man = [s for s in ended if {s["seller"], s["buyer"]} == {a, b}]
    assert len(man) == 6 and all(s["price"] == 5000000 for s in man)
    assert sum(1 for s in man if s["seller"] == a) == 3
    # Auctions with bids still end on time in a quiet market: only the
    # injected sales carry prices this low.
    assert sorted(s["price"] for s in ended if s not in man and s["price"] < 1000) == [100, 110]
    small.post("/_fake/refresh")
    small.post("/_fake/refresh")  # two refreshes asked for, so the third has none
    ended = small.get("/v2/skyblock/auctions_ended")[1]["auctions"]
    assert not [s for s in ended if s["seller"] in (a, b)]


def test_not_populated_answers_503(small):
    small.post("/_fake/populated", {"populated": False, "count": 2})
    for path in ("/v2/skyblock/auctions?page=0", "/v2/skyblock/auctions_ended"):
        st, body = small.get(path)
        assert st == 503 and body == {"success": False,
                                      "cause": "Data has not yet been populated"}
    assert small.get("/v2/skyblock/auctions?page=0")[0] == 200
    small.post("/_fake/populated", {"populated": False})
    assert small.get("/v2/skyblock/auctions?page=1")[0] == 503
    small.post("/_fake/populated", {"populated": True})
    assert small.get("/v2/skyblock/auctions?page=1")[0] == 200


def test_pages_of_one_sweep_can_disagree(small):
    small.post("/_fake/refresh")
    new = small.page(0)["lastUpdated"]
    small.post("/_fake/stale", {"pages": [2], "count": 1})
    old = small.page(2)["lastUpdated"]
    assert old < new
    assert small.page(2)["lastUpdated"] == new  # once only


def test_page_skew_serves_the_previous_refresh_for_a_while(tmp_path):
    f = start(tmp_path, "--pages", "3", "--paused", "--page-skew-ms", "9000")
    try:
        lu0 = f.page(2)["lastUpdated"]
        new = f.post("/_fake/refresh")["last_updated"]
        assert f.page(0)["lastUpdated"] == new
        assert f.page(2)["lastUpdated"] == lu0  # page 2 switches 6 s after the refresh
        f.post("/_fake/clock", {"advance_ms": 6000})
        assert f.page(2)["lastUpdated"] == new
    finally:
        f.stop()


def test_scripts_slow_failing_dropped_and_malformed(small):
    small.post("/_fake/script", {"endpoint": "auctions", "page": 1, "responses": [
        {"delay_ms": 600}, {"status": 500}, {"drop": True}, {"malformed": True},
        {"status": 429}]})
    t = time.monotonic()
    assert small.page(1)["page"] == 1
    assert time.monotonic() - t >= 0.6
    assert small.page(0)["page"] == 0  # other pages are not scripted
    st, body = small.get("/v2/skyblock/auctions?page=1")
    assert st == 500 and body["success"] is False
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        small.raw("/v2/skyblock/auctions?page=1")
    st, _, raw = small.raw("/v2/skyblock/auctions?page=1")
    assert st == 200
    with pytest.raises(ValueError):
        json.loads(raw)
    st, body = small.get("/v2/skyblock/auctions?page=1")
    assert st == 429 and body == {"success": False, "cause": "Key throttle", "throttle": True}
    assert small.page(1)["page"] == 1
    log = small.get("/_fake/requests")[1]["requests"]
    assert [r["status"] for r in log if r["page"] == 1] == [200, 500, 0, 200, 429, 200]


def test_auction_by_uuid_needs_the_key_and_has_item_bytes_as_object(small):
    a = small.page(0)["auctions"][7]
    st, body = small.get("/v2/skyblock/auction?uuid=" + a["uuid"])
    assert st == 403 and body == {"success": False, "cause": "Invalid API key"}
    st, body = small.get("/v2/skyblock/auction?uuid=" + a["uuid"], {"API-Key": "wrong"})
    assert st == 403
    st, body = small.get("/v2/skyblock/auction?uuid=" + a["uuid"], {"API-Key": KEY})
    assert st == 200 and body["success"] is True and len(body["auctions"]) == 1
    got = body["auctions"][0]
    assert got["item_bytes"] == {"type": 0, "data": a["item_bytes"]}
    assert got["uuid"] == a["uuid"] and "_id" in got
    # The same shape as the documentation's example.
    doc = json.loads((FIX / "doc-example-auction-by-uuid.json").read_text())["auctions"][0]
    assert set(doc) <= set(got)
    st, body = small.get("/v2/skyblock/auction?uuid=" + "0" * 32, {"API-Key": KEY})
    assert st == 200 and body == {"success": True, "auctions": []}
    st, body = small.get("/v2/skyblock/auction", {"API-Key": KEY})
    assert st == 400
    log = small.get("/_fake/requests")[1]["requests"]
    assert [r["api_key"] for r in log if r["endpoint"] == "auction"][:3] == ["missing", "wrong", "ok"]


def test_concurrent_requests_are_counted(small):
    small.post("/_fake/script", {"endpoint": "auctions", "responses": [
        {"delay_ms": 400, "repeat": 3}]})
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        list(ex.map(lambda i: small.page(i), range(3)))
    assert small.state()["max_inflight"] == 3


def test_gzip_when_asked(tmp_path):
    f = start(tmp_path, "--pages", "1", "--paused", "--gzip")
    try:
        st, h, body = f.raw("/v2/skyblock/auctions?page=0", {"Accept-Encoding": "gzip"})
        assert st == 200 and h.get("Content-Encoding") == "gzip"
        assert json.loads(gzip.decompress(body))["page"] == 0
        st, h, body = f.raw("/v2/skyblock/auctions?page=0")
        assert "Content-Encoding" not in h and json.loads(body)["page"] == 0
    finally:
        f.stop()


def test_templates_lists_the_real_items(small, real_page):
    ts = small.get("/_fake/templates?q=hyperion")[1]["templates"]
    want = [i for i, a in enumerate(real_page["auctions"]) if "hyperion" in a["item_name"].lower()]
    assert [t["template"] for t in ts] == want
