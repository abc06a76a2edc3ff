/* The alert webhook against tests/fakes/fake_webhook.py on loopback:
 * Slack's JSON, retries after 5xx and 429 (honouring Retry-After), no
 * retry of other 4xx, the per-minute pace on an injected clock, a bounded
 * queue that says what it dropped, a URL that never reaches the log, and
 * the drain at exit. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */
#include "../fakectl.h"
#include "../logcap.h"
#include "../net/pyspawn.h"
#include "ops/alertsink.h"
#include "souk/err.h"
#include "souk/http.h"
#include "souk/json.h"
#include "souk/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char FAKE_PY[] =
    "import runpy, sys\n"
    "sys.argv = ['fake_webhook.py', '--port', '0', '--print-port', '--log-level', 'WARNING']\n"
    "runpy.run_path('" SOUK_SOURCE_DIR "/tests/fakes/fake_webhook.py', run_name='__main__')\n";

static pyserver_t srv;
static bool have_fake;
static char hook[128];

static uint64_t fake_now;
static uint64_t fake_now_ms(void *ud) {
  (void)ud;
  return fake_now;
}
static const souk_clock_t fclock = {fake_now_ms, NULL};

/* Deliveries the fake saw, and the text of number i (or of the last when
 * i is -1) into text. */
static int posts(int i, char *text, size_t cap, int *status) {
  char *b = fakectl("/_fake/posts", NULL);
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, b, strlen(b)), 0);
  int arr = souk_json_get(&j, 0, "posts");
  int n = (int)souk_json_count(&j, arr);
  if (text && n > 0) {
    int e = souk_json_at(&j, arr, (size_t)(i < 0 ? n - 1 : i));
    souk_json_str(&j, souk_json_path(&j, e, "json", "text", NULL), text, cap);
    char ct[64] = "";
    souk_json_str(&j, souk_json_get(&j, e, "content_type"), ct, sizeof ct);
    assert_string_equal(ct, "application/json");
    int64_t st = 0;
    souk_json_i64(&j, souk_json_get(&j, e, "status"), &st);
    if (status) *status = (int)st;
  }
  souk_json_free(&j);
  free(b);
  return n;
}

static void start(uint32_t per_minute, uint32_t retries, const souk_clock_t *clock) {
  souk__alertsink_opts_t o = {.url = hook,
                              .per_minute = per_minute,
                              .retries = retries,
                              .retry_base_ms = 50,
                              .timeout_ms = 2000,
                              .clock = clock};
  assert_int_equal(souk__alertsink_start(&o), 0);
  assert_true(souk__alertsink_on());
}

/* Run the loop until the sink is idle (nothing queued or in flight). */
static void settle(int max_iter) {
  souk__alertsink_stats_t st;
  for (int i = 0; i < max_iter; i++) {
    souk__alertsink_stats(&st);
    if (st.queued == 0 && !st.in_flight) return;
    uv_run(souk_loop(), UV_RUN_ONCE);
    fake_now += 1000; /* for the sinks paced on the injected clock */
  }
  log_dump();
  fail_msg("the sink did not settle");
}

static souk__alertsink_stats_t stats(void) {
  souk__alertsink_stats_t st;
  souk__alertsink_stats(&st);
  return st;
}

static void test_delivers_slack_json(void **state) {
  if (!have_fake) skip();
  start(10, 3, NULL);
  assert_int_equal(souk__alertsink_post("**souk high error** `scanner.api`: code 400100"), 0);
  settle(1000);
  char text[512];
  int status = 0;
  assert_int_equal(posts(-1, text, sizeof text, &status), 1);
  assert_int_equal(status, 200);
  assert_string_equal(text, "**souk high error** `scanner.api`: code 400100");
  assert_int_equal(stats().delivered, 1);
  souk__alertsink_stop();
  assert_false(souk__alertsink_on());
  assert_int_equal(souk__alertsink_post("x"), SOUK_ENOTSUP);
}

static void test_retries(void **state) {
  if (!have_fake) skip();
  free(fakectl("/_fake/script", "{\"responses\": [{\"status\": 500}, {\"status\": 502}]}"));
  start(10, 3, &fclock);
  souk__alertsink_post("after two 5xx");
  settle(1000);
  assert_int_equal(posts(-1, NULL, 0, NULL), 3);
  souk__alertsink_stats_t st = stats();
  assert_int_equal(st.delivered, 1);
  assert_int_equal(st.retries, 2);
  /* A 429 waits for Retry-After (1 s here), not for the 50 ms base. */
  free(fakectl("/_fake/script", "{\"responses\": [{\"status\": 429, \"retry_after\": 1}]}"));
  uint64_t t0 = souk_now_ms();
  souk__alertsink_post("after a 429");
  settle(1000);
  assert_true(souk_now_ms() - t0 >= 1000);
  assert_int_equal(stats().delivered, 2);
  /* Other 4xx answers are not retried. */
  free(fakectl("/_fake/script", "{\"responses\": [{\"status\": 400}]}"));
  souk__alertsink_post("refused");
  settle(1000);
  assert_int_equal(posts(-1, NULL, 0, NULL), 6);
  assert_int_equal(stats().failed, 1);
  souk__alertsink_stop();
  /* Retries run out. */
  free(fakectl("/_fake/script", "{\"responses\": [{\"status\": 503}, {\"status\": 503}, "
                                "{\"status\": 503}, {\"status\": 503}]}"));
  start(10, 2, &fclock);
  souk__alertsink_post("gives up");
  settle(1000);
  assert_int_equal(posts(-1, NULL, 0, NULL), 9);
  assert_int_equal(stats().failed, 1);
  assert_int_equal(stats().retries, 2);
  souk__alertsink_stop();
}

