/* Discord's command surfaces (see commands.h).
 *
 * An interaction is answered once with an interaction response (POST
 * /interactions/{id}/{token}/callback, or the HTTP response body for the
 * HTTP endpoint); everything after that goes through the interaction's
 * webhook: PATCH .../messages/@original to edit the response (or the
 * message a deferred component was on), POST /webhooks/{app}/{token} for
 * follow-ups.  Discord refuses a follow-up sent before the response has
 * been received, so the requests of one interaction go out one after the
 * other, each after the previous one completed. */
#include "discord/commands.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cmdrun.h"
#include "discord/dapi.h"
#include "discord/dconf.h"
#include "discord/dmsg.h"
#include "discord/msgsplit.h"
#include "discord/rest.h"
#include "discord/gcache.h"
#include "discord/interactions.h"
#include "discord/snowflake.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/cluster.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/recovery.h"
#include "souk/store.h"

/* ---- state ----------------------------------------------------------------- */

static struct {
  bool started;
  uint64_t bot_user;
  uint64_t app_id;
  bool reg_started;
  bool owners_asked;
  souk__dcmd_reg_state_t reg_state;
  uint64_t reg_hash;
  char reg_scope[48];
  char *reg_body;
  size_t reg_len;
} g;

/* Where the registered command set's hash is kept (set by the wiring). */
static souk_store_t *g_store;

void souk__dcmd_set_store(souk_store_t *st) { g_store = st; }

uint64_t souk__dcmd_hash(const void *data, size_t n, uint64_t h) {
  const unsigned char *p = data;
  if (h == 0) h = UINT64_C(1469598103934665603);
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= UINT64_C(1099511628211);
  }
  return h;
}

souk__dcmd_reg_state_t souk__dcmd_reg_state(void) { return g.reg_state; }

/* ---- sequential interaction requests ------------------------------------------ */

/* Where an interaction's responses and follow-ups go: the REST client, or
 * what a test or the fuzzer hooked in (souk__dcmd_set_ix_send). */
static int (*g_ix_send)(const souk__rest_opts_t *o, souk__rest_cb cb,
                        void *ud) = souk__rest_request;

void souk__dcmd_set_ix_send(int (*fn)(const souk__rest_opts_t *o, souk__rest_cb cb, void *ud)) {
  g_ix_send = fn ? fn : souk__rest_request;
}

typedef struct ixop {
  struct ixop *next;
  bool initial; /* the interaction response: nothing after it works without it */
  char method[8];
  char *path;
  char *body;
  size_t len;
} ixop_t;

typedef struct ixs {
  bool http;
  souk__ix_t *ix; /* HTTP: owed the initial response until it is sent */
  uint64_t id, app_id;
  char *token;
  int type;
  bool defer_ephemeral;
  bool answered_initial;
  ixop_t *head, *tail;
  bool busy, released, sending_initial;
  /* HTTP: webhook calls wait a moment after the response was handed to
   * the HTTP server, so Discord has it before the first follow-up. */
  bool hold, timer_on;
  uv_timer_t timer;
} ixs_t;

static void ixs_drop(ixs_t *s);

static void ixs_free(ixs_t *s) {
  ixs_drop(s);
  souk_free(s->token);
  souk_free(s);
}

/* How long webhook calls wait after an HTTP interaction response. */
#define HTTP_HOLD_MS 750

static void ixs_pump(ixs_t *s);

/* Forget every queued request. */
static void ixs_drop(ixs_t *s) {
  while (s->head) {
    ixop_t *o = s->head;
    s->head = o->next;
    souk_free(o->path);
    souk_free(o->body);
    souk_free(o);
  }
  s->tail = NULL;
}

static void ixs_done_cb(const souk__rest_resp_t *r, void *ud) {
  ixs_t *s = ud;
  s->busy = false;
  bool initial = s->sending_initial;
  s->sending_initial = false;
  if (r->err) {
    souk_error_record("discord.reply", SOUK_SEV_MEDIUM, r->err, NULL,
                      "interaction %" PRIu64 ": %s: HTTP %d", s->id, r->route, r->status);
    SOUK_WARN("cmd", "interaction %" PRIu64 ": %s failed: %s (HTTP %d)%s", s->id, r->route,
              souk_strerror(r->err), r->status,
              initial && s->head ? "; dropping the rest of its replies" : "");
    /* Without the initial response every webhook call fails too; after
     * it, one failed call (a DELETE, say) must not lose the answer. */
    if (initial) ixs_drop(s);
  }
  ixs_pump(s);
}

static void ixs_free_cb(uv_handle_t *h) { ixs_free(h->data); }

