/* The cluster: membership, the leader lease and change announcements; see
 * include/souk/cluster.h and cluster.h.
 *
 * One timer (TICK_MS) decides everything: when to send the heartbeat, when
 * to take or renew the lease, when a lease that was not renewed in time
 * stops being ours.  Redis work goes over two links of the cache layer's
 * kind (cache/redisconn.h): one for commands, one subscribed to the events
 * channel (a subscribed connection takes no other command).  PostgreSQL
 * work (the advisory lock) is blocking libpq, so it runs on the thread
 * pool, one job at a time. */
#include "ops/cluster.h"

#include "cache/redisconn.h"
#include "ops/settings.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/health.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/metrics.h"
#include "store/lease.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COMP            "cluster"
#define TICK_MS         50    /* how often the timer decides */
#define REDIS_TIMEOUT   2000  /* a Redis reply slower than this: Redis is gone */
#define MAX_WATCH       32
#define MAX_MEMBERS     512
#define STOP_WAIT_MS    1000  /* longest wait for the goodbye to reach Redis */
#define RETRY_JITTER_MS 40    /* added to a follower's next try, so they do not all ask at once */

/* ---- config ------------------------------------------------------------------ */

souk__cluster_conf_t souk__cluster_conf;

SOUK_CONF_ENUM_CHOICES(souk__cluster_lease_t, lease_choices, SOUK__CLUSTER_LEASE_OFF,
                       [SOUK__CLUSTER_LEASE_AUTO] = "auto", [SOUK__CLUSTER_LEASE_REDIS] = "redis",
                       [SOUK__CLUSTER_LEASE_POSTGRES] = "postgres",
                       [SOUK__CLUSTER_LEASE_OFF] = "off");

#define K(field) offsetof(souk__cluster_conf_t, field)
const souk_conf_key_t souk__cluster_conf_keys[] = {
    {"id", SOUK_CONF_STRING, K(id), NULL, 0, 80, NULL, 0,
     "this process's name in the cluster (shown by /admin scalability and /metrics); default "
     "<host>:<pid>"},
    {"lease", SOUK_CONF_ENUM, K(lease), "auto", 0, 0, lease_choices, 0,
     "where the leader lease lives: auto (redis when cache.url is set, else postgres when the "
     "store is PostgreSQL, else off), redis, postgres, or off (this process runs every "
     "once-per-cluster task: one process only)"},
    {"lease_ttl", SOUK_CONF_DURATION, K(lease_ttl_ms), "3s", 1000, 60000, NULL, 0,
     "the leader lease's time to live: a leader that died is replaced within about this long"},
    {"heartbeat", SOUK_CONF_DURATION, K(heartbeat_ms), "1s", 200, 60000, NULL, 0,
     "how often each process renews its entry in the member list (an entry expires after 3 "
     "missed heartbeats)"},
    {0},
};
#undef K

/* ---- state ------------------------------------------------------------------- */

/* A Redis command waiting for its reply, for the link's watchdog. */
typedef struct pend {
  struct pend *prev, *next;
  int kind;
  uint64_t sent;
  bool dead; /* the cluster stopped: the reply only frees this */
} pend_t;

enum { P_HEARTBEAT, P_LEASE, P_PUBLISH, P_BYE };

/* Who is told of leadership changes. */
typedef struct watcher {
  souk_cluster_leader_cb cb;
  void *ud;
} watcher_t;

static struct {
  bool running, stopping, fake;
  souk_cluster_mode_t mode;
  char id[96], host[64], version[32];
  char token[160]; /* "<random hex>:<id>": this process's holder value and sender name */
  int64_t pid;
  uint64_t started_unix;
  int64_t shard_first, shard_last, shard_count;
  bool shards_told, has_shards;
  uint64_t ttl, hb;
  /* Redis */
  char *k_members, *k_info, *k_lease, *k_fence, *k_events;
  souk__redis_link_t *link, *sub;
  bool redis_up, sub_up;
  pend_t *pend;
  bool hb_inflight, lease_inflight;
  uint64_t next_hb, next_lease;
  /* Members as of the last heartbeat. */
  souk_cluster_member_t *members;
  size_t nmembers, known;
  /* The lease. */
  bool leader;
  int64_t fence, floor;
  uint64_t leader_until; /* monotonic ms: ours until then at most */
  uint64_t leader_changes;
  char holder[96]; /* the holder's id as last seen */
  bool engine_up;  /* the lease's engine answered the last time it was asked */
  /* PostgreSQL */
  souk__pglock_t *pg;
  bool pg_busy;
  souk__pglock_t *pg_orphan; /* stopped while a job used it: released after that job */
  watcher_t w[MAX_WATCH];
  size_t nw;
  uv_timer_t *tick, *stop_timer;
  bool metrics_on;
} C = {.has_shards = true};

static uint64_t now_ms(void) { return souk_now_ms(); }

/* ---- watchers and leadership --------------------------------------------------- */

int souk_cluster_watch(souk_cluster_leader_cb cb, void *ud) {
  if (!cb) return SOUK_EINVAL;
  for (size_t i = 0; i < C.nw; i++)
    if (C.w[i].cb == cb && C.w[i].ud == ud) return 0;
  if (C.nw == MAX_WATCH) return SOUK_EFULL;
  C.w[C.nw].cb = cb;
  C.w[C.nw].ud = ud;
  C.nw++;
  return 0;
}

void souk_cluster_unwatch(souk_cluster_leader_cb cb, void *ud) {
  for (size_t i = 0; i < C.nw; i++)
    if (C.w[i].cb == cb && C.w[i].ud == ud) {
      memmove(&C.w[i], &C.w[i + 1], (C.nw - i - 1) * sizeof C.w[0]);
      C.nw--;
      return;
    }
}

