/* The store: URL selection, the connection pool, the transaction runner
 * with retries, statements dispatched to the backend in use, migrations,
 * and the operations behind `souk db ...`. */
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "store/store_int.h"
#include "store/storeconf.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

atomic_int souk__store_fault_commit_lost;

/* The advisory lock key PostgreSQL migrations hold, so two processes
 * starting together apply each migration once. */
#define MIGRATE_LOCK_SQL "SELECT pg_advisory_xact_lock(7305482017)"

void souk_store_conf_defaults(souk_store_conf_t *conf) {
  memset(conf, 0, sizeof *conf);
  conf->pool_size = 4;
  conf->busy_timeout_ms = 5000;
  conf->backup_before_migrate = true;
  conf->migrate = true;
  conf->synchronous = SOUK_STORE_SYNC_NORMAL;
  conf->tx_retries = 8;
  conf->retry_base_ms = 20;
  conf->retry_max_ms = 2000;
  conf->connect_timeout_ms = 5000;
}

souk_store_kind_t souk_store_kind(const souk_store_t *st) { return st->kind; }
souk_store_kind_t souk_db_kind(const souk_db_t *db) { return db->kind; }
int souk_store_schema_latest(void) { return souk__migrations[souk__migrations_n - 1].version; }

static char *path_join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *p = souk_malloc(n);
  snprintf(p, n, "%s/%s", a, b);
  return p;
}

/* Register the password of a URL as a log secret, so a connection error
 * that echoes the URL cannot leak it. */
static void redact_url_password(const char *url) {
  const char *s = strstr(url, "://");
  if (!s) return;
  s += 3;
  const char *at = strchr(s, '@');
  const char *colon = strchr(s, ':');
  if (!at || !colon || colon > at) return;
  char *pw = souk_strndup(colon + 1, (size_t)(at - colon - 1));
  souk_log_add_secret(pw);
  souk_free(pw);
}

/* ---- the pool ---- */

static void db_disconnect(souk_db_t *db) {
  if (db->kind == SOUK_STORE_SQLITE)
    souk__lite_disconnect(db);
  else
    souk__pg_disconnect(db);
}

int souk__store_acquire(souk_store_t *st, souk_db_t **out) {
  pthread_mutex_lock(&st->mu);
  souk_db_t *db = NULL;
  bool waited = false;
  for (;;) {
    for (int i = 0; i < st->npool && !db; i++)
      if (!st->pool[i].in_use) db = &st->pool[i];
    if (db) break;
    if (!waited) st->waited++;
    waited = true;
    st->waiting++;
    pthread_cond_wait(&st->cv, &st->mu);
    st->waiting--;
  }
  db->in_use = true;
  st->acquired++;
  pthread_mutex_unlock(&st->mu);
  db->retry = false;
  if (db->broken) {
    db_disconnect(db);
    db->broken = false;
  }
  if (!db->lite && !db->pg) {
    int rc = db->kind == SOUK_STORE_SQLITE ? souk__lite_connect(db) : souk__pg_connect(db);
    if (rc != 0) {
      bool retry = db->retry;
      souk__store_release(db);
      /* A refused connection is worth another try later; the caller sees
       * ECONN and the runner applies its backoff. */
      return retry ? SOUK_ECONN : rc;
    }
  }
  *out = db;
  return 0;
}

void souk__store_release(souk_db_t *db) {
  souk_store_t *st = db->st;
  pthread_mutex_lock(&st->mu);
  db->in_use = false;
  pthread_cond_signal(&st->cv);
  pthread_mutex_unlock(&st->mu);
}

typedef struct quick_job {
  char first[256]; /* the first problem, or "" */
} quick_job_t;

static int quick_fn(souk_db_t *db, void *ud) {
  quick_job_t *j = ud;
  j->first[0] = '\0';
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, "PRAGMA quick_check(1)", &s);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    const char *t = souk_stmt_column_text(s, 0, NULL);
    if (t && strcmp(t, "ok") != 0) snprintf(j->first, sizeof j->first, "%s", t);
    rc = 0;
  }
  souk_stmt_finalize(s);
  return rc;
}

/* A damaged SQLite file must stop the start: served as it is, every
 * command would fail ("try again in a moment") for ever.  quick_check reads
 * every page but skips the index cross-checks of integrity_check, so it
 * stays fast enough for each start. */
static int quick_check(souk_store_t *st) {
  quick_job_t j;
  int rc = souk_store_read(st, quick_fn, &j);
  if (rc == 0 && j.first[0]) rc = SOUK_ECORRUPT;
  if (rc == SOUK_ECORRUPT)
    SOUK_ERROR("store", "%s is damaged%s%s", st->path, j.first[0] ? ": " : "", j.first);
  return rc;
}

