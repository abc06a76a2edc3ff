"""Shards that move: a shard's session is kept in Redis after every event,
so the process that runs the shard next RESUMEs it, without a new
IDENTIFY and without losing or repeating events, whether the one before
drained (SIGTERM: close 4000) or was killed outright.

Two shards, one per process, on the fake Discord (which spreads its
guilds over the shards by Discord's formula), one throwaway redis-server.
The fake buffers the events of a session while nobody is connected and
replays those after the RESUME's seq, as Discord does."""
import signal
import time

import pytest

from conftest import souk_config
from modtools import command, http_port, metric, metrics
from redisproc import RedisServer, available
from soukproc import sanitized

WAIT = 60 if sanitized() else 20
COUNT = 2
MANAGE_CHANNELS = 1 << 4
BAN_MEMBERS = 1 << 2
BOT_PERMS = 2248473465835073  # the fake bot role's default: neither of those

pytestmark = [
    pytest.mark.skipif(not available(), reason="redis-server not installed"),
    pytest.mark.fake_discord_args("--shards", str(COUNT), "--max-concurrency", str(COUNT),
                                  "--guilds", "4", "--heartbeat-interval", "5000"),
]


@pytest.fixture
def redis_server(tmp_path):
    r = RedisServer(tmp_path)
    r.start()
    try:
        yield r
    finally:
        r.stop()


def shard_of(gid):
    return (int(gid) >> 22) % COUNT


def channel_of_shard(fake, shard):
    for g in fake.state(rest_log=False)["guilds"]:
        if shard_of(g["id"]) == shard:
            return next(c["id"] for c in g["channels"] if c["type"] == 0)
    raise AssertionError("no guild on shard %d" % shard)


def start(souk_factory, fake, tmp_path, redis, name, shard, **extra):
    cfg = souk_config(fake, tmp_path / name / "data",
                      discord={"shards": {"count": COUNT, "first": shard, "last": shard}},
                      **extra)
    return souk_factory(fake, name=name, config=cfg, env={"SOUK_CACHE_URL": redis.url})


def ping(fake, channel):
    r = fake.message(content="!ping", channel_id=channel)
    return r["message"]["id"], r["seq"]


def answers(fake, channel):
    """{triggering message id: replies the bot posted to it}, from the
    messages the fake holds (a repeat that enforce_nonce caught is not one)."""
    out = {}
    for m in fake.messages(channel_id=channel):
        ref = (m.get("message_reference") or {}).get("message_id")
        if ref and m["author"]["id"] == fake.bot_user_id:
            out[ref] = out.get(ref, 0) + 1
    return out


def wait_answered(fake, channel, ids):
    deadline = time.monotonic() + WAIT
    while True:
        got = answers(fake, channel)
        if all(got.get(i) for i in ids):
            return got
        if time.monotonic() > deadline:
            raise AssertionError("unanswered: %s" % [i for i in ids if not got.get(i)])
        time.sleep(0.05)


def session_of(fake, shard):
    return next(s for s in fake.state(rest_log=False)["sessions"] if s["shard"][0] == shard)


def saved(redis, shard):
    return redis.hgetall("souk:gw:%d:%d" % (COUNT, shard))


def wait_saved_seq(redis, shard, seq):
    deadline = time.monotonic() + WAIT
    while int(saved(redis, shard).get("seq", 0)) < seq:
        assert time.monotonic() < deadline, saved(redis, shard)
        time.sleep(0.05)


def identifies_of(fake, shard):
    return [i for i in fake.state(rest_log=False)["identifies"] if i["shard"][0] == shard]


def boot_both(fake, souk_factory, tmp_path, redis):
    p0 = start(souk_factory, fake, tmp_path, redis, "p0", 0)
    p1 = start(souk_factory, fake, tmp_path, redis, "p1", 1)
    fake.wait("ready", count=COUNT, timeout=WAIT)
    for p in (p0, p1):
        p.wait_log("keeping shard sessions in redis", timeout=WAIT)
    return p0, p1


