/* The scanner's health, as the issue states it:
 *
 *   scan duration, the average of the last 10 scans:
 *     HEALTHY under 30 s, WARNING under 90 s, CRITICAL at 90 s or more;
 *   errors counted over the last 15 minutes:
 *     HEALTHY under 5, WARNING from 5 to 10, CRITICAL above 10;
 *
 * the status is the worse of the two, and an open circuit breaker makes it
 * at least WARNING (the detail says so).  Time comes from the caller (an
 * injected clock), so tests move it without sleeping.
 *
 * Pure: no I/O, no global state. */
#ifndef SOUK_SCANNER_SHEALTH_H
#define SOUK_SCANNER_SHEALTH_H

#include "souk/health.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Scans in the duration average. */
#define SCANNER_DUR_WINDOW 10
/** The error window. */
#define SCANNER_ERR_WINDOW_MS (15u * 60u * 1000u)
/** Error timestamps kept; more errors than this in the window count as this. */
#define SCANNER_ERR_KEEP 64

/** Thresholds (milliseconds and error counts). */
#define SCANNER_DUR_WARN_MS 30000u
#define SCANNER_DUR_CRIT_MS 90000u
#define SCANNER_ERR_WARN    5u  /* 5..10 is WARNING */
#define SCANNER_ERR_CRIT    11u /* above 10 is CRITICAL */

/** Health state.  Zero-initialise. */
typedef struct scanner_health {
  uint64_t dur[SCANNER_DUR_WINDOW]; /* ring of the last durations, ms */
  size_t ndur, dur_head;
  uint64_t err_at[SCANNER_ERR_KEEP]; /* ring of error times, ms */
  size_t nerr, err_head;
  uint64_t scans, errors; /* totals */
  uint64_t last_ok_ms;    /* clock time of the last good scan; 0 never */
} scanner_health_t;

/** Record a finished scan of dur_ms. */
void scanner_health_scan(scanner_health_t *h, uint64_t dur_ms, uint64_t now_ms);
/** Record an error at now_ms. */
void scanner_health_error(scanner_health_t *h, uint64_t now_ms);
/** Average of the last (up to 10) scan durations, ms; 0 without scans. */
uint64_t scanner_health_avg_ms(const scanner_health_t *h);
/** Errors within the 15 minutes up to now_ms. */
uint32_t scanner_health_errors(const scanner_health_t *h, uint64_t now_ms);
/** Level of an average duration alone. */
souk_health_t scanner_health_level_dur(uint64_t avg_ms);
/** Level of an error count alone. */
souk_health_t scanner_health_level_err(uint32_t errors);
/** The status now: fills out (status and a one-line detail such as
 * "avg scan 1.2 s (10 scans), 0 errors in 15 min, breaker closed"). */
void scanner_health_eval(const scanner_health_t *h, uint64_t now_ms, bool breaker_open,
                         souk_health_result_t *out);

#endif
