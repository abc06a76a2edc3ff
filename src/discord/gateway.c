/* Discord gateway session state machine; see gateway.h. */
#include "discord/gateway.h"

#include "discord/strmap.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/url.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define GW_LOG "gateway"
#define NEVER  UINT64_MAX

/* Reconnecting at once after a healthy connection ended is allowed this
 * many times in a row, refilled one per QUICK_REFILL_MS: a server that
 * ends every session right after it starts is then met with a backoff
 * instead of a tight loop. */
#define QUICK_BURST     10
#define QUICK_REFILL_MS 6000
/* While connections keep failing, at most one log line per this. */
#define OUTAGE_LOG_MS 60000
/* Connections in a row that may try to resume through resume_gateway_url
 * and fail before RESUMED; then the session is given up for a fresh
 * IDENTIFY through the gateway URL (Discord's docs), so that a resume URL
 * that cannot be reached is not tried for ever. */
#define GW_RESUME_TRIES 3
/* Distinct event names counted one by one; Discord has about 80.  Names
 * past this many are counted together under GW_EVENT_OTHER, which no
 * Discord event is called (theirs are upper case). */
#define GW_EVENT_NAMES_MAX 128
#define GW_EVENT_OTHER     "other"

/* What to do once the transport we are closing has ended. */
typedef enum after_close {
  AFTER_POLICY,   /* not our close: decide from the close code */
  AFTER_RESUME,   /* reconnect and RESUME (IDENTIFY if no session) */
  AFTER_IDENTIFY, /* reconnect and IDENTIFY */
  AFTER_STOP,     /* stop for good */
  AFTER_DEFER,    /* connect again at defer_until (no IDENTIFY may go before) */
} after_close_t;

typedef struct outq {
  struct outq *next;
  size_t len;
  char text[];
} outq_t;

typedef struct ev_count {
  souk__smap_ent_t ent;
  uint64_t n;
  char name[];
} ev_count_t;

struct souk__gateway {
  souk__gateway_ops_t ops;
  void *ud;
  /* Settings. */
  uint32_t shard_id, shard_count;
  char *token;
  char *gateway_url;
  uint64_t intents;
  int compress;
  int large_threshold;
  char *status;
  char *activity;
  int activity_type;
  uint32_t send_limit, send_reserve, send_window_ms, queue_max, hello_timeout_ms;

  souk__gw_state_t state;
  after_close_t after;
  int stop_code;
  bool stop_requested;
  bool resume_next; /* the connection being opened is for a RESUME */
  /* The session was handed on by another process, whose presence Discord
   * still shows: send ours once it is resumed. */
  bool presence_on_resume;

  /* The session. */
  char *session_id;
  char *resume_url;
  uint64_t seq;

  /* Heartbeats. */
  uint64_t hb_interval;
  uint64_t hb_next; /* when the next beat is due, NEVER if none */
  uint64_t hb_sent; /* when the last beat went out */
  bool hb_acked;    /* the last beat was acknowledged */
  bool hb_pending;  /* a beat was sent on this connection */

  /* Other deadlines (NEVER when unset). */
  uint64_t hello_deadline;
  uint64_t identify_at;  /* op 9 d:false delay */
  uint64_t reconnect_at; /* backoff */
  uint64_t flush_at;     /* the send limit frees a slot */
  /* The deadline the transport's timer is set for (NEVER: stopped), or 0
   * when not known (at first, and once it has fired).  Every message
   * rearms, and the deadline rarely moves: the same one is not set again. */
  uint64_t armed;
  uint64_t defer_until;  /* AFTER_DEFER: when to connect again */
  bool identify_requested;
  unsigned failures; /* connections in a row that did not reach READY */
  unsigned resume_failures; /* of those, opened to RESUME (GW_RESUME_TRIES) */
  bool conn_ready;   /* this connection reached READY or RESUMED */
  uint64_t quick_tat; /* immediate-reconnect budget (GCRA theoretical time) */
  /* Connections failing in a row: reported once, then once a minute. */
  uint64_t outage_since, outage_logged;
  unsigned outage_unlogged;

  /* Send limiter: times of recent sends on this connection, in rings. */
  uint64_t *ring_all;
  uint32_t n_all, head_all;
  uint64_t *ring_user;
  uint32_t n_user, head_user;

  outq_t *q_head, *q_tail;
  uint32_t q_len;

  souk_json_t json;
  souk__smap_t events;
  uint32_t n_event_names; /* entries in events, GW_EVENT_OTHER included */
  souk__gateway_stats_t st;
  bool have_latency;
};

/* ---- helpers ------------------------------------------------------------ */

