/* `souk db copy`: move every table of one store into another (normally
 * SQLite into PostgreSQL) in batches, then prove the row counts and the
 * money and share totals match, and move PostgreSQL sequences past the
 * copied ids.
 *
 * Each source table is read inside one read-only transaction, so it is
 * copied as a consistent snapshot without holding up the bot's writers
 * (stop the bot first for a consistent whole: tables are read one after
 * another).  Rows are buffered a batch at a time
 * and each batch is written in its own destination transaction; a batch
 * that is retried is re-sent whole from the buffer, so nothing is written
 * twice.  The source transaction itself is never retried: a re-run would
 * send batches again. */
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

typedef struct value {
  souk_col_type_t type;
  int64_t i;
  char *p;
  size_t n;
} value_t;

typedef struct copy_job {
  souk_store_t *dst;
  int64_t batch_rows;
  souk_buf_t *report;
  char **tables;
  size_t ntables;
  /* The table being copied. */
  const char *table;
  char *insert_sql;
  int ncols;
  value_t *rows; /* batch_rows * ncols */
  int64_t nrows, copied;
  int64_t count; /* out of count_fn */
} copy_job_t;

static void batch_clear(copy_job_t *j) {
  for (int64_t i = 0; i < j->nrows * j->ncols; i++)
    souk_free(j->rows[i].p);
  j->nrows = 0;
}

static int list_tables_fn(souk_db_t *db, void *ud) {
  copy_job_t *j = ud;
  for (size_t i = 0; i < j->ntables; i++)
    souk_free(j->tables[i]);
  j->ntables = 0;
  souk_stmt_t *s;
  /* schema_version is not copied: the destination's own migrations wrote
   * it, and the versions are compared before copying. */
  int rc = souk_db_prepare(
      db,
      db->kind == SOUK_STORE_SQLITE
          ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' "
            "ESCAPE '!' AND name <> 'schema_version' ORDER BY name"
          : "SELECT table_name::text FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_version' "
            "ORDER BY 1",
      &s);
  if (rc != 0) return rc;
  while ((rc = souk_stmt_step(s)) == 1) {
    j->tables = souk_reallocarray(j->tables, j->ntables + 1, sizeof *j->tables);
    j->tables[j->ntables++] = souk_strdup(souk_stmt_column_text(s, 0, NULL));
  }
  souk_stmt_finalize(s);
  return rc;
}

static int count_fn(souk_db_t *db, void *ud) {
  copy_job_t *j = ud;
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", j->table);
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, sql, &s);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    j->count = souk_stmt_column_int64(s, 0);
    rc = 0;
  } else if (rc == 0) {
    rc = SOUK_EIO;
  }
  souk_stmt_finalize(s);
  return rc;
}

/* Balances: every column holding money or quantities (named *_cents, or
 * shares) is summed in both stores after the copy.  The sum is read as
 * text, since PostgreSQL's SUM(bigint) is a numeric. */
static bool balance_column(const char *name) {
  size_t n = strlen(name);
  return strcmp(name, "shares") == 0 || (n > 6 && strcmp(name + n - 6, "_cents") == 0);
}

typedef struct cols {
  const char *table;
  char **names;
  size_t n;
} cols_t;

static int columns_fn(souk_db_t *db, void *ud) {
  cols_t *c = ud;
  for (size_t i = 0; i < c->n; i++) souk_free(c->names[i]);
  c->n = 0;
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" LIMIT 1", c->table);
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, sql, &s);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc >= 0) {
    rc = 0;
    int nc = souk_stmt_column_count(s);
    for (int i = 0; i < nc; i++) {
      const char *name = souk_stmt_column_name(s, i);
      if (!name || !balance_column(name)) continue;
      c->names = souk_reallocarray(c->names, c->n + 1, sizeof *c->names);
      c->names[c->n++] = souk_strdup(name);
    }
  }
  souk_stmt_finalize(s);
  return rc;
}

typedef struct sum {
  const char *table, *column;
  char value[48];
} sum_t;

