"""The HTTP server under connection pressure, with the real binary.

Filling http.max_connections must never stop the server for good: it takes
new connections again the moment old ones end.  Clients that trickle their
request headers are dropped after http.header_timeout however slowly they
send, one address holds at most http.max_connections_per_address
connections, and while all that goes on /healthz from another address, a
command on the gateway and POST /interactions keep answering.

Linux routes the whole of 127.0.0.0/8 to the loopback interface, so a
client socket bound to 127.0.0.2 (or 127.0.1.7) is "another address"
without any set-up."""
import json
import re
import select
import socket
import threading
import time

import pytest

from conftest import souk_config
from soukproc import sanitized
from test_http import _signed, http_port, start_with_public_key

WAIT = 40 if sanitized() else 15


def connect(port, source="127.0.0.1", timeout=5.0):
    sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sk.bind((source, 0))
    sk.settimeout(timeout)
    sk.connect(("127.0.0.1", port))
    return sk


def read_response(sk):
    """One HTTP/1.1 response (status, headers, body) from sk."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sk.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response headers: %r" % buf)
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(body) < n:
        chunk = sk.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body[:n]


def request(port, path="/healthz", source="127.0.0.1", timeout=5.0, method="GET",
            headers=None, body=b""):
    """One request on a new connection; (status, headers, body, seconds)."""
    t0 = time.monotonic()
    sk = connect(port, source, timeout)
    try:
        hdrs = {"Host": "souk", "Connection": "close"}
        hdrs.update(headers or {})
        if body:
            hdrs["Content-Length"] = str(len(body))
        head = "%s %s HTTP/1.1\r\n" % (method, path)
        head += "".join("%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
        sk.sendall(head.encode() + body)
        status, h, b = read_response(sk)
        return status, h, b, time.monotonic() - t0
    finally:
        sk.close()


def healthz_within(port, seconds, source="127.0.0.2"):
    """Assert that /healthz from source answers 200 within seconds."""
    status, _, body, took = request(port, "/healthz", source=source, timeout=seconds)
    assert status == 200 and body == b"ok\n", (status, body)
    assert took <= seconds, took
    return took


def half_request(port, source):
    sk = connect(port, source)
    # The request line and one header, never the blank line that ends them.
    sk.sendall(b"GET /healthz HTTP/1.1\r\nHost: souk\r\n")
    return sk


@pytest.mark.parametrize("kind", ["half_requests", "keep_alive"])
def test_server_recovers_after_its_connection_limit(fake_discord, souk_factory, kind):
    """max_connections + N clients, then all of them close: the next client
    is answered at once.  Before the fix the listening socket stayed
    unwatched once the limit had been reached, and the server never
    answered again."""
    fake = fake_discord
    limit, extra = 8, 4
    cfg = souk_config(fake, "data", http={"port": 0, "max_connections": limit})
    s = souk_factory(fake, config=cfg)
    port = http_port(s)
    healthz_within(port, 5, source="127.0.0.1")
    socks = []
    # Each client from its own address, so no per-address cap is involved:
    # this is the global limit alone.
    for i in range(limit + extra):
        src = "127.0.1.%d" % (i + 1)
        if kind == "half_requests":
            socks.append(half_request(port, src))
        else:
            sk = connect(port, src)
            sk.sendall(b"GET /healthz HTTP/1.1\r\nHost: souk\r\n\r\n")
            socks.append(sk)
    if kind == "keep_alive":
        # The first `limit` are answered and stay open (keep-alive); the
        # rest wait in the listen backlog.
        answered = 0
        for sk in socks[:limit]:
            sk.settimeout(WAIT)
            status, _, _ = read_response(sk)
            assert status == 200
            answered += 1
        assert answered == limit
    time.sleep(2)
    for sk in socks:
        sk.close()
    healthz_within(port, 1.0)
    # And again, with the limit reached a second time.
    socks = [half_request(port, "127.0.2.%d" % (i + 1)) for i in range(limit + extra)]
    time.sleep(1)
    for sk in socks:
        sk.close()
    healthz_within(port, 1.0)
    assert s.stop() == 0


class Slowloris(threading.Thread):
    """Keeps `count` connections from `source` open, each sending its request
    headers a byte a second (fast enough for any idle timeout), reopening
    any the server closes.  Records each connection's life."""

    def __init__(self, port, source, count):
        super().__init__(daemon=True)
        self.port, self.source, self.count = port, source, count
        self.stop = threading.Event()
        self.lives = []  # (opened, closed) in time.monotonic()
        self.open = {}   # socket -> [opened, last byte sent]
        self.next_open = 0.0

    def _close(self, sk, now):
        opened, _ = self.open.pop(sk)
        self.lives.append((opened, now))
        sk.close()

    def run(self):
        while not self.stop.is_set():
            now = time.monotonic()
            # Reopen at most five times a second: a refused connection is
            # closed at once, and the point is to hold slots, not to spin.
            if len(self.open) < self.count and now >= self.next_open:
                self.next_open = now + 0.2 / self.count
                try:
                    sk = connect(self.port, self.source, timeout=2)
                    sk.sendall(b"GET /healthz HTTP/1.1\r\nHost: souk\r\nX-Slow: ")
                    sk.setblocking(False)
                    self.open[sk] = [now, now]
                except OSError:
                    pass
            ready, _, _ = select.select(list(self.open), [], [], 0.05)
            now = time.monotonic()
            for sk in ready:
                try:
                    data = sk.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._close(sk, now)
            for sk, st in list(self.open.items()):
                if now - st[1] >= 1.0:
                    try:
                        sk.send(b"a")
                        st[1] = now
                    except OSError:
                        self._close(sk, now)
        now = time.monotonic()
        for sk in list(self.open):
            self._close(sk, now)

    def held(self, longer_than):
        """Lives longer than the given seconds: the connections the server
        accepted (refused ones are closed at once)."""
        return [(a, b) for a, b in self.lives if b - a > longer_than]


