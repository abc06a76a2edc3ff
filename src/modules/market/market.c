/* The Market Sim module: a stock paper-trading game per guild.
 *
 * This file holds the module's table, its config section, start and stop
 * (the provider chain, the price cache and its persistence), the price
 * snapshots, the /metrics collector and the check-config report.  The
 * commands are in cmd_*.c (their tables in commands.c), the daily update
 * in daily.c, the dashboard in dashboard*.c; prices, money and the ledger
 * in their own files.
 *
 * One source per season: a guild whose season is 'sim' is priced by the
 * simulated market only, a 'live' one by the provider chain (through the
 * price cache) only.  A new guild gets market.source, where "auto" means
 * live when any provider is configured and sim otherwise. */
#include "dashboard.h"
#include "market_int.h"
#include "money.h"
#include "players.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/http.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/metrics.h"
#include "souk/module.h"
#include "souk/store.h"
#include "souk/task.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

market_conf_t market_conf;
market_state_t market_g;

SOUK_CONF_ENUM_CHOICES(market_hours_t, hours_choices, MARKET_HOURS_OPEN_ONLY,
                       [MARKET_HOURS_LAST_PRICE] = "last_price",
                       [MARKET_HOURS_OPEN_ONLY] = "open_only");
SOUK_CONF_ENUM_CHOICES(market_source_pref_t, source_choices, MARKET_SOURCE_LIVE,
                       [MARKET_SOURCE_AUTO] = "auto", [MARKET_SOURCE_SIM] = "sim",
                       [MARKET_SOURCE_LIVE] = "live");

#define K(field) offsetof(market_conf_t, field)
static const souk_conf_key_t market_conf_keys[] = {
    {"finnhub.key", SOUK_CONF_STRING, K(finnhub_key), NULL, 0, 2048, NULL, SOUK_CONF_SECRET,
     "Finnhub API token (SOUK_MARKET_FINNHUB_KEY); enables Finnhub; several separated by commas "
     "are used in turn, the next when one runs out of budget"},
    {"polygon.key", SOUK_CONF_STRING, K(polygon_key), NULL, 0, 2048, NULL, SOUK_CONF_SECRET,
     "Polygon API key (SOUK_MARKET_POLYGON_KEY); enables Polygon; several separated by commas "
     "are used in turn"},
    {"alpaca.key_id", SOUK_CONF_STRING, K(alpaca_key_id), NULL, 0, 2048, NULL, SOUK_CONF_SECRET,
     "Alpaca key id (SOUK_MARKET_ALPACA_KEY_ID); with alpaca.secret enables Alpaca; several "
     "separated by commas, paired in order with the secrets"},
    {"alpaca.secret", SOUK_CONF_STRING, K(alpaca_secret), NULL, 0, 2048, NULL, SOUK_CONF_SECRET,
     "Alpaca secret key (SOUK_MARKET_ALPACA_SECRET); one per key id, separated by commas"},
    {"yahoo.enabled", SOUK_CONF_BOOL, K(yahoo_enabled), "false", 0, 0, NULL, 0,
     "ask Yahoo's unofficial chart API last in the chain (no key)"},
    {"finnhub.url", SOUK_CONF_URL, K(finnhub_url), NULL, 0, 0, NULL, 0,
     "Finnhub base URL (tests); default the real API"},
    {"polygon.url", SOUK_CONF_URL, K(polygon_url), NULL, 0, 0, NULL, 0,
     "Polygon base URL (tests); default the real API"},
    {"alpaca.url", SOUK_CONF_URL, K(alpaca_url), NULL, 0, 0, NULL, 0,
     "Alpaca market data base URL (tests); default the real API"},
    {"yahoo.url", SOUK_CONF_URL, K(yahoo_url), NULL, 0, 0, NULL, 0,
     "Yahoo base URL (tests); default the real API"},
    {"min_interval", SOUK_CONF_DURATION, K(min_interval_ms), "2s", 0, 600000, NULL, 0,
     "least time between any two provider requests"},
    {"timeout", SOUK_CONF_DURATION, K(timeout_ms), "5s", 100, 120000, NULL, 0,
     "a provider request's whole time limit"},
    {"start_cash", SOUK_CONF_STRING, K(start_cash), "$1,000,000", 0, 40, NULL, 0,
     "cash of a new account in a new guild, in dollars (\"$1,000,000\", \"2500.50\")"},
    {"commission_cents", SOUK_CONF_INT, K(commission_cents), "0", 0, 100000000, NULL, 0,
     "commission per trade in a new guild, in cents"},
    {"hours", SOUK_CONF_ENUM, K(hours), "last_price", 0, 0, hours_choices, 0,
     "market-hours policy of a new guild: trade any time at the last price, or only while "
     "the NYSE is open"},
    {"source", SOUK_CONF_ENUM, K(source), "auto", 0, 0, source_choices, 0,
     "price source of a new guild's season: auto (live when a provider is configured), sim, "
     "live"},
    {"fresh_for", SOUK_CONF_DURATION, K(fresh_for_ms), "15m", 1000, 7 * 86400000LL, NULL, 0,
     "a quote older than this (by its own timestamp) is not traded at, except a closed "
     "market's last price"},
    {"cache.ttl", SOUK_CONF_DURATION, K(cache_ttl_ms), "24h", 60000, 30 * 86400000LL, NULL, 0,
     "how long a last-known price is kept and shown when every provider fails"},
    {"cache.refresh", SOUK_CONF_DURATION, K(cache_refresh_ms), "30s", 0, 86400000, NULL, 0,
     "a price fetched this recently is served from the cache without asking a provider"},
    {"cache.max_entries", SOUK_CONF_INT, K(cache_max_entries), "1000", 1, 1000000, NULL, 0,
     "symbols kept in the price cache (least recently used are dropped)"},
    {"sim.seed", SOUK_CONF_INT, K(sim_seed), "0", 0, 0, NULL, 0,
     "seed of the simulated market's random walk (same seed, same prices); 0: a random seed "
     "made at the first start and kept in the store"},
    {"daily_update.period", SOUK_CONF_DURATION, K(daily_period_ms), "1h", 60000, 86400000, NULL, 0,
     "how often the daily update task checks whether today's snapshot is due"},
    {"daily_update.hour", SOUK_CONF_INT, K(daily_hour), "21", 0, 23, NULL, 0,
     "UTC hour from which the day's portfolio snapshot is taken (21: after the US close)"},
    {"daily_update.max_fetch", SOUK_CONF_INT, K(daily_max_fetch), "50", 0, 1000, NULL, 0,
     "held live symbols the daily update refreshes from the providers first, at most (the "
     "stalest first; ones still fresh are skipped; 0: value at the cached prices)"},
    {0},
};
#undef K

