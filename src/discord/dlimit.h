/* Limits souk keeps itself, on top of the REST rate limiter, for what
 * Discord enforces without announcing it in bucket headers: a sliding
 * window counter (presence updates: 5 per 60 s per shard), the channel
 * rename guard (2 renames per channel per 10 minutes) and the edit
 * coalescer behind souk_discord_edit_latest().
 *
 * All three are state machines with no I/O and no clock of their own: the
 * caller passes the time (monotonic milliseconds) in, so tests drive every
 * rule without sleeping.  Internal to src/discord; loop thread only. */
#ifndef SOUK_DISCORD_DLIMIT_H
#define SOUK_DISCORD_DLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- sliding window ------------------------------------------------------ */

/** Most events a window can count. */
#define SOUK__WLIM_MAX 8

/** At most `limit` events in any `window_ms`; zero-initialise. */
typedef struct souk__wlim {
  uint64_t at[SOUK__WLIM_MAX]; /* times of the last events, oldest first */
  uint8_t n;
  uint64_t blocked_until; /* nothing allowed before this (an outside refusal) */
} souk__wlim_t;

/** Milliseconds until one more event is allowed at now: 0 when it is. */
uint64_t souk__wlim_wait(const souk__wlim_t *w, unsigned limit, uint64_t window_ms, uint64_t now);
/** Count an event at now (forgetting events older than the window). */
void souk__wlim_take(souk__wlim_t *w, unsigned limit, uint64_t window_ms, uint64_t now);
/** Forget the event counted at `at` (it never reached Discord). */
void souk__wlim_untake(souk__wlim_t *w, uint64_t at);
/** Refuse everything until `until`. */
void souk__wlim_block(souk__wlim_t *w, uint64_t until);
/** True when nothing is counted or blocked any more at now. */
bool souk__wlim_idle(const souk__wlim_t *w, uint64_t window_ms, uint64_t now);

/* ---- channel renames -------------------------------------------------------- */

/** Discord's undocumented-in-headers rename limit. */
#define SOUK__RENAME_LIMIT     2
#define SOUK__RENAME_WINDOW_MS (10 * 60 * 1000)

/** Rename counts per channel; only channels renamed in the last window
 * (or blocked) hold an entry. */
typedef struct souk__rguard souk__rguard_t;

souk__rguard_t *souk__rguard_new(void);
void souk__rguard_free(souk__rguard_t *g);
/** Milliseconds until channel may be renamed: 0 now. */
uint64_t souk__rguard_wait(souk__rguard_t *g, uint64_t channel, uint64_t now);
/** Count a rename of channel at now: 0, or SOUK_ERATELIMIT (nothing
 * counted; *wait_ms, may be NULL, gets the time until allowed). */
int souk__rguard_take(souk__rguard_t *g, uint64_t channel, uint64_t now, uint64_t *wait_ms);
/** The rename counted at `at` never reached Discord: forget it. */
void souk__rguard_untake(souk__rguard_t *g, uint64_t channel, uint64_t at);
/** Discord refused a rename until `until` (a 429 it sent anyway). */
void souk__rguard_block(souk__rguard_t *g, uint64_t channel, uint64_t until);
/** Drop entries with nothing left to count; returns how many remain. */
size_t souk__rguard_gc(souk__rguard_t *g, uint64_t now);

/* ---- coalesced edits ------------------------------------------------------------ */

/** Sends one edit: body (len bytes of JSON, valid during the call) replaces
 * message `message` in `channel`.  Returns 0 when the edit is on its way
 * (souk__coal_done() follows), or an error (the state is kept pending and
 * tried again at the next interval). */
typedef int (*souk__coal_send_cb)(uint64_t channel, uint64_t message, const char *body, size_t len,
                                  void *ud);

/** How long a message known to be gone keeps refusing edits. */
#define SOUK__COAL_GONE_MS (10 * 60 * 1000)
/** How long the highest version put for a message is remembered after the
 * last put (souk__coal_put_v): far longer than any state computed earlier
 * can take to arrive. */
#define SOUK__COAL_VERSION_MS (60 * 60 * 1000)

typedef struct souk__coal souk__coal_t;

/** A coalescer for at most max_entries messages at once. */
souk__coal_t *souk__coal_new(size_t max_entries, souk__coal_send_cb send, void *ud);
/** Free it and every pending state (nothing is sent). */
void souk__coal_free(souk__coal_t *c);
/** The latest state of a message (body copied).  It is sent at once when
 * the message had no edit in the last interval_ms and none in flight,
 * else when both allow.  0, SOUK_ENOTFOUND (the message is gone),
 * SOUK_EFULL (max_entries messages are tracked). */
int souk__coal_put(souk__coal_t *c, uint64_t channel, uint64_t message, const char *body,
                   size_t len, uint32_t interval_ms, uint64_t now);
/** souk__coal_put for a state that carries a version (> 0): a state whose
 * version is not above the highest one put for the message is dropped (0
 * returned, counted as stale), so one computed earlier but handed in later
 * never replaces a newer one.  The highest version is kept for
 * SOUK__COAL_VERSION_MS after the last put, however many messages are
 * edited meanwhile; a full coalescer forgets idle messages first. */
int souk__coal_put_v(souk__coal_t *c, uint64_t channel, uint64_t message, const char *body,
                     size_t len, uint32_t interval_ms, uint64_t version, uint64_t now);
/** The edit in flight for message finished at now; the next edit of that
 * message waits a whole interval from now.  gone says Discord answered
 * that the message does not exist (it then refuses edits for a while). */
void souk__coal_done(souk__coal_t *c, uint64_t message, bool gone, uint64_t now);
/** Send what is due at now and forget idle messages.  Returns the next
 * time something may be due (UINT64_MAX: nothing waits on time). */
uint64_t souk__coal_pump(souk__coal_t *c, uint64_t now);
/** Messages tracked. */
size_t souk__coal_size(const souk__coal_t *c);
/** Edits sent and states replaced by a newer one before being sent. */
void souk__coal_counts(const souk__coal_t *c, uint64_t *sent, uint64_t *coalesced);
/** Versioned states dropped because a newer version had been put. */
uint64_t souk__coal_stale(const souk__coal_t *c);

#endif