const char *souk__gw_state_name(souk__gw_state_t s) {
  static const char *const names[] = {"idle",        "connecting", "hello", "identify-wait",
                                      "identifying", "resuming",   "ready", "closing",
                                      "backoff",     "stopped",    "fatal"};
  return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

const char *souk__gateway_fatal_reason(int code) {
  switch (code) {
  case SOUK_GW_CLOSE_AUTHENTICATION_FAILED:
    return "authentication failed (close 4004): the bot token is wrong or was reset; set a "
           "valid token in SOUK_DISCORD_TOKEN";
  case SOUK_GW_CLOSE_INVALID_SHARD:
    return "invalid shard (close 4010): the shard id is not below the shard count; fix "
           "discord.shards.first/last/count";
  case SOUK_GW_CLOSE_SHARDING_REQUIRED:
    return "sharding required (close 4011): the bot is in too many guilds for its shard count; "
           "raise discord.shards.count or set it to 0 for Discord's recommendation";
  case SOUK_GW_CLOSE_INVALID_API_VERSION:
    return "invalid API version (close 4012): souk speaks gateway v10; check "
           "discord.gateway_url";
  case SOUK_GW_CLOSE_INVALID_INTENTS:
    return "invalid intents (close 4013): discord.intents contains a bit Discord does not "
           "know; fix discord.intents";
  case SOUK_GW_CLOSE_DISALLOWED_INTENTS:
    return "disallowed intents (close 4014): enable the privileged intents in the Developer "
           "Portal or remove them from discord.intents";
  default:
    return NULL;
  }
}

static uint64_t now(souk__gateway_t *gw) { return gw->ops.now_ms(gw->ud); }

static double rnd(souk__gateway_t *gw) {
  double r = gw->ops.rand01(gw->ud);
  return r < 0 ? 0 : (r >= 1 ? 0.999999 : r);
}

static void set_str(char **dst, const char *src) {
  /* src may be *dst itself (the presence sent again once resumed). */
  if (src == *dst) return;
  char *copy = src ? souk_strdup(src) : NULL;
  souk_free(*dst);
  *dst = copy;
}

static void forget_session(souk__gateway_t *gw) {
  set_str(&gw->session_id, NULL);
  set_str(&gw->resume_url, NULL);
  gw->seq = 0;
  gw->resume_failures = 0;
}

/* A connection opened to RESUME ended before RESUMED: after a few in a
 * row, give the session up and IDENTIFY anew through the gateway URL. */
static void resume_failed(souk__gateway_t *gw) {
  if (!gw->resume_next || !gw->session_id) return;
  if (++gw->resume_failures < GW_RESUME_TRIES) return;
  SOUK_WARN(GW_LOG,
            "shard %u: %u attempts to resume through %s failed: identifying anew through the "
            "gateway URL",
            gw->shard_id, gw->resume_failures, gw->resume_url ? gw->resume_url : gw->gateway_url);
  forget_session(gw);
}

/* A resume_gateway_url souk can connect to: ws:// or wss:// with a host.
 * Another is not used (resumes go through the gateway URL). */
static bool resume_url_ok(const char *url) {
  souk_url_t u;
  if (souk_url_parse(url, &u) != 0) return false;
  bool ok = (!strcmp(u.scheme, "wss") || !strcmp(u.scheme, "ws")) && u.port > 0;
  souk_url_free(&u);
  return ok;
}

static bool have_session(const souk__gateway_t *gw) { return gw->session_id != NULL; }

/* base + "?v=10&encoding=json[&compress=zlib-stream]", with a "/" path
 * added when base has none (Discord gives bare wss://host URLs). */
static char *build_url(const souk__gateway_t *gw, const char *base) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_puts(&b, base);
  const char *q = strchr(base, '?');
  if (!q) {
    const char *h = strstr(base, "://");
    h = h ? h + 3 : base;
    if (!strchr(h, '/')) souk_buf_putc(&b, '/');
    souk_buf_putc(&b, '?');
  } else if (b.len && b.data[b.len - 1] != '?' && b.data[b.len - 1] != '&') {
    souk_buf_putc(&b, '&');
  }
  souk_buf_puts(&b, "v=10&encoding=json");
  if (gw->compress == SOUK_GW_COMPRESS_ZLIB) souk_buf_puts(&b, "&compress=zlib-stream");
  if (gw->compress == SOUK_GW_COMPRESS_ZSTD) souk_buf_puts(&b, "&compress=zstd-stream");
  return souk_buf_steal(&b);
}

/* ---- timer -------------------------------------------------------------- */

static void rearm(souk__gateway_t *gw) {
  uint64_t next = NEVER;
  if (gw->hb_next < next) next = gw->hb_next;
  if (gw->hello_deadline < next) next = gw->hello_deadline;
  if (gw->identify_at < next) next = gw->identify_at;
  if (gw->reconnect_at < next) next = gw->reconnect_at;
  if (gw->q_head && gw->flush_at < next) next = gw->flush_at;
  if (next == gw->armed) return;
  gw->armed = next;
  if (next == NEVER) {
    gw->ops.timer(gw->ud, -1);
    return;
  }
  uint64_t t = now(gw);
  gw->ops.timer(gw->ud, next > t ? (int64_t)(next - t) : 0);
}

static void clear_conn_deadlines(souk__gateway_t *gw) {
  gw->hb_next = NEVER;
  gw->hello_deadline = NEVER;
  gw->identify_at = NEVER;
  gw->flush_at = NEVER;
  gw->hb_pending = false;
  gw->hb_acked = true;
  gw->identify_requested = false;
}

/* ---- send limiter ------------------------------------------------------- */

/* Drop ring entries older than the window. */
static void ring_expire(uint64_t *ring, uint32_t cap, uint32_t *n, uint32_t *head, uint64_t t,
                        uint32_t window) {
  while (*n) {
    uint32_t oldest = (*head + cap - *n) % cap;
    if (ring[oldest] + window > t) break;
    (*n)--;
  }
}

static void ring_push(uint64_t *ring, uint32_t cap, uint32_t *n, uint32_t *head, uint64_t t) {
  ring[*head] = t;
  *head = (*head + 1) % cap;
  if (*n < cap) (*n)++;
}

static uint64_t ring_oldest(const uint64_t *ring, uint32_t cap, uint32_t n, uint32_t head) {
  return ring[(head + cap - n) % cap];
}

static uint32_t user_cap(const souk__gateway_t *gw) { return gw->send_limit - gw->send_reserve; }

static void limiter_reset(souk__gateway_t *gw) {
  gw->n_all = gw->head_all = 0;
  gw->n_user = gw->head_user = 0;
}

static void limiter_expire(souk__gateway_t *gw, uint64_t t) {
  ring_expire(gw->ring_all, gw->send_limit, &gw->n_all, &gw->head_all, t, gw->send_window_ms);
  ring_expire(gw->ring_user, user_cap(gw), &gw->n_user, &gw->head_user, t, gw->send_window_ms);
}

/* May a payload go now?  Heartbeats only need a free slot of the whole
 * limit; everything else must also leave the reserved slots alone. */
static bool limiter_allows(souk__gateway_t *gw, bool heartbeat, uint64_t t) {
  limiter_expire(gw, t);
  if (gw->n_all >= gw->send_limit) return false;
  return heartbeat || gw->n_user < user_cap(gw);
}

/* When the next non-heartbeat payload may go. */
static uint64_t limiter_next(souk__gateway_t *gw) {
  uint64_t at = 0;
  if (gw->n_user >= user_cap(gw))
    at = ring_oldest(gw->ring_user, user_cap(gw), gw->n_user, gw->head_user) + gw->send_window_ms;
  if (gw->n_all >= gw->send_limit) {
    uint64_t a =
        ring_oldest(gw->ring_all, gw->send_limit, gw->n_all, gw->head_all) + gw->send_window_ms;
    if (a > at) at = a;
  }
  return at;
}

