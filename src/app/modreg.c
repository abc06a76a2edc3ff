/* The module registry; see modreg.h. */
#include "app/modreg.h"

#include "core/cmdrun.h"
#include "core/core.h"
#include "ops/task.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/http.h"
#include "souk/httpd.h"
#include "souk/log.h"
#include "souk/metrics.h"
#include "souk/store.h"
#include "souk/task.h"

#include <string.h>

/* What a started module has live, so its stop undoes exactly that. */
typedef struct live {
  souk_module_ctx_t ctx;
  bool inited, tasks, routes, events;
} live_t;

static struct {
  const souk_module_t *const *mods;
  size_t n;
  live_t *live;   /* one per module while started */
  size_t started; /* modules 0 .. started-1 are (at least partly) live */
  souk__modreg_services_t svc;
} R;

/* ---- the process's services -------------------------------------------- */

static const souk_http_client_t http_client = {souk_http_request, souk_http_cancel};

static const souk_scheduler_t scheduler = {souk__sched_add, souk__sched_remove, souk_task_restart};

static const souk_metrics_registry_t metrics_registry = {
    souk_counter_new, souk_gauge_new, souk_histogram_new, souk_metrics_add_collector,
    souk_metrics_remove_collector};

/* ---- the list ---------------------------------------------------------- */

int souk__modreg_init(const souk_module_t *const *mods) {
  souk__modreg_stop();
  R.mods = mods;
  R.n = 0;
  for (size_t i = 0; mods && mods[i]; i++) {
    const souk_module_t *m = mods[i];
    if (!m->name || !*m->name) {
      SOUK_ERROR("core", "module %zu of the list has no name", i);
      return SOUK_EINVAL;
    }
    if (m->abi != SOUK_MODULE_ABI) {
      SOUK_ERROR("core", "module %s was built for module ABI %u, this souk has %u", m->name, m->abi,
                 SOUK_MODULE_ABI);
      return SOUK_EINVAL;
    }
    R.n++;
  }
  return 0;
}

size_t souk__modreg_count(void) { return R.n; }

const souk_module_t *souk__modreg_at(size_t i) { return i < R.n ? R.mods[i] : NULL; }

void souk__modreg_sections(souk_conf_section_t *secs, size_t *n) {
  for (size_t i = 0; i < R.n; i++) {
    const souk_module_t *m = R.mods[i];
    if (m->conf)
      secs[(*n)++] = (souk_conf_section_t){m->name, m->conf, m->conf_data, m->conf_checks};
  }
}

int souk__modreg_commands(void) {
  for (size_t i = 0; i < R.n; i++) {
    const souk_module_t *m = R.mods[i];
    if (m->commands) {
      int rc = souk__cmd_register(m->commands, m->name);
      if (rc) {
        SOUK_ERROR("core", "module %s: its command table is invalid: %s", m->name,
                   souk__cmd_last_error());
        return rc;
      }
    }
    if (m->aliases) {
      int rc = souk__cmd_alias_register(m->aliases, m->name);
      if (rc) {
        SOUK_ERROR("core", "module %s: its alias table is invalid: %s", m->name,
                   souk__cmd_last_error());
        return rc;
      }
    }
    if (m->components) {
      int rc = souk__cmd_component_register(m->components, m->name);
      if (rc) {
        SOUK_ERROR("core",
                   "module %s: its component table is invalid (prefixes must be 1-99 "
                   "characters and unique)",
                   m->name);
        return rc;
      }
    }
  }
  /* Aliases may name any module's commands: check them once all are in. */
  int rc = souk__cmd_aliases_check();
  if (rc) SOUK_ERROR("core", "an alias is invalid: %s", souk__cmd_last_error());
  return rc;
}

/* ---- start and stop ---------------------------------------------------- */

/* Undo what module i has live, newest first. */
static void stop_one(size_t i) {
  const souk_module_t *m = R.mods[i];
  live_t *l = &R.live[i];
  if (l->events) souk__dispatch_remove(m->events);
  if (l->routes) souk_httpd_unmount(m->routes);
  if (l->tasks) souk__sched_remove_table(m->tasks);
  if (l->inited && m->shutdown) m->shutdown(&l->ctx);
  memset(l, 0, sizeof *l);
}