static void ixs_pump(ixs_t *s) {
  while (!s->busy && !s->hold && s->head) {
    ixop_t *o = s->head;
    s->head = o->next;
    if (!s->head) s->tail = NULL;
    souk__rest_opts_t ro = {.method = o->method,
                           .path = o->path,
                           .body = o->body,
                           .body_len = o->len,
                           .flags = SOUK_REST_NO_AUTH};
    bool initial = o->initial;
    int rc = g_ix_send(&ro, ixs_done_cb, s);
    souk_free(o->path);
    souk_free(o->body);
    souk_free(o);
    if (rc == 0) {
      s->busy = true;
      s->sending_initial = initial;
      return;
    }
    SOUK_WARN("cmd", "interaction %" PRIu64 ": cannot send a reply: %s", s->id,
              souk_strerror(rc));
    if (initial) ixs_drop(s);
  }
  if (!s->busy && !s->head && s->released) {
    if (s->timer_on) {
      s->timer_on = false;
      s->timer.data = s;
      uv_close((uv_handle_t *)&s->timer, ixs_free_cb);
    } else {
      ixs_free(s);
    }
  }
}

static void ixs_hold_cb(uv_timer_t *t) {
  ixs_t *s = t->data;
  s->hold = false;
  ixs_pump(s);
}

/* Queue a request; path is printf'd from the interaction's ids. */
static void ixs_push(ixs_t *s, const char *method, const char *suffix, souk_buf_t *body) {
  ixop_t *o = souk_calloc(1, sizeof *o);
  snprintf(o->method, sizeof o->method, "%s", method);
  souk_buf_t p;
  souk_buf_init(&p);
  if (!strcmp(suffix, "callback"))
    souk_buf_printf(&p, "/interactions/%" PRIu64 "/%s/callback", s->id, s->token);
  else
    souk_buf_printf(&p, "/webhooks/%" PRIu64 "/%s%s", s->app_id, s->token, suffix);
  o->path = souk_strdup(p.data);
  souk_buf_free(&p);
  o->initial = !strcmp(suffix, "callback");
  if (body && body->len) {
    o->body = souk_malloc(body->len + 1);
    memcpy(o->body, body->data, body->len);
    o->body[body->len] = '\0';
    o->len = body->len;
  }
  if (s->tail) s->tail->next = o;
  else s->head = o;
  s->tail = o;
  ixs_pump(s);
}

/* Send the initial interaction response (type + data already in body).
 * Over HTTP it is the response body; returns false when the HTTP layer had
 * already deferred in our place (then the caller continues as deferred). */
static bool ixs_initial(ixs_t *s, souk_buf_t *body) {
  s->answered_initial = true;
  if (s->http) {
    souk__ix_t *ix = s->ix;
    s->ix = NULL;
    if (!ix) return false;
    int rc = souk__ix_respond(ix, body->data, body->len);
    if (rc == SOUK_EINVAL) {
      /* Not JSON: a bug here, but the interaction is still owed. */
      SOUK_ERROR("cmd", "interaction %" PRIu64 ": an invalid response was not sent", s->id);
      static const char fallback[] =
          "{\"type\":4,\"data\":{\"content\":\"Something went wrong.\",\"flags\":64}}";
      rc = souk__ix_respond(ix, fallback, sizeof fallback - 1);
    }
    if (rc == 0) {
      uv_timer_init(souk_loop(), &s->timer);
      s->timer.data = s;
      s->timer_on = true;
      s->hold = true;
      uv_timer_start(&s->timer, ixs_hold_cb, HTTP_HOLD_MS, 0);
    }
    return rc == 0;
  }
  ixs_push(s, "POST", "callback", body);
  return true;
}

/* ---- the interaction surface ------------------------------------------------ */

static int ix_defer(souk_cmd_ctx_t *ctx, bool ephemeral) {
  ixs_t *s = ctx->surface_data;
  souk_buf_t b;
  souk_buf_init(&b);
  if (s->type == SOUK_IX_MESSAGE_COMPONENT) {
    souk_buf_puts(&b, "{\"type\":6}");
  } else {
    s->defer_ephemeral = ephemeral;
    souk_buf_puts(&b, ephemeral ? "{\"type\":5,\"data\":{\"flags\":64}}" : "{\"type\":5}");
  }
  ixs_initial(s, &b);
  souk_buf_free(&b);
  return 0;
}

/* Content chunks after the first, as follow-ups. */
static void followups(ixs_t *s, const char *text, size_t len, unsigned flags) {
  souk_buf_t b;
  souk_buf_init(&b);
  while (len > 0) {
    size_t skip, n = souk__msg_chunk(text, len, SOUK_MSG_CONTENT_MAX, &skip);
    if (n > 0) {
      souk_buf_reset(&b);
      souk_jw_t w;
      souk_jw_init(&w, &b);
      souk_jw_obj(&w);
      souk__dmsg_write(&w, NULL, text, n, false, false, flags);
      souk_jw_end(&w);
      ixs_push(s, "POST", "", &b);
    }
    text += n + skip;
    len -= n + skip;
  }
  souk_buf_free(&b);
}

