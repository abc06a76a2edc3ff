/* Usage analytics (src/ops/usage.c): counting in memory, flushing into a
 * SQLite store in a temp dir (migrations apply on open), hour and day
 * buckets, additive upserts, folding into user 0, failed flushes, the
 * idempotency key, retention and the report.
 *
 * usage.c is included to reach flush_take / flush_fn. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>
/* clang-format on */

#include "ops/usage.c"
#include "souk/store.h"
#include "store/store_int.h"

#define HOUR UINT64_C(3600000)
#define DAY  UINT64_C(86400000)

typedef struct fx {
  char dir[64];
  souk_store_t *st;
  uint64_t now; /* a recent instant, inside the retention windows */
} fx_t;

static fx_t F;

static int exec_fn(souk_db_t *db, void *ud) { return souk_db_exec(db, ud); }

static void sql_exec(const char *sql) {
  int rc = souk_store_tx(F.st, exec_fn, (void *)sql);
  if (rc) fail_msg("%s: %s", sql, souk_strerror(rc));
}

typedef struct q {
  const char *sql;
  int64_t out;
  bool found;
} q_t;

static int int_fn(souk_db_t *db, void *ud) {
  q_t *q = ud;
  souk_stmt_t *s;
  q->found = false;
  int rc = souk_db_prepare(db, q->sql, &s);
  if (rc) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    q->found = souk_stmt_column_type(s, 0) != SOUK_COL_NULL;
    q->out = souk_stmt_column_int64(s, 0);
  }
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