/* The market's keys that their types cannot check, refused with the rest
 * of the configuration before anything starts (migrations included). */
static bool check_cash(const char *v, souk_buf_t *expected) {
  int64_t cents;
  if (market_parse_cents(v, &cents) == 0) return true;
  souk_buf_puts(expected, "a dollar amount of $0 or more such as \"$1,000,000\" or \"2500.50\"");
  return false;
}

static bool check_http_url(const char *v, souk_buf_t *expected) {
  if (!strncasecmp(v, "https://", 8) || !strncasecmp(v, "http://", 7)) return true;
  souk_buf_puts(expected, "an http(s) URL");
  return false;
}

static bool check_keys(const char *v, souk_buf_t *expected) {
  char keys[MARKET_KEYS_MAX][256];
  size_t n;
  bool ok = market_key_list(v, keys, &n) == 0;
  memset(keys, 0, sizeof keys); /* secrets */
  if (!ok)
    souk_buf_printf(expected, "1 to %d keys separated by commas, none empty or over 255 bytes",
                    MARKET_KEYS_MAX);
  return ok;
}

static const souk_conf_check_t market_conf_checks[] = {
    {"start_cash", check_cash},      {"finnhub.url", check_http_url},
    {"polygon.url", check_http_url}, {"alpaca.url", check_http_url},
    {"yahoo.url", check_http_url},   {"finnhub.key", check_keys},
    {"polygon.key", check_keys},     {"alpaca.key_id", check_keys},
    {"alpaca.secret", check_keys},   {0},
};

/* How many keys a configured key list holds (0 when unset). */
static size_t key_count(const char *v) {
  char keys[MARKET_KEYS_MAX][256];
  size_t n = 0;
  if (market_key_list(v, keys, &n)) n = 0;
  memset(keys, 0, sizeof keys);
  return n;
}

/* ---- price snapshots -------------------------------------------------- */