/* Send on the transport and account for it. */
static int raw_send(souk__gateway_t *gw, const char *text, size_t len, bool heartbeat) {
  if (len > SOUK_GATEWAY_PAYLOAD_MAX) {
    SOUK_ERROR(GW_LOG, "shard %u: refusing to send a %zu-byte payload (limit %d)", gw->shard_id,
               len, SOUK_GATEWAY_PAYLOAD_MAX);
    return SOUK_ETOOBIG;
  }
  uint64_t t = now(gw);
  limiter_expire(gw, t);
  ring_push(gw->ring_all, gw->send_limit, &gw->n_all, &gw->head_all, t);
  if (!heartbeat) ring_push(gw->ring_user, user_cap(gw), &gw->n_user, &gw->head_user, t);
  gw->st.sent++;
  return gw->ops.send(gw->ud, text, len);
}

/* Send queued payloads while the session is ready and the limit allows. */
static void flush(souk__gateway_t *gw) {
  gw->flush_at = NEVER;
  if (gw->state != SOUK_GW_READY) return;
  while (gw->q_head) {
    uint64_t t = now(gw);
    if (!limiter_allows(gw, false, t)) {
      gw->flush_at = limiter_next(gw);
      return;
    }
    outq_t *o = gw->q_head;
    gw->q_head = o->next;
    if (!gw->q_head) gw->q_tail = NULL;
    gw->q_len--;
    raw_send(gw, o->text, o->len, false);
    souk_free(o);
    /* A send may have re-entered and changed the state. */
    if (gw->state != SOUK_GW_READY) return;
  }
}

/* ---- payloads ----------------------------------------------------------- */

static void send_heartbeat(souk__gateway_t *gw) {
  char buf[64];
  /* d is the last sequence number received, or null before the first. */
  int n = gw->seq ? snprintf(buf, sizeof buf, "{\"op\":%d,\"d\":%" PRIu64 "}",
                             SOUK_GW_OP_HEARTBEAT, gw->seq)
                  : snprintf(buf, sizeof buf, "{\"op\":%d,\"d\":null}", SOUK_GW_OP_HEARTBEAT);
  gw->hb_sent = now(gw);
  gw->hb_acked = false;
  gw->hb_pending = true;
  gw->st.heartbeats++;
  raw_send(gw, buf, (size_t)n, true);
}

static void write_presence(souk_jw_t *w, const char *status, const char *activity, int type) {
  souk_jw_obj(w);
  souk_jw_key(w, "since");
  souk_jw_null(w);
  souk_jw_key(w, "activities");
  souk_jw_arr(w);
  if (activity && *activity) {
    souk_jw_obj(w);
    souk_jw_key(w, "name");
    souk_jw_str(w, activity);
    souk_jw_key(w, "type");
    souk_jw_i64(w, type);
    if (type == 4) {
      /* A custom status shows its "state"; the name is still required. */
      souk_jw_key(w, "state");
      souk_jw_str(w, activity);
    }
    souk_jw_end(w);
  }
  souk_jw_end(w);
  souk_jw_key(w, "status");
  souk_jw_str(w, status ? status : "online");
  souk_jw_key(w, "afk");
  souk_jw_bool(w, false);
  souk_jw_end(w);
}

static void send_identify(souk__gateway_t *gw) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk_jw_t w;
  souk_jw_init(&w, &b);
  souk_jw_obj(&w);
  souk_jw_key(&w, "op");
  souk_jw_i64(&w, SOUK_GW_OP_IDENTIFY);
  souk_jw_key(&w, "d");
  souk_jw_obj(&w);
  souk_jw_key(&w, "token");
  souk_jw_str(&w, gw->token);
  souk_jw_key(&w, "intents");
  souk_jw_u64(&w, gw->intents);
  souk_jw_key(&w, "properties");
  souk_jw_obj(&w);
  souk_jw_key(&w, "os");
  souk_jw_str(&w, "souk");
  souk_jw_key(&w, "browser");
  souk_jw_str(&w, "souk");
  souk_jw_key(&w, "device");
  souk_jw_str(&w, "souk");
  souk_jw_end(&w);
  /* Transport compression replaces per-payload compression. */
  souk_jw_key(&w, "compress");
  souk_jw_bool(&w, false);
  souk_jw_key(&w, "large_threshold");
  souk_jw_i64(&w, gw->large_threshold);
  if (gw->shard_count > 1) {
    souk_jw_key(&w, "shard");
    souk_jw_arr(&w);
    souk_jw_u64(&w, gw->shard_id);
    souk_jw_u64(&w, gw->shard_count);
    souk_jw_end(&w);
  }
  souk_jw_key(&w, "presence");
  write_presence(&w, gw->status, gw->activity, gw->activity_type);
  souk_jw_end(&w);
  souk_jw_end(&w);
  gw->st.identifies++;
  gw->state = SOUK_GW_IDENTIFYING;
  SOUK_INFO(GW_LOG, "shard %u: identifying", gw->shard_id);
  raw_send(gw, b.data, b.len, false);
  souk_buf_free(&b);
}

static void send_resume(souk__gateway_t *gw) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk_jw_t w;
  souk_jw_init(&w, &b);
  souk_jw_obj(&w);
  souk_jw_key(&w, "op");
  souk_jw_i64(&w, SOUK_GW_OP_RESUME);
  souk_jw_key(&w, "d");
  souk_jw_obj(&w);
  souk_jw_key(&w, "token");
  souk_jw_str(&w, gw->token);
  souk_jw_key(&w, "session_id");
  souk_jw_str(&w, gw->session_id);
  souk_jw_key(&w, "seq");
  souk_jw_u64(&w, gw->seq);
  souk_jw_end(&w);
  souk_jw_end(&w);
  gw->st.resumes++;
  gw->state = SOUK_GW_RESUMING;
  SOUK_INFO(GW_LOG, "shard %u: resuming at seq %" PRIu64, gw->shard_id, gw->seq);
  raw_send(gw, b.data, b.len, false);
  souk_buf_free(&b);
}

