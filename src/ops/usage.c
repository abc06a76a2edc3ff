/* Usage analytics (see usage.h). */
#include "ops/usage.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/recovery.h"
#include "souk/usage.h"

souk__usage_conf_t souk__usage_conf;

#define K(field) offsetof(souk__usage_conf_t, field)
const souk_conf_key_t souk__usage_conf_keys[] = {
    {"enabled", SOUK_CONF_BOOL, K(enabled), "true", 0, 0, NULL, 0,
     "count command usage per command, user and guild, per hour and day"},
    {"flush_every", SOUK_CONF_DURATION, K(flush_every_ms), "5m", 1000, 86400000, NULL, 0,
     "how often usage counts are added to the store (and at shutdown)"},
    {"hourly_retention", SOUK_CONF_DURATION, K(hourly_retention_ms), "30d", 3600000, 0, NULL,
     SOUK_CONF_RUNTIME, "hourly usage rows older than this are deleted"},
    {"daily_retention", SOUK_CONF_DURATION, K(daily_retention_ms), "400d", 86400000, 0, NULL,
     SOUK_CONF_RUNTIME, "daily usage rows older than this are deleted"},
    {"max_rows", SOUK_CONF_INT, K(max_rows), "100000", 100, 100000000, NULL, 0,
     "pending rows kept in memory between flushes; beyond it, new users are counted as user 0"},
    {0},
};
#undef K

#define HOUR_MS UINT64_C(3600000)
#define DAY_MS UINT64_C(86400000)

typedef struct row {
  char period; /* 'h' or 'd' */
  uint64_t start_ms;
  char command[100];
  uint64_t guild, user;
  uint64_t calls, errors, refused, lat_sum, lat_max;
} row_t;

/* Open addressing; rows are plain values, so a table moves out for a flush
 * by swapping two pointers. */
typedef struct table {
  row_t *rows;
  size_t cap, n;
} table_t;

static struct {
  table_t live;
  souk_store_t *st;
  bool flushing, stopped;
  struct flush *retry; /* a batch whose flush failed, kept with its key */
  uint64_t flush_seq, flush_nonce;
  uint64_t folded;
} g;

static uint64_t row_hash(char period, uint64_t start, const char *cmd, uint64_t guild,
                         uint64_t user) {
  uint64_t h = UINT64_C(1469598103934665603);
  h = (h ^ (unsigned char)period) * UINT64_C(1099511628211);
  for (const char *p = cmd; *p; p++) h = (h ^ (unsigned char)*p) * UINT64_C(1099511628211);
  h ^= start * UINT64_C(0x9E3779B97F4A7C15);
  h ^= guild * UINT64_C(0xC2B2AE3D27D4EB4F);
  h ^= user * UINT64_C(0x165667B19E3779F9);
  return h ^ (h >> 31);
}

static row_t *slot(table_t *t, char period, uint64_t start, const char *cmd, uint64_t guild,
                   uint64_t user, bool create);

static void grow(table_t *t) {
  table_t nt = {.cap = t->cap ? t->cap * 2 : 16};
  nt.rows = souk_calloc(nt.cap, sizeof *nt.rows);
  for (size_t i = 0; i < t->cap; i++) {
    row_t *r = &t->rows[i];
    if (!r->period) continue;
    row_t *d = slot(&nt, r->period, r->start_ms, r->command, r->guild, r->user, true);
    *d = *r;
  }
  souk_free(t->rows);
  *t = nt;
}

static row_t *slot(table_t *t, char period, uint64_t start, const char *cmd, uint64_t guild,
                   uint64_t user, bool create) {
  if (create && (t->n + 1) * 4 > t->cap * 3) grow(t);
  if (!t->cap) return NULL;
  size_t mask = t->cap - 1;
  for (size_t i = row_hash(period, start, cmd, guild, user) & mask;; i = (i + 1) & mask) {
    row_t *r = &t->rows[i];
    if (!r->period) {
      if (!create) return NULL;
      r->period = period;
      r->start_ms = start;
      snprintf(r->command, sizeof r->command, "%s", cmd);
      r->guild = guild;
      r->user = user;
      t->n++;
      return r;
    }
    if (r->period == period && r->start_ms == start && r->guild == guild && r->user == user &&
        strcmp(r->command, cmd) == 0)
      return r;
  }
}

