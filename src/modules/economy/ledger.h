/* The economy's ledger: coin balances, their audit trail, the versioned
 * Terms of Service with the welcome bonus, the daily reward, bets and the
 * leaderboard, over the tables of store migration v5
 * (src/store/migrations.c).
 *
 * Coins are int64 and belong to a user across every guild of the bot.
 * Every change of a balance is one transaction that writes the new balance
 * (a CHECK keeps it >= 0) and one audit row (who, what, why, before,
 * after) whose (idem_key, user_id) is unique: the interaction or message
 * that caused a change is its key, so a retried or redelivered command
 * finds the change it already made and reports it instead of repeating
 * it.
 *
 * Functions taking a souk_db_t run inside the caller's transaction
 * function: they may run more than once (the store re-runs a whole
 * transaction after a busy or serialization error), they reset their
 * outputs first, and on PostgreSQL the caller stops at the first error.
 * Balance rows are locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite
 * write transactions run one at a time) in ascending user id order, so two
 * transfers in opposite directions queue behind each other instead of
 * deadlocking.
 *
 * Results own no memory unless a *_free function says otherwise. */
#ifndef ECONOMY_LEDGER_H
#define ECONOMY_LEDGER_H

#include "souk/buf.h"
#include "souk/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** What changed a balance (the audit row's kind). */
typedef enum economy_kind {
  ECONOMY_BONUS, /* the welcome bonus of a first ToS acceptance */
  ECONOMY_DAILY, /* the daily reward */
  ECONOMY_PAY,   /* a transfer between two users (one row each) */
  ECONOMY_GRANT, /* an owner added coins */
  ECONOMY_TAKE,  /* an owner removed coins */
  ECONOMY_BET,   /* a stake, taken when a bet is placed */
  ECONOMY_WIN,   /* a settled bet's return (stake included) */
} economy_kind_t;

/** "bonus", "daily", ... as stored. */
const char *economy_kind_name(economy_kind_t k);

/** Why a change was refused (0: it was not). */
typedef enum economy_refusal {
  ECONOMY_OK = 0,
  ECONOMY_REFUSE_SHORT,    /* not enough coins */
  ECONOMY_REFUSE_OVERFLOW, /* the balance would not fit in int64 */
  ECONOMY_REFUSE_AMOUNT,   /* the amount is zero or negative */
  ECONOMY_REFUSE_SELF,     /* paying oneself */
  ECONOMY_REFUSE_COOLDOWN, /* the daily reward is not due yet */
} economy_refusal_t;

/** One change, or why it was not made. */
typedef struct economy_change {
  economy_refusal_t refusal;
  bool duplicate;                    /* the key was used before: this is the original change */
  int64_t amount;                    /* coins moved, > 0 when made */
  int64_t before;                    /* the user's (the payer's) balance before */
  int64_t after;                     /* and after; for a refusal both are the current balance */
  int64_t other_before, other_after; /* the payee's, for a transfer */
  int64_t wait_ms;                   /* ECONOMY_REFUSE_COOLDOWN: time until the next claim */
  int64_t streak;                    /* daily: consecutive days claimed, this one included */
} economy_change_t;

/** A user's balance, 0 when they have none.  Nothing is written. */
int economy_balance(souk_db_t *db, int64_t user_id, int64_t *balance);

/** Move amount coins from one user to another.  Refusals: AMOUNT, SELF,
 * SHORT (the payer has less), OVERFLOW (the payee would pass INT64_MAX).
 * The names (may be NULL or "") refresh the display names the
 * leaderboard shows.  key is the interaction's idempotency key. */
int economy_pay(souk_db_t *db, int64_t from, int64_t to, int64_t amount, const char *from_name,
                const char *to_name, const char *key, int64_t now_ms, economy_change_t *out);

/** An owner's grant (kind ECONOMY_GRANT, coins added) or take
 * (ECONOMY_TAKE, coins removed; SHORT when the user has fewer), with the
 * owner as actor and reason (required, non-empty) in the audit row. */
