/* The admin module: commands to see inside a running souk and steer it.
 *
 * /admin ... (the bot's owners only): health report, tasks and restarting
 * one, error statistics and history, circuit breakers and resetting one,
 * memory guard, cache clearing by pattern, a storage janitor run, usage
 * analytics, and a configuration reload.
 *
 * /prefix ... (members with Manage Server): the guild's prefix for message
 * commands, kept as the setting commands.prefix and applied at once;
 * `/prefix set` without a value opens a form. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/cache.h"
#include "souk/cmd.h"
#include "souk/conf.h"
#include "souk/err.h"
#include "souk/health.h"
#include "souk/janitor.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/memguard.h"
#include "souk/module.h"
#include "souk/recovery.h"
#include "souk/settings.h"
#include "souk/store.h"
#include "souk/task.h"
#include "souk/usage.h"

#define ADMIN_TEXT_MAX 1900 /* a code block inside Discord's 2000 characters */

/* Reply with text in a code block, cut to fit one message. */
static void reply_block(souk_cmd_ctx_t *ctx, const char *title, const souk_buf_t *b) {
  const char *t = b->data && b->len ? b->data : "(nothing)\n";
  size_t n = strlen(t);
  bool cut = n > ADMIN_TEXT_MAX;
  if (cut) {
    n = ADMIN_TEXT_MAX;
    while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80) n--;
  }
  souk_cmd_replyf(ctx, "**%s**\n```\n%.*s%s```", title, (int)n, t, cut ? "\n... (cut)\n" : "");
}

static void admin_health(souk_cmd_ctx_t *ctx) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk_health_t h = souk_health_check_all(&b);
  char title[64];
  snprintf(title, sizeof title, "Health: %s", souk_health_name(h));
  reply_block(ctx, title, &b);
  souk_buf_free(&b);
}

static void admin_tasks(souk_cmd_ctx_t *ctx) {
  souk_buf_t b;
  souk_buf_init(&b);
  uint64_t now = souk_now_ms();
  for (size_t i = 0, n = souk_task_count(); i < n; i++) {
    souk_task_stats_t t;
    if (souk_task_stats_at(i, &t)) continue;
    long long next = t.next_run_ms > now ? (long long)((t.next_run_ms - now) / 1000) : 0;
    souk_buf_printf(&b,
                    "%-24s runs %-5" PRIu64 " fail %-3" PRIu64 " last %5" PRIu64
                    " ms  next in %llds%s%s\n",
                    t.name, t.runs, t.failures, t.last_duration_ms, next,
                    t.running ? "  RUNNING" : "",
                    t.consecutive_failures ? "  (backing off)" : "");
  }
  if (!b.len) souk_buf_puts(&b, "no background tasks\n");
  reply_block(ctx, "Tasks", &b);
  souk_buf_free(&b);
}

static void admin_task_restart(souk_cmd_ctx_t *ctx) {
  const char *name = souk_cmd_arg_str(ctx->args, "task", "");
  int rc = souk_task_restart(name);
  if (rc == 0) souk_cmd_replyf(ctx, "Task `%s` will run again now.", name);
  else if (rc == SOUK_EBUSY)
    souk_cmd_replyf(ctx, "Task `%s` is running right now; it cannot be interrupted.", name);
  else souk_cmd_replyf(ctx, "There is no task `%s`. See `/admin tasks`.", name);
}

static void complete_tasks(souk_cmd_ctx_t *ctx) {
  const souk_cmd_arg_t *f = souk_cmd_focused(ctx->args);
  const char *typed = f && f->text ? f->text : "";
  souk_cmd_choice_t out[SOUK_CMD_CHOICES_MAX];
  size_t n = 0;
  for (size_t i = 0, k = souk_task_count(); i < k && n < SOUK_CMD_CHOICES_MAX; i++) {
    souk_task_stats_t t;
    if (souk_task_stats_at(i, &t) == 0 && strstr(t.name, typed))
      out[n++] = (souk_cmd_choice_t){t.name, t.name};
  }
  souk_cmd_choices(ctx, out, n);
}

static void admin_errors(souk_cmd_ctx_t *ctx) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk_error_stats_t st;
  souk_error_stats(NULL, &st);
  souk_buf_printf(&b, "total %" PRIu64 " (low %" PRIu64 ", medium %" PRIu64 ", high %" PRIu64
                      ", critical %" PRIu64 "), %.1f per minute\n",
                  st.total, st.by_severity[0], st.by_severity[1], st.by_severity[2],
                  st.by_severity[3], st.per_minute);
  size_t n = souk_error_history_len();
  size_t from = n > 10 ? n - 10 : 0;
  uint64_t now = souk_now_ms();
  for (size_t i = n; i-- > from;) {
    souk_error_entry_t e;
    if (souk_error_history_get(i, &e)) continue;
    souk_buf_printf(&b, "%4llus ago  %-8s %-16s %s: %s\n",
                    (unsigned long long)(now > e.at_ms ? (now - e.at_ms) / 1000 : 0),
                    souk_severity_name(e.severity), e.type, souk_strerror(e.code),
                    e.context ? e.context : "");
  }
  reply_block(ctx, "Errors (newest first)", &b);
  souk_buf_free(&b);
}

