/* Allocation that never returns NULL.
 *
 * Out of memory aborts through one wrapper (DESIGN.md); libuv and libcurl
 * are routed through it by souk_alloc_init().  Callers therefore never test
 * these for NULL.  Memory from any of them is released with souk_free(). */
#ifndef SOUK_ALLOC_H
#define SOUK_ALLOC_H

#include <stddef.h>

/** Route libuv's and libcurl's allocations through souk's wrappers.  Call
 * once, before any other libuv or libcurl call.  Returns 0 or SOUK_E*. */
int souk_alloc_init(void);
/** malloc that aborts on failure; souk_malloc(0) returns a unique pointer. */
void *souk_malloc(size_t n);
/** calloc that aborts on failure or on n*size overflow. */
void *souk_calloc(size_t n, size_t size);
/** realloc that aborts on failure. */
void *souk_realloc(void *p, size_t n);
/** Array realloc with overflow check: p resized to n elements of size. */
void *souk_reallocarray(void *p, size_t n, size_t size);
/** strdup that aborts on failure; souk_strdup(NULL) returns NULL. */
char *souk_strdup(const char *s);
/** strndup that aborts on failure. */
char *souk_strndup(const char *s, size_t n);
/** Copy of n bytes with a terminating NUL added. */
char *souk_memdup0(const void *p, size_t n);
/** free; NULL is allowed. */
void souk_free(void *p);
/** Print a message and abort: the one place out-of-memory ends up. */
_Noreturn void souk_oom(size_t n);

#endif
