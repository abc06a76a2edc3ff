/* /stats: show everything the stats module does for a server, and set it
 * up (counter channels and their names, the heartbeat, the daily summary),
 * plus /stats usage, the server's own command usage.  Settings are the
 * same ones /setup server and /settings change. */
#include "souk/buf.h"
#include "souk/discord.h"
#include "souk/err.h"
#include "souk/loop.h"
#include "souk/settings.h"
#include "souk/usage.h"
#include "stats_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Set key for the guild of ctx; on refusal, reply and return false. */
static bool set(souk_cmd_ctx_t *ctx, const char *key, const char *text) {
  char err[200] = "";
  int rc = souk_setting_set(ctx->guild_id, key, text, ctx->user_id, err, sizeof err);
  if (rc == 0) return true;
  souk_cmd_errorf(ctx, "Cannot set %s: %s", key, err[0] ? err : souk_strerror(rc));
  return false;
}

static void id_text(uint64_t id, char *out, size_t cap) { snprintf(out, cap, "%" PRIu64, id); }

/* ---- /stats show ------------------------------------------------------------ */

static void show_counter(souk_buf_t *b, stats_guild_t *g, stats_ctr_kind_t k) {
  uint64_t ch = souk_setting_id(g->id, stats_ctr_channel_key(k));
  const char *tmpl = souk_setting_str(g->id, stats_ctr_template_key(k));
  if (!ch) {
    souk_buf_printf(b, "• %s: no channel\n", stats_ctr_name(k));
    return;
  }
  char val[32];
  int64_t v = stats_ctr_value(g, k);
  if (v >= 0)
    stats_fmt_count(v, val, sizeof val);
  else
    snprintf(val, sizeof val, "not known yet");
  souk_buf_printf(b, "• %s: <#%" PRIu64 "> `%s` = %s", stats_ctr_name(k), ch, tmpl, val);
  const stats_ctr_t *c = g->ctr[k];
  if (c && c->channel == ch && c->loaded) {
    uint64_t now = souk_sched_unix_ms();
    uint64_t wait = stats_rename_wait(&c->win, now, (uint64_t)stats_conf.rename_margin_ms);
    if (c->shown) souk_buf_printf(b, "; shown as `%s`", c->shown);
    if (wait) souk_buf_printf(b, "; next rename allowed in %" PRIu64 " s", (wait + 999) / 1000);
    if (c->error) souk_buf_printf(b, "; last refusal: %s", c->error);
  }
  souk_buf_puts(b, "\n");
}

static void bans_note(souk_buf_t *b, stats_guild_t *g) {
  if (!souk_setting_id(g->id, "stats.bans_channel")) return;
  if (g->bans_state == STATS_BANS_NO_PERM || !souk_discord_bot_can(g->id, 0, SOUK_PERM_BAN_MEMBERS))
    souk_buf_puts(b, "⚠ The ban counter needs the **Ban Members** permission: without it souk "
                     "does not ask Discord for bans at all. Give it to the bot's role.\n");
}

