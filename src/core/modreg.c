/* Module registry and event dispatcher. */
#include "core/core.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/stats.h"

#include <stdio.h>
#include <string.h>

/* One subscription, flattened from every module's event table so dispatch
 * is a scan of a small array with a cheap first-byte check before strcmp. */
typedef struct sub {
  const char *event;
  souk_event_fn fn;
  const souk_module_t *mod;
} sub_t;

static const souk_module_t *const *g_mods;
static size_t g_nmods, g_started;
static sub_t *g_subs;
static size_t g_nsubs;
static uint64_t g_dispatched;

int souk__modreg_init(const souk_module_t *const *mods) {
  souk_free(g_subs);
  g_subs = NULL;
  g_nsubs = 0;
  g_mods = mods;
  g_nmods = 0;
  g_started = 0;
  for (size_t i = 0; mods && mods[i]; i++) {
    const souk_module_t *m = mods[i];
    if (m->abi != SOUK_MODULE_ABI) {
      SOUK_ERROR("core", "module %s was built for module ABI %u, this souk has %u",
                 m->name ? m->name : "?", m->abi, SOUK_MODULE_ABI);
      return SOUK_EINVAL;
    }
    g_nmods++;
    for (const souk_event_handler_t *h = m->events; h && h->event; h++) {
      g_subs = souk_reallocarray(g_subs, g_nsubs + 1, sizeof *g_subs);
      g_subs[g_nsubs++] = (sub_t){h->event, h->fn, m};
    }
  }
  return 0;
}

int souk__modreg_start(void) {
  for (g_started = 0; g_started < g_nmods; g_started++) {
    const souk_module_t *m = g_mods[g_started];
    if (!m->init) continue;
    int rc = m->init();
    if (rc) {
      SOUK_ERROR("core", "module %s failed to start: %s", m->name, souk_strerror(rc));
      souk__modreg_stop();
      return rc;
    }
  }
  return 0;
}

void souk__modreg_stop(void) {
  while (g_started > 0) {
    const souk_module_t *m = g_mods[--g_started];
    if (m->shutdown) m->shutdown();
  }
}

void souk__modreg_reload(void) {
  for (size_t i = 0; i < g_started; i++)
    if (g_mods[i]->reload) g_mods[i]->reload();
}

void souk__dispatch(const souk_event_t *ev) {
  g_dispatched++;
  const char *name = ev->name;
  for (size_t i = 0; i < g_nsubs; i++) {
    const char *e = g_subs[i].event;
    if ((e[0] == '*' && e[1] == '\0') || (e[0] == name[0] && strcmp(e, name) == 0))
      g_subs[i].fn(ev);
  }
}

uint64_t souk__dispatch_count(void) { return g_dispatched; }

uint64_t souk_stats_events(void) { return g_dispatched; }

int souk_reply(const souk_event_t *ev, const char *text) {
  if (!ev || !text) return SOUK_EINVAL;
  if (!ev->reply) return SOUK_EINVAL;
  return ev->reply(ev, text, strlen(text));
}

static int (*g_reload_hook)(struct souk_buf *out);

void souk__set_reload_hook(int (*fn)(struct souk_buf *out)) { g_reload_hook = fn; }

int souk_conf_reload(struct souk_buf *out) {
  return g_reload_hook ? g_reload_hook(out) : SOUK_ENOTSUP;
}

static int (*g_set_hook)(const char *key, const char *value, uint64_t by_user, char *err,
                         size_t errcap);

void souk__set_conf_set_hook(int (*fn)(const char *key, const char *value, uint64_t by_user,
                                       char *err, size_t errcap)) {
  g_set_hook = fn;
}

int souk_conf_set(const char *key, const char *value, uint64_t by_user, char *err, size_t errcap) {
  if (!g_set_hook) {
    if (err && errcap) snprintf(err, errcap, "the configuration cannot change in this process");
    return SOUK_ENOTSUP;
  }
  return g_set_hook(key, value, by_user, err, errcap);
}