static void ix_deliver(souk_cmd_ctx_t *ctx, const souk__out_t *out, bool deferred) {
  ixs_t *s = ctx->surface_data;
  if (out->kind == SOUK__OUT_ACK) {
    /* A deferred update (type 6): the click is acknowledged and the
     * message stays as it is.  A component the core deferred already got
     * exactly that; a modal it deferred shows "thinking...", removed. */
    if (!deferred) {
      souk_buf_t b;
      souk_buf_init(&b);
      souk_buf_puts(&b, "{\"type\":6}");
      ixs_initial(s, &b);
      souk_buf_free(&b);
    } else if (s->type == SOUK_IX_MODAL_SUBMIT) {
      ixs_push(s, "DELETE", "/messages/@original", NULL);
    }
    return;
  }
  souk_buf_t b;
  souk_buf_init(&b);
  souk_jw_t w;
  souk_jw_init(&w, &b);
  if (out->kind == SOUK__OUT_CHOICES || out->kind == SOUK__OUT_MODAL) {
    souk_jw_obj(&w);
    souk_jw_key(&w, "type");
    souk_jw_i64(&w, out->kind == SOUK__OUT_CHOICES ? 8 : 9);
    souk_jw_key(&w, "data");
    souk_jw_obj(&w);
    if (out->kind == SOUK__OUT_CHOICES)
      souk__dmsg_choices(&w, out->choices, out->nchoices, out->choice_type);
    else souk__dmsg_modal(&w, out->modal);
    souk_jw_end(&w);
    souk_jw_end(&w);
    ixs_initial(s, &b);
    souk_buf_free(&b);
    return;
  }
  const souk_msg_t *m = out->msg;
  bool update = out->kind == SOUK__OUT_UPDATE;
  const char *text = m->content ? m->content : "";
  size_t len = strlen(text), skip;
  size_t first = souk__msg_chunk(text, len, SOUK_MSG_CONTENT_MAX, &skip);
  const char *rest = text + first + skip;
  size_t rest_len = len - first - skip;
  unsigned flags = m->ephemeral ? SOUK_DMSG_EPHEMERAL : 0;
  if (!deferred) {
    souk_jw_obj(&w);
    souk_jw_key(&w, "type");
    souk_jw_i64(&w, update ? 7 : 4);
    souk_jw_key(&w, "data");
    souk_jw_obj(&w);
    souk__dmsg_write(&w, m, text, first, true, update, update ? 0 : flags);
    souk_jw_end(&w);
    souk_jw_end(&w);
    if (ixs_initial(s, &b)) {
      followups(s, rest, rest_len, flags);
      souk_buf_free(&b);
      return;
    }
    /* The HTTP layer deferred for us meanwhile: finish as deferred. */
    souk_buf_reset(&b);
    souk_jw_init(&w, &b);
  }
  bool component = s->type == SOUK_IX_MESSAGE_COMPONENT;
  if (component && !update) {
    /* A deferred component acknowledged the press; a reply is a new
     * message. */
    souk_jw_obj(&w);
    souk__dmsg_write(&w, m, text, first, true, false, flags);
    souk_jw_end(&w);
    ixs_push(s, "POST", "", &b);
  } else if (!component && m->ephemeral && !s->defer_ephemeral) {
    /* "Thinking..." was public; a private answer replaces it (sent
     * first, so a failed delete cannot lose it). */
    souk_jw_obj(&w);
    souk__dmsg_write(&w, m, text, first, true, false, flags);
    souk_jw_end(&w);
    ixs_push(s, "POST", "", &b);
    followups(s, rest, rest_len, flags);
    ixs_push(s, "DELETE", "/messages/@original", NULL);
    souk_buf_free(&b);
    return;
  } else {
    souk_jw_obj(&w);
    souk__dmsg_write(&w, m, text, first, true, true, 0);
    souk_jw_end(&w);
    ixs_push(s, "PATCH", "/messages/@original", &b);
  }
  followups(s, rest, rest_len, flags);
  souk_buf_free(&b);
}

static void ix_release(souk_cmd_ctx_t *ctx) {
  ixs_t *s = ctx->surface_data;
  if (s->ix) {
    /* Never answered (the core always answers, so this is defensive). */
    souk__ix_respond(s->ix, "{\"type\":5}", 10);
    s->ix = NULL;
  }
  s->released = true;
  ixs_pump(s);
}

static const souk__surface_t ix_gateway_surface = {"gateway", ix_defer, ix_deliver, ix_release};
static const souk__surface_t ix_http_surface = {"http", ix_defer, ix_deliver, ix_release};

/* The display name: nick, else global name, else username. */
static void user_name_of(const souk_json_t *j, int member, int user, char *out, size_t cap) {
  out[0] = '\0';
  /* souk_json_str returns the length; null, absent and "" all fall
   * through to the next name. */
  if (member >= 0 && souk_json_str(j, souk_json_get(j, member, "nick"), out, cap) > 0) return;
  if (souk_json_str(j, souk_json_get(j, user, "global_name"), out, cap) > 0) return;
  if (souk_json_str(j, souk_json_get(j, user, "username"), out, cap) <= 0) out[0] = '\0';
}

