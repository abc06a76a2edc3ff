/* The Market Sim's price cache: the last known price of each symbol from
 * the live provider chain, in memory, bounded, persisted and reloaded.
 *
 * An entry is served without asking the chain while it was fetched less
 * than refresh_ms ago (a hit).  Otherwise the chain is asked; concurrent
 * lookups of one symbol share one chain request.  When the chain cannot
 * price the symbol, the entry still answers while it is younger than
 * ttl_ms, marked as a fallback with its age: quotes may show it, trades
 * never use it (market_pc_result_t.tradable is false).
 *
 * "Fresh enough to trade" is measured from the quote's own timestamp when
 * the provider gave one (else from when it was fetched): a quote is
 * tradable when it is younger than fresh_ms, or when no NYSE session has
 * opened since it was made (a closed market's last price).
 *
 * Persistence: changed entries are written to the store's market_last_price
 * table in the background (souk_store_tx_async) after each update, and
 * market_pc_flush() writes them now; a stored row is only ever replaced by
 * one fetched no earlier.  market_pc_reload() merges the table's rows into
 * memory: an entry fetched no earlier than its row stays (a quote that
 * arrived while the reload ran), as do entries the table lacks.
 *
 * Threads: everything runs on the loop thread.  Ownership: the cache owns
 * its entries; a result handed to a callback is valid only during it. */
#ifndef MARKET_PRICECACHE_H
#define MARKET_PRICECACHE_H

#include "price.h"
#include "providers.h"
#include "souk/loop.h"
#include "souk/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The fetcher the cache asks on a miss: market_chain_quote's contract
 * (0 and cb runs exactly once, later; or an error and cb never runs). */
typedef int (*market_pc_fetch_cb)(void *fud, const char *symbol, market_quote_cb cb, void *ud);

/** Settings.  Zero values take the defaults noted. */
typedef struct market_pc_conf {
  uint64_t ttl_ms;          /* last-known answers for this long (default 24 h) */
  uint64_t fresh_ms;        /* tradable age of a quote (default 15 min) */
  uint64_t refresh_ms;      /* served without asking the chain (default 30 s) */
  size_t max_entries;       /* LRU bound (default 1000) */
  const souk_clock_t *wall; /* UTC Unix ms; NULL: souk_unix_ms() */
  market_pc_fetch_cb fetch; /* NULL: no provider (every miss fails) */
  void *fetch_ud;
  souk_store_t *store; /* NULL: no persistence */
} market_pc_conf_t;

/** A price cache (opaque). */
typedef struct market_pc market_pc_t;

/** Create a cache.  conf is copied; its clock and store must outlive it. */
market_pc_t *market_pc_new(const market_pc_conf_t *conf);
/** Free the cache.  Lookups waiting for the fetcher are answered with
 * SOUK_ECANCELED first.  A background write still running keeps its own
 * copy of the rows.  NULL is fine. */
void market_pc_free(market_pc_t *pc);

/** What a lookup ended with. */
typedef struct market_pc_result {
  int err;              /* 0, SOUK_ENOTFOUND (no price at all) or SOUK_ECANCELED */
  market_quote_t quote; /* err == 0 */
  bool cached;          /* answered from memory without asking the chain */
  bool fallback;        /* the chain failed: this is the last known price */
  bool tradable;        /* fresh enough to trade, and not a fallback */
  int64_t age_ms;       /* now - quote time (or fetch time) */
  int64_t fetched_ms;   /* when the cache got it */
  const char *message;  /* err != 0 or fallback: why the chain did not answer */
} market_pc_result_t;

/** Lookup callback; may run before market_pc_get() returns (a hit). */
typedef void (*market_pc_cb)(const market_pc_result_t *r, void *ud);

/** Look symbol up.  Returns 0 (cb runs exactly once) or SOUK_EINVAL for an
 * invalid symbol (cb never runs). */
int market_pc_get(market_pc_t *pc, const char *symbol, market_pc_cb cb, void *ud);

/** Put a quote in (as the chain's answers are). */
void market_pc_put(market_pc_t *pc, const market_quote_t *q);

/** The cached price of symbol without asking anyone: 0 and *out, or
 * SOUK_ENOTFOUND (absent or older than ttl_ms). Counts nothing. */
int market_pc_peek(market_pc_t *pc, const char *symbol, market_quote_t *out, int64_t *fetched_ms);

/** Is quote q (fetched at fetched_ms) fresh enough to trade at now_ms? */
bool market_pc_tradable(const market_pc_t *pc, const market_quote_t *q, int64_t fetched_ms,
                        int64_t now_ms);

/** Number of entries (expired ones included until evicted). */
size_t market_pc_count(const market_pc_t *pc);
/** Entry i (0-based, most recently used first is NOT promised): 0, or
 * SOUK_ERANGE past the end. */
int market_pc_at(const market_pc_t *pc, size_t i, market_quote_t *q, int64_t *fetched_ms);

/** Is an entry fetched at fetched_ms still within ttl_ms (what
 * market_pc_peek answers)?  For walking the entries with market_pc_at. */
bool market_pc_within_ttl(const market_pc_t *pc, int64_t fetched_ms);

/** Counters. */
typedef struct market_pc_stats {
  uint64_t hits, misses, refreshes, stale, coalesced, evictions, fetch_errors;
  uint64_t persisted, persist_errors;
  size_t entries, inflight;
} market_pc_stats_t;
/** Read the counters. */
void market_pc_stats(const market_pc_t *pc, market_pc_stats_t *out);

/** Drop every entry from memory (the store keeps its rows). */
void market_pc_clear(market_pc_t *pc);

/** Persistence done: status 0 or SOUK_E*, n rows written or loaded. */
typedef void (*market_pc_done_cb)(void *ud, int status, size_t n);
/** Write every entry to the store now.  Returns 0 (done runs once, later)
 * or SOUK_ENOTSUP without a store (done never runs). */
int market_pc_flush(market_pc_t *pc, market_pc_done_cb done, void *ud);
/** Merge the store's rows into memory (rows older than ttl_ms are
 * skipped; an entry is replaced only by a row fetched later than it; dirty
 * flags of kept entries stay).  Returns 0 (done runs once, later) or
 * SOUK_ENOTSUP. */
int market_pc_reload(market_pc_t *pc, market_pc_done_cb done, void *ud);
/** Write every entry now, blocking (shutdown): all of them, so rows a
 * cancelled background write held are not lost.  0 or SOUK_E*. */
int market_pc_flush_sync(market_pc_t *pc);

/** Forget the fetcher (before freeing it): from now on every miss fails
 * with "no price provider is configured".  Lookups already waiting are
 * still answered by the old fetcher's callbacks. */
void market_pc_detach_fetch(market_pc_t *pc);

#endif
