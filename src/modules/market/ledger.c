/* The Market Sim's ledger (see ledger.h).
 *
 * How a trade stays exact under concurrency: SQLite write transactions
 * start with BEGIN IMMEDIATE, so they run one at a time; on PostgreSQL the
 * account row is read with SELECT ... FOR UPDATE, so a user's trades
 * queue behind each other and each sees the balances the previous one
 * committed (READ COMMITTED reads the latest committed row after the
 * lock).  On top of that every write is conditional on the values the
 * trade was computed from (cash = cash - ? WHERE cash = ? AND cash >= ?),
 * and CHECK constraints forbid negative cash, shares and cost, so even a
 * broken lock could only fail a trade, never overspend.
 *
 * The idempotency key is checked after the account lock is held: a retry
 * of a trade that committed while we waited sees its audit row and returns
 * it instead of trading again.  The audit row's UNIQUE idem_key is the last
 * line of defence (ON CONFLICT DO NOTHING, then SOUK_EEXIST). */
#include "ledger.h"

#include "money.h"
#include "souk/alloc.h"
#include "souk/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *market_source_name(market_source_t s) { return s == MARKET_SRC_LIVE ? "live" : "sim"; }

const char *market_hours_name(market_hours_t h) {
  return h == MARKET_HOURS_OPEN_ONLY ? "open_only" : "last_price";
}

static market_source_t source_parse(const char *s) {
  return s && !strcmp(s, "live") ? MARKET_SRC_LIVE : MARKET_SRC_SIM;
}

static market_hours_t hours_parse(const char *s) {
  return s && !strcmp(s, "open_only") ? MARKET_HOURS_OPEN_ONLY : MARKET_HOURS_LAST_PRICE;
}

const char *market_refusal_str(market_refusal_t r) {
  switch (r) {
  case MARKET_TRADE_OK:
    return "ok";
  case MARKET_REFUSE_CASH:
    return "not enough cash";
  case MARKET_REFUSE_SHARES:
    return "not enough shares";
  case MARKET_REFUSE_ZERO:
    return "that amount is zero shares";
  case MARKET_REFUSE_OVERFLOW:
    return "the amount is too large";
  case MARKET_REFUSE_SOURCE:
    return "the price comes from another source than this season's";
  case MARKET_REFUSE_COMMISSION:
    return "the sale is worth less than the commission";
  case MARKET_REFUSE_PRICE:
    return "no valid price";
  }
  return "refused";
}

/* ---- statement helpers ---- */

/* Prepare sql and bind the arguments described by fmt: 'i' an int64_t,
 * 's' a const char * (NULL binds NULL). */
static int prep(souk_db_t *db, souk_stmt_t **s, const char *sql, const char *fmt, ...) {
  *s = NULL;
  int rc = souk_db_prepare(db, sql, s);
  if (rc != 0) return rc;
  va_list ap;
  va_start(ap, fmt);
  for (int i = 0; fmt[i] && rc == 0; i++) {
    if (fmt[i] == 'i')
      rc = souk_stmt_bind_int64(*s, i + 1, va_arg(ap, int64_t));
    else
      rc = souk_stmt_bind_text(*s, i + 1, va_arg(ap, const char *), SIZE_MAX);
  }
  va_end(ap);
  if (rc != 0) {
    souk_stmt_finalize(*s);
    *s = NULL;
  }
  return rc;
}

/* Run a statement that returns no rows; *changes (may be NULL) gets the
 * rows it changed. */
static int run(souk_db_t *db, int64_t *changes, const char *sql, const char *fmt, ...) {
  souk_stmt_t *s = NULL;
  int rc = souk_db_prepare(db, sql, &s);
  if (rc != 0) return rc;
  va_list ap;
  va_start(ap, fmt);
  for (int i = 0; fmt[i] && rc == 0; i++) {
    if (fmt[i] == 'i')
      rc = souk_stmt_bind_int64(s, i + 1, va_arg(ap, int64_t));
    else
      rc = souk_stmt_bind_text(s, i + 1, va_arg(ap, const char *), SIZE_MAX);
  }
  va_end(ap);
  if (rc == 0) rc = souk_stmt_step(s);
  if (rc == 1) rc = 0; /* a statement with RETURNING is not used here */
  if (rc == 0 && changes) *changes = souk_stmt_changes(s);
  souk_stmt_finalize(s);
  return rc;
}

static void copy_text(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "");
}

static bool symbol_ok(const char *sym) {
  size_t n = sym ? strlen(sym) : 0;
  if (n == 0 || n > MARKET_SYMBOL_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)sym[i] <= ' ' || (unsigned char)sym[i] >= 0x7f) return false;
  return true;
}

/* ---- settings ---- */

void market_settings_defaults(market_settings_t *s, int64_t guild_id, market_source_t source) {
  memset(s, 0, sizeof *s);
  s->guild_id = guild_id;
  s->season = 1;
  s->start_cash_cents = 100000000; /* $1,000,000 */
  s->source = source;
  s->commission_cents = 0;
  s->dashboard_public = false;
  s->hours = MARKET_HOURS_LAST_PRICE;
}

static int settings_read(souk_db_t *db, int64_t guild_id, market_settings_t *out, bool *found) {
  souk_stmt_t *s;
  *found = false;
  int rc = prep(db, &s,
                "SELECT season, start_cash_cents, price_source, commission_cents, "
                "dashboard_public, hours_policy, season_started_at FROM market_settings "
                "WHERE guild_id = ?",
                "i", guild_id);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    memset(out, 0, sizeof *out);
    out->guild_id = guild_id;
    out->season = souk_stmt_column_int64(s, 0);
    out->start_cash_cents = souk_stmt_column_int64(s, 1);
    out->source = source_parse(souk_stmt_column_text(s, 2, NULL));
    out->commission_cents = souk_stmt_column_int64(s, 3);
    out->dashboard_public = souk_stmt_column_int64(s, 4) != 0;
    out->hours = hours_parse(souk_stmt_column_text(s, 5, NULL));
    out->season_started_at = souk_stmt_column_int64(s, 6);
    out->stored = true;
    *found = true;
    rc = 0;
  }
  souk_stmt_finalize(s);
  return rc;
}

static bool settings_valid(const market_settings_t *s) {
  return s && s->start_cash_cents >= 0 && s->commission_cents >= 0;
}

int market_settings_get(souk_db_t *db, int64_t guild_id, const market_settings_t *defaults,
                        market_settings_t *out) {
  if (!db || !defaults || !out) return SOUK_EINVAL;
  bool found;
  int rc = settings_read(db, guild_id, out, &found);
  if (rc == 0 && !found) {
    *out = *defaults;
    out->guild_id = guild_id;
    out->stored = false;
  }
  return rc;
}

