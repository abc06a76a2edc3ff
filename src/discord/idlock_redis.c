/* Identify slots through Redis; see idlock_redis.h.
 *
 * The front end is the one of discord/idlock.c: per bucket a FIFO of
 * waiters and a "granted, not yet released" flag, and one zero-delay or
 * deadline timer ("kick") that decides what can happen next.  What differs
 * is who says a bucket is free: while Redis is up, a SET NX PX on the
 * bucket's key (pipelined with a PTTL of the same key, so a refusal costs
 * no second round trip); while it is down, this process's own record of
 * its last grant, exactly as the in-process backend keeps it.
 *
 * The connection is a link of the cache layer's (cache/redisconn.h), the
 * same kind the cache drives: it resolves, connects, shakes hands, gives
 * up on a connect or a reply slower than IDR_TIMEOUT_MS, and reconnects
 * with backoff.  It is a connection of its own rather than the cache's:
 * the cache hides which backend answered, and a slot must never be taken
 * from the cache's memory fallback by mistake.
 *
 * The bot's session starts per hour live in <prefix>identify:starts:<hour>
 * (hours of the Unix clock), added to with INCRBY and expiring a little
 * after they leave the day; MGET of the last SOUK_IDL_HOURS of them gives
 * the record.  starts() never waits for Redis: it answers from the last
 * MGET plus this process's starts not yet added, never below what this
 * process alone has started, and asks again in the background.
 *
 * release() leaves the key alone.  The key was set when its slot was
 * granted, and the shards send the IDENTIFY inside the grant callback, so
 * the key's expiry already runs from the IDENTIFY; the margin in
 * SOUK_IDENTIFY_INTERVAL_MS covers the reply's trip from Redis.  Touching
 * the key at release could only do harm: a late release may find it
 * expired and taken by another host, and extending or re-setting it then
 * would move that host's slot, breaking the rule that only whoever set a
 * key decides about it.  release() only restarts this process's own
 * spacing, which matters while Redis is down. */
#include "discord/idlock_redis.h"

#include "cache/redisconn.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define IDR_LOG            "identify"
#define IDR_TIMEOUT_MS     2000  /* a connect or reply slower than this: Redis is gone */
#define IDR_BACKOFF_MIN_MS 250   /* first reconnect delay, doubling ... */
#define IDR_BACKOFF_MAX_MS 30000 /* ... up to this */
#define IDR_JITTER_MS      25    /* added to a retry after a refused SET */
#define IDR_DAY_TTL_MS     (26 * 3600 * 1000) /* an hour's count outlives the day by an hour */
#define IDR_DAY_STALE_MS   5000  /* starts() asks Redis again when its copy is older */

enum { R_CONNECTING, R_UP, R_DOWN };

typedef struct bucket {
  souk__idl_queue_t q; /* shards waiting for this bucket */
  bool held;           /* granted, release not seen yet */
  bool taken;          /* the SET in flight was refused: the PTTL reply says how long */
  unsigned pending;    /* replies still owed for this bucket (SET, PTTL) */
  uint64_t sent_ms;    /* when they were asked for, for the watchdog */
  uint64_t not_before; /* monotonic ms: neither ask Redis nor grant before */
} bucket_t;

typedef struct idr {
  bucket_t *b;
  uint32_t nb;
  uint32_t interval;
  souk__redis_link_t *link; /* the connection */
  char *prefix;
  char token[128]; /* the value of keys set here: who holds a slot, for operators */
  int state;
  bool settled; /* the first connection attempt has ended, either way */
  bool in_kick, closing;
  uv_timer_t kick;
  /* The session starts of the last day (see the top of this file). */
  souk__idl_day_t seen;   /* the bot's, as the last MGET said */
  souk__idl_day_t own;    /* this process's */
  souk__idl_day_t unsent; /* this process's not yet added in Redis */
  unsigned day_pending;   /* replies owed for INCRBY, PEXPIRE and MGET */
  uint64_t day_sent_ms;   /* when they were asked, for the watchdog */
  uint64_t day_read_ms;   /* when the last MGET was asked; 0: never */
  bool day_reading;       /* an MGET is in flight */
} idr_t;

