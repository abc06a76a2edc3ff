/* Unit tests for error recovery: history and statistics, strategies, the
 * retry helper and circuit breakers, all on a fake clock and a scripted
 * random source. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include "ops/recovery.h"
#include "opstest.h"
#include "souk/err.h"
#include "souk/health.h"

static int setup(void **state) {
  fake_now_ms = 1000000;
  log_capture_start();
  souk__recovery_init(
      &(souk__recovery_opts_t){.clock = &fake_clock, .history = 4, .window_ms = 60000});
  return 0;
}

static int teardown(void **state) {
  souk__recovery_shutdown();
  log_capture_stop();
  return 0;
}

/* ---- history and statistics ---- */

/* The history is allocated as errors come: growing it (16, 32, 64, then
 * the 100 asked for) keeps every entry in order, and once full the ring
 * drops the oldest. */
static void test_history_grows_then_wraps(void **state) {
  souk__recovery_init(
      &(souk__recovery_opts_t){.clock = &fake_clock, .history = 100, .window_ms = 60000});
  souk_error_entry_t e;
  for (int i = 0; i < 250; i++) {
    souk_error_record("g", SOUK_SEV_LOW, SOUK_EIO, NULL, "n=%d", i);
    size_t len = souk_error_history_len();
    assert_int_equal(len, i < 100 ? i + 1 : 100);
    /* The oldest and the newest are where they belong at every size. */
    char want[16];
    assert_int_equal(souk_error_history_get(0, &e), 0);
    snprintf(want, sizeof want, "n=%d", i < 100 ? 0 : i - 99);
    assert_string_equal(e.context, want);
    assert_int_equal(souk_error_history_get(len - 1, &e), 0);
    snprintf(want, sizeof want, "n=%d", i);
    assert_string_equal(e.context, want);
  }
  for (int k = 0; k < 100; k++) {
    char want[16];
    assert_int_equal(souk_error_history_get((size_t)k, &e), 0);
    snprintf(want, sizeof want, "n=%d", 150 + k);
    assert_string_equal(e.context, want);
  }
}

static void test_history_ring(void **state) {
  for (int i = 0; i < 6; i++) {
    fake_now_ms += 10;
    souk_error_record(i % 2 ? "b" : "a", SOUK_SEV_LOW, SOUK_EIO, NULL, "n=%d", i);
  }
  assert_int_equal(souk_error_history_len(), 4);
  souk_error_entry_t e;
  assert_int_equal(souk_error_history_get(0, &e), 0);
  assert_string_equal(e.context, "n=2");
  assert_string_equal(e.type, "a");
  assert_int_equal(e.code, SOUK_EIO);
  assert_int_equal(e.at_ms, 1000030);
  assert_int_equal(souk_error_history_get(3, &e), 0);
  assert_string_equal(e.context, "n=5");
  assert_string_equal(e.type, "b");
  assert_int_equal(souk_error_history_get(4, &e), SOUK_ERANGE);
  /* A long context is truncated, not overflowed. */
  char big[500];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  souk_error_record("c", SOUK_SEV_LOW, 0, NULL, "%s", big);
  assert_int_equal(souk_error_history_get(3, &e), 0);
  assert_int_equal(strlen(e.context), 200);
  assert_true(log_contains("error type=c severity=low"));
}

static void test_stats_and_rate(void **state) {
  souk_error_stats_t st;
  assert_int_equal(souk_error_stats("nope", &st), SOUK_ENOTFOUND);
  assert_int_equal(st.total, 0);
  /* 30 errors in 30 s: 30 in the 60 s window, i.e. 30 per minute. */
  for (int i = 0; i < 30; i++) {
    souk_error_record("rest.5xx", i < 20 ? SOUK_SEV_MEDIUM : SOUK_SEV_HIGH, SOUK_EHTTP, NULL, NULL);
    fake_now_ms += 1000;
  }
  souk_error_record("store", SOUK_SEV_CRITICAL, 0, NULL, "disk");
  assert_int_equal(souk_error_stats("rest.5xx", &st), 0);
  assert_int_equal(st.total, 30);
  assert_int_equal(st.by_severity[SOUK_SEV_MEDIUM], 20);
  assert_int_equal(st.by_severity[SOUK_SEV_HIGH], 10);
  assert_int_equal(st.consecutive, 30);
  assert_true(st.per_minute > 29.9 && st.per_minute < 30.1);
  assert_int_equal(souk_error_stats(NULL, &st), 0);
  assert_int_equal(st.total, 31);
  assert_int_equal(st.by_severity[SOUK_SEV_CRITICAL], 1);
  assert_true(st.per_minute > 30.9 && st.per_minute < 31.1);
  /* The window slides: 45 s later the first half has left it. */
  fake_now_ms += 45000;
  souk_error_stats("rest.5xx", &st);
  assert_true(st.per_minute >= 14 && st.per_minute <= 16);
  fake_now_ms += 61000;
  souk_error_stats("rest.5xx", &st);
  assert_true(st.per_minute == 0);
  assert_int_equal(st.total, 30);
  souk_error_resolved("rest.5xx");
  souk_error_stats("rest.5xx", &st);
  assert_int_equal(st.consecutive, 0);
}

