/* The bot runtime for `souk run`: REST client, gateway shards and the
 * dispatcher wired together, with a graceful stop.
 *
 * Start-up order: HTTP client, REST client, GET /gateway/bot (skipped when
 * the gateway URL, shard count and max_concurrency are all configured), then
 * the shards.  Stop order is the reverse, with in-flight REST requests given
 * the configured grace to finish so that replies already decided are sent. */
#include "discord/bot.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "discord/idlock_redis.h"
#include "core/cmdrun.h"
#include "core/core.h"
#include "discord/commands.h"
#include "discord/dapi.h"
#include "discord/dconf.h"
#include "discord/gcache.h"
#include "discord/handoff.h"
#include "discord/members.h"
#include "discord/msgsplit.h"
#include "discord/rest.h"
#include "discord/shards.h"
#include "ops/cluster.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "cache/cacheconf.h"
#include "souk/cache.h"
#include "souk/discord.h"
#include "souk/err.h"
#include "souk/http.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"

/* GET /gateway/bot while Discord (or the host's network) is unreachable:
 * retried after a full-jitter backoff that doubles from 1 s up to a
 * minute, and reported on one log line a minute rather than one per try. */
#define GWBOT_RETRY_BASE_MS 1000
#define GWBOT_RETRY_CAP_MS  60000
#define OUTAGE_LOG_EVERY_MS 60000
/* Asking again for the session start limit when Discord gave no reset. */
#define SESSION_WAIT_MIN_MS 5000
/* How long a stop waits for Redis to confirm the last session writes. */
#define HANDOFF_FLUSH_MS 3000

static struct {
  void (*on_fatal)(int err, const char *msg);
  void (*stop_done)(void);
  bool running, stopping, shards_running, rest_running, http_running;
  bool fatal_sent;
  uv_timer_t grace;
  bool grace_on;
  /* With a hand-off, the REST drain waits for this timer to see the
   * commands and the replies of the events already handled done. */
  uv_timer_t settle;
  bool settle_on;
  uint64_t ready_shards;
  /* GET /gateway/bot retries. */
  uv_timer_t *retry;     /* armed while waiting to ask again */
  unsigned attempts;     /* failed in a row */
  uint64_t outage_since; /* when the first of them failed */
  uint64_t outage_logged;
  unsigned since_log; /* failures since the last line about them */
  bool starts_waiting; /* waiting for Discord's session start limit to reset */
  /* Sessions handed on through Redis (NULL without cache.url, or with
   * discord.shards.handoff off). */
  souk__handoff_t *handoff;
  uint32_t shard_count;
  bool handoff_flushing, finish_waiting;
} g;

/* ---- replies ------------------------------------------------------------ */

/* A plain-text reply to a message event (souk_reply): the first part
 * replies to the triggering message; see souk__dcmd_post_text. */
static int gateway_reply(const souk_event_t *ev, const char *text, size_t len) {
  const souk_json_t *j = ev->json;
  uint64_t channel = 0, msg = 0;
  if (souk_json_u64(j, souk_json_get(j, ev->d, "channel_id"), &channel) || channel == 0)
    return SOUK_EINVAL;
  souk_json_u64(j, souk_json_get(j, ev->d, "id"), &msg);
  return souk__dcmd_post_text(channel, msg, text, len);
}

/* ---- gateway events ------------------------------------------------------ */

static void on_dispatch(uint32_t shard, const char *name, uint64_t seq, const souk_json_t *j,
                        int d) {
  souk_event_t ev = {.name = name,
                     .shard = shard,
                     .seq = seq,
                     .json = j,
                     .d = d,
                     .source = SOUK_SRC_GATEWAY,
                     .reply = gateway_reply};
  souk__members_event(&ev);
  souk__dcmd_event(&ev);
  souk__dispatch(&ev);
}

static void on_ready(uint32_t shard) {
  g.ready_shards++;
  SOUK_INFO("bot", "shard %u ready", shard);
}

/* The one report of a failure retrying cannot fix: the owner logs and
 * records it (and shuts down), so nothing here logs it too. */
static void bot_fatal(int err, const char *msg) {
  if (g.fatal_sent || g.stopping) return;
  g.fatal_sent = true;
  if (g.on_fatal) g.on_fatal(err, msg);
}

