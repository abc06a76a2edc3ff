/* What a module is: one const table of tables, listed in src/app/modules.c,
 * and the context its init is handed.
 *
 * Modelled on nginx's ngx_module_t and Redis's command table.  A module
 * talks to the rest of souk only through include/souk; docs/modules.md is
 * the guide to writing one. */
#ifndef SOUK_MODULE_H
#define SOUK_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "souk/conf.h"
#include "souk/json.h"

/** Bumped when struct souk_module changes incompatibly. */
#define SOUK_MODULE_ABI 2

/** Where an event came from. */
typedef enum souk_event_source {
  SOUK_SRC_GATEWAY, /* a Discord gateway dispatch */
  SOUK_SRC_CONSOLE, /* `souk console`: a line typed locally */
} souk_event_source_t;

/** A gateway dispatch (op 0) as a module sees it.  Valid only during the
 * handler call: copy what you keep. */
typedef struct souk_event {
  const char *name;        /* "MESSAGE_CREATE" */
  uint32_t shard;          /* shard id that received it */
  uint64_t seq;            /* the gateway sequence number */
  const souk_json_t *json; /* the whole payload */
  int d;                   /* token of the payload's "d" */
  souk_event_source_t source;
  /** Set by the source: send text back where the event came from. */
  int (*reply)(const struct souk_event *ev, const char *text, size_t len);
  void *source_ud;
} souk_event_t;

/** Reply to a message event with plain text, wherever it came from: a
 * Discord channel message (split at 2000 characters, mentions disabled) or
 * a console line.  Returns 0 or SOUK_E* (SOUK_EINVAL if the event has no
 * channel to answer in). */
int souk_reply(const souk_event_t *ev, const char *text);

/** Called on the loop thread for each matching event, in gateway order. */
typedef void (*souk_event_cb)(const souk_event_t *ev);

/** One event subscription; "*" matches every event. */
typedef struct souk_event_handler {
  const char *event;
  souk_event_cb fn;
} souk_event_handler_t;

struct souk_command;       /* souk/cmd.h */
struct souk_cmd_component; /* souk/cmd.h */
struct souk_cmd_alias;     /* souk/cmd.h */
struct souk_task;          /* souk/task.h */
struct souk_route;         /* souk/httpd.h */
struct souk_buf;           /* souk/buf.h */
struct souk_setting;       /* souk/settings.h */
struct souk_store;         /* souk/store.h */
struct souk_cache;         /* souk/cache.h */
struct souk_metric;        /* souk/metrics.h */
struct souk_http_opts;     /* souk/http.h */
struct souk_http_resp;     /* souk/http.h */
struct souk_http_req;      /* souk/http.h */
struct souk_migration;     /* souk/store.h */
struct souk_store_data;    /* souk/store.h */

/* ---- what a module is handed at init ------------------------------------ */

/** The HTTP client (souk/http.h says what each call promises).  The
 * process's points at souk_http_request() and souk_http_cancel(); a test
 * may hand a fake one. */
typedef struct souk_http_client {
  int (*request)(const struct souk_http_opts *o,
                 void (*cb)(const struct souk_http_resp *resp, void *ud), void *ud,
                 struct souk_http_req **out_opt);
  void (*cancel)(struct souk_http_req *req);
} souk_http_client_t;

/** The task scheduler (souk/task.h).  The tasks of a module's .tasks
 * table are added by the registry after init and removed before shutdown;
 * these are for what a table cannot say. */
typedef struct souk_scheduler {
  /** Add a task the module builds at init (its table outlives it).  0,
   * SOUK_EINVAL or SOUK_EEXIST.  Remove it in shutdown. */
  int (*add)(const struct souk_task *t);
  /** Remove a task added with add (a run still out finishes unseen). */
  void (*remove)(const struct souk_task *t);
  /** Run the task called name as soon as possible: souk_task_restart(). */
  int (*restart)(const char *name);
} souk_scheduler_t;

/** The metrics registry (souk/metrics.h has the rules of each call).  A
 * module registers its souk_<module>_* families and collectors here at
 * init, and removes its collectors in shutdown. */
typedef struct souk_metrics_registry {
  struct souk_metric *(*counter)(const char *name, const char *help, const char *labels);
  struct souk_metric *(*gauge)(const char *name, const char *help, const char *labels);
  struct souk_metric *(*histogram)(const char *name, const char *help, const char *labels,
                                   const double *bounds, size_t n);
  int (*add_collector)(void (*fn)(void *ud), void *ud);
  int (*remove_collector)(void (*fn)(void *ud), void *ud);
} souk_metrics_registry_t;

