/* What the dashboard's two halves share: the pages' data, read by
 * dashboard.c on the worker pool, and the HTML and CSS that
 * dashboard_html.c renders it into on the loop thread.  Loop thread only,
 * except where a field says otherwise. */
#ifndef MARKET_DASHBOARD_INT_H
#define MARKET_DASHBOARD_INT_H

#include "ledger.h"
#include "players.h"
#include "price.h"
#include "souk/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The policy of every dashboard page. */
#define MARKET_DASH_CSP                                                                            \
  "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "                  \
  "form-action 'none'; frame-ancestors 'none'"
/** Leaderboard rows per page. */
#define MARKET_DASH_PAGE_SIZE 50
/** Highest page number accepted in a query (far beyond any real guild). */
#define MARKET_DASH_MAX_PAGE 1000000
/** Daily history points in a portfolio chart (about a year). */
#define MARKET_DASH_HISTORY MARKET_HISTORY_CHART_DAYS
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
  char (*names)[MARKET_NAME_MAX + 1];  /* the page's players' names ("" unknown) */
  char user_name[MARKET_NAME_MAX + 1]; /* a portfolio's player's name ("" unknown) */
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

/** The stylesheet every page links (/market/static/style.css). */
extern const char market_dash_css[];

/** The page d describes (its status 200), or the 404 page it asks for;
 * returns the HTTP status. */
int market_dash_render(souk_buf_t *b, const market_dash_data_t *d);
/** An error page with status and a one-line message. */
void market_dash_render_error(souk_buf_t *b, int status, const char *msg);
/** The index page (/market). */
void market_dash_render_index(souk_buf_t *b);
/** The snapshot's price of sym, or NULL (dashboard.c). */
const market_last_price_t *market_dash_price_find(const market_dash_data_t *d, const char *sym);

#endif
