/* Discord REST client: per-route queues in front of the rate limiter and
 * the HTTP client, with one timer for the earliest wake-up.
 *
 * A request lives in exactly one place at a time: a queue (waiting for the
 * limiter, or for its retry back-off), the in-flight list (an HTTP request
 * is out), or the fail list (about to be completed with an error from the
 * pump, outside any iteration over the queues).  The pump walks the queues
 * that hold requests, asks the limiter about each head and sends what it
 * may; everything that changes what the limiter would say (a response, a
 * new request, a deadline) schedules the pump through the timer. */
#include "discord/rest.h"

#include "discord/dconf.h"
#include "cache/cacheconf.h"
#include "discord/ratelimit.h"
#include "discord/rlshared.h"
#include "ops/cluster.h"
#include "discord/strmap.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#ifndef SOUK_VERSION
#define SOUK_VERSION "0.0.0"
#endif

#define COMP                   "rest"
#define DEFAULT_API_BASE       "https://discord.com/api/v10"
#define MAX_RESPONSE_BYTES     (32u << 20)
#define MAX_ROUTE_STATS        512
#define AUDIT_REASON_MAX_CHARS 512
/* With requests queued but no deadline known (they wait for responses),
 * look again this often anyway, so no bookkeeping slip can stall a queue. */
#define SAFETY_PUMP_MS 1000

souk__rest_tune_t souk__rest_tune = {500, 30000, 8};

typedef struct rest_queue rest_queue_t;

typedef struct rest_req {
  struct rest_req *prev, *next;
  rest_queue_t *q;
  souk__rl_route_t route;
  char method[16];
  char *path;
  char *body;
  size_t body_len;
  char *hdr_ctype; /* "Content-Type: ..." or NULL */
  char *hdr_audit; /* "X-Audit-Log-Reason: ..." or NULL */
  unsigned flags;
  uint32_t timeout_ms;
  souk__rest_cb cb;
  void *ud;
  uint64_t created_ms;
  uint64_t queued_ms;  /* when it last entered its queue */
  uint64_t not_before; /* retry back-off or 429 wait: clock ms */
  unsigned attempts;   /* HTTP requests sent */
  unsigned retries;    /* of those, re-sends after 5xx / connection errors */
  unsigned resent429;
  int fail_err; /* on the fail list: the error to complete with */
  souk__rl_ticket_t ticket;
  souk_http_req_t *http;
} rest_req_t;

struct rest_queue {
  souk__smap_ent_t ent;
  rest_req_t *head, *tail;
  unsigned inflight;
  bool parallel; /* GET/HEAD: as many at once as the limiter allows */
  bool active;   /* on the active list (has queued requests) */
  rest_queue_t *aprev, *anext;
  char key[];
};

typedef struct route_stat {
  souk__smap_ent_t ent;
  size_t n;
  struct {
    int status;
    uint64_t count;
  } * v;
  char key[];
} route_stat_t;

/* Lazily parsed JSON for souk__rest_json. */
typedef struct lazy_json {
  souk_json_t j;
  int state; /* 0: not tried, 1: parsed, -1: not JSON */
  const char *ctype;
} lazy_json_t;

static struct {
  bool running;
  bool draining;
  unsigned gen; /* bumped by shutdown, so code after a callback notices */
  souk__rl_t *rl;
  uv_timer_t *timer;
  uint64_t timer_at;
  souk__smap_t queues;
  rest_queue_t *active_head, *active_tail;
  rest_req_t *inflight_list;
  rest_req_t *fail_head, *fail_tail;
  size_t queued, inflight;
  souk__smap_t rstats;
  souk__rest_stats_t st;
  bool full_logged;
  souk__rest_drain_cb drain_cb;
  void *drain_ud;
  char *base;
  char *hdr_auth;
  char *hdr_ua;
  size_t queue_max;
  /* The shared global limit (owned by rl; a copy to read its figures). */
  souk__rl_global_t shared;
  bool has_shared;
} g;

/* ---- helpers ----------------------------------------------------------- */

