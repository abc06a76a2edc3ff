/* REST client against the in-process test server: headers, retries, 429s,
 * bucket isolation, ordering, bounds and shutdown, on the wire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "../testsrv.h"
#include "discord/dconf.h"
#include "discord/rest.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/http.h"
#include "souk/log.h"
#include "souk/loop.h"

#ifndef SOUK_VERSION
#error "SOUK_VERSION must come from the build"
#endif

static tsrv_t srv;
static char api_base[96];
static char token[] = "MTAxNTUyNjU0MDg3OTU0NTQ1Ng.GxYzAb.testtokentesttokentesttokentest1";
static char ua_url[] = "https://example.test/souk";

/* ---- server scripting -------------------------------------------------- */

typedef void (*route_cb)(const tsrv_req_t *req, tsrv_resp_t *resp);
static route_cb script;
static tsrv_req_t last_req;
static int hits;           /* requests the script saw */
static int violations;     /* requests that came before a 429's reset */
static uint64_t arrivals[64];
static int order[64];
static int norder;

static void dispatch_handler(const tsrv_req_t *req, tsrv_resp_t *resp, void *ud) {
  last_req = *req;
  last_req.body = NULL;
  if (hits < 64) arrivals[hits] = req->at_ms;
  hits++;
  if (script) script(req, resp);
}

static void limits(tsrv_resp_t *r, const char *bucket, int limit, int remaining,
                   const char *reset_after) {
  souk_buf_printf(&r->headers,
                  "X-RateLimit-Bucket: %s\r\nX-RateLimit-Limit: %d\r\n"
                  "X-RateLimit-Remaining: %d\r\nX-RateLimit-Reset-After: %s\r\n",
                  bucket, limit, remaining, reset_after);
}

static void json_ok(tsrv_resp_t *r, const char *json) {
  souk_buf_puts(&r->headers, "Content-Type: application/json\r\n");
  souk_buf_puts(&r->body, json);
}

/* ---- client side ------------------------------------------------------- */

typedef struct rgot {
  int called;
  int err;
  int status;
  unsigned attempts;
  uint64_t elapsed;
  uint64_t at;
  int seq;
  char body[256];
  char id[32];
  char route[96];
  bool json;
} rgot_t;

static int rdone;
static int seq;

static void rcb(const souk__rest_resp_t *r, void *ud) {
  rgot_t *g = ud;
  g->called++;
  g->err = r->err;
  g->status = r->status;
  g->attempts = r->attempts;
  g->elapsed = r->elapsed_ms;
  g->at = souk_now_ms();
  g->seq = seq++;
  snprintf(g->body, sizeof g->body, "%s", r->body);
  snprintf(g->route, sizeof g->route, "%s", r->route);
  const souk_json_t *j = souk__rest_json(r);
  g->json = j != NULL;
  if (j) souk_json_str(j, souk_json_get(j, 0, "id"), g->id, sizeof g->id);
  rdone++;
}

static int rsend(const char *method, const char *path, const char *body, rgot_t *g) {
  souk__rest_opts_t o = {.method = method, .path = path, .body = body};
  return souk__rest_request(&o, rcb, g);
}

static void conf_defaults(void) {
  memset(&souk__discord_conf, 0, sizeof souk__discord_conf);
  souk__discord_conf.token = token;
  souk__discord_conf.api_base = api_base;
  souk__discord_conf.user_agent_url = ua_url;
  souk__discord_conf.rest_queue_max = 100;
  souk__discord_conf.rest_retries = 3;
  souk__discord_conf.rest_timeout_ms = 2000;
  souk__discord_conf.rest_global_per_s = 50;
  souk__discord_conf.invalid_limit = 5000;
}

static void restart_rest(void) {
  souk__rest_shutdown();
  assert_int_equal(souk__rest_init(), 0);
}

static int setup(void **state) {
  rdone = seq = hits = violations = norder = 0;
  script = NULL;
  memset(&last_req, 0, sizeof last_req);
  assert_int_equal(souk_http_init(), 0);
  int port = tsrv_start(&srv, dispatch_handler, NULL);
  assert_true(port > 0);
  snprintf(api_base, sizeof api_base, "http://127.0.0.1:%d/api/v10", port);
  conf_defaults();
  souk__rest_tune.backoff_base_ms = 20;
  souk__rest_tune.backoff_cap_ms = 200;
  souk__rest_tune.max_429 = 8;
  assert_int_equal(souk__rest_init(), 0);
  return 0;
}

