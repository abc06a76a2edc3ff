/* souk's entry point: command line, configuration, and the process
 * lifecycle (start, signals, graceful stop). */
#include "app/app.h"
#include "app/cli.h"
#include "app/modreg.h"
#include "cache/cacheconf.h"
#include "core/cmdrun.h"
#include "core/config.h"
#include "core/core.h"
#include "core/log.h"
#include "core/metrics.h"
#include "discord/bot.h"
#include "discord/commands.h"
#include "discord/dapi.h"
#include "discord/dconf.h"
#include "discord/dmsg.h"
#include "discord/dops.h"
#include "discord/interactions.h"
#include "net/httpd.h"
#include "ops/ops.h"
#include "ops/cluster.h"
#include "ops/opsconf.h"
#include "ops/settings.h"
#include "ops/task.h"
#include "ops/usage.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/cache.h"
#include "souk/err.h"
#include "souk/health.h"
#include "souk/http.h"
#include "souk/httpd.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/metrics.h"
#include "souk/recovery.h"
#include "souk/settings.h"
#include "store/storeconf.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#ifndef SOUK_VERSION
#define SOUK_VERSION "0.0.0"
#endif

/* Exit statuses, documented in the README (Troubleshooting). */
enum {
  EXIT_OK = 0,
  EXIT_RUNTIME = 1, /* an unexpected runtime failure */
  EXIT_CONFIG = 2,  /* the configuration is invalid */
  EXIT_REFUSED = 3, /* Discord refused the session: do not restart blindly */
};

typedef struct opts {
  const char *cmd;
  const char *config;
  bool config_explicit;
  bool online;
  bool http;      /* console --http */
  const char *to; /* db copy --to URL */
  char *args[8];  /* positional arguments after the command */
  int nargs;
} opts_t;

static struct {
  souk_conf_section_t *secs;
  size_t nsecs;
  const char *config_path;
  bool config_explicit;
  uv_signal_t sig_int, sig_term, sig_hup;
  bool signals_on;
  bool stopping;
  int exit_code;
  bool console;
  bool console_http; /* `souk console --http`: the HTTP server and the modules' pages too */
  const souk_module_t *oneshot; /* `souk <module> ...` with services (cli_started) */
  bool log_to_file; /* run and console honour core.log.file */
  bool told_log;    /* the console said where its log goes */
} g;

static void usage(FILE *f) {
  fprintf(f,
          "usage: souk [COMMAND] [-c PATH]\n"
          "\n"
          "commands:\n"
          "  run            connect to Discord and serve (default)\n"
          "  console        a local shell: type commands, see replies; no Discord account needed\n"
          "                 --http also serves the web pages (the Market Sim's dashboard)\n"
          "                 on http.bind:http.port\n"
          "  check-config   validate the configuration and exit (non-zero on problems)\n"
          "                 --online also checks the token against Discord\n"
          "  config-keys    print every configuration key as a Markdown table\n"
          "  commands       print the slash commands souk registers, as JSON\n"
          "  db migrate | check | backup PATH | vacuum | copy --to URL |\n"
          "     forget-user ID | purge-guild ID\n"
          "                 maintain the store (SQLite by default, or PostgreSQL)\n"
          "  settings guild|user ID\n"
          "                 print a guild's (or a user's) settings and where each comes from\n"
          "  skyblock replay DIR [OUT]\n"
          "                 rebuild SkyBlock's hourly summaries from a spool or saved pages\n"
          "  market daily-update\n"
          "                 the Market Sim's daily snapshot now, once a day (for cron)\n"
          "  version        print the version\n"
          "\n"
          "options:\n"
          "  -c, --config PATH   YAML configuration (default ./souk.yaml if present)\n"
          "  -h, --help          this text\n");
}

/* The module whose name is cmd, when it has subcommands of its own. */
static const souk_module_t *module_cli(const char *cmd) {
  for (size_t i = 0; souk__modules[i]; i++)
    if ((souk__modules[i]->cli || souk__modules[i]->cli_started) &&
        !strcmp(souk__modules[i]->name, cmd))
      return souk__modules[i];
  return NULL;
}

