/* The module-facing Discord actions (src/discord/dapi.c) over a recording
 * sink that answers like Discord would, with an injected clock: message
 * bodies and splitting, error mapping, DM channels and the 50007 refusal,
 * the rename guard, coalesced edits, the presence window; and the console
 * sink (dapi_console.c), whose printed output is captured. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>
/* clang-format on */

/* The static functions (the presence pump, the coalescer's pump) are
 * driven directly with the injected clock. */
#include "../../../src/discord/dapi.c"
#include "core/metrics.h"
#include "souk/loop.h"

/* ---- a recording sink ---------------------------------------------------------- */

typedef struct req {
  char method[8];
  char path[128];
  char body[8192];
  unsigned flags;
} req_t;

typedef struct script {
  int status;
  const char *body; /* NULL: {"id":"<next id>"} for 2xx */
} script_t;

static struct {
  req_t reqs[64];
  size_t n;
  script_t script[16];
  size_t nscript, at;
  uint64_t next_id;
  int refuse; /* request() returns this */
  /* presence calls */
  char presence[8][160];
  size_t npresence;
  int presence_rc;
} S;

typedef struct answer {
  souk__rest_cb cb;
  void *ud;
  int status;
  char *body;
  uv_timer_t t;
} answer_t;

static void answer_close(uv_handle_t *h) {
  answer_t *a = h->data;
  souk_free(a->body);
  souk_free(a);
}

static void answer_fire(uv_timer_t *t) {
  answer_t *a = t->data;
  souk__rest_resp_t r = {.status = a->status, .body = a->body, .body_len = strlen(a->body)};
  r.err = a->status == 0     ? SOUK_ECONN
          : a->status < 300  ? 0
          : a->status == 403 ? SOUK_EFORBIDDEN
          : a->status == 404 ? SOUK_ENOTFOUND
          : a->status == 429 ? SOUK_ERATELIMIT
                             : SOUK_EHTTP;
  a->cb(&r, a->ud);
  uv_close((uv_handle_t *)t, answer_close);
}

static int rec_request(const souk__rest_opts_t *o, souk__rest_cb cb, void *ud) {
  if (S.refuse) return S.refuse;
  assert_true(S.n < 64);
  req_t *r = &S.reqs[S.n++];
  snprintf(r->method, sizeof r->method, "%s", o->method);
  snprintf(r->path, sizeof r->path, "%s", o->path);
  snprintf(r->body, sizeof r->body, "%.*s",
           (int)(o->body ? (o->body_len ? o->body_len : strlen(o->body)) : 0),
           o->body ? o->body : "");
  r->flags = o->flags;
  answer_t *a = souk_calloc(1, sizeof *a);
  a->cb = cb;
  a->ud = ud;
  script_t sc = S.at < S.nscript ? S.script[S.at++] : (script_t){200, NULL};
  a->status = sc.status;
  if (sc.body) {
    a->body = souk_strdup(sc.body);
  } else if (sc.status >= 200 && sc.status < 300) {
    char tmp[64];
    snprintf(tmp, sizeof tmp, "{\"id\":\"%llu\"}", (unsigned long long)++S.next_id);
    a->body = souk_strdup(tmp);
  } else {
    a->body = souk_strdup("");
  }
  uv_timer_init(souk_loop(), &a->t);
  a->t.data = a;
  uv_timer_start(&a->t, answer_fire, 0, 0);
  return 0;
}

static int rec_presence(const char *status, const char *text, int type) {
  if (S.presence_rc) return S.presence_rc;
  snprintf(S.presence[S.npresence++ % 8], sizeof S.presence[0], "%s|%s|%d", status,
           text ? text : "", type);
  return 0;
}

static const souk__dapi_sink_t rec_sink = {
    .name = "test", .request = rec_request, .presence = rec_presence};

static void expect(int status, const char *body) {
  S.script[S.nscript++] = (script_t){status, body};
}

/* ---- clock and completions ----------------------------------------------------- */

static uint64_t g_now = 1000000;
static uint64_t fake_now(void) { return g_now; }

typedef struct got {
  int calls;
  bool inside; /* the callback ran inside the call that started it */
  souk_discord_result_t res;
  char json[256];
} got_t;

static bool g_in_call;

static void got_cb(const souk_discord_result_t *res, void *ud) {
  got_t *gt = ud;
  gt->calls++;
  gt->inside = g_in_call;
  gt->res = *res;
}

