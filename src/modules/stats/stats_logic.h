/* The server-stats module's pure logic: the channel-rename window, the
 * adaptive poll schedule, name templates, the daily summary's schedule in
 * a guild's time zone, and the heartbeat's text.
 *
 * Nothing here does I/O or keeps global state; time is always passed in
 * (UTC Unix milliseconds), so the tests move it freely.  The module glue
 * (stats.c) persists what must survive a restart through the encode and
 * decode functions. */
#ifndef SOUK_STATS_LOGIC_H
#define SOUK_STATS_LOGIC_H

#include "souk/tz.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- channel renames ---------------------------------------------------- */

/** Discord allows 2 renames of a channel per 10 minutes; a third gets a 429
 * whose retry_after is about 10 minutes and that no bucket header warned
 * of.  souk counts renames itself and never sends that third one. */
#define STATS_RENAMES_PER_WINDOW 2
#define STATS_RENAME_WINDOW_MS   (10u * 60u * 1000u)

/** One channel's recent renames (persisted as text, see below). */
typedef struct stats_rename_win {
  uint64_t at[STATS_RENAMES_PER_WINDOW]; /* unix ms of the last renames, oldest first; 0: none */
  uint64_t blocked_until;                /* unix ms: Discord answered 429 until then */
} stats_rename_win_t;

/** Milliseconds until a rename may be sent, 0 when it may go now: fewer
 * than 2 renames in the window (plus margin_ms of safety for clock skew
 * between souk and Discord) and no 429 block. */
uint64_t stats_rename_wait(const stats_rename_win_t *w, uint64_t now_ms, uint64_t margin_ms);
/** Count a rename sent at now_ms (counted when sent, not when answered, so
 * a lost answer cannot make souk send one too many). */
void stats_rename_sent(stats_rename_win_t *w, uint64_t now_ms);
/** Discord answered 429 with retry_after_ms: block until then. */
void stats_rename_blocked(stats_rename_win_t *w, uint64_t now_ms, uint64_t retry_after_ms);
/** "t1,t2,blocked" for the store; returns the length (out >= 64 bytes). */
int stats_rename_encode(const stats_rename_win_t *w, char *out, size_t cap);
/** Parse what encode wrote; junk gives an empty window.  0 or SOUK_EINVAL. */
int stats_rename_decode(const char *s, size_t len, stats_rename_win_t *w);

/* ---- adaptive polling ------------------------------------------------------ */

/** The poll period runs from min_ms (just after a change) to max_ms
 * (doubling after every poll that saw no change). */
typedef struct stats_poll_conf {
  uint64_t min_ms, max_ms;
} stats_poll_conf_t;

/** One guild's poll schedule. */
typedef struct stats_poll {
  uint64_t interval_ms; /* the current period */
  uint64_t next_at;     /* clock time of the next poll */
} stats_poll_t;

/** First schedule of a guild seen at now: its first poll is spread over
 * the first min period by a hash of its id, so guilds that arrive
 * together (at start) are not all polled at once. */
void stats_poll_start(stats_poll_t *p, const stats_poll_conf_t *c, uint64_t guild_id,
                      uint64_t now_ms);
/** A poll finished at now_ms; changed: its counts differed from the last
 * ones.  Returns how many polls this one replaced compared with polling
 * every min period (interval / min - 1), for the "polls saved" metric. */
uint64_t stats_poll_done(stats_poll_t *p, const stats_poll_conf_t *c, bool changed,
                         uint64_t now_ms);
/** Something changed that the poll would report (an event): poll soon. */
void stats_poll_hurry(stats_poll_t *p, const stats_poll_conf_t *c, uint64_t now_ms);

/* ---- templates ------------------------------------------------------------ */

/** The values a template may show. */
typedef struct stats_values {
  int64_t members, online, bans; /* -1: unknown */
  int64_t guilds;
  uint64_t uptime_ms;
} stats_values_t;

/** Longest channel name Discord allows. */
#define STATS_NAME_MAX 100

/** Check a template: 1..100 characters, only the placeholders {members},
 * {online}, {bans}, {guilds} and {uptime}, balanced braces.  Returns 0 or
 * SOUK_EINVAL with a user-facing reason in err. */
int stats_template_check(const char *tmpl, char *err, size_t errcap);
/** Render tmpl into out (cap >= STATS_NAME_MAX * 4 + 1 bytes): numbers
 * with thousands separators ("1,234"), an unknown value as "?", the
 * result cut at 100 characters (UTF-8 aware).  Returns 0, or SOUK_EINVAL
 * when it renders empty. */
int stats_template_render(const char *tmpl, const stats_values_t *v, char *out, size_t cap);
/** "3d 4h", "5h 12m", "12m", "40s". */
void stats_fmt_uptime(uint64_t ms, char *out, size_t cap);
/** "1,234,567"; negative numbers keep their sign. */
void stats_fmt_count(int64_t v, char *out, size_t cap);

/* ---- the daily summary ------------------------------------------------------ */

/** The local day (days since 1970-01-01 in the zone's calendar) of now. */
int64_t stats_local_day(const souk_tz_t *tz, uint64_t now_ms);
/** The local day (days since 1970-01-01 in the zone's calendar) whose
 * summary is due at now_ms, or -1: the local date of now is after
 * last_day and now is at or after hour:00 local of that date (the first
 * instant of it, when DST makes that hour happen twice; the end of the gap
 * when it never happens).  A restart after the hour still sends that day's
 * summary, once; a day the bot was down all day is not sent late. */
int64_t stats_daily_due(const souk_tz_t *tz, int hour, int64_t last_day, uint64_t now_ms);
/** The instant (unix ms) of the next summary after now: hour:00 local of
 * the first day after last_day whose hour is still to come. */
uint64_t stats_daily_next(const souk_tz_t *tz, int hour, int64_t last_day, uint64_t now_ms);

/* ---- the heartbeat ---------------------------------------------------------- */

/** What the heartbeat message shows. */
typedef struct stats_heartbeat {
  uint64_t uptime_ms;
  int64_t latency_ms; /* gateway heartbeat round trip; -1 unknown */
  uint64_t rss_bytes; /* 0 unknown */
  const char *health; /* "HEALTHY", "WARNING", "CRITICAL" */
  const char *errors; /* the last errors, one per line; "" for none */
  uint64_t now_unix_ms;
  uint64_t guilds, commands;
} stats_heartbeat_t;

/** The message text (under Discord's 2,000 characters). */
void stats_heartbeat_text(const stats_heartbeat_t *h, char *out, size_t cap);

#endif