/* ---- connection lifecycle ----------------------------------------------- */

static void do_connect(souk__gateway_t *gw) {
  gw->reconnect_at = NEVER;
  clear_conn_deadlines(gw);
  gw->resume_next = have_session(gw);
  gw->conn_ready = false;
  const char *base = gw->resume_next && gw->resume_url ? gw->resume_url : gw->gateway_url;
  char *url = build_url(gw, base);
  if (gw->st.connects) gw->st.reconnects++;
  gw->st.connects++;
  gw->state = SOUK_GW_CONNECTING;
  gw->after = AFTER_POLICY;
  SOUK_DEBUG(GW_LOG, "shard %u: connecting to %s", gw->shard_id, url);
  gw->ops.connect(gw->ud, url);
  souk_free(url);
}

/* Wait, then reconnect.  Connections that keep failing back off
 * exponentially up to a minute, with jitter (so many shards do not all
 * retry in the same instant); a healthy connection that ended only comes
 * here once the budget of immediate reconnects is spent, and then waits
 * half a second to a second. */
static void schedule_reconnect(souk__gateway_t *gw) {
  uint64_t delay;
  if (gw->failures == 0) {
    delay = 500 + (uint64_t)(rnd(gw) * 500.0);
  } else {
    unsigned e = gw->failures - 1 > 6 ? 6 : gw->failures - 1;
    uint64_t base = 1000ull << e;
    if (base > 60000) base = 60000;
    delay = base / 2 + (uint64_t)(rnd(gw) * (double)(base / 2));
  }
  gw->state = SOUK_GW_BACKOFF;
  gw->reconnect_at = now(gw) + delay;
  /* During an outage the line about it says enough. */
  souk_log(gw->failures > 1 ? SOUK_LOG_DEBUG : SOUK_LOG_INFO, GW_LOG,
           "shard %u: reconnecting in %" PRIu64 " ms (%s)", gw->shard_id, delay,
           have_session(gw) ? "resume" : "identify");
}

/* Take one immediate reconnect from the budget, if any is left. */
static bool quick_take(souk__gateway_t *gw) {
  uint64_t t = now(gw);
  uint64_t tat = gw->quick_tat > t ? gw->quick_tat : t;
  if (tat - t > (uint64_t)(QUICK_BURST - 1) * QUICK_REFILL_MS) return false;
  gw->quick_tat = tat + QUICK_REFILL_MS;
  return true;
}

/* A connection has ended and the session goes on: after a healthy one,
 * connect again at once (a resume then costs a round trip, not a random
 * wait); after failures, back off. */
static void reconnect(souk__gateway_t *gw) {
  if (gw->failures == 0 && quick_take(gw)) {
    SOUK_DEBUG(GW_LOG, "shard %u: reconnecting at once (%s)", gw->shard_id,
               have_session(gw) ? "resume" : "identify");
    do_connect(gw);
    return;
  }
  schedule_reconnect(gw);
}

/* A connection failed before the session was ready: say so on the first
 * failure and then at most once a minute, however fast the retries. */
static void outage_note(souk__gateway_t *gw, int code, const char *reason) {
  uint64_t t = now(gw);
  const char *sep = reason && *reason ? ": " : "";
  if (!reason) reason = "";
  if (gw->failures == 1) {
    gw->outage_since = gw->outage_logged = t;
    gw->outage_unlogged = 0;
    SOUK_WARN(GW_LOG,
              "shard %u: gateway connection failed before the session was ready (close %d%s%s); "
              "retrying with backoff up to a minute apart",
              gw->shard_id, code, sep, reason);
  } else if (t - gw->outage_logged >= OUTAGE_LOG_MS) {
    SOUK_WARN(GW_LOG,
              "shard %u: gateway still unreachable after %" PRIu64
              " s: %u failed attempts since the last report, the last with close %d%s%s",
              gw->shard_id, (t - gw->outage_since) / 1000, gw->outage_unlogged + 1, code, sep,
              reason);
    gw->outage_logged = t;
    gw->outage_unlogged = 0;
  } else {
    gw->outage_unlogged++;
    SOUK_DEBUG(GW_LOG, "shard %u: connection attempt %u failed (close %d%s%s)", gw->shard_id,
               gw->failures, code, sep, reason);
  }
}

/* The session is live again: end an outage report. */
static void outage_over(souk__gateway_t *gw) {
  if (gw->failures > 1)
    SOUK_INFO(GW_LOG, "shard %u: connected again after %u failed attempts over %" PRIu64 " s",
              gw->shard_id, gw->failures, (now(gw) - gw->outage_since) / 1000);
  gw->failures = 0;
}

/* Close our transport and do `after` once it has ended. */
static void close_with(souk__gateway_t *gw, int code, after_close_t after) {
  clear_conn_deadlines(gw);
  gw->after = after;
  gw->state = SOUK_GW_CLOSING;
  gw->ops.close(gw->ud, code);
}

static void go_fatal(souk__gateway_t *gw, int code, const char *msg) {
  clear_conn_deadlines(gw);
  gw->reconnect_at = NEVER;
  gw->state = SOUK_GW_FATAL;
  /* The owner reports it: logging it here too would say the same thing
   * twice. */
  SOUK_DEBUG(GW_LOG, "shard %u: fatal close %d", gw->shard_id, code);
  gw->ops.fatal(gw->ud, code, msg);
}

static void go_stopped(souk__gateway_t *gw) {
  clear_conn_deadlines(gw);
  gw->reconnect_at = NEVER;
  gw->state = SOUK_GW_STOPPED;
  /* Closing with 1000/1001 ended the session on Discord's side. */
  if (gw->stop_code == SOUK_GW_CLOSE_NORMAL || gw->stop_code == SOUK_GW_CLOSE_GOING_AWAY)
    forget_session(gw);
  if (gw->ops.stopped) gw->ops.stopped(gw->ud);
}

/* The identify step: ask for a slot (once per wait). */
static void want_identify(souk__gateway_t *gw) {
  gw->state = SOUK_GW_IDENTIFY_WAIT;
  if (gw->identify_at != NEVER || gw->identify_requested) return;
  gw->identify_requested = true;
  gw->ops.request_identify(gw->ud);
}