/* ---- strategies ---- */

typedef struct calls {
  int n;
  souk_error_event_t last;
  char ctx[64];
} calls_t;

static void on_action(const souk_error_event_t *ev, void *ud) {
  calls_t *c = ud;
  c->n++;
  c->last = *ev;
  snprintf(c->ctx, sizeof c->ctx, "%s", ev->context);
  c->last.context = c->ctx;
}

static void test_strategies(void **state) {
  calls_t reset = {0}, alert = {0}, shut = {0}, any = {0};
  assert_int_equal(
      souk_recovery_register(
          "gw",
          &(souk_recovery_strategy_t){.kind = SOUK_RECOVER_RESET, .fn = on_action, .ud = &reset}),
      0);
  assert_int_equal(
      souk_recovery_register("gw", &(souk_recovery_strategy_t){.kind = SOUK_RECOVER_ALERT,
                                                               .min_severity = SOUK_SEV_HIGH,
                                                               .cooldown_ms = 60000,
                                                               .fn = on_action,
                                                               .ud = &alert}),
      0);
  assert_int_equal(
      souk_recovery_register("gw", &(souk_recovery_strategy_t){.kind = SOUK_RECOVER_SHUTDOWN,
                                                               .min_severity = SOUK_SEV_CRITICAL,
                                                               .fn = on_action,
                                                               .ud = &shut}),
      0);
  assert_int_equal(
      souk_recovery_register(
          "*",
          &(souk_recovery_strategy_t){.kind = SOUK_RECOVER_ALERT, .fn = on_action, .ud = &any}),
      0);
  /* Callback strategies need their callback. */
  assert_int_equal(
      souk_recovery_register("gw", &(souk_recovery_strategy_t){.kind = SOUK_RECOVER_RESET}),
      SOUK_EINVAL);
  assert_int_equal(
      souk_recovery_register("", &(souk_recovery_strategy_t){.kind = SOUK_RECOVER_BACKOFF}),
      SOUK_EINVAL);

  souk_recovery_advice_t adv;
  souk_error_record("gw", SOUK_SEV_LOW, SOUK_ECLOSED, &adv, "close %d", 4000);
  assert_int_equal(reset.n, 1);
  assert_string_equal(reset.ctx, "close 4000");
  assert_int_equal(reset.last.code, SOUK_ECLOSED);
  assert_int_equal(alert.n, 0);
  assert_int_equal(shut.n, 0);
  assert_int_equal(any.n, 1);
  assert_int_equal(adv.actions, (1u << SOUK_RECOVER_RESET) | (1u << SOUK_RECOVER_ALERT));
  assert_false(adv.retry);

  souk_error_record("gw", SOUK_SEV_HIGH, 0, &adv, "x");
  assert_int_equal(alert.n, 1);
  assert_int_equal(alert.last.consecutive, 2);
  /* The alert's cooldown holds back a second alert within a minute. */
  fake_now_ms += 59999;
  souk_error_record("gw", SOUK_SEV_HIGH, 0, NULL, "x");
  assert_int_equal(alert.n, 1);
  fake_now_ms += 1;
  souk_error_record("gw", SOUK_SEV_CRITICAL, 0, NULL, "x");
  assert_int_equal(alert.n, 2);
  assert_int_equal(shut.n, 1);
  assert_int_equal(reset.n, 4);
  assert_true(log_contains("strategy=shutdown severity=critical"));

  /* Another type only meets the catch-all. */
  souk_error_record("other", SOUK_SEV_LOW, 0, NULL, NULL);
  assert_int_equal(reset.n, 4);
  assert_int_equal(any.n, 5);

  assert_int_equal(souk_recovery_unregister("gw", on_action, &reset), 0);
  assert_int_equal(souk_recovery_unregister("gw", on_action, &reset), SOUK_ENOTFOUND);
  souk_error_record("gw", SOUK_SEV_LOW, 0, NULL, NULL);
  assert_int_equal(reset.n, 4);
}

static double seq_half[] = {0.5};

