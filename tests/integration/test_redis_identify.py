"""IDENTIFY coordination through Redis: two souk processes that share no
lock file (as on two hosts) but one Redis (cache.url) split ten shards and
never IDENTIFY twice in one bucket within 5 s.

redis-server runs on a free loopback port for the test and is always
stopped; without /usr/bin/redis-server the test is skipped."""
import os
import socket
import subprocess
import time

import pytest

from conftest import souk_config
from soukproc import sanitized

REDIS_SERVER = os.environ.get("SOUK_TEST_REDIS_SERVER") or "/usr/bin/redis-server"
WAIT = 120 if sanitized() else 60


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_command(port, *args):
    """One command over a fresh connection; the reply's raw bytes."""
    req = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args))
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(req)
        out = b""
        s.settimeout(0.3)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    return out


@pytest.fixture
def redis_port(tmp_path):
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.skip("%s not found" % REDIS_SERVER)
    port = _free_port()
    log = open(tmp_path / "redis.log", "wb")
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--daemonize", "no"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if _redis_command(port, "PING").startswith(b"+PONG"):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("redis-server did not start:\n" +
                                     (tmp_path / "redis.log").read_text(errors="replace"))
            time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.fake_discord_args("--shards", "10", "--max-concurrency", "2",
                               "--heartbeat-interval", "5000")
def test_two_processes_share_identify_slots_through_redis(fake_discord, souk_factory,
                                                          redis_port, tmp_path):
    fake = fake_discord
    procs = []
    for name, first, last in (("p1", 0, 4), ("p2", 5, 9)):
        # Separate data directories: each process would get its own default
        # lock file, so only Redis can keep them apart.
        cfg = souk_config(fake, tmp_path / name / "data", discord={
            "shards": {"count": 10, "first": first, "last": last}})
        procs.append(souk_factory(fake, name=name, config=cfg, env={
            "SOUK_CACHE_URL": "redis://127.0.0.1:%d" % redis_port}))
    for p in procs:
        p.wait_log("spacing IDENTIFYs through redis", timeout=WAIT)
    fake.wait("ready", count=10, timeout=WAIT)
    st = fake.state(rest_log=False)
    ids = sorted(st["identifies"], key=lambda i: i["at"])
    assert sorted(i["shard"][0] for i in ids) == list(range(10))
    # Never two IDENTIFYs of one bucket (shard % 2) within 5 s, across both
    # processes (the fixture also fails on identify_concurrency violations).
    for bucket in (0, 1):
        times = [i["at"] for i in ids if i["shard"][0] % 2 == bucket]
        for x, y in zip(times, times[1:]):
            assert y - x >= 4.9, (bucket, y - x)
    # The slots were taken in Redis: every SET NX of a slot goes with a
    # PTTL of its key (the cache never sends PTTL), one pair per IDENTIFY
    # at least.
    stats = _redis_command(redis_port, "INFO", "commandstats").decode()
    pttl = [l for l in stats.splitlines() if l.startswith("cmdstat_pttl:")]
    assert pttl, stats
    calls = int(pttl[0].split("calls=")[1].split(",")[0])
    assert calls >= 10, pttl[0]
    for p in procs:
        assert "redis unreachable" not in p.log_text()
    for p in procs:
        assert p.stop() == 0
