/* Quotes shared by the processes of one bot through Redis (sharedquote.h),
 * against a real redis-server on loopback: two "processes" (a cache, a
 * shared layer and a price cache each, over one Redis) where a quote one
 * fetched from its providers serves the other, with the time it was
 * fetched; a shared quote older than the refresh interval is fetched
 * again; Redis gone, each asks its own providers; a lookup waiting for
 * Redis at shutdown is answered once, cancelled; and the value's format.
 *
 * The providers are a fake fetch function that holds each lookup until
 * the test answers it.  Without /usr/bin/redis-server (or
 * SOUK_TEST_REDIS_SERVER) the Redis tests are skipped with a message. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "../../cache/redissrv.h"
#include "modules/market/pricecache.h"
#include "modules/market/sharedquote.h"
#include "souk/alloc.h"
#include "souk/cache.h"
#include "souk/err.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REFRESH_MS 30000

static bool g_have_redis;

/* ---- the wall clock both processes use ------------------------------------------------ */

static int64_t g_now = 1800000000000LL;
static uint64_t clock_now(void *ud) {
  (void)ud;
  return (uint64_t)g_now;
}
static const souk_clock_t g_wall = {clock_now, NULL};

/* ---- fake providers ------------------------------------------------------------------- */

typedef struct prov {
  int calls;
  char symbol[16];
  market_quote_cb cb;
  void *ud;
} prov_t;

static int prov_fetch(void *fud, const char *symbol, market_quote_cb cb, void *ud) {
  prov_t *p = fud;
  p->calls++;
  snprintf(p->symbol, sizeof p->symbol, "%s", symbol);
  p->cb = cb;
  p->ud = ud;
  return 0;
}

/* Answer the held lookup with a price. */
static void prov_answer(prov_t *p, int64_t price_micro) {
  assert_non_null(p->cb);
  market_chain_result_t r = {.symbol = p->symbol};
  snprintf(r.quote.symbol, sizeof r.quote.symbol, "%s", p->symbol);
  r.quote.price_micro = price_micro;
  r.quote.prev_close_micro = price_micro - 1000000;
  r.quote.quote_time_ms = 0; /* no provider time: its age is when it was fetched */
  r.quote.source = "finnhub";
  market_quote_cb cb = p->cb;
  p->cb = NULL;
  cb(&r, p->ud);
}

/* ---- one process: a cache, the shared layer, a price cache ------------------------------- */

typedef struct proc {
  souk_cache_t *cache;
  prov_t prov;
  market_sq_t *sq;
  market_pc_t *pc;
} proc_t;

static void tick_cb(uv_timer_t *t) { (void)t; }

