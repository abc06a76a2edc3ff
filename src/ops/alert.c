/* Alerts: the errors of the recovery system that a person should hear of,
 * rate-limited and handed to every sink (souk/recovery.h).  The Discord
 * layer is above this one, so the admin channel is a sink the program's
 * wiring adds (src/app/app_recovery.c), like a module's webhook. */
#include "ops/alert.h"

#include "ops/opsconf.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/recovery.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define ALERT_TYPES_MAX 64
#define ALERT_SINKS_MAX 8

/* When each error type was last alerted to a sink, and how many were left
 * out since. */
typedef struct sent {
  char type[48];
  uint64_t at_ms;
  uint64_t suppressed;
} sent_t;

/* A sink, with its own threshold and its own cooldown per error type: the
 * webhook may want fewer alerts than the channel, and an alert one sink
 * skipped is still news to another. */
typedef struct sink {
  char *name;
  const int *min_severity; /* NULL: ops.alerts.min_severity */
  souk_alert_sink_cb fn;   /* NULL: removed while alerting, freed after */
  void *ud;
  sent_t *sent; /* ALERT_TYPES_MAX slots */
  size_t nsent;
} sink_t;

static struct {
  bool on;         /* between souk__alerts_start and _stop */
  bool registered; /* the ALERT strategy is in the recovery system */
  sink_t sinks[ALERT_SINKS_MAX];
  size_t nsinks;
  int depth; /* alert() calls under way (a sink may record an error) */
} A;

static int sync_strategy(void);

static sent_t *sent_slot(sink_t *k, const char *type) {
  for (size_t i = 0; i < k->nsent; i++)
    if (strcmp(k->sent[i].type, type) == 0) return &k->sent[i];
  size_t i = k->nsent < ALERT_TYPES_MAX ? k->nsent++ : 0; /* reuse the oldest slot */
  memset(&k->sent[i], 0, sizeof k->sent[i]);
  snprintf(k->sent[i].type, sizeof k->sent[i].type, "%s", type);
  return &k->sent[i];
}

static void sink_free(sink_t *k) {
  souk_free(k->name);
  souk_free(k->sent);
  memset(k, 0, sizeof *k);
}

/* Drop the sinks removed while alerting, keeping the others' order. */
static void compact(void) {
  size_t n = 0;
  for (size_t i = 0; i < A.nsinks; i++) {
    if (!A.sinks[i].fn) {
      sink_free(&A.sinks[i]);
      continue;
    }
    if (n != i) A.sinks[n] = A.sinks[i];
    n++;
  }
  for (size_t i = n; i < A.nsinks; i++)
    memset(&A.sinks[i], 0, sizeof A.sinks[i]);
  A.nsinks = n;
  sync_strategy();
}

static void alert(const souk_error_event_t *ev, void *ud);

/* The strategy is registered only while some sink listens, so the
 * recorder never logs an alert that went nowhere (once the wiring removes
 * the channel's sink at shutdown, say). */
static int sync_strategy(void) {
  bool want = A.on && A.nsinks > 0;
  if (want == A.registered) return 0;
  if (!want) {
    souk_recovery_unregister("*", alert, NULL);
    A.registered = false;
    return 0;
  }
  souk_recovery_strategy_t st = {.kind = SOUK_RECOVER_ALERT,
                                 .min_severity = SOUK_SEV_LOW, /* each sink filters at run time */
                                 .fn = alert};
  int rc = souk_recovery_register("*", &st);
  A.registered = rc == 0;
  return rc;
}

static void alert_text(const souk_error_event_t *ev, uint64_t suppressed, char *text, size_t cap) {
  int n = snprintf(text, cap, "**souk %s error** `%s`: %s%s%s", souk_severity_name(ev->severity),
                   ev->type, ev->context && ev->context[0] ? ev->context : "(no detail)",
                   ev->code ? " — " : "", ev->code ? souk_strerror(ev->code) : "");
  if (suppressed && n > 0 && (size_t)n < cap)
    snprintf(text + n, cap - (size_t)n, " (+%" PRIu64 " more since the last alert)", suppressed);
}

static void alert(const souk_error_event_t *ev, void *ud) {
  const souk__ops_conf_t *c = &souk__ops_conf;
  /* The recovery system's clock, which tests drive. */
  uint64_t now = ev->at_ms;
  A.depth++;
  for (size_t i = 0; i < A.nsinks; i++) {
    sink_t *k = &A.sinks[i];
    if (!k->fn) continue;
    int min = k->min_severity ? *k->min_severity : c->alert_min_severity;
    if ((int)ev->severity < min) continue;
    sent_t *s = sent_slot(k, ev->type);
    if (s->at_ms && now - s->at_ms < (uint64_t)c->alert_cooldown_ms) {
      s->suppressed++;
      continue;
    }
    char text[512];
    alert_text(ev, s->suppressed, text, sizeof text);
    s->at_ms = now;
    s->suppressed = 0;
    k->fn(ev, text, k->ud);
  }
  if (--A.depth == 0) compact();
}

int souk__alerts_start(void) {
  A.on = true;
  return sync_strategy();
}

void souk__alerts_stop(void) {
  A.on = false;
  sync_strategy();
  for (size_t i = 0; i < A.nsinks; i++)
    sink_free(&A.sinks[i]);
  A.nsinks = 0;
}

int souk_alert_sink_add(const char *name, const int *min_severity, souk_alert_sink_cb fn,
                        void *ud) {
  if (!name || !*name || !fn) return SOUK_EINVAL;
  for (size_t i = 0; i < A.nsinks; i++)
    if (A.sinks[i].fn && strcmp(A.sinks[i].name, name) == 0) return SOUK_EEXIST;
  if (A.nsinks == ALERT_SINKS_MAX) return SOUK_EFULL;
  A.sinks[A.nsinks++] = (sink_t){.name = souk_strdup(name),
                                 .min_severity = min_severity,
                                 .fn = fn,
                                 .ud = ud,
                                 .sent = souk_calloc(ALERT_TYPES_MAX, sizeof(sent_t))};
  int rc = sync_strategy();
  if (rc) sink_free(&A.sinks[--A.nsinks]);
  return rc;
}

int souk_alert_sink_remove(const char *name) {
  for (size_t i = 0; i < A.nsinks; i++) {
    if (!A.sinks[i].fn || strcmp(A.sinks[i].name, name) != 0) continue;
    A.sinks[i].fn = NULL;
    if (A.depth == 0) compact();
    return 0;
  }
  return SOUK_ENOTFOUND;
}
