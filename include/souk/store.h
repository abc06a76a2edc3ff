/* The store: one SQL interface over SQLite (default) and PostgreSQL.
 *
 * The backend is chosen by URL: unset means the SQLite file
 * <data_dir>/souk.db, "sqlite:///abs/path.db" names another SQLite file and
 * "postgres://user@host:port/db" (or "postgresql://") a PostgreSQL server.
 * Both run the same schema and migrations (src/store/migrations.c).
 *
 * SQL is written once with positional `?` parameters; the PostgreSQL backend
 * rewrites them to $1..$n.  Values are bound and read with typed calls, never
 * spliced into SQL text.  Integers are int64 on both backends (BIGINT
 * columns); money follows DESIGN.md and is never a float.
 *
 * All work happens inside a transaction function, souk_store_tx_cb.  The
 * runner begins a transaction, calls the function, and commits when it
 * returns 0 or rolls back when it returns an error.  When the database was
 * busy or locked, a serialization failure or deadlock occurred, or the
 * connection was lost, the runner rolls back, waits (exponential backoff
 * with jitter) and runs the WHOLE function again on a fresh transaction;
 * it never resumes half of one.  A function may therefore run more than
 * once: it must reset whatever it accumulates in ud at its start, and must
 * not have effects outside the database that are not safe to repeat.  A lost connection during
 * COMMIT leaves it unknown whether the commit happened; writes that must apply exactly once start
 * with souk_db_once() and an idempotency key (the interaction or message id), so the re-run sees
 * the key and does nothing.
 *
 * Threads: souk_store_tx() blocks and is for the CLI, tests and code that
 * already runs on a pool thread; souk_store_tx_async() runs the function on
 * libuv's thread pool and calls done on the loop thread.  A souk_db_t and
 * its statements belong to one call of one transaction function and must
 * not leave it.  A transaction function must not start another
 * transaction on the same store: with every pooled connection taken it
 * would wait for itself.
 *
 * PostgreSQL transactions run at READ COMMITTED; a function that needs
 * SERIALIZABLE issues SET TRANSACTION ISOLATION LEVEL SERIALIZABLE first,
 * and the serialization failures that follow are retried like busy
 * errors.  On PostgreSQL any failed statement aborts the rest of its
 * transaction, so a function returns the first error rather than trying
 * to carry on (upserts with ON CONFLICT work on both backends). */
#ifndef SOUK_STORE_H
#define SOUK_STORE_H

#include "souk/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A store: a small pool of connections to one database.  Thread-safe. */
typedef struct souk_store souk_store_t;
/** One connection inside one running transaction function. */
typedef struct souk_db souk_db_t;
/** A prepared statement; belongs to the souk_db_t that made it. */
typedef struct souk_stmt souk_stmt_t;

/** Backends. */
typedef enum souk_store_kind { SOUK_STORE_SQLITE, SOUK_STORE_POSTGRES } souk_store_kind_t;

/** SQLite durability: NORMAL survives any process crash (kill -9) in WAL
 * mode; FULL also survives power loss / an OS crash at the price of an
 * fsync per commit. */
typedef enum souk_store_sync { SOUK_STORE_SYNC_NORMAL, SOUK_STORE_SYNC_FULL } souk_store_sync_t;

/** Values of the `store` config section (keys in src/store/storeconf.c). */
typedef struct souk_store_conf {
  char *url;                  /* NULL: sqlite file <data_dir>/souk.db */
  int64_t pool_size;          /* connections, 1..64 */
  int64_t busy_timeout_ms;    /* SQLite busy_timeout per statement */
  bool backup_before_migrate; /* SQLite: online backup before migrating */
  bool migrate;               /* apply pending migrations at open */
  int synchronous;            /* souk_store_sync_t */
  int64_t tx_retries;         /* re-runs of a transaction after a retryable failure */
  int64_t retry_base_ms;      /* first backoff; doubles per retry, with jitter */
  int64_t retry_max_ms;       /* backoff cap */
  int64_t connect_timeout_ms; /* PostgreSQL connect timeout */
  /* Not a config key: SQLite runs PRAGMA quick_check at open, before any
   * migration, and a damaged file is refused with SOUK_ECORRUPT (what
   * `run` and `console` ask for; `souk db` commands open what is there). */
  bool quick_check;
} souk_store_conf_t;

/** Fill conf with the defaults of the `store` section (url NULL, pool 4,
 * busy 5 s, backups on, migrate on, NORMAL, 8 retries, 20 ms .. 2 s). */
void souk_store_conf_defaults(souk_store_conf_t *conf);

