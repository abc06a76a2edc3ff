/* The wiring's side of the HTTP server (souk/httpd.h is what modules
 * see): the `http` config section, start and stop, the readiness verdict
 * and a test hook.  Loop thread only. */
#ifndef SOUK_NET_HTTPD_H
#define SOUK_NET_HTTPD_H

#include "souk/buf.h"
#include "souk/conf.h"
#include "souk/httpd.h"

#include <stdbool.h>
#include <stdint.h>

/** Server settings; souk__httpd_conf holds the `http` config section's. */
typedef struct souk__httpd_conf {
  bool enabled;            /* false: souk__httpd_start does nothing */
  char *bind;              /* IPv4 or IPv6 address; default "127.0.0.1" */
  int64_t port;            /* default 8377; 0 picks a free port */
  char *token;             /* bearer token for admin routes (SOUK_HTTP_TOKEN) */
  int64_t max_body;        /* bytes; larger bodies get 413 */
  int64_t timeout_ms;               /* idle connection timeout, the time a body may take
                                       after its headers, and the time an asynchronous
                                       handler has to answer (504) */
  int64_t max_connections;          /* concurrent connections */
  int64_t max_per_address;          /* concurrent connections (or proxied requests) of one
                                       client address */
  int64_t header_timeout_ms;        /* a request's headers must arrive within this */
  souk_conf_strs_t trusted_proxies; /* addresses or CIDR ranges of reverse proxies */
} souk__httpd_conf_t;

/** Key table of the `http` section. */
extern const souk_conf_key_t souk__httpd_conf_keys[];
/** Checks of the `http` keys beyond their types (http.bind is an address,
 * each of http.trusted_proxies an address or a range). */
extern const souk_conf_check_t souk__httpd_conf_checks[];
/** Live values of the `http` section. */
extern souk__httpd_conf_t souk__httpd_conf;

/** Start listening with conf (NULL: souk__httpd_conf), which is copied.
 * Mounts /healthz, /readyz and /metrics and registers the metric families
 * souk_httpd_requests_total{route,status} and
 * souk_httpd_request_duration_seconds{route} (route is the matched route's
 * pattern, "unmatched" otherwise), souk_httpd_connections (open now) and
 * souk_httpd_connections_closed_total{reason} (per_address: refused at
 * accept; header_timeout, body_timeout: dropped; idle: kept alive
 * without a new request for http.header_timeout).  0 (also when conf says
 * disabled), SOUK_EBUSY (already running), SOUK_ECONFIG (bad bind address
 * or trusted proxy, logged) or SOUK_EIO (cannot listen, logged). */
int souk__httpd_start(const souk__httpd_conf_t *conf);
/** The port listened on (useful with port 0), or 0 when not running. */
int souk__httpd_port(void);
/** True between a successful start and stop. */
bool souk__httpd_running(void);
/** Stop: requests a handler still owes are answered 503 (the handler's
 * later souk_httpd_respond only frees them), connections are closed and
 * the handles close asynchronously (run the loop afterwards); a new start
 * may follow at once.  Mounted routes and ready checks are kept for the
 * next start.  Call it before souk__metrics_shutdown(), and never from
 * inside a handler (defer it to a timer or idle callback).  Safe when not
 * running. */
void souk__httpd_stop(void);

/** Run every check; true if all pass.  detail (may be NULL) receives one
 * "ok NAME" or "fail NAME: reason" line per check. */
bool souk__httpd_ready(souk_buf_t *detail);

/** Test hook: when true, every peer is treated as non-loopback. */
extern bool souk__httpd_force_remote;

#endif
