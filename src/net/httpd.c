/* The HTTP server on the loop: libmicrohttpd in external-epoll mode.
 *
 * MHD is started with MHD_USE_EPOLL and no thread of its own.  Its epoll fd
 * becomes readable whenever anything it watches (the listening socket, the
 * connections, its inter-thread channel for resumed connections) has work,
 * so one uv_poll on that fd plus one uv_timer following MHD_get_timeout()
 * drive it completely; MHD_run() never blocks.  All MHD callbacks therefore
 * run on the loop thread, inside MHD_run().
 *
 * MHD stops watching its listening socket while it is at its connection
 * limit and watches it again only at the start of a later MHD_run(); so
 * whenever a run ends a connection, another run follows at once (see
 * run_mhd), or a server whose other connections are idle would never
 * accept again.
 *
 * A connection lives in an hconn_t from MHD's "started" to its "closed"
 * notification: its peer, whether it counts against its address's cap, and
 * the deadline of what it owes (its request headers, then its body).  MHD's
 * own timeout is an idle timeout, which a client sending a byte a second
 * never reaches, so these deadlines are souk's: the sweep shuts a late
 * connection's socket down and MHD then closes it as a client's close.
 *
 * A request lives in an hreq_t from its first access-handler call to MHD's
 * completion callback.  Handlers that answer later leave the connection
 * suspended; souk_httpd_respond() resumes it and the next access-handler
 * call queues the response.  A handler that is too slow (http.timeout) or
 * still owes an answer at stop gets its connection answered for it (504 or
 * 503); its hreq_t is then kept, detached from the connection, until the
 * handler's own answer arrives and frees it. */
#include "net/httpd.h"

#include "net/peer.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "core/metrics.h"
#include "souk/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
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
     "bearer token for /metrics and admin routes from requests that are not local; set "
     "SOUK_HTTP_TOKEN"},
    {"max_body", SOUK_CONF_SIZE, K(max_body), "1MB", 0, (int64_t)1 << 30, NULL, 0,
     "largest request body accepted; a larger Content-Length gets 413 before the body is read"},
    {"timeout", SOUK_CONF_DURATION, K(timeout_ms), "30s", 1000, 3600000, NULL, 0,
     "idle connection timeout, the time a request's body may take after its headers, and how "
     "long a handler may take to answer (504)"},
    {"max_connections", SOUK_CONF_INT, K(max_connections), "64", 1, 10000, NULL, 0,
     "concurrent connections; more wait until one ends"},
    {"max_connections_per_address", SOUK_CONF_INT, K(max_per_address), "16", 1, 10000, NULL, 0,
     "concurrent connections from one client address (an IPv6 /64 counts as one); trusted "
     "proxies are exempt and the requests they forward count by client (429 over the cap)"},
    {"header_timeout", SOUK_CONF_DURATION, K(header_timeout_ms), "10s", 1000, 3600000, NULL, 0,
     "a connection that has not sent a request's whole headers this long after connecting (or "
     "after its previous response) is dropped, however slowly it trickles bytes"},
    {"trusted_proxies", SOUK_CONF_STRING_LIST, K(trusted_proxies), NULL, 0, 0, NULL, 0,
     "addresses or CIDR ranges of reverse proxies whose Forwarded / X-Forwarded-For "
     "headers name the client, e.g. [127.0.0.1, ::1]; a request with those headers from "
     "any other peer is never local"},
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

/* Each of http.trusted_proxies must be an address or a range; a host
 * name would never match a peer, and the proxy's requests would quietly
 * stop being judged by the client it names. */
static bool check_proxy(const char *v, souk_buf_t *expected) {
  souk__cidr_t c;
  if (souk__cidr_parse(v, &c) == 0) return true;
  souk_buf_puts(expected, "an address or a range such as 127.0.0.1, ::1 or 10.0.0.0/8 (no bits "
                          "set after the prefix)");
  return false;
}

const souk_conf_check_t souk__httpd_conf_checks[] = {
    {"bind", check_bind},
    {"trusted_proxies", check_proxy},
    {0},
};

bool souk__httpd_force_remote;

/* ---- state ------------------------------------------------------------- */

typedef struct hreq hreq_t;
typedef struct hconn hconn_t;

