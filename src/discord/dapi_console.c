/* The console sink of the module actions (dapi.h): `souk console` has no
 * Discord, so the requests the actions would send are answered here, in
 * process, and printed readably.
 *
 * It answers the routes the actions use, with the fields they read:
 *   POST   /channels/{c}/messages      prints the message; a new made-up id
 *   PATCH  /channels/{c}/messages/{m}  prints the edit
 *   DELETE /channels/{c}/messages/{m}  prints the deletion
 *   POST   /users/@me/channels         a made-up DM channel for the user
 *   PATCH  /channels/{c}               prints the rename
 *   GET    /guilds/{g}[?with_counts]   the console guild: 1 member, 1 online
 *   GET    /guilds/{g}/bans            no bans
 * and 404 with Discord's body for anything else.  Answers arrive from the
 * loop, one iteration later, like the REST client's.  What it prints is
 * rendered from the JSON Discord would get, so the console shows exactly
 * what would be sent: content, embeds framed, components as numbered
 * choices that typed numbers press (souk__console_set_choices). */
#include "core/core.h"
#include "discord/dapi.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/loop.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* The console's bot: a valid snowflake no real user has (see console.c). */
#define CONSOLE_BOT_ID  UINT64_C(100000000000000004)
#define CONSOLE_USER_ID UINT64_C(100000000000000001)
#define DM_CHANNEL_BASE UINT64_C(400000000000000000)
#define DM_CHANNELS_MAX 256
#define NOT_FOUND_BODY  "{\"message\":\"404: Not Found\",\"code\":0}"

typedef struct pending {
  struct pending *next;
  souk__rest_cb cb;
  void *ud;
  int status;
  char *body;
  char route[64];
} pending_t;

static struct {
  pending_t *head, *tail;
  uv_timer_t *timer;
  uint64_t dm_users[DM_CHANNELS_MAX]; /* DM channel DM_CHANNEL_BASE + 1 + i is user i's */
  size_t ndm;
  void (*out)(const char *text, size_t len);
} c;

void souk__dcon_set_output(void (*fn)(const char *text, size_t len)) { c.out = fn; }

static void print(const souk_buf_t *b) {
  if (!b->len) return;
  if (c.out)
    c.out(b->data, b->len);
  else
    souk__console_print(b->data, b->len);
}

/* ---- rendering ----------------------------------------------------------------- */

/* A string member of object t, copied into a small buffer ("" if none). */
static const char *str_of(const souk_json_t *j, int t, const char *key, char *buf, size_t cap) {
  buf[0] = '\0';
  if (t >= 0) souk_json_str(j, souk_json_get(j, t, key), buf, cap);
  return buf;
}

static void render_embeds(souk_buf_t *b, const souk_json_t *j, int embeds) {
  char tmp[4200], tmp2[1100];
  for (size_t i = 0; embeds >= 0 && i < souk_json_count(j, embeds); i++) {
    int e = souk_json_at(j, embeds, i);
    souk_buf_printf(b, "+-- %s\n", str_of(j, e, "title", tmp, sizeof tmp));
    souk__console_put_lines(b, "| ", str_of(j, e, "description", tmp, sizeof tmp));
    int fields = souk_json_get(j, e, "fields");
    for (size_t k = 0; fields >= 0 && k < souk_json_count(j, fields); k++) {
      int f = souk_json_at(j, fields, k);
      const char *v = str_of(j, f, "value", tmp, sizeof tmp);
      const char *name = str_of(j, f, "name", tmp2, sizeof tmp2);
      if (!strchr(v, '\n')) {
        souk_buf_printf(b, "| %s: %s\n", name, v);
      } else {
        souk_buf_printf(b, "| %s:\n", name);
        souk__console_put_lines(b, "|   ", v);
      }
    }
    const char *footer = str_of(j, souk_json_get(j, e, "footer"), "text", tmp, sizeof tmp);
    if (footer[0])
      souk_buf_printf(b, "+-- %s\n", footer);
    else
      souk_buf_puts(b, "+--\n");
  }
}

