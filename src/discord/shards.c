/* Shards: gateway sessions on real WebSockets and timers; see shards.h. */
#include "discord/shards.h"

#include "discord/dconf.h"
#include "discord/idbudget.h"
#include "discord/zstdstream.h"
#include "discord/zstream.h"
#include "net/ws.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <string.h>

#define SH_LOG "shards"

typedef struct shard {
  uint32_t id;
  uint32_t bucket;
  souk__gateway_t *gw;
  souk__ws_t *ws;
  souk__zstream_t zs;     /* zlib-stream */
  souk__zstdstream_t zd;  /* zstd-stream */
  uv_timer_t timer;
  bool lock_pending; /* an identify slot was asked for */
  bool claim_pending; /* waiting for the hand-off's answer before starting */
  /* Resumed a session another process handed on and no READY since: the
   * shard's guilds are not in this process's cache. */
  bool guilds_unknown;
  bool stopped;
  uint64_t bytes_compressed;
} shard_t;

static struct {
  bool running;
  bool stopping;
  souk__gateway_handlers_t h;
  shard_t *sh;
  uint32_t n;
  int compress; /* souk__gw_compress_t */
  size_t max_message;
  souk__identify_lock_t lock;
  bool have_lock;
  souk__handoff_t *handoff;
  uint32_t left;    /* shards not stopped yet */
  unsigned closing; /* uv handles still closing */
  void (*done)(void);
  uv_timer_t *fin;
  souk__idbudget_t budget;
  uint32_t share;        /* percent of Discord's limit, for the log */
  int64_t budget_until;  /* Unix ms the budget frees up while shards wait; 0 */
} S;

/* A wait longer than this is checked again after it: the wall clock may
 * have been set meanwhile, and a wait of hours is easily miscounted. */
#define SH_BUDGET_RECHECK_MS (3600 * 1000)
/* discord.shards.identify_share's default, for a config never loaded. */
#define SH_SHARE_DEFAULT 90

static const char *const status_names[] = {"online", "idle", "dnd", "invisible"};

static const char *conf_status(void) {
  int i = souk__discord_conf.presence_status;
  return i >= 0 && i < 4 ? status_names[i] : "online";
}

/* ---- WebSocket callbacks ------------------------------------------------ */

static void ws_open_cb(souk__ws_t *ws, void *ud) {
  shard_t *sh = ud;
  if (sh->ws == ws) souk__gateway_on_open(sh->gw);
}

static void ws_message_cb(souk__ws_t *ws, void *ud, const char *data, size_t len, bool binary) {
  shard_t *sh = ud;
  if (sh->ws != ws) return;
  /* Once this connection is being closed (after a corrupt compressed
   * message, say) its later frames are of no use: feeding them to a
   * decoder that has failed would only fail again, with a warning per
   * frame until the close completes. */
  if (souk__gateway_state(sh->gw) == SOUK_GW_CLOSING) return;
  sh->bytes_compressed += len;
  if (!binary) {
    /* Without compression (or a server that sends text anyway). */
    souk__gateway_on_message(sh->gw, data, len);
    return;
  }
  const char *text;
  size_t tlen;
  int rc = S.compress == SOUK_GW_COMPRESS_ZSTD
               ? souk__zstdstream_feed(&sh->zd, data, len, &text, &tlen)
               : souk__zstream_feed(&sh->zs, data, len, &text, &tlen);
  if (rc == 1) {
    souk__gateway_on_message(sh->gw, text, tlen);
  } else if (rc < 0) {
    SOUK_WARN(SH_LOG, "shard %u: %s in the compressed stream: reconnecting", sh->id,
              rc == SOUK_ETOOBIG ? "message over the size limit" : "corrupt data");
    souk__gateway_reconnect(sh->gw);
  }
}

static void ws_close_cb(souk__ws_t *ws, void *ud, int code, const char *reason) {
  shard_t *sh = ud;
  if (sh->ws != ws) return;
  sh->ws = NULL;
  SOUK_DEBUG(SH_LOG, "shard %u: connection closed: %d %s", sh->id, code, reason);
  souk__gateway_on_close_reason(sh->gw, code, reason);
}

