/* The Market Sim's ledger: game settings, accounts, trades, portfolios,
 * valuation, leaderboards, daily snapshots and the persisted price cache,
 * over the tables of store migration v2 (src/store/migrations.c).
 *
 * Functions taking a souk_db_t run inside the caller's transaction
 * function: they may run more than once (the store re-runs a whole
 * transaction after a busy/serialization error), they reset their outputs
 * at the start, and on PostgreSQL the caller must stop at the first error
 * they return.  The *_tx wrappers run one transaction of their own on a
 * souk_store_t and block: call them from a pool thread, the CLI or tests.
 *
 * Money is int64 cents and prices int64 micro-dollars (money.h).  Seasons
 * are numbered from 1; a guild's current season is in market_settings.
 * Passing season 0 to a reader means "the guild's current season".
 *
 * Strings in the structs below are fixed arrays, so results own no memory
 * except the arrays the *_free functions release. */
#ifndef MARKET_LEDGER_H
#define MARKET_LEDGER_H

#include "souk/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Longest symbol accepted, in bytes (without the NUL); the same value as
 * price.h's. */
#ifndef MARKET_SYMBOL_MAX
#define MARKET_SYMBOL_MAX 15
#endif

/** Where a season's prices come from: the provider chain or the simulated
 * market.  Fixed for a season; a trade priced from the other source is
 * refused. */
typedef enum market_source { MARKET_SRC_SIM = 0, MARKET_SRC_LIVE = 1 } market_source_t;

/** Market-hours policy of a guild's game. */
typedef enum market_hours {
  MARKET_HOURS_LAST_PRICE = 0, /* trade any time at the last price */
  MARKET_HOURS_OPEN_ONLY = 1   /* trade only while the US market is open */
} market_hours_t;

/** "sim" / "live". */
const char *market_source_name(market_source_t s);
/** "last_price" / "open_only". */
const char *market_hours_name(market_hours_t h);

/** A guild's game settings. */
typedef struct market_settings {
  int64_t guild_id;
  int64_t season;           /* current season, >= 1 */
  int64_t start_cash_cents; /* cash of a new account, >= 0 */
  market_source_t source;   /* the current season's price source */
  int64_t commission_cents; /* per trade, >= 0 */
  bool dashboard_public;
  market_hours_t hours;
  int64_t season_started_at; /* Unix ms */
  bool stored;               /* a row exists (false: these are the defaults) */
} market_settings_t;

/** Fill s with the built-in defaults for guild_id: season 1, $1,000,000,
 * source given, no commission, dashboard private, trade at last price. */
void market_settings_defaults(market_settings_t *s, int64_t guild_id, market_source_t source);

/** Read a guild's settings; with no row, *out is a copy of defaults (with
 * guild_id set and stored false).  Nothing is written. */
int market_settings_get(souk_db_t *db, int64_t guild_id, const market_settings_t *defaults,
                        market_settings_t *out);
/** Read a guild's settings, inserting defaults first when there is no row,
 * so the season's price source is fixed from then on.  now_ms stamps a new
 * row. */
int market_settings_ensure(souk_db_t *db, int64_t guild_id, const market_settings_t *defaults,
                           int64_t now_ms, market_settings_t *out);
/** Store start_cash_cents, commission_cents, dashboard_public and hours of
 * s for s->guild_id (inserting the row if needed).  The season and its price
 * source are NOT changed by this: a new row takes s->source and season 1;
 * an existing one keeps its own (see market_season_reset).  SOUK_EINVAL for
 * negative amounts. */
int market_settings_set(souk_db_t *db, const market_settings_t *s, int64_t now_ms);
/** Start a new season for a guild: season + 1 (1 when there was no row),
 * with new_source as its price source.  The old season's accounts,
 * holdings, trades and history stay for history; accounts of the new season
 * are created on first use.  *season_out (may be NULL) gets the new
 * number. */
int market_season_reset(souk_db_t *db, int64_t guild_id, const market_settings_t *defaults,
                        market_source_t new_source, int64_t now_ms, int64_t *season_out);