static void add(table_t *t, char period, uint64_t start, const char *cmd, uint64_t guild,
                uint64_t user, uint64_t calls, uint64_t errors, uint64_t refused, uint64_t lat_sum,
                uint64_t lat_max) {
  row_t *r = slot(t, period, start, cmd, guild, user, false);
  if (!r) {
    if (souk__usage_conf.max_rows > 0 && t->n >= (size_t)souk__usage_conf.max_rows && user != 0) {
      /* Bounded memory: an unexpected flood of distinct users between two
       * flushes is still counted, per command and guild. */
      g.folded++;
      user = 0;
      r = slot(t, period, start, cmd, guild, 0, false);
    }
    if (!r) r = slot(t, period, start, cmd, guild, user, true);
  }
  r->calls += calls;
  r->errors += errors;
  r->refused += refused;
  r->lat_sum += lat_sum;
  if (lat_max > r->lat_max) r->lat_max = lat_max;
}

void souk__usage_record(const char *command, uint64_t user_id, uint64_t guild_id, bool error,
                        bool refused, uint64_t latency_ms, uint64_t unix_ms) {
  if (!souk__usage_conf.enabled || !command) return;
  uint64_t e = error ? 1 : 0, r = refused ? 1 : 0;
  add(&g.live, 'h', unix_ms - unix_ms % HOUR_MS, command, guild_id, user_id, 1, e, r, latency_ms,
      latency_ms);
  add(&g.live, 'd', unix_ms - unix_ms % DAY_MS, command, guild_id, user_id, 1, e, r, latency_ms,
      latency_ms);
}

static size_t retry_rows(void);
size_t souk__usage_pending(void) { return g.live.n + retry_rows(); }

/* ---- flushing ------------------------------------------------------------------ */

typedef struct flush {
  table_t t;
  char key[64];
  uint64_t now;
  int64_t hour_cut, day_cut; /* retention, fixed when the batch is taken */
  souk_task_ctx_t *task;
} flush_t;

static int flush_fn(souk_db_t *db, void *ud) {
  flush_t *f = ud;
  int rc = souk_db_once(db, f->key);
  if (rc == SOUK_EEXIST) return 0; /* this batch is in already */
  if (rc) return rc;
  souk_stmt_t *s;
  rc = souk_db_prepare(db,
                       "INSERT INTO usage (period, start_ms, command, guild_id, user_id, calls, "
                       "errors, refused, latency_ms_sum, latency_ms_max) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                       "ON CONFLICT (period, start_ms, command, guild_id, user_id) DO UPDATE SET "
                       "calls = usage.calls + excluded.calls, "
                       "errors = usage.errors + excluded.errors, "
                       "refused = usage.refused + excluded.refused, "
                       "latency_ms_sum = usage.latency_ms_sum + excluded.latency_ms_sum, "
                       "latency_ms_max = CASE WHEN excluded.latency_ms_max > usage.latency_ms_max "
                       "THEN excluded.latency_ms_max ELSE usage.latency_ms_max END",
                       &s);
  if (rc) return rc;
  for (size_t i = 0; i < f->t.cap && rc == 0; i++) {
    row_t *r = &f->t.rows[i];
    if (!r->period) continue;
    souk_stmt_reset(s);
    souk_stmt_bind_text(s, 1, r->period == 'h' ? "hour" : "day", SIZE_MAX);
    souk_stmt_bind_int64(s, 2, (int64_t)r->start_ms);
    souk_stmt_bind_text(s, 3, r->command, SIZE_MAX);
    souk_stmt_bind_int64(s, 4, (int64_t)r->guild);
    souk_stmt_bind_int64(s, 5, (int64_t)r->user);
    souk_stmt_bind_int64(s, 6, (int64_t)r->calls);
    souk_stmt_bind_int64(s, 7, (int64_t)r->errors);
    souk_stmt_bind_int64(s, 8, (int64_t)r->refused);
    souk_stmt_bind_int64(s, 9, (int64_t)r->lat_sum);
    souk_stmt_bind_int64(s, 10, (int64_t)r->lat_max);
    int st = souk_stmt_step(s);
    if (st < 0) rc = st;
  }
  souk_stmt_finalize(s);
  if (rc) return rc;
  /* Retention, in the same transaction. */
  souk_stmt_t *d;
  rc = souk_db_prepare(db, "DELETE FROM usage WHERE period = ? AND start_ms < ?", &d);
  if (rc) return rc;
  int64_t hcut = f->hour_cut, dcut = f->day_cut;
  souk_stmt_bind_text(d, 1, "hour", SIZE_MAX);
  souk_stmt_bind_int64(d, 2, hcut);
  if (souk_stmt_step(d) < 0) rc = SOUK_EIO;
  souk_stmt_reset(d);
  souk_stmt_bind_text(d, 1, "day", SIZE_MAX);
  souk_stmt_bind_int64(d, 2, dcut);
  if (rc == 0 && souk_stmt_step(d) < 0) rc = SOUK_EIO;
  souk_stmt_finalize(d);
  return rc;
}

