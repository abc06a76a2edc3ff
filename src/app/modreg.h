/* The module registry: the modules linked into souk (src/app/modules.c),
 * every table they declare, and their start and stop.
 *
 * A module is tables plus init and shutdown (souk/module.h).  The registry
 * puts each table where it belongs: config sections into the config
 * loader's list, commands and components into the command registry, tasks
 * into the scheduler, event handlers into the dispatcher, routes onto the
 * HTTP server; it starts the modules in list order with a context of the
 * process's services, undoes a failed start, and stops them in reverse.
 *
 * Loop thread only. */
#ifndef SOUK_APP_MODREG_H
#define SOUK_APP_MODREG_H

#include "souk/conf.h"
#include "souk/module.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/** The modules linked into this binary, in start order, NULL-terminated
 * (src/app/modules.c: the one file that names every module). */
extern const souk_module_t *const souk__modules[];

/** Take the list of modules (borrowed; normally souk__modules).  Returns 0,
 * or SOUK_EINVAL when a module was built for another SOUK_MODULE_ABI or
 * has no name (logged, naming it). */
int souk__modreg_init(const souk_module_t *const *mods);
/** Number of modules in the list. */
size_t souk__modreg_count(void);
/** Module i of the list, or NULL past the end. */
const souk_module_t *souk__modreg_at(size_t i);

/** Append one config section per module that has a config table to
 * secs[*n..]; *n grows by at most souk__modreg_count(). */
void souk__modreg_sections(souk_conf_section_t *secs, size_t *n);

/** Register every module's commands and components with the command
 * registry.  0, or SOUK_EINVAL / SOUK_EEXIST (logged with the module and
 * the rule its table broke; nothing of that module is registered). */
int souk__modreg_commands(void);

/** The services a started module is handed (see souk_module_ctx_t). */
typedef struct souk__modreg_services {
  struct souk_store *store; /* may be NULL */
  struct souk_cache *cache; /* may be NULL */
  /** Mount the modules' routes on the HTTP server (`souk run`; the console
   * serves no HTTP). */
  bool routes;
  /** Replace the process's services (tests); NULL: the real ones. */
  const souk_http_client_t *http;
  const souk_scheduler_t *tasks;
  const souk_metrics_registry_t *metrics;
  /** Start only this module (a one-shot `souk <module> ...`); NULL: all. */
  const souk_module_t *only;
} souk__modreg_services_t;

/** Start every module in list order: its migrations (when there is a
 * store), init(ctx), then its tasks, routes and event handlers go live.  When one fails (its init,
 * or a table the scheduler or the HTTP server refuses), the modules started before it are stopped
 * in reverse order and its error is returned (logged, naming the module).  svc is copied. */
int souk__modreg_start(const souk__modreg_services_t *svc);
/** Stop the started modules in reverse order: each one's event handlers,
 * routes and tasks go first, then its shutdown(ctx).  Safe to call twice. */
void souk__modreg_stop(void);
/** Call every started module's reload hook, in order. */
void souk__modreg_reload(void);
/** `souk check-config`: each module's own report, printed to out in
 * order.  Returns 0 or the first module's error. */
int souk__modreg_check(bool online, FILE *out);
/** Register every module's .data tables with the store's forget-user /
 * purge-guild registry (`souk db` does it before either; a started module
 * has its own registered already).  0 or the first error. */
int souk__modreg_register_data(void);

/** The context module i was started with, or NULL when it is not
 * started (tests). */
const souk_module_ctx_t *souk__modreg_ctx(size_t i);
/** The context of module m once it started, or NULL. */
const souk_module_ctx_t *souk__modreg_ctx_of(const souk_module_t *m);

#endif