int souk_store_open(const souk_store_conf_t *conf, const char *data_dir, souk_store_t **out) {
  if (!conf || !out || conf->pool_size < 1 || conf->pool_size > 64) return SOUK_EINVAL;
  souk_store_t *st = souk_calloc(1, sizeof *st);
  st->conf = *conf;
  const char *url = conf->url;
  if (!url || !*url) {
    if (!data_dir) {
      souk_free(st);
      return SOUK_EINVAL;
    }
    st->kind = SOUK_STORE_SQLITE;
    st->path = path_join(data_dir, "souk.db");
  } else if (!strncmp(url, "sqlite://", 9) && url[9]) {
    st->kind = SOUK_STORE_SQLITE;
    st->path = souk_strdup(url + 9);
  } else if (!strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13)) {
    st->kind = SOUK_STORE_POSTGRES;
    st->url = souk_strdup(url);
    redact_url_password(url);
  } else {
    SOUK_ERROR("store", "store.url must be sqlite:///path or postgres://user@host:port/db");
    souk_free(st);
    return SOUK_ECONFIG;
  }
  st->conf.url = st->url ? st->url : st->path;
  if (data_dir) {
    st->backup_dir = path_join(data_dir, "backups");
  } else if (st->path) {
    const char *slash = strrchr(st->path, '/');
    char *dir = slash ? souk_strndup(st->path, (size_t)(slash - st->path)) : souk_strdup(".");
    st->backup_dir = path_join(*dir ? dir : "/", "backups");
    souk_free(dir);
  }
  st->npool = (int)conf->pool_size;
  st->pool = souk_calloc((size_t)st->npool, sizeof *st->pool);
  for (int i = 0; i < st->npool; i++) {
    st->pool[i].st = st;
    st->pool[i].kind = st->kind;
  }
  pthread_mutex_init(&st->mu, NULL);
  pthread_cond_init(&st->cv, NULL);

  /* Connect once now so a wrong path or URL fails at start, not at the
   * first command. */
  souk_db_t *db;
  int rc = souk__store_acquire(st, &db);
  if (rc == 0) souk__store_release(db);
  if (rc == 0 && st->kind == SOUK_STORE_SQLITE && conf->quick_check) rc = quick_check(st);
  if (rc == 0) {
    int version = 0;
    rc = conf->migrate ? souk__store_migrate(st, NULL) : souk_store_schema_version(st, &version);
    if (rc == 0 && !conf->migrate && version < souk_store_schema_latest())
      SOUK_WARN("store",
                "database schema version %d is behind this binary (%d) and store.migrate is "
                "off: run `souk db migrate`",
                version, souk_store_schema_latest());
    if (rc == 0 && version > souk_store_schema_latest()) {
      SOUK_ERROR("store",
                 "database schema version %d is newer than this binary knows (%d): "
                 "run a newer souk or restore a backup",
                 version, souk_store_schema_latest());
      rc = SOUK_EFATAL;
    }
  }
  if (rc != 0) {
    souk_store_close(st);
    return rc;
  }
  /* quick_check and the migrations have read every page of the file into
   * the connection's cache (up to 2 MB): keep only what use brings back. */
  if (st->kind == SOUK_STORE_SQLITE)
    for (int i = 0; i < st->npool; i++)
      souk__lite_release_memory(&st->pool[i]);
  *out = st;
  return 0;
}

void souk_store_close(souk_store_t *st) {
  if (!st) return;
  for (int i = 0; i < st->npool; i++) {
    SOUK_ASSERT(!st->pool[i].in_use);
    db_disconnect(&st->pool[i]);
  }
  pthread_mutex_destroy(&st->mu);
  pthread_cond_destroy(&st->cv);
  souk_free(st->pool);
  souk_free(st->url);
  souk_free(st->path);
  souk_free(st->backup_dir);
  souk_free(st);
}

/* ---- transactions ---- */

