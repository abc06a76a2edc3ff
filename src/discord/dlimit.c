/* The limits souk keeps itself (see dlimit.h). */
#include "discord/dlimit.h"

#include "discord/strmap.h"
#include "souk/alloc.h"
#include "souk/err.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- sliding window ------------------------------------------------------------ */

/* Drop events that left the window ending at now. */
static void wlim_expire(souk__wlim_t *w, uint64_t window_ms, uint64_t now) {
  size_t k = 0;
  while (k < w->n && w->at[k] + window_ms <= now)
    k++;
  if (k == 0) return;
  memmove(w->at, w->at + k, (w->n - k) * sizeof *w->at);
  w->n = (uint8_t)(w->n - k);
}

uint64_t souk__wlim_wait(const souk__wlim_t *w, unsigned limit, uint64_t window_ms, uint64_t now) {
  if (limit > SOUK__WLIM_MAX) limit = SOUK__WLIM_MAX;
  uint64_t wait = w->blocked_until > now ? w->blocked_until - now : 0;
  /* Events still inside the window, oldest first: with `limit` of them the
   * next is allowed when the oldest of the last `limit` leaves it. */
  size_t live = 0;
  for (size_t i = 0; i < w->n; i++)
    if (w->at[i] + window_ms > now) live++;
  if (live >= limit && limit > 0) {
    uint64_t oldest = w->at[w->n - limit];
    uint64_t free_at = oldest + window_ms;
    if (free_at > now && free_at - now > wait) wait = free_at - now;
  }
  return wait;
}

void souk__wlim_take(souk__wlim_t *w, unsigned limit, uint64_t window_ms, uint64_t now) {
  wlim_expire(w, window_ms, now);
  if (limit > SOUK__WLIM_MAX) limit = SOUK__WLIM_MAX;
  if (w->n == SOUK__WLIM_MAX || (limit > 0 && w->n >= limit)) {
    /* Full: the oldest no longer matters for a window of `limit`. */
    memmove(w->at, w->at + 1, (w->n - 1) * sizeof *w->at);
    w->n--;
  }
  w->at[w->n++] = now;
}

void souk__wlim_untake(souk__wlim_t *w, uint64_t at) {
  for (size_t i = w->n; i-- > 0;) {
    if (w->at[i] != at) continue;
    memmove(w->at + i, w->at + i + 1, (w->n - i - 1) * sizeof *w->at);
    w->n--;
    return;
  }
}

void souk__wlim_block(souk__wlim_t *w, uint64_t until) {
  if (until > w->blocked_until) w->blocked_until = until;
}

bool souk__wlim_idle(const souk__wlim_t *w, uint64_t window_ms, uint64_t now) {
  if (w->blocked_until > now) return false;
  for (size_t i = 0; i < w->n; i++)
    if (w->at[i] + window_ms > now) return false;
  return true;
}

/* ---- channel renames ----------------------------------------------------------- */

typedef struct rent {
  souk__smap_ent_t ent;
  souk__wlim_t w;
  char key[24];
} rent_t;

struct souk__rguard {
  souk__smap_t map;
};

souk__rguard_t *souk__rguard_new(void) { return souk_calloc(1, sizeof(souk__rguard_t)); }

void souk__rguard_free(souk__rguard_t *g) {
  if (!g) return;
  souk__smap_ent_t *e = souk__smap_next(&g->map, NULL);
  while (e) {
    souk__smap_ent_t *nx = souk__smap_next(&g->map, e);
    souk__smap_del(&g->map, e);
    souk_free(e);
    e = nx;
  }
  souk__smap_free(&g->map);
  souk_free(g);
}

static rent_t *rent_get(souk__rguard_t *g, uint64_t channel, bool create) {
  char key[24];
  snprintf(key, sizeof key, "%" PRIu64, channel);
  souk__smap_ent_t *e = souk__smap_get(&g->map, key);
  if (e || !create) return (rent_t *)e;
  rent_t *r = souk_calloc(1, sizeof *r);
  memcpy(r->key, key, sizeof key);
  souk__smap_put(&g->map, &r->ent, r->key);
  return r;
}

uint64_t souk__rguard_wait(souk__rguard_t *g, uint64_t channel, uint64_t now) {
  rent_t *r = rent_get(g, channel, false);
  return r ? souk__wlim_wait(&r->w, SOUK__RENAME_LIMIT, SOUK__RENAME_WINDOW_MS, now) : 0;
}

