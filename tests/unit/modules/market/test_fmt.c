/* The market's ages and times: the replies' plain ages, the dashboard's
 * "ago" ones, and UTC times. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include "modules/market/fmt.c"

static const char *plain(int64_t ms) {
  static char b[40];
  return market_fmt_age(ms, MARKET_AGE_PLAIN, b, sizeof b);
}

static const char *ago(int64_t ms) {
  static char b[40];
  return market_fmt_age(ms, MARKET_AGE_AGO, b, sizeof b);
}

static void test_age(void **state) {
  assert_string_equal(plain(-5), "0 s");
  assert_string_equal(plain(4999), "4 s");
  assert_string_equal(plain(59999), "59 s");
  assert_string_equal(plain(60000), "1 min");
  assert_string_equal(plain(3599999), "59 min");
  assert_string_equal(plain(3600000 + 20 * 60000), "1 h 20 min");
  assert_string_equal(plain(86400000LL * 2 + 3600000 * 3 + 59000), "2 d 3 h");
  assert_string_equal(ago(-5), "just now");
  assert_string_equal(ago(4999), "just now");
  assert_string_equal(ago(5000), "5 s ago");
  assert_string_equal(ago(300000), "5 min ago");
  assert_string_equal(ago(3600000 * 3 + 20 * 60000), "3 h 20 min ago");
  assert_string_equal(ago(86400000LL * 2 + 3600000 * 3), "2 d ago");
  /* A short buffer is cut, never overrun. */
  char b[4];
  assert_string_equal(market_fmt_age(86400000LL * 20, MARKET_AGE_PLAIN, b, sizeof b), "20 ");
}

static void test_utc(void **state) {
  char b[40];
  assert_string_equal(market_fmt_utc(INT64_C(1763833500000), b, sizeof b), "2025-11-22 17:45 UTC");
  assert_string_equal(market_fmt_utc(1, b, sizeof b), "1970-01-01 00:00 UTC");
  assert_string_equal(market_fmt_utc(0, b, sizeof b), "unknown");
  assert_string_equal(market_fmt_utc(-1000, b, sizeof b), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_age),
      cmocka_unit_test(test_utc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
