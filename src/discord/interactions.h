/* Discord's HTTP interactions endpoint: POST /interactions on souk's HTTP
 * server, as an alternative to INTERACTION_CREATE on the gateway.
 *
 * Discord signs every request with the application's Ed25519 key: the
 * X-Signature-Ed25519 header holds the signature (hex) of the
 * X-Signature-Timestamp header's text followed by the raw body.  Requests
 * that fail the check get 401, which Discord's docs require and which
 * Discord probes when the endpoint URL is saved (it sends a badly signed
 * request and refuses an endpoint that accepts it).  A PING (type 1) is
 * answered {"type":1} here; every other interaction goes to the handler
 * set with souk__ix_set_handler().
 *
 * Discord waits 3 seconds for the HTTP answer and then shows "This
 * interaction failed".  So a handler that has not answered within the
 * deadline (2.5 s, leaving room for the network) is answered for: a
 * deferred response, {"type":5} (a "thinking..." message the handler later
 * edits) for commands and modal submits, {"type":6} (acknowledge, edit the
 * message later) for components, and an empty choice list for
 * autocomplete, which cannot be deferred.  The handler then finishes with
 * a follow-up or an edit through the REST API.
 *
 * Everything runs on the loop thread. */
#ifndef SOUK_DISCORD_INTERACTIONS_H
#define SOUK_DISCORD_INTERACTIONS_H

#include "souk/json.h"
#include "souk/loop.h"
#include "souk/store.h"
#include "souk/task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Interaction types (Discord's `type` field). */
enum {
  SOUK_IX_PING = 1,
  SOUK_IX_APPLICATION_COMMAND = 2,
  SOUK_IX_MESSAGE_COMPONENT = 3,
  SOUK_IX_AUTOCOMPLETE = 4,
  SOUK_IX_MODAL_SUBMIT = 5,
};

/** How far a request's timestamp may lag behind the clock (5 minutes) or
 * run ahead of it (1 minute) before it is refused as a replay.  Discord
 * sends the time it signed at; the small future allowance covers clock
 * skew between its servers and this host. */
#define SOUK_IX_MAX_AGE_MS  (5 * 60 * 1000)
#define SOUK_IX_MAX_SKEW_MS (60 * 1000)
/** Default time a handler has before the deferred answer goes out. */
#define SOUK_IX_DEADLINE_MS 2500

/** Check Discord's signature over timestamp || body.  pubkey_hex is the
 * application public key (exactly 64 hex digits), sig_hex the
 * X-Signature-Ed25519 header (exactly 128 hex digits), timestamp the
 * X-Signature-Timestamp header (Unix seconds, decimal digits only).
 * Returns 0 when the signature is valid and the timestamp lies within
 * SOUK_IX_MAX_AGE_MS before and SOUK_IX_MAX_SKEW_MS after the clock
 * (souk__ix_set_clock), otherwise SOUK_EAUTH: a bad or malformed key,
 * signature or timestamp, a tampered body, or a stale request (a replay).
 * Any argument may be NULL (then SOUK_EAUTH), body only when len is 0.
 * OpenSSL's verification does not branch on secret data; nothing here is
 * secret anyway (the key is public). */
int souk__ix_verify(const char *pubkey_hex, const char *sig_hex, const char *timestamp,
                    const void *body, size_t len);

/** Set the wall clock the replay window is measured against: now_ms must
 * return UTC Unix milliseconds.  The clock is copied; NULL restores
 * souk_unix_ms().  For tests. */
void souk__ix_set_clock(const souk_clock_t *clock);

/** One interaction received over HTTP, owed an answer (opaque). */
typedef struct souk__ix souk__ix_t;

/** Handler for every interaction but PING.  json is the parsed body (token
 * 0 is the interaction object); it and ix stay valid until
 * souk__ix_respond(ix, ...) returns.  The handler must call
 * souk__ix_respond exactly once, now or later from a callback, even after
 * the deadline has passed (then the call only releases ix). */
typedef void (*souk__ix_handler_cb)(souk__ix_t *ix, const souk_json_t *json, void *ud);

/** Set the handler (NULL: none; interactions are then deferred at once and
 * a warning is logged, since nothing will ever follow up).  ud is passed to
 * each call. */
void souk__ix_set_handler(souk__ix_handler_cb fn, void *ud);

/** Set the time a handler has before the deferred answer goes out; 0
 * restores SOUK_IX_DEADLINE_MS.  Applies to interactions received
 * afterwards.  For tests. */
void souk__ix_set_deadline_ms(uint64_t ms);

/** The interaction's type (SOUK_IX_*). */
int souk__ix_type(const souk__ix_t *ix);

/** True once the deferred answer has gone out in the handler's place: the
 * handler must then finish through the REST API (edit the original
 * response or send a follow-up) with the id and token from the JSON, which
 * it copies before calling souk__ix_respond. */
bool souk__ix_deferred(const souk__ix_t *ix);

/** Answer ix with an interaction response (JSON text of len bytes, copied,
 * e.g. {"type":4,"data":{"content":"hi"}}), sent as 200 application/json.
 * Returns 0 when it was sent, and ix is released; SOUK_ETIMEDOUT when the
 * deferred answer already went out (ix is released; finish through REST);
 * SOUK_EINVAL when json is not a JSON object: nothing is sent and ix stays
 * owed (the deadline still applies). */
int souk__ix_respond(souk__ix_t *ix, const char *json, size_t len);

/** The store where each interaction's id is claimed before its handler
 * runs and its answer is recorded, so a retried request (a load balancer
 * sending it again, to this process or another) answers with the first
 * one's answer and never runs the command twice; NULL: no check (one
 * process, no retries).  The store must outlive the mount. */
void souk__ix_set_store(souk_store_t *st);
/** Retried interactions answered without running their handler. */
uint64_t souk__ix_retries(void);
/** The task "interactions.prune" (once per cluster): recorded answers
 * older than 15 minutes are deleted. */
const souk_task_t *souk__ix_tasks(void);

/** Mount POST /interactions (public) when discord.public_key is set.  The
 * key is copied, so later config changes need an unmount and a mount.
 * Returns 0 (also when the key is unset: nothing is mounted),
 * SOUK_ECONFIG when the key is not 64 hex digits (logged with the key's
 * name), or souk_httpd_mount()'s error (SOUK_EEXIST when mounted). */
int souk__ix_mount(void);

/** Unmount the route.  Interactions still waiting for their handler are
 * answered with the deferred response now; their handlers' later
 * souk__ix_respond returns SOUK_ETIMEDOUT.  Safe when not mounted. */
void souk__ix_unmount(void);

#endif
