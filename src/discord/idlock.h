/* Identify slots: Discord accepts max_concurrency IDENTIFYs per 5 seconds,
 * one per bucket (shard_id % max_concurrency) in each 5-second window, for
 * the whole bot, across every process that runs its shards.
 *
 * A souk__identify_lock_t hands out those slots: acquire(bucket) queues the
 * caller and calls it back when it may IDENTIFY; the caller sends the
 * IDENTIFY and then calls release(bucket), which starts that bucket's
 * 5-second spacing again from the moment the IDENTIFY really went out.
 * Backends:
 *   - local: one process (all its shards on one loop);
 *   - file: processes on one host, through a lock file holding the time of
 *     each bucket's last IDENTIFY (flock() around read-check-write);
 *   - redis (src/discord/idlock_redis.c): processes on many hosts, through
 *     a key per bucket whose expiry is the spacing.
 * Everything runs on the loop thread; grants are always delivered from the
 * loop, never from inside acquire(). */
#ifndef SOUK_DISCORD_IDLOCK_H
#define SOUK_DISCORD_IDLOCK_H

#include "souk/alloc.h"
#include "souk/loop.h"

#include <stdbool.h>
#include <stdint.h>

/** Default spacing of IDENTIFYs in one bucket: Discord's 5 s plus a margin.
 * Discord measures from when each IDENTIFY reaches it, and two processes'
 * IDENTIFYs can spend different times in their socket queues, so spacing
 * them exactly 5 s apart here could land them 4.999 s apart there. */
#define SOUK_IDENTIFY_INTERVAL_MS 5250

/** Called once when the slot asked for is the caller's. */
typedef void (*souk__identify_grant_cb)(void *ud);

/* A FIFO of shards waiting for one bucket's slot, shared by the backends.
 * Inline so that a backend outside souk_discord (the Redis one, in
 * souk_cache) needs no link-time dependency on this library. */

/** One waiter; owned by its queue. */
typedef struct souk__idl_waiter {
  struct souk__idl_waiter *next;
  souk__identify_grant_cb cb;
  void *ud;
} souk__idl_waiter_t;

/** Waiters of one bucket, oldest first; zero-initialised is empty. */
typedef struct souk__idl_queue {
  souk__idl_waiter_t *head, *tail;
} souk__idl_queue_t;

/** Append (cb, ud). */
static inline void souk__idl_queue_push(souk__idl_queue_t *q, souk__identify_grant_cb cb,
                                        void *ud) {
  souk__idl_waiter_t *w = souk_malloc(sizeof *w);
  w->next = NULL;
  w->cb = cb;
  w->ud = ud;
  if (q->tail) q->tail->next = w;
  else q->head = w;
  q->tail = w;
}

/** Remove the first waiter equal to (cb, ud), if any. */
static inline void souk__idl_queue_remove(souk__idl_queue_t *q, souk__identify_grant_cb cb,
                                          void *ud) {
  souk__idl_waiter_t **pp = &q->head, *prev = NULL;
  for (; *pp; prev = *pp, pp = &(*pp)->next) {
    souk__idl_waiter_t *w = *pp;
    if (w->cb != cb || w->ud != ud) continue;
    *pp = w->next;
    if (q->tail == w) q->tail = prev;
    souk_free(w);
    return;
  }
}

/** Take the oldest waiter into *cb / *ud; false when the queue is empty. */
static inline bool souk__idl_queue_pop(souk__idl_queue_t *q, souk__identify_grant_cb *cb,
                                       void **ud) {
  souk__idl_waiter_t *w = q->head;
  if (!w) return false;
  q->head = w->next;
  if (!q->head) q->tail = NULL;
  *cb = w->cb;
  *ud = w->ud;
  souk_free(w);
  return true;
}

/** Drop every waiter without calling it. */
static inline void souk__idl_queue_clear(souk__idl_queue_t *q) {
  souk__identify_grant_cb cb;
  void *ud;
  while (souk__idl_queue_pop(q, &cb, &ud)) {
  }
}

/* The bot's session starts (IDENTIFYs sent) of the last day, counted per
 * hour of the wall clock, shared by the processes of the bot the way the
 * slots are (memory, the lock file, Redis).  Discord allows about 1,000 a
 * day and resets the token of a bot that goes over; discord/idbudget.h
 * decides from these counts whether another may go. */

/** Hours of counts kept: the current one and the 24 before it, so that
 * every IDENTIFY of the last 24 hours is in them. */
