/* European roulette: the wheel's colours, every kind of bet and its
 * payout, what is refused, and a spin's uniformity with an injected
 * random source. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "modules/economy/roulette.c"

static roulette_bet_t parse_ok(const char *text) {
  roulette_bet_t b;
  char err[256];
  if (!roulette_parse(text, &b, err, sizeof err)) fail_msg("%s: %s", text, err);
  return b;
}

static void parse_bad(const char *text, const char *want) {
  roulette_bet_t b;
  char err[512] = "";
  assert_false(roulette_parse(text, &b, err, sizeof err));
  if (!strstr(err, want)) fail_msg("%s: got \"%s\", want \"%s\"", text, err, want);
}

static bool covers(const roulette_bet_t *b, int n) { return (b->pockets >> n) & 1; }

static void test_colors(void **state) {
  static const int red[] = {1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36};
  int nred = 0;
  for (int n = 0; n <= 36; n++) {
    bool want = false;
    for (size_t i = 0; i < sizeof red / sizeof *red; i++)
      want |= red[i] == n;
    assert_int_equal(roulette_is_red(n), want);
    nred += roulette_is_red(n);
  }
  assert_int_equal(nred, 18);
  assert_string_equal(roulette_color(0), "green");
  assert_string_equal(roulette_color(1), "red");
  assert_string_equal(roulette_color(2), "black");
}

/* Every bet's pockets, canonical name and return. */
static void test_bets(void **state) {
  static const struct {
    const char *text, *name;
    int count;
    int in, out; /* a covered and an uncovered pocket */
  } cases[] = {
      {"17", "17", 1, 17, 18},
      {"0", "0", 1, 0, 1},
      {"Red", "red", 18, 1, 2},
      {"black", "black", 18, 2, 0},
      {"odd", "odd", 18, 35, 0},
      {"even", "even", 18, 36, 0},
      {"low", "low", 18, 18, 19},
      {"1-18", "low", 18, 1, 0},
      {"19 - 36", "high", 18, 36, 18},
      {"dozen 2", "dozen 2", 12, 13, 25},
      {"dozen3", "dozen 3", 12, 36, 24},
      {"2nd12", "dozen 2", 12, 24, 12},
      {"1st 12", "dozen 1", 12, 1, 0},
      {"column 1", "column 1", 12, 34, 36},
      {"col3", "column 3", 12, 3, 1},
      {"split 17/18", "split 17-18", 2, 18, 19},
      {"20-17", "split 17-20", 2, 20, 19},
      {"0-2", "split 0-2", 2, 0, 4},
      {"street 14", "street 13-15", 3, 15, 16},
      {"corner 13", "corner 13/14/16/17", 4, 17, 15},
      {"line 31", "line 31-36", 6, 36, 30},
      {"six line 1", "line 1-6", 6, 6, 7},
      {"first four", "first four", 4, 0, 4},
      {"basket", "first four", 4, 3, 4},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    roulette_bet_t b = parse_ok(cases[i].text);
    assert_string_equal(b.name, cases[i].name);
    assert_int_equal(b.count, cases[i].count);
    assert_true(covers(&b, cases[i].in));
    assert_false(covers(&b, cases[i].out));
    /* The canonical name reads back to the same bet (it is stored). */
    roulette_bet_t again = parse_ok(b.name);
    assert_true(again.pockets == b.pockets);
    int64_t ret = -1;
    assert_int_equal(roulette_return(&b, cases[i].in, 10, &ret), 0);
    assert_int_equal(ret, 10 * 36 / cases[i].count);
    assert_int_equal(roulette_return(&b, cases[i].out, 10, &ret), 0);
    assert_int_equal(ret, 0);
  }
  /* The classic odds, stake included: 35:1, 17:1, 11:1, 8:1, 5:1, 2:1, 1:1. */
  int64_t ret = -1;
  roulette_bet_t b = parse_ok("7");
  roulette_return(&b, 7, 100, &ret);
  assert_int_equal(ret, 3600);
  b = parse_ok("split 7-8");
  roulette_return(&b, 8, 100, &ret);
  assert_int_equal(ret, 1800);
  b = parse_ok("street 7");
  roulette_return(&b, 9, 100, &ret);
  assert_int_equal(ret, 1200);
  b = parse_ok("red");
  roulette_return(&b, 0, 100, &ret);
  assert_int_equal(ret, 0); /* zero loses outside bets */
  roulette_return(&b, 1, 100, &ret);
  assert_int_equal(ret, 200);
  /* Every pocket is covered by exactly the bets that say so: the
   * expected return of each bet is 36/37 of the stake. */
  const char *all[] = {"red", "odd", "dozen 1", "column 2", "split 0-1", "corner 1", "line 4"};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
    b = parse_ok(all[i]);
    int64_t total = 0;
    for (int n = 0; n < 37; n++) {
      roulette_return(&b, n, 37, &ret);
      total += ret;
    }
    assert_int_equal(total, 36 * 37); /* 37 spins of 37 staked return 36/37 of it */
  }
}

