/* The alert webhook: every alert of the recovery system (the ALERT
 * strategy), also sent to an incoming webhook outside Discord, so an
 * operator hears that souk is in trouble even when its Discord session is
 * the trouble.
 *
 * The body is Slack's incoming-webhook JSON, {"text": "..."}, which Slack
 * and Mattermost take, and so does a Discord webhook URL with /slack at the
 * end.  Delivery goes through souk's HTTP client (curl), never through the
 * Discord REST client or its limiter.
 *
 * Limits: at most per_minute deliveries in any 60 s and one a second
 * (Slack allows about one a second per webhook, Discord 30 a minute);
 * alerts beyond that wait in a bounded queue (32) whose oldest entries are
 * dropped and counted, the count added to the next delivery.  A 429 waits
 * for Retry-After; a 5xx, timeout or connection failure is retried with a
 * doubling delay up to `retries` times; any other 4xx is not retried.
 *
 * The URL is a secret (it holds the webhook's token): it is registered with
 * the logger's redaction and never printed; logs name "the alert webhook".
 *
 * Loop thread only. */
#ifndef SOUK_OPS_ALERTSINK_H
#define SOUK_OPS_ALERTSINK_H

#include "souk/loop.h"

#include <stdbool.h>
#include <stdint.h>

/** Settings (the URL is copied). */
typedef struct souk__alertsink_opts {
  const char *url;           /* http(s)://...; required */
  uint32_t per_minute;       /* 0: 10 */
  uint32_t retries;          /* retries of one delivery after a 5xx or network error */
  uint32_t timeout_ms;       /* one request; 0: 10 s */
  uint64_t retry_base_ms;    /* first retry delay; 0: 1 s */
  const souk_clock_t *clock; /* for pacing; NULL: monotonic */
} souk__alertsink_opts_t;

/** Start the sink (stopping a previous one).  Returns 0, or SOUK_EINVAL
 * for a URL that is not http(s), or the HTTP client's error. */
int souk__alertsink_start(const souk__alertsink_opts_t *o);
/** Stop: cancel the delivery in flight, drop the queue.  Safe when not
 * started. */
void souk__alertsink_stop(void);
/** Stop at exit without losing the last alerts: deliver what is queued
 * (the alert that explains the exit is usually among them), then stop, or
 * stop after max_ms.  The request and timer keep the loop running until
 * then.  New alerts are refused meanwhile. */
void souk__alertsink_drain(uint64_t max_ms);
/** True while started (and not draining). */
bool souk__alertsink_on(void);
/** Queue one alert's text (copied).  Returns 0, or SOUK_ENOTSUP when the
 * sink is not started.  Never blocks; a full queue drops its oldest. */
int souk__alertsink_post(const char *text);

/** Counters. */
typedef struct souk__alertsink_stats {
  uint64_t delivered, failed, dropped, retries;
  uint32_t queued;
  bool in_flight;
} souk__alertsink_stats_t;
/** Counters now. */
void souk__alertsink_stats(souk__alertsink_stats_t *out);

#endif
