/* What the Discord layer registers with the operations of the lower
 * layers: its /metrics families, souk_gateway_* (per shard) and
 * souk_rest_*, filled at scrape time from the shards' and the REST
 * client's own counters, and its health checks "gateway" and "rest". */
#ifndef SOUK_DISCORD_DOPS_H
#define SOUK_DISCORD_DOPS_H

#include <stdbool.h>

/** Register the gateway and REST families and their collectors with the
 * metrics registry.  Idempotent (again after souk__metrics_shutdown()). */
void souk__discord_metrics_init(void);

/** Register (on) or remove (off) the health checks "gateway" (every shard
 * has a session; the worst heartbeat latency against
 * health.gateway.latency_warning / _critical) and "rest" (Discord's
 * invalid-request limit and the queue). */
void souk__discord_health(bool on);

#endif
