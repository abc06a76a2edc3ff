/* URL splitting for http(s):// and ws(s):// addresses. */
#ifndef SOUK_URL_H
#define SOUK_URL_H

#include <stdbool.h>

/** Parts of a URL; each string is owned by the struct. */
typedef struct souk_url {
  char *scheme; /* lower case: http, https, ws, wss, postgres, redis, ... */
  char *host;   /* without brackets for IPv6 */
  int port;     /* explicit (1-65535) or the scheme's default (0 if unknown) */
  char *path;   /* path and query, at least "/"; the #fragment is dropped */
  bool tls;     /* https or wss */
} souk_url_t;

/** Split url into u.  Returns 0 or SOUK_EINVAL (u untouched): no scheme,
 * no host, a bad port, or spaces or control bytes anywhere.  Userinfo
 * (user:password@) is skipped, not kept. */
int souk_url_parse(const char *url, souk_url_t *u);
/** Free the strings in u. */
void souk_url_free(souk_url_t *u);

#endif
