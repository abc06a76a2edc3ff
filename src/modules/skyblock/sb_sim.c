/* The simulated auction house (`skyblock.source: sim`, the default in
 * `souk console`): snipes and prices with no network.
 *
 * It is seeded from recorded pages shipped in the binary (sim_seed.json.gz,
 * 120 real BIN auctions; SOURCES.md says how it was made): each is an item
 * with a base price (its real starting bid).  The market moves on every
 * refresh (one a sim.interval, at the wall clock's time): listings appear
 * around their item's base price, BIN listings sell (a cheap one quickly,
 * a dear one rarely) and expire, the house trades some items it does not
 * list, and now and then a careless seller lists an item at a third to
 * two thirds of its value: a snipe.  Before the first refresh the market
 * lives sim.warmup_hours of sales, so values are known at once.
 *
 * Every refresh becomes the same JSON pages Hypixel serves (an
 * auctions_ended page, then auction pages of 1,000) and goes through the
 * engine exactly as live pages do: parsing, decoding and the sniper are
 * the real ones.  A seed gives the same market every time. */
#include "sb_mod.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#ifndef SB_SIM_SEED
#define SB_SIM_SEED SOUK_SOURCE_DIR "/src/modules/skyblock/sim_seed.json.gz"
#endif

/* The seed file, in the binary. */
__asm__(".section .rodata\n"
        ".balign 16\n"
        "sb_sim_seed_gz:\n"
        ".incbin \"" SB_SIM_SEED "\"\n"
        "sb_sim_seed_gz_end:\n"
        ".previous\n");
extern const unsigned char sb_sim_seed_gz[] __asm__("sb_sim_seed_gz");
extern const unsigned char sb_sim_seed_gz_end[] __asm__("sb_sim_seed_gz_end");

#define SELLERS      400
#define BUYERS       600
#define PER_ITEM     6
#define REFRESH_MS   60000
#define SNIPE_CHANCE 0.5

typedef struct tmpl {
  char *item_bytes;
  int64_t base;
} tmpl_t;

typedef struct lst {
  uint64_t id_hi, id_lo;
  uint32_t t, seller;
  int64_t price, start, end;
} lst_t;

typedef struct sale {
  uint64_t id_hi, id_lo;
  uint32_t t, seller, buyer;
  int64_t price, at;
} sale_t;

struct sb_sim {
  sb_engine_t *e;
  uv_timer_t *timer;
  uint64_t rng[2];
  tmpl_t *t;
  size_t nt;
  lst_t *l;
  size_t nl, capl;
  sale_t *s;
  size_t ns, caps;
  uint64_t seller_ids[SELLERS][2], buyer_ids[BUYERS][2];
  uint32_t sweep;
  uint64_t refreshes;
  uint64_t interval;
  unsigned inflight;
  bool stopping;
};

/* xorshift128+: fast, seeded, never for secrets. */
static uint64_t rnd(sb_sim_t *s) {
  uint64_t a = s->rng[0], b = s->rng[1];
  s->rng[0] = b;
  a ^= a << 23;
  s->rng[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
  return s->rng[1] + b;
}

static double rnd01(sb_sim_t *s) { return (double)(rnd(s) >> 11) * (1.0 / 9007199254740992.0); }

/* A log-normal factor with spread sigma (Box-Muller). */
static double lognorm(sb_sim_t *s, double sigma) {
  double u = rnd01(s), v = rnd01(s);
  if (u < 1e-12) u = 1e-12;
  return exp(sigma * sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v));
}

/* ---- the seed ------------------------------------------------------------------------ */

