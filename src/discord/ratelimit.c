/* Discord REST rate-limit bookkeeping.  See ratelimit.h for the rules; this
 * file says how they are kept. */
#include "discord/ratelimit.h"

#include "discord/snowflake.h"
#include "discord/strmap.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/json.h"
#include "souk/log.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "ratelimit"
/* Deleting a message older than two weeks has a bucket of its own. */
#define OLD_MESSAGE_MS (14ull * 24 * 3600 * 1000)
/* Routes are worth remembering longer than buckets: they are few (bounded
 * by the code's routes), and forgetting one serialises it again. */
#define ROUTE_IDLE_FACTOR 12
/* With nothing better to go on (no Reset-After, no Retry-After), wait this. */
#define FALLBACK_WAIT_MS 1000
/* X-RateLimit-Reset values this close name the same window. */
#define WINDOW_SLACK_MS 20

/* What souk__rl_route learnt about one route key. */
typedef struct rl_route {
  souk__smap_ent_t ent;
  char *hash;        /* NULL: unknown; "": responses carry no bucket (no limit) */
  uint32_t inflight; /* tickets holding this route */
  uint64_t last_used;
  char key[];
} rl_route_t;

/* One bucket instance: a hash (or, until it is known, a route) plus a major
 * parameter value. */
typedef struct rl_bucket {
  souk__smap_ent_t ent;
  bool known; /* limit/remaining seen in a response */
  int64_t limit;
  int64_t remaining;      /* as of the last response, not counting in-flight */
  uint64_t reset_at;      /* clock ms the window resets; 0: unknown */
  uint64_t window;        /* X-RateLimit-Reset in Unix ms: identifies a window */
  uint64_t blocked_until; /* a 429 on this bucket lifts at this clock ms */
  uint32_t inflight;      /* reservations not yet given back */
  uint64_t last_used;
  size_t major_off; /* where the major value starts in key */
  char key[];
} rl_bucket_t;

struct souk__rl {
  souk__rl_conf_t conf;
  souk_clock_t clock;
  souk__smap_t routes;
  souk__smap_t buckets;
  uint64_t next_sweep;
  /* Global limit: the backend's decision, and a global 429's end. */
  souk__rl_global_t global;
  uint64_t global_until;
  /* Invalid requests: a ring of per-slot counts covering the window plus
   * one slot, so an event is forgotten no sooner than window_ms after it. */
  struct inv_slot {
    uint64_t id;
    uint32_t count;
  } * inv;
  size_t inv_ring; /* slots in the ring: window / slot + 1 */
  uint64_t inv_slot_ms;
  uint64_t inv_low; /* lowest slot id that may still hold counts */
  uint32_t inv_total;
  bool inv_tripped;
  uint64_t r429[4];
};

/* ---- parsing ----------------------------------------------------------- */

int souk__rl_secs_ms(const char *s, size_t n, uint64_t *ms) {
  if (!s) return SOUK_EINVAL;
  while (n && isspace((unsigned char)*s))
    s++, n--;
  while (n && isspace((unsigned char)s[n - 1]))
    n--;
  if (n == 0 || n > 40) return SOUK_EINVAL;
  if (memchr(s, 'e', n) || memchr(s, 'E', n)) {
    char buf[48];
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + n || !isfinite(v) || v < 0 || v > 1e9) return SOUK_EINVAL;
    /* The small epsilon absorbs binary error so 5.37e-1 is 537, not 538. */
    *ms = (uint64_t)ceil(v * 1000.0 - 1e-6);
    return 0;
  }
  size_t i = 0, idig = 0, fdig = 0;
  uint64_t whole = 0, frac = 0;
  bool more = false;
  for (; i < n && isdigit((unsigned char)s[i]); i++, idig++) {
    if (idig >= 10) return SOUK_EINVAL; /* over 300 years */
    whole = whole * 10 + (uint64_t)(s[i] - '0');
  }
  if (i < n && s[i] == '.') {
    for (i++; i < n && isdigit((unsigned char)s[i]); i++, fdig++) {
      if (fdig < 3)
        frac = frac * 10 + (uint64_t)(s[i] - '0');
      else if (s[i] != '0')
        more = true;
    }
  }
  if (i != n || idig + fdig == 0) return SOUK_EINVAL;
  for (size_t k = fdig; k < 3; k++)
    frac *= 10;
  *ms = whole * 1000 + frac + (more ? 1 : 0);
  return 0;
}

