/* The HTTP server on the loop: libmicrohttpd in external-epoll mode.
 *
 * MHD is started with MHD_USE_EPOLL and no thread of its own.  Its epoll fd
 * becomes readable whenever anything it watches (the listening socket, the
 * connections, its inter-thread channel for resumed connections) has work,
 * so one uv_poll on that fd plus one uv_timer following MHD_get_timeout()
 * drive it completely; MHD_run() never blocks.  All MHD callbacks therefore
 * run on the loop thread, inside MHD_run().
 *
 * A request lives in an hreq_t from its first access-handler call to MHD's
 * completion callback.  Handlers that answer later leave the connection
 * suspended; souk_httpd_respond() resumes it and the next access-handler
 * call queues the response.  A handler that is too slow (http.timeout) or
 * still owes an answer at stop gets its connection answered for it (504 or
 * 503); its hreq_t is then kept, detached from the connection, until the
 * handler's own answer arrives and frees it. */
#include "net/httpd.h"

#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "core/metrics.h"
#include "souk/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <uv.h>

/* ---- configuration ----------------------------------------------------- */

souk__httpd_conf_t souk__httpd_conf;

#define K(field) offsetof(souk__httpd_conf_t, field)
const souk_conf_key_t souk__httpd_conf_keys[] = {
    {"enabled", SOUK_CONF_BOOL, K(enabled), "true", 0, 0, NULL, 0,
     "serve /healthz, /readyz, /metrics and the modules' routes"},
    {"bind", SOUK_CONF_STRING, K(bind), "127.0.0.1", 0, 64, NULL, 0,
     "address to listen on (IPv4 or IPv6); keep it on loopback behind a reverse proxy"},
    {"port", SOUK_CONF_INT, K(port), "8377", 0, 65535, NULL, 0,
     "TCP port; 0 picks a free one (logged)"},
    {"token", SOUK_CONF_STRING, K(token), NULL, 0, 256, NULL, SOUK_CONF_SECRET,
     "bearer token for /metrics and admin routes from non-loopback peers; set SOUK_HTTP_TOKEN"},
    {"max_body", SOUK_CONF_SIZE, K(max_body), "1MB", 0, (int64_t)1 << 30, NULL, 0,
     "largest request body accepted; larger ones get 413"},
    {"timeout", SOUK_CONF_DURATION, K(timeout_ms), "30s", 1000, 3600000, NULL, 0,
     "idle connection timeout, and how long a handler may take to answer (504)"},
    {"max_connections", SOUK_CONF_INT, K(max_connections), "64", 1, 10000, NULL, 0,
     "concurrent connections"},
    {0},
};
#undef K

/* http.bind must be an address the server can listen on, checked with the
 * rest of the configuration rather than when the server starts. */
static bool check_bind(const char *v, souk_buf_t *expected) {
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
  if (uv_ip4_addr(v, 0, &in) == 0 || uv_ip6_addr(v, 0, &in6) == 0) return true;
  souk_buf_puts(expected, "an IPv4 or IPv6 address such as 127.0.0.1, 0.0.0.0 or ::1");
  return false;
}

const souk_conf_check_t souk__httpd_conf_checks[] = {
    {"bind", check_bind},
    {0},
};

bool souk__httpd_force_remote;

/* ---- state ------------------------------------------------------------- */

typedef struct hreq hreq_t;

struct hreq {
  souk_httpd_req_t pub;
  struct MHD_Connection *conn; /* NULL once detached */
  char *method, *path;
  char peer[INET6_ADDRSTRLEN];
  souk_buf_t body;
  char **hdrs; /* name, value, name, value, ... (owned) */
  size_t nhdrs;
  struct MHD_Response *resp; /* built by respond, queued by the access handler */
  int status;
  size_t bytes;
  uint64_t t0_ns;
  uint64_t deadline_ms;
  const char *route_label; /* static or the route's path: for metrics */
  bool too_big;
  bool dispatched; /* the handler (or an error answer) has been chosen */
  bool answered;   /* the handler called respond */
  bool suspended;
  bool taken;          /* the server answered for the handler (timeout, stop) */
  bool detached;       /* the connection is gone; freed by the handler's respond */
  hreq_t *prev, *next; /* list of suspended requests */
};

