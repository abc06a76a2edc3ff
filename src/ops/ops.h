/* Operations wiring: start recovery, health, the task scheduler, the memory
 * guard and the janitor from the config sections in ops/opsconf.h. */
#ifndef SOUK_OPS_OPS_H
#define SOUK_OPS_OPS_H

#include "souk/health.h"

/** Initialise every ops component from souk__ops_conf, souk__health_conf,
 * souk__memguard_conf and souk__janitor_conf (loaded beforehand), register
 * the built-in health checks "memory", "tasks", "errors" and "breakers",
 * and start the
 * timers (memguard and janitor only when enabled).  Module tasks are added
 * afterwards with souk__sched_add_table() and run once souk__sched_start()
 * is called.  Returns 0 or SOUK_E* (then nothing is left running). */
int souk__ops_start(void);
/** Apply the run-time keys (limits, thresholds, slow_op, janitor cap,
 * headroom and dry_run) after a config reload or admin change. */
void souk__ops_reload(void);
/** Stop timers and free everything souk__ops_start() set up. */
void souk__ops_stop(void);

/** Register the souk_task_* and souk_errors_* families of /metrics. */
void souk__ops_metrics_init(void);

/** Built-in check "errors": the error rate per minute against
 * ops.errors.rate_warning / rate_critical (0 turns a level off). */
void souk__ops_errors_check(void *ud, souk_health_result_t *out);

#endif
