/* Internals of the store shared by store.c, the backends and migrations.c.
 * Nothing here is for modules: they see include/souk/store.h only. */
#ifndef SOUK_STORE_INT_H
#define SOUK_STORE_INT_H

#include "souk/store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>

/** One pooled connection.  A souk_db_t is handed to exactly one thread at a
 * time by the pool, so its fields need no lock of their own. */
struct souk_db {
  souk_store_t *st;
  souk_store_kind_t kind;
  sqlite3 *lite;
  PGconn *pg;
  bool in_use;
  /* Set by any call that failed in a way a re-run may cure (busy, locked,
   * serialization failure, deadlock, lost connection); read by the runner. */
  bool retry;
  /* The connection is unusable and is reopened before its next use. */
  bool broken;
  /* SQLite: PRAGMA query_only is on (last transaction was a read). */
  bool query_only;
};

/** A store: configuration plus a fixed-size pool of connections. */
struct souk_store {
  souk_store_kind_t kind;
  souk_store_conf_t conf; /* url points at url below */
  char *url;              /* the PostgreSQL URL, or NULL */
  char *path;             /* the SQLite file, or NULL */
  char *backup_dir;       /* where pre-migration backups go */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  souk_db_t *pool;
  int npool;
  /* Under mu: threads waiting for a connection, and counters. */
  int waiting;
  uint64_t acquired, waited, retried, failed;
};

/** A statement: the fields of the backend in use. */
struct souk_stmt {
  souk_db_t *db;
  int64_t changes;
  /* SQLite */
  sqlite3_stmt *ls;
  /* PostgreSQL: the rewritten SQL, the parameters, the result. */
  char *sql;
  int nparams;
  char **vals;
  int *lens;
  int *fmts;
  Oid *types;
  PGresult *res;
  int row, nrows;
  bool executed;       /* stepped since the last reset (both backends) */
  char (*scratch)[24]; /* text of integer columns, per column */
};

/** One migration.  sql_pg NULL means sql_sqlite is portable and used on both
 * backends.  Each runs in its own transaction with its schema_version row. */
typedef struct souk__migration {
  int version;
  const char *description;
  const char *sql_sqlite;
  const char *sql_pg;
} souk__migration_t;

/** The ordered migrations, version 1 upward without gaps. */
extern const souk__migration_t souk__migrations[];
/** Number of entries in souk__migrations. */
extern const int souk__migrations_n;

/** Record that a fenced write found token in the store, newer than its
 * own (src/store/lease.c keeps the highest for the cluster to poll). */
void souk__store_fence_saw(int64_t token);

/** Test hook: while positive, each successful COMMIT is reported as a lost
 * connection (after it really committed) and the counter is decremented, so
 * tests can prove a re-run transaction applies once. */
extern atomic_int souk__store_fault_commit_lost;

/* Backends: connect / disconnect / exec / statements.  They return 0 or
 * SOUK_E* and set db->retry / db->broken as described above. */
int souk__lite_connect(souk_db_t *db);
void souk__lite_disconnect(souk_db_t *db);
int souk__lite_exec(souk_db_t *db, const char *sql);
int souk__lite_prepare(souk_db_t *db, const char *sql, souk_stmt_t **out);
int souk__lite_err(souk_db_t *db, int rc, const char *what);
int souk__lite_backup(sqlite3 *src, const char *path);
/* Process-wide SQLite settings, made once before the first connection
 * opens (SQLite refuses them later). */
void souk__lite_global_init(void);
/* Give back the page cache db holds (its schema stays): after the start's
 * quick_check and migrations, which read every page of the file. */
void souk__lite_release_memory(souk_db_t *db);

int souk__pg_connect(souk_db_t *db);
void souk__pg_disconnect(souk_db_t *db);
int souk__pg_exec(souk_db_t *db, const char *sql);
int souk__pg_prepare(souk_db_t *db, const char *sql, souk_stmt_t **out);
int souk__pg_step(souk_stmt_t *s);
void souk__pg_clear(souk_stmt_t *s);

/** Rewrite `?` placeholders outside quotes and comments to $1..$n; *n gets
 * the count.  The result is owned by the caller (souk_free). */
char *souk__pg_rewrite(const char *sql, int *n);

/** Acquire a connected connection from the pool (blocks while all are in
 * use), or fail with SOUK_E* when connecting fails. */
int souk__store_acquire(souk_store_t *st, souk_db_t **out);
/** Give db back to the pool. */
void souk__store_release(souk_db_t *db);
/** Take the pre-migration backup of a database at schema version (SQLite:
 * <backup_dir>/souk-<UTC timestamp>-v<version>.db; PostgreSQL: a log line
 * only).  *path_out (may be NULL) receives the file's path, owned by the
 * caller, when one was written. */
int souk__store_backup_before(souk_store_t *st, int version, char **path_out);
/** Run fn in a (read-only) transaction at most 1 + retries times. */
int souk__store_tx_n(souk_store_t *st, souk_store_tx_cb fn, void *ud, int retries, bool readonly);

#endif
