/* Health registry, threshold logic, the periodic report and perf logging. */
#include "ops/health.h"

#include "ops/memguard.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct check {
  char *name;
  souk_health_check_cb fn;
  void *ud;
} check_t;

static struct {
  const souk_clock_t *clock;
  uint64_t slow_op_ms, report_interval_ms;
  check_t *checks;
  size_t n;
  uint64_t slow_count;
  uv_timer_t *timer; /* NULL when not started */
} H = {.slow_op_ms = 1000, .report_interval_ms = 15 * 60 * 1000};

static const char *const names[] = {"HEALTHY", "WARNING", "CRITICAL"};

const char *souk_health_name(souk_health_t h) { return (unsigned)h < 3 ? names[h] : "UNKNOWN"; }

void souk_health_set(souk_health_result_t *r, souk_health_t status, const char *fmt, ...) {
  r->status = status;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->detail, sizeof r->detail, fmt, ap);
  va_end(ap);
  /* The report is one line per component, so a detail must not break it. */
  for (char *p = r->detail; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
}

souk_health_t souk_health_threshold(double value, double warn, double crit, souk_health_dir_t dir) {
  if (isnan(value)) return SOUK_HEALTH_CRITICAL;
  if (dir == SOUK_HEALTH_LOWER_IS_WORSE) {
    if (value <= crit) return SOUK_HEALTH_CRITICAL;
    if (value <= warn) return SOUK_HEALTH_WARNING;
  } else {
    if (value >= crit) return SOUK_HEALTH_CRITICAL;
    if (value >= warn) return SOUK_HEALTH_WARNING;
  }
  return SOUK_HEALTH_HEALTHY;
}

void souk__health_stop(void) { souk_timer_free(&H.timer); }

void souk__health_shutdown(void) {
  souk__health_stop();
  for (size_t i = 0; i < H.n; i++)
    souk_free(H.checks[i].name);
  souk_free(H.checks);
  H.checks = NULL;
  H.n = 0;
}

void souk__health_init(const souk__health_opts_t *opts) {
  souk__health_shutdown();
  H.clock = opts ? opts->clock : NULL;
  H.slow_op_ms = opts && opts->slow_op_ms ? opts->slow_op_ms : 1000;
  H.report_interval_ms =
      opts && opts->report_interval_ms ? opts->report_interval_ms : 15 * 60 * 1000;
  H.slow_count = 0;
}

void souk__health_set_slow_op(uint64_t ms) { H.slow_op_ms = ms ? ms : 1000; }

int souk_health_register(const char *component, souk_health_check_cb fn, void *ud) {
  if (!component || !*component || !fn || strchr(component, '\n')) return SOUK_EINVAL;
  for (size_t i = 0; i < H.n; i++)
    if (strcmp(H.checks[i].name, component) == 0) return SOUK_EEXIST;
  H.checks = souk_reallocarray(H.checks, H.n + 1, sizeof *H.checks);
  H.checks[H.n++] = (check_t){souk_strdup(component), fn, ud};
  return 0;
}

int souk_health_unregister(const char *component) {
  for (size_t i = 0; i < H.n; i++)
    if (strcmp(H.checks[i].name, component) == 0) {
      souk_free(H.checks[i].name);
      memmove(&H.checks[i], &H.checks[i + 1], (H.n - i - 1) * sizeof *H.checks);
      H.n--;
      return 0;
    }
  return SOUK_ENOTFOUND;
}

static void run_check(const check_t *c, souk_health_result_t *out) {
  memset(out, 0, sizeof *out);
  c->fn(c->ud, out);
  if ((unsigned)out->status > SOUK_HEALTH_CRITICAL) out->status = SOUK_HEALTH_CRITICAL;
  out->detail[sizeof out->detail - 1] = 0;
}

int souk_health_check_one(const char *component, souk_health_result_t *out) {
  for (size_t i = 0; i < H.n; i++)
    if (strcmp(H.checks[i].name, component) == 0) {
      run_check(&H.checks[i], out);
      return 0;
    }
  return SOUK_ENOTFOUND;
}

