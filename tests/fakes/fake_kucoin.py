#!/usr/bin/python3
"""Fake KuCoin Futures public market data API for souk's tests, on loopback.

Run with Debian's Python (it needs python3-aiohttp):

    /usr/bin/python3 tests/fakes/fake_kucoin.py --port 0 --port-file PATH \
        [--print-port] [--synthetic N] [--seed S] [--contracts-file PATH] \
        [--move-pct X] [--limit 2000 --window-ms 30000] [--log-level L]

With --port 0 it binds 127.0.0.1 on a free port and writes the number to
--port-file once it is listening (with --print-port also as the first line
of stdout, for C tests that spawn it).  Logs go to stderr.

Market data (KuCoin's paths, shapes and value types):

  GET /api/v1/contracts/active      every open contract          weight 3
  GET /api/v1/contracts/{symbol}    one contract                 weight 3
  GET /api/v1/status                {"status": "open", "msg": ""} weight 1
  GET /api/v1/timestamp             server time in ms            weight 1

Contracts are built from the captured fixture
tests/fixtures/marketdata/kucoin-futures/contracts-active.json: the real
XBTUSDTM contract, then --synthetic N (default 39) synthetic ones made by
copying that object (same keys, same key order, same value types:
openInterest a string, prices and turnover JSON numbers, nextFundingRateTime
the milliseconds left until the next funding) with other values, from
--seed.  --contracts-file serves the "data" array of a file instead
(tests/fixtures/marketdata/kucoin-futures/contracts-active-synthetic.json is
the fixed set the ranking tests use).  Numbers are written as exact decimal
text.

Moving prices: with --move-pct X (default 0: still), each answer of
contracts/active first moves every contract's lastTradePrice (and mark and
index price, priceChg and priceChgPct) by a random step of at most X percent,
rounded to the contract's tick size.  POST /_fake/move changes it.

Rate limits as KuCoin documents its "public" pool: 2000 weight per 30 s per
IP (VIP0).  Every answer carries gw-ratelimit-limit, gw-ratelimit-remaining
and gw-ratelimit-reset (milliseconds until the window resets).  A request
beyond the pool gets HTTP 429 with {"code": "429000", "msg": "Too Many
Requests"} and the same headers.

Errors: every body has KuCoin's envelope, "code" "200000" for success.  A
scripted code error answers HTTP 200 with another code (KuCoin answers some
errors this way, so a client must check "code", not only the status).

Control API (JSON; POSTs answer {"ok": true, ...} or 400 {"error": ...}):

  GET  /_fake/state                     contracts, pool, move, scripts, counts
  GET  /_fake/requests?since=N          {"requests": [...], "next": M}: one entry per
       market-data request: {"i", "at", "path", "status", "code", "weight",
       "remaining", "scripted": action or null}
  POST /_fake/contracts {"SYM": {"lastTradePrice": "1.5", ...} | null, ...}
       change fields of a contract (numbers as decimal text are kept exact;
       null removes the contract); {"replace": [objects]} replaces the list
  POST /_fake/move {"pct": X, "seed": S}   start (X > 0) or stop moving prices
  POST /_fake/script {"responses": [ACTION, ...]}   actions used in order by the
       next market-data requests; an ACTION is one of
         {"status": 429}                     a 429000 answer (pool headers say
                                             reset_ms, default the real window left)
         {"code": "400100", "msg": "..."}    HTTP 200 with an error code
         {"status": 500|502|503, "body": "..."}  a server error
         {"delay_ms": 3000}                  sleep, then answer normally
         {"malformed": true}                 200 with a truncated JSON body
         {"drop": true}                      close the connection without an answer
       each may carry "repeat": N (use it N times; -1: until cleared) and
       "reset_ms" (429: the gw-ratelimit-reset to announce).
  POST /_fake/script/clear              drop queued actions
  POST /_fake/limits {"limit": 2000, "window_ms": 30000}   the public pool
  POST /_fake/reset                     scripts, pool usage and the request log
"""