static int parse_args(int argc, char **argv, opts_t *o) {
  static const struct option lopts[] = {{"config", required_argument, NULL, 'c'},
                                        {"online", no_argument, NULL, 'o'},
                                        {"http", no_argument, NULL, 'H'},
                                        {"to", required_argument, NULL, 't'},
                                        {"help", no_argument, NULL, 'h'},
                                        {"version", no_argument, NULL, 'V'},
                                        {NULL, 0, NULL, 0}};
  memset(o, 0, sizeof *o);
  o->cmd = "run";
  o->config = "souk.yaml";
  int c;
  /* GNU getopt permutes, so options may come before or after the command:
   * `souk -c x.yaml run` and `souk check-config -c x.yaml --online`. */
  while ((c = getopt_long(argc, argv, "c:hV", lopts, NULL)) != -1) {
    switch (c) {
    case 'c':
      o->config = optarg;
      o->config_explicit = true;
      break;
    case 'o':
      o->online = true;
      break;
    case 'H':
      o->http = true;
      break;
    case 't':
      o->to = optarg;
      break;
    case 'h':
      usage(stdout);
      exit(0);
    case 'V':
      printf("souk %s\n", SOUK_VERSION);
      exit(0);
    default:
      usage(stderr);
      return SOUK_EINVAL;
    }
  }
  if (optind < argc) o->cmd = argv[optind++];
  while (optind < argc) {
    /* Only `db`, `settings` and modules' subcommands take arguments of
     * their own. */
    if ((strcmp(o->cmd, "db") != 0 && strcmp(o->cmd, "settings") != 0 && !module_cli(o->cmd)) ||
        o->nargs == (int)(sizeof o->args / sizeof *o->args)) {
      fprintf(stderr, "souk: unexpected argument '%s'\n", argv[optind]);
      return SOUK_EINVAL;
    }
    o->args[o->nargs++] = argv[optind++];
  }
  /* `souk run` serves HTTP by http.enabled; only the console asks. */
  if (o->http && strcmp(o->cmd, "console") != 0) {
    fprintf(stderr, "souk: --http is an option of `souk console` (`souk run` serves HTTP when "
                    "http.enabled is true)\n");
    return SOUK_EINVAL;
  }
  return 0;
}

/* Gather the config sections: the core's own, then each module's. */
static void sections_build(void) {
  size_t n = 8 + 4 + souk__modreg_count();
  g.secs = souk_calloc(n, sizeof *g.secs);
  g.secs[0] = (souk_conf_section_t){"core", souk__core_conf_keys, &souk__core_conf, NULL};
  g.secs[1] = (souk_conf_section_t){"discord", souk__discord_conf_keys, &souk__discord_conf,
                                    souk__discord_conf_checks};
  g.secs[2] = (souk_conf_section_t){"store", souk__store_conf_keys, &souk__store_conf,
                                    souk__store_conf_checks};
  g.secs[3] = (souk_conf_section_t){"http", souk__httpd_conf_keys, &souk__httpd_conf,
                                    souk__httpd_conf_checks};
  g.secs[4] = (souk_conf_section_t){"cache", souk__cache_conf_keys, &souk__cache_conf,
                                    souk__cache_conf_checks};
  g.secs[5] = (souk_conf_section_t){"commands", souk__cmd_conf_keys, &souk__cmd_conf, NULL};
  g.secs[6] = (souk_conf_section_t){"usage", souk__usage_conf_keys, &souk__usage_conf, NULL};
  g.nsecs = 7;
  for (size_t i = 0; i < 4; i++) g.secs[g.nsecs++] = souk__ops_conf_sections[i];
  g.secs[g.nsecs++] =
      (souk_conf_section_t){"cluster", souk__cluster_conf_keys, &souk__cluster_conf, NULL};
  souk__modreg_sections(g.secs, &g.nsecs);
}

static int ensure_data_dir(void);

/* core.log.file for run and the console.  The console's replies share the
 * terminal with the log, so it logs to <data_dir>/console.log by default,
 * keeping only warnings and errors on stderr. */
static void apply_log_file(void) {
  if (!g.log_to_file) return;
  const char *path = souk__core_conf.log_file;
  souk_buf_t def;
  souk_buf_init(&def);
  if (!path && g.console && souk__core_conf.data_dir && ensure_data_dir() == 0) {
    souk_buf_printf(&def, "%s/console.log", souk__core_conf.data_dir);
    path = def.data;
  }
  int rc = souk_log_set_file(path);
  if (rc)
    SOUK_WARN("core", "cannot open the log file %s: %s; logging to stderr only", path,
              strerror(-rc));
  else if (path && g.console && !g.told_log) {
    fprintf(stderr, "souk: the console's log is in %s (warnings and errors show here too)\n",
            path);
    g.told_log = true;
  }
  souk_buf_free(&def);
}

static void apply_log_conf(void) {
  souk_log_set_level((souk_log_level_t)souk__core_conf.log_level);
  souk_log_set_format((souk_log_format_t)souk__core_conf.log_format);
  apply_log_file();
  /* The config registers every secret key's value with the logger as it
   * loads; the token is added again here in case it came from elsewhere. */
  souk_log_add_secret(souk__discord_conf.token);
}

static int ensure_data_dir(void) {
  const char *d = souk__core_conf.data_dir;
  if (!d || !*d) return 0;
  if (mkdir(d, 0750) != 0 && errno != EEXIST) {
    SOUK_ERROR("core", "cannot create data_dir %s: %s", d, strerror(errno));
    return SOUK_EIO;
  }
  return 0;
}