souk_health_t souk_health_check_all(souk_buf_t *report) {
  souk_health_t worst = SOUK_HEALTH_HEALTHY;
  size_t count[3] = {0}, width = 0, n = H.n;
  /* Checks run before anything is written so the summary line comes first;
   * a copy of the list keeps a check that (un)registers others harmless. */
  check_t *cs = souk_calloc(n ? n : 1, sizeof *cs);
  souk_health_result_t *res = souk_calloc(n ? n : 1, sizeof *res);
  for (size_t i = 0; i < n; i++) {
    cs[i] = H.checks[i];
    cs[i].name = souk_strdup(cs[i].name);
  }
  for (size_t i = 0; i < n; i++) {
    run_check(&cs[i], &res[i]);
    count[res[i].status]++;
    if (res[i].status > worst) worst = res[i].status;
    size_t w = strlen(cs[i].name);
    if (w > width) width = w;
  }
  if (report) {
    souk_buf_printf(report, "health: %s (%zu checks: %zu healthy, %zu warning, %zu critical)\n",
                    names[worst], n, count[0], count[1], count[2]);
    for (size_t i = 0; i < n; i++)
      souk_buf_printf(report, "  %-*s  %-8s  %s\n", (int)width, cs[i].name, names[res[i].status],
                      res[i].detail);
  }
  for (size_t i = 0; i < n; i++)
    souk_free(cs[i].name);
  souk_free(cs);
  souk_free(res);
  return worst;
}

void souk_health_log_report(void) {
  souk_buf_t b = {0};
  souk_health_t h = souk_health_check_all(&b);
  souk_log_level_t lvl = h == SOUK_HEALTH_CRITICAL  ? SOUK_LOG_ERROR
                         : h == SOUK_HEALTH_WARNING ? SOUK_LOG_WARN
                                                    : SOUK_LOG_INFO;
  /* One log line per report line: the logger escapes newlines, which would
   * make the table unreadable. */
  char *line = b.data;
  while (line && *line) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    souk_log(lvl, "health", "%s", line);
    if (!nl) break;
    line = nl + 1;
  }
  souk_buf_free(&b);
}

static void report_cb(uv_timer_t *t) { souk_health_log_report(); }

int souk__health_start(void) {
  if (H.timer) return SOUK_EBUSY;
  H.timer = souk_timer_every(H.report_interval_ms, report_cb, NULL, 1);
  return H.timer ? 0 : SOUK_EIO;
}

/* ---- memory ---- */

static void fmt_mb(char *buf, size_t n, uint64_t bytes) {
  snprintf(buf, n, "%.1f MB", (double)bytes / (1024.0 * 1024.0));
}

void souk__health_memory_check(void *ud, souk_health_result_t *out) {
  const souk__health_mem_t *m = ud;
  uint64_t rss = 0;
  if (souk__memguard_rss(&rss) != 0) {
    souk_health_set(out, SOUK_HEALTH_WARNING, "rss unknown (sampler failed)");
    return;
  }
  char r[32], w[32], c[32];
  fmt_mb(r, sizeof r, rss);
  fmt_mb(w, sizeof w, m->warn_bytes);
  fmt_mb(c, sizeof c, m->crit_bytes);
  if (m->crit_bytes && rss >= m->crit_bytes)
    souk_health_set(out, SOUK_HEALTH_CRITICAL, "rss %s >= critical %s", r, c);
  else if (m->warn_bytes && rss >= m->warn_bytes)
    souk_health_set(out, SOUK_HEALTH_WARNING, "rss %s >= warning %s", r, w);
  else
    souk_health_set(out, SOUK_HEALTH_HEALTHY, "rss %s", r);
}

/* ---- perf ---- */

static uint64_t perf_now(void) { return H.clock ? H.clock->now_ms(H.clock->ud) : souk_now_ms(); }

souk_perf_t souk_perf_begin(const char *name) { return (souk_perf_t){name, perf_now()}; }

uint64_t souk_perf_end_threshold(const souk_perf_t *p, uint64_t threshold_ms) {
  uint64_t now = perf_now(), d = now >= p->start_ms ? now - p->start_ms : 0;
  if (d >= threshold_ms) {
    H.slow_count++;
    SOUK_WARN("perf", "slow operation op=%s duration_ms=%llu threshold_ms=%llu",
              p->name ? p->name : "?", (unsigned long long)d, (unsigned long long)threshold_ms);
  }
  return d;
}

uint64_t souk_perf_end(const souk_perf_t *p) { return souk_perf_end_threshold(p, H.slow_op_ms); }

uint64_t souk_perf_slow_count(void) { return H.slow_count; }

void souk__perf_scope_end(souk_perf_t *p) { souk_perf_end(p); }