def moved_shard_answers_everything(fake, souk_factory, tmp_path, redis, stop):
    p0, p1 = boot_both(fake, souk_factory, tmp_path, redis)
    ch0, ch1 = channel_of_shard(fake, 0), channel_of_shard(fake, 1)
    before = [ping(fake, ch0) for _ in range(3)]
    wait_answered(fake, ch0, [m for m, _ in before])
    sess = session_of(fake, 0)
    # Redis holds the session and the last event handled: the echo of the
    # last reply (MESSAGE_CREATE of the bot's own message) comes after it.
    wait_saved_seq(redis, 0, before[-1][1])
    time.sleep(0.3)
    handled = session_of(fake, 0)["seq"]
    wait_saved_seq(redis, 0, handled)
    s = saved(redis, 0)
    assert s["sid"] == sess["session_id"] and s["url"].endswith("/resume")

    stop(p0)
    # Nobody runs shard 0 now: Discord keeps its events for the session.
    during = [ping(fake, ch0) for _ in range(4)]
    other = [ping(fake, ch1) for _ in range(2)]
    fake.wait_for(lambda st: not session_of(fake, 0)["connected"], timeout=WAIT,
                  what="shard 0 disconnected")

    p0b = start(souk_factory, fake, tmp_path, redis, "p0b", 0)
    p0b.wait_log("shard 0: resuming the session", timeout=WAIT)
    after = [ping(fake, ch0) for _ in range(2)]
    got = wait_answered(fake, ch0, [m for m, _ in before + during + after])
    wait_answered(fake, ch1, [m for m, _ in other])
    time.sleep(0.5)
    got = answers(fake, ch0)
    assert all(got[m] == 1 for m, _ in before + during + after), got
    st = fake.state(rest_log=False)
    # One IDENTIFY per shard in the whole run: shard 0 resumed elsewhere.
    assert len(identifies_of(fake, 0)) == 1 and len(identifies_of(fake, 1)) == 1
    res = [r for r in st["resumes"] if r.get("session_id") == sess["session_id"]]
    assert res and res[-1]["result"] == "resumed", res
    # It resumed exactly after the last event p0 handled; the events sent
    # meanwhile were replayed, and nothing before them.
    assert res[-1]["seq"] == handled, (res[-1], handled)
    # (the commands sent just after the start may be among them).
    rep = res[-1]["replayed"]
    assert len(rep) >= 4 and rep == list(range(handled + 1, handled + 1 + len(rep))), rep
    assert saved(redis, 0)["owner"] != s["owner"]
    assert p1.proc.poll() is None and p0b.proc.poll() is None
    return p0, p0b, p1, st


def test_drained_process_hands_its_shard_on(fake_discord, souk_factory, tmp_path, redis_server):
    """SIGTERM drains: the session is closed with 4000 (never 1000, which
    would end it), the last seq is in Redis, and the next process resumes
    from it: every command answered exactly once, no event handled twice."""
    fake = fake_discord

    def drain(p):
        assert p.stop(signal.SIGTERM) == 0, p.log_text()[-3000:]

    p0, p0b, p1, st = moved_shard_answers_everything(fake, souk_factory, tmp_path,
                                                     redis_server, drain)
    closed = [c for c in st["connections"] if c["shard"] == 0 and c["closed_by"] == "client"]
    assert closed and all(c["close_code"] == 4000 for c in closed), closed
    # Drained, not killed: no event was handled twice, so no reply was
    # even attempted twice.
    assert st["rest"]["stats"].get("nonce_repeats", 0) == 0
    # Shard 0's guilds came with its session (a RESUME brings no
    # GUILD_CREATE): p0b counts them itself, and only shard 1's from Redis.
    guilds = fake.state(rest_log=False)["guilds"]
    on0 = [g for g in guilds if shard_of(g["id"]) == 0]
    fake.wait_for(lambda _st: metric(metrics(http_port(p0b)), "souk_gateway_other_guilds")
                  == len(guilds) - len(on0),
                  timeout=WAIT, what="p0b counting shard 1's guilds from redis")
    # The operator sees it: /metrics and /admin scalability.
    text = metrics(http_port(p0b))
    assert metric(text, "souk_gateway_handoff_guilds_restored_total") == len(on0)
    assert metric(text, "souk_gateway_handoff_resumed_total") == 1
    assert metric(text, "souk_gateway_handoff_redis_up") == 1
    assert metric(text, "souk_gateway_handoff_writes_total") >= 1
    assert metric(text, "souk_gateway_identifies_total", 'shard="0"') == 0
    p0b.wait_log("owner-only commands answer", timeout=WAIT)
    g0 = next(g for g in fake.state(rest_log=False)["guilds"] if shard_of(g["id"]) == 0)
    text = command(fake, "admin", "scalability", guild=g0)
    assert "shard hand-off: redis up" in text and "1 resumed a session handed on" in text, text
    # Draining again: the new process hands the shard on the same way.
    assert p0b.stop(signal.SIGTERM) == 0
    assert p1.stop(signal.SIGTERM) == 0
    codes = [c["close_code"] for c in fake.state(rest_log=False)["connections"]
             if c["closed_by"] == "client"]
    assert codes and set(codes) == {4000}, codes


