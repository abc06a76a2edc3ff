/* A module that exists only in test builds (CMake's SOUK_TEST_HOOKS, on
 * for Debug builds, never in release builds): owner-only, hidden commands
 * that call the module-facing Discord and settings APIs directly, so the
 * integration tests can prove that alerts, edits, DMs, renames, counts,
 * bans, presence and settings reach the fake Discord (through the REST
 * client and its rate limiter) or the console exactly as a real module's
 * would.  Each answer is one line a test can parse:
 *   "ok key=value ..." or "error=ENAME status=N code=N retry_after_ms=N".
 * It uses include/souk alone, like any module. */
#include "souk/alloc.h"
#include "souk/cmd.h"
#include "souk/discord.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/module.h"
#include "souk/settings.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACK_PREFIX "testhooks:ack:"

static uint64_t id_arg(const souk_cmd_ctx_t *ctx, const char *name) {
  const char *s = souk_cmd_arg_str(ctx->args, name, "0");
  return strtoull(s, NULL, 10);
}

static void reply_result(souk_cmd_ctx_t *ctx, const souk_discord_result_t *r) {
  if (r->err)
    souk_cmd_replyf(ctx, "error=%s status=%d code=%d retry_after_ms=%" PRIu64, souk_errname(r->err),
                    r->status, r->code, r->retry_after_ms);
  else
    souk_cmd_replyf(ctx, "ok message=%" PRIu64 " channel=%" PRIu64 " status=%d", r->message_id,
                    r->channel_id, r->status);
}

static void done_cb(const souk_discord_result_t *r, void *ud) { reply_result(ud, r); }

/* A call refused before anything was sent. */
static void refused(souk_cmd_ctx_t *ctx, int rc) {
  souk_cmd_replyf(ctx, "error=%s status=0 code=0 refused=1", souk_errname(rc));
}

static void send_cmd(souk_cmd_ctx_t *ctx) {
  static const souk_embed_field_t fields[] = {
      {.name = "FMV", .value = "1,200,000", .inline_field = true}};
  static const souk_embed_t embed = {.title = "Test alert",
                                     .description = "Something cheap",
                                     .fields = fields,
                                     .nfields = 1,
                                     .color = 0x2ecc71};
  char id[SOUK_CMD_CUSTOM_ID_MAX + 1];
  souk_cmd_custom_id(id, sizeof id, ACK_PREFIX, "1");
  souk_component_t button = {.custom_id = id, .label = "Acknowledge"};
  bool extras = souk_cmd_arg_bool(ctx->args, "extras", false);
  souk_msg_t m = {.content = souk_cmd_arg_str(ctx->args, "text", "")};
  if (extras) {
    m.embeds = &embed;
    m.nembeds = 1;
    m.components = &button;
    m.ncomponents = 1;
  }
  int rc = souk_discord_send(souk_cmd_arg_id(ctx->args, "channel"), &m, done_cb, ctx);
  if (rc) refused(ctx, rc);
}

static void edit_cmd(souk_cmd_ctx_t *ctx) {
  souk_msg_t m = {.content = souk_cmd_arg_str(ctx->args, "text", "")};
  int rc = souk_discord_edit(souk_cmd_arg_id(ctx->args, "channel"), id_arg(ctx, "message"), &m,
                             done_cb, ctx);
  if (rc) refused(ctx, rc);
}

static void delete_cmd(souk_cmd_ctx_t *ctx) {
  int rc = souk_discord_delete(souk_cmd_arg_id(ctx->args, "channel"), id_arg(ctx, "message"),
                               done_cb, ctx);
  if (rc) refused(ctx, rc);
}

