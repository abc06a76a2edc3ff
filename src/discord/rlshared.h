/* Discord's global REST limit shared by every process of the bot, counted
 * in Redis: a souk__rl_global_t backend (see discord/ratelimit.h).
 *
 * The 50 requests a second belong to the bot, not to a process.  The
 * processes share one schedule in Redis, the key <prefix>cluster:rest: the
 * "theoretical arrival time" of a generic cell rate algorithm, in
 * microseconds of Redis's own clock.  One atomic script reserves slots:
 * each is one emission interval (1 / (per_s - margin) s) after the one
 * before, whichever process asked for it, so the requests of all the
 * processes together are spaced as one process's are.  A process reserves
 * a few slots at a time, no further ahead than HORIZON_MS, as its queue
 * needs them (never more than its share of the horizon when others are
 * busy too), and sends each request at its slot's time; a slot it could
 * not use in time (more than the lateness allowed, see rlshared.c) is
 * dropped rather than sent late, so no process can bunch requests, and
 * any second holds at most per_s requests across the cluster.
 *
 * Redis unreachable (at start after the first connection attempt failed,
 * when the connection drops, or when a reply is later than
 * RLS_TIMEOUT_MS): each process falls back to its share, (per_s - margin)
 * / N requests a second spaced evenly, N being the larger of the last
 * membership the cluster saw and the shard count divided by this
 * process's shards; the switch is logged once, and so is the return to the
 * shared schedule.  Before the first connection attempt has ended no
 * request goes (at most about a second).  Reconnects are tried at least
 * every second, and for a few seconds after its return a process keeps to
 * its share as well as to the shared schedule, since the others may still
 * be on their shares until their own reconnect: the shares and the shared
 * schedule never add up.  A partial partition (some processes reach Redis,
 * others do not) is the one case where they can: the cut-off processes
 * send their shares while the others share the whole limit; Discord then
 * answers some requests with a global 429, which every process that
 * reaches Redis honours.
 *
 * A global 429 moves the shared schedule past its Retry-After, so every
 * process waits, not only the one that got it.
 *
 * Loop thread only. */
#ifndef SOUK_DISCORD_RLSHARED_H
#define SOUK_DISCORD_RLSHARED_H

#include "discord/ratelimit.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** What the shared backend is made from. */
typedef struct souk__rl_shared_conf {
  const char *url;        /* redis://... (cache.url); copied */
  const char *key_prefix; /* cache.key_prefix; NULL: none; copied */
  uint32_t per_s;         /* Discord's global limit (50) */
  uint32_t margin;        /* held back from it (discord.rest.global_margin) */
  /** Processes of the bot, for the fallback share (at least 1); NULL: 1. */
  size_t (*members)(void);
  /** This process's shards and the bot's shard count, for the fallback
   * share when the membership was never seen; NULL: not used. */
  void (*shards)(uint32_t *mine, uint32_t *total);
  /** Called (on the loop, later) when slots arrive or the mode changes,
   * so the REST client looks at its queue again; NULL: none. */
  void (*wake)(void *ud);
  void *wake_ud;
  /** The clock wait() and take() are given (the limiter's); NULL:
   * souk_clock_mono.  The slot times Redis hands out are mapped onto it. */
  const souk_clock_t *clock;
} souk__rl_shared_conf_t;

/** Create the backend and start connecting.  0 and *out (destroyed by the
 * limiter that owns it), or SOUK_EINVAL (NULL or zero arguments, margin
 * >= per_s) / SOUK_ECONFIG (a bad URL; not logged). */
int souk__rl_global_redis(const souk__rl_shared_conf_t *conf, souk__rl_global_t *out);

/** The backend's state, for operators. */
typedef struct souk__rl_shared_stats {
  bool shared;          /* counting in Redis now */
  bool settled;         /* the first connection attempt has ended */
  uint32_t fallback_n;  /* N of the fallback share (when not shared) */
  double per_s;         /* requests a second this process may send now at most */
  uint64_t reserved;    /* slots reserved in Redis */
  uint64_t used;        /* of those, sent */
  uint64_t dropped;     /* of those, dropped: not used in time */
  uint64_t switches;    /* times it fell back to the local share */
} souk__rl_shared_stats_t;

/** Fill *out for the backend b (a souk__rl_global_t made here); false when
 * b is not this kind. */
bool souk__rl_shared_stats(const souk__rl_global_t *b, souk__rl_shared_stats_t *out);

#endif
