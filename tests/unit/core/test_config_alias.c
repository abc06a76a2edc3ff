/* Config aliases (SOUK_CONF_ALIAS): one value under two names.  Setting the
 * alias (file or environment) sets the key it names, scaled; setting both
 * is an error; the dump shows the alias as the other key's value. */
/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
// clang-format on

#include "core/config.h"
#include "souk/buf.h"
#include "souk/err.h"

typedef struct guard {
  int64_t soft;
  int64_t timeout_ms;
} guard_t;

typedef struct seed {
  int64_t soft_mb;
  int64_t wait_s;
  int64_t other;
} seed_t;

static guard_t gc;
static seed_t sc;

static const souk_conf_key_t g_keys[] = {
    {"soft_limit", SOUK_CONF_SIZE, offsetof(guard_t, soft), "320MB", 0, 0, NULL, 0, "soft"},
    {"timeout", SOUK_CONF_DURATION, offsetof(guard_t, timeout_ms), "5s", 0, 0, NULL, 0, "t"},
    {0},
};

static const souk_conf_key_t s_keys[] = {
    {"soft_rss_mb", SOUK_CONF_INT, offsetof(seed_t, soft_mb), NULL, 0, 1 << 20,
     SOUK_CONF_ALIAS_OF("guard.soft_limit", 1048576), SOUK_CONF_ALIAS, "MB"},
    {"wait_s", SOUK_CONF_INT, offsetof(seed_t, wait_s), NULL, 0, 1000,
     SOUK_CONF_ALIAS_OF("guard.timeout", 1000), SOUK_CONF_ALIAS, "seconds"},
    {"other", SOUK_CONF_INT, offsetof(seed_t, other), "7", 0, 100, NULL, 0, "plain"},
    {0},
};

static const souk_conf_section_t secs[] = {{"guard", g_keys, &gc, NULL}, {"seed", s_keys, &sc, NULL}};

static int load(const char *yaml, souk__conf_report_t *rep) {
  memset(rep, 0, sizeof *rep);
  return souk__config_load_mem("t.yaml", yaml, strlen(yaml), secs, 2, rep);
}

static void test_alias_sets_the_key(void **state) {
  (void)state;
  souk__conf_report_t rep;
  assert_int_equal(load("seed:\n  soft_rss_mb: 256\n  wait_s: 3\n", &rep), 0);
  assert_int_equal(gc.soft, 256LL << 20);
  assert_int_equal(gc.timeout_ms, 3000);
  souk_buf_t b = {0};
  souk__config_dump(secs, 2, &b);
  assert_non_null(strstr(b.data, "guard.soft_limit = 256MB (t.yaml:2 as seed.soft_rss_mb)"));
  assert_non_null(strstr(b.data, "seed.soft_rss_mb = alias of guard.soft_limit, set here to 256"));
  souk_buf_free(&b);
  souk__conf_report_free(&rep);
  souk__config_free(secs, 2);
  /* Unset: the key keeps its own value, and the dump says whose it is. */
  assert_int_equal(load("seed:\n  other: 8\n", &rep), 0);
  assert_int_equal(gc.soft, 320LL << 20);
  souk_buf_init(&b);
  souk__config_dump(secs, 2, &b);
  assert_non_null(strstr(b.data, "seed.soft_rss_mb = alias of guard.soft_limit\n"));
  souk_buf_free(&b);
  souk__conf_report_free(&rep);
  souk__config_free(secs, 2);
}

static void test_environment_and_both(void **state) {
  (void)state;
  souk__conf_report_t rep;
  setenv("SOUK_SEED_SOFT_RSS_MB", "100", 1);
  assert_int_equal(load("", &rep), 0);
  assert_int_equal(gc.soft, 100LL << 20);
  souk__conf_report_free(&rep);
  souk__config_free(secs, 2);
  /* The key in the file and its alias in the environment: one value only. */
  assert_int_equal(load("guard:\n  soft_limit: 64MB\n", &rep), SOUK_ECONFIG);
  assert_int_equal(rep.nerr, 1);
  assert_string_equal(rep.v[0].key, "seed.soft_rss_mb");
  assert_non_null(strstr(rep.v[0].msg, "another name for guard.soft_limit"));
  assert_non_null(strstr(rep.v[0].msg, "set only one of them"));
  souk__conf_report_free(&rep);
  unsetenv("SOUK_SEED_SOFT_RSS_MB");
  /* An alias out of its own bounds is refused like any key. */
  assert_int_equal(load("seed:\n  wait_s: 5000\n", &rep), SOUK_ECONFIG);
  souk__conf_report_free(&rep);
  souk__config_free(secs, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alias_sets_the_key),
      cmocka_unit_test(test_environment_and_both),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
