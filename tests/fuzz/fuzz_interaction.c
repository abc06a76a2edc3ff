/* libFuzzer target for a whole interaction from outside, through the
 * command runner and back out as Discord JSON: the input is an
 * INTERACTION_CREATE payload ({"type":2|4,"data":{...},"guild_id":...});
 * its data is parsed with souk__cmd_parse_interaction (as a command and as
 * an autocomplete request), run through souk__cmd_invoke with a surface
 * that renders what handlers answer the way src/discord/commands.c does
 * (souk__dmsg_write in 2000-character chunks, souk__dmsg_choices), and
 * every rendered body must parse as JSON again.  Handlers echo what they
 * were given (option text into content, embed fields, button labels and
 * custom_ids, autocomplete choices), so arbitrary user text reaches every
 * writer.
 *
 * Invariants: no crash or sanitizer report; a failed parse explains
 * itself; every invocation is delivered exactly once and released exactly
 * once; every body is valid JSON.
 *
 * Numeric autocomplete choices echo the typed text raw ("+5", "007",
 * "inf"), which souk__dmsg_choices must parse and write again (a bug found
 * here, fixed); SOUK_FUZZ_RAW_CHOICES=0 makes the handler send the parsed
 * value instead, as a careful handler would.
 *
 * Run: fuzz_interaction -dict=tests/fuzz/json.dict CORPUS tests/fuzz/corpus/cmd */
#include "core/cmdrun.h"
#include "discord/dmsg.h"
#include "discord/msgsplit.h"
#include "souk/buf.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static int g_delivers, g_releases;
static bool g_raw_choices;

static void check_json(const souk_buf_t *b) {
  souk_json_t j = {0};
  if (souk_json_parse(&j, b->data, b->len) != 0) {
    fprintf(stderr, "invalid JSON body: %.*s\n", (int)(b->len > 2000 ? 2000 : b->len), b->data);
    abort();
  }
  souk_json_free(&j);
}

static int fz_defer(souk_cmd_ctx_t *ctx, bool ephemeral) {
  (void)ctx;
  (void)ephemeral;
  return 0;
}

/* Render as ix_deliver does for an answer that was not deferred. */
static void fz_deliver(souk_cmd_ctx_t *ctx, const souk__out_t *out, bool deferred) {
  (void)ctx;
  (void)deferred;
  g_delivers++;
  souk_buf_t b = {0};
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
    else
      souk__dmsg_modal(&w, out->modal);
    souk_jw_end(&w);
    souk_jw_end(&w);
    check_json(&b);
    souk_buf_free(&b);
    return;
  }
  const souk_msg_t *m = out->msg;
  if (!m) abort();
  const char *text = m->content ? m->content : "";
  size_t len = strlen(text);
  bool first = true;
  do {
    size_t skip, n = souk__msg_chunk(text, len, SOUK_MSG_CONTENT_MAX, &skip);
    if (n == 0 && skip == 0 && len > 0) abort(); /* no progress */
    souk_buf_reset(&b);
    souk_jw_init(&w, &b);
    souk_jw_obj(&w);
    souk_jw_key(&w, "type");
    souk_jw_i64(&w, out->kind == SOUK__OUT_UPDATE ? 7 : 4);
    souk_jw_key(&w, "data");
    souk_jw_obj(&w);
    souk__dmsg_write(&w, m, text, n, first, out->kind == SOUK__OUT_UPDATE,
                     m->ephemeral ? SOUK_DMSG_EPHEMERAL : 0);
    souk_jw_end(&w);
    souk_jw_end(&w);
    check_json(&b);
    first = false;
    text += n + skip;
    len -= n + skip;
  } while (len > 0);
  souk_buf_free(&b);
}

static void fz_release(souk_cmd_ctx_t *ctx) {
  (void)ctx;
  g_releases++;
}

static const souk__surface_t surface = {"fuzz", fz_defer, fz_deliver, fz_release};

