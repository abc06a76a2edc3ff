/* The core's error-recovery strategies and janitor data sets.
 *
 * Alerts: with ops.alerts.channel set, an error at ops.alerts.min_severity
 * or worse is posted to that Discord channel, at most once per error type
 * per ops.alerts.cooldown, so an outage does not flood the channel (the
 * count of errors left out is in the next alert and in /admin errors).
 * With ops.alerts.webhook_url set, the same alerts (from
 * ops.alerts.webhook_min_severity) also go to that webhook (ops/alertsink.h),
 * which works when the Discord session does not: its strategy stays on
 * after shutdown begins, so the error that caused a shutdown reaches it.
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
#include "ops/alertsink.h"
#include "ops/opsconf.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/janitor.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/recovery.h"

#define ALERT_TYPES_MAX 64

typedef struct sent {
  char type[48];
  uint64_t at_ms;
  uint64_t suppressed;
  uint64_t hook_at_ms; /* the webhook's own cooldown */
  uint64_t hook_suppressed;
} sent_t;

static struct {
  bool alerts_on, discord, shutdown_on, store_on, hook_on;
  bool quiet; /* shutdown has begun */
  void (*shutdown)(int code);
  sent_t sent[ALERT_TYPES_MAX];
  size_t nsent;
  bool backups_on;
} g;

static sent_t *sent_slot(const char *type) {
  for (size_t i = 0; i < g.nsent; i++)
    if (strcmp(g.sent[i].type, type) == 0) return &g.sent[i];
  size_t i = g.nsent < ALERT_TYPES_MAX ? g.nsent++ : 0; /* reuse the oldest slot */
  memset(&g.sent[i], 0, sizeof g.sent[i]);
  snprintf(g.sent[i].type, sizeof g.sent[i].type, "%s", type);
  return &g.sent[i];
}

/* The alert text: "**souk high error** `type`: context — reason (+N more
 * since the last alert)". */
static void alert_text(const souk_error_event_t *ev, uint64_t suppressed, char *text, size_t cap) {
  int n = snprintf(text, cap, "**souk %s error** `%s`: %s%s%s", souk_severity_name(ev->severity),
                   ev->type, ev->context && ev->context[0] ? ev->context : "(no detail)",
                   ev->code ? " — " : "", ev->code ? souk_strerror(ev->code) : "");
  if (suppressed && n > 0 && (size_t)n < cap)
    snprintf(text + n, cap - (size_t)n, " (+%" PRIu64 " more since the last alert)", suppressed);
}

static void alert(const souk_error_event_t *ev, void *ud) {
  const souk__ops_conf_t *c = &souk__ops_conf;
  /* Once shutdown has begun a post would race the REST client's drain,
   * and the error is in the log already. */
  if (g.quiet) return;
  if (!c->alert_channel || (int)ev->severity < c->alert_min_severity) return;
  uint64_t now = souk_now_ms();
  sent_t *s = sent_slot(ev->type);
  if (s->at_ms && now - s->at_ms < (uint64_t)c->alert_cooldown_ms) {
    s->suppressed++;
    return;
  }
  char text[512];
  alert_text(ev, s->suppressed, text, sizeof text);
  s->at_ms = now;
  s->suppressed = 0;
  if (!g.discord) {
    SOUK_WARN("alert", "%s", text);
    return;
  }
  int rc = souk__dcmd_post_text(c->alert_channel, 0, text, strlen(text));
  if (rc) SOUK_WARN("alert", "cannot post an alert to channel %" PRIu64 ": %s", c->alert_channel,
                    souk_strerror(rc));
}

/* The webhook's ALERT strategy, registered apart from the channel's: it
 * runs while shutting down too (the webhook drains at exit), and has its
 * own cooldown per type. */
static void hook_alert(const souk_error_event_t *ev, void *ud) {
  const souk__ops_conf_t *c = &souk__ops_conf;
  if (!souk__alertsink_on() || (int)ev->severity < c->alert_webhook_min_severity) return;
  uint64_t now = souk_now_ms();
  sent_t *s = sent_slot(ev->type);
  if (s->hook_at_ms && now - s->hook_at_ms < (uint64_t)c->alert_cooldown_ms) {
    s->hook_suppressed++;
    return;
  }
  char text[512];
  alert_text(ev, s->hook_suppressed, text, sizeof text);
  s->hook_at_ms = now;
  s->hook_suppressed = 0;
  souk__alertsink_post(text);
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
  g.discord = discord;
  g.quiet = false;
  g.nsent = 0;
  g.shutdown = shutdown;
  souk_recovery_strategy_t sd = {.kind = SOUK_RECOVER_SHUTDOWN,
                                 .min_severity = SOUK_SEV_CRITICAL,
                                 .fn = shutdown_strategy};
  g.shutdown_on = souk_recovery_register("gateway", &sd) == 0;
  souk_recovery_strategy_t bo = {.kind = SOUK_RECOVER_BACKOFF,
                                 .min_severity = SOUK_SEV_HIGH,
                                 .backoff_ms = STORE_BACKOFF_MS};
  g.store_on = souk_recovery_register("store", &bo) == 0;
  souk_recovery_strategy_t s = {.kind = SOUK_RECOVER_ALERT,
                                .min_severity = SOUK_SEV_LOW, /* filtered in alert() at run time */
                                .fn = alert};
  g.alerts_on = souk_recovery_register("*", &s) == 0;
  if (souk__ops_conf.alert_webhook_url) {
    souk__alertsink_opts_t wo = {.url = souk__ops_conf.alert_webhook_url,
                                 .per_minute = (uint32_t)souk__ops_conf.alert_webhook_per_minute,
                                 .retries = (uint32_t)souk__ops_conf.alert_webhook_retries};
    int rc = souk__alertsink_start(&wo);
    if (rc) SOUK_WARN("alert", "the alert webhook cannot start: %s", souk_strerror(rc));
    souk_recovery_strategy_t h = {.kind = SOUK_RECOVER_ALERT,
                                  .min_severity = SOUK_SEV_LOW, /* filtered in hook_alert() */
                                  .fn = hook_alert};
    g.hook_on = rc == 0 && souk_recovery_register("*", &h) == 0;
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
  /* Unregistered rather than only silenced, so the recorder does not log
   * them as acting either.  This may run inside souk_error_record(), which
   * re-reads its table after every strategy. */
  if (g.alerts_on) souk_recovery_unregister("*", alert, NULL);
  g.alerts_on = false;
  if (g.shutdown_on) souk_recovery_unregister("gateway", shutdown_strategy, NULL);
  g.shutdown_on = false;
}

void souk__app_recovery_stop(void) {
  if (g.shutdown_on) souk_recovery_unregister("gateway", shutdown_strategy, NULL);
  g.shutdown_on = false;
  if (g.store_on) souk_recovery_unregister("store", NULL, NULL);
  g.store_on = false;
  if (g.alerts_on) souk_recovery_unregister("*", alert, NULL);
  g.alerts_on = false;
  if (g.hook_on) souk_recovery_unregister("*", hook_alert, NULL);
  g.hook_on = false;
  /* The alert that explains a shutdown is likely still queued: give it a
   * few seconds to reach the webhook. */
  souk__alertsink_drain(5000);
  if (g.backups_on) souk_janitor_unregister("store.backups");
  g.backups_on = false;
}