/* Modal fields: rows of text inputs, or label components holding one. */
static size_t modal_fields(const souk_json_t *j, int data, souk_cmd_field_t *out, char **bufs,
                           size_t cap) {
  size_t n = 0;
  int rows = souk_json_get(j, data, "components");
  size_t nr = rows >= 0 ? souk_json_count(j, rows) : 0;
  for (size_t i = 0; i < nr && n < cap; i++) {
    int row = souk_json_at(j, rows, i);
    int inner = souk_json_get(j, row, "components");
    int single = souk_json_get(j, row, "component");
    size_t ni = inner >= 0 ? souk_json_count(j, inner) : (single >= 0 ? 1 : 0);
    for (size_t k = 0; k < ni && n < cap; k++) {
      int c = inner >= 0 ? souk_json_at(j, inner, k) : single;
      char *id = souk_json_strdup(j, souk_json_get(j, c, "custom_id"));
      char *val = souk_json_strdup(j, souk_json_get(j, c, "value"));
      if (!id) {
        souk_free(val);
        continue;
      }
      bufs[2 * n] = id;
      bufs[2 * n + 1] = val ? val : souk_strdup("");
      out[n].custom_id = bufs[2 * n];
      out[n].value = bufs[2 * n + 1];
      n++;
    }
  }
  return n;
}

#define MAX_VALUES 25
#define MAX_FIELDS 5

static void handle_interaction(const souk_json_t *j, int d, bool http, souk__ix_t *ix,
                               uint32_t shard) {
  int64_t type = 0;
  souk_json_i64(j, souk_json_get(j, d, "type"), &type);
  ixs_t *s = souk_calloc(1, sizeof *s);
  s->http = http;
  s->ix = ix;
  s->type = (int)type;
  s->id = souk__json_id(j, souk_json_get(j, d, "id"));
  s->app_id = souk__json_id(j, souk_json_get(j, d, "application_id"));
  if (!s->app_id) s->app_id = g.app_id ? g.app_id : souk__discord_conf.application_id;
  s->token = souk_json_strdup(j, souk_json_get(j, d, "token"));
  if (!s->id || !s->token) {
    SOUK_WARN("cmd", "an interaction without id or token was ignored");
    if (ix) souk__ix_respond(ix, "{\"type\":5}", 10);
    souk_free(s->token);
    souk_free(s);
    return;
  }
  int member = souk_json_get(j, d, "member");
  int user = member >= 0 ? souk_json_get(j, member, "user") : souk_json_get(j, d, "user");
  uint64_t user_id = souk__json_id(j, souk_json_get(j, user, "id"));
  if (!user_id) {
    /* Run as user 0 it would act on an account nobody owns (a trade, a
     * balance).  The HTTP endpoint refuses these with 400 before here. */
    SOUK_WARN("cmd", "an interaction that names no user (no member.user.id, no user.id) was "
                     "ignored");
    if (ix) souk__ix_respond(ix, "{\"type\":5}", 10);
    souk_free(s->token);
    souk_free(s);
    return;
  }
  char name[100], idem[40];
  user_name_of(j, member, user, name, sizeof name);
  snprintf(idem, sizeof idem, "ix:%" PRIu64, s->id);
  souk__cmdrun_init_t in = {
      .surface = http ? &ix_http_surface : &ix_gateway_surface,
      .surface_data = s,
      .user_id = user_id,
      .user_name = name,
      .guild_id = souk__json_id(j, souk_json_get(j, d, "guild_id")),
      .channel_id = souk__json_id(j, souk_json_get(j, d, "channel_id")),
      .permissions = member >= 0 ? souk__json_id(j, souk_json_get(j, member, "permissions")) : 0,
      .shard = shard,
      .idem_key = idem,
  };
  if (!in.channel_id) in.channel_id = souk__json_id(j, souk_json_path(j, d, "channel", "id", NULL));
  int data = souk_json_get(j, d, "data");
  if (type == SOUK_IX_APPLICATION_COMMAND || type == SOUK_IX_AUTOCOMPLETE) {
    in.kind = type == SOUK_IX_AUTOCOMPLETE ? SOUK_CMD_KIND_AUTOCOMPLETE : SOUK_CMD_KIND_COMMAND;
    souk_cmd_args_t args;
    int rc = souk__cmd_parse_interaction(j, data, type == SOUK_IX_AUTOCOMPLETE, &args);
    souk__cmd_invoke(&in, &args, rc);
    souk_cmd_args_free(&args);
    return;
  }
  if (type == SOUK_IX_MESSAGE_COMPONENT || type == SOUK_IX_MODAL_SUBMIT) {
    in.kind = type == SOUK_IX_MODAL_SUBMIT ? SOUK_CMD_KIND_MODAL : SOUK_CMD_KIND_COMPONENT;
    char *custom_id = souk_json_strdup(j, souk_json_get(j, data, "custom_id"));
    char *vals[MAX_VALUES];
    size_t nv = 0;
    int values = souk_json_get(j, data, "values");
    for (size_t i = 0; values >= 0 && i < souk_json_count(j, values) && nv < MAX_VALUES; i++) {
      char *v = souk_json_strdup(j, souk_json_at(j, values, i));
      if (v) vals[nv++] = v;
    }
    souk_cmd_field_t fields[MAX_FIELDS];
    char *bufs[2 * MAX_FIELDS];
    size_t nf = type == SOUK_IX_MODAL_SUBMIT ? modal_fields(j, data, fields, bufs, MAX_FIELDS) : 0;
    in.custom_id = custom_id;
    in.message_id = souk__json_id(j, souk_json_path(j, d, "message", "id", NULL));
    in.values = (const char *const *)vals;
    in.nvalues = nv;
    in.fields = fields;
    in.nfields = nf;
    souk__cmd_invoke_component(&in);
    souk_free(custom_id);
    for (size_t i = 0; i < nv; i++) souk_free(vals[i]);
    for (size_t i = 0; i < 2 * nf; i++) souk_free(bufs[i]);
    return;
  }
  SOUK_DEBUG("cmd", "interaction type %" PRId64 " ignored", type);
  in.kind = SOUK_CMD_KIND_COMMAND;
  souk_cmd_args_t none = {0};
  snprintf(none.error, sizeof none.error, "This kind of interaction is not supported.");
  souk__cmd_invoke(&in, &none, SOUK_EINVAL);
}

