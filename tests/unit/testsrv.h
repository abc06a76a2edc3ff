/* A small scriptable HTTP/1.1 server for unit tests, on the souk loop.
 *
 * It listens on 127.0.0.1 with an ephemeral port, parses requests (with
 * Content-Length bodies, keep-alive), and asks a handler function what to
 * answer: status, extra headers, body, an optional delay, a chunked body,
 * closing the connection, or never answering.  Header-only so each test
 * runner can include it; everything is static.  Not a general server:
 * enough of HTTP/1.1 to drive libcurl. */
#ifndef SOUK_TEST_TESTSRV_H
#define SOUK_TEST_TESTSRV_H

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/loop.h"

#define TSRV_MAX_HEADERS 48

typedef struct tsrv_req {
  char method[16];
  char path[1024];
  int nheaders;
  char hname[TSRV_MAX_HEADERS][64];
  char hval[TSRV_MAX_HEADERS][512];
  const char *body; /* NUL-terminated; valid during the handler */
  size_t body_len;
  uint64_t at_ms;   /* souk_now_ms() when it arrived */
  int conn;         /* connection number, from 1 */
} tsrv_req_t;

typedef struct tsrv_resp {
  int status;        /* default 200 */
  souk_buf_t headers; /* extra "Name: value\r\n" lines */
  souk_buf_t body;
  uint32_t delay_ms; /* answer after this long */
  bool chunked;      /* Transfer-Encoding: chunked instead of Content-Length */
  bool close;        /* close the connection after answering */
  bool hang;         /* never answer (the connection stays open) */
  bool drop;         /* close the connection without answering */
} tsrv_resp_t;

typedef void (*tsrv_handler)(const tsrv_req_t *req, tsrv_resp_t *resp, void *ud);

typedef struct tsrv_conn tsrv_conn_t;

typedef struct tsrv {
  uv_tcp_t listener;
  int port;
  tsrv_handler handler;
  void *ud;
  tsrv_conn_t *conns;
  int nconns_total;  /* connections accepted */
  int nrequests;     /* requests parsed */
  int inflight;      /* requests parsed but not answered */
  int max_inflight;  /* highest inflight seen */
  bool stopping;
} tsrv_t;

struct tsrv_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  tsrv_t *srv;
  tsrv_conn_t *prev, *next;
  souk_buf_t in;
  int id;
  bool busy;      /* a response is pending: do not parse the next request */
  bool closing;
  int open_handles;
  tsrv_resp_t pending;
};

typedef struct tsrv_write {
  uv_write_t req;
  tsrv_conn_t *conn;
  char *data;
  bool close_after;
} tsrv_write_t;

static inline const char *tsrv_header(const tsrv_req_t *r, const char *name) {
  for (int i = 0; i < r->nheaders; i++)
    if (strcasecmp(r->hname[i], name) == 0) return r->hval[i];
  return NULL;
}

static void tsrv__conn_closed(uv_handle_t *h) {
  tsrv_conn_t *c = h->data;
  if (--c->open_handles == 0) {
    souk_buf_free(&c->in);
    souk_buf_free(&c->pending.headers);
    souk_buf_free(&c->pending.body);
    souk_free(c);
  }
}

static void tsrv__conn_close(tsrv_conn_t *c) {
  if (c->closing) return;
  c->closing = true;
  if (c->busy) c->srv->inflight--;
  if (c->prev) c->prev->next = c->next;
  else c->srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  uv_close((uv_handle_t *)&c->tcp, tsrv__conn_closed);
  uv_close((uv_handle_t *)&c->timer, tsrv__conn_closed);
}

static void tsrv__parse(tsrv_conn_t *c);

static void tsrv__written(uv_write_t *w, int status) {
  tsrv_write_t *tw = (tsrv_write_t *)w;
  if (tw->close_after && !tw->conn->closing) tsrv__conn_close(tw->conn);
  souk_free(tw->data);
  souk_free(tw);
}

static const char *tsrv__reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  default: return "Status";
  }
}

