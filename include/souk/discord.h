/* Discord actions a module takes on its own, outside a command's reply:
 * post an alert, edit or delete a message, DM a user, rename a channel,
 * read a guild's counts, set the bot's presence, read a shard's gateway
 * latency.  (A command's reply goes through its handler, souk/cmd.h.)
 *
 * Every request goes through the REST client and its rate limiter, so
 * Discord's limits are honoured exactly; on top of those, souk counts what
 * the bucket headers never announce (channel renames: 2 per 10 minutes per
 * channel) and refuses what would break it before anything is sent.  In
 * `souk console` there is no Discord: the same calls go to a console sink
 * that prints each action readably ("to #channel", an edit, a rename, a
 * DM, a presence change), answers with made-up message ids, and completes
 * through the callback exactly as the real path does, so a module works
 * offline unchanged.
 *
 * Threads: every function here is for the loop thread only.
 *
 * Callbacks: a function that takes a callback either returns 0, and then
 * calls it exactly once, later (never from inside the call), on the loop
 * thread; or returns a negative SOUK_E* and never calls it.  A callback may
 * be NULL when the outcome does not matter.  The result handed to it, and
 * any JSON, are valid only during the callback: copy what you keep.  At
 * shutdown, pending requests complete with SOUK_ESTOPPED.
 *
 * Ownership: every argument (messages, names, paths) is copied before the
 * call returns; the caller may free or reuse it at once. */
#ifndef SOUK_DISCORD_H
#define SOUK_DISCORD_H

#include "souk/cmd.h"
#include "souk/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** More of Discord's permission bits (souk/cmd.h has the moderation ones). */
#define SOUK_PERM_VIEW_CHANNEL         (UINT64_C(1) << 10)
#define SOUK_PERM_SEND_MESSAGES        (UINT64_C(1) << 11)
#define SOUK_PERM_EMBED_LINKS          (UINT64_C(1) << 14)
#define SOUK_PERM_READ_MESSAGE_HISTORY (UINT64_C(1) << 16)

/** Gateway intent bits (souk_discord_intents()). */
#define SOUK_INTENT_GUILD_MEMBERS    (UINT64_C(1) << 1)
#define SOUK_INTENT_GUILD_MODERATION (UINT64_C(1) << 2)

/** Discord's JSON error codes that modules act on. */
#define SOUK_DISCORD_UNKNOWN_CHANNEL     10003
#define SOUK_DISCORD_UNKNOWN_GUILD       10004
#define SOUK_DISCORD_UNKNOWN_MESSAGE     10008
#define SOUK_DISCORD_UNKNOWN_USER        10013
#define SOUK_DISCORD_MISSING_ACCESS      50001
#define SOUK_DISCORD_CANNOT_DM           50007
#define SOUK_DISCORD_MISSING_PERMISSIONS 50013
#define SOUK_DISCORD_INVALID_FORM_BODY   50035

/** How a request ended. */
typedef struct souk_discord_result {
  /** 0, or: SOUK_EFORBIDDEN (403: missing access or permissions, DMs
   * closed), SOUK_ENOTFOUND (404: the channel, message, guild or user is
   * gone), SOUK_EINVAL (400: Discord refused the body), SOUK_ERATELIMIT
   * (429 that souk would not wait for, such as a rename refused by Discord;
   * retry_after_ms says how long), SOUK_EAUTH (401), SOUK_EHTTP (another
   * status), SOUK_ETIMEDOUT / SOUK_ECONN (no answer after the REST
   * client's retries), SOUK_ESTOPPED (shutting down). */
  int err;
  int status; /* HTTP status, 0 if none (no answer, or refused by souk itself) */
  /** Discord's JSON error code: 50007 cannot DM this user, 10008 unknown
   * message, 50013 missing permissions, ...; 0 if none. */
  int code;
  uint64_t channel_id;     /* the channel acted on (for a DM: the DM channel) */
  uint64_t message_id;     /* souk_discord_send and _dm: the new message (the first
                              one when the content was split); _edit: the message */
  uint64_t retry_after_ms; /* SOUK_ERATELIMIT: how long until it may be tried again */
} souk_discord_result_t;

/** Completion of an action; res is valid during the call only. */
typedef void (*souk_discord_cb)(const souk_discord_result_t *res, void *ud);
/** Completion of souk_discord_get: j is the parsed body (NULL when the
 * request failed or the body was not JSON) and root its top token (0).
 * Valid during the call only. */
typedef void (*souk_discord_json_cb)(const souk_discord_result_t *res, const souk_json_t *j,
                                     int root, void *ud);

/** Post msg to a channel.  Content longer than 2000 characters is split
 * into several messages (embeds and components go with the first); each
 * carries a nonce Discord enforces, so a POST retried after a timeout is
 * never posted twice.  Mentions are never parsed (no accidental pings);
 * msg->ephemeral is ignored (only replies can be private).  0, SOUK_EINVAL
 * (channel 0, or an empty message), SOUK_EFULL (the REST queue is full),
 * SOUK_ESTOPPED (not started or shutting down). */
int souk_discord_send(uint64_t channel_id, const souk_msg_t *msg, souk_discord_cb cb, void *ud);

/** Replace a message the bot posted: content, embeds and components
 * become msg's (a part msg lacks is removed).  Content is cut to 2000
 * characters with an ellipsis.  Errors as souk_discord_send; an edit of a
 * deleted message completes with SOUK_ENOTFOUND and code 10008. */
