"""The global REST limit, against a fake Discord that counts 50 requests
in fixed one-second windows of its own: souk works off a backlog of
replies, with a few global 429s injected, and earns none of its own."""
import time

import pytest

from conftest import souk_config
from soukproc import sanitized

WAIT = 60 if sanitized() else 30
BACKLOG = 240
INJECTED = 6


def replies(fake):
    return [r for r in fake.requests() if r["method"] == "POST"
            and r["path"].endswith("/messages") and r["status"] == 200]


@pytest.mark.parametrize("mode", [
    pytest.param("aligned", marks=pytest.mark.fake_discord_args(
        "--global-window-mode", "aligned", "--no-echo")),
    pytest.param("first", marks=pytest.mark.fake_discord_args(
        "--global-window-mode", "first", "--no-echo")),
])
def test_backlog_earns_no_global_429(fake_discord, souk_factory, tmp_path, mode):
    fake = fake_discord
    # Enough channels that no channel's own bucket (5 per 5 s in the fake)
    # ever binds: only the global limit does.
    g = fake.add_guild(name="Backlog", channels=120, members=4)
    chans = [c["id"] for c in g["channels"] if c["type"] == 0]
    assert len(chans) >= 100
    s = souk_factory(fake, config=souk_config(fake, tmp_path / "souk" / "data"))
    fake.wait("ready", timeout=WAIT)
    s.wait_log("shard 0 ready", timeout=WAIT)
    time.sleep(0.5)  # slash command registration and its requests settle
    base = len(fake.requests())
    # The backlog: more pings than a few seconds of the global limit.
    for i in range(BACKLOG):
        fake.message(content="!ping", channel_id=chans[i % len(chans)])
    # Inject global 429s while souk works through it, one every ~0.7 s.
    t0 = time.monotonic()
    injected = 0
    deadline = time.monotonic() + WAIT
    while True:
        done = len([r for r in replies(fake) if r["i"] >= base])
        if injected < INJECTED and time.monotonic() - t0 >= 0.3 + 0.7 * injected and done < BACKLOG - 20:
            fake.script_rest("POST", r"^/channels/\d+/messages$",
                             [{"status": 429, "scope": "global", "retry_after": 0.25}])
            injected += 1
        if done >= BACKLOG:
            break
        assert time.monotonic() < deadline, "only %d of %d replies" % (done, BACKLOG)
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    st = fake.state()
    stats = st["rest"]["stats"]
    sent = [r for r in st["rest"]["requests"][base:]]
    print("mode %s: %d replies in %.1f s; stats %s" % (mode, BACKLOG, elapsed, dict(stats)))
    assert injected == INJECTED
    assert stats.get("scripted_429", 0) == INJECTED
    # Not one global 429 souk earned itself...
    assert stats.get("global_429", 0) == 0, [r for r in st["rest"]["rate_limited"]]
    # ...nor any other: invalid requests are only the injected ones.
    assert stats.get("invalid_requests", 0) <= INJECTED, stats
    # Spread, not bursts: never more than 50 arrivals within any second.
    times = sorted(r["mono"] for r in sent)
    j = 0
    for i in range(len(times)):
        while times[i] - times[j] >= 1.0:
            j += 1
        assert i - j + 1 <= 50, "%d requests within one second" % (i - j + 1)
    # And it still used most of the limit: 240 replies in well under 10 s.
    assert elapsed < (15 if sanitized() else 9), elapsed
    assert s.stop() == 0
