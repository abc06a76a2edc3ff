/* Discord REST rate limits: pure bookkeeping, no I/O, with an injected clock.
 *
 * The REST client asks souk__rl_acquire() whether a request may go now; a
 * yes reserves one use of the request's bucket and one slot of the global
 * limit before the request is sent, so concurrent sends can never overshoot
 * what the headers allowed.  Every sent request is given back with
 * souk__rl_record() (a response, or none) or souk__rl_release() (never sent).
 *
 * Rules (Discord's "Rate Limits" page and DESIGN.md):
 * - A route is the method plus the path with minor ids replaced
 *   ("POST /channels/{id}/messages"); the major parameter (channel, guild,
 *   webhook id + token) is kept apart.  A bucket instance is the
 *   X-RateLimit-Bucket hash plus the major value, so routes that share a
 *   hash share one counter, and two channels never share one.
 * - Until a route's hash is known, and until a bucket instance has seen its
 *   first response, at most one request on it is in flight.
 * - X-RateLimit-Reset-After is fractional seconds, rounded up to whole
 *   milliseconds (0.537 s waits 537 ms); X-RateLimit-Reset is used only when
 *   Reset-After is absent.
 * - Global: requests are spread evenly, one every 1000 / (global_per_s -
 *   global_margin) ms, except interaction callbacks (POST
 *   /interactions/{id}/{token}/callback).  Sending global_per_s in a burst
 *   and again a second later is within "50 in any sliding second" as
 *   counted here, but the server counts arrivals in its own windows: a few
 *   ms of jitter put parts of two bursts in one window and earn 429s.
 *   Spread out, any server window of a second plus margin x the spacing of
 *   jitter holds at most global_per_s.  The decision is behind an
 *   interface (souk__rl_global_t) so that processes sharing a bot can count
 *   it together.
 * - 429: scope user or shared blocks the bucket, scope global (or
 *   X-RateLimit-Global / body "global": true) blocks every request, for the
 *   body's fractional retry_after when present, else the headers.
 * - Invalid requests: 401, 403 and 429 responses are counted over a sliding
 *   10 minutes, except 429s with scope shared, which Discord itself does not
 *   count toward its 10,000-per-10-minutes ban.  Once invalid_limit is
 *   reached every new request is refused with SOUK_ERATELIMIT until the
 *   window slides below it again; the trip is logged once.
 * - Buckets and learnt routes unused for idle_ms (routes: 12 x idle_ms) are
 *   forgotten, so memory stays bounded however many channels the bot sees.
 *
 * A souk__rl_t is used from one thread (the loop). */
#ifndef SOUK_DISCORD_RATELIMIT_H
#define SOUK_DISCORD_RATELIMIT_H

#include "souk/loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Longest route key, including the NUL ("PATCH /guilds/{id}/..."). */
#define SOUK_RL_KEY_MAX 192
/** Longest major parameter, including the NUL ("webhooks/<id>/<fnv hex>"). */
#define SOUK_RL_MAJOR_MAX 64
/** souk__rl_acquire's wait when the request must wait for a response on its
 * bucket rather than for a time. */
#define SOUK_RL_WAIT_EVENT UINT64_MAX

/** The global limit's "may a request go now?" decision.  The limiter
 * asks wait() before each request that counts against the global limit
 * and calls take() when it sends one; a global 429 is passed to blocked()
 * (the limiter also keeps it itself).  wait() is called on the loop and
 * must answer at once from what the backend knows: a backend shared
 * between processes (a sliding one-second window in Redis, say) keeps a
 * local view, such as a lease of this process's share, refreshed
 * asynchronously.  All run on the loop thread. */
typedef struct souk__rl_global_ops {
  /** 0 when one request may go at now_ms, else the ms to wait. */
  uint64_t (*wait)(void *self, uint64_t now_ms);
  /** One request was sent at now_ms (after wait() said 0). */
  void (*take)(void *self, uint64_t now_ms);
  /** A global 429: nothing may go until until_ms (limiter clock); may be NULL. */
  void (*blocked)(void *self, uint64_t until_ms);
  /** Free the backend. */
  void (*destroy)(void *self);
} souk__rl_global_ops_t;

/** A global-limit backend: ops and their state. */
typedef struct souk__rl_global {
  const souk__rl_global_ops_t *ops;
  void *self;
} souk__rl_global_t;

/** The in-process backend: per_s - margin requests a second, evenly spaced
 * (a generic cell rate algorithm), with up to burst requests at once after
 * a quiet spell (0 or 1: strictly spaced).  margin must be below per_s. */
int souk__rl_global_local(uint32_t per_s, uint32_t margin, uint32_t burst, souk__rl_global_t *out);

/** Limiter settings; zero fields take the defaults shown. */
typedef struct souk__rl_conf {
  uint32_t global_per_s;      /* 50: Discord's global limit */
  uint32_t global_margin;     /* 0: requests a second held back from it */
  uint32_t global_burst;      /* 1: requests sent back to back after a quiet spell */
  /* The global decision; NULL: souk__rl_global_local with the three fields
   * above.  The limiter takes ownership: souk__rl_free destroys it. */
  const souk__rl_global_t *global;
  uint32_t invalid_limit;     /* 5000: half of Discord's 10,000 ban threshold */
  uint64_t invalid_window_ms; /* 600000: Discord's 10 minutes */
  uint64_t idle_ms;           /* 300000: idle buckets are forgotten after this */
} souk__rl_conf_t;

