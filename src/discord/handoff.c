/* Shard sessions handed on through Redis; see handoff.h.
 *
 * Both writes that decide something are Lua scripts, loaded with SCRIPT
 * LOAD when the connection comes up and run with EVALSHA, so each is
 * atomic on the server: the claim reads the saved session and takes the
 * shard in one step, and a save writes only while this process is still
 * the shard's owner.  Commands on one connection run in the order sent,
 * so a claim sent before a save is always applied first.  A server that
 * lost the scripts (SCRIPT FLUSH) answers NOSCRIPT: the connection is
 * dropped and the next one loads them again.
 *
 * A repeating tick (100 ms) answers claims Redis did not answer in time,
 * ends a flush at its deadline, and every refresh_ms rewrites sessions
 * that were not written for a quarter of their TTL (a shard without events
 * still keeps its key) and the guild counts. */
#include "discord/handoff.h"

#include "cache/redisconn.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HO_LOG            "handoff"
#define HO_TICK_MS        100
#define HO_BACKOFF_MIN_MS 250
#define HO_BACKOFF_MAX_MS 30000

/* Reads the shard's session and its guilds and makes this process its
 * owner.  KEYS[1] the shard's hash, KEYS[2] its guilds' hash; ARGV: owner,
 * ttl ms, now (Unix ms).  Answers sid, url, seq and the previous owner
 * (each nil when absent), then the guilds' hash as a flat array (empty
 * when there is no session). */
static const char CLAIM_LUA[] =
    "local v = redis.call('HMGET', KEYS[1], 'sid', 'url', 'seq', 'owner')\n"
    "local g = {}\n"
    "if v[1] then g = redis.call('HGETALL', KEYS[2]) end\n"
    "redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'claimed_at', ARGV[3])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[2])\n"
    "return {v[1], v[2], v[3], v[4], g}\n";

/* Writes while ARGV[1] owns the shard (or nobody does: the key expired).
 * KEYS as the claim's.  ARGV: owner, sid, url, seq, ttl ms, now (Unix ms),
 * reset ('1': a new session, the guilds' hash starts again, marked as
 * complete with v=1), session ('1': sid, url and seq are written; '0':
 * only guilds, which are not all written yet), then guild id and record
 * pairs (an empty record: the guild is gone).  Answers 1, or the owner
 * that took the shard. */
static const char SAVE_LUA[] =
    "local o = redis.call('HGET', KEYS[1], 'owner')\n"
    "if o and o ~= ARGV[1] then return o end\n"
    "if ARGV[8] == '1' then\n"
    "  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'sid', ARGV[2], 'url', ARGV[3], "
    "'seq', ARGV[4], 'at', ARGV[6])\n"
    "else\n"
    "  redis.call('HSET', KEYS[1], 'owner', ARGV[1])\n"
    "end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[5])\n"
    "if ARGV[7] == '1' then\n"
    "  redis.call('DEL', KEYS[2])\n"
    "  redis.call('HSET', KEYS[2], 'v', '1')\n"
    "end\n"
    "for i = 9, #ARGV - 1, 2 do\n"
    "  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[2], ARGV[i])\n"
    "  else redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end\n"
    "end\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[5])\n"
    "return 1\n";

/* Guild records per write: a command stays a few hundred KB even at
 * startup, when every guild of the shard changes at once. */
#define HO_GUILDS_PER_WRITE 200

enum { H_CONNECTING, H_LOADING, H_UP, H_DOWN };

/* What a reply answers: the low 3 bits of its privdata (the shard is
 * above them). */
enum { K_LOAD_CLAIM, K_LOAD_SAVE, K_CLAIM, K_SAVE, K_GUILDS_SET, K_GUILDS_GET };
#define PRIV(kind, shard) ((void *)(((uintptr_t)(shard) << 3) | (uintptr_t)(kind)))
#define PRIV_KIND(p)      ((int)((uintptr_t)(p)&7))
#define PRIV_SHARD(p)     ((uint32_t)((uintptr_t)(p) >> 3))

/* One shard this process runs. */
typedef struct ent {
  uint32_t shard;
  souk__handoff_claim_cb cb; /* a claim waiting for its answer */
  void *cb_ud;
  uint64_t claim_deadline;
  bool claim_sent; /* in flight on the current connection */
  bool claimed;    /* Redis names this process the owner, as far as is known */
  bool lost;       /* another process took the shard */
  char *sid, *url; /* the latest session saved */
  uint64_t seq;
  bool have, dirty, inflight;
  bool guilds_unknown; /* local_guilds did not know them at the last write */
  uint64_t last_write; /* monotonic ms of the last accepted write */
  /* Guild state.  dg: guilds changed and not written yet (may repeat until
   * compacted); fg: those in the write in flight, put back if it fails. */
  uint64_t *dg, *fg;
  size_t ndg, capdg, nfg;
  bool reset;          /* a new session: the guilds' hash starts again */
  bool reset_inflight; /* the write in flight carries the reset */
  bool handed;         /* the last claim's answer carried the guilds */
} ent_t;