/* ---- incoming payloads -------------------------------------------------- */

static void on_hello(souk__gateway_t *gw, const souk_json_t *j, int d) {
  if (gw->state != SOUK_GW_HELLO) return;
  int64_t iv = 0;
  if (souk_json_i64(j, souk_json_get(j, d, "heartbeat_interval"), &iv) || iv <= 0) {
    SOUK_WARN(GW_LOG, "shard %u: HELLO without a heartbeat interval", gw->shard_id);
    close_with(gw, SOUK_GATEWAY_CLOSE_RECONNECT, AFTER_RESUME);
    return;
  }
  gw->hello_deadline = NEVER;
  gw->hb_interval = (uint64_t)iv;
  gw->hb_acked = true;
  gw->hb_pending = false;
  /* Jitter the first beat so that many clients reconnecting together do
   * not all beat in the same instant (Discord's docs). */
  gw->hb_next = now(gw) + (uint64_t)((double)iv * rnd(gw));
  if (have_session(gw))
    send_resume(gw);
  else
    want_identify(gw);
}

static void on_ready_payload(souk__gateway_t *gw, const souk_json_t *j, int d) {
  char *sid = souk_json_strdup(j, souk_json_get(j, d, "session_id"));
  char *rurl = souk_json_strdup(j, souk_json_get(j, d, "resume_gateway_url"));
  souk_free(gw->session_id);
  gw->session_id = sid;
  souk_free(gw->resume_url);
  if (rurl && *rurl && !resume_url_ok(rurl)) {
    SOUK_WARN(GW_LOG, "shard %u: READY gave an unusable resume_gateway_url: resuming through the "
              "gateway URL", gw->shard_id);
    souk_free(rurl);
    rurl = NULL;
  }
  gw->resume_url = rurl && *rurl ? rurl : NULL;
  if (rurl && !*rurl) souk_free(rurl);
  gw->resume_failures = 0;
  if (!sid) SOUK_WARN(GW_LOG, "shard %u: READY without session_id", gw->shard_id);
  gw->state = SOUK_GW_READY;
  gw->conn_ready = true;
  outage_over(gw);
  SOUK_INFO(GW_LOG, "shard %u: ready", gw->shard_id);
}

static void count_event(souk__gateway_t *gw, const char *name) {
  souk__smap_ent_t *e = souk__smap_get(&gw->events, name);
  if (!e && gw->n_event_names >= GW_EVENT_NAMES_MAX) {
    /* The names come from the server: a buggy or hostile one could send a
     * new name with every dispatch and grow the map without end. */
    name = GW_EVENT_OTHER;
    e = souk__smap_get(&gw->events, name);
  }
  if (!e) {
    gw->n_event_names++;
    size_t n = strlen(name);
    ev_count_t *c = souk_calloc(1, sizeof *c + n + 1);
    memcpy(c->name, name, n + 1);
    souk__smap_put(&gw->events, &c->ent, c->name);
    e = &c->ent;
  }
  ((ev_count_t *)e)->n++;
}

static void on_dispatch(souk__gateway_t *gw, const souk_json_t *j, int t, int d) {
  char name[64];
  if (souk_json_str(j, t, name, sizeof name) < 0) return;
  gw->st.events++;
  count_event(gw, name);
  bool ready = false, resumed = false;
  if (!strcmp(name, "READY")) {
    on_ready_payload(gw, j, d);
    ready = true;
  } else if (!strcmp(name, "RESUMED")) {
    if (gw->state == SOUK_GW_RESUMING) {
      gw->state = SOUK_GW_READY;
      gw->conn_ready = true;
      gw->resume_failures = 0;
      outage_over(gw);
      gw->st.resumed++;
      SOUK_INFO(GW_LOG, "shard %u: resumed", gw->shard_id);
    }
    resumed = true;
  }
  gw->ops.dispatch(gw->ud, name, gw->seq, j, d);
  /* The handler may have stopped the session. */
  if (gw->state != SOUK_GW_READY) return;
  if (resumed && gw->presence_on_resume) {
    gw->presence_on_resume = false;
    souk__presence_t p = {gw->status, gw->activity, gw->activity_type};
    int rc = souk__gateway_set_presence(gw, &p);
    if (rc) SOUK_DEBUG(GW_LOG, "shard %u: presence not sent: %s", gw->shard_id, souk_strerror(rc));
  }
  if (ready && gw->ops.ready) gw->ops.ready(gw->ud);
  if (resumed && gw->ops.resumed) gw->ops.resumed(gw->ud);
  if (gw->state == SOUK_GW_READY) flush(gw);
}

static void on_invalid_session(souk__gateway_t *gw, bool resumable) {
  gw->st.invalid_sessions++;
  if (resumable && have_session(gw)) {
    SOUK_INFO(GW_LOG, "shard %u: invalid session (resumable): reconnecting", gw->shard_id);
    close_with(gw, SOUK_GATEWAY_CLOSE_RECONNECT, AFTER_RESUME);
    return;
  }
  /* Not resumable: forget the session, wait 1-5 s (Discord's docs), then
   * IDENTIFY on this connection. */
  forget_session(gw);
  uint64_t delay = 1000 + (uint64_t)(rnd(gw) * 4000.0);
  SOUK_INFO(GW_LOG, "shard %u: invalid session: identifying again in %" PRIu64 " ms", gw->shard_id,
            delay);
  gw->state = SOUK_GW_IDENTIFY_WAIT;
  gw->identify_requested = false;
  gw->identify_at = now(gw) + delay;
}

/* Token arrays above this many entries (a huge READY or GUILD_CREATE) are
 * released after the message rather than kept per shard for good. */
#define GW_TOKENS_KEEP 4096

static void handle_payload(souk__gateway_t *gw, const char *text, size_t len);

static void handle_message(souk__gateway_t *gw, const char *text, size_t len) {
  handle_payload(gw, text, len);
  if (gw->json.cap > GW_TOKENS_KEEP) souk_json_free(&gw->json);
}