/* Components as numbered choices, registered as what typed numbers press. */
static void render_components(souk_buf_t *b, const souk_json_t *j, int rows, uint64_t msg_id) {
  size_t n = 0, nvals = 0;
  for (size_t r = 0; rows >= 0 && r < souk_json_count(j, rows); r++) {
    int comps = souk_json_get(j, souk_json_at(j, rows, r), "components");
    for (size_t k = 0; comps >= 0 && k < souk_json_count(j, comps); k++) {
      n++;
      int opts = souk_json_get(j, souk_json_at(j, comps, k), "options");
      nvals += opts >= 0 ? souk_json_count(j, opts) : 0;
    }
  }
  if (!n) return;
  souk__console_choice_t *ch = souk_calloc(n, sizeof *ch);
  char **ids = souk_calloc(n, sizeof *ids);
  char **vals = nvals ? souk_calloc(nvals, sizeof *vals) : NULL;
  size_t i = 0, v = 0;
  char label[200];
  for (size_t r = 0; rows >= 0 && r < souk_json_count(j, rows); r++) {
    int comps = souk_json_get(j, souk_json_at(j, rows, r), "components");
    for (size_t k = 0; comps >= 0 && k < souk_json_count(j, comps); k++, i++) {
      int cp = souk_json_at(j, comps, k);
      bool disabled = false;
      souk_json_bool(j, souk_json_get(j, cp, "disabled"), &disabled);
      ids[i] = souk_json_strdup(j, souk_json_get(j, cp, "custom_id"));
      ch[i].custom_id = ids[i];
      ch[i].disabled = disabled;
      int opts = souk_json_get(j, cp, "options");
      if (opts >= 0) {
        str_of(j, cp, "placeholder", label, sizeof label);
        souk_buf_printf(b, "[%zu] %s:", i + 1, label[0] ? label : "choose");
        ch[i].values = (const char *const *)(vals + v);
        for (size_t o = 0; o < souk_json_count(j, opts); o++) {
          int op = souk_json_at(j, opts, o);
          vals[v++] = souk_json_strdup(j, souk_json_get(j, op, "value"));
          ch[i].nvalues++;
          souk_buf_printf(b, " %zu.%zu %s", i + 1, o + 1,
                          str_of(j, op, "label", label, sizeof label));
        }
        souk_buf_putc(b, '\n');
      } else {
        /* Buttons of one row on one line; every row ends its line. */
        souk_buf_printf(b, "%s[%zu] %s%s", k ? "  " : "", i + 1,
                        str_of(j, cp, "label", label, sizeof label), disabled ? " (disabled)" : "");
        if (k + 1 == souk_json_count(j, comps)) souk_buf_putc(b, '\n');
      }
    }
  }
  souk_buf_puts(b, "(type a number to press it)\n");
  souk__console_set_choices(ch, n, msg_id);
  for (size_t k = 0; k < n; k++)
    souk_free(ids[k]);
  for (size_t k = 0; k < v; k++)
    souk_free(vals[k]);
  souk_free(ids);
  souk_free(vals);
  souk_free(ch);
}

static void render_message(souk_buf_t *b, const souk_json_t *j, uint64_t msg_id) {
  char *content = souk_json_strdup(j, souk_json_get(j, 0, "content"));
  if (content && content[0]) {
    souk_buf_puts(b, content);
    souk_buf_putc(b, '\n');
  }
  souk_free(content);
  render_embeds(b, j, souk_json_get(j, 0, "embeds"));
  render_components(b, j, souk_json_get(j, 0, "components"), msg_id);
}

/* "#123" or "DM to user 456". */
static void where(souk_buf_t *b, uint64_t channel) {
  if (channel > DM_CHANNEL_BASE && channel <= DM_CHANNEL_BASE + c.ndm)
    souk_buf_printf(b, "[DM to user %" PRIu64 "]", c.dm_users[channel - DM_CHANNEL_BASE - 1]);
  else
    souk_buf_printf(b, "[#%" PRIu64 "]", channel);
}