typedef struct mount {
  const souk_route_t *routes;
  void *ud;
} mount_t;

typedef struct check {
  char *name;
  souk_ready_cb fn;
  void *ud;
} check_t;

/* The uv handles of one run of the server.  They are allocated per start
 * because they close asynchronously: a start right after a stop must not
 * reuse handles that are still closing. */
typedef struct handles {
  uv_poll_t poll;
  uv_timer_t timer; /* MHD_get_timeout */
  uv_timer_t sweep; /* deadlines of handlers that answer later */
  int open;
} handles_t;

static struct {
  struct MHD_Daemon *d;
  handles_t *h;
  bool running;
  souk__httpd_conf_t conf; /* copy; strings owned */
  int port;
  hreq_t *pending;
  mount_t *mounts;
  size_t nmounts;
  check_t *checks;
  size_t nchecks;
  souk_metric_t *m_requests, *m_duration;
} H;

static void builtin_healthz(souk_httpd_req_t *req);
static void builtin_readyz(souk_httpd_req_t *req);
static void builtin_metrics(souk_httpd_req_t *req);

static const souk_route_t builtin_routes[] = {
    {"GET", "/healthz", SOUK_ROUTE_PUBLIC, builtin_healthz},
    {"GET", "/readyz", SOUK_ROUTE_PUBLIC, builtin_readyz},
    {"GET", "/metrics", SOUK_ROUTE_ADMIN, builtin_metrics},
    {0},
};

/* ---- running MHD ------------------------------------------------------- */

static void run_mhd(void);

static void timer_cb(uv_timer_t *t) { run_mhd(); }

static void poll_cb(uv_poll_t *p, int status, int events) { run_mhd(); }

/* Follow MHD's own timeout: connection timeouts, and 0 when it has work
 * left over (a resumed connection, data already buffered). */
static void arm_timer(void) {
  MHD_UNSIGNED_LONG_LONG to = 0;
  if (MHD_get_timeout(H.d, &to) == MHD_YES)
    uv_timer_start(&H.h->timer, timer_cb, to, 0);
  else
    uv_timer_stop(&H.h->timer);
}

static void run_mhd(void) {
  if (!H.d) return;
  MHD_run(H.d);
  if (H.d) arm_timer();
}

/* Ask for an MHD_run from the loop soon: after a resume, which MHD only
 * notices when it runs (and respond may be called from inside MHD_run). */
static void kick(void) {
  if (H.d) uv_timer_start(&H.h->timer, timer_cb, 0, 0);
}

/* ---- requests ---------------------------------------------------------- */

