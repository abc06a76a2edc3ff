/* /market settings, set, dashboard and season-reset (with its
 * confirmation button), and the market's guild settings in the settings
 * registry: a guild's game, as its admins see and change it. */
#include "cmd_int.h"
#include "fmt.h"
#include "money.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/settings.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Every job of this file owns nothing but itself. */
static void job_free(market_job_t *j) { souk_free(j); }

/* /market dashboard: make the guild's pages public or private. */
typedef struct dash_job {
  market_job_t base;
  bool public;
} dash_job_t;

/* /market set: what to change. */
typedef struct set_job {
  market_job_t base;
  bool set_cash, set_comm, set_hours;
  int64_t cash, comm;
  market_hours_t hours;
} set_job_t;

/* /market season-reset: asked, then confirmed by the button. */
typedef struct reset_job {
  market_job_t base;
  market_source_t new_source;
  int64_t tag_season; /* the season the button was made for */
  int64_t new_season;
  bool already; /* someone else reset that season first */
} reset_job_t;

/* ---- /market settings ------------------------------------------------- */

static void settings_done(void *ud, int status) {
  market_job_t *j = ud;
  if (market_job_failed(j, status)) return;
  char cash[MARKET_FMT_MAX], comm[MARKET_FMT_MAX], since[40], prov[160], season[32];
  market_fmt_cents(j->set.start_cash_cents, cash, sizeof cash);
  market_fmt_cents(j->set.commission_cents, comm, sizeof comm);
  market_fmt_utc(j->set.season_started_at, since, sizeof since);
  snprintf(season, sizeof season, "%" PRId64, j->set.season);
  size_t n = 0;
  prov[0] = '\0';
  for (int p = 0; p < MARKET_PROV_COUNT; p++) {
    if (market_g.chain && market_chain_enabled(market_g.chain, (market_provider_id_t)p))
      n += (size_t)snprintf(prov + n, sizeof prov - n, "%s%s", n ? ", " : "",
                            market_provider_name((market_provider_id_t)p));
  }
  if (!n) snprintf(prov, sizeof prov, "none (simulated market only)");
  const char *src = j->set.source == MARKET_SRC_SIM ? "simulated market" : "live prices";
  souk_embed_field_t f[] = {
      {"Season", season, true},
      {"Since", j->set.stored ? since : "not started yet", true},
      {"Price source", src, true},
      {"Starting cash", cash, true},
      {"Commission", comm, true},
      {"Trading hours",
       j->set.hours == MARKET_HOURS_OPEN_ONLY ? "only while the NYSE is open"
                                              : "any time, at the last price",
       true},
      {"Dashboard", j->set.dashboard_public ? "public" : "private", true},
      {"Providers", prov, false},
  };
  souk_embed_t e = {.title = "Market settings",
                    .color = MARKET_COLOR_INFO,
                    .fields = f,
                    .nfields = 8,
                    .footer = j->set.source == MARKET_SRC_SIM ? MARKET_SIM_FOOTER : NULL};
  souk_msg_t m = {.embeds = &e, .nembeds = 1};
  souk_cmd_reply(j->ctx, &m);
  job_free(j);
}

void market_cmd_settings(souk_cmd_ctx_t *ctx) {
  if (!market_need_store(ctx)) return;
  market_job_t *j = souk_calloc(1, sizeof *j);
  market_job_init(j, ctx, job_free);
  market_job_run(j, market_job_settings_tx, settings_done, false);
}

/* ---- /market dashboard ------------------------------------------------ */

static int dashboard_tx(souk_db_t *db, void *ud) {
  dash_job_t *j = ud;
  int64_t now = (int64_t)souk_unix_ms();
  int rc = market_settings_ensure(db, j->base.guild, &j->base.defaults, now, &j->base.set);
  if (rc) return rc;
  j->base.set.dashboard_public = j->public;
  return market_settings_set(db, &j->base.set, now);
}

static void dashboard_done(void *ud, int status) {
  dash_job_t *j = ud;
  if (market_job_failed(&j->base, status)) return;
  if (j->public)
    souk_cmd_replyf(j->base.ctx,
                    "This server's market dashboard is now public: /market/%" PRId64
                    " on the bot's web server.",
                    j->base.guild);
  else
    souk_cmd_replyf(j->base.ctx, "This server's market dashboard is now private.");
  job_free(&j->base);
}