def test_slowloris_is_dropped_while_others_keep_answering(fake_discord, souk_factory):
    """One address trickling request headers a byte a second on every
    connection it can get: it gets max_connections_per_address of them, each
    dropped header_timeout after it opened; meanwhile /healthz from another
    address, a command on the gateway and a command through POST
    /interactions all keep answering."""
    fake = fake_discord
    limit, per_address, header_timeout = 8, 4, 3.0
    s, port, priv = start_with_public_key(fake, souk_factory, max_connections=limit,
                                          max_connections_per_address=per_address,
                                          header_timeout="%ds" % header_timeout)
    fake.wait("ready", timeout=WAIT)
    s.wait_log("shard 0 ready", timeout=WAIT)
    app_id = fake.state()["application_id"]

    attack = Slowloris(port, "127.0.0.1", limit)
    attack.start()
    try:
        time.sleep(1)
        t_end = time.monotonic() + 2.5 * header_timeout
        n = 0
        while time.monotonic() < t_end:
            healthz_within(port, 1.0, source="127.0.0.2")
            if n % 4 == 0:
                # A command on the gateway gets its reply.
                posts = len([r for r in fake.requests()
                             if r["method"] == "POST" and r["path"].endswith("/messages")])
                fake.message(content="!ping")
                fake.wait_for(lambda _st: len([
                    r for r in fake.requests()
                    if r["method"] == "POST" and r["path"].endswith("/messages")]) > posts,
                    timeout=WAIT, what="the reply to !ping")
                # And one through the HTTP interactions endpoint.
                body = json.dumps({
                    "type": 2, "id": str(1300000000000000100 + n),
                    "application_id": app_id, "token": "tok%d" % n, "version": 1,
                    "guild_id": "1300000000000000002", "channel_id": "1300000000000000003",
                    "member": {"user": {"id": "1300000000000000004", "username": "x"},
                               "permissions": "0"},
                    "data": {"id": "1", "name": "ping", "type": 1}}).encode()
                status, _, out, took = request(port, "/interactions", source="127.0.0.3",
                                               method="POST", headers=_signed(priv, body),
                                               body=body, timeout=3.0)
                assert status == 200, (status, out)
                assert json.loads(out)["data"]["content"].startswith("pong")
            n += 1
            time.sleep(0.5)
    finally:
        attack.stop.set()
        attack.join(10)

    # Refused connections close at once, held ones only at the deadline:
    # half of it tells them apart even when the client notices late.
    held = attack.held(header_timeout / 2)
    assert held, attack.lives
    # Trickling never bought more time than header_timeout (plus the
    # sweep's half second and some slack for a loaded machine), and no
    # connection was dropped before it (each sent a byte a second).
    dropped = [(a, b) for a, b in held if b < t_end]
    assert dropped, held
    for opened, closed in held:
        if closed >= t_end:
            continue  # still open when the test stopped it
        assert header_timeout - 0.5 <= closed - opened <= header_timeout + 1.5, \
            (closed - opened, attack.lives)
    # One address never held more than its share at a time.
    events = sorted([(a, 1) for a, _ in held] + [(b, -1) for _, b in held])
    most = cur = 0
    for _, d in events:
        cur += d
        most = max(most, cur)
    assert most <= per_address, most
    # The rest were refused at once, and /metrics says what happened.
    assert len(attack.lives) > len(held)
    # (From another address: the server may not have seen all of the
    # attacker's closes yet, and 127.0.0.1 may still be at its cap.)
    status, _, metrics, _ = request(port, "/metrics", source="127.0.0.2")
    assert status == 200
    text = metrics.decode()
    assert re.search(r'souk_httpd_connections_closed_total\{reason="header_timeout"\} [1-9]', text)
    assert re.search(r'souk_httpd_connections_closed_total\{reason="per_address"\} [1-9]', text)
    assert "dropped a connection from 127.0.0.1: no complete request headers" in s.log_text()
    assert s.stop() == 0


