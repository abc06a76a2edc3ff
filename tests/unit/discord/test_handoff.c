/* The session hand-off against a real redis-server on loopback: a shard's
 * session written after events and claimed by the next process; the
 * process that lost a shard to a later claim told so and writing no more;
 * writes coalesced to one in flight per shard; a flush that waits for the
 * last write; Redis unreachable at start (claims answered "no session",
 * the shard claimed and written once Redis is up); scripts flushed on the
 * server (NOSCRIPT: a new connection loads them again); guild counts
 * summed across processes; guild records written with the session and
 * handed to the next claim; bad arguments.
 *
 * redis-server runs as a child with PR_SET_PDEATHSIG, is killed at the end
 * and again by an atexit handler.  Without /usr/bin/redis-server (or the
 * path in SOUK_TEST_REDIS_SERVER) the tests are skipped with a message. */
/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "discord/handoff.h"
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

#define PREFIX "t:"
#define COUNT  4 /* shards of the bot */

/* ---- loop helpers --------------------------------------------------------- */



/* A wait that failed shows what the code logged meanwhile. */
static void must(bool ok) {
  if (!ok) log_dump();
  assert_true(ok);
}

/* ---- what the hand-offs report ---------------------------------------------- */

typedef struct claim {
  bool answered;
  bool found;
  char sid[64], url[128];
  uint64_t seq;
} claim_t;

static claim_t claims[2][COUNT];

static void claim_cb(void *ud, uint32_t shard, const char *sid, const char *url, uint64_t seq) {
  claim_t *c = &claims[(intptr_t)ud][shard];
  assert_false(c->answered); /* once */
  c->answered = true;
  c->found = sid != NULL;
  snprintf(c->sid, sizeof c->sid, "%s", sid ? sid : "");
  snprintf(c->url, sizeof c->url, "%s", url ? url : "");
  c->seq = seq;
}

static int lost_n[2];
static uint32_t lost_shard[2];
static char lost_owner[2][128];
static void lost_cb(void *ud, uint32_t shard, const char *owner) {
  int i = (int)(intptr_t)ud;
  lost_n[i]++;
  lost_shard[i] = shard;
  snprintf(lost_owner[i], sizeof lost_owner[i], "%s", owner);
}

/* Instance 1 does not know the guilds of this shard (-1: knows all). */
static int64_t unknown_shard = -1;
static uint64_t local_guilds_cb(void *ud, uint32_t shard) {
  if ((intptr_t)ud == 1 && (int64_t)shard == unknown_shard) return SOUK_HANDOFF_GUILDS_UNKNOWN;
  return 100 * (shard + 1);
}
static uint64_t others[2];
static int others_n[2];
static void others_cb(void *ud, uint64_t n) {
  int i = (int)(intptr_t)ud;
  others[i] = n;
  others_n[i]++;
}

/* The record callbacks of the guild records' test (NULL elsewhere). */
static void *(*mk_record)(void *ud, uint64_t id, size_t *len);
static bool (*mk_restore)(void *ud, uint32_t shard, const void *rec, size_t len);

static souk__handoff_t *make(int inst, const char *url, bool guilds) {
  souk__handoff_conf_t c = {.url = url,
                            .prefix = PREFIX,
                            .shard_count = COUNT,
                            .claim_timeout_ms = 1500,
                            .refresh_ms = 100,
                            .lost = lost_cb,
                            .local_guilds = guilds ? local_guilds_cb : NULL,
                            .others_guilds = guilds ? others_cb : NULL,
                            .guild_record = mk_record,
                            .guild_restore = mk_restore,
                            .ud = (void *)(intptr_t)inst};
  souk__handoff_t *h = NULL;
  assert_int_equal(souk__handoff_new(&c, &h), 0);
  return h;
}

static void destroy(souk__handoff_t *h) {
  souk__handoff_free(h);
  run_for(20);
}

