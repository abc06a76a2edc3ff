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
 * Security: every string that comes from data is HTML-escaped (dash_esc);
 * pages load nothing but their own stylesheet, under a Content-Security-
 * Policy that forbids scripts, frames, forms and every other origin.  The
 * charts are inline SVG drawn with presentation attributes and classes, so
 * no inline style is needed (CSP would block it). */
#include "dashboard.h"
#include "fmt.h"

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

/** The policy of every dashboard page. */
#define MARKET_DASH_CSP                                                                            \
  "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "                  \
  "form-action 'none'; frame-ancestors 'none'"
/** Leaderboard rows per page. */
#define MARKET_DASH_PAGE_SIZE 50
/** Highest page number accepted in a query (far beyond any real guild). */
#define MARKET_DASH_MAX_PAGE 1000000
/** Daily history points in a portfolio chart (about a year). */
#define MARKET_DASH_HISTORY 366
/** Recent trades on a portfolio page. */
#define MARKET_DASH_TRADES 20
/** Pages being read at once; more get 503 so a crawler cannot fill the
 * worker pool that the bot's own work needs. */
#define MARKET_DASH_MAX_INFLIGHT 16
/** Rankings kept, and for how long (ms). */
#define MARKET_DASH_BOARDS       8
#define MARKET_DASH_BOARD_TTL_MS 10000
/* A ranking older than the TTL is still served, up to this age, while a
 * fresh one is built in the background (stale-while-revalidate), so a
 * visitor never waits for the ~15 ms valuation of a big guild unless
 * nobody looked for this long. */
#define MARKET_DASH_BOARD_STALE_MS 120000
/** A quote older than this is marked stale on the pages. */
#define MARKET_DASH_STALE_MS (INT64_C(24) * 3600 * 1000)

/* ---- escaping and small formatters ------------------------------------- */

/* Append s as HTML text or attribute value: & < > " ' are escaped, control
 * characters are dropped and invalid UTF-8 becomes U+FFFD. */
static void dash_esc_n(souk_buf_t *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      switch (c) {
      case '&':
        souk_buf_puts(b, "&amp;");
        break;
      case '<':
        souk_buf_puts(b, "&lt;");
        break;
      case '>':
        souk_buf_puts(b, "&gt;");
        break;
      case '"':
        souk_buf_puts(b, "&quot;");
        break;
      case '\'':
        souk_buf_puts(b, "&#39;");
        break;
      default:
        if (c >= 0x20 && c != 0x7f)
          souk_buf_putc(b, (char)c);
        else if (c == '\n' || c == '\t')
          souk_buf_putc(b, ' ');
        break;
      }
      i++;
      continue;
    }
    size_t k = souk_utf8_seq(p + i, n - i);
    if (k == 0) {
      souk_buf_puts(b, "\xEF\xBF\xBD");
      i++;
    } else {
      souk_buf_append(b, p + i, k);
      i += k;
    }
  }
}

static void dash_esc(souk_buf_t *b, const char *s) {
  if (s) dash_esc_n(b, s, strlen(s));
}

/* Amounts, prices and percentages are ASCII from money.c, escaped anyway
 * so no path from data to the page skips the escaper. */
static void dash_cents(souk_buf_t *b, int64_t cents) {
  char t[MARKET_FMT_MAX];
  dash_esc(b, market_fmt_cents(cents, t, sizeof t));
}

static void dash_price_text(souk_buf_t *b, int64_t micro) {
  char t[MARKET_FMT_MAX];
  dash_esc(b, market_fmt_price(micro, t, sizeof t));
}

static void dash_bp(souk_buf_t *b, int64_t bp) {
  char t[MARKET_FMT_MAX];
  dash_esc(b, market_fmt_bp(bp, t, sizeof t));
}

/* "pos", "neg" or "zero": the class that colours a signed figure. */
static const char *dash_sign_class(int64_t v) { return v > 0 ? "pos" : v < 0 ? "neg" : "zero"; }

/* When t_ms was, from now_ms: "just now", "5 min ago", ...; "unknown"
 * when t <= 0.  A time in the future (another clock) reads "just now". */
static void dash_fmt_age(char *buf, size_t n, int64_t now_ms, int64_t t_ms) {
  if (t_ms <= 0)
    snprintf(buf, n, "unknown");
  else
    market_fmt_age(now_ms - t_ms, MARKET_AGE_AGO, buf, n);
}

/* "2026-11-22" for a YYYYMMDD day. */
static void dash_fmt_day(char *buf, size_t n, int64_t day) {
  if (day <= 0 || day > INT64_C(99991231)) {
    snprintf(buf, n, "?");
    return;
  }
  snprintf(buf, n, "%04" PRId64 "-%02" PRId64 "-%02" PRId64, day / 10000, day / 100 % 100,
           day % 100);
}

/* ---- paths and queries -------------------------------------------------- */