static uint64_t jitter_rand(void) {
  /* Per-thread xorshift: the backoff only needs to de-synchronise threads
   * and processes, and the shared PRNG is not for pool threads. */
  static _Thread_local uint64_t x;
  if (!x) x = ((uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&x ^ (souk_now_ms() << 20)) | 1;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

static void backoff(const souk_store_t *st, int attempt) {
  int64_t d = st->conf.retry_base_ms;
  for (int i = 0; i < attempt && d < st->conf.retry_max_ms; i++)
    d *= 2;
  if (d > st->conf.retry_max_ms) d = st->conf.retry_max_ms;
  if (d <= 0) return;
  /* Full wait halved plus a random half, so retries spread out. */
  int64_t ms = d / 2 + (int64_t)(jitter_rand() % (uint64_t)(d / 2 + 1));
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int tx_begin(souk_db_t *db, bool readonly) {
  if (db->kind == SOUK_STORE_POSTGRES)
    return souk__pg_exec(db, readonly ? "BEGIN READ ONLY" : "BEGIN");
  /* query_only makes a write in a read transaction fail on SQLite as
   * READ ONLY makes it fail on PostgreSQL; it is switched only when the
   * kind of transaction changes. */
  if (db->query_only != readonly) {
    int rc = souk__lite_exec(db, readonly ? "PRAGMA query_only=1" : "PRAGMA query_only=0");
    if (rc != 0) return rc;
    db->query_only = readonly;
  }
  /* A read transaction is deferred: in WAL mode it reads a snapshot and
   * never waits for writers.  A write transaction takes the write lock up
   * front with IMMEDIATE: a deferred one that reads and then writes can
   * fail with a busy error the busy timeout cannot wait out. */
  return souk__lite_exec(db, readonly ? "BEGIN" : "BEGIN IMMEDIATE");
}

static int tx_end(souk_db_t *db, bool commit) {
  const char *sql = commit ? "COMMIT" : "ROLLBACK";
  int rc = db->kind == SOUK_STORE_SQLITE ? souk__lite_exec(db, sql) : souk__pg_exec(db, sql);
  if (rc != 0 && commit) {
    /* A failed SQLite COMMIT (busy) leaves the transaction open. */
    if (db->kind == SOUK_STORE_SQLITE && !sqlite3_get_autocommit(db->lite))
      souk__lite_exec(db, "ROLLBACK");
  } else if (rc != 0) {
    /* A rollback that fails leaves the connection in an unknown state. */
    db->broken = true;
  }
  return rc;
}

int souk__store_tx_n(souk_store_t *st, souk_store_tx_cb fn, void *ud, int retries, bool readonly) {
  for (int attempt = 0;; attempt++) {
    souk_db_t *db = NULL;
    bool retry;
    int rc = souk__store_acquire(st, &db);
    if (rc == 0) {
      rc = tx_begin(db, readonly);
      if (rc == 0) {
        rc = fn(db, ud);
        if (rc == 0) {
          rc = tx_end(db, true);
          if (rc == 0 && atomic_load(&souk__store_fault_commit_lost) > 0 &&
              atomic_fetch_sub(&souk__store_fault_commit_lost, 1) > 0) {
            db->retry = true;
            rc = SOUK_ECLOSED;
          }
        } else {
          tx_end(db, false);
        }
      }
      retry = rc != 0 && db->retry;
      souk__store_release(db);
    } else {
      retry = rc == SOUK_ECONN;
    }
    if (!retry || attempt >= retries) {
      if (rc != 0 && retry)
        SOUK_WARN("store", "transaction failed after %d attempts: %s", attempt + 1,
                  souk_strerror(rc));
      if (rc != 0) {
        pthread_mutex_lock(&st->mu);
        st->failed++;
        pthread_mutex_unlock(&st->mu);
      }
      return rc;
    }
    pthread_mutex_lock(&st->mu);
    st->retried++;
    pthread_mutex_unlock(&st->mu);
    SOUK_DEBUG("store", "transaction attempt %d failed (%s); running it again", attempt + 1,
               souk_strerror(rc));
    backoff(st, attempt);
  }
}

int souk_store_pool_stats(souk_store_t *st, souk_store_pool_stats_t *out) {
  if (!st || !out) return SOUK_EINVAL;
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&st->mu);
  out->size = st->npool;
  for (int i = 0; i < st->npool; i++) {
    out->in_use += st->pool[i].in_use;
    out->connected += st->pool[i].lite || st->pool[i].pg;
  }
  out->waiting = st->waiting;
  out->acquired = st->acquired;
  out->waited = st->waited;
  out->retried = st->retried;
  out->failed = st->failed;
  pthread_mutex_unlock(&st->mu);
  if (st->kind == SOUK_STORE_SQLITE) out->memory = sqlite3_memory_used();
  return 0;
}

int souk_store_tx(souk_store_t *st, souk_store_tx_cb fn, void *ud) {
  if (!st || !fn) return SOUK_EINVAL;
  return souk__store_tx_n(st, fn, ud, (int)st->conf.tx_retries, false);
}

int souk_store_read(souk_store_t *st, souk_store_tx_cb fn, void *ud) {
  if (!st || !fn) return SOUK_EINVAL;
  return souk__store_tx_n(st, fn, ud, (int)st->conf.tx_retries, true);
}

typedef struct tx_job {
  souk_store_t *st;
  souk_store_tx_cb fn;
  souk_store_done_cb done;
  void *ud;
  bool readonly;
  int rc;
} tx_job_t;

static void tx_work(void *arg) {
  tx_job_t *j = arg;
  j->rc = souk__store_tx_n(j->st, j->fn, j->ud, (int)j->st->conf.tx_retries, j->readonly);
}

static void tx_done(void *arg, int status) {
  tx_job_t *j = arg;
  j->done(j->ud, status ? status : j->rc);
  souk_free(j);
}

static int submit(souk_store_t *st, souk_store_tx_cb fn, souk_store_done_cb done, void *ud,
                  bool readonly) {
  if (!st || !fn || !done) return SOUK_EINVAL;
  tx_job_t *j = souk_calloc(1, sizeof *j);
  *j = (tx_job_t){st, fn, done, ud, readonly, 0};
  int rc = souk_work_submit(tx_work, tx_done, j);
  if (rc != 0) souk_free(j);
  return rc;
}

int souk_store_tx_async(souk_store_t *st, souk_store_tx_cb fn, souk_store_done_cb done, void *ud) {
  return submit(st, fn, done, ud, false);
}

int souk_store_read_async(souk_store_t *st, souk_store_tx_cb fn, souk_store_done_cb done,
                          void *ud) {
  return submit(st, fn, done, ud, true);
}

/* ---- statements ---- */

int souk_db_exec(souk_db_t *db, const char *sql) {
  if (!db || !sql) return SOUK_EINVAL;
  return db->kind == SOUK_STORE_SQLITE ? souk__lite_exec(db, sql) : souk__pg_exec(db, sql);
}

int souk_db_prepare(souk_db_t *db, const char *sql, souk_stmt_t **out) {
  if (!db || !sql || !out) return SOUK_EINVAL;
  return db->kind == SOUK_STORE_SQLITE ? souk__lite_prepare(db, sql, out)
                                       : souk__pg_prepare(db, sql, out);
}

static int bind_va(souk_stmt_t *s, const char *fmt, va_list ap) {
  int rc = 0;
  for (int i = 0; fmt && fmt[i] && rc == 0; i++) {
    if (fmt[i] == 'i')
      rc = souk_stmt_bind_int64(s, i + 1, va_arg(ap, int64_t));
    else if (fmt[i] == 's')
      rc = souk_stmt_bind_text(s, i + 1, va_arg(ap, const char *), SIZE_MAX);
    else
      rc = SOUK_EINVAL;
  }
  return rc;
}

int souk_db_preparef(souk_db_t *db, souk_stmt_t **out, const char *sql, const char *fmt, ...) {
  if (!out) return SOUK_EINVAL;
  *out = NULL;
  souk_stmt_t *s = NULL;
  int rc = souk_db_prepare(db, sql, &s);
  if (rc != 0) return rc;
  va_list ap;
  va_start(ap, fmt);
  rc = bind_va(s, fmt, ap);
  va_end(ap);
  if (rc != 0) souk_stmt_finalize(s);
  else *out = s;
  return rc;
}

int souk_db_runf(souk_db_t *db, int64_t *changes, const char *sql, const char *fmt, ...) {
  souk_stmt_t *s = NULL;
  int rc = souk_db_prepare(db, sql, &s);
  if (rc != 0) return rc;
  va_list ap;
  va_start(ap, fmt);
  rc = bind_va(s, fmt, ap);
  va_end(ap);
  if (rc == 0) rc = souk_stmt_step(s);
  if (rc == 1) rc = 0;
  if (rc == 0 && changes) *changes = souk_stmt_changes(s);
  souk_stmt_finalize(s);
  return rc;
}

void souk_stmt_finalize(souk_stmt_t *s) {
  if (!s) return;
  if (s->ls) {
    sqlite3_finalize(s->ls);
  } else {
    souk__pg_clear(s);
    for (int i = 0; i < s->nparams; i++)
      souk_free(s->vals[i]);
    souk_free(s->vals);
    souk_free(s->lens);
    souk_free(s->fmts);
    souk_free(s->types);
    souk_free(s->sql);
  }
  souk_free(s);
}

int souk_stmt_reset(souk_stmt_t *s) {
  if (!s) return SOUK_EINVAL;
  if (s->ls) {
    sqlite3_reset(s->ls);
    s->executed = false;
  } else
    souk__pg_clear(s);
  return 0;
}

/* Binding after a step rewinds the statement first, as both backends need
 * (SQLite refuses binds on a running statement). */
static int pg_bind(souk_stmt_t *s, int idx, void *val, int len, int fmt, Oid type) {
  if (idx < 1 || idx > s->nparams) {
    souk_free(val);
    return SOUK_EINVAL;
  }
  if (s->executed) souk__pg_clear(s);
  souk_free(s->vals[idx - 1]);
  s->vals[idx - 1] = val;
  s->lens[idx - 1] = len;
  s->fmts[idx - 1] = fmt;
  s->types[idx - 1] = type;
  return 0;
}

static int lite_bind_rc(souk_stmt_t *s, int rc) {
  if (rc == SQLITE_RANGE) return SOUK_EINVAL;
  return souk__lite_err(s->db, rc, "bind");
}

static void lite_unstep(souk_stmt_t *s) {
  /* sqlite3_stmt_busy() turns false once SQLITE_DONE came back, but a
   * finished statement still needs a reset before new binds. */
  if (s->executed) {
    sqlite3_reset(s->ls);
    s->executed = false;
  }
}

int souk_stmt_bind_int64(souk_stmt_t *s, int idx, int64_t v) {
  if (!s) return SOUK_EINVAL;
  if (s->ls) {
    lite_unstep(s);
    return lite_bind_rc(s, sqlite3_bind_int64(s->ls, idx, v));
  }
  uint64_t be = htobe64((uint64_t)v);
  char *p = souk_malloc(8);
  memcpy(p, &be, 8);
  return pg_bind(s, idx, p, 8, 1, 20 /* int8 */);
}

int souk_stmt_bind_text(souk_stmt_t *s, int idx, const char *v, size_t n) {
  if (!s) return SOUK_EINVAL;
  if (!v) return souk_stmt_bind_null(s, idx);
  if (n == SIZE_MAX) n = strlen(v);
  if (n > INT_MAX) return SOUK_ETOOBIG;
  if (s->ls) {
    lite_unstep(s);
    return lite_bind_rc(s, sqlite3_bind_text(s->ls, idx, v, (int)n, SQLITE_TRANSIENT));
  }
  /* Text goes in text format with no declared type, so PostgreSQL infers
   * the column's type (TEXT, or a BIGINT compared with a string). */
  return pg_bind(s, idx, souk_memdup0(v, n), (int)n, 0, 0);
}

int souk_stmt_bind_blob(souk_stmt_t *s, int idx, const void *v, size_t n) {
  if (!s) return SOUK_EINVAL;
  if (!v) return souk_stmt_bind_null(s, idx);
  if (n > INT_MAX) return SOUK_ETOOBIG;
  if (s->ls) {
    lite_unstep(s);
    return lite_bind_rc(s, sqlite3_bind_blob(s->ls, idx, v, (int)n, SQLITE_TRANSIENT));
  }
  return pg_bind(s, idx, souk_memdup0(v, n), (int)n, 1, 17 /* bytea */);
}

int souk_stmt_bind_null(souk_stmt_t *s, int idx) {
  if (!s) return SOUK_EINVAL;
  if (s->ls) {
    lite_unstep(s);
    return lite_bind_rc(s, sqlite3_bind_null(s->ls, idx));
  }
  return pg_bind(s, idx, NULL, 0, 0, 0);
}

int souk_stmt_step(souk_stmt_t *s) {
  if (!s) return SOUK_EINVAL;
  if (!s->ls) return souk__pg_step(s);
  s->executed = true;
  int rc = sqlite3_step(s->ls);
  if (rc == SQLITE_ROW) return 1;
  if (rc == SQLITE_DONE) {
    s->changes = sqlite3_changes64(s->db->lite);
    return 0;
  }
  int err = souk__lite_err(s->db, rc, "step");
  return err ? err : SOUK_EIO;
}

int64_t souk_stmt_changes(const souk_stmt_t *s) { return s ? s->changes : 0; }

int souk_stmt_column_count(const souk_stmt_t *s) {
  if (s->ls) return sqlite3_column_count(s->ls);
  return s->res ? PQnfields(s->res) : 0;
}

const char *souk_stmt_column_name(const souk_stmt_t *s, int col) {
  if (s->ls) return sqlite3_column_name(s->ls, col);
  return s->res ? PQfname(s->res, col) : NULL;
}

/* Whether the PostgreSQL current row has a value at col. */
static bool pg_has(const souk_stmt_t *s, int col) {
  return s->res && s->row >= 0 && s->row < s->nrows && col >= 0 && col < PQnfields(s->res) &&
         !PQgetisnull(s->res, s->row, col);
}

souk_col_type_t souk_stmt_column_type(const souk_stmt_t *s, int col) {
  if (s->ls) {
    switch (sqlite3_column_type(s->ls, col)) {
    case SQLITE_INTEGER:
      return SOUK_COL_INT;
    case SQLITE_TEXT:
      return SOUK_COL_TEXT;
    case SQLITE_BLOB:
      return SOUK_COL_BLOB;
    case SQLITE_NULL:
      return SOUK_COL_NULL;
    default:
      return SOUK_COL_OTHER;
    }
  }
  if (!pg_has(s, col)) return SOUK_COL_NULL;
  switch (PQftype(s->res, col)) {
  case 16: /* bool */
  case 20: /* int8 */
  case 21: /* int2 */
  case 23: /* int4 */
  case 26: /* oid */
    return SOUK_COL_INT;
  case 19:   /* name */
  case 25:   /* text */
  case 705:  /* unknown */
  case 1042: /* bpchar */
  case 1043: /* varchar */
    return SOUK_COL_TEXT;
  case 17: /* bytea */
    return SOUK_COL_BLOB;
  default:
    return SOUK_COL_OTHER;
  }
}

static int64_t pg_int(const souk_stmt_t *s, int col) {
  const unsigned char *p = (const unsigned char *)PQgetvalue(s->res, s->row, col);
  int len = PQgetlength(s->res, s->row, col);
  switch (PQftype(s->res, col)) {
  case 20: {
    uint64_t v;
    memcpy(&v, p, 8);
    return (int64_t)be64toh(v);
  }
  case 23: {
    uint32_t v;
    memcpy(&v, p, 4);
    return (int32_t)be32toh(v);
  }
  case 26: {
    uint32_t v;
    memcpy(&v, p, 4);
    return (int64_t)be32toh(v);
  }
  case 21: {
    uint16_t v;
    memcpy(&v, p, 2);
    return (int16_t)be16toh(v);
  }
  case 16:
    return len > 0 && p[0];
  default:
    return strtoll((const char *)p, NULL, 10);
  }
}

int64_t souk_stmt_column_int64(const souk_stmt_t *s, int col) {
  if (s->ls) return sqlite3_column_int64(s->ls, col);
  return pg_has(s, col) ? pg_int(s, col) : 0;
}

const char *souk_stmt_column_text(const souk_stmt_t *s, int col, size_t *n) {
  if (s->ls) {
    const char *t = (const char *)sqlite3_column_text(s->ls, col);
    if (n) *n = t ? (size_t)sqlite3_column_bytes(s->ls, col) : 0;
    return t;
  }
  if (n) *n = 0;
  if (!pg_has(s, col)) return NULL;
  if (souk_stmt_column_type(s, col) == SOUK_COL_INT) {
    /* Binary integers have no text form on the wire: format one, kept per
     * column so it stays valid until the next step like any other text. */
    souk_stmt_t *m = (souk_stmt_t *)s;
    if (!m->scratch) m->scratch = souk_calloc((size_t)PQnfields(s->res), sizeof *m->scratch);
    int k = snprintf(m->scratch[col], sizeof m->scratch[col], "%lld", (long long)pg_int(s, col));
    if (n) *n = (size_t)k;
    return m->scratch[col];
  }
  if (n) *n = (size_t)PQgetlength(s->res, s->row, col);
  /* libpq terminates binary values with a NUL byte too. */
  return PQgetvalue(s->res, s->row, col);
}

const void *souk_stmt_column_blob(const souk_stmt_t *s, int col, size_t *n) {
  if (s->ls) {
    const void *p = sqlite3_column_blob(s->ls, col);
    if (n) *n = (size_t)sqlite3_column_bytes(s->ls, col);
    /* SQLite returns NULL for an empty BLOB; only NULL should look NULL. */
    if (!p && sqlite3_column_type(s->ls, col) != SQLITE_NULL) p = "";
    return p;
  }
  if (n) *n = 0;
  if (!pg_has(s, col)) return NULL;
  if (souk_stmt_column_type(s, col) == SOUK_COL_INT) return souk_stmt_column_text(s, col, n);
  if (n) *n = (size_t)PQgetlength(s->res, s->row, col);
  return PQgetvalue(s->res, s->row, col);
}

/* Run a query expected to give one integer. */
static int query_int(souk_db_t *db, const char *sql, const char *arg, int64_t *out) {
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, sql, &s);
  if (rc != 0) return rc;
  if (arg) rc = souk_stmt_bind_text(s, 1, arg, SIZE_MAX);
  if (rc == 0) rc = souk_stmt_step(s);
  if (rc == 1) {
    *out = souk_stmt_column_int64(s, 0);
    rc = 0;
  } else if (rc == 0) {
    rc = SOUK_ENOTFOUND;
  }
  souk_stmt_finalize(s);
  return rc;
}

int souk_db_once(souk_db_t *db, const char *key) {
  if (!db || !key) return SOUK_EINVAL;
  souk_stmt_t *s;
  /* ON CONFLICT DO NOTHING instead of catching a unique violation: on
   * PostgreSQL any error aborts the rest of the transaction. */
  int rc = souk_db_prepare(db,
                           "INSERT INTO idempotency (key, created_at) VALUES (?, ?) "
                           "ON CONFLICT (key) DO NOTHING",
                           &s);
  if (rc != 0) return rc;
  rc = souk_stmt_bind_text(s, 1, key, SIZE_MAX);
  if (rc == 0) rc = souk_stmt_bind_int64(s, 2, (int64_t)souk_unix_ms());
  if (rc == 0) rc = souk_stmt_step(s);
  if (rc == 0 && souk_stmt_changes(s) == 0) rc = SOUK_EEXIST;
  souk_stmt_finalize(s);
  return rc;
}

int souk_db_once_prune(souk_db_t *db, int64_t before_unix_ms, int64_t *deleted) {
  if (!db) return SOUK_EINVAL;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, "DELETE FROM idempotency WHERE created_at < ?", &s);
  if (rc != 0) return rc;
  rc = souk_stmt_bind_int64(s, 1, before_unix_ms);
  if (rc == 0) rc = souk_stmt_step(s);
  if (deleted) *deleted = rc == 0 ? souk_stmt_changes(s) : 0;
  souk_stmt_finalize(s);
  return rc;
}

