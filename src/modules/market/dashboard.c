/* The Market Sim's web dashboard (see dashboard.h).
 *
 * One prefix route, "/market/" + '*', takes every page; the rest of the path
 * is parsed here, strictly: ids are 1..19 decimal digits that fit int64 and
 * are not 0, and anything else is a clear 400 or 404 page.
 *
 * A page is read in one read-only transaction on the worker pool (the
 * guild's settings, the last-price snapshot, the page's rows) and rendered
 * on the loop thread from the done callback, which only formats data that
 * is already in memory.  Every value is valued with that one snapshot of
 * the market_last_price table, so cash and holdings are always priced at
 * the same moment, and the page says how old the quotes are.  A guild
 * whose season runs on the simulated market is valued with the simulated
 * market at the request's instant instead (the module's sim settings,
 * copied on the loop thread), exactly as its /portfolio and /leaderboard
 * commands do, since simulated prices are never persisted.
 *
 * Leaderboards: ranking a season means valuing every account (about 15 ms
 * for 10,000 players on SQLite), so a whole ranking is kept for 10 s and
 * each page is cut from it; the settings are still read on every request.
 * /market/prices, the whole persisted price cache, is for the operator
 * (loopback or the HTTP bearer token, like /metrics); each public guild has
 * its own /market/<guild>/prices with just the symbols it holds.
 *
 * A guild whose admins did not turn dashboard_public on answers exactly
 * like a guild that does not exist (the same 404 page), so the dashboard
 * never tells anyone which guilds play.
 *
 * The pages' HTML and CSS are in dashboard_html.c. */
#include "dashboard.h"
#include "dashboard_int.h"

#include "ledger.h"
#include "market_int.h"
#include "money.h"
#include "price.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/store.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- paths and queries -------------------------------------------------- */


/* A snowflake id: 1..19 decimal digits, > 0, fitting int64.  0 or -1. */
static int dash_parse_id(const char *s, size_t n, int64_t *out) {
  if (n == 0 || n > 19) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits cannot wrap uint64 */
  }
  if (v == 0 || v > (uint64_t)INT64_MAX) return -1;
  *out = (int64_t)v;
  return 0;
}

/* Parse a path under /market.  Returns 0, 400 (a segment that should be an
 * id is not one) or 404 (no such page); *what names the problem. */
static int dash_parse_path(const char *path, market_dash_path_t *out, const char **what) {
  memset(out, 0, sizeof *out);
  *what = "no such page";
  static const char root[] = "/market";
  if (strncmp(path, root, sizeof root - 1) != 0) return 404;
  const char *p = path + sizeof root - 1;
  if (*p == '\0' || !strcmp(p, "/")) {
    out->kind = MARKET_DASH_INDEX;
    return 0;
  }
  if (*p != '/') return 404;
  p++;
  if (!strcmp(p, "static/style.css")) {
    out->kind = MARKET_DASH_CSS;
    return 0;
  }
  if (!strcmp(p, "prices")) {
    out->kind = MARKET_DASH_PRICES;
    return 0;
  }
  /* Split into at most four segments; a single trailing slash is allowed. */
  const char *seg[4];
  size_t len[4], nseg = 0;
  while (*p) {
    if (nseg == 4) return 404;
    const char *e = strchr(p, '/');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    seg[nseg] = p;
    len[nseg++] = l;
    if (!e) break;
    p = e + 1;
    if (*p == '\0') break; /* trailing slash */
  }
  for (size_t i = 0; i < nseg; i++)
    if (len[i] == 0) return 404; /* "//" */
  if (nseg == 0 || (len[0] == 6 && !memcmp(seg[0], "static", 6))) return 404;
  if (dash_parse_id(seg[0], len[0], &out->guild_id) != 0) {
    *what = "that is not a guild id (a guild id is a number, like 123456789012345678)";
    return 400;
  }
  if (nseg == 1) {
    out->kind = MARKET_DASH_BOARD;
    return 0;
  }
  if (nseg == 2 && len[1] == 6 && !memcmp(seg[1], "prices", 6)) {
    out->kind = MARKET_DASH_GPRICES;
    return 0;
  }
  if (nseg == 3 && len[1] == 4 && !memcmp(seg[1], "user", 4)) {
    if (dash_parse_id(seg[2], len[2], &out->user_id) != 0) {
      *what = "that is not a user id (a user id is a number, like 123456789012345678)";
      return 400;
    }
    out->kind = MARKET_DASH_USER;
    return 0;
  }
  return 404;
}