/* Take the live table for a flush. */
static flush_t *flush_take(void) {
  flush_t *f = souk_calloc(1, sizeof *f);
  f->t = g.live;
  memset(&g.live, 0, sizeof g.live);
  f->now = souk_unix_ms();
  f->hour_cut = (int64_t)f->now - souk__usage_conf.hourly_retention_ms;
  f->day_cut = (int64_t)f->now - souk__usage_conf.daily_retention_ms;
  if (!g.flush_nonce) g.flush_nonce = souk_unix_ms() ^ ((uint64_t)(uintptr_t)f << 16);
  snprintf(f->key, sizeof f->key, "usage:%016" PRIx64 ":%" PRIu64, g.flush_nonce, ++g.flush_seq);
  return f;
}

/* The next batch to write: a failed one first, with its original key
 * (its commit may have happened: the key makes the retry a no-op then),
 * else what is live; NULL when there is nothing. */
static flush_t *next_batch(void) {
  if (g.retry) {
    flush_t *f = g.retry;
    g.retry = NULL;
    return f;
  }
  return g.live.n ? flush_take() : NULL;
}

static size_t retry_rows(void) { return g.retry ? g.retry->t.n : 0; }

static void flush_free(flush_t *f) {
  souk_free(f->t.rows);
  souk_free(f);
}

/* Keep a failed batch, whole and with its key, for the next flush.  Its
 * counts are never merged back into the live table: if the commit did
 * happen, they would be added twice. */
static void flush_keep(flush_t *f) {
  f->task = NULL;
  if (g.retry) flush_free(g.retry); /* cannot happen: one flush at a time */
  g.retry = f;
}

static void report_flushed(void *ud, int status);
/* A report waiting for the flush it started. */
static void *pending_report;
/* Guild queries waiting for a flush to end (souk_usage_guild). */
typedef struct after_flush {
  void (*fn)(void *ud, int status);
  void *ud;
  struct after_flush *next;
} after_flush_t;
static after_flush_t *g_after;

static void run_after_flush(int status) {
  after_flush_t *a = g_after;
  g_after = NULL;
  while (a) {
    after_flush_t *next = a->next;
    a->fn(a->ud, status);
    souk_free(a);
    a = next;
  }
}

static void flush_done_cb(void *ud, int status) {
  flush_t *f = ud;
  g.flushing = false;
  souk_task_ctx_t *task = f->task;
  if (g.stopped) {
    /* Stopped meanwhile: the counts go with the process. */
    flush_free(f);
  } else if (status) {
    SOUK_WARN("usage", "could not save %zu usage rows (%s); keeping them for the next flush",
              f->t.n, souk_strerror(status));
    flush_keep(f);
  } else {
    if (f->t.n) SOUK_DEBUG("usage", "saved %zu usage rows", f->t.n);
    flush_free(f);
  }
  if (pending_report) {
    void *a = pending_report;
    pending_report = NULL;
    report_flushed(a, status);
  }
  run_after_flush(status);
  if (task) souk_task_done(task, status);
}

