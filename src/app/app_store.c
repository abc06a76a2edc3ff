/* The process's store: opened at start for `run` and `console`, probed in
 * the background for health and readiness, closed after the loop ends.
 * Compiled into the executable only (it needs the store library). */
#include <stdio.h>

#include "app/app.h"
#include "core/core.h"
#include "store/storeconf.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/health.h"
#include "souk/httpd.h"
#include "souk/log.h"
#include "souk/metrics.h"
#include "souk/recovery.h"
#include "souk/store.h"
#include "souk/task.h"

static souk_store_t *g_store;
static int g_last_err;      /* result of the last probe (0: reachable) */
static bool g_probing;

souk_store_t *souk__app_store(void) { return g_store; }

bool souk__app_store_up(void) { return g_store && g_last_err == 0; }

static void collect(void *ud) {
  souk_gauge_set_named("souk_store_up", NULL, souk__app_store_up() ? 1 : 0);
  souk_store_pool_stats_t ps;
  if (g_store && souk_store_pool_stats(g_store, &ps) == 0)
    souk_gauge_set_named("souk_store_sqlite_memory_bytes", NULL, (double)ps.memory);
}

void souk__app_store_metrics_init(void) {
  souk_gauge_new("souk_store_up", "1 when the last store probe succeeded.", NULL);
  /* Part of souk_process_heap_bytes: the benchmark's breakdown of souk's
   * own memory reads it. */
  souk_gauge_new("souk_store_sqlite_memory_bytes",
                 "Bytes SQLite holds in this process: every connection's schema, page cache and "
                 "statements (0 on PostgreSQL).",
                 NULL);
  souk_metrics_add_collector(collect, NULL);
}

static int probe_fn(souk_db_t *db, void *ud) { return souk_db_exec(db, "SELECT 1"); }

static void probe_done(void *ud, int status) {
  souk_task_ctx_t *ctx = ud;
  if ((status != 0) != (g_last_err != 0))
    SOUK_WARN("store", status ? "store unreachable: %s" : "store reachable again%s",
              status ? souk_strerror(status) : "");
  /* Feed the error recorder: its rate drives the "errors" health check
   * and /metrics, and strategies registered for "store" act on it. */
  if (status)
    souk_error_record("store", SOUK_SEV_HIGH, status, NULL, "store probe failed: %s",
                      souk_strerror(status));
  else if (g_last_err)
    souk_error_resolved("store");
  g_last_err = status;
  g_probing = false;
  souk_task_done(ctx, status);
}

/* A background task: a trivial read on the worker pool.  Health checks and
 * /readyz read its last result and never touch SQL themselves. */
static void probe_task(souk_task_ctx_t *ctx) {
  if (!g_store || g_probing) {
    souk_task_done(ctx, 0);
    return;
  }
  g_probing = true;
  int rc = souk_store_read_async(g_store, probe_fn, probe_done, ctx);
  if (rc) {
    g_probing = false;
    g_last_err = rc;
    souk_task_done(ctx, rc);
  }
}

static const souk_task_t store_tasks[] = {
    {.name = "store.probe", .period_ms = 30000, .jitter_ms = 2000, .budget_ms = 5000,
     .handler = probe_task},
    {0},
};

static void store_health(void *ud, souk_health_result_t *out) {
  if (!g_store) souk_health_set(out, SOUK_HEALTH_CRITICAL, "not open");
  else if (g_last_err) souk_health_set(out, SOUK_HEALTH_CRITICAL, "unreachable: %s",
                                       souk_strerror(g_last_err));
  else souk_health_set(out, SOUK_HEALTH_HEALTHY, "%s reachable",
                       souk_store_kind(g_store) == SOUK_STORE_SQLITE ? "sqlite" : "postgres");
}

static bool store_ready(void *ud, souk_buf_t *why) {
  if (g_store && g_last_err == 0) return true;
  souk_buf_puts(why, g_store ? souk_strerror(g_last_err) : "not open");
  return false;
}

int souk__app_store_open(void) {
  souk_store_conf_t conf = souk__store_conf;
  conf.quick_check = true;
  int rc = souk_store_open(&conf, souk__core_conf.data_dir, &g_store);
  if (rc == SOUK_ECORRUPT) {
    /* Refuse to serve: every command would fail on the damaged pages. */
    souk_buf_t dir;
    souk_buf_init(&dir);
    souk_buf_printf(&dir, "%s/backups", souk__core_conf.data_dir ? souk__core_conf.data_dir : ".");
    char *newest = souk_store_newest_backup(dir.data);
    SOUK_ERROR("store",
               "the database file is damaged; souk will not start on it. Stop souk, run `souk db "
               "check` to see the damage, then restore %s%s (copy it over the database file), or "
               "salvage rows with `sqlite3 souk.db .recover | sqlite3 new.db`",
               newest ? "the newest backup, " : "a backup",
               newest ? newest : " (there is none in the backups directory)");
    souk_free(newest);
    souk_buf_free(&dir);
    g_store = NULL;
    return rc;
  }
  if (rc) {
    SOUK_ERROR("store", "cannot open the store: %s%s", souk_strerror(rc),
               rc == SOUK_EFATAL ? " (the database is newer than this souk: upgrade souk)" : "");
    g_store = NULL;
    return rc;
  }
  g_last_err = 0;
  souk_health_register("store", store_health, NULL);
  souk_httpd_add_ready_check("store", store_ready, NULL);
  return 0;
}

const souk_task_t *souk__app_store_tasks(void) { return store_tasks; }

void souk__app_store_close(void) {
  if (!g_store) return;
  souk_health_unregister("store");
  souk_httpd_remove_ready_check("store");
  souk_store_close(g_store);
  g_store = NULL;
}
