/* The admin module: commands to see inside a running souk and steer it.
 *
 * /admin ... (the bot's owners only): health report, tasks and restarting
 * one, error statistics and history, circuit breakers and resetting one,
 * memory guard, cache clearing by pattern, a storage janitor run, usage
 * analytics, a configuration reload, performance and scalability figures,
 * the database (health, optimize, pool), queues, and changing one
 * configuration key at run time.  The old bot's names for some of them
 * work as aliases under the guild's prefix (`performance`, `db health`,
 * `cache clear PATTERN`, `commands stats`, ...).
 *
 * /prefix ... (members with Manage Server): the guild's prefix for message
 * commands, kept as the setting commands.prefix and applied at once;
 * `/prefix set` without a value opens a form. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/cache.h"
#include "souk/cluster.h"
#include "souk/cmd.h"
#include "souk/conf.h"
#include "souk/err.h"
#include "souk/health.h"
#include "souk/janitor.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/memguard.h"
#include "souk/module.h"
#include "souk/recovery.h"
#include "souk/settings.h"
#include "souk/stats.h"
#include "souk/store.h"
#include "souk/task.h"
#include "souk/usage.h"

#define ADMIN_TEXT_MAX 1900 /* a code block inside Discord's 2000 characters */

/* The process's store and cache, from the init context (either may be
 * NULL). */
static struct {
  souk_store_t *store;
  souk_cache_t *cache;
} admin;

/* Reply with text in a code block, cut to fit one message. */
static void reply_block(souk_cmd_ctx_t *ctx, const char *title, const souk_buf_t *b) {
  const char *t = b->data && b->len ? b->data : "(nothing)\n";
  size_t n = strlen(t);
  bool cut = n > ADMIN_TEXT_MAX;
  if (cut) {
    n = ADMIN_TEXT_MAX;
    while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80) n--;
  }
  souk_cmd_replyf(ctx, "**%s**\n```\n%.*s%s```", title, (int)n, t, cut ? "\n... (cut)\n" : "");
}

static void admin_health(souk_cmd_ctx_t *ctx) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk_health_t h = souk_health_check_all(&b);
  char title[64];
  snprintf(title, sizeof title, "Health: %s", souk_health_name(h));
  reply_block(ctx, title, &b);
  souk_buf_free(&b);
}

static void admin_tasks(souk_cmd_ctx_t *ctx) {
  souk_buf_t b;
  souk_buf_init(&b);
  uint64_t now = souk_now_ms();
  for (size_t i = 0, n = souk_task_count(); i < n; i++) {
    souk_task_stats_t t;
    if (souk_task_stats_at(i, &t)) continue;
    long long next = t.next_run_ms > now ? (long long)((t.next_run_ms - now) / 1000) : 0;
    souk_buf_printf(&b,
                    "%-24s runs %-5" PRIu64 " fail %-3" PRIu64 " last %5" PRIu64
                    " ms  next in %llds%s%s\n",
                    t.name, t.runs, t.failures, t.last_duration_ms, next,
                    t.running ? "  RUNNING" : "",
                    t.consecutive_failures ? "  (backing off)" : "");
  }
  if (!b.len) souk_buf_puts(&b, "no background tasks\n");
  reply_block(ctx, "Tasks", &b);
  souk_buf_free(&b);
}

static void admin_task_restart(souk_cmd_ctx_t *ctx) {
  const char *name = souk_cmd_arg_str(ctx->args, "task", "");
  int rc = souk_task_restart(name);
  if (rc == 0) souk_cmd_replyf(ctx, "Task `%s` will run again now.", name);
  else if (rc == SOUK_EBUSY)
    souk_cmd_replyf(ctx, "Task `%s` is running right now; it cannot be interrupted.", name);
  else souk_cmd_replyf(ctx, "There is no task `%s`. See `/admin tasks`.", name);
}

static void complete_tasks(souk_cmd_ctx_t *ctx) {
  const souk_cmd_arg_t *f = souk_cmd_focused(ctx->args);
  const char *typed = f && f->text ? f->text : "";
  souk_cmd_choice_t out[SOUK_CMD_CHOICES_MAX];
  size_t n = 0;
  for (size_t i = 0, k = souk_task_count(); i < k && n < SOUK_CMD_CHOICES_MAX; i++) {
    souk_task_stats_t t;
    if (souk_task_stats_at(i, &t) == 0 && strstr(t.name, typed))
      out[n++] = (souk_cmd_choice_t){t.name, t.name};
  }
  souk_cmd_choices(ctx, out, n);
}