static void reset(void) {
  memset(claims, 0, sizeof claims);
  memset(lost_n, 0, sizeof lost_n);
  memset(others, 0, sizeof others);
  memset(others_n, 0, sizeof others_n);
  log_reset();
}

static int want_inst, want_shard;
static bool claim_answered(void) { return claims[want_inst][want_shard].answered; }
static bool lost_seen(void) { return lost_n[want_inst] > 0; }

/* The shard's hash in Redis, read behind the code's back. */
typedef struct saved {
  bool exists;
  char sid[64], url[128], owner[128];
  uint64_t seq;
  long long pttl;
} saved_t;

static saved_t read_saved(uint32_t shard) {
  saved_t s = {0};
  redisContext *rc = sync_client();
  assert_non_null(rc);
  redisReply *r = redisCommand(rc, "HMGET " PREFIX "gw:%d:%u sid url seq owner", COUNT, shard);
  assert_non_null(r);
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 && r->element[0]->str) {
    s.exists = true;
    snprintf(s.sid, sizeof s.sid, "%s", r->element[0]->str);
    snprintf(s.url, sizeof s.url, "%s", r->element[1]->str ? r->element[1]->str : "");
    s.seq = r->element[2]->str ? strtoull(r->element[2]->str, NULL, 10) : 0;
    snprintf(s.owner, sizeof s.owner, "%s", r->element[3]->str ? r->element[3]->str : "");
  }
  freeReplyObject(r);
  r = redisCommand(rc, "PTTL " PREFIX "gw:%d:%u", COUNT, shard);
  s.pttl = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -3;
  if (r) freeReplyObject(r);
  redisFree(rc);
  return s;
}

static uint64_t want_seq;
static uint32_t want_saved_shard;
static bool saved_reached(void) { return read_saved(want_saved_shard).seq >= want_seq; }

static bool flushed;
static void flushed_cb(void *ud) { flushed = true; }
static bool is_flushed(void) { return flushed; }

/* ---- tests ------------------------------------------------------------------ */

/* Process a runs shard 1 and writes its session after each event; process
 * b starts shard 1 next and gets that session; a's next write is refused
 * and a is told to stop the shard, and writes no more. */
static void test_claim_save_and_take_over(void **state) {
  reset();
  souk__handoff_t *a = make(0, g_url, false);
  assert_int_equal(souk__handoff_claim(a, 1, claim_cb, (void *)0), 0);
  assert_int_equal(souk__handoff_claim(a, 1, claim_cb, (void *)0), SOUK_EBUSY);
  /* Never answered inside the call. */
  assert_false(claims[0][1].answered);
  want_inst = 0, want_shard = 1;
  must(run_until(claim_answered, 3000));
  assert_false(claims[0][1].found);
  saved_t s = read_saved(1);
  assert_false(s.exists); /* a claim alone saves no session */
  /* READY, then events. */
  for (uint64_t seq = 1; seq <= 5; seq++)
    souk__handoff_save(a, 1, "sess-a", "ws://127.0.0.1:1/resume", seq);
  want_saved_shard = 1, want_seq = 5;
  must(run_until(saved_reached, 3000));
  s = read_saved(1);
  assert_string_equal(s.sid, "sess-a");
  assert_string_equal(s.url, "ws://127.0.0.1:1/resume");
  assert_string_equal(s.owner, souk__handoff_owner(a));
  assert_true(s.pttl > 0 && s.pttl <= SOUK_HANDOFF_TTL_MS);

  /* Process b takes shard 1 over (a died, as far as b knows). */
  souk__handoff_t *b = make(1, g_url, false);
  assert_string_not_equal(souk__handoff_owner(a), souk__handoff_owner(b));
  assert_int_equal(souk__handoff_claim(b, 1, claim_cb, (void *)1), 0);
  want_inst = 1, want_shard = 1;
  must(run_until(claim_answered, 3000));
  assert_true(claims[1][1].found);
  assert_string_equal(claims[1][1].sid, "sess-a");
  assert_string_equal(claims[1][1].url, "ws://127.0.0.1:1/resume");
  assert_int_equal(claims[1][1].seq, 5);
  assert_string_equal(read_saved(1).owner, souk__handoff_owner(b));

  /* a was still alive after all: its next write is refused. */
  souk__handoff_save(a, 1, "sess-a", "ws://127.0.0.1:1/resume", 6);
  want_inst = 0;
  must(run_until(lost_seen, 3000));
  assert_int_equal(lost_n[0], 1);
  assert_int_equal(lost_shard[0], 1);
  assert_string_equal(lost_owner[0], souk__handoff_owner(b));
  assert_int_equal(log_count("was claimed by"), 1);
  /* b resumes and writes; a's later saves are dropped. */
  souk__handoff_save(b, 1, "sess-a", "ws://127.0.0.1:1/resume", 9);
  souk__handoff_save(a, 1, "sess-a", "ws://127.0.0.1:1/resume", 50);
  want_seq = 9;
  must(run_until(saved_reached, 3000));
  run_for(150);
  s = read_saved(1);
  assert_int_equal(s.seq, 9);
  assert_string_equal(s.owner, souk__handoff_owner(b));
  assert_int_equal(lost_n[0], 1);
  assert_int_equal(lost_n[1], 0);
  souk__handoff_stats_t st;
  souk__handoff_stats(a, &st);
  assert_int_equal(st.lost, 1);
  assert_int_equal(st.claims, 1);
  assert_int_equal(st.claims_found, 0);
  assert_true(st.redis_up);
  souk__handoff_stats(b, &st);
  assert_int_equal(st.claims_found, 1);
  destroy(a);
  destroy(b);
}

