/* The process side of the cluster (include/souk/cluster.h is what modules
 * see): the `cluster` config section, start and stop, and what the other
 * layers tell it or ask of it.
 *
 * Redis keys, all under cache.key_prefix (P):
 *   P cluster:members   a sorted set: process id -> when its heartbeat
 *                       expires (Redis's own clock, ms)
 *   P cluster:info      a hash: process id -> its JSON description
 *   P cluster:lease     "<fence> <holder token>", with a TTL: the lease
 *   P cluster:fence     the fencing counter (INCR)
 *   P cluster:events    a publish channel: "<sender> settings <scope> <key>"
 * souk_cache_clear() never deletes keys under "cluster:" (cache.c), so
 * `/admin cache-clear *` cannot hand the lease to a second process.
 *
 * A fenced write the store refused (souk_db_fence found a newer token,
 * store/lease.h) makes the leader give its lease up; the next lease is
 * taken above the newest token the store has seen, so a Redis restarted
 * without persistence (its counter back at 0) cannot hand out tokens the
 * store would refuse forever.
 *
 * Every script runs on Redis's clock (TIME), so the hosts' clocks never
 * need to agree.  The leader's lease is its own only until
 * (when the last successful renewal was sent) + ttl - ttl / 4: it stops
 * leading by then even if Redis never answered, while the key cannot
 * expire in Redis before the renewal's send time + ttl.
 *
 * Loop thread only. */
#ifndef SOUK_OPS_CLUSTER_H
#define SOUK_OPS_CLUSTER_H

#include "souk/cluster.h"
#include "souk/conf.h"
#include "souk/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Values of the `cluster` section. */
typedef struct souk__cluster_conf {
  char *id;                /* this process's name; NULL: <host>:<pid> */
  int lease;               /* souk__cluster_lease_t */
  int64_t lease_ttl_ms;    /* the lease's TTL */
  int64_t heartbeat_ms;    /* membership heartbeat period; a member expires after 3 of them */
} souk__cluster_conf_t;

/** cluster.lease: where the lease lives. */
typedef enum souk__cluster_lease {
  SOUK__CLUSTER_LEASE_AUTO = 0, /* Redis when cache.url is set, else PostgreSQL when the store is */
  SOUK__CLUSTER_LEASE_REDIS,
  SOUK__CLUSTER_LEASE_POSTGRES,
  SOUK__CLUSTER_LEASE_OFF, /* every process leads: one process only */
} souk__cluster_lease_t;

/** Key table of the `cluster` section. */
extern const souk_conf_key_t souk__cluster_conf_keys[];
/** The live values of the `cluster` section. */
extern souk__cluster_conf_t souk__cluster_conf;

/** What the cluster is started with. */
typedef struct souk__cluster_opts {
  const char *redis_url;  /* cache.url; NULL: no Redis */
  const char *key_prefix; /* cache.key_prefix */
  souk_store_t *store;    /* the process's store (the fence's floor, the advisory lock) */
  const char *store_url;  /* store.url, for the advisory lock's own connection */
  int64_t connect_timeout_ms; /* store.connect_timeout */
  const char *version;    /* souk's version, for the member list */
  uint64_t unix_started_ms;
} souk__cluster_opts_t;

/** Start: choose the mode from souk__cluster_conf and opts, register the
 * health check "cluster" and the /metrics families, and start connecting
 * (the heartbeat and the lease run on timers from here).  Until the first
 * answer a process in Redis or PostgreSQL mode is not the leader.  0 or
 * SOUK_ECONFIG (cluster.lease names an engine that is not configured;
 * logged). */
int souk__cluster_start(const souk__cluster_opts_t *opts);
/** Stop: a leader gives its lease back (Redis: deleted if still its own;
 * PostgreSQL: unlocked), this process leaves the member list, so another
 * process takes over at once rather than after the TTL.  Safe when not
 * started. */
void souk__cluster_stop(void);
/** True between start and stop. */
bool souk__cluster_running(void);

/** The shards this process runs (from the bot, once it knows), for the
 * member list: first..last of count; (-1, -1, 0) for none. */
void souk__cluster_set_shards(int64_t first, int64_t last, int64_t count);
/** This process's shard count and the bot's, as set above (0, 0 before
 * the bot said). */
void souk__cluster_shards(uint32_t *mine, uint32_t *total);
/** Whether this process runs shards, for SOUK_TASK_SCOPE_SHARD tasks: true
 * until the bot says otherwise (the console counts as running its shard). */
bool souk__cluster_has_shards(void);

/** Processes alive as of the last membership this process saw (at least
 * 1), for the REST limiter's share of the global limit while Redis is
 * unreachable. */
size_t souk__cluster_size(void);

/** Tell the other processes that a per-guild or per-user setting changed
 * (the settings registry's publish hook).  Without Redis, or while it is
 * unreachable, nothing is sent: the others re-read changed settings every
 * minute (settings.refresh), and at once when Redis comes back. */
void souk__cluster_publish_setting(uint64_t scope_id, const char *key, void *ud);

/** Set the mode, the id and leadership by hand, with no engine (unit tests
 * of code that reads the cluster).  NULL id: "test". */
void souk__cluster_fake(souk_cluster_mode_t mode, const char *id, bool leader, int64_t fence);

#endif
