#!/usr/bin/python3
"""Fake Discord (REST API v10 + Gateway v10) for souk's tests, on loopback.

Run with Debian's Python (it needs python3-aiohttp and python3-jsonschema):

    /usr/bin/python3 tests/fakes/fake_discord.py --port 0 --port-file PATH \
        [--heartbeat-interval MS] [--shards N] [--max-concurrency M] \
        [--token TOKEN] [--application-id ID] [--guilds N] ...

With --port 0 it binds 127.0.0.1 on a free port and writes the number to
--port-file once it is listening.  Logs go to stderr.  One aiohttp app on one
port serves:

* REST under /api/v10/...      (Discord's routes, auth, rate limits, OpenAPI
                                validation of every request body)
* the Gateway at /gateway and /resume (READY's resume_gateway_url)
* the control API under /_fake/... (JSON over HTTP, for tests)

A 429 is "avoidable" (violation avoidable_429) when, before the request
arrived, the fake had already answered for the same bucket and major
parameter with X-RateLimit-Remaining: 0 (or a 429) whose reset had not
passed: on the same keep-alive connection that answer was necessarily read
first; on another connection the request must arrive avoidable_grace_ms
(default 20) after it.  A global 429 is avoidable when sent while an earlier
global 429's retry_after was running.  Other 429s count as unavoidable.

Everything the fake believes is a client mistake is recorded as a
*violation* ({"name": ..., "at": ..., ...}); tests fail on any unexpected
violation.  Names: user_agent, unknown_route, api_version, content_type,
invalid_json, invalid_body (schema or documented-limit failure; carries route,
pointer, message), empty_message, avoidable_429, interaction_timeout,
interaction_already_acknowledged, unknown_interaction, followup_before_response,
bad_query, decode_error, payload_too_big, gateway_rate_limit, unknown_opcode,
invalid_payload, not_authenticated, already_authenticated, identify_concurrency,
session_start_limit, heartbeat_timeout, heartbeat_seq_ahead,
heartbeat_request_ignored, invalid_seq.

Control API (all bodies and answers are JSON; every POST answers {"ok": true,
...} or an {"error": ...} with status 4xx):

  GET  /_fake/state[?rest_log=0&since=N]  everything recorded (see below)
  GET  /_fake/violations                 {"violations": [...]}
  POST /_fake/reset_violations           clear violations (answers the old list)
  POST /_fake/reset_logs                 clear request/heartbeat/identify logs
  GET  /_fake/config                     current knobs
  POST /_fake/config {knob: value,...}   change knobs: heartbeat_interval_ms,
       heartbeat_grace_ms, shards, min_shards, max_concurrency,
       identify_window_s, privileged_intents (list of GUILD_MEMBERS,
       GUILD_PRESENCES, MESSAGE_CONTENT that are enabled for the app),
       gateway_send_limit, gateway_send_window_s, max_payload_bytes,
       session_timeout_s, interaction_deadline_s, followup_valid_s,
       avoidable_grace_ms, global_limit, global_window_s, global_window_mode
       ("first" | "aligned" | "sliding"), global_window_phase_s, acks_default,
       echo_events, session_start_total, session_start_remaining,
       heartbeat_request_deadline_ms, replay_buffer_max
  POST /_fake/rest/script {"method": "POST"|"*", "path": REGEX,
       "responses": [{"status": 429, "scope": "user"|"shared"|"global",
       "retry_after": 0.5} | {"status": 503, "body": ..., "headers": {...}} |
       {"delay_ms": 1500} (slow, then the real answer) |
       {"status": 200, "delay_ms": 300, "body": {...}} | {"drop": true}
       (close the TCP connection without answering)]}
       Queued responses are used in order by the next requests whose method
       matches and whose path (after /api/v10, without the query) matches
       REGEX with re.search.  Scripted 429s carry Discord's headers and body
       and block that bucket (or everything, for scope global) for
       retry_after, so a client retrying early gets real 429s.
  POST /_fake/rest/script/clear          drop all queued scripts
  POST /_fake/rest/limits {"route": "POST /channels/{channel_id}/messages",
       "limit": 5, "window_s": 5}        change one route family's limit
  GET  /_fake/rest/requests?since=N      REST request log from index N
  GET  /_fake/messages[?channel_id=ID]   messages the fake holds
  POST /_fake/guilds {"name":..., "channels": N, "members": N, "shard": S?}
       add a guild (its id on shard S by (id >> 22) % shards; without S,
       guilds go round the shards in turn, as --guilds N does)
  POST /_fake/gateway/dispatch {"t": "EVENT", "d": {...}, "shard": 0 |
       "session_id": ID, "force": false}  push a dispatch (buffered for
       RESUME replay while the session is disconnected; dropped when the
       session's intents do not cover it unless force)
  POST /_fake/gateway/message {"channel_id", "content", "author_id"?,
       "mention_bot"?}                   a realistic MESSAGE_CREATE
  POST /_fake/gateway/interaction {"name", "options"?, "channel_id"?,
       "guild_id"?, "user_id"?, "type"?, "data"?}  a realistic
       INTERACTION_CREATE; answers {"id", "token", "seq"}
  POST /_fake/gateway/reconnect {target}        send op 7
  POST /_fake/gateway/invalid_session {target, "resumable": bool}  op 9
  POST /_fake/gateway/close {target, "code": 4000, "reason"?,
       "invalidate"?: bool}              close with a code
  POST /_fake/gateway/drop {target}      drop TCP, no close frame
  POST /_fake/gateway/acks {target | "all": true, "enabled": bool}
  POST /_fake/gateway/heartbeat_request {target}  op 1 from the server
  POST /_fake/gateway/split {target | "default": true, "count": N|null,
       "parts": 2, "mode": "messages"|"fragments"}  split the next N (null:
       all) payloads into several WebSocket messages (zlib-stream only) or
       WebSocket fragments (continuation frames)
  POST /_fake/gateway/expire_session {target}   session can no longer resume
  POST /_fake/gateway/blast {"shard": 0, "count": 10000, "template":
       "MESSAGE_CREATE", "guilds": 5, "channels_per_guild": 10,
       "members_per_guild": 100, "seed": 1, "batch": 1, "wait": false,
       "shard_formula": false}
       (batch N > 1: N frames per socket write; shard_formula: the new
       guilds get ids that (id >> 22) % num_shards puts on that shard;
       the answer's first_channel_id is a text channel of the first)
       sends GUILD_CREATEs then `count` realistic MESSAGE_CREATEs as fast as
       the connection drains; answers {"id"} (or the result when wait)
  GET  /_fake/gateway/blast/{id}         {"sent", "done", "elapsed_s", ...}
  GET  /_fake/wait?for=identify|resume|ready|heartbeat&count=N&timeout=S
       long-poll until that many have been recorded

  {target} is one of {"conn": ID}, {"session_id": ID}, {"shard": N}; with
  none, the newest open connection is used.

GET /_fake/state answers {"port", "config", "session_start_limit",
"connections": [{id, path, query, compress, opened_at, closed_at,
close_code, closed_by, session_id, shard, identified, resumed,
first_heartbeat_delay_ms, heartbeats, payloads_in, payloads_out, bytes_out}],
"sessions": [{session_id, shard, intents, seq, connected, conn, invalid,
invalid_reason, buffered, delivered: [{seq, t, conn, replay, at}],
delivered_count}], "identifies": [...], "resumes": [...], "heartbeats":
[{conn, session_id, shard, at, since_hello_ms, since_prev_ms, d, acked,
requested}], "heartbeat_requests": [...], "gateway_received": [...],
"rest": {"requests": [{i, at, method, path, query, headers, body, status,
bucket, major, remaining, scripted, rate_limited, avoidable}],
"rate_limited": [...], "stats": {avoidable_429, unavoidable_429,
scripted_429, global_429, invalid_requests, nonce_repeats}, "global_sliding": {window_s,
max, max_at}: the most requests bound by the global limit (interaction
endpoints excluded) that arrived within one window sliding with every
arrival, from every client}, "commands", "interactions",
"blasts", "violations"}.  Times are Unix seconds ("at") and the fake's
monotonic clock ("mono").
"""

import argparse
import asyncio
import base64
import collections
import datetime
import hashlib
import json
import logging
import math
import os
import random
import re
import signal
import sys
import time
import warnings
import zlib

from aiohttp import WSMsgType, web

try:  # Debian's python3-zstandard, for compress=zstd-stream
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None

warnings.filterwarnings("ignore", category=DeprecationWarning)
from jsonschema import Draft202012Validator  # noqa: E402

try:  # jsonschema 4.10 (Debian 12)
    from jsonschema import RefResolver  # noqa: E402
except ImportError:  # pragma: no cover
    RefResolver = None

LOG = logging.getLogger("fake_discord")
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SPEC = os.path.join(HERE, "..", "fixtures", "discord", "openapi.json")

DISCORD_EPOCH = 1420070400000
API_PREFIX = "/api/v10"
ZLIB_SUFFIX = b"\x00\x00\xff\xff"
UA_RE = re.compile(r"^DiscordBot \((\S+), ([^)\s][^)]*)\)(.*)$")

# Gateway intents (docs: events/gateway#list-of-intents)
INTENT_BITS = {
    "GUILDS": 0, "GUILD_MEMBERS": 1, "GUILD_MODERATION": 2,
    "GUILD_EXPRESSIONS": 3, "GUILD_INTEGRATIONS": 4, "GUILD_WEBHOOKS": 5,
    "GUILD_INVITES": 6, "GUILD_VOICE_STATES": 7, "GUILD_PRESENCES": 8,
    "GUILD_MESSAGES": 9, "GUILD_MESSAGE_REACTIONS": 10,
    "GUILD_MESSAGE_TYPING": 11, "DIRECT_MESSAGES": 12,
    "DIRECT_MESSAGE_REACTIONS": 13, "DIRECT_MESSAGE_TYPING": 14,
    "MESSAGE_CONTENT": 15, "GUILD_SCHEDULED_EVENTS": 16,
    "AUTO_MODERATION_CONFIGURATION": 20, "AUTO_MODERATION_EXECUTION": 21,
    "GUILD_MESSAGE_POLLS": 24, "DIRECT_MESSAGE_POLLS": 25,
}
VALID_INTENTS = sum(1 << b for b in INTENT_BITS.values())
PRIVILEGED = {"GUILD_MEMBERS": 1 << 1, "GUILD_PRESENCES": 1 << 8,
              "MESSAGE_CONTENT": 1 << 15}
# application flags *_LIMITED (unverified app with the intent enabled)
PRIVILEGED_APP_FLAG = {"GUILD_PRESENCES": 1 << 13, "GUILD_MEMBERS": 1 << 15,
                       "MESSAGE_CONTENT": 1 << 19}

_G = lambda n: 1 << INTENT_BITS[n]  # noqa: E731
# event -> (intent when in a guild, intent when in a DM); None = always sent
EVENT_INTENTS = {}
for _t in ("GUILD_CREATE GUILD_UPDATE GUILD_DELETE GUILD_ROLE_CREATE "
           "GUILD_ROLE_UPDATE GUILD_ROLE_DELETE CHANNEL_CREATE CHANNEL_UPDATE "
           "CHANNEL_DELETE THREAD_CREATE THREAD_UPDATE THREAD_DELETE "
           "THREAD_LIST_SYNC THREAD_MEMBER_UPDATE STAGE_INSTANCE_CREATE "
           "STAGE_INSTANCE_UPDATE STAGE_INSTANCE_DELETE").split():
    EVENT_INTENTS[_t] = (_G("GUILDS"), _G("GUILDS"))
EVENT_INTENTS["CHANNEL_PINS_UPDATE"] = (_G("GUILDS"), _G("DIRECT_MESSAGES"))
for _t in ("GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE"):
    EVENT_INTENTS[_t] = (_G("GUILD_MEMBERS"), _G("GUILD_MEMBERS"))
for _t in ("GUILD_AUDIT_LOG_ENTRY_CREATE", "GUILD_BAN_ADD", "GUILD_BAN_REMOVE"):
    EVENT_INTENTS[_t] = (_G("GUILD_MODERATION"), _G("GUILD_MODERATION"))
for _t in ("GUILD_EMOJIS_UPDATE", "GUILD_STICKERS_UPDATE"):
    EVENT_INTENTS[_t] = (_G("GUILD_EXPRESSIONS"), _G("GUILD_EXPRESSIONS"))
for _t in ("GUILD_INTEGRATIONS_UPDATE", "INTEGRATION_CREATE",
           "INTEGRATION_UPDATE", "INTEGRATION_DELETE"):
    EVENT_INTENTS[_t] = (_G("GUILD_INTEGRATIONS"), _G("GUILD_INTEGRATIONS"))
EVENT_INTENTS["WEBHOOKS_UPDATE"] = (_G("GUILD_WEBHOOKS"), _G("GUILD_WEBHOOKS"))
for _t in ("INVITE_CREATE", "INVITE_DELETE"):
    EVENT_INTENTS[_t] = (_G("GUILD_INVITES"), _G("GUILD_INVITES"))
EVENT_INTENTS["VOICE_STATE_UPDATE"] = (_G("GUILD_VOICE_STATES"),) * 2
EVENT_INTENTS["PRESENCE_UPDATE"] = (_G("GUILD_PRESENCES"),) * 2
for _t in ("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE",
           "MESSAGE_DELETE_BULK"):
    EVENT_INTENTS[_t] = (_G("GUILD_MESSAGES"), _G("DIRECT_MESSAGES"))
for _t in ("MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE",
           "MESSAGE_REACTION_REMOVE_ALL", "MESSAGE_REACTION_REMOVE_EMOJI"):
    EVENT_INTENTS[_t] = (_G("GUILD_MESSAGE_REACTIONS"),
                         _G("DIRECT_MESSAGE_REACTIONS"))
EVENT_INTENTS["TYPING_START"] = (_G("GUILD_MESSAGE_TYPING"),
                                 _G("DIRECT_MESSAGE_TYPING"))
for _t in ("MESSAGE_POLL_VOTE_ADD", "MESSAGE_POLL_VOTE_REMOVE"):
    EVENT_INTENTS[_t] = (_G("GUILD_MESSAGE_POLLS"), _G("DIRECT_MESSAGE_POLLS"))

CLOSE_REASONS = {
    4000: "Unknown error.", 4001: "Unknown opcode.", 4002: "Decode error.",
    4003: "Not authenticated.", 4004: "Authentication failed.",
    4005: "Already authenticated.", 4007: "Invalid seq.",
    4008: "Rate limited.", 4009: "Session timed out.",
    4010: "Invalid shard.", 4011: "Sharding required.",
    4012: "Invalid API version.", 4013: "Invalid intent(s).",
    4014: "Disallowed intent(s).",
}
# closes after which the session can no longer be resumed
NON_RESUMABLE_CLOSES = {4004, 4007, 4010, 4011, 4012, 4013, 4014}

WORDS = ("the auction for hyperion ended at 1.2b coins and nobody noticed "
         "anyone selling enchanted diamonds bazaar flip margin is thin today "
         "gg wp what is the price of a necron chestplate right now lol "
         "crafting profit on summoning eyes dropped again check the ah").split()
NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
         "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert",
         "sybil", "trent", "victor", "walter", "zoe"]


# How long enforce_nonce remembers a nonce ("the past few minutes").
NONCE_WINDOW_S = 300.0


def now_unix():
    return time.time()


def mono():
    return time.monotonic()


def iso(ts=None):
    ts = now_unix() if ts is None else ts
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(
        timespec="microseconds")


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def opaque_hash(s, n=32):
    return hashlib.md5(("souk-fake/" + s).encode()).hexdigest()[:n]


class Snowflakes:
    """Discord snowflakes: ms since 2015 << 22 | worker << 17 | pid << 12 | n."""

    def __init__(self):
        self.last = 0
        self.inc = 0

    def at(self, ms):
        self.inc = (self.inc + 1) & 0xFFF
        v = ((int(ms) - DISCORD_EPOCH) << 22) | (1 << 17) | \
            ((os.getpid() & 0x1F) << 12) | self.inc
        return v

    def next(self):
        v = self.at(now_unix() * 1000)
        if v <= self.last:
            v = self.last + 1
        self.last = v
        return str(v)

    def for_shard(self, shard, num):
        """A new id that Discord's shard formula, (id >> 22) % num, puts on
        `shard`: the next id with its timestamp moved up to the next
        millisecond that lands there (at most num - 1 ms ahead)."""
        v = int(self.next())
        if num > 1:
            ts = v >> 22
            step = (shard - ts) % num
            if step:
                v = ((ts + step) << 22) | (v & 0x3FFFFF)
                self.last = max(self.last, v)
        return str(v)


# --------------------------------------------------------------------------
# OpenAPI validation
# --------------------------------------------------------------------------