static void tsrv__send(tsrv_conn_t *c) {
  tsrv_resp_t *r = &c->pending;
  souk_buf_t out = {0};
  souk_buf_printf(&out, "HTTP/1.1 %d %s\r\n", r->status, tsrv__reason(r->status));
  if (r->chunked)
    souk_buf_puts(&out, "Transfer-Encoding: chunked\r\n");
  else
    souk_buf_printf(&out, "Content-Length: %zu\r\n", r->body.len);
  if (r->close) souk_buf_puts(&out, "Connection: close\r\n");
  if (r->headers.len) souk_buf_append(&out, r->headers.data, r->headers.len);
  souk_buf_puts(&out, "\r\n");
  if (r->chunked) {
    if (r->body.len) {
      souk_buf_printf(&out, "%zx\r\n", r->body.len);
      souk_buf_append(&out, r->body.data, r->body.len);
      souk_buf_puts(&out, "\r\n");
    }
    souk_buf_puts(&out, "0\r\n\r\n");
  } else if (r->body.len) {
    souk_buf_append(&out, r->body.data, r->body.len);
  }
  tsrv_write_t *w = souk_calloc(1, sizeof *w);
  w->conn = c;
  w->close_after = r->close;
  /* Bodies may hold NUL bytes: take the length before stealing. */
  size_t len = out.len;
  w->data = souk_buf_steal(&out);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
  c->srv->inflight--;
  c->busy = false;
  souk_buf_reset(&r->headers);
  souk_buf_reset(&r->body);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, tsrv__written) != 0) {
    souk_free(w->data);
    souk_free(w);
    tsrv__conn_close(c);
    return;
  }
}

static void tsrv__delay_cb(uv_timer_t *t) {
  tsrv_conn_t *c = t->data;
  bool close = c->pending.close;
  tsrv__send(c);
  if (!close) tsrv__parse(c);
}

/* Parse and answer as many complete requests as c->in holds. */
static void tsrv__parse(tsrv_conn_t *c) {
  while (!c->busy && !c->closing) {
    if (!c->in.len) return;
    c->in.data[c->in.len] = '\0';
    char *end = strstr(c->in.data, "\r\n\r\n");
    if (!end) return;
    size_t head_len = (size_t)(end - c->in.data) + 4;
    tsrv_req_t *req = souk_calloc(1, sizeof *req);
    char *line = c->in.data;
    char *eol = strstr(line, "\r\n");
    sscanf(line, "%15s %1023s", req->method, req->path);
    size_t clen = 0;
    for (char *h = eol + 2; h < end; ) {
      char *he = strstr(h, "\r\n");
      char *colon = memchr(h, ':', (size_t)(he - h));
      if (colon && req->nheaders < TSRV_MAX_HEADERS) {
        int i = req->nheaders++;
        snprintf(req->hname[i], sizeof req->hname[i], "%.*s", (int)(colon - h), h);
        const char *v = colon + 1;
        while (*v == ' ') v++;
        snprintf(req->hval[i], sizeof req->hval[i], "%.*s", (int)(he - v), v);
        if (strcasecmp(req->hname[i], "content-length") == 0) clen = strtoul(req->hval[i], NULL, 10);
      }
      h = he + 2;
    }
    if (c->in.len < head_len + clen) {
      souk_free(req);
      return;
    }
    char *body = souk_memdup0(c->in.data + head_len, clen);
    req->body = body;
    req->body_len = clen;
    req->at_ms = souk_now_ms();
    req->conn = c->id;
    memmove(c->in.data, c->in.data + head_len + clen, c->in.len - head_len - clen);
    c->in.len -= head_len + clen;
    tsrv_t *s = c->srv;
    s->nrequests++;
    s->inflight++;
    if (s->inflight > s->max_inflight) s->max_inflight = s->inflight;
    c->busy = true;
    tsrv_resp_t *r = &c->pending;
    r->status = 200;
    r->delay_ms = 0;
    r->chunked = r->close = r->hang = r->drop = false;
    s->handler(req, r, s->ud);
    souk_free(body);
    souk_free(req);
    if (r->drop) {
      tsrv__conn_close(c);
      return;
    }
    if (r->hang) return; /* busy forever */
    if (r->delay_ms) {
      uv_timer_start(&c->timer, tsrv__delay_cb, r->delay_ms, 0);
      return;
    }
    bool close = r->close;
    tsrv__send(c);
    if (close) return;
  }
}

