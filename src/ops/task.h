/* Core side of the task scheduler (include/souk/task.h is what modules see).
 *
 * The scheduler's decisions are a pure function of (now, state):
 * souk__sched_tick() starts what is due at the clock's now and returns when
 * it next needs to run.  The libuv timer started by souk__sched_start() is a
 * thin shell that calls tick and re-arms itself, so unit tests drive the
 * scheduler with a fake clock and direct tick() calls instead. */
#ifndef SOUK_OPS_TASK_H
#define SOUK_OPS_TASK_H

#include "souk/buf.h"
#include "souk/loop.h"
#include "souk/recovery.h"
#include "souk/task.h"

#include <stdbool.h>
#include <stdint.h>

struct souk_health_result;

/** Settings of the scheduler. */
typedef struct souk__sched_opts {
  const souk_clock_t *clock; /* NULL: monotonic; must outlive the scheduler */
  const souk_rand_t *rand;   /* NULL: souk_rand01; draws the jitter */
  /** Asked before a SOUK_TASK_HEAVY run; false skips it.  NULL: the memory
   * guard (souk_memguard_allow_heavy). */
  bool (*allow_heavy)(const char *name, void *ud);
  void *heavy_ud;
  /** Health: a task running this many times its budget is critical (0: 3). */
  uint32_t budget_crit_factor;
  /** Health: this many consecutive failures is critical (0: 5). */
  uint32_t fail_crit;
} souk__sched_opts_t;

/** (Re)initialise the scheduler with no tasks.  Runs still out are
 * orphaned: their souk_task_done() only frees the context. */
void souk__sched_init(const souk__sched_opts_t *opts);
/** Stop the timer, orphan runs still out and free all state. */
void souk__sched_shutdown(void);
/** Add a task; *t is not copied and must outlive the scheduler (module
 * tables are static).  The first run is due after one period (now with
 * SOUK_TASK_RUN_AT_START) plus jitter.  Returns 0, SOUK_EINVAL (no name,
 * handler or period) or SOUK_EEXIST (name taken). */
int souk__sched_add(const souk_task_t *t);
/** Add every entry of a module's table (ends with name NULL); stops at the
 * first error and returns it. */
int souk__sched_add_table(const souk_task_t *tasks);
/** Remove the task t points at (the same pointer that was added; nothing
 * when it is not there).  A run still out finishes unseen: its
 * souk_task_done() only frees the context. */
void souk__sched_remove(const souk_task_t *t);
/** Remove every entry of a table added with souk__sched_add_table. */
void souk__sched_remove_table(const souk_task_t *tasks);
/** Start every due task, flag runs over budget, and return the clock time
 * at which tick should run next (UINT64_MAX when there is nothing). */
uint64_t souk__sched_tick(void);
/** Drive tick from a uv timer on souk_loop().  Returns 0 or SOUK_E*. */
int souk__sched_start(void);
/** Stop the uv timer (runs out keep going; their done is still accepted). */
void souk__sched_stop(void);
/** Append one line per task for logs and admin commands:
 * "name: 12 runs, 1 failed (0 in a row), skipped 2 overlap / 0 heavy,
 * 1 over budget, last 340 ms, next in 59660 ms[, running 1200 ms]". */
void souk__sched_report(souk_buf_t *out);
/** Health check "tasks": a run over budget is a warning, over budget x
 * factor or fail_crit consecutive failures is critical. */
void souk__sched_health_check(void *ud, struct souk_health_result *out);

#endif
