/* Shard sessions handed from one process to the next through Redis.
 *
 * A shard's gateway session (session id, resume URL, last handled sequence
 * number) is written to Redis after each event has been handled, so that
 * when the process running the shard dies or drains (closing with 4000,
 * which keeps the session alive on Discord's side), the process that runs
 * the shard next RESUMEs it from there: no fresh IDENTIFY, and Discord
 * replays exactly the events after the last one handled.
 *
 * A RESUME brings no READY and no GUILD_CREATE, so the shard's guild state
 * moves with the session: a record per guild of what the guild cache keeps
 * (discord/gcache.h), written when an event changes the guild, in the same
 * atomic write as the session that event moved to.  The sequence number in
 * Redis never runs ahead of the records (when a burst of changes needs
 * several writes, the session goes with the last), so the process that
 * claims the shard restores the records before it RESUMEs and the replayed
 * events apply on top of them in order, as they did in the process before.
 *
 * Keys (prefix: cache.key_prefix):
 *   <prefix>gw:<count>:<shard>   a hash: sid, url, seq, owner, at (Unix ms
 *                                of the write), claimed_at; expires ttl
 *                                after the last write.
 *   <prefix>gw:<count>:<shard>:guilds   a hash: v (1: complete since the
 *                                session's READY), and guild id -> record;
 *                                emptied at each new session; expires with
 *                                the session.
 *   <prefix>gw:<count>:guilds    a hash: shard -> guilds that shard is in,
 *                                written by whoever runs the shard, summed
 *                                by every process for {guilds}.
 * The shard count is part of the name: a session of shard 3 of 4 is no use
 * to shard 3 of 8.
 *
 * Ownership: a process that starts a shard *claims* it (one script reads
 * the saved session and writes itself as the owner), and every write after
 * that is a script that only writes while the process is still the owner.
 * So the last process started for a shard wins: one still running it (a
 * zombie, or two processes given overlapping shard ranges) learns it at
 * its next write, and `lost` is called so that it stops the shard.
 *
 * Writes are coalesced: at most one write per shard is in flight, and when
 * it is answered the latest state goes out if it moved on meanwhile, so
 * Redis sees one write per round trip per shard whatever the event rate.
 * A process killed outright (kill -9) may therefore leave the events of one
 * round trip unrecorded: the next process is sent them again, and souk's
 * replies are idempotent (message nonces, unique keys on the causing
 * interaction or message).  A drained process writes everything before it
 * exits (souk__handoff_flush).
 *
 * When Redis is unreachable, claims answer "no session" (the shard
 * IDENTIFYs as before) and writes wait; they go out, after a fresh claim,
 * once Redis is back.  Nothing here ever blocks the loop or fails a shard.
 *
 * Loop thread only.  The connection is a link of the cache layer's
 * (cache/redisconn.h), of its own. */
#ifndef SOUK_DISCORD_HANDOFF_H
#define SOUK_DISCORD_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** What local_guilds answers for a shard whose guilds this process does
 * not know: one that resumed a session handed on (a RESUME brings no
 * GUILD_CREATE) and has had no READY since.  The count in Redis, written
 * by the process before, is then kept, and counted with the others'. */
#define SOUK_HANDOFF_GUILDS_UNKNOWN UINT64_MAX

/** How long a saved session is kept after its last write, by default.
 * Discord keeps a disconnected session resumable for a few minutes; an
 * older one would only earn an Invalid Session. */
#define SOUK_HANDOFF_TTL_MS (15 * 60 * 1000)

/** The hand-off of one process (opaque). */
typedef struct souk__handoff souk__handoff_t;

/** What a hand-off is made from.  Strings are copied. */
typedef struct souk__handoff_conf {
  const char *url;           /* redis://... (cache.url) */
  const char *prefix;        /* key prefix (cache.key_prefix); NULL: "" */
  uint32_t shard_count;      /* the bot's shard count, >= 1 */
  uint64_t ttl_ms;           /* 0: SOUK_HANDOFF_TTL_MS */
  uint64_t claim_timeout_ms; /* a claim not answered within this: no session; 0: 3000 */
  uint64_t refresh_ms;       /* guild counts written and read this often; 0: 2000 */
  uint64_t timeout_ms;       /* a Redis reply slower than this: reconnect; 0: 2000 */
  /** Another process claimed shard (owner: who, for the log): stop
   * running it here.  Called once per shard.  May be NULL. */
  void (*lost)(void *ud, uint32_t shard, const char *owner);
  /** Guilds that shard is in, for a shard this process runs, or
   * SOUK_HANDOFF_GUILDS_UNKNOWN.  NULL: guild counts are neither written
   * nor read. */
  uint64_t (*local_guilds)(void *ud, uint32_t shard);
  /** The guilds of the shards this process does not run, summed from
   * Redis, after every read.  May be NULL. */
  void (*others_guilds)(void *ud, uint64_t guilds);
  /** The record of a guild to hand on (a new allocation, freed here; *len
   * its size), or NULL when the guild is gone.  NULL: guild state is not
   * handed on. */
  void *(*guild_record)(void *ud, uint64_t guild_id, size_t *len);
  /** A guild record handed on with the session of shard, called for each
   * before the claim's callback (rec valid during the call only); false
   * when it could not be put back (the shard's guilds then count as not
   * handed on).  NULL: records are not read. */
  bool (*guild_restore)(void *ud, uint32_t shard, const void *rec, size_t len);
  void *ud;
} souk__handoff_conf_t;

