/* The cache front end: categories, statistics, the `cache` config section,
 * deferred completions, and the Redis backend with its memory fallback.
 *
 * Routing: a command goes to Redis only while the connection is ready (it
 * connected and answered the handshake's PING); otherwise the memory backend
 * serves it at once.  A command already sent to Redis whose connection then
 * dies gets a NULL reply from hiredis; it is re-served from memory, so no
 * command fails because Redis went away.  A reply (or a connect) slower
 * than cache.command_timeout counts as Redis going away too: a stopped or
 * partitioned server must not stall every caller.
 *
 * After an outage the connection first invalidates what this process
 * changed while memory served (R_REPLAY), then takes commands again; see
 * the consistency notes in souk/cache.h. */
#include "cache/cache_int.h"
#include "cache/redisconn.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>

#define MAX_CATS      64
#define DIRTY_BYTES   (1u << 20) /* key memory remembered during an outage */
#define DEL_BATCH     1000       /* keys per replayed DEL */
#define KEY_MAX       4096       /* longest key or pattern, in bytes */
#define DIRTY_PAT_MAX 64         /* patterns remembered during an outage */
#define SCAN_COUNT    "1000"     /* keys per SCAN step */
#define SWEEP_BUCKETS 4096       /* buckets looked at per sweep tick */

/* ---- config ------------------------------------------------------------- */

souk_cache_conf_t souk__cache_conf;

#define K(field) offsetof(souk_cache_conf_t, field)
const souk_conf_key_t souk__cache_conf_keys[] = {
    {"url", SOUK_CONF_STRING, K(url), NULL, 0, 1024, NULL, SOUK_CONF_SECRET,
     "Redis URL redis://[:password@]host:port[/db]; unset: in-process memory only "
     "(set SOUK_CACHE_URL in the environment when it holds a password)"},
    {"memory_max", SOUK_CONF_SIZE, K(memory_max), "64MB", 4096, 0, NULL, 0,
     "byte budget of the in-process cache (keys, values and per-entry overhead)"},
    {"key_prefix", SOUK_CONF_STRING, K(key_prefix), "souk:", 0, 64, NULL, 0,
     "prefix of every Redis key, one per deployment sharing a server"},
    {"ttl_default", SOUK_CONF_DURATION, K(ttl_default_ms), "5m", 1, 0, NULL, 0,
     "TTL of data categories that have no TTL of their own"},
    {"ttl", SOUK_CONF_STRING_LIST, K(ttl), NULL, 0, 0, NULL, 0,
     "per-category TTLs as name=duration, e.g. [auctions=60s, prices=5m]"},
    {"value_max", SOUK_CONF_SIZE, K(value_max), "8MB", 1, 512LL << 20, NULL, 0,
     "largest value one set may store"},
    {"reconnect.min", SOUK_CONF_DURATION, K(reconnect_min_ms), "250ms", 10, 0, NULL, 0,
     "first delay before reconnecting to Redis"},
    {"reconnect.max", SOUK_CONF_DURATION, K(reconnect_max_ms), "30s", 10, 0, NULL, 0,
     "longest delay between reconnection attempts (the delay doubles up to it)"},
    {"command_timeout", SOUK_CONF_DURATION, K(command_timeout_ms), "2s", 20, 600000, NULL, 0,
     "a Redis reply (or connect) slower than this switches the cache to memory"},
    {"sweep_interval", SOUK_CONF_DURATION, K(sweep_interval_ms), "1s", 10, 0, NULL, 0,
     "period of the sweep that drops expired in-process entries"},
    {0},
};

/* ---- types -------------------------------------------------------------- */

enum { OP_GET, OP_SET, OP_DEL, OP_CLEAR };
/* R_REPLAY: connected, invalidating what changed during the outage; commands
 * stay on memory until that is done. */
enum { R_OFF, R_CONNECTING, R_REPLAY, R_UP, R_WAIT };

typedef struct op op_t;
struct op {
  op_t *prev, *next; /* in-flight list, or the completion queue */
  souk_cache_t *c;
  int kind, cat, status;
  char *key; /* GET/SET/DEL: the key; CLEAR: the pattern (no prefix) */
  size_t klen;
  char *val; /* SET: the value; GET from memory: a copy of the result */
  size_t vlen;
  uint64_t ttl_ms, sent_ms, gen;
  bool internal; /* an invalidation replayed after an outage */
  bool last_del; /* CLEAR: the reply is the final DEL, not a SCAN */
  souk_cache_get_cb get_cb;
  souk_cache_done_cb done_cb;
  void *ud;
};

typedef struct cat {
  char *name;
  uint64_t ttl_ms;
  uint64_t hits, misses, sets;
} cat_t;

/* Keys and patterns changed while memory served; all: too many to list.
 * The keys live in a memory table of empty values, which removes
 * duplicates and bounds them in bytes. */
typedef struct dirty {
  souk__mem_t keys; /* buckets NULL until the first key */
  char **pats;
  size_t npats;
  bool all;
} dirty_t;

typedef struct ttl_override {
  char *name;
  uint64_t ttl_ms;
} ttl_override_t;