struct souk__handoff {
  souk__handoff_conf_t conf;
  char *prefix, *url;
  souk__redis_link_t *link;
  int state;
  bool settled; /* the first connection attempt has ended, either way */
  bool closing;
  unsigned loads;
  char sha_claim[48], sha_save[48];
  char owner[128];
  ent_t *e;
  size_t n;
  /* When each reply still owed was asked, oldest first (a ring): the link
   * gives up on a server that stopped answering. */
  uint64_t *fifo;
  size_t fcap, fhead, flen;
  uint64_t next_refresh;
  bool guilds_inflight;
  void (*flush_done)(void *ud);
  void *flush_ud;
  uint64_t flush_deadline;
  uv_timer_t tick;
  int open; /* handles to close before the memory goes */
  souk__handoff_stats_t st;
};

/* ---- helpers ------------------------------------------------------------------ */

static ent_t *ent_find(souk__handoff_t *h, uint32_t shard) {
  for (size_t i = 0; i < h->n; i++)
    if (h->e[i].shard == shard) return &h->e[i];
  return NULL;
}

static ent_t *ent_get(souk__handoff_t *h, uint32_t shard) {
  ent_t *e = ent_find(h, shard);
  if (e) return e;
  h->e = souk_reallocarray(h->e, h->n + 1, sizeof *h->e);
  e = &h->e[h->n++];
  memset(e, 0, sizeof *e);
  e->shard = shard;
  return e;
}

static void fifo_push(souk__handoff_t *h, uint64_t t) {
  if (h->flen == h->fcap) {
    size_t cap = h->fcap ? h->fcap * 2 : 16;
    uint64_t *f = souk_calloc(cap, sizeof *f);
    for (size_t i = 0; i < h->flen; i++)
      f[i] = h->fifo[(h->fhead + i) % h->fcap];
    souk_free(h->fifo);
    h->fifo = f;
    h->fcap = cap;
    h->fhead = 0;
  }
  h->fifo[(h->fhead + h->flen) % h->fcap] = t;
  h->flen++;
}

static void fifo_pop(souk__handoff_t *h) {
  if (!h->flen) return;
  h->fhead = (h->fhead + 1) % h->fcap;
  h->flen--;
}

static uint64_t redis_oldest(void *ud) {
  souk__handoff_t *h = ud;
  return h->flen ? h->fifo[h->fhead] : UINT64_MAX;
}

static int key_of(const souk__handoff_t *h, char *buf, size_t cap, const char *what) {
  return snprintf(buf, cap, "%sgw:%" PRIu32 ":%s", h->prefix, h->conf.shard_count, what);
}

static int shard_key(const souk__handoff_t *h, uint32_t shard, char *buf, size_t cap) {
  char s[16];
  snprintf(s, sizeof s, "%" PRIu32, shard);
  return key_of(h, buf, cap, s);
}

static int guilds_key(const souk__handoff_t *h, uint32_t shard, char *buf, size_t cap) {
  char s[32];
  snprintf(s, sizeof s, "%" PRIu32 ":guilds", shard);
  return key_of(h, buf, cap, s);
}

static int u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Sort the changed guilds and drop repeats. */
static void dg_compact(ent_t *e) {
  if (e->ndg < 2) return;
  qsort(e->dg, e->ndg, sizeof *e->dg, u64_cmp);
  size_t n = 1;
  for (size_t i = 1; i < e->ndg; i++)
    if (e->dg[i] != e->dg[n - 1]) e->dg[n++] = e->dg[i];
  e->ndg = n;
}

/* Note guild id as changed.  Repeats are dropped when the array is full,
 * before it grows: it never holds more than twice the shard's guilds. */
static void dg_add(ent_t *e, uint64_t id) {
  if (e->ndg == e->capdg) {
    dg_compact(e);
    if (e->ndg * 2 >= e->capdg) {
      e->capdg = e->capdg ? e->capdg * 2 : 16;
      e->dg = souk_reallocarray(e->dg, e->capdg, sizeof *e->dg);
    }
  }
  e->dg[e->ndg++] = id;
}

/* The write in flight failed: its guilds (and its reset) are owed again. */
static void fg_putback(ent_t *e) {
  for (size_t i = 0; i < e->nfg; i++)
    dg_add(e, e->fg[i]);
  souk_free(e->fg);
  e->fg = NULL;
  e->nfg = 0;
  if (e->reset_inflight) e->reset = true;
  e->reset_inflight = false;
}

