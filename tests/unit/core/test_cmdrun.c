/* The command runner (src/core/cmd_run.c): one invocation from a surface
 * to its handler and back, through a fake surface that records every
 * defer / deliver / release.
 *
 * Deadlines run on the real libuv loop with short commands.defer_after and
 * commands.timeout (the autocomplete deadline is fixed at 2.5 s, so one
 * test waits that long). */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>
/* clang-format on */

#include "core/cmdrun.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/stats.h"

/* ---- the fake surface ---------------------------------------------------- */

typedef struct rec {
  int defers, delivers, releases;
  bool defer_ephemeral;
  uint64_t t_invoke, t_defer, t_deliver;
  /* The last delivery, copied (out's pointers die with deliver). */
  souk__out_kind_t kind;
  bool deferred_flag;
  bool ephemeral;
  char text[2048];
  size_t text_len;
  size_t nembeds, ncomponents;
  size_t nchoices;
  souk_cmd_opt_type_t choice_type;
  char first_choice[64];
  char modal_id[64];
  /* What the surface saw of ctx at delivery. */
  char surface_name[16];
  /* Order of calls: 'D' defer, 'V' deliver, 'R' release. */
  char order[16];
  size_t norder;
  void *released_data;
} rec_t;

static rec_t R;
static int g_surface_token; /* surface_data of every invocation */
static bool g_defer_fails;

static void note(char c) {
  if (R.norder + 1 < sizeof R.order) R.order[R.norder++] = c;
}

static int fake_defer(souk_cmd_ctx_t *ctx, bool ephemeral) {
  assert_ptr_equal(ctx->surface_data, &g_surface_token);
  R.defers++;
  R.defer_ephemeral = ephemeral;
  R.t_defer = souk_now_ms();
  note('D');
  return g_defer_fails ? SOUK_EIO : 0;
}

static void fake_deliver(souk_cmd_ctx_t *ctx, const souk__out_t *out, bool deferred) {
  assert_ptr_equal(ctx->surface_data, &g_surface_token);
  R.delivers++;
  R.t_deliver = souk_now_ms();
  R.kind = out->kind;
  R.deferred_flag = deferred;
  R.text[0] = '\0';
  R.text_len = 0;
  R.ephemeral = false;
  R.nembeds = R.ncomponents = 0;
  if (out->kind == SOUK__OUT_REPLY || out->kind == SOUK__OUT_UPDATE) {
    assert_non_null(out->msg);
    const char *c = out->msg->content ? out->msg->content : "";
    R.text_len = strlen(c);
    snprintf(R.text, sizeof R.text, "%s", c);
    R.ephemeral = out->msg->ephemeral;
    R.nembeds = out->msg->nembeds;
    R.ncomponents = out->msg->ncomponents;
  }
  R.nchoices = out->nchoices;
  R.choice_type = out->choice_type;
  R.first_choice[0] = '\0';
  if (out->kind == SOUK__OUT_CHOICES && out->nchoices)
    snprintf(R.first_choice, sizeof R.first_choice, "%s", out->choices[0].value);
  R.modal_id[0] = '\0';
  if (out->kind == SOUK__OUT_MODAL)
    snprintf(R.modal_id, sizeof R.modal_id, "%s", out->modal->custom_id);
  snprintf(R.surface_name, sizeof R.surface_name, "%s", ctx->surface);
  note('V');
}

static void fake_release(souk_cmd_ctx_t *ctx) {
  R.releases++;
  R.released_data = ctx->surface_data;
  note('R');
}

static const souk__surface_t fake_surface = {"fake", fake_defer, fake_deliver, fake_release};
/* A surface that cannot defer (like prefix messages). */
static const souk__surface_t nodefer_surface = {"nodefer", NULL, fake_deliver, fake_release};

/* ---- the observer and idle callback ---------------------------------------- */

static struct {
  int calls;
  char path[128];
  uint64_t user, guild;
  souk__cmd_outcome_t outcome;
  uint64_t latency_ms;
} O;

static void observer(const char *path, uint64_t user, uint64_t guild, souk__cmd_outcome_t oc,
                     uint64_t latency_ms) {
  O.calls++;
  snprintf(O.path, sizeof O.path, "%s", path);
  O.user = user;
  O.guild = guild;
  O.outcome = oc;
  O.latency_ms = latency_ms;
}

static int g_idle_calls;
static void on_idle(void) { g_idle_calls++; }

/* ---- handlers ------------------------------------------------------------------ */

static int g_handler_calls;
static souk_cmd_ctx_t *g_ctx; /* an invocation a handler left running */
static char g_seen_state[128], g_seen_module[32], g_seen_user[64], g_seen_field[64];
static int g_finish_rc;

/* What a timer does to g_ctx when it fires. */
typedef enum later_action {
  LATER_REPLY,
  LATER_MODAL,
  LATER_CHOICES,
} later_action_t;
static uv_timer_t g_later;
static later_action_t g_later_action;

static const souk_modal_field_t modal_fields[] = {
    {.custom_id = "name", .label = "Name", .required = true}};
static const souk_modal_t the_modal = {
    .custom_id = "t:form", .title = "A form", .fields = modal_fields, .nfields = 1};

static void later_cb(uv_timer_t *t) {
  souk_cmd_ctx_t *ctx = g_ctx;
  g_ctx = NULL;
  uv_close((uv_handle_t *)t, NULL);
  switch (g_later_action) {
  case LATER_REPLY:
    g_finish_rc = souk_cmd_replyf(ctx, "done later");
    break;
  case LATER_MODAL:
    g_finish_rc = souk_cmd_modal(ctx, &the_modal);
    break;
  case LATER_CHOICES: {
    static const souk_cmd_choice_t c[] = {{"One", "1"}};
    g_finish_rc = souk_cmd_choices(ctx, c, 1);
    break;
  }
  }
}

static void finish_later(souk_cmd_ctx_t *ctx, uint64_t ms, later_action_t a) {
  g_ctx = ctx;
  g_later_action = a;
  uv_timer_init(souk_loop(), &g_later);
  uv_timer_start(&g_later, later_cb, ms, 0);
}

static void h_sync(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  snprintf(g_seen_user, sizeof g_seen_user, "%s", ctx->user_name);
  snprintf(g_seen_module, sizeof g_seen_module, "%s", ctx->module ? ctx->module : "");
  g_finish_rc = souk_cmd_replyf(ctx, "pong %" PRId64, souk_cmd_arg_int(ctx->args, "n", 0));
}

static void h_error(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  g_finish_rc = souk_cmd_errorf(ctx, "no: %s", "broken");
}

static void h_empty(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  souk_msg_t m = {0};
  g_finish_rc = souk_cmd_reply(ctx, &m);
}

static void h_long(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  char big[1500];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  g_finish_rc = souk_cmd_replyf(ctx, "%s|%d", big, 42);
}

static void h_update(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  static const souk_embed_t e = {.title = "t"};
  souk_msg_t m = {.content = "updated", .embeds = &e, .nembeds = 1};
  g_finish_rc = souk_cmd_update(ctx, &m);
}

static void h_later(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  finish_later(ctx, 300, LATER_REPLY);
}