struct souk_cache {
  souk__mem_t mem;
  souk_cache_counters_t cmem, credis;
  cat_t cats[MAX_CATS];
  int ncats;
  ttl_override_t *overrides;
  size_t noverrides;
  uint64_t ttl_default_ms, value_max, sweep_ms;
  /* Deferred completions, run from a zero-delay timer. */
  uv_timer_t defer;
  op_t *done_head, *done_tail;
  uv_timer_t sweep;
  /* Redis. */
  bool redis;
  souk__redis_link_t *link; /* the connection (src/cache/redisconn.c) */
  char *prefix, *prefix_glob;
  int rstate;
  uint64_t gen;  /* connections used, so late replies can be told apart */
  bool up_back;  /* this connection came back after a loss (for the log) */
  op_t inflight; /* sentinel of commands sent and not answered */
  unsigned ninflight;
  uint64_t backoff_min, backoff_max, timeout_ms;
  uint64_t downs, ups, fallbacks, reserved;
  /* What changed while memory served, to invalidate in Redis once back. */
  dirty_t dirty;  /* accumulating */
  dirty_t replay; /* being invalidated in Redis now */
  unsigned replay_pending;
  bool replay_failed;
  uint64_t replay_started;
  bool closing;
  int open_handles; /* handles and requests to wait for before freeing */
};

/* ---- small helpers -------------------------------------------------------- */

static void op_free(op_t *op) {
  souk_free(op->key);
  souk_free(op->val);
  souk_free(op);
}

static void list_add(op_t *head, op_t *op) {
  op->prev = head->prev;
  op->next = head;
  head->prev->next = op;
  head->prev = op;
}

static void list_del(op_t *op) {
  op->prev->next = op->next;
  op->next->prev = op->prev;
  op->prev = op->next = NULL;
}

static void call_cb(op_t *op, int status, const void *val, size_t len) {
  if (op->kind == OP_GET) {
    if (op->get_cb) op->get_cb(op->ud, status, val, len);
  } else if (op->done_cb) {
    op->done_cb(op->ud, status);
  }
}

static void defer_cb(uv_timer_t *t) {
  souk_cache_t *c = t->data;
  /* Take the queue as it is: callbacks that add to it run next tick, so a
   * caller looping on get cannot starve the loop. */
  op_t *op = c->done_head;
  c->done_head = c->done_tail = NULL;
  while (op) {
    op_t *next = op->next;
    call_cb(op, op->status, op->val, op->vlen);
    op_free(op);
    op = next;
  }
}

static void complete_later(souk_cache_t *c, op_t *op, int status) {
  op->status = status;
  op->next = NULL;
  if (c->done_tail)
    c->done_tail->next = op;
  else
    c->done_head = op;
  c->done_tail = op;
  if (!uv_is_active((uv_handle_t *)&c->defer)) uv_timer_start(&c->defer, defer_cb, 0, 0);
}

static char *prefixed(const souk_cache_t *c, const char *key, size_t klen, size_t *out_len) {
  size_t pl = strlen(c->prefix);
  char *s = souk_malloc(pl + klen + 1);
  memcpy(s, c->prefix, pl);
  memcpy(s + pl, key, klen);
  s[pl + klen] = '\0';
  *out_len = pl + klen;
  return s;
}

/* "name=duration" entries: 250ms, 30s, 5m, 4h, 1d, 1h30m, or bare seconds. */
static bool parse_duration(const char *s, uint64_t *out) {
  uint64_t total = 0;
  if (!*s) return false;
  while (*s) {
    if (!isdigit((unsigned char)*s)) return false;
    uint64_t n = 0;
    while (isdigit((unsigned char)*s)) {
      if (n > UINT64_MAX / 10 / 86400000u) return false;
      n = n * 10 + (uint64_t)(*s++ - '0');
    }
    uint64_t unit;
    if (strncmp(s, "ms", 2) == 0)
      unit = 1, s += 2;
    else if (*s == 's' || *s == '\0')
      unit = 1000, s += *s ? 1 : 0;
    else if (*s == 'm')
      unit = 60000, s++;
    else if (*s == 'h')
      unit = 3600000, s++;
    else if (*s == 'd')
      unit = 86400000, s++;
    else
      return false;
    total += n * unit;
  }
  *out = total;
  return total > 0;
}

/* cache.url and each cache.ttl entry are checked with the rest of the
 * configuration, so a typo stops souk before anything starts. */
static bool check_url(const char *v, souk_buf_t *expected) {
  souk__redis_url_t u = {0};
  if (souk__redis_url_parse(v, &u) == 0) {
    souk__redis_url_free(&u);
    return true;
  }
  souk_buf_puts(expected, "redis://[[user]:password@]host[:port][/db]");
  return false;
}

static bool check_ttl(const char *v, souk_buf_t *expected) {
  const char *eq = strchr(v, '=');
  uint64_t ms;
  if (eq && eq != v && parse_duration(eq + 1, &ms)) return true;
  souk_buf_puts(expected, "name=duration entries such as prices=5m");
  return false;
}

