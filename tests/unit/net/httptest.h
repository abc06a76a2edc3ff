/* Client-side helpers for tests that talk to souk's HTTP server with souk's
 * own HTTP client on the same loop (test_httpd.c, test_interactions.c).
 * Header-only: include it after cmocka.h. */
#ifndef SOUK_TEST_HTTPTEST_H
#define SOUK_TEST_HTTPTEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "souk/buf.h"
#include "souk/http.h"
#include "souk/loop.h"

/** What one request got back; free with got_free(). */
typedef struct got {
  int done;
  int err;
  int status;
  souk_buf_t body; /* NUL-terminated, never NULL once done */
  char ctype[128];
  char csp[128];
  char nosniff[32];
  char allow[64];
  char custom[64];
  char cache[64];
} got_t;

static void hdr(char *out, size_t cap, const souk_http_resp_t *r, const char *name) {
  const char *v = souk_http_header(r, name);
  snprintf(out, cap, "%s", v ? v : "");
}

/* The client's completion callback: copies status, body and headers. */
static void got_cb(const souk_http_resp_t *r, void *ud) {
  got_t *g = ud;
  g->done = 1;
  g->err = r->err;
  g->status = r->status;
  /* Appending even zero bytes leaves data non-NULL and NUL-terminated. */
  souk_buf_append(&g->body, r->body, r->body_len);
  hdr(g->ctype, sizeof g->ctype, r, "Content-Type");
  hdr(g->csp, sizeof g->csp, r, "Content-Security-Policy");
  hdr(g->nosniff, sizeof g->nosniff, r, "X-Content-Type-Options");
  hdr(g->allow, sizeof g->allow, r, "Allow");
  hdr(g->custom, sizeof g->custom, r, "X-Custom");
  hdr(g->cache, sizeof g->cache, r, "Cache-Control");
}

static void got_free(got_t *g) { souk_buf_free(&g->body); }

static bool expired;
static void guard_cb(uv_timer_t *t) { expired = true; }

/* Run the loop until *flag is set or max_ms passed; returns *flag. */
static bool run_until(const int *flag, uint64_t max_ms) {
  uv_timer_t guard;
  uv_timer_init(souk_loop(), &guard);
  expired = false;
  uv_timer_start(&guard, guard_cb, max_ms, 0);
  while (!*flag && !expired)
    uv_run(souk_loop(), UV_RUN_ONCE);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  return *flag;
}

#endif
