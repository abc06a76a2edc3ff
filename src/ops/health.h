/* Core side of health checks (include/souk/health.h is what modules see). */
#ifndef SOUK_OPS_HEALTH_H
#define SOUK_OPS_HEALTH_H

#include "souk/health.h"
#include "souk/loop.h"

#include <stdint.h>

/** Settings of the health registry. */
typedef struct souk__health_opts {
  const souk_clock_t *clock;   /* NULL: monotonic; for souk_perf_* */
  uint64_t slow_op_ms;         /* 0: 1000 */
  uint64_t report_interval_ms; /* periodic log; 0: 15 minutes */
} souk__health_opts_t;

/** (Re)initialise: forgets every check.  opts may be NULL. */
void souk__health_init(const souk__health_opts_t *opts);
/** Change the slow-operation threshold (run-time config; 0: 1000). */
void souk__health_set_slow_op(uint64_t ms);
/** Stop the report timer and free every check. */
void souk__health_shutdown(void);
/** Log the report every report_interval_ms from a uv timer on souk_loop().
 * Returns 0 or SOUK_E*. */
int souk__health_start(void);
/** Stop the report timer. */
void souk__health_stop(void);

/** Thresholds of the built-in memory check. */
typedef struct souk__health_mem {
  uint64_t warn_bytes, crit_bytes; /* 0: that level is off */
} souk__health_mem_t;

/** Built-in check "memory": RSS from the memory guard's sampler against
 * *ud (a souk__health_mem_t that must outlive the registration). */
void souk__health_memory_check(void *ud, souk_health_result_t *out);

#endif