static void signals_off(void) {
  if (!g.signals_on) return;
  g.signals_on = false;
  uv_close((uv_handle_t *)&g.sig_int, NULL);
  uv_close((uv_handle_t *)&g.sig_term, NULL);
  uv_close((uv_handle_t *)&g.sig_hup, NULL);
}

/* ---- start and stop ------------------------------------------------------ */

/* What `souk run` and `souk console` start, in order; they stop in the
 * reverse order, and a failed start stops what started before it.  The
 * store is closed only after the loop has run dry (its queued work must
 * finish first), in main.  The HTTP server and the bot start after these
 * and stop first (shutdown_begin), since stopping them takes the loop. */
typedef struct unit {
  const char *name;
  int (*start)(void); /* 0 or SOUK_E*, logged by the unit */
  void (*stop)(void); /* NULL: nothing to undo here */
  int config_rc[2];   /* these start errors mean a configuration error (exit status 2) */
} unit_t;

static int ops_start(void) {
  int rc = souk__ops_start();
  if (rc)
    SOUK_ERROR("core", "cannot start operations (health, tasks, memory guard): %s",
               souk_strerror(rc));
  return rc;
}

static int store_start(void) {
  int rc = souk__app_store_open();
  return rc ? rc : souk__sched_add_table(souk__app_store_tasks());
}

static int http_client_start(void) {
  int rc = souk_http_init();
  if (rc) SOUK_ERROR("core", "cannot start the HTTP client: %s", souk_strerror(rc));
  return rc;
}

static void shutdown_for_error(int code);

static int recovery_start(void) {
  /* Alerts go to Discord only from `souk run`. */
  souk__app_recovery_start(!g.console && !g.oneshot, shutdown_for_error);
  return 0;
}

static int settings_start(void) {
  int rc = souk__settings_start(souk__app_store(), g.secs, g.nsecs);
  return rc ? rc : souk__sched_add_table(souk__settings_tasks());
}

static int usage_start(void) {
  souk__usage_start(souk__app_store());
  return souk__sched_add_table(souk__usage_tasks());
}

static void usage_stop(void) {
  /* Counts of the last minutes go to the store before it closes. */
  souk__usage_flush_sync();
  souk__usage_stop();
}



/* The cluster runs for `souk run` only: the console is one process on its
 * own, and leads itself. */
static int cluster_start(void) {
  if (g.console) return 0;
  souk__cluster_opts_t o = {
      .redis_url = souk__cache_conf.url,
      .key_prefix = souk__cache_conf.key_prefix,
      .store = souk__app_store(),
      .store_url = souk__store_conf.url,
      .connect_timeout_ms = souk__store_conf.connect_timeout_ms,
      .version = SOUK_VERSION,
  };
  return souk__cluster_start(&o);
}

static int modules_start(void) {
  souk__modreg_services_t svc = {.store = souk__app_store(),
                                 .cache = souk__app_cache(),
                                 .routes = (!g.console || g.console_http) && !g.oneshot,
                                 .only = g.oneshot};
  return souk__modreg_start(&svc);
}

static int scheduler_start(void) {
  /* A one-shot command does its own work and nothing on a schedule. */
  if (g.oneshot) return 0;
  /* Every task (the wiring's and the modules') runs on its period from now. */
  return souk__sched_start();
}

static int confshare_start(void);

static const unit_t units[] = {
    {"operations", ops_start, souk__ops_stop, {0}},
    /* A damaged SQLite file is refused at start, like a bad setting. */
    {"store", store_start, NULL, {SOUK_EFATAL, SOUK_ECORRUPT}},
    {"cache", souk__app_cache_open, souk__app_cache_close, {SOUK_ECONFIG}},
    {"http client", http_client_start, souk_http_shutdown, {0}},
    {"recovery", recovery_start, souk__app_recovery_stop, {0}},
    {"usage", usage_start, usage_stop, {0}},
    {"settings", settings_start, souk__settings_stop, {SOUK_EINVAL}},
    {"cluster", cluster_start, souk__cluster_stop, {SOUK_ECONFIG}},
    {"commands", souk__app_cmd_init, souk__app_cmd_shutdown, {0}},
    {"modules", modules_start, souk__modreg_stop, {0}},
    {"scheduler", scheduler_start, souk__sched_stop, {0}},
    {"shared config", confshare_start, souk__app_confshare_stop, {0}},
};
#define NUNITS (sizeof units / sizeof units[0])

static size_t g_units_up;

/* Start every unit in order; on failure stop the ones that started, in
 * reverse, and return the exit status. */