int souk_db_fence(souk_db_t *db, int64_t token) {
  if (!db) return SOUK_EINVAL;
  if (token <= 0) return 0;
  /* One conditional upsert: the row keeps the newest token that wrote,
   * and a write under an older one changes nothing.  On PostgreSQL the
   * upsert locks the row, so two holders' writes are ordered, and the
   * WHERE sees the newest committed token. */
  int64_t changes = 0;
  int rc = souk_db_runf(db, &changes,
                        "INSERT INTO cluster_fence (name, token, updated_at) VALUES ('lease', ?, ?) "
                        "ON CONFLICT (name) DO UPDATE SET token = excluded.token, "
                        "updated_at = excluded.updated_at WHERE cluster_fence.token <= excluded.token",
                        "ii", token, (int64_t)souk_unix_ms());
  if (rc) return rc;
  if (changes) return 0;
  souk_stmt_t *s = NULL;
  rc = souk_db_preparef(db, &s, "SELECT token FROM cluster_fence WHERE name = 'lease'", "");
  if (rc == 0 && souk_stmt_step(s) == 1) souk__store_fence_saw(souk_stmt_column_int64(s, 0));
  souk_stmt_finalize(s);
  SOUK_WARN("store", "refused a write under lease token %lld: a newer holder has written",
            (long long)token);
  return SOUK_ESTALE;
}

