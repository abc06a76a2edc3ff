/* The SkyBlock poller driven by a scripted world: a test clock, requests
 * answered by hand, the ingestor's answers given back explicitly.  Checks
 * the sweep, the concurrency limit, restarts on disagreeing pages, 404
 * past the last page, 503 backoff, retries and the breaker, the learned
 * interval and the memory guard. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */
#include "modules/skyblock/sb_poller.c"
#include "souk/err.h"

typedef struct world {
  uint64_t t;
  int64_t armed; /* -1: none */
  struct {
    sb_req_kind_t kind;
    int page;
    uint32_t tag;
  } q[64];
  int nq;
  unsigned max_inflight, inflight;
  int cancels;
  struct {
    sb_req_kind_t kind;
    int page;
    uint32_t sweep;
  } pages[256];
  int npages;
  int sweeps_complete, sweeps_incomplete;
  bool memory_ok;
  souk_clock_t clock;
} world_t;

static world_t W;
static sb_poller_t *P;

static int w_fetch(void *ud, sb_req_kind_t kind, int page, uint32_t tag) {
  (void)ud;
  assert_true(W.nq < 64);
  W.q[W.nq].kind = kind;
  W.q[W.nq].page = page;
  W.q[W.nq].tag = tag;
  W.nq++;
  W.inflight++;
  if (W.inflight > W.max_inflight) W.max_inflight = W.inflight;
  return 0;
}
static void w_cancel(void *ud) {
  (void)ud;
  W.cancels++;
  W.nq = 0;
  W.inflight = 0;
}
static void w_arm(void *ud, uint64_t d) {
  (void)ud;
  W.armed = (int64_t)d;
}
static void w_page(void *ud, sb_req_kind_t kind, int page, uint32_t sweep, char *body, size_t len) {
  (void)ud;
  (void)len;
  souk_free(body);
  W.pages[W.npages].kind = kind;
  W.pages[W.npages].page = page;
  W.pages[W.npages].sweep = sweep;
  W.npages++;
}
static void w_sweep_end(void *ud, uint32_t sweep, int64_t lu, bool complete) {
  (void)ud;
  (void)sweep;
  (void)lu;
  if (complete)
    W.sweeps_complete++;
  else
    W.sweeps_incomplete++;
}
static bool w_may(void *ud) {
  (void)ud;
  return W.memory_ok;
}
static uint64_t w_now(void *ud) {
  (void)ud;
  return W.t;
}
static uint64_t w_clock(void *ud) {
  (void)ud;
  return W.t;
}
static double w_rand(void *ud) {
  (void)ud;
  return 0.5;
}

/* A poller of the scripted world, with a wall clock or none. */
static sb_poller_t *new_poller(uint64_t (*wall)(void *ud)) {
  sb_poll_env_t env = {w_fetch, w_cancel, w_arm, w_page, w_sweep_end,
                       w_may,   w_now,    wall,  w_rand, NULL};
  sb_poll_conf_t c;
  sb_poll_conf_defaults(&c);
  c.breaker_clock = &W.clock;
  return sb_poller_new(&env, &c);
}

static int setup(void **state) {
  (void)state;
  memset(&W, 0, sizeof W);
  W.t = 1000000;
  W.armed = -1;
  W.memory_ok = true;
  W.clock = (souk_clock_t){w_clock, NULL};
  P = new_poller(NULL);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  sb_poller_free(P);
  return 0;
}

/* Find the queued request for page (or ended) and answer it. */
static int find(sb_req_kind_t kind, int page) {
  for (int i = 0; i < W.nq; i++)
    if (W.q[i].kind == kind && (kind == SB_REQ_ENDED || W.q[i].page == page)) return i;
  return -1;
}

static void answer(sb_req_kind_t kind, int page, int err, int status) {
  int i = find(kind, page);
  assert_true(i >= 0);
  uint32_t tag = W.q[i].tag;
  W.q[i] = W.q[--W.nq];
  W.inflight--;
  sb_poller_response(P, tag, err, status, "{}", 2);
}

/* Fire the armed timer after moving the clock to it. */
static void fire(void) {
  assert_true(W.armed >= 0);
  W.t += (uint64_t)W.armed;
  W.armed = -1;
  sb_poller_timer(P);
}

static uint32_t last_sweep(void) { return W.pages[W.npages - 1].sweep; }

