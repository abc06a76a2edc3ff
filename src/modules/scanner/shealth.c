/* The scanner's health rules (shealth.h). */
#include "shealth.h"

#include <inttypes.h>
#include <stdio.h>

void scanner_health_scan(scanner_health_t *h, uint64_t dur_ms, uint64_t now_ms) {
  h->dur[(h->dur_head + h->ndur) % SCANNER_DUR_WINDOW] = dur_ms;
  if (h->ndur < SCANNER_DUR_WINDOW)
    h->ndur++;
  else
    h->dur_head = (h->dur_head + 1) % SCANNER_DUR_WINDOW;
  h->scans++;
  h->last_ok_ms = now_ms;
}

void scanner_health_error(scanner_health_t *h, uint64_t now_ms) {
  h->err_at[(h->err_head + h->nerr) % SCANNER_ERR_KEEP] = now_ms;
  if (h->nerr < SCANNER_ERR_KEEP)
    h->nerr++;
  else
    h->err_head = (h->err_head + 1) % SCANNER_ERR_KEEP;
  h->errors++;
}

uint64_t scanner_health_avg_ms(const scanner_health_t *h) {
  if (h->ndur == 0) return 0;
  uint64_t sum = 0;
  for (size_t i = 0; i < h->ndur; i++)
    sum += h->dur[(h->dur_head + i) % SCANNER_DUR_WINDOW];
  return sum / h->ndur;
}

uint32_t scanner_health_errors(const scanner_health_t *h, uint64_t now_ms) {
  uint32_t n = 0;
  for (size_t i = 0; i < h->nerr; i++) {
    uint64_t at = h->err_at[(h->err_head + i) % SCANNER_ERR_KEEP];
    /* An error exactly 15 minutes old has left the window. */
    if (at <= now_ms && now_ms - at < SCANNER_ERR_WINDOW_MS) n++;
  }
  return n;
}

souk_health_t scanner_health_level_dur(uint64_t avg_ms) {
  if (avg_ms < SCANNER_DUR_WARN_MS) return SOUK_HEALTH_HEALTHY;
  if (avg_ms < SCANNER_DUR_CRIT_MS) return SOUK_HEALTH_WARNING;
  return SOUK_HEALTH_CRITICAL;
}

souk_health_t scanner_health_level_err(uint32_t errors) {
  if (errors < SCANNER_ERR_WARN) return SOUK_HEALTH_HEALTHY;
  if (errors < SCANNER_ERR_CRIT) return SOUK_HEALTH_WARNING;
  return SOUK_HEALTH_CRITICAL;
}

void scanner_health_eval(const scanner_health_t *h, uint64_t now_ms, bool breaker_open,
                         souk_health_result_t *out) {
  uint64_t avg = scanner_health_avg_ms(h);
  uint32_t errs = scanner_health_errors(h, now_ms);
  souk_health_t d = scanner_health_level_dur(avg), e = scanner_health_level_err(errs);
  souk_health_t lvl = d > e ? d : e;
  if (breaker_open && lvl < SOUK_HEALTH_WARNING) lvl = SOUK_HEALTH_WARNING;
  char dur[64];
  if (h->ndur)
    snprintf(dur, sizeof dur, "avg scan %" PRIu64 ".%" PRIu64 " s (last %zu)", avg / 1000,
             avg % 1000 / 100, h->ndur);
  else
    snprintf(dur, sizeof dur, "no scan yet");
  souk_health_set(out, lvl, "%s, %" PRIu32 "%s error%s in 15 min, breaker %s", dur, errs,
                  errs >= SCANNER_ERR_KEEP ? "+" : "", errs == 1 ? "" : "s",
                  breaker_open ? "OPEN" : "closed");
}
