/* WebSocket client (RFC 6455) on souk's libuv loop: ws:// and wss://.
 *
 * One souk__ws_t is one connection attempt.  Everything happens on the loop
 * thread; callbacks are never called from inside souk_ws_* functions, only
 * from the loop, so a callback may call any souk_ws_* function, including on
 * its own connection.
 *
 * Lifetime: souk__ws_connect() returns a handle that stays valid until its
 * on_close callback returns; souk__ws_t memory is released right after that,
 * so the owner must forget the pointer inside on_close.  on_close is called
 * exactly once for every successful souk__ws_connect(), whatever happens
 * (connect failure, peer close, souk__ws_close(), souk__ws_abort(),
 * souk__ws_global_shutdown()). */
#ifndef SOUK_NET_WS_H
#define SOUK_NET_WS_H

#include <stdbool.h>
#include <stddef.h>

/** One WebSocket connection; opaque. */
typedef struct souk__ws souk__ws_t;

/** Close code reported when a connection ends without a closing handshake:
 * it never opened, the TCP connection dropped, or it was aborted. */
#define SOUK_WS_ABNORMAL 1006

/** Connection callbacks; on_close is required, the others may be NULL.
 * Pointers passed to them are valid only during the call. */
typedef struct souk__ws_cbs {
  /** The opening handshake completed; messages may flow. */
  void (*on_open)(souk__ws_t *ws, void *ud);
  /** One complete (reassembled) message, text or binary. */
  void (*on_message)(souk__ws_t *ws, void *ud, const char *data, size_t len, bool binary);
  /** The connection is over.  code is the close code of the closing
   * handshake (the peer's, or ours when we closed and the peer sent none of
   * its own) or SOUK_WS_ABNORMAL; reason is never NULL.  Called exactly
   * once; ws is freed when this returns. */
  void (*on_close)(souk__ws_t *ws, void *ud, int code, const char *reason);
} souk__ws_cbs_t;

/** Create the shared WebSocket context on souk_loop() if it does not exist
 * yet (the handle that writes queued frames once per loop iteration; the
 * TLS client context follows with the first wss:// connection).
 * souk__ws_connect() calls it on first use.  0 or SOUK_E*. */
int souk__ws_global_init(void);

/** End every connection (each gets on_close with SOUK_WS_ABNORMAL and
 * reason "shutdown", unless it is already closing) and destroy the shared
 * context.  Its libuv handles close asynchronously: keep running the loop
 * until souk__ws_global_idle() is true - uv_run(UV_RUN_DEFAULT) returning
 * guarantees it - before souk_loop_close(), which would otherwise cut the
 * destruction short and leak the context.  souk__ws_connect() fails with
 * SOUK_ESTOPPED until then; a later souk__ws_global_init() starts afresh.
 * Safe to call when nothing was ever initialised, and from inside a
 * callback. */
void souk__ws_global_shutdown(void);

/** True when no WebSocket context exists and none is still closing its
 * libuv handles: the loop may then be closed. */
bool souk__ws_global_idle(void);

/** Start connecting to url (ws://host[:port]/path?query or wss://...).
 * The host name is resolved asynchronously; Host and TLS SNI use the name,
 * not the address.  cbs is copied; ud is passed back to every callback.
 * On success *out is the handle and 0 is returned; otherwise SOUK_EINVAL
 * (bad URL or scheme), SOUK_ESTOPPED (during shutdown) or SOUK_EIO, and no
 * callback is ever called. */
int souk__ws_connect(const char *url, const souk__ws_cbs_t *cbs, void *ud, souk__ws_t **out);

/** Queue one message (text unless binary) for sending; data is copied.
 * Messages go out in order, those queued in one loop iteration in one
 * write.  0, SOUK_ECLOSED when the connection is closing or closed (or
 * TLS refused the message: the connection then ends, and on_close follows
 * from the loop), SOUK_ECONN when it is not open yet. */
int souk__ws_send(souk__ws_t *ws, const void *data, size_t len, bool binary);

/** Start the closing handshake with code (1000-4999) and an optional short
 * reason (NULL for none; at most 123 bytes are sent).  Messages queued
 * before are sent first.  If the peer does not complete the handshake
 * within a few seconds the TCP connection is dropped.  Before the connection is
 * open this aborts it.  on_close follows; repeated calls are ignored. */
void souk__ws_close(souk__ws_t *ws, int code, const char *reason);

/** Drop the TCP connection without a closing handshake.  on_close follows
 * with SOUK_WS_ABNORMAL (unless a close already completed). */
void souk__ws_abort(souk__ws_t *ws);

/** Refuse incoming messages larger than max bytes (default 16 MiB): the
 * connection is closed with 1009 when one arrives. */
void souk__ws_set_max_message(souk__ws_t *ws, size_t max);

/** True once the opening handshake completed and until closing starts. */
bool souk__ws_is_open(const souk__ws_t *ws);

/** Number of queued outgoing messages not yet handed to the socket. */
size_t souk__ws_queued(const souk__ws_t *ws);

/** Number of connections alive (connecting, open or closing). */
size_t souk__ws_live(void);

#endif