class SpecValidator:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.spec = json.load(f)
        # The spec types snowflakes as strings only; Discord (and its docs'
        # own examples, e.g. attachments [{"id": 0, ...}]) accept integers too.
        sf = self.spec["components"]["schemas"].get("SnowflakeType")
        if sf is not None:
            self.spec["components"]["schemas"]["SnowflakeType"] = {
                "anyOf": [sf, {"type": "integer", "minimum": 0}]}
        self.resolver = RefResolver.from_schema(self.spec) if RefResolver else None
        self.templates = []
        for tpl, item in self.spec["paths"].items():
            parts = re.split(r"(\{[^}]+\})", tpl)
            rx = "".join("[^/]+" if p.startswith("{") else re.escape(p)
                         for p in parts)
            nparams = sum(1 for p in parts if p.startswith("{"))
            self.templates.append((nparams, tpl, re.compile("^" + rx + "$"), item))
        self.templates.sort(key=lambda x: x[0])  # literal segments win
        self.cache = {}

    def find(self, method, path):
        for _, tpl, rx, item in self.templates:
            if rx.match(path) and method.lower() in item:
                return tpl, item[method.lower()]
        return None, None

    def validator_for(self, tpl, method, ctype):
        key = (tpl, method, ctype)
        if key not in self.cache:
            op = self.spec["paths"][tpl][method.lower()]
            rb = op.get("requestBody") or {}
            content = rb.get("content") or {}
            schema = (content.get(ctype) or content.get("application/json") or {}).get("schema")
            if schema is None:
                self.cache[key] = None
            else:
                kw = {"resolver": self.resolver} if self.resolver else {}
                self.cache[key] = Draft202012Validator(schema, **kw)
        return self.cache[key]

    @staticmethod
    def most_specific(err):
        """For anyOf/oneOf failures, the deepest leaf error (by instance path)
        is the one that explains the mismatch; a bare 'type' error (e.g. of a
        {"type": "null"} branch) loses ties."""
        leaves = []

        def walk(e):
            if e.context:
                for c in e.context:
                    walk(c)
            else:
                leaves.append(e)
        walk(err)
        if not leaves:
            return err
        return max(leaves, key=lambda e: (len(e.absolute_path),
                                          e.validator not in ("type", "const", "enum", "required")))

    def validate(self, method, path, body, ctype="application/json"):
        """-> (template or None, [(path_list, validator, message)])"""
        tpl, op = self.find(method, path)
        if tpl is None:
            return None, []
        v = self.validator_for(tpl, method, ctype)
        if v is None:
            return tpl, []
        out = []
        for err in v.iter_errors(body):
            best = self.most_specific(err)
            msg = best.message
            if len(msg) > 300:
                msg = msg[:300] + "..."
            p = list(best.absolute_path)
            if best.validator == "required":
                m = re.match(r"'([^']+)' is a required property", best.message)
                if m:
                    p.append(m.group(1))
            out.append((p, best.validator, best.validator_value, msg))
        return tpl, out


def discord_error_code(validator, value):
    if validator in ("maxLength", "maxItems"):
        return "BASE_TYPE_MAX_LENGTH", "Must be %s or fewer in length." % value
    if validator in ("minLength", "minItems"):
        return "BASE_TYPE_MIN_LENGTH", "Must be %s or more in length." % value
    if validator == "required":
        return "BASE_TYPE_REQUIRED", "This field is required"
    if validator == "enum":
        return "BASE_TYPE_CHOICES", "Value must be one of %s." % (value,)
    if validator == "type":
        t = value if isinstance(value, str) else [x for x in value if x != "null"][0]
        return {"string": ("BASE_TYPE_STRING", "Must be a string."),
                "integer": ("NUMBER_TYPE_COERCE", "Value is not int."),
                "boolean": ("BOOLEAN_TYPE_CONVERT", "Must be either true or false."),
                "array": ("LIST_TYPE_CONVERT", "Must be an array."),
                "object": ("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"),
                }.get(t, ("MODEL_TYPE_CONVERT", "Invalid Form Body"))
    if validator in ("maximum", "minimum"):
        return "NUMBER_TYPE_MAX" if validator == "maximum" else "NUMBER_TYPE_MIN", \
            "Int value should be %s %s." % ("less than or equal to" if validator == "maximum"
                                            else "greater than or equal to", value)
    return "MODEL_TYPE_CONVERT", "Invalid Form Body"


def errors_tree(items):
    """[(path_list, code, message)] -> Discord's nested "errors" object."""
    tree = {}
    for path, code, message in items:
        node = tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return tree


def embed_chars(e):
    n = len(e.get("title") or "") + len(e.get("description") or "")
    for f in e.get("fields") or []:
        if isinstance(f, dict):
            n += len(f.get("name") or "") + len(f.get("value") or "")
    if isinstance(e.get("footer"), dict):
        n += len(e["footer"].get("text") or "")
    if isinstance(e.get("author"), dict):
        n += len(e["author"].get("name") or "")
    return n