static void http_ix_handler(souk__ix_t *ix, const souk_json_t *json, void *ud) {
  handle_interaction(json, 0, true, ix, 0);
}

/* ---- prefix commands ------------------------------------------------------------ */

typedef struct pfx {
  uint64_t channel, msg;
} pfx_t;

static void post_done_cb(const souk_discord_result_t *r, void *ud) {
  if (!r->err || r->err == SOUK_ESTOPPED) return;
  souk_error_record("discord.reply", SOUK_SEV_MEDIUM, r->err, NULL,
                    "channel %" PRIu64 ": HTTP %d", r->channel_id, r->status);
  SOUK_WARN("cmd", "reply in channel %" PRIu64 " failed: %s (HTTP %d, code %d)", r->channel_id,
            souk_strerror(r->err), r->status, r->code);
}

/* Post m to a channel, split at 2000 characters, the first part replying
 * to reply_to, with nonces derived from it (souk__dapi_post), so a POST
 * retried after a timeout or a reply to a redelivered event is not posted
 * twice. */
static int post_message(uint64_t channel, uint64_t reply_to, const souk_msg_t *m) {
  return souk__dapi_post(channel, reply_to, m, post_done_cb, NULL);
}

int souk__dcmd_post_text(uint64_t channel, uint64_t reply_to, const char *text, size_t len) {
  char *copy = souk_malloc(len + 1);
  memcpy(copy, text, len);
  copy[len] = '\0';
  souk_msg_t m = {.content = copy};
  int rc = post_message(channel, reply_to, &m);
  souk_free(copy);
  return rc;
}

static void pfx_deliver(souk_cmd_ctx_t *ctx, const souk__out_t *out, bool deferred) {
  pfx_t *p = ctx->surface_data;
  if (out->kind == SOUK__OUT_MODAL) {
    char text[160];
    snprintf(text, sizeof text, "This opens a form, which needs the slash command: use `/%s`.",
             ctx->args ? ctx->args->path : "the command");
    souk_msg_t m = {.content = text};
    post_message(p->channel, p->msg, &m);
    return;
  }
  if (out->kind == SOUK__OUT_CHOICES || out->kind == SOUK__OUT_ACK) return;
  post_message(p->channel, p->msg, out->msg);
}

static void pfx_release(souk_cmd_ctx_t *ctx) { souk_free(ctx->surface_data); }

static void typing_done_cb(const souk__rest_resp_t *r, void *ud) {
  if (r->err && r->err != SOUK_ESTOPPED)
    SOUK_DEBUG("cmd", "typing indicator refused: %s (HTTP %d)", souk_strerror(r->err), r->status);
}

/* A message has no "thinking" state: the typing indicator ("souk is
 * typing...", about 10 s) is the "working" line a slow prefix command
 * shows.  It changes nothing about how the answer is sent, so it is not a
 * deferral for the runner. */
static int pfx_defer(souk_cmd_ctx_t *ctx, bool ephemeral) {
  pfx_t *p = ctx->surface_data;
  char path[64];
  snprintf(path, sizeof path, "/channels/%" PRIu64 "/typing", p->channel);
  souk__rest_opts_t o = {.method = "POST", .path = path};
  souk__rest_request(&o, typing_done_cb, NULL);
  return SOUK_ENOTSUP;
}

static const souk__surface_t pfx_surface = {"prefix", pfx_defer, pfx_deliver, pfx_release};

