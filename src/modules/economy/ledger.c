/* The economy's ledger (see ledger.h).
 *
 * How a change stays exact under concurrency: SQLite write transactions
 * start with BEGIN IMMEDIATE, so they run one at a time; on PostgreSQL the
 * balance rows a change touches are read with SELECT ... FOR UPDATE, always
 * in ascending user id order, so changes to the same users queue behind
 * each other (READ COMMITTED reads the latest committed row once the lock
 * is held) and two transfers in opposite directions cannot deadlock.  On
 * top of that every balance write is conditional on the balance it was
 * computed from, a CHECK forbids a negative balance and another one an
 * audit row whose before + amount is not its after, so even a broken lock
 * could only fail a change, never create or lose a coin.
 *
 * The idempotency key is looked up after the locks are held: a retry of a
 * change that committed while we waited finds its audit row and reports
 * it.  The audit row's UNIQUE (idem_key, user_id) is the last line of
 * defence (ON CONFLICT DO NOTHING, then SOUK_EEXIST rolls back). */
#include "ledger.h"

#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {"bonus", "daily", "pay", "grant", "take", "bet", "win"};

const char *economy_kind_name(economy_kind_t k) {
  return (unsigned)k < sizeof kind_names / sizeof *kind_names ? kind_names[k] : "?";
}

static int kind_parse(const char *s) {
  for (size_t i = 0; s && i < sizeof kind_names / sizeof *kind_names; i++)
    if (strcmp(s, kind_names[i]) == 0) return (int)i;
  return -1;
}

static void copy_text(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "");
}

/* ---- balance rows ---- */

/* Make sure the user has a balance row (0 coins), so it can be locked. */
static int row_ensure(souk_db_t *db, int64_t user, int64_t now_ms) {
  return souk_db_runf(db, NULL,
                      "INSERT INTO economy_balances (user_id, balance, name, updated_at) "
                      "VALUES (?, 0, '', ?) ON CONFLICT (user_id) DO NOTHING",
                      "ii", user, now_ms);
}

/* Read a balance, locking its row on PostgreSQL.  *found (may be NULL)
 * says whether there is a row; without one the balance is 0. */
static int row_read(souk_db_t *db, int64_t user, bool lock, int64_t *balance, bool *found) {
  souk_stmt_t *s;
  bool pg_lock = lock && souk_db_kind(db) == SOUK_STORE_POSTGRES;
  *balance = 0;
  if (found) *found = false;
  int rc = souk_db_preparef(db, &s,
                            pg_lock ? "SELECT balance FROM economy_balances WHERE user_id = ? "
                                      "FOR UPDATE"
                                    : "SELECT balance FROM economy_balances WHERE user_id = ?",
                            "i", user);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    *balance = souk_stmt_column_int64(s, 0);
    if (found) *found = true;
    rc = 0;
  }
  souk_stmt_finalize(s);
  return rc;
}

/* Ensure and lock the rows of a and b (b may equal a, or be 0 for none) in
 * ascending id order, reading their balances. */
static int rows_lock(souk_db_t *db, int64_t a, int64_t b, int64_t now_ms, int64_t *bal_a,
                     int64_t *bal_b) {
  int64_t lo = a, hi = b;
  int64_t *blo = bal_a, *bhi = bal_b;
  if (b && b < a) {
    lo = b, hi = a;
    blo = bal_b, bhi = bal_a;
  }
  int rc = row_ensure(db, lo, now_ms);
  if (rc == 0 && b && b != a) rc = row_ensure(db, hi, now_ms);
  if (rc == 0) rc = row_read(db, lo, true, blo, NULL);
  if (rc == 0 && b && b != a) rc = row_read(db, hi, true, bhi, NULL);
  return rc;
}

/* The original change made under key for user, if there is one.  *found
 * says so; *out gets its amount and balances. */
static int audit_find(souk_db_t *db, const char *key, int64_t user, bool *found, int64_t *amount,
                      int64_t *before, int64_t *after) {
  souk_stmt_t *s;
  *found = false;
  int rc = souk_db_preparef(db, &s,
                            "SELECT amount, balance_before, balance_after FROM economy_audit "
                            "WHERE idem_key = ? AND user_id = ?",
                            "si", key, user);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    *found = true;
    *amount = souk_stmt_column_int64(s, 0);
    *before = souk_stmt_column_int64(s, 1);
    *after = souk_stmt_column_int64(s, 2);
    rc = 0;
  }
  souk_stmt_finalize(s);
  return rc;
}