static int units_start(void) {
  for (g_units_up = 0; g_units_up < NUNITS; g_units_up++) {
    const unit_t *u = &units[g_units_up];
    int rc = u->start();
    if (rc) {
      SOUK_DEBUG("core", "%s did not start: %s", u->name, souk_strerror(rc));
      /* What the failed unit did start (a table in part) is undone too. */
      if (u->stop) u->stop();
      while (g_units_up > 0) {
        const unit_t *d = &units[--g_units_up];
        if (d->stop) d->stop();
      }
      bool config = (u->config_rc[0] && rc == u->config_rc[0]) ||
                    (u->config_rc[1] && rc == u->config_rc[1]);
      return config ? EXIT_CONFIG : EXIT_RUNTIME;
    }
  }
  return EXIT_OK;
}

static void units_stop(void) {
  while (g_units_up > 0) {
    const unit_t *u = &units[--g_units_up];
    if (u->stop) u->stop();
  }
}

/* Called once everything that was running has stopped. */
static void on_stopped(void) {
  /* In `souk run` the bot stopped the actions with the REST client. */
  if (g.console) souk__dapi_stop();
  units_stop();
  if (!g.console) souk__discord_health(false);
  souk_httpd_remove_ready_check("gateway");
  souk__metrics_shutdown();
  signals_off();
  souk__log_flusher_stop();
  SOUK_INFO("core", "stopped (exit status %d)", g.exit_code);
}

static void shutdown_begin(int code) {
  if (g.stopping) {
    if (code > g.exit_code) g.exit_code = code;
    return;
  }
  g.stopping = true;
  g.exit_code = code;
  SOUK_INFO("core", "shutting down");
  /* Nothing new starts from here on: an error recorded while stopping is
   * still logged and counted, but no longer alerts a channel. */
  souk__app_recovery_quiesce();
  /* The HTTP server goes first: it answers what it still owes with 503,
   * and /readyz must not claim readiness while the rest winds down. */
  souk__ix_unmount();
  if (souk__httpd_running()) souk__httpd_stop();
  if (g.console) {
    souk__console_stop();
    on_stopped();
    return;
  }
  souk__bot_stop(souk__core_conf.shutdown_grace_ms, on_stopped);
}

static void on_console_eof(void) { shutdown_begin(EXIT_OK); }

/* Exit status for an error that stops souk: Discord refusing the token,
 * shard or intents is 3 (do not restart blindly), a setting that cannot
 * work is 2, anything else 1. */
static int exit_for(int err) {
  return err == SOUK_EAUTH ? EXIT_REFUSED : err == SOUK_ECONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
}

/* The gateway cannot go on: recorded as a critical error, which logs msg
 * (the only line that says it) and whose registered strategy
 * (souk__app_recovery_start) shuts down cleanly; the direct call is the
 * safety net should the strategy be missing. */
static void on_bot_fatal(int err, const char *msg) {
  souk_error_record("gateway", SOUK_SEV_CRITICAL, err, NULL, "%s", msg);
  if (!g.stopping) shutdown_begin(exit_for(err));
}

/* The SHUTDOWN strategy's action. */
static void shutdown_for_error(int code) { shutdown_begin(exit_for(code)); }

static int reload_config(souk_buf_t *out) {
  souk_buf_t changes;
  souk_buf_init(&changes);
  souk__conf_report_t rep = {0};
  int rc = souk__config_reload(g.config_path, g.config_explicit, g.secs, g.nsecs, &rep, &changes);
  if (rep.n) souk__conf_report_log(&rep);
  if (rc) {
    SOUK_ERROR("core", "configuration not reloaded (%s); keeping the running settings",
               souk_strerror(rc));
    if (out) souk_buf_printf(out, "not reloaded (%s): see the log for each problem\n",
                             souk_strerror(rc));
  } else {
    apply_log_conf();
    SOUK_INFO("core", "configuration reloaded%s%s", changes.len ? ": " : " (no changes)",
              changes.len ? changes.data : "");
    if (out) souk_buf_printf(out, "reloaded%s%s\n", changes.len ? ": " : " (no changes)",
                             changes.len ? changes.data : "");
    souk__ops_reload();
    souk__settings_reload();
    souk__modreg_reload();
    souk__bot_reload();
    souk__app_confshare_reapply();
  }
  souk__conf_report_free(&rep);
  souk_buf_free(&changes);
  return rc ? SOUK_ECONFIG : 0;
}

/* /admin config set: one run-time key, validated as the file is; the
 * change is logged with who made it and applied like a reload. */
static void config_applied(void) {
  apply_log_conf();
  souk__ops_reload();
  souk__settings_reload();
  souk__modreg_reload();
  souk__bot_reload();
}

