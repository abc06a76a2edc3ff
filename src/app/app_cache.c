/* The process's cache: memory, or Redis with memory as the fallback.
 * Opened at start for `run` and `console`; trimmed by the memory guard;
 * closed while the loop still runs so hiredis can close its handles.
 * Compiled into the executable only. */
#include "app/app.h"
#include "cache/cacheconf.h"
#include "souk/cache.h"
#include "souk/err.h"
#include "souk/health.h"
#include "souk/log.h"
#include "souk/memguard.h"

static souk_cache_t *g_cache;

souk_cache_t *souk__app_cache(void) { return g_cache; }

/* Above the hard memory limit: give back half of what the cache holds. */
static void cache_trim(void *ud, uint64_t rss, uint64_t soft_bytes) {
  size_t freed = souk_cache_trim(g_cache, 0.5);
  SOUK_WARN("cache", "memory guard: trimmed %zu bytes from the cache", freed);
}

static void cache_health(void *ud, souk_health_result_t *out) {
  souk_cache_stats_t st;
  souk_cache_stats(g_cache, &st);
  bool want_redis = souk__cache_conf.url && *souk__cache_conf.url;
  if (want_redis && !st.redis_up)
    souk_health_set(out, SOUK_HEALTH_WARNING, "redis unreachable, serving from memory (%zu entries)",
                    st.mem_entries);
  else
    souk_health_set(out, SOUK_HEALTH_HEALTHY, "%s, %zu entries in memory",
                    want_redis ? "redis up" : "memory", st.mem_entries);
}

int souk__app_cache_open(void) {
  int rc = souk_cache_new(&souk__cache_conf, NULL, &g_cache);
  if (rc) {
    SOUK_ERROR("cache", "cannot start the cache: %s (check cache.url / SOUK_CACHE_URL)",
               souk_strerror(rc));
    g_cache = NULL;
    return rc;
  }
  souk_health_register("cache", cache_health, NULL);
  souk_memguard_register_trim("cache", cache_trim, NULL);
  return 0;
}

void souk__app_cache_metrics_init(void) {
  if (g_cache) souk__cache_metrics_init(g_cache);
}

void souk__app_cache_close(void) {
  if (!g_cache) return;
  souk__cache_metrics_stop(g_cache);
  souk_memguard_unregister_trim("cache");
  souk_health_unregister("cache");
  souk_cache_close(g_cache);
  g_cache = NULL;
}
