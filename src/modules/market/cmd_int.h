/* What the market's command files share (cmd_*.c): the job each
 * command's work starts from, the steps on the store, pricing on a
 * guild's source, symbols, and the small pieces of the replies.
 *
 * Every handler finishes its ctx exactly once.  Work runs in steps: read
 * the guild's settings on the worker pool, price on the loop (the
 * simulated market directly, the live chain through the price cache),
 * then write or read the ledger on the worker pool and reply from the
 * done callback.  Each step's failure replies and frees the job.
 *
 * Loop thread only, except the transaction functions. */
#ifndef MARKET_CMD_INT_H
#define MARKET_CMD_INT_H

#include "market_int.h"
#include "players.h"
#include "souk/cmd.h"
#include "souk/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MARKET_COLOR_BUY  0x2ecc71
#define MARKET_COLOR_SELL 0xe67e22
#define MARKET_COLOR_INFO 0x3498db
#define MARKET_SIM_FOOTER "Simulated market: prices are made up, not real quotes."

/** Leaderboard pages: rows per page, and the page option's maximum. */
#define MARKET_LB_PAGE     10
#define MARKET_LB_MAX_PAGE 100000
/** Trades per /history page. */
#define MARKET_HIST_PAGE 10
/** Daily values /history lists (its first page), newest first; the
 * summary covers the chart's MARKET_HISTORY_CHART_DAYS. */
#define MARKET_HIST_DAYS 14
/** custom_id prefixes of the leaderboard's buttons and the season reset's
 * confirmation. */
#define MARKET_LB_PREFIX    "market:lb:"
#define MARKET_RESET_PREFIX "market:reset:"

/* ---- the job ---------------------------------------------------------- */

typedef struct market_job market_job_t;

/** What every command's job starts with; each operation's own job struct
 * embeds it as its first member and frees itself through free. */
struct market_job {
  souk_cmd_ctx_t *ctx;
  int64_t guild, user;
  char name[MARKET_NAME_MAX + 1]; /* the caller's display name, for pool threads */
  market_settings_t defaults; /* a new guild's settings, for this guild */
  market_settings_t set;      /* the guild's settings, once read */
  void (*free)(market_job_t *j);
};

/** Fill the common part of a job for ctx; free frees the whole job.  Also
 * notes the caller's display name (market_player_seen). */
void market_job_init(market_job_t *j, souk_cmd_ctx_t *ctx, void (*free)(market_job_t *j));
/** Run fn(db, j) on the worker pool in a transaction (write) or a
 * read-only one, then done(j, status) on the loop.  When it cannot start,
 * the store's error is the reply and the job is freed. */
void market_job_run(market_job_t *j, souk_store_tx_cb fn, souk_store_done_cb done, bool write);
/** In a done callback: when status is an error, reply that the game's
 * records are not available, free the job and return true. */
bool market_job_failed(market_job_t *j, int status);
/** A transaction function (ud: a market_job_t): read the guild's settings
 * into j->set. */
int market_job_settings_tx(souk_db_t *db, void *ud);

/** The store when the market can serve a command; otherwise NULL, after
 * replying why (no store in this process, or the market not running). */
souk_store_t *market_need_store(souk_cmd_ctx_t *ctx);

/** Price symbol from the source of the season set belongs to (the
 * simulated market, or the live chain through the price cache): fn(ud, r)
 * runs exactly once, maybe before this returns; r is valid during it. */
void market_price_symbol(const market_settings_t *set, const char *symbol,
                         void (*fn)(void *ud, const market_pc_result_t *r), void *ud);

/* ---- text ------------------------------------------------------------- */

/** Upper-case a typed symbol ("$aapl ") into out; false if it is not one. */
bool market_symbol_norm(const char *in, char *out, size_t cap);
/** Read the symbol option of ctx into out (MARKET_SYMBOL_MAX + 1 bytes);
 * when it is not a symbol, reply what a symbol is and return false (ctx is
 * then finished). */
bool market_symbol_arg(souk_cmd_ctx_t *ctx, char *out);
/** Read the dollar amount text of option opt into *cents, accepting
 * min_cents..max_cents; on a mistake reply what is wrong and what is
 * accepted (with examples, "1500, $1,500 or 99.95") and return false (ctx is
 * then finished). */
bool market_amount_arg(souk_cmd_ctx_t *ctx, const char *opt, const char *text, int64_t min_cents,
                       int64_t max_cents, const char *examples, int64_t *cents);
/** A change from base to value as a percentage rounded half away from
 * zero to basis points ("+8.60%" for 8.597%; "0.00%" for a change too
 * small to show); "n/a" without a base.  Returns buf. */
char *market_fmt_change(int64_t value, int64_t base, char *buf, size_t n);
/** Where a quote came from, as a reply says it. */
const char *market_source_label(const market_quote_t *q);

/* ---- the handlers (commands.c lists them) ----------------------------- */

void market_cmd_buy(souk_cmd_ctx_t *ctx);            /* cmd_trade.c */
void market_cmd_sell(souk_cmd_ctx_t *ctx);           /* cmd_trade.c */
void market_cmd_price(souk_cmd_ctx_t *ctx);          /* cmd_quote.c */
void market_cmd_quote(souk_cmd_ctx_t *ctx);          /* cmd_quote.c */
void market_complete_symbol(souk_cmd_ctx_t *ctx);    /* cmd_quote.c */
void market_cmd_portfolio(souk_cmd_ctx_t *ctx);      /* cmd_portfolio.c */
void market_cmd_history(souk_cmd_ctx_t *ctx);        /* cmd_portfolio.c */
void market_cmd_leaderboard(souk_cmd_ctx_t *ctx);    /* cmd_leaderboard.c */
void market_press_leaderboard(souk_cmd_ctx_t *ctx);  /* cmd_leaderboard.c */
void market_cmd_settings(souk_cmd_ctx_t *ctx);       /* cmd_season.c */
void market_cmd_set(souk_cmd_ctx_t *ctx);            /* cmd_season.c */
void market_cmd_dashboard(souk_cmd_ctx_t *ctx);      /* cmd_season.c */
void market_cmd_season_reset(souk_cmd_ctx_t *ctx);   /* cmd_season.c */
void market_press_season_reset(souk_cmd_ctx_t *ctx); /* cmd_season.c */
void market_cmd_daily_update(souk_cmd_ctx_t *ctx);   /* cmd_owner.c */
void market_cmd_flushcache(souk_cmd_ctx_t *ctx);     /* cmd_owner.c */
void market_cmd_clearcache(souk_cmd_ctx_t *ctx);     /* cmd_owner.c */
void market_cmd_reloadcache(souk_cmd_ctx_t *ctx);    /* cmd_owner.c */
void market_cmd_cache(souk_cmd_ctx_t *ctx);          /* cmd_owner.c */

#endif