bool souk_cluster_leader(void) {
  if (!C.running && !C.fake) return true;
  return C.mode == SOUK_CLUSTER_SINGLE || C.leader;
}

int64_t souk_cluster_fence(void) { return C.leader ? C.fence : 0; }

static void notify(void) {
  /* A watcher may unwatch itself (or another) from its callback: walk a
   * copy. */
  size_t n = C.nw;
  watcher_t w[MAX_WATCH];
  memcpy(w, C.w, n * sizeof w[0]);
  for (size_t i = 0; i < n; i++)
    w[i].cb(C.leader, C.leader ? C.fence : 0, w[i].ud);
}

static void become_leader(int64_t fence) {
  bool was = C.leader;
  C.leader = true;
  C.fence = fence;
  if (fence > C.floor) C.floor = fence;
  snprintf(C.holder, sizeof C.holder, "%s", C.id);
  if (was) return;
  C.leader_changes++;
  SOUK_INFO(COMP, "cluster: this process (%s) leads now, fencing token %" PRId64
                  ": once-per-cluster tasks run here",
            C.id, fence);
  notify();
}

static void step_down(const char *why) {
  if (!C.leader) return;
  C.leader = false;
  C.leader_changes++;
  C.holder[0] = '\0';
  SOUK_WARN(COMP, "cluster: this process (%s) no longer leads (token %" PRId64 "): %s", C.id,
            C.fence, why);
  C.fence = 0;
  notify();
}

/* ---- Redis: pending replies ------------------------------------------------------ */

static pend_t *pend_new(int kind) {
  pend_t *p = souk_calloc(1, sizeof *p);
  p->kind = kind;
  p->sent = now_ms();
  p->next = C.pend;
  if (C.pend) C.pend->prev = p;
  C.pend = p;
  return p;
}

static void pend_free(pend_t *p) {
  if (!p->dead) {
    if (p->prev)
      p->prev->next = p->next;
    else
      C.pend = p->next;
    if (p->next) p->next->prev = p->prev;
  }
  souk_free(p);
}

static uint64_t redis_oldest(void *ud) {
  uint64_t o = UINT64_MAX;
  for (pend_t *p = C.pend; p; p = p->next)
    if (p->sent < o) o = p->sent;
  return o;
}

/* ---- Redis: scripts ------------------------------------------------------------- */

/* The heartbeat: renew this process's entry, drop the expired ones, and
 * answer the list: {now, id, ms left, json, id, ms left, json, ...}. */
static const char HEARTBEAT_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ttl = tonumber(ARGV[3])\n"
    "redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
    "local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "for i = 1, #dead do redis.call('HDEL', KEYS[2], dead[i]) end\n"
    "if #dead > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end\n"
    "redis.call('PEXPIRE', KEYS[1], ttl * 10)\n"
    "redis.call('PEXPIRE', KEYS[2], ttl * 10)\n"
    "local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')\n"
    "local out = {now}\n"
    "for i = 1, #live, 2 do\n"
    "  out[#out + 1] = live[i]\n"
    "  out[#out + 1] = tonumber(live[i + 1]) - now\n"
    "  out[#out + 1] = redis.call('HGET', KEYS[2], live[i]) or ''\n"
    "end\n"
    "return out\n";

/* Take or renew the lease.  The value is "<fence> <holder>".  A free lease
 * gets the next token, above ARGV[3] (the newest token the store has seen:
 * a Redis restarted without persistence starts its counter from 0).
 * Answers {1 if ours, fence, ms left, holder}. */
