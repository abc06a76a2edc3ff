/* The Market Sim's ledger on both backends: one body per test, run on
 * SQLite in a temp dir and on a throwaway PostgreSQL server (see
 * ../../store/pgserver.h), each test on a fresh database.  The PostgreSQL
 * group is skipped with a message when the server binaries are missing. */
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

#include "../../store/pgserver.h"
#include "modules/market/ledger.c"
#include "modules/market/money.c"
#include "modules/market/players.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct backend {
  souk_store_kind_t kind;
  const char *name;
} backend_t;

static backend_t be_sqlite = {SOUK_STORE_SQLITE, "sqlite"};
static backend_t be_pg = {SOUK_STORE_POSTGRES, "postgres"};

typedef struct fx {
  const backend_t *be;
  bool skip;
  char dir[128];
  char url[256];
  souk_store_conf_t conf;
  souk_store_t *st;
  market_settings_t defs;
} fx_t;

static int fx_setup(void **state) {
  fx_t *fx = souk_calloc(1, sizeof *fx);
  fx->be = *state;
  snprintf(fx->dir, sizeof fx->dir, "/tmp/souk-market-XXXXXX");
  assert_non_null(mkdtemp(fx->dir));
  souk_store_conf_defaults(&fx->conf);
  fx->conf.retry_base_ms = 2;
  fx->conf.retry_max_ms = 50;
  fx->conf.tx_retries = 50;
  fx->conf.backup_before_migrate = false;
  if (fx->be->kind == SOUK_STORE_POSTGRES) {
    if (pg_state != 1) {
      fx->skip = true;
    } else {
      assert_true(pg_create_db("souk_m", fx->url, sizeof fx->url));
      fx->conf.url = fx->url;
    }
  }
  if (!fx->skip) {
    int rc = souk_store_open(&fx->conf, fx->dir, &fx->st);
    if (rc != 0) fail_msg("souk_store_open: %s", souk_strerror(rc));
    /* The module's own schema, as the module registry applies it. */
    rc = souk_store_migrate_module(fx->st, "market", market_migrations, NULL);
    if (rc != 0) fail_msg("market schema: %s", souk_strerror(rc));
  }
  market_settings_defaults(&fx->defs, 0, MARKET_SRC_SIM);
  *state = fx;
  return 0;
}

static int fx_teardown(void **state) {
  fx_t *fx = *state;
  souk_store_close(fx->st);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
  assert_int_equal(system(cmd), 0);
  souk_store_registry_clear();
  souk_free(fx);
  return 0;
}

#define FX()                                                                                       \
  fx_t *fx = *state;                                                                               \
  if (fx->skip) {                                                                                  \
    skip();                                                                                        \
    return;                                                                                        \
  }

/* ---- helpers ---- */

typedef struct sqljob {
  const char *sql;
  int64_t out;
} sqljob_t;

static int int_fn(souk_db_t *db, void *ud) {
  sqljob_t *j = ud;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, j->sql, &s);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  j->out = souk_stmt_column_int64(s, 0);
  souk_stmt_finalize(s);
  return rc == 1 ? 0 : SOUK_EIO;
}

/* An integer a query returns (aggregates cast to BIGINT for PostgreSQL). */
static int64_t sql_int(fx_t *fx, const char *sql) {
  sqljob_t j = {sql, 0};
  int rc = souk_store_read(fx->st, int_fn, &j);
  if (rc != 0) fail_msg("%s: %s", sql, souk_strerror(rc));
  return j.out;
}

/* A request with everything a plain trade needs. */
static market_trade_req_t req_make(fx_t *fx, int64_t guild, int64_t user, const char *sym,
                                   market_side_t side, market_mode_t mode, int64_t qty,
                                   int64_t price, const char *key) {
  market_trade_req_t r = {0};
  r.guild_id = guild;
  r.user_id = user;
  r.symbol = sym;
  r.side = side;
  r.mode = mode;
  if (mode == MARKET_BY_AMOUNT)
    r.amount_cents = qty;
  else
    r.shares = qty;
  r.price_micro = price;
  r.source = MARKET_SRC_SIM;
  r.price_time_ms = 1700000000000;
  r.idem_key = key;
  r.now_ms = 1700000001000;
  r.defaults = &fx->defs;
  return r;
}

static market_trade_t trade(fx_t *fx, int64_t guild, int64_t user, const char *sym,
                            market_side_t side, market_mode_t mode, int64_t qty, int64_t price,
                            const char *key) {
  market_trade_req_t r = req_make(fx, guild, user, sym, side, mode, qty, price, key);
  market_trade_t t;
  int rc = market_trade_tx(fx->st, &r, &t);
  if (rc != 0) fail_msg("trade %s: %s", key, souk_strerror(rc));
  return t;
}

typedef struct pjob {
  int64_t guild, season, user;
  market_portfolio_t p;
} pjob_t;

static int portfolio_fn(souk_db_t *db, void *ud) {
  pjob_t *j = ud;
  market_portfolio_free(&j->p);
  return market_portfolio_get(db, j->guild, j->season, j->user, &j->p);
}

static market_portfolio_t portfolio(fx_t *fx, int64_t guild, int64_t season, int64_t user) {
  pjob_t j = {guild, season, user, {0}};
  assert_int_equal(souk_store_read(fx->st, portfolio_fn, &j), 0);
  return j.p;
}

/* The holding of sym in p, or NULL. */
static const market_holding_t *holding(const market_portfolio_t *p, const char *sym) {
  for (size_t i = 0; i < p->n; i++)
    if (!strcmp(p->holdings[i].symbol, sym)) return &p->holdings[i];
  return NULL;
}

/* Cash + cost basis - realised profit is what the account started with:
 * every cent that left cash is in a cost basis or was realised. */
static void check_conservation(fx_t *fx, int64_t guild, int64_t user) {
  market_portfolio_t p = portfolio(fx, guild, 0, user);
  assert_true(p.exists);
  int64_t total = p.account.cash_cents;
  for (size_t i = 0; i < p.n; i++) {
    assert_true(p.holdings[i].shares > 0);
    assert_true(p.holdings[i].cost_cents >= 0);
    total += p.holdings[i].cost_cents;
  }
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT CAST(COALESCE(SUM(realised_cents), 0) AS BIGINT) FROM market_transactions "
           "WHERE guild_id = %lld AND season = %lld AND user_id = %lld",
           (long long)guild, (long long)p.account.season, (long long)user);
  total -= sql_int(fx, sql);
  assert_int_equal(total, p.account.initial_cents);
  market_portfolio_free(&p);
}

/* A fixed price table for valuation. */
typedef struct price_tab {
  const char *sym[8];
  int64_t price[8];
} price_tab_t;

static int tab_price(void *ud, const char *symbol, int64_t *price_micro) {
  price_tab_t *t = ud;
  for (int i = 0; i < 8 && t->sym[i]; i++)
    if (!strcmp(t->sym[i], symbol)) {
      *price_micro = t->price[i];
      return 0;
    }
  return SOUK_ENOTFOUND;
}

