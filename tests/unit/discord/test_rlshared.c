/* Discord's global REST limit shared through Redis, against a real
 * redis-server on loopback: two backends (as two processes would have)
 * working off an endless backlog never send more than per_s in any
 * sliding second together, and share it; a Redis killed mid-run makes
 * each fall back to its share (per_s - margin) / N, logged once, and a
 * restart brings the shared count back; a global 429 holds both; nothing
 * goes before the first connection attempt has ended.
 *
 * The "processes" here are senders driven by a 1 ms timer that ask
 * wait() and call take() exactly as the limiter does.  Without
 * /usr/bin/redis-server (or SOUK_TEST_REDIS_SERVER) the tests are skipped
 * with a message. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "discord/rlshared.h"
#include "../logcap.h"
#include "../cache/redissrv.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PER_S  50
#define MARGIN 5
#define PREFIX "t:"
#define MAXT   4096

/* ---- senders ----------------------------------------------------------------- */

typedef struct sender {
  souk__rl_global_t g;
  uint64_t t[MAXT]; /* when each request went (monotonic ms) */
  size_t n;
  bool on;
  int wakes;
} sender_t;

static sender_t A, B;
static size_t g_members = 2;
static size_t members(void) { return g_members; }
static void on_wake(void *ud) { ((sender_t *)ud)->wakes++; }

static void make(sender_t *s) {
  memset(s, 0, sizeof *s);
  souk__rl_shared_conf_t c = {.url = g_url,
                              .key_prefix = PREFIX,
                              .per_s = PER_S,
                              .margin = MARGIN,
                              .members = members,
                              .wake = on_wake,
                              .wake_ud = s};
  assert_int_equal(souk__rl_global_redis(&c, &s->g), 0);
  s->on = true;
}

static void destroy(sender_t *s) {
  s->g.ops->destroy(s->g.self);
  s->on = false;
}

/* Send as fast as the backend allows: an endless backlog. */
static void pump(sender_t *s) {
  if (!s->on) return;
  uint64_t now = souk_now_ms();
  while (s->n < MAXT && s->g.ops->wait(s->g.self, now) == 0) {
    s->g.ops->take(s->g.self, now);
    s->t[s->n++] = now;
  }
}

static void tick_cb(uv_timer_t *t) {
  pump(&A);
  pump(&B);
}