/* Run the loop for about ms milliseconds (a 1 ms tick keeps it turning). */
static void run_for(uint64_t ms) {
  uint64_t end = souk_now_ms() + ms;
  uv_timer_t tick;
  uv_timer_init(souk_loop(), &tick);
  uv_timer_start(&tick, tick_cb, 1, 1);
  while (souk_now_ms() < end)
    uv_run(souk_loop(), UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
}

static void proc_open(proc_t *p, bool redis) {
  memset(p, 0, sizeof *p);
  souk_cache_conf_t conf = {0};
  conf.memory_max = 1 << 20;
  conf.key_prefix = "t:";
  conf.ttl_default_ms = 60000;
  conf.value_max = 1 << 20;
  conf.reconnect_min_ms = 20;
  conf.reconnect_max_ms = 100;
  conf.command_timeout_ms = 300;
  conf.sweep_interval_ms = 1000;
  if (redis) conf.url = g_url;
  assert_int_equal(souk_cache_new(&conf, NULL, &p->cache), 0);
  for (int i = 0; redis && i < 400 && !souk_cache_redis_up(p->cache); i++)
    run_for(5);
  if (redis) assert_true(souk_cache_redis_up(p->cache));
  market_sq_conf_t sc = {.cache = p->cache,
                         .fetch = prov_fetch,
                         .fetch_ud = &p->prov,
                         .ttl_ms = REFRESH_MS,
                         .wall = &g_wall};
  p->sq = market_sq_new(&sc);
  market_pc_conf_t pc = {.refresh_ms = REFRESH_MS,
                         .wall = &g_wall,
                         .fetch = market_sq_fetch,
                         .fetch_ud = p->sq};
  p->pc = market_pc_new(&pc);
}

static void proc_close(proc_t *p) {
  market_pc_detach_fetch(p->pc);
  market_sq_cancel(p->sq);
  market_pc_free(p->pc);
  market_sq_free(p->sq);
  souk_cache_close(p->cache);
  run_for(2);
}

/* ---- a lookup through the price cache ----------------------------------------------------- */

typedef struct got {
  int calls, err;
  market_quote_t q;
  int64_t fetched_ms;
} got_t;

static void got_cb(const market_pc_result_t *r, void *ud) {
  got_t *g = ud;
  g->calls++;
  g->err = r->err;
  if (!r->err) {
    g->q = r->quote;
    g->fetched_ms = r->fetched_ms;
  }
}

static void wait_for(const int *flag, uint64_t ms) {
  uint64_t end = souk_now_ms() + ms;
  while (!*flag && souk_now_ms() < end)
    run_for(2);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_one_fetch_serves_both(void **state) {
  (void)state;
  proc_t a, b;
  proc_open(&a, true);
  proc_open(&b, true);
  got_t ga = {0}, gb = {0};
  int64_t t0 = g_now;
  assert_int_equal(market_pc_get(a.pc, "AAPL", got_cb, &ga), 0);
  /* A misses in Redis, then asks its providers. */
  wait_for(&a.prov.calls, 2000);
  assert_int_equal(a.prov.calls, 1);
  prov_answer(&a.prov, 190000000);
  assert_int_equal(ga.calls, 1);
  assert_int_equal(ga.err, 0);
  run_for(50); /* the set reaches Redis */
  market_sq_stats_t st;
  market_sq_stats(a.sq, &st);
  assert_int_equal(st.published, 1);
  /* Ten seconds later B is asked: Redis has A's quote, B's providers are
   * not asked, and the quote is as old as it is. */
  g_now += 10000;
  assert_int_equal(market_pc_get(b.pc, "AAPL", got_cb, &gb), 0);
  wait_for(&gb.calls, 2000);
  assert_int_equal(gb.calls, 1);
  assert_int_equal(gb.err, 0);
  assert_int_equal(b.prov.calls, 0);
  assert_int_equal(gb.q.price_micro, 190000000);
  assert_int_equal(gb.q.prev_close_micro, 189000000);
  assert_string_equal(gb.q.source, "finnhub");
  assert_int_equal(gb.fetched_ms, t0);
  market_sq_stats(b.sq, &st);
  assert_int_equal(st.shared_hits, 1);
  assert_int_equal(st.fetched, 0);
  /* B's own cache now holds it until the refresh interval from A's fetch
   * runs out: 19 s later still a hit, 21 s later a refresh, and since the
   * shared one is as old, B asks its providers. */
  g_now += 19000;
  got_t gb2 = {0};
  assert_int_equal(market_pc_get(b.pc, "AAPL", got_cb, &gb2), 0);
  assert_int_equal(gb2.calls, 1);
  assert_int_equal(b.prov.calls, 0);
  g_now += 2000;
  got_t gb3 = {0};
  assert_int_equal(market_pc_get(b.pc, "AAPL", got_cb, &gb3), 0);
  wait_for(&b.prov.calls, 2000);
  assert_int_equal(b.prov.calls, 1);
  prov_answer(&b.prov, 191000000);
  assert_int_equal(gb3.calls, 1);
  assert_int_equal(gb3.q.price_micro, 191000000);
  proc_close(&a);
  proc_close(&b);
}

static void test_redis_gone_asks_own_providers(void **state) {
  (void)state;
  proc_t a;
  proc_open(&a, true);
  redis_stop();
  for (int i = 0; i < 300 && souk_cache_redis_up(a.cache); i++)
    run_for(5);
  /* A lookup sent before the cache noticed may fail in Redis: either way
   * it ends at the providers, answered once. */
  got_t g = {0};
  assert_int_equal(market_pc_get(a.pc, "MSFT", got_cb, &g), 0);
  wait_for(&a.prov.calls, 2000);
  assert_int_equal(a.prov.calls, 1);
  prov_answer(&a.prov, 400000000);
  assert_int_equal(g.calls, 1);
  assert_int_equal(g.err, 0);
  assert_int_equal(g.q.price_micro, 400000000);
  proc_close(&a);
  assert_int_equal(redis_start(), 0);
}

static void test_memory_only_goes_straight_to_providers(void **state) {
  (void)state;
  proc_t a;
  proc_open(&a, false);
  got_t g = {0};
  assert_int_equal(market_pc_get(a.pc, "IBM", got_cb, &g), 0);
  /* Asked at once, not through the memory backend. */
  assert_int_equal(a.prov.calls, 1);
  prov_answer(&a.prov, 150000000);
  assert_int_equal(g.calls, 1);
  market_sq_stats_t st;
  market_sq_stats(a.sq, &st);
  assert_int_equal(st.published, 0);
  assert_int_equal(st.fetched, 1);
  proc_close(&a);
}

static void test_cancel_answers_once(void **state) {
  (void)state;
  proc_t a;
  proc_open(&a, true);
  got_t g = {0};
  assert_int_equal(market_pc_get(a.pc, "TSLA", got_cb, &g), 0);
  /* Still waiting for Redis: shutdown answers it, cancelled. */
  market_pc_detach_fetch(a.pc);
  market_sq_cancel(a.sq);
  assert_int_equal(g.calls, 1);
  assert_int_equal(g.err, SOUK_ECANCELED);
  /* Redis's reply, when it comes, is dropped: no second answer, and the
   * providers are not asked. */
  run_for(100);
  assert_int_equal(g.calls, 1);
  assert_int_equal(a.prov.calls, 0);
  assert_int_equal(market_sq_fetch(a.sq, "TSLA", NULL, NULL), SOUK_EINVAL);
  proc_close(&a);
}

static void test_format(void **state) {
  (void)state;
  market_quote_t q = {.symbol = "BRK.B",
                      .price_micro = 412345678,
                      .prev_close_micro = 0,
                      .quote_time_ms = 1799999999000LL,
                      .source = "yahoo"};
  char buf[160];
  int n = market_sq_encode(&q, 1800000000123LL, buf, sizeof buf);
  assert_true(n > 0);
  assert_string_equal(buf, "v1 412345678 0 1799999999000 1800000000123 yahoo");
  market_quote_t out;
  int64_t at = 0;
  assert_int_equal(market_sq_decode(buf, (size_t)n, "BRK.B", &out, &at), 0);
  assert_string_equal(out.symbol, "BRK.B");
  assert_int_equal(out.price_micro, 412345678);
  assert_int_equal(out.quote_time_ms, 1799999999000LL);
  assert_int_equal(at, 1800000000123LL);
  assert_string_equal(out.source, "yahoo");
  /* Not a quote: a miss, never a made-up price. */
  const char *bad[] = {"", "v1", "v2 1 0 0 1 yahoo", "v1 0 0 0 1 yahoo", "v1 5 0 0 0 yahoo",
                       "v1 5 0 0 1 nasdaq", "v1 5 x 0 1 yahoo", "v1 5 0 0 1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(market_sq_decode(bad[i], strlen(bad[i]), "X", &out, &at), SOUK_EPARSE);
  assert_int_equal(market_sq_encode(&q, 1, buf, 10), -1);
}

static int redis_setup(void **state) {
  (void)state;
  if (!g_have_redis) {
    skip();
  }
  return redis_fresh();
}

int main(void) {
  g_have_redis = access(redis_bin(), X_OK) == 0;
  if (!g_have_redis)
    fprintf(stderr, "SKIP market/sharedquote: %s not found; quotes shared through Redis were not "
                    "tested\n",
            redis_bin());
  atexit(redis_stop);
  signal(SIGPIPE, SIG_IGN);
  souk_alloc_init();
  redis_pick_port();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_format),
      cmocka_unit_test_setup(test_one_fetch_serves_both, redis_setup),
      cmocka_unit_test_setup(test_cancel_answers_once, redis_setup),
      cmocka_unit_test_setup(test_memory_only_goes_straight_to_providers, redis_setup),
      cmocka_unit_test_setup(test_redis_gone_asks_own_providers, redis_setup),
  };
  int failed = cmocka_run_group_tests_name("modules/market/sharedquote", tests, NULL, NULL);
  redis_stop();
  souk_loop_close();
  return failed ? 1 : 0;
}
