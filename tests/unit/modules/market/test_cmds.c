/* The market's commands, through the module registry and the command
 * runner, on the simulated market and a throwaway SQLite store: trades
 * and their refusals, a redelivered trade applied once, portfolio,
 * history, prices, quotes, the symbol autocomplete, the leaderboard and
 * its buttons, the guild's settings, the dashboard switch, a season
 * reset through its confirmation button, and the owners' commands. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
/* clang-format on */

#include "../modtest.h"
#include "modules/market/market_int.h"
#include "souk/log.h"

extern const souk_module_t souk_market_module;

/* Every module the market needs: itself. */
static const souk_module_t *const mods[] = {&souk_market_module, NULL};

/* The simulated market with a fixed seed, no provider. */
static const char *const yaml = "market:\n  source: sim\n  sim:\n    seed: 7\n"
                                "  start_cash: \"$10,000\"\n";

static modtest_t T;

static int setup(void **state) {
  modtest_start(&T, mods, yaml);
  return 0;
}

static int teardown(void **state) {
  modtest_stop(&T);
  return 0;
}

#define has(text, want)   assert_non_null(strstr((text), (want)))
#define hasnt(text, what) assert_null(strstr((text), (what)))

static void test_buy_sell_and_portfolio(void **state) {
  const char *r = modtest_cmd(&T, "/buy symbol:AAPL shares:3", &MODTEST_MEMBER);
  has(r, "Bought 3 AAPL");
  has(r, "Cash after: ");
  has(r, "Now holding: 3 shares");
  has(r, "simulated market");
  r = modtest_cmd(&T, "/portfolio", &MODTEST_MEMBER);
  has(r, "Your portfolio (season 1)");
  has(r, "AAPL: 3 @ avg");
  has(r, "Started with: $10,000.00");
  r = modtest_cmd(&T, "/sell symbol:aapl all:true", &MODTEST_MEMBER);
  has(r, "Sold 3 AAPL");
  has(r, "Realised P/L: ");
  r = modtest_cmd(&T, "/sell symbol:AAPL shares:1", &MODTEST_MEMBER);
  has(r, "You cannot sell 1 AAPL");
  r = modtest_cmd(&T, "/portfolio", &MODTEST_MEMBER);
  has(r, "No holdings yet");
  /* Another member's portfolio, and one who never traded. */
  r = modtest_cmd(&T, "/portfolio user:<@300000000000000003>", &MODTEST_OWNER_WHO);
  has(r, "Portfolio of **member**");
  r = modtest_cmd(&T, "/portfolio", &MODTEST_OWNER_WHO);
  has(r, "You have no account in this season yet");
  has(r, "$10,000.00");
}

