/* Unit tests for health checks: thresholds in both directions, the overall
 * status, the report text, the memory check, the periodic log and
 * slow-operation logging on a fake clock. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include "ops/health.h"
#include "ops/memguard.h"
#include "opstest.h"
#include "souk/err.h"

static int setup(void **state) {
  fake_now_ms = 5000;
  log_capture_start();
  souk__health_init(&(souk__health_opts_t){.clock = &fake_clock});
  return 0;
}

static int teardown(void **state) {
  souk__health_shutdown();
  souk__memguard_shutdown();
  log_capture_stop();
  return 0;
}

static void test_threshold(void **state) {
  const souk_health_dir_t up = SOUK_HEALTH_HIGHER_IS_WORSE, down = SOUK_HEALTH_LOWER_IS_WORSE;
  /* Latency: warn at 200, critical at 500, boundaries inclusive. */
  assert_int_equal(souk_health_threshold(0, 200, 500, up), SOUK_HEALTH_HEALTHY);
  assert_int_equal(souk_health_threshold(199.9, 200, 500, up), SOUK_HEALTH_HEALTHY);
  assert_int_equal(souk_health_threshold(200, 200, 500, up), SOUK_HEALTH_WARNING);
  assert_int_equal(souk_health_threshold(499, 200, 500, up), SOUK_HEALTH_WARNING);
  assert_int_equal(souk_health_threshold(500, 200, 500, up), SOUK_HEALTH_CRITICAL);
  assert_int_equal(souk_health_threshold(1e9, 200, 500, up), SOUK_HEALTH_CRITICAL);
  /* Free disk: warn at 20 %, critical at 5 %. */
  assert_int_equal(souk_health_threshold(50, 20, 5, down), SOUK_HEALTH_HEALTHY);
  assert_int_equal(souk_health_threshold(20.1, 20, 5, down), SOUK_HEALTH_HEALTHY);
  assert_int_equal(souk_health_threshold(20, 20, 5, down), SOUK_HEALTH_WARNING);
  assert_int_equal(souk_health_threshold(5.1, 20, 5, down), SOUK_HEALTH_WARNING);
  assert_int_equal(souk_health_threshold(5, 20, 5, down), SOUK_HEALTH_CRITICAL);
  assert_int_equal(souk_health_threshold(-1, 20, 5, down), SOUK_HEALTH_CRITICAL);
  assert_int_equal(souk_health_threshold(NAN, 20, 5, down), SOUK_HEALTH_CRITICAL);
  assert_int_equal(souk_health_threshold(NAN, 200, 500, up), SOUK_HEALTH_CRITICAL);
  assert_string_equal(souk_health_name(SOUK_HEALTH_WARNING), "WARNING");
}

typedef struct fixed {
  souk_health_t status;
  const char *detail;
  int calls;
} fixed_t;

static void fixed_check(void *ud, souk_health_result_t *out) {
  fixed_t *f = ud;
  f->calls++;
  souk_health_set(out, f->status, "%s", f->detail);
}

static void test_registry_and_report(void **state) {
  assert_int_equal(souk_health_check_all(NULL), SOUK_HEALTH_HEALTHY);
  souk_buf_t b = {0};
  souk_health_check_all(&b);
  assert_string_equal(b.data, "health: HEALTHY (0 checks: 0 healthy, 0 warning, 0 critical)\n");
  souk_buf_reset(&b);

  fixed_t gw = {SOUK_HEALTH_HEALTHY, "latency 42 ms", 0};
  fixed_t rest = {SOUK_HEALTH_WARNING, "3 429s in 10 min\nsecond line", 0};
  fixed_t store = {SOUK_HEALTH_HEALTHY, "sqlite ok", 0};
  assert_int_equal(souk_health_register("gateway", fixed_check, &gw), 0);
  assert_int_equal(souk_health_register("rest", fixed_check, &rest), 0);
  assert_int_equal(souk_health_register("store", fixed_check, &store), 0);
  assert_int_equal(souk_health_register("store", fixed_check, &store), SOUK_EEXIST);
  assert_int_equal(souk_health_register("", fixed_check, &store), SOUK_EINVAL);
  assert_int_equal(souk_health_register("x", NULL, NULL), SOUK_EINVAL);

  /* Overall is the worst. */
  assert_int_equal(souk_health_check_all(&b), SOUK_HEALTH_WARNING);
  assert_string_equal(b.data, "health: WARNING (3 checks: 2 healthy, 1 warning, 0 critical)\n"
                              "  gateway  HEALTHY   latency 42 ms\n"
                              "  rest     WARNING   3 429s in 10 min second line\n"
                              "  store    HEALTHY   sqlite ok\n");
  store.status = SOUK_HEALTH_CRITICAL;
  store.detail = "unreachable";
  assert_int_equal(souk_health_check_all(NULL), SOUK_HEALTH_CRITICAL);
  rest.status = SOUK_HEALTH_HEALTHY;
  assert_int_equal(souk_health_check_all(NULL), SOUK_HEALTH_CRITICAL);
  store.status = SOUK_HEALTH_HEALTHY;
  assert_int_equal(souk_health_check_all(NULL), SOUK_HEALTH_HEALTHY);

  souk_health_result_t r;
  assert_int_equal(souk_health_check_one("rest", &r), 0);
  assert_int_equal(r.status, SOUK_HEALTH_HEALTHY);
  assert_int_equal(souk_health_check_one("nope", &r), SOUK_ENOTFOUND);
  assert_int_equal(souk_health_unregister("rest"), 0);
  assert_int_equal(souk_health_unregister("rest"), SOUK_ENOTFOUND);
  assert_int_equal(gw.calls, 4);

  /* The logged report: one line each, level by the overall status. */
  store.status = SOUK_HEALTH_CRITICAL;
  souk_health_log_report();
  assert_true(log_contains("health: CRITICAL (2 checks: 1 healthy, 0 warning, 1 critical)"));
  assert_true(log_contains("  store    CRITICAL  unreachable"));
  assert_true(log_contains("level=error"));
  souk_buf_free(&b);
}

