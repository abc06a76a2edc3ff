/* The SkyBlock engine over real pages: the captured page 0 decoded once
 * (a page seen again decodes nothing), a sweep's end forgetting what it
 * did not see, sales from auctions_ended, and a listing far below its
 * market's value alerted once, through the thread pool as in the module. */
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
#include "modules/skyblock/sb_engine.c"
#include "modules/skyblock/sb_fmv.c"
#include "modules/skyblock/sb_market.c"
#include "modules/skyblock/sb_page.c"
#include "modules/skyblock/sb_sniper.c"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/loop.h"

#include <zlib.h>

#define FIX SOUK_TEST_FIXTURES "/hypixel/"
#define LU  1749402460812LL

static char *page0_body(size_t *len) {
  gzFile f = gzopen(FIX "auctions-page0-2025-06-08.json.gz", "rb");
  assert_non_null(f);
  souk_buf_t b = {0};
  char tmp[65536];
  int n;
  while ((n = gzread(f, tmp, sizeof tmp)) > 0)
    souk_buf_append(&b, tmp, (size_t)n);
  gzclose(f);
  *len = b.len;
  return souk_buf_steal(&b);
}

/* The item_bytes of real auction i of page 0 (its text), and its bin flag. */
static char *item_of(int i, bool *bin) {
  size_t len;
  char *body = page0_body(&len);
  sb_page_t p;
  sb_page_init(&p, SB_PAGE_AUCTIONS, body, len);
  assert_int_equal(sb_page_parse(&p), 0);
  size_t n;
  const char *ib = souk_json_raw(&p.j, p.l[i].item_tok, &n);
  char *out = souk_memdup0(ib, n);
  if (bin) *bin = p.l[i].bin;
  sb_page_free(&p);
  return out;
}

typedef struct lst {
  unsigned id, seller;
  int64_t price, start;
  bool bin;
} lst_t;

static char *page_json(int64_t lu, const char *ib, const lst_t *v, size_t n, size_t *len) {
  souk_buf_t b = {0};
  souk_buf_printf(&b,
                  "{\"success\":true,\"page\":0,\"totalPages\":1,\"totalAuctions\":%zu,"
                  "\"lastUpdated\":%lld,\"auctions\":[",
                  n, (long long)lu);
  for (size_t i = 0; i < n; i++)
    souk_buf_printf(&b,
                    "%s{\"uuid\":\"%032x\",\"auctioneer\":\"%032x\",\"start\":%lld,\"end\":%lld,"
                    "\"starting_bid\":%lld,\"highest_bid_amount\":0,\"bin\":%s,"
                    "\"item_bytes\":\"%s\"}",
                    i ? "," : "", v[i].id, v[i].seller, (long long)v[i].start,
                    (long long)(v[i].start + 3600000), (long long)v[i].price,
                    v[i].bin ? "true" : "false", ib);
  souk_buf_puts(&b, "]}");
  *len = b.len;
  return souk_buf_steal(&b);
}

static char *ended_json(int64_t lu, const char *ib, size_t n, int64_t price, unsigned first,
                        size_t *len) {
  souk_buf_t b = {0};
  souk_buf_printf(&b, "{\"success\":true,\"lastUpdated\":%lld,\"auctions\":[", (long long)lu);
  for (size_t i = 0; i < n; i++)
    souk_buf_printf(&b,
                    "%s{\"auction_id\":\"%032x\",\"seller\":\"%032x\",\"buyer\":\"%032x\","
                    "\"timestamp\":%lld,\"price\":%lld,\"bin\":true,\"item_bytes\":\"%s\"}",
                    i ? "," : "", first + (unsigned)i, 0x5000u + first + (unsigned)i,
                    0x6000u + first + (unsigned)i, (long long)(lu - 1000 * (int64_t)i),
                    (long long)(price + (int64_t)i * 1000), ib);
  souk_buf_puts(&b, "]}");
  *len = b.len;
  return souk_buf_steal(&b);
}