static void on_fatal(int code, const char *msg) {
  /* Close codes from Discord mean it refused the session; anything else is
   * an unexpected failure worth a restart. */
  bot_fatal(code >= SOUK_GW_CLOSE_UNKNOWN_ERROR ? SOUK_EAUTH : SOUK_EFATAL, msg);
}

/* ---- session hand-off ---------------------------------------------------- */

/* Another process claimed one of our shards: two processes were given it,
 * or this one was thought dead.  4000 leaves the session to the other. */
static void handoff_lost(void *ud, uint32_t shard, const char *owner) {
  souk__shards_stop_one(shard, SOUK_GW_CLOSE_UNKNOWN_ERROR);
}

static uint64_t handoff_local_guilds(void *ud, uint32_t shard) {
  if (souk__shards_guilds_unknown(shard)) return SOUK_HANDOFF_GUILDS_UNKNOWN;
  return souk__gcache_guilds_of(shard, g.shard_count);
}

static void handoff_others_guilds(void *ud, uint64_t n) { souk__gcache_set_others(n); }

static void *handoff_guild_record(void *ud, uint64_t guild_id, size_t *len) {
  return souk__gcache_record(guild_id, len);
}

static bool handoff_guild_restore(void *ud, uint32_t shard, const void *rec, size_t len) {
  int rc = souk__gcache_restore(rec, len);
  if (rc)
    SOUK_WARN("bot",
              "shard %" PRIu32 ": a guild record handed on was refused (%s): another build's "
              "format or byte order",
              shard, souk_strerror(rc));
  return rc == 0;
}

/* Every guild an event changed goes to Redis with its shard's session. */
static void gcache_changed(uint64_t guild_id) { souk__handoff_guild_changed(g.handoff, guild_id); }

/* A hand-off through Redis when cache.url is set and it is not turned
 * off; NULL otherwise (or when it cannot be made: then sessions end with
 * the process, as they always did). */
static souk__handoff_t *handoff_make(uint32_t count) {
  const souk_cache_conf_t *cc = &souk__cache_conf;
  if (!souk__discord_conf.handoff || !cc->url || !cc->url[0]) return NULL;
  souk__handoff_conf_t hc = {.url = cc->url,
                             .prefix = cc->key_prefix,
                             .shard_count = count,
                             .lost = handoff_lost,
                             .local_guilds = handoff_local_guilds,
                             .others_guilds = handoff_others_guilds,
                             .guild_record = handoff_guild_record,
                             .guild_restore = handoff_guild_restore};
  souk__handoff_t *h = NULL;
  int rc = souk__handoff_new(&hc, &h);
  if (rc) {
    SOUK_WARN("bot", "session hand-off through redis unavailable (%s)", souk_strerror(rc));
    return NULL;
  }
  return h;
}

static const souk__gateway_handlers_t handlers = {
    .on_dispatch = on_dispatch,
    .on_ready = on_ready,
    .on_fatal = on_fatal,
};

/* ---- start --------------------------------------------------------------- */