static void admin_errors(souk_cmd_ctx_t *ctx) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk_error_stats_t st;
  souk_error_stats(NULL, &st);
  souk_buf_printf(&b, "total %" PRIu64 " (low %" PRIu64 ", medium %" PRIu64 ", high %" PRIu64
                      ", critical %" PRIu64 "), %.1f per minute\n",
                  st.total, st.by_severity[0], st.by_severity[1], st.by_severity[2],
                  st.by_severity[3], st.per_minute);
  size_t n = souk_error_history_len();
  size_t from = n > 10 ? n - 10 : 0;
  uint64_t now = souk_now_ms();
  for (size_t i = n; i-- > from;) {
    souk_error_entry_t e;
    if (souk_error_history_get(i, &e)) continue;
    souk_buf_printf(&b, "%4llus ago  %-8s %-16s %s: %s\n",
                    (unsigned long long)(now > e.at_ms ? (now - e.at_ms) / 1000 : 0),
                    souk_severity_name(e.severity), e.type, souk_strerror(e.code),
                    e.context ? e.context : "");
  }
  reply_block(ctx, "Errors (newest first)", &b);
  souk_buf_free(&b);
}

static void admin_breakers(souk_cmd_ctx_t *ctx) {
  souk_buf_t b;
  souk_buf_init(&b);
  for (souk_breaker_t *br = souk_breaker_next(NULL); br; br = souk_breaker_next(br)) {
    souk_breaker_stats_t st;
    souk_breaker_stats(br, &st);
    souk_buf_printf(&b, "%-24s %-9s ok %-6" PRIu64 " failed %-6" PRIu64 " rejected %-6" PRIu64
                        " opened %" PRIu64 "\n",
                    souk_breaker_name(br), souk_breaker_state_name(st.state), st.successes,
                    st.failures, st.rejected, st.opened);
  }
  if (!b.len) souk_buf_puts(&b, "no circuit breakers\n");
  reply_block(ctx, "Circuit breakers", &b);
  souk_buf_free(&b);
}

static void admin_breaker_reset(souk_cmd_ctx_t *ctx) {
  const char *name = souk_cmd_arg_str(ctx->args, "name", "");
  souk_breaker_t *br = souk_breaker_find(name);
  if (!br) {
    souk_cmd_replyf(ctx, "There is no breaker `%s`. See `/admin breakers`.", name);
    return;
  }
  souk_breaker_reset(br);
  SOUK_INFO("admin", "breaker %s reset by user %" PRIu64, name, ctx->user_id);
  souk_cmd_replyf(ctx, "Breaker `%s` is closed again.", name);
}

static void admin_memory(souk_cmd_ctx_t *ctx) {
  souk_memguard_stats_t st;
  souk_memguard_stats(&st);
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_printf(&b, "level %s\nrss %.1f MB (soft %.1f MB, hard %.1f MB)\n",
                  souk_memguard_level_name(souk_memguard_level()), (double)st.rss / 1048576.0,
                  (double)st.soft_bytes / 1048576.0, (double)st.hard_bytes / 1048576.0);
  souk_cache_t *c = admin.cache;
  if (c) {
    souk_cache_stats_t cs;
    souk_cache_stats(c, &cs);
    souk_buf_printf(&b, "cache %zu entries, %.1f MB; redis %s\n", cs.mem_entries,
                    (double)cs.mem_bytes / 1048576.0,
                    cs.redis_configured ? (cs.redis_up ? "up" : "DOWN") : "not configured");
  }
  reply_block(ctx, "Memory", &b);
  souk_buf_free(&b);
}

typedef struct pending {
  souk_cmd_ctx_t *ctx;
  char what[128];
} pending_t;

static void cache_cleared(void *ud, int status) {
  pending_t *p = ud;
  if (status == SOUK_ECONN)
    /* Say what happened and what did not: only this process's memory. */
    souk_cmd_errorf(p->ctx,
                    "Cache entries matching `%s` were cleared from this process's memory only: "
                    "Redis is not connected, so its entries were NOT cleared. They are deleted "
                    "when Redis is reachable again; run this again then to be sure.",
                    p->what);
  else if (status)
    souk_cmd_errorf(p->ctx, "Clearing the cache failed: %s.", souk_strerror(status));
  else
    souk_cmd_replyf(p->ctx, "Cache entries matching `%s` were cleared.", p->what);
  souk_free(p);
}

static void admin_cache_clear(souk_cmd_ctx_t *ctx) {
  souk_cache_t *c = admin.cache;
  if (!c) {
    souk_cmd_replyf(ctx, "There is no cache in this process.");
    return;
  }
  pending_t *p = souk_calloc(1, sizeof *p);
  p->ctx = ctx;
  snprintf(p->what, sizeof p->what, "%s", souk_cmd_arg_str(ctx->args, "pattern", "*"));
  int rc = souk_cache_clear(c, p->what, cache_cleared, p);
  if (rc) {
    souk_free(p);
    souk_cmd_errorf(ctx, "Clearing the cache failed: %s.", souk_strerror(rc));
  }
}