static const char LEASE_LUA[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v then\n"
    "  local sp = string.find(v, ' ', 1, true)\n"
    "  local f = tonumber(string.sub(v, 1, (sp or 0) - 1)) or 0\n"
    "  local h = sp and string.sub(v, sp + 1) or ''\n"
    "  if h == ARGV[1] then\n"
    "    redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "    return {1, f, tonumber(ARGV[2]), h}\n"
    "  end\n"
    "  return {0, f, redis.call('PTTL', KEYS[1]), h}\n"
    "end\n"
    "local floor = tonumber(ARGV[3]) or 0\n"
    "local cur = tonumber(redis.call('GET', KEYS[2]) or '0') or 0\n"
    "if cur < floor then redis.call('SET', KEYS[2], floor) end\n"
    "local f = redis.call('INCR', KEYS[2])\n"
    "redis.call('SET', KEYS[1], f .. ' ' .. ARGV[1], 'PX', ARGV[2])\n"
    "return {1, f, tonumber(ARGV[2]), ARGV[1]}\n";

/* Leave: give the lease back if it is still ours (ARGV[1]), and leave the
 * member list (ARGV[2]).  Answers 1 when the lease was released. */
static const char BYE_LUA[] =
    "local r = 0\n"
    "local v = redis.call('GET', KEYS[1])\n"
    "if v then\n"
    "  local sp = string.find(v, ' ', 1, true)\n"
    "  if sp and string.sub(v, sp + 1) == ARGV[1] then redis.call('DEL', KEYS[1]); r = 1 end\n"
    "end\n"
    "redis.call('ZREM', KEYS[2], ARGV[2])\n"
    "redis.call('HDEL', KEYS[3], ARGV[2])\n"
    "return r\n";

/* The id part of a holder value "<random>:<id>". */
static const char *holder_id(const char *h) {
  const char *c = strchr(h, ':');
  return c ? c + 1 : h;
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv);

/* EVAL script with nk keys then the args; 0 or SOUK_E* (the link is
 * dropped then). */
static int eval(int kind, const char *script, int nk, const char *const *keys, int na,
                const char *const *args) {
  redisAsyncContext *ac = souk__redis_link_ac(C.link);
  if (!ac) return SOUK_ECONN;
  const char *argv[12];
  size_t lens[12];
  char nks[8];
  snprintf(nks, sizeof nks, "%d", nk);
  int n = 0;
  argv[n++] = "EVAL";
  argv[n++] = script;
  argv[n++] = nks;
  for (int i = 0; i < nk; i++)
    argv[n++] = keys[i];
  for (int i = 0; i < na; i++)
    argv[n++] = args[i];
  for (int i = 0; i < n; i++)
    lens[i] = strlen(argv[i]);
  pend_t *p = pend_new(kind);
  if (redisAsyncCommandArgv(ac, reply_cb, p, n, argv, lens) != REDIS_OK) {
    pend_free(p);
    souk__redis_link_drop(C.link, ac, "cannot send a command");
    return SOUK_ECONN;
  }
  return 0;
}

/* ---- Redis: the heartbeat --------------------------------------------------------- */

static void member_json(souk_buf_t *b) {
  souk_jw_t w;
  souk_jw_init(&w, b);
  souk_jw_obj(&w);
  souk_jw_key(&w, "id");
  souk_jw_str(&w, C.id);
  souk_jw_key(&w, "host");
  souk_jw_str(&w, C.host);
  souk_jw_key(&w, "pid");
  souk_jw_i64(&w, C.pid);
  souk_jw_key(&w, "version");
  souk_jw_str(&w, C.version);
  souk_jw_key(&w, "first");
  souk_jw_i64(&w, C.shard_first);
  souk_jw_key(&w, "last");
  souk_jw_i64(&w, C.shard_last);
  souk_jw_key(&w, "count");
  souk_jw_i64(&w, C.shard_count);
  souk_jw_key(&w, "started");
  souk_jw_u64(&w, C.started_unix);
  souk_jw_key(&w, "ttl");
  souk_jw_u64(&w, C.hb * 3);
  souk_jw_key(&w, "leader");
  souk_jw_bool(&w, souk_cluster_leader() && C.mode != SOUK_CLUSTER_SINGLE);
  souk_jw_end(&w);
}

static void send_heartbeat(void) {
  souk_buf_t b;
  souk_buf_init(&b);
  member_json(&b);
  char ttl[24];
  snprintf(ttl, sizeof ttl, "%" PRIu64, C.hb * 3);
  const char *keys[] = {C.k_members, C.k_info};
  const char *args[] = {C.id, b.data, ttl};
  if (eval(P_HEARTBEAT, HEARTBEAT_LUA, 2, keys, 3, args) == 0) C.hb_inflight = true;
  souk_buf_free(&b);
}

static int member_cmp(const void *a, const void *b) {
  return strcmp(((const souk_cluster_member_t *)a)->id, ((const souk_cluster_member_t *)b)->id);
}

static void fill_member(souk_cluster_member_t *m, const char *id, long long left,
                        const char *json, size_t len) {
  memset(m, 0, sizeof *m);
  snprintf(m->id, sizeof m->id, "%s", id);
  m->shard_first = m->shard_last = -1;
  souk_json_t j = {0};
  if (souk_json_parse(&j, json, len) == 0) {
    souk_json_str(&j, souk_json_get(&j, 0, "host"), m->host, sizeof m->host);
    souk_json_str(&j, souk_json_get(&j, 0, "version"), m->version, sizeof m->version);
    souk_json_i64(&j, souk_json_get(&j, 0, "pid"), &m->pid);
    souk_json_i64(&j, souk_json_get(&j, 0, "first"), &m->shard_first);
    souk_json_i64(&j, souk_json_get(&j, 0, "last"), &m->shard_last);
    souk_json_i64(&j, souk_json_get(&j, 0, "count"), &m->shard_count);
    souk_json_u64(&j, souk_json_get(&j, 0, "started"), &m->started_unix_ms);
    souk_json_bool(&j, souk_json_get(&j, 0, "leader"), &m->leader);
    int64_t ttl = 0;
    souk_json_i64(&j, souk_json_get(&j, 0, "ttl"), &ttl);
    m->seen_ms_ago = ttl > left && left >= 0 ? (uint64_t)(ttl - left) : 0;
  }
  souk_json_free(&j);
  m->self = strcmp(id, C.id) == 0;
}

static void heartbeat_reply(const redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) return;
  size_t n = (r->elements - 1) / 3;
  if (n > MAX_MEMBERS) n = MAX_MEMBERS;
  souk_cluster_member_t *v = souk_calloc(n ? n : 1, sizeof *v);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const redisReply *id = r->element[1 + 3 * i], *left = r->element[2 + 3 * i],
                     *js = r->element[3 + 3 * i];
    if (id->type != REDIS_REPLY_STRING || js->type != REDIS_REPLY_STRING) continue;
    fill_member(&v[k++], id->str, left->type == REDIS_REPLY_INTEGER ? left->integer : -1, js->str,
                js->len);
  }
  qsort(v, k, sizeof *v, member_cmp);
  souk_free(C.members);
  C.members = v;
  C.nmembers = k;
  if (k != C.known)
    SOUK_INFO(COMP, "cluster: %zu process(es) alive (was %zu)", k ? k : 1, C.known ? C.known : 1);
  C.known = k;
}

/* ---- Redis: the lease ----------------------------------------------------------- */

static void send_lease(void) {
  char ttl[24], floor[24];
  snprintf(ttl, sizeof ttl, "%" PRIu64, C.ttl);
  snprintf(floor, sizeof floor, "%" PRId64, C.floor);
  const char *keys[] = {C.k_lease, C.k_fence};
  const char *args[] = {C.token, ttl, floor};
  if (eval(P_LEASE, LEASE_LUA, 2, keys, 3, args) == 0) C.lease_inflight = true;
}