/** Open a store.  data_dir holds the default SQLite file and backups/ (it
 * may be NULL when conf->url names the database; backups then go next to
 * the SQLite file).  With conf->migrate, pending migrations run before this
 * returns (after a backup when configured); a database whose schema is newer
 * than this binary knows is refused with SOUK_EFATAL and a log line saying
 * which versions.  conf is copied.  On success *out is owned by the caller
 * and freed with souk_store_close().  Returns 0 or SOUK_E*. */
int souk_store_open(const souk_store_conf_t *conf, const char *data_dir, souk_store_t **out);
/** The newest pre-migration backup in backup_dir (souk-<UTC time>-v<n>.db,
 * as written before migrations), or NULL when there is none.  The path is
 * owned by the caller (souk_free). */
char *souk_store_newest_backup(const char *backup_dir);
/** Close every connection and free st.  No transaction may be running or
 * queued (drain souk_work_pending() first); NULL is allowed. */
void souk_store_close(souk_store_t *st);
/** Which backend st uses. */
souk_store_kind_t souk_store_kind(const souk_store_t *st);
/** Schema version this binary knows (the last migration). */
int souk_store_schema_latest(void);
/** Read the database's schema version (0 for an empty database) into *out. */
int souk_store_schema_version(souk_store_t *st, int *out);

/** A transaction function: return 0 to commit, a negative SOUK_E* to roll
 * back.  May run more than once (see above); runs on the calling thread for
 * souk_store_tx() and on a pool thread for souk_store_tx_async(). */
typedef int (*souk_store_tx_cb)(souk_db_t *db, void *ud);
/** Completion of souk_store_tx_async on the loop thread: status is what
 * souk_store_tx would have returned, or SOUK_ECANCELED. */
typedef void (*souk_store_done_cb)(void *ud, int status);

/** Run fn(db, ud) in a transaction, blocking, with retries.  Returns 0 when
 * committed, fn's error after a rollback, or SOUK_EBUSY / SOUK_ECLOSED /
 * SOUK_EIO when the retries ran out. */
int souk_store_tx(souk_store_t *st, souk_store_tx_cb fn, void *ud);
/** Run souk_store_tx on the worker pool, then done(ud, status) on the loop
 * thread.  ud must stay valid until done.  Returns 0 (done is called exactly
 * once) or SOUK_E* (done is never called). */
int souk_store_tx_async(souk_store_t *st, souk_store_tx_cb fn, souk_store_done_cb done, void *ud);
/** Like souk_store_tx for a function that only reads: a read-only
 * transaction (SQLite: deferred, with query_only, reading a WAL snapshot
 * without waiting for writers; PostgreSQL: BEGIN READ ONLY).  A write
 * inside fails. */
int souk_store_read(souk_store_t *st, souk_store_tx_cb fn, void *ud);
/** souk_store_read on the worker pool; contract as souk_store_tx_async. */
int souk_store_read_async(souk_store_t *st, souk_store_tx_cb fn, souk_store_done_cb done, void *ud);

/** Claim an idempotency key inside a transaction: 0 when the key is new
 * (it is inserted and commits with the transaction), SOUK_EEXIST when a
 * committed transaction already claimed it, so the caller returns 0 without
 * writing.  key is copied. */
int souk_db_once(souk_db_t *db, const char *key);
/** Delete idempotency keys claimed before before_unix_ms (the janitor's
 * retention: a redelivery older than that is no longer expected); *deleted
 * (may be NULL) receives the count. */
int souk_db_once_prune(souk_db_t *db, int64_t before_unix_ms, int64_t *deleted);

/** Fence a write made under the cluster's lease (souk/cluster.h), inside
 * its transaction, before or after the write: token is the lease's
 * fencing token when the work started (souk_cluster_fence(), or
 * souk_task_fence() in a task).  0 when no newer holder has written (the
 * store now remembers token), SOUK_ESTALE when one has: return it, so the
 * whole transaction rolls back and nothing is committed under a lease that
 * was lost.  token <= 0 (no lease: one process) always passes. */
int souk_db_fence(souk_db_t *db, int64_t token);

/** Module state in the shared kv table: set namespace/key to n bytes
 * (copied; NULL stores NULL), inserting or replacing, with updated_at now. */
int souk_db_kv_put(souk_db_t *db, const char *ns, const char *key, const void *value, size_t n);
/** Read namespace/key: the value's bytes are appended to out (which the
 * caller owns) and *updated_at (may be NULL) gets its time.  Returns 0,
 * or SOUK_ENOTFOUND when there is no such row. */
int souk_db_kv_get(souk_db_t *db, const char *ns, const char *key, souk_buf_t *out,
                   int64_t *updated_at);
