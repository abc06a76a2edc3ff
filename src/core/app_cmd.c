/* Commands wired into the process: registering the modules' tables,
 * loading per-guild prefixes from the store, and counting every finished
 * invocation in /metrics and the usage analytics. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/app.h"
#include "core/cmdrun.h"
#include "core/core.h"
#include "ops/usage.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/metrics.h"
#include "souk/recovery.h"
#include "souk/store.h"
#include "souk/task.h"

static const char *const outcome_names[] = {"ok", "error", "refused", "late"};

static void observe(const char *path, uint64_t user, uint64_t guild, souk__cmd_outcome_t oc,
                    uint64_t latency_ms) {
  souk_metric_t *m = souk_metric_find("souk_commands_total");
  if (m) souk_counter_inc(souk_metric_series(m, SOUK_LV(path, outcome_names[oc])));
  m = souk_metric_find("souk_command_latency_seconds");
  if (m) souk_histogram_observe(souk_metric_series(m, SOUK_LV(path)), (double)latency_ms / 1e3);
  souk__usage_record(path, user, guild, oc != SOUK__CMD_OK && oc != SOUK__CMD_REFUSED,
                     oc == SOUK__CMD_REFUSED, latency_ms, souk_unix_ms());
  if (oc == SOUK__CMD_LATE)
    souk_error_record("command.late", SOUK_SEV_MEDIUM, SOUK_ETIMEDOUT, NULL,
                      "%s was answered for its handler after %" PRIu64 " ms", path, latency_ms);
}

static void collect(void *ud) {
  souk_metric_t *m = souk_metric_find("souk_commands_running");
  if (m) souk_gauge_set(souk_metric_series(m, NULL), (double)souk__cmd_running());
}

/* Every guild's own prefix, read on the worker pool (or at start). */
typedef struct gp {
  uint64_t guild;
  char prefix[SOUK_CMD_PREFIX_MAX + 1];
} gp_t;

typedef struct prefixes {
  gp_t *v;
  size_t n;
  souk_task_ctx_t *task;
} prefixes_t;

static int prefixes_fn(souk_db_t *db, void *ud) {
  prefixes_t *p = ud;
  souk_free(p->v);
  p->v = NULL;
  p->n = 0;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, "SELECT key, value FROM kv WHERE namespace = 'prefix'", &s);
  if (rc) return rc;
  size_t cap = 0;
  while ((rc = souk_stmt_step(s)) == 1) {
    const char *key = souk_stmt_column_text(s, 0, NULL);
    size_t len = 0;
    const void *v = souk_stmt_column_blob(s, 1, &len);
    if (!key || !v || len == 0 || len > SOUK_CMD_PREFIX_MAX) continue;
    if (p->n == cap) {
      cap = cap ? cap * 2 : 16;
      p->v = souk_reallocarray(p->v, cap, sizeof *p->v);
    }
    p->v[p->n].guild = strtoull(key, NULL, 10);
    memcpy(p->v[p->n].prefix, v, len);
    p->v[p->n].prefix[len] = '\0';
    p->n++;
  }
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

/* Replace this process's prefixes with what the store holds. */
static size_t prefixes_apply(const prefixes_t *p) {
  souk__cmd_prefixes_clear();
  size_t n = 0;
  for (size_t i = 0; i < p->n; i++)
    if (souk_cmd_set_prefix(p->v[i].guild, p->v[i].prefix) == 0) n++;
  return n;
}

static void prefixes_done(void *ud, int status) {
  prefixes_t *p = ud;
  if (status == 0) prefixes_apply(p);
  souk_task_done(p->task, status);
  souk_free(p->v);
  souk_free(p);
}

/* Other processes (shards) change prefixes too: the store is re-read every
 * minute, so a change reaches every process within that. */
static void prefixes_task(souk_task_ctx_t *ctx) {
  souk_store_t *st = souk_store_main();
  prefixes_t *p = souk_calloc(1, sizeof *p);
  p->task = ctx;
  if (!st || souk_store_read_async(st, prefixes_fn, prefixes_done, p) != 0) {
    souk_free(p);
    souk_task_done(ctx, st ? SOUK_EIO : 0);
  }
}

static const souk_task_t g_cmd_tasks[] = {
    {.name = "commands.prefixes", .period_ms = 60000, .jitter_ms = 5000, .budget_ms = 5000,
     .handler = prefixes_task},
    {0},
};

const souk_task_t *souk__app_cmd_tasks(void) { return g_cmd_tasks; }

int souk__app_cmd_init(void) {
  int rc = souk__cmd_register_modules(souk__modules);
  if (rc) {
    SOUK_ERROR("core", "a module's command table is invalid: %s", souk__cmd_last_error());
    return rc;
  }
  souk_store_t *st = souk_store_main();
  if (st) {
    prefixes_t p = {0};
    rc = souk_store_read(st, prefixes_fn, &p);
    if (rc) {
      SOUK_WARN("core", "cannot load per-guild prefixes: %s", souk_strerror(rc));
    } else {
      size_t n = prefixes_apply(&p);
      if (n) SOUK_INFO("core", "%zu guild(s) have their own command prefix", n);
    }
    souk_free(p.v);
  }
  souk__cmd_set_observer(observe);
  return 0;
}

void souk__app_cmd_metrics_init(void) {
  souk_counter_new("souk_commands_total", "Command invocations finished, by outcome.",
                   "command,outcome");
  static const double bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
  souk_histogram_new("souk_command_latency_seconds", "Time from invocation to answer.", "command",
                     bounds, sizeof bounds / sizeof *bounds);
  souk_gauge_new("souk_commands_running", "Invocations whose handler has not finished.", NULL);
  souk_metrics_add_collector(collect, NULL);
}

void souk__app_cmd_shutdown(void) {
  souk__cmd_release_loop();
  souk__cmd_set_observer(NULL);
  souk__cmd_clear();
}
