"""Tests of the fake KuCoin Futures API itself (tests/fakes/fake_kucoin.py).

Run: /usr/bin/python3 -m pytest -q tests/fakes/test_fake_kucoin.py
Each test starts its own fake as a subprocess (--port 0 --port-file) and
talks to it over HTTP with urllib, the way a client would.  Bodies are
checked against the captured fixture: same keys in the same order, same
value types.
"""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "fakes" / "fake_kucoin.py"
FIX = ROOT / "tests" / "fixtures" / "marketdata" / "kucoin-futures"


class Fake:
    def __init__(self, tmp, *args):
        pf = tmp / "port"
        self.proc = subprocess.Popen([sys.executable, str(FAKE), "--port", "0", "--port-file",
                                      str(pf), "--log-level", "WARNING", *args],
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not pf.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("fake_kucoin did not start")
            time.sleep(0.02)
        self.port = int(pf.read_text())
        self.base = "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def get(self, path, timeout=10):
        req = urllib.request.Request(self.base + path)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()

    def post(self, path, body):
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def active(self):
        st, h, body = self.get("/api/v1/contracts/active")
        return st, h, body, json.loads(body, parse_float=Decimal)


@pytest.fixture
def fake(tmp_path):
    f = Fake(tmp_path)
    yield f
    f.stop()


def kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float, Decimal)):
        return "number"
    if v is None:
        return "null"
    return type(v).__name__


def real_contract():
    return json.loads((FIX / "contracts-active.json").read_text())["data"][0]


def test_contracts_have_the_real_shape(fake):
    st, h, body, j = fake.active()
    assert st == 200
    assert h["content-type"].startswith("application/json")
    assert j["code"] == "200000"
    data = j["data"]
    assert len(data) >= 30
    ref = real_contract()
    assert data[0]["symbol"] == "XBTUSDTM"
    for c in data:
        assert list(c.keys()) == list(ref.keys()), c["symbol"]
        for k, v in ref.items():
            if v is None:
                continue
            assert kind(c[k]) == kind(v), (c["symbol"], k)
        assert isinstance(c["openInterest"], str) and c["openInterest"].isdigit()
        # milliseconds left until the next funding, not a timestamp
        assert 0 < c["nextFundingRateTime"] <= c["fundingRateGranularity"]
        assert c["status"] == "Open"
    assert len({c["symbol"] for c in data}) == len(data)


def test_prices_are_exact_decimal_text(fake):
    _, _, body, j = fake.active()
    # No float artefacts: each price is written as plain decimal text.
    for c in j["data"]:
        txt = '"lastTradePrice":%s' % c["lastTradePrice"]
        assert txt.replace("E", "e") in body or ('"lastTradePrice":%s' % format(
            c["lastTradePrice"], "f")) in body, c["symbol"]
    pepe = [c for c in j["data"] if c["symbol"] == "PEPEUSDTM"][0]
    assert '"lastTradePrice":0.000009871' in body
    assert pepe["lastTradePrice"] == Decimal("0.000009871")


def test_rate_limit_headers_count_the_public_pool(fake):
    st, h, _, _ = fake.active()
    assert st == 200
    assert h["gw-ratelimit-limit"] == "2000"
    assert h["gw-ratelimit-remaining"] == "1997"  # contracts/active weighs 3
    assert 0 < int(h["gw-ratelimit-reset"]) <= 30000
    _, h2, _ = fake.get("/api/v1/status")
    assert h2["gw-ratelimit-remaining"] == "1996"


def test_pool_exhausted_gives_429000_then_recovers(fake):
    assert fake.post("/_fake/limits", {"limit": 7, "window_ms": 600})[0] == 200
    s1 = fake.active()[0]
    s2 = fake.active()[0]
    st, h, body = fake.get("/api/v1/contracts/active")
    assert (s1, s2, st) == (200, 200, 429)
    assert json.loads(body) == {"code": "429000", "msg": "Too Many Requests"}
    assert h["gw-ratelimit-remaining"] == "1"
    reset = int(h["gw-ratelimit-reset"])
    assert 0 < reset <= 600
    time.sleep(reset / 1000 + 0.05)
    assert fake.active()[0] == 200


def test_scripted_429_code_error_5xx_and_malformed(fake):
    fake.post("/_fake/script", {"responses": [
        {"status": 429, "reset_ms": 1234},
        {"code": "400100", "msg": "Parameter error"},
        {"status": 503, "body": "<html>down</html>"},
        {"malformed": True},
    ]})
    st, h, body = fake.get("/api/v1/contracts/active")
    assert st == 429 and json.loads(body)["code"] == "429000"
    assert h["gw-ratelimit-reset"] == "1234" and h["gw-ratelimit-remaining"] == "0"
    st, h, body = fake.get("/api/v1/contracts/active")
    assert st == 200 and json.loads(body) == {"code": "400100", "msg": "Parameter error"}
    st, _, body = fake.get("/api/v1/contracts/active")
    assert st == 503 and "down" in body
    st, _, body = fake.get("/api/v1/contracts/active")
    assert st == 200
    with pytest.raises(ValueError):
        json.loads(body)
    assert fake.active()[0] == 200
    log = json.loads(fake.get("/_fake/requests")[2])["requests"]
    assert [e["status"] for e in log] == [429, 200, 503, 200, 200]
    assert [e["code"] for e in log][:2] == ["429000", "400100"]


