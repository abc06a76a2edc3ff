/* WebSocket client against a tiny python3-websockets server on loopback:
 * echo, ordering, server-initiated close codes, abrupt drops, fragmented
 * and large messages, the size cap, our own close codes as the server saw
 * them, abort, connect failures, shutdown with live connections. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/trust.h"
#include "net/ws.h"
#include "pyspawn.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/loop.h"

static const char *const SERVER_PY =
    "import asyncio, sys, websockets\n"
    "async def handler(ws, path):\n"
    "    if path.startswith('/echo'):\n"
    "        try:\n"
    "            async for m in ws:\n"
    "                if m == 'close-me':\n"
    "                    await ws.close(4004, 'bye')\n"
    "                    break\n"
    "                if m == 'drop-me':\n"
    "                    ws.transport.abort()\n"
    "                    break\n"
    "                if m == 'frag-me':\n"
    "                    await ws.send(['part1-', 'part2-', 'part3'])\n"
    "                    await ws.send([b'\\x01\\x02', b'\\x03'])\n"
    "                    continue\n"
    "                if m == 'big-me':\n"
    "                    await ws.send(bytes(range(256)) * 1200)\n"
    "                    continue\n"
    "                await ws.send(m)\n"
    "        except websockets.ConnectionClosed:\n"
    "            pass\n"
    "        finally:\n"
    "            await ws.wait_closed()\n"
    "            print('closed', ws.close_code, flush=True)\n"
    "    elif path.startswith('/close'):\n"
    "        await ws.close(4004, 'auth failed')\n"
    "    elif path.startswith('/drop'):\n"
    "        ws.transport.abort()\n"
    "    elif path.startswith('/silent'):\n"
    "        await asyncio.sleep(30)\n"
    "    elif path.startswith('/raw/'):\n"
    "        ws.transport.write(bytes.fromhex(path[5:]))\n"
    "        await ws.wait_closed()\n"
    "        print('closed', ws.close_code, flush=True)\n"
    "async def main():\n"
    "    async with websockets.serve(handler, '127.0.0.1', 0, max_size=None,\n"
    "                                ping_interval=None) as srv:\n"
    "        print(srv.sockets[0].getsockname()[1], flush=True)\n"
    "        await asyncio.Future()\n"
    "asyncio.run(main())\n";

static pyserver_t srv;
static bool have_server;

/* What one connection saw. */
typedef struct conn {
  souk__ws_t *ws;
  int opened;
  int closes;
  int code;
  char reason[128];
  int nmsg;
  souk_buf_t msgs[8];
  bool binary[8];
  int send_on_open; /* messages to send from on_open */
  const char *open_msgs[128];
  bool abort_on_open;
  int close_on_open; /* close code to use from on_open, 0 for none */
  int close_after;   /* close with 1000 after this many messages */
  size_t max_message;
  int order_errors; /* echo order check for the ordering test */
  int order_next;
} conn_t;

static void c_open(souk__ws_t *ws, void *ud) {
  conn_t *c = ud;
  c->opened++;
  assert_true(souk__ws_is_open(ws));
  if (c->max_message) souk__ws_set_max_message(ws, c->max_message);
  for (int i = 0; i < c->send_on_open; i++)
    assert_int_equal(souk__ws_send(ws, c->open_msgs[i], strlen(c->open_msgs[i]), false), 0);
  if (c->abort_on_open) souk__ws_abort(ws);
  if (c->close_on_open) souk__ws_close(ws, c->close_on_open, "test");
}

static void c_msg(souk__ws_t *ws, void *ud, const char *data, size_t len, bool binary) {
  conn_t *c = ud;
  if (c->order_next >= 0 && c->send_on_open > 8) {
    char want[16];
    snprintf(want, sizeof want, "m%03d", c->order_next++);
    if (len != strlen(want) || memcmp(data, want, len)) c->order_errors++;
  }
  if (c->nmsg < 8) {
    souk_buf_append(&c->msgs[c->nmsg], data, len);
    c->binary[c->nmsg] = binary;
  }
  c->nmsg++;
  if (c->close_after && c->nmsg == c->close_after) souk__ws_close(ws, 1000, NULL);
}