uint64_t souk__rest_backoff_ms(unsigned attempt, uint64_t base, uint64_t cap, double r) {
  uint64_t ceil_ms = base;
  for (unsigned i = 1; i < attempt && ceil_ms < cap; i++)
    ceil_ms *= 2;
  if (ceil_ms > cap) ceil_ms = cap;
  if (r < 0) r = 0;
  if (r >= 1) r = 0.999999;
  return (uint64_t)(r * (double)ceil_ms);
}

static int status_err(int status) {
  if (status >= 200 && status < 300) return 0;
  switch (status) {
  case 401:
    return SOUK_EAUTH;
  case 403:
    return SOUK_EFORBIDDEN;
  case 404:
    return SOUK_ENOTFOUND;
  case 429:
    return SOUK_ERATELIMIT;
  default:
    return SOUK_EHTTP;
  }
}

/* Errors worth another try: the request may never have reached Discord,
 * or Discord failed transiently. */
static bool retryable_err(int err) {
  return err == SOUK_ETIMEDOUT || err == SOUK_ECONN || err == SOUK_ECLOSED || err == SOUK_EIO;
}

/* "X-Audit-Log-Reason: <reason URL-encoded>", cut to 512 characters on a
 * UTF-8 boundary as Discord requires. */
static char *audit_header(const char *reason) {
  souk_buf_t b = {0};
  souk_buf_puts(&b, "X-Audit-Log-Reason: ");
  size_t chars = 0;
  for (const unsigned char *p = (const unsigned char *)reason; *p; p++) {
    if ((*p & 0xC0) != 0x80 && ++chars > AUDIT_REASON_MAX_CHARS) break;
    if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~')
      souk_buf_putc(&b, (char)*p);
    else
      souk_buf_printf(&b, "%%%02X", *p);
  }
  return souk_buf_steal(&b);
}

static void arm(uint64_t at);

/* ---- queues ------------------------------------------------------------ */

static void activate(rest_queue_t *q) {
  if (q->active) return;
  q->active = true;
  q->anext = NULL;
  q->aprev = g.active_tail;
  if (g.active_tail)
    g.active_tail->anext = q;
  else
    g.active_head = q;
  g.active_tail = q;
}

static void deactivate(rest_queue_t *q) {
  if (!q->active) return;
  if (q->aprev)
    q->aprev->anext = q->anext;
  else
    g.active_head = q->anext;
  if (q->anext)
    q->anext->aprev = q->aprev;
  else
    g.active_tail = q->aprev;
  q->active = false;
  q->aprev = q->anext = NULL;
}

static rest_queue_t *queue_get(const rest_req_t *r) {
  char key[SOUK_RL_KEY_MAX + SOUK_RL_MAJOR_MAX + 2];
  snprintf(key, sizeof key, "%s|%s", r->route.key, r->route.major);
  souk__smap_ent_t *e = souk__smap_get(&g.queues, key);
  if (e) return (rest_queue_t *)e;
  size_t n = strlen(key);
  rest_queue_t *q = souk_calloc(1, sizeof *q + n + 1);
  memcpy(q->key, key, n + 1);
  q->parallel = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
  souk__smap_put(&g.queues, &q->ent, q->key);
  return q;
}

static void queue_maybe_free(rest_queue_t *q) {
  if (!q || q->head || q->inflight) return;
  deactivate(q);
  souk__smap_del(&g.queues, &q->ent);
  souk_free(q);
}

static void queue_push_back(rest_queue_t *q, rest_req_t *r) {
  r->q = q;
  r->next = NULL;
  r->prev = q->tail;
  if (q->tail)
    q->tail->next = r;
  else
    q->head = r;
  q->tail = r;
  g.queued++;
  activate(q);
}

static void queue_push_front(rest_queue_t *q, rest_req_t *r) {
  r->q = q;
  r->prev = NULL;
  r->next = q->head;
  if (q->head)
    q->head->prev = r;
  else
    q->tail = r;
  q->head = r;
  g.queued++;
  activate(q);
}

static rest_req_t *queue_pop(rest_queue_t *q) {
  rest_req_t *r = q->head;
  if (!r) return NULL;
  q->head = r->next;
  if (q->head)
    q->head->prev = NULL;
  else
    q->tail = NULL;
  r->next = r->prev = NULL;
  g.queued--;
  return r;
}