typedef struct got {
  int alerts;
  sb_alert_t last;
  char key[128], attrs[128];
  int hours;
  int done;
  int last_rc;
} got_t;

static void on_alert(void *ud, const sb_alert_t *a) {
  got_t *g = ud;
  g->alerts++;
  g->last = *a;
  snprintf(g->key, sizeof g->key, "%s", a->key);
  snprintf(g->attrs, sizeof g->attrs, "%s", a->attrs);
}

static void on_hour(void *ud, sb_summary_t *s) {
  got_t *g = ud;
  g->hours++;
  sb_summary_free(s);
}

static sb_engine_t *engine(got_t *g) {
  sb_mkts_conf_t mc = {.ladder_size = 16,
                       .window_hours = 12,
                       .thin_wall = 3,
                       .min_sales = 3,
                       .live_cap = 100000,
                       .hour_grace_ms = 90000};
  sb_sniper_conf_t sc;
  sb_sniper_conf_defaults(&sc);
  sb_engine_hooks_t h = {on_alert, on_hour, g};
  return sb_engine_new(&mc, &sc, &h);
}

static void test_real_page_decoded_once(void **state) {
  (void)state;
  got_t g = {0};
  sb_engine_t *e = engine(&g);
  size_t len;
  char *body = page0_body(&len);
  int64_t lu;
  int total;
  assert_int_equal(sb_engine_ingest_sync(e, SB_REQ_PAGE, 1, body, len, &lu, &total), 0);
  assert_int_equal(lu, LU);
  assert_int_equal(total, 66);
  sb_engine_stats_t st;
  sb_engine_stats(e, &st);
  assert_int_equal(st.auctions_seen, 1000);
  assert_int_equal(st.auctions_new, 1000);
  assert_int_equal(st.auctions_bad, 0);
  /* Before a whole sweep was seen, only the auctions (not BIN) are judged
   * at once; young BIN listings wait for the sweep's end. */
  assert_int_equal(st.judged, 122);
  assert_int_equal(st.verdicts[SB_V_NOT_BIN], 122);
  /* Nothing is known about prices yet: no alert. */
  assert_int_equal(g.alerts, 0);
  sb_mkts_stats_t ms;
  sb_mkts_stats(sb_engine_store(e), &ms);
  assert_int_equal(ms.live, 1000);
  assert_int_equal(ms.live_bin, 878);
  assert_true(ms.markets > 300 && ms.markets < 1000);
  /* The same page again (the next refresh, same auctions): nothing new,
   * nothing decoded. */
  body = page0_body(&len);
  assert_int_equal(sb_engine_ingest_sync(e, SB_REQ_PAGE, 2, body, len, NULL, NULL), 0);
  sb_engine_stats(e, &st);
  assert_int_equal(st.auctions_seen, 2000);
  assert_int_equal(st.auctions_new, 1000);
  assert_int_equal(st.judged, 122);
  sb_engine_sweep_end(e, 2, true);
  sb_engine_stats(e, &st);
  assert_int_equal(st.removed_unseen, 0);
  /* The complete sweep judged the 878 that waited, once each. */
  assert_int_equal(st.judged, 1000);
  sb_engine_sweep_end(e, 2, true);
  sb_engine_stats(e, &st);
  assert_int_equal(st.judged, 1000);
  /* A sweep that saw 3 of them removes the other 997 at its end; an
   * incomplete one removes nothing. */
  bool bin;
  char *ib = item_of(0, &bin);
  lst_t few[] = {{1, 1, 5, LU, true}, {2, 2, 5, LU, true}, {3, 3, 5, LU, true}};
  body = page_json(LU + 60000, ib, few, 3, &len);
  assert_int_equal(sb_engine_ingest_sync(e, SB_REQ_PAGE, 3, body, len, NULL, NULL), 0);
  sb_engine_sweep_end(e, 3, false);
  sb_mkts_stats(sb_engine_store(e), &ms);
  assert_int_equal(ms.live, 1003);
  sb_engine_sweep_end(e, 3, true);
  sb_mkts_stats(sb_engine_store(e), &ms);
  assert_int_equal(ms.live, 3);
  souk_free(ib);
  sb_engine_free(e);
}

