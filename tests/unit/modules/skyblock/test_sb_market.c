/* The SkyBlock feature store: live ladders, sweeps, the open hour and its
 * close into a summary, the window, memory bounds, search and the
 * checkpoint. */
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
#include "souk/err.h"

#define H0        (490000LL)
#define T(h, min) ((H0 + (h)) * SB_HOUR_MS + (int64_t)(min)*60000)

static sb_mkts_conf_t conf(unsigned ladder, unsigned window) {
  return (sb_mkts_conf_t){.ladder_size = ladder,
                          .window_hours = window,
                          .thin_wall = 3,
                          .min_sales = 3,
                          .live_cap = 100,
                          .hour_grace_ms = 90000};
}

static sb_uuid_t uid(uint8_t a, uint16_t b) {
  sb_uuid_t u;
  memset(&u, 0, sizeof u);
  u.b[0] = a;
  u.b[1] = (uint8_t)(b >> 8);
  u.b[2] = (uint8_t)b;
  u.b[15] = 1;
  return u;
}

static const sb_live_t *add(sb_mkts_t *m, uint32_t mid, uint16_t id, int64_t price, uint32_t count,
                            bool bin, uint32_t gen) {
  sb_listing_t l = {.uuid = uid(1, id),
                    .seller = uid(2, id),
                    .price = price,
                    .bin = bin,
                    .start_ms = T(0, 0),
                    .end_ms = T(5, 0)};
  return sb_mkts_live_add(m, &l, mid, count, gen);
}

static void test_ladder_and_sweeps(void **state) {
  (void)state;
  sb_mkts_conf_t c = conf(4, 12);
  sb_mkts_t *m = sb_mkts_new(&c);
  sb_mkts_advance(m, T(0, 1), NULL, NULL);
  uint32_t a = sb_mkts_intern(m, "ASPECT_OF_THE_END", "", "Aspect of the End");
  assert_int_equal(sb_mkts_intern(m, "ASPECT_OF_THE_END", "", NULL), a);
  assert_int_equal(sb_mkts_find(m, "ASPECT_OF_THE_END", ""), a);
  assert_int_equal(sb_mkts_find(m, "ASPECT_OF_THE_END", "recomb"), UINT32_MAX);
  int64_t prices[] = {500, 300, 900, 100, 700, 200};
  for (uint16_t i = 0; i < 6; i++)
    assert_non_null(add(m, a, i, prices[i], 1, true, 1));
  add(m, a, 50, 10, 1, false, 1); /* an auction: not in the ladder */
  /* A stack of 4 at 1000 is 250 a unit (rounded up: 1001 is 251). */
  add(m, a, 60, 1001, 4, true, 1);
  sb_mkt_info_t in;
  assert_int_equal(sb_mkts_info(m, a, &in), 0);
  assert_int_equal(in.live_bin, 7);
  assert_int_equal(in.live_all, 8);
  assert_int_equal(in.nlad, 4);
  int64_t want[] = {100, 200, 251, 300};
  for (int i = 0; i < 4; i++)
    assert_int_equal(in.lad[i], want[i]);
  assert_int_equal(in.h_new, 7);
  assert_int_equal(in.h_listings, 7);
  /* Sold: leaves the ladder at once. */
  sb_uuid_t u3 = uid(1, 3);
  assert_true(sb_mkts_live_remove(m, &u3));
  assert_false(sb_mkts_live_remove(m, &u3));
  sb_mkts_info(m, a, &in);
  assert_int_equal(in.nlad, 3);
  assert_int_equal(in.lad[0], 200);
  /* Sweep 2 sees all but uuid 1 (300) and 4 (700); the sweep's end
   * removes them and refills the ladder. */
  for (uint16_t i = 0; i < 6; i++) {
    if (i == 1 || i == 4 || i == 3) continue;
    sb_uuid_t u = uid(1, i);
    const sb_live_t *l = sb_mkts_live_find(m, &u);
    assert_non_null(l);
    sb_mkts_live_touch(m, l, 2, l->price);
  }
  sb_uuid_t u50 = uid(1, 50), u60 = uid(1, 60);
  sb_mkts_live_touch(m, sb_mkts_live_find(m, &u50), 2, 40); /* a bid raised it */
  sb_mkts_live_touch(m, sb_mkts_live_find(m, &u60), 2, 1001);
  assert_int_equal(sb_mkts_sweep_done(m, 2), 2);
  sb_mkts_info(m, a, &in);
  assert_int_equal(in.live_bin, 4);
  assert_int_equal(in.nlad, 4);
  int64_t want2[] = {200, 251, 500, 900};
  for (int i = 0; i < 4; i++)
    assert_int_equal(in.lad[i], want2[i]);
  assert_int_equal(sb_mkts_live_find(m, &u50)->price, 40);
  /* Counted once in the hour, however often seen. */
  assert_int_equal(in.h_listings, 7);
  sb_mkts_stats_t st;
  sb_mkts_stats(m, &st);
  assert_int_equal(st.live, 5);
  assert_int_equal(st.live_bin, 4);
  size_t pos = 0, n = 0;
  while (sb_mkts_live_next(m, &pos))
    n++;
  assert_int_equal(n, 5);
  sb_mkts_free(m);
}