static void c_close(souk__ws_t *ws, void *ud, int code, const char *reason) {
  conn_t *c = ud;
  c->closes++;
  c->code = code;
  snprintf(c->reason, sizeof c->reason, "%s", reason);
  c->ws = NULL;
}

static const souk__ws_cbs_t cbs = {c_open, c_msg, c_close};

static void conn_free(conn_t *c) {
  for (int i = 0; i < 8; i++)
    souk_buf_free(&c->msgs[i]);
}

static bool timed_out;
static void timeout_cb(uv_timer_t *t) { timed_out = true; }

/* Run the loop until *flag becomes non-zero or ms pass. */
static bool run_until(const int *flag, unsigned ms) {
  uv_timer_t t;
  timed_out = false;
  uv_timer_init(souk_loop(), &t);
  uv_timer_start(&t, timeout_cb, ms, 0);
  while (!*flag && !timed_out)
    uv_run(souk_loop(), UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  return *flag != 0;
}

static void connect_path(conn_t *c, const char *path) {
  char url[128];
  snprintf(url, sizeof url, "ws://127.0.0.1:%d%s", srv.port, path);
  assert_int_equal(souk__ws_connect(url, &cbs, c, &c->ws), 0);
}

/* The next "closed N" line the server printed, or -1. */
static int server_saw_close(void) {
  char line[64];
  if (!pyserver_line(&srv, line, sizeof line, 5000)) return -1;
  int code = -1;
  if (sscanf(line, "closed %d", &code) != 1) return -1;
  return code;
}

static int setup(void **state) {
  if (!have_server) skip();
  return 0;
}

static int teardown(void **state) {
  /* Every test must leave no connection behind. */
  assert_int_equal(souk__ws_live(), 0);
  return 0;
}

/* Every allocation OpenSSL makes, counted from the start of main. */
static bool ossl_counting;
static unsigned long ossl_allocs;
static void *ossl_malloc(size_t n, const char *file, int line) {
  ossl_allocs++;
  return malloc(n);
}
static void *ossl_realloc(void *p, size_t n, const char *file, int line) {
  ossl_allocs++;
  return realloc(p, n);
}
static void ossl_free(void *p, const char *file, int line) { free(p); }

/* A plain ws:// connection, the first of the process, makes OpenSSL
 * allocate nothing: its random generator (per thread DRBGs, about 150 KB
 * kept for good) and its provider's SHA-1 stay unbuilt, because the mask
 * seed and the key come from getrandom(2) and the accept check uses
 * souk's SHA-1.  Runs first, before test_wss builds OpenSSL's state. */
static void test_plain_uses_no_openssl(void **state) {
  assert_true(ossl_counting);
  unsigned long before = ossl_allocs;
  conn_t c = {0};
  c.send_on_open = 1;
  c.open_msgs[0] = "hello";
  c.close_after = 1;
  connect_path(&c, "/echo");
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.opened, 1);
  assert_int_equal(c.nmsg, 1);
  assert_string_equal(c.msgs[0].data, "hello");
  assert_int_equal(server_saw_close(), 1000);
  assert_int_equal(ossl_allocs - before, 0);
  conn_free(&c);
}

static void test_echo_text_and_binary(void **state) {
  conn_t c = {0};
  c.send_on_open = 2;
  c.open_msgs[0] = "hello";
  c.open_msgs[1] = "{\"op\":1,\"d\":null}";
  c.close_after = 3;
  connect_path(&c, "/echo");
  assert_true(run_until(&c.opened, 5000));
  assert_int_equal(souk__ws_send(c.ws, "\x00\xff", 2, true), 0);
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.closes, 1);
  assert_int_equal(c.nmsg, 3);
  assert_string_equal(c.msgs[0].data, "hello");
  assert_false(c.binary[0]);
  assert_string_equal(c.msgs[1].data, "{\"op\":1,\"d\":null}");
  assert_int_equal(c.msgs[2].len, 2);
  assert_true(c.binary[2]);
  assert_memory_equal(c.msgs[2].data, "\x00\xff", 2);
  assert_int_equal(c.code, 1000);
  assert_int_equal(server_saw_close(), 1000);
  conn_free(&c);
}

