/* The Redis connection the cache and the identify lock share; see
 * redisconn.h. */
#include "cache/redisconn.h"

#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* ---- URL ------------------------------------------------------------------- */

/* The parse proper; on failure the caller frees what it left in u. */
static int url_parse(const char *url, souk__redis_url_t *u) {
  if (strncmp(url, "redis://", 8) != 0) return SOUK_ECONFIG;
  const char *p = url + 8, *end = p + strcspn(p, "/");
  const char *at = memchr(p, '@', (size_t)(end - p));
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon) return SOUK_ECONFIG;
    if (colon > p) u->user = souk_strndup(p, (size_t)(colon - p));
    if (at > colon + 1) u->password = souk_strndup(colon + 1, (size_t)(at - colon - 1));
    p = at + 1;
  }
  const char *hend;
  if (*p == '[') {
    hend = memchr(p, ']', (size_t)(end - p));
    if (!hend) return SOUK_ECONFIG;
    u->host = souk_strndup(p + 1, (size_t)(hend - p - 1));
    hend++;
  } else {
    hend = memchr(p, ':', (size_t)(end - p));
    if (!hend) hend = end;
    u->host = souk_strndup(p, (size_t)(hend - p));
  }
  if (!u->host[0]) return SOUK_ECONFIG;
  u->port = 6379;
  if (hend < end) {
    if (*hend != ':' || hend + 1 == end) return SOUK_ECONFIG;
    long port = 0;
    for (const char *q = hend + 1; q < end; q++) {
      if (!isdigit((unsigned char)*q)) return SOUK_ECONFIG;
      port = port * 10 + (*q - '0');
      if (port > 65535) return SOUK_ECONFIG;
    }
    if (port < 1) return SOUK_ECONFIG;
    u->port = (int)port;
  }
  if (*end == '/' && end[1]) {
    long db = 0;
    for (const char *q = end + 1; *q; q++) {
      if (!isdigit((unsigned char)*q) || db > 100000) return SOUK_ECONFIG;
      db = db * 10 + (*q - '0');
    }
    u->db = (int)db;
  }
  return 0;
}

int souk__redis_url_parse(const char *url, souk__redis_url_t *u) {
  int rc = url_parse(url, u);
  if (rc) {
    souk__redis_url_free(u);
    return rc;
  }
  if (u->password) souk_log_add_secret(u->password);
  return 0;
}

void souk__redis_url_free(souk__redis_url_t *u) {
  souk_free(u->host);
  souk_free(u->user);
  souk_free(u->password);
  memset(u, 0, sizeof *u);
}

/* ---- the libuv adapter's event hooks ------------------------------------------ */

/* hiredis 0.14's libuv adapter returns from its poll callback when libuv
 * reports an error, and libuv reports a reset connection (EPOLLERR) that
 * way and stops the handle: the context would then wait for a reply that
 * can never come.  These replace the adapter's event hooks (keeping its
 * struct and cleanup) so an error is handed to hiredis, whose read then
 * fails and tears the connection down at once. */
