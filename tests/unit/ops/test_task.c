/* Unit tests for the task scheduler: decisions driven by a fake clock and
 * direct tick() calls, plus one short run of the uv timer shell. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include "ops/health.h"
#include "ops/task.h"
#include "opstest.h"
#include "souk/err.h"

/* What a test task does when it runs. */
typedef struct behave {
  bool async; /* keep the context instead of finishing */
  int err;    /* finish with this */
  int runs;
  souk_task_ctx_t *held; /* the run still out (async) */
} behave_t;

static void handler(souk_task_ctx_t *ctx) {
  behave_t *b = souk_task_ud(ctx);
  b->runs++;
  if (b->async)
    b->held = ctx;
  else
    souk_task_done(ctx, b->err);
}

static bool heavy_ok = true;
static int heavy_asked;
static bool allow_heavy(const char *name, void *ud) {
  heavy_asked++;
  return heavy_ok;
}

static double seq_zero[] = {0.0};
static script_rand_t zero_rand = {seq_zero, 1, 0};
static const souk_rand_t zero = {script_next, &zero_rand};

static int setup(void **state) {
  fake_now_ms = 100000;
  heavy_ok = true;
  heavy_asked = 0;
  log_capture_start();
  souk__sched_init(
      &(souk__sched_opts_t){.clock = &fake_clock, .rand = &zero, .allow_heavy = allow_heavy});
  return 0;
}

static int teardown(void **state) {
  souk__sched_shutdown();
  log_capture_stop();
  return 0;
}

static souk_task_stats_t stats(const char *name) {
  souk_task_stats_t st;
  assert_int_equal(souk_task_stats(name, &st), 0);
  return st;
}

/* Move the fake clock to t and tick; returns tick's next wake time. */
static uint64_t at(uint64_t t) {
  fake_now_ms = t;
  return souk__sched_tick();
}

static void test_add_and_first_run(void **state) {
  behave_t b = {0};
  souk_task_t bad = {.name = "x", .period_ms = 0, .handler = handler};
  assert_int_equal(souk__sched_add(&bad), SOUK_EINVAL);
  assert_int_equal(souk__sched_add(NULL), SOUK_EINVAL);
  souk_task_t tbl[] = {
      {.name = "a", .period_ms = 1000, .handler = handler, .ud = &b},
      {.name = "b",
       .period_ms = 500,
       .handler = handler,
       .ud = &b,
       .flags = SOUK_TASK_RUN_AT_START},
      {0},
  };
  assert_int_equal(souk__sched_add_table(tbl), 0);
  assert_int_equal(souk__sched_add(&tbl[0]), SOUK_EEXIST);
  assert_int_equal(souk_task_count(), 2);
  assert_int_equal(stats("a").next_run_ms, 101000);
  assert_int_equal(stats("b").next_run_ms, 100000);
  souk_task_stats_t st;
  assert_int_equal(souk_task_stats("nope", &st), SOUK_ENOTFOUND);
  assert_int_equal(souk_task_stats_at(1, &st), 0);
  assert_string_equal(st.name, "b");
  assert_int_equal(souk_task_stats_at(2, &st), SOUK_ERANGE);
  /* The run-at-start task runs on the first tick; the next wake is b's
   * next run. */
  assert_int_equal(at(100000), 100500);
  assert_int_equal(b.runs, 1);
  assert_int_equal(at(100500), 101000);
  assert_int_equal(b.runs, 2);
  assert_int_equal(at(101000), 101500);
  assert_int_equal(b.runs, 4);
  assert_int_equal(stats("a").runs, 1);
  assert_int_equal(stats("b").runs, 3);
  /* An early tick does nothing. */
  assert_int_equal(at(101200), 101500);
  assert_int_equal(b.runs, 4);
}

