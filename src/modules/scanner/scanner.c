/* The futures scanner module: its contact with the core.
 *
 * Config, start and stop, the real-time tick that starts scans when the
 * schedule clock says one is due, the health check ("scanner": in /admin
 * health and the periodic health report), the /metrics collector, the
 * guilds seen (for the per-guild signal channel) and the posted top list
 * kept in the store's kv (namespace "scanner").  The engine is scan.c; the
 * commands and posts are scanner_cmds.c.
 *
 * Signals only: the scanner reads KuCoin's public market data, needs no
 * key and places no order.
 *
 * Several processes of one bot (souk/cluster.h): the scheduled scans and
 * the posts of the top list's changes are once-per-cluster work, done by
 * the holder of the cluster's lease only; a process that gains the lease
 * re-reads the posted list from the store first, so what the previous
 * leader posted is not posted again.  `/scanner scan` asked of any
 * process still scans there, for its own answer. */
#include "scanner_int.h"
#include "souk/alloc.h"
#include "souk/cluster.h"
#include "souk/discord.h"
#include "souk/err.h"
#include "souk/health.h"
#include "souk/http.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/metrics.h"
#include "souk/module.h"
#include "souk/settings.h"
#include "souk/store.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "scanner"
#define KV   "scanner"

scanner_conf_t scanner_conf;
scanner_state_t scanner_g;

static const char *const source_choices[] = {"kucoin", "sim", "file", NULL};

#define K(field) offsetof(scanner_conf_t, field)
static const souk_conf_key_t scanner_conf_keys[] = {
    {"enabled", SOUK_CONF_BOOL, K(enabled), "false", 0, 0, NULL, 0,
     "poll KuCoin Futures and rank its contracts (signals only: no orders, no keys)"},
    {"source", SOUK_CONF_ENUM, K(source), "kucoin", 0, 0, source_choices, 0,
     "where contracts come from: kucoin (the public API), sim (a simulated market, no "
     "network) or file (a recorded contracts/active answer, scanner.file)"},
    {"url", SOUK_CONF_URL, K(url), NULL, 0, 0, NULL, 0,
     "KuCoin Futures base URL (tests); default https://api-futures.kucoin.com"},
    {"file", SOUK_CONF_STRING, K(file), NULL, 0, 1024, NULL, 0,
     "a recorded GET /api/v1/contracts/active answer, for source: file"},
    {"sim_seed", SOUK_CONF_INT, K(sim_seed), "1", 1, 0, NULL, 0,
     "seed of the simulated market (same seed, same prices)"},
    {"period", SOUK_CONF_DURATION, K(period_ms), "60s", 5000, 86400000, NULL, 0,
     "time between two scans (each costs 3 of the public pool's 2000 per 30 s)"},
    {"timeout", SOUK_CONF_DURATION, K(timeout_ms), "60s", 1000, 120000, NULL, 0,
     "a scan's request time limit"},
    {"backoff_max", SOUK_CONF_DURATION, K(backoff_max_ms), "5m", 1000, 3600000, NULL, 0,
     "longest wait after 429s in a row (the first waits 30 s, then it doubles)"},
    {"quote", SOUK_CONF_STRING, K(quote), "USDT", 0, 11, NULL, 0,
     "rank only contracts quoted in this currency, so turnovers compare (empty: all)"},
    {"top", SOUK_CONF_INT, K(top), "10", 1, 25, NULL, 0,
     "size of the top list that is tracked and posted"},
    {"post_every", SOUK_CONF_DURATION, K(post_every_ms), "15m", 0, 86400000, NULL, 0,
     "least time between two posts of top-list changes; changes in between are compared "
     "with what was last posted, so a list that moves and comes back posts nothing"},
    {"weights.turnover", SOUK_CONF_DOUBLE, K(w_turnover), "0.4", 0, 100, NULL, 0,
     "score weight of the 24 h turnover (log scale)"},
    {"weights.move", SOUK_CONF_DOUBLE, K(w_move), "0.3", 0, 100, NULL, 0,
     "score weight of the absolute 24 h price change"},
    {"weights.funding", SOUK_CONF_DOUBLE, K(w_funding), "0.15", 0, 100, NULL, 0,
     "score weight of the absolute funding rate"},
    {"weights.open_interest", SOUK_CONF_DOUBLE, K(w_oi), "0.15", 0, 100, NULL, 0,
     "score weight of the open interest's value (log scale)"},
    {"channel", SOUK_CONF_SNOWFLAKE, K(channel), NULL, 0, 0, NULL, 0,
     "a channel for top-list changes besides each server's own (/scan channel)"},
    {0},
};
#undef K

static const souk_setting_t scanner_settings[] = {
    {.key = "scanner.channel",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_CHANNEL,
     .label = "Futures scanner channel",
     .description = "Where the futures scanner posts changes of its top list (signals only).",
     .step = "channels"},
    {0},
};