/* ---- answering ----------------------------------------------------------------- */

static void answer_cb(uv_timer_t *t) {
  pending_t *p;
  while ((p = c.head)) {
    c.head = p->next;
    if (!c.head) c.tail = NULL;
    souk__rest_resp_t r = {
        .err = p->status >= 200 && p->status < 300 ? 0
               : p->status == 404                  ? SOUK_ENOTFOUND
                                                   : SOUK_EHTTP,
        .status = p->status,
        .body = p->body ? p->body : "",
        .body_len = p->body ? strlen(p->body) : 0,
        .route = p->route,
        .attempts = 1,
    };
    if (p->cb) p->cb(&r, p->ud);
    souk_free(p->body);
    souk_free(p);
  }
}

static void answer(const souk__rest_opts_t *o, souk__rest_cb cb, void *ud, int status, char *body) {
  pending_t *p = souk_calloc(1, sizeof *p);
  p->cb = cb;
  p->ud = ud;
  p->status = status;
  p->body = body;
  snprintf(p->route, sizeof p->route, "%s %s", o->method, o->path);
  if (c.tail)
    c.tail->next = p;
  else
    c.head = p;
  c.tail = p;
  if (!c.timer) {
    c.timer = souk_malloc(sizeof *c.timer);
    uv_timer_init(souk_loop(), c.timer);
  }
  uv_timer_start(c.timer, answer_cb, 0, 0);
}