static void got_json_cb(const souk_discord_result_t *res, const souk_json_t *j, int root,
                        void *ud) {
  got_t *gt = ud;
  gt->calls++;
  gt->res = *res;
  int64_t n = -1;
  if (j) souk_json_i64(j, souk_json_get(j, root, "approximate_member_count"), &n);
  snprintf(gt->json, sizeof gt->json, "%lld", (long long)n);
}

static void run(void) { uv_run(souk_loop(), UV_RUN_NOWAIT), uv_run(souk_loop(), UV_RUN_NOWAIT); }

static int setup(void **state) {
  memset(&S, 0, sizeof S);
  g_now = 1000000;
  souk__dapi_set_clock(fake_now);
  assert_int_equal(souk__dapi_start(&rec_sink), 0);
  return 0;
}

static int teardown(void **state) {
  run();
  souk__dapi_stop();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  return 0;
}

/* ---- tests --------------------------------------------------------------------- */

/* The nonce of a keyed message, as sent in request i. */
static void nonce_of(int i, char *out, size_t cap) {
  const char *p = strstr(S.reqs[i].body, "\"nonce\":\"");
  assert_non_null(p);
  p += strlen("\"nonce\":\"");
  size_t n = strcspn(p, "\"");
  assert_true(n > 0 && n <= 25 && n < cap); /* Discord allows 25 characters */
  memcpy(out, p, n);
  out[n] = '\0';
}

/* Discord enforces a nonce per author, not per channel: one named message
 * posted to two channels needs two nonces, or the second post is answered
 * with the first message and never made.  The same name to the same
 * channel keeps its nonce, so a retry is dropped. */
static void test_keyed_nonce_is_per_channel(void **state) {
  (void)state;
  souk_msg_t m = {.content = "top list changed", .key = "scn0123456789abcdef0123456789"};
  got_t got = {0};
  assert_int_equal(souk_discord_send(111, &m, got_cb, &got), 0);
  assert_int_equal(souk_discord_send(222, &m, got_cb, &got), 0);
  assert_int_equal(souk_discord_send(111, &m, got_cb, &got), 0);
  run();
  assert_int_equal(got.calls, 3);
  assert_int_equal(S.n, 3);
  char a[32], b[32], c[32];
  nonce_of(0, a, sizeof a);
  nonce_of(1, b, sizeof b);
  nonce_of(2, c, sizeof c);
  assert_string_not_equal(a, b);
  assert_string_equal(a, c);
  /* Another name to the same channel: another nonce. */
  souk_msg_t other = {.content = "top list changed", .key = "scn0123456789abcdef0123456788"};
  assert_int_equal(souk_discord_send(111, &other, got_cb, &got), 0);
  run();
  char d[32];
  nonce_of(3, d, sizeof d);
  assert_string_not_equal(a, d);
}

static void test_send_split_and_nonce(void **state) {
  char big[2600];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  big[1500] = '\n';
  souk_embed_t e = {.title = "Alert", .description = "cheap"};
  souk_msg_t m = {.content = big, .embeds = &e, .nembeds = 1};
  got_t got = {0};
  g_in_call = true;
  assert_int_equal(souk_discord_send(123456789012345678ULL, &m, got_cb, &got), 0);
  g_in_call = false;
  assert_int_equal(got.calls, 0);
  run();
  assert_int_equal(got.calls, 1);
  assert_false(got.inside);
  assert_int_equal(got.res.err, 0);
  /* Two messages: cut at the newline; the embed goes with the first, whose
   * id is the result. */
  assert_int_equal(S.n, 2);
  assert_string_equal(S.reqs[0].path, "/channels/123456789012345678/messages");
  assert_non_null(strstr(S.reqs[0].body, "\"embeds\""));
  assert_null(strstr(S.reqs[1].body, "\"embeds\""));
  assert_non_null(strstr(S.reqs[0].body, "\"allowed_mentions\":{\"parse\":[]}"));
  assert_non_null(strstr(S.reqs[0].body, "\"enforce_nonce\":true"));
  assert_non_null(strstr(S.reqs[1].body, "\"nonce\":\"s"));
  assert_int_equal(got.res.message_id, 1);
  assert_int_equal(got.res.channel_id, 123456789012345678ULL);
  /* On /metrics. */
  souk_buf_t mb;
  souk_buf_init(&mb);
  souk__metrics_render(&mb);
  assert_non_null(strstr(mb.data, "souk_discord_actions_total{action=\"send\"} 1\n"));
  assert_non_null(strstr(mb.data, "souk_discord_edits_tracked 0\n"));
  souk_buf_free(&mb);
  /* Bad arguments are refused at once, without a callback. */
  souk_msg_t empty = {0};
  assert_int_equal(souk_discord_send(1, &empty, got_cb, &got), SOUK_EINVAL);
  assert_int_equal(souk_discord_send(0, &m, got_cb, &got), SOUK_EINVAL);
  S.refuse = SOUK_EFULL;
  assert_int_equal(souk_discord_send(1, &m, got_cb, &got), SOUK_EFULL);
  run();
  assert_int_equal(got.calls, 1);
}

