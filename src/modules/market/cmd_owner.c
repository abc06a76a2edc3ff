/* The bot owners' /market commands: the daily update now, and the price
 * cache (save, reload, empty, statistics). */
#include "cmd_int.h"
#include "souk/err.h"

#include <inttypes.h>

static void daily_cmd_done(void *ud, int status, const market_snapshot_stats_t *st) {
  souk_cmd_ctx_t *ctx = ud;
  if (status) {
    souk_cmd_errorf(ctx, "The daily update failed: %s.", souk_strerror(status));
    return;
  }
  souk_cmd_replyf(ctx,
                  "Daily update done: %" PRId64 " accounts valued, %" PRId64
                  " snapshots written, %" PRId64 " already there today, %" PRId64
                  " holdings without a price (valued at cost).",
                  st->accounts, st->inserted, st->existing, st->unpriced);
}

/* The reply waits for the run: it is bounded (at most
 * market.daily_update.max_fetch symbols refreshed, none started after
 * DAILY_WARM_MS in daily.c), so it ends within a few minutes at worst,
 * far inside the 15 minutes Discord allows a deferred reply. */
void market_cmd_daily_update(souk_cmd_ctx_t *ctx) {
  if (!market_need_store(ctx)) return;
  int rc = market_daily_run(MARKET_DAILY_FORCE, daily_cmd_done, ctx);
  if (rc) souk_cmd_errorf(ctx, "The daily update cannot start: %s.", souk_strerror(rc));
}

static void cache_done(void *ud, int status, size_t n) {
  souk_cmd_ctx_t *ctx = ud;
  if (status)
    souk_cmd_errorf(ctx, "The price cache operation failed: %s.", souk_strerror(status));
  else
    souk_cmd_replyf(ctx, "Done: %zu prices.", n);
}

void market_cmd_flushcache(souk_cmd_ctx_t *ctx) {
  if (!market_need_store(ctx)) return;
  int rc = market_pc_flush(market_g.pc, cache_done, ctx);
  if (rc) souk_cmd_errorf(ctx, "Cannot save the price cache: %s.", souk_strerror(rc));
}

void market_cmd_reloadcache(souk_cmd_ctx_t *ctx) {
  if (!market_need_store(ctx)) return;
  int rc = market_pc_reload(market_g.pc, cache_done, ctx);
  if (rc) souk_cmd_errorf(ctx, "Cannot reload the price cache: %s.", souk_strerror(rc));
}

void market_cmd_clearcache(souk_cmd_ctx_t *ctx) {
  if (!market_g.pc) {
    souk_cmd_errorf(ctx, "The market is not running.");
    return;
  }
  size_t n = market_pc_count(market_g.pc);
  market_pc_clear(market_g.pc);
  souk_cmd_replyf(ctx,
                  "Cleared %zu prices from memory (the saved copies stay; "
                  "/market reloadcache brings them back).",
                  n);
}

void market_cmd_cache(souk_cmd_ctx_t *ctx) {
  if (!market_g.pc) {
    souk_cmd_errorf(ctx, "The market is not running.");
    return;
  }
  market_pc_stats_t s;
  market_pc_stats(market_g.pc, &s);
  souk_cmd_replyf(ctx,
                  "Price cache: %zu entries, %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64
                  " refreshes, %" PRIu64 " stale answers, %" PRIu64 " coalesced, %" PRIu64
                  " saved.",
                  s.entries, s.hits, s.misses, s.refreshes, s.stale, s.coalesced, s.persisted);
}
