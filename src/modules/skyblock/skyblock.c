/* The skyblock module: Hypixel SkyBlock auction intelligence and snipe
 * alerts.
 *
 * This file holds the config section, start and stop, the wiring of the
 * poller (live) or the simulated market (sim) into the engine, the memory
 * decisions, the tasks, the /metrics collector, the health check, the
 * status report and check-config.  The commands are in sb_cmds.c, alert
 * delivery in sb_alerts.c, files in sb_files.c, the offline market in
 * sb_sim.c; the pure parts (pages, store, value, sniper, poller, engine)
 * have their own files and tests. */
#include "sb_mod.h"
#include "souk/alloc.h"
#include "souk/cluster.h"
#include "souk/err.h"
#include "souk/health.h"
#include "souk/http.h"
#include "souk/janitor.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/memguard.h"
#include "souk/metrics.h"
#include "souk/module.h"
#include "souk/task.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

sb_conf_t sb_conf;
sb_state_t sb_g;

static const char *const source_choices[] = {"auto", "sim", "live", NULL};

#define K(field) offsetof(sb_conf_t, field)
static const souk_conf_key_t sb_conf_keys[] = {
    {"source", SOUK_CONF_ENUM, K(source), "auto", 0, 0, source_choices, 0,
     "where auctions come from: live (the Hypixel API), sim (an offline simulated market made "
     "from recorded pages), auto (sim in `souk console`, live otherwise)"},
    {"api_url", SOUK_CONF_URL, K(api_url), "https://api.hypixel.net", 0, 0, NULL, 0,
     "base URL of the Hypixel API (tests point it at the fake)"},
    {"api_key", SOUK_CONF_STRING, K(api_key), NULL, 0, 128, NULL, SOUK_CONF_SECRET,
     "Hypixel API key (SOUK_SKYBLOCK_API_KEY), sent as the API-Key header to the endpoints "
     "that need one; the auction pages do not"},
    {"concurrency", SOUK_CONF_INT, K(concurrency), "4", 1, 16, NULL, 0,
     "auction pages fetched at once during a sweep"},
    {"timeout", SOUK_CONF_DURATION, K(timeout_ms), "30s", 1000, 300000, NULL, 0,
     "one page request's whole time limit"},
    {"interval", SOUK_CONF_DURATION, K(interval_ms), "60s", 1000, 600000, NULL, 0,
     "first guess of the API's refresh interval; the poller learns the real one"},
    {"window_hours", SOUK_CONF_INT, K(window_hours), "12", 1, 720, NULL, 0,
     "hours of summaries and sales the fair market value is taken over (the memory guard may "
     "shrink it)"},
    {"lowest_ladder_size", SOUK_CONF_INT, K(lowest_ladder_size), "16", 1, 16, NULL, 0,
     "lowest BIN prices kept per item and hour"},
    {"thin_wall_threshold", SOUK_CONF_INT, K(thin_wall_threshold), "3", 0, 1000, NULL, 0,
     "an item with fewer live BIN listings than this is a thin market"},
    {"intel_interval_seconds", SOUK_CONF_INT, K(intel_interval_seconds), "90", 10, 86400, NULL, 0,
     "how often the watchlist of the most active items is refreshed"},
    {"rows_soft_cap", SOUK_CONF_INT, K(rows_soft_cap), "100000", 1000, 10000000, NULL, 0,
     "auctions ingested per sweep, and live listings kept, at most; past it the sweep is cut "
     "(counted)"},
    {"raw_retention_hours", SOUK_CONF_INT, K(raw_retention_hours), "2", 1, 720, NULL, 0,
     "hours the raw spool of pages is kept"},
    {"summary_retention_days", SOUK_CONF_INT, K(summary_retention_days), "30", 1, 3650, NULL, 0,
     "days the hourly Parquet summaries are kept"},
    {"spool", SOUK_CONF_BOOL, K(spool), "false", 0, 0, NULL, 0,
     "keep every page fetched, as zstd NDJSON, for raw_retention_hours (about 1 GB an hour)"},
    {"summaries", SOUK_CONF_BOOL, K(summaries), "true", 0, 0, NULL, 0,
     "write an hourly summary as Parquet under <dir>/summaries/date=.../hour=.../"},
    {"dir", SOUK_CONF_STRING, K(dir), NULL, 0, 0, NULL, 0,
     "where summaries, the spool and the checkpoint go (default <core.data_dir>/skyblock)"},
    {"checkpoint", SOUK_CONF_DURATION, K(checkpoint_ms), "5m", 10000, 3600000, NULL, 0,
     "how often the window (the open hour included) is saved, so a restart loses nothing"},
    {"fmv.min_sales", SOUK_CONF_INT, K(fmv_min_sales), "5", 1, 1000, NULL, 0,
     "clean sales in the window needed to value an item from its sales"},
    {"sniper.enabled", SOUK_CONF_BOOL, K(sniper_enabled), "true", 0, 0, NULL, 0,
     "judge new BIN listings and send alerts"},
    {"sniper.min_profit", SOUK_CONF_INT, K(min_profit), "1000000", 0, 0, NULL, 0,
     "least profit after fees, in coins, for an alert (a guild may ask for more)"},
    {"sniper.min_margin", SOUK_CONF_INT, K(min_margin_pct), "10", 0, 100000, NULL, 0,
     "least profit after fees as a percentage of the price"},
    {"sniper.min_sales", SOUK_CONF_INT, K(min_sales), "3", 0, 1000, NULL, 0,
     "liquidity: clean sales of the item in the window for an alert"},
    {"sniper.allow_thin", SOUK_CONF_BOOL, K(allow_thin), "false", 0, 0, NULL, 0,
     "also alert in thin markets (fewer listings than thin_wall_threshold)"},
    {"sniper.max_listing_age", SOUK_CONF_DURATION, K(max_age_ms), "5m", 1000, 86400000, NULL, 0,
     "judge only listings this young when first seen (not the whole house at start)"},
    {"sniper.improve", SOUK_CONF_INT, K(improve_pct), "10", 0, 100, NULL, 0,
     "the same seller's same item is alerted again only this many percent cheaper"},
    {"sniper.dedupe_max", SOUK_CONF_INT, K(dedupe_max), "50000", 100, 10000000, NULL, 0,
     "alerted auctions remembered (kept in the store across restarts)"},
    {"sniper.dedupe_ttl", SOUK_CONF_DURATION, K(dedupe_ttl_ms), "48h", 60000, 30 * 86400000LL, NULL,
     0, "how long an alerted auction is remembered"},
    {"sniper.channels", SOUK_CONF_SNOWFLAKE_LIST, K(channels), NULL, 0, 0, NULL, 0,
     "channels every alert goes to (guilds add theirs with /sniper settings)"},
    {"sniper.dm_per_alert", SOUK_CONF_INT, K(dm_per_alert), "50", 0, 1000, NULL, 0,
     "subscribers one alert is sent to by DM, at most"},
    {"fees.low_below", SOUK_CONF_INT, K(fee_low_below), "10000000", 0, 0, NULL, 0,
     "listing fee fees.low_bp applies to prices below this"},
    {"fees.low_bp", SOUK_CONF_INT, K(fee_low_bp), "100", 0, 10000, NULL, 0,
     "listing fee below fees.low_below, in basis points (100 = 1%)"},
    {"fees.mid_upto", SOUK_CONF_INT, K(fee_mid_upto), "100000000", 0, 0, NULL, 0,
     "listing fee fees.mid_bp applies up to this price, fees.high_bp above"},
    {"fees.mid_bp", SOUK_CONF_INT, K(fee_mid_bp), "200", 0, 10000, NULL, 0,
     "listing fee up to fees.mid_upto, in basis points"},
    {"fees.high_bp", SOUK_CONF_INT, K(fee_high_bp), "250", 0, 10000, NULL, 0,
     "listing fee above fees.mid_upto, in basis points"},
    {"fees.claim_tax_above", SOUK_CONF_INT, K(fee_tax_above), "1000000", 0, 0, NULL, 0,
     "claiming proceeds above this pays fees.claim_tax_bp"},
    {"fees.claim_tax_bp", SOUK_CONF_INT, K(fee_tax_bp), "100", 0, 10000, NULL, 0,
     "tax on claimed proceeds, in basis points"},
    {"sim.seed", SOUK_CONF_INT, K(sim_seed), "1", 0, 0, NULL, 0,
     "seed of the simulated market (same seed, same market)"},
    {"sim.interval", SOUK_CONF_DURATION, K(sim_interval_ms), "20s", 100, 3600000, NULL, 0,
     "time between two refreshes of the simulated market (each is a minute of market time)"},
    {"sim.warmup_hours", SOUK_CONF_INT, K(sim_warmup_hours), "2", 0, 48, NULL, 0,
     "hours of sales the simulated market starts with, so prices are known at once"},
    /* The seed's names for settings souk already has: aliases, so there is
     * one value under two names. */
    {"soft_rss_mb", SOUK_CONF_INT, K(soft_rss_mb), NULL, 0, 1 << 20,
     SOUK_CONF_ALIAS_OF("memguard.soft_limit", 1048576), SOUK_CONF_ALIAS,
     "the seed's name for memguard.soft_limit, in MB"},
    {"cap_gb", SOUK_CONF_INT, K(cap_gb), NULL, 0, 1 << 20,
     SOUK_CONF_ALIAS_OF("janitor.cap", 1073741824), SOUK_CONF_ALIAS,
     "the seed's name for janitor.cap, in GB"},
    {"headroom_gb", SOUK_CONF_INT, K(headroom_gb), NULL, 0, 1 << 20,
     SOUK_CONF_ALIAS_OF("janitor.headroom_size", 1073741824), SOUK_CONF_ALIAS,
     "the seed's name for janitor.headroom_size, in GB"},
    {0},
};
#undef K