static int set_config(const char *key, const char *value, uint64_t by_user, char *err,
                      size_t errcap) {
  int rc = souk__config_set(g.secs, g.nsecs, key, value, err, errcap);
  if (rc) return rc;
  SOUK_INFO("core", "configuration key %s changed at run time by user %" PRIu64, key, by_user);
  config_applied();
  /* The other processes of the bot follow, with the value as the key
   * reads it back ("30s", not "30"); a secret never leaves the process. */
  souk_buf_t v;
  souk_buf_init(&v);
  if (souk__config_value_text(g.secs, g.nsecs, key, &v, NULL) == 0)
    souk__app_confshare_publish(key, v.data ? v.data : "");
  souk_buf_free(&v);
  return 0;
}

/* A change another process of the bot made (app_confshare.c). */
static int apply_shared_config(const char *key, const char *value) {
  char err[300];
  int rc = souk__config_set(g.secs, g.nsecs, key, value, err, sizeof err);
  if (rc) {
    SOUK_WARN("core", "configuration key %s from another process not applied here: %s", key,
              err[0] ? err : souk_strerror(rc));
    return rc;
  }
  config_applied();
  return 0;
}

static int confshare_start(void) {
  /* The console is a local shell: it neither changes nor follows the bot's
   * processes. */
  if (g.console) return 0;
  souk__set_conf_shared_hook(souk__app_confshare_state);
  return souk__app_confshare_start(apply_shared_config);
}

/* `souk settings guild|user ID`: the values in effect for one guild or
 * user, read from the store as the bot would, with where each comes from
 * (the operator's view of what /settings view shows). */
static int cmd_settings(int argc, char **argv) {
  bool guild = argc == 2 && !strcmp(argv[0], "guild");
  char *end = NULL;
  unsigned long long id = argc == 2 ? strtoull(argv[1], &end, 10) : 0;
  if (argc != 2 || (!guild && strcmp(argv[0], "user") != 0) || !end || *end || id == 0) {
    fprintf(stderr, "usage: souk settings guild|user ID\n");
    return EXIT_CONFIG;
  }
  if (ensure_data_dir() != 0) return EXIT_CONFIG;
  int rc = souk__app_store_open();
  if (rc) return rc == SOUK_EFATAL ? EXIT_CONFIG : EXIT_RUNTIME;
  rc = souk__settings_start(souk__app_store(), g.secs, g.nsecs);
  if (rc) {
    fprintf(stderr, "souk settings: cannot read the settings: %s\n", souk_strerror(rc));
    souk__app_store_close();
    return EXIT_RUNTIME;
  }
  static const char *const from[] = {"default", "config file", "set"};
  printf("settings of %s %llu (default < config file < set for this %s):\n",
         guild ? "guild" : "user", id, guild ? "guild" : "user");
  size_t shown = 0;
  for (size_t i = 0; i < souk_setting_count(); i++) {
    const char *module = NULL;
    const souk_setting_t *st = souk_setting_at(i, &module);
    if ((st->scope == SOUK_SETTING_GUILD) != guild) continue;
    char v[512];
    souk_setting_source_t src = SOUK_SETTING_DEFAULT;
    souk_setting_get((uint64_t)id, st->key, v, sizeof v, &src);
    printf("  %-32s %-24s (%s)\n", st->key, v[0] ? v : "\"\"", from[src]);
    shown++;
  }
  if (!shown) printf("  (no module declares %s settings)\n", guild ? "guild" : "user");
  souk__settings_stop();
  souk__app_store_close();
  return EXIT_OK;
}

static void signal_cb(uv_signal_t *h, int signum) {
  if (signum == SIGHUP) {
    /* logrotate moved the file: write to a new one under its name, even
     * if the configuration turns out not to reload. */
    int rc = souk_log_reopen();
    if (rc) SOUK_WARN("core", "cannot reopen the log file: %s", strerror(-rc));
    SOUK_INFO("core", "SIGHUP: reloading the configuration");
    reload_config(NULL);
    return;
  }
  SOUK_INFO("core", "received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
  if (g.stopping && signum == SIGINT) {
    /* A second Ctrl-C: the operator wants out now. */
    SOUK_WARN("core", "second interrupt: exiting without waiting");
    exit(EXIT_RUNTIME);
  }
  shutdown_begin(EXIT_OK);
}

static void signals_on(void) {
  uv_loop_t *loop = souk_loop();
  uv_signal_init(loop, &g.sig_int);
  uv_signal_init(loop, &g.sig_term);
  uv_signal_init(loop, &g.sig_hup);
  uv_signal_start(&g.sig_int, signal_cb, SIGINT);
  uv_signal_start(&g.sig_term, signal_cb, SIGTERM);
  uv_signal_start(&g.sig_hup, signal_cb, SIGHUP);
  /* The signal handles must not keep an otherwise finished loop alive. */
  uv_unref((uv_handle_t *)&g.sig_int);
  uv_unref((uv_handle_t *)&g.sig_term);
  uv_unref((uv_handle_t *)&g.sig_hup);
  g.signals_on = true;
}

/* Ready when every shard of this process has a live session. */
static bool gateway_ready(void *ud, souk_buf_t *why) {
  size_t n = souk__bot_shards(), ready = souk__bot_shards_ready();
  if (n > 0 && ready == n) return true;
  souk_buf_printf(why, "%zu of %zu shard(s) ready", ready, n);
  int64_t until = 0;
  if (souk__bot_identify_waiting(&until)) {
    int64_t mins = (until - (int64_t)souk_unix_ms() + 59999) / 60000;
    souk_buf_printf(why, "; the daily IDENTIFY budget is spent, the next may identify in %lld min",
                    (long long)(mins > 0 ? mins : 0));
  }
  return false;
}

/* GET /health (admin): the health report, 503 when anything is critical,
 * so a monitor can alert on the status alone. */
static void health_route(souk_httpd_req_t *req) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk_health_t overall = souk_health_check_all(&b);
  souk_httpd_respond_buf(req, overall == SOUK_HEALTH_CRITICAL ? 503 : 200,
                         "text/plain; charset=utf-8", &b);
}