scanner_weights_t scanner_weights(void) {
  const scanner_conf_t *c = &scanner_conf;
  return (scanner_weights_t){{c->w_turnover, c->w_move, c->w_funding, c->w_oi}};
}

/* ---- guilds seen ------------------------------------------------------------ */

void scanner_guild_seen(uint64_t guild_id) {
  if (!guild_id) return;
  for (size_t i = 0; i < scanner_g.nguilds; i++)
    if (scanner_g.guilds[i] == guild_id) return;
  if (scanner_g.nguilds >= SCANNER_GUILDS_MAX) return;
  scanner_g.guilds = souk_reallocarray(scanner_g.guilds, scanner_g.nguilds + 1, sizeof(uint64_t));
  scanner_g.guilds[scanner_g.nguilds++] = guild_id;
}

static void guild_forget(uint64_t guild_id) {
  for (size_t i = 0; i < scanner_g.nguilds; i++)
    if (scanner_g.guilds[i] == guild_id) {
      scanner_g.guilds[i] = scanner_g.guilds[--scanner_g.nguilds];
      return;
    }
}

static uint64_t event_guild(const souk_event_t *ev) {
  uint64_t id = 0;
  int t = souk_json_get(ev->json, ev->d, "id");
  if (t < 0 || souk_json_u64(ev->json, t, &id)) return 0;
  return id;
}

static void on_guild_create(const souk_event_t *ev) { scanner_guild_seen(event_guild(ev)); }

static void on_guild_delete(const souk_event_t *ev) {
  /* unavailable: an outage, not a departure. */
  bool unavailable = false;
  int u = souk_json_get(ev->json, ev->d, "unavailable");
  if (u >= 0) souk_json_bool(ev->json, u, &unavailable);
  if (!unavailable) guild_forget(event_guild(ev));
}

static const souk_event_handler_t scanner_events[] = {
    {"GUILD_CREATE", on_guild_create},
    {"GUILD_DELETE", on_guild_delete},
    {0},
};

static void setting_changed(uint64_t scope_id, const souk_setting_t *s, void *ud) {
  scanner_guild_seen(scope_id);
}

/* ---- the posted list in the store ------------------------------------------ */

typedef struct kv_job {
  char *text;
  uint64_t at;
  souk_buf_t read;
  int64_t read_at;
} kv_job_t;

static int load_tx(souk_db_t *db, void *ud) {
  kv_job_t *j = ud;
  souk_buf_reset(&j->read);
  int rc = souk_db_kv_get(db, KV, "top_posted", &j->read, &j->read_at);
  return rc == SOUK_ENOTFOUND ? 0 : rc;
}

static void load_done(void *ud, int status) {
  kv_job_t *j = ud;
  if (status == 0 && j->read.len > 0 && scanner_g.started) {
    /* "<unix ms>|SYM,SYM,..." */
    const char *bar = memchr(j->read.data, '|', j->read.len);
    if (bar) {
      souk_free(scanner_g.posted.sym);
      scanner_g.posted_at = strtoull(j->read.data, NULL, 10);
      scanner_top_decode(bar + 1, j->read.len - (size_t)(bar + 1 - j->read.data),
                         &scanner_g.posted);
    }
  } else if (status) {
    SOUK_WARN(COMP, "cannot read the last posted top list: %s", souk_strerror(status));
  }
  if (scanner_g.started) scanner_g.posted_loaded = true;
  souk_buf_free(&j->read);
  souk_free(j);
}

static int save_tx(souk_db_t *db, void *ud) {
  kv_job_t *j = ud;
  return souk_db_kv_put(db, KV, "top_posted", j->text, strlen(j->text));
}

static void save_done(void *ud, int status) {
  kv_job_t *j = ud;
  if (status) SOUK_WARN(COMP, "cannot save the posted top list: %s", souk_strerror(status));
  souk_free(j->text);
  souk_free(j);
}

void scanner_save_posted(void) {
  souk_store_t *st = scanner_g.store;
  if (!st) return;
  char list[32 * (SCANNER_SYMBOL_MAX + 1) + 32];
  if (scanner_top_encode(&scanner_g.posted, list, sizeof list) < 0) return;
  kv_job_t *j = souk_calloc(1, sizeof *j);
  size_t n = strlen(list) + 32;
  j->text = souk_malloc(n);
  snprintf(j->text, n, "%" PRIu64 "|%s", scanner_g.posted_at, list);
  if (souk_store_tx_async(st, save_tx, save_done, j)) save_done(j, SOUK_EIO);
}

/* ---- scans ---------------------------------------------------------------- */

static uv_timer_t *g_tick;

static void scan_done(const scan_report_t *r, void *ud) {
  if (r->err) return; /* counted, recorded and alerted by the engine */
  scanner_maybe_post(r->ranked, r->n);
}

