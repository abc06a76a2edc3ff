/* The limits souk keeps itself (src/discord/dlimit.c), driven by an
 * explicit clock: the sliding window, the channel rename guard (2 per 10
 * minutes) and the edit coalescer (latest state, one edit per interval). */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "discord/dlimit.h"
#include "souk/err.h"
#include "souk/log.h"

#define MIN (60 * 1000)

/* ---- sliding window ------------------------------------------------------------ */

static void test_window(void **state) {
  souk__wlim_t w = {0};
  uint64_t t = 1000000;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(souk__wlim_wait(&w, 5, MIN, t + (uint64_t)i * 1000), 0);
    souk__wlim_take(&w, 5, MIN, t + (uint64_t)i * 1000);
  }
  /* The sixth waits until the first leaves the window. */
  assert_int_equal(souk__wlim_wait(&w, 5, MIN, t + 5000), MIN - 5000);
  assert_int_equal(souk__wlim_wait(&w, 5, MIN, t + MIN - 1), 1);
  assert_int_equal(souk__wlim_wait(&w, 5, MIN, t + MIN), 0);
  souk__wlim_take(&w, 5, MIN, t + MIN);
  /* Now the second is the oldest that matters. */
  assert_int_equal(souk__wlim_wait(&w, 5, MIN, t + MIN), 1000);
  /* An outside refusal holds everything until it ends. */
  souk__wlim_block(&w, t + 10 * MIN);
  assert_int_equal(souk__wlim_wait(&w, 5, MIN, t + 3 * MIN), 7 * MIN);
  assert_false(souk__wlim_idle(&w, MIN, t + 3 * MIN));
  assert_true(souk__wlim_idle(&w, MIN, t + 10 * MIN));
}

static void test_window_untake(void **state) {
  souk__wlim_t w = {0};
  souk__wlim_take(&w, 2, MIN, 100);
  souk__wlim_take(&w, 2, MIN, 200);
  assert_int_equal(souk__wlim_wait(&w, 2, MIN, 300), MIN - 200);
  souk__wlim_untake(&w, 200);
  assert_int_equal(souk__wlim_wait(&w, 2, MIN, 300), 0);
}

/* ---- rename guard -------------------------------------------------------------- */

static void test_rename_guard(void **state) {
  souk__rguard_t *g = souk__rguard_new();
  const uint64_t ch = 111111111111111111ULL, other = 222222222222222222ULL;
  uint64_t t = 5000000, wait = 0;
  assert_int_equal(souk__rguard_take(g, ch, t, &wait), 0);
  assert_int_equal(souk__rguard_take(g, ch, t + 30000, &wait), 0);
  /* The third within 10 minutes is refused with the time left, and is not
   * counted: asking again later still works on the first two. */
  assert_int_equal(souk__rguard_take(g, ch, t + 60000, &wait), SOUK_ERATELIMIT);
  assert_int_equal(wait, 10 * MIN - 60000);
  assert_int_equal(souk__rguard_wait(g, ch, t + 60000), 10 * MIN - 60000);
  /* Another channel has its own count. */
  assert_int_equal(souk__rguard_take(g, other, t + 60000, &wait), 0);
  /* The window slides: the first leaves at t + 10 min, the second 30 s later. */
  assert_int_equal(souk__rguard_take(g, ch, t + 10 * MIN, &wait), 0);
  assert_int_equal(souk__rguard_take(g, ch, t + 10 * MIN + 1, &wait), SOUK_ERATELIMIT);
  assert_int_equal(wait, 30000 - 1);
  /* A rename that never reached Discord gives its slot back. */
  souk__rguard_untake(g, ch, t + 10 * MIN);
  assert_int_equal(souk__rguard_take(g, ch, t + 10 * MIN + 2, &wait), 0);
  /* A 429 Discord sent anyway blocks the channel until it says. */
  souk__rguard_block(g, other, t + 30 * MIN);
  assert_int_equal(souk__rguard_wait(g, other, t + 20 * MIN), 10 * MIN);
  /* Entries go once nothing is left to count. */
  assert_int_equal(souk__rguard_gc(g, t + 21 * MIN), 1);
  assert_int_equal(souk__rguard_gc(g, t + 30 * MIN), 0);
  assert_int_equal(souk__rguard_wait(g, ch, t + 30 * MIN), 0);
  souk__rguard_free(g);
}

/* ---- coalescer ----------------------------------------------------------------- */

typedef struct sent {
  uint64_t channel, message;
  char body[64];
} sent_t;

static sent_t g_sent[64];
static size_t g_nsent;
static int g_send_rc;

