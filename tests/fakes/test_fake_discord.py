"""Tests of the fake Discord itself (tests/fakes/fake_discord.py).

Run: cd /work/main && /usr/bin/python3 -m pytest -q tests/fakes
Each test starts its own fake (through tests/integration/conftest.py's
start_fake_discord, so that helper is exercised too) and talks to it with
aiohttp clients, the way a bot would.
"""

import asyncio
import importlib.util
import json
import re
import time
import zlib
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "souk_integration_conftest", ROOT / "tests" / "integration" / "conftest.py")
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)

UA = "DiscordBot (https://github.com/souk-bot/souk, 0.1.0) souk-tests"
ZLIB_SUFFIX = b"\x00\x00\xff\xff"
INTENTS = 1 | (1 << 9) | (1 << 15)  # GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT


@pytest.fixture
def make_fake(tmp_path):
    fakes = []

    def make(*args):
        f = harness.start_fake_discord(tmp_path / ("fd%d" % len(fakes)), *args)
        fakes.append(f)
        return f

    yield make
    for f in fakes:
        f.stop()


@pytest.fixture
def fake(make_fake):
    return make_fake()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 50))


def names(violations):
    return [v["name"] for v in violations]


# ---------------------------------------------------------------- clients
class Rest:
    def __init__(self, http, fake):
        self.http = http
        self.fake = fake

    async def call(self, method, path, body=None, auth=True, ua=UA, headers=None, raw=None):
        h = {"User-Agent": ua} if ua else {}
        if auth:
            h["Authorization"] = "Bot " + self.fake.token
        if body is not None:
            h["Content-Type"] = "application/json"
            raw = json.dumps(body)
        h.update(headers or {})
        async with self.http.request(method, self.fake.base_url + path, data=raw,
                                     headers=h) as r:
            text = await r.text()
            return r.status, r.headers, (json.loads(text) if text else None)