static void fail_push(rest_req_t *r, int err) {
  /* It has left its queue for good; the queue may be freed before the
   * fail list is run. */
  r->q = NULL;
  r->fail_err = err;
  r->next = NULL;
  r->prev = g.fail_tail;
  if (g.fail_tail)
    g.fail_tail->next = r;
  else
    g.fail_head = r;
  g.fail_tail = r;
}

static rest_req_t *fail_pop(void) {
  rest_req_t *r = g.fail_head;
  if (!r) return NULL;
  g.fail_head = r->next;
  if (!g.fail_head) g.fail_tail = NULL;
  r->next = r->prev = NULL;
  return r;
}

static void inflight_link(rest_req_t *r) {
  r->prev = NULL;
  r->next = g.inflight_list;
  if (g.inflight_list) g.inflight_list->prev = r;
  g.inflight_list = r;
  g.inflight++;
  r->q->inflight++;
}

static void inflight_unlink(rest_req_t *r) {
  if (r->prev)
    r->prev->next = r->next;
  else
    g.inflight_list = r->next;
  if (r->next) r->next->prev = r->prev;
  r->next = r->prev = NULL;
  g.inflight--;
  r->q->inflight--;
}

static void req_free(rest_req_t *r) {
  souk_free(r->path);
  souk_free(r->body);
  souk_free(r->hdr_ctype);
  souk_free(r->hdr_audit);
  souk_free(r);
}

/* ---- statistics -------------------------------------------------------- */

static void stat_count(const char *route, int status) {
  souk__smap_ent_t *e = souk__smap_get(&g.rstats, route);
  if (!e && g.rstats.n >= MAX_ROUTE_STATS) {
    route = "other";
    e = souk__smap_get(&g.rstats, route);
  }
  route_stat_t *s = (route_stat_t *)e;
  if (!s) {
    size_t n = strlen(route);
    s = souk_calloc(1, sizeof *s + n + 1);
    memcpy(s->key, route, n + 1);
    souk__smap_put(&g.rstats, &s->ent, s->key);
  }
  for (size_t i = 0; i < s->n; i++)
    if (s->v[i].status == status) {
      s->v[i].count++;
      return;
    }
  s->v = souk_reallocarray(s->v, s->n + 1, sizeof *s->v);
  s->v[s->n].status = status;
  s->v[s->n].count = 1;
  s->n++;
}

void souk__rest_stats(souk__rest_stats_t *out) {
  *out = g.st;
  out->queued = g.queued;
  out->inflight = g.inflight;
  if (g.rl) {
    souk__rl_stats_t rs;
    souk__rl_stats(g.rl, &rs);
    out->invalid_count = rs.invalid_count;
    out->invalid_tripped = rs.invalid_tripped;
    out->buckets = rs.buckets;
  }
  souk__rl_shared_stats_t ss;
  if (g.has_shared && g.rl && souk__rl_shared_stats(&g.shared, &ss)) {
    out->global_mode = ss.shared ? "shared" : ss.settled ? "fallback" : "connecting";
    out->global_per_s = ss.per_s;
    out->global_processes = ss.fallback_n;
    out->global_dropped = ss.dropped;
  } else {
    const souk__discord_conf_t *c = &souk__discord_conf;
    int64_t per = c->rest_global_per_s > 0 ? c->rest_global_per_s : 50;
    int64_t m = c->rest_global_margin > 0 && c->rest_global_margin < per ? c->rest_global_margin : 0;
    out->global_mode = "local";
    out->global_per_s = (double)(per - m);
  }
}

void souk__rest_queue_stats(souk__rest_queue_stat_cb fn, void *ud) {
  for (souk__smap_ent_t *e = souk__smap_next(&g.queues, NULL); e;
       e = souk__smap_next(&g.queues, e)) {
    const rest_queue_t *q = (const rest_queue_t *)e;
    size_t n = 0;
    for (const rest_req_t *r = q->head; r; r = r->next)
      n++;
    if (n || q->inflight) fn(q->key, n, q->inflight, ud);
  }
}