void market_snap_fill(market_snap_t *s, market_source_t source) {
  memset(s, 0, sizeof *s);
  s->at_ms = (int64_t)souk_unix_ms();
  s->simc = market_g.sim;
  s->sim = source == MARKET_SRC_SIM;
  if (s->sim || !market_g.pc) return;
  size_t n = market_pc_count(market_g.pc);
  s->q = souk_calloc(n ? n : 1, sizeof *s->q);
  for (size_t i = 0; i < n; i++) {
    market_quote_t q;
    int64_t fetched;
    /* The entry's own fetch time says whether it is still served: no
     * lookup by symbol per entry. */
    if (market_pc_at(market_g.pc, i, &q, &fetched) == 0 &&
        market_pc_within_ttl(market_g.pc, fetched))
      s->q[s->n++] = q;
  }
}

void market_snap_free(market_snap_t *s) {
  souk_free(s->q);
  s->q = NULL;
  s->n = 0;
}

int market_snap_price(void *ud, const char *symbol, int64_t *price_micro) {
  const market_snap_t *s = ud;
  if (s->sim) {
    market_quote_t q;
    if (market_sim_quote(&s->simc, symbol, s->at_ms, &q)) return SOUK_ENOTFOUND;
    *price_micro = q.price_micro;
    return 0;
  }
  for (size_t i = 0; i < s->n; i++) {
    if (strcmp(s->q[i].symbol, symbol) == 0) {
      *price_micro = s->q[i].price_micro;
      return 0;
    }
  }
  return SOUK_ENOTFOUND;
}

/* The period comes from daily_update.period, read at each planning. */
static const souk_task_t market_tasks[] = {
    {.name = "market.daily_update",
     .period_ms = 3600000,
     .period_conf = &market_conf.daily_period_ms,
     .jitter_ms = 30000,
     .budget_ms = 60000,
     .handler = market_daily_task,
     .flags = SOUK_TASK_RUN_AT_START,
     /* Once for the bot: the leader values every account (each day's
      * rows are written once whoever runs it, and fenced). */
     .scope = SOUK_TASK_SCOPE_CLUSTER},
    {0},
};

/* ---- metrics ------------------------------------------------------------ */

static souk_metric_t *m_pc[8], *m_entries, *m_prov[6], *m_prov_enabled;
static souk_metric_t *m_shared; /* quotes shared through Redis, by outcome */

static void market_collect(void *ud) {
  (void)ud;
  if (!market_g.pc) return;
  market_pc_stats_t s;
  market_pc_stats(market_g.pc, &s);
  const double v[8] = {(double)s.hits,      (double)s.misses,        (double)s.refreshes,
                       (double)s.stale,     (double)s.coalesced,     (double)s.evictions,
                       (double)s.persisted, (double)s.persist_errors};
  for (size_t i = 0; i < 8; i++)
    souk_counter_set(souk_metric_series(m_pc[i], NULL), v[i]);
  souk_gauge_set(souk_metric_series(m_entries, NULL), (double)s.entries);
  if (!market_g.chain) return;
  market_sq_stats_t sq;
  market_sq_stats(market_g.sq, &sq);
  souk_counter_set(souk_metric_series(m_shared, SOUK_LV("shared")), (double)sq.shared_hits);
  souk_counter_set(souk_metric_series(m_shared, SOUK_LV("fetched")), (double)sq.fetched);
  souk_counter_set(souk_metric_series(m_shared, SOUK_LV("published")), (double)sq.published);
  for (int p = 0; p < MARKET_PROV_COUNT; p++) {
    market_provider_stats_t ps;
    if (market_chain_stats(market_g.chain, (market_provider_id_t)p, &ps)) continue;
    const char *const lv[] = {market_provider_name((market_provider_id_t)p)};
    const double pv[6] = {
        (double)ps.requests,
        (double)ps.ok,
        (double)ps.nodata,
        (double)ps.rate_limited,
        (double)ps.errors,
        (double)(ps.skipped_backoff + ps.skipped_budget + ps.skipped_breaker + ps.skipped_busy)};
    for (size_t i = 0; i < 6; i++)
      souk_counter_set(souk_metric_series(m_prov[i], lv), pv[i]);
    souk_gauge_set(souk_metric_series(m_prov_enabled, lv), ps.enabled ? 1 : 0);
  }
}

