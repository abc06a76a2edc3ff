/* The economy module's shared pieces, between economy.c (config, start,
 * tasks, the Terms of Service gate), coins.c (balances, daily, pay, the
 * leaderboard, grants), tos.c (the Terms of Service commands and prompt)
 * and games.c (roulette and polls).  Loop thread only. */
#ifndef ECONOMY_INT_H
#define ECONOMY_INT_H

#include "ledger.h"
#include "polls.h"
#include "roulette.h"
#include "souk/buf.h"
#include "souk/cmd.h"
#include "souk/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Values of the `economy` config section. */
typedef struct economy_conf {
  int64_t welcome_bonus;     /* coins of a first ToS acceptance */
  int64_t daily_amount;      /* coins of /daily */
  int64_t daily_cooldown_ms; /* between two claims */
  char *tos_file;            /* text of version 1 when none was published */
  char *tos_dir;             /* the only place /coins publish-tos file: reads from; NULL: off */
  int64_t prompt_ttl_ms;     /* a command waiting for acceptance is kept this long */
  int64_t min_bet, max_bet;  /* roulette stakes */
  int64_t spin_frames;       /* edits of the spin message before the result */
  int64_t spin_interval_ms;  /* between those edits */
  int64_t poll_interval_ms;  /* least time between two edits of a poll's message */
  int64_t recover_after_ms;  /* a bet pending this long is settled by the recovery task */
  int64_t seed;              /* roulette's random source: 0 the OS's, else a fixed sequence */
} economy_conf_t;

extern economy_conf_t economy_conf;

/** The module's running state. */
typedef struct economy_state {
  bool started;
  souk_store_t *store; /* from the init context; NULL: no store */
  int64_t tos_version; /* the current ToS version, 0 before one exists */
  uint64_t rng;        /* the fixed sequence's state (economy.roulette.seed) */
  int64_t bets_stuck;  /* pending bets the last recovery could not settle */
  int64_t *stuck_told; /* bets already reported as stuck by this process */
  size_t nstuck_told;
} economy_state_t;

extern economy_state_t economy_g;

/** Colours of the module's embeds. */
#define ECONOMY_COLOR      0xF2C94C
#define ECONOMY_COLOR_WIN  0x27AE60
#define ECONOMY_COLOR_LOSS 0xEB5757

/** Buffer size for economy_fmt. */
#define ECONOMY_FMT_MAX 32
/** coins as "1,234,567" (a minus sign when negative); returns buf. */
const char *economy_fmt(int64_t coins, char *buf);
/** A wait as "5 h 12 min", "3 min 20 s", "12 s". */
void economy_fmt_wait(int64_t ms, char *buf, size_t cap);

/** Run fn in a transaction on the pool (a read-only one unless write),
 * then done on the loop.  When it cannot start (no store), ctx is
 * answered with an error and the result is non-zero: the caller frees
 * its job and stops. */
int economy_run(souk_cmd_ctx_t *ctx, souk_store_tx_cb fn, souk_store_done_cb done, void *ud,
                bool write);
/** Answer ctx with the store's failure (nothing changed). */
void economy_store_error(souk_cmd_ctx_t *ctx, int status);

/** Whether the economy is on in a guild (0: DMs, always on). */
bool economy_enabled(uint64_t guild_id);

/* ---- the Terms of Service (tos.c) ---- */

/** The version user_id is known to have accepted here, 0 when unknown. */
int64_t economy_tos_known(uint64_t user_id);
/** Remember that user_id accepted version. */
void economy_tos_remember(uint64_t user_id, int64_t version);
/** Forget every remembered acceptance (a new version, shutdown). */
void economy_tos_forget_all(void);
/** The "tos" gate (souk/cmd.h): every coin command goes through it. */
void economy_tos_gate(souk_cmd_ctx_t *ctx, void *ud);
/** Publish the first version from economy.tos_file (or the built-in
 * text) when the store has none, and read the current version: blocking,
 * from init. */
int economy_tos_start(souk_store_t *st);

/* ---- the random source of games ---- */

/** 64 random bits: the OS's, or the fixed sequence of economy.roulette.seed. */
uint64_t economy_rng(void *ud);

/* ---- games.c ---- */

/** Stop running spins (their bets stay pending and are settled by the
 * recovery at the next start). */
void economy_games_stop(void);

/* ---- command and component handlers ---- */

void economy_cmd_balance(souk_cmd_ctx_t *ctx);
void economy_cmd_daily(souk_cmd_ctx_t *ctx);
void economy_cmd_pay(souk_cmd_ctx_t *ctx);
void economy_cmd_leaderboard(souk_cmd_ctx_t *ctx);
void economy_cmd_grant(souk_cmd_ctx_t *ctx);
void economy_cmd_take(souk_cmd_ctx_t *ctx);
void economy_cmd_audit(souk_cmd_ctx_t *ctx);
void economy_press_leaderboard(souk_cmd_ctx_t *ctx);

void economy_cmd_tos(souk_cmd_ctx_t *ctx);
void economy_cmd_tosinfo(souk_cmd_ctx_t *ctx);
void economy_cmd_tos_publish(souk_cmd_ctx_t *ctx);
void economy_press_tos(souk_cmd_ctx_t *ctx);
void economy_modal_tos(souk_cmd_ctx_t *ctx);

void economy_cmd_roulette(souk_cmd_ctx_t *ctx);
void economy_press_spin(souk_cmd_ctx_t *ctx);
void economy_cmd_poll(souk_cmd_ctx_t *ctx);
void economy_press_poll(souk_cmd_ctx_t *ctx);

#define ECONOMY_LB_PREFIX   "eco:lb:"
#define ECONOMY_TOS_PREFIX  "eco:tos:"
#define ECONOMY_TOS_MODAL   "eco:tosmodal"
#define ECONOMY_SPIN_PREFIX "eco:rl:"
#define ECONOMY_POLL_PREFIX "eco:poll:"

#endif