static void flush_task(souk_task_ctx_t *ctx) {
  /* While the store is known to be down, keep counting in memory. */
  if (souk_recovery_backoff_left("store") > 0) {
    souk_task_done(ctx, 0);
    return;
  }
  flush_t *f = g.st && !g.flushing ? next_batch() : NULL;
  if (!f) {
    souk_task_done(ctx, 0);
    return;
  }
  f->task = ctx;
  g.flushing = true;
  if (souk_store_tx_async(g.st, flush_fn, flush_done_cb, f) != 0) {
    g.flushing = false;
    flush_keep(f);
    souk_task_done(ctx, SOUK_EIO);
  }
}

int souk__usage_flush_sync(void) {
  if (!g.st || g.flushing) return 0;
  int rc = 0;
  /* At most two batches: a failed one, then the live one. */
  for (int i = 0; i < 2 && rc == 0; i++) {
    flush_t *f = next_batch();
    if (!f) break;
    rc = souk_store_tx(g.st, flush_fn, f);
    if (rc) {
      SOUK_WARN("usage", "could not save %zu usage rows: %s", f->t.n, souk_strerror(rc));
      flush_keep(f);
    } else {
      flush_free(f);
    }
  }
  return rc;
}

static souk_task_t g_tasks[2];

const souk_task_t *souk__usage_tasks(void) {
  memset(g_tasks, 0, sizeof g_tasks);
  if (!souk__usage_conf.enabled || !g.st) return g_tasks;
  uint64_t every = souk__usage_conf.flush_every_ms > 0 ? (uint64_t)souk__usage_conf.flush_every_ms
                                                       : 300000;
  g_tasks[0] = (souk_task_t){.name = "usage.flush",
                             .period_ms = every,
                             .jitter_ms = every / 10,
                             .budget_ms = 10000,
                             .handler = flush_task};
  return g_tasks;
}

void souk__usage_start(souk_store_t *st) {
  g.st = st;
  g.stopped = false;
}

void souk__usage_stop(void) {
  souk_free(g.live.rows);
  memset(&g.live, 0, sizeof g.live);
  if (g.retry) {
    SOUK_WARN("usage", "%zu usage rows could not be saved before stopping", g.retry->t.n);
    flush_free(g.retry);
    g.retry = NULL;
  }
  g.st = NULL;
  g.stopped = true;
  if (g.folded) SOUK_INFO("usage", "%" PRIu64 " usage counts were folded into user 0", g.folded);
  g.folded = 0;
}

/* ---- report ------------------------------------------------------------------- */

typedef struct report {
  uint64_t since;
  size_t top;
  souk_buf_t *out;
} report_t;

static int report_fn(souk_db_t *db, void *ud) {
  report_t *r = ud;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           "SELECT command, SUM(calls), SUM(errors), SUM(refused), "
                           "SUM(latency_ms_sum), MAX(latency_ms_max), COUNT(DISTINCT user_id) "
                           "FROM usage WHERE period = 'hour' AND start_ms >= ? "
                           "GROUP BY command ORDER BY SUM(calls) DESC, command LIMIT ?",
                           &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, (int64_t)r->since);
  souk_stmt_bind_int64(s, 2, (int64_t)r->top);
  size_t n = 0;
  size_t start = r->out->len;
  while ((rc = souk_stmt_step(s)) == 1) {
    int64_t calls = souk_stmt_column_int64(s, 1), errors = souk_stmt_column_int64(s, 2);
    int64_t refused = souk_stmt_column_int64(s, 3), lat = souk_stmt_column_int64(s, 4);
    int64_t users = souk_stmt_column_int64(s, 6);
    souk_buf_printf(r->out,
                    "%-24s %6" PRId64 " calls  %4" PRId64 ".%01" PRId64 "%% errors  %4" PRId64
                    " refused  avg %5" PRId64 " ms  max %6" PRId64 " ms  %4" PRId64 " users\n",
                    souk_stmt_column_text(s, 0, NULL), calls, calls ? errors * 100 / calls : 0,
                    calls ? errors * 1000 / calls % 10 : 0, refused, calls ? lat / calls : 0,
                    souk_stmt_column_int64(s, 5), users);
    n++;
  }
  souk_stmt_finalize(s);
  if (rc < 0) {
    r->out->len = start;
    return rc;
  }
  if (n == 0) souk_buf_puts(r->out, "no commands were used in this period\n");
  return 0;
}

