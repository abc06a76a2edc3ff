/* The SkyBlock module's targets, measured (issue 12):
 *
 *   1. A full sweep of 66 pages x 1,000 auctions, cold (every auction new):
 *      parse + decode + ladder update within 0.3 s of CPU on one core, and
 *      the whole process's peak RSS under 64 MB; where the time goes, per
 *      stage.
 *   2. From the last byte of page 0 to the alert request queued: under
 *      5 ms, through the thread pool as in the module.
 *   3. Steady RSS with a sweep every (simulated) minute for longer than
 *      the window: flat once the window is full.
 *
 * Pages are synthetic, made like the fake Hypixel makes them: every auction
 * copies one of the captured page's real auctions (tests/fixtures/hypixel,
 * its item_bytes, name, lore and tier, so the bytes per page are real),
 * with a new uuid, a seller from a pool, and a price of the real starting
 * bid times a log-normal factor.  Building a page's JSON is not counted:
 * only what the module does with it.
 *
 *   build/release/bench/skyblock_sweep_bench [pages] [minutes] [window_hours]
 * Defaults 66, 90 and 1 (the window is full after an hour; 30 more sweeps
 * show whether memory stays flat).  Figures go to stdout and, as JSON, to
 * bench/out/skyblock_sweep.json. */
#include "../src/modules/skyblock/sb_engine.c"
#include "../src/modules/skyblock/sb_fmv.c"
#include "../src/modules/skyblock/sb_market.c"
#include "../src/modules/skyblock/sb_page.c"
#include "../src/modules/skyblock/sb_sniper.c"
#include "souk/buf.h"
#include "souk/json.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#define PAGE0 SOUK_FIXTURES "/hypixel/auctions-page0-2025-06-08.json.gz"

/* ---- clocks and memory ----------------------------------------------------------- */

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* VmRSS or VmHWM of this process, in kB. */
static long status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, field, n) && line[n] == ':') v = strtol(line + n + 1, NULL, 10);
  fclose(f);
  return v;
}

/* ---- the real page's auctions as templates --------------------------------------- */

typedef struct tmpl {
  char *name, *lore, *extra, *cats, *cat, *tier, *ib; /* raw JSON text */
  int64_t bid;
  bool bin;
} tmpl_t;

static tmpl_t *T;
static size_t NT;

static char *raw_of(const souk_json_t *j, int t) {
  /* A value's JSON text: a string with its quotes, or a container. */
  if (t < 0) return souk_strdup("null");
  const souk_json_tok_t *k = &j->toks[t];
  if (k->type == SOUK_JSON_STRING) return souk_strndup(j->src + k->start - 1, k->len + 2);
  if (k->type == SOUK_JSON_ARRAY || k->type == SOUK_JSON_OBJECT) {
    /* Up to the start of the next value, trimmed back to the closing bracket. */
    int next = (int)k->next;
    size_t end = next < (int)j->ntoks ? j->toks[next].start : j->len;
    char close = k->type == SOUK_JSON_ARRAY ? ']' : '}';
    while (end > k->start && j->src[end - 1] != close)
      end--;
    return souk_strndup(j->src + k->start, end - k->start);
  }
  return souk_strndup(j->src + k->start, k->len);
}

