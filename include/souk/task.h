/* Background tasks: what a module lists in its `tasks` table.
 *
 * The core runs each task every period (plus a random jitter), never two
 * runs of the same task at once: a run still going when the next is due
 * makes that next run be skipped and counted.  A handler finishes its run
 * exactly once with souk_task_done(), synchronously or later from a
 * callback.  Repeated failures back off (period x 2^k, capped) and a
 * success returns to the normal period.  A run longer than its budget is
 * logged and reported to health.  Tasks flagged SOUK_TASK_HEAVY are skipped
 * while memory is above the memory guard's soft limit.
 *
 * Scope: with several processes of one bot (souk/cluster.h), each task
 * says where it runs.  A process task (the default) runs in every process:
 * work on this process's own state (flushing its counters, re-reading
 * settings, probing its store connection).  A shard task runs in every
 * process that runs gateway shards, on the guilds of those shards.  A
 * cluster task runs in one process only, the holder of the cluster's
 * lease: work on shared state that must happen once for the whole bot (a
 * daily update, a prune of shared tables); elsewhere its runs are skipped
 * (counted as skipped_not_leader), and a run started under a lease that
 * is lost meanwhile commits nothing when its store writes pass
 * souk_task_fence() to souk_db_fence().  A cluster task flagged
 * SOUK_TASK_RUN_AT_START also runs as soon as its process gains the lease.
 *
 * Threads: handlers run, and souk_task_done() must be called, on the loop
 * thread. */
#ifndef SOUK_TASK_H
#define SOUK_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Task flags. */
enum {
  SOUK_TASK_HEAVY = 1u << 0,        /* skipped above the memory guard's soft limit */
  SOUK_TASK_RUN_AT_START = 1u << 1, /* first run right after start (plus jitter) */
};

/** Where a task runs when several processes share the bot (see above). */
typedef enum souk_task_scope {
  SOUK_TASK_SCOPE_PROCESS = 0, /* every process */
  SOUK_TASK_SCOPE_SHARD,       /* every process that runs gateway shards */
  SOUK_TASK_SCOPE_CLUSTER,     /* only the holder of the cluster's lease */
} souk_task_scope_t;

/** One run of a task; valid until souk_task_done() is called on it. */
typedef struct souk_task_ctx souk_task_ctx_t;

/** Start one run; finish it with souk_task_done(ctx, err) exactly once. */
typedef void (*souk_task_cb)(souk_task_ctx_t *ctx);

/** A periodic task.  Module tables end with a zero entry (name NULL). */
struct souk_task {
  const char *name;        /* unique among all tasks: "market.poll_prices" */
  uint64_t period_ms;      /* time between run starts (> 0, or see period_conf) */
  uint64_t jitter_ms;      /* each run starts up to this much later, uniformly */
  uint64_t budget_ms;      /* expected longest run; 0: no budget */
  uint64_t max_backoff_ms; /* cap of the failure backoff; 0: period x 16 */
  souk_task_cb handler;
  unsigned flags; /* SOUK_TASK_* */
  void *ud;       /* handed back by souk_task_ud() */
  /** A period that comes from the configuration: when set and > 0, the
   * value it points at (milliseconds, e.g. &my_conf.check_every_ms) is the
   * period, read each time a run is planned, so a run-time config change
   * applies from the next run; period_ms is then only the fallback for
   * while it is <= 0.  The pointer must outlive the task. */
  const int64_t *period_conf;
  /** Where it runs when several processes share the bot; the default,
   * 0, is every process. */
  souk_task_scope_t scope;
};
/** A task (struct souk_task is forward-declared in module.h). */
typedef struct souk_task souk_task_t;

/** Finish a run: err is 0 or SOUK_E*.  ctx is freed; do not use it after.
 * Calling it twice for one run is a bug and asserts. */
void souk_task_done(souk_task_ctx_t *ctx, int err);
/** The task's ud field (NULL for a run whose task was removed). */
void *souk_task_ud(const souk_task_ctx_t *ctx);
/** The task's name: the task table's own string (not copied), valid as
 * long as the table; "?" for a run whose task was removed or whose
 * scheduler was shut down.  Never NULL. */
const char *souk_task_name(const souk_task_ctx_t *ctx);

/** The fencing token of the cluster lease this run started under (a
 * SOUK_TASK_SCOPE_CLUSTER task's), for souk_db_fence() in its store
 * writes; 0 for other scopes and without a lease (one process). */
int64_t souk_task_fence(const souk_task_ctx_t *ctx);

/** A scope's name: "process", "shard" or "cluster". */
const char *souk_task_scope_name(souk_task_scope_t scope);

/** What the scheduler knows about one task. */
typedef struct souk_task_stats {
  const char *name; /* valid while the task is registered */
  souk_task_scope_t scope;
  uint64_t runs, failures, skipped_overlap, skipped_heavy, over_budget;
  uint64_t skipped_not_leader; /* cluster runs due while another process led */
  uint64_t skipped_no_shards;  /* shard runs due in a process that runs no shard */
  uint32_t consecutive_failures;
  bool running;
  int last_err;              /* 0 or SOUK_E* of the last finished run */
  uint64_t last_start_ms;    /* scheduler clock; 0: never ran */
  uint64_t last_duration_ms; /* of the last finished run */
  uint64_t next_run_ms;      /* scheduler clock */
  uint64_t period_ms;        /* current period, including backoff */
  uint64_t budget_ms;
} souk_task_stats_t;

/** Stats of the task named name.  Returns 0 or SOUK_ENOTFOUND. */
int souk_task_stats(const char *name, souk_task_stats_t *out);
/** Number of registered tasks. */
size_t souk_task_count(void);
/** Stats of task i (registration order).  Returns 0 or SOUK_ERANGE. */
int souk_task_stats_at(size_t i, souk_task_stats_t *out);

/** Admin restart: clear the task's failure backoff and run it as soon as
 * possible.  Returns 0, SOUK_ENOTFOUND, or SOUK_EBUSY when a run is still
 * going (a run cannot be aborted from outside). */
int souk_task_restart(const char *name);

#endif
