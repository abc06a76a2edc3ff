/* The event dispatcher: every gateway (or console) event goes to the
 * handlers subscribed to its name, in the order their tables were added.
 * The module registry (src/app/modreg.c) adds a module's event table when
 * the module has started and removes it before the module stops. */
#include "core/core.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"

#include <stdio.h>
#include <string.h>

/* One subscription, flattened from the tables so dispatch is a scan of a
 * small array with a cheap first-byte check before strcmp. */
typedef struct sub {
  const char *event;
  souk_event_cb fn;
  const souk_event_handler_t *table;
} sub_t;

static sub_t *g_subs;
static size_t g_nsubs;
static uint64_t g_dispatched;

void souk__dispatch_add(const souk_event_handler_t *table) {
  for (const souk_event_handler_t *h = table; h && h->event; h++) {
    g_subs = souk_reallocarray(g_subs, g_nsubs + 1, sizeof *g_subs);
    g_subs[g_nsubs++] = (sub_t){h->event, h->fn, table};
  }
}

void souk__dispatch_remove(const souk_event_handler_t *table) {
  size_t k = 0;
  for (size_t i = 0; i < g_nsubs; i++)
    if (g_subs[i].table != table) g_subs[k++] = g_subs[i];
  g_nsubs = k;
  if (!g_nsubs) {
    souk_free(g_subs);
    g_subs = NULL;
  }
}

void souk__dispatch_clear(void) {
  souk_free(g_subs);
  g_subs = NULL;
  g_nsubs = 0;
  g_dispatched = 0;
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

static int (*g_shared_hook)(void);

void souk__set_conf_shared_hook(int (*fn)(void)) { g_shared_hook = fn; }

int souk_conf_shared(void) { return g_shared_hook ? g_shared_hook() : 0; }

int souk_conf_set(const char *key, const char *value, uint64_t by_user, char *err, size_t errcap) {
  if (!g_set_hook) {
    if (err && errcap) snprintf(err, errcap, "the configuration cannot change in this process");
    return SOUK_ENOTSUP;
  }
  return g_set_hook(key, value, by_user, err, errcap);
}
