/* The Market Sim's price cache: hits, misses and refreshes on an injected
 * wall clock, coalescing of concurrent lookups into one fetch, fallback to
 * the last known price when the fetcher fails (never tradable), the
 * "fresh enough to trade" rule by the quote's own time and a closed
 * market's last price, TTL, the LRU bound, cancellation at free, and
 * persistence to SQLite and back. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
/* clang-format on */

#include "modules/market/ledger.c"
#include "modules/market/money.c"
#include "modules/market/price_hours.c"
#include "modules/market/price_parse.c"
/* The cache's background writes go through this, so a test can refuse a
 * submission (mode 1) or accept one that never runs, as a write queued when
 * the loop stops (mode 2). */
static int g_submit_mode;
static void *g_held_ud;
static souk_store_done_cb g_held_done;
static int test_tx_async(souk_store_t *st, souk_store_tx_cb fn, souk_store_done_cb done, void *ud) {
  if (g_submit_mode == 1) return SOUK_EIO;
  if (g_submit_mode == 2) {
    g_held_ud = ud;
    g_held_done = done;
    return 0;
  }
  return souk_store_tx_async(st, fn, done, ud);
}
#define souk_store_tx_async test_tx_async
#include "modules/market/pricecache.c"
#undef souk_store_tx_async
#include "souk/loop.h"

/* ---- an injected clock and fetcher ---- */

static int64_t g_now;
static uint64_t clock_now(void *ud) {
  (void)ud;
  return (uint64_t)g_now;
}
static const souk_clock_t g_clock = {clock_now, NULL};

typedef struct pending_fetch {
  char symbol[16];
  market_quote_cb cb;
  void *ud;
} pending_fetch_t;

static pending_fetch_t g_fetch[16];
static size_t g_nfetch;
static int g_fetch_rc;

static int fake_fetch(void *fud, const char *symbol, market_quote_cb cb, void *ud) {
  (void)fud;
  if (g_fetch_rc) return g_fetch_rc;
  assert_true(g_nfetch < 16);
  pending_fetch_t *p = &g_fetch[g_nfetch++];
  snprintf(p->symbol, sizeof p->symbol, "%s", symbol);
  p->cb = cb;
  p->ud = ud;
  return 0;
}

/* Answer pending fetch i with a price (price > 0) or a failure. */
static void answer(size_t i, int64_t price, int64_t quote_time) {
  pending_fetch_t *p = &g_fetch[i];
  market_chain_result_t r = {.symbol = p->symbol};
  if (price > 0) {
    snprintf(r.quote.symbol, sizeof r.quote.symbol, "%s", p->symbol);
    r.quote.price_micro = price;
    r.quote.quote_time_ms = quote_time;
    r.quote.source = "finnhub";
  } else {
    r.err = price < 0 ? SOUK_ECANCELED : SOUK_ENOTFOUND;
    r.message = "no provider could price it (finnhub: timed out)";
  }
  p->cb(&r, p->ud);
}

typedef struct got {
  int calls;
  market_pc_result_t r;
  char msg[256];
} got_t;

static void got_cb(const market_pc_result_t *r, void *ud) {
  got_t *g = ud;
  g->calls++;
  g->r = *r;
  snprintf(g->msg, sizeof g->msg, "%s", r->message ? r->message : "");
}

/* 2026-11-18 is a Wednesday: 15:00 UTC is 10:00 in New York (open). */
#define WED_OPEN INT64_C(1795014000000)
#define T_MIN    INT64_C(60000)
#define T_HOUR   (60 * T_MIN)

static market_pc_t *new_pc(size_t max) {
  g_nfetch = 0;
  g_fetch_rc = 0;
  market_pc_conf_t c = {.ttl_ms = 24 * T_HOUR,
                        .fresh_ms = 15 * T_MIN,
                        .refresh_ms = 30000,
                        .max_entries = max,
                        .wall = &g_clock,
                        .fetch = fake_fetch};
  return market_pc_new(&c);
}

