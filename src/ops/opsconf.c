/* The `ops`, `health`, `memguard` and `janitor` config sections. */
#include "ops/opsconf.h"

#include <stddef.h>

souk__ops_conf_t souk__ops_conf;
souk__health_conf_t souk__health_conf;
souk__memguard_conf_t souk__memguard_conf;
souk__janitor_conf_t souk__janitor_conf;

static const char *const severity_choices[] = {"low", "medium", "high", "critical", NULL};

#define K(field) offsetof(souk__ops_conf_t, field)
const souk_conf_key_t souk__ops_conf_keys[] = {
    {"errors.history", SOUK_CONF_INT, K(error_history), "256", 16, 100000, NULL, 0,
     "recorded errors kept for the admin history"},
    {"errors.window", SOUK_CONF_DURATION, K(error_window_ms), "5m", 60000, 86400000, NULL, 0,
     "sliding window of the error rate per minute"},
    {"errors.rate_warning", SOUK_CONF_INT, K(error_rate_warn), "10", 0, 1000000, NULL,
     SOUK_CONF_RUNTIME, "errors per minute at which health warns"},
    {"errors.rate_critical", SOUK_CONF_INT, K(error_rate_crit), "60", 0, 1000000, NULL,
     SOUK_CONF_RUNTIME, "errors per minute at which health is critical"},
    {"breaker.failures", SOUK_CONF_INT, K(breaker_failures), "5", 0, 1000000, NULL, 0,
     "failures within the window that open a circuit breaker (0: off)"},
    {"breaker.failure_ratio", SOUK_CONF_DOUBLE, K(breaker_ratio), "0", 0, 1, NULL, 0,
     "failure ratio within the window that opens a breaker (0: off)"},
    {"breaker.min_calls", SOUK_CONF_INT, K(breaker_min_calls), "10", 1, 1000000, NULL, 0,
     "calls within the window before the failure ratio counts"},
    {"breaker.window", SOUK_CONF_DURATION, K(breaker_window_ms), "60s", 1000, 86400000, NULL, 0,
     "sliding window in which breaker failures are counted"},
    {"breaker.open_timeout", SOUK_CONF_DURATION, K(breaker_open_ms), "30s", 100, 86400000, NULL, 0,
     "how long an open breaker fails fast before letting one probe through"},
    {"retry.base", SOUK_CONF_DURATION, K(retry_base_ms), "500ms", 1, 3600000, NULL, 0,
     "first retry's delay ceiling (doubles each attempt, full jitter)"},
    {"retry.cap", SOUK_CONF_DURATION, K(retry_cap_ms), "60s", 1, 86400000, NULL, 0,
     "largest retry delay"},
    {"alerts.channel", SOUK_CONF_SNOWFLAKE, K(alert_channel), NULL, 0, 0, NULL, SOUK_CONF_RUNTIME,
     "Discord channel that gets a message when an error at alerts.min_severity is recorded"},
    {"alerts.min_severity", SOUK_CONF_ENUM, K(alert_min_severity), "high", 0, 0, severity_choices,
     SOUK_CONF_RUNTIME, "least severe error that is posted to alerts.channel"},
    {"alerts.cooldown", SOUK_CONF_DURATION, K(alert_cooldown_ms), "10m", 0, 86400000, NULL,
     SOUK_CONF_RUNTIME, "at most one alert per error type in this time"},
    {"alerts.webhook_url", SOUK_CONF_URL, K(alert_webhook_url), NULL, 0, 0, NULL, SOUK_CONF_SECRET,
     "incoming webhook that also gets every alert, even when Discord is the trouble: Slack's "
     "JSON, so a Slack URL or a Discord webhook URL ending in /slack; set "
     "SOUK_OPS_ALERTS_WEBHOOK_URL in the environment"},
    {"alerts.webhook_min_severity", SOUK_CONF_ENUM, K(alert_webhook_min_severity), "high", 0, 0,
     severity_choices, SOUK_CONF_RUNTIME, "least severe error that is sent to alerts.webhook_url"},
    {"alerts.webhook_per_minute", SOUK_CONF_INT, K(alert_webhook_per_minute), "10", 1, 60, NULL, 0,
     "most alerts sent to the webhook in any minute (and one a second); more wait in a queue of "
     "32"},
    {"alerts.webhook_retries", SOUK_CONF_INT, K(alert_webhook_retries), "3", 0, 10, NULL, 0,
     "retries of an alert the webhook answered with 429 or a 5xx, or did not answer"},
    {"retry.max_attempts", SOUK_CONF_INT, K(retry_max_attempts), "5", 0, 1000, NULL, 0,
     "retries before giving up"},
    {0},
};
#undef K