static void tick_cb(uv_timer_t *t) {
  if (scanner_g.scan && souk_cluster_leader()) scan_tick(scanner_g.scan);
}

/* Read the posted list from the store (at start, and when this process
 * gains the lease: the previous leader may have posted since); posts wait
 * until it is in. */
static void load_posted(void) {
  souk_store_t *st = scanner_g.store;
  if (!st) {
    scanner_g.posted_loaded = true;
    return;
  }
  scanner_g.posted_loaded = false;
  kv_job_t *j = souk_calloc(1, sizeof *j);
  souk_buf_init(&j->read);
  if (souk_store_read_async(st, load_tx, load_done, j)) load_done(j, SOUK_EIO);
}

static void leader_cb(bool leader, int64_t fence, void *ud) {
  (void)fence;
  (void)ud;
  if (leader && scanner_g.started) load_posted();
}

static void health_check(void *ud, souk_health_result_t *out) {
  if (!scanner_g.scan) {
    souk_health_set(out, SOUK_HEALTH_HEALTHY, "off");
    return;
  }
  scan_health(scanner_g.scan, out);
}

/* ---- metrics ------------------------------------------------------------------ */

static souk_metric_t *m_scans, *m_requests, *m_errors, *m_skipped, *m_avg, *m_last, *m_err15,
    *m_health, *m_pool, *m_breaker, *m_contracts, *m_posts, *m_backoff;

static void collect(void *ud) {
  if (!scanner_g.scan) return;
  scan_stats_t st;
  scan_get_stats(scanner_g.scan, &st);
  souk_counter_set(souk_metric_series(m_scans, NULL), (double)st.scans_ok);
  souk_counter_set(souk_metric_series(m_requests, NULL), (double)st.requests);
  souk_counter_set(souk_metric_series(m_errors, SOUK_LV("rate_limited")), (double)st.rate_limited);
  souk_counter_set(souk_metric_series(m_errors, SOUK_LV("network")), (double)st.network);
  souk_counter_set(souk_metric_series(m_errors, SOUK_LV("api")), (double)st.api);
  souk_counter_set(souk_metric_series(m_skipped, SOUK_LV("backoff")), (double)st.skipped_backoff);
  souk_counter_set(souk_metric_series(m_skipped, SOUK_LV("breaker")), (double)st.skipped_breaker);
  souk_counter_set(souk_metric_series(m_skipped, SOUK_LV("pool")), (double)st.pool_waits);
  souk_gauge_set(souk_metric_series(m_avg, NULL), (double)st.avg_duration_ms / 1000.0);
  souk_gauge_set(souk_metric_series(m_last, NULL), (double)st.last_duration_ms / 1000.0);
  souk_gauge_set(souk_metric_series(m_err15, NULL), (double)st.errors_15m);
  souk_health_result_t h = {0};
  scan_health(scanner_g.scan, &h);
  souk_gauge_set(souk_metric_series(m_health, NULL), (double)h.status);
  souk_gauge_set(souk_metric_series(m_pool, NULL), (double)st.pool_remaining);
  souk_gauge_set(souk_metric_series(m_breaker, NULL), st.breaker == SOUK_BREAKER_OPEN ? 1 : 0);
  souk_gauge_set(souk_metric_series(m_backoff, NULL), (double)st.backoff_left_ms / 1000.0);
  size_t n = 0;
  scan_ranked(scanner_g.scan, &n, NULL);
  souk_gauge_set(souk_metric_series(m_contracts, NULL), (double)n);
  souk_counter_set(souk_metric_series(m_posts, SOUK_LV("ok")), (double)scanner_g.posts);
  souk_counter_set(souk_metric_series(m_posts, SOUK_LV("failed")), (double)scanner_g.post_failures);
}

static void metrics_init(void) {
  m_scans = souk_counter_new("souk_scanner_scans_total", "good scans", NULL);
  m_requests = souk_counter_new("souk_scanner_requests_total", "requests sent to KuCoin", NULL);
  m_errors = souk_counter_new("souk_scanner_errors_total",
                              "failed scans by kind: rate_limited (429/429000), network "
                              "(timeouts, 5xx), api (error codes, malformed bodies)",
                              "kind");
  m_skipped = souk_counter_new("souk_scanner_skipped_total",
                               "scans not started: backing off, breaker open, pool empty", "why");
  m_avg = souk_gauge_new("souk_scanner_scan_duration_avg_seconds",
                         "average duration of the last 10 scans (health: 30 s warning, 90 s "
                         "critical)",
                         NULL);
  m_last = souk_gauge_new("souk_scanner_scan_duration_seconds", "duration of the last scan", NULL);
  m_err15 = souk_gauge_new("souk_scanner_errors_15m",
                           "errors in the last 15 minutes (health: 5 warning, 11 critical)", NULL);
  m_health = souk_gauge_new("souk_scanner_health", "0 healthy, 1 warning, 2 critical", NULL);
  m_pool = souk_gauge_new(
      "souk_scanner_pool_remaining",
      "KuCoin public pool weight left, from gw-ratelimit-remaining (-1 unknown)", NULL);
  m_breaker =
      souk_gauge_new("souk_scanner_breaker_open", "1 while the KuCoin breaker is open", NULL);
  m_backoff =
      souk_gauge_new("souk_scanner_backoff_seconds", "time left backing off after 429s", NULL);
  m_contracts = souk_gauge_new("souk_scanner_contracts", "contracts ranked by the last scan", NULL);
  m_posts = souk_counter_new("souk_scanner_posts_total", "top-list change posts", "outcome");
  souk_metrics_add_collector(collect, NULL);
}

