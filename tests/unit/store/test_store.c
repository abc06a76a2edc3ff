/* The store's tests.  One body per test, run twice: on SQLite in a temp dir
 * and on a throwaway PostgreSQL server on loopback (see pgserver.h), each
 * test on a fresh database.  The PostgreSQL group is skipped with a message
 * when the server binaries are missing. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>
/* clang-format on */

#include "pgserver.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/store.h"
#include "store/store_int.h"
#include "store/storeconf.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

typedef struct backend {
  souk_store_kind_t kind;
  const char *name;
} backend_t;

static backend_t be_sqlite = {SOUK_STORE_SQLITE, "sqlite"};
static backend_t be_pg = {SOUK_STORE_POSTGRES, "postgres"};

/* One test's database: a temp dir (always: backups and the copy source
 * live there) and, on PostgreSQL, a fresh database. */
typedef struct fx {
  const backend_t *be;
  bool skip;
  char dir[128];
  char url[256];
  souk_store_conf_t conf;
} fx_t;

static int fx_setup(void **state) {
  fx_t *fx = souk_calloc(1, sizeof *fx);
  fx->be = *state;
  snprintf(fx->dir, sizeof fx->dir, "/tmp/souk-store-XXXXXX");
  assert_non_null(mkdtemp(fx->dir));
  souk_store_conf_defaults(&fx->conf);
  fx->conf.retry_base_ms = 5;
  fx->conf.retry_max_ms = 100;
  if (fx->be->kind == SOUK_STORE_POSTGRES) {
    if (pg_state != 1) {
      fx->skip = true;
    } else {
      assert_true(pg_create_db("souk_t", fx->url, sizeof fx->url));
      fx->conf.url = fx->url;
    }
  }
  *state = fx;
  return 0;
}

static int fx_teardown(void **state) {
  fx_t *fx = *state;
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
  assert_int_equal(system(cmd), 0);
  souk_store_registry_clear();
  atomic_store(&souk__store_fault_commit_lost, 0);
  souk_free(fx);
  return 0;
}

#define FX()                                                                                       \
  fx_t *fx = *state;                                                                               \
  if (fx->skip) {                                                                                  \
    skip();                                                                                        \
    return;                                                                                        \
  }

static souk_store_t *fx_open(fx_t *fx) {
  souk_store_t *st = NULL;
  int rc = souk_store_open(&fx->conf, fx->dir, &st);
  if (rc != 0) fail_msg("souk_store_open: %s", souk_strerror(rc));
  assert_int_equal(souk_store_kind(st), fx->be->kind);
  return st;
}

/* ---- small transaction helpers ---- */

typedef struct sqljob {
  const char *sql;
  int64_t out;
} sqljob_t;

static int exec_fn(souk_db_t *db, void *ud) { return souk_db_exec(db, ((sqljob_t *)ud)->sql); }

static int int_fn(souk_db_t *db, void *ud) {
  sqljob_t *j = ud;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, j->sql, &s);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  j->out = souk_stmt_column_int64(s, 0);
  souk_stmt_finalize(s);
  return rc == 1 ? 0 : SOUK_EIO;
}

static void sql_exec(souk_store_t *st, const char *sql) {
  sqljob_t j = {sql, 0};
  int rc = souk_store_tx(st, exec_fn, &j);
  if (rc != 0) fail_msg("%s: %s", sql, souk_strerror(rc));
}

static int64_t sql_int(souk_store_t *st, const char *sql) {
  sqljob_t j = {sql, 0};
  int rc = souk_store_tx(st, int_fn, &j);
  if (rc != 0) fail_msg("%s: %s", sql, souk_strerror(rc));
  return j.out;
}

/* Insert one kv row with an integer in updated_at. */
static int kv_put(souk_db_t *db, const char *ns, const char *key, int64_t v) {
  souk_stmt_t *s;
  int rc = souk_db_prepare(
      db, "INSERT INTO kv (namespace, key, value, updated_at) VALUES (?, ?, ?, ?)", &s);
  if (rc != 0) return rc;
  rc = souk_stmt_bind_text(s, 1, ns, SIZE_MAX);
  if (rc == 0) rc = souk_stmt_bind_text(s, 2, key, SIZE_MAX);
  if (rc == 0) rc = souk_stmt_bind_blob(s, 3, key, strlen(key));
  if (rc == 0) rc = souk_stmt_bind_int64(s, 4, v);
  if (rc == 0) rc = souk_stmt_step(s);
  souk_stmt_finalize(s);
  return rc;
}

/* ---- migrations ---- */

static void test_migrate(void **state) {
  FX();
  souk_store_t *st = fx_open(fx);
  int v = -1;
  assert_int_equal(souk_store_schema_version(st, &v), 0);
  assert_int_equal(v, souk_store_schema_latest());
  int applied = -1;
  assert_int_equal(souk__store_migrate(st, &applied), 0);
  assert_int_equal(applied, 0);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM schema_version"), souk__migrations_n);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM kv"), 0);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM idempotency"), 0);
  souk_store_close(st);
  /* Opening again applies nothing and takes no backup (nothing pending). */
  st = fx_open(fx);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM schema_version"), souk__migrations_n);
  souk_store_close(st);
  char bdir[200];
  snprintf(bdir, sizeof bdir, "%s/backups", fx->dir);
  assert_int_not_equal(access(bdir, F_OK), 0);
}

static void test_refuse_newer(void **state) {
  FX();
  souk_store_t *st = fx_open(fx);
  sql_exec(st, "INSERT INTO schema_version (version, description, applied_at) "
               "VALUES (9999, 'from the future', 0)");
  souk_store_close(st);
  st = NULL;
  assert_int_equal(souk_store_open(&fx->conf, fx->dir, &st), SOUK_EFATAL);
  assert_null(st);
  fx->conf.migrate = false;
  assert_int_equal(souk_store_open(&fx->conf, fx->dir, &st), SOUK_EFATAL);
  assert_null(st);
}

/* ---- binding ---- */