static void test_jitter_bounds(void **state) {
  static const double seq[] = {0.0, 0.9999999, 0.5};
  script_rand_t sr = {seq, 3, 0};
  souk_rand_t r = {script_next, &sr};
  souk__sched_init(&(souk__sched_opts_t){.clock = &fake_clock, .rand = &r});
  behave_t b = {0};
  souk_task_t t = {.name = "j", .period_ms = 1000, .jitter_ms = 200, .handler = handler, .ud = &b};
  assert_int_equal(souk__sched_add(&t), 0);
  assert_int_equal(stats("j").next_run_ms, 101000); /* draw 0 */
  at(101000);
  assert_int_equal(stats("j").next_run_ms, 102200); /* draw ~1: the full jitter */
  at(102200);
  assert_int_equal(stats("j").next_run_ms, 103300); /* draw 0.5: 100 of 0..200 */
  assert_int_equal(b.runs, 2);

  /* With the real random source every start lands in [period, period + jitter]. */
  souk__sched_init(&(souk__sched_opts_t){.clock = &fake_clock});
  souk_task_t u = {.name = "u", .period_ms = 1000, .jitter_ms = 50, .handler = handler, .ud = &b};
  assert_int_equal(souk__sched_add(&u), 0);
  for (int i = 0; i < 200; i++) {
    uint64_t next = stats("u").next_run_ms;
    assert_true(next >= fake_now_ms + 1000 && next <= fake_now_ms + 1050);
    at(next);
  }
}

static void test_no_overlap_and_skips(void **state) {
  behave_t b = {.async = true};
  souk_task_t t = {.name = "slow", .period_ms = 1000, .handler = handler, .ud = &b};
  assert_int_equal(souk__sched_add(&t), 0);
  at(101000);
  assert_int_equal(b.runs, 1);
  assert_true(stats("slow").running);
  /* Two due times pass while it runs: both skipped and counted. */
  at(102000);
  at(103000);
  assert_int_equal(b.runs, 1);
  assert_int_equal(stats("slow").skipped_overlap, 2);
  assert_true(log_contains("task=slow skipped: previous run still going after 2000 ms"));
  /* It finishes at 103500: the next run stays at the slot planned after
   * the last skip (104000), not a catch-up burst. */
  fake_now_ms = 103500;
  souk_task_done(b.held, 0);
  souk_task_stats_t st = stats("slow");
  assert_false(st.running);
  assert_int_equal(st.last_duration_ms, 2500);
  assert_int_equal(st.next_run_ms, 104000);
  at(104000);
  assert_int_equal(b.runs, 2);
  /* A run that finishes in time plans from its start. */
  fake_now_ms = 104300;
  souk_task_done(b.held, 0);
  assert_int_equal(stats("slow").next_run_ms, 105000);
  assert_int_equal(stats("slow").skipped_overlap, 2);
  souk_buf_t rb = {0};
  fake_now_ms = 104500;
  souk__sched_report(&rb);
  assert_string_equal(rb.data, "slow: 2 runs, 0 failed (0 in a row), skipped 2 overlap / 0 heavy, "
                               "0 over budget, last 300 ms, next in 500 ms\n");
  souk_buf_reset(&rb);
  at(105000);
  fake_now_ms = 105200;
  souk__sched_report(&rb);
  assert_non_null(strstr(rb.data, "3 runs"));
  assert_non_null(strstr(rb.data, ", running 200 ms\n"));
  souk_task_done(b.held, 0);
  souk_buf_free(&rb);
}