/* Everything an audit row says. */
typedef struct change_req {
  int64_t user;
  int64_t delta; /* signed */
  economy_kind_t kind;
  int64_t actor, other;
  const char *reason;
  const char *name; /* refreshes the display name when not empty */
  const char *key;
  int64_t now_ms;
} change_req_t;

/* Write a locked row's new balance (before + delta) and its audit row.
 * The caller has checked that the result is in range. */
static int change_write(souk_db_t *db, const change_req_t *c, int64_t before, int64_t *after) {
  int64_t next = before + c->delta, changes = 0;
  const char *name = c->name ? c->name : "";
  char cut[ECONOMY_NAME_MAX + 1];
  if (strlen(name) > ECONOMY_NAME_MAX) {
    /* Cut on a character boundary so the stored text stays UTF-8. */
    size_t n = ECONOMY_NAME_MAX;
    while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
      n--;
    memcpy(cut, name, n);
    cut[n] = '\0';
    name = cut;
  }
  int rc = souk_db_runf(db, &changes,
                        "UPDATE economy_balances SET balance = ?, updated_at = ?, "
                        "name = CASE WHEN ? = '' THEN name ELSE ? END "
                        "WHERE user_id = ? AND balance = ?",
                        "iissii", next, c->now_ms, name, name, c->user, before);
  if (rc != 0) return rc;
  /* The row is locked and was read in this transaction: anything else is
   * a broken invariant, so refuse rather than guess. */
  if (changes != 1) return SOUK_EIO;
  rc = souk_db_runf(db, &changes,
                    "INSERT INTO economy_audit (user_id, actor_id, kind, amount, balance_before, "
                    "balance_after, other_id, reason, idem_key, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (idem_key, user_id) DO NOTHING",
                    "iisiiiissi", c->user, c->actor, economy_kind_name(c->kind), c->delta, before,
                    next, c->other, c->reason ? c->reason : "", c->key, c->now_ms);
  if (rc != 0) return rc;
  if (changes != 1) return SOUK_EEXIST;
  if (after) *after = next;
  return 0;
}

static bool add_ok(int64_t a, int64_t b, int64_t *out) {
  return !__builtin_add_overflow(a, b, out);
}

int economy_balance(souk_db_t *db, int64_t user_id, int64_t *balance) {
  if (!db || !balance) return SOUK_EINVAL;
  return row_read(db, user_id, false, balance, NULL);
}

static void change_reset(economy_change_t *out) { memset(out, 0, sizeof *out); }

int economy_pay(souk_db_t *db, int64_t from, int64_t to, int64_t amount, const char *from_name,
                const char *to_name, const char *key, int64_t now_ms, economy_change_t *out) {
  if (!db || !key || !key[0] || !out) return SOUK_EINVAL;
  change_reset(out);
  if (from == to) {
    out->refusal = ECONOMY_REFUSE_SELF;
    return 0;
  }
  if (amount <= 0) {
    out->refusal = ECONOMY_REFUSE_AMOUNT;
    return 0;
  }
  int64_t bf = 0, bt = 0;
  int rc = rows_lock(db, from, to, now_ms, &bf, &bt);
  if (rc != 0) return rc;
  bool found;
  int64_t amt, b0, b1;
  rc = audit_find(db, key, from, &found, &amt, &b0, &b1);
  if (rc != 0) return rc;
  if (found) {
    out->duplicate = true;
    out->amount = -amt;
    out->before = b0;
    out->after = b1;
    rc = audit_find(db, key, to, &found, &amt, &b0, &b1);
    if (rc == 0 && found) out->other_before = b0, out->other_after = b1;
    return rc;
  }
  out->before = out->after = bf;
  out->other_before = out->other_after = bt;
  int64_t to_after;
  if (bf < amount) {
    out->refusal = ECONOMY_REFUSE_SHORT;
    return 0;
  }
  if (!add_ok(bt, amount, &to_after)) {
    out->refusal = ECONOMY_REFUSE_OVERFLOW;
    return 0;
  }
  change_req_t c = {.user = from,
                    .delta = -amount,
                    .kind = ECONOMY_PAY,
                    .actor = from,
                    .other = to,
                    .name = from_name,
                    .key = key,
                    .now_ms = now_ms};
  rc = change_write(db, &c, bf, &out->after);
  if (rc != 0) return rc;
  c = (change_req_t){.user = to,
                     .delta = amount,
                     .kind = ECONOMY_PAY,
                     .actor = from,
                     .other = from,
                     .name = to_name,
                     .key = key,
                     .now_ms = now_ms};
  rc = change_write(db, &c, bt, &out->other_after);
  if (rc == 0) out->amount = amount;
  return rc;
}