static const souk__ws_cbs_t ws_cbs = {ws_open_cb, ws_message_cb, ws_close_cb};

/* ---- gateway ops -------------------------------------------------------- */

static int op_send(void *ud, const char *text, size_t len) {
  shard_t *sh = ud;
  return sh->ws ? souk__ws_send(sh->ws, text, len, false) : SOUK_ECLOSED;
}

static void op_close(void *ud, int code) {
  shard_t *sh = ud;
  if (sh->ws)
    souk__ws_close(sh->ws, code, NULL);
  else
    souk__gateway_on_close(sh->gw, SOUK_WS_ABNORMAL);
}

static void op_connect(void *ud, const char *url) {
  shard_t *sh = ud;
  if (S.compress == SOUK_GW_COMPRESS_ZSTD)
    souk__zstdstream_reset(&sh->zd);
  else
    souk__zstream_reset(&sh->zs);
  souk__ws_t *ws = NULL;
  int rc = souk__ws_connect(url, &ws_cbs, sh, &ws);
  if (rc) {
    char why[96];
    snprintf(why, sizeof why, "cannot connect: %s", souk_strerror(rc));
    souk__gateway_on_close_reason(sh->gw, SOUK_WS_ABNORMAL, why);
    return;
  }
  sh->ws = ws;
  /* Uncompressed payloads are bounded like decompressed ones. */
  souk__ws_set_max_message(ws, S.max_message);
}

static void timer_cb(uv_timer_t *t) {
  shard_t *sh = t->data;
  souk__gateway_on_timer(sh->gw);
}

static void op_timer(void *ud, int64_t delay) {
  shard_t *sh = ud;
  if (delay < 0)
    uv_timer_stop(&sh->timer);
  else
    uv_timer_start(&sh->timer, timer_cb, (uint64_t)delay, 0);
}

/* The budget is spent: the shard waits, and the first shard to wait says
 * so, once, as an error (/readyz is not ready meanwhile: the shard has no
 * session). */
static void budget_spent(shard_t *sh, int64_t wait, uint32_t used, int64_t wall) {
  bool first = S.budget_until == 0;
  if (first || wall + wait < S.budget_until) S.budget_until = wall + wait;
  if (!first) return;
  int64_t mins = (wait + 59999) / 60000;
  SOUK_ERROR(SH_LOG,
             "not identifying: the bot has started %" PRIu32 " sessions in the last 24 hours and "
             "may start %" PRIu32 " (discord.shards.identify_share %" PRIu32 "%% of Discord's %" PRIu32
             " a day); going over Discord's limit resets the token and ends every session. "
             "Shards without a session wait; the next may identify in %" PRId64 " h %02" PRId64
             " min",
             used, S.budget.limit, S.share, S.budget.total, mins / 60, mins % 60);
}

static void grant_cb(void *ud) {
  shard_t *sh = ud;
  sh->lock_pending = false;
  /* The daily budget is checked with the slot: grants are serialised
   * across the bot's processes, and the start is recorded right after. */
  int64_t wall = (int64_t)souk_unix_ms();
  uint32_t counts[SOUK_IDL_HOURS], used = 0;
  S.lock.ops->starts(S.lock.self, wall, counts);
  int64_t wait = souk__idbudget_wait(&S.budget, counts, wall, &used);
  if (wait > 0) {
    budget_spent(sh, wait, used, wall);
    souk__gateway_identify_deferred(sh->gw, (uint64_t)(wait < SH_BUDGET_RECHECK_MS
                                                           ? wait
                                                           : SH_BUDGET_RECHECK_MS));
  } else if (souk__gateway_identify_granted(sh->gw)) {
    S.lock.ops->count_start(S.lock.self, wall);
    souk__idbudget_spent(&S.budget);
    if (S.budget_until) {
      SOUK_INFO(SH_LOG, "the identify budget allows session starts again");
      S.budget_until = 0;
    }
  }
  /* Released whether or not the IDENTIFY went out: the slot may have been
   * spent, and a lost slot costs only a few seconds. */
  S.lock.ops->release(S.lock.self, sh->bucket);
}

