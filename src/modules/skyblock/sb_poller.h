/* The SkyBlock poller: when to fetch which page of the auction house.
 *
 * A cycle starts by fetching page 0.  Its lastUpdated says whether the
 * API refreshed since the last sweep: if not, page 0 is asked again a
 * little later; if so, the other pages are fetched concurrently (at most
 * `concurrency` requests in flight, over the HTTP client's reused
 * connections) and auctions_ended once.  Every page is handed to the
 * ingestor as it arrives, which parses it (on the thread pool) and
 * reports its lastUpdated back (sb_poller_page_done).
 *
 * Pages are cached one by one on Hypixel's side, so pages of one sweep
 * can come from different refreshes: when a page's lastUpdated differs
 * from page 0's, the sweep restarts from page 0 (at most max_restarts
 * times in a row; then the sweep ends incomplete and the next refresh is
 * awaited).  A 404 past the last page ends the sweep there (the house
 * shrank).  Only a complete sweep whose pages all agree lets the store
 * forget listings it did not see.
 *
 * Timing is learned, not fixed: the local times at which lastUpdated was
 * seen to change give the refresh interval (a moving average, about 60 s
 * on Hypixel); page 0 is asked a little before the next change is due,
 * then every `step` until it comes.  Failures are retried with backoff and
 * counted by a circuit breaker; a 503 ("not populated yet") is never
 * hammered: the whole cycle waits, doubling from 5 s up to 2 minutes.
 *
 * Everything outside (HTTP, timers, the ingestor, the clock, randomness)
 * goes through sb_poll_env_t, so unit tests drive the poller without a
 * network or a loop.  Threads: the loop thread only. */
#ifndef SKYBLOCK_SB_POLLER_H
#define SKYBLOCK_SB_POLLER_H

#include "souk/recovery.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** What a request asks for. */
typedef enum sb_req_kind { SB_REQ_PAGE, SB_REQ_ENDED } sb_req_kind_t;

/** The poller's view of the world. */
typedef struct sb_poll_env {
  /** Start fetching (page ignored for SB_REQ_ENDED); the answer is given
   * back with sb_poller_response(p, tag, ...).  0 or SOUK_E* (then it is
   * treated as a failed request). */
  int (*fetch)(void *ud, sb_req_kind_t kind, int page, uint32_t tag);
  /** Forget every request in flight: their answers must never be given. */
  void (*cancel_all)(void *ud);
  /** Arm the one timer: call sb_poller_timer(p) after delay_ms (replaces
   * a timer already armed). */
  void (*arm)(void *ud, uint64_t delay_ms);
  /** Hand a 200 body to the ingestor (ownership passes: souk_free it).
   * It calls sb_poller_page_done() exactly once for it, later. */
  void (*page)(void *ud, sb_req_kind_t kind, int page, uint32_t sweep, char *body, size_t len);
  /** A sweep ended; complete when every page was seen and agreed. */
  void (*sweep_end)(void *ud, uint32_t sweep, int64_t last_updated, bool complete);
  /** May a sweep start now (the memory guard)?  NULL: always. */
  bool (*may_sweep)(void *ud);
  /** Monotonic ms. */
  uint64_t (*now)(void *ud);
  /** Unix ms (for the delay behind lastUpdated); NULL: not shown. */
  uint64_t (*wall)(void *ud);
  /** Uniform in [0, 1). */
  double (*rand)(void *ud);
  void *ud;
} sb_poll_env_t;

/** Settings. */
typedef struct sb_poll_conf {
  unsigned concurrency;              /* requests in flight, 1..16 */
  unsigned max_restarts;             /* sweep restarts in a row on disagreeing pages */
  unsigned page_retries;             /* retries of one failed page */
  uint64_t interval_ms;              /* the first guess of the refresh interval (60 s) */
  uint64_t min_interval_ms;          /* the learned interval's floor */
  uint64_t retry_base_ms;            /* first backoff of a failed page (doubling, jittered) */
  uint64_t unpopulated_ms;           /* first wait after a 503 (doubling up to 2 minutes) */
  const souk_clock_t *breaker_clock; /* NULL: monotonic */
  const char *breaker_name;          /* "skyblock.hypixel" */
} sb_poll_conf_t;

/** Defaults: 4 in flight, 3 restarts, 3 retries, 60 s, 1 s floor, 500 ms, 5 s. */
void sb_poll_conf_defaults(sb_poll_conf_t *c);

/** States, for /sniper_status. */
typedef enum sb_poll_state {
  SB_POLL_STOPPED,
  SB_POLL_WAITING, /* for the next refresh */
  SB_POLL_PAGE0,   /* page 0 asked */
  SB_POLL_SWEEP,   /* the other pages */
  SB_POLL_BACKOFF, /* after failures or a 503 */
} sb_poll_state_t;

/** "stopped", "waiting", "page0", "sweeping", "backoff". */
const char *sb_poll_state_name(sb_poll_state_t s);

/** Counters. */
typedef struct sb_poll_stats {
  sb_poll_state_t state;
  uint64_t requests, pages_ok, pages_failed, retries, not_populated, not_found;
  uint64_t sweeps_started, sweeps_complete, sweeps_incomplete, restarts;
  uint64_t unchanged, skipped_memory, breaker_rejected, ended_ok, ended_failed;
  int64_t last_updated;    /* of the last sweep started (API time) */
  uint64_t last_change_ms; /* monotonic time of the last new lastUpdated: when it was seen,
                            * less its age by the wall clock (at most 3/4 interval) */
  int64_t last_delay_ms;   /* wall time then - lastUpdated (-1 if unknown) */
  uint64_t interval_ms;    /* learned */
  uint64_t last_sweep_ms;  /* duration of the last complete sweep */
  int total_pages;
  int last_error;      /* SOUK_E* of the last failure, 0 if none */
  int last_status;     /* its HTTP status, 0 if none */
  uint64_t next_at_ms; /* monotonic time of the next page-0 fetch */
} sb_poll_stats_t;

/** The poller (opaque). */
typedef struct sb_poller sb_poller_t;

/** A poller with env and conf (both copied; env.ud must outlive it). */
sb_poller_t *sb_poller_new(const sb_poll_env_t *env, const sb_poll_conf_t *conf);
/** Free it (cancels what is in flight through the env).  NULL allowed. */
void sb_poller_free(sb_poller_t *p);
/** Start polling (the first fetch now). */
void sb_poller_start(sb_poller_t *p);
/** Stop: cancel requests, disarm nothing more; answers still coming are
 * ignored. */
void sb_poller_stop(sb_poller_t *p);
/** The armed timer fired. */
void sb_poller_timer(sb_poller_t *p);
/** An answer to request tag: err 0 with an HTTP status (body owned by the
 * caller, valid during the call), or a SOUK_E* transport error. */
void sb_poller_response(sb_poller_t *p, uint32_t tag, int err, int status, const char *body,
                        size_t len);
/** The ingestor parsed page `page` of sweep `sweep` (or auctions_ended):
 * rc 0 with its lastUpdated and totalPages, or SOUK_E* for a bad body. */
void sb_poller_page_done(sb_poller_t *p, sb_req_kind_t kind, uint32_t sweep, int page, int rc,
                         int64_t last_updated, int total_pages);
/** End the current sweep early, incomplete (the rows-per-cycle cap). */
void sb_poller_cut_sweep(sb_poller_t *p);
/** Counters now. */
void sb_poller_stats(const sb_poller_t *p, sb_poll_stats_t *out);
/** The breaker (for /sniper_status and admin reset). */
souk_breaker_t *sb_poller_breaker(sb_poller_t *p);

#endif