/* The start of a change to one user's balance: refuse an amount <= 0,
 * lock the row (*bal gets the balance), and report the change already
 * made under key.  *done says out is final (a refusal or the original
 * change): the caller returns rc then. */
static int one_begin(souk_db_t *db, int64_t user, int64_t amount, const char *key, int64_t now_ms,
                     economy_change_t *out, int64_t *bal, bool *done) {
  change_reset(out);
  *done = true;
  if (amount <= 0) {
    out->refusal = ECONOMY_REFUSE_AMOUNT;
    return 0;
  }
  int rc = rows_lock(db, user, 0, now_ms, bal, NULL);
  if (rc != 0) return rc;
  bool found;
  int64_t amt, b0, b1;
  rc = audit_find(db, key, user, &found, &amt, &b0, &b1);
  if (rc != 0) return rc;
  if (found) {
    out->duplicate = true;
    out->amount = amt < 0 ? -amt : amt;
    out->before = b0;
    out->after = b1;
    return 0;
  }
  out->before = out->after = *bal;
  *done = false;
  return 0;
}

int economy_adjust(souk_db_t *db, economy_kind_t kind, int64_t user_id, int64_t actor_id,
                   int64_t amount, const char *reason, const char *key, int64_t now_ms,
                   economy_change_t *out) {
  if (!db || !key || !key[0] || !out || !reason || !reason[0] ||
      (kind != ECONOMY_GRANT && kind != ECONOMY_TAKE))
    return SOUK_EINVAL;
  int64_t bal = 0;
  bool done;
  int rc = one_begin(db, user_id, amount, key, now_ms, out, &bal, &done);
  if (rc != 0 || done) return rc;
  int64_t next;
  if (kind == ECONOMY_TAKE && bal < amount) {
    out->refusal = ECONOMY_REFUSE_SHORT;
    return 0;
  }
  if (kind == ECONOMY_GRANT && !add_ok(bal, amount, &next)) {
    out->refusal = ECONOMY_REFUSE_OVERFLOW;
    return 0;
  }
  change_req_t c = {.user = user_id,
                    .delta = kind == ECONOMY_GRANT ? amount : -amount,
                    .kind = kind,
                    .actor = actor_id,
                    .reason = reason,
                    .key = key,
                    .now_ms = now_ms};
  rc = change_write(db, &c, bal, &out->after);
  if (rc == 0) out->amount = amount;
  return rc;
}

int economy_daily(souk_db_t *db, int64_t user_id, const char *name, int64_t amount,
                  int64_t cooldown_ms, const char *key, int64_t now_ms, economy_change_t *out) {
  if (!db || !key || !key[0] || !out || cooldown_ms < 0) return SOUK_EINVAL;
  int64_t bal = 0;
  bool done;
  int rc = one_begin(db, user_id, amount, key, now_ms, out, &bal, &done);
  if (rc != 0 || (done && !out->duplicate)) return rc;
  souk_stmt_t *s;
  rc = souk_db_preparef(db, &s, "SELECT last_ms, streak FROM economy_daily WHERE user_id = ?", "i",
                        user_id);
  if (rc != 0) return rc;
  int64_t last = 0, streak = 0;
  bool claimed = false;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    claimed = true;
    last = souk_stmt_column_int64(s, 0);
    streak = souk_stmt_column_int64(s, 1);
    rc = 0;
  }
  souk_stmt_finalize(s);
  if (rc != 0) return rc;
  out->streak = streak;
  if (out->duplicate) return 0;
  /* The cooldown is counted from the stored claim time, so it survives
   * restarts; a clock that went backwards only makes the wait longer. */
  if (claimed && now_ms - last < cooldown_ms) {
    out->refusal = ECONOMY_REFUSE_COOLDOWN;
    out->wait_ms = cooldown_ms - (now_ms - last);
    return 0;
  }
  int64_t next;
  if (!add_ok(bal, amount, &next)) {
    out->refusal = ECONOMY_REFUSE_OVERFLOW;
    return 0;
  }
  int64_t new_streak = claimed && now_ms - last < 2 * cooldown_ms ? streak + 1 : 1;
  int64_t changes = 0;
  rc = souk_db_runf(db, &changes,
                    "INSERT INTO economy_daily (user_id, last_ms, streak) VALUES (?, ?, ?) "
                    "ON CONFLICT (user_id) DO UPDATE SET last_ms = excluded.last_ms, "
                    "streak = excluded.streak WHERE economy_daily.last_ms = ?",
                    "iiii", user_id, now_ms, new_streak, last);
  if (rc != 0) return rc;
  if (changes != 1) return SOUK_EIO;
  change_req_t c = {.user = user_id,
                    .delta = amount,
                    .kind = ECONOMY_DAILY,
                    .actor = user_id,
                    .name = name,
                    .key = key,
                    .now_ms = now_ms};
  rc = change_write(db, &c, bal, &out->after);
  if (rc == 0) {
    out->amount = amount;
    out->streak = new_streak;
  }
  return rc;
}

