/* Discord's global REST limit counted in Redis; see rlshared.h.
 *
 * Local state: a small queue of reserved slots, as times on the limiter's
 * clock.  wait() answers from it at once (the limiter may not wait for
 * I/O): a slot due now means go, a future slot means wait for it, and no
 * slot means ask Redis for some (if not already asking) and wait a little;
 * the answer wakes the REST client.  take() spends the earliest due slot.
 *
 * Lateness: a slot used late sends its request later than the schedule
 * said, closer to the next process's slot.  Over any second, the requests
 * sent can then be those of the slots granted in that second plus the
 * lateness; slots more than LATE_MS past are dropped, so that is at most
 * (1000 + LATE_MS) / interval + 1 requests, which stays within per_s when
 * LATE_MS is below what the margin leaves: (per_s - 1) x interval - 1000,
 * halved for the network's own jitter. */
#include "discord/rlshared.h"

#include "cache/redisconn.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define COMP           "ratelimit"
#define RLS_TIMEOUT_MS 1000 /* a Redis reply slower than this: fall back */
#define HORIZON_MS     250  /* slots are reserved at most this far ahead */
#define MAX_SLOTS      16   /* slots held at once */
#define ASK_WAIT_MS    50   /* wait() while a reservation is on its way (its reply wakes) */
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 1000 /* reconnects: every process comes back within about this */
/* After Redis comes back, a process keeps to its share as well as to the
 * shared schedule for this long: the others may still be sending their
 * shares until their own reconnect (BACKOFF_MAX_MS plus jitter and the
 * reply timeout apart at most), and the two would add up. */
#define RETURN_GRACE_MS 3000

enum { S_CONNECTING, S_UP, S_DOWN };

typedef struct rls {
  souk__rl_shared_conf_t c;
  char *url, *key;
  souk_clock_t clock;
  souk__redis_link_t *link;
  int state;
  bool settled;
  uint64_t interval_us; /* the cluster's spacing */
  uint64_t late_ms;
  /* Reserved slots, oldest first (a ring). */
  uint64_t slot[MAX_SLOTS];
  unsigned head, count;
  /* A reservation on its way. */
  bool asking;
  uint64_t asked_at; /* monotonic, for the link's watchdog */
  unsigned misses;   /* wait() calls that found no slot since the last ask */
  uint64_t retry_at; /* limiter clock: the schedule is full until then */
  uint64_t take_window, takes_in_window, takes_last_window;
  /* A global 429 not yet told to Redis (until, on the limiter clock). */
  uint64_t block_until;
  bool block_pending;
  /* The fallback: a local GCRA at the share. */
  uint64_t fb_tat_us;
  uint32_t fb_n;
  uint64_t grace_until; /* limiter clock: keep to the share too until then */
  bool warned;
  bool closing;
  souk__rl_shared_stats_t st;
} rls_t;

static uint64_t clk(const rls_t *r) { return r->clock.now_ms(r->clock.ud); }

static void wake(rls_t *r) {
  if (r->c.wake && !r->closing) r->c.wake(r->c.wake_ud);
}

/* ---- the fallback share --------------------------------------------------- */

static uint32_t fallback_n(const rls_t *r) {
  size_t n = r->c.members ? r->c.members() : 1;
  if (r->c.shards) {
    uint32_t mine = 0, total = 0;
    r->c.shards(&mine, &total);
    if (mine && total) {
      size_t est = (total + mine - 1) / mine;
      if (est > n) n = est;
    }
  }
  return n ? (uint32_t)(n > 1000 ? 1000 : n) : 1;
}

static uint64_t fb_interval_us(const rls_t *r) { return r->interval_us * r->fb_n; }

static void fall_back(rls_t *r, const char *why) {
  bool was_shared = r->state == S_UP;
  r->state = S_DOWN;
  r->settled = true;
  r->asking = false;
  r->count = 0;
  r->fb_n = fallback_n(r);
  /* The share starts one of its intervals from now: requests just sent
   * on shared slots are not followed by an immediate one. */
  uint64_t start = clk(r) * 1000 + fb_interval_us(r);
  if (r->fb_tat_us < start) r->fb_tat_us = start;
  if (was_shared || !r->warned) {
    r->st.switches++;
    r->warned = true;
    double share = 1e6 / (double)fb_interval_us(r);
    SOUK_WARN(COMP,
              "rest: redis unreachable (%s): the global limit falls back to this process's share, "
              "%.1f requests/s (%" PRIu32 " - %" PRIu32 " margin, over %" PRIu32 " processes)",
              why, share, r->c.per_s, r->c.margin, r->fb_n);
  }
  wake(r);
}

