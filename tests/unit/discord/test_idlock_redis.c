/* The Redis identify backend against a real redis-server on loopback: two
 * instances (as two hosts would have) sharing the slots of two buckets,
 * cancel and destroy, Redis killed mid-way (local fallback, logged once per
 * instance, then "redis back" after a restart), a stalled server, Redis
 * unreachable from the start, and bad arguments.
 *
 * redis-server runs as a child with PR_SET_PDEATHSIG, is killed at the end
 * and again by an atexit handler, so a failing test never leaves one
 * behind.  Without /usr/bin/redis-server (or the path in
 * SOUK_TEST_REDIS_SERVER) the tests are skipped with a message. */
/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "discord/idlock_redis.h"
#include "../logcap.h"
#include "../looprun.h"
#include "../cache/redissrv.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INTERVAL 300 /* ms: short, so the tests take seconds */
#define MC       2   /* max_concurrency: buckets 0 and 1 */
#define PREFIX   "t:"
/* A grant follows the SET that took the slot by one reply trip, and the
 * next host's SET succeeds once the key expired in Redis: grants seen here
 * may be closer than the interval by the difference of two reply trips.
 * SOUK_IDENTIFY_INTERVAL_MS has a margin for that; the tests allow this. */
#define SLACK 25


/* ---- loop and log helpers ------------------------------------------------ */



/* ---- fake shards --------------------------------------------------------- */

typedef struct grant {
  uint32_t shard, bucket;
  uint64_t at;
  int inst;
} grant_t;

static grant_t grants[64];
static int ngrants, want_grants;
static bool enough_grants(void) { return ngrants >= want_grants; }

typedef struct fake_shard {
  uint32_t id, bucket;
  int inst;
  souk__identify_lock_t *lock;
} fake_shard_t;

/* As the shards do: IDENTIFY inside the grant, then release at once. */
static void fake_grant(void *ud) {
  fake_shard_t *s = ud;
  assert_true(ngrants < 64);
  grants[ngrants++] = (grant_t){s->id, s->bucket, souk_now_ms(), s->inst};
  s->lock->ops->release(s->lock->self, s->bucket);
}

/* No two grants of one bucket closer than the interval (less the slack),
 * among the instances in mask (bit i: instance i), and so never more than
 * MC grants in any such window. */
static void check_spacing(unsigned mask) {
  for (int i = 0; i < ngrants; i++) {
    if (!(mask & (1u << grants[i].inst))) continue;
    int in_window = 1;
    for (int k = 0; k < ngrants; k++) {
      if (k == i || !(mask & (1u << grants[k].inst))) continue;
      if (grants[k].at >= grants[i].at && grants[k].at < grants[i].at + INTERVAL - SLACK) {
        in_window++;
        if (grants[k].bucket == grants[i].bucket)
          fail_msg("shards %u and %u (bucket %u) granted %" PRIu64 " ms apart", grants[i].shard,
                   grants[k].shard, grants[i].bucket, grants[k].at - grants[i].at);
      }
    }
    assert_true(in_window <= MC);
  }
}

/* Ten shards, 0-4 on instance a and 5-9 on b, buckets shard % MC. */
static void acquire_ten(fake_shard_t *sh, souk__identify_lock_t *a, souk__identify_lock_t *b) {
  for (uint32_t i = 0; i < 10; i++) {
    sh[i] = (fake_shard_t){i, i % MC, i < 5 ? 0 : 1, i < 5 ? a : b};
    assert_int_equal(sh[i].lock->ops->acquire(sh[i].lock->self, sh[i].bucket, fake_grant, &sh[i]),
                     0);
  }
}

static void destroy(souk__identify_lock_t *l) {
  l->ops->destroy(l->self);
  run_for(1);
}

static int want_log;
static const char *want_needle;
static bool enough_log(void) { return log_count(want_needle) >= want_log; }

/* ---- tests ------------------------------------------------------------------- */