/* ---- Terms of Service ---- */

#define TOS_BODY_MAX 8000

int economy_tos_current(souk_db_t *db, int64_t *version, souk_buf_t *body, int64_t *published_at) {
  if (!db || !version) return SOUK_EINVAL;
  *version = 0;
  souk_stmt_t *s;
  int rc = souk_db_preparef(db, &s,
                            "SELECT version, body, published_at FROM economy_tos "
                            "ORDER BY version DESC LIMIT 1",
                            "");
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    *version = souk_stmt_column_int64(s, 0);
    size_t n = 0;
    const char *t = souk_stmt_column_text(s, 1, &n);
    if (body) {
      souk_buf_reset(body);
      if (t) souk_buf_append(body, t, n);
    }
    if (published_at) *published_at = souk_stmt_column_int64(s, 2);
    rc = 0;
  } else if (rc == 0) {
    rc = SOUK_ENOTFOUND;
  }
  souk_stmt_finalize(s);
  return rc;
}

/* What published each version is kept in the kv table: namespace
 * TOS_KEYS, the key, the version as text. */
#define TOS_KEYS "economy.tos"

/* The version published under key, if any: 0 (found or not, *version 0
 * when not) or SOUK_E*. */
static int tos_by_key(souk_db_t *db, const char *key, int64_t *version) {
  *version = 0;
  souk_buf_t v;
  souk_buf_init(&v);
  int rc = souk_db_kv_get(db, TOS_KEYS, key, &v, NULL);
  if (rc == 0) {
    long long n = 0;
    souk_buf_putc(&v, '\0');
    if (sscanf(v.data, "%lld", &n) != 1 || n < 1) rc = SOUK_EIO;
    *version = n;
  }
  souk_buf_free(&v);
  return rc == SOUK_ENOTFOUND ? 0 : rc;
}

int economy_tos_publish(souk_db_t *db, const char *body, int64_t by_user, const char *key,
                        int64_t now_ms, int64_t *version, bool *created) {
  size_t n = body ? strlen(body) : 0;
  if (!db || !version || n == 0 || n > TOS_BODY_MAX || (key && !key[0])) return SOUK_EINVAL;
  *version = 0;
  if (created) *created = false;
  /* Terms are shown to everyone: a slip (or a hijacked owner account)
   * must not publish the bot's token or another secret with them. */
  if (souk_log_has_secret(body, n)) return SOUK_EFORBIDDEN;
  int rc = key ? tos_by_key(db, key, version) : 0;
  if (rc != 0 || *version) return rc; /* published already: a re-run after a lost commit */
  /* Another process may take the next number first (two starting on an
   * empty database, two owners at once): the insert then does nothing,
   * and on PostgreSQL, where it waited for that transaction, the next
   * statement sees what it committed. */
  for (int attempt = 0; attempt < 8; attempt++) {
    int64_t cur = 0, changes = 0;
    rc = economy_tos_current(db, &cur, NULL, NULL);
    if (rc != 0 && rc != SOUK_ENOTFOUND) return rc;
    rc = souk_db_runf(db, &changes,
                      "INSERT INTO economy_tos (version, body, published_by, published_at) "
                      "VALUES (?, ?, ?, ?) ON CONFLICT (version) DO NOTHING",
                      "isii", cur + 1, body, by_user, now_ms);
    if (rc != 0) return rc;
    if (changes == 1) {
      if (key) {
        char text[24];
        int len = snprintf(text, sizeof text, "%" PRId64, cur + 1);
        rc = souk_db_kv_put(db, TOS_KEYS, key, text, (size_t)len);
        if (rc != 0) return rc;
      }
      *version = cur + 1;
      if (created) *created = true;
      return 0;
    }
    rc = key ? tos_by_key(db, key, version) : 0;
    if (rc != 0 || *version) return rc; /* the other one published it under our key */
  }
  return SOUK_EBUSY;
}

