/* Test helper: talk to a fake server's control API (JSON over HTTP) with
 * souk's own HTTP client, running the loop until the answer is in.
 * Header-only, included once per runner after cmocka.h: set fakectl_base to
 * "http://127.0.0.1:PORT" (after souk_http_init()), then call fakectl() or
 * fakectl_post(). */
#ifndef SOUK_TEST_FAKECTL_H
#define SOUK_TEST_FAKECTL_H

#include "souk/http.h"
#include "souk/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char fakectl_base[64];

typedef struct fakectl_call {
  int done, status;
  char *body;
} fakectl_call_t;

static inline void fakectl_cb(const souk_http_resp_t *r, void *ud) {
  fakectl_call_t *c = ud;
  c->status = r->err ? r->err : r->status;
  c->body = strdup(r->body);
  c->done = 1;
}

/** GET path (json NULL) or POST json to it; fails the test unless the
 * answer is 200.  Returns the body (free it). */
static inline char *fakectl(const char *path, const char *json) {
  char url[256];
  snprintf(url, sizeof url, "%s%s", fakectl_base, path);
  const char *h[] = {"Content-Type: application/json"};
  souk_http_opts_t o = {.method = json ? "POST" : "GET",
                        .url = url,
                        .headers = h,
                        .nheaders = 1,
                        .body = json,
                        .body_len = json ? strlen(json) : 0,
                        .timeout_ms = 5000};
  fakectl_call_t c = {0};
  assert_int_equal(souk_http_request(&o, fakectl_cb, &c, NULL), 0);
  while (!c.done)
    uv_run(souk_loop(), UV_RUN_ONCE);
  if (c.status != 200) fail_msg("control %s: %d %s", path, c.status, c.body);
  return c.body;
}

/** POST json to path, ignoring the body. */
static inline void fakectl_post(const char *path, const char *json) { free(fakectl(path, json)); }

#endif