/* ---- settings and accounts ---- */

typedef struct setjob {
  fx_t *fx;
  int64_t guild, user;
  market_settings_t s;
  market_account_t a;
  bool created;
  int64_t season;
  market_source_t src;
} setjob_t;

static int settings_get_fn(souk_db_t *db, void *ud) {
  setjob_t *j = ud;
  return market_settings_get(db, j->guild, &j->fx->defs, &j->s);
}

static int settings_set_fn(souk_db_t *db, void *ud) {
  setjob_t *j = ud;
  return market_settings_set(db, &j->s, 5);
}

static int account_fn(souk_db_t *db, void *ud) {
  setjob_t *j = ud;
  return market_account_get_or_create(db, j->guild, j->user, &j->fx->defs, 7, &j->a, &j->created);
}

static int reset_fn(souk_db_t *db, void *ud) {
  setjob_t *j = ud;
  return market_season_reset(db, j->guild, &j->fx->defs, j->src, 9, &j->season);
}

static void test_accounts(void **state) {
  FX();
  setjob_t j = {.fx = fx, .guild = 10, .user = 1};
  /* No row: the defaults, nothing written. */
  assert_int_equal(souk_store_read(fx->st, settings_get_fn, &j), 0);
  assert_false(j.s.stored);
  assert_int_equal(j.s.guild_id, 10);
  assert_int_equal(j.s.start_cash_cents, 100000000);
  assert_int_equal(j.s.season, 1);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_settings"), 0);
  /* First use creates the account with the starting cash. */
  assert_int_equal(souk_store_tx(fx->st, account_fn, &j), 0);
  assert_true(j.created);
  assert_int_equal(j.a.cash_cents, 100000000);
  assert_int_equal(j.a.initial_cents, 100000000);
  assert_int_equal(j.a.last_value_cents, 100000000);
  assert_int_equal(j.a.season, 1);
  assert_int_equal(j.a.created_at, 7);
  assert_int_equal(souk_store_tx(fx->st, account_fn, &j), 0);
  assert_false(j.created);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_accounts"), 1);
  /* The settings row now fixes the season's source. */
  assert_int_equal(souk_store_read(fx->st, settings_get_fn, &j), 0);
  assert_true(j.s.stored);
  assert_int_equal(j.s.source, MARKET_SRC_SIM);
  /* New starting cash applies to new accounts only; set keeps the source. */
  j.s.start_cash_cents = 500000;
  j.s.commission_cents = 99;
  j.s.dashboard_public = true;
  j.s.hours = MARKET_HOURS_OPEN_ONLY;
  j.s.source = MARKET_SRC_LIVE;
  assert_int_equal(souk_store_tx(fx->st, settings_set_fn, &j), 0);
  memset(&j.s, 0, sizeof j.s);
  assert_int_equal(souk_store_read(fx->st, settings_get_fn, &j), 0);
  assert_int_equal(j.s.start_cash_cents, 500000);
  assert_int_equal(j.s.commission_cents, 99);
  assert_true(j.s.dashboard_public);
  assert_int_equal(j.s.hours, MARKET_HOURS_OPEN_ONLY);
  assert_int_equal(j.s.source, MARKET_SRC_SIM);
  j.user = 2;
  assert_int_equal(souk_store_tx(fx->st, account_fn, &j), 0);
  assert_int_equal(j.a.cash_cents, 500000);
  j.user = 1;
  assert_int_equal(souk_store_tx(fx->st, account_fn, &j), 0);
  assert_int_equal(j.a.cash_cents, 100000000);
  /* Negative amounts are refused. */
  j.s.commission_cents = -1;
  assert_int_equal(souk_store_tx(fx->st, settings_set_fn, &j), SOUK_EINVAL);
}

/* ---- trades ---- */

static void test_trades(void **state) {
  FX();
  const int64_t g = 20, u = 5;
  /* Buy 3 at $10.00005: 3000.015 -> 3001 cents. */
  market_trade_t t = trade(fx, g, u, "AAPL", MARKET_BUY, MARKET_BY_SHARES, 3, 10000050, "k1");
  assert_int_equal(t.refusal, MARKET_TRADE_OK);
  assert_false(t.duplicate);
  assert_true(t.id > 0);
  assert_int_equal(t.shares, 3);
  assert_int_equal(t.amount_cents, 3001);
  assert_int_equal(t.cash_before, 100000000);
  assert_int_equal(t.cash_after, 100000000 - 3001);
  assert_int_equal(t.holding_shares, 3);
  assert_int_equal(t.holding_cost_cents, 3001);
  /* Buy $100 worth at $12.34: 8 shares (98.72). */
  t = trade(fx, g, u, "AAPL", MARKET_BUY, MARKET_BY_AMOUNT, 10000, 12340000, "k2");
  assert_int_equal(t.refusal, MARKET_TRADE_OK);
  assert_int_equal(t.shares, 8);
  assert_int_equal(t.amount_cents, 9872);
  assert_int_equal(t.holding_shares, 11);
  assert_int_equal(t.holding_cost_cents, 3001 + 9872);
  /* Sell 4 of 11 at $15: removes floor(12873 * 4 / 11) = 4681. */
  t = trade(fx, g, u, "AAPL", MARKET_SELL, MARKET_BY_SHARES, 4, 15000000, "k3");
  assert_int_equal(t.refusal, MARKET_TRADE_OK);
  assert_int_equal(t.amount_cents, 6000);
  assert_int_equal(t.cost_removed_cents, 4681);
  assert_int_equal(t.realised_cents, 6000 - 4681);
  assert_int_equal(t.holding_shares, 7);
  assert_int_equal(t.holding_cost_cents, 12873 - 4681);
  /* Sell $30 worth at $9.99: 3 shares. */
  t = trade(fx, g, u, "AAPL", MARKET_SELL, MARKET_BY_AMOUNT, 3000, 9990000, "k4");
  assert_int_equal(t.refusal, MARKET_TRADE_OK);
  assert_int_equal(t.shares, 3);
  assert_int_equal(t.amount_cents, 2997);
  assert_int_equal(t.holding_shares, 4);
  /* A second symbol, then sell all of the first: the row goes. */
  t = trade(fx, g, u, "MSFT", MARKET_BUY, MARKET_BY_SHARES, 2, 400000000, "k5");
  assert_int_equal(t.refusal, MARKET_TRADE_OK);
  t = trade(fx, g, u, "AAPL", MARKET_SELL, MARKET_SELL_ALL, 0, 11000000, "k6");
  assert_int_equal(t.refusal, MARKET_TRADE_OK);
  assert_int_equal(t.shares, 4);
  assert_int_equal(t.holding_shares, 0);
  assert_int_equal(t.holding_cost_cents, 0);
  market_portfolio_t p = portfolio(fx, g, 0, u);
  assert_true(p.exists);
  assert_int_equal(p.n, 1);
  assert_null(holding(&p, "AAPL"));
  assert_int_equal(holding(&p, "MSFT")->shares, 2);
  assert_int_equal(holding(&p, "MSFT")->cost_cents, 80000);
  assert_int_equal(p.account.cash_cents, t.cash_after);
  market_portfolio_free(&p);
  check_conservation(fx, g, u);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_transactions"), 6);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_transactions WHERE side = 'sell'"), 3);

  /* Commission: on top of a buy's cost and the basis, off a sale. */
  setjob_t j = {.fx = fx, .guild = g};
  assert_int_equal(souk_store_read(fx->st, settings_get_fn, &j), 0);
  j.s.commission_cents = 500;
  assert_int_equal(souk_store_tx(fx->st, settings_set_fn, &j), 0);
  t = trade(fx, g, u, "TSLA", MARKET_BUY, MARKET_BY_AMOUNT, 10500, 25000000, "c1");
  assert_int_equal(t.refusal, MARKET_TRADE_OK);
  assert_int_equal(t.shares, 4); /* $100 + $5 */
  assert_int_equal(t.commission_cents, 500);
  assert_int_equal(t.cash_before - t.cash_after, 10500);
  assert_int_equal(t.holding_cost_cents, 10500);
  t = trade(fx, g, u, "TSLA", MARKET_SELL, MARKET_BY_SHARES, 4, 25000000, "c2");
  assert_int_equal(t.refusal, MARKET_TRADE_OK);
  assert_int_equal(t.cash_after - t.cash_before, 9500);
  assert_int_equal(t.realised_cents, -1000);
  check_conservation(fx, g, u);
}