/** One account: a user's game in one guild and season. */
typedef struct market_account {
  int64_t guild_id, season, user_id;
  int64_t cash_cents;
  int64_t initial_cents;    /* starting cash: ROI is measured against it */
  int64_t last_value_cents; /* total value at the last daily snapshot */
  int64_t created_at;       /* Unix ms */
} market_account_t;

/** The user's account in the guild's current season, created with the
 * guild's starting cash when missing (settings are ensured first, from
 * defaults).  *created (may be NULL) says whether it was new.  On
 * PostgreSQL the account row stays locked (FOR UPDATE) until the
 * transaction ends, which serialises a user's concurrent trades. */
int market_account_get_or_create(souk_db_t *db, int64_t guild_id, int64_t user_id,
                                 const market_settings_t *defaults, int64_t now_ms,
                                 market_account_t *out, bool *created);
/** Read an account without creating it: SOUK_ENOTFOUND when there is none.
 * season 0: the current one. */
int market_account_get(souk_db_t *db, int64_t guild_id, int64_t season, int64_t user_id,
                       market_account_t *out);

/** Buy or sell. */
typedef enum market_side { MARKET_BUY = 1, MARKET_SELL = 2 } market_side_t;
/** How the quantity is given. */
typedef enum market_mode {
  MARKET_BY_SHARES = 0, /* req.shares whole shares */
  MARKET_BY_AMOUNT = 1, /* buy: the most shares req.amount_cents pays for,
                         * commission included; sell: the most shares whose
                         * exact value is at most req.amount_cents */
  MARKET_SELL_ALL = 2   /* sell every share held */
} market_mode_t;

/** Why a trade was refused (0: it was not). */
typedef enum market_refusal {
  MARKET_TRADE_OK = 0,
  MARKET_REFUSE_CASH,       /* not enough cash for cost + commission */
  MARKET_REFUSE_SHARES,     /* selling more than held (or none held) */
  MARKET_REFUSE_ZERO,       /* the amount buys/sells zero shares, or shares <= 0 */
  MARKET_REFUSE_OVERFLOW,   /* a value would not fit in int64 */
  MARKET_REFUSE_SOURCE,     /* price source differs from the season's */
  MARKET_REFUSE_COMMISSION, /* a sale worth less than the commission */
  MARKET_REFUSE_PRICE       /* price_micro <= 0 */
} market_refusal_t;

/** A short English reason, e.g. "not enough cash". */
const char *market_refusal_str(market_refusal_t r);

/** A trade to make.  Strings are borrowed for the call. */
typedef struct market_trade_req {
  int64_t guild_id, user_id;
  const char *symbol; /* 1..MARKET_SYMBOL_MAX bytes, as the caller validated it */
  market_side_t side;
  market_mode_t mode;
  int64_t shares;       /* MARKET_BY_SHARES */
  int64_t amount_cents; /* MARKET_BY_AMOUNT */
  int64_t price_micro;  /* the quote to trade at */
  market_source_t source;
  int64_t price_time_ms; /* the quote's own time (Unix ms) */
  const char *idem_key;  /* the interaction or message id: one trade per key */
  int64_t now_ms;
  const market_settings_t *defaults; /* for a guild with no settings row */
} market_trade_req_t;

/** A trade made (or the reason it was not).  Also one row of a user's
 * history (market_tx_list). */
typedef struct market_trade {
  market_refusal_t refusal;
  bool duplicate; /* idem_key was used before: this is the original trade */
  int64_t id;
  int64_t guild_id, season, user_id;
  market_side_t side;
  char symbol[MARKET_SYMBOL_MAX + 1];
  int64_t shares;
  int64_t price_micro;
  int64_t amount_cents;     /* gross value: buy rounded up, sell rounded down */
  int64_t commission_cents; /* added to a buy's cost, taken off a sale */
  int64_t cash_before, cash_after;
  int64_t realised_cents; /* sells: proceeds - cost removed; buys 0 */
  market_source_t source;
  int64_t price_time_ms, created_at;
  /* Filled for a trade just made (not for duplicates or history rows): the
   * holding after it and the cost basis a sale removed. */
  int64_t holding_shares, holding_cost_cents, cost_removed_cents;
} market_trade_t;