/* Echo every argument back: content, embed fields, buttons, a select. */
static void echo(souk_cmd_ctx_t *ctx) {
  const souk_cmd_args_t *a = ctx->args;
  souk_buf_t content = {0};
  souk_buf_printf(&content, "/%s by %s:", a->path, ctx->user_name);
  souk_embed_field_t fields[SOUK_CMD_OPTIONS_MAX];
  souk_component_t comps[SOUK_CMD_OPTIONS_MAX];
  souk_select_option_t sopts[SOUK_CMD_OPTIONS_MAX];
  char ids[SOUK_CMD_OPTIONS_MAX][SOUK_CMD_CUSTOM_ID_MAX + 1];
  char nums[SOUK_CMD_OPTIONS_MAX][40];
  size_t nc = 0;
  for (size_t i = 0; i < a->n; i++) {
    const souk_cmd_arg_t *v = &a->v[i];
    const char *txt = v->text;
    if (!txt) {
      snprintf(nums[i], sizeof nums[i], "%lld/%.17g/%d/%llu", (long long)v->i, v->num, v->b,
               (unsigned long long)v->id);
      txt = nums[i];
    }
    souk_buf_printf(&content, " %s=%s", v->name, txt);
    fields[i] = (souk_embed_field_t){v->name, txt, (i & 1) != 0};
    sopts[i] = (souk_select_option_t){txt, txt, txt};
    if (souk_cmd_custom_id(ids[i], sizeof ids[i], "fz:", txt) != 0) snprintf(ids[i], 8, "fz:");
    comps[nc++] = (souk_component_t){.custom_id = ids[i], .label = txt, .new_row = (i % 3) == 0};
  }
  souk_embed_t e = {.title = a->path,
                    .description = content.data,
                    .footer = ctx->user_name,
                    .fields = fields,
                    .nfields = a->n};
  if (a->n) {
    comps[nc] = (souk_component_t){
        .custom_id = "fz:sel", .label = "pick", .options = sopts, .noptions = a->n};
    nc++;
  }
  souk_msg_t m = {.content = content.data,
                  .embeds = &e,
                  .nembeds = 1,
                  .components = comps,
                  .ncomponents = nc,
                  .ephemeral = (a->n & 1) != 0};
  souk_cmd_reply(ctx, &m);
  souk_buf_free(&content);
}

/* Suggest the typed text (and a few variants) back. */
static void suggest(souk_cmd_ctx_t *ctx) {
  const souk_cmd_arg_t *f = souk_cmd_focused(ctx->args);
  souk_cmd_choice_t c[30];
  char num[40];
  size_t n = 0;
  const char *typed = f && f->text ? f->text : "";
  if (f && (f->type == SOUK_OPT_INTEGER || f->type == SOUK_OPT_NUMBER) && !g_raw_choices) {
    /* What a careful handler sends: the parsed value, formatted. */
    if (f->type == SOUK_OPT_INTEGER)
      snprintf(num, sizeof num, "%lld", (long long)f->i);
    else if (isfinite(f->num))
      snprintf(num, sizeof num, "%.17g", f->num);
    else
      snprintf(num, sizeof num, "0");
    typed = num;
  }
  for (; n < 30; n++)
    c[n] = (souk_cmd_choice_t){typed, typed};
  souk_cmd_choices(ctx, c, n);
}

static const souk_cmd_choice_t sides[] = {{"Buy", "buy"}, {"Sell", "sell"}, {NULL, NULL}};
static const souk_cmd_option_t buy_opts[] = {
    {.name = "symbol",
     .description = "d",
     .type = SOUK_OPT_STRING,
     .required = true,
     .autocomplete = true,
     .max_length = 100},
    {.name = "amount",
     .description = "d",
     .type = SOUK_OPT_INTEGER,
     .required = true,
     .autocomplete = true},
    {.name = "limit", .description = "d", .type = SOUK_OPT_NUMBER, .autocomplete = true},
    {.name = "confirm", .description = "d", .type = SOUK_OPT_BOOLEAN},
    {.name = "side", .description = "d", .type = SOUK_OPT_STRING, .choices = sides},
    {.name = "user", .description = "d", .type = SOUK_OPT_USER},
    {.name = "channel", .description = "d", .type = SOUK_OPT_CHANNEL},
    {.name = "role", .description = "d", .type = SOUK_OPT_ROLE},
    {.name = "note", .description = "d", .type = SOUK_OPT_STRING},
    {0}};