/* Start module i; on failure it has nothing live and the error is
 * returned. */
static int start_one(size_t i) {
  const souk_module_t *m = R.mods[i];
  live_t *l = &R.live[i];
  l->ctx = (souk_module_ctx_t){
      .module = m,
      .log = m->name,
      .conf = m->conf_data,
      .store = R.svc.store,
      .cache = R.svc.cache,
      .http = R.svc.http ? R.svc.http : &http_client,
      .tasks = R.svc.tasks ? R.svc.tasks : &scheduler,
      .metrics = R.svc.metrics ? R.svc.metrics : &metrics_registry,
  };
  int rc = 0;
  const char *what = "its schema";
  if (m->migrations && R.svc.store)
    rc = souk_store_migrate_module(R.svc.store, m->name, m->migrations, NULL);
  if (rc == 0 && m->data) {
    what = "its data table";
    rc = souk_store_register_table(m->data);
  }
  if (rc == 0) {
    what = "init";
    rc = m->init ? m->init(&l->ctx) : 0;
  }
  if (rc == 0) {
    l->inited = true;
    if (m->tasks) {
      what = "its task table";
      rc = souk__sched_add_table(m->tasks);
      /* A table added in part is removed whole. */
      l->tasks = true;
    }
  }
  if (rc == 0 && R.svc.routes && m->routes) {
    what = "its routes";
    rc = souk_httpd_mount(m->routes, NULL);
    l->routes = rc == 0;
  }
  if (rc == 0 && m->events) {
    souk__dispatch_add(m->events);
    l->events = true;
  }
  if (rc) {
    SOUK_ERROR("core", "module %s failed to start (%s): %s", m->name, what, souk_strerror(rc));
    stop_one(i);
  }
  return rc;
}

int souk__modreg_start(const souk__modreg_services_t *svc) {
  souk__modreg_stop();
  R.svc = svc ? *svc : (souk__modreg_services_t){0};
  R.live = souk_calloc(R.n ? R.n : 1, sizeof *R.live);
  for (R.started = 0; R.started < R.n; R.started++) {
    /* A module left out stays zeroed: stopping it undoes nothing. */
    if (R.svc.only && R.mods[R.started] != R.svc.only) continue;
    int rc = start_one(R.started);
    if (rc) {
      souk__modreg_stop();
      return rc;
    }
  }
  return 0;
}

void souk__modreg_stop(void) {
  while (R.started > 0)
    stop_one(--R.started);
  souk_free(R.live);
  R.live = NULL;
}

void souk__modreg_reload(void) {
  for (size_t i = 0; i < R.started; i++)
    if (R.mods[i]->reload) R.mods[i]->reload(&R.live[i].ctx);
}

const souk_module_ctx_t *souk__modreg_ctx(size_t i) {
  return i < R.started && R.live ? &R.live[i].ctx : NULL;
}

const souk_module_ctx_t *souk__modreg_ctx_of(const souk_module_t *m) {
  for (size_t i = 0; i < R.started && R.live; i++)
    if (R.mods[i] == m && R.live[i].inited) return &R.live[i].ctx;
  return NULL;
}

int souk__modreg_register_data(void) {
  for (size_t i = 0; i < R.n; i++) {
    int rc = souk_store_register_table(R.mods[i]->data);
    if (rc) {
      SOUK_ERROR("core", "module %s: its data table is invalid", R.mods[i]->name);
      return rc;
    }
  }
  return 0;
}

int souk__modreg_check(bool online, FILE *out) {
  int first = 0;
  for (size_t i = 0; i < R.n; i++) {
    const souk_module_t *m = R.mods[i];
    if (!m->check) continue;
    souk_buf_t b;
    souk_buf_init(&b);
    int rc = m->check(online, &b);
    fputs(b.data ? b.data : "", out);
    souk_buf_free(&b);
    if (rc && !first) first = rc;
  }
  return first;
}