static void h_never(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  g_ctx = ctx; /* finished by the test itself, much later */
}

static void h_modal(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  g_finish_rc = souk_cmd_modal(ctx, &the_modal);
}

static void h_modal_late(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  finish_later(ctx, 250, LATER_MODAL);
}

static void h_modal_bad(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  souk_modal_t m = {.custom_id = "t:x", .title = "x", .fields = NULL, .nfields = 0};
  g_finish_rc = souk_cmd_modal(ctx, &m);
}

static void ac_many(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  static souk_cmd_choice_t c[30];
  static char names[30][8];
  for (int i = 0; i < 30; i++) {
    snprintf(names[i], sizeof names[i], "%d", i + 1);
    c[i] = (souk_cmd_choice_t){names[i], names[i]};
  }
  g_finish_rc = souk_cmd_choices(ctx, c, 30);
}

static void ac_late(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  finish_later(ctx, 2700, LATER_CHOICES);
}

static void comp_fn(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  snprintf(g_seen_state, sizeof g_seen_state, "%s", ctx->state ? ctx->state : "(null)");
  snprintf(g_seen_module, sizeof g_seen_module, "%s", ctx->module ? ctx->module : "");
  const char *f = souk_cmd_field_value(ctx, "name");
  snprintf(g_seen_field, sizeof g_seen_field, "%s", f ? f : "(none)");
  static const souk_component_t b = {.custom_id = "t:next", .label = "Next"};
  souk_msg_t m = {.content = "page 2", .components = &b, .ncomponents = 1};
  g_finish_rc = souk_cmd_update(ctx, &m);
}

static void comp_reply(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  souk_msg_t m = {.content = "new message"};
  g_finish_rc = souk_cmd_reply(ctx, &m);
}

static void comp_modal(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  g_finish_rc = souk_cmd_modal(ctx, &the_modal);
}

/* ---- gates ---------------------------------------------------------------------- */

typedef enum gate_mode { GATE_PASS, GATE_PROMPT, GATE_LATER } gate_mode_t;
static gate_mode_t g_gate_mode;
static int g_gate_calls;
static char g_gate_line[256];
static char g_gate_kept[256];    /* what the gate's prompt would keep */
static char g_gate_kept_key[64]; /* and the idempotency key it was kept under */
static char g_seen_idem[64];     /* the key h_kind ran with */
static souk_cmd_ctx_t *g_gate_ctx;
static uv_timer_t g_gate_timer;

static void gate_later_cb(uv_timer_t *t) {
  uv_close((uv_handle_t *)t, NULL);
  souk_cmd_ctx_t *ctx = g_gate_ctx;
  g_gate_ctx = NULL;
  souk_cmd_gate_pass(ctx);
}

static void test_gate(souk_cmd_ctx_t *ctx, void *ud) {
  assert_ptr_equal(ud, &g_gate_calls);
  g_gate_calls++;
  souk_buf_t b = {0};
  assert_int_equal(souk_cmd_args_line(ctx->args, &b), 0);
  snprintf(g_gate_line, sizeof g_gate_line, "%s", b.data);
  souk_buf_free(&b);
  switch (g_gate_mode) {
  case GATE_PASS:
    souk_cmd_gate_pass(ctx);
    break;
  case GATE_PROMPT: {
    snprintf(g_gate_kept, sizeof g_gate_kept, "%s", g_gate_line);
    snprintf(g_gate_kept_key, sizeof g_gate_kept_key, "%s", ctx->idem_key);
    static const souk_component_t ok = {.custom_id = "g:accept", .label = "Accept"};
    souk_msg_t m = {.content = "accept first", .components = &ok, .ncomponents = 1};
    souk_cmd_reply(ctx, &m);
    break;
  }
  case GATE_LATER:
    g_gate_ctx = ctx;
    uv_timer_init(souk_loop(), &g_gate_timer);
    uv_timer_start(&g_gate_timer, gate_later_cb, 200, 0);
    break;
  }
}

/* The gate's Accept button: the kept command goes on in this press. */
static void comp_accept(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  g_gate_mode = GATE_PASS;
  souk_cmd_redispatch(ctx, g_gate_kept, g_gate_kept_key[0] ? g_gate_kept_key : NULL);
}

static void h_kind(souk_cmd_ctx_t *ctx) {
  g_handler_calls++;
  snprintf(g_seen_idem, sizeof g_seen_idem, "%s", ctx->idem_key);
  g_finish_rc = souk_cmd_replyf(ctx, "kind %d n %" PRId64, (int)ctx->kind,
                                souk_cmd_arg_int(ctx->args, "n", 0));
}

/* ---- the command table ------------------------------------------------------------ */

static const souk_cmd_option_t n_opts[] = {
    {.name = "n", .description = "A number", .type = SOUK_OPT_INTEGER, .autocomplete = true}, {0}};
static const souk_cmd_option_t s_opts[] = {
    {.name = "q", .description = "Text", .type = SOUK_OPT_STRING, .autocomplete = true}, {0}};
/* The registry refuses autocomplete options without a handler; Discord may
 * still send an autocomplete request (a stale registration). */
static const souk_cmd_option_t s_opts_plain[] = {
    {.name = "q", .description = "Text", .type = SOUK_OPT_STRING}, {0}};

static const souk_cmd_option_t n_opts_plain[] = {
    {.name = "n", .description = "A number", .type = SOUK_OPT_INTEGER}, {0}};
static const struct souk_command grp_subs[] = {
    {.name = "in", .description = "d", .handler = h_kind},
    {.name = "out", .description = "d", .handler = h_kind, .gate = "missing"},
    {0}};

static const struct souk_command cmds[] = {
    {.name = "sync",
     .description = "d",
     .options = n_opts,
     .handler = h_sync,
     .autocomplete = ac_many},
    {.name = "err", .description = "d", .handler = h_error},
    {.name = "empty", .description = "d", .handler = h_empty},
    {.name = "long", .description = "d", .handler = h_long},
    {.name = "upd", .description = "d", .handler = h_update},
    {.name = "later", .description = "d", .handler = h_later, .flags = SOUK_CMD_EPHEMERAL},
    {.name = "never", .description = "d", .handler = h_never},
    {.name = "modal", .description = "d", .handler = h_modal},
    {.name = "modallate", .description = "d", .handler = h_modal_late},
    {.name = "modalbad", .description = "d", .handler = h_modal_bad},
    {.name = "owner", .description = "d", .handler = h_sync, .flags = SOUK_CMD_OWNER_ONLY},
    {.name = "guild", .description = "d", .handler = h_sync, .flags = SOUK_CMD_GUILD_ONLY},
    {.name = "perm", .description = "d", .handler = h_sync, .permissions = SOUK_PERM_MANAGE_GUILD},
    {.name = "slow",
     .description = "d",
     .options = s_opts,
     .handler = h_sync,
     .autocomplete = ac_late},
    {.name = "noac", .description = "d", .options = s_opts_plain, .handler = h_sync},
    {.name = "gated", .description = "d", .options = n_opts_plain, .handler = h_kind, .gate = "t"},
    {.name = "nogate", .description = "d", .handler = h_sync, .gate = "missing"},
    {.name = "grp", .description = "d", .subcommands = grp_subs, .gate = "t"},
    {.name = "gowner",
     .description = "d",
     .handler = h_kind,
     .gate = "t",
     .flags = SOUK_CMD_OWNER_ONLY},
    {.name = "secret",
     .description = "d",
     .options = s_opts,
     .handler = h_sync,
     .autocomplete = ac_many,
     .flags = SOUK_CMD_OWNER_ONLY | SOUK_CMD_GUILD_ONLY,
     .permissions = SOUK_PERM_MANAGE_GUILD},
    {0}};

