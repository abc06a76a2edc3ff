/* Core side of the memory guard (include/souk/memguard.h is what modules
 * and caches see): settings, the sampler and its timer.  The sampler is
 * injectable so tests feed it RSS values.
 *
 * Threads: loop thread only. */
#ifndef SOUK_OPS_MEMGUARD_H
#define SOUK_OPS_MEMGUARD_H

#include "souk/loop.h"
#include "souk/memguard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Read the RSS in bytes; returns 0 or SOUK_E*. */
typedef int (*souk__rss_sampler_cb)(void *ud, uint64_t *rss);

/** The real sampler: resident pages from /proc/self/statm times the page
 * size.  Returns 0 or SOUK_EIO. */
int souk__memguard_rss_proc(void *ud, uint64_t *rss);

/** Settings. */
typedef struct souk__memguard_opts {
  uint64_t soft_bytes, hard_bytes; /* 0: that limit is off */
  uint64_t interval_ms;            /* sampling period (0: 10 s) */
  uint64_t trim_cooldown_ms;       /* least time between trims (0: none) */
  souk__rss_sampler_cb sampler;     /* NULL: souk__memguard_rss_proc */
  void *sampler_ud;
  const souk_clock_t *clock; /* NULL: monotonic */
} souk__memguard_opts_t;

/** (Re)initialise the guard: forgets trims and counters; takes one sample. */
void souk__memguard_init(const souk__memguard_opts_t *opts);
/** Change the limits (run-time config); applied at the next sample. */
void souk__memguard_set_limits(uint64_t soft_bytes, uint64_t hard_bytes);
/** Stop the timer and free the trim list. */
void souk__memguard_shutdown(void);
/** Sample on a uv timer on souk_loop().  Returns 0 or SOUK_E*. */
int souk__memguard_start(void);
/** Stop sampling. */
void souk__memguard_stop(void);
/** Take a sample now and act on it (log level changes, trim above hard).
 * Returns the new level. */
souk_memguard_level_t souk__memguard_sample(void);
/** Last sampled RSS (sampling now when no sample was taken yet, with the
 * real sampler when the guard was never initialised).  Returns 0 or
 * SOUK_E*. */
int souk__memguard_rss(uint64_t *rss);

#endif