static int settings_insert(souk_db_t *db, int64_t guild_id, const market_settings_t *d,
                           market_source_t source, int64_t now_ms) {
  return run(db, NULL,
             "INSERT INTO market_settings (guild_id, season, start_cash_cents, price_source, "
             "commission_cents, dashboard_public, hours_policy, season_started_at, updated_at) "
             "VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id) DO NOTHING",
             "iisiisii", guild_id, d->start_cash_cents, market_source_name(source),
             d->commission_cents, (int64_t)(d->dashboard_public ? 1 : 0),
             market_hours_name(d->hours), now_ms, now_ms);
}

int market_settings_ensure(souk_db_t *db, int64_t guild_id, const market_settings_t *defaults,
                           int64_t now_ms, market_settings_t *out) {
  if (!db || !settings_valid(defaults) || !out) return SOUK_EINVAL;
  bool found;
  int rc = settings_read(db, guild_id, out, &found);
  if (rc == 0 && !found) rc = settings_insert(db, guild_id, defaults, defaults->source, now_ms);
  if (rc == 0 && !found) rc = settings_read(db, guild_id, out, &found);
  if (rc == 0 && !found) rc = SOUK_EIO;
  return rc;
}

int market_settings_set(souk_db_t *db, const market_settings_t *s, int64_t now_ms) {
  if (!db || !settings_valid(s)) return SOUK_EINVAL;
  return run(db, NULL,
             "INSERT INTO market_settings (guild_id, season, start_cash_cents, price_source, "
             "commission_cents, dashboard_public, hours_policy, season_started_at, updated_at) "
             "VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET "
             "start_cash_cents = excluded.start_cash_cents, "
             "commission_cents = excluded.commission_cents, "
             "dashboard_public = excluded.dashboard_public, hours_policy = excluded.hours_policy, "
             "updated_at = excluded.updated_at",
             "iisiisii", s->guild_id, s->start_cash_cents, market_source_name(s->source),
             s->commission_cents, (int64_t)(s->dashboard_public ? 1 : 0),
             market_hours_name(s->hours), now_ms, now_ms);
}

int market_season_reset(souk_db_t *db, int64_t guild_id, const market_settings_t *defaults,
                        market_source_t new_source, int64_t now_ms, int64_t *season_out) {
  if (!db || !settings_valid(defaults)) return SOUK_EINVAL;
  market_settings_t cur;
  bool found;
  int rc = settings_read(db, guild_id, &cur, &found);
  if (rc == 0 && !found)
    rc = settings_insert(db, guild_id, defaults, new_source, now_ms);
  else if (rc == 0)
    rc = run(db, NULL,
             "UPDATE market_settings SET season = season + 1, price_source = ?, "
             "season_started_at = ?, updated_at = ? WHERE guild_id = ?",
             "siii", market_source_name(new_source), now_ms, now_ms, guild_id);
  if (rc == 0) rc = settings_read(db, guild_id, &cur, &found);
  if (rc == 0 && !found) rc = SOUK_EIO;
  if (rc == 0 && season_out) *season_out = cur.season;
  return rc;
}

/* Season 0 means the guild's current one (1 when it has no settings). */
static int resolve_season(souk_db_t *db, int64_t guild_id, int64_t *season) {
  if (*season > 0) return 0;
  market_settings_t s;
  bool found;
  int rc = settings_read(db, guild_id, &s, &found);
  if (rc == 0) *season = found ? s.season : 1;
  return rc;
}

/* ---- accounts ---- */

#define ACCOUNT_COLS                                                                               \
  "guild_id, season, user_id, cash_cents, initial_cents, last_value_cents, created_at"

static void account_row(souk_stmt_t *s, int c, market_account_t *a) {
  a->guild_id = souk_stmt_column_int64(s, c + 0);
  a->season = souk_stmt_column_int64(s, c + 1);
  a->user_id = souk_stmt_column_int64(s, c + 2);
  a->cash_cents = souk_stmt_column_int64(s, c + 3);
  a->initial_cents = souk_stmt_column_int64(s, c + 4);
  a->last_value_cents = souk_stmt_column_int64(s, c + 5);
  a->created_at = souk_stmt_column_int64(s, c + 6);
}

static int account_read(souk_db_t *db, int64_t guild_id, int64_t season, int64_t user_id, bool lock,
                        market_account_t *out) {
  souk_stmt_t *s;
  bool pg_lock = lock && souk_db_kind(db) == SOUK_STORE_POSTGRES;
  int rc = prep(db, &s,
                pg_lock ? "SELECT " ACCOUNT_COLS " FROM market_accounts WHERE guild_id = ? AND "
                          "season = ? AND user_id = ? FOR UPDATE"
                        : "SELECT " ACCOUNT_COLS " FROM market_accounts WHERE guild_id = ? AND "
                          "season = ? AND user_id = ?",
                "iii", guild_id, season, user_id);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    account_row(s, 0, out);
    rc = 0;
  } else if (rc == 0) {
    rc = SOUK_ENOTFOUND;
  }
  souk_stmt_finalize(s);
  return rc;
}

int market_account_get(souk_db_t *db, int64_t guild_id, int64_t season, int64_t user_id,
                       market_account_t *out) {
  if (!db || !out) return SOUK_EINVAL;
  memset(out, 0, sizeof *out);
  int rc = resolve_season(db, guild_id, &season);
  if (rc == 0) rc = account_read(db, guild_id, season, user_id, false, out);
  return rc;
}

/* Settings ensured, then the account created if missing and read (locked
 * on PostgreSQL). */
static int account_open(souk_db_t *db, int64_t guild_id, int64_t user_id,
                        const market_settings_t *defaults, int64_t now_ms, market_settings_t *set,
                        market_account_t *out, bool *created) {
  int64_t changes = 0;
  int rc = market_settings_ensure(db, guild_id, defaults, now_ms, set);
  if (rc == 0)
    rc = run(db, &changes,
             "INSERT INTO market_accounts (" ACCOUNT_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?) "
             "ON CONFLICT (guild_id, season, user_id) DO NOTHING",
             "iiiiiii", guild_id, set->season, user_id, set->start_cash_cents,
             set->start_cash_cents, set->start_cash_cents, now_ms);
  if (rc == 0) rc = account_read(db, guild_id, set->season, user_id, true, out);
  if (rc == SOUK_ENOTFOUND) rc = SOUK_EIO;
  if (created) *created = rc == 0 && changes > 0;
  return rc;
}