const souk_conf_check_t souk__cache_conf_checks[] = {
    {"url", check_url},
    {"ttl", check_ttl},
    {0},
};

/* The prefix with glob characters escaped, for SCAN MATCH. */
static char *glob_escape(const char *s) {
  size_t n = strlen(s);
  char *out = souk_malloc(2 * n + 1), *o = out;
  for (; *s; s++) {
    if (strchr("*?[]\\", *s)) *o++ = '\\';
    *o++ = *s;
  }
  *o = '\0';
  return out;
}

/* ---- memory execution ------------------------------------------------------ */

static void count_get(souk_cache_t *c, souk_cache_counters_t *k, int cat, bool hit) {
  if (hit) {
    k->hits++;
    c->cats[cat].hits++;
  } else {
    k->misses++;
    c->cats[cat].misses++;
  }
}

static void dirty_add_key(dirty_t *d, const char *key, size_t klen) {
  if (d->all) return;
  if (!d->keys.buckets) souk__mem_init(&d->keys, DIRTY_BYTES, NULL);
  souk__mem_set(&d->keys, key, klen, "", 0, 0, 0);
  if (d->keys.evictions) {
    /* Too much changed to remember: clear the whole prefix when back. */
    d->all = true;
    souk__mem_free(&d->keys);
  }
}

static void dirty_add_pat(dirty_t *d, const char *pat) {
  if (d->all) return;
  if (d->npats == DIRTY_PAT_MAX || strcmp(pat, "*") == 0) {
    d->all = true;
    return;
  }
  d->pats = souk_reallocarray(d->pats, d->npats + 1, sizeof *d->pats);
  d->pats[d->npats++] = souk_strdup(pat);
}

static void dirty_free(dirty_t *d) {
  if (d->keys.buckets) souk__mem_free(&d->keys);
  for (size_t i = 0; i < d->npats; i++)
    souk_free(d->pats[i]);
  souk_free(d->pats);
  memset(d, 0, sizeof *d);
}

static bool dirty_empty(const dirty_t *d) { return !d->all && !d->keys.count && !d->npats; }

/* Adds src's entries to dst and empties src. */
static void dirty_merge(dirty_t *dst, dirty_t *src) {
  if (src->all) dst->all = true;
  if (src->keys.buckets) {
    for (souk__lru_t *n = src->keys.lru.next; n != &src->keys.lru; n = n->next) {
      const souk__mem_entry_t *e = (const souk__mem_entry_t *)n;
      dirty_add_key(dst, e->data, e->klen);
    }
  }
  for (size_t i = 0; i < src->npats; i++)
    dirty_add_pat(dst, src->pats[i]);
  dirty_free(src);
}

static void dirty_key(souk_cache_t *c, const char *key, size_t klen) {
  if (c->redis) dirty_add_key(&c->dirty, key, klen);
}

static void dirty_pattern(souk_cache_t *c, const char *pat) {
  if (c->redis) dirty_add_pat(&c->dirty, pat);
}

/* Runs op on the memory backend now and queues its completion. */
static void mem_exec(souk_cache_t *c, op_t *op) {
  souk_cache_counters_t *k = &c->cmem;
  uint64_t ev = c->mem.evictions, ex = c->mem.expired;
  int status = 0;
  switch (op->kind) {
  case OP_GET: {
    const void *v;
    size_t n;
    status = souk__mem_get(&c->mem, op->key, op->klen, &v, &n);
    if (status == 0) op->val = souk_memdup0(v, n), op->vlen = n;
    count_get(c, k, op->cat, status == 0);
    break;
  }
  case OP_SET:
    souk__mem_set(&c->mem, op->key, op->klen, op->val, op->vlen, op->ttl_ms, op->cat);
    souk_free(op->val);
    op->val = NULL;
    op->vlen = 0;
    k->sets++;
    c->cats[op->cat].sets++;
    dirty_key(c, op->key, op->klen);
    break;
  case OP_DEL:
    souk__mem_del(&c->mem, op->key, op->klen);
    k->dels++;
    dirty_key(c, op->key, op->klen);
    break;
  case OP_CLEAR:
    souk__mem_clear(&c->mem, op->key);
    k->clears++;
    dirty_pattern(c, op->key);
    /* Only memory was cleared: Redis's keys go when it is back (the
     * pattern is remembered), and the caller must not say they are gone. */
    if (c->redis) status = SOUK_ECONN;
    break;
  }
  k->evictions += c->mem.evictions - ev;
  k->expired += c->mem.expired - ex;
  if (op->internal) {
    op_free(op);
    return;
  }
  complete_later(c, op, status);
}

/* ---- Redis ----------------------------------------------------------------- */

static int redis_send(souk_cache_t *c, op_t *op);

/* Redis is gone (or never came), and the link reconnects by itself:
 * route to memory meanwhile. */
