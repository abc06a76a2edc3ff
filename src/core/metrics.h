/* The wiring's side of the metrics registry (souk/metrics.h is what
 * modules see): rendering for /metrics, the core's built-in families, and
 * freeing everything.  Loop thread only. */
#ifndef SOUK_CORE_METRICS_H
#define SOUK_CORE_METRICS_H

#include "souk/buf.h"
#include "souk/metrics.h"

/** Run the collectors, then append every family with at least one series
 * to out in the text format 0.0.4: families sorted by name, each with its
 * # HELP and # TYPE lines, series in the order they were created. */
void souk__metrics_render(souk_buf_t *out);

/** Register the core's families and collectors: the process (RSS,
 * virtual memory, CPU seconds, start time, open and max fds), the build
 * and the dispatcher.  Idempotent. */
void souk__metrics_builtin_init(void);

/** Free every family, series and collector (shutdown and tests). */
void souk__metrics_shutdown(void);

/** Append d as the text format writes a sample value ("1", "0.25", "NaN",
 * "+Inf", "-Inf").  Exposed for tests. */
void souk__metrics_fmt_double(souk_buf_t *out, double d);

#endif
