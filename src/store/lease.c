/* The PostgreSQL advisory lock of the cluster's lease, and the fencing
 * token's high-water mark; see lease.h. */
#include "store/lease.h"

#include "store/store_int.h"

#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct souk__pglock {
  char *url;
  int64_t timeout_ms;
  int64_t key;
  PGconn *pg;
  bool held;
};

souk__pglock_t *souk__pglock_new(const char *url, int64_t connect_timeout_ms, int64_t key) {
  souk__pglock_t *l = souk_calloc(1, sizeof *l);
  l->url = souk_strdup(url);
  l->timeout_ms = connect_timeout_ms > 0 ? connect_timeout_ms : 5000;
  l->key = key;
  return l;
}

static void drop(souk__pglock_t *l) {
  PQfinish(l->pg);
  l->pg = NULL;
  l->held = false;
}

/* One statement with text parameters; the result, or NULL with the
 * connection dropped when it failed (an error on this connection means
 * the session, and so the lock, can no longer be trusted). */
static PGresult *run(souk__pglock_t *l, const char *sql, int n, const char *const *vals,
                     ExecStatusType want) {
  PGresult *r = PQexecParams(l->pg, sql, n, NULL, vals, NULL, NULL, 0);
  if (r && PQresultStatus(r) == want) return r;
  const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(l->pg);
  SOUK_WARN("cluster", "postgres lease: %.*s", (int)strcspn(m, "\n"), m);
  PQclear(r);
  drop(l);
  return NULL;
}

static int connect_now(souk__pglock_t *l) {
  if (l->pg && PQstatus(l->pg) == CONNECTION_OK) return 0;
  if (l->pg) drop(l);
  char timeout[24];
  snprintf(timeout, sizeof timeout, "%lld", (long long)((l->timeout_ms + 999) / 1000));
  /* Keepalives: a host that vanishes without closing its socket loses
   * the lock once the server notices, instead of after the kernel's two
   * hours. */
  const char *keys[] = {"dbname",         "connect_timeout",    "application_name",
                        "keepalives",     "keepalives_idle",    "keepalives_interval",
                        "keepalives_count", NULL};
  const char *vals[] = {l->url, timeout, "souk-lease", "1", "5", "2", "2", NULL};
  l->pg = PQconnectdbParams(keys, vals, 1);
  if (!l->pg) souk_oom(0);
  if (PQstatus(l->pg) != CONNECTION_OK) {
    const char *m = PQerrorMessage(l->pg);
    SOUK_DEBUG("cluster", "postgres lease: cannot connect: %.*s", (int)strcspn(m, "\n"), m);
    drop(l);
    return SOUK_ECONN;
  }
  return 0;
}

int souk__pglock_try(souk__pglock_t *l, const char *holder, int64_t *fence, char *who,
                     size_t cap) {
  if (who && cap) who[0] = '\0';
  int rc = connect_now(l);
  if (rc) return rc;
  char key[24];
  snprintf(key, sizeof key, "%" PRId64, l->key);
  const char *kv[] = {key};
  if (!l->held) {
    PGresult *r = run(l, "SELECT pg_try_advisory_lock($1::bigint)", 1, kv, PGRES_TUPLES_OK);
    if (!r) return SOUK_ECLOSED;
    bool got = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!got) {
      r = run(l, "SELECT holder FROM cluster_fence WHERE name = 'pg_lease'", 0, NULL,
              PGRES_TUPLES_OK);
      if (!r) return SOUK_ECLOSED;
      if (who && cap && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        snprintf(who, cap, "%s", PQgetvalue(r, 0, 0));
      PQclear(r);
      return SOUK_EBUSY;
    }
    l->held = true;
  }
  /* A new token for every acquisition, and who holds it for the others
   * to show; both in one statement, so a failure leaves neither. */
  char now[24];
  snprintf(now, sizeof now, "%" PRIu64, souk_unix_ms());
  const char *v[] = {holder ? holder : "", now};
  PGresult *r = run(l,
                    "INSERT INTO cluster_fence (name, token, holder, updated_at)"
                    " VALUES ('pg_lease', nextval('cluster_fence_seq'), $1, $2::bigint)"
                    " ON CONFLICT (name) DO UPDATE SET token = excluded.token,"
                    " holder = excluded.holder, updated_at = excluded.updated_at"
                    " RETURNING token",
                    2, v, PGRES_TUPLES_OK);
  if (!r) return SOUK_ECLOSED;
  *fence = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
  PQclear(r);
  if (who && cap) snprintf(who, cap, "%s", holder ? holder : "");
  return 0;
}

int souk__pglock_check(souk__pglock_t *l) {
  if (!l->pg || PQstatus(l->pg) != CONNECTION_OK) {
    if (l->pg) drop(l);
    return SOUK_ECLOSED;
  }
  PGresult *r = run(l, "SELECT 1", 0, NULL, PGRES_TUPLES_OK);
  if (!r) return SOUK_ECLOSED;
  PQclear(r);
  return 0;
}

void souk__pglock_release(souk__pglock_t *l) {
  if (!l->held || !l->pg) return;
  char key[24];
  snprintf(key, sizeof key, "%" PRId64, l->key);
  const char *kv[] = {key};
  PGresult *r = run(l, "SELECT pg_advisory_unlock($1::bigint)", 1, kv, PGRES_TUPLES_OK);
  PQclear(r);
  l->held = false;
}

void souk__pglock_free(souk__pglock_t *l) {
  if (!l) return;
  if (l->pg) PQfinish(l->pg);
  souk_free(l->url);
  souk_free(l);
}

/* ---- fencing ----------------------------------------------------------------- */

static _Atomic int64_t g_newest;

int64_t souk__store_fence_newest(void) { return atomic_load(&g_newest); }

void souk__store_fence_saw(int64_t token) {
  int64_t cur = atomic_load(&g_newest);
  while (token > cur && !atomic_compare_exchange_weak(&g_newest, &cur, token)) {
  }
}