static void handle_payload(souk__gateway_t *gw, const char *text, size_t len) {
  souk_json_t *j = &gw->json;
  if (souk_json_parse(j, text, len) != 0 || souk_json_type(j, 0) != SOUK_JSON_OBJECT) {
    SOUK_WARN(GW_LOG, "shard %u: malformed gateway payload: reconnecting", gw->shard_id);
    close_with(gw, SOUK_GATEWAY_CLOSE_RECONNECT, AFTER_RESUME);
    return;
  }
  int64_t op = -1;
  if (souk_json_i64(j, souk_json_get(j, 0, "op"), &op)) return;
  int d = souk_json_get(j, 0, "d");
  switch (op) {
  case SOUK_GW_OP_DISPATCH: {
    uint64_t s = 0;
    if (souk_json_u64(j, souk_json_get(j, 0, "s"), &s) == 0 && s) gw->seq = s;
    int t = souk_json_get(j, 0, "t");
    if (souk_json_type(j, t) == SOUK_JSON_STRING) on_dispatch(gw, j, t, d);
    break;
  }
  case SOUK_GW_OP_HEARTBEAT: /* the server asks for a heartbeat now */
    if (gw->hb_interval && gw->state != SOUK_GW_CLOSING) {
      uint64_t t = now(gw);
      if (limiter_allows(gw, true, t)) send_heartbeat(gw);
    }
    break;
  case SOUK_GW_OP_RECONNECT:
    SOUK_INFO(GW_LOG, "shard %u: Discord asked to reconnect", gw->shard_id);
    close_with(gw, SOUK_GATEWAY_CLOSE_RECONNECT, AFTER_RESUME);
    break;
  case SOUK_GW_OP_INVALID_SESSION: {
    bool resumable = false;
    souk_json_bool(j, d, &resumable);
    on_invalid_session(gw, resumable);
    break;
  }
  case SOUK_GW_OP_HELLO:
    on_hello(gw, j, d);
    break;
  case SOUK_GW_OP_HEARTBEAT_ACK:
    if (gw->hb_pending && !gw->hb_acked) {
      gw->hb_acked = true;
      int64_t lat = (int64_t)(now(gw) - gw->hb_sent);
      gw->st.latency_last_ms = lat;
      gw->st.latency_avg_ms =
          gw->have_latency ? gw->st.latency_avg_ms + (lat - gw->st.latency_avg_ms) / 8 : lat;
      gw->have_latency = true;
    }
    break;
  default:
    SOUK_DEBUG(GW_LOG, "shard %u: ignoring op %" PRId64, gw->shard_id, op);
    break;
  }
}

/* ---- public ------------------------------------------------------------- */

souk__gateway_t *souk__gateway_new(const souk__gateway_conf_t *c, const souk__gateway_ops_t *ops,
                                 void *ud) {
  if (!c || !ops || !c->token || !*c->token || !c->gateway_url || !*c->gateway_url || !ops->send ||
      !ops->close || !ops->connect || !ops->timer || !ops->request_identify || !ops->dispatch ||
      !ops->fatal || !ops->now_ms || !ops->rand01)
    return NULL;
  souk__gateway_t *gw = souk_calloc(1, sizeof *gw);
  gw->ops = *ops;
  gw->ud = ud;
  gw->shard_id = c->shard_id;
  gw->shard_count = c->shard_count;
  gw->token = souk_strdup(c->token);
  gw->gateway_url = souk_strdup(c->gateway_url);
  gw->intents = c->intents;
  gw->compress = c->compress;
  gw->large_threshold =
      c->large_threshold >= 50 && c->large_threshold <= 250 ? c->large_threshold : 50;
  gw->status = souk_strdup(c->presence.status ? c->presence.status : "online");
  gw->activity = souk_strdup(c->presence.activity);
  gw->activity_type = c->presence.activity_type;
  gw->send_limit = c->send_limit ? c->send_limit : 120;
  gw->send_reserve = c->send_reserve ? c->send_reserve : 10;
  if (gw->send_reserve >= gw->send_limit) gw->send_reserve = gw->send_limit - 1;
  gw->send_window_ms = c->send_window_ms ? c->send_window_ms : 60000;
  gw->queue_max = c->queue_max ? c->queue_max : 1000;
  gw->hello_timeout_ms = c->hello_timeout_ms ? c->hello_timeout_ms : 20000;
  gw->ring_all = souk_calloc(gw->send_limit, sizeof *gw->ring_all);
  gw->ring_user = souk_calloc(user_cap(gw), sizeof *gw->ring_user);
  if (c->session_id && *c->session_id) {
    gw->session_id = souk_strdup(c->session_id);
    gw->resume_url = c->resume_url && *c->resume_url ? souk_strdup(c->resume_url) : NULL;
    gw->seq = c->seq;
  }
  gw->state = SOUK_GW_IDLE;
  gw->reconnect_at = NEVER;
  clear_conn_deadlines(gw);
  gw->st.latency_last_ms = -1;
  gw->st.latency_avg_ms = -1;
  return gw;
}

void souk__gateway_free(souk__gateway_t *gw) {
  if (!gw) return;
  outq_t *o = gw->q_head;
  while (o) {
    outq_t *n = o->next;
    souk_free(o);
    o = n;
  }
  souk__smap_ent_t *e = souk__smap_next(&gw->events, NULL);
  while (e) {
    souk__smap_ent_t *n = souk__smap_next(&gw->events, e);
    souk__smap_del(&gw->events, e);
    souk_free(e);
    e = n;
  }
  souk__smap_free(&gw->events);
  souk_json_free(&gw->json);
  souk_free(gw->ring_all);
  souk_free(gw->ring_user);
  souk_free(gw->token);
  souk_free(gw->gateway_url);
  souk_free(gw->status);
  souk_free(gw->activity);
  souk_free(gw->session_id);
  souk_free(gw->resume_url);
  souk_free(gw);
}

bool souk__gateway_set_session(souk__gateway_t *gw, const char *session_id,
                               const char *resume_url, uint64_t seq) {
  if (gw->state != SOUK_GW_IDLE) return false;
  forget_session(gw);
  gw->presence_on_resume = false;
  if (session_id && *session_id) {
    gw->session_id = souk_strdup(session_id);
    gw->resume_url = resume_url && *resume_url ? souk_strdup(resume_url) : NULL;
    gw->seq = seq;
    gw->presence_on_resume = true;
  }
  return true;
}

