/* Discord actions for modules (include/souk/discord.h, dapi.h).
 *
 * One operation (dop_t) per public call: it owns the JSON bodies it sends,
 * counts the requests it has out, and calls the module's callback exactly
 * once when the last one completed.  Operations that end without any
 * request (a DM to a user who refused DMs) are completed from a zero
 * timer, so a callback never runs inside the call that started it. */
#include "discord/dapi.h"

#include "discord/dconf.h"
#include "discord/dlimit.h"
#include "discord/dmsg.h"
#include "discord/gateway.h"
#include "discord/gcache.h"
#include "discord/msgsplit.h"
#include "discord/shards.h"
#include "discord/snowflake.h"
#include "discord/strmap.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#define COMP "discord"

/* Presence: Discord's limit per shard. */
#define PRESENCE_LIMIT     5
#define PRESENCE_WINDOW_MS 60000
#define PRESENCE_TEXT_MAX  128
/* While the shards cannot take a presence yet, try again this often. */
#define PRESENCE_RETRY_MS 5000
/* DM channels remembered, and users remembered as refusing DMs. */
#define DM_CACHE_MAX  4096
#define DM_REFUSED_MS (60 * 60 * 1000)
/* Messages edited through the coalescer at once. */
#define COAL_MAX          4096
#define COAL_MIN_INTERVAL 1000
/* The rename guard forgets channels with nothing left to count this often. */
#define GC_MS           60000
#define RENAME_NAME_MAX 100

typedef enum dop_kind { OP_SEND, OP_EDIT, OP_DELETE, OP_DM, OP_RENAME, OP_GET } dop_kind_t;

static const char *const kind_names[] = {"send", "edit", "delete", "dm", "rename", "get"};

typedef struct dop dop_t;

/* One request of an operation. */
typedef struct dpart {
  dop_t *op;
  unsigned idx;
} dpart_t;

struct dop {
  dop_kind_t kind;
  souk_discord_cb cb;
  souk_discord_json_cb jcb;
  void *ud;
  uint64_t channel, message, user;
  souk_buf_t *bodies; /* POST bodies, one per message part */
  size_t nbodies;
  dpart_t *parts;
  unsigned pending; /* requests out */
  bool have_result;
  souk_discord_result_t res;
  uint64_t rename_at; /* the guard's count of this rename */
  dop_t *next;        /* on the later list */
};

/* A u64 -> u64 entry of the DM maps. */
typedef struct u64ent {
  souk__smap_ent_t ent;
  uint64_t val;
  char key[24];
} u64ent_t;

static struct {
  bool running;
  const souk__dapi_sink_t *sink;
  uint64_t (*now)(void);
  souk__rguard_t *rguard;
  souk__coal_t *coal;
  uv_timer_t *coal_timer;
  uint64_t coal_at;
  uv_timer_t *later_timer;
  dop_t *later_head, *later_tail;
  uv_timer_t *presence_timer;
  souk__wlim_t presence_w;
  bool presence_pending;
  char presence_text[4 * PRESENCE_TEXT_MAX + 1];
  int presence_type;
  uv_timer_t *gc_timer;
  souk__smap_t dm_channels; /* user -> DM channel */
  souk__smap_t dm_refused;  /* user -> refused until (clock ms) */
  unsigned nonce_seq;
  souk__dapi_stats_t st;
} g;

static uint64_t now_ms(void) { return g.now ? g.now() : souk_now_ms(); }

void souk__dapi_set_clock(uint64_t (*fn)(void)) { g.now = fn; }

void souk__dapi_stats(souk__dapi_stats_t *out) {
  *out = g.st;
  if (g.coal) souk__coal_counts(g.coal, NULL, &out->edits_coalesced);
}

/* ---- small maps ---------------------------------------------------------------- */

static u64ent_t *u64_get(souk__smap_t *m, uint64_t k) {
  char key[24];
  snprintf(key, sizeof key, "%" PRIu64, k);
  return (u64ent_t *)souk__smap_get(m, key);
}

static void u64_clear(souk__smap_t *m) {
  souk__smap_ent_t *e = souk__smap_next(m, NULL);
  while (e) {
    souk__smap_ent_t *nx = souk__smap_next(m, e);
    souk__smap_del(m, e);
    souk_free(e);
    e = nx;
  }
  souk__smap_free(m);
}

/* Bounded: a full map starts over, which only costs a lookup again. */
static void u64_put(souk__smap_t *m, uint64_t k, uint64_t v) {
  u64ent_t *e = u64_get(m, k);
  if (!e) {
    if (m->n >= DM_CACHE_MAX) u64_clear(m);
    e = souk_calloc(1, sizeof *e);
    snprintf(e->key, sizeof e->key, "%" PRIu64, k);
    souk__smap_put(m, &e->ent, e->key);
  }
  e->val = v;
}

