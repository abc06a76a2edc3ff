/* The alert webhook (alertsink.h). */
#include "ops/alertsink.h"

#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/http.h"
#include "souk/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP      "alert"
#define QUEUE_MAX 32
#define RATE_MAX  60

static struct {
  bool on;
  char *url;
  souk__alertsink_opts_t o;
  char *queue[QUEUE_MAX]; /* ring, oldest at head */
  uint32_t head, n;
  uint64_t sent_at[RATE_MAX]; /* ring of the last per_minute send times */
  uint32_t sent_head, sent_n;
  uint32_t attempt;       /* failed attempts of the head */
  uint64_t dropped_since; /* dropped and not yet told in a delivery */
  uint64_t dropped_told;  /* the part of it the delivery in flight tells */
  souk_http_req_t *req;
  uv_timer_t *timer;
  bool waiting;
  bool draining;           /* stopping: deliver what is queued, then stop */
  uint64_t drain_deadline; /* ... but not after this */
  souk__alertsink_stats_t st;
} g;

static uint64_t now_ms(void) {
  return g.o.clock ? g.o.clock->now_ms(g.o.clock->ud) : souk_now_ms();
}

static void pump(void);

static void timer_cb(uv_timer_t *t) {
  (void)t;
  g.waiting = false;
  pump();
}

static void wait_then_pump(uint64_t ms) {
  if (g.draining) {
    uint64_t now = now_ms();
    ms = g.drain_deadline > now ? (ms < g.drain_deadline - now ? ms : g.drain_deadline - now) : 0;
  }
  g.waiting = true;
  uv_timer_start(g.timer, timer_cb, ms, 0);
}

static void pop_head(void) {
  souk_free(g.queue[g.head]);
  g.queue[g.head] = NULL;
  g.head = (g.head + 1) % QUEUE_MAX;
  g.n--;
  g.attempt = 0;
}

static void note_sent(uint64_t now) {
  if (g.sent_n < RATE_MAX) {
    g.sent_at[(g.sent_head + g.sent_n) % RATE_MAX] = now;
    g.sent_n++;
  } else {
    g.sent_at[g.sent_head] = now;
    g.sent_head = (g.sent_head + 1) % RATE_MAX;
  }
}

/* Milliseconds until the next delivery may go: one a second, and at most
 * per_minute in any 60 s.  The ring holds the last sends, oldest first. */
static uint64_t pace_wait(uint64_t now) {
  uint64_t wait = 0, in_window[RATE_MAX];
  uint32_t k = 0;
  for (uint32_t i = 0; i < g.sent_n; i++) {
    uint64_t t = g.sent_at[(g.sent_head + i) % RATE_MAX];
    if (t + 60000 > now) in_window[k++] = t;
  }
  if (k > 0 && in_window[k - 1] + 1000 > now) wait = in_window[k - 1] + 1000 - now;
  if (k >= g.o.per_minute) {
    /* The send that must leave the window before another may go. */
    uint64_t free_at = in_window[k - g.o.per_minute] + 60000;
    if (free_at > now && free_at - now > wait) wait = free_at - now;
  }
  return wait;
}

/* Seconds of a Retry-After header, or of Discord's JSON retry_after. */
static uint64_t retry_after_ms(const souk_http_resp_t *r) {
  const char *h = souk_http_header(r, "retry-after");
  if (h) {
    char *end = NULL;
    double v = strtod(h, &end);
    if (end != h && v >= 0 && v < 86400) return (uint64_t)(v * 1000.0 + 0.5);
  }
  const char *k = r->body ? strstr(r->body, "\"retry_after\"") : NULL;
  if (k && (k = strchr(k, ':'))) {
    double v = strtod(k + 1, NULL);
    if (v > 0 && v < 86400) return (uint64_t)(v * 1000.0 + 0.5);
  }
  return 0;
}

static void http_cb(const souk_http_resp_t *r, void *ud) {
  (void)ud;
  g.req = NULL;
  g.st.in_flight = false;
  if (!g.on || g.n == 0) return;
  if (r->err == 0 && r->status >= 200 && r->status < 300) {
    g.st.delivered++;
    g.dropped_since -= g.dropped_told;
    g.dropped_told = 0;
    pop_head();
    pump();
    return;
  }
  bool retry = r->err != 0 || r->status == 429 || r->status >= 500;
  if (retry && g.attempt < g.o.retries) {
    g.attempt++;
    g.st.retries++;
    uint64_t d = g.o.retry_base_ms;
    for (uint32_t k = 1; k < g.attempt && d < 300000; k++)
      d *= 2;
    uint64_t ra = r->status == 429 ? retry_after_ms(r) : 0;
    if (ra > d) d = ra;
    SOUK_INFO(COMP,
              "the alert webhook answered %s: retry %" PRIu32 " of %" PRIu32 " in %" PRIu64 " ms",
              r->err ? souk_strerror(r->err) : "an error status", g.attempt, g.o.retries, d);
    wait_then_pump(d);
    return;
  }
  g.st.failed++;
  if (r->err)
    SOUK_WARN(COMP, "the alert webhook failed (%s); the alert is dropped", souk_strerror(r->err));
  else
    SOUK_WARN(COMP, "the alert webhook refused an alert with HTTP %d; it is dropped", r->status);
  pop_head();
  pump();
}