class Closed(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


class GW:
    """A gateway client: one zlib inflate context per connection, buffering
    binary frames until the Z_SYNC_FLUSH suffix, as Discord's docs say."""

    def __init__(self, ws, compressed):
        self.ws = ws
        self.compressed = compressed
        self.inflate = zlib.decompressobj()
        self.buf = bytearray()
        self.frames_in_payload = 0
        self.frames_per_payload = []
        self.all_frames_end_with_suffix = True
        self.seq = None
        self.received = []

    @classmethod
    async def open(cls, http, fake, path="/gateway", query="v=10&encoding=json&compress=zlib-stream"):
        ws = await http.ws_connect("ws://127.0.0.1:%d%s?%s" % (fake.port, path, query),
                                   max_msg_size=0)
        return cls(ws, "compress=zlib-stream" in query)

    async def recv(self, timeout=5.0):
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type == WSMsgType.BINARY:
                self.buf += msg.data
                self.frames_in_payload += 1
                if bytes(msg.data[-4:]) != ZLIB_SUFFIX:
                    continue
                text = self.inflate.decompress(bytes(self.buf))
                self.buf.clear()
                self.frames_per_payload.append(self.frames_in_payload)
                self.frames_in_payload = 0
                p = json.loads(text)
            elif msg.type == WSMsgType.TEXT:
                p = json.loads(msg.data)
            elif msg.type == WSMsgType.CLOSE:
                raise Closed(msg.data)
            else:
                raise Closed(self.ws.close_code)
            if p.get("s") is not None:
                self.seq = p["s"]
            self.received.append(p)
            return p

    async def recv_until(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            p = await self.recv(max(0.01, deadline - time.monotonic()))
            if pred(p):
                return p

    async def expect_nothing(self, timeout):
        try:
            p = await self.recv(timeout)
        except asyncio.TimeoutError:
            return None
        return p

    async def send(self, obj):
        await self.ws.send_str(json.dumps(obj))

    async def expect_close(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        try:
            while True:
                await self.recv(max(0.01, deadline - time.monotonic()))
        except Closed as c:
            return c.code

    async def identify(self, token, intents=INTENTS, shard=None, **extra):
        d = {"token": token, "intents": intents,
             "properties": {"os": "linux", "browser": "souk", "device": "souk"}}
        if shard is not None:
            d["shard"] = shard
        d.update(extra)
        await self.send({"op": 2, "d": d})

    async def start(self, fake, **kw):
        hello = await self.recv()
        assert hello["op"] == 10
        await self.identify(fake.token, **kw)
        ready = await self.recv()
        assert ready["t"] == "READY", ready
        creates = []
        for _ in ready["d"]["guilds"]:
            creates.append(await self.recv())
        return hello, ready, creates

    async def close(self, code=4000):
        await self.ws.close(code=code)


async def session_and(fake, fn):
    async with aiohttp.ClientSession() as http:
        return await fn(http, Rest(http, fake))


def channel_ids(fake):
    return [c["id"] for c in fake.state(rest_log=False)["guilds"][0]["channels"] if c["type"] == 0]


# ---------------------------------------------------------------- REST
def test_gateway_bot_headers_and_content_type(fake):
    async def body(http, rest):
        st, h, b = await rest.call("GET", "/gateway/bot")
        assert st == 200
        assert h["Content-Type"] == "application/json"
        assert b["url"] == "ws://127.0.0.1:%d/gateway" % fake.port
        assert b["shards"] == 1
        ssl = b["session_start_limit"]
        assert ssl["total"] == 1000 and ssl["remaining"] == 1000 and ssl["max_concurrency"] == 1
        assert "reset_after" in ssl
        for k in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                  "X-RateLimit-Reset-After", "X-RateLimit-Bucket"):
            assert k in h, k
        assert re.fullmatch(r"\d+\.\d{3}", h["X-RateLimit-Reset-After"])
        assert re.fullmatch(r"\d{10}\.\d{3}", h["X-RateLimit-Reset"])
        assert abs(float(h["X-RateLimit-Reset"]) - time.time() - float(h["X-RateLimit-Reset-After"])) < 1
        assert "X-RateLimit-Scope" not in h and "X-RateLimit-Global" not in h
        # GET /gateway needs no auth
        st, h, b = await rest.call("GET", "/gateway", auth=False)
        assert st == 200 and b == {"url": "ws://127.0.0.1:%d/gateway" % fake.port}
        # auth: missing / wrong / "Bearer"
        for hdr in (None, "Bot nope", "Bearer " + fake.token, fake.token):
            st, h, b = await rest.call("GET", "/users/@me", auth=False,
                                       headers={"Authorization": hdr} if hdr else None)
            assert st == 401 and b == {"message": "401: Unauthorized", "code": 0}
            assert h["Content-Type"] == "application/json"
        # unknown route
        st, h, b = await rest.call("GET", "/nope/123")
        assert st == 404 and b == {"message": "404: Not Found", "code": 0}
    run(session_and(fake, body))
    assert names(fake.reset_violations()) == ["unknown_route"]


def test_user_agent_and_content_type_violations(fake):
    cid = channel_ids(fake)[0]

    async def body(http, rest):
        st, _, _ = await rest.call("GET", "/users/@me", ua="curl/7.88")
        assert st == 200
        st, _, _ = await rest.call("GET", "/users/@me", ua="DiscordBot (https://x.y, 1.2.3)")
        assert st == 200
        st, _, b = await rest.call("POST", "/channels/%s/messages" % cid, raw='{"content":"x"}',
                                   headers={"Content-Type": "text/plain"})
        assert st == 400 and b["code"] == 50006  # body ignored -> empty message
    run(session_and(fake, body))
    assert names(fake.reset_violations()) == ["user_agent", "content_type", "empty_message"]


def test_buckets_per_major_parameter_and_avoidable_429(fake):
    a, b_ = channel_ids(fake)[:2]

    async def body(http, rest):
        seen = []
        for i in range(5):
            st, h, m = await rest.call("POST", "/channels/%s/messages" % a, {"content": "m%d" % i})
            assert st == 200
            seen.append((h["X-RateLimit-Limit"], h["X-RateLimit-Remaining"], h["X-RateLimit-Bucket"]))
        assert [s[1] for s in seen] == ["4", "3", "2", "1", "0"]
        assert {s[0] for s in seen} == {"5"}
        bucket = seen[0][2]
        assert len({s[2] for s in seen}) == 1
        # another channel: same bucket hash, its own counter
        st, h, _ = await rest.call("POST", "/channels/%s/messages" % b_, {"content": "x"})
        assert st == 200 and h["X-RateLimit-Bucket"] == bucket and h["X-RateLimit-Remaining"] == "4"
        # a different route family has a different bucket
        st, h, _ = await rest.call("GET", "/channels/%s" % a)
        assert h["X-RateLimit-Bucket"] != bucket
        # the client was told Remaining 0: this 429 is avoidable
        st, h, m = await rest.call("POST", "/channels/%s/messages" % a, {"content": "too many"})
        assert st == 429
        assert m["message"] == "You are being rate limited." and m["global"] is False
        assert 0 < m["retry_after"] <= 5
        assert h["X-RateLimit-Scope"] == "user" and "X-RateLimit-Global" not in h
        assert h["Retry-After"] == str(int(-(-m["retry_after"] // 1)))
        assert h["X-RateLimit-Remaining"] == "0" and h["X-RateLimit-Bucket"] == bucket
    run(session_and(fake, body))
    st = fake.state()
    assert st["rest"]["stats"]["avoidable_429"] == 1
    assert names(fake.reset_violations()) == ["avoidable_429"]


def test_unavoidable_429_and_honouring_reset_after(fake):
    fake.set_limit("POST /channels/{channel_id}/messages", 2, 0.5)
    cid = channel_ids(fake)[0]

    async def body(http, rest):
        url = "/channels/%s/messages" % cid
        st, h, _ = await rest.call("POST", url, {"content": "1"})
        assert h["X-RateLimit-Limit"] == "2" and h["X-RateLimit-Remaining"] == "1"
        st, h, _ = await rest.call("POST", url, {"content": "2"})
        assert h["X-RateLimit-Remaining"] == "0"
        # honour Reset-After exactly: no 429, no violation
        await asyncio.sleep(float(h["X-RateLimit-Reset-After"]))
        st, h, _ = await rest.call("POST", url, {"content": "3"})
        assert st == 200 and h["X-RateLimit-Remaining"] == "1"
        # two requests on separate connections, the second sent before the
        # client could have read the first answer (the grace covers the race):
        # unavoidable.  On one keep-alive connection it would be avoidable.
        fake.config(avoidable_grace_ms=2000)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as h2:
            r2 = Rest(h2, fake)
            await r2.call("POST", url, {"content": "4"})
            st, h, _ = await r2.call("POST", url, {"content": "5"})
        assert st == 429
    run(session_and(fake, body))
    st = fake.state()
    assert st["rest"]["stats"].get("avoidable_429", 0) == 0
    assert st["rest"]["stats"]["unavoidable_429"] == 1
    assert fake.violations() == []


def test_global_rate_limit(fake):
    fake.set_limit("GET /channels/{channel_id}", 1000, 1.0)
    fake.config(global_window_s=5.0)  # 50 per 5 s: the test never races the window
    cid = channel_ids(fake)[0]

    async def body(http, rest):
        for i in range(50):
            st, _, _ = await rest.call("GET", "/channels/%s" % cid)
            assert st == 200, i
        st, h, m = await rest.call("GET", "/channels/%s" % cid)
        assert st == 429
        assert m["global"] is True and m["message"] == "You are being rate limited."
        assert h["X-RateLimit-Global"] == "true" and h["X-RateLimit-Scope"] == "global"
        assert int(h["Retry-After"]) >= 1
        # every route is blocked, except interaction endpoints
        st, h, m = await rest.call("GET", "/users/@me")
        assert st == 429 and m["global"] is True
        st, h, m = await rest.call("POST", "/interactions/1/tok/callback", {"type": 5}, auth=False)
        assert st == 404 and m["code"] == 10062
    run(session_and(fake, body))
    st = fake.state()
    assert st["rest"]["stats"]["global_429"] == 2
    assert st["rest"]["stats"]["unavoidable_429"] == 1   # the first global 429
    assert st["rest"]["stats"]["avoidable_429"] == 1     # retrying while told to wait
    assert sorted(names(fake.reset_violations())) == ["avoidable_429", "unknown_interaction"]


@pytest.mark.parametrize("mode", ["aligned", "first"])
def test_global_window_modes(make_fake, mode):
    """Aligned windows close at fixed times on the fake's clock, whatever
    the client does; "first" windows open with a request.  The same
    sequence tells them apart: 30 requests, a pause across the aligned
    boundary, 30 more, then 21 more."""
    fake = make_fake("--global-window-mode", mode)
    fake.set_limit("GET /channels/{channel_id}", 1000, 1.0)
    cid = channel_ids(fake)[0]

    async def body(http, rest):
        st, _, _ = await rest.call("GET", "/channels/%s" % cid)
        assert st == 200
        m0 = fake.state()["rest"]["requests"][-1]["mono"]
        # The aligned window boundary falls 0.6 s after the first request.
        fake.config(global_window_phase_s=(m0 + 0.6) % 1.0)
        t0 = time.monotonic()
        for i in range(29):
            st, _, _ = await rest.call("GET", "/channels/%s" % cid)
            assert st == 200, i
        assert time.monotonic() - t0 < 0.5, "too slow to test the window"
        await asyncio.sleep(0.7 - (time.monotonic() - t0))
        got = [(await rest.call("GET", "/channels/%s" % cid))[0] for _ in range(30)]
        if mode == "aligned":
            # A new window: all 30 pass; 20 more fill it, the 21st is refused.
            assert got == [200] * 30
            more = [(await rest.call("GET", "/channels/%s" % cid))[0] for _ in range(21)]
            assert more == [200] * 20 + [429]
        else:
            # Still the window the first request opened: 50 in all, then 429.
            assert got == [200] * 20 + [429] * 10
    run(session_and(fake, body))
    st = fake.state()
    assert st["config"]["global_window_mode"] == mode
    fake.reset_violations()


def test_scripted_responses(fake):
    cid = channel_ids(fake)[0]

    async def body(http, rest):
        url = "/channels/%s/messages" % cid
        fake.script_rest("POST", r"^/channels/\d+/messages$", [
            {"status": 429, "scope": "shared", "retry_after": 0.3},
            {"status": 503},
            {"delay_ms": 300},
            {"status": 502, "body": "<html>bad gateway</html>", "headers": {"Content-Type": "text/html"}},
            {"drop": True},
            {"status": 429, "scope": "global", "retry_after": 0.2},
        ])
        st, h, m = await rest.call("POST", url, {"content": "a"})
        assert st == 429 and h["X-RateLimit-Scope"] == "shared"
        assert m == {"message": "The resource is being rate limited.", "retry_after": 0.3, "global": False}
        assert h["Retry-After"] == "1" and "X-RateLimit-Bucket" in h
        # the bucket stays blocked for retry_after: an early retry is a real, avoidable 429
        st, h, m = await rest.call("GET", "/channels/%s" % cid)
        assert st == 200  # other routes are fine
        await asyncio.sleep(0.35)
        st, _, m = await rest.call("POST", url, {"content": "b"})
        assert st == 503 and m["code"] == 0
        t0 = time.monotonic()
        st, _, m = await rest.call("POST", url, {"content": "slow"})
        assert st == 200 and m["content"] == "slow" and time.monotonic() - t0 >= 0.29
        async with http.post(fake.base_url + url, json={"content": "c"},
                             headers={"Authorization": "Bot " + fake.token, "User-Agent": UA}) as r:
            assert r.status == 502 and r.headers["Content-Type"] == "text/html"
        with pytest.raises(aiohttp.ClientError):
            await rest.call("POST", url, {"content": "dropped"})
        st, h, m = await rest.call("POST", url, {"content": "g"})
        assert st == 429 and m["global"] is True and h["X-RateLimit-Global"] == "true"
        st, h, m = await rest.call("GET", "/users/@me")  # global block applies everywhere
        assert st == 429 and m["global"] is True
        await asyncio.sleep(0.25)
        st, h, m = await rest.call("POST", url, {"content": "after"})
        assert st == 200
        # a shared 429, retried too early
        fake.script_rest("*", "/messages$", [{"status": 429, "scope": "shared", "retry_after": 2}])
        st, _, _ = await rest.call("POST", url, {"content": "x"})
        assert st == 429
        st, h, m = await rest.call("POST", url, {"content": "x"})
        assert st == 429 and h["X-RateLimit-Scope"] == "shared"
    run(session_and(fake, body))
    st = fake.state()
    assert st["rest"]["stats"]["scripted_429"] == 3
    reqs = st["rest"]["requests"]
    assert any(r["status"] == "dropped" for r in reqs)
    assert all("Authorization" not in r["headers"] for r in reqs)
    assert names(fake.reset_violations()) == ["avoidable_429", "avoidable_429"]


def test_openapi_and_documented_limits(fake):
    cid = channel_ids(fake)[0]
    fake.set_limit("POST /channels/{channel_id}/messages", 100, 5)

    async def body(http, rest):
        url = "/channels/%s/messages" % cid
        good = {"content": "Hyperion: 1.2b", "allowed_mentions": {"parse": []},
                "embeds": [{"title": "Hyperion", "description": "lowest BIN", "color": 0x55FF55,
                            "fields": [{"name": "f%d" % i, "value": "v", "inline": True}
                                       for i in range(25)],
                            "footer": {"text": "souk"}, "author": {"name": "souk"}}],
                "components": [{"type": 1, "components": [
                    {"type": 2, "style": 1, "label": "Refresh", "custom_id": "refresh"}]}]}
        st, h, m = await rest.call("POST", url, good)
        assert st == 200, m
        assert h["Content-Type"] == "application/json"
        assert m["content"] == good["content"] and m["channel_id"] == cid
        assert m["author"]["id"] == fake.bot_user_id and m["author"]["bot"] is True
        assert re.fullmatch(r"\d{17,20}", m["id"]) and m["embeds"][0]["type"] == "rich"
        assert m["timestamp"].endswith("+00:00") and m["edited_timestamp"] is None
        for k in ("mentions", "mention_roles", "attachments", "pinned", "tts", "flags", "type"):
            assert k in m

        async def bad(payload, pointer_parts, code=None):
            st, _, e = await rest.call("POST", url, payload)
            assert st == 400, e
            assert e["code"] == 50035 and e["message"] == "Invalid Form Body"
            node = e["errors"]
            for p in pointer_parts:
                node = node[p]
            assert node["_errors"], e
            if code:
                assert node["_errors"][0]["code"] == code, e
            return e

        await bad({"content": "x" * 2001}, ["content"], "BASE_TYPE_MAX_LENGTH")
        await bad({"embeds": [{"title": "t", "fields": [{"name": "n", "value": "v"}] * 26}]},
                  ["embeds", "0", "fields"], "BASE_TYPE_MAX_LENGTH")
        await bad({"embeds": [{"title": "t" * 257}]}, ["embeds", "0", "title"])
        await bad({"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]},
                  ["embeds"], "MAX_EMBED_SIZE_EXCEEDED")
        await bad({"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]},
                  ["embeds", "0", "fields", "0", "value"])
        await bad({"embeds": [{"footer": {"text": "f" * 2049}}]}, ["embeds", "0", "footer", "text"])
        await bad({"content": "x", "allowed_mentions": {"parse": ["users"], "users": ["1"]}},
                  ["allowed_mentions"], "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE")
        await bad({"content": "x", "allowed_mentions": {"parse": ["nobody"]}},
                  ["allowed_mentions", "parse", "0"])
        await bad({"content": 5}, ["content"])  # the spec's type check
        await bad({"content": "x", "components": [{"type": 1, "components": []}] * 6}, ["components"])
        st, _, e = await rest.call("POST", url, {"content": ""})
        assert st == 400 and e == {"message": "Cannot send an empty message", "code": 50006}
        st, _, e = await rest.call("POST", url, raw="{nope", headers={"Content-Type": "application/json"})
        assert st == 400 and e["code"] == 50109
    run(session_and(fake, body))
    vs = fake.reset_violations()
    inv = [v for v in vs if v["name"] == "invalid_body"]
    pointers = {v["pointer"] for v in inv}
    assert "/content" in pointers and "/embeds/0/fields" in pointers and "/embeds" in pointers
    assert all(v["route"] == "POST /channels/{channel_id}/messages" and v["message"] for v in inv)
    assert {"empty_message", "invalid_json"} <= set(names(vs))


def test_rest_routes(fake):
    gid = fake.guilds[0]["id"]
    cid = channel_ids(fake)[0]
    app = fake.application_id
    fake.set_limit("PUT /applications/{application_id}/commands", 10, 20)

    async def body(http, rest):
        st, _, me = await rest.call("GET", "/users/@me")
        assert st == 200 and me["id"] == fake.bot_user_id and me["bot"] is True
        for p in ("/applications/@me", "/oauth2/applications/@me"):
            st, _, a = await rest.call("GET", p)
            assert st == 200 and a["id"] == app and a["bot"]["id"] == fake.bot_user_id
        st, _, g = await rest.call("GET", "/guilds/%s" % gid)
        assert st == 200 and g["id"] == gid and "approximate_member_count" not in g
        st, _, g = await rest.call("GET", "/guilds/%s?with_counts=true" % gid)
        assert g["approximate_member_count"] >= 1 and "approximate_presence_count" in g
        st, _, e = await rest.call("GET", "/guilds/1")
        assert st == 404 and e == {"message": "Unknown Guild", "code": 10004}
        st, _, c = await rest.call("GET", "/channels/%s" % cid)
        assert c["id"] == cid and c["guild_id"] == gid
        st, h, c = await rest.call("PATCH", "/channels/%s" % cid, {"name": "ah-1b"})
        assert st == 200 and c["name"] == "ah-1b"
        # The rename limit (2 per 10 minutes) is not announced by the bucket.
        assert h["X-RateLimit-Limit"] == "5" and float(h["X-RateLimit-Reset-After"]) <= 5
        st, _, m = await rest.call("POST", "/channels/%s/messages" % cid, {"content": "v1"})
        st, _, m2 = await rest.call("PATCH", "/channels/%s/messages/%s" % (cid, m["id"]),
                                    {"content": "v2"})
        assert st == 200 and m2["content"] == "v2" and m2["edited_timestamp"]
        st, h, none = await rest.call("DELETE", "/channels/%s/messages/%s" % (cid, m["id"]))
        assert st == 204 and none is None and "X-RateLimit-Bucket" in h
        st, _, e = await rest.call("GET", "/channels/%s/messages/%s" % (cid, m["id"]))
        assert st == 404 and e["code"] == 10008
        st, _, none = await rest.call("POST", "/channels/%s/typing" % cid)
        assert st == 204 and none is None
        assert [t["channel_id"] for t in fake.state()["typing"]] == [cid]
        st, _, e = await rest.call("POST", "/channels/1/typing")
        assert st == 404
        cmds = [{"name": "price", "description": "Price of an item", "type": 1,
                 "options": [{"type": 3, "name": "item", "description": "item", "required": True}]},
                {"name": "flips", "description": "Bazaar flips"}]
        st, _, out = await rest.call("PUT", "/applications/%s/commands" % app, cmds)
        assert st == 200 and [c["name"] for c in out] == ["price", "flips"]
        assert all(re.fullmatch(r"\d+", c["id"]) and c["application_id"] == app for c in out)
        st, _, again = await rest.call("PUT", "/applications/%s/commands" % app, cmds)
        assert [c["id"] for c in again] == [c["id"] for c in out]  # same names keep their ids
        st, _, listed = await rest.call("GET", "/applications/%s/commands" % app)
        assert [c["id"] for c in listed] == [c["id"] for c in out]
        st, _, gout = await rest.call("PUT", "/applications/%s/guilds/%s/commands" % (app, gid),
                                      cmds[:1])
        assert st == 200 and gout[0]["guild_id"] == gid
        st, _, glisted = await rest.call("GET", "/applications/%s/guilds/%s/commands" % (app, gid))
        assert glisted == gout
        st, _, e = await rest.call("PUT", "/applications/%s/commands" % app,
                                   [{"name": "Bad Name", "description": "x"}])
        assert st == 400 and e["code"] == 50035
    run(session_and(fake, body))
    assert names(fake.reset_violations()) == ["invalid_body"]


# ---------------------------------------------------------------- gateway
def test_hello_identify_ready_heartbeat_zlib(fake):
    async def body(http, rest):
        gw = await GW.open(http, fake)
        hello, ready, creates = await gw.start(fake)
        assert hello == {"t": None, "s": None, "op": 10,
                         "d": {"heartbeat_interval": 41250, "_trace": hello["d"]["_trace"]}}
        d = ready["d"]
        assert ready["s"] == 1 and ready["op"] == 0
        assert d["v"] == 10 and d["user"]["id"] == fake.bot_user_id and d["user"]["bot"]
        assert d["resume_gateway_url"] == "ws://127.0.0.1:%d/resume" % fake.port
        assert re.fullmatch(r"[0-9a-f]{32}", d["session_id"])
        assert d["application"]["id"] == fake.application_id and "flags" in d["application"]
        assert d["guilds"] == [{"id": fake.guilds[0]["id"], "unavailable": True}]
        assert "shard" not in d
        assert creates[0]["t"] == "GUILD_CREATE" and creates[0]["s"] == 2
        g = creates[0]["d"]
        assert g["id"] == fake.guilds[0]["id"] and g["channels"] and g["members"] and g["roles"]
        assert gw.frames_per_payload == [1, 1, 1] and gw.compressed
        await gw.send({"op": 1, "d": gw.seq})
        ack = await gw.recv()
        assert ack["op"] == 11
        await gw.send({"op": 1, "d": gw.seq})
        assert (await gw.recv())["op"] == 11
        st = fake.state()
        hb = st["heartbeats"]
        assert [h["d"] for h in hb] == [2, 2] and hb[0]["first"] is True
        assert st["connections"][0]["first_heartbeat_delay_ms"] == hb[0]["since_hello_ms"]
        assert st["identifies"][0]["result"] == "ready" and "token" not in st["identifies"][0]
        assert st["identifies"][0]["properties"]["browser"] == "souk"
        await gw.close(1000)
        await asyncio.sleep(0.1)
        st = fake.state()
        assert st["connections"][0]["close_code"] == 1000
        assert st["connections"][0]["closed_by"] == "client"
        assert st["sessions"][0]["invalid"] is True  # 1000 ends the session
        # session_start_limit went down
        _, _, gb = await rest.call("GET", "/gateway/bot")
        assert gb["session_start_limit"]["remaining"] == 999
        # plain text connection
        gw = await GW.open(http, fake, query="v=10&encoding=json")
        msg = await asyncio.wait_for(gw.ws.receive(), 5)
        assert msg.type == WSMsgType.TEXT and json.loads(msg.data)["op"] == 10
    run(session_and(fake, body))
    assert fake.violations() == []


def test_zstd_stream_one_context_per_connection(fake):
    """compress=zstd-stream: every payload is one binary message, flushed to
    a block boundary of one zstd stream that lasts the connection, so one
    decompression context decodes them all in order."""
    zstandard = pytest.importorskip("zstandard")

    async def body(http, rest):
        ws = await http.ws_connect("ws://127.0.0.1:%d/gateway?v=10&encoding=json"
                                   "&compress=zstd-stream" % fake.port, max_msg_size=0)
        dec = zstandard.ZstdDecompressor().decompressobj()
        sizes = []

        async def recv():
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type == WSMsgType.BINARY, msg
            sizes.append(len(msg.data))
            return json.loads(dec.decompress(msg.data))

        hello = await recv()
        assert hello["op"] == 10
        await ws.send_str(json.dumps({"op": 2, "d": {
            "token": fake.token, "intents": INTENTS,
            "properties": {"os": "linux", "browser": "souk", "device": "souk"}}}))
        ready = await recv()
        assert ready["t"] == "READY"
        assert (await recv())["t"] == "GUILD_CREATE"
        for i in range(3):
            fake.message(content="the same words again and again %d" % i)
            m = await recv()
            assert m["t"] == "MESSAGE_CREATE" and m["d"]["content"].endswith(str(i))
        # Later payloads use the history of earlier ones.
        assert sizes[-1] < sizes[-3] or sizes[-1] < 200
        st = fake.state()
        assert st["connections"][0]["compress_mode"] == "zstd-stream"
        await ws.close()
    run(session_and(fake, body))


def test_split_frames_and_fragments(fake):
    fake.config(identify_window_s=0)

    async def body(http, rest):
        gw = await GW.open(http, fake)
        await gw.start(fake)
        fake.split(count=3, parts=3, mode="messages")
        for i in range(4):
            fake.dispatch("TYPING_START", {"channel_id": "1", "user_id": "2", "timestamp": i}, force=True)
        fake.dispatch("GUILD_UPDATE", {"id": fake.guilds[0]["id"], "name": "x" * 3000})
        got = [await gw.recv() for _ in range(5)]
        assert [p["s"] for p in got] == [3, 4, 5, 6, 7]
        assert got[4]["d"]["name"] == "x" * 3000
        assert gw.frames_per_payload[-5:][:3] == [3, 3, 3] and gw.frames_per_payload[-2:] == [1, 1]
        # WebSocket-level fragmentation (continuation frames): the WS library reassembles
        fake.split(count=1, parts=4, mode="fragments")
        fake.dispatch("TYPING_START", {"channel_id": "1", "user_id": "2", "timestamp": 9}, force=True)
        p = await gw.recv()
        assert p["s"] == 8 and gw.frames_per_payload[-1] == 1
        # plain text + fragments
        gw2 = await GW.open(http, fake, query="v=10&encoding=json")
        fake.split(count=1, parts=2, mode="fragments", conn=2)
        await asyncio.sleep(0)  # HELLO was already sent before split
        await gw2.start(fake, shard=[0, 1])
    run(session_and(fake, body))
    # default splitting for every new connection
    fake.split(count=None, parts=2, mode="messages", default=True)

    async def body2(http, rest):
        gw = await GW.open(http, fake)
        await gw.start(fake)
        assert set(gw.frames_per_payload) == {2}
    run(session_and(fake, body2))
    assert fake.violations() == []


def test_resume_replays_missed_events_exactly_once(fake):
    async def body(http, rest):
        gw = await GW.open(http, fake)
        _, ready, _ = await gw.start(fake)
        sid = ready["d"]["session_id"]
        r = fake.dispatch("MESSAGE_REACTION_ADD", {"guild_id": fake.guilds[0]["id"], "n": "A"}, force=True)
        a = await gw.recv()
        assert a["s"] == 3 == r["seq"] and r["delivered"]
        fake.drop(conn=1)
        with pytest.raises(Closed):
            await gw.recv()
        await asyncio.sleep(0.1)
        rb = fake.dispatch("TYPING_START", {"n": "B"}, session_id=sid, force=True)
        rc = fake.dispatch("TYPING_START", {"n": "C"}, session_id=sid, force=True)
        assert (rb["seq"], rb["delivered"], rc["seq"], rc["delivered"]) == (4, False, 5, False)
        gw2 = await GW.open(http, fake, path="/resume")
        assert (await gw2.recv())["op"] == 10
        await gw2.send({"op": 6, "d": {"token": fake.token, "session_id": sid, "seq": 3}})
        got = [await gw2.recv() for _ in range(3)]
        assert [(p["s"], p["t"]) for p in got] == [(4, "TYPING_START"), (5, "TYPING_START"),
                                                   (6, "RESUMED")]
        assert [p["d"]["n"] for p in got[:2]] == ["B", "C"]
        # new events flow on the resumed connection
        fake.dispatch("TYPING_START", {"n": "D"}, session_id=sid, force=True)
        d = await gw2.recv()
        assert d["s"] == 7 and d["d"]["n"] == "D"
        st = fake.state()
        res = st["resumes"][-1]
        assert res["result"] == "resumed" and res["replayed"] == [4, 5] and res["path"] == "resume"
        deliveries = [x["seq"] for x in st["sessions"][0]["delivered"]]
        assert sorted(deliveries) == list(range(1, 8))  # every event exactly once
        assert st["connections"][1]["resumed"] is True
        # bad token / unknown session -> op 9 d:false
        for dd in ({"token": "nope", "session_id": sid, "seq": 7},
                   {"token": fake.token, "session_id": "0" * 32, "seq": 1}):
            g = await GW.open(http, fake, path="/resume")
            await g.recv()
            await g.send({"op": 6, "d": dd})
            p = await g.recv()
            assert p["op"] == 9 and p["d"] is False
        # seq ahead of the session -> 4007
        g = await GW.open(http, fake, path="/resume")
        await g.recv()
        await g.send({"op": 6, "d": {"token": fake.token, "session_id": sid, "seq": 99}})
        assert await g.expect_close() == 4007
    run(session_and(fake, body))
    assert names(fake.reset_violations()) == ["invalid_seq"]


def test_reconnect_and_invalid_session(fake):
    async def body(http, rest):
        gw = await GW.open(http, fake)
        _, ready, _ = await gw.start(fake)
        sid = ready["d"]["session_id"]
        fake.reconnect()
        p = await gw.recv()
        assert p == {"t": None, "s": None, "op": 7, "d": None}
        fake.invalid_session(resumable=True)
        p = await gw.recv()
        assert p["op"] == 9 and p["d"] is True
        await gw.close(4000)
        g = await GW.open(http, fake, path="/resume")
        await g.recv()
        await g.send({"op": 6, "d": {"token": fake.token, "session_id": sid, "seq": gw.seq}})
        assert (await g.recv())["t"] == "RESUMED"
        fake.invalid_session(resumable=False)
        p = await g.recv()
        assert p["op"] == 9 and p["d"] is False
        await g.close(4000)
        g = await GW.open(http, fake, path="/resume")
        await g.recv()
        await g.send({"op": 6, "d": {"token": fake.token, "session_id": sid, "seq": g.seq or 3}})
        p = await g.recv()
        assert p["op"] == 9 and p["d"] is False
    run(session_and(fake, body))
    assert fake.violations() == []


def test_close_codes(fake):
    fake.config(identify_window_s=0)

    async def body(http, rest):
        async def fresh(query="v=10&encoding=json&compress=zlib-stream"):
            g = await GW.open(http, fake, query=query)
            await g.recv()
            return g

        # server-initiated close with a code keeps the session resumable
        g = await fresh()
        await g.identify(fake.token)
        ready = await g.recv()
        await g.recv()
        fake.close(code=4000)
        assert await g.expect_close() == 4000
        r = await fresh()
        await r.send({"op": 6, "d": {"token": fake.token, "session_id": ready["d"]["session_id"],
                                     "seq": 2}})
        assert (await r.recv())["t"] == "RESUMED"
        fake.close(code=1000)
        assert await r.expect_close() == 1000

        cases = [
            (lambda g: g.identify("bad-token"), 4004),
            (lambda g: g.identify(fake.token, shard=[1, 1]), 4010),
            (lambda g: g.identify(fake.token, shard=[0, "x"]), 4010),
            (lambda g: g.identify(fake.token, intents=1 << 30), 4013),
            (lambda g: g.identify(fake.token, intents=-1), 4013),
            (lambda g: g.send({"op": 3, "d": {"status": "online", "activities": [], "afk": False,
                                              "since": None}}), 4003),
            (lambda g: g.send({"op": 99, "d": None}), 4001),
            (lambda g: g.send({"op": 0, "d": None}), 4001),
            (lambda g: g.ws.send_str("{not json"), 4002),
            (lambda g: g.ws.send_bytes(b"\x01\x02"), 4002),
            (lambda g: g.send({"op": 2, "d": {"token": fake.token, "intents": 1}}), 4001),
        ]
        for act, code in cases:
            g = await fresh()
            await act(g)
            assert await g.expect_close() == code, code
        # second IDENTIFY on one connection
        g = await fresh()
        await g.identify(fake.token)
        await g.recv()
        await g.recv()
        await g.identify(fake.token)
        assert await g.expect_close() == 4005
        # sharding required / disallowed intents
        fake.config(min_shards=2)
        g = await fresh()
        await g.identify(fake.token, shard=[0, 1])
        assert await g.expect_close() == 4011
        fake.config(min_shards=1, privileged_intents=["MESSAGE_CONTENT"])
        g = await fresh()
        await g.identify(fake.token, intents=INTENTS | (1 << 1))
        assert await g.expect_close() == 4014
        # bad query string
        for q, code in (("v=9&encoding=json", 4012), ("encoding=json", 4012),
                        ("v=10&encoding=etf", 4002)):
            g = await GW.open(http, fake, query=q)
            assert await g.expect_close() == code, q
        # closes that end the session
        fake.config(privileged_intents=["MESSAGE_CONTENT", "GUILD_MEMBERS", "GUILD_PRESENCES"])
        g = await fresh()
        await g.identify(fake.token)
        ready = await g.recv()
        fake.close(code=4007)
        assert await g.expect_close() == 4007
        r = await fresh()
        await r.send({"op": 6, "d": {"token": fake.token, "session_id": ready["d"]["session_id"],
                                     "seq": 1}})
        p = await r.recv()
        assert p["op"] == 9 and p["d"] is False
    run(session_and(fake, body))
    got = names(fake.reset_violations())
    for n in ("invalid_shard", "not_authenticated", "unknown_opcode", "decode_error",
              "invalid_payload", "already_authenticated", "bad_query"):
        assert n in got, n


def test_heartbeat_timeout_acks_and_requests(fake):
    fake.config(heartbeat_interval_ms=300, heartbeat_grace_ms=200, identify_window_s=0)

    async def body(http, rest):
        # zombie client: no heartbeat -> 4009
        g = await GW.open(http, fake)
        hello = await g.recv()
        assert hello["d"]["heartbeat_interval"] == 300
        t0 = time.monotonic()
        assert await g.expect_close(3) == 4009
        assert 0.45 <= time.monotonic() - t0 < 1.5
        # ACKs withheld: heartbeats get no op 11
        g = await GW.open(http, fake)
        await g.start(fake)
        fake.acks(False)
        await g.send({"op": 1, "d": g.seq})
        assert await g.expect_nothing(0.2) is None
        fake.acks(True)
        await g.send({"op": 1, "d": g.seq})
        assert (await g.recv())["op"] == 11
        # the server asks for a heartbeat: the client must answer at once
        fake.heartbeat_request()
        p = await g.recv()
        assert p["op"] == 1
        await g.send({"op": 1, "d": g.seq})
        assert (await g.recv())["op"] == 11
        st = fake.state()
        hbs = [h for h in st["heartbeats"] if h["conn"] == 2]
        assert [h["acked"] for h in hbs] == [False, True, True]
        assert hbs[-1]["requested"] is True and hbs[-1]["request_latency_ms"] < 500
        assert st["heartbeat_requests"][0]["answered_ms"] is not None
        await g.close(1000)
        # heartbeat request ignored -> violation
        fake.config(heartbeat_interval_ms=5000, heartbeat_request_deadline_ms=200)
        g = await GW.open(http, fake)
        await g.recv()
        fake.heartbeat_request()
        assert (await g.recv())["op"] == 1
        await asyncio.sleep(0.4)
    run(session_and(fake, body))
    assert names(fake.reset_violations()) == ["heartbeat_timeout", "heartbeat_request_ignored"]


def test_identify_concurrency(make_fake):
    fake = make_fake("--shards", "4", "--max-concurrency", "2")

    async def body(http, rest):
        _, _, gb = await rest.call("GET", "/gateway/bot")
        assert gb["shards"] == 4 and gb["session_start_limit"]["max_concurrency"] == 2
        gws = []
        for shard in (0, 1):  # rate limit keys 0 and 1: allowed together
            g = await GW.open(http, fake)
            await g.recv()
            await g.identify(fake.token, shard=[shard, 4])
            r = await g.recv()
            assert r["t"] == "READY" and r["d"]["shard"] == [shard, 4]
            gws.append(g)
        g = await GW.open(http, fake)  # shard 2 -> key 0 again, within 5 s
        await g.recv()
        await g.identify(fake.token, shard=[2, 4])
        p = await g.recv()
        assert p["op"] == 9 and p["d"] is False
        _, _, gb = await rest.call("GET", "/gateway/bot")
        assert gb["session_start_limit"]["remaining"] == 998
    run(session_and(fake, body))
    st = fake.state()
    assert [i["shard"] for i in st["identifies"]] == [[0, 4], [1, 4], [2, 4]]
    assert [i["result"] for i in st["identifies"]] == ["ready", "ready", "invalid_session"]
    v = fake.reset_violations()
    assert names(v) == ["identify_concurrency"] and v[0]["rate_limit_key"] == 0


def test_gateway_send_limit_and_payload_size(fake):
    fake.config(identify_window_s=0)

    async def body(http, rest):
        g = await GW.open(http, fake)
        await g.start(fake)
        for _ in range(119):  # + IDENTIFY = 120 payloads: allowed
            await g.send({"op": 1, "d": g.seq})
        for _ in range(119):
            assert (await g.recv())["op"] == 11
        await g.send({"op": 1, "d": g.seq})  # the 121st payload
        assert await g.expect_close() == 4008
        g = await GW.open(http, fake)
        await g.start(fake)
        big = {"op": 3, "d": {"since": None, "activities": [{"name": "x" * 4100, "type": 0}],
                              "status": "online", "afk": False}}
        await g.send(big)
        assert await g.expect_close() == 4002
        g = await GW.open(http, fake)
        await g.start(fake)
        ok = {"op": 3, "d": {"since": None, "activities": [{"name": "x" * 3900, "type": 0}],
                             "status": "online", "afk": False}}
        await g.send(ok)
        assert await g.expect_nothing(0.2) is None
    run(session_and(fake, body))
    v = fake.reset_violations()
    assert names(v) == ["gateway_rate_limit", "payload_too_big"]
    assert v[1]["size"] > 4096


def test_intents_filter_content_and_echo(fake):
    cid = channel_ids(fake)[0]

    async def body(http, rest):
        g = await GW.open(http, fake)
        await g.start(fake, intents=1 | (1 << 9))  # no MESSAGE_CONTENT
        r = fake.message("price of hyperion?", channel_id=cid)
        p = await g.recv()
        assert p["t"] == "MESSAGE_CREATE" and p["d"]["content"] == "" and p["d"]["guild_id"]
        assert p["d"]["member"] and p["d"]["author"]["id"] == r["message"]["author"]["id"]
        fake.message("price?", channel_id=cid, mention_bot=True)
        p = await g.recv()
        assert p["d"]["content"].endswith("price?")
        r = fake.dispatch("PRESENCE_UPDATE", {"guild_id": fake.guilds[0]["id"], "user": {"id": "1"}})
        assert r["filtered"] is True
        # the bot's own REST writes come back as gateway events
        st, _, m = await rest.call("POST", "/channels/%s/messages" % cid, {"content": "pong"})
        p = await g.recv()
        assert p["t"] == "MESSAGE_CREATE" and p["d"]["id"] == m["id"] and p["d"]["content"] == "pong"
        await rest.call("PATCH", "/channels/%s" % cid, {"name": "renamed"})
        p = await g.recv()
        assert p["t"] == "CHANNEL_UPDATE" and p["d"]["name"] == "renamed"
    run(session_and(fake, body))
    assert fake.violations() == []


def test_interactions(fake):
    fake.config(interaction_deadline_s=0.5)
    app = fake.application_id

    async def body(http, rest):
        g = await GW.open(http, fake)
        await g.start(fake)
        it = fake.interaction("price", options=[{"type": 3, "name": "item", "value": "HYPERION"}])
        p = await g.recv()
        assert p["t"] == "INTERACTION_CREATE" and p["d"]["id"] == it["id"]
        d = p["d"]
        assert d["token"] == it["token"] and d["application_id"] == app
        assert d["data"]["name"] == "price" and d["member"]["user"]["id"]
        cb = "/interactions/%s/%s/callback" % (it["id"], it["token"])
        wh = "/webhooks/%s/%s" % (app, it["token"])
        st, _, e = await rest.call("POST", wh, {"content": "too early"}, auth=False)
        assert st == 404 and e["code"] == 10015
        st, h, none = await rest.call("POST", cb, {"type": 5}, auth=False)
        assert st == 204 and none is None
        st, _, e = await rest.call("POST", cb, {"type": 5}, auth=False)
        assert st == 400 and e["code"] == 40060
        st, _, orig = await rest.call("PATCH", wh + "/messages/@original",
                                      {"content": "Hyperion: 1.2b"}, auth=False)
        assert st == 200 and orig["content"] == "Hyperion: 1.2b" and not orig["flags"] & 128
        p = await g.recv_until(lambda p: p["t"] == "MESSAGE_UPDATE")
        assert p["d"]["id"] == orig["id"]
        st, _, fu = await rest.call("POST", wh, {"content": "follow-up", "flags": 64}, auth=False)
        assert st == 200 and fu["webhook_id"] == app
        st, _, got = await rest.call("GET", wh + "/messages/%s" % fu["id"], auth=False)
        assert got["id"] == fu["id"]
        st, _, got = await rest.call("GET", wh + "/messages/@original", auth=False)
        assert got["id"] == orig["id"]
        st, _, _ = await rest.call("DELETE", wh + "/messages/%s" % fu["id"], auth=False)
        assert st == 204
        st, _, e = await rest.call("POST", wh, {"content": "x" * 2001}, auth=False)
        assert st == 400 and "content" in e["errors"]
        # too late for the initial response
        it2 = fake.interaction("flips")
        await asyncio.sleep(0.6)
        st, _, e = await rest.call("POST", "/interactions/%s/%s/callback" % (it2["id"], it2["token"]),
                                   {"type": 4, "data": {"content": "late"}}, auth=False)
        assert st == 404 and e["code"] == 10062
        # a message callback is validated like a message
        it3 = fake.interaction("flips")
        st, _, e = await rest.call("POST", "/interactions/%s/%s/callback" % (it3["id"], it3["token"]),
                                   {"type": 4, "data": {"embeds": [{"title": "t" * 300}]}}, auth=False)
        assert st == 400 and "data" in e["errors"]
    run(session_and(fake, body))
    got = names(fake.reset_violations())
    assert got == ["followup_before_response", "interaction_already_acknowledged",
                   "invalid_body", "interaction_timeout", "invalid_body"], got


def test_blast(fake):
    async def body(http, rest):
        g = await GW.open(http, fake)
        await g.start(fake)
        b = fake.blast(count=400, guilds=2, channels_per_guild=3, members_per_guild=20, seed=7)
        creates = [await g.recv() for _ in range(2)]
        assert [c["t"] for c in creates] == ["GUILD_CREATE", "GUILD_CREATE"]
        for c in creates:
            assert len(c["d"]["members"]) == 20 and len(c["d"]["channels"]) == 4
            assert c["d"]["member_count"] == 20
        msgs = [await g.recv() for _ in range(400)]
        assert all(m["t"] == "MESSAGE_CREATE" for m in msgs)
        assert [m["s"] for m in msgs] == list(range(creates[-1]["s"] + 1, creates[-1]["s"] + 401))
        m = msgs[0]["d"]
        for k in ("id", "channel_id", "guild_id", "author", "member", "content", "timestamp",
                  "mentions", "embeds", "attachments", "components", "nonce", "type", "flags"):
            assert k in m, k
        assert {x["d"]["guild_id"] for x in msgs} == {c["d"]["id"] for c in creates}
        assert len({x["d"]["channel_id"] for x in msgs}) > 2
        assert len({x["d"]["id"] for x in msgs}) == 400
        # the blast's guilds exist for REST too
        st, _, gg = await rest.call("GET", "/guilds/%s" % creates[0]["d"]["id"])
        assert st == 200
        stt = fake.wait_for(lambda s: s["blasts"][0]["done"] and s["blasts"][0], what="blast")
        assert stt["sent"] == 400 and stt["guilds_sent"] == 2 and stt["error"] is None
        assert fake.blast_status(b["id"])["done"] is True
    run(session_and(fake, body))
    assert fake.violations() == []


def test_blast_batched_writes(fake):
    """batch N: the same events, each its own zlib-flushed frame, written N
    frames per socket write; nothing lost or reordered, and ACKs still flow."""
    async def body(http, rest):
        g = await GW.open(http, fake)
        await g.start(fake)
        b = fake.blast(count=500, guilds=1, channels_per_guild=2, members_per_guild=5, seed=3,
                       batch=64)
        create = await g.recv()
        assert create["t"] == "GUILD_CREATE"
        msgs = [await g.recv() for _ in range(500)]
        assert [m["s"] for m in msgs] == list(range(create["s"] + 1, create["s"] + 501))
        assert all(m["t"] == "MESSAGE_CREATE" for m in msgs)
        assert set(g.frames_per_payload) == {1}
        done = fake.wait_for(lambda s: s["blasts"][0]["done"] and s["blasts"][0], what="blast")
        assert done["sent"] == 500 and done["error"] is None and done["batch"] == 64
        # The connection is back to one write per payload afterwards.
        await g.send({"op": 1, "d": msgs[-1]["s"]})
        ack = await g.recv()
        assert ack["op"] == 11
    run(session_and(fake, body))
    assert fake.violations() == []


def test_blast_shard_formula(make_fake):
    """shard_formula: the blast's guilds are those Discord would give the
    session's shard, by (guild_id >> 22) % num_shards; without it the ids
    of guilds made within the same millisecond share one shard, so two
    shards' blasts cannot both land right."""
    fake = make_fake("--shards", "4", "--max-concurrency", "4")

    async def body(http, rest):
        for k, shard in enumerate((1, 2)):
            g = await GW.open(http, fake)
            await g.start(fake, shard=[shard, 4])
            b = fake.blast(shard=shard, count=0, guilds=12, channels_per_guild=2,
                           members_per_guild=3, shard_formula=True)
            creates = [await g.recv() for _ in range(12)]
            ids = [int(c["d"]["id"]) for c in creates]
            assert len(set(ids)) == 12
            assert all((i >> 22) % 4 == shard for i in ids), ids
            done = fake.wait_for(lambda s: s["blasts"][k]["done"] and s["blasts"][k],
                                 what="blast")
            assert done["error"] is None and done["guilds_sent"] == 12
            first = fake.blast_status(b["id"])["first_channel_id"]
            assert first in [c["id"] for c in creates[0]["d"]["channels"] if c["type"] == 0]
            # A message in one of them reaches this shard's session.
            fake.message(channel_id=first, content="hi")
            m = await g.recv()
            assert m["t"] == "MESSAGE_CREATE" and m["d"]["guild_id"] == str(ids[0])
    run(session_and(fake, body))
    assert fake.violations() == []


def test_blast_on_ready_flag(make_fake):
    fake = make_fake("--blast-on-ready", "50", "--blast-guilds", "1", "--blast-members-per-guild", "5")

    async def body(http, rest):
        g = await GW.open(http, fake)
        await g.start(fake)
        p = await g.recv()
        assert p["t"] == "GUILD_CREATE" and len(p["d"]["members"]) == 5
        msgs = [await g.recv() for _ in range(50)]
        assert all(m["t"] == "MESSAGE_CREATE" for m in msgs)
    run(session_and(fake, body))
    assert fake.wait_for(lambda s: s["blasts"] and s["blasts"][0]["done"], what="blast")


def test_harness_fixture_helpers(fake, tmp_path):
    """The integration conftest's client wraps the control API."""
    assert fake.base_url.endswith("/api/v10") and fake.gateway_url.endswith("/gateway")
    assert harness.free_port() > 0
    assert fake.config()["heartbeat_interval_ms"] == 41250
    assert fake.wait("identify", 0, timeout=1)["ok"] is True
    with pytest.raises(harness.FakeDiscordError):
        fake.dispatch("READY", {})  # no session yet
    fake.allow_violations("unknown_route", "user_agent")  # urllib's User-Agent, too
    with pytest.raises(harness.FakeDiscordError):
        fake._call("GET", "/api/v10/nothing/here")
    assert fake.unexpected_violations() == []
    assert names(fake.violations()) == ["user_agent", "unknown_route"]


def test_misc_control_and_multipart(fake):
    cid = channel_ids(fake)[0]
    fake.config(identify_window_s=0)

    async def body(http, rest):
        g = await GW.open(http, fake)
        _, ready, _ = await g.start(fake)
        sid = ready["d"]["session_id"]
        # a guild added later arrives as GUILD_CREATE
        added = fake.add_guild("Late Guild", channels=2, members=3)
        p = await g.recv()
        assert p["t"] == "GUILD_CREATE" and p["d"]["id"] == added["guild"]["id"]
        assert fake.wait("ready", 1, timeout=1)["count"] == 1
        # multipart message with a file: payload_json is validated like JSON
        form = aiohttp.FormData()
        form.add_field("payload_json", json.dumps({"content": "chart", "attachments": [
            {"id": 0, "filename": "chart.png"}]}), content_type="application/json")
        form.add_field("files[0]", b"\x89PNG....", filename="chart.png", content_type="image/png")
        async with http.post(fake.base_url + "/channels/%s/messages" % cid, data=form,
                             headers={"Authorization": "Bot " + fake.token, "User-Agent": UA}) as r:
            m = await r.json()
            assert r.status == 200, m
        assert m["attachments"][0]["filename"] == "chart.png" and m["attachments"][0]["size"] == 8
        assert [x["id"] for x in fake.messages(cid)] == [m["id"]]
        req = fake.requests()[-1]
        assert req["body"]["files"][0]["filename"] == "chart.png"
        # an expired session cannot be resumed
        await g.close(4000)
        fake.expire_session(session_id=sid)
        r = await GW.open(http, fake, path="/resume")
        await r.recv()
        await r.send({"op": 6, "d": {"token": fake.token, "session_id": sid, "seq": g.seq}})
        p = await r.recv()
        assert p["op"] == 9 and p["d"] is False
        # after op 9 the client may IDENTIFY anew (on a new connection, normally)
        await r.identify(fake.token)
        assert (await r.recv())["t"] == "READY"
    run(session_and(fake, body))
    st = fake.state()
    assert [x["result"] for x in st["resumes"]] == ["invalid_session"]
    assert fake.violations() == []


def test_rename_window_can_be_aged_for_moved_clocks(fake):
    """/_fake/renames/age: a bot on a moved test clock sees its ten minutes
    pass; the fake's own hidden window must pass as well, and only then."""
    cid = channel_ids(fake)[0]

    async def body(http, rest):
        for i in range(2):
            st, _, _ = await rest.call("PATCH", "/channels/%s" % cid, {"name": "n%d" % i})
            assert st == 200
        st, h, e = await rest.call("PATCH", "/channels/%s" % cid, {"name": "n2"})
        assert st == 429 and e["retry_after"] > 590
        fake.post("/_fake/renames/age", {"s": 300})
        st, _, e = await rest.call("PATCH", "/channels/%s" % cid, {"name": "n3"})
        assert st == 429 and 290 < e["retry_after"] <= 300
        fake.post("/_fake/renames/age", {"s": 301})
        st, _, c = await rest.call("PATCH", "/channels/%s" % cid, {"name": "n4"})
        assert st == 200 and c["name"] == "n4"
    run(session_and(fake, body))
    assert names(fake.reset_violations()) == ["channel_rename_limit", "channel_rename_limit"]


def test_guilds_spread_over_shards_by_discords_formula(make_fake):
    """Guilds go round the shards in turn, each with an id that Discord's
    formula (guild_id >> 22) % num_shards puts on its shard, and a
    session gets the GUILD_CREATEs of its own shard only."""
    fake = make_fake("--shards", "4", "--guilds", "10", "--max-concurrency", "4")
    ids = [g["id"] for g in fake.state(rest_log=False)["guilds"]]
    assert len(ids) == 10 and len(set(ids)) == 10
    assert [(int(g) >> 22) % 4 for g in ids] == [i % 4 for i in range(10)]
    # A guild added for a shard lands on it; one added without, on the next in turn.
    extra = fake.add_guild(name="On three", shard=3)["guild"]["id"]
    assert (int(extra) >> 22) % 4 == 3
    nxt = fake.add_guild(name="Next")["guild"]["id"]
    assert (int(nxt) >> 22) % 4 == 2

    async def body(http, rest):
        got = {}
        for shard in range(4):
            g = await GW.open(http, fake)
            _, ready, creates = await g.start(fake, shard=[shard, 4])
            got[shard] = sorted(c["d"]["id"] for c in creates)
            assert sorted(x["id"] for x in ready["d"]["guilds"]) == got[shard]
            await g.close()
        return got
    got = run(session_and(fake, body))
    everyone = ids + [extra, nxt]
    for shard in range(4):
        assert got[shard] == sorted(g for g in everyone if (int(g) >> 22) % 4 == shard)
    # A message in a channel of each guild goes to its shard's session.
    st = fake.state(rest_log=False)
    for g in st["guilds"]:
        ch = next(c["id"] for c in g["channels"] if c["type"] == 0)
        assert fake.message(channel_id=ch)["shard"] == (int(g["id"]) >> 22) % 4


def test_sliding_window_counts_global_requests_of_every_client(make_fake):
    """The most requests bound by the global limit in any one-second window
    that slides with each arrival, across every client connection, with
    interaction callbacks left out as Discord leaves them out; mode
    "sliding" also enforces the limit that way."""
    fake = make_fake("--global-window-mode", "sliding")
    fake.set_limit("GET /channels/{channel_id}", 1000, 1.0)
    cid = channel_ids(fake)[0]

    async def body(http, rest):
        # Two clients (two processes) with 20 requests each, then
        # interaction callbacks, which do not count.
        async with aiohttp.ClientSession() as other:
            rest2 = Rest(other, fake)
            for i in range(20):
                assert (await rest.call("GET", "/channels/%s" % cid))[0] == 200
                assert (await rest2.call("GET", "/channels/%s" % cid))[0] == 200
        for i in range(5):
            await rest.call("POST", "/interactions/%d/tok/callback" % i, {"type": 5}, auth=False)
        assert fake.state(rest_log=False)["rest"]["global_sliding"]["max"] == 40
        # 10 more fill the window: the 51st within a second is refused,
        # however the fixed windows of the other modes would fall.
        codes = [(await rest.call("GET", "/channels/%s" % cid))[0] for _ in range(11)]
        assert codes == [200] * 10 + [429]
        await asyncio.sleep(1.1)
        assert (await rest.call("GET", "/channels/%s" % cid))[0] == 200
    run(session_and(fake, body))
    sl = fake.state(rest_log=False)["rest"]["global_sliding"]
    # The refused request arrived too, so the window held 51.
    assert sl["max"] == 51 and sl["window_s"] == 1.0 and sl["max_at"]
    fake.post("/_fake/reset_logs")
    assert fake.state(rest_log=False)["rest"]["global_sliding"]["max"] == 0
    fake.reset_violations()


def test_enforce_nonce_answers_a_repeat_with_the_first_message(fake):
    """With enforce_nonce, a second message with the same nonce is not
    posted: Discord answers with the first one (a bot that handles an event
    twice replies once); without it, both are posted."""
    cid = channel_ids(fake)[0]

    async def body(http, rest):
        m1 = (await rest.call("POST", "/channels/%s/messages" % cid,
                              {"content": "one", "nonce": "n-1", "enforce_nonce": True}))[2]
        m2 = (await rest.call("POST", "/channels/%s/messages" % cid,
                              {"content": "one again", "nonce": "n-1", "enforce_nonce": True}))[2]
        assert m2["id"] == m1["id"] and m2["content"] == "one"
        m3 = (await rest.call("POST", "/channels/%s/messages" % cid,
                              {"content": "two", "nonce": "n-1"}))[2]
        assert m3["id"] != m1["id"]
    run(session_and(fake, body))
    contents = [m["content"] for m in fake.messages(channel_id=cid)]
    assert contents.count("one") == 1 and "one again" not in contents and "two" in contents
    assert fake.state(rest_log=False)["rest"]["stats"]["nonce_repeats"] == 1
