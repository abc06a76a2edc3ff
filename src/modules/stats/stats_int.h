/* The server-stats module's shared state, between stats.c (its contact
 * with the core: config, settings, events, start and stop, the store,
 * metrics), stats_run.c (counters, polls, bans, renames, heartbeat, daily
 * summary, presence) and stats_cmds.c (/stats).  Loop thread only. */
#ifndef STATS_INT_H
#define STATS_INT_H

#include "souk/cmd.h"
#include "souk/conf.h"
#include "souk/store.h"
#include "souk/tz.h"
#include "stats_logic.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Values of the `stats` config section. */
typedef struct stats_conf {
  int64_t poll_min_ms, poll_max_ms, poll_concurrency;
  int members_events; /* stats_events_t: counts from events */
  int ban_events;     /* stats_events_t: bans kept from events */
  int64_t bans_repage_ms;
  int64_t rename_margin_ms;
  int64_t heartbeat_period_ms;
  souk_conf_strs_t activities;
  int presence_type; /* index into the activity types */
  int64_t presence_period_ms;
  int64_t flush_ms;
} stats_conf_t;

extern stats_conf_t stats_conf;

/** stats.members_events / stats.ban_events: from the intents, or forced. */
typedef enum stats_events { STATS_EVENTS_AUTO, STATS_EVENTS_ON, STATS_EVENTS_OFF } stats_events_t;

/** Whether member counts come from GUILD_MEMBER_ADD/REMOVE: the
 * GUILD_MEMBERS intent is in discord.intents, unless overridden. */
bool stats_members_events(void);
/** Whether bans are kept from GUILD_BAN_ADD/REMOVE: the GUILD_MODERATION
 * intent is in discord.intents, unless overridden. */
bool stats_ban_events(void);

/** The counter channels. */
typedef enum stats_ctr_kind {
  STATS_MEMBERS,
  STATS_ONLINE,
  STATS_BANS,
  STATS_NCTR
} stats_ctr_kind_t;

/** Buffer for a rendered channel name (100 characters of UTF-8). */
#define STATS_NAME_BUF (STATS_NAME_MAX * 4 + 1)

/** One counter channel's state. */
typedef struct stats_ctr {
  uint64_t channel;           /* the channel the state is for (0: none yet) */
  stats_rename_win_t win;     /* its renames, persisted */
  char *shown;                /* the name souk last gave it (owned); NULL: unknown */
  bool loaded, loading, inflight;
  uint64_t retry_at; /* unix ms: after a refusal, not before */
  uint64_t renames, deferred;
  char *error; /* the last refusal, for /stats show (owned); NULL: none */
} stats_ctr_t;

/** Where the ban count stands. */
typedef enum stats_bans_state {
  STATS_BANS_UNKNOWN, /* not paged yet */
  STATS_BANS_PAGING,  /* GET /guilds/{id}/bans in progress */
  STATS_BANS_KNOWN,   /* paged; kept from events (or re-paged) */
  STATS_BANS_NO_PERM, /* the bot lacks BAN_MEMBERS: nothing is asked */
} stats_bans_state_t;

/** One guild that set a stats feature (a counter, the heartbeat or the
 * summary): no other guild has any state here, since most never set one. */
typedef struct stats_guild {
  uint64_t id;
  int64_t members, online, bans; /* -1: unknown */
  stats_poll_t poll;
  bool poll_started, poll_inflight;
  stats_bans_state_t bans_state;
  uint64_t bans_after; /* paging cursor */
  int64_t bans_paged;  /* counted so far while paging */
  uint64_t bans_at;    /* unix ms of the last complete paging */
  uint64_t bans_retry_at;
  bool bans_told; /* the missing permission was logged */
  stats_ctr_t *ctr[STATS_NCTR]; /* while the counter has a channel, else NULL */
  /* heartbeat */
  uint64_t hb_channel, hb_message, hb_next;
  bool hb_loaded, hb_loading, hb_inflight;
  uint64_t hb_edits, hb_posts;
  /* daily summary */
  int64_t last_day; /* the last local day whose summary Discord took */
  bool day_loaded, day_loading, summary_inflight;
  uint32_t summary_fails;    /* failed posts in a row, for the backoff */
  uint64_t summary_retry_at; /* unix ms (schedule clock): not before */
  int64_t joined, left, messages, members_start;
  uint64_t since; /* unix ms: the counts run from here */
  bool counts_dirty;
  souk_tz_t *tz;
} stats_guild_t;

