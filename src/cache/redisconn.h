/* What the cache (cache.c) and the Redis identify lock (idlock_redis.c)
 * share about talking to Redis: the redis:// URL, a hiredis 0.14 libuv
 * adapter that does not hang on a reset connection, the connect to a
 * numeric address, and the pipelined AUTH / SELECT / PING handshake.
 *
 * Each caller keeps its own policy: name resolution, reconnect backoff,
 * fallback, timeouts and what it logs.  Loop thread only. */
#ifndef SOUK_CACHE_REDISCONN_H
#define SOUK_CACHE_REDISCONN_H

#include <hiredis/async.h>
#include <stddef.h>

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

/** Start connecting to ip (numeric: hiredis would resolve a name with a
 * blocking getaddrinfo()) and port on souk_loop(), through the libuv
 * adapter with its event hooks replaced so a reset connection reaches
 * hiredis (see redisconn.c).  data becomes ac->data; on_connect and
 * on_disconnect are hiredis's connect and disconnect callbacks.  Returns
 * the context, which the caller then owns (redisAsyncFree() or
 * redisAsyncDisconnect()), or NULL with a reason in why (at most why_size
 * bytes, NUL-terminated); then nothing is left allocated and no callback
 * is ever called. */
redisAsyncContext *souk__redis_connect(const char *ip, int port, void *data,
                                       redisConnectCallback *on_connect,
                                       redisDisconnectCallback *on_disconnect, char *why,
                                       size_t why_size);

/** Queue the handshake on ac, pipelined: AUTH when u has a password (with
 * its user when it has one), SELECT when u->db is not 0, each answered to
 * on_error with privdata the command's name ("AUTH", "SELECT"), then a
 * PING answered to on_ready with NULL privdata.  on_error must ignore a
 * reply that is not an error.  Nothing sent before the PING's answer can
 * then run unauthenticated or on the wrong db.  Returns 0, or SOUK_EIO if
 * hiredis refused a command (the context is going away; the caller frees
 * it). */
int souk__redis_handshake(redisAsyncContext *ac, const souk__redis_url_t *u,
                          redisCallbackFn *on_ready, redisCallbackFn *on_error);

/** Write "<what> failed: <the first 120 bytes of r's text>" into why (at
 * most why_size bytes), for logging an error reply. */
void souk__redis_reply_why(char *why, size_t why_size, const char *what, const redisReply *r);

struct addrinfo;
/** The address to connect to from a uv_getaddrinfo() answer, as text in ip
 * (at least INET6_ADDRSTRLEN bytes): the first IPv4 address, else the
 * first IPv6 one, else "" (ip[0] == 0).  IPv4 first because a server bound
 * to 127.0.0.1 is the common case and "localhost" often lists ::1 first. */
void souk__redis_pick_addr(const struct addrinfo *res, char *ip, size_t n);

#endif