static void day_sync(idr_t *l, int64_t wall_ms);

static bucket_t *idr_bucket(idr_t *l, uint32_t i) {
  if (i >= l->nb) {
    uint32_t n = i + 1 > l->nb * 2 ? i + 1 : l->nb * 2;
    l->b = souk_reallocarray(l->b, n, sizeof *l->b);
    memset(l->b + l->nb, 0, (n - l->nb) * sizeof *l->b);
    l->nb = n;
  }
  return &l->b[i];
}

/* ---- the front end --------------------------------------------------------- */

static void idr_kick(idr_t *l);
static void kick_cb(uv_timer_t *t) { idr_kick(t->data); }

/* Decide again from the loop: grants never run inside acquire, release or
 * a pass of idr_kick itself. */
static void schedule(idr_t *l) {
  if (!l->in_kick && !l->closing) uv_timer_start(&l->kick, kick_cb, 0, 0);
}

/* The bucket's slot is this process's (Redis said so, or Redis is down and
 * the local spacing allows it): hand it to the oldest waiter.  If that
 * waiter cancelled while Redis was being asked, the slot goes unused; it
 * costs one interval, and deleting the key again would need a script to
 * be safe. */
static void grant(idr_t *l, uint32_t i, uint64_t now) {
  bucket_t *b = &l->b[i];
  b->not_before = now + l->interval;
  souk__identify_grant_cb cb;
  void *ud;
  if (!souk__idl_queue_pop(&b->q, &cb, &ud)) return;
  b->held = true;
  cb(ud);
}

static void ask_redis(idr_t *l, uint32_t i, uint64_t now);

static void idr_kick(idr_t *l) {
  if (l->in_kick || l->closing) return;
  l->in_kick = true;
  for (uint32_t i = 0; i < l->nb; i++) {
    bucket_t *b = &l->b[i];
    uint64_t now = souk_now_ms();
    if (!b->q.head || b->held || b->pending || now < b->not_before) continue;
    if (l->state == R_UP)
      ask_redis(l, i, now);
    else if (l->settled)
      grant(l, i, now);
    /* Otherwise the first connection attempt is still running: its end
     * kicks again. */
  }
  l->in_kick = false;
  if (l->closing) return;
  uint64_t now = souk_now_ms(), next = UINT64_MAX;
  if (l->state == R_UP || l->settled) {
    for (uint32_t i = 0; i < l->nb; i++) {
      bucket_t *b = &l->b[i];
      if (!b->q.head || b->held || b->pending) continue;
      uint64_t at = b->not_before > now ? b->not_before : now;
      if (at < next) next = at;
    }
  }
  if (next == UINT64_MAX)
    uv_timer_stop(&l->kick);
  else
    uv_timer_start(&l->kick, kick_cb, next - now, 0);
}

/* ---- Redis ------------------------------------------------------------------- */

/* Redis is gone (or never came), and the link reconnects by itself:
 * grant from the local record meanwhile. */
static void redis_down(void *ud, const char *why, bool first, bool was_up) {
  idr_t *l = ud;
  if (l->closing) return;
  l->state = R_DOWN;
  l->settled = true;
  if (first) {
    /* During the outage every host spaces its own IDENTIFYs only, so two
     * hosts may IDENTIFY in one bucket within 5 s; Discord answers that
     * with an op 9, and the gateway waits and identifies again.  That is
     * better than no shard connecting while Redis is down. */
    const souk__redis_url_t *u = souk__redis_link_url(l->link);
    SOUK_WARN(IDR_LOG,
              "identify: redis unreachable, spacing IDENTIFYs in this process only "
              "(%s:%d: %s)",
              u->host, u->port, why);
  } else {
    SOUK_DEBUG(IDR_LOG, "identify: redis reconnect failed: %s", why);
  }
  schedule(l);
}

