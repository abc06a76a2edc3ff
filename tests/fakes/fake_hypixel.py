#!/usr/bin/python3
"""Fake Hypixel SkyBlock auction API for souk's tests, on loopback.

Run with Debian's Python (it needs python3-aiohttp):

    /usr/bin/python3 tests/fakes/fake_hypixel.py --port 0 --port-file PATH \
        [--print-port] [--pages 66] [--seed 1] [--refresh-ms 60000] \
        [--speed 1.0] [--paused] [--start-ms T] [--api-key KEY] \
        [--page-skew-ms 0] [--unpopulated N] [--gzip] [--no-market]

It serves what souk's SkyBlock poller reads, under the real paths:

  GET /v2/skyblock/auctions?page=N   the active auctions, 1,000 a page, most
                                     recently updated first (no key needed)
  GET /v2/skyblock/auctions_ended    the sales of the last 60 s (no key)
  GET /v2/skyblock/auction?uuid=U    one auction, item_bytes as the object
                                     {"type": 0, "data": ...}; needs the
                                     API-Key header (--api-key)

The market is built from the real captured page (tests/fixtures/hypixel/
auctions-page0-2025-06-08.json.gz, see SOURCES.md there): page 0 starts as
that page's 1,000 auctions, verbatim except that every time is shifted onto
the fake's clock, and pages 1.. are synthetic auctions made from the real
page's statistics (each copies a real auction's item_bytes, name, lore, tier
and category; price = that auction's starting bid times a log-normal factor;
BIN share, durations and the seller pool follow the real page), so every
item_bytes served is a real one.

The fake has its own clock (Unix ms): by default it runs at real speed from
the real time; --speed F runs it F times faster, --paused stops it (then
only POST /_fake/clock moves it).  The market refreshes every --refresh-ms
of fake time, give or take 2 s ("about every 60 s"): listings appear (about
250 a refresh, like the real page 0), BIN listings sell (about 120 a
refresh, like the real auctions_ended) and listings expire at their end
time.  Each refresh is one generation with its own lastUpdated.  As on
Hypixel, every page is cached separately: with --page-skew-ms S, page p
switches to a new generation S * p / pages ms after the refresh, so a sweep
that crosses the switch sees pages that disagree on lastUpdated.  The
previous generation is also served on demand (POST /_fake/stale).

Error shapes ({"success": false, "cause": ...}) are Hypixel's; the causes
are reconstructed from its documentation: 404 "Page not found" past the
last page, 503 "Data has not yet been populated" while the cache is not
populated, 403 "Invalid API key", 400 "Missing one or more fields [uuid]",
429 "Key throttle" with "throttle": true.

Control API (JSON; POSTs answer {"ok": true, ...} or 4xx {"error": ...}):

  GET  /_fake/state                  clock, generation, lastUpdated, counts,
       the highest number of auction requests in flight at once, ...
  GET  /_fake/requests?since=N       {"requests": [...], "next": M}; each
       {"i", "at", "fake_ms", "endpoint", "page", "uuid", "status",
        "generation", "last_updated", "api_key": "ok"|"missing"|"wrong"|null,
        "accept_encoding", "scripted", "inflight", "conn" (the client's address
        and port: one per TCP connection)}
  GET  /_fake/templates[?q=TEXT]     the real auctions the market copies:
       [{"template", "item_name", "tier", "bin", "starting_bid"}]
  GET  /_fake/auction?uuid=U         one active auction as served
  POST /_fake/clock {"advance_ms": N} | {"set_ms": T} | {"speed": F} |
       {"paused": bool}              move or re-rate the clock (refreshes that
                                     fall due are made)
  POST /_fake/refresh                make the next refresh now (the clock jumps
                                     to its time); answers the new lastUpdated
  POST /_fake/list {"template": I | "item_bytes": B64, "price": P, "bin": true,
       "seller": UUID, "count": 1 (the stack size the caller knows it is),
       "uuid": U, "duration_ms": D}  a listing that appears at the next
                                     refresh; answers its uuid
  POST /_fake/sell {"uuid": U, "buyer": B, "price": P}   sell it at the next
                                     refresh (BIN: at its price)
  POST /_fake/expire {"uuid": U}     cancel it at the next refresh
  POST /_fake/sales {"template": I | "item_bytes": B64, "sales": [{"price",
       "seller", "buyer"}...]}       ended sales of that item in the next
                                     refresh's auctions_ended
  POST /_fake/manipulate {"template": I | "item_bytes": B64, "accounts": [A, B],
       "price": P, "per_refresh": 4, "refreshes": N}  two accounts selling the
                                     item back and forth at P, every refresh
  POST /_fake/quiet {"quiet": bool}  stop (or restart) the random market:
                                     only what the control API asks happens
  POST /_fake/populated {"populated": bool, "count": N}  answer 503 to the
                                     next N auction requests (or until true)
  POST /_fake/stale {"pages": [P...], "count": N}  those pages serve the
                                     previous generation N more times
  POST /_fake/script {"endpoint": "auctions"|"auctions_ended"|"auction"|"*",
       "page": N (optional), "responses": [ACTION...]}  actions used in order
       by the next matching requests:
         {"status": 500|502|503|429, "body": ...}  that error
         {"delay_ms": 3000}                        slow, then the real answer
         {"drop": true}                            close without answering
         {"malformed": true}                       200 with a truncated body
       and "repeat": N (-1: until cleared)
  POST /_fake/script/clear
  POST /_fake/reset                  clear scripts, stale pages and the log
"""