static char *printf_dup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *printf_dup(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = souk_malloc((size_t)(n > 0 ? n : 0) + 1);
  va_start(ap, fmt);
  vsnprintf(s, (size_t)(n > 0 ? n : 0) + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* Numbers after "/channels/" etc.: "123/messages" -> 123, rest "/messages". */
static uint64_t path_id(const char *s, const char **rest) {
  char *end;
  uint64_t v = strtoull(s, &end, 10);
  *rest = end;
  return end == s ? 0 : v;
}

static int con_request(const souk__rest_opts_t *o, souk__rest_cb cb, void *ud) {
  souk_json_t j = {0};
  bool has_body =
      o->body && souk_json_parse(&j, o->body, o->body_len ? o->body_len : strlen(o->body)) == 0;
  const char *m = o->method, *p = o->path, *rest;
  souk_buf_t b;
  souk_buf_init(&b);
  int status = 404;
  char *body = NULL;
  if (!strncmp(p, "/channels/", 10)) {
    uint64_t ch = path_id(p + 10, &rest);
    if (!strcmp(rest, "/messages") && !strcmp(m, "POST") && has_body) {
      uint64_t id = souk__console_message_id();
      where(&b, ch);
      souk_buf_printf(&b, " message %" PRIu64 ":\n", id);
      render_message(&b, &j, id);
      status = 200;
      body =
          printf_dup("{\"id\":\"%" PRIu64 "\",\"channel_id\":\"%" PRIu64 "\",\"type\":0}", id, ch);
    } else if (!strncmp(rest, "/messages/", 10)) {
      uint64_t id = path_id(rest + 10, &rest);
      if (!strcmp(m, "PATCH") && has_body) {
        where(&b, ch);
        souk_buf_printf(&b, " message %" PRIu64 " edited:\n", id);
        render_message(&b, &j, id);
        status = 200;
        body = printf_dup("{\"id\":\"%" PRIu64 "\",\"channel_id\":\"%" PRIu64 "\",\"type\":0}", id,
                          ch);
      } else if (!strcmp(m, "DELETE")) {
        where(&b, ch);
        souk_buf_printf(&b, " message %" PRIu64 " deleted\n", id);
        status = 204;
      }
    } else if (!*rest && !strcmp(m, "PATCH") && has_body) {
      char name[420] = "";
      souk_json_str(&j, souk_json_get(&j, 0, "name"), name, sizeof name);
      where(&b, ch);
      souk_buf_printf(&b, " channel renamed to \"%s\"\n", name);
      status = 200;
      body = printf_dup("{\"id\":\"%" PRIu64 "\",\"type\":0}", ch);
    }
  } else if (!strcmp(p, "/users/@me/channels") && !strcmp(m, "POST") && has_body) {
    uint64_t user = 0;
    souk_json_u64(&j, souk_json_get(&j, 0, "recipient_id"), &user);
    size_t i = 0;
    while (i < c.ndm && c.dm_users[i] != user)
      i++;
    if (i == c.ndm && c.ndm < DM_CHANNELS_MAX) c.dm_users[c.ndm++] = user;
    if (user && i < c.ndm) {
      status = 200;
      body = printf_dup("{\"id\":\"%" PRIu64 "\",\"type\":1,\"recipients\":[{\"id\":\"%" PRIu64
                        "\"}]}",
                        DM_CHANNEL_BASE + 1 + i, user);
    } else {
      status = 400;
      body = printf_dup("{\"message\":\"Invalid Recipient(s)\",\"code\":50033}");
    }
  } else if (!strncmp(p, "/users/", 7) && strcmp(p, "/users/@me") && !strcmp(m, "GET")) {
    /* Every id is a person here, except the console's bot. */
    uint64_t uid = path_id(p + 7, &rest);
    if (uid && !*rest) {
      status = 200;
      body = printf_dup("{\"id\":\"%" PRIu64 "\",\"username\":\"user%" PRIu64
                        "\",\"discriminator\":\"0\",\"bot\":%s}",
                        uid, uid % 10000, uid == CONSOLE_BOT_ID ? "true" : "false");
    }
  } else if (!strncmp(p, "/guilds/", 8) && !strcmp(m, "GET")) {
    uint64_t gid = path_id(p + 8, &rest);
    if (!strncmp(rest, "/bans", 5) && (!rest[5] || rest[5] == '?')) {
      status = 200;
      body = printf_dup("[]");
    } else if (!*rest || *rest == '?') {
      bool counts = strstr(rest, "with_counts=true") != NULL;
      status = 200;
      body = printf_dup("{\"id\":\"%" PRIu64 "\",\"name\":\"souk console\",\"owner_id\":\"%" PRIu64
                        "\",\"roles\":[]%s}",
                        gid, CONSOLE_USER_ID,
                        counts ? ",\"approximate_member_count\":1,\"approximate_presence_count\":1"
                               : "");
    }
  }
  if (status == 404) body = printf_dup(NOT_FOUND_BODY);
  print(&b);
  souk_buf_free(&b);
  souk_json_free(&j);
  answer(o, cb, ud, status, body);
  return 0;
}

static int con_presence(const char *status, const char *text, int activity_type) {
  static const char *const verbs[] = {"Playing",  "Streaming", "Listening to",
                                      "Watching", "",          "Competing in"};
  souk_buf_t b;
  souk_buf_init(&b);
  if (!text || !text[0])
    souk_buf_printf(&b, "[presence] %s, no activity\n", status);
  else if (activity_type == 4)
    souk_buf_printf(&b, "[presence] %s: %s\n", status, text);
  else
    souk_buf_printf(&b, "[presence] %s: %s %s\n", status, verbs[activity_type], text);
  print(&b);
  souk_buf_free(&b);
  return 0;
}

static uint64_t con_bot_user(void) { return CONSOLE_BOT_ID; }

/* Answer what is still queued: the actions stop right after. */
static void con_stop(void) {
  answer_cb(c.timer);
  souk_timer_free(&c.timer);
  c.ndm = 0;
}

const souk__dapi_sink_t souk__dapi_console_sink = {
    .name = "console",
    .request = con_request,
    .presence = con_presence,
    .all_permissions = true,
    .bot_user = con_bot_user,
    .stop = con_stop,
};
