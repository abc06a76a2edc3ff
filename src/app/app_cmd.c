/* Commands wired into the process: registering the modules' tables (and
 * every settings table, with the per-guild prefix the core owns), and
 * counting every finished invocation in /metrics and the usage
 * analytics. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/modreg.h"
#include "core/cmdrun.h"
#include "core/core.h"
#include "ops/settings.h"
#include "ops/usage.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/metrics.h"
#include "souk/recovery.h"
#include "souk/settings.h"
#include "souk/store.h"
#include "souk/task.h"

static const char *const outcome_names[] = {"ok", "error", "refused", "late"};

static void observe(const char *path, uint64_t user, uint64_t guild, souk__cmd_outcome_t oc,
                    uint64_t latency_ms) {
  souk_metric_t *m = souk_metric_find("souk_commands_total");
  if (m) souk_counter_inc(souk_metric_series(m, SOUK_LV(path, outcome_names[oc])));
  m = souk_metric_find("souk_command_latency_seconds");
  if (m) souk_histogram_observe(souk_metric_series(m, SOUK_LV(path)), (double)latency_ms / 1e3);
  souk__usage_record(path, user, guild, oc != SOUK__CMD_OK && oc != SOUK__CMD_REFUSED,
                     oc == SOUK__CMD_REFUSED, latency_ms, souk_unix_ms());
  if (oc == SOUK__CMD_LATE)
    souk_error_record("command.late", SOUK_SEV_MEDIUM, SOUK_ETIMEDOUT, NULL,
                      "%s was answered for its handler after %" PRIu64 " ms", path, latency_ms);
}

static void collect(void *ud) {
  souk_gauge_set_named("souk_commands_running", NULL, (double)souk__cmd_running());
}

/* ---- the per-guild prefix, a setting ---------------------------------------- */

/* Prefixes also may not hold a backtick: it would break the inline code
 * souk shows them in.  The setting counts characters, but message
 * commands keep at most SOUK_CMD_PREFIX_MAX bytes: a longer prefix would
 * be stored and shown while commands still answered to the old one. */
static bool prefix_ok(const char *v, char *why, size_t whycap) {
  if (strlen(v) > SOUK_CMD_PREFIX_MAX) {
    snprintf(why, whycap,
             "a prefix is at most %d bytes (a letter of English is one, most other characters "
             "two to four)",
             SOUK_CMD_PREFIX_MAX);
    return false;
  }
  if (!strpbrk(v, " `")) return true;
  snprintf(why, whycap, "a prefix has no spaces or backticks");
  return false;
}

static const souk_setting_t cmd_settings[] = {
    {.key = "commands.prefix",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_STRING,
     .min = 1,
     .max = SOUK_CMD_PREFIX_MAX,
     .config_key = "commands.prefix",
     .label = "Command prefix",
     .description = "What starts a message command in this server (a mention of the bot works "
                    "too).",
     .step = "server",
     .check = prefix_ok},
    {0},
};

/* The settings of the core's own commands, registered as if a module. */
static const souk_module_t cmd_settings_owner = {
    .abi = SOUK_MODULE_ABI, .name = "commands", .settings = cmd_settings};

/* The prefixes message commands match are in the runner's table, searched
 * per message: the setting keeps it current, here and when another
 * process changed it (the settings registry re-reads the store). */
static void prefix_changed(uint64_t guild, const souk_setting_t *s, void *ud) {
  char v[SOUK_CMD_PREFIX_MAX * 4 + 1];
  souk_setting_source_t src;
  souk_setting_get(guild, "commands.prefix", v, sizeof v, &src);
  if (souk_cmd_set_prefix(guild, src == SOUK_SETTING_SET ? v : NULL) != 0)
    SOUK_WARN("core", "guild %" PRIu64 ": prefix \"%s\" cannot be used", guild, v);
}

int souk__app_settings_register(void) {
  size_t n = souk__modreg_count();
  const souk_module_t **all = souk_calloc(n + 2, sizeof *all);
  all[0] = &cmd_settings_owner;
  for (size_t i = 0; i < n; i++) all[i + 1] = souk__modreg_at(i);
  int rc = souk__settings_register(all);
  souk_free(all);
  if (rc == 0) rc = souk_setting_watch("commands.prefix", prefix_changed, NULL);
  return rc;
}

int souk__app_cmd_init(void) {
  int rc = souk__modreg_commands();
  if (rc) return rc;
  souk__cmd_set_observer(observe);
  return 0;
}

void souk__app_cmd_metrics_init(void) {
  souk_counter_new("souk_commands_total", "Command invocations finished, by outcome.",
                   "command,outcome");
  static const double bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
  souk_histogram_new("souk_command_latency_seconds", "Time from invocation to answer.", "command",
                     bounds, sizeof bounds / sizeof *bounds);
  souk_gauge_new("souk_commands_running", "Invocations whose handler has not finished.", NULL);
  souk_metrics_add_collector(collect, NULL);
}

void souk__app_cmd_shutdown(void) {
  souk__cmd_prefixes_clear();
  souk__cmd_release_loop();
  souk__cmd_set_observer(NULL);
  souk__cmd_clear();
}