/* ?page=N: absent is 1; else 1..MARKET_DASH_MAX_PAGE in plain digits.
 * 0 or -1. */
static int dash_parse_page(const char *s, int64_t *page) {
  *page = 1;
  if (!s) return 0;
  size_t n = strlen(s);
  if (n == 0 || n > 7) return -1;
  int64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  if (v < 1 || v > MARKET_DASH_MAX_PAGE) return -1;
  *page = v;
  return 0;
}

/* ?by=value|roi: absent is value.  0 or -1. */
static int dash_parse_by(const char *s, market_rank_by_t *by) {
  *by = MARKET_RANK_VALUE;
  if (!s || !strcmp(s, "value")) return 0;
  if (!strcmp(s, "roi")) {
    *by = MARKET_RANK_ROI;
    return 0;
  }
  return -1;
}

/* ---- the page's data ----------------------------------------------------- */


static void dash_board_free(market_dash_board_t *b);

static void dash_data_reset(market_dash_data_t *d) {
  souk_free(d->prices);
  souk_free(d->ranks);
  souk_free(d->names);
  d->names = NULL;
  d->user_name[0] = '\0';
  market_portfolio_free(&d->pf);
  souk_free(d->hist);
  souk_free(d->trades);
  souk_free(d->held);
  dash_board_free(d->fresh);
  d->fresh = NULL;
  d->prices = NULL;
  d->ranks = NULL;
  memset(&d->pf, 0, sizeof d->pf);
  d->hist = NULL;
  d->trades = NULL;
  d->held = NULL;
  d->nprices = d->nranks = d->total = d->nhist = d->ntrades = d->nheld = d->unpriced = 0;
  d->value_cents = 0;
  d->has_prev = false;
  d->prev_value = d->prev_day = 0;
  d->status = 200;
  d->why = NULL;
  memset(&d->settings, 0, sizeof d->settings);
}

static int dash_price_cmp(const void *a, const void *b) {
  return strcmp(((const market_last_price_t *)a)->symbol, ((const market_last_price_t *)b)->symbol);
}

/* The snapshot's lookup for market_value / market_leaderboard. */
const market_last_price_t *market_dash_price_find(const market_dash_data_t *d, const char *sym) {
  if (!d->nprices) return NULL;
  market_last_price_t key;
  memset(&key, 0, sizeof key);
  snprintf(key.symbol, sizeof key.symbol, "%s", sym);
  return bsearch(&key, d->prices, d->nprices, sizeof *d->prices, dash_price_cmp);
}

static int dash_price_fn(void *ud, const char *symbol, int64_t *price_micro) {
  const market_last_price_t *p = market_dash_price_find(ud, symbol);
  if (!p || p->price_micro <= 0) return SOUK_ENOTFOUND;
  *price_micro = p->price_micro;
  return 0;
}

/* ---- prices: the page's one snapshot ------------------------------------ */

/* A small set of symbols (open addressing), to price each distinct symbol
 * of a guild's book once. */
typedef struct dash_symset {
  char (*keys)[MARKET_SYMBOL_MAX + 1];
  size_t cap, n;
} dash_symset_t;

static uint64_t dash_hash(const char *s) {
  uint64_t h = UINT64_C(1469598103934665603);
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
  return h;
}

