/* Fair market value of one SkyBlock market, and the auction house's fees.
 *
 * Pure functions of their inputs (no clock, no globals), so every rule is
 * tested alone.  Prices are int64 coins per unit.
 *
 * Sales are made resistant to manipulation before any statistic is taken,
 * in this order, each step counted:
 *   1. self-trades and back-and-forth trades are dropped: every sale
 *      between two accounts that sold to each other in the window (A -> B
 *      and B -> A), the pattern of a price pumped by two accounts;
 *   2. one price per seller: a seller's sales collapse to their median;
 *   3. one price per buyer: the same for buyers;
 *   4. outliers are bounded: with 4 or more prices, those outside Tukey's
 *      fences (Q1 - 1.5 IQR, Q3 + 1.5 IQR); with fewer, those more than 5x
 *      away from the median.
 * What is left gives the median and the interquartile mean.
 *
 * The value, by the first rule that has evidence:
 *   sales   at least min_sales clean sales: their median, but never above
 *           the live floor (the lowest other BIN): nobody pays the median
 *           while a cheaper listing waits;
 *   ladder  a live BIN listing other than the one judged: the lowest such
 *           (the "2nd-lowest BIN" when the judged listing is the lowest);
 *   hours   the median of the window's hourly floors (the lowest BIN seen
 *           in each hour), when three hours or more have one;
 *   none    no value: nothing is judged against it.
 * A market is thin when it has fewer live BIN listings than thin_wall.
 * Every value carries its method and its evidence as a sentence
 * ("median of 37 sales in 12 h", "2nd-lowest BIN, thin market: 2
 * listings"). */
#ifndef SKYBLOCK_SB_FMV_H
#define SKYBLOCK_SB_FMV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** One sale, as the window keeps it. */
typedef struct sb_sale {
  int64_t ts_ms;   /* when it sold */
  int64_t unit;    /* price per unit */
  int64_t price;   /* the whole stack's price */
  uint64_t seller; /* sb_uuid_h64 of the accounts */
  uint64_t buyer;
} sb_sale_t;

/** How a value was found. */
typedef enum sb_fmv_method {
  SB_FMV_NONE = 0,
  SB_FMV_SALES,
  SB_FMV_SALES_CAPPED, /* the sales median, capped by the live floor */
  SB_FMV_LADDER,
  SB_FMV_HOURS,
} sb_fmv_method_t;

/** "none", "sales", "sales (capped by the floor)", "ladder", "hourly floors". */
const char *sb_fmv_method_name(sb_fmv_method_t m);

/** The inputs of one valuation. */
typedef struct sb_fmv_in {
  const sb_sale_t *sales; /* the window's sales of the market, any order */
  size_t nsales;
  const int64_t *live;   /* live BIN unit prices, ascending, the judged listing left out */
  size_t nlive;          /* entries in live (the ladder, at most its size) */
  size_t live_total;     /* live BIN listings in all, the judged one left out */
  const int64_t *floors; /* hourly floors of the window, any order */
  size_t nfloors;
  /** Optional: the sales statistics already computed for these sales
   * (sales_* and dropped_* fields, from an earlier sb_fmv_compute), so a
   * market judged many times cleans its sales once. */
  const struct sb_fmv *sales_pre;
  bool judged; /* valuing for a listing being judged (changes the wording) */
  unsigned window_hours;
  unsigned min_sales; /* clean sales needed for the sales rule (>= 1) */
  unsigned thin_wall; /* thin below this many live listings */
} sb_fmv_in_t;

/** A valuation with its evidence. */
typedef struct sb_fmv {
  int64_t value; /* per unit; 0 when method is SB_FMV_NONE */
  sb_fmv_method_t method;
  bool thin;
  uint32_t sales_total;                                  /* sales in the window */
  uint32_t sales_clean;                                  /* left after the four steps */
  uint32_t dropped_pairs;                                /* step 1 */
  uint32_t dropped_sellers;                              /* step 2 */
  uint32_t dropped_buyers;                               /* step 3 */
  uint32_t dropped_outliers;                             /* step 4 */
  int64_t sales_median, sales_iqm, sales_min, sales_max; /* of the clean sales; 0 if none */
  int64_t floor;                                         /* lowest other live BIN, 0 if none */
  uint32_t live;  /* live BIN listings (the judged one left out) */
  uint32_t depth; /* live listings within 10% above the floor: the wall */
  char evidence[160];
} sb_fmv_t;

/** Value a market.  Allocates scratch memory for the sales (freed before
 * returning).  Always fills *out; returns out->value. */
int64_t sb_fmv_compute(const sb_fmv_in_t *in, sb_fmv_t *out);

/** Clean sales by steps 1-4 above: writes the kept unit prices, ascending,
 * into kept (nsales entries of room) and the counts into *out's sales_*
 * and dropped_* fields.  Returns the number kept. */
size_t sb_fmv_clean_sales(const sb_sale_t *sales, size_t nsales, int64_t *kept, sb_fmv_t *out);

/** Median of n ascending values (the mean of the middle two, rounded
 * down, for even n); 0 for n == 0. */
int64_t sb_median_sorted(const int64_t *v, size_t n);
/** Interquartile mean of n ascending values: the mean of those between
 * the first and third quartile (indices n/4 .. n - n/4); 0 for n == 0. */
int64_t sb_iqm_sorted(const int64_t *v, size_t n);

/** The auction house's fees on a sale (configuration, with the game's
 * defaults; rates in basis points). */
typedef struct sb_fees {
  int64_t tier1_below; /* listing fee tier1_bp for prices below this (10M) */
  int64_t tier2_upto;  /* tier2_bp up to and including this (100M), tier3_bp above */
  int32_t tier1_bp, tier2_bp, tier3_bp; /* 100, 200, 250 */
  int64_t tax_above;                    /* claim tax on proceeds above this (1M) */
  int32_t tax_bp;                       /* 100 */
} sb_fees_t;

/** The game's fees: 1% below 10M, 2% up to 100M, 2.5% above, and 1% tax
 * when claiming more than 1M. */
void sb_fees_defaults(sb_fees_t *f);
/** Fees paid on selling at price (whole coins, rounded up: a profit is
 * never overstated). */
int64_t sb_fees_on(const sb_fees_t *f, int64_t price);

#endif
