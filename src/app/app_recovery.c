/* The core's error-recovery strategies and janitor data sets.
 *
 * Alerts (src/ops/alert.c): an error at a sink's minimum severity or
 * worse becomes an alert to that sink at most once per error type per
 * ops.alerts.cooldown, so an outage does not flood anyone (the count of
 * errors left out is in the next alert and in /admin errors).  The wiring
 * adds two sinks: ops.alerts.channel on Discord (from
 * ops.alerts.min_severity; logged in the console), and with
 * ops.alerts.webhook_url set the webhook (from
 * ops.alerts.webhook_min_severity, ops/alertsink.h), which works when the
 * Discord session does not: it stays on after shutdown begins, so the
 * error that caused a shutdown reaches it.  Modules may add their own.
 *
 * Shutdown: a critical gateway error (Discord refused the session, or the
 * gateway cannot go on) shuts souk down cleanly, with exit status 3 when
 * Discord refused.  Backoff: a failed store probe makes "store" back off
 * for 30 s; writers that can wait check souk_recovery_backoff_left().
 *
 * Storage: the store's pre-migration backups in <data_dir>/backups are a
 * janitor data set with janitor.backups_retention. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "app/app.h"
#include "core/core.h"
#include "discord/commands.h"
#include "ops/alert.h"
#include "ops/alertsink.h"
#include "ops/opsconf.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/janitor.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/recovery.h"

static struct {
  bool alerts_on, shutdown_on, store_on, hook_on;
  bool quiet; /* shutdown has begun */
  void (*shutdown)(int code);
  bool backups_on;
} g;

/* Alerts to ops.alerts.channel, when there is one. */
static void discord_sink(const souk_error_event_t *ev, const char *text, void *ud) {
  uint64_t channel = souk__ops_conf.alert_channel;
  if (!channel) return;
  int rc = souk__dcmd_post_text(channel, 0, text, strlen(text));
  if (rc)
    SOUK_WARN("alert", "cannot post an alert to channel %" PRIu64 ": %s", channel,
              souk_strerror(rc));
}

/* The console has no Discord: alerts meant for the channel are logged. */
static void log_sink(const souk_error_event_t *ev, const char *text, void *ud) {
  if (souk__ops_conf.alert_channel) SOUK_WARN("alert", "%s", text);
}

/* Alerts to ops.alerts.webhook_url: queued for the sink's own delivery
 * (it drains at exit). */
static void webhook_sink(const souk_error_event_t *ev, const char *text, void *ud) {
  if (souk__alertsink_on()) souk__alertsink_post(text);
}

static void shutdown_strategy(const souk_error_event_t *ev, void *ud) {
  if (g.quiet) return;
  /* The recorder has just logged the error with its context: say only what
   * follows from it. */
  SOUK_ERROR("core", "critical %s error: shutting down", ev->type);
  if (g.shutdown) g.shutdown(ev->code);
}

/* The store probe failing marks "store" as backing off: writers that can
 * wait (usage flushes) skip their runs until it ends or the probe succeeds. */
#define STORE_BACKOFF_MS 30000

void souk__app_recovery_start(bool discord, void (*shutdown)(int code)) {
  g.quiet = false;
  g.shutdown = shutdown;
  souk_recovery_strategy_t sd = {.kind = SOUK_RECOVER_SHUTDOWN,
                                 .min_severity = SOUK_SEV_CRITICAL,
                                 .fn = shutdown_strategy};
  g.shutdown_on = souk_recovery_register("gateway", &sd) == 0;
  souk_recovery_strategy_t bo = {.kind = SOUK_RECOVER_BACKOFF,
                                 .min_severity = SOUK_SEV_HIGH,
                                 .backoff_ms = STORE_BACKOFF_MS};
  g.store_on = souk_recovery_register("store", &bo) == 0;
  g.alerts_on = souk__alerts_start() == 0;
  if (g.alerts_on)
    souk_alert_sink_add("discord", &souk__ops_conf.alert_min_severity,
                        discord ? discord_sink : log_sink, NULL);
  if (g.alerts_on && souk__ops_conf.alert_webhook_url) {
    souk__alertsink_opts_t wo = {.url = souk__ops_conf.alert_webhook_url,
                                 .per_minute = (uint32_t)souk__ops_conf.alert_webhook_per_minute,
                                 .retries = (uint32_t)souk__ops_conf.alert_webhook_retries};
    int rc = souk__alertsink_start(&wo);
    if (rc) SOUK_WARN("alert", "the alert webhook cannot start: %s", souk_strerror(rc));
    g.hook_on = rc == 0 && souk_alert_sink_add("webhook",
                                               &souk__ops_conf.alert_webhook_min_severity,
                                               webhook_sink, NULL) == 0;
  }
  const char *dir = souk__core_conf.data_dir;
  if (dir && dir[0] && souk__janitor_conf.backups_retention_ms > 0) {
    char root[1024];
    snprintf(root, sizeof root, "%s/backups", dir);
    souk_janitor_set_t set = {.name = "store.backups",
                              .root = root,
                              .retention_ms = (uint64_t)souk__janitor_conf.backups_retention_ms};
    g.backups_on = souk_janitor_register(&set) == 0;
  }
}

void souk__app_recovery_quiesce(void) {
  g.quiet = true;
  /* A post to the channel would race the REST client's drain, and the
   * error is in the log already; the webhook stays (it drains at exit).
   * This may run inside souk_error_record(), which re-reads its table
   * after every strategy. */
  if (g.alerts_on) souk_alert_sink_remove("discord");
  if (g.shutdown_on) souk_recovery_unregister("gateway", shutdown_strategy, NULL);
  g.shutdown_on = false;
}

void souk__app_recovery_stop(void) {
  if (g.shutdown_on) souk_recovery_unregister("gateway", shutdown_strategy, NULL);
  g.shutdown_on = false;
  if (g.store_on) souk_recovery_unregister("store", NULL, NULL);
  g.store_on = false;
  if (g.alerts_on) souk__alerts_stop();
  g.alerts_on = false;
  g.hook_on = false;
  /* The alert that explains a shutdown is likely still queued: give it a
   * few seconds to reach the webhook. */
  souk__alertsink_drain(5000);
  if (g.backups_on) souk_janitor_unregister("store.backups");
  g.backups_on = false;
}
