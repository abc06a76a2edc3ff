"""The real souk binary over compress=zstd-stream: identify, answer, a
resume on a new connection (a new stream, a new context), payloads split
over several WebSocket messages, and a burst of events."""
import time

from conftest import souk_config
from soukproc import sanitized
from test_gateway import ping, replies, wait_replies

WAIT = 40 if sanitized() else 15


def test_session_over_zstd_stream(fake_discord, souk_factory, tmp_path):
    fake = fake_discord
    cfg = souk_config(fake, tmp_path / "souk" / "data", discord={"compress": "zstd-stream"})
    s = souk_factory(fake, config=cfg)
    fake.wait("ready", timeout=WAIT)
    conn = fake.state(rest_log=False)["connections"][0]
    assert conn["query"].get("compress") == "zstd-stream", conn
    assert conn["compress_mode"] == "zstd-stream"
    ids = [ping(fake) for _ in range(3)]
    wait_replies(fake, ids)
    # A dropped connection: the new one is a new zstd stream.
    fake.drop()
    during = [ping(fake) for _ in range(2)]
    fake.wait("resumed", timeout=WAIT)
    wait_replies(fake, during)
    # Payloads split over several WebSocket messages are put back together.
    fake.split(count=None, parts=3, mode="messages", default=True)
    fake.drop()
    fake.wait("resumed", count=2, timeout=WAIT)
    split = [ping(fake) for _ in range(3)]
    got = wait_replies(fake, split)
    fake.split(count=0, default=True)
    # A burst of realistic events, then a ping behind them.
    fake.blast(count=2000, guilds=2, channels_per_guild=5, members_per_guild=30, batch=32,
               wait=True)
    last = ping(fake)
    got = wait_replies(fake, [last], timeout=WAIT)
    time.sleep(0.3)
    got = replies(fake)
    assert all(got[i] == 1 for i in ids + during + split + [last]), got
    st = fake.state(rest_log=False)
    assert len(st["identifies"]) == 1
    assert all(c["compress_mode"] == "zstd-stream" for c in st["connections"])
    assert "corrupt" not in s.log_text()
    assert s.stop() == 0
