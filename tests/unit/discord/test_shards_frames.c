/* The shards' glue between a WebSocket and a gateway session, fed messages
 * directly (no socket): after a corrupt compressed message the session
 * closes the connection, and the frames that still arrive before the
 * close completes are dropped quietly, not decoded again and warned about
 * one by one. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zstd.h>

#include <cmocka.h>
/* clang-format on */

#include "../../../src/discord/shards.c"
#include "../logcap.h"

/* A session whose transport is the test: it records closes. */
static int closes;
static int t_send(void *ud, const char *text, size_t len) { return 0; }
static void t_close(void *ud, int code) { closes++; }
static void t_connect(void *ud, const char *url) {}
static void t_timer(void *ud, int64_t delay) {}
static void t_request_identify(void *ud) {}
static void t_dispatch(void *ud, const char *name, uint64_t seq, const souk_json_t *j, int d) {}
static void t_fatal(void *ud, int code, const char *msg) {}
static uint64_t t_now(void *ud) { return 1000; }
static double t_rand(void *ud) { return 0.5; }
static const souk__gateway_ops_t T_OPS = {
    .send = t_send,
    .close = t_close,
    .connect = t_connect,
    .timer = t_timer,
    .request_identify = t_request_identify,
    .dispatch = t_dispatch,
    .fatal = t_fatal,
    .now_ms = t_now,
    .rand01 = t_rand,
};

static void test_frames_after_corrupt_message_dropped(void **state) {
  assert_int_equal(logcap_open(), 0);
  souk_log_set_level(SOUK_LOG_INFO);
  memset(&S, 0, sizeof S);
  S.compress = SOUK_GW_COMPRESS_ZSTD;
  shard_t sh = {.id = 7};
  assert_int_equal(souk__zstdstream_init(&sh.zd, 0), 0);
  souk__gateway_conf_t gc = {.token = "x.y.z", .gateway_url = "ws://127.0.0.1:1/"};
  sh.gw = souk__gateway_new(&gc, &T_OPS, &sh);
  assert_non_null(sh.gw);
  souk__gateway_start(sh.gw);
  souk__gateway_on_open(sh.gw);
  /* The glue only compares the connection with the shard's: no socket is
   * needed, and the session's transport ops are the test's. */
  souk__ws_t *ws = (souk__ws_t *)&sh;
  sh.ws = ws;

  const char junk[] = "this is not zstd at all";
  ws_message_cb(ws, &sh, junk, sizeof junk, true);
  assert_int_equal(log_count("corrupt data"), 1);
  assert_int_equal(closes, 1);
  assert_int_equal(souk__gateway_state(sh.gw), SOUK_GW_CLOSING);
  /* The server goes on sending until it sees our close. */
  for (int i = 0; i < 20; i++)
    ws_message_cb(ws, &sh, junk, sizeof junk, true);
  ws_message_cb(ws, &sh, "{\"op\":11}", 9, false);
  assert_int_equal(log_count("corrupt data"), 1);
  assert_int_equal(closes, 1);
  assert_int_equal(sh.bytes_compressed, sizeof junk);
  if (log_count("corrupt data") != 1) log_dump();
  log_reset();

  souk__gateway_free(sh.gw);
  souk__zstdstream_free(&sh.zd);
}

int main(void) {
  souk_alloc_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frames_after_corrupt_message_dropped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