/* ---- formatting ------------------------------------------------------------ */

void sb_fmt_coins(char *out, size_t cap, int64_t v, bool short_form) {
  bool neg = v < 0;
  uint64_t u = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  if (short_form && u >= 10000) {
    const char *suf = u >= 1000000000 ? "B" : u >= 1000000 ? "M" : "k";
    double d = (double)u / (u >= 1000000000 ? 1e9 : u >= 1000000 ? 1e6 : 1e3);
    snprintf(out, cap, "%s%.*f%s", neg ? "-" : "", d < 100 ? 2 : 1, d, suf);
    return;
  }
  char digits[32];
  int n = snprintf(digits, sizeof digits, "%" PRIu64, u);
  char buf[48];
  size_t k = 0;
  if (neg) buf[k++] = '-';
  for (int i = 0; i < n; i++) {
    if (i && (n - i) % 3 == 0) buf[k++] = ',';
    buf[k++] = digits[i];
  }
  buf[k] = '\0';
  snprintf(out, cap, "%s", buf);
}

/* ---- the live source: the poller over the HTTP client ------------------------- */

typedef struct flight {
  uint32_t tag;
  souk_http_req_t *req;
} flight_t;

static struct {
  uv_timer_t *timer;
  flight_t fl[32];
  size_t nfl;
  uint64_t arrived_ns;
} g_live;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void http_cb(const souk_http_resp_t *resp, void *ud) {
  uint32_t tag = (uint32_t)(uintptr_t)ud;
  for (size_t i = 0; i < g_live.nfl; i++) {
    if (g_live.fl[i].tag == tag) {
      g_live.fl[i] = g_live.fl[--g_live.nfl];
      break;
    }
  }
  if (!sb_g.poller) return;
  g_live.arrived_ns = mono_ns();
  sb_poller_response(sb_g.poller, tag, resp->err, resp->status, resp->body, resp->body_len);
}

