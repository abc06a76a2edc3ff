/* /metrics families for the parts wired in the executable: the cache, the
 * background tasks, the store probe and the error recorder.  Filled at
 * scrape time by a collector, from the statistics each part keeps. */
#include "core/app.h"
#include "souk/cache.h"
#include "souk/metrics.h"
#include "souk/recovery.h"
#include "souk/task.h"

static void set_c(const char *name, const char *const *lv, double v) {
  souk_metric_t *m = souk_metric_find(name);
  if (m) souk_counter_set(souk_metric_series(m, lv), v);
}

static void set_g(const char *name, const char *const *lv, double v) {
  souk_metric_t *m = souk_metric_find(name);
  if (m) souk_gauge_set(souk_metric_series(m, lv), v);
}

static void cache_backend(const char *b, const souk_cache_counters_t *c) {
  set_c("souk_cache_hits_total", SOUK_LV(b), (double)c->hits);
  set_c("souk_cache_misses_total", SOUK_LV(b), (double)c->misses);
  set_c("souk_cache_evictions_total", SOUK_LV(b), (double)c->evictions);
  set_c("souk_cache_expired_total", SOUK_LV(b), (double)c->expired);
  set_c("souk_cache_errors_total", SOUK_LV(b), (double)c->errors);
}

static void collect(void *ud) {
  souk_cache_t *cache = souk_cache_main();
  if (cache) {
    souk_cache_stats_t st;
    souk_cache_stats(cache, &st);
    cache_backend("memory", &st.memory);
    if (st.redis_configured) cache_backend("redis", &st.redis);
    set_g("souk_cache_memory_bytes", NULL, (double)st.mem_bytes);
    set_g("souk_cache_memory_entries", NULL, (double)st.mem_entries);
    set_g("souk_cache_redis_up", NULL, st.redis_up ? 1 : 0);
    set_c("souk_cache_fallbacks_total", NULL, (double)st.fallbacks);
  }
  /* Tasks come and go only at start, so their series are stable. */
  for (size_t i = 0, n = souk_task_count(); i < n; i++) {
    souk_task_stats_t t;
    if (souk_task_stats_at(i, &t)) continue;
    set_c("souk_task_runs_total", SOUK_LV(t.name), (double)t.runs);
    set_c("souk_task_failures_total", SOUK_LV(t.name), (double)t.failures);
    set_c("souk_task_skipped_total", SOUK_LV(t.name, "overlap"), (double)t.skipped_overlap);
    set_c("souk_task_skipped_total", SOUK_LV(t.name, "memory"), (double)t.skipped_heavy);
    set_c("souk_task_over_budget_total", SOUK_LV(t.name), (double)t.over_budget);
    set_g("souk_task_last_duration_seconds", SOUK_LV(t.name), (double)t.last_duration_ms / 1e3);
    set_g("souk_task_running", SOUK_LV(t.name), t.running ? 1 : 0);
  }
  set_g("souk_store_up", NULL, souk__app_store_up() ? 1 : 0);
  souk_error_stats_t es;
  if (souk_error_stats(NULL, &es) == 0) {
    static const char *const sev[4] = {"low", "medium", "high", "critical"};
    for (int i = 0; i < 4; i++) set_c("souk_errors_total", SOUK_LV(sev[i]), (double)es.by_severity[i]);
    set_g("souk_errors_per_minute", NULL, es.per_minute);
  }
}

void souk__app_metrics_init(void) {
  souk_counter_new("souk_cache_hits_total", "Cache gets answered with a value.", "backend");
  souk_counter_new("souk_cache_misses_total", "Cache gets answered without a value.", "backend");
  souk_counter_new("souk_cache_evictions_total", "Entries dropped for the byte budget or a trim.",
                   "backend");
  souk_counter_new("souk_cache_expired_total", "Entries dropped because their TTL ran out.",
                   "backend");
  souk_counter_new("souk_cache_errors_total", "Cache backend errors and timeouts.", "backend");
  souk_gauge_new("souk_cache_memory_bytes", "Bytes charged to the in-process cache.", NULL);
  souk_gauge_new("souk_cache_memory_entries", "Entries in the in-process cache.", NULL);
  souk_gauge_new("souk_cache_redis_up", "1 while cache commands go to Redis.", NULL);
  souk_counter_new("souk_cache_fallbacks_total",
                   "Cache commands served from memory because Redis was down.", NULL);
  souk_counter_new("souk_task_runs_total", "Background task runs finished.", "task");
  souk_counter_new("souk_task_failures_total", "Background task runs that failed.", "task");
  souk_counter_new("souk_task_skipped_total", "Background task runs skipped.", "task,reason");
  souk_counter_new("souk_task_over_budget_total", "Task runs longer than their budget.", "task");
  souk_gauge_new("souk_task_last_duration_seconds", "Duration of a task's last run.", "task");
  souk_gauge_new("souk_task_running", "1 while a task runs.", "task");
  souk_gauge_new("souk_store_up", "1 when the last store probe succeeded.", NULL);
  souk_counter_new("souk_errors_total", "Errors recorded, by severity.", "severity");
  souk_gauge_new("souk_errors_per_minute", "Error rate over the recorder's window.", NULL);
  souk_metrics_add_collector(collect, NULL);
}
