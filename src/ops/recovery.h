/* Core side of error recovery (include/souk/recovery.h is what modules see).
 *
 * The error history and strategy table are process-wide; the core calls
 * souk__recovery_init() once at start (tests call it per test with a fake
 * clock) and souk__recovery_shutdown() at exit. */
#ifndef SOUK_OPS_RECOVERY_H
#define SOUK_OPS_RECOVERY_H

#include "souk/buf.h"
#include "souk/loop.h"
#include "souk/recovery.h"

#include <stddef.h>
#include <stdint.h>

/** Settings of the error recorder. */
typedef struct souk__recovery_opts {
  const souk_clock_t *clock; /* NULL: monotonic; must outlive the recorder */
  const souk_rand_t *rand;   /* NULL: souk_rand01; for RETRY delays */
  size_t history;            /* ring size (0: 256) */
  uint64_t window_ms;        /* rate window (0: 5 minutes) */
} souk__recovery_opts_t;

/** (Re)initialise the recorder: forgets history, stats and strategies.
 * opts may be NULL for defaults. */
void souk__recovery_init(const souk__recovery_opts_t *opts);
/** Free everything the recorder holds. */
void souk__recovery_shutdown(void);
struct souk_health_result;
/** Health check "breakers": WARNING while any breaker is open or half-open
 * (naming them), HEALTHY otherwise. */
void souk__breakers_health_check(void *ud, struct souk_health_result *out);
/** Append a readable summary (totals, rate, top types, breakers). */
void souk__recovery_report(souk_buf_t *out);

#endif
