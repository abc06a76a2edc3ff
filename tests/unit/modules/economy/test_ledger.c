/* The economy's ledger on both backends: one body per test, run on SQLite
 * in a temp dir and on a throwaway PostgreSQL server (../../store/pgserver.h),
 * each test on a fresh database.  The PostgreSQL group is skipped with a
 * message when the server binaries are missing.
 *
 * Every test ends by checking the invariant the economy promises: the sum
 * of balances is the sum of the audit trail, which is grants - takes +
 * bonuses + daily rewards + wins - stakes (transfers only move coins). */
/* cmocka.h needs these headers included before it. */
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

#include "modules/economy/ledger.c"
#include "modules/economy/polls.c"
/* The rest of the module, for the transaction functions of its commands
 * (tos.c's accept_tx). */
#include "../../logcap.h"
#include "../../store/pgserver.h"
#include "discord/dapi.h"
#include "modules/economy/coins.c"
#include "modules/economy/economy.c"
#include "modules/economy/games.c"
#include "modules/economy/roulette.c"
#include "modules/economy/tos.c"
#include "souk/alloc.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "store/store_int.h"

#include <pthread.h>
#include <stdatomic.h>

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
  snprintf(fx->dir, sizeof fx->dir, "/tmp/souk-economy-XXXXXX");
  assert_non_null(mkdtemp(fx->dir));
  souk_store_conf_defaults(&fx->conf);
  fx->conf.retry_base_ms = 2;
  fx->conf.retry_max_ms = 50;
  fx->conf.tx_retries = 100;
  fx->conf.pool_size = 8;
  fx->conf.backup_before_migrate = false;
  if (fx->be->kind == SOUK_STORE_POSTGRES) {
    if (pg_state != 1) {
      fx->skip = true;
    } else {
      assert_true(pg_create_db("souk_e", fx->url, sizeof fx->url));
      fx->conf.url = fx->url;
    }
  }
  if (!fx->skip) {
    int rc = souk_store_open(&fx->conf, fx->dir, &fx->st);
    if (rc != 0) fail_msg("souk_store_open: %s", souk_strerror(rc));
  }
  *state = fx;
  return 0;
}

static int fx_teardown(void **state) {
  fx_t *fx = *state;
  souk_store_close(fx->st);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
  assert_int_equal(system(cmd), 0);
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

/* ---- helpers: one transaction per operation, as the module runs them ---- */

typedef struct sqljob {
  const char *sql;
  int64_t out;
} sqljob_t;

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

static int exec_fn(souk_db_t *db, void *ud) { return souk_db_exec(db, ud); }

/* Run SQL that returns nothing, in a transaction of its own. */
static void sql_exec(fx_t *fx, const char *sql) {
  int rc = souk_store_tx(fx->st, exec_fn, (void *)sql);
  if (rc != 0) fail_msg("%s: %s", sql, souk_strerror(rc));
}

static int64_t sql_int(fx_t *fx, const char *sql) {
  sqljob_t j = {sql, 0};
  int rc = souk_store_read(fx->st, int_fn, &j);
  if (rc != 0) fail_msg("%s: %s", sql, souk_strerror(rc));
  return j.out;
}

typedef struct op {
  int what; /* 0 pay, 1 grant, 2 take, 3 daily, 4 accept, 5 publish, 6 balance */
  int64_t a, b, amount, version, cooldown;
  const char *key, *text;
  int64_t now;
  economy_change_t ch;
  bool paid;
  int rc;
} op_t;

static int op_fn(souk_db_t *db, void *ud) {
  op_t *o = ud;
  switch (o->what) {
  case 0:
    return economy_pay(db, o->a, o->b, o->amount, "payer", "payee", o->key, o->now, &o->ch);
  case 1:
    return economy_adjust(db, ECONOMY_GRANT, o->a, 1, o->amount, o->text ? o->text : "test", o->key,
                          o->now, &o->ch);
  case 2:
    return economy_adjust(db, ECONOMY_TAKE, o->a, 1, o->amount, o->text ? o->text : "test", o->key,
                          o->now, &o->ch);
  case 3:
    return economy_daily(db, o->a, "daily", o->amount, o->cooldown, o->key, o->now, &o->ch);
  case 4:
    return economy_tos_accept(db, o->a, "acceptor", o->version, o->amount, o->now, &o->paid,
                              &o->ch);
  case 5:
    return economy_tos_publish(db, o->text, o->a, o->key, o->now, &o->version, &o->paid);
  default:
    return economy_balance(db, o->a, &o->amount);
  }
}

static op_t run_op(fx_t *fx, op_t o) {
  if (!o.now) o.now = 1700000000000;
  o.rc = souk_store_tx(fx->st, op_fn, &o);
  return o;
}

static economy_change_t pay(fx_t *fx, int64_t from, int64_t to, int64_t amount, const char *key) {
  op_t o = run_op(fx, (op_t){.what = 0, .a = from, .b = to, .amount = amount, .key = key});
  assert_int_equal(o.rc, 0);
  return o.ch;
}

static economy_change_t grant(fx_t *fx, int64_t user, int64_t amount, const char *key) {
  op_t o = run_op(fx, (op_t){.what = 1, .a = user, .amount = amount, .key = key});
  assert_int_equal(o.rc, 0);
  return o.ch;
}

static int64_t balance(fx_t *fx, int64_t user) {
  op_t o = {.what = 6, .a = user};
  assert_int_equal(souk_store_read(fx->st, op_fn, &o), 0);
  return o.amount;
}

typedef struct totals_job {
  economy_totals_t t;
} totals_job_t;

static int totals_fn(souk_db_t *db, void *ud) {
  return economy_totals(db, &((totals_job_t *)ud)->t);
}

/* The invariant: nothing created or lost, and every audit row chains from
 * the previous row of its user. */
static economy_totals_t check_invariant(fx_t *fx) {
  totals_job_t j;
  assert_int_equal(souk_store_read(fx->st, totals_fn, &j), 0);
  const int64_t *k = j.t.by_kind;
  assert_int_equal(j.t.balances, j.t.audit);
  assert_int_equal(j.t.balances, k[ECONOMY_GRANT] + k[ECONOMY_TAKE] + k[ECONOMY_BONUS] +
                                     k[ECONOMY_DAILY] + k[ECONOMY_WIN] + k[ECONOMY_BET]);
  assert_int_equal(k[ECONOMY_PAY], 0);
  assert_true(k[ECONOMY_TAKE] <= 0 && k[ECONOMY_BET] <= 0);
  /* Each user's audit rows chain: a row's before is the previous after. */
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_audit a WHERE a.balance_before <> "
                               "COALESCE((SELECT b.balance_after FROM economy_audit b WHERE "
                               "b.user_id = a.user_id AND b.id < a.id ORDER BY b.id DESC LIMIT 1), "
                               "0)"),
                   0);
  /* And the last row of each user is their balance. */
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_balances u WHERE u.balance <> "
                               "COALESCE((SELECT a.balance_after FROM economy_audit a WHERE "
                               "a.user_id = u.user_id ORDER BY a.id DESC LIMIT 1), 0)"),
                   0);
  return j.t;
}

/* ---- transfers ---- */