static int parse_i64(const char *s, int64_t *out) {
  if (!s) return SOUK_EINVAL;
  while (isspace((unsigned char)*s))
    s++;
  if (!isdigit((unsigned char)*s) && *s != '-') return SOUK_EINVAL;
  char *end;
  long long v = strtoll(s, &end, 10);
  while (isspace((unsigned char)*end))
    end++;
  if (*end || v < -1000000000LL || v > 1000000000LL) return SOUK_EINVAL;
  *out = v;
  return 0;
}

static int secs_str(const char *s, uint64_t *ms) {
  return s ? souk__rl_secs_ms(s, strlen(s), ms) : SOUK_EINVAL;
}

/* ---- routes ------------------------------------------------------------ */

static bool all_digits(const char *s, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i])) return false;
  return true;
}

static bool seg_is(const char *s, size_t n, const char *lit) {
  return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* Append to a fixed buffer; false when it would not fit. */
static bool put(char *buf, size_t cap, size_t *pos, const char *s, size_t n) {
  if (*pos + n + 1 > cap) return false;
  memcpy(buf + *pos, s, n);
  *pos += n;
  buf[*pos] = '\0';
  return true;
}

int souk__rl_route(const char *method, const char *path, uint64_t unix_now_ms,
                  souk__rl_route_t *out) {
  if (!method || !*method || !path || path[0] != '/') return SOUK_EINVAL;
  memset(out, 0, sizeof *out);
  size_t kp = 0, mp = 0;
  for (const char *m = method; *m; m++) {
    if (!isalpha((unsigned char)*m) || kp + 2 >= sizeof out->key) return SOUK_EINVAL;
    out->key[kp++] = (char)toupper((unsigned char)*m);
  }
  out->key[kp++] = ' ';
  out->key[kp] = '\0';

  size_t plen = strcspn(path, "?#");
  struct {
    const char *s;
    size_t n;
  } seg[32];
  size_t nseg = 0;
  for (size_t i = 1; i <= plen;) {
    size_t e = i;
    while (e < plen && path[e] != '/')
      e++;
    if (nseg == sizeof seg / sizeof *seg) return SOUK_ETOOBIG;
    seg[nseg].s = path + i;
    seg[nseg].n = e - i;
    nseg++;
    i = e + 1;
  }
  /* "/" alone splits into one empty segment, which is what we want. */
  const char *s0 = nseg ? seg[0].s : "";
  size_t n0 = nseg ? seg[0].n : 0;
  bool webhook = seg_is(s0, n0, "webhooks");
  bool interaction = seg_is(s0, n0, "interactions");
  bool major_res = seg_is(s0, n0, "channels") || seg_is(s0, n0, "guilds") || webhook || interaction;
  for (size_t i = 0; i < nseg; i++) {
    const char *s = seg[i].s;
    size_t n = seg[i].n;
    const char *rep = NULL;
    bool digits = all_digits(s, n);
    const char *prev = i ? seg[i - 1].s : "";
    size_t prevn = i ? seg[i - 1].n : 0;
    if (i == 1 && major_res && digits) {
      if (n + n0 + 2 > sizeof out->major) return SOUK_ETOOBIG;
      put(out->major, sizeof out->major, &mp, s0, n0);
      put(out->major, sizeof out->major, &mp, "/", 1);
      put(out->major, sizeof out->major, &mp, s, n);
      rep = "{id}";
    } else if (i == 2 && (webhook || interaction) && mp) {
      /* A webhook's token is part of its major parameter, but a token is a
       * secret: keep a fingerprint of it, never the token itself. */
      if (webhook) {
        char fp[24];
        int fl = snprintf(fp, sizeof fp, "/%016llx", (unsigned long long)souk__fnv1a(s, n));
        if (!put(out->major, sizeof out->major, &mp, fp, (size_t)fl)) return SOUK_ETOOBIG;
      }
      rep = "{token}";
    } else if (seg_is(prev, prevn, "reactions") && n) {
      rep = "{emoji}";
    } else if ((seg_is(prev, prevn, "invites") || seg_is(prev, prevn, "templates")) && n &&
               !digits) {
      rep = "{code}";
    } else if (digits) {
      rep = "{id}";
    }
    if (!put(out->key, sizeof out->key, &kp, "/", 1)) return SOUK_ETOOBIG;
    if (rep ? !put(out->key, sizeof out->key, &kp, rep, strlen(rep))
            : !put(out->key, sizeof out->key, &kp, s, n))
      return SOUK_ETOOBIG;
  }
  if (interaction && nseg == 4 && seg_is(seg[3].s, seg[3].n, "callback")) out->global_exempt = true;
  if (strcmp(out->key, "DELETE /channels/{id}/messages/{id}") == 0) {
    char id[24];
    if (seg[3].n < sizeof id) {
      memcpy(id, seg[3].s, seg[3].n);
      id[seg[3].n] = '\0';
      uint64_t mid;
      if (souk__snowflake_parse(id, &mid) == 0 &&
          unix_now_ms > souk__snowflake_unix_ms(mid) + OLD_MESSAGE_MS &&
          !put(out->key, sizeof out->key, &kp, " (old)", 6))
        return SOUK_ETOOBIG;
    }
  }
  return 0;
}

/* ---- tables ------------------------------------------------------------ */

static rl_route_t *route_get(souk__rl_t *rl, const char *key, bool create) {
  souk__smap_ent_t *e = souk__smap_get(&rl->routes, key);
  if (e) return (rl_route_t *)e;
  if (!create) return NULL;
  size_t n = strlen(key);
  rl_route_t *r = souk_calloc(1, sizeof *r + n + 1);
  memcpy(r->key, key, n + 1);
  souk__smap_put(&rl->routes, &r->ent, r->key);
  return r;
}

static void route_free(souk__rl_t *rl, rl_route_t *r) {
  souk__smap_del(&rl->routes, &r->ent);
  souk_free(r->hash);
  souk_free(r);
}

/* The key of the bucket a request on route r with major value major uses:
 * "b:<hash>:<major>" once the hash is known, "r:<route>:<major>" before. */
static size_t bucket_key(const rl_route_t *r, const char *major, char *buf, size_t cap,
                         size_t *major_off) {
  int n;
  if (r->hash && *r->hash)
    n = snprintf(buf, cap, "b:%s:", r->hash);
  else
    n = snprintf(buf, cap, "r:%s:", r->key);
  SOUK_ASSERT(n > 0 && (size_t)n < cap);
  *major_off = (size_t)n;
  int m = snprintf(buf + n, cap - (size_t)n, "%s", major);
  SOUK_ASSERT(m >= 0 && (size_t)(n + m) < cap);
  return (size_t)(n + m);
}

static rl_bucket_t *bucket_get(souk__rl_t *rl, const rl_route_t *r, const char *major,
                               bool create) {
  char key[SOUK_RL_KEY_MAX + SOUK_RL_MAJOR_MAX + 80];
  size_t moff;
  size_t n = bucket_key(r, major, key, sizeof key, &moff);
  souk__smap_ent_t *e = souk__smap_get(&rl->buckets, key);
  if (e) return (rl_bucket_t *)e;
  if (!create) return NULL;
  rl_bucket_t *b = souk_calloc(1, sizeof *b + n + 1);
  memcpy(b->key, key, n + 1);
  b->major_off = moff;
  souk__smap_put(&rl->buckets, &b->ent, b->key);
  return b;
}

static void bucket_free(souk__rl_t *rl, rl_bucket_t *b) {
  souk__smap_del(&rl->buckets, &b->ent);
  souk_free(b);
}

/* ---- the in-process global limit ---------------------------------------- */

/* A generic cell rate algorithm in microseconds: the "theoretical arrival
 * time" tat advances by the emission interval with every request, and a
 * request may go once tat is at most tolerance ahead of now.  Strict
 * spacing (tolerance 0) is what keeps arrivals spread in the server's
 * windows; ms clock values make the spacing exact to a millisecond. */
typedef struct rl_gcra {
  uint64_t interval_us;
  uint64_t tolerance_us;
  uint64_t tat_us;
} rl_gcra_t;

static uint64_t gcra_wait(void *self, uint64_t now_ms) {
  const rl_gcra_t *g = self;
  uint64_t now = now_ms * 1000;
  if (g->tat_us <= now + g->tolerance_us) return 0;
  return (g->tat_us - now - g->tolerance_us + 999) / 1000;
}

static void gcra_take(void *self, uint64_t now_ms) {
  rl_gcra_t *g = self;
  uint64_t now = now_ms * 1000;
  g->tat_us = (g->tat_us > now ? g->tat_us : now) + g->interval_us;
}

static void gcra_destroy(void *self) { souk_free(self); }

static const souk__rl_global_ops_t gcra_ops = {
    .wait = gcra_wait, .take = gcra_take, .blocked = NULL, .destroy = gcra_destroy};

int souk__rl_global_local(uint32_t per_s, uint32_t margin, uint32_t burst, souk__rl_global_t *out) {
  if (!out || per_s == 0 || margin >= per_s) return SOUK_EINVAL;
  rl_gcra_t *g = souk_calloc(1, sizeof *g);
  g->interval_us = 1000000 / (per_s - margin);
  if (g->interval_us == 0) g->interval_us = 1;
  g->tolerance_us = burst > 1 ? (uint64_t)(burst - 1) * g->interval_us : 0;
  out->ops = &gcra_ops;
  out->self = g;
  return 0;
}

souk__rl_t *souk__rl_new(const souk__rl_conf_t *conf, const souk_clock_t *clock) {
  souk__rl_t *rl = souk_calloc(1, sizeof *rl);
  if (conf) rl->conf = *conf;
  if (!rl->conf.global_per_s) rl->conf.global_per_s = 50;
  if (rl->conf.global_margin >= rl->conf.global_per_s) rl->conf.global_margin = 0;
  if (rl->conf.global) {
    rl->global = *rl->conf.global;
  } else {
    int rc = souk__rl_global_local(rl->conf.global_per_s, rl->conf.global_margin,
                                  rl->conf.global_burst, &rl->global);
    SOUK_ASSERT(rc == 0);
  }
  rl->conf.global = NULL; /* owned through rl->global from here */
  if (!rl->conf.invalid_limit) rl->conf.invalid_limit = 5000;
  if (!rl->conf.invalid_window_ms) rl->conf.invalid_window_ms = 600000;
  if (!rl->conf.idle_ms) rl->conf.idle_ms = 300000;
  rl->clock = clock ? *clock : souk_clock_mono;
  /* 600 slots whatever the window: one second each for Discord's ten
   * minutes, finer for the short windows tests use. */
  rl->inv_slot_ms = rl->conf.invalid_window_ms / 600;
  if (rl->inv_slot_ms == 0) rl->inv_slot_ms = 1;
  rl->inv_ring = (size_t)((rl->conf.invalid_window_ms + rl->inv_slot_ms - 1) / rl->inv_slot_ms) + 1;
  rl->inv = souk_calloc(rl->inv_ring, sizeof *rl->inv);
  rl->next_sweep = rl->clock.now_ms(rl->clock.ud) + rl->conf.idle_ms / 4;
  return rl;
}

void souk__rl_free(souk__rl_t *rl) {
  if (!rl) return;
  souk__smap_ent_t *e, *n;
  for (e = souk__smap_next(&rl->buckets, NULL); e; e = n) {
    n = souk__smap_next(&rl->buckets, e);
    bucket_free(rl, (rl_bucket_t *)e);
  }
  for (e = souk__smap_next(&rl->routes, NULL); e; e = n) {
    n = souk__smap_next(&rl->routes, e);
    route_free(rl, (rl_route_t *)e);
  }
  souk__smap_free(&rl->buckets);
  souk__smap_free(&rl->routes);
  if (rl->global.ops) rl->global.ops->destroy(rl->global.self);
  souk_free(rl->inv);
  souk_free(rl);
}

/* ---- invalid-request window ------------------------------------------- */

static void inv_expire(souk__rl_t *rl, uint64_t now) {
  uint64_t cur = now / rl->inv_slot_ms;
  uint64_t alive = rl->inv_ring; /* slots cur-ring+1 .. cur are alive */
  if (cur + 1 < alive) return;
  uint64_t first_alive = cur + 1 - alive;
  if (first_alive <= rl->inv_low) return;
  if (first_alive - rl->inv_low >= rl->inv_ring) {
    memset(rl->inv, 0, rl->inv_ring * sizeof *rl->inv);
    rl->inv_total = 0;
  } else {
    for (uint64_t id = rl->inv_low; id < first_alive; id++) {
      struct inv_slot *s = &rl->inv[id % rl->inv_ring];
      if (s->id == id) {
        rl->inv_total -= s->count;
        s->count = 0;
      }
    }
  }
  rl->inv_low = first_alive;
}

static void inv_add(souk__rl_t *rl, uint64_t now) {
  inv_expire(rl, now);
  uint64_t cur = now / rl->inv_slot_ms;
  struct inv_slot *s = &rl->inv[cur % rl->inv_ring];
  if (s->id != cur) {
    rl->inv_total -= s->count;
    s->id = cur;
    s->count = 0;
  }
  s->count++;
  rl->inv_total++;
}

/* True (and *wait set to when it lifts) while the budget is spent.  Logs
 * the trip and the recovery once each. */
static bool inv_blocked(souk__rl_t *rl, uint64_t now, uint64_t *wait) {
  inv_expire(rl, now);
  if (rl->inv_total < rl->conf.invalid_limit) {
    if (rl->inv_tripped) {
      rl->inv_tripped = false;
      SOUK_INFO(COMP, "invalid requests back to %u in the last %llu s: REST requests resume",
                rl->inv_total, (unsigned long long)(rl->conf.invalid_window_ms / 1000));
    }
    return false;
  }
  if (!rl->inv_tripped) {
    rl->inv_tripped = true;
    SOUK_ERROR(COMP,
               "%u invalid requests (401/403/429) in the last %llu s reached "
               "rest.invalid_limit=%u: refusing REST requests until the window slides "
               "(Discord bans the IP at 10000); check the token and the bot's permissions",
               rl->inv_total, (unsigned long long)(rl->conf.invalid_window_ms / 1000),
               rl->conf.invalid_limit);
  }
  if (wait) {
    uint64_t cur = now / rl->inv_slot_ms, acc = 0;
    *wait = rl->conf.invalid_window_ms;
    for (uint64_t id = rl->inv_low; id <= cur; id++) {
      const struct inv_slot *s = &rl->inv[id % rl->inv_ring];
      if (s->id != id) continue;
      acc += s->count;
      if (rl->inv_total - acc < rl->conf.invalid_limit) {
        uint64_t gone = (id + rl->inv_ring) * rl->inv_slot_ms;
        *wait = gone > now ? gone - now : 1;
        break;
      }
    }
  }
  return true;
}

bool souk__rl_blocked(souk__rl_t *rl) {
  return inv_blocked(rl, rl->clock.now_ms(rl->clock.ud), NULL);
}

/* ---- deciding ---------------------------------------------------------- */

/* 0 when b allows one more request now, else the wait. */
static uint64_t bucket_wait(const rl_route_t *r, rl_bucket_t *b, uint64_t now) {
  if (b->blocked_until > now) return b->blocked_until - now;
  if (r->hash && !*r->hash) return 0; /* this route has no bucket limit */
  if (!b->known) return b->inflight ? SOUK_RL_WAIT_EVENT : 0;
  if (b->reset_at && now >= b->reset_at) {
    /* The window is over: the server refilled it.  Its next reset is
     * unknown until a response in the new window says. */
    b->remaining = b->limit;
    b->reset_at = 0;
  }
  if (b->remaining - (int64_t)b->inflight > 0) return 0;
  if (b->reset_at) return b->reset_at - now;
  if (b->inflight) return SOUK_RL_WAIT_EVENT;
  /* Exhausted with no reset known and nothing in flight to tell us: wait a
   * little rather than guess the window is over. */
  b->reset_at = now + FALLBACK_WAIT_MS;
  return FALLBACK_WAIT_MS;
}

static uint64_t global_wait(const souk__rl_t *rl, uint64_t now) {
  if (rl->global_until > now) return rl->global_until - now;
  return rl->global.ops->wait(rl->global.self, now);
}

static void global_take(souk__rl_t *rl, uint64_t now) {
  rl->global.ops->take(rl->global.self, now);
}

static int decide(souk__rl_t *rl, const souk__rl_route_t *r, souk__rl_ticket_t *t,
                  uint64_t *wait_ms) {
  uint64_t now = rl->clock.now_ms(rl->clock.ud), w = 0;
  if (wait_ms) *wait_ms = 0;
  if (t && now >= rl->next_sweep) {
    souk__rl_sweep(rl);
    rl->next_sweep = now + rl->conf.idle_ms / 4;
  }
  if (inv_blocked(rl, now, &w)) {
    if (wait_ms) *wait_ms = w;
    return SOUK_ERATELIMIT;
  }
  rl_route_t *route = route_get(rl, r->key, t != NULL);
  rl_bucket_t *b = route ? bucket_get(rl, route, r->major, t != NULL) : NULL;
  if (b) {
    b->last_used = now;
    route->last_used = now;
    w = bucket_wait(route, b, now);
  } /* else: a bucket never seen, so one request may go. */
  if (!w && !r->global_exempt) w = global_wait(rl, now);
  if (w) {
    if (wait_ms) *wait_ms = w;
    return SOUK_EBUSY;
  }
  if (t) {
    b->inflight++;
    route->inflight++;
    if (!r->global_exempt) global_take(rl, now);
    t->route = route;
    t->bucket = b;
  }
  return 0;
}

int souk__rl_acquire(souk__rl_t *rl, const souk__rl_route_t *r, souk__rl_ticket_t *t,
                    uint64_t *wait_ms) {
  SOUK_ASSERT(t);
  memset(t, 0, sizeof *t);
  return decide(rl, r, t, wait_ms);
}

int souk__rl_when(souk__rl_t *rl, const souk__rl_route_t *r, uint64_t *wait_ms) {
  return decide(rl, r, NULL, wait_ms);
}

void souk__rl_release(souk__rl_t *rl, souk__rl_ticket_t *t) {
  if (!t->bucket) return;
  SOUK_ASSERT(t->bucket->inflight > 0 && t->route->inflight > 0);
  t->bucket->inflight--;
  t->route->inflight--;
  /* The global slot stays spent: a shared backend may already have
   * counted it, and one conservative slot costs one spacing interval. */
  memset(t, 0, sizeof *t);
}

/* ---- recording --------------------------------------------------------- */

static bool valid_hash(const char *h) {
  size_t n = strlen(h);
  if (n == 0 || n > 64) return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '_') return false;
  return true;
}