static int env_fetch(void *ud, sb_req_kind_t kind, int page, uint32_t tag) {
  (void)ud;
  if (g_live.nfl == sizeof g_live.fl / sizeof *g_live.fl) return SOUK_EFULL;
  char url[512];
  if (kind == SB_REQ_ENDED)
    snprintf(url, sizeof url, "%s/v2/skyblock/auctions_ended", sb_conf.api_url);
  else
    snprintf(url, sizeof url, "%s/v2/skyblock/auctions?page=%d", sb_conf.api_url, page);
  static const char *const headers[] = {"User-Agent: souk/" SOUK_VERSION " (skyblock)",
                                        "Accept: application/json"};
  souk_http_opts_t o = {.url = url,
                        .headers = headers,
                        .nheaders = 2,
                        .timeout_ms = (uint32_t)sb_conf.timeout_ms,
                        .max_response_bytes = 32u << 20};
  souk_http_req_t *req = NULL;
  int rc = souk_http_request(&o, http_cb, (void *)(uintptr_t)tag, &req);
  if (rc) return rc;
  g_live.fl[g_live.nfl++] = (flight_t){tag, req};
  return 0;
}

static void env_cancel_all(void *ud) {
  (void)ud;
  for (size_t i = 0; i < g_live.nfl; i++)
    souk_http_cancel(g_live.fl[i].req);
  g_live.nfl = 0;
}

static void timer_cb(uv_timer_t *t) {
  (void)t;
  if (sb_g.poller) sb_poller_timer(sb_g.poller);
}

static void env_arm(void *ud, uint64_t delay) {
  (void)ud;
  uv_timer_start(g_live.timer, timer_cb, delay, 0);
}

static void engine_done(void *ud, sb_req_kind_t kind, uint32_t sweep, int page, int rc, int64_t lu,
                        int total) {
  (void)ud;
  if (!sb_g.poller) return;
  sb_poller_page_done(sb_g.poller, kind, sweep, page, rc, lu, total);
  sb_engine_stats_t st;
  sb_engine_stats(sb_g.engine, &st);
  if (st.rows_sweep > (uint64_t)sb_conf.rows_soft_cap) {
    sb_g.mem[SB_MEM_ROWS_CAP]++;
    SOUK_WARN("skyblock",
              "sweep cut at %" PRIu64 " auctions (skyblock.rows_soft_cap %" PRId64
              "): listings it did not reach are kept until a complete sweep",
              st.rows_sweep, sb_conf.rows_soft_cap);
    sb_poller_cut_sweep(sb_g.poller);
  }
}

/* lastUpdated from a page's header (the API writes it in the first
 * bytes), or -1: only for deciding what the spool keeps. */
static int64_t peek_last_updated(const char *body, size_t len) {
  const char *k = "\"lastUpdated\":";
  size_t n = len < 512 ? len : 512, kl = strlen(k);
  for (size_t i = 0; i + kl < n; i++)
    if (!memcmp(body + i, k, kl)) return strtoll(body + i + kl, NULL, 10);
  return -1;
}

static void env_page(void *ud, sb_req_kind_t kind, int page, uint32_t sweep, char *body,
                     size_t len) {
  (void)ud;
  if (sb_conf.spool) {
    /* Page 0 asked again before the refresh is the same page: kept once. */
    static int64_t last_page0 = -1;
    int64_t lu = kind == SB_REQ_PAGE && page == 0 ? peek_last_updated(body, len) : -1;
    if (lu < 0 || lu != last_page0) sb_files_spool(kind, body, len);
    if (lu >= 0) last_page0 = lu;
  }
  int rc = sb_engine_submit(sb_g.engine, kind, page, sweep, body, len, g_live.arrived_ns,
                            engine_done, NULL);
  if (rc) {
    souk_free(body);
    sb_poller_page_done(sb_g.poller, kind, sweep, page, rc, 0, 0);
  }
}

/* The window the memory guard leaves: the configured one normally, a
 * quarter of it above the soft limit (each decision counted). */