static const souk_cmd_component_t comps[] = {
    {"t:", comp_fn}, {"r:", comp_reply}, {"m:", comp_modal}, {"g:", comp_accept}, {NULL, NULL}};

static uint64_t conf_owner_ids[] = {111, 222};

static int setup(void **state) {
  (void)state;
  souk_log_set_level(SOUK_LOG_OFF);
  memset(&R, 0, sizeof R);
  memset(&O, 0, sizeof O);
  g_handler_calls = 0;
  g_idle_calls = 0;
  g_ctx = NULL;
  g_finish_rc = -12345;
  g_defer_fails = false;
  g_seen_state[0] = g_seen_module[0] = g_seen_user[0] = g_seen_field[0] = '\0';
  souk__cmd_clear();
  memset(&souk__cmd_conf, 0, sizeof souk__cmd_conf);
  souk__cmd_conf.defer_after_ms = 100;
  souk__cmd_conf.timeout_ms = 5000;
  souk__cmd_set_app_owners(NULL, 0);
  souk__cmd_set_observer(observer);
  souk__cmd_set_idle_cb(on_idle);
  assert_int_equal(souk__cmd_register(cmds, "testmod"), 0);
  assert_int_equal(souk__cmd_component_register(comps, "compmod"), 0);
  assert_int_equal(souk_cmd_gate_register("t", test_gate, &g_gate_calls), 0);
  g_gate_mode = GATE_PASS;
  g_gate_calls = 0;
  g_gate_line[0] = g_gate_kept[0] = g_gate_kept_key[0] = g_seen_idem[0] = '\0';
  return 0;
}

static int teardown(void **state) {
  (void)state;
  /* Nothing may be left running between tests. */
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  assert_int_equal(souk__cmd_running(), 0);
  souk__cmd_set_observer(NULL);
  souk__cmd_set_idle_cb(NULL);
  souk__cmd_set_app_owners(NULL, 0);
  souk__cmd_clear();
  return 0;
}

/* ---- helpers -------------------------------------------------------------------- */

static souk__cmdrun_init_t init_for(souk_cmd_kind_t kind) {
  souk__cmdrun_init_t in = {
      .surface = &fake_surface,
      .surface_data = &g_surface_token,
      .kind = kind,
      .user_id = 42,
      .user_name = "alice",
      .guild_id = 7,
      .channel_id = 8,
      .permissions = 0,
      .idem_key = "ix:1",
  };
  return in;
}

/* Run a text command line ("sync n:3") as in. */
static void invoke_text(const souk__cmdrun_init_t *in, const char *line) {
  souk_cmd_args_t args;
  int rc = souk__cmd_parse_text(line, strlen(line), &args);
  /* timers count from the loop's cached time: make it now */
  uv_update_time(souk_loop());
  R.t_invoke = souk_now_ms();
  souk__cmd_invoke(in, &args, rc);
  /* The runner took args over and left it empty. */
  assert_null(args.cmd);
  souk_cmd_args_free(&args);
}

static void invoke_autocomplete(const souk__cmdrun_init_t *in, const char *data_json) {
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, data_json, strlen(data_json)), 0);
  souk_cmd_args_t args;
  int rc = souk__cmd_parse_interaction(&j, 0, true, &args);
  /* timers count from the loop's cached time: make it now */
  uv_update_time(souk_loop());
  R.t_invoke = souk_now_ms();
  souk__cmd_invoke(in, &args, rc);
  souk_cmd_args_free(&args);
  souk_json_free(&j);
}

static const souk__cmd_stat_t *stat_of(const char *path) {
  for (size_t i = 0; i < souk__cmd_stats_n(); i++) {
    const souk__cmd_stat_t *s = souk__cmd_stats_at(i);
    if (strcmp(s->path, path) == 0) return s;
  }
  return NULL;
}

/* A copy of a stat, zero when it does not exist yet (stats outlive
 * souk__cmd_clear, so tests compare before and after). */
static souk__cmd_stat_t stat_copy(const char *path) {
  const souk__cmd_stat_t *s = stat_of(path);
  souk__cmd_stat_t z;
  memset(&z, 0, sizeof z);
  return s ? *s : z;
}

static void run_loop(void) { uv_run(souk_loop(), UV_RUN_DEFAULT); }

/* ---- tests ------------------------------------------------------------------------ */

/* A handler that finishes at once: one delivery, never deferred, counted
 * as ok; release once; the observer sees the path and the caller. */
static void test_sync_reply(void **state) {
  (void)state;
  souk__cmd_stat_t before = stat_copy("sync");
  uint64_t served = souk_cmd_served();
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  invoke_text(&in, "sync n:3");
  assert_int_equal(g_handler_calls, 1);
  assert_int_equal(g_finish_rc, 0);
  assert_int_equal(R.delivers, 1);
  assert_int_equal(R.defers, 0);
  assert_int_equal(R.kind, SOUK__OUT_REPLY);
  assert_false(R.deferred_flag);
  assert_false(R.ephemeral);
  assert_string_equal(R.text, "pong 3");
  assert_string_equal(R.surface_name, "fake");
  assert_string_equal(g_seen_user, "alice");
  assert_string_equal(g_seen_module, "testmod");
  /* Released (the timer handle is closed first, so maybe after a turn). */
  run_loop();
  assert_int_equal(R.releases, 1);
  assert_ptr_equal(R.released_data, &g_surface_token);
  assert_string_equal(R.order, "VR");
  assert_int_equal(souk__cmd_running(), 0);
  assert_int_equal(souk_cmd_served(), served + 1);
  const souk__cmd_stat_t *s = stat_of("sync");
  assert_non_null(s);
  assert_int_equal(s->calls, before.calls + 1);
  assert_int_equal(s->ok, before.ok + 1);
  assert_int_equal(s->errors, before.errors);
  assert_int_equal(s->refused, before.refused);
  /* A fast call lands in every latency bucket (cumulative). */
  assert_int_equal(s->buckets[0], before.buckets[0] + 1);
  assert_int_equal(s->buckets[7], before.buckets[7] + 1);
  assert_int_equal(O.calls, 1);
  assert_string_equal(O.path, "sync");
  assert_int_equal(O.user, 42);
  assert_int_equal(O.guild, 7);
  assert_int_equal(O.outcome, SOUK__CMD_OK);
  assert_true(O.latency_ms < 1000);
}

/* An empty user name becomes "someone"; strings are copied, so the
 * caller's buffers may die right after invoke. */
