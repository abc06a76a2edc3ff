/* What the program's wiring needs of the cache beyond souk/cache.h: the
 * `cache` config section and the /metrics families.  Modules never include
 * this file. */
#ifndef SOUK_CACHE_CACHECONF_H
#define SOUK_CACHE_CACHECONF_H

#include "souk/cache.h"
#include "souk/conf.h"

/** Key table of the `cache` section; values land in a souk_cache_conf_t. */
extern const souk_conf_key_t souk__cache_conf_keys[];
/** Checks of the `cache` keys beyond their types (cache.url, cache.ttl). */
extern const souk_conf_check_t souk__cache_conf_checks[];
/** The live values of the `cache` section. */
extern souk_cache_conf_t souk__cache_conf;

/** Register the souk_cache_* families and a collector that fills them
 * from c at every scrape.  c must outlive the registration: call
 * souk__cache_metrics_stop() before closing it. */
void souk__cache_metrics_init(souk_cache_t *c);
/** Remove c's collector (its families stay, with their last values). */
void souk__cache_metrics_stop(souk_cache_t *c);

#endif