static void window_check(void) {
  unsigned want = (unsigned)sb_conf.window_hours;
  if (souk_memguard_level() != SOUK_MEM_NORMAL)
    want = (unsigned)souk_memguard_scale("skyblock.window", (size_t)sb_conf.window_hours);
  if (want != sb_g.window_now) {
    if (want < sb_g.window_now) {
      sb_g.mem[SB_MEM_SHRINK_WINDOW]++;
      SOUK_WARN("skyblock", "memory guard: analysis window shrunk from %u h to %u h",
                sb_g.window_now, want);
    } else {
      SOUK_INFO("skyblock", "analysis window back to %u h", want);
    }
    sb_g.window_now = want;
    sb_mkts_set_window(sb_engine_store(sb_g.engine), want);
  }
}

static void env_sweep_end(void *ud, uint32_t sweep, int64_t lu, bool complete) {
  (void)ud;
  sb_engine_sweep_end(sb_g.engine, sweep, complete);
  sb_mkts_stats_t ms;
  sb_mkts_stats(sb_engine_store(sb_g.engine), &ms);
  SOUK_DEBUG("skyblock", "sweep %" PRIu32 " of lastUpdated %" PRId64 ": %s, %zu live listings",
             sweep, lu, complete ? "complete" : "cut short", ms.live);
  window_check();
}

static bool env_may_sweep(void *ud) {
  (void)ud;
  if (souk_memguard_allow_heavy("skyblock.sweep")) return true;
  sb_g.mem[SB_MEM_SKIP_CYCLE]++;
  return false;
}

static uint64_t env_now(void *ud) {
  (void)ud;
  return souk_now_ms();
}
static uint64_t env_wall(void *ud) {
  (void)ud;
  return souk_unix_ms();
}
static double env_rand(void *ud) {
  (void)ud;
  return souk_rand01();
}

static int live_start(void) {
  int rc = souk_http_init();
  if (rc) return rc;
  g_live.timer = souk_calloc(1, sizeof *g_live.timer);
  uv_timer_init(souk_loop(), g_live.timer);
  sb_poll_env_t env = {.fetch = env_fetch,
                       .cancel_all = env_cancel_all,
                       .arm = env_arm,
                       .page = env_page,
                       .sweep_end = env_sweep_end,
                       .may_sweep = env_may_sweep,
                       .now = env_now,
                       .wall = env_wall,
                       .rand = env_rand};
  sb_poll_conf_t pc;
  sb_poll_conf_defaults(&pc);
  pc.concurrency = (unsigned)sb_conf.concurrency;
  pc.interval_ms = (uint64_t)sb_conf.interval_ms;
  sb_g.poller = sb_poller_new(&env, &pc);
  sb_poller_start(sb_g.poller);
  return 0;
}

static void live_stop(void) {
  if (sb_g.poller) {
    sb_poller_stop(sb_g.poller);
    sb_poller_free(sb_g.poller);
    sb_g.poller = NULL;
  }
  souk_timer_free(&g_live.timer);
}

/* ---- status ------------------------------------------------------------------ */

static void ago(char *out, size_t cap, uint64_t ms) {
  if (ms < 1000)
    snprintf(out, cap, "%" PRIu64 " ms", ms);
  else if (ms < 120000)
    snprintf(out, cap, "%.1f s", (double)ms / 1000.0);
  else
    snprintf(out, cap, "%" PRIu64 " min", ms / 60000);
}