static void start_shards(const char *url, int64_t count, int64_t max_conc,
                         const souk__session_limit_t *limit) {
  souk__discord_conf_t *c = &souk__discord_conf;
  int64_t last = c->shard_last < 0 ? count - 1 : c->shard_last;
  if (c->shard_first > last || last >= count) {
    char msg[160];
    snprintf(msg, sizeof msg,
             "shard range %" PRId64 "..%" PRId64 " is outside 0..%" PRId64
             " (discord.shards.first/last/count)",
             c->shard_first, last, count - 1);
    bot_fatal(SOUK_ECONFIG, msg);
    return;
  }
  /* Processes on one host share the data directory, so by default they
   * share its identify lock too. */
  char lock[1024];
  const char *lockp = c->identify_lock;
  if (!lockp && souk__core_conf.data_dir && souk__core_conf.data_dir[0]) {
    snprintf(lock, sizeof lock, "%s/identify.lock", souk__core_conf.data_dir);
    lockp = lock;
  }
  /* With Redis configured, IDENTIFYs are spaced through it, so processes
   * on different hosts share the slots; if the backend cannot be created,
   * the lock file still covers this host. */
  souk__identify_lock_t redis_lock;
  const souk__identify_lock_t *backend = NULL;
  const souk_cache_conf_t *cc = &souk__cache_conf;
  if (cc->url && cc->url[0]) {
    int rc = souk__identify_lock_redis(cc->url, cc->key_prefix, 0, &redis_lock);
    if (rc == 0)
      backend = &redis_lock;
    else
      SOUK_WARN("bot", "identify through redis unavailable (%s): using the lock file",
                souk_strerror(rc));
  }
  g.shard_count = (uint32_t)count;
  g.handoff = handoff_make((uint32_t)count);
  souk__gcache_on_change(g.handoff ? gcache_changed : NULL);
  souk__shards_conf_t sc = {
      .gateway_url = url,
      .handoff = g.handoff,
      .identify_backend = backend,
      .identify_lock = lockp,
      .shard_count = (uint32_t)count,
      .first = (uint32_t)c->shard_first,
      .last = (uint32_t)last,
      .max_concurrency = (uint32_t)(max_conc > 0 ? max_conc : 1),
      .session_limit = limit,
  };
  SOUK_INFO("bot", "starting shards %u..%u of %u (max_concurrency %u)", sc.first, sc.last,
            sc.shard_count, sc.max_concurrency);
  /* The member list shows which shards run where, and the REST limit's
   * fallback share counts processes from it. */
  souk__cluster_set_shards(sc.first, sc.last, sc.shard_count);
  int rc = souk__shards_start(&sc, &handlers);
  if (rc) {
    /* The shards own a backend only once they have started. */
    if (backend) backend->ops->destroy(backend->self);
    souk__handoff_free(g.handoff);
    g.handoff = NULL;
    char msg[128];
    snprintf(msg, sizeof msg, "cannot start shards: %s", souk_strerror(rc));
    bot_fatal(rc == SOUK_EINVAL ? SOUK_ECONFIG : rc, msg);
    return;
  }
  g.shards_running = true;
}

static void gateway_bot_ask(void);

static void retry_timer_cb(uv_timer_t *t) { gateway_bot_ask(); }

static void retry_cancel(void) { souk_timer_free(&g.retry); }

/* GET /gateway/bot failed in a way that waiting may fix (no connection, a
 * timeout, 5xx, 429s): ask again later, saying so once a minute. */
static void gateway_bot_retry(const char *why) {
  uint64_t now = souk_now_ms();
  if (g.attempts++ == 0) {
    g.outage_since = now;
    g.outage_logged = now;
    g.since_log = 0;
    SOUK_WARN("bot",
              "cannot reach Discord (%s); retrying with backoff up to a minute apart until it "
              "answers",
              why);
  } else if (now - g.outage_logged >= OUTAGE_LOG_EVERY_MS) {
    SOUK_WARN("bot", "Discord still unreachable after %llu s: %u more attempts since the last "
                     "report, the last: %s",
              (unsigned long long)((now - g.outage_since) / 1000), g.since_log + 1, why);
    g.outage_logged = now;
    g.since_log = 0;
  } else {
    g.since_log++;
    SOUK_DEBUG("bot", "GET /gateway/bot attempt %u failed: %s", g.attempts, why);
  }
  uint64_t delay = souk__rest_backoff_ms(g.attempts, GWBOT_RETRY_BASE_MS, GWBOT_RETRY_CAP_MS,
                                         souk_rand01());
  /* Full jitter may draw nearly zero; never hammer a server that is down. */
  if (delay < GWBOT_RETRY_BASE_MS / 4) delay = GWBOT_RETRY_BASE_MS / 4;
  if (!g.retry) {
    g.retry = souk_malloc(sizeof *g.retry);
    uv_timer_init(souk_loop(), g.retry);
  }
  uv_timer_start(g.retry, retry_timer_cb, delay, 0);
}

/* Discord allows fewer session starts than the shards to start need:
 * identifying anyway ends every session of the bot (Discord's docs: its
 * token may be reset).  Ask again once the limit has reset, however long
 * that is; /readyz stays not ready meanwhile.  Said once per wait. */
