/* Polls: a question with 2 to 10 options, one vote per user that the user
 * may change, over the economy_polls and economy_poll_votes tables of
 * store migration v5.
 *
 * Every vote that changes something bumps the poll's version in the same
 * transaction and reads the tally back, so the tally a vote returns is
 * consistent and carries the version it belongs to: whoever shows tallies
 * (the poll message) shows only ones newer than the last shown, and the
 * last state always wins whatever order the transactions finish in.
 *
 * Functions run inside the caller's transaction (see ledger.h). */
#ifndef ECONOMY_POLLS_H
#define ECONOMY_POLLS_H

#include "souk/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ECONOMY_POLL_OPTIONS_MAX  10
#define ECONOMY_POLL_QUESTION_MAX 200 /* bytes */
#define ECONOMY_POLL_OPTION_MAX   60  /* bytes: it is a button label too */

/** A poll and its tally. */
typedef struct economy_poll {
  int64_t id, guild_id, channel_id, creator_id;
  char question[ECONOMY_POLL_QUESTION_MAX + 1];
  char options[ECONOMY_POLL_OPTIONS_MAX][ECONOMY_POLL_OPTION_MAX + 1];
  size_t noptions;
  int64_t votes[ECONOMY_POLL_OPTIONS_MAX];
  int64_t voters;
  int64_t version; /* bumped by every vote that changed something */
  bool closed;
} economy_poll_t;

/** Check a question and options as a user typed them: NULL when fine,
 * else a one-sentence reason.  Options must be distinct, non-empty and
 * free of line breaks. */
const char *economy_poll_invalid(const char *question, const char *const *options, size_t n);

/** Create a poll; *id gets its number.  SOUK_EINVAL when
 * economy_poll_invalid() objects. */
int economy_poll_create(souk_db_t *db, int64_t guild_id, int64_t channel_id, int64_t creator_id,
                        const char *question, const char *const *options, size_t n, int64_t now_ms,
                        int64_t *id);
/** Read a poll with its tally: 0 or SOUK_ENOTFOUND. */
int economy_poll_get(souk_db_t *db, int64_t poll_id, economy_poll_t *out);
/** Record user_id's vote for option choice (0-based), replacing their
 * earlier vote; *changed says whether anything changed (false for the
 * same choice again, or a closed poll, which takes no votes).  out gets
 * the tally after it.  SOUK_ENOTFOUND for no such poll, SOUK_EINVAL for a
 * choice it does not have. */
int economy_poll_vote(souk_db_t *db, int64_t poll_id, int64_t user_id, int64_t choice,
                      int64_t now_ms, bool *changed, economy_poll_t *out);
/** The option user_id voted for, or -1. */
int economy_poll_choice_of(souk_db_t *db, int64_t poll_id, int64_t user_id, int64_t *choice);
/** Close a poll (no more votes) and read its final tally. */
int economy_poll_close(souk_db_t *db, int64_t poll_id, economy_poll_t *out);

#endif