static void pending_unlink(hreq_t *r) {
  if (r->prev)
    r->prev->next = r->next;
  else if (H.pending == r)
    H.pending = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

static void hreq_free(hreq_t *r) {
  souk_free(r->method);
  souk_free(r->path);
  souk_buf_free(&r->body);
  for (size_t i = 0; i < r->nhdrs; i++)
    souk_free(r->hdrs[i]);
  souk_free(r->hdrs);
  if (r->resp) MHD_destroy_response(r->resp);
  souk_free(r);
}

static bool peer_is_loopback(const struct sockaddr *sa) {
  if (!sa) return false;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

static void peer_name(const struct sockaddr *sa, char *out, size_t cap) {
  snprintf(out, cap, "?");
  if (!sa) return;
  if (sa->sa_family == AF_INET)
    uv_ip4_name((const struct sockaddr_in *)sa, out, cap);
  else if (sa->sa_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)sa, out, cap);
}

/* Constant-time comparison, so the token cannot be guessed byte by byte
 * from response times. */
static bool token_eq(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned char diff = (unsigned char)(la != lb);
  for (size_t i = 0; i < la; i++)
    diff |= (unsigned char)(a[i] ^ b[lb ? i % lb : 0]);
  return diff == 0 && lb > 0;
}

static bool bearer_ok(struct MHD_Connection *c) {
  if (!H.conf.token || !*H.conf.token) return false;
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
  h += 7;
  while (*h == ' ')
    h++;
  return token_eq(h, H.conf.token);
}

static hreq_t *hreq_new(struct MHD_Connection *c, const char *url, const char *method) {
  hreq_t *r = souk_calloc(1, sizeof *r);
  r->conn = c;
  r->method = souk_strdup(method);
  r->path = souk_strdup(url);
  r->t0_ns = uv_hrtime();
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci ? ci->client_addr : NULL;
  peer_name(sa, r->peer, sizeof r->peer);
  r->pub.method = r->method;
  r->pub.path = r->path;
  r->pub.body = "";
  r->pub.peer = r->peer;
  r->pub.loopback = peer_is_loopback(sa) && !souk__httpd_force_remote;
  r->pub.authorized = bearer_ok(c);
  r->route_label = "unmatched";
  return r;
}

/* ---- responses --------------------------------------------------------- */

static bool header_ok(const char *s) { return s && *s && !strpbrk(s, "\r\n"); }

int souk_httpd_set_header(souk_httpd_req_t *req, const char *name, const char *value) {
  hreq_t *r = (hreq_t *)req;
  if (!header_ok(name) || !value || strpbrk(value, "\r\n") || strchr(name, ':')) return SOUK_EINVAL;
  r->hdrs = souk_reallocarray(r->hdrs, r->nhdrs + 2, sizeof *r->hdrs);
  r->hdrs[r->nhdrs++] = souk_strdup(name);
  r->hdrs[r->nhdrs++] = souk_strdup(value);
  return 0;
}

static bool has_header(const hreq_t *r, const char *name) {
  for (size_t i = 0; i < r->nhdrs; i += 2)
    if (!strcasecmp(r->hdrs[i], name)) return true;
  return false;
}

/* Build the MHD response: the body, the handler's headers and the
 * security headers every response carries. */
static struct MHD_Response *build_response(hreq_t *r, const char *ctype, souk_buf_t *body) {
  size_t len = body->len;
  char *data = souk_buf_steal(body);
  struct MHD_Response *resp =
      MHD_create_response_from_buffer_with_free_callback(len, data, souk_free);
  if (!resp) souk_oom(len);
  if (!ctype) ctype = "text/plain; charset=utf-8";
  MHD_add_response_header(resp, "Content-Type", ctype);
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(resp, "X-Frame-Options", "DENY");
  bool html = strncasecmp(ctype, "text/html", 9) == 0;
  /* Nothing but HTML pages should ever load sub-resources or run script;
   * an HTML page brings its own policy. */
  if (!html && !has_header(r, "Content-Security-Policy"))
    MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'none'");
  if (!html && !has_header(r, "Cache-Control"))
    MHD_add_response_header(resp, "Cache-Control", "no-store");
  for (size_t i = 0; i < r->nhdrs; i += 2)
    MHD_add_response_header(resp, r->hdrs[i], r->hdrs[i + 1]);
  r->bytes = len;
  return resp;
}

int souk_httpd_respond_buf(souk_httpd_req_t *req, int status, const char *content_type,
                           souk_buf_t *body) {
  hreq_t *r = (hreq_t *)req;
  SOUK_ASSERT(!r->answered);
  r->answered = true;
  if (r->taken) {
    /* The server already answered for a handler that took too long. */
    souk_buf_free(body);
    if (r->detached) hreq_free(r);
    return 0;
  }
  int rc = 0;
  if (status < 100 || status > 599) {
    souk_buf_reset(body);
    souk_buf_puts(body, "internal error\n");
    status = 500;
    content_type = NULL;
    rc = SOUK_EINVAL;
  }
  r->status = status;
  r->resp = build_response(r, content_type, body);
  if (r->suspended) {
    pending_unlink(r);
    r->suspended = false;
    MHD_resume_connection(r->conn);
    kick();
  }
  return rc;
}

int souk_httpd_respond(souk_httpd_req_t *req, int status, const char *content_type,
                       const void *body, size_t len) {
  souk_buf_t b = {0};
  if (len) souk_buf_append(&b, body, len);
  int rc = souk_httpd_respond_buf(req, status, content_type, &b);
  souk_buf_free(&b);
  return rc;
}

int souk_httpd_respond_text(souk_httpd_req_t *req, int status, const char *msg) {
  souk_buf_t b = {0};
  souk_buf_printf(&b, "%s\n", msg);
  return souk_httpd_respond_buf(req, status, NULL, &b);
}

const char *souk_httpd_query(const souk_httpd_req_t *req, const char *name) {
  const hreq_t *r = (const hreq_t *)req;
  if (!r->conn || r->detached) return NULL;
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *souk_httpd_header(const souk_httpd_req_t *req, const char *name) {
  const hreq_t *r = (const hreq_t *)req;
  if (!r->conn || r->detached) return NULL;
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* The server answers in the handler's place (timeout or stop): the
 * handler's hreq_t stays alive until it responds. */
static void take_over(hreq_t *r, int status, const char *msg) {
  pending_unlink(r);
  r->suspended = false;
  r->taken = true;
  r->status = status;
  souk_buf_t b = {0};
  souk_buf_printf(&b, "%s\n", msg);
  r->resp = build_response(r, NULL, &b);
  souk_buf_free(&b);
  MHD_resume_connection(r->conn);
}

static void sweep_cb(uv_timer_t *t) {
  uint64_t now = souk_now_ms();
  bool any = false;
  for (hreq_t *r = H.pending, *next; r; r = next) {
    next = r->next;
    if (now >= r->deadline_ms) {
      SOUK_WARN("http", "%s %s: the handler did not answer within %lld ms", r->method, r->path,
                (long long)H.conf.timeout_ms);
      take_over(r, 504, "the handler did not answer in time");
      any = true;
    }
  }
  if (any) kick();
}

/* ---- routing ----------------------------------------------------------- */

static bool method_matches(const char *route_method, const char *method) {
  if (!strcmp(route_method, method)) return true;
  return !strcmp(route_method, "GET") && !strcmp(method, "HEAD");
}

/* How well pattern matches path: 0 not at all, else higher is better
 * (exact beats any prefix; longer prefixes beat shorter ones). */
static size_t path_score(const char *pattern, const char *path) {
  size_t n = strlen(pattern);
  if (n >= 2 && !strcmp(pattern + n - 2, "/*")) {
    if (!strncmp(path, pattern, n - 1)) return n;
    return 0;
  }
  return strcmp(pattern, path) ? 0 : (size_t)-1;
}

static const souk_route_t *route_find(const char *method, const char *path, void **ud,
                                      souk_buf_t *allow) {
  const souk_route_t *best = NULL;
  size_t best_score = 0;
  bool path_seen = false;
  for (size_t m = 0; m < H.nmounts; m++) {
    for (const souk_route_t *rt = H.mounts[m].routes; rt->path; rt++) {
      size_t sc = path_score(rt->path, path);
      if (!sc) continue;
      path_seen = true;
      if (method_matches(rt->method, method)) {
        if (sc > best_score) {
          best = rt;
          best_score = sc;
          *ud = H.mounts[m].ud;
        }
      } else if (!strstr(allow->data ? allow->data : "", rt->method)) {
        if (allow->len) souk_buf_puts(allow, ", ");
        souk_buf_puts(allow, rt->method);
        if (!strcmp(rt->method, "GET")) souk_buf_puts(allow, ", HEAD");
      }
    }
  }
  if (!best && !path_seen) souk_buf_free(allow);
  return best;
}

static void answer_now(hreq_t *r, int status, const char *msg) {
  souk_httpd_respond_text(&r->pub, status, msg);
}

/* Choose what answers the request: an error, or the route's handler. */
static void dispatch(hreq_t *r) {
  r->dispatched = true;
  if (!H.running) {
    /* Arrived while stopping: no handler may start work it cannot finish. */
    answer_now(r, 503, "shutting down");
    return;
  }
  if (r->too_big) {
    answer_now(r, 413, "request body too large");
    return;
  }
  r->pub.body = r->body.data ? r->body.data : "";
  r->pub.body_len = r->body.len;
  void *ud = NULL;
  souk_buf_t allow = {0};
  souk_buf_puts(&allow, "");
  const souk_route_t *rt = route_find(r->method, r->path, &ud, &allow);
  if (!rt) {
    if (allow.data) {
      souk_httpd_set_header(&r->pub, "Allow", allow.data);
      souk_buf_free(&allow);
      answer_now(r, 405, "method not allowed");
    } else {
      answer_now(r, 404, "not found");
    }
    return;
  }
  souk_buf_free(&allow);
  r->route_label = rt->path;
  if ((rt->flags & SOUK_ROUTE_ADMIN) && !r->pub.loopback && !r->pub.authorized) {
    answer_now(r, 403, "forbidden");
    return;
  }
  r->pub.route = rt;
  r->pub.ud = ud;
  rt->handler(&r->pub);
}

/* ---- MHD callbacks ----------------------------------------------------- */

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls) {
  hreq_t *r = *con_cls;
  if (!r) {
    /* Headers are in; the body (if any) follows in later calls. */
    r = hreq_new(c, url, method);
    *con_cls = r;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > (unsigned long long)H.conf.max_body) r->too_big = true;
    return MHD_YES;
  }
  if (*upload_size) {
    /* Consume every chunk, even of a body that is too large: MHD must
     * have read the upload before a response can be queued. */
    if (!r->too_big) {
      if (r->body.len + *upload_size > (size_t)H.conf.max_body) {
        r->too_big = true;
        souk_buf_free(&r->body);
      } else {
        souk_buf_append(&r->body, upload, *upload_size);
      }
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (!r->dispatched) dispatch(r);
  if (r->resp) {
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    return ok;
  }
  if (!r->suspended) {
    /* The handler answers later: park the connection until it does. */
    r->suspended = true;
    r->deadline_ms = souk_now_ms() + (uint64_t)H.conf.timeout_ms;
    r->next = H.pending;
    if (H.pending) H.pending->prev = r;
    H.pending = r;
    MHD_suspend_connection(c);
  }
  return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  hreq_t *r = *con_cls;
  if (!r) return;
  *con_cls = NULL;
  double ms = (double)(uv_hrtime() - r->t0_ns) / 1e6;
  int status = r->dispatched ? r->status : 0;
  /* The path only: a query string may carry secrets. */
  souk_log(SOUK_LOG_INFO, "http", "%s %s %d %zuB %.1fms peer=%s%s", r->method, r->path, status,
           r->bytes, ms, r->peer, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
  if (H.m_requests) {
    char st[16];
    snprintf(st, sizeof st, "%d", status);
    souk_counter_inc(souk_metric_series(H.m_requests, SOUK_LV(r->route_label, st)));
    souk_histogram_observe(souk_metric_series(H.m_duration, SOUK_LV(r->route_label)), ms / 1000.0);
  }
  if (r->dispatched && !r->answered && !r->taken) {
    /* A suspended connection never completes, so this is a handler that
     * is running right now; should not happen, but never free under it. */
    r->taken = true;
  }
  if (r->taken && !r->answered) {
    r->conn = NULL;
    r->detached = true;
    return;
  }
  hreq_free(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
    msg[--n] = 0;
  souk_log(SOUK_LOG_WARN, "http", "libmicrohttpd: %s", msg);
}

/* ---- built-in routes --------------------------------------------------- */

static void builtin_healthz(souk_httpd_req_t *req) { souk_httpd_respond_text(req, 200, "ok"); }

static void builtin_readyz(souk_httpd_req_t *req) {
  souk_buf_t b = {0};
  bool ok = souk__httpd_ready(&b);
  souk_httpd_respond_buf(req, ok ? 200 : 503, NULL, &b);
  souk_buf_free(&b);
}

static void builtin_metrics(souk_httpd_req_t *req) {
  souk_buf_t b = {0};
  souk__metrics_render(&b);
  souk_httpd_respond_buf(req, 200, SOUK_METRICS_CONTENT_TYPE, &b);
  souk_buf_free(&b);
}

bool souk__httpd_ready(souk_buf_t *detail) {
  bool all = true;
  for (size_t i = 0; i < H.nchecks; i++) {
    souk_buf_t why = {0};
    bool ok = H.checks[i].fn(H.checks[i].ud, &why);
    all = all && ok;
    if (detail) {
      if (ok)
        souk_buf_printf(detail, "ok %s\n", H.checks[i].name);
      else
        souk_buf_printf(detail, "fail %s%s%s\n", H.checks[i].name, why.len ? ": " : "",
                        why.len ? why.data : "");
    }
    souk_buf_free(&why);
  }
  if (detail && !H.nchecks) souk_buf_puts(detail, "ok\n");
  return all;
}

int souk_httpd_add_ready_check(const char *name, souk_ready_cb fn, void *ud) {
  SOUK_ASSERT(name && fn);
  for (size_t i = 0; i < H.nchecks; i++)
    if (!strcmp(H.checks[i].name, name)) return SOUK_EEXIST;
  H.checks = souk_reallocarray(H.checks, H.nchecks + 1, sizeof *H.checks);
  H.checks[H.nchecks++] = (check_t){souk_strdup(name), fn, ud};
  return 0;
}

int souk_httpd_remove_ready_check(const char *name) {
  for (size_t i = 0; i < H.nchecks; i++) {
    if (!strcmp(H.checks[i].name, name)) {
      souk_free(H.checks[i].name);
      memmove(H.checks + i, H.checks + i + 1, (H.nchecks - i - 1) * sizeof *H.checks);
      if (--H.nchecks == 0) {
        souk_free(H.checks);
        H.checks = NULL;
      }
      return 0;
    }
  }
  return SOUK_ENOTFOUND;
}

/* ---- mounting ---------------------------------------------------------- */

static bool route_valid(const souk_route_t *rt) {
  if (!rt->method || !*rt->method || !rt->handler || rt->path[0] != '/') return false;
  for (const char *p = rt->method; *p; p++)
    if (*p < 'A' || *p > 'Z') return false;
  const char *star = strchr(rt->path, '*');
  if (star && (star[1] || star == rt->path || star[-1] != '/')) return false;
  return true;
}

int souk_httpd_mount(const souk_route_t *routes, void *ud) {
  SOUK_ASSERT(routes);
  for (size_t m = 0; m < H.nmounts; m++)
    if (H.mounts[m].routes == routes) return SOUK_EEXIST;
  for (const souk_route_t *rt = routes; rt->path; rt++) {
    if (!route_valid(rt)) {
      SOUK_ERROR("http", "invalid route %s %s", rt->method ? rt->method : "(null)", rt->path);
      return SOUK_EINVAL;
    }
    for (size_t m = 0; m < H.nmounts; m++) {
      for (const souk_route_t *o = H.mounts[m].routes; o->path; o++) {
        if (!strcmp(o->method, rt->method) && !strcmp(o->path, rt->path)) {
          SOUK_ERROR("http", "route %s %s is mounted twice", rt->method, rt->path);
          return SOUK_EEXIST;
        }
      }
    }
  }
  H.mounts = souk_reallocarray(H.mounts, H.nmounts + 1, sizeof *H.mounts);
  H.mounts[H.nmounts++] = (mount_t){routes, ud};
  return 0;
}

void souk_httpd_unmount(const souk_route_t *routes) {
  for (size_t m = 0; m < H.nmounts; m++) {
    if (H.mounts[m].routes == routes) {
      memmove(H.mounts + m, H.mounts + m + 1, (H.nmounts - m - 1) * sizeof *H.mounts);
      if (--H.nmounts == 0) {
        souk_free(H.mounts);
        H.mounts = NULL;
      }
      return;
    }
  }
}

/* ---- start and stop ---------------------------------------------------- */

static void conf_free(souk__httpd_conf_t *c) {
  souk_free(c->bind);
  souk_free(c->token);
  memset(c, 0, sizeof *c);
}

int souk__httpd_start(const souk__httpd_conf_t *conf) {
  if (!conf) conf = &souk__httpd_conf;
  if (H.running) return SOUK_EBUSY;
  if (!conf->enabled) {
    SOUK_INFO("http", "HTTP server disabled (http.enabled)");
    return 0;
  }
  H.conf = *conf;
  H.conf.bind = souk_strdup(conf->bind && *conf->bind ? conf->bind : "127.0.0.1");
  H.conf.token = souk_strdup(conf->token);
  if (H.conf.max_body <= 0) H.conf.max_body = 0;
  if (H.conf.timeout_ms < 1000) H.conf.timeout_ms = 1000;
  if (H.conf.max_connections < 1) H.conf.max_connections = 64;
  if (H.conf.token) souk_log_add_secret(H.conf.token);

  union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } addr;
  unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (uv_ip4_addr(H.conf.bind, (int)H.conf.port, &addr.in) == 0) {
    /* ok */
  } else if (uv_ip6_addr(H.conf.bind, (int)H.conf.port, &addr.in6) == 0) {
    flags |= MHD_USE_IPv6;
  } else {
    SOUK_ERROR("http", "http.bind: '%s' is not an IPv4 or IPv6 address", H.conf.bind);
    conf_free(&H.conf);
    return SOUK_ECONFIG;
  }
  int rc = souk_httpd_mount(builtin_routes, NULL);
  if (rc != 0 && rc != SOUK_EEXIST) {
    conf_free(&H.conf);
    return rc;
  }
  unsigned timeout_s = (unsigned)((H.conf.timeout_ms + 999) / 1000);
  H.d = MHD_start_daemon(flags, (uint16_t)H.conf.port, NULL, NULL, on_access, NULL,
                         MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &addr.sa,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)H.conf.max_connections,
                         MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, NULL, MHD_OPTION_END);
  if (!H.d) {
    SOUK_ERROR("http", "cannot listen on %s port %lld", H.conf.bind, (long long)H.conf.port);
    conf_free(&H.conf);
    return SOUK_EIO;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(H.d, MHD_DAEMON_INFO_EPOLL_FD);
  int epfd = di ? di->epoll_fd : -1;
  di = MHD_get_daemon_info(H.d, MHD_DAEMON_INFO_BIND_PORT);
  H.port = di ? di->port : (int)H.conf.port;
  H.h = souk_calloc(1, sizeof *H.h);
  if (epfd < 0 || uv_poll_init(souk_loop(), &H.h->poll, epfd) != 0) {
    SOUK_ERROR("http", "cannot watch libmicrohttpd's epoll fd");
    souk_free(H.h);
    H.h = NULL;
    MHD_stop_daemon(H.d);
    H.d = NULL;
    conf_free(&H.conf);
    return SOUK_EIO;
  }
  uv_timer_init(souk_loop(), &H.h->timer);
  uv_timer_init(souk_loop(), &H.h->sweep);
  H.h->open = 3;
  uv_poll_start(&H.h->poll, UV_READABLE, poll_cb);
  /* Deadlines of late handlers are checked twice a second; the timer
   * must not keep the loop alive on its own. */
  uv_timer_start(&H.h->sweep, sweep_cb, 500, 500);
  uv_unref((uv_handle_t *)&H.h->sweep);

  H.m_requests =
      souk_counter_new("souk_httpd_requests_total",
                       "HTTP requests served, by route pattern and status.", "route,status");
  H.m_duration = souk_histogram_new("souk_httpd_request_duration_seconds",
                                    "Time from a request's headers to its completion.", "route",
                                    souk_metric_latency_bounds, souk_metric_latency_nbounds);
  H.running = true;
  SOUK_INFO("http", "listening on %s%s%s:%d", flags & MHD_USE_IPv6 ? "[" : "", H.conf.bind,
            flags & MHD_USE_IPv6 ? "]" : "", H.port);
  arm_timer();
  return 0;
}

int souk__httpd_port(void) { return H.running ? H.port : 0; }

bool souk__httpd_running(void) { return H.running; }

static void handle_closed(uv_handle_t *h) {
  handles_t *hs = h->data;
  if (--hs->open == 0) souk_free(hs);
}

void souk__httpd_stop(void) {
  if (!H.running) return;
  H.running = false;
  /* MHD must not be stopped with suspended connections: answer them for
   * their handlers, resume them and let MHD see that once. */
  bool any = H.pending != NULL;
  while (H.pending)
    take_over(H.pending, 503, "shutting down");
  if (any) MHD_run(H.d);
  /* Close the poll before MHD closes the fd it watches. */
  H.h->poll.data = H.h->timer.data = H.h->sweep.data = H.h;
  uv_close((uv_handle_t *)&H.h->poll, handle_closed);
  uv_close((uv_handle_t *)&H.h->timer, handle_closed);
  uv_close((uv_handle_t *)&H.h->sweep, handle_closed);
  H.h = NULL;
  struct MHD_Daemon *d = H.d;
  H.d = NULL;
  MHD_stop_daemon(d);
  H.m_requests = H.m_duration = NULL;
  H.port = 0;
  conf_free(&H.conf);
  souk_httpd_unmount(builtin_routes);
  SOUK_INFO("http", "stopped");
}