void market_cmd_dashboard(souk_cmd_ctx_t *ctx) {
  const char *state = souk_cmd_arg_str(ctx->args, "state", "");
  bool on = strcmp(state, "on") == 0;
  if (!on && strcmp(state, "off") != 0) {
    souk_cmd_replyf(ctx, "`state` must be `on` or `off`.");
    return;
  }
  if (!market_need_store(ctx)) return;
  dash_job_t *j = souk_calloc(1, sizeof *j);
  market_job_init(&j->base, ctx, job_free);
  j->public = on;
  market_job_run(&j->base, dashboard_tx, dashboard_done, true);
}

/* ---- /market set: starting cash, commission and hours -------------------- */

static int set_tx(souk_db_t *db, void *ud) {
  set_job_t *j = ud;
  int64_t now = (int64_t)souk_unix_ms();
  int rc = market_settings_ensure(db, j->base.guild, &j->base.defaults, now, &j->base.set);
  if (rc) return rc;
  if (j->set_cash) j->base.set.start_cash_cents = j->cash;
  if (j->set_comm) j->base.set.commission_cents = j->comm;
  if (j->set_hours) j->base.set.hours = j->hours;
  return market_settings_set(db, &j->base.set, now);
}

/* The settings registry mirrors this guild's starting cash and
 * commission (market_settings_watch), so /settings and /setup show and
 * change them. */
static void settings_mirror(const set_job_t *j) {
  char v[48], err[160];
  if (j->set_cash) {
    snprintf(v, sizeof v, "%" PRId64 ".%02" PRId64, j->base.set.start_cash_cents / 100,
             j->base.set.start_cash_cents % 100);
    souk_setting_set((uint64_t)j->base.guild, "market.start_cash", v, (uint64_t)j->base.user, err,
                     sizeof err);
  }
  if (j->set_comm) {
    snprintf(v, sizeof v, "%" PRId64 ".%02" PRId64, j->base.set.commission_cents / 100,
             j->base.set.commission_cents % 100);
    souk_setting_set((uint64_t)j->base.guild, "market.commission", v, (uint64_t)j->base.user, err,
                     sizeof err);
  }
}

static void set_done(void *ud, int status) {
  set_job_t *j = ud;
  if (!j->base.ctx) {
    /* A change made through the settings registry. */
    if (status)
      SOUK_WARN("market", "guild %" PRId64 ": the market settings could not be saved: %s",
                j->base.guild, souk_strerror(status));
    job_free(&j->base);
    return;
  }
  if (market_job_failed(&j->base, status)) return;
  settings_mirror(j);
  char cash[MARKET_FMT_MAX], comm[MARKET_FMT_MAX];
  souk_cmd_replyf(j->base.ctx,
                  "Market settings saved: starting cash %s (for accounts opened from now on), "
                  "commission %s per trade, trading %s.",
                  market_fmt_cents(j->base.set.start_cash_cents, cash, sizeof cash),
                  market_fmt_cents(j->base.set.commission_cents, comm, sizeof comm),
                  j->base.set.hours == MARKET_HOURS_OPEN_ONLY ? "only while the NYSE is open"
                                                              : "any time at the last price");
  job_free(&j->base);
}