static void test_retry_and_backoff_strategies(void **state) {
  script_rand_t sr = {seq_half, 1, 0};
  souk_rand_t rnd = {script_next, &sr};
  souk__recovery_init(&(souk__recovery_opts_t){.clock = &fake_clock, .rand = &rnd});
  calls_t retry = {0};
  assert_int_equal(
      souk_recovery_register(
          "poll",
          &(souk_recovery_strategy_t){.kind = SOUK_RECOVER_RETRY,
                                      .retry = {.base_ms = 1000, .cap_ms = 5000, .max_attempts = 3},
                                      .fn = on_action,
                                      .ud = &retry}),
      0);
  assert_int_equal(
      souk_recovery_register("poll", &(souk_recovery_strategy_t){.kind = SOUK_RECOVER_BACKOFF,
                                                                 .min_severity = SOUK_SEV_MEDIUM,
                                                                 .backoff_ms = 30000}),
      0);
  souk_recovery_advice_t adv;
  /* Ceilings 1000, 2000, 4000; a draw of 0.5 gives half of ceiling + 1. */
  uint64_t want[] = {500, 1000, 2000};
  for (int i = 0; i < 3; i++) {
    souk_error_record("poll", SOUK_SEV_LOW, 0, &adv, NULL);
    assert_true(adv.retry);
    assert_int_equal(adv.retry_in_ms, want[i]);
    assert_int_equal(retry.last.retry_in_ms, want[i]);
    assert_int_equal(adv.backoff_ms, 0);
  }
  /* The fourth attempt exceeds max_attempts. */
  souk_error_record("poll", SOUK_SEV_LOW, 0, &adv, NULL);
  assert_false(adv.retry);
  assert_int_equal(retry.n, 3);
  assert_true(log_contains("gave up retrying"));
  /* Success resets the attempts. */
  souk_error_resolved("poll");
  souk_error_record("poll", SOUK_SEV_MEDIUM, 0, &adv, NULL);
  assert_true(adv.retry);
  assert_int_equal(adv.retry_in_ms, 500);
  assert_int_equal(adv.backoff_ms, 30000);
  assert_int_equal(souk_recovery_backoff_left("poll"), 30000);
  fake_now_ms += 10000;
  assert_int_equal(souk_recovery_backoff_left("poll"), 20000);
  fake_now_ms += 20000;
  assert_int_equal(souk_recovery_backoff_left("poll"), 0);
  souk_error_record("poll", SOUK_SEV_MEDIUM, 0, NULL, NULL);
  souk_error_resolved("poll");
  assert_int_equal(souk_recovery_backoff_left("poll"), 0);
  assert_int_equal(souk_recovery_backoff_left("never"), 0);
  souk_buf_t b = {0};
  souk__recovery_report(&b);
  assert_non_null(strstr(b.data, "poll: 6 total"));
  souk_buf_free(&b);
}

/* ---- retry helper ---- */

