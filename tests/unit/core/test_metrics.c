/* The metrics registry: exact text-format output, escaping, histograms,
 * collectors, limits, and the core's built-in collectors checked by the strict
 * Python parser (tests/fakes/promparse.py) when /usr/bin/python3 has
 * prometheus_client. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
/* clang-format on */
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "../metricstest.h"
#include "core/metrics.h"

#include <pthread.h>
#include <signal.h>

static void check_fmt(double d, const char *want) {
  souk_buf_t b = {0};
  souk__metrics_fmt_double(&b, d);
  assert_string_equal(b.data, want);
  souk_buf_free(&b);
}

static void test_fmt_double(void **state) {
  check_fmt(0, "0");
  check_fmt(-0.0, "0");
  check_fmt(1, "1");
  check_fmt(-3, "-3");
  check_fmt(0.25, "0.25");
  check_fmt(0.1, "0.1");
  check_fmt(1e20, "1e+20");
  check_fmt(123456789012, "123456789012");
  check_fmt(1.0 / 3.0, "0.33333333333333331");
  check_fmt(0.0 / 0.0, "NaN");
  check_fmt(1.0 / 0.0, "+Inf");
  check_fmt(-1.0 / 0.0, "-Inf");
}

static void test_exact_output(void **state) {
  souk_metric_t *c = souk_counter_new("b_requests_total", "Requests.", "route,status");
  souk_metric_t *g = souk_gauge_new("a_temperature", "Temperature with \\ and\nnewline.", NULL);
  souk_metric_t *e = souk_gauge_new("c_empty", "No series: not rendered.", "x");
  (void)e;
  souk_counter_inc(souk_metric_series(c, SOUK_LV("GET /x", "200")));
  souk_counter_add(souk_metric_series(c, SOUK_LV("GET /x", "200")), 2);
  souk_counter_add(souk_metric_series(c, SOUK_LV("a\"b\\c\nd", "500")), 0.5);
  souk_counter_add(souk_metric_series(c, SOUK_LV("GET /x", "500")), -4); /* ignored */
  souk_gauge_set(souk_metric_series(g, NULL), -1.5);
  char *out = render();
  assert_string_equal(out, "# HELP a_temperature Temperature with \\\\ and\\nnewline.\n"
                           "# TYPE a_temperature gauge\n"
                           "a_temperature -1.5\n"
                           "# HELP b_requests_total Requests.\n"
                           "# TYPE b_requests_total counter\n"
                           "b_requests_total{route=\"GET /x\",status=\"200\"} 3\n"
                           "b_requests_total{route=\"a\\\"b\\\\c\\nd\",status=\"500\"} 0.5\n"
                           "b_requests_total{route=\"GET /x\",status=\"500\"} 0\n");
  souk_free(out);
}

static void test_histogram(void **state) {
  const double bounds[] = {0.1, 1, 2.5};
  souk_metric_t *h = souk_histogram_new("lat_seconds", "Latency.", "route", bounds, 3);
  souk_series_t *s = souk_metric_series(h, SOUK_LV("/a"));
  souk_histogram_observe(s, 0.05);
  souk_histogram_observe(s, 0.1); /* le is inclusive */
  souk_histogram_observe(s, 0.5);
  souk_histogram_observe(s, 7);
  assert_true(souk_series_value(s) == 4);
  souk_metric_t *h2 = souk_histogram_new("z_size_bytes", "Sizes.", NULL, NULL, 0);
  souk_histogram_observe(souk_metric_series(h2, NULL), 3);
  char *out = render();
  assert_string_equal(out, "# HELP lat_seconds Latency.\n"
                           "# TYPE lat_seconds histogram\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"2.5\"} 3\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"
                           "lat_seconds_sum{route=\"/a\"} 7.65\n"
                           "lat_seconds_count{route=\"/a\"} 4\n"
                           "# HELP z_size_bytes Sizes.\n"
                           "# TYPE z_size_bytes histogram\n"
                           "z_size_bytes_bucket{le=\"+Inf\"} 1\n"
                           "z_size_bytes_sum 3\n"
                           "z_size_bytes_count 1\n");
  souk_free(out);
}

