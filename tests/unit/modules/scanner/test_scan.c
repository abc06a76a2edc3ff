/* The scanner's engine against tests/fakes/fake_kucoin.py on loopback: a
 * good scan and the public pool it reports, waiting for the pool instead
 * of overrunning it, a 429 storm backing off and turning the health
 * WARNING then CRITICAL, an error code with HTTP 200, 5xx retries, the
 * breaker opening and closing, slow scans on an injected clock, the
 * recovery strategies each error goes through, and the offline sources
 * (simulated and recorded).  No test sleeps for the clock. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */
#include "modules/scanner/kucoin.c"
#include "modules/scanner/scan.c"
#include "modules/scanner/score.c"
#include "modules/scanner/shealth.c"
#include "../../fakectl.h"
#include "../../net/pyspawn.h"
#include "ops/recovery.h"
#include "souk/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char FAKE_PY[] =
    "import runpy, sys\n"
    "sys.argv = ['fake_kucoin.py', '--port', '0', '--print-port', '--log-level', 'WARNING']\n"
    "runpy.run_path('" SOUK_SOURCE_DIR "/tests/fakes/fake_kucoin.py', run_name='__main__')\n";

static pyserver_t srv;
static bool have_fake;

static uint64_t fake_now;
static uint64_t fake_now_ms(void *ud) {
  (void)ud;
  return fake_now;
}
static const souk_clock_t fclock = {fake_now_ms, NULL};

/* ---- the fake's control API ------------------------------------------------ */

static int fake_requests(void) {
  char *b = fakectl("/_fake/requests", NULL);
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, b, strlen(b)), 0);
  int n = (int)souk_json_count(&j, souk_json_get(&j, 0, "requests"));
  souk_json_free(&j);
  free(b);
  return n;
}

/* ---- running scans -------------------------------------------------------- */

typedef struct got {
  int calls, err;
  size_t n;
  uint64_t dur, scan_no;
  char reason[160];
  char first[SCANNER_SYMBOL_MAX + 1];
} got_t;

static void done_cb(const scan_report_t *r, void *ud) {
  got_t *g = ud;
  g->calls++;
  g->err = r->err;
  g->n = r->n;
  g->dur = r->duration_ms;
  g->scan_no = r->scan_no;
  snprintf(g->reason, sizeof g->reason, "%s", r->reason);
  snprintf(g->first, sizeof g->first, "%s", r->n ? r->ranked[0].c.symbol : "");
}

static scan_t *engine(got_t *g, scanner_source_t src) {
  scan_conf_t c;
  scan_conf_defaults(&c);
  c.source = src;
  c.base_url = fakectl_base;
  c.clock = &fclock;
  c.timeout_ms = 5000;
  c.backoff_max_ms = 60000;
  c.file = SOUK_TEST_FIXTURES "/marketdata/kucoin-futures/contracts-active-synthetic.json";
  scan_t *s = NULL;
  memset(g, 0, sizeof *g);
  assert_int_equal(scan_new(&c, done_cb, g, &s), 0);
  return s;
}