static void test_strings_copied(void **state) {
  (void)state;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  in.user_name = "";
  invoke_text(&in, "sync");
  assert_string_equal(g_seen_user, "someone");
  char name[16], cid[16];
  snprintf(name, sizeof name, "bob");
  snprintf(cid, sizeof cid, "t:p2");
  in = init_for(SOUK_CMD_KIND_COMPONENT);
  in.user_name = name;
  in.custom_id = cid;
  souk__cmd_invoke_component(&in);
  assert_string_equal(g_seen_state, "p2");
  run_loop();
}

/* errorf: ephemeral, counted as an error; an empty reply: a generic
 * ephemeral error and SOUK_EINVAL; a long replyf is not cut at 512. */
static void test_error_and_empty(void **state) {
  (void)state;
  souk__cmd_stat_t before = stat_copy("err");
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  invoke_text(&in, "err");
  assert_int_equal(R.delivers, 1);
  assert_true(R.ephemeral);
  assert_string_equal(R.text, "no: broken");
  assert_int_equal(O.outcome, SOUK__CMD_ERROR);
  assert_int_equal(stat_of("err")->errors, before.errors + 1);
  assert_int_equal(stat_of("err")->ok, before.ok);
  run_loop();
  assert_int_equal(R.releases, 1);

  memset(&R, 0, sizeof R);
  invoke_text(&in, "empty");
  assert_int_equal(g_finish_rc, SOUK_EINVAL);
  assert_int_equal(R.delivers, 1);
  assert_true(R.ephemeral);
  assert_string_equal(R.text, "Something went wrong.");
  assert_int_equal(O.outcome, SOUK__CMD_ERROR);
  run_loop();
  assert_int_equal(R.releases, 1);

  memset(&R, 0, sizeof R);
  invoke_text(&in, "long");
  assert_int_equal(g_finish_rc, 0);
  assert_int_equal(R.text_len, 1499 + 3);
  assert_memory_equal(R.text + 1499, "|42", 3);
  run_loop();
  assert_int_equal(R.releases, 1);
}

/* souk_cmd_update outside a component is a reply. */
static void test_update_on_command_is_reply(void **state) {
  (void)state;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  invoke_text(&in, "upd");
  assert_int_equal(R.delivers, 1);
  assert_int_equal(R.kind, SOUK__OUT_REPLY);
  assert_int_equal(R.nembeds, 1);
  assert_string_equal(R.text, "updated");
}

/* Parse errors and failed checks: an ephemeral refusal, the handler never
 * runs, counted as refused, release once. */
static void test_refusals(void **state) {
  (void)state;
  souk__cmd_stat_t before = stat_copy("sync");
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  /* A value that is not an integer. */
  invoke_text(&in, "sync n:abc");
  assert_int_equal(g_handler_calls, 0);
  assert_int_equal(R.delivers, 1);
  assert_int_equal(R.kind, SOUK__OUT_REPLY);
  assert_true(R.ephemeral);
  assert_true(R.text[0] != '\0');
  assert_int_equal(R.releases, 1); /* refusals never start a timer */
  assert_int_equal(stat_of("sync")->refused, before.refused + 1);
  assert_int_equal(O.outcome, SOUK__CMD_REFUSED);
  assert_int_equal(souk__cmd_running(), 0);

  /* Unknown command: still answered and released, but no stat row. */
  memset(&R, 0, sizeof R);
  size_t nstats = souk__cmd_stats_n();
  int ocalls = O.calls;
  invoke_text(&in, "nosuchcommand");
  assert_int_equal(R.delivers, 1);
  assert_true(R.ephemeral);
  assert_int_equal(R.releases, 1);
  assert_int_equal(souk__cmd_stats_n(), nstats);
  assert_int_equal(O.calls, ocalls);

  /* Owner-only, by someone else. */
  memset(&R, 0, sizeof R);
  souk__cmd_stat_t ob = stat_copy("owner");
  invoke_text(&in, "owner");
  assert_int_equal(g_handler_calls, 0);
  assert_int_equal(R.delivers, 1);
  assert_true(R.ephemeral);
  assert_non_null(strstr(R.text, "owner"));
  assert_int_equal(stat_of("owner")->refused, ob.refused + 1);

  /* Guild-only, in a DM. */
  memset(&R, 0, sizeof R);
  souk__cmdrun_init_t dm = init_for(SOUK_CMD_KIND_COMMAND);
  dm.guild_id = 0;
  invoke_text(&dm, "guild");
  assert_int_equal(g_handler_calls, 0);
  assert_true(R.ephemeral);
  assert_non_null(strstr(R.text, "server"));

  /* Missing permission; then ADMINISTRATOR implies it. */
  memset(&R, 0, sizeof R);
  invoke_text(&in, "perm");
  assert_int_equal(g_handler_calls, 0);
  assert_true(R.ephemeral);
  assert_non_null(strstr(R.text, "Manage Server"));
  memset(&R, 0, sizeof R);
  souk__cmdrun_init_t admin = init_for(SOUK_CMD_KIND_COMMAND);
  admin.permissions = SOUK_PERM_ADMINISTRATOR;
  invoke_text(&admin, "perm");
  assert_int_equal(g_handler_calls, 1);
  assert_false(R.ephemeral);

  /* An owner from commands.owners may run the owner-only command. */
  memset(&R, 0, sizeof R);
  souk__cmd_conf.owners = (souk_conf_ids_t){conf_owner_ids, 2};
  souk__cmdrun_init_t own = init_for(SOUK_CMD_KIND_COMMAND);
  own.user_id = 222;
  invoke_text(&own, "owner");
  assert_int_equal(g_handler_calls, 2);
  assert_string_equal(R.text, "pong 0");
  souk__cmd_conf.owners = (souk_conf_ids_t){NULL, 0};
  run_loop();
}

/* A handler that finishes from a timer after the deferral deadline: one
 * deferral at defer_after (ephemeral as the command's flag says), then one
 * delivery that knows it was deferred. */
static void test_deferred_then_finished(void **state) {
  (void)state;
  souk__cmd_stat_t before = stat_copy("later");
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  invoke_text(&in, "later");
  assert_int_equal(g_handler_calls, 1);
  assert_int_equal(R.delivers, 0);
  assert_int_equal(souk__cmd_running(), 1);
  assert_int_equal(g_idle_calls, 0);
  run_loop();
  assert_int_equal(R.defers, 1);
  assert_true(R.defer_ephemeral); /* SOUK_CMD_EPHEMERAL */
  assert_true(R.t_defer - R.t_invoke >= 95);
  assert_true(R.t_defer < R.t_deliver); /* deferred before the answer */
  assert_int_equal(R.delivers, 1);
  assert_true(R.deferred_flag);
  assert_string_equal(R.text, "done later");
  assert_true(R.t_deliver - R.t_invoke >= 295);
  assert_int_equal(R.releases, 1);
  assert_string_equal(R.order, "DVR");
  assert_int_equal(souk__cmd_running(), 0);
  assert_int_equal(g_idle_calls, 1);
  const souk__cmd_stat_t *s = stat_of("later");
  assert_int_equal(s->ok, before.ok + 1);
  assert_int_equal(s->late, before.late);
  assert_int_equal(O.outcome, SOUK__CMD_OK);
  assert_true(O.latency_ms >= 295);
  /* 0.3 s is above the 0.25 s bucket, within the 0.5 s one. */
  assert_int_equal(s->buckets[3], before.buckets[3]);
  assert_int_equal(s->buckets[4], before.buckets[4] + 1);
}