static void test_registration(void **state) {
  souk_metric_t *a = souk_counter_new("x_total", "X.", "a, b");
  assert_ptr_equal(souk_counter_new("x_total", "X.", "a,b"), a);
  assert_ptr_equal(souk_metric_find("x_total"), a);
  assert_null(souk_metric_find("y_total"));
  souk_series_t *s1 = souk_metric_series(a, SOUK_LV("1", "2"));
  assert_ptr_equal(souk_metric_series(a, SOUK_LV("1", "2")), s1);
  /* The separator keeps ("12","") and ("1","2") apart. */
  assert_ptr_not_equal(souk_metric_series(a, SOUK_LV("12", "")), s1);
  /* NULL values are "". */
  assert_ptr_equal(souk_metric_series(a, SOUK_LV("12", NULL)),
                   souk_metric_series(a, SOUK_LV("12", "")));
  souk_counter_set(s1, 42);
  assert_true(souk_series_value(s1) == 42);
}

static void test_many_series_and_clear(void **state) {
  souk_metric_t *m = souk_gauge_new("many", "Many.", "i");
  char k[16];
  for (int i = 0; i < 3000; i++) {
    snprintf(k, sizeof k, "%d", i);
    souk_gauge_set(souk_metric_series(m, SOUK_LV(k)), i);
  }
  for (int i = 0; i < 3000; i += 7) {
    snprintf(k, sizeof k, "%d", i);
    assert_true(souk_series_value(souk_metric_series(m, SOUK_LV(k))) == i);
  }
  souk_metric_clear(m);
  char *out = render();
  assert_string_equal(out, ""); /* a family without series is left out */
  souk_free(out);
  souk_gauge_set(souk_metric_series(m, SOUK_LV("again")), 1);
  out = render();
  assert_non_null(strstr(out, "many{i=\"again\"} 1\n"));
  souk_free(out);
}

static void test_series_limit(void **state) {
  souk_metric_t *m = souk_counter_new("lim_total", "Limited.", "i");
  char k[16];
  for (int i = 0; i < SOUK_METRIC_MAX_SERIES + 5; i++) {
    snprintf(k, sizeof k, "%d", i);
    souk_counter_inc(souk_metric_series(m, SOUK_LV(k)));
  }
  char *out = render();
  assert_null(strstr(out, "lim_total{i=\"10000\"}"));
  assert_non_null(strstr(out, "lim_total{i=\"9999\"} 1\n"));
  assert_non_null(strstr(out, "souk_metrics_dropped_series_total{family=\"lim_total\"} 5\n"));
  souk_free(out);
}

static int ncollect;
static souk_metric_t *coll_fam;

static void collector(void *ud) {
  ncollect++;
  souk_metric_clear(coll_fam);
  souk_gauge_set(souk_metric_series(coll_fam, SOUK_LV((const char *)ud)), ncollect);
}

static void test_collectors(void **state) {
  ncollect = 0;
  coll_fam = souk_gauge_new("live", "Live.", "who");
  assert_int_equal(souk_metrics_add_collector(collector, "a"), 0);
  assert_int_equal(souk_metrics_add_collector(collector, "a"), SOUK_EEXIST);
  char *out = render();
  assert_int_equal(ncollect, 1);
  assert_string_equal(out, "# HELP live Live.\n# TYPE live gauge\nlive{who=\"a\"} 1\n");
  souk_free(out);
  assert_int_equal(souk_metrics_remove_collector(collector, "a"), 0);
  assert_int_equal(souk_metrics_remove_collector(collector, "a"), SOUK_ENOTFOUND);
  out = render();
  assert_int_equal(ncollect, 1);
  souk_free(out);
}