/* Run the loop until the engine reported (calls grows). */
static void wait_report(got_t *g, int calls) {
  for (int i = 0; i < 100000 && g->calls < calls; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(g->calls, calls);
}

static void scan_ok(scan_t *s, got_t *g) {
  int before = g->calls;
  assert_int_equal(scan_now(s, NULL), 0);
  wait_report(g, before + 1);
}

static souk_health_t health(scan_t *s, char *detail, size_t cap) {
  souk_health_result_t r = {0};
  scan_health(s, &r);
  if (detail) snprintf(detail, cap, "%s", r.detail);
  return r.status;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_good_scan(void **state) {
  if (!have_fake) skip();
  got_t g;
  scan_t *s = engine(&g, SCANNER_SRC_KUCOIN);
  /* Due at once, then not again before the period. */
  assert_true(scan_tick(s));
  assert_false(scan_tick(s)); /* one at a time */
  wait_report(&g, 1);
  assert_int_equal(g.err, 0);
  assert_int_equal(g.n, 40);
  assert_int_equal(g.scan_no, 1);
  size_t n;
  uint64_t at;
  const scanner_ranked_t *r = scan_ranked(s, &n, &at);
  assert_int_equal(n, 40);
  assert_true(at > 0);
  for (size_t i = 1; i < n; i++)
    assert_true(r[i - 1].score_e4 >= r[i].score_e4);
  scan_stats_t st;
  scan_get_stats(s, &st);
  assert_int_equal(st.requests, 1);
  assert_int_equal(st.pool_remaining, 1997);
  assert_int_equal(st.pool_limit, 2000);
  assert_int_equal(st.next_in_ms, 60000);
  assert_false(scan_tick(s));
  fake_now += 60000;
  assert_true(scan_tick(s));
  wait_report(&g, 2);
  assert_int_equal(fake_requests(), 2);
  assert_int_equal(health(s, NULL, 0), SOUK_HEALTH_HEALTHY);
  scan_free(s);
}

static void test_pool_is_never_overrun(void **state) {
  if (!have_fake) skip();
  /* Room for two requests of weight 3 in the window. */
  fakectl_post("/_fake/limits", "{\"limit\": 7, \"window_ms\": 60000}");
  got_t g;
  scan_t *s = engine(&g, SCANNER_SRC_KUCOIN);
  scan_ok(s, &g);
  scan_ok(s, &g);
  assert_int_equal(g.err, 0);
  uint64_t wait = 0;
  /* One left: souk waits for the reset rather than earn a 429. */
  assert_int_equal(scan_now(s, &wait), SOUK_ERATELIMIT);
  assert_true(wait > 50000 && wait <= 60000);
  assert_int_equal(fake_requests(), 2);
  scan_stats_t st;
  scan_get_stats(s, &st);
  assert_int_equal(st.pool_waits, 1);
  assert_int_equal(st.rate_limited, 0);
  scan_free(s);
}

static void test_429_storm(void **state) {
  if (!have_fake) skip();
  fakectl_post("/_fake/script",
               "{\"responses\": [{\"status\": 429, \"repeat\": -1, \"reset_ms\": 800}]}");
  got_t g;
  scan_t *s = engine(&g, SCANNER_SRC_KUCOIN);
  souk_error_stats_t es;
  for (int i = 1; i <= 11; i++) {
    scan_ok(s, &g);
    assert_int_equal(g.err, SOUK_ERATELIMIT);
    scan_stats_t st;
    scan_get_stats(s, &st);
    /* The BACKOFF strategy's 30 s, doubled per 429 in a row up to the 60 s cap. */
    assert_int_equal(st.backoff_left_ms, i == 1 ? 30000 : 60000);
    uint64_t wait = 0;
    assert_int_equal(scan_now(s, &wait), SOUK_ERATELIMIT);
    assert_int_equal(wait, st.backoff_left_ms);
    char detail[200];
    souk_health_t h = health(s, detail, sizeof detail);
    assert_int_equal(h, i < 5     ? SOUK_HEALTH_HEALTHY
                        : i <= 10 ? SOUK_HEALTH_WARNING
                                  : SOUK_HEALTH_CRITICAL);
    fake_now += st.backoff_left_ms;
  }
  assert_int_equal(souk_error_stats("scanner.ratelimit", &es), 0);
  assert_int_equal(es.total, 11);
  /* 429s show KuCoin is up: they never open the breaker. */
  scan_stats_t st;
  scan_get_stats(s, &st);
  assert_int_equal(st.breaker, SOUK_BREAKER_CLOSED);
  assert_int_equal(fake_requests(), 11);
  /* The storm ends: one good scan resets the streak. */
  fakectl_post("/_fake/script/clear", "{}");
  scan_ok(s, &g);
  assert_int_equal(g.err, 0);
  scan_get_stats(s, &st);
  assert_int_equal(st.backoff_left_ms, 0);
  /* 15 minutes after the errors the health is back. */
  fake_now += SCANNER_ERR_WINDOW_MS;
  assert_int_equal(health(s, NULL, 0), SOUK_HEALTH_HEALTHY);
  scan_free(s);
}

static void test_code_error_with_http_200(void **state) {
  if (!have_fake) skip();
  got_t g;
  scan_t *s = engine(&g, SCANNER_SRC_KUCOIN);
  scan_ok(s, &g); /* learn the pool */
  scan_stats_t st;
  scan_get_stats(s, &st);
  assert_int_equal(st.pool_remaining, 1997);
  fakectl_post("/_fake/script",
               "{\"responses\": [{\"code\": \"400100\", \"msg\": \"Parameter error\"}]}");
  fake_now += 60000;
  scan_ok(s, &g);
  assert_int_equal(g.err, SOUK_EPROTO);
  assert_non_null(strstr(g.reason, "400100"));
  assert_non_null(strstr(g.reason, "Parameter error"));
  /* The RESET strategy forgot the pool. */
  scan_get_stats(s, &st);
  assert_int_equal(st.pool_remaining, -1);
  assert_int_equal(st.api, 1);
  souk_error_stats_t es;
  assert_int_equal(souk_error_stats("scanner.api", &es), 0);
  assert_int_equal(es.by_severity[SOUK_SEV_HIGH], 1);
  /* The last good ranking is still there. */
  size_t n;
  assert_non_null(scan_ranked(s, &n, NULL));
  assert_int_equal(n, 40);
  /* Malformed bodies are the same kind of error. */
  fakectl_post("/_fake/script", "{\"responses\": [{\"malformed\": true}]}");
  fake_now += 60000;
  scan_ok(s, &g);
  assert_int_equal(g.err, SOUK_EPROTO);
  assert_non_null(strstr(g.reason, "malformed"));
  scan_free(s);
}

static void test_5xx_retry_and_breaker(void **state) {
  if (!have_fake) skip();
  fakectl_post("/_fake/script", "{\"responses\": [{\"status\": 503, \"repeat\": -1}]}");
  got_t g;
  scan_t *s = engine(&g, SCANNER_SRC_KUCOIN);
  scan_ok(s, &g);
  assert_int_equal(g.err, SOUK_EHTTP);
  scan_stats_t st;
  scan_get_stats(s, &st);
  /* The RETRY strategy: the first retry within 2 s, not a whole period. */
  assert_true(st.next_in_ms <= 2000);
  for (int i = 2; i <= 5; i++) {
    fake_now += 1000;
    scan_ok(s, &g);
    assert_int_equal(g.err, SOUK_EHTTP);
  }
  scan_get_stats(s, &st);
  assert_int_equal(st.breaker, SOUK_BREAKER_OPEN);
  souk_error_stats_t es;
  assert_int_equal(souk_error_stats("scanner.breaker", &es), 0);
  assert_int_equal(es.total, 1);
  char detail[200];
  assert_int_equal(health(s, detail, sizeof detail), SOUK_HEALTH_WARNING);
  assert_non_null(strstr(detail, "breaker OPEN"));
  /* Open: no request goes out. */
  uint64_t wait = 0;
  assert_int_equal(scan_now(s, &wait), SOUK_ERATELIMIT);
  assert_true(wait > 0 && wait <= 120000);
  assert_false(scan_tick(s));
  assert_int_equal(fake_requests(), 5);
  /* After the open timeout one probe goes; KuCoin is back; it closes. */
  fakectl_post("/_fake/script/clear", "{}");
  fake_now += 120000;
  scan_ok(s, &g);
  assert_int_equal(g.err, 0);
  scan_get_stats(s, &st);
  assert_int_equal(st.breaker, SOUK_BREAKER_CLOSED);
  assert_int_equal(souk_error_stats("scanner.breaker", &es), 0);
  assert_int_equal(es.total, 1); /* recorded once, when it opened */
  scan_free(s);
}

/* A slow answer: the fake sleeps a little for real, the clock jumps by
 * extra_ms meanwhile. */
static void slow_scan(scan_t *s, got_t *g, uint64_t extra_ms) {
  fakectl_post("/_fake/script", "{\"responses\": [{\"delay_ms\": 150}]}");
  int before = g->calls;
  assert_int_equal(scan_now(s, NULL), 0);
  fake_now += extra_ms;
  wait_report(g, before + 1);
  assert_int_equal(g->err, 0);
  assert_int_equal(g->dur, extra_ms);
  fake_now += 60000;
}

static void test_slow_scans(void **state) {
  if (!have_fake) skip();
  got_t g;
  scan_t *s = engine(&g, SCANNER_SRC_KUCOIN);
  for (int i = 0; i < 5; i++)
    slow_scan(s, &g, 1000);
  assert_int_equal(health(s, NULL, 0), SOUK_HEALTH_HEALTHY);
  /* Five of 60 s: the average of the last ten is 30.5 s. */
  for (int i = 0; i < 5; i++)
    slow_scan(s, &g, 60000);
  char detail[200];
  assert_int_equal(health(s, detail, sizeof detail), SOUK_HEALTH_WARNING);
  assert_non_null(strstr(detail, "avg scan 30.5 s"));
  /* Five of 150 s replace the quick ones: (5 x 60 + 5 x 150) / 10 = 105 s. */
  for (int i = 0; i < 5; i++)
    slow_scan(s, &g, 150000);
  assert_int_equal(health(s, detail, sizeof detail), SOUK_HEALTH_CRITICAL);
  assert_non_null(strstr(detail, "avg scan 105.0 s"));
  scan_free(s);
}

static void test_timeout_is_a_network_error(void **state) {
  if (!have_fake) skip();
  fakectl_post("/_fake/script", "{\"responses\": [{\"delay_ms\": 3000}]}");
  got_t g;
  scan_conf_t c;
  scan_conf_defaults(&c);
  c.base_url = fakectl_base;
  c.clock = &fclock;
  c.timeout_ms = 300;
  scan_t *s = NULL;
  memset(&g, 0, sizeof g);
  assert_int_equal(scan_new(&c, done_cb, &g, &s), 0);
  scan_ok(s, &g);
  assert_int_equal(g.err, SOUK_ETIMEDOUT);
  assert_non_null(strstr(g.reason, "timed out"));
  souk_error_stats_t es;
  assert_int_equal(souk_error_stats("scanner.network", &es), 0);
  assert_true(es.total >= 1);
  scan_free(s);
}

static void test_free_while_in_flight(void **state) {
  if (!have_fake) skip();
  fakectl_post("/_fake/script", "{\"responses\": [{\"delay_ms\": 300}]}");
  got_t g;
  scan_t *s = engine(&g, SCANNER_SRC_KUCOIN);
  assert_int_equal(scan_now(s, NULL), 0);
  assert_int_equal(scan_now(s, NULL), SOUK_EBUSY);
  scan_free(s);
  for (int i = 0; i < 20; i++)
    uv_run(souk_loop(), UV_RUN_NOWAIT);
  assert_int_equal(g.calls, 0);
}

static void test_offline_sources(void **state) {
  got_t g1, g2;
  scan_t *a = engine(&g1, SCANNER_SRC_SIM), *b = engine(&g2, SCANNER_SRC_SIM);
  for (int i = 0; i < 3; i++) {
    scan_ok(a, &g1);
    scan_ok(b, &g2);
    assert_int_equal(g1.err, 0);
    assert_int_equal(g1.n, 40);
    assert_string_equal(g1.first, g2.first);
  }
  size_t n1, n2;
  const scanner_ranked_t *r1 = scan_ranked(a, &n1, NULL), *r2 = scan_ranked(b, &n2, NULL);
  assert_int_equal(n1, n2);
  for (size_t i = 0; i < n1; i++) {
    assert_string_equal(r1[i].c.symbol, r2[i].c.symbol);
    assert_int_equal(r1[i].c.last_micro, r2[i].c.last_micro);
  }
  scan_free(a);
  scan_free(b);
  /* The recorded file: all 33 contracts, no request. */
  got_t g;
  scan_t *f = engine(&g, SCANNER_SRC_FILE);
  scan_ok(f, &g);
  assert_int_equal(g.err, 0);
  assert_int_equal(g.n, 33);
  scan_free(f);
  /* A missing file is refused at start. */
  scan_conf_t c;
  scan_conf_defaults(&c);
  c.source = SCANNER_SRC_FILE;
  c.file = "/nonexistent/contracts.json";
  scan_t *s = NULL;
  assert_int_equal(scan_new(&c, done_cb, &g, &s), SOUK_ENOTFOUND);
  assert_null(s);
  c.source = SCANNER_SRC_KUCOIN;
  c.base_url = "ftp://example.com";
  assert_int_equal(scan_new(&c, done_cb, &g, &s), SOUK_EINVAL);
}

/* ---- fixtures ---------------------------------------------------------------- */

static int group_setup(void **state) {
  assert_int_equal(souk_http_init(), 0);
  have_fake = access(PYSPAWN_PYTHON, X_OK) == 0 &&
              system(PYSPAWN_PYTHON " -c 'import aiohttp' >/dev/null 2>&1") == 0 &&
              pyserver_start(&srv, FAKE_PY) == 0;
  if (have_fake) snprintf(fakectl_base, sizeof fakectl_base, "http://127.0.0.1:%d", srv.port);
  return 0;
}

static int group_teardown(void **state) {
  souk_http_shutdown();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  if (have_fake) pyserver_stop(&srv);
  souk__recovery_shutdown();
  return 0;
}

static int setup(void **state) {
  fake_now = 10000000;
  souk__recovery_opts_t o = {.clock = &fclock};
  souk__recovery_init(&o);
  if (have_fake) fakectl_post("/_fake/reset", "{}");
  if (have_fake) fakectl_post("/_fake/limits", "{\"limit\": 2000, \"window_ms\": 30000}");
  return 0;
}

static int teardown(void **state) {
  for (int i = 0; i < 5; i++)
    uv_run(souk_loop(), UV_RUN_NOWAIT);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_good_scan, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pool_is_never_overrun, setup, teardown),
      cmocka_unit_test_setup_teardown(test_429_storm, setup, teardown),
      cmocka_unit_test_setup_teardown(test_code_error_with_http_200, setup, teardown),
      cmocka_unit_test_setup_teardown(test_5xx_retry_and_breaker, setup, teardown),
      cmocka_unit_test_setup_teardown(test_slow_scans, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_is_a_network_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_while_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_offline_sources, setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