static void test_snipe_end_to_end(void **state) {
  (void)state;
  got_t g = {0};
  sb_engine_t *e = engine(&g);
  bool bin;
  char *ib = item_of(0, &bin); /* a real item: a "Void Conqueror Enderman Skin" */
  size_t len;
  /* Five listings from 10.1M and five sales around 10M by different
   * accounts: the market's value is known. */
  lst_t v[5];
  for (unsigned i = 0; i < 5; i++)
    v[i] = (lst_t){100 + i, 200 + i, 10100000 + i * 100000, LU - 600000, true};
  char *body = ended_json(LU, ib, 5, 10000000, 0x900, &len);
  assert_int_equal(sb_engine_ingest_sync(e, SB_REQ_ENDED, 1, body, len, NULL, NULL), 0);
  sb_engine_stats_t st;
  sb_engine_stats(e, &st);
  assert_int_equal(st.sales_new, 5);
  /* The first sweep after start: a cheap listing on page 0 waits for the
   * other pages, where a cheaper one is: judged against it, no alert. */
  lst_t first = {600, 301, 5000000, LU - 1000, true};
  body = page_json(LU, ib, &first, 1, &len);
  assert_int_equal(sb_engine_ingest_sync(e, SB_REQ_PAGE, 1, body, len, NULL, NULL), 0);
  lst_t cheaper[6];
  for (unsigned i = 0; i < 5; i++)
    cheaper[i] = v[i];
  cheaper[5] = (lst_t){601, 302, 4900000, LU - 900000, true};
  body = page_json(LU, ib, cheaper, 6, &len);
  assert_int_equal(sb_engine_ingest_sync(e, SB_REQ_PAGE, 1, body, len, NULL, NULL), 0);
  assert_int_equal(g.alerts, 0);
  sb_engine_sweep_end(e, 1, true);
  sb_engine_stats(e, &st);
  assert_int_equal(g.alerts, 0);
  assert_int_equal(st.verdicts[SB_V_LOW_PROFIT], 1);
  /* Both gone by the next sweep: the market is back to its five listings. */
  body = page_json(LU, ib, v, 5, &len);
  assert_int_equal(sb_engine_ingest_sync(e, SB_REQ_PAGE, 2, body, len, NULL, NULL), 0);
  sb_engine_sweep_end(e, 2, true);
  sb_mkts_stats_t ms;
  sb_mkts_stats(sb_engine_store(e), &ms);
  assert_int_equal(ms.live, 5);
  /* The same auctions_ended again (it overlaps between refreshes). */
  body = ended_json(LU, ib, 5, 10000000, 0x900, &len);
  sb_engine_ingest_sync(e, SB_REQ_ENDED, 1, body, len, NULL, NULL);
  sb_engine_stats(e, &st);
  assert_int_equal(st.sales_new, 5);
  assert_int_equal(g.alerts, 0);

  /* A new listing at 3M, through the thread pool as in the module. */
  lst_t snipe = {777, 300, 3000000, LU + 55000, true};
  body = page_json(LU + 60000, ib, &snipe, 1, &len);
  assert_int_equal(sb_engine_submit(e, SB_REQ_PAGE, 0, 3, body, len, 0, NULL, NULL), 0);
  while (sb_engine_busy(e))
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(g.alerts, 1);
  char hex[33];
  sb_uuid_hex(&g.last.uuid, hex);
  assert_string_equal(hex, "00000000000000000000000000000309");
  assert_int_equal(g.last.j.price, 3000000);
  assert_int_equal(g.last.j.fmv.method, SB_FMV_SALES);
  assert_int_equal(g.last.j.fmv.value, 10002000);
  /* The market's key comes from the decoded item, not from its name. */
  sb_decoder_t *d = sb_decoder_new();
  sb_item_t it;
  assert_int_equal(sb_item_decode(d, ib, strlen(ib), &it), 0);
  assert_string_equal(g.key, it.key);
  assert_string_equal(g.attrs, it.attrs);
  sb_decoder_free(d);
  sb_engine_stats(e, &st);
  assert_true(st.last_alert_ns > 0);
  /* Seen again by the next sweep: judged once only, no second alert. */
  body = page_json(LU + 120000, ib, &snipe, 1, &len);
  sb_engine_ingest_sync(e, SB_REQ_PAGE, 4, body, len, NULL, NULL);
  assert_int_equal(g.alerts, 1);
  /* Sold: its sale in auctions_ended needs no decoding, and it leaves the
   * live house. */
  souk_buf_t b = {0};
  souk_buf_printf(&b,
                  "{\"success\":true,\"lastUpdated\":%lld,\"auctions\":[{\"auction_id\":\"%032x\","
                  "\"seller\":\"%032x\",\"buyer\":\"%032x\",\"timestamp\":%lld,\"price\":3000000,"
                  "\"bin\":true,\"item_bytes\":\"not base64 at all\"}]}",
                  (long long)(LU + 120000), 777u, 300u, 301u, (long long)(LU + 100000));
  len = b.len;
  assert_int_equal(sb_engine_ingest_sync(e, SB_REQ_ENDED, 4, souk_buf_steal(&b), len, NULL, NULL),
                   0);
  sb_engine_stats(e, &st);
  assert_int_equal(st.sales_new, 6);
  assert_int_equal(st.auctions_bad, 0);
  sb_uuid_t u;
  sb_uuid_parse("00000000000000000000000000000309", 32, &u);
  assert_null(sb_mkts_live_find(sb_engine_store(e), &u));
  souk_free(ib);
  sb_engine_free(e);
}