import argparse
import asyncio
import bisect
import gzip
import json
import logging
import math
import os
import random
import re
import signal
import sys
import time
import uuid as uuidlib

from aiohttp import web

LOG = logging.getLogger("fake_hypixel")
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "hypixel")
PAGE0 = os.path.join(FIXTURES, "auctions-page0-2025-06-08.json.gz")
PAGE_SIZE = 1000
ENDED_WINDOW_MS = 60000
ENDPOINTS = ("auctions", "auctions_ended", "auction")
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def hexid(rng):
    return "%032x" % rng.getrandbits(128)


def err(status, cause, **extra):
    body = {"success": False, "cause": cause}
    body.update(extra)
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


class Clock:
    """Fake Unix milliseconds: base + (real elapsed) x speed, or paused."""

    def __init__(self, start_ms, speed, paused):
        self.base_fake = start_ms
        self.base_real = time.monotonic()
        self.speed = speed
        self.paused = paused

    def now(self):
        if self.paused:
            return int(self.base_fake)
        return int(self.base_fake + (time.monotonic() - self.base_real) * 1000.0 * self.speed)

    def _rebase(self):
        self.base_fake = self.now()
        self.base_real = time.monotonic()

    def set(self, ms):
        self.base_fake = ms
        self.base_real = time.monotonic()

    def advance(self, ms):
        self.set(self.now() + ms)

    def set_speed(self, speed):
        self._rebase()
        self.speed = speed

    def set_paused(self, paused):
        self._rebase()
        self.paused = paused