uint64_t souk__rest_global_wait_ms(void) {
  if (!g.rl) return 0;
  souk__rl_stats_t rs;
  souk__rl_stats(g.rl, &rs);
  uint64_t now = souk_now_ms();
  return rs.global_until_ms > now ? rs.global_until_ms - now : 0;
}

void souk__rest_route_stats(souk__rest_route_stat_cb fn, void *ud) {
  for (souk__smap_ent_t *e = souk__smap_next(&g.rstats, NULL); e;
       e = souk__smap_next(&g.rstats, e)) {
    const route_stat_t *s = (const route_stat_t *)e;
    for (size_t i = 0; i < s->n; i++)
      fn(s->key, s->v[i].status, s->v[i].count, ud);
  }
}

/* ---- completion -------------------------------------------------------- */

const souk_json_t *souk__rest_json(const souk__rest_resp_t *resp) {
  lazy_json_t *lj = resp ? resp->priv_ : NULL;
  if (!lj) return NULL;
  if (lj->state == 0) {
    lj->state = -1;
    const char *b = resp->body;
    size_t n = resp->body_len;
    while (n && isspace((unsigned char)*b))
      b++, n--;
    bool looks = n && (*b == '{' || *b == '[');
    bool says = lj->ctype && strstr(lj->ctype, "json");
    if ((looks || says) && souk_json_parse(&lj->j, resp->body, resp->body_len) == 0) lj->state = 1;
  }
  return lj->state == 1 ? &lj->j : NULL;
}

const char *souk__rest_header(const souk__rest_resp_t *resp, const char *name) {
  return resp ? souk_http_header(resp->http, name) : NULL;
}

/* Call r's callback and free it.  r must be in no list. */
static void complete(rest_req_t *r, int err, const souk_http_resp_t *hr) {
  rest_queue_t *q = r->q;
  r->q = NULL;
  /* Free an empty queue now: the callback may queue on the same route. */
  if (q) queue_maybe_free(q);
  lazy_json_t lj = {.ctype = hr ? souk_http_header(hr, "content-type") : NULL};
  souk__rest_resp_t resp = {
      .err = err,
      .status = hr ? hr->status : 0,
      .body = hr ? hr->body : "",
      .body_len = hr ? hr->body_len : 0,
      .route = r->route.key,
      .attempts = r->attempts,
      .elapsed_ms = souk_now_ms() - r->created_ms,
      .http = hr,
      .priv_ = &lj,
  };
  if (err) g.st.failed++;
  if (r->cb) r->cb(&resp, r->ud);
  souk_json_free(&lj.j);
  req_free(r);
}

/* Complete everything on the fail list, stopping if a callback shuts the
 * client down (shutdown completes what remains). */
static void run_fails(void) {
  unsigned gen = g.gen;
  rest_req_t *r;
  while (gen == g.gen && (r = fail_pop()))
    complete(r, r->fail_err, NULL);
}

/* ---- sending ----------------------------------------------------------- */

static void on_http(const souk_http_resp_t *hr, void *ud);

static int dispatch(rest_req_t *r, uint64_t now) {
  char *url = souk_malloc(strlen(g.base) + strlen(r->path) + 1);
  strcpy(url, g.base);
  strcat(url, r->path);
  const char *hdrs[4];
  size_t nh = 0;
  if (!(r->flags & SOUK_REST_NO_AUTH)) hdrs[nh++] = g.hdr_auth;
  hdrs[nh++] = g.hdr_ua;
  if (r->hdr_ctype) hdrs[nh++] = r->hdr_ctype;
  if (r->hdr_audit) hdrs[nh++] = r->hdr_audit;
  uint32_t timeout = r->timeout_ms ? r->timeout_ms : (uint32_t)souk__discord_conf.rest_timeout_ms;
  if (!timeout) timeout = 15000;
  souk_http_opts_t ho = {
      .method = r->method,
      .url = url,
      .headers = hdrs,
      .nheaders = nh,
      .body = r->body,
      .body_len = r->body_len,
      .timeout_ms = timeout,
      .connect_timeout_ms = timeout < 10000 ? timeout : 10000,
      .max_response_bytes = MAX_RESPONSE_BYTES,
  };
  int rc = souk_http_request(&ho, on_http, r, &r->http);
  souk_free(url);
  if (rc) return rc;
  r->attempts++;
  g.st.sent++;
  g.st.wait_ms_total += now - r->queued_ms;
  inflight_link(r);
  return 0;
}