static void test_pace_per_minute(void **state) {
  if (!have_fake) skip();
  fake_now = 1000000;
  start(2, 0, &fclock);
  for (int i = 0; i < 3; i++)
    souk__alertsink_post("paced");
  /* The first goes at once; the second a second later. */
  for (int i = 0; i < 200 && posts(-1, NULL, 0, NULL) < 1; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(posts(-1, NULL, 0, NULL), 1);
  for (int i = 0; i < 3; i++)
    uv_run(souk_loop(), UV_RUN_NOWAIT);
  assert_int_equal(posts(-1, NULL, 0, NULL), 1);
  fake_now += 1000;
  for (int i = 0; i < 200 && posts(-1, NULL, 0, NULL) < 2; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(posts(-1, NULL, 0, NULL), 2);
  /* Two in this minute: the third waits for the first to leave it. */
  fake_now += 30000;
  for (int i = 0; i < 3; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(posts(-1, NULL, 0, NULL), 2);
  assert_int_equal(stats().queued, 1);
  fake_now += 29000; /* 60 s after the first */
  for (int i = 0; i < 200 && posts(-1, NULL, 0, NULL) < 3; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(posts(-1, NULL, 0, NULL), 3);
  souk__alertsink_stop();
}

static void test_bounded_queue(void **state) {
  if (!have_fake) skip();
  free(fakectl("/_fake/script", "{\"responses\": [{\"delay_ms\": 400}]}"));
  fake_now = 5000000;
  start(60, 0, &fclock);
  char t[32];
  for (int i = 0; i < 40; i++) {
    snprintf(t, sizeof t, "alert %d", i);
    souk__alertsink_post(t);
  }
  souk__alertsink_stats_t st = stats();
  assert_int_equal(st.queued, 32);
  assert_int_equal(st.dropped, 8);
  /* The first (in flight) and the last 31 are kept. */
  settle(5000);
  char text[512];
  int n = posts(-1, NULL, 0, NULL);
  assert_int_equal(n, 32);
  posts(0, text, sizeof text, NULL);
  assert_string_equal(text, "alert 0");
  posts(1, text, sizeof text, NULL);
  assert_non_null(strstr(text, "alert 9"));
  assert_non_null(strstr(text, "(+8 alerts dropped by the rate limit)"));
  posts(2, text, sizeof text, NULL);
  assert_string_equal(text, "alert 10");
  souk__alertsink_stop();
}

static void test_url_stays_secret(void **state) {
  if (!have_fake) skip();
  free(fakectl("/_fake/script", "{\"responses\": [{\"status\": 403}]}"));
  log_reset();
  start(10, 0, NULL);
  souk__alertsink_post("x");
  settle(1000);
  assert_int_equal(log_count("refused an alert with HTTP 403"), 1);
  assert_int_equal(log_count("T0KEN-secret-part"), 0);
  /* Even a log line that quotes it is redacted. */
  SOUK_WARN("test", "leak attempt %s", hook);
  assert_int_equal(log_count("T0KEN-secret-part"), 0);
  souk__alertsink_stop();
  /* Not http(s): refused. */
  souk__alertsink_opts_t o = {.url = "ftp://example.com/hook"};
  assert_int_equal(souk__alertsink_start(&o), SOUK_EINVAL);
  assert_false(souk__alertsink_on());
}

static void test_drain_at_exit(void **state) {
  if (!have_fake) skip();
  free(fakectl("/_fake/script", "{\"responses\": [{\"delay_ms\": 200}]}"));
  start(10, 1, &fclock);
  souk__alertsink_post("the session was refused");
  souk__alertsink_post("second");
  souk__alertsink_drain(5000);
  assert_false(souk__alertsink_on());
  assert_int_equal(souk__alertsink_post("too late"), SOUK_ENOTSUP);
  /* The loop runs until both are delivered and the sink stopped itself. */
  for (int i = 0; i < 1000 && stats().delivered < 2; i++) {
    uv_run(souk_loop(), UV_RUN_ONCE);
    fake_now += 1000;
  }
  assert_int_equal(stats().delivered, 2);
  char text[512];
  posts(0, text, sizeof text, NULL);
  assert_string_equal(text, "the session was refused");
  for (int i = 0; i < 10; i++)
    uv_run(souk_loop(), UV_RUN_NOWAIT);
  assert_false(souk__alertsink_on());
}

static int group_setup(void **state) {
  assert_int_equal(logcap_open(), 0);
  assert_int_equal(souk_http_init(), 0);
  have_fake = access(PYSPAWN_PYTHON, X_OK) == 0 &&
              system(PYSPAWN_PYTHON " -c 'import aiohttp' >/dev/null 2>&1") == 0 &&
              pyserver_start(&srv, FAKE_PY) == 0;
  if (have_fake) {
    snprintf(fakectl_base, sizeof fakectl_base, "http://127.0.0.1:%d", srv.port);
    snprintf(hook, sizeof hook, "%s/api/webhooks/123/T0KEN-secret-part/slack", fakectl_base);
  }
  return 0;
}

static int group_teardown(void **state) {
  souk__alertsink_stop();
  souk_http_shutdown();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  if (have_fake) pyserver_stop(&srv);
  return 0;
}

static int setup(void **state) {
  if (have_fake) free(fakectl("/_fake/reset", "{}"));
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_delivers_slack_json, setup),
      cmocka_unit_test_setup(test_retries, setup),
      cmocka_unit_test_setup(test_pace_per_minute, setup),
      cmocka_unit_test_setup(test_bounded_queue, setup),
      cmocka_unit_test_setup(test_url_stays_secret, setup),
      cmocka_unit_test_setup(test_drain_at_exit, setup),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