typedef struct listjob {
  int64_t guild, user, off, lim;
  market_trade_t *rows;
  size_t n;
} listjob_t;

static int list_fn(souk_db_t *db, void *ud) {
  listjob_t *j = ud;
  souk_free(j->rows);
  j->rows = NULL;
  return market_tx_list(db, j->guild, 0, j->user, j->off, j->lim, &j->rows, &j->n);
}

static void test_history_list(void **state) {
  FX();
  char key[32];
  for (int i = 0; i < 7; i++) {
    snprintf(key, sizeof key, "h%d", i);
    market_trade_t t = trade(fx, 1, 2, "IBM", MARKET_BUY, MARKET_BY_SHARES, i + 1, 1000000, key);
    assert_int_equal(t.refusal, MARKET_TRADE_OK);
  }
  trade(fx, 1, 3, "IBM", MARKET_BUY, MARKET_BY_SHARES, 1, 1000000, "other");
  listjob_t j = {1, 2, 0, 3, NULL, 0};
  assert_int_equal(souk_store_read(fx->st, list_fn, &j), 0);
  assert_int_equal(j.n, 3);
  assert_int_equal(j.rows[0].shares, 7);
  assert_int_equal(j.rows[2].shares, 5);
  assert_string_equal(j.rows[0].symbol, "IBM");
  assert_int_equal(j.rows[0].side, MARKET_BUY);
  assert_int_equal(j.rows[0].source, MARKET_SRC_SIM);
  assert_int_equal(j.rows[0].price_time_ms, 1700000000000);
  j.off = 6;
  assert_int_equal(souk_store_read(fx->st, list_fn, &j), 0);
  assert_int_equal(j.n, 1);
  assert_int_equal(j.rows[0].shares, 1);
  j.off = 7;
  assert_int_equal(souk_store_read(fx->st, list_fn, &j), 0);
  assert_int_equal(j.n, 0);
  souk_free(j.rows);
  j.rows = NULL;
  j.lim = 0;
  assert_int_equal(souk_store_read(fx->st, list_fn, &j), SOUK_EINVAL);
}

static void test_refusals(void **state) {
  FX();
  const int64_t g = 30, u = 6;
  fx->defs.start_cash_cents = 100000; /* $1,000 */
  market_trade_t t = trade(fx, g, u, "AAPL", MARKET_BUY, MARKET_BY_SHARES, 1, 1000000001, "r1");
  assert_int_equal(t.refusal, MARKET_REFUSE_CASH);
  assert_int_equal(t.cash_before, 100000);
  /* Exactly all the cash is fine, one cent more is not. */
  t = trade(fx, g, u, "AAPL", MARKET_BUY, MARKET_BY_SHARES, 1, 1000000000, "r2");
  assert_int_equal(t.refusal, MARKET_TRADE_OK);
  assert_int_equal(t.cash_after, 0);
  t = trade(fx, g, u, "AAPL", MARKET_SELL, MARKET_BY_SHARES, 2, 1000000000, "r3");
  assert_int_equal(t.refusal, MARKET_REFUSE_SHARES);
  t = trade(fx, g, u, "MSFT", MARKET_SELL, MARKET_SELL_ALL, 0, 1000000000, "r4");
  assert_int_equal(t.refusal, MARKET_REFUSE_SHARES);
  t = trade(fx, g, u, "AAPL", MARKET_SELL, MARKET_BY_SHARES, 0, 1000000000, "r5");
  assert_int_equal(t.refusal, MARKET_REFUSE_ZERO);
  t = trade(fx, g, u, "AAPL", MARKET_SELL, MARKET_BY_AMOUNT, 99, 1000000000, "r6");
  assert_int_equal(t.refusal, MARKET_REFUSE_ZERO);
  t = trade(fx, g, u, "AAPL", MARKET_SELL, MARKET_BY_AMOUNT, 300000, 1000000000, "r6b");
  assert_int_equal(t.refusal, MARKET_REFUSE_SHARES);
  t = trade(fx, g, u, "AAPL", MARKET_BUY, MARKET_BY_SHARES, -3, 1000000, "r7");
  assert_int_equal(t.refusal, MARKET_REFUSE_ZERO);
  t = trade(fx, g, u, "AAPL", MARKET_BUY, MARKET_BY_AMOUNT, 0, 1000000, "r7b");
  assert_int_equal(t.refusal, MARKET_REFUSE_ZERO);
  t = trade(fx, g, u, "AAPL", MARKET_BUY, MARKET_BY_SHARES, INT64_MAX, INT64_MAX, "r8");
  assert_int_equal(t.refusal, MARKET_REFUSE_OVERFLOW);
  t = trade(fx, g, u, "AAPL", MARKET_BUY, MARKET_BY_SHARES, 1, 0, "r9");
  assert_int_equal(t.refusal, MARKET_REFUSE_PRICE);
  /* A live price in a simulated season. */
  market_trade_req_t r =
      req_make(fx, g, u, "AAPL", MARKET_SELL, MARKET_SELL_ALL, 0, 1000000000, "r10");
  r.source = MARKET_SRC_LIVE;
  assert_int_equal(market_trade_tx(fx->st, &r, &t), 0);
  assert_int_equal(t.refusal, MARKET_REFUSE_SOURCE);
  /* A sale worth less than the commission. */
  setjob_t j = {.fx = fx, .guild = g};
  assert_int_equal(souk_store_read(fx->st, settings_get_fn, &j), 0);
  j.s.commission_cents = 100001;
  assert_int_equal(souk_store_tx(fx->st, settings_set_fn, &j), 0);
  t = trade(fx, g, u, "AAPL", MARKET_SELL, MARKET_SELL_ALL, 0, 1000000000, "r11");
  assert_int_equal(t.refusal, MARKET_REFUSE_COMMISSION);
  /* Malformed requests are errors, not refusals. */
  r = req_make(fx, g, u, "", MARKET_BUY, MARKET_BY_SHARES, 1, 1, "r12");
  assert_int_equal(market_trade_tx(fx->st, &r, &t), SOUK_EINVAL);
  r = req_make(fx, g, u, "ABCDEFGHIJKLMNOPQ", MARKET_BUY, MARKET_BY_SHARES, 1, 1, "r12");
  assert_int_equal(market_trade_tx(fx->st, &r, &t), SOUK_EINVAL);
  r = req_make(fx, g, u, "AAPL", MARKET_BUY, MARKET_SELL_ALL, 1, 1, "r12");
  assert_int_equal(market_trade_tx(fx->st, &r, &t), SOUK_EINVAL);
  r = req_make(fx, g, u, "AAPL", MARKET_BUY, MARKET_BY_SHARES, 1, 1, "");
  assert_int_equal(market_trade_tx(fx->st, &r, &t), SOUK_EINVAL);
  /* Nothing but the one good trade was written. */
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_transactions"), 1);
  assert_int_equal(sql_int(fx, "SELECT cash_cents FROM market_accounts"), 0);
  assert_int_equal(sql_int(fx, "SELECT shares FROM market_holdings"), 1);
  for (int i = MARKET_TRADE_OK; i <= MARKET_REFUSE_PRICE; i++)
    assert_non_null(market_refusal_str((market_refusal_t)i));
  check_conservation(fx, g, u);
}