/* ---- Redis -------------------------------------------------------------------- */

/* Reserve up to ARGV[2] slots ARGV[1] us apart, none further than ARGV[3]
 * us ahead of Redis's now; answers {k, wait_us, offset_us...}: k slots at
 * those offsets from now, or none and how long until one is possible.
 * string.format('%d') keeps every digit of the microsecond time (Lua's
 * own number-to-text keeps 14). */
static const char RESERVE_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
    "if tat < now then tat = now end\n"
    "local interval, n, horizon = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local out = {0, 0}\n"
    "while out[1] < n and tat - now <= horizon do\n"
    "  out[#out + 1] = tat - now\n"
    "  tat = tat + interval\n"
    "  out[1] = out[1] + 1\n"
    "end\n"
    "if out[1] > 0 then\n"
    "  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', 60000)\n"
    "else\n"
    "  out[2] = tat - horizon - now\n"
    "end\n"
    "return out\n";

/* A global 429: nothing goes before ARGV[1] us from Redis's now. */
static const char BLOCK_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
    "local want = now + tonumber(ARGV[1])\n"
    "if tat < want then redis.call('SET', KEYS[1], string.format('%d', want), 'PX', 60000) end\n"
    "return 1\n";

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv);

static int send_eval(rls_t *r, const char *script, const char *a1, const char *a2, const char *a3,
                     void *priv) {
  redisAsyncContext *ac = souk__redis_link_ac(r->link);
  if (!ac) return SOUK_ECONN;
  const char *argv[7] = {"EVAL", script, "1", r->key, a1, a2, a3};
  size_t lens[7];
  int n = a3 ? 7 : a2 ? 6 : 5;
  for (int i = 0; i < n; i++)
    lens[i] = strlen(argv[i]);
  if (redisAsyncCommandArgv(ac, reply_cb, priv, n, argv, lens) != REDIS_OK) {
    souk__redis_link_drop(r->link, ac, "cannot send a command");
    return SOUK_ECONN;
  }
  return 0;
}

/* How many slots to ask for: what the queue showed it wants (misses) and
 * what it used lately, within this process's share of the horizon when
 * others share the bot. */
static unsigned want_slots(rls_t *r) {
  uint64_t per_horizon = (uint64_t)HORIZON_MS * 1000 / r->interval_us + 1;
  size_t n = r->c.members ? r->c.members() : 1;
  uint64_t share = per_horizon / (n ? n : 1);
  if (share < 1) share = 1;
  uint64_t recent = r->takes_last_window > r->takes_in_window ? r->takes_last_window
                                                              : r->takes_in_window;
  /* Takes per HORIZON_MS, from a one-second window. */
  uint64_t want = recent * HORIZON_MS / 1000 + r->misses;
  if (want < 1) want = 1;
  if (want > share) want = share;
  if (want > MAX_SLOTS - r->count) want = MAX_SLOTS - r->count;
  return (unsigned)want;
}

static void ask(rls_t *r) {
  if (r->asking || r->state != S_UP || r->count >= MAX_SLOTS || clk(r) < r->retry_at) return;
  char iv[24], n[16], h[24];
  snprintf(iv, sizeof iv, "%" PRIu64, r->interval_us);
  snprintf(n, sizeof n, "%u", want_slots(r));
  snprintf(h, sizeof h, "%u", HORIZON_MS * 1000u);
  if (send_eval(r, RESERVE_LUA, iv, n, h, (void *)1) == 0) {
    r->asking = true;
    r->asked_at = souk_now_ms();
    r->misses = 0;
  }
}

static void send_block(rls_t *r) {
  uint64_t now = clk(r);
  if (!r->block_pending || r->state != S_UP) return;
  r->block_pending = false;
  if (r->block_until <= now) return;
  char us[24];
  snprintf(us, sizeof us, "%" PRIu64, (r->block_until - now) * 1000);
  send_eval(r, BLOCK_LUA, us, NULL, NULL, (void *)2);
}

