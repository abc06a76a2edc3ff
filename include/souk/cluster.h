/* The cluster: the souk processes of one bot, sharing one store and one
 * Redis, that must behave as one process.
 *
 * Each process registers itself (an id, its host and pid, its shard range
 * and version) with a heartbeat, and one of them holds the cluster's lease:
 * the leader.  Work that must happen once for the whole bot (the market's
 * daily update, the SkyBlock poller, slash-command registration, the
 * scanner, daily summaries) runs only in the leader: a task declares it
 * with SOUK_TASK_SCOPE_CLUSTER (souk/task.h) and the scheduler skips it
 * elsewhere, and a module's own timer asks souk_cluster_leader().  When the
 * leader dies, another process takes the lease within a few seconds (the
 * lease's TTL, `cluster.lease_ttl`).
 *
 * The lease lives in Redis (SET NX PX, renewed) when `cache.url` is set,
 * else in a PostgreSQL advisory lock held on a connection of its own when
 * the store is PostgreSQL; with neither (one process, SQLite) this process
 * is always the leader.  Every lease carries a fencing token, a number that
 * only grows (a Redis counter, or a PostgreSQL sequence): a store write
 * made under the lease passes it to souk_db_fence() (souk/store.h) in its
 * transaction, and the store refuses the write once a holder with a newer
 * token has written, so work done under a lease that was lost is never
 * committed over the new holder's.
 *
 * Redis or PostgreSQL down: a leader that cannot renew its lease stops
 * leading before the lease can expire (so two processes never lead at
 * once), and cluster work pauses until the lease can be taken again.
 *
 * Threads: loop thread only. */
#ifndef SOUK_CLUSTER_H
#define SOUK_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Where the lease lives. */
typedef enum souk_cluster_mode {
  SOUK_CLUSTER_SINGLE = 0, /* no lease: this process is the whole bot */
  SOUK_CLUSTER_REDIS,      /* SET NX PX in Redis, fenced by a Redis counter */
  SOUK_CLUSTER_POSTGRES,   /* a PostgreSQL advisory lock, fenced by a sequence */
} souk_cluster_mode_t;

/** True while this process holds the cluster's lease (always in
 * SOUK_CLUSTER_SINGLE mode, and in a process that runs no cluster, such
 * as `souk console`). */
bool souk_cluster_leader(void);

/** The fencing token of the lease this process holds now, or 0 when it
 * holds none (or there is no lease to hold: SOUK_CLUSTER_SINGLE).  Copy it
 * into the job when cluster work starts and hand it to souk_db_fence() in
 * the job's store transaction. */
int64_t souk_cluster_fence(void);

/** Called on the loop thread when this process gains (leader true) or
 * loses the lease, with the new lease's fencing token (0 when lost). */
typedef void (*souk_cluster_leader_cb)(bool leader, int64_t fence, void *ud);

/** Be told of every change of leadership until souk_cluster_unwatch() (a
 * module's init calls it, its shutdown unwatches).  A process that is the
 * leader already is not told again.  0, or SOUK_EFULL (too many
 * watchers). */
int souk_cluster_watch(souk_cluster_leader_cb cb, void *ud);
/** Stop telling (cb, ud); nothing when it was not watching. */
void souk_cluster_unwatch(souk_cluster_leader_cb cb, void *ud);

/** One process of the cluster, as its last heartbeat described it. */
typedef struct souk_cluster_member {
  char id[96];      /* cluster.id, or host:pid */
  char host[64];    /* host name */
  char version[32]; /* souk's version */
  int64_t pid;
  int64_t shard_first, shard_last; /* -1, -1: runs no shard (yet) */
  int64_t shard_count;             /* the bot's shard count; 0: not known yet */
  uint64_t started_unix_ms;        /* when the process started */
  uint64_t seen_ms_ago;            /* since its last heartbeat */
  bool leader;                     /* holds the lease, by its own heartbeat */
  bool self;                       /* this process */
} souk_cluster_member_t;

/** What this process knows of the cluster. */
typedef struct souk_cluster_status {
  souk_cluster_mode_t mode;
  const char *id;       /* this process's id (owned by the cluster) */
  bool connected;       /* the lease's engine (Redis, PostgreSQL) answers */
  bool leader;          /* this process holds the lease */
  int64_t fence;        /* its token, 0 when it holds none */
  const char *holder;   /* the holder's id as last seen, "" when none is known */
  uint64_t lease_ttl_ms;
  uint64_t leader_changes; /* times this process gained or lost the lease */
  size_t members;          /* processes alive at the last heartbeat (at least 1: this one) */
} souk_cluster_status_t;

/** Fill *out.  The strings are owned by the cluster: valid until the next
 * call into it. */
void souk_cluster_status(souk_cluster_status_t *out);

/** The processes alive at the last heartbeat, this one included, sorted by
 * id: up to cap of them into out; returns how many there are (which may be
 * more than cap).  Without Redis only this process is known. */
size_t souk_cluster_members(souk_cluster_member_t *out, size_t cap);

#endif
