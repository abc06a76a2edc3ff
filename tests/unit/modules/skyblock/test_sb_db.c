/* The skyblock module's tables on SQLite and on a throwaway PostgreSQL
 * (pgserver.h), each case on a fresh database migrated to the latest
 * schema: alerts kept once and loaded newest-bounded oldest first, pruned
 * by age and by count; subscriptions upserted, paused and deleted; guilds;
 * and the forget-user / purge-guild registry reaching them. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
/* clang-format on */
#include "modules/skyblock/sb_db.c"
#include "../../store/pgserver.h"
#include "souk/alloc.h"
#include "souk/err.h"

typedef struct backend {
  souk_store_kind_t kind;
  const char *name;
} backend_t;

static backend_t be_sqlite = {SOUK_STORE_SQLITE, "sqlite"};
static backend_t be_pg = {SOUK_STORE_POSTGRES, "postgres"};

typedef struct fx {
  const backend_t *be;
  bool skip;
  char dir[128];
  char url[256];
  souk_store_conf_t conf;
  souk_store_t *st;
} fx_t;

static int fx_setup(void **state) {
  fx_t *fx = souk_calloc(1, sizeof *fx);
  fx->be = *state;
  snprintf(fx->dir, sizeof fx->dir, "/tmp/souk-sbdb-XXXXXX");
  assert_non_null(mkdtemp(fx->dir));
  souk_store_conf_defaults(&fx->conf);
  if (fx->be->kind == SOUK_STORE_POSTGRES) {
    if (pg_state != 1) {
      fx->skip = true;
    } else {
      assert_true(pg_create_db("souk_sb", fx->url, sizeof fx->url));
      fx->conf.url = fx->url;
    }
  }
  if (!fx->skip) {
    int rc = souk_store_open(&fx->conf, fx->dir, &fx->st);
    if (rc) fail_msg("souk_store_open: %s", souk_strerror(rc));
  }
  *state = fx;
  return 0;
}

static int fx_teardown(void **state) {
  fx_t *fx = *state;
  souk_store_close(fx->st);
  souk_store_registry_clear();
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fx->dir);
  souk_free(fx);
  return 0;
}

