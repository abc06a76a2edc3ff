/* URL splitting. */
#include "souk/url.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "souk/alloc.h"
#include "souk/err.h"

static int default_port(const char *scheme) {
  if (!strcmp(scheme, "http") || !strcmp(scheme, "ws")) return 80;
  if (!strcmp(scheme, "https") || !strcmp(scheme, "wss")) return 443;
  if (!strcmp(scheme, "postgres") || !strcmp(scheme, "postgresql")) return 5432;
  if (!strcmp(scheme, "redis")) return 6379;
  return 0;
}

int souk_url_parse(const char *url, souk_url_t *u) {
  if (!url) return SOUK_EINVAL;
  /* No spaces or control bytes anywhere: they are not part of any URL, and
   * a CR/LF passed on to an HTTP request line would inject headers. */
  for (const char *q = url; *q; q++)
    if ((unsigned char)*q <= 0x20 || *q == 0x7f) return SOUK_EINVAL;
  const char *p = strstr(url, "://");
  if (!p || p == url || !isalpha((unsigned char)*url)) return SOUK_EINVAL;
  for (const char *q = url; q < p; q++)
    if (!isalnum((unsigned char)*q) && *q != '+' && *q != '-' && *q != '.') return SOUK_EINVAL;
  const char *h = p + 3;
  /* The authority ends at the path, the query or the fragment. */
  const char *end = h + strcspn(h, "/?#");
  /* Skip userinfo, up to the last '@' (a password may hold a raw '@'). */
  const char *at = NULL;
  for (const char *q = h; q < end; q++)
    if (*q == '@') at = q;
  if (at) h = at + 1;
  const char *hs = h, *he, *portp = NULL;
  if (*h == '[') {
    const char *rb = memchr(h, ']', (size_t)(end - h));
    if (!rb) return SOUK_EINVAL;
    hs = h + 1;
    he = rb;
    if (rb + 1 < end) {
      if (rb[1] != ':') return SOUK_EINVAL;
      portp = rb + 2;
    }
  } else {
    const char *colon = memchr(h, ':', (size_t)(end - h));
    he = colon ? colon : end;
    if (colon) portp = colon + 1;
  }
  if (he == hs) return SOUK_EINVAL;
  int port = -1;
  if (portp) {
    if (portp == end) return SOUK_EINVAL;
    port = 0;
    for (const char *q = portp; q < end; q++) {
      if (!isdigit((unsigned char)*q)) return SOUK_EINVAL;
      port = port * 10 + (*q - '0');
      if (port > 65535) return SOUK_EINVAL;
    }
    if (port == 0) return SOUK_EINVAL;
  }
  char *scheme = souk_strndup(url, (size_t)(p - url));
  for (char *q = scheme; *q; q++) *q = (char)tolower((unsigned char)*q);
  u->scheme = scheme;
  u->host = souk_strndup(hs, (size_t)(he - hs));
  u->port = port >= 0 ? port : default_port(scheme);
  /* Path and query, without the fragment (never sent to a server), and
   * always starting with '/'. */
  size_t plen = strcspn(end, "#");
  bool slash = plen > 0 && *end == '/';
  u->path = souk_malloc(plen + 2);
  if (!slash) u->path[0] = '/';
  memcpy(u->path + !slash, end, plen);
  u->path[plen + !slash] = '\0';
  u->tls = !strcmp(scheme, "https") || !strcmp(scheme, "wss");
  return 0;
}

void souk_url_free(souk_url_t *u) {
  souk_free(u->scheme);
  souk_free(u->host);
  souk_free(u->path);
  memset(u, 0, sizeof *u);
}