static void test_live_cap(void **state) {
  (void)state;
  sb_mkts_conf_t c = conf(16, 12);
  c.live_cap = 10;
  sb_mkts_t *m = sb_mkts_new(&c);
  sb_mkts_advance(m, T(0, 1), NULL, NULL);
  uint32_t a = sb_mkts_intern(m, "X", "", "X");
  for (uint16_t i = 0; i < 10; i++)
    assert_non_null(add(m, a, i, 5, 1, true, 1));
  assert_null(add(m, a, 10, 5, 1, true, 1));
  sb_mkts_stats_t st;
  sb_mkts_stats(m, &st);
  assert_int_equal(st.listings_refused, 1);
  assert_int_equal(st.live, 10);
  sb_mkts_free(m);
}

typedef struct closed {
  sb_summary_t *s[8];
  int n;
} closed_t;

static void on_closed(void *ud, sb_summary_t *s) {
  closed_t *c = ud;
  assert_true(c->n < 8);
  c->s[c->n++] = s;
}

static const sb_sumrow_t *row_of(const sb_summary_t *s, const char *key, const char *attrs) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->rows[i].key, key) && !strcmp(s->rows[i].attrs, attrs)) return &s->rows[i];
  return NULL;
}

static void test_hour_close_and_window(void **state) {
  (void)state;
  sb_mkts_conf_t c = conf(16, 2);
  sb_mkts_t *m = sb_mkts_new(&c);
  closed_t cl = {0};
  assert_int_equal(sb_mkts_advance(m, T(0, 5), on_closed, &cl), 0);
  uint32_t a = sb_mkts_intern(m, "PET:ENDER_DRAGON:LEGENDARY:L100", "held=PET_ITEM_TIER_BOOST",
                              "[Lvl 100] Ender Dragon");
  uint32_t b = sb_mkts_intern(m, "HYPERION", "", "Hyperion");
  add(m, a, 1, 600000000, 1, true, 1);
  add(m, a, 2, 650000000, 1, true, 1);
  /* Sales in hour 0: 4 units in two stacks, and a repeat of one. */
  int64_t sp[] = {100, 300, 200, 1000};
  for (uint16_t i = 0; i < 4; i++) {
    sb_uuid_t au = uid(7, i);
    assert_true(sb_mkts_sale_add(m, b, &au, T(0, 10 + i), sp[i] * (i == 3 ? 2 : 1), i == 3 ? 2 : 1,
                                 100 + i, 200 + i));
  }
  sb_uuid_t dup = uid(7, 0);
  assert_false(sb_mkts_sale_add(m, b, &dup, T(0, 10), 100, 1, 100, 200));
  assert_true(sb_mkts_sale_known(m, &dup));
  /* A late sale of hour 0 reported in hour 1's first minute still counts:
   * the hour closes 90 s after it ends. */
  assert_int_equal(sb_mkts_advance(m, T(1, 1), on_closed, &cl), 0);
  sb_uuid_t late = uid(7, 9);
  sb_mkts_sale_add(m, b, &late, T(0, 59) + 30000, 400, 1, 109, 209);
  assert_int_equal(sb_mkts_advance(m, T(1, 2), on_closed, &cl), 1);
  assert_int_equal(cl.n, 1);
  const sb_summary_t *s = cl.s[0];
  assert_int_equal(s->hour, H0);
  assert_int_equal(s->n, 2);
  const sb_sumrow_t *ra = row_of(s, "PET:ENDER_DRAGON:LEGENDARY:L100", "held=PET_ITEM_TIER_BOOST");
  assert_non_null(ra);
  assert_string_equal(ra->name, "[Lvl 100] Ender Dragon");
  assert_int_equal(ra->listings, 2);
  assert_int_equal(ra->new_listings, 2);
  assert_int_equal(ra->nlad, 2);
  assert_int_equal(ra->lad[0], 600000000);
  assert_int_equal(ra->lad[1], 650000000);
  assert_int_equal(ra->sales, 0);
  const sb_sumrow_t *rb = row_of(s, "HYPERION", "");
  assert_non_null(rb);
  assert_int_equal(rb->sales, 5);
  /* Units: 100, 300, 200, 1000, 400 -> sorted 100 200 300 400 1000. */
  assert_int_equal(rb->smin, 100);
  assert_int_equal(rb->smax, 1000);
  assert_int_equal(rb->smed, 300);
  assert_int_equal(rb->siqm, (200 + 300 + 400) / 3);
  assert_int_equal(rb->volume, 100 + 300 + 200 + 2000 + 400);
  assert_int_equal(rb->nlad, 0);
  /* The new hour starts empty, and the listing counts again when seen. */
  sb_mkt_info_t in;
  sb_mkts_info(m, a, &in);
  assert_int_equal(in.h_listings, 0);
  assert_int_equal(in.hours, 1);
  sb_uuid_t u1 = uid(1, 1);
  sb_mkts_live_touch(m, sb_mkts_live_find(m, &u1), 2, 600000000);
  sb_mkts_info(m, a, &in);
  assert_int_equal(in.h_listings, 1);
  assert_int_equal(in.h_new, 0);
  /* The window holds 2 closed hours: hour 0's sales and row go when hour
   * 2 closes after hour 3 opened... and a market with nothing left is
   * forgotten. */
  sb_mkts_advance(m, T(2, 2), on_closed, &cl);
  sb_mkts_advance(m, T(3, 2), on_closed, &cl);
  assert_int_equal(cl.n, 3);
  sb_mkts_stats_t st;
  sb_mkts_stats(m, &st);
  assert_int_equal(st.hours, 2);
  assert_int_equal(st.sales, 0);
  assert_int_equal(sb_mkts_find(m, "HYPERION", ""), UINT32_MAX);
  assert_int_equal(st.markets_forgotten, 1);
  assert_int_not_equal(
      sb_mkts_find(m, "PET:ENDER_DRAGON:LEGENDARY:L100", "held=PET_ITEM_TIER_BOOST"), UINT32_MAX);
  /* A big jump in data time closes the open hour once, with no empty
   * hours in between. */
  assert_int_equal(sb_mkts_advance(m, T(9, 0), on_closed, &cl), 1);
  sb_mkts_stats(m, &st);
  assert_int_equal(st.open_hour, H0 + 9);
  /* Time never goes back. */
  assert_int_equal(sb_mkts_advance(m, T(1, 0), on_closed, &cl), 0);
  /* Shrinking the window drops hours at once. */
  sb_mkts_set_window(m, 1);
  sb_mkts_stats(m, &st);
  assert_true(st.hours <= 1);
  for (int i = 0; i < cl.n; i++)
    sb_summary_free(cl.s[i]);
  sb_mkts_free(m);
}