/* What a connection owes before its deadline. */
typedef enum owed { OWED_NOTHING, OWED_HEADERS, OWED_BODY } owed_t;

struct hconn {
  struct MHD_Connection *c;
  int fd;
  souk__addr_t peer;
  souk__addr_t key; /* the per-address count it holds, when counted */
  bool counted;
  owed_t owed;
  uint64_t deadline_ms; /* when owed is not OWED_NOTHING */
  bool linger;          /* answered before its body: drain it after MHD's close */
  unsigned served;      /* requests completed on it (kept alive) */
  hconn_t *prev, *next;
};

/* A connection answered before its body arrived, kept open on a duplicate
 * of its descriptor after MHD closed its own, to read and throw away what
 * the client still sends.  Closing a socket with unread data makes the
 * kernel send a reset, which can reach the client before it has read the
 * answer (the 413 would show as "connection reset"); nginx's lingering
 * close does the same.  Bounded in time, bytes and number. */
typedef struct linger_conn linger_t;
struct linger_conn {
  uv_poll_t poll;
  uv_timer_t timer;
  int fd;
  int open; /* handles not yet closed */
  size_t drained;
  linger_t *prev, *next;
};
#define LINGER_MS        2000
#define LINGER_MAX_BYTES (1024 * 1024)
/* Deadlines are checked this often, and a probe for closed clients runs
 * this soon after connections come or go. */
#define SWEEP_EVERY_MS 500
#define PROBE_AFTER_MS 20

struct hreq {
  souk_httpd_req_t pub;
  struct MHD_Connection *conn; /* NULL once detached */
  char *method, *path;
  char peer[SOUK_ADDR_STRLEN]; /* the client */
  char via[SOUK_ADDR_STRLEN];  /* the trusted proxy it came through, or "" */
  souk__addr_t key;            /* the per-address count it holds, when counted */
  bool counted;                /* a proxied request counted against its client */
  bool too_many;               /* its client is over http.max_connections_per_address */
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
  hconn_t *conns; /* every open connection */
  linger_t *lingering;
  size_t nlingering;
  struct pollfd *probe_fds; /* probe_closed_clients(), max_connections of each */
  hconn_t **probe_conns;
  size_t probe_cap;
  size_t nconns;
  size_t nconns_after_run; /* nconns when the last MHD_run returned */
  bool at_limit;           /* nconns reached max_connections (logged once) */
  souk__addr_counts_t counts;
  souk__cidr_t *trusted;
  size_t ntrusted;
  mount_t *mounts;
  size_t nmounts;
  check_t *checks;
  size_t nchecks;
  souk_metric_t *m_requests, *m_duration, *m_conns, *m_closed;
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
static void probe_soon(void);
static void sweep_cb(uv_timer_t *t);

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

/* Ask for an MHD_run from the loop soon: after a resume, which MHD only
 * notices when it runs (and respond may be called from inside MHD_run). */
static void kick(void) {
  if (H.d) uv_timer_start(&H.h->timer, timer_cb, 0, 0);
}

static void run_mhd(void) {
  if (!H.d) return;
  MHD_run(H.d);
  if (!H.d) return;
  /* MHD takes its listening socket out of its epoll set while it is at
   * its connection limit, and puts it back only at the start of a run, if
   * it is below the limit by then.  Connections end at the end of a run,
   * so after a run that ended any, run again now: nothing else may wake
   * MHD (idle connections, no timeout at all with none left), and the
   * connections waiting in the backlog would never be accepted. */
  bool ended = H.nconns < H.nconns_after_run;
  if (H.nconns != H.nconns_after_run) probe_soon();
  H.nconns_after_run = H.nconns;
  if (ended)
    kick();
  else
    arm_timer();
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

/* ---- connections ------------------------------------------------------ */

static hconn_t *conn_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci =
      c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
  return ci ? ci->socket_context : NULL;
}

static void conn_owe(hconn_t *hc, owed_t owed, int64_t within_ms) {
  if (!hc) return;
  hc->owed = owed;
  hc->deadline_ms = owed == OWED_NOTHING ? 0 : souk_now_ms() + (uint64_t)within_ms;
}

static void count_closed(const char *reason) {
  if (H.m_closed) souk_counter_inc(souk_metric_series(H.m_closed, SOUK_LV(reason)));
}

/* MHD's accept policy: one client address may not hold more than its
 * share, so that a single peer cannot take every connection.  Trusted
 * proxies carry everyone's traffic and are exempt; what they forward is
 * counted per client when the headers are in. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *sa, socklen_t len) {
  souk__addr_t a, key;
  if (souk__addr_from_sockaddr(sa, &a) != 0 || souk__cidr_match(H.trusted, H.ntrusted, &a))
    return MHD_YES;
  souk__addr_key(&a, &key);
  if (souk__addr_count(&H.counts, &key) < (unsigned)H.conf.max_per_address) return MHD_YES;
  char name[SOUK_ADDR_STRLEN];
  souk__addr_str(&a, name);
  SOUK_INFO("http",
            "refused a connection from %s: it already has %lld open "
            "(http.max_connections_per_address)",
            name, (long long)H.conf.max_per_address);
  count_closed("per_address");
  return MHD_NO;
}

static void linger_closed(uv_handle_t *h) {
  linger_t *l = h->data;
  if (--l->open == 0) {
    close(l->fd);
    souk_free(l);
  }
}

static void linger_end(linger_t *l) {
  if (l->prev)
    l->prev->next = l->next;
  else
    H.lingering = l->next;
  if (l->next) l->next->prev = l->prev;
  H.nlingering--;
  uv_close((uv_handle_t *)&l->poll, linger_closed);
  uv_close((uv_handle_t *)&l->timer, linger_closed);
}

static void linger_read_cb(uv_poll_t *p, int status, int events) {
  linger_t *l = p->data;
  char buf[16384];
  while (status == 0 && l->drained < LINGER_MAX_BYTES) {
    ssize_t n = read(l->fd, buf, sizeof buf);
    if (n > 0) {
      l->drained += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    break; /* the client closed its side, or the socket failed */
  }
  linger_end(l);
}

