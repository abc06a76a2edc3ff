/* Allocation wrappers: the single place where out-of-memory ends the
 * process, with libuv and libcurl routed through it. */
#include "souk/alloc.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "souk/err.h"

_Noreturn void souk_oom(size_t n) {
  fprintf(stderr, "souk: out of memory allocating %zu bytes\n", n);
  fflush(stderr);
  abort();
}

void *souk_malloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) souk_oom(n);
  return p;
}

void *souk_calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) souk_oom(SIZE_MAX);
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) souk_oom(n * size);
  return p;
}

void *souk_realloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) souk_oom(n);
  return q;
}

void *souk_reallocarray(void *p, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) souk_oom(SIZE_MAX);
  return souk_realloc(p, n * size);
}

char *souk_strdup(const char *s) {
  if (!s) return NULL;
  return souk_memdup0(s, strlen(s));
}

char *souk_strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  return souk_memdup0(s, len);
}

char *souk_memdup0(const void *p, size_t n) {
  if (n == SIZE_MAX) souk_oom(n);
  char *q = souk_malloc(n + 1);
  if (n) memcpy(q, p, n);
  q[n] = '\0';
  return q;
}

void souk_free(void *p) { free(p); }

/* libuv and libcurl may legitimately call realloc(p, 0) or calloc(0, n);
 * these shims keep the C library's semantics for those corner cases while
 * aborting on genuine exhaustion. */
static void *uv_malloc_cb(size_t n) { return n ? souk_malloc(n) : NULL; }
static void *uv_realloc_cb(void *p, size_t n) {
  if (n == 0) {
    free(p);
    return NULL;
  }
  return souk_realloc(p, n);
}
static void *uv_calloc_cb(size_t n, size_t size) {
  return (n && size) ? souk_calloc(n, size) : NULL;
}
static void *curl_realloc_cb(void *p, size_t n) { return souk_realloc(p, n); }
static char *curl_strdup_cb(const char *s) { return souk_strdup(s); }

int souk_alloc_init(void) {
  static int done;
  if (done) return 0;
  if (uv_replace_allocator(uv_malloc_cb, uv_realloc_cb, uv_calloc_cb, free) != 0)
    return SOUK_EBUSY;
  if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, souk_malloc, free,
                           curl_realloc_cb, curl_strdup_cb, souk_calloc) != CURLE_OK)
    return SOUK_EFATAL;
  done = 1;
  return 0;
}