static void test_pay(void **state) {
  FX();
  economy_change_t c = grant(fx, 10, 500, "g1");
  assert_int_equal(c.refusal, ECONOMY_OK);
  assert_int_equal(c.before, 0);
  assert_int_equal(c.after, 500);
  c = pay(fx, 10, 20, 120, "p1");
  assert_int_equal(c.refusal, ECONOMY_OK);
  assert_false(c.duplicate);
  assert_int_equal(c.amount, 120);
  assert_int_equal(c.before, 500);
  assert_int_equal(c.after, 380);
  assert_int_equal(c.other_before, 0);
  assert_int_equal(c.other_after, 120);
  assert_int_equal(balance(fx, 10), 380);
  assert_int_equal(balance(fx, 20), 120);
  /* The same interaction again (a redelivery) reports the original. */
  c = pay(fx, 10, 20, 120, "p1");
  assert_true(c.duplicate);
  assert_int_equal(c.amount, 120);
  assert_int_equal(c.after, 380);
  assert_int_equal(c.other_after, 120);
  assert_int_equal(balance(fx, 10), 380);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_audit WHERE kind = 'pay'"), 2);
  /* The audit rows say who, what, before and after. */
  assert_int_equal(sql_int(fx, "SELECT actor_id FROM economy_audit WHERE user_id = 20"), 10);
  assert_int_equal(sql_int(fx, "SELECT other_id FROM economy_audit WHERE user_id = 10 AND "
                               "kind = 'pay'"),
                   20);
  assert_int_equal(sql_int(fx, "SELECT amount FROM economy_audit WHERE user_id = 10 AND "
                               "kind = 'pay'"),
                   -120);
  /* Refusals change nothing and claim no key. */
  c = pay(fx, 10, 10, 5, "p2");
  assert_int_equal(c.refusal, ECONOMY_REFUSE_SELF);
  c = pay(fx, 10, 20, 0, "p2");
  assert_int_equal(c.refusal, ECONOMY_REFUSE_AMOUNT);
  c = pay(fx, 10, 20, -5, "p2");
  assert_int_equal(c.refusal, ECONOMY_REFUSE_AMOUNT);
  c = pay(fx, 10, 20, 381, "p2");
  assert_int_equal(c.refusal, ECONOMY_REFUSE_SHORT);
  assert_int_equal(c.before, 380);
  c = pay(fx, 30, 20, 1, "p2"); /* someone with nothing */
  assert_int_equal(c.refusal, ECONOMY_REFUSE_SHORT);
  c = pay(fx, 10, 20, 380, "p2"); /* the whole balance */
  assert_int_equal(c.refusal, ECONOMY_OK);
  assert_int_equal(balance(fx, 10), 0);
  assert_int_equal(balance(fx, 20), 500);
  check_invariant(fx);
  /* A payee near INT64_MAX: refused, not wrapped.  (The sums of the
   * invariant do not fit in int64 from here on, so it is checked above.) */
  grant(fx, 40, INT64_MAX - 10, "g2");
  c = pay(fx, 20, 40, 11, "p3");
  assert_int_equal(c.refusal, ECONOMY_REFUSE_OVERFLOW);
  c = grant(fx, 40, 11, "g3");
  assert_int_equal(c.refusal, ECONOMY_REFUSE_OVERFLOW);
  c = pay(fx, 20, 40, 10, "p3");
  assert_int_equal(c.refusal, ECONOMY_OK);
  assert_int_equal(balance(fx, 40), INT64_MAX);
  op_t o = run_op(fx, (op_t){.what = 2, .a = 40, .amount = INT64_MAX, .key = "t0"});
  assert_int_equal(o.rc, 0);
  assert_int_equal(o.ch.refusal, ECONOMY_OK);
  assert_int_equal(balance(fx, 40), 0);
}

static void test_grant_take(void **state) {
  FX();
  op_t o = run_op(fx, (op_t){.what = 1, .a = 5, .amount = 300, .key = "k1", .text = "event prize"});
  assert_int_equal(o.rc, 0);
  assert_int_equal(o.ch.after, 300);
  o = run_op(fx, (op_t){.what = 2, .a = 5, .amount = 301, .key = "k2", .text = "fine"});
  assert_int_equal(o.ch.refusal, ECONOMY_REFUSE_SHORT);
  o = run_op(fx, (op_t){.what = 2, .a = 5, .amount = 100, .key = "k2", .text = "fine"});
  assert_int_equal(o.ch.refusal, ECONOMY_OK);
  assert_int_equal(o.ch.after, 200);
  o = run_op(fx, (op_t){.what = 2, .a = 5, .amount = 100, .key = "k2", .text = "fine"});
  assert_true(o.ch.duplicate);
  assert_int_equal(o.ch.after, 200);
  /* A reason is required: the audit says why. */
  o = run_op(fx, (op_t){.what = 1, .a = 5, .amount = 1, .key = "k3", .text = ""});
  assert_int_equal(o.rc, SOUK_EINVAL);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_audit WHERE reason = 'fine' AND "
                               "kind = 'take' AND actor_id = 1 AND amount = -100"),
                   1);
  economy_totals_t t = check_invariant(fx);
  assert_int_equal(t.by_kind[ECONOMY_GRANT], 300);
  assert_int_equal(t.by_kind[ECONOMY_TAKE], -100);
}

/* A commit whose acknowledgement is lost makes the store run the whole
 * transaction again: the key turns the re-run into a no-op. */
static void test_commit_lost(void **state) {
  FX();
  grant(fx, 1, 1000, "g");
  atomic_store(&souk__store_fault_commit_lost, 1);
  economy_change_t c = pay(fx, 1, 2, 250, "lost");
  assert_int_equal(atomic_load(&souk__store_fault_commit_lost), 0);
  assert_true(c.duplicate); /* the re-run found the committed transfer */
  assert_int_equal(c.amount, 250);
  assert_int_equal(balance(fx, 1), 750);
  assert_int_equal(balance(fx, 2), 250);
  atomic_store(&souk__store_fault_commit_lost, 1);
  op_t o = run_op(fx, (op_t){.what = 3, .a = 3, .amount = 100, .cooldown = 1000, .key = "d"});
  assert_int_equal(o.rc, 0);
  assert_true(o.ch.duplicate);
  assert_int_equal(balance(fx, 3), 100);
  check_invariant(fx);
}

/* ---- daily ---- */

static void test_daily(void **state) {
  FX();
  const int64_t day = 86400000, t0 = 1700000000000;
  op_t o =
      run_op(fx, (op_t){.what = 3, .a = 7, .amount = 100, .cooldown = day, .key = "d1", .now = t0});
  assert_int_equal(o.rc, 0);
  assert_int_equal(o.ch.refusal, ECONOMY_OK);
  assert_int_equal(o.ch.after, 100);
  assert_int_equal(o.ch.streak, 1);
  /* Too early: the time left, from the stored claim. */
  o = run_op(
      fx,
      (op_t){.what = 3, .a = 7, .amount = 100, .cooldown = day, .key = "d2", .now = t0 + 3600000});
  assert_int_equal(o.ch.refusal, ECONOMY_REFUSE_COOLDOWN);
  assert_int_equal(o.ch.wait_ms, day - 3600000);
  assert_int_equal(o.ch.after, 100);
  /* The first claim's interaction redelivered: the original claim. */
  o = run_op(
      fx,
      (op_t){.what = 3, .a = 7, .amount = 100, .cooldown = day, .key = "d1", .now = t0 + 3600000});
  assert_true(o.ch.duplicate);
  assert_int_equal(o.ch.amount, 100);
  /* Due again: the streak goes on within two cooldowns. */
  o = run_op(
      fx, (op_t){.what = 3, .a = 7, .amount = 100, .cooldown = day, .key = "d3", .now = t0 + day});
  assert_int_equal(o.ch.refusal, ECONOMY_OK);
  assert_int_equal(o.ch.streak, 2);
  assert_int_equal(o.ch.after, 200);
  /* After a gap it starts again. */
  o = run_op(
      fx,
      (op_t){.what = 3, .a = 7, .amount = 100, .cooldown = day, .key = "d4", .now = t0 + 4 * day});
  assert_int_equal(o.ch.streak, 1);
  assert_int_equal(balance(fx, 7), 300);
  economy_totals_t t = check_invariant(fx);
  assert_int_equal(t.by_kind[ECONOMY_DAILY], 300);
}

/* ---- Terms of Service ---- */

static void test_tos(void **state) {
  FX();
  op_t o = run_op(fx, (op_t){.what = 4, .a = 9, .version = 1, .amount = 1000});
  assert_int_equal(o.rc, SOUK_ENOTFOUND); /* nothing published yet */
  o = run_op(fx, (op_t){.what = 5, .a = 1, .text = "Be nice."});
  assert_int_equal(o.rc, 0);
  assert_int_equal(o.version, 1);
  o = run_op(fx, (op_t){.what = 5, .a = 1, .text = ""});
  assert_int_equal(o.rc, SOUK_EINVAL);
  o = run_op(fx, (op_t){.what = 4, .a = 9, .version = 1, .amount = 1000});
  assert_int_equal(o.rc, 0);
  assert_true(o.paid);
  assert_int_equal(o.ch.after, 1000);
  /* Accepting again pays nothing. */
  o = run_op(fx, (op_t){.what = 4, .a = 9, .version = 1, .amount = 1000});
  assert_int_equal(o.rc, 0);
  assert_false(o.paid);
  /* A new version must be accepted again; its acceptance pays nothing. */
  o = run_op(fx, (op_t){.what = 5, .a = 1, .text = "Be nicer."});
  assert_int_equal(o.version, 2);
  o = run_op(fx, (op_t){.what = 4, .a = 9, .version = 2, .amount = 1000});
  assert_false(o.paid);
  assert_int_equal(balance(fx, 9), 1000);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_tos_accept WHERE user_id = 9"), 2);
  /* A user's first acceptance of a later version still gets the bonus. */
  o = run_op(fx, (op_t){.what = 4, .a = 11, .version = 2, .amount = 1000});
  assert_true(o.paid);
  economy_totals_t t = check_invariant(fx);
  assert_int_equal(t.by_kind[ECONOMY_BONUS], 2000);
}

