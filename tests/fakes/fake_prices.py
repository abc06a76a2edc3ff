#!/usr/bin/python3
"""Fake stock price APIs (Finnhub, Polygon, Alpaca, Yahoo) for souk's tests, on loopback.

Run with Debian's Python (it needs python3-aiohttp):

    /usr/bin/python3 tests/fakes/fake_prices.py --port 0 --port-file PATH \
        [--print-port] [--prices AAPL=189.25,MSFT=415.10] \
        [--finnhub-token T[,T2...]] [--polygon-key K[,K2...]] \
        [--alpaca-key-id ID[,ID2...]] [--alpaca-secret S[,S2...]]

Each key option takes a comma-separated list: every key in it is valid
(Alpaca's ids and secrets pair in order), as a provider account with
several keys would be, and each key has its own request budget.

With --port 0 it binds 127.0.0.1 on a free port and writes the number to
--port-file once it is listening (with --print-port also as the first line
of stdout, for C tests that spawn it).  Logs go to stderr.  One aiohttp app
on one port serves every provider, each under its real path, so a client
points all four base URLs at http://127.0.0.1:PORT:

  GET /api/v1/quote?symbol=S                 Finnhub (token: ?token= or X-Finnhub-Token)
  GET /v2/aggs/ticker/S/prev                 Polygon (apiKey: ?apiKey= or Authorization: Bearer)
  GET /v2/last/trade/S                       Polygon
  GET /v2/stocks/trades/latest?symbols=A,B   Alpaca (APCA-API-KEY-ID + APCA-API-SECRET-KEY)
  GET /v8/finance/chart/S                    Yahoo (no key; a User-Agent is required;
                                             BRK-B is the BRK.B price, Yahoo's spelling)

Bodies are built from the captured fixtures in tests/fixtures/marketdata
(the same keys, key order and value types), with the configured price put
in as exact decimal text.  Shapes with no captured file (all-zero Finnhub
quote, Polygon resultsCount 0, Alpaca errors, Yahoo's 404 chart error, the
429 bodies) follow tests/fixtures/marketdata/SHAPES.md and are marked
"reconstructed" below.  Unknown symbols get each provider's no-data shape.

Control API (JSON; POSTs answer {"ok": true, ...} or 4xx {"error": ...}):

  GET  /_fake/state                    prices, queued scripts, limits, counts
  GET  /_fake/requests?since=N         {"requests": [...], "next": M}: one entry per
       provider request: {"i", "at", "provider", "path", "symbol", "status",
       "auth": "ok"|reason, "key": the key it carried (Alpaca: the key id;
       null for Yahoo or none), "scripted": action or null}
  POST /_fake/prices {"AAPL": "189.25" | {"price": "189.25", "prev_close": "188",
       "time": unix_s} | null, ...}    set (null: forget) prices; text is kept exact
  POST /_fake/script {"provider": "finnhub"|"polygon"|"alpaca"|"yahoo"|"*",
       "responses": [ACTION, ...]}     queue actions used in order by that
       provider's next requests; an ACTION is one of
         {"status": 429, "retry_after": 2}   the provider's 429 (Retry-After header
                                             only when retry_after is given)
         {"nodata": true}                    the provider's no-data shape
         {"status": 401} / {"status": 403}   the provider's auth error shape
         {"status": 500|502|503, "body": "..."}  a server error
         {"delay_ms": 3000}                  sleep, then answer normally
         {"malformed": true}                 200 with a truncated JSON body
         {"status": N, "body": "...", "headers": {...}}  anything else
         {"quota": true}                     the provider's out-of-quota answer in a
                                             200 (Finnhub's {"error": "API limit
                                             reached..."}; the others' 429)
       and may carry "repeat": N (use it N times; -1: until cleared) and
       "key": K (only requests carrying key K use it; others pass it by).
  POST /_fake/script/clear             drop all queued actions
  POST /_fake/limits {"polygon": {"limit": 5, "window_s": 60}, ...}  make the
       fake answer real 429s past a request budget, counted per key as the
       providers count (null removes it)
  POST /_fake/reset                    clear scripts, limits and the request log
"""

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
import time
import uuid
from decimal import Decimal, InvalidOperation