#define SOUK_IDL_HOURS 25
/** Milliseconds in an hour of the record. */
#define SOUK_IDL_HOUR_MS INT64_C(3600000)

/** Counts for SOUK_IDL_HOURS hours, one slot per hour (hour % HOURS), each
 * remembering which hour it holds; zero-initialised is empty. */
typedef struct souk__idl_day {
  int64_t hour[SOUK_IDL_HOURS];
  uint32_t n[SOUK_IDL_HOURS];
} souk__idl_day_t;

/** Add k starts to hour (wall-clock ms / SOUK_IDL_HOUR_MS). */
static inline void souk__idl_day_add(souk__idl_day_t *d, int64_t hour, uint32_t k) {
  int s = (int)(((hour % SOUK_IDL_HOURS) + SOUK_IDL_HOURS) % SOUK_IDL_HOURS);
  if (d->hour[s] != hour) {
    d->hour[s] = hour;
    d->n[s] = 0;
  }
  d->n[s] += k;
}

/** Starts recorded in hour, 0 if that hour is not held. */
static inline uint32_t souk__idl_day_get(const souk__idl_day_t *d, int64_t hour) {
  int s = (int)(((hour % SOUK_IDL_HOURS) + SOUK_IDL_HOURS) % SOUK_IDL_HOURS);
  return d->hour[s] == hour ? d->n[s] : 0;
}

/** counts[i] = the starts of hour (wall_ms / SOUK_IDL_HOUR_MS - i). */
static inline void souk__idl_day_counts(const souk__idl_day_t *d, int64_t wall_ms,
                                        uint32_t counts[SOUK_IDL_HOURS]) {
  int64_t h = wall_ms / SOUK_IDL_HOUR_MS;
  for (int i = 0; i < SOUK_IDL_HOURS; i++)
    counts[i] = souk__idl_day_get(d, h - i);
}

/** A backend's operations; self is the backend's state. */
typedef struct souk__identify_lock_ops {
  /** Queue (cb, ud) for bucket's next slot.  0, or SOUK_E* and cb is never
   * called.  At most one pending acquire per (cb, ud) is expected. */
  int (*acquire)(void *self, uint32_t bucket, souk__identify_grant_cb cb, void *ud);
  /** Withdraw a pending acquire of (cb, ud); cb will not be called.  A
   * no-op if it was already granted or never queued. */
  void (*cancel)(void *self, uint32_t bucket, souk__identify_grant_cb cb, void *ud);
  /** The granted IDENTIFY was sent (or given up): the bucket's next slot is
   * interval_ms from now.  Must follow every grant exactly once. */
  void (*release)(void *self, uint32_t bucket);
  /** Free the backend: pending acquires are dropped without a call, its
   * libuv handles are closed (the loop finishes closing them). */
  void (*destroy)(void *self);
  /** Record one session start (an IDENTIFY sent) at wall_ms (Unix ms) in
   * the bot's shared record of the last day. */
  void (*count_start)(void *self, int64_t wall_ms);
  /** The bot's session starts per hour as last known: counts[i] for hour
   * (wall_ms / SOUK_IDL_HOUR_MS - i), i < SOUK_IDL_HOURS.  Never waits:
   * a backend that must ask a server answers from what it last heard,
   * plus its own starts since, and asks again in the background. */
  void (*starts)(void *self, int64_t wall_ms, uint32_t counts[SOUK_IDL_HOURS]);
} souk__identify_lock_ops_t;

/** A backend instance. */
typedef struct souk__identify_lock {
  const souk__identify_lock_ops_t *ops;
  void *self;
} souk__identify_lock_t;

/** In-process backend on souk_loop(): interval_ms between IDENTIFYs of one
 * bucket (0: 5000); clock NULL for the real monotonic clock.  0 or SOUK_E*. */
int souk__identify_lock_local(uint32_t interval_ms, const souk_clock_t *clock,
                             souk__identify_lock_t *out);

/** Lock-file backend for processes on one host: path is created if missing
 * (mode 0600).  The file holds each bucket's last IDENTIFY time on the
 * host's monotonic clock, guarded by flock(); a grant is recorded in it
 * before the callback runs, so two processes never IDENTIFY in the same
 * bucket less than interval_ms apart.  It also holds the session starts
 * per hour (count_start, starts), which outlive a restart of souk.  0,
 * SOUK_EINVAL or SOUK_EIO (cannot open the file; the message is logged). */
int souk__identify_lock_file(const char *path, uint32_t interval_ms, souk__identify_lock_t *out);

#endif
