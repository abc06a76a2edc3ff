/* The cache: one asynchronous key/value interface over two backends.
 *
 * Memory: an in-process table with a TTL per entry and least-recently-used
 * eviction, bounded by a byte budget that counts keys, values and a fixed
 * per-entry overhead (souk_cache_entry_cost()).  Expired entries are dropped
 * when they are read and by a periodic sweep.
 *
 * Redis (cache.url set): hiredis's async API on souk's loop, with every key
 * prefixed by cache.key_prefix so several deployments can share a server.
 * SET key value PX ttl, GET, DEL, and SCAN + DEL for patterns (never KEYS).
 *
 * Redis is optional.  While it is unreachable -- at start or later, or
 * slower to answer than cache.command_timeout -- every command is served by
 * the memory backend instead of failing, commands in flight when the
 * connection drops are re-served from memory, and the cache reconnects with
 * exponential backoff (cache.reconnect.min .. max, with jitter).  Each
 * switch is logged once: "cache: redis unreachable, using memory" (warn)
 * and "cache: redis back" (info).
 *
 * Consistency trade-off: the memory fallback is per process.  During an
 * outage, processes sharing one Redis stop seeing each other's writes: each
 * answers from its own memory, and one that still reaches Redis (a partial
 * partition) keeps serving what Redis holds.  To bound the staleness:
 *  - the memory backend is emptied when Redis goes away, so it never serves
 *    entries older than the outage;
 *  - when Redis is back, the keys this process set or deleted during the
 *    outage, and the patterns it cleared, are deleted from Redis before
 *    commands go there again (meanwhile memory keeps serving), so Redis
 *    cannot hand back a value this process replaced.  If more changed than
 *    the cache remembers (1 MB of keys, 64 patterns), the whole prefix is
 *    cleared instead, which empties the cache for every process of the
 *    deployment;
 *  - the memory backend is emptied again once Redis serves.
 * What remains: other processes' writes made only to their memory are lost,
 * and a process may read its own outage-time value until Redis is back.
 * Callers must treat the cache as a cache: a miss or an old value within
 * the TTL is always acceptable.
 *
 * Threads: everything runs on the loop thread.  Callbacks are always called
 * later from the loop, never before the function that took them returns.
 * Keys are NUL-terminated strings; values are byte strings, copied on set.
 * A value handed to a callback is valid only during that callback. */
#ifndef SOUK_CACHE_H
#define SOUK_CACHE_H

#include "souk/conf.h"
#include "souk/loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A cache; created by souk_cache_new(), released by souk_cache_close(). */
typedef struct souk_cache souk_cache_t;

/** Values of the `cache` config section (see souk__cache_conf_keys). */
typedef struct souk_cache_conf {
  char *url;                  /* redis://[[user]:password@]host[:port][/db]; NULL: memory only */
  int64_t memory_max;         /* byte budget of the memory backend */
  char *key_prefix;           /* prefix of every Redis key, e.g. "souk:" */
  int64_t ttl_default_ms;     /* TTL of categories registered without one */
  souk_conf_strs_t ttl;       /* per-category TTLs: "name=duration" ("prices=5m") */
  int64_t value_max;          /* largest value accepted by set */
  int64_t reconnect_min_ms;   /* first reconnect delay */
  int64_t reconnect_max_ms;   /* cap of the doubling reconnect delay */
  int64_t command_timeout_ms; /* a Redis reply later than this means Redis is gone */
  int64_t sweep_interval_ms;  /* period of the memory backend's expiry sweep */
} souk_cache_conf_t;


/** Status of a get: 0 (hit: val/len set), SOUK_ENOTFOUND (miss), or another
 * SOUK_E* code (for example SOUK_EIO for an error reply from Redis, or
 * SOUK_ECANCELED when the cache is closed first).  val is valid only during
 * the call and is not NUL-terminated. */
typedef void (*souk_cache_get_cb)(void *ud, int status, const void *val, size_t len);
/** Completion of set, del or clear: 0, SOUK_ECANCELED, or SOUK_E*. */
typedef void (*souk_cache_done_cb)(void *ud, int status);

/** Create a cache from conf (copied; conf may be freed afterwards).  clock
 * drives the memory backend's TTLs (NULL: the monotonic clock; tests inject
 * their own); timers still use the loop.  With conf->url set, connecting
 * starts now and commands are served from memory until Redis answers.
 * Because hiredis 0.14 writes with write(2), SIGPIPE is set to be ignored if
 * it still has its default action.  Returns 0 and *out, or SOUK_EINVAL /
 * SOUK_ECONFIG (bad URL, bad "name=duration" entry; logged): then *out is
 * untouched and what was allocated is freed when the loop next runs. */
int souk_cache_new(const souk_cache_conf_t *conf, const souk_clock_t *clock, souk_cache_t **out);

/** Close the cache: every pending callback is called with SOUK_ECANCELED
 * before this returns, the Redis connection is dropped, and the memory is
 * released once the loop has closed the cache's handles (run the loop, or
 * souk_loop_close()).  NULL is allowed.  Do not call it from a cache
 * callback: commands in flight would then be cancelled only after that
 * callback returns. */
void souk_cache_close(souk_cache_t *c);