/** A classified request. */
typedef struct souk__rl_route {
  char key[SOUK_RL_KEY_MAX];     /* "POST /channels/{id}/messages" */
  char major[SOUK_RL_MAJOR_MAX]; /* "channels/123"; "" when the route has none */
  bool global_exempt;            /* an interaction callback */
} souk__rl_route_t;

/** A reservation made by souk__rl_acquire; give it back exactly once. */
typedef struct souk__rl_ticket {
  struct rl_route *route;   /* internal */
  struct rl_bucket *bucket; /* internal */
} souk__rl_ticket_t;

/** What a response says, as raw header text (NULL when absent).  body is
 * the response body, read for a 429's JSON retry_after and global. */
typedef struct souk__rl_resp {
  int status;              /* HTTP status; 0 when no response came */
  const char *bucket;      /* X-RateLimit-Bucket */
  const char *limit;       /* X-RateLimit-Limit */
  const char *remaining;   /* X-RateLimit-Remaining */
  const char *reset_after; /* X-RateLimit-Reset-After, fractional seconds */
  const char *reset;       /* X-RateLimit-Reset, fractional Unix seconds */
  const char *scope;       /* X-RateLimit-Scope: user, shared or global */
  const char *global;      /* X-RateLimit-Global: "true" */
  const char *retry_after; /* Retry-After, seconds */
  const char *body;
  size_t body_len;
  uint64_t unix_now_ms; /* wall clock, only for X-RateLimit-Reset */
} souk__rl_resp_t;

/** The scope of a 429. */
typedef enum souk__rl_scope {
  SOUK_RL_SCOPE_NONE = 0, /* not a 429 */
  SOUK_RL_SCOPE_USER,
  SOUK_RL_SCOPE_SHARED,
  SOUK_RL_SCOPE_GLOBAL,
} souk__rl_scope_t;

/** What souk__rl_record concluded. */
typedef struct souk__rl_verdict {
  bool retry;            /* a 429: send the request again when allowed */
  bool invalid;          /* counted as an invalid request */
  souk__rl_scope_t scope; /* of a 429 */
  uint64_t wait_ms;      /* how long the 429 asked to wait */
} souk__rl_verdict_t;

/** Counters for metrics. */
typedef struct souk__rl_stats {
  size_t buckets;           /* bucket instances held */
  size_t routes;            /* routes held */
  uint32_t invalid_count;   /* invalid requests in the current window */
  bool invalid_tripped;     /* new requests are being refused */
  uint64_t r429[4];         /* 429s by souk__rl_scope_t */
  uint64_t global_until_ms; /* clock time a global 429 lifts; 0 if none */
} souk__rl_stats_t;

/** The limiter (opaque). */
typedef struct souk__rl souk__rl_t;

/** New limiter reading time from clock (copied).  Free with souk__rl_free. */
souk__rl_t *souk__rl_new(const souk__rl_conf_t *conf, const souk_clock_t *clock);
/** Free the limiter and all its buckets; outstanding tickets become invalid. */
void souk__rl_free(souk__rl_t *rl);

/** Classify method and path ("/channels/1/messages?x=y") into out.
 * unix_now_ms dates message ids: deleting a message older than 14 days has
 * its own bucket.  Returns 0, or SOUK_EINVAL for a path not starting with
 * '/', SOUK_ETOOBIG when the key would not fit. */
int souk__rl_route(const char *method, const char *path, uint64_t unix_now_ms,
                   souk__rl_route_t *out);

/** May a request on route r go now?  0: yes, and *t holds a reservation that
 * must be given back with souk__rl_record or souk__rl_release.  SOUK_EBUSY:
 * not yet; *wait_ms is how long until it may (at the earliest), or
 * SOUK_RL_WAIT_EVENT when it must wait for a response on its bucket.
 * SOUK_ERATELIMIT: the invalid-request budget is spent; *wait_ms is how long
 * until the window has slid enough. */
int souk__rl_acquire(souk__rl_t *rl, const souk__rl_route_t *r, souk__rl_ticket_t *t,
                    uint64_t *wait_ms);
/** Like souk__rl_acquire without reserving: when may a request on r go?
 * Returns 0 (now), SOUK_EBUSY or SOUK_ERATELIMIT with *wait_ms as above. */
int souk__rl_when(souk__rl_t *rl, const souk__rl_route_t *r, uint64_t *wait_ms);
/** Record the outcome of the request t was reserved for; resp->status 0
 * means no response arrived (the use is counted as spent, since the server
 * may have seen it).  out (may be NULL) says whether to send it again.  t is
 * cleared. */
void souk__rl_record(souk__rl_t *rl, souk__rl_ticket_t *t, const souk__rl_resp_t *resp,
                    souk__rl_verdict_t *out);
/** Give back a reservation whose request was never sent.  t is cleared. */
void souk__rl_release(souk__rl_t *rl, souk__rl_ticket_t *t);
/** True while new requests are refused for too many invalid requests. */
bool souk__rl_blocked(souk__rl_t *rl);
/** Forget idle buckets and routes now (also done every idle_ms / 4 from
 * souk__rl_acquire).  Returns how many entries were freed. */
size_t souk__rl_sweep(souk__rl_t *rl);
/** Fill *out. */
void souk__rl_stats(souk__rl_t *rl, souk__rl_stats_t *out);

/** Parse fractional seconds s[0..n) ("0.537", "64.57", "1") to milliseconds,
 * rounding up from the decimal text, so no float error turns 0.537 into
 * 538.  Returns 0, or SOUK_EINVAL for anything but a non-negative decimal
 * (an exponent is accepted, through a double). */
int souk__rl_secs_ms(const char *s, size_t n, uint64_t *ms);

#endif
