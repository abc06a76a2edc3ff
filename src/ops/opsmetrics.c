/* Operations' /metrics families: the background tasks (runs, failures,
 * skips, budget overruns, durations) and the error recorder (errors by
 * severity and their rate), filled at scrape time from the statistics the
 * scheduler and the recorder keep. */
#include "ops/ops.h"
#include "souk/metrics.h"
#include "souk/recovery.h"
#include "souk/task.h"

static void collect(void *ud) {
  /* Tasks come and go only at start, so their series are stable. */
  for (size_t i = 0, n = souk_task_count(); i < n; i++) {
    souk_task_stats_t t;
    if (souk_task_stats_at(i, &t)) continue;
    souk_counter_set_named("souk_task_runs_total", SOUK_LV(t.name), (double)t.runs);
    souk_counter_set_named("souk_task_failures_total", SOUK_LV(t.name), (double)t.failures);
    souk_counter_set_named("souk_task_skipped_total", SOUK_LV(t.name, "overlap"),
                           (double)t.skipped_overlap);
    souk_counter_set_named("souk_task_skipped_total", SOUK_LV(t.name, "memory"),
                           (double)t.skipped_heavy);
    /* A cluster task in a process that does not lead, a shard task in one
     * that runs no shard: runs that belong elsewhere. */
    if (t.scope == SOUK_TASK_SCOPE_CLUSTER)
      souk_counter_set_named("souk_task_skipped_total", SOUK_LV(t.name, "not_leader"),
                             (double)t.skipped_not_leader);
    if (t.scope == SOUK_TASK_SCOPE_SHARD)
      souk_counter_set_named("souk_task_skipped_total", SOUK_LV(t.name, "no_shards"),
                             (double)t.skipped_no_shards);
    souk_counter_set_named("souk_task_over_budget_total", SOUK_LV(t.name), (double)t.over_budget);
    souk_gauge_set_named("souk_task_last_duration_seconds", SOUK_LV(t.name),
                         (double)t.last_duration_ms / 1e3);
    souk_gauge_set_named("souk_task_running", SOUK_LV(t.name), t.running ? 1 : 0);
  }
  souk_error_stats_t es;
  if (souk_error_stats(NULL, &es) == 0) {
    static const char *const sev[4] = {"low", "medium", "high", "critical"};
    for (int i = 0; i < 4; i++)
      souk_counter_set_named("souk_errors_total", SOUK_LV(sev[i]), (double)es.by_severity[i]);
    souk_gauge_set_named("souk_errors_per_minute", NULL, es.per_minute);
  }
}

void souk__ops_metrics_init(void) {
  souk_counter_new("souk_task_runs_total", "Background task runs finished.", "task");
  souk_counter_new("souk_task_failures_total", "Background task runs that failed.", "task");
  souk_counter_new("souk_task_skipped_total", "Background task runs skipped.", "task,reason");
  souk_counter_new("souk_task_over_budget_total", "Task runs longer than their budget.", "task");
  souk_gauge_new("souk_task_last_duration_seconds", "Duration of a task's last run.", "task");
  souk_gauge_new("souk_task_running", "1 while a task runs.", "task");
  souk_counter_new("souk_errors_total", "Errors recorded, by severity.", "severity");
  souk_gauge_new("souk_errors_per_minute", "Error rate over the recorder's window.", NULL);
  souk_metrics_add_collector(collect, NULL);
}
