"""Tests of the fake price APIs themselves (tests/fakes/fake_prices.py).

Run: cd /work/main && /usr/bin/python3 -m pytest -q tests/fakes/test_fake_prices.py
Each test starts its own fake as a subprocess (--port 0 --port-file) and
talks to it over HTTP with urllib, the way a client would.  Bodies are
checked against the captured fixtures: same keys, same value types.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "fakes" / "fake_prices.py"
FIX = ROOT / "tests" / "fixtures" / "marketdata"

FH = "fh-test-token-0001"
PG = "pg-test-key-0002"
AK = "PKTEST00000000000003"
AS = "alpaca-test-secret-0004"
UA = {"User-Agent": "souk-tests"}


class Fake:
    def __init__(self, tmp, *args):
        pf = tmp / "port"
        self.proc = subprocess.Popen([sys.executable, str(FAKE), "--port", "0", "--port-file",
                                      str(pf), *args], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not pf.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("fake_prices did not start")
            time.sleep(0.02)
        self.port = int(pf.read_text())
        self.base = "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def get(self, path, headers=None, timeout=10):
        req = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()

    def post(self, path, body):
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def requests(self, since=0):
        return json.loads(self.get("/_fake/requests?since=%d" % since)[2])["requests"]


@pytest.fixture
def fake(tmp_path):
    f = Fake(tmp_path)
    yield f
    f.stop()


def fixture(rel):
    return json.loads((FIX / rel).read_text())


def same_shape(got, want, path="$"):
    """got has every key of want, with values of the same JSON type."""
    if isinstance(want, dict):
        assert isinstance(got, dict), path
        for k, v in want.items():
            assert k in got, "%s.%s missing" % (path, k)
            same_shape(got[k], v, path + "." + k)
    elif isinstance(want, list):
        assert isinstance(got, list), path
        if want and got:
            same_shape(got[0], want[0], path + "[0]")
    elif isinstance(want, bool):
        assert isinstance(got, bool), path
    elif isinstance(want, (int, float)):
        assert isinstance(got, (int, float)) and not isinstance(got, bool), path
    elif isinstance(want, str):
        assert isinstance(got, str), path


def finnhub(fake, sym, token=FH):
    return fake.get("/api/v1/quote?symbol=%s" % sym, {"X-Finnhub-Token": token} if token else {})


def polygon(fake, sym, key=PG):
    return fake.get("/v2/aggs/ticker/%s/prev?adjusted=true" % sym,
                    {"Authorization": "Bearer " + key} if key else {})


def alpaca(fake, syms, kid=AK, sec=AS):
    h = {}
    if kid:
        h["APCA-API-KEY-ID"] = kid
    if sec:
        h["APCA-API-SECRET-KEY"] = sec
    return fake.get("/v2/stocks/trades/latest?symbols=%s&feed=iex" % syms, h)


def yahoo(fake, sym, ua=True):
    return fake.get("/v8/finance/chart/%s?interval=1d&range=1d" % sym, UA if ua else {"User-Agent": ""})


def test_known_symbol_shapes(fake):
    st, _, body = finnhub(fake, "AAPL")
    assert st == 200
    b = json.loads(body)
    same_shape(b, fixture("finnhub/quote-docs-sample-issue339.json"))
    assert '"c": 189.25' in body and b["pc"] == 187.5 and "d" in b and "dp" in b
    assert abs(b["t"] - time.time()) < 60

    st, _, body = polygon(fake, "AAPL")
    assert st == 200
    b = json.loads(body)
    same_shape(b, fixture("polygon/v2-aggs-ticker-AAPL-prev.json"))
    assert b["resultsCount"] == 1 and b["results"][0]["T"] == "AAPL"
    assert '"c": 189.25' in body

    st, _, body = fake.get("/v2/last/trade/NVDA?apiKey=" + PG)
    assert st == 200
    b = json.loads(body)
    same_shape(b, fixture("polygon/v2-last-trade-AAPL.json"))
    assert '"p": 875.123456' in body  # exact decimal text, no float rounding

    st, _, body = alpaca(fake, "IBM,MSFT")
    assert st == 200
    b = json.loads(body)
    same_shape(b, fixture("alpaca/v2-stocks-trades-latest-IBM-MSFT.json"))
    assert '"p": 142.2' in body and b["trades"]["MSFT"]["t"].endswith("Z")

    st, _, body = yahoo(fake, "MSFT")
    assert st == 200
    b = json.loads(body)
    same_shape(b, fixture("yahoo/chart-AAPL-2020-01-01-to-2020-01-03.body.json"))
    m = b["chart"]["result"][0]["meta"]
    assert m["symbol"] == "MSFT" and m["range"] == "1d" and '"regularMarketPrice": 415.10' in body
    assert m["chartPreviousClose"] == 410.0
    st, _, body = yahoo(fake, "BRK-B")
    assert st == 200 and json.loads(body)["chart"]["result"][0]["meta"]["symbol"] == "BRK-B"
    assert '"regularMarketPrice": 408.01' in body


def test_unknown_symbol_nodata_shapes(fake):
    st, _, body = finnhub(fake, "ZZZZ")
    assert st == 200 and json.loads(body) == {"c": 0, "d": None, "dp": None, "h": 0, "l": 0,
                                              "o": 0, "pc": 0, "t": 0}
    st, _, body = polygon(fake, "ZZZZ")
    b = json.loads(body)
    assert st == 200 and b["resultsCount"] == 0 and "results" not in b and b["status"] == "OK"
    st, _, body = alpaca(fake, "ZZZZ")
    assert st == 200 and json.loads(body) == fixture(
        "alpaca/v2-stocks-trades-latest-unknown-symbol.json")
    st, _, body = yahoo(fake, "ZZZZ")
    b = json.loads(body)
    assert st == 404 and b["chart"]["result"] is None
    assert b["chart"]["error"]["code"] == "Not Found"
    st, _, body = alpaca(fake, "bad$sym")
    assert st == 400 and json.loads(body)["message"].startswith("invalid symbol")


def test_auth_is_checked(fake):
    st, _, body = finnhub(fake, "AAPL", token=None)
    assert st == 429 and body.startswith("API limit reached")  # Finnhub's missing-token answer
    st, _, body = finnhub(fake, "AAPL", token="wrong")
    assert st == 401 and "error" in json.loads(body)
    st, _, _ = fake.get("/api/v1/quote?symbol=AAPL&token=" + FH)
    assert st == 200
    st, _, body = polygon(fake, "AAPL", key="wrong")
    assert st == 401 and json.loads(body)["error"] == "Unknown API Key"
    st, _, _ = fake.get("/v2/aggs/ticker/AAPL/prev?apiKey=" + PG)
    assert st == 200
    st, _, _ = alpaca(fake, "AAPL", sec=None)
    assert st == 401
    st, _, _ = alpaca(fake, "AAPL", kid="PKWRONG")
    assert st == 401
    st, _, _ = yahoo(fake, "AAPL", ua=False)
    assert st == 429
    log = fake.requests()
    assert [r["auth"] for r in log] == ["missing", "wrong", "ok", "wrong", "ok", "missing",
                                        "wrong", "missing user-agent"]
    assert [r["provider"] for r in log][:3] == ["finnhub"] * 3


def test_prices_control(fake):
    st, b = fake.post("/_fake/prices", {"AAPL": "200.000001", "NEW": {"price": "1.5",
                                                                      "prev_close": "1.25",
                                                                      "time": 1700000000}})
    assert st == 200 and b["ok"]
    _, _, body = finnhub(fake, "AAPL")
    assert '"c": 200.000001' in body
    _, _, body = finnhub(fake, "NEW")
    b = json.loads(body)
    assert b["t"] == 1700000000 and b["pc"] == 1.25 and Decimal(str(b["d"])) == Decimal("0.25")
    _, _, body = polygon(fake, "NEW")
    assert json.loads(body)["results"][0]["t"] == 1700000000000
    _, _, body = alpaca(fake, "NEW")
    assert json.loads(body)["trades"]["NEW"]["t"].startswith("2023-11-14T22:13:20.")
    fake.post("/_fake/prices", {"NEW": None})
    _, _, body = finnhub(fake, "NEW")
    assert json.loads(body)["c"] == 0
    for bad in ("-1", "1e5", "abc", 12.5):
        st, b = fake.post("/_fake/prices", {"AAPL": bad})
        assert st == 400 and "error" in b


def test_scripted_429s(fake):
    fake.post("/_fake/script", {"provider": "finnhub", "responses": [
        {"status": 429, "retry_after": 3}, {"status": 429}]})
    fake.post("/_fake/script", {"provider": "polygon", "responses": [{"status": 429}]})
    fake.post("/_fake/script", {"provider": "alpaca", "responses": [{"status": 429}]})
    fake.post("/_fake/script", {"provider": "yahoo", "responses": [{"status": 429,
                                                                    "retry_after": 1}]})
    st, h, body = finnhub(fake, "AAPL")
    assert st == 429 and h.get("Retry-After") == "3"
    assert body == (FIX / "finnhub/quote-429-body-issue466.txt").read_text().strip()
    st, h, body = finnhub(fake, "AAPL")
    assert st == 429 and "Retry-After" not in h
    st, _, _ = finnhub(fake, "AAPL")
    assert st == 200  # the script is used up
    st, h, body = polygon(fake, "AAPL")
    assert st == 429 and json.loads(body)["status"] == "ERROR" and "Retry-After" not in h
    st, h, _ = alpaca(fake, "AAPL")
    assert st == 429 and h["X-RateLimit-Remaining"] == "0" and "Retry-After" not in h
    st, h, body = yahoo(fake, "AAPL")
    assert st == 429 and body == "Too Many Requests" and h["Retry-After"] == "1"
    log = fake.requests()
    assert [r["status"] for r in log] == [429, 429, 200, 429, 429, 429]
    assert log[0]["scripted"]["retry_after"] == 3 and log[2]["scripted"] is None


def test_scripted_nodata_errors_and_repeat(fake):
    fake.post("/_fake/script", {"provider": "*", "responses": [{"nodata": True, "repeat": 4}]})
    assert json.loads(finnhub(fake, "AAPL")[2])["c"] == 0
    assert json.loads(polygon(fake, "AAPL")[2])["resultsCount"] == 0
    assert json.loads(alpaca(fake, "AAPL")[2]) == {"trades": {}}
    assert yahoo(fake, "AAPL")[0] == 404
    assert finnhub(fake, "AAPL")[0] == 200 and json.loads(finnhub(fake, "AAPL")[2])["c"] > 0

    fake.post("/_fake/script", {"provider": "polygon", "responses": [
        {"status": 503, "body": "upstream down", "repeat": 2}, {"malformed": True},
        {"status": 403}]})
    assert polygon(fake, "AAPL")[:3:2] == (503, "upstream down")
    assert polygon(fake, "AAPL")[0] == 503
    st, _, body = polygon(fake, "AAPL")
    assert st == 200
    with pytest.raises(ValueError):
        json.loads(body)
    st, _, body = polygon(fake, "AAPL")
    assert st == 403 and json.loads(body)["status"] == "NOT_AUTHORIZED"
    assert polygon(fake, "AAPL")[0] == 200

    fake.post("/_fake/script", {"provider": "yahoo", "responses": [{"status": 500, "repeat": -1}]})
    for _ in range(3):
        assert yahoo(fake, "AAPL")[0] == 500
    fake.post("/_fake/script/clear", {})
    assert yahoo(fake, "AAPL")[0] == 200


def test_delay_for_timeouts(fake):
    fake.post("/_fake/script", {"provider": "finnhub", "responses": [{"delay_ms": 1500}]})
    t0 = time.monotonic()
    with pytest.raises(Exception):
        finnhub_timeout = fake.get("/api/v1/quote?symbol=AAPL&token=" + FH, timeout=0.3)
        assert finnhub_timeout is None
    assert time.monotonic() - t0 < 1.4
    time.sleep(1.4)
    t0 = time.monotonic()
    assert finnhub(fake, "AAPL")[0] == 200 and time.monotonic() - t0 < 1.0


def test_limits_and_reset(fake):
    st, _ = fake.post("/_fake/limits", {"polygon": {"limit": 2, "window_s": 60}})
    assert st == 200
    assert [polygon(fake, "AAPL")[0] for _ in range(3)] == [200, 200, 429]
    assert finnhub(fake, "AAPL")[0] == 200
    st, _ = fake.post("/_fake/reset", {})
    assert st == 200 and fake.requests() == []
    assert polygon(fake, "AAPL")[0] == 200
    st, b = fake.post("/_fake/script", {"provider": "nope", "responses": []})
    assert st == 400
    st, b = fake.post("/_fake/limits", {"nope": None})
    assert st == 400
    state = json.loads(fake.get("/_fake/state")[2])
    assert state["port"] == fake.port and "AAPL" in state["prices"]


def test_several_keys_each_with_its_budget(tmp_path):
    """Every key of a list is valid, each has its own budget, the log says
    which key a request carried, and actions may target one key."""
    f = Fake(tmp_path, "--finnhub-token", FH + ",fh-second", "--alpaca-key-id", AK + ",PK2",
             "--alpaca-secret", AS + ",sec2")
    try:
        f.post("/_fake/limits", {"finnhub": {"limit": 1, "window_s": 60}})
        assert finnhub(f, "AAPL")[0] == 200
        assert finnhub(f, "AAPL")[0] == 429  # the first key's budget is spent
        assert finnhub(f, "AAPL", token="fh-second")[0] == 200
        assert finnhub(f, "AAPL", token="fh-second")[0] == 429
        assert finnhub(f, "AAPL", token="fh-third")[0] == 401
        assert alpaca(f, "AAPL", kid="PK2", sec="sec2")[0] == 200
        assert alpaca(f, "AAPL", kid="PK2", sec=AS)[0] == 401  # ids and secrets pair in order
        assert [r["key"] for r in f.requests()][:4] == [FH, FH, "fh-second", "fh-second"]
        # An action for one key passes the other keys' requests by.
        f.post("/_fake/limits", {"finnhub": None})
        f.post("/_fake/script", {"provider": "finnhub",
                                 "responses": [{"quota": True, "key": "fh-second"}]})
        assert finnhub(f, "AAPL")[0] == 200
        st, _, body = finnhub(f, "AAPL", token="fh-second")
        assert st == 200 and json.loads(body) == {
            "error": (FIX / "finnhub/quote-429-body-issue466.txt").read_text().strip()}
        assert finnhub(f, "AAPL", token="fh-second")[0] == 200
    finally:
        f.stop()


def test_print_port(tmp_path):
    p = subprocess.Popen([sys.executable, str(FAKE), "--port", "0", "--print-port",
                          "--prices", "XYZ=12.5"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(p.stdout.readline())
        f = Fake.__new__(Fake)
        f.base = "http://127.0.0.1:%d" % port
        assert '"c": 12.5' in finnhub(f, "XYZ")[2]
    finally:
        p.terminate()
        p.wait(5)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"] + sys.argv[1:]))