#define SKIP_IF(fx)                                                                                \
  do {                                                                                             \
    if ((fx)->skip) {                                                                              \
      skip();                                                                                      \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

/* ---- alerts ------------------------------------------------------------------------ */

typedef struct put_job {
  sb_db_alert_t a[8];
  int n;
} put_job_t;

static int put_tx(souk_db_t *db, void *ud) {
  put_job_t *p = ud;
  for (int i = 0; i < p->n; i++) {
    int rc = sb_db_alert_put(db, &p->a[i]);
    if (rc) return rc;
  }
  return 0;
}

typedef struct seen {
  sb_db_alert_t v[16];
  int n;
  int64_t since, deleted;
  size_t max;
} seen_t;

static void on_alert(void *ud, const sb_db_alert_t *a) {
  seen_t *s = ud;
  assert_true(s->n < 16);
  s->v[s->n++] = *a;
}

static int load_tx(souk_db_t *db, void *ud) {
  seen_t *s = ud;
  s->n = 0;
  return sb_db_alerts_load(db, s->since, s->max, on_alert, s);
}

static int prune_tx(souk_db_t *db, void *ud) {
  seen_t *s = ud;
  return sb_db_alerts_prune(db, s->since, (int64_t)s->max, &s->deleted);
}

static sb_db_alert_t alert(int i, int64_t at) {
  sb_db_alert_t a;
  memset(&a, 0, sizeof a);
  snprintf(a.uuid, sizeof a.uuid, "%032x", i);
  snprintf(a.key, sizeof a.key, "PET:ENDER_DRAGON:LEGENDARY:L100");
  snprintf(a.attrs, sizeof a.attrs, i % 2 ? "held=PET_ITEM_TIER_BOOST" : "");
  snprintf(a.seller, sizeof a.seller, "%032x", 1000 + i);
  a.unit = 500000000 + i;
  a.at = at;
  return a;
}

static void test_alerts(void **state) {
  fx_t *fx = *state;
  SKIP_IF(fx);
  put_job_t p = {.n = 6};
  for (int i = 0; i < 6; i++)
    p.a[i] = alert(i, 1000 + i * 10);
  assert_int_equal(souk_store_tx(fx->st, put_tx, &p), 0);
  /* The same auction again is left as it was. */
  put_job_t again = {.n = 1};
  again.a[0] = alert(2, 99999);
  again.a[0].unit = 1;
  assert_int_equal(souk_store_tx(fx->st, put_tx, &again), 0);
  /* The newest 4 since 1005, oldest first. */
  seen_t s = {.since = 1005, .max = 4};
  assert_int_equal(souk_store_read(fx->st, load_tx, &s), 0);
  assert_int_equal(s.n, 4);
  for (int i = 0; i < 4; i++) {
    sb_db_alert_t want = alert(i + 2, 1000 + (i + 2) * 10);
    assert_string_equal(s.v[i].uuid, want.uuid);
    assert_string_equal(s.v[i].key, want.key);
    assert_string_equal(s.v[i].attrs, want.attrs);
    assert_string_equal(s.v[i].seller, want.seller);
    assert_int_equal(s.v[i].unit, want.unit);
    assert_int_equal(s.v[i].at, want.at);
  }
  /* Only the newest 3 if asked so, still oldest first. */
  s = (seen_t){.since = 0, .max = 3};
  assert_int_equal(souk_store_read(fx->st, load_tx, &s), 0);
  assert_int_equal(s.n, 3);
  assert_int_equal(s.v[0].at, 1030);
  assert_int_equal(s.v[2].at, 1050);
  /* Prune: older than 1015 (0 and 1), then all but the newest 3. */
  s = (seen_t){.since = 1015, .max = 3};
  assert_int_equal(souk_store_tx(fx->st, prune_tx, &s), 0);
  assert_int_equal(s.deleted, 3);
  s = (seen_t){.since = 0, .max = 100};
  assert_int_equal(souk_store_read(fx->st, load_tx, &s), 0);
  assert_int_equal(s.n, 3);
  assert_int_equal(s.v[0].at, 1030);
}

/* ---- subscriptions and guilds --------------------------------------------------------- */

typedef struct wjob {
  sb_sub_t subs[8];
  int n;
  uint64_t pause, del_user;
  const char *del_query;
  bool del;
  uint64_t guilds[4];
  int ng;
} wjob_t;

static int w_tx(souk_db_t *db, void *ud) {
  wjob_t *w = ud;
  int rc = 0;
  for (int i = 0; i < w->n && !rc; i++)
    rc = sb_db_watch_put(db, &w->subs[i], 100 + i);
  if (!rc && w->pause) rc = sb_db_watch_pause(db, w->pause);
  if (!rc && w->del) rc = sb_db_watch_del(db, w->del_user, w->del_query);
  for (int i = 0; i < w->ng && !rc; i++)
    rc = sb_db_guild_put(db, w->guilds[i], 5);
  return rc;
}

typedef struct got {
  sb_sub_t subs[16];
  int n;
  uint64_t guilds[8];
  int ng;
} got_t;

static void on_sub(void *ud, const sb_sub_t *s) {
  got_t *g = ud;
  g->subs[g->n++] = *s;
}
static void on_guild(void *ud, uint64_t id) {
  got_t *g = ud;
  g->guilds[g->ng++] = id;
}
static int r_tx(souk_db_t *db, void *ud) {
  got_t *g = ud;
  g->n = g->ng = 0;
  int rc = sb_db_watch_load(db, on_sub, g);
  return rc ? rc : sb_db_guilds_load(db, on_guild, g);
}

#define U1 UINT64_C(300000000000000001)
#define U2 UINT64_C(300000000000000002)
#define G1 UINT64_C(200000000000000001)
#define G2 UINT64_C(200000000000000002)
#define C1 UINT64_C(210000000000000001)

static void test_watch_and_guilds(void **state) {
  fx_t *fx = *state;
  SKIP_IF(fx);
  wjob_t w = {.n = 3, .ng = 2, .guilds = {G2, G1}};
  w.subs[0] = (sb_sub_t){U1, G1, C1, "hyperion", 5000000, 0, false};
  w.subs[1] = (sb_sub_t){U1, G1, C1, "", 0, 100000000, false};
  w.subs[2] = (sb_sub_t){U2, G2, C1, "juju", 0, 0, false};
  assert_int_equal(souk_store_tx(fx->st, w_tx, &w), 0);
  got_t g;
  assert_int_equal(souk_store_read(fx->st, r_tx, &g), 0);
  assert_int_equal(g.n, 3);
  assert_true(g.subs[0].user_id == U1 && !strcmp(g.subs[0].query, "hyperion"));
  assert_int_equal(g.subs[0].min_profit, 5000000);
  assert_true(g.subs[0].channel_id == C1 && g.subs[0].guild_id == G1);
  assert_int_equal(g.subs[1].max_price, 100000000);
  assert_int_equal(g.ng, 2);
  assert_true(g.guilds[0] == G1 && g.guilds[1] == G2);
  /* Upsert of (user, query) replaces; a pause reaches all of a user's. */
  wjob_t w2 = {.n = 1, .pause = U1, .ng = 1, .guilds = {G1}};
  w2.subs[0] = (sb_sub_t){U1, G2, C1, "hyperion", 7000000, 0, false};
  assert_int_equal(souk_store_tx(fx->st, w_tx, &w2), 0);
  assert_int_equal(souk_store_read(fx->st, r_tx, &g), 0);
  assert_int_equal(g.n, 3);
  assert_int_equal(g.ng, 2);
  for (int i = 0; i < g.n; i++) {
    if (g.subs[i].user_id != U1) {
      assert_false(g.subs[i].paused);
      continue;
    }
    assert_true(g.subs[i].paused);
    if (!strcmp(g.subs[i].query, "hyperion")) {
      assert_int_equal(g.subs[i].min_profit, 7000000);
      assert_true(g.subs[i].guild_id == G2);
    }
  }
  /* Delete one, then all of a user's. */
  wjob_t w3 = {.del = true, .del_user = U1, .del_query = "hyperion"};
  assert_int_equal(souk_store_tx(fx->st, w_tx, &w3), 0);
  assert_int_equal(souk_store_read(fx->st, r_tx, &g), 0);
  assert_int_equal(g.n, 2);
  wjob_t w4 = {.del = true, .del_user = U1};
  assert_int_equal(souk_store_tx(fx->st, w_tx, &w4), 0);
  assert_int_equal(souk_store_read(fx->st, r_tx, &g), 0);
  assert_int_equal(g.n, 1);
  assert_true(g.subs[0].user_id == U2);
  /* Forget-user and purge-guild reach the tables. */
  sb_db_register_data();
  int64_t n = 0;
  assert_int_equal(souk_store_forget_user(fx->st, (int64_t)U2, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(souk_store_purge_guild(fx->st, (int64_t)G1, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(souk_store_read(fx->st, r_tx, &g), 0);
  assert_int_equal(g.n, 0);
  assert_int_equal(g.ng, 1);
  assert_true(g.guilds[0] == G2);
}

#define T(fn, be) cmocka_unit_test_prestate_setup_teardown(fn, fx_setup, fx_teardown, &be)

int main(void) {
  const struct CMUnitTest sqlite_tests[] = {T(test_alerts, be_sqlite),
                                            T(test_watch_and_guilds, be_sqlite)};
  const struct CMUnitTest pg_tests[] = {T(test_alerts, be_pg), T(test_watch_and_guilds, be_pg)};
  int fails = cmocka_run_group_tests_name("skyblock db/sqlite", sqlite_tests, NULL, NULL);
  fails += cmocka_run_group_tests_name("skyblock db/postgres", pg_tests, pg_group_setup,
                                       pg_group_teardown);
  return fails;
}