static void lease_reply(const redisReply *r, uint64_t sent) {
  uint64_t now = now_ms();
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 4 || r->element[0]->type != REDIS_REPLY_INTEGER)
    return;
  bool ours = r->element[0]->integer == 1;
  int64_t fence = r->element[1]->type == REDIS_REPLY_INTEGER ? r->element[1]->integer : 0;
  long long left = r->element[2]->type == REDIS_REPLY_INTEGER ? r->element[2]->integer : -2;
  const char *h = r->element[3]->type == REDIS_REPLY_STRING ? r->element[3]->str : "";
  C.engine_up = true;
  if (ours) {
    /* Redis set the expiry after the command was sent, so the key lives
     * at least until sent + ttl; we stop a quarter earlier. */
    C.leader_until = sent + C.ttl - C.ttl / 4;
    if (C.leader && C.fence != fence) step_down("the lease was taken over");
    become_leader(fence);
    C.next_lease = now + C.ttl / 3;
    return;
  }
  if (C.leader) step_down("another process holds the lease");
  snprintf(C.holder, sizeof C.holder, "%.*s", (int)sizeof C.holder - 1, holder_id(h));
  if (fence > C.floor) C.floor = fence;
  /* Ask again when the holder's key runs out (a dead holder's expires
   * then), or after a third of the TTL, whichever comes first. */
  uint64_t wait = C.ttl / 3;
  if (left >= 0 && (uint64_t)left < wait) wait = (uint64_t)left;
  C.next_lease = now + wait + 1 + (uint64_t)(souk_rand01() * RETRY_JITTER_MS);
}

/* ---- Redis: events ------------------------------------------------------------ */

void souk__cluster_publish_setting(uint64_t scope_id, const char *key, void *ud) {
  (void)ud;
  redisAsyncContext *ac = C.running ? souk__redis_link_ac(C.link) : NULL;
  if (!ac || !key) return;
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_printf(&b, "%s settings %" PRIu64 " %s", C.token, scope_id, key);
  const char *argv[] = {"PUBLISH", C.k_events, b.data};
  size_t lens[] = {7, strlen(C.k_events), b.len};
  pend_t *p = pend_new(P_PUBLISH);
  if (redisAsyncCommandArgv(ac, reply_cb, p, 3, argv, lens) != REDIS_OK) {
    pend_free(p);
    souk__redis_link_drop(C.link, ac, "cannot send PUBLISH");
  }
  souk_buf_free(&b);
}

/* "<sender> settings <scope> <key>" from another process: re-read that
 * value from the store. */
static void on_event(const char *msg, size_t len) {
  char buf[512];
  if (len >= sizeof buf) return;
  memcpy(buf, msg, len);
  buf[len] = '\0';
  char *sp = strchr(buf, ' ');
  if (!sp) return;
  *sp = '\0';
  if (!strcmp(buf, C.token)) return; /* our own */
  char *what = sp + 1, *rest = strchr(what, ' ');
  if (!rest) return;
  *rest++ = '\0';
  if (!strcmp(what, "settings")) {
    char *end = NULL;
    unsigned long long scope = strtoull(rest, &end, 10);
    if (!end || *end != ' ') return;
    const char *key = end + 1;
    int rc = souk__settings_invalidate((uint64_t)scope, key);
    SOUK_DEBUG(COMP, "cluster: %s of %llu changed elsewhere: re-read (%s)", key, scope,
               rc ? souk_strerror(rc) : "ok");
  }
}

static void sub_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)priv;
  redisReply *r = reply;
  if (!souk__redis_link_owner(ac) || !r) return;
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
  const redisReply *kind = r->element[0];
  if (kind->type != REDIS_REPLY_STRING) return;
  if (!strcmp(kind->str, "message") && r->element[2]->type == REDIS_REPLY_STRING)
    on_event(r->element[2]->str, r->element[2]->len);
}

static void sub_up(void *ud, redisAsyncContext *ac, bool back) {
  (void)ud;
  const char *argv[] = {"SUBSCRIBE", C.k_events};
  size_t lens[] = {9, strlen(C.k_events)};
  if (redisAsyncCommandArgv(ac, sub_cb, NULL, 2, argv, lens) != REDIS_OK) {
    souk__redis_link_drop(C.sub, ac, "cannot SUBSCRIBE");
    return;
  }
  C.sub_up = true;
  /* Announcements sent while we could not hear them are lost: re-read
   * what changed since the last re-read. */
  if (back) souk__settings_refresh(NULL, NULL);
}

static void sub_down(void *ud, const char *why, bool first, bool was_up) {
  (void)ud;
  (void)first;
  (void)was_up;
  C.sub_up = false;
  SOUK_DEBUG(COMP, "cluster: events connection down: %s", why);
}

/* ---- Redis: replies and the link ------------------------------------------------ */

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv) {
  pend_t *p = priv;
  int kind = p->kind;
  uint64_t sent = p->sent;
  bool dead = p->dead;
  pend_free(p);
  if (kind == P_HEARTBEAT) C.hb_inflight = false;
  if (kind == P_LEASE) C.lease_inflight = false;
  if (dead || !souk__redis_link_owner(ac)) return;
  redisReply *r = reply;
  if (!r) {
    souk__redis_link_lost(C.link, ac, ac->errstr[0] ? ac->errstr : "connection lost");
    return;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    char why[200];
    snprintf(why, sizeof why, "refused: %.*s", (int)(r->len > 160 ? 160 : r->len), r->str);
    souk__redis_link_drop(C.link, ac, why);
    return;
  }
  if (kind == P_HEARTBEAT)
    heartbeat_reply(r);
  else if (kind == P_LEASE)
    lease_reply(r, sent);
}