/* Send one command; false when hiredis refused it (the connection is going
 * away: its teardown reports that). */
static bool send_argv(souk__handoff_t *h, redisCallbackFn *fn, void *priv, int argc,
                      const char **argv, const size_t *lens) {
  redisAsyncContext *ac = souk__redis_link_ac(h->link);
  if (!ac) return false;
  if (redisAsyncCommandArgv(ac, fn, priv, argc, argv, lens) != REDIS_OK) {
    souk__redis_link_drop(h->link, ac, "cannot send a command");
    return false;
  }
  fifo_push(h, souk_now_ms());
  return true;
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv);

/* ---- claims -------------------------------------------------------------------- */

/* Hand a claim its answer (a copy of what the callback needs: it may
 * cancel or claim again). */
static void answer_claim(souk__handoff_t *h, ent_t *e, const char *sid, const char *url,
                         uint64_t seq) {
  souk__handoff_claim_cb cb = e->cb;
  void *ud = e->cb_ud;
  uint32_t shard = e->shard;
  e->cb = NULL;
  e->cb_ud = NULL;
  if (!cb) return;
  h->st.claims++;
  if (sid) h->st.claims_found++;
  cb(ud, shard, sid, url, seq);
}

static void send_claim(souk__handoff_t *h, ent_t *e) {
  if (h->state != H_UP || e->claim_sent || e->claimed || e->lost) return;
  char key[160], gkey[160], ttl[24], now[24];
  int kl = shard_key(h, e->shard, key, sizeof key);
  int gl = guilds_key(h, e->shard, gkey, sizeof gkey);
  int tl = snprintf(ttl, sizeof ttl, "%" PRIu64, h->conf.ttl_ms);
  int nl = snprintf(now, sizeof now, "%" PRIu64, souk_unix_ms());
  const char *argv[] = {"EVALSHA", h->sha_claim, "2", key, gkey, h->owner, ttl, now};
  size_t lens[] = {7,          strlen(h->sha_claim), 1,          (size_t)kl,
                   (size_t)gl, strlen(h->owner),     (size_t)tl, (size_t)nl};
  if (send_argv(h, reply_cb, PRIV(K_CLAIM, e->shard), 8, argv, lens)) e->claim_sent = true;
}

/* A string element of an array reply, or NULL (nil, or not a string). */
static const char *elem_str(const redisReply *r, size_t i) {
  if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return NULL;
  const redisReply *x = r->element[i];
  return x && (x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS) ? x->str : NULL;
}

static void pump(souk__handoff_t *h, ent_t *e);

/* Hand the guild records of a claim's answer (a flat field/value array)
 * to conf.guild_restore, before the shard resumes: the events the RESUME
 * replays then apply on top of them, in order.  Only a hash marked
 * complete (v=1, written with the session's READY) counts: any other
 * (an older version's, or one whose reset never got written) leaves the
 * shard's guilds unknown, as before hand-offs carried them. */