/** Delete namespace/key: 0, or SOUK_ENOTFOUND when there was none. */
int souk_db_kv_del(souk_db_t *db, const char *ns, const char *key);

/** Run SQL without parameters or results (several statements allowed). */
int souk_db_exec(souk_db_t *db, const char *sql);
/** Which backend db talks to, for the rare statement that differs. */
souk_store_kind_t souk_db_kind(const souk_db_t *db);

/** Prepare one statement with `?` parameters.  *out is owned by the caller
 * and freed with souk_stmt_finalize() before the transaction function
 * returns. */
int souk_db_prepare(souk_db_t *db, const char *sql, souk_stmt_t **out);
/** Prepare sql and bind one argument per character of fmt, in order: 'i'
 * an int64_t, 's' a const char * (NULL binds NULL).  *out as for
 * souk_db_prepare (NULL after an error). */
int souk_db_preparef(souk_db_t *db, souk_stmt_t **out, const char *sql, const char *fmt, ...);
/** Prepare and bind as souk_db_preparef, run once and finalize, for a
 * statement whose rows (a RETURNING row) are not needed; *changes (may be
 * NULL) gets the rows it changed.  0 or SOUK_E*. */
int souk_db_runf(souk_db_t *db, int64_t *changes, const char *sql, const char *fmt, ...);
/** Bind an int64 to parameter idx (1-based). */
int souk_stmt_bind_int64(souk_stmt_t *s, int idx, int64_t v);
/** Bind n bytes of UTF-8 text (copied); n == SIZE_MAX means strlen(v).  A
 * NULL v binds NULL. */
int souk_stmt_bind_text(souk_stmt_t *s, int idx, const char *v, size_t n);
/** Bind n bytes (copied) as a BLOB / bytea.  A NULL v binds NULL. */
int souk_stmt_bind_blob(souk_stmt_t *s, int idx, const void *v, size_t n);
/** Bind NULL. */
int souk_stmt_bind_null(souk_stmt_t *s, int idx);
/** Execute or advance: 1 when a row is available, 0 when done, or SOUK_E*.
 * Binds stay in place for the next execution after souk_stmt_reset(). */
int souk_stmt_step(souk_stmt_t *s);
/** Rewind s so it can run again (binds are kept). */
int souk_stmt_reset(souk_stmt_t *s);
/** Rows changed by the last completed INSERT/UPDATE/DELETE of s. */
int64_t souk_stmt_changes(const souk_stmt_t *s);
/** Free s; NULL is allowed. */
void souk_stmt_finalize(souk_stmt_t *s);

/** Column types of the current row. */
typedef enum souk_col_type {
  SOUK_COL_NULL,
  SOUK_COL_INT,
  SOUK_COL_TEXT,
  SOUK_COL_BLOB,
  SOUK_COL_OTHER /* e.g. a PostgreSQL numeric: cast to BIGINT or TEXT in SQL */
} souk_col_type_t;

/** Number of result columns. */
int souk_stmt_column_count(const souk_stmt_t *s);
/** Name of column col (0-based); valid until the statement is finalized. */
const char *souk_stmt_column_name(const souk_stmt_t *s, int col);
/** Type of column col in the current row. */
souk_col_type_t souk_stmt_column_type(const souk_stmt_t *s, int col);
/** Integer value (0 for NULL). */
int64_t souk_stmt_column_int64(const souk_stmt_t *s, int col);
/** Text, NUL-terminated, or NULL for NULL; *n (may be NULL) gets the
 * length.  Valid until the next step, reset or finalize. */
const char *souk_stmt_column_text(const souk_stmt_t *s, int col, size_t *n);
/** Bytes, or NULL for NULL; *n gets the length.  Valid like column_text. */
const void *souk_stmt_column_blob(const souk_stmt_t *s, int col, size_t *n);

/** The connection pool, for operators (/admin db pool). */
typedef struct souk_store_pool_stats {
  int size;          /* connections, store.pool_size */
  int in_use;        /* running a transaction now */
  int connected;     /* open (the others connect on first use) */
  int waiting;       /* transactions waiting for a free connection now */
  uint64_t acquired; /* transactions (and attempts) that got a connection */
  uint64_t waited;   /* of those, how many had to wait for one */
  uint64_t retried;  /* attempts run again after busy, serialization or lost-connection errors */
  uint64_t failed;   /* transactions that ended in an error (a refusal by the function too) */
  int64_t memory;    /* bytes SQLite holds in this process (schemas, page caches, statements
                        of every connection); 0 for PostgreSQL */
} souk_store_pool_stats_t;