static void u64_del(souk__smap_t *m, uint64_t k) {
  u64ent_t *e = u64_get(m, k);
  if (!e) return;
  souk__smap_del(m, &e->ent);
  souk_free(e);
}

/* ---- operations ---------------------------------------------------------------- */

static dop_t *op_new(dop_kind_t kind, souk_discord_cb cb, void *ud) {
  dop_t *op = souk_calloc(1, sizeof *op);
  op->kind = kind;
  op->cb = cb;
  op->ud = ud;
  return op;
}

static void op_free(dop_t *op) {
  for (size_t i = 0; i < op->nbodies; i++)
    souk_buf_free(&op->bodies[i]);
  souk_free(op->bodies);
  souk_free(op->parts);
  souk_free(op);
}

/* Call the module back and free op. */
static void op_finish(dop_t *op, const souk_json_t *j) {
  if (op->res.err) {
    g.st.failed++;
    if (op->res.err != SOUK_ESTOPPED)
      SOUK_DEBUG(COMP, "%s failed: %s (HTTP %d, code %d)", kind_names[op->kind],
                 souk_strerror(op->res.err), op->res.status, op->res.code);
  }
  if (op->kind == OP_GET) {
    if (op->jcb) op->jcb(&op->res, op->res.err ? NULL : j, 0, op->ud);
  } else if (op->cb) {
    op->cb(&op->res, op->ud);
  }
  op_free(op);
}

static void later_cb(uv_timer_t *t) {
  dop_t *op;
  while ((op = g.later_head)) {
    g.later_head = op->next;
    if (!g.later_head) g.later_tail = NULL;
    op_finish(op, NULL);
  }
}

/* Complete op with its result from the loop, outside the caller's call. */
static void op_later(dop_t *op) {
  op->next = NULL;
  if (g.later_tail)
    g.later_tail->next = op;
  else
    g.later_head = op;
  g.later_tail = op;
  uv_timer_start(g.later_timer, later_cb, 0, 0);
}

/* The result of one response: Discord's error code and retry_after from
 * the body, and the error mapped from the status. */
static void result_of(const souk__rest_resp_t *r, const souk_json_t *j,
                      souk_discord_result_t *res) {
  memset(res, 0, sizeof *res);
  res->err = r->err;
  res->status = r->status;
  if (r->status >= 400 && j) {
    int64_t code = 0;
    if (souk_json_i64(j, souk_json_get(j, 0, "code"), &code) == 0) res->code = (int)code;
    double ra = 0;
    if (souk_json_double(j, souk_json_get(j, 0, "retry_after"), &ra) == 0 && ra > 0)
      res->retry_after_ms = (uint64_t)(ra * 1000.0 + 0.5);
  }
  /* Discord refused the body itself: the caller's mistake, not an outage. */
  if (r->err == SOUK_EHTTP && r->status == 400) res->err = SOUK_EINVAL;
  if (r->status == 429) res->err = SOUK_ERATELIMIT;
}

static bool parse_body(const souk__rest_resp_t *r, souk_json_t *j) {
  if (!r->body || !r->body_len) return false;
  const char *b = r->body;
  size_t n = r->body_len;
  while (n && (*b == ' ' || *b == '\n' || *b == '\r' || *b == '\t'))
    b++, n--;
  if (!n || (*b != '{' && *b != '[')) return false;
  return souk_json_parse(j, r->body, r->body_len) == 0;
}

/* ---- message bodies ------------------------------------------------------------ */

static bool msg_empty(const souk_msg_t *m) {
  return !m || ((!m->content || !m->content[0]) && m->nembeds == 0 && m->ncomponents == 0);
}

/* The nonce of a message named key, posted to where (a channel, or for a
 * DM the user): Discord enforces a nonce per author, not per channel, so
 * one name posted to two channels must give two nonces, or the second
 * post would be answered with the first message and never made.  FNV-1a
 * of both, 16 hex digits: with the part number, well inside Discord's 25
 * characters however long the key is. */
static uint64_t key_nonce(const char *key, uint64_t where) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (const char *p = key; *p; p++)
    h = (h ^ (unsigned char)*p) * UINT64_C(0x100000001b3);
  for (int i = 0; i < 8; i++)
    h = (h ^ ((where >> (8 * i)) & 0xff)) * UINT64_C(0x100000001b3);
  return h;
}