int souk_db_kv_put(souk_db_t *db, const char *ns, const char *key, const void *value, size_t n) {
  if (!db || !ns || !key) return SOUK_EINVAL;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           "INSERT INTO kv (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, "
                           "updated_at = excluded.updated_at",
                           &s);
  if (rc != 0) return rc;
  rc = souk_stmt_bind_text(s, 1, ns, SIZE_MAX);
  if (rc == 0) rc = souk_stmt_bind_text(s, 2, key, SIZE_MAX);
  if (rc == 0) rc = souk_stmt_bind_blob(s, 3, value, n);
  if (rc == 0) rc = souk_stmt_bind_int64(s, 4, (int64_t)souk_unix_ms());
  if (rc == 0) rc = souk_stmt_step(s);
  souk_stmt_finalize(s);
  return rc;
}

int souk_db_kv_get(souk_db_t *db, const char *ns, const char *key, souk_buf_t *out,
                   int64_t *updated_at) {
  if (!db || !ns || !key || !out) return SOUK_EINVAL;
  souk_stmt_t *s;
  int rc =
      souk_db_prepare(db, "SELECT value, updated_at FROM kv WHERE namespace = ? AND key = ?", &s);
  if (rc != 0) return rc;
  rc = souk_stmt_bind_text(s, 1, ns, SIZE_MAX);
  if (rc == 0) rc = souk_stmt_bind_text(s, 2, key, SIZE_MAX);
  if (rc == 0) rc = souk_stmt_step(s);
  if (rc == 1) {
    size_t n = 0;
    const void *p = souk_stmt_column_blob(s, 0, &n);
    if (p) souk_buf_append(out, p, n);
    if (updated_at) *updated_at = souk_stmt_column_int64(s, 1);
    rc = 0;
  } else if (rc == 0) {
    rc = SOUK_ENOTFOUND;
  }
  souk_stmt_finalize(s);
  return rc;
}