int market_account_get_or_create(souk_db_t *db, int64_t guild_id, int64_t user_id,
                                 const market_settings_t *defaults, int64_t now_ms,
                                 market_account_t *out, bool *created) {
  if (!db || !out) return SOUK_EINVAL;
  market_settings_t set;
  memset(out, 0, sizeof *out);
  return account_open(db, guild_id, user_id, defaults, now_ms, &set, out, created);
}

/* ---- trades ---- */

#define TX_COLS                                                                                    \
  "id, guild_id, season, user_id, side, symbol, shares, price_micro, amount_cents, "               \
  "commission_cents, cash_before, cash_after, realised_cents, price_source, price_time_ms, "       \
  "created_at"

static void trade_row(souk_stmt_t *s, market_trade_t *t) {
  memset(t, 0, sizeof *t);
  t->id = souk_stmt_column_int64(s, 0);
  t->guild_id = souk_stmt_column_int64(s, 1);
  t->season = souk_stmt_column_int64(s, 2);
  t->user_id = souk_stmt_column_int64(s, 3);
  const char *side = souk_stmt_column_text(s, 4, NULL);
  t->side = side && !strcmp(side, "sell") ? MARKET_SELL : MARKET_BUY;
  copy_text(t->symbol, sizeof t->symbol, souk_stmt_column_text(s, 5, NULL));
  t->shares = souk_stmt_column_int64(s, 6);
  t->price_micro = souk_stmt_column_int64(s, 7);
  t->amount_cents = souk_stmt_column_int64(s, 8);
  t->commission_cents = souk_stmt_column_int64(s, 9);
  t->cash_before = souk_stmt_column_int64(s, 10);
  t->cash_after = souk_stmt_column_int64(s, 11);
  t->realised_cents = souk_stmt_column_int64(s, 12);
  t->source = source_parse(souk_stmt_column_text(s, 13, NULL));
  t->price_time_ms = souk_stmt_column_int64(s, 14);
  t->created_at = souk_stmt_column_int64(s, 15);
}

int market_trade_by_key(souk_db_t *db, const char *idem_key, market_trade_t *out) {
  if (!db || !idem_key || !out) return SOUK_EINVAL;
  souk_stmt_t *s;
  int rc =
      prep(db, &s, "SELECT " TX_COLS " FROM market_transactions WHERE idem_key = ?", "s", idem_key);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    trade_row(s, out);
    rc = 0;
  } else if (rc == 0) {
    rc = SOUK_ENOTFOUND;
  }
  souk_stmt_finalize(s);
  return rc;
}

static int holding_read(souk_db_t *db, const market_account_t *a, const char *symbol,
                        int64_t *shares, int64_t *cost, bool *found) {
  souk_stmt_t *s;
  *shares = *cost = 0;
  *found = false;
  int rc = prep(db, &s,
                "SELECT shares, cost_cents FROM market_holdings WHERE guild_id = ? AND season = ? "
                "AND user_id = ? AND symbol = ?",
                "iiis", a->guild_id, a->season, a->user_id, symbol);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    *shares = souk_stmt_column_int64(s, 0);
    *cost = souk_stmt_column_int64(s, 1);
    *found = true;
    rc = 0;
  }
  souk_stmt_finalize(s);
  return rc;
}

/* Write a holding's new (shares, cost) when it still holds (old_shares,
 * old_cost): insert, update or delete at zero.  *ok is false when the row
 * was not as read (nothing written then). */
static int holding_write(souk_db_t *db, const market_account_t *a, const char *symbol, bool found,
                         int64_t old_shares, int64_t old_cost, int64_t shares, int64_t cost,
                         bool *ok) {
  int64_t changes = 0;
  int rc;
  if (!found)
    rc = run(db, &changes,
             "INSERT INTO market_holdings (guild_id, season, user_id, symbol, shares, cost_cents) "
             "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, season, user_id, symbol) DO NOTHING",
             "iiisii", a->guild_id, a->season, a->user_id, symbol, shares, cost);
  else if (shares == 0)
    rc = run(db, &changes,
             "DELETE FROM market_holdings WHERE guild_id = ? AND season = ? AND user_id = ? AND "
             "symbol = ? AND shares = ? AND cost_cents = ?",
             "iiisii", a->guild_id, a->season, a->user_id, symbol, old_shares, old_cost);
  else
    rc = run(db, &changes,
             "UPDATE market_holdings SET shares = ?, cost_cents = ? WHERE guild_id = ? AND "
             "season = ? AND user_id = ? AND symbol = ? AND shares = ? AND cost_cents = ?",
             "iiiiisii", shares, cost, a->guild_id, a->season, a->user_id, symbol, old_shares,
             old_cost);
  *ok = rc == 0 && changes == 1;
  return rc;
}

/* Move cash by delta (negative for a buy) when the balance is still
 * cash_before and stays >= 0.  *ok as holding_write. */
static int cash_write(souk_db_t *db, const market_account_t *a, int64_t delta, bool *ok) {
  int64_t changes = 0;
  int64_t need = delta < 0 ? -delta : 0;
  int rc = run(db, &changes,
               "UPDATE market_accounts SET cash_cents = cash_cents + ? WHERE guild_id = ? AND "
               "season = ? AND user_id = ? AND cash_cents = ? AND cash_cents >= ?",
               "iiiiii", delta, a->guild_id, a->season, a->user_id, a->cash_cents, need);
  *ok = rc == 0 && changes == 1;
  return rc;
}

static market_refusal_t refuse_rc(int rc) {
  return rc == SOUK_ERANGE ? MARKET_REFUSE_OVERFLOW : MARKET_REFUSE_ZERO;
}

/* Is trade t, stored under a key, what req asks for again?  A redelivered
 * command repeats its account, side, symbol and share count (its price may
 * differ); anything else under the key is a reused key. */
static bool same_request(const market_trade_t *t, const market_trade_req_t *req) {
  return t->guild_id == req->guild_id && t->user_id == req->user_id && t->side == req->side &&
         strcmp(t->symbol, req->symbol) == 0 &&
         (req->mode != MARKET_BY_SHARES || t->shares == req->shares);
}

/* A trade's holding as read, and what it becomes. */
typedef struct position {
  int64_t held, cost; /* shares held and their cost basis, in cents */
  bool found;         /* a row exists */
  int64_t new_shares, new_cost;
} position_t;

