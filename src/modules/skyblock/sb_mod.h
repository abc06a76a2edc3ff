/* The skyblock module's shared state, between skyblock.c (config, start,
 * the poller and engine, tasks, metrics), sb_cmds.c (the commands),
 * sb_alerts.c (alert delivery and what is kept in the store), sb_sim.c
 * (the offline market) and sb_files.c (checkpoint, spool, summaries).
 * Loop thread only. */
#ifndef SKYBLOCK_SB_MOD_H
#define SKYBLOCK_SB_MOD_H

#include "sb_db.h"
#include "sb_engine.h"
#include "sb_poller.h"
#include "souk/buf.h"
#include "souk/cmd.h"
#include "souk/conf.h"
#include "souk/settings.h"
#include "souk/store.h"

#include <stdbool.h>
#include <stdint.h>

/** Values of the `skyblock` config section. */
typedef struct sb_conf {
  int source; /* 0 auto (sim in `souk console`, live otherwise), 1 sim, 2 live */
  char *api_url;
  char *api_key;
  int64_t concurrency;
  int64_t timeout_ms;
  int64_t interval_ms; /* first guess of the refresh interval */
  int64_t window_hours;
  int64_t lowest_ladder_size;
  int64_t thin_wall_threshold;
  int64_t intel_interval_seconds;
  int64_t rows_soft_cap;
  int64_t raw_retention_hours;
  int64_t summary_retention_days;
  bool spool;
  bool summaries;
  char *dir;
  int64_t checkpoint_ms;
  int64_t fmv_min_sales;
  /* The sniper. */
  bool sniper_enabled;
  int64_t min_profit;
  int64_t min_margin_pct;
  int64_t min_sales;
  bool allow_thin;
  int64_t max_age_ms;
  int64_t improve_pct;
  int64_t dedupe_max;
  int64_t dedupe_ttl_ms;
  souk_conf_ids_t channels;
  int64_t dm_per_alert; /* subscribers one alert is DMed to, at most */
  /* Fees. */
  int64_t fee_low_below, fee_low_bp, fee_mid_upto, fee_mid_bp, fee_high_bp;
  int64_t fee_tax_above, fee_tax_bp;
  /* The simulated market. */
  int64_t sim_seed;
  int64_t sim_interval_ms;
  int64_t sim_warmup_hours;
  /* The seed's names of the memory guard's and janitor's settings. */
  int64_t soft_rss_mb, cap_gb, headroom_gb;
} sb_conf_t;

extern sb_conf_t sb_conf;

/** Memory decisions, counted and shown. */
enum { SB_MEM_SKIP_CYCLE, SB_MEM_SHRINK_WINDOW, SB_MEM_ROWS_CAP, SB_MEM__COUNT };

/** The module's running state. */
typedef struct sb_state {
  bool started;
  souk_store_t *store; /* from the init context; NULL: no store */
  bool live;           /* the source: live (Hypixel) or sim */
  char *dir;           /* where files go */
  sb_engine_t *engine; /* the store, dedupe and pipeline */
  sb_poller_t *poller; /* live only */
  struct sb_sim *sim;  /* sim only */
  bool taking_over;    /* gained the cluster's lease: loading the leader's checkpoint */
  uint64_t started_ms;
  uint64_t mem[SB_MEM__COUNT];
  unsigned window_now; /* the window in effect (the memory guard shrinks it) */
  /* Alerts. */
  uint64_t alerts_sent, alerts_failed, dms_sent, dms_refused, subs_paused;
  /* Files. */
  uint64_t summaries_written, summary_errors, summary_rows;
  uint64_t checkpoints, checkpoint_errors;
  uint64_t spool_pages, spool_errors, spool_bytes;
  /* The watchlist: the most active markets, refreshed every
   * intel_interval_seconds. */
  uint32_t watch[25];
  size_t nwatch;
  uint64_t watch_at_ms;
} sb_state_t;

extern sb_state_t sb_g;

/** The commands (sb_cmds.c). */
extern const souk_command_t sb_commands[];
/** The per-guild settings (sb_cmds.c). */
extern const souk_setting_t sb_settings[];

/* ---- sb_alerts.c ------------------------------------------------------- */

/** Load the dedupe rows and the subscriptions from the store (blocking,
 * at start).  0 or SOUK_E* (logged; the module runs without them). */