/** What a path asks for. */
typedef enum market_dash_kind {
  MARKET_DASH_INDEX,   /* /market and /market/ */
  MARKET_DASH_CSS,     /* /market/static/style.css */
  MARKET_DASH_BOARD,   /* /market/<guild> */
  MARKET_DASH_USER,    /* /market/<guild>/user/<user> */
  MARKET_DASH_GPRICES, /* /market/<guild>/prices */
  MARKET_DASH_PRICES   /* /market/prices (admin) */
} market_dash_kind_t;

typedef struct market_dash_path {
  market_dash_kind_t kind;
  int64_t guild_id, user_id;
} market_dash_path_t;

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

/** A whole ranking of one guild's season at one price snapshot; immutable
 * once built.  refs and expires_ms belong to the loop thread. */
typedef struct market_dash_board {
  int64_t guild_id, season;
  market_rank_by_t by;
  market_source_t source;
  int64_t at_ms;       /* the snapshot's instant (UTC ms) */
  market_rank_t *rows; /* every account, ranked */
  size_t n;
  market_last_price_t *prices; /* the snapshot it was valued with */
  size_t nprices;
  uint64_t built_ms;   /* souk_now_ms() when it was cached */
  uint64_t expires_ms; /* souk_now_ms() after which it is rebuilt */
  unsigned refs;       /* the cache's + each job's */
  bool refreshing;     /* a background rebuild is in flight (loop thread) */
} market_dash_board_t;

/** Everything one page shows, read in one transaction. */
typedef struct market_dash_data {
  market_dash_path_t path;
  int64_t page;
  market_rank_by_t by;
  int64_t now_ms;                   /* for ages; injected by tests */
  market_sim_conf_t sim;            /* the simulated market, for sim seasons */
  const market_dash_board_t *board; /* a cached ranking to cut pages from (the job holds a ref) */
  /* Results. */
  market_dash_board_t *fresh; /* a ranking built by this read, for the cache */
  int64_t snap_ms;            /* the snapshot's instant (a cached ranking's is older) */
  int status;                 /* 200, or 404 for a private/unknown guild or page */
  const char *why;            /* the 404's message */
  market_settings_t settings;
  market_last_price_t *prices; /* sorted by symbol (strcmp) */
  size_t nprices;
  market_rank_t *ranks; /* leaderboard rows of the page */
  size_t nranks, total;
  market_portfolio_t pf;
  int64_t value_cents; /* the portfolio's total at the snapshot */
  size_t unpriced;     /* holdings valued at cost */
  market_history_point_t *hist;
  size_t nhist;
  market_trade_t *trades;
  size_t ntrades;
  bool has_prev; /* a history value from before today */
  int64_t prev_value, prev_day;
  char (*held)[MARKET_SYMBOL_MAX + 1]; /* a guild's symbols */
  size_t nheld;
} market_dash_data_t;

static void dash_board_free(market_dash_board_t *b);