static void test_refusals(void **state) {
  const char *r = modtest_cmd(&T, "/buy symbol:!!! shares:1", &MODTEST_MEMBER);
  has(r, "is not a stock symbol");
  r = modtest_cmd(&T, "/buy symbol:AAPL", &MODTEST_MEMBER);
  has(r, "Say how much with exactly one of shares:<n>, amount:<dollars>.");
  r = modtest_cmd(&T, "/sell symbol:AAPL shares:1 all:true", &MODTEST_MEMBER);
  has(r, "or all:true");
  r = modtest_cmd(&T, "/buy symbol:AAPL amount:lots", &MODTEST_MEMBER);
  has(r, "`lots` is not a dollar amount: `amount` takes digits with at most two decimals, a $ "
         "and commas between thousands if you like, such as 1500, $1,500 or 99.95.");
  /* Each mistake says what is wrong and what is accepted. */
  r = modtest_cmd(&T, "/buy symbol:AAPL amount:$0", &MODTEST_MEMBER);
  has(r, "`$0` is too small: `amount` must be more than $0.00, such as 1500, $1,500 or 99.95.");
  r = modtest_cmd(&T, "/buy symbol:AAPL amount:-5", &MODTEST_MEMBER);
  has(r, "`-5` is negative: `amount` must be more than $0.00");
  r = modtest_cmd(&T, "/buy symbol:AAPL amount:99999999999999999999", &MODTEST_MEMBER);
  has(r, "`99999999999999999999` is too large: `amount` must be at most "
         "$92,233,720,368,547,758.07.");
  r = modtest_cmd(&T, "/buy symbol:`x` shares:1", &MODTEST_MEMBER);
  has(r, "`'x'` is not a stock symbol: a symbol starts with a letter and has up to 15 letters, "
         "digits, '.' or '-', like AAPL or BRK.B.");
  r = modtest_cmd(&T, "/market set start_cash:$2,000,000,000,000", &MODTEST_OWNER_WHO);
  has(r, "`$2,000,000,000,000` is too large: `start_cash` must be at most "
         "$1,000,000,000,000.00.");
  r = modtest_cmd(&T, "/market set commission:-1", &MODTEST_OWNER_WHO);
  has(r, "`-1` is negative: `commission` must be from $0.00 to $1,000,000.00");
  r = modtest_cmd(&T, "/buy symbol:AAPL shares:1000000000", &MODTEST_MEMBER);
  has(r, "Not enough cash: 1000000000 AAPL at");
  r = modtest_cmd(&T, "/buy symbol:NOPE shares:1", &MODTEST_MEMBER);
  has(r, "Unknown symbol NOPE: the simulated market does not list it");
  r = modtest_cmd(&T, "/buy symbol:AAPL amount:0.01", &MODTEST_MEMBER);
  has(r, "That amount does not buy a single share of AAPL");
  /* Nothing was traded by any of these. */
  r = modtest_cmd(&T, "/history", &MODTEST_MEMBER);
  has(r, "You have no trades in this season yet.");
}

/* A redelivered command (the same idempotency key) trades once. */
static void test_redelivery_applies_once(void **state) {
  const char *r = modtest_cmd_idem(&T, "/buy symbol:MSFT shares:2", &MODTEST_MEMBER, "ix:1");
  has(r, "Bought 2 MSFT");
  r = modtest_cmd_idem(&T, "/buy symbol:MSFT shares:2", &MODTEST_MEMBER, "ix:1");
  has(r, "Already done: Bought 2 MSFT");
  has(r, "nothing was traded again");
  r = modtest_cmd(&T, "/portfolio", &MODTEST_MEMBER);
  has(r, "MSFT: 2 @ avg");
  /* The same key for another trade is refused, never taken as done. */
  r = modtest_cmd_idem(&T, "/sell symbol:MSFT shares:1", &MODTEST_MEMBER, "ix:1");
  has(r, "already used for a different trade");
}

static void test_history(void **state) {
  modtest_cmd(&T, "/buy symbol:AAPL shares:1", &MODTEST_MEMBER);
  modtest_cmd(&T, "/sell symbol:AAPL shares:1", &MODTEST_MEMBER);
  const char *r = modtest_cmd(&T, "/history", &MODTEST_MEMBER);
  has(r, "Your trades, page 1");
  has(r, "BUY  1 AAPL @");
  has(r, "SELL 1 AAPL @");
  has(r, "(sim)");
  r = modtest_cmd(&T, "/history page:2", &MODTEST_MEMBER);
  has(r, "There is no page 2 of your trades.");
}

/* The number of decimals of the first "$..." amount after start. */
static int decimals_after(const char *text, const char *start) {
  const char *p = strstr(text, start);
  assert_non_null(p);
  p = strchr(p + strlen(start) - 1, '$');
  assert_non_null(p);
  const char *dot = strchr(p, '.');
  assert_non_null(dot);
  int n = 0;
  while (dot[1 + n] >= '0' && dot[1 + n] <= '9')
    n++;
  return n;
}

/* History rows for the member: n days from 2020-01-01 + first, values
 * from v0 up by step cents a day. */
typedef struct days_seed {
  int first, n;
  int64_t v0, step;
} days_seed_t;

