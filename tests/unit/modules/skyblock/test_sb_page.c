/* SkyBlock page parsing: the real captured page 0, the real auctions_ended
 * sales, the documentation's auction-by-uuid shape, and malformed input. */
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
#include "modules/skyblock/sb_page.c"
#include "souk/buf.h"
#include "souk/err.h"

#include <zlib.h>

#define FIX SOUK_TEST_FIXTURES "/hypixel/"

static char *slurp_gz(const char *rel, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s%s", FIX, rel);
  gzFile f = gzopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  souk_buf_t b = {0};
  char tmp[65536];
  int n;
  while ((n = gzread(f, tmp, sizeof tmp)) > 0)
    souk_buf_append(&b, tmp, (size_t)n);
  gzclose(f);
  *len = b.len;
  return souk_buf_steal(&b);
}

static char *dup_body(const char *s, size_t *len) {
  *len = strlen(s);
  return souk_memdup0(s, *len);
}

static void test_uuid(void **state) {
  (void)state;
  sb_uuid_t u, v;
  assert_int_equal(sb_uuid_parse("a6774985b93e44f7aeed3e513c09240b", 32, &u), 0);
  char hex[33];
  sb_uuid_hex(&u, hex);
  assert_string_equal(hex, "a6774985b93e44f7aeed3e513c09240b");
  assert_int_equal(sb_uuid_parse("A6774985-B93E-44F7-AEED-3E513C09240B", 36, &v), 0);
  assert_int_equal(sb_uuid_h64(&u), sb_uuid_h64(&v));
  assert_true(sb_uuid_eq(&u, &v));
  assert_int_equal(u.b[0], 0xa6);
  /* The hash covers all 16 bytes. */
  v = u;
  v.b[15] ^= 1;
  assert_int_not_equal(sb_uuid_h64(&u), sb_uuid_h64(&v));
  v = u;
  v.b[0] ^= 1;
  assert_int_not_equal(sb_uuid_h64(&u), sb_uuid_h64(&v));
  v = u;
  assert_int_equal(sb_uuid_parse("a6774985b93e44f7aeed3e513c09240", 31, &v), SOUK_EPARSE);
  assert_int_equal(sb_uuid_parse("a6774985b93e44f7aeed3e513c09240bb0", 34, &v), SOUK_EPARSE);
  assert_int_equal(sb_uuid_parse("g6774985b93e44f7aeed3e513c09240b", 32, &v), SOUK_EPARSE);
}

static void test_real_page_zero(void **state) {
  (void)state;
  size_t len;
  char *body = slurp_gz("auctions-page0-2025-06-08.json.gz", &len);
  sb_page_t p;
  sb_page_init(&p, SB_PAGE_AUCTIONS, body, len);
  assert_int_equal(sb_page_parse(&p), 0);
  assert_int_equal(p.page, 0);
  assert_int_equal(p.total_pages, 66);
  assert_int_equal(p.total_auctions, 65573);
  assert_int_equal(p.last_updated, 1749402460812LL);
  assert_int_equal(p.n, 1000);
  assert_int_equal(p.bad, 0);
  size_t bins = 0, with_bids = 0;
  for (size_t i = 0; i < p.n; i++) {
    const sb_listing_t *l = &p.l[i];
    bins += l->bin;
    assert_true(l->price >= 1);
    assert_true(l->end_ms > l->start_ms);
    assert_true(souk_json_type(&p.j, l->item_tok) == SOUK_JSON_STRING);
  }
  /* Counted from the fixture with Python: 878 BIN, the first auction. */
  assert_int_equal(bins, 878);
  char hex[33];
  sb_uuid_hex(&p.l[0].uuid, hex);
  assert_string_equal(hex, "a6774985b93e44f7aeed3e513c09240b");
  sb_uuid_hex(&p.l[0].seller, hex);
  assert_string_equal(hex, "c374b843f213487fab22f513cce23410");
  assert_int_equal(p.l[0].price, 200000);
  assert_int_equal(p.l[0].start_ms, 1749402460726LL);
  size_t n;
  const char *ib = souk_json_raw(&p.j, p.l[0].item_tok, &n);
  assert_true(n > 100 && memcmp(ib, "H4sIAAAAAAAA", 12) == 0);
  /* An auction with bids is priced at its highest bid. */
  for (size_t i = 0; i < p.n; i++) {
    if (p.l[i].bin) continue;
    int obj = souk_json_at(&p.j, souk_json_get(&p.j, 0, "auctions"), i);
    int64_t hb = 0, sb = 0;
    souk_json_i64(&p.j, souk_json_get(&p.j, obj, "highest_bid_amount"), &hb);
    souk_json_i64(&p.j, souk_json_get(&p.j, obj, "starting_bid"), &sb);
    assert_int_equal(p.l[i].price, hb > sb ? hb : sb);
    with_bids += hb > 0;
  }
  assert_int_equal(with_bids, 88);
  sb_page_free(&p);
}