#define K(field) offsetof(souk__health_conf_t, field)
const souk_conf_key_t souk__health_conf_keys[] = {
    {"report_interval", SOUK_CONF_DURATION, K(report_interval_ms), "15m", 1000, 604800000, NULL, 0,
     "how often the health report is logged"},
    {"slow_op", SOUK_CONF_DURATION, K(slow_op_ms), "1s", 1, 3600000, NULL, SOUK_CONF_RUNTIME,
     "operations at least this slow are logged with name and duration"},
    {"memory.warning", SOUK_CONF_SIZE, K(memory_warn), "384MB", 0, 0, NULL, SOUK_CONF_RUNTIME,
     "resident memory at which health warns (0: off)"},
    {"memory.critical", SOUK_CONF_SIZE, K(memory_crit), "480MB", 0, 0, NULL, SOUK_CONF_RUNTIME,
     "resident memory at which health is critical (0: off)"},
    {"tasks.budget_factor", SOUK_CONF_INT, K(task_budget_factor), "3", 1, 1000, NULL, 0,
     "a task running longer than its budget times this is critical (over budget warns)"},
    {"tasks.failures_critical", SOUK_CONF_INT, K(task_fail_crit), "5", 1, 1000, NULL, 0,
     "consecutive failures of one task that make health critical (one warns)"},
    {"gateway.latency_warning", SOUK_CONF_DURATION, K(gw_latency_warn_ms), "1s", 1, 600000, NULL,
     SOUK_CONF_RUNTIME, "gateway heartbeat round trip at which health warns"},
    {"gateway.latency_critical", SOUK_CONF_DURATION, K(gw_latency_crit_ms), "5s", 1, 600000, NULL,
     SOUK_CONF_RUNTIME, "gateway heartbeat round trip at which health is critical"},
    {0},
};
#undef K

#define K(field) offsetof(souk__memguard_conf_t, field)
const souk_conf_key_t souk__memguard_conf_keys[] = {
    {"enabled", SOUK_CONF_BOOL, K(enabled), "true", 0, 0, NULL, 0,
     "sample resident memory and shed heavy work above the limits"},
    {"soft_limit", SOUK_CONF_SIZE, K(soft), "320MB", 0, 0, NULL, SOUK_CONF_RUNTIME,
     "above this, heavy tasks are skipped or shrunk (0: off)"},
    {"hard_limit", SOUK_CONF_SIZE, K(hard), "420MB", 0, 0, NULL, SOUK_CONF_RUNTIME,
     "above this, caches are trimmed too (0: off)"},
    {"interval", SOUK_CONF_DURATION, K(interval_ms), "10s", 100, 3600000, NULL, 0,
     "how often resident memory is sampled"},
    {"trim_cooldown", SOUK_CONF_DURATION, K(trim_cooldown_ms), "60s", 0, 86400000, NULL, 0,
     "least time between two cache trims"},
    {0},
};
#undef K

#define K(field) offsetof(souk__janitor_conf_t, field)
const souk_conf_key_t souk__janitor_conf_keys[] = {
    {"enabled", SOUK_CONF_BOOL, K(enabled), "true", 0, 0, NULL, 0,
     "apply retention and the disk cap to registered data sets"},
    {"interval", SOUK_CONF_DURATION, K(interval_ms), "4h", 60000, 604800000, NULL, 0,
     "time between janitor runs"},
    {"cap", SOUK_CONF_SIZE, K(cap), "0", 0, 0, NULL, SOUK_CONF_RUNTIME,
     "total size of all data sets; above it the oldest partitions go (0: no cap)"},
    {"headroom", SOUK_CONF_DOUBLE, K(headroom), "0.9", 0, 1, NULL, SOUK_CONF_RUNTIME,
     "when over the cap, delete down to cap times this"},
    {"headroom_size", SOUK_CONF_SIZE, K(headroom_size), "0", 0, 0, NULL, SOUK_CONF_RUNTIME,
     "when set, delete down to cap minus this instead (janitor.headroom is then unused)"},
    {"dry_run", SOUK_CONF_BOOL, K(dry_run), "false", 0, 0, NULL, SOUK_CONF_RUNTIME,
     "report what would be deleted without deleting"},
    {"backups_retention", SOUK_CONF_DURATION, K(backups_retention_ms), "30d", 0, 0, NULL, 0,
     "store backups in <data_dir>/backups older than this are deleted (0: keep them)"},
    {0},
};
#undef K

const souk_conf_section_t souk__ops_conf_sections[4] = {
    {"ops", souk__ops_conf_keys, &souk__ops_conf, NULL},
    {"health", souk__health_conf_keys, &souk__health_conf, NULL},
    {"memguard", souk__memguard_conf_keys, &souk__memguard_conf, NULL},
    {"janitor", souk__janitor_conf_keys, &souk__janitor_conf, NULL},
};
