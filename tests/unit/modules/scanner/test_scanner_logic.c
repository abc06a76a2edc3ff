/* The scanner's pure logic: reading KuCoin's contracts list (the captured
 * fixture, the synthetic set, every error shape), the public pool, the
 * documented score computed by hand, deterministic ties, top-list changes
 * and the health thresholds on an injected clock. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */
#include "modules/scanner/kucoin.c"
#include "modules/scanner/score.c"
#include "modules/scanner/shealth.c"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIX SOUK_TEST_FIXTURES "/marketdata/kucoin-futures/"

static char *slurp(const char *name, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s%s", FIX, name);
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

static void parse_str(int status, const char *body, const scanner_filter_t *f,
                      scanner_parsed_t *out) {
  scanner_parse_contracts(status, body, strlen(body), f, out);
}

/* ---- the contracts list ------------------------------------------------- */

static void test_real_fixture(void **state) {
  size_t n;
  char *b = slurp("contracts-active.json", &n);
  scanner_parsed_t p;
  scanner_parse_contracts(200, b, n, NULL, &p);
  assert_int_equal(p.outcome, SCANNER_OK);
  assert_string_equal(p.code, "200000");
  assert_int_equal(p.n, 1);
  const scanner_contract_t *c = &p.contracts[0];
  assert_string_equal(c->symbol, "XBTUSDTM");
  assert_string_equal(c->base, "XBT");
  assert_string_equal(c->quote, "USDT");
  assert_int_equal(c->last_micro, 86364000000LL);
  assert_string_equal(c->last_text, "86364");
  assert_int_equal(c->mark_micro, 86378690000LL);
  assert_int_equal(c->change_ppm, -28000);
  assert_int_equal(c->funding_e8, 5200);        /* 5.2e-05, from the text */
  assert_int_equal(c->turnover, 1034643198);    /* 1034643198.3265533 rounded */
  assert_int_equal(c->volume_milli, 12069225);  /* 12069.225 */
  assert_int_equal(c->open_interest, 6748176);  /* "6748176", a string */
  assert_int_equal(c->multiplier_e9, 1000000);  /* 0.001 */
  assert_int_equal(c->funding_in_ms, 17752926); /* ms left, not a timestamp */
  scanner_parsed_free(&p);
  free(b);
}

static void test_synthetic_fixture(void **state) {
  size_t n;
  char *b = slurp("contracts-active-synthetic.json", &n);
  scanner_parsed_t p;
  scanner_filter_t f = {.quote = "USDT"};
  scanner_parse_contracts(200, b, n, &f, &p);
  assert_int_equal(p.outcome, SCANNER_OK);
  assert_int_equal(p.n, 33);
  assert_int_equal(p.skipped, 0);
  bool pepe = false;
  for (size_t i = 0; i < p.n; i++) {
    assert_true(p.contracts[i].last_micro > 0);
    assert_true(p.contracts[i].turnover > 0);
    assert_true(p.contracts[i].open_interest > 0);
    if (strcmp(p.contracts[i].symbol, "PEPEUSDTM") == 0) {
      pepe = true;
      /* Finer than a micro-unit: the text keeps the digits for display. */
      char px[32];
      scanner_fmt_price(&p.contracts[i], px, sizeof px);
      assert_true(strncmp(px, "0.00000", 7) == 0);
      assert_true(strlen(px) > 8);
    }
  }
  assert_true(pepe);
  /* A quote filter that matches nothing keeps nothing, and says so. */
  scanner_parsed_free(&p);
  f.quote = "USD";
  scanner_parse_contracts(200, b, n, &f, &p);
  assert_int_equal(p.outcome, SCANNER_OK);
  assert_int_equal(p.n, 0);
  assert_int_equal(p.skipped, 33);
  scanner_parsed_free(&p);
  /* max keeps the first ones. */
  f = (scanner_filter_t){.max = 5};
  scanner_parse_contracts(200, b, n, &f, &p);
  assert_int_equal(p.n, 5);
  assert_int_equal(p.skipped, 28);
  scanner_parsed_free(&p);
  free(b);
}

static void test_error_shapes(void **state) {
  scanner_parsed_t p;
  /* HTTP 429 with KuCoin's body. */
  parse_str(429, "{\"code\":\"429000\",\"msg\":\"Too Many Requests\"}", NULL, &p);
  assert_int_equal(p.outcome, SCANNER_RATE_LIMITED);
  /* 429000 with HTTP 200 is still a rate limit. */
  parse_str(200, "{\"code\":\"429000\",\"msg\":\"Too Many Requests\"}", NULL, &p);
  assert_int_equal(p.outcome, SCANNER_RATE_LIMITED);
  /* A bare 429 without a body. */
  parse_str(429, "", NULL, &p);
  assert_int_equal(p.outcome, SCANNER_RATE_LIMITED);
  /* An error code with HTTP 200: the code decides. */
  parse_str(200, "{\"code\":\"400100\",\"msg\":\"Parameter error\"}", NULL, &p);
  assert_int_equal(p.outcome, SCANNER_CODE_ERROR);
  assert_string_equal(p.code, "400100");
  assert_non_null(strstr(p.reason, "400100"));
  assert_non_null(strstr(p.reason, "Parameter error"));
  /* ... also a code sent as a number. */
  parse_str(200, "{\"code\":500000,\"msg\":\"x\"}", NULL, &p);
  assert_int_equal(p.outcome, SCANNER_CODE_ERROR);
  assert_string_equal(p.code, "500000");
  /* 5xx pages. */
  parse_str(503, "<html>Service Unavailable</html>", NULL, &p);
  assert_int_equal(p.outcome, SCANNER_HTTP_ERROR);
  assert_string_equal(p.reason, "HTTP 503");
  parse_str(404, "", NULL, &p);
  assert_int_equal(p.outcome, SCANNER_HTTP_ERROR);
  /* 200 but not the shape. */
  parse_str(200, "{\"code\":\"200000\",\"data\":[{\"symbol\":\"XB", NULL, &p);
  assert_int_equal(p.outcome, SCANNER_MALFORMED);
  parse_str(200, "{\"code\":\"200000\",\"data\":{}}", NULL, &p);
  assert_int_equal(p.outcome, SCANNER_MALFORMED);
  parse_str(200, "[1,2]", NULL, &p);
  assert_int_equal(p.outcome, SCANNER_MALFORMED);
  parse_str(200, "", NULL, &p);
  assert_int_equal(p.outcome, SCANNER_MALFORMED);
  assert_string_equal(scanner_outcome_name(SCANNER_CODE_ERROR), "error code");
}

static void test_contract_rules(void **state) {
  scanner_parsed_t p;
  parse_str(200,
            "{\"code\":\"200000\",\"data\":["
            /* not Open: skipped */
            "{\"symbol\":\"AUSDTM\",\"status\":\"Paused\",\"quoteCurrency\":\"USDT\","
            "\"lastTradePrice\":1},"
            /* no price: skipped */
            "{\"symbol\":\"BUSDTM\",\"status\":\"Open\",\"quoteCurrency\":\"USDT\"},"
            /* a symbol with characters KuCoin never uses: skipped */
            "{\"symbol\":\"C<b>\",\"status\":\"Open\",\"lastTradePrice\":1},"
            /* minimal: the optional figures are 0, funding time unknown */
            "{\"symbol\":\"DUSDTM\",\"status\":\"Open\",\"quoteCurrency\":\"USDT\","
            "\"lastTradePrice\":\"2.5\"},"
            /* open interest as a number works too; exponents are exact */
            "{\"symbol\":\"EUSDTM\",\"status\":\"Open\",\"lastTradePrice\":1.5e2,"
            "\"openInterest\":42,\"fundingFeeRate\":-1.25e-4,\"priceChgPct\":0.1234567,"
            "\"nextFundingRateTime\":-5},"
            "7]}",
            NULL, &p);
  assert_int_equal(p.outcome, SCANNER_OK);
  assert_int_equal(p.n, 2);
  assert_int_equal(p.skipped, 4);
  assert_string_equal(p.contracts[0].symbol, "DUSDTM");
  assert_int_equal(p.contracts[0].last_micro, 2500000);
  assert_int_equal(p.contracts[0].mark_micro, 2500000);
  assert_int_equal(p.contracts[0].turnover, 0);
  assert_int_equal(p.contracts[0].funding_in_ms, -1);
  assert_string_equal(p.contracts[1].symbol, "EUSDTM");
  assert_int_equal(p.contracts[1].last_micro, 150000000);
  assert_string_equal(p.contracts[1].last_text, ""); /* exponent form: formatted from micro */
  char px[32];
  scanner_fmt_price(&p.contracts[1], px, sizeof px);
  assert_string_equal(px, "150.00");
  assert_int_equal(p.contracts[1].open_interest, 42);
  assert_int_equal(p.contracts[1].funding_e8, -12500);
  assert_int_equal(p.contracts[1].change_ppm, 123457); /* rounded once, half away */
  assert_int_equal(p.contracts[1].funding_in_ms, -1);
  scanner_parsed_free(&p);
}

static void test_pool(void **state) {
  scanner_pool_t pool = {0};
  /* Unknown pool: no wait. */
  assert_int_equal(scanner_pool_wait(&pool, 3, 1000), 0);
  assert_false(scanner_pool_update(&pool, "2000", NULL, "29000", 1000));
  assert_false(pool.known);
  assert_true(scanner_pool_update(&pool, "2000", "1997", "29000", 1000));
  assert_true(pool.known);
  assert_int_equal(pool.reset_at_ms, 30000);
  assert_int_equal(scanner_pool_wait(&pool, 3, 2000), 0);
  /* Less room than the weight: wait for the reset, exactly. */
  assert_true(scanner_pool_update(&pool, "2000", "2", "5000", 10000));
  assert_int_equal(scanner_pool_wait(&pool, 3, 10000), 5000);
  assert_int_equal(scanner_pool_wait(&pool, 3, 14000), 1000);
  assert_int_equal(scanner_pool_wait(&pool, 3, 15000), 0);
  assert_int_equal(scanner_pool_wait(&pool, 2, 10000), 0);
  /* Spending counts in-flight requests; a new window refills to the limit. */
  assert_true(scanner_pool_update(&pool, "10", "6", "1000", 20000));
  scanner_pool_spend(&pool, 3, 20000);
  assert_int_equal(pool.remaining, 3);
  scanner_pool_spend(&pool, 3, 20000);
  assert_int_equal(pool.remaining, 0);
  assert_int_equal(scanner_pool_wait(&pool, 3, 20500), 500);
  scanner_pool_spend(&pool, 3, 21000);
  assert_int_equal(pool.remaining, 10);
  /* Garbage headers leave the state alone. */
  assert_false(scanner_pool_update(&pool, "x", "-1", "1e3", 22000));
  assert_int_equal(pool.remaining, 10);
  assert_int_equal(pool.limit, 10);
}

/* ---- the score, by hand -------------------------------------------------- */

/* Three contracts whose factors are easy to work out by hand:
 *           turnover  T=log10(1+t)  |chg|   |funding|  OI value        O
 *   AUSDTM    999       3           0.10    0.0003     1000x1x9=9000   log10(9001)=3.954291
 *   BUSDTM     99       2           0.05    0.0001     99x1x1=99       2
 *   CUSDTM      9       1           0       0          0               0
 * Min-max normalised: A is 1 in every factor (score 100), C is 0 in every
 * factor (score 0), and B is 0.5, 0.5, 1/3 and 2/3.954291 = 0.505780.
 * With weights 0.4, 0.3, 0.15, 0.15 (sum 1):
 *   B = 100 x (0.4 x 0.5 + 0.3 x 0.5 + 0.15 / 3 + 0.15 x 0.505780)
 *     = 20 + 15 + 5 + 7.586696 = 47.586696  ->  475867 ten-thousandths. */
static const char HAND[] =
    "{\"code\":\"200000\",\"data\":["
    "{\"symbol\":\"CUSDTM\",\"status\":\"Open\",\"quoteCurrency\":\"USDT\","
    "\"lastTradePrice\":1,\"markPrice\":1,\"turnoverOf24h\":9,\"priceChgPct\":0,"
    "\"fundingFeeRate\":0,\"openInterest\":\"0\",\"multiplier\":1},"
    "{\"symbol\":\"BUSDTM\",\"status\":\"Open\",\"quoteCurrency\":\"USDT\","
    "\"lastTradePrice\":1,\"markPrice\":1,\"turnoverOf24h\":99,\"priceChgPct\":0.05,"
    "\"fundingFeeRate\":-0.0001,\"openInterest\":\"99\",\"multiplier\":1},"
    "{\"symbol\":\"AUSDTM\",\"status\":\"Open\",\"quoteCurrency\":\"USDT\","
    "\"lastTradePrice\":9,\"markPrice\":9,\"turnoverOf24h\":999,\"priceChgPct\":-0.1,"
    "\"fundingFeeRate\":3e-4,\"openInterest\":\"1000\",\"multiplier\":1}]}";

static const scanner_weights_t W = {{0.4, 0.3, 0.15, 0.15}};

static void test_score_by_hand(void **state) {
  scanner_parsed_t p;
  parse_str(200, HAND, NULL, &p);
  assert_int_equal(p.n, 3);
  scanner_ranked_t r[3];
  assert_int_equal(scanner_rank(p.contracts, p.n, &W, r), 0);
  assert_string_equal(r[0].c.symbol, "AUSDTM");
  assert_string_equal(r[1].c.symbol, "BUSDTM");
  assert_string_equal(r[2].c.symbol, "CUSDTM");
  assert_int_equal(r[0].rank, 1);
  assert_int_equal(r[2].rank, 3);
  assert_int_equal(r[0].score_e4, 1000000);
  assert_int_equal(r[1].score_e4, 475867);
  assert_int_equal(r[2].score_e4, 0);
  assert_true(fabs(r[0].raw[SCANNER_F_OI] - 3.954291) < 1e-6);
  assert_true(fabs(r[1].norm[SCANNER_F_FUNDING] - 1.0 / 3.0) < 1e-12);
  assert_true(fabs(r[1].points[SCANNER_F_TURNOVER] - 20.0) < 1e-9);
  assert_true(fabs(r[1].points[SCANNER_F_MOVE] - 15.0) < 1e-9);
  assert_true(fabs(r[1].points[SCANNER_F_FUNDING] - 5.0) < 1e-9);
  assert_true(fabs(r[1].points[SCANNER_F_OI] - 7.586696) < 1e-6);
  char why[160];
  scanner_explain(&r[1], why, sizeof why);
  assert_string_equal(why,
                      "turnover 20.00 + move 15.00 + funding 5.00 + open interest 7.59 = 47.59");
  /* Weights are relative: doubling them all changes nothing. */
  scanner_weights_t w2 = {{0.8, 0.6, 0.3, 0.3}};
  scanner_ranked_t r2[3];
  assert_int_equal(scanner_rank(p.contracts, p.n, &w2, r2), 0);
  assert_int_equal(r2[1].score_e4, 475867);
  /* Only the move counts: A (10 %) > B (5 %) > C, scores 100, 50, 0. */
  scanner_weights_t move = {{0, 1, 0, 0}};
  assert_int_equal(scanner_rank(p.contracts, p.n, &move, r2), 0);
  assert_int_equal(r2[0].score_e4, 1000000);
  assert_int_equal(r2[1].score_e4, 500000);
  /* Bad weights are refused. */
  scanner_weights_t bad = {{0, 0, 0, 0}};
  assert_int_equal(scanner_rank(p.contracts, p.n, &bad, r2), SOUK_EINVAL);
  bad.w[1] = -1;
  assert_int_equal(scanner_rank(p.contracts, p.n, &bad, r2), SOUK_EINVAL);
  bad.w[1] = NAN;
  assert_int_equal(scanner_rank(p.contracts, p.n, &bad, r2), SOUK_EINVAL);
  scanner_parsed_free(&p);
}

static void test_ties_are_deterministic(void **state) {
  /* Only the move counts, and all three moved 2 %: equal scores.  The
   * higher turnover goes first, then the symbol in byte order, whatever
   * the input order. */
  static const char *const orders[2] = {
      "{\"code\":\"200000\",\"data\":["
      "{\"symbol\":\"ZZZUSDTM\",\"lastTradePrice\":1,\"turnoverOf24h\":500,\"priceChgPct\":0.02},"
      "{\"symbol\":\"BBBUSDTM\",\"lastTradePrice\":1,\"turnoverOf24h\":100,\"priceChgPct\":-0.02},"
      "{\"symbol\":\"AAAUSDTM\",\"lastTradePrice\":1,\"turnoverOf24h\":100,\"priceChgPct\":0.02},"
      "{\"symbol\":\"LOWUSDTM\",\"lastTradePrice\":1,\"turnoverOf24h\":900,\"priceChgPct\":0.01}"
      "]}",
      "{\"code\":\"200000\",\"data\":["
      "{\"symbol\":\"LOWUSDTM\",\"lastTradePrice\":1,\"turnoverOf24h\":900,\"priceChgPct\":0.01},"
      "{\"symbol\":\"AAAUSDTM\",\"lastTradePrice\":1,\"turnoverOf24h\":100,\"priceChgPct\":0.02},"
      "{\"symbol\":\"BBBUSDTM\",\"lastTradePrice\":1,\"turnoverOf24h\":100,\"priceChgPct\":-0.02},"
      "{\"symbol\":\"ZZZUSDTM\",\"lastTradePrice\":1,\"turnoverOf24h\":500,\"priceChgPct\":0.02}"
      "]}"};
  scanner_weights_t move = {{0, 1, 0, 0}};
  for (int k = 0; k < 2; k++) {
    scanner_parsed_t p;
    parse_str(200, orders[k], NULL, &p);
    assert_int_equal(p.n, 4);
    scanner_ranked_t r[4];
    assert_int_equal(scanner_rank(p.contracts, p.n, &move, r), 0);
    assert_string_equal(r[0].c.symbol, "ZZZUSDTM");
    assert_string_equal(r[1].c.symbol, "AAAUSDTM");
    assert_string_equal(r[2].c.symbol, "BBBUSDTM");
    assert_string_equal(r[3].c.symbol, "LOWUSDTM");
    assert_int_equal(r[0].score_e4, r[2].score_e4);
    assert_int_equal(r[3].score_e4, 0);
    scanner_parsed_free(&p);
  }
  /* One contract, or all equal: every factor normalises to 0. */
  scanner_parsed_t p;
  parse_str(200, "{\"code\":\"200000\",\"data\":[{\"symbol\":\"ONEUSDTM\",\"lastTradePrice\":3}]}",
            NULL, &p);
  scanner_ranked_t one;
  assert_int_equal(scanner_rank(p.contracts, 1, &W, &one), 0);
  assert_int_equal(one.score_e4, 0);
  assert_int_equal(one.rank, 1);
  scanner_parsed_free(&p);
}

/* ---- top-list changes ---------------------------------------------------- */

static scanner_top_t top_of(const char *csv) {
  scanner_top_t t;
  scanner_top_decode(csv, strlen(csv), &t);
  return t;
}

static void test_top_diff(void **state) {
  scanner_top_t a = top_of("AUSDTM,BUSDTM,CUSDTM"), same = top_of("AUSDTM,BUSDTM,CUSDTM");
  scanner_change_t ch[8];
  assert_int_equal(scanner_top_diff(&a, &same, ch, 8), 0);
  scanner_top_t b = top_of("BUSDTM,AUSDTM,DUSDTM");
  size_t n = scanner_top_diff(&a, &b, ch, 8);
  assert_int_equal(n, 4);
  assert_int_equal(ch[0].kind, SCANNER_MOVED);
  assert_string_equal(ch[0].symbol, "BUSDTM");
  assert_int_equal(ch[0].from, 2);
  assert_int_equal(ch[0].to, 1);
  assert_int_equal(ch[1].kind, SCANNER_MOVED);
  assert_string_equal(ch[1].symbol, "AUSDTM");
  assert_int_equal(ch[2].kind, SCANNER_ENTERED);
  assert_string_equal(ch[2].symbol, "DUSDTM");
  assert_int_equal(ch[2].from, 0);
  assert_int_equal(ch[2].to, 3);
  assert_int_equal(ch[3].kind, SCANNER_LEFT);
  assert_string_equal(ch[3].symbol, "CUSDTM");
  assert_int_equal(ch[3].from, 3);
  /* From nothing: everything entered. */
  scanner_top_t none = top_of("");
  assert_int_equal(none.n, 0);
  assert_int_equal(scanner_top_diff(&none, &a, ch, 8), 3);
  assert_int_equal(ch[2].kind, SCANNER_ENTERED);
  /* cap bounds what is written. */
  assert_int_equal(scanner_top_diff(&a, &b, ch, 2), 2);
  /* Round trip, and junk is skipped when decoding. */
  char txt[128];
  assert_int_equal(scanner_top_encode(&b, txt, sizeof txt), (int)strlen("BUSDTM,AUSDTM,DUSDTM"));
  assert_string_equal(txt, "BUSDTM,AUSDTM,DUSDTM");
  assert_int_equal(scanner_top_encode(&b, txt, 8), SOUK_ETOOBIG);
  scanner_top_t junk = top_of("AUSDTM,,x y,<b>,BUSDTM");
  assert_int_equal(junk.n, 2);
  assert_string_equal(junk.sym[1], "BUSDTM");
  souk_free(a.sym);
  souk_free(same.sym);
  souk_free(b.sym);
  souk_free(none.sym);
  souk_free(junk.sym);
}

/* ---- health -------------------------------------------------------------- */

static void test_health_durations(void **state) {
  scanner_health_t h = {0};
  souk_health_result_t r;
  uint64_t now = 1000;
  scanner_health_eval(&h, now, false, &r);
  assert_int_equal(r.status, SOUK_HEALTH_HEALTHY);
  assert_non_null(strstr(r.detail, "no scan yet"));
  /* Exact thresholds. */
  assert_int_equal(scanner_health_level_dur(29999), SOUK_HEALTH_HEALTHY);
  assert_int_equal(scanner_health_level_dur(30000), SOUK_HEALTH_WARNING);
  assert_int_equal(scanner_health_level_dur(89999), SOUK_HEALTH_WARNING);
  assert_int_equal(scanner_health_level_dur(90000), SOUK_HEALTH_CRITICAL);
  /* Ten quick scans, then slow ones push the average of the last ten. */
  for (int i = 0; i < 10; i++)
    scanner_health_scan(&h, 1000, now += 60000);
  scanner_health_eval(&h, now, false, &r);
  assert_int_equal(r.status, SOUK_HEALTH_HEALTHY);
  assert_non_null(strstr(r.detail, "avg scan 1.0 s (last 10)"));
  /* 5 scans of 60 s: (5 x 1 + 5 x 60) / 10 = 30.5 s -> WARNING. */
  for (int i = 0; i < 5; i++)
    scanner_health_scan(&h, 60000, now += 60000);
  assert_int_equal(scanner_health_avg_ms(&h), 30500);
  scanner_health_eval(&h, now, false, &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  /* 5 more of 120 s: only the last ten count, (5 x 60 + 5 x 120) / 10 = 90 s. */
  for (int i = 0; i < 5; i++)
    scanner_health_scan(&h, 120000, now += 60000);
  assert_int_equal(scanner_health_avg_ms(&h), 90000);
  scanner_health_eval(&h, now, false, &r);
  assert_int_equal(r.status, SOUK_HEALTH_CRITICAL);
  /* Quick again: ten of them bring it back. */
  for (int i = 0; i < 10; i++)
    scanner_health_scan(&h, 500, now += 60000);
  scanner_health_eval(&h, now, false, &r);
  assert_int_equal(r.status, SOUK_HEALTH_HEALTHY);
  /* An open breaker is at least a warning, and the detail says so. */
  scanner_health_eval(&h, now, true, &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  assert_non_null(strstr(r.detail, "breaker OPEN"));
  assert_int_equal(h.scans, 30);
}

static void test_health_errors(void **state) {
  assert_int_equal(scanner_health_level_err(4), SOUK_HEALTH_HEALTHY);
  assert_int_equal(scanner_health_level_err(5), SOUK_HEALTH_WARNING);
  assert_int_equal(scanner_health_level_err(10), SOUK_HEALTH_WARNING);
  assert_int_equal(scanner_health_level_err(11), SOUK_HEALTH_CRITICAL);
  scanner_health_t h = {0};
  souk_health_result_t r;
  uint64_t t0 = 5000000;
  for (int i = 0; i < 4; i++)
    scanner_health_error(&h, t0 + (uint64_t)i * 1000);
  scanner_health_eval(&h, t0 + 10000, false, &r);
  assert_int_equal(r.status, SOUK_HEALTH_HEALTHY);
  scanner_health_error(&h, t0 + 5000);
  scanner_health_eval(&h, t0 + 10000, false, &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  assert_non_null(strstr(r.detail, "5 errors in 15 min"));
  for (int i = 0; i < 5; i++)
    scanner_health_error(&h, t0 + 6000 + (uint64_t)i);
  assert_int_equal(scanner_health_errors(&h, t0 + 10000), 10);
  scanner_health_eval(&h, t0 + 10000, false, &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  scanner_health_error(&h, t0 + 7000);
  scanner_health_eval(&h, t0 + 10000, false, &r);
  assert_int_equal(r.status, SOUK_HEALTH_CRITICAL);
  /* Fifteen minutes after the first error it leaves the window: the first
   * four errors are at t0 .. t0+3000. */
  assert_int_equal(scanner_health_errors(&h, t0 + SCANNER_ERR_WINDOW_MS - 1), 11);
  assert_int_equal(scanner_health_errors(&h, t0 + SCANNER_ERR_WINDOW_MS), 10);
  assert_int_equal(scanner_health_errors(&h, t0 + SCANNER_ERR_WINDOW_MS + 3000), 7);
  scanner_health_eval(&h, t0 + SCANNER_ERR_WINDOW_MS + 3000, false, &r);
  assert_int_equal(r.status, SOUK_HEALTH_WARNING);
  assert_int_equal(scanner_health_errors(&h, t0 + SCANNER_ERR_WINDOW_MS + 8000), 0);
  /* A storm beyond what is kept still counts as CRITICAL. */
  for (int i = 0; i < 100; i++)
    scanner_health_error(&h, t0 + 2000000 + (uint64_t)i);
  assert_int_equal(scanner_health_errors(&h, t0 + 2000200), SCANNER_ERR_KEEP);
  assert_int_equal(h.errors, 111);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_real_fixture),
      cmocka_unit_test(test_synthetic_fixture),
      cmocka_unit_test(test_error_shapes),
      cmocka_unit_test(test_contract_rules),
      cmocka_unit_test(test_pool),
      cmocka_unit_test(test_score_by_hand),
      cmocka_unit_test(test_ties_are_deterministic),
      cmocka_unit_test(test_top_diff),
      cmocka_unit_test(test_health_durations),
      cmocka_unit_test(test_health_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