def check_message_limits(body, prefix, creating):
    """Documented limits stricter than the spec.  -> [(path, code, message)],
    empty_message flag."""
    errs = []
    if not isinstance(body, dict):
        return errs, False

    def lim(path, value, n):
        if isinstance(value, (str, list)) and len(value) > n:
            errs.append((prefix + path, "BASE_TYPE_MAX_LENGTH",
                         "Must be %d or fewer in length." % n))

    lim(["content"], body.get("content"), 2000)
    embeds = body.get("embeds")
    if isinstance(embeds, list):
        lim(["embeds"], embeds, 10)
        total = 0
        for i, e in enumerate(embeds):
            if not isinstance(e, dict):
                continue
            total += embed_chars(e)
            lim(["embeds", i, "title"], e.get("title"), 256)
            lim(["embeds", i, "description"], e.get("description"), 4096)
            fields = e.get("fields")
            if isinstance(fields, list):
                lim(["embeds", i, "fields"], fields, 25)
                for j, f in enumerate(fields):
                    if not isinstance(f, dict):
                        continue
                    for k, n in (("name", 256), ("value", 1024)):
                        v = f.get(k)
                        if v is None or v == "":
                            errs.append((prefix + ["embeds", i, "fields", j, k],
                                         "BASE_TYPE_REQUIRED", "This field is required"))
                        lim(["embeds", i, "fields", j, k], v, n)
            if isinstance(e.get("footer"), dict):
                lim(["embeds", i, "footer", "text"], e["footer"].get("text"), 2048)
            if isinstance(e.get("author"), dict):
                lim(["embeds", i, "author", "name"], e["author"].get("name"), 256)
        if total > 6000:
            errs.append((prefix + ["embeds"], "MAX_EMBED_SIZE_EXCEEDED",
                         "Embed size exceeds maximum size of 6000"))
    comps = body.get("components")
    flags = body.get("flags") or 0
    if isinstance(comps, list) and not (isinstance(flags, int) and flags & (1 << 15)):
        lim(["components"], comps, 5)
        for i, row in enumerate(comps):
            if not isinstance(row, dict):
                continue
            if row.get("type") != 1:
                errs.append((prefix + ["components", i, "type"], "BASE_TYPE_CHOICES",
                             "Top-level components must be action rows (type 1) without IS_COMPONENTS_V2."))
                continue
            kids = row.get("components") or []
            if isinstance(kids, list):
                if any(isinstance(k, dict) and k.get("type") in (3, 5, 6, 7, 8) for k in kids):
                    if len(kids) > 1:
                        errs.append((prefix + ["components", i, "components"],
                                     "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                                     "The specified component exceeds the maximum width"))
                else:
                    lim(["components", i, "components"], kids, 5)
    am = body.get("allowed_mentions")
    if am is not None:
        if not isinstance(am, dict):
            errs.append((prefix + ["allowed_mentions"], "DICT_TYPE_CONVERT",
                         "Only dictionaries may be used in a DictType"))
        else:
            parse = am.get("parse")
            if parse is not None:
                if not isinstance(parse, list):
                    errs.append((prefix + ["allowed_mentions", "parse"], "LIST_TYPE_CONVERT",
                                 "Must be an array."))
                    parse = []
                for j, p in enumerate(parse):
                    if p not in ("roles", "users", "everyone"):
                        errs.append((prefix + ["allowed_mentions", "parse", j], "BASE_TYPE_CHOICES",
                                     "Value must be one of {'roles', 'users', 'everyone'}."))
                if len(set(map(str, parse))) != len(parse):
                    errs.append((prefix + ["allowed_mentions", "parse"], "SET_TYPE_ALREADY_CONTAINS_VALUE",
                                 "The set already contains this value."))
            else:
                parse = []
            for k in ("users", "roles"):
                v = am.get(k)
                if v is None:
                    continue
                if not isinstance(v, list):
                    errs.append((prefix + ["allowed_mentions", k], "LIST_TYPE_CONVERT", "Must be an array."))
                    continue
                lim(["allowed_mentions", k], v, 100)
                for j, x in enumerate(v):
                    if not ((isinstance(x, str) and x.isdigit()) or
                            (isinstance(x, int) and not isinstance(x, bool) and x >= 0)):
                        errs.append((prefix + ["allowed_mentions", k, j], "NUMBER_TYPE_COERCE",
                                     "Value \"%s\" is not snowflake." % (x,)))
                if k in parse and v:
                    errs.append((prefix + ["allowed_mentions"], "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                                 'parse:["%s"] and %s: [ids...] are mutually exclusive.' % (k, k)))
            if "replied_user" in am and not isinstance(am["replied_user"], (bool, type(None))):
                errs.append((prefix + ["allowed_mentions", "replied_user"], "BOOLEAN_TYPE_CONVERT",
                             "Must be either true or false."))
    empty = False
    if creating:
        empty = not any(body.get(k) for k in ("content", "embeds", "sticker_ids",
                                               "components", "poll", "attachments", "files"))
    return errs, empty


# --------------------------------------------------------------------------
# REST routes
# --------------------------------------------------------------------------

class Route:
    def __init__(self, method, tpl, handler, limit, window, auth=True,
                 global_exempt=False, family=None):
        self.method = method
        self.tpl = tpl
        self.handler = handler
        self.limit = limit
        self.window = window
        self.auth = auth
        self.global_exempt = global_exempt
        self.family = family or (method + " " + tpl)
        parts = re.split(r"(\{[^}]+\})", tpl)
        self.rx = re.compile("^" + "".join(
            "(?P<%s>[^/]+)" % p[1:-1] if p.startswith("{") else re.escape(p)
            for p in parts) + "$")
        self.bucket_hash = opaque_hash(self.family)


def R(*a, **kw):
    return Route(*a, **kw)


WEBHOOK_MSG = "/webhooks/{webhook_id}/{webhook_token}/messages/"
ROUTES = [
    R("GET", "/gateway", "get_gateway", 5, 5.0, auth=False),
    R("GET", "/gateway/bot", "get_gateway_bot", 5, 5.0),
    R("GET", "/users/@me", "get_me", 5, 5.0),
    R("GET", "/users/{user_id}", "get_user", 5, 5.0),
    R("GET", "/applications/@me", "get_application", 5, 5.0),
    R("GET", "/oauth2/applications/@me", "get_oauth_application", 5, 5.0),
    R("GET", "/guilds/{guild_id}", "get_guild", 5, 5.0),
    R("GET", "/channels/{channel_id}", "get_channel", 5, 5.0),
    # The rename limit (2 per 10 minutes) is not in the bucket: see rename_limited.
    R("PATCH", "/channels/{channel_id}", "patch_channel", 5, 5.0),
    R("POST", "/channels/{channel_id}/messages", "post_message", 5, 5.0),
    R("POST", "/channels/{channel_id}/typing", "typing", 5, 5.0),
    R("GET", "/channels/{channel_id}/messages/{message_id}", "get_message", 5, 5.0),
    R("PATCH", "/channels/{channel_id}/messages/{message_id}", "patch_message", 5, 5.0),
    R("DELETE", "/channels/{channel_id}/messages/{message_id}", "delete_message", 5, 1.0),
    R("GET", "/applications/{application_id}/commands", "get_commands", 5, 5.0),
    R("PUT", "/applications/{application_id}/commands", "put_commands", 2, 20.0),
    R("POST", "/applications/{application_id}/commands", "post_command", 5, 20.0),
    R("GET", "/applications/{application_id}/guilds/{guild_id}/commands", "get_commands", 5, 5.0),
    R("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", "put_commands", 2, 20.0),
    R("POST", "/applications/{application_id}/guilds/{guild_id}/commands", "post_command", 5, 20.0),
    R("POST", "/interactions/{interaction_id}/{interaction_token}/callback",
      "interaction_callback", 5, 5.0, auth=False, global_exempt=True),
    R("POST", "/webhooks/{webhook_id}/{webhook_token}", "webhook_execute", 5, 2.0, auth=False),
    R("GET", WEBHOOK_MSG + "@original", "webhook_get_message", 5, 5.0, auth=False,
      family="GET " + WEBHOOK_MSG + "{message_id}"),
    R("PATCH", WEBHOOK_MSG + "@original", "webhook_patch_message", 5, 5.0, auth=False,
      family="PATCH " + WEBHOOK_MSG + "{message_id}"),
    R("DELETE", WEBHOOK_MSG + "@original", "webhook_delete_message", 5, 5.0, auth=False,
      family="DELETE " + WEBHOOK_MSG + "{message_id}"),
    R("GET", WEBHOOK_MSG + "{message_id}", "webhook_get_message", 5, 5.0, auth=False),
    R("PATCH", WEBHOOK_MSG + "{message_id}", "webhook_patch_message", 5, 5.0, auth=False),
    R("DELETE", WEBHOOK_MSG + "{message_id}", "webhook_delete_message", 5, 5.0, auth=False),
]
# What modules do on their own: DMs and a guild's bans.
ROUTES += [
    R("POST", "/users/@me/channels", "create_dm", 5, 5.0),
    R("GET", "/guilds/{guild_id}/bans", "get_bans", 10, 10.0),
]
# Discord's hidden limit on renaming a channel, and its presence limit.
RENAME_LIMIT, RENAME_WINDOW_S = 2, 600.0
PRESENCE_LIMIT, PRESENCE_WINDOW_S = 5, 60.0
BAN_MEMBERS, ADMINISTRATOR = 1 << 2, 1 << 3

MESSAGE_BODY_ROUTES = {"post_message": True, "patch_message": False,
                       "webhook_execute": True, "webhook_patch_message": False}


class ApiError(Exception):
    def __init__(self, status, body, violation=None):
        super().__init__(body)
        self.status = status
        self.body = body
        self.violation = violation


def api_error(status, message, code):
    return ApiError(status, {"message": message, "code": code})


class Bucket:
    __slots__ = ("count", "reset_at")

    def __init__(self):
        self.count = 0
        self.reset_at = 0.0


# --------------------------------------------------------------------------
# Gateway objects
# --------------------------------------------------------------------------

class Conn:
    _ids = 0

    def __init__(self, fake, request, ws, path, query):
        Conn._ids += 1
        self.id = Conn._ids
        self.fake = fake
        self.request = request
        self.ws = ws
        self.path = path
        self.query = query
        self.compress_mode = query.get("compress")
        self.compress = self.compress_mode in ("zlib-stream", "zstd-stream")
        self.zc = self._compressor(fake) if self.compress else None
        self.send_lock = asyncio.Lock()
        self.opened_at = now_unix()
        self.opened_mono = mono()
        self.closed_at = None
        self.close_code = None
        self.closed_by = None
        self.live = True
        self.session = None
        self.identified = False
        self.resumed = False
        self.hello_mono = None
        self.last_hb_mono = None
        self.first_hb_delay_ms = None
        self.heartbeats = 0
        self.acks = fake.cfg["acks_default"]
        self.hb_requested_mono = None
        self.win_start = mono()
        self.win_count = 0
        self.payloads_in = 0
        self.payloads_out = 0
        self.bytes_out = 0
        # While a blast batches, whole frames collect here and go out in one
        # transport write (see run_blast).
        self.cork = None
        self.split_count = fake.split_default.get("count", 0)
        self.split_parts = fake.split_default.get("parts", 2)
        self.split_mode = fake.split_default.get("mode", "messages")
        self.watchdog = None
        self.shard = None
        self.keep_session = False
        self.close_done = asyncio.Event()

    def info(self):
        return {
            "id": self.id, "path": self.path, "query": self.query,
            "compress": self.compress, "compress_mode": self.compress_mode,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at, "close_code": self.close_code,
            "closed_by": self.closed_by, "live": self.live,
            "session_id": self.session.id if self.session else None,
            "shard": self.shard, "identified": self.identified,
            "resumed": self.resumed, "acks": self.acks,
            "first_heartbeat_delay_ms": self.first_hb_delay_ms,
            "heartbeats": self.heartbeats, "payloads_in": self.payloads_in,
            "payloads_out": self.payloads_out, "bytes_out": self.bytes_out,
        }

    def _compressor(self, fake):
        """One compression context for the whole connection, as Discord
        keeps: zlib (every payload ends with a Z_SYNC_FLUSH) or zstd (every
        payload flushed to a block boundary, the frame never ended)."""
        if self.compress_mode == "zstd-stream":
            params = zstandard.ZstdCompressionParameters.from_level(
                fake.cfg["zstd_level"], window_log=fake.cfg["zstd_window_log"])
            return zstandard.ZstdCompressor(compression_params=params).compressobj()
        return zlib.compressobj()

    def _compress(self, raw):
        if self.compress_mode == "zstd-stream":
            return self.zc.compress(raw) + self.zc.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        return self.zc.compress(raw) + self.zc.flush(zlib.Z_SYNC_FLUSH)

    def _split_points(self, data, parts):
        n = len(data)
        parts = max(2, min(parts, n))
        cuts = []
        for i in range(1, parts):
            c = (n * i) // parts
            while c < n and (data[:c].endswith(ZLIB_SUFFIX) or (cuts and c <= cuts[-1])):
                c += 1
            if 0 < c < n:
                cuts.append(c)
        pieces, prev = [], 0
        for c in cuts:
            pieces.append(data[prev:c])
            prev = c
        pieces.append(data[prev:])
        return [p for p in pieces if p]

    async def send_text(self, text):
        """Send one gateway payload (str).  Returns False if the connection is gone."""
        async with self.send_lock:
            if not self.live or self.ws.closed:
                return False
            try:
                split = self.split_count != 0
                if split and self.split_count > 0:
                    self.split_count -= 1
                if self.compress:
                    data = self._compress(text.encode())
                    self.bytes_out += len(data)
                    if self.cork is not None and not split:
                        self.cork.append(self._frame(0x2, data))
                    elif split:
                        pieces = self._split_points(data, self.split_parts)
                        if self.split_mode == "fragments":
                            self._write_fragments(0x2, pieces)
                        else:
                            for p in pieces:
                                await self.ws.send_bytes(p)
                    else:
                        await self.ws.send_bytes(data)
                else:
                    raw = text.encode()
                    self.bytes_out += len(raw)
                    if self.cork is not None and not split:
                        self.cork.append(self._frame(0x1, raw))
                    elif split and self.split_mode == "fragments":
                        self._write_fragments(0x1, self._split_points(raw, self.split_parts))
                    else:
                        await self.ws.send_str(text)
                self.payloads_out += 1
                return True
            except (ConnectionResetError, RuntimeError, OSError) as e:
                LOG.info("conn %d: send failed: %s", self.id, e)
                self.live = False
                return False

    @staticmethod
    def _frame(opcode, payload, fin=True):
        n = len(payload)
        b0 = (0x80 if fin else 0) | opcode
        if n < 126:
            hdr = bytes([b0, n])
        elif n < 65536:
            hdr = bytes([b0, 126]) + n.to_bytes(2, "big")
        else:
            hdr = bytes([b0, 127]) + n.to_bytes(8, "big")
        return hdr + payload

    async def uncork(self):
        """Write the collected frames in one go, then wait for the socket
        to drain as aiohttp's own sends do."""
        async with self.send_lock:
            frames, self.cork = self.cork, []
            if not frames or not self.live:
                return
            tr = self.request.transport
            if tr is None or tr.is_closing():
                self.live = False
                return
            tr.write(b"".join(frames))
        proto = self.request.protocol
        if hasattr(proto, "_drain_helper"):
            try:
                await proto._drain_helper()
            except (ConnectionResetError, RuntimeError, OSError):
                self.live = False

    def _write_fragments(self, opcode, pieces):
        tr = self.request.transport
        if tr is None or tr.is_closing():
            raise ConnectionResetError("transport closed")
        out = bytearray()
        for i, p in enumerate(pieces):
            fin = 0x80 if i == len(pieces) - 1 else 0
            op = opcode if i == 0 else 0x0
            n = len(p)
            if n < 126:
                hdr = bytes([fin | op, n])
            elif n < 65536:
                hdr = bytes([fin | op, 126]) + n.to_bytes(2, "big")
            else:
                hdr = bytes([fin | op, 127]) + n.to_bytes(8, "big")
            out += hdr + p
        tr.write(bytes(out))

    async def send_op(self, op, d):
        return await self.send_text(dumps({"t": None, "s": None, "op": op, "d": d}))

    async def close(self, code, reason=None, by="server"):
        if not self.live:
            return
        self.live = False
        self.close_code = code
        self.closed_by = by
        self.closed_at = now_unix()
        reason = reason or CLOSE_REASONS.get(code, "")
        try:
            async with self.send_lock:
                await self.ws.close(code=code, message=reason.encode())
        except Exception as e:  # noqa: BLE001
            LOG.info("conn %d: close error %s", self.id, e)
        finally:
            self.close_done.set()

    def drop(self):
        self.live = False
        self.closed_by = "server-drop"
        self.closed_at = now_unix()
        tr = self.request.transport
        if tr is not None:
            tr.abort()


class Session:
    def __init__(self, sid, shard, intents, conn, identify, buffer_max):
        self.id = sid
        self.shard = shard
        self.intents = intents
        self.identify = identify
        self.seq = 0
        self.buffer = collections.deque(maxlen=buffer_max)  # (seq, t, text) for RESUME
        self.conn = conn
        self.lock = asyncio.Lock()
        self.created_at = now_unix()
        self.disconnected_mono = None
        self.invalid = False
        self.invalid_reason = None
        self.delivered = []
        self.delivered_count = 0
        self.delivered_by_type = collections.Counter()
        self.ready = False

    def info(self, full=True):
        return {
            "session_id": self.id, "shard": self.shard, "intents": self.intents,
            "seq": self.seq, "connected": bool(self.conn and self.conn.live),
            "conn": self.conn.id if self.conn else None,
            "invalid": self.invalid, "invalid_reason": self.invalid_reason,
            "created_at": self.created_at, "buffered": len(self.buffer),
            "delivered": self.delivered if full else [],
            "delivered_count": self.delivered_count,
            "delivered_by_type": dict(self.delivered_by_type),
        }


# --------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------

class FakeDiscord:
    def __init__(self, args):
        self.args = args
        self.sf = Snowflakes()
        self.rng = random.Random(args.seed)
        self.port = None
        self.started_mono = mono()
        self.spec = SpecValidator(args.spec)
        for r in ROUTES:
            tpl, op = self.spec.find(r.method, r.tpl)
            if tpl is None:
                LOG.warning("route %s %s not in the OpenAPI spec", r.method, r.tpl)
        interval = args.heartbeat_interval
        self.cfg = {
            "heartbeat_interval_ms": interval,
            "heartbeat_grace_ms": args.heartbeat_grace if args.heartbeat_grace is not None
            else max(1000, interval // 10),
            "shards": args.shards,
            "min_shards": args.min_shards if args.min_shards is not None else args.shards,
            "max_concurrency": args.max_concurrency,
            "identify_window_s": args.identify_window,
            "privileged_intents": list(args.privileged_intents),
            "gateway_send_limit": 120,
            "gateway_send_window_s": 60.0,
            "max_payload_bytes": 4096,
            "session_timeout_s": args.session_timeout,
            "interaction_deadline_s": 3.0,
            "followup_valid_s": 900.0,
            "avoidable_grace_ms": args.avoidable_grace_ms,
            "global_limit": 50,
            "global_window_s": 1.0,
            "global_window_mode": args.global_window_mode,
            "zstd_level": args.zstd_level,
            "zstd_window_log": args.zstd_window_log,
            "global_window_phase_s": None,
            "acks_default": True,
            "echo_events": not args.no_echo,
            "heartbeat_request_deadline_ms": 2000,
            "session_start_total": 1000,
            "replay_buffer_max": 200000,
        }
        self.session_start_remaining = 1000
        self.first_identify_mono = None
        self.token = args.token
        # --- identity
        self.app_id = args.application_id
        self.bot_user = {
            "id": self.app_id, "username": "Souk", "avatar": opaque_hash("avatar:bot"),
            "discriminator": "4821", "public_flags": 524288, "flags": 524288, "bot": True,
            "banner": None, "accent_color": None, "global_name": None,
            "avatar_decoration_data": None, "collectibles": None, "banner_color": None,
            "clan": None, "primary_guild": None,
        }
        self.owner = self._make_user("souk-owner", 0)
        self.users = {self.app_id: self.bot_user, self.owner["id"]: self.owner}
        self.guilds = {}
        self.channels = {}
        self.messages = {}
        self.commands_global = []
        self.commands_guild = {}
        self.interactions = {}
        self.typing = []
        self.interaction_tokens = {}
        self.nonces = {}  # (author, nonce) -> (mono, message id), for enforce_nonce
        self.init_actions()
        self.next_guild_shard = 0
        for i in range(args.guilds):
            self.add_guild(name="Souk Test Guild" if i == 0 else "Souk Test Guild %d" % (i + 1),
                           n_channels=3, n_members=4)
        # --- gateway
        self.conns = {}
        self.sessions = {}
        self.identify_last = {}
        self.split_default = {"count": -1 if args.split_frames else 0,
                              "parts": args.split_frames or 2, "mode": args.split_mode}
        self.blasts = {}
        self.blast_on_ready_started = False
        # --- rest
        self.buckets = {}
        self.limit_overrides = {}
        self.adverts = collections.defaultdict(lambda: collections.deque(maxlen=32))
        self.blocks = {}
        self.global_window_start = 0.0
        self.global_count = 0
        self.global_block = None  # (sent_mono, until_mono)
        # Requests bound by the global limit, counted in a window that
        # slides with every arrival (whatever the enforcing mode): the most
        # ever seen in one window and when, across every client.
        self.sliding = collections.deque()
        self.sliding_accepted = collections.deque()
        self.sliding_max = 0
        self.sliding_max_at = None
        self.scripts = []
        # --- logs
        self.violations = []
        self.requests = []
        self.rate_limited = []
        self.rest_stats = collections.Counter()
        self.identifies = []
        self.resumes = []
        self.heartbeats = []
        self.hb_requests = []
        self.gw_received = []
        self.waiters = []

    # ------------------------------------------------------------ helpers
    def violation(self, name, **detail):
        v = {"name": name, "at": now_unix(), "mono": mono()}
        v.update(detail)
        self.violations.append(v)
        LOG.warning("VIOLATION %s %s", name, json.dumps(detail, default=str)[:500])
        return v

    def notify(self):
        for fut in list(self.waiters):
            if not fut.done():
                fut.set_result(True)
        self.waiters.clear()

    def _make_user(self, name, idx):
        uid = self.sf.next()
        u = {"id": uid, "username": name, "avatar": opaque_hash("avatar:" + name),
             "discriminator": "0", "public_flags": 0, "flags": 0, "banner": None,
             "accent_color": None, "global_name": name.capitalize(),
             "avatar_decoration_data": None, "collectibles": None, "banner_color": None,
             "clan": None, "primary_guild": None}
        return u

    def member_obj(self, user, guild, with_user=True):
        m = {"avatar": None, "banner": None, "communication_disabled_until": None,
             "deaf": False, "flags": 0, "joined_at": guild["joined_at"], "mute": False,
             "nick": None, "pending": False, "premium_since": None, "roles": [],
             "unusual_dm_activity_until": None}
        if user["id"] == self.app_id:
            m["roles"] = [guild["bot_role_id"]]
        if with_user:
            m["user"] = user
        return m

    def add_guild(self, name, n_channels=3, n_members=4, guild_id=None, owner=None, shard=None):
        """A new guild.  Its id puts it on `shard` by Discord's formula
        (guild_id >> 22) % shards, with shards the fake's current count;
        without one, guilds go round the shards in turn, so a bot split
        over processes sees them spread as Discord would spread them."""
        if guild_id is None:
            num = max(1, int(self.cfg["shards"]))
            if shard is None:
                shard = self.next_guild_shard % num
                self.next_guild_shard += 1
            gid = self.sf.for_shard(int(shard) % num, num)
        else:
            gid = guild_id
        everyone = {"id": gid, "name": "@everyone", "description": None,
                    "permissions": "2222085186637376", "position": 0, "color": 0,
                    "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                    "hoist": False, "managed": False, "mentionable": False, "icon": None,
                    "unicode_emoji": None, "flags": 0}
        bot_role = dict(everyone, id=self.sf.next(), name="Souk", permissions="2248473465835073",
                        position=1, managed=True, tags={"bot_id": self.app_id})
        g = {
            "id": gid, "name": name, "icon": None, "description": None, "home_header": None,
            "splash": None, "discovery_splash": None, "features": [], "banner": None,
            "owner_id": (owner or self.owner)["id"], "application_id": None, "region": "deprecated",
            "afk_channel_id": None, "afk_timeout": 300, "system_channel_id": None,
            "system_channel_flags": 0, "widget_enabled": False, "widget_channel_id": None,
            "verification_level": 1, "roles": [everyone, bot_role],
            "default_message_notifications": 1, "mfa_level": 0, "explicit_content_filter": 2,
            "max_presences": None, "max_members": 500000, "max_stage_video_channel_users": 50,
            "max_video_channel_users": 25, "vanity_url_code": None, "premium_tier": 0,
            "premium_subscription_count": 0, "preferred_locale": "en-US",
            "rules_channel_id": None, "safety_alerts_channel_id": None,
            "public_updates_channel_id": None, "hub_type": None,
            "premium_progress_bar_enabled": False, "latest_onboarding_question_id": None,
            "nsfw": False, "nsfw_level": 0, "emojis": [], "stickers": [],
            "incidents_data": None, "inventory_settings": None, "embed_enabled": False,
            "embed_channel_id": None,
            # private (not in REST object)
            "joined_at": iso(), "bot_role_id": bot_role["id"],
            "_channels": [], "_members": [],
        }
        self.guilds[gid] = g
        cat = self.add_channel(g, "Text Channels", ctype=4, position=0)
        for i in range(n_channels):
            cname = ["general", "auctions", "bazaar"][i] if i < 3 else "channel-%d" % i
            self.add_channel(g, cname, ctype=0, position=i, parent=cat["id"])
        g["system_channel_id"] = g["_channels"][1] if len(g["_channels"]) > 1 else None
        g["_members"].append(self.app_id)
        g["_members"].append(g["owner_id"])
        for i in range(max(0, n_members - 2)):
            u = self._make_user(NAMES[i % len(NAMES)] + ("" if i < len(NAMES) else str(i)), i)
            self.users[u["id"]] = u
            g["_members"].append(u["id"])
        return g

    def add_channel(self, g, name, ctype=0, position=0, parent=None):
        cid = self.sf.next()
        c = {"id": cid, "type": ctype, "last_message_id": None, "flags": 0,
             "guild_id": g["id"], "name": name, "parent_id": parent,
             "rate_limit_per_user": 0, "topic": None, "position": position,
             "permission_overwrites": [], "nsfw": False}
        if ctype == 4:
            for k in ("last_message_id", "rate_limit_per_user", "topic"):
                c.pop(k)
        self.channels[cid] = c
        g["_channels"].append(cid)
        return c

    def guild_public(self, g):
        return {k: v for k, v in g.items() if not k.startswith("_")
                and k not in ("joined_at", "bot_role_id")}

    def guild_create_payload(self, g, sess, all_members=False):
        d = self.guild_public(g)
        presences_ok = bool(sess.intents & _G("GUILD_PRESENCES"))
        mids = g["_members"] if (all_members or presences_ok) else [self.app_id]
        d.update({
            "joined_at": g["joined_at"], "large": len(g["_members"]) > sess.identify.get("large_threshold", 50),
            "unavailable": False, "member_count": len(g["_members"]),
            "voice_states": [], "members": [self.member_obj(self.users[m], g) for m in mids],
            "channels": [{k: v for k, v in self.channels[c].items() if k != "guild_id"}
                         for c in g["_channels"]],
            "threads": [], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [], "lazy": True,
            "application_command_counts": {}, "activity_instances": [],
            "embedded_activities": [], "version": int(now_unix() * 1000),
        })
        return d

    def shard_of_guild(self, gid, num):
        return (int(gid) >> 22) % max(1, num)

    def gateway_url(self):
        return "ws://127.0.0.1:%d/gateway" % self.port

    def application_obj(self):
        flags = 0
        for name in self.cfg["privileged_intents"]:
            flags |= PRIVILEGED_APP_FLAG.get(name, 0)
        return {
            "id": self.app_id, "name": "Souk", "icon": self.bot_user["avatar"],
            "description": "SkyBlock market bot", "summary": "", "type": None,
            "is_monetized": False, "is_verified": False, "is_discoverable": False,
            "bot_public": True, "bot_require_code_grant": False, "hook": True,
            "verify_key": hashlib.sha256(self.app_id.encode()).hexdigest(),
            "flags": flags, "owner": self.owner, "team": None,
            "bot": self.bot_user, "redirect_uris": [], "interactions_endpoint_url": None,
            "role_connections_verification_url": None, "tags": [],
            "approximate_guild_count": len(self.guilds),
            "approximate_user_install_count": 0, "integration_types_config": {"0": {}},
            "install_params": None, "storefront_available": False,
            "explicit_content_filter": 0, "rpc_origins": [],
        }

    def author_of(self, uid):
        return dict(self.users[uid])

    def make_message(self, channel_id, author_id, body, mtype=0, extra=None):
        ch = self.channels.get(channel_id)
        mid = self.sf.next()
        content = body.get("content") or ""
        mentions = []
        for m in re.findall(r"<@!?(\d+)>", content):
            if m in self.users and all(x["id"] != m for x in mentions):
                mentions.append(self.users[m])
        embeds = []
        for e in body.get("embeds") or []:
            e = {k: v for k, v in e.items() if v is not None}
            e.setdefault("type", "rich")
            if "fields" in e:
                e["fields"] = [dict(f, inline=bool(f.get("inline", False))) for f in e["fields"]]
            e["content_scan_version"] = 2
            embeds.append(e)
        msg = {
            "type": mtype, "content": content, "mentions": mentions,
            "mention_roles": [], "attachments": list(body.get("_attachments") or []),
            "embeds": embeds, "timestamp": iso(), "edited_timestamp": None,
            "flags": int(body.get("flags") or 0), "components": body.get("components") or [],
            "id": mid, "channel_id": channel_id, "author": self.author_of(author_id),
            "pinned": False, "mention_everyone": False, "tts": bool(body.get("tts")),
        }
        if body.get("nonce") is not None:
            msg["nonce"] = body["nonce"]
        if body.get("poll"):
            msg["poll"] = body["poll"]
        ref = body.get("message_reference")
        if isinstance(ref, dict) and ref.get("message_id"):
            msg["type"] = 19
            msg["message_reference"] = {"type": 0, "channel_id": channel_id,
                                        "message_id": ref["message_id"]}
            if ch and ch.get("guild_id"):
                msg["message_reference"]["guild_id"] = ch["guild_id"]
            ref_msg = self.messages.get(ref["message_id"])
            msg["referenced_message"] = ref_msg
        if extra:
            msg.update(extra)
        if ch is not None:
            ch["last_message_id"] = mid
        self.messages[mid] = msg
        return msg

    def with_guild(self, msg):
        """Gateway MESSAGE_* payloads carry guild_id and member."""
        d = dict(msg)
        ch = self.channels.get(msg["channel_id"])
        if ch and ch.get("guild_id"):
            g = self.guilds[ch["guild_id"]]
            d["guild_id"] = g["id"]
            if not msg.get("webhook_id"):
                d["member"] = self.member_obj(self.users.get(msg["author"]["id"], msg["author"]),
                                              g, with_user=False)
        return d

    # ------------------------------------------------------------ gateway routing
    def live_sessions(self):
        return [s for s in self.sessions.values() if not s.invalid]

    def session_for_shard(self, shard):
        cands = [s for s in self.live_sessions() if s.shard[0] == shard]
        return cands[-1] if cands else None

    def session_for_guild(self, gid):
        for s in reversed(self.live_sessions()):
            if gid is None:
                if s.shard[0] == 0:
                    return s
            elif self.shard_of_guild(gid, s.shard[1]) == s.shard[0]:
                return s
        return None

    def intent_allows(self, sess, t, d):
        need = EVENT_INTENTS.get(t)
        if need is None:
            return True
        in_guild = isinstance(d, dict) and d.get("guild_id") is not None
        return bool(sess.intents & (need[0] if in_guild else need[1]))

    def strip_content(self, sess, t, d):
        if t not in ("MESSAGE_CREATE", "MESSAGE_UPDATE") or not isinstance(d, dict):
            return d
        if sess.intents & _G("MESSAGE_CONTENT") or d.get("guild_id") is None:
            return d
        if (d.get("author") or {}).get("id") == self.app_id:
            return d
        if any(m.get("id") == self.app_id for m in d.get("mentions") or []):
            return d
        d = dict(d)
        for k, v in (("content", ""), ("embeds", []), ("attachments", []), ("components", [])):
            if k in d:
                d[k] = v
        if "poll" in d:
            d.pop("poll")
        return d

    async def dispatch(self, sess, t, d, force=False, d_text=None, record=True):
        """Send a dispatch on a session (or buffer it).  -> (seq, delivered)"""
        if not force and not self.intent_allows(sess, t, d):
            return None, False
        if d_text is None:
            d = self.strip_content(sess, t, d)
            d_text = dumps(d)
        async with sess.lock:
            sess.seq += 1
            seq = sess.seq
            text = '{"t":%s,"s":%d,"op":0,"d":%s}' % (dumps(t), seq, d_text)
            sess.buffer.append((seq, t, text))
            delivered = False
            conn = sess.conn
            if conn is not None and conn.live:
                delivered = await conn.send_text(text)
                if delivered:
                    sess.delivered_count += 1
                    sess.delivered_by_type[t] += 1
                    if record:
                        sess.delivered.append({"seq": seq, "t": t, "conn": conn.id,
                                               "replay": False, "at": now_unix()})
        return seq, delivered

    async def echo(self, t, d, guild_id):
        if not self.cfg["echo_events"]:
            return
        sess = self.session_for_guild(guild_id)
        if sess is not None and sess.ready:
            await self.dispatch(sess, t, d)

    def pick_conn(self, body):
        if body.get("conn") is not None:
            return self.conns.get(int(body["conn"]))
        if body.get("session_id"):
            s = self.sessions.get(body["session_id"])
            return s.conn if s else None
        if body.get("shard") is not None:
            s = self.session_for_shard(int(body["shard"]))
            if s and s.conn and s.conn.live:
                return s.conn
            live = [c for c in self.conns.values() if c.live and c.shard == int(body["shard"])]
            return live[-1] if live else None
        live = [c for c in self.conns.values() if c.live]
        return live[-1] if live else None

    def pick_session(self, body):
        if body.get("session_id"):
            return self.sessions.get(body["session_id"])
        if body.get("conn") is not None:
            c = self.conns.get(int(body["conn"]))
            return c.session if c else None
        if body.get("shard") is not None:
            return self.session_for_shard(int(body["shard"]))
        d = body.get("d")
        if isinstance(d, dict) and d.get("guild_id"):
            return self.session_for_guild(d["guild_id"])
        return self.session_for_shard(0)

    # ------------------------------------------------------------ websocket
    async def ws_handler(self, request):
        path = "resume" if request.path.startswith("/resume") else "gateway"
        ws = web.WebSocketResponse(autoping=True, compress=False,
                                   max_msg_size=1 << 22, timeout=2.0)
        await ws.prepare(request)
        query = dict(request.query)
        conn = Conn(self, request, ws, path, query)
        self.conns[conn.id] = conn
        LOG.info("conn %d: open %s %s", conn.id, request.path, request.query_string)
        try:
            v = query.get("v")
            enc = query.get("encoding", "json")
            comp = query.get("compress")
            if v != "10":
                self.violation("bad_query", conn=conn.id, query=query, why="v must be 10")
                await conn.close(4012)
                return ws
            if enc != "json":
                self.violation("bad_query", conn=conn.id, query=query,
                               why="encoding %r not supported by the fake (json only)" % enc)
                await conn.close(4002)
                return ws
            if comp == "zstd-stream" and zstandard is None:
                self.violation("bad_query", conn=conn.id, query=query,
                               why="compress=zstd-stream needs python3-zstandard in the fake")
                await conn.close(4002)
                return ws
            if comp not in (None, "zlib-stream", "zstd-stream"):
                self.violation("bad_query", conn=conn.id, query=query,
                               why="compress %r not supported by the fake" % comp)
                await conn.close(4002)
                return ws
            await conn.send_op(10, {"heartbeat_interval": self.cfg["heartbeat_interval_ms"],
                                    "_trace": ['["gateway-prd-us-east1-c-fk%02d",{"micros":0.0}]'
                                               % (conn.id % 100)]})
            conn.hello_mono = mono()
            conn.watchdog = asyncio.ensure_future(self.heartbeat_watchdog(conn))
            while True:
                msg = await ws.receive()
                if msg.type == WSMsgType.TEXT:
                    await self.on_payload(conn, msg.data)
                    if not conn.live:
                        break
                elif msg.type == WSMsgType.BINARY:
                    self.violation("decode_error", conn=conn.id,
                                   why="binary frame with encoding=json")
                    await conn.close(4002)
                    break
                elif msg.type == WSMsgType.CLOSE:
                    if conn.live:
                        conn.live = False
                        conn.close_code = msg.data
                        conn.closed_by = "client"
                        conn.closed_at = now_unix()
                    break
                else:  # CLOSING (our close() from another task) / CLOSED / ERROR
                    if msg.type == WSMsgType.CLOSING and conn.closed_by == "server":
                        try:
                            await asyncio.wait_for(conn.close_done.wait(), 5.0)
                        except asyncio.TimeoutError:
                            pass
                    break
        except Exception:  # noqa: BLE001
            LOG.exception("conn %d: handler error", conn.id)
        finally:
            if conn.live:
                conn.live = False
                conn.closed_by = conn.closed_by or "client-drop"
                conn.closed_at = now_unix()
            if conn.close_code is None and ws.close_code is not None and conn.closed_by == "client":
                conn.close_code = ws.close_code
            if conn.watchdog:
                conn.watchdog.cancel()
            sess = conn.session
            if sess is not None and sess.conn is conn:
                sess.conn = None
                sess.disconnected_mono = mono()
                if conn.closed_by == "client" and conn.close_code in (1000, 1001):
                    sess.invalid = True
                    sess.invalid_reason = "client closed with %s" % conn.close_code
                elif conn.closed_by == "server" and conn.close_code in NON_RESUMABLE_CLOSES \
                        and not conn.keep_session:
                    if not sess.invalid:
                        sess.invalid = True
                        sess.invalid_reason = "server closed with %s" % conn.close_code
            LOG.info("conn %d: closed by %s code %s", conn.id, conn.closed_by, conn.close_code)
            self.notify()
        return ws

    async def heartbeat_watchdog(self, conn):
        try:
            while conn.live:
                last = conn.last_hb_mono or conn.hello_mono
                deadline = last + (self.cfg["heartbeat_interval_ms"] +
                                   self.cfg["heartbeat_grace_ms"]) / 1000.0
                now = mono()
                if conn.hb_requested_mono is not None:
                    rd = conn.hb_requested_mono + self.cfg["heartbeat_request_deadline_ms"] / 1000.0
                    if now >= rd:
                        self.violation("heartbeat_request_ignored", conn=conn.id,
                                       waited_ms=round((now - conn.hb_requested_mono) * 1000))
                        conn.hb_requested_mono = None
                        continue
                    deadline = min(deadline, rd)
                if now >= deadline:
                    self.violation("heartbeat_timeout", conn=conn.id,
                                   since_last_ms=round((now - last) * 1000),
                                   interval_ms=self.cfg["heartbeat_interval_ms"])
                    await conn.close(4009)
                    return
                await asyncio.sleep(min(deadline - now, 1.0) + 0.005)
        except asyncio.CancelledError:
            pass

    async def on_payload(self, conn, text):
        now = mono()
        conn.payloads_in += 1
        size = len(text.encode())
        if now - conn.win_start >= self.cfg["gateway_send_window_s"]:
            conn.win_start = now
            conn.win_count = 0
        conn.win_count += 1
        if conn.win_count > self.cfg["gateway_send_limit"]:
            self.violation("gateway_rate_limit", conn=conn.id, count=conn.win_count,
                           window_s=self.cfg["gateway_send_window_s"])
            await conn.close(4008)
            return
        if size > self.cfg["max_payload_bytes"]:
            self.violation("payload_too_big", conn=conn.id, size=size)
            await conn.close(4002)
            return
        try:
            p = json.loads(text)
            if not isinstance(p, dict) or "op" not in p:
                raise ValueError("not a gateway payload object")
        except ValueError as e:
            self.violation("decode_error", conn=conn.id, why=str(e)[:200])
            await conn.close(4002)
            return
        op = p.get("op")
        d = p.get("d")
        rec = {"conn": conn.id, "at": now_unix(), "op": op, "size": size}
        if op == 1:
            await self.on_heartbeat(conn, d)
        elif op == 2:
            await self.on_identify(conn, d)
        elif op == 6:
            await self.on_resume(conn, d)
        elif op in (3, 4, 8, 31):
            if not (conn.identified or conn.resumed):
                self.violation("not_authenticated", conn=conn.id, op=op)
                await conn.close(4003)
                return
            rec["d"] = d
            self.gw_received.append(rec)
            if op == 3:
                self.check_presence(conn, d, "presence_update")
                self.count_presence(conn, d)
            elif op == 8:
                await self.on_request_members(conn, d)
        else:
            self.violation("unknown_opcode", conn=conn.id, op=op)
            await conn.close(4001)

    def check_presence(self, conn, d, where):
        ok = isinstance(d, dict) and isinstance(d.get("activities", []), list) and \
            d.get("status", "online") in ("online", "dnd", "idle", "invisible", "offline") and \
            isinstance(d.get("afk", False), bool) and \
            (d.get("since") is None or isinstance(d.get("since"), int))
        if not ok:
            self.violation("invalid_payload", conn=conn.id, where=where, d=d)
        return ok

    async def on_heartbeat(self, conn, d):
        now = mono()
        if d is not None and (not isinstance(d, int) or isinstance(d, bool)):
            self.violation("invalid_payload", conn=conn.id, where="heartbeat", d=d)
            await conn.close(4001)
            return
        sess = conn.session
        if isinstance(d, int) and sess is not None and d > sess.seq:
            self.violation("heartbeat_seq_ahead", conn=conn.id, d=d, seq=sess.seq)
        rec = {"conn": conn.id, "session_id": sess.id if sess else None,
               "shard": conn.shard, "at": now_unix(), "mono": now,
               "since_hello_ms": round((now - conn.hello_mono) * 1000, 1),
               "since_prev_ms": round((now - conn.last_hb_mono) * 1000, 1)
               if conn.last_hb_mono else None,
               "d": d, "acked": conn.acks, "requested": False}
        if conn.hb_requested_mono is not None:
            rec["requested"] = True
            rec["request_latency_ms"] = round((now - conn.hb_requested_mono) * 1000, 1)
            for r in reversed(self.hb_requests):
                if r["conn"] == conn.id and r.get("answered_ms") is None:
                    r["answered_ms"] = rec["request_latency_ms"]
                    break
            conn.hb_requested_mono = None
        if conn.first_hb_delay_ms is None:
            conn.first_hb_delay_ms = rec["since_hello_ms"]
            rec["first"] = True
        conn.last_hb_mono = now
        conn.heartbeats += 1
        self.heartbeats.append(rec)
        if conn.acks:
            await conn.send_op(11, None)
        self.notify()

    def identify_shape_errors(self, d):
        errs = []
        if not isinstance(d, dict):
            return ["d must be an object"]
        if not isinstance(d.get("token"), str):
            errs.append("token must be a string")
        props = d.get("properties")
        if not isinstance(props, dict):
            errs.append("properties must be an object")
        else:
            for k in ("os", "browser", "device"):
                if not isinstance(props.get(k), str):
                    errs.append("properties.%s must be a string" % k)
        if "intents" not in d:
            errs.append("intents is required")
        if "compress" in d and not isinstance(d["compress"], bool):
            errs.append("compress must be a boolean")
        lt = d.get("large_threshold")
        if lt is not None and (not isinstance(lt, int) or isinstance(lt, bool) or not 50 <= lt <= 250):
            errs.append("large_threshold must be an integer 50..250")
        if "presence" in d and d["presence"] is not None:
            pr = d["presence"]
            if not (isinstance(pr, dict) and isinstance(pr.get("activities", []), list)
                    and pr.get("status", "online") in ("online", "dnd", "idle", "invisible", "offline")
                    and isinstance(pr.get("afk", False), bool)
                    and (pr.get("since") is None or isinstance(pr.get("since"), int))):
                errs.append("presence is malformed")
        return errs

    async def on_identify(self, conn, d):
        now = mono()
        rec = {"conn": conn.id, "at": now_unix(), "mono": now, "path": conn.path}
        if isinstance(d, dict):
            rec.update({k: v for k, v in d.items() if k != "token"})
            rec["token_ok"] = d.get("token") == self.token
        self.identifies.append(rec)
        self.notify()
        if conn.identified or conn.resumed:
            rec["result"] = "close 4005"
            self.violation("already_authenticated", conn=conn.id)
            await conn.close(4005)
            return
        errs = self.identify_shape_errors(d)
        if errs:
            rec["result"] = "close 4001"
            self.violation("invalid_payload", conn=conn.id, where="identify", errors=errs)
            await conn.close(4001)
            return
        if d["token"] != self.token:
            rec["result"] = "close 4004"
            await conn.close(4004)
            return
        shard = d.get("shard", [0, 1])
        if shard is None:
            shard = [0, 1]
        if not (isinstance(shard, list) and len(shard) == 2 and
                all(isinstance(x, int) and not isinstance(x, bool) for x in shard) and
                shard[1] >= 1 and 0 <= shard[0] < shard[1]):
            rec["result"] = "close 4010"
            self.violation("invalid_shard", conn=conn.id, shard=shard)
            await conn.close(4010)
            return
        rec["shard"] = shard
        conn.shard = shard[0]
        if shard[1] < self.cfg["min_shards"]:
            rec["result"] = "close 4011"
            await conn.close(4011)
            return
        intents = d["intents"]
        if not isinstance(intents, int) or isinstance(intents, bool) or intents < 0 or \
                intents & ~VALID_INTENTS:
            rec["result"] = "close 4013"
            await conn.close(4013)
            return
        for name, bit in PRIVILEGED.items():
            if intents & bit and name not in self.cfg["privileged_intents"]:
                rec["result"] = "close 4014"
                await conn.close(4014)
                return
        mc = max(1, self.cfg["max_concurrency"])
        key = shard[0] % mc
        last = self.identify_last.get(key)
        if last is not None and now - last < self.cfg["identify_window_s"]:
            rec["result"] = "invalid_session"
            self.violation("identify_concurrency", conn=conn.id, shard=shard,
                           rate_limit_key=key, since_last_ms=round((now - last) * 1000),
                           window_s=self.cfg["identify_window_s"], max_concurrency=mc)
            await conn.send_op(9, False)
            return
        if self.session_start_remaining <= 0:
            rec["result"] = "invalid_session"
            self.violation("session_start_limit", conn=conn.id)
            await conn.send_op(9, False)
            return
        self.identify_last[key] = now
        self.session_start_remaining -= 1
        if self.first_identify_mono is None:
            self.first_identify_mono = now
        sid = "%032x" % self.rng.getrandbits(128)
        sess = Session(sid, shard, intents, conn, d, int(self.cfg["replay_buffer_max"]))
        self.sessions[sid] = sess
        conn.session = sess
        conn.identified = True
        rec["result"] = "ready"
        rec["session_id"] = sid
        gids = [g for g in self.guilds if self.shard_of_guild(g, shard[1]) == shard[0]]
        ready = {
            "v": 10, "user_settings": {}, "user": dict(self.bot_user, verified=True,
                                                       mfa_enabled=True, email=None),
            "guilds": [{"id": g, "unavailable": True} for g in gids],
            "session_id": sid, "session_type": "normal",
            "resume_gateway_url": "ws://127.0.0.1:%d/resume" % self.port,
            "relationships": [], "private_channels": [], "presences": [],
            "guild_join_requests": [], "geo_ordered_rtc_regions": ["newark", "us-east"],
            "game_relationships": [], "auth": {},
            "application": {"id": self.app_id, "flags": self.application_obj()["flags"]},
            "_trace": ['["gateway-prd-us-east1-c-fk%02d",{"micros":1234,"calls":[]}]'
                       % (conn.id % 100)],
        }
        if "shard" in d and d["shard"] is not None:
            ready["shard"] = shard
        await self.dispatch(sess, "READY", ready, force=True)
        for g in gids:
            await self.dispatch(sess, "GUILD_CREATE",
                                self.guild_create_payload(self.guilds[g], sess))
        sess.ready = True
        self.notify()
        if self.args.blast_on_ready and not self.blast_on_ready_started and \
                shard[0] == self.args.blast_shard:
            self.blast_on_ready_started = True
            self.start_blast({"shard": shard[0], "count": self.args.blast_on_ready,
                              "guilds": self.args.blast_guilds,
                              "channels_per_guild": self.args.blast_channels_per_guild,
                              "members_per_guild": self.args.blast_members_per_guild,
                              "session_id": sid})

    async def on_resume(self, conn, d):
        rec = {"conn": conn.id, "at": now_unix(), "mono": mono(), "path": conn.path}
        self.resumes.append(rec)
        self.notify()
        if conn.identified or conn.resumed:
            rec["result"] = "close 4005"
            self.violation("already_authenticated", conn=conn.id, op=6)
            await conn.close(4005)
            return
        if not (isinstance(d, dict) and isinstance(d.get("token"), str) and
                isinstance(d.get("session_id"), str) and
                (isinstance(d.get("seq"), int) and not isinstance(d.get("seq"), bool))):
            rec["result"] = "close 4001"
            self.violation("invalid_payload", conn=conn.id, where="resume", d={
                k: v for k, v in (d or {}).items() if k != "token"} if isinstance(d, dict) else d)
            await conn.close(4001)
            return
        rec.update({"session_id": d["session_id"], "seq": d["seq"],
                    "token_ok": d["token"] == self.token})
        sess = self.sessions.get(d["session_id"])
        reason = None
        if d["token"] != self.token:
            reason = "bad token"
        elif sess is None:
            reason = "unknown session"
        elif sess.invalid:
            reason = "session invalid: %s" % sess.invalid_reason
        elif sess.conn is None and sess.disconnected_mono is not None and \
                mono() - sess.disconnected_mono > self.cfg["session_timeout_s"]:
            sess.invalid = True
            sess.invalid_reason = "timed out"
            reason = "session timed out"
        if reason:
            rec["result"] = "invalid_session"
            rec["reason"] = reason
            await conn.send_op(9, False)
            return
        if sess.buffer and d["seq"] < sess.buffer[0][0] - 1:
            rec["result"] = "invalid_session"
            rec["reason"] = "seq %d is older than the replay buffer" % d["seq"]
            await conn.send_op(9, False)
            return
        if d["seq"] > sess.seq:
            rec["result"] = "close 4007"
            self.violation("invalid_seq", conn=conn.id, seq=d["seq"], session_seq=sess.seq)
            await conn.close(4007)
            return
        old = sess.conn
        if old is not None and old is not conn and old.live:
            LOG.info("conn %d: superseded by resume on conn %d", old.id, conn.id)
            old.drop()
        async with sess.lock:
            replayed = []
            for seq, t, text in sess.buffer:
                if seq > d["seq"]:
                    if not await conn.send_text(text):
                        break
                    replayed.append(seq)
                    sess.delivered_count += 1
                    sess.delivered_by_type[t] += 1
                    sess.delivered.append({"seq": seq, "t": t, "conn": conn.id,
                                           "replay": True, "at": now_unix()})
            sess.seq += 1
            text = dumps({"t": "RESUMED", "s": sess.seq, "op": 0, "d": {"_trace": [
                '["gateway-prd-us-east1-c-fk%02d",{"micros":321}]' % (conn.id % 100)]}})
            sess.buffer.append((sess.seq, "RESUMED", text))
            await conn.send_text(text)
            sess.delivered.append({"seq": sess.seq, "t": "RESUMED", "conn": conn.id,
                                   "replay": False, "at": now_unix()})
            sess.conn = conn
            sess.disconnected_mono = None
            conn.session = sess
            conn.shard = sess.shard[0]
            conn.resumed = True
        rec["result"] = "resumed"
        rec["replayed"] = replayed
        self.notify()

    async def on_request_members(self, conn, d):
        if not isinstance(d, dict) or "guild_id" not in d:
            self.violation("invalid_payload", conn=conn.id, where="request_guild_members", d=d)
            return
        g = self.guilds.get(str(d["guild_id"]))
        if g is None or conn.session is None:
            return
        members = [self.member_obj(self.users[m], g) for m in g["_members"]]
        if d.get("user_ids"):
            ids = d["user_ids"] if isinstance(d["user_ids"], list) else [d["user_ids"]]
            members = [m for m in members if m["user"]["id"] in map(str, ids)]
        elif d.get("query"):
            members = [m for m in members if m["user"]["username"].startswith(d["query"])]
        if d.get("limit"):
            members = members[:d["limit"]]
        chunk = {"guild_id": g["id"], "members": members, "chunk_index": 0, "chunk_count": 1}
        if d.get("nonce") is not None:
            chunk["nonce"] = d["nonce"]
        await self.dispatch(conn.session, "GUILD_MEMBERS_CHUNK", chunk, force=True)

    # ------------------------------------------------------------ blast
    def start_blast(self, body):
        bid = "b%d" % (len(self.blasts) + 1)
        b = {"id": bid, "shard": int(body.get("shard", 0)), "count": int(body.get("count", 1000)),
             "template": body.get("template", "MESSAGE_CREATE"),
             "guilds": int(body.get("guilds", 1)),
             "channels_per_guild": int(body.get("channels_per_guild", 5)),
             "members_per_guild": int(body.get("members_per_guild", 50)),
             "seed": body.get("seed", 1), "session_id": body.get("session_id"),
             "batch": max(1, int(body.get("batch", 1))),
             "shard_formula": bool(body.get("shard_formula", False)),
             "first_channel_id": None,
             "sent": 0, "guilds_sent": 0, "done": False, "error": None,
             "started_at": now_unix(), "elapsed_s": None, "bytes": 0}
        self.blasts[bid] = b
        b["_task"] = asyncio.ensure_future(self.run_blast(b))
        return b

    async def run_blast(self, b):
        t0 = mono()
        try:
            sess = self.sessions.get(b["session_id"]) if b["session_id"] else \
                self.session_for_shard(b["shard"])
            if sess is None:
                raise RuntimeError("no session for shard %d" % b["shard"])
            b["session_id"] = sess.id
            rnd = random.Random(b["seed"])
            guilds = []
            for gi in range(b["guilds"]):
                gid = None
                if b["shard_formula"]:
                    # an id that Discord's formula puts on this session's shard
                    # (moving its timestamp forward by less than num_shards ms).
                    v = int(self.sf.next())
                    num, k = max(1, sess.shard[1]), sess.shard[0]
                    t = v >> 22
                    t += (k - t) % num
                    if t != v >> 22:
                        v = (t << 22) | (v & 0x3FFFFF)
                    self.sf.last = max(self.sf.last, v)
                    gid = str(v)
                g = self.add_guild("Blast Guild %d" % (gi + 1), n_channels=b["channels_per_guild"],
                                   n_members=b["members_per_guild"], guild_id=gid,
                                   shard=sess.shard[0])
                guilds.append(g)
                if b["first_channel_id"] is None:
                    b["first_channel_id"] = next(
                        (c for c in g["_channels"] if self.channels[c]["type"] == 0), None)
                d = self.guild_create_payload(g, sess, all_members=True)
                await self.dispatch(sess, "GUILD_CREATE", d, force=True)
                b["guilds_sent"] += 1
            if not guilds:
                guilds = [self.guilds[g] for g in self.guilds]
            chans = [(g, [c for c in g["_channels"] if self.channels[c]["type"] == 0]) for g in guilds]
            # batch > 1: payloads (each still its own zlib-flushed frame) are
            # written `batch` at a time, as Discord's gateway does when a
            # client has a backlog; batch 1 writes every payload on its own.
            conn = sess.conn if b["batch"] > 1 and sess.conn is not None else None
            if conn is not None:
                conn.cork = []
            for i in range(b["count"]):
                g, cs = chans[rnd.randrange(len(chans))]
                cid = cs[rnd.randrange(len(cs))]
                uid = g["_members"][rnd.randrange(2, len(g["_members"]))] \
                    if len(g["_members"]) > 2 else g["owner_id"]
                nwords = rnd.randint(2, 30)
                content = " ".join(rnd.choice(WORDS) for _ in range(nwords))
                msg = {
                    "type": 0, "tts": False, "timestamp": iso(), "pinned": False,
                    "nonce": str(rnd.getrandbits(60)), "mentions": [], "mention_roles": [],
                    "mention_everyone": False,
                    "member": self.member_obj(self.users[uid], g, with_user=False),
                    "id": self.sf.next(), "flags": 0, "embeds": [], "edited_timestamp": None,
                    "content": content, "components": [], "channel_id": cid,
                    "author": self.users[uid], "attachments": [], "guild_id": g["id"],
                }
                d_text = dumps(self.strip_content(sess, "MESSAGE_CREATE", msg))
                b["bytes"] += len(d_text)
                await self.dispatch(sess, "MESSAGE_CREATE", msg, force=True, d_text=d_text,
                                    record=False)
                b["sent"] += 1
                if conn is not None and len(conn.cork) >= b["batch"]:
                    await conn.uncork()
                elif i % 256 == 255:
                    await asyncio.sleep(0)
            if conn is not None:
                await conn.uncork()
        except Exception as e:  # noqa: BLE001
            b["error"] = str(e)
            LOG.exception("blast %s failed", b["id"])
        finally:
            for c in self.conns.values():
                if c.cork is not None and not c.cork:
                    c.cork = None
        b["elapsed_s"] = round(mono() - t0, 4)
        b["done"] = True
        b["finished_at"] = now_unix()
        LOG.info("blast %s done: %d events, %d guilds in %.3fs", b["id"], b["sent"],
                 b["guilds_sent"], b["elapsed_s"])
        self.notify()

    def blast_info(self, b):
        return {k: v for k, v in b.items() if not k.startswith("_")}

    # ------------------------------------------------------------ REST
    def match_route(self, method, path):
        allowed = False
        for r in ROUTES:
            m = r.rx.match(path)
            if m:
                if r.method == method:
                    return r, m.groupdict(), True
                allowed = True
        return None, None, allowed

    @staticmethod
    def major_of(params):
        if "channel_id" in params:
            return "channel:" + params["channel_id"]
        if "guild_id" in params:
            return "guild:" + params["guild_id"]
        if "webhook_id" in params:
            return "webhook:%s:%s" % (params["webhook_id"], params["webhook_token"])
        if "interaction_id" in params:
            return "interaction:%s:%s" % (params["interaction_id"], params["interaction_token"])
        return ""

    def route_limit(self, r):
        return self.limit_overrides.get(r.family, (r.limit, r.window))

    def rl_headers(self, r, remaining, reset_mono, limit):
        now_m = mono()
        after = max(0.0, reset_mono - now_m)
        after_ms = math.ceil(after * 1000) / 1000.0
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": "%.3f" % (now_unix() + after_ms),
            "X-RateLimit-Reset-After": "%.3f" % after_ms,
            "X-RateLimit-Bucket": r.bucket_hash,
        }

    def client_knew(self, key, arrival, peer=None):
        """Had the client, when it sent this request, already received headers
        for this bucket saying Remaining 0 with the reset still ahead?  A
        response on the same keep-alive connection was necessarily read first;
        on another connection allow avoidable_grace_ms for requests in flight."""
        grace = self.cfg["avoidable_grace_ms"] / 1000.0
        for sent, rem, reset, apeer in reversed(self.adverts[key]):
            if sent <= arrival and (sent + grace <= arrival or (peer is not None and apeer == peer)):
                return rem <= 0 and arrival < reset, {"remaining": rem,
                                                       "reset_in_s": round(reset - arrival, 4)}
        return False, None

    def json_response(self, status, obj, headers=None):
        h = {"Content-Type": "application/json"}
        if headers:
            h.update(headers)
        return web.Response(status=status, body=dumps(obj).encode(), headers=h)

    def too_many(self, entry, r, key, scope, retry_after, arrival, bucket_headers,
                 scripted=False, message=None):
        is_global = scope == "global"
        h = {"Retry-After": str(max(1, math.ceil(retry_after))) if retry_after > 0 else "0",
             "X-RateLimit-Scope": scope}
        if is_global:
            h["X-RateLimit-Global"] = "true"
        elif bucket_headers:
            h.update(bucket_headers)
        body = {"message": message or ("The resource is being rate limited." if scope == "shared"
                                       else "You are being rate limited."),
                "retry_after": round(retry_after, 3), "global": is_global}
        entry["rate_limited"] = scope
        return h, body

    async def rest_entry(self, request):
        arrival = mono()
        method = request.method
        full = request.path
        entry = {"i": len(self.requests), "at": now_unix(), "mono": arrival, "method": method,
                 "path": full, "query": request.query_string,
                 "headers": {k: v for k, v in request.headers.items()
                             if k.lower() != "authorization"},
                 "body": None, "status": None, "bucket": None, "major": None,
                 "remaining": None, "scripted": False, "rate_limited": None, "avoidable": None}
        self.requests.append(entry)
        entry["_peer"] = request.transport.get_extra_info("peername") if request.transport else None
        resp = None
        try:
            resp = await self._rest(request, arrival, entry)
        except ApiError as e:
            resp = self.json_response(e.status, e.body, entry.pop("_rl_headers", None))
        if resp is not None and entry.get("status") != "dropped":
            entry["status"] = resp.status
            key = entry.pop("_key", None)
            if key is not None and entry.get("_advert") is not None:
                rem, reset = entry.pop("_advert")
                self.adverts[key].append((mono(), rem, reset, entry.get("_peer")))
        entry.pop("_advert", None)
        entry.pop("_rl_headers", None)
        entry.pop("_peer", None)
        entry.pop("_key", None)
        if resp is not None and entry.get("status") != "dropped":
            if resp.status in (401, 403, 429) and not (resp.status == 429 and entry.get("rate_limited") == "shared"):
                self.rest_stats["invalid_requests"] += 1
        self.notify()
        return resp

    async def _rest(self, request, arrival, entry):
        method = request.method
        full = request.path
        ua = request.headers.get("User-Agent", "")
        if not UA_RE.match(ua):
            self.violation("user_agent", method=method, path=full, user_agent=ua)
        if not full.startswith(API_PREFIX + "/"):
            self.violation("api_version", method=method, path=full)
            raise api_error(404, "404: Not Found", 0)
        path = full[len(API_PREFIX):]
        r, params, allowed = self.match_route(method, path)
        if r is None:
            if allowed:
                raise api_error(405, "405: Method Not Allowed", 0)
            self.violation("unknown_route", method=method, path=full)
            raise api_error(404, "404: Not Found", 0)
        entry["route"] = r.method + " " + r.tpl
        # --- body
        body = None
        ctype = request.content_type
        files = []
        if ctype == "multipart/form-data":
            form = await request.post()
            pj = form.get("payload_json")
            try:
                body = json.loads(pj) if pj else {}
            except ValueError:
                self.violation("invalid_json", method=method, path=full)
                raise api_error(400, "The request body contains invalid JSON.", 50109)
            for k, v in form.items():
                if hasattr(v, "file"):
                    data = v.file.read()
                    files.append({"field": k, "filename": v.filename, "size": len(data),
                                  "content_type": v.content_type})
            entry["body"] = {"payload_json": body, "files": files}
        else:
            raw = await request.read()
            if raw:
                if ctype != "application/json":
                    self.violation("content_type", method=method, path=full,
                                   content_type=request.headers.get("Content-Type"))
                else:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        entry["body"] = raw[:2000].decode("utf-8", "replace")
                        self.violation("invalid_json", method=method, path=full)
                        raise api_error(400, "The request body contains invalid JSON.", 50109)
                    entry["body"] = body
        # --- auth
        auth = request.headers.get("Authorization")
        if r.auth and auth != "Bot " + self.token:
            entry["auth"] = "missing" if auth is None else "bad"
            raise api_error(401, "401: Unauthorized", 0)
        if r.auth and not r.global_exempt:
            self.count_sliding(arrival)
        # --- scripts
        major = self.major_of(params)
        key = (r.family, major)
        entry["bucket"] = r.bucket_hash
        entry["major"] = major
        script = None
        for s in self.scripts:
            if s["responses"] and (s["method"] in ("*", method)) and s["rx"].search(path):
                script = s["responses"].pop(0)
                break
        self.scripts = [s for s in self.scripts if s["responses"]]
        if script is not None:
            entry["scripted"] = True
            if script.get("delay_ms"):
                await asyncio.sleep(script["delay_ms"] / 1000.0)
            if script.get("drop"):
                entry["status"] = "dropped"
                request.transport.abort()
                return web.Response(status=200)
            if script.get("status") is not None:
                return self.scripted_response(script, r, key, entry)
        # --- global limit
        now = mono()
        if r.auth and not r.global_exempt:
            gb = self.global_block
            if gb is not None and now < gb[1]:
                avoid = gb[0] <= arrival and (gb[0] + self.cfg["avoidable_grace_ms"] / 1000.0 <= arrival
                                              or (len(gb) > 2 and gb[2] == entry.get("_peer")))
                return self.rate_limited_resp(entry, r, key, "global", gb[1] - now, avoid, None)
            if self.cfg.get("global_window_mode") == "sliding":
                w = self.cfg["global_window_s"]
                acc = self.sliding_accepted
                while acc and acc[0] <= now - w:
                    acc.popleft()
                if len(acc) >= self.cfg["global_limit"]:
                    until = acc[0] + w
                    self.global_block = (mono(), until, entry.get("_peer"))
                    return self.rate_limited_resp(entry, r, key, "global", until - now, False, None)
                acc.append(now)
            else:
                self.global_window(now)
                if self.global_count >= self.cfg["global_limit"]:
                    until = self.global_window_start + self.cfg["global_window_s"]
                    self.global_block = (mono(), until, entry.get("_peer"))
                    return self.rate_limited_resp(entry, r, key, "global", until - now, False,
                                                  None)
                self.global_count += 1
        # --- route bucket
        blk = self.blocks.get(key)
        limit, window = self.route_limit(r)
        b = self.buckets.get(key)
        if b is None:
            b = self.buckets[key] = Bucket()
        if now >= b.reset_at:
            b.count = 0
            b.reset_at = now + window
        if blk is not None and now < blk[1]:
            knew, _ = self.client_knew(key, arrival, entry.get("_peer"))
            hdr = self.rl_headers(r, 0 if blk[0] == "user" else max(0, limit - b.count), blk[1], limit)
            return self.rate_limited_resp(entry, r, key, blk[0], blk[1] - now, knew, hdr,
                                          advert=(0, blk[1]))
        if b.count >= limit:
            knew, had = self.client_knew(key, arrival, entry.get("_peer"))
            hdr = self.rl_headers(r, 0, b.reset_at, limit)
            entry["client_had"] = had
            return self.rate_limited_resp(entry, r, key, "user", b.reset_at - now, knew, hdr,
                                          advert=(0, b.reset_at))
        b.count += 1
        remaining = limit - b.count
        entry["remaining"] = remaining
        hdr = self.rl_headers(r, remaining, b.reset_at, limit)
        entry["_rl_headers"] = hdr
        entry["_key"] = key
        entry["_advert"] = (remaining, b.reset_at)
        # --- validation
        self.validate_body(r, method, path, full, body, files, entry)
        # --- handler
        result = await getattr(self, "h_" + r.handler)(request, params, body, files)
        status, obj = result[0], result[1]
        if len(result) > 2:  # a handler's own headers (a 429 the bucket never announced)
            hdr = dict(hdr, **result[2])
        if status == 204:
            return web.Response(status=204, headers=hdr)
        return self.json_response(status, obj, hdr)

    def count_sliding(self, arrival):
        """Count one request bound by the global limit in the sliding
        window (global_window_s, 1 s as on Discord) that ends at its
        arrival, and keep the highest count any such window reached."""
        w = self.cfg["global_window_s"]
        q = self.sliding
        while q and q[0] <= arrival - w:
            q.popleft()
        q.append(arrival)
        if len(q) > self.sliding_max:
            self.sliding_max = len(q)
            self.sliding_max_at = now_unix()

    def sliding_state(self):
        return {"window_s": self.cfg["global_window_s"], "max": self.sliding_max,
                "max_at": self.sliding_max_at}

    def global_window(self, now):
        """Move the global counter to the window that holds `now`.

        Mode "first": a window opens with the first request after the last
        one closed.  Mode "aligned": fixed windows on the fake's own clock,
        at global_window_phase_s past every multiple of global_window_s (a
        random phase when None), whatever the client does: a client that
        sends a second's worth in a burst then sees parts of two bursts land
        in one window, as Discord's own counters do."""
        w = self.cfg["global_window_s"]
        if self.cfg.get("global_window_mode") == "aligned":
            if self.cfg.get("global_window_phase_s") is None:
                self.cfg["global_window_phase_s"] = round(self.rng.random() * w, 4)
            phase = self.cfg["global_window_phase_s"]
            start = math.floor((now - phase) / w) * w + phase
        elif now - self.global_window_start >= w:
            start = now
        else:
            start = self.global_window_start
        if start != self.global_window_start:
            self.global_window_start = start
            self.global_count = 0
        return start

    def rate_limited_resp(self, entry, r, key, scope, retry_after, avoidable, bucket_headers,
                          advert=None):
        h, body = self.too_many(entry, r, key, scope, retry_after, entry["mono"], bucket_headers)
        entry["avoidable"] = bool(avoidable)
        rec = {"i": entry["i"], "at": entry["at"], "method": entry["method"],
               "path": entry["path"], "scope": scope, "retry_after": body["retry_after"],
               "avoidable": bool(avoidable), "scripted": False}
        self.rate_limited.append(rec)
        if scope == "global":
            self.rest_stats["global_429"] += 1
        if avoidable:
            self.rest_stats["avoidable_429"] += 1
            self.violation("avoidable_429", method=entry["method"], path=entry["path"],
                           scope=scope, bucket=r.bucket_hash, major=key[1],
                           retry_after=body["retry_after"], client_had=entry.get("client_had"))
        else:
            self.rest_stats["unavoidable_429"] += 1
        if advert is not None:
            entry["_key"] = key
            entry["_advert"] = advert
        return self.json_response(429, body, h)

    def scripted_response(self, script, r, key, entry):
        status = int(script["status"])
        headers = dict(script.get("headers") or {})
        body = script.get("body")
        now = mono()
        if status == 429 and script.get("scope"):
            scope = script["scope"]
            ra = float(script.get("retry_after", 1.0))
            limit, window = self.route_limit(r)
            b = self.buckets.get(key)
            used = b.count if b and now < b.reset_at else 0
            until = now + ra
            bh = None
            if scope != "global":
                bh = self.rl_headers(r, 0 if scope == "user" else max(0, limit - used), until, limit)
                self.blocks[key] = (scope, until)
                entry["_key"] = key
                entry["_advert"] = (0, until)
            else:
                self.global_block = (now, until, entry.get("_peer"))
            h, dbody = self.too_many(entry, r, key, scope, ra, now, bh)
            h.update(headers)
            if body is None:
                body = dbody
            headers = h
            self.rest_stats["scripted_429"] += 1
            self.rate_limited.append({"i": entry["i"], "at": entry["at"], "method": entry["method"],
                                      "path": entry["path"], "scope": scope, "retry_after": ra,
                                      "avoidable": False, "scripted": True})
        if body is None:
            if status >= 500:
                # Discord's edge answers 5xx with HTML or a bare JSON error
                body = {"message": "%d: %s" % (status, {500: "Internal Server Error",
                                                          502: "Bad Gateway",
                                                          503: "Service Unavailable",
                                                          504: "Gateway Timeout"}.get(status, "Error")),
                        "code": 0}
            elif status == 204:
                return web.Response(status=204, headers=headers)
            else:
                body = {}
        if isinstance(body, (dict, list)):
            return self.json_response(status, body, headers)
        h = {"Content-Type": headers.pop("Content-Type", "text/html")}
        h.update(headers)
        return web.Response(status=status, body=str(body).encode(), headers=h)

    def validate_body(self, r, method, path, full, body, files, entry):
        creating = MESSAGE_BODY_ROUTES.get(r.handler)
        errs = []
        spec_body = body
        if body is None and creating:
            spec_body = {}
        if method in ("POST", "PUT", "PATCH"):
            tpl, spec_errs = self.spec.validate(method, path, spec_body)
            for p, validator, value, msg in spec_errs:
                code, dmsg = discord_error_code(validator, value)
                errs.append((p, code, dmsg, msg))
        empty = False
        if creating is not None:
            b = dict(spec_body or {})
            if files:
                b["files"] = files
            extra, empty = check_message_limits(b, [], creating)
            errs += [(p, c, m, m) for p, c, m in extra]
        elif r.handler == "interaction_callback" and isinstance(body, dict):
            data = body.get("data")
            if body.get("type") in (4, 7) and isinstance(data, dict):
                extra, empty = check_message_limits(data, ["data"], body.get("type") == 4)
                errs += [(p, c, m, m) for p, c, m in extra]
            elif body.get("type") == 4 and data is None:
                empty = True
        elif r.handler == "put_commands" and isinstance(body, list):
            errs += self.check_commands(body)
        elif r.handler == "post_command" and isinstance(body, dict):
            errs += self.check_commands([body], prefix=False)
        if errs:
            # one error per pointer; the documented-limit check (added last)
            # words it the way Discord does
            by_ptr = {}
            for p, code, dmsg, msg in errs:
                by_ptr["/" + "/".join(str(x) for x in p)] = (p, code, dmsg, msg)
            errs = list(by_ptr.values())
            for p, code, dmsg, msg in errs:
                ptr = "/" + "/".join(str(x) for x in p)
                self.violation("invalid_body", route=entry.get("route"), method=method,
                               path=full, pointer=ptr, message=msg, code=code)
            raise ApiError(400, {"code": 50035, "errors": errors_tree(
                [(p, c, m) for p, c, m, _ in errs]), "message": "Invalid Form Body"})
        if empty:
            self.violation("empty_message", route=entry.get("route"), method=method, path=full)
            raise api_error(400, "Cannot send an empty message", 50006)

    def check_commands(self, cmds, prefix=True):
        errs = []
        seen = set()
        name_rx = re.compile(r"^[-_'\w\u0900-\u097F\u0E00-\u0E7F]{1,32}$")
        for i, c in enumerate(cmds):
            if not isinstance(c, dict):
                continue
            pre = [i] if prefix else []
            ctype = c.get("type", 1) or 1
            name = c.get("name")
            if isinstance(name, str):
                if ctype == 1 and (not name_rx.match(name) or name != name.lower()):
                    errs.append((pre + ["name"], "APPLICATION_COMMAND_INVALID_NAME",
                                 "Command name is invalid", "chat input names are lowercase ^[-_\\w]{1,32}$"))
                if (name, ctype) in seen:
                    errs.append((pre + ["name"], "APPLICATION_COMMANDS_DUPLICATE_NAME",
                                 "Application command names must be unique",
                                 "duplicate command name %r" % name))
                seen.add((name, ctype))
            desc = c.get("description")
            if ctype == 1 and (not isinstance(desc, str) or not 1 <= len(desc) <= 100):
                errs.append((pre + ["description"], "BASE_TYPE_BAD_LENGTH",
                             "Must be between 1 and 100 in length.", "description 1..100"))
            opts = c.get("options") or []
            if isinstance(opts, list) and len(opts) > 25:
                errs.append((pre + ["options"], "BASE_TYPE_MAX_LENGTH",
                             "Must be 25 or fewer in length.", "options <= 25"))
        return errs

    # ------------------------------------------------------------ module actions
    # DMs (and users who closed them), channel renames under Discord's hidden
    # 2-per-10-minutes limit, guild bans behind BAN_MEMBERS, member counts, and
    # presence updates (op 3) at most 5 per 60 s per shard.
    def init_actions(self):
        self.dm_closed = set()
        self.dm_channels = {}           # user id -> DM channel id
        self.renames = collections.defaultdict(list)  # channel id -> [mono]
        self.rename_log = []
        self.bans = collections.defaultdict(list)     # guild id -> [user id], sorted
        self.online_override = {}       # guild id -> approximate_presence_count
        self.presence_times = collections.defaultdict(list)  # shard -> [mono]
        self.presence_updates = []

    def actions_state(self):
        return {"dm_closed": sorted(self.dm_closed), "dm_channels": self.dm_channels,
                "renames": self.rename_log, "presence_updates": self.presence_updates[-500:],
                "bans": {g: len(v) for g, v in self.bans.items()}}

    def bot_permissions(self, g):
        """The bot's guild-level permissions: @everyone and its role."""
        perms = 0
        for role in g["roles"]:
            if role["id"] in (g["id"], g["bot_role_id"]):
                perms |= int(role["permissions"])
        return perms

    def rename_limited(self, c, body):
        """A rename past 2 per channel per 10 minutes: 429 with ~10 minutes to
        wait and bucket headers that never warned of it."""
        if not isinstance(body, dict) or "name" not in body:
            return None
        now = mono()
        times = [t for t in self.renames[c["id"]] if now - t < RENAME_WINDOW_S]
        self.renames[c["id"]] = times
        if len(times) >= RENAME_LIMIT:
            wait = RENAME_WINDOW_S - (now - times[0])
            self.violation("channel_rename_limit", channel_id=c["id"], renames=len(times),
                           retry_after=round(wait, 3))
            self.rest_stats["rename_429"] += 1
            self.rename_log.append({"channel_id": c["id"], "name": body.get("name"),
                                    "at": now_unix(), "refused": True})
            return (429, {"message": "You are being rate limited.",
                          "retry_after": round(wait, 3), "global": False},
                    {"Retry-After": str(math.ceil(wait)), "X-RateLimit-Scope": "user"})
        times.append(now)
        self.rename_log.append({"channel_id": c["id"], "name": body.get("name"),
                                "at": now_unix(), "refused": False})
        return None

    def check_dm_open(self, c):
        if c.get("type") != 1:
            return
        rcpt = c["recipients"][0]["id"]
        if rcpt in self.dm_closed:
            raise api_error(403, "Cannot send messages to this user", 50007)

    async def h_create_dm(self, request, p, body, files):
        uid = str((body or {}).get("recipient_id", ""))
        user = self.users.get(uid)
        if user is None or user.get("bot"):
            raise api_error(400, "Invalid Recipient(s)", 50033)
        cid = self.dm_channels.get(uid)
        if cid is None:
            cid = self.sf.next()
            self.dm_channels[uid] = cid
            self.channels[cid] = {"id": cid, "type": 1, "last_message_id": None, "flags": 0,
                                  "recipients": [user]}
        return 200, self.channels[cid]

    async def h_get_bans(self, request, p, body, files):
        g = self.guild_or_404(p["guild_id"])
        perms = self.bot_permissions(g)
        if not perms & (BAN_MEMBERS | ADMINISTRATOR):
            raise api_error(403, "Missing Permissions", 50013)
        try:
            limit = int(request.query.get("limit", "1000"))
            after = int(request.query.get("after", "0"))
            before = int(request.query["before"]) if "before" in request.query else None
        except ValueError:
            raise ApiError(400, {"code": 50035, "message": "Invalid Form Body", "errors": {}})
        if not 1 <= limit <= 1000:
            self.violation("bad_query", path=request.path, query=request.query_string)
            raise ApiError(400, {"code": 50035, "message": "Invalid Form Body", "errors": {
                "limit": {"_errors": [{"code": "NUMBER_TYPE_MAX",
                                       "message": "int value should be <= 1000."}]}}})
        ids = [u for u in self.bans[g["id"]] if int(u) > after and (before is None or int(u) < before)]
        if before is not None and "after" not in request.query:
            ids = ids[-limit:]
        return 200, [{"reason": None, "user": self.users[u]} for u in ids[:limit]]

    def count_presence(self, conn, d):
        sess = conn.session
        shard = sess.shard[0] if sess else 0
        now = mono()
        times = [t for t in self.presence_times[shard] if now - t < PRESENCE_WINDOW_S]
        times.append(now)
        self.presence_times[shard] = times
        rec = {"shard": shard, "conn": conn.id, "at": now_unix(), "d": d,
               "over_limit": len(times) > PRESENCE_LIMIT}
        self.presence_updates.append(rec)
        if rec["over_limit"]:
            self.violation("presence_rate_limit", shard=shard, count=len(times),
                           window_s=PRESENCE_WINDOW_S)

    def add_action_routes(self, c):
        c.add_post("/_fake/users/{uid}/dms", self.c_user_dms)
        c.add_post("/_fake/guilds/{gid}/members", self.c_guild_members)
        c.add_post("/_fake/guilds/{gid}/bans", self.c_guild_bans)
        c.add_post("/_fake/guilds/{gid}/bot_permissions", self.c_bot_permissions)
        c.add_post("/_fake/renames/age", self.c_renames_age)

    async def c_user_dms(self, request):
        b = await self.control_body(request)
        uid = request.match_info["uid"]
        if uid not in self.users:
            return self.cj({"error": "unknown user"}, 404)
        if b.get("open", True):
            self.dm_closed.discard(uid)
        else:
            self.dm_closed.add(uid)
        return self.cj({"ok": True, "dm_closed": sorted(self.dm_closed)})

    async def c_guild_members(self, request):
        """{"add": N, "bots": N, "remove": N, "online": N}: members (bot
        users for "bots") join or leave (with GUILD_MEMBER_ADD / _REMOVE,
        which need GUILD_MEMBERS); online sets approximate_presence_count."""
        b = await self.control_body(request)
        g = self.guilds.get(request.match_info["gid"])
        if g is None:
            return self.cj({"error": "unknown guild"}, 404)
        sess = self.session_for_guild(g["id"])
        for i in range(int(b.get("add", 0)) + int(b.get("bots", 0))):
            u = self._make_user("member%d" % len(self.users), len(self.users))
            if i >= int(b.get("add", 0)):
                u["bot"] = True
            self.users[u["id"]] = u
            g["_members"].append(u["id"])
            if sess is not None and sess.ready:
                await self.dispatch(sess, "GUILD_MEMBER_ADD",
                                    dict(self.member_obj(u, g), guild_id=g["id"]))
        for i in range(int(b.get("remove", 0))):
            victims = [m for m in g["_members"] if m not in (self.app_id, g["owner_id"])]
            if not victims:
                break
            uid = victims[-1]
            g["_members"].remove(uid)
            if sess is not None and sess.ready:
                await self.dispatch(sess, "GUILD_MEMBER_REMOVE",
                                    {"guild_id": g["id"], "user": self.users[uid]})
        if "online" in b:
            self.online_override[g["id"]] = int(b["online"])
        return self.cj({"ok": True, "member_count": len(g["_members"])})

    async def c_guild_bans(self, request):
        """{"count": N}: N users banned (GUILD_BAN_ADD each, which needs
        GUILD_MODERATION)."""
        b = await self.control_body(request)
        g = self.guilds.get(request.match_info["gid"])
        if g is None:
            return self.cj({"error": "unknown guild"}, 404)
        sess = self.session_for_guild(g["id"])
        for i in range(int(b.get("count", 0))):
            u = self._make_user("banned%d" % len(self.users), len(self.users))
            self.users[u["id"]] = u
            self.bans[g["id"]].append(u["id"])
            if sess is not None and sess.ready and b.get("dispatch", True):
                await self.dispatch(sess, "GUILD_BAN_ADD", {"guild_id": g["id"], "user": u})
        self.bans[g["id"]].sort(key=int)
        return self.cj({"ok": True, "bans": len(self.bans[g["id"]])})

    async def c_bot_permissions(self, request):
        """{"permissions": "<decimal>"}: the bot role's permissions (with the
        GUILD_ROLE_UPDATE Discord would send)."""
        b = await self.control_body(request)
        g = self.guilds.get(request.match_info["gid"])
        if g is None:
            return self.cj({"error": "unknown guild"}, 404)
        role = next(r for r in g["roles"] if r["id"] == g["bot_role_id"])
        role["permissions"] = str(int(b.get("permissions", "0")))
        sess = self.session_for_guild(g["id"])
        if sess is not None and sess.ready:
            await self.dispatch(sess, "GUILD_ROLE_UPDATE", {"guild_id": g["id"], "role": role})
        return self.cj({"ok": True, "role": role})

    async def c_renames_age(self, request):
        """{"s": N}: the renames recorded so far happened N seconds earlier,
        for tests whose bot runs on a moved clock (SOUK_TEST_CLOCK_FILE):
        the hidden 10-minute window passes without waiting for it."""
        b = await self.control_body(request)
        try:
            age = float(b.get("s", 0))
        except (TypeError, ValueError):
            return self.cj({"error": "s must be a number"}, 400)
        for cid, times in self.renames.items():
            self.renames[cid] = [t - age for t in times]
        return self.cj({"ok": True, "channels": len(self.renames)})

    # --- handlers: each returns (status, obj)
    async def h_get_gateway(self, request, p, body, files):
        return 200, {"url": self.gateway_url()}

    async def h_get_gateway_bot(self, request, p, body, files):
        reset_after = 0
        if self.first_identify_mono is not None:
            reset_after = max(0, int(86400000 - (mono() - self.first_identify_mono) * 1000))
        return 200, {"url": self.gateway_url(), "shards": self.cfg["shards"],
                     "session_start_limit": {"total": self.cfg["session_start_total"],
                                             "remaining": self.session_start_remaining,
                                             "reset_after": reset_after,
                                             "max_concurrency": self.cfg["max_concurrency"]}}

    async def h_get_me(self, request, p, body, files):
        return 200, dict(self.bot_user, mfa_enabled=True, locale="en-US", premium_type=0,
                         email=None, verified=True, bio="")

    async def h_get_user(self, request, p, body, files):
        u = self.users.get(p["user_id"])
        if u is None:
            raise api_error(404, "Unknown User", 10013)
        return 200, dict(u)

    async def h_get_application(self, request, p, body, files):
        return 200, self.application_obj()

    async def h_get_oauth_application(self, request, p, body, files):
        return 200, self.application_obj()

    def guild_or_404(self, gid):
        g = self.guilds.get(gid)
        if g is None:
            raise api_error(404, "Unknown Guild", 10004)
        return g

    def channel_or_404(self, cid):
        c = self.channels.get(cid)
        if c is None:
            raise api_error(404, "Unknown Channel", 10003)
        return c

    async def h_get_guild(self, request, p, body, files):
        g = self.guild_or_404(p["guild_id"])
        d = self.guild_public(g)
        if request.query.get("with_counts", "").lower() == "true":
            d["approximate_member_count"] = len(g["_members"])
            d["approximate_presence_count"] = self.online_override.get(
                g["id"], max(1, (len(g["_members"]) * 2) // 3))
        return 200, d

    async def h_get_channel(self, request, p, body, files):
        return 200, self.channel_or_404(p["channel_id"])

    async def h_patch_channel(self, request, p, body, files):
        c = self.channel_or_404(p["channel_id"])
        limited = self.rename_limited(c, body)
        if limited is not None:
            return limited
        for k in ("name", "topic", "position", "nsfw", "rate_limit_per_user", "parent_id",
                  "permission_overwrites", "flags"):
            if isinstance(body, dict) and k in body:
                c[k] = body[k]
        await self.echo("CHANNEL_UPDATE", dict(c), c.get("guild_id"))
        return 200, c

    async def h_typing(self, request, p, body, files):
        # "souk is typing..." for about 10 s; recorded for tests.
        c = self.channel_or_404(p["channel_id"])
        self.typing.append({"channel_id": c["id"], "at": now_unix()})
        return 204, None

    async def h_post_message(self, request, p, body, files):
        c = self.channel_or_404(p["channel_id"])
        self.check_dm_open(c)
        b = dict(body or {})
        # enforce_nonce: a message by the same author with the same nonce in
        # the last few minutes is answered again and nothing new is posted
        # (Discord's docs: "Create Message").
        nonce = b.get("nonce")
        if b.get("enforce_nonce") and nonce is not None:
            key = (self.app_id, str(nonce))
            seen = self.nonces.get(key)
            if seen is not None and mono() - seen[0] < NONCE_WINDOW_S \
                    and seen[1] in self.messages:
                self.rest_stats["nonce_repeats"] += 1
                return 200, self.messages[seen[1]]
        b["_attachments"] = self.attachments_of(files)
        msg = self.make_message(c["id"], self.app_id, b)
        if b.get("enforce_nonce") and nonce is not None:
            self.nonces[(self.app_id, str(nonce))] = (mono(), msg["id"])
        await self.echo("MESSAGE_CREATE", self.with_guild(msg), c.get("guild_id"))
        return 200, msg

    def attachments_of(self, files):
        out = []
        for f in files:
            aid = self.sf.next()
            out.append({"id": aid, "filename": f["filename"] or "file", "size": f["size"],
                        "url": "https://cdn.discordapp.com/attachments/%s/%s" % (aid, f["filename"]),
                        "proxy_url": "https://media.discordapp.net/attachments/%s/%s" % (aid, f["filename"]),
                        "content_type": f["content_type"]})
        return out

    def message_or_404(self, cid, mid):
        m = self.messages.get(mid)
        if m is None or m["channel_id"] != cid:
            raise api_error(404, "Unknown Message", 10008)
        return m

    async def h_get_message(self, request, p, body, files):
        self.channel_or_404(p["channel_id"])
        return 200, self.message_or_404(p["channel_id"], p["message_id"])

    def apply_edit(self, m, body):
        for k in ("content", "embeds", "components", "flags", "allowed_mentions", "attachments"):
            if isinstance(body, dict) and k in body:
                if k == "embeds":
                    m[k] = [dict({kk: vv for kk, vv in e.items() if vv is not None}, type="rich")
                            for e in (body[k] or [])]
                elif k == "flags":
                    m[k] = (m.get("flags", 0) & (64 | 128)) | int(body[k] or 0)
                elif k != "allowed_mentions":
                    m[k] = body[k] if body[k] is not None else ([] if k != "content" else "")
        m["edited_timestamp"] = iso()

    async def h_patch_message(self, request, p, body, files):
        c = self.channel_or_404(p["channel_id"])
        m = self.message_or_404(c["id"], p["message_id"])
        if m["author"]["id"] != self.app_id:
            raise api_error(403, "Cannot edit a message authored by another user", 50005)
        self.apply_edit(m, body)
        await self.echo("MESSAGE_UPDATE", self.with_guild(m), c.get("guild_id"))
        return 200, m

    async def h_delete_message(self, request, p, body, files):
        c = self.channel_or_404(p["channel_id"])
        m = self.message_or_404(c["id"], p["message_id"])
        del self.messages[m["id"]]
        d = {"id": m["id"], "channel_id": c["id"]}
        if c.get("guild_id"):
            d["guild_id"] = c["guild_id"]
        await self.echo("MESSAGE_DELETE", d, c.get("guild_id"))
        return 204, None

    def check_app(self, p):
        if p["application_id"] != self.app_id:
            raise api_error(403, "Missing Access", 50001)
        if "guild_id" in p:
            self.guild_or_404(p["guild_id"])

    async def h_get_commands(self, request, p, body, files):
        self.check_app(p)
        if "guild_id" in p:
            return 200, self.commands_guild.get(p["guild_id"], [])
        return 200, self.commands_global

    def build_command(self, c, existing, guild_id):
        ctype = c.get("type", 1) or 1
        old = next((x for x in existing if x["name"] == c.get("name") and x["type"] == ctype), None)
        cmd = {
            "id": old["id"] if old else self.sf.next(), "application_id": self.app_id,
            "version": self.sf.next(), "default_member_permissions": c.get("default_member_permissions"),
            "type": ctype, "name": c.get("name"), "name_localizations": c.get("name_localizations"),
            "description": c.get("description", "") if ctype == 1 else "",
            "description_localizations": c.get("description_localizations"),
            "dm_permission": c.get("dm_permission", True) if guild_id is None else None,
            "contexts": c.get("contexts"), "integration_types": c.get("integration_types", [0]),
            "nsfw": bool(c.get("nsfw", False)),
        }
        if guild_id is not None:
            cmd["guild_id"] = guild_id
            cmd.pop("dm_permission")
        if c.get("options"):
            cmd["options"] = c["options"]
        return cmd

    async def h_put_commands(self, request, p, body, files):
        self.check_app(p)
        gid = p.get("guild_id")
        existing = self.commands_guild.get(gid, []) if gid else self.commands_global
        cmds = [self.build_command(c, existing, gid) for c in (body or [])]
        if gid:
            self.commands_guild[gid] = cmds
        else:
            self.commands_global = cmds
        return 200, cmds

    async def h_post_command(self, request, p, body, files):
        self.check_app(p)
        gid = p.get("guild_id")
        existing = self.commands_guild.setdefault(gid, []) if gid else self.commands_global
        cmd = self.build_command(body or {}, existing, gid)
        new = all(x["id"] != cmd["id"] for x in existing)
        existing[:] = [x for x in existing if x["id"] != cmd["id"]] + [cmd]
        return (201 if new else 200), cmd

    # --- interactions
    def interaction_or_404(self, iid, token):
        it = self.interactions.get(iid)
        if it is None or it["token"] != token:
            self.violation("unknown_interaction", interaction_id=iid)
            raise api_error(404, "Unknown interaction", 10062)
        return it

    async def h_interaction_callback(self, request, p, body, files):
        it = self.interaction_or_404(p["interaction_id"], p["interaction_token"])
        age = mono() - it["created_mono"]
        it["callback_after_ms"] = round(age * 1000, 1)
        if it["responded"]:
            self.violation("interaction_already_acknowledged", interaction_id=it["id"])
            raise api_error(400, "Interaction has already been acknowledged.", 40060)
        if age > self.cfg["interaction_deadline_s"]:
            self.violation("interaction_timeout", interaction_id=it["id"],
                           age_ms=round(age * 1000))
            raise api_error(404, "Unknown interaction", 10062)
        cb = body.get("type")
        data = body.get("data") or {}
        it["responded"] = True
        it["response_type"] = cb
        it["responded_mono"] = mono()
        msg = None
        if cb in (4, 5):
            flags = int(data.get("flags") or 0)
            if cb == 5:
                flags |= 128  # LOADING
            b = dict(data, flags=flags)
            if cb == 5:
                b["content"] = ""
            msg = self.make_message(it["channel_id"], self.app_id, b, mtype=20,
                                    extra=self.interaction_msg_extra(it))
            it["original"] = msg["id"]
            if not flags & 64:
                await self.echo("MESSAGE_CREATE", self.with_guild(msg), it["guild_id"])
        elif cb == 7 and it.get("message_id") in self.messages:
            msg = self.messages[it["message_id"]]
            self.apply_edit(msg, data)
            await self.echo("MESSAGE_UPDATE", self.with_guild(msg), it["guild_id"])
        if request.query.get("with_response", "").lower() == "true":
            return 200, {"interaction": {"id": it["id"], "type": it["type"],
                                         "response_message_id": msg["id"] if msg else None,
                                         "response_message_loading": cb == 5,
                                         "response_message_ephemeral": bool(msg and msg["flags"] & 64)},
                         "resource": {"type": cb, "message": msg} if msg else {"type": cb}}
        return 204, None

    def interaction_msg_extra(self, it):
        return {"webhook_id": self.app_id, "application_id": self.app_id,
                "interaction_metadata": {"id": it["id"], "type": it["type"],
                                         "user": self.users[it["user_id"]],
                                         "authorizing_integration_owners": {"0": it["guild_id"]}
                                         if it["guild_id"] else {"1": it["user_id"]},
                                         "name": it.get("name")},
                "interaction": {"id": it["id"], "type": it["type"], "name": it.get("name"),
                                "user": self.users[it["user_id"]]}}

    def webhook_interaction(self, p):
        if p["webhook_id"] != self.app_id or p["webhook_token"] not in self.interaction_tokens:
            raise api_error(404, "Unknown Webhook", 10015)
        it = self.interactions[self.interaction_tokens[p["webhook_token"]]]
        if mono() - it["created_mono"] > self.cfg["followup_valid_s"]:
            raise api_error(401, "Invalid Webhook Token", 50027)
        return it

    async def h_webhook_execute(self, request, p, body, files):
        it = self.webhook_interaction(p)
        if not it["responded"]:
            self.violation("followup_before_response", interaction_id=it["id"])
            raise api_error(404, "Unknown Webhook", 10015)
        b = dict(body or {})
        b["_attachments"] = self.attachments_of(files)
        msg = self.make_message(it["channel_id"], self.app_id, b, mtype=0,
                                extra=self.interaction_msg_extra(it))
        it["followups"].append(msg["id"])
        if not msg["flags"] & 64:
            await self.echo("MESSAGE_CREATE", self.with_guild(msg), it["guild_id"])
        return 200, msg

    def webhook_message(self, it, p):
        mid = p.get("message_id")
        if mid is None:  # @original
            mid = it.get("original")
        elif mid != it.get("original") and mid not in it["followups"]:
            mid = None
        if mid is None or mid not in self.messages:
            raise api_error(404, "Unknown Message", 10008)
        return self.messages[mid]

    async def h_webhook_get_message(self, request, p, body, files):
        it = self.webhook_interaction(p)
        return 200, self.webhook_message(it, p)

    async def h_webhook_patch_message(self, request, p, body, files):
        it = self.webhook_interaction(p)
        m = self.webhook_message(it, p)
        was_loading = bool(m["flags"] & 128)
        self.apply_edit(m, body)
        if was_loading:
            m["flags"] &= ~128
            if isinstance(body, dict) and body.get("flags"):
                m["flags"] |= int(body["flags"])
        if not m["flags"] & 64:
            await self.echo("MESSAGE_UPDATE", self.with_guild(m), it["guild_id"])
        return 200, m

    async def h_webhook_delete_message(self, request, p, body, files):
        it = self.webhook_interaction(p)
        m = self.webhook_message(it, p)
        del self.messages[m["id"]]
        if not m["flags"] & 64:
            d = {"id": m["id"], "channel_id": m["channel_id"]}
            if it["guild_id"]:
                d["guild_id"] = it["guild_id"]
            await self.echo("MESSAGE_DELETE", d, it["guild_id"])
        return 204, None

    # ------------------------------------------------------------ control API
    async def control_body(self, request):
        if request.can_read_body:
            try:
                b = await request.json()
                return b if isinstance(b, dict) else {"_list": b}
            except ValueError:
                raise web.HTTPBadRequest(text='{"error":"bad json"}', content_type="application/json")
        return {}

    def cj(self, obj, status=200):
        return web.Response(status=status, body=json.dumps(obj, default=str).encode(),
                            headers={"Content-Type": "application/json"})

    async def c_state(self, request):
        rest_log = request.query.get("rest_log", "1") != "0"
        since = int(request.query.get("since", "0"))
        full = request.query.get("delivered", "1") != "0"
        return self.cj({
            "port": self.port, "config": self.cfg, "token": self.token,
            "application_id": self.app_id, "bot_user_id": self.app_id,
            "session_start_limit": {"total": self.cfg["session_start_total"],
                                    "remaining": self.session_start_remaining,
                                    "max_concurrency": self.cfg["max_concurrency"]},
            "guilds": [{"id": g["id"], "name": g["name"], "owner_id": g["owner_id"],
                        "channels": [self.channels[c] for c in g["_channels"]],
                        "member_ids": g["_members"][:200], "member_count": len(g["_members"])}
                       for g in list(self.guilds.values())[:50]],
            "connections": [c.info() for c in self.conns.values()],
            "sessions": [s.info(full) for s in self.sessions.values()],
            "identifies": self.identifies, "resumes": self.resumes,
            "heartbeats": self.heartbeats[-2000:], "heartbeat_requests": self.hb_requests,
            "gateway_received": self.gw_received[-1000:],
            "rest": {"requests": self.requests[since:] if rest_log else [],
                     "request_count": len(self.requests),
                     "rate_limited": self.rate_limited, "stats": dict(self.rest_stats),
                     "global_sliding": self.sliding_state()},
            "commands": {"global": self.commands_global, "guild": self.commands_guild},
            "typing": self.typing,
            "actions": self.actions_state(),
            "interactions": [{k: v for k, v in it.items() if k != "created_mono"}
                             for it in self.interactions.values()],
            "blasts": [self.blast_info(b) for b in self.blasts.values()],
            "violations": self.violations,
        })

    async def c_violations(self, request):
        return self.cj({"violations": self.violations})

    async def c_reset_violations(self, request):
        old, self.violations = self.violations, []
        return self.cj({"ok": True, "violations": old})

    async def c_reset_logs(self, request):
        self.sliding.clear()
        self.sliding_max = 0
        self.sliding_max_at = None
        self.requests.clear()
        self.rate_limited.clear()
        self.rest_stats.clear()
        self.identifies.clear()
        self.resumes.clear()
        self.heartbeats.clear()
        self.hb_requests.clear()
        self.gw_received.clear()
        return self.cj({"ok": True})

    async def c_config_get(self, request):
        return self.cj(self.cfg)

    async def c_config(self, request):
        b = await self.control_body(request)
        unknown = [k for k in b if k not in self.cfg and k != "session_start_remaining"]
        if unknown:
            return self.cj({"error": "unknown knobs %s" % unknown}, 400)
        for k, v in b.items():
            if k == "session_start_remaining":
                self.session_start_remaining = int(v)
            elif k == "privileged_intents":
                bad = [x for x in v if x not in PRIVILEGED]
                if bad:
                    return self.cj({"error": "unknown privileged intents %s" % bad}, 400)
                self.cfg[k] = list(v)
            else:
                self.cfg[k] = v
        if "shards" in b and "min_shards" not in b:
            self.cfg["min_shards"] = self.cfg["shards"]  # as on the command line
        if "identify_window_s" in b:
            self.identify_last.clear()
        return self.cj({"ok": True, "config": self.cfg})

    async def c_script(self, request):
        b = await self.control_body(request)
        try:
            rx = re.compile(b["path"])
        except (KeyError, re.error) as e:
            return self.cj({"error": "bad path regex: %s" % e}, 400)
        responses = list(b.get("responses") or [])
        if not responses:
            return self.cj({"error": "responses must be a non-empty list"}, 400)
        self.scripts.append({"method": b.get("method", "*").upper(), "rx": rx,
                             "path": b["path"], "responses": responses})
        return self.cj({"ok": True, "queued": len(responses)})

    async def c_script_clear(self, request):
        self.scripts = []
        return self.cj({"ok": True})

    async def c_limits(self, request):
        b = await self.control_body(request)
        route = b.get("route", "")
        fam = None
        for r in ROUTES:
            if route in (r.family, r.method + " " + r.tpl):
                fam = r.family
        if fam is None:
            return self.cj({"error": "unknown route %r" % route}, 400)
        cur = self.limit_overrides.get(fam)
        self.limit_overrides[fam] = (int(b.get("limit", cur[0] if cur else 5)),
                                     float(b.get("window_s", cur[1] if cur else 5.0)))
        for key in [k for k in self.buckets if k[0] == fam]:
            del self.buckets[key]
        return self.cj({"ok": True, "family": fam, "limit": self.limit_overrides[fam]})

    async def c_requests(self, request):
        since = int(request.query.get("since", "0"))
        return self.cj({"requests": self.requests[since:], "next": len(self.requests)})

    async def c_messages(self, request):
        cid = request.query.get("channel_id")
        msgs = [m for m in self.messages.values() if cid is None or m["channel_id"] == cid]
        return self.cj({"messages": msgs})

    async def c_guilds(self, request):
        b = await self.control_body(request)
        g = self.add_guild(b.get("name", "Extra Guild"), int(b.get("channels", 3)),
                           int(b.get("members", 4)), guild_id=b.get("id"), shard=b.get("shard"))
        sess = self.session_for_guild(g["id"])
        if sess is not None and sess.ready and b.get("dispatch", True):
            await self.dispatch(sess, "GUILD_CREATE", self.guild_create_payload(g, sess))
        return self.cj({"ok": True, "guild": self.guild_public(g),
                        "channels": [self.channels[c] for c in g["_channels"]],
                        "member_ids": g["_members"]})

    async def c_dispatch(self, request):
        b = await self.control_body(request)
        if not b.get("t"):
            return self.cj({"error": "t is required"}, 400)
        sess = self.pick_session(b)
        if sess is None:
            return self.cj({"error": "no session for that target"}, 409)
        d = b.get("d")
        if b["t"] == "INTERACTION_CREATE" and isinstance(d, dict) and d.get("id") and d.get("token"):
            self.register_interaction(d)
        seq, delivered = await self.dispatch(sess, b["t"], d, force=bool(b.get("force")))
        return self.cj({"ok": True, "session_id": sess.id, "seq": seq, "delivered": delivered,
                        "filtered": seq is None})

    def register_interaction(self, d):
        it = {"id": d["id"], "token": d["token"], "type": d.get("type", 2),
              "channel_id": d.get("channel_id") or (d.get("channel") or {}).get("id"),
              "guild_id": d.get("guild_id"),
              "user_id": ((d.get("member") or {}).get("user") or d.get("user") or {}).get("id",
                                                                                         self.owner["id"]),
              "name": (d.get("data") or {}).get("name"),
              "message_id": (d.get("message") or {}).get("id"),
              "created_mono": mono(), "created_at": now_unix(), "responded": False,
              "original": None, "followups": []}
        if it["user_id"] not in self.users:
            u = (d.get("member") or {}).get("user") or d.get("user")
            if u:
                self.users[u["id"]] = u
        self.interactions[it["id"]] = it
        self.interaction_tokens[it["token"]] = it["id"]
        return it

    async def c_message(self, request):
        b = await self.control_body(request)
        cid = b.get("channel_id") or next(c for c in self.channels.values() if c["type"] == 0)["id"]
        ch = self.channels.get(cid)
        if ch is None:
            return self.cj({"error": "unknown channel"}, 400)
        g = self.guilds.get(ch.get("guild_id"))
        uid = b.get("author_id") or (g["_members"][2] if g and len(g["_members"]) > 2 else self.owner["id"])
        content = b.get("content", "hello")
        if b.get("mention_bot"):
            content = "<@%s> %s" % (self.app_id, content)
        msg = self.make_message(cid, uid, {"content": content, "embeds": b.get("embeds")})
        sess = self.session_for_shard(int(b["shard"])) if b.get("shard") is not None \
            else self.session_for_guild(ch.get("guild_id"))
        if sess is None:
            return self.cj({"error": "no session"}, 409)
        seq, delivered = await self.dispatch(sess, "MESSAGE_CREATE", self.with_guild(msg),
                                             force=bool(b.get("force")))
        return self.cj({"ok": True, "message": msg, "seq": seq, "delivered": delivered,
                        "session_id": sess.id, "shard": sess.shard[0]})

    async def c_interaction(self, request):
        b = await self.control_body(request)
        g = self.guilds.get(b.get("guild_id")) or next(iter(self.guilds.values()))
        cid = b.get("channel_id") or next(c for c in g["_channels"] if self.channels[c]["type"] == 0)
        ch = self.channels[cid]
        uid = b.get("user_id") or (g["_members"][2] if len(g["_members"]) > 2 else g["owner_id"])
        user = self.users[uid]
        iid = self.sf.next()
        token = "aW50ZXJhY3Rpb246" + base64.urlsafe_b64encode(
            ("%s:%s" % (iid, "%064x" % self.rng.getrandbits(256))).encode()).decode().rstrip("=") + \
            "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                    for _ in range(60))
        itype = int(b.get("type", 2))
        data = b.get("data")
        if data is None:
            name = b.get("name", "price")
            cmd = next((c for c in self.commands_guild.get(g["id"], []) + self.commands_global
                        if c["name"] == name), None)
            data = {"id": cmd["id"] if cmd else self.sf.next(), "name": name, "type": 1}
            if b.get("options"):
                data["options"] = b["options"]
            if cmd and cmd.get("guild_id"):
                data["guild_id"] = g["id"]
        if itype in (2, 4) and isinstance(data, dict) and "resolved" not in data:
            # Discord resolves the users of USER options: who they are
            # (bots included) and their member object in the guild.
            res = self.resolve_users(data.get("options") or [], g)
            if res["users"]:
                data = dict(data, resolved=res)
        d = {
            "app_permissions": "2248473465835073", "application_id": self.app_id,
            "attachment_size_limit": 10485760,
            "authorizing_integration_owners": {"0": g["id"]},
            "channel": {k: v for k, v in ch.items()}, "channel_id": cid, "context": 0,
            "data": data, "entitlement_sku_ids": [], "entitlements": [],
            "guild": {"features": [], "id": g["id"], "locale": "en-US"},
            "guild_id": g["id"], "guild_locale": "en-US", "id": iid, "locale": "en-US",
            "member": dict(self.member_obj(user, g),
                           permissions=str(b.get("permissions", "2248473465835073"))),
            "token": token, "type": itype, "version": 1,
        }
        if b.get("message"):
            d["message"] = b["message"]
        self.register_interaction(d)
        sess = self.session_for_guild(g["id"])
        if sess is None:
            return self.cj({"error": "no session"}, 409)
        seq, delivered = await self.dispatch(sess, "INTERACTION_CREATE", d)
        return self.cj({"ok": True, "id": iid, "token": token, "seq": seq,
                        "delivered": delivered, "interaction": d})

    def resolve_users(self, options, g, out=None):
        out = out if out is not None else {"users": {}, "members": {}}
        for o in options:
            if o.get("type") in (1, 2):
                self.resolve_users(o.get("options") or [], g, out)
            elif o.get("type") == 6 and str(o.get("value")) in self.users:
                uid = str(o["value"])
                out["users"][uid] = dict(self.users[uid])
                if uid in g["_members"]:
                    out["members"][uid] = self.member_obj(self.users[uid], g, with_user=False)
        return out

    async def c_reconnect(self, request):
        b = await self.control_body(request)
        conn = self.pick_conn(b)
        if conn is None:
            return self.cj({"error": "no connection"}, 409)
        await conn.send_op(7, None)
        return self.cj({"ok": True, "conn": conn.id})

    async def c_invalid_session(self, request):
        b = await self.control_body(request)
        conn = self.pick_conn(b)
        if conn is None:
            return self.cj({"error": "no connection"}, 409)
        resumable = bool(b.get("resumable", b.get("d", False)))
        if not resumable and conn.session is not None:
            conn.session.invalid = True
            conn.session.invalid_reason = "op 9 d:false sent"
        if conn.session is not None:
            conn.identified = False
            conn.resumed = False
        await conn.send_op(9, resumable)
        return self.cj({"ok": True, "conn": conn.id})

    async def c_close(self, request):
        b = await self.control_body(request)
        conn = self.pick_conn(b)
        if conn is None:
            return self.cj({"error": "no connection"}, 409)
        code = int(b.get("code", 4000))
        if b.get("invalidate") and conn.session is not None:
            conn.session.invalid = True
            conn.session.invalid_reason = "closed with %d (invalidate)" % code
        if b.get("invalidate") is False:
            conn.keep_session = True
        asyncio.ensure_future(conn.close(code, b.get("reason")))
        return self.cj({"ok": True, "conn": conn.id, "code": code})

    async def c_drop(self, request):
        b = await self.control_body(request)
        conn = self.pick_conn(b)
        if conn is None:
            return self.cj({"error": "no connection"}, 409)
        conn.drop()
        return self.cj({"ok": True, "conn": conn.id})

    async def c_acks(self, request):
        b = await self.control_body(request)
        enabled = bool(b.get("enabled", True))
        if b.get("all"):
            self.cfg["acks_default"] = enabled
            for c in self.conns.values():
                c.acks = enabled
            return self.cj({"ok": True})
        conn = self.pick_conn(b)
        if conn is None:
            return self.cj({"error": "no connection"}, 409)
        conn.acks = enabled
        return self.cj({"ok": True, "conn": conn.id})

    async def c_heartbeat_request(self, request):
        b = await self.control_body(request)
        conn = self.pick_conn(b)
        if conn is None:
            return self.cj({"error": "no connection"}, 409)
        conn.hb_requested_mono = mono()
        self.hb_requests.append({"conn": conn.id, "at": now_unix(), "answered_ms": None})
        await conn.send_op(1, None)
        if conn.watchdog:
            conn.watchdog.cancel()
            conn.watchdog = asyncio.ensure_future(self.heartbeat_watchdog(conn))
        return self.cj({"ok": True, "conn": conn.id})

    async def c_split(self, request):
        b = await self.control_body(request)
        count = b.get("count", 1)
        count = -1 if count is None else int(count)
        parts = int(b.get("parts", 2))
        mode = b.get("mode", "messages")
        if mode not in ("messages", "fragments"):
            return self.cj({"error": "mode must be messages or fragments"}, 400)
        if b.get("default"):
            self.split_default = {"count": count, "parts": parts, "mode": mode}
            return self.cj({"ok": True})
        conn = self.pick_conn(b)
        if conn is None:
            return self.cj({"error": "no connection"}, 409)
        if mode == "messages" and not conn.compress:
            return self.cj({"error": "messages mode needs compress=zlib-stream"}, 400)
        conn.split_count, conn.split_parts, conn.split_mode = count, parts, mode
        return self.cj({"ok": True, "conn": conn.id})

    async def c_expire_session(self, request):
        b = await self.control_body(request)
        sess = self.pick_session(b)
        if sess is None:
            return self.cj({"error": "no session"}, 409)
        sess.invalid = True
        sess.invalid_reason = "expired by control"
        return self.cj({"ok": True, "session_id": sess.id})

    async def c_blast(self, request):
        b = await self.control_body(request)
        sess = self.sessions.get(b.get("session_id")) if b.get("session_id") else \
            self.session_for_shard(int(b.get("shard", 0)))
        if sess is None or not sess.ready:
            return self.cj({"error": "no READY session for that shard"}, 409)
        if b.get("template", "MESSAGE_CREATE") != "MESSAGE_CREATE":
            return self.cj({"error": "only template MESSAGE_CREATE is supported"}, 400)
        blast = self.start_blast(dict(b, session_id=sess.id))
        if b.get("wait"):
            await blast["_task"]
        return self.cj(dict(self.blast_info(blast), ok=True))

    async def c_blast_get(self, request):
        b = self.blasts.get(request.match_info["bid"])
        if b is None:
            return self.cj({"error": "unknown blast"}, 404)
        return self.cj(self.blast_info(b))

    async def c_wait(self, request):
        what = request.query.get("for", "identify")
        count = int(request.query.get("count", "1"))
        timeout = float(request.query.get("timeout", "10"))
        src = {"identify": lambda: len(self.identifies),
               "ready": lambda: sum(1 for i in self.identifies if i.get("result") == "ready"),
               "resume": lambda: len(self.resumes),
               "resumed": lambda: sum(1 for r in self.resumes if r.get("result") == "resumed"),
               "heartbeat": lambda: len(self.heartbeats),
               "request": lambda: len(self.requests),
               "connection": lambda: len(self.conns),
               "violation": lambda: len(self.violations)}.get(what)
        if src is None:
            return self.cj({"error": "unknown 'for'"}, 400)
        deadline = mono() + timeout
        while src() < count:
            left = deadline - mono()
            if left <= 0:
                return self.cj({"ok": False, "count": src()}, 408)
            fut = asyncio.get_event_loop().create_future()
            self.waiters.append(fut)
            try:
                await asyncio.wait_for(fut, min(left, 0.5))
            except asyncio.TimeoutError:
                pass
        return self.cj({"ok": True, "count": src()})

    # ------------------------------------------------------------ app
    def make_app(self):
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for p in ("/gateway", "/gateway/", "/resume", "/resume/"):
            app.router.add_get(p, self.ws_handler)
        c = app.router
        c.add_get("/_fake/state", self.c_state)
        c.add_get("/_fake/violations", self.c_violations)
        c.add_post("/_fake/reset_violations", self.c_reset_violations)
        c.add_post("/_fake/reset_logs", self.c_reset_logs)
        c.add_get("/_fake/config", self.c_config_get)
        c.add_post("/_fake/config", self.c_config)
        c.add_post("/_fake/rest/script", self.c_script)
        c.add_post("/_fake/rest/script/clear", self.c_script_clear)
        c.add_post("/_fake/rest/limits", self.c_limits)
        c.add_get("/_fake/rest/requests", self.c_requests)
        c.add_get("/_fake/messages", self.c_messages)
        c.add_post("/_fake/guilds", self.c_guilds)
        c.add_post("/_fake/gateway/dispatch", self.c_dispatch)
        c.add_post("/_fake/gateway/message", self.c_message)
        c.add_post("/_fake/gateway/interaction", self.c_interaction)
        c.add_post("/_fake/gateway/reconnect", self.c_reconnect)
        c.add_post("/_fake/gateway/invalid_session", self.c_invalid_session)
        c.add_post("/_fake/gateway/close", self.c_close)
        c.add_post("/_fake/gateway/drop", self.c_drop)
        c.add_post("/_fake/gateway/acks", self.c_acks)
        c.add_post("/_fake/gateway/heartbeat_request", self.c_heartbeat_request)
        c.add_post("/_fake/gateway/split", self.c_split)
        c.add_post("/_fake/gateway/expire_session", self.c_expire_session)
        c.add_post("/_fake/gateway/blast", self.c_blast)
        c.add_get("/_fake/gateway/blast/{bid}", self.c_blast_get)
        c.add_get("/_fake/wait", self.c_wait)
        self.add_action_routes(c)
        c.add_route("*", "/api/{tail:.*}", self.rest_entry)
        app.on_response_prepare.append(self._server_header)
        return app

    @staticmethod
    async def _server_header(request, response):
        if request.path.startswith("/api/"):
            response.headers["Server"] = "cloudflare"
            response.headers.setdefault("Via", "1.1 google")


def default_token(app_id):
    head = base64.b64encode(app_id.encode()).decode().rstrip("=")
    return head + ".GfAk3d." + "souk-fake-token-" + hashlib.sha1(app_id.encode()).hexdigest()[:22]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--heartbeat-interval", type=int, default=41250, help="ms (Discord: 41250)")
    ap.add_argument("--heartbeat-grace", type=int, default=None,
                    help="ms past the interval before closing 4009 (default max(1000, interval/10))")
    ap.add_argument("--shards", type=int, default=1, help="shards in GET /gateway/bot")
    ap.add_argument("--min-shards", type=int, default=None,
                    help="IDENTIFY with fewer total shards closes 4011 (default: --shards)")
    ap.add_argument("--max-concurrency", type=int, default=1)
    ap.add_argument("--identify-window", type=float, default=5.0, help="seconds (Discord: 5)")
    ap.add_argument("--token", default=None)
    ap.add_argument("--application-id", default="1186672118224076810")
    ap.add_argument("--guilds", type=int, default=1)
    ap.add_argument("--privileged-intents", default="GUILD_MEMBERS,GUILD_PRESENCES,MESSAGE_CONTENT",
                    help="comma list of privileged intents enabled for the app ('' for none)")
    ap.add_argument("--session-timeout", type=float, default=180.0,
                    help="seconds a disconnected session stays resumable")
    ap.add_argument("--avoidable-grace-ms", type=float, default=20.0,
                    help="a request on another connection arriving within this long after a "
                         "Remaining: 0 response may not have seen it (default 20)")
    ap.add_argument("--spec", default=DEFAULT_SPEC)
    ap.add_argument("--no-echo", action="store_true",
                    help="don't dispatch MESSAGE_CREATE/UPDATE/DELETE for the bot's own REST writes")
    ap.add_argument("--split-frames", type=int, default=0,
                    help="split every payload into this many WebSocket messages")
    ap.add_argument("--split-mode", default="messages", choices=("messages", "fragments"))
    ap.add_argument("--blast-on-ready", type=int, default=0, metavar="COUNT",
                    help="after READY+GUILD_CREATEs on --blast-shard, blast COUNT MESSAGE_CREATEs")
    ap.add_argument("--blast-shard", type=int, default=0)
    ap.add_argument("--blast-guilds", type=int, default=1)
    ap.add_argument("--blast-channels-per-guild", type=int, default=5)
    ap.add_argument("--blast-members-per-guild", type=int, default=50)
    ap.add_argument("--global-window-mode", default="first", choices=("first", "aligned", "sliding"),
                    help="global REST limit windows: opened by the first request after the "
                         "last one closed, or aligned on the fake's clock (see global_window)")
    ap.add_argument("--zstd-level", type=int, default=3,
                    help="compression level of zstd-stream connections")
    ap.add_argument("--zstd-window-log", type=int, default=18,
                    help="zstd-stream window: 2^N bytes of history (18: 256 KiB; Discord does "
                         "not document its own)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args(argv)
    a.privileged_intents = [x for x in a.privileged_intents.split(",") if x]
    for x in a.privileged_intents:
        if x not in PRIVILEGED:
            ap.error("unknown privileged intent %s" % x)
    if a.token is None:
        a.token = default_token(a.application_id)
    return a


async def amain(args):
    fake = FakeDiscord(args)
    app = fake.make_app()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, shutdown_timeout=1.0)
    await site.start()
    fake.port = site._server.sockets[0].getsockname()[1]
    LOG.info("listening on http://%s:%d (token %s...)", args.host, fake.port, args.token[:10])
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % fake.port)
        os.replace(tmp, args.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    LOG.info("stopping")
    for c in list(fake.conns.values()):
        if c.live:
            c.drop()
    await runner.cleanup()


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        stream=sys.stderr,
                        format="%(asctime)s fake_discord %(levelname)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