/* Page 0 answered and parsed with lastUpdated lu and total pages. */
static void page0(int64_t lu, int total) {
  answer(SB_REQ_PAGE, 0, 0, 200);
  sb_poller_page_done(P, SB_REQ_PAGE, last_sweep(), 0, 0, lu, total);
}

static void page_ok(int page, int64_t lu, int total) {
  answer(SB_REQ_PAGE, page, 0, 200);
  sb_poller_page_done(P, SB_REQ_PAGE, last_sweep(), page, 0, lu, total);
}

static void ended_ok(void) {
  answer(SB_REQ_ENDED, 0, 0, 200);
  sb_poller_page_done(P, SB_REQ_ENDED, last_sweep(), 0, 0, 0, 0);
}

static sb_poll_stats_t stats(void) {
  sb_poll_stats_t s;
  sb_poller_stats(P, &s);
  return s;
}

static void test_sweep_with_concurrency(void **state) {
  (void)state;
  sb_poller_start(P);
  assert_int_equal(W.armed, 0);
  fire();
  assert_int_equal(W.nq, 1);
  assert_int_equal(stats().state, SB_POLL_PAGE0);
  page0(5000, 10);
  assert_int_equal(stats().state, SB_POLL_SWEEP);
  /* auctions_ended and pages 1-3: four in flight, never more. */
  assert_int_equal(W.nq, 4);
  assert_true(find(SB_REQ_ENDED, 0) >= 0);
  ended_ok();
  for (int p = 1; p < 10; p++) {
    assert_true(W.nq <= 4);
    page_ok(p, 5000, 10);
  }
  assert_int_equal(W.max_inflight, 4);
  assert_int_equal(W.sweeps_complete, 1);
  sb_poll_stats_t s = stats();
  assert_int_equal(s.state, SB_POLL_WAITING);
  assert_int_equal(s.sweeps_complete, 1);
  assert_int_equal(s.pages_ok, 10); /* auctions_ended is counted apart */
  assert_int_equal(s.ended_ok, 1);
  /* Next: a little before the refresh is due (60 s - 3 s after the change). */
  assert_int_equal(W.armed, 57000);
  /* Page 0 unchanged: asked again a step (1 s) later. */
  fire();
  page0(5000, 10);
  assert_int_equal(stats().unchanged, 1);
  assert_int_equal(W.armed, 1000);
  assert_int_equal(W.nq, 0);
}

static void test_learned_interval(void **state) {
  (void)state;
  sb_poller_start(P);
  int64_t lu = 1000;
  for (int k = 0; k < 14; k++) {
    fire();
    /* The API refreshes every 2 s: page 0 changes when asked after it. */
    page0(lu, 1);
    if (stats().state == SB_POLL_WAITING && stats().unchanged) {
      /* not expected here */
    }
    lu += 2000;
    /* Move time to the next refresh, then poll until it is seen. */
    if (W.armed > 2000) W.armed = 2000;
  }
  sb_poll_stats_t s = stats();
  assert_int_equal(s.sweeps_complete, 14);
  assert_true(s.interval_ms < 2600);
  assert_true(s.interval_ms >= 2000);
  /* Next fetch: interval - lead after the change, not a fixed minute. */
  assert_true(W.armed < 2600);
}

/* The wall clock, for the poller that has one: Unix ms W.wall0 at W.t 0. */
static int64_t g_wall0;
static uint64_t w_wall(void *ud) {
  (void)ud;
  return (uint64_t)(g_wall0 + (int64_t)W.t);
}

/* The next look is timed from lastUpdated, not from when it was seen: a
 * first look 30 s after a refresh comes back 27 s later (60 s - 30 s - the
 * 3 s lead), not 57 s later and 30 s late for ever after. */
