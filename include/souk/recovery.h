/* Error recovery: an error history with statistics, per-type recovery
 * strategies, circuit breakers and a retry helper.
 *
 * Threads: every function here runs on the loop thread.  Timing comes from
 * the clock given to souk__recovery_init() (src/ops/recovery.h) or to each
 * breaker, and randomness from an injectable souk_rand_t, so unit tests
 * drive them without sleeping. */
#ifndef SOUK_RECOVERY_H
#define SOUK_RECOVERY_H

#include "souk/loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** An injectable random source: next(ud) returns a uniform double in [0, 1).
 * A NULL souk_rand_t pointer means souk_rand01(). */
typedef struct souk_rand {
  double (*next)(void *ud);
  void *ud;
} souk_rand_t;

/* ---- errors and strategies ---- */

/** How bad an error is, lowest first. */
typedef enum souk_severity {
  SOUK_SEV_LOW,
  SOUK_SEV_MEDIUM,
  SOUK_SEV_HIGH,
  SOUK_SEV_CRITICAL,
} souk_severity_t;

/** "low", "medium", "high" or "critical"; never NULL. */
const char *souk_severity_name(souk_severity_t sev);

/** What a strategy does when an error of its type is recorded. */
typedef enum souk_recover_kind {
  SOUK_RECOVER_RETRY,    /* advise a retry after an exponential, jittered delay */
  SOUK_RECOVER_BACKOFF,  /* mark the type as backing off for backoff_ms */
  SOUK_RECOVER_RESET,    /* call fn to reset the component */
  SOUK_RECOVER_ALERT,    /* call fn to alert an admin channel */
  SOUK_RECOVER_SHUTDOWN, /* call fn to shut down cleanly */
} souk_recover_kind_t;

/** "retry", "backoff", "reset", "alert" or "shutdown"; never NULL. */
const char *souk_recover_kind_name(souk_recover_kind_t kind);

/** Exponential backoff with full jitter: the delay before retry number k
 * (1-based) is uniform in [0, min(cap_ms, base_ms * 2^(k-1))]; at most
 * max_attempts retries (0 means none). */
typedef struct souk_retry_policy {
  uint64_t base_ms;
  uint64_t cap_ms;
  uint32_t max_attempts;
} souk_retry_policy_t;

/** One recorded error as strategies see it.  Valid only during the call. */
typedef struct souk_error_event {
  const char *type; /* "rest.5xx", "store.sqlite" ... */
  souk_severity_t severity;
  int code;             /* SOUK_E* or 0 */
  const char *context;  /* free text, possibly "" */
  uint64_t at_ms;       /* recovery clock */
  uint32_t consecutive; /* errors of this type since its last souk_error_resolved() */
  uint64_t retry_in_ms; /* RETRY: suggested delay; 0 otherwise */
} souk_error_event_t;

/** Callback of a RESET, ALERT or SHUTDOWN strategy (and optionally RETRY,
 * to schedule the retry itself).  Runs synchronously inside
 * souk_error_record(); ev is valid only during the call. */
typedef void (*souk_recover_cb)(const souk_error_event_t *ev, void *ud);

/** A strategy for one error type. */
typedef struct souk_recovery_strategy {
  souk_recover_kind_t kind;
  souk_severity_t min_severity; /* act only on errors at least this bad */
  uint64_t cooldown_ms;         /* act at most once per cooldown (0: every time) */
  souk_retry_policy_t retry;    /* RETRY */
  uint64_t backoff_ms;          /* BACKOFF */
  souk_recover_cb fn;           /* required for RESET/ALERT/SHUTDOWN, optional for RETRY */
  void *ud;
} souk_recovery_strategy_t;

/** Register a strategy for errors of type (copied); a type may have several
 * strategies, run in registration order; "*" matches every type after the
 * type's own.  *s is copied; ud must outlive the registration.  Returns 0,
 * SOUK_EINVAL (bad type or fn missing) or SOUK_EFULL (too many). */
