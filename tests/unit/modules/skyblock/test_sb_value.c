/* SkyBlock value: sales cleaning against manipulation, the fair market
 * value's rules and evidence, the auction house's fees, the sniper's
 * verdicts and its dedupe. */
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
#include "modules/skyblock/sb_fmv.c"
#include "modules/skyblock/sb_market.c"
#include "modules/skyblock/sb_page.c"
#include "modules/skyblock/sb_sniper.c"
#include "souk/err.h"

/* Account ids: distinct small numbers are fine as hashes. */
static sb_sale_t sale(int64_t unit, uint64_t seller, uint64_t buyer) {
  return (sb_sale_t){.ts_ms = 1000, .unit = unit, .price = unit, .seller = seller, .buyer = buyer};
}

static void test_median_iqm(void **state) {
  (void)state;
  int64_t v[] = {1, 2, 3, 4, 100};
  assert_int_equal(sb_median_sorted(v, 5), 3);
  assert_int_equal(sb_median_sorted(v, 4), 2); /* (2 + 3) / 2 rounded down */
  assert_int_equal(sb_median_sorted(v, 0), 0);
  /* IQM of 8 values drops the lowest 2 and the highest 2. */
  int64_t w[] = {1, 2, 10, 20, 30, 40, 1000, 2000};
  assert_int_equal(sb_iqm_sorted(w, 8), 25);
  assert_int_equal(sb_iqm_sorted(w, 1), 1);
}

static void test_clean_pairs_sellers_buyers_outliers(void **state) {
  (void)state;
  sb_fmv_t f;
  int64_t kept[32];
  /* A <-> B traded both ways: all their trades go; a self-trade goes. */
  sb_sale_t s1[] = {sale(100, 1, 2), sale(900, 2, 1), sale(950, 1, 2),
                    sale(10, 5, 5),  sale(110, 3, 4), sale(105, 6, 7)};
  size_t n = sb_fmv_clean_sales(s1, 6, kept, &f);
  assert_int_equal(f.dropped_pairs, 4);
  assert_int_equal(n, 2);
  assert_int_equal(kept[0], 105);
  assert_int_equal(kept[1], 110);
  /* A -> B only, many times: one way is not a pump, but one seller and
   * one buyer count once, at their median. */
  sb_sale_t s2[] = {sale(100, 1, 2), sale(300, 1, 2), sale(200, 1, 2), sale(120, 3, 4)};
  n = sb_fmv_clean_sales(s2, 4, kept, &f);
  assert_int_equal(f.dropped_pairs, 0);
  assert_int_equal(f.dropped_sellers, 2);
  assert_int_equal(n, 2);
  assert_int_equal(kept[0], 120);
  assert_int_equal(kept[1], 200);
  /* One buyer buying from many sellers counts once too. */
  sb_sale_t s3[] = {sale(100, 1, 9), sale(200, 2, 9), sale(300, 3, 9), sale(150, 4, 8)};
  n = sb_fmv_clean_sales(s3, 4, kept, &f);
  assert_int_equal(f.dropped_buyers, 2);
  assert_int_equal(n, 2);
  assert_int_equal(kept[0], 150);
  assert_int_equal(kept[1], 200);
  /* Outliers outside Tukey's fences go. */
  sb_sale_t s4[8];
  int64_t p4[8] = {100, 101, 102, 103, 104, 105, 1, 100000};
  for (int i = 0; i < 8; i++)
    s4[i] = sale(p4[i], 10 + i, 50 + i);
  n = sb_fmv_clean_sales(s4, 8, kept, &f);
  assert_int_equal(f.dropped_outliers, 2);
  assert_int_equal(n, 6);
  assert_int_equal(kept[0], 100);
  assert_int_equal(kept[5], 105);
  /* Three prices: more than 5x away from the median goes. */
  sb_sale_t s5[] = {sale(100, 1, 2), sale(110, 3, 4), sale(2000, 5, 6)};
  n = sb_fmv_clean_sales(s5, 3, kept, &f);
  assert_int_equal(n, 2);
  assert_int_equal(f.dropped_outliers, 1);
}

static sb_fmv_in_t base_in(const sb_sale_t *s, size_t ns, const int64_t *live, size_t nl,
                           size_t total) {
  return (sb_fmv_in_t){.sales = s,
                       .nsales = ns,
                       .live = live,
                       .nlive = nl,
                       .live_total = total,
                       .window_hours = 12,
                       .min_sales = 5,
                       .thin_wall = 3};
}