static const souk_route_t core_routes[] = {
    {"GET", "/health", SOUK_ROUTE_ADMIN, health_route},
    {0},
};

/* Metrics and the HTTP server (/healthz, /readyz, /metrics) start before
 * the gateway connects, so liveness answers during start-up and readiness
 * says 503 until the shards are up.  `souk console --http` starts the
 * server whatever http.enabled says (it was asked for), with no gateway to
 * wait for and no POST /interactions (nothing would answer Discord). */
static int start_http(void) {
  /* Each layer registers its own families. */
  souk__metrics_builtin_init();
  souk__ops_metrics_init();
  souk__app_store_metrics_init();
  souk__app_cache_metrics_init();
  souk__discord_metrics_init();
  souk__app_cmd_metrics_init();
  if (!g.console) souk_httpd_add_ready_check("gateway", gateway_ready, NULL);
  if (!souk__httpd_conf.enabled && !g.console_http) return 0;
  /* POST /interactions, when the application's public key is configured. */
  int ix = g.console ? 0 : souk__ix_mount();
  if (ix) return ix;
  int rc = souk__httpd_start(NULL);
  if (rc) {
    SOUK_ERROR("core", "cannot start the HTTP server on %s:%lld: %s (set http.port, or "
               "http.enabled: false)", souk__httpd_conf.bind ? souk__httpd_conf.bind : "?",
               (long long)souk__httpd_conf.port, souk_strerror(rc));
    return rc;
  }
  /* The modules' routes were mounted as each module started. */
  souk_httpd_mount(core_routes, NULL);
  if (g.console) {
    /* Where to point a browser, since the log is not on the terminal. */
    const char *host = souk__httpd_conf.bind ? souk__httpd_conf.bind : "127.0.0.1";
    bool v6 = strchr(host, ':') != NULL;
    fprintf(stderr, "souk: the web pages are on http://%s%s%s:%d/ (the Market Sim's dashboard: "
                    "/market/GUILD once /market dashboard state:on)\n",
            v6 ? "[" : "", host, v6 ? "]" : "", souk__httpd_port());
  }
  return 0;
}

/* `souk <module> ARGS...` for a module's cli_started: the services and that
 * module start (no Discord, HTTP server or schedule), its command runs on
 * the loop, and everything stops again.  Returns the exit status. */
static int run_oneshot(const souk_module_t *m, int argc, char **argv) {
  g.oneshot = m;
  int code = units_start();
  if (code != EXIT_OK) return code;
  const souk_module_ctx_t *ctx = souk__modreg_ctx_of(m);
  code = ctx ? m->cli_started(ctx, argc, argv) : EXIT_RUNTIME;
  units_stop();
  /* What stopping closed finishes on the loop. */
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  return code;
}

static int cmd_config_keys(void) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk__config_keys_markdown(g.secs, g.nsecs, &b);
  fwrite(b.data, 1, b.len, stdout);
  souk_buf_free(&b);
  return EXIT_OK;
}

/* What `souk run` says without a token: one text for run and check-config. */
#define NO_TOKEN_MSG                                                                              \
  "not set: `souk run` stops here with exit status 2. Export SOUK_DISCORD_TOKEN (or put it in "    \
  ".env); `souk console` needs no token"

/* Whether the token is set for the commands that need it, even when the
 * load failed and nothing was applied: the environment (and .env, already
 * loaded) or the file, which the report mentions with its warning. */
static bool token_given(int load_rc, const souk__conf_report_t *rep) {
  if (load_rc == 0) return souk__discord_conf.token != NULL;
  const char *env = getenv("SOUK_DISCORD_TOKEN");
  if (env && *env) return true;
  for (size_t i = 0; i < rep->n; i++)
    if (rep->v[i].key && !strcmp(rep->v[i].key, "discord.token")) return true;
  return false;
}