/* The first column of the first row, or -1 when there is none (or NULL). */
static int64_t sql_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t sql_int(const char *fmt, ...) {
  char sql[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  q_t q = {sql, 0, false};
  int rc = souk_store_read(F.st, int_fn, &q);
  if (rc) fail_msg("%s: %s", sql, souk_strerror(rc));
  return q.found ? q.out : -1;
}

static int setup(void **state) {
  (void)state;
  souk_log_set_level(SOUK_LOG_OFF);
  memset(&F, 0, sizeof F);
  snprintf(F.dir, sizeof F.dir, "/tmp/souk-usage-XXXXXX");
  assert_non_null(mkdtemp(F.dir));
  souk_store_conf_t conf;
  souk_store_conf_defaults(&conf);
  conf.retry_base_ms = 1;
  conf.retry_max_ms = 5;
  conf.backup_before_migrate = false;
  int rc = souk_store_open(&conf, F.dir, &F.st);
  if (rc) fail_msg("souk_store_open: %s", souk_strerror(rc));
  souk__usage_conf = (souk__usage_conf_t){.enabled = true,
                                        .flush_every_ms = 300000,
                                        .hourly_retention_ms = 30 * (int64_t)DAY,
                                        .daily_retention_ms = 400 * (int64_t)DAY,
                                        .max_rows = 100000};
  /* Ten minutes into an hour, two hours ago: well inside retention, and
   * not across midnight with the +1 h record below. */
  uint64_t now = souk_unix_ms();
  F.now = now - now % DAY - DAY + 10 * HOUR + 10 * 60000;
  souk__usage_start(F.st);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  atomic_store(&souk__store_fault_commit_lost, 0);
  souk__usage_stop();
  while (souk_work_pending())
    uv_run(souk_loop(), UV_RUN_ONCE);
  souk_store_close(F.st);
  F.st = NULL;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", F.dir);
  assert_int_equal(system(cmd), 0);
  souk_store_registry_clear();
  return 0;
}

static int64_t calls_of(const char *period, uint64_t start, const char *cmd, uint64_t guild,
                        uint64_t user) {
  return sql_int("SELECT calls FROM usage WHERE period = '%s' AND start_ms = %" PRIu64
                 " AND command = '%s' AND guild_id = %" PRIu64 " AND user_id = %" PRIu64,
                 period, start, cmd, guild, user);
}

/* ---- tests ---------------------------------------------------------------------- */

/* Rows per hour and per day, with calls, errors, refusals, latency sum and
 * max; the flush empties memory. */
static void test_flush_rows(void **state) {
  (void)state;
  uint64_t t = F.now;
  uint64_t h = t - t % HOUR, d = t - t % DAY;
  souk__usage_record("ping", 1, 10, false, false, 10, t);
  souk__usage_record("ping", 1, 10, true, false, 30, t + 1000);
  souk__usage_record("market buy", 2, 0, false, true, 5, t);
  assert_int_equal(souk__usage_pending(), 4); /* 2 keys x (hour, day) */
  assert_int_equal(souk__usage_flush_sync(), 0);
  assert_int_equal(souk__usage_pending(), 0);
  assert_int_equal(sql_int("SELECT count(*) FROM usage"), 4);
  assert_int_equal(calls_of("hour", h, "ping", 10, 1), 2);
  assert_int_equal(calls_of("day", d, "ping", 10, 1), 2);
  assert_int_equal(sql_int("SELECT errors FROM usage WHERE command = 'ping' AND period = 'hour'"),
                   1);
  assert_int_equal(sql_int("SELECT refused FROM usage WHERE command = 'ping' AND period = 'day'"),
                   0);
  assert_int_equal(
      sql_int("SELECT latency_ms_sum FROM usage WHERE command = 'ping' AND period = 'hour'"), 40);
  assert_int_equal(
      sql_int("SELECT latency_ms_max FROM usage WHERE command = 'ping' AND period = 'day'"), 30);
  assert_int_equal(calls_of("hour", h, "market buy", 0, 2), 1);
  assert_int_equal(
      sql_int("SELECT refused FROM usage WHERE command = 'market buy' AND period = 'hour'"), 1);
  /* A flush with nothing pending is a no-op. */
  assert_int_equal(souk__usage_flush_sync(), 0);
  assert_int_equal(sql_int("SELECT count(*) FROM usage"), 4);
}

/* A second flush adds to the stored rows (and max keeps the larger); a new
 * hour is a new hour row but the same day row. */
static void test_additive(void **state) {
  (void)state;
  uint64_t t = F.now;
  uint64_t h = t - t % HOUR, d = t - t % DAY;
  souk__usage_record("ping", 1, 10, false, false, 100, t);
  assert_int_equal(souk__usage_flush_sync(), 0);
  souk__usage_record("ping", 1, 10, true, false, 20, t + 60000);
  souk__usage_record("ping", 1, 10, false, false, 7, t + HOUR);
  assert_int_equal(souk__usage_flush_sync(), 0);
  assert_int_equal(calls_of("hour", h, "ping", 10, 1), 2);
  assert_int_equal(calls_of("hour", h + HOUR, "ping", 10, 1), 1);
  assert_int_equal(calls_of("day", d, "ping", 10, 1), 3);
  assert_int_equal(sql_int("SELECT errors FROM usage WHERE period = 'day'"), 1);
  assert_int_equal(sql_int("SELECT latency_ms_sum FROM usage WHERE period = 'day'"), 127);
  assert_int_equal(sql_int("SELECT latency_ms_max FROM usage WHERE period = 'day'"), 100);
  assert_int_equal(sql_int("SELECT latency_ms_max FROM usage WHERE period = 'hour' AND start_ms = "
                           "%" PRIu64,
                           h),
                   100);
  assert_int_equal(sql_int("SELECT count(*) FROM usage"), 3);
}

/* Disabled: nothing is counted.  No store: counts stay in memory. */
static void test_disabled_and_no_store(void **state) {
  (void)state;
  souk__usage_conf.enabled = false;
  souk__usage_record("ping", 1, 1, false, false, 1, F.now);
  assert_int_equal(souk__usage_pending(), 0);
  souk__usage_conf.enabled = true;
  souk__usage_record(NULL, 1, 1, false, false, 1, F.now);
  assert_int_equal(souk__usage_pending(), 0);
  souk__usage_start(NULL);
  souk__usage_record("ping", 1, 1, false, false, 1, F.now);
  assert_int_equal(souk__usage_flush_sync(), 0);
  assert_int_equal(souk__usage_pending(), 2);
  souk__usage_start(F.st);
  assert_int_equal(souk__usage_flush_sync(), 0);
  assert_int_equal(sql_int("SELECT SUM(calls) FROM usage"), 2);
}

/* Beyond max_rows pending rows, new users are counted as user 0 (per
 * command and guild); nothing is lost, and memory stays bounded. */
static void test_max_rows_folds(void **state) {
  (void)state;
  souk__usage_conf.max_rows = 6;
  uint64_t t = F.now;
  for (uint64_t u = 1; u <= 50; u++)
    souk__usage_record("ping", u, 10, false, false, 1, t);
  /* Existing users still get their own rows. */
  souk__usage_record("ping", 1, 10, false, false, 1, t);
  assert_true(souk__usage_pending() <= 8);
  assert_true(g.folded > 0);
  assert_int_equal(souk__usage_flush_sync(), 0);
  assert_int_equal(sql_int("SELECT SUM(calls) FROM usage WHERE period = 'hour'"), 51);
  assert_int_equal(sql_int("SELECT SUM(calls) FROM usage WHERE period = 'day'"), 51);
  assert_true(sql_int("SELECT calls FROM usage WHERE period = 'hour' AND user_id = 0") >= 40);
  assert_int_equal(sql_int("SELECT calls FROM usage WHERE period = 'hour' AND user_id = 1"), 2);
  assert_int_equal(sql_int("SELECT count(*) FROM usage WHERE user_id = 50"), 0);
}

/* A flush that fails (the table is gone) keeps its batch; counts recorded
 * meanwhile wait beside it; the next good flush adds all of it once. */
static void test_failed_flush_restores(void **state) {
  (void)state;
  uint64_t t = F.now;
  uint64_t h = t - t % HOUR;
  souk__usage_record("ping", 1, 10, true, false, 50, t);
  souk__usage_record("ping", 2, 10, false, false, 5, t);
  sql_exec("ALTER TABLE usage RENAME TO usage_away");
  int rc = souk__usage_flush_sync();
  assert_true(rc < 0);
  assert_int_equal(souk__usage_pending(), 4);
  souk__usage_record("ping", 1, 10, false, false, 70, t);
  /* The failed batch is kept whole, with its idempotency key, next to the
   * new counts (merging them could count a lost-but-done commit twice). */
  assert_int_equal(souk__usage_pending(), 6);
  sql_exec("ALTER TABLE usage_away RENAME TO usage");
  assert_int_equal(sql_int("SELECT count(*) FROM usage"), 0);
  assert_int_equal(souk__usage_flush_sync(), 0);
  assert_int_equal(souk__usage_pending(), 0);
  assert_int_equal(calls_of("hour", h, "ping", 10, 1), 2);
  assert_int_equal(calls_of("hour", h, "ping", 10, 2), 1);
  assert_int_equal(sql_int("SELECT errors FROM usage WHERE period = 'hour' AND user_id = 1"), 1);
  assert_int_equal(
      sql_int("SELECT latency_ms_sum FROM usage WHERE period = 'hour' AND user_id = 1"), 120);
  assert_int_equal(
      sql_int("SELECT latency_ms_max FROM usage WHERE period = 'hour' AND user_id = 1"), 70);
  /* Two batches went in, each under its own key: the failed one (retried
   * with the key it first had) and the counts recorded after it. */
  assert_int_equal(sql_int("SELECT count(*) FROM idempotency WHERE key LIKE 'usage:%%'"), 2);
}

/* The same batch run twice (a retried transaction, or a commit whose
 * outcome was lost) is added once. */
static void test_idempotent_batch(void **state) {
  (void)state;
  uint64_t t = F.now;
  uint64_t d = t - t % DAY;
  souk__usage_record("ping", 1, 10, false, false, 3, t);
  flush_t *f = flush_take();
  assert_int_equal(souk__usage_pending(), 0);
  assert_int_equal(souk_store_tx(F.st, flush_fn, f), 0);
  assert_int_equal(souk_store_tx(F.st, flush_fn, f), 0);
  assert_int_equal(calls_of("day", d, "ping", 10, 1), 1);
  flush_free(f);
  /* A different batch has a different key. */
  souk__usage_record("ping", 1, 10, false, false, 3, t);
  f = flush_take();
  char key1[64];
  snprintf(key1, sizeof key1, "%s", f->key);
  assert_int_equal(souk_store_tx(F.st, flush_fn, f), 0);
  flush_free(f);
  assert_int_equal(calls_of("day", d, "ping", 10, 1), 2);
  f = flush_take();
  assert_string_not_equal(f->key, key1);
  flush_free(f);

  /* The store reports the commit as lost once: it runs the function
   * again, which finds its key. */
  souk__usage_record("ping", 1, 10, false, false, 3, t);
  atomic_store(&souk__store_fault_commit_lost, 1);
  assert_int_equal(souk__usage_flush_sync(), 0);
  assert_int_equal(calls_of("day", d, "ping", 10, 1), 3);
  assert_int_equal(souk__usage_pending(), 0);
}

/* Regression (usage.c:271-283 and 243-246, flush_restore): when every attempt of
 * the flush transaction ends with the commit's outcome unknown (the first
 * one really committed), the batch is put back into memory and the next
 * flush adds it again under a NEW idempotency key, so it is counted twice,
 * contrary to usage.h ("a commit whose outcome was lost is not added
 * twice").  A failed batch should be retried as-is, with its key. */
static void test_lost_commit_counted_twice(void **state) {
  (void)state;
  uint64_t t = F.now;
  uint64_t d = t - t % DAY;
  F.st->conf.tx_retries = 1;
  souk__usage_record("ping", 1, 10, false, false, 3, t);
  atomic_store(&souk__store_fault_commit_lost, 100);
  int rc = souk__usage_flush_sync();
  atomic_store(&souk__store_fault_commit_lost, 0);
  assert_int_equal(rc, SOUK_ECLOSED);
  /* It did commit. */
  assert_int_equal(calls_of("day", d, "ping", 10, 1), 1);
  assert_int_equal(souk__usage_flush_sync(), 0);
  int64_t calls = calls_of("day", d, "ping", 10, 1);
  if (calls != 1) fail_msg("one call stored as %" PRId64 " after a lost commit", calls);
}

/* Retention: hour rows older than hourly_retention and day rows older than
 * daily_retention go, in the flush's transaction; newer ones stay. */
static void test_retention(void **state) {
  (void)state;
  uint64_t now = souk_unix_ms();
  char sql[512];
  struct {
    const char *period;
    uint64_t start;
  } rows[] = {
      {"hour", now - 31 * DAY}, /* old */
      {"hour", now - 29 * DAY}, /* kept */
      {"day", now - 401 * DAY}, /* old */
      {"day", now - 399 * DAY}, /* kept */
      {"day", now - 31 * DAY},  /* kept: days last longer */
  };
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    snprintf(sql, sizeof sql,
             "INSERT INTO usage VALUES ('%s', %" PRIu64 ", 'old%zu', 0, 0, 1, 0, 0, 1, 1)",
             rows[i].period, rows[i].start, i);
    sql_exec(sql);
  }
  /* Nothing pending: no flush, no pruning. */
  assert_int_equal(souk__usage_flush_sync(), 0);
  assert_int_equal(sql_int("SELECT count(*) FROM usage"), 5);
  souk__usage_record("ping", 1, 10, false, false, 1, F.now);
  assert_int_equal(souk__usage_flush_sync(), 0);
  assert_int_equal(sql_int("SELECT count(*) FROM usage WHERE command = 'old0'"), 0);
  assert_int_equal(sql_int("SELECT count(*) FROM usage WHERE command = 'old1'"), 1);
  assert_int_equal(sql_int("SELECT count(*) FROM usage WHERE command = 'old2'"), 0);
  assert_int_equal(sql_int("SELECT count(*) FROM usage WHERE command = 'old3'"), 1);
  assert_int_equal(sql_int("SELECT count(*) FROM usage WHERE command = 'old4'"), 1);
  assert_int_equal(sql_int("SELECT count(*) FROM usage WHERE command = 'ping'"), 2);
}