int souk__rguard_take(souk__rguard_t *g, uint64_t channel, uint64_t now, uint64_t *wait_ms) {
  rent_t *r = rent_get(g, channel, true);
  uint64_t wait = souk__wlim_wait(&r->w, SOUK__RENAME_LIMIT, SOUK__RENAME_WINDOW_MS, now);
  if (wait_ms) *wait_ms = wait;
  if (wait) return SOUK_ERATELIMIT;
  souk__wlim_take(&r->w, SOUK__RENAME_LIMIT, SOUK__RENAME_WINDOW_MS, now);
  return 0;
}

void souk__rguard_untake(souk__rguard_t *g, uint64_t channel, uint64_t at) {
  rent_t *r = rent_get(g, channel, false);
  if (r) souk__wlim_untake(&r->w, at);
}

void souk__rguard_block(souk__rguard_t *g, uint64_t channel, uint64_t until) {
  souk__wlim_block(&rent_get(g, channel, true)->w, until);
}

size_t souk__rguard_gc(souk__rguard_t *g, uint64_t now) {
  souk__smap_ent_t *e = souk__smap_next(&g->map, NULL);
  while (e) {
    souk__smap_ent_t *nx = souk__smap_next(&g->map, e);
    rent_t *r = (rent_t *)e;
    if (souk__wlim_idle(&r->w, SOUK__RENAME_WINDOW_MS, now)) {
      souk__smap_del(&g->map, e);
      souk_free(r);
    }
    e = nx;
  }
  return g->map.n;
}

/* ---- coalesced edits ----------------------------------------------------------- */

typedef struct centry {
  souk__smap_ent_t ent;
  uint64_t channel, message;
  uint32_t interval_ms;
  uint64_t last_sent; /* 0: never */
  bool inflight;
  bool gone;
  uint64_t gone_at;
  char *body; /* the latest state not yet sent, or NULL */
  size_t len;
  uint64_t version; /* the highest version put, 0: none */
  uint64_t put_at;  /* when a versioned state was last put */
  char key[24];
} centry_t;

struct souk__coal {
  souk__smap_t map;
  size_t max;
  souk__coal_send_cb send;
  void *ud;
  uint64_t sent, coalesced, stale;
};

souk__coal_t *souk__coal_new(size_t max_entries, souk__coal_send_cb send, void *ud) {
  souk__coal_t *c = souk_calloc(1, sizeof *c);
  c->max = max_entries ? max_entries : 1;
  c->send = send;
  c->ud = ud;
  return c;
}

static void centry_free(souk__coal_t *c, centry_t *e) {
  souk__smap_del(&c->map, &e->ent);
  souk_free(e->body);
  souk_free(e);
}

void souk__coal_free(souk__coal_t *c) {
  if (!c) return;
  souk__smap_ent_t *e = souk__smap_next(&c->map, NULL);
  while (e) {
    souk__smap_ent_t *nx = souk__smap_next(&c->map, e);
    centry_free(c, (centry_t *)e);
    e = nx;
  }
  souk__smap_free(&c->map);
  souk_free(c);
}

static centry_t *centry_get(const souk__coal_t *c, uint64_t message) {
  char key[24];
  snprintf(key, sizeof key, "%" PRIu64, message);
  return (centry_t *)souk__smap_get(&c->map, key);
}

/* When e's pending state may be sent (UINT64_MAX: not on time alone). */
static uint64_t centry_due(const centry_t *e) {
  if (!e->body || e->inflight || e->gone) return UINT64_MAX;
  return e->last_sent ? e->last_sent + e->interval_ms : 0;
}

/* Send e's pending state now. */
static void centry_send(souk__coal_t *c, centry_t *e, uint64_t now) {
  char *body = e->body;
  size_t len = e->len;
  e->body = NULL;
  e->inflight = true;
  e->last_sent = now;
  if (c->send(e->channel, e->message, body, len, c->ud) != 0) {
    /* Not sent: keep it for the next interval unless something newer
     * arrived meanwhile (the send function cannot add one, but be safe). */
    e->inflight = false;
    if (!e->body) {
      e->body = body;
      e->len = len;
      body = NULL;
    }
  } else {
    c->sent++;
  }
  souk_free(body);
}

/* Until when e must stay: while it may hold back an edit (its interval
 * after the last send), while it says the message is gone, and while its
 * version may still turn away an older state. */
