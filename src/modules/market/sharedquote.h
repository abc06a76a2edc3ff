/* Quotes shared by the processes of one bot through the Redis cache.
 *
 * Each process keeps its own price cache (pricecache.h); this sits between
 * it and the provider chain, as its fetch function.  When the cache is
 * Redis (cache.url set and Redis answering), a quote one process fetched
 * from the providers is kept in Redis (category "market.quote", key
 * "market:quote:<SYMBOL>") for the price cache's refresh interval, and the
 * others take it from there instead of asking the providers again: every
 * process shows the same price, and the providers' request budgets are
 * spent once for the bot, not once per process.  The entry carries when
 * it was fetched, so a process that takes it treats it as that old.
 *
 * Redis down or memory-only: every lookup goes to the chain, as with one
 * process.  A Redis reply that is not a quote is a miss.
 *
 * Loop thread only. */
#ifndef SOUK_MARKET_SHAREDQUOTE_H
#define SOUK_MARKET_SHAREDQUOTE_H

#include "pricecache.h"
#include "souk/cache.h"

#include <stdint.h>

/** The shared layer. */
typedef struct market_sq market_sq_t;

/** What it is made from: the cache (borrowed, NULL: none), the fetch
 * function it stands in front of (the chain's), how long a shared quote is
 * reused (the price cache's refresh interval, > 0), and the wall clock the
 * price cache uses (NULL: the real one). */
typedef struct market_sq_conf {
  souk_cache_t *cache;
  market_pc_fetch_cb fetch;
  void *fetch_ud;
  uint64_t ttl_ms;
  const souk_clock_t *wall;
} market_sq_conf_t;

/** Counters. */
typedef struct market_sq_stats {
  uint64_t shared_hits; /* lookups answered from Redis */
  uint64_t fetched;     /* lookups that went to the providers */
  uint64_t published;   /* quotes put in Redis for the others */
} market_sq_stats_t;

/** A new layer; conf is copied. */
market_sq_t *market_sq_new(const market_sq_conf_t *conf);
/** A market_pc_fetch_cb: fud is the layer.  Same contract as the chain's
 * lookup (cb runs once, later, on the loop). */
int market_sq_fetch(void *fud, const char *symbol, market_quote_cb cb, void *ud);
/** Answer every lookup still waiting for Redis with SOUK_ECANCELED, and
 * send no more to the fetch function (before freeing what it uses). */
void market_sq_cancel(market_sq_t *sq);
/** Free it (after market_sq_cancel and after the fetch function's own
 * lookups were answered).  NULL is allowed. */
void market_sq_free(market_sq_t *sq);
/** Fill *out. */
void market_sq_stats(const market_sq_t *sq, market_sq_stats_t *out);

/** The Redis value of a quote fetched at fetched_ms: "v1 <price> <prev>
 * <quote time> <fetched> <source>" into out (cap bytes); its length, or
 * -1 when it does not fit. */
int market_sq_encode(const market_quote_t *q, int64_t fetched_ms, char *out, size_t cap);
/** Parse what market_sq_encode wrote, for symbol; 0, or SOUK_EPARSE (not a
 * quote, or an unknown source). */
int market_sq_decode(const char *val, size_t len, const char *symbol, market_quote_t *q,
                     int64_t *fetched_ms);

#endif