/* Where the command text starts after a prefix, or NULL. */
static const char *after_prefix(const char *s, size_t n, uint64_t guild, size_t *rest) {
  const char *pfx = souk_cmd_prefix(guild);
  size_t pl = pfx ? strlen(pfx) : 0;
  if (pl && n > pl && memcmp(s, pfx, pl) == 0) {
    *rest = n - pl;
    return s + pl;
  }
  if (souk__cmd_conf.mention_prefix && g.bot_user) {
    char m1[32], m2[32];
    int l1 = snprintf(m1, sizeof m1, "<@%" PRIu64 ">", g.bot_user);
    int l2 = snprintf(m2, sizeof m2, "<@!%" PRIu64 ">", g.bot_user);
    const char *m = NULL;
    size_t ml = 0;
    if (n > (size_t)l1 && memcmp(s, m1, (size_t)l1) == 0) m = m1, ml = (size_t)l1;
    else if (n > (size_t)l2 && memcmp(s, m2, (size_t)l2) == 0) m = m2, ml = (size_t)l2;
    if (m) {
      while (ml < n && s[ml] == ' ') ml++;
      *rest = n - ml;
      return s + ml;
    }
  }
  return NULL;
}

static bool handle_message(const souk_event_t *ev) {
  const souk_json_t *j = ev->json;
  int d = ev->d;
  /* Every message comes through here: the keys it needs are found in one
   * pass over the message (guild_id is usually its last key, webhook_id
   * usually absent, so separate lookups walked all of it twice). */
  static const char *const keys[] = {"author", "webhook_id", "content", "guild_id"};
  int v[4];
  souk_json_get_keys(j, d, keys, 4, v);
  int author = v[0];
  bool bot = false;
  souk_json_bool(j, souk_json_get(j, author, "bot"), &bot);
  if (bot || v[1] >= 0) return false;
  size_t n;
  const char *content = souk_json_raw(j, v[2], &n);
  if (!content || n == 0) return false;
  uint64_t guild = souk__json_id(j, v[3]);
  /* Most messages are not commands: reject them on the first byte of the
   * raw text before copying anything (a prefix starting with a character
   * JSON escapes, like a quote, takes the slow path). */
  const char *pfx = souk_cmd_prefix(guild);
  char c0 = content[0];
  if (c0 != '\\' && !(pfx && pfx[0] == c0) && !(c0 == '<' && souk__cmd_conf.mention_prefix))
    return false;
  char *text = souk_json_strdup(j, v[2]);
  if (!text) return false;
  size_t rest;
  const char *cmd = after_prefix(text, strlen(text), guild, &rest);
  if (!cmd || rest == 0 || *cmd == ' ') {
    souk_free(text);
    return false;
  }
  souk_cmd_args_t args;
  int rc = souk__cmd_parse_text(cmd, rest, &args);
  souk_free(text);
  if (rc == SOUK_ENOTFOUND) {
    /* Another bot's command, or a typo: prefixes are shared, so stay
     * quiet. */
    souk_cmd_args_free(&args);
    return false;
  }
  /* Users mentioned in the message come with their names and bot flags. */
  int mentions = souk_json_get(j, d, "mentions");
  for (size_t i = 0, nm = souk_json_count(j, mentions); rc == 0 && i < nm; i++) {
    int u = souk_json_at(j, mentions, i);
    char uname[100];
    bool ubot = false;
    user_name_of(j, souk_json_get(j, u, "member"), u, uname, sizeof uname);
    souk_json_bool(j, souk_json_get(j, u, "bot"), &ubot);
    souk__cmd_args_user(&args, souk__json_id(j, souk_json_get(j, u, "id")), uname, ubot);
  }
  int member = souk_json_get(j, d, "member");
  uint64_t user = souk__json_id(j, souk_json_get(j, author, "id"));
  uint64_t msg = souk__json_id(j, souk_json_get(j, d, "id"));
  char name[100], idem[40];
  user_name_of(j, member, author, name, sizeof name);
  snprintf(idem, sizeof idem, "msg:%" PRIu64, msg);
  pfx_t *p = souk_calloc(1, sizeof *p);
  p->channel = souk__json_id(j, souk_json_get(j, d, "channel_id"));
  p->msg = msg;
  souk__cmdrun_init_t in = {
      .surface = &pfx_surface,
      .surface_data = p,
      .kind = SOUK_CMD_KIND_COMMAND,
      .user_id = user,
      .user_name = name,
      .guild_id = guild,
      .channel_id = p->channel,
      .permissions = guild ? souk__gcache_member_perms(guild, user, j, member) : 0,
      .shard = ev->shard,
      .idem_key = idem,
  };
  souk__cmd_invoke(&in, &args, rc);
  souk_cmd_args_free(&args);
  return true;
}

/* ---- registration -------------------------------------------------------------- */

typedef struct regread {
  char scope[48];
  uint64_t stored;
  bool found;
  int64_t fence; /* the cluster lease's token when registration started */
} regread_t;