int economy_adjust(souk_db_t *db, economy_kind_t kind, int64_t user_id, int64_t actor_id,
                   int64_t amount, const char *reason, const char *key, int64_t now_ms,
                   economy_change_t *out);

/** Claim the daily reward: amount coins when cooldown_ms has passed since
 * the last claim (COOLDOWN with wait_ms otherwise).  A claim within twice
 * the cooldown of the previous one continues the streak. */
int economy_daily(souk_db_t *db, int64_t user_id, const char *name, int64_t amount,
                  int64_t cooldown_ms, const char *key, int64_t now_ms, economy_change_t *out);

/* ---- Terms of Service ---- */

/** The current (highest) ToS version: its number, its text appended to
 * body (may be NULL), and when it was published (may be NULL).  0, or
 * SOUK_ENOTFOUND when none was ever published. */
int economy_tos_current(souk_db_t *db, int64_t *version, souk_buf_t *body, int64_t *published_at);
/** Publish a new version with body (1..8000 bytes, SOUK_EINVAL otherwise;
 * SOUK_EFORBIDDEN when it holds a secret, souk_log_has_secret()); *version
 * gets its number (1 for the first).  key (may be NULL) is what caused the
 * publication: the version already published under it is reported instead
 * of a new one (*created false), so a re-run after a lost commit, a
 * redelivered command, or two processes publishing the first version at
 * once publish one version.  A number taken by another publication at
 * the same moment is retried with the next one; SOUK_EBUSY when that keeps
 * happening.  *created (may be NULL) says whether this call published. */
int economy_tos_publish(souk_db_t *db, const char *body, int64_t by_user, const char *key,
                        int64_t now_ms, int64_t *version, bool *created);
/** The highest version user_id accepted (0: none) and when. */
int economy_tos_status(souk_db_t *db, int64_t user_id, int64_t *version, int64_t *accepted_at);
/** Record user_id's acceptance of version (SOUK_ENOTFOUND if it does not
 * exist).  The user's first acceptance ever also pays the welcome bonus:
 * its row is unique per user and written in this same transaction, so two
 * clicks, two shards or a restart between click and reply pay it once.
 * *bonus_paid says whether this call paid it; bonus (may be NULL) gets the
 * change.  Accepting again is harmless. */
int economy_tos_accept(souk_db_t *db, int64_t user_id, const char *name, int64_t version,
                       int64_t bonus_amount, int64_t now_ms, bool *bonus_paid,
                       economy_change_t *bonus);

/* ---- the leaderboard ---- */

/** Longest display name kept, in bytes. */
#define ECONOMY_NAME_MAX 64

/** One row of the leaderboard. */
typedef struct economy_rank {
  int64_t rank; /* 1-based */
  int64_t user_id;
  int64_t balance;
  char name[ECONOMY_NAME_MAX + 1]; /* "" when never seen */
} economy_rank_t;

/** Users with coins, richest first (ties by user id), limit rows from
 * offset into out (caller's array of at least limit), *n rows written and
 * *total the number of ranked users. */
int economy_leaderboard(souk_db_t *db, int64_t offset, int64_t limit, economy_rank_t *out,
                        size_t *n, int64_t *total);

/* ---- bets ---- */

/** Longest bet description and outcome, in bytes. */
#define ECONOMY_BET_TEXT_MAX 32

/** A bet to place.  The game decides the outcome before the bet is placed
 * and passes it with the payout, so a bet interrupted by a crash is
 * settled exactly as it would have been, never refunded as well. */
typedef struct economy_bet_req {
  int64_t user_id;
  const char *name;    /* display name, may be NULL */
  const char *game;    /* "roulette" */
  const char *bet;     /* "red", "17", "split 17-18" */
  int64_t stake;       /* > 0 */
  const char *outcome; /* "17" */
  int64_t payout;      /* coins returned on settlement, stake included; 0 for a loss */
  const char *key;     /* one bet per key (the button press's token) */
  int64_t now_ms;
} economy_bet_req_t;