static void tsrv__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  tsrv_conn_t *c = h->data;
  souk_buf_reserve(&c->in, 65536);
  buf->base = c->in.data + c->in.len;
  buf->len = c->in.cap - c->in.len - 1;
}

static void tsrv__read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  tsrv_conn_t *c = st->data;
  if (n < 0) {
    tsrv__conn_close(c);
    return;
  }
  c->in.len += (size_t)n;
  tsrv__parse(c);
}

static void tsrv__accept(uv_stream_t *l, int status) {
  tsrv_t *s = l->data;
  if (status < 0) return;
  tsrv_conn_t *c = souk_calloc(1, sizeof *c);
  c->srv = s;
  uv_tcp_init(souk_loop(), &c->tcp);
  uv_timer_init(souk_loop(), &c->timer);
  c->tcp.data = c->timer.data = c;
  c->open_handles = 2;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, tsrv__conn_closed);
    uv_close((uv_handle_t *)&c->timer, tsrv__conn_closed);
    return;
  }
  c->id = ++s->nconns_total;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  uv_read_start((uv_stream_t *)&c->tcp, tsrv__alloc, tsrv__read);
}

/** Start listening on 127.0.0.1:0; returns the port (or -1). */
static inline int tsrv_start(tsrv_t *s, tsrv_handler h, void *ud) {
  memset(s, 0, sizeof *s);
  s->handler = h;
  s->ud = ud;
  uv_tcp_init(souk_loop(), &s->listener);
  s->listener.data = s;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  if (uv_tcp_bind(&s->listener, (const struct sockaddr *)&a, 0) != 0) return -1;
  if (uv_listen((uv_stream_t *)&s->listener, 128, tsrv__accept) != 0) return -1;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
  s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return s->port;
}

/** Close the listener and every connection; run the loop to finish. */
static inline void tsrv_stop(tsrv_t *s) {
  s->stopping = true;
  while (s->conns) tsrv__conn_close(s->conns);
  if (!uv_is_closing((uv_handle_t *)&s->listener)) uv_close((uv_handle_t *)&s->listener, NULL);
}

/** A port nothing listens on (bound, read, closed). */
static inline int tsrv_dead_port(void) {
  uv_tcp_t t;
  uv_tcp_init(souk_loop(), &t);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_bind(&t, (const struct sockaddr *)&a, 0);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &len);
  int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  return port;
}

/* ---- running the loop in tests ---------------------------------------- */

static bool tsrv__expired;
static void tsrv__guard_cb(uv_timer_t *t) { tsrv__expired = true; }

/** Run the loop until *counter >= target or max_ms pass; true if reached. */
static inline bool tsrv_run_until(const int *counter, int target, uint64_t max_ms) {
  uv_timer_t guard;
  uv_timer_init(souk_loop(), &guard);
  tsrv__expired = false;
  uv_timer_start(&guard, tsrv__guard_cb, max_ms, 0);
  while (*counter < target && !tsrv__expired) uv_run(souk_loop(), UV_RUN_ONCE);
  uv_close((uv_handle_t *)&guard, NULL);
  /* One more iteration runs the close callback before the frame goes. */
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  return *counter >= target;
}

/** Run the loop for ms milliseconds. */
static inline void tsrv_run_for(uint64_t ms) {
  int never = 0;
  tsrv_run_until(&never, 1, ms);
}

/** Run the loop until nothing is left to do (after closing everything). */
static inline void tsrv_drain_loop(void) { uv_run(souk_loop(), UV_RUN_DEFAULT); }

#endif
