/* The guild cache: what souk keeps of each guild from gateway events to
 * answer permission questions without asking Discord: the owner, every
 * role's permissions, the roles the bot holds, and each channel's
 * permission overwrites that can concern the bot (role overwrites and the
 * bot's own member overwrite; other members' are dropped).
 *
 * Fed from READY, GUILD_CREATE/UPDATE/DELETE, GUILD_ROLE_*, CHANNEL_* and
 * the bot's own GUILD_MEMBER_UPDATE.  Memory per guild is one allocation
 * of 32 bytes plus 16 per role, 8 per role the bot holds, 8 per channel
 * and 32 per overwrite kept, and about 12 bytes of table slot.
 * Internal to src/discord; loop thread only. */
#ifndef SOUK_DISCORD_GCACHE_H
#define SOUK_DISCORD_GCACHE_H

#include "souk/json.h"
#include "souk/module.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Update the cache from a gateway event (others are ignored). */
void souk__gcache_event(const souk_event_t *ev);
/** Guild-level permissions of a member whose member object is token
 * `member` of j (its "roles"), for prefix commands: every bit for the owner
 * and for ADMINISTRATOR, else @everyone's and its roles' bits; 0 for an
 * unknown guild. */
uint64_t souk__gcache_member_perms(uint64_t guild_id, uint64_t user, const souk_json_t *j,
                                   int member);
/** The bot's permissions in a channel of a guild (channel 0: guild-wide),
 * computed in Discord's order (base, @everyone overwrite, role overwrites,
 * member overwrite; no VIEW_CHANNEL means none).  Returns false when the
 * guild or the channel is not known; *perms then is 0. */
bool souk__gcache_bot_perms(uint64_t guild_id, uint64_t channel_id, uint64_t *perms);
/** The bot's user id from READY (0 before). */
uint64_t souk__gcache_bot_user(void);
/** Set the bot's user id where no READY told it (a session resumed from
 * another process); a READY's id replaces it. */
void souk__gcache_set_bot_user(uint64_t id);
/** Guilds known. */
size_t souk__gcache_guilds(void);
/** Of those, the guilds on one shard: Discord's formula, (guild_id >> 22)
 * % count. */
size_t souk__gcache_guilds_of(uint32_t shard, uint32_t count);
/** The guilds of shards other processes run (read from Redis): from now
 * on souk_cmd_guilds() is this process's guilds plus n. */
void souk__gcache_set_others(uint64_t n);
/** The guild's state as a record to hand to another process of the same
 * build (discord/handoff.h): a new allocation the caller frees, *len its
 * size; NULL (*len 0) when the guild is not known.  Not JSON: the packed
 * guild itself, so writing it costs a copy and nothing more. */
void *souk__gcache_record(uint64_t guild_id, size_t *len);
/** Put a guild back from a record of souk__gcache_record (replacing what
 * is known of it).  The record's bot user id becomes the cache's if none
 * is known yet.  0, or SOUK_EPROTO for a record of another format, machine
 * or bot, or a damaged one (nothing changes).  The change hook is not
 * told: the record came from where it would be written. */
int souk__gcache_restore(const void *rec, size_t len);
/** fn is told the id of every guild an event added, changed or removed
 * (after the change); NULL: nobody.  One hook. */
void souk__gcache_on_change(void (*fn)(uint64_t guild_id));
/** Forget everything (the bot stopped). */
void souk__gcache_clear(void);

#endif