static int load_seed(sb_sim_t *s) {
  size_t gzlen = (size_t)(sb_sim_seed_gz_end - sb_sim_seed_gz);
  if (gzlen < 18) return SOUK_EPARSE;
  /* gzip keeps the uncompressed size in its last 4 bytes. */
  const unsigned char *tail = sb_sim_seed_gz + gzlen - 4;
  size_t raw_len =
      (size_t)tail[0] | (size_t)tail[1] << 8 | (size_t)tail[2] << 16 | (size_t)tail[3] << 24;
  char *raw = souk_malloc(raw_len + 1);
  z_stream z = {0};
  z.next_in = (Bytef *)sb_sim_seed_gz;
  z.avail_in = (uInt)gzlen;
  z.next_out = (Bytef *)raw;
  z.avail_out = (uInt)raw_len;
  int rc = inflateInit2(&z, 16 + MAX_WBITS);
  if (rc == Z_OK) rc = inflate(&z, Z_FINISH);
  inflateEnd(&z);
  if (rc != Z_STREAM_END || z.total_out != raw_len) {
    souk_free(raw);
    return SOUK_EPARSE;
  }
  raw[raw_len] = '\0';
  souk_json_t j = {0};
  if (souk_json_parse(&j, raw, raw_len) != 0 || souk_json_type(&j, 0) != SOUK_JSON_ARRAY) {
    souk_json_free(&j);
    souk_free(raw);
    return SOUK_EPARSE;
  }
  size_t n = souk_json_count(&j, 0);
  s->t = souk_calloc(n ? n : 1, sizeof *s->t);
  for (int t = souk_json_first(&j, 0); t >= 0 && s->nt < n; t = souk_json_skip(&j, t)) {
    int64_t base;
    char *ib = souk_json_strdup(&j, souk_json_get(&j, t, "item_bytes"));
    if (!ib || souk_json_i64(&j, souk_json_get(&j, t, "starting_bid"), &base) || base < 1) {
      souk_free(ib);
      continue;
    }
    s->t[s->nt++] = (tmpl_t){ib, base};
  }
  souk_json_free(&j);
  souk_free(raw);
  return s->nt ? 0 : SOUK_EPARSE;
}

/* ---- the market's moves ---------------------------------------------------------------- */

static void add_listing(sb_sim_t *s, uint32_t t, int64_t price, int64_t start) {
  if (s->nl == s->capl) {
    s->capl = s->capl ? s->capl * 2 : 1024;
    s->l = souk_reallocarray(s->l, s->capl, sizeof *s->l);
  }
  int64_t hours = 1 + (int64_t)(rnd(s) % 48);
  s->l[s->nl++] = (lst_t){rnd(s),
                          rnd(s),
                          t,
                          (uint32_t)(rnd(s) % SELLERS),
                          price < 1 ? 1 : price,
                          start,
                          start + hours * 3600000};
}

static void add_sale(sb_sim_t *s, uint64_t hi, uint64_t lo, uint32_t t, uint32_t seller,
                     int64_t price, int64_t at) {
  if (s->ns == s->caps) {
    s->caps = s->caps ? s->caps * 2 : 256;
    s->s = souk_reallocarray(s->s, s->caps, sizeof *s->s);
  }
  s->s[s->ns++] = (sale_t){hi, lo, t, seller, (uint32_t)(rnd(s) % BUYERS), price, at};
}

/* One refresh of the market at data time now (ms). */
static void move(sb_sim_t *s, int64_t now) {
  int64_t from = now - REFRESH_MS;
  s->ns = 0;
  for (size_t i = 0; i < s->nl;) {
    lst_t *l = &s->l[i];
    double ratio = (double)l->price / (double)s->t[l->t].base;
    /* Cheap listings are bought fast; dear ones wait. */
    double p = ratio < 0.75 ? 0.6 : ratio < 1.0 ? 0.05 : ratio < 1.2 ? 0.015 : 0.002;
    bool sold = rnd01(s) < p, gone = l->end <= now;
    if (sold)
      add_sale(s, l->id_hi, l->id_lo, l->t, l->seller, l->price,
               from + (int64_t)(rnd(s) % REFRESH_MS));
    if (sold || gone) {
      s->l[i] = s->l[--s->nl];
      continue;
    }
    i++;
  }
  for (uint32_t t = 0; t < s->nt; t++) {
    int64_t base = s->t[t].base;
    /* New listings keep about PER_ITEM of each item listed. */
    if (rnd01(s) < 0.3)
      add_listing(s, t, (int64_t)((double)base * lognorm(s, 0.12)),
                  from + (int64_t)(rnd(s) % REFRESH_MS));
    /* Trades of items not listed here (the rest of the house). */
    if (rnd01(s) < 0.2)
      add_sale(s, rnd(s), rnd(s), t, (uint32_t)(rnd(s) % SELLERS),
               (int64_t)((double)base * lognorm(s, 0.08)), from + (int64_t)(rnd(s) % REFRESH_MS));
  }
  if (rnd01(s) < SNIPE_CHANCE) {
    /* Careless sellers of dear items: a snipe worth an alert. */
    uint32_t t = (uint32_t)(rnd(s) % s->nt);
    for (int k = 0; k < 16 && s->t[t].base < 3000000; k++)
      t = (uint32_t)(rnd(s) % s->nt);
    double cut = 0.33 + 0.33 * rnd01(s);
    add_listing(s, t, (int64_t)((double)s->t[t].base * cut), now - (int64_t)(rnd(s) % 20000));
  }
}