/* Apply X-RateLimit-Limit/Remaining/Reset-After/Reset to b. */
static void apply_headers(const souk__rl_t *rl, rl_bucket_t *b, const souk__rl_resp_t *resp,
                          uint64_t now) {
  int64_t limit = 0, rem = 0;
  bool have_limit = parse_i64(resp->limit, &limit) == 0 && limit > 0;
  if (parse_i64(resp->remaining, &rem) != 0) return;
  if (rem < 0) rem = 0;
  uint64_t ms = 0, reset_at = 0, window = 0;
  if (secs_str(resp->reset_after, &ms) == 0) reset_at = now + ms;
  if (secs_str(resp->reset, &window) == 0) {
    /* X-RateLimit-Reset (Unix seconds, read as ms) names the window; it
     * gives the time only when Reset-After is missing, since wall clocks
     * drift and Reset-After does not depend on them. */
    if (!reset_at) reset_at = now + (window > resp->unix_now_ms ? window - resp->unix_now_ms : 0);
  } else {
    window = 0;
  }
  /* Servers that compute Reset per response jitter by a few ms; within
   * WINDOW_SLACK_MS two values name the same window. */
  if (window && b->window && window + WINDOW_SLACK_MS < b->window) return; /* older */
  if (window && b->window && window <= b->window + WINDOW_SLACK_MS) {
    /* The same window: a response overtaken by a later one must not raise
     * remaining again.  If we already rolled past it locally, it is stale. */
    if (b->reset_at) {
      if (rem < b->remaining) b->remaining = rem;
      if (reset_at > b->reset_at) b->reset_at = reset_at;
    }
  } else if (!window && b->known && b->reset_at > now) {
    if (rem < b->remaining) b->remaining = rem;
    if (reset_at > b->reset_at) b->reset_at = reset_at;
  } else {
    b->remaining = rem;
    b->reset_at = reset_at;
    b->window = window;
  }
  if (have_limit)
    b->limit = limit;
  else if (!b->known || b->limit < rem)
    b->limit = rem > 0 ? rem : 1;
  b->known = true;
  if (b->remaining <= 0 && !b->reset_at) b->reset_at = now + FALLBACK_WAIT_MS;
}

