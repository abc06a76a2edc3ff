/* The Market Sim's money arithmetic: rounding directions, cost basis
 * across buys and partial sells, overflow refusal, dollar-amount buys that
 * never exceed the amount, formatting and parsing. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "modules/market/money.c"

static void test_rounding(void **state) {
  int64_t c;
  /* $1.00005 a share: one share is 100.005 cents. */
  assert_int_equal(market_gross_up(1000050, 1, &c), 0);
  assert_int_equal(c, 101);
  assert_int_equal(market_gross_down(1000050, 1, &c), 0);
  assert_int_equal(c, 100);
  /* Exact values round neither way. */
  assert_int_equal(market_gross_up(1230000, 3, &c), 0);
  assert_int_equal(c, 369);
  assert_int_equal(market_gross_down(1230000, 3, &c), 0);
  assert_int_equal(c, 369);
  /* A micro-dollar: one share costs a whole cent, is worth nothing. */
  assert_int_equal(market_gross_up(1, 1, &c), 0);
  assert_int_equal(c, 1);
  assert_int_equal(market_gross_down(1, 1, &c), 0);
  assert_int_equal(c, 0);
  assert_int_equal(market_gross_up(1, 0, &c), 0);
  assert_int_equal(c, 0);
  /* Commission: added to a buy, taken off a sale. */
  assert_int_equal(market_buy_cost(1000050, 1, 99, &c), 0);
  assert_int_equal(c, 200);
  assert_int_equal(market_sell_proceeds(1000050, 1, 99, &c), 0);
  assert_int_equal(c, 1);
  assert_int_equal(market_sell_proceeds(1000050, 1, 150, &c), 0);
  assert_int_equal(c, -50); /* the ledger refuses this sale */
  /* Bad input. */
  assert_int_equal(market_gross_up(0, 1, &c), SOUK_EINVAL);
  assert_int_equal(market_gross_up(-5, 1, &c), SOUK_EINVAL);
  assert_int_equal(market_gross_down(5, -1, &c), SOUK_EINVAL);
  assert_int_equal(market_buy_cost(5, 1, -1, &c), SOUK_EINVAL);
}

/* A buy then a sale at the same price never returns more than it cost. */
static void test_no_minting(void **state) {
  for (int64_t p = 1; p < 200000; p += 997) {
    for (int64_t n = 1; n < 50; n += 7) {
      int64_t cost, proceeds;
      assert_int_equal(market_buy_cost(p, n, 0, &cost), 0);
      assert_int_equal(market_sell_proceeds(p, n, 0, &proceeds), 0);
      assert_true(proceeds <= cost);
      assert_true(cost - proceeds <= 1);
    }
  }
}

static void test_overflow(void **state) {
  int64_t c = 42;
  assert_int_equal(market_gross_up(INT64_MAX, INT64_MAX, &c), SOUK_ERANGE);
  assert_int_equal(c, 42); /* untouched */
  assert_int_equal(market_gross_down(INT64_MAX, 10001, &c), SOUK_ERANGE);
  /* The largest product that still fits after the division. */
  assert_int_equal(market_gross_down(INT64_MAX, 10000, &c), 0);
  assert_int_equal(c, INT64_MAX);
  assert_int_equal(market_gross_up(INT64_MAX, 10000, &c), 0);
  assert_int_equal(c, INT64_MAX);
  /* ... and the commission pushes it over. */
  assert_int_equal(market_buy_cost(INT64_MAX, 10000, 1, &c), SOUK_ERANGE);
  assert_int_equal(market_sell_proceeds(1, 1, 0, &c), 0);
  assert_int_equal(market_add(INT64_MAX, 1, &c), SOUK_ERANGE);
  assert_int_equal(market_sub(INT64_MIN, 1, &c), SOUK_ERANGE);
  assert_int_equal(market_add(INT64_MAX - 1, 1, &c), 0);
  assert_int_equal(c, INT64_MAX);
  /* A fortune at a micro-dollar is more shares than int64 holds. */
  int64_t n;
  assert_int_equal(market_shares_for_amount(1, INT64_MAX, 0, &n), SOUK_ERANGE);
  assert_int_equal(market_shares_worth(1, INT64_MAX, &n), SOUK_ERANGE);
  assert_int_equal(market_roi_bp(INT64_MAX, 1, &n), SOUK_ERANGE);
}