static void test_idempotent(void **state) {
  FX();
  market_trade_t a = trade(fx, 40, 1, "NVDA", MARKET_BUY, MARKET_BY_SHARES, 5, 100000000, "same");
  assert_int_equal(a.refusal, MARKET_TRADE_OK);
  /* The retry - at another price, as a redelivered command would see -
   * returns the original. */
  market_trade_t b = trade(fx, 40, 1, "NVDA", MARKET_BUY, MARKET_BY_SHARES, 5, 120000000, "same");
  assert_true(b.duplicate);
  assert_int_equal(b.refusal, MARKET_TRADE_OK);
  assert_int_equal(b.id, a.id);
  assert_int_equal(b.shares, 5);
  /* The key reused for another request (other shares, symbol or side) is
   * refused, never answered with the first trade. */
  market_trade_t x;
  market_trade_req_t rx = req_make(fx, 40, 1, "NVDA", MARKET_BUY, MARKET_BY_SHARES, 9, 1, "same");
  assert_int_equal(market_trade_tx(fx->st, &rx, &x), SOUK_EEXIST);
  rx = req_make(fx, 40, 1, "MSFT", MARKET_BUY, MARKET_BY_SHARES, 5, 1, "same");
  assert_int_equal(market_trade_tx(fx->st, &rx, &x), SOUK_EEXIST);
  rx = req_make(fx, 40, 1, "NVDA", MARKET_SELL, MARKET_BY_SHARES, 5, 1, "same");
  assert_int_equal(market_trade_tx(fx->st, &rx, &x), SOUK_EEXIST);
  assert_int_equal(b.price_micro, 100000000);
  assert_int_equal(b.amount_cents, a.amount_cents);
  assert_int_equal(b.cash_before, a.cash_before);
  assert_int_equal(b.cash_after, a.cash_after);
  assert_int_equal(b.season, a.season);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_transactions"), 1);
  assert_int_equal(sql_int(fx, "SELECT cash_cents FROM market_accounts"), a.cash_after);
  assert_int_equal(sql_int(fx, "SELECT shares FROM market_holdings"), 5);
  /* A sale retried. */
  a = trade(fx, 40, 1, "NVDA", MARKET_SELL, MARKET_SELL_ALL, 0, 110000000, "sell");
  b = trade(fx, 40, 1, "NVDA", MARKET_SELL, MARKET_SELL_ALL, 0, 110000000, "sell");
  assert_true(b.duplicate);
  assert_int_equal(b.realised_cents, a.realised_cents);
  assert_int_equal(b.side, MARKET_SELL);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_holdings"), 0);
  /* A refused trade does not claim its key: the retry is judged anew. */
  market_trade_t c = trade(fx, 40, 1, "NVDA", MARKET_SELL, MARKET_SELL_ALL, 0, 1, "again");
  assert_int_equal(c.refusal, MARKET_REFUSE_SHARES);
  c = trade(fx, 40, 1, "NVDA", MARKET_BUY, MARKET_BY_SHARES, 1, 1, "again");
  assert_int_equal(c.refusal, MARKET_TRADE_OK);
  /* Another account cannot reuse a key. */
  market_trade_req_t r = req_make(fx, 40, 2, "NVDA", MARKET_BUY, MARKET_BY_SHARES, 1, 1, "same");
  assert_int_equal(market_trade_tx(fx->st, &r, &c), SOUK_EEXIST);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_transactions"), 3);
  check_conservation(fx, 40, 1);
}

/* ---- concurrency ---- */

#define NTHREADS 8
#define NBUYS    20

typedef struct cjob {
  fx_t *fx;
  int t;
  int64_t user;
  int ok, refused, dup, errors;
} cjob_t;

static void *buyer_main(void *arg) {
  cjob_t *c = arg;
  for (int i = 0; i < NBUYS; i++) {
    char key[32];
    /* Every thread also replays the keys of thread 0, as redeliveries. */
    if (i % 4 == 3)
      snprintf(key, sizeof key, "b-0-%d", i);
    else
      snprintf(key, sizeof key, "b-%d-%d", c->t, i);
    char k2[48];
    snprintf(k2, sizeof k2, "%lld-%s", (long long)c->user, key);
    market_trade_req_t r = req_make(c->fx, 50, c->user, i % 2 ? "AAPL" : "MSFT", MARKET_BUY,
                                    MARKET_BY_SHARES, 3, 1234567, k2);
    market_trade_t t;
    int rc = market_trade_tx(c->fx->st, &r, &t);
    if (rc != 0)
      c->errors++;
    else if (t.duplicate)
      c->dup++;
    else if (t.refusal == MARKET_TRADE_OK)
      c->ok++;
    else if (t.refusal == MARKET_REFUSE_CASH)
      c->refused++;
    else
      c->errors++;
  }
  return NULL;
}

/* A reader that checks, while trades run, that every book it reads is
 * consistent: with only buys, cash + cost basis is the starting cash. */
typedef struct reader {
  fx_t *fx;
  atomic_int stop;
  int reads, bad;
} reader_t;