static size_t restore_guilds(souk__handoff_t *h, ent_t *e, const redisReply *g) {
  e->handed = false;
  if (!h->conf.guild_restore || !g || g->type != REDIS_REPLY_ARRAY) return 0;
  bool complete = false;
  for (size_t i = 0; i + 1 < g->elements; i += 2) {
    const char *f = elem_str(g, i), *v = elem_str(g, i + 1);
    if (f && v && strcmp(f, "v") == 0 && strcmp(v, "1") == 0) complete = true;
  }
  if (!complete) return 0;
  size_t n = 0;
  bool all = true;
  for (size_t i = 0; i + 1 < g->elements; i += 2) {
    const redisReply *f = g->element[i], *v = g->element[i + 1];
    if (!f || !v || f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
    if (f->len == 1 && f->str[0] == 'v') continue;
    if (h->conf.guild_restore(h->conf.ud, e->shard, v->str, v->len))
      n++;
    else
      all = false;
  }
  /* One guild missing is enough to count none from here: {guilds} then
   * keeps the count the process before wrote. */
  e->handed = all;
  h->st.guilds_restored += n;
  return n;
}

static void on_claim(souk__handoff_t *h, ent_t *e, const redisReply *r) {
  e->claim_sent = false;
  e->claimed = true;
  const char *sid = elem_str(r, 0), *url = elem_str(r, 1), *seqs = elem_str(r, 2),
             *prev = elem_str(r, 3);
  uint64_t seq = seqs ? strtoull(seqs, NULL, 10) : 0;
  if (e->cb) {
    if (sid && *sid && seq) {
      size_t ng = restore_guilds(h, e, r->elements > 4 ? r->element[4] : NULL);
      if (e->handed)
        SOUK_INFO(HO_LOG,
                  "shard %" PRIu32 ": resuming the session %s handed on at seq %" PRIu64
                  ", with its %zu guilds",
                  e->shard, prev && strcmp(prev, h->owner) ? prev : "this process", seq, ng);
      else
        SOUK_INFO(HO_LOG,
                  "shard %" PRIu32 ": resuming the session %s handed on at seq %" PRIu64
                  " (its guilds were not handed on: known from the next READY)",
                  e->shard, prev && strcmp(prev, h->owner) ? prev : "this process", seq);
      /* Saves of this same session are no new session: the guilds' hash
       * stays. */
      souk_free(e->sid);
      e->sid = souk_strdup(sid);
      answer_claim(h, e, sid, url, seq);
    } else {
      SOUK_INFO(HO_LOG, "shard %" PRIu32 ": no session handed on: identifying", e->shard);
      answer_claim(h, e, NULL, NULL, 0);
    }
  }
  pump(h, e);
}

/* ---- saves ------------------------------------------------------------------------ */

/* Write what is owed: the guilds changed (a batch of them) and, once no
 * changed guild is left behind, the session.  So the sequence number in
 * Redis never runs ahead of the guild records: a process that resumes
 * from it has every guild as of that event or later, and the events
 * replayed after it bring the rest. */
static void pump(souk__handoff_t *h, ent_t *e) {
  if (h->state != H_UP || !e->claimed || e->lost || e->inflight) return;
  bool session = e->dirty && e->have;
  if (!session && !e->reset && !e->ndg) return;
  dg_compact(e);
  size_t k = e->ndg < HO_GUILDS_PER_WRITE ? e->ndg : HO_GUILDS_PER_WRITE;
  bool all = k == e->ndg;
  session = session && all;
  if (!session && !e->reset && !k) return;
  char key[160], gkey[160], seq[24], ttl[24], now[24];
  int kl = shard_key(h, e->shard, key, sizeof key);
  int gl = guilds_key(h, e->shard, gkey, sizeof gkey);
  int sl = snprintf(seq, sizeof seq, "%" PRIu64, e->seq);
  int tl = snprintf(ttl, sizeof ttl, "%" PRIu64, h->conf.ttl_ms);
  int nl = snprintf(now, sizeof now, "%" PRIu64, souk_unix_ms());
  const char *url = e->url ? e->url : "", *sid = e->sid ? e->sid : "";
  size_t argc = 13 + 2 * k;
  const char **argv = souk_calloc(argc, sizeof *argv);
  size_t *lens = souk_calloc(argc, sizeof *lens);
  void **recs = souk_calloc(k ? k : 1, sizeof *recs);
  char(*ids)[24] = souk_calloc(k ? k : 1, sizeof *ids);
  const char *fixed[] = {"EVALSHA",
                         h->sha_save,
                         "2",
                         key,
                         gkey,
                         h->owner,
                         sid,
                         url,
                         seq,
                         ttl,
                         now,
                         e->reset ? "1" : "0",
                         session ? "1" : "0"};
  size_t flens[] = {7,          strlen(h->sha_save), 1,           (size_t)kl,
                    (size_t)gl, strlen(h->owner),    strlen(sid), strlen(url),
                    (size_t)sl, (size_t)tl,          (size_t)nl,  1,
                    1};
  memcpy(argv, fixed, sizeof fixed);
  memcpy(lens, flens, sizeof flens);
  /* The batch is the end of the sorted array: what is left stays sorted. */
  const uint64_t *batch = e->dg + (e->ndg - k);
  for (size_t i = 0; i < k; i++) {
    size_t rl = 0;
    recs[i] = h->conf.guild_record ? h->conf.guild_record(h->conf.ud, batch[i], &rl) : NULL;
    lens[13 + 2 * i] = (size_t)snprintf(ids[i], sizeof ids[i], "%" PRIu64, batch[i]);
    argv[13 + 2 * i] = ids[i];
    argv[14 + 2 * i] = recs[i] ? (const char *)recs[i] : "";
    lens[14 + 2 * i] = recs[i] ? rl : 0;
  }
  bool sent = send_argv(h, reply_cb, PRIV(K_SAVE, e->shard), (int)argc, argv, lens);
  for (size_t i = 0; i < k; i++)
    souk_free(recs[i]);
  souk_free(recs);
  souk_free(ids);
  souk_free(argv);
  souk_free(lens);
  if (!sent) return;
  e->inflight = true;
  if (session) e->dirty = false;
  e->reset_inflight = e->reset;
  e->reset = false;
  souk_free(e->fg);
  e->fg = NULL;
  e->nfg = k;
  if (k) {
    e->fg = souk_calloc(k, sizeof *e->fg);
    memcpy(e->fg, batch, k * sizeof *batch);
  }
  e->ndg -= k;
  h->st.guilds_written += k;
}

static void lose(souk__handoff_t *h, ent_t *e, const char *owner) {
  if (e->lost) return;
  e->lost = true;
  e->dirty = false;
  e->ndg = e->nfg = 0;
  e->reset = e->reset_inflight = false;
  h->st.lost++;
  SOUK_ERROR(HO_LOG,
             "shard %" PRIu32 " was claimed by %s: stopping it here (each shard must be run by "
             "one process: check discord.shards.first/last of every process)",
             e->shard, owner);
  if (h->conf.lost) h->conf.lost(h->conf.ud, e->shard, owner);
}

static void on_save(souk__handoff_t *h, ent_t *e, const redisReply *r) {
  e->inflight = false;
  if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
    souk_free(e->fg);
    e->fg = NULL;
    e->nfg = 0;
    e->reset_inflight = false;
    h->st.writes++;
    e->last_write = souk_now_ms();
    pump(h, e);
    return;
  }
  char owner[128];
  snprintf(owner, sizeof owner, "%.*s",
           r->type == REDIS_REPLY_STRING ? (int)(r->len > 120 ? 120 : r->len) : 7,
           r->type == REDIS_REPLY_STRING ? r->str : "another");
  h->st.write_failures++;
  lose(h, e, owner);
}