/** The module's running state. */
typedef struct stats_state {
  bool started;
  souk_store_t *store; /* from the init context; NULL: no store */
  stats_guild_t **guilds;
  size_t nguilds;
  uint64_t started_at; /* schedule clock, for {uptime} */
  size_t polls_inflight;
  uint64_t polls, polls_saved, poll_failures;
  uint64_t renames, renames_deferred, renames_refused;
  uint64_t heartbeats, heartbeat_reposts, summaries;
  uint64_t presence_next, presence_idx, presence_sets;
  uint64_t flush_next;
} stats_state_t;

extern stats_state_t stats_g;

extern const souk_command_t stats_commands[];

/** Whether the guild set a counter channel, the heartbeat or the summary. */
bool stats_configured(uint64_t id);
/** The guild's state, made on first sight.  One that sets nothing is
 * dropped by the next tick (never under a caller). */
stats_guild_t *stats_guild(uint64_t id);
/** The guild's state, or NULL when unseen. */
stats_guild_t *stats_guild_find(uint64_t id);
/** Forget a guild (the bot left it). */
void stats_guild_drop(uint64_t id);

/** Replace an owned text of a counter (NULL or "" leaves none). */
void stats_ctr_text(char **field, const char *text);
/** Free a counter's state (NULL is fine). */
void stats_ctr_free(stats_ctr_t *c);

/** The setting keys of the counters. */
const char *stats_ctr_channel_key(stats_ctr_kind_t k);
const char *stats_ctr_template_key(stats_ctr_kind_t k);
const char *stats_ctr_name(stats_ctr_kind_t k);

/** One tick of everything due (stats_run.c). */
void stats_tick(void);
/** The value a counter shows, -1 unknown. */
int64_t stats_ctr_value(const stats_guild_t *g, stats_ctr_kind_t k);
/** The current values for templates. */
void stats_values_of(const stats_guild_t *g, stats_values_t *v);
/** Milliseconds since the module started (schedule clock). */
uint64_t stats_uptime_ms(void);
/** The zone of a guild's stats.timezone (UTC when unset or unknown). */
const souk_tz_t *stats_guild_tz(stats_guild_t *g);
/** The next daily summary of a guild, unix ms (0: none configured). */
uint64_t stats_summary_next(stats_guild_t *g);
/** Send this guild's summary now (/stats summary now), without touching
 * the daily schedule.  0 or SOUK_E*. */
int stats_summary_now(stats_guild_t *g);

/* Every guild's member count, kept only while a presence activity shows
 * {members} (stats_members.c): set from GUILD_CREATE and polls, moved by
 * member events, dropped with the guild. */
bool stats_members_wanted(void);
void stats_members_set(uint64_t id, int64_t n);
void stats_members_add(uint64_t id, int delta);
void stats_members_drop(uint64_t id);
int64_t stats_members_total(void);
void stats_members_free(void);

/* Store (stats.c): each completes later; failures are logged. */
void stats_load_ctr(stats_guild_t *g, stats_ctr_kind_t k);
void stats_save_ctr(const stats_ctr_t *c);
void stats_load_heartbeat(stats_guild_t *g);
void stats_save_heartbeat(const stats_guild_t *g);
void stats_load_day(stats_guild_t *g);
void stats_save_day(const stats_guild_t *g);
/** Write every guild's dirty counts now, blocking (shutdown). */
void stats_flush_sync(void);

#endif