static int reg_read_fn(souk_db_t *db, void *ud) {
  regread_t *r = ud;
  r->found = false;
  souk_buf_t b;
  souk_buf_init(&b);
  int rc = souk_db_kv_get(db, "commands", r->scope, &b, NULL);
  if (rc == 0 && b.len) {
    r->stored = strtoull(b.data, NULL, 16);
    r->found = true;
  }
  souk_buf_free(&b);
  return rc == SOUK_ENOTFOUND ? 0 : rc;
}

static int reg_write_fn(souk_db_t *db, void *ud) {
  regread_t *r = ud;
  /* Registered under the cluster's lease: a process that lost it does
   * not overwrite what the new leader recorded. */
  int rc = souk_db_fence(db, r->fence);
  if (rc) return rc;
  char hex[20];
  int n = snprintf(hex, sizeof hex, "%016" PRIx64, r->stored);
  return souk_db_kv_put(db, "commands", r->scope, hex, (size_t)n);
}

static void reg_written_cb(void *ud, int status) {
  if (status) SOUK_WARN("cmd", "could not store the command set's hash: %s", souk_strerror(status));
  souk_free(ud);
}

static void reg_put_cb(const souk__rest_resp_t *r, void *ud) {
  regread_t *rr = ud;
  if (r->err) {
    g.reg_state = SOUK__DCMD_REG_FAILED;
    /* The next READY (a new session) tries again. */
    g.reg_started = false;
    SOUK_ERROR("cmd", "registering slash commands failed: %s (HTTP %d): %.300s",
               souk_strerror(r->err), r->status, r->body);
    souk_free(rr);
    return;
  }
  g.reg_state = SOUK__DCMD_REG_SENT;
  SOUK_INFO("cmd", "registered %zu slash commands (%s)", souk_cmd_count(), rr->scope);
  souk_store_t *st = g_store;
  if (!st || souk_store_tx_async(st, reg_write_fn, reg_written_cb, rr) != 0) souk_free(rr);
}

static void reg_send(regread_t *rr) {
  char path[96];
  if (souk__cmd_conf.reg == SOUK_CMD_REG_GUILD)
    snprintf(path, sizeof path, "/applications/%" PRIu64 "/guilds/%" PRIu64 "/commands", g.app_id,
             souk__cmd_conf.dev_guild);
  else snprintf(path, sizeof path, "/applications/%" PRIu64 "/commands", g.app_id);
  souk__rest_opts_t o = {.method = "PUT", .path = path, .body = g.reg_body, .body_len = g.reg_len};
  rr->stored = g.reg_hash;
  if (souk__rest_request(&o, reg_put_cb, rr) != 0) {
    g.reg_state = SOUK__DCMD_REG_FAILED;
    souk_free(rr);
  }
}

static void reg_read_cb(void *ud, int status) {
  regread_t *rr = ud;
  if (status == 0 && rr->found && rr->stored == g.reg_hash) {
    g.reg_state = SOUK__DCMD_REG_UNCHANGED;
    SOUK_INFO("cmd", "slash commands unchanged since the last registration (%s); not re-sent",
              rr->scope);
    souk_free(rr);
    return;
  }
  if (status) SOUK_WARN("cmd", "cannot read the last registration (%s): registering",
                        souk_strerror(status));
  reg_send(rr);
}

static void register_commands(void) {
  if (g.reg_started || souk__cmd_conf.reg == SOUK_CMD_REG_OFF) return;
  if (!g.app_id) {
    SOUK_WARN("cmd", "no application id (READY had none and discord.application_id is unset): "
                     "slash commands are not registered");
    return;
  }
  if (souk__cmd_conf.reg == SOUK_CMD_REG_GUILD && !souk__cmd_conf.dev_guild) {
    SOUK_ERROR("cmd", "commands.register is guild but commands.dev_guild is unset");
    return;
  }
  g.reg_started = true;
  souk_buf_t b;
  souk_buf_init(&b);
  souk__dmsg_commands(&b);
  souk_free(g.reg_body);
  g.reg_body = souk_malloc(b.len + 1);
  memcpy(g.reg_body, b.data, b.len);
  g.reg_body[b.len] = '\0';
  g.reg_len = b.len;
  souk_buf_free(&b);
  regread_t *rr = souk_calloc(1, sizeof *rr);
  rr->fence = souk_cluster_fence();
  if (souk__cmd_conf.reg == SOUK_CMD_REG_GUILD)
    snprintf(rr->scope, sizeof rr->scope, "hash:guild:%" PRIu64, souk__cmd_conf.dev_guild);
  else snprintf(rr->scope, sizeof rr->scope, "hash:global:%" PRIu64, g.app_id);
  g.reg_hash = souk__dcmd_hash(g.reg_body, g.reg_len, 0);
  g.reg_hash = souk__dcmd_hash(rr->scope, strlen(rr->scope), g.reg_hash);
  souk_store_t *st = g_store;
  if (st && souk_store_read_async(st, reg_read_fn, reg_read_cb, rr) == 0) return;
  reg_send(rr);
}

