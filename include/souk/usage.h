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

#endif