static void redis_up(void *ud, redisAsyncContext *ac, bool back) {
  (void)ud;
  (void)ac;
  C.redis_up = true;
  const souk__redis_url_t *u = souk__redis_link_url(C.link);
  if (back)
    SOUK_INFO(COMP, "cluster: redis back%s", C.mode == SOUK_CLUSTER_REDIS
                                                  ? ": taking part in the lease again"
                                                  : "");
  else
    SOUK_INFO(COMP, "cluster: process %s registered through redis (%s:%d db %d)", C.id, u->host,
              u->port, u->db);
  C.next_hb = C.next_lease = 0;
}

static void redis_down(void *ud, const char *why, bool first, bool was_up) {
  (void)ud;
  C.redis_up = false;
  C.hb_inflight = C.lease_inflight = false;
  if (C.mode == SOUK_CLUSTER_REDIS) C.engine_up = false;
  if (first) {
    const souk__redis_url_t *u = souk__redis_link_url(C.link);
    SOUK_WARN(COMP,
              "cluster: redis unreachable (%s:%d: %s): %s; settings changed elsewhere arrive "
              "by the minute's re-read",
              u->host, u->port, why,
              C.mode == SOUK_CLUSTER_REDIS
                  ? "once-per-cluster tasks pause until the lease can be renewed"
                  : "the member list is kept as last seen");
  } else {
    SOUK_DEBUG(COMP, "cluster: redis reconnect failed: %s", why);
  }
}

/* ---- PostgreSQL: the advisory lock ------------------------------------------------ */

typedef struct pgjob {
  bool check;   /* a held lock: only check the session */
  bool release; /* stopping: release and free */
  souk__pglock_t *pg;
  char holder[160];
  int rc;
  int64_t fence;
  char who[160];
  uint64_t sent;
} pgjob_t;

static void pg_work(void *ud) {
  pgjob_t *j = ud;
  if (j->release) {
    souk__pglock_release(j->pg);
    souk__pglock_free(j->pg);
    return;
  }
  if (j->check)
    j->rc = souk__pglock_check(j->pg);
  else
    j->rc = souk__pglock_try(j->pg, j->holder, &j->fence, j->who, sizeof j->who);
}

static void pg_release_submit(souk__pglock_t *pg);

static void pg_done(void *ud, int status) {
  pgjob_t *j = ud;
  if (j->release) {
    souk_free(j);
    return;
  }
  if (j->pg == C.pg_orphan) {
    /* Stopped while this job ran: the handle is free for its release. */
    C.pg_orphan = NULL;
    pg_release_submit(j->pg);
  }
  if (!C.running || C.stopping) {
    souk_free(j);
    return;
  }
  C.pg_busy = false;
  uint64_t now = now_ms();
  int rc = status ? status : j->rc;
  bool was_up = C.engine_up;
  C.engine_up = rc == 0 || rc == SOUK_EBUSY;
  if (!C.engine_up && was_up)
    SOUK_WARN(COMP, "cluster: postgres unreachable for the lease (%s): once-per-cluster tasks "
                    "pause until it is back",
              souk_strerror(rc));
  else if (C.engine_up && !was_up && C.leader_changes)
    SOUK_INFO(COMP, "cluster: postgres back for the lease");
  if (rc == 0) {
    /* The session holds the lock for as long as it lives; it is checked
     * every third of the TTL, and stops counting as ours a TTL after the
     * check that last worked was sent. */
    C.leader_until = j->sent + C.ttl;
    if (!j->check) become_leader(j->fence);
  } else {
    if (rc == SOUK_EBUSY)
      snprintf(C.holder, sizeof C.holder, "%.*s", (int)sizeof C.holder - 1, holder_id(j->who));
    if (C.leader) step_down(rc == SOUK_EBUSY ? "another process holds the advisory lock"
                                             : "the advisory lock's connection was lost");
  }
  C.next_lease = now + (C.leader ? C.ttl / 3
                                 : C.ttl / 6 + (uint64_t)(souk_rand01() * RETRY_JITTER_MS));
  souk_free(j);
}

static void pg_release_submit(souk__pglock_t *pg) {
  pgjob_t *j = souk_calloc(1, sizeof *j);
  j->release = true;
  j->pg = pg;
  if (souk_work_submit(pg_work, pg_done, j) != 0) {
    souk__pglock_free(pg);
    souk_free(j);
  }
}

static void pg_submit(bool check) {
  pgjob_t *j = souk_calloc(1, sizeof *j);
  j->check = check;
  j->pg = C.pg;
  j->sent = now_ms();
  snprintf(j->holder, sizeof j->holder, "%s", C.token);
  if (souk_work_submit(pg_work, pg_done, j) != 0) {
    souk_free(j);
    return;
  }
  C.pg_busy = true;
}

/* ---- the tick ------------------------------------------------------------------ */