static void test_error_mapping(void **state) {
  souk_msg_t m = {.content = "x"};
  got_t a = {0}, b = {0}, c = {0};
  expect(404, "{\"message\":\"Unknown Message\",\"code\":10008}");
  expect(400, "{\"code\":50035,\"errors\":{},\"message\":\"Invalid Form Body\"}");
  expect(403, "{\"message\":\"Missing Permissions\",\"code\":50013}");
  assert_int_equal(souk_discord_edit(5, 6, &m, got_cb, &a), 0);
  assert_int_equal(souk_discord_send(5, &m, got_cb, &b), 0);
  assert_int_equal(souk_discord_delete(5, 7, got_cb, &c), 0);
  run();
  assert_int_equal(a.res.err, SOUK_ENOTFOUND);
  assert_int_equal(a.res.code, 10008);
  assert_int_equal(a.res.status, 404);
  assert_int_equal(a.res.message_id, 6);
  assert_string_equal(S.reqs[0].method, "PATCH");
  assert_string_equal(S.reqs[0].path, "/channels/5/messages/6");
  /* An edit replaces the whole message. */
  assert_non_null(strstr(S.reqs[0].body, "\"embeds\":[]"));
  assert_non_null(strstr(S.reqs[0].body, "\"components\":[]"));
  assert_int_equal(b.res.err, SOUK_EINVAL);
  assert_int_equal(b.res.code, 50035);
  assert_int_equal(c.res.err, SOUK_EFORBIDDEN);
  assert_int_equal(c.res.code, 50013);
  assert_string_equal(S.reqs[2].method, "DELETE");
}

static void test_dm_channel_and_refusal(void **state) {
  souk_msg_t m = {.content = "psst"};
  got_t a = {0}, b = {0}, c = {0}, d = {0};
  expect(200, "{\"id\":\"777\",\"type\":1}");
  expect(200, "{\"id\":\"900\"}");
  assert_int_equal(souk_discord_dm(42, &m, got_cb, &a), 0);
  run();
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.res.err, 0);
  assert_int_equal(a.res.channel_id, 777);
  assert_int_equal(a.res.message_id, 900);
  assert_string_equal(S.reqs[0].path, "/users/@me/channels");
  assert_string_equal(S.reqs[0].body, "{\"recipient_id\":\"42\"}");
  assert_string_equal(S.reqs[1].path, "/channels/777/messages");
  /* The DM channel is remembered. */
  expect(403, "{\"message\":\"Cannot send messages to this user\",\"code\":50007}");
  assert_int_equal(souk_discord_dm(42, &m, got_cb, &b), 0);
  run();
  assert_int_equal(S.n, 3);
  assert_string_equal(S.reqs[2].path, "/channels/777/messages");
  assert_int_equal(b.res.err, SOUK_EFORBIDDEN);
  assert_int_equal(b.res.code, 50007);
  assert_int_equal(b.res.status, 403);
  /* Never asked again: the refusal is answered locally, later. */
  g_in_call = true;
  assert_int_equal(souk_discord_dm(42, &m, got_cb, &c), 0);
  g_in_call = false;
  assert_int_equal(c.calls, 0);
  run();
  assert_int_equal(S.n, 3);
  assert_int_equal(c.calls, 1);
  assert_false(c.inside);
  assert_int_equal(c.res.err, SOUK_EFORBIDDEN);
  assert_int_equal(c.res.code, 50007);
  assert_int_equal(c.res.status, 0);
  souk__dapi_stats_t st;
  souk__dapi_stats(&st);
  assert_int_equal(st.dms_refused, 1);
  /* After an hour Discord is asked again (DMs may have reopened), with a
   * fresh DM channel. */
  g_now += DM_REFUSED_MS;
  assert_int_equal(souk_discord_dm(42, &m, got_cb, &d), 0);
  run();
  assert_int_equal(S.n, 5);
  assert_string_equal(S.reqs[3].path, "/users/@me/channels");
  assert_int_equal(d.res.err, 0);
}