static void admin_breakers(souk_cmd_ctx_t *ctx) {
  souk_buf_t b;
  souk_buf_init(&b);
  for (souk_breaker_t *br = souk_breaker_next(NULL); br; br = souk_breaker_next(br)) {
    souk_breaker_stats_t st;
    souk_breaker_stats(br, &st);
    souk_buf_printf(&b, "%-24s %-9s ok %-6" PRIu64 " failed %-6" PRIu64 " rejected %-6" PRIu64
                        " opened %" PRIu64 "\n",
                    souk_breaker_name(br), souk_breaker_state_name(st.state), st.successes,
                    st.failures, st.rejected, st.opened);
  }
  if (!b.len) souk_buf_puts(&b, "no circuit breakers\n");
  reply_block(ctx, "Circuit breakers", &b);
  souk_buf_free(&b);
}

static void admin_breaker_reset(souk_cmd_ctx_t *ctx) {
  const char *name = souk_cmd_arg_str(ctx->args, "name", "");
  souk_breaker_t *br = souk_breaker_find(name);
  if (!br) {
    souk_cmd_replyf(ctx, "There is no breaker `%s`. See `/admin breakers`.", name);
    return;
  }
  souk_breaker_reset(br);
  SOUK_INFO("admin", "breaker %s reset by user %" PRIu64, name, ctx->user_id);
  souk_cmd_replyf(ctx, "Breaker `%s` is closed again.", name);
}

static void admin_memory(souk_cmd_ctx_t *ctx) {
  souk_memguard_stats_t st;
  souk_memguard_stats(&st);
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_printf(&b, "level %s\nrss %.1f MB (soft %.1f MB, hard %.1f MB)\n",
                  souk_memguard_level_name(souk_memguard_level()), (double)st.rss / 1048576.0,
                  (double)st.soft_bytes / 1048576.0, (double)st.hard_bytes / 1048576.0);
  souk_cache_t *c = souk_cache_main();
  if (c) {
    souk_cache_stats_t cs;
    souk_cache_stats(c, &cs);
    souk_buf_printf(&b, "cache %zu entries, %.1f MB; redis %s\n", cs.mem_entries,
                    (double)cs.mem_bytes / 1048576.0,
                    cs.redis_configured ? (cs.redis_up ? "up" : "DOWN") : "not configured");
  }
  reply_block(ctx, "Memory", &b);
  souk_buf_free(&b);
}

typedef struct pending {
  souk_cmd_ctx_t *ctx;
  char what[128];
} pending_t;

static void cache_cleared(void *ud, int status) {
  pending_t *p = ud;
  if (status) souk_cmd_errorf(p->ctx, "Clearing the cache failed: %s.", souk_strerror(status));
  else souk_cmd_replyf(p->ctx, "Cache entries matching `%s` were cleared.", p->what);
  souk_free(p);
}

static void admin_cache_clear(souk_cmd_ctx_t *ctx) {
  souk_cache_t *c = souk_cache_main();
  if (!c) {
    souk_cmd_replyf(ctx, "There is no cache in this process.");
    return;
  }
  pending_t *p = souk_calloc(1, sizeof *p);
  p->ctx = ctx;
  snprintf(p->what, sizeof p->what, "%s", souk_cmd_arg_str(ctx->args, "pattern", "*"));
  int rc = souk_cache_clear(c, p->what, cache_cleared, p);
  if (rc) {
    souk_free(p);
    souk_cmd_errorf(ctx, "Clearing the cache failed: %s.", souk_strerror(rc));
  }
}

static void janitor_done(const souk_janitor_report_t *rep, void *ud) {
  souk_cmd_ctx_t *ctx = ud;
  souk_buf_t b;
  souk_buf_init(&b);
  souk_janitor_report_text(rep, &b);
  reply_block(ctx, "Storage janitor", &b);
  souk_buf_free(&b);
}

static void admin_janitor(souk_cmd_ctx_t *ctx) {
  int rc = souk_janitor_run(janitor_done, ctx);
  if (rc == SOUK_EBUSY) souk_cmd_replyf(ctx, "The janitor is already running.");
  else if (rc) souk_cmd_errorf(ctx, "The janitor cannot run: %s.", souk_strerror(rc));
}