static void test_value_from_the_window(void **state) {
  (void)state;
  sb_mkts_conf_t c = conf(16, 12);
  sb_mkts_t *m = sb_mkts_new(&c);
  sb_mkts_advance(m, T(0, 1), NULL, NULL);
  uint32_t a = sb_mkts_intern(m, "JUJU_SHORTBOW", "recomb", "Juju Shortbow");
  for (uint16_t i = 0; i < 5; i++) {
    sb_uuid_t au = uid(7, i);
    sb_mkts_sale_add(m, a, &au, T(0, 2 + i), 20000000 + i * 100000, 1, 100 + i, 200 + i);
  }
  const sb_live_t *cheap = add(m, a, 1, 12000000, 1, true, 1);
  add(m, a, 2, 21000000, 1, true, 1);
  add(m, a, 3, 22000000, 1, true, 1);
  add(m, a, 4, 23000000, 1, true, 1);
  sb_fmv_t f;
  /* Valued alone (/ah price): the cheap listing caps the sales median. */
  assert_int_equal(sb_mkts_fmv(m, a, NULL, &f), 12000000);
  assert_int_equal(f.method, SB_FMV_SALES_CAPPED);
  /* Judging the cheap listing leaves it out: the median of the sales. */
  assert_int_equal(sb_mkts_fmv(m, a, cheap, &f), 20200000);
  assert_int_equal(f.method, SB_FMV_SALES);
  assert_int_equal(f.live, 3);
  assert_false(f.thin);
  /* New sales invalidate the cached sales statistics. */
  for (uint16_t i = 5; i < 10; i++) {
    sb_uuid_t au = uid(7, i);
    sb_mkts_sale_add(m, a, &au, T(0, 20 + i), 19000000, 1, 100 + i, 200 + i);
  }
  assert_int_equal(sb_mkts_fmv(m, a, cheap, &f), 19000000 / 2 + 20000000 / 2);
  assert_int_equal(f.sales_clean, 10);
  sb_mkts_free(m);
}