void sb_status_text(souk_buf_t *b) {
  if (!sb_g.started) {
    souk_buf_puts(b, "The SkyBlock sniper is not running.");
    return;
  }
  char t1[48], t2[48], t3[48];
  sb_engine_stats_t es;
  sb_engine_stats(sb_g.engine, &es);
  sb_mkts_stats_t ms;
  sb_mkts_stats(sb_engine_store(sb_g.engine), &ms);
  souk_buf_printf(b, "**SkyBlock sniper** - source: %s\n",
                  sb_g.live ? "live (Hypixel API)" : "sim (offline simulated market)");
  if (sb_g.poller) {
    sb_poll_stats_t ps;
    sb_poller_stats(sb_g.poller, &ps);
    if (ps.last_updated) {
      time_t secs = (time_t)(ps.last_updated / 1000);
      struct tm tm;
      gmtime_r(&secs, &tm);
      strftime(t1, sizeof t1, "%Y-%m-%d %H:%M:%S UTC", &tm);
      ago(t2, sizeof t2, souk_now_ms() - ps.last_change_ms);
      souk_buf_printf(b, "Poller: %s; last refresh %s (seen %s ago", sb_poll_state_name(ps.state),
                      t1, t2);
      if (ps.last_delay_ms >= 0) {
        ago(t3, sizeof t3, (uint64_t)ps.last_delay_ms);
        souk_buf_printf(b, ", %s behind lastUpdated", t3);
      }
      souk_buf_puts(b, ")\n");
    } else {
      souk_buf_printf(b, "Poller: %s; no refresh seen yet\n", sb_poll_state_name(ps.state));
    }
    ago(t1, sizeof t1, ps.interval_ms);
    ago(t2, sizeof t2, ps.last_sweep_ms);
    souk_buf_printf(b,
                    "Refresh interval %s (learned); last sweep %d pages in %s; sweeps %" PRIu64
                    " complete, %" PRIu64 " incomplete, %" PRIu64 " restarts\n",
                    t1, ps.total_pages, t2, ps.sweeps_complete, ps.sweeps_incomplete, ps.restarts);
    souk_buf_printf(b,
                    "Requests: %" PRIu64 " pages ok, %" PRIu64 " failed, %" PRIu64
                    " retried, %" PRIu64 " not populated (503), breaker %s\n",
                    ps.pages_ok, ps.pages_failed, ps.retries, ps.not_populated,
                    souk_breaker_state_name(souk_breaker_state(sb_poller_breaker(sb_g.poller))));
  } else if (sb_g.live) {
    souk_buf_puts(b, "Poller: runs in the cluster's leader, not in this process\n");
  } else if (sb_g.sim) {
    ago(t1, sizeof t1, (uint64_t)sb_conf.sim_interval_ms);
    souk_buf_printf(b, "Simulated market: %" PRIu64 " refreshes, one every %s\n",
                    sb_sim_refreshes(sb_g.sim), t1);
  }
  char t4[48], t5[48], t6[48];
  sb_fmt_coins(t1, sizeof t1, (int64_t)es.auctions_seen, false);
  sb_fmt_coins(t2, sizeof t2, (int64_t)ms.live, false);
  sb_fmt_coins(t3, sizeof t3, (int64_t)ms.live_bin, false);
  sb_fmt_coins(t4, sizeof t4, (int64_t)es.auctions_new, false);
  sb_fmt_coins(t5, sizeof t5, (int64_t)ms.markets, false);
  sb_fmt_coins(t6, sizeof t6, (int64_t)ms.sales, false);
  souk_buf_printf(b,
                  "Auctions: %s live (%s BIN), %s seen, %s decoded, %" PRIu64
                  " bad; %s items tracked; %s sales in the window\n",
                  t2, t3, t1, t4, es.auctions_bad, t5, t6);
  souk_buf_printf(b, "Alerts: %" PRIu64 " sent (%" PRIu64 " DMs, %" PRIu64 " refused)",
                  sb_g.alerts_sent, sb_g.dms_sent, sb_g.dms_refused);
  if (!sb_conf.sniper_enabled) souk_buf_puts(b, " - the sniper is off");
  souk_buf_puts(b, "; suppressed:");
  bool any = false;
  for (int v = 1; v < SB_V__COUNT; v++) {
    if (!es.verdicts[v]) continue;
    souk_buf_printf(b, "%s %s %" PRIu64, any ? "," : "", sb_verdict_name((sb_verdict_t)v),
                    es.verdicts[v]);
    any = true;
  }
  if (!any) souk_buf_puts(b, " none");
  souk_buf_puts(b, "\n");
  if (es.max_alert_ns)
    souk_buf_printf(b,
                    "Alert latency: last %.2f ms, worst %.2f ms (last byte of the page to the "
                    "alert queued)\n",
                    (double)es.last_alert_ns / 1e6, (double)es.max_alert_ns / 1e6);
  souk_memguard_stats_t mg;
  souk_memguard_stats(&mg);
  souk_buf_printf(b,
                  "Memory: RSS %" PRIu64 " MB, guard %s; window %u h (configured %" PRId64
                  " h); cycles skipped %" PRIu64 ", window shrunk %" PRIu64
                  ", sweeps cut at rows_soft_cap %" PRIu64 "; store about %zu MB\n",
                  mg.rss >> 20, souk_memguard_level_name(mg.level), sb_g.window_now,
                  sb_conf.window_hours, sb_g.mem[SB_MEM_SKIP_CYCLE], sb_g.mem[SB_MEM_SHRINK_WINDOW],
                  sb_g.mem[SB_MEM_ROWS_CAP], ms.approx_bytes >> 20);
  souk_buf_printf(b,
                  "Files: %" PRIu64 " hourly summaries (%" PRIu64 " rows, %" PRIu64
                  " errors), %" PRIu64 " checkpoints; spool %s",
                  sb_g.summaries_written, sb_g.summary_rows, sb_g.summary_errors, sb_g.checkpoints,
                  sb_conf.spool ? "on" : "off");
  if (sb_conf.spool)
    souk_buf_printf(b, " (%" PRIu64 " pages, %" PRIu64 " MB)", sb_g.spool_pages,
                    sb_g.spool_bytes >> 20);
}

/* ---- metrics ------------------------------------------------------------------- */

static souk_metric_t *m_c[16], *m_g[8], *m_verdict, *m_mem;

