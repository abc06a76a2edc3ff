/* The cluster's lease and member list against real servers on loopback:
 * a throwaway redis-server (the lease by SET NX PX with a fencing
 * counter, the heartbeat, the goodbye at stop, Redis killed under a
 * leader, a refused fenced write) and a throwaway PostgreSQL (the
 * advisory lock held by another session, taken over when that session
 * ends, fenced by the sequence, and the store refusing a write under an
 * older token).  The "other process" is played by a plain client that
 * sets the keys (or holds the lock) the way another souk would.
 *
 * Also: the scheduler runs a cluster task only in the leader, with the
 * lease's token, and a cluster task that runs at start runs when the lease
 * is gained.
 *
 * Missing redis-server or PostgreSQL binaries skip those tests with a
 * message. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "../logcap.h"
#include "../looprun.h"
#include "../cache/redissrv.h"
#include "../store/pgserver.h"
#include "ops/cluster.h"
#include "ops/task.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/loop.h"
#include "souk/store.h"
#include "store/lease.h"
#include "store/store_int.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PREFIX "t:"
#define TTL    1000

/* ---- helpers ------------------------------------------------------------------- */



static bool is_leader(void) { return souk_cluster_leader(); }
static bool not_leader(void) { return !souk_cluster_leader(); }

/* Leadership changes seen by a watcher. */
static int n_gained, n_lost;
static int64_t last_fence;
static void watch_cb(bool leader, int64_t fence, void *ud) {
  if (leader)
    n_gained++;
  else
    n_lost++;
  last_fence = fence;
}

static void conf(int lease) {
  memset(&souk__cluster_conf, 0, sizeof souk__cluster_conf);
  souk__cluster_conf.lease = lease;
  souk__cluster_conf.lease_ttl_ms = TTL;
  souk__cluster_conf.heartbeat_ms = 200;
}

static int start_redis_mode(void) {
  conf(SOUK__CLUSTER_LEASE_AUTO);
  souk__cluster_opts_t o = {.redis_url = g_url, .key_prefix = PREFIX, .version = "test"};
  return souk__cluster_start(&o);
}

static void stop(void) {
  souk__cluster_stop();
  run_for(50);
}

static redisReply *cmd(const char *fmt, ...) {
  redisContext *rc = sync_client();
  if (!rc) return NULL;
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(rc, fmt, ap);
  va_end(ap);
  redisFree(rc);
  return r;
}

/* The lease key's value, "" when there is none. */
static const char *lease_value(void) {
  static char v[256];
  v[0] = '\0';
  redisReply *r = cmd("GET " PREFIX "cluster:lease");
  if (r && r->type == REDIS_REPLY_STRING) snprintf(v, sizeof v, "%s", r->str);
  if (r) freeReplyObject(r);
  return v;
}

/* ---- Redis ------------------------------------------------------------------- */

/* Alone: it takes the lease (token 1), registers itself, and a watcher
 * hears it once; stopping hands the lease back and leaves the list. */