def test_drain_sends_the_replies_events_handled_still_owe(fake_discord, souk_factory, tmp_path,
                                                          redis_server):
    """A drained process has saved the seq of every event it dispatched, so
    the next process resumes after them: the replies those events still owe
    (here 3 waiting for the channel's bucket, 5 per 5 s) must go out before
    the drain, not be dropped by it."""
    fake = fake_discord
    core = {"shutdown_grace": "15s"}
    p0 = start(souk_factory, fake, tmp_path, redis_server, "p0", 0, core=core)
    fake.wait("ready", timeout=WAIT)
    p0.wait_log("keeping shard sessions in redis", timeout=WAIT)
    ch0 = channel_of_shard(fake, 0)
    msgs = [ping(fake, ch0)[0] for _ in range(8)]
    fake.wait_for(lambda _st: sum(answers(fake, ch0).values()) >= 5, timeout=WAIT,
                  what="the bucket's first 5 replies")
    assert sum(answers(fake, ch0).values()) < 8
    assert p0.stop(signal.SIGTERM) == 0
    p0b = start(souk_factory, fake, tmp_path, redis_server, "p0b", 0)
    p0b.wait_log("shard 0: resuming the session", timeout=WAIT)
    got = wait_answered(fake, ch0, msgs)
    time.sleep(0.5)
    assert all(got[m] == 1 for m in msgs), got
    assert len(identifies_of(fake, 0)) == 1
    assert "replies of the events handled go out before the drain" in p0.log_text()
    assert p0b.stop(signal.SIGTERM) == 0


def test_killed_process_shard_resumes_with_no_lost_event(fake_discord, souk_factory, tmp_path,
                                                         redis_server):
    """kill -9: nothing is closed, the session times out on Discord's side
    only later; the restarted process resumes it from Redis and answers
    the commands sent while no process ran the shard."""
    fake = fake_discord

    def kill(p):
        p.kill()

    moved_shard_answers_everything(fake, souk_factory, tmp_path, redis_server, kill)


def test_redis_down_at_start_identifies_then_hands_on(fake_discord, souk_factory, tmp_path,
                                                      redis_server):
    """Without Redis when it starts, a process identifies as before (one
    warning) and writes its session once Redis is back, so it can still
    hand the shard on."""
    fake = fake_discord
    redis_server.stop()
    p0 = start(souk_factory, fake, tmp_path, redis_server, "p0", 0)
    fake.wait("ready", timeout=WAIT)
    p0.wait_log("redis unreachable", timeout=WAIT)
    ch0 = channel_of_shard(fake, 0)
    first = ping(fake, ch0)
    wait_answered(fake, ch0, [first[0]])
    redis_server.start()
    p0.wait_log("redis back", timeout=WAIT)
    wait_saved_seq(redis_server, 0, first[1])
    assert p0.stop(signal.SIGTERM) == 0
    during = ping(fake, ch0)
    p0b = start(souk_factory, fake, tmp_path, redis_server, "p0b", 0)
    p0b.wait_log("shard 0: resuming the session", timeout=WAIT)
    wait_answered(fake, ch0, [during[0]])
    assert len(identifies_of(fake, 0)) == 1
    assert p0b.stop(signal.SIGTERM) == 0