static const char uni[] = "ключ 世界 🎉 'quoted' \"dq\" ? -- not a comment";
static const unsigned char blob4[] = {0x00, 0x01, 0x5c, 0xff};

static int binds_write_fn(souk_db_t *db, void *ud) {
  souk_stmt_t *s;
  int rc = souk_db_prepare(
      db, "INSERT INTO kv (namespace, key, value, updated_at) VALUES ('b', ?, ?, ?)", &s);
  if (rc != 0) return rc;
  /* NULL value, INT64_MIN. */
  assert_int_equal(souk_stmt_bind_text(s, 1, "null", SIZE_MAX), 0);
  assert_int_equal(souk_stmt_bind_null(s, 2), 0);
  assert_int_equal(souk_stmt_bind_int64(s, 3, INT64_MIN), 0);
  assert_int_equal(souk_stmt_step(s), 0);
  assert_int_equal(souk_stmt_changes(s), 1);
  /* Binary blob with NUL, backslash and 0xff; INT64_MAX.  Rebinding after
   * a step rewinds the statement. */
  assert_int_equal(souk_stmt_bind_text(s, 1, "blob", SIZE_MAX), 0);
  assert_int_equal(souk_stmt_bind_blob(s, 2, blob4, sizeof blob4), 0);
  assert_int_equal(souk_stmt_bind_int64(s, 3, INT64_MAX), 0);
  assert_int_equal(souk_stmt_step(s), 0);
  /* Unicode key with quotes and a question mark inside the value; empty
   * (not NULL) blob. */
  assert_int_equal(souk_stmt_bind_text(s, 1, uni, SIZE_MAX), 0);
  assert_int_equal(souk_stmt_bind_blob(s, 2, "", 0), 0);
  assert_int_equal(souk_stmt_bind_int64(s, 3, 0), 0);
  assert_int_equal(souk_stmt_step(s), 0);
  /* Empty-string key, length-limited text. */
  assert_int_equal(souk_stmt_bind_text(s, 1, "xyz", 0), 0);
  assert_int_equal(souk_stmt_bind_null(s, 2), 0);
  assert_int_equal(souk_stmt_bind_int64(s, 3, -1), 0);
  assert_int_equal(souk_stmt_step(s), 0);
  /* Out-of-range parameter index. */
  assert_int_equal(souk_stmt_bind_int64(s, 4, 1), SOUK_EINVAL);
  assert_int_equal(souk_stmt_bind_int64(s, 0, 1), SOUK_EINVAL);
  souk_stmt_finalize(s);
  return 0;
}

static int binds_read_fn(souk_db_t *db, void *ud) {
  souk_stmt_t *s;
  assert_int_equal(souk_db_prepare(db,
                                   "SELECT key, value, updated_at FROM kv WHERE namespace = 'b' "
                                   "AND key = ?",
                                   &s),
                   0);
  size_t n;
  /* NULL */
  souk_stmt_bind_text(s, 1, "null", SIZE_MAX);
  assert_int_equal(souk_stmt_step(s), 1);
  assert_int_equal(souk_stmt_column_count(s), 3);
  assert_string_equal(souk_stmt_column_name(s, 2), "updated_at");
  assert_int_equal(souk_stmt_column_type(s, 1), SOUK_COL_NULL);
  assert_null(souk_stmt_column_blob(s, 1, &n));
  assert_int_equal(souk_stmt_column_type(s, 2), SOUK_COL_INT);
  assert_true(souk_stmt_column_int64(s, 2) == INT64_MIN);
  assert_string_equal(souk_stmt_column_text(s, 2, &n), "-9223372036854775808");
  assert_int_equal(n, 20);
  assert_int_equal(souk_stmt_step(s), 0);
  /* blob */
  souk_stmt_bind_text(s, 1, "blob", SIZE_MAX);
  assert_int_equal(souk_stmt_step(s), 1);
  assert_int_equal(souk_stmt_column_type(s, 1), SOUK_COL_BLOB);
  const void *b = souk_stmt_column_blob(s, 1, &n);
  assert_int_equal(n, sizeof blob4);
  assert_memory_equal(b, blob4, sizeof blob4);
  assert_true(souk_stmt_column_int64(s, 2) == INT64_MAX);
  /* unicode, empty blob */
  souk_stmt_bind_text(s, 1, uni, SIZE_MAX);
  assert_int_equal(souk_stmt_step(s), 1);
  assert_int_equal(souk_stmt_column_type(s, 0), SOUK_COL_TEXT);
  assert_string_equal(souk_stmt_column_text(s, 0, &n), uni);
  assert_int_equal(n, strlen(uni));
  assert_int_equal(souk_stmt_column_type(s, 1), SOUK_COL_BLOB);
  assert_non_null(souk_stmt_column_blob(s, 1, &n));
  assert_int_equal(n, 0);
  /* empty key */
  souk_stmt_bind_text(s, 1, "", 0);
  assert_int_equal(souk_stmt_step(s), 1);
  assert_string_equal(souk_stmt_column_text(s, 0, &n), "");
  assert_int_equal(souk_stmt_column_int64(s, 2), -1);
  souk_stmt_finalize(s);

  /* A `?` inside an SQL string literal is not a parameter. */
  assert_int_equal(souk_db_prepare(db,
                                   "SELECT count(*) FROM kv WHERE namespace = 'b' AND "
                                   "key <> 'what?' /* ? */ AND updated_at > ?",
                                   &s),
                   0);
  assert_int_equal(souk_stmt_bind_int64(s, 1, -2), 0);
  assert_int_equal(souk_stmt_step(s), 1);
  assert_int_equal(souk_stmt_column_int64(s, 0), 3);
  souk_stmt_finalize(s);
  return 0;
}

static void test_binds(void **state) {
  FX();
  souk_store_t *st = fx_open(fx);
  assert_int_equal(souk_store_tx(st, binds_write_fn, NULL), 0);
  assert_int_equal(souk_store_tx(st, binds_read_fn, NULL), 0);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM kv WHERE value IS NULL"), 2);
  souk_store_close(st);
}

/* ---- kv helpers, read-only transactions, pruning ---- */

