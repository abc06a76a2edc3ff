/* Unit tests for the memory guard with a fake RSS sampler: heavy work
 * skipped and counted above the soft limit, trims above the hard limit,
 * the trim cooldown, the task scheduler's use of it and the timer. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include "ops/memguard.h"
#include "ops/task.h"
#include "opstest.h"
#include "souk/err.h"

#define MB (1024ull * 1024)

static uint64_t fake_rss;
static int fake_rc;
static int samples;
static int fake_sampler(void *ud, uint64_t *rss) {
  samples++;
  if (fake_rc) return fake_rc;
  *rss = fake_rss;
  return 0;
}

typedef struct trims {
  int n;
  uint64_t rss, soft;
} trims_t;

static void on_trim(void *ud, uint64_t rss, uint64_t soft) {
  trims_t *t = ud;
  t->n++;
  t->rss = rss;
  t->soft = soft;
}

static int setup(void **state) {
  fake_now_ms = 1000;
  fake_rss = 100 * MB;
  fake_rc = 0;
  samples = 0;
  log_capture_start();
  souk__memguard_init(&(souk__memguard_opts_t){.soft_bytes = 300 * MB,
                                               .hard_bytes = 400 * MB,
                                               .trim_cooldown_ms = 60000,
                                               .sampler = fake_sampler,
                                               .clock = &fake_clock});
  return 0;
}

static int teardown(void **state) {
  souk__memguard_shutdown();
  log_capture_stop();
  return 0;
}

static void test_levels_and_heavy(void **state) {
  assert_int_equal(samples, 1); /* init samples once */
  assert_int_equal(souk_memguard_level(), SOUK_MEM_NORMAL);
  assert_true(souk_memguard_allow_heavy("snapshot"));
  assert_int_equal(souk_memguard_scale("auctions", 1000), 1000);
  souk_memguard_stats_t st;
  souk_memguard_stats(&st);
  assert_int_equal(st.heavy_skipped, 0);

  fake_rss = 300 * MB;
  assert_int_equal(souk__memguard_sample(), SOUK_MEM_SOFT);
  assert_true(log_contains("level normal -> soft"));
  assert_false(souk_memguard_allow_heavy("snapshot"));
  assert_false(souk_memguard_allow_heavy("parquet"));
  assert_true(log_contains("skipping heavy work=snapshot level=soft"));
  assert_int_equal(souk_memguard_scale("auctions", 1000), 250);
  assert_int_equal(souk_memguard_scale("auctions", 2), 1);
  assert_int_equal(souk_memguard_scale("auctions", 0), 0);
  assert_true(log_contains("shrinking heavy work=auctions from 1000 to 250"));
  souk_memguard_stats(&st);
  assert_int_equal(st.heavy_skipped, 2);
  assert_int_equal(st.heavy_shrunk, 2);
  assert_int_equal(st.trims, 0);
  assert_int_equal(st.level, SOUK_MEM_SOFT);

  fake_rss = 250 * MB;
  assert_int_equal(souk__memguard_sample(), SOUK_MEM_NORMAL);
  assert_true(log_contains("level soft -> normal"));
  assert_true(souk_memguard_allow_heavy("snapshot"));
  souk_memguard_stats(&st);
  assert_int_equal(st.peak_rss, 300 * MB);
  assert_int_equal(st.rss, 250 * MB);
  assert_int_equal(st.samples, 3);

  /* A failed read keeps the level and is counted. */
  fake_rss = 350 * MB;
  souk__memguard_sample();
  fake_rc = SOUK_EIO;
  assert_int_equal(souk__memguard_sample(), SOUK_MEM_SOFT);
  souk_memguard_stats(&st);
  assert_int_equal(st.sample_errors, 1);
  assert_string_equal(souk_memguard_level_name(SOUK_MEM_HARD), "hard");
}