/* A thousand events in a burst: at most one write in flight per shard, so
 * Redis sees far fewer writes than events, and the flush ends once the
 * last one is confirmed, with the last seq in Redis. */
static void test_writes_coalesce_and_flush(void **state) {
  reset();
  souk__handoff_t *a = make(0, g_url, false);
  souk__handoff_claim(a, 2, claim_cb, (void *)0);
  want_inst = 0, want_shard = 2;
  must(run_until(claim_answered, 3000));
  for (uint64_t seq = 1; seq <= 1000; seq++) {
    souk__handoff_save(a, 2, "sess-c", "ws://x/resume", seq);
    if (seq % 100 == 0) uv_run(souk_loop(), UV_RUN_NOWAIT);
  }
  flushed = false;
  souk__handoff_flush(a, 3000, flushed_cb, NULL);
  assert_false(flushed);
  must(run_until(is_flushed, 4000));
  assert_int_equal(read_saved(2).seq, 1000);
  souk__handoff_stats_t st;
  souk__handoff_stats(a, &st);
  assert_true(st.writes >= 1 && st.writes < 200);
  assert_int_equal(st.write_failures, 0);
  destroy(a);
}

/* Redis is down when the process starts: the claim is answered "no
 * session" at once (the shard identifies), and once Redis is up the shard
 * is claimed and its session written. */
static void test_unreachable_then_up(void **state) {
  reset();
  redis_stop();
  souk__handoff_t *a = make(0, g_url, false);
  souk__handoff_claim(a, 0, claim_cb, (void *)0);
  want_inst = 0, want_shard = 0;
  uint64_t t0 = souk_now_ms();
  must(run_until(claim_answered, 2000));
  assert_true(souk_now_ms() - t0 < 1000);
  assert_false(claims[0][0].found);
  assert_int_equal(log_count("redis unreachable ("), 1);
  souk__handoff_save(a, 0, "sess-d", "ws://x/resume", 3);
  /* A flush with Redis down ends at once: nothing can be written. */
  flushed = false;
  souk__handoff_flush(a, 5000, flushed_cb, NULL);
  t0 = souk_now_ms();
  must(run_until(is_flushed, 2000));
  assert_true(souk_now_ms() - t0 < 1000);
  assert_int_equal(redis_start(), 0);
  want_saved_shard = 0, want_seq = 3;
  must(run_until(saved_reached, 5000));
  assert_string_equal(read_saved(0).owner, souk__handoff_owner(a));
  assert_int_equal(log_count("redis back"), 1);
  /* The late claim had no callback left to call. */
  assert_int_equal(claims[0][0].seq, 0);
  destroy(a);
}