static void poll_cb(uv_poll_t *h, int status, int events) {
  redisLibuvEvents *p = h->data;
  if (p->context && status < 0) {
    redisAsyncHandleRead(p->context);
    return;
  }
  if (p->context && (events & UV_READABLE)) redisAsyncHandleRead(p->context);
  if (p->context && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

static void poll_update(redisLibuvEvents *p) {
  if (p->events)
    uv_poll_start(&p->handle, p->events, poll_cb);
  else
    uv_poll_stop(&p->handle);
}

static void ev_add_read(void *d) {
  redisLibuvEvents *p = d;
  p->events |= UV_READABLE;
  poll_update(p);
}

static void ev_del_read(void *d) {
  redisLibuvEvents *p = d;
  p->events &= ~UV_READABLE;
  poll_update(p);
}

static void ev_add_write(void *d) {
  redisLibuvEvents *p = d;
  p->events |= UV_WRITABLE;
  poll_update(p);
}

static void ev_del_write(void *d) {
  redisLibuvEvents *p = d;
  p->events &= ~UV_WRITABLE;
  poll_update(p);
}

/* ---- connect and handshake ----------------------------------------------------- */

/* Start connecting to ip (numeric: hiredis would resolve a name with a
 * blocking getaddrinfo()) and port, through the libuv adapter with its
 * event hooks replaced (above).  Returns the context, or NULL with a
 * reason in why; then nothing is left allocated. */
static redisAsyncContext *redis_connect_ip(const char *ip, int port, void *data,
                                           redisConnectCallback *on_connect,
                                           redisDisconnectCallback *on_disconnect, char *why,
                                           size_t why_size) {
  redisAsyncContext *ac = redisAsyncConnect(ip, port);
  if (!ac) {
    /* hiredis 0.14 has no allocator hook: it reports exhaustion as NULL. */
    snprintf(why, why_size, "out of memory");
    return NULL;
  }
  if (ac->err) {
    snprintf(why, why_size, "%s", ac->errstr);
    redisAsyncFree(ac);
    return NULL;
  }
  if (redisLibuvAttach(ac, souk_loop()) != REDIS_OK) {
    /* The adapter sets its hooks before it can fail, and its cleanup would
     * then dereference NULL. */
    ac->ev.cleanup = NULL;
    redisAsyncFree(ac);
    snprintf(why, why_size, "cannot watch the socket");
    return NULL;
  }
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->data = data;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  return ac;
}

/* Queue the handshake, pipelined: AUTH when u has a password (with its
 * user when it has one), SELECT when u->db is not 0, each answered to
 * on_error with privdata the command's name, then a PING answered to
 * on_ready.  Nothing sent before the PING's answer can then run
 * unauthenticated or on the wrong db.  0, or SOUK_EIO if hiredis refused
 * a command. */
static int handshake(redisAsyncContext *ac, const souk__redis_url_t *u, redisCallbackFn *on_ready,
                     redisCallbackFn *on_error) {
  int rc = REDIS_OK;
  if (u->password && u->user)
    rc = redisAsyncCommand(ac, on_error, "AUTH", "AUTH %s %s", u->user, u->password);
  else if (u->password)
    rc = redisAsyncCommand(ac, on_error, "AUTH", "AUTH %s", u->password);
  if (rc == REDIS_OK && u->db) rc = redisAsyncCommand(ac, on_error, "SELECT", "SELECT %d", u->db);
  if (rc == REDIS_OK) rc = redisAsyncCommand(ac, on_ready, NULL, "PING");
  return rc == REDIS_OK ? 0 : SOUK_EIO;
}

/* "<what> failed: <the first 120 bytes of r's text>". */
static void reply_why(char *why, size_t why_size, const char *what, const redisReply *r) {
  snprintf(why, why_size, "%s failed: %.*s", what, (int)(r->len > 120 ? 120 : r->len), r->str);
}

/* The address to connect to from a uv_getaddrinfo() answer: the first
 * IPv4 address, else the first IPv6 one, else "" (a server bound to
 * 127.0.0.1 is the common case, and "localhost" often lists ::1 first). */
static void pick_addr(const struct addrinfo *res, char *ip, size_t n) {
  const struct addrinfo *pick = res;
  for (const struct addrinfo *a = res; a; a = a->ai_next)
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
  ip[0] = '\0';
  if (!pick) return;
  if (pick->ai_family == AF_INET)
    uv_ip4_name((const struct sockaddr_in *)pick->ai_addr, ip, n);
  else if (pick->ai_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)pick->ai_addr, ip, n);
}

/* ---- the link ------------------------------------------------------------- */

enum { L_CONNECTING, L_UP, L_WAIT };

struct souk__redis_link {
  souk__redis_url_t url;
  uint64_t backoff, backoff_min, backoff_max, timeout;
  void (*up)(void *ud, redisAsyncContext *ac, bool back);
  void (*down)(void *ud, const char *why, bool first, bool was_up);
  uint64_t (*oldest)(void *ud);
  void *ud;
  int state;
  redisAsyncContext *ac; /* connecting or up; NULL otherwise */
  uint64_t connect_started;
  bool failed;   /* a failure was reported since the link was last up */
  bool closing, resolving;
  uv_timer_t reconnect, watchdog;
  uv_getaddrinfo_t gai;
  int open; /* handles and requests to wait for before freeing */
};

static void link_connect(souk__redis_link_t *l);

static void reconnect_cb(uv_timer_t *t) {
  souk__redis_link_t *l = t->data;
  if (l->state == L_WAIT && !l->closing) link_connect(l);
}

/* The connection is gone (or never came): forget it, tell the owner and
 * schedule a reconnect.  Only the first call per connection does more
 * than forget the context, which is never freed here: the callers are
 * inside hiredis's own teardown, or free it right after. */
static void link_down(souk__redis_link_t *l, const char *why) {
  l->ac = NULL;
  if (l->closing || l->state == L_WAIT) return;
  bool was_up = l->state == L_UP, first = !l->failed;
  l->state = L_WAIT;
  l->failed = true;
  /* Up to a quarter of jitter, so the processes sharing a server do not
   * all reconnect in the same millisecond after it restarts. */
  uint64_t delay = l->backoff + (uint64_t)(souk_rand01() * (double)(l->backoff / 4));
  l->backoff = l->backoff * 2 > l->backoff_max ? l->backoff_max : l->backoff * 2;
  uv_timer_start(&l->reconnect, reconnect_cb, delay, 0);
  l->down(l->ud, why ? why : "connection lost", first, was_up);
}

void *souk__redis_link_owner(const redisAsyncContext *ac) {
  const souk__redis_link_t *l = ac ? ac->data : NULL;
  return l && !l->closing ? l->ud : NULL;
}

void souk__redis_link_lost(souk__redis_link_t *l, const redisAsyncContext *ac, const char *why) {
  if (l->ac == ac) link_down(l, why);
}

void souk__redis_link_drop(souk__redis_link_t *l, redisAsyncContext *ac, const char *why) {
  if (l->ac != ac) return;
  link_down(l, why);
  /* Free, not disconnect: a disconnect waits for the pending replies,
   * which could then still arrive after the owner moved on; a free calls
   * them with NULL at once (after the current callback, inside one). */
  redisAsyncFree(ac);
}

static void ready_cb(redisAsyncContext *ac, void *reply, void *priv) {
  souk__redis_link_t *l = ac->data;
  redisReply *r = reply;
  if (!l || l->closing || l->ac != ac || !r) return;
  if (r->type == REDIS_REPLY_ERROR) {
    /* A failed AUTH or SELECT shows here as well (NOAUTH). */
    char why[160];
    reply_why(why, sizeof why, "handshake", r);
    souk__redis_link_drop(l, ac, why);
    return;
  }
  l->state = L_UP;
  l->backoff = l->backoff_min;
  bool back = l->failed;
  l->failed = false;
  l->up(l->ud, ac, back);
}

static void handshake_cb(redisAsyncContext *ac, void *reply, void *priv) {
  souk__redis_link_t *l = ac->data;
  redisReply *r = reply;
  if (!l || l->closing || l->ac != ac || !r || r->type != REDIS_REPLY_ERROR) return;
  char why[160];
  reply_why(why, sizeof why, priv, r);
  souk__redis_link_drop(l, ac, why);
}

static void connect_cb(const redisAsyncContext *ac, int status) {
  souk__redis_link_t *l = ac->data;
  if (!l || l->closing || status == REDIS_OK) return;
  /* hiredis frees the context when this returns. */
  souk__redis_link_lost(l, ac, ac->errstr);
}

static void disconnect_cb(const redisAsyncContext *ac, int status) {
  souk__redis_link_t *l = ac->data;
  if (!l || l->closing) return;
  souk__redis_link_lost(l, ac, status == REDIS_OK ? "disconnected" : ac->errstr);
}

static void connect_addr(souk__redis_link_t *l, const char *ip) {
  char why[128];
  redisAsyncContext *ac =
      redis_connect_ip(ip, l->url.port, l, connect_cb, disconnect_cb, why, sizeof why);
  if (!ac) {
    link_down(l, why);
    return;
  }
  l->ac = ac;
  /* Nothing goes out before the PING at the handshake's end is answered,
   * so no command runs unauthenticated or on the wrong db. */
  if (handshake(ac, &l->url, ready_cb, handshake_cb) != 0) {
    link_down(l, "cannot queue the handshake");
    ac->data = NULL;
    redisAsyncFree(ac);
  }
}

static void link_release(souk__redis_link_t *l) {
  souk__redis_url_free(&l->url);
  souk_free(l);
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  souk__redis_link_t *l = req->data;
  l->resolving = false;
  if (l->closing) {
    if (res) uv_freeaddrinfo(res);
    if (--l->open == 0) link_release(l);
    return;
  }
  l->open--;
  if (status < 0 || !res) {
    char why[128];
    snprintf(why, sizeof why, "cannot resolve %s: %s", l->url.host, uv_strerror(status));
    if (res) uv_freeaddrinfo(res);
    link_down(l, why);
    return;
  }
  char ip[INET6_ADDRSTRLEN];
  pick_addr(res, ip, sizeof ip);
  uv_freeaddrinfo(res);
  if (!ip[0]) {
    link_down(l, "no usable address");
    return;
  }
  connect_addr(l, ip);
}

static void link_connect(souk__redis_link_t *l) {
  l->state = L_CONNECTING;
  l->connect_started = souk_now_ms();
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, l->url.host, buf) == 1 || inet_pton(AF_INET6, l->url.host, buf) == 1) {
    connect_addr(l, l->url.host);
    return;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  l->gai.data = l;
  int rc = uv_getaddrinfo(souk_loop(), &l->gai, resolved_cb, l->url.host, NULL, &hints);
  if (rc < 0) {
    char why[128];
    snprintf(why, sizeof why, "cannot resolve %s: %s", l->url.host, uv_strerror(rc));
    link_down(l, why);
    return;
  }
  /* The request keeps the link alive until its callback, like a handle. */
  l->resolving = true;
  l->open++;
}

