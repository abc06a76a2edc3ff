/* Usage analytics as modules read them: a report of command usage from the
 * store (see src/ops/usage.h for how it is collected). */
#ifndef SOUK_USAGE_H
#define SOUK_USAGE_H

#include <stddef.h>
#include <stdint.h>

/** Called on the loop thread with the report text (valid during the call)
 * or an error (status SOUK_E*, text NULL). */
typedef void (*souk_usage_report_cb)(void *ud, int status, const char *text);

/** Build a readable report of the top commands used since since_unix_ms
 * (calls, error rate, refusals, latency, distinct users), counting what is
 * still pending in memory too, on the worker pool.  Returns 0 (cb is
 * called once) or SOUK_E* (no store: cb is never called). */
int souk_usage_report(uint64_t since_unix_ms, size_t top, souk_usage_report_cb cb, void *ud);

/** Most commands and days a guild report holds. */
#define SOUK_USAGE_TOP_MAX  10
#define SOUK_USAGE_DAYS_MAX 31

/** One guild's command usage (souk_usage_guild). */
typedef struct souk_usage_guild {
  uint64_t calls, errors; /* since since_unix_ms */
  uint64_t users;         /* distinct users since since_unix_ms */
  struct {
    char command[64];
    uint64_t calls;
  } top[SOUK_USAGE_TOP_MAX]; /* most used first; ties by name */
  size_t ntop;
  struct {
    uint64_t day_ms; /* start of the UTC day */
    uint64_t calls, users;
  } days[SOUK_USAGE_DAYS_MAX]; /* oldest first; days without calls are left out */
  size_t ndays;
} souk_usage_guild_t;

/** Called on the loop thread with one guild's usage (valid during the
 * call), or an error (status SOUK_E*, u NULL). */
typedef void (*souk_usage_guild_cb)(void *ud, int status, const souk_usage_guild_t *u);

/** One guild's usage since since_unix_ms (from the start of the hour that
 * holds it: rows are hourly): calls, errors and distinct users over hourly
 * rows, the top commands, and calls and users per UTC day
 * (daily rows; at most the last 31 days).  Counts still in memory are
 * saved first, so the report is current.  Returns 0 (cb is called once,
 * later) or SOUK_E* (no store: cb is never called). */
int souk_usage_guild(uint64_t guild_id, uint64_t since_unix_ms, souk_usage_guild_cb cb, void *ud);

#endif