static void test_next_fetch_from_last_updated(void **state) {
  (void)state;
  sb_poller_free(P);
  g_wall0 = INT64_C(1700000000000);
  P = new_poller(w_wall);
  sb_poller_start(P);
  fire();
  assert_int_equal(W.t, 1000000);
  int64_t lu = (int64_t)w_wall(NULL) - 30000;
  page0(lu, 1);
  ended_ok();
  assert_int_equal(stats().last_delay_ms, 30000);
  assert_int_equal(W.armed, 27000);
  /* Then a step at a time until the API refreshes, on time: seen at once,
   * 60 s after the last, and the interval learned stays 60 s. */
  for (int k = 0; k < 3; k++) {
    fire();
    page0(lu, 1);
    assert_int_equal(W.armed, 1000);
  }
  fire();
  assert_int_equal(W.t, 1030000);
  page0(lu + 60000, 1);
  ended_ok();
  assert_int_equal(stats().last_delay_ms, 0);
  assert_int_equal(stats().interval_ms, 60000);
  assert_int_equal(W.armed, 57000);
  /* The API is stuck for three minutes, then refreshes: seen 178 s after
   * lastUpdated, placed back 45 s (three quarters of an interval) only. */
  fire();
  page0(lu + 60000, 1);
  W.t += 180000;
  fire();
  assert_int_equal(W.t, 1268000);
  page0(lu + 120000, 1);
  ended_ok();
  assert_int_equal(stats().last_delay_ms, 178000);
  sb_poll_stats_t st = stats();
  assert_int_equal(st.last_change_ms, 1268000 - 45000);
  assert_int_equal(W.armed, (int64_t)(1223000 + st.interval_ms - st.interval_ms / 20) - 1268000);
  /* lastUpdated from a clock ahead of ours: placed when it was seen. */
  fire();
  uint64_t seen = W.t;
  page0(lu + 120000 + 3600000, 1);
  ended_ok();
  st = stats();
  assert_true(st.last_delay_ms < 0);
  assert_int_equal(st.last_change_ms, seen);
  assert_int_equal(W.armed, (int64_t)(st.interval_ms - st.interval_ms / 20));
}

static void test_disagreeing_pages_restart(void **state) {
  (void)state;
  sb_poller_start(P);
  fire();
  page0(7000, 4);
  ended_ok();
  page_ok(1, 7000, 4);
  /* Page 2 comes from the next refresh: the sweep starts again. */
  int c0 = W.cancels;
  uint32_t s0 = last_sweep();
  page_ok(2, 9000, 4);
  assert_int_equal(W.cancels, c0 + 1);
  assert_int_equal(W.sweeps_incomplete, 1);
  assert_int_equal(stats().restarts, 1);
  assert_int_equal(W.nq, 1);
  page0(9000, 4);
  assert_true(last_sweep() > s0);
  /* auctions_ended is asked for the new refresh too. */
  assert_true(find(SB_REQ_ENDED, 0) >= 0);
  ended_ok();
  page_ok(1, 9000, 4);
  /* A stale page (an older refresh) also restarts; page 0 is the same
   * refresh again, and the sweep runs again anyway. */
  page_ok(2, 7000, 4);
  assert_int_equal(stats().restarts, 2);
  page0(9000, 4);
  assert_int_equal(stats().state, SB_POLL_SWEEP);
  assert_int_equal(stats().unchanged, 0);
  page_ok(1, 9000, 4);
  page_ok(2, 9000, 4);
  page_ok(3, 9000, 4);
  assert_int_equal(W.sweeps_complete, 1);
}

static void test_too_many_restarts(void **state) {
  (void)state;
  sb_poller_start(P);
  fire();
  page0(100, 3);
  ended_ok();
  int64_t lu = 100;
  for (int k = 0; k < 4; k++) {
    page_ok(1, lu + 1, 3); /* always another refresh */
    if (stats().state != SB_POLL_PAGE0) break;
    lu += 1;
    page0(lu, 3);
  }
  assert_int_equal(stats().state, SB_POLL_WAITING);
  assert_int_equal(stats().restarts, 4);
  assert_int_equal(W.sweeps_complete, 0);
  assert_int_equal(W.sweeps_incomplete, 4);
}

static void test_404_ends_the_sweep(void **state) {
  (void)state;
  sb_poller_start(P);
  fire();
  page0(100, 6);
  ended_ok();
  page_ok(1, 100, 6);
  page_ok(2, 100, 6);
  answer(SB_REQ_PAGE, 4, 0, 404);
  answer(SB_REQ_PAGE, 3, 0, 200);
  sb_poller_page_done(P, SB_REQ_PAGE, last_sweep(), 3, 0, 100, 6);
  /* The house ends at page 3: page 5, asked before the 404, is not
   * waited for. */
  assert_int_equal(W.sweeps_complete, 1);
  assert_int_equal(stats().not_found, 1);
  assert_int_equal(stats().state, SB_POLL_WAITING);
  page_ok(5, 100, 6);
  assert_int_equal(W.sweeps_complete, 1);
  assert_int_equal(W.sweeps_incomplete, 0);
}