static int kv_fn(souk_db_t *db, void *ud) {
  assert_int_equal(souk_db_kv_put(db, "mod", "state", "v1", 2), 0);
  assert_int_equal(souk_db_kv_put(db, "mod", "state", "v2\0x", 4), 0); /* replaces */
  assert_int_equal(souk_db_kv_put(db, "mod", "nul", NULL, 0), 0);
  souk_buf_t b = {0};
  int64_t at = 0;
  assert_int_equal(souk_db_kv_get(db, "mod", "state", &b, &at), 0);
  assert_int_equal(b.len, 4);
  assert_memory_equal(b.data, "v2\0x", 4);
  assert_true(at > 1700000000000);
  souk_buf_reset(&b);
  assert_int_equal(souk_db_kv_get(db, "mod", "nul", &b, NULL), 0);
  assert_int_equal(b.len, 0);
  assert_int_equal(souk_db_kv_get(db, "mod", "none", &b, NULL), SOUK_ENOTFOUND);
  assert_int_equal(souk_db_kv_del(db, "mod", "nul"), 0);
  assert_int_equal(souk_db_kv_del(db, "mod", "nul"), SOUK_ENOTFOUND);
  souk_buf_free(&b);
  if (!ud) return 0;
  /* Keys claimed long ago are pruned; a fresh one stays. */
  assert_int_equal(souk_db_once(db, "old"), 0);
  assert_int_equal(souk_db_exec(db, "UPDATE idempotency SET created_at = 5 WHERE key = 'old'"), 0);
  assert_int_equal(souk_db_once(db, "new"), 0);
  int64_t n = -1;
  assert_int_equal(souk_db_once_prune(db, 1000, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(souk_db_once(db, "new"), SOUK_EEXIST);
  return 0;
}

static int read_kv_fn(souk_db_t *db, void *ud) {
  souk_buf_t b = {0};
  int rc = souk_db_kv_get(db, "mod", "state", &b, NULL);
  if (rc == 0) *(size_t *)ud = b.len;
  souk_buf_free(&b);
  return rc;
}

static int write_in_read_fn(souk_db_t *db, void *ud) {
  (*(int *)ud)++;
  return souk_db_kv_put(db, "mod", "sneaky", "x", 1);
}

static int pragma_fn(souk_db_t *db, void *ud) {
  souk_stmt_t *s;
  assert_int_equal(souk_db_prepare(db,
                                   "SELECT * FROM pragma_journal_mode, "
                                   "pragma_synchronous, pragma_foreign_keys",
                                   &s),
                   0);
  assert_int_equal(souk_stmt_step(s), 1);
  assert_string_equal(souk_stmt_column_text(s, 0, NULL), "wal");
  assert_int_equal(souk_stmt_column_int64(s, 1), 1); /* NORMAL */
  assert_int_equal(souk_stmt_column_int64(s, 2), 1);
  souk_stmt_finalize(s);
  return 0;
}

static void test_kv_read(void **state) {
  FX();
  souk_store_t *st = fx_open(fx);
  assert_int_equal(souk_store_tx(st, kv_fn, "prune too"), 0);
  size_t len = 0;
  assert_int_equal(souk_store_read(st, read_kv_fn, &len), 0);
  assert_int_equal(len, 4);
  int calls = 0;
  assert_int_not_equal(souk_store_read(st, write_in_read_fn, &calls), 0);
  assert_int_equal(calls, 1);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM kv WHERE key = 'sneaky'"), 0);
  /* The same connections write again afterwards. */
  for (int i = 0; i < 8; i++)
    assert_int_equal(souk_store_tx(st, kv_fn, NULL), 0);
  if (fx->be->kind == SOUK_STORE_SQLITE) assert_int_equal(souk_store_tx(st, pragma_fn, NULL), 0);
  souk_store_close(st);
}

/* ---- rollback ---- */

static int calls;

static int fail_after_insert_fn(souk_db_t *db, void *ud) {
  calls++;
  assert_int_equal(kv_put(db, "r", "a", 1), 0);
  return SOUK_EINVAL;
}

static int dup_fn(souk_db_t *db, void *ud) {
  calls++;
  int rc = kv_put(db, "r", "b", 1);
  if (rc == 0) rc = kv_put(db, "r", "b", 2);
  return rc;
}

static void test_rollback(void **state) {
  FX();
  souk_store_t *st = fx_open(fx);
  calls = 0;
  assert_int_equal(souk_store_tx(st, fail_after_insert_fn, NULL), SOUK_EINVAL);
  assert_int_equal(calls, 1);
  calls = 0;
  assert_int_equal(souk_store_tx(st, dup_fn, NULL), SOUK_EEXIST);
  assert_int_equal(calls, 1);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM kv"), 0);
  /* The connection is usable afterwards. */
  sql_exec(st, "INSERT INTO kv (namespace, key, updated_at) VALUES ('r', 'c', 3)");
  assert_int_equal(sql_int(st, "SELECT count(*) FROM kv"), 1);
  souk_store_close(st);
}

/* ---- retries ---- */

typedef struct once_job {
  const char *key;
  int calls;
  bool terminate; /* PostgreSQL: kill our own session on the first call */
} once_job_t;

/* A money-like write: claim the idempotency key, then bump a balance. */
static int once_fn(souk_db_t *db, void *ud) {
  once_job_t *j = ud;
  j->calls++;
  int rc = souk_db_once(db, j->key);
  if (rc == SOUK_EEXIST) return 0;
  if (rc != 0) return rc;
  rc = souk_db_exec(db, "UPDATE kv SET updated_at = updated_at + 100 "
                        "WHERE namespace = 'bal' AND key = 'u1'");
  if (rc == 0 && j->terminate && j->calls == 1)
    rc = souk_db_exec(db, "SELECT pg_terminate_backend(pg_backend_pid())");
  return rc;
}

/* On PostgreSQL two processes starting at once can both run CREATE ... IF
 * NOT EXISTS and one fail with 42710 or 42P07 (the type or table is there
 * now): that is "already exists", which the module schema step retries,
 * not a bad statement.  SQLite serialises writers, so it never races. */
static void test_already_exists(void **state) {
  FX();
  if (fx->be->kind != SOUK_STORE_POSTGRES) {
    skip();
    return;
  }
  souk_store_t *st = fx_open(fx);
  sql_exec(st, "CREATE TYPE souk_t_pair AS (a integer, b integer)");
  sqljob_t j = {"CREATE TYPE souk_t_pair AS (a integer, b integer)", 0};
  assert_int_equal(souk_store_tx(st, exec_fn, &j), SOUK_EEXIST);
  sql_exec(st, "CREATE TABLE souk_t_once (a integer)");
  j.sql = "CREATE TABLE souk_t_once (a integer)";
  assert_int_equal(souk_store_tx(st, exec_fn, &j), SOUK_EEXIST);
  /* A statement that is wrong stays wrong. */
  j.sql = "CREATE TABLE souk_t_bad (a no_such_type)";
  assert_int_equal(souk_store_tx(st, exec_fn, &j), SOUK_EINVAL);
  souk_store_close(st);
}

static void test_retry_applies_once(void **state) {
  FX();
  souk_store_t *st = fx_open(fx);
  sql_exec(st, "INSERT INTO kv (namespace, key, updated_at) VALUES ('bal', 'u1', 0)");
  /* The commit happens, but the runner is told the connection was lost:
   * it re-runs the whole function, which finds its key and does nothing. */
  atomic_store(&souk__store_fault_commit_lost, 1);
  once_job_t j = {"interaction:1", 0, false};
  assert_int_equal(souk_store_tx(st, once_fn, &j), 0);
  assert_int_equal(j.calls, 2);
  assert_int_equal(sql_int(st, "SELECT updated_at FROM kv WHERE namespace = 'bal'"), 100);
  /* A redelivered command with the same key applies nothing. */
  j.calls = 0;
  assert_int_equal(souk_store_tx(st, once_fn, &j), 0);
  assert_int_equal(j.calls, 1);
  assert_int_equal(sql_int(st, "SELECT updated_at FROM kv WHERE namespace = 'bal'"), 100);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM idempotency"), 1);
  /* Retries run out: the error comes back. */
  st->conf.tx_retries = 2;
  atomic_store(&souk__store_fault_commit_lost, 10);
  once_job_t k = {"interaction:2", 0, false};
  assert_int_equal(souk_store_tx(st, once_fn, &k), SOUK_ECLOSED);
  assert_int_equal(k.calls, 3);
  atomic_store(&souk__store_fault_commit_lost, 0);
  assert_int_equal(sql_int(st, "SELECT updated_at FROM kv WHERE namespace = 'bal'"), 200);
  souk_store_close(st);
}

typedef struct locker {
  const char *path;
  atomic_int locked;
} locker_t;

static void *locker_main(void *arg) {
  locker_t *l = arg;
  sqlite3 *db;
  assert_int_equal(sqlite3_open(l->path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  atomic_store(&l->locked, 1);
  usleep(300 * 1000);
  assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  return NULL;
}

/* SQLite: a writer holds the lock longer than busy_timeout; the runner
 * backs off and runs the transaction again until it gets through.
 * PostgreSQL: the session is killed mid-transaction; the runner reconnects
 * and re-runs the whole transaction, and the killed attempt left nothing. */
static void test_retry_real(void **state) {
  FX();
  fx->conf.busy_timeout_ms = 20;
  fx->conf.tx_retries = 50;
  souk_store_t *st = fx_open(fx);
  sql_exec(st, "INSERT INTO kv (namespace, key, updated_at) VALUES ('bal', 'u1', 0)");
  once_job_t j = {"interaction:busy", 0, false};
  if (fx->be->kind == SOUK_STORE_SQLITE) {
    char path[200];
    snprintf(path, sizeof path, "%s/souk.db", fx->dir);
    locker_t l = {path, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, locker_main, &l), 0);
    while (!atomic_load(&l.locked))
      usleep(1000);
    uint64_t t0 = souk_now_ms();
    assert_int_equal(souk_store_tx(st, once_fn, &j), 0);
    assert_true(souk_now_ms() - t0 >= 250);
    pthread_join(t, NULL);
  } else {
    j.terminate = true;
    assert_int_equal(souk_store_tx(st, once_fn, &j), 0);
    assert_int_equal(j.calls, 2);
  }
  assert_int_equal(sql_int(st, "SELECT updated_at FROM kv WHERE namespace = 'bal'"), 100);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM idempotency"), 1);
  souk_store_close(st);
}

/* ---- concurrent writers on the worker pool ---- */

#define NWRITERS 64

typedef struct writer {
  int i;
  int status;
  int *done;
} writer_t;

static int writer_fn(souk_db_t *db, void *ud) {
  writer_t *w = ud;
  char key[32];
  snprintf(key, sizeof key, "w%d", w->i);
  int rc = kv_put(db, "w", key, w->i);
  if (rc == 0)
    rc = souk_db_exec(db, "UPDATE kv SET updated_at = updated_at + 1 "
                          "WHERE namespace = 'c' AND key = 'n'");
  return rc;
}

static void writer_done(void *ud, int status) {
  writer_t *w = ud;
  w->status = status;
  (*w->done)++;
}

static void test_concurrent(void **state) {
  FX();
  souk_store_t *st = fx_open(fx);
  sql_exec(st, "INSERT INTO kv (namespace, key, updated_at) VALUES ('c', 'n', 0)");
  writer_t w[NWRITERS];
  int done = 0;
  for (int i = 0; i < NWRITERS; i++) {
    w[i] = (writer_t){i, -1, &done};
    assert_int_equal(souk_store_tx_async(st, writer_fn, writer_done, &w[i]), 0);
  }
  assert_int_equal(souk_store_tx_async(st, NULL, writer_done, &w[0]), SOUK_EINVAL);
  while (done < NWRITERS)
    uv_run(souk_loop(), UV_RUN_ONCE);
  for (int i = 0; i < NWRITERS; i++)
    assert_int_equal(w[i].status, 0);
  assert_int_equal(sql_int(st, "SELECT updated_at FROM kv WHERE namespace = 'c'"), NWRITERS);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM kv WHERE namespace = 'w'"), NWRITERS);
  souk_store_close(st);
}

/* ---- backup, check, vacuum ---- */

static int fill_fn(souk_db_t *db, void *ud) {
  int n = *(int *)ud;
  for (int i = 0; i < n; i++) {
    char key[32];
    snprintf(key, sizeof key, "k%05d", i);
    int rc = kv_put(db, "fill", key, i);
    if (rc != 0) return rc;
  }
  return 0;
}

static void test_backup_check(void **state) {
  FX();
  souk_store_t *st = fx_open(fx);
  int n = 300;
  assert_int_equal(souk_store_tx(st, fill_fn, &n), 0);
  souk_buf_t rep = {0};
  assert_int_equal(souk_store_check(st, &rep), 0);
  if (fx->be->kind == SOUK_STORE_SQLITE) {
    assert_non_null(strstr(rep.data, "integrity_check: ok"));
    assert_non_null(strstr(rep.data, "foreign_key_check: ok"));
  } else {
    assert_non_null(strstr(rep.data, "postgres: connected"));
  }
  char want[64];
  snprintf(want, sizeof want, "schema: version %d,", souk_store_schema_latest());
  assert_non_null(strstr(rep.data, want));
  assert_int_equal(souk_store_vacuum(st), 0);

  char path[200];
  snprintf(path, sizeof path, "%s/copy.db", fx->dir);
  if (fx->be->kind == SOUK_STORE_POSTGRES) {
    assert_int_equal(souk_store_backup(st, path), SOUK_EINVAL);
    souk_buf_free(&rep);
    souk_store_close(st);
    return;
  }
  assert_int_equal(souk_store_backup(st, path), 0);
  souk_store_close(st);

  char url[220];
  snprintf(url, sizeof url, "sqlite://%s", path);
  souk_store_conf_t c = fx->conf;
  c.url = url;
  c.migrate = false;
  souk_store_t *b = NULL;
  assert_int_equal(souk_store_open(&c, NULL, &b), 0);
  assert_int_equal(sql_int(b, "SELECT count(*) FROM kv"), n);
  souk_buf_reset(&rep);
  assert_int_equal(souk_store_check(b, &rep), 0);
  assert_non_null(strstr(rep.data, "integrity_check: ok"));
  souk_store_close(b);

  /* A schema behind the binary is reported with its fix. */
  c.migrate = true;
  assert_int_equal(souk_store_open(&c, NULL, &b), 0);
  sql_exec(b, "DELETE FROM schema_version");
  souk_buf_reset(&rep);
  assert_int_equal(souk_store_check(b, &rep), SOUK_EIO);
  assert_non_null(strstr(rep.data, "souk db migrate"));
  souk_store_close(b);
  souk_buf_free(&rep);
}

/* The backup migrations take first.  Only v1 exists so far, so the path a
 * real upgrade takes (version > 0, pending migrations) is driven directly. */
static void test_backup_before_migrate(void **state) {
  FX();
  souk_store_t *st = fx_open(fx);
  sql_exec(st, "INSERT INTO kv (namespace, key, updated_at) VALUES ('m', 'x', 7)");
  char *path = NULL;
  assert_int_equal(souk__store_backup_before(st, 1, &path), 0);
  souk_store_close(st);
  if (fx->be->kind == SOUK_STORE_POSTGRES) {
    assert_null(path);
    return;
  }
  assert_non_null(path);
  char prefix[200];
  snprintf(prefix, sizeof prefix, "%s/backups/souk-", fx->dir);
  assert_int_equal(strncmp(path, prefix, strlen(prefix)), 0);
  assert_non_null(strstr(path, "Z-v1.db"));
  char url[300];
  snprintf(url, sizeof url, "sqlite://%s", path);
  souk_store_conf_t c = fx->conf;
  c.url = url;
  c.migrate = false;
  souk_store_t *b = NULL;
  assert_int_equal(souk_store_open(&c, NULL, &b), 0);
  assert_int_equal(sql_int(b, "SELECT updated_at FROM kv WHERE namespace = 'm'"), 7);
  souk_buf_t rep = {0};
  assert_int_equal(souk_store_check(b, &rep), 0);
  souk_buf_free(&rep);
  souk_store_close(b);
  souk_free(path);
}

/* ---- forget_user / purge_guild ---- */

static void test_forget(void **state) {
  FX();
  souk_store_t *st = fx_open(fx);
  sql_exec(st, "CREATE TABLE notes (user_id BIGINT NOT NULL, guild_id BIGINT, note TEXT);"
               "INSERT INTO notes VALUES (42, 1, 'a'), (42, 2, 'b'), (7, 1, 'c'), "
               "(7, 2, 'd'), (123456789012345678, 3, 'big');"
               "CREATE TABLE guild_cfg (guild_id BIGINT PRIMARY KEY, prefix TEXT);"
               "INSERT INTO guild_cfg VALUES (1, '!'), (2, '?')");
  assert_int_equal(souk_store_register_data("notes", "user_id", "guild_id"), 0);
  assert_int_equal(souk_store_register_data("guild_cfg", NULL, "guild_id"), 0);
  assert_int_equal(souk_store_register_data("no-tes", "user_id", NULL), SOUK_EINVAL);
  assert_int_equal(souk_store_register_data("x", "u; DROP", NULL), SOUK_EINVAL);
  assert_int_equal(souk_store_register_data("x", NULL, NULL), SOUK_EINVAL);
  int64_t n = -1;
  assert_int_equal(souk_store_forget_user(st, 42, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(souk_store_forget_user(st, 123456789012345678, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM notes"), 2);
  assert_int_equal(souk_store_purge_guild(st, 1, &n), 0);
  assert_int_equal(n, 2); /* one note, one guild_cfg row */
  assert_int_equal(sql_int(st, "SELECT count(*) FROM notes"), 1);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM guild_cfg"), 1);
  assert_int_equal(souk_store_forget_user(st, 999, &n), 0);
  assert_int_equal(n, 0);
  souk_store_close(st);
}

/* A table's own forget_user runs first, while every table still holds the
 * user's rows, and replaces the deletion of that table's rows. */
static int ledger_forget(souk_db_t *db, int64_t user, int64_t *changed) {
  int64_t n = 0;
  int rc = souk_db_runf(db, &n,
                        "UPDATE ledger SET user_id = -1, note = (SELECT note FROM notes WHERE "
                        "user_id = ? LIMIT 1) WHERE user_id = ?",
                        "ii", user, user);
  *changed += n;
  return rc;
}

static void test_forget_with_a_function(void **state) {
  FX();
  souk_store_t *st = fx_open(fx);
  sql_exec(st, "CREATE TABLE notes (user_id BIGINT NOT NULL, note TEXT);"
               "INSERT INTO notes VALUES (42, 'seen'), (7, 'x');"
               "CREATE TABLE ledger (user_id BIGINT NOT NULL, note TEXT);"
               "INSERT INTO ledger VALUES (42, ''), (42, ''), (7, '')");
  /* The hook's table comes last in the registry, yet runs first. */
  assert_int_equal(souk_store_register_data("notes", "user_id", NULL), 0);
  const souk_store_data_t d[] = {
      {.table = "ledger", .user_column = "user_id", .forget_user = ledger_forget}, {0}};
  assert_int_equal(souk_store_register_table(d), 0);
  const souk_store_data_t bare[] = {{.table = "bare"}, {0}};
  assert_int_equal(souk_store_register_table(bare), SOUK_EINVAL);
  int64_t n = -1;
  assert_int_equal(souk_store_forget_user(st, 42, &n), 0);
  assert_int_equal(n, 3); /* two ledger rows changed, one note deleted */
  assert_int_equal(sql_int(st, "SELECT count(*) FROM ledger WHERE user_id = -1 AND note = 'seen'"),
                   2);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM ledger"), 3);
  assert_int_equal(sql_int(st, "SELECT count(*) FROM notes"), 1);
  souk_store_close(st);
}

/* ---- copy SQLite -> PostgreSQL ---- */

static int fill_misc_fn(souk_db_t *db, void *ud) {
  souk_stmt_t *s;
  int rc = souk_db_prepare(
      db, "INSERT INTO kv (namespace, key, value, updated_at) VALUES ('bin', ?, ?, ?)", &s);
  if (rc != 0) return rc;
  souk_stmt_bind_text(s, 1, uni, SIZE_MAX);
  souk_stmt_bind_blob(s, 2, blob4, sizeof blob4);
  souk_stmt_bind_int64(s, 3, INT64_MIN);
  rc = souk_stmt_step(s);
  souk_stmt_finalize(s);
  for (int i = 0; i < 10 && rc == 0; i++) {
    char key[32];
    snprintf(key, sizeof key, "msg:%d", i);
    rc = souk_db_once(db, key);
  }
  return rc;
}

static int check_copied_fn(souk_db_t *db, void *ud) {
  souk_stmt_t *s;
  assert_int_equal(souk_db_prepare(db,
                                   "SELECT key, value, updated_at FROM kv "
                                   "WHERE namespace = 'bin'",
                                   &s),
                   0);
  assert_int_equal(souk_stmt_step(s), 1);
  size_t n;
  assert_string_equal(souk_stmt_column_text(s, 0, NULL), uni);
  assert_memory_equal(souk_stmt_column_blob(s, 1, &n), blob4, sizeof blob4);
  assert_int_equal(n, sizeof blob4);
  assert_true(souk_stmt_column_int64(s, 2) == INT64_MIN);
  souk_stmt_finalize(s);
  return 0;
}

/* Market rows with ids and money, for the copy's balance checks and
 * sequence fix. */
static int fill_market_fn(souk_db_t *db, void *ud) {
  int rc = souk_db_exec(db, "INSERT INTO market_accounts VALUES (1, 1, 10, 12345, 100000000, 0, 1);"
                            "INSERT INTO market_accounts VALUES (1, 1, 11, 99, 100000000, 0, 1);"
                            "INSERT INTO market_holdings VALUES (1, 1, 10, 'AAPL', 7, 150000);");
  for (int i = 0; rc == 0 && i < 5; i++) {
    char sql[400];
    snprintf(sql, sizeof sql,
             "INSERT INTO market_transactions (guild_id, season, user_id, side, symbol, shares, "
             "price_micro, amount_cents, commission_cents, cash_before, cash_after, "
             "price_source, price_time_ms, created_at, idem_key) VALUES (1, 1, 10, 'buy', "
             "'AAPL', 1, 1000000, %d, 0, 500, 400, 'sim', 0, 0, 'ix:%d')",
             100 + i, i);
    rc = souk_db_exec(db, sql);
  }
  return rc;
}

static int insert_after_copy_fn(souk_db_t *db, void *ud) {
  return souk_db_exec(db,
                      "INSERT INTO market_transactions (guild_id, season, user_id, side, symbol, "
                      "shares, price_micro, amount_cents, commission_cents, cash_before, "
                      "cash_after, price_source, price_time_ms, created_at, idem_key) VALUES "
                      "(1, 1, 10, 'sell', 'AAPL', 1, 1000000, 100, 0, 400, 500, 'sim', 0, 0, "
                      "'ix:after')");
}

static void test_copy(void **state) {
  /* The source is SQLite, the destination PostgreSQL: this runs in the
   * PostgreSQL group only. */
  FX();
  souk_store_conf_t c = fx->conf;
  c.url = NULL;
  souk_store_t *src = NULL;
  assert_int_equal(souk_store_open(&c, fx->dir, &src), 0);
  int n = 1234;
  assert_int_equal(souk_store_tx(src, fill_fn, &n), 0);
  assert_int_equal(souk_store_tx(src, fill_misc_fn, NULL), 0);
  assert_int_equal(souk_store_tx(src, fill_market_fn, NULL), 0);
  souk_buf_t rep = {0};
  int rc = souk_store_copy(src, fx->url, 100, &rep);
  if (rc != 0) fail_msg("copy: %s\n%s", souk_strerror(rc), rep.data ? rep.data : "");
  assert_non_null(strstr(rep.data, "kv: 1235 rows in source, 1235 in destination"));
  assert_non_null(strstr(rep.data, "idempotency: 10 rows in source, 10 in destination"));
  /* Balances are compared, not only rows. */
  assert_non_null(strstr(rep.data, "market_accounts.cash_cents: total 12444 in source, 12444 in "
                                   "destination"));
  assert_non_null(strstr(rep.data, "market_holdings.shares: total 7 in source, 7 in destination"));
  assert_non_null(strstr(rep.data, "market_transactions.amount_cents: total 510 in source"));
  assert_non_null(strstr(rep.data, "market_transactions.id: sequence moved past the copied rows"));
  assert_null(strstr(rep.data, "MISMATCH"));
  /* A second copy would merge: refused. */
  souk_buf_reset(&rep);
  assert_int_equal(souk_store_copy(src, fx->url, 100, &rep), SOUK_EEXIST);
  souk_buf_free(&rep);
  souk_store_close(src);
  souk_store_t *dst = fx_open(fx);
  assert_int_equal(sql_int(dst, "SELECT count(*) FROM kv"), 1235);
  assert_int_equal(souk_store_tx(dst, check_copied_fn, NULL), 0);
  /* The next trade gets a fresh id rather than colliding with a copied
   * one. */
  assert_int_equal(souk_store_tx(dst, insert_after_copy_fn, NULL), 0);
  assert_int_equal(sql_int(dst, "SELECT max(id) FROM market_transactions"), 6);
  souk_store_close(dst);
}

/* ---- kill -9 during a burst of acknowledged writes ---- */

static int crash_fn(souk_db_t *db, void *ud) {
  int64_t i = *(int64_t *)ud;
  char key[32];
  snprintf(key, sizeof key, "%lld", (long long)i);
  return kv_put(db, "crash", key, i);
}

static void crash_child(fx_t *fx, int wfd) {
  souk_log_set_level(SOUK_LOG_OFF);
  souk_store_t *st = NULL;
  if (souk_store_open(&fx->conf, fx->dir, &st) != 0) _exit(2);
  for (int64_t i = 1; i < 10000000; i++) {
    if (souk_store_tx(st, crash_fn, &i) != 0) _exit(3);
    /* The acknowledgement: only after COMMIT returned. */
    if (write(wfd, &i, sizeof i) != (ssize_t)sizeof i) _exit(4);
  }
  _exit(0);
}

static void test_crash(void **state) {
  FX();
  /* Create the schema first, so the child only writes. */
  souk_store_close(fx_open(fx));
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    crash_child(fx, p[1]);
  }
  close(p[1]);
  int64_t acked = 0, v;
  while (acked < 400 && read(p[0], &v, sizeof v) == (ssize_t)sizeof v)
    acked = v;
  assert_int_equal(kill(pid, SIGKILL), 0);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  /* Acknowledgements still in the pipe count too. */
  while (read(p[0], &v, sizeof v) == (ssize_t)sizeof v)
    acked = v;
  close(p[0]);
  assert_true(acked >= 400);

  souk_store_t *st = fx_open(fx);
  souk_buf_t rep = {0};
  assert_int_equal(souk_store_check(st, &rep), 0);
  souk_buf_free(&rep);
  char sql[160];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM kv WHERE namespace = 'crash' AND updated_at <= %lld",
           (long long)acked);
  assert_int_equal(sql_int(st, sql), acked);
  /* At most the one write in flight at the kill went further. */
  int64_t total = sql_int(st, "SELECT count(*) FROM kv WHERE namespace = 'crash'");
  assert_true(total == acked || total == acked + 1);
  souk_store_close(st);
}

/* ---- URLs, config ---- */

static void test_conf(void **state) {
  /* Backend-independent: runs in the SQLite group only. */
  FX();
  souk_store_conf_t c = fx->conf;
  souk_store_t *st = NULL;
  c.url = "mysql://x";
  assert_int_equal(souk_store_open(&c, fx->dir, &st), SOUK_ECONFIG);
  c.url = NULL;
  assert_int_equal(souk_store_open(&c, NULL, &st), SOUK_EINVAL);
  c.pool_size = 0;
  assert_int_equal(souk_store_open(&c, fx->dir, &st), SOUK_EINVAL);
  c.pool_size = 1;
  c.url = "sqlite:///nonexistent-dir/x/souk.db";
  assert_int_equal(souk_store_open(&c, NULL, &st), SOUK_EIO);
  /* A refused PostgreSQL connection is retried, then reported. */
  c.url = "postgres://postgres@127.0.0.1:1/none";
  c.tx_retries = 1;
  assert_int_equal(souk_store_open(&c, NULL, &st), SOUK_ECONN);
  assert_null(st);

  /* The key table's defaults agree with souk_store_conf_defaults. */
  souk_store_conf_t d;
  souk_store_conf_defaults(&d);
  for (const souk_conf_key_t *k = souk__store_conf_keys; k->name; k++) {
    if (!strcmp(k->name, "pool_size")) assert_int_equal(d.pool_size, atoi(k->def));
    if (!strcmp(k->name, "tx_retries")) assert_int_equal(d.tx_retries, atoi(k->def));
    if (!strcmp(k->name, "busy_timeout")) assert_string_equal(k->def, "5s");
  }
  assert_int_equal(d.busy_timeout_ms, 5000);

  int n;
  char *r = souk__pg_rewrite("SELECT '?''?', \"a?\", ? -- ?\n, ? /* ? */ , ?", &n);
  assert_string_equal(r, "SELECT '?''?', \"a?\", $1 -- ?\n, $2 /* ? */ , $3");
  assert_int_equal(n, 3);
  souk_free(r);
}

/* ---- a full disk ---- */

static int full_calls;

/* SQLite: max_page_count makes SQLite itself answer SQLITE_FULL, exactly
 * as when the file system has no room.  PostgreSQL: the server's own
 * disk_full error (53100). */
static int full_fn(souk_db_t *db, void *ud) {
  (void)ud;
  full_calls++;
  if (souk_db_kind(db) == SOUK_STORE_SQLITE) {
    int rc = souk_db_exec(db, "PRAGMA max_page_count = 1");
    if (rc) return rc;
    return souk_db_exec(db, "INSERT INTO kv (namespace, key, value, updated_at) "
                            "VALUES ('f', 'x', zeroblob(262144), 1)");
  }
  return souk_db_exec(db, "DO $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left "
                          "on device' USING ERRCODE = 'disk_full'; END $$");
}

static void test_disk_full(void **state) {
  FX();
  fx->conf.pool_size = 1;
  souk_store_t *st = fx_open(fx);
  full_calls = 0;
  int rc = souk_store_tx(st, full_fn, NULL);
  assert_int_equal(rc, SOUK_ENOSPC);
  assert_string_equal(souk_strerror(rc), "no space left on the disk");
  assert_int_equal(full_calls, 1); /* retrying cannot make room */
  assert_int_equal(sql_int(st, "SELECT count(*) FROM kv WHERE namespace = 'f'"), 0);
  souk_store_close(st);
  /* File writes: a full disk or quota, never a generic I/O error. */
  assert_int_equal(souk_err_from_errno(ENOSPC), SOUK_ENOSPC);
  assert_int_equal(souk_err_from_errno(EDQUOT), SOUK_ENOSPC);
  assert_int_equal(souk_err_from_errno(EACCES), SOUK_EIO);
}

#define T(fn, be) cmocka_unit_test_prestate_setup_teardown(fn, fx_setup, fx_teardown, &be)
/* ---- a module's own schema ---- */

static const souk_migration_t shop_v1[] = {
    {1, "items", "CREATE TABLE shop_items (id BIGINT PRIMARY KEY, name TEXT NOT NULL)", NULL},
    {0},
};
static const souk_migration_t shop_v2[] = {
    {1, "items", "CREATE TABLE shop_items (id BIGINT PRIMARY KEY, name TEXT NOT NULL)", NULL},
    /* PostgreSQL's own SQL where the backends differ. */
    {2, "blobs", "CREATE TABLE shop_blobs (id BIGINT PRIMARY KEY, data BLOB)",
     "CREATE TABLE shop_blobs (id BIGINT PRIMARY KEY, data BYTEA)"},
    {0},
};

static int shop_count(souk_store_t *st, const char *table) {
  sqljob_t j = {0};
  char sql[96];
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table);
  j.sql = sql;
  return souk_store_read(st, int_fn, &j) == 0 ? (int)j.out : -1;
}

static void test_module_schema(void **state) {
  FX();
  souk_store_t *st = fx_open(fx);
  int v = -1, n = -1;
  assert_int_equal(souk_store_module_version(st, "shop", &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(souk_store_migrate_module(st, "shop", shop_v1, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(shop_count(st, "shop_items"), 0);
  /* Again: nothing to do. */
  assert_int_equal(souk_store_migrate_module(st, "shop", shop_v1, &n), 0);
  assert_int_equal(n, 0);
  /* A later souk appends a step: only it runs. */
  assert_int_equal(souk_store_migrate_module(st, "shop", shop_v2, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(souk_store_module_version(st, "shop", &v), 0);
  assert_int_equal(v, 2);
  assert_int_equal(shop_count(st, "shop_blobs"), 0);
  /* Another module keeps its own numbers. */
  assert_int_equal(souk_store_module_version(st, "other", &v), 0);
  assert_int_equal(v, 0);
  /* An older souk on the newer database refuses. */
  assert_int_equal(souk_store_migrate_module(st, "shop", shop_v1, &n), SOUK_EFATAL);
  /* Steps must be numbered 1, 2, 3 ... */
  static const souk_migration_t gap[] = {
      {1, "a", "SELECT 1", NULL}, {3, "c", "SELECT 1", NULL}, {0}};
  assert_int_equal(souk_store_migrate_module(st, "gap", gap, NULL), SOUK_EINVAL);
  souk_store_close(st);
}

/* A failing step rolls back whole and leaves the version where it was. */
static void test_module_schema_failure(void **state) {
  FX();
  souk_store_t *st = fx_open(fx);
  static const souk_migration_t bad[] = {
      {1, "items", "CREATE TABLE bad_items (id BIGINT PRIMARY KEY)", NULL},
      {2, "broken", "CREATE TABLE bad_more (id BIGINT); THIS IS NOT SQL", NULL},
      {0},
  };
  int n = -1, v = -1;
  assert_int_not_equal(souk_store_migrate_module(st, "bad", bad, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(souk_store_module_version(st, "bad", &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(shop_count(st, "bad_items"), 0);
  assert_int_equal(shop_count(st, "bad_more"), -1);
  souk_store_close(st);
}

#define ALL(be)                                                                                    \
  T(test_migrate, be), T(test_refuse_newer, be), T(test_binds, be), T(test_kv_read, be),           \
      T(test_rollback, be), T(test_already_exists, be), T(test_retry_applies_once, be),            \
      T(test_retry_real, be), T(test_concurrent, be), T(test_backup_check, be),                    \
      T(test_backup_before_migrate, be), T(test_forget, be), T(test_forget_with_a_function, be),   \
      T(test_crash, be), T(test_disk_full, be), T(test_module_schema, be),                         \
      T(test_module_schema_failure, be)

int main(void) {
  souk_log_set_level(getenv("SOUK_TEST_DEBUG") ? SOUK_LOG_DEBUG : SOUK_LOG_OFF);
  const struct CMUnitTest sqlite_tests[] = {ALL(be_sqlite), T(test_conf, be_sqlite)};
  const struct CMUnitTest pg_tests[] = {ALL(be_pg), T(test_copy, be_pg)};
  int fails = cmocka_run_group_tests_name("store/sqlite", sqlite_tests, NULL, NULL);
  fails +=
      cmocka_run_group_tests_name("store/postgres", pg_tests, pg_group_setup, pg_group_teardown);
  souk_loop_close();
  return fails;
}
