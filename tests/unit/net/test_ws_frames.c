/* The WebSocket client's frame handling fed bytes directly, on a
 * connection with no socket (as tests/fuzz/fuzz_ws.c does): what it would
 * write stays in its output buffer, as if the peer never read it, so the
 * buffer's size is what a peer that stops reading could make souk hold. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "../../../src/net/ws.c"

static int closes, close_code, opens, messages;
static char close_why[160];
static void f_open(souk__ws_t *ws, void *ud) { opens++; }
static void f_message(souk__ws_t *ws, void *ud, const char *data, size_t len, bool binary) {
  messages++;
}
static void f_close(souk__ws_t *ws, void *ud, int code, const char *reason) {
  closes++;
  close_code = code;
  snprintf(close_why, sizeof close_why, "%s", reason);
}
static const souk__ws_cbs_t fcbs = {f_open, f_message, f_close};

/* An open connection without a socket. */
static souk__ws_t *fake_open(void) {
  souk__ws_t *ws = souk_calloc(1, sizeof *ws);
  ws->cbs = fcbs;
  ws->max_message = 65536;
  ws->url.path = souk_strdup("/");
  ws->host_hdr = souk_strdup("gateway.discord.gg");
  uv_timer_init(souk_loop(), &ws->timer);
  ws->timer.data = ws;
  ws->handles = 1;
  live_add(ws);
  assert_int_equal(souk__ws_global_init(), 0);
  ws->upgraded = true;
  ws->state = WS_OPEN;
  ws->opened = true;
  return ws;
}

static void fake_end(souk__ws_t *ws) {
  int before = closes;
  if (ws->state != WS_FINISHING) finish(ws, SOUK_WS_ABNORMAL, "done");
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  assert_int_equal(closes, before + 1);
}

static void feed(souk__ws_t *ws, const void *data, size_t len) {
  souk_buf_append(&ws->rx, data, len);
  on_plain(ws);
}

/* Unmask the one frame at the start of out: its opcode, payload in pl. */
static int read_out_frame(const souk__ws_t *ws, unsigned char *pl, size_t *n) {
  const unsigned char *p = (const unsigned char *)ws->out.data;
  assert_true(ws->out.len >= 6);
  assert_true(p[1] & 0x80); /* a client's frames are masked */
  size_t len = p[1] & 0x7f;
  assert_true(len < 126);
  const unsigned char *mk = p + 2;
  for (size_t i = 0; i < len; i++)
    pl[i] = p[6 + i] ^ mk[i & 3];
  *n = len;
  return p[0] & 0x0f;
}

/* A peer that sends pings and never reads the pongs: the pong for the
 * first is written, and what waits to be written stays bounded however
 * many pings come (RFC 6455 5.5.3 lets a pong answer only the latest). */
static void test_ping_flood_bounded(void **state) {
  souk__ws_t *ws = fake_open();
  unsigned char ping[2 + 125];
  ping[0] = 0x89;
  ping[1] = 125;
  for (int i = 0; i < 125; i++)
    ping[2 + i] = (unsigned char)i;
  feed(ws, ping, sizeof ping);
  unsigned char pl[125];
  size_t n = 0;
  assert_int_equal(read_out_frame(ws, pl, &n), 0xA);
  assert_int_equal(n, 125);
  assert_memory_equal(pl, ping + 2, 125);

  /* 40,000 more, 5 MB of pongs if each were answered. */
  souk_buf_t burst = {0};
  for (int i = 0; i < 400; i++)
    souk_buf_append(&burst, ping, sizeof ping);
  for (int k = 0; k < 100; k++) {
    feed(ws, burst.data, burst.len);
    assert_int_equal(ws->state, WS_OPEN);
  }
  souk_buf_free(&burst);
  if (ws->out.len > 256 * 1024)
    fail_msg("%zu bytes of pongs wait to be written", ws->out.len);
  fake_end(ws);
}

/* After a protocol error souk closes with 1002; the server's answer to
 * that close ends the connection at once, not the close timeout. */
