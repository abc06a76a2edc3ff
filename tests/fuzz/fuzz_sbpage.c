/* Fuzz the SkyBlock page parser and what the module does with a page: the
 * first byte says which endpoint's shape (auctions or auctions_ended) the
 * rest is parsed as; the page then goes through the engine's every step
 * (lookup, decoding the items, adding to the store, judging each listing,
 * the value, the hour's close), twice, so a second sight of the same
 * auctions runs too.  Hostile bytes may make a bad page or bad records,
 * never a crash, an overflow (UBSan) or a leak.
 *
 *   build/fuzz/tests/fuzz/fuzz_sbpage -dict=tests/fuzz/json.dict tests/fuzz/corpus/sbpage */
#include "../../src/modules/skyblock/sb_engine.c"
#include "../../src/modules/skyblock/sb_fmv.c"
#include "../../src/modules/skyblock/sb_market.c"
#include "../../src/modules/skyblock/sb_page.c"
#include "../../src/modules/skyblock/sb_sniper.c"
#include "souk/alloc.h"

#include <stdint.h>
#include <string.h>

static void on_hour(void *ud, sb_summary_t *s) {
  (void)ud;
  /* Every row's ladder is ascending and within its size. */
  for (size_t i = 0; i < s->n; i++) {
    SOUK_ASSERT(s->rows[i].nlad <= SB_LADDER_MAX);
    for (unsigned k = 1; k < s->rows[i].nlad; k++)
      SOUK_ASSERT(s->rows[i].lad[k - 1] <= s->rows[i].lad[k]);
  }
  sb_summary_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  sb_req_kind_t kind = data[0] & 1 ? SB_REQ_ENDED : SB_REQ_PAGE;
  sb_mkts_conf_t mc = {.ladder_size = 4,
                       .window_hours = 2,
                       .thin_wall = 1,
                       .min_sales = 1,
                       .live_cap = 1000,
                       .hour_grace_ms = 90000};
  sb_sniper_conf_t sc;
  sb_sniper_conf_defaults(&sc);
  sc.min_profit = 0;
  sc.min_margin_bp = 0;
  sc.min_sales = 0;
  sc.allow_thin = true;
  sb_engine_hooks_t h = {.hour_closed = on_hour};
  sb_engine_t *e = sb_engine_new(&mc, &sc, &h);
  for (int pass = 0; pass < 2; pass++) {
    char *body = souk_memdup0(data + 1, size - 1);
    sb_engine_ingest_sync(e, kind, 1, body, size - 1, NULL, NULL);
    sb_engine_sweep_end(e, 1, pass == 1);
  }
  /* Every market can be valued, and the store's counts agree with a walk. */
  sb_mkts_t *m = sb_engine_store(e);
  for (uint32_t i = 0; i < sb_mkts_count(m); i++) {
    if (!sb_mkts_used(m, i)) continue;
    sb_fmv_t f;
    sb_mkts_fmv(m, i, NULL, &f);
    SOUK_ASSERT(f.value >= 0);
  }
  size_t pos = 0, n = 0;
  while (sb_mkts_live_next(m, &pos))
    n++;
  sb_mkts_stats_t st;
  sb_mkts_stats(m, &st);
  SOUK_ASSERT(n == st.live);
  souk_buf_t ck = {0};
  sb_mkts_save(m, &ck);
  sb_mkts_t *r = sb_mkts_new(&mc);
  SOUK_ASSERT(sb_mkts_load(r, ck.data, ck.len) == 0);
  sb_mkts_free(r);
  souk_buf_free(&ck);
  sb_engine_free(e);
  return 0;
}