static void send_head(void) {
  souk_buf_t b;
  souk_buf_init(&b);
  souk_jw_t w;
  souk_jw_init(&w, &b);
  souk_jw_obj(&w);
  souk_jw_key(&w, "text");
  char note[96] = "";
  g.dropped_told = g.dropped_since;
  if (g.dropped_since)
    snprintf(note, sizeof note, "\n(+%" PRIu64 " alerts dropped by the rate limit)",
             g.dropped_since);
  souk_buf_t t;
  souk_buf_init(&t);
  souk_buf_puts(&t, g.queue[g.head]);
  souk_buf_puts(&t, note);
  souk_jw_strn(&w, t.data, t.len);
  souk_buf_free(&t);
  souk_jw_end(&w);
  const char *hdrs[] = {"Content-Type: application/json", "User-Agent: souk-alerts/1"};
  souk_http_opts_t o = {.method = "POST",
                        .url = g.url,
                        .headers = hdrs,
                        .nheaders = 2,
                        .body = b.data,
                        .body_len = b.len,
                        .timeout_ms = g.o.timeout_ms,
                        .max_response_bytes = 64 * 1024};
  note_sent(now_ms());
  int rc = souk_http_request(&o, http_cb, NULL, &g.req);
  souk_buf_free(&b);
  if (rc) {
    g.st.failed++;
    SOUK_WARN(COMP, "cannot send to the alert webhook: %s", souk_strerror(rc));
    pop_head();
    wait_then_pump(1000);
    return;
  }
  g.st.in_flight = true;
}

static void pump(void) {
  if (!g.on || g.req || g.waiting) return;
  if (g.draining && (g.n == 0 || now_ms() >= g.drain_deadline)) {
    if (g.n)
      SOUK_WARN(COMP, "%" PRIu32 " alerts were not delivered to the webhook before exit", g.n);
    souk__alertsink_stop();
    return;
  }
  if (g.n == 0) return;
  uint64_t wait = pace_wait(now_ms());
  if (wait) {
    /* Re-checked every tenth of a second: the pace is measured on the
     * injectable clock, which a test moves. */
    wait_then_pump(wait < 100 ? wait : 100);
    return;
  }
  send_head();
}

int souk__alertsink_start(const souk__alertsink_opts_t *o) {
  souk__alertsink_stop();
  if (!o || !o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0))
    return SOUK_EINVAL;
  int rc = souk_http_init();
  if (rc) return rc;
  memset(&g, 0, sizeof g);
  g.o = *o;
  g.url = souk_strdup(o->url);
  g.o.url = g.url;
  if (g.o.per_minute == 0) g.o.per_minute = 10;
  if (g.o.per_minute > RATE_MAX) g.o.per_minute = RATE_MAX;
  if (g.o.timeout_ms == 0) g.o.timeout_ms = 10000;
  if (g.o.retry_base_ms == 0) g.o.retry_base_ms = 1000;
  /* The URL carries the webhook's token: never let it reach a log. */
  souk_log_add_secret(g.url);
  g.timer = souk_calloc(1, sizeof *g.timer);
  uv_timer_init(souk_loop(), g.timer);
  g.on = true;
  return 0;
}

void souk__alertsink_stop(void) {
  if (!g.on) return;
  g.on = false;
  if (g.req) souk_http_cancel(g.req);
  g.req = NULL;
  souk_timer_free(&g.timer);
  while (g.n)
    pop_head();
  souk_free(g.url);
  g.url = NULL;
}

void souk__alertsink_drain(uint64_t max_ms) {
  if (!g.on) return;
  g.draining = true;
  g.drain_deadline = now_ms() + max_ms;
  if (!g.req && !g.waiting) pump();
}

bool souk__alertsink_on(void) { return g.on && !g.draining; }

int souk__alertsink_post(const char *text) {
  if (!g.on || g.draining) return SOUK_ENOTSUP;
  if (g.n == QUEUE_MAX) {
    /* Drop the oldest waiting alert; the head may be on its way. */
    uint32_t victim = g.req || g.attempt ? 1 : 0;
    uint32_t at = (g.head + victim) % QUEUE_MAX;
    souk_free(g.queue[at]);
    for (uint32_t i = victim; i + 1 < g.n; i++)
      g.queue[(g.head + i) % QUEUE_MAX] = g.queue[(g.head + i + 1) % QUEUE_MAX];
    g.queue[(g.head + g.n - 1) % QUEUE_MAX] = NULL;
    g.n--;
    g.st.dropped++;
    g.dropped_since++;
  }
  g.queue[(g.head + g.n) % QUEUE_MAX] = souk_strdup(text ? text : "");
  g.n++;
  pump();
  return 0;
}

void souk__alertsink_stats(souk__alertsink_stats_t *out) {
  *out = g.st;
  out->queued = g.n;
  out->in_flight = g.req != NULL;
}