static void linger_timer_cb(uv_timer_t *t) { linger_end(t->data); }

/* Called while MHD still holds fd (it closes it right after). */
static void linger_start(int fd) {
  if (fd < 0 || H.nlingering >= (size_t)H.conf.max_connections) return;
  int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dfd < 0) return;
  linger_t *l = souk_calloc(1, sizeof *l);
  l->fd = dfd;
  if (uv_poll_init(souk_loop(), &l->poll, dfd) != 0) {
    close(dfd);
    souk_free(l);
    return;
  }
  uv_timer_init(souk_loop(), &l->timer);
  l->poll.data = l->timer.data = l;
  l->open = 2;
  uv_poll_start(&l->poll, UV_READABLE | UV_DISCONNECT, linger_read_cb);
  uv_timer_start(&l->timer, linger_timer_cb, LINGER_MS, 0);
  l->next = H.lingering;
  if (H.lingering) H.lingering->prev = l;
  H.lingering = l;
  H.nlingering++;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
    hconn_t *hc = *socket_context;
    if (!hc) return;
    *socket_context = NULL;
    if (hc->prev)
      hc->prev->next = hc->next;
    else
      H.conns = hc->next;
    if (hc->next) hc->next->prev = hc->prev;
    if (hc->counted) souk__addr_count_add(&H.counts, &hc->key, -1);
    if (hc->linger && H.running) linger_start(hc->fd);
    souk_free(hc);
    H.nconns--;
    if (H.at_limit && H.nconns < (size_t)H.conf.max_connections) H.at_limit = false;
    if (H.m_conns) souk_gauge_set(souk_metric_series(H.m_conns, NULL), (double)H.nconns);
    return;
  }
  hconn_t *hc = souk_calloc(1, sizeof *hc);
  hc->c = c;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  hc->fd = ci ? ci->connect_fd : -1;
  ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (souk__addr_from_sockaddr(ci ? ci->client_addr : NULL, &hc->peer) == 0 &&
      !souk__cidr_match(H.trusted, H.ntrusted, &hc->peer)) {
    souk__addr_key(&hc->peer, &hc->key);
    souk__addr_count_add(&H.counts, &hc->key, 1);
    hc->counted = true;
  }
  conn_owe(hc, OWED_HEADERS, H.conf.header_timeout_ms);
  hc->next = H.conns;
  if (H.conns) H.conns->prev = hc;
  H.conns = hc;
  *socket_context = hc;
  H.nconns++;
  if (H.m_conns) souk_gauge_set(souk_metric_series(H.m_conns, NULL), (double)H.nconns);
  if (!H.at_limit && H.nconns >= (size_t)H.conf.max_connections) {
    /* Once per time the limit is reached: the backlog then holds the
     * newcomers, which are taken as soon as a connection ends. */
    H.at_limit = true;
    SOUK_WARN("http",
              "%zu connections open, the limit (http.max_connections): new ones wait "
              "until one ends",
              H.nconns);
  }
}