static int days_fn(souk_db_t *db, void *ud) {
  const days_seed_t *d = ud;
  for (int i = 0; i < d->n; i++) {
    souk_stmt_t *s;
    int rc = souk_db_prepare(db,
                             "INSERT INTO market_history (guild_id, season, user_id, day, "
                             "value_cents, created_at) VALUES (?, 1, ?, ?, ?, 0)",
                             &s);
    if (rc) return rc;
    souk_stmt_bind_int64(s, 1, (int64_t)MODTEST_GUILD);
    souk_stmt_bind_int64(s, 2, (int64_t)MODTEST_MEMBER.user);
    souk_stmt_bind_int64(s, 3, 20200101 + d->first + i);
    souk_stmt_bind_int64(s, 4, d->v0 + d->step * i);
    rc = souk_stmt_step(s) < 0 ? SOUK_EIO : 0;
    souk_stmt_finalize(s);
    if (rc) return rc;
  }
  return 0;
}

/* /history shows the daily values the dashboard charts, as text. */
static void test_history_daily_values(void **state) {
  modtest_cmd(&T, "/buy symbol:AAPL shares:1", &MODTEST_MEMBER);
  const char *r = modtest_cmd(&T, "/history", &MODTEST_MEMBER);
  hasnt(r, "Your daily value");
  days_seed_t d = {0, 2, 1000000, 10000};
  assert_int_equal(souk_store_tx(T.store, days_fn, &d), 0);
  r = modtest_cmd(&T, "/history", &MODTEST_MEMBER);
  has(r, "Your trades, page 1");
  has(r, "Your daily value, season 1\n2020-01-02  $10,100.00  (+1.00%)\n2020-01-01  $10,000.00\n");
  has(r, "2 daily snapshots from 2020-01-01 to 2020-01-02; high $10,100.00 on 2020-01-02, low "
         "$10,000.00 on 2020-01-01. The dashboard charts them.");
  /* Later pages are trades only. */
  r = modtest_cmd(&T, "/history page:2", &MODTEST_MEMBER);
  has(r, "There is no page 2 of your trades.");
  /* Many days: the latest 14 are listed, the summary covers them all. */
  days_seed_t more = {2, 18, 900000, 1000};
  assert_int_equal(souk_store_tx(T.store, days_fn, &more), 0);
  r = modtest_cmd(&T, "/history", &MODTEST_MEMBER);
  has(r, "2020-01-20  $9,170.00  (+0.11%)\n");
  has(r, "2020-01-07  $9,040.00  (+0.11%)\n");
  hasnt(r, "2020-01-06");
  has(r, "20 daily snapshots from 2020-01-01 to 2020-01-20 (the latest shown); high $10,100.00 "
         "on 2020-01-02, low $9,000.00 on 2020-01-03.");
}

static void test_price_quote_complete(void **state) {
  const char *r = modtest_cmd(&T, "/price symbol:$aapl", &MODTEST_MEMBER);
  has(r, "AAPL: $");
  /* The simulated AAPL (about $200) has six decimals; /price shows two. */
  assert_int_equal(decimals_after(r, "AAPL: $"), 2);
  has(r, "simulated market (not a real price)");
  has(r, "Simulated market: prices are made up");
  r = modtest_cmd(&T, "/quote symbol:AAPL", &MODTEST_MEMBER);
  has(r, "AAPL quote (simulated)");
  has(r, "Price: $");
  has(r, "Freshness: ");
  r = modtest_cmd(&T, "/price symbol:ZZZZZ", &MODTEST_MEMBER);
  has(r, "Unknown symbol ZZZZZ");
  r = modtest_complete(&T,
                       "{\"name\":\"buy\",\"options\":[{\"name\":\"symbol\",\"type\":3,"
                       "\"value\":\"aap\",\"focused\":true}]}",
                       &MODTEST_MEMBER);
  assert_int_equal(T.reply.kind, SOUK__OUT_CHOICES);
  has(r, "AAPL=AAPL\n");
  hasnt(r, "MSFT");
}