class Generation:
    """One refresh: its lastUpdated and the auctions sorted for paging."""

    def __init__(self, number, last_updated, auctions, ended):
        self.number = number
        self.last_updated = last_updated
        self.auctions = auctions  # list of dicts, most recently updated first
        self.ended = ended        # sales in the 60 s before last_updated
        self.total_pages = max(1, math.ceil(len(auctions) / PAGE_SIZE))
        self.cache = {}

    def page_body(self, page):
        body = self.cache.get(page)
        if body is None:
            chunk = self.auctions[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
            body = json.dumps({"success": True, "page": page, "totalPages": self.total_pages,
                               "totalAuctions": len(self.auctions),
                               "lastUpdated": self.last_updated, "auctions": chunk},
                              separators=(",", ":")).encode()
            # Only the pages of the newest two generations are ever served.
            self.cache[page] = body
        return body

    def ended_body(self):
        body = self.cache.get("ended")
        if body is None:
            body = json.dumps({"success": True, "lastUpdated": self.last_updated,
                               "auctions": self.ended}, separators=(",", ":")).encode()
            self.cache["ended"] = body
        return body


class Market:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        with gzip.open(PAGE0, "rt") as f:
            real = json.load(f)
        self.real_last_updated = real["lastUpdated"]
        self.templates = real["auctions"]
        self.bin_share = sum(1 for a in self.templates if a["bin"]) / len(self.templates)
        self.durations = sorted(a["end"] - a["start"] for a in self.templates)
        self.sellers = [hexid(self.rng) for _ in range(max(50, args.pages * 470))]
        self.buyers = [hexid(self.rng) for _ in range(max(50, args.pages * 300))]
        start = args.start_ms if args.start_ms else int(time.time() * 1000)
        self.clock = Clock(start, args.speed, args.paused)
        self.quiet = args.no_market
        self.active = {}         # uuid -> auction dict
        self.sales = []          # every sale: dict in auctions_ended shape, oldest first
        self.pending = []        # control actions applied at the next refresh
        self.manipulations = []
        self.gen = None
        self.prev = None
        self._populate(start)
        self._publish(start)
        self.next_refresh = start + args.refresh_ms

    # ---- building auctions ------------------------------------------------

    def template(self, i):
        if not isinstance(i, int) or not 0 <= i < len(self.templates):
            raise ValueError("template must be 0..%d" % (len(self.templates) - 1))
        return self.templates[i]

    def make_auction(self, t, start, price, is_bin, seller, duration, item_bytes=None, uid=None):
        profile = hexid(self.rng)
        a = {
            "uuid": uid or hexid(self.rng),
            "auctioneer": seller,
            "profile_id": profile,
            "coop": [seller],
            "start": start,
            "end": start + duration,
            "item_name": t["item_name"] if t else "Item",
            "item_lore": t["item_lore"] if t else "",
            "extra": t["extra"] if t else "",
            "categories": t["categories"] if t else ["misc"],
            "category": t["category"] if t else "misc",
            "tier": t["tier"] if t else "COMMON",
            "starting_bid": price,
            "item_bytes": item_bytes if item_bytes is not None else t["item_bytes"],
            "claimed": False,
            "claimed_bidders": [],
            "highest_bid_amount": 0,
            "last_updated": start,
            "bin": is_bin,
            "bids": [],
        }
        if t and "item_uuid" in t:
            a["item_uuid"] = hexid(self.rng)
        return a

    def synthetic(self, now, start):
        t = self.rng.choice(self.templates)
        price = max(1, int(round(t["starting_bid"] * math.exp(self.rng.gauss(0.0, 0.25)))))
        is_bin = self.rng.random() < self.bin_share
        a = self.make_auction(t, start, price, is_bin, self.rng.choice(self.sellers),
                              self.rng.choice(self.durations))
        if not is_bin and self.rng.random() < 0.7:
            self._bid(a, max(start, min(now, start + 60000)))
        return a

    def _bid(self, a, at):
        amount = max(a["starting_bid"], int(a["highest_bid_amount"] * 1.15) + 1)
        bidder = self.rng.choice(self.buyers)
        a["bids"].append({"auction_id": a["uuid"], "bidder": bidder,
                          "profile_id": hexid(self.rng), "amount": amount, "timestamp": at})
        a["highest_bid_amount"] = amount
        a["last_updated"] = at

    def _populate(self, now):
        # Page 0: the real page, its times moved onto the fake clock.
        shift = now - self.real_last_updated
        for t in self.templates:
            a = json.loads(json.dumps(t))
            for k in ("start", "end", "last_updated"):
                a[k] += shift
            for b in a["bids"]:
                b["timestamp"] += shift
            self.active[a["uuid"]] = a
        # Older pages: synthetic auctions that started before page 0's.
        oldest = min(a["last_updated"] for a in self.active.values())
        n = max(0, self.args.pages * PAGE_SIZE - len(self.active) - self.args.pages * 7)
        for _ in range(n):
            start = oldest - self.rng.randrange(1000, 48 * 3600 * 1000)
            a = self.synthetic(oldest, start)
            if a["end"] <= now:
                a["end"] = now + self.rng.randrange(60000, 6 * 3600 * 1000)
            self.active[a["uuid"]] = a

    # ---- refreshing -------------------------------------------------------

    def tick(self):
        """Make every refresh that is due by the clock."""
        now = self.clock.now()
        while now >= self.next_refresh:
            self._refresh(self.next_refresh)

    def force_refresh(self):
        t = max(self.next_refresh, self.clock.now())
        self.clock.set(t)
        self._refresh(t)
        return self.gen.last_updated

    def _sale(self, at, price, seller, buyer, item_bytes, auction_id=None):
        self.sales.append({"auction_id": auction_id or hexid(self.rng), "seller": seller,
                           "seller_profile": hexid(self.rng), "buyer": buyer,
                           "buyer_profile": hexid(self.rng), "timestamp": at, "price": price,
                           "bin": True, "item_bytes": item_bytes})

    def _refresh(self, t):
        prev_t = self.gen.last_updated if self.gen else t - self.args.refresh_ms
        span = max(1, t - prev_t)
        rng = self.rng
        # Expired listings leave; a non-BIN auction with bids ends as a sale
        # of its highest bid (auctions_ended lists BIN and bid auctions).
        for u in [u for u, a in self.active.items() if a["end"] <= t]:
            a = self.active.pop(u)
            if a["bids"]:
                self._sale(a["end"], a["highest_bid_amount"], a["auctioneer"],
                           a["bids"][-1]["bidder"], a["item_bytes"], u)
                self.sales[-1]["bin"] = False
        for act in self.pending:
            kind = act["kind"]
            at = prev_t + rng.randrange(span)
            if kind == "list":
                a = act["auction"]
                a["start"] = a["last_updated"] = at
                a["end"] = at + act["duration_ms"]
                self.active[a["uuid"]] = a
            elif kind == "sell":
                a = self.active.pop(act["uuid"], None)
                if a:
                    price = act.get("price") or (a["starting_bid"] if a["bin"]
                                                 else max(a["starting_bid"], a["highest_bid_amount"]))
                    self._sale(at, price, a["auctioneer"], act["buyer"], a["item_bytes"], a["uuid"])
                    self.sales[-1]["bin"] = a["bin"]
            elif kind == "expire":
                self.active.pop(act["uuid"], None)
            elif kind == "sale":
                self._sale(at, act["price"], act["seller"], act["buyer"], act["item_bytes"])
        self.pending = []
        for m in self.manipulations:
            if m["refreshes"] <= 0:
                continue
            m["refreshes"] -= 1
            a, b = m["accounts"]
            for k in range(m["per_refresh"]):
                seller, buyer = (a, b) if k % 2 == 0 else (b, a)
                self._sale(prev_t + rng.randrange(span), m["price"], seller, buyer,
                           m["item_bytes"])
        self.manipulations = [m for m in self.manipulations if m["refreshes"] > 0]
        if not self.quiet:
            self._random_market(prev_t, t, span)
        self.sales.sort(key=lambda s: s["timestamp"])
        cut = bisect.bisect_left([s["timestamp"] for s in self.sales], t - 2 * ENDED_WINDOW_MS)
        del self.sales[:cut]
        self._publish(t)
        jitter = self.rng.randrange(-2000, 2001) if self.args.refresh_jitter else 0
        self.next_refresh = t + max(1000, self.args.refresh_ms + jitter)

    def _random_market(self, prev_t, t, span):
        rng = self.rng
        scale = self.args.refresh_ms / 60000.0 * max(1, self.args.pages) / 66.0
        # About 120 BIN sales and 250 new listings a minute on 66 pages.
        bins = [u for u, a in self.active.items() if a["bin"]]
        for u in rng.sample(bins, min(len(bins), int(round(120 * scale)))):
            a = self.active.pop(u)
            self._sale(prev_t + rng.randrange(span), a["starting_bid"], a["auctioneer"],
                       rng.choice(self.buyers), a["item_bytes"], u)
        # Expiries and sales are made up by new listings, so the market keeps
        # about its starting size.
        target = self.args.pages * PAGE_SIZE - self.args.pages * 7
        new = max(0, int(round(250 * scale)) + (target - len(self.active)) // 4)
        for _ in range(new):
            a = self.synthetic(t, prev_t + rng.randrange(span))
            self.active[a["uuid"]] = a
        # Bids on a few running auctions move them to the front as well.
        nonbin = [a for a in self.active.values() if not a["bin"] and a["end"] > t]
        for a in rng.sample(nonbin, min(len(nonbin), int(round(20 * scale)))):
            self._bid(a, prev_t + rng.randrange(span))

    def _publish(self, t):
        auctions = sorted(self.active.values(), key=lambda a: a["last_updated"], reverse=True)
        ended = [s for s in self.sales if t - ENDED_WINDOW_MS < s["timestamp"] <= t]
        self.prev = self.gen
        number = self.gen.number + 1 if self.gen else 0
        self.gen = Generation(number, t, auctions, ended)
        self.gen.published_at = t
        if self.prev is not None:
            self.prev.cache.clear()


class FakeHypixel:
    def __init__(self, args):
        self.args = args
        self.market = Market(args)
        self.scripts = []
        self.stale = {}  # page -> remaining requests served from the previous generation
        self.unpopulated = args.unpopulated  # -1: until told, N: the next N requests
        self.log = []
        self.inflight = 0
        self.max_inflight = 0
        self.port = None

    # ---- helpers ----------------------------------------------------------

    def next_action(self, endpoint, page):
        for s in self.scripts:
            if s["endpoint"] not in (endpoint, "*"):
                continue
            if s.get("page") is not None and s["page"] != page:
                continue
            if not s["responses"]:
                continue
            a = s["responses"][0]
            rep = a.get("repeat", 1)
            if rep == -1:
                return a
            if rep <= 1:
                s["responses"].pop(0)
            else:
                a["repeat"] = rep - 1
            return a
        return None

    def conn_id(self, request):
        """The client's TCP connection, as its port: requests on one
        connection (keep-alive) share it."""
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return "%s:%d" % (peer[0], peer[1]) if peer else None

    def record(self, request, endpoint, status, **kw):
        e = {"i": len(self.log), "at": time.time(), "fake_ms": self.market.clock.now(),
             "endpoint": endpoint, "status": status, "page": None, "uuid": None,
             "generation": None, "last_updated": None, "api_key": None, "scripted": None,
             "accept_encoding": request.headers.get("Accept-Encoding"),
             "inflight": self.inflight, "conn": self.conn_id(request)}
        e.update(kw)
        self.log.append(e)
        return e

    def respond(self, request, body):
        resp = web.Response(body=body, content_type="application/json")
        if self.args.gzip and "gzip" in request.headers.get("Accept-Encoding", ""):
            resp.enable_compression(web.ContentCoding.gzip)
        return resp

    async def scripted(self, request, endpoint, page):
        """Apply a scripted action: returns a response, "drop", or None."""
        a = self.next_action(endpoint, page)
        if a is None:
            return None, None
        if a.get("delay_ms"):
            await asyncio.sleep(a["delay_ms"] / 1000.0)
        if a.get("drop"):
            return "drop", a
        if a.get("malformed"):
            return "malformed", a
        st = a.get("status")
        if st:
            if st == 429:
                return err(429, "Key throttle", throttle=True), a
            body = a.get("body")
            if body is None:
                return err(st, {503: "Data has not yet been populated"}.get(st, "Internal error")), a
            return web.Response(status=st, text=body if isinstance(body, str) else json.dumps(body),
                                content_type="application/json"), a
        return None, a

    async def serve(self, request, endpoint, page, make):
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            self.market.tick()
            resp, act = await self.scripted(request, endpoint, page)
            if resp == "drop":
                self.record(request, endpoint, 0, page=page, scripted=act)
                request.transport.abort()
                return web.Response(status=200)
            if isinstance(resp, web.Response):
                self.record(request, endpoint, resp.status, page=page, scripted=act)
                return resp
            if endpoint != "auction" and self.unpopulated:
                if self.unpopulated > 0:
                    self.unpopulated -= 1
                self.record(request, endpoint, 503, page=page, scripted=act)
                return err(503, "Data has not yet been populated")
            out, info = make()
            if isinstance(out, web.Response):
                self.record(request, endpoint, out.status, page=page, scripted=act, **info)
                return out
            if resp == "malformed":
                out = out[: max(1, len(out) // 2)]
            self.record(request, endpoint, 200, page=page, scripted=act, **info)
            return self.respond(request, out)
        finally:
            self.inflight -= 1

    def generation_for(self, page):
        m = self.market
        left = self.stale.get(page, 0)
        if left and m.prev is not None:
            self.stale[page] = left - 1
            return m.prev
        skew = self.args.page_skew_ms
        if skew and m.prev is not None and page > 0:
            pages = max(1, m.gen.total_pages)
            if m.clock.now() < m.gen.published_at + skew * page // pages:
                return m.prev
        return m.gen

    # ---- the API ------------------------------------------------------------

    async def h_auctions(self, request):
        raw = request.query.get("page", "0")
        try:
            page = int(raw)
        except ValueError:
            page = None

        def make():
            if page is None or page < 0:
                return err(422, "Invalid page"), {}
            g = self.generation_for(page)
            info = {"generation": g.number, "last_updated": g.last_updated}
            if page >= g.total_pages:
                return err(404, "Page not found"), info
            return g.page_body(page), info

        return await self.serve(request, "auctions", page, make)

    async def h_ended(self, request):
        def make():
            g = self.market.gen
            return g.ended_body(), {"generation": g.number, "last_updated": g.last_updated}

        return await self.serve(request, "auctions_ended", None, make)

    async def h_auction(self, request):
        key = request.headers.get("API-Key")
        state = "missing" if key is None else ("ok" if key == self.args.api_key else "wrong")
        if state != "ok":
            self.record(request, "auction", 403, api_key=state)
            return err(403, "Invalid API key")
        u = request.query.get("uuid")

        def make():
            if not u:
                return err(400, "Missing one or more fields [uuid, player, profile]"), {}
            uid = u.replace("-", "").lower()
            if not HEX32.match(uid):
                return err(422, "Malformed UUID"), {}
            a = self.market.active.get(uid)
            out = []
            if a is not None:
                b = {"_id": "%024x" % (int(uid, 16) >> 32)}
                b.update(a)
                b["item_bytes"] = {"type": 0, "data": a["item_bytes"]}
                out.append(b)
            body = json.dumps({"success": True, "auctions": out}, separators=(",", ":")).encode()
            return body, {"uuid": uid, "api_key": state}

        return await self.serve(request, "auction", None, make)

    # ---- control ------------------------------------------------------------

    @staticmethod
    def bad(msg):
        return web.json_response({"error": msg}, status=400)

    @staticmethod
    async def body(request):
        try:
            return await request.json()
        except Exception:
            return None

    def item_of(self, b):
        if "item_bytes" in b:
            if not isinstance(b["item_bytes"], str):
                raise ValueError("item_bytes must be base64 text")
            return None, b["item_bytes"]
        t = self.market.template(b.get("template"))
        return t, t["item_bytes"]

    async def c_state(self, request):
        m = self.market
        m.tick()
        return web.json_response({
            "port": self.port, "fake_ms": m.clock.now(), "speed": m.clock.speed,
            "paused": m.clock.paused, "generation": m.gen.number,
            "last_updated": m.gen.last_updated, "next_refresh": m.next_refresh,
            "total_pages": m.gen.total_pages, "total_auctions": len(m.gen.auctions),
            "ended": len(m.gen.ended), "quiet": m.quiet, "unpopulated": self.unpopulated,
            "stale": self.stale, "pending": len(m.pending), "requests": len(self.log),
            "max_inflight": self.max_inflight, "inflight": self.inflight,
            "scripts": self.scripts, "manipulations": len(m.manipulations)})

    async def c_requests(self, request):
        since = int(request.query.get("since", "0"))
        return web.json_response({"requests": self.log[since:], "next": len(self.log)})

    async def c_templates(self, request):
        q = request.query.get("q", "").lower()
        out = [{"template": i, "item_name": t["item_name"], "tier": t["tier"], "bin": t["bin"],
                "starting_bid": t["starting_bid"]}
               for i, t in enumerate(self.market.templates) if q in t["item_name"].lower()]
        return web.json_response({"templates": out})

    async def c_auction(self, request):
        a = self.market.active.get(request.query.get("uuid", ""))
        if a is None:
            return web.json_response({"error": "no such active auction"}, status=404)
        return web.json_response(a)

    async def c_clock(self, request):
        b = await self.body(request)
        if not isinstance(b, dict):
            return self.bad("expected an object")
        c = self.market.clock
        if "speed" in b:
            c.set_speed(float(b["speed"]))
        if "paused" in b:
            c.set_paused(bool(b["paused"]))
        if "set_ms" in b:
            c.set(int(b["set_ms"]))
        if "advance_ms" in b:
            c.advance(int(b["advance_ms"]))
        self.market.tick()
        return web.json_response({"ok": True, "fake_ms": c.now(),
                                  "last_updated": self.market.gen.last_updated,
                                  "generation": self.market.gen.number})

    async def c_refresh(self, request):
        lu = self.market.force_refresh()
        return web.json_response({"ok": True, "last_updated": lu,
                                  "generation": self.market.gen.number})

    async def c_list(self, request):
        b = await self.body(request)
        if not isinstance(b, dict) or not isinstance(b.get("price"), int) or b["price"] < 1:
            return self.bad("expected {template|item_bytes, price (int >= 1), ...}")
        try:
            t, ib = self.item_of(b)
        except (ValueError, TypeError) as e:
            return self.bad(str(e))
        m = self.market
        seller = b.get("seller") or m.rng.choice(m.sellers)
        uid = b.get("uuid") or hexid(m.rng)
        if not HEX32.match(seller) or not HEX32.match(uid):
            return self.bad("seller and uuid are 32 lower-case hex digits")
        a = m.make_auction(t, 0, b["price"], bool(b.get("bin", True)), seller, 0,
                           item_bytes=ib, uid=uid)
        m.pending.append({"kind": "list", "auction": a,
                          "duration_ms": int(b.get("duration_ms", 12 * 3600 * 1000))})
        return web.json_response({"ok": True, "uuid": uid, "seller": seller})

    async def c_sell(self, request):
        b = await self.body(request)
        if not isinstance(b, dict) or not isinstance(b.get("uuid"), str):
            return self.bad("expected {uuid, buyer?, price?}")
        m = self.market
        known = b["uuid"] in m.active or any(
            p["kind"] == "list" and p["auction"]["uuid"] == b["uuid"] for p in m.pending)
        if not known:
            return web.json_response({"error": "no such auction"}, status=404)
        m.pending.append({"kind": "sell", "uuid": b["uuid"],
                          "buyer": b.get("buyer") or m.rng.choice(m.buyers),
                          "price": b.get("price")})
        return web.json_response({"ok": True})

    async def c_expire(self, request):
        b = await self.body(request)
        if not isinstance(b, dict) or not isinstance(b.get("uuid"), str):
            return self.bad("expected {uuid}")
        self.market.pending.append({"kind": "expire", "uuid": b["uuid"]})
        return web.json_response({"ok": True})

    async def c_sales(self, request):
        b = await self.body(request)
        if not isinstance(b, dict) or not isinstance(b.get("sales"), list):
            return self.bad("expected {template|item_bytes, sales: [...]}")
        try:
            _, ib = self.item_of(b)
        except (ValueError, TypeError) as e:
            return self.bad(str(e))
        m = self.market
        for s in b["sales"]:
            if not isinstance(s, dict) or not isinstance(s.get("price"), int):
                return self.bad("each sale needs an int price")
            m.pending.append({"kind": "sale", "price": s["price"], "item_bytes": ib,
                              "seller": s.get("seller") or m.rng.choice(m.sellers),
                              "buyer": s.get("buyer") or m.rng.choice(m.buyers)})
        return web.json_response({"ok": True, "queued": len(b["sales"])})

    async def c_manipulate(self, request):
        b = await self.body(request)
        if (not isinstance(b, dict) or not isinstance(b.get("accounts"), list)
                or len(b["accounts"]) != 2 or not isinstance(b.get("price"), int)):
            return self.bad("expected {template|item_bytes, accounts: [A, B], price, ...}")
        try:
            _, ib = self.item_of(b)
        except (ValueError, TypeError) as e:
            return self.bad(str(e))
        self.market.manipulations.append({
            "item_bytes": ib, "accounts": list(b["accounts"]), "price": b["price"],
            "per_refresh": int(b.get("per_refresh", 4)), "refreshes": int(b.get("refreshes", 1))})
        return web.json_response({"ok": True})

    async def c_quiet(self, request):
        b = await self.body(request)
        self.market.quiet = bool((b or {}).get("quiet", True))
        return web.json_response({"ok": True, "quiet": self.market.quiet})

    async def c_populated(self, request):
        b = await self.body(request) or {}
        if b.get("populated", False):
            self.unpopulated = 0
        else:
            self.unpopulated = int(b.get("count", -1))
        return web.json_response({"ok": True, "unpopulated": self.unpopulated})

    async def c_stale(self, request):
        b = await self.body(request)
        if not isinstance(b, dict) or not isinstance(b.get("pages"), list):
            return self.bad("expected {pages: [...], count: N}")
        for p in b["pages"]:
            self.stale[int(p)] = int(b.get("count", 1))
        return web.json_response({"ok": True, "stale": self.stale})

    async def c_script(self, request):
        b = await self.body(request)
        ep = b.get("endpoint") if isinstance(b, dict) else None
        if ep not in ENDPOINTS + ("*",):
            return self.bad("endpoint must be one of %s or *" % ", ".join(ENDPOINTS))
        resps = b.get("responses")
        if not isinstance(resps, list) or not all(isinstance(r, dict) for r in resps):
            return self.bad("responses must be a list of objects")
        self.scripts.append({"endpoint": ep, "page": b.get("page"),
                             "responses": [dict(r) for r in resps]})
        return web.json_response({"ok": True, "scripts": len(self.scripts)})

    async def c_script_clear(self, request):
        self.scripts = []
        return web.json_response({"ok": True})

    async def c_reset(self, request):
        self.scripts = []
        self.stale = {}
        self.log = []
        self.max_inflight = 0
        return web.json_response({"ok": True})

    def make_app(self):
        app = web.Application()
        r = app.router
        r.add_get("/v2/skyblock/auctions", self.h_auctions)
        r.add_get("/v2/skyblock/auctions_ended", self.h_ended)
        r.add_get("/v2/skyblock/auction", self.h_auction)
        r.add_get("/_fake/state", self.c_state)
        r.add_get("/_fake/requests", self.c_requests)
        r.add_get("/_fake/templates", self.c_templates)
        r.add_get("/_fake/auction", self.c_auction)
        r.add_post("/_fake/clock", self.c_clock)
        r.add_post("/_fake/refresh", self.c_refresh)
        r.add_post("/_fake/list", self.c_list)
        r.add_post("/_fake/sell", self.c_sell)
        r.add_post("/_fake/expire", self.c_expire)
        r.add_post("/_fake/sales", self.c_sales)
        r.add_post("/_fake/manipulate", self.c_manipulate)
        r.add_post("/_fake/quiet", self.c_quiet)
        r.add_post("/_fake/populated", self.c_populated)
        r.add_post("/_fake/stale", self.c_stale)
        r.add_post("/_fake/script", self.c_script)
        r.add_post("/_fake/script/clear", self.c_script_clear)
        r.add_post("/_fake/reset", self.c_reset)
        return app


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--print-port", action="store_true",
                    help="also print the port as the first line of stdout")
    ap.add_argument("--pages", type=int, default=66, help="pages of 1,000 auctions (>= 1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--refresh-ms", type=int, default=60000, help="fake ms between refreshes")
    ap.add_argument("--no-refresh-jitter", dest="refresh_jitter", action="store_false",
                    help="refresh exactly every --refresh-ms (default: give or take 2 s)")
    ap.add_argument("--speed", type=float, default=1.0, help="fake ms per real ms")
    ap.add_argument("--paused", action="store_true", help="the clock moves only when told")
    ap.add_argument("--start-ms", type=int, default=0, help="fake Unix ms at start (0: now)")
    ap.add_argument("--api-key", default="00000000-0000-4000-8000-00000000beef")
    ap.add_argument("--page-skew-ms", type=int, default=0,
                    help="the last page switches to a new refresh this long after page 0")
    ap.add_argument("--unpopulated", type=int, default=0,
                    help="answer 503 to the first N auction requests (-1: until told)")
    ap.add_argument("--gzip", action="store_true", help="gzip bodies when the client accepts it")
    ap.add_argument("--no-market", action="store_true",
                    help="no random listings or sales: only what the control API asks")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    if args.pages < 1:
        ap.error("--pages must be at least 1")
    return args


async def amain(args):
    fake = FakeHypixel(args)
    runner = web.AppRunner(fake.make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, shutdown_timeout=0.5)
    await site.start()
    fake.port = site._server.sockets[0].getsockname()[1]
    LOG.info("listening on http://%s:%d (%d auctions, %d pages)", args.host, fake.port,
             len(fake.market.gen.auctions), fake.market.gen.total_pages)
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
                        format="%(asctime)s fake_hypixel %(levelname)s %(message)s")
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