/* Redis restarts and loses its data while a shard has no event: the
 * session is written again once Redis is back, so a process killed before
 * the shard's next event still hands it on. */
static void test_redis_restart_writes_again(void **state) {
  reset();
  souk__handoff_t *a = make(0, g_url, false);
  souk__handoff_claim(a, 1, claim_cb, (void *)0);
  want_inst = 0, want_shard = 1;
  must(run_until(claim_answered, 3000));
  souk__handoff_save(a, 1, "sess-r", "ws://x/resume", 7);
  want_saved_shard = 1, want_seq = 7;
  must(run_until(saved_reached, 3000));
  redis_stop();
  run_for(300);
  assert_int_equal(redis_start(), 0);
  assert_false(read_saved(1).exists);
  must(run_until(saved_reached, 5000));
  saved_t s = read_saved(1);
  assert_string_equal(s.sid, "sess-r");
  assert_string_equal(s.owner, souk__handoff_owner(a));
  assert_true(s.pttl > 0);
  destroy(a);
}

/* An operator flushed the scripts: the next write gets NOSCRIPT, the
 * connection is replaced, the scripts loaded again and the write made. */
static void test_noscript_reloads(void **state) {
  reset();
  souk__handoff_t *a = make(0, g_url, false);
  souk__handoff_claim(a, 3, claim_cb, (void *)0);
  want_inst = 0, want_shard = 3;
  must(run_until(claim_answered, 3000));
  souk__handoff_save(a, 3, "sess-e", "ws://x/resume", 1);
  want_saved_shard = 3, want_seq = 1;
  must(run_until(saved_reached, 3000));
  redisContext *rc = sync_client();
  redisReply *r = redisCommand(rc, "SCRIPT FLUSH");
  freeReplyObject(r);
  redisFree(rc);
  souk__handoff_save(a, 3, "sess-e", "ws://x/resume", 2);
  want_seq = 2;
  must(run_until(saved_reached, 5000));
  assert_true(log_count("NOSCRIPT") >= 1);
  assert_int_equal(lost_n[0], 0);
  destroy(a);
}

/* Each process writes the guild counts of its own shards and sums the
 * others': a runs shards 0 and 1 (100 + 200), b runs shard 3 (400). */
static void test_guild_counts(void **state) {
  reset();
  souk__handoff_t *a = make(0, g_url, true), *b = make(1, g_url, true);
  souk__handoff_claim(a, 0, claim_cb, (void *)0);
  souk__handoff_claim(a, 1, claim_cb, (void *)0);
  souk__handoff_claim(b, 3, claim_cb, (void *)1);
  run_for(600);
  assert_true(others_n[0] > 0 && others_n[1] > 0);
  assert_int_equal(others[0], 400);
  assert_int_equal(others[1], 300);
  souk__handoff_stats_t st;
  souk__handoff_stats(b, &st);
  assert_int_equal(st.others_guilds, 300);
  destroy(a);
  destroy(b);
}

/* b resumes shard 0 from a and does not know its guilds (no READY): the
 * count a wrote stays in Redis and b counts it with the others'; a, which
 * still runs shard 1, keeps counting it too. */