static void test_dm_open_refused(void **state) {
  souk_msg_t m = {.content = "psst"};
  got_t a = {0};
  expect(403, "{\"message\":\"Cannot send messages to this user\",\"code\":50007}");
  assert_int_equal(souk_discord_dm(43, &m, got_cb, &a), 0);
  run();
  assert_int_equal(S.n, 1);
  assert_int_equal(a.res.err, SOUK_EFORBIDDEN);
  assert_int_equal(a.res.code, 50007);
}

static void test_rename_guard_path(void **state) {
  got_t a = {0}, b = {0}, c = {0}, d = {0};
  const uint64_t ch = 555;
  assert_int_equal(souk_discord_rename_channel(ch, "Members: 10", got_cb, &a), 0);
  g_now += 1000;
  assert_int_equal(souk_discord_rename_channel(ch, "Members: 11", got_cb, &b), 0);
  g_now += 1000;
  /* The third within ten minutes is refused before anything is sent. */
  assert_int_equal(souk_discord_rename_channel(ch, "Members: 12", got_cb, &c), SOUK_ERATELIMIT);
  assert_int_equal(souk_discord_rename_wait_ms(ch), SOUK__RENAME_WINDOW_MS - 2000);
  run();
  assert_int_equal(S.n, 2);
  assert_string_equal(S.reqs[0].method, "PATCH");
  assert_string_equal(S.reqs[0].path, "/channels/555");
  assert_string_equal(S.reqs[1].body, "{\"name\":\"Members: 11\"}");
  /* Renames are not waited for on a 429. */
  assert_true(S.reqs[0].flags & SOUK_REST_FAIL_429);
  assert_int_equal(a.calls + b.calls, 2);
  assert_int_equal(c.calls, 0);
  g_now += SOUK__RENAME_WINDOW_MS - 2000;
  /* Discord refuses anyway (another process renamed): the result says for
   * how long, and souk refuses locally until then. */
  expect(429,
         "{\"message\":\"You are being rate limited.\",\"retry_after\":598.5,\"global\":false}");
  assert_int_equal(souk_discord_rename_channel(ch, "Members: 12", got_cb, &d), 0);
  run();
  assert_int_equal(d.res.err, SOUK_ERATELIMIT);
  assert_int_equal(d.res.retry_after_ms, 598500);
  assert_int_equal(souk_discord_rename_wait_ms(ch), 598500);
  assert_int_equal(souk_discord_rename_channel(ch, "x", got_cb, &d), SOUK_ERATELIMIT);
  /* Names are 1-100 characters. */
  assert_int_equal(souk_discord_rename_channel(777, "", got_cb, &d), SOUK_EINVAL);
  souk__dapi_stats_t st;
  souk__dapi_stats(&st);
  assert_int_equal(st.renames_refused, 2);
}

static void test_rename_not_sent_is_not_counted(void **state) {
  got_t a = {0}, b = {0}, c = {0};
  expect(0, NULL); /* no answer at all: it never reached Discord */
  assert_int_equal(souk_discord_rename_channel(556, "a", got_cb, &a), 0);
  run();
  assert_int_equal(a.res.err, SOUK_ECONN);
  assert_int_equal(souk_discord_rename_channel(556, "b", got_cb, &b), 0);
  assert_int_equal(souk_discord_rename_channel(556, "c", got_cb, &c), 0);
  run();
  assert_int_equal(S.n, 3);
}

static void test_edit_latest(void **state) {
  char text[32];
  for (int i = 0; i < 20; i++) {
    snprintf(text, sizeof text, "votes: %d", i);
    souk_msg_t m = {.content = text};
    assert_int_equal(souk_discord_edit_latest(8, 9, &m, 1000), 0);
    run();
    g_now += 100;
    coal_arm();
  }
  /* 2 s of clicks at 10 per second: one edit at once, then one per
   * second, the last carrying the last state; nothing more after. */
  run();
  assert_int_equal(S.n, 3);
  assert_non_null(strstr(S.reqs[0].body, "\"content\":\"votes: 0\""));
  assert_non_null(strstr(S.reqs[2].body, "\"content\":\"votes: 19\""));
  assert_string_equal(S.reqs[2].path, "/channels/8/messages/9");
  g_now += 5000;
  coal_arm();
  run();
  assert_int_equal(S.n, 3);
  /* The message is deleted: the next edit learns it, and later ones are
   * refused locally. */
  g_now += 1000;
  expect(404, "{\"message\":\"Unknown Message\",\"code\":10008}");
  souk_msg_t m = {.content = "late"};
  assert_int_equal(souk_discord_edit_latest(8, 9, &m, 1000), 0);
  run();
  assert_int_equal(souk_discord_edit_latest(8, 9, &m, 1000), SOUK_ENOTFOUND);
}

