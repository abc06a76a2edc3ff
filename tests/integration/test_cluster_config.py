"""Settings of the whole bot across processes: `/admin config set` made on
one process applies on every process (and on one started later), and
{guilds} and /help count the bot's guilds, not one process's.

Two shards, one per process, four guilds spread over them by Discord's
formula, one throwaway redis-server (cache.url)."""
import signal
import time

import pytest

from clusterfix import pg_server  # noqa: F401 (fixture)
from conftest import souk_config
from modtools import command, message_text
from redisproc import RedisServer, available
from soukproc import sanitized

WAIT = 60 if sanitized() else 20
COUNT = 2

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


def start(souk_factory, fake, tmp_path, redis, name, shard, store_url=None):
    cfg = souk_config(fake, tmp_path / name / "data",
                      discord={"shards": {"count": COUNT, "first": shard, "last": shard}})
    env = {"SOUK_CACHE_URL": redis.url}
    if store_url:
        env["SOUK_STORE_URL"] = store_url
    return souk_factory(fake, name=name, config=cfg, env=env)


def guild_of_shard(fake, shard):
    return next(g for g in fake.state(rest_log=False)["guilds"]
                if (int(g["id"]) >> 22) % COUNT == shard)


def presences(fake, shard, name):
    return [p for p in fake.state(rest_log=False)["actions"]["presence_updates"]
            if p["shard"] == shard and any(a.get("name") == name
                                           for a in (p["d"] or {}).get("activities") or [])]


def help_footer(fake, guild):
    ch = next(c["id"] for c in guild["channels"] if c["type"] == 0)
    mid = fake.message(content="!help", channel_id=ch)["message"]["id"]
    deadline = time.monotonic() + WAIT
    while True:
        for m in fake.messages(channel_id=ch):
            if (m.get("message_reference") or {}).get("message_id") == mid:
                return message_text(m)
        assert time.monotonic() < deadline, "no answer to !help"
        time.sleep(0.05)


def test_admin_config_set_applies_on_every_process(fake_discord, souk_factory, tmp_path,
                                                   redis_server, pg_server):
    fake = fake_discord
    # One store for the bot, as the README requires of several processes:
    # when Redis restarts below, the lease may move, and the new leader
    # must find slash commands registered already (their hash is in the
    # store), not register them again into a bucket the other emptied.
    store = pg_server.create_db("souk")
    p0 = start(souk_factory, fake, tmp_path, redis_server, "p0", 0, store)
    p1 = start(souk_factory, fake, tmp_path, redis_server, "p1", 1, store)
    fake.wait("ready", count=COUNT, timeout=WAIT)
    for p in (p0, p1):
        p.wait_log("run-time configuration changes are shared through redis", timeout=WAIT)
        # /admin is for the application's owners, learnt after READY.
        p.wait_log("owner-only commands answer", timeout=WAIT)
    # Asked on shard 0's process...
    text = command(fake, "admin", "set", group="config", guild=guild_of_shard(fake, 0),
                   key="discord.presence.activity", value="one bot")
    assert "on every process of the bot" in text, text
    # ...both shards show it, the other process within about a second.
    fake.wait_for(lambda st: presences(fake, 0, "one bot") and presences(fake, 1, "one bot"),
                  timeout=WAIT, what="the presence on both shards")
    p1.wait_log("set to 'one bot' by another process", timeout=WAIT)
    assert "by another process" not in p0.log_text()

    # A process that starts later (a rolling restart of shard 1's) applies
    # the bot's run-time changes too, though its file says otherwise.
    assert p1.stop(signal.SIGTERM) == 0
    n_before = len(presences(fake, 1, "one bot"))
    p1b = start(souk_factory, fake, tmp_path, redis_server, "p1b", 1, store)
    p1b.wait_log("set to 'one bot' by another process", timeout=WAIT)
    fake.wait_for(lambda st: len(presences(fake, 1, "one bot")) > n_before, timeout=WAIT,
                  what="the presence from the restarted process")

    # Redis gone: the change applies where it was made, and reaches the
    # others once Redis is back.
    redis_server.stop()
    p0.wait_log("run-time configuration changes apply to this process only", timeout=WAIT)
    text = command(fake, "admin", "set", group="config", guild=guild_of_shard(fake, 0),
                   key="discord.presence.activity", value="still one bot")
    assert "once Redis is back" in text, text
    fake.wait_for(lambda st: presences(fake, 0, "still one bot"), timeout=WAIT,
                  what="the presence where it was set")
    assert not presences(fake, 1, "still one bot")
    redis_server.start()
    fake.wait_for(lambda st: presences(fake, 1, "still one bot"), timeout=WAIT,
                  what="the presence on the other process after Redis came back")
    assert not fake.unexpected_violations()
    for p in (p0, p1b):
        assert p.stop(signal.SIGTERM) == 0


def test_guild_count_is_the_whole_bots(fake_discord, souk_factory, tmp_path, redis_server):
    """Each process sees the guilds of its own shard (two of the four), yet
    /help (like {guilds} in a presence) counts all four."""
    fake = fake_discord
    p0 = start(souk_factory, fake, tmp_path, redis_server, "p0", 0)
    p1 = start(souk_factory, fake, tmp_path, redis_server, "p1", 1)
    fake.wait("ready", count=COUNT, timeout=WAIT)
    total = len(fake.state(rest_log=False)["guilds"])
    assert total == 4
    for shard in range(COUNT):
        g = guild_of_shard(fake, shard)
        deadline = time.monotonic() + WAIT
        while "%d servers" % total not in help_footer(fake, g):
            assert time.monotonic() < deadline, help_footer(fake, g)
            time.sleep(0.5)
    for p in (p0, p1):
        assert p.stop(signal.SIGTERM) == 0
