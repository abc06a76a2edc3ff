/* Usage analytics: command executions per command, user and guild, per
 * hour and per day, with errors, refusals and latency, kept in memory and
 * added to the store's `usage` table every usage.flush_every (5 minutes)
 * and at shutdown.
 *
 * A flush moves the pending counts out of the live table, adds them on a
 * worker thread in one transaction (upserts that add, under an idempotency
 * key so a commit whose outcome was lost is not added twice), and puts
 * them back into the live table when the transaction fails, so nothing is
 * lost while the store is down.  Old rows are deleted after
 * usage.hourly_retention and usage.daily_retention.
 *
 * Loop thread only, except the transaction itself. */
#ifndef SOUK_OPS_USAGE_H
#define SOUK_OPS_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "souk/buf.h"
#include "souk/conf.h"
#include "souk/store.h"
#include "souk/task.h"

/** The `usage` config section. */
typedef struct souk__usage_conf {
  bool enabled;
  int64_t flush_every_ms;
  int64_t hourly_retention_ms;
  int64_t daily_retention_ms;
  int64_t max_rows; /* pending rows in memory before new keys are folded */
} souk__usage_conf_t;
extern const souk_conf_key_t souk__usage_conf_keys[];
extern souk__usage_conf_t souk__usage_conf;

/** Count one finished invocation at unix_ms.  error: the handler failed or
 * was late; refused: a check or the parser refused it. */
void souk__usage_record(const char *command, uint64_t user_id, uint64_t guild_id, bool error,
                        bool refused, uint64_t latency_ms, uint64_t unix_ms);
/** Pending rows not yet in the store. */
size_t souk__usage_pending(void);
/** Start flushing into st (may be NULL: counts stay in memory). */
void souk__usage_start(souk_store_t *st);
/** Flush now, blocking (shutdown, tests): 0 or the store's error; the
 * counts stay pending on failure. */
int souk__usage_flush_sync(void);
/** The flush task (period usage.flush_every). */
const souk_task_t *souk__usage_tasks(void);
/** Forget everything pending; stop. */
void souk__usage_stop(void);

/** Append a readable report of usage since since_ms (unix ms) from the
 * store: the top commands with calls, error rate and average latency.
 * 0 or SOUK_E*. */
int souk__usage_report(souk_store_t *st, uint64_t since_ms, size_t top, souk_buf_t *out);

#endif