/* The request is one market_trade can carry out. */
static bool trade_req_ok(const market_trade_req_t *req) {
  return symbol_ok(req->symbol) && req->idem_key && req->idem_key[0] && req->defaults &&
         (req->side == MARKET_BUY || req->side == MARKET_SELL) &&
         (req->mode == MARKET_BY_SHARES || req->mode == MARKET_BY_AMOUNT ||
          req->mode == MARKET_SELL_ALL) &&
         (req->mode != MARKET_SELL_ALL || req->side == MARKET_SELL);
}

/* Refuse the trade: nothing was written, and that is a success. */
static int refuse(market_trade_t *out, market_refusal_t why) {
  out->refusal = why;
  return 0;
}

/* Open (or read) the account, answer a redelivery with the trade already
 * made under its key, and fill what every trade records.  Returns 0 with
 * *go set when the trade is still to be made; 0 without it when out is the
 * answer (a duplicate, or a refusal); or an error. */
static int trade_begin(souk_db_t *db, const market_trade_req_t *req, market_trade_t *out,
                       market_settings_t *set, market_account_t *a, bool *go) {
  *go = false;
  int rc = account_open(db, req->guild_id, req->user_id, req->defaults, req->now_ms, set, a, NULL);
  if (rc != 0) return rc;
  /* With the account locked, a trade already made under this key is
   * visible: answer with it. */
  rc = market_trade_by_key(db, req->idem_key, out);
  if (rc == 0) {
    /* The same key must mean the same request: a redelivery of this very
     * command.  Another account's trade, or another side or symbol under
     * the key, is a key reused by mistake, never "already done". */
    if (!same_request(out, req)) {
      memset(out, 0, sizeof *out);
      return SOUK_EEXIST;
    }
    out->duplicate = true;
    return 0;
  }
  if (rc != SOUK_ENOTFOUND) return rc;
  memset(out, 0, sizeof *out);
  out->guild_id = req->guild_id;
  out->season = a->season;
  out->user_id = req->user_id;
  out->side = req->side;
  copy_text(out->symbol, sizeof out->symbol, req->symbol);
  out->price_micro = req->price_micro;
  out->source = req->source;
  out->price_time_ms = req->price_time_ms;
  out->created_at = req->now_ms;
  out->commission_cents = set->commission_cents;
  out->cash_before = a->cash_cents;
  if (req->source != set->source) return refuse(out, MARKET_REFUSE_SOURCE);
  if (req->price_micro <= 0) return refuse(out, MARKET_REFUSE_PRICE);
  *go = true;
  return 0;
}

/* A buy: the shares asked for (or that the amount pays for, commission
 * included), cost rounded up; cash is written first, so when it was not
 * as read nothing has been written. */
static int trade_buy(souk_db_t *db, const market_trade_req_t *req, const market_account_t *a,
                     position_t *pos, market_trade_t *out) {
  int64_t comm = out->commission_cents, shares = 0, gross = 0, total = 0;
  int mrc = 0;
  if (req->mode == MARKET_BY_SHARES)
    shares = req->shares;
  else if (req->amount_cents > 0)
    mrc = market_shares_for_amount(req->price_micro, req->amount_cents, comm, &shares);
  if (mrc == 0 && shares <= 0) mrc = SOUK_EINVAL;
  if (mrc == 0) mrc = market_gross_up(req->price_micro, shares, &gross);
  if (mrc == 0) mrc = market_add(gross, comm, &total);
  if (mrc == 0) mrc = market_add(pos->held, shares, &pos->new_shares);
  if (mrc == 0) mrc = market_add(pos->cost, total, &pos->new_cost);
  if (mrc != 0) return refuse(out, refuse_rc(mrc));
  if (total > a->cash_cents) return refuse(out, MARKET_REFUSE_CASH);
  bool ok;
  int rc = cash_write(db, a, -total, &ok);
  if (rc != 0) return rc;
  if (!ok) return refuse(out, MARKET_REFUSE_CASH);
  rc = holding_write(db, a, req->symbol, pos->found, pos->held, pos->cost, pos->new_shares,
                     pos->new_cost, &ok);
  if (rc != 0) return rc;
  if (!ok) return SOUK_EBUSY; /* cash already moved: roll the whole trade back */
  out->shares = shares;
  out->amount_cents = gross;
  out->cash_after = a->cash_cents - total; /* checked above */
  return 0;
}

/* A sale: the shares asked for (all of them, or those the amount is
 * worth), proceeds rounded down and the cost basis removed in proportion;
 * the holding is written first, so when it was not as read nothing has
 * been written. */
static int trade_sell(souk_db_t *db, const market_trade_req_t *req, const market_account_t *a,
                      position_t *pos, market_trade_t *out) {
  if (pos->held <= 0) return refuse(out, MARKET_REFUSE_SHARES);
  int64_t comm = out->commission_cents, shares = 0;
  int mrc = 0;
  if (req->mode == MARKET_SELL_ALL)
    shares = pos->held;
  else if (req->mode == MARKET_BY_SHARES)
    shares = req->shares;
  else if (req->amount_cents > 0)
    mrc = market_shares_worth(req->price_micro, req->amount_cents, &shares);
  if (mrc == 0 && shares <= 0) mrc = SOUK_EINVAL;
  if (mrc != 0) return refuse(out, refuse_rc(mrc));
  if (shares > pos->held) return refuse(out, MARKET_REFUSE_SHARES);
  int64_t gross = 0, proceeds = 0, removed = 0, realised = 0, cash_after = 0;
  mrc = market_gross_down(req->price_micro, shares, &gross);
  if (mrc == 0) mrc = market_sub(gross, comm, &proceeds);
  if (mrc == 0 && proceeds < 0) return refuse(out, MARKET_REFUSE_COMMISSION);
  if (mrc == 0) mrc = market_cost_removed(pos->cost, pos->held, shares, &removed);
  if (mrc == 0) mrc = market_sub(proceeds, removed, &realised);
  if (mrc == 0) mrc = market_add(a->cash_cents, proceeds, &cash_after);
  if (mrc != 0) return refuse(out, MARKET_REFUSE_OVERFLOW);
  pos->new_shares = pos->held - shares;
  pos->new_cost = pos->cost - removed;
  bool ok;
  int rc = holding_write(db, a, req->symbol, true, pos->held, pos->cost, pos->new_shares,
                         pos->new_cost, &ok);
  if (rc != 0) return rc;
  if (!ok) return refuse(out, MARKET_REFUSE_SHARES);
  rc = cash_write(db, a, proceeds, &ok);
  if (rc != 0) return rc;
  if (!ok) return SOUK_EBUSY;
  out->shares = shares;
  out->amount_cents = gross;
  out->cash_after = cash_after;
  out->realised_cents = realised;
  out->cost_removed_cents = removed;
  return 0;
}