static void sb_collect(void *ud) {
  (void)ud;
  if (!sb_g.started) return;
  sb_engine_stats_t es;
  sb_engine_stats(sb_g.engine, &es);
  sb_mkts_stats_t ms;
  sb_mkts_stats(sb_engine_store(sb_g.engine), &ms);
  sb_poll_stats_t ps = {0};
  if (sb_g.poller) sb_poller_stats(sb_g.poller, &ps);
  const double c[16] = {(double)es.pages,           (double)es.ended_pages,
                        (double)es.auctions_seen,   (double)es.auctions_new,
                        (double)es.auctions_bad,    (double)es.sales_new,
                        (double)ps.pages_failed,    (double)ps.not_populated,
                        (double)ps.sweeps_complete, (double)ps.sweeps_incomplete,
                        (double)ps.restarts,        (double)sb_g.alerts_sent,
                        (double)sb_g.dms_refused,   (double)sb_g.summaries_written,
                        (double)sb_g.checkpoints,   (double)sb_g.spool_bytes};
  for (int i = 0; i < 16; i++)
    souk_counter_set(souk_metric_series(m_c[i], NULL), c[i]);
  const double g[8] = {(double)ms.live,
                       (double)ms.markets,
                       (double)ms.sales,
                       (double)sb_g.window_now,
                       (double)ps.interval_ms / 1000.0,
                       ps.last_delay_ms >= 0 ? (double)ps.last_delay_ms / 1000.0 : 0,
                       (double)es.last_alert_ns / 1e9,
                       (double)ms.approx_bytes};
  for (int i = 0; i < 8; i++)
    souk_gauge_set(souk_metric_series(m_g[i], NULL), g[i]);
  for (int v = 0; v < SB_V__COUNT; v++)
    souk_counter_set(souk_metric_series(m_verdict, SOUK_LV(sb_verdict_name((sb_verdict_t)v))),
                     (double)es.verdicts[v]);
  static const char *const mem_names[SB_MEM__COUNT] = {"skip_cycle", "shrink_window", "rows_cap"};
  for (int i = 0; i < SB_MEM__COUNT; i++)
    souk_counter_set(souk_metric_series(m_mem, SOUK_LV(mem_names[i])), (double)sb_g.mem[i]);
}

static void metrics_init(void) {
  static const char *const cn[16][2] = {
      {"souk_skyblock_pages_total", "auction pages ingested"},
      {"souk_skyblock_ended_pages_total", "auctions_ended pages ingested"},
      {"souk_skyblock_auctions_seen_total", "auctions read on pages"},
      {"souk_skyblock_auctions_decoded_total", "new auctions whose item was decoded"},
      {"souk_skyblock_auctions_bad_total", "auctions skipped: malformed or undecodable"},
      {"souk_skyblock_sales_total", "sales added from auctions_ended"},
      {"souk_skyblock_page_failures_total", "page requests that failed (retried or not)"},
      {"souk_skyblock_not_populated_total", "503 answers: the API cache not populated"},
      {"souk_skyblock_sweeps_complete_total", "sweeps whose pages all arrived and agreed"},
      {"souk_skyblock_sweeps_incomplete_total", "sweeps cut, failed or restarted"},
      {"souk_skyblock_sweep_restarts_total", "restarts on pages that disagreed on lastUpdated"},
      {"souk_skyblock_alerts_total", "snipe alerts sent"},
      {"souk_skyblock_dm_refused_total", "alert DMs refused by Discord (50007)"},
      {"souk_skyblock_summaries_total", "hourly Parquet summaries written"},
      {"souk_skyblock_checkpoints_total", "checkpoints of the window saved"},
      {"souk_skyblock_spool_bytes_total", "compressed bytes written to the raw spool"},
  };
  for (int i = 0; i < 16; i++)
    m_c[i] = souk_counter_new(cn[i][0], cn[i][1], NULL);
  static const char *const gn[8][2] = {
      {"souk_skyblock_live_listings", "live auctions tracked"},
      {"souk_skyblock_items", "items (markets) tracked"},
      {"souk_skyblock_window_sales", "sales in the analysis window"},
      {"souk_skyblock_window_hours", "analysis window in effect"},
      {"souk_skyblock_refresh_interval_seconds", "the API's refresh interval, learned"},
      {"souk_skyblock_refresh_delay_seconds", "last refresh seen this long after lastUpdated"},
      {"souk_skyblock_alert_latency_seconds", "last alert: page's last byte to alert queued"},
      {"souk_skyblock_store_bytes", "memory held by the feature store, estimated"},
  };
  for (int i = 0; i < 8; i++)
    m_g[i] = souk_gauge_new(gn[i][0], gn[i][1], NULL);
  m_verdict = souk_counter_new("souk_skyblock_verdicts_total",
                               "new listings judged, by verdict (alert or why not)", "verdict");
  m_mem =
      souk_counter_new("souk_skyblock_memory_decisions_total",
                       "memory decisions: cycles skipped, window shrunk, sweeps cut", "decision");
  souk_metrics_add_collector(sb_collect, NULL);
}

/* ---- health ---------------------------------------------------------------------- */

static void sb_health(void *ud, souk_health_result_t *out) {
  (void)ud;
  if (sb_g.live && !sb_g.poller) {
    souk_health_set(out, SOUK_HEALTH_HEALTHY,
                    "the poller runs in the cluster's leader, not in this process");
    return;
  }
  if (!sb_g.poller) {
    souk_health_set(out, SOUK_HEALTH_HEALTHY, "source sim");
    return;
  }
  sb_poll_stats_t ps;
  sb_poller_stats(sb_g.poller, &ps);
  uint64_t since =
      ps.last_change_ms ? souk_now_ms() - ps.last_change_ms : souk_now_ms() - sb_g.started_ms;
  uint64_t iv = ps.interval_ms ? ps.interval_ms : 60000;
  souk_health_t h = since > iv * 10  ? SOUK_HEALTH_CRITICAL
                    : since > iv * 3 ? SOUK_HEALTH_WARNING
                                     : SOUK_HEALTH_HEALTHY;
  souk_health_set(out, h, "poller %s, last refresh seen %" PRIu64 " s ago, breaker %s",
                  sb_poll_state_name(ps.state), since / 1000,
                  souk_breaker_state_name(souk_breaker_state(sb_poller_breaker(sb_g.poller))));
}