static void op_request_identify(void *ud) {
  shard_t *sh = ud;
  if (sh->lock_pending) return;
  int rc = S.lock.ops->acquire(S.lock.self, sh->bucket, grant_cb, sh);
  if (rc) {
    /* A backend that cannot coordinate must not let shards identify
     * blindly; the session retries on its next connection. */
    SOUK_ERROR(SH_LOG, "shard %u: identify lock failed: %s: reconnecting", sh->id,
               souk_strerror(rc));
    souk__gateway_reconnect(sh->gw);
    return;
  }
  sh->lock_pending = true;
}

static void op_dispatch(void *ud, const char *name, uint64_t seq, const souk_json_t *j, int d) {
  shard_t *sh = ud;
  S.h.on_dispatch(sh->id, name, seq, j, d);
  /* The event is handled: from now on a process that takes the shard over
   * resumes after it.  (READY's session is already in the gateway.) */
  const char *sid, *url;
  uint64_t s;
  if (S.handoff && souk__gateway_session(sh->gw, &sid, &url, &s))
    souk__handoff_save(S.handoff, sh->id, sid, url, s);
}

static void op_ready(void *ud) {
  shard_t *sh = ud;
  sh->guilds_unknown = false;
  if (S.h.on_ready) S.h.on_ready(sh->id);
}

static void op_resumed(void *ud) {
  shard_t *sh = ud;
  if (S.h.on_resumed) S.h.on_resumed(sh->id);
}

static void op_fatal(void *ud, int code, const char *msg) {
  shard_t *sh = ud;
  if (sh->lock_pending) {
    S.lock.ops->cancel(S.lock.self, sh->bucket, grant_cb, sh);
    sh->lock_pending = false;
  }
  if (S.h.on_fatal) {
    char m[512];
    snprintf(m, sizeof m, "shard %u: %s", sh->id, msg);
    S.h.on_fatal(code, m);
  }
}

static void schedule_fin(void);

static void op_stopped(void *ud) {
  shard_t *sh = ud;
  if (sh->stopped) return;
  sh->stopped = true;
  if (sh->claim_pending) {
    souk__handoff_cancel(S.handoff, sh->id);
    sh->claim_pending = false;
  }
  if (sh->lock_pending) {
    S.lock.ops->cancel(S.lock.self, sh->bucket, grant_cb, sh);
    sh->lock_pending = false;
  }
  if (S.left && --S.left == 0 && S.stopping) schedule_fin();
}

static uint64_t op_now(void *ud) { return souk_now_ms(); }
static double op_rand(void *ud) { return souk_rand01(); }

static const souk__gateway_ops_t gw_ops = {
    .send = op_send,
    .close = op_close,
    .connect = op_connect,
    .timer = op_timer,
    .request_identify = op_request_identify,
    .dispatch = op_dispatch,
    .ready = op_ready,
    .resumed = op_resumed,
    .fatal = op_fatal,
    .stopped = op_stopped,
    .now_ms = op_now,
    .rand01 = op_rand,
};

/* ---- teardown ----------------------------------------------------------- */

static void release_all(void) {
  for (uint32_t i = 0; i < S.n; i++) {
    souk__gateway_free(S.sh[i].gw);
    souk__zstream_free(&S.sh[i].zs);
    souk__zstdstream_free(&S.sh[i].zd);
  }
  souk_free(S.sh);
  S.sh = NULL;
  S.n = 0;
  void (*done)(void) = S.done;
  S.done = NULL;
  S.running = false;
  S.stopping = false;
  if (done) done();
}

static void handle_closed_cb(uv_handle_t *h) {
  if (--S.closing == 0) release_all();
}

static void fin_close_cb(uv_handle_t *h) {
  souk_free(h);
  handle_closed_cb(h);
}

/* Runs from the loop once every session has stopped: nothing of ours is
 * on the stack any more, so sessions and handles can go. */
