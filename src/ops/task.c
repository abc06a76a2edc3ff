/* The task scheduler: pure decisions in tick(), a uv timer around it. */
#include "ops/task.h"

#include "ops/cluster.h"
#include "ops/memguard.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/health.h"
#include "souk/log.h"

#include <string.h>

typedef struct entry entry_t;

struct souk_task_ctx {
  entry_t *e;      /* NULL once orphaned by a scheduler shutdown */
  uint64_t run_id; /* which run of e this is */
  int64_t fence;   /* the cluster lease's token when a cluster task's run started */
  bool done;
  souk_task_ctx_t *next_out; /* list of runs still out */
  souk_task_ctx_t *prev_out;
};

struct entry {
  const souk_task_t *t;
  souk_task_stats_t st;
  uint64_t jitter; /* drawn for the current schedule */
  uint64_t run_id;
  bool over_flagged;   /* the current run was already reported over budget */
  bool skipped_during; /* a due run was skipped while the current one ran */
  souk_task_ctx_t *ctx;
};

static struct {
  souk__sched_opts_t o;
  entry_t *v;
  size_t n;
  souk_task_ctx_t *out; /* runs whose done has not come yet */
  uv_timer_t *timer;
  bool in_tick;
  bool watching; /* told of leadership changes by the cluster */
} S;

static uint64_t now_ms(void) {
  return S.o.clock ? S.o.clock->now_ms(S.o.clock->ud) : souk_now_ms();
}

static uint64_t draw_jitter(const souk_task_t *t) {
  if (!t->jitter_ms) return 0;
  double r = S.o.rand && S.o.rand->next ? S.o.rand->next(S.o.rand->ud) : souk_rand01();
  if (!(r >= 0)) r = 0;
  uint64_t j = (uint64_t)(r * ((double)t->jitter_ms + 1.0));
  return j > t->jitter_ms ? t->jitter_ms : j;
}

/* The task's period now: from its config value when it has one. */
static uint64_t period_of(const souk_task_t *t) {
  if (t->period_conf && *t->period_conf > 0) return (uint64_t)*t->period_conf;
  return t->period_ms;
}

/* The period after k consecutive failures: period x 2^k, capped. */
static uint64_t effective_period(const souk_task_t *t, uint32_t k) {
  uint64_t period = period_of(t);
  uint64_t cap = t->max_backoff_ms ? t->max_backoff_ms : period * 16;
  if (cap < period) cap = period;
  uint64_t p = period;
  for (uint32_t i = 0; i < k && p < cap; i++)
    p = p > UINT64_MAX / 2 ? UINT64_MAX : p * 2;
  return p > cap ? cap : p;
}

static void rearm(void);

static void orphan_all(void) {
  for (souk_task_ctx_t *c = S.out; c; c = c->next_out)
    c->e = NULL;
  S.out = NULL;
}

void souk__sched_stop(void) { souk_timer_free(&S.timer); }

static void leader_cb(bool leader, int64_t fence, void *ud);

void souk__sched_shutdown(void) {
  if (S.watching) souk_cluster_unwatch(leader_cb, NULL);
  souk__sched_stop();
  /* Orphaned contexts stay allocated until their done arrives: the handler
   * still holds them. */
  orphan_all();
  souk_free(S.v);
  memset(&S, 0, sizeof S);
}

void souk__sched_init(const souk__sched_opts_t *opts) {
  souk__sched_shutdown();
  if (opts) S.o = *opts;
  if (!S.o.budget_crit_factor) S.o.budget_crit_factor = 3;
  if (!S.o.fail_crit) S.o.fail_crit = 5;
  S.watching = souk_cluster_watch(leader_cb, NULL) == 0;
}

static entry_t *find(const char *name) {
  for (size_t i = 0; i < S.n; i++)
    if (strcmp(S.v[i].t->name, name) == 0) return &S.v[i];
  return NULL;
}