static void test_backoff_and_recovery(void **state) {
  behave_t b = {.err = SOUK_EIO};
  souk_task_t t = {
      .name = "flaky", .period_ms = 1000, .max_backoff_ms = 5000, .handler = handler, .ud = &b};
  assert_int_equal(souk__sched_add(&t), 0);
  uint64_t now = 101000;
  /* Failures double the period: 2000, 4000, then the 5000 cap. */
  uint64_t want[] = {2000, 4000, 5000, 5000};
  for (int i = 0; i < 4; i++) {
    at(now);
    souk_task_stats_t st = stats("flaky");
    assert_int_equal(st.consecutive_failures, i + 1);
    assert_int_equal(st.period_ms, want[i]);
    assert_int_equal(st.next_run_ms, now + want[i]);
    assert_int_equal(st.last_err, SOUK_EIO);
    /* Nothing runs before the backed-off time. */
    at(now + want[i] - 1);
    assert_int_equal(b.runs, i + 1);
    now += want[i];
  }
  assert_true(log_contains("task=flaky failed: input/output error (4 in a row)"));
  /* A success returns to the normal period. */
  b.err = 0;
  at(now);
  souk_task_stats_t st = stats("flaky");
  assert_int_equal(st.consecutive_failures, 0);
  assert_int_equal(st.failures, 4);
  assert_int_equal(st.runs, 5);
  assert_int_equal(st.period_ms, 1000);
  assert_int_equal(st.next_run_ms, now + 1000);
  assert_true(log_contains("task=flaky recovered after 4 failures"));

  /* Default cap is period x 16. */
  behave_t c = {.err = SOUK_EIO};
  souk_task_t u = {.name = "capped", .period_ms = 100, .handler = handler, .ud = &c};
  assert_int_equal(souk__sched_add(&u), 0);
  for (int i = 0; i < 8; i++)
    at(stats("capped").next_run_ms);
  assert_int_equal(stats("capped").period_ms, 1600);
}

static void test_restart(void **state) {
  behave_t b = {.err = SOUK_ETIMEDOUT};
  souk_task_t t = {.name = "r", .period_ms = 1000, .handler = handler, .ud = &b};
  assert_int_equal(souk__sched_add(&t), 0);
  at(101000);
  at(103000);
  assert_int_equal(stats("r").consecutive_failures, 2);
  assert_int_equal(stats("r").next_run_ms, 107000);
  assert_int_equal(souk_task_restart("nope"), SOUK_ENOTFOUND);
  fake_now_ms = 103500;
  assert_int_equal(souk_task_restart("r"), 0);
  assert_int_equal(stats("r").next_run_ms, 103500);
  assert_int_equal(stats("r").consecutive_failures, 0);
  assert_true(log_contains("task=r restarted by admin (had 2 consecutive failures)"));
  b.err = 0;
  at(103500);
  assert_int_equal(b.runs, 3);
  assert_int_equal(stats("r").next_run_ms, 104500);
  /* A run still out cannot be restarted. */
  b.async = true;
  at(104500);
  assert_int_equal(souk_task_restart("r"), SOUK_EBUSY);
  souk_task_done(b.held, 0);
  assert_int_equal(souk_task_restart("r"), 0);
}