/* ---- guild counts ------------------------------------------------------------------ */

static void refresh_guilds(souk__handoff_t *h) {
  if (!h->conf.local_guilds || h->guilds_inflight || h->state != H_UP) return;
  char key[160], ttl[24];
  int kl = key_of(h, key, sizeof key, "guilds");
  int tl = snprintf(ttl, sizeof ttl, "%" PRIu64, h->conf.ttl_ms);
  /* HSET key shard n [shard n ...] for the shards run here. */
  size_t argc = 0, cap = 2 + 2 * h->n;
  const char **argv = souk_calloc(cap, sizeof *argv);
  size_t *lens = souk_calloc(cap, sizeof *lens);
  char(*num)[24] = souk_calloc(2 * h->n + 1, sizeof *num);
  argv[argc] = "HSET";
  lens[argc++] = 4;
  argv[argc] = key;
  lens[argc++] = (size_t)kl;
  for (size_t i = 0; i < h->n; i++) {
    ent_t *e = &h->e[i];
    if (e->lost) continue;
    uint64_t g = h->conf.local_guilds(h->conf.ud, e->shard);
    /* Unknown here: what the process before wrote stays. */
    e->guilds_unknown = g == SOUK_HANDOFF_GUILDS_UNKNOWN;
    if (e->guilds_unknown) continue;
    char *a = num[2 * i], *b = num[2 * i + 1];
    lens[argc] = (size_t)snprintf(a, 24, "%" PRIu32, e->shard);
    argv[argc++] = a;
    lens[argc] = (size_t)snprintf(b, 24, "%" PRIu64, g);
    argv[argc++] = b;
  }
  bool ok = true;
  if (argc > 2) {
    ok = send_argv(h, reply_cb, PRIV(K_GUILDS_SET, 0), (int)argc, argv, lens);
    const char *px[] = {"PEXPIRE", key, ttl};
    size_t pxl[] = {7, (size_t)kl, (size_t)tl};
    if (ok) ok = send_argv(h, reply_cb, PRIV(K_GUILDS_SET, 0), 3, px, pxl);
  }
  souk_free(argv);
  souk_free(lens);
  souk_free(num);
  if (!ok) return;
  const char *ga[] = {"HGETALL", key};
  size_t gl[] = {7, (size_t)kl};
  if (send_argv(h, reply_cb, PRIV(K_GUILDS_GET, 0), 2, ga, gl)) h->guilds_inflight = true;
}

static void on_guilds(souk__handoff_t *h, const redisReply *r) {
  h->guilds_inflight = false;
  if (r->type != REDIS_REPLY_ARRAY) return;
  uint64_t sum = 0;
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    const char *f = elem_str(r, i), *v = elem_str(r, i + 1);
    if (!f || !v) continue;
    uint32_t shard = (uint32_t)strtoul(f, NULL, 10);
    ent_t *e = ent_find(h, shard);
    /* The shards run here count live, from this process's own cache,
     * unless it does not know their guilds. */
    if (e && !e->lost && !e->guilds_unknown) continue;
    sum += strtoull(v, NULL, 10);
  }
  h->st.others_guilds = sum;
  if (h->conf.others_guilds) h->conf.others_guilds(h->conf.ud, sum);
}

/* ---- flush ------------------------------------------------------------------------- */

