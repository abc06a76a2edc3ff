/* The bot runtime: REST client, gateway shards and the dispatcher wired
 * together for `souk run`. */
#ifndef SOUK_DISCORD_BOT_H
#define SOUK_DISCORD_BOT_H

#include "discord/handoff.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Start: HTTP and REST clients, GET /gateway/bot (unless the gateway URL,
 * shard count and max_concurrency are all configured), then this process's
 * shards.  While Discord cannot be reached, GET /gateway/bot is retried
 * with capped backoff (up to a minute apart, one log line a minute) and
 * the shards keep reconnecting the same way: only what retrying cannot fix
 * is fatal.  on_fatal(err, msg) is then called once, and is the only
 * report of it (this file does not log it): err is SOUK_EAUTH when Discord
 * refused the session (close codes 4004, 4010-4014, or 401/403 on start),
 * SOUK_ECONFIG for a setting that cannot work (a shard range outside the
 * shard count, a 4xx answer to GET /gateway/bot: a wrong api_base), or
 * another SOUK_E*; msg says what happened and what to do.  Returns 0 or
 * SOUK_E* (on_fatal then never called). */
int souk__bot_start(void (*on_fatal)(int err, const char *msg));
/** Graceful stop: stop reading events, close gateway sessions with 1000
 * (4000 with a session hand-off, whose last writes then get up to 3 s),
 * let in-flight REST requests finish for up to grace_ms, fail the rest,
 * release every handle, then call done once. */
void souk__bot_stop(int64_t grace_ms, void (*done)(void));
/** Apply run-time config changes (presence, REST retries and timeout). */
void souk__bot_reload(void);
/** check-config --online: GET /users/@me with the token, synchronously
 * running a private loop.  0, SOUK_EAUTH (401), or another SOUK_E*. */
int souk__bot_check_online(void);

/** Figures of the session hand-off through Redis; false when there is
 * none (no cache.url, discord.shards.handoff off, shards not started). */
bool souk__bot_handoff(souk__handoff_stats_t *out);

/** This process's name in the hand-off's keys ("" without one). */
const char *souk__bot_handoff_owner(void);

/** Shards run by this process (0 before GET /gateway/bot answered). */
size_t souk__bot_shards(void);
/** Of those, how many have a live session (READY or RESUMED). */
size_t souk__bot_shards_ready(void);
/** Whether shards wait for the daily IDENTIFY budget (see
 * discord/idbudget.h); *until (may be NULL) gets the Unix ms when the
 * first may identify. */
bool souk__bot_identify_waiting(int64_t *until);

#endif