static int teardown(void **state) {
  souk__rest_shutdown();
  souk_http_shutdown();
  tsrv_stop(&srv);
  tsrv_drain_loop();
  return 0;
}

/* ---- headers and bodies ------------------------------------------------ */

static void ok_json_script(const tsrv_req_t *req, tsrv_resp_t *resp) {
  if (strstr(req->path, "/plain")) {
    souk_buf_puts(&resp->body, "not json");
    return;
  }
  json_ok(resp, "{\"id\":\"123456789012345678\",\"content\":\"hi\"}");
}

static void test_headers(void **state) {
  script = ok_json_script;
  rgot_t g = {0};
  souk__rest_opts_t o = {.method = "POST",
                        .path = "/channels/1/messages",
                        .body = "{\"content\":\"hi\"}",
                        .audit_reason = "h\xc3\xa9llo w\xc3\xb6rld/ok"};
  assert_int_equal(souk__rest_request(&o, rcb, &g), 0);
  assert_int_equal(g.called, 0);
  assert_true(tsrv_run_until(&rdone, 1, 3000));
  assert_int_equal(g.err, 0);
  assert_int_equal(g.status, 200);
  assert_true(g.json);
  assert_string_equal(g.id, "123456789012345678");
  assert_string_equal(g.route, "POST /channels/{id}/messages");
  assert_string_equal(last_req.path, "/api/v10/channels/1/messages");
  char auth[160];
  snprintf(auth, sizeof auth, "Bot %s", token);
  assert_string_equal(tsrv_header(&last_req, "Authorization"), auth);
  assert_string_equal(tsrv_header(&last_req, "User-Agent"),
                      "DiscordBot (https://example.test/souk, " SOUK_VERSION ")");
  assert_string_equal(tsrv_header(&last_req, "Content-Type"), "application/json");
  assert_string_equal(tsrv_header(&last_req, "X-Audit-Log-Reason"),
                      "h%C3%A9llo%20w%C3%B6rld%2Fok");

  /* No body: no Content-Type. */
  rgot_t g2 = {0};
  assert_int_equal(rsend("GET", "/users/@me", NULL, &g2), 0);
  assert_true(tsrv_run_until(&rdone, 2, 3000));
  assert_null(tsrv_header(&last_req, "Content-Type"));
  assert_non_null(tsrv_header(&last_req, "Authorization"));

  /* Interaction callbacks carry no bot token. */
  rgot_t g3 = {0};
  souk__rest_opts_t o3 = {.method = "POST",
                         .path = "/interactions/1/tok/callback",
                         .body = "{\"type\":1}",
                         .flags = SOUK_REST_NO_AUTH};
  assert_int_equal(souk__rest_request(&o3, rcb, &g3), 0);
  assert_true(tsrv_run_until(&rdone, 3, 3000));
  assert_null(tsrv_header(&last_req, "Authorization"));
  assert_string_equal(g3.route, "POST /interactions/{id}/{token}/callback");

  /* Not JSON: no parsed document, body still there. */
  rgot_t g4 = {0};
  assert_int_equal(rsend("GET", "/guilds/1/plain", NULL, &g4), 0);
  assert_true(tsrv_run_until(&rdone, 4, 3000));
  assert_false(g4.json);
  assert_string_equal(g4.body, "not json");
}

static void test_bad_requests(void **state) {
  rgot_t g = {0};
  assert_int_equal(rsend("GET", "channels/1", NULL, &g), SOUK_EINVAL);
  assert_int_equal(rsend("GET", "/channels/1 x", NULL, &g), SOUK_EINVAL);
  assert_int_equal(rsend("G-T", "/channels/1", NULL, &g), SOUK_EINVAL);
  assert_int_equal(rsend(NULL, "/channels/1", NULL, &g), SOUK_EINVAL);
  /* No token: only NO_AUTH requests may go. */
  souk__discord_conf.token = NULL;
  restart_rest();
  assert_int_equal(rsend("GET", "/users/@me", NULL, &g), SOUK_ECONFIG);
  souk__rest_opts_t o = {.method = "POST", .path = "/webhooks/1/tok", .flags = SOUK_REST_NO_AUTH};
  script = ok_json_script;
  assert_int_equal(souk__rest_request(&o, rcb, &g), 0);
  assert_true(tsrv_run_until(&rdone, 1, 3000));
  assert_int_equal(g.status, 200);
}