static void metrics_init(const souk_metrics_registry_t *reg) {
  static const char *const pc_names[8][2] = {
      {"souk_market_price_cache_hits_total", "price lookups answered from the cache"},
      {"souk_market_price_cache_misses_total", "price lookups of a symbol not cached"},
      {"souk_market_price_cache_refreshes_total", "cached prices too old to serve, refetched"},
      {"souk_market_price_cache_stale_total",
       "last-known prices served because every provider failed"},
      {"souk_market_price_cache_coalesced_total", "lookups that joined one already in flight"},
      {"souk_market_price_cache_evictions_total", "entries dropped by the size bound"},
      {"souk_market_price_cache_persisted_total", "prices written to the store"},
      {"souk_market_price_cache_persist_errors_total", "failed writes to the store"},
  };
  for (size_t i = 0; i < 8; i++)
    m_pc[i] = reg->counter(pc_names[i][0], pc_names[i][1], NULL);
  m_entries = reg->gauge("souk_market_price_cache_entries", "symbols in the price cache", NULL);
  m_shared = reg->counter("souk_market_shared_quotes_total",
                          "price cache misses by outcome: shared (another process's quote, from "
                          "Redis), fetched (asked the providers), published (put in Redis for the "
                          "others)",
                          "outcome");
  static const char *const pv_names[6][2] = {
      {"souk_market_provider_requests_total", "requests sent to a price provider"},
      {"souk_market_provider_ok_total", "provider answers with a price"},
      {"souk_market_provider_nodata_total", "provider answers without data, or stale"},
      {"souk_market_provider_rate_limited_total", "429 answers"},
      {"souk_market_provider_errors_total", "timeouts, connection errors, 5xx, bad bodies, auth"},
      {"souk_market_provider_skipped_total", "lookups that passed a provider over"},
  };
  for (size_t i = 0; i < 6; i++)
    m_prov[i] = reg->counter(pv_names[i][0], pv_names[i][1], "provider");
  m_prov_enabled =
      reg->gauge("souk_market_provider_enabled", "1 when the provider is configured", "provider");
  reg->add_collector(market_collect, NULL);
}

/* ---- start and stop ----------------------------------------------------- */

static int chain_fetch(void *fud, const char *symbol, market_quote_cb cb, void *ud) {
  return market_chain_quote(fud, symbol, cb, ud);
}

static const souk_clock_t *g_wall; /* NULL: the real clock */

static void reload_done(void *ud, int status, size_t n) {
  (void)ud;
  if (status)
    SOUK_WARN("market", "loading saved prices failed: %s", souk_strerror(status));
  else
    SOUK_INFO("market", "price cache: %zu saved prices loaded", n);
}

static bool provider_configured(int p) {
  const market_conf_t *c = &market_conf;
  switch (p) {
  case MARKET_PROV_FINNHUB:
    return c->finnhub_key != NULL;
  case MARKET_PROV_POLYGON:
    return c->polygon_key != NULL;
  case MARKET_PROV_ALPACA:
    return c->alpaca_key_id != NULL && c->alpaca_secret != NULL;
  case MARKET_PROV_YAHOO:
    return c->yahoo_enabled;
  default:
    return false;
  }
}