static bool all_written(const souk__handoff_t *h) {
  if (h->state != H_UP) return true; /* nothing more can be written now */
  for (size_t i = 0; i < h->n; i++) {
    const ent_t *e = &h->e[i];
    if (e->lost) continue;
    if (e->inflight) return false;
    if (((e->dirty && e->have) || e->ndg || e->reset) && (e->claimed || e->claim_sent))
      return false;
  }
  return true;
}

static void flush_check(souk__handoff_t *h, uint64_t now) {
  if (!h->flush_done) return;
  if (!all_written(h) && now < h->flush_deadline) return;
  if (!all_written(h))
    SOUK_WARN(HO_LOG, "redis did not confirm every session write in time; the next process "
                      "may be sent a few events again");
  void (*done)(void *) = h->flush_done;
  void *ud = h->flush_ud;
  h->flush_done = NULL;
  h->flush_ud = NULL;
  uv_unref((uv_handle_t *)&h->tick);
  done(ud);
}

/* ---- replies ------------------------------------------------------------------------- */

static void went_up(souk__handoff_t *h);

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv) {
  souk__handoff_t *h = souk__redis_link_owner(ac);
  if (!h || h->closing) return;
  fifo_pop(h);
  redisReply *r = reply;
  int kind = PRIV_KIND(priv);
  ent_t *e = kind == K_CLAIM || kind == K_SAVE ? ent_find(h, PRIV_SHARD(priv)) : NULL;
  if (!r) {
    /* The connection died with the question unanswered.  A save is
     * written again once Redis is back; whether a claim took is unknown,
     * so it is sent again too. */
    if (kind == K_SAVE && e) {
      e->inflight = false;
      e->dirty = true;
      fg_putback(e);
      h->st.write_failures++;
    }
    if (kind == K_CLAIM && e) e->claim_sent = false;
    if (kind == K_GUILDS_GET) h->guilds_inflight = false;
    souk__redis_link_lost(h->link, ac, ac->errstr[0] ? ac->errstr : "connection lost");
    return;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    /* NOSCRIPT (the scripts were flushed), a read-only replica, an ACL
     * refusal: start again on a new connection, which loads the scripts
     * afresh; meanwhile this counts as Redis down. */
    if (kind == K_SAVE && e) {
      e->inflight = false;
      e->dirty = true;
      fg_putback(e);
      h->st.write_failures++;
    }
    if (kind == K_CLAIM && e) e->claim_sent = false;
    if (kind == K_GUILDS_GET) h->guilds_inflight = false;
    char why[160];
    snprintf(why, sizeof why, "redis refused a command: %.*s", (int)(r->len > 120 ? 120 : r->len),
             r->str);
    souk__redis_link_drop(h->link, ac, why);
    return;
  }
  switch (kind) {
  case K_LOAD_CLAIM:
  case K_LOAD_SAVE: {
    char *dst = kind == K_LOAD_CLAIM ? h->sha_claim : h->sha_save;
    if (r->type != REDIS_REPLY_STRING || r->len >= sizeof h->sha_claim) {
      souk__redis_link_drop(h->link, ac, "SCRIPT LOAD gave no SHA");
      return;
    }
    memcpy(dst, r->str, r->len);
    dst[r->len] = '\0';
    if (++h->loads == 2) went_up(h);
    break;
  }
  case K_CLAIM:
    if (e) on_claim(h, e, r);
    break;
  case K_SAVE:
    if (e) on_save(h, e, r);
    break;
  case K_GUILDS_GET:
    on_guilds(h, r);
    break;
  default:
    break;
  }
}

/* ---- the link ------------------------------------------------------------------------ */

static void went_up(souk__handoff_t *h) {
  h->state = H_UP;
  h->st.redis_up = true;
  for (size_t i = 0; i < h->n; i++) {
    ent_t *e = &h->e[i];
    /* A shard claimed before keeps its claim: if another process took it
     * meanwhile, its next write says so.  Its session is written again at
     * once, even with no event since: a Redis that restarted lost it, and
     * a process killed before the next event would leave nothing for the
     * next one to resume. */
    if (!e->claimed) {
      send_claim(h, e);
    } else {
      if (e->have) e->dirty = true;
      pump(h, e);
    }
  }
  h->next_refresh = souk_now_ms();
}

