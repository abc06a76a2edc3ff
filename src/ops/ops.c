/* Operations wiring. */
#include "ops/ops.h"

#include "ops/health.h"
#include "ops/janitor.h"
#include "ops/memguard.h"
#include "ops/opsconf.h"
#include "ops/recovery.h"
#include "ops/task.h"
#include "souk/err.h"
#include "souk/log.h"

static souk__health_mem_t mem_thresholds;

void souk__ops_errors_check(void *ud, souk_health_result_t *out) {
  souk_error_stats_t st;
  souk_error_stats(NULL, &st);
  double warn = (double)souk__ops_conf.error_rate_warn,
         crit = (double)souk__ops_conf.error_rate_crit;
  souk_health_t h = SOUK_HEALTH_HEALTHY;
  if (crit > 0 && st.per_minute >= crit)
    h = SOUK_HEALTH_CRITICAL;
  else if (warn > 0 && st.per_minute >= warn)
    h = SOUK_HEALTH_WARNING;
  souk_health_set(out, h, "%.2f errors/min (%llu total, %llu critical)", st.per_minute,
                  (unsigned long long)st.total,
                  (unsigned long long)st.by_severity[SOUK_SEV_CRITICAL]);
}

/* Thresholds are read at each check, so run-time changes apply at once. */
static void memory_check(void *ud, souk_health_result_t *out) {
  mem_thresholds.warn_bytes = (uint64_t)souk__health_conf.memory_warn;
  mem_thresholds.crit_bytes = (uint64_t)souk__health_conf.memory_crit;
  souk__health_memory_check(&mem_thresholds, out);
}

/* The janitor's headroom as a fraction of the cap: janitor.headroom, or
 * from janitor.headroom_size when that is set (at least 1% of the cap is
 * kept, so a size as large as the cap does not empty every set). */
static double janitor_headroom(void) {
  int64_t cap = souk__janitor_conf.cap, size = souk__janitor_conf.headroom_size;
  if (size <= 0 || cap <= 0) return souk__janitor_conf.headroom;
  double h = (double)(cap - (size < cap ? size : cap)) / (double)cap;
  return h < 0.01 ? 0.01 : h;
}

void souk__ops_reload(void) {
  bool mg = souk__memguard_conf.enabled;
  souk__memguard_set_limits(mg ? (uint64_t)souk__memguard_conf.soft : 0,
                            mg ? (uint64_t)souk__memguard_conf.hard : 0);
  souk__health_set_slow_op((uint64_t)souk__health_conf.slow_op_ms);
  souk__janitor_set_limits((uint64_t)souk__janitor_conf.cap, janitor_headroom(),
                           souk__janitor_conf.dry_run);
}

int souk__ops_start(void) {
  souk__recovery_init(&(souk__recovery_opts_t){
      .history = (size_t)souk__ops_conf.error_history,
      .window_ms = (uint64_t)souk__ops_conf.error_window_ms,
  });
  souk__health_init(&(souk__health_opts_t){
      .slow_op_ms = (uint64_t)souk__health_conf.slow_op_ms,
      .report_interval_ms = (uint64_t)souk__health_conf.report_interval_ms,
  });
  souk__sched_init(&(souk__sched_opts_t){
      .budget_crit_factor = (uint32_t)souk__health_conf.task_budget_factor,
      .fail_crit = (uint32_t)souk__health_conf.task_fail_crit,
  });
  /* A disabled guard still samples on demand for the health check, but
   * without limits it never sheds work. */
  bool mg = souk__memguard_conf.enabled;
  souk__memguard_init(&(souk__memguard_opts_t){
      .soft_bytes = mg ? (uint64_t)souk__memguard_conf.soft : 0,
      .hard_bytes = mg ? (uint64_t)souk__memguard_conf.hard : 0,
      .interval_ms = (uint64_t)souk__memguard_conf.interval_ms,
      .trim_cooldown_ms = (uint64_t)souk__memguard_conf.trim_cooldown_ms,
  });
  souk__janitor_init(&(souk__janitor_opts_t){
      .cap_bytes = (uint64_t)souk__janitor_conf.cap,
      .headroom = janitor_headroom(),
      .dry_run = souk__janitor_conf.dry_run,
      .interval_ms = (uint64_t)souk__janitor_conf.interval_ms,
  });
  int rc = souk_health_register("memory", memory_check, NULL);
  if (!rc) rc = souk_health_register("tasks", souk__sched_health_check, NULL);
  if (!rc) rc = souk_health_register("errors", souk__ops_errors_check, NULL);
  if (!rc) rc = souk_health_register("breakers", souk__breakers_health_check, NULL);
  if (!rc) rc = souk__health_start();
  if (!rc && mg) rc = souk__memguard_start();
  if (!rc && souk__janitor_conf.enabled) rc = souk__janitor_start();
  if (rc) {
    SOUK_ERROR("ops", "cannot start operations: %s", souk_strerror(rc));
    souk__ops_stop();
  }
  return rc;
}

void souk__ops_stop(void) {
  souk__janitor_shutdown();
  souk__sched_shutdown();
  souk__memguard_shutdown();
  souk__health_shutdown();
  souk__recovery_shutdown();
}