/* A deferral the surface could not send: the delivery is not marked as
 * deferred. */
static void test_defer_failed(void **state) {
  (void)state;
  g_defer_fails = true;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  invoke_text(&in, "later");
  run_loop();
  assert_int_equal(R.defers, 1);
  assert_int_equal(R.delivers, 1);
  assert_false(R.deferred_flag);
}

/* A surface without deferrals (prefix messages): nothing is sent before
 * the handler finishes. */
static void test_surface_without_defer(void **state) {
  (void)state;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  in.surface = &nodefer_surface;
  invoke_text(&in, "later");
  run_loop();
  assert_int_equal(R.defers, 0);
  assert_int_equal(R.delivers, 1);
  assert_false(R.deferred_flag);
  assert_string_equal(R.text, "done later");
  assert_int_equal(R.releases, 1);
}

/* A handler still working at commands.timeout: the core answers with an
 * apology (late); the handler's own finish much later delivers nothing
 * more, does not crash, and releases exactly once. */
static void test_timeout_then_late_finish(void **state) {
  (void)state;
  souk__cmd_conf.defer_after_ms = 50;
  souk__cmd_conf.timeout_ms = 150;
  souk__cmd_stat_t before = stat_copy("never");
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  invoke_text(&in, "never");
  run_loop(); /* returns once the give-up timer has fired */
  assert_non_null(g_ctx);
  assert_int_equal(R.defers, 1);
  assert_int_equal(R.delivers, 1);
  assert_true(R.deferred_flag);
  assert_true(R.ephemeral);
  assert_non_null(strstr(R.text, "too long"));
  assert_true(R.t_deliver - R.t_invoke >= 195);
  assert_int_equal(R.releases, 0); /* ctx stays valid for the handler */
  assert_int_equal(souk__cmd_running(), 1);
  /* Answered (by the core), so a console may take its next line. */
  assert_int_equal(souk__cmd_unanswered(), 0);
  assert_int_equal(g_idle_calls, 1);
  assert_int_equal(O.calls, 1);
  assert_int_equal(O.outcome, SOUK__CMD_LATE);
  const souk__cmd_stat_t *s = stat_of("never");
  assert_int_equal(s->late, before.late + 1);
  assert_int_equal(s->calls, before.calls + 1);
  /* The fields are still readable by the late handler. */
  assert_string_equal(g_ctx->user_name, "alice");
  assert_string_equal(g_ctx->idem_key, "ix:1");
  souk_cmd_ctx_t *ctx = g_ctx;
  g_ctx = NULL;
  assert_int_equal(souk_cmd_replyf(ctx, "finally"), 0);
  run_loop();
  assert_int_equal(R.delivers, 1);
  assert_int_equal(R.releases, 1);
  assert_string_equal(R.order, "DVR");
  assert_int_equal(O.calls, 1); /* counted once */
  assert_int_equal(stat_of("never")->calls, before.calls + 1);
  assert_int_equal(stat_of("never")->ok, before.ok);
  assert_int_equal(souk__cmd_running(), 0);
  assert_int_equal(g_idle_calls, 1);
}

/* A modal at once: delivered as a modal.  After the deferral: an error
 * reply instead (Discord cannot show a modal then), counted late.  An
 * invalid modal: a generic error and SOUK_EINVAL. */
static void test_modal(void **state) {
  (void)state;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  invoke_text(&in, "modal");
  assert_int_equal(g_finish_rc, 0);
  assert_int_equal(R.delivers, 1);
  assert_int_equal(R.kind, SOUK__OUT_MODAL);
  assert_string_equal(R.modal_id, "t:form");
  run_loop();

  memset(&R, 0, sizeof R);
  invoke_text(&in, "modallate");
  run_loop();
  assert_int_equal(R.defers, 1);
  assert_int_equal(R.delivers, 1);
  assert_int_equal(R.kind, SOUK__OUT_REPLY);
  assert_true(R.deferred_flag);
  assert_true(R.ephemeral);
  assert_non_null(strstr(R.text, "form"));
  assert_int_equal(g_finish_rc, SOUK_ETIMEDOUT);
  assert_int_equal(O.outcome, SOUK__CMD_LATE);
  assert_int_equal(R.releases, 1);

  memset(&R, 0, sizeof R);
  invoke_text(&in, "modalbad");
  assert_int_equal(g_finish_rc, SOUK_EINVAL);
  assert_int_equal(R.kind, SOUK__OUT_REPLY);
  assert_string_equal(R.text, "Something went wrong.");
  assert_int_equal(O.outcome, SOUK__CMD_ERROR);
  run_loop();
}

/* Components: routed by prefix with ctx->state and the module; update
 * stays an update; unknown custom_ids get an ephemeral "expired" answer;
 * modal submissions carry their fields; a modal from a modal is refused. */
static void test_components(void **state) {
  (void)state;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMPONENT);
  in.custom_id = "t:page:2";
  const char *vals[] = {"a", "b"};
  in.values = vals;
  in.nvalues = 2;
  souk__cmd_invoke_component(&in);
  assert_int_equal(g_handler_calls, 1);
  assert_string_equal(g_seen_state, "page:2");
  assert_string_equal(g_seen_module, "compmod");
  assert_int_equal(R.kind, SOUK__OUT_UPDATE);
  assert_int_equal(R.ncomponents, 1);
  assert_string_equal(O.path, "component t:");
  assert_non_null(stat_of("component t:"));
  run_loop();
  assert_int_equal(R.releases, 1);

  /* reply on a component is a new message, not an update */
  memset(&R, 0, sizeof R);
  in.custom_id = "r:x";
  souk__cmd_invoke_component(&in);
  assert_int_equal(R.kind, SOUK__OUT_REPLY);
  assert_string_equal(R.text, "new message");

  /* a component may open a modal */
  memset(&R, 0, sizeof R);
  in.custom_id = "m:x";
  souk__cmd_invoke_component(&in);
  assert_int_equal(R.kind, SOUK__OUT_MODAL);

  /* unknown prefix */
  memset(&R, 0, sizeof R);
  int calls = g_handler_calls;
  in.custom_id = "zz:1";
  souk__cmd_invoke_component(&in);
  assert_int_equal(g_handler_calls, calls);
  assert_int_equal(R.delivers, 1);
  assert_true(R.ephemeral);
  assert_non_null(strstr(R.text, "expired"));
  assert_int_equal(R.releases, 1);

  /* no custom_id at all */
  memset(&R, 0, sizeof R);
  in.custom_id = NULL;
  souk__cmd_invoke_component(&in);
  assert_int_equal(g_handler_calls, calls);
  assert_int_equal(R.delivers, 1);
  assert_true(R.ephemeral);
  assert_int_equal(R.releases, 1);

  /* unknown modal */
  memset(&R, 0, sizeof R);
  souk__cmdrun_init_t mod = init_for(SOUK_CMD_KIND_MODAL);
  mod.custom_id = "gone:1";
  souk__cmd_invoke_component(&mod);
  assert_true(R.ephemeral);
  assert_non_null(strstr(R.text, "form"));

  /* a modal submission with its fields */
  memset(&R, 0, sizeof R);
  souk_cmd_field_t f[] = {{"other", "1"}, {"name", "Zoe"}};
  mod.custom_id = "t:form";
  mod.fields = f;
  mod.nfields = 2;
  souk__cmd_invoke_component(&mod);
  assert_string_equal(g_seen_field, "Zoe");
  assert_string_equal(g_seen_state, "form");
  /* update from a modal submit is a reply (ctx kind is MODAL) */
  assert_int_equal(R.kind, SOUK__OUT_REPLY);

  /* a modal submit's handler cannot open another modal */
  memset(&R, 0, sizeof R);
  mod.custom_id = "m:again";
  mod.fields = NULL;
  mod.nfields = 0;
  souk__cmd_invoke_component(&mod);
  assert_int_equal(R.kind, SOUK__OUT_REPLY);
  assert_int_equal(g_finish_rc, SOUK_EINVAL);
  run_loop();
}

