/* Discord REST client: the HTTP client plus the rate limiter.
 *
 * Requests are queued per route and major parameter ("POST
 * /channels/{id}/messages" in channel 123) and leave each queue in order.
 * A queue of GET requests sends as many at once as the limiter allows; any
 * other method sends one at a time per queue, so for example messages to one
 * channel arrive in the order they were requested, retries included.
 * Nothing is dropped while a bucket waits: requests stay queued, bounded in
 * total by discord.rest.queue_max.
 *
 * Retries: 5xx responses and connection errors or timeouts are retried up
 * to discord.rest.retries times after a full-jitter exponential backoff
 * (random in [0, min(30 s, 0.5 s x 2^attempt)]); other 4xx never are.  Note
 * that retrying a POST that timed out may repeat it if Discord did receive
 * it.  A 429 goes back to the front of its queue after the wait the
 * limiter derived from it; that is not a retry, but it is bounded (8 per
 * request), after which the request fails with SOUK_ERATELIMIT.
 *
 * Everything runs on the loop thread.  Callbacks never run from inside
 * souk__rest_request(). */
#ifndef SOUK_DISCORD_REST_H
#define SOUK_DISCORD_REST_H

#include "souk/http.h"
#include "souk/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Request flags. */
enum {
  /** No Authorization header: webhook (with token) and interaction routes. */
  SOUK_REST_NO_AUTH = 1u << 0,
  /** No retries after 5xx or connection errors, and failures logged at
   * debug level only: the caller retries on its own schedule and reports
   * (GET /gateway/bot while Discord is unreachable at start). */
  SOUK_REST_NO_RETRY = 1u << 1,
  /** A 429 completes the request at once with SOUK_ERATELIMIT instead of
   * waiting and sending it again: for a request whose limit is long and
   * whose caller would rather keep the latest value (channel renames). */
  SOUK_REST_FAIL_429 = 1u << 2,
};

/** A request.  Everything is copied by souk__rest_request(). */
typedef struct souk__rest_opts {
  const char *method;       /* "GET", "POST", "PATCH", "PUT", "DELETE" */
  const char *path;         /* under api_base: "/channels/123/messages", may hold "?query" */
  const char *body;         /* JSON text or NULL */
  size_t body_len;          /* 0 with a body: strlen(body) */
  const char *content_type; /* NULL: "application/json" when there is a body */
  const char *audit_reason; /* X-Audit-Log-Reason (UTF-8; URL-encoded here; cut to 512) */
  unsigned flags;           /* SOUK_REST_* */
  uint32_t timeout_ms;      /* per attempt; 0: discord.rest.timeout */
} souk__rest_opts_t;

/** A finished request as the callback sees it; valid only during the
 * callback. */
typedef struct souk__rest_resp {
  /** 0 for a 2xx status.  For other statuses: SOUK_EAUTH (401),
   * SOUK_EFORBIDDEN (403), SOUK_ENOTFOUND (404), SOUK_ERATELIMIT (429 after
   * too many re-sends), SOUK_EHTTP (any other).  Without a response:
   * SOUK_ETIMEDOUT, SOUK_ECONN, SOUK_ECLOSED, SOUK_ETOOBIG, ... from the
   * HTTP client, SOUK_ERATELIMIT (refused: too many invalid requests),
   * SOUK_ESTOPPED (the client was stopped). */
  int err;
  int status;       /* HTTP status of the last attempt; 0 if none */
  const char *body; /* NUL-terminated, never NULL ("" without a response) */
  size_t body_len;
  const char *route;            /* route key: "POST /channels/{id}/messages" */
  unsigned attempts;            /* HTTP requests sent for this request */
  uint64_t elapsed_ms;          /* from souk__rest_request to this callback */
  const souk_http_resp_t *http; /* the last response, or NULL */
  void *priv_;                  /* internal: lazily parsed JSON */
} souk__rest_resp_t;

/** Completion callback; called exactly once per accepted request. */
typedef void (*souk__rest_cb)(const souk__rest_resp_t *resp, void *ud);
/** Called once souk__rest_drain() has nothing left in flight. */
typedef void (*souk__rest_drain_cb)(void *ud);

/** Start the client with souk__discord_conf (token, api_base, rest.*).
 * souk_http_init() must have succeeded.  0 or SOUK_E*; idempotent. */
int souk__rest_init(void);

/** Queue a request.  0: cb (may be NULL) will be called exactly once, later.
 * SOUK_EFULL: discord.rest.queue_max requests are already pending (logged).
 * SOUK_EINVAL: bad method or path.  SOUK_ECONFIG: no token and no
 * SOUK_REST_NO_AUTH.  SOUK_ERATELIMIT: refused, too many invalid requests in
 * the last 10 minutes.  SOUK_ESTOPPED: not started, draining or stopped.
 * On error cb is never called. */