static void run_for(uint64_t ms) {
  uv_timer_t tick;
  uv_timer_init(souk_loop(), &tick);
  uv_timer_start(&tick, tick_cb, 1, 1);
  uint64_t end = souk_now_ms() + ms;
  while (souk_now_ms() < end)
    uv_run(souk_loop(), UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The most requests of A and B together (from index fa, fb on) within any
 * window of win ms. */
static size_t max_in_window(size_t fa, size_t fb, uint64_t win) {
  size_t n = 0;
  uint64_t *v = souk_calloc(A.n + B.n + 1, sizeof *v);
  for (size_t i = fa; i < A.n; i++)
    v[n++] = A.t[i];
  for (size_t i = fb; i < B.n; i++)
    v[n++] = B.t[i];
  qsort(v, n, sizeof *v, cmp_u64);
  size_t best = 0, j = 0;
  for (size_t i = 0; i < n; i++) {
    while (v[i] - v[j] >= win)
      j++;
    if (i - j + 1 > best) best = i - j + 1;
  }
  souk_free(v);
  return best;
}

/* Requests of s sent in [from, to). */
static size_t count_between(const sender_t *s, uint64_t from, uint64_t to) {
  size_t c = 0;
  for (size_t i = 0; i < s->n; i++)
    c += s->t[i] >= from && s->t[i] < to;
  return c;
}

static const char *redis_get(const char *key) {
  static char out[128];
  out[0] = '\0';
  redisContext *rc = sync_client();
  if (!rc) return out;
  redisReply *r = redisCommand(rc, "GET %s", key);
  if (r && r->type == REDIS_REPLY_STRING) snprintf(out, sizeof out, "%s", r->str);
  if (r) freeReplyObject(r);
  redisFree(rc);
  return out;
}

/* ---- tests ------------------------------------------------------------------- */

/* Both work off a backlog for 3 s: together never more than PER_S in any
 * second (nor the spacing's worth in any 200 ms), most of PER_S - MARGIN
 * used, both served. */
static void test_shared_backlog(void **state) {
  log_reset();
  make(&A);
  make(&B);
  uint64_t t0 = souk_now_ms();
  run_for(3000);
  size_t worst = max_in_window(0, 0, 1000);
  printf("shared: A %zu, B %zu in 3 s; worst second %zu\n", A.n, B.n, worst);
  assert_true(worst <= PER_S);
  /* Spread, not bursts: any 200 ms holds about 9 (45/s), a few more at
   * most from rounding and lateness. */
  assert_true(max_in_window(0, 0, 200) <= 13);
  /* Most of the limit used (allow for the first connection and load). */
  assert_true(A.n + B.n >= (size_t)((PER_S - MARGIN) * 3 * 0.7));
  assert_true(A.n + B.n <= (size_t)((PER_S - MARGIN) * 3) + 3);
  /* Neither starves. */
  assert_true(A.n >= (A.n + B.n) / 5);
  assert_true(B.n >= (A.n + B.n) / 5);
  /* The schedule lives in Redis under the prefix. */
  assert_true(strlen(redis_get(PREFIX "cluster:rest")) >= 15);
  assert_int_equal(log_count("counted in redis"), 2);
  assert_int_equal(log_count("falls back"), 0);
  (void)t0;
  souk__rl_shared_stats_t st;
  assert_true(souk__rl_shared_stats(&A.g, &st));
  assert_true(st.shared);
  assert_true(st.used >= A.n - 1 && st.used <= A.n);
  destroy(&A);
  destroy(&B);
}

/* Alone, one backend gets the whole limit (less the margin). */
static void test_alone_gets_it_all(void **state) {
  g_members = 1;
  make(&A);
  run_for(2200);
  size_t first = count_between(&A, A.n ? A.t[0] : 0, (A.n ? A.t[0] : 0) + 2000);
  printf("alone: %zu in 2 s\n", first);
  assert_true(first >= (PER_S - MARGIN) * 2 * 0.8);
  assert_true(max_in_window(0, 0, 1000) <= PER_S);
  destroy(&A);
  g_members = 2;
}

/* Redis killed mid-run: each falls back to (PER_S - MARGIN) / 2, logged
 * once each; restarted, both log the return and share Redis again. */
static void test_fallback_and_back(void **state) {
  log_reset();
  make(&A);
  make(&B);
  run_for(800);
  redis_stop();
  uint64_t killed = souk_now_ms();
  run_for(2500);
  /* From a little after the kill (the replies in flight time out), each
   * sends its share: 22.5/s, so about 45 in 2 s. */
  uint64_t from = killed + 300, to = from + 2000;
  size_t a = count_between(&A, from, to), b = count_between(&B, from, to);
  printf("fallback: A %zu, B %zu in 2 s\n", a, b);
  assert_true(a <= (PER_S - MARGIN) + 2 && b <= (PER_S - MARGIN) + 2);
  assert_true(a >= (PER_S - MARGIN) * 0.7 && b >= (PER_S - MARGIN) * 0.7);
  assert_true(max_in_window(0, 0, 1000) <= PER_S);
  souk__rl_shared_stats_t st;
  assert_true(souk__rl_shared_stats(&A.g, &st));
  assert_false(st.shared);
  assert_int_equal(st.fallback_n, 2);
  assert_true(st.per_s > 22 && st.per_s < 23);
  /* Reconnects keep failing; the switch was logged once each. */
  if (log_count("falls back") != 2) log_dump();
  assert_int_equal(log_count("falls back"), 2);
  assert_int_equal(redis_start(), 0);
  size_t na = A.n, nb = B.n;
  /* Reconnected within about a second, then on the share too for the
   * grace that follows, then shared alone. */
  run_for(5000);
  assert_int_equal(log_count("redis back"), 2);
  assert_true(souk__rl_shared_stats(&A.g, &st));
  assert_true(st.shared);
  /* Shared again: the last second of the run used most of the limit,
   * within it. */
  uint64_t end = souk_now_ms();
  size_t last = count_between(&A, end - 1000, end) + count_between(&B, end - 1000, end);
  printf("back: %zu in the last second\n", last);
  if (getenv("RLS_DEBUG")) {
    for (size_t i = 0; i < A.n; i++) if (A.t[i] >= end - 1000) printf("A %" PRIu64 "\n", A.t[i] - (end - 1000));
    for (size_t i = 0; i < B.n; i++) if (B.t[i] >= end - 1000) printf("B %" PRIu64 "\n", B.t[i] - (end - 1000));
  }
  assert_true(last >= (PER_S - MARGIN) * 0.7 && last <= PER_S);
  assert_true(max_in_window(na, nb, 1000) <= PER_S);
  destroy(&A);
  destroy(&B);
}

/* A global 429 seen by one process holds the other too. */
static void test_global_429_holds_everyone(void **state) {
  make(&A);
  make(&B);
  run_for(500);
  uint64_t now = souk_now_ms();
  A.g.ops->blocked(A.g.self, now + 600);
  size_t nb = B.n;
  run_for(400);
  /* B may still spend the few slots it had reserved before the block
   * reached Redis (at most a horizon's share), then nothing. */
  assert_true(B.n - nb <= 6);
  size_t na = A.n;
  assert_true(count_between(&A, now + 10, now + 400) == 0);
  run_for(800);
  assert_true(A.n > na && B.n > nb + 6);
  destroy(&A);
  destroy(&B);
}

/* Nothing goes while the first connection attempt is still running; a
 * Redis that is not there at all gives the fallback share. */
static void test_unreachable_at_start(void **state) {
  log_reset();
  redis_stop();
  make(&A);
  assert_true(A.g.ops->wait(A.g.self, souk_now_ms()) > 0);
  run_for(1500);
  souk__rl_shared_stats_t st;
  assert_true(souk__rl_shared_stats(&A.g, &st));
  assert_true(st.settled);
  assert_false(st.shared);
  assert_true(A.n > 0);
  if (log_count("falls back") != 1) log_dump();
  assert_int_equal(log_count("falls back"), 1);
  destroy(&A);
  assert_int_equal(redis_start(), 0);
}

static void test_bad_args(void **state) {
  souk__rl_global_t g;
  souk__rl_shared_conf_t c = {.url = g_url, .per_s = 50, .margin = 50};
  assert_int_equal(souk__rl_global_redis(&c, &g), SOUK_EINVAL);
  c.margin = 5;
  c.url = "http://x";
  assert_int_equal(souk__rl_global_redis(&c, &g), SOUK_ECONFIG);
  assert_int_equal(souk__rl_global_redis(NULL, &g), SOUK_EINVAL);
  souk__rl_shared_stats_t st;
  assert_false(souk__rl_shared_stats(NULL, &st));
}

static int test_setup(void **state) { return redis_fresh(); }

int main(void) {
  if (access(redis_bin(), X_OK) != 0) {
    fprintf(stderr, "SKIP discord/rlshared: %s not found; the shared global limit was not tested\n",
            redis_bin());
    return 0;
  }
  atexit(redis_stop);
  signal(SIGPIPE, SIG_IGN);
  souk_alloc_init();
  if (logcap_open() != 0) return 1;
  redis_pick_port();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_shared_backlog, test_setup),
      cmocka_unit_test_setup(test_alone_gets_it_all, test_setup),
      cmocka_unit_test_setup(test_fallback_and_back, test_setup),
      cmocka_unit_test_setup(test_global_429_holds_everyone, test_setup),
      cmocka_unit_test_setup(test_unreachable_at_start, test_setup),
      cmocka_unit_test_setup(test_bad_args, test_setup),
  };
  int failed = cmocka_run_group_tests_name("discord/rlshared", tests, NULL, NULL);
  redis_stop();
  souk_loop_close();
  souk_log_set_fd(2);
  fclose(g_log);
  return failed ? 1 : 0;
}