static int book_check_fn(souk_db_t *db, void *ud) {
  reader_t *r = ud;
  market_book_t b;
  int rc = market_book_get(db, 50, 0, &b);
  if (rc != 0) return rc;
  for (size_t i = 0; i < b.n; i++) {
    int64_t total = b.accounts[i].cash_cents;
    for (size_t k = 0; k < b.count[i]; k++)
      total += b.holdings[b.first[i] + k].cost_cents;
    if (total != b.accounts[i].initial_cents) r->bad++;
  }
  r->reads++;
  market_book_free(&b);
  return 0;
}

static void *reader_main(void *arg) {
  reader_t *r = arg;
  while (!atomic_load(&r->stop))
    if (souk_store_read(r->fx->st, book_check_fn, r) != 0) r->bad++;
  return NULL;
}

/* 8 threads x 20 buys by one user, a quarter of them replays of the same
 * five keys: returns the outcome counts. */
static void run_buyers(fx_t *fx, int64_t user, int *ok, int *refused, int *dup) {
  cjob_t jobs[NTHREADS];
  pthread_t th[NTHREADS];
  for (int t = 0; t < NTHREADS; t++) {
    jobs[t] = (cjob_t){.fx = fx, .t = t, .user = user};
    assert_int_equal(pthread_create(&th[t], NULL, buyer_main, &jobs[t]), 0);
  }
  int errors = 0;
  *ok = *refused = *dup = 0;
  for (int t = 0; t < NTHREADS; t++) {
    pthread_join(th[t], NULL);
    *ok += jobs[t].ok;
    *refused += jobs[t].refused;
    *dup += jobs[t].dup;
    errors += jobs[t].errors;
  }
  assert_int_equal(errors, 0);
  assert_int_equal(*ok + *refused + *dup, NTHREADS * NBUYS);
}

static void test_concurrent(void **state) {
  FX();
  /* 3 shares at $1.234567 cost 371 cents; $100 pays for 26 of the buys. */
  fx->defs.start_cash_cents = 10000;
  int ok, refused, dup;
  run_buyers(fx, 77, &ok, &refused, &dup);
  assert_int_equal(ok, 26);
  char sql[200];
  int64_t cash = sql_int(fx, "SELECT cash_cents FROM market_accounts WHERE user_id = 77");
  assert_true(cash >= 0);
  assert_int_equal(cash, 10000 - 26 * 371);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_transactions"), ok);
  assert_int_equal(sql_int(fx, "SELECT CAST(SUM(shares) AS BIGINT) FROM market_holdings"), 3 * ok);
  assert_int_equal(sql_int(fx, "SELECT CAST(SUM(cost_cents) AS BIGINT) FROM market_holdings"),
                   371 * ok);
  /* Each audit row's cash_before is the previous row's cash_after. */
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_transactions a JOIN "
                               "market_transactions b ON b.cash_before = a.cash_after"),
                   ok - 1);
  check_conservation(fx, 50, 77);

  /* With cash for everything, every distinct key trades exactly once and
   * every replay is answered as a duplicate: no spurious refusals (which
   * is what a missing row lock on PostgreSQL would cause). */
  setjob_t j = {.fx = fx, .guild = 50};
  assert_int_equal(souk_store_read(fx->st, settings_get_fn, &j), 0);
  j.s.start_cash_cents = 100000000;
  assert_int_equal(souk_store_tx(fx->st, settings_set_fn, &j), 0);
  reader_t rd = {.fx = fx};
  pthread_t rt;
  assert_int_equal(pthread_create(&rt, NULL, reader_main, &rd), 0);
  run_buyers(fx, 78, &ok, &refused, &dup);
  atomic_store(&rd.stop, 1);
  pthread_join(rt, NULL);
  assert_true(rd.reads > 0);
  assert_int_equal(rd.bad, 0);
  assert_int_equal(refused, 0);
  assert_int_equal(ok, NTHREADS * (NBUYS - NBUYS / 4) + NBUYS / 4);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM market_transactions WHERE user_id = 78");
  assert_int_equal(sql_int(fx, sql), ok);
  check_conservation(fx, 50, 78);
}

/* ---- seasons ---- */

static void test_season_reset(void **state) {
  FX();
  trade(fx, 60, 1, "AMD", MARKET_BUY, MARKET_BY_SHARES, 10, 150000000, "s1");
  setjob_t j = {.fx = fx, .guild = 60, .src = MARKET_SRC_LIVE};
  assert_int_equal(souk_store_tx(fx->st, reset_fn, &j), 0);
  assert_int_equal(j.season, 2);
  assert_int_equal(souk_store_read(fx->st, settings_get_fn, &j), 0);
  assert_int_equal(j.s.season, 2);
  assert_int_equal(j.s.source, MARKET_SRC_LIVE);
  assert_int_equal(j.s.season_started_at, 9);
  /* The new season has no account yet; the old one is kept. */
  market_portfolio_t p = portfolio(fx, 60, 0, 1);
  assert_false(p.exists);
  market_portfolio_free(&p);
  p = portfolio(fx, 60, 1, 1);
  assert_true(p.exists);
  assert_int_equal(p.n, 1);
  market_portfolio_free(&p);
  /* A simulated price is refused in a live season; a live one trades. */
  market_trade_t t = trade(fx, 60, 1, "AMD", MARKET_BUY, MARKET_BY_SHARES, 1, 150000000, "s2");
  assert_int_equal(t.refusal, MARKET_REFUSE_SOURCE);
  market_trade_req_t r =
      req_make(fx, 60, 1, "AMD", MARKET_BUY, MARKET_BY_SHARES, 1, 150000000, "s3");
  r.source = MARKET_SRC_LIVE;
  assert_int_equal(market_trade_tx(fx->st, &r, &t), 0);
  assert_int_equal(t.refusal, MARKET_TRADE_OK);
  assert_int_equal(t.season, 2);
  assert_int_equal(t.cash_before, 100000000);
  p = portfolio(fx, 60, 0, 1);
  assert_true(p.exists);
  assert_int_equal(p.account.season, 2);
  assert_int_equal(holding(&p, "AMD")->shares, 1);
  market_portfolio_free(&p);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_accounts"), 2);
  /* A reset of a guild with no row starts at season 1. */
  j.guild = 61;
  j.src = MARKET_SRC_SIM;
  assert_int_equal(souk_store_tx(fx->st, reset_fn, &j), 0);
  assert_int_equal(j.season, 1);
}

/* ---- valuation, leaderboard, snapshots ---- */

typedef struct lbjob {
  int64_t guild;
  market_rank_by_t by;
  price_tab_t *tab;
  int64_t off, lim;
  market_rank_t *rows;
  size_t n, total;
} lbjob_t;

static int lb_fn(souk_db_t *db, void *ud) {
  lbjob_t *j = ud;
  souk_free(j->rows);
  j->rows = NULL;
  return market_leaderboard(db, j->guild, 0, j->by, tab_price, j->tab, j->off, j->lim, &j->rows,
                            &j->n, &j->total);
}