static void janitor_done(const souk_janitor_report_t *rep, void *ud) {
  souk_cmd_ctx_t *ctx = ud;
  souk_buf_t b;
  souk_buf_init(&b);
  souk_janitor_report_text(rep, &b);
  reply_block(ctx, "Storage janitor", &b);
  souk_buf_free(&b);
}

static void admin_janitor(souk_cmd_ctx_t *ctx) {
  int rc = souk_janitor_run(janitor_done, ctx);
  if (rc == SOUK_EBUSY) souk_cmd_replyf(ctx, "The janitor is already running.");
  else if (rc) souk_cmd_errorf(ctx, "The janitor cannot run: %s.", souk_strerror(rc));
}

static void usage_done(void *ud, int status, const char *text) {
  souk_cmd_ctx_t *ctx = ud;
  if (status) {
    souk_cmd_errorf(ctx, "The usage report failed: %s.", souk_strerror(status));
    return;
  }
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_puts(&b, text);
  reply_block(ctx, "Command usage", &b);
  souk_buf_free(&b);
}

static void admin_usage(souk_cmd_ctx_t *ctx) {
  int64_t days = souk_cmd_arg_int(ctx->args, "days", 1);
  uint64_t now = souk_unix_ms();
  uint64_t since = now - (uint64_t)days * 86400000u;
  int rc = souk_usage_report(since, 15, usage_done, ctx);
  if (rc) souk_cmd_errorf(ctx, "Usage analytics need the store (%s).", souk_strerror(rc));
}

static void admin_reload(souk_cmd_ctx_t *ctx) {
  souk_buf_t b;
  souk_buf_init(&b);
  int rc = souk_conf_reload(&b);
  SOUK_INFO("admin", "configuration reload requested by user %" PRIu64 ": %s", ctx->user_id,
            rc ? souk_strerror(rc) : "ok");
  reply_block(ctx, rc ? "Configuration NOT reloaded" : "Configuration", &b);
  souk_buf_free(&b);
}

/* ---- /admin performance, scalability, queue status ---------------------------- */

/* "<= 50 ms" for a histogram bound, "> 10 s" past the last. */
static void bound_text(double secs, char *out, size_t cap) {
  if (secs < 0)
    snprintf(out, cap, ">10s");
  else if (secs < 1)
    snprintf(out, cap, "%.0fms", secs * 1000);
  else
    snprintf(out, cap, "%.1fs", secs);
}

/* CPU and events between two /admin performance calls. */
static struct {
  uint64_t at_ms;
  double cpu_s;
  uint64_t events;
} g_perf_last;