static void redis_down(void *ud, const char *why, bool first, bool link_was_up) {
  souk_cache_t *c = ud;
  if (c->closing) return;
  bool was_up = c->rstate == R_UP;
  c->rstate = R_WAIT;
  c->credis.errors++;
  /* An unfinished invalidation is owed again on the next return. */
  c->replay_pending = 0;
  dirty_merge(&c->dirty, &c->replay);
  if (first) {
    const souk__redis_url_t *u = souk__redis_link_url(c->link);
    SOUK_WARN("cache", "cache: redis unreachable, using memory (%s:%d: %s)", u->host, u->port, why);
    c->downs++;
  } else {
    SOUK_DEBUG("cache", "cache: redis reconnect failed: %s", why);
  }
  if (was_up) {
    /* Memory may hold entries from an earlier outage that Redis has since
     * replaced; serving them now would be staler than the outage. */
    souk__mem_clear(&c->mem, NULL);
  }
}

static bool reply_is_error(const redisReply *r) { return r->type == REDIS_REPLY_ERROR; }

static void go_up(souk_cache_t *c) {
  c->rstate = R_UP;
  if (c->up_back) {
    SOUK_INFO("cache", "cache: redis back");
    c->ups++;
  } else {
    const souk__redis_url_t *u = souk__redis_link_url(c->link);
    SOUK_INFO("cache", "cache: redis connected (%s:%d db %d)", u->host, u->port, u->db);
  }
  c->up_back = false;
  /* What memory held is now either in Redis's past or invalidated there;
   * keeping it would only cost bytes and serve stale data next outage. */
  souk__mem_clear(&c->mem, NULL);
}

static void replay_start(souk_cache_t *c);

static void replay_step_done(souk_cache_t *c, uint64_t gen, bool ok) {
  if (gen != c->gen || c->rstate != R_REPLAY || c->replay_pending == 0) return;
  if (!ok) c->replay_failed = true;
  c->replay_started = souk_now_ms();
  if (--c->replay_pending > 0) return;
  if (c->replay_failed)
    SOUK_WARN("cache", "cache: redis refused to invalidate keys changed during the outage; "
                       "they may be stale until their TTL");
  dirty_free(&c->replay);
  /* Commands served by memory while this ran changed keys too. */
  if (!dirty_empty(&c->dirty))
    replay_start(c);
  else
    go_up(c);
}

static void replay_del_cb(redisAsyncContext *ac, void *reply, void *priv) {
  souk_cache_t *c = souk__redis_link_owner(ac);
  redisReply *r = reply;
  if (!c || c->closing || !r) return;
  replay_step_done(c, (uint64_t)(uintptr_t)priv, !reply_is_error(r));
}

static void replay_clear(souk_cache_t *c, const char *pat) {
  op_t *op = souk_calloc(1, sizeof *op);
  op->c = c;
  op->kind = OP_CLEAR;
  op->internal = true;
  op->key = souk_strdup(pat);
  op->klen = strlen(pat);
  c->replay_pending++;
  if (redis_send(c, op) != 0) {
    c->replay_pending--;
    c->replay_failed = true;
    op_free(op);
  }
}

/* Deletes in Redis what changed while memory served, before Redis serves
 * again: otherwise it would answer with the value from before the outage.
 * Commands stay on memory meanwhile (R_REPLAY); patterns need SCAN round
 * trips, so they could not simply be pipelined ahead of new commands. */
static void replay_start(souk_cache_t *c) {
  c->rstate = R_REPLAY;
  c->replay = c->dirty;
  /* The LRU list's sentinel moved with the struct: relink its neighbours. */
  souk__mem_t *k = &c->replay.keys;
  if (k->buckets && k->count) {
    k->lru.next->prev = &k->lru;
    k->lru.prev->next = &k->lru;
  } else {
    k->lru.next = k->lru.prev = &k->lru;
  }
  memset(&c->dirty, 0, sizeof c->dirty);
  c->replay_failed = false;
  c->replay_pending = 1; /* held until everything is sent */
  c->replay_started = souk_now_ms();
  dirty_t *d = &c->replay;
  if (d->all) {
    replay_clear(c, "*");
  } else {
    const char *argv[DEL_BATCH + 1];
    size_t lens[DEL_BATCH + 1];
    size_t n = 1;
    argv[0] = "DEL";
    lens[0] = 3;
    const souk__lru_t *head = &d->keys.lru;
    for (const souk__lru_t *node = d->keys.buckets ? head->next : head;; node = node->next) {
      if (node != head) {
        const souk__mem_entry_t *e = (const souk__mem_entry_t *)node;
        argv[n] = prefixed(c, e->data, e->klen, &lens[n]), n++;
      }
      if (n > 1 && (n == DEL_BATCH + 1 || node == head)) {
        c->replay_pending++;
        if (redisAsyncCommandArgv(souk__redis_link_ac(c->link), replay_del_cb,
                                  (void *)(uintptr_t)c->gen, (int)n, argv, lens) != REDIS_OK) {
          c->replay_pending--;
          c->replay_failed = true;
        }
        for (size_t i = 1; i < n; i++)
          souk_free((char *)argv[i]);
        n = 1;
      }
      if (node == head) break;
    }
    for (size_t i = 0; i < d->npats; i++)
      replay_clear(c, d->pats[i]);
  }
  replay_step_done(c, c->gen, true);
}