static void test_presence_window(void **state) {
  for (int i = 0; i < 5; i++) {
    char t[16];
    snprintf(t, sizeof t, "p%d", i);
    assert_int_equal(souk_discord_set_presence(t, 3), 0);
    presence_pump();
    g_now += 1000;
  }
  assert_int_equal(S.npresence, 5);
  assert_string_equal(S.presence[0], "online|p0|3");
  /* Over the limit: waits, and only the latest waiting one is sent. */
  assert_int_equal(souk_discord_set_presence("p5", 3), 0);
  presence_pump();
  assert_int_equal(souk_discord_set_presence("p6", 0), 0);
  presence_pump();
  assert_int_equal(S.npresence, 5);
  g_now += PRESENCE_WINDOW_MS - 5000;
  presence_pump();
  assert_int_equal(S.npresence, 6);
  assert_string_equal(S.presence[5], "online|p6|0");
  presence_pump();
  assert_int_equal(S.npresence, 6);
  /* Bad types and over-long texts are refused. */
  assert_int_equal(souk_discord_set_presence("x", 1), SOUK_EINVAL);
  assert_int_equal(souk_discord_set_presence("x", 9), SOUK_EINVAL);
  char longtext[200];
  memset(longtext, 'x', sizeof longtext - 1);
  longtext[sizeof longtext - 1] = '\0';
  assert_int_equal(souk_discord_set_presence(longtext, 0), SOUK_EINVAL);
}

static void test_get(void **state) {
  got_t a = {0};
  expect(200, "{\"id\":\"1\",\"approximate_member_count\":17}");
  assert_int_equal(souk_discord_get("/guilds/1?with_counts=true", got_json_cb, &a), 0);
  run();
  assert_int_equal(a.calls, 1);
  assert_string_equal(a.json, "17");
  assert_string_equal(S.reqs[0].path, "/guilds/1?with_counts=true");
  assert_int_equal(souk_discord_get("guilds", got_json_cb, &a), SOUK_EINVAL);
}

static void test_stopped(void **state) {
  souk__dapi_stop();
  souk_msg_t m = {.content = "x"};
  assert_int_equal(souk_discord_send(1, &m, NULL, NULL), SOUK_ESTOPPED);
  assert_int_equal(souk_discord_set_presence("x", 0), SOUK_ESTOPPED);
  assert_int_equal(souk__dapi_start(&rec_sink), 0);
}

/* ---- the console sink ---------------------------------------------------------- */

static souk_buf_t g_out;
static void capture(const char *text, size_t len) { souk_buf_append(&g_out, text, len); }

static int con_setup(void **state) {
  souk_buf_init(&g_out);
  souk__dcon_set_output(capture);
  g_now = 1000000;
  souk__dapi_set_clock(fake_now);
  assert_int_equal(souk__dapi_start(&souk__dapi_console_sink), 0);
  return 0;
}

static int con_teardown(void **state) {
  teardown(state);
  souk__dcon_set_output(NULL);
  souk_buf_free(&g_out);
  return 0;
}