/* Autocomplete: choices capped at 25, typed as the focused option; no
 * handler: an empty answer; late: an empty answer from the core at 2.5 s
 * and nothing more when the handler finishes. */
static void test_autocomplete(void **state) {
  (void)state;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_AUTOCOMPLETE);
  invoke_autocomplete(&in,
                      "{\"name\":\"sync\",\"options\":[{\"name\":\"n\",\"type\":4,\"value\":\"1\","
                      "\"focused\":true}]}");
  assert_int_equal(g_handler_calls, 1);
  assert_int_equal(R.delivers, 1);
  assert_int_equal(R.kind, SOUK__OUT_CHOICES);
  assert_int_equal(R.nchoices, 25);
  assert_string_equal(R.first_choice, "1");
  assert_int_equal(R.choice_type, SOUK_OPT_INTEGER);
  assert_int_equal(O.outcome, SOUK__CMD_OK);
  run_loop();
  assert_int_equal(R.releases, 1);

  /* No autocomplete handler: empty choices, refused. */
  memset(&R, 0, sizeof R);
  invoke_autocomplete(&in,
                      "{\"name\":\"noac\",\"options\":[{\"name\":\"q\",\"type\":3,\"value\":\"a\","
                      "\"focused\":true}]}");
  assert_int_equal(R.delivers, 1);
  assert_int_equal(R.kind, SOUK__OUT_CHOICES);
  assert_int_equal(R.nchoices, 0);
  assert_int_equal(O.outcome, SOUK__CMD_REFUSED);
  assert_int_equal(R.releases, 1);

  /* Unknown command in an autocomplete: empty choices, not a text reply. */
  memset(&R, 0, sizeof R);
  invoke_autocomplete(&in, "{\"name\":\"zzz\",\"options\":[]}");
  assert_int_equal(R.delivers, 1);
  assert_int_equal(R.kind, SOUK__OUT_CHOICES);
  assert_int_equal(R.nchoices, 0);
  assert_int_equal(R.releases, 1);

  /* Late: the core answers with nothing at 2.5 s; never deferred. */
  memset(&R, 0, sizeof R);
  int calls = g_handler_calls;
  invoke_autocomplete(&in,
                      "{\"name\":\"slow\",\"options\":[{\"name\":\"q\",\"type\":3,\"value\":\"a\","
                      "\"focused\":true}]}");
  assert_int_equal(g_handler_calls, calls + 1);
  run_loop();
  assert_int_equal(R.defers, 0);
  assert_int_equal(R.delivers, 1);
  assert_int_equal(R.kind, SOUK__OUT_CHOICES);
  assert_int_equal(R.nchoices, 0);
  assert_true(R.t_deliver - R.t_invoke >= 2450);
  /* the core answered, not the handler (whose finish at 2.7 s delivers nothing) */
  assert_int_equal(O.outcome, SOUK__CMD_LATE);
  assert_int_equal(g_finish_rc, 0);
  assert_int_equal(R.releases, 1);
  assert_string_equal(R.order, "VR");
}

/* Regression (cmd_run.c:336-347, souk__cmd_invoke): an autocomplete request skips
 * souk__cmd_check, so the autocomplete handler of an owner-only (or
 * guild-only, or permission-gated) command runs for anyone who sends the
 * request (Discord's default_member_permissions only hides the command in
 * the client; the API accepts the interaction), and its suggestions leak
 * whatever the handler lists.  cmd.h promises the checks run before any
 * handler.  Expected: the checks (without the cooldown) run first and a
 * refused request gets empty choices. */
static void test_autocomplete_checks(void **state) {
  (void)state;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_AUTOCOMPLETE);
  in.guild_id = 0; /* a DM, not an owner, no permissions */
  invoke_autocomplete(
      &in, "{\"name\":\"secret\",\"options\":[{\"name\":\"q\",\"type\":3,\"value\":\"a\","
           "\"focused\":true}]}");
  run_loop();
  assert_int_equal(R.delivers, 1);
  assert_int_equal(R.kind, SOUK__OUT_CHOICES);
  if (g_handler_calls != 0 || R.nchoices != 0)
    fail_msg("the owner-only command's autocomplete handler ran for a stranger (%zu choices)",
             R.nchoices);
}

/* souk_cmd_may_run: guild-only, owner-only and permissions, no cooldown. */
static void test_may_run(void **state) {
  (void)state;
  souk_cmd_ctx_t c = {.user_id = 42, .guild_id = 7, .permissions = 0};
  assert_true(souk_cmd_may_run(&c, &cmds[0]));
  assert_false(souk_cmd_may_run(&c, &cmds[10])); /* owner */
  assert_true(souk_cmd_may_run(&c, &cmds[11]));  /* guild */
  assert_false(souk_cmd_may_run(&c, &cmds[12])); /* perm */
  c.permissions = SOUK_PERM_MANAGE_GUILD;
  assert_true(souk_cmd_may_run(&c, &cmds[12]));
  c.permissions = SOUK_PERM_ADMINISTRATOR;
  assert_true(souk_cmd_may_run(&c, &cmds[12]));
  c.guild_id = 0;
  assert_false(souk_cmd_may_run(&c, &cmds[11]));
  uint64_t app[] = {42};
  souk__cmd_set_app_owners(app, 1);
  assert_true(souk_cmd_may_run(&c, &cmds[10]));
  souk__cmd_set_app_owners(NULL, 0);
  assert_false(souk_cmd_may_run(&c, &cmds[10]));
  assert_false(souk_cmd_may_run(NULL, &cmds[0]));
  assert_false(souk_cmd_may_run(&c, NULL));
  /* may_run never starts a cooldown or touches the stats */
  assert_int_equal(O.calls, 0);
}

/* Owners: commands.owners first, then the application's owners; set_app
 * copies, and setting again replaces. */