static int sum_fn(souk_db_t *db, void *ud) {
  sum_t *m = ud;
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT CAST(COALESCE(SUM(\"%s\"), 0) AS TEXT) FROM \"%s\"", m->column,
           m->table);
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, sql, &s);
  if (rc != 0) return rc;
  rc = souk_stmt_step(s);
  if (rc == 1) {
    const char *v = souk_stmt_column_text(s, 0, NULL);
    snprintf(m->value, sizeof m->value, "%s", v ? v : "0");
    rc = 0;
  } else if (rc == 0) {
    rc = SOUK_EIO;
  }
  souk_stmt_finalize(s);
  return rc;
}

/* PostgreSQL: rows were copied with their ids, so identity and serial
 * sequences must be moved past the largest id, or the next insert would
 * collide with a copied row. */
static int sequences_fn(souk_db_t *db, void *ud) {
  souk_buf_t *report = ud;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           "SELECT table_name::text, column_name::text FROM "
                           "information_schema.columns WHERE table_schema = current_schema() AND "
                           "(is_identity = 'YES' OR column_default LIKE 'nextval(%') "
                           "ORDER BY 1, 2",
                           &s);
  if (rc != 0) return rc;
  char (*cols)[2][64] = NULL;
  size_t n = 0;
  while ((rc = souk_stmt_step(s)) == 1) {
    cols = souk_reallocarray(cols, n + 1, sizeof *cols);
    snprintf(cols[n][0], 64, "%s", souk_stmt_column_text(s, 0, NULL));
    snprintf(cols[n][1], 64, "%s", souk_stmt_column_text(s, 1, NULL));
    n++;
  }
  souk_stmt_finalize(s);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT setval(pg_get_serial_sequence('\"%s\"', '%s'), "
             "(SELECT COALESCE(MAX(\"%s\"), 0) + 1 FROM \"%s\"), false)",
             cols[i][0], cols[i][1], cols[i][1], cols[i][0]);
    rc = souk_db_prepare(db, sql, &s);
    if (rc == 0) {
      rc = souk_stmt_step(s) < 0 ? SOUK_EIO : 0;
      souk_stmt_finalize(s);
    }
    if (rc == 0) souk_buf_printf(report, "%s.%s: sequence moved past the copied rows\n",
                                 cols[i][0], cols[i][1]);
  }
  souk_free(cols);
  return rc;
}

static int write_batch_fn(souk_db_t *db, void *ud) {
  copy_job_t *j = ud;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, j->insert_sql, &s);
  if (rc != 0) return rc;
  for (int64_t r = 0; r < j->nrows && rc == 0; r++) {
    for (int c = 0; c < j->ncols && rc == 0; c++) {
      const value_t *v = &j->rows[r * j->ncols + c];
      switch (v->type) {
      case SOUK_COL_INT:
        rc = souk_stmt_bind_int64(s, c + 1, v->i);
        break;
      case SOUK_COL_TEXT:
        rc = souk_stmt_bind_text(s, c + 1, v->p, v->n);
        break;
      case SOUK_COL_BLOB:
        rc = souk_stmt_bind_blob(s, c + 1, v->p, v->n);
        break;
      default:
        rc = souk_stmt_bind_null(s, c + 1);
        break;
      }
    }
    if (rc == 0) rc = souk_stmt_step(s);
    if (rc == 0) rc = souk_stmt_reset(s);
  }
  souk_stmt_finalize(s);
  return rc;
}

static int flush(copy_job_t *j) {
  if (j->nrows == 0) return 0;
  int rc = souk_store_tx(j->dst, write_batch_fn, j);
  if (rc == 0) j->copied += j->nrows;
  batch_clear(j);
  return rc;
}

static int read_table_fn(souk_db_t *db, void *ud) {
  copy_job_t *j = ud;
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", j->table);
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, sql, &s);
  if (rc != 0) return rc;
  souk_buf_t ins = {0};
  while ((rc = souk_stmt_step(s)) == 1) {
    if (!j->insert_sql) {
      j->ncols = souk_stmt_column_count(s);
      souk_buf_printf(&ins, "INSERT INTO \"%s\" (", j->table);
      for (int c = 0; c < j->ncols; c++)
        souk_buf_printf(&ins, "%s\"%s\"", c ? ", " : "", souk_stmt_column_name(s, c));
      souk_buf_puts(&ins, ") VALUES (");
      for (int c = 0; c < j->ncols; c++)
        souk_buf_puts(&ins, c ? ", ?" : "?");
      souk_buf_puts(&ins, ")");
      j->insert_sql = souk_buf_steal(&ins);
      j->rows = souk_calloc((size_t)(j->batch_rows * j->ncols), sizeof *j->rows);
    }
    for (int c = 0; c < j->ncols; c++) {
      value_t *v = &j->rows[j->nrows * j->ncols + c];
      v->type = souk_stmt_column_type(s, c);
      v->p = NULL;
      v->n = 0;
      if (v->type == SOUK_COL_INT) {
        v->i = souk_stmt_column_int64(s, c);
      } else if (v->type == SOUK_COL_TEXT) {
        const char *t = souk_stmt_column_text(s, c, &v->n);
        v->p = souk_memdup0(t, v->n);
      } else if (v->type == SOUK_COL_BLOB) {
        const void *b = souk_stmt_column_blob(s, c, &v->n);
        v->p = souk_memdup0(b, v->n);
      } else if (v->type == SOUK_COL_OTHER) {
        SOUK_ERROR("store",
                   "copy: %s.%s holds a value of a type the copy does not carry "
                   "(floats and numerics are not used by souk's schema)",
                   j->table, souk_stmt_column_name(s, c));
        j->nrows++;
        rc = SOUK_EINVAL;
        goto out;
      }
    }
    if (++j->nrows == j->batch_rows && (rc = flush(j)) != 0) goto out;
  }
  if (rc == 0) rc = flush(j);
