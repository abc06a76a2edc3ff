/* The SkyBlock feature store: every market's live listings, ladders,
 * hourly statistics and recent sales, bounded in memory.
 *
 * A market is one item key plus its secondary key of value-bearing
 * attributes (item.h): listings in one market are priced against each
 * other.  For each market the store keeps
 *   - the live BIN ladder: the lowest `ladder_size` (at most 16) live BIN
 *     listings by price per unit, rebuilt from the live listings after
 *     every complete sweep and kept up to date in between;
 *   - the open hour: the lowest `ladder_size` distinct BIN listings seen
 *     during the hour (auction uuid and seller kept), how many distinct
 *     BIN listings were seen and how many were new;
 *   - the sales of the window (auctions_ended, price per unit, seller and
 *     buyer), for the fair market value;
 *   - closed hours: per market the ladder's prices, listing counts and
 *     sales statistics (count, volume, min, median, interquartile mean,
 *     max), as the hourly summaries hold them (no uuids, no sellers).
 * The window is `window_hours` closed hours plus the open one; shrinking
 * it (the memory guard) drops the oldest hours and their sales at once.
 *
 * Hours are data time: the hour of the sweep's lastUpdated, not of this
 * machine's clock, so a replay or a test clock gives the same summaries.
 * An hour closes `hour_grace_ms` (90 s) after it ends, so the sales of its
 * last minute, which auctions_ended reports up to 60 s later, are in it;
 * listings seen during the grace count for the closing hour.
 *
 * Memory is bounded: at most `live_cap` live listings (rows_soft_cap); a
 * listing past it is refused and counted; markets with nothing left in
 * the window are forgotten when an hour closes.
 *
 * Threads: loop thread only (the thread pool parses and decodes pages;
 * the results are applied here).  Ownership: the store owns everything;
 * pointers it returns are valid until the next call that changes it. */
#ifndef SKYBLOCK_SB_MARKET_H
#define SKYBLOCK_SB_MARKET_H

#include "sb_fmv.h"
#include "sb_page.h"
#include "souk/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Most entries of a ladder (the seed's lowest_ladder_size is at most this). */
#define SB_LADDER_MAX 16
/** An hour index: Unix ms / 3,600,000. */
#define SB_HOUR_MS 3600000LL

/** Settings of the store. */
typedef struct sb_mkts_conf {
  unsigned ladder_size;  /* 1..SB_LADDER_MAX */
  unsigned window_hours; /* closed hours kept, 1..720 */
  unsigned thin_wall;    /* thin_wall_threshold */
  unsigned min_sales;    /* clean sales for an FMV from sales */
  size_t live_cap;       /* most live listings (rows_soft_cap) */
  int64_t hour_grace_ms; /* 90000 */
} sb_mkts_conf_t;

/** One live listing. */
typedef struct sb_live {
  sb_uuid_t uuid, seller;
  int64_t price; /* the whole stack */
  int64_t unit;  /* per unit, rounded up */
  int64_t start_ms, end_ms;
  uint32_t mid;   /* its market */
  uint32_t count; /* stack size */
  uint32_t gen;   /* the last sweep that saw it */
  int32_t hour;   /* the last open hour that counted it */
  bool bin;
  bool used;
} sb_live_t;

/** One market. */
typedef struct sb_mkt sb_mkt_t;

/** A closed hour's row of one market, as the summaries hold it. */
typedef struct sb_sumrow {
  const char *key;   /* the item key */
  const char *attrs; /* secondary key, "" when none */
  const char *name;  /* a display name seen for it */
  uint32_t listings, new_listings, sales;
  int64_t volume;                 /* coins, whole stacks */
  int64_t smin, smed, siqm, smax; /* per unit; 0 when no sale */
  uint8_t nlad;
  int64_t lad[SB_LADDER_MAX]; /* per unit, ascending */
} sb_sumrow_t;

/** One closed hour, self-contained (strings in its own arena): safe to
 * hand to the thread pool.  Free with sb_summary_free(). */