static void test_redis_alone(void **state) {
  log_reset();
  n_gained = n_lost = 0;
  assert_int_equal(souk_cluster_watch(watch_cb, NULL), 0);
  assert_int_equal(start_redis_mode(), 0);
  souk_cluster_status_t st;
  souk_cluster_status(&st);
  assert_int_equal(st.mode, SOUK_CLUSTER_REDIS);
  /* Not the leader before Redis said so. */
  assert_false(souk_cluster_leader());
  if (!run_until(is_leader, 2000)) log_dump();
  assert_true(souk_cluster_leader());
  assert_int_equal(n_gained, 1);
  assert_int_equal(souk_cluster_fence(), 1);
  assert_int_equal(last_fence, 1);
  /* "1 <random>:<id>" in Redis, with the TTL. */
  const char *v = lease_value();
  assert_true(!strncmp(v, "1 ", 2));
  souk_cluster_status(&st);
  assert_non_null(strstr(v, st.id));
  redisReply *r = cmd("PTTL " PREFIX "cluster:lease");
  assert_true(r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 && r->integer <= TTL);
  freeReplyObject(r);
  /* Renewed: still ours, same token, after several TTLs. */
  run_for(3 * TTL);
  assert_true(souk_cluster_leader());
  assert_int_equal(souk_cluster_fence(), 1);
  assert_int_equal(n_gained, 1);
  /* The member list: this process, with its description. */
  souk__cluster_set_shards(2, 3, 8);
  run_for(400);
  souk_cluster_member_t m[4];
  assert_int_equal(souk_cluster_members(m, 4), 1);
  assert_true(m[0].self);
  assert_true(m[0].leader);
  assert_int_equal(m[0].shard_first, 2);
  assert_int_equal(m[0].shard_last, 3);
  assert_int_equal(m[0].shard_count, 8);
  assert_string_equal(m[0].version, "test");
  assert_int_equal(souk__cluster_size(), 1);
  r = cmd("ZCARD " PREFIX "cluster:members");
  assert_true(r && r->integer == 1);
  freeReplyObject(r);
  stop();
  /* The goodbye: no lease left, no member left. */
  assert_string_equal(lease_value(), "");
  r = cmd("ZCARD " PREFIX "cluster:members");
  assert_true(r && r->integer == 0);
  freeReplyObject(r);
  souk_cluster_unwatch(watch_cb, NULL);
}

/* Another process holds the lease: follow it (and see it in the member
 * list); when its key runs out (it died), take over within the key's
 * expiry plus a little, with the next token. */
static void test_redis_takeover(void **state) {
  n_gained = n_lost = 0;
  freeReplyObject(cmd("SET " PREFIX "cluster:fence 41"));
  freeReplyObject(cmd("SET " PREFIX "cluster:lease %s PX %d", "41 abcd:other", 800));
  freeReplyObject(cmd("ZADD " PREFIX "cluster:members %s other", "99999999999999"));
  freeReplyObject(
      cmd("HSET " PREFIX "cluster:info other %s", "{\"id\":\"other\",\"first\":0,\"last\":1,"
                                                  "\"count\":8,\"leader\":true,\"ttl\":600}"));
  souk_cluster_watch(watch_cb, NULL);
  uint64_t t0 = souk_now_ms();
  assert_int_equal(start_redis_mode(), 0);
  run_for(300);
  assert_false(souk_cluster_leader());
  souk_cluster_status_t st;
  souk_cluster_status(&st);
  assert_string_equal(st.holder, "other");
  assert_int_equal(souk__cluster_size(), 2);
  souk_cluster_member_t m[4];
  assert_int_equal(souk_cluster_members(m, 4), 2);
  int other = strcmp(m[0].id, "other") == 0 ? 0 : 1;
  assert_true(m[other].leader);
  assert_false(m[other].self);
  assert_true(m[1 - other].self);
  assert_true(run_until(is_leader, 2000));
  uint64_t took = souk_now_ms() - t0;
  printf("took over after %" PRIu64 " ms (the key had 800 ms)\n", took);
  assert_true(took >= 790 && took < 800 + 200);
  assert_int_equal(souk_cluster_fence(), 42);
  assert_int_equal(n_gained, 1);
  stop();
  souk_cluster_unwatch(watch_cb, NULL);
}

/* A leader whose Redis dies stops leading before its key could have
 * expired (the others could only take it after that), says so, and
 * leads again with a newer token once Redis is back, even though the
 * restarted Redis lost its counter. */