static void redis_up(void *ud, redisAsyncContext *ac, bool back) {
  souk__handoff_t *h = ud;
  if (h->closing) return;
  h->settled = true;
  h->state = H_LOADING;
  h->loads = 0;
  if (back) {
    SOUK_INFO(HO_LOG, "redis back: shard sessions are written to it again");
  } else {
    const souk__redis_url_t *u = souk__redis_link_url(h->link);
    SOUK_INFO(HO_LOG, "keeping shard sessions in redis (%s:%d db %d) as %s", u->host, u->port,
              u->db, h->owner);
  }
  const char *a1[] = {"SCRIPT", "LOAD", CLAIM_LUA};
  size_t l1[] = {6, 4, sizeof CLAIM_LUA - 1};
  const char *a2[] = {"SCRIPT", "LOAD", SAVE_LUA};
  size_t l2[] = {6, 4, sizeof SAVE_LUA - 1};
  if (send_argv(h, reply_cb, PRIV(K_LOAD_CLAIM, 0), 3, a1, l1))
    send_argv(h, reply_cb, PRIV(K_LOAD_SAVE, 0), 3, a2, l2);
}

static void redis_down(void *ud, const char *why, bool first, bool was_up) {
  souk__handoff_t *h = ud;
  if (h->closing) return;
  h->state = H_DOWN;
  h->settled = true;
  h->st.redis_up = false;
  h->guilds_inflight = false;
  if (first) {
    const souk__redis_url_t *u = souk__redis_link_url(h->link);
    SOUK_WARN(HO_LOG,
              "redis unreachable (%s:%d: %s): shards starting now identify afresh, and "
              "sessions are written once it is back",
              u->host, u->port, why);
  } else {
    SOUK_DEBUG(HO_LOG, "redis reconnect failed: %s", why);
  }
  for (size_t i = 0; i < h->n; i++) {
    ent_t *e = &h->e[i];
    e->claim_sent = false;
    if (e->inflight) {
      e->inflight = false;
      e->dirty = true;
      fg_putback(e);
    }
    /* Nobody can be asked: the shard starts without a session. */
    if (e->cb) {
      SOUK_INFO(HO_LOG, "shard %" PRIu32 ": redis unreachable: identifying", e->shard);
      answer_claim(h, e, NULL, NULL, 0);
    }
  }
}

static void tick_cb(uv_timer_t *t) {
  souk__handoff_t *h = t->data;
  if (h->closing) return;
  uint64_t now = souk_now_ms();
  for (size_t i = 0; i < h->n; i++) {
    ent_t *e = &h->e[i];
    if (!e->cb) continue;
    if (h->settled && h->state == H_DOWN) {
      answer_claim(h, e, NULL, NULL, 0);
    } else if (now >= e->claim_deadline) {
      SOUK_WARN(HO_LOG, "shard %" PRIu32 ": redis did not answer the claim in time: identifying",
                e->shard);
      answer_claim(h, e, NULL, NULL, 0);
    }
  }
  if (h->state == H_UP && now >= h->next_refresh) {
    h->next_refresh = now + h->conf.refresh_ms;
    uint64_t stale = h->conf.ttl_ms / 4;
    for (size_t i = 0; i < h->n; i++) {
      ent_t *e = &h->e[i];
      if (e->claimed && e->have && !e->lost && !e->inflight && now - e->last_write >= stale) {
        e->dirty = true;
        pump(h, e);
      }
    }
    refresh_guilds(h);
  }
  flush_check(h, now);
}

/* ---- public -------------------------------------------------------------------------- */

int souk__handoff_new(const souk__handoff_conf_t *c, souk__handoff_t **out) {
  if (!c || !out || !c->url || !*c->url || !c->shard_count) return SOUK_EINVAL;
  souk__redis_url_t u = {0};
  int rc = souk__redis_url_parse(c->url, &u);
  souk__redis_url_free(&u);
  if (rc) return SOUK_ECONFIG;
  souk__handoff_t *h = souk_calloc(1, sizeof *h);
  h->conf = *c;
  if (!h->conf.ttl_ms) h->conf.ttl_ms = SOUK_HANDOFF_TTL_MS;
  if (!h->conf.claim_timeout_ms) h->conf.claim_timeout_ms = 3000;
  if (!h->conf.refresh_ms) h->conf.refresh_ms = 2000;
  if (!h->conf.timeout_ms) h->conf.timeout_ms = 2000;
  h->prefix = souk_strdup(c->prefix ? c->prefix : "");
  h->url = souk_strdup(c->url);
  h->conf.prefix = h->prefix;
  h->conf.url = h->url;
  /* Host, process and a random part: two processes never share a name,
   * and an operator reading a key sees who runs the shard. */
  char host[64] = "";
  if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "unknown");
  snprintf(h->owner, sizeof h->owner, "%s:%ld:%08" PRIx64, host, (long)getpid(),
           souk_rand64() & 0xffffffffu);
  h->state = H_CONNECTING;
  uv_timer_init(souk_loop(), &h->tick);
  h->tick.data = h;
  uv_timer_start(&h->tick, tick_cb, HO_TICK_MS, HO_TICK_MS);
  /* Housekeeping alone must not keep the loop running; a flush refs it. */
  uv_unref((uv_handle_t *)&h->tick);
  h->open = 1;
  souk__redis_link_conf_t lc = {.url = c->url,
                                .backoff_min_ms = HO_BACKOFF_MIN_MS,
                                .backoff_max_ms = HO_BACKOFF_MAX_MS,
                                .timeout_ms = h->conf.timeout_ms,
                                .up = redis_up,
                                .down = redis_down,
                                .oldest = redis_oldest,
                                .ud = h};
  rc = souk__redis_link_new(&lc, &h->link);
  SOUK_ASSERT(rc == 0); /* the URL parsed above */
  *out = h;
  return 0;
}