/* The link's handshake was answered: invalidate what changed during the
 * outage first, if anything did, then take commands. */
static void redis_up(void *ud, redisAsyncContext *ac, bool back) {
  souk_cache_t *c = ud;
  if (c->closing) return;
  c->gen++;
  c->up_back = back;
  if (dirty_empty(&c->dirty))
    go_up(c);
  else
    replay_start(c);
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv);

static int send_scan(souk_cache_t *c, op_t *op, const char *cursor, size_t clen) {
  size_t plen = strlen(c->prefix_glob);
  char *match = souk_malloc(plen + op->klen + 1);
  memcpy(match, c->prefix_glob, plen);
  memcpy(match + plen, op->key, op->klen + 1);
  const char *argv[] = {"SCAN", cursor, "MATCH", match, "COUNT", SCAN_COUNT};
  size_t lens[] = {4, clen, 5, plen + op->klen, 5, strlen(SCAN_COUNT)};
  int rc = redisAsyncCommandArgv(souk__redis_link_ac(c->link), reply_cb, op, 6, argv, lens);
  souk_free(match);
  return rc;
}

/* Sends op to Redis and adds it to the in-flight list; -1 if hiredis would
 * not take it (the caller serves it from memory). */
static int redis_send(souk_cache_t *c, op_t *op) {
  redisAsyncContext *ac = souk__redis_link_ac(c->link);
  if (!ac || !(c->rstate == R_UP || (op->internal && c->rstate == R_REPLAY))) return -1;
  size_t klen = 0;
  char *key = NULL;
  int rc;
  if (op->kind == OP_CLEAR) {
    rc = send_scan(c, op, "0", 1);
  } else {
    key = prefixed(c, op->key, op->klen, &klen);
    if (op->kind == OP_GET) {
      const char *argv[] = {"GET", key};
      size_t lens[] = {3, klen};
      rc = redisAsyncCommandArgv(ac, reply_cb, op, 2, argv, lens);
    } else if (op->kind == OP_SET) {
      char ttl[24];
      int tl = snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)op->ttl_ms);
      const char *argv[] = {"SET", key, op->val ? op->val : "", "PX", ttl};
      size_t lens[] = {3, klen, op->vlen, 2, (size_t)tl};
      rc = redisAsyncCommandArgv(ac, reply_cb, op, 5, argv, lens);
    } else {
      const char *argv[] = {"DEL", key};
      size_t lens[] = {3, klen};
      rc = redisAsyncCommandArgv(ac, reply_cb, op, 2, argv, lens);
    }
  }
  souk_free(key);
  if (rc != REDIS_OK) return -1;
  op->sent_ms = souk_now_ms();
  op->gen = c->gen;
  list_add(&c->inflight, op);
  c->ninflight++;
  return 0;
}

/* A CLEAR step came back: delete the keys found and scan on. */
static void clear_step(souk_cache_t *c, op_t *op, redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
    c->credis.errors++;
    goto fail;
  }
  redisReply *keys = r->element[1];
  bool done = r->element[0]->len == 1 && r->element[0]->str[0] == '0';
  /* The cluster's coordination keys (<prefix>cluster:..., src/ops/cluster.h:
   * the lease, its fencing counter, the member list, the shared REST
   * limit) are not cached data: deleting the lease would let a second
   * process lead.  A clear never touches them. */
  size_t n = 1, plen = strlen(c->prefix);
  const char **argv = souk_calloc(keys->elements + 1, sizeof *argv);
  size_t *lens = souk_calloc(keys->elements + 1, sizeof *lens);
  argv[0] = "DEL";
  lens[0] = 3;
  for (size_t i = 0; i < keys->elements; i++) {
    const redisReply *k = keys->element[i];
    if (!k->str) continue;
    if (k->len >= plen + 8 && !memcmp(k->str + plen, "cluster:", 8)) continue;
    argv[n] = k->str;
    lens[n++] = k->len;
  }
  if (n > 1) {
    /* The final DEL carries the op: Redis answers in order, so its reply
     * means every earlier batch is gone too. */
    int rc = redisAsyncCommandArgv(souk__redis_link_ac(c->link), done ? reply_cb : NULL,
                                   done ? op : NULL, (int)n, argv, lens);
    souk_free(argv);
    souk_free(lens);
    if (rc != REDIS_OK) goto lost;
    if (done) {
      op->last_del = true;
      goto requeue;
    }
  } else if (done) {
    souk_free(argv);
    souk_free(lens);
    c->credis.clears++;
    if (op->internal) {
      replay_step_done(c, op->gen, true);
      op_free(op);
    } else {
      call_cb(op, 0, NULL, 0);
      op_free(op);
    }
    return;
  }
  if (n == 1) {
    souk_free(argv);
    souk_free(lens);
  }
  if (send_scan(c, op, r->element[0]->str, r->element[0]->len) != REDIS_OK) goto lost;
requeue:
  op->sent_ms = souk_now_ms();
  list_add(&c->inflight, op);
  c->ninflight++;
  return;
