/* Alerts: the minimum severity, one alert per type per cooldown with the
 * count of those left out in the next, every sink called, sinks added and
 * removed by name (also from inside a sink), a sink's own threshold and
 * cooldowns. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include "ops/alert.h"
#include "ops/opsconf.h"
#include "ops/recovery.h"
#include "opstest.h"
#include "souk/err.h"

static char got[2][8][512];
static int ngot[2];

static void sink(const souk_error_event_t *ev, const char *text, void *ud) {
  int k = (int)(intptr_t)ud;
  if (ngot[k] < 8) snprintf(got[k][ngot[k]++], sizeof got[k][0], "%s", text);
}

static int setup(void **state) {
  fake_now_ms = 1000;
  memset(ngot, 0, sizeof ngot);
  souk__recovery_init(&(souk__recovery_opts_t){.clock = &fake_clock});
  souk__ops_conf.alert_min_severity = SOUK_SEV_MEDIUM;
  souk__ops_conf.alert_cooldown_ms = 60000;
  assert_int_equal(souk__alerts_start(), 0);
  return 0;
}

static int teardown(void **state) {
  souk__alerts_stop();
  souk__recovery_shutdown();
  return 0;
}

static void test_sinks_and_cooldown(void **state) {
  log_capture_start();
  assert_int_equal(souk_alert_sink_add("one", NULL, sink, (void *)0), 0);
  assert_int_equal(souk_alert_sink_add("two", NULL, sink, (void *)1), 0);
  assert_int_equal(souk_alert_sink_add("one", NULL, sink, (void *)0), SOUK_EEXIST);
  assert_int_equal(souk_alert_sink_add("", NULL, sink, NULL), SOUK_EINVAL);
  /* Below the minimum severity: nothing. */
  souk_error_record("disk", SOUK_SEV_LOW, SOUK_EIO, NULL, "a blip");
  assert_int_equal(ngot[0], 0);
  souk_error_record("disk", SOUK_SEV_HIGH, SOUK_EIO, NULL, "full");
  assert_int_equal(ngot[0], 1);
  assert_int_equal(ngot[1], 1);
  assert_non_null(strstr(got[0][0], "**souk high error** `disk`: full"));
  assert_string_equal(got[0][0], got[1][0]);
  /* Within the cooldown: counted, not sent; another type is its own. */
  fake_now_ms += 1000;
  souk_error_record("disk", SOUK_SEV_HIGH, SOUK_EIO, NULL, "full");
  souk_error_record("disk", SOUK_SEV_HIGH, SOUK_EIO, NULL, "full");
  souk_error_record("net", SOUK_SEV_CRITICAL, 0, NULL, NULL);
  assert_int_equal(ngot[0], 2);
  assert_non_null(strstr(got[0][1], "**souk critical error** `net`: (no detail)"));
  fake_now_ms += 60000;
  souk_error_record("disk", SOUK_SEV_MEDIUM, SOUK_EIO, NULL, "still full");
  assert_int_equal(ngot[0], 3);
  assert_non_null(strstr(got[0][2], "still full"));
  assert_non_null(strstr(got[0][2], "(+2 more since the last alert)"));
  /* A removed sink hears no more. */
  assert_int_equal(souk_alert_sink_remove("two"), 0);
  assert_int_equal(souk_alert_sink_remove("two"), SOUK_ENOTFOUND);
  assert_int_equal(ngot[1], 3);
  souk_error_record("cpu", SOUK_SEV_HIGH, 0, NULL, "hot");
  assert_int_equal(ngot[0], 4);
  assert_int_equal(ngot[1], 3);
  log_capture_stop();
}

/* A sink that removes itself when it is called, as the wiring removes
 * the channel's when shutdown begins inside souk_error_record(). */
static void leaving_sink(const souk_error_event_t *ev, const char *text, void *ud) {
  sink(ev, text, ud);
  assert_int_equal(souk_alert_sink_remove("leaving"), 0);
}

static void test_own_threshold_and_cooldown(void **state) {
  log_capture_start();
  int critical = SOUK_SEV_CRITICAL;
  assert_int_equal(souk_alert_sink_add("leaving", NULL, leaving_sink, (void *)0), 0);
  assert_int_equal(souk_alert_sink_add("strict", &critical, sink, (void *)1), 0);
  /* High: the default threshold (medium) lets it through, the strict one
   * does not; the leaving sink is gone after its one alert. */
  souk_error_record("disk", SOUK_SEV_HIGH, SOUK_EIO, NULL, "full");
  assert_int_equal(ngot[0], 1);
  assert_int_equal(ngot[1], 0);
  assert_int_equal(souk_alert_sink_remove("leaving"), SOUK_ENOTFOUND);
  /* The strict sink's cooldown is its own: disk was never alerted to it. */
  souk_error_record("disk", SOUK_SEV_CRITICAL, SOUK_EIO, NULL, "gone");
  assert_int_equal(ngot[0], 1);
  assert_int_equal(ngot[1], 1);
  assert_non_null(strstr(got[1][0], "**souk critical error** `disk`: gone"));
  /* The threshold is read at every error: lowering it applies at once. */
  critical = SOUK_SEV_MEDIUM;
  souk_error_record("net", SOUK_SEV_MEDIUM, 0, NULL, "slow");
  assert_int_equal(ngot[1], 2);
  log_capture_stop();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sinks_and_cooldown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_own_threshold_and_cooldown, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