/* ---- retries ----------------------------------------------------------- */

static void flaky_script(const tsrv_req_t *req, tsrv_resp_t *resp) {
  if (hits <= 2) {
    resp->status = 503;
    souk_buf_puts(&resp->body, "upstream unavailable");
    return;
  }
  json_ok(resp, "{\"id\":\"1\"}");
}

static void test_5xx_retried_then_success(void **state) {
  script = flaky_script;
  rgot_t g = {0};
  assert_int_equal(rsend("GET", "/guilds/1", NULL, &g), 0);
  assert_true(tsrv_run_until(&rdone, 1, 5000));
  assert_int_equal(g.err, 0);
  assert_int_equal(g.status, 200);
  assert_int_equal(g.attempts, 3);
  assert_int_equal(hits, 3);
  souk__rest_stats_t st;
  souk__rest_stats(&st);
  assert_int_equal(st.retries, 2);
  assert_int_equal(st.sent, 3);
  assert_int_equal(st.requests, 1);
  assert_int_equal(st.queued, 0);
  assert_int_equal(st.inflight, 0);
}

static void always_503(const tsrv_req_t *req, tsrv_resp_t *resp) { resp->status = 503; }

static void test_5xx_gives_up(void **state) {
  script = always_503;
  souk__discord_conf.rest_retries = 2;
  rgot_t g = {0};
  assert_int_equal(rsend("GET", "/guilds/2", NULL, &g), 0);
  assert_true(tsrv_run_until(&rdone, 1, 5000));
  assert_int_equal(g.err, SOUK_EHTTP);
  assert_int_equal(g.status, 503);
  assert_int_equal(g.attempts, 3);
  assert_int_equal(hits, 3);
}

static void status_script(const tsrv_req_t *req, tsrv_resp_t *resp) {
  const char *s = strrchr(req->path, '/');
  resp->status = atoi(s + 1);
  json_ok(resp, "{\"message\":\"nope\",\"code\":0}");
}

static void test_4xx_not_retried(void **state) {
  script = status_script;
  rgot_t g[4];
  memset(g, 0, sizeof g);
  assert_int_equal(rsend("GET", "/guilds/1/x/400", NULL, &g[0]), 0);
  assert_int_equal(rsend("GET", "/guilds/2/x/401", NULL, &g[1]), 0);
  assert_int_equal(rsend("GET", "/guilds/3/x/403", NULL, &g[2]), 0);
  assert_int_equal(rsend("GET", "/guilds/4/x/404", NULL, &g[3]), 0);
  assert_true(tsrv_run_until(&rdone, 4, 3000));
  assert_int_equal(hits, 4);
  int want[] = {SOUK_EHTTP, SOUK_EAUTH, SOUK_EFORBIDDEN, SOUK_ENOTFOUND};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(g[i].err, want[i]);
    assert_int_equal(g[i].attempts, 1);
    assert_true(g[i].json);
  }
  souk__rest_stats_t st;
  souk__rest_stats(&st);
  assert_int_equal(st.retries, 0);
  assert_int_equal(st.invalid_count, 2); /* the 401 and the 403 */
}

static void test_connection_errors_retried(void **state) {
  snprintf(api_base, sizeof api_base, "http://127.0.0.1:%d/api/v10", tsrv_dead_port());
  souk__discord_conf.rest_retries = 2;
  restart_rest();
  rgot_t g = {0};
  assert_int_equal(rsend("GET", "/guilds/1", NULL, &g), 0);
  assert_true(tsrv_run_until(&rdone, 1, 5000));
  assert_int_equal(g.err, SOUK_ECONN);
  assert_int_equal(g.attempts, 3);
  assert_int_equal(g.status, 0);
}

static void hang_script(const tsrv_req_t *req, tsrv_resp_t *resp) { resp->hang = true; }

static void test_timeout_retried(void **state) {
  script = hang_script;
  souk__discord_conf.rest_retries = 1;
  rgot_t g = {0};
  souk__rest_opts_t o = {.method = "GET", .path = "/guilds/1", .timeout_ms = 100};
  assert_int_equal(souk__rest_request(&o, rcb, &g), 0);
  assert_true(tsrv_run_until(&rdone, 1, 5000));
  assert_int_equal(g.err, SOUK_ETIMEDOUT);
  assert_int_equal(g.attempts, 2);
  assert_int_equal(hits, 2);
}