int souk__handoff_claim(souk__handoff_t *h, uint32_t shard, souk__handoff_claim_cb cb, void *ud) {
  if (!h || !cb) return SOUK_EINVAL;
  if (h->closing) return SOUK_ESTOPPED;
  ent_t *e = ent_get(h, shard);
  if (e->cb) return SOUK_EBUSY;
  e->cb = cb;
  e->cb_ud = ud;
  e->claim_deadline = souk_now_ms() + h->conf.claim_timeout_ms;
  /* A shard that starts again here (after it was lost) claims afresh. */
  e->lost = false;
  e->claimed = false;
  /* Answered by the reply, or by the tick while Redis is down: never
   * inside this call. */
  send_claim(h, e);
  return 0;
}

void souk__handoff_cancel(souk__handoff_t *h, uint32_t shard) {
  ent_t *e = h ? ent_find(h, shard) : NULL;
  if (!e) return;
  e->cb = NULL;
  e->cb_ud = NULL;
}

void souk__handoff_save(souk__handoff_t *h, uint32_t shard, const char *sid, const char *url,
                        uint64_t seq) {
  if (!h || h->closing || !sid || !*sid) return;
  ent_t *e = ent_get(h, shard);
  if (e->lost) return;
  /* The strings change only at READY: compare before copying.  A new
   * session id is a READY, whose GUILD_CREATEs describe the shard's guilds
   * afresh: the guilds' hash starts again with them. */
  if (!e->sid || strcmp(e->sid, sid)) {
    if (h->conf.guild_record) {
      e->reset = true;
      e->handed = true;
    }
    souk_free(e->sid);
    e->sid = souk_strdup(sid);
  }
  if (!url) url = "";
  if (!e->url || strcmp(e->url, url)) {
    souk_free(e->url);
    e->url = souk_strdup(url);
  }
  e->seq = seq;
  e->have = true;
  e->dirty = true;
  pump(h, e);
}

void souk__handoff_flush(souk__handoff_t *h, uint64_t timeout_ms, void (*done)(void *ud),
                         void *ud) {
  if (!h || h->closing || !done) return;
  h->flush_done = done;
  h->flush_ud = ud;
  h->flush_deadline = souk_now_ms() + timeout_ms;
  uv_ref((uv_handle_t *)&h->tick);
  /* Ended by the tick (or at once there, when everything is written). */
}

void souk__handoff_stats(const souk__handoff_t *h, souk__handoff_stats_t *out) {
  if (!h) {
    memset(out, 0, sizeof *out);
    return;
  }
  *out = h->st;
}

const char *souk__handoff_owner(const souk__handoff_t *h) { return h->owner; }

void souk__handoff_guild_changed(souk__handoff_t *h, uint64_t guild_id) {
  if (!h || h->closing || !h->conf.guild_record) return;
  ent_t *e = ent_find(h, (uint32_t)((guild_id >> 22) % h->conf.shard_count));
  if (!e || e->lost) return;
  dg_add(e, guild_id);
  /* Written with the session save that follows the event. */
}

bool souk__handoff_guilds_handed(const souk__handoff_t *h, uint32_t shard) {
  const ent_t *e = h ? ent_find((souk__handoff_t *)h, shard) : NULL;
  return e && e->handed;
}

static void tick_closed(uv_handle_t *t) {
  souk__handoff_t *h = t->data;
  if (--h->open) return;
  souk_free(h->fifo);
  souk_free(h->prefix);
  souk_free(h->url);
  souk_free(h);
}

void souk__handoff_free(souk__handoff_t *h) {
  if (!h || h->closing) return;
  h->closing = true;
  /* Calls every pending reply with NULL; they find no owner and return. */
  souk__redis_link_free(h->link);
  h->link = NULL;
  for (size_t i = 0; i < h->n; i++) {
    souk_free(h->e[i].sid);
    souk_free(h->e[i].url);
    souk_free(h->e[i].dg);
    souk_free(h->e[i].fg);
  }
  souk_free(h->e);
  h->e = NULL;
  h->n = 0;
  h->flush_done = NULL;
  uv_close((uv_handle_t *)&h->tick, tick_closed);
}