static double cpu_seconds(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void admin_performance(souk_cmd_ctx_t *ctx) {
  souk_buf_t b;
  souk_buf_init(&b);
  uint64_t now = souk_now_ms();
  double cpu = cpu_seconds();
  uint64_t events = souk_stats_events();
  souk_memguard_stats_t mg;
  souk_memguard_stats(&mg);
  souk_buf_printf(&b, "rss %.1f MB, cpu %.1f s in total\n", (double)mg.rss / 1048576.0, cpu);
  if (g_perf_last.at_ms && now > g_perf_last.at_ms) {
    double secs = (double)(now - g_perf_last.at_ms) / 1000.0;
    souk_buf_printf(&b, "since the last look (%.0f s): cpu %.1f%%, %.1f events/s\n", secs,
                    100.0 * (cpu - g_perf_last.cpu_s) / secs,
                    (double)(events - g_perf_last.events) / secs);
  }
  souk_buf_printf(&b, "events dispatched %" PRIu64 "\n\n", events);
  g_perf_last.at_ms = now;
  g_perf_last.cpu_s = cpu;
  g_perf_last.events = events;
  souk_buf_printf(&b, "%-26s %7s %6s %6s %6s %6s %5s\n", "command", "calls", "avg", "p50", "p95",
                  "p99", "err");
  size_t n = souk_stats_commands(), shown = 0;
  for (size_t i = 0; i < n && shown < 25; i++) {
    souk_stats_command_t c;
    if (souk_stats_command_at(i, &c) || !c.calls) continue;
    char p50[16], p95[16], p99[16], avg[16];
    bound_text(souk_stats_percentile(&c, 0.5), p50, sizeof p50);
    bound_text(souk_stats_percentile(&c, 0.95), p95, sizeof p95);
    bound_text(souk_stats_percentile(&c, 0.99), p99, sizeof p99);
    bound_text(c.latency_sum_s / (double)c.calls, avg, sizeof avg);
    souk_buf_printf(&b, "%-26.26s %7" PRIu64 " %6s %6s %6s %6s %5" PRIu64 "\n", c.path, c.calls,
                    avg, p50, p95, p99, c.errors);
    shown++;
  }
  if (!shown) souk_buf_puts(&b, "(no command has run yet)\n");
  souk_buf_puts(&b, "percentiles are the histogram bounds they fall under\n");
  reply_block(ctx, "Performance", &b);
  souk_buf_free(&b);
}

static void route_line(const char *route, size_t queued, unsigned inflight, void *ud) {
  souk_buf_t *b = ud;
  souk_buf_printf(b, "  %-44.44s queued %zu in flight %u\n", route, queued, inflight);
}

static double hit_rate(const souk_cache_counters_t *c) {
  uint64_t all = c->hits + c->misses;
  return all ? 100.0 * (double)c->hits / (double)all : 0;
}

/* The cluster: this process, the lease, and every process of the bot as
 * their last heartbeats described them. */
static void cluster_lines(souk_buf_t *b) {
  souk_cluster_status_t cs;
  souk_cluster_status(&cs);
  static const char *const modes[] = {"one process, no lease", "lease in redis",
                                      "lease in postgres (advisory lock)"};
  souk_buf_printf(b, "cluster: %zu process(es), %s; this is %s\n", cs.members,
                  modes[cs.mode <= SOUK_CLUSTER_POSTGRES ? cs.mode : 0], cs.id);
  if (cs.mode != SOUK_CLUSTER_SINGLE) {
    if (!cs.connected)
      souk_buf_printf(b, "lease: %s UNREACHABLE: once-per-cluster tasks paused here\n",
                      cs.mode == SOUK_CLUSTER_REDIS ? "redis" : "postgres");
    else if (cs.leader)
      souk_buf_printf(b, "lease: held here, fencing token %" PRId64 " (ttl %" PRIu64 " ms)\n",
                      cs.fence, cs.lease_ttl_ms);
    else
      souk_buf_printf(b, "lease: held by %s\n", cs.holder[0] ? cs.holder : "(nobody yet)");
  }
  souk_cluster_member_t m[32];
  size_t n = souk_cluster_members(m, 32);
  for (size_t i = 0; i < n && i < 32; i++) {
    char shards[48];
    if (m[i].shard_first < 0)
      snprintf(shards, sizeof shards, "no shards");
    else
      snprintf(shards, sizeof shards, "shards %" PRId64 "-%" PRId64 " of %" PRId64,
               m[i].shard_first, m[i].shard_last, m[i].shard_count);
    souk_buf_printf(b, "  %s%s: %s, pid %" PRId64 ", %s, v%s, seen %" PRIu64 " ms ago%s\n",
                    m[i].id, m[i].self ? " (this one)" : "", m[i].host, m[i].pid, shards,
                    m[i].version, m[i].seen_ms_ago, m[i].leader ? ", LEADER" : "");
  }
  if (n > 32) souk_buf_printf(b, "  ... and %zu more\n", n - 32);
}

static void admin_scalability(souk_cmd_ctx_t *ctx) {
  souk_buf_t b;
  souk_buf_init(&b);
  cluster_lines(&b);
  souk_cache_t *cache = admin.cache;
  if (cache) {
    souk_cache_stats_t cs;
    souk_cache_stats(cache, &cs);
    souk_buf_printf(&b, "cache memory: %.1f%% hits (%" PRIu64 "/%" PRIu64 "), %zu entries\n",
                    hit_rate(&cs.memory), cs.memory.hits, cs.memory.hits + cs.memory.misses,
                    cs.mem_entries);
    if (cs.redis_configured)
      souk_buf_printf(&b, "cache redis: %s, %.1f%% hits, %" PRIu64 " fallbacks to memory\n",
                      cs.redis_up ? "up" : "DOWN", hit_rate(&cs.redis), cs.fallbacks);
  }
  souk_stats_rest_t r;
  souk_stats_rest(&r);
  souk_buf_printf(&b,
                  "rest: %zu queued, %zu in flight, %zu buckets; %" PRIu64 " sent, %" PRIu64
                  " retries, %" PRIu64 " failed\n",
                  r.queued, r.inflight, r.buckets, r.sent, r.retries, r.failed);
  if (!strcmp(r.global_mode, "fallback"))
    souk_buf_printf(&b, "global limit: REDIS UNREACHABLE, this process's share: %.1f/s (of %u "
                        "processes)\n",
                    r.global_per_s, r.global_processes);
  else
    souk_buf_printf(&b, "global limit: %s, %.1f/s%s\n", r.global_mode, r.global_per_s,
                    !strcmp(r.global_mode, "shared") ? " for the whole bot, counted in redis"
                                                     : " for this process");
  souk_buf_printf(&b,
                  "rate limits: 429s user %" PRIu64 " shared %" PRIu64 " global %" PRIu64
                  "; invalid requests in 10 min %u/10000%s%s\n",
                  r.r429_user, r.r429_shared, r.r429_global, r.invalid_count,
                  r.invalid_tripped ? " (REFUSING)" : "", r.global_wait_ms ? " (GLOBAL WAIT)" : "");
  souk_stats_rest_routes(route_line, &b);
  size_t shards = souk_stats_shards();
  for (size_t i = 0; i < shards; i++) {
    souk_stats_shard_t sh;
    if (souk_stats_shard_at(i, &sh)) continue;
    souk_buf_printf(&b,
                    "shard %u: %s, latency %" PRId64 " ms, %" PRIu64 " events, %" PRIu64
                    " reconnects, %" PRIu64 " resumes, send queue %" PRIu64 "\n",
                    sh.id, sh.state, sh.latency_ms, sh.events, sh.reconnects, sh.resumes,
                    sh.send_queue);
  }
  if (!shards) souk_buf_puts(&b, "no gateway shards in this process\n");
  souk_stats_handoff_t ho;
  souk_stats_handoff(&ho);
  if (ho.on)
    souk_buf_printf(&b,
                    "shard hand-off: redis %s, as %s; %" PRIu64 " shards claimed, %" PRIu64
                    " resumed a session handed on; %" PRIu64 " writes, %" PRIu64
                    " failed; %" PRIu64 " lost to another process\n",
                    ho.redis_up ? "up" : "DOWN", ho.owner, ho.claims, ho.resumed, ho.writes,
                    ho.write_failures, ho.lost);
  else
    souk_buf_puts(&b, "shard hand-off: off (sessions end with the process)\n");
  size_t failing = 0;
  for (size_t i = 0, n = souk_task_count(); i < n; i++) {
    souk_task_stats_t t;
    if (souk_task_stats_at(i, &t)) continue;
    if (t.consecutive_failures || t.over_budget) {
      souk_buf_printf(&b, "task %s: %u failures in a row, %" PRIu64 " runs over budget\n", t.name,
                      t.consecutive_failures, t.over_budget);
      failing++;
    }
  }
  souk_buf_printf(&b, "tasks: %zu, %zu with trouble\n", souk_task_count(), failing);
  reply_block(ctx, "Scalability", &b);
  souk_buf_free(&b);
}

static void admin_queue_status(souk_cmd_ctx_t *ctx) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk_stats_rest_t r;
  souk_stats_rest(&r);
  souk_buf_printf(&b, "discord rest: %zu queued, %zu in flight%s\n", r.queued, r.inflight,
                  r.global_wait_ms ? " (global rate limit)" : "");
  souk_stats_rest_routes(route_line, &b);
  souk_buf_printf(&b, "worker pool: %u jobs not finished\n", souk_work_pending());
  souk_store_t *st = admin.store;
  souk_store_pool_stats_t ps;
  if (st && souk_store_pool_stats(st, &ps) == 0)
    souk_buf_printf(&b, "store: %d of %d connections busy, %d transactions waiting\n", ps.in_use,
                    ps.size, ps.waiting);
  size_t running = 0;
  for (size_t i = 0, n = souk_task_count(); i < n; i++) {
    souk_task_stats_t t;
    if (souk_task_stats_at(i, &t) == 0 && t.running) {
      souk_buf_printf(&b, "task %s running\n", t.name);
      running++;
    }
  }
  if (!running) souk_buf_puts(&b, "no background task running\n");
  reply_block(ctx, "Queues", &b);
  souk_buf_free(&b);
}

