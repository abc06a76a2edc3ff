/* The cache: one behavioural body run against the memory backend and
 * against a real redis-server started on loopback, plus memory-only tests
 * (LRU order, byte budget, sweep, trim, glob) and the Redis fallback tests
 * (unreachable at start, killed and restarted mid-stream, invalidation of
 * what changed during an outage).
 *
 * redis-server runs as a child with PR_SET_PDEATHSIG, is killed by the
 * group teardown and again by an atexit handler, so a failing test never
 * leaves one behind.  Without /usr/bin/redis-server (or the path in
 * SOUK_TEST_REDIS_SERVER) the Redis group is skipped with a message. */
/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "cache/cache_int.h"
#include "core/config.h"
#include "../logcap.h"
#include "redissrv.h"
#include "souk/alloc.h"
#include "cache/cacheconf.h"
#include "souk/cache.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fixtures ---------------------------------------------------------------- */

typedef struct backend {
  const char *name;
  bool redis;
} backend_t;

static backend_t be_memory = {"memory", false};
static backend_t be_redis = {"redis", true};

static uint64_t g_now = 1000000; /* the injected clock */
static uint64_t fake_now(void *ud) { return g_now; }
static const souk_clock_t fake_clock = {fake_now, NULL};


/* Runs the loop until *flag is set or ms pass; a referenced timer keeps
 * uv_run from returning at once while only unreferenced timers exist. */