static void test_redis_killed_under_leader(void **state) {
  log_reset();
  n_gained = n_lost = 0;
  souk_cluster_watch(watch_cb, NULL);
  assert_int_equal(start_redis_mode(), 0);
  assert_true(run_until(is_leader, 2000));
  int64_t f1 = souk_cluster_fence();
  run_for(100);
  redis_stop();
  uint64_t killed = souk_now_ms();
  assert_true(run_until(not_leader, 2000));
  uint64_t gone = souk_now_ms() - killed;
  printf("stepped down %" PRIu64 " ms after the kill (ttl %d)\n", gone, TTL);
  /* The last renewal was at most a third of the TTL before the kill; the
   * key lives a TTL from it; the leader stops a quarter before. */
  assert_true(gone <= TTL - TTL / 4 + 60);
  assert_int_equal(n_lost, 1);
  if (log_count("no longer leads") != 1) log_dump();
  assert_int_equal(log_count("no longer leads"), 1);
  assert_int_equal(log_count("redis unreachable"), 1);
  assert_int_equal(redis_start(), 0);
  assert_true(run_until(is_leader, 5000));
  assert_true(souk_cluster_fence() > f1);
  assert_int_equal(n_gained, 2);
  stop();
  souk_cluster_unwatch(watch_cb, NULL);
}

/* The store refused a write under this token (a newer holder wrote):
 * the lease is given up, and the next one comes with a token above the
 * one the store has. */
static void test_redis_fence_refused(void **state) {
  assert_int_equal(start_redis_mode(), 0);
  assert_true(run_until(is_leader, 2000));
  int64_t f = souk_cluster_fence();
  souk__store_fence_saw(f + 50);
  assert_true(run_until(not_leader, 1000));
  assert_true(run_until(is_leader, 3000));
  assert_true(souk_cluster_fence() > f + 50);
  stop();
}

/* Settings changes are announced on the events channel, and a change
 * announced by another process is not taken for our own. */
static void test_redis_publish(void **state) {
  assert_int_equal(start_redis_mode(), 0);
  assert_true(run_until(is_leader, 2000));
  redisContext *sub = sync_client();
  assert_non_null(sub);
  redisReply *r = redisCommand(sub, "SUBSCRIBE " PREFIX "cluster:events");
  freeReplyObject(r);
  souk__cluster_publish_setting(1234, "commands.prefix", NULL);
  run_for(100);
  struct timeval tv = {1, 0};
  redisSetTimeout(sub, tv);
  r = NULL;
  assert_int_equal(redisGetReply(sub, (void **)&r), REDIS_OK);
  assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 3);
  assert_non_null(strstr(r->element[2]->str, " settings 1234 commands.prefix"));
  freeReplyObject(r);
  redisFree(sub);
  stop();
}

/* /admin cache-clear must not hand the lease to a second process: a
 * clear of "*" leaves the cluster's keys alone (tested with the cache in
 * test_cache.c); here the member list and the lease outlive a FLUSHALL
 * only as long as Redis has them: after one, the leader takes the lease
 * again with a newer token rather than two processes leading. */
static void test_redis_flushall(void **state) {
  assert_int_equal(start_redis_mode(), 0);
  assert_true(run_until(is_leader, 2000));
  int64_t f = souk_cluster_fence();
  freeReplyObject(cmd("FLUSHALL"));
  /* The renewal finds no key: the lease is taken anew, a newer token. */
  run_for(TTL);
  assert_true(souk_cluster_leader());
  assert_true(souk_cluster_fence() > f);
  stop();
}

static int redis_setup(void **state) {
  if (access(redis_bin(), X_OK) != 0) {
    fprintf(stderr, "[  SKIP    ] %s not found\n", redis_bin());
    skip();
  }
  return redis_fresh();
}

/* ---- the scheduler ------------------------------------------------------------- */

static int runs;
static int64_t run_fence;
static void task_fn(souk_task_ctx_t *ctx) {
  runs++;
  run_fence = souk_task_fence(ctx);
  souk_task_done(ctx, 0);
}

