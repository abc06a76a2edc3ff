/* Market Sim prices: decimal parsing, every provider fixture (error shapes
 * included), the simulated market and US market hours. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */
#include "modules/market/price_hours.c"
#include "modules/market/price_parse.c"
#include "modules/market/price_sim.c"
#include "souk/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIX SOUK_TEST_FIXTURES "/marketdata/"

static char *slurp(const char *rel, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s%s", FIX, rel);
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  b[n] = '\0';
  fclose(f);
  *len = (size_t)n;
  return b;
}

typedef market_outcome_t (*parser_cb)(const char *, int, const char *, const char *, size_t,
                                      market_parsed_t *);

static market_outcome_t parse_file(parser_cb fn, const char *sym, int status, const char *ra,
                                   const char *rel, market_parsed_t *out) {
  size_t n;
  char *b = slurp(rel, &n);
  market_outcome_t o = fn(sym, status, ra, b, n, out);
  free(b);
  return o;
}

static market_outcome_t parse_str(parser_cb fn, const char *sym, int status, const char *ra,
                                  const char *body, market_parsed_t *out) {
  return fn(sym, status, ra, body, strlen(body), out);
}

/* ---- decimals ---------------------------------------------------------- */

static int64_t px(const char *s) {
  int64_t v = -12345;
  int rc = market_price_parse(s, strlen(s), &v);
  if (rc != 0) return rc; /* negative SOUK_E* */
  return v;
}

static void test_decimal(void **state) {
  (void)state;
  assert_int_equal(px("0"), 0);
  assert_int_equal(px("1"), 1000000);
  assert_int_equal(px("161.2958"), 161295800);
  assert_int_equal(px("0.000001"), 1);
  assert_int_equal(px("261.74"), 261740000);
  assert_int_equal(px("100.123456"), 100123456);
  /* One rounding, half up, of digits past the sixth decimal. */
  assert_int_equal(px("0.0000005"), 1);
  assert_int_equal(px("0.00000049999999"), 0);
  assert_int_equal(px("1.9999995"), 2000000);
  assert_int_equal(px("1.23456749"), 1234567);
  assert_int_equal(px("1.2345675"), 1234568);
  /* Exponents, exactly. */
  assert_int_equal(px("1.5e2"), 150000000);
  assert_int_equal(px("1.5E+2"), 150000000);
  assert_int_equal(px("15e-1"), 1500000);
  assert_int_equal(px("1e-6"), 1);
  assert_int_equal(px("5e-7"), 1);
  assert_int_equal(px("4e-7"), 0);
  assert_int_equal(px("0e999999"), 0);
  assert_int_equal(px("1e-999999"), 0);
  assert_int_equal(px("9223372036854.775807"), INT64_MAX);
  /* Refused. */
  assert_int_equal(px("9223372036854.775808"), SOUK_ERANGE);
  assert_int_equal(px("1e13"), SOUK_ERANGE);
  assert_int_equal(px("99999999999999999999999"), SOUK_ERANGE);
  const char *bad[] = {"",    "-1",  "-0.5", "+1",   ".5",       "1.",        "01",  "00.1",
                       "1e",  "1e+", "NaN",  "nan",  "Infinity", "-Infinity", "inf", "1.2.3",
                       "1,5", " 1",  "1 ",   "0x10", "1e2.5",    "\"1\"",     "e5"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t v = 77;
    if (market_price_parse(bad[i], strlen(bad[i]), &v) != SOUK_EINVAL)
      fail_msg("accepted %s", bad[i]);
    assert_int_equal(v, 77); /* untouched on failure */
  }
  /* Not NUL-terminated: only n bytes are read. */
  int64_t v;
  assert_int_equal(market_price_parse("12.5xyz", 4, &v), 0);
  assert_int_equal(v, 12500000);
}

static void test_format_and_symbols(void **state) {
  (void)state;
  char b[40];
  assert_int_equal(market_price_format(189250000, b, sizeof b), 6);
  assert_string_equal(b, "189.25");
  market_price_format(1, b, sizeof b);
  assert_string_equal(b, "0.000001");
  market_price_format(-3100000, b, sizeof b);
  assert_string_equal(b, "-3.10");
  market_price_format(INT64_MIN, b, sizeof b);
  assert_string_equal(b, "-9223372036854.775808");
  assert_int_equal(market_price_format(189250000, b, 6), SOUK_ETOOBIG);

  assert_true(market_symbol_valid("AAPL"));
  assert_true(market_symbol_valid("BRK.B"));
  assert_true(market_symbol_valid("BF-B"));
  assert_false(market_symbol_valid(""));
  assert_false(market_symbol_valid(NULL));
  assert_false(market_symbol_valid("aapl"));
  assert_false(market_symbol_valid("1ABC"));
  assert_false(market_symbol_valid("A B"));
  assert_false(market_symbol_valid("A/B"));
  assert_false(market_symbol_valid("A&token=x"));
  assert_true(market_symbol_valid("ABCDEFGHIJKLMNO"));   /* 15 */
  assert_false(market_symbol_valid("ABCDEFGHIJKLMNOP")); /* 16 */
}