static void test_guild_counts_unknown_kept(void **state) {
  reset();
  souk__handoff_t *a = make(0, g_url, true);
  souk__handoff_claim(a, 0, claim_cb, (void *)0);
  souk__handoff_claim(a, 1, claim_cb, (void *)0);
  run_for(400);
  unknown_shard = 0;
  souk__handoff_t *b = make(1, g_url, true);
  souk__handoff_claim(b, 0, claim_cb, (void *)1);
  souk__handoff_claim(b, 3, claim_cb, (void *)1);
  run_for(600);
  unknown_shard = -1;
  /* b: shard 0 (100, a's count) and shard 1 (200); its own shard 3 live. */
  assert_int_equal(others[1], 300);
  redisContext *rc = sync_client();
  redisReply *r = redisCommand(rc, "HGET " PREFIX "gw:%d:guilds 0", COUNT);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_string_equal(r->str, "100");
  freeReplyObject(r);
  redisFree(rc);
  destroy(a);
  destroy(b);
}

/* A claim withdrawn before its answer is never called back; freeing with
 * a claim and a flush pending calls neither. */
static void test_cancel_and_free(void **state) {
  reset();
  souk__handoff_t *a = make(0, g_url, false);
  souk__handoff_claim(a, 0, claim_cb, (void *)0);
  souk__handoff_cancel(a, 0);
  run_for(300);
  assert_false(claims[0][0].answered);
  /* The claim itself went to Redis: a's writes are accepted. */
  souk__handoff_save(a, 0, "sess-f", "", 4);
  want_saved_shard = 0, want_seq = 4;
  must(run_until(saved_reached, 3000));
  assert_string_equal(read_saved(0).url, "");
  souk__handoff_claim(a, 1, claim_cb, (void *)0);
  flushed = false;
  souk__handoff_flush(a, 3000, flushed_cb, NULL);
  souk__handoff_free(a);
  run_for(200);
  assert_false(claims[0][1].answered);
  assert_false(flushed);
}

static void test_bad_args(void **state) {
  souk__handoff_t *h = NULL;
  souk__handoff_conf_t c = {.url = g_url, .shard_count = 0};
  assert_int_equal(souk__handoff_new(&c, &h), SOUK_EINVAL);
  c.shard_count = 1;
  c.url = NULL;
  assert_int_equal(souk__handoff_new(&c, &h), SOUK_EINVAL);
  c.url = "http://x";
  assert_int_equal(souk__handoff_new(&c, &h), SOUK_ECONFIG);
  assert_null(h);
  c.url = g_url;
  assert_int_equal(souk__handoff_new(&c, &h), 0);
  assert_int_equal(souk__handoff_claim(h, 0, NULL, NULL), SOUK_EINVAL);
  destroy(h);
}

/* Every test starts with a running, empty server. */
static int test_setup(void **state) { return redis_fresh(); }

/* ---- guild records ------------------------------------------------------------ */

/* Guild k of shard 1 (of COUNT): its id by Discord's formula, and the
 * version of its state in the "cache" (0: the bot left it). */
#define NG 250
#define GID(k) ((uint64_t)((k)*COUNT + 1) << 22)
static int gver[NG];
static int restored_ver[NG];
static int restored_n, restore_bad;

static int gindex(uint64_t id) { return (int)((id >> 22) / COUNT); }

/* A record with a NUL inside: records are binary. */
static void *record_cb(void *ud, uint64_t id, size_t *len) {
  int k = gindex(id);
  assert_true(k < NG && (id >> 22) % COUNT == 1);
  if (!gver[k]) return NULL;
  char *r = souk_malloc(32);
  int n = snprintf(r, 32, "g%dv%d", k, gver[k]);
  r[n] = '\0';
  r[n + 1] = 'x';
  *len = (size_t)n + 2;
  return r;
}

/* Refuses guild refuse_k's record when >= 0 (another build's format). */
static int refuse_k = -1;
static bool restore_cb(void *ud, uint32_t shard, const void *rec, size_t len) {
  int k = -1, v = -1;
  assert_int_equal(shard, 1);
  if (len < 3 || ((const char *)rec)[len - 1] != 'x' || ((const char *)rec)[len - 2] != '\0' ||
      sscanf(rec, "g%dv%d", &k, &v) != 2 || k < 0 || k >= NG) {
    restore_bad++;
    return false;
  }
  if (k == refuse_k) return false;
  restored_ver[k] = v;
  restored_n++;
  return true;
}