from aiohttp import web

LOG = logging.getLogger("fake_prices")
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "marketdata")
PROVIDERS = ("finnhub", "polygon", "alpaca", "yahoo")
SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,14}$")

DEFAULT_PRICES = {
    # symbol: (price, previous close), decimal text
    "AAPL": ("189.25", "187.50"),
    "MSFT": ("415.10", "410.00"),
    "IBM": ("142.2", "141.8"),
    "NVDA": ("875.123456", "860.5"),
    "TSLA": ("175.79", "177.01"),
    "BRK.B": ("408.01", "407.2"),
}


class Raw:
    """A JSON number written as its exact decimal text."""

    def __init__(self, text):
        self.text = text


def dumps(v, indent=0):
    """json.dumps that writes Raw numbers verbatim and keeps key order."""
    pad = "  " * (indent + 1)
    end = "  " * indent
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = ["%s%s: %s" % (pad, json.dumps(k), dumps(x, indent + 1)) for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(v, list):
        if not v:
            return "[]"
        return "[\n" + ",\n".join(pad + dumps(x, indent + 1) for x in v) + "\n" + end + "]"
    return json.dumps(v)


def load_fixture(rel):
    with open(os.path.join(FIXTURES, rel)) as f:
        return json.load(f)


def load_text(rel):
    with open(os.path.join(FIXTURES, rel)) as f:
        return f.read().strip()


def check_decimal(text):
    """Validate a price given over the control API; returns the text."""
    if not isinstance(text, str) or not re.match(r"^(0|[1-9][0-9]*)(\.[0-9]+)?$", text):
        raise ValueError("price must be a non-negative decimal string, got %r" % (text,))
    Decimal(text)
    return text


class FakePrices:
    def __init__(self, args):
        self.args = args
        self.prices = {}
        for sym, (p, pc) in DEFAULT_PRICES.items():
            self.prices[sym] = {"price": p, "prev_close": pc, "time": None}
        if args.prices:
            for item in args.prices.split(","):
                sym, _, p = item.partition("=")
                self.prices[sym.strip()] = {"price": check_decimal(p.strip()), "prev_close": None,
                                            "time": None}
        self.scripts = {p: [] for p in PROVIDERS}
        self.limits = {}
        self.sent = {}  # (provider, key) -> send times
        self.log = []
        self.port = None
        # Templates: the captured bodies.
        self.t_finnhub = load_fixture("finnhub/quote-docs-sample-issue339.json")
        self.t_polygon_prev = load_fixture("polygon/v2-aggs-ticker-AAPL-prev.json")
        self.t_polygon_last = load_fixture("polygon/v2-last-trade-AAPL.json")
        self.t_polygon_403 = load_fixture("polygon/error-403-not-authorized.json")
        self.t_alpaca = load_fixture("alpaca/v2-stocks-trades-latest-AAPL.json")
        self.t_yahoo = load_fixture("yahoo/chart-AAPL-2020-01-01-to-2020-01-03.body.json")
        self.finnhub_429_text = load_text("finnhub/quote-429-body-issue466.txt")
        self.finnhub_429_notoken = load_text("finnhub/quote-429-body-issue122.txt")

    # ---- helpers ------------------------------------------------------

    def entry(self, sym):
        e = self.prices.get(sym)
        if not e:
            return None
        t = e["time"] if e["time"] is not None else int(time.time())
        prev = e["prev_close"] or e["price"]
        return e["price"], prev, t

    def next_action(self, provider, key=None):
        for name in (provider, "*"):
            q = self.scripts.get(name) or []
            # The first action for this request: one for any key, or for its key.
            i = next((i for i, a in enumerate(q) if a.get("key") in (None, key)), None)
            if i is not None:
                a = q[i]
                rep = a.get("repeat", 1)
                if rep == -1:
                    return a
                if rep <= 1:
                    q.pop(i)
                else:
                    a["repeat"] = rep - 1
                return a
        return None

    def over_limit(self, provider, key=None):
        lim = self.limits.get(provider)
        if not lim:
            return False
        now = time.monotonic()
        sent = [t for t in self.sent.get((provider, key), []) if t > now - lim["window_s"]]
        self.sent[(provider, key)] = sent
        if len(sent) >= lim["limit"]:
            return True
        sent.append(now)
        return False

    @staticmethod
    def key_of(provider, request):
        """The key a request carried (Alpaca: the key id), or None."""
        if provider == "finnhub":
            return request.query.get("token") or request.headers.get("X-Finnhub-Token")
        if provider == "polygon":
            h = request.headers.get("Authorization", "")
            return request.query.get("apiKey") or (h[len("Bearer "):]
                                                   if h.startswith("Bearer ") else None)
        if provider == "alpaca":
            return request.headers.get("APCA-API-KEY-ID")
        return None

    def record(self, provider, request, symbol, status, auth, action):
        self.log.append({"i": len(self.log), "at": time.time(), "provider": provider,
                         "path": request.path_qs, "symbol": symbol, "status": status,
                         "auth": auth, "key": self.key_of(provider, request),
                         "scripted": action})

    # ---- provider shapes ----------------------------------------------

    def finnhub_quote(self, sym):
        e = self.entry(sym)
        if not e:  # reconstructed (SHAPES.md): the current all-zero body
            return {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}
        p, prev, t = e
        d = Decimal(p) - Decimal(prev)
        dp = (d * 100 / Decimal(prev)).quantize(Decimal("0.0001")) if Decimal(prev) else Decimal(0)
        body = {}
        for k in self.t_finnhub:  # c, h, l, o, pc, t as captured; d, dp as now sent
            body[k] = self.t_finnhub[k]
        body.update({"c": Raw(p), "d": Raw(str(d)), "dp": Raw(str(dp)), "h": Raw(p), "l": Raw(p),
                     "o": Raw(prev), "pc": Raw(prev), "t": t})
        return body

    def finnhub_nodata(self, sym):
        return {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}

    def polygon_prev(self, sym):
        e = self.entry(sym)
        if not e:  # reconstructed (SHAPES.md)
            return self.polygon_nodata(sym)
        p, prev, t = e
        body = json.loads(json.dumps(self.t_polygon_prev))
        body["ticker"] = sym
        bar = body["results"][0]
        bar.update({"T": sym, "vw": Raw(p), "o": Raw(prev), "c": Raw(p), "h": Raw(p), "l": Raw(p),
                    "t": t * 1000})
        body["request_id"] = uuid.uuid4().hex
        return body

    def polygon_nodata(self, sym):
        return {"ticker": sym, "queryCount": 0, "resultsCount": 0, "adjusted": True,
                "status": "OK", "request_id": uuid.uuid4().hex}

    def polygon_last(self, sym):
        e = self.entry(sym)
        if not e:  # reconstructed: Polygon answers 404 NOT_FOUND for unknown tickers here
            return None
        p, prev, t = e
        body = json.loads(json.dumps(self.t_polygon_last))
        body["results"].update({"T": sym, "p": Raw(p), "t": t * 1000000000,
                                "y": t * 1000000000, "f": t * 1000000000})
        body["request_id"] = uuid.uuid4().hex
        return body

    def alpaca_trades(self, syms):
        trades = {}
        tmpl = self.t_alpaca["trades"]["AAPL"]
        for sym in syms:
            e = self.entry(sym)
            if not e:
                continue  # unknown symbols are left out of the map
            p, prev, t = e
            tr = dict(tmpl)
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".123456789Z"
            tr.update({"t": ts, "p": Raw(p)})
            trades[sym] = tr
        return {"trades": trades}

    def yahoo_chart(self, sym, rng):
        # Yahoo spells share classes with a dash (BRK-B); the others with a dot.
        e = self.entry(sym) or self.entry(sym.replace("-", "."))
        if not e:
            return None
        p, prev, t = e
        body = json.loads(json.dumps(self.t_yahoo))
        r = body["chart"]["result"][0]
        m = r["meta"]
        m.update({"symbol": sym, "regularMarketTime": t, "regularMarketPrice": Raw(p),
                  "regularMarketDayHigh": Raw(p), "regularMarketDayLow": Raw(p),
                  "chartPreviousClose": Raw(prev), "range": rng or ""})
        m["longName"] = m["shortName"] = sym
        day = t - t % 86400
        r["timestamp"] = [day + 14 * 3600 + 1800]
        q = r["indicators"]["quote"][0]
        for k in ("close", "low", "open", "high"):
            q[k] = [Raw(p)]
        r["indicators"]["adjclose"][0]["adjclose"] = [Raw(p)]
        return body

    YAHOO_404 = {"chart": {"result": None, "error": {
        "code": "Not Found", "description": "No data found, symbol may be delisted"}}}

    def err_429(self, provider, action):
        headers = {}
        ra = action.get("retry_after") if action else None
        if ra is not None:
            headers["Retry-After"] = str(ra)
        if provider == "finnhub":
            return web.Response(status=429, text=self.finnhub_429_text, headers=headers)
        if provider == "polygon":
            return web.json_response({"status": "ERROR", "request_id": uuid.uuid4().hex,
                                      "error": "You've exceeded the maximum requests per minute, "
                                               "please wait or upgrade your subscription to "
                                               "continue."}, status=429, headers=headers)
        if provider == "alpaca":
            headers.update({"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset": str(int(time.time()) + 60)})
            return web.json_response({"code": 42910000, "message": "rate limit exceeded"},
                                     status=429, headers=headers)
        return web.Response(status=429, text="Too Many Requests", headers=headers)

    def err_auth(self, provider, status):
        if provider == "finnhub":
            msg = "Invalid API key" if status == 401 else "You don't have access to this resource."
            return web.json_response({"error": msg}, status=status)
        if provider == "polygon":
            if status == 403:
                b = dict(self.t_polygon_403)
                b["request_id"] = uuid.uuid4().hex
                return web.json_response(b, status=403)
            return web.json_response({"status": "ERROR", "request_id": uuid.uuid4().hex,
                                      "error": "Unknown API Key"}, status=401)
        if provider == "alpaca":
            return web.json_response({"code": 40110000, "message": "request is not authorized"},
                                     status=status)
        return web.Response(status=status, text="Unauthorized")

    def nodata(self, provider, sym, rng=None):
        if provider == "finnhub":
            return self.json(self.finnhub_nodata(sym))
        if provider == "polygon":
            return self.json(self.polygon_nodata(sym))
        if provider == "alpaca":
            return self.json({"trades": {}})
        return self.json(self.YAHOO_404, status=404)

    @staticmethod
    def json(body, status=200, headers=None):
        return web.Response(status=status, text=dumps(body), content_type="application/json",
                            headers=headers)

    # ---- auth ---------------------------------------------------------

    def check_auth(self, provider, request):
        """Returns "ok" or a short reason."""
        a = self.args

        def keys(v):
            return [k.strip() for k in v.split(",") if k.strip()]
        if provider == "finnhub":
            tok = self.key_of(provider, request)
            if not tok:
                return "missing"
            return "ok" if tok in keys(a.finnhub_token) else "wrong"
        if provider == "polygon":
            key = self.key_of(provider, request)
            if not key:
                return "missing"
            return "ok" if key in keys(a.polygon_key) else "wrong"
        if provider == "alpaca":
            kid = request.headers.get("APCA-API-KEY-ID")
            sec = request.headers.get("APCA-API-SECRET-KEY")
            if not kid or not sec:
                return "missing"
            pairs = list(zip(keys(a.alpaca_key_id), keys(a.alpaca_secret)))
            return "ok" if (kid, sec) in pairs else "wrong"
        return "ok" if request.headers.get("User-Agent") else "missing user-agent"

    def quota(self, provider):
        """The provider's out-of-quota answer where it is not a 429."""
        if provider == "finnhub":
            return self.json({"error": self.finnhub_429_text})
        return self.err_429(provider, None)

    def auth_failure(self, provider, why):
        if provider == "finnhub" and why == "missing":
            # issue #122: Finnhub answers a missing token with a 429 text.
            return web.Response(status=429, text=self.finnhub_429_notoken)
        if provider == "yahoo":
            return web.Response(status=429, text="Too Many Requests")
        return self.err_auth(provider, 401)

    # ---- the one request path -----------------------------------------

    async def serve(self, provider, request, symbol, normal):
        key = self.key_of(provider, request)
        action = self.next_action(provider, key)
        auth = self.check_auth(provider, request)
        if action and action.get("delay_ms"):
            await asyncio.sleep(action["delay_ms"] / 1000.0)
        if auth != "ok":
            resp = self.auth_failure(provider, auth)
        elif action and action.get("nodata"):
            resp = self.nodata(provider, symbol)
        elif action and action.get("quota"):
            resp = self.quota(provider)
        elif action and action.get("malformed"):
            resp = web.Response(status=200, text='{"c": 1', content_type="application/json")
        elif action and action.get("status") == 429:
            resp = self.err_429(provider, action)
        elif action and action.get("status") in (401, 403) and "body" not in action:
            resp = self.err_auth(provider, action["status"])
        elif action and action.get("status"):
            resp = web.Response(status=action["status"], text=action.get("body", ""),
                                headers=action.get("headers"))
        elif self.over_limit(provider, key):
            resp = self.err_429(provider, None)
        else:
            resp = normal()
        self.record(provider, request, symbol, resp.status, auth, action)
        return resp

    async def h_finnhub(self, request):
        sym = request.query.get("symbol", "")

        def normal():
            if not sym:
                return self.json({"error": "Wrong symbol."}, status=422)
            return self.json(self.finnhub_quote(sym))
        return await self.serve("finnhub", request, sym, normal)

    async def h_polygon_prev(self, request):
        sym = request.match_info["sym"]
        return await self.serve("polygon", request, sym, lambda: self.json(self.polygon_prev(sym)))

    async def h_polygon_last(self, request):
        sym = request.match_info["sym"]

        def normal():
            b = self.polygon_last(sym)
            if b is None:
                return self.json({"status": "NOT_FOUND", "request_id": uuid.uuid4().hex,
                                  "message": "Data not found."}, status=404)
            return self.json(b)
        return await self.serve("polygon", request, sym, normal)

    async def h_alpaca(self, request):
        syms = [s for s in request.query.get("symbols", "").split(",") if s]

        def normal():
            if not syms:
                return self.json({"message": "missing symbols"}, status=400)
            for s in syms:
                if not SYMBOL_RE.match(s):
                    return self.json({"message": "invalid symbol: %s" % s}, status=400)
            feed = request.query.get("feed")
            if feed not in (None, "iex", "sip", "otc", "delayed_sip"):
                return self.json({"message": "invalid feed: %s" % feed}, status=400)
            return self.json(self.alpaca_trades(syms))
        return await self.serve("alpaca", request, ",".join(syms), normal)

    async def h_yahoo(self, request):
        sym = request.match_info["sym"]

        def normal():
            b = self.yahoo_chart(sym, request.query.get("range"))
            if b is None:
                return self.json(self.YAHOO_404, status=404)
            return self.json(b)
        return await self.serve("yahoo", request, sym, normal)

    # ---- control ------------------------------------------------------

    async def c_state(self, request):
        return web.json_response({"prices": self.prices, "scripts": self.scripts,
                                  "limits": self.limits, "requests": len(self.log),
                                  "port": self.port})

    async def c_requests(self, request):
        since = int(request.query.get("since", "0"))
        return web.json_response({"requests": self.log[since:], "next": len(self.log)})

    async def body(self, request):
        try:
            return await request.json()
        except (json.JSONDecodeError, ValueError):
            raise web.HTTPBadRequest(text=json.dumps({"error": "body must be JSON"}),
                                     content_type="application/json")

    @staticmethod
    def bad(msg):
        return web.json_response({"error": msg}, status=400)

    async def c_prices(self, request):
        b = await self.body(request)
        if not isinstance(b, dict):
            return self.bad("expected an object")
        try:
            for sym, v in b.items():
                if v is None:
                    self.prices.pop(sym, None)
                elif isinstance(v, str):
                    self.prices[sym] = {"price": check_decimal(v), "prev_close": None, "time": None}
                elif isinstance(v, dict):
                    pc = v.get("prev_close")
                    self.prices[sym] = {"price": check_decimal(v["price"]),
                                        "prev_close": check_decimal(pc) if pc is not None else None,
                                        "time": int(v["time"]) if v.get("time") is not None else None}
                else:
                    return self.bad("bad value for %s" % sym)
        except (ValueError, KeyError, InvalidOperation) as e:
            return self.bad(str(e))
        return web.json_response({"ok": True, "prices": self.prices})

    async def c_script(self, request):
        b = await self.body(request)
        prov = b.get("provider") if isinstance(b, dict) else None
        if prov not in PROVIDERS + ("*",):
            return self.bad("provider must be one of %s or *" % ", ".join(PROVIDERS))
        resps = b.get("responses")
        if not isinstance(resps, list) or not all(isinstance(r, dict) for r in resps):
            return self.bad("responses must be a list of objects")
        self.scripts.setdefault(prov, []).extend(dict(r) for r in resps)
        return web.json_response({"ok": True, "queued": len(self.scripts[prov])})

    async def c_script_clear(self, request):
        self.scripts = {p: [] for p in PROVIDERS}
        return web.json_response({"ok": True})

    async def c_limits(self, request):
        b = await self.body(request)
        if not isinstance(b, dict):
            return self.bad("expected an object")
        for prov, v in b.items():
            if prov not in PROVIDERS:
                return self.bad("unknown provider %s" % prov)
            if v is None:
                self.limits.pop(prov, None)
            else:
                self.limits[prov] = {"limit": int(v["limit"]), "window_s": float(v["window_s"])}
            self.sent = {k: v for k, v in self.sent.items() if k[0] != prov}
        return web.json_response({"ok": True, "limits": self.limits})

    async def c_reset(self, request):
        self.scripts = {p: [] for p in PROVIDERS}
        self.limits = {}
        self.sent = {}
        self.log = []
        return web.json_response({"ok": True})

    def make_app(self):
        app = web.Application()
        r = app.router
        r.add_get("/api/v1/quote", self.h_finnhub)
        r.add_get("/v2/aggs/ticker/{sym}/prev", self.h_polygon_prev)
        r.add_get("/v2/last/trade/{sym}", self.h_polygon_last)
        r.add_get("/v2/stocks/trades/latest", self.h_alpaca)
        r.add_get("/v8/finance/chart/{sym}", self.h_yahoo)
        r.add_get("/_fake/state", self.c_state)
        r.add_get("/_fake/requests", self.c_requests)
        r.add_post("/_fake/prices", self.c_prices)
        r.add_post("/_fake/script", self.c_script)
        r.add_post("/_fake/script/clear", self.c_script_clear)
        r.add_post("/_fake/limits", self.c_limits)
        r.add_post("/_fake/reset", self.c_reset)
        return app


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--print-port", action="store_true",
                    help="also print the port as the first line of stdout")
    ap.add_argument("--prices", default="", help="SYM=decimal,... added to the defaults")
    ap.add_argument("--finnhub-token", default="fh-test-token-0001")
    ap.add_argument("--polygon-key", default="pg-test-key-0002")
    ap.add_argument("--alpaca-key-id", default="PKTEST00000000000003")
    ap.add_argument("--alpaca-secret", default="alpaca-test-secret-0004")
    ap.add_argument("--log-level", default="INFO")
    return ap.parse_args(argv)


async def amain(args):
    fake = FakePrices(args)
    runner = web.AppRunner(fake.make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, shutdown_timeout=0.5)
    await site.start()
    fake.port = site._server.sockets[0].getsockname()[1]
    LOG.info("listening on http://%s:%d", args.host, fake.port)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % fake.port)
        os.replace(tmp, args.port_file)
    if args.print_port:
        sys.stdout.write("%d\n" % fake.port)
        sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        stream=sys.stderr,
                        format="%(asctime)s fake_prices %(levelname)s %(message)s")
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