static void session_starts_wait(int64_t remaining, int64_t need, int64_t reset_after) {
  /* No reset time (0: it resets now, or a proxy left it out): a few
   * seconds. */
  uint64_t delay = reset_after > 0 ? (uint64_t)reset_after + 1000 : SESSION_WAIT_MIN_MS;
  if (!g.starts_waiting)
    SOUK_ERROR("bot",
               "Discord allows %" PRId64 " more session starts and %" PRId64
               " shard(s) need one each: not identifying (going over the daily limit ends "
               "every session of the bot); asking again in %llu s, when the limit resets",
               remaining, need, (unsigned long long)(delay / 1000));
  g.starts_waiting = true;
  g.attempts = 0;
  if (!g.retry) {
    g.retry = souk_malloc(sizeof *g.retry);
    uv_timer_init(souk_loop(), g.retry);
  }
  uv_timer_start(g.retry, retry_timer_cb, delay, 0);
}

static void gateway_bot_cb(const souk__rest_resp_t *r, void *ud) {
  if (g.stopping || !g.running) return;
  char msg[256];
  if (r->err == SOUK_EAUTH || r->err == SOUK_EFORBIDDEN) {
    snprintf(msg, sizeof msg,
             "Discord rejected the bot token (HTTP %d on GET /gateway/bot): check "
             "SOUK_DISCORD_TOKEN",
             r->status);
    bot_fatal(SOUK_EAUTH, msg);
    return;
  }
  if (r->err && r->status >= 400 && r->status < 500 && r->status != 408 && r->status != 429) {
    /* Another 4xx (404 for a wrong path or API version, say) is an answer
     * that asking again will not change. */
    snprintf(msg, sizeof msg,
             "GET /gateway/bot answered HTTP %d: check discord.api_base (souk speaks Discord "
             "API v10)",
             r->status);
    bot_fatal(SOUK_ECONFIG, msg);
    return;
  }
  if (r->err) {
    if (r->status)
      snprintf(msg, sizeof msg, "GET /gateway/bot: HTTP %d", r->status);
    else
      snprintf(msg, sizeof msg, "GET /gateway/bot: %s", souk_strerror(r->err));
    gateway_bot_retry(msg);
    return;
  }
  const souk_json_t *j = souk__rest_json(r);
  char url[512] = "";
  int64_t shards = 0, conc = 0, remaining = -1, reset_after = 0, total = 0;
  if (j) {
    souk_json_str(j, souk_json_get(j, 0, "url"), url, sizeof url);
    souk_json_i64(j, souk_json_get(j, 0, "shards"), &shards);
    int ssl = souk_json_get(j, 0, "session_start_limit");
    souk_json_i64(j, souk_json_get(j, ssl, "max_concurrency"), &conc);
    souk_json_i64(j, souk_json_get(j, ssl, "remaining"), &remaining);
    souk_json_i64(j, souk_json_get(j, ssl, "reset_after"), &reset_after);
    souk_json_i64(j, souk_json_get(j, ssl, "total"), &total);
  }
  souk__discord_conf_t *c = &souk__discord_conf;
  const char *gw = c->gateway_url ? c->gateway_url : url;
  if (!gw[0] || (shards <= 0 && c->shard_count <= 0)) {
    /* A proxy or an outage page answering 200: try again. */
    gateway_bot_retry("GET /gateway/bot returned no usable gateway url or shard count");
    return;
  }
  int64_t count = c->shard_count > 0 ? c->shard_count : shards;
  int64_t last = c->shard_last < 0 ? count - 1 : c->shard_last;
  int64_t need = last >= c->shard_first ? last - c->shard_first + 1 : 1;
  if (remaining >= 0 && remaining < need) {
    session_starts_wait(remaining, need, reset_after);
    return;
  }
  if (g.attempts)
    SOUK_INFO("bot", "Discord answered after %u failed attempt(s) over %llu s", g.attempts,
              (unsigned long long)((souk_now_ms() - g.outage_since) / 1000));
  g.attempts = 0;
  g.starts_waiting = false;
  retry_cancel();
  if (remaining >= 0 && remaining < 10)
    SOUK_WARN("bot", "only %" PRId64 " session starts left today (Discord allows 1000)", remaining);
  souk__session_limit_t limit = {total, remaining, reset_after};
  start_shards(gw, count, c->max_concurrency > 0 ? c->max_concurrency : conc, &limit);
}

