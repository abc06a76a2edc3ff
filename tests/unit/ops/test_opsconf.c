/* Unit tests for the ops config sections (defaults parse, overrides land,
 * bounds hold) and for the wiring that starts every ops component from
 * them. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include "core/config.h"
#include "ops/janitor.h"
#include "ops/memguard.h"
#include "ops/ops.h"
#include "ops/opsconf.h"
#include "opstest.h"
#include "souk/err.h"

#define NSECS 4
#define MB    (1024ll * 1024)

static int load(const char *yaml, souk__conf_report_t *rep) {
  return souk__config_load_mem("test.yaml", yaml, strlen(yaml), souk__ops_conf_sections, NSECS,
                               rep);
}

static int teardown(void **state) {
  souk__config_free(souk__ops_conf_sections, NSECS);
  log_capture_stop();
  return 0;
}

static int setup(void **state) {
  log_capture_start();
  return 0;
}

static void test_defaults(void **state) {
  souk__conf_report_t rep = {0};
  assert_int_equal(load("", &rep), 0);
  assert_int_equal(rep.nerr, 0);
  souk__conf_report_free(&rep);
  assert_int_equal(souk__ops_conf.error_history, 256);
  assert_int_equal(souk__ops_conf.error_window_ms, 300000);
  assert_int_equal(souk__ops_conf.breaker_failures, 5);
  assert_true(souk__ops_conf.breaker_ratio == 0);
  assert_int_equal(souk__ops_conf.breaker_open_ms, 30000);
  assert_int_equal(souk__ops_conf.retry_base_ms, 500);
  assert_int_equal(souk__ops_conf.retry_cap_ms, 60000);
  assert_int_equal(souk__health_conf.report_interval_ms, 15 * 60000);
  assert_int_equal(souk__health_conf.slow_op_ms, 1000);
  assert_int_equal(souk__health_conf.memory_warn, 384 * MB);
  assert_int_equal(souk__health_conf.memory_crit, 480 * MB);
  assert_true(souk__memguard_conf.enabled);
  assert_int_equal(souk__memguard_conf.soft, 320 * MB);
  assert_int_equal(souk__memguard_conf.hard, 420 * MB);
  assert_int_equal(souk__memguard_conf.interval_ms, 10000);
  assert_true(souk__janitor_conf.enabled);
  assert_int_equal(souk__janitor_conf.interval_ms, 4 * 3600000ll);
  assert_int_equal(souk__janitor_conf.cap, 0);
  assert_true(souk__janitor_conf.headroom > 0.899 && souk__janitor_conf.headroom < 0.901);
  assert_false(souk__janitor_conf.dry_run);
}

static void test_overrides_and_bounds(void **state) {
  souk__conf_report_t rep = {0};
  assert_int_equal(load("ops:\n"
                        "  breaker:\n"
                        "    failures: 3\n"
                        "    failure_ratio: 0.5\n"
                        "  retry:\n"
                        "    cap: 2m\n"
                        "health:\n"
                        "  slow_op: 250ms\n"
                        "  memory:\n"
                        "    warning: 200MB\n"
                        "memguard:\n"
                        "  soft_limit: 1GB\n"
                        "janitor:\n"
                        "  cap: 10GB\n"
                        "  headroom: 0.8\n"
                        "  interval: 1h\n",
                        &rep),
                   0);
  souk__conf_report_free(&rep);
  assert_int_equal(souk__ops_conf.breaker_failures, 3);
  assert_true(souk__ops_conf.breaker_ratio == 0.5);
  assert_int_equal(souk__ops_conf.retry_cap_ms, 120000);
  assert_int_equal(souk__health_conf.slow_op_ms, 250);
  assert_int_equal(souk__health_conf.memory_warn, 200 * MB);
  assert_int_equal(souk__memguard_conf.soft, 1024 * MB);
  assert_int_equal(souk__janitor_conf.cap, 10240 * MB);
  assert_true(souk__janitor_conf.headroom == 0.8);
  assert_int_equal(souk__janitor_conf.interval_ms, 3600000);
  /* Out of range values are refused, naming the key. */
  assert_int_equal(
      load("janitor:\n  headroom: 1.5\nops:\n  breaker:\n    failure_ratio: 2\n", &rep),
      SOUK_ECONFIG);
  assert_int_equal(rep.nerr, 2);
  souk_buf_t b = {0};
  souk__conf_diag_format(&rep.v[0], &b);
  assert_non_null(strstr(b.data, "headroom") ? b.data : strstr(b.data, "failure_ratio"));
  souk_buf_free(&b);
  souk__conf_report_free(&rep);
}

static void test_ops_start_stop(void **state) {
  assert_int_equal(load("janitor:\n  enabled: false\nmemguard:\n  soft_limit: 1GB\n", NULL), 0);
  assert_int_equal(souk__ops_start(), 0);
  souk_health_result_t r;
  assert_int_equal(souk_health_check_one("memory", &r), 0);
  assert_int_equal(r.status, SOUK_HEALTH_HEALTHY);
  assert_int_equal(souk_health_check_one("tasks", &r), 0);
  assert_string_equal(r.detail, "0 tasks, all within budget");
  assert_int_equal(souk_health_check_one("breakers", &r), 0);
  assert_int_equal(r.status, SOUK_HEALTH_HEALTHY);
  assert_int_equal(souk_health_check_one("errors", &r), 0);
  assert_int_equal(r.status, SOUK_HEALTH_HEALTHY);
  /* 30 errors in the 5-minute window: 6 per minute, under the warning. */
  for (int i = 0; i < 30; i++)
    souk_error_record("t", SOUK_SEV_LOW, 0, NULL, NULL);
  souk_health_check_one("errors", &r);
  assert_int_equal(r.status, SOUK_HEALTH_HEALTHY);
  for (int i = 0; i < 30; i++)
    souk_error_record("t", SOUK_SEV_LOW, 0, NULL, NULL);
  souk_health_check_one("errors", &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  assert_string_equal(r.detail, "12.00 errors/min (60 total, 0 critical)");
  /* A run-time change of a threshold applies at the next check. */
  souk__health_conf.memory_warn = 1;
  souk_health_check_one("memory", &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  souk__memguard_conf.soft = 1;
  souk__ops_reload();
  assert_int_equal(souk__memguard_sample(), SOUK_MEM_SOFT);
  souk__ops_stop();
  souk_loop_close();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
      cmocka_unit_test_setup_teardown(test_overrides_and_bounds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ops_start_stop, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
