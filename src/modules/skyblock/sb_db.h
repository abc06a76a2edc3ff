/* The skyblock module's tables (migration 5 in src/store/migrations.c),
 * as statements to run inside a store transaction function, so the same
 * code runs on SQLite and PostgreSQL and is tested on both:
 *   skyblock_alerts  the auctions alerted: the sniper's dedupe after a
 *                    restart (newest first, bounded, pruned by age)
 *   skyblock_watch   users' alert subscriptions: their filters, the
 *                    channel they subscribed in, paused or not
 *   skyblock_guilds  guilds that set sniper settings (their alert channel
 *                    is read from the settings at start)
 * Every function takes the transaction's db and returns 0 or SOUK_E*. */
#ifndef SKYBLOCK_SB_DB_H
#define SKYBLOCK_SB_DB_H

#include "souk/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** One alerted auction. */
typedef struct sb_db_alert {
  char uuid[33];
  char key[128];
  char attrs[128];
  char seller[33];
  int64_t unit; /* price per unit alerted at */
  int64_t at;   /* data time (ms) */
} sb_db_alert_t;

/** A user's subscription. */
typedef struct sb_sub {
  uint64_t user_id, guild_id, channel_id;
  char query[101];               /* words to match, "" for every snipe */
  int64_t min_profit, max_price; /* 0: no filter */
  bool paused;
} sb_sub_t;

/** Keep an alert (an auction already kept is left as it was). */
int sb_db_alert_put(souk_db_t *db, const sb_db_alert_t *a);
/** The newest `max` alerts at or after since, given to fn oldest first. */
int sb_db_alerts_load(souk_db_t *db, int64_t since, size_t max,
                      void (*fn)(void *ud, const sb_db_alert_t *a), void *ud);
/** Delete alerts before `before`, then all but the newest `keep`;
 * *deleted (may be NULL) gets how many went. */
int sb_db_alerts_prune(souk_db_t *db, int64_t before, int64_t keep, int64_t *deleted);

/** Insert or replace a subscription (user, query). */
int sb_db_watch_put(souk_db_t *db, const sb_sub_t *s, int64_t at);
/** Delete a user's subscription for query, or all of them (query NULL). */
int sb_db_watch_del(souk_db_t *db, uint64_t user_id, const char *query);
/** Pause every subscription of a user (DMs refused). */
int sb_db_watch_pause(souk_db_t *db, uint64_t user_id);
/** Every subscription, oldest first. */
int sb_db_watch_load(souk_db_t *db, void (*fn)(void *ud, const sb_sub_t *s), void *ud);

/** Remember a guild that set sniper settings. */
int sb_db_guild_put(souk_db_t *db, uint64_t guild_id, int64_t at);
/** Every such guild. */
int sb_db_guilds_load(souk_db_t *db, void (*fn)(void *ud, uint64_t guild_id), void *ud);

/** Register the tables with the store's forget-user and purge-guild
 * (souk_store_register_data). */
void sb_db_register_data(void);

#endif
