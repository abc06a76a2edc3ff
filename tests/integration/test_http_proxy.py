"""souk behind a reverse proxy on the same host, with the real binary.

Every request then comes from loopback, so the socket's address cannot say
who is local.  A request carrying Forwarded or X-Forwarded-For is judged by
the client a proxy in http.trusted_proxies names; from any other peer such
a request is never local.  Per-address caps count the same client."""
import time

from conftest import souk_config
from test_http_limits import connect, http_port, read_response, request

ADMIN = ("/metrics", "/health")


def status_of(port, path, headers=None, source="127.0.0.1"):
    return request(port, path, source=source, headers=headers)[0]


def admin_statuses(port, headers=None, source="127.0.0.1"):
    """"in" when every admin route let the request in (/health may still
    say 503 while the gateway connects), "403" when every one refused it."""
    got = {status_of(port, p, headers, source) for p in ADMIN}
    if got == {403}:
        return "403"
    assert 403 not in got, got
    return "in"


def test_forwarded_requests_from_an_untrusted_peer_are_not_local(fake_discord, souk_factory):
    """No trusted proxy configured: a loopback peer is local only when it
    sends no proxy header, whatever address the header names."""
    fake = fake_discord
    s = souk_factory(fake)
    port = http_port(s)
    assert admin_statuses(port) == "in"
    assert admin_statuses(port, {"X-Forwarded-For": "203.0.113.9"}) == "403"
    assert admin_statuses(port, {"X-Forwarded-For": "127.0.0.1"}) == "403"
    assert admin_statuses(port, {"Forwarded": "for=127.0.0.1"}) == "403"
    # Public routes stay public.
    assert status_of(port, "/healthz", {"X-Forwarded-For": "203.0.113.9"}) == 200
    assert s.stop() == 0


def test_trusted_proxy_names_the_client(fake_discord, souk_factory):
    fake = fake_discord
    cfg = souk_config(fake, "data", http={"port": 0, "trusted_proxies": ["127.0.0.1", "::1"]})
    s = souk_factory(fake, config=cfg)
    port = http_port(s)
    # The proxy forwarding a remote client: not local.
    assert admin_statuses(port, {"X-Forwarded-For": "203.0.113.9"}) == "403"
    assert admin_statuses(port, {"Forwarded": "for=203.0.113.9;proto=https"}) == "403"
    # A client that puts a loopback address in front of the proxy's hop.
    assert admin_statuses(port, {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}) == "403"
    # The proxy forwarding a client on this host (curl on the proxy's
    # host), or the proxy's host asking directly: local.
    assert admin_statuses(port, {"X-Forwarded-For": "127.0.0.1"}) == "in"
    assert admin_statuses(port, {"Forwarded": 'for="[::1]:4711"'}) == "in"
    assert admin_statuses(port) == "in"
    # Another loopback address is not a trusted proxy: its header is not
    # believed and makes the request non-local; without one it is local.
    assert admin_statuses(port, {"X-Forwarded-For": "127.0.0.1"}, source="127.0.0.2") == "403"
    assert admin_statuses(port, source="127.0.0.2") == "in"
    # A token still opens admin routes to anyone.
    assert s.stop() == 0
    log = s.log_text()
    # The access log names the client and the proxy it came through.
    assert "GET /metrics 403" in log and "peer=203.0.113.9 via=127.0.0.1" in log


def _hold(port, source, xff=None):
    """A request whose headers are in and whose body never comes: it stays
    under way (counted against its client) until the connection closes."""
    sk = connect(port, source)
    head = "POST /nothing HTTP/1.1\r\nHost: souk\r\nContent-Length: 10\r\n"
    if xff:
        head += "X-Forwarded-For: %s\r\n" % xff
    sk.sendall((head + "\r\n").encode())
    return sk


def test_per_address_cap_counts_the_client_behind_the_proxy(fake_discord, souk_factory):
    fake = fake_discord
    cfg = souk_config(fake, "data", http={"port": 0, "trusted_proxies": ["127.0.0.1"],
                                          "max_connections_per_address": 2})
    s = souk_factory(fake, config=cfg)
    port = http_port(s)
    # Two requests of one client under way through the proxy: a third of
    # the same client is refused at once, another client's goes through.
    held = [_hold(port, "127.0.0.1", "203.0.113.9") for _ in range(2)]
    time.sleep(0.3)
    status, _, body, took = request(port, "/healthz",
                                    headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9"})
    assert status == 429 and b"too many" in body, (status, body)
    assert took < 1.0
    assert status_of(port, "/healthz", {"X-Forwarded-For": "198.51.100.1"}) == 200
    # The proxy itself is never capped: it carries everyone's connections.
    more = [connect(port, "127.0.0.1") for _ in range(4)]
    assert status_of(port, "/healthz") == 200
    for sk in held + more:
        sk.close()
    time.sleep(0.3)
    assert status_of(port, "/healthz", {"X-Forwarded-For": "203.0.113.9"}) == 200
    # A peer that is not a trusted proxy is capped by its own address: its
    # third connection is closed without an answer.
    direct = [connect(port, "127.0.0.2") for _ in range(2)]
    time.sleep(0.3)
    third = connect(port, "127.0.0.2")
    third.sendall(b"GET /healthz HTTP/1.1\r\nHost: souk\r\n\r\n")
    try:
        got = third.recv(100)
    except ConnectionResetError:
        got = b""
    assert got == b"", got
    third.close()
    # Once its connections are closed, the address gets in again.
    for sk in direct:
        sk.close()
    deadline = time.monotonic() + 5
    while True:
        try:
            status, _, _ = read_response(_get(port, "127.0.0.2"))
            break
        except (ConnectionError, OSError):
            assert time.monotonic() < deadline, "127.0.0.2 stayed refused"
            time.sleep(0.1)
    assert status == 200
    assert s.stop() == 0
    assert "refused a connection from 127.0.0.2" in s.log_text()


def _get(port, source):
    sk = connect(port, source)
    sk.sendall(b"GET /healthz HTTP/1.1\r\nHost: souk\r\nConnection: close\r\n\r\n")
    return sk