static void test_sched_cluster_scope(void **state) {
  souk__sched_init(NULL);
  souk__cluster_fake(SOUK_CLUSTER_REDIS, "me", false, 0);
  static const souk_task_t t = {.name = "t.cluster",
                                .period_ms = 100,
                                .handler = task_fn,
                                .flags = SOUK_TASK_RUN_AT_START,
                                .scope = SOUK_TASK_SCOPE_CLUSTER};
  runs = 0;
  assert_int_equal(souk__sched_add(&t), 0);
  assert_int_equal(souk__sched_start(), 0);
  run_for(350);
  souk_task_stats_t st;
  assert_int_equal(souk_task_stats("t.cluster", &st), 0);
  assert_int_equal(runs, 0);
  assert_true(st.skipped_not_leader >= 2);
  assert_int_equal(st.scope, SOUK_TASK_SCOPE_CLUSTER);
  /* Gaining the lease runs it now, with the lease's token. */
  uint64_t t0 = souk_now_ms();
  souk__cluster_fake(SOUK_CLUSTER_REDIS, "me", true, 7);
  run_for(30);
  assert_int_equal(runs, 1);
  assert_int_equal(run_fence, 7);
  assert_true(souk_now_ms() - t0 < 100);
  run_for(250);
  assert_true(runs >= 3);
  /* Losing it stops the runs. */
  souk__cluster_fake(SOUK_CLUSTER_REDIS, "me", false, 0);
  int before = runs;
  run_for(300);
  assert_int_equal(runs, before);
  souk_buf_t b;
  souk_buf_init(&b);
  souk__sched_report(&b);
  assert_non_null(strstr(b.data, "[cluster: another process leads]"));
  souk_buf_free(&b);
  souk__sched_shutdown();
  souk__cluster_fake(SOUK_CLUSTER_SINGLE, "me", true, 0);
}

/* ---- PostgreSQL ----------------------------------------------------------------- */

static char pg_url[160];
static souk_store_t *pg_store;

static int pg_setup(void **state) {
  if (pg_state != 1) skip();
  assert_true(pg_create_db("cluster", pg_url, sizeof pg_url));
  souk_store_conf_t c;
  souk_store_conf_defaults(&c);
  c.url = pg_url;
  assert_int_equal(souk_store_open(&c, NULL, &pg_store), 0);
  return 0;
}

static int pg_teardown(void **state) {
  souk_store_close(pg_store);
  pg_store = NULL;
  return 0;
}

/* The advisory lock's number as the cluster makes it for PREFIX. */
static long long pg_lock_key(void) {
  uint32_t h = 2166136261u;
  for (const char *p = PREFIX; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  return (long long)(((uint64_t)0x736f756bu << 32) | h);
}

static int start_pg_mode(void) {
  conf(SOUK__CLUSTER_LEASE_AUTO);
  souk__cluster_opts_t o = {.key_prefix = PREFIX,
                            .store = pg_store,
                            .store_url = pg_url,
                            .connect_timeout_ms = 2000,
                            .version = "test"};
  return souk__cluster_start(&o);
}

typedef struct fence_job {
  int64_t token;
} fence_job_t;

static int fence_fn(souk_db_t *db, void *ud) {
  fence_job_t *j = ud;
  int rc = souk_db_fence(db, j->token);
  if (rc) return rc;
  return souk_db_kv_put(db, "t", "k", "v", 1);
}

/* Another session holds the lock: follow it (its recorded name shown);
 * when that session ends, take the lock within a fraction of the TTL,
 * with a token from the sequence.  Writes under the new token pass;
 * writes under an older one are refused from then on. */
static void test_pg_lease(void **state) {
  PGconn *other = PQconnectdb(pg_url);
  assert_int_equal(PQstatus(other), CONNECTION_OK);
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%lld)", pg_lock_key());
  PGresult *r = PQexec(other, sql);
  assert_string_equal(PQgetvalue(r, 0, 0), "t");
  PQclear(r);
  r = PQexec(other, "INSERT INTO cluster_fence (name, token, holder, updated_at) VALUES "
                    "('pg_lease', nextval('cluster_fence_seq'), 'ffff:other', 0)");
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  assert_int_equal(start_pg_mode(), 0);
  souk_cluster_status_t st;
  souk_cluster_status(&st);
  assert_int_equal(st.mode, SOUK_CLUSTER_POSTGRES);
  run_for(600);
  assert_false(souk_cluster_leader());
  souk_cluster_status(&st);
  assert_string_equal(st.holder, "other");
  /* The other process dies: its session, and the lock, go with it. */
  uint64_t t0 = souk_now_ms();
  PQfinish(other);
  assert_true(run_until(is_leader, 3000));
  printf("postgres: took over %" PRIu64 " ms after the holder's session ended\n",
         souk_now_ms() - t0);
  assert_true(souk_now_ms() - t0 < TTL);
  int64_t f = souk_cluster_fence();
  assert_true(f >= 2);
  /* Renewed (checked) for several TTLs: same token. */
  run_for(2 * TTL);
  assert_true(souk_cluster_leader());
  assert_int_equal(souk_cluster_fence(), f);
  /* The fence: the new token writes; an older one is refused after it. */
  fence_job_t j = {.token = f};
  assert_int_equal(souk_store_tx(pg_store, fence_fn, &j), 0);
  j.token = f - 1;
  assert_int_equal(souk_store_tx(pg_store, fence_fn, &j), SOUK_ESTALE);
  stop();
  /* Stopped: the lock is free for another session at once. */
  run_for(200);
  other = PQconnectdb(pg_url);
  r = PQexec(other, sql);
  assert_string_equal(PQgetvalue(r, 0, 0), "t");
  PQclear(r);
  PQfinish(other);
}

