/* Internals of the cache shared by its files and its unit tests. */
#ifndef SOUK_CACHE_INT_H
#define SOUK_CACHE_INT_H

#include "souk/cache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A node of the LRU list.  The list's head is a bare node, not an entry:
 * an entry ends in a flexible array, and a struct with one may not be
 * embedded in another (ISO C; clang refuses it under -Werror). */
typedef struct souk__lru {
  struct souk__lru *prev, *next;
} souk__lru_t;

/** One memory entry: the key (NUL-terminated) then the value in data[]. */
typedef struct souk__mem_entry {
  souk__lru_t lru; /* first member: a node is its entry; the newest is first */
  struct souk__mem_entry *hnext; /* hash chain */
  uint64_t hash;
  uint64_t expires; /* clock milliseconds; UINT64_MAX: never */
  size_t klen, vlen;
  int cat;
  char data[];
} souk__mem_entry_t;

/** The memory backend: a chained hash table plus an LRU list. */
typedef struct souk__mem {
  souk__mem_entry_t **buckets;
  size_t nbuckets; /* a power of two */
  size_t count;
  souk__lru_t lru; /* head: lru.next is the newest entry, lru.prev the oldest */
  size_t bytes, max_bytes;
  size_t sweep_cursor;
  uint64_t seed;
  souk_clock_t clock;
  uint64_t evictions, expired;
} souk__mem_t;

/** Initialise m with a byte budget; clock is copied. */
void souk__mem_init(souk__mem_t *m, size_t max_bytes, const souk_clock_t *clock);
/** Free every entry and the table. */
void souk__mem_free(souk__mem_t *m);
/** Find a live entry and mark it recently used.  Returns 0 with *val and
 * *vlen pointing into the entry (valid until the next change to m) or
 * SOUK_ENOTFOUND.  An expired entry found here is removed. */
int souk__mem_get(souk__mem_t *m, const char *key, size_t klen, const void **val, size_t *vlen);
/** Insert or replace; evicts least recently used entries while over the
 * budget.  ttl_ms 0 means no expiry. */
void souk__mem_set(souk__mem_t *m, const char *key, size_t klen, const void *val, size_t vlen,
                   uint64_t ttl_ms, int cat);
/** Remove key; returns true if it was there. */
bool souk__mem_del(souk__mem_t *m, const char *key, size_t klen);
/** Remove every key matching a glob pattern (NULL: all); returns the count. */
size_t souk__mem_clear(souk__mem_t *m, const char *pattern);
/** Remove expired entries then LRU ones until bytes <= budget; returns the
 * bytes freed. */
size_t souk__mem_trim_to(souk__mem_t *m, size_t budget);
/** Look at up to max_buckets buckets from the sweep cursor and remove the
 * expired entries there; returns how many were removed. */
size_t souk__mem_sweep(souk__mem_t *m, size_t max_buckets);
/** Redis-style glob match (stringmatchlen): *, ?, [...], [^...], \x. */
bool souk__glob_match(const char *pat, size_t plen, const char *s, size_t slen);
/** Run the sweep of cache c now, as the periodic timer does; for tests. */
size_t souk__cache_sweep(souk_cache_t *c);
/** The memory backend of c; for tests. */
souk__mem_t *souk__cache_mem(souk_cache_t *c);

#endif