void market_cmd_set(souk_cmd_ctx_t *ctx) {
  const char *cash = souk_cmd_arg_str(ctx->args, "start_cash", NULL);
  const char *comm = souk_cmd_arg_str(ctx->args, "commission", NULL);
  const char *hours = souk_cmd_arg_str(ctx->args, "hours", NULL);
  if (!cash && !comm && !hours) {
    souk_cmd_replyf(ctx, "Give at least one of start_cash, commission or hours.");
    return;
  }
  int64_t cash_c = 0, comm_c = 0;
  if (cash && !market_amount_arg(ctx, "start_cash", cash, 0, INT64_C(100000000000000),
                                 "$1,000,000 or 2500.50", &cash_c))
    return;
  if (comm && !market_amount_arg(ctx, "commission", comm, 0, 100000000, "1.50 or $0", &comm_c))
    return;
  if (hours && strcmp(hours, "open_only") != 0 && strcmp(hours, "last_price") != 0) {
    souk_cmd_replyf(ctx, "`hours` must be `open_only` or `last_price`.");
    return;
  }
  if (!market_need_store(ctx)) return;
  set_job_t *j = souk_calloc(1, sizeof *j);
  market_job_init(&j->base, ctx, job_free);
  j->set_cash = cash != NULL;
  j->cash = cash_c;
  j->set_comm = comm != NULL;
  j->comm = comm_c;
  j->set_hours = hours != NULL;
  j->hours =
      hours && strcmp(hours, "open_only") == 0 ? MARKET_HOURS_OPEN_ONLY : MARKET_HOURS_LAST_PRICE;
  market_job_run(&j->base, set_tx, set_done, true);
}

/* ---- the market's guild settings ---------------------------------------- */

/* market.start_cash or market.commission changed through /settings or
 * /setup (or in another process): write it to this guild's game, as
 * /market set does.  The values read back equal to what is stored are
 * written again, which changes nothing. */
static void market_setting_changed(uint64_t guild, const souk_setting_t *s, void *ud) {
  (void)ud;
  souk_store_t *st = market_g.store;
  if (!st || !market_g.started || !guild) return;
  set_job_t *j = souk_calloc(1, sizeof *j);
  j->base.guild = (int64_t)guild;
  j->base.defaults = market_g.defaults;
  j->base.defaults.guild_id = j->base.guild;
  j->base.free = job_free;
  if (strcmp(s->key, "market.start_cash") == 0) {
    j->set_cash = true;
    j->cash = souk_setting_int(guild, s->key);
  } else {
    j->set_comm = true;
    j->comm = souk_setting_int(guild, s->key);
  }
  if (souk_store_tx_async(st, set_tx, set_done, j) != 0) job_free(&j->base);
}

void market_settings_watch(void) {
  static const char *const keys[] = {"market.start_cash", "market.commission"};
  for (size_t i = 0; i < 2; i++) {
    int rc = souk_setting_watch(keys[i], market_setting_changed, NULL);
    if (rc) SOUK_WARN("market", "cannot watch %s: %s", keys[i], souk_strerror(rc));
  }
}

static const char *const source_setting_choices[] = {"auto", "sim", "live", NULL};

const souk_setting_t market_settings_table[] = {
    {.key = "market.start_cash",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_MONEY,
     .decimals = 2,
     .min = 0,
     .max = INT64_C(100000000000000),
     .config_key = "market.start_cash",
     .label = "Starting cash",
     .description = "Cash of a Market Sim account opened in this server from now on, in dollars.",
     .step = "market"},
    {.key = "market.commission",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_MONEY,
     .def = "0",
     .decimals = 2,
     .min = 0,
     .max = 100000000,
     .label = "Commission per trade",
     .description = "Dollars taken from every Market Sim trade in this server.",
     .step = "market"},
    {.key = "market.source",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_ENUM,
     .choices = source_setting_choices,
     .config_key = "market.source",
     .def = "auto",
     .label = "Price source of the next season",
     .description = "Where prices come from after the next /market season-reset: auto (live when "
                    "a provider is configured), sim or live.",
     .step = "market"},
    {0},
};

/* ---- /market season-reset, and its confirmation button ------------------ */

static void reset_ask_done(void *ud, int status) {
  reset_job_t *j = ud;
  if (market_job_failed(&j->base, status)) return;
  char st[48], id[SOUK_CMD_CUSTOM_ID_MAX + 1];
  snprintf(st, sizeof st, "%" PRId64 ":%s", j->base.set.season, market_source_name(j->new_source));
  souk_cmd_custom_id(id, sizeof id, MARKET_RESET_PREFIX, st);
  char text[400];
  snprintf(text, sizeof text,
           "Start season %" PRId64 " on %s? Every account starts again from the starting cash; "
           "season %" PRId64 "'s trades stay in the history. Press the button to confirm.",
           j->base.set.season + 1,
           j->new_source == MARKET_SRC_SIM ? "the simulated market" : "live prices",
           j->base.set.season);
  souk_component_t c[1] = {
      {.custom_id = id, .label = "Start a new season", .style = SOUK_BUTTON_DANGER}};
  souk_msg_t m = {.content = text, .components = c, .ncomponents = 1, .ephemeral = true};
  souk_cmd_reply(j->base.ctx, &m);
  job_free(&j->base);
}