/* ---- pages ----------------------------------------------------------------------------- */

static char *ended_page(sb_sim_t *s, int64_t now, size_t *len) {
  souk_buf_t b = {0};
  souk_buf_printf(&b, "{\"success\":true,\"lastUpdated\":%" PRId64 ",\"auctions\":[", now);
  for (size_t i = 0; i < s->ns; i++) {
    const sale_t *x = &s->s[i];
    souk_buf_printf(&b,
                    "%s{\"auction_id\":\"%016" PRIx64 "%016" PRIx64 "\",\"seller\":\"%016" PRIx64
                    "%016" PRIx64 "\",\"buyer\":\"%016" PRIx64 "%016" PRIx64
                    "\",\"timestamp\":%" PRId64 ",\"price\":%" PRId64
                    ",\"bin\":true,\"item_bytes\":\"%s\"}",
                    i ? "," : "", x->id_hi, x->id_lo, s->seller_ids[x->seller][0],
                    s->seller_ids[x->seller][1], s->buyer_ids[x->buyer][0],
                    s->buyer_ids[x->buyer][1], x->at, x->price, s->t[x->t].item_bytes);
  }
  souk_buf_puts(&b, "]}");
  *len = b.len;
  return souk_buf_steal(&b);
}

static char *auction_page(sb_sim_t *s, int64_t now, size_t page, size_t pages, size_t *len) {
  souk_buf_t b = {0};
  size_t lo = page * 1000, hi = lo + 1000 < s->nl ? lo + 1000 : s->nl;
  souk_buf_printf(&b,
                  "{\"success\":true,\"page\":%zu,\"totalPages\":%zu,\"totalAuctions\":%zu,"
                  "\"lastUpdated\":%" PRId64 ",\"auctions\":[",
                  page, pages, s->nl, now);
  for (size_t i = lo; i < hi; i++) {
    const lst_t *l = &s->l[i];
    souk_buf_printf(&b,
                    "%s{\"uuid\":\"%016" PRIx64 "%016" PRIx64 "\",\"auctioneer\":\"%016" PRIx64
                    "%016" PRIx64 "\",\"start\":%" PRId64 ",\"end\":%" PRId64
                    ",\"starting_bid\":%" PRId64
                    ",\"highest_bid_amount\":0,\"bin\":true,\"item_bytes\":\"%s\"}",
                    i > lo ? "," : "", l->id_hi, l->id_lo, s->seller_ids[l->seller][0],
                    s->seller_ids[l->seller][1], l->start, l->end, l->price, s->t[l->t].item_bytes);
  }
  souk_buf_puts(&b, "]}");
  *len = b.len;
  return souk_buf_steal(&b);
}

static size_t npages(const sb_sim_t *s) { return s->nl ? (s->nl + 999) / 1000 : 1; }

/* The warm-up: history of sales only (no listing pages), synchronously. */
static void warm(sb_sim_t *s, int64_t from, int64_t to) {
  for (int64_t now = from; now < to; now += REFRESH_MS) {
    move(s, now);
    size_t len;
    char *body = ended_page(s, now, &len);
    sb_engine_ingest_sync(s->e, SB_REQ_ENDED, 0, body, len, NULL, NULL);
  }
}