static void test_console_sink(void **state) {
  souk_embed_field_t f = {.name = "FMV", .value = "1,200,000"};
  souk_embed_t e = {.title = "Snipe",
                    .description = "Hyperion",
                    .fields = &f,
                    .nfields = 1,
                    .footer = "/viewauction abc"};
  souk_select_option_t opts[] = {{.label = "Red", .value = "r"}, {.label = "Blue", .value = "b"}};
  souk_component_t comps[] = {
      {.custom_id = "poll:yes", .label = "Yes"},
      {.custom_id = "poll:no", .label = "No", .disabled = true},
      {.custom_id = "poll:pick", .label = "Pick", .options = opts, .noptions = 2}};
  souk_msg_t m = {
      .content = "New listing", .embeds = &e, .nembeds = 1, .components = comps, .ncomponents = 3};
  got_t a = {0};
  assert_int_equal(souk_discord_send(100000000000000003ULL, &m, got_cb, &a), 0);
  assert_int_equal(a.calls, 0);
  run();
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.res.err, 0);
  assert_true(a.res.message_id > 300000000000000000ULL);
  char want[128];
  snprintf(want, sizeof want, "[#100000000000000003] message %llu:\nNew listing\n+-- Snipe\n",
           (unsigned long long)a.res.message_id);
  assert_non_null(strstr(g_out.data, want));
  assert_non_null(strstr(g_out.data, "| Hyperion\n| FMV: 1,200,000\n+-- /viewauction abc\n"));
  if (!strstr(g_out.data, "[1] Yes  [2] No (disabled)\n[3] Pick: 3.1 Red 3.2 Blue\n"))
    fail_msg("printed:\n%s", g_out.data);
  assert_non_null(strstr(g_out.data, "(type a number to press it)"));
  /* An edit, a rename, a DM, a presence, a delete: each printed, each
   * completing through its callback. */
  souk_buf_reset(&g_out);
  got_t b = {0}, c = {0}, d = {0}, x = {0};
  souk_msg_t m2 = {.content = "Sold!"};
  assert_int_equal(souk_discord_edit(100000000000000003ULL, a.res.message_id, &m2, got_cb, &b), 0);
  assert_int_equal(souk_discord_rename_channel(100000000000000003ULL, "Members: 5", got_cb, &c), 0);
  assert_int_equal(souk_discord_dm(100000000000000001ULL, &m2, got_cb, &d), 0);
  assert_int_equal(souk_discord_set_presence("the auction house", 3), 0);
  assert_int_equal(souk_discord_delete(100000000000000003ULL, a.res.message_id, got_cb, &x), 0);
  run();
  run();
  assert_int_equal(b.res.err, 0);
  assert_int_equal(b.res.message_id, a.res.message_id);
  assert_int_equal(c.res.err, 0);
  assert_int_equal(d.res.err, 0);
  assert_int_equal(x.res.err, 0);
  assert_int_equal(x.res.status, 204);
  snprintf(want, sizeof want, "message %llu edited:\nSold!\n",
           (unsigned long long)a.res.message_id);
  assert_non_null(strstr(g_out.data, want));
  assert_non_null(strstr(g_out.data, "[#100000000000000003] channel renamed to \"Members: 5\"\n"));
  assert_non_null(strstr(g_out.data, "[DM to user 100000000000000001] message "));
  assert_non_null(strstr(g_out.data, "[presence] online: Watching the auction house\n"));
  snprintf(want, sizeof want, "message %llu deleted\n", (unsigned long long)a.res.message_id);
  assert_non_null(strstr(g_out.data, want));
  /* The rename guard holds on the console too. */
  assert_int_equal(souk_discord_rename_channel(100000000000000003ULL, "6", got_cb, &c), 0);
  assert_int_equal(souk_discord_rename_channel(100000000000000003ULL, "7", got_cb, &c),
                   SOUK_ERATELIMIT);
  /* Counts of the console guild; everything is allowed; a fixed bot id. */
  got_t gj = {0};
  assert_int_equal(
      souk_discord_get("/guilds/100000000000000002?with_counts=true", got_json_cb, &gj), 0);
  got_t nf = {0};
  assert_int_equal(souk_discord_get("/users/1/profile", got_json_cb, &nf), 0);
  run();
  assert_string_equal(gj.json, "1");
  assert_int_equal(nf.res.err, SOUK_ENOTFOUND);
  assert_true(souk_discord_bot_can(1, 2, SOUK_PERM_BAN_MEMBERS));
  assert_int_equal(souk_discord_bot_user_id(), 100000000000000004ULL);
}

int main(void) {
  souk_log_set_level(getenv("SOUK_TEST_DEBUG") ? SOUK_LOG_DEBUG : SOUK_LOG_OFF);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_send_split_and_nonce, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keyed_nonce_is_per_channel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_mapping, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dm_channel_and_refusal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dm_open_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rename_guard_path, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rename_not_sent_is_not_counted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_edit_latest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_presence_window, setup, teardown),
      cmocka_unit_test_setup_teardown(test_get, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stopped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_console_sink, con_setup, con_teardown),
  };
  int fails = cmocka_run_group_tests_name("discord/dapi", tests, NULL, NULL);
  souk_loop_close();
  return fails;
}