static void pump(void) {
  if (!g.running) return;
  uint64_t now = souk_now_ms(), earliest = UINT64_MAX;
  rest_queue_t *q, *qnext;
  for (q = g.active_head; q; q = qnext) {
    qnext = q->anext;
    while (q->head && (q->parallel || q->inflight == 0)) {
      rest_req_t *r = q->head;
      if (r->not_before > now) {
        if (r->not_before < earliest) earliest = r->not_before;
        break;
      }
      uint64_t wait = 0;
      int rc = souk__rl_acquire(g.rl, &r->route, &r->ticket, &wait);
      if (rc == SOUK_EBUSY) {
        if (wait != SOUK_RL_WAIT_EVENT && now + wait < earliest) earliest = now + wait;
        break;
      }
      queue_pop(q);
      if (rc == 0) {
        rc = dispatch(r, now);
        if (rc) {
          souk__rl_release(g.rl, &r->ticket);
          SOUK_WARN(COMP, "%s: could not send: %s", r->route.key, souk_strerror(rc));
        }
      }
      if (rc) fail_push(r, rc);
    }
    if (!q->head) {
      deactivate(q);
      queue_maybe_free(q);
    }
  }
  if (earliest != UINT64_MAX)
    arm(earliest);
  else if (g.queued)
    arm(now + SAFETY_PUMP_MS);
  run_fails();
  if (g.running && g.draining && g.inflight == 0 && g.drain_cb) {
    souk__rest_drain_cb cb = g.drain_cb;
    g.drain_cb = NULL;
    cb(g.drain_ud);
  }
}


static void timer_cb(uv_timer_t *t) {
  g.timer_at = UINT64_MAX;
  pump();
}

/* Make sure the pump runs no later than at (clock ms). */
static void arm(uint64_t at) {
  if (!g.timer || at >= g.timer_at) return;
  uint64_t now = souk_now_ms();
  g.timer_at = at;
  uv_timer_start(g.timer, timer_cb, at > now ? at - now : 0, 0);
}

/* The shared global limit has slots, or changed mode: look again. */
static void shared_wake(void *ud) {
  (void)ud;
  if (g.running) arm(souk_now_ms());
}

static void requeue(rest_req_t *r, uint64_t not_before) {
  r->not_before = not_before;
  r->queued_ms = souk_now_ms();
  queue_push_front(r->q, r);
}