static void test_retry_delay(void **state) {
  souk_retry_policy_t p = {.base_ms = 100, .cap_ms = 1000, .max_attempts = 10};
  /* r = 0 is always 0; r just below 1 reaches the ceiling. */
  uint64_t ceil[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (uint32_t a = 1; a <= 7; a++) {
    assert_int_equal(souk_retry_delay(&p, a, 0), 0);
    assert_int_equal(souk_retry_delay(&p, a, 0.99999999), ceil[a - 1]);
    assert_true(souk_retry_delay(&p, a, 0.5) <= ceil[a - 1]);
  }
  /* Huge attempt numbers saturate at the cap rather than overflowing. */
  souk_retry_policy_t big = {.base_ms = UINT64_MAX / 4, .cap_ms = UINT64_MAX / 2};
  assert_true(souk_retry_delay(&big, 200, 0.99999999) <= UINT64_MAX / 2);
  assert_int_equal(souk_retry_delay(&p, 64, 0.25), 250);
  /* Out-of-range draws are clamped. */
  assert_int_equal(souk_retry_delay(&p, 1, -3), 0);
  assert_int_equal(souk_retry_delay(&p, 1, 7), 100);
}

static double seq_retry[] = {0.0, 0.999999, 0.5, 0.25};

static void test_retry_state(void **state) {
  script_rand_t sr = {seq_retry, 4, 0};
  souk_rand_t rnd = {script_next, &sr};
  souk_retry_t r = {.policy = {.base_ms = 1000, .cap_ms = 3000, .max_attempts = 4},
                    .clock = &fake_clock,
                    .rand = &rnd};
  uint64_t d;
  assert_true(souk_retry_due(&r));
  assert_int_equal(souk_retry_failed(&r, &d), 0);
  assert_int_equal(d, 0);
  assert_true(souk_retry_due(&r));
  assert_int_equal(souk_retry_failed(&r, &d), 0);
  assert_int_equal(d, 2000);
  assert_false(souk_retry_due(&r));
  fake_now_ms += 1999;
  assert_false(souk_retry_due(&r));
  fake_now_ms += 1;
  assert_true(souk_retry_due(&r));
  assert_int_equal(souk_retry_failed(&r, &d), 0);
  assert_int_equal(d, 1500); /* ceiling 3000 (cap), half of it */
  assert_int_equal(souk_retry_failed(&r, &d), 0);
  assert_int_equal(d, 750);
  assert_int_equal(r.attempts, 4);
  assert_int_equal(souk_retry_failed(&r, &d), SOUK_ETIMEDOUT);
  souk_retry_reset(&r);
  assert_int_equal(r.attempts, 0);
  assert_true(souk_retry_due(&r));
  /* Default clock and random still work. */
  souk_retry_t r2 = {.policy = {.base_ms = 10, .cap_ms = 10, .max_attempts = 1}};
  assert_int_equal(souk_retry_failed(&r2, &d), 0);
  assert_true(d <= 10);
  assert_int_equal(souk_retry_failed(&r2, &d), SOUK_ETIMEDOUT);
}

/* ---- circuit breakers ---- */

static souk_breaker_t *mk(uint32_t failures, double ratio, uint32_t min_calls) {
  return souk_breaker_new("rest",
                          &(souk_breaker_opts_t){.failures = failures,
                                                 .failure_ratio = ratio,
                                                 .min_calls = min_calls,
                                                 .window_ms = 60000,
                                                 .open_timeout_ms = 30000},
                          &fake_clock);
}

static void test_breaker_count_rule(void **state) {
  souk_breaker_t *b = mk(3, 0, 0);
  assert_ptr_equal(souk_breaker_find("rest"), b);
  assert_null(souk_breaker_find("nope"));
  assert_string_equal(souk_breaker_name(b), "rest");
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_CLOSED);
  /* closed -> closed: failures below the threshold, successes between. */
  assert_true(souk_breaker_allow(b));
  souk_breaker_failure(b);
  souk_breaker_success(b);
  souk_breaker_failure(b);
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_CLOSED);
  /* Failures that left the window do not count. */
  fake_now_ms += 61000;
  souk_breaker_failure(b);
  souk_breaker_failure(b);
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_CLOSED);
  /* closed -> open on the third failure within the window. */
  souk_breaker_failure(b);
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_OPEN);
  assert_true(log_contains("breaker=rest closed -> open (3 failures in window)"));
  /* open: fail fast, counted. */
  assert_false(souk_breaker_allow(b));
  assert_false(souk_breaker_allow(b));
  fake_now_ms += 29999;
  assert_false(souk_breaker_allow(b));
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_OPEN);
  /* open -> half-open after the timeout; one probe only. */
  fake_now_ms += 1;
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_HALF_OPEN);
  assert_true(log_contains("breaker=rest open -> half-open"));
  assert_true(souk_breaker_allow(b));
  assert_false(souk_breaker_allow(b));
  /* half-open -> open: the probe failed. */
  souk_breaker_failure(b);
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_OPEN);
  assert_true(log_contains("half-open -> open (probe failed)"));
  assert_false(souk_breaker_allow(b));
  fake_now_ms += 30000;
  /* half-open -> closed: the probe succeeded. */
  assert_true(souk_breaker_allow(b));
  souk_breaker_success(b);
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_CLOSED);
  assert_true(log_contains("half-open -> closed (probe succeeded)"));
  /* Closing cleared the window: two failures do not re-open. */
  souk_breaker_failure(b);
  souk_breaker_failure(b);
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_CLOSED);

  souk_breaker_stats_t st;
  souk_breaker_stats(b, &st);
  assert_int_equal(st.opened, 2);
  assert_int_equal(st.rejected, 5);
  assert_int_equal(st.failures, 8);
  assert_int_equal(st.successes, 2);
  assert_int_equal(st.window_failures, 2);
  assert_int_equal(st.window_calls, 2);
  assert_int_equal(st.state, SOUK_BREAKER_CLOSED);
  assert_int_equal(st.state_since_ms, fake_now_ms);
  souk_breaker_free(b);
  assert_null(souk_breaker_find("rest"));
}

