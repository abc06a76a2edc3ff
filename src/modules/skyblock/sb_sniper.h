/* The sniper: judging a new BIN listing against its market's value, and
 * the dedupe that keeps one alert per auction and per item + seller.
 *
 * A listing is judged once, as the page holding it is applied (never
 * after the sweep).  In order, the first rule that fails gives the
 * verdict, and every verdict is counted:
 *   not_bin      an auction with bids, not a Buy It Now;
 *   old          listed more than max_listing_age before the page's
 *                lastUpdated: it was there before we looked (a start-up's
 *                first sweep sees 60,000 such listings);
 *   no_value     the market has no fair market value (sb_fmv.h);
 *   thin         fewer live listings than thin_wall_threshold (unless
 *                allow_thin);
 *   illiquid     fewer clean sales in the window than min_sales;
 *   low_profit   value x count - fees - price below min_profit;
 *   low_margin   profit / price below min_margin;
 *   duplicate    this auction was alerted before;
 *   same_seller  this seller's listing of this market was alerted at a
 *                price per unit not improved by improve (10%) since;
 *   alert        none of the above: an alert is sent.
 * The dedupe state is bounded (max entries, oldest dropped first, and
 * entries older than ttl) and is rebuilt after a restart from the rows
 * the module keeps in the store (sb_dedupe_load_row).
 *
 * Threads: loop thread only.  Pure apart from the dedupe state it is
 * given. */
#ifndef SKYBLOCK_SB_SNIPER_H
#define SKYBLOCK_SB_SNIPER_H

#include "sb_fmv.h"
#include "sb_market.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Settings (the `skyblock.sniper.*` keys). */
typedef struct sb_sniper_conf {
  int64_t min_profit;         /* coins after fees */
  int32_t min_margin_bp;      /* profit / price, basis points */
  uint32_t min_sales;         /* clean sales in the window */
  bool allow_thin;            /* alert in thin markets too */
  int64_t max_listing_age_ms; /* judge only listings this young */
  int32_t improve_bp;         /* same item + seller again after this drop (1000 = 10%) */
  size_t dedupe_max;          /* dedupe entries kept */
  int64_t dedupe_ttl_ms;      /* and for this long */
  sb_fees_t fees;
} sb_sniper_conf_t;

/** Defaults: 1M profit, 10% margin, 3 sales, no thin markets, 5 minutes,
 * 10%, 50,000 entries, 48 h, the game's fees. */
void sb_sniper_conf_defaults(sb_sniper_conf_t *c);

/** Verdicts, in the order the rules run. */
typedef enum sb_verdict {
  SB_V_ALERT = 0,
  SB_V_NOT_BIN,
  SB_V_OLD,
  SB_V_NO_VALUE,
  SB_V_THIN,
  SB_V_ILLIQUID,
  SB_V_LOW_PROFIT,
  SB_V_LOW_MARGIN,
  SB_V_DUPLICATE,
  SB_V_SAME_SELLER,
  SB_V__COUNT
} sb_verdict_t;

/** "alert", "not_bin", "old", ... (metric label values). */
const char *sb_verdict_name(sb_verdict_t v);

/** The outcome of judging one listing. */
typedef struct sb_judgement {
  sb_verdict_t verdict;
  int64_t price; /* the listing's price (whole stack) */
  int64_t unit;  /* per unit */
  uint32_t count;
  int64_t resale; /* value x count */
  int64_t fees;   /* on the resale */
  int64_t profit; /* resale - fees - price */
  int32_t margin_bp;
  sb_fmv_t fmv;
} sb_judgement_t;

/** The dedupe state (opaque). */
typedef struct sb_dedupe sb_dedupe_t;

/** A new dedupe state holding at most max entries of each kind for ttl ms. */
sb_dedupe_t *sb_dedupe_new(size_t max, int64_t ttl_ms);
/** Free it (NULL allowed). */
void sb_dedupe_free(sb_dedupe_t *d);
/** Was this auction alerted? */
bool sb_dedupe_has_uuid(const sb_dedupe_t *d, const sb_uuid_t *uuid);
/** The lowest price per unit this seller was alerted at in this market
 * (market_hash: sb_market_hash()), or 0 when never (or expired). */
int64_t sb_dedupe_seller_unit(const sb_dedupe_t *d, uint64_t market_hash, const sb_uuid_t *seller);
/** Remember an alert at at_ms (also what the store's rows replay). */
void sb_dedupe_record(sb_dedupe_t *d, const sb_uuid_t *uuid, uint64_t market_hash,
                      const sb_uuid_t *seller, int64_t unit, int64_t at_ms);
/** Drop entries older than ttl before now_ms. */
void sb_dedupe_prune(sb_dedupe_t *d, int64_t now_ms);
/** Entries held (auctions, item + seller pairs). */
void sb_dedupe_size(const sb_dedupe_t *d, size_t *uuids, size_t *pairs);

/** A stable hash of a market's key and attrs (for the dedupe and its rows). */
uint64_t sb_market_hash(const char *key, const char *attrs);

/** Judge live listing l (in store m, as page lastUpdated now_ms saw it)
 * against its market's value.  Does not record anything: on SB_V_ALERT
 * the caller records it with sb_dedupe_record once the alert is queued.
 * Returns out->verdict. */
sb_verdict_t sb_snipe_judge(const sb_sniper_conf_t *c, sb_mkts_t *m, const sb_dedupe_t *d,
                            const sb_live_t *l, int64_t now_ms, sb_judgement_t *out);

#endif