/* Drop connections that are late with what they owe.  shutdown() rather
 * than close(): MHD still owns the descriptor; it sees the end of the
 * stream and closes the connection as it would a client's close. */
static bool sweep_connections(uint64_t now) {
  bool any = false;
  for (hconn_t *hc = H.conns; hc; hc = hc->next) {
    if (hc->owed == OWED_NOTHING || now < hc->deadline_ms || hc->fd < 0) continue;
    char name[SOUK_ADDR_STRLEN];
    souk__addr_str(&hc->peer, name);
    bool head = hc->owed == OWED_HEADERS;
    hc->owed = OWED_NOTHING;
    shutdown(hc->fd, SHUT_RDWR);
    any = true;
    if (head && hc->served) {
      /* Most likely a kept-alive connection with nothing more to ask:
       * the headers' deadline is also how long one may sit idle. */
      SOUK_DEBUG("http", "closed a kept-alive connection from %s: no new request within %lld ms",
                 name, (long long)H.conf.header_timeout_ms);
      count_closed("idle");
      continue;
    }
    SOUK_INFO("http",
              "dropped a connection from %s: no complete request %s within %lld ms "
              "(http.%s)",
              name, head ? "headers" : "body",
              (long long)(head ? H.conf.header_timeout_ms : H.conf.timeout_ms),
              head ? "header_timeout" : "timeout");
    count_closed(head ? "header_timeout" : "body_timeout");
  }
  return any;
}

/* Drop connections waiting for headers from a client that has closed its
 * side with nothing left unread: those headers can never come.  MHD would
 * close them itself on reading the end of the stream, but it reads on
 * edge-triggered epoll events and takes a short read for "drained", so an
 * end of stream that arrived with the last bytes (a client that sent half
 * a request and gave up while waiting in the backlog) is never read, and
 * the connection would hold its slot until a timeout. */
static bool probe_closed_clients(void) {
  size_t n = 0;
  for (hconn_t *hc = H.conns; hc && n < H.probe_cap; hc = hc->next) {
    if (hc->owed != OWED_HEADERS || hc->fd < 0) continue;
    H.probe_fds[n] = (struct pollfd){.fd = hc->fd, .events = POLLRDHUP};
    H.probe_conns[n++] = hc;
  }
  if (!n || poll(H.probe_fds, n, 0) <= 0) return false;
  bool any = false;
  for (size_t i = 0; i < n; i++) {
    int unread = 0;
    if (!(H.probe_fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR))) continue;
    /* Bytes still unread are MHD's to read first: they may complete the
     * headers of a client that sent its request and then shut its side,
     * as HTTP allows. */
    if (ioctl(H.probe_fds[i].fd, FIONREAD, &unread) != 0 || unread > 0) continue;
    hconn_t *hc = H.probe_conns[i];
    char name[SOUK_ADDR_STRLEN];
    souk__addr_str(&hc->peer, name);
    SOUK_DEBUG("http",
               "closing a connection from %s: the client closed it before sending "
               "complete request headers",
               name);
    hc->owed = OWED_NOTHING;
    shutdown(hc->fd, SHUT_RDWR);
    any = true;
  }
  return any;
}

/* Look for closed clients soon (not at once: MHD reads what a new
 * connection brought on its next run), however busy the server is: the
 * sweep is brought forward, never pushed back. */
static void probe_soon(void) {
  if (H.h && uv_timer_get_due_in(&H.h->sweep) > PROBE_AFTER_MS)
    uv_timer_start(&H.h->sweep, sweep_cb, PROBE_AFTER_MS, SWEEP_EVERY_MS);
}

/* All values of a request header, joined with ", " as HTTP allows for
 * list-valued headers; false when there is none. */
typedef struct join {
  const char *name;
  souk_buf_t *out;
  bool found;
} join_t;