static void on_http(const souk_http_resp_t *hr, void *ud) {
  rest_req_t *r = ud;
  r->http = NULL;
  inflight_unlink(r);
  uint64_t now = souk_now_ms();
  souk__rl_resp_t rr = {.status = hr->err ? 0 : hr->status};
  if (!hr->err) {
    rr.bucket = souk_http_header(hr, "x-ratelimit-bucket");
    rr.limit = souk_http_header(hr, "x-ratelimit-limit");
    rr.remaining = souk_http_header(hr, "x-ratelimit-remaining");
    rr.reset_after = souk_http_header(hr, "x-ratelimit-reset-after");
    rr.reset = souk_http_header(hr, "x-ratelimit-reset");
    rr.scope = souk_http_header(hr, "x-ratelimit-scope");
    rr.global = souk_http_header(hr, "x-ratelimit-global");
    rr.retry_after = souk_http_header(hr, "retry-after");
    rr.body = hr->body;
    rr.body_len = hr->body_len;
    rr.unix_now_ms = souk_unix_ms();
  }
  souk__rl_verdict_t v;
  souk__rl_record(g.rl, &r->ticket, &rr, &v);
  stat_count(r->route.key, rr.status);
  unsigned max_retries =
      (r->flags & SOUK_REST_NO_RETRY) ? 0 : (unsigned)souk__discord_conf.rest_retries;
  bool stopping = g.draining;
  souk_log_level_t fail_level = (r->flags & SOUK_REST_NO_RETRY) ? SOUK_LOG_DEBUG : SOUK_LOG_WARN;

  if (hr->err) {
    if (retryable_err(hr->err) && r->retries < max_retries && !stopping) {
      r->retries++;
      g.st.retries++;
      uint64_t d = souk__rest_backoff_ms(r->retries, souk__rest_tune.backoff_base_ms,
                                         souk__rest_tune.backoff_cap_ms, souk_rand01());
      SOUK_WARN(COMP, "%s: %s; retry %u/%u in %llu ms", r->route.key, souk_strerror(hr->err),
                r->retries, max_retries, (unsigned long long)d);
      requeue(r, now + d);
    } else {
      souk_log(fail_level, COMP, "%s: %s after %u attempt(s)", r->route.key,
               souk_strerror(hr->err), r->attempts);
      complete(r, stopping && retryable_err(hr->err) ? SOUK_ESTOPPED : hr->err, hr);
    }
  } else if (hr->status == 429) {
    if (v.scope == SOUK_RL_SCOPE_GLOBAL)
      g.st.r429_global++;
    else if (v.scope == SOUK_RL_SCOPE_SHARED)
      g.st.r429_shared++;
    else
      g.st.r429_user++;
    const char *sn = v.scope == SOUK_RL_SCOPE_GLOBAL   ? "global"
                     : v.scope == SOUK_RL_SCOPE_SHARED ? "shared"
                                                       : "user";
    if (!stopping && !(r->flags & SOUK_REST_FAIL_429) && r->resent429 < souk__rest_tune.max_429) {
      r->resent429++;
      SOUK_WARN(COMP, "%s: 429 (scope %s), sending again in %llu ms", r->route.key, sn,
                (unsigned long long)v.wait_ms);
      requeue(r, now + v.wait_ms);
    } else {
      if (r->flags & SOUK_REST_FAIL_429)
        SOUK_WARN(COMP, "%s: 429 (scope %s), retry after %llu ms: not waiting", r->route.key, sn,
                  (unsigned long long)v.wait_ms);
      else
        SOUK_WARN(COMP, "%s: 429 (scope %s) %u times, giving up", r->route.key, sn,
                  r->resent429 + 1);
      complete(r, stopping ? SOUK_ESTOPPED : SOUK_ERATELIMIT, hr);
    }
  } else if (hr->status >= 500 && r->retries < max_retries && !stopping) {
    r->retries++;
    g.st.retries++;
    uint64_t d = souk__rest_backoff_ms(r->retries, souk__rest_tune.backoff_base_ms,
                                       souk__rest_tune.backoff_cap_ms, souk_rand01());
    SOUK_WARN(COMP, "%s: HTTP %d; retry %u/%u in %llu ms", r->route.key, hr->status, r->retries,
              max_retries, (unsigned long long)d);
    requeue(r, now + d);
  } else {
    int err = status_err(hr->status);
    if (hr->status == 401)
      SOUK_WARN(COMP, "%s: 401 Unauthorized: is discord.token valid?", r->route.key);
    else if (hr->status >= 500 && stopping)
      err = SOUK_ESTOPPED;
    else
      SOUK_DEBUG(COMP, "%s -> %d in %llu ms", r->route.key, hr->status,
                 (unsigned long long)hr->elapsed_ms);
    complete(r, err, hr);
  }
  /* The bucket may have room now, or a waiter may be due: pump soon. */
  if (g.running) arm(now);
}

/* ---- public API -------------------------------------------------------- */