/* The JSON bodies that post m to where: content split at 2000 characters,
 * embeds and components with the first part, nonces Discord enforces
 * (derived from m->key and where, or reply_to, else unique to this
 * process's run) so a POST sent again after a timeout is not posted twice,
 * and the first part replying to reply_to. */
static size_t build_posts(const souk_msg_t *m, uint64_t where, uint64_t reply_to,
                          souk_buf_t **out) {
  const char *text = m->content ? m->content : "";
  size_t len = strlen(text), n = 0, cap = 0;
  souk_buf_t *v = NULL;
  bool extras_sent = false;
  uint64_t run = souk_rand64();
  unsigned seq = ++g.nonce_seq;
  do {
    size_t skip, chunk = souk__msg_chunk(text, len, SOUK_MSG_CONTENT_MAX, &skip);
    bool extras = !extras_sent && (m->nembeds || m->ncomponents);
    if (chunk > 0 || extras) {
      if (n == cap) {
        cap = cap ? cap * 2 : 2;
        v = souk_reallocarray(v, cap, sizeof *v);
      }
      souk_buf_t *b = &v[n];
      souk_buf_init(b);
      souk_jw_t w;
      souk_jw_init(&w, b);
      souk_jw_obj(&w);
      souk__dmsg_write(&w, m, text, chunk, !extras_sent, false, 0);
      extras_sent = true;
      char nonce[32];
      if (m->key && m->key[0])
        snprintf(nonce, sizeof nonce, "k%016" PRIx64 "-%zu", key_nonce(m->key, where), n);
      else if (reply_to)
        snprintf(nonce, sizeof nonce, "r%" PRIu64 "-%zu", reply_to, n);
      else
        snprintf(nonce, sizeof nonce, "s%08x%04x-%zu", (unsigned)(run & 0xffffffffu), seq & 0xffffu,
                 n);
      souk_jw_key(&w, "nonce");
      souk_jw_str(&w, nonce);
      souk_jw_key(&w, "enforce_nonce");
      souk_jw_bool(&w, true);
      if (reply_to && n == 0) {
        souk_jw_key(&w, "message_reference");
        souk_jw_obj(&w);
        souk_jw_key(&w, "message_id");
        souk_jw_snowflake(&w, reply_to);
        souk_jw_key(&w, "fail_if_not_exists");
        souk_jw_bool(&w, false);
        souk_jw_end(&w);
      }
      souk_jw_end(&w);
      n++;
    }
    text += chunk + skip;
    len -= chunk + skip;
  } while (len > 0);
  *out = v;
  return n;
}

/* The body of an edit replacing a whole message: content cut to 2000
 * characters (an edit cannot be split). */
static void build_edit(const souk_msg_t *m, souk_buf_t *b) {
  souk_buf_init(b);
  souk_jw_t w;
  souk_jw_init(&w, b);
  souk_jw_obj(&w);
  const char *text = m->content ? m->content : "";
  size_t len = strlen(text), skip;
  size_t chunk = souk__msg_chunk(text, len, SOUK_MSG_CONTENT_MAX, &skip);
  if (chunk < len) {
    /* Cut, with room for the ellipsis. */
    chunk = souk__msg_chunk(text, len, SOUK_MSG_CONTENT_MAX - 1, &skip);
    char *tmp = souk_malloc(chunk + 4);
    memcpy(tmp, text, chunk);
    memcpy(tmp + chunk, "\xE2\x80\xA6", 3);
    souk__dmsg_write(&w, m, tmp, chunk + 3, true, true, 0);
    souk_free(tmp);
  } else {
    souk__dmsg_write(&w, m, text, chunk, true, true, 0);
  }
  souk_jw_end(&w);
}

/* ---- sending ------------------------------------------------------------------- */

static int issue(dop_t *op, unsigned idx, const char *method, const char *path, const char *body,
                 size_t len, unsigned flags, souk__rest_cb cb) {
  souk__rest_opts_t o = {
      .method = method, .path = path, .body = body, .body_len = len, .flags = flags};
  op->parts[idx].op = op;
  op->parts[idx].idx = idx;
  int rc = g.sink->request(&o, cb, &op->parts[idx]);
  if (rc == 0) op->pending++;
  return rc;
}

static void part_done_cb(const souk__rest_resp_t *r, void *ud);

/* Send op as its one request (body: its first body, if any), counting it
 * in *stat.  On failure op is freed and the error returned. */