static enum MHD_Result join_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value) {
  join_t *j = cls;
  if (!key || strcasecmp(key, j->name) != 0) return MHD_YES;
  if (j->found) souk_buf_puts(j->out, ", ");
  souk_buf_puts(j->out, value ? value : "");
  j->found = true;
  return MHD_YES;
}

static const char *header_all(struct MHD_Connection *c, const char *name, souk_buf_t *out) {
  join_t j = {name, out, false};
  MHD_get_connection_values(c, MHD_HEADER_KIND, join_cb, &j);
  if (!j.found) return NULL;
  souk_buf_puts(out, "");
  return out->data ? out->data : "";
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
  souk__addr_t peer;
  souk__peer_view_t v = {0};
  if (souk__addr_from_sockaddr(ci ? ci->client_addr : NULL, &peer) == 0) {
    souk_buf_t xff = {0}, fwd = {0};
    souk__peer_judge(&peer, header_all(c, "X-Forwarded-For", &xff),
                     header_all(c, "Forwarded", &fwd), H.trusted, H.ntrusted, &v);
    souk_buf_free(&xff);
    souk_buf_free(&fwd);
    souk__addr_str(&v.client, r->peer);
  } else {
    snprintf(r->peer, sizeof r->peer, "?");
  }
  if (v.via_proxy) {
    /* The client behind a proxy is held to the same cap as one that
     * connects itself, for as long as its request runs. */
    souk__addr_str(&peer, r->via);
    souk__addr_key(&v.client, &r->key);
    if (souk__addr_count(&H.counts, &r->key) >= (unsigned)H.conf.max_per_address) {
      r->too_many = true;
    } else {
      souk__addr_count_add(&H.counts, &r->key, 1);
      r->counted = true;
    }
  }
  r->pub.method = r->method;
  r->pub.path = r->path;
  r->pub.body = "";
  r->pub.peer = r->peer;
  r->pub.loopback = v.local && !souk__httpd_force_remote;
  r->pub.authorized = bearer_ok(c);
  r->route_label = "unmatched";
  return r;
}

/* The request no longer holds its client's count (it completed, or the
 * connection went away). */
