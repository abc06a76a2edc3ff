/* The market module's shared state: its config and running state (market.c),
 * the price snapshots (market.c), the daily update (daily.c) and the
 * command tables (commands.c).  Loop thread only. */
#ifndef MARKET_INT_H
#define MARKET_INT_H

#include "ledger.h"
#include "price.h"
#include "pricecache.h"
#include "providers.h"
#include "sharedquote.h"
#include "souk/buf.h"
#include "souk/cmd.h"
#include "souk/module.h"
#include "souk/settings.h"
#include "souk/store.h"

#include <stdbool.h>
#include <stdint.h>

/** market.source: the price source a new guild's season starts on. */
typedef enum market_source_pref {
  MARKET_SOURCE_AUTO, /* live when any provider is configured, else sim */
  MARKET_SOURCE_SIM,
  MARKET_SOURCE_LIVE,
} market_source_pref_t;

/** Values of the `market` config section. */
typedef struct market_conf {
  char *finnhub_key, *polygon_key, *alpaca_key_id, *alpaca_secret;
  bool yahoo_enabled;
  char *finnhub_url, *polygon_url, *alpaca_url, *yahoo_url;
  int64_t min_interval_ms, timeout_ms;
  char *start_cash;
  int64_t commission_cents;
  market_hours_t hours;        /* a new guild's market-hours policy */
  market_source_pref_t source; /* the source of a new guild's season */
  int64_t fresh_for_ms;
  int64_t cache_ttl_ms, cache_refresh_ms, cache_max_entries;
  int64_t sim_seed;
  int64_t daily_period_ms, daily_hour;
  int64_t daily_max_fetch; /* held symbols refreshed per daily update, at most */
} market_conf_t;

extern market_conf_t market_conf;

/** The module's running state. */
typedef struct market_state {
  bool started;
  souk_store_t *store; /* from the init context; NULL: no store */
  market_chain_t *chain; /* NULL when no provider is configured */
  market_pc_t *pc;
  market_sq_t *sq; /* quotes shared with the other processes through Redis */
  bool any_provider;
  market_settings_t defaults; /* a new guild's settings (guild_id 0) */
  market_sim_conf_t sim;
  int64_t last_daily_day; /* YYYYMMDD of the last snapshot run here */
} market_state_t;

extern market_state_t market_g;

/** A snapshot of prices for valuing accounts on a pool thread: the
 * simulated market at one instant, or the price cache's entries. */
typedef struct market_snap {
  bool sim;
  market_sim_conf_t simc;
  int64_t at_ms;
  market_quote_t *q; /* live: copies of the cache's entries */
  size_t n;
} market_snap_t;

/** Fill s for source (copies the cache for live). */
void market_snap_fill(market_snap_t *s, market_source_t source);
/** Release what market_snap_fill allocated. */
void market_snap_free(market_snap_t *s);
/** market_price_cb over a market_snap_t. */
int market_snap_price(void *ud, const char *symbol, int64_t *price_micro);

/** Whether a daily update runs when today's was already done. */
typedef enum market_daily_mode {
  /** The task and `souk market daily-update`: once a day, whichever
   * process gets there first; a later run that day does nothing and ends
   * with SOUK_EEXIST. */
  MARKET_DAILY_ONCE,
  /** /market daily-update: now, even when done today (a rerun changes no
   * history row and no last value; it adds the rows of accounts opened
   * since). */
  MARKET_DAILY_FORCE,
} market_daily_mode_t;

/** Run the daily snapshot now: done(ud, status, stats) on the loop thread,
 * status 0, SOUK_EEXIST (MARKET_DAILY_ONCE and today's is done: nothing
 * was asked or written) or another SOUK_E*.  Returns 0 or SOUK_E* (done is
 * then not called) (daily.c). */
int market_daily_run(market_daily_mode_t mode,
                     void (*done)(void *ud, int status, const market_snapshot_stats_t *st),
                     void *ud);

struct souk_task_ctx;
/** The handler of the task market.daily_update (daily.c). */
void market_daily_task(struct souk_task_ctx *ctx);
/** `souk market ...`: daily-update, for cron (daily.c). */
int market_cli(const souk_module_ctx_t *ctx, int argc, char **argv);

/** The commands and components tables (commands.c; the handlers are in
 * the cmd_*.c files). */
extern const souk_command_t market_commands[];
extern const souk_cmd_component_t market_components[];
/** The seed bot's command names, as aliases (commands.c). */
extern const souk_cmd_alias_t market_aliases[];

/** The guild settings the market declares (start cash, commission, the
 * next season's price source), and watching them (from init). */
extern const souk_setting_t market_settings_table[];
void market_settings_watch(void);

/** Print which providers are configured (souk check-config). */
void market_check_config_report(souk_buf_t *out);

#endif