static void tick_cb(uv_timer_t *t) {
  (void)t;
  if (!C.running || C.stopping) return;
  uint64_t now = now_ms();
  if (C.leader && now >= C.leader_until)
    step_down(C.mode == SOUK_CLUSTER_REDIS ? "redis did not confirm the renewal in time"
                                           : "postgres did not confirm the lock in time");
  /* A fenced write was refused: a newer holder exists (or the counter
   * went back).  Give the lease up and take the next one above it. */
  int64_t newest = souk__store_fence_newest();
  if (newest > C.floor) {
    C.floor = newest;
    if (C.leader && C.fence <= newest) {
      step_down("the store refused a write under this token: a newer one has written");
      if (C.mode == SOUK_CLUSTER_REDIS && C.redis_up) {
        const char *keys[] = {C.k_lease, C.k_members, C.k_info};
        const char *args[] = {C.token, "\x01"}; /* release only: no member has that id */
        eval(P_BYE, BYE_LUA, 3, keys, 2, args);
      }
      C.next_lease = now + C.ttl / 6;
    }
  }
  if (C.redis_up) {
    if (!C.hb_inflight && now >= C.next_hb) {
      send_heartbeat();
      C.next_hb = now + C.hb;
    }
    if (C.mode == SOUK_CLUSTER_REDIS && !C.lease_inflight && now >= C.next_lease) {
      send_lease();
      /* A reply sets the real next time; this only keeps the tick from
       * asking again while it is on its way. */
      C.next_lease = now + C.ttl / 3;
    }
  }
  if (C.mode == SOUK_CLUSTER_POSTGRES && !C.pg_busy && now >= C.next_lease) pg_submit(C.leader);
}

/* ---- health and metrics --------------------------------------------------------- */

static void health_check(void *ud, souk_health_result_t *out) {
  (void)ud;
  if (C.mode == SOUK_CLUSTER_SINGLE) {
    souk_health_set(out, SOUK_HEALTH_HEALTHY, "one process (no lease)%s",
                    C.link ? (C.redis_up ? ", registered in redis" : ", redis unreachable") : "");
    return;
  }
  const char *engine = C.mode == SOUK_CLUSTER_REDIS ? "redis" : "postgres";
  if (!C.engine_up) {
    souk_health_set(out, SOUK_HEALTH_WARNING,
                    "%s unreachable: once-per-cluster tasks paused here; %zu process(es) last "
                    "seen",
                    engine, C.known ? C.known : 1);
    return;
  }
  if (C.leader)
    souk_health_set(out, SOUK_HEALTH_HEALTHY, "leader (token %" PRId64 "), %zu process(es)",
                    C.fence, C.known ? C.known : 1);
  else if (C.holder[0])
    souk_health_set(out, SOUK_HEALTH_HEALTHY, "follower of %s, %zu process(es)", C.holder,
                    C.known ? C.known : 1);
  else
    souk_health_set(out, SOUK_HEALTH_WARNING, "no leader known yet");
}

static souk_metric_t *m_info;

static void collect(void *ud) {
  (void)ud;
  souk_gauge_set_named("souk_cluster_members", NULL, (double)(C.known ? C.known : 1));
  souk_gauge_set_named("souk_cluster_leader", NULL, souk_cluster_leader() ? 1 : 0);
  souk_gauge_set_named("souk_cluster_lease_fence", NULL, (double)souk_cluster_fence());
  souk_gauge_set_named("souk_cluster_connected", NULL,
                       C.mode == SOUK_CLUSTER_SINGLE ? (C.link ? C.redis_up : 1) : C.engine_up);
  souk_counter_set_named("souk_cluster_leader_changes_total", NULL, (double)C.leader_changes);
  souk_metric_clear(m_info);
  char shards[48];
  size_t n = C.nmembers;
  souk_cluster_member_t self;
  const souk_cluster_member_t *v = C.members;
  if (!n) {
    souk_cluster_members(&self, 1);
    v = &self;
    n = 1;
  }
  for (size_t i = 0; i < n; i++) {
    if (v[i].shard_first < 0)
      snprintf(shards, sizeof shards, "none");
    else
      snprintf(shards, sizeof shards, "%" PRId64 "-%" PRId64 "/%" PRId64, v[i].shard_first,
               v[i].shard_last, v[i].shard_count);
    const char *lv[] = {v[i].id, shards, v[i].version, v[i].leader ? "1" : "0"};
    souk_gauge_set(souk_metric_series(m_info, lv), 1);
  }
}

static void metrics_init(void) {
  if (C.metrics_on) return;
  C.metrics_on = true;
  souk_gauge_new("souk_cluster_members", "Processes of the cluster alive at the last heartbeat.",
                 NULL);
  souk_gauge_new("souk_cluster_leader",
                 "1 while this process holds the cluster lease (runs once-per-cluster tasks).",
                 NULL);
  souk_gauge_new("souk_cluster_lease_fence",
                 "Fencing token of the lease this process holds (0: none).", NULL);
  souk_gauge_new("souk_cluster_connected",
                 "1 while the lease's engine (Redis or PostgreSQL) answers this process.", NULL);
  souk_counter_new("souk_cluster_leader_changes_total",
                   "Times this process gained or lost the cluster lease.", NULL);
  m_info = souk_gauge_new("souk_cluster_member_info",
                          "One series per process alive at the last heartbeat (always 1).",
                          "process,shards,version,leader");
  souk_metrics_add_collector(collect, NULL);
}

/* ---- public reads ------------------------------------------------------------- */

void souk_cluster_status(souk_cluster_status_t *out) {
  memset(out, 0, sizeof *out);
  out->mode = C.mode;
  out->id = C.id[0] ? C.id : "local";
  out->connected = C.mode == SOUK_CLUSTER_SINGLE ? true : C.engine_up;
  out->leader = souk_cluster_leader();
  out->fence = souk_cluster_fence();
  out->holder = C.leader || C.mode == SOUK_CLUSTER_SINGLE ? out->id : C.holder;
  out->lease_ttl_ms = C.ttl;
  out->leader_changes = C.leader_changes;
  out->members = C.known ? C.known : 1;
}