/* ---- tasks ------------------------------------------------------------------------ */

static void intel_task(souk_task_ctx_t *ctx) {
  if (sb_g.started) {
    sb_g.nwatch = sb_mkts_most_active(sb_engine_store(sb_g.engine), sb_g.watch,
                                      sizeof sb_g.watch / sizeof *sb_g.watch);
    sb_g.watch_at_ms = souk_unix_ms();
  }
  souk_task_done(ctx, 0);
}

static void task_done_cb(void *ud, int status) { souk_task_done(ud, status); }

static void checkpoint_task(souk_task_ctx_t *ctx) {
  if (!sb_g.started) {
    souk_task_done(ctx, 0);
    return;
  }
  sb_files_checkpoint(task_done_cb, ctx);
}

static void prune_task(souk_task_ctx_t *ctx) {
  if (!sb_g.started) {
    souk_task_done(ctx, 0);
    return;
  }
  sb_dedupe_prune(sb_engine_dedupe(sb_g.engine), (int64_t)souk_unix_ms());
  sb_alerts_prune(task_done_cb, ctx);
}

static souk_task_t sb_tasks[] = {
    {.name = "skyblock.intel",
     .period_ms = 90000,
     .jitter_ms = 1000,
     .budget_ms = 1000,
     .handler = intel_task,
     .flags = SOUK_TASK_RUN_AT_START},
    {.name = "skyblock.checkpoint",
     .period_ms = 300000,
     .jitter_ms = 5000,
     .budget_ms = 30000,
     .handler = checkpoint_task,
     .scope = SOUK_TASK_SCOPE_CLUSTER},
    {.name = "skyblock.prune",
     .period_ms = 3600000,
     .jitter_ms = 60000,
     .budget_ms = 60000,
     .handler = prune_task,
     .scope = SOUK_TASK_SCOPE_CLUSTER},
    {0},
};

/* ---- start and stop ---------------------------------------------------------------- */

static bool source_live(void) {
  if (sb_conf.source == 1) return false;
  if (sb_conf.source == 2) return true;
  return souk_cmd_console_channel() == 0;
}

void sb_confs(sb_mkts_conf_t *mc, sb_sniper_conf_t *sc) {
  *mc = (sb_mkts_conf_t){.ladder_size = (unsigned)sb_conf.lowest_ladder_size,
                         .window_hours = (unsigned)sb_conf.window_hours,
                         .thin_wall = (unsigned)sb_conf.thin_wall_threshold,
                         .min_sales = (unsigned)sb_conf.fmv_min_sales,
                         .live_cap = (size_t)sb_conf.rows_soft_cap,
                         .hour_grace_ms = 90000};
  sb_sniper_conf_defaults(sc);
  sc->min_profit = sb_conf.min_profit;
  sc->min_margin_bp = (int32_t)(sb_conf.min_margin_pct * 100);
  sc->min_sales = (uint32_t)sb_conf.min_sales;
  sc->allow_thin = sb_conf.allow_thin;
  sc->max_listing_age_ms = sb_conf.max_age_ms;
  sc->improve_bp = (int32_t)(sb_conf.improve_pct * 100);
  sc->dedupe_max = (size_t)sb_conf.dedupe_max;
  sc->dedupe_ttl_ms = sb_conf.dedupe_ttl_ms;
  sc->fees = (sb_fees_t){.tier1_below = sb_conf.fee_low_below,
                         .tier2_upto = sb_conf.fee_mid_upto,
                         .tier1_bp = (int32_t)sb_conf.fee_low_bp,
                         .tier2_bp = (int32_t)sb_conf.fee_mid_bp,
                         .tier3_bp = (int32_t)sb_conf.fee_high_bp,
                         .tax_above = sb_conf.fee_tax_above,
                         .tax_bp = (int32_t)sb_conf.fee_tax_bp};
}

static void sb_shutdown(const souk_module_ctx_t *ctx);

/* The live poller and its ingestion are once-per-cluster work: only the
 * holder of the cluster's lease polls the API (and so posts alerts and
 * writes the Parquet files and checkpoints); the others keep their
 * engine for what they read of it.  A process that gains the lease starts
 * polling at once, after re-reading the alerts already posted. */
static void taken_over(void *ud) {
  (void)ud;
  sb_g.taking_over = false;
  /* Still leading, and still running: poll from the window just loaded. */
  if (!sb_g.started || sb_g.poller || !souk_cluster_leader()) return;
  int rc = live_start();
  if (rc) SOUK_ERROR("skyblock", "cannot start the poller: %s", souk_strerror(rc));
  else SOUK_INFO("skyblock", "this process leads the cluster: polling %s", sb_conf.api_url);
}

static void leader_cb(bool leader, int64_t fence, void *ud) {
  (void)fence;
  (void)ud;
  if (!sb_g.started || !sb_g.live) return;
  if (leader && !sb_g.poller && !sb_g.taking_over) {
    sb_g.taking_over = true;
    sb_alerts_take_over();
    sb_files_take_over(taken_over, NULL);
  } else if (!leader && sb_g.poller) {
    live_stop();
    SOUK_INFO("skyblock", "another process leads the cluster: the poller stops here");
  }
}