/* Two hosts' worth of instances share two buckets through Redis alone:
 * their own records know nothing of each other. */
static void test_two_instances(void **state) {
  log_reset();
  souk__identify_lock_t a, b;
  assert_int_equal(souk__identify_lock_redis(g_url, PREFIX, INTERVAL, &a), 0);
  assert_int_equal(souk__identify_lock_redis(g_url, PREFIX, INTERVAL, &b), 0);
  fake_shard_t sh[10];
  ngrants = 0;
  uint64_t t0 = souk_now_ms();
  acquire_ten(sh, &a, &b);
  /* Never granted from inside acquire. */
  assert_int_equal(ngrants, 0);
  want_grants = 10;
  assert_true(run_until(enough_grants, 5000));
  check_spacing(3);
  /* Five rounds per bucket: about four intervals, plus retry jitter. */
  assert_true(grants[9].at - t0 >= 4 * (INTERVAL - SLACK));
  assert_true(grants[9].at - t0 < 4 * INTERVAL + 1000);
  int na = 0;
  for (int i = 0; i < ngrants; i++)
    na += grants[i].inst == 0;
  assert_int_equal(na, 5);
  /* The slots went through Redis: the last one's key is there, holding
   * this process's token, and it expires within the interval. */
  redisContext *rc = sync_client();
  assert_non_null(rc);
  redisReply *r = redisCommand(rc, "GET " PREFIX "identify:%u", grants[9].bucket);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  char pid[32];
  snprintf(pid, sizeof pid, ":%ld:", (long)getpid());
  assert_non_null(strstr(r->str, pid));
  freeReplyObject(r);
  r = redisCommand(rc, "PTTL " PREFIX "identify:%u", grants[9].bucket);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  assert_true(r->integer > 0 && r->integer <= INTERVAL);
  freeReplyObject(r);
  redisFree(rc);
  assert_int_equal(log_count("spacing IDENTIFYs through redis"), 2);
  assert_int_equal(log_count("redis unreachable"), 0);
  destroy(&a);
  destroy(&b);
}

/* A slot another host holds is waited for, for as long as its key says. */
static void test_waits_for_other_host(void **state) {
  redisContext *rc = sync_client();
  assert_non_null(rc);
  redisReply *r = redisCommand(rc, "SET " PREFIX "identify:1 other-host NX PX 800");
  assert_non_null(r);
  freeReplyObject(r);
  redisFree(rc);
  souk__identify_lock_t a;
  assert_int_equal(souk__identify_lock_redis(g_url, PREFIX, INTERVAL, &a), 0);
  fake_shard_t s = {1, 1, 0, &a};
  ngrants = 0;
  uint64_t t0 = souk_now_ms();
  assert_int_equal(a.ops->acquire(a.self, 1, fake_grant, &s), 0);
  want_grants = 1;
  assert_true(run_until(enough_grants, 3000));
  assert_true(grants[0].at - t0 >= 800 - SLACK);
  assert_true(grants[0].at - t0 < 800 + 300);
  destroy(&a);
}