static bool has_limit_headers(const souk__rl_resp_t *resp) {
  return resp->bucket || resp->limit || resp->remaining || resp->reset_after || resp->reset;
}

void souk__rl_record(souk__rl_t *rl, souk__rl_ticket_t *t, const souk__rl_resp_t *resp,
                    souk__rl_verdict_t *out) {
  souk__rl_verdict_t v = {0};
  rl_bucket_t *b = t->bucket;
  rl_route_t *r = t->route;
  SOUK_ASSERT(b && r && b->inflight > 0 && r->inflight > 0);
  b->inflight--;
  r->inflight--;
  memset(t, 0, sizeof *t);
  uint64_t now = rl->clock.now_ms(rl->clock.ud);
  b->last_used = r->last_used = now;

  if (resp->status <= 0) {
    /* No response: the server may still have counted the request. */
    if (b->known && b->remaining > 0) b->remaining--;
    if (b->known && b->remaining <= 0 && !b->reset_at) b->reset_at = now + FALLBACK_WAIT_MS;
    if (out) *out = v;
    return;
  }

  rl_bucket_t *target = b;
  if (resp->bucket && valid_hash(resp->bucket)) {
    if (!r->hash || strcmp(r->hash, resp->bucket) != 0) {
      SOUK_DEBUG(COMP, "route \"%s\" uses bucket %s", r->key, resp->bucket);
      souk_free(r->hash);
      r->hash = souk_strdup(resp->bucket);
    }
    target = bucket_get(rl, r, b->key + b->major_off, true);
    target->last_used = now;
  } else if (!r->hash && resp->status >= 200 && resp->status < 300 && !has_limit_headers(resp)) {
    /* A success without any rate-limit header: this route has no bucket,
     * so stop serialising it.  Errors prove nothing (proxies strip them). */
    r->hash = souk_strdup("");
  }
  apply_headers(rl, target, resp, now);

  if (resp->status == 429) {
    uint64_t wait = 0;
    bool have_wait = false, body_global = false;
    if (resp->body && resp->body_len) {
      souk_json_t j = {0};
      if (souk_json_parse(&j, resp->body, resp->body_len) == 0 &&
          souk_json_type(&j, 0) == SOUK_JSON_OBJECT) {
        int ra = souk_json_get(&j, 0, "retry_after");
        size_t n;
        const char *txt =
            souk_json_type(&j, ra) == SOUK_JSON_NUMBER ? souk_json_raw(&j, ra, &n) : NULL;
        if (txt && souk__rl_secs_ms(txt, n, &wait) == 0) have_wait = true;
        bool g = false;
        if (souk_json_bool(&j, souk_json_get(&j, 0, "global"), &g) == 0) body_global = g;
      }
      souk_json_free(&j);
    }
    /* The body's float is the precise figure; Retry-After may be rounded
     * to whole seconds. */
    if (!have_wait && secs_str(resp->retry_after, &wait) == 0) have_wait = true;
    if (!have_wait && secs_str(resp->reset_after, &wait) == 0) have_wait = true;
    if (!have_wait) wait = FALLBACK_WAIT_MS;
    const char *scope = resp->scope;
    bool global = body_global || (resp->global && strcasecmp(resp->global, "true") == 0) ||
                  (scope && strcasecmp(scope, "global") == 0);
    if (!global && !scope && !resp->bucket && !has_limit_headers(resp) && resp->body_len &&
        resp->body[0] != '{') {
      /* A 429 with no Discord headers and no JSON comes from Cloudflare in
       * front of the whole API: treat it as global. */
      global = true;
    }
    if (global) {
      v.scope = SOUK_RL_SCOPE_GLOBAL;
      if (now + wait > rl->global_until) rl->global_until = now + wait;
      if (rl->global.ops->blocked) rl->global.ops->blocked(rl->global.self, rl->global_until);
    } else {
      v.scope =
          (scope && strcasecmp(scope, "shared") == 0) ? SOUK_RL_SCOPE_SHARED : SOUK_RL_SCOPE_USER;
      if (now + wait > target->blocked_until) target->blocked_until = now + wait;
      if (target != b && now + wait > b->blocked_until) b->blocked_until = now + wait;
    }
    v.retry = true;
    v.wait_ms = wait;
    rl->r429[v.scope]++;
  }
  /* Discord's invalid-request ban counts 401, 403 and 429 except 429s of
   * scope shared (another client exhausted a shared resource); we count
   * exactly what Discord counts. */
  if (resp->status == 401 || resp->status == 403 ||
      (resp->status == 429 && v.scope != SOUK_RL_SCOPE_SHARED)) {
    v.invalid = true;
    inv_add(rl, now);
    inv_blocked(rl, now, NULL);
  }
  if (out) *out = v;
}