static void fin_cb(uv_timer_t *t) {
  S.fin = NULL;
  if (S.have_lock) {
    S.lock.ops->destroy(S.lock.self);
    S.have_lock = false;
  }
  /* The WebSocket context has no other user: shut it down so that the loop
   * can end. */
  souk__ws_global_shutdown();
  S.closing = S.n + 1;
  uv_close((uv_handle_t *)t, fin_close_cb);
  for (uint32_t i = 0; i < S.n; i++)
    uv_close((uv_handle_t *)&S.sh[i].timer, handle_closed_cb);
}

static void schedule_fin(void) {
  if (S.fin) return;
  S.fin = souk_malloc(sizeof *S.fin);
  uv_timer_init(souk_loop(), S.fin);
  uv_timer_start(S.fin, fin_cb, 0, 0);
}

/* ---- hand-off ----------------------------------------------------------- */

/* The session the previous process of this shard handed on, if any:
 * resume it, else identify. */
static void claim_cb(void *ud, uint32_t shard, const char *sid, const char *url, uint64_t seq) {
  shard_t *sh = ud;
  sh->claim_pending = false;
  if (sh->stopped || S.stopping) return;
  if (sid) {
    souk__gateway_set_session(sh->gw, sid, url, seq);
    /* The guild records handed on with the session are in the guild
     * cache already, unless the process before handed on none. */
    sh->guilds_unknown = !souk__handoff_guilds_handed(S.handoff, shard);
  }
  souk__gateway_start(sh->gw);
}

/* ---- public ------------------------------------------------------------- */

int souk__shards_start(const souk__shards_conf_t *c, const souk__gateway_handlers_t *h) {
  if (S.running) return SOUK_EBUSY;
  if (!c || !h || !h->on_dispatch || !c->gateway_url || !*c->gateway_url || !c->shard_count ||
      c->first > c->last || c->last >= c->shard_count)
    return SOUK_EINVAL;
  const souk__discord_conf_t *dc = &souk__discord_conf;
  const char *token = c->token ? c->token : dc->token;
  if (!token || !*token) {
    SOUK_ERROR(SH_LOG, "no bot token: set SOUK_DISCORD_TOKEN");
    return SOUK_EINVAL;
  }
  uint32_t mc = c->max_concurrency ? c->max_concurrency : 1;
  /* The identify backend first: it is the only step that can fail. */
  souk__identify_lock_t lock;
  const char *path = c->identify_lock ? c->identify_lock : dc->identify_lock;
  int rc;
  if (c->identify_backend) {
    lock = *c->identify_backend;
    rc = 0;
  } else if (path && *path) {
    rc = souk__identify_lock_file(path, c->identify_interval_ms, &lock);
  } else {
    rc = souk__identify_lock_local(c->identify_interval_ms, NULL, &lock);
  }
  if (rc) return rc;

  memset(&S, 0, sizeof S);
  S.h = *h;
  S.lock = lock;
  S.have_lock = true;
  S.compress = c->compress > 0 ? c->compress : c->compress < 0 ? 0 : souk__discord_compress();
  S.max_message = c->max_message ? c->max_message : SOUK_ZSTREAM_MAX_DEFAULT;
  S.share = c->identify_share ? c->identify_share : (uint32_t)dc->identify_share;
  if (!S.share) S.share = SH_SHARE_DEFAULT;
  const souk__session_limit_t *sl = c->session_limit;
  souk__idbudget_init(&S.budget, sl && sl->total > 0 ? (uint32_t)sl->total : 0, S.share,
                      sl ? sl->remaining : -1, sl ? sl->reset_after : 0, (int64_t)souk_unix_ms());
  S.n = c->last - c->first + 1;
  S.sh = souk_calloc(S.n, sizeof *S.sh);
  souk__presence_t pres = {conf_status(), dc->presence_activity, 0};
  if (c->presence) pres = *c->presence;
  for (uint32_t i = 0; i < S.n; i++) {
    shard_t *sh = &S.sh[i];
    sh->id = c->first + i;
    sh->bucket = sh->id % mc;
    souk__gateway_conf_t gc = {
        .shard_id = sh->id,
        .shard_count = c->shard_count,
        .token = token,
        .gateway_url = c->gateway_url,
        .intents = c->intents ? c->intents : (uint64_t)dc->intents,
        .compress = S.compress,
        .large_threshold = c->large_threshold ? c->large_threshold : (int)dc->large_threshold,
        .presence = pres,
    };
    sh->gw = souk__gateway_new(&gc, &gw_ops, sh);
    SOUK_ASSERT(sh->gw != NULL);
    /* Only the decoder this connection uses: each holds memory. */
    if (S.compress == SOUK_GW_COMPRESS_ZSTD)
      rc = souk__zstdstream_init(&sh->zd, S.max_message);
    else
      rc = souk__zstream_init(&sh->zs, S.max_message);
    SOUK_ASSERT(rc == 0);
    uv_timer_init(souk_loop(), &sh->timer);
    sh->timer.data = sh;
  }
  S.running = true;
  S.left = S.n;
  S.handoff = c->handoff;
  for (uint32_t i = 0; i < S.n; i++) {
    shard_t *sh = &S.sh[i];
    if (S.handoff && souk__handoff_claim(S.handoff, sh->id, claim_cb, sh) == 0) {
      sh->claim_pending = true;
      continue;
    }
    souk__gateway_start(sh->gw);
  }
  return 0;
}