/** Register (or look up) a data category and return its id (>= 0), or
 * SOUK_EINVAL (empty name), SOUK_EFULL (more than 64 categories).  The TTL is
 * the config's "name=duration" entry if there is one, else default_ttl_ms,
 * else (0) cache.ttl_default.  Id 0 is the built-in category "default".
 * name is copied.  Registering an existing name returns its id unchanged. */
int souk_cache_category(souk_cache_t *c, const char *name, uint64_t default_ttl_ms);
/** TTL in milliseconds of category cat, or 0 if there is no such id. */
uint64_t souk_cache_category_ttl(const souk_cache_t *c, int cat);

/** Look key up; cb(ud, status, val, len) is called once, later.  cat is
 * used for statistics.  Returns 0, or SOUK_EINVAL (NULL, empty or longer
 * than 4096 bytes key, no such category, NULL cb) or SOUK_ESTOPPED (closing): then cb is never
 * called.  Key is copied. */
int souk_cache_get(souk_cache_t *c, int cat, const char *key, souk_cache_get_cb cb, void *ud);

/** Store len bytes at val (copied) under key with category cat's TTL.  cb may
 * be NULL; otherwise it is called once, later.  Returns 0, SOUK_EINVAL,
 * SOUK_ETOOBIG (len > cache.value_max) or SOUK_ESTOPPED: then cb is never
 * called.  The memory backend may drop the entry at once if it alone
 * exceeds the byte budget (counted as an eviction); that is still success. */
int souk_cache_set(souk_cache_t *c, int cat, const char *key, const void *val, size_t len,
                   souk_cache_done_cb cb, void *ud);
/** souk_cache_set() with an explicit TTL in milliseconds (> 0). */
int souk_cache_set_ttl(souk_cache_t *c, int cat, const char *key, const void *val, size_t len,
                       uint64_t ttl_ms, souk_cache_done_cb cb, void *ud);

/** Delete key (absent is success).  cb may be NULL.  Returns as set does. */
int souk_cache_del(souk_cache_t *c, const char *key, souk_cache_done_cb cb, void *ud);

/** Delete every key matching a Redis glob pattern (*, ?, [a-z], [^a], \x)
 * relative to the prefix; "*" clears everything this deployment cached.
 * With Redis this is SCAN + DEL in batches, so keys set concurrently may
 * survive.  When Redis is configured but not serving (not connected yet,
 * or down), the memory backend is cleared, the pattern is remembered so
 * Redis's matching keys are deleted once it is back, and cb gets
 * SOUK_ECONN: Redis's keys were not cleared now.  cb may be NULL.  Returns
 * 0, SOUK_EINVAL or SOUK_ESTOPPED. */
int souk_cache_clear(souk_cache_t *c, const char *pattern, souk_cache_done_cb cb, void *ud);

/** Memory guard: drop the least recently used fraction (0..1] of the memory
 * backend's bytes, expired entries first.  Returns the bytes freed.  Redis
 * is not touched: its memory is not in this process. */
size_t souk_cache_trim(souk_cache_t *c, double fraction);
/** Memory guard: drop least recently used entries until the memory backend
 * holds at most budget bytes.  Returns the bytes freed. */
size_t souk_cache_trim_to(souk_cache_t *c, size_t budget);

/** Counters of one backend, since the cache was created. */
typedef struct souk_cache_counters {
  uint64_t hits, misses; /* gets answered with a value / without */
  uint64_t sets, dels, clears;
  uint64_t evictions; /* entries dropped for the byte budget or a trim */
  uint64_t expired;   /* entries dropped because their TTL ran out */
  uint64_t errors;    /* error replies, timeouts, dropped connections */
} souk_cache_counters_t;

/** A snapshot of the cache's state. */
typedef struct souk_cache_stats {
  souk_cache_counters_t memory, redis;
  size_t mem_bytes; /* bytes charged to the memory backend */
  size_t mem_max;   /* its budget */
  size_t mem_entries;
  bool redis_configured;
  bool redis_up;        /* commands go to Redis now */
  uint64_t redis_downs; /* switches to memory */
  uint64_t redis_ups;   /* switches back to Redis */
  uint64_t fallbacks;   /* commands served by memory because Redis was down */
  uint64_t reserved;    /* of those: sent to Redis, connection lost, re-served */
  unsigned inflight;    /* commands waiting for Redis */
} souk_cache_stats_t;

/** Fill *st. */
void souk_cache_stats(const souk_cache_t *c, souk_cache_stats_t *st);

/** Per-category counters, over both backends. */
typedef struct souk_cache_cat_stats {
  const char *name; /* owned by the cache */
  uint64_t ttl_ms;
  uint64_t hits, misses, sets;
} souk_cache_cat_stats_t;

/** Fill *st for category cat.  Returns 0 or SOUK_EINVAL (no such id). */
int souk_cache_category_stats(const souk_cache_t *c, int cat, souk_cache_cat_stats_t *st);
/** Number of registered categories (ids are 0 .. n-1). */
int souk_cache_category_count(const souk_cache_t *c);

/** True if commands are going to Redis now (false when memory-only). */
bool souk_cache_redis_up(const souk_cache_t *c);

/** Bytes the memory backend charges for an entry with these lengths. */
size_t souk_cache_entry_cost(size_t key_len, size_t val_len);

#endif
