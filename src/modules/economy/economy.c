/* The economy module: coins behind versioned Terms of Service, and games.
 *
 * This file holds the module's config section, its command tables, start
 * and stop, the recovery task and the helpers the other files share.
 * Balances belong to a user across every guild (ledger.h); a guild can
 * turn the economy off for itself.  Every coin command names the "tos"
 * gate, which the core runs before the handler (tos.c). */
#include "economy_int.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/module.h"
#include "souk/settings.h"
#include "souk/store.h"
#include "souk/task.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

economy_conf_t economy_conf;
economy_state_t economy_g;

#define K(field) offsetof(economy_conf_t, field)
static const souk_conf_key_t economy_conf_keys[] = {
    {"welcome_bonus", SOUK_CONF_INT, K(welcome_bonus), "1000", 0, 1000000000, NULL, 0,
     "coins a user gets once, with their first acceptance of the Terms of Service"},
    {"daily.amount", SOUK_CONF_INT, K(daily_amount), "100", 1, 1000000000, NULL, SOUK_CONF_RUNTIME,
     "coins of /daily"},
    {"daily.cooldown", SOUK_CONF_DURATION, K(daily_cooldown_ms), "24h", 60000, 7 * 86400000LL, NULL,
     SOUK_CONF_RUNTIME, "time between two /daily claims of a user"},
    {"tos_file", SOUK_CONF_STRING, K(tos_file), NULL, 0, 1024, NULL, 0,
     "text file published as Terms of Service version 1 when the store has none (default: a "
     "built-in text)"},
    {"prompt_ttl", SOUK_CONF_DURATION, K(prompt_ttl_ms), "15m", 60000, 86400000, NULL, 0,
     "a command waiting for the user to accept the Terms of Service runs on acceptance within "
     "this time"},
    {"roulette.min_bet", SOUK_CONF_INT, K(min_bet), "1", 1, 1000000000000LL, NULL,
     SOUK_CONF_RUNTIME, "smallest roulette stake"},
    {"roulette.max_bet", SOUK_CONF_INT, K(max_bet), "100000", 1, 1000000000000LL, NULL,
     SOUK_CONF_RUNTIME, "largest roulette stake"},
    {"roulette.frames", SOUK_CONF_INT, K(spin_frames), "3", 0, 10, NULL, SOUK_CONF_RUNTIME,
     "edits of the spin message before the result"},
    {"roulette.frame_interval", SOUK_CONF_DURATION, K(spin_interval_ms), "1s", 1000, 10000, NULL,
     SOUK_CONF_RUNTIME, "time between those edits (Discord allows about one a second)"},
    {"roulette.seed", SOUK_CONF_INT, K(seed), "0", 0, 0, NULL, 0,
     "0: spins use the OS's randomness; another value: a fixed sequence (tests only)"},
    {"poll.edit_interval", SOUK_CONF_DURATION, K(poll_interval_ms), "1s", 1000, 60000, NULL,
     SOUK_CONF_RUNTIME, "least time between two edits of a poll's tally message"},
    {"recover_after", SOUK_CONF_DURATION, K(recover_after_ms), "2m", 10000, 86400000, NULL, 0,
     "a bet still pending this long after it was placed (the process died mid-spin) is settled"},
    {0},
};
#undef K

/* ---- helpers ---------------------------------------------------------- */