static void gateway_bot_ask(void) {
  if (g.stopping || !g.running) return;
  souk__rest_opts_t o = {.method = "GET", .path = "/gateway/bot", .flags = SOUK_REST_NO_RETRY};
  int rc = souk__rest_request(&o, gateway_bot_cb, NULL);
  if (rc) {
    char msg[128];
    snprintf(msg, sizeof msg, "GET /gateway/bot not sent: %s", souk_strerror(rc));
    gateway_bot_retry(msg);
  }
}

int souk__bot_start(void (*fatal)(int err, const char *msg)) {
  memset(&g, 0, sizeof g);
  g.on_fatal = fatal;
  int rc = souk_http_init();
  if (rc) return rc;
  g.http_running = true;
  rc = souk__rest_init();
  if (rc) {
    souk_http_shutdown();
    g.http_running = false;
    return rc;
  }
  g.rest_running = true;
  g.running = true;
  souk__members_start();
  souk__dcmd_start();
  souk__dapi_start(&souk__dapi_rest_sink);
  souk__discord_conf_t *c = &souk__discord_conf;
  if (c->gateway_url && c->shard_count > 0 && c->max_concurrency > 0) {
    start_shards(c->gateway_url, c->shard_count, c->max_concurrency, NULL);
    return 0;
  }
  souk__rest_opts_t o = {.method = "GET", .path = "/gateway/bot", .flags = SOUK_REST_NO_RETRY};
  rc = souk__rest_request(&o, gateway_bot_cb, NULL);
  if (rc) {
    souk__dapi_stop();
    souk__dcmd_stop();
    souk__rest_shutdown();
    souk_http_shutdown();
    g.rest_running = g.http_running = g.running = false;
  }
  return rc;
}

/* ---- stop ---------------------------------------------------------------- */

static void settle_stop(void);

static void stop_finish(void) {
  settle_stop();
  /* The last session writes must reach Redis before the process goes. */
  if (g.handoff_flushing) {
    g.finish_waiting = true;
    return;
  }
  souk__handoff_free(g.handoff);
  g.handoff = NULL;
  souk__dcmd_stop();
  souk__members_stop();
  if (g.rest_running) {
    souk__rest_shutdown();
    g.rest_running = false;
  }
  /* After the REST client: every request of the module actions has
   * completed by now. */
  souk__dapi_stop();
  if (g.http_running) {
    souk_http_shutdown();
    g.http_running = false;
  }
  g.running = false;
  void (*done)(void) = g.stop_done;
  g.stop_done = NULL;
  if (done) done();
}

static void grace_close_cb(uv_handle_t *h) { stop_finish(); }

static void grace_timer_cb(uv_timer_t *t) {
  SOUK_WARN("bot", "shutdown grace expired with REST requests in flight; abandoning them");
  g.grace_on = false;
  uv_close((uv_handle_t *)&g.grace, grace_close_cb);
}

static void drained_cb(void *ud) {
  if (g.grace_on) {
    g.grace_on = false;
    uv_timer_stop(&g.grace);
    uv_close((uv_handle_t *)&g.grace, grace_close_cb);
  } else {
    stop_finish();
  }
}

static void handoff_flushed_cb(void *ud) {
  g.handoff_flushing = false;
  if (g.finish_waiting) {
    g.finish_waiting = false;
    stop_finish();
  }
}

static void start_drain(void) {
  if (g.rest_running && souk__rest_drain(drained_cb, NULL) == 0) return;
  stop_finish();
}

/* Commands still running, or replies still queued (waiting for a bucket or
 * the global limit): the REST drain would fail those. */
static bool replies_pending(void) {
  if (!g.rest_running) return false;
  souk__rest_stats_t st;
  souk__rest_stats(&st);
  return st.queued > 0 || souk__cmd_running() > 0;
}

static void settle_close_cb(uv_handle_t *h) { (void)h; }

static void settle_stop(void) {
  if (!g.settle_on) return;
  g.settle_on = false;
  uv_timer_stop(&g.settle);
  uv_close((uv_handle_t *)&g.settle, settle_close_cb);
}

static void settle_cb(uv_timer_t *t) {
  (void)t;
  if (replies_pending()) return;
  settle_stop();
  start_drain();
}

