/* The PostgreSQL backend (libpq, synchronous calls on a pool thread).
 *
 * Parameters travel typed: integers as binary int8, blobs as binary bytea,
 * text as text of unspecified type so the server infers it from context.
 * Results are requested in binary format, which gives exact int8 values and
 * raw bytea without escaping; integer columns are decoded from network
 * byte order. */
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "store/store_int.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void notice_cb(void *arg, const char *msg) {
  /* Notices such as "relation already exists, skipping" are expected from
   * idempotent migrations; keep them out of the log unless debugging. */
  SOUK_DEBUG("store", "postgres notice: %.*s", (int)strcspn(msg, "\n"), msg);
}

int souk__pg_connect(souk_db_t *db) {
  souk_store_t *st = db->st;
  char timeout[24];
  snprintf(timeout, sizeof timeout, "%lld",
           (long long)((st->conf.connect_timeout_ms + 999) / 1000));
  const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
  const char *vals[] = {st->url, timeout, "souk", NULL};
  db->pg = PQconnectdbParams(keys, vals, 1);
  if (!db->pg) souk_oom(0);
  if (PQstatus(db->pg) != CONNECTION_OK) {
    const char *m = PQerrorMessage(db->pg);
    SOUK_ERROR("store", "cannot connect to postgres: %.*s", (int)strcspn(m, "\n"), m);
    souk__pg_disconnect(db);
    db->retry = true;
    return SOUK_ECONN;
  }
  PQsetNoticeProcessor(db->pg, notice_cb, NULL);
  int rc = souk__pg_exec(db, "SET client_min_messages = warning; SET TIME ZONE 'UTC'");
  if (rc != 0) souk__pg_disconnect(db);
  return rc;
}

void souk__pg_disconnect(souk_db_t *db) {
  PQfinish(db->pg);
  db->pg = NULL;
}

/* Map a failed result to SOUK_E* by SQLSTATE class. */
static int pg_err(souk_db_t *db, PGresult *res, const char *what) {
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(db->pg);
  int mlen = (int)strcspn(msg, "\n");
  if (PQstatus(db->pg) != CONNECTION_OK || !state || strncmp(state, "08", 2) == 0 ||
      strncmp(state, "57P", 3) == 0) {
    db->retry = true;
    db->broken = true;
    SOUK_WARN("store", "postgres %s: connection lost: %.*s", what, mlen, msg);
    return SOUK_ECLOSED;
  }
  if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03")) {
    db->retry = true;
    SOUK_DEBUG("store", "postgres %s: %s %.*s (will retry)", what, state, mlen, msg);
    return SOUK_EBUSY;
  }
  /* unique_violation, and duplicate_object / duplicate_table: a CREATE ...
   * IF NOT EXISTS that raced another process's (the check and the catalogue
   * insert are not atomic) finds the object there; callers retry. */
  if (!strcmp(state, "23505") || !strcmp(state, "42710") || !strcmp(state, "42P07")) {
    SOUK_DEBUG("store", "postgres %s: %s %.*s", what, state, mlen, msg);
    return SOUK_EEXIST;
  }
  if (!strncmp(state, "23", 2) || !strncmp(state, "22", 2)) {
    SOUK_DEBUG("store", "postgres %s: %s %.*s", what, state, mlen, msg);
    return SOUK_EINVAL;
  }
  if (!strcmp(state, "53100")) {
    /* disk_full: the server's disk, reported like SQLite's. */
    SOUK_ERROR("store", "postgres %s: %s %.*s: the disk is full", what, state, mlen, msg);
    return SOUK_ENOSPC;
  }
  if (!strncmp(state, "53", 2)) {
    /* Other insufficient resources (memory, connections): not a queue. */
    SOUK_ERROR("store", "postgres %s: %s %.*s", what, state, mlen, msg);
    return SOUK_EIO;
  }
  SOUK_WARN("store", "postgres %s: %s %.*s", what, state, mlen, msg);
  return !strncmp(state, "42", 2) || !strncmp(state, "25", 2) ? SOUK_EINVAL : SOUK_EIO;
}

int souk__pg_exec(souk_db_t *db, const char *sql) {
  PGresult *res = PQexec(db->pg, sql);
  ExecStatusType t = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  int rc = (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK) ? 0 : pg_err(db, res, "exec");
  PQclear(res);
  return rc;
}

char *souk__pg_rewrite(const char *sql, int *n) {
  size_t len = strlen(sql);
  /* "$" plus up to 5 digits replaces one "?" byte. */
  char *out = souk_malloc(len * 6 + 1);
  char *o = out;
  int count = 0;
  for (const char *p = sql; *p;) {
    char c = *p;
    if (c == '\'' || c == '"') {
      /* A quoted string or identifier; a doubled quote stays inside. */
      *o++ = *p++;
      while (*p) {
        if (*p == c && p[1] == c) {
          *o++ = *p++;
          *o++ = *p++;
        } else if (*p == c) {
          *o++ = *p++;
          break;
        } else {
          *o++ = *p++;
        }
      }
    } else if (c == '-' && p[1] == '-') {
      while (*p && *p != '\n')
        *o++ = *p++;
    } else if (c == '/' && p[1] == '*') {
      const char *e = strstr(p + 2, "*/");
      size_t k = e ? (size_t)(e + 2 - p) : strlen(p);
      memcpy(o, p, k);
      o += k;
      p += k;
    } else if (c == '?') {
      o += sprintf(o, "$%d", ++count);
      p++;
    } else {
      *o++ = *p++;
    }
  }
  *o = '\0';
  *n = count;
  return out;
}

int souk__pg_prepare(souk_db_t *db, const char *sql, souk_stmt_t **out) {
  souk_stmt_t *s = souk_calloc(1, sizeof *s);
  s->db = db;
  s->sql = souk__pg_rewrite(sql, &s->nparams);
  int n = s->nparams ? s->nparams : 1;
  s->vals = souk_calloc((size_t)n, sizeof *s->vals);
  s->lens = souk_calloc((size_t)n, sizeof *s->lens);
  s->fmts = souk_calloc((size_t)n, sizeof *s->fmts);
  s->types = souk_calloc((size_t)n, sizeof *s->types);
  *out = s;
  return 0;
}

void souk__pg_clear(souk_stmt_t *s) {
  PQclear(s->res);
  s->res = NULL;
  s->executed = false;
  s->row = s->nrows = 0;
  souk_free(s->scratch);
  s->scratch = NULL;
}

int souk__pg_step(souk_stmt_t *s) {
  if (!s->executed) {
    souk_db_t *db = s->db;
    /* Unbound parameters are NULL, as in SQLite. */
    s->res = PQexecParams(db->pg, s->sql, s->nparams, s->types, (const char *const *)s->vals,
                          s->lens, s->fmts, 1);
    ExecStatusType t = s->res ? PQresultStatus(s->res) : PGRES_FATAL_ERROR;
    s->executed = true;
    if (t == PGRES_COMMAND_OK) {
      s->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
      s->nrows = 0;
    } else if (t == PGRES_TUPLES_OK) {
      /* INSERT ... RETURNING reports both rows and a count. */
      s->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
      s->nrows = PQntuples(s->res);
    } else {
      int rc = pg_err(db, s->res, "query");
      PQclear(s->res);
      s->res = NULL;
      return rc;
    }
    s->row = -1;
  }
  if (s->row + 1 < s->nrows) {
    s->row++;
    return 1;
  }
  s->row = s->nrows;
  return 0;
}