lost:
  /* hiredis refused the command: the context is going away. */
  c->fallbacks++;
  mem_exec(c, op);
  return;
fail:
  if (op->internal) {
    replay_step_done(c, op->gen, false);
    op_free(op);
    return;
  }
  call_cb(op, SOUK_EIO, NULL, 0);
  op_free(op);
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv) {
  op_t *op = priv;
  souk_cache_t *c = op->c;
  redisReply *r = reply;
  list_del(op);
  c->ninflight--;
  if (c->closing) {
    if (!op->internal) call_cb(op, SOUK_ECANCELED, NULL, 0);
    op_free(op);
    return;
  }
  if (!r) {
    /* The connection died with this command unanswered: mark Redis down
     * first (so the memory backend is the one that answers from now on),
     * then run the command there. */
    souk__redis_link_lost(c->link, ac, ac->errstr[0] ? ac->errstr : "connection lost");
    if (op->internal) {
      op_free(op);
      return;
    }
    c->fallbacks++;
    c->reserved++;
    mem_exec(c, op);
    return;
  }
  if (op->kind == OP_CLEAR && !op->last_del && !reply_is_error(r)) {
    clear_step(c, op, r);
    return;
  }
  if (op->internal) {
    if (!reply_is_error(r)) c->credis.clears++;
    replay_step_done(c, op->gen, !reply_is_error(r));
    op_free(op);
    return;
  }
  if (reply_is_error(r)) {
    c->credis.errors++;
    SOUK_DEBUG("cache", "cache: redis error reply: %.*s", (int)(r->len > 200 ? 200 : r->len),
               r->str);
    call_cb(op, SOUK_EIO, NULL, 0);
    op_free(op);
    return;
  }
  int status = 0;
  switch (op->kind) {
  case OP_GET:
    if (r->type == REDIS_REPLY_STRING) {
      count_get(c, &c->credis, op->cat, true);
      call_cb(op, 0, r->str, r->len);
      op_free(op);
      return;
    }
    if (r->type == REDIS_REPLY_NIL) {
      count_get(c, &c->credis, op->cat, false);
      status = SOUK_ENOTFOUND;
    } else {
      c->credis.errors++;
      status = SOUK_EPROTO;
    }
    break;
  case OP_SET:
    c->credis.sets++;
    c->cats[op->cat].sets++;
    break;
  case OP_DEL:
    c->credis.dels++;
    break;
  case OP_CLEAR:
    c->credis.clears++;
    break;
  }
  call_cb(op, status, NULL, 0);
  op_free(op);
}

/* When the oldest reply still owed was asked: the link drops a
 * connection that stopped answering, and hiredis then calls every pending
 * reply with NULL, which re-serves them from memory. */
static uint64_t redis_oldest(void *ud) {
  souk_cache_t *c = ud;
  if (c->rstate == R_REPLAY)
    /* A large SCAN + DEL may take many steps: time the current one. */
    return c->ninflight ? c->inflight.next->sent_ms : c->replay_started;
  return c->ninflight ? c->inflight.next->sent_ms : UINT64_MAX;
}

/* ---- sweep ----------------------------------------------------------------- */

size_t souk__cache_sweep(souk_cache_t *c) {
  /* A sixteenth of the table per tick, so a full pass takes 16 ticks
   * however large the table grows, and never fewer than SWEEP_BUCKETS. */
  size_t buckets = c->mem.nbuckets / 16;
  size_t n = souk__mem_sweep(&c->mem, buckets > SWEEP_BUCKETS ? buckets : SWEEP_BUCKETS);
  c->cmem.expired += n;
  return n;
}

souk__mem_t *souk__cache_mem(souk_cache_t *c) { return &c->mem; }

static void sweep_cb(uv_timer_t *t) { souk__cache_sweep(t->data); }

/* ---- public API -------------------------------------------------------------- */