static bool parse_source(const char *s, market_source_t *out) {
  if (strcmp(s, "sim") == 0)
    *out = MARKET_SRC_SIM;
  else if (strcmp(s, "live") == 0)
    *out = MARKET_SRC_LIVE;
  else
    return false;
  return true;
}

void market_cmd_season_reset(souk_cmd_ctx_t *ctx) {
  const char *s = souk_cmd_arg_str(ctx->args, "source", NULL);
  market_source_t src = market_g.defaults.source;
  /* No source given: the guild's market.source setting, if it names one. */
  const char *setting = souk_setting_str(ctx->guild_id, "market.source");
  if (!s && (strcmp(setting, "sim") == 0 || strcmp(setting, "live") == 0)) s = setting;
  if (s && !parse_source(s, &src)) {
    souk_cmd_replyf(ctx, "`source` must be `sim` or `live`.");
    return;
  }
  if (src == MARKET_SRC_LIVE && !market_g.any_provider) {
    souk_cmd_replyf(ctx, "A live season needs a price provider, and none is configured; "
                         "use source:sim.");
    return;
  }
  if (!market_need_store(ctx)) return;
  reset_job_t *j = souk_calloc(1, sizeof *j);
  market_job_init(&j->base, ctx, job_free);
  j->new_source = src;
  market_job_run(&j->base, market_job_settings_tx, reset_ask_done, false);
}

static int reset_tx(souk_db_t *db, void *ud) {
  reset_job_t *j = ud;
  j->already = false;
  int rc = market_settings_get(db, j->base.guild, &j->base.defaults, &j->base.set);
  if (rc) return rc;
  if (j->base.set.season != j->tag_season) {
    j->already = true; /* reset by someone else */
    return 0;
  }
  return market_season_reset(db, j->base.guild, &j->base.defaults, j->new_source,
                             (int64_t)souk_unix_ms(), &j->new_season);
}

static void reset_done(void *ud, int status) {
  reset_job_t *j = ud;
  if (market_job_failed(&j->base, status)) return;
  if (j->already)
    souk_cmd_replyf(j->base.ctx,
                    "Season %" PRId64 " already ended; this server is in season %" PRId64
                    " now. Nothing changed.",
                    j->tag_season, j->base.set.season);
  else {
    SOUK_INFO("market", "guild %" PRId64 " started season %" PRId64 " (%s) by user %" PRId64,
              j->base.guild, j->new_season, market_source_name(j->new_source), j->base.user);
    souk_cmd_replyf(j->base.ctx,
                    "Season %" PRId64 " has started on %s. Everyone starts again with "
                    "the starting cash at their first trade.",
                    j->new_season,
                    j->new_source == MARKET_SRC_SIM ? "the simulated market" : "live prices");
  }
  job_free(&j->base);
}

void market_press_season_reset(souk_cmd_ctx_t *ctx) {
  if (ctx->guild_id == 0 ||
      !(ctx->permissions & (SOUK_PERM_MANAGE_GUILD | SOUK_PERM_ADMINISTRATOR))) {
    souk_cmd_replyf(ctx, "You need the Manage Server permission to reset the season.");
    return;
  }
  long long season = 0;
  char src[8] = "";
  int used = 0;
  market_source_t s;
  if (!ctx->state || sscanf(ctx->state, "%lld:%7[a-z]%n", &season, src, &used) != 2 ||
      ctx->state[used] != '\0' || season < 1 || !parse_source(src, &s)) {
    souk_cmd_replyf(ctx, "This button is no longer valid; run /market season-reset again.");
    return;
  }
  if (!market_need_store(ctx)) return;
  reset_job_t *j = souk_calloc(1, sizeof *j);
  market_job_init(&j->base, ctx, job_free);
  j->tag_season = season;
  j->new_source = s;
  market_job_run(&j->base, reset_tx, reset_done, true);
}