/* The transaction's row, under the idempotency key. */
static int trade_record(souk_db_t *db, const market_trade_req_t *req, market_trade_t *out) {
  souk_stmt_t *s;
  int rc = prep(db, &s,
                "INSERT INTO market_transactions (guild_id, season, user_id, side, symbol, shares, "
                "price_micro, amount_cents, commission_cents, cash_before, cash_after, "
                "realised_cents, price_source, price_time_ms, created_at, idem_key) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (idem_key) DO NOTHING RETURNING id",
                "iiissiiiiiiisiis", out->guild_id, out->season, out->user_id,
                req->side == MARKET_BUY ? "buy" : "sell", out->symbol, out->shares,
                out->price_micro, out->amount_cents, out->commission_cents, out->cash_before,
                out->cash_after, out->realised_cents, market_source_name(out->source),
                out->price_time_ms, out->created_at, req->idem_key);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    out->id = souk_stmt_column_int64(s, 0);
    rc = 0;
  } else if (rc == 0) {
    rc = SOUK_EEXIST; /* another transaction committed this key first */
  }
  souk_stmt_finalize(s);
  return rc;
}

int market_trade(souk_db_t *db, const market_trade_req_t *req, market_trade_t *out) {
  if (!db || !req || !out) return SOUK_EINVAL;
  memset(out, 0, sizeof *out);
  if (!trade_req_ok(req)) return SOUK_EINVAL;
  market_settings_t set;
  market_account_t a;
  bool go;
  int rc = trade_begin(db, req, out, &set, &a, &go);
  if (rc != 0 || !go) return rc;
  position_t pos = {0};
  rc = holding_read(db, &a, req->symbol, &pos.held, &pos.cost, &pos.found);
  if (rc != 0) return rc;
  rc = req->side == MARKET_BUY ? trade_buy(db, req, &a, &pos, out)
                               : trade_sell(db, req, &a, &pos, out);
  if (rc != 0 || out->refusal != MARKET_TRADE_OK) return rc;
  out->holding_shares = pos.new_shares;
  out->holding_cost_cents = pos.new_cost;
  return trade_record(db, req, out);
}

typedef struct trade_job {
  const market_trade_req_t *req;
  market_trade_t *out;
  const char *key;
} trade_job_t;

static int trade_fn(souk_db_t *db, void *ud) {
  trade_job_t *j = ud;
  return market_trade(db, j->req, j->out);
}

static int trade_key_fn(souk_db_t *db, void *ud) {
  trade_job_t *j = ud;
  int rc = market_trade_by_key(db, j->key, j->out);
  if (rc == 0) j->out->duplicate = true;
  return rc;
}

int market_trade_tx(souk_store_t *st, const market_trade_req_t *req, market_trade_t *out) {
  if (!st || !req || !out) return SOUK_EINVAL;
  trade_job_t j = {req, out, req->idem_key};
  int rc = souk_store_tx(st, trade_fn, &j);
  if (rc == SOUK_EEXIST) {
    rc = souk_store_read(st, trade_key_fn, &j);
    if (rc == 0 && !same_request(out, req)) {
      memset(out, 0, sizeof *out);
      rc = SOUK_EEXIST;
    } else if (rc == SOUK_ENOTFOUND) {
      rc = SOUK_EEXIST;
    }
  }
  return rc;
}

/* ---- portfolios, books, symbols ---- */

static int book_read(souk_db_t *db, int64_t guild_id, int64_t season, int64_t user_id,
                     market_book_t *out);

int market_portfolio_get(souk_db_t *db, int64_t guild_id, int64_t season, int64_t user_id,
                         market_portfolio_t *out) {
  if (!db || !out) return SOUK_EINVAL;
  memset(out, 0, sizeof *out);
  market_book_t b = {0};
  int rc = resolve_season(db, guild_id, &season);
  if (rc == 0) rc = book_read(db, guild_id, season, user_id, &b);
  if (rc == 0 && b.n == 1) {
    out->exists = true;
    out->account = b.accounts[0];
    out->holdings = b.holdings; /* the portfolio takes the array over */
    out->n = b.nholdings;
    b.holdings = NULL;
  }
  market_book_free(&b);
  return rc;
}

void market_portfolio_free(market_portfolio_t *p) {
  if (!p) return;
  souk_free(p->holdings);
  memset(p, 0, sizeof *p);
}