out:
  batch_clear(j);
  souk_stmt_finalize(s);
  return rc;
}

static int copy_table(souk_store_t *src, copy_job_t *j) {
  j->copied = 0;
  int rc = souk__store_tx_n(src, read_table_fn, j, 0, true);
  souk_free(j->insert_sql);
  souk_free(j->rows);
  j->insert_sql = NULL;
  j->rows = NULL;
  j->ncols = 0;
  return rc;
}

int souk_store_copy(souk_store_t *st, const char *dst_url, int64_t batch_rows, souk_buf_t *report) {
  if (!st || !dst_url) return SOUK_EINVAL;
  souk_buf_t scratch = {0};
  if (!report) report = &scratch;
  souk_store_conf_t conf = st->conf;
  conf.url = (char *)dst_url;
  conf.migrate = true;
  conf.backup_before_migrate = false;
  conf.pool_size = 1;
  souk_store_t *dst = NULL;
  int sv = 0, dv = 0;
  int rc = souk_store_schema_version(st, &sv);
  if (rc == 0) rc = souk_store_open(&conf, NULL, &dst);
  if (rc == 0) rc = souk_store_schema_version(dst, &dv);
  if (rc == 0 && sv != dv) {
    souk_buf_printf(report,
                    "copy: source schema v%d, destination v%d: migrate the source "
                    "first\n",
                    sv, dv);
    rc = SOUK_EINVAL;
  }
  copy_job_t j = {.dst = dst, .batch_rows = batch_rows > 0 ? batch_rows : 500, .report = report};
  if (rc == 0) rc = souk_store_read(st, list_tables_fn, &j);
  /* Refuse a destination with data: merging is not a copy, and the count
   * comparison would prove nothing. */
  for (size_t i = 0; rc == 0 && i < j.ntables; i++) {
    j.table = j.tables[i];
    rc = souk_store_read(dst, count_fn, &j);
    if (rc == SOUK_EINVAL)
      souk_buf_printf(report,
                      "copy: table %s is missing in the "
                      "destination\n",
                      j.table);
    if (rc == 0 && j.count != 0) {
      souk_buf_printf(report, "copy: destination table %s already has %lld rows\n", j.table,
                      (long long)j.count);
      rc = SOUK_EEXIST;
    }
  }
  for (size_t i = 0; rc == 0 && i < j.ntables; i++) {
    j.table = j.tables[i];
    rc = copy_table(st, &j);
    if (rc != 0) souk_buf_printf(report, "copy: table %s failed: %s\n", j.table, souk_strerror(rc));
  }
  /* Verify after everything is written: a count taken now in each store
   * must agree for every table. */
  int mismatches = 0;
  for (size_t i = 0; rc == 0 && i < j.ntables; i++) {
    j.table = j.tables[i];
    rc = souk_store_read(st, count_fn, &j);
    int64_t a = j.count;
    if (rc == 0) rc = souk_store_read(dst, count_fn, &j);
    if (rc != 0) break;
    bool ok = a == j.count;
    mismatches += !ok;
    souk_buf_printf(report, "%s: %lld rows in source, %lld in destination%s\n", j.table,
                    (long long)a, (long long)j.count, ok ? "" : "  MISMATCH");
  }
  /* Balances: money and share totals must agree too, so a copy that lost
   * or changed a value in a row (not just a row) is caught. */
  cols_t cols = {0};
  for (size_t i = 0; rc == 0 && i < j.ntables; i++) {
    cols.table = j.tables[i];
    rc = souk_store_read(st, columns_fn, &cols);
    for (size_t k = 0; rc == 0 && k < cols.n; k++) {
      sum_t a = {.table = cols.table, .column = cols.names[k]};
      sum_t b = a;
      rc = souk_store_read(st, sum_fn, &a);
      if (rc == 0) rc = souk_store_read(dst, sum_fn, &b);
      if (rc != 0) break;
      bool ok = strcmp(a.value, b.value) == 0;
      mismatches += !ok;
      souk_buf_printf(report, "%s.%s: total %s in source, %s in destination%s\n", cols.table,
                      cols.names[k], a.value, b.value, ok ? "" : "  MISMATCH");
    }
  }
  for (size_t k = 0; k < cols.n; k++) souk_free(cols.names[k]);
  souk_free(cols.names);
  if (rc == 0 && !mismatches && souk_store_kind(dst) == SOUK_STORE_POSTGRES)
    rc = souk_store_tx(dst, sequences_fn, report);
  if (rc == 0 && mismatches) rc = SOUK_EIO;
  for (size_t i = 0; i < j.ntables; i++)
    souk_free(j.tables[i]);
  souk_free(j.tables);
  souk_store_close(dst);
  souk_buf_free(&scratch);
  return rc;
}