/* The report: top commands by calls from the hour rows since a time, with
 * error rate, refusals, latency and distinct users. */
static void test_report(void **state) {
  (void)state;
  souk_buf_t b = {0};
  assert_int_equal(souk__usage_report(NULL, 0, 10, &b), SOUK_EINVAL);
  assert_int_equal(souk__usage_report(F.st, 0, 10, &b), 0);
  assert_non_null(strstr(b.data, "no commands were used"));
  souk_buf_reset(&b);

  uint64_t t = F.now;
  for (int i = 0; i < 8; i++)
    souk__usage_record("ping", 1 + (uint64_t)(i % 3), 10, i == 0, false, 100, t);
  souk__usage_record("buy", 1, 10, false, true, 40, t);
  souk__usage_record("buy", 1, 10, false, false, 20, t);
  souk__usage_record("old", 1, 10, false, false, 20, t - 3 * DAY);
  assert_int_equal(souk__usage_flush_sync(), 0);
  assert_int_equal(souk__usage_report(F.st, t - t % HOUR, 10, &b), 0);
  const char *ping = strstr(b.data, "ping");
  const char *buy = strstr(b.data, "buy");
  assert_non_null(ping);
  assert_non_null(buy);
  assert_true(ping < buy); /* most calls first */
  assert_null(strstr(b.data, "old"));
  /* ping: 8 calls, 12.5% errors, avg 100 ms, 3 users */
  char line[256];
  const char *nl = strchr(ping, '\n');
  assert_non_null(nl);
  snprintf(line, sizeof line, "%.*s", (int)(nl - ping), ping);
  assert_non_null(strstr(line, " 8 calls"));
  assert_non_null(strstr(line, "12.5% errors"));
  assert_non_null(strstr(line, "avg   100 ms"));
  assert_non_null(strstr(line, "3 users"));
  nl = strchr(buy, '\n');
  snprintf(line, sizeof line, "%.*s", (int)(nl - buy), buy);
  assert_non_null(strstr(line, " 2 calls"));
  assert_non_null(strstr(line, "1 refused"));
  assert_non_null(strstr(line, "avg    30 ms"));
  souk_buf_reset(&b);
  /* top 1 */
  assert_int_equal(souk__usage_report(F.st, t - t % HOUR, 1, &b), 0);
  assert_non_null(strstr(b.data, "ping"));
  assert_null(strstr(b.data, "buy"));
  souk_buf_free(&b);
}