/* ---- housekeeping ------------------------------------------------------ */

size_t souk__rl_sweep(souk__rl_t *rl) {
  uint64_t now = rl->clock.now_ms(rl->clock.ud);
  uint64_t idle = rl->conf.idle_ms;
  size_t freed = 0;
  souk__smap_ent_t *e, *n;
  for (e = souk__smap_next(&rl->buckets, NULL); e; e = n) {
    n = souk__smap_next(&rl->buckets, e);
    rl_bucket_t *b = (rl_bucket_t *)e;
    /* Keep a bucket that still restrains someone: one in use, blocked by a
     * 429, or exhausted until a reset yet to come. */
    if (b->inflight || b->blocked_until > now || now - b->last_used < idle) continue;
    if (b->known && b->reset_at > now && b->remaining <= 0) continue;
    bucket_free(rl, b);
    freed++;
  }
  for (e = souk__smap_next(&rl->routes, NULL); e; e = n) {
    n = souk__smap_next(&rl->routes, e);
    rl_route_t *r = (rl_route_t *)e;
    if (r->inflight || now - r->last_used < idle * ROUTE_IDLE_FACTOR) continue;
    route_free(rl, r);
    freed++;
  }
  return freed;
}

void souk__rl_stats(souk__rl_t *rl, souk__rl_stats_t *out) {
  uint64_t now = rl->clock.now_ms(rl->clock.ud);
  memset(out, 0, sizeof *out);
  out->buckets = rl->buckets.n;
  out->routes = rl->routes.n;
  out->invalid_tripped = inv_blocked(rl, now, NULL);
  out->invalid_count = rl->inv_total;
  memcpy(out->r429, rl->r429, sizeof out->r429);
  out->global_until_ms = rl->global_until > now ? rl->global_until : 0;
}