int souk__usage_report(souk_store_t *st, uint64_t since_ms, size_t top, souk_buf_t *out) {
  if (!st) return SOUK_EINVAL;
  report_t r = {since_ms, top ? top : 10, out};
  return souk_store_read(st, report_fn, &r);
}

typedef struct async_report {
  report_t r;
  souk_buf_t text;
  souk_usage_report_cb cb;
  void *ud;
} async_report_t;

static int async_report_fn(souk_db_t *db, void *ud) {
  async_report_t *a = ud;
  souk_buf_reset(&a->text);
  return report_fn(db, &a->r);
}

static void async_report_done(void *ud, int status) {
  async_report_t *a = ud;
  a->cb(a->ud, status, status ? NULL : (a->text.data ? a->text.data : ""));
  souk_buf_free(&a->text);
  souk_free(a);
}

static void report_flushed(void *ud, int status) {
  async_report_t *a = ud;
  if (status) SOUK_WARN("usage", "report: pending counts not saved first (%s)",
                        souk_strerror(status));
  if (!g.st) {
    async_report_done(a, SOUK_ESTOPPED);
    return;
  }
  if (souk_store_read_async(g.st, async_report_fn, async_report_done, a) != 0)
    async_report_done(a, SOUK_EIO);
}

int souk_usage_report(uint64_t since_unix_ms, size_t top, souk_usage_report_cb cb, void *ud) {
  if (!g.st || !cb) return SOUK_EINVAL;
  async_report_t *a = souk_calloc(1, sizeof *a);
  souk_buf_init(&a->text);
  a->r = (report_t){since_unix_ms, top ? top : 10, &a->text};
  a->cb = cb;
  a->ud = ud;
  /* Counts still in memory go in first, so the report is current. */
  flush_t *f = !g.flushing && !pending_report ? next_batch() : NULL;
  if (f) {
    g.flushing = true;
    f->task = NULL;
    if (souk_store_tx_async(g.st, flush_fn, flush_done_cb, f) == 0) {
      /* The pool could run the read before the flush; chain it instead,
       * so it sees the flushed rows. */
      pending_report = a;
      return 0;
    }
    g.flushing = false;
    flush_keep(f);
  }
  report_flushed(a, 0);
  return 0;
}

/* ---- one guild's usage ---------------------------------------------------------- */

typedef struct guild_q {
  uint64_t guild, since;
  souk_usage_guild_t out;
  souk_usage_guild_cb cb;
  void *ud;
} guild_q_t;