static void test_owners(void **state) {
  (void)state;
  const uint64_t *ids;
  size_t n;
  souk__cmd_owners(&ids, &n);
  assert_int_equal(n, 0);
  souk__cmd_conf.owners = (souk_conf_ids_t){conf_owner_ids, 2};
  uint64_t app[] = {333, 444, 555};
  souk__cmd_set_app_owners(app, 3);
  app[0] = 999; /* copied */
  souk__cmd_owners(&ids, &n);
  assert_int_equal(n, 5);
  assert_int_equal(ids[0], 111);
  assert_int_equal(ids[1], 222);
  assert_int_equal(ids[2], 333);
  assert_int_equal(ids[3], 444);
  assert_int_equal(ids[4], 555);
  uint64_t app2[] = {777};
  souk__cmd_set_app_owners(app2, 1);
  souk__cmd_owners(&ids, &n);
  assert_int_equal(n, 3);
  assert_int_equal(ids[2], 777);
  souk__cmd_set_app_owners(NULL, 0);
  souk__cmd_owners(&ids, &n);
  assert_int_equal(n, 2);
  souk__cmd_conf.owners = (souk_conf_ids_t){NULL, 0};
  souk__cmd_owners(&ids, &n);
  assert_int_equal(n, 0);
}

/* Per-guild prefixes: default, set, replace, reset, bounds. */
static void test_prefixes(void **state) {
  (void)state;
  assert_string_equal(souk_cmd_prefix(10), "!"); /* no commands.prefix: "!" */
  char conf_prefix[] = "$$";
  souk__cmd_conf.prefix = conf_prefix;
  assert_string_equal(souk_cmd_prefix(10), "$$");
  /* Out of order inserts keep the binary search right. */
  assert_int_equal(souk_cmd_set_prefix(30, "c"), 0);
  assert_int_equal(souk_cmd_set_prefix(10, "a"), 0);
  assert_int_equal(souk_cmd_set_prefix(20, "b"), 0);
  assert_int_equal(souk_cmd_set_prefix(UINT64_MAX, "z"), 0);
  assert_int_equal(souk_cmd_set_prefix(0, "dm"), 0);
  assert_string_equal(souk_cmd_prefix(10), "a");
  assert_string_equal(souk_cmd_prefix(20), "b");
  assert_string_equal(souk_cmd_prefix(30), "c");
  assert_string_equal(souk_cmd_prefix(UINT64_MAX), "z");
  assert_string_equal(souk_cmd_prefix(0), "dm");
  assert_string_equal(souk_cmd_prefix(15), "$$");
  /* replace */
  assert_int_equal(souk_cmd_set_prefix(20, "bb"), 0);
  assert_string_equal(souk_cmd_prefix(20), "bb");
  /* exactly 8 bytes (multi-byte characters count as bytes) */
  assert_int_equal(souk_cmd_set_prefix(20, "12345678"), 0);
  assert_string_equal(souk_cmd_prefix(20), "12345678");
  assert_int_equal(souk_cmd_set_prefix(20, "\xE2\x82\xAC\xE2\x82\xAC"), 0); /* €€: 6 bytes */
  assert_int_equal(souk_cmd_set_prefix(20, "123456789"), SOUK_EINVAL);
  assert_int_equal(souk_cmd_set_prefix(20, "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"), SOUK_EINVAL);
  assert_int_equal(souk_cmd_set_prefix(20, "a b"), SOUK_EINVAL);
  assert_int_equal(souk_cmd_set_prefix(20, "a\tb"), SOUK_EINVAL);
  assert_int_equal(souk_cmd_set_prefix(20, "ab\n"), SOUK_EINVAL);
  /* a refused prefix changes nothing */
  assert_string_equal(souk_cmd_prefix(20), "\xE2\x82\xAC\xE2\x82\xAC");
  /* reset with "" and NULL; resetting an unset guild is fine */
  assert_int_equal(souk_cmd_set_prefix(20, ""), 0);
  assert_string_equal(souk_cmd_prefix(20), "$$");
  assert_string_equal(souk_cmd_prefix(10), "a");
  assert_string_equal(souk_cmd_prefix(30), "c");
  assert_int_equal(souk_cmd_set_prefix(10, NULL), 0);
  assert_int_equal(souk_cmd_set_prefix(10, NULL), 0);
  assert_int_equal(souk_cmd_set_prefix(12345, NULL), 0);
  assert_string_equal(souk_cmd_prefix(10), "$$");
  assert_string_equal(souk_cmd_prefix(30), "c");
  assert_int_equal(souk_cmd_set_prefix(30, NULL), 0);
  assert_int_equal(souk_cmd_set_prefix(UINT64_MAX, NULL), 0);
  assert_int_equal(souk_cmd_set_prefix(0, NULL), 0);
  assert_string_equal(souk_cmd_prefix(UINT64_MAX), "$$");
  souk__cmd_conf.prefix = NULL;
  assert_string_equal(souk_cmd_prefix(30), "!");
}

/* The idle callback fires each time the unanswered count drops to 0, not
 * while something is still waiting for its answer. */
static void test_idle(void **state) {
  (void)state;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  invoke_text(&in, "sync");
  assert_int_equal(g_idle_calls, 1);
  invoke_text(&in, "err");
  assert_int_equal(g_idle_calls, 2);
  /* A refusal also passes through 1 -> 0. */
  invoke_text(&in, "owner");
  assert_int_equal(g_idle_calls, 3);
  /* Two in flight: idle only after the second finishes. */
  invoke_text(&in, "never");
  souk_cmd_ctx_t *first = g_ctx;
  invoke_text(&in, "sync");
  assert_int_equal(souk__cmd_running(), 1);
  assert_int_equal(g_idle_calls, 3);
  souk_cmd_replyf(first, "x");
  assert_int_equal(g_idle_calls, 4);
  assert_int_equal(souk__cmd_running(), 0);
  g_ctx = NULL;
  run_loop();
}

/* Many concurrent invocations finishing in reverse order: each is
 * delivered and released once (the running list stays consistent). */
static void test_many_in_flight(void **state) {
  (void)state;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  souk_cmd_ctx_t *ctxs[20];
  for (int i = 0; i < 20; i++) {
    invoke_text(&in, "never");
    ctxs[i] = g_ctx;
  }
  assert_int_equal(souk__cmd_running(), 20);
  /* finish the middle, then the ends */
  for (int i = 10; i < 20; i++)
    souk_cmd_replyf(ctxs[i], "r%d", i);
  for (int i = 9; i >= 0; i--)
    souk_cmd_replyf(ctxs[i], "r%d", i);
  g_ctx = NULL;
  run_loop();
  assert_int_equal(R.delivers, 20);
  assert_int_equal(R.releases, 20);
  assert_int_equal(souk__cmd_running(), 0);
  assert_int_equal(g_idle_calls, 1);
}

/* A gate that lets the call through: the handler runs inside the gate's
 * call, with the arguments the gate saw. */
