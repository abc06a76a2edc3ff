/* Figures of the running bot, for operators' commands (/admin performance,
 * /admin scalability, /admin queue status).  Each call is a snapshot taken
 * on the loop thread; in a process without a gateway (the console) the
 * Discord figures are zero.
 *
 * Ownership: strings handed out are valid until the next call into the
 * layer that owns them (the callback's arguments only during the call). */
#ifndef SOUK_STATS_H
#define SOUK_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Upper bounds of the command latency histogram, in seconds. */
#define SOUK_STATS_LATENCY_BUCKETS 8
extern const double souk_stats_latency_bounds[SOUK_STATS_LATENCY_BUCKETS];

/** One command's (or component's) figures since start. */
typedef struct souk_stats_command {
  const char *path; /* "market buy", "component eco:poll:" */
  uint64_t calls, ok, errors, refused, late;
  double latency_sum_s;
  /** Cumulative: calls that took at most souk_stats_latency_bounds[i]. */
  uint64_t buckets[SOUK_STATS_LATENCY_BUCKETS];
} souk_stats_command_t;

/** Commands with figures: count, and command i (0 or SOUK_ERANGE). */
size_t souk_stats_commands(void);
int souk_stats_command_at(size_t i, souk_stats_command_t *out);
/** The latency under which a share q (0..1) of cmd's calls finished,
 * from its histogram: the upper bound of the first bucket that holds it,
 * or -1 when the share is beyond the last bound (or there were none). */
double souk_stats_percentile(const souk_stats_command_t *cmd, double q);

/** Gateway events dispatched to modules since start. */
uint64_t souk_stats_events(void);

/** The REST client's state. */
typedef struct souk_stats_rest {
  size_t queued, inflight;          /* requests waiting, and sent without an answer yet */
  uint64_t requests, sent, retries; /* since start */
  uint64_t failed, rejected_full;
  uint64_t r429_user, r429_shared, r429_global;
  uint32_t invalid_count;  /* 401/403/429 in the last 10 minutes (Discord bans at 10,000) */
  bool invalid_tripped;    /* requests are refused until that count falls */
  size_t buckets;          /* rate-limit buckets known */
  uint64_t global_wait_ms; /* a global 429 holds every request this long */
  /* Discord's global limit: "local" (this process has all of it),
   * "shared" (counted in Redis with the bot's other processes),
   * "fallback" (Redis unreachable: this process's share of it) or
   * "connecting" (waiting for Redis's first answer).  Never NULL. */
  const char *global_mode;
  double global_per_s;       /* requests a second this process may send now, at most */
  uint32_t global_processes; /* fallback: the processes the limit is shared by */
} souk_stats_rest_t;

void souk_stats_rest(souk_stats_rest_t *out);
/** Called for each route queue holding requests now. */
typedef void (*souk_stats_route_cb)(const char *route, size_t queued, unsigned inflight, void *ud);
void souk_stats_rest_routes(souk_stats_route_cb fn, void *ud);

/** One gateway shard of this process. */
typedef struct souk_stats_shard {
  uint32_t id;
  const char *state;  /* "ready", "connecting", "resuming", ... */
  int64_t latency_ms; /* last heartbeat round trip, -1 before the first */
  uint64_t events;    /* dispatches received */
  uint64_t reconnects, resumes, zombies;
  uint64_t send_queue; /* payloads waiting for the gateway's send limit */
} souk_stats_shard_t;

/** Shards run by this process: count, and shard i (0 or SOUK_ERANGE). */
size_t souk_stats_shards(void);
int souk_stats_shard_at(size_t i, souk_stats_shard_t *out);

/** The hand-off of shard sessions between processes through Redis. */
typedef struct souk_stats_handoff {
  bool on;        /* sessions are kept in Redis (cache.url, discord.shards.handoff) */
  bool redis_up;  /* and Redis is reachable now */
  uint64_t claims;  /* shards claimed at their start */
  uint64_t resumed; /* of those, resumed from a session another process handed on */
  uint64_t writes, write_failures;
  uint64_t lost;    /* shards another process claimed from this one */
  const char *owner; /* this process's name in the keys, "" when off */
} souk_stats_handoff_t;

/** The hand-off's figures now; on false (and owner "") without one. */
void souk_stats_handoff(souk_stats_handoff_t *out);

#endif