static void test_cancel_destroy(void **state) {
  souk__identify_lock_t a;
  assert_int_equal(souk__identify_lock_redis(g_url, PREFIX, INTERVAL, &a), 0);
  fake_shard_t sh[5];
  for (uint32_t i = 0; i < 5; i++)
    sh[i] = (fake_shard_t){i, 0, 0, &a};
  ngrants = 0;
  /* Cancel withdraws a waiter: the next in line gets the slot. */
  assert_int_equal(a.ops->acquire(a.self, 0, fake_grant, &sh[0]), 0);
  assert_int_equal(a.ops->acquire(a.self, 0, fake_grant, &sh[2]), 0);
  assert_int_equal(a.ops->acquire(a.self, 0, fake_grant, &sh[3]), 0);
  a.ops->cancel(a.self, 0, fake_grant, &sh[0]);
  /* Cancelling what was never queued is a no-op, in any bucket. */
  a.ops->cancel(a.self, 0, fake_grant, &sh[4]);
  a.ops->cancel(a.self, 7, fake_grant, &sh[4]);
  want_grants = 1;
  assert_true(run_until(enough_grants, 3000));
  assert_int_equal(grants[0].shard, 2);
  /* Cancelled while it waits for the slot sh[2] took: never called. */
  run_for(INTERVAL / 3);
  a.ops->cancel(a.self, 0, fake_grant, &sh[3]);
  run_for(INTERVAL + 100);
  assert_int_equal(ngrants, 1);
  /* Destroyed with waiters queued: never called. */
  assert_int_equal(a.ops->acquire(a.self, 0, fake_grant, &sh[4]), 0);
  assert_int_equal(a.ops->acquire(a.self, 1, fake_grant, &sh[1]), 0);
  destroy(&a);
  run_for(INTERVAL + 100);
  assert_int_equal(ngrants, 1);
}

/* Redis dies with shards still waiting: every instance logs the switch
 * once, keeps its own spacing, and grants go on; after a restart each logs
 * "redis back" once and takes slots through Redis again. */
static void test_killed_midway(void **state) {
  log_reset();
  souk__identify_lock_t a, b;
  assert_int_equal(souk__identify_lock_redis(g_url, PREFIX, INTERVAL, &a), 0);
  assert_int_equal(souk__identify_lock_redis(g_url, PREFIX, INTERVAL, &b), 0);
  fake_shard_t sh[10];
  ngrants = 0;
  acquire_ten(sh, &a, &b);
  want_grants = 4;
  assert_true(run_until(enough_grants, 5000));
  check_spacing(3);
  redis_stop();
  want_grants = 10;
  assert_true(run_until(enough_grants, 8000));
  /* Each instance kept its own spacing throughout. */
  check_spacing(1);
  check_spacing(2);
  /* Reconnect attempts keep failing, but the switch was logged once each. */
  run_for(700);
  if (log_count("redis unreachable") != 2) log_dump();
  assert_int_equal(log_count("redis unreachable"), 2);
  assert_int_equal(redis_start(), 0);
  want_needle = "redis back";
  want_log = 2;
  assert_true(run_until(enough_log, 5000));
  /* Through Redis again: the slot's key appears. */
  fake_shard_t s = {0, 0, 0, &a};
  ngrants = 0;
  assert_int_equal(a.ops->acquire(a.self, 0, fake_grant, &s), 0);
  want_grants = 1;
  assert_true(run_until(enough_grants, 3000));
  redisContext *rc = sync_client();
  assert_non_null(rc);
  redisReply *r = redisCommand(rc, "EXISTS " PREFIX "identify:0");
  assert_non_null(r);
  assert_int_equal(r->integer, 1);
  freeReplyObject(r);
  redisFree(rc);
  assert_int_equal(log_count("redis unreachable"), 2);
  assert_int_equal(log_count("redis back"), 2);
  destroy(&a);
  destroy(&b);
}

/* A server that stops answering is given up after the reply timeout. */
static void test_stalled_server(void **state) {
  log_reset();
  souk__identify_lock_t a;
  assert_int_equal(souk__identify_lock_redis(g_url, PREFIX, INTERVAL, &a), 0);
  want_needle = "spacing IDENTIFYs through redis";
  want_log = 1;
  assert_true(run_until(enough_log, 3000));
  kill(g_redis_pid, SIGSTOP);
  fake_shard_t s = {0, 0, 0, &a};
  ngrants = 0;
  uint64_t t0 = souk_now_ms();
  assert_int_equal(a.ops->acquire(a.self, 0, fake_grant, &s), 0);
  want_grants = 1;
  assert_true(run_until(enough_grants, 5000));
  assert_true(grants[0].at - t0 >= 1500);
  assert_int_equal(log_count("redis unreachable"), 1);
  assert_int_equal(log_count("reply timed out"), 1);
  kill(g_redis_pid, SIGCONT);
  destroy(&a);
}