def test_repeat_and_clear(fake):
    fake.post("/_fake/script", {"responses": [{"status": 429, "repeat": -1}]})
    assert [fake.get("/api/v1/contracts/active")[0] for _ in range(3)] == [429] * 3
    fake.post("/_fake/script/clear", {})
    fake.post("/_fake/script", {"responses": [{"code": "500000", "repeat": 2}]})
    codes = [json.loads(fake.get("/api/v1/contracts/active")[2])["code"] for _ in range(3)]
    assert codes == ["500000", "500000", "200000"]


def test_slow_answer(fake):
    fake.post("/_fake/script", {"responses": [{"delay_ms": 700}]})
    t = time.monotonic()
    assert fake.active()[0] == 200
    assert time.monotonic() - t >= 0.65


def test_drop_closes_without_an_answer(fake):
    fake.post("/_fake/script", {"responses": [{"drop": True}]})
    s = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    s.sendall(b"GET /api/v1/contracts/active HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(100) == b""
    s.close()
    assert fake.active()[0] == 200


def test_moving_prices_stay_on_tick_and_are_seeded(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Fake(tmp_path / "a", "--move-pct", "2", "--seed", "5")
    b = Fake(tmp_path / "b", "--move-pct", "2", "--seed", "5")
    try:
        first = {c["symbol"]: c for c in a.active()[3]["data"]}
        second = {c["symbol"]: c for c in a.active()[3]["data"]}
        other = {c["symbol"]: c for c in b.active()[3]["data"]}
        moved = [s for s in first if first[s]["lastTradePrice"] != second[s]["lastTradePrice"]]
        assert len(moved) >= len(first) // 2
        for s, c in second.items():
            tick = Decimal(str(c["tickSize"]))
            assert c["lastTradePrice"] % tick == 0, s
            assert c["lastTradePrice"] > 0
            assert other[s]["lastTradePrice"] == first[s]["lastTradePrice"]
            # the 24 h change follows the price
            open_ = c["lastTradePrice"] - Decimal(str(c["priceChg"]))
            if open_ > 0:
                assert abs(Decimal(str(c["priceChgPct"])) - (Decimal(str(c["priceChg"])) /
                                                             open_)) < Decimal("0.0002"), s
        a.post("/_fake/move", {"pct": 0})
        x = a.active()[3]["data"]
        y = a.active()[3]["data"]
        assert [c["lastTradePrice"] for c in x] == [c["lastTradePrice"] for c in y]
    finally:
        a.stop()
        b.stop()


def test_set_contract_fields_exactly(fake):
    st, _ = fake.post("/_fake/contracts", {
        "ETHUSDTM": {"turnoverOf24h": "123456789.125", "fundingFeeRate": "-0.00075",
                     "openInterest": "4242", "nextFundingRateTime": 60000},
        "SOLUSDTM": {"lastTradePrice": "150.55"},
        "XRPUSDTM": None})
    assert st == 200
    _, _, body, j = fake.active()
    d = {c["symbol"]: c for c in j["data"]}
    assert "XRPUSDTM" not in d
    assert '"turnoverOf24h":123456789.125' in body
    assert '"fundingFeeRate":-0.00075' in body
    assert d["ETHUSDTM"]["openInterest"] == "4242"
    assert d["ETHUSDTM"]["nextFundingRateTime"] == 60000
    assert d["SOLUSDTM"]["lastTradePrice"] == Decimal("150.55")
    assert fake.post("/_fake/contracts", {"NOPEUSDTM": {"x": 1}})[0] == 400


def test_contracts_file_is_served_as_recorded(tmp_path):
    f = Fake(tmp_path, "--contracts-file",
             str(FIX / "contracts-active-synthetic.json"))
    try:
        _, _, body, j = f.active()
        want = json.loads((FIX / "contracts-active-synthetic.json").read_text(),
                          parse_float=Decimal)
        assert j == want
        assert len(j["data"]) >= 33
    finally:
        f.stop()


def test_unknown_contract_and_other_routes(fake):
    st, _, body = fake.get("/api/v1/contracts/NOPEUSDTM")
    assert st == 200 and json.loads(body) == {"code": "200000", "data": None}
    st, _, body = fake.get("/api/v1/contracts/XBTUSDTM")
    assert json.loads(body)["data"]["symbol"] == "XBTUSDTM"
    st, _, body = fake.get("/api/v1/status")
    assert json.loads(body) == json.loads((FIX / "status.json").read_text())
    st, _, body = fake.get("/api/v1/timestamp")
    assert abs(json.loads(body)["data"] - time.time() * 1000) < 60000