int souk_cache_new(const souk_cache_conf_t *conf, const souk_clock_t *clock, souk_cache_t **out) {
  if (!conf || !out || conf->memory_max <= 0) return SOUK_EINVAL;
  souk_cache_t *c = souk_calloc(1, sizeof *c);
  souk__mem_init(&c->mem, (size_t)conf->memory_max, clock);
  c->ttl_default_ms = conf->ttl_default_ms > 0 ? (uint64_t)conf->ttl_default_ms : 300000;
  c->value_max = conf->value_max > 0 ? (uint64_t)conf->value_max : 8u << 20;
  c->sweep_ms = conf->sweep_interval_ms > 0 ? (uint64_t)conf->sweep_interval_ms : 1000;
  c->backoff_min = conf->reconnect_min_ms > 0 ? (uint64_t)conf->reconnect_min_ms : 250;
  c->backoff_max = conf->reconnect_max_ms > 0 ? (uint64_t)conf->reconnect_max_ms : 30000;
  c->timeout_ms = conf->command_timeout_ms > 0 ? (uint64_t)conf->command_timeout_ms : 2000;
  c->prefix = souk_strdup(conf->key_prefix ? conf->key_prefix : "");
  c->prefix_glob = glob_escape(c->prefix);
  c->inflight.next = c->inflight.prev = &c->inflight;
  c->cats[0].name = souk_strdup("default");
  c->cats[0].ttl_ms = c->ttl_default_ms;
  c->ncats = 1;
  int rc = 0;
  for (size_t i = 0; i < conf->ttl.n; i++) {
    const char *e = conf->ttl.v[i], *eq = strchr(e, '=');
    uint64_t ms;
    if (!eq || eq == e || !parse_duration(eq + 1, &ms)) {
      SOUK_ERROR("cache", "cache.ttl: \"%s\" is not name=duration (e.g. prices=5m)", e);
      rc = SOUK_ECONFIG;
      continue;
    }
    c->overrides = souk_reallocarray(c->overrides, c->noverrides + 1, sizeof *c->overrides);
    c->overrides[c->noverrides].name = souk_strndup(e, (size_t)(eq - e));
    c->overrides[c->noverrides++].ttl_ms = ms;
    if (strncmp(e, "default", (size_t)(eq - e)) == 0 && eq - e == 7) c->cats[0].ttl_ms = ms;
  }
  if (rc == 0 && conf->url && conf->url[0]) {
    /* Checked here, so a bad URL fails the start; the link parses it
     * again below, once the cache is ready for its callbacks. */
    souk__redis_url_t u = {0};
    rc = souk__redis_url_parse(conf->url, &u);
    souk__redis_url_free(&u);
    if (rc)
      SOUK_ERROR("cache", "cache.url: expected redis://[:password@]host[:port][/db]");
    else
      c->redis = true;
  }
  uv_timer_init(souk_loop(), &c->defer);
  uv_timer_init(souk_loop(), &c->sweep);
  c->defer.data = c->sweep.data = c;
  c->open_handles = 2;
  if (rc) {
    souk_cache_close(c);
    return rc;
  }
  /* Maintenance timers must not keep the loop alive on their own. */
  uv_timer_start(&c->sweep, sweep_cb, c->sweep_ms, c->sweep_ms);
  uv_unref((uv_handle_t *)&c->sweep);
  c->rstate = R_OFF;
  if (c->redis) {
    c->rstate = R_CONNECTING;
    souk__redis_link_conf_t lc = {.url = conf->url,
                                  .backoff_min_ms = c->backoff_min,
                                  .backoff_max_ms = c->backoff_max,
                                  .timeout_ms = c->timeout_ms,
                                  .up = redis_up,
                                  .down = redis_down,
                                  .oldest = redis_oldest,
                                  .ud = c};
    souk__redis_link_new(&lc, &c->link);
  }
  *out = c;
  return 0;
}

static void handle_closed(uv_handle_t *h) {
  souk_cache_t *c = h->data;
  if (--c->open_handles > 0) return;
  souk_free(c);
}

void souk_cache_close(souk_cache_t *c) {
  if (!c || c->closing) return;
  c->closing = true;
  /* Frees the connection, which calls every in-flight reply callback with
   * NULL: each op sees closing and completes with SOUK_ECANCELED. */
  souk__redis_link_free(c->link);
  c->link = NULL;
  op_t *op = c->done_head;
  c->done_head = c->done_tail = NULL;
  while (op) {
    op_t *next = op->next;
    call_cb(op, SOUK_ECANCELED, NULL, 0);
    op_free(op);
    op = next;
  }
  souk__mem_free(&c->mem);
  dirty_free(&c->dirty);
  dirty_free(&c->replay);
  for (int i = 0; i < c->ncats; i++)
    souk_free(c->cats[i].name);
  for (size_t i = 0; i < c->noverrides; i++)
    souk_free(c->overrides[i].name);
  souk_free(c->overrides);
  souk_free(c->prefix);
  souk_free(c->prefix_glob);
  uv_close((uv_handle_t *)&c->defer, handle_closed);
  uv_close((uv_handle_t *)&c->sweep, handle_closed);
}

int souk_cache_category(souk_cache_t *c, const char *name, uint64_t default_ttl_ms) {
  if (!c || !name || !name[0]) return SOUK_EINVAL;
  for (int i = 0; i < c->ncats; i++)
    if (strcmp(c->cats[i].name, name) == 0) return i;
  if (c->ncats == MAX_CATS) return SOUK_EFULL;
  uint64_t ttl = default_ttl_ms ? default_ttl_ms : c->ttl_default_ms;
  for (size_t i = 0; i < c->noverrides; i++)
    if (strcmp(c->overrides[i].name, name) == 0) ttl = c->overrides[i].ttl_ms;
  cat_t *k = &c->cats[c->ncats];
  memset(k, 0, sizeof *k);
  k->name = souk_strdup(name);
  k->ttl_ms = ttl;
  return c->ncats++;
}

uint64_t souk_cache_category_ttl(const souk_cache_t *c, int cat) {
  return c && cat >= 0 && cat < c->ncats ? c->cats[cat].ttl_ms : 0;
}

int souk_cache_category_count(const souk_cache_t *c) { return c ? c->ncats : 0; }