/** Make a trade inside the caller's transaction: returns 0 with
 * out->refusal MARKET_TRADE_OK (done), another refusal (nothing written apart
 * from creating the account on first use), or out->duplicate (idem_key was
 * used before: out is the original trade, read back, and nothing changes).
 * Cash, holdings and the audit row change together; conditional UPDATEs
 * and CHECKs make overspending impossible even under concurrent trades by
 * one user.  Returns SOUK_EEXIST in the rare race where another
 * transaction committed the same idem_key for another account first: roll
 * back and call again (market_trade_tx does). SOUK_EINVAL for a malformed
 * request; other SOUK_E* from the store. */
int market_trade(souk_db_t *db, const market_trade_req_t *req, market_trade_t *out);
/** market_trade in a transaction of its own (retrying once after
 * SOUK_EEXIST, which then finds the original). */
int market_trade_tx(souk_store_t *st, const market_trade_req_t *req, market_trade_t *out);
/** The trade recorded under idem_key: 0, or SOUK_ENOTFOUND. */
int market_trade_by_key(souk_db_t *db, const char *idem_key, market_trade_t *out);

/** A holding: shares and their total cost (average = cost / shares, see
 * market_avg_cost_micro). */
typedef struct market_holding {
  char symbol[MARKET_SYMBOL_MAX + 1];
  int64_t shares;
  int64_t cost_cents;
} market_holding_t;

/** A user's portfolio in one season. */
typedef struct market_portfolio {
  bool exists; /* false: no account yet (the rest is zero) */
  market_account_t account;
  market_holding_t *holdings; /* sorted by symbol; owned, market_portfolio_free */
  size_t n;
} market_portfolio_t;

/** Read a user's portfolio (season 0: current).  Never creates anything. */
int market_portfolio_get(souk_db_t *db, int64_t guild_id, int64_t season, int64_t user_id,
                         market_portfolio_t *out);
/** Free what market_portfolio_get allocated; p itself is the caller's. */
void market_portfolio_free(market_portfolio_t *p);

/** A user's trades, newest first, skipping offset and returning at most
 * limit (1..1000).  *out is owned by the caller (souk_free); *n rows. */
int market_tx_list(souk_db_t *db, int64_t guild_id, int64_t season, int64_t user_id, int64_t offset,
                   int64_t limit, market_trade_t **out, size_t *n);

/** Every account of a guild's season with its holdings. */
typedef struct market_book {
  market_account_t *accounts; /* sorted by user_id */
  size_t n;
  market_holding_t *holdings; /* all of them, grouped by account */
  size_t *first, *count;      /* per account: its slice of holdings */
  size_t nholdings;
} market_book_t;

/** Read the book of a guild (season 0: current). */
int market_book_get(souk_db_t *db, int64_t guild_id, int64_t season, market_book_t *out);
/** Free a book's arrays. */
void market_book_free(market_book_t *b);

/** The distinct symbols held in a guild's current season, or in every
 * guild's current season when guild_id is 0, sorted.  *out is an array of
 * *n fixed-size strings owned by the caller (souk_free). */
int market_symbols_held(souk_db_t *db, int64_t guild_id, char (**out)[MARKET_SYMBOL_MAX + 1],
                        size_t *n);

/** A price lookup for valuation: 0 and *price_micro (> 0), or
 * SOUK_ENOTFOUND.  Must answer from one snapshot for the whole call. */
typedef int (*market_price_cb)(void *ud, const char *symbol, int64_t *price_micro);

/** Value of an account: cash + sum of floor(shares * price / 10,000).  A
 * holding the lookup cannot price is valued at its cost basis and counted
 * in *unpriced (may be NULL).  0 or SOUK_ERANGE. */
int market_value(const market_account_t *a, const market_holding_t *h, size_t n,
                 market_price_cb price, void *ud, int64_t *value_cents, size_t *unpriced);

/** What a leaderboard ranks by. */
typedef enum market_rank_by { MARKET_RANK_VALUE = 0, MARKET_RANK_ROI = 1 } market_rank_by_t;

/** One leaderboard row. */
typedef struct market_rank {
  int64_t rank; /* 1-based position; ties broken by user_id ascending */
  int64_t user_id;
  int64_t value_cents, initial_cents;
  int64_t roi_bp; /* 0 when initial is 0 */
} market_rank_t;