int souk_recovery_register(const char *type, const souk_recovery_strategy_t *s);
/** Remove every strategy of type with this fn and ud.  Returns 0 or
 * SOUK_ENOTFOUND. */
int souk_recovery_unregister(const char *type, souk_recover_cb fn, void *ud);

/** What souk_error_record() advises the caller to do. */
typedef struct souk_recovery_advice {
  bool retry;           /* a RETRY strategy allows another attempt */
  uint64_t retry_in_ms; /* ... after this delay */
  uint64_t backoff_ms;  /* > 0: the type is backing off for this long */
  unsigned actions;     /* bit (1 << kind) for each strategy that acted */
} souk_recovery_advice_t;

/** Record an error of type with a printf-formatted context (truncated to
 * 200 bytes; may be NULL), run its strategies, and fill *advice (may be
 * NULL).  Logs one line at a level matching the severity. */
void souk_error_record(const char *type, souk_severity_t sev, int code,
                       souk_recovery_advice_t *advice, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/** The operation behind type succeeded: reset its consecutive count (and
 * thus its retry delays) and end its backoff. */
void souk_error_resolved(const char *type);
/** Milliseconds left of type's backoff period, 0 when not backing off. */
uint64_t souk_recovery_backoff_left(const char *type);

/* ---- alerts ---- */

/** An alert sink: where the alerts of the recovery system go (an admin
 * channel on Discord, the log, a webhook).  For each sink, every error of
 * at least its minimum severity becomes one alert per error type per
 * ops.alerts.cooldown (the count of those left out is in the next one);
 * text is that alert as one line ("**souk high error** `store`: ..."),
 * valid only during the call.  Called on the loop thread, inside
 * souk_error_record(): a sink that sends over the network queues the
 * text and returns. */
typedef void (*souk_alert_sink_cb)(const souk_error_event_t *ev, const char *text, void *ud);

/** Add a sink under name (copied); ud must outlive it.  min_severity
 * points at the sink's threshold (a souk_severity_t), read at every error
 * so a configuration reload applies; it must outlive the sink; NULL means
 * ops.alerts.min_severity.  Each sink keeps its own cooldowns.  Returns 0,
 * SOUK_EINVAL, SOUK_EEXIST (the name is taken) or SOUK_EFULL. */
int souk_alert_sink_add(const char *name, const int *min_severity, souk_alert_sink_cb fn,
                        void *ud);
/** Remove the sink called name.  Returns 0 or SOUK_ENOTFOUND. */
int souk_alert_sink_remove(const char *name);

/** Statistics of errors of one type (or of all, for type NULL). */
typedef struct souk_error_stats {
  uint64_t total;
  uint64_t by_severity[4];
  double per_minute;   /* over the sliding window (ops.error_window) */
  uint64_t last_at_ms; /* 0: never */
  uint32_t consecutive;
} souk_error_stats_t;

/** Statistics for type, or for all errors when type is NULL.  Returns 0
 * or SOUK_ENOTFOUND (type never recorded; *out is zeroed). */
int souk_error_stats(const char *type, souk_error_stats_t *out);

/** One history entry.  Pointers are valid until the next record. */
typedef struct souk_error_entry {
  const char *type;
  souk_severity_t severity;
  int code;
  const char *context;
  uint64_t at_ms;
} souk_error_entry_t;

/** Number of entries in the bounded history (newest last). */
size_t souk_error_history_len(void);
/** Entry i of the history, 0 = oldest kept.  Returns 0 or SOUK_ERANGE. */
int souk_error_history_get(size_t i, souk_error_entry_t *out);

/* ---- retry helper ---- */

/** Delay before retry number attempt (1-based) for a draw r in [0, 1):
 * floor(r * (min(cap, base * 2^(attempt-1)) + 1)), so 0 and the full
 * ceiling are both reachable.  Overflow saturates at the cap. */
uint64_t souk_retry_delay(const souk_retry_policy_t *p, uint32_t attempt, double r);

/** A retry loop's state: zero-initialise, then set policy, clock and rand
 * (NULL clock: monotonic; NULL rand: souk_rand01). */
typedef struct souk_retry {
  souk_retry_policy_t policy;
  const souk_clock_t *clock;
  const souk_rand_t *rand;
  uint32_t attempts;   /* failures so far */
  uint64_t next_at_ms; /* when the next attempt may start */
} souk_retry_t;

/** The attempt failed: returns 0 with *delay_ms set (and next_at_ms =
 * now + delay), or SOUK_ETIMEDOUT when max_attempts retries are used up. */
int souk_retry_failed(souk_retry_t *r, uint64_t *delay_ms);
/** True when the next attempt may start now. */
bool souk_retry_due(const souk_retry_t *r);
/** Forget failures (after a success). */
void souk_retry_reset(souk_retry_t *r);

/* ---- circuit breakers ---- */

/** Breaker states. */
typedef enum souk_breaker_state {
  SOUK_BREAKER_CLOSED,    /* calls pass */
  SOUK_BREAKER_OPEN,      /* calls fail fast until open_timeout_ms passes */
  SOUK_BREAKER_HALF_OPEN, /* one probe call passes */
} souk_breaker_state_t;

/** "closed", "open" or "half-open"; never NULL. */
const char *souk_breaker_state_name(souk_breaker_state_t s);

/** When a breaker opens.  Either rule may be off (0). */
typedef struct souk_breaker_opts {
  uint32_t failures;        /* open after this many failures within window_ms */
  double failure_ratio;     /* or when failures / calls >= ratio ... */
  uint32_t min_calls;       /* ... with at least this many calls in the window */
  uint64_t window_ms;       /* sliding window for both rules */
  uint64_t open_timeout_ms; /* open -> half-open after this long; also a
                               probe that never reports is given up after it */
} souk_breaker_opts_t;

/** Counters of one breaker. */
typedef struct souk_breaker_stats {
  souk_breaker_state_t state;
  uint64_t successes, failures, rejected; /* totals */
  uint64_t opened;                        /* times it opened */
  uint32_t window_calls, window_failures; /* within the window now */
  uint64_t state_since_ms;
} souk_breaker_stats_t;

/** A circuit breaker for one component. */
typedef struct souk_breaker souk_breaker_t;

/** New breaker named name (copied), listed for souk_breaker_find() until
 * freed.  clock may be NULL (monotonic) and must outlive the breaker.
 * Never returns NULL; free with souk_breaker_free(). */
souk_breaker_t *souk_breaker_new(const char *name, const souk_breaker_opts_t *opts,
                                 const souk_clock_t *clock);
/** Free a breaker (NULL is fine). */
void souk_breaker_free(souk_breaker_t *b);
/** The first live breaker named name, or NULL. */
souk_breaker_t *souk_breaker_find(const char *name);
/** Walk every live breaker: NULL gives the first, then the one after b;
 * NULL at the end.  Do not free breakers during a walk. */
souk_breaker_t *souk_breaker_next(const souk_breaker_t *b);
/** Name as given to souk_breaker_new(): a copy owned by the breaker,
 * valid until souk_breaker_free(b); never NULL. */
const char *souk_breaker_name(const souk_breaker_t *b);
/** May a call go ahead now?  False while open (counted as rejected) and in
 * half-open once the probe is out.  A true answer must be followed by
 * souk_breaker_success() or souk_breaker_failure(). */
bool souk_breaker_allow(souk_breaker_t *b);
/** The call succeeded: a half-open probe closes the breaker. */
void souk_breaker_success(souk_breaker_t *b);
/** The call failed: may open the breaker; a half-open probe re-opens it. */
void souk_breaker_failure(souk_breaker_t *b);
/** State now (an open breaker whose timeout has passed reports half-open). */
souk_breaker_state_t souk_breaker_state(souk_breaker_t *b);
/** Counters now. */
void souk_breaker_stats(souk_breaker_t *b, souk_breaker_stats_t *out);
/** Force the breaker closed (admin) and clear its window. */
void souk_breaker_reset(souk_breaker_t *b);

#endif
