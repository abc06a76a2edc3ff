/* What a module is: one const table of tables, listed in src/app/modules.c.
 *
 * Modelled on nginx's ngx_module_t and Redis's command table.  A module
 * talks to the rest of souk only through include/souk. */
#ifndef SOUK_MODULE_H
#define SOUK_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "souk/conf.h"
#include "souk/json.h"

/** Bumped when struct souk_module changes incompatibly. */
#define SOUK_MODULE_ABI 1

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
typedef void (*souk_event_fn)(const souk_event_t *ev);

/** One event subscription; "*" matches every event. */
typedef struct souk_event_handler {
  const char *event;
  souk_event_fn fn;
} souk_event_handler_t;

struct souk_command;       /* souk/cmd.h */
struct souk_cmd_component; /* souk/cmd.h */
struct souk_cmd_alias;     /* souk/cmd.h */
struct souk_task;    /* storage and operations issue */
struct souk_route;   /* storage and operations issue */
struct souk_buf;     /* souk/buf.h */
struct souk_setting; /* souk/settings.h */

/** A module.  Tables end with a zero entry; any may be NULL. */
typedef struct souk_module {
  uint32_t abi;
  const char *name;
  const souk_conf_key_t *conf; /* section `name` of the config file */
  void *conf_data;             /* where conf values land */
  const souk_event_handler_t *events;
  const struct souk_command *commands;
  const struct souk_task *tasks;
  const struct souk_route *routes;
  /** After config is valid, before the gateway connects.  0 or SOUK_E*. */
  int (*init)(void);
  /** On shutdown, in reverse order of init. */
  void (*shutdown)(void);
  /** After a run-time config change (SIGHUP or admin). */
  void (*reload)(void);
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
} souk_module_t;

#endif
