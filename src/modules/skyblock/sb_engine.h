/* The SkyBlock engine: pages in, listings judged, alerts and hourly
 * summaries out.
 *
 * Each page goes through four steps, alternating between libuv's thread
 * pool (CPU work that touches nothing shared) and the loop thread (which
 * owns the feature store):
 *   1. pool: parse the JSON (sb_page.h);
 *   2. loop: look every auction up in the store: a known one is only
 *      marked as seen (no decoding again: between two refreshes about 1%
 *      of the house is new), a new one is put aside;
 *   3. pool: decode the new auctions' item_bytes (item.h), with a decoder
 *      taken from the engine's pool of them, in up to four pieces at once
 *      when there are many (page 0 after a refresh);
 *   4. loop: add them to the store and judge each new BIN listing at once
 *      (sb_sniper.h); an alert goes to the alert hook before the next
 *      page is looked at.
 * Step 3 is skipped when nothing is new.  auctions_ended pages add sales
 * and remove the sold listings the same way.  The same steps run one
 * after the other on the calling thread for `souk skyblock replay` and the
 * benchmark (sb_engine_ingest_sync).
 *
 * Memory: a page's body and tokens live from its arrival to the end of
 * step 4; the store is bounded (sb_market.h); rows (auctions) applied per
 * sweep are counted so the caller can cut a sweep at rows_soft_cap.
 *
 * Threads: every function is for the loop thread (or, for the _sync one,
 * a thread that owns the engine alone). */
#ifndef SKYBLOCK_SB_ENGINE_H
#define SKYBLOCK_SB_ENGINE_H

#include "sb_market.h"
#include "sb_page.h"
#include "sb_poller.h"
#include "sb_sniper.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** One alert, as the hook sees it (valid during the call only). */
typedef struct sb_alert {
  sb_uuid_t uuid, seller;
  uint32_t mid;
  const char *key, *attrs, *name; /* the market */
  const char *item_name;          /* this listing's own display name */
  int64_t last_updated;           /* of the page that showed it */
  sb_judgement_t j;
} sb_alert_t;

/** What the engine tells its owner. */
typedef struct sb_engine_hooks {
  /** A listing passed every rule: queue its alert (quickly).  The engine
   * has recorded it in the dedupe state already. */
  void (*alert)(void *ud, const sb_alert_t *a);
  /** An hour closed: the callee owns s (sb_summary_free). */
  void (*hour_closed)(void *ud, sb_summary_t *s);
  void *ud;
} sb_engine_hooks_t;

/** Counters. */
typedef struct sb_engine_stats {
  uint64_t pages, ended_pages, bad_pages;
  uint64_t auctions_seen; /* every auction of every page */
  uint64_t auctions_new;  /* first seen: decoded */
  uint64_t auctions_bad;  /* malformed records or item_bytes that did not decode */
  uint64_t sales_new;
  uint64_t judged; /* new listings judged */
  uint64_t verdicts[SB_V__COUNT];
  uint64_t rows_sweep;     /* auctions applied in the current sweep */
  uint64_t sweeps_done;    /* complete sweeps applied to the store */
  uint64_t removed_unseen; /* listings gone at a sweep's end */
  uint64_t last_alert_ns;  /* last page's arrival to its alert queued */
  uint64_t max_alert_ns;
  /* Where the last page's time went, from its arrival (thread pool): */
  uint64_t last_parse_ns;  /* waiting for a pool thread and parsing */
  uint64_t last_lookup_ns; /* looking its auctions up (loop) */
  uint64_t last_decode_ns; /* decoding the new ones, in pieces (pool) */
  uint64_t last_apply_ns;  /* adding and judging them (loop) */
} sb_engine_stats_t;

/** Called when a page went through all steps (rc 0) or failed (SOUK_E*),
 * with its lastUpdated and totalPages (auctions pages). */
typedef void (*sb_engine_done_cb)(void *ud, sb_req_kind_t kind, uint32_t sweep, int page, int rc,
                                  int64_t last_updated, int total_pages);

/** The engine (opaque). */
typedef struct sb_engine sb_engine_t;

/** A new engine over a new store; confs are copied. */
sb_engine_t *sb_engine_new(const sb_mkts_conf_t *mc, const sb_sniper_conf_t *sc,
                           const sb_engine_hooks_t *hooks);
/** Free it.  No page may be in flight (sb_engine_busy() is 0). */
void sb_engine_free(sb_engine_t *e);
/** Pages in flight through the steps. */
unsigned sb_engine_busy(const sb_engine_t *e);
/** The store (loop thread). */
sb_mkts_t *sb_engine_store(sb_engine_t *e);
/** The dedupe state (loop thread). */
sb_dedupe_t *sb_engine_dedupe(sb_engine_t *e);
/** The sniper settings in use; may be changed between pages. */
sb_sniper_conf_t *sb_engine_sniper(sb_engine_t *e);
/** Counters now. */
void sb_engine_stats(const sb_engine_t *e, sb_engine_stats_t *out);
/** Monotonic ns clock for the latency figures (tests, the benchmark);
 * NULL restores the real one. */
void sb_engine_set_clock(sb_engine_t *e, uint64_t (*now_ns)(void));

/** Take a page body (souk_malloc'd, NUL-terminated; ownership passes) and
 * run it through the steps; done(ud, ...) follows on the loop thread
 * (exactly once, unless this returns an error).  arrived_ns: when its
 * last byte arrived (for the alert latency; 0: now). */
int sb_engine_submit(sb_engine_t *e, sb_req_kind_t kind, int page, uint32_t sweep, char *body,
                     size_t len, uint64_t arrived_ns, sb_engine_done_cb done, void *ud);
/** All steps now, on this thread.  *last_updated and *total_pages (may
 * be NULL) receive the page's header.  0 or SOUK_E*. */
int sb_engine_ingest_sync(sb_engine_t *e, sb_req_kind_t kind, uint32_t sweep, char *body,
                          size_t len, int64_t *last_updated, int *total_pages);
/** A sweep ended (from the poller); a complete one removes the listings
 * it did not see.  Resets the per-sweep row count. */
void sb_engine_sweep_end(sb_engine_t *e, uint32_t sweep, bool complete);

#endif