static void test_order_many(void **state) {
  static char names[100][8];
  conn_t c = {0};
  c.send_on_open = 100;
  for (int i = 0; i < 100; i++) {
    snprintf(names[i], sizeof names[i], "m%03d", i);
    c.open_msgs[i] = names[i];
  }
  c.close_after = 100;
  connect_path(&c, "/echo");
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.nmsg, 100);
  assert_int_equal(c.order_errors, 0);
  assert_int_equal(server_saw_close(), 1000);
  conn_free(&c);
}

static void test_server_close_code(void **state) {
  conn_t c = {0};
  connect_path(&c, "/close");
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.opened, 1);
  assert_int_equal(c.closes, 1);
  assert_int_equal(c.code, 4004);
  assert_string_equal(c.reason, "auth failed");
  conn_free(&c);
}

static void test_server_close_after_message(void **state) {
  conn_t c = {0};
  c.send_on_open = 1;
  c.open_msgs[0] = "close-me";
  connect_path(&c, "/echo");
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.code, 4004);
  assert_string_equal(c.reason, "bye");
  assert_int_equal(server_saw_close(), 4004);
  conn_free(&c);
}

static void test_abrupt_drop(void **state) {
  conn_t c = {0};
  connect_path(&c, "/drop");
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.closes, 1);
  assert_int_equal(c.code, SOUK_WS_ABNORMAL);

  conn_t d = {0};
  d.send_on_open = 1;
  d.open_msgs[0] = "drop-me";
  connect_path(&d, "/echo");
  assert_true(run_until(&d.closes, 5000));
  assert_int_equal(d.code, SOUK_WS_ABNORMAL);
  assert_int_equal(server_saw_close(), 1006);
  conn_free(&c);
  conn_free(&d);
}

static void test_fragmented(void **state) {
  conn_t c = {0};
  c.send_on_open = 1;
  c.open_msgs[0] = "frag-me";
  c.close_after = 2;
  connect_path(&c, "/echo");
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.nmsg, 2);
  assert_string_equal(c.msgs[0].data, "part1-part2-part3");
  assert_false(c.binary[0]);
  assert_int_equal(c.msgs[1].len, 3);
  assert_true(c.binary[1]);
  assert_memory_equal(c.msgs[1].data, "\x01\x02\x03", 3);
  assert_int_equal(server_saw_close(), 1000);
  conn_free(&c);
}

static void test_big_message(void **state) {
  conn_t c = {0};
  c.send_on_open = 1;
  c.open_msgs[0] = "big-me";
  c.close_after = 1;
  connect_path(&c, "/echo");
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.nmsg, 1);
  assert_int_equal(c.msgs[0].len, 256 * 1200);
  for (size_t i = 0; i < c.msgs[0].len; i++)
    if ((unsigned char)c.msgs[0].data[i] != (i & 255)) fail_msg("byte %zu differs", i);
  assert_int_equal(server_saw_close(), 1000);
  conn_free(&c);
}

static void test_max_message(void **state) {
  conn_t c = {0};
  c.send_on_open = 1;
  c.open_msgs[0] = "big-me";
  c.max_message = 1000;
  connect_path(&c, "/echo");
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.nmsg, 0);
  assert_int_equal(c.code, 1009);
  assert_int_equal(server_saw_close(), 1009);
  conn_free(&c);
}

/* Frames a server must not send, written raw after the upgrade: the
 * client fails the connection with 1002 (RFC 6455 5.2 and 5.5), whatever
 * the frame's payload says. */
static void expect_protocol_error(const char *hex) {
  conn_t c = {0};
  char path[128];
  snprintf(path, sizeof path, "/raw/%s", hex);
  connect_path(&c, path);
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.opened, 1);
  assert_int_equal(c.nmsg, 0);
  if (c.code != 1002) fail_msg("frame %s: closed with %d (%s), not 1002", hex, c.code, c.reason);
  assert_int_equal(server_saw_close(), 1002);
  conn_free(&c);
}