/* The asynchronous report flushes what is pending first, so it is
 * current; when the store fails, the counts are kept and cb gets the
 * error. */
static struct {
  int calls, status;
  char text[1024];
} A;

static void report_cb(void *ud, int status, const char *text) {
  (void)ud;
  A.calls++;
  A.status = status;
  snprintf(A.text, sizeof A.text, "%s", text ? text : "(null)");
}

static void test_report_async(void **state) {
  (void)state;
  memset(&A, 0, sizeof A);
  uint64_t t = souk_unix_ms();
  souk__usage_record("ping", 1, 10, false, false, 5, t);
  assert_int_equal(souk_usage_report(t - t % HOUR, 5, report_cb, NULL), 0);
  while (A.calls == 0)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(A.status, 0);
  assert_non_null(strstr(A.text, "ping"));
  assert_int_equal(souk__usage_pending(), 0);

  /* failure: the flush fails, the read fails, counts come back */
  memset(&A, 0, sizeof A);
  souk__usage_record("ping", 1, 10, false, false, 5, t);
  sql_exec("ALTER TABLE usage RENAME TO usage_away");
  assert_int_equal(souk_usage_report(t - t % HOUR, 5, report_cb, NULL), 0);
  while (A.calls == 0)
    uv_run(souk_loop(), UV_RUN_ONCE);
  while (souk_work_pending())
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_true(A.status < 0);
  assert_string_equal(A.text, "(null)");
  assert_int_equal(souk__usage_pending(), 2);
  sql_exec("ALTER TABLE usage_away RENAME TO usage");
  assert_int_equal(souk__usage_flush_sync(), 0);
  assert_int_equal(sql_int("SELECT calls FROM usage WHERE period = 'hour'"), 2);

  /* no store */
  souk__usage_start(NULL);
  assert_int_equal(souk_usage_report(0, 5, report_cb, NULL), SOUK_EINVAL);
  souk__usage_start(F.st);
}