const char *economy_fmt(int64_t coins, char *buf) {
  char digits[24];
  uint64_t v = coins < 0 ? (uint64_t)0 - (uint64_t)coins : (uint64_t)coins;
  int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
  size_t o = 0;
  if (coins < 0) buf[o++] = '-';
  for (int i = 0; i < n; i++) {
    if (i && (n - i) % 3 == 0) buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
  return buf;
}

void economy_fmt_wait(int64_t ms, char *buf, size_t cap) {
  int64_t s = (ms + 999) / 1000;
  if (s >= 3600)
    snprintf(buf, cap, "%" PRId64 " h %" PRId64 " min", s / 3600, s / 60 % 60);
  else if (s >= 60)
    snprintf(buf, cap, "%" PRId64 " min %" PRId64 " s", s / 60, s % 60);
  else
    snprintf(buf, cap, "%" PRId64 " s", s);
}

void economy_store_error(souk_cmd_ctx_t *ctx, int status) {
  souk_cmd_errorf(ctx,
                  "The coin records are not available right now (%s); nothing changed. Try "
                  "again in a moment.",
                  souk_strerror(status));
}

int economy_run(souk_cmd_ctx_t *ctx, souk_store_tx_cb fn, souk_store_done_cb done, void *ud,
                bool write) {
  souk_store_t *st = economy_g.store;
  int rc = !st || !economy_g.started ? SOUK_ENOTSUP
           : write                   ? souk_store_tx_async(st, fn, done, ud)
                                     : souk_store_read_async(st, fn, done, ud);
  if (rc) economy_store_error(ctx, rc);
  return rc;
}

bool economy_enabled(uint64_t guild_id) {
  return guild_id == 0 || souk_setting_int(guild_id, "economy.enabled") != 0;
}

uint64_t economy_rng(void *ud) {
  (void)ud;
  if (!economy_conf.seed) return roulette_rng_os(NULL);
  /* splitmix64: a fixed, well-mixed sequence from the configured seed. */
  uint64_t z = (economy_g.rng += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

/* ---- the recovery task --------------------------------------------------- */

typedef struct recover_job {
  souk_task_ctx_t *task;
  int64_t settled, version, pruned;
} recover_job_t;

static int recover_tx(souk_db_t *db, void *ud) {
  recover_job_t *j = ud;
  j->settled = j->version = j->pruned = 0;
  int64_t now = (int64_t)souk_unix_ms();
  int rc = economy_bets_recover(db, now - economy_conf.recover_after_ms, now, 64, &j->settled);
  if (rc == 0) rc = economy_tos_current(db, &j->version, NULL, NULL);
  if (rc == SOUK_ENOTFOUND) rc = 0;
  /* Commands that waited for an acceptance that never came. */
  if (rc == 0)
    rc = souk_db_runf(db, &j->pruned, "DELETE FROM kv WHERE namespace = ? AND updated_at < ?", "si",
                      "economy.pending", now - economy_conf.prompt_ttl_ms);
  return rc;
}

static void recover_done(void *ud, int status) {
  recover_job_t *j = ud;
  if (status == 0) {
    if (j->settled)
      SOUK_INFO("economy", "settled %" PRId64 " bet(s) an interrupted spin left pending",
                j->settled);
    /* Another process may have published a version. */
    if (j->version > economy_g.tos_version) {
      economy_g.tos_version = j->version;
      economy_tos_forget_all();
    }
  }
  souk_task_done(j->task, status);
  souk_free(j);
}

static void recover_run(souk_task_ctx_t *t) {
  souk_store_t *st = economy_g.store;
  if (!st || !economy_g.started) {
    souk_task_done(t, 0);
    return;
  }
  recover_job_t *j = souk_calloc(1, sizeof *j);
  j->task = t;
  int rc = souk_store_tx_async(st, recover_tx, recover_done, j);
  if (rc) {
    souk_free(j);
    souk_task_done(t, rc);
  }
}

static struct souk_task economy_tasks[] = {
    {.name = "economy.recover",
     .period_ms = 60000, /* set from economy.recover_after at init */
     .jitter_ms = 5000,
     .budget_ms = 10000,
     .handler = recover_run,
     .flags = SOUK_TASK_RUN_AT_START,
     /* The spins are in the shared store: one process settles them. */
     .scope = SOUK_TASK_SCOPE_CLUSTER},
    {0},
};

/* ---- start and stop ---------------------------------------------------------- */

static int register_data(void) {
  static const char *const user_tables[] = {
      "economy_balances", "economy_audit", "economy_tos_accept", "economy_bonus",
      "economy_daily",    "economy_bets",  "economy_poll_votes"};
  for (size_t i = 0; i < sizeof user_tables / sizeof *user_tables; i++) {
    int rc = souk_store_register_data(user_tables[i], "user_id", NULL);
    if (rc) return rc;
  }
  return souk_store_register_data("economy_polls", "creator_id", "guild_id");
}

static int economy_init(const souk_module_ctx_t *ctx) {
  memset(&economy_g, 0, sizeof economy_g);
  economy_g.store = ctx->store;
  economy_g.rng = (uint64_t)economy_conf.seed;
  if (economy_conf.min_bet > economy_conf.max_bet) {
    SOUK_ERROR("economy", "economy.roulette.min_bet (%" PRId64 ") is above max_bet (%" PRId64 ")",
               economy_conf.min_bet, economy_conf.max_bet);
    return SOUK_ECONFIG;
  }
  /* Look for interrupted spins twice per economy.recover_after, so one
   * is settled at most one and a half times that after it was placed. */
  int64_t period = economy_conf.recover_after_ms / 2;
  economy_tasks[0].period_ms = (uint64_t)(period < 5000 ? 5000 : period > 60000 ? 60000 : period);
  int rc = souk_cmd_gate_register("tos", economy_tos_gate, NULL);
  if (rc) {
    SOUK_ERROR("economy", "cannot register the tos gate: %s", souk_strerror(rc));
    return rc;
  }
  souk_store_t *st = economy_g.store;
  if (st) {
    rc = economy_tos_start(st);
    if (rc) return rc;
    rc = register_data();
    if (rc)
      SOUK_WARN("economy", "cannot register economy data for forget-user: %s", souk_strerror(rc));
  } else {
    SOUK_WARN("economy", "no store in this process: coin commands will refuse");
  }
  economy_g.started = st != NULL;
  return 0;
}

static void economy_shutdown(const souk_module_ctx_t *ctx) {
  economy_g.started = false;
  economy_games_stop();
  economy_tos_forget_all();
}

static int economy_check(bool online, souk_buf_t *out) {
  char a[ECONOMY_FMT_MAX], b[ECONOMY_FMT_MAX], w[32];
  economy_fmt_wait(economy_conf.daily_cooldown_ms, w, sizeof w);
  souk_buf_printf(out, "economy: welcome bonus %s coins, daily %s coins every %s\n",
                  economy_fmt(economy_conf.welcome_bonus, a),
                  economy_fmt(economy_conf.daily_amount, b), w);
  souk_buf_printf(out, "economy: roulette stakes %s to %s coins%s\n",
                  economy_fmt(economy_conf.min_bet, a), economy_fmt(economy_conf.max_bet, b),
                  economy_conf.seed ? " (FIXED random sequence: tests only)" : "");
  if (economy_conf.tos_file)
    souk_buf_printf(out, "economy: Terms of Service v1 from %s\n", economy_conf.tos_file);
  if (economy_conf.min_bet > economy_conf.max_bet) {
    souk_buf_puts(out, "economy: roulette.min_bet is above roulette.max_bet\n");
    return SOUK_ECONFIG;
  }
  return 0;
}

/* ---- tables -------------------------------------------------------------------- */

static const souk_cmd_option_t opt_user_opt[] = {
    {.name = "user", .description = "Whose balance (default: yours)", .type = SOUK_OPT_USER},
    {0},
};
static const souk_cmd_option_t opt_pay[] = {
    {.name = "user", .description = "Who gets the coins", .type = SOUK_OPT_USER, .required = true},
    {.name = "amount",
     .description = "How many coins",
     .type = SOUK_OPT_INTEGER,
     .required = true,
     SOUK_OPT_INT_RANGE(1, 1000000000000000LL)},
    {0},
};
static const souk_cmd_option_t opt_page[] = {
    {.name = "page",
     .description = "Page (10 per page)",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(1, 100000)},
    {0},
};
static const souk_cmd_option_t opt_adjust[] = {
    {.name = "user", .description = "Whose balance", .type = SOUK_OPT_USER, .required = true},
    {.name = "amount",
     .description = "How many coins",
     .type = SOUK_OPT_INTEGER,
     .required = true,
     SOUK_OPT_INT_RANGE(1, 1000000000000000LL)},
    {.name = "reason",
     .description = "Why (kept in the audit trail)",
     .type = SOUK_OPT_STRING,
     .required = true,
     .min_length = 1,
     .max_length = 200},
    {0},
};
static const souk_cmd_option_t opt_publish[] = {
    {.name = "text",
     .description = "The new terms (leave out to open a form)",
     .type = SOUK_OPT_STRING,
     .max_length = 6000},
    {.name = "file",
     .description = "A text file on the bot's host with the new terms",
     .type = SOUK_OPT_STRING,
     .max_length = 1024},
    {0},
};
static const souk_cmd_option_t opt_roulette[] = {
    {.name = "bet",
     .description = "red, black, odd, even, low, high, 0-36, dozen 2, column 1, split 17-18...",
     .type = SOUK_OPT_STRING,
     .required = true,
     .max_length = 40},
    {.name = "amount",
     .description = "Coins to stake",
     .type = SOUK_OPT_INTEGER,
     .required = true,
     SOUK_OPT_INT_RANGE(1, 1000000000000LL)},
    {0},
};
static const souk_cmd_option_t opt_poll[] = {
    {.name = "question",
     .description = "What to ask",
     .type = SOUK_OPT_STRING,
     .required = true,
     .max_length = 200},
    {.name = "options",
     .description = "2 to 10 answers separated by | (Tea | Coffee | Neither)",
     .type = SOUK_OPT_STRING,
     .required = true,
     .max_length = 700},
    {0},
};

static const souk_command_t coins_subs[] = {
    {.name = "leaderboard",
     .description = "The richest users, 10 per page",
     .options = opt_page,
     .handler = economy_cmd_leaderboard,
     .gate = "tos"},
    {.name = "grant",
     .description = "Give a user coins, with a reason (bot owners)",
     .options = opt_adjust,
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = economy_cmd_grant},
    {.name = "take",
     .description = "Take coins from a user, with a reason (bot owners)",
     .options = opt_adjust,
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = economy_cmd_take},
    {.name = "audit",
     .description = "Check that no coin was created or lost (bot owners)",
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = economy_cmd_audit},
    {.name = "publish-tos",
     .description = "Publish a new version of the Terms of Service (bot owners)",
     .options = opt_publish,
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = economy_cmd_tos_publish},
    {0},
};

static const char *const balance_ex[] = {"/balance", "/balance user:@someone", NULL};
static const char *const pay_ex[] = {"/pay user:@someone amount:50", NULL};
static const char *const coins_ex[] = {"/coins leaderboard", "/coins leaderboard page:2",
                                       "/coins grant user:@someone amount:500 reason:event prize",
                                       NULL};
static const char *const roulette_ex[] = {"/roulette bet:red amount:100",
                                          "/roulette bet:17 amount:10",
                                          "/roulette bet:split 17-18 amount:20", NULL};
static const char *const poll_ex[] = {"/poll question:Lunch? options:Pizza | Sushi | Salad", NULL};

static const souk_command_t economy_commands[] = {
    {.name = "balance",
     .description = "Your coins, or someone else's",
     .category = "Economy",
     .usage = balance_ex,
     .options = opt_user_opt,
     .handler = economy_cmd_balance,
     .gate = "tos"},
    {.name = "daily",
     .description = "Claim your daily coins",
     .category = "Economy",
     .handler = economy_cmd_daily,
     .gate = "tos"},
    {.name = "pay",
     .description = "Give some of your coins to someone",
     .category = "Economy",
     .usage = pay_ex,
     .options = opt_pay,
     .handler = economy_cmd_pay,
     .gate = "tos"},
    {.name = "coins",
     .description = "The coin leaderboard, and the owners' tools",
     .category = "Economy",
     .usage = coins_ex,
     .subcommands = coins_subs},
    {.name = "tos",
     .description = "The Terms of Service of the economy, to read and accept",
     .category = "Economy",
     .handler = economy_cmd_tos},
    {.name = "tosinfo",
     .description = "Which version of the Terms of Service you accepted, and when",
     .category = "Economy",
     .handler = economy_cmd_tosinfo},
    {.name = "roulette",
     .description = "European roulette: stake coins on a bet, then spin",
     .category = "Games",
     .usage = roulette_ex,
     .options = opt_roulette,
     .handler = economy_cmd_roulette,
     .gate = "tos"},
    {.name = "poll",
     .description = "Ask a question; everyone votes with buttons and can change their vote",
     .category = "Games",
     .usage = poll_ex,
     .options = opt_poll,
     .flags = SOUK_CMD_GUILD_ONLY,
     .handler = economy_cmd_poll},
    {0},
};

static const souk_cmd_component_t economy_components[] = {
    {ECONOMY_LB_PREFIX, economy_press_leaderboard}, {ECONOMY_TOS_PREFIX, economy_press_tos},
    {ECONOMY_TOS_MODAL, economy_modal_tos},         {ECONOMY_SPIN_PREFIX, economy_press_spin},
    {ECONOMY_POLL_PREFIX, economy_press_poll},      {0},
};

static const souk_setting_t economy_settings[] = {
    {.key = "economy.enabled",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_BOOL,
     .def = "true",
     .label = "Economy",
     .description = "Coin commands and coin games work in this server (balances stay either way).",
     .step = "economy"},
    {0},
};

const souk_module_t souk_economy_module = {
    .abi = SOUK_MODULE_ABI,
    .name = "economy",
    .conf = economy_conf_keys,
    .conf_data = &economy_conf,
    .commands = economy_commands,
    .components = economy_components,
    .tasks = economy_tasks,
    .init = economy_init,
    .shutdown = economy_shutdown,
    .check = economy_check,
    .settings = economy_settings,
};
