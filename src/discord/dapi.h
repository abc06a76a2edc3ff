/* The implementation of include/souk/discord.h: the module-facing Discord
 * actions, on top of a transport that is either the REST client (`souk
 * run`) or the console sink (`souk console`, dapi_console.c), which answers
 * the same requests in-process and prints them.  Everything above the
 * transport - message bodies, DM channels, the rename guard, the edit
 * coalescer, the presence window, error mapping - is the same code on both,
 * so the console shows what Discord would be sent.
 *
 * Internal to src/discord; loop thread only. */
#ifndef SOUK_DISCORD_DAPI_H
#define SOUK_DISCORD_DAPI_H

#include "discord/rest.h"
#include "souk/discord.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Where requests go. */
typedef struct souk__dapi_sink {
  const char *name; /* "rest", "console", a test's */
  /** Queue a request; contract of souk__rest_request() (the callback runs
   * later, exactly once, unless this returns an error). */
  int (*request)(const souk__rest_opts_t *o, souk__rest_cb cb, void *ud);
  /** Set the activity on every shard: 0 or SOUK_E* (kept and tried
   * again later).  status is "online", "idle", "dnd" or "invisible". */
  int (*presence)(const char *status, const char *text, int activity_type);
  /** True when the bot may do anything anywhere (the console). */
  bool all_permissions;
  /** The bot's user id, or NULL to take it from the guild cache. */
  uint64_t (*bot_user)(void);
  /** Called by souk__dapi_stop() first: complete what is queued. May be
   * NULL (the REST client is shut down by its owner before). */
  void (*stop)(void);
} souk__dapi_sink_t;

/** The sink of `souk run`: the REST client and the gateway shards. */
extern const souk__dapi_sink_t souk__dapi_rest_sink;
/** The sink of `souk console` (dapi_console.c). */
extern const souk__dapi_sink_t souk__dapi_console_sink;

/** Where the console sink prints (tests); NULL: the console. */
void souk__dcon_set_output(void (*fn)(const char *text, size_t len));

/** Start serving the souk_discord_* calls through sink (borrowed; it must
 * outlive the stop).  0, or SOUK_EBUSY when already started. */
int souk__dapi_start(const souk__dapi_sink_t *sink);
/** Stop: coalesced edits and a presence still waiting are dropped (their
 * count logged); later calls fail with SOUK_ESTOPPED.  Call after the
 * sink's requests have completed (the REST client shut down), so no
 * callback arrives afterwards.  Safe when not started. */
void souk__dapi_stop(void);

/** Post m to channel as souk_discord_send does, the first part replying to
 * reply_to when it is not 0 (with nonces derived from it, so a reply to a
 * redelivered message is not posted twice).  For the prefix-command
 * surface and souk_reply(). */
int souk__dapi_post(uint64_t channel, uint64_t reply_to, const souk_msg_t *m, souk_discord_cb cb,
                    void *ud);

/** Counters, for /metrics and tests. */
typedef struct souk__dapi_stats {
  uint64_t sent, edits, deletes, dms, renames, gets, presences;
  uint64_t failed;            /* actions completed with an error */
  uint64_t renames_refused;   /* refused by the rename guard, nothing sent */
  uint64_t dms_refused;       /* DMs to a user known to refuse them, nothing sent */
  uint64_t edits_coalesced;   /* edit_latest states replaced before being sent */
  uint64_t presences_delayed; /* presence updates that had to wait for the window */
} souk__dapi_stats_t;
void souk__dapi_stats(souk__dapi_stats_t *out);

/** Replace the monotonic clock of the guards (tests); NULL: the real one. */
void souk__dapi_set_clock(uint64_t (*now_ms)(void));

#endif