int souk__sched_add(const souk_task_t *t) {
  if (!t || !t->name || !*t->name || !t->handler || !period_of(t)) return SOUK_EINVAL;
  if (find(t->name)) return SOUK_EEXIST;
  /* Running contexts point at entries, and tasks are added only before
   * any run starts in practice; still, re-point them after a move. */
  entry_t *old = S.v;
  S.v = souk_reallocarray(S.v, S.n + 1, sizeof *S.v);
  if (old != S.v)
    for (souk_task_ctx_t *c = S.out; c; c = c->next_out)
      c->e = S.v + (c->e - old);
  entry_t *e = &S.v[S.n++];
  memset(e, 0, sizeof *e);
  e->t = t;
  e->st.name = t->name;
  e->st.scope = t->scope;
  e->st.budget_ms = t->budget_ms;
  e->st.period_ms = period_of(t);
  e->jitter = draw_jitter(t);
  e->st.next_run_ms =
      now_ms() + (t->flags & SOUK_TASK_RUN_AT_START ? 0 : e->st.period_ms) + e->jitter;
  rearm();
  return 0;
}

int souk__sched_add_table(const souk_task_t *tasks) {
  for (const souk_task_t *t = tasks; t && t->name; t++) {
    int rc = souk__sched_add(t);
    if (rc != 0) {
      SOUK_ERROR("task", "cannot add task=%s: %s", t->name, souk_strerror(rc));
      return rc;
    }
  }
  return 0;
}

void souk__sched_remove(const souk_task_t *t) {
  size_t i = 0;
  while (i < S.n && S.v[i].t != t)
    i++;
  if (i == S.n) return;
  entry_t *e = &S.v[i];
  if (e->ctx) {
    /* A run still out finishes unseen: its done only frees the context. */
    souk_task_ctx_t *c = e->ctx;
    if (c->prev_out)
      c->prev_out->next_out = c->next_out;
    else
      S.out = c->next_out;
    if (c->next_out) c->next_out->prev_out = c->prev_out;
    c->next_out = c->prev_out = NULL;
    c->e = NULL;
  }
  memmove(e, e + 1, (S.n - i - 1) * sizeof *e);
  S.n--;
  /* Runs of the entries that moved down point one entry further now. */
  for (souk_task_ctx_t *c = S.out; c; c = c->next_out)
    if (c->e > e) c->e--;
  rearm();
}

void souk__sched_remove_table(const souk_task_t *tasks) {
  for (const souk_task_t *t = tasks; t && t->name; t++)
    souk__sched_remove(t);
}

static void flag_over_budget(entry_t *e, uint64_t duration) {
  if (e->over_flagged) return;
  e->over_flagged = true;
  e->st.over_budget++;
  SOUK_WARN("task", "task=%s over budget: %llu ms > budget %llu ms%s", e->t->name,
            (unsigned long long)duration, (unsigned long long)e->t->budget_ms,
            e->st.running ? " (still running)" : "");
}

static void start_run(entry_t *e, uint64_t now) {
  souk_task_ctx_t *c = souk_calloc(1, sizeof *c);
  c->e = e;
  c->run_id = ++e->run_id;
  c->next_out = S.out;
  if (S.out) S.out->prev_out = c;
  S.out = c;
  e->ctx = c;
  c->fence = e->t->scope == SOUK_TASK_SCOPE_CLUSTER ? souk_cluster_fence() : 0;
  e->st.running = true;
  e->st.runs++;
  e->st.last_start_ms = now;
  e->over_flagged = false;
  e->skipped_during = false;
  SOUK_DEBUG("task", "task=%s start run=%llu", e->t->name, (unsigned long long)c->run_id);
  /* The handler may call souk_task_done() before returning. */
  e->t->handler(c);
}

/* When the scheduler next has something to decide: a run due, or a run
 * going over its budget (flagged once); UINT64_MAX for nothing. */
