"""Throwaway Redis and PostgreSQL servers for tests of several souk
processes sharing one bot (tests/integration/test_cluster.py and the
scale-out tests), always stopped, even when a test fails.

    from clusterfix import RedisServer, PgServer, redis_server, pg_server

``redis_server`` and ``pg_server`` are pytest fixtures (import them into
the test module); the classes can be used directly too.  A missing
redis-server or PostgreSQL makes the fixture skip the test, saying why.

PostgreSQL's initdb and pg_ctl refuse to run as root: as root they run as
the ``postgres`` user through runuser, in a directory owned by it."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

REDIS_SERVER = os.environ.get("SOUK_TEST_REDIS_SERVER") or "/usr/bin/redis-server"
PG_BIN = os.environ.get("SOUK_PG_BIN") or "/usr/lib/postgresql/15/bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_command(port, *args, timeout=2.0):
    """One command over a fresh connection; the reply's raw bytes (b"" when
    the server is not there)."""
    req = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
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
    except OSError:
        return b""


class RedisServer:
    """redis-server on a free loopback port; stop() and start() again keep
    the port, so the processes using it reconnect to the same URL."""

    def __init__(self, workdir):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.port = free_port()
        self.url = "redis://127.0.0.1:%d" % self.port
        self.proc = None

    def start(self):
        log = open(os.path.join(self.workdir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 10
        while not redis_command(self.port, "PING").startswith(b"+PONG"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("redis-server did not start")
            time.sleep(0.05)
        return self

    def stop(self):
        """Kill it, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def command(self, *args):
        return redis_command(self.port, *args)


class PgServer:
    """A PostgreSQL 15 cluster in a fresh directory on a free port, trust
    auth, fsync off."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="souk-pg-")
        self.port = free_port()
        self.root = os.geteuid() == 0
        self.up = False

    def _run(self, *cmd, check=True):
        if self.root:
            cmd = ("runuser", "-u", "postgres", "--") + cmd
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def start(self):
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
        data = os.path.join(self.dir, "data")
        self._run(os.path.join(PG_BIN, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
                  "--no-sync")
        self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", data, "-l",
                  os.path.join(self.dir, "server.log"), "-w", "-o",
                  "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c max_connections=200" % (self.port, self.dir), "start")
        self.up = True
        return self

    def url(self, db="postgres"):
        return "postgres://postgres@127.0.0.1:%d/%s" % (self.port, db)

    def create_db(self, name):
        self._run(os.path.join(PG_BIN, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                  "postgres", "-c", "CREATE DATABASE %s" % name)
        return self.url(name)

    def sql(self, db, query):
        r = self._run(os.path.join(PG_BIN, "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                      "-U", "postgres", "-d", db, "-At", "-c", query)
        return r.stdout.strip()

    def stop(self):
        if self.up:
            self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", os.path.join(self.dir, "data"),
                      "-m", "immediate", "stop", check=False)
            self.up = False
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_server(tmp_path):
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.skip("%s not found" % REDIS_SERVER)
    r = RedisServer(tmp_path / "redis")
    try:
        yield r.start()
    finally:
        r.stop()


@pytest.fixture
def pg_server():
    if not os.access(os.path.join(PG_BIN, "initdb"), os.X_OK):
        pytest.skip("PostgreSQL not found in %s" % PG_BIN)
    p = PgServer()
    try:
        yield p.start()
    finally:
        p.stop()