/* ---- /admin db ------------------------------------------------------------------- */

typedef struct db_job {
  souk_cmd_ctx_t *ctx;
  int op; /* 0 health, 1 optimize */
  int rc;
  uint64_t ms;
  souk_buf_t out;
} db_job_t;

static int analyze_tx(souk_db_t *db, void *ud) {
  (void)ud;
  return souk_db_exec(db, souk_db_kind(db) == SOUK_STORE_SQLITE ? "PRAGMA optimize" : "ANALYZE");
}

/* On a pool thread: the checks and VACUUM block. */
static void db_work(void *ud) {
  db_job_t *j = ud;
  souk_store_t *st = admin.store;
  uint64_t t0 = souk_now_ms();
  if (j->op == 0) {
    j->rc = souk_store_check(st, &j->out);
  } else {
    j->rc = souk_store_vacuum(st);
    if (j->rc == 0) j->rc = souk_store_tx(st, analyze_tx, NULL);
  }
  j->ms = souk_now_ms() - t0;
}

static void db_done(void *ud, int status) {
  db_job_t *j = ud;
  if (status) {
    souk_cmd_errorf(j->ctx, "The database job did not run: %s.", souk_strerror(status));
  } else if (j->op == 0) {
    reply_block(j->ctx, j->rc ? "Database: PROBLEMS FOUND" : "Database: healthy", &j->out);
  } else if (j->rc) {
    souk_cmd_errorf(j->ctx, "Optimizing the database failed: %s.", souk_strerror(j->rc));
  } else {
    SOUK_INFO("admin", "database optimized in %" PRIu64 " ms, asked by user %" PRIu64, j->ms,
              j->ctx->user_id);
    souk_cmd_replyf(
        j->ctx, "The database was vacuumed and its statistics refreshed in %" PRIu64 " ms.", j->ms);
  }
  souk_buf_free(&j->out);
  souk_free(j);
}

