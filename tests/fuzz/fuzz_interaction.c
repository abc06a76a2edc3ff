/* libFuzzer target for a whole interaction from outside, through the
 * command runner and back out as Discord JSON: the input is an
 * INTERACTION_CREATE payload ({"type":2|4,"data":{...},"guild_id":...}),
 * or just its data.  It goes, as a command and as an autocomplete
 * request, through the real gateway surface of src/discord/commands.c
 * (souk__dcmd_event: parsing, the runner, and its ix_deliver rendering
 * what handlers answer into interaction responses and follow-ups), with
 * the REST client replaced by a hook that checks every body.  Handlers
 * echo what they were given (option text into content, embed fields,
 * button labels and custom_ids, autocomplete choices), so arbitrary user
 * text reaches every writer.
 *
 * Invariants: no crash or sanitizer report; every invocation is answered
 * with exactly one interaction response (POST .../callback) before any
 * follow-up; every body is valid JSON; nothing is left running, and the
 * interaction's state is freed once its requests are done (LeakSanitizer).
 *
 * Numeric autocomplete choices echo the typed text raw ("+5", "007",
 * "inf"), which souk__dmsg_choices must parse and write again (a bug found
 * here, fixed); SOUK_FUZZ_RAW_CHOICES=0 makes the handler send the parsed
 * value instead, as a careful handler would.
 *
 * Run: fuzz_interaction -dict=tests/fuzz/json.dict CORPUS tests/fuzz/corpus/cmd */
#include "core/cmdrun.h"
#include "discord/commands.h"
#include "discord/rest.h"
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

static bool g_raw_choices;

/* Requests the surface sent, answered after the invocation returns (the
 * REST client never answers from inside a request either). */
#define PENDING_MAX 64
static struct {
  souk__rest_cb cb;
  void *ud;
} g_pending[PENDING_MAX];
static size_t g_npending;
static int g_responses, g_followups;

static void check_json(const char *body, size_t len) {
  souk_json_t j = {0};
  if (souk_json_parse(&j, body, len) != 0 || souk_json_type(&j, 0) != SOUK_JSON_OBJECT) {
    fprintf(stderr, "invalid JSON body: %.*s\n", (int)(len > 2000 ? 2000 : len), body);
    abort();
  }
  souk_json_free(&j);
}

/* The REST client's place: check the body, note what kind of request it
 * is, and queue the completion. */
static int fz_send(const souk__rest_opts_t *o, souk__rest_cb cb, void *ud) {
  bool response = strstr(o->path, "/callback") != NULL;
  /* The response comes first, once; everything else is a follow-up. */
  if (response ? g_responses++ != 0 || g_followups : g_responses == 0) abort();
  if (!response) g_followups++;
  if (o->body_len) check_json(o->body, o->body_len);
  else if (strcmp(o->method, "DELETE") != 0) abort();
  if (g_npending == PENDING_MAX) abort();
  g_pending[g_npending].cb = cb;
  g_pending[g_npending].ud = ud;
  g_npending++;
  return 0;
}

static void drain(void) {
  while (g_npending) {
    souk__rest_cb cb = g_pending[0].cb;
    void *ud = g_pending[0].ud;
    memmove(g_pending, g_pending + 1, --g_npending * sizeof *g_pending);
    souk__rest_resp_t r = {.status = 204, .route = "fuzz", .body = ""};
    cb(&r, ud);
  }
}

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
  souk__dcmd_set_ix_send(fz_send);
  return 0;
}

/* The raw text of token t, or def when it is absent. */
static void raw_or(souk_buf_t *b, const souk_json_t *j, int t, const char *def) {
  size_t n = 0;
  const char *r = t >= 0 ? souk_json_raw(j, t, &n) : NULL;
  if (r && souk_json_type(j, t) == SOUK_JSON_OBJECT)
    souk_buf_append(b, r, n);
  else
    souk_buf_puts(b, def);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  souk_json_t j = {0};
  if (souk_json_parse(&j, (const char *)data, size) != 0 ||
      souk_json_type(&j, 0) != SOUK_JSON_OBJECT) {
    souk_json_free(&j);
    return 0;
  }
  /* A whole interaction, or (to reuse the cmd corpus) just its data. */
  int d = souk_json_get(&j, 0, "data");
  if (d < 0) d = 0;
  int64_t type = 0;
  souk_json_i64(&j, souk_json_get(&j, 0, "type"), &type);
  for (int mode = 0; mode < 2; mode++) {
    /* type 4 (or mode 1) is autocomplete; anything else a command */
    bool ac = mode == 1 || type == 4;
    if (mode == 1 && type == 4) break;
    /* The interaction as the gateway delivers it, with the input's data,
     * member and guild. */
    souk_buf_t b = {0};
    souk_buf_printf(&b, "{\"id\":\"11\",\"application_id\":\"22\",\"token\":\"tok\","
                        "\"type\":%d,\"channel_id\":\"33\",\"guild_id\":",
                    ac ? 4 : 2);
    int g = souk_json_get(&j, 0, "guild_id");
    uint64_t gid = 0;
    if (g >= 0) souk_json_u64(&j, g, &gid);
    souk_buf_printf(&b, "\"%llu\",\"member\":", (unsigned long long)gid);
    raw_or(&b, &j, souk_json_get(&j, 0, "member"), "{\"user\":{\"id\":\"44\"}}");
    souk_buf_puts(&b, ",\"data\":");
    raw_or(&b, &j, d, "{}");
    souk_buf_putc(&b, '}');
    souk_json_t ix = {0};
    if (souk_json_parse(&ix, b.data, b.len) == 0) {
      g_responses = g_followups = 0;
      size_t running = souk__cmd_running();
      souk_event_t ev = {.name = "INTERACTION_CREATE", .json = &ix, .d = 0};
      if (!souk__dcmd_event(&ev)) abort();
      drain();
      /* Every handler here finishes at once: one response, nothing left
       * running, and the deadline timer's handle closes on the loop. */
      if (g_responses != 1) abort();
      if (souk__cmd_running() != running) abort();
      uv_run(souk_loop(), UV_RUN_NOWAIT);
    }
    souk_json_free(&ix);
    souk_buf_free(&b);
  }
  souk_json_free(&j);
  return 0;
}