static void test_leaderboard(void **state) {
  FX();
  /* Users 1..5 with different starting cash (ROI differs from value). */
  const int64_t g = 70;
  int64_t starts[6] = {0, 100000, 200000, 100000, 400000, 100000};
  for (int u = 1; u <= 5; u++) {
    fx->defs.start_cash_cents = starts[u];
    char key[16];
    snprintf(key, sizeof key, "open%d", u);
    /* Each creates its account through a refused-for-zero trade. */
    market_trade_t t = trade(fx, g, u, "X", MARKET_BUY, MARKET_BY_AMOUNT, 0, 1000000, key);
    assert_int_equal(t.refusal, MARKET_REFUSE_ZERO);
    /* The settings row was made by user 1: change start cash for the next. */
    setjob_t j = {.fx = fx, .guild = g};
    assert_int_equal(souk_store_read(fx->st, settings_get_fn, &j), 0);
    j.s.start_cash_cents = u < 5 ? starts[u + 1] : 100000;
    assert_int_equal(souk_store_tx(fx->st, settings_set_fn, &j), 0);
  }
  /* u1 spends everything on 1000 X at $1, u2 $100 on 100 Y at $1, u3 $10
   * on a symbol nobody can price; u4 and u5 keep their cash. */
  trade(fx, g, 1, "X", MARKET_BUY, MARKET_BY_SHARES, 1000, 1000000, "a1");
  trade(fx, g, 2, "Y", MARKET_BUY, MARKET_BY_SHARES, 100, 1000000, "a2");
  trade(fx, g, 3, "UNPRICED", MARKET_BUY, MARKET_BY_SHARES, 10, 1000000, "a3");
  price_tab_t tab = {{"X", "Y"}, {3000000, 500000}};
  /* Values: u1 300000 (+200%), u2 190000 + 5000 = 195000 (-2.5%), u3
   * 99000 + 1000 at cost = 100000 (0%), u4 400000 (0%), u5 100000 (0%). */
  lbjob_t j = {g, MARKET_RANK_VALUE, &tab, 0, 10, NULL, 0, 0};
  assert_int_equal(souk_store_read(fx->st, lb_fn, &j), 0);
  assert_int_equal(j.total, 5);
  assert_int_equal(j.n, 5);
  int64_t by_value[5] = {4, 1, 2, 3, 5};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(j.rows[i].user_id, by_value[i]);
    assert_int_equal(j.rows[i].rank, i + 1);
  }
  assert_int_equal(j.rows[0].value_cents, 400000);
  assert_int_equal(j.rows[1].value_cents, 300000);
  assert_int_equal(j.rows[1].roi_bp, 20000);
  assert_int_equal(j.rows[2].value_cents, 195000);
  assert_int_equal(j.rows[2].roi_bp, -250);
  /* Ties (u3, u5: 100000, 0%) go by user id. */
  j.by = MARKET_RANK_ROI;
  assert_int_equal(souk_store_read(fx->st, lb_fn, &j), 0);
  int64_t by_roi[5] = {1, 4, 3, 5, 2};
  for (int i = 0; i < 5; i++)
    assert_int_equal(j.rows[i].user_id, by_roi[i]);
  /* Pages. */
  j.off = 2;
  j.lim = 2;
  assert_int_equal(souk_store_read(fx->st, lb_fn, &j), 0);
  assert_int_equal(j.n, 2);
  assert_int_equal(j.rows[0].user_id, 3);
  assert_int_equal(j.rows[0].rank, 3);
  assert_int_equal(j.rows[1].user_id, 5);
  j.off = 4;
  assert_int_equal(souk_store_read(fx->st, lb_fn, &j), 0);
  assert_int_equal(j.n, 1);
  assert_int_equal(j.rows[0].rank, 5);
  j.off = 5;
  assert_int_equal(souk_store_read(fx->st, lb_fn, &j), 0);
  assert_int_equal(j.n, 0);
  assert_int_equal(j.total, 5);
  /* An empty guild. */
  j.guild = 71;
  j.off = 0;
  assert_int_equal(souk_store_read(fx->st, lb_fn, &j), 0);
  assert_int_equal(j.n, 0);
  assert_int_equal(j.total, 0);
  souk_free(j.rows);

  /* market_value directly. */
  market_account_t a = {.cash_cents = 5};
  market_holding_t h[2] = {{"X", 3, 1}, {"Q", 2, 7}};
  int64_t v;
  size_t miss;
  assert_int_equal(market_value(&a, h, 2, tab_price, &tab, &v, &miss), 0);
  assert_int_equal(v, 5 + 900 + 7);
  assert_int_equal(miss, 1);
}

typedef struct snapjob2 {
  int64_t day;
  price_tab_t *tab;
  market_snapshot_stats_t stats;
} snapjob2_t;

typedef struct histjob {
  int64_t guild, user, before;
  int64_t value, day;
  int rc;
  market_history_point_t *pts;
  size_t n;
} histjob_t;

static int hist_fn(souk_db_t *db, void *ud) {
  histjob_t *j = ud;
  j->rc = market_history_prev(db, j->guild, 0, j->user, j->before, &j->value, &j->day);
  if (j->rc != 0 && j->rc != SOUK_ENOTFOUND) return j->rc;
  souk_free(j->pts);
  j->pts = NULL;
  return market_history_list(db, j->guild, 0, j->user, 30, &j->pts, &j->n);
}