static void test_close_reply_after_protocol_error(void **state) {
  souk__ws_t *ws = fake_open();
  int before = closes;
  /* A text frame with a reserved bit set, then a text frame that must not
   * be delivered after the error. */
  const unsigned char bad[] = {0xC1, 0x02, 'h', 'i', 0x81, 0x02, 'h', 'o'};
  feed(ws, bad, sizeof bad);
  assert_int_equal(messages, 0);
  assert_int_equal(ws->state, WS_CLOSING);
  unsigned char pl[125];
  size_t n = 0;
  assert_int_equal(read_out_frame(ws, pl, &n), 0x8);
  assert_true(n >= 2);
  assert_int_equal(pl[0] << 8 | pl[1], 1002);
  /* The server's close, echoing the code. */
  const unsigned char reply[] = {0x88, 0x02, 0x03, 0xEA};
  feed(ws, reply, sizeof reply);
  assert_int_equal(ws->state, WS_FINISHING);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  assert_int_equal(closes, before + 1);
  assert_int_equal(close_code, 1002);
  assert_int_equal(messages, 0);
}

/* A send that TLS refuses ends the connection: it cannot go on with a
 * frame that may be half written. */
static void test_send_tls_failure_ends(void **state) {
  souk__ws_t *ws = fake_open();
  /* A TLS client that has not shaken hands: SSL_write cannot send. */
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  assert_non_null(ctx);
  ws->ssl = SSL_new(ctx);
  ws->rbio = BIO_new(BIO_s_mem());
  ws->wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ws->ssl, ws->rbio, ws->wbio);
  SSL_set_connect_state(ws->ssl);
  int before = closes;
  assert_int_equal(souk__ws_send(ws, "hello", 5, false), SOUK_ECLOSED);
  assert_int_equal(ws->state, WS_FINISHING);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  assert_int_equal(closes, before + 1);
  assert_int_equal(close_code, SOUK_WS_ABNORMAL);
  assert_string_equal(close_why, "write failed");
  SSL_CTX_free(ctx);
}

/* A connection waiting for the answer to its upgrade, with the key of
 * RFC 6455's example (whose accept value is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=). */
static souk__ws_t *fake_upgrading(void) {
  souk__ws_t *ws = fake_open();
  ws->upgraded = false;
  ws->opened = false;
  ws->state = WS_CONNECTING;
  snprintf(ws->key, sizeof ws->key, "dGhlIHNhbXBsZSBub25jZQ==");
  return ws;
}

/* Feed an upgrade answer with extra header lines; 1 if it opened. */
static int upgrade_with(const char *lines) {
  souk__ws_t *ws = fake_upgrading();
  int o = opens, c = closes;
  char answer[512];
  snprintf(answer, sizeof answer,
           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n%s\r\n",
           lines);
  feed(ws, answer, strlen(answer));
  if (opens == o + 1) {
    fake_end(ws);
    return 1;
  }
  assert_int_equal(ws->state, WS_FINISHING);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  assert_int_equal(closes, c + 1);
  assert_int_equal(close_code, SOUK_WS_ABNORMAL);
  assert_non_null(strstr(close_why, "connect failed"));
  return 0;
}

/* RFC 6455 4.1: the client fails the connection when the answer lacks
 * Connection: Upgrade, or turns on an extension or a subprotocol it did
 * not ask for. */
static void test_upgrade_answer_checked(void **state) {
  assert_int_equal(upgrade_with("Connection: Upgrade\r\n"), 1);
  assert_int_equal(upgrade_with("connection: keep-alive, upgrade\r\n"), 1);
  assert_int_equal(upgrade_with(""), 0);
  assert_int_equal(upgrade_with("Connection: close\r\n"), 0);
  assert_int_equal(upgrade_with("Connection: upgrades\r\n"), 0);
  assert_int_equal(
      upgrade_with("Connection: Upgrade\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"), 0);
  assert_non_null(strstr(close_why, "extension or subprotocol"));
  assert_int_equal(upgrade_with("Connection: Upgrade\r\nSec-WebSocket-Protocol: chat\r\n"), 0);
}

/* RFC 6455 8.1: a text message that is not UTF-8 fails the connection
 * with 1007 and is not delivered; a character split between two
 * fragments is fine, and binary messages are not text. */