static void test_gate_pass(void **state) {
  (void)state;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  invoke_text(&in, "gated 4");
  assert_int_equal(g_gate_calls, 1);
  assert_string_equal(g_gate_line, "gated n:4");
  assert_int_equal(g_handler_calls, 1);
  assert_int_equal(R.delivers, 1);
  assert_string_equal(R.text, "kind 0 n 4");
  /* Ungated commands never see it. */
  invoke_text(&in, "sync n:1");
  assert_int_equal(g_gate_calls, 1);
  /* A subcommand inherits its parent's gate... */
  invoke_text(&in, "grp in");
  assert_int_equal(g_gate_calls, 2);
  assert_string_equal(g_gate_line, "grp in");
  /* ...and the most specific gate wins. */
  souk__cmd_stat_t before = stat_copy("grp out");
  invoke_text(&in, "grp out");
  assert_int_equal(g_gate_calls, 2);
  assert_string_equal(R.text, "This command is not available right now.");
  assert_int_equal(stat_copy("grp out").refused, before.refused + 1);
  run_loop();
}

/* A gate naming nobody's gate is refused, never run unchecked; the core's
 * own checks come before the gate. */
static void test_gate_missing_and_checks(void **state) {
  (void)state;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  invoke_text(&in, "nogate");
  assert_int_equal(g_handler_calls, 0);
  assert_string_equal(R.text, "This command is not available right now.");
  assert_true(R.ephemeral);
  invoke_text(&in, "gowner");
  assert_int_equal(g_gate_calls, 0);
  assert_string_equal(R.text, "`/gowner` can only be used by the bot's owners.");
  run_loop();
}

/* A gate that prompts finishes the call itself; the Accept press runs the
 * kept command in the press, through the checks and the gate again. */
static void test_gate_prompt_then_redispatch(void **state) {
  (void)state;
  g_gate_mode = GATE_PROMPT;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  in.idem_key = "msg:5";
  invoke_text(&in, "gated n:9");
  assert_int_equal(g_handler_calls, 0);
  assert_int_equal(R.delivers, 1);
  assert_string_equal(R.text, "accept first");
  assert_int_equal(R.ncomponents, 1);
  assert_string_equal(g_gate_kept, "gated n:9");
  run_loop();
  souk__cmd_stat_t before = stat_copy("gated");
  souk__cmdrun_init_t press = init_for(SOUK_CMD_KIND_COMPONENT);
  press.custom_id = "g:accept";
  souk__cmd_invoke_component(&press);
  assert_int_equal(g_gate_calls, 2);    /* the gate saw it again */
  assert_int_equal(g_handler_calls, 2); /* the press and the command */
  assert_int_equal(R.delivers, 2);
  assert_int_equal(R.kind, SOUK__OUT_REPLY);
  /* The handler ran as a command with the kept arguments, keyed by the
   * invocation they were kept from rather than the press (ix:1). */
  assert_string_equal(R.text, "kind 0 n 9");
  assert_string_equal(g_seen_idem, "msg:5");
  assert_int_equal(stat_copy("gated").ok, before.ok + 1);
  run_loop();
  assert_int_equal(R.releases, 2);
  assert_int_equal(souk__cmd_running(), 0);
}

/* Redispatching runs the checks again: a line that does not parse, or a
 * command the presser may not run, is refused in the press. */
static void test_redispatch_refusals(void **state) {
  (void)state;
  souk__cmdrun_init_t press = init_for(SOUK_CMD_KIND_COMPONENT);
  press.custom_id = "g:accept";
  snprintf(g_gate_kept, sizeof g_gate_kept, "gated n:x");
  souk__cmd_invoke_component(&press);
  assert_string_equal(R.text, "`n` must be a whole number, like 10; `x` is not.");
  assert_true(R.ephemeral);
  snprintf(g_gate_kept, sizeof g_gate_kept, "gowner");
  souk__cmd_invoke_component(&press);
  assert_string_equal(R.text, "`/gowner` can only be used by the bot's owners.");
  snprintf(g_gate_kept, sizeof g_gate_kept, "nosuch");
  souk__cmd_invoke_component(&press);
  assert_string_equal(R.text, "Unknown command `nosuch`.");
  assert_int_equal(g_gate_calls, 0);
  assert_int_equal(R.delivers, 3);
  run_loop();
  assert_int_equal(R.releases, 3);
}

/* A gate that decides later (a store read): the deadline timer runs
 * meanwhile, so a slow gate is deferred like a slow handler. */
static void test_gate_later(void **state) {
  (void)state;
  g_gate_mode = GATE_LATER;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  invoke_text(&in, "gated n:2");
  assert_int_equal(g_handler_calls, 0);
  assert_int_equal(R.delivers, 0);
  run_loop();
  assert_int_equal(g_handler_calls, 1);
  assert_int_equal(R.defers, 1); /* defer_after is 100 ms, the gate took 200 */
  assert_int_equal(R.delivers, 1);
  assert_true(R.deferred_flag);
  assert_string_equal(R.text, "kind 0 n 2");
  assert_string_equal(R.order, "DVR");
}

/* The public figures (souk/stats.h) are the runner's: calls counted per
 * path, and percentiles read from the latency histogram. */
static void test_stats(void **state) {
  (void)state;
  souk__cmdrun_init_t in = init_for(SOUK_CMD_KIND_COMMAND);
  for (int i = 0; i < 3; i++)
    invoke_text(&in, "sync n:1");
  run_loop();
  souk_stats_command_t c = {0};
  bool found = false;
  for (size_t i = 0; i < souk_stats_commands(); i++) {
    assert_int_equal(souk_stats_command_at(i, &c), 0);
    if (strcmp(c.path, "sync") == 0) {
      found = true;
      break;
    }
  }
  assert_true(found);
  assert_true(c.calls >= 3);
  assert_int_equal(c.calls, stat_copy("sync").calls);
  /* Fast calls: every share falls under the first bound. */
  assert_true(souk_stats_percentile(&c, 0.5) == souk_stats_latency_bounds[0]);
  assert_true(souk_stats_percentile(&c, 0.99) == souk_stats_latency_bounds[0]);
  assert_int_equal(souk_stats_command_at(souk_stats_commands(), &c), SOUK_ERANGE);
  /* A histogram by hand: 10 calls, 6 under 10 ms, 9 under 1 s, 1 slower
   * than the last bound. */
  souk_stats_command_t h = {.calls = 10, .buckets = {6, 6, 6, 6, 6, 9, 9, 9}};
  assert_true(souk_stats_percentile(&h, 0.5) == 0.01);
  assert_true(souk_stats_percentile(&h, 0.9) == 1);
  assert_true(souk_stats_percentile(&h, 0.95) < 0);
  souk_stats_command_t none = {0};
  assert_true(souk_stats_percentile(&none, 0.5) < 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gate_pass, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gate_missing_and_checks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gate_prompt_then_redispatch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redispatch_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gate_later, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_reply, setup, teardown),
      cmocka_unit_test_setup_teardown(test_strings_copied, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_and_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(test_update_on_command_is_reply, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deferred_then_finished, setup, teardown),
      cmocka_unit_test_setup_teardown(test_defer_failed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_surface_without_defer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_then_late_finish, setup, teardown),
      cmocka_unit_test_setup_teardown(test_modal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_components, setup, teardown),
      cmocka_unit_test_setup_teardown(test_autocomplete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_autocomplete_checks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_may_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_owners, setup, teardown),
      cmocka_unit_test_setup_teardown(test_prefixes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idle, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_in_flight, setup, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk_loop_close();
  return rc;
}
