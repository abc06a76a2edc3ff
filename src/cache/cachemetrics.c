/* The cache's /metrics families: hits, misses, evictions, expiries and
 * errors per backend, the memory backend's size and Redis's state, filled
 * at scrape time from the counters the cache keeps (souk_cache_stats). */
#include "cache/cacheconf.h"
#include "souk/metrics.h"

static void backend(const char *b, const souk_cache_counters_t *c) {
  souk_counter_set_named("souk_cache_hits_total", SOUK_LV(b), (double)c->hits);
  souk_counter_set_named("souk_cache_misses_total", SOUK_LV(b), (double)c->misses);
  souk_counter_set_named("souk_cache_evictions_total", SOUK_LV(b), (double)c->evictions);
  souk_counter_set_named("souk_cache_expired_total", SOUK_LV(b), (double)c->expired);
  souk_counter_set_named("souk_cache_errors_total", SOUK_LV(b), (double)c->errors);
}

static void collect(void *ud) {
  souk_cache_t *cache = ud;
  souk_cache_stats_t st;
  souk_cache_stats(cache, &st);
  backend("memory", &st.memory);
  if (st.redis_configured) backend("redis", &st.redis);
  souk_gauge_set_named("souk_cache_memory_bytes", NULL, (double)st.mem_bytes);
  souk_gauge_set_named("souk_cache_memory_entries", NULL, (double)st.mem_entries);
  souk_gauge_set_named("souk_cache_redis_up", NULL, st.redis_up ? 1 : 0);
  souk_counter_set_named("souk_cache_fallbacks_total", NULL, (double)st.fallbacks);
}

void souk__cache_metrics_init(souk_cache_t *c) {
  souk_counter_new("souk_cache_hits_total", "Cache gets answered with a value.", "backend");
  souk_counter_new("souk_cache_misses_total", "Cache gets answered without a value.", "backend");
  souk_counter_new("souk_cache_evictions_total", "Entries dropped for the byte budget or a trim.",
                   "backend");
  souk_counter_new("souk_cache_expired_total", "Entries dropped because their TTL ran out.",
                   "backend");
  souk_counter_new("souk_cache_errors_total", "Cache backend errors and timeouts.", "backend");
  souk_gauge_new("souk_cache_memory_bytes", "Bytes charged to the in-process cache.", NULL);
  souk_gauge_new("souk_cache_memory_entries", "Entries in the in-process cache.", NULL);
  souk_gauge_new("souk_cache_redis_up", "1 while cache commands go to Redis.", NULL);
  souk_counter_new("souk_cache_fallbacks_total",
                   "Cache commands served from memory because Redis was down.", NULL);
  /* SOUK_EEXIST when this cache's collector is already there: fine. */
  souk_metrics_add_collector(collect, c);
}

void souk__cache_metrics_stop(souk_cache_t *c) { souk_metrics_remove_collector(collect, c); }