int sb_alerts_start(void);
/** Stop: no more sends. */
void sb_alerts_stop(void);
/** This process has just gained the cluster's lease: re-read the alerts
 * the previous leader posted (the store's rows) into the dedupe, so none
 * is posted twice.  Asynchronous; a failure is logged. */
void sb_alerts_take_over(void);
/** The engine's alert hook: post to the channels, DM subscribers, keep
 * the dedupe row. */
void sb_alerts_on_alert(void *ud, const sb_alert_t *a);
/** Write an alert (or its console form) into msg parts: used for the
 * alert and by tests of the text.  title/desc/fields are filled into
 * buf-backed strings owned by out. */
typedef struct sb_alert_msg {
  souk_buf_t title, desc, foot;
  souk_buf_t fv[6];
  souk_embed_field_t fields[6];
  souk_embed_t embed;
  souk_msg_t msg;
} sb_alert_msg_t;
void sb_alert_msg_build(const sb_alert_t *a, sb_alert_msg_t *out);
void sb_alert_msg_free(sb_alert_msg_t *m);
/** Drop dedupe rows older than the ttl (task).  Async. */
void sb_alerts_prune(void (*done)(void *ud, int status), void *ud);

/** Subscribe (or update) user to alerts matching query ("" = any).
 * Writes to the store in the background.  0 or SOUK_EFULL (too many). */
int sb_subs_set(const sb_sub_t *s);
/** Remove a user's subscription for query (NULL: all).  Returns how many. */
int sb_subs_remove(uint64_t user_id, const char *query);
/** A user's subscriptions: count, and the i-th (NULL past the end). */
size_t sb_subs_of(uint64_t user_id, const sb_sub_t **out, size_t max);
/** A guild set sniper settings: remember it, to read its alert channel
 * at every start. */
void sb_alerts_guild_set(uint64_t guild_id);
/** Subscriptions in all, and paused ones. */
void sb_subs_count(size_t *all, size_t *paused);

/* ---- sb_files.c ------------------------------------------------------- */

/** Make the directories; load the checkpoint into the engine's store. */
int sb_files_start(void);
/** Save the checkpoint now (blocking; shutdown). */
void sb_files_stop(void);
/** This process has just gained the cluster's lease: read the checkpoint
 * the previous leader wrote (skyblock.dir on shared storage) on the thread
 * pool and put it in place of this process's window, then call done(ud)
 * on the loop thread, whether there was one or not. */
void sb_files_take_over(void (*done)(void *ud), void *ud);
/** Save the checkpoint in the background (task). */
void sb_files_checkpoint(void (*done)(void *ud, int status), void *ud);
/** The engine's hour hook: write the hour's Parquet summary. */
void sb_files_on_hour(void *ud, sb_summary_t *s);
/** Append a raw page to the spool (when skyblock.spool is on). */
void sb_files_spool(sb_req_kind_t kind, const char *body, size_t len);
/** Files being written in the background. */
unsigned sb_files_busy(void);
/** Write one hour's summary as Parquet under root (hive path, atomic),
 * on the calling thread; path gets the file's path, *rows its rows.  0 or
 * SOUK_E*. */
int sb_files_write_summary(sb_summary_t *s, const char *root, char *path, size_t cap, size_t *rows);

/* ---- sb_replay.c ---------------------------------------------------------- */

/** `souk skyblock ...`: replay DIR [OUT]. */
int sb_cli(int argc, char **argv);

/* ---- sb_sim.c ----------------------------------------------------------- */

typedef struct sb_sim sb_sim_t;
/** Start the simulated market feeding e: warm-up history first, then a
 * refresh every interval.  NULL on failure (logged). */
sb_sim_t *sb_sim_start(sb_engine_t *e, uint64_t seed, uint64_t interval_ms, unsigned warmup_hours);
/** Stop and free it. */
void sb_sim_stop(sb_sim_t *s);
/** Refreshes made so far. */
uint64_t sb_sim_refreshes(const sb_sim_t *s);

/* ---- skyblock.c ----------------------------------------------------------- */

/** The store and sniper settings from the `skyblock` section (the live
 * module and `souk skyblock replay` use the same). */
void sb_confs(sb_mkts_conf_t *mc, sb_sniper_conf_t *sc);
/** Format coins for people: 1,234,567 (or 1.23M with short). */
void sb_fmt_coins(char *out, size_t cap, int64_t v, bool short_form);
/** Append the /sniper_status report to out. */
void sb_status_text(souk_buf_t *out);

#endif