static void load_templates(void) {
  gzFile f = gzopen(PAGE0, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", PAGE0);
    exit(1);
  }
  souk_buf_t b = {0};
  char tmp[65536];
  int n;
  while ((n = gzread(f, tmp, sizeof tmp)) > 0)
    souk_buf_append(&b, tmp, (size_t)n);
  gzclose(f);
  souk_json_t j = {0};
  if (souk_json_parse(&j, b.data, b.len)) exit(1);
  int arr = souk_json_get(&j, 0, "auctions");
  NT = souk_json_count(&j, arr);
  T = souk_calloc(NT, sizeof *T);
  size_t i = 0;
  for (int t = souk_json_first(&j, arr); t >= 0 && i < NT; t = souk_json_skip(&j, t), i++) {
    tmpl_t *x = &T[i];
    x->name = raw_of(&j, souk_json_get(&j, t, "item_name"));
    x->lore = raw_of(&j, souk_json_get(&j, t, "item_lore"));
    x->extra = raw_of(&j, souk_json_get(&j, t, "extra"));
    x->cats = raw_of(&j, souk_json_get(&j, t, "categories"));
    x->cat = raw_of(&j, souk_json_get(&j, t, "category"));
    x->tier = raw_of(&j, souk_json_get(&j, t, "tier"));
    x->ib = raw_of(&j, souk_json_get(&j, t, "item_bytes"));
    souk_json_i64(&j, souk_json_get(&j, t, "starting_bid"), &x->bid);
    souk_json_bool(&j, souk_json_get(&j, t, "bin"), &x->bin);
  }
  souk_json_free(&j);
  souk_buf_free(&b);
}

/* ---- the synthetic house ------------------------------------------------------------ */