static void test_backoff(void **state) {
  assert_int_equal(souk__rest_backoff_ms(1, 500, 30000, 0.5), 250);
  assert_int_equal(souk__rest_backoff_ms(2, 500, 30000, 0.5), 500);
  assert_int_equal(souk__rest_backoff_ms(3, 500, 30000, 0.999), 1998);
  assert_int_equal(souk__rest_backoff_ms(1, 500, 30000, 0.0), 0);
  assert_int_equal(souk__rest_backoff_ms(7, 500, 30000, 0.5), 15000);
  assert_int_equal(souk__rest_backoff_ms(8, 500, 30000, 0.5), 15000); /* capped at 30 s */
  assert_int_equal(souk__rest_backoff_ms(60, 500, 30000, 0.5), 15000);
}

/* ---- 429s -------------------------------------------------------------- */

static uint64_t reset_at5;

static void limited_script(const tsrv_req_t *req, tsrv_resp_t *resp) {
  uint64_t now = souk_now_ms();
  if (reset_at5 && now < reset_at5) violations++;
  if (hits == 1 || (reset_at5 && now < reset_at5)) {
    if (!reset_at5 || now >= reset_at5) reset_at5 = now + 150;
    resp->status = 429;
    limits(resp, "m5", 1, 0, "0.150");
    souk_buf_puts(&resp->headers, "X-RateLimit-Scope: user\r\nRetry-After: 1\r\n");
    json_ok(resp, "{\"message\":\"You are being rate limited.\",\"retry_after\":0.15,"
                  "\"global\":false}");
    return;
  }
  limits(resp, "m5", 5, 4, "1");
  json_ok(resp, "{\"id\":\"9\"}");
}

static void test_429_retry_after_honoured(void **state) {
  script = limited_script;
  reset_at5 = 0;
  rgot_t g = {0};
  uint64_t t0 = souk_now_ms();
  assert_int_equal(rsend("POST", "/channels/5/messages", "{\"content\":\"x\"}", &g), 0);
  assert_true(tsrv_run_until(&rdone, 1, 3000));
  assert_int_equal(g.err, 0);
  assert_int_equal(g.status, 200);
  assert_int_equal(g.attempts, 2);
  assert_int_equal(violations, 0); /* waited for the reset: no second 429 */
  assert_int_equal(hits, 2);
  assert_true(souk_now_ms() - t0 >= 150);
  assert_true(souk_now_ms() - t0 < 1000); /* the body's 0.15 s, not Retry-After's 1 s */
  souk__rest_stats_t st;
  souk__rest_stats(&st);
  assert_int_equal(st.r429_user, 1);
  assert_int_equal(st.retries, 0); /* a 429 re-send is not a retry */
}

static int storm_left;

static void storm_script(const tsrv_req_t *req, tsrv_resp_t *resp) {
  if (strstr(req->path, "/channels/1/") && storm_left > 0) {
    storm_left--;
    resp->status = 429;
    limits(resp, "msg", 5, 0, "0.300");
    souk_buf_puts(&resp->headers, "X-RateLimit-Scope: user\r\n");
    json_ok(resp, "{\"message\":\"slow down\",\"retry_after\":0.3,\"global\":false}");
    return;
  }
  limits(resp, "msg", 5, 4, "1");
  json_ok(resp, "{\"id\":\"1\"}");
}

static void test_429_storm_isolated(void **state) {
  script = storm_script;
  storm_left = 3;
  rgot_t a = {0}, b = {0}, b2 = {0};
  uint64_t t0 = souk_now_ms();
  assert_int_equal(rsend("POST", "/channels/1/messages", "{}", &a), 0);
  assert_int_equal(rsend("POST", "/channels/2/messages", "{}", &b), 0);
  assert_true(tsrv_run_until(&rdone, 1, 3000));
  assert_int_equal(b.called, 1);
  assert_int_equal(b.err, 0);
  assert_true(b.at - t0 < 250);
  /* While channel 1 sits out its 429s, channel 2 goes straight through. */
  tsrv_run_for(60);
  uint64_t t1 = souk_now_ms();
  assert_int_equal(rsend("POST", "/channels/2/messages", "{}", &b2), 0);
  assert_true(tsrv_run_until(&rdone, 2, 3000));
  assert_int_equal(b2.called, 1);
  assert_true(b2.at - t1 < 200);
  assert_int_equal(a.called, 0);
  assert_true(tsrv_run_until(&rdone, 3, 5000));
  assert_int_equal(a.err, 0);
  assert_int_equal(a.attempts, 4);
  assert_true(a.at - t0 >= 900);
}

