/* The memory guard: shedding load when resident memory runs high.
 *
 * The core samples the process's RSS on a timer (memguard.interval).  Above
 * the soft limit, work declared heavy (tasks flagged SOUK_TASK_HEAVY, or
 * code asking souk_memguard_allow_heavy() / souk_memguard_scale()) is
 * skipped or shrunk; each decision is logged and counted.  Above the hard
 * limit, the registered trim callbacks (caches) are called, at most once
 * per memguard.trim_cooldown.
 *
 * Threads: loop thread only. */
#ifndef SOUK_MEMGUARD_H
#define SOUK_MEMGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Guard levels. */
typedef enum souk_memguard_level {
  SOUK_MEM_NORMAL,
  SOUK_MEM_SOFT, /* above the soft limit: heavy work is skipped or shrunk */
  SOUK_MEM_HARD, /* above the hard limit: caches are trimmed too */
} souk_memguard_level_t;

/** Called above the hard limit: free what can be freed (drop cold cache
 * entries).  rss and the soft limit are given to size the effort. */
typedef void (*souk_memguard_trim_cb)(void *ud, uint64_t rss, uint64_t soft_bytes);

/** Register a trim callback under name (copied); ud must outlive the
 * registration.  Returns 0, SOUK_EINVAL or SOUK_EEXIST. */
int souk_memguard_register_trim(const char *name, souk_memguard_trim_cb fn, void *ud);
/** Remove one.  Returns 0 or SOUK_ENOTFOUND. */
int souk_memguard_unregister_trim(const char *name);

/** May heavy work named name run now?  False above the soft limit; the
 * refusal is logged and counted. */
bool souk_memguard_allow_heavy(const char *name);
/** A batch size for heavy work: n normally, n / 4 (at least 1) above the
 * soft limit (logged and counted). */
size_t souk_memguard_scale(const char *name, size_t n);
/** Current level (from the last sample). */
souk_memguard_level_t souk_memguard_level(void);
/** "normal", "soft" or "hard". */
const char *souk_memguard_level_name(souk_memguard_level_t l);

/** Counters. */
typedef struct souk_memguard_stats {
  souk_memguard_level_t level;
  uint64_t rss, peak_rss, soft_bytes, hard_bytes;
  uint64_t samples, sample_errors;
  uint64_t heavy_skipped, heavy_shrunk, trims;
} souk_memguard_stats_t;

/** Counters now. */
void souk_memguard_stats(souk_memguard_stats_t *out);

#endif