static void test_over_budget_and_health(void **state) {
  souk__health_init(&(souk__health_opts_t){.clock = &fake_clock});
  assert_int_equal(souk_health_register("tasks", souk__sched_health_check, NULL), 0);
  behave_t b = {.async = true};
  souk_task_t t = {
      .name = "long", .period_ms = 10000, .budget_ms = 1000, .handler = handler, .ud = &b};
  assert_int_equal(souk__sched_add(&t), 0);
  souk_health_result_t r;
  assert_int_equal(souk_health_check_one("tasks", &r), 0);
  assert_int_equal(r.status, SOUK_HEALTH_HEALTHY);
  assert_string_equal(r.detail, "1 tasks, all within budget");
  /* While running, tick wakes right after the budget to flag it. */
  assert_int_equal(at(110000), 111001);
  assert_int_equal(at(111000), 111001);
  assert_int_equal(stats("long").over_budget, 0);
  assert_int_equal(at(111001), 120000);
  assert_int_equal(stats("long").over_budget, 1);
  assert_true(log_contains("task=long over budget: 1001 ms > budget 1000 ms (still running)"));
  souk_health_check_one("tasks", &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  assert_string_equal(r.detail, "long running for 1001 ms, budget 1000 ms");
  /* Past budget x 3 it is critical. */
  fake_now_ms = 113001;
  souk_health_check_one("tasks", &r);
  assert_int_equal(r.status, SOUK_HEALTH_CRITICAL);
  assert_int_equal(souk_health_check_all(NULL), SOUK_HEALTH_CRITICAL);
  /* Finishing does not count it twice; the last run stays a warning. */
  souk_task_done(b.held, 0);
  assert_int_equal(stats("long").over_budget, 1);
  souk_health_check_one("tasks", &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  assert_string_equal(r.detail, "long last run took 3001 ms, budget 1000 ms");
  /* A run that finishes over budget between ticks is flagged at done. */
  at(120000);
  fake_now_ms = 121500;
  souk_task_done(b.held, 0);
  assert_int_equal(stats("long").over_budget, 2);
  /* A quick run clears the warning. */
  at(130000);
  fake_now_ms = 130010;
  souk_task_done(b.held, 0);
  souk_health_check_one("tasks", &r);
  assert_int_equal(r.status, SOUK_HEALTH_HEALTHY);
  /* Five failures in a row are critical, one is a warning. */
  behave_t f = {.err = SOUK_EIO};
  souk_task_t u = {
      .name = "fails", .period_ms = 100, .max_backoff_ms = 100, .handler = handler, .ud = &f};
  assert_int_equal(souk__sched_add(&u), 0);
  at(fake_now_ms + 100);
  souk_health_check_one("tasks", &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  assert_string_equal(r.detail, "fails failed 1 times in a row (input/output error)");
  for (int i = 0; i < 4; i++)
    at(stats("fails").next_run_ms);
  souk_health_check_one("tasks", &r);
  assert_int_equal(r.status, SOUK_HEALTH_CRITICAL);
  assert_string_equal(r.detail, "fails failed 5 times in a row (input/output error)");
  souk__health_shutdown();
}

static void test_heavy_skipped(void **state) {
  behave_t b = {0};
  souk_task_t t = {
      .name = "heavy", .period_ms = 1000, .flags = SOUK_TASK_HEAVY, .handler = handler, .ud = &b};
  souk_task_t l = {.name = "light", .period_ms = 1000, .handler = handler, .ud = &b};
  assert_int_equal(souk__sched_add(&t), 0);
  assert_int_equal(souk__sched_add(&l), 0);
  heavy_ok = false;
  at(101000);
  assert_int_equal(b.runs, 1); /* only the light one */
  assert_int_equal(heavy_asked, 1);
  assert_int_equal(stats("heavy").skipped_heavy, 1);
  assert_int_equal(stats("heavy").next_run_ms, 102000);
  heavy_ok = true;
  at(102000);
  assert_int_equal(b.runs, 3);
  assert_int_equal(stats("heavy").runs, 1);
}

static void test_orphaned_run(void **state) {
  behave_t b = {.async = true};
  souk_task_t t = {.name = "o", .period_ms = 1000, .handler = handler, .ud = &b};
  assert_int_equal(souk__sched_add(&t), 0);
  at(101000);
  souk__sched_init(&(souk__sched_opts_t){.clock = &fake_clock});
  /* The scheduler was replaced while the run was out: done only frees. */
  assert_null(souk_task_ud(b.held));
  assert_string_equal(souk_task_name(b.held), "?");
  souk_task_done(b.held, 0);
  assert_int_equal(souk_task_count(), 0);
}

/* A period from the configuration is read each time a run is planned. */
static void test_period_from_conf(void **state) {
  behave_t b = {0};
  int64_t every = 0;
  souk_task_t t = {.name = "c", .period_ms = 1000, .period_conf = &every, .handler = handler,
                   .ud = &b};
  souk_task_t none = {.name = "n", .period_conf = &every, .handler = handler, .ud = &b};
  /* No period at all (the config value 0 and no fallback) is refused. */
  assert_int_equal(souk__sched_add(&none), SOUK_EINVAL);
  every = 3000;
  assert_int_equal(souk__sched_add(&t), 0);
  assert_int_equal(stats("c").next_run_ms, 103000);
  assert_int_equal(at(103000), 106000);
  assert_int_equal(b.runs, 1);
  /* A run-time change applies from the next plan. */
  every = 500;
  assert_int_equal(at(106000), 106500);
  assert_int_equal(b.runs, 2);
  /* A value of 0 falls back to period_ms. */
  every = 0;
  assert_int_equal(at(106500), 107500);
  assert_int_equal(stats("c").period_ms, 1000);
}

/* Removing a task: gone from the stats and never run again; a run still
 * out finishes unseen; the entries after it keep their runs. */
static void test_remove(void **state) {
  behave_t a = {.async = true}, b = {.async = true}, c = {0};
  souk_task_t ta = {.name = "a", .period_ms = 1000, .handler = handler, .ud = &a};
  souk_task_t tb = {.name = "b", .period_ms = 1000, .handler = handler, .ud = &b};
  souk_task_t tc = {.name = "c", .period_ms = 1000, .handler = handler, .ud = &c};
  assert_int_equal(souk__sched_add(&ta), 0);
  assert_int_equal(souk__sched_add(&tb), 0);
  assert_int_equal(souk__sched_add(&tc), 0);
  at(101000);
  assert_int_equal(a.runs, 1);
  assert_int_equal(b.runs, 1);
  souk__sched_remove(&ta);
  assert_int_equal(souk_task_count(), 2);
  souk_task_stats_t st;
  assert_int_equal(souk_task_stats("a", &st), SOUK_ENOTFOUND);
  /* a's run finishes unseen; b's, whose entry moved, is still b's. */
  assert_null(souk_task_ud(a.held));
  souk_task_done(a.held, 0);
  assert_ptr_equal(souk_task_ud(b.held), &b);
  souk_task_done(b.held, SOUK_EIO);
  assert_int_equal(stats("b").failures, 1);
  b.async = false; /* later runs finish at once */
  at(103000);
  assert_int_equal(a.runs, 1);
  assert_int_equal(c.runs, 2);
  /* Removing what is not there does nothing. */
  souk__sched_remove(&ta);
  assert_int_equal(souk_task_count(), 2);
  souk__sched_remove(&tb);
  souk__sched_remove(&tc);
  assert_int_equal(souk_task_count(), 0);
  /* A table goes whole, by the pointers that were added. */
  souk_task_t tbl[] = {ta, tc, {0}};
  assert_int_equal(souk__sched_add_table(tbl), 0);
  assert_int_equal(souk_task_count(), 2);
  souk__sched_remove_table(tbl);
  assert_int_equal(souk_task_count(), 0);
}

/* ---- the uv shell, on the real clock ---- */

static int shell_runs;
static void shell_handler(souk_task_ctx_t *ctx) {
  shell_runs++;
  souk_task_done(ctx, 0);
  if (shell_runs == 3) souk__sched_stop();
}

static void test_uv_shell(void **state) {
  souk__sched_init(NULL);
  static const souk_task_t t = {
      .name = "tick", .period_ms = 5, .handler = shell_handler, .flags = SOUK_TASK_RUN_AT_START};
  assert_int_equal(souk__sched_add(&t), 0);
  assert_int_equal(souk__sched_start(), 0);
  assert_int_equal(souk__sched_start(), SOUK_EBUSY);
  uint64_t t0 = souk_now_ms();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  assert_int_equal(shell_runs, 3);
  /* Runs at 0, 5 and 10 ms. */
  assert_true(souk_now_ms() - t0 >= 9);
  souk__sched_shutdown();
  souk_loop_close();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_add_and_first_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jitter_bounds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_overlap_and_skips, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backoff_and_recovery, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_over_budget_and_health, setup, teardown),
      cmocka_unit_test_setup_teardown(test_heavy_skipped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_orphaned_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_period_from_conf, setup, teardown),
      cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
      cmocka_unit_test_setup_teardown(test_uv_shell, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