int economy_tos_status(souk_db_t *db, int64_t user_id, int64_t *version, int64_t *accepted_at) {
  if (!db || !version) return SOUK_EINVAL;
  *version = 0;
  if (accepted_at) *accepted_at = 0;
  souk_stmt_t *s;
  int rc = souk_db_preparef(db, &s,
                            "SELECT version, accepted_at FROM economy_tos_accept WHERE user_id = ? "
                            "ORDER BY version DESC LIMIT 1",
                            "i", user_id);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    *version = souk_stmt_column_int64(s, 0);
    if (accepted_at) *accepted_at = souk_stmt_column_int64(s, 1);
    rc = 0;
  }
  souk_stmt_finalize(s);
  return rc;
}

int economy_tos_accept(souk_db_t *db, int64_t user_id, const char *name, int64_t version,
                       int64_t bonus_amount, int64_t now_ms, bool *bonus_paid,
                       economy_change_t *bonus) {
  if (!db || !bonus_paid || bonus_amount < 0) return SOUK_EINVAL;
  *bonus_paid = false;
  if (bonus) change_reset(bonus);
  souk_stmt_t *s;
  int rc = souk_db_preparef(db, &s, "SELECT 1 FROM economy_tos WHERE version = ?", "i", version);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  souk_stmt_finalize(s);
  if (rc == 0) return SOUK_ENOTFOUND;
  if (rc != 1) return rc;
  rc = souk_db_runf(db, NULL,
                    "INSERT INTO economy_tos_accept (user_id, version, accepted_at) "
                    "VALUES (?, ?, ?) ON CONFLICT (user_id, version) DO NOTHING",
                    "iii", user_id, version, now_ms);
  if (rc != 0) return rc;
  /* The bonus row is unique per user: under concurrent first acceptances
   * the second insert waits for the first transaction and then does
   * nothing, so only the transaction that inserted it pays. */
  int64_t changes = 0;
  rc = souk_db_runf(db, &changes,
                    "INSERT INTO economy_bonus (user_id, amount, version, granted_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO NOTHING",
                    "iiii", user_id, bonus_amount, version, now_ms);
  if (rc != 0 || changes != 1 || bonus_amount == 0) return rc;
  int64_t bal = 0, next;
  rc = rows_lock(db, user_id, 0, now_ms, &bal, NULL);
  if (rc != 0) return rc;
  if (!add_ok(bal, bonus_amount, &next)) return SOUK_ERANGE;
  char key[48];
  snprintf(key, sizeof key, "tos-bonus:%" PRId64, user_id);
  change_req_t c = {.user = user_id,
                    .delta = bonus_amount,
                    .kind = ECONOMY_BONUS,
                    .actor = user_id,
                    .reason = "welcome bonus",
                    .name = name,
                    .key = key,
                    .now_ms = now_ms};
  int64_t after = 0;
  rc = change_write(db, &c, bal, &after);
  if (rc != 0) return rc;
  *bonus_paid = true;
  if (bonus) {
    bonus->amount = bonus_amount;
    bonus->before = bal;
    bonus->after = after;
  }
  return 0;
}

/* ---- the leaderboard ---- */

int economy_leaderboard(souk_db_t *db, int64_t offset, int64_t limit, economy_rank_t *out,
                        size_t *n, int64_t *total) {
  if (!db || !out || !n || !total || offset < 0 || limit < 0) return SOUK_EINVAL;
  *n = 0;
  *total = 0;
  souk_stmt_t *s;
  int rc = souk_db_preparef(db, &s, "SELECT COUNT(*) FROM economy_balances WHERE balance > 0", "");
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) *total = souk_stmt_column_int64(s, 0), rc = 0;
  souk_stmt_finalize(s);
  if (rc != 0 || limit == 0) return rc;
  rc = souk_db_preparef(db, &s,
                        "SELECT user_id, balance, name FROM economy_balances WHERE balance > 0 "
                        "ORDER BY balance DESC, user_id ASC LIMIT ? OFFSET ?",
                        "ii", limit, offset);
  if (rc != 0) return rc;
  while ((rc = souk_stmt_step(s)) == 1 && *n < (size_t)limit) {
    economy_rank_t *r = &out[*n];
    r->rank = offset + (int64_t)*n + 1;
    r->user_id = souk_stmt_column_int64(s, 0);
    r->balance = souk_stmt_column_int64(s, 1);
    copy_text(r->name, sizeof r->name, souk_stmt_column_text(s, 2, NULL));
    (*n)++;
  }
  souk_stmt_finalize(s);
  return rc == 1 ? 0 : rc;
}

/* ---- bets ---- */

static bool bet_text_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  return n > 0 && n <= ECONOMY_BET_TEXT_MAX;
}

#define BET_COLS "id, user_id, game, bet, outcome, stake, payout, state"