static void usage_done(void *ud, int status, const char *text) {
  souk_cmd_ctx_t *ctx = ud;
  if (status) {
    souk_cmd_errorf(ctx, "The usage report failed: %s.", souk_strerror(status));
    return;
  }
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_puts(&b, text);
  reply_block(ctx, "Command usage", &b);
  souk_buf_free(&b);
}

static void admin_usage(souk_cmd_ctx_t *ctx) {
  int64_t days = souk_cmd_arg_int(ctx->args, "days", 1);
  uint64_t now = souk_unix_ms();
  uint64_t since = now - (uint64_t)days * 86400000u;
  int rc = souk_usage_report(since, 15, usage_done, ctx);
  if (rc) souk_cmd_errorf(ctx, "Usage analytics need the store (%s).", souk_strerror(rc));
}

static void admin_reload(souk_cmd_ctx_t *ctx) {
  souk_buf_t b;
  souk_buf_init(&b);
  int rc = souk_conf_reload(&b);
  SOUK_INFO("admin", "configuration reload requested by user %" PRIu64 ": %s", ctx->user_id,
            rc ? souk_strerror(rc) : "ok");
  reply_block(ctx, rc ? "Configuration NOT reloaded" : "Configuration", &b);
  souk_buf_free(&b);
}

/* ---- /prefix ------------------------------------------------------------------ */

#define PREFIX_MODAL "admin:prefix"

/* The prefix is the setting commands.prefix: in effect here at once, and
 * answered once the store has it (or could not keep it). */
typedef struct prefix_job {
  souk_cmd_ctx_t *ctx;
  uint64_t guild;
} prefix_job_t;

static void prefix_saved(void *ud, int status) {
  prefix_job_t *j = ud;
  const char *p = souk_cmd_prefix(j->guild);
  souk_setting_source_t src = SOUK_SETTING_DEFAULT;
  char v[SOUK_CMD_PREFIX_MAX * 4 + 1];
  souk_setting_get(j->guild, "commands.prefix", v, sizeof v, &src);
  if (status)
    souk_cmd_errorf(j->ctx, "The prefix could not be saved (%s); nothing changed.",
                    souk_strerror(status));
  else if (src == SOUK_SETTING_SET)
    souk_cmd_replyf(j->ctx, "Message commands now start with `%s` here, e.g. `%sping`.", p, p);
  else
    souk_cmd_replyf(j->ctx, "The prefix is back to the default, `%s`.", p);
  souk_free(j);
}

static void prefix_save(souk_cmd_ctx_t *ctx, const char *value) {
  char err[160];
  int rc = value && value[0]
               ? souk_setting_set(ctx->guild_id, "commands.prefix", value, ctx->user_id, err,
                                  sizeof err)
               : souk_setting_reset(ctx->guild_id, "commands.prefix", ctx->user_id);
  if (rc == SOUK_EINVAL) {
    souk_cmd_replyf(ctx, "A prefix is 1 to %d characters without spaces or backticks.",
                    SOUK_CMD_PREFIX_MAX);
    return;
  }
  prefix_job_t *j = souk_calloc(1, sizeof *j);
  j->ctx = ctx;
  j->guild = ctx->guild_id;
  if (rc == 0) rc = souk_setting_flush(ctx->guild_id, "commands.prefix", prefix_saved, j);
  if (rc) {
    souk_free(j);
    souk_cmd_errorf(ctx, "The prefix cannot be changed now (%s).", souk_strerror(rc));
  }
}

static void prefix_show(souk_cmd_ctx_t *ctx) {
  souk_cmd_replyf(ctx, "Message commands start with `%s` here (or a mention of the bot).",
                  souk_cmd_prefix(ctx->guild_id));
}

static void prefix_set(souk_cmd_ctx_t *ctx) {
  const char *v = souk_cmd_arg_str(ctx->args, "value", NULL);
  if (v) {
    prefix_save(ctx, v);
    return;
  }
  static const souk_modal_field_t fields[] = {
      {.custom_id = "value",
       .label = "New prefix",
       .required = true,
       .min_length = 1,
       .max_length = SOUK_CMD_PREFIX_MAX,
       .placeholder = "!"},
  };
  souk_modal_t m = {.custom_id = PREFIX_MODAL,
                    .title = "Command prefix",
                    .fields = fields,
                    .nfields = 1};
  souk_cmd_modal(ctx, &m);
}