static souk__handoff_t *make_g(int inst) {
  mk_record = record_cb;
  mk_restore = restore_cb;
  souk__handoff_t *h = make(inst, g_url, false);
  mk_record = NULL;
  mk_restore = NULL;
  return h;
}

static long long guilds_hlen(void) {
  redisContext *rc = sync_client();
  assert_non_null(rc);
  redisReply *r = redisCommand(rc, "HLEN " PREFIX "gw:%d:1:guilds", COUNT);
  long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  if (r) freeReplyObject(r);
  redisFree(rc);
  return n;
}

/* Whether every guild record is in Redis when the session's seq is: read at
 * the first moment seq 2 shows, all NG must already be there. */
static long long hlen_at_seq;
static bool seq2_with_records(void) {
  if (read_saved(1).seq < 2) return false;
  hlen_at_seq = guilds_hlen();
  return true;
}

static bool sess_b_at_2(void) {
  saved_t z = read_saved(1);
  return strcmp(z.sid, "sess-b") == 0 && z.seq == 2;
}

/* Process a runs shard 1 from a READY: the guilds' records go to Redis
 * with the session (more than one write holds: the seq goes with the
 * last); a guild that changes is rewritten, one the bot left is deleted;
 * process b claims the shard and is handed exactly those records before
 * its claim is answered; a new session on b starts the records again; a
 * hash not marked complete hands nothing on. */
