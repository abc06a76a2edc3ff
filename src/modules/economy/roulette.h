/* European roulette: one zero, 37 pockets, the usual bets and payouts.
 * Pure functions, no I/O.
 *
 * A bet covers a set of pockets; a winning bet returns stake x 36 / n for
 * a bet on n pockets (35:1 on one number, 17:1 on a split, 11:1 on a
 * street, 8:1 on a corner or the first four, 5:1 on a six line, 2:1 on a
 * dozen or column, 1:1 on red/black, odd/even, low/high), stake included.
 * Zero loses every outside bet (no "la partage").
 *
 * The table layout the inside bets refer to: 1-36 in 12 rows of three
 * (1 2 3, 4 5 6, ..., 34 35 36), columns 1 (1, 4, ... 34), 2 and 3, and 0
 * above the first row. */
#ifndef ECONOMY_ROULETTE_H
#define ECONOMY_ROULETTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROULETTE_POCKETS 37
/** Longest canonical bet name, in bytes. */
#define ROULETTE_NAME_MAX 24

/** A parsed bet. */
typedef struct roulette_bet {
  uint64_t pockets;                 /* bit n: pocket n is covered */
  int count;                        /* pockets covered */
  char name[ROULETTE_NAME_MAX + 1]; /* canonical: "red", "17", "split 17-18", "corner 13" */
} roulette_bet_t;

/** Parse what a player typed: a number 0-36; red, black, odd, even, low
 * (1-18), high (19-36); dozen 1-3 (also 1st12, 2nd12, 3rd12); column 1-3;
 * split A-B (two neighbours on the table, or 0 with 1, 2 or 3); street N
 * (the row of N); corner N (N, N+1, N+3, N+4 with N its top-left);
 * line N (the rows starting at N and N+3); "first four" (0-3).  Case and
 * spaces do not matter ("Split 17/18", "dozen2", "col 3").  Returns true,
 * or false with a one-sentence reason in err (cap bytes). */
bool roulette_parse(const char *text, roulette_bet_t *out, char *err, size_t cap);

/** Whether pocket n is red (0 is green, neither red nor black). */
bool roulette_is_red(int n);
/** "green", "red" or "black". */
const char *roulette_color(int n);

/** What a bet returns when the ball lands in pocket: stake x 36 / count
 * when it wins (stake included), 0 when it loses.  0, SOUK_EINVAL (stake
 * <= 0, a pocket out of range, an empty bet) or SOUK_ERANGE (the return
 * does not fit in int64). */
int roulette_return(const roulette_bet_t *bet, int pocket, int64_t stake, int64_t *ret);

/** A random source: 64 uniform bits per call. */
typedef uint64_t (*roulette_rng_cb)(void *ud);
/** One spin: a pocket 0-36, uniform (rejection sampling, no modulo bias). */
int roulette_spin(roulette_rng_cb rng, void *ud);
/** The OS's randomness (getrandom), for real spins. */
uint64_t roulette_rng_os(void *ud);

#endif