typedef struct auc {
  uint64_t hi, lo, seller;
  uint32_t t;
  int64_t price, start, end;
} auc_t;

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static double rnd01(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }
static double lognorm(double sigma) {
  double u = rnd01(), v = rnd01();
  if (u < 1e-12) u = 1e-12;
  return exp(sigma * sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

static auc_t *A;
static size_t NA;

static auc_t make(int64_t start) {
  uint32_t t = (uint32_t)(rnd() % NT);
  int64_t p = (int64_t)((double)T[t].bid * lognorm(0.25));
  return (auc_t){rnd(), rnd(), rnd() % 30000, t, p < 1 ? 1 : p, start, start + 6 * 3600000};
}

/* Page p of the house at lastUpdated lu: most recent first. */
static char *page_json(size_t p, size_t pages, int64_t lu, size_t *len) {
  souk_buf_t b = {0};
  souk_buf_reserve(&b, 2600000);
  souk_buf_printf(&b,
                  "{\"success\":true,\"page\":%zu,\"totalPages\":%zu,\"totalAuctions\":%zu,"
                  "\"lastUpdated\":%lld,\"auctions\":[",
                  p, pages, NA, (long long)lu);
  size_t lo = p * 1000, hi = lo + 1000 < NA ? lo + 1000 : NA;
  for (size_t i = lo; i < hi; i++) {
    const auc_t *a = &A[NA - 1 - i];
    const tmpl_t *x = &T[a->t];
    souk_buf_printf(&b,
                    "%s{\"uuid\":\"%016llx%016llx\",\"auctioneer\":\"%016llx%016llx\","
                    "\"profile_id\":\"%016llx%016llx\",\"coop\":[\"%016llx%016llx\"],"
                    "\"start\":%lld,\"end\":%lld,\"item_name\":%s,\"item_lore\":%s,\"extra\":%s,"
                    "\"categories\":%s,\"category\":%s,\"tier\":%s,\"starting_bid\":%lld,"
                    "\"item_bytes\":%s,\"claimed\":false,\"claimed_bidders\":[],"
                    "\"highest_bid_amount\":0,\"last_updated\":%lld,\"bin\":%s,\"bids\":[]}",
                    i > lo ? "," : "", (unsigned long long)a->hi, (unsigned long long)a->lo,
                    (unsigned long long)a->seller, (unsigned long long)a->seller * 7,
                    (unsigned long long)a->seller * 3, (unsigned long long)a->seller,
                    (unsigned long long)a->seller, (unsigned long long)a->seller * 7,
                    (long long)a->start, (long long)a->end, x->name, x->lore, x->extra, x->cats,
                    x->cat, x->tier, (long long)a->price, x->ib, (long long)a->start,
                    x->bin ? "true" : "false");
  }
  souk_buf_puts(&b, "]}");
  *len = b.len;
  return souk_buf_steal(&b);
}

/* An auctions_ended page: n sales of random templates at their price,
 * plus `snipe_sales` sales of template st at price sp by distinct accounts. */
static char *ended_json(int64_t lu, size_t n, uint32_t st, int64_t sp, size_t snipe_sales,
                        size_t *len) {
  souk_buf_t b = {0};
  souk_buf_printf(&b, "{\"success\":true,\"lastUpdated\":%lld,\"auctions\":[", (long long)lu);
  for (size_t i = 0; i < n + snipe_sales; i++) {
    uint32_t t = i < n ? (uint32_t)(rnd() % NT) : st;
    int64_t price = i < n ? (int64_t)((double)T[t].bid * lognorm(0.1)) : sp + (int64_t)i;
    souk_buf_printf(&b,
                    "%s{\"auction_id\":\"%016llx%016llx\",\"seller\":\"%016llx%016llx\","
                    "\"buyer\":\"%016llx%016llx\",\"timestamp\":%lld,\"price\":%lld,\"bin\":true,"
                    "\"item_bytes\":%s}",
                    i ? "," : "", (unsigned long long)rnd(), (unsigned long long)rnd(),
                    (unsigned long long)rnd(), (unsigned long long)rnd(), (unsigned long long)rnd(),
                    (unsigned long long)rnd(), (long long)(lu - 1000 - (int64_t)(rnd() % 50000)),
                    (long long)(price < 1 ? 1 : price), T[t].ib);
  }
  souk_buf_puts(&b, "]}");
  *len = b.len;
  return souk_buf_steal(&b);
}

/* ---- the measurements --------------------------------------------------------------- */

typedef struct stages {
  double json, records, lookup, b64, gunzip, nbt, apply, total;
} stages_t;

static uint64_t alerts;
static uint64_t alert_ns_sum, alert_ns_n, alert_ns_max;

static void on_alert(void *ud, const sb_alert_t *a) {
  (void)ud;
  (void)a;
  alerts++;
}

/* One page through the engine's steps on this thread, each timed.  The
 * tokens are timed alone first (on a throwaway parse), then the page is
 * parsed as the engine parses it: the records are the difference, and the
 * total counts one tokenisation. */
static int ingest_timed(sb_engine_t *e, sb_req_kind_t kind, uint32_t sweep, char *body, size_t len,
                        stages_t *st) {
  job_t *j = souk_calloc(1, sizeof *j);
  j->e = e;
  j->kind = kind;
  j->sweep = sweep;
  sb_page_init(&j->pg, kind == SB_REQ_ENDED ? SB_PAGE_ENDED : SB_PAGE_AUCTIONS, body, len);
  e->busy++;
  souk_json_t alone = {0};
  double a0 = cpu_s();
  souk_json_parse(&alone, j->pg.body, j->pg.len);
  double json = cpu_s() - a0;
  souk_json_free(&alone);
  double t0 = cpu_s();
  int rc = sb_page_parse(&j->pg);
  double t1 = cpu_s();
  st->json += json;
  st->records += (t1 - t0) - json;
  if (!rc) {
    lookup(j);
    double t2 = cpu_s();
    st->lookup += t2 - t1;
    if (j->nfr) {
      sb_decoder_t *d = dec_take(e);
      decode(j, d);
      double t3 = cpu_s();
      dec_give(e, d);
      apply(j);
      st->apply += cpu_s() - t3;
    }
  }
  st->total += cpu_s() - t0;
  j->rc = rc;
  finish(j);
  return rc;
}

/* The decode stages alone, over every item_bytes of the page (the same
 * work as decode() does for new auctions). */
static void decode_stages(char *body, size_t len, stages_t *st) {
  sb_page_t p;
  sb_page_init(&p, SB_PAGE_AUCTIONS, body, len);
  if (sb_page_parse(&p)) exit(1);
  sb_decoder_t *d = sb_decoder_new();
  for (size_t i = 0; i < p.n; i++) {
    size_t n;
    const char *raw = souk_json_raw(&p.j, p.l[i].item_tok, &n);
    const uint8_t *gz, *nbt;
    size_t gzn, nbtn;
    sb_item_t it;
    double t0 = cpu_s();
    if (sb_decode_base64(d, raw, n, &gz, &gzn)) continue;
    double t1 = cpu_s();
    if (sb_decode_gunzip(d, gz, gzn, &nbt, &nbtn)) continue;
    double t2 = cpu_s();
    sb_item_from_nbt(d, nbt, nbtn, &it);
    double t3 = cpu_s();
    st->b64 += t1 - t0;
    st->gunzip += t2 - t1;
    st->nbt += t3 - t2;
  }
  sb_decoder_free(d);
  sb_page_free(&p);
}

static sb_engine_t *engine(unsigned window) {
  sb_mkts_conf_t mc = {.ladder_size = 16,
                       .window_hours = window,
                       .thin_wall = 3,
                       .min_sales = 5,
                       .live_cap = 200000,
                       .hour_grace_ms = 90000};
  sb_sniper_conf_t sc;
  sb_sniper_conf_defaults(&sc);
  sb_engine_hooks_t h = {.alert = on_alert};
  return sb_engine_new(&mc, &sc, &h);
}

static void mark_alert(void *ud, const sb_alert_t *a) {
  (void)a;
  uint64_t arrived = *(uint64_t *)ud;
  uint64_t ns = mono_ns() - arrived;
  alert_ns_sum += ns;
  alert_ns_n++;
  if (ns > alert_ns_max) alert_ns_max = ns;
}

int main(int argc, char **argv) {
  size_t pages = argc > 1 ? (size_t)atoi(argv[1]) : 66;
  int minutes = argc > 2 ? atoi(argv[2]) : 90;
  unsigned window = argc > 3 ? (unsigned)atoi(argv[3]) : 1;
  load_templates();
  long rss_base = status_kb("VmRSS");
  NA = pages * 1000;
  A = souk_calloc(NA + 100000, sizeof *A);
  int64_t lu = 1800000000000LL;
  for (size_t i = 0; i < NA; i++)
    A[i] = make(lu - 6 * 3600000 + (int64_t)i * 300);

  /* 1. The cold sweep. */
  sb_engine_t *e = engine(window);
  stages_t st = {0}, ds = {0};
  double gen = 0;
  for (size_t p = 0; p < pages; p++) {
    double g0 = cpu_s();
    size_t len;
    char *body = page_json(p, pages, lu, &len);
    gen += cpu_s() - g0;
    if (p < 8) {
      /* The decode stages on a copy of a few pages (for the breakdown). */
      decode_stages(souk_memdup0(body, len), len, &ds);
    }
    ingest_timed(e, SB_REQ_PAGE, 1, body, len, &st);
  }
  sb_engine_sweep_end(e, 1, true);
  long hwm_cold = status_kb("VmHWM");
  sb_engine_stats_t es;
  sb_engine_stats(e, &es);
  double per_auction_us = st.total / (double)NA * 1e6;
  double dscale = (double)pages / (pages < 8 ? (double)pages : 8.0);
  printf("cold sweep: %zu pages, %zu auctions (%" PRIu64 " decoded, %" PRIu64 " bad)\n", pages, NA,
         es.auctions_new, es.auctions_bad);
  printf("  CPU: %.3f s (target 0.3 s), %.2f us an auction, %.1f ms a page\n", st.total,
         per_auction_us, st.total / (double)pages * 1e3);
  printf("  stages: JSON tokens %.3f s, records %.3f s, lookup %.3f s, decode %.3f s "
         "(base64 %.3f, gunzip %.3f, NBT+key %.3f), add+judge %.3f s\n",
         st.json, st.records, st.lookup, st.total - st.json - st.records - st.lookup - st.apply,
         ds.b64 * dscale, ds.gunzip * dscale, ds.nbt * dscale, st.apply);
  printf("  peak RSS of the process: %.1f MB (target 64 MB; %.1f MB before the sweep)\n",
         (double)hwm_cold / 1024, (double)rss_base / 1024);
  printf("  (building the pages' JSON, not counted: %.3f s)\n", gen);

  /* 2. Page 0 to the alert queued, through the thread pool. */
  uint64_t arrived = 0;
  sb_engine_hooks_t h2 = {.alert = mark_alert, .ud = &arrived};
  e->h = h2;
  uint32_t st_t = 0;
  uint64_t stage_ns[4] = {0};
  while (T[st_t].bid < 5000000 || !T[st_t].bin)
    st_t++;
  for (int run = 0; run < 20; run++) {
    lu += 60000;
    size_t len;
    /* The market of template st_t has a value: five clean sales. */
    char *ended = ended_json(lu, 100, st_t, T[st_t].bid, 6, &len);
    sb_engine_ingest_sync(e, SB_REQ_ENDED, 2, ended, len, NULL, NULL);
    /* Page 0: 250 new listings, one of them a snipe of st_t. */
    for (int k = 0; k < 250; k++) {
      auc_t a = make(lu - (int64_t)(rnd() % 50000));
      if (k == 0) {
        a.t = st_t;
        a.price = T[st_t].bid / 10;
      }
      A[NA++] = a;
    }
    char *body = page_json(0, pages, lu, &len);
    arrived = mono_ns();
    sb_engine_submit(e, SB_REQ_PAGE, 0, 2, body, len, arrived, NULL, NULL);
    while (sb_engine_busy(e))
      uv_run(souk_loop(), UV_RUN_ONCE);
    /* Bought at once: the next run's snipe is not capped by this one. */
    char hex[40];
    snprintf(hex, sizeof hex, "%016llx%016llx", (unsigned long long)A[NA - 250].hi,
             (unsigned long long)A[NA - 250].lo);
    sb_uuid_t u;
    sb_uuid_parse(hex, 32, &u);
    sb_mkts_live_remove(sb_engine_store(e), &u);
    memmove(&A[NA - 250], &A[NA - 249], 249 * sizeof *A);
    NA--;
    sb_engine_stats(e, &es);
    stage_ns[0] += es.last_parse_ns;
    stage_ns[1] += es.last_lookup_ns;
    stage_ns[2] += es.last_decode_ns;
    stage_ns[3] += es.last_apply_ns;
  }
  printf("page 0 to alert queued (thread pool, %" PRIu64 " alerts): mean %.2f ms, worst %.2f ms "
         "(target 5 ms)\n",
         alert_ns_n, alert_ns_n ? (double)alert_ns_sum / (double)alert_ns_n / 1e6 : 0.0,
         (double)alert_ns_max / 1e6);
  sb_engine_stats(e, &es);
  printf("  verdicts:");
  for (int v = 0; v < SB_V__COUNT; v++)
    printf(" %s %" PRIu64, sb_verdict_name((sb_verdict_t)v), es.verdicts[v]);
  printf("\n");
  printf("  where it goes (mean of 20 pages of 1,000 with 250 new): pool wait + parse %.2f ms, "
         "lookup %.2f ms, decode in pieces %.2f ms, add + judge %.2f ms\n",
         (double)stage_ns[0] / 20e6, (double)stage_ns[1] / 20e6, (double)stage_ns[2] / 20e6,
         (double)stage_ns[3] / 20e6);
  /* The same work without the thread pool's hops: one page, this thread. */
  double sync_ms = 0;
  for (int run = 0; run < 20; run++) {
    lu += 60000;
    for (int k = 0; k < 250; k++)
      A[NA++] = make(lu - (int64_t)(rnd() % 50000));
    size_t len;
    char *body = page_json(0, pages, lu, &len);
    uint64_t t0 = mono_ns();
    sb_engine_ingest_sync(e, SB_REQ_PAGE, 2, body, len, NULL, NULL);
    sync_ms += (double)(mono_ns() - t0) / 1e6;
  }
  printf("  the same page on one thread, no pool: %.2f ms (the work; the rest is waiting for "
         "threads)\n",
         sync_ms / 20);
  sb_engine_free(e);

  /* 3. Steady RSS: a sweep every simulated minute. */
  NA = pages * 1000;
  e = engine(window);
  printf("steady state: a sweep of %zu pages every simulated minute, window %u h\n", pages, window);
  long rss_at[256];
  int nrss = 0;
  double warm_cpu = 0;
  for (int m = 0; m < minutes; m++) {
    lu += 60000;
    /* The house moves: 120 sold, 130 expire, 250 new. */
    size_t sold = 120, gone = 130;
    memmove(A, A + sold + gone, (NA - sold - gone) * sizeof *A);
    NA -= sold + gone;
    for (int k = 0; k < 250; k++)
      A[NA++] = make(lu - (int64_t)(rnd() % 60000));
    size_t len;
    char *ended = ended_json(lu, 120, 0, 1, 0, &len);
    stages_t w = {0};
    ingest_timed(e, SB_REQ_ENDED, (uint32_t)m + 10, ended, len, &w);
    for (size_t p = 0; p < pages; p++) {
      char *body = page_json(p, pages, lu, &len);
      ingest_timed(e, SB_REQ_PAGE, (uint32_t)m + 10, body, len, &w);
    }
    sb_engine_sweep_end(e, (uint32_t)m + 10, true);
    if (m > 0) warm_cpu += w.total;
    if (m % 10 == 9 && nrss < 256) {
      rss_at[nrss] = status_kb("VmRSS");
      sb_mkts_stats_t ms;
      sb_mkts_stats(sb_engine_store(e), &ms);
      printf("  minute %3d: RSS %.1f MB, store ~%.1f MB, %zu live, %zu items, %zu sales, %zu "
             "hours\n",
             m + 1, (double)rss_at[nrss] / 1024, (double)ms.approx_bytes / 1048576, ms.live,
             ms.markets, ms.sales, ms.hours);
      nrss++;
    }
  }
  printf("  warm sweep CPU: %.3f s a sweep (pages already known are not decoded again)\n",
         minutes > 1 ? warm_cpu / (minutes - 1) : 0.0);
  printf("  peak RSS of the process: %.1f MB\n", (double)status_kb("VmHWM") / 1024);
  sb_engine_free(e);

  mkdir(SOUK_BENCH_OUT_DIR, 0755);
  FILE *f = fopen(SOUK_BENCH_OUT_DIR "/skyblock_sweep.json", "w");
  if (f) {
    fprintf(f,
            "{\"pages\":%zu,\"cold_cpu_s\":%.4f,\"us_per_auction\":%.3f,\"json_s\":%.4f,"
            "\"records_s\":%.4f,\"lookup_s\":%.4f,\"apply_s\":%.4f,\"b64_s\":%.4f,"
            "\"gunzip_s\":%.4f,\"nbt_s\":%.4f,\"peak_rss_mb\":%.1f,\"alert_mean_ms\":%.3f,"
            "\"alert_max_ms\":%.3f,\"rss_mb_every_10_min\":[",
            pages, st.total, per_auction_us, st.json, st.records, st.lookup, st.apply,
            ds.b64 * dscale, ds.gunzip * dscale, ds.nbt * dscale, (double)hwm_cold / 1024,
            alert_ns_n ? (double)alert_ns_sum / (double)alert_ns_n / 1e6 : 0.0,
            (double)alert_ns_max / 1e6);
    for (int i = 0; i < nrss; i++)
      fprintf(f, "%s%.1f", i ? "," : "", (double)rss_at[i] / 1024);
    fprintf(f, "]}\n");
    fclose(f);
  }
  souk_loop_close();
  return 0;
}
