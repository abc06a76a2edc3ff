/* The daily IDENTIFY budget: whether a shard may start a session now.
 *
 * Discord allows session_start_limit.total session starts (IDENTIFYs) a
 * day, 1,000 for most bots, and resets the token of a bot that goes over,
 * ending every session it has.  A gateway that drops every connection
 * right after IDENTIFY, or answers op 9 d:false again and again, would
 * take souk there within a day.  So souk spends at most a share of the
 * limit (discord.shards.identify_share, in percent) in any 24 hours:
 *
 *  - the bot's starts per hour, shared by its processes (idlock.h's
 *    record: memory, the lock file or Redis), summed over the current hour
 *    and the 24 before it, must stay below the budget;
 *  - and until Discord's window resets, the starts GET /gateway/bot said
 *    were used (total - remaining), plus this process's since, must too.
 *
 * Pure: the caller hands in the counts and the time.  Loop thread only. */
#ifndef SOUK_DISCORD_IDBUDGET_H
#define SOUK_DISCORD_IDBUDGET_H

#include "discord/idlock.h"

#include <stdbool.h>
#include <stdint.h>

/** Discord's limit when GET /gateway/bot was not asked. */
#define SOUK_IDBUDGET_TOTAL_DEFAULT 1000

/** One process's view of the budget.  Zero-initialise, then init. */
typedef struct souk__idbudget {
  uint32_t total;      /* Discord's session starts a day */
  uint32_t limit;      /* of those, what souk may use in any 24 hours */
  int64_t used_before; /* Discord's count at the fetch, -1 unknown */
  int64_t reset_at;    /* Unix ms when Discord's window resets */
  uint32_t since;      /* this process's starts since the fetch */
} souk__idbudget_t;

/** Set the budget from share (percent, 1-100) of total (0: the default),
 * and Discord's window as GET /gateway/bot gave it at now_wall: remaining
 * (-1 unknown) and reset_after ms (0: it has not started). */
void souk__idbudget_init(souk__idbudget_t *b, uint32_t total, uint32_t share, int64_t remaining,
                         int64_t reset_after, int64_t now_wall);

/** What the budget says at now_wall given the bot's starts per hour
 * (counts[i]: hour now_wall / SOUK_IDL_HOUR_MS - i).  Returns 0 when one
 * more start may go, else the ms until it may; *used (may be NULL) gets
 * the starts that count against the limit. */
int64_t souk__idbudget_wait(const souk__idbudget_t *b, const uint32_t counts[SOUK_IDL_HOURS],
                            int64_t now_wall, uint32_t *used);

/** One start of this process went out. */
void souk__idbudget_spent(souk__idbudget_t *b);

#endif