/* The by-name setters of collectors: the family's series, or nothing. */
static void test_set_named(void **state) {
  souk_counter_new("mirrored_total", "Mirrored.", "who");
  souk_gauge_new("level", "Level.", NULL);
  souk_counter_set_named("mirrored_total", SOUK_LV("a"), 7);
  souk_gauge_set_named("level", NULL, 0.5);
  souk_counter_set_named("absent_total", SOUK_LV("a"), 1);
  souk_gauge_set_named("absent", NULL, 1);
  char *out = render();
  assert_string_equal(out, "# HELP level Level.\n# TYPE level gauge\nlevel 0.5\n"
                           "# HELP mirrored_total Mirrored.\n# TYPE mirrored_total counter\n"
                           "mirrored_total{who=\"a\"} 7\n");
  souk_free(out);
  assert_null(souk_metric_find("absent_total"));
}

static souk_series_t *atomic_series;

static void *adder(void *arg) {
  for (int i = 0; i < 100000; i++)
    souk_counter_add_atomic(atomic_series, 1);
  return NULL;
}

static void test_atomic(void **state) {
  atomic_series = souk_metric_series(souk_counter_new("work_total", "Work.", NULL), NULL);
  souk_counter_add(atomic_series, 5);
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&t[i], NULL, adder, NULL);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  assert_true(souk_series_value(atomic_series) == 400005);
  char *out = render();
  assert_non_null(strstr(out, "work_total 400005\n"));
  souk_free(out);
}

static void test_builtin(void **state) {
  souk__metrics_builtin_init();
  souk__metrics_builtin_init(); /* idempotent */
  const double b[] = {1, 2};
  souk_histogram_observe(
      souk_metric_series(souk_histogram_new("t_seconds", "T \"quoted\".", "x", b, 2),
                         SOUK_LV("q\"\\\n")),
      1.5);
  char *out = render();
  assert_non_null(strstr(out, "# TYPE process_resident_memory_bytes gauge\n"));
  assert_non_null(strstr(out, "# TYPE process_cpu_seconds_total counter\n"));
  assert_non_null(strstr(out, "\nprocess_open_fds "));
  assert_non_null(strstr(out, "\nsouk_process_heap_bytes "));
  assert_non_null(strstr(out, "\nprocess_start_time_seconds "));
  assert_null(strstr(out, "\nprocess_start_time_seconds 0\n"));
  assert_non_null(strstr(out, "\nsouk_events_dispatched_total 0\n"));
  assert_non_null(strstr(out, "souk_build_info{version=\""));
  /* The core registers only its own families: the other layers register
   * theirs (tests/unit/discord/test_dmetrics.c). */
  assert_null(strstr(out, "souk_gateway_"));
  assert_null(strstr(out, "souk_rest_"));
  int rc = promparse(out);
  if (rc >= 0) assert_int_equal(rc, 0);
  /* And the parser does reject what it must. */
  rc = promparse("# HELP x X.\n# TYPE x counter\nx 1\nx 2\n");
  if (rc >= 0) assert_int_not_equal(rc, 0);
  souk_free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_fmt_double, teardown),
      cmocka_unit_test_teardown(test_exact_output, teardown),
      cmocka_unit_test_teardown(test_histogram, teardown),
      cmocka_unit_test_teardown(test_registration, teardown),
      cmocka_unit_test_teardown(test_many_series_and_clear, teardown),
      cmocka_unit_test_teardown(test_series_limit, teardown),
      cmocka_unit_test_teardown(test_collectors, teardown),
      cmocka_unit_test_teardown(test_set_named, teardown),
      cmocka_unit_test_teardown(test_atomic, teardown),
      cmocka_unit_test_teardown(test_builtin, teardown),
  };
  signal(SIGPIPE, SIG_IGN);
  souk_alloc_init();
  souk_log_set_level(SOUK_LOG_ERROR);
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  souk_loop_close();
  return rc;
}
