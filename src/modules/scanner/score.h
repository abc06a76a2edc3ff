/* The scanner's ranking: a documented score per contract and the changes
 * of the top list between two scans.
 *
 * The score (README "Futures scanner" repeats it for users).  For every
 * contract of one scan, four factors:
 *   T = log10(1 + turnoverOf24h)                      traded value
 *   M = |priceChgPct|                                  how far it moved
 *   F = |fundingFeeRate|                               how crowded one side is
 *   O = log10(1 + openInterest x multiplier x markPrice)  open interest's value
 * Turnover and open interest span many orders of magnitude (BTC against a
 * small coin), hence the logarithm: linear, every contract but the
 * largest would score about 0.  Each factor is normalised over the
 * contracts of the same scan to [0, 1] by min-max: n(x) = (x - min) /
 * (max - min), 0 when all are equal.  The score is
 *   100 x (wT n(T) + wM n(M) + wF n(F) + wO n(O)) / (wT + wM + wF + wO)
 * with the weights from config, so it runs from 0 to 100.  Each weighted
 * term is also kept (its "points"), which is why a contract ranks where it
 * does.
 *
 * This is the one place the scanner uses floating point: a score is not
 * money.  To make the order exact and repeatable, the score is rounded to
 * 1/10000 (an int64 of ten-thousandths) before sorting; equal scores are
 * ordered by higher turnover, then by symbol (byte order), so the same
 * input always gives the same ranking.
 *
 * Pure functions: no I/O, no global state. */
#ifndef SOUK_SCANNER_SCORE_H
#define SOUK_SCANNER_SCORE_H

#include "kucoin.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The four factors, in the order the weights and points are kept. */
enum { SCANNER_F_TURNOVER, SCANNER_F_MOVE, SCANNER_F_FUNDING, SCANNER_F_OI, SCANNER_NFACTORS };

/** "turnover", "move", "funding", "open interest"; "?" otherwise. */
const char *scanner_factor_name(int f);

/** Weights of the factors (>= 0, not all 0). */
typedef struct scanner_weights {
  double w[SCANNER_NFACTORS];
} scanner_weights_t;

/** One ranked contract. */
typedef struct scanner_ranked {
  scanner_contract_t c;
  double raw[SCANNER_NFACTORS];    /* T, M, F, O before normalising */
  double norm[SCANNER_NFACTORS];   /* n(x) in [0, 1] */
  double points[SCANNER_NFACTORS]; /* 100 x w n(x) / sum(w): the score's parts */
  double score;                    /* sum of points, 0..100 */
  int64_t score_e4;                /* score rounded to 1/10000, what ranks */
  uint32_t rank;                   /* 1-based */
} scanner_ranked_t;

/** Open interest's value in the quote currency: openInterest x multiplier x
 * markPrice, as a double (a score input, never money). */
double scanner_oi_value(const scanner_contract_t *c);

/** Rank n contracts: fills out[0..n) (the caller's array of n) best first
 * with ranks 1..n.  Returns 0, or SOUK_EINVAL for weights that are
 * negative, not finite or all 0. */
int scanner_rank(const scanner_contract_t *in, size_t n, const scanner_weights_t *w,
                 scanner_ranked_t *out);

/** The reason line of one ranked contract: "turnover 38.21 + move 12.05 +
 * funding 3.10 + open interest 13.50 = 66.86". */
void scanner_explain(const scanner_ranked_t *r, char *out, size_t cap);

/* ---- top-list changes ---- */

/** Kinds of change between two top lists. */
typedef enum scanner_change_kind {
  SCANNER_ENTERED, /* in the new list, not in the old */
  SCANNER_LEFT,    /* in the old list, not in the new */
  SCANNER_MOVED,   /* in both, at another rank */
} scanner_change_kind_t;

/** One change. */
typedef struct scanner_change {
  scanner_change_kind_t kind;
  char symbol[SCANNER_SYMBOL_MAX + 1];
  uint32_t from, to; /* 1-based ranks; 0 where the symbol was not listed */
} scanner_change_t;

/** A top list: symbols best first. */
typedef struct scanner_top {
  char (*sym)[SCANNER_SYMBOL_MAX + 1];
  size_t n;
} scanner_top_t;

/** Changes from old to cur, written to out (cap entries; at most
 * old->n + cur->n are possible): entered and moved in the new list's
 * order, then left in the old list's order.  Returns the number of
 * changes (0: the same list, nothing to post). */
size_t scanner_top_diff(const scanner_top_t *old, const scanner_top_t *cur, scanner_change_t *out,
                        size_t cap);

/** Encode a top list as "SYM1,SYM2,..." (for the store) and back.  decode
 * allocates top->sym (free with souk_free); it skips symbols that are not
 * valid.  encode returns the length or SOUK_ETOOBIG. */
int scanner_top_encode(const scanner_top_t *t, char *out, size_t cap);
void scanner_top_decode(const char *s, size_t len, scanner_top_t *t);

#endif