/** What a module's init gets: the services of the process, as nginx hands
 * its modules the cycle.  A module keeps what it needs (the pointer itself
 * may be kept: see below) and reaches the rest of souk through it, never
 * through a process-wide accessor, so a test can start a module with a
 * throwaway store and fakes by filling one of these itself.
 *
 * Ownership: the registry owns the context and everything it points to;
 * all of it stays valid from init until the module's shutdown returns.
 * Loop thread only, like everything a module does outside its pool work. */
typedef struct souk_module_ctx {
  const struct souk_module *module; /* the module being started */
  /** The module's logger: the component its log lines carry (its name),
   * for SOUK_INFO(ctx->log, ...). */
  const char *log;
  /** The module's config: module->conf_data, loaded and validated (NULL
   * for a module without a config section). */
  void *conf;
  struct souk_store *store; /* the process's store; NULL when there is none */
  struct souk_cache *cache; /* the process's cache; NULL when there is none */
  const souk_http_client_t *http;          /* never NULL */
  const souk_scheduler_t *tasks;           /* never NULL */
  const souk_metrics_registry_t *metrics;  /* never NULL */
} souk_module_ctx_t;

/** A module.  Tables end with a zero entry; any may be NULL.
 *
 * The registry (src/app/modreg.c) starts the modules in the order of
 * src/app/modules.c: for each, its migrations run, then init(ctx), then
 * its tasks, event handlers and routes go live.  A failed init stops the modules already started,
 * in reverse.  At shutdown every started module stops in reverse order:
 * its routes, handlers and tasks go first, then shutdown(ctx).  Commands
 * and components are registered for every module before any starts. */
typedef struct souk_module {
  uint32_t abi;
  const char *name;
  const souk_conf_key_t *conf; /* section `name` of the config file */
  void *conf_data;             /* where conf values land */
  const souk_event_handler_t *events;
  const struct souk_command *commands;
  const struct souk_task *tasks;
  const struct souk_route *routes;
  /** After config is valid, before the gateway connects.  ctx is valid
   * until shutdown returns.  0 or SOUK_E* (the start is then undone and
   * shutdown is not called for this module). */
  int (*init)(const souk_module_ctx_t *ctx);
  /** On shutdown, in reverse order of init; free what init made. */
  void (*shutdown)(const souk_module_ctx_t *ctx);
  /** After a run-time config change (SIGHUP or admin). */
  void (*reload)(const souk_module_ctx_t *ctx);
  /** Component and modal handlers by custom_id prefix (souk/cmd.h). */
  const struct souk_cmd_component *components;
  /** `souk check-config`: append to out what an operator should know
   * about this module's settings, one line each; with online, also check
   * the outside services it uses (the loop may be run).  Called after the
   * configuration loaded, without init.  0, or SOUK_E* when something is
   * wrong (check-config then exits non-zero). */
  int (*check)(bool online, struct souk_buf *out);
  /** Other names for commands in prefix messages and the console
   * (souk/cmd.h souk_cmd_alias_t); may be NULL. */
  const struct souk_cmd_alias *aliases;
  /** `souk <name> ARGS...`: the module's own subcommands (argv[0] is the
   * first word after the module's name), run with the configuration
   * loaded and nothing else started (no store, no Discord; the loop may be
   * run).  Returns the process's exit status: 0 done, 1 failed, 2 a usage
   * error.  NULL: the module has none. */
  int (*cli)(int argc, char **argv);
  /** Per-guild and per-user settings (souk/settings.h), keys prefixed with
   * the module's name. */
  const struct souk_setting *settings;
  /** Checks of single keys of `conf` beyond their types (conf.h), run with
   * every other key's before anything starts; ends with a zero entry. */
  const souk_conf_check_t *conf_checks;
  /** The module's own schema, applied in order before its init (and by
   * `souk db migrate`), versioned per module (souk/store.h). */
  const struct souk_migration *migrations;
  /** `souk <name> ARGS...` for subcommands that need the process's
   * services, such as a one-shot job for cron: run once the store, cache,
   * HTTP client, settings and this module (its migrations, then init) have
   * started, with no Discord, no HTTP server, no scheduled tasks and no
   * other module; ctx is the one init got.  It may run the loop until its
   * work is done; the services stop after it returns.  Returns the exit
   * status: 0 done, 1 failed, 2 a usage error.  A module has .cli or this,
   * not both. */
  int (*cli_started)(const souk_module_ctx_t *ctx, int argc, char **argv);
  /** Its tables that hold data about users or guilds (souk/store.h), so
   * `souk db forget-user` / `purge-guild` reach them even when no module
   * runs; registered before init too.  A module may also register tables
   * from init with souk_store_register_data(). */
  const struct souk_store_data *data;
} souk_module_t;

#endif