/* Gives up on a connect or a reply that takes too long, so a stalled
 * server cannot hold the owner back: hiredis then calls the pending
 * replies with NULL. */
static void watchdog_cb(uv_timer_t *t) {
  souk__redis_link_t *l = t->data;
  redisAsyncContext *ac = l->ac;
  if (!ac) return;
  uint64_t now = souk_now_ms();
  uint64_t since = l->state == L_CONNECTING ? l->connect_started
                   : l->oldest                ? l->oldest(l->ud)
                                              : UINT64_MAX;
  if (since == UINT64_MAX || now - since < l->timeout) return;
  souk__redis_link_drop(l, ac, l->state == L_CONNECTING ? "connect timed out" : "reply timed out");
}

int souk__redis_link_new(const souk__redis_link_conf_t *conf, souk__redis_link_t **out) {
  souk__redis_link_t *l = souk_calloc(1, sizeof *l);
  if (!conf->url || souk__redis_url_parse(conf->url, &l->url) != 0) {
    souk_free(l);
    return SOUK_ECONFIG;
  }
  l->backoff_min = conf->backoff_min_ms ? conf->backoff_min_ms : 250;
  l->backoff_max = conf->backoff_max_ms ? conf->backoff_max_ms : 30000;
  if (l->backoff_max < l->backoff_min) l->backoff_max = l->backoff_min;
  l->backoff = l->backoff_min;
  l->timeout = conf->timeout_ms ? conf->timeout_ms : 2000;
  l->up = conf->up;
  l->down = conf->down;
  l->oldest = conf->oldest;
  l->ud = conf->ud;
  /* hiredis 0.14 writes with write(2), not send(MSG_NOSIGNAL): a write to
   * a connection Redis closed would kill the process. */
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
  uv_timer_init(souk_loop(), &l->reconnect);
  uv_timer_init(souk_loop(), &l->watchdog);
  l->reconnect.data = l->watchdog.data = l;
  l->open = 2;
  /* Maintenance timers must not keep the loop alive on their own. */
  uint64_t wd = l->timeout / 4 ? l->timeout / 4 : 1;
  uv_timer_start(&l->watchdog, watchdog_cb, wd, wd);
  uv_unref((uv_handle_t *)&l->watchdog);
  uv_unref((uv_handle_t *)&l->reconnect);
  *out = l;
  link_connect(l);
  return 0;
}

const souk__redis_url_t *souk__redis_link_url(const souk__redis_link_t *l) { return &l->url; }

redisAsyncContext *souk__redis_link_ac(const souk__redis_link_t *l) {
  return l && l->state == L_UP ? l->ac : NULL;
}

static void handle_closed(uv_handle_t *h) {
  souk__redis_link_t *l = h->data;
  if (--l->open == 0) link_release(l);
}

void souk__redis_link_free(souk__redis_link_t *l) {
  if (!l || l->closing) return;
  l->closing = true;
  if (l->ac) {
    redisAsyncContext *ac = l->ac;
    l->ac = NULL;
    /* Calls every pending reply with NULL; the owners see no owner. */
    redisAsyncFree(ac);
  }
  /* If the lookup is already running, its callback comes anyway. */
  if (l->resolving) uv_cancel((uv_req_t *)&l->gai);
  uv_close((uv_handle_t *)&l->reconnect, handle_closed);
  uv_close((uv_handle_t *)&l->watchdog, handle_closed);
}
