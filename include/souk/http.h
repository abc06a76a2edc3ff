/* Asynchronous HTTP client: libcurl's multi interface driven by the loop.
 *
 * One curl multi handle serves every request, so connections (and HTTP/2
 * streams, where the server offers h2 over TLS) are reused; libcurl's
 * sockets are watched with uv_poll and its timeouts with one uv_timer.
 * Bodies are decoded from gzip transparently.  Everything runs on the loop
 * thread: call these functions only from it.
 *
 * Callbacks run on the loop thread, never from inside souk_http_request().
 * A callback may start new requests, cancel other requests and call
 * souk_http_shutdown(). */
#ifndef SOUK_HTTP_H
#define SOUK_HTTP_H

#include <stddef.h>
#include <stdint.h>

/** An in-flight request (opaque). */
typedef struct souk_http_req souk_http_req_t;

/** What to send.  Everything is copied by souk_http_request(); the struct
 * and the strings it points to may be freed as soon as it returns. */
typedef struct souk_http_opts {
  const char *method;         /* "GET" (default when NULL), "POST", "PATCH", ... */
  const char *url;            /* http:// or https:// only */
  const char *const *headers; /* "Name: value" lines; no CR or LF */
  size_t nheaders;
  const void *body; /* request body (may be NULL) */
  size_t body_len;
  uint32_t timeout_ms;         /* whole request; 0: 30 s */
  uint32_t connect_timeout_ms; /* connect + TLS handshake; 0: 10 s */
  size_t max_response_bytes;   /* decoded body limit; 0: 64 MiB */
  unsigned max_redirects;      /* 0: redirects are not followed */
} souk_http_opts_t;

/** One response header; name is lower-cased, value has no surrounding
 * whitespace. */
typedef struct souk_http_header {
  const char *name;
  const char *value;
} souk_http_header_t;

/** A response as the callback sees it.  Everything it points to is owned
 * by the client and valid only during the callback: copy what you keep. */
typedef struct souk_http_resp {
  /** 0 when a response arrived (whatever its status), else SOUK_ETIMEDOUT,
   * SOUK_ECONN (resolve/connect/TLS failed), SOUK_ECLOSED (the connection
   * broke mid-request), SOUK_ETOOBIG (over max_response_bytes),
   * SOUK_EPROTO (malformed response), SOUK_ECANCELED (shutdown) or
   * SOUK_EIO. */
  int err;
  int status;       /* HTTP status; 0 when err is set */
  const char *body; /* NUL-terminated, never NULL */
  size_t body_len;
  const souk_http_header_t *headers; /* of the final response */
  size_t nheaders;
  uint64_t elapsed_ms; /* from souk_http_request to completion */
  const char *detail;  /* libcurl's error text, "" if none */
} souk_http_resp_t;

/** Completion callback: called exactly once per successfully started
 * request, unless it is cancelled with souk_http_cancel() first. */
typedef void (*souk_http_cb)(const souk_http_resp_t *resp, void *ud);

/** Set up the client on souk_loop() (calls souk_alloc_init(), so libcurl's
 * allocations go through souk's allocator).  Idempotent.  0 or SOUK_E*. */
int souk_http_init(void);

/** Cancel every in-flight request, calling each callback with
 * SOUK_ECANCELED before this returns, and release the multi handle.  Its
 * uv handles close asynchronously: run the loop (or souk_loop_close())
 * afterwards to free them.  Requests started meanwhile (from one of those
 * callbacks) fail with SOUK_ESTOPPED.  souk_http_init() may be called again
 * afterwards. */
void souk_http_shutdown(void);

/** Start a request.  Returns 0, and cb will be called exactly once later
 * (unless cancelled); *out_opt (may be NULL) receives a handle valid until
 * cb is called or souk_http_cancel returns.  Returns SOUK_EINVAL (bad url,
 * method or header) or SOUK_ESTOPPED (not initialised) and never calls cb. */
int souk_http_request(const souk_http_opts_t *o, souk_http_cb cb, void *ud,
                      souk_http_req_t **out_opt);

/** Abort req.  Its callback is NOT called: the caller, who knows about the
 * cancellation, releases whatever ud holds.  req is invalid afterwards.
 * Calling it from req's own callback is allowed and does nothing. */
void souk_http_cancel(souk_http_req_t *req);

/** Value of header name (any case) in resp, or NULL.  The first one wins
 * when a header repeats. */
const char *souk_http_header(const souk_http_resp_t *resp, const char *name);

/** Number of requests in flight. */
size_t souk_http_inflight(void);

#endif