static void reserve_reply(rls_t *r, const redisReply *rep) {
  uint64_t now = clk(r);
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2) return;
  long long k = rep->element[0]->integer, wait_us = rep->element[1]->integer;
  for (long long i = 0; i < k && 2 + (size_t)i < rep->elements && r->count < MAX_SLOTS; i++) {
    long long off = rep->element[2 + i]->integer;
    /* Round up: a slot is never used before Redis's schedule says. */
    uint64_t at = now + (uint64_t)((off + 999) / 1000);
    r->slot[(r->head + r->count) % MAX_SLOTS] = at;
    r->count++;
    r->st.reserved++;
  }
  if (k == 0) {
    /* The schedule is full for the horizon (other processes reserved
     * it): ask again when it opens, with a little jitter so the waiting
     * processes do not all ask in the same millisecond. */
    r->retry_at = now + (uint64_t)((wait_us > 0 ? wait_us : 0) + 999) / 1000 + 1 +
                  (uint64_t)(souk_rand01() * 3);
  }
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv) {
  rls_t *r = souk__redis_link_owner(ac);
  if (!r) return;
  bool reserve = (uintptr_t)priv == 1;
  if (reserve) r->asking = false;
  redisReply *rep = reply;
  if (!rep) {
    souk__redis_link_lost(r->link, ac, ac->errstr[0] ? ac->errstr : "connection lost");
    return;
  }
  if (rep->type == REDIS_REPLY_ERROR) {
    char why[200];
    snprintf(why, sizeof why, "refused: %.*s", (int)(rep->len > 160 ? 160 : rep->len), rep->str);
    souk__redis_link_drop(r->link, ac, why);
    return;
  }
  if (reserve) {
    reserve_reply(r, rep);
    wake(r);
  }
}

static uint64_t oldest(void *ud) {
  rls_t *r = ud;
  return r->asking ? r->asked_at : UINT64_MAX;
}

static void link_up(void *ud, redisAsyncContext *ac, bool back) {
  rls_t *r = ud;
  (void)ac;
  bool was_down = r->state == S_DOWN;
  r->state = S_UP;
  r->settled = true;
  if (was_down) r->grace_until = clk(r) + RETURN_GRACE_MS;
  if (back || was_down)
    SOUK_INFO(COMP, "rest: redis back: the global limit is counted with the other processes "
                    "again");
  else
    SOUK_INFO(COMP, "rest: the global limit (%" PRIu32 "/s less %" PRIu32
                    ") is counted in redis, shared with the other processes",
              r->c.per_s, r->c.margin);
  send_block(r);
  wake(r);
}

static void link_down(void *ud, const char *why, bool first, bool was_up) {
  rls_t *r = ud;
  (void)first;
  (void)was_up;
  if (r->closing) return;
  fall_back(r, why);
}

/* ---- the ops ---------------------------------------------------------------------- */

/* Count a take for the demand estimate, in one-second windows. */
static void count_take(rls_t *r, uint64_t now) {
  uint64_t w = now / 1000;
  if (w != r->take_window) {
    r->takes_last_window = w == r->take_window + 1 ? r->takes_in_window : 0;
    r->takes_in_window = 0;
    r->take_window = w;
  }
  r->takes_in_window++;
}

/* Drop the slots too late to use. */
static void drop_late(rls_t *r, uint64_t now) {
  while (r->count && r->slot[r->head] + r->late_ms < now) {
    r->head = (r->head + 1) % MAX_SLOTS;
    r->count--;
    r->st.dropped++;
  }
}

/* The local share: a GCRA at (per_s - margin) / N. */
static uint64_t fb_wait(const rls_t *r, uint64_t now) {
  uint64_t n = now * 1000;
  return r->fb_tat_us <= n ? 0 : (r->fb_tat_us - n + 999) / 1000;
}

static void fb_take(rls_t *r, uint64_t now) {
  uint64_t n = now * 1000;
  r->fb_tat_us = (r->fb_tat_us > n ? r->fb_tat_us : n) + fb_interval_us(r);
}

static uint64_t shared_wait(rls_t *r, uint64_t now);