/* Nothing listens on the port: slots are handed out locally at once. */
static void test_unreachable_at_start(void **state) {
  log_reset();
  char url[64];
  snprintf(url, sizeof url, "redis://127.0.0.1:%d/2", free_port());
  souk__identify_lock_t a;
  assert_int_equal(souk__identify_lock_redis(url, NULL, INTERVAL, &a), 0);
  fake_shard_t sh[3];
  ngrants = 0;
  uint64_t t0 = souk_now_ms();
  for (uint32_t i = 0; i < 3; i++) {
    sh[i] = (fake_shard_t){i, 0, 0, &a};
    assert_int_equal(a.ops->acquire(a.self, 0, fake_grant, &sh[i]), 0);
  }
  want_grants = 3;
  assert_true(run_until(enough_grants, 3000));
  assert_true(grants[0].at - t0 < 200);
  check_spacing(1);
  run_for(600);
  assert_int_equal(log_count("redis unreachable"), 1);
  destroy(&a);
}

/* Destroyed while the name is being resolved, and while connecting. */
static void test_destroy_early(void **state) {
  char url[64];
  snprintf(url, sizeof url, "redis://localhost:%d", g_redis_port);
  souk__identify_lock_t a;
  assert_int_equal(souk__identify_lock_redis(url, "x:", 0, &a), 0);
  destroy(&a);
  run_for(50);
  assert_int_equal(souk__identify_lock_redis(g_url, "x:", 0, &a), 0);
  fake_shard_t s = {0, 0, 0, &a};
  assert_int_equal(a.ops->acquire(a.self, 0, fake_grant, &s), 0);
  destroy(&a);
  run_for(50);
}

static void test_bad_args(void **state) {
  souk__identify_lock_t a;
  assert_int_equal(souk__identify_lock_redis(NULL, PREFIX, 0, &a), SOUK_EINVAL);
  assert_int_equal(souk__identify_lock_redis(g_url, PREFIX, 0, NULL), SOUK_EINVAL);
  assert_int_equal(souk__identify_lock_redis("http://x", PREFIX, 0, &a), SOUK_ECONFIG);
  assert_int_equal(souk__identify_lock_redis("redis://", PREFIX, 0, &a), SOUK_ECONFIG);
  assert_int_equal(souk__identify_lock_redis("redis://h:99999", PREFIX, 0, &a), SOUK_ECONFIG);
  assert_int_equal(souk__identify_lock_redis("redis://h:1/x", PREFIX, 0, &a), SOUK_ECONFIG);
  assert_int_equal(souk__identify_lock_redis(g_url, PREFIX, 0, &a), 0);
  assert_int_equal(a.ops->acquire(a.self, 0, NULL, NULL), SOUK_EINVAL);
  destroy(&a);
}

/* The session starts of the day through Redis: what one host counts the
 * other reads (from its last MGET, asked again in the background), each
 * hour's key expires after the day, and starts made while Redis is down
 * are counted locally at once and added in Redis when it is back. */
static uint32_t day_now(souk__identify_lock_t *l, int64_t wall, int i) {
  uint32_t c[SOUK_IDL_HOURS];
  l->ops->starts(l->self, wall, c);
  return c[i];
}

static souk__identify_lock_t *g_day_lock;
static int64_t g_day_wall;
static uint32_t g_day_want;
static bool day_reached(void) { return day_now(g_day_lock, g_day_wall, 0) == g_day_want; }

