/* The Market Sim's players' display names: one per player and guild (a
 * nickname is per guild), so the leaderboard and the dashboard show who
 * someone is instead of a numeric id.
 *
 * The name comes from the invocation that made or touched the player (the
 * interaction's member or the message's author: nick, else global name,
 * else username), is stored raw, and is escaped where it is shown (Discord
 * markdown in replies, HTML on the dashboard).  Only players are kept: a
 * trade writes the name, any other market command only updates a name
 * already kept.  The table (the module's own schema, market_migrations)
 * is registered for `souk db forget-user` and `purge-guild`.
 *
 * Functions taking a souk_db_t run inside the caller's transaction (see
 * ledger.h); the rest run on the loop thread. */
#ifndef MARKET_PLAYERS_H
#define MARKET_PLAYERS_H

#include "souk/cmd.h"
#include "souk/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Longest name kept, in bytes (cut on a UTF-8 boundary): Discord's names
 * are at most 32 characters, so this is room for any of them. */
#define MARKET_NAME_MAX 128

/** A name as a reply shows it: "**name**" with Discord's markdown escaped,
 * or a mention "<@id>" (which Discord shows as the name) when no name is
 * kept.  A buffer of this size always holds it. */
#define MARKET_NAME_MD_MAX (2 * MARKET_NAME_MAX + 8)

/** The module's own schema steps (the market_players table). */
extern const souk_migration_t market_migrations[];

/** Keep name for user in guild (insert, or replace a different one).
 * An empty name is ignored.  0 or SOUK_E*. */
int market_player_name_put(souk_db_t *db, int64_t guild_id, int64_t user_id, const char *name,
                           int64_t now_ms);
/** Replace the kept name of user in guild when it differs; nothing when
 * the user has none kept (not a player).  0 or SOUK_E*. */
int market_player_name_update(souk_db_t *db, int64_t guild_id, int64_t user_id, const char *name,
                              int64_t now_ms);
/** The kept names of users[0..n) in guild into names[0..n) ("" for none).
 * 0 or SOUK_E*. */
int market_player_names(souk_db_t *db, int64_t guild_id, const int64_t *users, size_t n,
                        char (*names)[MARKET_NAME_MAX + 1]);

/** Copy name into out (MARKET_NAME_MAX + 1 bytes), cut on a UTF-8
 * boundary, control characters made spaces; returns out. */
char *market_name_clean(const char *name, char *out);

/** Write who user is for a reply into out (MARKET_NAME_MD_MAX bytes):
 * "**name**" with every character Discord's markdown reads escaped, or
 * "<@id>" when name is NULL or empty.  Returns out. */
char *market_name_md(const char *name, int64_t user_id, char *out, size_t cap);

/** ctx's caller was seen under ctx->user_name in ctx->guild_id: when that
 * differs from the name this process last saw for them, update their kept
 * name (if they are a player) in the background.  Cheap when nothing
 * changed; nothing for DMs and autocomplete. */
void market_player_seen(const souk_cmd_ctx_t *ctx, souk_store_t *st);
/** A trade stored name for user in guild: remember it as seen. */
void market_player_noted(int64_t guild_id, int64_t user_id, const char *name);
/** Forget what was seen (module start and stop, tests). */
void market_player_seen_reset(void);

#endif
