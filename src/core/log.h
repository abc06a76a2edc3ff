/* The logger's internals for the program's wiring and tests: the line
 * coalescing's clock and switch, and the periodic flush of finished
 * windows.  Modules log through souk/log.h only.  Loop thread only. */
#ifndef SOUK_CORE_LOG_H
#define SOUK_CORE_LOG_H

#include "souk/log.h"

#include <stdbool.h>
#include <stdint.h>

struct uv_loop_s;

/** The coalescing's clock in milliseconds (tests inject one; NULL: the
 * monotonic clock). */
void souk__log_set_clock(uint64_t (*now_ms)(void));
/** Coalescing on or off (tests that count raw lines). */
void souk__log_set_coalesce(bool on);
/** Write the "repeated N times" lines of windows that have ended: what the
 * flusher's timer calls. */
void souk__log_tick(void);
/** Flush finished windows periodically on loop (an unref'd timer). */
void souk__log_flusher_start(struct uv_loop_s *loop);
/** Stop the flusher; call it before the loop closes. */
void souk__log_flusher_stop(void);

#endif
