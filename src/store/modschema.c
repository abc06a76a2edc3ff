/* A module's own schema: its migrations, versioned per module in the
 * table module_schema (see souk_store_migrate_module in souk/store.h).
 *
 * The core's migrations (migrations.c) are one numbered list; a module's
 * steps are numbered within the module instead, so modules written at the
 * same time never compete for the next number. */
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/store.h"

#include <stdint.h>

/* Created by the first module that migrates, on either backend. */
#define SCHEMA_TABLE                                                                               \
  "CREATE TABLE IF NOT EXISTS module_schema ("                                                     \
  " module TEXT PRIMARY KEY,"                                                                      \
  " version BIGINT NOT NULL,"                                                                      \
  " updated_at BIGINT NOT NULL)"

typedef struct step {
  const char *module;
  const souk_migration_t *migs;
  int version;                 /* the database's, as read */
  const souk_migration_t *ran; /* the step this transaction applied, or NULL */
} step_t;

static int run(souk_db_t *db, const char *sql, const char *module, int64_t v) {
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, sql, &s);
  if (rc) return rc;
  int i = 1;
  if (v >= 0) souk_stmt_bind_int64(s, i++, v);
  souk_stmt_bind_text(s, i, module, SIZE_MAX);
  rc = souk_stmt_step(s);
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

/* The module's version, with its row locked until the transaction ends
 * (the UPDATE), so a second process waits and then sees the step done. */
static int version_locked(souk_db_t *db, const char *module, int *out) {
  int rc = souk_db_exec(db, SCHEMA_TABLE);
  int64_t now = (int64_t)souk_unix_ms();
  if (rc == 0)
    rc = run(db,
             "INSERT INTO module_schema (updated_at, module, version) VALUES (?, ?, 0) "
             "ON CONFLICT (module) DO NOTHING",
             module, now);
  if (rc == 0)
    rc = run(db, "UPDATE module_schema SET updated_at = ? WHERE module = ?", module, now);
  souk_stmt_t *s;
  if (rc == 0) rc = souk_db_prepare(db, "SELECT version FROM module_schema WHERE module = ?", &s);
  if (rc) return rc;
  souk_stmt_bind_text(s, 1, module, SIZE_MAX);
  rc = souk_stmt_step(s);
  *out = rc == 1 ? (int)souk_stmt_column_int64(s, 0) : 0;
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

/* Apply the next step, if any, in this transaction. */
static int step_tx(souk_db_t *db, void *ud) {
  step_t *st = ud;
  st->ran = NULL;
  int rc = version_locked(db, st->module, &st->version);
  if (rc) return rc;
  const souk_migration_t *m = st->migs;
  while (m->sql && m->version <= st->version)
    m++;
  if (!m->sql) return 0;
  const char *sql = souk_db_kind(db) == SOUK_STORE_POSTGRES && m->sql_pg ? m->sql_pg : m->sql;
  rc = souk_db_exec(db, sql);
  if (rc == 0)
    rc = run(db, "UPDATE module_schema SET version = ? WHERE module = ?", st->module, m->version);
  if (rc == 0) st->ran = m;
  return rc;
}

int souk_store_migrate_module(souk_store_t *st, const char *module, const souk_migration_t *migs,
                              int *applied) {
  if (applied) *applied = 0;
  if (!st || !module || !*module || !migs) return SOUK_EINVAL;
  int last = 0;
  for (const souk_migration_t *m = migs; m->sql; m++) {
    if (m->version != last + 1) return SOUK_EINVAL;
    last = m->version;
  }
  step_t s = {.module = module, .migs = migs};
  int races = 0;
  for (;;) {
    int rc = souk_store_tx(st, step_tx, &s);
    /* Processes of one bot starting together on one PostgreSQL: CREATE
     * TABLE IF NOT EXISTS is not safe against a concurrent one (a unique
     * violation in pg_type), and the row lock below only serialises what
     * follows it.  The other process's table is there now: try again. */
    if (rc == SOUK_EEXIST && races++ < 3) continue;
    if (rc) {
      const souk_migration_t *next = migs;
      while (next->sql && next->version <= s.version)
        next++;
      SOUK_ERROR("store", "module %s: schema step %d (%s) failed: %s", module, next->version,
                 next->name ? next->name : "?", souk_strerror(rc));
      return rc;
    }
    if (!s.ran) break;
    SOUK_INFO("store", "module %s: schema at version %d (%s)", module, s.ran->version,
              s.ran->name ? s.ran->name : "");
    if (applied) (*applied)++;
  }
  if (s.version > last) {
    SOUK_ERROR("store",
               "module %s: the database's schema is at version %d, newer than this souk knows "
               "(%d): upgrade souk",
               module, s.version, last);
    return SOUK_EFATAL;
  }
  return 0;
}

static int version_tx(souk_db_t *db, void *ud) {
  void **a = ud;
  const char *module = a[0];
  int *out = a[1];
  *out = 0;
  /* No table yet means no module migrated: version 0. */
  int rc = souk_db_exec(db, SCHEMA_TABLE);
  souk_stmt_t *s;
  if (rc == 0) rc = souk_db_prepare(db, "SELECT version FROM module_schema WHERE module = ?", &s);
  if (rc) return rc;
  souk_stmt_bind_text(s, 1, module, SIZE_MAX);
  rc = souk_stmt_step(s);
  if (rc == 1) *out = (int)souk_stmt_column_int64(s, 0);
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

int souk_store_module_version(souk_store_t *st, const char *module, int *out) {
  if (!st || !module || !out) return SOUK_EINVAL;
  void *a[2] = {(void *)module, out};
  return souk_store_tx(st, version_tx, a);
}