def test_two_processes_given_one_shard_the_later_wins(fake_discord, souk_factory, tmp_path,
                                                      redis_server):
    """A second process started for a shard that one still runs (a
    replacement started before the old one stopped, or overlapping
    ranges) claims it; the first learns it at its next write and stops
    the shard with 4000, leaving the session to the second."""
    fake = fake_discord
    p0 = start(souk_factory, fake, tmp_path, redis_server, "p0", 0)
    fake.wait("ready", timeout=WAIT)
    p0.wait_log("keeping shard sessions in redis", timeout=WAIT)
    ch0 = channel_of_shard(fake, 0)
    wait_answered(fake, ch0, [ping(fake, ch0)[0]])
    p0b = start(souk_factory, fake, tmp_path, redis_server, "p0b", 0)
    p0b.wait_log("shard 0: resuming the session", timeout=WAIT)
    p0.wait_log("was claimed by", timeout=WAIT)
    msgs = [ping(fake, ch0) for _ in range(3)]
    wait_answered(fake, ch0, [m for m, _ in msgs])
    time.sleep(0.5)
    got = answers(fake, ch0)
    assert all(got[m] == 1 for m, _ in msgs), got
    assert saved(redis_server, 0)["owner"].split(":")[1] == str(p0b.proc.pid)
    assert len(identifies_of(fake, 0)) == 1
    # p0 keeps running (its other work goes on) without the shard.
    assert p0.proc.poll() is None
    assert p0.stop(signal.SIGTERM) == 0 and p0b.stop(signal.SIGTERM) == 0


def test_resumed_shard_knows_its_guilds(fake_discord, souk_factory, tmp_path, redis_server):
    """A RESUME replays events but sends no READY and no GUILD_CREATE: the
    guild state (roles, channels, overwrites, the bot's roles) comes with
    the session through Redis, and the events replayed apply on top of it.
    Here the bot's role gains Manage Channels and Ban Members while nobody
    runs the shard: only that replayed GUILD_ROLE_UPDATE, applied to the
    guild handed on, lets the new process see both permissions, on a
    channel (the channel and its overwrites handed on) and guild-wide."""
    fake = fake_discord
    p0 = start(souk_factory, fake, tmp_path, redis_server, "p0", 0)
    fake.wait("ready", timeout=WAIT)
    p0.wait_log("keeping shard sessions in redis", timeout=WAIT)
    g0 = next(g for g in fake.state(rest_log=False)["guilds"] if shard_of(g["id"]) == 0)
    chans = [c["id"] for c in g0["channels"] if c["type"] == 0]
    reply = command(fake, "stats", "channels", guild=g0, members=chans[0], bans=chans[1])
    assert "I need Manage Channels in <#%s>" % chans[0] in reply, reply
    assert "needs the **Ban Members** permission" in reply, reply
    ch0 = channel_of_shard(fake, 0)
    last = ping(fake, ch0)
    wait_answered(fake, ch0, [last[0]])
    wait_saved_seq(redis_server, 0, last[1])
    assert p0.stop(signal.SIGTERM) == 0
    # Redis holds one record per guild of shard 0, marked complete.
    rec = redis_server.hgetall("souk:gw:%d:0:guilds" % COUNT)
    on0 = [g["id"] for g in fake.state(rest_log=False)["guilds"] if shard_of(g["id"]) == 0]
    assert rec.get("v") == "1" and sorted(k for k in rec if k != "v") == sorted(on0), rec.keys()
    perms = BOT_PERMS | MANAGE_CHANNELS | BAN_MEMBERS
    fake.post("/_fake/guilds/%s/bot_permissions" % g0["id"], {"permissions": str(perms)})

    p0b = start(souk_factory, fake, tmp_path, redis_server, "p0b", 0)
    p0b.wait_log("shard 0: resuming the session", timeout=WAIT)
    reply = command(fake, "stats", "channels", guild=g0, members=chans[0], bans=chans[1])
    assert "Saved." in reply, reply
    assert "I need Manage Channels" not in reply and "Ban Members" not in reply, reply
    st = fake.state(rest_log=False)
    assert len(identifies_of(fake, 0)) == 1
    assert [r["result"] for r in st["resumes"]] == ["resumed"], st["resumes"]
    assert "with its %d guilds" % len(on0) in p0b.log_text()
    assert p0b.stop(signal.SIGTERM) == 0