static void cmd_show(souk_cmd_ctx_t *ctx) {
  stats_guild_t *g = stats_guild(ctx->guild_id);
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_puts(&b, "**Server stats**\n**Counter channels** (renamed only when the value "
                    "changes, at most 2 times per 10 minutes each)\n");
  for (int k = 0; k < STATS_NCTR; k++)
    show_counter(&b, g, (stats_ctr_kind_t)k);
  bans_note(&b, g);
  char poll[96] = "";
  if (g->poll_started)
    snprintf(poll, sizeof poll, "; polled every %" PRIu64 " s now (%" PRId64 "-%" PRId64 " s)",
             g->poll.interval_ms / 1000, stats_conf.poll_min_ms / 1000,
             stats_conf.poll_max_ms / 1000);
  souk_buf_printf(&b, "Sources: members %s, online with_counts, bans %s%s\n",
                  stats_members_events() ? "from member events" : "with_counts",
                  stats_ban_events() ? "paged once, then from ban events" : "paged", poll);
  uint64_t hb = souk_setting_id(g->id, "stats.heartbeat_channel");
  if (hb)
    souk_buf_printf(&b, "**Heartbeat**: <#%" PRIu64 ">, edited every %" PRId64 " s%s\n", hb,
                    stats_conf.heartbeat_period_ms / 1000,
                    g->hb_message && g->hb_channel == hb ? "" : " (not posted yet)");
  else
    souk_buf_puts(&b, "**Heartbeat**: off\n");
  uint64_t sc = souk_setting_id(g->id, "stats.summary_channel");
  if (sc) {
    const char *tz = souk_setting_str(g->id, "stats.timezone");
    uint64_t next = stats_summary_next(g);
    souk_buf_printf(&b, "**Daily summary**: <#%" PRIu64 "> at %02" PRId64 ":00 %s", sc,
                    souk_setting_int(g->id, "stats.summary_hour"), tz[0] ? tz : "UTC");
    if (next) souk_buf_printf(&b, ", next <t:%" PRIu64 ":R>", next / 1000);
    char m[32];
    stats_fmt_count(g->messages, m, sizeof m);
    souk_buf_printf(&b, "; %s messages seen since the last one\n", m);
  } else {
    souk_buf_puts(&b, "**Daily summary**: off\n");
  }
  if (stats_conf.activities.n)
    souk_buf_printf(&b, "**Presence**: %zu activities in turn, every %" PRId64 " s\n",
                    stats_conf.activities.n, stats_conf.presence_period_ms / 1000);
  souk_buf_puts(&b, "Change them with `/stats channels`, `/stats heartbeat`, `/stats summary` "
                    "or `/setup server`; `/stats usage` shows command usage.");
  souk_msg_t m = {.content = b.data};
  souk_cmd_reply(ctx, &m);
  souk_buf_free(&b);
}

/* ---- /stats channels ----------------------------------------------------------- */

static void cmd_channels(souk_cmd_ctx_t *ctx) {
  static const char *const chan_opts[STATS_NCTR] = {"members", "online", "bans"};
  static const char *const tmpl_opts[STATS_NCTR] = {"members_template", "online_template",
                                                    "bans_template"};
  const char *clear = souk_cmd_arg_str(ctx->args, "clear", NULL);
  bool any = false;
  char err[200], text[32];
  /* Check every template before changing anything. */
  for (int k = 0; k < STATS_NCTR; k++) {
    const char *t = souk_cmd_arg_str(ctx->args, tmpl_opts[k], NULL);
    if (t && stats_template_check(t, err, sizeof err)) {
      souk_cmd_errorf(ctx, "%s", err);
      return;
    }
  }
  stats_guild_t *g = stats_guild(ctx->guild_id);
  for (int k = 0; k < STATS_NCTR; k++) {
    bool wipe = clear && (strcmp(clear, "all") == 0 || strcmp(clear, chan_opts[k]) == 0);
    uint64_t ch = souk_cmd_arg_id(ctx->args, chan_opts[k]);
    const char *t = souk_cmd_arg_str(ctx->args, tmpl_opts[k], NULL);
    if (wipe) {
      souk_setting_reset(ctx->guild_id, stats_ctr_channel_key((stats_ctr_kind_t)k), ctx->user_id);
      any = true;
    }
    if (ch) {
      id_text(ch, text, sizeof text);
      if (!set(ctx, stats_ctr_channel_key((stats_ctr_kind_t)k), text)) return;
      any = true;
    }
    if (t) {
      if (!set(ctx, stats_ctr_template_key((stats_ctr_kind_t)k), t)) return;
      any = true;
    }
  }
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_puts(&b, any ? "Saved.\n" : "Nothing changed; the counters are:\n");
  for (int k = 0; k < STATS_NCTR; k++) {
    uint64_t ch = souk_setting_id(g->id, stats_ctr_channel_key((stats_ctr_kind_t)k));
    if (ch && !souk_discord_bot_can(g->id, ch, SOUK_PERM_MANAGE_CHANNELS))
      souk_buf_printf(&b, "⚠ I need Manage Channels in <#%" PRIu64 "> to rename it.\n", ch);
    show_counter(&b, g, (stats_ctr_kind_t)k);
  }
  bans_note(&b, g);
  souk_msg_t m = {.content = b.data};
  souk_cmd_reply(ctx, &m);
  souk_buf_free(&b);
}

/* ---- /stats heartbeat, /stats summary ------------------------------------------- */