static int op_send_one(dop_t *op, const char *method, const char *path, unsigned flags,
                       uint64_t *stat) {
  op->parts = souk_calloc(1, sizeof *op->parts);
  const souk_buf_t *b = op->nbodies ? &op->bodies[0] : NULL;
  int rc = issue(op, 0, method, path, b ? b->data : NULL, b ? b->len : 0, flags, part_done_cb);
  if (rc) {
    op_free(op);
    return rc;
  }
  (*stat)++;
  return 0;
}

/* Post op's bodies to channel.  0 when at least the first went out (the
 * operation then finishes from the callbacks), else the error. */
static int post_bodies(dop_t *op, uint64_t channel) {
  char path[64];
  snprintf(path, sizeof path, "/channels/%" PRIu64 "/messages", channel);
  op->channel = channel;
  op->parts = souk_calloc(op->nbodies, sizeof *op->parts);
  for (size_t i = 0; i < op->nbodies; i++) {
    int rc = issue(op, (unsigned)i, "POST", path, op->bodies[i].data, op->bodies[i].len, 0,
                   part_done_cb);
    if (rc == 0) continue;
    if (i == 0) return rc;
    /* The first part is on its way: report the rest's failure through it. */
    if (!op->have_result) {
      op->have_result = true;
      op->res.err = rc;
    }
    break;
  }
  return 0;
}

static void refuse_dms(uint64_t user) {
  u64_put(&g.dm_refused, user, now_ms() + DM_REFUSED_MS);
  /* The DM channel is no use now, and may be gone when DMs reopen. */
  u64_del(&g.dm_channels, user);
}

static void part_done_cb(const souk__rest_resp_t *r, void *ud) {
  dpart_t *p = ud;
  dop_t *op = p->op;
  souk_json_t j = {0};
  bool parsed = parse_body(r, &j);
  souk_discord_result_t res;
  result_of(r, parsed ? &j : NULL, &res);
  res.channel_id = op->channel;
  if (op->kind == OP_SEND || op->kind == OP_DM) {
    if (p->idx == 0 && !res.err && parsed)
      res.message_id = souk__json_id(&j, souk_json_get(&j, 0, "id"));
  } else {
    res.message_id = op->message;
  }
  if (op->kind == OP_RENAME && res.err) {
    if (r->status == 0) {
      /* It never reached Discord, so it counted for nothing there. */
      souk__rguard_untake(g.rguard, op->channel, op->rename_at);
    } else if (r->status == 429) {
      /* Another process renamed, or Discord counts differently: believe
       * it, and refuse locally until it allows again. */
      uint64_t wait = res.retry_after_ms ? res.retry_after_ms : SOUK__RENAME_WINDOW_MS;
      souk__rguard_block(g.rguard, op->channel, now_ms() + wait);
      SOUK_WARN(COMP, "channel %" PRIu64 ": Discord refused a rename for %" PRIu64 " s",
                op->channel, wait / 1000);
    }
  }
  if (op->kind == OP_DM && res.code == SOUK_DISCORD_CANNOT_DM) refuse_dms(op->user);
  /* The first error wins; the message id is the first part's. */
  uint64_t first_id = op->res.message_id;
  if (!op->have_result || (res.err && !op->res.err)) op->res = res;
  op->res.message_id = p->idx == 0 && res.message_id ? res.message_id : first_id;
  op->have_result = true;
  if (--op->pending == 0) op_finish(op, parsed ? &j : NULL);
  souk_json_free(&j);
}

/* ---- public API ---------------------------------------------------------------- */

static int check_running(void) { return g.running ? 0 : SOUK_ESTOPPED; }

int souk__dapi_post(uint64_t channel, uint64_t reply_to, const souk_msg_t *m, souk_discord_cb cb,
                    void *ud) {
  int rc = check_running();
  if (rc) return rc;
  if (!channel || msg_empty(m)) return SOUK_EINVAL;
  dop_t *op = op_new(OP_SEND, cb, ud);
  op->nbodies = build_posts(m, channel, reply_to, &op->bodies);
  rc = post_bodies(op, channel);
  if (rc) {
    op_free(op);
    return rc;
  }
  g.st.sent++;
  return 0;
}

int souk_discord_send(uint64_t channel_id, const souk_msg_t *msg, souk_discord_cb cb, void *ud) {
  return souk__dapi_post(channel_id, 0, msg, cb, ud);
}

int souk_discord_edit(uint64_t channel_id, uint64_t message_id, const souk_msg_t *msg,
                      souk_discord_cb cb, void *ud) {
  int rc = check_running();
  if (rc) return rc;
  if (!channel_id || !message_id || msg_empty(msg)) return SOUK_EINVAL;
  dop_t *op = op_new(OP_EDIT, cb, ud);
  op->channel = channel_id;
  op->message = message_id;
  op->bodies = souk_calloc(1, sizeof *op->bodies);
  op->nbodies = 1;
  build_edit(msg, &op->bodies[0]);
  char path[96];
  snprintf(path, sizeof path, "/channels/%" PRIu64 "/messages/%" PRIu64, channel_id, message_id);
  return op_send_one(op, "PATCH", path, 0, &g.st.edits);
}