static void shards_stopped_cb(void) {
  g.shards_running = false;
  if (g.handoff) {
    g.handoff_flushing = true;
    souk__handoff_flush(g.handoff, HANDOFF_FLUSH_MS, handoff_flushed_cb, NULL);
    /* The sessions' saved seqs count every event dispatched as handled,
     * and the next process resumes after them: the replies those events
     * still owe must go out, not be dropped by the drain, or the events
     * are lost.  So the drain waits (within the grace) until no command
     * runs and no reply is queued. */
    if (replies_pending()) {
      uv_timer_init(souk_loop(), &g.settle);
      uv_timer_start(&g.settle, settle_cb, 20, 20);
      g.settle_on = true;
      SOUK_INFO("bot", "stopping: the replies of the events handled go out before the drain");
      return;
    }
  }
  /* Replies decided before the stop get the grace period to go out. */
  start_drain();
}

static int64_t g_grace_ms;

void souk__bot_stop(int64_t grace_ms, void (*done)(void)) {
  if (!g.running) {
    if (done) done();
    return;
  }
  if (g.stopping) return;
  g.stopping = true;
  g.stop_done = done;
  g_grace_ms = grace_ms;
  retry_cancel();
  if (grace_ms > 0) {
    uv_timer_init(souk_loop(), &g.grace);
    uv_timer_start(&g.grace, grace_timer_cb, (uint64_t)grace_ms, 0);
    g.grace_on = true;
  }
  /* With a hand-off, 4000 keeps every session alive on Discord's side for
   * the process that runs the shard next (1000 or 1001 would end it). */
  if (g.shards_running)
    souk__shards_stop_code(g.handoff ? SOUK_GW_CLOSE_UNKNOWN_ERROR : SOUK_GW_CLOSE_NORMAL,
                           shards_stopped_cb);
  else shards_stopped_cb();
}

void souk__bot_reload(void) {
  if (g.shards_running) souk__shards_update_presence();
}

int souk_gateway_latency(uint32_t shard, int64_t *last_ms, int64_t *avg_ms) {
  size_t n = souk__shards_running() ? souk__shards_count() : 0;
  for (size_t i = 0; i < n; i++) {
    souk__shard_stats_t st;
    if (souk__shards_stats(i, &st) != 0 || st.id != shard) continue;
    if (st.gw.latency_last_ms < 0) return SOUK_ENOTFOUND;
    if (last_ms) *last_ms = st.gw.latency_last_ms;
    if (avg_ms) *avg_ms = st.gw.latency_avg_ms;
    return 0;
  }
  return SOUK_ENOTFOUND;
}

bool souk__bot_handoff(souk__handoff_stats_t *out) {
  if (!g.handoff) return false;
  souk__handoff_stats(g.handoff, out);
  return true;
}

const char *souk__bot_handoff_owner(void) { return g.handoff ? souk__handoff_owner(g.handoff) : ""; }

size_t souk__bot_shards(void) { return souk__shards_running() ? souk__shards_count() : 0; }

size_t souk__bot_shards_ready(void) { return souk__shards_running() ? souk__shards_ready() : 0; }

bool souk__bot_identify_waiting(int64_t *until) { return souk__shards_identify_waiting(until); }

/* ---- check-config --online ----------------------------------------------- */

static int g_check_rc = 1;

static void check_cb(const souk__rest_resp_t *r, void *ud) {
  g_check_rc = r->err;
  uv_stop(souk_loop());
  if (r->err == 0) {
    const souk_json_t *j = souk__rest_json(r);
    char name[128] = "?", id[32] = "?";
    if (j) {
      souk_json_str(j, souk_json_get(j, 0, "username"), name, sizeof name);
      souk_json_str(j, souk_json_get(j, 0, "id"), id, sizeof id);
    }
    printf("token OK: bot user %s (%s)\n", name, id);
  }
}

int souk__bot_check_online(void) {
  if (!souk__discord_conf.token) return SOUK_ECONFIG;
  int rc = souk_http_init();
  if (rc) return rc;
  rc = souk__rest_init();
  if (rc == 0) {
    souk__rest_opts_t o = {.method = "GET", .path = "/users/@me"};
    rc = souk__rest_request(&o, check_cb, NULL);
    if (rc == 0) {
      uv_run(souk_loop(), UV_RUN_DEFAULT);
      rc = g_check_rc;
    }
    souk__rest_shutdown();
  }
  souk_http_shutdown();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  return rc;
}