int souk_db_kv_del(souk_db_t *db, const char *ns, const char *key) {
  if (!db || !ns || !key) return SOUK_EINVAL;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, "DELETE FROM kv WHERE namespace = ? AND key = ?", &s);
  if (rc != 0) return rc;
  rc = souk_stmt_bind_text(s, 1, ns, SIZE_MAX);
  if (rc == 0) rc = souk_stmt_bind_text(s, 2, key, SIZE_MAX);
  if (rc == 0) rc = souk_stmt_step(s);
  if (rc == 0 && souk_stmt_changes(s) == 0) rc = SOUK_ENOTFOUND;
  souk_stmt_finalize(s);
  return rc;
}

/* ---- schema version and migrations ---- */

static int table_exists(souk_db_t *db, const char *name, bool *yes) {
  int64_t n = 0;
  int rc = query_int(db,
                     db->kind == SOUK_STORE_SQLITE
                         ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
                         : "SELECT count(*) FROM information_schema.tables "
                           "WHERE table_schema = current_schema() AND table_name = ?",
                     name, &n);
  *yes = n > 0;
  return rc;
}

static int read_version(souk_db_t *db, int *out) {
  bool yes;
  int rc = table_exists(db, "schema_version", &yes);
  int64_t v = 0;
  if (rc == 0 && yes)
    rc = query_int(db, "SELECT COALESCE(MAX(version), 0) FROM schema_version", NULL, &v);
  if (rc == 0) *out = (int)v;
  return rc;
}

static int version_fn(souk_db_t *db, void *ud) { return read_version(db, ud); }

int souk_store_schema_version(souk_store_t *st, int *out) {
  if (!st || !out) return SOUK_EINVAL;
  return souk_store_read(st, version_fn, out);
}

typedef struct mig_job {
  const souk__migration_t *m; /* NULL: bootstrap schema_version */
  int version;                /* out: version seen before applying */
  bool applied;
} mig_job_t;

static int migrate_fn(souk_db_t *db, void *ud) {
  mig_job_t *j = ud;
  j->applied = false;
  int rc = 0;
  if (db->kind == SOUK_STORE_POSTGRES) rc = souk__pg_exec(db, MIGRATE_LOCK_SQL);
  if (rc == 0 && !j->m)
    rc = souk_db_exec(db, "CREATE TABLE IF NOT EXISTS schema_version ("
                          "version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
                          "applied_at BIGINT NOT NULL)");
  if (rc == 0) rc = read_version(db, &j->version);
  if (rc != 0 || !j->m || j->version >= j->m->version) return rc;
  if (j->version != j->m->version - 1) return SOUK_EFATAL; /* a gap: never guess */
  const char *sql =
      db->kind == SOUK_STORE_POSTGRES && j->m->sql_pg ? j->m->sql_pg : j->m->sql_sqlite;
  rc = souk_db_exec(db, sql);
  souk_stmt_t *s = NULL;
  if (rc == 0)
    rc = souk_db_prepare(
        db, "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)", &s);
  if (rc == 0) rc = souk_stmt_bind_int64(s, 1, j->m->version);
  if (rc == 0) rc = souk_stmt_bind_text(s, 2, j->m->description, SIZE_MAX);
  if (rc == 0) rc = souk_stmt_bind_int64(s, 3, (int64_t)souk_unix_ms());
  if (rc == 0) rc = souk_stmt_step(s);
  souk_stmt_finalize(s);
  if (rc == 0) j->applied = true;
  return rc;
}