int souk_discord_delete(uint64_t channel_id, uint64_t message_id, souk_discord_cb cb, void *ud) {
  int rc = check_running();
  if (rc) return rc;
  if (!channel_id || !message_id) return SOUK_EINVAL;
  dop_t *op = op_new(OP_DELETE, cb, ud);
  op->channel = channel_id;
  op->message = message_id;
  char path[96];
  snprintf(path, sizeof path, "/channels/%" PRIu64 "/messages/%" PRIu64, channel_id, message_id);
  return op_send_one(op, "DELETE", path, 0, &g.st.deletes);
}

/* ---- coalesced edits ----------------------------------------------------------- */

typedef struct coal_req {
  uint64_t channel, message;
} coal_req_t;

static void coal_arm(void);

static void coal_done_cb(const souk__rest_resp_t *r, void *ud) {
  coal_req_t *cr = ud;
  if (g.coal) {
    souk_json_t j = {0};
    bool parsed = parse_body(r, &j);
    souk_discord_result_t res;
    result_of(r, parsed ? &j : NULL, &res);
    bool gone =
        res.code == SOUK_DISCORD_UNKNOWN_MESSAGE || res.code == SOUK_DISCORD_UNKNOWN_CHANNEL;
    if (res.err && res.err != SOUK_ESTOPPED)
      SOUK_WARN(COMP, "coalesced edit of message %" PRIu64 " failed: %s (HTTP %d, code %d)",
                cr->message, souk_strerror(res.err), res.status, res.code);
    if (res.err) g.st.failed++;
    souk__coal_done(g.coal, cr->message, gone, now_ms());
    souk_json_free(&j);
    coal_arm();
  }
  souk_free(cr);
}

static int coal_send(uint64_t channel, uint64_t message, const char *body, size_t len, void *ud) {
  char path[96];
  snprintf(path, sizeof path, "/channels/%" PRIu64 "/messages/%" PRIu64, channel, message);
  coal_req_t *cr = souk_calloc(1, sizeof *cr);
  cr->channel = channel;
  cr->message = message;
  souk__rest_opts_t o = {.method = "PATCH", .path = path, .body = body, .body_len = len};
  int rc = g.sink->request(&o, coal_done_cb, cr);
  if (rc) {
    souk_free(cr);
    SOUK_DEBUG(COMP, "coalesced edit of message %" PRIu64 " not sent yet: %s", message,
               souk_strerror(rc));
  } else {
    g.st.edits++;
  }
  return rc;
}

static void coal_timer_cb(uv_timer_t *t) {
  g.coal_at = UINT64_MAX;
  coal_arm();
}

/* Send what is due and wake up when the next thing may be. */
static void coal_arm(void) {
  if (!g.coal) return;
  uint64_t now = now_ms();
  uint64_t next = souk__coal_pump(g.coal, now);
  if (next == UINT64_MAX) {
    uv_timer_stop(g.coal_timer);
    g.coal_at = UINT64_MAX;
    return;
  }
  if (next == g.coal_at) return;
  g.coal_at = next;
  uv_timer_start(g.coal_timer, coal_timer_cb, next > now ? next - now : 0, 0);
}

static int edit_coalesced(uint64_t channel_id, uint64_t message_id, const souk_msg_t *msg,
                          uint32_t min_interval_ms, uint64_t version) {
  int rc = check_running();
  if (rc) return rc;
  if (!channel_id || !message_id || msg_empty(msg)) return SOUK_EINVAL;
  if (min_interval_ms < COAL_MIN_INTERVAL) min_interval_ms = COAL_MIN_INTERVAL;
  souk_buf_t b;
  build_edit(msg, &b);
  rc = souk__coal_put_v(g.coal, channel_id, message_id, b.data, b.len, min_interval_ms, version,
                        now_ms());
  souk_buf_free(&b);
  if (rc == 0) coal_arm();
  return rc;
}

int souk_discord_edit_latest(uint64_t channel_id, uint64_t message_id, const souk_msg_t *msg,
                             uint32_t min_interval_ms) {
  return edit_coalesced(channel_id, message_id, msg, min_interval_ms, 0);
}