static void test_fmv_rules_and_evidence(void **state) {
  (void)state;
  sb_sale_t s[37];
  for (int i = 0; i < 37; i++)
    s[i] = sale(1000000 + i * 1000, 100 + i, 500 + i);
  int64_t live[] = {1200000, 1250000, 1300000, 1500000};
  sb_fmv_t f;
  sb_fmv_in_t in = base_in(s, 37, live, 4, 4);
  assert_int_equal(sb_fmv_compute(&in, &f), 1018000);
  assert_int_equal(f.method, SB_FMV_SALES);
  assert_string_equal(f.evidence, "median of 37 sales in 12 h");
  assert_false(f.thin);
  assert_int_equal(f.floor, 1200000);
  assert_int_equal(f.depth, 3); /* 1.2M, 1.25M and 1.3M are within 10% of the floor */
  /* A cheaper listing caps the value: nobody pays more while it waits. */
  int64_t low[] = {900000, 1300000};
  in = base_in(s, 37, low, 2, 2);
  in.judged = true;
  assert_int_equal(sb_fmv_compute(&in, &f), 900000);
  assert_int_equal(f.method, SB_FMV_SALES_CAPPED);
  assert_true(f.thin);
  assert_string_equal(f.evidence,
                      "2nd-lowest BIN, under the median 1.02M of 37 sales in 12 h, thin market: 2 "
                      "listings");
  /* Too few sales: the ladder. */
  in = base_in(s, 2, low, 2, 2);
  in.judged = true;
  assert_int_equal(sb_fmv_compute(&in, &f), 900000);
  assert_int_equal(f.method, SB_FMV_LADDER);
  assert_string_equal(f.evidence, "2nd-lowest BIN, thin market: 2 listings, few sales");
  /* No listing: the hourly floors, with three hours or more. */
  int64_t floors[] = {800, 700, 900, 1000};
  in = base_in(NULL, 0, NULL, 0, 0);
  in.floors = floors;
  in.nfloors = 4;
  assert_int_equal(sb_fmv_compute(&in, &f), 850);
  assert_int_equal(f.method, SB_FMV_HOURS);
  in.nfloors = 2;
  assert_int_equal(sb_fmv_compute(&in, &f), 0);
  assert_int_equal(f.method, SB_FMV_NONE);
  assert_string_equal(f.evidence, "not enough evidence: 0 sales, 0 listings");
}

/* The manipulated market: two accounts trading an item back and forth at
 * ten times its price must not move its value at all. */
static void test_manipulation_does_not_move_the_value(void **state) {
  (void)state;
  sb_sale_t s[64];
  size_t n = 0;
  for (int i = 0; i < 12; i++)
    s[n++] = sale(1000000 + (i % 5) * 10000, 100 + i, 500 + i);
  int64_t live[] = {1100000, 1150000, 1200000};
  sb_fmv_t before, after;
  sb_fmv_in_t in = base_in(s, n, live, 3, 3);
  sb_fmv_compute(&in, &before);
  for (int i = 0; i < 40; i++)
    s[n++] = sale(10000000, i % 2 ? 7777 : 8888, i % 2 ? 8888 : 7777);
  in = base_in(s, n, live, 3, 3);
  sb_fmv_compute(&in, &after);
  assert_int_equal(after.value, before.value);
  assert_int_equal(after.method, SB_FMV_SALES);
  assert_int_equal(after.dropped_pairs, 40);
  assert_int_equal(after.sales_clean, before.sales_clean);
  /* One-way wash trades (A sells to B forty times) count once. */
  n = 12;
  for (int i = 0; i < 40; i++)
    s[n++] = sale(10000000, 7777, 8888);
  in = base_in(s, n, live, 3, 3);
  sb_fmv_compute(&in, &after);
  assert_int_equal(after.dropped_sellers, 39);
  /* ... and at 10x the others it is an outlier. */
  assert_int_equal(after.dropped_outliers, 1);
  assert_int_equal(after.sales_clean, before.sales_clean);
  assert_int_equal(after.value, before.value);
}

static void test_fees(void **state) {
  (void)state;
  sb_fees_t f;
  sb_fees_defaults(&f);
  assert_int_equal(sb_fees_on(&f, 1000000), 10000);           /* 1%, no tax at 1M */
  assert_int_equal(sb_fees_on(&f, 1000001), 10001 + 10001);   /* rounded up, + 1% tax */
  assert_int_equal(sb_fees_on(&f, 9999999), 100000 + 100000); /* still 1% */
  assert_int_equal(sb_fees_on(&f, 10000000), 200000 + 100000);
  assert_int_equal(sb_fees_on(&f, 100000000), 2000000 + 1000000);
  assert_int_equal(sb_fees_on(&f, 100000001), 2500001 + 1000001);
  assert_int_equal(sb_fees_on(&f, 50), 1);
  f.tier1_bp = 0;
  f.tax_bp = 0;
  assert_int_equal(sb_fees_on(&f, 500000), 0);
}