static void hreq_uncount(hreq_t *r) {
  if (r->counted) souk__addr_count_add(&H.counts, &r->key, -1);
  r->counted = false;
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
  if (sweep_connections(now)) any = true;
  if (probe_closed_clients()) any = true;
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
  if (r->too_many) {
    SOUK_INFO("http",
              "refused a request from %s via %s: it already has %lld under way "
              "(http.max_connections_per_address)",
              r->peer, r->via, (long long)H.conf.max_per_address);
    answer_now(r, 429, "too many connections from your address");
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

/* Queue the response respond built, if any. */
static enum MHD_Result queue_built(hreq_t *r, struct MHD_Connection *c) {
  enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, r->resp);
  MHD_destroy_response(r->resp);
  r->resp = NULL;
  return ok;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls) {
  hreq_t *r = *con_cls;
  if (!r) {
    /* Headers are in; the body (if any) follows in later calls, and must
     * be complete within http.timeout. */
    conn_owe(conn_of(c), OWED_BODY, H.conf.timeout_ms);
    r = hreq_new(c, url, method);
    *con_cls = r;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > (unsigned long long)H.conf.max_body) r->too_big = true;
    if (r->too_big || r->too_many) {
      /* Refuse now, before any of the body: a response queued in this
       * first call makes MHD skip the body and close the connection after
       * the answer, so a client never has to send (or wait with) what
       * would be thrown away. */
      hconn_t *hc = conn_of(c);
      conn_owe(hc, OWED_NOTHING, 0);
      if (hc) hc->linger = true;
      dispatch(r);
      return queue_built(r, c);
    }
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
  if (!r->dispatched) {
    /* The whole request is in: the handler's own deadline applies now. */
    conn_owe(conn_of(c), OWED_NOTHING, 0);
    dispatch(r);
  }
  if (r->resp) return queue_built(r, c);
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
  /* A kept-alive connection owes the next request's headers from now. */
  hconn_t *hc = conn_of(c);
  conn_owe(hc, OWED_HEADERS, H.conf.header_timeout_ms);
  if (hc) hc->served++;
  hreq_uncount(r);
  double ms = (double)(uv_hrtime() - r->t0_ns) / 1e6;
  int status = r->dispatched ? r->status : 0;
  /* The path only: a query string may carry secrets. */
  souk_log(SOUK_LOG_INFO, "http", "%s %s %d %zuB %.1fms peer=%s%s%s%s", r->method, r->path, status,
           r->bytes, ms, r->peer, r->via[0] ? " via=" : "", r->via,
           toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
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
  souk_free(H.trusted);
  H.trusted = NULL;
  H.ntrusted = 0;
}

/* http.trusted_proxies as ranges; SOUK_ECONFIG (logged) for an entry that
 * is not an address or a range. */
static int trusted_parse(const souk_conf_strs_t *l) {
  H.trusted = l->n ? souk_calloc(l->n, sizeof *H.trusted) : NULL;
  H.ntrusted = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (souk__cidr_parse(l->v[i], &H.trusted[H.ntrusted]) != 0) {
      SOUK_ERROR("http",
                 "http.trusted_proxies: '%s' is not an address or a range such as "
                 "127.0.0.1, ::1 or 10.0.0.0/8",
                 l->v[i]);
      return SOUK_ECONFIG;
    }
    H.ntrusted++;
  }
  return 0;
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
  if (H.conf.max_per_address < 1) H.conf.max_per_address = 16;
  if (H.conf.header_timeout_ms < 1000) H.conf.header_timeout_ms = 10000;
  /* The list stays the config's: only the parsed ranges are kept. */
  memset(&H.conf.trusted_proxies, 0, sizeof H.conf.trusted_proxies);
  if (H.conf.token) souk_log_add_secret(H.conf.token);
  if (trusted_parse(&conf->trusted_proxies) != 0) {
    conf_free(&H.conf);
    return SOUK_ECONFIG;
  }

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
  H.d = MHD_start_daemon(flags, (uint16_t)H.conf.port, on_accept, NULL, on_access, NULL,
                         MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &addr.sa,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)H.conf.max_connections,
                         MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
                         MHD_OPTION_END);
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
  H.probe_cap = (size_t)H.conf.max_connections;
  H.probe_fds = souk_calloc(H.probe_cap, sizeof *H.probe_fds);
  H.probe_conns = souk_calloc(H.probe_cap, sizeof *H.probe_conns);
  uv_poll_start(&H.h->poll, UV_READABLE, poll_cb);
  /* Deadlines of late handlers are checked twice a second; the timer
   * must not keep the loop alive on its own. */
  uv_timer_start(&H.h->sweep, sweep_cb, SWEEP_EVERY_MS, SWEEP_EVERY_MS);
  uv_unref((uv_handle_t *)&H.h->sweep);

  H.m_requests =
      souk_counter_new("souk_httpd_requests_total",
                       "HTTP requests served, by route pattern and status.", "route,status");
  H.m_duration = souk_histogram_new("souk_httpd_request_duration_seconds",
                                    "Time from a request's headers to its completion.", "route",
                                    souk_metric_latency_bounds, souk_metric_latency_nbounds);
  H.m_conns = souk_gauge_new("souk_httpd_connections", "Open HTTP connections.", NULL);
  souk_gauge_set(souk_metric_series(H.m_conns, NULL), (double)H.nconns);
  H.m_closed =
      souk_counter_new("souk_httpd_connections_closed_total",
                       "HTTP connections souk refused or dropped: per_address (refused "
                       "at accept), header_timeout, body_timeout, idle (kept alive without a new "
                       "request for header_timeout).",
                       "reason");
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
  H.m_requests = H.m_duration = H.m_conns = H.m_closed = NULL;
  H.port = 0;
  while (H.lingering)
    linger_end(H.lingering);
  /* MHD reported every connection closed while it stopped. */
  SOUK_ASSERT(H.nconns == 0 && H.conns == NULL);
  H.nconns_after_run = 0;
  H.at_limit = false;
  souk__addr_counts_free(&H.counts);
  souk_free(H.probe_fds);
  souk_free(H.probe_conns);
  H.probe_fds = NULL;
  H.probe_conns = NULL;
  H.probe_cap = 0;
  conf_free(&H.conf);
  souk_httpd_unmount(builtin_routes);
  SOUK_INFO("http", "stopped");
}