/* Opcodes 0xB-0xF are reserved control frames: not a close, however
 * much their payload (here 4004, "authentication failed") looks like
 * one; 0x3-0x7 are reserved data frames. */
static void test_reserved_opcodes(void **state) {
  expect_protocol_error("8b020fa4");
  expect_protocol_error("8f00");
  expect_protocol_error("830178");
}

/* A close frame's body is empty or a 2-byte code and a reason; codes
 * below 1000, 1004-1006 and 1015 (which no endpoint may send), and the
 * unassigned 1016-2999 are not codes a peer may close with (RFC 6455 7.4):
 * souk neither reports them as the server's nor echoes them back. */
static void test_bad_close_frames(void **state) {
  expect_protocol_error("880103");   /* one byte */
  expect_protocol_error("880203e7"); /* 999 */
  expect_protocol_error("880203ec"); /* 1004 */
  expect_protocol_error("880203ed"); /* 1005 */
  expect_protocol_error("880203ee"); /* 1006 */
  expect_protocol_error("880203f7"); /* 1015 */
  expect_protocol_error("88020bb7"); /* 2999 */
  expect_protocol_error("8802ffff"); /* 65535 */
}

static void test_client_close_code(void **state) {
  conn_t c = {0};
  c.close_on_open = 4000;
  connect_path(&c, "/echo");
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.closes, 1);
  assert_int_equal(c.code, 4000);
  assert_int_equal(server_saw_close(), 4000);
  /* Sending after close fails cleanly. */
  conn_free(&c);
}

static void test_abort(void **state) {
  conn_t c = {0};
  c.abort_on_open = true;
  connect_path(&c, "/echo");
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.closes, 1);
  assert_int_equal(c.code, SOUK_WS_ABNORMAL);
  assert_string_equal(c.reason, "aborted");
  /* The server saw the TCP connection drop, not a close frame. */
  assert_int_equal(server_saw_close(), 1006);
  conn_free(&c);
}

static void test_send_states(void **state) {
  conn_t c = {0};
  connect_path(&c, "/echo");
  assert_int_equal(souk__ws_send(c.ws, "x", 1, false), SOUK_ECONN);
  assert_true(run_until(&c.opened, 5000));
  souk__ws_close(c.ws, 4000, NULL);
  assert_int_equal(souk__ws_send(c.ws, "x", 1, false), SOUK_ECLOSED);
  souk__ws_close(c.ws, 1000, NULL); /* ignored */
  souk__ws_abort(c.ws);             /* still reports once */
  assert_true(run_until(&c.closes, 5000));
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  assert_int_equal(c.closes, 1);
  assert_int_equal(server_saw_close(), 1006);
  conn_free(&c);
}

static void test_connect_refused(void **state) {
  conn_t c = {0};
  /* The discard port: nothing listens there on a test machine. */
  assert_int_equal(souk__ws_connect("ws://127.0.0.1:9/x", &cbs, &c, &c.ws), 0);
  assert_true(run_until(&c.closes, 20000));
  assert_int_equal(c.opened, 0);
  assert_int_equal(c.closes, 1);
  assert_int_equal(c.code, SOUK_WS_ABNORMAL);
  conn_free(&c);
}

static void test_resolve_name(void **state) {
  conn_t c = {0};
  char url[128];
  snprintf(url, sizeof url, "ws://localhost:%d/echo?v=10&encoding=json", srv.port);
  c.send_on_open = 1;
  c.open_msgs[0] = "hi";
  c.close_after = 1;
  assert_int_equal(souk__ws_connect(url, &cbs, &c, &c.ws), 0);
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.nmsg, 1);
  assert_int_equal(c.code, 1000);
  assert_int_equal(server_saw_close(), 1000);
  conn_free(&c);
}