static void prefix_modal(souk_cmd_ctx_t *ctx) {
  if (!(ctx->permissions & (SOUK_PERM_MANAGE_GUILD | SOUK_PERM_ADMINISTRATOR)) ||
      ctx->guild_id == 0) {
    souk_cmd_replyf(ctx, "You need the Manage Server permission to change the prefix.");
    return;
  }
  prefix_save(ctx, souk_cmd_field_value(ctx, "value"));
}

static void prefix_reset(souk_cmd_ctx_t *ctx) { prefix_save(ctx, ""); }

/* ---- tables ---------------------------------------------------------------- */

static const souk_cmd_option_t opt_task[] = {
    {.name = "task", .description = "Task name", .type = SOUK_OPT_STRING, .required = true,
     .autocomplete = true, .max_length = 64},
    {0},
};
static const souk_cmd_option_t opt_breaker[] = {
    {.name = "name", .description = "Breaker name", .type = SOUK_OPT_STRING, .required = true,
     .max_length = 64},
    {0},
};
static const souk_cmd_option_t opt_pattern[] = {
    {.name = "pattern", .description = "Glob of keys, e.g. market:* (default: everything)",
     .type = SOUK_OPT_STRING, .max_length = 128},
    {0},
};
static const souk_cmd_option_t opt_days[] = {
    {.name = "days", .description = "How many days back (default 1)", .type = SOUK_OPT_INTEGER,
     SOUK_OPT_INT_RANGE(1, 30)},
    {0},
};

static const souk_command_t admin_subs[] = {
    {.name = "health", .description = "Health of every component", .handler = admin_health},
    {.name = "tasks", .description = "Background tasks: runs, failures, next run",
     .handler = admin_tasks},
    {.name = "task-restart", .description = "Run a background task again now, clearing its backoff",
     .options = opt_task, .handler = admin_task_restart, .autocomplete = complete_tasks},
    {.name = "errors", .description = "Error statistics and the latest errors",
     .handler = admin_errors},
    {.name = "breakers", .description = "Circuit breakers and their state",
     .handler = admin_breakers},
    {.name = "breaker-reset", .description = "Close a circuit breaker", .options = opt_breaker,
     .handler = admin_breaker_reset},
    {.name = "memory", .description = "Memory use, limits and the cache",
     .handler = admin_memory},
    {.name = "cache-clear", .description = "Clear cache entries by pattern", .options = opt_pattern,
     .handler = admin_cache_clear},
    {.name = "janitor", .description = "Run the storage janitor now and show what it freed",
     .handler = admin_janitor},
    {.name = "usage", .description = "Command usage: calls, errors and latency",
     .options = opt_days, .handler = admin_usage},
    {.name = "reload", .description = "Reload the configuration (like SIGHUP)",
     .handler = admin_reload},
    {0},
};

static const souk_cmd_option_t opt_prefix[] = {
    {.name = "value", .description = "The new prefix (leave empty to open a form)",
     .type = SOUK_OPT_STRING, .min_length = 1, .max_length = SOUK_CMD_PREFIX_MAX},
    {0},
};

static const souk_command_t prefix_subs[] = {
    {.name = "show", .description = "Show this server's prefix for message commands",
     .handler = prefix_show},
    {.name = "set", .description = "Set this server's prefix for message commands",
     .options = opt_prefix, .permissions = SOUK_PERM_MANAGE_GUILD, .handler = prefix_set},
    {.name = "reset", .description = "Go back to the default prefix",
     .permissions = SOUK_PERM_MANAGE_GUILD, .handler = prefix_reset},
    {0},
};

static const char *const admin_usage_ex[] = {"/admin health", "/admin tasks",
                                             "/admin task-restart task:usage.flush",
                                             "/admin usage days:7", NULL};
static const char *const prefix_usage_ex[] = {"/prefix show", "/prefix set value:?",
                                              "/prefix reset", NULL};

static const souk_command_t admin_commands[] = {
    {.name = "admin",
     .description = "Look inside souk and steer it (bot owners)",
     .category = "Admin",
     .usage = admin_usage_ex,
     .flags = SOUK_CMD_OWNER_ONLY | SOUK_CMD_EPHEMERAL,
     .subcommands = admin_subs},
    {.name = "prefix",
     .description = "This server's prefix for message commands",
     .category = "Server",
     .usage = prefix_usage_ex,
     .flags = SOUK_CMD_GUILD_ONLY,
     .subcommands = prefix_subs},
    {0},
};

static const souk_cmd_component_t admin_components[] = {
    {PREFIX_MODAL, prefix_modal},
    {0},
};

const souk_module_t souk_admin_module = {
    .abi = SOUK_MODULE_ABI,
    .name = "admin",
    .commands = admin_commands,
    .components = admin_components,
};