static void test_leaderboard_and_buttons(void **state) {
  modtest_cmd(&T, "/buy symbol:AAPL shares:1", &MODTEST_MEMBER);
  modtest_cmd(&T, "/buy symbol:AAPL shares:2", &MODTEST_OWNER_WHO);
  const char *r = modtest_cmd(&T, "/leaderboard", &MODTEST_MEMBER);
  has(r, "Leaderboard by value, season 1");
  /* Players by their display names, never by id. */
  has(r, "1. **");
  has(r, "2. **");
  has(r, "**member** $");
  has(r, "**owner** $");
  hasnt(r, "<@");
  has(r, "Page 1 of 1 - 2 traders - simulated market");
  /* One page: no buttons. */
  assert_int_equal(T.reply.ncustom, 0);
  r = modtest_cmd(&T, "/leaderboard by:roi page:3", &MODTEST_MEMBER);
  has(r, "There is only 1 page of the leaderboard.");
  /* A button of this season's first page shows it again, updating the
   * message it was on. */
  char id[120];
  snprintf(id, sizeof id, "market:lb:1:v:1:%llu", (unsigned long long)(souk_unix_ms() / 60000));
  r = modtest_press(&T, id, &MODTEST_MEMBER);
  assert_int_equal(T.reply.kind, SOUK__OUT_UPDATE);
  has(r, "Leaderboard by value, season 1");
  /* A forged or broken one is refused. */
  r = modtest_press(&T, "market:lb:x", &MODTEST_MEMBER);
  has(r, "This leaderboard button is no longer valid");
}

static void test_settings_set_dashboard(void **state) {
  const char *r = modtest_cmd(&T, "/market settings", &MODTEST_MEMBER);
  has(r, "Market settings");
  has(r, "Price source: simulated market");
  has(r, "Starting cash: $10,000.00");
  has(r, "Since: not started yet");
  /* Changing them needs Manage Server. */
  r = modtest_cmd(&T, "/market set commission:1.50", &MODTEST_MEMBER);
  hasnt(r, "Market settings saved");
  r = modtest_cmd(&T, "/market set commission:1.50 hours:open_only", &MODTEST_OWNER_WHO);
  has(r, "Market settings saved: starting cash $10,000.00");
  has(r, "commission $1.50 per trade, trading only while the NYSE is open");
  r = modtest_cmd(&T, "/market set", &MODTEST_OWNER_WHO);
  has(r, "Give at least one of start_cash, commission or hours.");
  r = modtest_cmd(&T, "/market settings", &MODTEST_MEMBER);
  has(r, "Commission: $1.50");
  has(r, "Trading hours: only while the NYSE is open");
  r = modtest_cmd(&T, "/market dashboard state:on", &MODTEST_OWNER_WHO);
  has(r, "dashboard is now public: /market/200000000000000002");
  r = modtest_cmd(&T, "/market settings", &MODTEST_MEMBER);
  has(r, "Dashboard: public");
}

static void test_season_reset(void **state) {
  modtest_cmd(&T, "/buy symbol:AAPL shares:1", &MODTEST_MEMBER);
  const char *r = modtest_cmd(&T, "/market season-reset source:live", &MODTEST_OWNER_WHO);
  has(r, "A live season needs a price provider");
  r = modtest_cmd(&T, "/market season-reset", &MODTEST_OWNER_WHO);
  has(r, "Start season 2 on the simulated market?");
  assert_true(T.reply.ephemeral);
  assert_int_equal(T.reply.ncustom, 1);
  char id[SOUK_CMD_CUSTOM_ID_MAX + 1];
  snprintf(id, sizeof id, "%s", T.reply.custom_ids[0]);
  assert_string_equal(id, "market:reset:1:sim");
  /* Only a member with Manage Server may confirm. */
  r = modtest_press(&T, id, &MODTEST_MEMBER);
  has(r, "You need the Manage Server permission");
  r = modtest_press(&T, id, &MODTEST_OWNER_WHO);
  has(r, "Season 2 has started on the simulated market.");
  /* The same button again: that season is over. */
  r = modtest_press(&T, id, &MODTEST_OWNER_WHO);
  has(r, "Season 1 already ended; this server is in season 2 now.");
  r = modtest_cmd(&T, "/portfolio", &MODTEST_MEMBER);
  has(r, "You have no account in this season yet");
}