static void global_script(const tsrv_req_t *req, tsrv_resp_t *resp) {
  if (hits == 1) {
    resp->status = 429;
    souk_buf_puts(&resp->headers, "X-RateLimit-Global: true\r\nX-RateLimit-Scope: global\r\n");
    json_ok(resp, "{\"message\":\"global\",\"retry_after\":0.2,\"global\":true}");
    return;
  }
  json_ok(resp, "{}");
}

static void test_429_global_stops_everything(void **state) {
  script = global_script;
  rgot_t a = {0}, b = {0};
  assert_int_equal(rsend("GET", "/guilds/1", NULL, &a), 0);
  /* Wait until the client has taken in the 429, however loaded the box. */
  souk__rest_stats_t st;
  for (int i = 0; i < 300; i++) {
    souk__rest_stats(&st);
    if (st.r429_global) break;
    tsrv_run_for(5);
  }
  assert_int_equal(st.r429_global, 1);
  uint64_t t1 = souk_now_ms();
  assert_int_equal(rsend("GET", "/guilds/2", NULL, &b), 0);
  assert_true(tsrv_run_until(&rdone, 2, 3000));
  assert_int_equal(a.err, 0);
  assert_int_equal(b.err, 0);
  /* Guild 2 has its own bucket, but the global 429 held it too. */
  assert_true(b.at - t1 >= 150);
  souk__rest_stats(&st);
  assert_int_equal(st.r429_global, 1);
}

/* ---- ordering and the first request on a route ----------------------- */

static void ordered_script(const tsrv_req_t *req, tsrv_resp_t *resp) {
  if (hits == 2) { /* the second message fails once */
    resp->status = 502;
    return;
  }
  const char *n = strstr(req->body ? req->body : "", "\"n\":");
  int k = -1;
  if (n) k = atoi(n + 4);
  if (norder < 64) order[norder++] = k;
  limits(resp, "ord", 50, 40, "1");
  json_ok(resp, "{\"id\":\"1\"}");
}

static void test_order_preserved(void **state) {
  script = ordered_script;
  rgot_t g[5];
  memset(g, 0, sizeof g);
  for (int i = 0; i < 5; i++) {
    char body[32];
    snprintf(body, sizeof body, "{\"n\":%d}", i);
    assert_int_equal(rsend("POST", "/channels/11/messages", body, &g[i]), 0);
  }
  assert_true(tsrv_run_until(&rdone, 5, 5000));
  assert_int_equal(norder, 5);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(order[i], i);
    assert_int_equal(g[i].seq, i);
    assert_int_equal(g[i].err, 0);
  }
  assert_int_equal(g[1].attempts, 2);
  assert_int_equal(srv.max_inflight, 1);
}

static void members_script(const tsrv_req_t *req, tsrv_resp_t *resp) {
  resp->delay_ms = 50;
  limits(resp, "gm", 10, 10 - hits, "5");
  json_ok(resp, "[]");
}

static void test_unknown_route_one_at_a_time(void **state) {
  script = members_script;
  rgot_t g[6];
  memset(g, 0, sizeof g);
  for (int i = 0; i < 6; i++) {
    char p[64];
    snprintf(p, sizeof p, "/guilds/21/members/%d", 100 + i);
    assert_int_equal(rsend("GET", p, NULL, &g[i]), 0);
  }
  assert_true(tsrv_run_until(&rdone, 6, 5000));
  /* The first went alone (the bucket was unknown); the rest, once the
   * headers said there was room, together. */
  assert_true(arrivals[1] >= arrivals[0] + 45);
  assert_true(srv.max_inflight >= 3);
  for (int i = 0; i < 6; i++) assert_int_equal(g[i].err, 0);
}

/* ---- bounds ------------------------------------------------------------ */