/* ---- the sniper over a real store -------------------------------------------- */

static sb_mkts_conf_t conf(void) {
  return (sb_mkts_conf_t){.ladder_size = 16,
                          .window_hours = 12,
                          .thin_wall = 3,
                          .min_sales = 3,
                          .live_cap = 1000,
                          .hour_grace_ms = 90000};
}

static sb_uuid_t uid(uint8_t a, uint8_t b) {
  sb_uuid_t u;
  memset(&u, 0, sizeof u);
  u.b[0] = a;
  u.b[1] = b;
  u.b[15] = 0x5a;
  return u;
}

#define T0 (1800000LL * SB_HOUR_MS + 600000)

static const sb_live_t *list(sb_mkts_t *m, uint32_t mid, uint8_t id, uint8_t seller, int64_t price,
                             bool bin, int64_t start) {
  sb_listing_t l = {.uuid = uid(1, id),
                    .seller = uid(2, seller),
                    .price = price,
                    .bin = bin,
                    .start_ms = start,
                    .end_ms = start + 3600000};
  return sb_mkts_live_add(m, &l, mid, 1, 1);
}

static void market_with_value(sb_mkts_t *m, uint32_t *mid) {
  sb_mkts_advance(m, T0, NULL, NULL);
  *mid = sb_mkts_intern(m, "HYPERION", "stars=5", "Hyperion");
  for (uint8_t i = 0; i < 6; i++) {
    sb_uuid_t a = uid(9, i);
    sb_mkts_sale_add(m, *mid, &a, T0 - 1000 * i, 100000000, 1, 100 + i, 200 + i);
  }
  for (uint8_t i = 0; i < 4; i++)
    list(m, *mid, (uint8_t)(10 + i), (uint8_t)(10 + i), 101000000 + i, true, T0 - 3600000);
}

static void test_sniper_verdicts(void **state) {
  (void)state;
  sb_mkts_conf_t c = conf();
  sb_mkts_t *m = sb_mkts_new(&c);
  uint32_t mid;
  market_with_value(m, &mid);
  sb_sniper_conf_t sc;
  sb_sniper_conf_defaults(&sc);
  sb_dedupe_t *d = sb_dedupe_new(100, 48 * 3600000LL);
  sb_judgement_t j;

  const sb_live_t *snipe = list(m, mid, 1, 1, 60000000, true, T0 - 1000);
  assert_int_equal(sb_snipe_judge(&sc, m, d, snipe, T0, &j), SB_V_ALERT);
  assert_int_equal(j.fmv.value, 100000000);
  assert_int_equal(j.fmv.method, SB_FMV_SALES);
  assert_int_equal(j.fees, 3000000);
  assert_int_equal(j.profit, 100000000 - 3000000 - 60000000);
  assert_int_equal(j.margin_bp, 6166);
  sb_mkts_live_remove(m, &snipe->uuid);

  /* Not BIN, or listed long before this page: never judged. */
  const sb_live_t *auc = list(m, mid, 2, 2, 1000, false, T0);
  assert_int_equal(sb_snipe_judge(&sc, m, d, auc, T0, &j), SB_V_NOT_BIN);
  const sb_live_t *old = list(m, mid, 3, 3, 1000, true, T0 - 6 * 60000);
  assert_int_equal(sb_snipe_judge(&sc, m, d, old, T0, &j), SB_V_OLD);
  sb_mkts_live_remove(m, &old->uuid);

  /* Too little profit, or too thin a margin. */
  const sb_live_t *meh = list(m, mid, 4, 4, 96500000, true, T0);
  assert_int_equal(sb_snipe_judge(&sc, m, d, meh, T0, &j), SB_V_LOW_PROFIT);
  sb_mkts_live_remove(m, &meh->uuid);
  sc.min_profit = 1;
  const sb_live_t *thin_margin = list(m, mid, 5, 5, 90000000, true, T0);
  assert_int_equal(sb_snipe_judge(&sc, m, d, thin_margin, T0, &j), SB_V_LOW_MARGIN);
  sb_mkts_live_remove(m, &thin_margin->uuid);
  sc.min_profit = 1000000;

  /* A market with no sales and no other listing has no value. */
  uint32_t lone = sb_mkts_intern(m, "LONELY", "", "Lonely");
  const sb_live_t *l1 = list(m, lone, 6, 6, 5, true, T0);
  assert_int_equal(sb_snipe_judge(&sc, m, d, l1, T0, &j), SB_V_NO_VALUE);
  /* With one other listing it has a value, but a thin, illiquid one. */
  list(m, lone, 7, 7, 500000000, true, T0 - 3600000);
  assert_int_equal(sb_snipe_judge(&sc, m, d, l1, T0, &j), SB_V_THIN);
  sc.allow_thin = true;
  assert_int_equal(sb_snipe_judge(&sc, m, d, l1, T0, &j), SB_V_ILLIQUID);
  assert_int_equal(j.fmv.method, SB_FMV_LADDER);
  sc.min_sales = 0;
  assert_int_equal(sb_snipe_judge(&sc, m, d, l1, T0, &j), SB_V_ALERT);
  assert_string_equal(j.fmv.evidence, "2nd-lowest BIN, thin market: 1 listing");
  sc.min_sales = 3;
  sc.allow_thin = false;

  /* Dedupe: the same auction once. */
  sb_mkts_live_remove(m, &l1->uuid);
  uint64_t mh = sb_market_hash("HYPERION", "stars=5");
  sb_uuid_t su = uid(1, 1), ss = uid(2, 1);
  sb_dedupe_record(d, &su, mh, &ss, 60000000, T0);
  const sb_live_t *same = list(m, mid, 1, 1, 60000000, true, T0);
  assert_int_equal(sb_snipe_judge(&sc, m, d, same, T0, &j), SB_V_DUPLICATE);
  sb_mkts_live_remove(m, &su);
  /* The same seller's next listing of the item: only when 10% cheaper. */
  const sb_live_t *again = list(m, mid, 20, 1, 55000000, true, T0);
  assert_int_equal(sb_snipe_judge(&sc, m, d, again, T0, &j), SB_V_SAME_SELLER);
  sb_mkts_live_remove(m, &again->uuid);
  const sb_live_t *better = list(m, mid, 21, 1, 54000000, true, T0);
  assert_int_equal(sb_snipe_judge(&sc, m, d, better, T0, &j), SB_V_ALERT);
  sb_mkts_live_remove(m, &better->uuid);
  /* Another seller at the same price: alerted. */
  const sb_live_t *other = list(m, mid, 22, 2, 60000000, true, T0);
  assert_int_equal(sb_snipe_judge(&sc, m, d, other, T0, &j), SB_V_ALERT);
  sb_mkts_live_remove(m, &other->uuid);
  /* The same seller in another market is another pair. */
  uint32_t mid2 = sb_mkts_intern(m, "HYPERION", "", "Hyperion");
  assert_int_not_equal(mid2, mid);
  assert_int_equal(sb_dedupe_seller_unit(d, sb_market_hash("HYPERION", ""), &ss), 0);
  assert_int_equal(sb_dedupe_seller_unit(d, mh, &ss), 60000000);
  sb_dedupe_free(d);
  sb_mkts_free(m);
}