/** A snapshot of st's pool; thread-safe.  0 or SOUK_EINVAL. */
int souk_store_pool_stats(souk_store_t *st, souk_store_pool_stats_t *out);

/* ---- a module's own schema ---- */

/** One step of a module's schema.  A module lists its steps in a const
 * table ending in a zero entry (its .migrations, souk/module.h), versions
 * 1, 2, 3 ... in order.  Rules: never edit a released step, only append;
 * write SQL both backends run (BIGINT integers, TEXT, BLOB only through
 * sql_pg's BYTEA), or give sql_pg where PostgreSQL differs; name tables
 * <module>_<what>. */
typedef struct souk_migration {
  int version;        /* 1, 2, 3 ... */
  const char *name;   /* what it does, for the log */
  const char *sql;    /* run on both backends (several statements allowed) */
  const char *sql_pg; /* run instead on PostgreSQL when not NULL */
} souk_migration_t;

/** Bring module's schema up to the last step of migs: each step not yet
 * applied runs in a transaction of its own, which also records the
 * module's version in the table module_schema, so a step applies exactly
 * once even with several processes starting at once.  Blocking: the
 * module registry runs it before the module's init (and `souk db
 * migrate`).  *applied (may be NULL) gets how many steps ran.  Returns 0,
 * SOUK_EINVAL (versions not 1, 2, 3 ...), SOUK_EFATAL when the database
 * holds a newer version of the module's schema than migs knows (logged),
 * or the failing step's error (logged with its name). */
int souk_store_migrate_module(souk_store_t *st, const char *module, const souk_migration_t *migs,
                              int *applied);
/** The version of module's schema in the database (0: none) into *out. */
int souk_store_module_version(souk_store_t *st, const char *module, int *out);

/* ---- operations for the CLI (`souk db ...`) ---- */

/** Check the database: SQLite integrity_check and foreign_key_check,
 * PostgreSQL connectivity; both compare the schema version with this
 * binary.  A readable report, including the fix it would apply, is appended
 * to report.  Returns 0 when healthy, SOUK_EIO when a problem was found. */
int souk_store_check(souk_store_t *st, souk_buf_t *report);
/** SQLite: copy the live database to path with the online backup API (safe
 * while writers run).  PostgreSQL: SOUK_EINVAL, logging that pg_dump is the
 * operator's tool. */
int souk_store_backup(souk_store_t *st, const char *path);
/** VACUUM (SQLite) or VACUUM ANALYZE (PostgreSQL). */
int souk_store_vacuum(souk_store_t *st);
/** Copy every table of st into the database at dst_url (migrated to the
 * same schema first; its tables must be empty), batch_rows rows per
 * destination transaction (0: 500), then compare row counts per table.  A
 * summary is appended to report (may be NULL).  Returns 0 when every count
 * matches, SOUK_EEXIST when the destination holds data, SOUK_EIO on a
 * count mismatch, or SOUK_E*. */
int souk_store_copy(souk_store_t *st, const char *dst_url, int64_t batch_rows, souk_buf_t *report);

/** Register a table that holds data about users and/or guilds: forget_user
 * deletes its rows whose user_column equals a user id, purge_guild those
 * whose guild_column equals a guild id.  Either column may be NULL.  Names
 * must be plain identifiers ([a-z0-9_]); they are copied.  Modules call this
 * from init; registering the same table again replaces the entry.  Returns
 * 0 or SOUK_EINVAL. */
int souk_store_register_data(const char *table, const char *user_column, const char *guild_column);
/** A table that holds data about users and/or guilds, declared in a
 * module's .data table (souk/module.h), which ends with a zero entry. */
typedef struct souk_store_data {
  const char *table;        /* a plain identifier ([a-z0-9_]) */
  const char *user_column;  /* forget_user deletes rows whose column equals the user; or NULL */
  const char *guild_column; /* purge_guild deletes rows whose column equals the guild; or NULL */
} souk_store_data_t;

/** souk_store_register_data() for every entry of a table ending in a zero
 * entry (NULL is an empty table).  0, or SOUK_EINVAL at the first bad
 * entry (those before it stay registered). */
int souk_store_register_table(const souk_store_data_t *t);
/** Forget the registry (tests, shutdown). */
void souk_store_registry_clear(void);
/** Delete every registered row of user_id in one transaction; *deleted
 * (may be NULL) receives the number of rows. */
int souk_store_forget_user(souk_store_t *st, int64_t user_id, int64_t *deleted);
/** Delete every registered row of guild_id in one transaction. */
int souk_store_purge_guild(souk_store_t *st, int64_t guild_id, int64_t *deleted);

#endif