static const souk_cmd_option_t set_opts[] = {{.name = "prefix",
                                              .description = "d",
                                              .type = SOUK_OPT_STRING,
                                              .required = true,
                                              .max_length = 5},
                                             {0}};
static const struct souk_command prefix_subs[] = {
    {.name = "set", .description = "d", .options = set_opts, .handler = echo}, {0}};
static const struct souk_command setup_subs[] = {
    {.name = "prefix", .description = "d", .subcommands = prefix_subs},
    {.name = "show", .description = "d", .handler = echo},
    {0}};
static const struct souk_command cmds[] = {
    {.name = "buy",
     .description = "d",
     .options = buy_opts,
     .handler = echo,
     .autocomplete = suggest},
    {.name = "setup",
     .description = "d",
     .subcommands = setup_subs,
     .flags = SOUK_CMD_GUILD_ONLY,
     .permissions = SOUK_PERM_MANAGE_GUILD},
    {.name = "admin", .description = "d", .handler = echo, .flags = SOUK_CMD_OWNER_ONLY},
    {0}};

static uint64_t id_of(const souk_json_t *j, int t) {
  uint64_t v = 0;
  if (t >= 0) souk_json_u64(j, t, &v);
  return v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  souk_log_set_level(SOUK_LOG_OFF);
  const char *e = getenv("SOUK_FUZZ_RAW_CHOICES");
  g_raw_choices = !(e && e[0] == '0');
  if (souk__cmd_register(cmds, "fuzz") != 0) abort();
  souk__cmd_conf.defer_after_ms = 2000;
  souk__cmd_conf.timeout_ms = 60000;
  static uint64_t owner = 1;
  souk__cmd_set_app_owners(&owner, 1);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  souk_json_t j = {0};
  if (souk_json_parse(&j, (const char *)data, size) != 0) {
    souk_json_free(&j);
    return 0;
  }
  /* A whole interaction, or (to reuse the cmd corpus) just its data. */
  int d = souk_json_get(&j, 0, "data");
  if (d < 0) d = 0;
  int64_t type = 0;
  souk_json_i64(&j, souk_json_get(&j, 0, "type"), &type);
  int member = souk_json_get(&j, 0, "member");
  char name[100] = "";
  if (member >= 0) souk_json_str(&j, souk_json_get(&j, member, "nick"), name, sizeof name);
  uint64_t perms = 0;
  if (member >= 0) perms = id_of(&j, souk_json_get(&j, member, "permissions"));
  souk__cmdrun_init_t in = {
      .surface = &surface,
      .user_id = id_of(&j, souk_json_path(&j, 0, "member", "user", "id", NULL)),
      .user_name = name,
      .guild_id = id_of(&j, souk_json_get(&j, 0, "guild_id")),
      .channel_id = id_of(&j, souk_json_get(&j, 0, "channel_id")),
      .permissions = perms,
      .idem_key = "ix:fuzz",
  };
  for (int mode = 0; mode < 2; mode++) {
    /* type 4 (or mode 1) is autocomplete; anything else a command */
    bool ac = mode == 1 || type == 4;
    if (mode == 1 && type == 4) break;
    in.kind = ac ? SOUK_CMD_KIND_AUTOCOMPLETE : SOUK_CMD_KIND_COMMAND;
    souk_cmd_args_t args;
    memset(&args, 0, sizeof args);
    int rc = souk__cmd_parse_interaction(&j, d, ac, &args);
    if (rc != 0 && args.error[0] == '\0') abort();
    int before_d = g_delivers, before_r = g_releases;
    size_t running = souk__cmd_running();
    souk__cmd_invoke(&in, &args, rc);
    souk_cmd_args_free(&args);
    /* Every handler here finishes at once: one delivery, nothing left
     * running, and one release once the timer handle is closed. */
    if (g_delivers != before_d + 1) abort();
    if (souk__cmd_running() != running) abort();
    uv_run(souk_loop(), UV_RUN_NOWAIT);
    if (g_releases != before_r + 1) abort();
  }
  souk_json_free(&j);
  return 0;
}
