/* Loop helpers shared by unit tests that drive souk's loop against a real
 * server (Redis, the fake gateway): run the loop until a condition holds
 * or a time passes.  Header-only, like logcap.h; include it once. */
#ifndef SOUK_TEST_LOOPRUN_H
#define SOUK_TEST_LOOPRUN_H

#include "souk/loop.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef bool (*cond_cb)(void);

/* Runs the loop until cond() holds or ms pass; a referenced timer keeps
 * uv_run from returning at once while only unreferenced timers exist. */
static void looprun_tick_cb(uv_timer_t *t) { (void)t; }
static inline bool run_until(cond_cb cond, uint64_t ms) {
  uv_timer_t tick;
  uv_timer_init(souk_loop(), &tick);
  uv_timer_start(&tick, looprun_tick_cb, 5, 5);
  uint64_t end = souk_now_ms() + ms;
  while (!(cond && cond()) && souk_now_ms() < end)
    uv_run(souk_loop(), UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  return cond ? cond() : true;
}
static inline void run_for(uint64_t ms) { run_until(NULL, ms); }

#endif