import argparse
import asyncio
import copy
import json
import os
import random
import sys
import time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from aiohttp import web

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakeserve  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "marketdata", "kucoin-futures")

# Weights from KuCoin's documentation of each endpoint ("public" pool).
WEIGHTS = {"contracts_active": 3, "contract": 3, "status": 1, "timestamp": 1}
FUNDING_GRANULARITY_MS = 28800000

# Base currencies of the synthetic contracts, with a rough price and 24 h
# turnover scale, so figures look like a real contracts list.
SYNTH_BASES = [
    ("ETH", "3150.25", 6e8), ("SOL", "142.37", 3e8), ("XRP", "0.5231", 2e8),
    ("DOGE", "0.12345", 1.5e8), ("ADA", "0.4512", 6e7), ("AVAX", "27.815", 5e7),
    ("LINK", "14.223", 4e7), ("DOT", "6.123", 3e7), ("TRX", "0.11802", 2.5e7),
    ("LTC", "71.52", 3e7), ("BCH", "378.4", 2.5e7), ("NEAR", "5.412", 2e7),
    ("UNI", "7.801", 1.8e7), ("APT", "8.9012", 1.6e7), ("ARB", "0.9123", 1.5e7),
    ("OP", "1.8231", 1.2e7), ("ATOM", "6.903", 1e7), ("FIL", "4.512", 9e6),
    ("INJ", "22.81", 8e6), ("SUI", "1.0234", 8e6), ("PEPE", "0.000009871", 7e6),
    ("WIF", "2.3456", 6e6), ("SEI", "0.4123", 5e6), ("TIA", "9.123", 5e6),
    ("ETC", "23.12", 4e6), ("XLM", "0.1045", 4e6), ("HBAR", "0.0789", 3e6),
    ("AAVE", "92.15", 3e6), ("MKR", "2512.5", 2e6), ("RUNE", "4.567", 2e6),
    ("GALA", "0.02671", 1.5e6), ("SAND", "0.3412", 1.2e6), ("MANA", "0.3801", 1e6),
    ("AXS", "6.712", 9e5), ("CRV", "0.3123", 8e5), ("LDO", "1.789", 7e5),
    ("ENS", "21.34", 6e5), ("COMP", "51.23", 5e5), ("SNX", "2.012", 4e5),
    ("ZEC", "24.51", 3e5), ("DASH", "27.12", 2e5), ("KSM", "21.5", 1e5),
]