size_t souk_cluster_members(souk_cluster_member_t *out, size_t cap) {
  if (C.nmembers) {
    for (size_t i = 0; i < C.nmembers && i < cap; i++) {
      out[i] = C.members[i];
      /* What this process says of itself is fresher than its last beat. */
      if (out[i].self) out[i].leader = souk_cluster_leader() && C.mode != SOUK_CLUSTER_SINGLE;
    }
    return C.nmembers;
  }
  if (cap) {
    souk_cluster_member_t *m = &out[0];
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s", C.id[0] ? C.id : "local");
    snprintf(m->host, sizeof m->host, "%s", C.host);
    snprintf(m->version, sizeof m->version, "%s", C.version);
    m->pid = C.pid ? C.pid : (int64_t)getpid();
    m->shard_first = C.shard_first;
    m->shard_last = C.shard_last;
    m->shard_count = C.shard_count;
    m->started_unix_ms = C.started_unix;
    m->leader = souk_cluster_leader();
    m->self = true;
  }
  return 1;
}

size_t souk__cluster_size(void) { return C.known ? C.known : 1; }

bool souk__cluster_running(void) { return C.running; }

void souk__cluster_set_shards(int64_t first, int64_t last, int64_t count) {
  C.shard_first = first;
  C.shard_last = last;
  C.shard_count = count;
  C.shards_told = true;
  C.has_shards = first >= 0 && last >= first;
  /* Tell the others now rather than at the next beat. */
  C.next_hb = 0;
}

bool souk__cluster_has_shards(void) { return C.has_shards; }

void souk__cluster_shards(uint32_t *mine, uint32_t *total) {
  bool some = C.shards_told && C.shard_first >= 0 && C.shard_last >= C.shard_first;
  *mine = some ? (uint32_t)(C.shard_last - C.shard_first + 1) : 0;
  *total = some && C.shard_count > 0 ? (uint32_t)C.shard_count : 0;
}

/* ---- start and stop ------------------------------------------------------------ */

static char *key(const char *prefix, const char *name) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_printf(&b, "%scluster:%s", prefix ? prefix : "", name);
  return souk_buf_steal(&b);
}

/* The advisory lock's number: "souk" in the high half, the key prefix's
 * hash in the low one, so deployments sharing a database keep apart. */