static uint64_t next_decision(void) {
  uint64_t next = UINT64_MAX;
  for (size_t i = 0; i < S.n; i++) {
    const entry_t *e = &S.v[i];
    if (e->st.next_run_ms < next) next = e->st.next_run_ms;
    if (e->st.running && e->t->budget_ms && !e->over_flagged) {
      uint64_t at = e->st.last_start_ms + e->t->budget_ms + 1;
      if (at < next) next = at;
    }
  }
  return next;
}

uint64_t souk__sched_tick(void) {
  uint64_t now = now_ms(), next;
  S.in_tick = true;
  for (size_t i = 0; i < S.n; i++) {
    entry_t *e = &S.v[i];
    if (e->st.running && e->t->budget_ms && now - e->st.last_start_ms > e->t->budget_ms)
      flag_over_budget(e, now - e->st.last_start_ms);
    if (e->st.next_run_ms > now) continue;
    /* This run is due: the next one is planned from now, so a long overlap
     * or a stalled loop never produces a burst of catch-up runs. */
    e->st.period_ms = effective_period(e->t, e->st.consecutive_failures);
    e->jitter = draw_jitter(e->t);
    e->st.next_run_ms = now + e->st.period_ms + e->jitter;
    if (e->st.running) {
      e->st.skipped_overlap++;
      e->skipped_during = true;
      SOUK_WARN("task", "task=%s skipped: previous run still going after %llu ms", e->t->name,
                (unsigned long long)(now - e->st.last_start_ms));
      continue;
    }
    /* Scope: a cluster task runs in the lease's holder only, a shard task
     * where shards run; elsewhere the run is skipped, and the next one is
     * planned as if it had run. */
    if (e->t->scope == SOUK_TASK_SCOPE_CLUSTER && !souk_cluster_leader()) {
      e->st.skipped_not_leader++;
      SOUK_DEBUG("task", "task=%s skipped: another process leads the cluster", e->t->name);
      continue;
    }
    if (e->t->scope == SOUK_TASK_SCOPE_SHARD && !souk__cluster_has_shards()) {
      e->st.skipped_no_shards++;
      continue;
    }
    if (e->t->flags & SOUK_TASK_HEAVY) {
      bool ok = S.o.allow_heavy ? S.o.allow_heavy(e->t->name, S.o.heavy_ud)
                                : souk_memguard_allow_heavy(e->t->name);
      if (!ok) {
        e->st.skipped_heavy++;
        continue;
      }
    }
    /* e is not used after this: a handler may add tasks (moving S.v) or
     * even shut the scheduler down, and the loop re-reads S.n and S.v. */
    start_run(e, now);
  }
  next = next_decision();
  S.in_tick = false;
  return next;
}

void souk_task_done(souk_task_ctx_t *c, int err) {
  SOUK_ASSERT(c && !c->done);
  c->done = true;
  entry_t *e = c->e;
  if (!e) { /* orphaned by a scheduler shutdown */
    souk_free(c);
    return;
  }
  if (c->prev_out)
    c->prev_out->next_out = c->next_out;
  else
    S.out = c->next_out;
  if (c->next_out) c->next_out->prev_out = c->prev_out;
  uint64_t now = now_ms(), d = now - e->st.last_start_ms;
  e->ctx = NULL;
  e->st.running = false;
  e->st.last_duration_ms = d;
  e->st.last_err = err;
  if (e->t->budget_ms && d > e->t->budget_ms) flag_over_budget(e, d);
  if (err) {
    e->st.failures++;
    e->st.consecutive_failures++;
    uint64_t p = effective_period(e->t, e->st.consecutive_failures);
    SOUK_WARN("task", "task=%s failed: %s (%u in a row); next run in %llu ms", e->t->name,
              souk_strerror(err), e->st.consecutive_failures, (unsigned long long)p);
    e->st.period_ms = p;
    /* Backoff only ever pushes the next run later. */
    uint64_t cand = e->st.last_start_ms + p + e->jitter;
    if (cand > e->st.next_run_ms) e->st.next_run_ms = cand;
  } else {
    if (e->st.consecutive_failures)
      SOUK_INFO("task", "task=%s recovered after %u failures", e->t->name,
                e->st.consecutive_failures);
    e->st.consecutive_failures = 0;
    e->st.period_ms = period_of(e->t);
    /* A success ends any backoff: plan from this run's start.  If a due
     * run was skipped meanwhile, tick has already planned the next one
     * after the skip, and that plan stands. */
    if (!e->skipped_during) e->st.next_run_ms = e->st.last_start_ms + e->st.period_ms + e->jitter;
  }
  SOUK_DEBUG("task", "task=%s done err=%d duration_ms=%llu", e->t->name, err,
             (unsigned long long)d);
  souk_free(c);
  rearm();
}