/* ---- start and stop ---------------------------------------------------------- */

static int scanner_init(const souk_module_ctx_t *ctx) {
  memset(&scanner_g, 0, sizeof scanner_g);
  scanner_g.store = ctx->store;
  const scanner_conf_t *c = &scanner_conf;
  for (size_t i = 0; i < sizeof scanner_settings / sizeof *scanner_settings - 1; i++)
    souk_setting_watch(scanner_settings[i].key, setting_changed, NULL);
  if (!c->enabled) {
    SOUK_INFO(COMP, "off (scanner.enabled: false)");
    return 0;
  }
  scan_conf_t sc;
  scan_conf_defaults(&sc);
  sc.source = (scanner_source_t)c->source;
  sc.base_url = c->url;
  sc.file = c->file;
  sc.sim_seed = (uint64_t)c->sim_seed;
  sc.period_ms = (uint64_t)c->period_ms;
  sc.timeout_ms = (uint32_t)c->timeout_ms;
  sc.backoff_max_ms = (uint64_t)c->backoff_max_ms;
  sc.filter.quote = c->quote;
  sc.weights = scanner_weights();
  int rc = sc.source == SCANNER_SRC_KUCOIN ? souk_http_init() : 0;
  if (rc == 0) rc = scan_new(&sc, scan_done, NULL, &scanner_g.scan);
  if (rc) {
    SOUK_ERROR(COMP, "cannot start the scanner: %s%s", souk_strerror(rc),
               rc == SOUK_EINVAL ? " (check scanner.weights: not all 0)" : "");
    return rc == SOUK_EINVAL || rc == SOUK_ENOTFOUND ? SOUK_ECONFIG : rc;
  }
  scanner_g.started = true;
  load_posted();
  souk_cluster_watch(leader_cb, NULL);
  g_tick = souk_timer_every(1000, tick_cb, NULL, 1);
  souk_health_register("scanner", health_check, NULL);
  metrics_init();
  SOUK_INFO(COMP, "scanning %s every %" PRId64 " s (signals only: no orders, no keys)",
            scanner_source_name(sc.source), c->period_ms / 1000);
  return 0;
}

static void scanner_shutdown(const souk_module_ctx_t *ctx) {
  if (scanner_g.started) {
    souk_cluster_unwatch(leader_cb, NULL);
    souk_metrics_remove_collector(collect, NULL);
    souk_health_unregister("scanner");
    souk_timer_free(&g_tick);
    scan_free(scanner_g.scan);
  }
  souk_free(scanner_g.posted.sym);
  souk_free(scanner_g.guilds);
  memset(&scanner_g, 0, sizeof scanner_g);
}

static int scanner_check(bool online, souk_buf_t *out) {
  const scanner_conf_t *c = &scanner_conf;
  if (!c->enabled) {
    souk_buf_puts(out, "scanner: off (scanner.enabled: false)\n");
    return 0;
  }
  souk_buf_printf(out, "scanner: %s every %" PRId64 " s, top %" PRId64 ", signals only\n",
                  scanner_source_name((scanner_source_t)c->source), c->period_ms / 1000, c->top);
  if (c->w_turnover + c->w_move + c->w_funding + c->w_oi <= 0) {
    souk_buf_puts(out, "  scanner.weights: all 0; at least one must be positive\n");
    return SOUK_ECONFIG;
  }
  if (c->source == SCANNER_SRC_FILE && !c->file) {
    souk_buf_puts(out, "  scanner.source is file but scanner.file is not set\n");
    return SOUK_ECONFIG;
  }
  return 0;
}

const souk_module_t souk_scanner_module = {
    .abi = SOUK_MODULE_ABI,
    .name = "scanner",
    .conf = scanner_conf_keys,
    .conf_data = &scanner_conf,
    .events = scanner_events,
    .commands = scanner_commands,
    .init = scanner_init,
    .shutdown = scanner_shutdown,
    .check = scanner_check,
    .settings = scanner_settings,
};