/* Checks across keys, with the rest of the configuration: a shard range
 * outside the shard count would otherwise stop `run` only after it asked
 * Discord, with exit status 1. */
static void cross_checks(souk__conf_report_t *rep) {
  const souk__discord_conf_t *c = &souk__discord_conf;
  int64_t count = c->shard_count, last = c->shard_last;
  const char *bad = NULL;
  if (last >= 0 && c->shard_first > last)
    bad = "discord.shards.first";
  else if (count > 0 && (last >= count || (last < 0 && c->shard_first >= count)))
    bad = last >= count ? "discord.shards.last" : "discord.shards.first";
  if (!bad) return;
  souk_buf_t where;
  souk_buf_init(&where);
  souk__config_source(g.secs, g.nsecs, bad, &where);
  souk__conf_report_add(rep, false, where.len ? where.data : NULL, 0, bad,
                        "expected a shard range first..last within 0..count-1, found %lld..%lld "
                        "with count %lld (0: Discord's count)",
                        (long long)c->shard_first, (long long)(last < 0 ? count - 1 : last),
                        (long long)count);
  souk_buf_free(&where);
}

static int cmd_check_config(bool online) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk__config_dump(g.secs, g.nsecs, &b);
  fputs(b.data ? b.data : "", stdout);
  souk_buf_free(&b);
  /* Each module's own report (and, online, its outside services). */
  int mod_rc = souk__modreg_check(online, stdout);
  if (mod_rc) {
    printf("configuration has problems: %s\n", souk_strerror(mod_rc));
    return mod_rc == SOUK_ECONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
  }
  if (!souk__discord_conf.token) {
    /* What `souk run` would say, rather than an "OK" that run contradicts. */
    printf("discord.token: " NO_TOKEN_MSG "\n");
    printf("configuration has problems: the token is missing%s\n",
           online ? " (Discord was not asked)" : "");
    return EXIT_CONFIG;
  }
  if (!online) {
    printf("configuration OK\n");
    return EXIT_OK;
  }
  int rc = souk__bot_check_online();
  if (rc) {
    printf("online check FAILED: %s\n", souk_strerror(rc));
    return rc == SOUK_EAUTH ? EXIT_REFUSED : EXIT_RUNTIME;
  }
  printf("configuration OK; Discord accepted the token\n");
  return EXIT_OK;
}