static void test_refused(void **state) {
  parse_bad("37", "There is no pocket 37");
  parse_bad("123", "There is no pocket 123");
  parse_bad("17-19", "`17-19` is not a split");
  parse_bad("3-4", "`3-4` is not a split"); /* end of one row, start of the next */
  parse_bad("0-4", "is not a split");
  parse_bad("corner 3", "A corner is named by its top-left number");
  parse_bad("corner 33", "A corner is named");
  parse_bad("line 2", "A six line is named");
  parse_bad("line 34", "A six line is named");
  parse_bad("dozen 4", "There are three dozens");
  parse_bad("column 0", "There are three columns");
  parse_bad("street 0", "A street is named by a number 1-36");
  parse_bad("purple", "`purple` is not a bet I know: try red");
  parse_bad("", "is not a bet I know");
  parse_bad("red black odd even low", "is not a bet I know");
  parse_bad("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "is not a bet I know");
  roulette_bet_t b = parse_ok("red");
  int64_t ret;
  assert_int_equal(roulette_return(&b, 1, 0, &ret), SOUK_EINVAL);
  assert_int_equal(roulette_return(&b, 37, 1, &ret), SOUK_EINVAL);
  assert_int_equal(roulette_return(&b, 1, INT64_MAX / 2 + 1, &ret), SOUK_ERANGE);
  roulette_bet_t empty = {0};
  assert_int_equal(roulette_return(&empty, 1, 1, &ret), SOUK_EINVAL);
}

/* An injected source: a counter, and one that returns values in the
 * rejected tail first. */
static uint64_t seq_rng(void *ud) { return (*(uint64_t *)ud)++; }

static uint64_t tail_rng(void *ud) {
  int *calls = ud;
  return (*calls)++ < 3 ? UINT64_MAX - 1 : 40;
}

static void test_spin(void **state) {
  uint64_t counter = 0;
  int hits[37] = {0};
  for (int i = 0; i < 37 * 100; i++)
    hits[roulette_spin(seq_rng, &counter)]++;
  for (int n = 0; n < 37; n++)
    assert_int_equal(hits[n], 100);
  /* Values past the last whole multiple of 37 are drawn again. */
  int calls = 0;
  assert_int_equal(roulette_spin(tail_rng, &calls), 40 % 37);
  assert_int_equal(calls, 4);
  /* The OS source stays in range and is not constant. */
  int seen[37] = {0}, distinct = 0;
  for (int i = 0; i < 2000; i++) {
    int p = roulette_spin(roulette_rng_os, NULL);
    assert_true(p >= 0 && p < 37);
    distinct += !seen[p]++;
  }
  assert_true(distinct > 30);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_colors),
      cmocka_unit_test(test_bets),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_spin),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