int souk_discord_edit_versioned(uint64_t channel_id, uint64_t message_id, const souk_msg_t *msg,
                                uint32_t min_interval_ms, uint64_t version) {
  if (!version) return SOUK_EINVAL;
  return edit_coalesced(channel_id, message_id, msg, min_interval_ms, version);
}

/* ---- DMs ----------------------------------------------------------------------- */

static void dm_open_cb(const souk__rest_resp_t *r, void *ud) {
  dpart_t *p = ud;
  dop_t *op = p->op;
  op->pending--;
  souk_json_t j = {0};
  bool parsed = parse_body(r, &j);
  souk_discord_result_t res;
  result_of(r, parsed ? &j : NULL, &res);
  uint64_t channel = res.err || !parsed ? 0 : souk__json_id(&j, souk_json_get(&j, 0, "id"));
  souk_json_free(&j);
  if (!res.err && !channel) res.err = SOUK_EPROTO;
  if (res.err) {
    if (res.code == SOUK_DISCORD_CANNOT_DM) refuse_dms(op->user);
    op->res = res;
    op_finish(op, NULL);
    return;
  }
  u64_put(&g.dm_channels, op->user, channel);
  souk_free(op->parts);
  op->parts = NULL;
  int rc = g.running ? post_bodies(op, channel) : SOUK_ESTOPPED;
  if (rc) {
    op->res.err = rc;
    op->res.channel_id = channel;
    op_finish(op, NULL);
  }
}

int souk_discord_dm(uint64_t user_id, const souk_msg_t *msg, souk_discord_cb cb, void *ud) {
  int rc = check_running();
  if (rc) return rc;
  if (!user_id || msg_empty(msg)) return SOUK_EINVAL;
  dop_t *op = op_new(OP_DM, cb, ud);
  op->user = user_id;
  u64ent_t *refused = u64_get(&g.dm_refused, user_id);
  if (refused && refused->val > now_ms()) {
    /* Known to refuse: asking again would only count against the
     * invalid-request limit. */
    op->res.err = SOUK_EFORBIDDEN;
    op->res.code = SOUK_DISCORD_CANNOT_DM;
    g.st.dms_refused++;
    op_later(op);
    return 0;
  }
  if (refused) u64_del(&g.dm_refused, user_id);
  op->nbodies = build_posts(msg, user_id, 0, &op->bodies);
  u64ent_t *ch = u64_get(&g.dm_channels, user_id);
  if (ch) {
    rc = post_bodies(op, ch->val);
  } else {
    souk_buf_t b;
    souk_buf_init(&b);
    souk_buf_printf(&b, "{\"recipient_id\":\"%" PRIu64 "\"}", user_id);
    op->parts = souk_calloc(1, sizeof *op->parts);
    rc = issue(op, 0, "POST", "/users/@me/channels", b.data, b.len, 0, dm_open_cb);
    souk_buf_free(&b);
  }
  if (rc) {
    op_free(op);
    return rc;
  }
  g.st.dms++;
  return 0;
}

/* ---- renames ------------------------------------------------------------------- */

uint64_t souk_discord_rename_wait_ms(uint64_t channel_id) {
  return g.rguard ? souk__rguard_wait(g.rguard, channel_id, now_ms()) : 0;
}

static size_t utf8_chars(const char *s) {
  size_t c = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) c++;
  return c;
}

int souk_discord_rename_channel(uint64_t channel_id, const char *name, souk_discord_cb cb,
                                void *ud) {
  int rc = check_running();
  if (rc) return rc;
  if (!channel_id || !name) return SOUK_EINVAL;
  size_t chars = utf8_chars(name);
  if (chars < 1 || chars > RENAME_NAME_MAX) return SOUK_EINVAL;
  uint64_t now = now_ms(), wait = 0;
  if (souk__rguard_take(g.rguard, channel_id, now, &wait) != 0) {
    g.st.renames_refused++;
    SOUK_DEBUG(COMP, "rename of channel %" PRIu64 " refused: allowed again in %" PRIu64 " ms",
               channel_id, wait);
    return SOUK_ERATELIMIT;
  }
  dop_t *op = op_new(OP_RENAME, cb, ud);
  op->channel = channel_id;
  op->rename_at = now;
  op->bodies = souk_calloc(1, sizeof *op->bodies);
  op->nbodies = 1;
  souk_buf_init(&op->bodies[0]);
  souk_jw_t w;
  souk_jw_init(&w, &op->bodies[0]);
  souk_jw_obj(&w);
  souk_jw_key(&w, "name");
  souk_jw_str(&w, name);
  souk_jw_end(&w);
  char path[64];
  snprintf(path, sizeof path, "/channels/%" PRIu64, channel_id);
  /* A 429 here means ~10 minutes: fail at once rather than hold the
   * channel's queue that long. */
  rc = op_send_one(op, "PATCH", path, SOUK_REST_FAIL_429, &g.st.renames);
  if (rc) souk__rguard_untake(g.rguard, channel_id, now);
  return rc;
}