static void slow_script(const tsrv_req_t *req, tsrv_resp_t *resp) {
  resp->delay_ms = 50;
  json_ok(resp, "{}");
}

static void test_queue_full(void **state) {
  script = slow_script;
  souk__discord_conf.rest_queue_max = 3;
  restart_rest();
  rgot_t g[4];
  memset(g, 0, sizeof g);
  for (int i = 0; i < 3; i++) {
    char p[32];
    snprintf(p, sizeof p, "/guilds/%d", i + 1);
    assert_int_equal(rsend("GET", p, NULL, &g[i]), 0);
  }
  assert_int_equal(rsend("GET", "/guilds/9", NULL, &g[3]), SOUK_EFULL);
  souk__rest_stats_t st;
  souk__rest_stats(&st);
  assert_int_equal(st.rejected_full, 1);
  assert_int_equal(st.queued, 3);
  assert_true(tsrv_run_until(&rdone, 3, 3000));
  assert_int_equal(g[3].called, 0);
  /* Room again. */
  assert_int_equal(rsend("GET", "/guilds/9", NULL, &g[3]), 0);
  assert_true(tsrv_run_until(&rdone, 4, 3000));
}

static void forbidden_script(const tsrv_req_t *req, tsrv_resp_t *resp) {
  resp->status = 403;
  json_ok(resp, "{\"message\":\"Missing Access\",\"code\":50001}");
}

static void test_invalid_limit_stops(void **state) {
  script = forbidden_script;
  souk__discord_conf.invalid_limit = 10;
  restart_rest();
  rgot_t g[10];
  memset(g, 0, sizeof g);
  for (int i = 0; i < 10; i++) {
    char p[32];
    snprintf(p, sizeof p, "/guilds/%d/bans", i + 1);
    assert_int_equal(rsend("GET", p, NULL, &g[i]), 0);
  }
  assert_true(tsrv_run_until(&rdone, 10, 3000));
  rgot_t x = {0};
  assert_int_equal(rsend("GET", "/guilds/77", NULL, &x), SOUK_ERATELIMIT);
  souk__rest_stats_t st;
  souk__rest_stats(&st);
  assert_int_equal(st.invalid_count, 10);
  assert_true(st.invalid_tripped);
  assert_int_equal(hits, 10);
}

/* ---- stopping ---------------------------------------------------------- */

static void stop_script(const tsrv_req_t *req, tsrv_resp_t *resp) {
  if (strstr(req->path, "/guilds/9")) {
    resp->hang = true;
    return;
  }
  if (strstr(req->path, "/guilds/3")) {
    resp->delay_ms = 300;
    json_ok(resp, "{}");
    return;
  }
  /* Channel 7's bucket: one use per 10 s, so later requests queue. */
  limits(resp, "c7", 1, 0, "10");
  json_ok(resp, "{}");
}

static void test_shutdown_with_queued(void **state) {
  script = stop_script;
  rgot_t first = {0}, q[3], hang = {0};
  memset(q, 0, sizeof q);
  assert_int_equal(rsend("POST", "/channels/7/messages", "{}", &first), 0);
  assert_true(tsrv_run_until(&rdone, 1, 3000));
  for (int i = 0; i < 3; i++) assert_int_equal(rsend("POST", "/channels/7/messages", "{}", &q[i]), 0);
  assert_int_equal(rsend("GET", "/guilds/9", NULL, &hang), 0);
  tsrv_run_for(60);
  souk__rest_stats_t st;
  souk__rest_stats(&st);
  assert_int_equal(st.queued, 3);
  assert_int_equal(st.inflight, 1);
  assert_int_equal(rdone, 1);
  souk__rest_shutdown();
  assert_int_equal(rdone, 5);
  for (int i = 0; i < 3; i++) assert_int_equal(q[i].err, SOUK_ESTOPPED);
  assert_int_equal(hang.err, SOUK_ESTOPPED);
  assert_int_equal(rsend("GET", "/guilds/1", NULL, &first), SOUK_ESTOPPED);
  tsrv_run_for(100);
  assert_int_equal(rdone, 5); /* nothing after shutdown returned */
  souk__rest_shutdown();      /* twice is harmless */
}

static int drained;
static void drain_cb(void *ud) {
  drained++;
  *(uint64_t *)ud = souk_now_ms();
}