int market_tx_list(souk_db_t *db, int64_t guild_id, int64_t season, int64_t user_id, int64_t offset,
                   int64_t limit, market_trade_t **out, size_t *n) {
  if (!db || !out || !n || offset < 0 || limit < 1 || limit > 1000) return SOUK_EINVAL;
  *out = NULL;
  *n = 0;
  int rc = resolve_season(db, guild_id, &season);
  souk_stmt_t *s;
  if (rc == 0)
    rc = prep(db, &s,
              "SELECT " TX_COLS " FROM market_transactions WHERE guild_id = ? AND season = ? AND "
              "user_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
              "iiiii", guild_id, season, user_id, limit, offset);
  if (rc != 0) return rc;
  size_t cap = 0;
  while ((rc = souk_stmt_step(s)) == 1) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 8;
      *out = souk_reallocarray(*out, cap, sizeof **out);
    }
    trade_row(s, &(*out)[(*n)++]);
  }
  souk_stmt_finalize(s);
  if (rc != 0) {
    souk_free(*out);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

void market_book_free(market_book_t *b) {
  if (!b) return;
  souk_free(b->accounts);
  souk_free(b->holdings);
  souk_free(b->first);
  souk_free(b->count);
  memset(b, 0, sizeof *b);
}

/* Read accounts with their holdings in ONE statement, so that on
 * PostgreSQL (READ COMMITTED: each statement its own snapshot) a trade
 * committing meanwhile cannot show its cash change without its shares or
 * the other way round.  user_id 0: every account of the guild's season. */
static int book_read(souk_db_t *db, int64_t guild_id, int64_t season, int64_t user_id,
                     market_book_t *out) {
  souk_stmt_t *s = NULL;
  int rc = user_id
               ? prep(db, &s,
                      "SELECT a.guild_id, a.season, a.user_id, a.cash_cents, a.initial_cents, "
                      "a.last_value_cents, a.created_at, h.symbol, h.shares, h.cost_cents "
                      "FROM market_accounts a LEFT JOIN market_holdings h ON h.guild_id = "
                      "a.guild_id AND h.season = a.season AND h.user_id = a.user_id "
                      "WHERE a.guild_id = ? AND a.season = ? AND a.user_id = ? ORDER BY h.symbol",
                      "iii", guild_id, season, user_id)
               : prep(db, &s,
                      "SELECT a.guild_id, a.season, a.user_id, a.cash_cents, a.initial_cents, "
                      "a.last_value_cents, a.created_at, h.symbol, h.shares, h.cost_cents "
                      "FROM market_accounts a LEFT JOIN market_holdings h ON h.guild_id = "
                      "a.guild_id AND h.season = a.season AND h.user_id = a.user_id "
                      "WHERE a.guild_id = ? AND a.season = ? ORDER BY a.user_id, h.symbol",
                      "ii", guild_id, season);
  if (rc != 0) return rc;
  size_t acap = 0, hcap = 0;
  while ((rc = souk_stmt_step(s)) == 1) {
    int64_t uid = souk_stmt_column_int64(s, 2);
    if (out->n == 0 || out->accounts[out->n - 1].user_id != uid) {
      if (out->n == acap) {
        acap = acap ? acap * 2 : 16;
        out->accounts = souk_reallocarray(out->accounts, acap, sizeof *out->accounts);
        out->first = souk_reallocarray(out->first, acap, sizeof *out->first);
        out->count = souk_reallocarray(out->count, acap, sizeof *out->count);
      }
      account_row(s, 0, &out->accounts[out->n]);
      out->first[out->n] = out->nholdings;
      out->count[out->n] = 0;
      out->n++;
    }
    if (souk_stmt_column_type(s, 7) == SOUK_COL_NULL) continue; /* no holdings */
    if (out->nholdings == hcap) {
      hcap = hcap ? hcap * 2 : 16;
      out->holdings = souk_reallocarray(out->holdings, hcap, sizeof *out->holdings);
    }
    market_holding_t *h = &out->holdings[out->nholdings++];
    memset(h, 0, sizeof *h);
    copy_text(h->symbol, sizeof h->symbol, souk_stmt_column_text(s, 7, NULL));
    h->shares = souk_stmt_column_int64(s, 8);
    h->cost_cents = souk_stmt_column_int64(s, 9);
    out->count[out->n - 1]++;
  }
  souk_stmt_finalize(s);
  return rc;
}

int market_book_get(souk_db_t *db, int64_t guild_id, int64_t season, market_book_t *out) {
  if (!db || !out) return SOUK_EINVAL;
  memset(out, 0, sizeof *out);
  int rc = resolve_season(db, guild_id, &season);
  if (rc == 0) rc = book_read(db, guild_id, season, 0, out);
  if (rc != 0) market_book_free(out);
  return rc;
}

int market_symbols_held(souk_db_t *db, int64_t guild_id, char (**out)[MARKET_SYMBOL_MAX + 1],
                        size_t *n) {
  if (!db || !out || !n) return SOUK_EINVAL;
  *out = NULL;
  *n = 0;
  souk_stmt_t *s;
  int rc = guild_id
               ? prep(db, &s,
                      "SELECT DISTINCT h.symbol FROM market_holdings h JOIN market_settings g "
                      "ON g.guild_id = h.guild_id AND g.season = h.season WHERE h.guild_id = ? "
                      "AND h.shares > 0 ORDER BY h.symbol",
                      "i", guild_id)
               : prep(db, &s,
                      "SELECT DISTINCT h.symbol FROM market_holdings h JOIN market_settings g "
                      "ON g.guild_id = h.guild_id AND g.season = h.season WHERE h.shares > 0 "
                      "ORDER BY h.symbol",
                      "");
  if (rc != 0) return rc;
  size_t cap = 0;
  while ((rc = souk_stmt_step(s)) == 1) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      *out = souk_reallocarray(*out, cap, sizeof **out);
    }
    copy_text((*out)[(*n)++], MARKET_SYMBOL_MAX + 1, souk_stmt_column_text(s, 0, NULL));
  }
  souk_stmt_finalize(s);
  if (rc != 0) {
    souk_free(*out);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

/* ---- valuation and ranking ---- */

int market_value(const market_account_t *a, const market_holding_t *h, size_t n,
                 market_price_cb price, void *ud, int64_t *value_cents, size_t *unpriced) {
  if (!a || (n && !h) || !price || !value_cents) return SOUK_EINVAL;
  int64_t v = a->cash_cents;
  size_t miss = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t p = 0, hv = 0;
    int rc = price(ud, h[i].symbol, &p);
    if (rc == 0 && p > 0) {
      rc = market_gross_down(p, h[i].shares, &hv);
      if (rc != 0) return rc;
    } else {
      hv = h[i].cost_cents;
      miss++;
    }
    if (market_add(v, hv, &v) != 0) return SOUK_ERANGE;
  }
  *value_cents = v;
  if (unpriced) *unpriced = miss;
  return 0;
}

typedef struct rank_sort {
  market_rank_t r;
  market_rank_by_t by;
} rank_sort_t;

static int rank_cmp(const void *pa, const void *pb) {
  const rank_sort_t *a = pa, *b = pb;
  if (a->by == MARKET_RANK_ROI && a->r.roi_bp != b->r.roi_bp)
    return a->r.roi_bp > b->r.roi_bp ? -1 : 1;
  if (a->r.value_cents != b->r.value_cents) return a->r.value_cents > b->r.value_cents ? -1 : 1;
  if (a->r.roi_bp != b->r.roi_bp) return a->r.roi_bp > b->r.roi_bp ? -1 : 1;
  return a->r.user_id < b->r.user_id ? -1 : a->r.user_id > b->r.user_id;
}