static void redis_up(void *ud, redisAsyncContext *ac, bool back) {
  idr_t *l = ud;
  if (l->closing) return;
  l->state = R_UP;
  l->settled = true;
  if (back) {
    SOUK_INFO(IDR_LOG, "identify: redis back, spacing IDENTIFYs through it again");
  } else {
    const souk__redis_url_t *u = souk__redis_link_url(l->link);
    SOUK_INFO(IDR_LOG, "identify: spacing IDENTIFYs through redis (%s:%d db %d)", u->host, u->port,
              u->db);
  }
  /* Starts made while it was down are added now, and the record read. */
  day_sync(l, (int64_t)souk_unix_ms());
  schedule(l);
}

/* One reply of a bucket's SET / PTTL pair; priv is bucket * 2 + (1 for
 * the PTTL). */
static void reply_cb(redisAsyncContext *ac, void *reply, void *priv) {
  idr_t *l = souk__redis_link_owner(ac);
  if (!l) return;
  uint32_t i = (uint32_t)((uintptr_t)priv >> 1);
  bool is_pttl = (uintptr_t)priv & 1;
  bucket_t *b = &l->b[i];
  b->pending--;
  if (l->closing) return;
  redisReply *r = reply;
  if (!r) {
    /* The connection died with the question unanswered; whether the SET
     * took the key is unknown, and the local record decides from now on
     * (if the key is ours, nobody else can take it meanwhile anyway). */
    b->taken = false;
    souk__redis_link_lost(l->link, ac, ac->errstr[0] ? ac->errstr : "connection lost");
    schedule(l);
    return;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    /* A server that refuses (read-only replica, out of memory, ACL) cannot
     * space anything: treat it as unreachable. */
    b->taken = false;
    char why[160];
    snprintf(why, sizeof why, "%s refused: %.*s", is_pttl ? "PTTL" : "SET",
             (int)(r->len > 120 ? 120 : r->len), r->str);
    souk__redis_link_drop(l->link, ac, why);
    schedule(l);
    return;
  }
  uint64_t now = souk_now_ms();
  if (!is_pttl) {
    /* "OK": the key is ours and so is the slot.  nil: someone holds it. */
    b->taken = r->type != REDIS_REPLY_STATUS;
    if (!b->taken) {
      grant(l, i, now);
    } else if (!b->pending) {
      b->taken = false;
      b->not_before = now + l->interval;
      schedule(l);
    }
    return;
  }
  if (b->taken) {
    b->taken = false;
    long long ms = r->type == REDIS_REPLY_INTEGER ? r->integer : -2;
    uint64_t wait = 0;
    if (ms > 0) {
      wait = (uint64_t)ms;
    } else if (ms == -1) {
      /* A key without expiry was not set by souk: it would hold the bucket
       * forever, and it is not ours to delete. */
      SOUK_WARN(IDR_LOG, "identify: %sidentify:%" PRIu32 " has no expiry; delete it", l->prefix, i);
      wait = l->interval;
    }
    /* -2: the key expired between the SET and the PTTL; ask again now. */
    b->not_before = now + wait + 1 + (uint64_t)(souk_rand01() * IDR_JITTER_MS);
  }
  schedule(l);
}