static void tick_cb(uv_timer_t *t) {}
static bool run_until(const bool *flag, uint64_t ms) {
  uv_timer_t tick;
  uv_timer_init(souk_loop(), &tick);
  uv_timer_start(&tick, tick_cb, 5, 5);
  uint64_t end = souk_now_ms() + ms;
  while (!(flag && *flag) && souk_now_ms() < end)
    uv_run(souk_loop(), UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  return flag ? *flag : true;
}
static void run_for(uint64_t ms) { run_until(NULL, ms); }

static souk_cache_conf_t base_conf(const backend_t *be) {
  souk_cache_conf_t conf = {0};
  conf.memory_max = 1 << 20;
  conf.key_prefix = "t:";
  conf.ttl_default_ms = 60000;
  conf.value_max = 1 << 20;
  conf.reconnect_min_ms = 20;
  conf.reconnect_max_ms = 200;
  conf.command_timeout_ms = 300;
  conf.sweep_interval_ms = 1000;
  if (be->redis) conf.url = g_url;
  return conf;
}

/* Creates a cache for the backend and, for Redis, waits until it is up and
 * empties the server. */
static souk_cache_t *open_cache(const backend_t *be, souk_cache_conf_t *conf) {
  souk_cache_t *c = NULL;
  assert_int_equal(souk_cache_new(conf, be->redis ? NULL : &fake_clock, &c), 0);
  if (be->redis) {
    for (int i = 0; i < 400 && !souk_cache_redis_up(c); i++)
      run_for(5);
    assert_true(souk_cache_redis_up(c));
  }
  return c;
}

static void close_cache(souk_cache_t *c) {
  souk_cache_close(c);
  run_for(1);
}

/* Moves time on: the fake clock for memory, real time for Redis. */
static void advance(const backend_t *be, uint64_t ms) {
  if (be->redis)
    run_for(ms);
  else
    g_now += ms;
}

/* ---- synchronous wrappers for the shared body -------------------------------- */

typedef struct res {
  bool done;
  int status;
  char val[256];
  size_t len;
} res_t;

static void get_done(void *ud, int status, const void *val, size_t len) {
  res_t *r = ud;
  r->done = true;
  r->status = status;
  r->len = len;
  if (status == 0) memcpy(r->val, val, len < sizeof r->val ? len : sizeof r->val);
}

static void op_done(void *ud, int status) {
  res_t *r = ud;
  r->done = true;
  r->status = status;
}

static int do_get(souk_cache_t *c, int cat, const char *key, res_t *r) {
  memset(r, 0, sizeof *r);
  assert_int_equal(souk_cache_get(c, cat, key, get_done, r), 0);
  /* Callbacks never run before the call returns. */
  assert_false(r->done);
  assert_true(run_until(&r->done, 3000));
  return r->status;
}

static int do_set(souk_cache_t *c, int cat, const char *key, const char *val, uint64_t ttl) {
  res_t r = {0};
  int rc = ttl ? souk_cache_set_ttl(c, cat, key, val, strlen(val), ttl, op_done, &r)
               : souk_cache_set(c, cat, key, val, strlen(val), op_done, &r);
  assert_int_equal(rc, 0);
  assert_false(r.done);
  assert_true(run_until(&r.done, 3000));
  return r.status;
}

static int do_del(souk_cache_t *c, const char *key) {
  res_t r = {0};
  assert_int_equal(souk_cache_del(c, key, op_done, &r), 0);
  assert_true(run_until(&r.done, 3000));
  return r.status;
}

static int do_clear(souk_cache_t *c, const char *pat) {
  res_t r = {0};
  assert_int_equal(souk_cache_clear(c, pat, op_done, &r), 0);
  assert_true(run_until(&r.done, 5000));
  return r.status;
}

static const souk_cache_counters_t *counters(const backend_t *be, const souk_cache_stats_t *st) {
  return be->redis ? &st->redis : &st->memory;
}

/* ---- the shared behavioural body --------------------------------------------- */

static void test_basic(void **state) {
  const backend_t *be = *state;
  souk_cache_conf_t conf = base_conf(be);
  souk_cache_t *c = open_cache(be, &conf);
  int prices = souk_cache_category(c, "prices", 0);
  assert_true(prices > 0);
  res_t r;

  assert_int_equal(do_get(c, prices, "k1", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_set(c, prices, "k1", "v1", 0), 0);
  assert_int_equal(do_get(c, prices, "k1", &r), 0);
  assert_int_equal(r.len, 2);
  assert_memory_equal(r.val, "v1", 2);

  /* Values are bytes, NULs included, and are copied on set. */
  char bin[] = {'a', 0, 'b', 0, (char)0xff};
  res_t s = {0};
  assert_int_equal(souk_cache_set(c, 0, "bin", bin, sizeof bin, op_done, &s), 0);
  bin[0] = 'X';
  assert_true(run_until(&s.done, 3000));
  assert_int_equal(do_get(c, 0, "bin", &r), 0);
  assert_int_equal(r.len, 5);
  assert_memory_equal(r.val, "a\0b\0\xff", 5);

  /* An empty value is a value, not a miss. */
  assert_int_equal(do_set(c, 0, "empty", "", 0), 0);
  assert_int_equal(do_get(c, 0, "empty", &r), 0);
  assert_int_equal(r.len, 0);

  /* Replace, then delete; deleting a missing key succeeds. */
  assert_int_equal(do_set(c, prices, "k1", "v2", 0), 0);
  assert_int_equal(do_get(c, prices, "k1", &r), 0);
  assert_memory_equal(r.val, "v2", 2);
  assert_int_equal(do_del(c, "k1"), 0);
  assert_int_equal(do_get(c, prices, "k1", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_del(c, "never"), 0);

  /* Fire-and-forget works too. */
  assert_int_equal(souk_cache_set(c, 0, "ff", "x", 1, NULL, NULL), 0);
  assert_int_equal(do_get(c, 0, "ff", &r), 0);

  /* Bad arguments fail synchronously and never call back. */
  res_t bad = {0};
  assert_int_equal(souk_cache_get(c, 0, "", get_done, &bad), SOUK_EINVAL);
  assert_int_equal(souk_cache_get(c, 99, "k", get_done, &bad), SOUK_EINVAL);
  assert_int_equal(souk_cache_set(c, 0, "big", "x", (size_t)conf.value_max + 1, op_done, &bad),
                   SOUK_ETOOBIG);
  assert_int_equal(souk_cache_set_ttl(c, 0, "k", "x", 1, 0, op_done, &bad), SOUK_EINVAL);
  char *longkey = souk_malloc(4098);
  memset(longkey, 'k', 4097);
  longkey[4097] = '\0';
  assert_int_equal(souk_cache_del(c, longkey, op_done, &bad), SOUK_EINVAL);
  longkey[4096] = '\0';
  assert_int_equal(do_set(c, 0, longkey, "L", 0), 0);
  assert_int_equal(do_del(c, longkey), 0);
  souk_free(longkey);
  run_for(10);
  assert_false(bad.done);

  souk_cache_stats_t st;
  souk_cache_stats(c, &st);
  const souk_cache_counters_t *k = counters(be, &st);
  assert_int_equal(k->hits, 5);
  assert_int_equal(k->misses, 2);
  assert_int_equal(k->sets, 6);
  assert_int_equal(k->dels, 3);
  assert_int_equal(k->errors, 0);
  assert_int_equal(st.redis_up, be->redis);
  assert_int_equal(st.fallbacks, 0);
  souk_cache_cat_stats_t cs;
  assert_int_equal(souk_cache_category_stats(c, prices, &cs), 0);
  assert_string_equal(cs.name, "prices");
  assert_int_equal(cs.hits, 2);
  assert_int_equal(cs.misses, 2);
  assert_int_equal(cs.sets, 2);
  assert_int_equal(souk_cache_category_stats(c, 0, &cs), 0);
  assert_int_equal(cs.hits, 3);
  close_cache(c);
}

static void test_ttl(void **state) {
  const backend_t *be = *state;
  souk_cache_conf_t conf = base_conf(be);
  char *ttls[] = {"short=150ms"};
  conf.ttl = (souk_conf_strs_t){ttls, 1};
  souk_cache_t *c = open_cache(be, &conf);
  int cat = souk_cache_category(c, "short", 60000);
  assert_int_equal(souk_cache_category_ttl(c, cat), 150);
  res_t r;
  assert_int_equal(do_set(c, cat, "a", "1", 0), 0);
  assert_int_equal(do_set(c, cat, "b", "2", 400), 0);
  advance(be, 60);
  assert_int_equal(do_get(c, cat, "a", &r), 0);
  advance(be, 200);
  /* Expired: category TTL 150 ms has passed; b's explicit 400 ms has not. */
  assert_int_equal(do_get(c, cat, "a", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_get(c, cat, "b", &r), 0);
  advance(be, 300);
  assert_int_equal(do_get(c, cat, "b", &r), SOUK_ENOTFOUND);
  if (!be->redis) {
    souk_cache_stats_t st;
    souk_cache_stats(c, &st);
    assert_int_equal(st.memory.expired, 2);
    assert_int_equal(st.mem_entries, 0);
    assert_int_equal(st.mem_bytes, 0);
  }
  close_cache(c);
}

static void test_clear(void **state) {
  const backend_t *be = *state;
  souk_cache_conf_t conf = base_conf(be);
  /* Glob characters in the prefix must match only themselves. */
  conf.key_prefix = "t[1]*:";
  souk_cache_t *c = open_cache(be, &conf);
  souk_cache_conf_t conf2 = base_conf(be);
  conf2.key_prefix = "t1x:";
  souk_cache_t *other = open_cache(be, &conf2);
  res_t r;
  char key[32];
  /* Enough keys that SCAN takes several steps. */
  for (int i = 0; i < 2500; i++) {
    snprintf(key, sizeof key, "user:%d", i);
    assert_int_equal(souk_cache_set(c, 0, key, "u", 1, NULL, NULL), 0);
  }
  assert_int_equal(do_set(c, 0, "guild:1", "g", 0), 0);
  assert_int_equal(do_set(c, 0, "user*lit", "l", 0), 0);
  assert_int_equal(do_set(other, 0, "user:1", "o", 0), 0);

  assert_int_equal(do_clear(c, "user:*"), 0);
  assert_int_equal(do_get(c, 0, "user:1", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_get(c, 0, "user:2499", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_get(c, 0, "guild:1", &r), 0);
  assert_int_equal(do_get(c, 0, "user*lit", &r), 0);
  assert_int_equal(do_get(other, 0, "user:1", &r), 0);
  /* Escapes and classes work as in Redis. */
  assert_int_equal(do_clear(c, "user\\*l?[s-u]"), 0);
  assert_int_equal(do_get(c, 0, "user*lit", &r), SOUK_ENOTFOUND);
  /* The cluster's coordination keys (the lease, its counter, ...) live
   * under the same prefix; no clear may delete them, or a second
   * process could take the lease (src/ops/cluster.h). */
  if (be->redis) {
    redisContext *rc = sync_client();
    assert_non_null(rc);
    freeReplyObject(redisCommand(rc, "SET t[1]*:cluster:lease x"));
    freeReplyObject(redisCommand(rc, "SET t[1]*:cluster:fence 7"));
    redisFree(rc);
  }
  assert_int_equal(do_clear(c, "*"), 0);
  assert_int_equal(do_clear(c, "cluster:*"), 0);
  assert_int_equal(do_get(c, 0, "guild:1", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_get(other, 0, "user:1", &r), 0);
  if (be->redis) {
    redisContext *rc = sync_client();
    assert_non_null(rc);
    redisReply *rep = redisCommand(rc, "DBSIZE");
    assert_non_null(rep);
    /* The other prefix's key and the two cluster keys. */
    assert_int_equal(rep->integer, 3);
    freeReplyObject(rep);
    rep = redisCommand(rc, "GET t[1]*:cluster:fence");
    assert_true(rep && rep->type == REDIS_REPLY_STRING && !strcmp(rep->str, "7"));
    freeReplyObject(rep);
    redisFree(rc);
  } else {
    souk_cache_stats_t st;
    souk_cache_stats(c, &st);
    assert_int_equal(st.mem_entries, 0);
    assert_int_equal(st.memory.clears, 4);
  }
  close_cache(other);
  close_cache(c);
}

/* Close cancels whatever has not called back yet, exactly once. */
static int g_cancelled;
static void cancel_cb(void *ud, int status) {
  if (status == SOUK_ECANCELED) g_cancelled++;
}
static void cancel_get_cb(void *ud, int status, const void *v, size_t n) {
  if (status == SOUK_ECANCELED) g_cancelled++;
}
static void test_close_cancels(void **state) {
  const backend_t *be = *state;
  souk_cache_conf_t conf = base_conf(be);
  souk_cache_t *c = open_cache(be, &conf);
  g_cancelled = 0;
  for (int i = 0; i < 10; i++) {
    assert_int_equal(souk_cache_set(c, 0, "k", "v", 1, cancel_cb, NULL), 0);
    assert_int_equal(souk_cache_get(c, 0, "k", cancel_get_cb, NULL), 0);
  }
  souk_cache_close(c);
  assert_int_equal(g_cancelled, 20);
  run_for(5);
  assert_int_equal(g_cancelled, 20);
}

/* ---- memory only ----------------------------------------------------------------- */

static souk_cache_t *mem_cache(size_t budget) {
  souk_cache_conf_t conf = base_conf(&be_memory);
  conf.memory_max = (int64_t)budget;
  souk_cache_t *c = NULL;
  assert_int_equal(souk_cache_new(&conf, &fake_clock, &c), 0);
  return c;
}

static void test_lru_budget(void **state) {
  size_t cost = souk_cache_entry_cost(1, 10);
  souk_cache_t *c = mem_cache(3 * cost);
  res_t r;
  assert_int_equal(do_set(c, 0, "a", "0123456789", 0), 0);
  assert_int_equal(do_set(c, 0, "b", "0123456789", 0), 0);
  assert_int_equal(do_set(c, 0, "c", "0123456789", 0), 0);
  souk_cache_stats_t st;
  souk_cache_stats(c, &st);
  assert_int_equal(st.mem_bytes, 3 * cost);
  /* Reading a makes b the least recently used. */
  assert_int_equal(do_get(c, 0, "a", &r), 0);
  assert_int_equal(do_set(c, 0, "d", "0123456789", 0), 0);
  assert_int_equal(do_get(c, 0, "b", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_get(c, 0, "a", &r), 0);
  assert_int_equal(do_get(c, 0, "c", &r), 0);
  assert_int_equal(do_get(c, 0, "d", &r), 0);
  /* Recency now, oldest first: a d c.  A value costing between one and
   * two small entries pushes out the two oldest. */
  assert_int_equal(do_get(c, 0, "c", &r), 0);
  char v[64];
  memset(v, 'x', sizeof v);
  v[sizeof v - 1] = '\0';
  size_t big = souk_cache_entry_cost(1, strlen(v));
  assert_true(big > cost && big + cost <= 3 * cost);
  assert_int_equal(do_set(c, 0, "e", v, 0), 0);
  souk_cache_stats(c, &st);
  assert_int_equal(st.mem_bytes, cost + big);
  assert_int_equal(st.mem_entries, 2);
  assert_int_equal(do_get(c, 0, "a", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_get(c, 0, "d", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_get(c, 0, "c", &r), 0);
  assert_int_equal(do_get(c, 0, "e", &r), 0);
  /* An entry bigger than the whole budget is dropped, not stored. */
  char huge[600];
  memset(huge, 'h', sizeof huge);
  huge[sizeof huge - 1] = '\0';
  souk_cache_stats(c, &st);
  uint64_t ev = st.memory.evictions;
  size_t bytes = st.mem_bytes;
  assert_int_equal(do_set(c, 0, "h", huge, 0), 0);
  assert_int_equal(do_get(c, 0, "h", &r), SOUK_ENOTFOUND);
  souk_cache_stats(c, &st);
  assert_int_equal(st.memory.evictions, ev + 1);
  assert_int_equal(st.mem_bytes, bytes);
  assert_int_equal(st.memory.evictions, 4);
  close_cache(c);
}

static void test_lru_many(void **state) {
  /* Many entries through a small budget: the survivors are exactly the
   * newest ones that fit, and the table's accounting stays exact. */
  size_t cost = souk_cache_entry_cost(5, 4);
  souk_cache_t *c = mem_cache(100 * cost);
  char key[16];
  for (int i = 0; i < 10000; i++) {
    snprintf(key, sizeof key, "k%04d", i);
    assert_int_equal(souk_cache_set(c, 0, key, "vvvv", 4, NULL, NULL), 0);
  }
  run_for(5);
  souk_cache_stats_t st;
  souk_cache_stats(c, &st);
  assert_int_equal(st.mem_entries, 100);
  assert_int_equal(st.mem_bytes, 100 * cost);
  assert_int_equal(st.memory.evictions, 9900);
  res_t r;
  assert_int_equal(do_get(c, 0, "k9900", &r), 0);
  assert_int_equal(do_get(c, 0, "k9899", &r), SOUK_ENOTFOUND);
  close_cache(c);
}

static void test_sweep(void **state) {
  souk_cache_t *c = mem_cache(1 << 20);
  char key[16];
  for (int i = 0; i < 300; i++) {
    snprintf(key, sizeof key, "s%d", i);
    assert_int_equal(souk_cache_set_ttl(c, 0, key, "v", 1, i < 200 ? 100 : 10000, NULL, NULL), 0);
  }
  run_for(2);
  g_now += 100;
  /* Expired entries go without anyone reading them. */
  size_t n = 0;
  for (int i = 0; i < 8; i++)
    n += souk__cache_sweep(c);
  assert_int_equal(n, 200);
  souk_cache_stats_t st;
  souk_cache_stats(c, &st);
  assert_int_equal(st.mem_entries, 100);
  assert_int_equal(st.memory.expired, 200);
  assert_int_equal(st.mem_bytes, 100 * souk_cache_entry_cost(4, 1));
  close_cache(c);
}

static void test_trim(void **state) {
  size_t cost = souk_cache_entry_cost(3, 1);
  souk_cache_t *c = mem_cache(1 << 20);
  char key[16];
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "k%02d", i);
    assert_int_equal(souk_cache_set_ttl(c, 0, key, "v", 1, i < 10 ? 50 : 100000, NULL, NULL), 0);
  }
  run_for(2);
  /* Half of the bytes, the oldest first. */
  assert_int_equal(souk_cache_trim(c, 0.5), 50 * cost);
  res_t r;
  assert_int_equal(do_get(c, 0, "k49", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_get(c, 0, "k50", &r), 0);
  /* Expired entries go before live ones. */
  for (int i = 0; i < 5; i++) {
    snprintf(key, sizeof key, "x%02d", i);
    assert_int_equal(souk_cache_set_ttl(c, 0, key, "v", 1, 50, NULL, NULL), 0);
  }
  run_for(2);
  g_now += 60;
  assert_int_equal(souk_cache_trim_to(c, 50 * cost), 5 * cost);
  assert_int_equal(do_get(c, 0, "k51", &r), 0);
  assert_int_equal(souk_cache_trim_to(c, 10 * cost), 40 * cost);
  assert_int_equal(souk_cache_trim_to(c, 10 * cost), 0);
  assert_int_equal(souk_cache_trim(c, 1.0), 10 * cost);
  souk_cache_stats_t st;
  souk_cache_stats(c, &st);
  assert_int_equal(st.mem_bytes, 0);
  assert_int_equal(st.mem_entries, 0);
  assert_int_equal(st.memory.expired, 5);
  assert_int_equal(st.memory.evictions, 100);
  close_cache(c);
}

static void test_glob(void **state) {
#define M(p, s) souk__glob_match(p, strlen(p), s, strlen(s))
  assert_true(M("*", ""));
  assert_true(M("*", "abc"));
  assert_true(M("a*c", "abbbc"));
  assert_false(M("a*c", "abbb"));
  assert_true(M("a?c", "abc"));
  assert_false(M("a?c", "ac"));
  assert_true(M("[abc]x", "bx"));
  assert_false(M("[^abc]x", "bx"));
  assert_true(M("[a-c]", "b"));
  assert_true(M("[c-a]", "b"));
  assert_true(M("a\\*", "a*"));
  assert_false(M("a\\*", "ab"));
  assert_true(M("*:*:*", "a:b:c"));
  assert_true(M("user:*", "user:"));
  assert_false(M("user:*", "use"));
  assert_true(M("a*b*c*d", "aXbXXcXXXd"));
  /* Many stars against a long miss must not take exponential time. */
  assert_false(M("*a*a*a*a*a*a*a*a*a*a*a*a*b",
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
#undef M
}

static void test_config(void **state) {
  souk_cache_conf_t conf = base_conf(&be_memory);
  char *ttls[] = {"prices=5m", "auctions=1h30m", "fast=250ms", "default=42s"};
  conf.ttl = (souk_conf_strs_t){ttls, 4};
  souk_cache_t *c = NULL;
  assert_int_equal(souk_cache_new(&conf, &fake_clock, &c), 0);
  assert_int_equal(souk_cache_category_ttl(c, 0), 42000);
  int p = souk_cache_category(c, "prices", 1000);
  assert_int_equal(souk_cache_category_ttl(c, p), 300000);
  assert_int_equal(souk_cache_category(c, "prices", 7), p);
  assert_int_equal(souk_cache_category_ttl(c, souk_cache_category(c, "auctions", 0)), 5400000);
  assert_int_equal(souk_cache_category_ttl(c, souk_cache_category(c, "fast", 0)), 250);
  assert_int_equal(souk_cache_category_ttl(c, souk_cache_category(c, "plain", 0)), 60000);
  assert_int_equal(souk_cache_category_ttl(c, souk_cache_category(c, "own", 1234)), 1234);
  assert_int_equal(souk_cache_category(c, "", 0), SOUK_EINVAL);
  char name[16];
  int n = souk_cache_category_count(c);
  for (int i = n; i < 64; i++) {
    snprintf(name, sizeof name, "c%d", i);
    assert_int_equal(souk_cache_category(c, name, 0), i);
  }
  assert_int_equal(souk_cache_category(c, "one-too-many", 0), SOUK_EFULL);
  close_cache(c);

  souk_log_set_level(SOUK_LOG_OFF);
  char *bad[] = {"prices", "=5m", "x=5y", "y=0s"};
  for (int i = 0; i < 4; i++) {
    conf.ttl = (souk_conf_strs_t){&bad[i], 1};
    c = NULL;
    assert_int_equal(souk_cache_new(&conf, &fake_clock, &c), SOUK_ECONFIG);
    assert_null(c);
  }
  conf.ttl = (souk_conf_strs_t){0};
  const char *urls[] = {"http://x",           "redis://",         "redis://host:0",
                        "redis://host:70000", "redis://host:12x", "redis://pw@host",
                        "redis://[::1",       "redis://h/x"};
  for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
    conf.url = (char *)urls[i];
    c = NULL;
    assert_int_equal(souk_cache_new(&conf, &fake_clock, &c), SOUK_ECONFIG);
  }
  run_for(2);
  souk_log_set_level(SOUK_LOG_INFO);
}

/* The `cache` section through the real config loader: defaults, YAML, and
 * a cache built from the result. */
static void test_conf_section(void **state) {
  souk_conf_section_t sec = {"cache", souk__cache_conf_keys, &souk__cache_conf, NULL};
  const char *yaml = "cache:\n"
                     "  memory_max: 32MB\n"
                     "  key_prefix: \"prod:\"\n"
                     "  ttl: [prices=5m, auctions=1h30m]\n"
                     "  reconnect:\n"
                     "    min: 100ms\n";
  souk__conf_report_t rep = {0};
  int rc = souk__config_load_mem("test.yaml", yaml, strlen(yaml), &sec, 1, &rep);
  if (rc) souk__conf_report_print(&rep, stderr);
  assert_int_equal(rc, 0);
  souk__conf_report_free(&rep);
  const souk_cache_conf_t *k = &souk__cache_conf;
  assert_null(k->url);
  assert_int_equal(k->memory_max, 32 << 20);
  assert_string_equal(k->key_prefix, "prod:");
  assert_int_equal(k->ttl.n, 2);
  assert_int_equal(k->ttl_default_ms, 300000);
  assert_int_equal(k->value_max, 8 << 20);
  assert_int_equal(k->reconnect_min_ms, 100);
  assert_int_equal(k->reconnect_max_ms, 30000);
  assert_int_equal(k->command_timeout_ms, 2000);
  assert_int_equal(k->sweep_interval_ms, 1000);
  souk_cache_t *c = NULL;
  assert_int_equal(souk_cache_new(k, NULL, &c), 0);
  assert_int_equal(souk_cache_category_ttl(c, souk_cache_category(c, "auctions", 0)), 5400000);
  souk_cache_stats_t st;
  souk_cache_stats(c, &st);
  assert_int_equal(st.mem_max, 32 << 20);
  assert_false(st.redis_configured);
  close_cache(c);
  souk__config_free(&sec, 1);
}

/* ---- Redis fallback ------------------------------------------------------------- */

/* Redis down from the start: everything works on memory, logged once. */
static void test_unreachable_at_start(void **state) {
  souk_cache_conf_t conf = base_conf(&be_redis);
  char url[64];
  int port = free_port();
  snprintf(url, sizeof url, "redis://:s3cr3tpw@127.0.0.1:%d/2", port);
  conf.url = url;
  log_reset();
  souk_cache_t *c = NULL;
  assert_int_equal(souk_cache_new(&conf, NULL, &c), 0);
  res_t r;
  assert_int_equal(do_set(c, 0, "k", "v", 0), 0);
  assert_int_equal(do_get(c, 0, "k", &r), 0);
  assert_memory_equal(r.val, "v", 1);
  /* Before Redis ever answered, a clear empties memory and says that
   * Redis's keys were not cleared. */
  assert_int_equal(do_set(c, 0, "gone", "v", 0), 0);
  assert_int_equal(do_clear(c, "go*"), SOUK_ECONN);
  assert_int_equal(do_get(c, 0, "gone", &r), SOUK_ENOTFOUND);
  run_for(300); /* several reconnect attempts */
  assert_int_equal(do_get(c, 0, "k", &r), 0);
  souk_cache_stats_t st;
  souk_cache_stats(c, &st);
  assert_false(st.redis_up);
  assert_true(st.redis_configured);
  assert_int_equal(st.redis_downs, 1);
  assert_int_equal(st.fallbacks, 6);
  assert_int_equal(st.memory.hits, 2);
  assert_int_equal(log_count("redis unreachable, using memory"), 1);
  assert_int_equal(log_count("s3cr3tpw"), 0);
  close_cache(c);
}

/* A name still being resolved: commands are served from memory, and close
 * cancels the lookup (or waits for it) without leaking. */
static void test_close_while_resolving(void **state) {
  souk_cache_conf_t conf = base_conf(&be_redis);
  conf.url = "redis://cache.nonexistent.invalid:6379";
  souk_cache_t *c = NULL;
  assert_int_equal(souk_cache_new(&conf, NULL, &c), 0);
  res_t r;
  assert_int_equal(do_set(c, 0, "k", "v", 0), 0);
  assert_int_equal(do_get(c, 0, "k", &r), 0);
  assert_false(souk_cache_redis_up(c));
  close_cache(c);
  c = NULL;
  assert_int_equal(souk_cache_new(&conf, NULL, &c), 0);
  souk_cache_close(c);
  run_for(20);
}

/* The steady stream: a timer issues set+get pairs; every command must
 * complete with success (a get may miss across a switch, never fail). */
typedef struct stream {
  souk_cache_t *c;
  uv_timer_t timer;
  unsigned issued, completed, failed, wrong, hits;
  unsigned seq;
  uint64_t max_latency;
  bool stop;
} stream_t;

typedef struct sop {
  stream_t *s;
  unsigned seq;
  uint64_t t0;
} sop_t;

static void sop_done(sop_t *o) {
  uint64_t took = souk_now_ms() - o->t0;
  if (took > o->s->max_latency) o->s->max_latency = took;
  o->s->completed++;
}

static void stream_set_cb(void *ud, int status) {
  sop_t *o = ud;
  sop_done(o);
  if (status != 0) o->s->failed++;
  souk_free(o);
}

static void stream_get_cb(void *ud, int status, const void *val, size_t len) {
  sop_t *o = ud;
  char want[32];
  int n = snprintf(want, sizeof want, "value-%u", o->seq);
  sop_done(o);
  if (status == 0) {
    o->s->hits++;
    if (len != (size_t)n || memcmp(val, want, len) != 0) o->s->wrong++;
  } else if (status != SOUK_ENOTFOUND) {
    o->s->failed++;
  }
  souk_free(o);
}

static void stream_tick(uv_timer_t *t) {
  stream_t *s = t->data;
  if (s->stop) return;
  for (int i = 0; i < 5; i++) {
    unsigned seq = s->seq++;
    char key[32], val[32];
    snprintf(key, sizeof key, "stream:%u", seq % 200);
    int n = snprintf(val, sizeof val, "value-%u", seq);
    sop_t *a = souk_malloc(sizeof *a), *b = souk_malloc(sizeof *b);
    *a = (sop_t){s, seq, souk_now_ms()};
    *b = (sop_t){s, seq, souk_now_ms()};
    assert_int_equal(souk_cache_set(s->c, 0, key, val, (size_t)n, stream_set_cb, a), 0);
    assert_int_equal(souk_cache_get(s->c, 0, key, stream_get_cb, b), 0);
    s->issued += 2;
  }
}

static void test_kill_restart(void **state) {
  souk_cache_conf_t conf = base_conf(&be_redis);
  /* Long enough that the drop must be noticed from the socket itself, not
   * by the reply timeout (max_latency below). */
  conf.command_timeout_ms = 3000;
  log_reset();
  souk_cache_t *c = open_cache(&be_redis, &conf);
  stream_t s = {.c = c};
  uv_timer_init(souk_loop(), &s.timer);
  s.timer.data = &s;
  uv_timer_start(&s.timer, stream_tick, 2, 2);

  run_for(300);
  souk_cache_stats_t st;
  souk_cache_stats(c, &st);
  assert_true(st.redis_up);
  uint64_t redis_sets = st.redis.sets;
  assert_true(redis_sets > 50);
  assert_int_equal(st.memory.sets, 0);

  /* kill -9 mid-stream; commands keep completing from memory. */
  redis_stop();
  run_for(600);
  souk_cache_stats(c, &st);
  assert_false(st.redis_up);
  assert_int_equal(st.redis_downs, 1);
  uint64_t mem_sets = st.memory.sets;
  assert_true(mem_sets > 50);
  assert_true(st.memory.hits > 50);
  assert_int_equal(s.failed, 0);
  assert_int_equal(log_count("redis unreachable, using memory"), 1);
  assert_int_equal(log_count("redis back"), 0);

  /* Restart on the same port: the cache must switch back by itself. */
  assert_int_equal(redis_start(), 0);
  for (int i = 0; i < 200 && !souk_cache_redis_up(c); i++)
    run_for(5);
  assert_true(souk_cache_redis_up(c));
  souk_cache_stats(c, &st);
  redis_sets = st.redis.sets;
  mem_sets = st.memory.sets;
  run_for(300);
  souk_cache_stats(c, &st);
  assert_true(st.redis.sets > redis_sets + 50);
  assert_int_equal(st.memory.sets, mem_sets);
  assert_int_equal(st.redis_ups, 1);
  assert_int_equal(st.redis_downs, 1);

  s.stop = true;
  uv_timer_stop(&s.timer);
  for (int i = 0; i < 400 && s.completed < s.issued; i++)
    run_for(5);
  if (s.failed || s.completed != s.issued || s.wrong) log_dump();
  souk_cache_stats(c, &st);
  fprintf(stderr,
          "stream: %u commands, %u hits; redis sets %llu, memory sets %llu, "
          "re-served after the kill %llu, slowest %llu ms\n",
          s.issued, s.hits, (unsigned long long)st.redis.sets, (unsigned long long)st.memory.sets,
          (unsigned long long)st.reserved, (unsigned long long)s.max_latency);
  assert_true(s.max_latency < 1500);
  assert_int_equal(s.completed, s.issued);
  assert_int_equal(s.failed, 0);
  assert_int_equal(s.wrong, 0);
  assert_int_equal(log_count("redis unreachable, using memory"), 1);
  assert_int_equal(log_count("redis back"), 1);
  uv_close((uv_handle_t *)&s.timer, NULL);
  close_cache(c);
}

/* Drops the cache's connection without stopping Redis. */
static void kill_clients(void) {
  redisContext *rc = sync_client();
  assert_non_null(rc);
  redisReply *rep = redisCommand(rc, "CLIENT KILL TYPE normal");
  assert_non_null(rep);
  freeReplyObject(rep);
  redisFree(rc);
}

/* What changed while memory served is invalidated in Redis on return, so
 * Redis never serves the value from before the outage. */
static void test_outage_invalidation(void **state) {
  souk_cache_conf_t conf = base_conf(&be_redis);
  conf.reconnect_min_ms = 300; /* a window to write in while down */
  log_reset();
  souk_cache_t *c = open_cache(&be_redis, &conf);
  res_t r;
  assert_int_equal(do_set(c, 0, "inv:k", "old", 0), 0);
  assert_int_equal(do_set(c, 0, "inv:d", "old", 0), 0);
  assert_int_equal(do_set(c, 0, "pat:1", "old", 0), 0);
  assert_int_equal(do_set(c, 0, "keep", "old", 0), 0);

  kill_clients();
  for (int i = 0; i < 100 && souk_cache_redis_up(c); i++)
    run_for(2);
  assert_false(souk_cache_redis_up(c));

  assert_int_equal(do_set(c, 0, "inv:k", "new", 0), 0);
  assert_int_equal(do_del(c, "inv:d"), 0);
  /* Only memory is cleared now, and the answer says so (not "cleared"). */
  assert_int_equal(do_clear(c, "pat:*"), SOUK_ECONN);
  assert_int_equal(do_get(c, 0, "inv:k", &r), 0);
  assert_memory_equal(r.val, "new", 3);

  for (int i = 0; i < 400 && !souk_cache_redis_up(c); i++)
    run_for(5);
  assert_true(souk_cache_redis_up(c));
  /* The memory value is gone with the switch; Redis's old one must be too. */
  assert_int_equal(do_get(c, 0, "inv:k", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_get(c, 0, "inv:d", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_get(c, 0, "pat:1", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_get(c, 0, "keep", &r), 0);
  assert_memory_equal(r.val, "old", 3);
  souk_cache_stats_t st;
  souk_cache_stats(c, &st);
  assert_int_equal(st.mem_entries, 0);
  assert_int_equal(log_count("redis unreachable, using memory"), 1);
  assert_int_equal(log_count("redis back"), 1);
  close_cache(c);
}

/* More changes during an outage than the cache remembers: the whole prefix
 * is cleared on return (and only that prefix); duplicates count once. */
static void test_outage_overflow(void **state) {
  souk_cache_conf_t conf = base_conf(&be_redis);
  conf.reconnect_min_ms = 400;
  conf.memory_max = 64 << 20;
  souk_cache_t *c = open_cache(&be_redis, &conf);
  souk_cache_conf_t conf2 = base_conf(&be_redis);
  conf2.key_prefix = "other:";
  souk_cache_t *other = open_cache(&be_redis, &conf2);
  res_t r;
  assert_int_equal(do_set(c, 0, "keep", "old", 0), 0);
  assert_int_equal(do_set(other, 0, "keep", "other", 0), 0);

  /* Few distinct keys, many writes: remembered one by one. */
  kill_clients();
  for (int i = 0; i < 100 && (souk_cache_redis_up(c) || souk_cache_redis_up(other)); i++)
    run_for(2);
  assert_false(souk_cache_redis_up(c));
  for (int i = 0; i < 20000; i++)
    assert_int_equal(souk_cache_set(c, 0, i % 2 ? "a" : "b", "v", 1, NULL, NULL), 0);
  for (int i = 0; i < 400 && !(souk_cache_redis_up(c) && souk_cache_redis_up(other)); i++)
    run_for(5);
  assert_true(souk_cache_redis_up(c));
  assert_int_equal(do_get(c, 0, "keep", &r), 0);

  /* Many distinct keys: too many to list. */
  kill_clients();
  for (int i = 0; i < 100 && (souk_cache_redis_up(c) || souk_cache_redis_up(other)); i++)
    run_for(2);
  assert_false(souk_cache_redis_up(c));
  char key[32];
  for (int i = 0; i < 20000; i++) {
    snprintf(key, sizeof key, "many:%d", i);
    assert_int_equal(souk_cache_set(c, 0, key, "v", 1, NULL, NULL), 0);
  }
  for (int i = 0; i < 400 && !(souk_cache_redis_up(c) && souk_cache_redis_up(other)); i++)
    run_for(5);
  assert_true(souk_cache_redis_up(c));
  assert_true(souk_cache_redis_up(other));
  assert_int_equal(do_get(c, 0, "keep", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_get(c, 0, "many:1", &r), SOUK_ENOTFOUND);
  assert_int_equal(do_get(other, 0, "keep", &r), 0);
  close_cache(other);
  close_cache(c);
}

static void sync_cmd(redisContext *rc, const char *cmd, const char *want) {
  redisReply *rep = redisCommand(rc, cmd);
  assert_non_null(rep);
  if (want) {
    assert_true(rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS);
    assert_string_equal(rep->str, want);
  }
  freeReplyObject(rep);
}

/* A password and a database number in the URL; a wrong password keeps the
 * cache on memory, logged once, without the password in the log. */
static void test_auth_db(void **state) {
  redisContext *rc = sync_client();
  assert_non_null(rc);
  sync_cmd(rc, "CONFIG SET requirepass pw-for-souk-test", "OK");
  sync_cmd(rc, "AUTH pw-for-souk-test", "OK");
  souk_cache_conf_t conf = base_conf(&be_redis);
  char url[96];
  /* A host name goes through the loop's resolver, not hiredis's blocking one. */
  snprintf(url, sizeof url, "redis://:pw-for-souk-test@localhost:%d/3", g_redis_port);
  conf.url = url;
  log_reset();
  souk_cache_t *c = open_cache(&be_redis, &conf);
  assert_int_equal(do_set(c, 0, "in3", "three", 0), 0);
  sync_cmd(rc, "SELECT 3", "OK");
  sync_cmd(rc, "GET t:in3", "three");
  close_cache(c);

  snprintf(url, sizeof url, "redis://:wrong-password@127.0.0.1:%d", g_redis_port);
  c = NULL;
  assert_int_equal(souk_cache_new(&conf, NULL, &c), 0);
  res_t r;
  assert_int_equal(do_set(c, 0, "k", "v", 0), 0);
  run_for(200);
  assert_int_equal(do_get(c, 0, "k", &r), 0);
  assert_false(souk_cache_redis_up(c));
  assert_int_equal(log_count("redis unreachable, using memory"), 1);
  assert_int_equal(log_count("AUTH failed"), 1);
  assert_int_equal(log_count("wrong-password"), 0);
  assert_int_equal(log_count("pw-for-souk-test"), 0);
  close_cache(c);
  redisReply *rep = redisCommand(rc, "CONFIG SET requirepass %s", "");
  assert_non_null(rep);
  assert_int_equal(rep->type, REDIS_REPLY_STATUS);
  freeReplyObject(rep);
  redisFree(rc);
}

/* A server that stops answering (SIGSTOP) is treated as gone after the
 * command timeout, and the waiting command is answered from memory. */
static void test_stalled_server(void **state) {
  souk_cache_conf_t conf = base_conf(&be_redis);
  log_reset();
  souk_cache_t *c = open_cache(&be_redis, &conf);
  kill(g_redis_pid, SIGSTOP);
  res_t r;
  uint64_t t0 = souk_now_ms();
  assert_int_equal(do_set(c, 0, "st", "v", 0), 0);
  uint64_t took = souk_now_ms() - t0;
  assert_true(took >= 250 && took < 1500);
  assert_int_equal(do_get(c, 0, "st", &r), 0);
  assert_false(souk_cache_redis_up(c));
  souk_cache_stats_t st;
  souk_cache_stats(c, &st);
  assert_int_equal(st.reserved, 1);
  assert_int_equal(st.fallbacks, 2);
  kill(g_redis_pid, SIGCONT);
  for (int i = 0; i < 400 && !souk_cache_redis_up(c); i++)
    run_for(5);
  assert_true(souk_cache_redis_up(c));
  assert_int_equal(log_count("redis unreachable, using memory"), 1);
  assert_int_equal(log_count("redis back"), 1);
  close_cache(c);
}

/* ---- groups ---------------------------------------------------------------------- */

static int redis_group_setup(void **state) {
  if (access(redis_bin(), X_OK) != 0) return 0;
  redis_pick_port();
  return redis_start();
}

static int redis_group_teardown(void **state) {
  redis_stop();
  return 0;
}

/* Every Redis test starts with a running, empty server. */
static int redis_test_setup(void **state) { return redis_fresh(); }

static int log_setup(void) {
  return logcap_open();
}

int main(void) {
  atexit(redis_stop);
  signal(SIGPIPE, SIG_IGN);
  if (log_setup() != 0) return 1;
  const struct CMUnitTest memory_tests[] = {
      cmocka_unit_test_prestate(test_basic, &be_memory),
      cmocka_unit_test_prestate(test_ttl, &be_memory),
      cmocka_unit_test_prestate(test_clear, &be_memory),
      cmocka_unit_test_prestate(test_close_cancels, &be_memory),
      cmocka_unit_test(test_lru_budget),
      cmocka_unit_test(test_lru_many),
      cmocka_unit_test(test_sweep),
      cmocka_unit_test(test_trim),
      cmocka_unit_test(test_glob),
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_conf_section),
  };
  const struct CMUnitTest redis_tests[] = {
      cmocka_unit_test_prestate_setup_teardown(test_basic, redis_test_setup, NULL, &be_redis),
      cmocka_unit_test_prestate_setup_teardown(test_ttl, redis_test_setup, NULL, &be_redis),
      cmocka_unit_test_prestate_setup_teardown(test_clear, redis_test_setup, NULL, &be_redis),
      cmocka_unit_test_prestate_setup_teardown(test_close_cancels, redis_test_setup, NULL,
                                               &be_redis),
      cmocka_unit_test(test_unreachable_at_start),
      cmocka_unit_test(test_close_while_resolving),
      cmocka_unit_test_setup(test_kill_restart, redis_test_setup),
      cmocka_unit_test_setup(test_outage_invalidation, redis_test_setup),
      cmocka_unit_test_setup(test_outage_overflow, redis_test_setup),
      cmocka_unit_test_setup(test_auth_db, redis_test_setup),
      cmocka_unit_test_setup(test_stalled_server, redis_test_setup),
  };
  int failed = cmocka_run_group_tests_name("cache/memory", memory_tests, NULL, NULL);
  if (access(redis_bin(), X_OK) != 0) {
    fprintf(stderr, "SKIP cache/redis: %s not found; the Redis backend was not tested\n",
            redis_bin());
  } else {
    failed += cmocka_run_group_tests_name("cache/redis", redis_tests, redis_group_setup,
                                          redis_group_teardown);
  }
  redis_stop();
  souk_loop_close();
  souk_log_set_fd(2);
  fclose(g_log);
  return failed ? 1 : 0;
}