int market_leaderboard(souk_db_t *db, int64_t guild_id, int64_t season, market_rank_by_t by,
                       market_price_cb price, void *ud, int64_t offset, int64_t limit,
                       market_rank_t **out, size_t *n, size_t *total) {
  if (!db || !price || !out || !n || offset < 0 || limit < 1 || limit > 1000) return SOUK_EINVAL;
  *out = NULL;
  *n = 0;
  if (total) *total = 0;
  market_book_t b;
  int rc = market_book_get(db, guild_id, season, &b);
  if (rc != 0) return rc;
  rank_sort_t *rs = souk_calloc(b.n ? b.n : 1, sizeof *rs);
  for (size_t i = 0; i < b.n; i++) {
    const market_account_t *a = &b.accounts[i];
    rank_sort_t *r = &rs[i];
    r->by = by;
    r->r.user_id = a->user_id;
    r->r.initial_cents = a->initial_cents;
    const market_holding_t *h = b.count[i] ? &b.holdings[b.first[i]] : NULL;
    /* A value too large for int64 ranks as the largest there is. */
    if (market_value(a, h, b.count[i], price, ud, &r->r.value_cents, NULL) != 0)
      r->r.value_cents = INT64_MAX;
    if (a->initial_cents > 0 &&
        market_roi_bp(r->r.value_cents, a->initial_cents, &r->r.roi_bp) != 0)
      r->r.roi_bp = INT64_MAX;
  }
  qsort(rs, b.n, sizeof *rs, rank_cmp);
  if ((uint64_t)offset < b.n) {
    size_t take = b.n - (size_t)offset;
    if (take > (size_t)limit) take = (size_t)limit;
    *out = souk_calloc(take, sizeof **out);
    for (size_t i = 0; i < take; i++) {
      (*out)[i] = rs[(size_t)offset + i].r;
      (*out)[i].rank = offset + (int64_t)i + 1;
    }
    *n = take;
  }
  if (total) *total = b.n;
  souk_free(rs);
  market_book_free(&b);
  return 0;
}

/* ---- daily snapshots and history ---- */

int64_t market_day_of(int64_t unix_ms) {
  time_t t = (time_t)(unix_ms / 1000);
  struct tm tm;
  if (!gmtime_r(&t, &tm)) return 0;
  return (int64_t)(tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

typedef struct guild_season {
  int64_t guild_id, season;
  market_source_t source;
} guild_season_t;

/* A market_price_cb for one guild's source. */
typedef struct src_price {
  market_source_price_cb fn;
  void *ud;
  market_source_t source;
} src_price_t;

static int src_price(void *ud, const char *symbol, int64_t *price_micro) {
  const src_price_t *p = ud;
  return p->fn(p->ud, p->source, symbol, price_micro);
}

/* One price function for every guild, whatever its source. */
typedef struct any_price {
  market_price_cb fn;
  void *ud;
} any_price_t;

static int any_price(void *ud, market_source_t source, const char *symbol, int64_t *price_micro) {
  const any_price_t *p = ud;
  return p->fn(p->ud, symbol, price_micro);
}

int market_daily_snapshot(souk_db_t *db, int64_t day, market_price_cb price, void *ud,
                          int64_t now_ms, market_snapshot_stats_t *stats) {
  if (!price) return SOUK_EINVAL;
  any_price_t a = {price, ud};
  return market_daily_snapshot_by_source(db, day, any_price, &a, now_ms, stats);
}

int market_daily_snapshot_by_source(souk_db_t *db, int64_t day, market_source_price_cb price,
                                    void *ud, int64_t now_ms, market_snapshot_stats_t *stats) {
  if (!db || !price || !stats || day <= 0) return SOUK_EINVAL;
  memset(stats, 0, sizeof *stats);
  souk_stmt_t *s;
  int rc = prep(db, &s,
                "SELECT guild_id, season, price_source FROM market_settings ORDER BY guild_id", "");
  if (rc != 0) return rc;
  guild_season_t *gs = NULL;
  size_t ng = 0, cap = 0;
  while ((rc = souk_stmt_step(s)) == 1) {
    if (ng == cap) {
      cap = cap ? cap * 2 : 16;
      gs = souk_reallocarray(gs, cap, sizeof *gs);
    }
    gs[ng].guild_id = souk_stmt_column_int64(s, 0);
    gs[ng].season = souk_stmt_column_int64(s, 1);
    const char *src = souk_stmt_column_text(s, 2, NULL);
    gs[ng++].source = src && strcmp(src, "live") == 0 ? MARKET_SRC_LIVE : MARKET_SRC_SIM;
  }
  souk_stmt_finalize(s);
  for (size_t g = 0; rc == 0 && g < ng; g++) {
    market_book_t b;
    rc = market_book_get(db, gs[g].guild_id, gs[g].season, &b);
    if (rc != 0) break;
    /* Each guild is valued with its own season's source only. */
    src_price_t sp = {price, ud, gs[g].source};
    for (size_t i = 0; rc == 0 && i < b.n; i++) {
      const market_account_t *a = &b.accounts[i];
      const market_holding_t *h = b.count[i] ? &b.holdings[b.first[i]] : NULL;
      int64_t v = 0, changes = 0;
      size_t miss = 0;
      if (market_value(a, h, b.count[i], src_price, &sp, &v, &miss) != 0) v = INT64_MAX;
      /* The day's row decides: when it already exists this run is a rerun
       * and leaves both it and last_value as the first run wrote them. */
      rc = run(db, &changes,
               "INSERT INTO market_history (guild_id, season, user_id, day, value_cents, "
               "created_at) VALUES (?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (guild_id, season, user_id, day) DO NOTHING",
               "iiiiii", a->guild_id, a->season, a->user_id, day, v, now_ms);
      if (rc == 0 && changes == 0) {
        stats->existing++;
        continue;
      }
      if (rc == 0)
        rc = run(db, NULL,
                 "UPDATE market_accounts SET last_value_cents = ? WHERE guild_id = ? AND "
                 "season = ? AND user_id = ?",
                 "iiii", v, a->guild_id, a->season, a->user_id);
      if (rc == 0) {
        stats->inserted++;
        stats->accounts++;
        stats->unpriced += (int64_t)miss;
      }
    }
    market_book_free(&b);
  }
  souk_free(gs);
  return rc;
}

typedef struct snap_job {
  int64_t day, now_ms;
  market_price_cb price;
  void *ud;
  market_snapshot_stats_t *stats;
} snap_job_t;

static int snap_fn(souk_db_t *db, void *ud) {
  snap_job_t *j = ud;
  return market_daily_snapshot(db, j->day, j->price, j->ud, j->now_ms, j->stats);
}

int market_daily_snapshot_tx(souk_store_t *st, int64_t day, market_price_cb price, void *ud,
                             int64_t now_ms, market_snapshot_stats_t *stats) {
  if (!st) return SOUK_EINVAL;
  snap_job_t j = {day, now_ms, price, ud, stats};
  return souk_store_tx(st, snap_fn, &j);
}

int market_history_prev(souk_db_t *db, int64_t guild_id, int64_t season, int64_t user_id,
                        int64_t before_day, int64_t *value_cents, int64_t *day) {
  if (!db || !value_cents) return SOUK_EINVAL;
  int rc = resolve_season(db, guild_id, &season);
  souk_stmt_t *s;
  if (rc == 0)
    rc = prep(db, &s,
              "SELECT value_cents, day FROM market_history WHERE guild_id = ? AND season = ? AND "
              "user_id = ? AND day < ? ORDER BY day DESC LIMIT 1",
              "iiii", guild_id, season, user_id, before_day);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    *value_cents = souk_stmt_column_int64(s, 0);
    if (day) *day = souk_stmt_column_int64(s, 1);
    rc = 0;
  } else if (rc == 0) {
    rc = SOUK_ENOTFOUND;
  }
  souk_stmt_finalize(s);
  return rc;
}

int market_history_list(souk_db_t *db, int64_t guild_id, int64_t season, int64_t user_id,
                        int64_t limit, market_history_point_t **out, size_t *n) {
  if (!db || !out || !n || limit < 1 || limit > 3660) return SOUK_EINVAL;
  *out = NULL;
  *n = 0;
  int rc = resolve_season(db, guild_id, &season);
  souk_stmt_t *s;
  if (rc == 0)
    rc = prep(db, &s,
              "SELECT day, value_cents FROM market_history WHERE guild_id = ? AND season = ? AND "
              "user_id = ? ORDER BY day DESC LIMIT ?",
              "iiii", guild_id, season, user_id, limit);
  if (rc != 0) return rc;
  size_t cap = 0;
  while ((rc = souk_stmt_step(s)) == 1) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 32;
      *out = souk_reallocarray(*out, cap, sizeof **out);
    }
    (*out)[*n].day = souk_stmt_column_int64(s, 0);
    (*out)[(*n)++].value_cents = souk_stmt_column_int64(s, 1);
  }
  souk_stmt_finalize(s);
  if (rc != 0) {
    souk_free(*out);
    *out = NULL;
    *n = 0;
    return rc;
  }
  for (size_t i = 0; i < *n / 2; i++) { /* newest first -> oldest first */
    market_history_point_t t = (*out)[i];
    (*out)[i] = (*out)[*n - 1 - i];
    (*out)[*n - 1 - i] = t;
  }
  return 0;
}