static void dash_data_reset(market_dash_data_t *d) {
  souk_free(d->prices);
  souk_free(d->ranks);
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
static const market_last_price_t *dash_price_find(const market_dash_data_t *d, const char *sym) {
  if (!d->nprices) return NULL;
  market_last_price_t key;
  memset(&key, 0, sizeof key);
  snprintf(key.symbol, sizeof key.symbol, "%s", sym);
  return bsearch(&key, d->prices, d->nprices, sizeof *d->prices, dash_price_cmp);
}

static int dash_price_fn(void *ud, const char *symbol, int64_t *price_micro) {
  const market_last_price_t *p = dash_price_find(ud, symbol);
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
 * so dash_price_find can bsearch it. */
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
  return 0;
}

static int dash_read_user(souk_db_t *db, market_dash_data_t *d) {
  int64_t g = d->path.guild_id, season = d->settings.season, u = d->path.user_id;
  int rc = market_portfolio_get(db, g, season, u, &d->pf);
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

/* ---- HTML --------------------------------------------------------------- */

static const char dash_css[] =
    ":root{color-scheme:light dark;--fg:#1b1f24;--bg:#fbfbfa;--mut:#5c6670;--line:#d9dde2;"
    "--acc:#2458c6;--pos:#18794e;--neg:#c2352b;--card:#fff}\n"
    "@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--bg:#16181c;--mut:#9aa4ae;"
    "--line:#333a42;--acc:#7aa2f7;--pos:#4ec38a;--neg:#f2776d;--card:#1d2025}}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0 auto;max-width:960px;padding:24px 16px 48px;background:var(--bg);"
    "color:var(--fg);font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}\n"
    "a{color:var(--acc)}\n"
    "h1{font-size:1.5rem;margin:0 0 4px}h2{font-size:1.15rem;margin:28px 0 8px}\n"
    ".meta,.note,footer{color:var(--mut);font-size:.9rem}\n"
    "footer{margin-top:32px;border-top:1px solid var(--line);padding-top:12px}\n"
    "code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.92em}\n"
    "table{border-collapse:collapse;width:100%;background:var(--card)}\n"
    "th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;"
    "white-space:nowrap}\n"
    "th{font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;color:var(--mut)}\n"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    ".pos{color:var(--pos)}.neg{color:var(--neg)}\n"
    ".stale{color:var(--neg);font-size:.85em}\n"
    ".tag{display:inline-block;padding:1px 6px;border:1px solid var(--line);border-radius:9px;"
    "font-size:.8rem;color:var(--mut)}\n"
    "dl.sum{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:10px;"
    "margin:16px 0}\n"
    "dl.sum div{background:var(--card);border:1px solid var(--line);border-radius:8px;"
    "padding:10px 12px}\n"
    "dl.sum dt{font-size:.8rem;color:var(--mut)}dl.sum dd{margin:2px 0 0;font-size:1.15rem;"
    "font-variant-numeric:tabular-nums}\n"
    "nav.pages,nav.sort{margin:12px 0;display:flex;gap:14px;align-items:center}\n"
    ".wrap{overflow-x:auto}\n"
    "svg.chart{width:100%;height:auto;max-width:720px;background:var(--card);"
    "border:1px solid var(--line);border-radius:8px}\n"
    "svg.chart .grid{stroke:var(--line);stroke-width:1}\n"
    "svg.chart .axis{stroke:var(--mut);stroke-width:1}\n"
    "svg.chart .line{fill:none;stroke:var(--acc);stroke-width:2;stroke-linejoin:round}\n"
    "svg.chart .dot{fill:var(--acc)}\n"
    "svg.chart text{fill:var(--mut);font-size:11px;font-family:system-ui,sans-serif}\n";

/* The document's head and the top of its body. */
static void dash_head(souk_buf_t *b, const char *title) {
  souk_buf_puts(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                   "<meta name=\"robots\" content=\"noindex\">"
                   "<link rel=\"icon\" href=\"data:,\">"
                   "<link rel=\"stylesheet\" href=\"/market/static/style.css\"><title>");
  dash_esc(b, title);
  souk_buf_puts(b, " · Market Sim</title></head>\n<body>\n");
}

static void dash_foot(souk_buf_t *b) { souk_buf_puts(b, "</body></html>\n"); }

/* An error page: the status's name and one sentence. */
static void dash_render_error(souk_buf_t *b, int status, const char *msg) {
  const char *name = status == 400   ? "Bad request"
                     : status == 403 ? "Forbidden"
                     : status == 404 ? "Not found"
                     : status == 503 ? "Unavailable"
                                     : "Server error";
  char t[64];
  snprintf(t, sizeof t, "%d %s", status, name);
  dash_head(b, t);
  souk_buf_puts(b, "<main><h1>");
  dash_esc(b, t);
  souk_buf_puts(b, "</h1><p id=\"error\">");
  dash_esc(b, msg);
  souk_buf_puts(b, "</p></main>\n");
  dash_foot(b);
}

/* The guild's line under a title: guild, season, price source. */
static void dash_guild_meta(souk_buf_t *b, const market_dash_data_t *d) {
  souk_buf_printf(b, "<p class=\"meta\">Guild <code>%" PRId64 "</code> · season %" PRId64 " · ",
                  d->path.guild_id, d->settings.season);
  souk_buf_puts(b, d->settings.source == MARKET_SRC_SIM
                       ? "<span class=\"tag\">simulated market</span>"
                       : "<span class=\"tag\">live prices</span>");
  souk_buf_puts(b, "</p>\n");
}

/* Oldest and newest quote times among the snapshot's prices (0 if none);
 * with only, limited to the symbols it accepts. */
static void dash_snapshot_span(const market_dash_data_t *d, bool holdings_only,
                               const market_holding_t *only, size_t nonly, int64_t *oldest,
                               int64_t *newest, size_t *count) {
  *oldest = *newest = 0;
  *count = 0;
  for (size_t i = 0; i < (holdings_only ? nonly : d->nprices); i++) {
    const market_last_price_t *p =
        holdings_only ? dash_price_find(d, only[i].symbol) : &d->prices[i];
    if (!p) continue;
    int64_t t = p->quote_time_ms > 0 ? p->quote_time_ms : p->fetched_ms;
    if (*count == 0 || t < *oldest) *oldest = t;
    if (*count == 0 || t > *newest) *newest = t;
    (*count)++;
  }
}

/* The footer line that says which prices valued the page. */
static void dash_snapshot_note(souk_buf_t *b, const market_dash_data_t *d, bool holdings_only,
                               const market_holding_t *only, size_t nonly) {
  int64_t oldest, newest;
  size_t count;
  dash_snapshot_span(d, holdings_only, only, nonly, &oldest, &newest, &count);
  if (d->path.kind != MARKET_DASH_PRICES && d->settings.source == MARKET_SRC_SIM) {
    char t[48];
    market_fmt_utc(d->snap_ms, t, sizeof t);
    souk_buf_puts(b, "<p class=\"note\" id=\"snapshot\">Valued with the simulated market at ");
    dash_esc(b, t);
    souk_buf_puts(b, ", one snapshot for the whole page.</p>\n");
    return;
  }
  souk_buf_puts(b, "<p class=\"note\" id=\"snapshot\">Valued at the last known prices");
  if (count == 0) {
    souk_buf_puts(b, " (none recorded yet: holdings are valued at their cost).</p>\n");
    return;
  }
  char a[48], z[48];
  dash_fmt_age(a, sizeof a, d->now_ms, newest);
  dash_fmt_age(z, sizeof z, d->now_ms, oldest);
  souk_buf_printf(b, ", one snapshot of %zu symbol%s: newest quote ", count, count == 1 ? "" : "s");
  dash_esc(b, a);
  if (count > 1) {
    souk_buf_puts(b, ", oldest ");
    dash_esc(b, z);
  }
  souk_buf_puts(b, ".");
  if (d->now_ms - oldest > MARKET_DASH_STALE_MS)
    souk_buf_puts(b, " <span class=\"stale\">Some quotes are more than a day old.</span>");
  souk_buf_puts(b, "</p>\n");
}

static void dash_footer(souk_buf_t *b, const market_dash_data_t *d) {
  char t[48];
  market_fmt_utc(d->now_ms, t, sizeof t);
  souk_buf_puts(b, "<footer>Market Sim · read-only · rendered ");
  dash_esc(b, t);
  souk_buf_puts(b, ". Money is virtual.</footer>\n");
}

/* A link to the leaderboard page p sorted by. */
static void dash_board_href(souk_buf_t *b, int64_t guild, int64_t page, market_rank_by_t by) {
  souk_buf_printf(b, "/market/%" PRId64, guild);
  if (by == MARKET_RANK_ROI) souk_buf_printf(b, "?by=roi");
  if (page > 1) souk_buf_printf(b, "%cpage=%" PRId64, by == MARKET_RANK_ROI ? '&' : '?', page);
}

static void dash_render_board(souk_buf_t *b, const market_dash_data_t *d) {
  char title[96];
  snprintf(title, sizeof title, "Leaderboard of guild %" PRId64, d->path.guild_id);
  dash_head(b, title);
  int64_t g = d->path.guild_id;
  int64_t pages =
      d->total ? ((int64_t)d->total + MARKET_DASH_PAGE_SIZE - 1) / MARKET_DASH_PAGE_SIZE : 1;
  souk_buf_puts(b, "<header><h1>Leaderboard</h1>\n");
  dash_guild_meta(b, d);
  souk_buf_puts(b, "</header>\n<main>\n<nav class=\"sort\">Ranked by ");
  if (d->by == MARKET_RANK_VALUE) {
    souk_buf_puts(b, "<strong>total value</strong> · <a href=\"");
    dash_board_href(b, g, 1, MARKET_RANK_ROI);
    souk_buf_puts(b, "\">ROI</a>");
  } else {
    souk_buf_puts(b, "<a href=\"");
    dash_board_href(b, g, 1, MARKET_RANK_VALUE);
    souk_buf_puts(b, "\">total value</a> · <strong>ROI</strong>");
  }
  souk_buf_printf(b, " · <a href=\"/market/%" PRId64 "/prices\">prices</a></nav>\n", g);
  souk_buf_printf(b, "<p class=\"meta\" id=\"players\">%zu player%s</p>\n", d->total,
                  d->total == 1 ? "" : "s");
  if (d->nranks == 0) {
    souk_buf_puts(b, "<p id=\"empty\">Nobody has traded in this season yet.</p>\n");
  } else {
    souk_buf_puts(b, "<div class=\"wrap\"><table id=\"leaderboard\"><thead><tr>"
                     "<th class=\"num\">Rank</th><th>Player (user id)</th>"
                     "<th class=\"num\">Total value</th><th class=\"num\">ROI</th>"
                     "</tr></thead><tbody>\n");
    for (size_t i = 0; i < d->nranks; i++) {
      const market_rank_t *r = &d->ranks[i];
      souk_buf_printf(b,
                      "<tr><td class=\"num\">%" PRId64 "</td><td><a href=\"/market/%" PRId64
                      "/user/%" PRId64 "\"><code>%" PRId64 "</code></a></td><td class=\"num\">",
                      r->rank, g, r->user_id, r->user_id);
      dash_cents(b, r->value_cents);
      souk_buf_printf(b, "</td><td class=\"num %s\">", dash_sign_class(r->roi_bp));
      dash_bp(b, r->roi_bp);
      souk_buf_puts(b, "</td></tr>\n");
    }
    souk_buf_puts(b, "</tbody></table></div>\n");
  }
  souk_buf_puts(b, "<nav class=\"pages\" aria-label=\"pages\">");
  if (d->page > 1) {
    souk_buf_puts(b, "<a rel=\"prev\" href=\"");
    dash_board_href(b, g, d->page - 1, d->by);
    souk_buf_puts(b, "\">« Previous</a>");
  }
  souk_buf_printf(b, "<span id=\"pageinfo\">Page %" PRId64 " of %" PRId64 "</span>", d->page,
                  pages);
  if (d->page < pages) {
    souk_buf_puts(b, "<a rel=\"next\" href=\"");
    dash_board_href(b, g, d->page + 1, d->by);
    souk_buf_puts(b, "\">Next »</a>");
  }
  souk_buf_puts(b, "</nav>\n");
  dash_snapshot_note(b, d, false, NULL, 0);
  char ranked[48];
  dash_fmt_age(ranked, sizeof ranked, d->now_ms, d->snap_ms);
  souk_buf_puts(b, "<p class=\"note\" id=\"ranked\">Ranked ");
  dash_esc(b, ranked);
  souk_buf_printf(b, "; rankings are recomputed at most every %d s.</p>\n",
                  MARKET_DASH_BOARD_TTL_MS / 1000);
  souk_buf_puts(b, "</main>\n");
  dash_footer(b, d);
  dash_foot(b);
}

/* The value chart: daily history as an inline SVG line with labelled axes.
 * No points draws the axes and says so; one point draws a dot. */
static void dash_svg_chart(souk_buf_t *b, const market_history_point_t *pts, size_t n) {
  const double W = 720, H = 280, L = 104, R = 20, T = 16, B = 40;
  const double pw = W - L - R, ph = H - T - B;
  souk_buf_printf(b,
                  "<svg class=\"chart\" id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
                  "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-labelledby=\"chart-title\">"
                  "<title id=\"chart-title\">",
                  W, H);
  char a[MARKET_FMT_MAX], z[MARKET_FMT_MAX], d0[16], d1[16];
  if (n == 0) {
    souk_buf_puts(b, "Daily value: no snapshots yet</title>");
  } else {
    dash_fmt_day(d0, sizeof d0, pts[0].day);
    dash_fmt_day(d1, sizeof d1, pts[n - 1].day);
    market_fmt_cents(pts[0].value_cents, a, sizeof a);
    market_fmt_cents(pts[n - 1].value_cents, z, sizeof z);
    souk_buf_printf(b, "Daily value, %zu day%s: ", n, n == 1 ? "" : "s");
    dash_esc(b, d0);
    souk_buf_puts(b, " ");
    dash_esc(b, a);
    if (n > 1) {
      souk_buf_puts(b, " to ");
      dash_esc(b, d1);
      souk_buf_puts(b, " ");
      dash_esc(b, z);
    }
    souk_buf_puts(b, "</title>");
  }
  /* Axes. */
  souk_buf_printf(b,
                  "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                  "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                  L, T, L, T + ph, L, T + ph, L + pw, T + ph);
  if (n == 0) {
    souk_buf_printf(b,
                    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">No daily snapshots yet"
                    "</text></svg>\n",
                    L + pw / 2, T + ph / 2);
    return;
  }
  /* The value range, widened so a flat line sits in the middle and a
   * moving one does not touch the frame. */
  int64_t lo = pts[0].value_cents, hi = lo;
  for (size_t i = 1; i < n; i++) {
    if (pts[i].value_cents < lo) lo = pts[i].value_cents;
    if (pts[i].value_cents > hi) hi = pts[i].value_cents;
  }
  double vlo = (double)lo, vhi = (double)hi;
  if (hi == lo) {
    double pad = vhi / 100 > 100 ? vhi / 100 : (vhi / 100 < -100 ? -vhi / 100 : 100);
    vlo -= pad;
    vhi += pad;
  } else {
    double pad = (vhi - vlo) * 0.05;
    vlo -= pad;
    vhi += pad;
  }
  double span = vhi - vlo;
  /* Horizontal grid lines with their values: bottom, middle, top. */
  for (int k = 0; k <= 2; k++) {
    double v = vlo + span * k / 2;
    double y = T + ph - ph * k / 2;
    char t[MARKET_FMT_MAX];
    market_fmt_cents((int64_t)(v >= 0 ? v + 0.5 : v - 0.5), t, sizeof t);
    if (k > 0)
      souk_buf_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                      L, y, L + pw, y);
    souk_buf_printf(b, "<text class=\"ylabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", L - 6,
                    y + 4);
    dash_esc(b, t);
    souk_buf_puts(b, "</text>");
  }
  /* x of point i: spread evenly; a single point sits in the middle. */
#define DASH_X(i) (n == 1 ? L + pw / 2 : L + pw * (double)(i) / (double)(n - 1))
#define DASH_Y(v) (T + ph - ph * (((double)(v)-vlo) / span))
  /* Day labels: first, last and (with three or more) the middle one. */
  size_t lab[3] = {0, n / 2, n - 1};
  size_t nlab = n == 1 ? 1 : n == 2 ? 2 : 3;
  if (nlab == 2) lab[1] = n - 1;
  for (size_t k = 0; k < nlab; k++) {
    size_t i = lab[k];
    char t[16];
    dash_fmt_day(t, sizeof t, pts[i].day);
    const char *anchor = n == 1 || (nlab == 3 && k == 1) ? "middle" : k == 0 ? "start" : "end";
    souk_buf_printf(b, "<text class=\"xlabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">",
                    DASH_X(i), T + ph + 18, anchor);
    dash_esc(b, t);
    souk_buf_puts(b, "</text>");
  }
  if (n == 1) {
    souk_buf_printf(b, "<circle class=\"dot\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\"/>", DASH_X(0),
                    DASH_Y(pts[0].value_cents));
  } else {
    souk_buf_puts(b, "<polyline class=\"line\" points=\"");
    for (size_t i = 0; i < n; i++)
      souk_buf_printf(b, "%s%.1f,%.1f", i ? " " : "", DASH_X(i), DASH_Y(pts[i].value_cents));
    souk_buf_puts(b, "\"/>");
    souk_buf_printf(b, "<circle class=\"dot\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>", DASH_X(n - 1),
                    DASH_Y(pts[n - 1].value_cents));
  }
#undef DASH_X
#undef DASH_Y
  souk_buf_puts(b, "</svg>\n");
}

/* One summary figure. */
static void dash_fig(souk_buf_t *b, const char *id, const char *label, const char *cls) {
  souk_buf_printf(b, "<div><dt>%s</dt><dd id=\"%s\"%s%s%s>", label, id, cls ? " class=\"" : "",
                  cls ? cls : "", cls ? "\"" : "");
}

static void dash_render_user(souk_buf_t *b, const market_dash_data_t *d) {
  char title[96];
  snprintf(title, sizeof title, "Portfolio of %" PRId64, d->path.user_id);
  dash_head(b, title);
  const market_account_t *a = &d->pf.account;
  int64_t g = d->path.guild_id;
  souk_buf_printf(b,
                  "<header><p class=\"meta\"><a href=\"/market/%" PRId64
                  "\">« Leaderboard</a></p><h1>Portfolio of <code>%" PRId64 "</code></h1>\n",
                  g, d->path.user_id);
  dash_guild_meta(b, d);
  souk_buf_puts(b, "</header>\n<main>\n<dl class=\"sum\">");
  int64_t hold = 0, roi = 0, pl = 0;
  bool hold_ok = market_sub(d->value_cents, a->cash_cents, &hold) == 0;
  bool roi_ok = a->initial_cents > 0 && market_roi_bp(d->value_cents, a->initial_cents, &roi) == 0;
  bool pl_ok = market_sub(d->value_cents, a->initial_cents, &pl) == 0;
  dash_fig(b, "total", "Total value", NULL);
  dash_cents(b, d->value_cents);
  souk_buf_puts(b, "</dd></div>");
  dash_fig(b, "cash", "Cash", NULL);
  dash_cents(b, a->cash_cents);
  souk_buf_puts(b, "</dd></div>");
  dash_fig(b, "holdings-value", "Holdings", NULL);
  if (hold_ok)
    dash_cents(b, hold);
  else
    souk_buf_puts(b, "—");
  souk_buf_puts(b, "</dd></div>");
  dash_fig(b, "roi", "Return (ROI)", roi_ok ? dash_sign_class(roi) : NULL);
  if (roi_ok) {
    dash_bp(b, roi);
    if (pl_ok) {
      souk_buf_puts(b, " <small>(");
      if (pl > 0) souk_buf_putc(b, '+');
      dash_cents(b, pl);
      souk_buf_puts(b, ")</small>");
    }
  } else {
    souk_buf_puts(b, "—");
  }
  souk_buf_puts(b, "</dd></div>");
  int64_t dc = 0;
  bool dc_ok = d->has_prev && market_sub(d->value_cents, d->prev_value, &dc) == 0;
  dash_fig(b, "day-change", "Since last close", dc_ok ? dash_sign_class(dc) : NULL);
  if (dc_ok) {
    if (dc > 0) souk_buf_putc(b, '+');
    dash_cents(b, dc);
  } else {
    souk_buf_puts(b, "—");
  }
  souk_buf_puts(b, "</dd></div>");
  dash_fig(b, "initial", "Started with", NULL);
  dash_cents(b, a->initial_cents);
  souk_buf_puts(b, "</dd></div></dl>\n");

  souk_buf_puts(b, "<h2>Value history</h2>\n");
  dash_svg_chart(b, d->hist, d->nhist);

  souk_buf_puts(b, "<h2>Holdings</h2>\n");
  if (d->pf.n == 0) {
    souk_buf_puts(b, "<p id=\"no-holdings\">No holdings: all cash.</p>\n");
  } else {
    souk_buf_puts(b, "<div class=\"wrap\"><table id=\"holdings\"><thead><tr><th>Symbol</th>"
                     "<th class=\"num\">Shares</th><th class=\"num\">Avg cost</th>"
                     "<th class=\"num\">Price</th><th class=\"num\">Value</th>"
                     "<th class=\"num\">Gain</th><th>Quote</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < d->pf.n; i++) {
      const market_holding_t *h = &d->pf.holdings[i];
      const market_last_price_t *p = dash_price_find(d, h->symbol);
      int64_t value = h->cost_cents;
      bool priced =
          p && p->price_micro > 0 && market_gross_down(p->price_micro, h->shares, &value) == 0;
      if (!priced) value = h->cost_cents;
      souk_buf_puts(b, "<tr><td><code>");
      dash_esc(b, h->symbol);
      souk_buf_printf(b, "</code></td><td class=\"num\">%" PRId64 "</td><td class=\"num\">",
                      h->shares);
      if (h->shares > 0)
        dash_price_text(b, market_avg_cost_micro(h->cost_cents, h->shares));
      else
        souk_buf_puts(b, "—");
      souk_buf_puts(b, "</td><td class=\"num\">");
      if (priced)
        dash_price_text(b, p->price_micro);
      else
        souk_buf_puts(b, "—");
      souk_buf_puts(b, "</td><td class=\"num\">");
      dash_cents(b, value);
      int64_t gain = 0;
      bool gain_ok = priced && market_sub(value, h->cost_cents, &gain) == 0;
      souk_buf_printf(b, "</td><td class=\"num %s\">", gain_ok ? dash_sign_class(gain) : "");
      if (gain_ok) {
        if (gain > 0) souk_buf_putc(b, '+');
        dash_cents(b, gain);
      } else {
        souk_buf_puts(b, "—");
      }
      souk_buf_puts(b, "</td><td>");
      if (priced) {
        char age[48];
        int64_t t = p->quote_time_ms > 0 ? p->quote_time_ms : p->fetched_ms;
        dash_fmt_age(age, sizeof age, d->now_ms, t);
        dash_esc(b, age);
        souk_buf_puts(b, " · ");
        dash_esc(b, p->source);
        if (d->now_ms - t > MARKET_DASH_STALE_MS)
          souk_buf_puts(b, " <span class=\"stale\">stale</span>");
      } else {
        souk_buf_puts(b, "<span class=\"stale\">no price: valued at cost</span>");
      }
      souk_buf_puts(b, "</td></tr>\n");
    }
    souk_buf_puts(b, "</tbody></table></div>\n");
  }
  dash_snapshot_note(b, d, true, d->pf.holdings, d->pf.n);

  souk_buf_puts(b, "<h2>Recent trades</h2>\n");
  if (d->ntrades == 0) {
    souk_buf_puts(b, "<p id=\"no-trades\">No trades yet.</p>\n");
  } else {
    souk_buf_puts(b, "<div class=\"wrap\"><table id=\"trades\"><thead><tr><th>When</th>"
                     "<th>Side</th><th>Symbol</th><th class=\"num\">Shares</th>"
                     "<th class=\"num\">Price</th><th class=\"num\">Amount</th>"
                     "<th class=\"num\">Commission</th><th class=\"num\">Realised</th>"
                     "</tr></thead><tbody>\n");
    for (size_t i = 0; i < d->ntrades; i++) {
      const market_trade_t *t = &d->trades[i];
      char when[48];
      market_fmt_utc(t->created_at, when, sizeof when);
      souk_buf_puts(b, "<tr><td>");
      dash_esc(b, when);
      souk_buf_printf(b, "</td><td>%s</td><td><code>", t->side == MARKET_BUY ? "buy" : "sell");
      dash_esc(b, t->symbol);
      souk_buf_printf(b, "</code></td><td class=\"num\">%" PRId64 "</td><td class=\"num\">",
                      t->shares);
      dash_price_text(b, t->price_micro);
      souk_buf_puts(b, "</td><td class=\"num\">");
      dash_cents(b, t->amount_cents);
      souk_buf_puts(b, "</td><td class=\"num\">");
      dash_cents(b, t->commission_cents);
      if (t->side == MARKET_SELL) {
        souk_buf_printf(b, "</td><td class=\"num %s\">", dash_sign_class(t->realised_cents));
        if (t->realised_cents > 0) souk_buf_putc(b, '+');
        dash_cents(b, t->realised_cents);
      } else {
        souk_buf_puts(b, "</td><td class=\"num\">—");
      }
      souk_buf_puts(b, "</td></tr>\n");
    }
    souk_buf_puts(b, "</tbody></table></div>\n");
  }
  souk_buf_puts(b, "</main>\n");
  dash_footer(b, d);
  dash_foot(b);
}

/* One row of a prices table. */
static void dash_price_row(souk_buf_t *b, const market_dash_data_t *d, const char *symbol,
                           const market_last_price_t *p) {
  souk_buf_puts(b, "<tr><td><code>");
  dash_esc(b, symbol);
  souk_buf_puts(b, "</code></td>");
  if (!p) {
    souk_buf_puts(b, "<td class=\"num\">—</td><td class=\"num\">—</td><td>—</td><td>—</td>"
                     "<td><span class=\"stale\">no price recorded</span></td></tr>\n");
    return;
  }
  souk_buf_puts(b, "<td class=\"num\">");
  dash_price_text(b, p->price_micro);
  souk_buf_puts(b, "</td>");
  int64_t bp = 0;
  if (p->prev_close_micro > 0 && market_roi_bp(p->price_micro, p->prev_close_micro, &bp) == 0) {
    souk_buf_printf(b, "<td class=\"num %s\">", dash_sign_class(bp));
    dash_bp(b, bp);
    souk_buf_puts(b, "</td>");
  } else {
    souk_buf_puts(b, "<td class=\"num\">—</td>");
  }
  souk_buf_puts(b, "<td>");
  dash_esc(b, p->source);
  if (!strcmp(p->source, "sim") || !strcmp(p->source, "simulated"))
    souk_buf_puts(b, " <span class=\"tag\">simulated</span>");
  souk_buf_puts(b, "</td><td>");
  char t[48], age[48];
  int64_t qt = p->quote_time_ms > 0 ? p->quote_time_ms : p->fetched_ms;
  market_fmt_utc(qt, t, sizeof t);
  dash_esc(b, t);
  souk_buf_puts(b, "</td><td>");
  dash_fmt_age(age, sizeof age, d->now_ms, qt);
  dash_esc(b, age);
  if (d->now_ms - qt > MARKET_DASH_STALE_MS)
    souk_buf_puts(b, " <span class=\"stale\">stale</span>");
  souk_buf_puts(b, "</td></tr>\n");
}

static void dash_render_prices(souk_buf_t *b, const market_dash_data_t *d) {
  bool guild = d->path.kind == MARKET_DASH_GPRICES;
  char title[96];
  if (guild)
    snprintf(title, sizeof title, "Prices of guild %" PRId64, d->path.guild_id);
  else
    snprintf(title, sizeof title, "Price cache");
  dash_head(b, title);
  if (guild) {
    souk_buf_printf(b,
                    "<header><p class=\"meta\"><a href=\"/market/%" PRId64
                    "\">« Leaderboard</a></p><h1>Prices</h1>\n",
                    d->path.guild_id);
    dash_guild_meta(b, d);
    souk_buf_puts(b, d->settings.source == MARKET_SRC_SIM
                         ? "<p class=\"note\">Every symbol held in this guild's season, priced "
                           "by the simulated market now.</p></header>\n"
                         : "<p class=\"note\">The last known price of every symbol held in this "
                           "guild's season, as persisted by the price cache.</p></header>\n");
  } else {
    souk_buf_printf(b,
                    "<header><h1>Price cache</h1><p class=\"note\">Every last known price "
                    "persisted by the price cache (%zu symbol%s).</p></header>\n",
                    d->nprices, d->nprices == 1 ? "" : "s");
  }
  souk_buf_puts(b, "<main>\n");
  size_t rows = guild ? d->nheld : d->nprices;
  if (rows == 0) {
    souk_buf_puts(b, guild ? "<p id=\"empty\">No symbols are held in this season.</p>\n"
                           : "<p id=\"empty\">No prices recorded yet.</p>\n");
  } else {
    souk_buf_puts(b, "<div class=\"wrap\"><table id=\"prices\"><thead><tr><th>Symbol</th>"
                     "<th class=\"num\">Last price</th><th class=\"num\">Change</th>"
                     "<th>Source</th><th>Quote time</th><th>Age</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < rows; i++) {
      if (guild)
        dash_price_row(b, d, d->held[i], dash_price_find(d, d->held[i]));
      else
        dash_price_row(b, d, d->prices[i].symbol, &d->prices[i]);
    }
    souk_buf_puts(b, "</tbody></table></div>\n");
  }
  souk_buf_puts(b, "</main>\n");
  dash_footer(b, d);
  dash_foot(b);
}

static void dash_render_index(souk_buf_t *b) {
  dash_head(b, "Market Sim");
  souk_buf_puts(b, "<header><h1>Market Sim</h1></header>\n<main><p>Each guild that made its "
                   "dashboard public has its leaderboard at <code>/market/&lt;guild id&gt;</code>"
                   ". A guild's admins turn it on in the game's settings.</p></main>\n");
  dash_foot(b);
}

/* Render the page d describes (status 200 or 404) into b. */
static int dash_render(souk_buf_t *b, const market_dash_data_t *d) {
  if (d->status != 200) {
    dash_render_error(b, d->status, d->why ? d->why : "Not found.");
    return d->status;
  }
  switch (d->path.kind) {
  case MARKET_DASH_BOARD:
    dash_render_board(b, d);
    break;
  case MARKET_DASH_USER:
    dash_render_user(b, d);
    break;
  case MARKET_DASH_GPRICES:
  case MARKET_DASH_PRICES:
    dash_render_prices(b, d);
    break;
  case MARKET_DASH_INDEX:
    dash_render_index(b);
    break;
  case MARKET_DASH_CSS:
    break;
  }
  return 200;
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
  dash_render_error(&b, status, msg);
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
    int code = dash_render(&b, &j->d);
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
    souk_httpd_respond(req, 200, "text/css; charset=utf-8", dash_css, sizeof dash_css - 1);
    return;
  }
  if (p.kind == MARKET_DASH_INDEX) {
    souk_buf_t b;
    souk_buf_init(&b);
    dash_render_index(&b);
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
      dash_send_error(req, 400, "The page number must be a whole number from 1.");
      return;
    }
    if (dash_parse_by(souk_httpd_query(req, "by"), &by) != 0) {
      dash_send_error(req, 400, "The leaderboard can be ranked by=value or by=roi.");
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