int souk__rest_init(void) {
  if (g.running) return 0;
  if (g.timer) return SOUK_EBUSY; /* draining or not yet shut down */
  const souk__discord_conf_t *c = &souk__discord_conf;
  const char *base = c->api_base && *c->api_base ? c->api_base : DEFAULT_API_BASE;
  if (strncmp(base, "https://", 8) != 0 && strncmp(base, "http://", 7) != 0) {
    SOUK_ERROR(COMP, "discord.api_base must be an http(s) URL");
    return SOUK_ECONFIG;
  }
  unsigned gen = g.gen;
  memset(&g, 0, sizeof g);
  g.gen = gen + 1;
  g.base = souk_strdup(base);
  size_t bl = strlen(g.base);
  while (bl && g.base[bl - 1] == '/')
    g.base[--bl] = '\0';
  if (c->token && *c->token) {
    souk_buf_t b = {0};
    souk_buf_printf(&b, "Authorization: Bot %s", c->token);
    g.hdr_auth = souk_buf_steal(&b);
    souk_log_add_secret(c->token);
  }
  souk_buf_t ua = {0};
  souk_buf_printf(&ua, "User-Agent: DiscordBot (%s, %s)",
                  c->user_agent_url ? c->user_agent_url : "https://github.com/souk-bot/souk",
                  SOUK_VERSION);
  g.hdr_ua = souk_buf_steal(&ua);
  g.queue_max = c->rest_queue_max > 0 ? (size_t)c->rest_queue_max : 10000;
  souk__rl_conf_t rc = {
      .global_per_s = c->rest_global_per_s > 0 ? (uint32_t)c->rest_global_per_s : 50,
      .global_margin = c->rest_global_margin > 0 ? (uint32_t)c->rest_global_margin : 0,
      .invalid_limit = c->invalid_limit > 0 ? (uint32_t)c->invalid_limit : 5000,
  };
  if (rc.global_margin >= rc.global_per_s) {
    /* Nothing could be sent at all: keep a tenth back instead. */
    SOUK_WARN(COMP,
              "discord.rest.global_margin (%u) must be below global_per_second (%u); using %u",
              rc.global_margin, rc.global_per_s, rc.global_per_s / 10);
    rc.global_margin = rc.global_per_s / 10;
  }
  /* With Redis, the global limit is counted with the other processes of
   * the bot (discord/rlshared.h); without it this process has it all. */
  const souk_cache_conf_t *cc = &souk__cache_conf;
  if (cc->url && cc->url[0]) {
    souk__rl_shared_conf_t sc = {.url = cc->url,
                                 .key_prefix = cc->key_prefix,
                                 .per_s = rc.global_per_s,
                                 .margin = rc.global_margin,
                                 .members = souk__cluster_size,
                                 .shards = souk__cluster_shards,
                                 .wake = shared_wake,
                                 .clock = &souk_clock_mono};
    if (souk__rl_global_redis(&sc, &g.shared) == 0) {
      g.has_shared = true;
      rc.global = &g.shared;
    } else {
      SOUK_WARN(COMP, "the global limit cannot be shared through cache.url: this process "
                      "assumes it has all of it");
    }
  }
  g.rl = souk__rl_new(&rc, &souk_clock_mono);
  g.timer = souk_malloc(sizeof *g.timer);
  uv_timer_init(souk_loop(), g.timer);
  g.timer->data = g.timer;
  g.timer_at = UINT64_MAX;
  g.running = true;
  return 0;
}

static bool valid_path(const char *p) {
  if (!p || p[0] != '/') return false;
  for (; *p; p++)
    if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f) return false;
  return true;
}

int souk__rest_request(const souk__rest_opts_t *o, souk__rest_cb cb, void *ud) {
  if (!g.running || g.draining) return SOUK_ESTOPPED;
  if (!o || !o->method || !valid_path(o->path)) return SOUK_EINVAL;
  size_t ml = strlen(o->method);
  if (ml == 0 || ml >= sizeof((rest_req_t *)0)->method) return SOUK_EINVAL;
  for (size_t i = 0; i < ml; i++)
    if (!isalpha((unsigned char)o->method[i])) return SOUK_EINVAL;
  if (!(o->flags & SOUK_REST_NO_AUTH) && !g.hdr_auth) {
    SOUK_ERROR(COMP, "no bot token (set SOUK_DISCORD_TOKEN): cannot call %s", o->method);
    return SOUK_ECONFIG;
  }
  if (o->content_type && strpbrk(o->content_type, "\r\n")) return SOUK_EINVAL;
  souk__rl_route_t route;
  if (souk__rl_route(o->method, o->path, souk_unix_ms(), &route) != 0) return SOUK_EINVAL;
  if (souk__rl_blocked(g.rl)) return SOUK_ERATELIMIT;
  if (g.queued + g.inflight >= g.queue_max) {
    g.st.rejected_full++;
    /* One line per episode of fullness, not one per refused request. */
    if (!g.full_logged) {
      g.full_logged = true;
      SOUK_ERROR(COMP,
                 "REST queue full (%zu pending >= discord.rest.queue_max): refusing %s; "
                 "Discord is limiting us or unreachable",
                 g.queued + g.inflight, route.key);
    }
    return SOUK_EFULL;
  }
  if (g.full_logged && g.queued + g.inflight < g.queue_max / 2) g.full_logged = false;

  rest_req_t *r = souk_calloc(1, sizeof *r);
  r->route = route;
  for (size_t i = 0; i <= ml; i++)
    r->method[i] = (char)toupper((unsigned char)o->method[i]);
  r->path = souk_strdup(o->path);
  if (o->body) {
    r->body_len = o->body_len ? o->body_len : strlen(o->body);
    r->body = souk_memdup0(o->body, r->body_len);
  }
  if (o->body || o->content_type) {
    souk_buf_t b = {0};
    souk_buf_printf(&b, "Content-Type: %s", o->content_type ? o->content_type : "application/json");
    r->hdr_ctype = souk_buf_steal(&b);
  }
  if (o->audit_reason && *o->audit_reason) r->hdr_audit = audit_header(o->audit_reason);
  r->flags = o->flags;
  r->timeout_ms = o->timeout_ms;
  r->cb = cb;
  r->ud = ud;
  r->created_ms = r->queued_ms = souk_now_ms();
  queue_push_back(queue_get(r), r);
  g.st.requests++;
  arm(r->created_ms);
  return 0;
}