void market_check_config_report(souk_buf_t *out) {
  const market_conf_t *c = &market_conf;
  bool any = false;
  souk_buf_puts(out, "market price providers:\n");
  for (int p = 0; p < MARKET_PROV_COUNT; p++) {
    bool on = provider_configured(p);
    any |= on;
    const char *why = "";
    if (!on) {
      switch (p) {
      case MARKET_PROV_FINNHUB:
        why = " (set SOUK_MARKET_FINNHUB_KEY)";
        break;
      case MARKET_PROV_POLYGON:
        why = " (set SOUK_MARKET_POLYGON_KEY)";
        break;
      case MARKET_PROV_ALPACA:
        why = c->alpaca_key_id || c->alpaca_secret
                  ? " (needs both SOUK_MARKET_ALPACA_KEY_ID and SOUK_MARKET_ALPACA_SECRET)"
                  : " (set SOUK_MARKET_ALPACA_KEY_ID and SOUK_MARKET_ALPACA_SECRET)";
        break;
      default:
        why = " (market.yahoo.enabled: true)";
        break;
      }
    }
    size_t nk = p == MARKET_PROV_FINNHUB   ? key_count(c->finnhub_key)
                : p == MARKET_PROV_POLYGON ? key_count(c->polygon_key)
                : p == MARKET_PROV_ALPACA  ? key_count(c->alpaca_key_id)
                                           : 0;
    char keys[64] = "";
    if (on && nk > 1) snprintf(keys, sizeof keys, " (%zu keys, used in turn)", nk);
    if (on && p == MARKET_PROV_ALPACA && nk != key_count(c->alpaca_secret))
      snprintf(keys, sizeof keys,
               " (WARNING: %zu key ids but %zu secrets; the unpaired are unused)", nk,
               key_count(c->alpaca_secret));
    souk_buf_printf(out, "  %-8s %s%s%s\n", market_provider_name((market_provider_id_t)p),
                    on ? "configured" : "not configured", why, keys);
  }
  const char *src = c->source == MARKET_SOURCE_SIM    ? "sim"
                    : c->source == MARKET_SOURCE_LIVE ? "live"
                                                      : (any ? "live" : "sim");
  souk_buf_printf(out, "  new guilds trade on: %s%s\n", src,
                  c->source == MARKET_SOURCE_LIVE && !any ? " (WARNING: no provider is configured)"
                                                          : "");
}

/* The provider chain's settings from the `market` section. */
static void chain_conf(market_chain_conf_t *cc) {
  const market_conf_t *c = &market_conf;
  market_chain_conf_defaults(cc);
  cc->prov[MARKET_PROV_FINNHUB].enabled = c->finnhub_key != NULL;
  cc->prov[MARKET_PROV_FINNHUB].key = c->finnhub_key;
  cc->prov[MARKET_PROV_FINNHUB].base_url = c->finnhub_url;
  cc->prov[MARKET_PROV_POLYGON].enabled = c->polygon_key != NULL;
  cc->prov[MARKET_PROV_POLYGON].key = c->polygon_key;
  cc->prov[MARKET_PROV_POLYGON].base_url = c->polygon_url;
  cc->prov[MARKET_PROV_ALPACA].enabled = c->alpaca_key_id && c->alpaca_secret;
  cc->prov[MARKET_PROV_ALPACA].key = c->alpaca_key_id;
  cc->prov[MARKET_PROV_ALPACA].secret = c->alpaca_secret;
  cc->prov[MARKET_PROV_ALPACA].base_url = c->alpaca_url;
  cc->prov[MARKET_PROV_YAHOO].enabled = c->yahoo_enabled;
  cc->prov[MARKET_PROV_YAHOO].base_url = c->yahoo_url;
  cc->min_interval_ms = (uint64_t)c->min_interval_ms;
  cc->timeout_ms = (uint32_t)c->timeout_ms;
}

/* ---- souk check-config ------------------------------------------------------ */

typedef struct probe {
  int provider;
  bool done;
  bool ok;
  char text[256];
} probe_t;

static void probe_cb(const market_chain_result_t *r, void *ud) {
  probe_t *p = ud;
  p->done = true;
  p->ok = r->err == 0;
  if (r->err == 0) {
    char price[MARKET_FMT_MAX];
    market_fmt_price(r->quote.price_micro, price, sizeof price);
    snprintf(p->text, sizeof p->text, "OK (%s %s)", r->symbol, price);
  } else {
    const char *why = r->reasons[p->provider];
    snprintf(p->text, sizeof p->text, "FAILED: %s", why ? why : r->message);
  }
}

/* Ask each configured provider, alone, for one quote: a wrong key shows
 * as "HTTP 401" or "HTTP 403", a network problem as a timeout. */
static int check_online(souk_buf_t *out) {
  market_chain_conf_t all;
  chain_conf(&all);
  int rc = souk_http_init();
  if (rc) {
    souk_buf_printf(out, "  online check impossible: %s\n", souk_strerror(rc));
    return rc;
  }
  int bad = 0;
  for (int p = 0; p < MARKET_PROV_COUNT; p++) {
    if (!all.prov[p].enabled) continue;
    market_chain_conf_t one = all;
    for (int q = 0; q < MARKET_PROV_COUNT; q++) one.prov[q].enabled = q == p;
    one.min_interval_ms = 0;
    market_chain_t *ch = NULL;
    probe_t pr = {.provider = p};
    if (market_chain_new(&one, &ch) == 0 && market_chain_quote(ch, "AAPL", probe_cb, &pr) == 0) {
      while (!pr.done && uv_run(souk_loop(), UV_RUN_ONCE)) {
      }
    }
    if (!pr.done) snprintf(pr.text, sizeof pr.text, "FAILED: could not ask");
    market_chain_free(ch);
    souk_buf_printf(out, "  %-8s %s\n", market_provider_name((market_provider_id_t)p), pr.text);
    bad += !pr.ok;
  }
  souk_http_shutdown();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  return bad ? SOUK_EAUTH : 0;
}