static void bet_row(souk_stmt_t *s, economy_bet_t *b) {
  b->id = souk_stmt_column_int64(s, 0);
  b->user_id = souk_stmt_column_int64(s, 1);
  copy_text(b->game, sizeof b->game, souk_stmt_column_text(s, 2, NULL));
  copy_text(b->bet, sizeof b->bet, souk_stmt_column_text(s, 3, NULL));
  copy_text(b->outcome, sizeof b->outcome, souk_stmt_column_text(s, 4, NULL));
  b->stake = souk_stmt_column_int64(s, 5);
  b->payout = souk_stmt_column_int64(s, 6);
  const char *st = souk_stmt_column_text(s, 7, NULL);
  b->settled = st && strcmp(st, "settled") == 0;
}

/* A bet by its key (key != NULL) or id: 0, or SOUK_ENOTFOUND. */
static int bet_read(souk_db_t *db, const char *key, int64_t id, economy_bet_t *out) {
  souk_stmt_t *s;
  int rc =
      key ? souk_db_preparef(db, &s, "SELECT " BET_COLS " FROM economy_bets WHERE idem_key = ?",
                             "s", key)
          : souk_db_preparef(db, &s, "SELECT " BET_COLS " FROM economy_bets WHERE id = ?", "i", id);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    bet_row(s, out);
    rc = 0;
  } else if (rc == 0) {
    rc = SOUK_ENOTFOUND;
  }
  souk_stmt_finalize(s);
  return rc;
}

int economy_bet_place(souk_db_t *db, const economy_bet_req_t *req, economy_bet_t *out) {
  if (!db || !req || !out || !req->key || !req->key[0] || !bet_text_ok(req->game) ||
      !bet_text_ok(req->bet) || !bet_text_ok(req->outcome) || req->payout < 0)
    return SOUK_EINVAL;
  memset(out, 0, sizeof *out);
  if (req->stake <= 0) {
    out->refusal = ECONOMY_REFUSE_AMOUNT;
    return 0;
  }
  int64_t bal = 0;
  int rc = rows_lock(db, req->user_id, 0, req->now_ms, &bal, NULL);
  if (rc != 0) return rc;
  rc = bet_read(db, req->key, 0, out);
  if (rc == 0) {
    out->duplicate = true;
    int64_t amt, b0;
    bool found;
    char akey[64];
    snprintf(akey, sizeof akey, "bet:%" PRId64 ":stake", out->id);
    rc = audit_find(db, akey, out->user_id, &found, &amt, &b0, &out->balance_after_stake);
    return rc;
  }
  if (rc != SOUK_ENOTFOUND) return rc;
  memset(out, 0, sizeof *out);
  out->balance_after_stake = bal;
  if (bal < req->stake) {
    out->refusal = ECONOMY_REFUSE_SHORT;
    return 0;
  }
  souk_stmt_t *s;
  rc = souk_db_preparef(db, &s,
                        "INSERT INTO economy_bets (user_id, game, bet, stake, outcome, payout, "
                        "state, idem_key, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) "
                        "RETURNING id",
                        "issisisi", req->user_id, req->game, req->bet, req->stake, req->outcome,
                        req->payout, req->key, req->now_ms);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  int64_t id = rc == 1 ? souk_stmt_column_int64(s, 0) : 0;
  souk_stmt_finalize(s);
  if (rc != 1) return rc < 0 ? rc : SOUK_EIO;
  char akey[64], reason[2 * ECONOMY_BET_TEXT_MAX + 2];
  snprintf(akey, sizeof akey, "bet:%" PRId64 ":stake", id);
  snprintf(reason, sizeof reason, "%s %s", req->game, req->bet);
  change_req_t c = {.user = req->user_id,
                    .delta = -req->stake,
                    .kind = ECONOMY_BET,
                    .actor = req->user_id,
                    .other = id,
                    .reason = reason,
                    .name = req->name,
                    .key = akey,
                    .now_ms = req->now_ms};
  rc = change_write(db, &c, bal, &out->balance_after_stake);
  if (rc != 0) return rc;
  out->id = id;
  out->user_id = req->user_id;
  copy_text(out->game, sizeof out->game, req->game);
  copy_text(out->bet, sizeof out->bet, req->bet);
  copy_text(out->outcome, sizeof out->outcome, req->outcome);
  out->stake = req->stake;
  out->payout = req->payout;
  return 0;
}

