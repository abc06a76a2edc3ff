/* The scanner's engine: where contracts come from (KuCoin over HTTP, an
 * in-process simulated market, or a recorded file), one scan at a time on
 * a schedule, the ranking of the last good scan, and everything that can
 * go wrong on the way, with KuCoin's limits obeyed exactly:
 *
 * - The public pool: the gw-ratelimit-limit / -remaining / -reset headers
 *   of every answer are remembered, and a scan waits for the reset rather
 *   than send a request the pool has no room for.
 * - HTTP 429 or code 429000: error type "scanner.ratelimit" (medium); its
 *   BACKOFF strategy gives the base wait, doubled for each 429 in a row up
 *   to backoff_max, and never shorter than the announced reset.
 * - Timeouts, connection failures and 5xx: "scanner.network" (medium); its
 *   RETRY strategy schedules a few quick retries before the next period.
 * - An error code with HTTP 200, or a body that is not the documented
 *   shape: "scanner.api" (high); its RESET strategy forgets what the
 *   scanner learnt about the pool and the 429 streak.
 * - A circuit breaker ("scanner.kucoin") counts failures (not 429s, which
 *   show KuCoin is up); when it opens, "scanner.breaker" (high) is
 *   recorded once and scans are skipped until it lets a probe through.
 * Every error also goes through the core's "*" strategies (the alert to the
 * alerts channel and the webhook).  The scanner never shuts souk down.
 *
 * Durations and schedules run on an injectable clock (the schedule clock in
 * souk, a fake one in tests).  Parsing and ranking run on the worker pool.
 * Loop thread only. */
#ifndef SOUK_SCANNER_SCAN_H
#define SOUK_SCANNER_SCAN_H

#include "kucoin.h"
#include "score.h"
#include "shealth.h"
#include "souk/http.h"
#include "souk/loop.h"
#include "souk/recovery.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Where contracts come from. */
typedef enum scanner_source {
  SCANNER_SRC_KUCOIN, /* GET base_url/api/v1/contracts/active */
  SCANNER_SRC_SIM,    /* in-process simulated contracts, no network */
  SCANNER_SRC_FILE,   /* a recorded contracts/active answer, read at start */
} scanner_source_t;

/** Settings.  Strings are copied. */
typedef struct scan_conf {
  scanner_source_t source;
  const char *base_url; /* KuCoin Futures; NULL: https://api-futures.kucoin.com */
  const char *file;     /* SCANNER_SRC_FILE */
  uint64_t sim_seed;    /* SCANNER_SRC_SIM */
  uint64_t period_ms;   /* between scan starts */
  uint32_t timeout_ms;  /* one request */
  uint64_t backoff_max_ms;
  scanner_filter_t filter;
  scanner_weights_t weights;
  souk_breaker_opts_t breaker;
  const souk_clock_t *clock; /* NULL: souk's schedule clock */
  const char *user_agent;
  bool register_strategies; /* register the recovery strategies above */
  /** The HTTP client (souk/http.h semantics); NULL: souk_http_request and
   * souk_http_cancel. */
  int (*http_request)(const souk_http_opts_t *o, souk_http_cb cb, void *ud,
                      souk_http_req_t **out_opt);
  void (*http_cancel)(souk_http_req_t *req);
} scan_conf_t;

/** Defaults: KuCoin, 60 s period, 60 s timeout, backoff up to 5 minutes,
 * quote USDT, weights 0.4 / 0.3 / 0.15 / 0.15, breaker 5 failures in 10
 * minutes open for 2 minutes. */
void scan_conf_defaults(scan_conf_t *c);

/** What a scan did; valid during the callback. */
typedef struct scan_report {
  int err;                        /* 0, or SOUK_E* of the failure */
  const char *reason;             /* "", or why */
  const scanner_ranked_t *ranked; /* err == 0: best first */
  size_t n;
  uint64_t duration_ms;
  uint64_t scan_no; /* good scans so far, this one included */
} scan_report_t;

/** Called after every scan attempt that sent a request (or read the
 * simulated or recorded source). */
typedef void (*scan_done_cb)(const scan_report_t *r, void *ud);

/** The engine (opaque). */
typedef struct scan scan_t;

/** Create the engine; nothing runs until scan_tick() or scan_now().
 * Returns 0, SOUK_EINVAL (bad weights or URL) or SOUK_ENOTFOUND / SOUK_EIO
 * (the recorded file cannot be read). */
int scan_new(const scan_conf_t *c, scan_done_cb cb, void *ud, scan_t **out);
/** Stop: cancel a request in flight (its report is not delivered), wait
 * for nothing, free.  NULL is fine.  Run the loop afterwards so handles
 * close. */
void scan_free(scan_t *s);

/** Start a scan when one is due by the clock and none is running.
 * Returns true when one started. */
bool scan_tick(scan_t *s);
/** Start a scan now if none is running, ignoring the period (but not the
 * pool, the backoff or the breaker).  Returns 0, SOUK_EBUSY (one is
 * running) or SOUK_ERATELIMIT (backing off / pool empty / breaker open:
 * *wait_ms says for how long, may be NULL). */
int scan_now(scan_t *s, uint64_t *wait_ms);

/** The last good ranking (best first) and when it was made (unix ms of
 * the schedule clock's wall form, 0 never).  Valid until the next scan
 * finishes. */
const scanner_ranked_t *scan_ranked(const scan_t *s, size_t *n, uint64_t *at_unix_ms);
/** Health now (souk/health.h levels, the thresholds). */
void scan_health(scan_t *s, souk_health_result_t *out);

/** Where this engine's contracts come from. */
scanner_source_t scan_source(const scan_t *s);

/** Counters for /metrics and /scan status. */
typedef struct scan_stats {
  uint64_t scans_ok, requests, errors, rate_limited, network, api, skipped_breaker, skipped_backoff,
      pool_waits;
  uint64_t avg_duration_ms, last_duration_ms;
  uint32_t errors_15m;
  int64_t pool_remaining, pool_limit; /* -1 unknown */
  uint64_t backoff_left_ms;
  uint64_t next_in_ms;
  bool running;
  souk_breaker_state_t breaker;
  const char *last_error; /* "" none */
  scanner_source_t source;
} scan_stats_t;

/** Counters now. */
void scan_get_stats(scan_t *s, scan_stats_t *out);

/** "kucoin", "sim", "file". */
const char *scanner_source_name(scanner_source_t s);

#endif