/* ---- the persisted price cache ---- */

/* Newer wins: writes can arrive out of order (a background save and a
 * flush in flight together, a second process), so a row replaces the
 * stored one only when it was fetched no earlier. */
int market_last_price_save(souk_db_t *db, const market_last_price_t *p, size_t n) {
  if (!db || (n && !p)) return SOUK_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!symbol_ok(p[i].symbol) || p[i].price_micro <= 0) return SOUK_EINVAL;
  souk_stmt_t *s = NULL;
  int rc =
      souk_db_prepare(db,
                      "INSERT INTO market_last_price (symbol, price_micro, prev_close_micro, "
                      "source, quote_time_ms, fetched_ms) VALUES (?, ?, ?, ?, ?, ?) "
                      "ON CONFLICT (symbol) DO UPDATE SET price_micro = excluded.price_micro, "
                      "prev_close_micro = excluded.prev_close_micro, source = excluded.source, "
                      "quote_time_ms = excluded.quote_time_ms, fetched_ms = excluded.fetched_ms "
                      "WHERE excluded.fetched_ms >= market_last_price.fetched_ms",
                      &s);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (i) rc = souk_stmt_reset(s);
    if (rc == 0) rc = souk_stmt_bind_text(s, 1, p[i].symbol, SIZE_MAX);
    if (rc == 0) rc = souk_stmt_bind_int64(s, 2, p[i].price_micro);
    if (rc == 0) rc = souk_stmt_bind_int64(s, 3, p[i].prev_close_micro);
    if (rc == 0) rc = souk_stmt_bind_text(s, 4, p[i].source, SIZE_MAX);
    if (rc == 0) rc = souk_stmt_bind_int64(s, 5, p[i].quote_time_ms);
    if (rc == 0) rc = souk_stmt_bind_int64(s, 6, p[i].fetched_ms);
    if (rc == 0) rc = souk_stmt_step(s);
  }
  souk_stmt_finalize(s);
  return rc;
}

int market_last_price_load_all(souk_db_t *db, market_last_price_t **out, size_t *n) {
  if (!db || !out || !n) return SOUK_EINVAL;
  *out = NULL;
  *n = 0;
  souk_stmt_t *s;
  int rc = prep(db, &s,
                "SELECT symbol, price_micro, prev_close_micro, source, quote_time_ms, fetched_ms "
                "FROM market_last_price ORDER BY symbol",
                "");
  if (rc != 0) return rc;
  size_t cap = 0;
  while ((rc = souk_stmt_step(s)) == 1) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 32;
      *out = souk_reallocarray(*out, cap, sizeof **out);
    }
    market_last_price_t *p = &(*out)[(*n)++];
    memset(p, 0, sizeof *p);
    copy_text(p->symbol, sizeof p->symbol, souk_stmt_column_text(s, 0, NULL));
    p->price_micro = souk_stmt_column_int64(s, 1);
    p->prev_close_micro = souk_stmt_column_int64(s, 2);
    copy_text(p->source, sizeof p->source, souk_stmt_column_text(s, 3, NULL));
    p->quote_time_ms = souk_stmt_column_int64(s, 4);
    p->fetched_ms = souk_stmt_column_int64(s, 5);
  }
  souk_stmt_finalize(s);
  if (rc != 0) {
    souk_free(*out);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

/* ---- people's data ---- */

static const char *const market_user_tables[] = {"market_holdings", "market_history",
                                                 "market_transactions", "market_accounts",
                                                 "market_players"};

int market_forget_user(souk_db_t *db, int64_t user_id, int64_t *deleted) {
  if (!db) return SOUK_EINVAL;
  int64_t total = 0;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < sizeof market_user_tables / sizeof *market_user_tables; i++) {
    char sql[96];
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE user_id = ?", market_user_tables[i]);
    int64_t c = 0;
    rc = run(db, &c, sql, "i", user_id);
    total += c;
  }
  if (deleted) *deleted = rc == 0 ? total : 0;
  return rc;
}

const souk_store_data_t market_data[] = {
    {.table = "market_holdings", .user_column = "user_id", .guild_column = "guild_id"},
    {.table = "market_history", .user_column = "user_id", .guild_column = "guild_id"},
    {.table = "market_transactions", .user_column = "user_id", .guild_column = "guild_id"},
    {.table = "market_accounts", .user_column = "user_id", .guild_column = "guild_id"},
    {.table = "market_players", .user_column = "user_id", .guild_column = "guild_id"},
    {.table = "market_settings", .guild_column = "guild_id"},
    {0},
};

int market_register_data(void) { return souk_store_register_table(market_data); }