def test_slowloris_from_many_addresses_is_cut_off_by_the_deadline(fake_discord, souk_factory):
    """Trickling clients from as many addresses as there are connections
    take every slot, which no per-address cap prevents: the header deadline
    frees the slots, and a client waiting in the backlog is answered
    within header_timeout instead of never."""
    fake = fake_discord
    limit, header_timeout = 6, 3.0
    cfg = souk_config(fake, "data", http={"port": 0, "max_connections": limit,
                                          "header_timeout": "%ds" % header_timeout})
    s = souk_factory(fake, config=cfg)
    port = http_port(s)
    attackers = [Slowloris(port, "127.0.4.%d" % (i + 1), 1) for i in range(limit)]
    for a in attackers:
        a.start()
    try:
        s.wait_log("%d connections open, the limit" % limit, timeout=WAIT)
        for _ in range(2):
            healthz_within(port, header_timeout + 1.5)
    finally:
        for a in attackers:
            a.stop.set()
        for a in attackers:
            a.join(10)
    # Every attacker was dropped at the deadline, not before it.
    lives = [b - a for att in attackers for a, b in att.held(header_timeout / 2)]
    assert lives and all(header_timeout - 0.5 <= t <= header_timeout + 1.5 for t in lives), lives
    assert s.stop() == 0


def test_oversized_content_length_is_refused_before_the_body(fake_discord, souk_factory):
    """A Content-Length over http.max_body gets 413 as soon as the headers
    are in; the client sends no body at all and just waits."""
    fake = fake_discord
    cfg = souk_config(fake, "data", http={"port": 0, "max_body": "1KB"})
    s = souk_factory(fake, config=cfg)
    port = http_port(s)
    for path in ("/interactions", "/nothing-here"):
        t0 = time.monotonic()
        sk = connect(port, timeout=5)
        sk.sendall(("POST %s HTTP/1.1\r\nHost: souk\r\nContent-Type: application/json\r\n"
                    "Content-Length: 1025\r\n\r\n" % path).encode())
        status, _, body = read_response(sk)
        assert status == 413 and body == b"request body too large\n", (status, body)
        assert time.monotonic() - t0 < 1.0
        # The body is never read: the server closes the connection.
        sk.settimeout(5)
        assert sk.recv(1) == b""
        sk.close()
    # At the limit itself the body is read and the route answers.
    status, _, _, _ = request(port, "/healthz", method="POST", body=b"x" * 1024)
    assert status == 405
    assert s.stop() == 0






def test_many_half_open_connections_closing_cost_a_few_log_lines(fake_discord, souk_factory):
    """300 clients that each sent half a request close at once: libmicrohttpd
    warns about each, through souk's logger, which writes the first line
    and then how many times it repeated instead of 300 lines."""
    fake = fake_discord
    n = 300
    cfg = souk_config(fake, "data", http={"port": 0, "max_connections": n + 20,
                                          "max_connections_per_address": n + 20})
    s = souk_factory(fake, config=cfg)
    port = http_port(s)
    socks = [half_request(port, "127.0.0.1") for _ in range(n)]
    # Long enough for the server to have read every half request.
    time.sleep(2)
    for sk in socks:
        sk.close()
    healthz_within(port, 1.0)
    time.sleep(1.5)
    assert s.stop() == 0
    text = "with incomplete request"
    lines = [l for l in s.log_text().splitlines() if text in l]
    counted = 0
    for l in lines:
        m = re.search(r"repeated (\d+) times?", l)
        counted += int(m.group(1)) if m else 1
    assert counted == n, (counted, lines)
    assert len(lines) <= 4, lines