void *souk_task_ud(const souk_task_ctx_t *c) { return c->e ? c->e->t->ud : NULL; }

int64_t souk_task_fence(const souk_task_ctx_t *c) { return c->fence; }

const char *souk_task_scope_name(souk_task_scope_t scope) {
  switch (scope) {
  case SOUK_TASK_SCOPE_SHARD:
    return "shard";
  case SOUK_TASK_SCOPE_CLUSTER:
    return "cluster";
  default:
    return "process";
  }
}

/* This process gained the lease: the cluster tasks that run at start run
 * now, as they would have in a process that led from its start. */
static void leader_cb(bool leader, int64_t fence, void *ud) {
  (void)fence;
  (void)ud;
  if (!leader) return;
  uint64_t now = now_ms();
  for (size_t i = 0; i < S.n; i++) {
    entry_t *e = &S.v[i];
    if (e->t->scope != SOUK_TASK_SCOPE_CLUSTER || !(e->t->flags & SOUK_TASK_RUN_AT_START)) continue;
    if (e->st.running || e->st.next_run_ms <= now + e->jitter) continue;
    e->st.next_run_ms = now + e->jitter;
  }
  rearm();
}

const char *souk_task_name(const souk_task_ctx_t *c) { return c->e ? c->e->t->name : "?"; }

int souk_task_stats(const char *name, souk_task_stats_t *out) {
  entry_t *e = name ? find(name) : NULL;
  if (!e) return SOUK_ENOTFOUND;
  *out = e->st;
  return 0;
}

size_t souk_task_count(void) { return S.n; }

int souk_task_stats_at(size_t i, souk_task_stats_t *out) {
  if (i >= S.n) return SOUK_ERANGE;
  *out = S.v[i].st;
  return 0;
}

int souk_task_restart(const char *name) {
  entry_t *e = name ? find(name) : NULL;
  if (!e) return SOUK_ENOTFOUND;
  if (e->st.running) return SOUK_EBUSY;
  SOUK_INFO("task", "task=%s restarted by admin (had %u consecutive failures)", e->t->name,
            e->st.consecutive_failures);
  e->st.consecutive_failures = 0;
  e->st.period_ms = period_of(e->t);
  e->st.next_run_ms = now_ms();
  rearm();
  return 0;
}

void souk__sched_report(souk_buf_t *out) {
  uint64_t now = now_ms();
  for (size_t i = 0; i < S.n; i++) {
    const souk_task_stats_t *st = &S.v[i].st;
    souk_buf_printf(out,
                    "%s: %llu runs, %llu failed (%u in a row), skipped %llu overlap / %llu heavy, "
                    "%llu over budget, last %llu ms, next in %llu ms",
                    st->name, (unsigned long long)st->runs, (unsigned long long)st->failures,
                    st->consecutive_failures, (unsigned long long)st->skipped_overlap,
                    (unsigned long long)st->skipped_heavy, (unsigned long long)st->over_budget,
                    (unsigned long long)st->last_duration_ms,
                    (unsigned long long)(st->next_run_ms > now ? st->next_run_ms - now : 0));
    if (st->running)
      souk_buf_printf(out, ", running %llu ms", (unsigned long long)(now - st->last_start_ms));
    if (st->scope != SOUK_TASK_SCOPE_PROCESS)
      souk_buf_printf(out, " [%s%s]", souk_task_scope_name(st->scope),
                      st->scope == SOUK_TASK_SCOPE_CLUSTER && !souk_cluster_leader()
                          ? ": another process leads"
                          : "");
    souk_buf_putc(out, '\n');
  }
}