static void dash_symset_add(dash_symset_t *st, const char *sym) {
  if (!sym[0]) return;
  if ((st->n + 1) * 2 > st->cap) {
    dash_symset_t bigger = {NULL, st->cap ? st->cap * 2 : 64, 0};
    bigger.keys = souk_calloc(bigger.cap, sizeof *bigger.keys);
    for (size_t i = 0; i < st->cap; i++)
      if (st->keys[i][0]) dash_symset_add(&bigger, st->keys[i]);
    souk_free(st->keys);
    *st = bigger;
  }
  size_t i = (size_t)dash_hash(sym) & (st->cap - 1);
  while (st->keys[i][0]) {
    if (!strcmp(st->keys[i], sym)) return;
    i = (i + 1) & (st->cap - 1);
  }
  snprintf(st->keys[i], sizeof st->keys[i], "%s", sym);
  st->n++;
}

/* The snapshot, sorted with strcmp (whatever the backend's collation did)
 * so market_dash_price_find can bsearch it. */
static void dash_prices_sort(market_dash_data_t *d) {
  if (d->nprices > 1) qsort(d->prices, d->nprices, sizeof *d->prices, dash_price_cmp);
}

/* Append the simulated market's price of sym at d->snap_ms. */
static void dash_sim_add(market_dash_data_t *d, const char *sym) {
  market_quote_t q;
  if (market_sim_quote(&d->sim, sym, d->snap_ms, &q) != 0) return;
  market_last_price_t *p = &d->prices[d->nprices++];
  snprintf(p->symbol, sizeof p->symbol, "%s", sym);
  p->price_micro = q.price_micro;
  p->prev_close_micro = q.prev_close_micro;
  snprintf(p->source, sizeof p->source, "%s", q.source ? q.source : "simulated");
  p->quote_time_ms = q.quote_time_ms;
  p->fetched_ms = d->snap_ms;
}

/* The simulated market at d->snap_ms for the distinct symbols of h. */
static void dash_sim_holdings(market_dash_data_t *d, const market_holding_t *h, size_t n) {
  dash_symset_t st = {0};
  for (size_t i = 0; i < n; i++)
    dash_symset_add(&st, h[i].symbol);
  d->prices = souk_calloc(st.n ? st.n : 1, sizeof *d->prices);
  for (size_t i = 0; i < st.cap; i++)
    if (st.keys[i][0]) dash_sim_add(d, st.keys[i]);
  souk_free(st.keys);
  dash_prices_sort(d);
}

/* The snapshot for the guild's holdings h (n of them): the simulated market
 * for a sim season, else every persisted last price. */
static int dash_load_prices(souk_db_t *db, market_dash_data_t *d, const market_holding_t *h,
                            size_t n) {
  if (d->path.kind != MARKET_DASH_PRICES && d->settings.source == MARKET_SRC_SIM) {
    dash_sim_holdings(d, h, n);
    return 0;
  }
  int rc = market_last_price_load_all(db, &d->prices, &d->nprices);
  if (rc == 0) dash_prices_sort(d);
  return rc;
}

/* The guild's settings; status 404 unless the guild exists and is public. */
static int dash_load_guild(souk_db_t *db, market_dash_data_t *d) {
  market_settings_t defs;
  market_settings_defaults(&defs, d->path.guild_id, MARKET_SRC_SIM);
  int rc = market_settings_get(db, d->path.guild_id, &defs, &d->settings);
  if (rc) return rc;
  if (!d->settings.stored || !d->settings.dashboard_public) {
    d->status = 404;
    d->why = "There is no public Market Sim dashboard for this guild.";
  }
  return 0;
}

/* ---- rankings ------------------------------------------------------------ */

/* Ranking a guild of 10,000 players means reading and valuing all of them
 * (about 15 ms on SQLite), whichever page is shown.  So a whole ranking is
 * kept for a few seconds and every page of it is cut from memory; the
 * guild's settings are still read on each request, so turning the
 * dashboard off or starting a new season takes effect at once. */