static void cmd_heartbeat(souk_cmd_ctx_t *ctx) {
  if (souk_cmd_arg_bool(ctx->args, "off", false)) {
    souk_setting_reset(ctx->guild_id, "stats.heartbeat_channel", ctx->user_id);
    souk_cmd_replyf(ctx, "The heartbeat is off.");
    return;
  }
  uint64_t ch = souk_cmd_arg_id(ctx->args, "channel");
  char text[32];
  id_text(ch ? ch : ctx->channel_id, text, sizeof text);
  if (!set(ctx, "stats.heartbeat_channel", text)) return;
  stats_guild(ctx->guild_id);
  souk_cmd_replyf(ctx,
                  "A heartbeat message in <#%s> will show uptime, gateway latency, memory, "
                  "health and the last errors, edited every %" PRId64
                  " s (a new one is posted if it is deleted).",
                  text, stats_conf.heartbeat_period_ms / 1000);
}

static void cmd_summary(souk_cmd_ctx_t *ctx) {
  stats_guild_t *g = stats_guild(ctx->guild_id);
  if (souk_cmd_arg_bool(ctx->args, "off", false)) {
    souk_setting_reset(ctx->guild_id, "stats.summary_channel", ctx->user_id);
    souk_cmd_replyf(ctx, "The daily summary is off.");
    return;
  }
  char text[32];
  uint64_t ch = souk_cmd_arg_id(ctx->args, "channel");
  if (ch || !souk_setting_id(ctx->guild_id, "stats.summary_channel")) {
    id_text(ch ? ch : ctx->channel_id, text, sizeof text);
    if (!set(ctx, "stats.summary_channel", text)) return;
  }
  if (souk_cmd_arg(ctx->args, "hour")) {
    snprintf(text, sizeof text, "%" PRId64, souk_cmd_arg_int(ctx->args, "hour", 9));
    if (!set(ctx, "stats.summary_hour", text)) return;
  }
  const char *tz = souk_cmd_arg_str(ctx->args, "timezone", NULL);
  if (tz && !set(ctx, "stats.timezone", tz)) return;
  if (souk_cmd_arg_bool(ctx->args, "now", false)) {
    int rc = stats_summary_now(g);
    if (rc) {
      souk_cmd_errorf(ctx, "Cannot send the summary now: %s", souk_strerror(rc));
      return;
    }
  }
  const char *zone = souk_setting_str(ctx->guild_id, "stats.timezone");
  souk_cmd_replyf(ctx, "The daily summary goes to <#%" PRIu64 "> at %02" PRId64 ":00 %s.",
                  souk_setting_id(ctx->guild_id, "stats.summary_channel"),
                  souk_setting_int(ctx->guild_id, "stats.summary_hour"), zone[0] ? zone : "UTC");
}

/* ---- /stats usage ------------------------------------------------------------------ */

static void usage_cb(void *ud, int status, const souk_usage_guild_t *u) {
  souk_cmd_ctx_t *ctx = ud;
  if (status || !u) {
    souk_cmd_errorf(ctx, "Usage is not available: %s", souk_strerror(status));
    return;
  }
  int64_t days = souk_cmd_arg_int(ctx->args, "days", 7);
  souk_buf_t b;
  souk_buf_init(&b);
  char a[32], c[32];
  stats_fmt_count((int64_t)u->calls, a, sizeof a);
  stats_fmt_count((int64_t)u->users, c, sizeof c);
  souk_buf_printf(&b, "**Command usage in this server, last %" PRId64 " day%s**\n", days,
                  days == 1 ? "" : "s");
  souk_buf_printf(&b, "%s commands by %s active members, %" PRIu64 " failed\n", a, c, u->errors);
  souk_buf_puts(&b, "**Top commands**\n");
  if (u->ntop == 0) souk_buf_puts(&b, "none yet\n");
  for (size_t i = 0; i < u->ntop; i++)
    souk_buf_printf(&b, "%zu. `/%s` × %" PRIu64 "\n", i + 1, u->top[i].command, u->top[i].calls);
  souk_buf_puts(&b, "**Per day** (UTC)\n```\n");
  if (u->ndays == 0) souk_buf_puts(&b, "no commands\n");
  for (size_t i = 0; i < u->ndays; i++) {
    int y, mo, d;
    souk_civil_from_days((int64_t)(u->days[i].day_ms / 86400000), &y, &mo, &d);
    souk_buf_printf(&b, "%04d-%02d-%02d  %6" PRIu64 " commands  %4" PRIu64 " members\n", y, mo, d,
                    u->days[i].calls, u->days[i].users);
  }
  souk_buf_puts(&b, "```");
  souk_msg_t m = {.content = b.data};
  souk_cmd_reply(ctx, &m);
  souk_buf_free(&b);
}