static void test_search_and_activity(void **state) {
  (void)state;
  sb_mkts_conf_t c = conf(16, 12);
  sb_mkts_t *m = sb_mkts_new(&c);
  sb_mkts_advance(m, T(0, 1), NULL, NULL);
  uint32_t h = sb_mkts_intern(m, "HYPERION", "stars=5", "Heroic Hyperion");
  uint32_t h0 = sb_mkts_intern(m, "HYPERION", "", "Hyperion");
  uint32_t p = sb_mkts_intern(m, "PET:ENDER_DRAGON:LEGENDARY:L100", "", "[Lvl 100] Ender Dragon");
  add(m, h0, 1, 5, 1, true, 1);
  for (uint16_t i = 0; i < 3; i++) {
    sb_uuid_t au = uid(7, i);
    sb_mkts_sale_add(m, p, &au, T(0, 2), 5, 1, 1 + i, 10 + i);
  }
  uint32_t ids[8];
  assert_int_equal(sb_mkts_search(m, "hyper", ids, 8), 2);
  assert_int_equal(ids[0], h0); /* the one with a listing first */
  assert_int_equal(ids[1], h);
  assert_int_equal(sb_mkts_search(m, "hyperion stars=5", ids, 8), 1);
  assert_int_equal(ids[0], h);
  assert_int_equal(sb_mkts_search(m, "ender dragon", ids, 8), 1);
  assert_int_equal(sb_mkts_search(m, "ENDER_DRAGON:LEGENDARY", ids, 8), 1);
  assert_int_equal(sb_mkts_search(m, "nope", ids, 8), 0);
  assert_int_equal(sb_mkts_most_active(m, ids, 8), 2);
  assert_int_equal(ids[0], p);
  assert_int_equal(ids[1], h0);
  sb_mkts_free(m);
}