/* count states of one message at once: coalesced into a few edits. */
static void burst_cmd(souk_cmd_ctx_t *ctx) {
  int64_t n = souk_cmd_arg_int(ctx->args, "count", 10);
  uint32_t interval = (uint32_t)souk_cmd_arg_int(ctx->args, "interval_ms", 1000);
  char text[64];
  int rc = 0;
  for (int64_t i = 1; i <= n && rc == 0; i++) {
    snprintf(text, sizeof text, "state %lld of %lld", (long long)i, (long long)n);
    souk_msg_t m = {.content = text};
    rc = souk_discord_edit_latest(souk_cmd_arg_id(ctx->args, "channel"), id_arg(ctx, "message"), &m,
                                  interval);
  }
  if (rc)
    refused(ctx, rc);
  else
    souk_cmd_replyf(ctx, "ok queued=%lld", (long long)n);
}

static void dm_cmd(souk_cmd_ctx_t *ctx) {
  souk_msg_t m = {.content = souk_cmd_arg_str(ctx->args, "text", "")};
  int rc = souk_discord_dm(souk_cmd_arg_id(ctx->args, "user"), &m, done_cb, ctx);
  if (rc) refused(ctx, rc);
}

static void rename_cmd(souk_cmd_ctx_t *ctx) {
  uint64_t ch = souk_cmd_arg_id(ctx->args, "channel");
  int rc = souk_discord_rename_channel(ch, souk_cmd_arg_str(ctx->args, "name", ""), done_cb, ctx);
  if (rc)
    souk_cmd_replyf(ctx, "error=%s status=0 code=0 refused=1 wait_ms=%" PRIu64, souk_errname(rc),
                    souk_discord_rename_wait_ms(ch));
}

static void counts_cb(const souk_discord_result_t *r, const souk_json_t *j, int root, void *ud) {
  souk_cmd_ctx_t *ctx = ud;
  if (r->err) {
    reply_result(ctx, r);
    return;
  }
  int64_t members = -1, online = -1;
  souk_json_i64(j, souk_json_get(j, root, "approximate_member_count"), &members);
  souk_json_i64(j, souk_json_get(j, root, "approximate_presence_count"), &online);
  souk_cmd_replyf(ctx, "ok members=%lld online=%lld", (long long)members, (long long)online);
}

static void counts_cmd(souk_cmd_ctx_t *ctx) {
  char path[64];
  snprintf(path, sizeof path, "/guilds/%" PRIu64 "?with_counts=true", ctx->guild_id);
  int rc = souk_discord_get(path, counts_cb, ctx);
  if (rc) refused(ctx, rc);
}

/* Every ban of this guild, a page of 1,000 at a time. */
typedef struct bans {
  souk_cmd_ctx_t *ctx;
  uint64_t after;
  int64_t total, pages;
} bans_t;

static void bans_page(bans_t *b);

static void bans_cb(const souk_discord_result_t *r, const souk_json_t *j, int root, void *ud) {
  bans_t *b = ud;
  if (r->err) {
    reply_result(b->ctx, r);
    souk_free(b);
    return;
  }
  size_t n = souk_json_count(j, root);
  b->pages++;
  b->total += (int64_t)n;
  if (n > 0) {
    int last = souk_json_at(j, root, n - 1);
    souk_json_u64(j, souk_json_path(j, last, "user", "id", NULL), &b->after);
  }
  if (n == 1000) {
    bans_page(b);
    return;
  }
  souk_cmd_replyf(b->ctx, "ok bans=%lld pages=%lld", (long long)b->total, (long long)b->pages);
  souk_free(b);
}

static void bans_page(bans_t *b) {
  char path[96];
  snprintf(path, sizeof path, "/guilds/%" PRIu64 "/bans?limit=1000&after=%" PRIu64,
           b->ctx->guild_id, b->after);
  int rc = souk_discord_get(path, bans_cb, b);
  if (rc) {
    refused(b->ctx, rc);
    souk_free(b);
  }
}

static void bans_cmd(souk_cmd_ctx_t *ctx) {
  bans_t *b = souk_calloc(1, sizeof *b);
  b->ctx = ctx;
  bans_page(b);
}