static void cmd_usage(souk_cmd_ctx_t *ctx) {
  int64_t days = souk_cmd_arg_int(ctx->args, "days", 7);
  uint64_t now = souk_unix_ms();
  uint64_t since = now - (uint64_t)(days - 1) * 86400000u;
  since -= since % 86400000u; /* from the start of the first UTC day */
  int rc = souk_usage_guild(ctx->guild_id, since, usage_cb, ctx);
  if (rc) souk_cmd_errorf(ctx, "Usage is not recorded here (%s).", souk_strerror(rc));
}

/* ---- the table ----------------------------------------------------------------- */

static const souk_cmd_choice_t clear_choices[] = {
    {"members", "members"}, {"online", "online"}, {"bans", "bans"}, {"all", "all"}, {NULL, NULL}};

static const souk_cmd_option_t opt_channels[] = {
    {.name = "members",
     .description = "Channel showing the member count",
     .type = SOUK_OPT_CHANNEL},
    {.name = "online", .description = "Channel showing the online count", .type = SOUK_OPT_CHANNEL},
    {.name = "bans",
     .description = "Channel showing the ban count (needs Ban Members)",
     .type = SOUK_OPT_CHANNEL},
    {.name = "members_template",
     .description = "Its name, e.g. Members: {members}",
     .type = SOUK_OPT_STRING,
     .min_length = 1,
     .max_length = 100},
    {.name = "online_template",
     .description = "Its name, e.g. Online: {online}",
     .type = SOUK_OPT_STRING,
     .min_length = 1,
     .max_length = 100},
    {.name = "bans_template",
     .description = "Its name, e.g. Bans: {bans}",
     .type = SOUK_OPT_STRING,
     .min_length = 1,
     .max_length = 100},
    {.name = "clear",
     .description = "Stop a counter",
     .type = SOUK_OPT_STRING,
     .choices = clear_choices},
    {0},
};
static const souk_cmd_option_t opt_heartbeat[] = {
    {.name = "channel", .description = "Where (default: here)", .type = SOUK_OPT_CHANNEL},
    {.name = "off", .description = "Turn it off", .type = SOUK_OPT_BOOLEAN},
    {0},
};
static const souk_cmd_option_t opt_summary[] = {
    {.name = "channel", .description = "Where (default: here)", .type = SOUK_OPT_CHANNEL},
    {.name = "hour",
     .description = "Hour of the day, 0-23",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(0, 23)},
    {.name = "timezone",
     .description = "The server's time zone, e.g. Europe/Paris",
     .type = SOUK_OPT_STRING,
     .min_length = 1,
     .max_length = 64},
    {.name = "now", .description = "Also send one now", .type = SOUK_OPT_BOOLEAN},
    {.name = "off", .description = "Turn it off", .type = SOUK_OPT_BOOLEAN},
    {0},
};
static const souk_cmd_option_t opt_usage[] = {
    {.name = "days",
     .description = "How many days back (default 7)",
     .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(1, 30)},
    {0},
};

static const souk_command_t stats_subs[] = {
    {.name = "show",
     .description = "Counter channels, heartbeat, summary and presence here",
     .handler = cmd_show},
    {.name = "channels",
     .description = "Counter channels (members, online, bans) and their names",
     .options = opt_channels,
     .handler = cmd_channels},
    {.name = "heartbeat",
     .description = "A message kept up to date with the bot's health",
     .options = opt_heartbeat,
     .handler = cmd_heartbeat},
    {.name = "summary",
     .description = "A daily summary at an hour of the server's time zone",
     .options = opt_summary,
     .handler = cmd_summary},
    {.name = "usage",
     .description = "This server's command usage: per day, top commands, members",
     .options = opt_usage,
     .handler = cmd_usage},
    {0},
};

static const char *const stats_usage_ex[] = {
    "/stats show", "/stats channels members:#members members_template:Members: {members}",
    "/stats summary channel:#stats hour:9 timezone:Europe/Paris", "/stats usage days:7", NULL};

const souk_command_t stats_commands[] = {
    {.name = "stats",
     .description = "Server stats: counter channels, heartbeat, daily summary, usage",
     .category = "Server",
     .usage = stats_usage_ex,
     .flags = SOUK_CMD_GUILD_ONLY,
     .permissions = SOUK_PERM_MANAGE_GUILD,
     .subcommands = stats_subs},
    {0},
};