/* cluster.lease: postgres without a PostgreSQL store is a configuration
 * error, as is redis without cache.url. */
static void test_conf_errors(void **state) {
  conf(SOUK__CLUSTER_LEASE_POSTGRES);
  souk__cluster_opts_t o = {.store_url = "sqlite:///tmp/x.db"};
  assert_int_equal(souk__cluster_start(&o), SOUK_ECONFIG);
  conf(SOUK__CLUSTER_LEASE_REDIS);
  assert_int_equal(souk__cluster_start(&o), SOUK_ECONFIG);
  /* Neither configured: one process, always the leader. */
  conf(SOUK__CLUSTER_LEASE_AUTO);
  assert_int_equal(souk__cluster_start(&o), 0);
  assert_true(souk_cluster_leader());
  assert_int_equal(souk_cluster_fence(), 0);
  stop();
}

int main(void) {
  atexit(redis_stop);
  signal(SIGPIPE, SIG_IGN);
  souk_alloc_init();
  if (logcap_open() != 0) return 1;
  redis_pick_port();
  const struct CMUnitTest redis_tests[] = {
      cmocka_unit_test_setup(test_redis_alone, redis_setup),
      cmocka_unit_test_setup(test_redis_takeover, redis_setup),
      cmocka_unit_test_setup(test_redis_killed_under_leader, redis_setup),
      cmocka_unit_test_setup(test_redis_fence_refused, redis_setup),
      cmocka_unit_test_setup(test_redis_publish, redis_setup),
      cmocka_unit_test_setup(test_redis_flushall, redis_setup),
      cmocka_unit_test(test_sched_cluster_scope),
      cmocka_unit_test(test_conf_errors),
  };
  const struct CMUnitTest pg_tests[] = {
      cmocka_unit_test_setup_teardown(test_pg_lease, pg_setup, pg_teardown),
  };
  int failed = cmocka_run_group_tests_name("ops/cluster (redis)", redis_tests, NULL, NULL);
  redis_stop();
  failed += cmocka_run_group_tests_name("ops/cluster (postgres)", pg_tests, pg_group_setup,
                                        pg_group_teardown);
  souk_loop_close();
  souk_log_set_fd(2);
  fclose(g_log);
  return failed ? 1 : 0;
}
