/* Config sections of operations: `ops`, `health`, `memguard`, `janitor`.
 *
 * The core lists these sections with the others; the values then feed the
 * souk__*_init() options of recovery, health, the scheduler, the memory
 * guard and the janitor (souk__ops_*_opts() convert them). */
#ifndef SOUK_OPS_OPSCONF_H
#define SOUK_OPS_OPSCONF_H

#include "souk/conf.h"

#include <stdbool.h>
#include <stdint.h>

/** Values of the `ops` section: errors, breakers, retries. */
typedef struct souk__ops_conf {
  int64_t error_history;     /* entries kept in the error ring */
  int64_t error_window_ms;   /* sliding window of the error rate */
  int64_t error_rate_warn;   /* errors per minute: health warning */
  int64_t error_rate_crit;   /* errors per minute: health critical */
  int64_t breaker_failures;  /* default breaker: failures in the window to open */
  double breaker_ratio;      /* default breaker: failure ratio to open (0: off) */
  int64_t breaker_min_calls; /* default breaker: calls before the ratio counts */
  int64_t breaker_window_ms; /* default breaker window */
  int64_t breaker_open_ms;   /* default breaker: open -> half-open */
  int64_t retry_base_ms;     /* default retry policy */
  int64_t retry_cap_ms;
  int64_t retry_max_attempts;
  uint64_t alert_channel;         /* Discord channel for error alerts; 0: none */
  int alert_min_severity;         /* souk_severity_t: alert at this or worse */
  int64_t alert_cooldown_ms;      /* per error type */
  char *alert_webhook_url;        /* Slack-compatible incoming webhook (a secret); NULL: none */
  int alert_webhook_min_severity; /* souk_severity_t: send at this or worse */
  int64_t alert_webhook_per_minute;
  int64_t alert_webhook_retries;
} souk__ops_conf_t;

/** Values of the `health` section. */
typedef struct souk__health_conf {
  int64_t report_interval_ms; /* periodic report log */
  int64_t slow_op_ms;         /* souk_perf threshold */
  int64_t memory_warn;        /* RSS bytes: warning (0: off) */
  int64_t memory_crit;        /* RSS bytes: critical (0: off) */
  int64_t task_budget_factor; /* a task running budget x this is critical */
  int64_t task_fail_crit;     /* consecutive task failures that are critical */
  int64_t gw_latency_warn_ms; /* gateway heartbeat round trip: warning */
  int64_t gw_latency_crit_ms; /* ... and critical */
} souk__health_conf_t;

/** Values of the `memguard` section. */
typedef struct souk__memguard_conf {
  bool enabled;
  int64_t soft;        /* bytes; 0: off */
  int64_t hard;        /* bytes; 0: off */
  int64_t interval_ms; /* sampling period */
  int64_t trim_cooldown_ms;
} souk__memguard_conf_t;

/** Values of the `janitor` section. */
typedef struct souk__janitor_conf {
  bool enabled;
  int64_t interval_ms; /* between runs */
  int64_t cap;         /* total bytes of all sets; 0: no cap */
  double headroom;     /* delete down to cap x headroom */
  int64_t headroom_size; /* or, when set, down to cap - this (bytes) */
  bool dry_run;
  int64_t backups_retention_ms; /* <data_dir>/backups (store backups); 0: keep */
} souk__janitor_conf_t;

extern const souk_conf_key_t souk__ops_conf_keys[];      /**< `ops` keys */
extern const souk_conf_key_t souk__health_conf_keys[];   /**< `health` keys */
extern const souk_conf_key_t souk__memguard_conf_keys[]; /**< `memguard` keys */
extern const souk_conf_key_t souk__janitor_conf_keys[];  /**< `janitor` keys */
extern souk__ops_conf_t souk__ops_conf;                   /**< live `ops` values */
extern souk__health_conf_t souk__health_conf;             /**< live `health` values */
extern souk__memguard_conf_t souk__memguard_conf;         /**< live `memguard` values */
extern souk__janitor_conf_t souk__janitor_conf;           /**< live `janitor` values */

/** The four sections, for the core's section list (ops, health, memguard,
 * janitor), data pointing at the live structs above. */
extern const souk_conf_section_t souk__ops_conf_sections[4];

#endif