static void test_real_ended(void **state) {
  (void)state;
  char path[512];
  snprintf(path, sizeof path, "%sauctions_ended-2025-08-09.auctions.json", FIX);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  souk_buf_t b = {0};
  souk_buf_puts(&b, "{\"success\":true,\"lastUpdated\":1754778411000,\"auctions\":");
  char tmp[65536];
  size_t got;
  while ((got = fread(tmp, 1, sizeof tmp, f)) > 0)
    souk_buf_append(&b, tmp, got);
  fclose(f);
  souk_buf_puts(&b, "}");
  size_t len = b.len;
  sb_page_t p;
  sb_page_init(&p, SB_PAGE_ENDED, souk_buf_steal(&b), len);
  assert_int_equal(sb_page_parse(&p), 0);
  assert_int_equal(p.n, 120);
  assert_int_equal(p.bad, 0);
  const sb_ended_t *e = &p.e[0];
  char hex[33];
  sb_uuid_hex(&e->auction, hex);
  assert_string_equal(hex, "e73ce0be127d428485ae69b7dcd5dd60");
  sb_uuid_hex(&e->seller, hex);
  assert_string_equal(hex, "451b0de4fa0441c9a54e6e3cd55da2e5");
  sb_uuid_hex(&e->buyer, hex);
  assert_string_equal(hex, "87dd23d947884466b4860bf3181b1212");
  assert_int_equal(e->ts_ms, 1754778351301LL);
  assert_int_equal(e->price, 569999);
  assert_true(e->bin);
  for (size_t i = 0; i < p.n; i++)
    assert_true(p.e[i].ts_ms >= 1754778351301LL && p.e[i].ts_ms <= 1754778410847LL);
  sb_page_free(&p);
}

static void test_doc_examples(void **state) {
  (void)state;
  char path[512];
  snprintf(path, sizeof path, "%sdoc-example-auction-by-uuid.json", FIX);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* The by-uuid answer has no page header; wrap its auction as a page. */
  souk_buf_t b = {0};
  souk_buf_puts(&b, "{\"success\":true,\"page\":0,\"totalPages\":1,\"totalAuctions\":1,"
                    "\"lastUpdated\":1573760802637,\"auctions\":");
  const char *arr = strstr(buf, "\"auctions\":") + 11;
  souk_buf_append(&b, arr, strlen(arr) - 2); /* without the final "}\n" */
  souk_buf_puts(&b, "}");
  size_t len = b.len;
  sb_page_t p;
  sb_page_init(&p, SB_PAGE_AUCTIONS, souk_buf_steal(&b), len);
  assert_int_equal(sb_page_parse(&p), 0);
  assert_int_equal(p.n, 1);
  /* item_bytes is the object {"type":0,"data":...}: kept for the decoder. */
  assert_int_equal(souk_json_type(&p.j, p.l[0].item_tok), SOUK_JSON_OBJECT);
  assert_int_equal(p.l[0].price, 7607533); /* not BIN: its highest bid */
  assert_false(p.l[0].bin);
  sb_page_free(&p);

  snprintf(path, sizeof path, "%sdoc-example-auctions_ended.json", FIX);
  f = fopen(path, "rb");
  assert_non_null(f);
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  char *body = souk_memdup0(buf, n);
  sb_page_init(&p, SB_PAGE_ENDED, body, n);
  assert_int_equal(sb_page_parse(&p), 0);
  /* It predates buyer_profile: not needed. */
  assert_int_equal(p.n, 1);
  assert_int_equal(p.last_updated, 1607456463916LL);
  assert_int_equal(p.e[0].price, 190000);
  sb_page_free(&p);
}

static void test_errors(void **state) {
  (void)state;
  sb_page_t p;
  size_t len;
  char *b = dup_body("{\"success\":false,\"cause\":\"Page not found\"}", &len);
  sb_page_init(&p, SB_PAGE_AUCTIONS, b, len);
  assert_int_equal(sb_page_parse(&p), SOUK_EPROTO);
  sb_page_free(&p);
  b = dup_body("{\"success\":true,\"page\":0,\"totalPag", &len);
  sb_page_init(&p, SB_PAGE_AUCTIONS, b, len);
  assert_int_equal(sb_page_parse(&p), SOUK_EPARSE);
  sb_page_free(&p);
  b = dup_body("{\"success\":true,\"page\":0,\"totalPages\":1,\"lastUpdated\":5,\"auctions\":[]}",
               &len);
  sb_page_init(&p, SB_PAGE_AUCTIONS, b, len);
  assert_int_equal(sb_page_parse(&p), SOUK_EPARSE); /* no totalAuctions */
  sb_page_free(&p);
  /* Bad auctions are skipped one by one; good ones are kept. */
  b = dup_body("{\"success\":true,\"page\":3,\"totalPages\":9,\"totalAuctions\":2,"
               "\"lastUpdated\":77,\"auctions\":["
               "{\"uuid\":\"zz\",\"auctioneer\":\"c374b843f213487fab22f513cce23410\","
               "\"start\":1,\"end\":2,\"starting_bid\":5,\"bin\":true,\"item_bytes\":\"x\"},"
               "{\"uuid\":\"a6774985b93e44f7aeed3e513c09240b\","
               "\"auctioneer\":\"c374b843f213487fab22f513cce23410\",\"start\":1,\"end\":2,"
               "\"starting_bid\":1.5E7,\"bin\":true,\"item_bytes\":\"x\"},"
               "{\"uuid\":\"a6774985b93e44f7aeed3e513c09240c\",\"auctioneer\":"
               "\"c374b843f213487fab22f513cce23410\",\"start\":1,\"end\":2,\"starting_bid\":0,"
               "\"bin\":true,\"item_bytes\":\"x\"},"
               "7, {\"uuid\":\"a6774985b93e44f7aeed3e513c09240d\"}]}",
               &len);
  sb_page_init(&p, SB_PAGE_AUCTIONS, b, len);
  assert_int_equal(sb_page_parse(&p), 0);
  assert_int_equal(p.page, 3);
  assert_int_equal(p.total_pages, 9);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.bad, 4);
  assert_int_equal(p.l[0].price, 15000000);
  sb_page_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_uuid),       cmocka_unit_test(test_real_page_zero),
      cmocka_unit_test(test_real_ended), cmocka_unit_test(test_doc_examples),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