static void test_503_is_never_hammered(void **state) {
  (void)state;
  sb_poller_start(P);
  fire();
  answer(SB_REQ_PAGE, 0, 0, 503);
  assert_int_equal(stats().state, SB_POLL_BACKOFF);
  assert_int_equal(W.armed, 5000);
  assert_int_equal(W.nq, 0);
  fire();
  answer(SB_REQ_PAGE, 0, 0, 503);
  assert_int_equal(W.armed, 10000);
  fire();
  page0(100, 3);
  /* During a sweep too: the whole cycle waits. */
  ended_ok();
  answer(SB_REQ_PAGE, 1, 0, 503);
  assert_int_equal(stats().state, SB_POLL_BACKOFF);
  assert_int_equal(W.nq, 0);
  assert_int_equal(W.sweeps_incomplete, 1);
  assert_int_equal(stats().not_populated, 3);
  /* A 503 is the API's "not yet", not a fault: the breaker stays closed. */
  assert_int_equal(souk_breaker_state(sb_poller_breaker(P)), SOUK_BREAKER_CLOSED);
}

static void test_retries_then_breaker(void **state) {
  (void)state;
  sb_poller_start(P);
  fire();
  page0(100, 3);
  ended_ok();
  page_ok(1, 100, 3);
  /* Page 2 fails: retried after a backoff of about retry_base. */
  answer(SB_REQ_PAGE, 2, SOUK_ETIMEDOUT, 0);
  assert_int_equal(W.nq, 0);
  assert_true(W.armed >= 250 && W.armed <= 500);
  fire();
  answer(SB_REQ_PAGE, 2, 0, 502);
  assert_true(W.armed >= 500 && W.armed <= 1000);
  fire();
  answer(SB_REQ_PAGE, 2, 0, 429);
  fire();
  /* A body that does not parse is a failure too. */
  answer(SB_REQ_PAGE, 2, 0, 200);
  sb_poller_page_done(P, SB_REQ_PAGE, last_sweep(), 2, SOUK_EPARSE, 0, 0);
  /* Three retries used: the cycle fails and backs off. */
  sb_poll_stats_t s = stats();
  assert_int_equal(s.retries, 3);
  assert_int_equal(s.state, SB_POLL_BACKOFF);
  assert_int_equal(W.sweeps_incomplete, 1);
  assert_int_equal(s.last_error, SOUK_EPARSE);
  /* Five failed cycles open the breaker: no request while it is open. */
  for (int k = 0; k < 4; k++) {
    fire();
    answer(SB_REQ_PAGE, 0, SOUK_ECONN, 0);
  }
  assert_int_equal(souk_breaker_state(sb_poller_breaker(P)), SOUK_BREAKER_OPEN);
  assert_int_equal(W.armed, 60000);
  W.armed = 1000; /* fire early: rejected */
  fire();
  assert_int_equal(W.nq, 0);
  assert_int_equal(stats().breaker_rejected, 1);
  /* Half-open after the timeout: one probe, and success closes it. */
  W.t += 60000;
  W.armed = 0;
  fire();
  assert_int_equal(W.nq, 1);
  page0(200, 1);
  assert_int_equal(souk_breaker_state(sb_poller_breaker(P)), SOUK_BREAKER_CLOSED);
  assert_int_equal(W.sweeps_complete, 1);
}

static void test_memory_guard_and_cut(void **state) {
  (void)state;
  W.memory_ok = false;
  sb_poller_start(P);
  fire();
  assert_int_equal(W.nq, 0);
  assert_int_equal(stats().skipped_memory, 1);
  assert_int_equal(W.armed, 60000);
  W.memory_ok = true;
  fire();
  page0(100, 5);
  page_ok(1, 100, 5);
  sb_poller_cut_sweep(P);
  assert_int_equal(W.nq, 0);
  assert_int_equal(W.sweeps_incomplete, 1);
  assert_int_equal(stats().state, SB_POLL_WAITING);
  /* Answers of the cut sweep that still arrive are ignored. */
  sb_poller_page_done(P, SB_REQ_PAGE, last_sweep(), 2, 0, 100, 5);
  assert_int_equal(W.sweeps_complete, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sweep_with_concurrency, setup, teardown),
      cmocka_unit_test_setup_teardown(test_learned_interval, setup, teardown),
      cmocka_unit_test_setup_teardown(test_next_fetch_from_last_updated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_disagreeing_pages_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_too_many_restarts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_404_ends_the_sweep, setup, teardown),
      cmocka_unit_test_setup_teardown(test_503_is_never_hammered, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retries_then_breaker, setup, teardown),
      cmocka_unit_test_setup_teardown(test_memory_guard_and_cut, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