static int dash_rank_cmp(const void *pa, const void *pb, void *ud) {
  const market_rank_t *a = pa, *b = pb;
  market_rank_by_t by = *(const market_rank_by_t *)ud;
  /* The ledger's order (market_leaderboard): by ROI or value, then value,
   * ROI and user id. */
  if (by == MARKET_RANK_ROI && a->roi_bp != b->roi_bp) return a->roi_bp > b->roi_bp ? -1 : 1;
  if (a->value_cents != b->value_cents) return a->value_cents > b->value_cents ? -1 : 1;
  if (a->roi_bp != b->roi_bp) return a->roi_bp > b->roi_bp ? -1 : 1;
  return a->user_id < b->user_id ? -1 : a->user_id > b->user_id;
}

/* Rank every account of bk with d's snapshot, as market_leaderboard does. */
static market_dash_board_t *dash_board_build(const market_dash_data_t *d, const market_book_t *bk) {
  market_dash_board_t *b = souk_calloc(1, sizeof *b);
  b->guild_id = d->path.guild_id;
  b->season = d->settings.season;
  b->by = d->by;
  b->source = d->settings.source;
  b->at_ms = d->snap_ms;
  b->n = bk->n;
  b->rows = souk_calloc(bk->n ? bk->n : 1, sizeof *b->rows);
  for (size_t i = 0; i < bk->n; i++) {
    const market_account_t *a = &bk->accounts[i];
    market_rank_t *r = &b->rows[i];
    r->user_id = a->user_id;
    r->initial_cents = a->initial_cents;
    const market_holding_t *h = bk->count[i] ? &bk->holdings[bk->first[i]] : NULL;
    /* A value too large for int64 ranks as the largest there is. */
    if (market_value(a, h, bk->count[i], dash_price_fn, (void *)d, &r->value_cents, NULL) != 0)
      r->value_cents = INT64_MAX;
    if (a->initial_cents > 0 && market_roi_bp(r->value_cents, a->initial_cents, &r->roi_bp) != 0)
      r->roi_bp = INT64_MAX;
  }
  market_rank_by_t by = d->by;
  qsort_r(b->rows, b->n, sizeof *b->rows, dash_rank_cmp, &by);
  for (size_t i = 0; i < b->n; i++)
    b->rows[i].rank = (int64_t)i + 1;
  b->nprices = d->nprices;
  b->prices = souk_calloc(d->nprices ? d->nprices : 1, sizeof *b->prices);
  if (d->nprices) memcpy(b->prices, d->prices, d->nprices * sizeof *d->prices);
  return b;
}

static void dash_board_free(market_dash_board_t *b) {
  if (!b) return;
  souk_free(b->rows);
  souk_free(b->prices);
  souk_free(b);
}

/* The ranking cache: loop thread only. */
static market_dash_board_t *dash_boards[MARKET_DASH_BOARDS];

static void dash_board_unref(market_dash_board_t *b) {
  if (b && --b->refs == 0) dash_board_free(b);
}

/* A cached ranking of guild/by that may still be served at now (a
 * reference for the caller), or NULL; *stale says it is past its TTL and
 * should be rebuilt in the background. */
static market_dash_board_t *dash_board_get(int64_t guild, market_rank_by_t by, uint64_t now,
                                           bool *stale) {
  *stale = false;
  for (size_t i = 0; i < MARKET_DASH_BOARDS; i++) {
    market_dash_board_t *b = dash_boards[i];
    if (!b || b->guild_id != guild || b->by != by) continue;
    if (now >= b->built_ms + MARKET_DASH_BOARD_STALE_MS) return NULL;
    *stale = now >= b->expires_ms;
    b->refs++;
    return b;
  }
  return NULL;
}

/* Cache b (taking it over) until now + MARKET_DASH_BOARD_TTL_MS, in place
 * of the same guild's ranking or else the entry that expires first. */
static void dash_board_put(market_dash_board_t *b, uint64_t now) {
  size_t slot = 0;
  for (size_t i = 0; i < MARKET_DASH_BOARDS; i++) {
    market_dash_board_t *o = dash_boards[i];
    if (!o || (o->guild_id == b->guild_id && o->by == b->by)) {
      slot = i;
      break;
    }
    if (o->expires_ms < dash_boards[slot]->expires_ms) slot = i;
  }
  dash_board_unref(dash_boards[slot]);
  b->refs = 1;
  b->built_ms = now;
  b->expires_ms = now + MARKET_DASH_BOARD_TTL_MS;
  dash_boards[slot] = b;
}

