/* The shards this process runs: shards [first..last] of shard_count, each a
 * gateway session (gateway.h) on its own WebSocket (net/ws.h) with its own
 * decompression context (zstream.h for zlib-stream, zstdstream.h for
 * zstd-stream), all on souk's loop.  This file is the
 * glue between the pure state machine and real sockets and timers, plus
 * identify scheduling through a souk__identify_lock_t (idlock.h) so that
 * processes sharing a bot never IDENTIFY in the same bucket within 5 s.
 *
 * One set of shards per process (module-level state).  Loop thread only. */
#ifndef SOUK_DISCORD_SHARDS_H
#define SOUK_DISCORD_SHARDS_H

#include "discord/gateway.h"
#include "discord/handoff.h"
#include "discord/idlock.h"
#include "souk/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** What the shards report.  on_dispatch is required; the rest may be NULL.
 * Pointers passed are valid during the call only. */
typedef struct souk__gateway_handlers {
  /** One gateway event, in order per shard; d is the token of "d". */
  void (*on_dispatch)(uint32_t shard, const char *name, uint64_t seq, const souk_json_t *json,
                      int d);
  /** A shard received READY. */
  void (*on_ready)(uint32_t shard);
  /** A shard resumed its session. */
  void (*on_resumed)(uint32_t shard);
  /** Discord refused a session (4004, 4010-4014): code and what to do.
   * That shard stays down; the others go on until souk__shards_stop(). */
  void (*on_fatal)(int code, const char *msg);
} souk__gateway_handlers_t;

/** What GET /gateway/bot said of the bot's session starts. */
typedef struct souk__session_limit {
  int64_t total;       /* session starts a day (0: 1000) */
  int64_t remaining;   /* left in Discord's current window, -1 unknown */
  int64_t reset_after; /* ms until that window resets (0: not started) */
} souk__session_limit_t;

/** Which shards to run and how.  Fields left zero / NULL are taken from
 * the `discord` config section (souk__discord_conf). */
typedef struct souk__shards_conf {
  const char *gateway_url;         /* required: from GET /gateway/bot or the config */
  uint32_t shard_count;            /* required, >= 1 */
  uint32_t first, last;            /* this process's shards, inclusive */
  uint32_t max_concurrency;        /* identify buckets (0: 1) */
  const char *token;               /* NULL: discord.token */
  uint64_t intents;                /* 0: discord.intents */
  int compress;                    /* 0: discord.compress; -1 none; else souk__gw_compress_t */
  int large_threshold;             /* 0: discord.large_threshold */
  const souk__presence_t *presence; /* NULL: discord.presence.* */
  /* Identify coordination: a custom backend (a Redis one, say; ownership
   * passes to the shards, which destroy it), else the lock file at
   * identify_lock (NULL: discord.shards.identify_lock; "" none), else
   * in-process only. */
  const souk__identify_lock_t *identify_backend;
  const char *identify_lock;
  uint32_t identify_interval_ms; /* 0: 5000 (tests use less) */
  /* The daily budget of session starts (idbudget.h): what GET /gateway/bot
   * said (NULL: not asked), and the share of it souk may use in percent
   * (0: discord.shards.identify_share).  The shards' starts are counted in
   * the identify backend's record, shared with the bot's other processes;
   * a shard whose slot comes while the budget is spent closes its
   * connection and waits, the first such wait logged as one error. */
  const souk__session_limit_t *session_limit;
  uint32_t identify_share;
  /* Sessions handed on between processes (not owned: it must outlive the
   * shards).  Each shard first claims its saved session and resumes it,
   * and after every handled event its session is saved.  NULL: none. */
  souk__handoff_t *handoff;
  size_t max_message;            /* decompressed message limit; 0: 16 MiB */
} souk__shards_conf_t;

/** One shard's figures. */
typedef struct souk__shard_stats {
  uint32_t id;
  souk__gateway_stats_t gw;   /* state, latency, counters */
  uint64_t bytes_compressed; /* bytes received on the wire */
} souk__shard_stats_t;

/** Start the shards: every session connects, identifying as its slot comes
 * up.  conf and handlers are copied.  0, SOUK_EINVAL (bad range or missing
 * URL/token), SOUK_EBUSY (already running), SOUK_EIO (lock file); on error
 * no handler is ever called. */
int souk__shards_start(const souk__shards_conf_t *conf, const souk__gateway_handlers_t *handlers);

/** Stop with close code 1000 (ends the sessions), then call done once,
 * from the loop, when every connection has closed and every handle of the
 * shards is released (the WebSocket context is shut down too).  done may
 * be NULL.  Ignored if not running or already stopping. */
void souk__shards_stop(void (*done)(void));
/** As souk__shards_stop with another close code: 4000 keeps the sessions
 * resumable (a restart that hands them on, see souk__shards_session()). */
void souk__shards_stop_code(int code, void (*done)(void));

/** Stop one shard with code, leaving the others running (a shard another
 * process took over: 4000, so that its session lives on there).
 * SOUK_ENOTFOUND if not run here. */
int souk__shards_stop_one(uint32_t shard_id, int code);

/** Re-read discord.presence.* and send it to every shard (op 3). */
void souk__shards_update_presence(void);
/** Set one presence on every shard.  0 or the first error. */
int souk__shards_set_presence(const souk__presence_t *p);

/** Send a payload (op 8 request guild members, ...) on the shard that has
 * shard_id; see souk__gateway_send.  SOUK_ENOTFOUND if not run here. */
int souk__shards_send(uint32_t shard_id, const char *json, size_t len);

/** True between a successful start and the end of a stop. */
bool souk__shards_running(void);
/** Number of shards run by this process (0 when not running). */
size_t souk__shards_count(void);
/** True when shard_id runs here on a session resumed from another process
 * and has had no READY since: its guilds are not in the guild cache. */
bool souk__shards_guilds_unknown(uint32_t shard_id);
/** Figures of the i-th shard (0 <= i < count).  0 or SOUK_ENOTFOUND. */
int souk__shards_stats(size_t i, souk__shard_stats_t *out);
/** Number of shards in SOUK_GW_READY. */
size_t souk__shards_ready(void);
/** Whether shards are waiting for the daily IDENTIFY budget: if so, true
 * and *until (may be NULL) gets the Unix ms when the first may go. */
bool souk__shards_identify_waiting(int64_t *until);
/** The resumable session of the i-th shard (see souk__gateway_session). */
bool souk__shards_session(size_t i, const char **session_id, const char **resume_url,
                          uint64_t *seq);

#endif
