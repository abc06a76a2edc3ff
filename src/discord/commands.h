/* The Discord surfaces of the command runner: INTERACTION_CREATE from the
 * gateway, interactions from the HTTP endpoint, and prefix commands in
 * MESSAGE_CREATE; plus the bulk registration of slash commands and the
 * small guild cache (owner and role permissions) prefix commands need.
 *
 * Everything runs on the loop thread. */
#ifndef SOUK_DISCORD_COMMANDS_H
#define SOUK_DISCORD_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>

#include "discord/rest.h"
#include "souk/module.h"

struct souk_store;
/** The store that keeps the registered command set's hash, so an
 * unchanged set is not sent again at the next start (NULL: none, the set
 * is always sent).  Borrowed until set again. */
void souk__dcmd_set_store(struct souk_store *st);

/** Start: hook the HTTP interactions endpoint and, when commands.owners is
 * empty, learn the application's owners.  Call after the REST client. */
void souk__dcmd_start(void);
/** Stop: forget the guild cache, unhook the endpoint. */
void souk__dcmd_stop(void);
/** Handle a gateway event before modules see it: READY (registration),
 * guild and role events (the cache), INTERACTION_CREATE and prefix
 * MESSAGE_CREATEs.  Returns true when the event was a command (modules
 * still see MESSAGE_CREATE events, but not interactions). */
bool souk__dcmd_event(const souk_event_t *ev);

/** What registration did, for tests and logs. */
typedef enum souk__dcmd_reg_state {
  SOUK__DCMD_REG_IDLE,
  SOUK__DCMD_REG_UNCHANGED, /* the stored hash matched: nothing sent */
  SOUK__DCMD_REG_SENT,      /* PUT succeeded and the hash was stored */
  SOUK__DCMD_REG_FAILED,
} souk__dcmd_reg_state_t;
souk__dcmd_reg_state_t souk__dcmd_reg_state(void);

/** Post text to a channel as plain replies (split at 2000 characters, no
 * mentions parsed, nonces derived from reply_to so a retry is not posted
 * twice); the first part replies to reply_to when it is not 0.  0 or the
 * REST client's error. */
int souk__dcmd_post_text(uint64_t channel, uint64_t reply_to, const char *text, size_t len);

/** Send interactions' responses and follow-ups through fn instead of the
 * REST client (NULL restores it): for tests and the interactions fuzzer,
 * which read the real surface's bodies.  fn keeps souk__rest_request's
 * contract: 0 and cb called exactly once, later, or SOUK_E* and never. */
void souk__dcmd_set_ix_send(int (*fn)(const souk__rest_opts_t *o, souk__rest_cb cb, void *ud));

/** FNV-1a 64-bit hash, used for the registered command set. */
uint64_t souk__dcmd_hash(const void *data, size_t n, uint64_t h);

#endif