/** Drop every cached ranking (module shutdown and tests). */
void market_dashboard_flush(void) {
  for (size_t i = 0; i < MARKET_DASH_BOARDS; i++) {
    dash_board_unref(dash_boards[i]);
    dash_boards[i] = NULL;
  }
}

/* ---- reading a page ---------------------------------------------------------- */

static int dash_read_board(souk_db_t *db, market_dash_data_t *d) {
  const market_dash_board_t *use = d->board;
  if (!use || use->season != d->settings.season || use->source != d->settings.source ||
      use->by != d->by) {
    market_book_t bk;
    int rc = market_book_get(db, d->path.guild_id, d->settings.season, &bk);
    if (rc) return rc;
    rc = dash_load_prices(db, d, bk.holdings, bk.nholdings);
    if (rc == 0) d->fresh = dash_board_build(d, &bk);
    market_book_free(&bk);
    if (rc) return rc;
    use = d->fresh;
  } else {
    /* The cached ranking's own snapshot, for the page's note. */
    d->snap_ms = use->at_ms;
    d->nprices = use->nprices;
    d->prices = souk_calloc(use->nprices ? use->nprices : 1, sizeof *d->prices);
    if (use->nprices) memcpy(d->prices, use->prices, use->nprices * sizeof *d->prices);
  }
  int64_t offset = (d->page - 1) * MARKET_DASH_PAGE_SIZE;
  d->total = use->n;
  if (d->page > 1 && (size_t)offset >= use->n) {
    d->status = 404;
    d->why = "There is no such page of the leaderboard.";
    return 0;
  }
  size_t take = use->n > (size_t)offset ? use->n - (size_t)offset : 0;
  if (take > MARKET_DASH_PAGE_SIZE) take = MARKET_DASH_PAGE_SIZE;
  d->ranks = souk_calloc(take ? take : 1, sizeof *d->ranks);
  if (take) memcpy(d->ranks, use->rows + offset, take * sizeof *d->ranks);
  d->nranks = take;
  /* Names are read for every page, not kept with the ranking, so a new
   * name (or a forgotten player) shows at once. */
  int64_t ids[MARKET_DASH_PAGE_SIZE];
  for (size_t i = 0; i < take; i++)
    ids[i] = d->ranks[i].user_id;
  d->names = souk_calloc(take ? take : 1, sizeof *d->names);
  return market_player_names(db, d->path.guild_id, ids, take, d->names);
}

static int dash_read_user(souk_db_t *db, market_dash_data_t *d) {
  int64_t g = d->path.guild_id, season = d->settings.season, u = d->path.user_id;
  int rc = market_portfolio_get(db, g, season, u, &d->pf);
  if (rc == 0) rc = market_player_names(db, g, &u, 1, &d->user_name);
  if (rc) return rc;
  if (!d->pf.exists) {
    d->status = 404;
    d->why = "This player has no account in the current season.";
    return 0;
  }
  rc = dash_load_prices(db, d, d->pf.holdings, d->pf.n);
  if (rc) return rc;
  rc = market_value(&d->pf.account, d->pf.holdings, d->pf.n, dash_price_fn, d, &d->value_cents,
                    &d->unpriced);
  if (rc) return rc;
  rc = market_history_list(db, g, season, u, MARKET_DASH_HISTORY, &d->hist, &d->nhist);
  if (rc) return rc;
  rc = market_tx_list(db, g, season, u, 0, MARKET_DASH_TRADES, &d->trades, &d->ntrades);
  if (rc) return rc;
  rc =
      market_history_prev(db, g, season, u, market_day_of(d->now_ms), &d->prev_value, &d->prev_day);
  if (rc == 0)
    d->has_prev = true;
  else if (rc != SOUK_ENOTFOUND)
    return rc;
  return 0;
}