int souk_discord_edit(uint64_t channel_id, uint64_t message_id, const souk_msg_t *msg,
                      souk_discord_cb cb, void *ud);

/** Coalesced edit, for messages that change often (polls, games,
 * heartbeats): keeps only the latest msg per message and sends at most one
 * edit per min_interval_ms (at least 1000) per message; the latest state is
 * always sent in the end.  No callback: a failed edit is logged, and once a
 * message is known to be gone (10008) further calls for it return
 * SOUK_ENOTFOUND for a while.  0, SOUK_EINVAL, SOUK_ENOTFOUND, SOUK_EFULL
 * (too many messages being edited at once), SOUK_ESTOPPED. */
int souk_discord_edit_latest(uint64_t channel_id, uint64_t message_id, const souk_msg_t *msg,
                             uint32_t min_interval_ms);

/** souk_discord_edit_latest for states that carry a version (a poll's
 * tally, numbered by the store row it was read from): a state whose
 * version is not above the highest one given for that message is dropped
 * (0 is returned and nothing changes), so a state computed earlier but
 * handed in later (its transaction finished last) never replaces a newer
 * one.  The highest version is remembered for an hour after the last call
 * for the message.  version > 0; errors as souk_discord_edit_latest. */
int souk_discord_edit_versioned(uint64_t channel_id, uint64_t message_id, const souk_msg_t *msg,
                                uint32_t min_interval_ms, uint64_t version);

/** Delete a message.  Errors as souk_discord_edit. */
int souk_discord_delete(uint64_t channel_id, uint64_t message_id, souk_discord_cb cb, void *ud);

/** Send msg to a user in DMs: opens the DM channel (POST
 * /users/@me/channels, remembered per user) and posts there.  A user who
 * closed DMs is reported as SOUK_EFORBIDDEN with code 50007 and is never
 * retried: souk remembers the refusal for an hour and answers further DMs
 * to that user the same way without asking Discord (status 0), because
 * every refused request counts against Discord's invalid-request limit.
 * res->channel_id is the DM channel.  Errors as souk_discord_send (user 0
 * is SOUK_EINVAL). */
int souk_discord_dm(uint64_t user_id, const souk_msg_t *msg, souk_discord_cb cb, void *ud);

/** Rename a channel (a stats counter).  Discord allows 2 renames per
 * channel per 10 minutes and answers a third with a 429 of about 10
 * minutes that its bucket headers never warn of, so souk counts renames per
 * channel itself and refuses a third within the window: the call returns
 * SOUK_ERATELIMIT and sends nothing (souk_discord_rename_wait_ms says for
 * how long).  Rename only when the value changed, and keep the latest value
 * to apply when the window opens.  A 429 Discord sends anyway (another
 * process renamed) completes with SOUK_ERATELIMIT and retry_after_ms, and
 * the channel is refused locally until then.  name: 1-100 characters. */
int souk_discord_rename_channel(uint64_t channel_id, const char *name, souk_discord_cb cb,
                                void *ud);
/** Milliseconds until a rename of channel_id would be allowed: 0 now. */
uint64_t souk_discord_rename_wait_ms(uint64_t channel_id);

/** GET a path under the API ("/guilds/1?with_counts=true",
 * "/guilds/1/bans?limit=1000&after=0") and hand the parsed body to cb.
 * 0, SOUK_EINVAL (a path not starting with '/'), SOUK_EFULL, SOUK_ESTOPPED. */
int souk_discord_get(const char *path, souk_discord_json_cb cb, void *ud);

/** Set the bot's activity (op 3) on every shard of this process; text NULL
 * or "" clears it; activity_type is Discord's (0 playing, 2 listening, 3
 * watching, 4 custom, 5 competing).  Discord allows 5 presence updates per
 * 60 s per shard: within that they go out at once, beyond it the update
 * waits and only the latest waiting one is sent when the window allows.
 * 0, SOUK_EINVAL (text over 128 characters or a bad type), SOUK_ESTOPPED. */
int souk_discord_set_presence(const char *text, int activity_type);

/** Gateway latency (heartbeat sent to ACK) of a shard this process runs:
 * the last round trip and a moving average, in milliseconds.  0, or
 * SOUK_ENOTFOUND when the shard is not running here or has no measurement
 * yet (the console, or before the first ACK).  Either pointer may be
 * NULL. */
int souk_gateway_latency(uint32_t shard, int64_t *last_ms, int64_t *avg_ms);

/** The bot's user id (from READY; a fixed id in the console; 0 before). */
uint64_t souk_discord_bot_user_id(void);

/** The gateway intents souk identifies with (discord.intents), read-only:
 * a module tells from them which events it will receive (members with
 * SOUK_INTENT_GUILD_MEMBERS, bans with SOUK_INTENT_GUILD_MODERATION) rather
 * than asking the operator to say it twice.  Known once the config is
 * loaded (before any module starts); the same in `souk console`, which
 * receives no events. */
uint64_t souk_discord_intents(void);

/** Whether the bot has every bit of perm_bits in a guild's channel
 * (channel_id 0: guild-wide), from the guild, role and channel cache kept
 * from gateway events: the owner and ADMINISTRATOR have everything, then
 * @everyone and the bot's roles, then the channel's overwrites in Discord's
 * order.  False for a guild or channel the cache does not know (the bot is
 * not there, or the channel does not exist).  Always true in the console. */
bool souk_discord_bot_can(uint64_t guild_id, uint64_t channel_id, uint64_t perm_bits);

#endif