class Raw:
    """A JSON number written as its exact decimal text."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def dumps(v):
    """json.dumps that writes Raw numbers verbatim and keeps key order."""
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, dict):
        return "{" + ",".join("%s:%s" % (json.dumps(k), dumps(x)) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(dumps(x) for x in v) + "]"
    return json.dumps(v)


def plain(v):
    """A contract as plain JSON values (Raw as its text) for the state API."""
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def dec_text(d):
    """Decimal to plain positional text ("0.000009871", "86364", "-0.028")."""
    t = format(d, "f")
    if "." in t:
        t = t.rstrip("0").rstrip(".")
    return "0" if t in ("-0", "") else t


def as_decimal(v):
    if isinstance(v, Raw):
        return Decimal(v.text)
    if isinstance(v, bool) or v is None:
        raise InvalidOperation("not a number")
    return Decimal(str(v))


def load_fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f, parse_float=lambda s: Raw(s), parse_int=lambda s: Raw(s))


def quantize(price, tick):
    """Round price to a multiple of tick, half up, keeping it above zero."""
    q = (price / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP) * tick
    return q if q > 0 else tick


class Contract:
    """One contract: the JSON object served, plus the 24 h open the price
    change is measured from."""

    def __init__(self, obj):
        self.obj = obj
        last = as_decimal(obj["lastTradePrice"])
        chg = as_decimal(obj.get("priceChg", Raw("0")))
        self.open = last - chg if last - chg > 0 else last

    @property
    def symbol(self):
        return self.obj["symbol"]

    def tick(self):
        try:
            t = as_decimal(self.obj["tickSize"])
            return t if t > 0 else Decimal("0.00000001")
        except (KeyError, InvalidOperation):
            return Decimal("0.00000001")

    def set_price(self, last):
        """Move the last price and what follows from it."""
        o = self.obj
        tick = self.tick()
        last = quantize(last, tick)
        o["lastTradePrice"] = Raw(dec_text(last))
        o["markPrice"] = Raw(dec_text(quantize(last * Decimal("1.0001"), tick)))
        o["indexPrice"] = Raw(dec_text(quantize(last * Decimal("1.0002"), tick)))
        chg = last - self.open
        o["priceChg"] = Raw(dec_text((chg / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP)
                                     * tick))
        pct = (chg / self.open).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        o["priceChgPct"] = Raw(dec_text(pct))
        hi, lo = as_decimal(o["highPrice"]), as_decimal(o["lowPrice"])
        if last > hi:
            o["highPrice"] = Raw(dec_text(last))
        if last < lo:
            o["lowPrice"] = Raw(dec_text(last))

    def served(self, now_ms):
        """The object as served now: nextFundingRateTime is what is left
        until the next funding, not a timestamp."""
        o = dict(self.obj)
        if "nextFundingRateTime" in o and not getattr(self, "fixed_funding", False):
            gran = int(as_decimal(o.get("fundingRateGranularity", Raw(str(FUNDING_GRANULARITY_MS)))))
            if gran > 0:
                o["nextFundingRateTime"] = Raw(str(gran - now_ms % gran))
        return o


def synthetic(template, n, seed):
    """n synthetic contracts copied from the real one, deterministic by seed."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        base, price, turn = SYNTH_BASES[i % len(SYNTH_BASES)]
        suffix = "" if i < len(SYNTH_BASES) else str(i // len(SYNTH_BASES))
        o = copy.deepcopy(template)
        sym = base + suffix + "USDTM"
        p = Decimal(price)
        # Tick size: about 5 significant digits.
        exp = p.adjusted() - 4
        tick = Decimal(1).scaleb(exp)
        pct = Decimal(rnd.randint(-1500, 1500)) / Decimal(10000)
        open_ = p / (1 + pct)
        turnover = Decimal(str(round(turn * rnd.uniform(0.5, 1.5), 4)))
        mult = Decimal(1).scaleb(-(p.adjusted() - 1)) if p >= 10 else Decimal(10).scaleb(-p.adjusted())
        mult = mult if mult <= 1000000 else Decimal(1000000)
        volume = (turnover / p).quantize(Decimal("0.001"))
        oi = int((turnover / p / mult) * Decimal(rnd.uniform(0.05, 0.6)))
        funding = Decimal(rnd.randint(-300, 300)) / Decimal(1000000)
        o["symbol"] = sym
        o["baseCurrency"] = base
        o["firstOpenDate"] = Raw(str(1600000000000 + rnd.randint(0, 10**11)))
        o["tickSize"] = Raw(dec_text(tick))
        o["multiplier"] = Raw(dec_text(mult))
        o["fundingBaseSymbol"] = ".%sINT8H" % base
        o["fundingRateSymbol"] = ".%sUSDTMFPI8H" % base
        o["indexSymbol"] = ".K%sUSDT" % base
        o["premiumsSymbol1M"] = ".%sUSDTMPI" % base
        o["premiumsSymbol8H"] = ".%sUSDTMPI8H" % base
        o["fundingBaseSymbol1M"] = ".%sINT" % base
        o["fundingFeeRate"] = Raw(dec_text(funding))
        o["predictedFundingFeeRate"] = Raw(dec_text(funding * Decimal("1.1")))
        o["openInterest"] = str(oi)
        o["turnoverOf24h"] = Raw(dec_text(turnover))
        o["volumeOf24h"] = Raw(dec_text(volume))
        o["maxLeverage"] = Raw(str(rnd.choice([20, 50, 75, 100])))
        o["highPrice"] = Raw(dec_text(quantize(max(p, open_) * Decimal("1.02"), tick)))
        o["lowPrice"] = Raw(dec_text(quantize(min(p, open_) * Decimal("0.98"), tick)))
        o["buyLimit"] = Raw(dec_text(quantize(p * Decimal("1.05"), tick)))
        o["sellLimit"] = Raw(dec_text(quantize(p * Decimal("0.95"), tick)))
        o["priceChg"] = Raw("0")
        o["lastTradePrice"] = Raw(dec_text(p))
        c = Contract(o)
        c.open = open_
        c.set_price(p)
        out.append(c)
    return out


class FakeKucoin:
    def __init__(self, args):
        self.args = args
        self.port = 0
        if args.contracts_file:
            with open(args.contracts_file) as f:
                data = json.load(f, parse_float=lambda s: Raw(s), parse_int=lambda s: Raw(s))
            self.contracts = [Contract(o) for o in data["data"]]
            for c in self.contracts:
                c.fixed_funding = True
        else:
            real = load_fixture("contracts-active.json")["data"]
            self.contracts = [Contract(o) for o in real]
            self.contracts += synthetic(real[0], args.synthetic, args.seed)
        self.move_pct = Decimal(str(args.move_pct))
        self.rnd = random.Random(args.seed)
        self.limit = args.limit
        self.window_ms = args.window_ms
        self.window_start = None
        self.used = 0
        self.scripts = []
        self.log = []
        self.moves = 0

    # ---- the pool ------------------------------------------------------

    def now_ms(self):
        return int(time.time() * 1000)

    def pool(self, weight):
        """Spend weight from the public pool: (allowed, remaining, reset_ms)."""
        now = self.now_ms()
        if self.window_start is None or now - self.window_start >= self.window_ms:
            self.window_start = now
            self.used = 0
        reset = self.window_start + self.window_ms - now
        if self.used + weight > self.limit:
            return False, max(0, self.limit - self.used), reset
        self.used += weight
        return True, self.limit - self.used, reset

    def next_action(self):
        while self.scripts:
            a = self.scripts[0]
            rep = a.get("repeat", 1)
            if rep == -1:
                return a
            if rep <= 1:
                self.scripts.pop(0)
            else:
                a["repeat"] = rep - 1
            return a
        return None

    # ---- answers -------------------------------------------------------

    @staticmethod
    def headers(limit, remaining, reset):
        return {"gw-ratelimit-limit": str(limit), "gw-ratelimit-remaining": str(remaining),
                "gw-ratelimit-reset": str(reset)}

    def envelope(self, data, hdrs, status=200):
        return web.Response(status=status, text=dumps({"code": "200000", "data": data}),
                            content_type="application/json", headers=hdrs)

    def move(self):
        if self.move_pct <= 0:
            return
        self.moves += 1
        scale = int(self.move_pct * 100)
        for c in self.contracts:
            step = Decimal(self.rnd.randint(-scale, scale)) / Decimal(10000)
            c.set_price(as_decimal(c.obj["lastTradePrice"]) * (1 + step))

    async def serve(self, request, kind, normal):
        action = self.next_action()
        weight = WEIGHTS[kind]
        if action and action.get("delay_ms"):
            await asyncio.sleep(action["delay_ms"] / 1000.0)
        entry = {"i": len(self.log), "at": time.time(), "path": request.path_qs,
                 "weight": weight, "scripted": action, "code": None}
        if action and action.get("drop"):
            entry.update(status=0, remaining=None)
            self.log.append(entry)
            if request.transport:
                request.transport.abort()
            return web.Response(status=200)
        ok, remaining, reset = self.pool(weight)
        hdrs = self.headers(self.limit, remaining, reset)
        if action and action.get("status") == 429:
            if "reset_ms" in action:
                hdrs["gw-ratelimit-reset"] = str(int(action["reset_ms"]))
            hdrs["gw-ratelimit-remaining"] = "0"
            resp = web.Response(status=429, text=dumps({"code": "429000",
                                                        "msg": "Too Many Requests"}),
                                content_type="application/json", headers=hdrs)
        elif action and action.get("code"):
            resp = web.Response(status=200, text=dumps({"code": str(action["code"]),
                                                        "msg": action.get("msg", "error")}),
                                content_type="application/json", headers=hdrs)
        elif action and action.get("malformed"):
            resp = web.Response(status=200, text='{"code":"200000","data":[{"symbol":"XB',
                                content_type="application/json", headers=hdrs)
        elif action and action.get("status"):
            resp = web.Response(status=action["status"], text=action.get("body", ""),
                                headers=hdrs)
        elif not ok:
            # remaining stays what is left: less than this request's weight.
            resp = web.Response(status=429, text=dumps({"code": "429000",
                                                        "msg": "Too Many Requests"}),
                                content_type="application/json", headers=hdrs)
        else:
            resp = normal(hdrs)
        entry.update(status=resp.status, remaining=int(hdrs["gw-ratelimit-remaining"]))
        try:
            entry["code"] = json.loads(resp.text).get("code")
        except (ValueError, AttributeError, TypeError):
            pass
        self.log.append(entry)
        return resp

    async def h_active(self, request):
        def normal(hdrs):
            self.move()
            now = self.now_ms()
            return self.envelope([c.served(now) for c in self.contracts], hdrs)
        return await self.serve(request, "contracts_active", normal)

    async def h_contract(self, request):
        sym = request.match_info["sym"]

        def normal(hdrs):
            for c in self.contracts:
                if c.symbol == sym:
                    return self.envelope(c.served(self.now_ms()), hdrs)
            # KuCoin answers an unknown contract with HTTP 200 and no data.
            return self.envelope(None, hdrs)
        return await self.serve(request, "contract", normal)

    async def h_status(self, request):
        return await self.serve(request, "status",
                                lambda h: self.envelope({"msg": "", "status": "open"}, h))

    async def h_timestamp(self, request):
        return await self.serve(request, "timestamp",
                                lambda h: self.envelope(Raw(str(self.now_ms())), h))

    # ---- control -------------------------------------------------------

    async def body(self, request):
        try:
            return await request.json(loads=lambda s: json.loads(
                s, parse_float=lambda x: Raw(x), parse_int=lambda x: Raw(x)))
        except (json.JSONDecodeError, ValueError):
            raise web.HTTPBadRequest(text=json.dumps({"error": "body must be JSON"}),
                                     content_type="application/json")

    @staticmethod
    def bad(msg):
        return web.json_response({"error": msg}, status=400)

    def state(self):
        return {"port": self.port, "contracts": [plain(c.served(self.now_ms()))
                                                 for c in self.contracts],
                "pool": {"limit": self.limit, "window_ms": self.window_ms, "used": self.used},
                "move_pct": str(self.move_pct), "moves": self.moves,
                "scripts": plain(self.scripts), "requests": len(self.log)}

    async def c_state(self, request):
        return web.json_response(self.state())

    async def c_requests(self, request):
        since = int(request.query.get("since", "0"))
        return web.json_response({"requests": plain(self.log[since:]), "next": len(self.log)})

    def fix_value(self, k, v):
        """Decimal text stays a JSON number, except where KuCoin sends a
        string (openInterest) or text (symbols, status)."""
        if isinstance(v, str) and k not in ("openInterest",):
            try:
                Decimal(v)
                if k in ("symbol", "status", "baseCurrency", "quoteCurrency", "rootSymbol",
                         "settleCurrency", "type"):
                    return v
                return Raw(v)
            except InvalidOperation:
                return v
        return v

    async def c_contracts(self, request):
        b = await self.body(request)
        if not isinstance(b, dict):
            return self.bad("expected an object")
        if "replace" in b:
            if not isinstance(b["replace"], list):
                return self.bad("replace must be a list")
            self.contracts = []
            for o in b["replace"]:
                c = Contract({k: self.fix_value(k, v) for k, v in o.items()})
                c.fixed_funding = True
                self.contracts.append(c)
            return web.json_response({"ok": True, "count": len(self.contracts)})
        for sym, fields in b.items():
            found = [c for c in self.contracts if c.symbol == sym]
            if fields is None:
                self.contracts = [c for c in self.contracts if c.symbol != sym]
                continue
            if not found or not isinstance(fields, dict):
                return self.bad("unknown contract %s" % sym)
            c = found[0]
            for k, v in fields.items():
                if k == "lastTradePrice":
                    try:
                        c.set_price(as_decimal(self.fix_value(k, v)))
                    except InvalidOperation:
                        return self.bad("bad price %r" % (v,))
                else:
                    c.obj[k] = self.fix_value(k, v)
                    if k == "nextFundingRateTime":
                        c.fixed_funding = True
        return web.json_response({"ok": True})

    async def c_move(self, request):
        b = await self.body(request)
        try:
            self.move_pct = Decimal(plain(b.get("pct", "0")))
            if "seed" in b:
                self.rnd = random.Random(int(plain(b["seed"])))
        except (InvalidOperation, ValueError, AttributeError):
            return self.bad("pct must be a number")
        return web.json_response({"ok": True, "move_pct": str(self.move_pct)})

    async def c_script(self, request):
        b = await self.body(request)
        resps = b.get("responses") if isinstance(b, dict) else None
        if not isinstance(resps, list) or not all(isinstance(r, dict) for r in resps):
            return self.bad("responses must be a list of objects")
        for r in resps:
            r = plain(r)
            for k in ("status", "repeat", "delay_ms", "reset_ms"):
                if k in r:
                    r[k] = int(r[k])
            self.scripts.append(r)
        return web.json_response({"ok": True, "queued": len(self.scripts)})

    async def c_script_clear(self, request):
        self.scripts = []
        return web.json_response({"ok": True})

    async def c_limits(self, request):
        b = plain(await self.body(request))
        try:
            self.limit = int(b.get("limit", self.limit))
            self.window_ms = int(b.get("window_ms", self.window_ms))
        except (TypeError, ValueError):
            return self.bad("limit and window_ms must be integers")
        self.window_start = None
        self.used = 0
        return web.json_response({"ok": True, "limit": self.limit, "window_ms": self.window_ms})

    async def c_reset(self, request):
        self.scripts = []
        self.window_start = None
        self.used = 0
        self.log = []
        return web.json_response({"ok": True})

    def make_app(self):
        app = web.Application()
        r = app.router
        r.add_get("/api/v1/contracts/active", self.h_active)
        r.add_get("/api/v1/contracts/{sym}", self.h_contract)
        r.add_get("/api/v1/status", self.h_status)
        r.add_get("/api/v1/timestamp", self.h_timestamp)
        r.add_get("/_fake/state", self.c_state)
        r.add_get("/_fake/requests", self.c_requests)
        r.add_post("/_fake/contracts", self.c_contracts)
        r.add_post("/_fake/move", self.c_move)
        r.add_post("/_fake/script", self.c_script)
        r.add_post("/_fake/script/clear", self.c_script_clear)
        r.add_post("/_fake/limits", self.c_limits)
        r.add_post("/_fake/reset", self.c_reset)
        return app


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    fakeserve.add_args(ap)
    ap.add_argument("--synthetic", type=int, default=39,
                    help="synthetic contracts after the real one")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--contracts-file", help="serve this file's data array instead")
    ap.add_argument("--move-pct", type=float, default=0.0,
                    help="largest price step per contracts/active answer, in percent")
    ap.add_argument("--limit", type=int, default=2000, help="public pool weight per window")
    ap.add_argument("--window-ms", type=int, default=30000)
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    fake = FakeKucoin(args)
    fakeserve.serve("fake_kucoin", fake.make_app, args,
                    on_port=lambda port: setattr(fake, "port", port))


if __name__ == "__main__":
    main()