/* ---- owners ------------------------------------------------------------------------ */

static void owners_cb(const souk__rest_resp_t *r, void *ud) {
  const souk_json_t *j = r->err ? NULL : souk__rest_json(r);
  if (!j) {
    if (r->err != SOUK_ESTOPPED)
      SOUK_WARN("cmd", "cannot learn the application's owner (%s): owner-only commands answer "
                       "only commands.owners",
                souk_strerror(r->err));
    return;
  }
  uint64_t ids[26];
  size_t n = 0;
  int team = souk_json_get(j, 0, "team");
  int members = team >= 0 ? souk_json_get(j, team, "members") : -1;
  uint64_t team_owner = team >= 0 ? souk__json_id(j, souk_json_get(j, team, "owner_user_id")) : 0;
  if (team_owner) ids[n++] = team_owner;
  for (size_t i = 0; members >= 0 && i < souk_json_count(j, members) && n < 25; i++) {
    /* Accepted members (membership_state 2) who are admins or developers;
     * invited and read-only members are not owners. */
    int m = souk_json_at(j, members, i);
    int64_t state = 0;
    souk_json_i64(j, souk_json_get(j, m, "membership_state"), &state);
    char role[24] = "";
    souk_json_str(j, souk_json_get(j, m, "role"), role, sizeof role);
    if (state != 2 || !strcmp(role, "read_only")) continue;
    uint64_t id = souk__json_id(j, souk_json_path(j, m, "user", "id", NULL));
    if (id && id != team_owner) ids[n++] = id;
  }
  if (n == 0) {
    uint64_t id = souk__json_id(j, souk_json_path(j, 0, "owner", "id", NULL));
    if (id) ids[n++] = id;
  }
  souk__cmd_set_app_owners(ids, n);
  SOUK_INFO("cmd", "owner-only commands answer %zu owner(s) of the application", n);
  /* A process whose shards all resumed sessions handed on by another one
   * saw no READY: the application tells who the bot is instead. */
  uint64_t app = souk__json_id(j, souk_json_get(j, 0, "id"));
  if (app && !g.app_id) g.app_id = app;
  uint64_t bot = souk__json_id(j, souk_json_path(j, 0, "bot", "id", NULL));
  if (bot && !g.bot_user) {
    g.bot_user = bot;
    souk__gcache_set_bot_user(bot);
  }
}

/* The owners are asked once the token is known to work (a READY, or a
 * RESUMED of a session another process handed on), so a bad token costs
 * one refused request, not two. */
static void ask_owners(void) {
  if (g.owners_asked) return;
  g.owners_asked = true;
  souk__rest_opts_t o = {.method = "GET", .path = "/oauth2/applications/@me"};
  souk__rest_request(&o, owners_cb, NULL);
}

/* ---- entry points ---------------------------------------------------------------- */

/* Slash commands are registered once for the bot: by the process that
 * holds the cluster's lease, as soon as it knows the application's id
 * (the configuration, or its first READY). */
static void leader_cb(bool leader, int64_t fence, void *ud) {
  (void)fence;
  (void)ud;
  if (leader && g.app_id) register_commands();
}

void souk__dcmd_start(void) {
  memset(&g, 0, sizeof g);
  g.started = true;
  g.app_id = souk__discord_conf.application_id;
  souk__ix_set_handler(http_ix_handler, NULL);
  souk_cluster_watch(leader_cb, NULL);
}

void souk__dcmd_stop(void) {
  if (!g.started) return;
  souk_cluster_unwatch(leader_cb, NULL);
  souk__ix_set_handler(NULL, NULL);
  souk__gcache_clear();
  souk_free(g.reg_body);
  g.reg_body = NULL;
  g.started = false;
}

bool souk__dcmd_event(const souk_event_t *ev) {
  const char *n = ev->name;
  const souk_json_t *j = ev->json;
  souk__gcache_event(ev);
  switch (n[0]) {
  case 'I':
    if (strcmp(n, "INTERACTION_CREATE") == 0) {
      handle_interaction(j, ev->d, false, NULL, ev->shard);
      return true;
    }
    break;
  case 'M':
    if (strcmp(n, "MESSAGE_CREATE") == 0) return handle_message(ev);
    break;
  case 'R':
    if (strcmp(n, "READY") == 0) {
      g.bot_user = souk__json_id(j, souk_json_path(j, ev->d, "user", "id", NULL));
      uint64_t app = souk__json_id(j, souk_json_path(j, ev->d, "application", "id", NULL));
      if (app && !g.app_id) g.app_id = app;
      ask_owners();
      /* One process registers: the cluster's leader (with one process,
       * that one). */
      if (souk_cluster_leader()) register_commands();
    } else if (strcmp(n, "RESUMED") == 0) {
      ask_owners();
    }
    break;
  }
  return false;
}