static int guild_fn(souk_db_t *db, void *ud) {
  guild_q_t *q = ud;
  memset(&q->out, 0, sizeof q->out);
  /* Hourly rows: the one holding since counts whole. */
  uint64_t hour0 = q->since - q->since % HOUR_MS;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           "SELECT command, SUM(calls), SUM(errors) FROM usage "
                           "WHERE period = 'hour' AND guild_id = ? AND start_ms >= ? "
                           "GROUP BY command ORDER BY SUM(calls) DESC, command",
                           &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, (int64_t)q->guild);
  souk_stmt_bind_int64(s, 2, (int64_t)hour0);
  while ((rc = souk_stmt_step(s)) == 1) {
    uint64_t calls = (uint64_t)souk_stmt_column_int64(s, 1);
    q->out.calls += calls;
    q->out.errors += (uint64_t)souk_stmt_column_int64(s, 2);
    if (q->out.ntop < SOUK_USAGE_TOP_MAX) {
      const char *cmd = souk_stmt_column_text(s, 0, NULL);
      snprintf(q->out.top[q->out.ntop].command, sizeof q->out.top[0].command, "%s",
               cmd ? cmd : "?");
      q->out.top[q->out.ntop++].calls = calls;
    }
  }
  souk_stmt_finalize(s);
  if (rc < 0) return rc;
  rc = souk_db_prepare(db,
                       "SELECT COUNT(DISTINCT user_id) FROM usage "
                       "WHERE period = 'hour' AND guild_id = ? AND start_ms >= ?",
                       &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, (int64_t)q->guild);
  souk_stmt_bind_int64(s, 2, (int64_t)hour0);
  if ((rc = souk_stmt_step(s)) == 1) q->out.users = (uint64_t)souk_stmt_column_int64(s, 0);
  souk_stmt_finalize(s);
  if (rc < 0) return rc;
  uint64_t day0 = q->since - q->since % DAY_MS;
  uint64_t now = souk_unix_ms();
  uint64_t oldest = now - now % DAY_MS - (SOUK_USAGE_DAYS_MAX - 1) * DAY_MS;
  if (day0 < oldest) day0 = oldest;
  rc = souk_db_prepare(db,
                       "SELECT start_ms, SUM(calls), COUNT(DISTINCT user_id) FROM usage "
                       "WHERE period = 'day' AND guild_id = ? AND start_ms >= ? "
                       "GROUP BY start_ms ORDER BY start_ms",
                       &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, (int64_t)q->guild);
  souk_stmt_bind_int64(s, 2, (int64_t)day0);
  while ((rc = souk_stmt_step(s)) == 1 && q->out.ndays < SOUK_USAGE_DAYS_MAX) {
    q->out.days[q->out.ndays].day_ms = (uint64_t)souk_stmt_column_int64(s, 0);
    q->out.days[q->out.ndays].calls = (uint64_t)souk_stmt_column_int64(s, 1);
    q->out.days[q->out.ndays].users = (uint64_t)souk_stmt_column_int64(s, 2);
    q->out.ndays++;
  }
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

static void guild_done(void *ud, int status) {
  guild_q_t *q = ud;
  q->cb(q->ud, status, status ? NULL : &q->out);
  souk_free(q);
}

/* After the flush (whatever its outcome: unsaved counts are simply not in
 * the report yet), read the store. */
static void guild_read(void *ud, int status) {
  guild_q_t *q = ud;
  if (status)
    SOUK_WARN("usage", "guild report: pending counts not saved first (%s)", souk_strerror(status));
  if (!g.st) {
    guild_done(q, SOUK_ESTOPPED);
    return;
  }
  if (souk_store_read_async(g.st, guild_fn, guild_done, q) != 0) guild_done(q, SOUK_EIO);
}

int souk_usage_guild(uint64_t guild_id, uint64_t since_unix_ms, souk_usage_guild_cb cb, void *ud) {
  if (!g.st || !cb) return SOUK_EINVAL;
  guild_q_t *q = souk_calloc(1, sizeof *q);
  q->guild = guild_id;
  q->since = since_unix_ms;
  q->cb = cb;
  q->ud = ud;
  if (!g.flushing) {
    flush_t *f = next_batch();
    if (!f) {
      guild_read(q, 0);
      return 0;
    }
    g.flushing = true;
    f->task = NULL;
    if (souk_store_tx_async(g.st, flush_fn, flush_done_cb, f) != 0) {
      g.flushing = false;
      flush_keep(f);
      guild_read(q, SOUK_EIO);
      return 0;
    }
  }
  /* A flush is running (ours or the task's): read once it is done. */
  after_flush_t *a = souk_calloc(1, sizeof *a);
  a->fn = guild_read;
  a->ud = q;
  a->next = g_after;
  g_after = a;
  return 0;
}