static uint64_t rls_wait(void *self, uint64_t now) {
  rls_t *r = self;
  if (r->state == S_DOWN) return fb_wait(r, now);
  if (!r->settled) return ASK_WAIT_MS; /* the first connection attempt wakes us */
  uint64_t w = shared_wait(r, now);
  if (now < r->grace_until) {
    uint64_t f = fb_wait(r, now);
    if (f > w) w = f;
  }
  return w;
}

static uint64_t shared_wait(rls_t *r, uint64_t now) {
  drop_late(r, now);
  if (r->count) {
    uint64_t at = r->slot[r->head];
    if (r->count < 2) ask(r); /* keep one ahead while requests flow */
    return at <= now ? 0 : at - now;
  }
  r->misses++;
  if (now < r->retry_at) return r->retry_at - now;
  ask(r);
  return ASK_WAIT_MS;
}

static void rls_take(void *self, uint64_t now) {
  rls_t *r = self;
  count_take(r, now);
  if (r->state == S_DOWN || now < r->grace_until) fb_take(r, now);
  if (r->state == S_DOWN) return;
  drop_late(r, now);
  if (r->count && r->slot[r->head] <= now) {
    r->head = (r->head + 1) % MAX_SLOTS;
    r->count--;
    r->st.used++;
  }
  if (r->count < 2) ask(r);
}

static void rls_blocked(void *self, uint64_t until_ms) {
  rls_t *r = self;
  if (until_ms > r->block_until) r->block_until = until_ms;
  r->block_pending = true;
  /* The slots held were planned before the 429: they are too early now. */
  r->count = 0;
  send_block(r);
}

static void rls_destroy(void *self) {
  rls_t *r = self;
  if (!r) return;
  r->closing = true;
  /* Pending replies find no owner once the link is being freed. */
  souk__redis_link_free(r->link);
  souk_free(r->url);
  souk_free(r->key);
  souk_free(r);
}

static const souk__rl_global_ops_t rls_ops = {
    .wait = rls_wait, .take = rls_take, .blocked = rls_blocked, .destroy = rls_destroy};

int souk__rl_global_redis(const souk__rl_shared_conf_t *c, souk__rl_global_t *out) {
  if (!c || !out || !c->url || !c->per_s || c->margin >= c->per_s) return SOUK_EINVAL;
  rls_t *r = souk_calloc(1, sizeof *r);
  r->c = *c;
  r->clock = c->clock ? *c->clock : souk_clock_mono;
  r->url = souk_strdup(c->url);
  souk_buf_t k;
  souk_buf_init(&k);
  souk_buf_printf(&k, "%scluster:rest", c->key_prefix ? c->key_prefix : "");
  r->key = souk_buf_steal(&k);
  r->c.url = r->url;
  r->c.key_prefix = NULL;
  r->interval_us = 1000000 / (c->per_s - c->margin);
  if (!r->interval_us) r->interval_us = 1;
  /* See the top of this file. */
  int64_t room = ((int64_t)c->per_s - 1) * (int64_t)r->interval_us / 1000 - 1000;
  r->late_ms = room > 10 ? (uint64_t)room / 2 : 5;
  if (r->late_ms > 100) r->late_ms = 100;
  r->fb_n = 1;
  r->state = S_CONNECTING;
  souk__redis_link_conf_t lc = {.url = c->url,
                                .backoff_min_ms = BACKOFF_MIN_MS,
                                .backoff_max_ms = BACKOFF_MAX_MS,
                                .timeout_ms = RLS_TIMEOUT_MS,
                                .up = link_up,
                                .down = link_down,
                                .oldest = oldest,
                                .ud = r};
  if (souk__redis_link_new(&lc, &r->link) != 0) {
    souk_free(r->url);
    souk_free(r->key);
    souk_free(r);
    return SOUK_ECONFIG;
  }
  out->ops = &rls_ops;
  out->self = r;
  return 0;
}

bool souk__rl_shared_stats(const souk__rl_global_t *b, souk__rl_shared_stats_t *out) {
  if (!b || b->ops != &rls_ops) return false;
  const rls_t *r = b->self;
  *out = r->st;
  out->shared = r->state == S_UP;
  out->settled = r->settled;
  out->fallback_n = r->state == S_DOWN ? r->fb_n : 0;
  out->per_s = r->state == S_DOWN ? 1e6 / (double)(r->interval_us * r->fb_n)
                                  : 1e6 / (double)r->interval_us;
  return true;
}
