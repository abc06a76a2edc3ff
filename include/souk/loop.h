/* The event loop, clocks and the worker pool.
 *
 * One libuv loop thread owns all sockets, timers and in-memory state.  Work
 * that can block runs on libuv's thread pool through souk_work_submit() and
 * hands its result back to the loop thread. */
#ifndef SOUK_LOOP_H
#define SOUK_LOOP_H

#include <stdint.h>
#include <uv.h>

/** The process's loop (created on first use; owned by the core). */
uv_loop_t *souk_loop(void);
/** Close every remaining handle and free the loop; for shutdown and tests. */
void souk_loop_close(void);

/** Monotonic milliseconds, for timers and durations. */
uint64_t souk_now_ms(void);
/** UTC Unix milliseconds, for stored timestamps. */
uint64_t souk_unix_ms(void);

/** An injectable clock: unit tests pass their own to timing logic. */
typedef struct souk_clock {
  uint64_t (*now_ms)(void *ud);
  void *ud;
} souk_clock_t;
/** The real monotonic clock. */
extern const souk_clock_t souk_clock_mono;

/** Schedule clocks: souk_now_ms() and souk_unix_ms() plus an offset that
 * an integration test may move, for module schedules that run over
 * minutes, hours or days (heartbeats, rename windows, daily summaries).
 * The offset is 0 unless the environment variable SOUK_TEST_CLOCK_FILE
 * names a file; its first line is then the offset in milliseconds,
 * re-read whenever the file changes (tests only: never set it in
 * production).  The offset never goes back: a smaller value is ignored, so
 * the monotonic form stays monotonic.  Timers still run on real time, so a
 * module that uses these polls them on a short real-time tick.  Loop
 * thread only. */
uint64_t souk_sched_now_ms(void);
/** UTC Unix milliseconds plus the test offset (see souk_sched_now_ms). */
uint64_t souk_sched_unix_ms(void);
/** souk_sched_now_ms() and souk_sched_unix_ms() as injectable clocks. */
extern const souk_clock_t souk_clock_sched, souk_clock_sched_wall;

/** Blocking work run on a pool thread; must not touch loop-owned state. */
typedef void (*souk_work_cb)(void *ud);
/** Completion run on the loop thread; status is 0 or SOUK_ECANCELED. */
typedef void (*souk_done_cb)(void *ud, int status);
/** Run work(ud) on the thread pool, then done(ud, status) on the loop.
 * Returns 0 (done will be called exactly once) or SOUK_E* (never called). */
int souk_work_submit(souk_work_cb work, souk_done_cb done, void *ud);
/** Number of submitted jobs whose done has not run yet. */
unsigned souk_work_pending(void);

/** A timer on souk_loop() of its own allocation: cb(timer) runs every
 * period_ms (> 0; the first time after period_ms), with timer->data =
 * data.  With unref, the timer does not keep the loop alive
 * on its own.  Returns the timer, or NULL when libuv refused it.  Free
 * with souk_timer_free(). */
uv_timer_t *souk_timer_every(uint64_t period_ms, uv_timer_cb cb, void *data, int unref);
/** Stop and close *t, made with souk_timer_every() or souk_malloc() +
 * uv_timer_init(): its memory is freed once the loop has closed it (run
 * the loop, or souk_loop_close()), and *t becomes NULL at once.  NULL or
 * *t NULL is fine. */
void souk_timer_free(uv_timer_t **t);

/** Random 64-bit value from a per-process generator (not for secrets). */
uint64_t souk_rand64(void);
/** Uniform random double in [0, 1). */
double souk_rand01(void);

#endif