/** A bet as stored. */
typedef struct economy_bet {
  economy_refusal_t refusal; /* SHORT, AMOUNT, or OK */
  bool duplicate;            /* key was used before: the original bet */
  int64_t id;
  int64_t user_id;
  char game[ECONOMY_BET_TEXT_MAX + 1];
  char bet[ECONOMY_BET_TEXT_MAX + 1];
  char outcome[ECONOMY_BET_TEXT_MAX + 1];
  int64_t stake, payout;
  bool settled;
  int64_t balance_after_stake; /* the balance after the stake was taken */
} economy_bet_t;

/** Take the stake and record the bet as pending, in one transaction. */
int economy_bet_place(souk_db_t *db, const economy_bet_req_t *req, economy_bet_t *out);
/** Settle a pending bet: mark it settled and pay its payout.  *paid says
 * whether this call settled it (false: it already was); *balance (may be
 * NULL) gets the user's balance afterwards.  SOUK_ENOTFOUND for no such
 * bet; SOUK_ERANGE, with nothing written, when the payout would take the
 * balance past INT64_MAX (the bet stays pending). */
int economy_bet_settle(souk_db_t *db, int64_t bet_id, int64_t now_ms, bool *paid, int64_t *balance);
/** Most stuck bets an economy_recovery_t names. */
#define ECONOMY_STUCK_MAX 8

/** What a recovery did. */
typedef struct economy_recovery {
  int64_t settled; /* bets this call settled */
  /** Bets that cannot be settled (economy_bet_settle's SOUK_ERANGE): left
   * pending for an operator, and the first ECONOMY_STUCK_MAX of them. */
  int64_t stuck;
  int64_t stuck_ids[ECONOMY_STUCK_MAX];
} economy_recovery_t;

/** Settle every bet still pending that was placed before before_ms (the
 * spins a crash or a restart interrupted), at most max of them, in
 * ascending user id order (the lock order above).  Each bet is settled on
 * its own: one that cannot be (its payout would overflow the balance) is
 * counted in out->stuck, left pending with nothing written, and the
 * others go on. */
int economy_bets_recover(souk_db_t *db, int64_t before_ms, int64_t now_ms, int64_t max,
                         economy_recovery_t *out);

/* ---- forgetting a user ---- */

/** Forget user_id's coins without breaking the audit of anyone else
 * (`souk db forget-user`, as the store's forget_user of
 * economy_balances): the balance leaves with a "take" row whose actor is 0
 * ("user data forgotten"), so the coins are accounted for, not lost; then
 * every audit row of the user moves to an anonymous id (negative, unique
 * to this forgetting) with its reason and key cleared, the user's id is
 * replaced by that one in other users' rows (the payer or payee of a
 * transfer, the actor of a grant), and the balance row is deleted.  Every
 * audit row stays, so transfers still sum to zero and each trail still
 * chains.  *changed (never NULL) adds the rows written. */
int economy_forget_user(souk_db_t *db, int64_t user_id, int64_t *changed);

/* ---- checks ---- */

/** Sums for the invariant "coins are never created or lost": the sum of
 * balances equals the sum of audit amounts, which is grants - takes +
 * bonuses + daily rewards + pay (0: transfers only move coins) + wins -
 * stakes. */
typedef struct economy_totals {
  int64_t balances;     /* sum of every balance */
  int64_t by_kind[7];   /* sum of audit amounts per economy_kind_t (takes and stakes < 0) */
  int64_t audit;        /* sum of every audit amount */
  int64_t pending_bets; /* bets not settled yet */
  int64_t stuck_bets;   /* of those, bets whose payout would overflow the balance */
  int64_t users;        /* balance rows */
} economy_totals_t;

/** Read the totals (sums as BIGINT on both backends). */
int economy_totals(souk_db_t *db, economy_totals_t *out);

#endif