int souk__rest_drain(souk__rest_drain_cb done, void *ud) {
  if (!g.running || g.draining) return SOUK_ESTOPPED;
  g.draining = true;
  g.drain_cb = done;
  g.drain_ud = ud;
  size_t n = g.queued;
  rest_queue_t *q, *qnext;
  for (q = g.active_head; q; q = qnext) {
    qnext = q->anext;
    rest_req_t *r;
    while ((r = queue_pop(q)))
      fail_push(r, SOUK_ESTOPPED);
    deactivate(q);
    queue_maybe_free(q);
  }
  SOUK_INFO(COMP, "draining: %zu queued request(s) stopped, %zu in flight", n, g.inflight);
  run_fails();
  if (g.running) arm(souk_now_ms());
  return 0;
}

void souk__rest_shutdown(void) {
  if (!g.running) return;
  g.running = false;
  g.draining = false;
  g.drain_cb = NULL;
  g.gen++;
  /* Gather every request on the fail list first, then call back: a
   * callback must not find half-freed queues. */
  while (g.inflight_list) {
    rest_req_t *r = g.inflight_list;
    inflight_unlink(r);
    souk_http_cancel(r->http);
    r->http = NULL;
    fail_push(r, SOUK_ESTOPPED);
  }
  souk__smap_ent_t *e, *en;
  for (e = souk__smap_next(&g.queues, NULL); e; e = en) {
    en = souk__smap_next(&g.queues, e);
    rest_queue_t *q = (rest_queue_t *)e;
    rest_req_t *r;
    while ((r = queue_pop(q)))
      fail_push(r, SOUK_ESTOPPED);
    deactivate(q);
    souk__smap_del(&g.queues, &q->ent);
    souk_free(q);
  }
  souk__smap_free(&g.queues);
  for (rest_req_t *r = g.fail_head; r; r = r->next)
    r->fail_err = SOUK_ESTOPPED;
  rest_req_t *r;
  while ((r = fail_pop()))
    complete(r, SOUK_ESTOPPED, NULL);
  souk__rl_free(g.rl);
  g.rl = NULL;
  g.has_shared = false; /* the limiter destroyed it */
  for (e = souk__smap_next(&g.rstats, NULL); e; e = en) {
    en = souk__smap_next(&g.rstats, e);
    route_stat_t *s = (route_stat_t *)e;
    souk__smap_del(&g.rstats, &s->ent);
    souk_free(s->v);
    souk_free(s);
  }
  souk__smap_free(&g.rstats);
  souk_free(g.base);
  souk_free(g.hdr_auth);
  souk_free(g.hdr_ua);
  g.base = g.hdr_auth = g.hdr_ua = NULL;
  souk_timer_free(&g.timer);
  g.queued = g.inflight = 0;
}