static int market_check(bool online, souk_buf_t *out) {
  /* market.start_cash and the URLs were checked with the configuration
   * (market_conf_checks). */
  market_check_config_report(out);
  if (!online) return 0;
  souk_buf_puts(out, "market providers, online:\n");
  return check_online(out);
}

/* ---- the simulated market's seed ------------------------------------------ */

typedef struct seed_job {
  uint64_t fresh; /* a new random seed, used when none is kept */
  uint64_t seed;  /* what the store keeps (after the transaction) */
} seed_job_t;

static int seed_tx(souk_db_t *db, void *ud) {
  seed_job_t *sj = ud;
  souk_buf_t b;
  souk_buf_init(&b);
  int rc = souk_db_kv_get(db, "market", "sim_seed", &b, NULL);
  if (rc == 0) {
    char txt[32] = "";
    char *end = NULL;
    snprintf(txt, sizeof txt, "%.*s", (int)(b.len < 31 ? b.len : 31), b.data ? b.data : "");
    unsigned long long v = strtoull(txt, &end, 10);
    souk_buf_free(&b);
    if (end != txt && *end == '\0' && v != 0) {
      sj->seed = (uint64_t)v;
      return 0;
    }
    /* An unreadable value is replaced. */
  } else {
    souk_buf_free(&b);
    if (rc != SOUK_ENOTFOUND) return rc;
  }
  char txt[32];
  int n = snprintf(txt, sizeof txt, "%" PRIu64, sj->fresh);
  rc = souk_db_kv_put(db, "market", "sim_seed", txt, (size_t)n);
  if (rc == 0) sj->seed = sj->fresh;
  return rc;
}

/* The simulated market's seed when sim.seed is 0: made at random at the
 * first start and kept in the store's kv (market/sim_seed), so prices stay
 * the same across restarts but nobody can compute them from the source.
 * Without a store (or when it fails) the seed lasts this process only. */
static uint64_t sim_seed_kept(souk_store_t *st) {
  seed_job_t sj = {0};
  while (sj.fresh == 0) {
    if (getrandom(&sj.fresh, sizeof sj.fresh, 0) != (ssize_t)sizeof sj.fresh)
      sj.fresh = souk_rand64() ^ souk_unix_ms();
  }
  if (!st) return sj.fresh;
  /* Once, at start, before any command is served: a blocking read. */
  int rc = souk_store_tx(st, seed_tx, &sj);
  if (rc == 0 && sj.seed) return sj.seed;
  SOUK_WARN("market",
            "cannot keep the simulated market's seed in the store (%s): its prices "
            "change at the next start",
            souk_strerror(rc));
  return sj.fresh;
}