/** Answer to a claim: the session saved for the shard (valid during the
 * call only), or session_id NULL when there is none, it has no resume URL
 * or seq, or Redis could not be asked in time. */
typedef void (*souk__handoff_claim_cb)(void *ud, uint32_t shard, const char *session_id,
                                       const char *resume_url, uint64_t seq);

/** Figures of a hand-off. */
typedef struct souk__handoff_stats {
  bool redis_up;            /* the connection is up and its scripts loaded */
  uint64_t claims;          /* claims answered */
  uint64_t claims_found;    /* of those, with a session to resume */
  uint64_t writes;          /* session writes Redis accepted */
  uint64_t write_failures;  /* writes lost with the connection, or refused */
  uint64_t lost;            /* shards another process claimed */
  uint64_t guilds_written;  /* guild records written or deleted */
  uint64_t guilds_restored; /* guild records handed to guild_restore */
  uint64_t others_guilds;   /* the last sum read (0 before) */
} souk__handoff_stats_t;

/** Make a hand-off and start connecting.  0 and *out, SOUK_EINVAL (no URL
 * or shard count) or SOUK_ECONFIG (a bad URL; nothing allocated, nothing
 * logged). */
int souk__handoff_new(const souk__handoff_conf_t *conf, souk__handoff_t **out);

/** Claim shard for this process and ask for its saved session: cb is
 * called once, from the loop, never inside this call.  0, SOUK_EBUSY (a
 * claim of that shard is pending), SOUK_ESTOPPED (being freed); on error cb
 * is never called. */
int souk__handoff_claim(souk__handoff_t *h, uint32_t shard, souk__handoff_claim_cb cb, void *ud);
/** Withdraw a pending claim's callback (the shard stopped): it is not
 * called.  The claim itself still goes to Redis, so the next writes of the
 * shard, if any, are this process's. */
void souk__handoff_cancel(souk__handoff_t *h, uint32_t shard);

/** The shard's session after an event was handled: written now, or when
 * the write in flight is answered.  Strings are copied.  A shard lost to
 * another process is no longer written. */
void souk__handoff_save(souk__handoff_t *h, uint32_t shard, const char *session_id,
                        const char *resume_url, uint64_t seq);

/** An event changed guild_id (or it is gone): its record is written with
 * the next save of its shard ((guild_id >> 22) % shard_count), if that
 * shard runs here.  Nothing is asked of conf.guild_record before then. */
void souk__handoff_guild_changed(souk__handoff_t *h, uint64_t guild_id);
/** Whether this process knows shard's guilds as far as the hand-off can
 * tell: its claim was answered with a complete guild state, or it has
 * saved a new session (a READY) since.  False for a session resumed from
 * a process that handed on no guild state. */
bool souk__handoff_guilds_handed(const souk__handoff_t *h, uint32_t shard);

/** Call done once, from the loop, when every session and guild record saved so far is
 * written (or could not be: Redis down, a shard lost), or after
 * timeout_ms, whichever comes first.  A second flush replaces the first's
 * callback. */
void souk__handoff_flush(souk__handoff_t *h, uint64_t timeout_ms, void (*done)(void *ud), void *ud);

/** Current figures. */
void souk__handoff_stats(const souk__handoff_t *h, souk__handoff_stats_t *out);

/** This process's name in the keys' owner field ("host:pid:random"). */
const char *souk__handoff_owner(const souk__handoff_t *h);

/** Free the hand-off: the connection closes, pending claims and a pending
 * flush are dropped without a call, and the memory goes once the loop has
 * closed the handles.  NULL is fine. */
void souk__handoff_free(souk__handoff_t *h);

#endif
