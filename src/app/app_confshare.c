/* Run-time configuration changes shared by every process of the bot.
 *
 * `/admin config set` changes a key in the process that ran the command;
 * with several processes behind one bot the others must follow, or the
 * bot behaves differently depending on which shard a guild is on.  With
 * cache.url set, a change is also written to one Redis hash,
 *
 *   <prefix>conf   key -> value (as the key reads it back), and "~v", a
 *                  token set anew by every change (unique, not a counter:
 *                  a Redis that restarted empty must not hand out a
 *                  version a process has already seen),
 *
 * and every process polls "~v" once a second: when it moved, it reads the
 * hash and applies the values it does not have yet.  Polling rather than
 * PUBLISH: a message sent while a process is disconnected would be lost,
 * while the hash is there to read whenever it reconnects; a second is
 * soon enough for a setting.
 *
 * The hash lives as long as the bot: every process pushes its expiry 60 s
 * ahead every 20 s, so a rolling restart keeps the changes (a process
 * that starts applies them within a second) while a bot stopped for
 * longer starts again from its files, as "until the next restart" says.
 * A change made while Redis is unreachable applies here at once and is
 * written when Redis is back; a hash lost with Redis's data is written
 * again by the processes, from what they applied.  Secrets are never
 * written.
 *
 * Loop thread only.  The connection is a cache-layer link of its own. */
#include "app/app.h"
#include "cache/cacheconf.h"
#include "cache/redisconn.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define CS_LOG      "config"
#define CS_POLL_MS  1000
#define CS_KEEP_MS  60000 /* the hash outlives the last process by this */
#define CS_RENEW_MS 20000
#define CS_VERSION  "~v"

typedef struct kv {
  char *key, *value;
} kv_t;

static struct {
  bool on;
  souk__redis_link_t *link;
  bool up;
  char *hash;
  char *version; /* the last "~v" read (NULL: none yet) */
  bool asking;   /* a poll is in flight */
  kv_t *applied; /* what this process has of the shared values */
  size_t napplied;
  kv_t *pending; /* changes made here and not written yet */
  size_t npending;
  uint64_t renewed; /* when the expiry was last pushed ahead */
  unsigned written; /* changes written by this process */
  unsigned owed;    /* replies still owed */
  uint64_t sent_ms; /* about when the oldest of them was asked */
  uv_timer_t *timer;
  int (*apply)(const char *key, const char *value);
} C;

static kv_t *kv_find(kv_t *v, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(v[i].key, key)) return &v[i];
  return NULL;
}

static void kv_put(kv_t **v, size_t *n, const char *key, const char *value) {
  kv_t *e = kv_find(*v, *n, key);
  if (!e) {
    *v = souk_reallocarray(*v, *n + 1, sizeof **v);
    e = &(*v)[(*n)++];
    e->key = souk_strdup(key);
    e->value = NULL;
  }
  souk_free(e->value);
  e->value = souk_strdup(value);
}

static void kv_clear(kv_t **v, size_t *n) {
  for (size_t i = 0; i < *n; i++) {
    souk_free((*v)[i].key);
    souk_free((*v)[i].value);
  }
  souk_free(*v);
  *v = NULL;
  *n = 0;
}

/* ---- Redis ------------------------------------------------------------------ */

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv);

static bool send_argv(int argc, const char **argv, const size_t *lens, void *priv) {
  redisAsyncContext *ac = souk__redis_link_ac(C.link);
  if (!ac) return false;
  if (redisAsyncCommandArgv(ac, reply_cb, priv, argc, argv, lens) != REDIS_OK) {
    souk__redis_link_drop(C.link, ac, "cannot send a command");
    return false;
  }
  if (C.owed++ == 0) C.sent_ms = souk_now_ms();
  return true;
}

enum { R_WRITE = 1, R_VERSION, R_ALL };

static void renew(void);

/* Write the changes made here, each with a new version in the same
 * HSET, then push the hash's expiry ahead. */
static void write_pending(void) {
  for (size_t i = 0; i < C.npending; i++) {
    const char *k = C.pending[i].key, *v = C.pending[i].value;
    char ver[48];
    int n = snprintf(ver, sizeof ver, "%016" PRIx64 ":%u", souk_rand64(), ++C.written);
    const char *a[] = {"HSET", C.hash, k, v, CS_VERSION, ver};
    size_t l[] = {4, strlen(C.hash), strlen(k), strlen(v), strlen(CS_VERSION), (size_t)n};
    if (!send_argv(6, a, l, (void *)R_WRITE)) return;
  }
  kv_clear(&C.pending, &C.npending);
  renew();
}

static void renew(void) {
  char ms[16];
  int n = snprintf(ms, sizeof ms, "%d", CS_KEEP_MS);
  const char *a[] = {"PEXPIRE", C.hash, ms};
  size_t l[] = {7, strlen(C.hash), (size_t)n};
  if (send_argv(3, a, l, (void *)R_WRITE)) C.renewed = souk_now_ms();
}