static int market_init(const souk_module_ctx_t *ctx) {
  memset(&market_g, 0, sizeof market_g);
  market_g.store = ctx->store;
  const market_conf_t *c = ctx->conf;
  int64_t start_cash = 100000000;
  if (c->start_cash && market_parse_cents(c->start_cash, &start_cash) != 0) {
    SOUK_ERROR("market", "market.start_cash \"%s\" is not a dollar amount (e.g. \"$1,000,000\")",
               c->start_cash);
    return SOUK_ECONFIG;
  }
  for (int p = 0; p < MARKET_PROV_COUNT; p++)
    market_g.any_provider |= provider_configured(p);
  if (c->alpaca_key_id && c->alpaca_secret &&
      key_count(c->alpaca_key_id) != key_count(c->alpaca_secret))
    SOUK_WARN("market",
              "market.alpaca.key_id lists %zu keys and market.alpaca.secret %zu: the unpaired "
              "ones are not used",
              key_count(c->alpaca_key_id), key_count(c->alpaca_secret));
  if (market_g.any_provider) {
    market_chain_conf_t cc;
    chain_conf(&cc);
    cc.http = ctx->http;
    int rc = market_chain_new(&cc, &market_g.chain);
    if (rc) {
      SOUK_ERROR("market", "cannot set up the price providers: %s", souk_strerror(rc));
      return rc;
    }
  }
  market_source_t src = c->source == MARKET_SOURCE_SIM    ? MARKET_SRC_SIM
                        : c->source == MARKET_SOURCE_LIVE ? MARKET_SRC_LIVE
                        : market_g.any_provider           ? MARKET_SRC_LIVE
                                                          : MARKET_SRC_SIM;
  if (src == MARKET_SRC_LIVE && !market_g.any_provider)
    SOUK_WARN("market", "market.source is live but no price provider is configured: live "
                        "guilds cannot trade");
  market_settings_defaults(&market_g.defaults, 0, src);
  market_g.defaults.start_cash_cents = start_cash;
  market_g.defaults.commission_cents = c->commission_cents;
  market_g.defaults.hours = c->hours;
  market_sim_defaults(&market_g.sim);
  market_g.sim.seed = c->sim_seed ? (uint64_t)c->sim_seed : sim_seed_kept(market_g.store);

  uint64_t refresh_ms = c->cache_refresh_ms ? (uint64_t)c->cache_refresh_ms : 1;
  /* With several processes on one Redis, a quote fetched by one serves
   * the others for the refresh interval (sharedquote.h). */
  if (market_g.chain) {
    market_sq_conf_t sqc = {.cache = ctx->cache,
                            .fetch = chain_fetch,
                            .fetch_ud = market_g.chain,
                            .ttl_ms = refresh_ms,
                            .wall = g_wall};
    market_g.sq = market_sq_new(&sqc);
  }
  market_pc_conf_t pcc = {.ttl_ms = (uint64_t)c->cache_ttl_ms,
                          .fresh_ms = (uint64_t)c->fresh_for_ms,
                          .refresh_ms = refresh_ms,
                          .max_entries = (size_t)c->cache_max_entries,
                          .wall = g_wall,
                          .fetch = market_g.sq ? market_sq_fetch : NULL,
                          .fetch_ud = market_g.sq,
                          .store = market_g.store};
  market_g.pc = market_pc_new(&pcc);
  if (pcc.store && market_pc_reload(market_g.pc, reload_done, NULL) != 0)
    SOUK_WARN("market", "cannot load saved prices");
  market_player_seen_reset();
  metrics_init(ctx->metrics);
  market_settings_watch();
  market_g.started = true;
  SOUK_INFO("market", "market started: new guilds trade on %s prices%s", market_source_name(src),
            market_g.any_provider ? "" : " (no provider configured)");
  return 0;
}

static void market_shutdown(const souk_module_ctx_t *ctx) {
  market_g.started = false;
  ctx->metrics->remove_collector(market_collect, NULL);
  market_pc_t *pc = market_g.pc;
  if (pc) {
    int rc = market_pc_flush_sync(pc);
    if (rc) SOUK_WARN("market", "saving the price cache failed: %s", souk_strerror(rc));
    /* A waiter answered while the chain is freed may look another symbol
     * up: that must not reach the chain being freed. */
    market_pc_detach_fetch(pc);
  }
  /* Lookups waiting for Redis are answered now; then the chain: its
   * cancelled lookups answer the cache's waiters (through the shared
   * layer, still there). */
  market_sq_cancel(market_g.sq);
  market_chain_free(market_g.chain);
  market_g.chain = NULL;
  /* Out of reach before it goes: callbacks run by the free see no cache. */
  market_g.pc = NULL;
  market_pc_free(pc);
  market_sq_free(market_g.sq);
  market_g.sq = NULL;
  market_dashboard_flush();
}

const souk_module_t souk_market_module = {
    .check = market_check,
    .abi = SOUK_MODULE_ABI,
    .name = "market",
    .conf = market_conf_keys,
    .conf_data = &market_conf,
    .conf_checks = market_conf_checks,
    .commands = market_commands,
    .components = market_components,
    .aliases = market_aliases,
    .tasks = market_tasks,
    .settings = market_settings_table,
    .routes = market_dashboard_routes,
    .init = market_init,
    .shutdown = market_shutdown,
    .migrations = market_migrations,
    .data = market_data,
    .cli_started = market_cli,
};