static int dash_read_gprices(souk_db_t *db, market_dash_data_t *d) {
  int rc = market_symbols_held(db, d->path.guild_id, &d->held, &d->nheld);
  if (rc) return rc;
  if (d->settings.source == MARKET_SRC_SIM) {
    d->prices = souk_calloc(d->nheld ? d->nheld : 1, sizeof *d->prices);
    for (size_t i = 0; i < d->nheld; i++)
      dash_sim_add(d, d->held[i]);
    dash_prices_sort(d);
    return 0;
  }
  return dash_load_prices(db, d, NULL, 0);
}

/* The transaction function: runs on a pool thread, maybe more than once. */
static int dash_read(souk_db_t *db, void *ud) {
  market_dash_data_t *d = ud;
  dash_data_reset(d);
  d->snap_ms = d->now_ms;
  if (d->path.kind != MARKET_DASH_PRICES) {
    int rc = dash_load_guild(db, d);
    if (rc || d->status != 200) return rc;
  }
  switch (d->path.kind) {
  case MARKET_DASH_BOARD:
    return dash_read_board(db, d);
  case MARKET_DASH_USER:
    return dash_read_user(db, d);
  case MARKET_DASH_GPRICES:
    return dash_read_gprices(db, d);
  case MARKET_DASH_PRICES:
    return dash_load_prices(db, d, NULL, 0);
  default:
    return 0;
  }
}

/* ---- requests ------------------------------------------------------------ */

/** One request waiting for its read. */
typedef struct market_dash_job {
  souk_httpd_req_t *req;
  market_dash_data_t d;
  market_dash_board_t *refreshing; /* a background rebuild of this ranking (req NULL) */
} market_dash_job_t;

static unsigned dash_inflight;

static int dash_job_read(souk_db_t *db, void *ud) {
  return dash_read(db, &((market_dash_job_t *)ud)->d);
}

/* Headers of every HTML page. */
static void dash_html_headers(souk_httpd_req_t *req) {
  souk_httpd_set_header(req, "Content-Security-Policy", MARKET_DASH_CSP);
  souk_httpd_set_header(req, "Cache-Control", "no-cache");
}

static void dash_send(souk_httpd_req_t *req, int status, souk_buf_t *b) {
  dash_html_headers(req);
  souk_httpd_respond_buf(req, status, "text/html; charset=utf-8", b);
  souk_buf_free(b);
}

static void dash_send_error(souk_httpd_req_t *req, int status, const char *msg) {
  souk_buf_t b;
  souk_buf_init(&b);
  market_dash_render_error(&b, status, msg);
  if (status == 503) souk_httpd_set_header(req, "Retry-After", "1");
  dash_send(req, status, &b);
}

static void dash_refresh_done(void *ud, int status);

/* Rebuild a stale ranking on the worker pool while the old one is served;
 * the result replaces it in the cache.  One rebuild per ranking at once. */
static void dash_refresh(market_dash_board_t *old) {
  souk_store_t *st = market_g.store;
  if (old->refreshing || !st || !market_g.started) return;
  market_dash_job_t *j = souk_calloc(1, sizeof *j);
  j->d.path.kind = MARKET_DASH_BOARD;
  j->d.path.guild_id = old->guild_id;
  j->d.page = 1;
  j->d.by = old->by;
  j->d.now_ms = (int64_t)souk_unix_ms();
  j->d.sim = market_g.sim;
  old->refs++;
  old->refreshing = true;
  j->refreshing = old;
  if (souk_store_read_async(st, dash_job_read, dash_refresh_done, j) != 0) {
    old->refreshing = false;
    dash_board_unref(old);
    souk_free(j);
  }
}

static void dash_refresh_done(void *ud, int status) {
  market_dash_job_t *j = ud;
  j->refreshing->refreshing = false;
  if (status == 0 && j->d.fresh && j->d.status == 200 && market_g.started) {
    dash_board_put(j->d.fresh, souk_now_ms());
    j->d.fresh = NULL;
  }
  dash_board_unref(j->refreshing);
  dash_data_reset(&j->d);
  souk_free(j);
}