static void test_miss_then_hit_then_refresh(void **state) {
  (void)state;
  g_now = WED_OPEN;
  market_pc_t *pc = new_pc(10);
  got_t a = {0};
  assert_int_equal(market_pc_get(pc, "AAPL", got_cb, &a), 0);
  assert_int_equal(a.calls, 0);
  assert_int_equal(g_nfetch, 1);
  answer(0, 189250000, g_now - 1000);
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.r.err, 0);
  assert_int_equal(a.r.quote.price_micro, 189250000);
  assert_false(a.r.cached);
  assert_true(a.r.tradable);
  /* Within refresh: a hit, no fetch, answered at once. */
  g_now += 10000;
  got_t b = {0};
  assert_int_equal(market_pc_get(pc, "AAPL", got_cb, &b), 0);
  assert_int_equal(b.calls, 1);
  assert_true(b.r.cached);
  assert_int_equal(b.r.age_ms, 11000);
  assert_int_equal(g_nfetch, 1);
  /* After refresh: asks again. */
  g_now += 30000;
  got_t c = {0};
  assert_int_equal(market_pc_get(pc, "AAPL", got_cb, &c), 0);
  assert_int_equal(g_nfetch, 2);
  answer(1, 190000000, g_now);
  assert_int_equal(c.r.quote.price_micro, 190000000);
  market_pc_stats_t st;
  market_pc_stats(pc, &st);
  assert_int_equal(st.hits, 1);
  assert_int_equal(st.misses, 1);
  assert_int_equal(st.refreshes, 1);
  assert_int_equal(st.entries, 1);
  assert_int_equal(market_pc_get(pc, "not a symbol", got_cb, &c), SOUK_EINVAL);
  market_pc_free(pc);
}

static void test_coalescing(void **state) {
  (void)state;
  g_now = WED_OPEN;
  market_pc_t *pc = new_pc(10);
  got_t g[5] = {0};
  for (int i = 0; i < 5; i++)
    assert_int_equal(market_pc_get(pc, "MSFT", got_cb, &g[i]), 0);
  got_t other = {0};
  assert_int_equal(market_pc_get(pc, "AAPL", got_cb, &other), 0);
  assert_int_equal(g_nfetch, 2); /* one per symbol */
  market_pc_stats_t st;
  market_pc_stats(pc, &st);
  assert_int_equal(st.coalesced, 4);
  assert_int_equal(st.inflight, 2);
  answer(0, 415100000, g_now);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(g[i].calls, 1);
    assert_int_equal(g[i].r.quote.price_micro, 415100000);
  }
  assert_int_equal(other.calls, 0);
  answer(1, 0, 0);
  assert_int_equal(other.calls, 1);
  assert_int_equal(other.r.err, SOUK_ENOTFOUND);
  assert_non_null(strstr(other.msg, "timed out"));
  market_pc_free(pc);
}

static void test_fallback_never_tradable(void **state) {
  (void)state;
  g_now = WED_OPEN;
  market_pc_t *pc = new_pc(10);
  got_t a = {0};
  market_pc_get(pc, "AAPL", got_cb, &a);
  answer(0, 189250000, g_now);
  assert_true(a.r.tradable);
  /* Five minutes on, every provider fails: the cached price, marked. */
  g_now += 5 * T_MIN;
  got_t b = {0};
  market_pc_get(pc, "AAPL", got_cb, &b);
  answer(1, 0, 0);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.r.err, 0);
  assert_true(b.r.fallback);
  assert_false(b.r.tradable); /* even though it is only 5 minutes old */
  assert_int_equal(b.r.age_ms, 5 * T_MIN);
  assert_non_null(strstr(b.msg, "timed out"));
  market_pc_stats_t st;
  market_pc_stats(pc, &st);
  assert_int_equal(st.stale, 1);
  assert_int_equal(st.fetch_errors, 1);
  /* Past the TTL the last known price is gone. */
  g_now += 25 * T_HOUR;
  assert_int_equal(market_pc_peek(pc, "AAPL", NULL, NULL), SOUK_ENOTFOUND);
  got_t c = {0};
  market_pc_get(pc, "AAPL", got_cb, &c);
  answer(2, 0, 0);
  assert_int_equal(c.r.err, SOUK_ENOTFOUND);
  /* No fetcher at all (no provider): answered at once. */
  g_fetch_rc = SOUK_ENOTSUP;
  got_t d = {0};
  assert_int_equal(market_pc_get(pc, "IBM", got_cb, &d), 0);
  assert_int_equal(d.calls, 1);
  assert_int_equal(d.r.err, SOUK_ENOTFOUND);
  market_pc_free(pc);
}