static void test_owner_commands(void **state) {
  const char *r = modtest_cmd(&T, "/market cache", &MODTEST_MEMBER);
  hasnt(r, "Price cache:");
  r = modtest_cmd(&T, "/market cache", &MODTEST_OWNER_WHO);
  has(r, "Price cache: 0 entries");
  modtest_cmd(&T, "/buy symbol:AAPL shares:1", &MODTEST_MEMBER);
  r = modtest_cmd(&T, "/market daily-update", &MODTEST_OWNER_WHO);
  has(r, "Daily update done: 1 accounts valued, 1 snapshots written");
  r = modtest_cmd(&T, "/market daily-update", &MODTEST_OWNER_WHO);
  has(r, "1 already there today");
}

/* A count of rows a query returns. */
typedef struct count_q {
  const char *sql;
  int64_t n;
} count_q_t;

static int count_fn(souk_db_t *db, void *ud) {
  count_q_t *q = ud;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, q->sql, &s);
  if (rc) return rc;
  rc = souk_stmt_step(s);
  q->n = souk_stmt_column_int64(s, 0);
  souk_stmt_finalize(s);
  return rc == 1 ? 0 : SOUK_EIO;
}

static int64_t count_rows(const char *sql) {
  count_q_t q = {sql, -1};
  assert_int_equal(souk_store_read(T.store, count_fn, &q), 0);
  return q.n;
}

/* Let background writes (a name noted on the side) finish. */
static void drain(void) {
  while (souk_work_pending())
    uv_run(souk_loop(), UV_RUN_ONCE);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
}

/* Players' display names: kept from the trade, updated when they change
 * (by any market command), escaped for Discord's markdown, kept only for
 * players, and gone with `forget-user`. */
static void test_player_names(void **state) {
  modtest_who_t star = {UINT64_C(300000000000000005), MODTEST_GUILD, 0, "*Star*_x_ `c` <@1> |s|"};
  modtest_who_t visitor = {UINT64_C(300000000000000006), MODTEST_GUILD, 0, "Visitor"};
  modtest_cmd(&T, "/buy symbol:AAPL shares:1", &star);
  modtest_cmd(&T, "/price symbol:AAPL", &visitor);
  drain();
  const char *r = modtest_cmd(&T, "/leaderboard", &MODTEST_MEMBER);
  has(r, "1. **\\*Star\\*\\_x\\_ \\`c\\` \\<\\@1\\> \\|s\\|** $");
  /* Someone who only looked at a price is not a player: no name kept. */
  assert_int_equal(count_rows("SELECT COUNT(*) FROM market_players"), 1);
  /* A new name is noted by any market command, not only a trade. */
  star.name = "Renamed";
  modtest_cmd(&T, "/portfolio", &star);
  drain();
  r = modtest_cmd(&T, "/leaderboard", &MODTEST_MEMBER);
  has(r, "1. **Renamed** $");
  hasnt(r, "Star");
  r = modtest_cmd(&T, "/portfolio user:<@300000000000000005>", &MODTEST_MEMBER);
  has(r, "Portfolio of **Renamed**");
  /* Forgetting the player removes the name with the rest. */
  int64_t deleted = 0;
  assert_int_equal(souk_store_forget_user(T.store, (int64_t)star.user, &deleted), 0);
  assert_true(deleted >= 3); /* account, holding, trade, name */
  assert_int_equal(count_rows("SELECT COUNT(*) FROM market_players"), 0);
}