static void test_text_must_be_utf8(void **state) {
  souk__ws_t *ws = fake_open();
  int m = messages;
  const unsigned char good[] = {0x81, 0x06, 'h', 0xc3, 0xa9, 'l', 'l', 'o'};
  feed(ws, good, sizeof good);
  const unsigned char split[] = {0x01, 0x02, 'a', 0xe2, 0x80, 0x02, 0x82, 0xac};
  feed(ws, split, sizeof split);
  const unsigned char bin[] = {0x82, 0x02, 0xff, 0xfe};
  feed(ws, bin, sizeof bin);
  assert_int_equal(messages, m + 3);
  assert_int_equal(ws->state, WS_OPEN);
  assert_int_equal(ws->out.len, 0);
  /* A surrogate, encoded: not UTF-8. */
  const unsigned char bad[] = {0x81, 0x0b, '{', '"', 'a', '"', ':', '"', 0xed, 0xa0, 0x80, '"', '}'};
  feed(ws, bad, sizeof bad);
  assert_int_equal(messages, m + 3);
  assert_int_equal(ws->state, WS_CLOSING);
  unsigned char pl[125];
  size_t n = 0;
  assert_int_equal(read_out_frame(ws, pl, &n), 0x8);
  assert_true(n >= 2);
  assert_int_equal(pl[0] << 8 | pl[1], 1007);
  fake_end(ws);

  /* The same in fragments: a truncated character at the end. */
  ws = fake_open();
  const unsigned char frag[] = {0x01, 0x01, 'a', 0x80, 0x02, 'b', 0xc3};
  feed(ws, frag, sizeof frag);
  assert_int_equal(messages, m + 3);
  assert_int_equal(ws->state, WS_CLOSING);
  assert_int_equal(read_out_frame(ws, pl, &n), 0x8);
  assert_int_equal(pl[0] << 8 | pl[1], 1007);
  fake_end(ws);
}

/* Long text goes through the check 32 and 8 bytes at a time: a character
 * anywhere in it, across those steps' edges too, is still checked exactly
 * (a valid one delivered, a stray or truncated byte fails with 1007). */
static void test_utf8_checked_at_every_offset(void **state) {
  enum { LEN = 100 };
  for (size_t at = 0; at + 3 <= LEN; at++) {
    unsigned char f[2 + LEN];
    f[0] = 0x81;
    f[1] = LEN;
    memset(f + 2, 'x', LEN);
    /* U+20AC, three bytes, starting at byte `at`. */
    f[2 + at] = 0xe2;
    f[3 + at] = 0x82;
    f[4 + at] = 0xac;
    souk__ws_t *ws = fake_open();
    int m = messages;
    feed(ws, f, sizeof f);
    assert_int_equal(messages, m + 1);
    assert_int_equal(ws->state, WS_OPEN);
    /* Its last byte dropped: a truncated character followed by ASCII. */
    f[4 + at] = 'x';
    feed(ws, f, sizeof f);
    assert_int_equal(messages, m + 1);
    assert_int_equal(ws->state, WS_CLOSING);
    unsigned char pl[125];
    size_t n = 0;
    assert_int_equal(read_out_frame(ws, pl, &n), 0x8);
    assert_int_equal(pl[0] << 8 | pl[1], 1007);
    fake_end(ws);
  }
  /* A byte that is never UTF-8 as the very last one, after 99 of ASCII. */
  unsigned char f[2 + LEN];
  f[0] = 0x81;
  f[1] = LEN;
  memset(f + 2, 'x', LEN);
  f[1 + LEN] = 0xff;
  souk__ws_t *ws = fake_open();
  int m = messages;
  feed(ws, f, sizeof f);
  assert_int_equal(messages, m);
  assert_int_equal(ws->state, WS_CLOSING);
  fake_end(ws);
}

int main(void) {
  souk_alloc_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ping_flood_bounded),
      cmocka_unit_test(test_close_reply_after_protocol_error),
      cmocka_unit_test(test_send_tls_failure_ends),
      cmocka_unit_test(test_upgrade_answer_checked),
      cmocka_unit_test(test_text_must_be_utf8),
      cmocka_unit_test(test_utf8_checked_at_every_offset),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk__ws_global_shutdown();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  souk_loop_close();
  return rc;
}