static void ask_redis(idr_t *l, uint32_t i, uint64_t now) {
  bucket_t *b = &l->b[i];
  size_t ksize = strlen(l->prefix) + sizeof "identify:4294967295";
  char *key = souk_malloc(ksize), px[24];
  int klen = snprintf(key, ksize, "%sidentify:%" PRIu32, l->prefix, i);
  int pxlen = snprintf(px, sizeof px, "%" PRIu32, l->interval);
  const char *set_argv[] = {"SET", key, l->token, "NX", "PX", px};
  size_t set_lens[] = {3, (size_t)klen, strlen(l->token), 2, 2, (size_t)pxlen};
  const char *pttl_argv[] = {"PTTL", key};
  size_t pttl_lens[] = {4, (size_t)klen};
  redisAsyncContext *ac = souk__redis_link_ac(l->link);
  if (redisAsyncCommandArgv(ac, reply_cb, (void *)((uintptr_t)i << 1), 6, set_argv, set_lens) !=
      REDIS_OK) {
    /* hiredis refuses commands only while the context is going away. */
    souk_free(key);
    souk__redis_link_drop(l->link, ac, "cannot send SET");
    return;
  }
  b->pending++;
  b->sent_ms = now;
  /* Should the PTTL not go out, a refused SET waits a whole interval. */
  if (redisAsyncCommandArgv(ac, reply_cb, (void *)(((uintptr_t)i << 1) | 1), 2, pttl_argv,
                            pttl_lens) == REDIS_OK)
    b->pending++;
  /* hiredis has copied the arguments into its output buffer. */
  souk_free(key);
}

/* ---- the day's session starts ------------------------------------------------ */

static char *day_key(const idr_t *l, int64_t hour, int *len) {
  size_t ksize = strlen(l->prefix) + sizeof "identify:starts:-9223372036854775808";
  char *key = souk_malloc(ksize);
  *len = snprintf(key, ksize, "%sidentify:starts:%" PRId64, l->prefix, hour);
  return key;
}

/* The reply of an INCRBY (priv: hour << 24 | count) or of its PEXPIRE
 * (priv 0). */
static void day_incr_cb(redisAsyncContext *ac, void *reply, void *priv) {
  idr_t *l = souk__redis_link_owner(ac);
  if (!l) return;
  l->day_pending--;
  if (l->closing || !priv) return;
  redisReply *r = reply;
  if (!r || r->type != REDIS_REPLY_INTEGER) {
    /* Whether Redis added it is unknown: count it again later, since a
     * record too high only makes souk wait, and one too low could let the
     * bot go over Discord's limit. */
    uintptr_t v = (uintptr_t)priv;
    souk__idl_day_add(&l->unsent, (int64_t)(v >> 24), (uint32_t)(v & 0xffffff));
    if (!r) souk__redis_link_lost(l->link, ac, ac->errstr[0] ? ac->errstr : "connection lost");
  }
}