/* Terms are shown to everyone: a text holding the bot's token or another
 * registered secret is never published. */
static void test_tos_never_publishes_a_secret(void **state) {
  FX();
  op_t o = run_op(fx, (op_t){.what = 5, .a = 1, .text = "Be nice."});
  assert_int_equal(o.rc, 0);
  o = run_op(fx, (op_t){.what = 5,
                        .a = 1,
                        .text = "SOUK_DISCORD_TOKEN=MTA1MTE1MjgwMzQxMzM2MDY0Mg.GhJ2kL."
                                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL\n"});
  assert_int_equal(o.rc, SOUK_EFORBIDDEN);
  souk_log_add_secret("hunter2-store-password");
  o = run_op(fx,
             (op_t){.what = 5, .a = 1, .text = "db: postgres://souk:hunter2-store-password@db"});
  souk_log_clear_secrets();
  assert_int_equal(o.rc, SOUK_EFORBIDDEN);
  assert_int_equal(sql_int(fx, "SELECT MAX(version) FROM economy_tos"), 1);
}

/* /coins publish-tos file:NAME reads only a plain file directly in
 * economy.tos_dir: no path, no hidden file, no link, no directory. */
static void test_tos_files_only_from_the_directory(void **state) {
  FX();
  char dir[160], path[256], sub[200];
  snprintf(dir, sizeof dir, "%s/terms", fx->dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  snprintf(path, sizeof path, "%s/v3.txt", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("Version three.\n\n", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/.env", dir);
  f = fopen(path, "w");
  fputs("SOUK_DISCORD_TOKEN=x\n", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/link.txt", dir);
  assert_int_equal(symlink("/etc/hostname", path), 0);
  snprintf(sub, sizeof sub, "%s/sub", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  souk_buf_t b;
  souk_buf_init(&b);
  assert_int_equal(read_terms_in(dir, "v3.txt", &b), 0);
  assert_string_equal(b.data, "Version three.");
  assert_int_equal(read_terms_in(dir, ".env", &b), SOUK_EINVAL);
  assert_int_equal(read_terms_in(dir, "../terms/v3.txt", &b), SOUK_EINVAL);
  assert_int_equal(read_terms_in(dir, "/etc/hostname", &b), SOUK_EINVAL);
  assert_int_equal(read_terms_in(dir, "..", &b), SOUK_EINVAL);
  assert_int_equal(read_terms_in(dir, "link.txt", &b), SOUK_EFORBIDDEN);
  assert_int_equal(read_terms_in(dir, "sub", &b), SOUK_EFORBIDDEN);
  assert_int_equal(read_terms_in(dir, "none.txt", &b), SOUK_ENOTFOUND);
  assert_int_equal(read_terms_in(NULL, "v3.txt", &b), SOUK_EINVAL);
  souk_buf_free(&b);
}

/* A publication whose commit was acknowledged too late is run again by
 * the store: the key finds the version it published, not a second one. */
static void test_tos_publish_after_a_lost_commit(void **state) {
  FX();
  op_t o = run_op(fx, (op_t){.what = 5, .a = 1, .text = "Be nice."});
  assert_int_equal(o.version, 1);
  atomic_store(&souk__store_fault_commit_lost, 1);
  o = run_op(fx, (op_t){.what = 5, .a = 1, .text = "Be nicer.", .key = "publish:ix:5"});
  assert_int_equal(atomic_load(&souk__store_fault_commit_lost), 0);
  assert_int_equal(o.rc, 0);
  assert_int_equal(o.version, 2);
  assert_false(o.paid); /* the re-run found it published */
  /* A redelivery of the same command, too. */
  o = run_op(fx, (op_t){.what = 5, .a = 1, .text = "Be nicer.", .key = "publish:ix:5"});
  assert_int_equal(o.version, 2);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_tos"), 2);
  o = run_op(fx, (op_t){.what = 5, .a = 1, .text = "Be nicest.", .key = "publish:ix:6"});
  assert_int_equal(o.version, 3);
  assert_true(o.paid);
}

/* Two processes starting on an empty database both find no Terms and
 * publish the first version: one does, the other finds it. */
typedef struct starter {
  fx_t *fx;
  start_job_t j;
  pthread_mutex_t *mu;
  pthread_cond_t *cv;
  bool hold, in, *release;
  int rc;
} starter_t;

static int starter_fn(souk_db_t *db, void *ud) {
  starter_t *t = ud;
  int rc = start_tx(db, &t->j);
  if (!t->hold) return rc;
  pthread_mutex_lock(t->mu);
  t->in = true;
  pthread_cond_broadcast(t->cv);
  while (!*t->release)
    pthread_cond_wait(t->cv, t->mu);
  pthread_mutex_unlock(t->mu);
  return rc;
}

static void *starter_main(void *p) {
  starter_t *t = p;
  t->rc = souk_store_tx(t->fx->st, starter_fn, t);
  return NULL;
}

static void test_tos_first_version_published_once(void **state) {
  FX();
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
  bool release = false;
  starter_t a = {.fx = fx, .mu = &mu, .cv = &cv, .hold = true, .release = &release};
  starter_t b = {.fx = fx, .mu = &mu, .cv = &cv, .release = &release};
  souk_buf_init(&a.j.body);
  souk_buf_init(&b.j.body);
  souk_buf_puts(&a.j.body, "Terms, as process A read them.");
  souk_buf_puts(&b.j.body, "Terms, as process B read them.");
  pthread_t ta, tb;
  assert_int_equal(pthread_create(&ta, NULL, starter_main, &a), 0);
  pthread_mutex_lock(&mu);
  while (!a.in)
    pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  /* A has inserted version 1 and not committed: B starts. */
  assert_int_equal(pthread_create(&tb, NULL, starter_main, &b), 0);
  if (fx->be->kind == SOUK_STORE_POSTGRES) {
    int64_t waiting = 0;
    for (int i = 0; i < 1000 && !waiting; i++) {
      waiting = sql_int(fx, "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'");
      if (!waiting) usleep(10000);
    }
    assert_true(waiting > 0);
  } else {
    usleep(200000);
  }
  pthread_mutex_lock(&mu);
  release = true;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  assert_int_equal(a.rc, 0);
  assert_int_equal(b.rc, 0);
  assert_int_equal(a.j.version, 1);
  assert_int_equal(b.j.version, 1);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_tos"), 1);
  souk_buf_free(&a.j.body);
  souk_buf_free(&b.j.body);
}

typedef struct status_job {
  int64_t user, version, at, cur;
  souk_buf_t body;
} status_job_t;

static int status_fn(souk_db_t *db, void *ud) {
  status_job_t *j = ud;
  int rc = economy_tos_status(db, j->user, &j->version, &j->at);
  if (rc == 0) rc = economy_tos_current(db, &j->cur, &j->body, NULL);
  return rc;
}

static void test_tos_status(void **state) {
  FX();
  status_job_t j = {.user = 4};
  souk_buf_init(&j.body);
  assert_int_equal(souk_store_read(fx->st, status_fn, &j), SOUK_ENOTFOUND);
  run_op(fx, (op_t){.what = 5, .a = 1, .text = "First."});
  run_op(fx, (op_t){.what = 5, .a = 1, .text = "Second."});
  assert_int_equal(souk_store_read(fx->st, status_fn, &j), 0);
  assert_int_equal(j.version, 0);
  assert_int_equal(j.cur, 2);
  assert_string_equal(j.body.data, "Second.");
  run_op(fx, (op_t){.what = 4, .a = 4, .version = 1, .amount = 10, .now = 1700000000123});
  assert_int_equal(souk_store_read(fx->st, status_fn, &j), 0);
  assert_int_equal(j.version, 1);
  assert_int_equal(j.at, 1700000000123);
  souk_buf_free(&j.body);
}

/* Two (or eight) clicks on Accept at once, as from two shards: the bonus
 * is paid exactly once. */
#define NCLICKS 8

typedef struct click {
  fx_t *fx;
  int64_t user;
  pthread_barrier_t *go;
  op_t o;
} click_t;

static void *click_main(void *arg) {
  click_t *c = arg;
  pthread_barrier_wait(c->go);
  c->o = run_op(c->fx, (op_t){.what = 4, .a = c->user, .version = 1, .amount = 1000});
  return NULL;
}

static void test_tos_double_click(void **state) {
  FX();
  run_op(fx, (op_t){.what = 5, .a = 1, .text = "Terms."});
  for (int64_t user = 100; user < 105; user++) {
    click_t c[NCLICKS];
    pthread_t th[NCLICKS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, NCLICKS);
    for (int i = 0; i < NCLICKS; i++) {
      c[i] = (click_t){.fx = fx, .user = user, .go = &go};
      assert_int_equal(pthread_create(&th[i], NULL, click_main, &c[i]), 0);
    }
    int paid = 0;
    for (int i = 0; i < NCLICKS; i++) {
      pthread_join(th[i], NULL);
      assert_int_equal(c[i].o.rc, 0);
      paid += c[i].o.paid;
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(paid, 1);
    assert_int_equal(balance(fx, user), 1000);
  }
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_bonus"), 5);
  economy_totals_t t = check_invariant(fx);
  assert_int_equal(t.by_kind[ECONOMY_BONUS], 5000);
}

/* Two clicks on the same Accept button, the second one's transaction
 * starting while the first one's is still open (two shards, or a double
 * click on PostgreSQL): the command that waited for the acceptance is
 * handed to one click only, so a kept /pay is paid once. */
typedef struct held {
  fx_t *fx;
  accept_job_t *j;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool in, release;
  int rc;
} held_t;

/* accept_tx, then keep the transaction open until told to commit. */
static int held_fn(souk_db_t *db, void *ud) {
  held_t *h = ud;
  int rc = accept_tx(db, h->j);
  pthread_mutex_lock(&h->mu);
  h->in = true;
  pthread_cond_broadcast(&h->cv);
  while (!h->release)
    pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
  return rc;
}

static void *held_main(void *arg) {
  held_t *h = arg;
  h->rc = souk_store_tx(h->fx->st, held_fn, h);
  return NULL;
}

typedef struct second {
  fx_t *fx;
  accept_job_t *j;
  int rc;
} second_t;

static void *second_main(void *arg) {
  second_t *c = arg;
  c->rc = souk_store_tx(c->fx->st, accept_tx, c->j);
  return NULL;
}

static int kv_put_fn(souk_db_t *db, void *ud) {
  const char *v = ud;
  return souk_db_kv_put(db, PENDING_NS, "00000000000000aa", v, strlen(v));
}

static void test_tos_accept_runs_kept_command_once(void **state) {
  FX();
  economy_conf.prompt_ttl_ms = 15 * 60000;
  economy_conf.welcome_bonus = 1000;
  run_op(fx, (op_t){.what = 5, .a = 1, .text = "Terms."});
  const char *kept = "77\npay user:00000000000000088 amount:50";
  assert_int_equal(souk_store_tx(fx->st, kv_put_fn, (void *)kept), 0);
  souk_cmd_ctx_t ctx = {.user_id = 77, .user_name = "clicker"};
  accept_job_t a = {.ctx = &ctx, .accept = true, .user = 77, .version = 1};
  accept_job_t b = a;
  snprintf(a.token, sizeof a.token, "00000000000000aa");
  snprintf(b.token, sizeof b.token, "00000000000000aa");
  souk_buf_init(&a.line);
  souk_buf_init(&b.line);
  held_t h = {.fx = fx, .j = &a};
  pthread_mutex_init(&h.mu, NULL);
  pthread_cond_init(&h.cv, NULL);
  pthread_t ta, tb;
  assert_int_equal(pthread_create(&ta, NULL, held_main, &h), 0);
  pthread_mutex_lock(&h.mu);
  while (!h.in)
    pthread_cond_wait(&h.cv, &h.mu);
  pthread_mutex_unlock(&h.mu);
  /* The first click took the command and has not committed: start the
   * second one. */
  second_t c = {.fx = fx, .j = &b};
  assert_int_equal(pthread_create(&tb, NULL, second_main, &c), 0);
  if (fx->be->kind == SOUK_STORE_POSTGRES) {
    /* Wait until the second one waits for the first one's row lock. */
    int64_t waiting = 0;
    for (int i = 0; i < 1000 && !waiting; i++) {
      waiting = sql_int(fx, "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'");
      if (!waiting) usleep(10000);
    }
    assert_true(waiting > 0);
  } else {
    /* SQLite: the second one waits to begin its write transaction. */
    usleep(200000);
  }
  pthread_mutex_lock(&h.mu);
  h.release = true;
  pthread_cond_broadcast(&h.cv);
  pthread_mutex_unlock(&h.mu);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  assert_int_equal(h.rc, 0);
  assert_int_equal(c.rc, 0);
  /* One click runs the kept command, the other has nothing to run. */
  assert_int_equal((a.line.len > 0) + (b.line.len > 0), 1);
  const souk_buf_t *ran = a.line.len ? &a.line : &b.line;
  assert_string_equal(ran->data, "pay user:00000000000000088 amount:50");
  assert_int_equal(a.paid + b.paid, 1);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM kv WHERE namespace = 'economy.pending'"), 0);
  souk_buf_free(&a.line);
  souk_buf_free(&b.line);
  pthread_cond_destroy(&h.cv);
  pthread_mutex_destroy(&h.mu);
  check_invariant(fx);
}

/* A Spin button pressed after a new version of the Terms of Service was
 * published takes no stake until the user accepted that version: the
 * button is not a command, so the gate does not see it. */
static void test_spin_needs_current_tos(void **state) {
  FX();
  run_op(fx, (op_t){.what = 5, .a = 1, .text = "Terms."});
  run_op(fx, (op_t){.what = 4, .a = 31, .version = 1, .amount = 1000});
  run_op(fx, (op_t){.what = 5, .a = 1, .text = "New terms."});
  spin_t sp = {.user = 31, .stake = 10, .pocket = 7, .ret = 20};
  snprintf(sp.name, sizeof sp.name, "player");
  snprintf(sp.token, sizeof sp.token, "00000000000000bb");
  assert_true(roulette_parse("red", &sp.bet, NULL, 0));
  assert_int_equal(souk_store_tx(fx->st, place_tx, &sp), 0);
  assert_true(sp.tos_needed);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_bets"), 0);
  assert_int_equal(balance(fx, 31), 1000);
  /* Once the new version is accepted, the same press places the bet. */
  run_op(fx, (op_t){.what = 4, .a = 31, .version = 2, .amount = 1000});
  assert_int_equal(souk_store_tx(fx->st, place_tx, &sp), 0);
  assert_false(sp.tos_needed);
  assert_int_equal(sp.placed.refusal, ECONOMY_OK);
  assert_int_equal(sp.placed.balance_after_stake, 990);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_bets WHERE state = 'pending'"), 1);
  check_invariant(fx);
}

/* The command a prompt keeps carries the idempotency key of the
 * invocation it came from, and the Accept that runs it hands that key on:
 * the transfer it makes and a redelivery of the original message (which
 * the gate lets through once the user accepted) are one transfer. */
static void test_tos_kept_command_keeps_its_key(void **state) {
  FX();
  economy_conf.prompt_ttl_ms = 15 * 60000;
  economy_conf.welcome_bonus = 1000;
  run_op(fx, (op_t){.what = 5, .a = 1, .text = "Terms."});
  souk_cmd_ctx_t orig = {.user_id = 78, .user_name = "payer", .idem_key = "msg:900"};
  gate_job_t g = {.ctx = &orig, .user = 78};
  souk_buf_init(&g.body);
  souk_buf_init(&g.line);
  snprintf(g.token, sizeof g.token, "00000000000000cc");
  snprintf(g.key, sizeof g.key, "%s", orig.idem_key);
  souk_buf_puts(&g.line, "pay user:00000000000000089 amount:300");
  assert_int_equal(souk_store_tx(fx->st, pending_put_tx, &g), 0);
  souk_cmd_ctx_t press = {.user_id = 78, .user_name = "payer", .idem_key = "ix:901"};
  accept_job_t a = {.ctx = &press, .accept = true, .user = 78, .version = 1};
  snprintf(a.token, sizeof a.token, "00000000000000cc");
  souk_buf_init(&a.line);
  assert_int_equal(souk_store_tx(fx->st, accept_tx, &a), 0);
  assert_true(a.paid);
  assert_string_equal(a.line.data, "pay user:00000000000000089 amount:300");
  assert_string_equal(a.key, "msg:900");
  /* The kept /pay runs under that key, and so does the redelivered
   * message: the second finds the first's change. */
  assert_int_equal(pay(fx, 78, 89, 300, a.key).refusal, ECONOMY_OK);
  economy_change_t again = pay(fx, 78, 89, 300, "msg:900");
  assert_true(again.duplicate);
  assert_int_equal(balance(fx, 78), 700);
  assert_int_equal(balance(fx, 89), 300);
  souk_buf_free(&a.line);
  souk_buf_free(&g.body);
  souk_buf_free(&g.line);
  check_invariant(fx);
}

/* ---- concurrent transfers in both directions ---- */

#define NPAYERS 6
#define NPAYS   40

typedef struct payer {
  fx_t *fx;
  int t;
  int64_t from, to;
  int ok, short_, errors;
} payer_t;

static void *payer_main(void *arg) {
  payer_t *p = arg;
  for (int i = 0; i < NPAYS; i++) {
    char key[48];
    snprintf(key, sizeof key, "pay-%d-%d", p->t, i);
    op_t o = run_op(
        p->fx,
        (op_t){.what = 0, .a = p->from, .b = p->to, .amount = 1 + (i * 7 + p->t) % 13, .key = key});
    if (o.rc != 0)
      p->errors++;
    else if (o.ch.refusal == ECONOMY_OK)
      p->ok++;
    else if (o.ch.refusal == ECONOMY_REFUSE_SHORT)
      p->short_++;
    else
      p->errors++;
  }
  return NULL;
}

static void test_pay_both_ways(void **state) {
  FX();
  /* Little money, so some transfers are refused as short and balances
   * swing through 0 while others run. */
  grant(fx, 1001, 60, "ga");
  grant(fx, 1002, 40, "gb");
  grant(fx, 1003, 50, "gc");
  /* PostgreSQL reports a deadlock (40P01) and the store retries it, which
   * would hide one: count them in the log instead. */
  assert_int_equal(logcap_open(), 0);
  souk_log_set_level(SOUK_LOG_DEBUG);
  payer_t p[NPAYERS];
  pthread_t th[NPAYERS];
  const int64_t users[3] = {1001, 1002, 1003};
  for (int t = 0; t < NPAYERS; t++) {
    /* Threads pay a->b and b->a (and around the triangle) at once. */
    p[t] =
        (payer_t){.fx = fx, .t = t, .from = users[t % 3], .to = users[(t + (t / 3 ? 2 : 1)) % 3]};
    assert_int_equal(pthread_create(&th[t], NULL, payer_main, &p[t]), 0);
  }
  int ok = 0, errors = 0;
  for (int t = 0; t < NPAYERS; t++) {
    pthread_join(th[t], NULL);
    ok += p[t].ok;
    errors += p[t].errors;
  }
  int deadlocks = log_count("40P01");
  if (deadlocks) log_dump();
  log_reset();
  souk_log_set_level(getenv("SOUK_TEST_DEBUG") ? SOUK_LOG_DEBUG : SOUK_LOG_OFF);
  souk_log_set_fd(2);
  fclose(g_log);
  /* No deadlock, not even a retried one, and no coin lost or created. */
  assert_int_equal(deadlocks, 0);
  assert_int_equal(errors, 0);
  assert_true(ok > 0);
  assert_int_equal(balance(fx, 1001) + balance(fx, 1002) + balance(fx, 1003), 150);
  /* The pool saw every transaction and holds none now. */
  souk_store_pool_stats_t ps;
  assert_int_equal(souk_store_pool_stats(fx->st, &ps), 0);
  assert_int_equal(ps.size, 8);
  assert_int_equal(ps.in_use, 0);
  assert_int_equal(ps.waiting, 0);
  assert_true(ps.acquired >= (uint64_t)(NPAYERS * NPAYS));
  assert_true(ps.connected >= 1 && ps.connected <= 8);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_audit WHERE kind = 'pay'"), 2 * ok);
  check_invariant(fx);
}

/* ---- leaderboard ---- */

typedef struct lb_job {
  int64_t offset, limit, total;
  economy_rank_t rows[10];
  size_t n;
} lb_job_t;

static int lb_fn(souk_db_t *db, void *ud) {
  lb_job_t *j = ud;
  return economy_leaderboard(db, j->offset, j->limit, j->rows, &j->n, &j->total);
}

static void test_leaderboard(void **state) {
  FX();
  grant(fx, 50, 10, "a");
  grant(fx, 51, 30, "b");
  grant(fx, 52, 30, "c");
  grant(fx, 53, 20, "d");
  pay(fx, 53, 54, 20, "e"); /* 53 ends at 0: not ranked */
  op_t o = run_op(fx, (op_t){.what = 3, .a = 55, .amount = 5, .cooldown = 1, .key = "f"});
  assert_int_equal(o.rc, 0);
  lb_job_t j = {.offset = 0, .limit = 3};
  assert_int_equal(souk_store_read(fx->st, lb_fn, &j), 0);
  assert_int_equal(j.total, 5);
  assert_int_equal(j.n, 3);
  assert_int_equal(j.rows[0].user_id, 51);
  assert_int_equal(j.rows[1].user_id, 52);
  assert_int_equal(j.rows[2].user_id, 54);
  assert_int_equal(j.rows[2].rank, 3);
  assert_string_equal(j.rows[2].name, "payee");
  j = (lb_job_t){.offset = 3, .limit = 3};
  assert_int_equal(souk_store_read(fx->st, lb_fn, &j), 0);
  assert_int_equal(j.n, 2);
  assert_int_equal(j.rows[0].user_id, 50);
  assert_int_equal(j.rows[0].rank, 4);
  assert_int_equal(j.rows[1].user_id, 55);
  assert_string_equal(j.rows[1].name, "daily");
  check_invariant(fx);
}

/* ---- bets ---- */

typedef struct bet_job {
  economy_bet_req_t req;
  economy_bet_t bet;
  int64_t id, before, n, balance;
  economy_recovery_t rec;
  bool paid;
  int what; /* 0 place, 1 settle, 2 recover */
} bet_job_t;

static int bet_fn(souk_db_t *db, void *ud) {
  bet_job_t *j = ud;
  if (j->what == 0) return economy_bet_place(db, &j->req, &j->bet);
  if (j->what == 1) return economy_bet_settle(db, j->id, 1700000009000, &j->paid, &j->balance);
  int rc = economy_bets_recover(db, j->before, 1700000009000, 100, &j->rec);
  j->n = j->rec.settled;
  return rc;
}

static bet_job_t bet_place(fx_t *fx, int64_t user, int64_t stake, int64_t payout, const char *key) {
  bet_job_t j = {.what = 0,
                 .req = {.user_id = user,
                         .game = "roulette",
                         .bet = "red",
                         .stake = stake,
                         .outcome = payout ? "3" : "2",
                         .payout = payout,
                         .key = key,
                         .now_ms = 1700000001000}};
  assert_int_equal(souk_store_tx(fx->st, bet_fn, &j), 0);
  return j;
}

static void test_bets(void **state) {
  FX();
  grant(fx, 70, 100, "g");
  bet_job_t b = bet_place(fx, 70, 40, 80, "spin-1");
  assert_int_equal(b.bet.refusal, ECONOMY_OK);
  assert_true(b.bet.id > 0);
  assert_int_equal(b.bet.balance_after_stake, 60);
  assert_int_equal(balance(fx, 70), 60);
  /* A double click on Spin: the same bet, not a second stake. */
  bet_job_t d = bet_place(fx, 70, 40, 80, "spin-1");
  assert_true(d.bet.duplicate);
  assert_int_equal(d.bet.id, b.bet.id);
  assert_int_equal(d.bet.balance_after_stake, 60);
  assert_int_equal(balance(fx, 70), 60);
  totals_job_t tj;
  assert_int_equal(souk_store_read(fx->st, totals_fn, &tj), 0);
  assert_int_equal(tj.t.pending_bets, 1);
  /* Settled once, whoever tries twice. */
  bet_job_t s = {.what = 1, .id = b.bet.id};
  assert_int_equal(souk_store_tx(fx->st, bet_fn, &s), 0);
  assert_true(s.paid);
  assert_int_equal(s.balance, 140);
  s.paid = false;
  assert_int_equal(souk_store_tx(fx->st, bet_fn, &s), 0);
  assert_false(s.paid);
  assert_int_equal(balance(fx, 70), 140);
  /* A loss pays nothing back. */
  b = bet_place(fx, 70, 140, 0, "spin-2");
  s = (bet_job_t){.what = 1, .id = b.bet.id};
  assert_int_equal(souk_store_tx(fx->st, bet_fn, &s), 0);
  assert_true(s.paid);
  assert_int_equal(balance(fx, 70), 0);
  /* Short. */
  b = bet_place(fx, 70, 1, 2, "spin-3");
  assert_int_equal(b.bet.refusal, ECONOMY_REFUSE_SHORT);
  b = bet_place(fx, 70, 0, 2, "spin-4");
  assert_int_equal(b.bet.refusal, ECONOMY_REFUSE_AMOUNT);
  s = (bet_job_t){.what = 1, .id = 999999};
  assert_int_equal(souk_store_tx(fx->st, bet_fn, &s), SOUK_ENOTFOUND);
  economy_totals_t t = check_invariant(fx);
  assert_int_equal(t.by_kind[ECONOMY_BET], -180);
  assert_int_equal(t.by_kind[ECONOMY_WIN], 80);
  assert_int_equal(t.pending_bets, 0);
}

/* Bets a crash left pending are settled by the recovery, exactly once,
 * and only those older than the cut-off. */
static void test_bets_recover(void **state) {
  FX();
  grant(fx, 80, 1000, "g");
  bet_place(fx, 80, 100, 200, "r1");
  bet_place(fx, 80, 100, 0, "r2");
  bet_job_t late = bet_place(fx, 80, 100, 300, "r3");
  assert_int_equal(balance(fx, 80), 700);
  /* r3 is "still spinning": placed after the cut-off. */
  char sql[128];
  snprintf(sql, sizeof sql, "UPDATE economy_bets SET created_at = 1700000005000 WHERE id = %lld",
           (long long)late.bet.id);
  sql_exec(fx, sql);
  bet_job_t r = {.what = 2, .before = 1700000002000};
  assert_int_equal(souk_store_tx(fx->st, bet_fn, &r), 0);
  assert_int_equal(r.n, 2);
  assert_int_equal(balance(fx, 80), 900);
  r.n = 0;
  assert_int_equal(souk_store_tx(fx->st, bet_fn, &r), 0);
  assert_int_equal(r.n, 0);
  totals_job_t tj;
  assert_int_equal(souk_store_read(fx->st, totals_fn, &tj), 0);
  assert_int_equal(tj.t.pending_bets, 1);
  /* The spin that was still running settles it itself later. */
  bet_job_t s = {.what = 1, .id = late.bet.id};
  assert_int_equal(souk_store_tx(fx->st, bet_fn, &s), 0);
  assert_true(s.paid);
  assert_int_equal(balance(fx, 80), 1200);
  check_invariant(fx);
}

/* A bet whose payout would overflow its user's balance is left pending
 * and counted; every other bet is settled, whatever comes before or after
 * it, and however many such bets there are. */
static void test_bets_recover_goes_past_a_stuck_bet(void **state) {
  FX();
  grant(fx, 50, 1000, "g50");
  bet_place(fx, 50, 10, 20, "s50");
  grant(fx, 60, 1000, "g60");
  char key[32];
  for (int i = 0; i < 70; i++) {
    snprintf(key, sizeof key, "x60-%d", i);
    bet_job_t b = {.what = 0,
                   .req = {.user_id = 60,
                           .game = "roulette",
                           .bet = "17",
                           .stake = 1,
                           .outcome = "17",
                           .payout = 6000,
                           .key = key,
                           .now_ms = 1700000001000}};
    assert_int_equal(souk_store_tx(fx->st, bet_fn, &b), 0);
  }
  grant(fx, 60, INT64_MAX - 5000 - 930, "g60b"); /* 6,000 more would not fit */
  grant(fx, 70, 1000, "g70");
  bet_place(fx, 70, 10, 20, "s70");
  bet_job_t r = {.what = 2, .before = 1700000002000};
  assert_int_equal(souk_store_tx(fx->st, bet_fn, &r), 0);
  assert_int_equal(r.rec.settled, 2);
  assert_int_equal(r.rec.stuck, 70);
  assert_true(r.rec.stuck_ids[0] > 0 && r.rec.stuck_ids[ECONOMY_STUCK_MAX - 1] > 0);
  assert_int_equal(balance(fx, 50), 1010);
  assert_int_equal(balance(fx, 70), 1010);
  assert_int_equal(balance(fx, 60), INT64_MAX - 5000);
  economy_totals_t t = check_invariant(fx);
  assert_int_equal(t.pending_bets, 70);
  assert_int_equal(t.stuck_bets, 70);
  /* An operator makes room: the recovery settles them. */
  op_t o = run_op(fx, (op_t){.what = 2, .a = 60, .amount = 1000000, .key = "room"});
  assert_int_equal(o.ch.refusal, ECONOMY_OK);
  assert_int_equal(souk_store_tx(fx->st, bet_fn, &r), 0);
  assert_int_equal(r.rec.settled, 70);
  assert_int_equal(r.rec.stuck, 0);
  t = check_invariant(fx);
  assert_int_equal(t.pending_bets, 0);
  assert_int_equal(t.stuck_bets, 0);
}

/* A transaction that holds a user's balance row until it is released. */
typedef struct holder {
  fx_t *fx;
  int64_t user;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool in, release;
  int rc;
} holder_t;

static int hold_fn(souk_db_t *db, void *ud) {
  holder_t *h = ud;
  int64_t bal;
  int rc = row_read(db, h->user, true, &bal, NULL);
  pthread_mutex_lock(&h->mu);
  h->in = true;
  pthread_cond_broadcast(&h->cv);
  while (!h->release)
    pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
  return rc;
}

static void *hold_main(void *p) {
  holder_t *h = p;
  h->rc = souk_store_tx(h->fx->st, hold_fn, h);
  return NULL;
}

static void *recover_main(void *p) {
  bet_job_t *r = ((void **)p)[1];
  fx_t *fx = ((void **)p)[0];
  r->n = 0;
  souk_store_tx(fx->st, bet_fn, r);
  return NULL;
}

static int nowait_fn(souk_db_t *db, void *ud) {
  souk_stmt_t *s;
  int rc = souk_db_preparef(db, &s,
                            "SELECT balance FROM economy_balances WHERE user_id = ? "
                            "FOR UPDATE NOWAIT",
                            "i", *(int64_t *)ud);
  if (rc == 0) rc = souk_stmt_step(s);
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

/* The recovery locks balances in ascending user id order, as transfers
 * do, whatever order the bets were placed in (PostgreSQL: SQLite runs
 * write transactions one at a time).  With a transfer holding the lower
 * id, the recovery must wait there without holding the higher one, or the
 * transfer's next lock would deadlock with it. */
static void test_bets_recover_locks_in_user_order(void **state) {
  FX();
  if (fx->be->kind != SOUK_STORE_POSTGRES) {
    skip();
    return;
  }
  const int64_t lo = 90, hi = 91;
  grant(fx, lo, 100, "g-lo");
  grant(fx, hi, 100, "g-hi");
  bet_place(fx, hi, 10, 20, "b-hi"); /* the higher id's bet comes first */
  bet_place(fx, lo, 10, 20, "b-lo");
  holder_t h = {.fx = fx, .user = lo};
  pthread_mutex_init(&h.mu, NULL);
  pthread_cond_init(&h.cv, NULL);
  pthread_t th, tr;
  assert_int_equal(pthread_create(&th, NULL, hold_main, &h), 0);
  pthread_mutex_lock(&h.mu);
  while (!h.in)
    pthread_cond_wait(&h.cv, &h.mu);
  pthread_mutex_unlock(&h.mu);
  bet_job_t r = {.what = 2, .before = 1700000002000};
  void *args[2] = {fx, &r};
  assert_int_equal(pthread_create(&tr, NULL, recover_main, args), 0);
  int64_t waiting = 0;
  for (int i = 0; i < 1000 && !waiting; i++) {
    waiting = sql_int(fx, "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'");
    if (!waiting) usleep(10000);
  }
  assert_true(waiting > 0);
  /* The recovery waits for the lower id: the higher one is still free. */
  int64_t user = hi;
  int free_rc = souk_store_tx(fx->st, nowait_fn, &user);
  pthread_mutex_lock(&h.mu);
  h.release = true;
  pthread_cond_broadcast(&h.cv);
  pthread_mutex_unlock(&h.mu);
  pthread_join(th, NULL);
  pthread_join(tr, NULL);
  pthread_cond_destroy(&h.cv);
  pthread_mutex_destroy(&h.mu);
  assert_int_equal(free_rc, 0);
  assert_int_equal(r.n, 2);
  check_invariant(fx);
}

/* ---- forgetting a user ---- */

/* `souk db forget-user` through the store's registry, as the module
 * registers its tables: the user's coins leave with an audit row, every
 * row naming them is anonymised, and the audit still adds up for
 * everyone (transfers sum to zero, each trail chains). */
static void test_forget_user_keeps_the_audit(void **state) {
  FX();
  assert_int_equal(souk_store_register_table(economy_data), 0);
  const int64_t a = 777001, b = 777002;
  grant(fx, a, 1000, "g1");
  grant(fx, b, 500, "g2");
  pay(fx, a, b, 300, "p1");
  pay(fx, b, a, 50, "p2");
  op_t o = run_op(fx, (op_t){.what = 5, .a = 1, .text = "Be nice."});
  o = run_op(fx, (op_t){.what = 4, .a = a, .version = 1, .amount = 1000});
  assert_true(o.paid);
  bet_place(fx, a, 100, 0, "a-bet");
  /* An owner's grant by a, to b. */
  o = run_op(fx, (op_t){.what = 1, .a = b, .amount = 7, .key = "g3"});
  sql_exec(fx, "UPDATE economy_audit SET actor_id = 777001 WHERE idem_key = 'g3'");
  assert_int_equal(balance(fx, a), 1650);
  int64_t n = 0;
  assert_int_equal(souk_store_forget_user(fx->st, a, &n), 0);
  assert_true(n > 0);
  economy_totals_t t = check_invariant(fx);
  assert_int_equal(t.by_kind[ECONOMY_PAY], 0);
  assert_int_equal(t.by_kind[ECONOMY_TAKE], -1650); /* a's coins, accounted for */
  assert_int_equal(balance(fx, b), 757);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_audit WHERE user_id = 777001 OR "
                               "actor_id = 777001 OR other_id = 777001 OR idem_key LIKE "
                               "'%777001%'"),
                   0);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_balances WHERE user_id = 777001"), 0);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_bets WHERE user_id = 777001"), 0);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_bonus WHERE user_id = 777001"), 0);
  /* The trail stays, under one anonymous id, and still chains. */
  assert_int_equal(sql_int(fx, "SELECT COUNT(DISTINCT user_id) FROM economy_audit WHERE "
                               "user_id < 0"),
                   1);
  assert_int_equal(sql_int(fx, "SELECT COUNT(*) FROM economy_audit WHERE kind = 'pay'"), 4);
  /* Forgetting again finds nothing; b is forgotten the same way. */
  assert_int_equal(souk_store_forget_user(fx->st, a, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(souk_store_forget_user(fx->st, b, &n), 0);
  t = check_invariant(fx);
  assert_int_equal(t.balances, 0);
  assert_int_equal(sql_int(fx, "SELECT COUNT(DISTINCT user_id) FROM economy_audit WHERE "
                               "user_id < 0"),
                   2);
  souk_store_registry_clear();
}

/* ---- polls ---- */

typedef struct tpoll_job {
  int what; /* 0 create, 1 vote, 2 close, 3 get, 4 choice */
  const char *q;
  const char *const *opts;
  size_t n;
  int64_t id, user, choice;
  bool changed;
  economy_poll_t p;
} tpoll_job_t;

static int poll_fn(souk_db_t *db, void *ud) {
  tpoll_job_t *j = ud;
  switch (j->what) {
  case 0:
    return economy_poll_create(db, 1, 2, 3, j->q, j->opts, j->n, 1700000000000, &j->id);
  case 1:
    return economy_poll_vote(db, j->id, j->user, j->choice, 1700000000000, &j->changed, &j->p);
  case 2:
    return economy_poll_close(db, j->id, &j->p);
  case 3:
    return economy_poll_get(db, j->id, &j->p);
  default:
    return economy_poll_choice_of(db, j->id, j->user, &j->choice);
  }
}

static tpoll_job_t vote(fx_t *fx, int64_t id, int64_t user, int64_t choice) {
  tpoll_job_t j = {.what = 1, .id = id, .user = user, .choice = choice};
  assert_int_equal(souk_store_tx(fx->st, poll_fn, &j), 0);
  return j;
}

static void test_polls(void **state) {
  FX();
  static const char *const opts[] = {"Tea", "Coffee", "Neither"};
  tpoll_job_t c = {.what = 0, .q = "Morning drink?", .opts = opts, .n = 3};
  assert_int_equal(souk_store_tx(fx->st, poll_fn, &c), 0);
  assert_true(c.id > 0);
  tpoll_job_t v = vote(fx, c.id, 500, 0);
  assert_true(v.changed);
  assert_int_equal(v.p.votes[0], 1);
  assert_int_equal(v.p.voters, 1);
  assert_string_equal(v.p.question, "Morning drink?");
  assert_int_equal(v.p.noptions, 3);
  assert_string_equal(v.p.options[2], "Neither");
  int64_t v1 = v.p.version;
  /* The same vote again changes nothing; another choice moves it. */
  v = vote(fx, c.id, 500, 0);
  assert_false(v.changed);
  assert_int_equal(v.p.votes[0], 1);
  v = vote(fx, c.id, 500, 1);
  assert_true(v.changed);
  assert_int_equal(v.p.votes[0], 0);
  assert_int_equal(v.p.votes[1], 1);
  assert_int_equal(v.p.voters, 1);
  assert_true(v.p.version > v1);
  v = vote(fx, c.id, 501, 1);
  assert_int_equal(v.p.votes[1], 2);
  assert_int_equal(v.p.voters, 2);
  tpoll_job_t ch = {.what = 4, .id = c.id, .user = 500};
  assert_int_equal(souk_store_read(fx->st, poll_fn, &ch), 0);
  assert_int_equal(ch.choice, 1);
  ch = (tpoll_job_t){.what = 4, .id = c.id, .user = 999};
  assert_int_equal(souk_store_read(fx->st, poll_fn, &ch), 0);
  assert_int_equal(ch.choice, -1);
  /* Out of range, missing. */
  tpoll_job_t bad = {.what = 1, .id = c.id, .user = 1, .choice = 3};
  assert_int_equal(souk_store_tx(fx->st, poll_fn, &bad), SOUK_EINVAL);
  bad = (tpoll_job_t){.what = 1, .id = c.id + 100, .user = 1, .choice = 0};
  assert_int_equal(souk_store_tx(fx->st, poll_fn, &bad), SOUK_ENOTFOUND);
  /* Closed: no more votes, the tally stays. */
  tpoll_job_t cl = {.what = 2, .id = c.id};
  assert_int_equal(souk_store_tx(fx->st, poll_fn, &cl), 0);
  assert_true(cl.p.closed);
  v = vote(fx, c.id, 502, 2);
  assert_false(v.changed);
  assert_true(v.p.closed);
  assert_int_equal(v.p.votes[2], 0);
  assert_int_equal(v.p.voters, 2);
  /* What is refused before anything is written. */
  static const char *const dup[] = {"A", "A"};
  static const char *const one[] = {"A"};
  static const char *const nl[] = {"A", "B\nC"};
  assert_string_equal(economy_poll_invalid("Q", dup, 2), "Two options are the same.");
  assert_string_equal(economy_poll_invalid("Q", one, 1), "A poll has 2 to 10 options.");
  assert_string_equal(economy_poll_invalid("Q", nl, 2), "An option cannot span lines.");
  assert_string_equal(economy_poll_invalid("", opts, 3), "A poll needs a question.");
  c = (tpoll_job_t){.what = 0, .q = "Q", .opts = dup, .n = 2};
  assert_int_equal(souk_store_tx(fx->st, poll_fn, &c), SOUK_EINVAL);
}

/* Many voters at once: every vote counted once, and the tally with the
 * highest version is the final one. */
#define NVOTERS 6
#define NVOTES  25

typedef struct voter {
  fx_t *fx;
  int64_t poll, base;
  int64_t best_version;
  economy_poll_t best;
  int errors;
} voter_t;

static void *voter_main(void *arg) {
  voter_t *v = arg;
  for (int i = 0; i < NVOTES; i++) {
    tpoll_job_t j = {.what = 1, .id = v->poll, .user = v->base + i, .choice = (v->base + i) % 3};
    if (souk_store_tx(v->fx->st, poll_fn, &j) != 0) {
      v->errors++;
      continue;
    }
    if (j.p.version > v->best_version) {
      v->best_version = j.p.version;
      v->best = j.p;
    }
  }
  return NULL;
}

/* ---- a poll's tally message, with many polls at once ---- */

/* Discord's side: the edits the coalescer sends, answered at once. */
static struct {
  char path[512][64];
  char body[512][2048];
  size_t n;
} edits;

typedef struct edit_answer {
  souk__rest_cb cb;
  void *ud;
  uv_timer_t t;
} edit_answer_t;

static void edit_answer_close(uv_handle_t *h) { souk_free(h->data); }

static void edit_answer_fire(uv_timer_t *t) {
  edit_answer_t *a = t->data;
  souk__rest_resp_t r = {.status = 200, .body = "{\"id\":\"1\"}", .body_len = 10};
  a->cb(&r, a->ud);
  uv_close((uv_handle_t *)t, edit_answer_close);
}

static int edit_request(const souk__rest_opts_t *o, souk__rest_cb cb, void *ud) {
  if (edits.n < 512) {
    snprintf(edits.path[edits.n], sizeof edits.path[0], "%s", o->path);
    snprintf(edits.body[edits.n], sizeof edits.body[0], "%.*s",
             (int)(o->body ? (o->body_len ? o->body_len : strlen(o->body)) : 0),
             o->body ? o->body : "");
    edits.n++;
  }
  edit_answer_t *a = souk_calloc(1, sizeof *a);
  a->cb = cb;
  a->ud = ud;
  uv_timer_init(souk_loop(), &a->t);
  a->t.data = a;
  uv_timer_start(&a->t, edit_answer_fire, 0, 0);
  return 0;
}

static int edit_presence(const char *status, const char *text, int type) { return 0; }

static const souk__dapi_sink_t edit_sink = {
    .name = "test", .request = edit_request, .presence = edit_presence};

static uint64_t g_edit_now = 5000000;
static uint64_t edit_clock(void) { return g_edit_now; }

/* The vote transaction of poll p finished: its done callback, as the
 * store calls it on the loop. */
static void vote_done(const economy_poll_t *p, uint64_t message) {
  poll_job_t *j = souk_calloc(1, sizeof *j);
  j->channel = 77;
  j->message = message;
  j->p = *p;
  poll_vote_done(j, 0);
  for (int i = 0; i < 4; i++)
    uv_run(souk_loop(), UV_RUN_NOWAIT);
}

/* The last edit of message, "" when none. */
static const char *last_edit(uint64_t message) {
  char tail[40];
  snprintf(tail, sizeof tail, "/messages/%" PRIu64, message);
  for (size_t i = edits.n; i-- > 0;) {
    size_t pl = strlen(edits.path[i]), tl = strlen(tail);
    if (pl >= tl && strcmp(edits.path[i] + pl - tl, tail) == 0) return edits.body[i];
  }
  return "";
}

/* Vote transactions commit in version order but may finish in another:
 * an older tally of a poll handed in late is never shown over a newer one,
 * however many other polls were voted on in between (a fixed ring of 256
 * polls forgot the first one's version). */
static void test_poll_tally_never_steps_back(void **state) {
  FX();
  static const char *const opts[] = {"Tea", "Coffee"};
  tpoll_job_t c = {.what = 0, .q = "Lunch?", .opts = opts, .n = 2};
  assert_int_equal(souk_store_tx(fx->st, poll_fn, &c), 0);
  tpoll_job_t v1 = vote(fx, c.id, 501, 0);
  tpoll_job_t v2 = vote(fx, c.id, 502, 0);
  tpoll_job_t v3 = vote(fx, c.id, 503, 1);
  assert_true(v1.p.version < v2.p.version && v2.p.version < v3.p.version);
  memset(&edits, 0, sizeof edits);
  g_edit_now = 5000000;
  souk__dapi_set_clock(edit_clock);
  assert_int_equal(souk__dapi_start(&edit_sink), 0);
  const uint64_t msg = 900000;
  vote_done(&v3.p, msg);
  assert_non_null(strstr(last_edit(msg), "3 voters"));
  /* 300 other polls get a vote each. */
  for (int i = 0; i < 300; i++) {
    economy_poll_t other = v1.p;
    other.id = 100000 + i;
    g_edit_now += 10;
    vote_done(&other, msg + 1 + (uint64_t)i);
  }
  /* The first poll's earlier tallies finish last. */
  g_edit_now += 2000;
  vote_done(&v2.p, msg);
  vote_done(&v1.p, msg);
  /* Whatever waits is sent once the interval allows (a put pumps). */
  g_edit_now += 5000;
  economy_poll_t other = v1.p;
  other.id = 99;
  vote_done(&other, msg + 1000);
  for (int i = 0; i < 8; i++)
    uv_run(souk_loop(), UV_RUN_NOWAIT);
  assert_non_null(strstr(last_edit(msg), "3 voters"));
  size_t shown = 0;
  for (size_t i = 0; i < edits.n; i++)
    shown += strstr(edits.path[i], "/messages/900000") != NULL &&
             strcmp(edits.path[i] + strlen(edits.path[i]) - 6, "900000") == 0;
  assert_int_equal(shown, 1);
  souk__dapi_stop();
  souk__dapi_set_clock(NULL);
  for (int i = 0; i < 4; i++)
    uv_run(souk_loop(), UV_RUN_NOWAIT);
}

static void test_poll_concurrent(void **state) {
  FX();
  static const char *const opts[] = {"A", "B", "C"};
  tpoll_job_t c = {.what = 0, .q = "Busy?", .opts = opts, .n = 3};
  assert_int_equal(souk_store_tx(fx->st, poll_fn, &c), 0);
  voter_t v[NVOTERS];
  pthread_t th[NVOTERS];
  for (int t = 0; t < NVOTERS; t++) {
    v[t] = (voter_t){.fx = fx, .poll = c.id, .base = 1000 * (t + 1)};
    assert_int_equal(pthread_create(&th[t], NULL, voter_main, &v[t]), 0);
  }
  const economy_poll_t *last = NULL;
  for (int t = 0; t < NVOTERS; t++) {
    pthread_join(th[t], NULL);
    assert_int_equal(v[t].errors, 0);
    if (!last || v[t].best_version > last->version) last = &v[t].best;
  }
  tpoll_job_t g = {.what = 3, .id = c.id};
  assert_int_equal(souk_store_read(fx->st, poll_fn, &g), 0);
  assert_int_equal(g.p.voters, NVOTERS * NVOTES);
  /* The newest tally any vote saw is the poll's final state. */
  assert_int_equal(last->version, g.p.version);
  for (int k = 0; k < 3; k++)
    assert_int_equal(last->votes[k], g.p.votes[k]);
}

#define T(fn, be) cmocka_unit_test_prestate_setup_teardown(fn, fx_setup, fx_teardown, &be)
#define ALL(be)                                                                                    \
  T(test_pay, be), T(test_grant_take, be), T(test_commit_lost, be), T(test_daily, be),             \
      T(test_tos, be), T(test_tos_never_publishes_a_secret, be),                                   \
      T(test_tos_files_only_from_the_directory, be), T(test_tos_publish_after_a_lost_commit, be),  \
      T(test_tos_first_version_published_once, be), T(test_tos_status, be),                        \
      T(test_tos_double_click, be), T(test_tos_accept_runs_kept_command_once, be),                 \
      T(test_spin_needs_current_tos, be), T(test_tos_kept_command_keeps_its_key, be),              \
      T(test_pay_both_ways, be), T(test_leaderboard, be), T(test_bets, be),                        \
      T(test_bets_recover, be), T(test_bets_recover_locks_in_user_order, be),                      \
      T(test_bets_recover_goes_past_a_stuck_bet, be), T(test_forget_user_keeps_the_audit, be),     \
      T(test_polls, be), T(test_poll_concurrent, be), T(test_poll_tally_never_steps_back, be)

int main(void) {
  souk_log_set_level(getenv("SOUK_TEST_DEBUG") ? SOUK_LOG_DEBUG : SOUK_LOG_OFF);
  const struct CMUnitTest sqlite_tests[] = {ALL(be_sqlite)};
  const struct CMUnitTest pg_tests[] = {ALL(be_pg)};
  int fails = cmocka_run_group_tests_name("economy/sqlite", sqlite_tests, NULL, NULL);
  fails +=
      cmocka_run_group_tests_name("economy/postgres", pg_tests, pg_group_setup, pg_group_teardown);
  souk_loop_close();
  return fails;
}