static void apply_all(const redisReply *r) {
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    const redisReply *k = r->element[i], *v = r->element[i + 1];
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
    if (!strcmp(k->str, CS_VERSION)) continue;
    kv_t *have = kv_find(C.applied, C.napplied, k->str);
    if (have && !strcmp(have->value, v->str)) continue;
    /* Remembered even if it does not apply here (a key an older version
     * does not know): asking again every second would change nothing. */
    kv_put(&C.applied, &C.napplied, k->str, v->str);
    if (C.apply(k->str, v->str) == 0)
      SOUK_INFO(CS_LOG, "configuration key %s set to '%s' by another process of the bot", k->str,
                v->str);
  }
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv) {
  if (!C.on || souk__redis_link_owner(ac) != &C) return;
  /* The next reply owed was asked after this one: timing it from now
   * errs on the late side by one reply at most. */
  if (C.owed && --C.owed) C.sent_ms = souk_now_ms();
  redisReply *r = reply;
  int kind = (int)(intptr_t)priv;
  if (kind != R_WRITE) C.asking = false;
  if (!r) {
    souk__redis_link_lost(C.link, ac, ac->errstr[0] ? ac->errstr : "connection lost");
    return;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    char why[160];
    snprintf(why, sizeof why, "redis refused a command: %.*s", (int)(r->len > 120 ? 120 : r->len),
             r->str);
    souk__redis_link_drop(C.link, ac, why);
    return;
  }
  if (kind == R_VERSION) {
    const char *v = r->type == REDIS_REPLY_STRING ? r->str : NULL;
    if (!v && C.napplied && !C.npending) {
      /* The hash is gone (Redis lost its data) while this process runs
       * with the bot's changes: write them again for those to come. */
      SOUK_INFO(CS_LOG, "the shared run-time changes were lost in redis: writing them again");
      for (size_t i = 0; i < C.napplied; i++)
        kv_put(&C.pending, &C.npending, C.applied[i].key, C.applied[i].value);
      write_pending();
      return;
    }
    if (!v || (C.version && !strcmp(C.version, v))) return;
    const char *a[] = {"HGETALL", C.hash};
    size_t l[] = {7, strlen(C.hash)};
    if (!send_argv(2, a, l, (void *)R_ALL)) return;
    C.asking = true;
    souk_free(C.version);
    C.version = souk_strdup(v);
  } else if (kind == R_ALL && r->type == REDIS_REPLY_ARRAY) {
    apply_all(r);
  }
}

static void poll_cb(uv_timer_t *t) {
  if (!C.up) return;
  if (C.npending) write_pending();
  if (souk_now_ms() - C.renewed >= CS_RENEW_MS) renew();
  if (C.asking) return;
  const char *a[] = {"HGET", C.hash, CS_VERSION};
  size_t l[] = {4, strlen(C.hash), strlen(CS_VERSION)};
  if (send_argv(3, a, l, (void *)R_VERSION)) C.asking = true;
}

static uint64_t oldest(void *ud) { return C.owed ? C.sent_ms : UINT64_MAX; }

static void link_up(void *ud, redisAsyncContext *ac, bool back) {
  C.up = true;
  C.asking = false;
  C.owed = 0;
  if (back)
    SOUK_INFO(CS_LOG, "redis back: run-time changes are shared again");
  else
    SOUK_INFO(CS_LOG, "run-time configuration changes are shared through redis");
  /* Renewed at once: this process may be the first of the bot. */
  C.renewed = 0;
  poll_cb(C.timer);
}

static void link_down(void *ud, const char *why, bool first, bool was_up) {
  C.up = false;
  C.asking = false;
  C.owed = 0;
  if (first)
    SOUK_WARN(CS_LOG,
              "redis unreachable (%s): run-time configuration changes apply to this process "
              "only until it is back",
              why);
}

/* ---- public --------------------------------------------------------------- */

int souk__app_confshare_start(int (*apply)(const char *key, const char *value)) {
  const char *url = souk__cache_conf.url;
  if (!url || !*url || C.on) return 0;
  memset(&C, 0, sizeof C);
  C.apply = apply;
  const char *prefix = souk__cache_conf.key_prefix ? souk__cache_conf.key_prefix : "";
  size_t n = strlen(prefix) + sizeof "conf";
  C.hash = souk_malloc(n);
  snprintf(C.hash, n, "%sconf", prefix);
  souk__redis_link_conf_t lc = {
      .url = url, .up = link_up, .down = link_down, .oldest = oldest, .ud = &C};
  if (souk__redis_link_new(&lc, &C.link) != 0) {
    /* cache.url was checked with the configuration: nothing to share. */
    souk_free(C.hash);
    memset(&C, 0, sizeof C);
    return 0;
  }
  C.on = true;
  C.timer = souk_malloc(sizeof *C.timer);
  uv_timer_init(souk_loop(), C.timer);
  uv_timer_start(C.timer, poll_cb, CS_POLL_MS, CS_POLL_MS);
  uv_unref((uv_handle_t *)C.timer);
  return 0;
}

void souk__app_confshare_publish(const char *key, const char *value) {
  if (!C.on || !key) return;
  if (!value) value = "";
  kv_put(&C.applied, &C.napplied, key, value);
  kv_put(&C.pending, &C.npending, key, value);
  if (C.up) write_pending();
}

void souk__app_confshare_reapply(void) {
  if (!C.on) return;
  /* The reload put the file's values back: the next poll applies every
   * shared value again, since run-time changes come after the file. */
  kv_clear(&C.applied, &C.napplied);
  souk_free(C.version);
  C.version = NULL;
}

int souk__app_confshare_state(void) { return !C.on ? 0 : C.up ? 1 : -1; }

void souk__app_confshare_stop(void) {
  if (!C.on) return;
  C.on = false;
  souk__redis_link_free(C.link);
  souk_timer_free(&C.timer);
  kv_clear(&C.applied, &C.napplied);
  kv_clear(&C.pending, &C.npending);
  souk_free(C.version);
  souk_free(C.hash);
  memset(&C, 0, sizeof C);
}