/* ---- the uv shell ---- */

static void timer_cb(uv_timer_t *t) {
  (void)souk__sched_tick();
  rearm();
}

/* Point the timer at the earliest next decision.  Inside tick the timer
 * callback re-arms after tick returns. */
static void rearm(void) {
  if (!S.timer || S.in_tick) return;
  uint64_t next = next_decision(), now = now_ms();
  if (next == UINT64_MAX) {
    uv_timer_stop(S.timer);
    return;
  }
  uv_timer_start(S.timer, timer_cb, next > now ? next - now : 0, 0);
}

int souk__sched_start(void) {
  if (S.timer) return SOUK_EBUSY;
  S.timer = souk_malloc(sizeof *S.timer);
  if (uv_timer_init(souk_loop(), S.timer) != 0) {
    souk_free(S.timer);
    S.timer = NULL;
    return SOUK_EIO;
  }
  rearm();
  return 0;
}

/* ---- health ---- */

void souk__sched_health_check(void *ud, souk_health_result_t *out) {
  uint64_t now = now_ms();
  souk_health_t worst = SOUK_HEALTH_HEALTHY;
  const entry_t *why = NULL;
  char detail[160] = "";
  for (size_t i = 0; i < S.n; i++) {
    const entry_t *e = &S.v[i];
    const souk_task_t *t = e->t;
    souk_health_t h = SOUK_HEALTH_HEALTHY;
    char d[160] = "";
    uint64_t running_for = e->st.running ? now - e->st.last_start_ms : 0;
    if (e->st.consecutive_failures >= S.o.fail_crit) {
      h = SOUK_HEALTH_CRITICAL;
      snprintf(d, sizeof d, "%s failed %u times in a row (%s)", t->name, e->st.consecutive_failures,
               souk_strerror(e->st.last_err));
    } else if (t->budget_ms && running_for > t->budget_ms * S.o.budget_crit_factor) {
      h = SOUK_HEALTH_CRITICAL;
      snprintf(d, sizeof d, "%s running for %llu ms, budget %llu ms", t->name,
               (unsigned long long)running_for, (unsigned long long)t->budget_ms);
    } else if (t->budget_ms && running_for > t->budget_ms) {
      h = SOUK_HEALTH_WARNING;
      snprintf(d, sizeof d, "%s running for %llu ms, budget %llu ms", t->name,
               (unsigned long long)running_for, (unsigned long long)t->budget_ms);
    } else if (t->budget_ms && e->st.last_duration_ms > t->budget_ms) {
      h = SOUK_HEALTH_WARNING;
      snprintf(d, sizeof d, "%s last run took %llu ms, budget %llu ms", t->name,
               (unsigned long long)e->st.last_duration_ms, (unsigned long long)t->budget_ms);
    } else if (e->st.consecutive_failures) {
      h = SOUK_HEALTH_WARNING;
      snprintf(d, sizeof d, "%s failed %u times in a row (%s)", t->name, e->st.consecutive_failures,
               souk_strerror(e->st.last_err));
    }
    if (h > worst) {
      worst = h;
      why = e;
      memcpy(detail, d, sizeof detail);
    }
  }
  if (!why)
    souk_health_set(out, SOUK_HEALTH_HEALTHY, "%zu tasks, all within budget", S.n);
  else
    souk_health_set(out, worst, "%s", detail);
}