int economy_bet_settle(souk_db_t *db, int64_t bet_id, int64_t now_ms, bool *paid,
                       int64_t *balance) {
  if (!db || !paid) return SOUK_EINVAL;
  *paid = false;
  economy_bet_t b;
  int rc = bet_read(db, NULL, bet_id, &b);
  if (rc != 0) return rc;
  /* Balance row first, then the bet: the order economy_bet_place takes
   * them in, so a settlement and a new bet of one user cannot deadlock. */
  int64_t bal = 0;
  rc = rows_lock(db, b.user_id, 0, now_ms, &bal, NULL);
  if (rc != 0) return rc;
  if (balance) *balance = bal;
  if (b.settled) return 0; /* settled already, by a click or a recovery */
  /* Refused before anything is written, so the caller's transaction can
   * go on with other work. */
  int64_t next;
  if (b.payout > 0 && !add_ok(bal, b.payout, &next)) return SOUK_ERANGE;
  int64_t changes = 0;
  rc = souk_db_runf(db, &changes,
                    "UPDATE economy_bets SET state = 'settled', settled_at = ? "
                    "WHERE id = ? AND state = 'pending'",
                    "ii", now_ms, bet_id);
  if (rc != 0) return rc;
  if (changes != 1) return 0; /* settled while we waited for the lock */
  if (b.payout > 0) {
    char akey[64], reason[2 * ECONOMY_BET_TEXT_MAX + 2];
    snprintf(akey, sizeof akey, "bet:%" PRId64 ":win", bet_id);
    snprintf(reason, sizeof reason, "%s %s", b.game, b.outcome);
    change_req_t c = {.user = b.user_id,
                      .delta = b.payout,
                      .kind = ECONOMY_WIN,
                      .actor = b.user_id,
                      .other = bet_id,
                      .reason = reason,
                      .key = akey,
                      .now_ms = now_ms};
    rc = change_write(db, &c, bal, balance);
    if (rc != 0) return rc;
  }
  *paid = true;
  return 0;
}

int economy_bets_recover(souk_db_t *db, int64_t before_ms, int64_t now_ms, int64_t max,
                         economy_recovery_t *out) {
  if (!db || !out || max <= 0) return SOUK_EINVAL;
  memset(out, 0, sizeof *out);
  /* In ascending user id order, as every other change locks balances:
   * settling one user's bet locks that user's balance, and this
   * transaction holds each lock until it commits, so taking them in bet
   * order could lock a higher id before a lower one and deadlock with a
   * transfer between the two.  A cursor walks past bets that cannot be
   * settled, so however many there are the others are reached. */
  int64_t after_user = INT64_MIN, after_id = INT64_MIN;
  for (;;) {
    int64_t ids[64];
    size_t nids = 0;
    souk_stmt_t *s;
    int rc = souk_db_preparef(db, &s,
                              "SELECT id, user_id FROM economy_bets WHERE state = 'pending' AND "
                              "created_at < ? AND (user_id > ? OR (user_id = ? AND id > ?)) "
                              "ORDER BY user_id, id LIMIT 64",
                              "iiii", before_ms, after_user, after_user, after_id);
    if (rc != 0) return rc;
    while ((rc = souk_stmt_step(s)) == 1 && nids < 64) {
      ids[nids++] = souk_stmt_column_int64(s, 0);
      after_id = ids[nids - 1];
      after_user = souk_stmt_column_int64(s, 1);
    }
    souk_stmt_finalize(s);
    if (rc < 0) return rc;
    for (size_t i = 0; i < nids && out->settled < max; i++) {
      bool paid;
      rc = economy_bet_settle(db, ids[i], now_ms, &paid, NULL);
      if (rc == SOUK_ERANGE) {
        /* Its payout does not fit the balance: nothing was written.  It
         * stays pending for an operator; the others go on. */
        if (out->stuck < ECONOMY_STUCK_MAX) out->stuck_ids[out->stuck] = ids[i];
        out->stuck++;
        continue;
      }
      if (rc != 0) return rc;
      if (paid) out->settled++;
    }
    if (nids < 64 || out->settled >= max) return 0;
  }
}

/* ---- forgetting a user ---- */