static void test_checkpoint_round_trip(void **state) {
  (void)state;
  sb_mkts_conf_t c = conf(16, 2);
  sb_mkts_t *m = sb_mkts_new(&c);
  closed_t cl = {0};
  sb_mkts_advance(m, T(0, 1), on_closed, &cl);
  uint32_t gone = sb_mkts_intern(m, "GONE", "", "Gone");
  uint32_t a = sb_mkts_intern(m, "A", "", "Item A");
  uint32_t b = sb_mkts_intern(m, "B", "recomb", "Item B");
  add(m, gone, 9, 5, 1, true, 1);
  add(m, a, 1, 900, 1, true, 1);
  add(m, b, 2, 5000, 1, true, 1);
  sb_uuid_t g = uid(1, 9);
  sb_mkts_live_remove(m, &g);
  sb_mkts_advance(m, T(1, 5), on_closed, &cl); /* hour 0 closes */
  sb_mkts_advance(m, T(2, 5), on_closed, &cl);
  sb_mkts_advance(m, T(3, 5), on_closed, &cl); /* hour 0 leaves: "GONE" is forgotten */
  assert_int_equal(sb_mkts_find(m, "GONE", ""), UINT32_MAX);
  for (uint16_t i = 0; i < 6; i++) {
    sb_uuid_t au = uid(7, i);
    sb_mkts_sale_add(m, a, &au, T(3, 6 + i), 1000 + i, 1, 100 + i, 200 + i);
  }
  for (uint16_t i = 6; i < 9; i++) {
    sb_uuid_t au = uid(7, i);
    sb_mkts_sale_add(m, b, &au, T(3, 10 + i), 7000, 1, 100 + i, 200 + i);
  }
  sb_uuid_t u2 = uid(1, 2);
  sb_mkts_live_touch(m, sb_mkts_live_find(m, &u2), 3, 5000); /* an open hour listing */
  souk_buf_t buf = {0};
  sb_mkts_save(m, &buf);
  sb_summary_t *open1 = sb_mkts_open_summary(m);
  sb_fmv_t f1, f2;
  sb_mkts_fmv(m, a, NULL, &f1);

  sb_mkts_t *r = sb_mkts_new(&c);
  assert_int_equal(sb_mkts_load(r, buf.data, buf.len), 0);
  sb_mkts_stats_t s1, s2;
  sb_mkts_stats(m, &s1);
  sb_mkts_stats(r, &s2);
  assert_int_equal(s2.hours, s1.hours);
  assert_int_equal(s2.sales, s1.sales);
  assert_int_equal(s2.open_hour, s1.open_hour);
  assert_int_equal(s2.data_now, s1.data_now);
  assert_int_equal(s2.live, 0); /* the next sweep brings them back */
  assert_int_equal(sb_mkts_find(r, "A", ""), a);
  assert_int_equal(sb_mkts_find(r, "B", "recomb"), b);
  assert_string_equal(sb_mkts_name(r, b), "Item B");
  /* The open hour's rows survive the restart. */
  sb_summary_t *open2 = sb_mkts_open_summary(r);
  assert_int_equal(open2->n, open1->n);
  const sb_sumrow_t *x = row_of(open1, "B", "recomb"), *y = row_of(open2, "B", "recomb");
  assert_non_null(y);
  assert_int_equal(y->listings, x->listings);
  assert_int_equal(y->nlad, 1);
  assert_int_equal(y->lad[0], 5000);
  assert_int_equal(y->sales, 3);
  assert_int_equal(y->smed, 7000);
  /* Sales and hourly floors survive: the value is the same. */
  sb_mkts_fmv(r, a, NULL, &f2);
  assert_int_equal(f2.sales_clean, f1.sales_clean);
  assert_int_equal(f2.sales_median, f1.sales_median);
  /* Sales already seen are still refused after the restart. */
  sb_uuid_t au0 = uid(7, 0);
  assert_true(sb_mkts_sale_known(r, &au0));
  /* A new market after the restart takes the free id, not an old one. */
  uint32_t n = sb_mkts_intern(r, "NEW", "", "New");
  assert_int_equal(n, gone);
  /* Damaged or foreign input: refused, the store left empty. */
  sb_mkts_t *z = sb_mkts_new(&c);
  assert_int_equal(sb_mkts_load(z, buf.data, buf.len - 3), SOUK_EPARSE);
  sb_mkts_stats(z, &s2);
  assert_int_equal(s2.markets, 0);
  assert_int_equal(s2.hours, 0);
  assert_int_equal(sb_mkts_load(z, "nope", 4), SOUK_EPARSE);
  ((char *)buf.data)[4] = 9;
  assert_int_equal(sb_mkts_load(z, buf.data, buf.len), SOUK_ENOTSUP);
  for (size_t cut = 0; cut < buf.len; cut += 7) {
    sb_mkts_t *t = sb_mkts_new(&c);
    ((char *)buf.data)[4] = 1;
    int rc = sb_mkts_load(t, buf.data, cut);
    assert_true(rc == SOUK_EPARSE);
    sb_mkts_free(t);
  }
  sb_mkts_free(z);
  sb_summary_free(open1);
  sb_summary_free(open2);
  for (int i = 0; i < cl.n; i++)
    sb_summary_free(cl.s[i]);
  souk_buf_free(&buf);
  sb_mkts_free(r);
  sb_mkts_free(m);
}

/* An hour with sales and no listing at all (the simulated market's first
 * hours are like this): rows without a ladder, and no ladder array. */
static void test_hour_of_sales_only(void **state) {
  (void)state;
  sb_mkts_conf_t c = conf(16, 12);
  sb_mkts_t *m = sb_mkts_new(&c);
  closed_t cl = {0};
  sb_mkts_advance(m, T(0, 1), on_closed, &cl);
  uint32_t a = sb_mkts_intern(m, "A", "", "A");
  for (uint16_t i = 0; i < 3; i++) {
    sb_uuid_t au = uid(7, i);
    sb_mkts_sale_add(m, a, &au, T(0, 5 + i), 100 + i, 1, 1 + i, 9 + i);
  }
  sb_mkts_advance(m, T(1, 5), on_closed, &cl);
  assert_int_equal(cl.n, 1);
  assert_int_equal(cl.s[0]->n, 1);
  assert_int_equal(cl.s[0]->rows[0].nlad, 0);
  assert_int_equal(cl.s[0]->rows[0].sales, 3);
  assert_int_equal(cl.s[0]->rows[0].smed, 101);
  souk_buf_t b = {0};
  sb_mkts_save(m, &b);
  sb_mkts_t *r = sb_mkts_new(&c);
  assert_int_equal(sb_mkts_load(r, b.data, b.len), 0);
  souk_buf_free(&b);
  sb_mkts_free(r);
  sb_summary_free(cl.s[0]);
  sb_mkts_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ladder_and_sweeps),     cmocka_unit_test(test_live_cap),
      cmocka_unit_test(test_hour_close_and_window), cmocka_unit_test(test_value_from_the_window),
      cmocka_unit_test(test_search_and_activity),   cmocka_unit_test(test_checkpoint_round_trip),
      cmocka_unit_test(test_hour_of_sales_only),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