static void test_dedupe_bounds_and_ttl(void **state) {
  (void)state;
  sb_dedupe_t *d = sb_dedupe_new(50, 1000);
  sb_uuid_t s = uid(2, 2);
  for (uint8_t i = 0; i < 120; i++) {
    sb_uuid_t u = uid(1, i);
    sb_dedupe_record(d, &u, 7, &s, 1000 - i, 10 + i);
  }
  size_t nu, np;
  sb_dedupe_size(d, &nu, &np);
  assert_int_equal(nu, 50); /* the oldest went first */
  assert_int_equal(np, 1);
  sb_uuid_t first = uid(1, 0), last = uid(1, 119);
  assert_false(sb_dedupe_has_uuid(d, &first));
  assert_true(sb_dedupe_has_uuid(d, &last));
  /* The pair keeps the lowest price per unit alerted. */
  assert_int_equal(sb_dedupe_seller_unit(d, 7, &s), 1000 - 119);
  assert_int_equal(sb_dedupe_seller_unit(d, 8, &s), 0);
  /* Older than the ttl: gone. */
  sb_dedupe_prune(d, 10 + 119 + 1001);
  sb_dedupe_size(d, &nu, &np);
  assert_int_equal(nu, 0);
  assert_int_equal(np, 0);
  assert_false(sb_dedupe_has_uuid(d, &last));
  /* Records of one key again and again stay bounded. */
  for (int i = 0; i < 100000; i++)
    sb_dedupe_record(d, &last, 7, &s, 5, 5000 + i);
  sb_dedupe_size(d, &nu, &np);
  assert_int_equal(nu, 1);
  assert_true(d->uuids.rcap <= 4096);
  sb_dedupe_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_median_iqm),
      cmocka_unit_test(test_clean_pairs_sellers_buyers_outliers),
      cmocka_unit_test(test_fmv_rules_and_evidence),
      cmocka_unit_test(test_manipulation_does_not_move_the_value),
      cmocka_unit_test(test_fees),
      cmocka_unit_test(test_sniper_verdicts),
      cmocka_unit_test(test_dedupe_bounds_and_ttl),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
