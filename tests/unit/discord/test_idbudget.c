/* The daily IDENTIFY budget: the share of Discord's limit, the rolling 24
 * hours of the shared record (and when its oldest hours leave it), and
 * Discord's own window from GET /gateway/bot until it resets. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "discord/idbudget.h"

#define HOUR SOUK_IDL_HOUR_MS
#define MINUTE  INT64_C(60000)
/* Half past some hour. */
#define NOW (INT64_C(490000) * HOUR + 30 * MINUTE)

static void test_share_of_the_limit(void **state) {
  souk__idbudget_t b;
  souk__idbudget_init(&b, 1000, 90, -1, 0, NOW);
  assert_int_equal(b.limit, 900);
  souk__idbudget_init(&b, 0, 50, -1, 0, NOW);
  assert_int_equal(b.total, SOUK_IDBUDGET_TOTAL_DEFAULT);
  assert_int_equal(b.limit, 500);
  /* Never nothing at all. */
  souk__idbudget_init(&b, 10, 1, -1, 0, NOW);
  assert_int_equal(b.limit, 1);
  souk__idbudget_init(&b, 2000, 250, -1, 0, NOW);
  assert_int_equal(b.limit, 2000);
}

static void test_rolling_day(void **state) {
  souk__idbudget_t b;
  souk__idbudget_init(&b, 1000, 90, -1, 0, NOW);
  uint32_t c[SOUK_IDL_HOURS];
  memset(c, 0, sizeof c);
  uint32_t used = 0;
  assert_int_equal(souk__idbudget_wait(&b, c, NOW, &used), 0);
  assert_int_equal(used, 0);
  c[0] = 400;
  c[24] = 499;
  assert_int_equal(souk__idbudget_wait(&b, c, NOW, &used), 0);
  assert_int_equal(used, 899);
  /* At the limit: the oldest hour leaves at the next hour, in 30 min. */
  c[24] = 500;
  assert_int_equal(souk__idbudget_wait(&b, c, NOW, &used), 30 * MINUTE);
  assert_int_equal(used, 900);
  /* The oldest hour is empty and the next holds too little: three hours
   * must leave, the last of them in 2 h 30 min. */
  c[24] = 0;
  c[23] = 100;
  c[22] = 300;
  c[0] = 600;
  assert_int_equal(souk__idbudget_wait(&b, c, NOW, NULL), 30 * MINUTE + 2 * HOUR);
  /* Everything in the current hour: it leaves the record in 24 h 30 min. */
  memset(c, 0, sizeof c);
  c[0] = 2000;
  assert_int_equal(souk__idbudget_wait(&b, c, NOW, NULL), 30 * MINUTE + 24 * HOUR);
}

static void test_discord_window(void **state) {
  souk__idbudget_t b;
  /* Discord says 850 of 1000 are used, resetting in 2 hours. */
  souk__idbudget_init(&b, 1000, 90, 150, 2 * HOUR, NOW);
  uint32_t c[SOUK_IDL_HOURS];
  memset(c, 0, sizeof c);
  uint32_t used = 0;
  assert_int_equal(souk__idbudget_wait(&b, c, NOW, &used), 0);
  assert_int_equal(used, 850);
  for (int i = 0; i < 49; i++)
    souk__idbudget_spent(&b);
  assert_int_equal(souk__idbudget_wait(&b, c, NOW + MINUTE, NULL), 0);
  souk__idbudget_spent(&b);
  /* 900: until Discord's window resets. */
  assert_int_equal(souk__idbudget_wait(&b, c, NOW + MINUTE, &used), 2 * HOUR - MINUTE);
  assert_int_equal(used, 900);
  /* The window reset: only the record counts. */
  assert_int_equal(souk__idbudget_wait(&b, c, NOW + 2 * HOUR, NULL), 0);
  /* Both rules: the longer wait wins. */
  c[24] = 900;
  assert_int_equal(souk__idbudget_wait(&b, c, NOW + MINUTE, NULL), 2 * HOUR - MINUTE);
  /* No window started (reset_after 0) or nothing known: no rule. */
  souk__idbudget_init(&b, 1000, 90, 0, 0, NOW);
  memset(c, 0, sizeof c);
  assert_int_equal(souk__idbudget_wait(&b, c, NOW, NULL), 0);
  souk__idbudget_init(&b, 1000, 90, -1, 5 * HOUR, NOW);
  assert_int_equal(souk__idbudget_wait(&b, c, NOW, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_share_of_the_limit),
      cmocka_unit_test(test_rolling_day),
      cmocka_unit_test(test_discord_window),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
