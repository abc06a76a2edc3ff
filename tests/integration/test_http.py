"""The embedded HTTP server of the real binary: liveness, readiness and
/metrics in strict Prometheus text format, with figures that move as the
bot works."""
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

import pytest

from soukproc import sanitized

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "fakes"))
import promparse  # noqa: E402

WAIT = 40 if sanitized() else 15
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_port(s):
    line = s.wait_log("listening on", timeout=WAIT)[0]
    return int(re.search(r":(\d+)\"?$", line.rstrip('"')).group(1))


def get(port, path, headers=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=headers or {})
    try:
        with _OPENER.open(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def scrape(port):
    status, headers, body = get(port, "/metrics")
    assert status == 200, body
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return promparse.parse(body)


def test_health_ready_and_metrics_move(fake_discord, souk_factory):
    fake = fake_discord
    s = souk_factory(fake)
    port = http_port(s)
    assert get(port, "/healthz")[0] == 200
    fake.wait("ready", timeout=WAIT)
    deadline = time.monotonic() + WAIT
    while get(port, "/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    status, _, body = get(port, "/readyz")
    assert status == 200 and "gateway" in body and "store" in body, body

    before = scrape(port)
    ev0 = promparse.value(before, "souk_events_dispatched_total")
    sent0 = promparse.value(before, "souk_rest_sent_total")
    assert promparse.value(before, "souk_gateway_shards_ready") == 1
    assert promparse.value(before, "process_resident_memory_bytes") > 1e6
    assert promparse.value(before, "souk_store_up") == 1
    # SQLite's own memory, part of the heap (the memory benchmark reads it).
    sqlite_mem = promparse.value(before, "souk_store_sqlite_memory_bytes")
    assert sqlite_mem > 0
    # glibc's counters do not see the heap of a sanitizer's allocator.
    if not sanitized():
        assert sqlite_mem < promparse.value(before, "souk_process_heap_bytes")
    assert promparse.value(before, "souk_cache_redis_up") == 0
    assert promparse.value(before, "souk_task_runs_total", task="store.probe") >= 0

    for _ in range(3):
        fake.message(content="!ping")
    fake.wait_for(lambda st: sum(1 for r in st["rest"]["requests"] if r["method"] == "POST")
                  >= 3, timeout=WAIT, what="three replies")
    after = scrape(port)
    assert promparse.value(after, "souk_events_dispatched_total") >= ev0 + 3
    assert promparse.value(after, "souk_rest_sent_total") >= sent0 + 3
    posts = [smp for fam in after.values() for smp in fam.samples
             if smp.name == "souk_rest_responses_total"
             and smp.labels.get("route") == "POST /channels/{id}/messages"
             and smp.labels.get("status") == "200"]
    assert posts and posts[0].value >= 3

    # The gateway going away makes the process unready, then ready again.
    fake.drop()
    fake.wait("resumed", timeout=WAIT)
    deadline = time.monotonic() + WAIT
    while get(port, "/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert get(port, "/readyz")[0] == 200
    assert promparse.value(scrape(port), "souk_gateway_resumes_total", shard="0") >= 1

    # Errors are plain: unknown path 404, wrong method 405.
    assert get(port, "/nothing")[0] == 404
    s.stop()
    # The access log names requests but never a query string.
    assert "GET /metrics 200" in s.log_text()


def test_metrics_need_loopback_or_token(fake_discord, souk_factory):
    fake = fake_discord
    from conftest import souk_config
    cfg = souk_config(fake, "data", http={"port": 0, "bind": "127.0.0.1"})
    s = souk_factory(fake, config=cfg, env={"SOUK_HTTP_TOKEN": "metrics-secret-token-123"})
    port = http_port(s)
    # Loopback may scrape without the token.
    assert get(port, "/metrics")[0] == 200
    s.stop()
    assert "metrics-secret-token-123" not in s.log_text()


@pytest.mark.fake_discord_args("--heartbeat-interval", "1000", "--identify-window", "0.5")
def test_health_report_route(fake_discord, souk_factory):
    fake = fake_discord
    s = souk_factory(fake)
    port = http_port(s)
    fake.wait("ready", timeout=WAIT)
    fake.wait("heartbeat", count=1, timeout=WAIT)
    deadline = time.monotonic() + WAIT
    while True:
        status, _, body = get(port, "/health")
        if status == 200 and "gateway" in body and "shard(s) ready" in body:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    for component in ("gateway", "rest", "store", "cache", "memory", "tasks"):
        assert component in body, body
    # A lost session is critical until a new one is ready, and the route
    # says so with 503: op 9 d:false makes souk wait 1-5 s before it
    # identifies again.
    fake.invalid_session(resumable=False)
    deadline = time.monotonic() + 5
    seen = None
    while time.monotonic() < deadline:
        status, _, body = get(port, "/health")
        if status == 503:
            seen = body
            break
        time.sleep(0.05)
    assert seen and "CRITICAL" in seen and "gateway" in seen, seen
    fake.wait("ready", count=2, timeout=WAIT)


def _signed(priv, body, ts=None):
    ts = str(int(time.time())) if ts is None else ts
    sig = priv.sign(ts.encode() + body).hex()
    return {"X-Signature-Ed25519": sig, "X-Signature-Timestamp": ts,
            "Content-Type": "application/json"}


def signing_key():
    """An application's Ed25519 key pair: (private key, public key in hex)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    priv = Ed25519PrivateKey.generate()
    return priv, priv.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw).hex()


def start_with_public_key(fake, souk_factory, **http):
    """souk serving POST /interactions for a fresh key: (souk, port, key)."""
    from conftest import souk_config
    priv, pub = signing_key()
    cfg = souk_config(fake, "data", http=dict({"port": 0}, **http),
                      discord={"api_base": fake.base_url, "public_key": pub})
    s = souk_factory(fake, config=cfg)
    return s, http_port(s), priv


def post(port, path, body, headers):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 headers=headers, method="POST")
    try:
        with _OPENER.open(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_http_interactions_endpoint_verifies_signatures(fake_discord, souk_factory):
    """Discord probes the endpoint with bad signatures and must get 401;
    a signed PING gets PONG."""
    fake = fake_discord
    s, port, priv = start_with_public_key(fake, souk_factory)
    ping = b'{"type":1,"id":"1","application_id":"2","token":"t","version":1}'
    status, body = post(port, "/interactions", ping, _signed(priv, ping))
    assert status == 200 and json.loads(body) == {"type": 1}, body
    # Another key's signature, a tampered body, missing headers, a stale
    # timestamp: all 401.
    other, _ = signing_key()
    assert post(port, "/interactions", ping, _signed(other, ping))[0] == 401
    assert post(port, "/interactions", ping + b" ", _signed(priv, ping))[0] == 401
    assert post(port, "/interactions", ping, {"Content-Type": "application/json"})[0] == 401
    old = str(int(time.time()) - 3600)
    assert post(port, "/interactions", ping, _signed(priv, ping, old))[0] == 401
    assert s.stop() == 0


def test_interaction_without_a_user_is_refused(fake_discord, souk_factory):
    """A signed interaction naming no user would run (and trade) as user 0:
    POST /interactions answers 400, and the same from the gateway is
    ignored."""
    fake = fake_discord
    s, port, priv = start_with_public_key(fake, souk_factory)
    fake.wait("ready", timeout=WAIT)
    s.wait_log("shard 0 ready", timeout=WAIT)
    app_id = fake.state()["application_id"]

    def command(n, **who):
        return json.dumps(dict({
            "type": 2, "id": str(1300000000000000200 + n), "application_id": app_id,
            "token": "tok%d" % n, "version": 1, "channel_id": "1300000000000000003",
            "data": {"id": "1", "name": "ping", "type": 1}}, **who)).encode()

    user = {"id": "1300000000000000004", "username": "x"}
    nobody = [
        {},                                                    # neither member nor user
        {"guild_id": "1300000000000000002", "member": {"permissions": "0"}},  # member, no user
        {"user": {"username": "x"}},                           # a user without an id
        {"user": {"id": "0", "username": "x"}},                # the id 0 itself
        {"user": {"id": "not-a-number", "username": "x"}},
        # A guild interaction names its user in member: a top-level user
        # beside a member without one does not count.
        {"guild_id": "1300000000000000002", "member": {"permissions": "0"}, "user": user},
    ]
    for n, who in enumerate(nobody):
        body = command(n, **who)
        status, text = post(port, "/interactions", body, _signed(priv, body))
        assert (status, text) == (400, "interaction without a user\n"), (who, status, text)
    # The same command naming its user runs, in a DM and in a guild.
    for n, who in enumerate([{"user": user},
                             {"guild_id": "1300000000000000002",
                              "member": {"user": user, "permissions": "0"}}]):
        body = command(10 + n, **who)
        status, text = post(port, "/interactions", body, _signed(priv, body))
        assert status == 200 and json.loads(text)["data"]["content"].startswith("pong"), text

    # From the gateway: a realistic interaction with its member taken out.
    d = fake.interaction(name="ping")["interaction"]
    d = dict(d, id="1300000000000000299", token=d["token"] + "x")
    del d["member"]
    fake.allow_violations("interaction_timeout")
    fake.dispatch("INTERACTION_CREATE", d)
    s.wait_log("an interaction that names no user", timeout=WAIT)
    time.sleep(0.5)
    assert not [r for r in fake.requests() if "/interactions/1300000000000000299/" in r["path"]]
    assert s.stop() == 0