static void test_day_record_shared(void **state) {
  log_reset();
  const int64_t H = SOUK_IDL_HOUR_MS, t0 = (int64_t)souk_unix_ms();
  souk__identify_lock_t a, b;
  assert_int_equal(souk__identify_lock_redis(g_url, PREFIX, INTERVAL, &a), 0);
  assert_int_equal(souk__identify_lock_redis(g_url, PREFIX, INTERVAL, &b), 0);
  want_needle = "spacing IDENTIFYs through redis";
  want_log = 2;
  assert_true(run_until(enough_log, 3000));
  for (int i = 0; i < 3; i++)
    a.ops->count_start(a.self, t0);
  b.ops->count_start(b.self, t0 - H);
  /* Each sees its own at once. */
  assert_int_equal(day_now(&a, t0, 0), 3);
  assert_int_equal(day_now(&b, t0, 1), 1);
  run_for(200);
  /* And the other's once its record was read again (the first read went
   * out with the starts above; a read older than a few seconds is asked
   * again by starts()). */
  g_day_lock = &b;
  g_day_wall = t0;
  g_day_want = 3;
  uint64_t end = souk_now_ms() + 8000;
  while (!day_reached() && souk_now_ms() < end)
    run_for(100);
  assert_int_equal(day_now(&b, t0, 0), 3);
  assert_int_equal(day_now(&b, t0, 1), 1);
  /* The keys hold the counts and expire after the day. */
  redisContext *rc = sync_client();
  assert_non_null(rc);
  redisReply *r = redisCommand(rc, "GET " PREFIX "identify:starts:%lld", (long long)(t0 / H));
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_string_equal(r->str, "3");
  freeReplyObject(r);
  r = redisCommand(rc, "PTTL " PREFIX "identify:starts:%lld", (long long)(t0 / H));
  assert_true(r->integer > 24 * H && r->integer <= 26 * H);
  freeReplyObject(r);
  redisFree(rc);

  /* Redis goes down: counted locally, added when it is back. */
  redis_stop();
  a.ops->count_start(a.self, t0);
  assert_int_equal(day_now(&a, t0, 0), 4);
  run_for(300);
  assert_int_equal(redis_start(), 0);
  want_needle = "redis back";
  want_log = 2;
  assert_true(run_until(enough_log, 5000));
  run_for(300);
  rc = sync_client();
  assert_non_null(rc);
  r = redisCommand(rc, "GET " PREFIX "identify:starts:%lld", (long long)(t0 / H));
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_string_equal(r->str, "1"); /* a fresh server: only the start it missed */
  freeReplyObject(r);
  redisFree(rc);
  /* Never below what the process itself started. */
  assert_int_equal(day_now(&a, t0, 0), 4);
  destroy(&a);
  destroy(&b);
}

/* Every test starts with a running, empty server. */
static int test_setup(void **state) { return redis_fresh(); }

int main(void) {
  if (access(redis_bin(), X_OK) != 0) {
    fprintf(stderr,
            "SKIP discord/idlock_redis: %s not found; the Redis identify lock was not "
            "tested\n",
            redis_bin());
    return 0;
  }
  atexit(redis_stop);
  signal(SIGPIPE, SIG_IGN);
  souk_alloc_init();
  if (logcap_open() != 0) return 1;
  redis_pick_port();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_two_instances, test_setup),
      cmocka_unit_test_setup(test_waits_for_other_host, test_setup),
      cmocka_unit_test_setup(test_cancel_destroy, test_setup),
      cmocka_unit_test_setup(test_killed_midway, test_setup),
      cmocka_unit_test_setup(test_stalled_server, test_setup),
      cmocka_unit_test_setup(test_unreachable_at_start, test_setup),
      cmocka_unit_test_setup(test_destroy_early, test_setup),
      cmocka_unit_test_setup(test_bad_args, test_setup),
      cmocka_unit_test_setup(test_day_record_shared, test_setup),
  };
  int failed = cmocka_run_group_tests_name("discord/idlock_redis", tests, NULL, NULL);
  redis_stop();
  souk_loop_close();
  souk_log_set_fd(2);
  fclose(g_log);
  return failed ? 1 : 0;
}