typedef struct sb_summary {
  int64_t hour; /* hour index */
  sb_sumrow_t *rows;
  size_t n;
  char *arena;
} sb_summary_t;

/** Free a summary's memory (and the struct). */
void sb_summary_free(sb_summary_t *s);

/** Counters of the store. */
typedef struct sb_mkts_stats {
  size_t markets, live, live_bin, sales, hours;
  uint64_t listings_added, listings_removed, listings_refused; /* refused: live_cap */
  uint64_t sales_added, sales_duplicate;
  uint64_t hours_closed, markets_forgotten;
  int64_t open_hour; /* hour index, 0 before any data */
  int64_t data_now;  /* the newest data time seen */
  unsigned window_hours;
  size_t approx_bytes; /* memory held, estimated */
} sb_mkts_stats_t;

/** The store (opaque). */
typedef struct sb_mkts sb_mkts_t;

/** A new empty store; conf is copied. */
sb_mkts_t *sb_mkts_new(const sb_mkts_conf_t *conf);
/** Free it; NULL is allowed. */
void sb_mkts_free(sb_mkts_t *m);
/** Empty it, keeping the handle and its conf (before sb_mkts_load into a
 * store that holds data already). */
void sb_mkts_reset(sb_mkts_t *m);
/** Counters now. */
void sb_mkts_stats(const sb_mkts_t *m, sb_mkts_stats_t *out);
/** Settings now. */
const sb_mkts_conf_t *sb_mkts_conf(const sb_mkts_t *m);

/* ---- markets ------------------------------------------------------------ */

/** The market of key + attrs, created on first use (name is kept as its
 * display name when it has none yet; may be NULL).  Returns its id. */
uint32_t sb_mkts_intern(sb_mkts_t *m, const char *key, const char *attrs, const char *name);
/** The market with this key + attrs, or UINT32_MAX. */
uint32_t sb_mkts_find(const sb_mkts_t *m, const char *key, const char *attrs);
/** A market's key, attrs and name (NULL for an unknown id). */
const char *sb_mkts_key(const sb_mkts_t *m, uint32_t mid);
const char *sb_mkts_attrs(const sb_mkts_t *m, uint32_t mid);
const char *sb_mkts_name(const sb_mkts_t *m, uint32_t mid);
/** Number of market slots (ids are below it; some may be free). */
uint32_t sb_mkts_count(const sb_mkts_t *m);
/** True when id names a market in use. */
bool sb_mkts_used(const sb_mkts_t *m, uint32_t mid);

/** What the store knows about one market. */
typedef struct sb_mkt_info {
  uint32_t live_bin, live_all;
  uint32_t sales; /* in the window */
  uint32_t h_listings, h_new;
  size_t nlad;
  int64_t lad[SB_LADDER_MAX]; /* live BIN ladder, per unit */
  uint32_t hours;             /* closed hours of the window with a row */
} sb_mkt_info_t;
/** Fill *out; SOUK_ENOTFOUND for an unknown id. */
int sb_mkts_info(const sb_mkts_t *m, uint32_t mid, sb_mkt_info_t *out);

/* ---- live listings ------------------------------------------------------ */

/** The live listing with this uuid, or NULL. */
const sb_live_t *sb_mkts_live_find(const sb_mkts_t *m, const sb_uuid_t *uuid);
/** Mark a known live listing as seen by sweep gen, with its current
 * price (a bid moves an auction's price; a BIN's never changes).  Counts
 * it for the open hour once. */
void sb_mkts_live_touch(sb_mkts_t *m, const sb_live_t *l, uint32_t gen, int64_t price);
/** Add a new live listing of market mid seen by sweep gen (count >= 1).
 * Returns it, or NULL when live_cap is reached (counted as refused). */
const sb_live_t *sb_mkts_live_add(sb_mkts_t *m, const sb_listing_t *l, uint32_t mid, uint32_t count,
                                  uint32_t gen);
