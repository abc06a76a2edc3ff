/* The HTTP server as a module sees it: routes, requests and answers, and
 * readiness checks (its settings, start and stop are the wiring's, in
 * src/net/httpd.h).  It serves /healthz, /readyz, /metrics and the routes
 * modules mount.
 *
 * libmicrohttpd runs on souk's loop: MHD keeps its own epoll fd (no thread
 * of its own), a uv_poll watches that fd and a uv_timer follows
 * MHD_get_timeout(), so no call here ever blocks the loop.  Everything runs
 * on the loop thread, handlers included.
 *
 * Routes: `struct souk_route` tables (a module's .routes, or
 * souk_httpd_mount()) map a method and a path to a handler.  A path is
 * exact ("/market") or a prefix: a path ending in a slash and a star
 * ("/market/" + "*") matches "/market/" and everything below it, not
 * "/market".  Exact routes win over
 * prefixes, and longer prefixes over shorter ones.  HEAD is served by GET
 * routes (the body is left out).  A path no route matches gets 404; a path
 * that matches only with other methods gets 405 with an Allow header.
 *
 * Access: SOUK_ROUTE_ADMIN routes (/metrics among them) answer only local
 * requests or requests with `Authorization: Bearer <http.token>`; anyone
 * else gets 403.  Without a token configured, only local requests get in.
 * A request is local when its client is on a loopback address.  A request
 * carrying Forwarded or X-Forwarded-For came through a proxy: its client
 * is the one a proxy listed in http.trusted_proxies names (the right-most
 * address of the chain that is not a trusted proxy), and from any other
 * peer it is never local.
 *
 * Connections: at most http.max_connections at once, and at most
 * http.max_connections_per_address from one client address (an IPv6 /64
 * counts as one; trusted proxies are exempt, and requests they forward are
 * counted by the client they name: one over the cap gets 429).  When the
 * limit is reached new connections wait in the kernel's backlog and are
 * taken as soon as any connection ends.  A connection must deliver each
 * request's headers within http.header_timeout of connecting (or of its
 * previous response), and the body within http.timeout of the headers,
 * however slowly it trickles bytes; otherwise it is dropped.
 *
 * Every response carries X-Content-Type-Options: nosniff, Referrer-Policy:
 * no-referrer and X-Frame-Options: DENY; responses that are not text/html
 * also get Content-Security-Policy: default-src 'none' and Cache-Control:
 * no-store unless the handler set its own.  One access-log line is written
 * per request (component "http"): method, path (never the query string),
 * status, body bytes, duration and peer.
 *
 * Bodies: a Content-Length over http.max_body is answered 413 as soon as
 * the headers are in, and the connection is closed without reading the
 * body; a chunked body that grows over the limit is read and thrown away,
 * then answered 413 (libmicrohttpd needs the upload consumed before a
 * response is queued after the first call).  Connections idle for longer
 * than http.timeout are closed. */
#ifndef SOUK_HTTPD_H
#define SOUK_HTTPD_H

#include "souk/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Route flags. */
enum {
  SOUK_ROUTE_PUBLIC = 0,      /**< anyone may call it */
  SOUK_ROUTE_ADMIN = 1u << 0, /**< loopback peers or the bearer token only */
};

/** One request as a handler sees it.  The strings are owned by the server
 * and valid until the request is answered (souk_httpd_respond*). */
typedef struct souk_httpd_req {
  const char *method; /* "GET", "POST", ...; "HEAD" reaches GET routes as "HEAD" */
  const char *path;   /* decoded path, without the query string */
  const char *body;   /* NUL-terminated (never NULL); at most http.max_body bytes */
  size_t body_len;
  const char *peer;               /* the client's address, "127.0.0.1" or "::1": the
                                     one a trusted proxy named, else the socket's */
  bool loopback;                  /* a local request: the client is 127.0.0.0/8 or ::1,
                                     and no untrusted proxy header was sent */
  bool authorized;                /* carried the right bearer token */
  const struct souk_route *route; /* the route that matched */
  void *ud;                       /* the ud given to souk_httpd_mount (NULL for modules) */
} souk_httpd_req_t;

/** A handler: answer with souk_httpd_respond*() exactly once, now or later
 * from a callback (the request stays valid until then). */
typedef void (*souk_route_cb)(souk_httpd_req_t *req);

/** One route; a table ends with a zero entry. */
struct souk_route {
  const char *method; /* "GET", "POST", ... */
  const char *path;   /* "/x" exact, or "/x/" followed by '*' for a prefix */
  unsigned flags;     /* SOUK_ROUTE_* */
  souk_route_cb handler;
};
/** A route, for tables. */
typedef struct souk_route souk_route_t;

/** Mount a table of routes (not copied: it must outlive the server, as
 * const tables do); ud is passed in each request.  0, SOUK_EINVAL (a bad
 * path or method, logged) or SOUK_EEXIST (a method and path already
 * mounted, logged). */
int souk_httpd_mount(const souk_route_t *routes, void *ud);
/** Unmount a table mounted with souk_httpd_mount. */
void souk_httpd_unmount(const souk_route_t *routes);

/** A readiness check: return true when ready; otherwise may append a
 * short reason to why.  It must not block: report state kept up to date
 * elsewhere (the shards, the store's last health probe). */
typedef bool (*souk_ready_cb)(void *ud, souk_buf_t *why);
/** Add a check to /readyz under name (copied).  0 or SOUK_EEXIST. */
int souk_httpd_add_ready_check(const char *name, souk_ready_cb fn, void *ud);
/** Remove the check called name.  0 or SOUK_ENOTFOUND. */
int souk_httpd_remove_ready_check(const char *name);
/** A query parameter (decoded), or NULL.  First one wins. */
const char *souk_httpd_query(const souk_httpd_req_t *req, const char *name);
/** A request header (any case), or NULL. */
const char *souk_httpd_header(const souk_httpd_req_t *req, const char *name);
/** Add a response header (both copied; no CR or LF, else SOUK_EINVAL).
 * Call before responding.  A Content-Security-Policy or Cache-Control set
 * here replaces the default. */
int souk_httpd_set_header(souk_httpd_req_t *req, const char *name, const char *value);
/** Answer with status, content type (NULL: text/plain; charset=utf-8) and
 * len bytes of body (copied).  req is invalid afterwards.  0, or
 * SOUK_EINVAL for a bad status (the request is then answered 500). */
int souk_httpd_respond(souk_httpd_req_t *req, int status, const char *content_type,
                       const void *body, size_t len);
/** As souk_httpd_respond, taking over body's memory (body becomes empty). */
int souk_httpd_respond_buf(souk_httpd_req_t *req, int status, const char *content_type,
                           souk_buf_t *body);
/** Answer with a short plain-text body: the message and a newline. */
int souk_httpd_respond_text(souk_httpd_req_t *req, int status, const char *msg);

#endif