void souk__shards_stop_code(int code, void (*done)(void)) {
  if (!S.running || S.stopping) return;
  S.stopping = true;
  S.done = done;
  for (uint32_t i = 0; i < S.n; i++)
    if (!S.sh[i].stopped) souk__gateway_stop(S.sh[i].gw, code);
  if (S.left == 0) schedule_fin();
}

void souk__shards_stop(void (*done)(void)) {
  souk__shards_stop_code(SOUK_GW_CLOSE_NORMAL, done);
}

int souk__shards_stop_one(uint32_t shard_id, int code) {
  for (uint32_t i = 0; i < S.n; i++) {
    shard_t *sh = &S.sh[i];
    if (sh->id != shard_id) continue;
    if (!sh->stopped) souk__gateway_stop(sh->gw, code);
    return 0;
  }
  return SOUK_ENOTFOUND;
}

int souk__shards_set_presence(const souk__presence_t *p) {
  int first = 0;
  for (uint32_t i = 0; i < S.n; i++) {
    int rc = souk__gateway_set_presence(S.sh[i].gw, p);
    if (rc && !first) first = rc;
  }
  return first;
}

void souk__shards_update_presence(void) {
  souk__presence_t p = {conf_status(), souk__discord_conf.presence_activity, 0};
  int rc = souk__shards_set_presence(&p);
  if (rc) SOUK_WARN(SH_LOG, "presence update failed: %s", souk_strerror(rc));
}

int souk__shards_send(uint32_t shard_id, const char *json, size_t len) {
  for (uint32_t i = 0; i < S.n; i++)
    if (S.sh[i].id == shard_id) return souk__gateway_send(S.sh[i].gw, json, len);
  return SOUK_ENOTFOUND;
}

bool souk__shards_running(void) { return S.running; }

size_t souk__shards_count(void) { return S.n; }

bool souk__shards_guilds_unknown(uint32_t shard_id) {
  for (uint32_t i = 0; S.running && i < S.n; i++)
    if (S.sh[i].id == shard_id) return S.sh[i].guilds_unknown;
  return false;
}

int souk__shards_stats(size_t i, souk__shard_stats_t *out) {
  if (i >= S.n || !out) return SOUK_ENOTFOUND;
  out->id = S.sh[i].id;
  souk__gateway_stats(S.sh[i].gw, &out->gw);
  out->bytes_compressed = S.sh[i].bytes_compressed;
  return 0;
}

size_t souk__shards_ready(void) {
  size_t n = 0;
  for (uint32_t i = 0; i < S.n; i++)
    n += souk__gateway_state(S.sh[i].gw) == SOUK_GW_READY;
  return n;
}

bool souk__shards_identify_waiting(int64_t *until) {
  if (!S.running || !S.budget_until) return false;
  if (until) *until = S.budget_until;
  return true;
}

bool souk__shards_session(size_t i, const char **session_id, const char **resume_url,
                         uint64_t *seq) {
  if (i >= S.n) return false;
  return souk__gateway_session(S.sh[i].gw, session_id, resume_url, seq);
}