static void test_breaker_ratio_rule(void **state) {
  souk_breaker_t *b = mk(0, 0.5, 10);
  /* 4 failures of 4 calls: ratio 1 but fewer than min_calls. */
  for (int i = 0; i < 4; i++)
    souk_breaker_failure(b);
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_CLOSED);
  for (int i = 0; i < 5; i++)
    souk_breaker_success(b);
  /* 9 calls, 4 failures; the 10th call fails: 5/10 = 0.5 opens. */
  souk_breaker_failure(b);
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_OPEN);
  assert_true(log_contains("5 of 10 calls failed in window"));
  /* A success reported while open changes nothing. */
  souk_breaker_success(b);
  souk_breaker_failure(b);
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_OPEN);
  /* Admin reset closes it. */
  souk_breaker_reset(b);
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_CLOSED);
  assert_true(log_contains("open -> closed (reset by admin)"));
  souk_breaker_free(b);
  souk_breaker_free(NULL);
}

static void test_breakers_health(void **state) {
  souk_health_result_t r = {0};
  souk__breakers_health_check(NULL, &r);
  assert_int_equal(r.status, SOUK_HEALTH_HEALTHY);
  assert_string_equal(r.detail, "0 breakers closed");
  souk_breaker_t *a = mk(1, 0, 0);
  souk_breaker_t *b = souk_breaker_new(
      "store", &(souk_breaker_opts_t){.failures = 1, .open_timeout_ms = 10}, &fake_clock);
  souk__breakers_health_check(NULL, &r);
  assert_string_equal(r.detail, "2 breakers closed");
  souk_breaker_failure(a);
  souk_breaker_failure(b);
  fake_now_ms += 10;
  souk__breakers_health_check(NULL, &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  assert_string_equal(r.detail, "2 of 2 breakers not closed: store half-open, rest open");
  souk_breaker_free(a);
  souk_breaker_free(b);
}

/* A strategy callback that records errors itself (an alert that fails)
 * must not disturb the record in progress. */
static int nested_calls;
static void nested(const souk_error_event_t *ev, void *ud) {
  nested_calls++;
  char type[16];
  for (int i = 0; i < 20; i++) {
    snprintf(type, sizeof type, "alert.%d", i);
    souk_error_record(type, SOUK_SEV_LOW, 0, NULL, "nested %d", i);
  }
  assert_string_equal(ev->context, "outer");
  assert_string_equal(ev->type, "outer");
}

static void test_reentrant_record(void **state) {
  assert_int_equal(
      souk_recovery_register("outer",
                             &(souk_recovery_strategy_t){.kind = SOUK_RECOVER_ALERT, .fn = nested}),
      0);
  assert_int_equal(
      souk_recovery_register(
          "outer", &(souk_recovery_strategy_t){.kind = SOUK_RECOVER_BACKOFF, .backoff_ms = 100}),
      0);
  souk_recovery_advice_t adv;
  souk_error_record("outer", SOUK_SEV_HIGH, 0, &adv, "outer");
  assert_int_equal(nested_calls, 1);
  assert_int_equal(adv.backoff_ms, 100);
  assert_int_equal(souk_recovery_backoff_left("outer"), 100);
  souk_error_stats_t st;
  assert_int_equal(souk_error_stats(NULL, &st), 0);
  assert_int_equal(st.total, 21);
}

static void test_breaker_lost_probe(void **state) {
  souk_breaker_t *b = mk(1, 0, 0);
  souk_breaker_failure(b);
  fake_now_ms += 30000;
  assert_true(souk_breaker_allow(b));
  assert_false(souk_breaker_allow(b));
  /* The probe never reports: after another timeout a new probe may go. */
  fake_now_ms += 30000;
  assert_true(souk_breaker_allow(b));
  assert_true(log_contains("probe never reported"));
  souk_breaker_success(b);
  assert_int_equal(souk_breaker_state(b), SOUK_BREAKER_CLOSED);
  assert_string_equal(souk_breaker_state_name(SOUK_BREAKER_HALF_OPEN), "half-open");
  assert_string_equal(souk_severity_name(SOUK_SEV_CRITICAL), "critical");
  assert_string_equal(souk_recover_kind_name(SOUK_RECOVER_SHUTDOWN), "shutdown");
  souk_breaker_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_history_ring, setup, teardown),
      cmocka_unit_test_setup_teardown(test_history_grows_then_wraps, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stats_and_rate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_strategies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_and_backoff_strategies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_delay, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_breaker_count_rule, setup, teardown),
      cmocka_unit_test_setup_teardown(test_breaker_ratio_rule, setup, teardown),
      cmocka_unit_test_setup_teardown(test_breaker_lost_probe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_breakers_health, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reentrant_record, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