static int fake_send(uint64_t channel, uint64_t message, const char *body, size_t len, void *ud) {
  if (g_send_rc) return g_send_rc;
  assert_true(g_nsent < 64);
  g_sent[g_nsent].channel = channel;
  g_sent[g_nsent].message = message;
  snprintf(g_sent[g_nsent].body, sizeof g_sent[g_nsent].body, "%.*s", (int)len, body);
  g_nsent++;
  return 0;
}

static int coal_setup(void **state) {
  g_nsent = 0;
  g_send_rc = 0;
  return 0;
}

static void put(souk__coal_t *c, uint64_t msg, const char *body, uint64_t now) {
  assert_int_equal(souk__coal_put(c, 9, msg, body, strlen(body), 1000, now), 0);
}

static void test_coalesce_latest_wins(void **state) {
  souk__coal_t *c = souk__coal_new(16, fake_send, NULL);
  uint64_t t = 1000;
  /* The first state goes at once. */
  put(c, 1, "v1", t);
  assert_int_equal(g_nsent, 1);
  assert_string_equal(g_sent[0].body, "v1");
  /* While it is in flight, later states replace each other. */
  put(c, 1, "v2", t + 100);
  put(c, 1, "v3", t + 200);
  assert_int_equal(g_nsent, 1);
  souk__coal_done(c, 1, false, t + 300);
  /* Not before a whole interval since the answer to the last edit: an
   * edit that waited in the REST queue must not reach Discord less than
   * an interval before the next. */
  assert_int_equal(souk__coal_pump(c, t + 300), t + 1300);
  assert_int_equal(souk__coal_pump(c, t + 1000), t + 1300);
  assert_int_equal(g_nsent, 1);
  assert_int_equal(souk__coal_pump(c, t + 1300), UINT64_MAX);
  assert_int_equal(g_nsent, 2);
  assert_string_equal(g_sent[1].body, "v3");
  uint64_t sent, coalesced;
  souk__coal_counts(c, &sent, &coalesced);
  assert_int_equal(sent, 2);
  assert_int_equal(coalesced, 1);
  souk__coal_done(c, 1, false, t + 1400);
  /* The entry is kept until its interval is over, so a state arriving
   * right after the last answer still waits; then it is forgotten. */
  assert_int_equal(souk__coal_pump(c, t + 1500), t + 2400);
  assert_int_equal(souk__coal_size(c), 1);
  assert_int_equal(souk__coal_pump(c, t + 2400), UINT64_MAX);
  assert_int_equal(souk__coal_size(c), 0);
  souk__coal_free(c);
}

/* A click storm: 200 states over 10 s give at most one edit per second,
 * and the last state is the last one sent. */
static void test_coalesce_storm(void **state) {
  souk__coal_t *c = souk__coal_new(16, fake_send, NULL);
  uint64_t t = 50000, next = UINT64_MAX;
  char body[16];
  for (int i = 0; i < 200; i++) {
    uint64_t now = t + (uint64_t)i * 50;
    /* Each edit completes 30 ms after it was sent. */
    if (g_nsent && g_sent[g_nsent - 1].channel == 9) {
      souk__coal_done(c, 1, false, now);
      g_sent[g_nsent - 1].channel = 0; /* marked done */
    }
    if (next <= now) next = souk__coal_pump(c, now);
    snprintf(body, sizeof body, "tally %d", i);
    put(c, 1, body, now);
    next = souk__coal_pump(c, now);
  }
  uint64_t end = t + 200 * 50;
  for (uint64_t now = end; now < end + 5000; now += 10) {
    if (g_nsent && g_sent[g_nsent - 1].channel == 9) {
      souk__coal_done(c, 1, false, now);
      g_sent[g_nsent - 1].channel = 0;
    }
    if (next <= now) next = souk__coal_pump(c, now);
  }
  assert_true(g_nsent >= 10 && g_nsent <= 11);
  assert_string_equal(g_sent[g_nsent - 1].body, "tally 199");
  souk__coal_free(c);
}

/* Versioned states: one older than the highest put never replaces it,
 * even arriving long after the newer one was sent; the version is kept
 * for SOUK__COAL_VERSION_MS, and a full coalescer forgets idle messages
 * rather than refusing a new one. */
static void put_v(souk__coal_t *c, uint64_t msg, const char *body, uint64_t v, uint64_t now) {
  assert_int_equal(souk__coal_put_v(c, 9, msg, body, strlen(body), 1000, v, now), 0);
}