static void test_guild_records_move_with_the_session(void **state) {
  reset();
  memset(gver, 0, sizeof gver);
  memset(restored_ver, 0, sizeof restored_ver);
  restored_n = restore_bad = 0;
  souk__handoff_t *a = make_g(0);
  souk__handoff_claim(a, 1, claim_cb, (void *)0);
  want_inst = 0, want_shard = 1;
  must(run_until(claim_answered, 3000));
  assert_false(souk__handoff_guilds_handed(a, 1));
  /* READY (seq 1), then a GUILD_CREATE per guild (one event: seq 2). */
  souk__handoff_save(a, 1, "sess-a", "ws://x/resume", 1);
  assert_true(souk__handoff_guilds_handed(a, 1)); /* a new session: known from here */
  for (int k = 0; k < NG; k++) {
    gver[k] = 1;
    souk__handoff_guild_changed(a, GID(k));
    souk__handoff_guild_changed(a, GID(k)); /* repeats are written once */
  }
  /* Another shard's guild is not this shard's business. */
  souk__handoff_guild_changed(a, (uint64_t)2 << 22);
  souk__handoff_save(a, 1, "sess-a", "ws://x/resume", 2);
  must(run_until(seq2_with_records, 3000));
  assert_int_equal(hlen_at_seq, NG + 1); /* and the v marker */
  /* The bot leaves guild 3, guild 4 changes; then the drain. */
  gver[3] = 0;
  souk__handoff_guild_changed(a, GID(3));
  gver[4] = 2;
  souk__handoff_guild_changed(a, GID(4));
  souk__handoff_save(a, 1, "sess-a", "ws://x/resume", 3);
  flushed = false;
  souk__handoff_flush(a, 3000, flushed_cb, NULL);
  must(run_until(is_flushed, 4000));
  assert_int_equal(read_saved(1).seq, 3);
  souk__handoff_stats_t st;
  souk__handoff_stats(a, &st);
  assert_int_equal(st.guilds_written, NG + 2);
  destroy(a);

  souk__handoff_t *b = make_g(1);
  souk__handoff_claim(b, 1, claim_cb, (void *)1);
  want_inst = 1;
  must(run_until(claim_answered, 3000));
  assert_true(claims[1][1].found);
  assert_int_equal(claims[1][1].seq, 3);
  assert_true(souk__handoff_guilds_handed(b, 1));
  assert_int_equal(restore_bad, 0);
  assert_int_equal(restored_n, NG - 1);
  for (int k = 0; k < NG; k++)
    assert_int_equal(restored_ver[k], k == 3 ? 0 : k == 4 ? 2 : 1);
  souk__handoff_stats(b, &st);
  assert_int_equal(st.guilds_restored, NG - 1);
  /* b resumes the same session: its saves keep the records. */
  souk__handoff_save(b, 1, "sess-a", "ws://x/resume", 4);
  want_saved_shard = 1, want_seq = 4;
  must(run_until(saved_reached, 3000));
  assert_int_equal(guilds_hlen(), NG);
  /* The session ends; a READY gives a new one, whose GUILD_CREATEs bring
   * the guilds again (here just one): the old records are dropped. */
  souk__handoff_save(b, 1, "sess-b", "ws://x/resume", 1);
  souk__handoff_guild_changed(b, GID(7));
  souk__handoff_save(b, 1, "sess-b", "ws://x/resume", 2);
  must(run_until(sess_b_at_2, 3000));
  assert_int_equal(guilds_hlen(), 2);
  destroy(b);

  /* A record that cannot be put back: the shard's guilds count as not
   * handed on. */
  memset(claims, 0, sizeof claims);
  restored_n = 0;
  refuse_k = 7;
  souk__handoff_t *r7 = make_g(1);
  souk__handoff_claim(r7, 1, claim_cb, (void *)1);
  want_inst = 1;
  must(run_until(claim_answered, 3000));
  assert_true(claims[1][1].found);
  assert_false(souk__handoff_guilds_handed(r7, 1));
  refuse_k = -1;
  destroy(r7);

  /* A hash without the marker (an older version wrote it, or its reset
   * never got through) hands nothing on: the guilds stay unknown. */
  redisContext *rc = sync_client();
  redisReply *r = redisCommand(rc, "HDEL " PREFIX "gw:%d:1:guilds v", COUNT);
  freeReplyObject(r);
  redisFree(rc);
  memset(claims, 0, sizeof claims);
  restored_n = 0;
  log_reset();
  souk__handoff_t *c = make_g(0);
  souk__handoff_claim(c, 1, claim_cb, (void *)0);
  want_inst = 0;
  must(run_until(claim_answered, 3000));
  assert_true(claims[0][1].found);
  assert_false(souk__handoff_guilds_handed(c, 1));
  assert_int_equal(restored_n, 0);
  assert_int_equal(log_count("its guilds were not handed on"), 1);
  destroy(c);
}

int main(void) {
  if (access(redis_bin(), X_OK) != 0) {
    fprintf(stderr, "SKIP discord/handoff: %s not found; the session hand-off was not tested\n",
            redis_bin());
    return 0;
  }
  atexit(redis_stop);
  signal(SIGPIPE, SIG_IGN);
  souk_alloc_init();
  if (logcap_open() != 0) return 1;
  redis_pick_port();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_claim_save_and_take_over, test_setup),
      cmocka_unit_test_setup(test_writes_coalesce_and_flush, test_setup),
      cmocka_unit_test_setup(test_unreachable_then_up, test_setup),
      cmocka_unit_test_setup(test_redis_restart_writes_again, test_setup),
      cmocka_unit_test_setup(test_noscript_reloads, test_setup),
      cmocka_unit_test_setup(test_guild_counts, test_setup),
      cmocka_unit_test_setup(test_guild_counts_unknown_kept, test_setup),
      cmocka_unit_test_setup(test_cancel_and_free, test_setup),
      cmocka_unit_test_setup(test_bad_args, test_setup),
      cmocka_unit_test_setup(test_guild_records_move_with_the_session, test_setup),
  };
  int failed = cmocka_run_group_tests_name("discord/handoff", tests, NULL, NULL);
  redis_stop();
  souk_loop_close();
  souk_log_set_fd(2);
  fclose(g_log);
  return failed ? 1 : 0;
}