/* ---- GET ----------------------------------------------------------------------- */

int souk_discord_get(const char *path, souk_discord_json_cb cb, void *ud) {
  int rc = check_running();
  if (rc) return rc;
  if (!path || path[0] != '/') return SOUK_EINVAL;
  dop_t *op = op_new(OP_GET, NULL, ud);
  op->jcb = cb;
  return op_send_one(op, "GET", path, 0, &g.st.gets);
}

/* ---- presence ------------------------------------------------------------------ */

static const char *presence_status(void) {
  static const char *const names[] = {"online", "idle", "dnd", "invisible"};
  int i = souk__discord_conf.presence_status;
  return i >= 0 && i < 4 ? names[i] : "online";
}

static void presence_pump(void);

static void presence_timer_cb(uv_timer_t *t) { presence_pump(); }

/* Send the waiting presence when the window allows, else wake up then. */
static void presence_pump(void) {
  if (!g.presence_pending || !g.running) return;
  uint64_t now = now_ms();
  uint64_t wait = souk__wlim_wait(&g.presence_w, PRESENCE_LIMIT, PRESENCE_WINDOW_MS, now);
  if (wait) {
    uv_timer_start(g.presence_timer, presence_timer_cb, wait, 0);
    return;
  }
  int rc = g.sink->presence(presence_status(), g.presence_text[0] ? g.presence_text : NULL,
                            g.presence_type);
  if (rc) {
    SOUK_DEBUG(COMP, "presence not set yet: %s", souk_strerror(rc));
    uv_timer_start(g.presence_timer, presence_timer_cb, PRESENCE_RETRY_MS, 0);
    return;
  }
  souk__wlim_take(&g.presence_w, PRESENCE_LIMIT, PRESENCE_WINDOW_MS, now);
  g.presence_pending = false;
  g.st.presences++;
}

int souk_discord_set_presence(const char *text, int activity_type) {
  int rc = check_running();
  if (rc) return rc;
  if (text && utf8_chars(text) > PRESENCE_TEXT_MAX) return SOUK_EINVAL;
  if (activity_type < 0 || activity_type > 5 || activity_type == 1) return SOUK_EINVAL;
  if (g.presence_pending) g.st.presences_delayed++;
  snprintf(g.presence_text, sizeof g.presence_text, "%s", text ? text : "");
  g.presence_type = activity_type;
  g.presence_pending = true;
  /* Sent from the loop even when the window is open, so a burst of calls
   * within one callback sends only its last. */
  uv_timer_start(g.presence_timer, presence_timer_cb, 0, 0);
  return 0;
}

/* ---- identity and permissions -------------------------------------------------- */

uint64_t souk_discord_bot_user_id(void) {
  if (g.running && g.sink->bot_user) return g.sink->bot_user();
  return souk__gcache_bot_user();
}

uint64_t souk_discord_intents(void) { return (uint64_t)souk__discord_conf.intents; }

bool souk_discord_bot_can(uint64_t guild_id, uint64_t channel_id, uint64_t perm_bits) {
  if (g.running && g.sink->all_permissions) return true;
  uint64_t p;
  if (!souk__gcache_bot_perms(guild_id, channel_id, &p)) return false;
  return (p & perm_bits) == perm_bits;
}

/* ---- the REST sink ------------------------------------------------------------- */

static int rest_presence(const char *status, const char *text, int activity_type) {
  if (!souk__shards_running()) return SOUK_ESTOPPED;
  souk__presence_t p = {status, text, activity_type};
  return souk__shards_set_presence(&p);
}

const souk__dapi_sink_t souk__dapi_rest_sink = {
    .name = "rest",
    .request = souk__rest_request,
    .presence = rest_presence,
};

/* ---- metrics ------------------------------------------------------------------- */

/* Mirrors g.st at scrape time; the families outlive a stop (the registry
 * owns them), the collector does not. */