static void test_bad_urls(void **state) {
  conn_t c = {0};
  souk__ws_t *ws = NULL;
  assert_int_equal(souk__ws_connect("http://127.0.0.1/", &cbs, &c, &ws), SOUK_EINVAL);
  assert_int_equal(souk__ws_connect("nonsense", &cbs, &c, &ws), SOUK_EINVAL);
  souk__ws_cbs_t none = {0};
  assert_int_equal(souk__ws_connect("ws://127.0.0.1/", &none, &c, &ws), SOUK_EINVAL);
  assert_null(ws);
  assert_int_equal(c.closes, 0);
}

static void test_close_while_resolving(void **state) {
  conn_t c = {0};
  connect_path(&c, "/echo");
  souk__ws_close(c.ws, 4000, NULL);
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.closes, 1);
  assert_int_equal(c.opened, 0);
  assert_int_equal(c.code, SOUK_WS_ABNORMAL);
  conn_free(&c);
}

/* A listening socket whose accept queue is full: the kernel drops further
 * SYNs, so a connection to it stays in the TCP connect for as long as the
 * client waits.  *filler is the connection that fills the queue. */
static int listen_full(int *filler, int *port) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(l, 0), 0);
  assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
  *port = ntohs(a.sin_port);
  *filler = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(*filler, (struct sockaddr *)&a, sizeof a), 0);
  return l;
}

/* Closing or aborting a connection still in its TCP connect ends it at
 * once, not when the connect times out (15 s): a shutdown or a gateway
 * reconnect during an outage where SYNs go unanswered must not wait. */
static void test_close_while_connecting(void **state) {
  int filler, port;
  int l = listen_full(&filler, &port);
  for (int k = 0; k < 2; k++) {
    conn_t c = {0};
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    assert_int_equal(souk__ws_connect(url, &cbs, &c, &c.ws), 0);
    int none = 0;
    run_until(&none, 300); /* resolved, the SYN unanswered */
    assert_int_equal(c.closes, 0);
    if (k == 0)
      souk__ws_close(c.ws, 1000, NULL);
    else
      souk__ws_abort(c.ws);
    assert_true(run_until(&c.closes, 1000));
    assert_int_equal(c.opened, 0);
    assert_int_equal(c.code, SOUK_WS_ABNORMAL);
    assert_string_equal(c.reason, "aborted");
    conn_free(&c);
  }
  close(filler);
  close(l);
}

static void test_shutdown_with_live(void **state) {
  conn_t a = {0}, b = {0}, r = {0};
  connect_path(&a, "/silent");
  connect_path(&b, "/echo");
  assert_true(run_until(&a.opened, 5000));
  assert_true(run_until(&b.opened, 5000));
  connect_path(&r, "/echo"); /* still resolving at shutdown */
  souk__ws_global_shutdown();
  int none = 0;
  run_until(&none, 200);
  assert_int_equal(a.closes, 1);
  assert_int_equal(b.closes, 1);
  assert_int_equal(r.closes, 1);
  assert_int_equal(a.code, SOUK_WS_ABNORMAL);
  assert_int_equal(souk__ws_live(), 0);
  (void)server_saw_close(); /* b's end, whatever the server made of it */
  /* A new context can be created afterwards. */
  conn_t c = {0};
  c.send_on_open = 1;
  c.open_msgs[0] = "again";
  c.close_after = 1;
  connect_path(&c, "/echo");
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.nmsg, 1);
  assert_int_equal(server_saw_close(), 1000);
  conn_free(&a);
  conn_free(&b);
  conn_free(&r);
  conn_free(&c);
}

/* wss:// against a TLS server with a throwaway CA-less self-signed
 * certificate for "localhost": the name is used for SNI and verification
 * even though the connection goes to the resolved address. */
static const char *const TLS_PY_FMT =
    "import asyncio, ssl, websockets\n"
    "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain('%s/c.pem', '%s/k.pem')\n"
    "async def handler(ws, path):\n"
    "    try:\n"
    "        async for m in ws:\n"
    "            await ws.send(m)\n"
    "    except websockets.ConnectionClosed:\n"
    "        pass\n"
    "async def main():\n"
    "    async with websockets.serve(handler, '127.0.0.1', 0, ssl=ctx) as srv:\n"
    "        print(srv.sockets[0].getsockname()[1], flush=True)\n"
    "        await asyncio.Future()\n"
    "asyncio.run(main())\n";