char *souk_store_newest_backup(const char *backup_dir) {
  DIR *d = backup_dir ? opendir(backup_dir) : NULL;
  if (!d) return NULL;
  char *best = NULL;
  struct dirent *e;
  /* The names start with the UTC time, so the greatest is the newest. */
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (strncmp(e->d_name, "souk-", 5) != 0 || n < 8 || strcmp(e->d_name + n - 3, ".db") != 0)
      continue;
    if (!best || strcmp(e->d_name, best) > 0) {
      souk_free(best);
      best = souk_strdup(e->d_name);
    }
  }
  closedir(d);
  if (!best) return NULL;
  char *p = path_join(backup_dir, best);
  souk_free(best);
  return p;
}

int souk__store_backup_before(souk_store_t *st, int version, char **path_out) {
  if (st->kind == SOUK_STORE_POSTGRES) {
    SOUK_INFO("store",
              "migrating a PostgreSQL database from v%d: no automatic backup is "
              "taken; pg_dump before upgrades is the operator's job",
              version);
    return 0;
  }
  if (mkdir(st->backup_dir, 0700) != 0 && errno != EEXIST) {
    SOUK_ERROR("store", "cannot create %s: %s", st->backup_dir, strerror(errno));
    return souk_err_from_errno(errno);
  }
  uint64_t now = souk_unix_ms();
  time_t t = (time_t)(now / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
  size_t n = strlen(st->backup_dir) + 64;
  char *path = souk_malloc(n);
  snprintf(path, n, "%s/souk-%s.%03uZ-v%d.db", st->backup_dir, stamp, (unsigned)(now % 1000),
           version);
  int rc = souk_store_backup(st, path);
  if (rc == 0) SOUK_INFO("store", "backup before migration: %s", path);
  if (rc == 0 && path_out)
    *path_out = path;
  else
    souk_free(path);
  return rc;
}

int souk__store_migrate(souk_store_t *st, int *applied) {
  if (!st) return SOUK_EINVAL;
  if (applied) *applied = 0;
  int latest = souk_store_schema_latest();
  mig_job_t j = {NULL, 0, false};
  int rc = souk_store_tx(st, migrate_fn, &j);
  if (rc != 0) return rc;
  if (j.version > latest) {
    SOUK_ERROR("store",
               "database schema version %d is newer than this binary knows (%d): "
               "run a newer souk or restore a backup",
               j.version, latest);
    return SOUK_EFATAL;
  }
  if (j.version == latest) return 0;
  /* An empty database has nothing worth a backup. */
  if (j.version > 0 && st->conf.backup_before_migrate) {
    rc = souk__store_backup_before(st, j.version, NULL);
    if (rc != 0) return rc;
  }
  for (int i = 0; i < souk__migrations_n; i++) {
    const souk__migration_t *m = &souk__migrations[i];
    if (m->version <= j.version) continue;
    mig_job_t mj = {m, 0, false};
    rc = souk_store_tx(st, migrate_fn, &mj);
    if (rc != 0) {
      SOUK_ERROR("store", "migration v%d (%s) failed: %s", m->version, m->description,
                 souk_strerror(rc));
      return rc;
    }
    if (mj.applied) {
      SOUK_INFO("store", "applied migration v%d: %s", m->version, m->description);
      if (applied) (*applied)++;
    }
  }
  return 0;
}

/* ---- operations ---- */

/* Run fn on a pooled connection outside any transaction (VACUUM and the
 * backup API refuse to run inside one). */
static int with_conn(souk_store_t *st, souk_store_tx_cb fn, void *ud) {
  souk_db_t *db;
  int rc = souk__store_acquire(st, &db);
  if (rc != 0) return rc;
  if (db->kind == SOUK_STORE_SQLITE && db->query_only) {
    rc = souk__lite_exec(db, "PRAGMA query_only=0");
    if (rc == 0) db->query_only = false;
  }
  if (rc == 0) rc = fn(db, ud);
  souk__store_release(db);
  return rc;
}

static int backup_fn(souk_db_t *db, void *ud) { return souk__lite_backup(db->lite, ud); }

int souk_store_backup(souk_store_t *st, const char *path) {
  if (!st || !path) return SOUK_EINVAL;
  if (st->kind != SOUK_STORE_SQLITE) {
    SOUK_ERROR("store", "backup of a PostgreSQL store: use pg_dump");
    return SOUK_EINVAL;
  }
  return with_conn(st, backup_fn, (void *)path);
}

static int vacuum_fn(souk_db_t *db, void *ud) {
  return souk_db_exec(db, db->kind == SOUK_STORE_SQLITE ? "VACUUM" : "VACUUM ANALYZE");
}

int souk_store_vacuum(souk_store_t *st) {
  if (!st) return SOUK_EINVAL;
  return with_conn(st, vacuum_fn, NULL);
}

typedef struct check_job {
  souk_buf_t *report;
  size_t start;
  int problems;
} check_job_t;

static int check_fn(souk_db_t *db, void *ud) {
  check_job_t *j = ud;
  /* A re-run starts the report over. */
  j->report->len = j->start;
  if (j->report->data) j->report->data[j->start] = '\0';
  j->problems = 0;
  souk_buf_t *r = j->report;
  int rc = 0;
  if (db->kind == SOUK_STORE_SQLITE) {
    souk_stmt_t *s;
    rc = souk_db_prepare(db, "PRAGMA integrity_check", &s);
    if (rc != 0) return rc;
    while ((rc = souk_stmt_step(s)) == 1) {
      const char *t = souk_stmt_column_text(s, 0, NULL);
      if (t && strcmp(t, "ok") == 0) {
        souk_buf_puts(r, "integrity_check: ok\n");
      } else {
        j->problems++;
        souk_buf_printf(r, "integrity_check: %s\n", t ? t : "?");
      }
    }
    souk_stmt_finalize(s);
    if (rc < 0) return rc;
    if (j->problems)
      souk_buf_puts(r, "fix: stop souk, restore the newest file in the backups directory, or "
                       "salvage rows with `sqlite3 souk.db .recover | sqlite3 new.db`\n");
    int fk = 0;
    rc = souk_db_prepare(db, "PRAGMA foreign_key_check", &s);
    if (rc != 0) return rc;
    while ((rc = souk_stmt_step(s)) == 1) {
      fk++;
      const char *t = souk_stmt_column_text(s, 0, NULL);
      souk_buf_printf(r, "foreign_key_check: orphan row %lld in %s\n",
                      (long long)souk_stmt_column_int64(s, 1), t ? t : "?");
    }
    souk_stmt_finalize(s);
    if (rc < 0) return rc;
    if (fk)
      souk_buf_puts(r, "fix: delete the orphan rows listed above\n");
    else
      souk_buf_puts(r, "foreign_key_check: ok\n");
    j->problems += fk;
  } else {
    int64_t one = 0;
    rc = query_int(db, "SELECT 1", NULL, &one);
    if (rc != 0) return rc;
    souk_buf_printf(r, "postgres: connected, server version %d\n", PQserverVersion(db->pg));
  }
  int v = 0;
  rc = read_version(db, &v);
  if (rc != 0) return rc;
  int latest = souk_store_schema_latest();
  souk_buf_printf(r, "schema: version %d, this binary knows %d\n", v, latest);
  if (v < latest) {
    j->problems++;
    souk_buf_puts(r, "fix: run `souk db migrate`\n");
  } else if (v > latest) {
    j->problems++;
    souk_buf_puts(r, "fix: run a newer souk (the database was migrated by one)\n");
  }
  return 0;
}

int souk_store_check(souk_store_t *st, souk_buf_t *report) {
  if (!st || !report) return SOUK_EINVAL;
  check_job_t j = {report, report->len, 0};
  int rc = souk_store_read(st, check_fn, &j);
  if (rc != 0) {
    souk_buf_printf(report, "check failed: %s\n", souk_strerror(rc));
    return rc;
  }
  return j.problems ? SOUK_EIO : 0;
}

/* ---- the user-data registry ---- */

typedef struct reg_entry {
  char *table, *user_col, *guild_col;
} reg_entry_t;

static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static reg_entry_t *g_reg;
static size_t g_nreg;

/* Identifiers are spliced into SQL, so only plain lower-case names pass. */
static bool ident_ok(const char *s) {
  if (!s || !*s || strlen(s) > 63) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
  return !(s[0] >= '0' && s[0] <= '9');
}

int souk_store_register_data(const char *table, const char *user_column, const char *guild_column) {
  if (!ident_ok(table) || (user_column && !ident_ok(user_column)) ||
      (guild_column && !ident_ok(guild_column)) || (!user_column && !guild_column))
    return SOUK_EINVAL;
  pthread_mutex_lock(&g_reg_mu);
  reg_entry_t *e = NULL;
  for (size_t i = 0; i < g_nreg && !e; i++)
    if (!strcmp(g_reg[i].table, table)) e = &g_reg[i];
  if (e) {
    souk_free(e->user_col);
    souk_free(e->guild_col);
  } else {
    g_reg = souk_reallocarray(g_reg, g_nreg + 1, sizeof *g_reg);
    e = &g_reg[g_nreg++];
    e->table = souk_strdup(table);
  }
  e->user_col = souk_strdup(user_column);
  e->guild_col = souk_strdup(guild_column);
  pthread_mutex_unlock(&g_reg_mu);
  return 0;
}

int souk_store_register_table(const souk_store_data_t *t) {
  for (; t && t->table; t++) {
    int rc = souk_store_register_data(t->table, t->user_column, t->guild_column);
    if (rc) return rc;
  }
  return 0;
}

void souk_store_registry_clear(void) {
  pthread_mutex_lock(&g_reg_mu);
  for (size_t i = 0; i < g_nreg; i++) {
    souk_free(g_reg[i].table);
    souk_free(g_reg[i].user_col);
    souk_free(g_reg[i].guild_col);
  }
  souk_free(g_reg);
  g_reg = NULL;
  g_nreg = 0;
  pthread_mutex_unlock(&g_reg_mu);
}

typedef struct forget_job {
  int64_t id;
  bool guild;
  int64_t deleted;
} forget_job_t;

static int forget_fn(souk_db_t *db, void *ud) {
  forget_job_t *j = ud;
  j->deleted = 0;
  int rc = 0;
  pthread_mutex_lock(&g_reg_mu);
  for (size_t i = 0; i < g_nreg && rc == 0; i++) {
    const char *col = j->guild ? g_reg[i].guild_col : g_reg[i].user_col;
    if (!col) continue;
    char sql[200];
    snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE \"%s\" = ?", g_reg[i].table, col);
    souk_stmt_t *s;
    rc = souk_db_prepare(db, sql, &s);
    if (rc != 0) break;
    rc = souk_stmt_bind_int64(s, 1, j->id);
    if (rc == 0) rc = souk_stmt_step(s);
    j->deleted += souk_stmt_changes(s);
    souk_stmt_finalize(s);
  }
  pthread_mutex_unlock(&g_reg_mu);
  return rc;
}

static int forget(souk_store_t *st, int64_t id, bool guild, int64_t *deleted) {
  if (!st) return SOUK_EINVAL;
  forget_job_t j = {id, guild, 0};
  int rc = souk_store_tx(st, forget_fn, &j);
  if (deleted) *deleted = rc == 0 ? j.deleted : 0;
  if (rc == 0)
    SOUK_INFO("store", "%s %lld: %lld rows deleted", guild ? "purged guild" : "forgot user",
              (long long)id, (long long)j.deleted);
  return rc;
}

int souk_store_forget_user(souk_store_t *st, int64_t user_id, int64_t *deleted) {
  return forget(st, user_id, false, deleted);
}

int souk_store_purge_guild(souk_store_t *st, int64_t guild_id, int64_t *deleted) {
  return forget(st, guild_id, true, deleted);
}