int economy_forget_user(souk_db_t *db, int64_t user_id, int64_t *changed) {
  if (!db || !changed || user_id <= 0) return SOUK_EINVAL;
  souk_stmt_t *s;
  int rc = souk_db_preparef(db, &s,
                            "SELECT (SELECT COUNT(*) FROM economy_balances WHERE user_id = ?) + "
                            "(SELECT COUNT(*) FROM economy_audit WHERE user_id = ?)",
                            "ii", user_id, user_id);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  int64_t rows = rc == 1 ? souk_stmt_column_int64(s, 0) : 0;
  souk_stmt_finalize(s);
  if (rc < 0) return rc;
  if (rows == 0) return 0; /* never had coins */
  int64_t bal = 0, n = 0, now = (int64_t)souk_unix_ms();
  rc = rows_lock(db, user_id, 0, now, &bal, NULL);
  if (rc != 0) return rc;
  /* The coins leave with a row of their own: the audit keeps adding up. */
  change_req_t c = {.user = user_id,
                    .delta = -bal,
                    .kind = ECONOMY_TAKE,
                    .actor = 0,
                    .reason = "user data forgotten",
                    .key = "forget",
                    .now_ms = now};
  rc = change_write(db, &c, bal, NULL);
  if (rc != 0) return rc;
  (*changed)++;
  /* That row's id names the anonymous holder of the trail: unique, and
   * saying nothing about who it was. */
  rc = souk_db_preparef(db, &s, "SELECT id FROM economy_audit WHERE idem_key = ? AND user_id = ?",
                        "si", "forget", user_id);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  int64_t anon = rc == 1 ? -souk_stmt_column_int64(s, 0) : 0;
  souk_stmt_finalize(s);
  if (rc < 0) return rc;
  if (anon >= 0) return SOUK_EIO;
  rc = souk_db_runf(db, &n,
                    "UPDATE economy_audit SET user_id = ?, "
                    "actor_id = CASE WHEN actor_id = ? THEN ? ELSE actor_id END, "
                    "reason = CASE WHEN idem_key = 'forget' THEN reason ELSE '' END, "
                    "idem_key = 'forgotten:' || CAST(id AS TEXT) WHERE user_id = ?",
                    "iiii", anon, user_id, anon, user_id);
  if (rc != 0) return rc;
  *changed += n;
  /* The other side of their transfers, and what they did to others. */
  rc = souk_db_runf(db, &n,
                    "UPDATE economy_audit SET other_id = ? WHERE kind = 'pay' AND other_id = ?",
                    "ii", anon, user_id);
  if (rc != 0) return rc;
  *changed += n;
  rc = souk_db_runf(db, &n, "UPDATE economy_audit SET actor_id = ? WHERE actor_id = ?", "ii", anon,
                    user_id);
  if (rc != 0) return rc;
  *changed += n;
  rc = souk_db_runf(db, &n, "DELETE FROM economy_balances WHERE user_id = ?", "i", user_id);
  if (rc == 0) *changed += n;
  return rc;
}

/* ---- checks ---- */

int economy_totals(souk_db_t *db, economy_totals_t *out) {
  if (!db || !out) return SOUK_EINVAL;
  memset(out, 0, sizeof *out);
  souk_stmt_t *s;
  int rc = souk_db_preparef(db, &s,
                            "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT), "
                            "CAST(COUNT(*) AS BIGINT) FROM economy_balances",
                            "");
  if (rc != 0) return rc;
  if ((rc = souk_stmt_step(s)) == 1) {
    out->balances = souk_stmt_column_int64(s, 0);
    out->users = souk_stmt_column_int64(s, 1);
    rc = 0;
  }
  souk_stmt_finalize(s);
  if (rc != 0) return rc;
  rc = souk_db_preparef(
      db, &s, "SELECT kind, CAST(SUM(amount) AS BIGINT) FROM economy_audit GROUP BY kind", "");
  if (rc != 0) return rc;
  while ((rc = souk_stmt_step(s)) == 1) {
    int k = kind_parse(souk_stmt_column_text(s, 0, NULL));
    int64_t v = souk_stmt_column_int64(s, 1);
    if (k >= 0) out->by_kind[k] = v;
    out->audit += v;
  }
  souk_stmt_finalize(s);
  if (rc < 0) return rc;
  rc = souk_db_preparef(
      db, &s, "SELECT CAST(COUNT(*) AS BIGINT) FROM economy_bets WHERE state = 'pending'", "");
  if (rc != 0) return rc;
  if ((rc = souk_stmt_step(s)) == 1) {
    out->pending_bets = souk_stmt_column_int64(s, 0);
    rc = 0;
  }
  souk_stmt_finalize(s);
  if (rc != 0 || out->pending_bets == 0) return rc;
  /* INT64_MAX - balance never overflows: balances are >= 0. */
  rc = souk_db_preparef(db, &s,
                        "SELECT CAST(COUNT(*) AS BIGINT) FROM economy_bets b JOIN "
                        "economy_balances u ON u.user_id = b.user_id WHERE b.state = 'pending' "
                        "AND b.payout > 9223372036854775807 - u.balance",
                        "");
  if (rc != 0) return rc;
  if ((rc = souk_stmt_step(s)) == 1) {
    out->stuck_bets = souk_stmt_column_int64(s, 0);
    rc = 0;
  }
  souk_stmt_finalize(s);
  return rc;
}