static bool key_ok(const char *key) {
  return key && key[0] && strnlen(key, KEY_MAX + 1) <= KEY_MAX;
}

static op_t *op_new(souk_cache_t *c, int kind, int cat, const char *key) {
  op_t *op = souk_calloc(1, sizeof *op);
  op->c = c;
  op->kind = kind;
  op->cat = cat;
  op->klen = strlen(key);
  op->key = souk_memdup0(key, op->klen);
  return op;
}

/* Sends op to Redis when it is up, else serves it from memory. */
static void dispatch(souk_cache_t *c, op_t *op) {
  if (c->redis && redis_send(c, op) == 0) return;
  if (c->redis) c->fallbacks++;
  mem_exec(c, op);
}

int souk_cache_get(souk_cache_t *c, int cat, const char *key, souk_cache_get_cb cb, void *ud) {
  if (!c || !key_ok(key) || !cb || cat < 0 || cat >= c->ncats) return SOUK_EINVAL;
  if (c->closing) return SOUK_ESTOPPED;
  op_t *op = op_new(c, OP_GET, cat, key);
  op->get_cb = cb;
  op->ud = ud;
  dispatch(c, op);
  return 0;
}

int souk_cache_set_ttl(souk_cache_t *c, int cat, const char *key, const void *val, size_t len,
                       uint64_t ttl_ms, souk_cache_done_cb cb, void *ud) {
  if (!c || !key_ok(key) || (!val && len) || ttl_ms == 0 || cat < 0 || cat >= c->ncats)
    return SOUK_EINVAL;
  if (c->closing) return SOUK_ESTOPPED;
  if (len > c->value_max) return SOUK_ETOOBIG;
  op_t *op = op_new(c, OP_SET, cat, key);
  op->val = souk_memdup0(val ? val : "", len);
  op->vlen = len;
  op->ttl_ms = ttl_ms;
  op->done_cb = cb;
  op->ud = ud;
  dispatch(c, op);
  return 0;
}

int souk_cache_set(souk_cache_t *c, int cat, const char *key, const void *val, size_t len,
                   souk_cache_done_cb cb, void *ud) {
  if (!c || cat < 0 || cat >= c->ncats) return SOUK_EINVAL;
  return souk_cache_set_ttl(c, cat, key, val, len, c->cats[cat].ttl_ms, cb, ud);
}

int souk_cache_del(souk_cache_t *c, const char *key, souk_cache_done_cb cb, void *ud) {
  if (!c || !key_ok(key)) return SOUK_EINVAL;
  if (c->closing) return SOUK_ESTOPPED;
  op_t *op = op_new(c, OP_DEL, 0, key);
  op->done_cb = cb;
  op->ud = ud;
  dispatch(c, op);
  return 0;
}

int souk_cache_clear(souk_cache_t *c, const char *pattern, souk_cache_done_cb cb, void *ud) {
  if (!c || !key_ok(pattern)) return SOUK_EINVAL;
  if (c->closing) return SOUK_ESTOPPED;
  op_t *op = op_new(c, OP_CLEAR, 0, pattern);
  op->done_cb = cb;
  op->ud = ud;
  dispatch(c, op);
  return 0;
}

size_t souk_cache_trim_to(souk_cache_t *c, size_t budget) {
  if (!c) return 0;
  uint64_t ev = c->mem.evictions, ex = c->mem.expired;
  size_t freed = souk__mem_trim_to(&c->mem, budget);
  c->cmem.evictions += c->mem.evictions - ev;
  c->cmem.expired += c->mem.expired - ex;
  return freed;
}

size_t souk_cache_trim(souk_cache_t *c, double fraction) {
  if (!c || !(fraction > 0)) return 0;
  if (fraction >= 1) return souk_cache_trim_to(c, 0);
  size_t drop = (size_t)((double)c->mem.bytes * fraction);
  return souk_cache_trim_to(c, c->mem.bytes - drop);
}

void souk_cache_stats(const souk_cache_t *c, souk_cache_stats_t *st) {
  memset(st, 0, sizeof *st);
  if (!c) return;
  st->memory = c->cmem;
  st->redis = c->credis;
  st->mem_bytes = c->mem.bytes;
  st->mem_max = c->mem.max_bytes;
  st->mem_entries = c->mem.count;
  st->redis_configured = c->redis;
  st->redis_up = c->rstate == R_UP;
  st->redis_downs = c->downs;
  st->redis_ups = c->ups;
  st->fallbacks = c->fallbacks;
  st->reserved = c->reserved;
  st->inflight = c->ninflight;
}

int souk_cache_category_stats(const souk_cache_t *c, int cat, souk_cache_cat_stats_t *st) {
  if (!c || !st || cat < 0 || cat >= c->ncats) return SOUK_EINVAL;
  const cat_t *k = &c->cats[cat];
  st->name = k->name;
  st->ttl_ms = k->ttl_ms;
  st->hits = k->hits;
  st->misses = k->misses;
  st->sets = k->sets;
  return 0;
}

bool souk_cache_redis_up(const souk_cache_t *c) { return c && c->rstate == R_UP; }
