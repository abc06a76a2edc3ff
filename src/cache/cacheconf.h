/* What the program's wiring needs of the cache beyond souk/cache.h: its
 * /metrics families.  Modules never include this file. */
#ifndef SOUK_CACHE_CACHECONF_H
#define SOUK_CACHE_CACHECONF_H

#include "souk/cache.h"

/** Register the souk_cache_* families and a collector that fills them
 * from c at every scrape.  c must outlive the registration: call
 * souk__cache_metrics_stop() before closing it. */
void souk__cache_metrics_init(souk_cache_t *c);
/** Remove c's collector (its families stay, with their last values). */
void souk__cache_metrics_stop(souk_cache_t *c);

#endif
