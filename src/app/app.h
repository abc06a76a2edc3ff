/* The program's wiring: the process's store, cache, commands and recovery
 * strategies, started and stopped by main.c (src/app). */
#ifndef SOUK_APP_APP_H
#define SOUK_APP_APP_H

#include <stdbool.h>

#include "souk/cache.h"
#include "souk/store.h"
#include "souk/task.h"

/** Open the store from the `store` section (migrating as configured) and
 * register its health and readiness checks.  0 or SOUK_E* (logged). */
int souk__app_store_open(void);
/** The process's store: NULL before souk__app_store_open() and after
 * souk__app_store_close().  Owned here: never close it elsewhere.  Only
 * the wiring reads it; modules get it in their init context. */
souk_store_t *souk__app_store(void);
/** The store's background tasks (a reachability probe). */
const souk_task_t *souk__app_store_tasks(void);
/** Close the store; call after the loop has run dry (no queued work). */
void souk__app_store_close(void);

/** Start the cache from the `cache` section, with its health check and a
 * memory-guard trim.  0 or SOUK_E* (logged). */
int souk__app_cache_open(void);
/** The process's cache, as souk__app_store() is the store's. */
souk_cache_t *souk__app_cache(void);
/** Close the cache; call while the loop still runs. */
void souk__app_cache_close(void);

/** True when the last store probe succeeded. */
bool souk__app_store_up(void);
/** Register souk_store_up (the last probe's result) with /metrics. */
void souk__app_store_metrics_init(void);
/** Register the cache's /metrics families for the process's cache. */
void souk__app_cache_metrics_init(void);

/** Register the modules' commands and components and count invocations in
 * /metrics and usage analytics.  0 or SOUK_EINVAL (a module's table broke
 * a rule; logged). */
int souk__app_cmd_init(void);
/** Register every settings table: the core's commands.prefix (kept in the
 * runner's prefix table as it changes) and the modules' (the registry's,
 * so after souk__modreg_init).  0 or SOUK_EINVAL (logged). */
int souk__app_settings_register(void);
/** Register the souk_commands_* families of /metrics. */
void souk__app_cmd_metrics_init(void);
/** Forget the registry (after modules stopped). */
void souk__app_cmd_shutdown(void);

/** Share run-time configuration changes with every process of the bot
 * through Redis (cache.url; nothing without it): changes written by
 * souk__app_confshare_publish() elsewhere are applied here with apply
 * (which returns 0 or SOUK_E*) within about a second.  Always 0. */
int souk__app_confshare_start(int (*apply)(const char *key, const char *value));
/** A change made here (value as the key reads it back): written for the
 * other processes, now or once Redis is back.  Never pass a secret. */
void souk__app_confshare_publish(const char *key, const char *value);
/** The configuration was reloaded from the file: apply every shared value
 * again at the next poll. */
void souk__app_confshare_reapply(void);
/** 0: not shared, 1: shared and Redis up, -1: Redis unreachable now. */
int souk__app_confshare_state(void);
/** Stop sharing; the hash is left for the other processes. */
void souk__app_confshare_stop(void);

/** Register the core's recovery strategies and the janitor's
 * store-backups set.  Strategies: alerts to ops.alerts.channel for every
 * type (posted through Discord when discord is true, else logged); a
 * critical "gateway" error shuts down through shutdown(code); a "store"
 * error backs writers off for 30 s (souk_recovery_backoff_left). */
void souk__app_recovery_start(bool discord, void (*shutdown)(int code));
/** Shutdown has begun: from now on the strategies start nothing new (no
 * alert is posted, the shutdown strategy does not act twice). */
void souk__app_recovery_quiesce(void);
/** Remove what souk__app_recovery_start registered. */
void souk__app_recovery_stop(void);

#endif