static void dash_done(void *ud, int status) {
  market_dash_job_t *j = ud;
  dash_inflight--;
  if (status == SOUK_ECANCELED || status == SOUK_ESTOPPED) {
    dash_send_error(j->req, 503, "The server is shutting down.");
  } else if (status) {
    SOUK_WARN("market", "dashboard %s: cannot read the market data: %s", j->req->path,
              souk_strerror(status));
    dash_send_error(j->req, 500, "The market data could not be read. Try again later.");
  } else {
    souk_buf_t b;
    souk_buf_init(&b);
    int code = market_dash_render(&b, &j->d);
    dash_send(j->req, code, &b);
  }
  /* Once the module stopped (shutdown flushed the rankings), a page read
   * finishing late keeps nothing. */
  if (status == 0 && j->d.fresh && j->d.status == 200 && market_g.started) {
    dash_board_put(j->d.fresh, souk_now_ms());
    j->d.fresh = NULL;
  }
  dash_board_unref((market_dash_board_t *)j->d.board);
  dash_data_reset(&j->d);
  souk_free(j);
}

static void dash_route(souk_httpd_req_t *req) {
  market_dash_path_t p;
  const char *what;
  int code = dash_parse_path(req->path, &p, &what);
  if (code) {
    dash_send_error(req, code, what);
    return;
  }
  if (p.kind == MARKET_DASH_CSS) {
    souk_httpd_set_header(req, "Cache-Control", "public, max-age=3600");
    souk_httpd_respond(req, 200, "text/css; charset=utf-8", market_dash_css,
                       strlen(market_dash_css));
    return;
  }
  if (p.kind == MARKET_DASH_INDEX) {
    souk_buf_t b;
    souk_buf_init(&b);
    market_dash_render_index(&b);
    dash_send(req, 200, &b);
    return;
  }
  /* The whole price list is for the operator; guilds show their own. */
  if (p.kind == MARKET_DASH_PRICES && !req->loopback && !req->authorized) {
    dash_send_error(req, 403, "The price cache page is for the bot's operator.");
    return;
  }
  int64_t page = 1;
  market_rank_by_t by = MARKET_RANK_VALUE;
  if (p.kind == MARKET_DASH_BOARD) {
    if (dash_parse_page(souk_httpd_query(req, "page"), &page) != 0) {
      dash_send_error(req, 400,
                      "The page number must be a whole number from 1 to 1000000, like ?page=2.");
      return;
    }
    if (dash_parse_by(souk_httpd_query(req, "by"), &by) != 0) {
      dash_send_error(req, 400, "A leaderboard is ranked by=value (the default) or by=roi.");
      return;
    }
  }
  souk_store_t *st = market_g.store;
  if (!st) {
    dash_send_error(req, 503, "The market data is not available.");
    return;
  }
  if (dash_inflight >= MARKET_DASH_MAX_INFLIGHT) {
    dash_send_error(req, 503, "The dashboard is busy. Try again in a moment.");
    return;
  }
  market_dash_job_t *j = souk_calloc(1, sizeof *j);
  j->req = req;
  j->d.path = p;
  j->d.page = page;
  j->d.by = by;
  j->d.now_ms = (int64_t)souk_unix_ms();
  j->d.sim = market_g.sim; /* the module's state: read on the loop thread */
  bool stale = false;
  if (p.kind == MARKET_DASH_BOARD) {
    market_dash_board_t *b = dash_board_get(p.guild_id, by, souk_now_ms(), &stale);
    j->d.board = b;
    if (b && stale) dash_refresh(b);
  }
  if (souk_store_read_async(st, dash_job_read, dash_done, j) != 0) {
    dash_board_unref((market_dash_board_t *)j->d.board);
    souk_free(j);
    dash_send_error(req, 503, "The market data is not available right now.");
    return;
  }
  dash_inflight++;
}

const souk_route_t market_dashboard_routes[] = {
    {"GET", "/market", SOUK_ROUTE_PUBLIC, dash_route},
    {"GET", "/market/*", SOUK_ROUTE_PUBLIC, dash_route},
    {0},
};
