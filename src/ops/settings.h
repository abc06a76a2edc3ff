/* The settings registry behind include/souk/settings.h: the process side
 * (start, stop, the periodic re-read, the hooks for scale-out).
 *
 * Storage: table `settings` (migration 4): one row per (scope_id, key)
 * with the value as text, who set it and when.  A reset keeps the row
 * with a NULL value, so other processes re-reading changed rows see it.
 *
 * Memory: every set value of a registered setting, in one hash table
 * keyed by (scope id, setting); defaults are resolved once per start and
 * config reload.  Writes go to the store one at a time, in order, on the
 * thread pool; the value is in effect in memory at once and reverted if
 * its write fails.
 *
 * Loop thread only. */
#ifndef SOUK_OPS_SETTINGS_H
#define SOUK_OPS_SETTINGS_H

#include "souk/conf.h"
#include "souk/module.h"
#include "souk/settings.h"
#include "souk/store.h"
#include "souk/task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Validate and register every module's settings table: keys prefixed
 * with the module's name, unique, [a-z0-9_.], defaults that read as their
 * type, a label and a description.  All or nothing: 0, or SOUK_EINVAL
 * with the module and the rule it broke logged. */
int souk__settings_register(const souk_module_t *const *mods);
/** Forget every registered table (tests). */
void souk__settings_clear(void);

/** Start: resolve defaults from secs (the config sections, borrowed until
 * stop) and load every set value from st (NULL: nothing is persisted, as
 * for commands that have no store).  0, SOUK_EINVAL (a setting names a
 * config key that does not exist, or whose value does not read as its
 * type), or the store's error. */
int souk__settings_start(souk_store_t *st, const souk_conf_section_t *secs, size_t nsecs);
/** Stop: everything in memory is freed; writes still queued go to the
 * store after the one in flight, in order, on the thread pool (run the
 * loop before closing the store, as the process does anyway). */
void souk__settings_stop(void);
/** The configuration changed: resolve config-supplied defaults again. */
void souk__settings_reload(void);

/** The registry's task: "settings.refresh" re-reads rows other processes
 * changed, every minute. */
const souk_task_t *souk__settings_tasks(void);
/** Re-read rows changed since the last re-read now; done(ud, status) on
 * the loop thread when applied (tests, the task).  0 or SOUK_E* (done is
 * then never called). */
int souk__settings_refresh(void (*done)(void *ud, int status), void *ud);
/** Re-read one value from the store now: for the scale-out work, when
 * another process announces a change (Redis publish).  0, SOUK_ENOTFOUND
 * (no such setting), SOUK_ESTOPPED. */
int souk__settings_invalidate(uint64_t scope_id, const char *key);
/** Called on the loop thread after each change made in this process is
 * committed, so the scale-out work can announce it to other processes;
 * NULL removes it. */
void souk__settings_set_publish(void (*fn)(uint64_t scope_id, const char *key, void *ud), void *ud);

/** Values held in memory (set values, not defaults). */
size_t souk__settings_held(void);
/** Writes queued or in flight. */
size_t souk__settings_writes_pending(void);
/** Replace the Unix millisecond clock (tests); NULL: the real one. */
void souk__settings_set_clock(uint64_t (*unix_ms)(void));

#endif