static void page_done(void *ud, sb_req_kind_t kind, uint32_t sweep, int page, int rc, int64_t lu,
                      int total) {
  sb_sim_t *s = ud;
  (void)page;
  (void)lu;
  (void)total;
  s->inflight--;
  if (rc) SOUK_WARN("skyblock", "simulated page refused: %s", souk_strerror(rc));
  if (kind == SB_REQ_PAGE && s->inflight == 0 && !s->stopping)
    sb_engine_sweep_end(s->e, sweep, true);
}

static void refresh(sb_sim_t *s) {
  if (s->inflight) return; /* the last refresh is still being ingested */
  int64_t now = (int64_t)souk_unix_ms();
  move(s, now);
  s->refreshes++;
  s->sweep++;
  size_t len;
  char *body = ended_page(s, now, &len);
  if (sb_engine_submit(s->e, SB_REQ_ENDED, 0, s->sweep, body, len, 0, page_done, s) == 0)
    s->inflight++;
  else
    souk_free(body);
  size_t pages = npages(s);
  for (size_t p = 0; p < pages; p++) {
    body = auction_page(s, now, p, pages, &len);
    if (sb_engine_submit(s->e, SB_REQ_PAGE, (int)p, s->sweep, body, len, 0, page_done, s) == 0)
      s->inflight++;
    else
      souk_free(body);
  }
}

static void timer_cb(uv_timer_t *t) { refresh(t->data); }

sb_sim_t *sb_sim_start(sb_engine_t *e, uint64_t seed, uint64_t interval_ms, unsigned warmup_hours) {
  sb_sim_t *s = souk_calloc(1, sizeof *s);
  s->e = e;
  s->interval = interval_ms;
  s->rng[0] = seed * 0x9e3779b97f4a7c15ULL + 0x1234567;
  s->rng[1] = (seed ^ 0xabcdef) * 0xbf58476d1ce4e5b9ULL + 1;
  for (int i = 0; i < 16; i++)
    rnd(s);
  if (load_seed(s) != 0) {
    SOUK_ERROR("skyblock", "the simulated market's seed data is damaged");
    souk_free(s->t);
    souk_free(s);
    return NULL;
  }
  for (int i = 0; i < SELLERS; i++)
    s->seller_ids[i][0] = rnd(s), s->seller_ids[i][1] = rnd(s);
  for (int i = 0; i < BUYERS; i++)
    s->buyer_ids[i][0] = rnd(s), s->buyer_ids[i][1] = rnd(s);
  int64_t now = (int64_t)souk_unix_ms();
  int64_t from = now - (int64_t)warmup_hours * 3600000;
  /* The house as it stands: PER_ITEM listings of each item, listed over
   * the past day (none of them new: the sniper judges fresh ones only). */
  for (uint32_t t = 0; t < s->nt; t++)
    for (int k = 0; k < PER_ITEM; k++)
      add_listing(s, t, (int64_t)((double)s->t[t].base * lognorm(s, 0.12)),
                  from - (int64_t)(rnd(s) % 86400000));
  warm(s, from, now);
  s->timer = souk_calloc(1, sizeof *s->timer);
  uv_timer_init(souk_loop(), s->timer);
  s->timer->data = s;
  uv_timer_start(s->timer, timer_cb, 0, interval_ms);
  SOUK_INFO("skyblock",
            "simulated market: %zu items from recorded pages, %u h of history, a refresh every "
            "%" PRIu64 " ms",
            s->nt, warmup_hours, interval_ms);
  return s;
}

void sb_sim_stop(sb_sim_t *s) {
  if (!s) return;
  s->stopping = true;
  souk_timer_free(&s->timer);
  /* Pages out on the thread pool call page_done with s: wait for them. */
  for (int i = 0; i < 10000 && s->inflight; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  for (size_t i = 0; i < s->nt; i++)
    souk_free(s->t[i].item_bytes);
  souk_free(s->t);
  souk_free(s->l);
  souk_free(s->s);
  souk_free(s);
}

uint64_t sb_sim_refreshes(const sb_sim_t *s) { return s->refreshes; }