int souk__rest_request(const souk__rest_opts_t *o, souk__rest_cb cb, void *ud);

/** The response body parsed as JSON, parsed on the first call; NULL when
 * the body is empty or not JSON.  Owned by resp; valid during the callback. */
const souk_json_t *souk__rest_json(const souk__rest_resp_t *resp);
/** A response header (any case), or NULL. */
const char *souk__rest_header(const souk__rest_resp_t *resp, const char *name);

/** Begin a graceful stop: new requests fail with SOUK_ESTOPPED; queued
 * requests (waiting for a bucket, the global limit or a retry) get their
 * callbacks with SOUK_ESTOPPED before this returns; in-flight requests
 * finish normally, except that nothing is retried or re-sent (what would
 * have been is completed with SOUK_ESTOPPED).  done(ud) is called from the
 * loop once nothing is in flight.  0, or SOUK_ESTOPPED if not running or
 * already draining (done is then never called). */
int souk__rest_drain(souk__rest_drain_cb done, void *ud);

/** Stop now: every queued and in-flight request gets its callback with
 * SOUK_ESTOPPED before this returns (in-flight HTTP requests are
 * cancelled), all memory is released, and no callback runs after it
 * returns.  A pending drain's done is not called.  Safe to call when not
 * started.  The client's timer closes asynchronously (run the loop). */
void souk__rest_shutdown(void);

/** Counters for metrics. */
typedef struct souk__rest_stats {
  uint64_t requests;      /* accepted by souk__rest_request */
  uint64_t sent;          /* HTTP requests sent, including retries */
  uint64_t retries;       /* re-sends after 5xx or connection errors */
  uint64_t rejected_full; /* refused with SOUK_EFULL */
  uint64_t failed;        /* completed with err != 0 */
  uint64_t r429_user;     /* 429 responses by scope */
  uint64_t r429_shared;
  uint64_t r429_global;
  uint64_t wait_ms_total; /* time requests spent queued before being sent */
  size_t queued;          /* waiting to be sent (including retry back-off) */
  size_t inflight;        /* sent, response not yet in */
  uint32_t invalid_count; /* 401/403/429 (not shared 429) in the last 10 min */
  bool invalid_tripped;   /* requests are being refused for that */
  size_t buckets;         /* rate-limit buckets held */
  /* The global limit: "local" (this process has all of it), "shared"
   * (counted in Redis with the other processes), "fallback" (Redis
   * unreachable: this process's share) or "connecting". */
  const char *global_mode;
  double global_per_s;       /* requests a second this process may send at most now */
  uint32_t global_processes; /* fallback: the N of the share */
  uint64_t global_dropped;   /* shared: reserved slots not used in time */
} souk__rest_stats_t;

/** Fill *out: zeroes before the first start; after souk__rest_shutdown() the
 * counters keep their last values until the next souk__rest_init(). */
void souk__rest_stats(souk__rest_stats_t *out);

/** Called by souk__rest_route_stats for each route key and status seen;
 * status 0 counts attempts that got no response. */
typedef void (*souk__rest_route_stat_cb)(const char *route, int status, uint64_t count, void *ud);
/** Visit the per-route status counts (bounded: routes past 512 are counted
 * under "other"). */
void souk__rest_route_stats(souk__rest_route_stat_cb fn, void *ud);

/** Called by souk__rest_queue_stats for each route queue with requests:
 * its key ("POST /channels/{id}/messages|<channel id>"), how many wait,
 * how many are sent and not answered yet. */
typedef void (*souk__rest_queue_stat_cb)(const char *route, size_t queued, unsigned inflight,
                                        void *ud);
/** Visit the route queues that hold requests now. */
void souk__rest_queue_stats(souk__rest_queue_stat_cb fn, void *ud);
/** How long a global 429 still holds every request, in ms (0: none). */
uint64_t souk__rest_global_wait_ms(void);

/** Internal tunables, for tests: retry back-off base and cap (ms) and the
 * number of 429 re-sends per request. */
typedef struct souk__rest_tune {
  uint64_t backoff_base_ms; /* 500 */
  uint64_t backoff_cap_ms;  /* 30000 */
  unsigned max_429;         /* 8 */
} souk__rest_tune_t;
/** The live tunables; change them before souk__rest_init. */
extern souk__rest_tune_t souk__rest_tune;

/** Full-jitter back-off before retry number attempt (1-based): r (in [0,1))
 * times min(cap, base x 2^(attempt-1)), rounded down. */
uint64_t souk__rest_backoff_ms(unsigned attempt, uint64_t base, uint64_t cap, double r);

#endif