static int64_t pg_key(const char *prefix) {
  uint32_t h = 2166136261u;
  for (const char *p = prefix ? prefix : ""; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  return (int64_t)(((uint64_t)0x736f756bu << 32) | h);
}

static int read_floor_fn(souk_db_t *db, void *ud) {
  int64_t *out = ud;
  *out = 0;
  souk_stmt_t *s = NULL;
  int rc = souk_db_preparef(db, &s, "SELECT COALESCE(MAX(token), 0) FROM cluster_fence", "");
  if (rc == 0 && souk_stmt_step(s) == 1) *out = souk_stmt_column_int64(s, 0);
  souk_stmt_finalize(s);
  return rc;
}

static void stop_done_cb(uv_timer_t *t);

static void free_state(void) {
  souk_free(C.k_members);
  souk_free(C.k_info);
  souk_free(C.k_lease);
  souk_free(C.k_fence);
  souk_free(C.k_events);
  souk_free(C.members);
  C.k_members = C.k_info = C.k_lease = C.k_fence = C.k_events = NULL;
  C.members = NULL;
  C.nmembers = C.known = 0;
}

int souk__cluster_start(const souk__cluster_opts_t *o) {
  if (C.running) return SOUK_EBUSY;
  if (C.stop_timer) stop_done_cb(C.stop_timer);
  size_t nw = C.nw;
  watcher_t w[MAX_WATCH];
  memcpy(w, C.w, sizeof w);
  free_state();
  memset(&C, 0, sizeof C);
  memcpy(C.w, w, sizeof w);
  C.nw = nw;
  C.has_shards = true;
  C.shard_first = C.shard_last = -1;
  bool redis = o->redis_url && o->redis_url[0];
  bool pgstore = o->store_url && (!strncmp(o->store_url, "postgres://", 11) ||
                                  !strncmp(o->store_url, "postgresql://", 13));
  souk__cluster_lease_t lease = souk__cluster_conf.lease;
  if (lease == SOUK__CLUSTER_LEASE_AUTO)
    lease = redis     ? SOUK__CLUSTER_LEASE_REDIS
            : pgstore ? SOUK__CLUSTER_LEASE_POSTGRES
                      : SOUK__CLUSTER_LEASE_OFF;
  if (lease == SOUK__CLUSTER_LEASE_REDIS && !redis) {
    SOUK_ERROR(COMP, "cluster.lease is redis but cache.url is not set");
    return SOUK_ECONFIG;
  }
  if (lease == SOUK__CLUSTER_LEASE_POSTGRES && (!pgstore || !o->store)) {
    SOUK_ERROR(COMP, "cluster.lease is postgres but store.url is not a postgres:// URL");
    return SOUK_ECONFIG;
  }
  C.mode = lease == SOUK__CLUSTER_LEASE_REDIS      ? SOUK_CLUSTER_REDIS
           : lease == SOUK__CLUSTER_LEASE_POSTGRES ? SOUK_CLUSTER_POSTGRES
                                                   : SOUK_CLUSTER_SINGLE;
  if (gethostname(C.host, sizeof C.host - 1) != 0) snprintf(C.host, sizeof C.host, "unknown");
  C.pid = (int64_t)getpid();
  if (souk__cluster_conf.id && souk__cluster_conf.id[0])
    snprintf(C.id, sizeof C.id, "%s", souk__cluster_conf.id);
  else
    snprintf(C.id, sizeof C.id, "%s:%" PRId64, C.host, C.pid);
  snprintf(C.token, sizeof C.token, "%016" PRIx64 ":%s", souk_rand64(), C.id);
  snprintf(C.version, sizeof C.version, "%s", o->version ? o->version : "?");
  C.started_unix = o->unix_started_ms ? o->unix_started_ms : souk_unix_ms();
  C.ttl = (uint64_t)(souk__cluster_conf.lease_ttl_ms > 0 ? souk__cluster_conf.lease_ttl_ms : 3000);
  C.hb = (uint64_t)(souk__cluster_conf.heartbeat_ms > 0 ? souk__cluster_conf.heartbeat_ms : 1000);
  if (o->store && souk_store_read(o->store, read_floor_fn, &C.floor) != 0) C.floor = 0;
  if (redis) {
    C.k_members = key(o->key_prefix, "members");
    C.k_info = key(o->key_prefix, "info");
    C.k_lease = key(o->key_prefix, "lease");
    C.k_fence = key(o->key_prefix, "fence");
    C.k_events = key(o->key_prefix, "events");
    souk__redis_link_conf_t lc = {.url = o->redis_url,
                                  .timeout_ms = REDIS_TIMEOUT,
                                  .up = redis_up,
                                  .down = redis_down,
                                  .oldest = redis_oldest,
                                  .ud = &C /* replies check the owner */};
    if (souk__redis_link_new(&lc, &C.link) != 0) {
      SOUK_ERROR(COMP, "cluster: expected redis://[:password@]host[:port][/db] as cache.url");
      free_state();
      return SOUK_ECONFIG;
    }
    souk__redis_link_conf_t sc = {.url = o->redis_url,
                                  .timeout_ms = REDIS_TIMEOUT,
                                  .up = sub_up,
                                  .down = sub_down,
                                  .ud = &C};
    souk__redis_link_new(&sc, &C.sub);
    souk__settings_set_publish(souk__cluster_publish_setting, NULL);
  }
  if (C.mode == SOUK_CLUSTER_POSTGRES) {
    C.pg = souk__pglock_new(o->store_url, o->connect_timeout_ms, pg_key(o->key_prefix));
    C.engine_up = true; /* until the first try says otherwise */
  }
  C.running = true;
  C.tick = souk_timer_every(TICK_MS, tick_cb, NULL, 1);
  souk_health_register("cluster", health_check, NULL);
  metrics_init();
  static const char *const names[] = {"one process (no lease)", "redis", "postgres"};
  SOUK_INFO(COMP, "cluster: process %s, lease: %s%s (ttl %" PRIu64 " ms)", C.id, names[C.mode],
            C.mode == SOUK_CLUSTER_SINGLE ? "" : ", fenced", C.ttl);
  if (C.mode == SOUK_CLUSTER_POSTGRES) pg_submit(false);
  return 0;
}

static void stop_done_cb(uv_timer_t *t) {
  (void)t;
  souk_timer_free(&C.stop_timer);
  souk__redis_link_free(C.link);
  C.link = NULL;
  free_state();
}

static void bye_reply_cb(redisAsyncContext *ac, void *reply, void *priv) {
  pend_t *p = priv;
  pend_free(p);
  (void)ac;
  (void)reply;
  /* The goodbye is in: let the link go now, from the loop (not from
   * inside hiredis's callback). */
  if (C.stop_timer) uv_timer_start(C.stop_timer, stop_done_cb, 0, 0);
}

void souk__cluster_stop(void) {
  if (!C.running) return;
  C.stopping = true;
  souk_timer_free(&C.tick);
  souk_health_unregister("cluster");
  souk__settings_set_publish(NULL, NULL);
  bool was_leader = C.leader;
  C.leader = false; /* not announced: the watchers have stopped already */
  souk__redis_link_free(C.sub);
  C.sub = NULL;
  if (C.pg) {
    /* The lock's connection is released and closed on the pool; a job
     * using it now must finish first (two pool threads must never share
     * one libpq connection), and its completion submits the release. */
    if (C.pg_busy)
      C.pg_orphan = C.pg;
    else
      pg_release_submit(C.pg);
    C.pg = NULL;
  }
  /* Replies still owed only free their record from now on. */
  for (pend_t *p = C.pend; p;) {
    pend_t *n = p->next;
    p->dead = true;
    p->prev = p->next = NULL;
    p = n;
  }
  C.pend = NULL;
  redisAsyncContext *ac = C.link ? souk__redis_link_ac(C.link) : NULL;
  C.running = false;
  if (ac) {
    /* Leave the member list, and hand the lease back, so another process
     * takes over now rather than after the TTL. */
    const char *argv[] = {"EVAL",    BYE_LUA,   "3",  C.k_lease, C.k_members,
                          C.k_info, C.token,   C.id};
    size_t lens[8];
    for (int i = 0; i < 8; i++)
      lens[i] = strlen(argv[i]);
    pend_t *p = souk_calloc(1, sizeof *p);
    p->dead = true;
    if (redisAsyncCommandArgv(ac, bye_reply_cb, p, 8, argv, lens) == REDIS_OK) {
      C.stop_timer = souk_malloc(sizeof *C.stop_timer);
      uv_timer_init(souk_loop(), C.stop_timer);
      uv_timer_start(C.stop_timer, stop_done_cb, STOP_WAIT_MS, 0);
      if (was_leader) SOUK_INFO(COMP, "cluster: handing the lease back");
      return;
    }
    souk_free(p);
  }
  souk__redis_link_free(C.link);
  C.link = NULL;
  free_state();
}

void souk__cluster_fake(souk_cluster_mode_t mode, const char *id, bool leader, int64_t fence) {
  C.fake = true;
  C.mode = mode;
  snprintf(C.id, sizeof C.id, "%s", id ? id : "test");
  bool was = C.leader;
  C.leader = leader;
  C.fence = leader ? fence : 0;
  if (was != leader) notify();
}