static void collect(void *ud) {
  static const char *const actions[] = {"send",   "edit", "delete",  "dm",
                                        "rename", "get",  "presence"};
  const uint64_t counts[] = {g.st.sent,    g.st.edits, g.st.deletes,  g.st.dms,
                             g.st.renames, g.st.gets,  g.st.presences};
  for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
    souk_counter_set_named("souk_discord_actions_total", SOUK_LV(actions[i]), (double)counts[i]);
  souk_counter_set_named("souk_discord_actions_failed_total", NULL, (double)g.st.failed);
  souk_counter_set_named("souk_discord_actions_refused_total", SOUK_LV("rename_window"),
                         (double)g.st.renames_refused);
  souk_counter_set_named("souk_discord_actions_refused_total", SOUK_LV("dm_closed"),
                         (double)g.st.dms_refused);
  uint64_t coalesced = 0;
  if (g.coal) souk__coal_counts(g.coal, NULL, &coalesced);
  souk_counter_set_named("souk_discord_edits_coalesced_total", NULL, (double)coalesced);
  souk_gauge_set_named("souk_discord_edits_tracked", NULL,
                       g.coal ? (double)souk__coal_size(g.coal) : 0);
  souk_counter_set_named("souk_discord_presence_delayed_total", NULL,
                         (double)g.st.presences_delayed);
}

static void metrics_register(void) {
  souk_counter_new("souk_discord_actions_total",
                   "Discord actions modules asked for (alerts, edits, DMs, renames, ...), by "
                   "action.",
                   "action");
  souk_counter_new("souk_discord_actions_failed_total",
                   "Discord actions that completed with an error.", NULL);
  souk_counter_new("souk_discord_actions_refused_total",
                   "Actions souk refused before sending, by reason (rename_window: a third "
                   "rename of a channel in 10 minutes; dm_closed: a user known to refuse DMs).",
                   "reason");
  souk_counter_new("souk_discord_edits_coalesced_total",
                   "Message states replaced by a newer one before their edit was sent.", NULL);
  souk_gauge_new("souk_discord_edits_tracked", "Messages whose edits are being coalesced now.",
                 NULL);
  souk_counter_new("souk_discord_presence_delayed_total",
                   "Presence updates that waited for Discord's 5 per minute.", NULL);
  souk_metrics_add_collector(collect, NULL);
}

/* ---- start and stop ------------------------------------------------------------ */

static void gc_timer_cb(uv_timer_t *t) {
  uint64_t now = now_ms();
  souk__rguard_gc(g.rguard, now);
  souk__smap_ent_t *e = souk__smap_next(&g.dm_refused, NULL);
  while (e) {
    souk__smap_ent_t *nx = souk__smap_next(&g.dm_refused, e);
    if (((u64ent_t *)e)->val <= now) {
      souk__smap_del(&g.dm_refused, e);
      souk_free(e);
    }
    e = nx;
  }
}

static uv_timer_t *timer_new(void) {
  uv_timer_t *t = souk_malloc(sizeof *t);
  uv_timer_init(souk_loop(), t);
  return t;
}

int souk__dapi_start(const souk__dapi_sink_t *sink) {
  if (g.running) return SOUK_EBUSY;
  uint64_t (*clock)(void) = g.now;
  memset(&g, 0, sizeof g);
  g.now = clock;
  g.sink = sink;
  g.rguard = souk__rguard_new();
  g.coal = souk__coal_new(COAL_MAX, coal_send, NULL);
  g.coal_at = UINT64_MAX;
  g.coal_timer = timer_new();
  g.later_timer = timer_new();
  g.presence_timer = timer_new();
  /* Housekeeping never keeps an otherwise finished loop alive; the other
   * timers run only while work waits, and that work must be done. */
  g.gc_timer = souk_timer_every(GC_MS, gc_timer_cb, NULL, 1);
  metrics_register();
  g.running = true;
  return 0;
}

void souk__dapi_stop(void) {
  if (!g.running) return;
  /* What the sink still holds completes first, while everything it may
   * call back into is alive. */
  if (g.sink->stop) g.sink->stop();
  /* A presence still waiting for the loop goes now if it may (the console
   * ends a piped script within one loop turn). */
  presence_pump();
  g.running = false;
  souk_metrics_remove_collector(collect, NULL);
  /* Completions already decided go out now. */
  later_cb(g.later_timer);
  size_t waiting = souk__coal_size(g.coal);
  if (waiting || g.presence_pending)
    SOUK_INFO(COMP, "stopping with %zu coalesced edit(s) tracked%s", waiting,
              g.presence_pending ? " and a presence update waiting" : "");
  souk__coal_free(g.coal);
  g.coal = NULL;
  souk__rguard_free(g.rguard);
  g.rguard = NULL;
  souk_timer_free(&g.coal_timer);
  souk_timer_free(&g.later_timer);
  souk_timer_free(&g.presence_timer);
  souk_timer_free(&g.gc_timer);
  u64_clear(&g.dm_channels);
  u64_clear(&g.dm_refused);
}