static uint64_t fake_rss;
static int fake_rss_rc;
static int fake_sampler(void *ud, uint64_t *rss) {
  if (fake_rss_rc) return fake_rss_rc;
  *rss = fake_rss;
  return 0;
}

static void test_memory_check(void **state) {
  fake_rss = 100u << 20;
  fake_rss_rc = 0;
  souk__memguard_init(&(souk__memguard_opts_t){.sampler = fake_sampler, .clock = &fake_clock});
  souk__health_mem_t th = {.warn_bytes = 300u << 20, .crit_bytes = 400u << 20};
  assert_int_equal(souk_health_register("memory", souk__health_memory_check, &th), 0);
  souk_health_result_t r;
  souk_health_check_one("memory", &r);
  assert_int_equal(r.status, SOUK_HEALTH_HEALTHY);
  assert_string_equal(r.detail, "rss 100.0 MB");
  fake_rss = 300u << 20;
  souk__memguard_sample();
  souk_health_check_one("memory", &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  assert_string_equal(r.detail, "rss 300.0 MB >= warning 300.0 MB");
  fake_rss = 450u << 20;
  souk__memguard_sample();
  souk_health_check_one("memory", &r);
  assert_int_equal(r.status, SOUK_HEALTH_CRITICAL);
  assert_string_equal(r.detail, "rss 450.0 MB >= critical 400.0 MB");
  /* Zero thresholds are off. */
  th.crit_bytes = 0;
  souk_health_check_one("memory", &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  /* A sampler that never worked leaves the RSS unknown. */
  fake_rss_rc = SOUK_EIO;
  souk__memguard_init(&(souk__memguard_opts_t){.sampler = fake_sampler});
  souk_health_check_one("memory", &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  assert_string_equal(r.detail, "rss unknown (sampler failed)");
  /* Without a guard, the real /proc sampler answers. */
  souk__memguard_shutdown();
  uint64_t rss = 0;
  assert_int_equal(souk__memguard_rss(&rss), 0);
  assert_true(rss > 0);
}

static void test_perf(void **state) {
  souk_perf_t p = souk_perf_begin("sql.insert");
  fake_now_ms += 999;
  assert_int_equal(souk_perf_end(&p), 999);
  assert_int_equal(souk_perf_slow_count(), 0);
  assert_false(log_contains("slow operation"));
  p = souk_perf_begin("sql.insert");
  fake_now_ms += 1000;
  assert_int_equal(souk_perf_end(&p), 1000);
  assert_int_equal(souk_perf_slow_count(), 1);
  assert_true(log_contains("slow operation op=sql.insert duration_ms=1000 threshold_ms=1000"));
  p = souk_perf_begin("parse");
  fake_now_ms += 60;
  assert_int_equal(souk_perf_end_threshold(&p, 50), 60);
  assert_int_equal(souk_perf_slow_count(), 2);
  souk__health_set_slow_op(10);
  {
    SOUK_PERF_SCOPE("scoped");
    fake_now_ms += 11;
  }
  assert_int_equal(souk_perf_slow_count(), 3);
  assert_true(log_contains("op=scoped duration_ms=11 threshold_ms=10"));
}

static void stop_cb(uv_timer_t *t) { uv_close((uv_handle_t *)t, NULL); }

static void test_periodic_report(void **state) {
  souk__health_init(&(souk__health_opts_t){.report_interval_ms = 10});
  fixed_t gw = {SOUK_HEALTH_HEALTHY, "ok", 0};
  assert_int_equal(souk_health_register("gateway", fixed_check, &gw), 0);
  assert_int_equal(souk__health_start(), 0);
  assert_int_equal(souk__health_start(), SOUK_EBUSY);
  uv_timer_t stop;
  uv_timer_init(souk_loop(), &stop);
  uv_timer_start(&stop, stop_cb, 300, 0);
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  assert_true(gw.calls >= 3);
  assert_true(log_contains("health: HEALTHY (1 checks"));
  souk__health_stop();
  souk_loop_close();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_threshold, setup, teardown),
      cmocka_unit_test_setup_teardown(test_registry_and_report, setup, teardown),
      cmocka_unit_test_setup_teardown(test_memory_check, setup, teardown),
      cmocka_unit_test_setup_teardown(test_perf, setup, teardown),
      cmocka_unit_test_setup_teardown(test_periodic_report, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