static void presence_cmd(souk_cmd_ctx_t *ctx) {
  int rc = souk_discord_set_presence(souk_cmd_arg_str(ctx->args, "text", ""),
                                     (int)souk_cmd_arg_int(ctx->args, "type", 3));
  if (rc)
    refused(ctx, rc);
  else
    souk_cmd_replyf(ctx, "ok");
}

static void can_cmd(souk_cmd_ctx_t *ctx) {
  uint64_t perm = (uint64_t)souk_cmd_arg_int(ctx->args, "perm", 0);
  bool yes = souk_discord_bot_can(ctx->guild_id, souk_cmd_arg_id(ctx->args, "channel"), perm);
  souk_cmd_replyf(ctx, "ok can=%d bot=%" PRIu64, yes, souk_discord_bot_user_id());
}

static void setting_cmd(souk_cmd_ctx_t *ctx) {
  const char *key = souk_cmd_arg_str(ctx->args, "key", "");
  const char *value = souk_cmd_arg_str(ctx->args, "value", NULL);
  const souk_setting_t *s = souk_setting_find(key, NULL);
  uint64_t scope = s && s->scope == SOUK_SETTING_USER ? ctx->user_id : ctx->guild_id;
  char err[200], out[200];
  if (value) {
    int rc = souk_setting_set(scope, key, value, ctx->user_id, err, sizeof err);
    if (rc) {
      souk_cmd_replyf(ctx, "error=%s reason=%s", souk_errname(rc), err);
      return;
    }
  }
  souk_setting_source_t src;
  int rc = souk_setting_get(scope, key, out, sizeof out, &src);
  if (rc) {
    souk_cmd_replyf(ctx, "error=%s", souk_errname(rc));
    return;
  }
  static const char *const srcs[] = {"default", "config", "set"};
  souk_cmd_replyf(ctx, "ok value=%s source=%s", out, srcs[src]);
}

/* The button on a test alert: acknowledged at once (deferred update), then
 * the message is edited through the coalescer. */
static void ack_component(souk_cmd_ctx_t *ctx) {
  uint64_t channel = ctx->channel_id, message = ctx->message_id;
  souk_cmd_ack(ctx);
  souk_msg_t m = {.content = "acknowledged"};
  souk_discord_edit_latest(channel, message, &m, 1000);
}

/* ---- tables -------------------------------------------------------------------- */

#define CHANNEL_OPT                                                                                \
  { .name = "channel", .description = "Channel", .type = SOUK_OPT_CHANNEL, .required = true }
#define MESSAGE_OPT                                                                                \
  { .name = "message", .description = "Message id", .type = SOUK_OPT_STRING, .required = true }
#define TEXT_OPT                                                                                   \
  { .name = "text", .description = "Text", .type = SOUK_OPT_STRING, .required = true }

static const souk_cmd_option_t send_opts[] = {
    CHANNEL_OPT,
    TEXT_OPT,
    {.name = "extras", .description = "With an embed and a button", .type = SOUK_OPT_BOOLEAN},
    {0}};
static const souk_cmd_option_t edit_opts[] = {CHANNEL_OPT, MESSAGE_OPT, TEXT_OPT, {0}};
static const souk_cmd_option_t delete_opts[] = {CHANNEL_OPT, MESSAGE_OPT, {0}};
static const souk_cmd_option_t burst_opts[] = {CHANNEL_OPT,
                                               MESSAGE_OPT,
                                               {.name = "count",
                                                .description = "States",
                                                .type = SOUK_OPT_INTEGER,
                                                SOUK_OPT_INT_RANGE(1, 1000)},
                                               {.name = "interval_ms",
                                                .description = "Interval",
                                                .type = SOUK_OPT_INTEGER,
                                                SOUK_OPT_INT_RANGE(1000, 60000)},
                                               {0}};
static const souk_cmd_option_t dm_opts[] = {
    {.name = "user", .description = "User", .type = SOUK_OPT_USER, .required = true},
    TEXT_OPT,
    {0}};