static bool ws_idle_now(void) { return souk__ws_global_idle(); }

static void test_wss(void **state) {
  char dir[] = "/tmp/souk-test-wss-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-subj /CN=localhost -addext subjectAltName=DNS:localhost -days 2 "
           "-keyout %s/k.pem -out %s/c.pem >/dev/null 2>&1",
           dir, dir);
  if (system(cmd) != 0) {
    rmdir(dir);
    skip();
  }
  char script[2048];
  snprintf(script, sizeof script, TLS_PY_FMT, dir, dir);
  pyserver_t tls;
  assert_int_equal(pyserver_start(&tls, script), 0);
  /* The CA takes effect with a new context. */
  souk__ws_global_shutdown();
  while (!ws_idle_now())
    uv_run(souk_loop(), UV_RUN_ONCE);
  char ca[128];
  snprintf(ca, sizeof ca, "%s/c.pem", dir);
  souk__trust_set_ca_file(ca);

  conn_t c = {0};
  char url[128];
  snprintf(url, sizeof url, "wss://localhost:%d/echo", tls.port);
  c.send_on_open = 1;
  c.open_msgs[0] = "over tls";
  c.close_after = 1;
  assert_int_equal(souk__ws_connect(url, &cbs, &c, &c.ws), 0);
  assert_true(run_until(&c.closes, 5000));
  assert_int_equal(c.opened, 1);
  assert_int_equal(c.nmsg, 1);
  assert_string_equal(c.msgs[0].data, "over tls");
  assert_int_equal(c.code, 1000);

  /* By address the certificate's name does not match: refused. */
  conn_t d = {0};
  snprintf(url, sizeof url, "wss://127.0.0.1:%d/echo", tls.port);
  assert_int_equal(souk__ws_connect(url, &cbs, &d, &d.ws), 0);
  assert_true(run_until(&d.closes, 5000));
  assert_int_equal(d.opened, 0);
  assert_int_equal(d.code, SOUK_WS_ABNORMAL);

  /* Without the CA the server is not trusted either. */
  souk__ws_global_shutdown();
  while (!ws_idle_now())
    uv_run(souk_loop(), UV_RUN_ONCE);
  souk__trust_set_ca_file(NULL);
  conn_t e = {0};
  snprintf(url, sizeof url, "wss://localhost:%d/echo", tls.port);
  assert_int_equal(souk__ws_connect(url, &cbs, &e, &e.ws), 0);
  assert_true(run_until(&e.closes, 5000));
  assert_int_equal(e.opened, 0);

  pyserver_stop(&tls);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fail_msg("cannot remove %s", dir);
  conn_free(&c);
  conn_free(&d);
  conn_free(&e);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  /* Before anything makes OpenSSL allocate (libcurl's initialisation in
   * souk_alloc_init does). */
  ossl_counting = CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free) == 1;
  souk_alloc_init();
  have_server = pyspawn_available() && pyserver_start(&srv, SERVER_PY) == 0;
  if (!have_server)
    fprintf(stderr, "test_ws: /usr/bin/python3 with websockets missing: skipping\n");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_plain_uses_no_openssl, setup, teardown),
      cmocka_unit_test_setup_teardown(test_echo_text_and_binary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_order_many, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_close_code, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_close_after_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_abrupt_drop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fragmented, setup, teardown),
      cmocka_unit_test_setup_teardown(test_big_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reserved_opcodes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_close_frames, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_close_code, setup, teardown),
      cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
      cmocka_unit_test_setup_teardown(test_send_states, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resolve_name, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_urls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_while_resolving, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_while_connecting, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_with_live, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wss, setup, teardown),
  };
  if (getenv("TEST_FILTER")) cmocka_set_test_filter(getenv("TEST_FILTER"));
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk__ws_global_shutdown();
  /* lws closes its handles asynchronously: the loop runs dry by itself. */
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  if (!souk__ws_global_idle()) rc++;
  souk__trust_set_ca_file(NULL);
  souk_loop_close();
  if (have_server) pyserver_stop(&srv);
  return rc;
}
