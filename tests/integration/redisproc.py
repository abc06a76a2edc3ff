"""A throwaway redis-server on loopback for integration tests, and a tiny
client that speaks RESP over a fresh connection (no Python Redis library
is needed).

    with RedisServer(tmp_path) as r:      # or the `redis_server` fixture
        r.url                             # redis://127.0.0.1:PORT
        r.command("HGETALL", "souk:gw:4:0")   # decoded reply
        r.stop(); r.start()               # an outage, on the same port

The server is started with --save '' and no AOF, and is always killed on
exit.  Tests are skipped when /usr/bin/redis-server (or
$SOUK_TEST_REDIS_SERVER) is missing."""
import os
import socket
import subprocess
import time

REDIS_SERVER = os.environ.get("SOUK_TEST_REDIS_SERVER") or "/usr/bin/redis-server"


def available():
    return os.access(REDIS_SERVER, os.X_OK)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisError(Exception):
    pass


def _read_reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise ValueError("unexpected reply %r" % line)


class RedisServer:
    def __init__(self, workdir, port=None):
        self.workdir = str(workdir)
        self.port = port or _free_port()
        self.url = "redis://127.0.0.1:%d" % self.port
        self.proc = None

    def start(self, timeout=10.0):
        log = open(os.path.join(self.workdir, "redis-%d.log" % self.port), "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.command("PING") == "PONG":
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("redis-server did not start on port %d" % self.port)
            time.sleep(0.05)

    def stop(self):
        """Kill the server (as a crash would) and wait for it."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def command(self, *args, timeout=5.0):
        """One command on a fresh connection; the decoded reply (an error
        reply comes back as a RedisError instance, not raised)."""
        req = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in (str(x).encode() for x in args))
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(req)
            with s.makefile("rb") as f:
                return _read_reply(f)

    def hgetall(self, key):
        flat = self.command("HGETALL", key) or []
        return dict(zip(flat[0::2], flat[1::2]))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