static void db_run(souk_cmd_ctx_t *ctx, int op) {
  if (!admin.store) {
    souk_cmd_replyf(ctx, "There is no store in this process.");
    return;
  }
  db_job_t *j = souk_calloc(1, sizeof *j);
  j->ctx = ctx;
  j->op = op;
  souk_buf_init(&j->out);
  if (souk_work_submit(db_work, db_done, j) != 0) {
    souk_free(j);
    souk_cmd_errorf(ctx, "The worker pool refused the job.");
  }
}

static void admin_db_health(souk_cmd_ctx_t *ctx) { db_run(ctx, 0); }
static void admin_db_optimize(souk_cmd_ctx_t *ctx) { db_run(ctx, 1); }

static void admin_db_pool(souk_cmd_ctx_t *ctx) {
  souk_store_t *st = admin.store;
  souk_store_pool_stats_t ps;
  if (!st || souk_store_pool_stats(st, &ps) != 0) {
    souk_cmd_replyf(ctx, "There is no store in this process.");
    return;
  }
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_printf(&b, "backend %s\nconnections %d (%d open, %d busy)\nwaiting now %d\n",
                  souk_store_kind(st) == SOUK_STORE_SQLITE ? "sqlite" : "postgresql", ps.size,
                  ps.connected, ps.in_use, ps.waiting);
  souk_buf_printf(&b,
                  "transactions %" PRIu64 ", %" PRIu64 " waited for a connection, %" PRIu64
                  " run again, %" PRIu64 " failed\n",
                  ps.acquired, ps.waited, ps.retried, ps.failed);
  reply_block(ctx, "Database pool", &b);
  souk_buf_free(&b);
}

/* ---- /admin config set ---------------------------------------------------------------- */

static void admin_config_set(souk_cmd_ctx_t *ctx) {
  const char *key = souk_cmd_arg_str(ctx->args, "key", "");
  const char *value = souk_cmd_arg_str(ctx->args, "value", "");
  char err[300];
  int rc = souk_conf_set(key, value, ctx->user_id, err, sizeof err);
  if (rc) {
    souk_cmd_replyf(ctx, "Not changed: %s.", err[0] ? err : souk_strerror(rc));
    return;
  }
  int shared = souk_conf_shared();
  if (shared > 0)
    souk_cmd_replyf(ctx,
                    "`%s` is now `%s` on every process of the bot, until the whole bot stops "
                    "(the files are unchanged).",
                    key, value);
  else if (shared < 0)
    souk_cmd_replyf(ctx,
                    "`%s` is now `%s` here, and on the other processes of the bot once Redis is "
                    "back, until the whole bot stops (the files are unchanged).",
                    key, value);
  else
    souk_cmd_replyf(ctx, "`%s` is now `%s` until the next restart (the file is unchanged).", key,
                    value);
}

/* ---- /prefix ------------------------------------------------------------------ */

#define PREFIX_MODAL "admin:prefix"

/* The prefix is the setting commands.prefix: in effect here at once, and
 * answered once the store has it (or could not keep it). */
typedef struct prefix_job {
  souk_cmd_ctx_t *ctx;
  uint64_t guild;
} prefix_job_t;

static void prefix_saved(void *ud, int status) {
  prefix_job_t *j = ud;
  const char *p = souk_cmd_prefix(j->guild);
  souk_setting_source_t src = SOUK_SETTING_DEFAULT;
  char v[SOUK_CMD_PREFIX_MAX * 4 + 1];
  souk_setting_get(j->guild, "commands.prefix", v, sizeof v, &src);
  if (status)
    souk_cmd_errorf(j->ctx, "The prefix could not be saved (%s); nothing changed.",
                    souk_strerror(status));
  else if (src == SOUK_SETTING_SET)
    souk_cmd_replyf(j->ctx, "Message commands now start with `%s` here, e.g. `%sping`.", p, p);
  else
    souk_cmd_replyf(j->ctx, "The prefix is back to the default, `%s`.", p);
  souk_free(j);
}

