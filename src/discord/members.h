/* The member cache: which members each guild has and their roles, kept
 * from the gateway (GUILD_CREATE's member list, GUILD_MEMBER_ADD / UPDATE /
 * REMOVE, GUILD_MEMBERS_CHUNK, and the member carried by each
 * MESSAGE_CREATE), for features that need member lists.
 *
 * Off by default (discord.cache.members): nothing souk ships needs member
 * lists, since every command and message carries its member's roles, and a
 * cached member costs memory (the benchmark prints the cost per member;
 * about 50 bytes with one role).  A guild's complete list also needs the
 * privileged GUILD_MEMBERS intent; without it Discord sends only the bot
 * itself and the members who speak.
 *
 * Each member is one allocation (id and role ids) found through a per-guild
 * open-addressing table.  Loop thread only. */
#ifndef SOUK_DISCORD_MEMBERS_H
#define SOUK_DISCORD_MEMBERS_H

#include "souk/module.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Start caching (no-op when discord.cache.members is off). */
void souk__members_start(void);
/** Forget everything and stop. */
void souk__members_stop(void);
/** Feed one gateway event (anything but the events above is ignored). */
void souk__members_event(const souk_event_t *ev);

/** The cached roles of user in guild: true with *roles / *n (valid until
 * the next event is fed), false when the member is not cached. */
bool souk__members_get(uint64_t guild, uint64_t user, const uint64_t **roles, size_t *n);
/** Members cached in guild (0 if none or unknown). */
size_t souk__members_count(uint64_t guild);
/** Members cached in all guilds. */
size_t souk__members_total(void);

#endif