static void test_freshness_by_quote_time(void **state) {
  (void)state;
  g_now = WED_OPEN;
  market_pc_t *pc = new_pc(10);
  /* Fetched now, but the provider says the trade was 20 minutes ago while
   * the market is open: too old to trade. */
  got_t a = {0};
  market_pc_get(pc, "THIN", got_cb, &a);
  answer(0, 5000000, g_now - 20 * T_MIN);
  assert_int_equal(a.r.err, 0);
  assert_false(a.r.fallback);
  assert_false(a.r.tradable);
  assert_int_equal(a.r.age_ms, 20 * T_MIN);
  /* No quote time: the fetch time counts. */
  market_quote_t q = {.symbol = "X", .price_micro = 1, .quote_time_ms = 0};
  assert_true(market_pc_tradable(pc, &q, g_now, g_now + 14 * T_MIN));
  assert_false(market_pc_tradable(pc, &q, g_now, g_now + 16 * T_MIN));
  /* Saturday 2026-11-21 15:00 UTC: Friday's 15:59 New York price (20:59
   * UTC) is still the last price; Thursday's is not. */
  int64_t sat = WED_OPEN + 3 * 24 * T_HOUR;
  int64_t fri_close = WED_OPEN + 2 * 24 * T_HOUR + 5 * T_HOUR + 59 * T_MIN;
  q.quote_time_ms = fri_close;
  assert_true(market_pc_tradable(pc, &q, sat - T_MIN, sat));
  /* ... but only while the fetch itself is recent. */
  assert_false(market_pc_tradable(pc, &q, sat - 20 * T_MIN, sat));
  q.quote_time_ms = fri_close - 24 * T_HOUR;
  assert_false(market_pc_tradable(pc, &q, sat - T_MIN, sat));
  market_pc_free(pc);
}

static void test_lru_bound(void **state) {
  (void)state;
  g_now = WED_OPEN;
  market_pc_t *pc = new_pc(2);
  market_quote_t q = {.price_micro = 1000000, .quote_time_ms = g_now, .source = "finnhub"};
  strcpy(q.symbol, "AAA");
  market_pc_put(pc, &q);
  g_now += 1000;
  strcpy(q.symbol, "BBB");
  market_pc_put(pc, &q);
  /* Use AAA, so BBB is the least recently used. */
  g_now += 1000;
  got_t a = {0};
  market_pc_get(pc, "AAA", got_cb, &a);
  assert_true(a.r.cached);
  strcpy(q.symbol, "CCC");
  market_pc_put(pc, &q);
  assert_int_equal(market_pc_count(pc), 2);
  assert_int_equal(market_pc_peek(pc, "AAA", NULL, NULL), 0);
  assert_int_equal(market_pc_peek(pc, "CCC", NULL, NULL), 0);
  assert_int_equal(market_pc_peek(pc, "BBB", NULL, NULL), SOUK_ENOTFOUND);
  market_pc_stats_t st;
  market_pc_stats(pc, &st);
  assert_int_equal(st.evictions, 1);
  /* Bad quotes are ignored. */
  q.price_micro = 0;
  strcpy(q.symbol, "DDD");
  market_pc_put(pc, &q);
  assert_int_equal(market_pc_peek(pc, "DDD", NULL, NULL), SOUK_ENOTFOUND);
  market_pc_clear(pc);
  assert_int_equal(market_pc_count(pc), 0);
  market_pc_free(pc);
}

/* The entries grow as symbols arrive (not sized for the bound at start):
 * every symbol stays findable across the growth, and the bound still
 * holds, evicting the least recently used. */
static void test_grows_to_bound(void **state) {
  (void)state;
  g_now = WED_OPEN;
  market_pc_t *pc = new_pc(100);
  market_quote_t q = {.price_micro = 1000000, .quote_time_ms = g_now, .source = "finnhub"};
  for (int i = 0; i < 110; i++) {
    snprintf(q.symbol, sizeof q.symbol, "S%03d", i);
    q.price_micro = 1000000 + i;
    g_now += 10;
    q.quote_time_ms = g_now;
    market_pc_put(pc, &q);
    assert_int_equal(market_pc_count(pc), i < 100 ? (size_t)i + 1 : 100);
  }
  market_pc_stats_t st;
  market_pc_stats(pc, &st);
  assert_int_equal(st.evictions, 10);
  for (int i = 0; i < 110; i++) {
    char sym[8];
    snprintf(sym, sizeof sym, "S%03d", i);
    market_quote_t got;
    int rc = market_pc_peek(pc, sym, &got, NULL);
    if (i < 10) {
      assert_int_equal(rc, SOUK_ENOTFOUND);
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(got.price_micro, 1000000 + i);
    }
  }
  market_pc_free(pc);
}