static void test_drain(void **state) {
  script = stop_script;
  rgot_t first = {0}, q[2], slow = {0};
  memset(q, 0, sizeof q);
  drained = 0;
  assert_int_equal(rsend("POST", "/channels/7/messages", "{}", &first), 0);
  assert_true(tsrv_run_until(&rdone, 1, 3000));
  for (int i = 0; i < 2; i++) assert_int_equal(rsend("POST", "/channels/7/messages", "{}", &q[i]), 0);
  assert_int_equal(rsend("GET", "/guilds/3", NULL, &slow), 0);
  tsrv_run_for(30);
  uint64_t drained_at = 0;
  assert_int_equal(souk__rest_drain(drain_cb, &drained_at), 0);
  /* Queued requests stop at once; the one in flight finishes. */
  assert_int_equal(rdone, 3);
  assert_int_equal(q[0].err, SOUK_ESTOPPED);
  assert_int_equal(q[1].err, SOUK_ESTOPPED);
  assert_int_equal(slow.called, 0);
  assert_int_equal(drained, 0);
  assert_int_equal(rsend("GET", "/guilds/1", NULL, &first), SOUK_ESTOPPED);
  assert_int_equal(souk__rest_drain(drain_cb, &drained_at), SOUK_ESTOPPED);
  assert_true(tsrv_run_until(&drained, 1, 3000));
  assert_int_equal(slow.err, 0);
  assert_int_equal(slow.status, 200);
  assert_true(drained_at >= slow.at);
  souk__rest_shutdown();
  assert_int_equal(rdone, 4);
}

/* ---- statistics -------------------------------------------------------- */

typedef struct seen {
  uint64_t ok_msgs;
  uint64_t not_found;
} seen_t;

static void stat_fn(const char *route, int status, uint64_t count, void *ud) {
  seen_t *s = ud;
  if (!strcmp(route, "POST /channels/{id}/messages") && status == 200) s->ok_msgs += count;
  if (!strcmp(route, "GET /guilds/{id}/x/{id}") && status == 404) s->not_found += count;
}

static void test_route_stats(void **state) {
  script = status_script;
  rgot_t g[3];
  memset(g, 0, sizeof g);
  assert_int_equal(rsend("POST", "/channels/1/messages/200", "{}", &g[0]), 0);
  assert_int_equal(rsend("GET", "/guilds/1/x/404", NULL, &g[1]), 0);
  assert_int_equal(rsend("GET", "/guilds/2/x/404", NULL, &g[2]), 0);
  assert_true(tsrv_run_until(&rdone, 3, 3000));
  script = ok_json_script;
  rgot_t m[2];
  memset(m, 0, sizeof m);
  assert_int_equal(rsend("POST", "/channels/1/messages", "{}", &m[0]), 0);
  assert_int_equal(rsend("POST", "/channels/2/messages", "{}", &m[1]), 0);
  assert_true(tsrv_run_until(&rdone, 5, 3000));
  seen_t s = {0};
  souk__rest_route_stats(stat_fn, &s);
  assert_int_equal(s.ok_msgs, 2);
  assert_int_equal(s.not_found, 2);
  souk__rest_stats_t st;
  souk__rest_stats(&st);
  assert_int_equal(st.requests, 5);
  assert_int_equal(st.failed, 2);
}

int main(void) {
  souk_alloc_init();
  souk_log_set_level(SOUK_LOG_OFF);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_headers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
      cmocka_unit_test_setup_teardown(test_5xx_retried_then_success, setup, teardown),
      cmocka_unit_test_setup_teardown(test_5xx_gives_up, setup, teardown),
      cmocka_unit_test_setup_teardown(test_4xx_not_retried, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_errors_retried, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_retried, setup, teardown),
      cmocka_unit_test(test_backoff),
      cmocka_unit_test_setup_teardown(test_429_retry_after_honoured, setup, teardown),
      cmocka_unit_test_setup_teardown(test_429_storm_isolated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_429_global_stops_everything, setup, teardown),
      cmocka_unit_test_setup_teardown(test_order_preserved, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_route_one_at_a_time, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_limit_stops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_with_queued, setup, teardown),
      cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
      cmocka_unit_test_setup_teardown(test_route_stats, setup, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk_loop_close();
  curl_global_cleanup();
  souk_log_clear_secrets();
  return rc;
}