static void test_coalesce_versions(void **state) {
  souk__coal_t *c = souk__coal_new(2, fake_send, NULL);
  uint64_t t = 1000;
  put_v(c, 1, "tally v5", 5, t);
  assert_int_equal(g_nsent, 1);
  souk__coal_done(c, 1, false, t + 50);
  /* In flight or not, within the interval or long after it. */
  put_v(c, 1, "tally v4", 4, t + 100);
  souk__coal_pump(c, t + 60000);
  put_v(c, 1, "tally v3", 3, t + 60000);
  souk__coal_pump(c, t + 120000);
  assert_int_equal(g_nsent, 1);
  assert_int_equal(souk__coal_stale(c), 2);
  assert_int_equal(souk__coal_size(c), 1);
  put_v(c, 1, "tally v6", 6, t + 120000);
  assert_int_equal(g_nsent, 2);
  assert_string_equal(g_sent[1].body, "tally v6");
  souk__coal_done(c, 1, false, t + 120050);
  /* Full of idle messages: the one put longest ago makes room. */
  put_v(c, 2, "other v1", 1, t + 130000);
  souk__coal_done(c, 2, false, t + 130050);
  put_v(c, 3, "third v1", 1, t + 140000);
  assert_int_equal(g_nsent, 4);
  assert_int_equal(souk__coal_size(c), 2);
  /* Message 1 was forgotten to make room: its versions start over. */
  souk__coal_done(c, 3, false, t + 140050);
  put_v(c, 1, "tally v1", 1, t + 150000);
  assert_string_equal(g_sent[g_nsent - 1].body, "tally v1");
  /* An hour after the last put, nothing is kept. */
  souk__coal_done(c, 1, false, t + 150050);
  assert_int_equal(souk__coal_pump(c, t + 150000 + SOUK__COAL_VERSION_MS), UINT64_MAX);
  assert_int_equal(souk__coal_size(c), 0);
  souk__coal_free(c);
}

static void test_coalesce_gone_and_full(void **state) {
  souk__coal_t *c = souk__coal_new(2, fake_send, NULL);
  put(c, 1, "a", 1000);
  put(c, 2, "b", 1000);
  /* A third message would exceed the bound. */
  assert_int_equal(souk__coal_put(c, 9, 3, "c", 1, 1000, 1000), SOUK_EFULL);
  put(c, 1, "a2", 1200);
  /* Discord says message 1 is gone: its waiting state is dropped and new
   * ones are refused for a while. */
  souk__coal_done(c, 1, true, 1300);
  assert_int_equal(souk__coal_put(c, 9, 1, "a3", 2, 1000, 1400), SOUK_ENOTFOUND);
  souk__coal_pump(c, 5000);
  assert_int_equal(g_nsent, 2);
  assert_int_equal(souk__coal_put(c, 9, 1, "a4", 2, 1000, 1300 + SOUK__COAL_GONE_MS - 1),
                   SOUK_ENOTFOUND);
  souk__coal_done(c, 2, false, 1300);
  souk__coal_pump(c, 1300 + SOUK__COAL_GONE_MS);
  assert_int_equal(souk__coal_size(c), 0);
  put(c, 1, "a5", 1300 + SOUK__COAL_GONE_MS);
  assert_string_equal(g_sent[g_nsent - 1].body, "a5");
  souk__coal_free(c);
}

/* A send the transport refuses (queue full) is kept and tried again. */
static void test_coalesce_send_refused(void **state) {
  souk__coal_t *c = souk__coal_new(4, fake_send, NULL);
  g_send_rc = SOUK_EFULL;
  put(c, 1, "x", 1000);
  assert_int_equal(g_nsent, 0);
  uint64_t next = souk__coal_pump(c, 1000);
  assert_int_equal(next, 2000);
  g_send_rc = 0;
  souk__coal_pump(c, 2000);
  assert_int_equal(g_nsent, 1);
  assert_string_equal(g_sent[0].body, "x");
  souk__coal_free(c);
}

int main(void) {
  souk_log_set_level(SOUK_LOG_OFF);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_window),
      cmocka_unit_test(test_window_untake),
      cmocka_unit_test(test_rename_guard),
      cmocka_unit_test_setup(test_coalesce_latest_wins, coal_setup),
      cmocka_unit_test_setup(test_coalesce_storm, coal_setup),
      cmocka_unit_test_setup(test_coalesce_versions, coal_setup),
      cmocka_unit_test_setup(test_coalesce_gone_and_full, coal_setup),
      cmocka_unit_test_setup(test_coalesce_send_refused, coal_setup),
  };
  return cmocka_run_group_tests_name("discord/dlimit", tests, NULL, NULL);
}