static void test_snapshot(void **state) {
  FX();
  trade(fx, 80, 1, "X", MARKET_BUY, MARKET_BY_SHARES, 1000, 1000000, "d1"); /* $10 of X */
  trade(fx, 80, 2, "Y", MARKET_BUY, MARKET_BY_SHARES, 10, 1000000, "d2");
  trade(fx, 81, 1, "X", MARKET_BUY, MARKET_BY_SHARES, 1, 1000000, "d3");
  /* An old season's account is not valued. */
  trade(fx, 82, 9, "X", MARKET_BUY, MARKET_BY_SHARES, 1, 1000000, "d4");
  setjob_t sj = {.fx = fx, .guild = 82, .src = MARKET_SRC_SIM};
  assert_int_equal(souk_store_tx(fx->st, reset_fn, &sj), 0);

  price_tab_t tab = {{"X", "Y"}, {2000000, 500000}};
  market_snapshot_stats_t st;
  assert_int_equal(market_daily_snapshot_tx(fx->st, 20260101, tab_price, &tab, 1, &st), 0);
  assert_int_equal(st.accounts, 3);
  assert_int_equal(st.inserted, 3);
  assert_int_equal(st.existing, 0);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_history"), 3);
  /* u1 in 80: 100000000 - 100000 + 200000. */
  assert_int_equal(sql_int(fx, "SELECT last_value_cents FROM market_accounts WHERE guild_id = 80 "
                               "AND user_id = 1"),
                   100100000);
  /* Rerun the same day with other prices: nothing changes. */
  tab.price[0] = 9000000;
  assert_int_equal(market_daily_snapshot_tx(fx->st, 20260101, tab_price, &tab, 2, &st), 0);
  assert_int_equal(st.inserted, 0);
  assert_int_equal(st.existing, 3);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_history"), 3);
  assert_int_equal(sql_int(fx, "SELECT last_value_cents FROM market_accounts WHERE guild_id = 80 "
                               "AND user_id = 1"),
                   100100000);
  assert_int_equal(sql_int(fx, "SELECT value_cents FROM market_history WHERE guild_id = 80 AND "
                               "user_id = 1"),
                   100100000);
  /* The next day adds a row per account. */
  assert_int_equal(market_daily_snapshot_tx(fx->st, 20260102, tab_price, &tab, 3, &st), 0);
  assert_int_equal(st.inserted, 3);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_history"), 6);
  assert_int_equal(sql_int(fx, "SELECT last_value_cents FROM market_accounts WHERE guild_id = 80 "
                               "AND user_id = 1"),
                   100800000);
  /* Day change: the value before today, and the chart's points. */
  histjob_t h = {80, 1, 20260102, 0, 0, 0, NULL, 0};
  assert_int_equal(souk_store_read(fx->st, hist_fn, &h), 0);
  assert_int_equal(h.rc, 0);
  assert_int_equal(h.value, 100100000);
  assert_int_equal(h.day, 20260101);
  assert_int_equal(h.n, 2);
  assert_int_equal(h.pts[0].day, 20260101);
  assert_int_equal(h.pts[1].day, 20260102);
  assert_int_equal(h.pts[1].value_cents, 100800000);
  h.before = 20260101;
  assert_int_equal(souk_store_read(fx->st, hist_fn, &h), 0);
  assert_int_equal(h.rc, SOUK_ENOTFOUND);
  souk_free(h.pts);
  assert_int_equal(market_day_of(0), 19700101);
  assert_int_equal(market_day_of(1767225599999), 20251231);
  assert_int_equal(market_day_of(1767225600000), 20260101);
}

/* ---- symbols, last prices, forgetting ---- */

typedef struct symjob {
  int64_t guild;
  char (*syms)[MARKET_SYMBOL_MAX + 1];
  size_t n;
} symjob_t;

static int sym_fn(souk_db_t *db, void *ud) {
  symjob_t *j = ud;
  souk_free(j->syms);
  j->syms = NULL;
  return market_symbols_held(db, j->guild, &j->syms, &j->n);
}

static void test_symbols(void **state) {
  FX();
  trade(fx, 90, 1, "MSFT", MARKET_BUY, MARKET_BY_SHARES, 1, 1000000, "y1");
  trade(fx, 90, 2, "AAPL", MARKET_BUY, MARKET_BY_SHARES, 1, 1000000, "y2");
  trade(fx, 90, 3, "AAPL", MARKET_BUY, MARKET_BY_SHARES, 1, 1000000, "y3");
  trade(fx, 91, 1, "TSLA", MARKET_BUY, MARKET_BY_SHARES, 1, 1000000, "y4");
  trade(fx, 91, 1, "GONE", MARKET_BUY, MARKET_BY_SHARES, 1, 1000000, "y5");
  trade(fx, 91, 1, "GONE", MARKET_SELL, MARKET_SELL_ALL, 0, 1000000, "y6");
  symjob_t j = {90, NULL, 0};
  assert_int_equal(souk_store_read(fx->st, sym_fn, &j), 0);
  assert_int_equal(j.n, 2);
  assert_string_equal(j.syms[0], "AAPL");
  assert_string_equal(j.syms[1], "MSFT");
  j.guild = 0;
  assert_int_equal(souk_store_read(fx->st, sym_fn, &j), 0);
  assert_int_equal(j.n, 3);
  assert_string_equal(j.syms[2], "TSLA");
  souk_free(j.syms);
}

typedef struct lpjob {
  market_last_price_t in[3];
  size_t nin;
  market_last_price_t *out;
  size_t n;
} lpjob_t;

static int lp_save_fn(souk_db_t *db, void *ud) {
  lpjob_t *j = ud;
  return market_last_price_save(db, j->in, j->nin);
}

static int lp_load_fn(souk_db_t *db, void *ud) {
  lpjob_t *j = ud;
  souk_free(j->out);
  j->out = NULL;
  return market_last_price_load_all(db, &j->out, &j->n);
}

static void test_last_price(void **state) {
  FX();
  lpjob_t j = {.nin = 2};
  j.in[0] =
      (market_last_price_t){"MSFT", 412345600, 410000000, "finnhub", 1700000000000, 1700000000500};
  j.in[1] = (market_last_price_t){"AAPL", 189990000, 0, "sim", 5, 6};
  assert_int_equal(souk_store_tx(fx->st, lp_save_fn, &j), 0);
  assert_int_equal(souk_store_read(fx->st, lp_load_fn, &j), 0);
  assert_int_equal(j.n, 2);
  assert_string_equal(j.out[0].symbol, "AAPL");
  assert_string_equal(j.out[1].symbol, "MSFT");
  assert_int_equal(j.out[1].price_micro, 412345600);
  assert_int_equal(j.out[1].prev_close_micro, 410000000);
  assert_string_equal(j.out[1].source, "finnhub");
  assert_int_equal(j.out[1].quote_time_ms, 1700000000000);
  assert_int_equal(j.out[1].fetched_ms, 1700000000500);
  /* Saving again replaces. */
  j.in[0].price_micro = 1;
  snprintf(j.in[0].source, sizeof j.in[0].source, "polygon");
  j.nin = 1;
  assert_int_equal(souk_store_tx(fx->st, lp_save_fn, &j), 0);
  assert_int_equal(souk_store_read(fx->st, lp_load_fn, &j), 0);
  assert_int_equal(j.n, 2);
  assert_int_equal(j.out[1].price_micro, 1);
  assert_string_equal(j.out[1].source, "polygon");
  /* A bad price is refused before anything is written. */
  j.in[0].price_micro = 0;
  assert_int_equal(souk_store_tx(fx->st, lp_save_fn, &j), SOUK_EINVAL);
  souk_free(j.out);
}

typedef struct fgjob {
  int64_t user, deleted;
} fgjob_t;

static int forget_fn(souk_db_t *db, void *ud) {
  fgjob_t *j = ud;
  return market_forget_user(db, j->user, &j->deleted);
}