static void prefix_save(souk_cmd_ctx_t *ctx, const char *value) {
  char err[160] = "";
  int rc = value && value[0]
               ? souk_setting_set(ctx->guild_id, "commands.prefix", value, ctx->user_id, err,
                                  sizeof err)
               : souk_setting_reset(ctx->guild_id, "commands.prefix", ctx->user_id);
  if (rc == SOUK_EINVAL) {
    souk_cmd_replyf(ctx, "A prefix is 1 to %d bytes without spaces or backticks%s%s%s.",
                    SOUK_CMD_PREFIX_MAX, err[0] ? " (" : "", err, err[0] ? ")" : "");
    return;
  }
  prefix_job_t *j = souk_calloc(1, sizeof *j);
  j->ctx = ctx;
  j->guild = ctx->guild_id;
  if (rc == 0) rc = souk_setting_flush(ctx->guild_id, "commands.prefix", prefix_saved, j);
  if (rc) {
    souk_free(j);
    souk_cmd_errorf(ctx, "The prefix cannot be changed now (%s).", souk_strerror(rc));
  }
}

static void prefix_show(souk_cmd_ctx_t *ctx) {
  souk_cmd_replyf(ctx, "Message commands start with `%s` here (or a mention of the bot).",
                  souk_cmd_prefix(ctx->guild_id));
}

static void prefix_set(souk_cmd_ctx_t *ctx) {
  const char *v = souk_cmd_arg_str(ctx->args, "value", NULL);
  if (v) {
    prefix_save(ctx, v);
    return;
  }
  static const souk_modal_field_t fields[] = {
      {.custom_id = "value",
       .label = "New prefix",
       .required = true,
       .min_length = 1,
       .max_length = SOUK_CMD_PREFIX_MAX,
       .placeholder = "!"},
  };
  souk_modal_t m = {.custom_id = PREFIX_MODAL,
                    .title = "Command prefix",
                    .fields = fields,
                    .nfields = 1};
  souk_cmd_modal(ctx, &m);
}

static void prefix_modal(souk_cmd_ctx_t *ctx) {
  if (!(ctx->permissions & (SOUK_PERM_MANAGE_GUILD | SOUK_PERM_ADMINISTRATOR)) ||
      ctx->guild_id == 0) {
    souk_cmd_replyf(ctx, "You need the Manage Server permission to change the prefix.");
    return;
  }
  prefix_save(ctx, souk_cmd_field_value(ctx, "value"));
}

static void prefix_reset(souk_cmd_ctx_t *ctx) { prefix_save(ctx, ""); }

/* ---- tables ---------------------------------------------------------------- */

static const souk_cmd_option_t opt_task[] = {
    {.name = "task", .description = "Task name", .type = SOUK_OPT_STRING, .required = true,
     .autocomplete = true, .max_length = 64},
    {0},
};
static const souk_cmd_option_t opt_breaker[] = {
    {.name = "name", .description = "Breaker name", .type = SOUK_OPT_STRING, .required = true,
     .max_length = 64},
    {0},
};
static const souk_cmd_option_t opt_pattern[] = {
    {.name = "pattern", .description = "Glob of keys, e.g. market:* (default: everything)",
     .type = SOUK_OPT_STRING, .max_length = 128},
    {0},
};
static const souk_cmd_option_t opt_days[] = {
    {.name = "days", .description = "How many days back (default 1)", .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(1, 30)},
    {0},
};

static const souk_cmd_option_t opt_config_set[] = {
    {.name = "key",
     .description = "section.key, e.g. economy.daily.amount",
     .type = SOUK_OPT_STRING,
     .required = true,
     .max_length = 96},
    {.name = "value",
     .description = "The new value, written as in the config file",
     .type = SOUK_OPT_STRING,
     .required = true,
     .max_length = 1000},
    {0},
};

static const souk_command_t admin_db_subs[] = {
    {.name = "health",
     .description = "Check the database and its schema",
     .handler = admin_db_health},
    {.name = "optimize",
     .description = "Vacuum the database and refresh its statistics",
     .handler = admin_db_optimize},
    {.name = "pool",
     .description = "Connections of the database pool and their use",
     .handler = admin_db_pool},
    {0},
};
static const souk_command_t admin_queue_subs[] = {
    {.name = "status",
     .description = "What waits: Discord requests, workers, the database",
     .handler = admin_queue_status},
    {0},
};
static const souk_command_t admin_config_subs[] = {
    {.name = "set",
     .description = "Change a key that may change at run time (until restart)",
     .options = opt_config_set,
     .handler = admin_config_set},
    {0},
};

