"""The scale-out of issue 15, shown end to end: 4 souk processes, 4 shards
(one per process) on the fake gateway, which spreads its guilds over the
shards by Discord's formula, one throwaway PostgreSQL store and one
throwaway Redis, behaving as one bot:

* every command of a backlog spread over the 4 shards is answered
  exactly once, and the fake never sees more than 50 requests bound by the
  global limit (interaction callbacks excluded, as Discord excludes them)
  in any sliding second, from all processes together;
* Redis stopped in the middle of that backlog: each process falls back to
  its share (50/4), says so once, and returns to the shared count when
  Redis is back, with no failed command;
* the daily update and the slash-command registration run once, in the
  leader;
* the leader killed outright (SIGKILL): its cluster tasks move to another
  process within 5 s, and its shard, restarted in a new process, resumes
  its session from Redis (no new IDENTIFY) and answers every command sent
  while no process ran it, once."""
import time

import pytest

from clusterfix import pg_server, redis_server  # noqa: F401 (fixtures)
from conftest import souk_config
from modtools import http_port
from soukproc import sanitized
from test_cluster import registrations, task_runs as runs, wait_one_leader

WAIT = 120 if sanitized() else 60
N = 4

pytestmark = pytest.mark.fake_discord_args("--shards", str(N), "--max-concurrency", str(N),
                                           "--no-echo")


def shard_of(gid):
    return (int(gid) >> 22) % N


def start(fake, souk_factory, tmp_path, store, redis, shard, name=None):
    name = name or "p%d" % shard
    cfg = souk_config(fake, tmp_path / name / "data",
                      discord={"shards": {"count": N, "first": shard, "last": shard}},
                      store={"url": store}, cluster={"id": name},
                      # Today's snapshot is due at start, whatever the hour.
                      market={"daily_update": {"hour": 0}})
    return souk_factory(fake, name=name, config=cfg, env={"SOUK_CACHE_URL": redis.url})


def channels_by_shard(fake, want):
    """Add guilds until every shard has want text channels; {shard: [ids]}."""
    out = {s: [] for s in range(N)}
    for g in fake.state(rest_log=False)["guilds"]:
        out[shard_of(g["id"])] += [c["id"] for c in g["channels"] if c["type"] == 0]
    while min(len(v) for v in out.values()) < want:
        g = fake.add_guild(name="Backlog", channels=12, members=4)
        out[shard_of(g["guild"]["id"])] += [c["id"] for c in g["channels"] if c["type"] == 0]
    return out


def replies(fake):
    """{triggering message id: replies posted to it} (a repeat the fake's
    enforce_nonce answered with the first message is not one)."""
    out = {}
    for m in fake.messages():
        ref = (m.get("message_reference") or {}).get("message_id")
        if ref and m["author"]["id"] == fake.bot_user_id:
            out[ref] = out.get(ref, 0) + 1
    return out


def wait_answered(fake, ids, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        got = replies(fake)
        left = [i for i in ids if not got.get(i)]
        if not left:
            return got
        assert time.monotonic() < deadline, "%d of %d unanswered" % (len(left), len(ids))
        time.sleep(0.1)


def test_four_processes_behave_as_one_bot(fake_discord, souk_factory, tmp_path, redis_server,
                                          pg_server):
    fake = fake_discord
    chans = channels_by_shard(fake, 24)
    store = pg_server.create_db("souk")
    procs = {s: start(fake, souk_factory, tmp_path, store, redis_server, s) for s in range(N)}
    for s, p in procs.items():
        p.wait_log("shard %d ready" % s, timeout=WAIT)
        p.wait_log("is counted in redis", timeout=WAIT)
    ports = {s: http_port(p) for s, p in procs.items()}
    leader = wait_one_leader(ports)

    # Registration and the daily update: once, in the leader.
    fake.wait_for(lambda _st: registrations(fake), timeout=WAIT, what="registration")
    procs[leader].wait_log("daily snapshot", timeout=WAIT)
    time.sleep(1.0)
    assert len(registrations(fake)) == 1
    for s, p in procs.items():
        if s != leader:
            assert runs(ports[s], "market.daily_update") == 0, s
            assert "daily snapshot" not in p.log_text(), s

    # A backlog over the 4 shards, with Redis stopped in its middle.
    base = len(fake.requests())
    backlog = 400
    sent = []
    for i in range(backlog):
        s = i % N
        sent.append(fake.message(content="!ping",
                                 channel_id=chans[s][(i // N) % len(chans[s])])["message"]["id"])
    time.sleep(1.5)
    redis_server.stop()
    for p in procs.values():
        p.wait_log("falls back to this process's share", timeout=10)
    time.sleep(2.0)
    redis_server.start()
    got = wait_answered(fake, sent)
    for p in procs.values():
        p.wait_log("rest: redis back", timeout=WAIT)
    st = fake.state()
    bound = [r for r in st["rest"]["requests"][base:] if "/callback" not in r["path"]]
    worst = st["rest"]["global_sliding"]["max"]
    print("backlog of %d: %d requests, worst sliding second %d (all run), stats %s"
          % (backlog, len(bound), worst, dict(st["rest"]["stats"])))
    assert worst <= 50, worst
    assert st["rest"]["stats"].get("global_429", 0) == 0
    assert all(got[m] == 1 for m in sent), [m for m in sent if got[m] != 1]
    failed = [r for r in bound if r["status"] >= 400]
    assert not failed, failed[:5]
    for p in procs.values():
        assert p.log_text().count("falls back to this process's share") == 1
        assert "over %d processes" % N in p.log_text()

    # The leader dies without a word (the lease may have moved while Redis
    # was away: whoever holds it now).
    dead = wait_one_leader(ports)
    recovered = runs(ports[dead], "economy.recover")
    before = {s: runs(port, "economy.recover") for s, port in ports.items() if s != dead}
    procs[dead].kill()
    t0 = time.monotonic()
    rest = {s: port for s, port in ports.items() if s != dead}
    second = wait_one_leader(rest, timeout=10)
    took = time.monotonic() - t0
    print("lease moved from p%d to p%d in %.2f s" % (dead, second, took))
    assert took < 5.0, took
    fake.wait_for(lambda _st: runs(ports[second], "economy.recover") > before[second], timeout=5,
                  what="the cluster tasks in the new leader")
    assert recovered >= 1
    # Its shard's events wait on Discord's side until a process resumes it.
    during = [fake.message(content="!ping", channel_id=chans[dead][i % len(chans[dead])])
              ["message"]["id"] for i in range(10)]
    identified = len([i for i in fake.state(rest_log=False)["identifies"]
                      if i["shard"][0] == dead])
    back = start(fake, souk_factory, tmp_path, store, redis_server, dead, name="p%db" % dead)
    back.wait_log("shard %d: resuming the session" % dead, timeout=WAIT)
    got = wait_answered(fake, during)
    time.sleep(1.0)
    got = replies(fake)
    assert all(got[m] == 1 for m in sent + during)
    assert len([i for i in fake.state(rest_log=False)["identifies"]
                if i["shard"][0] == dead]) == identified
    # Still one registration: the new leader found the commands unchanged.
    assert len(registrations(fake)) == 1
    for s, p in procs.items():
        if s != dead:
            assert p.stop() == 0
    assert back.stop() == 0