static void test_rfc3339(void **state) {
  (void)state;
  int64_t ms;
  const char *s = "2022-03-18T14:02:09.722539521Z";
  assert_int_equal(market_rfc3339_ms(s, strlen(s), &ms), 0);
  assert_int_equal(ms, 1647612129722LL);
  s = "2021-10-11T23:59:39Z";
  assert_int_equal(market_rfc3339_ms(s, strlen(s), &ms), 0);
  assert_int_equal(ms, 1633996779000LL);
  s = "2021-10-11T19:59:39.38-04:00";
  assert_int_equal(market_rfc3339_ms(s, strlen(s), &ms), 0);
  assert_int_equal(ms, 1633996779380LL);
  s = "1970-01-01T00:00:00Z";
  assert_int_equal(market_rfc3339_ms(s, strlen(s), &ms), 0);
  assert_int_equal(ms, 0);
  const char *bad[] = {"",
                       "2022-03-18",
                       "2022-03-18T14:02:09",
                       "2022-02-30T00:00:00Z",
                       "2022-13-01T00:00:00Z",
                       "2022-03-18T24:00:00Z",
                       "2022-03-18T14:02:09.Z",
                       "2022-03-18T14:02:09Zjunk",
                       "22-03-18T14:02:09Z"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (market_rfc3339_ms(bad[i], strlen(bad[i]), &ms) != SOUK_EINVAL)
      fail_msg("accepted %s", bad[i]);
}

/* ---- Finnhub ----------------------------------------------------------- */

static void test_finnhub(void **state) {
  (void)state;
  market_parsed_t p;
  assert_int_equal(parse_file(market_parse_finnhub, "AAPL", 200, NULL,
                              "finnhub/quote-docs-sample-issue339.json", &p),
                   MARKET_OK);
  assert_string_equal(p.quote.symbol, "AAPL");
  assert_string_equal(p.quote.source, "finnhub");
  assert_int_equal(p.quote.price_micro, 261740000);
  assert_int_equal(p.quote.prev_close_micro, 259450000);
  assert_int_equal(p.quote.quote_time_ms, 1582641000000LL);

  assert_int_equal(parse_file(market_parse_finnhub, "DJI", 200, NULL,
                              "finnhub/quote-all-zero-DJI-issue332.json", &p),
                   MARKET_NO_DATA);
  /* The current all-zero shape (SHAPES.md) carries d/dp nulls. */
  assert_int_equal(
      parse_str(market_parse_finnhub, "ZZZZ", 200, NULL,
                "{\"c\":0,\"d\":null,\"dp\":null,\"h\":0,\"l\":0,\"o\":0,\"pc\":0,\"t\":0}", &p),
      MARKET_NO_DATA);
  /* A current-shape quote with d/dp and a price that is not a short decimal. */
  assert_int_equal(parse_str(market_parse_finnhub, "MSFT", 200, NULL,
                             "{\"c\":415.1234567,\"d\":-1.5,\"dp\":-0.36,\"h\":417,\"l\":414.2,"
                             "\"o\":416,\"pc\":416.6234567,\"t\":1714000000}",
                             &p),
                   MARKET_OK);
  assert_int_equal(p.quote.price_micro, 415123457);
  assert_int_equal(p.quote.prev_close_micro, 416623457);

  assert_int_equal(parse_file(market_parse_finnhub, "AAPL", 429, NULL,
                              "finnhub/quote-429-body-issue122.txt", &p),
                   MARKET_RATE_LIMITED);
  assert_int_equal(p.retry_after_s, -1);
  assert_int_equal(
      parse_file(market_parse_finnhub, "AAPL", 429, "7", "finnhub/quote-429-body-issue466.txt", &p),
      MARKET_RATE_LIMITED);
  assert_int_equal(p.retry_after_s, 7);
  assert_int_equal(parse_str(market_parse_finnhub, "AAPL", 429, "1.2", "", &p),
                   MARKET_RATE_LIMITED);
  assert_int_equal(p.retry_after_s, 2);
  assert_int_equal(
      parse_str(market_parse_finnhub, "AAPL", 429, "Wed, 21 Oct 2015 07:28:00 GMT", "", &p),
      MARKET_RATE_LIMITED);
  assert_int_equal(p.retry_after_s, -1);

  assert_int_equal(
      parse_str(market_parse_finnhub, "AAPL", 401, NULL, "{\"error\": \"Invalid API key\"}", &p),
      MARKET_AUTH);
  assert_int_equal(parse_str(market_parse_finnhub, "AAPL", 403, NULL,
                             "{\"error\": \"You don't have access to this resource.\"}", &p),
                   MARKET_AUTH);
  assert_int_equal(parse_str(market_parse_finnhub, "AAPL", 502, NULL, "<html>", &p), MARKET_BAD);
  assert_int_equal(parse_str(market_parse_finnhub, "AAPL", 200, NULL, "{\"c\":1", &p), MARKET_BAD);
  assert_int_equal(parse_str(market_parse_finnhub, "AAPL", 200, NULL, "[]", &p), MARKET_BAD);
  assert_int_equal(parse_str(market_parse_finnhub, "AAPL", 200, NULL, "{\"c\":-5,\"pc\":1}", &p),
                   MARKET_BAD);
  assert_int_equal(parse_str(market_parse_finnhub, "AAPL", 200, NULL, "{\"c\":\"x\"}", &p),
                   MARKET_BAD);
  assert_int_equal(parse_str(market_parse_finnhub, "AAPL", 200, NULL, "{\"error\":\"boom\"}", &p),
                   MARKET_BAD);
  assert_non_null(strstr(p.reason, "boom"));
}

/* ---- Polygon ----------------------------------------------------------- */

static void test_polygon(void **state) {
  (void)state;
  market_parsed_t p;
  assert_int_equal(parse_file(market_parse_polygon_prev, "AAPL", 200, NULL,
                              "polygon/v2-aggs-ticker-AAPL-prev.json", &p),
                   MARKET_OK);
  assert_string_equal(p.quote.source, "polygon");
  assert_int_equal(p.quote.price_micro, 156800000);
  assert_int_equal(p.quote.prev_close_micro, 0);
  /* The bar of 2022-04-26: its session closed at 16:00 EDT (20:00 UTC). */
  assert_int_equal(p.quote.quote_time_ms, 1651003200000LL);
  /* The quote's time is the session's close, not the bar's start
   * (midnight in New York): 2022-04-26 04:00 UTC -> 20:00 UTC. */
  assert_int_equal(parse_str(market_parse_polygon_prev, "AAPL", 200, NULL,
                             "{\"status\":\"OK\",\"resultsCount\":1,\"results\":[{\"T\":"
                             "\"AAPL\",\"c\":156.8,\"t\":1650945600000}]}",
                             &p),
                   MARKET_OK);
  assert_int_equal(p.quote.quote_time_ms, 1651003200000LL);
  /* Winter time and an early close: the day after Thanksgiving 2022 closed
   * at 13:00 EST (18:00 UTC); its bar starts at 05:00 UTC. */
  assert_int_equal(parse_str(market_parse_polygon_prev, "AAPL", 200, NULL,
                             "{\"status\":\"OK\",\"resultsCount\":1,\"results\":[{\"T\":"
                             "\"AAPL\",\"c\":148.11,\"t\":1669352400000}]}",
                             &p),
                   MARKET_OK);
  assert_int_equal(p.quote.quote_time_ms, 1669399200000LL);
  /* So a Polygon-only setup can trade at it while the market is closed:
   * that evening no session has opened since the quote. */
  int64_t evening = 1669399200000LL + 3 * 3600000LL;
  assert_false(market_nyse_open(evening));
  assert_true(market_nyse_next_open(p.quote.quote_time_ms) > evening);
  /* An answer for another ticker is not a price for this one. */
  assert_int_equal(parse_file(market_parse_polygon_prev, "MSFT", 200, NULL,
                              "polygon/v2-aggs-ticker-AAPL-prev.json", &p),
                   MARKET_BAD);

  assert_int_equal(parse_file(market_parse_polygon_last, "AAPL", 200, NULL,
                              "polygon/v2-last-trade-AAPL.json", &p),
                   MARKET_OK);
  assert_int_equal(p.quote.price_micro, 166250000);
  assert_int_equal(p.quote.quote_time_ms, 1651179319310LL);

  assert_int_equal(parse_file(market_parse_polygon_prev, "AAPL", 403, NULL,
                              "polygon/error-403-not-authorized.json", &p),
                   MARKET_AUTH);
  assert_int_equal(parse_file(market_parse_polygon_last, "AAPL", 200, NULL,
                              "polygon/error-403-not-authorized.json", &p),
                   MARKET_AUTH);
  assert_non_null(strstr(p.reason, "not entitled"));

  /* Reconstructed shapes (SHAPES.md). */
  assert_int_equal(parse_str(market_parse_polygon_prev, "ZZZZ", 200, NULL,
                             "{\"ticker\":\"ZZZZ\",\"queryCount\":0,\"resultsCount\":0,"
                             "\"adjusted\":true,\"status\":\"OK\",\"request_id\":\"r1\"}",
                             &p),
                   MARKET_NO_DATA);
  assert_int_equal(
      parse_str(market_parse_polygon_prev, "AAPL", 429, NULL,
                "{\"status\":\"ERROR\",\"request_id\":\"r\",\"error\":\"You've exceeded "
                "the maximum requests per minute\"}",
                &p),
      MARKET_RATE_LIMITED);
  assert_int_equal(parse_str(market_parse_polygon_prev, "AAPL", 429, NULL, "", &p),
                   MARKET_RATE_LIMITED);
  assert_int_equal(
      parse_str(market_parse_polygon_prev, "AAPL", 401, NULL,
                "{\"status\":\"ERROR\",\"request_id\":\"r\",\"error\":\"Unknown API Key\"}", &p),
      MARKET_AUTH);
  assert_int_equal(parse_str(market_parse_polygon_prev, "AAPL", 200, NULL,
                             "{\"status\":\"ERROR\",\"error\":\"x\"}", &p),
                   MARKET_BAD);
  assert_int_equal(parse_str(market_parse_polygon_prev, "AAPL", 503, NULL, "", &p), MARKET_BAD);
  assert_int_equal(parse_str(market_parse_polygon_prev, "AAPL", 200, NULL, "not json", &p),
                   MARKET_BAD);
}

/* ---- Alpaca ------------------------------------------------------------ */

static void test_alpaca(void **state) {
  (void)state;
  market_parsed_t p;
  assert_int_equal(parse_file(market_parse_alpaca, "AAPL", 200, NULL,
                              "alpaca/v2-stocks-trades-latest-AAPL.json", &p),
                   MARKET_OK);
  assert_string_equal(p.quote.source, "alpaca");
  assert_int_equal(p.quote.price_micro, 161295800);
  assert_int_equal(p.quote.quote_time_ms, 1647612129722LL);
  assert_int_equal(p.quote.prev_close_micro, 0);

  assert_int_equal(parse_file(market_parse_alpaca, "MSFT", 200, NULL,
                              "alpaca/v2-stocks-trades-latest-IBM-MSFT.json", &p),
                   MARKET_OK);
  assert_int_equal(p.quote.price_micro, 294100000);
  assert_int_equal(p.quote.quote_time_ms, 1633996779380LL);
  assert_int_equal(parse_file(market_parse_alpaca, "IBM", 200, NULL,
                              "alpaca/v2-stocks-trades-latest-IBM-MSFT.json", &p),
                   MARKET_OK);
  assert_int_equal(p.quote.price_micro, 142200000);
  assert_int_equal(p.quote.quote_time_ms, 1633995767895LL);
  assert_int_equal(parse_file(market_parse_alpaca, "AAPL", 200, NULL,
                              "alpaca/v2-stocks-trades-latest-IBM-MSFT.json", &p),
                   MARKET_NO_DATA);

  assert_int_equal(parse_file(market_parse_alpaca, "ZZZZ", 200, NULL,
                              "alpaca/v2-stocks-trades-latest-unknown-symbol.json", &p),
                   MARKET_NO_DATA);
  assert_non_null(strstr(p.reason, "empty"));
  /* Reconstructed shapes (SHAPES.md). */
  assert_int_equal(parse_str(market_parse_alpaca, "A.B.C", 400, NULL,
                             "{\"message\":\"invalid symbol: A.B.C\"}", &p),
                   MARKET_NO_DATA);
  assert_non_null(strstr(p.reason, "invalid symbol"));
  assert_int_equal(parse_str(market_parse_alpaca, "AAPL", 429, NULL, "too many requests", &p),
                   MARKET_RATE_LIMITED);
  assert_int_equal(parse_str(market_parse_alpaca, "AAPL", 401, NULL,
                             "{\"code\":40110000,\"message\":\"request is not authorized\"}", &p),
                   MARKET_AUTH);
  assert_int_equal(parse_str(market_parse_alpaca, "AAPL", 200, NULL, "{\"trade\":{}}", &p),
                   MARKET_BAD);
  assert_int_equal(parse_str(market_parse_alpaca, "AAPL", 200, NULL,
                             "{\"trades\":{\"AAPL\":{\"t\":\"yesterday\",\"p\":1.5}}}", &p),
                   MARKET_BAD);
}

/* ---- Yahoo ------------------------------------------------------------- */

static void test_yahoo(void **state) {
  (void)state;
  market_parsed_t p;
  assert_int_equal(parse_file(market_parse_yahoo, "AAPL", 200, NULL,
                              "yahoo/chart-AAPL-2020-01-01-to-2020-01-03.body.json", &p),
                   MARKET_OK);
  assert_string_equal(p.quote.source, "yahoo");
  assert_int_equal(p.quote.price_micro, 244870000);
  assert_int_equal(p.quote.quote_time_ms, 1739998801000LL);
  /* chartPreviousClose (73.412) is the close before the 2020 range, not
   * yesterday's close: it must not be taken as prev_close. */
  assert_int_equal(p.quote.prev_close_micro, 0);
  assert_int_equal(parse_file(market_parse_yahoo, "MSFT", 200, NULL,
                              "yahoo/chart-AAPL-2020-01-01-to-2020-01-03.body.json", &p),
                   MARKET_BAD);

  /* A range=1d answer: chartPreviousClose is yesterday's close then. */
  assert_int_equal(parse_str(market_parse_yahoo, "IBM", 200, NULL,
                             "{\"chart\":{\"result\":[{\"meta\":{\"symbol\":\"IBM\","
                             "\"regularMarketPrice\":163.55,\"regularMarketTime\":1704402000,"
                             "\"chartPreviousClose\":162.5,\"range\":\"1d\"}}],\"error\":null}}",
                             &p),
                   MARKET_OK);
  assert_int_equal(p.quote.prev_close_micro, 162500000);
  assert_int_equal(p.quote.quote_time_ms, 1704402000000LL);

  /* Reconstructed shapes (SHAPES.md). */
  assert_int_equal(parse_str(market_parse_yahoo, "ZZZZ", 404, NULL,
                             "{\"chart\":{\"result\":null,\"error\":{\"code\":\"Not Found\","
                             "\"description\":\"No data found, symbol may be delisted\"}}}",
                             &p),
                   MARKET_NO_DATA);
  assert_non_null(strstr(p.reason, "delisted"));
  assert_int_equal(parse_str(market_parse_yahoo, "AAPL", 429, NULL, "Too Many Requests", &p),
                   MARKET_RATE_LIMITED);
  assert_int_equal(parse_str(market_parse_yahoo, "AAPL", 500, NULL, "", &p), MARKET_BAD);
  assert_int_equal(parse_str(market_parse_yahoo, "AAPL", 200, NULL, "{}", &p), MARKET_BAD);
  assert_int_equal(parse_str(market_parse_yahoo, "AAPL", 200, NULL,
                             "{\"chart\":{\"result\":[],\"error\":null}}", &p),
                   MARKET_NO_DATA);
}

/* ---- simulated market -------------------------------------------------- */

static void test_sim(void **state) {
  (void)state;
  market_sim_conf_t c;
  market_sim_defaults(&c);
  c.seed = 42;
  assert_true(market_sim_symbol_count() >= 30);
  for (size_t i = 1; i < market_sim_symbol_count(); i++)
    assert_true(strcmp(market_sim_symbol(i - 1, NULL, NULL), market_sim_symbol(i, NULL, NULL)) < 0);
  for (size_t i = 0; i < market_sim_symbol_count(); i++)
    assert_true(market_symbol_valid(market_sim_symbol(i, NULL, NULL)));
  assert_null(market_sim_symbol(market_sim_symbol_count(), NULL, NULL));
  assert_true(market_sim_known("AAPL"));
  assert_false(market_sim_known("ZZZZ"));
  assert_false(market_sim_known("aapl"));

  market_quote_t q, q2;
  int64_t t = 1735732800000LL; /* 2025-01-01T12:00:00Z */
  assert_int_equal(market_sim_quote(&c, "ZZZZ", t, &q), SOUK_ENOTFOUND);
  assert_int_equal(market_sim_quote(&c, "AAPL", t, &q), 0);
  assert_string_equal(q.source, "simulated");
  assert_string_equal(q.symbol, "AAPL");
  assert_int_equal(q.quote_time_ms, t);
  assert_true(q.prev_close_micro > 0);
  /* Golden values: the same inputs give these prices on every machine. */
  assert_int_equal(q.price_micro, 260763183);
  assert_int_equal(q.prev_close_micro, 262164398);
  assert_int_equal(market_sim_quote(&c, "AAPL", t + 59999, &q2), 0);
  assert_int_equal(q2.price_micro, q.price_micro);
  assert_int_equal(q2.quote_time_ms, t);
  /* At the epoch every symbol is at its start price. */
  int64_t start;
  market_sim_symbol(0, &start, NULL);
  assert_int_equal(market_sim_quote(&c, market_sim_symbol(0, NULL, NULL), 1704067200000LL, &q2), 0);
  assert_int_equal(q2.price_micro, start);

  /* Another seed, another walk. */
  market_sim_conf_t c2 = c;
  c2.seed = 43;
  assert_int_equal(market_sim_quote(&c2, "AAPL", t, &q2), 0);
  assert_true(q2.price_micro != q.price_micro);

  /* A walk: one minute moves little, a year stays plausible. */
  int64_t prev = 0, lo = INT64_MAX, hi = 0;
  for (int k = 0; k < 3000; k++) {
    assert_int_equal(market_sim_quote(&c, "MSFT", t + (int64_t)k * 60000, &q2), 0);
    if (prev) {
      int64_t diff = q2.price_micro - prev;
      if (diff < 0) diff = -diff;
      assert_true(diff * 100 < prev); /* < 1 % a minute */
    }
    prev = q2.price_micro;
  }
  market_sim_symbol(0, NULL, NULL);
  for (int k = 0; k < 2000; k++) {
    assert_int_equal(market_sim_quote(&c, "NVDA", t + (int64_t)k * 86400000 / 4, &q2), 0);
    if (q2.price_micro < lo) lo = q2.price_micro;
    if (q2.price_micro > hi) hi = q2.price_micro;
  }
  assert_true(lo > 481680000 / 8 && hi < 481680000LL * 8);
  assert_true(hi > lo); /* it does move */

  /* Day-to-day moves have about the configured spread (1.3 %): the
   * relative change's mean absolute value is sd * sqrt(2/pi) ~ 1.04 %. */
  int64_t sum_abs = 0, last = 0;
  for (int k = 0; k <= 1000; k++) {
    assert_int_equal(market_sim_quote(&c, "KO", t + (int64_t)k * 86400000, &q2), 0);
    if (last) {
      int64_t d = (q2.price_micro - last) * 1000000 / last;
      sum_abs += d < 0 ? -d : d;
    }
    last = q2.price_micro;
  }
  int64_t mad = sum_abs / 1000; /* ppm */
  if (mad < 7000 || mad > 14000) fail_msg("mean daily move %lld ppm", (long long)mad);

  /* prev_close is the price at the end of the previous UTC day. */
  assert_int_equal(market_sim_quote(&c, "AAPL", 1735689600000LL - 1, &q2), 0);
  assert_int_equal(q2.price_micro, q.prev_close_micro);

  /* Times before the epoch work too; nonsense configuration is refused. */
  assert_int_equal(market_sim_quote(&c, "AAPL", 0, &q2), 0);
  assert_true(q2.price_micro > 0);
  c2 = c;
  c2.step_ms = 0;
  assert_int_equal(market_sim_quote(&c2, "AAPL", t, &q2), SOUK_EINVAL);
}

/* ---- market hours ------------------------------------------------------ */

static int64_t utc(int y, int m, int d, int h, int mi, int s) {
  return (market_days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + s) * 1000;
}

static void test_calendar(void **state) {
  (void)state;
  assert_int_equal(market_days_from_civil(1970, 1, 1), 0);
  assert_int_equal(market_days_from_civil(2000, 3, 1), 11017);
  for (int64_t z = -800000; z < 800000; z += 97) {
    int y, m, d;
    market_civil_from_days(z, &y, &m, &d);
    assert_int_equal(market_days_from_civil(y, m, d), z);
  }
}

static void test_dst(void **state) {
  (void)state;
  /* 2024: 10 March and 3 November. */
  assert_int_equal(market_ny_offset_min(utc(2024, 3, 10, 6, 59, 59)), -300);
  assert_int_equal(market_ny_offset_min(utc(2024, 3, 10, 7, 0, 0)), -240);
  assert_int_equal(market_ny_offset_min(utc(2024, 11, 3, 5, 59, 59)), -240);
  assert_int_equal(market_ny_offset_min(utc(2024, 11, 3, 6, 0, 0)), -300);
  assert_int_equal(market_ny_offset_min(utc(2024, 1, 15, 12, 0, 0)), -300);
  assert_int_equal(market_ny_offset_min(utc(2024, 7, 15, 12, 0, 0)), -240);
  /* 2025: 9 March and 2 November; 2026: 8 March and 1 November. */
  assert_int_equal(market_ny_offset_min(utc(2025, 3, 9, 7, 0, 0)), -240);
  assert_int_equal(market_ny_offset_min(utc(2025, 3, 8, 12, 0, 0)), -300);
  assert_int_equal(market_ny_offset_min(utc(2025, 11, 2, 6, 0, 0)), -300);
  assert_int_equal(market_ny_offset_min(utc(2026, 3, 8, 7, 0, 0)), -240);
  assert_int_equal(market_ny_offset_min(utc(2026, 11, 1, 5, 59, 0)), -240);
  /* 1987-2006 rule: 2 April 2006 and 29 October 2006. */
  assert_int_equal(market_ny_offset_min(utc(2006, 4, 2, 6, 59, 0)), -300);
  assert_int_equal(market_ny_offset_min(utc(2006, 4, 2, 7, 0, 0)), -240);
  assert_int_equal(market_ny_offset_min(utc(2006, 3, 15, 12, 0, 0)), -300);
  assert_int_equal(market_ny_offset_min(utc(2006, 10, 29, 5, 59, 0)), -240);
  assert_int_equal(market_ny_offset_min(utc(2006, 10, 29, 6, 0, 0)), -300);
  assert_int_equal(market_ny_offset_min(utc(2006, 11, 1, 12, 0, 0)), -300);
}

static void test_holidays(void **state) {
  (void)state;
  static const int yes[][3] = {
      {2024, 1, 1},   {2024, 1, 15},  {2024, 2, 19},  {2024, 3, 29},  {2024, 5, 27}, {2024, 6, 19},
      {2024, 7, 4},   {2024, 9, 2},   {2024, 11, 28}, {2024, 12, 25}, {2025, 1, 1},  {2025, 1, 20},
      {2025, 2, 17},  {2025, 4, 18},  {2025, 5, 26},  {2025, 6, 19},  {2025, 7, 4},  {2025, 9, 1},
      {2025, 11, 27}, {2025, 12, 25}, {2023, 1, 2}, /* New Year's Sunday -> Monday */
      {2022, 12, 26},                               /* Christmas Sunday -> Monday */
      {2021, 12, 24},                               /* Christmas Saturday -> Friday */
      {2022, 6, 20},                                /* first Juneteenth, Sunday -> Monday */
      {2026, 7, 3},                                 /* Independence Day Saturday -> Friday */
      {2027, 6, 18},                                /* Juneteenth Saturday -> Friday */
      {2019, 4, 19},  {2038, 4, 23},                /* Good Friday (Easter 25 April 2038) */
      {2008, 3, 21},                                /* Good Friday before an early Easter */
  };
  static const int no[][3] = {
      {2021, 12, 31}, /* New Year's 2022 on a Saturday is not observed the Friday before */
      {2010, 12, 31}, {2021, 6, 18}, /* before Juneteenth was a market holiday */
      {2024, 10, 14},                /* Columbus Day: markets open */
      {2024, 11, 11},                /* Veterans Day: markets open */
      {2024, 11, 29},                /* day after Thanksgiving (early close only) */
      {2024, 12, 24},                /* Christmas Eve (early close only) */
      {2024, 7, 5},   {2024, 3, 28}, {2024, 4, 1}, {1997, 1, 20}, /* MLK before 1998 */
  };
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    if (!market_nyse_holiday(yes[i][0], yes[i][1], yes[i][2]))
      fail_msg("%d-%02d-%02d should be a holiday", yes[i][0], yes[i][1], yes[i][2]);
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    if (market_nyse_holiday(no[i][0], no[i][1], no[i][2]))
      fail_msg("%d-%02d-%02d should not be a holiday", no[i][0], no[i][1], no[i][2]);
  /* Exactly nine or ten full-day holidays fall on weekdays each year. */
  for (int y = 2022; y < 2100; y++) {
    int n = 0;
    for (int64_t z = market_days_from_civil(y, 1, 1); z < market_days_from_civil(y + 1, 1, 1);
         z++) {
      int yy, mm, dd;
      market_civil_from_days(z, &yy, &mm, &dd);
      if (market_nyse_holiday(yy, mm, dd)) {
        int w = weekday(z);
        assert_true(w >= 1 && w <= 5);
        n++;
      }
    }
    if (n != 10 && n != 9) fail_msg("%d has %d holidays", y, n);
  }
}

static void test_open(void **state) {
  (void)state;
  /* Friday 8 March 2024 (EST): 14:30-21:00 UTC. */
  assert_false(market_nyse_open(utc(2024, 3, 8, 14, 29, 59)));
  assert_true(market_nyse_open(utc(2024, 3, 8, 14, 30, 0)));
  assert_true(market_nyse_open(utc(2024, 3, 8, 20, 59, 59)));
  assert_false(market_nyse_open(utc(2024, 3, 8, 21, 0, 0)));
  /* Monday 11 March 2024, the first session in EDT: 13:30-20:00 UTC. */
  assert_false(market_nyse_open(utc(2024, 3, 11, 13, 29, 59)));
  assert_true(market_nyse_open(utc(2024, 3, 11, 13, 30, 0)));
  assert_true(market_nyse_open(utc(2024, 3, 11, 19, 59, 59)));
  assert_false(market_nyse_open(utc(2024, 3, 11, 20, 0, 0)));
  /* Monday 4 November 2024, back to EST. */
  assert_false(market_nyse_open(utc(2024, 11, 4, 13, 45, 0)));
  assert_true(market_nyse_open(utc(2024, 11, 4, 14, 45, 0)));
  /* Weekend, holidays. */
  assert_false(market_nyse_open(utc(2024, 3, 9, 15, 0, 0)));
  assert_false(market_nyse_open(utc(2024, 3, 10, 15, 0, 0)));
  assert_false(market_nyse_open(utc(2024, 7, 4, 15, 0, 0)));
  assert_true(market_nyse_open(utc(2024, 7, 5, 15, 0, 0)));
  assert_false(market_nyse_open(utc(2025, 4, 18, 15, 0, 0)));
  assert_false(market_nyse_open(utc(2023, 1, 2, 15, 0, 0)));
  assert_true(market_nyse_open(utc(2021, 12, 31, 15, 0, 0)));
  /* Late evening UTC is still the same New York day, or the night. */
  assert_false(market_nyse_open(utc(2024, 3, 12, 2, 0, 0)));
}

static void test_early_close_and_next_open(void **state) {
  (void)state;
  /* 13:00 closes: the day after Thanksgiving, Christmas Eve, July 3. */
  assert_int_equal(market_nyse_close_min(2024, 11, 29), 780);
  assert_true(market_nyse_open(utc(2024, 11, 29, 17, 59, 59)));
  assert_false(market_nyse_open(utc(2024, 11, 29, 18, 0, 0)));
  assert_int_equal(market_nyse_close_min(2024, 12, 24), 780);
  assert_false(market_nyse_open(utc(2024, 12, 24, 18, 0, 0)));
  assert_int_equal(market_nyse_close_min(2024, 7, 3), 780);
  assert_true(market_nyse_open(utc(2024, 7, 3, 16, 59, 0)));
  assert_false(market_nyse_open(utc(2024, 7, 3, 17, 0, 0)));
  /* 2026: July 3 is the observed holiday, July 2 closes normally. */
  assert_int_equal(market_nyse_close_min(2026, 7, 2), 960);
  assert_true(market_nyse_open(utc(2026, 7, 2, 19, 59, 0)));
  assert_int_equal(market_nyse_close_min(2024, 7, 5), 960);

  /* Next open: over a weekend and the spring DST switch. */
  assert_int_equal(market_nyse_next_open(utc(2024, 3, 8, 21, 0, 0)), utc(2024, 3, 11, 13, 30, 0));
  assert_int_equal(market_nyse_next_open(utc(2024, 3, 8, 10, 0, 0)), utc(2024, 3, 8, 14, 30, 0));
  assert_int_equal(market_nyse_next_open(utc(2024, 3, 8, 15, 0, 0)), utc(2024, 3, 11, 13, 30, 0));
  /* Over a holiday, Good Friday's long weekend, and back to EST. */
  assert_int_equal(market_nyse_next_open(utc(2024, 7, 3, 20, 0, 0)), utc(2024, 7, 5, 13, 30, 0));
  assert_int_equal(market_nyse_next_open(utc(2025, 4, 17, 21, 0, 0)), utc(2025, 4, 21, 13, 30, 0));
  assert_int_equal(market_nyse_next_open(utc(2024, 11, 1, 21, 0, 0)), utc(2024, 11, 4, 14, 30, 0));
  assert_int_equal(market_nyse_next_open(utc(2024, 12, 31, 22, 0, 0)), utc(2025, 1, 2, 14, 30, 0));
  /* Every answer is an open instant. */
  for (int64_t t = utc(2024, 1, 1, 0, 0, 0); t < utc(2025, 1, 1, 0, 0, 0); t += 7 * 3600000LL) {
    int64_t o = market_nyse_next_open(t);
    assert_true(o > t && o - t < 6 * 86400000LL);
    assert_true(market_nyse_open(o));
    assert_false(market_nyse_open(o - 1));
  }
}

/* An error body is read within its length, never up to a NUL it may not
 * have (found by fuzz_prices), and control characters do not reach the
 * reason that is logged. */
static void test_error_body_bounds(void **state) {
  (void)state;
  char *body = malloc(5); /* exactly "no\nok", no NUL: ASan sees a read past it */
  memcpy(body, "no\nok", 5);
  market_parsed_t out;
  assert_int_equal(market_parse_polygon_prev("AAPL", 401, NULL, body, 5, &out), MARKET_AUTH);
  assert_string_equal(out.reason, "401: no ok");
  assert_int_equal(market_parse_finnhub("AAPL", 403, NULL, body, 0, &out), MARKET_AUTH);
  assert_string_equal(out.reason, "403: no body");
  free(body);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_body_bounds),
      cmocka_unit_test(test_decimal),
      cmocka_unit_test(test_format_and_symbols),
      cmocka_unit_test(test_rfc3339),
      cmocka_unit_test(test_finnhub),
      cmocka_unit_test(test_polygon),
      cmocka_unit_test(test_alpaca),
      cmocka_unit_test(test_yahoo),
      cmocka_unit_test(test_sim),
      cmocka_unit_test(test_calendar),
      cmocka_unit_test(test_dst),
      cmocka_unit_test(test_holidays),
      cmocka_unit_test(test_open),
      cmocka_unit_test(test_early_close_and_next_open),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