/* One guild's usage (souk_usage_guild): only that guild, counts still in
 * memory included, top commands, distinct users, and per-day rows. */
static struct {
  int calls, status;
  souk_usage_guild_t u;
} G;

static void guild_cb(void *ud, int status, const souk_usage_guild_t *u) {
  (void)ud;
  G.calls++;
  G.status = status;
  if (u) G.u = *u;
}

static void guild_wait(void) {
  while (G.calls == 0)
    uv_run(souk_loop(), UV_RUN_ONCE);
}

static void test_guild_usage(void **state) {
  (void)state;
  memset(&G, 0, sizeof G);
  uint64_t t = souk_unix_ms();
  uint64_t yesterday = t - DAY;
  /* Yesterday: saved already. */
  souk__usage_record("stats", 1, 10, false, false, 5, yesterday);
  souk__usage_record("stats", 2, 10, true, false, 5, yesterday);
  assert_int_equal(souk__usage_flush_sync(), 0);
  /* Today: still in memory, plus another guild that must not count. */
  for (int i = 0; i < 3; i++)
    souk__usage_record("scan top", 3, 10, false, false, 5, t);
  souk__usage_record("stats", 1, 10, false, false, 5, t);
  souk__usage_record("ping", 9, 11, false, false, 5, t);
  assert_int_equal(souk_usage_guild(10, yesterday - yesterday % HOUR, guild_cb, NULL), 0);
  assert_int_equal(G.calls, 0);
  guild_wait();
  assert_int_equal(G.status, 0);
  assert_int_equal(G.u.calls, 6);
  assert_int_equal(G.u.errors, 1);
  assert_int_equal(G.u.users, 3);
  assert_int_equal(G.u.ntop, 2);
  assert_string_equal(G.u.top[0].command, "scan top");
  assert_int_equal(G.u.top[0].calls, 3);
  assert_string_equal(G.u.top[1].command, "stats");
  assert_int_equal(G.u.top[1].calls, 3);
  assert_int_equal(G.u.ndays, 2);
  assert_int_equal(G.u.days[0].day_ms, yesterday - yesterday % DAY);
  assert_int_equal(G.u.days[0].calls, 2);
  assert_int_equal(G.u.days[0].users, 2);
  assert_int_equal(G.u.days[1].calls, 4);
  assert_int_equal(G.u.days[1].users, 2);
  assert_int_equal(souk__usage_pending(), 0);
  /* Since today only: yesterday's hours are out, its day row too. */
  memset(&G, 0, sizeof G);
  assert_int_equal(souk_usage_guild(10, t - t % DAY, guild_cb, NULL), 0);
  guild_wait();
  assert_int_equal(G.u.calls, 4);
  assert_int_equal(G.u.ndays, 1);
  /* A guild with nothing. */
  memset(&G, 0, sizeof G);
  assert_int_equal(souk_usage_guild(77, 0, guild_cb, NULL), 0);
  guild_wait();
  assert_int_equal(G.status, 0);
  assert_int_equal(G.u.calls, 0);
  assert_int_equal(G.u.ntop, 0);
  /* Two queries while one flush runs both wait for it. */
  memset(&G, 0, sizeof G);
  souk__usage_record("stats", 4, 10, false, false, 5, t);
  assert_int_equal(souk_usage_guild(10, t - t % DAY, guild_cb, NULL), 0);
  assert_int_equal(souk_usage_guild(10, t - t % DAY, guild_cb, NULL), 0);
  while (G.calls < 2)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(G.u.calls, 5);
  /* No store. */
  souk__usage_start(NULL);
  assert_int_equal(souk_usage_guild(10, 0, guild_cb, NULL), SOUK_EINVAL);
  souk__usage_start(F.st);
}

/* The flush task exists only when enabled with a store. */
static void test_tasks(void **state) {
  (void)state;
  const souk_task_t *t = souk__usage_tasks();
  assert_non_null(t[0].name);
  assert_string_equal(t[0].name, "usage.flush");
  assert_int_equal(t[0].period_ms, 300000);
  assert_null(t[1].name);
  souk__usage_conf.enabled = false;
  t = souk__usage_tasks();
  assert_null(t[0].name);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_flush_rows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_additive, setup, teardown),
      cmocka_unit_test_setup_teardown(test_disabled_and_no_store, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_rows_folds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_flush_restores, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idempotent_batch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lost_commit_counted_twice, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
      cmocka_unit_test_setup_teardown(test_report, setup, teardown),
      cmocka_unit_test_setup_teardown(test_report_async, setup, teardown),
      cmocka_unit_test_setup_teardown(test_guild_usage, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tasks, setup, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk_loop_close();
  return rc;
}