static void test_hard_trims(void **state) {
  trims_t a = {0}, b = {0};
  assert_int_equal(souk_memguard_register_trim("cache.mem", on_trim, &a), 0);
  assert_int_equal(souk_memguard_register_trim("cache.items", on_trim, &b), 0);
  assert_int_equal(souk_memguard_register_trim("cache.mem", on_trim, &a), SOUK_EEXIST);
  assert_int_equal(souk_memguard_register_trim(NULL, on_trim, &a), SOUK_EINVAL);

  fake_rss = 399 * MB;
  souk__memguard_sample();
  assert_int_equal(a.n, 0);
  fake_rss = 400 * MB;
  assert_int_equal(souk__memguard_sample(), SOUK_MEM_HARD);
  assert_int_equal(a.n, 1);
  assert_int_equal(b.n, 1);
  assert_int_equal(a.rss, 400 * MB);
  assert_int_equal(a.soft, 300 * MB);
  assert_true(log_contains("above hard limit"));
  assert_false(souk_memguard_allow_heavy("x")); /* hard implies soft */
  /* Within the cooldown no second trim. */
  fake_now_ms += 59999;
  souk__memguard_sample();
  assert_int_equal(a.n, 1);
  fake_now_ms += 1;
  souk__memguard_sample();
  assert_int_equal(a.n, 2);
  assert_int_equal(souk_memguard_unregister_trim("cache.items"), 0);
  assert_int_equal(souk_memguard_unregister_trim("cache.items"), SOUK_ENOTFOUND);
  fake_now_ms += 60000;
  souk__memguard_sample();
  assert_int_equal(a.n, 3);
  assert_int_equal(b.n, 2);
  souk_memguard_stats_t st;
  souk_memguard_stats(&st);
  assert_int_equal(st.trims, 3);
  /* Limits can change at run time. */
  souk__memguard_set_limits(0, 0);
  assert_int_equal(souk__memguard_sample(), SOUK_MEM_NORMAL);
}

static int task_runs;
static void task_handler(souk_task_ctx_t *ctx) {
  task_runs++;
  souk_task_done(ctx, 0);
}

/* The scheduler asks the guard (no allow_heavy hook given) before a heavy
 * task, and the guard counts the skip. */
static void test_heavy_task_skipped(void **state) {
  task_runs = 0;
  souk__sched_init(&(souk__sched_opts_t){.clock = &fake_clock});
  static const souk_task_t t = {
      .name = "snapshot", .period_ms = 1000, .flags = SOUK_TASK_HEAVY, .handler = task_handler};
  assert_int_equal(souk__sched_add(&t), 0);
  fake_rss = 350 * MB;
  souk__memguard_sample();
  fake_now_ms += 1000;
  souk__sched_tick();
  assert_int_equal(task_runs, 0);
  souk_task_stats_t ts;
  assert_int_equal(souk_task_stats("snapshot", &ts), 0);
  assert_int_equal(ts.skipped_heavy, 1);
  souk_memguard_stats_t st;
  souk_memguard_stats(&st);
  assert_int_equal(st.heavy_skipped, 1);
  assert_true(log_contains("skipping heavy work=snapshot level=soft"));
  fake_rss = 100 * MB;
  souk__memguard_sample();
  fake_now_ms += 1000;
  souk__sched_tick();
  assert_int_equal(task_runs, 1);
  souk__sched_shutdown();
}

static void stop_cb(uv_timer_t *t) { uv_close((uv_handle_t *)t, NULL); }

static void test_timer(void **state) {
  souk__memguard_init(&(souk__memguard_opts_t){.interval_ms = 5, .sampler = fake_sampler});
  int before = samples;
  assert_int_equal(souk__memguard_start(), 0);
  assert_int_equal(souk__memguard_start(), SOUK_EBUSY);
  /* The guard's timer does not keep the loop alive; a second timer does. */
  uv_timer_t stop;
  uv_timer_init(souk_loop(), &stop);
  uv_timer_start(&stop, stop_cb, 200, 0);
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  assert_true(samples - before >= 3);
  souk__memguard_stop();
  souk_loop_close();
  /* The real sampler reads /proc. */
  uint64_t rss = 0;
  assert_int_equal(souk__memguard_rss_proc(NULL, &rss), 0);
  assert_true(rss > 1024 * 1024);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_levels_and_heavy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hard_trims, setup, teardown),
      cmocka_unit_test_setup_teardown(test_heavy_task_skipped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timer, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