static const souk_command_t admin_subs[] = {
    {.name = "performance",
     .description = "Latency per command, CPU, memory and event rate",
     .handler = admin_performance},
    {.name = "scalability",
     .description = "Cache hit rates, Discord queues and limits, shards, task health",
     .handler = admin_scalability},
    {.name = "db", .description = "The database", .subcommands = admin_db_subs},
    {.name = "queue", .description = "Queues", .subcommands = admin_queue_subs},
    {.name = "config", .description = "The configuration", .subcommands = admin_config_subs},
    {.name = "health", .description = "Health of every component", .handler = admin_health},
    {.name = "tasks", .description = "Background tasks: runs, failures, next run",
     .handler = admin_tasks},
    {.name = "task-restart", .description = "Run a background task again now, clearing its backoff",
     .options = opt_task, .handler = admin_task_restart, .autocomplete = complete_tasks},
    {.name = "errors", .description = "Error statistics and the latest errors",
     .handler = admin_errors},
    {.name = "breakers", .description = "Circuit breakers and their state",
     .handler = admin_breakers},
    {.name = "breaker-reset", .description = "Close a circuit breaker", .options = opt_breaker,
     .handler = admin_breaker_reset},
    {.name = "memory", .description = "Memory use, limits and the cache",
     .handler = admin_memory},
    {.name = "cache-clear", .description = "Clear cache entries by pattern", .options = opt_pattern,
     .handler = admin_cache_clear},
    {.name = "janitor", .description = "Run the storage janitor now and show what it freed",
     .handler = admin_janitor},
    {.name = "usage", .description = "Command usage: calls, errors and latency",
     .options = opt_days, .handler = admin_usage},
    {.name = "reload", .description = "Reload the configuration (like SIGHUP)",
     .handler = admin_reload},
    {0},
};

static const souk_cmd_option_t opt_prefix[] = {
    {.name = "value", .description = "The new prefix (leave empty to open a form)",
     .type = SOUK_OPT_STRING, .min_length = 1, .max_length = SOUK_CMD_PREFIX_MAX},
    {0},
};

static const souk_command_t prefix_subs[] = {
    {.name = "show", .description = "Show this server's prefix for message commands",
     .handler = prefix_show},
    {.name = "set", .description = "Set this server's prefix for message commands",
     .options = opt_prefix, .permissions = SOUK_PERM_MANAGE_GUILD, .handler = prefix_set},
    {.name = "reset", .description = "Go back to the default prefix",
     .permissions = SOUK_PERM_MANAGE_GUILD, .handler = prefix_reset},
    {0},
};

static const char *const admin_usage_ex[] = {"/admin health", "/admin tasks",
                                             "/admin task-restart task:usage.flush",
                                             "/admin usage days:7", NULL};
static const char *const prefix_usage_ex[] = {"/prefix show", "/prefix set value:?",
                                              "/prefix reset", NULL};

static const souk_command_t admin_commands[] = {
    {.name = "admin",
     .description = "Look inside souk and steer it (bot owners)",
     .category = "Admin",
     .usage = admin_usage_ex,
     .flags = SOUK_CMD_OWNER_ONLY | SOUK_CMD_EPHEMERAL,
     .subcommands = admin_subs},
    {.name = "prefix",
     .description = "This server's prefix for message commands",
     .category = "Server",
     .usage = prefix_usage_ex,
     .flags = SOUK_CMD_GUILD_ONLY,
     .subcommands = prefix_subs},
    {0},
};

/* The old bot's names, for prefix messages and the console. */
static const souk_cmd_alias_t admin_aliases[] = {
    {"performance", "admin performance"}, {"scalability", "admin scalability"},
    {"db health", "admin db health"},     {"db optimize", "admin db optimize"},
    {"db pool", "admin db pool"},         {"cache clear", "admin cache-clear"},
    {"commands stats", "admin usage"},    {0},
};

static const souk_cmd_component_t admin_components[] = {
    {PREFIX_MODAL, prefix_modal},
    {0},
};

static int admin_init(const souk_module_ctx_t *ctx) {
  admin.store = ctx->store;
  admin.cache = ctx->cache;
  return 0;
}

static void admin_shutdown(const souk_module_ctx_t *ctx) { memset(&admin, 0, sizeof admin); }

const souk_module_t souk_admin_module = {
    .abi = SOUK_MODULE_ABI,
    .name = "admin",
    .commands = admin_commands,
    .components = admin_components,
    .aliases = admin_aliases,
    .init = admin_init,
    .shutdown = admin_shutdown,
};