void souk__gateway_start(souk__gateway_t *gw) {
  if (gw->state != SOUK_GW_IDLE && gw->state != SOUK_GW_STOPPED) return;
  gw->stop_requested = false;
  gw->failures = 0;
  do_connect(gw);
  rearm(gw);
}

void souk__gateway_stop(souk__gateway_t *gw, int code) {
  /* WebSocket's close codes are 1000..4999; anything else ends normally. */
  if (code < SOUK_GW_CLOSE_NORMAL || code > 4999) code = SOUK_GW_CLOSE_NORMAL;
  switch (gw->state) {
  case SOUK_GW_IDLE:
  case SOUK_GW_BACKOFF:
  case SOUK_GW_STOPPED:
  case SOUK_GW_FATAL:
    gw->stop_code = code;
    gw->stop_requested = true;
    go_stopped(gw);
    rearm(gw);
    return;
  case SOUK_GW_CLOSING:
    /* Already closing: once it has ended, stop instead of reconnecting. */
    gw->stop_code = code;
    gw->stop_requested = true;
    gw->after = AFTER_STOP;
    return;
  default:
    gw->stop_code = code;
    gw->stop_requested = true;
    close_with(gw, code, AFTER_STOP);
    rearm(gw);
    return;
  }
}

void souk__gateway_reconnect(souk__gateway_t *gw) {
  switch (gw->state) {
  case SOUK_GW_CONNECTING:
  case SOUK_GW_HELLO:
  case SOUK_GW_IDENTIFY_WAIT:
  case SOUK_GW_IDENTIFYING:
  case SOUK_GW_RESUMING:
  case SOUK_GW_READY:
    close_with(gw, SOUK_GATEWAY_CLOSE_RECONNECT, AFTER_RESUME);
    rearm(gw);
    break;
  default:
    break;
  }
}

void souk__gateway_on_open(souk__gateway_t *gw) {
  if (gw->state != SOUK_GW_CONNECTING) return;
  gw->state = SOUK_GW_HELLO;
  limiter_reset(gw);
  gw->hello_deadline = now(gw) + gw->hello_timeout_ms;
  rearm(gw);
}

void souk__gateway_on_message(souk__gateway_t *gw, const char *text, size_t len) {
  gw->st.bytes_in += len;
  gw->st.messages_in++;
  switch (gw->state) {
  case SOUK_GW_HELLO:
  case SOUK_GW_IDENTIFY_WAIT:
  case SOUK_GW_IDENTIFYING:
  case SOUK_GW_RESUMING:
  case SOUK_GW_READY:
    handle_message(gw, text, len);
    rearm(gw);
    break;
  default:
    /* Closing or not connected: late messages are of no use. */
    break;
  }
}

void souk__gateway_on_close(souk__gateway_t *gw, int code) {
  souk__gateway_on_close_reason(gw, code, NULL);
}

void souk__gateway_on_close_reason(souk__gateway_t *gw, int code, const char *reason) {
  souk__gw_state_t was = gw->state;
  if (was == SOUK_GW_IDLE || was == SOUK_GW_BACKOFF || was == SOUK_GW_STOPPED ||
      was == SOUK_GW_FATAL)
    return; /* no transport of ours */
  clear_conn_deadlines(gw);
  if (was == SOUK_GW_CLOSING) {
    /* A connection we closed before it reached READY or RESUMED (no
     * HELLO, a malformed payload, a corrupt stream, no heartbeat ACK, an
     * identify slot that could not be had) failed like one the server
     * closed: counted, so that a server that breaks every connection
     * early is met with the growing backoff, not a reconnect (and an
     * IDENTIFY) a second. */
    if (gw->after != AFTER_STOP && gw->after != AFTER_DEFER && !gw->conn_ready) {
      gw->failures++;
      outage_note(gw, code, reason);
      resume_failed(gw);
    }
    switch (gw->after) {
    case AFTER_STOP:
      go_stopped(gw);
      break;
    case AFTER_DEFER:
      /* Waiting for the identify budget is no failure of the connection:
       * no backoff, no outage report, just the wait. */
      gw->state = SOUK_GW_BACKOFF;
      gw->reconnect_at = gw->defer_until;
      break;
    case AFTER_IDENTIFY:
      forget_session(gw);
      reconnect(gw);
      break;
    case AFTER_RESUME:
    case AFTER_POLICY:
      reconnect(gw);
      break;
    }
    rearm(gw);
    return;
  }
  /* The transport ended without us asking. */
  const char *fatal = souk__gateway_fatal_reason(code);
  if (fatal) {
    go_fatal(gw, code, fatal);
    rearm(gw);
    return;
  }
  bool reached_ready = was == SOUK_GW_READY;
  if (code == SOUK_GW_CLOSE_INVALID_SEQ || code == SOUK_GW_CLOSE_SESSION_TIMED_OUT) {
    SOUK_INFO(GW_LOG, "shard %u: session %s (close %d): identifying again", gw->shard_id,
              code == SOUK_GW_CLOSE_INVALID_SEQ ? "has an invalid seq" : "timed out", code);
    forget_session(gw);
  }
  if (!reached_ready) {
    gw->failures++;
    outage_note(gw, code, reason);
    resume_failed(gw);
  } else if (code != SOUK_GW_CLOSE_INVALID_SEQ && code != SOUK_GW_CLOSE_SESSION_TIMED_OUT) {
    SOUK_INFO(GW_LOG, "shard %u: connection closed (%d%s%s): resuming", gw->shard_id, code,
              reason && *reason ? ": " : "", reason ? reason : "");
  }
  reconnect(gw);
  rearm(gw);
}

