/* The cache layer's interface to Redis connections, which the cache
 * (cache.c) and the Discord layer's Redis identify lock
 * (src/discord/idlock_redis.c) share: the redis:// URL, and a link that
 * keeps one connection up by itself.
 *
 * A link resolves the host on the thread pool (hiredis would block the
 * loop), connects to the numeric address through a hiredis 0.14 libuv
 * adapter that does not hang on a reset connection, pipelines AUTH /
 * SELECT / PING, gives up on a connect or a reply slower than its timeout,
 * and reconnects after a loss with a doubling delay and jitter.  Whoever
 * owns it keeps its own policy: what it sends, what it serves while Redis
 * is down, and what it logs, through two callbacks.
 *
 * Loop thread only. */
#ifndef SOUK_CACHE_REDISCONN_H
#define SOUK_CACHE_REDISCONN_H

#include <hiredis/async.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A parsed redis://[[user]:password@]host[:port][/db].  The strings are
 * owned by the struct and freed by souk__redis_url_free(). */
typedef struct souk__redis_url {
  char *host;     /* a name or a numeric address, never empty */
  char *user;     /* NULL: no user (AUTH with the password alone) */
  char *password; /* NULL: no AUTH */
  int port;       /* 6379 when the URL names none */
  int db;         /* 0 when the URL names none (no SELECT) */
} souk__redis_url_t;

/** Parse url into *u, which must be zeroed.  A password found is
 * registered with souk_log_add_secret(), so no log line shows it.  Returns
 * 0, or SOUK_ECONFIG (not logged) with *u zeroed again and nothing left
 * allocated. */
int souk__redis_url_parse(const char *url, souk__redis_url_t *u);

/** Free the strings of u and zero it; a zeroed u is fine. */
void souk__redis_url_free(souk__redis_url_t *u);

/* ---- the link ------------------------------------------------------------- */

/** A Redis connection that keeps itself up (opaque). */
typedef struct souk__redis_link souk__redis_link_t;

/** What a link is made from.  Strings are copied. */
typedef struct souk__redis_link_conf {
  const char *url;             /* redis://[[user]:password@]host[:port][/db] */
  uint64_t backoff_min_ms;     /* first reconnect delay; 0: 250 */
  uint64_t backoff_max_ms;     /* cap of the doubling delay; 0: 30000 */
  uint64_t timeout_ms;         /* a connect or a reply slower than this: gone; 0: 2000 */
  /** The handshake's PING was answered: commands may go to ac now.  back
   * is true when an earlier connection was lost (the owner logs "back"),
   * false for the link's first connection. */
  void (*up)(void *ud, redisAsyncContext *ac, bool back);
  /** The connection was lost, or an attempt failed; why says what
   * happened.  first is true for the first failure since the link was
   * last up (or started): the owner logs that one as a warning, the
   * retries quietly.  was_up says commands had been going to Redis.  A
   * reconnect is already scheduled. */
  void (*down)(void *ud, const char *why, bool first, bool was_up);
  /** When the oldest reply the owner still waits for was asked (monotonic
   * ms), or UINT64_MAX for none: a reply older than timeout_ms drops the
   * connection.  NULL: only connects are timed. */
  uint64_t (*oldest)(void *ud);
  void *ud;
} souk__redis_link_conf_t;

/** Make a link and start connecting.  Because hiredis 0.14 writes with
 * write(2), SIGPIPE is set to be ignored if it still has its default
 * action.  Returns 0 and *out (freed with souk__redis_link_free), or
 * SOUK_ECONFIG (a bad URL; not logged) with nothing allocated. */
int souk__redis_link_new(const souk__redis_link_conf_t *conf, souk__redis_link_t **out);
/** The parsed URL, for log lines (owned by the link). */
const souk__redis_url_t *souk__redis_link_url(const souk__redis_link_t *l);
/** The connection commands go to, or NULL while it is not up. */
redisAsyncContext *souk__redis_link_ac(const souk__redis_link_t *l);
/** The conf's ud of the link that owns ac (a hiredis callback's context),
 * or NULL once that link is being freed: reply callbacks then return. */
void *souk__redis_link_owner(const redisAsyncContext *ac);
/** A reply on ac came back NULL: hiredis is tearing the connection down.
 * If ac is the link's connection, it is forgotten, down() is called and
 * a reconnect scheduled; hiredis frees the context itself. */
void souk__redis_link_lost(souk__redis_link_t *l, const redisAsyncContext *ac, const char *why);
/** The owner gives up on ac (a reply it cannot work with): as
 * souk__redis_link_lost, then the context is freed, so every reply still
 * pending on it is called with NULL.  Safe inside a reply callback
 * (hiredis then frees it when the callback returns). */
void souk__redis_link_drop(souk__redis_link_t *l, redisAsyncContext *ac, const char *why);
/** Free the link: its connection is freed at once (pending replies are
 * called with NULL and must see souk__redis_link_owner() return NULL), no
 * callback of the conf runs again, and the memory goes once the loop has
 * closed the link's handles.  NULL is fine. */
void souk__redis_link_free(souk__redis_link_t *l);

#endif