static uint64_t centry_keep_until(const centry_t *e) {
  uint64_t keep = e->gone ? e->gone_at + SOUK__COAL_GONE_MS : e->last_sent + e->interval_ms;
  if (e->version && e->put_at + SOUK__COAL_VERSION_MS > keep)
    keep = e->put_at + SOUK__COAL_VERSION_MS;
  return keep;
}

/* Full: forget the idle entry that was put longest ago (one that only
 * remembers a version, or whose interval has passed).  True when one
 * was freed. */
static bool coal_evict_idle(souk__coal_t *c, uint64_t now) {
  centry_t *oldest = NULL;
  for (souk__smap_ent_t *it = souk__smap_next(&c->map, NULL); it;
       it = souk__smap_next(&c->map, it)) {
    centry_t *e = (centry_t *)it;
    if (e->body || e->inflight || e->gone || e->last_sent + e->interval_ms > now) continue;
    if (!oldest || e->put_at < oldest->put_at) oldest = e;
  }
  if (oldest) centry_free(c, oldest);
  return oldest != NULL;
}

int souk__coal_put(souk__coal_t *c, uint64_t channel, uint64_t message, const char *body,
                   size_t len, uint32_t interval_ms, uint64_t now) {
  return souk__coal_put_v(c, channel, message, body, len, interval_ms, 0, now);
}

int souk__coal_put_v(souk__coal_t *c, uint64_t channel, uint64_t message, const char *body,
                     size_t len, uint32_t interval_ms, uint64_t version, uint64_t now) {
  centry_t *e = centry_get(c, message);
  if (e && e->gone) return SOUK_ENOTFOUND;
  if (e && version && version <= e->version) {
    c->stale++;
    return 0;
  }
  if (!e) {
    if (c->map.n >= c->max && !coal_evict_idle(c, now)) return SOUK_EFULL;
    e = souk_calloc(1, sizeof *e);
    snprintf(e->key, sizeof e->key, "%" PRIu64, message);
    e->message = message;
    souk__smap_put(&c->map, &e->ent, e->key);
  }
  e->channel = channel;
  e->interval_ms = interval_ms;
  if (version) {
    e->version = version;
    e->put_at = now;
  }
  if (e->body) c->coalesced++;
  souk_free(e->body);
  e->body = souk_memdup0(body, len);
  e->len = len;
  if (centry_due(e) <= now) centry_send(c, e, now);
  return 0;
}

void souk__coal_done(souk__coal_t *c, uint64_t message, bool gone, uint64_t now) {
  centry_t *e = centry_get(c, message);
  if (!e) return;
  e->inflight = false;
  /* The interval runs from the answer, not from when the edit was handed
   * to the REST queue: an edit that waited there (a bucket, the global
   * limit) would otherwise reach Discord less than an interval before the
   * next one. */
  if (now > e->last_sent) e->last_sent = now;
  if (gone) {
    e->gone = true;
    e->gone_at = now;
    souk_free(e->body);
    e->body = NULL;
  }
}

uint64_t souk__coal_pump(souk__coal_t *c, uint64_t now) {
  uint64_t next = UINT64_MAX;
  souk__smap_ent_t *it = souk__smap_next(&c->map, NULL);
  while (it) {
    souk__smap_ent_t *nx = souk__smap_next(&c->map, it);
    centry_t *e = (centry_t *)it;
    uint64_t due = centry_due(e);
    if (due <= now) {
      centry_send(c, e, now);
      due = centry_due(e);
    }
    if (due < next) next = due;
    /* An entry stays while it may still hold back an edit: until its
     * interval after the last send has passed (or, gone, for a while),
     * and while its version may turn away an older state. */
    uint64_t keep_until = centry_keep_until(e);
    if (!e->body && !e->inflight && keep_until <= now) {
      centry_free(c, e);
    } else if (!e->body && !e->inflight && keep_until < next) {
      next = keep_until;
    }
    it = nx;
  }
  return next;
}

size_t souk__coal_size(const souk__coal_t *c) { return c->map.n; }

uint64_t souk__coal_stale(const souk__coal_t *c) { return c->stale; }

void souk__coal_counts(const souk__coal_t *c, uint64_t *sent, uint64_t *coalesced) {
  if (sent) *sent = c->sent;
  if (coalesced) *coalesced = c->coalesced;
}