void souk__gateway_on_timer(souk__gateway_t *gw) {
  gw->armed = 0; /* a one-shot timer: it is set no more */
  uint64_t t = now(gw);
  if (gw->reconnect_at <= t) {
    gw->reconnect_at = NEVER;
    if (gw->state == SOUK_GW_BACKOFF) do_connect(gw);
  }
  if (gw->hello_deadline <= t) {
    gw->hello_deadline = NEVER;
    if (gw->state == SOUK_GW_HELLO) {
      SOUK_WARN(GW_LOG, "shard %u: no HELLO within %u ms: reconnecting", gw->shard_id,
                gw->hello_timeout_ms);
      close_with(gw, SOUK_GATEWAY_CLOSE_RECONNECT, AFTER_RESUME);
    }
  }
  if (gw->hb_next <= t) {
    if (gw->hb_pending && !gw->hb_acked) {
      /* No ACK since the last beat: the connection is a zombie.  Close
       * with a non-1000 code so the session stays resumable. */
      gw->st.zombies++;
      SOUK_WARN(GW_LOG, "shard %u: no heartbeat ACK within %" PRIu64 " ms: reconnecting",
                gw->shard_id, gw->hb_interval);
      close_with(gw, SOUK_GATEWAY_CLOSE_RECONNECT, AFTER_RESUME);
    } else {
      gw->hb_next = t + gw->hb_interval;
      send_heartbeat(gw);
    }
  }
  if (gw->identify_at <= t) {
    gw->identify_at = NEVER;
    if (gw->state == SOUK_GW_IDENTIFY_WAIT) want_identify(gw);
  }
  if (gw->flush_at <= t) flush(gw);
  rearm(gw);
}

bool souk__gateway_identify_granted(souk__gateway_t *gw) {
  gw->identify_requested = false;
  if (gw->state != SOUK_GW_IDENTIFY_WAIT || gw->identify_at != NEVER) return false;
  send_identify(gw);
  rearm(gw);
  return true;
}

void souk__gateway_identify_deferred(souk__gateway_t *gw, uint64_t delay_ms) {
  gw->identify_requested = false;
  if (gw->state != SOUK_GW_IDENTIFY_WAIT || gw->identify_at != NEVER) return;
  gw->st.identify_deferred++;
  gw->defer_until = now(gw) + delay_ms;
  SOUK_DEBUG(GW_LOG, "shard %u: IDENTIFY deferred for %" PRIu64 " ms: closing until then",
             gw->shard_id, delay_ms);
  /* A connection kept open would have to IDENTIFY within Discord's
   * timeout; closing it costs nothing and no session start. */
  close_with(gw, SOUK_GATEWAY_CLOSE_RECONNECT, AFTER_DEFER);
  rearm(gw);
}

int souk__gateway_send(souk__gateway_t *gw, const char *text, size_t len) {
  if (!text || !len) return SOUK_EINVAL;
  if (len > SOUK_GATEWAY_PAYLOAD_MAX) return SOUK_ETOOBIG;
  if (gw->state == SOUK_GW_FATAL || gw->stop_requested) return SOUK_ESTOPPED;
  if (gw->q_len >= gw->queue_max) return SOUK_EFULL;
  outq_t *o = souk_malloc(sizeof *o + len + 1);
  o->next = NULL;
  o->len = len;
  memcpy(o->text, text, len);
  o->text[len] = '\0';
  if (gw->q_tail)
    gw->q_tail->next = o;
  else
    gw->q_head = o;
  gw->q_tail = o;
  gw->q_len++;
  /* When the limit is holding the queue back, flush_at is already set and
   * the timer will get to this payload in turn. */
  if (gw->state == SOUK_GW_READY && gw->flush_at == NEVER) {
    flush(gw);
    rearm(gw);
  }
  return 0;
}

int souk__gateway_set_presence(souk__gateway_t *gw, const souk__presence_t *p) {
  if (!p) return SOUK_EINVAL;
  if (gw->state == SOUK_GW_FATAL || gw->stop_requested) return SOUK_ESTOPPED;
  /* Build the op 3 payload first: a presence too big to send is refused
   * whole, so it can never make a later IDENTIFY too big either. */
  souk_buf_t b;
  souk_buf_init(&b);
  souk_jw_t w;
  souk_jw_init(&w, &b);
  souk_jw_obj(&w);
  souk_jw_key(&w, "op");
  souk_jw_i64(&w, SOUK_GW_OP_PRESENCE_UPDATE);
  souk_jw_key(&w, "d");
  write_presence(&w, p->status, p->activity, p->activity_type);
  souk_jw_end(&w);
  if (b.len > SOUK_GATEWAY_PAYLOAD_MAX - 1024) {
    souk_buf_free(&b);
    return SOUK_ETOOBIG;
  }
  set_str(&gw->status, p->status ? p->status : "online");
  set_str(&gw->activity, p->activity);
  gw->activity_type = p->activity_type;
  int rc = 0;
  /* Without a session the next IDENTIFY carries the presence; a session
   * (live or to be resumed) gets op 3 through the queue, which is sent as
   * soon as it is ready. */
  if (gw->state == SOUK_GW_READY || have_session(gw)) {
    rc = souk__gateway_send(gw, b.data, b.len);
    /* The queued op 3 is the presence a resumed session must show. */
    if (rc == 0) gw->presence_on_resume = false;
  }
  souk_buf_free(&b);
  return rc;
}

void souk__gateway_stats(const souk__gateway_t *gw, souk__gateway_stats_t *out) {
  *out = gw->st;
  out->state = gw->state;
  out->seq = gw->seq;
  out->queued = gw->q_len;
}

souk__gw_state_t souk__gateway_state(const souk__gateway_t *gw) { return gw->state; }

uint64_t souk__gateway_event_count(const souk__gateway_t *gw, const char *name) {
  souk__smap_ent_t *e = souk__smap_get(&gw->events, name);
  return e ? ((ev_count_t *)e)->n : 0;
}

void souk__gateway_event_counts(const souk__gateway_t *gw,
                               void (*fn)(void *ud, const char *name, uint64_t n), void *ud) {
  for (souk__smap_ent_t *e = souk__smap_next(&gw->events, NULL); e;
       e = souk__smap_next(&gw->events, e)) {
    ev_count_t *c = (ev_count_t *)e;
    fn(ud, c->name, c->n);
  }
}

bool souk__gateway_session(const souk__gateway_t *gw, const char **session_id,
                          const char **resume_url, uint64_t *seq) {
  if (!have_session(gw)) return false;
  if (session_id) *session_id = gw->session_id;
  if (resume_url) *resume_url = gw->resume_url;
  if (seq) *seq = gw->seq;
  return true;
}