int main(int argc, char **argv) {
  /* A write to a closed socket must be an error return, not a dead process
   * (hiredis 0.14 writes with plain write()). */
  signal(SIGPIPE, SIG_IGN);
  souk__heap_init();
  if (souk_alloc_init() != 0) {
    fprintf(stderr, "souk: cannot initialise allocators\n");
    return EXIT_RUNTIME;
  }
  opts_t o;
  if (parse_args(argc, argv, &o)) return EXIT_CONFIG;
  if (!strcmp(o.cmd, "version")) {
    printf("souk %s\n", SOUK_VERSION);
    return EXIT_OK;
  }
  if (!strcmp(o.cmd, "help")) {
    usage(stdout);
    return EXIT_OK;
  }
  bool known = !strcmp(o.cmd, "run") || !strcmp(o.cmd, "console") ||
               !strcmp(o.cmd, "check-config") || !strcmp(o.cmd, "config-keys") ||
               !strcmp(o.cmd, "commands") || !strcmp(o.cmd, "settings") || !strcmp(o.cmd, "db") ||
               module_cli(o.cmd);
  if (!known) {
    fprintf(stderr, "souk: unknown command '%s'\n\n", o.cmd);
    usage(stderr);
    return EXIT_CONFIG;
  }
  if (souk__modreg_init(souk__modules)) return EXIT_RUNTIME;
  if (souk__app_settings_register()) return EXIT_RUNTIME;
  souk__set_reload_hook(reload_config);
  souk__set_conf_set_hook(set_config);
  sections_build();
  g.config_path = o.config;
  g.config_explicit = o.config_explicit;
  if (!strcmp(o.cmd, "commands")) {
    /* The application commands souk registers, exactly as it sends them. */
    int rc = souk__modreg_commands();
    if (rc == 0) {
      souk_buf_t b;
      souk_buf_init(&b);
      souk__dmsg_commands(&b);
      fwrite(b.data, 1, b.len, stdout);
      fputc('\n', stdout);
      souk_buf_free(&b);
    } else {
      fprintf(stderr, "souk: %s\n", souk__cmd_last_error());
    }
    souk__cmd_clear();
    souk_free(g.secs);
    return rc ? EXIT_RUNTIME : EXIT_OK;
  }
  if (!strcmp(o.cmd, "config-keys")) {
    int rc = souk__config_load(NULL, false, g.secs, g.nsecs, NULL);
    (void)rc;
    rc = cmd_config_keys();
    souk__config_free(g.secs, g.nsecs);
    souk_free(g.secs);
    return rc;
  }

  souk__conf_report_t rep = {0};
  int rc = souk__config_load(o.config, o.config_explicit, g.secs, g.nsecs, &rep);
  /* `run` needs the token: a missing one is listed with every other
   * problem (check-config says so after its report). */
  bool needs_token = !strcmp(o.cmd, "run") || (rc && !strcmp(o.cmd, "check-config"));
  if (rc == 0 && (!strcmp(o.cmd, "run") || !strcmp(o.cmd, "check-config"))) {
    size_t before = rep.nerr;
    cross_checks(&rep);
    if (rep.nerr > before) rc = SOUK_ECONFIG;
  }
  if (needs_token && !token_given(rc, &rep)) {
    souk__conf_report_add(&rep, false, NULL, 0, "discord.token", NO_TOKEN_MSG);
    rc = SOUK_ECONFIG;
  }
  souk__conf_report_print(&rep, stderr);
  souk__conf_report_free(&rep);
  if (rc) {
    fprintf(stderr, "souk: configuration has errors; nothing was started\n");
    souk__config_free(g.secs, g.nsecs);
    souk_free(g.secs);
    return EXIT_CONFIG;
  }
  int code = EXIT_OK;
  g.console = !strcmp(o.cmd, "console");
  g.console_http = g.console && o.http;
  /* A module's one-shot (cron) honours core.log.file too, so its info
   * lines need not go to cron's mail. */
  g.log_to_file = g.console || !strcmp(o.cmd, "run") ||
                  (module_cli(o.cmd) && module_cli(o.cmd)->cli_started);
  apply_log_conf();

  souk__console_set_mode(g.console);
  if (!strcmp(o.cmd, "check-config")) {
    code = cmd_check_config(o.online);
  } else if (!strcmp(o.cmd, "db")) {
    code = ensure_data_dir() ? EXIT_CONFIG : souk__cli_db(o.nargs, o.args, o.to);
  } else if (!strcmp(o.cmd, "settings")) {
    code = cmd_settings(o.nargs, o.args);
  } else if (module_cli(o.cmd) && module_cli(o.cmd)->cli) {
    code = ensure_data_dir() ? EXIT_CONFIG : module_cli(o.cmd)->cli(o.nargs, o.args);
  } else if (module_cli(o.cmd)) {
    code = ensure_data_dir() ? EXIT_CONFIG : run_oneshot(module_cli(o.cmd), o.nargs, o.args);
  } else if (ensure_data_dir() != 0) {
    code = EXIT_CONFIG;
  } else if ((code = units_start()) == EXIT_OK) {
    signals_on();
    souk__log_flusher_start(souk_loop());
    /* The Discord actions' own limits (renames, coalesced edits, presence)
     * run on the schedule clock: the real one, or the one an integration
     * test moves (SOUK_TEST_CLOCK_FILE), like the modules' schedules. */
    souk__dapi_set_clock(souk_sched_now_ms);
    if (g.console) {
      /* Modules' Discord actions print on the console instead. */
      souk__dapi_start(&souk__dapi_console_sink);
      rc = g.console_http ? start_http() : 0;
      if (rc == 0) rc = souk__console_start(on_console_eof);
    } else {
      SOUK_INFO("core", "souk %s starting", SOUK_VERSION);
      souk__discord_health(true);
      souk__dcmd_set_store(souk__app_store());
      /* A retried HTTP interaction (a load balancer in front of several
       * processes) answers once, whichever process it reaches. */
      souk__ix_set_store(souk__app_store());
      souk__sched_add_table(souk__ix_tasks());
      rc = start_http();
      if (rc == 0) rc = souk__bot_start(on_bot_fatal);
    }
    if (rc) {
      SOUK_ERROR("core", "start failed: %s", souk_strerror(rc));
      g.stopping = true;
      g.exit_code = EXIT_RUNTIME;
      souk__httpd_stop();
      on_stopped();
    }
    /* Heap freed after start-up (and after any later burst) goes back to
     * the kernel instead of staying resident. */
    if (!rc) souk__heap_trimmer_start();
    uv_run(souk_loop(), UV_RUN_DEFAULT);
    code = g.exit_code;
  }
  /* A start that failed half-way (a module's init refused) may leave store
   * jobs on the thread pool, such as another module's first reads: they
   * finish before the store closes, as souk_store_close requires. */
  while (souk_work_pending() > 0)
    uv_run(souk_loop(), UV_RUN_ONCE);
  souk__app_store_close();
  souk_loop_close();
  souk_log_flush();
  souk__config_free(g.secs, g.nsecs);
  souk_free(g.secs);
  souk_log_clear_secrets();
  souk_log_set_file(NULL);
  return code;
}