static void test_forget(void **state) {
  FX();
  trade(fx, 100, 1, "X", MARKET_BUY, MARKET_BY_SHARES, 1, 1000000, "f1");
  trade(fx, 101, 1, "X", MARKET_BUY, MARKET_BY_SHARES, 1, 1000000, "f2");
  trade(fx, 100, 2, "X", MARKET_BUY, MARKET_BY_SHARES, 1, 1000000, "f3");
  price_tab_t tab = {{"X"}, {1000000}};
  market_snapshot_stats_t st;
  assert_int_equal(market_daily_snapshot_tx(fx->st, 20260101, tab_price, &tab, 1, &st), 0);
  fgjob_t j = {1, 0};
  assert_int_equal(souk_store_tx(fx->st, forget_fn, &j), 0);
  assert_int_equal(j.deleted, 8); /* 2 each of accounts, holdings, trades, history */
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_accounts"), 1);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_transactions"), 1);
  /* Through the store's registry, as `souk db forget-user` does. */
  assert_int_equal(market_register_data(), 0);
  int64_t n = 0;
  assert_int_equal(souk_store_forget_user(fx->st, 2, &n), 0);
  assert_int_equal(n, 4);
  assert_int_equal(souk_store_purge_guild(fx->st, 100, &n), 0);
  assert_int_equal(n, 1); /* the settings row */
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_settings"), 1);
}

/* Each guild is valued from its own season's source: the same symbol has
 * a simulated and a live price, and neither guild gets the other's. */
static int by_source_price(void *ud, market_source_t source, const char *symbol,
                           int64_t *price_micro) {
  if (strcmp(symbol, "X") != 0) return SOUK_ENOTFOUND;
  *price_micro = source == MARKET_SRC_LIVE ? 3000000 : 2000000;
  return 0;
}

typedef struct srcsnap {
  market_snapshot_stats_t st;
} srcsnap_t;

static int srcsnap_fn(souk_db_t *db, void *ud) {
  srcsnap_t *j = ud;
  return market_daily_snapshot_by_source(db, 20260301, by_source_price, NULL, 5, &j->st);
}

static void test_snapshot_by_source(void **state) {
  FX();
  trade(fx, 70, 1, "X", MARKET_BUY, MARKET_BY_SHARES, 100, 1000000, "s1"); /* a sim season */
  market_settings_t live = fx->defs;
  live.source = MARKET_SRC_LIVE;
  market_trade_req_t r = req_make(fx, 71, 1, "X", MARKET_BUY, MARKET_BY_SHARES, 100, 1000000, "s2");
  r.source = MARKET_SRC_LIVE;
  r.defaults = &live;
  market_trade_t t;
  assert_int_equal(market_trade_tx(fx->st, &r, &t), 0);
  assert_int_equal(t.refusal, MARKET_TRADE_OK);
  srcsnap_t j = {0};
  assert_int_equal(souk_store_tx(fx->st, srcsnap_fn, &j), 0);
  assert_int_equal(j.st.inserted, 2);
  assert_int_equal(j.st.unpriced, 0);
  /* 100 shares bought at $1: cash 99,990,000 cents, then valued at $2
   * (simulated) and $3 (live). */
  assert_int_equal(sql_int(fx, "SELECT value_cents FROM market_history WHERE guild_id = 70"),
                   99990000 + 20000);
  assert_int_equal(sql_int(fx, "SELECT value_cents FROM market_history WHERE guild_id = 71"),
                   99990000 + 30000);
}

/* ---- players' names ---- */

typedef struct namejob {
  int op; /* 0 put, 1 update, 2 read */
  int64_t guild, user;
  const char *name;
  int64_t ids[3];
  char names[3][MARKET_NAME_MAX + 1];
} namejob_t;

static int name_fn(souk_db_t *db, void *ud) {
  namejob_t *j = ud;
  if (j->op == 0) return market_player_name_put(db, j->guild, j->user, j->name, 7);
  if (j->op == 1) return market_player_name_update(db, j->guild, j->user, j->name, 8);
  return market_player_names(db, j->guild, j->ids, 3, j->names);
}

static void name_op(fx_t *fx, int op, int64_t guild, int64_t user, const char *name) {
  namejob_t j = {.op = op, .guild = guild, .user = user, .name = name};
  assert_int_equal(souk_store_tx(fx->st, name_fn, &j), 0);
}

static void test_player_names(void **state) {
  FX();
  name_op(fx, 0, 10, 1, "Ann");
  name_op(fx, 0, 10, 2,
          "B\x01"
          "b\xff"); /* a control character and a stray byte */
  name_op(fx, 0, 11, 1, "Ann elsewhere");
  name_op(fx, 1, 10, 3, "Not a player"); /* update keeps no new name */
  name_op(fx, 0, 10, 1, "Ann");          /* the same name again: no write */
  assert_int_equal(sql_int(fx, "SELECT updated_at FROM market_players WHERE user_id = 1 AND "
                               "guild_id = 10"),
                   7);
  name_op(fx, 1, 10, 1, "Anna");
  namejob_t j = {.op = 2, .guild = 10, .ids = {3, 1, 2}};
  assert_int_equal(souk_store_read(fx->st, name_fn, &j), 0);
  assert_string_equal(j.names[0], "");
  assert_string_equal(j.names[1], "Anna");
  assert_string_equal(j.names[2], "B b");
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_players"), 3);
  /* A name longer than any Discord gives is cut on a character. */
  char lng[400] = "";
  for (int i = 0; i < 100; i++)
    strcat(lng, "\xc3\xa9"); /* 200 bytes of e-acute */
  name_op(fx, 0, 10, 4, lng);
  namejob_t k = {.op = 2, .guild = 10, .ids = {4, 0, 0}};
  assert_int_equal(souk_store_read(fx->st, name_fn, &k), 0);
  assert_int_equal(strlen(k.names[0]), MARKET_NAME_MAX);
  /* Forgetting a user removes their names in every guild. */
  assert_int_equal(market_register_data(), 0);
  int64_t n = 0;
  assert_int_equal(souk_store_forget_user(fx->st, 1, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(sql_int(fx, "SELECT count(*) FROM market_players WHERE user_id = 1"), 0);
}

#define T(fn, be) cmocka_unit_test_prestate_setup_teardown(fn, fx_setup, fx_teardown, &be)
#define ALL(be)                                                                                    \
  T(test_accounts, be), T(test_trades, be), T(test_history_list, be), T(test_refusals, be),        \
      T(test_idempotent, be), T(test_concurrent, be), T(test_season_reset, be),                    \
      T(test_leaderboard, be), T(test_snapshot, be), T(test_symbols, be), T(test_last_price, be),  \
      T(test_forget, be), T(test_snapshot_by_source, be), T(test_player_names, be)

int main(void) {
  souk_log_set_level(getenv("SOUK_TEST_DEBUG") ? SOUK_LOG_DEBUG : SOUK_LOG_OFF);
  const struct CMUnitTest sqlite_tests[] = {ALL(be_sqlite)};
  const struct CMUnitTest pg_tests[] = {ALL(be_pg)};
  int fails = cmocka_run_group_tests_name("market/sqlite", sqlite_tests, NULL, NULL);
  fails +=
      cmocka_run_group_tests_name("market/postgres", pg_tests, pg_group_setup, pg_group_teardown);
  souk_loop_close();
  return fails;
}