static void test_free_cancels_waiters(void **state) {
  (void)state;
  g_now = WED_OPEN;
  market_pc_t *pc = new_pc(10);
  got_t a = {0}, b = {0};
  market_pc_get(pc, "AAPL", got_cb, &a);
  market_pc_get(pc, "AAPL", got_cb, &b);
  market_pc_free(pc);
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.r.err, SOUK_ECANCELED);
  assert_int_equal(b.calls, 1);
  /* The fetcher answers later (cancelled): nothing is called again. */
  answer(0, -1, 0);
  assert_int_equal(a.calls, 1);
  assert_int_equal(b.calls, 1);
}

/* ---- persistence on SQLite ---- */

typedef struct done_t {
  int calls, status;
  size_t n;
} done_t;

static void done_cb(void *ud, int status, size_t n) {
  done_t *d = ud;
  d->calls++;
  d->status = status;
  d->n = n;
}

static void run_until(const int *flag) {
  for (int i = 0; i < 10000 && !*flag; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_true(*flag);
}

static void test_persist_and_reload(void **state) {
  (void)state;
  char dir[] = "/tmp/souk-pc-XXXXXX";
  assert_non_null(mkdtemp(dir));
  souk_store_conf_t sc;
  souk_store_conf_defaults(&sc);
  sc.backup_before_migrate = false;
  souk_store_t *st = NULL;
  assert_int_equal(souk_store_open(&sc, dir, &st), 0);

  g_now = WED_OPEN;
  g_nfetch = 0;
  g_fetch_rc = 0;
  market_pc_conf_t c = {.wall = &g_clock, .fetch = fake_fetch, .store = st};
  market_pc_t *pc = market_pc_new(&c);
  got_t a = {0};
  market_pc_get(pc, "BRK.B", got_cb, &a);
  answer(0, 412345678, g_now - 2000);
  /* The background writer saves the changed entry. */
  market_pc_stats_t s;
  for (int i = 0; i < 10000; i++) {
    market_pc_stats(pc, &s);
    if (s.persisted) break;
    uv_run(souk_loop(), UV_RUN_ONCE);
  }
  assert_int_equal(s.persisted, 1);
  market_quote_t q = {.price_micro = 189250000,
                      .prev_close_micro = 187500000,
                      .quote_time_ms = g_now,
                      .source = "alpaca"};
  strcpy(q.symbol, "AAPL");
  market_pc_put(pc, &q);
  done_t d = {0};
  assert_int_equal(market_pc_flush(pc, done_cb, &d), 0);
  run_until(&d.calls);
  assert_int_equal(d.status, 0);
  assert_int_equal(d.n, 2);
  /* Let the background writer finish before freeing. */
  for (int i = 0; i < 100 && souk_work_pending(); i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  market_pc_free(pc);

  /* A new cache (a restart) loads both. */
  pc = market_pc_new(&c);
  done_t r = {0};
  assert_int_equal(market_pc_reload(pc, done_cb, &r), 0);
  run_until(&r.calls);
  assert_int_equal(r.status, 0);
  assert_int_equal(market_pc_count(pc), 2);
  market_quote_t out;
  int64_t fetched;
  assert_int_equal(market_pc_peek(pc, "AAPL", &out, &fetched), 0);
  assert_int_equal(out.price_micro, 189250000);
  assert_int_equal(out.prev_close_micro, 187500000);
  assert_string_equal(out.source, "alpaca");
  assert_int_equal(fetched, g_now);
  assert_int_equal(market_pc_peek(pc, "BRK.B", &out, NULL), 0);
  assert_int_equal(out.quote_time_ms, g_now - 2000);
  /* A lookup a minute later still asks, and falls back on a failure. */
  g_now += T_MIN;
  got_t b = {0};
  market_pc_get(pc, "AAPL", got_cb, &b);
  answer(1, 0, 0);
  assert_true(b.r.fallback);
  assert_int_equal(b.r.quote.price_micro, 189250000);
  /* Rows older than the TTL are not loaded. */
  g_now += 25 * T_HOUR;
  market_pc_clear(pc);
  done_t r2 = {0};
  assert_int_equal(market_pc_reload(pc, done_cb, &r2), 0);
  run_until(&r2.calls);
  assert_int_equal(market_pc_count(pc), 0);
  assert_int_equal(market_pc_flush_sync(pc), 0);
  market_pc_free(pc);

  /* Without a store, persistence says so. */
  c.store = NULL;
  pc = market_pc_new(&c);
  assert_int_equal(market_pc_flush(pc, done_cb, &d), SOUK_ENOTSUP);
  assert_int_equal(market_pc_reload(pc, done_cb, &d), SOUK_ENOTSUP);
  market_pc_free(pc);

  souk_store_close(st);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static souk_store_t *open_store(char *dir) {
  assert_non_null(mkdtemp(dir));
  souk_store_conf_t sc;
  souk_store_conf_defaults(&sc);
  sc.backup_before_migrate = false;
  souk_store_t *st = NULL;
  assert_int_equal(souk_store_open(&sc, dir, &st), 0);
  return st;
}

static void close_store(souk_store_t *st, const char *dir) {
  for (int i = 0; i < 1000 && souk_work_pending(); i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  souk_store_close(st);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

typedef struct rows_io {
  market_last_price_t *rows;
  size_t n;
} rows_io_t;

static int save_rows_tx(souk_db_t *db, void *ud) {
  rows_io_t *r = ud;
  return market_last_price_save(db, r->rows, r->n);
}

static int load_rows_tx(souk_db_t *db, void *ud) {
  rows_io_t *r = ud;
  souk_free(r->rows);
  r->rows = NULL;
  return market_last_price_load_all(db, &r->rows, &r->n);
}

static market_last_price_t lp_row(const char *sym, int64_t price, int64_t fetched) {
  market_last_price_t r;
  memset(&r, 0, sizeof r);
  snprintf(r.symbol, sizeof r.symbol, "%s", sym);
  r.price_micro = price;
  r.quote_time_ms = fetched;
  r.fetched_ms = fetched;
  snprintf(r.source, sizeof r.source, "finnhub");
  return r;
}

static int64_t stored_price(souk_store_t *st, const char *sym) {
  rows_io_t io = {0};
  assert_int_equal(souk_store_tx(st, load_rows_tx, &io), 0);
  int64_t p = 0;
  for (size_t i = 0; i < io.n; i++)
    if (strcmp(io.rows[i].symbol, sym) == 0) p = io.rows[i].price_micro;
  souk_free(io.rows);
  return p;
}

static void put_price(market_pc_t *pc, const char *sym, int64_t price) {
  market_quote_t q = {.price_micro = price, .quote_time_ms = g_now, .source = "finnhub"};
  snprintf(q.symbol, sizeof q.symbol, "%s", sym);
  market_pc_put(pc, &q);
}

/* A stored row is replaced only by one fetched no earlier: writes that
 * arrive out of order never put an older price back. */
static void test_store_keeps_the_newer_row(void **state) {
  (void)state;
  char dir[] = "/tmp/souk-pc-XXXXXX";
  souk_store_t *st = open_store(dir);
  market_last_price_t rows[1] = {lp_row("AAPL", 2000000, WED_OPEN + 2000)};
  rows_io_t io = {rows, 1};
  assert_int_equal(souk_store_tx(st, save_rows_tx, &io), 0);
  rows[0] = lp_row("AAPL", 1000000, WED_OPEN + 1000);
  assert_int_equal(souk_store_tx(st, save_rows_tx, &io), 0);
  assert_int_equal(stored_price(st, "AAPL"), 2000000);
  rows[0] = lp_row("AAPL", 3000000, WED_OPEN + 2000); /* same time: the later write wins */
  assert_int_equal(souk_store_tx(st, save_rows_tx, &io), 0);
  assert_int_equal(stored_price(st, "AAPL"), 3000000);
  close_store(st, dir);
}

/* A reload merges: a quote that arrived while it ran stays (with its dirty
 * flag), entries the store lacks stay, older entries take the stored row. */
static void test_reload_merges(void **state) {
  (void)state;
  char dir[] = "/tmp/souk-pc-XXXXXX";
  souk_store_t *st = open_store(dir);
  g_now = WED_OPEN;
  market_last_price_t rows[2] = {lp_row("AAPL", 100000000, WED_OPEN - T_MIN),
                                 lp_row("BRK.B", 400000000, WED_OPEN - T_MIN)};
  rows_io_t io = {rows, 2};
  assert_int_equal(souk_store_tx(st, save_rows_tx, &io), 0);
  market_pc_conf_t c = {.wall = &g_clock, .store = st};
  market_pc_t *pc = market_pc_new(&c);
  pc->autosave_running = true; /* keep the dirty flags where the test sees them */
  done_t r = {0};
  assert_int_equal(market_pc_reload(pc, done_cb, &r), 0);
  /* While the reload runs: a newer AAPL, a MSFT the store lacks, and an
   * older BRK.B. */
  put_price(pc, "AAPL", 200000000);
  put_price(pc, "MSFT", 415000000);
  g_now = WED_OPEN - 2 * T_MIN;
  put_price(pc, "BRK.B", 390000000);
  g_now = WED_OPEN;
  run_until(&r.calls);
  assert_int_equal(r.status, 0);
  assert_int_equal(market_pc_count(pc), 3);
  market_quote_t q;
  assert_int_equal(market_pc_peek(pc, "AAPL", &q, NULL), 0);
  assert_int_equal(q.price_micro, 200000000);
  assert_true(pc_find(pc, "AAPL")->dirty);
  assert_int_equal(market_pc_peek(pc, "MSFT", &q, NULL), 0);
  assert_int_equal(q.price_micro, 415000000);
  assert_true(pc_find(pc, "MSFT")->dirty);
  assert_int_equal(market_pc_peek(pc, "BRK.B", &q, NULL), 0);
  assert_int_equal(q.price_micro, 400000000);
  assert_false(pc_find(pc, "BRK.B")->dirty);
  market_pc_free(pc);
  close_store(st, dir);
}

/* A background write that could not be submitted gives its rows' dirty
 * flags back, so the next write carries them. */
static void test_refused_write_stays_dirty(void **state) {
  (void)state;
  char dir[] = "/tmp/souk-pc-XXXXXX";
  souk_store_t *st = open_store(dir);
  g_now = WED_OPEN;
  market_pc_conf_t c = {.wall = &g_clock, .store = st};
  market_pc_t *pc = market_pc_new(&c);
  g_submit_mode = 1;
  put_price(pc, "AAPL", 189000000);
  assert_true(pc_find(pc, "AAPL")->dirty);
  g_submit_mode = 0;
  put_price(pc, "MSFT", 415000000);
  market_pc_stats_t s;
  for (int i = 0; i < 10000; i++) {
    market_pc_stats(pc, &s);
    if (s.persisted) break;
    uv_run(souk_loop(), UV_RUN_ONCE);
  }
  assert_int_equal(s.persisted, 2);
  assert_int_equal(stored_price(st, "AAPL"), 189000000);
  market_pc_free(pc);
  close_store(st, dir);
}

/* At shutdown every entry is written, including ones a queued background
 * write held (that write is cancelled with the loop). */
static void test_flush_sync_writes_held_rows(void **state) {
  (void)state;
  char dir[] = "/tmp/souk-pc-XXXXXX";
  souk_store_t *st = open_store(dir);
  g_now = WED_OPEN;
  market_pc_conf_t c = {.wall = &g_clock, .store = st};
  market_pc_t *pc = market_pc_new(&c);
  g_submit_mode = 2;
  g_held_ud = NULL;
  put_price(pc, "AAPL", 189000000);
  g_submit_mode = 0;
  assert_non_null(g_held_ud);
  assert_int_equal(market_pc_flush_sync(pc), 0);
  assert_int_equal(stored_price(st, "AAPL"), 189000000);
  market_pc_free(pc);
  g_held_done(g_held_ud, SOUK_ECANCELED); /* the loop cancels it */
  close_store(st, dir);
}

/* Detaching the fetcher: later misses fail without calling it. */
static void test_detach_fetch(void **state) {
  (void)state;
  g_now = WED_OPEN;
  market_pc_t *pc = new_pc(10);
  market_pc_detach_fetch(pc);
  got_t a = {0};
  assert_int_equal(market_pc_get(pc, "AAPL", got_cb, &a), 0);
  assert_int_equal(g_nfetch, 0);
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.r.err, SOUK_ENOTFOUND);
  market_pc_free(pc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_miss_then_hit_then_refresh),
      cmocka_unit_test(test_coalescing),
      cmocka_unit_test(test_fallback_never_tradable),
      cmocka_unit_test(test_freshness_by_quote_time),
      cmocka_unit_test(test_lru_bound),
      cmocka_unit_test(test_grows_to_bound),
      cmocka_unit_test(test_free_cancels_waiters),
      cmocka_unit_test(test_persist_and_reload),
      cmocka_unit_test(test_store_keeps_the_newer_row),
      cmocka_unit_test(test_reload_merges),
      cmocka_unit_test(test_refused_write_stays_dirty),
      cmocka_unit_test(test_flush_sync_writes_held_rows),
      cmocka_unit_test(test_detach_fetch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