static void on_done(void *ud, sb_req_kind_t kind, uint32_t sweep, int page, int rc, int64_t lu,
                    int total) {
  got_t *g = ud;
  (void)kind;
  (void)sweep;
  (void)page;
  (void)lu;
  (void)total;
  g->done++;
  g->last_rc = rc;
}

static void test_bad_pages_and_items(void **state) {
  (void)state;
  got_t g = {0};
  sb_engine_t *e = engine(&g);
  char *body = souk_strdup("{\"success\":false,\"cause\":\"Page not found\"}");
  assert_int_equal(sb_engine_submit(e, SB_REQ_PAGE, 9, 1, body, strlen(body), 0, on_done, &g), 0);
  while (sb_engine_busy(e))
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(g.done, 1);
  assert_int_equal(g.last_rc, SOUK_EPROTO);
  /* Hostile item_bytes: an error for that auction only. */
  lst_t v[2] = {{1, 1, 5, LU, true}, {2, 2, 5, LU, true}};
  size_t len;
  body = page_json(LU, "H4sIAAAAAAAA/////", v, 2, &len);
  assert_int_equal(sb_engine_submit(e, SB_REQ_PAGE, 0, 1, body, len, 0, on_done, &g), 0);
  while (sb_engine_busy(e))
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(g.done, 2);
  assert_int_equal(g.last_rc, 0);
  sb_engine_stats_t st;
  sb_engine_stats(e, &st);
  assert_int_equal(st.auctions_bad, 2);
  assert_int_equal(st.bad_pages, 1);
  sb_engine_free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_real_page_decoded_once),
      cmocka_unit_test(test_snipe_end_to_end),
      cmocka_unit_test(test_bad_pages_and_items),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk_loop_close();
  return rc;
}
