/* Health checks and slow-operation logging.
 *
 * Components register checks that report HEALTHY, WARNING or CRITICAL with
 * a one-line detail; the overall status is the worst of them.  The report is
 * readable text for logs and admin commands, logged every
 * health.report_interval and on demand.  souk_perf_begin/end (or
 * SOUK_PERF_SCOPE) log operations slower than health.slow_op.
 *
 * Threads: loop thread only. */
#ifndef SOUK_HEALTH_H
#define SOUK_HEALTH_H

#include "souk/buf.h"

#include <stdint.h>

/** Health levels, best first, so the worst is the maximum. */
typedef enum souk_health {
  SOUK_HEALTH_HEALTHY,
  SOUK_HEALTH_WARNING,
  SOUK_HEALTH_CRITICAL,
} souk_health_t;

/** "HEALTHY", "WARNING" or "CRITICAL"; never NULL. */
const char *souk_health_name(souk_health_t h);

/** What one check reports. */
typedef struct souk_health_result {
  souk_health_t status;
  char detail[200]; /* one line, no newline: "rss 412 MB >= warning 384 MB" */
} souk_health_result_t;

/** Set a result's status and printf-formatted detail. */
void souk_health_set(souk_health_result_t *r, souk_health_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** A check: fill *out (it starts HEALTHY with an empty detail). */
typedef void (*souk_health_check_cb)(void *ud, souk_health_result_t *out);

/** Register component's check (name copied).  ud must outlive the
 * registration.  Returns 0, SOUK_EINVAL or SOUK_EEXIST. */
int souk_health_register(const char *component, souk_health_check_cb fn, void *ud);
/** Remove a check.  Returns 0 or SOUK_ENOTFOUND. */
int souk_health_unregister(const char *component);

/** Which way a value gets worse. */
typedef enum souk_health_dir {
  SOUK_HEALTH_HIGHER_IS_WORSE, /* latency, error rate, memory */
  SOUK_HEALTH_LOWER_IS_WORSE,  /* free disk, hit ratio */
} souk_health_dir_t;

/** Compare value with thresholds: at or beyond crit is CRITICAL, at or
 * beyond warn WARNING, else HEALTHY.  A NaN value is CRITICAL. */
souk_health_t souk_health_threshold(double value, double warn, double crit, souk_health_dir_t dir);

/** Run every check now; returns the overall (worst) status, HEALTHY when
 * nothing is registered.  report (may be NULL) gets the readable text:
 * a first line "health: WARNING (3 checks: 2 healthy, 1 warning, 0
 * critical)" then one line per component, "  memory  WARNING  detail". */
souk_health_t souk_health_check_all(souk_buf_t *report);
/** Status of one component from its check run now.  Returns 0 or
 * SOUK_ENOTFOUND. */
int souk_health_check_one(const char *component, souk_health_result_t *out);
/** Log the report now, one log line per report line. */
void souk_health_log_report(void);

/** A timed operation: from souk_perf_begin() to souk_perf_end(). */
typedef struct souk_perf {
  const char *name; /* must stay valid until souk_perf_end() */
  uint64_t start_ms;
} souk_perf_t;

/** Start timing name (not copied). */
souk_perf_t souk_perf_begin(const char *name);
/** Stop timing: logs a warning with name and duration when the operation
 * took at least health.slow_op (default 1 s), and counts it.  Returns the
 * duration in ms. */
uint64_t souk_perf_end(const souk_perf_t *p);
/** Like souk_perf_end() with an explicit threshold in ms. */
uint64_t souk_perf_end_threshold(const souk_perf_t *p, uint64_t threshold_ms);
/** Number of slow operations logged since start. */
uint64_t souk_perf_slow_count(void);

/** Time the rest of the enclosing block (GCC/Clang cleanup attribute). */
#define SOUK_PERF_SCOPE(name)                                                                      \
  __attribute__((cleanup(souk__perf_scope_end))) souk_perf_t SOUK__PERF_CAT(                       \
      souk__perf_, __LINE__) = souk_perf_begin(name)
#define SOUK__PERF_CAT(a, b)  SOUK__PERF_CAT2(a, b)
#define SOUK__PERF_CAT2(a, b) a##b
/** Used by SOUK_PERF_SCOPE. */
void souk__perf_scope_end(souk_perf_t *p);

#endif