/** Rank every account of a guild's season (0: current) by value or ROI,
 * valued with one price snapshot, highest first; return rows
 * offset..offset+limit-1 (limit 1..1000) in *out (caller frees with
 * souk_free), *n of them, and *total accounts (may be NULL). */
int market_leaderboard(souk_db_t *db, int64_t guild_id, int64_t season, market_rank_by_t by,
                       market_price_cb price, void *ud, int64_t offset, int64_t limit,
                       market_rank_t **out, size_t *n, size_t *total);

/** Counts of one daily snapshot run. */
typedef struct market_snapshot_stats {
  int64_t accounts; /* valued and last_value updated */
  int64_t inserted; /* history rows written */
  int64_t existing; /* already had a row for that day (a rerun) */
  int64_t unpriced; /* holdings valued at cost for want of a price */
} market_snapshot_stats_t;

/** Value every account of every guild's current season with one price
 * snapshot, set last_value_cents, and write one history row per account for
 * day (YYYYMMDD, UTC) unless it exists: a rerun the same day inserts
 * nothing and changes no history row. */
int market_daily_snapshot(souk_db_t *db, int64_t day, market_price_cb price, void *ud,
                          int64_t now_ms, market_snapshot_stats_t *stats);
/** A price function that is told the guild's season source. */
typedef int (*market_source_price_cb)(void *ud, market_source_t source, const char *symbol,
                                      int64_t *price_micro);
/** market_daily_snapshot valuing each guild with the prices of its own
 * season's source (a simulated season never gets a live price, nor the
 * reverse). */
int market_daily_snapshot_by_source(souk_db_t *db, int64_t day, market_source_price_cb price,
                                    void *ud, int64_t now_ms, market_snapshot_stats_t *stats);
/** market_daily_snapshot in a transaction of its own. */
int market_daily_snapshot_tx(souk_store_t *st, int64_t day, market_price_cb price, void *ud,
                             int64_t now_ms, market_snapshot_stats_t *stats);
/** YYYYMMDD of a Unix ms time, in UTC. */
int64_t market_day_of(int64_t unix_ms);

/** The latest history value of an account from a day before before_day:
 * 0 and *value_cents / *day (may be NULL), or SOUK_ENOTFOUND.  A
 * portfolio's day change is its current value minus this. */
int market_history_prev(souk_db_t *db, int64_t guild_id, int64_t season, int64_t user_id,
                        int64_t before_day, int64_t *value_cents, int64_t *day);

/** Daily history points a value chart shows (the dashboard's) and
 * /history summarises: about a year. */
#define MARKET_HISTORY_CHART_DAYS 366

/** One history point. */
typedef struct market_history_point {
  int64_t day, value_cents;
} market_history_point_t;

/** The most recent limit (1..3660) history points of an account, oldest
 * first (for charts).  *out is the caller's (souk_free). */
int market_history_list(souk_db_t *db, int64_t guild_id, int64_t season, int64_t user_id,
                        int64_t limit, market_history_point_t **out, size_t *n);

/** A persisted price. */
typedef struct market_last_price {
  char symbol[MARKET_SYMBOL_MAX + 1];
  int64_t price_micro;      /* > 0 */
  int64_t prev_close_micro; /* 0: unknown */
  char source[24];          /* provider name, e.g. "finnhub", "sim" */
  int64_t quote_time_ms, fetched_ms;
} market_last_price_t;

/** Insert or replace n prices. */
int market_last_price_save(souk_db_t *db, const market_last_price_t *p, size_t n);
/** Every persisted price, sorted by symbol; *out is the caller's
 * (souk_free). */
int market_last_price_load_all(souk_db_t *db, market_last_price_t **out, size_t *n);

/** Delete every market row of user_id (accounts, holdings, trades,
 * history, the display name) in every guild; *deleted (may be NULL) gets
 * the row count.  Needs the module's schema (market_migrations). */
int market_forget_user(souk_db_t *db, int64_t user_id, int64_t *deleted);
/** The market's tables that hold people's and guilds' data: the module's
 * .data, which `souk db forget-user` / `purge-guild` reach. */
extern const souk_store_data_t market_data[];
/** Register market_data with the store's forget-user / purge-guild
 * registry (tests; the module registry does it for the module). */
int market_register_data(void);

#endif