static const souk_cmd_option_t rename_opts[] = {
    CHANNEL_OPT,
    {.name = "name", .description = "Name", .type = SOUK_OPT_STRING, .required = true},
    {0}};
static const souk_cmd_option_t presence_opts[] = {
    {.name = "text", .description = "Activity", .type = SOUK_OPT_STRING, .required = true},
    {.name = "type",
     .description = "Activity type",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(0, 9)},
    {0}};
static const souk_cmd_option_t can_opts[] = {
    {.name = "perm", .description = "Permission bits", .type = SOUK_OPT_INTEGER, .required = true},
    {.name = "channel", .description = "Channel", .type = SOUK_OPT_CHANNEL},
    {0}};
static const souk_cmd_option_t setting_opts[] = {
    {.name = "key", .description = "Setting", .type = SOUK_OPT_STRING, .required = true},
    {.name = "value", .description = "New value", .type = SOUK_OPT_STRING},
    {0}};

static const souk_command_t subs[] = {
    {.name = "send", .description = "Post a message", .options = send_opts, .handler = send_cmd},
    {.name = "edit", .description = "Edit a message", .options = edit_opts, .handler = edit_cmd},
    {.name = "delete",
     .description = "Delete a message",
     .options = delete_opts,
     .handler = delete_cmd},
    {.name = "burst",
     .description = "Many states of one message",
     .options = burst_opts,
     .handler = burst_cmd},
    {.name = "dm", .description = "DM a user", .options = dm_opts, .handler = dm_cmd},
    {.name = "rename",
     .description = "Rename a channel",
     .options = rename_opts,
     .handler = rename_cmd},
    {.name = "counts", .description = "This guild's counts", .handler = counts_cmd},
    {.name = "bans", .description = "Count this guild's bans", .handler = bans_cmd},
    {.name = "presence",
     .description = "Set the presence",
     .options = presence_opts,
     .handler = presence_cmd},
    {.name = "can", .description = "Bot permissions here", .options = can_opts, .handler = can_cmd},
    {.name = "setting",
     .description = "Read or set a setting",
     .options = setting_opts,
     .handler = setting_cmd},
    {0},
};

static const souk_command_t commands[] = {
    {.name = "testhooks",
     .description = "Test builds only: drive the module-facing APIs",
     .category = "Test",
     .flags = SOUK_CMD_OWNER_ONLY | SOUK_CMD_HIDDEN | SOUK_CMD_GUILD_ONLY,
     .subcommands = subs},
    {0},
};

static const souk_cmd_component_t components[] = {{ACK_PREFIX, ack_component}, {NULL, NULL}};

static const char *const modes[] = {"quiet", "loud", NULL};

static const souk_setting_t settings[] = {
    {.key = "testhooks.channel",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_CHANNEL,
     .label = "Test channel",
     .description = "A channel, for the settings tests.",
     .step = "channels"},
    {.key = "testhooks.count",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_INT,
     .def = "3",
     .min = 1,
     .max = 10,
     .label = "Test count",
     .description = "A bounded integer."},
    {.key = "testhooks.prefix",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_STRING,
     .config_key = "commands.prefix",
     .max = 8,
     .label = "Test prefix",
     .description = "Defaults to the bot-wide commands.prefix."},
    {.key = "testhooks.mode",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_ENUM,
     .def = "quiet",
     .choices = modes,
     .label = "Test mode",
     .description = "An enum."},
    {.key = "testhooks.tz",
     .scope = SOUK_SETTING_USER,
     .type = SOUK_SETTING_TIMEZONE,
     .def = "UTC",
     .label = "Time zone",
     .description = "A user's time zone.",
     .step = "profile"},
    {0},
};

const souk_module_t souk_testhooks_module = {
    .abi = SOUK_MODULE_ABI,
    .name = "testhooks",
    .commands = commands,
    .components = components,
    .settings = settings,
};