typedef struct daily_res {
  int calls, status;
  market_snapshot_stats_t st;
} daily_res_t;

static void daily_cb(void *ud, int status, const market_snapshot_stats_t *st) {
  daily_res_t *r = ud;
  r->calls++;
  r->status = status;
  r->st = *st;
}

static daily_res_t daily(market_daily_mode_t mode) {
  daily_res_t r = {0};
  assert_int_equal(market_daily_run(mode, daily_cb, &r), 0);
  while (!r.calls)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(r.calls, 1);
  return r;
}

/* The task's and cron's daily update runs once a day, whichever process
 * comes first: a second run finds the day claimed in the store and does
 * nothing; /market daily-update forces one anyway. */
static void test_daily_update_once_a_day(void **state) {
  modtest_cmd(&T, "/buy symbol:AAPL shares:1", &MODTEST_MEMBER);
  daily_res_t r = daily(MARKET_DAILY_ONCE);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.st.accounts, 1);
  assert_int_equal(r.st.inserted, 1);
  r = daily(MARKET_DAILY_ONCE);
  assert_int_equal(r.status, SOUK_EEXIST);
  assert_int_equal(r.st.accounts, 0);
  /* Another process's memory: the claim is in the store, not here. */
  market_g.last_daily_day = 0;
  r = daily(MARKET_DAILY_ONCE);
  assert_int_equal(r.status, SOUK_EEXIST);
  r = daily(MARKET_DAILY_FORCE);
  assert_int_equal(r.status, 0);
  assert_int_equal(r.st.inserted, 0);
  assert_int_equal(r.st.existing, 1);
  /* A claim by the idempotency key alone (the kv row lost) still holds. */
  count_q_t q = {"SELECT COUNT(*) FROM idempotency WHERE key LIKE 'market:daily:%'", -1};
  assert_int_equal(souk_store_read(T.store, count_fn, &q), 0);
  assert_int_equal(q.n, 1);
}

/* The seed bot's names run the matching /market commands (/help's listing
 * of them is in tests/integration/test_market.py). */
static void test_seed_aliases(void **state) {
  modtest_cmd(&T, "/buy symbol:AAPL shares:1", &MODTEST_MEMBER);
  const char *r = modtest_cmd(&T, "daily_update", &MODTEST_OWNER_WHO);
  has(r, "Daily update done: 1 accounts valued");
  r = modtest_cmd(&T, "flushcache", &MODTEST_OWNER_WHO);
  has(r, "Done: ");
  r = modtest_cmd(&T, "clearcache", &MODTEST_OWNER_WHO);
  has(r, "Cleared ");
  r = modtest_cmd(&T, "reloadcache", &MODTEST_OWNER_WHO);
  has(r, "Done: ");
  r = modtest_cmd(&T, "season_reset source:sim", &MODTEST_OWNER_WHO);
  has(r, "Start season 2 on the simulated market?");
  /* The checks of the target apply: owners only. */
  r = modtest_cmd(&T, "daily_update", &MODTEST_MEMBER);
  has(r, "can only be used by the bot's owners");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_buy_sell_and_portfolio, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redelivery_applies_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_history, setup, teardown),
      cmocka_unit_test_setup_teardown(test_history_daily_values, setup, teardown),
      cmocka_unit_test_setup_teardown(test_price_quote_complete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_leaderboard_and_buttons, setup, teardown),
      cmocka_unit_test_setup_teardown(test_settings_set_dashboard, setup, teardown),
      cmocka_unit_test_setup_teardown(test_season_reset, setup, teardown),
      cmocka_unit_test_setup_teardown(test_owner_commands, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seed_aliases, setup, teardown),
      cmocka_unit_test_setup_teardown(test_player_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_daily_update_once_a_day, setup, teardown),
  };
  souk_log_set_level(SOUK_LOG_OFF);
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk_loop_close();
  return rc;
}