/* The MGET of the last SOUK_IDL_HOURS hours (priv: the newest hour). */
static void day_mget_cb(redisAsyncContext *ac, void *reply, void *priv) {
  idr_t *l = souk__redis_link_owner(ac);
  if (!l) return;
  l->day_pending--;
  l->day_reading = false;
  if (l->closing) return;
  redisReply *r = reply;
  if (!r) {
    souk__redis_link_lost(l->link, ac, ac->errstr[0] ? ac->errstr : "connection lost");
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != SOUK_IDL_HOURS) return;
  int64_t h = (int64_t)(uintptr_t)priv;
  souk__idl_day_t d;
  memset(&d, 0, sizeof d);
  for (int i = 0; i < SOUK_IDL_HOURS; i++) {
    redisReply *e = r->element[i];
    long long n = 0;
    if (e->type == REDIS_REPLY_STRING) n = strtoll(e->str, NULL, 10);
    if (e->type == REDIS_REPLY_INTEGER) n = e->integer;
    if (n > 0) souk__idl_day_add(&d, h - i, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
  }
  l->seen = d;
}

/* Add the starts not yet added, then read the record again. */
static void day_sync(idr_t *l, int64_t wall_ms) {
  if (l->state != R_UP || l->closing) return;
  redisAsyncContext *ac = souk__redis_link_ac(l->link);
  if (!ac) return;
  uint64_t now = souk_now_ms();
  char ttl[24];
  int ttl_len = snprintf(ttl, sizeof ttl, "%d", IDR_DAY_TTL_MS);
  for (int i = 0; i < SOUK_IDL_HOURS; i++) {
    uint32_t n = l->unsent.n[i];
    if (!n) continue;
    int64_t hour = l->unsent.hour[i];
    l->unsent.n[i] = 0;
    int klen;
    char *key = day_key(l, hour, &klen);
    char num[16];
    int nlen = snprintf(num, sizeof num, "%" PRIu32, n);
    const char *incr[] = {"INCRBY", key, num};
    size_t incr_lens[] = {6, (size_t)klen, (size_t)nlen};
    const char *exp[] = {"PEXPIRE", key, ttl};
    size_t exp_lens[] = {7, (size_t)klen, (size_t)ttl_len};
    void *priv = (void *)(((uintptr_t)hour << 24) | (n & 0xffffff));
    if (redisAsyncCommandArgv(ac, day_incr_cb, priv, 3, incr, incr_lens) == REDIS_OK) {
      l->day_pending++;
      if (redisAsyncCommandArgv(ac, day_incr_cb, NULL, 3, exp, exp_lens) == REDIS_OK)
        l->day_pending++;
    } else {
      souk__idl_day_add(&l->unsent, hour, n);
    }
    souk_free(key);
    l->day_sent_ms = now;
  }
  if (l->day_reading) return;
  int64_t h = wall_ms / SOUK_IDL_HOUR_MS;
  const char *argv[1 + SOUK_IDL_HOURS];
  size_t lens[1 + SOUK_IDL_HOURS];
  char *keys[SOUK_IDL_HOURS];
  argv[0] = "MGET";
  lens[0] = 4;
  for (int i = 0; i < SOUK_IDL_HOURS; i++) {
    int klen;
    keys[i] = day_key(l, h - i, &klen);
    argv[1 + i] = keys[i];
    lens[1 + i] = (size_t)klen;
  }
  if (redisAsyncCommandArgv(ac, day_mget_cb, (void *)(uintptr_t)h, 1 + SOUK_IDL_HOURS, argv, lens) ==
      REDIS_OK) {
    l->day_pending++;
    l->day_reading = true;
    l->day_read_ms = now;
    l->day_sent_ms = now;
  }
  for (int i = 0; i < SOUK_IDL_HOURS; i++)
    souk_free(keys[i]);
}

static void idr_free(idr_t *l) {
  souk_free(l->b);
  souk_free(l->prefix);
  souk_free(l);
}

/* When the oldest reply still owed was asked: the link gives up on a
 * connection that stopped answering, so a stalled server cannot hold
 * every shard back; hiredis then calls the pending replies with NULL, and
 * the local record takes over. */
static uint64_t redis_oldest(void *ud) {
  idr_t *l = ud;
  uint64_t since = UINT64_MAX;
  for (uint32_t i = 0; i < l->nb; i++)
    if (l->b[i].pending && l->b[i].sent_ms < since) since = l->b[i].sent_ms;
  if (l->day_pending && l->day_sent_ms < since) since = l->day_sent_ms;
  return since;
}

/* ---- ops ----------------------------------------------------------------------- */

static int idr_acquire(void *self, uint32_t bucket, souk__identify_grant_cb cb, void *ud) {
  idr_t *l = self;
  if (!cb) return SOUK_EINVAL;
  if (l->closing) return SOUK_ESTOPPED;
  bucket_t *b = idr_bucket(l, bucket);
  souk__idl_queue_push(&b->q, cb, ud);
  schedule(l);
  return 0;
}

static void idr_cancel(void *self, uint32_t bucket, souk__identify_grant_cb cb, void *ud) {
  idr_t *l = self;
  if (bucket >= l->nb) return;
  souk__idl_queue_remove(&l->b[bucket].q, cb, ud);
}

/* The key stays as it is (see the top of this file); only the local
 * spacing restarts from the IDENTIFY, as the in-process backend's does. */
static void idr_release(void *self, uint32_t bucket) {
  idr_t *l = self;
  bucket_t *b = idr_bucket(l, bucket);
  b->held = false;
  uint64_t at = souk_now_ms() + l->interval;
  if (at > b->not_before) b->not_before = at;
  schedule(l);
}

static void kick_closed(uv_handle_t *h) { idr_free(h->data); }

static void idr_destroy(void *self) {
  idr_t *l = self;
  if (!l || l->closing) return;
  l->closing = true;
  /* Calls every pending reply with NULL; they find no owner and return. */
  souk__redis_link_free(l->link);
  l->link = NULL;
  for (uint32_t i = 0; i < l->nb; i++) {
    souk__idl_queue_clear(&l->b[i].q);
  }
  uv_close((uv_handle_t *)&l->kick, kick_closed);
}

static void idr_count_start(void *self, int64_t wall_ms) {
  idr_t *l = self;
  int64_t hour = wall_ms / SOUK_IDL_HOUR_MS;
  souk__idl_day_add(&l->own, hour, 1);
  souk__idl_day_add(&l->unsent, hour, 1);
  day_sync(l, wall_ms);
}

static void idr_starts(void *self, int64_t wall_ms, uint32_t counts[SOUK_IDL_HOURS]) {
  idr_t *l = self;
  uint32_t seen[SOUK_IDL_HOURS], own[SOUK_IDL_HOURS], unsent[SOUK_IDL_HOURS];
  souk__idl_day_counts(&l->seen, wall_ms, seen);
  souk__idl_day_counts(&l->own, wall_ms, own);
  souk__idl_day_counts(&l->unsent, wall_ms, unsent);
  for (int i = 0; i < SOUK_IDL_HOURS; i++) {
    uint32_t shared = seen[i] + unsent[i];
    counts[i] = shared > own[i] ? shared : own[i];
  }
  if (!l->day_read_ms || souk_now_ms() - l->day_read_ms >= IDR_DAY_STALE_MS) day_sync(l, wall_ms);
}

static const souk__identify_lock_ops_t idr_ops = {idr_acquire, idr_cancel,      idr_release,
                                                  idr_destroy, idr_count_start, idr_starts};

int souk__identify_lock_redis(const char *url, const char *key_prefix, uint32_t interval_ms,
                             souk__identify_lock_t *out) {
  if (!url || !out) return SOUK_EINVAL;
  souk__redis_url_t u = {0};
  int rc = souk__redis_url_parse(url, &u);
  souk__redis_url_free(&u);
  if (rc) {
    SOUK_ERROR(IDR_LOG, "identify: expected redis://[:password@]host[:port][/db] as cache.url");
    return rc;
  }
  idr_t *l = souk_calloc(1, sizeof *l);
  l->interval = interval_ms ? interval_ms : SOUK_IDENTIFY_INTERVAL_MS;
  l->prefix = souk_strdup(key_prefix ? key_prefix : "");
  /* Host, process and a random part: two processes never share a token,
   * and an operator looking at a key sees who took the slot. */
  char host[64] = "";
  if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "unknown");
  snprintf(l->token, sizeof l->token, "%s:%ld:%016" PRIx64, host, (long)getpid(), souk_rand64());
  uv_timer_init(souk_loop(), &l->kick);
  l->kick.data = l;
  l->state = R_CONNECTING;
  souk__redis_link_conf_t lc = {.url = url,
                                .backoff_min_ms = IDR_BACKOFF_MIN_MS,
                                .backoff_max_ms = IDR_BACKOFF_MAX_MS,
                                .timeout_ms = IDR_TIMEOUT_MS,
                                .up = redis_up,
                                .down = redis_down,
                                .oldest = redis_oldest,
                                .ud = l};
  souk__redis_link_new(&lc, &l->link);
  out->ops = &idr_ops;
  out->self = l;
  return 0;
}