/** Remove the live listing with this uuid (sold or cancelled).  True if
 * there was one. */
bool sb_mkts_live_remove(sb_mkts_t *m, const sb_uuid_t *uuid);
/** A complete, consistent sweep gen ended: listings it did not see are
 * gone (sold or expired) and are removed; every live ladder is rebuilt.
 * Returns how many were removed. */
size_t sb_mkts_sweep_done(sb_mkts_t *m, uint32_t gen);
/** Walk the live listings: the first used one at or after *pos (start at
 * 0), advancing *pos past it; NULL at the end. */
const sb_live_t *sb_mkts_live_next(const sb_mkts_t *m, size_t *pos);

/* ---- sales -------------------------------------------------------------- */

/** Add a sale (auctions_ended) of count units at price to market mid.
 * The same auction id given again (auctions_ended overlaps between
 * refreshes) is ignored and counted.  True if added. */
bool sb_mkts_sale_add(sb_mkts_t *m, uint32_t mid, const sb_uuid_t *auction, int64_t ts_ms,
                      int64_t price, uint32_t count, uint64_t seller, uint64_t buyer);
/** True when this auction's sale was already added. */
bool sb_mkts_sale_known(const sb_mkts_t *m, const sb_uuid_t *auction);

/* ---- time and hours ----------------------------------------------------- */

/** Called for each hour that closes, with its summary (the callee owns
 * it and frees it with sb_summary_free()). */
typedef void (*sb_hour_closed_cb)(void *ud, sb_summary_t *s);

/** Data time moved to now_ms (a sweep's lastUpdated).  Closes every hour
 * whose end + hour_grace_ms has passed, oldest first, calling closed (may
 * be NULL) for each, then drops hours and sales older than the window and
 * forgets empty markets.  Data time never goes back.  Returns the number
 * of hours closed. */
size_t sb_mkts_advance(sb_mkts_t *m, int64_t now_ms, sb_hour_closed_cb closed, void *ud);
/** Change the window (the memory guard shrinks it); takes effect now. */
void sb_mkts_set_window(sb_mkts_t *m, unsigned window_hours);
/** The open hour's rows so far, as a summary (for the checkpoint of the
 * open hour and for tests); the caller frees it. */
sb_summary_t *sb_mkts_open_summary(const sb_mkts_t *m);

/* ---- value -------------------------------------------------------------- */

/** Value market mid, leaving out the live listing `exclude` (NULL: none),
 * which is being judged.  Fills *out; returns out->value (0: none). */
int64_t sb_mkts_fmv(sb_mkts_t *m, uint32_t mid, const sb_live_t *exclude, sb_fmv_t *out);

/** The `n` most active markets (sales in the window, then new listings
 * this hour), most active first, into ids; returns how many. */
size_t sb_mkts_most_active(const sb_mkts_t *m, uint32_t *ids, size_t n);

/** True when every word of query (split at spaces, '_' and ':') appears,
 * in any case, in one of the n texts (NULL texts are skipped); "" matches
 * everything.  The one rule for searching markets and matching alerts. */
bool sb_words_match(const char *query, const char *const *texts, size_t n);

/** Markets whose name, key or attrs contain every word of query (any
 * case), the most active first, into ids; returns how many. */
size_t sb_mkts_search(const sb_mkts_t *m, const char *query, uint32_t *ids, size_t n);

/* ---- checkpoint --------------------------------------------------------- */

/** Append the window (markets, closed hours, the open hour, sales, recent
 * sale ids) to out in a versioned binary form.  Live listings are not in
 * it: the next sweep rebuilds them. */
void sb_mkts_save(const sb_mkts_t *m, souk_buf_t *out);
/** Load what sb_mkts_save wrote into an empty store.  0, SOUK_EPARSE
 * (not a checkpoint, or damaged: the store is left empty) or SOUK_ENOTSUP
 * (another version). */
int sb_mkts_load(sb_mkts_t *m, const void *data, size_t len);

#endif
