/* The Redis connection pieces the cache and the identify lock share; see
 * redisconn.h. */
#include "cache/redisconn.h"

#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <ctype.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/hiredis.h>
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

redisAsyncContext *souk__redis_connect(const char *ip, int port, void *data,
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

int souk__redis_handshake(redisAsyncContext *ac, const souk__redis_url_t *u,
                          redisCallbackFn *on_ready, redisCallbackFn *on_error) {
  int rc = REDIS_OK;
  if (u->password && u->user)
    rc = redisAsyncCommand(ac, on_error, "AUTH", "AUTH %s %s", u->user, u->password);
  else if (u->password)
    rc = redisAsyncCommand(ac, on_error, "AUTH", "AUTH %s", u->password);
  if (rc == REDIS_OK && u->db) rc = redisAsyncCommand(ac, on_error, "SELECT", "SELECT %d", u->db);
  if (rc == REDIS_OK) rc = redisAsyncCommand(ac, on_ready, NULL, "PING");
  return rc == REDIS_OK ? 0 : SOUK_EIO;
}

void souk__redis_reply_why(char *why, size_t why_size, const char *what, const redisReply *r) {
  snprintf(why, why_size, "%s failed: %.*s", what, (int)(r->len > 120 ? 120 : r->len), r->str);
}

void souk__redis_pick_addr(const struct addrinfo *res, char *ip, size_t n) {
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