static int sb_init(const souk_module_ctx_t *ctx) {
  memset(&sb_g, 0, sizeof sb_g);
  sb_g.store = ctx->store;
  sb_g.live = source_live();
  sb_g.started_ms = souk_now_ms();
  if (sb_conf.api_key) souk_log_add_secret(sb_conf.api_key);
  sb_mkts_conf_t mc;
  sb_sniper_conf_t sc;
  sb_confs(&mc, &sc);
  sb_engine_hooks_t hooks = {.alert = sb_conf.sniper_enabled ? sb_alerts_on_alert : NULL,
                             .hour_closed = sb_files_on_hour};
  sb_g.engine = sb_engine_new(&mc, &sc, &hooks);
  sb_g.window_now = (unsigned)sb_conf.window_hours;
  int rc = sb_files_start();
  if (rc) {
    sb_engine_free(sb_g.engine);
    sb_g.engine = NULL;
    return rc;
  }
  sb_alerts_start();
  sb_tasks[0].period_ms = (uint64_t)sb_conf.intel_interval_seconds * 1000;
  sb_tasks[1].period_ms = (uint64_t)sb_conf.checkpoint_ms;
  metrics_init();
  souk_health_register("skyblock", sb_health, NULL);
  sb_g.started = true;
  if (sb_g.live) {
    /* One process (no cluster) leads from the start; in a cluster the
     * poller starts when the lease is this process's. */
    rc = souk_cluster_leader() ? live_start() : 0;
    if (rc) {
      SOUK_ERROR("skyblock", "cannot start the poller: %s", souk_strerror(rc));
      /* A failed init gets no shutdown: undo what started. */
      sb_shutdown(ctx);
      return rc;
    }
    souk_cluster_watch(leader_cb, NULL);
    SOUK_INFO("skyblock", "SkyBlock sniper started: live from %s, %" PRId64 " pages at once%s",
              sb_conf.api_url, sb_conf.concurrency,
              sb_g.poller ? "" : " (in the cluster's leader)");
  } else {
    sb_g.sim = sb_sim_start(sb_g.engine, (uint64_t)sb_conf.sim_seed,
                            (uint64_t)sb_conf.sim_interval_ms, (unsigned)sb_conf.sim_warmup_hours);
    if (!sb_g.sim) {
      sb_shutdown(ctx);
      return SOUK_EIO;
    }
    SOUK_INFO("skyblock", "SkyBlock sniper started: simulated market (skyblock.source: sim)");
  }
  return 0;
}

static void sb_shutdown(const souk_module_ctx_t *ctx) {
  if (!sb_g.engine) return;
  souk_health_unregister("skyblock");
  souk_metrics_remove_collector(sb_collect, NULL);
  souk_cluster_unwatch(leader_cb, NULL);
  live_stop();
  if (sb_g.sim) {
    sb_sim_stop(sb_g.sim);
    sb_g.sim = NULL;
  }
  /* Pages still on the thread pool come back to the engine: let them. */
  for (int i = 0; i < 10000 && (sb_engine_busy(sb_g.engine) || sb_files_busy()); i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  sb_alerts_stop();
  sb_files_stop();
  sb_g.started = false;
  sb_engine_free(sb_g.engine);
  sb_g.engine = NULL;
  souk_free(sb_g.dir);
  sb_g.dir = NULL;
}

/* ---- check-config --------------------------------------------------------------------- */

static int sb_check(bool online, souk_buf_t *out) {
  (void)online;
  souk_buf_printf(
      out, "skyblock: source %s%s; API %s; API key %s\n", source_choices[sb_conf.source],
      sb_conf.source == 0 ? " (sim in `souk console`, live otherwise)" : "", sb_conf.api_url,
      sb_conf.api_key ? "set (SOUK_SKYBLOCK_API_KEY)"
                      : "not set (only needed for /v2/skyblock/auction?uuid=)");
  souk_buf_printf(out,
                  "  window %" PRId64 " h, ladder %" PRId64 ", thin below %" PRId64
                  " listings, rows_soft_cap %" PRId64 "; summaries %s (kept %" PRId64
                  " days), spool %s (kept %" PRId64 " h)\n",
                  sb_conf.window_hours, sb_conf.lowest_ladder_size, sb_conf.thin_wall_threshold,
                  sb_conf.rows_soft_cap, sb_conf.summaries ? "on" : "off",
                  sb_conf.summary_retention_days, sb_conf.spool ? "on" : "off",
                  sb_conf.raw_retention_hours);
  souk_buf_printf(out,
                  "  sniper %s: profit >= %" PRId64 " coins after fees, margin >= %" PRId64
                  "%%, >= %" PRId64 " sales; %zu alert channel(s)\n",
                  sb_conf.sniper_enabled ? "on" : "off", sb_conf.min_profit, sb_conf.min_margin_pct,
                  sb_conf.min_sales, sb_conf.channels.n);
  return 0;
}

const souk_module_t souk_skyblock_module = {
    .abi = SOUK_MODULE_ABI,
    .name = "skyblock",
    .conf = sb_conf_keys,
    .conf_data = &sb_conf,
    .commands = sb_commands,
    .tasks = sb_tasks,
    .init = sb_init,
    .shutdown = sb_shutdown,
    .check = sb_check,
    .settings = sb_settings,
    .cli = sb_cli,
};