/* The shares an amount buys: their cost with commission never exceeds the
 * amount, and one more share would. */
static void test_shares_for_amount(void **state) {
  const int64_t prices[] = {1, 7, 9999, 10000, 10001, 1000050, 123456789, 999999999999};
  const int64_t amounts[] = {0, 1, 99, 100, 101, 12345, 1000000, 100000000, 4000000000000};
  const int64_t comms[] = {0, 1, 99, 500};
  for (size_t i = 0; i < sizeof prices / sizeof *prices; i++)
    for (size_t j = 0; j < sizeof amounts / sizeof *amounts; j++)
      for (size_t k = 0; k < sizeof comms / sizeof *comms; k++) {
        int64_t p = prices[i], a = amounts[j], cm = comms[k], n = 0, cost = 0;
        assert_int_equal(market_shares_for_amount(p, a, cm, &n), 0);
        assert_true(n >= 0);
        if (n > 0) {
          assert_int_equal(market_buy_cost(p, n, cm, &cost), 0);
          assert_true(cost <= a);
        }
        assert_int_equal(market_buy_cost(p, n + 1, cm, &cost), 0);
        assert_true(cost > a);
        /* Selling "$a worth": the exact value fits in the amount. */
        assert_int_equal(market_shares_worth(p, a, &n), 0);
        assert_true((__int128)p * n <= (__int128)a * 10000);
        assert_true((__int128)p * (n + 1) > (__int128)a * 10000);
        int64_t gross;
        assert_int_equal(market_gross_down(p, n, &gross), 0);
        assert_true(gross <= a);
      }
  int64_t n;
  /* $100 at $30.00 with a $1 commission: 3 shares ($90 + $1). */
  assert_int_equal(market_shares_for_amount(30000000, 10000, 100, &n), 0);
  assert_int_equal(n, 3);
  /* The commission alone eats the amount. */
  assert_int_equal(market_shares_for_amount(30000000, 100, 100, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(market_shares_for_amount(0, 100, 0, &n), SOUK_EINVAL);
  assert_int_equal(market_shares_for_amount(1, -1, 0, &n), SOUK_EINVAL);
}

/* Cost basis across buys and partial sells: floor per partial sale, the
 * remainder on the last one, realised profit the difference. */
static void test_cost_basis(void **state) {
  int64_t shares = 0, cost = 0, realised = 0, c;
  /* Buy 3 at $10.00005 (3000.015 -> 3001 cents) and 4 at $12.34 (4936). */
  assert_int_equal(market_buy_cost(10000050, 3, 0, &c), 0);
  assert_int_equal(c, 3001);
  shares += 3;
  cost += c;
  assert_int_equal(market_buy_cost(12340000, 4, 0, &c), 0);
  assert_int_equal(c, 4936);
  shares += 4;
  cost += c;
  assert_int_equal(cost, 7937);
  assert_int_equal(market_avg_cost_micro(cost, shares), 11338571); /* $11.338571 */
  /* Sell 2 at $15: removes floor(7937 * 2 / 7) = 2267. */
  int64_t removed, proceeds, r;
  assert_int_equal(market_cost_removed(cost, shares, 2, &removed), 0);
  assert_int_equal(removed, 2267);
  assert_int_equal(market_sell_proceeds(15000000, 2, 0, &proceeds), 0);
  assert_int_equal(proceeds, 3000);
  assert_int_equal(market_sub(proceeds, removed, &r), 0);
  assert_int_equal(r, 733);
  realised += r;
  shares -= 2;
  cost -= removed;
  /* Sell 4 of 5 at $9.99: floor(5670 * 4 / 5) = 4536. */
  assert_int_equal(market_cost_removed(cost, shares, 4, &removed), 0);
  assert_int_equal(removed, 4536);
  assert_int_equal(market_sell_proceeds(9990000, 4, 0, &proceeds), 0);
  realised += proceeds - removed;
  shares -= 4;
  cost -= removed;
  assert_int_equal(cost, 1134);
  /* The last share removes exactly what is left. */
  assert_int_equal(market_cost_removed(cost, shares, 1, &removed), 0);
  assert_int_equal(removed, 1134);
  assert_int_equal(market_sell_proceeds(9990000, 1, 0, &proceeds), 0);
  realised += proceeds - removed;
  shares -= 1;
  cost -= removed;
  assert_int_equal(shares, 0);
  assert_int_equal(cost, 0);
  /* All the cost went somewhere: total proceeds - total cost = realised. */
  assert_int_equal(realised, (3000 + 3996 + 999) - 7937);
  /* Many small sales never remove more than the total. */
  int64_t total = 1000001, held = 997;
  while (held > 0) {
    assert_int_equal(market_cost_removed(total, held, 1, &removed), 0);
    assert_true(removed >= 0 && removed <= total);
    total -= removed;
    held--;
  }
  assert_int_equal(total, 0);
  assert_int_equal(market_cost_removed(100, 5, 6, &removed), SOUK_EINVAL);
  assert_int_equal(market_cost_removed(100, 5, 0, &removed), SOUK_EINVAL);
  assert_int_equal(market_cost_removed(-1, 5, 1, &removed), SOUK_EINVAL);
  /* Huge totals go through 128 bits. */
  assert_int_equal(market_cost_removed(INT64_MAX, INT64_MAX, INT64_MAX - 1, &removed), 0);
  assert_int_equal(removed, INT64_MAX - 1);
  assert_int_equal(market_avg_cost_micro(0, 0), 0);
}

static void test_roi(void **state) {
  int64_t bp;
  assert_int_equal(market_roi_bp(112340000, 100000000, &bp), 0);
  assert_int_equal(bp, 1234);
  assert_int_equal(market_roi_bp(95000000, 100000000, &bp), 0);
  assert_int_equal(bp, -500);
  assert_int_equal(market_roi_bp(100000000, 100000000, &bp), 0);
  assert_int_equal(bp, 0);
  assert_int_equal(market_roi_bp(99999999, 100000000, &bp), 0);
  assert_int_equal(bp, 0); /* -0.0001 bp rounds to 0 */
  /* Rounded half away from zero, never truncated: 8.597% is 8.60%. */
  assert_int_equal(market_roi_bp(108597, 100000, &bp), 0);
  assert_int_equal(bp, 860);
  assert_int_equal(market_roi_bp(91403, 100000, &bp), 0);
  assert_int_equal(bp, -860);
  assert_int_equal(market_roi_bp(108594, 100000, &bp), 0);
  assert_int_equal(bp, 859);
  /* Exactly half a basis point goes away from zero on both sides. */
  assert_int_equal(market_roi_bp(20001, 20000, &bp), 0);
  assert_int_equal(bp, 1);
  assert_int_equal(market_roi_bp(19999, 20000, &bp), 0);
  assert_int_equal(bp, -1);
  assert_int_equal(market_roi_bp(INT64_MAX, INT64_MAX - 1, &bp), 0);
  assert_int_equal(bp, 0);
  assert_int_equal(market_roi_bp(0, 100000000, &bp), 0);
  assert_int_equal(bp, -10000);
  assert_int_equal(market_roi_bp(5, 0, &bp), SOUK_EINVAL);
}

static void test_format(void **state) {
  char b[MARKET_FMT_MAX];
  assert_string_equal(market_fmt_cents(123456789, b, sizeof b), "$1,234,567.89");
  assert_string_equal(market_fmt_cents(-123450, b, sizeof b), "-$1,234.50");
  assert_string_equal(market_fmt_cents(0, b, sizeof b), "$0.00");
  assert_string_equal(market_fmt_cents(5, b, sizeof b), "$0.05");
  assert_string_equal(market_fmt_cents(-5, b, sizeof b), "-$0.05");
  assert_string_equal(market_fmt_cents(100000, b, sizeof b), "$1,000.00");
  assert_string_equal(market_fmt_cents(99999, b, sizeof b), "$999.99");
  assert_string_equal(market_fmt_cents(INT64_MAX, b, sizeof b), "$92,233,720,368,547,758.07");
  assert_string_equal(market_fmt_cents(INT64_MIN, b, sizeof b), "-$92,233,720,368,547,758.08");
  /* One rule: two decimals from $1 up, rounded half away from zero ... */
  assert_string_equal(market_fmt_price(123456700, b, sizeof b), "$123.46");
  assert_string_equal(market_fmt_price(244938000, b, sizeof b), "$244.94");
  assert_string_equal(market_fmt_price(549905555, b, sizeof b), "$549.91");
  assert_string_equal(market_fmt_price(549904999, b, sizeof b), "$549.90");
  assert_string_equal(market_fmt_price(1005000, b, sizeof b), "$1.01");
  assert_string_equal(market_fmt_price(-1005000, b, sizeof b), "-$1.01");
  assert_string_equal(market_fmt_price(999995000, b, sizeof b), "$1,000.00");
  assert_string_equal(market_fmt_price(1000000, b, sizeof b), "$1.00");
  assert_string_equal(market_fmt_price(123400000, b, sizeof b), "$123.40");
  assert_string_equal(market_fmt_price(1234567891234, b, sizeof b), "$1,234,567.89");
  assert_string_equal(market_fmt_price(INT64_MAX, b, sizeof b), "$9,223,372,036,854.78");
  assert_string_equal(market_fmt_price(INT64_MIN, b, sizeof b), "-$9,223,372,036,854.78");
  /* ... and below $1 up to six, without trailing zeros. */
  assert_string_equal(market_fmt_price(123, b, sizeof b), "$0.000123");
  assert_string_equal(market_fmt_price(999999, b, sizeof b), "$0.999999");
  assert_string_equal(market_fmt_price(500000, b, sizeof b), "$0.50");
  assert_string_equal(market_fmt_price(-1, b, sizeof b), "-$0.000001");
  /* The detail views' exact figure keeps every decimal. */
  assert_string_equal(market_fmt_price_exact(244938000, b, sizeof b), "$244.938");
  assert_string_equal(market_fmt_price_exact(549905555, b, sizeof b), "$549.905555");
  assert_string_equal(market_fmt_price_exact(123400000, b, sizeof b), "$123.40");
  assert_string_equal(market_fmt_price_exact(1234567891234, b, sizeof b), "$1,234,567.891234");
  assert_string_equal(market_fmt_price(-1500000, b, sizeof b), "-$1.50");
  assert_string_equal(market_fmt_price(0, b, sizeof b), "$0.00");
  assert_string_equal(market_fmt_bp(1234, b, sizeof b), "+12.34%");
  assert_string_equal(market_fmt_bp(-50, b, sizeof b), "-0.50%");
  /* Zero has no sign, so a loss too small to show is not "-0.00%". */
  assert_string_equal(market_fmt_bp(0, b, sizeof b), "0.00%");
  assert_string_equal(market_fmt_bp(1, b, sizeof b), "+0.01%");
  assert_string_equal(market_fmt_bp(-10000, b, sizeof b), "-100.00%");
  assert_string_equal(market_fmt_bp(12345678, b, sizeof b), "+123,456.78%");
  /* A short buffer truncates, never overruns. */
  char small[6];
  assert_string_equal(market_fmt_cents(123456789, small, sizeof small), "$1,23");
}

static void test_parse(void **state) {
  int64_t c;
  assert_int_equal(market_parse_cents("1000", &c), 0);
  assert_int_equal(c, 100000);
  assert_int_equal(market_parse_cents("$1,000.5", &c), 0);
  assert_int_equal(c, 100050);
  assert_int_equal(market_parse_cents("0.99", &c), 0);
  assert_int_equal(c, 99);
  assert_int_equal(market_parse_cents(".5", &c), 0);
  assert_int_equal(c, 50);
  assert_int_equal(market_parse_cents("12.", &c), 0);
  assert_int_equal(c, 1200);
  assert_int_equal(market_parse_cents("1,234,567.89", &c), 0);
  assert_int_equal(c, 123456789);
  assert_int_equal(market_parse_cents("92233720368547758.07", &c), 0);
  assert_int_equal(c, INT64_MAX);
  assert_int_equal(market_parse_cents("92233720368547758.08", &c), SOUK_ERANGE);
  assert_int_equal(market_parse_cents("99999999999999999999999", &c), SOUK_ERANGE);
  const char *bad[] = {"",          "$",        ".",     "-5",     "1.234",    "1,00",
                       "12,34,567", "1234,567", ",100",  "1,000,", "1e5",      " 5",
                       "5 ",        "$$5",      "1.2.3", "abc",    "1,000.5.", "0x10"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (market_parse_cents(bad[i], &c) != SOUK_EPARSE) fail_msg("accepted \"%s\"", bad[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rounding),   cmocka_unit_test(test_no_minting),
      cmocka_unit_test(test_overflow),   cmocka_unit_test(test_shares_for_amount),
      cmocka_unit_test(test_cost_basis), cmocka_unit_test(test_roi),
      cmocka_unit_test(test_format),     cmocka_unit_test(test_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
