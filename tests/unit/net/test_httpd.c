/* The HTTP server on the loop, driven by souk's own HTTP client on the same
 * loop: built-in routes, readiness checks, the admin gate, routing errors,
 * body limits, module and asynchronous routes, security headers, the
 * access log, and a clean stop. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
/* clang-format on */
#include "core/config.h"
#include "core/log.h"
#include "httptest.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/http.h"
#include "net/httpd.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "core/metrics.h"

#include <curl/curl.h>

#define TOKEN "test-token-0123456789"

static char base[64];
static int log_fd = -1;
static char log_path[64];

/* ---- client helpers ---------------------------------------------------- */

/* One request; returns when it completed (asserting it did within 5 s). */
static void req(got_t *g, const char *method, const char *path, const char *const *headers,
                size_t nheaders, const char *body, size_t body_len) {
  memset(g, 0, sizeof *g);
  char u[512];
  snprintf(u, sizeof u, "%s%s", base, path);
  souk_http_opts_t o = {.method = method,
                        .url = u,
                        .headers = headers,
                        .nheaders = nheaders,
                        .body = body,
                        .body_len = body_len,
                        .timeout_ms = 5000};
  assert_int_equal(souk_http_request(&o, got_cb, g, NULL), 0);
  assert_true(run_until(&g->done, 6000));
}

static void get(got_t *g, const char *path) { req(g, "GET", path, NULL, 0, NULL, 0); }

static char *log_text(void) {
  FILE *f = fopen(log_path, "r");
  assert_non_null(f);
  souk_buf_t b = {0};
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    souk_buf_append(&b, chunk, n);
  fclose(f);
  souk_buf_putc(&b, 0);
  return souk_buf_steal(&b);
}

/* ---- module routes ----------------------------------------------------- */

static void echo_route(souk_httpd_req_t *r) {
  const char *q = souk_httpd_query(r, "q");
  const char *h = souk_httpd_header(r, "x-test");
  souk_buf_t b = {0};
  souk_buf_printf(&b, "%s %s q=%s h=%s body=%.*s ud=%s", r->method, r->path, q ? q : "-",
                  h ? h : "-", (int)r->body_len, r->body, r->ud ? (const char *)r->ud : "-");
  assert_int_equal(souk_httpd_set_header(r, "X-Custom", "yes"), 0);
  assert_int_equal(souk_httpd_set_header(r, "X-Bad", "a\r\nInjected: 1"), SOUK_EINVAL);
  souk_httpd_respond_buf(r, 201, "application/json", &b);
  souk_buf_free(&b);
}

static void api_route(souk_httpd_req_t *r) {
  souk_buf_t b = {0};
  souk_buf_printf(&b, "api %s", r->path);
  souk_httpd_respond_buf(r, 200, NULL, &b);
  souk_buf_free(&b);
}

static void api_exact_route(souk_httpd_req_t *r) { souk_httpd_respond_text(r, 200, "exact"); }

static void html_route(souk_httpd_req_t *r) {
  static const char page[] = "<!doctype html><title>x</title>";
  souk_httpd_respond(r, 200, "text/html; charset=utf-8", page, sizeof page - 1);
}

static void admin_route(souk_httpd_req_t *r) { souk_httpd_respond_text(r, 200, "admin ok"); }

/* Asynchronous: answer from a timer 30 ms later. */
static souk_httpd_req_t *late_req;
static uv_timer_t late_timer;
static void late_cb(uv_timer_t *t) {
  souk_httpd_respond_text(late_req, 202, "later");
  late_req = NULL;
}
static void late_route(souk_httpd_req_t *r) {
  late_req = r;
  uv_timer_start(&late_timer, late_cb, 30, 0);
}

/* Never answers by itself: the test answers after the server gave up. */
static souk_httpd_req_t *stuck_req;
static void stuck_route(souk_httpd_req_t *r) { stuck_req = r; }

static const souk_route_t test_routes[] = {
    {"POST", "/echo", SOUK_ROUTE_PUBLIC, echo_route},
    {"GET", "/api/*", SOUK_ROUTE_PUBLIC, api_route},
    {"GET", "/api/exact", SOUK_ROUTE_PUBLIC, api_exact_route},
    {"GET", "/page", SOUK_ROUTE_PUBLIC, html_route},
    {"GET", "/admin/x", SOUK_ROUTE_ADMIN, admin_route},
    {"GET", "/late", SOUK_ROUTE_PUBLIC, late_route},
    {"GET", "/stuck", SOUK_ROUTE_PUBLIC, stuck_route},
    {0},
};

/* ---- ready checks ------------------------------------------------------ */

static bool store_up;
static bool check_store(void *ud, souk_buf_t *why) {
  if (!store_up) souk_buf_puts(why, "not reachable");
  return store_up;
}
static bool check_gateway(void *ud, souk_buf_t *why) { return true; }

/* ---- setup ------------------------------------------------------------- */

static int setup(void **state) {
  assert_int_equal(souk_http_init(), 0);
  snprintf(log_path, sizeof log_path, "/tmp/souk-httpd-log-XXXXXX");
  log_fd = mkstemp(log_path);
  assert_true(log_fd >= 0);
  souk_log_set_fd(log_fd);
  souk__log_set_coalesce(false); /* lines are counted raw */
  souk_log_set_level(SOUK_LOG_INFO);
  souk__httpd_conf_t c = {.enabled = true,
                         .bind = "127.0.0.1",
                         .port = 0,
                         .token = TOKEN,
                         .max_body = 1024,
                         .timeout_ms = 1000,
                         .max_connections = 16};
  assert_int_equal(souk_httpd_mount(test_routes, "mod"), 0);
  assert_int_equal(souk__httpd_start(&c), 0);
  assert_true(souk__httpd_running());
  assert_int_equal(souk__httpd_start(&c), SOUK_EBUSY);
  int port = souk__httpd_port();
  assert_true(port > 0);
  snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
  uv_timer_init(souk_loop(), &late_timer);
  return 0;
}

static int teardown(void **state) {
  souk__httpd_stop();
  souk_httpd_unmount(test_routes);
  souk_httpd_remove_ready_check("store");
  souk_httpd_remove_ready_check("gateway");
  souk__httpd_force_remote = false;
  uv_close((uv_handle_t *)&late_timer, NULL);
  souk_http_shutdown();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  souk__metrics_shutdown();
  souk_log_set_fd(2);
  souk_log_clear_secrets();
  souk_log_set_level(SOUK_LOG_OFF);
  close(log_fd);
  unlink(log_path);
  return 0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_healthz_and_headers(void **state) {
  got_t g;
  get(&g, "/healthz");
  assert_int_equal(g.err, 0);
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body.data, "ok\n");
  assert_string_equal(g.ctype, "text/plain; charset=utf-8");
  assert_string_equal(g.nosniff, "nosniff");
  assert_string_equal(g.csp, "default-src 'none'");
  assert_string_equal(g.cache, "no-store");
  got_free(&g);
  req(&g, "HEAD", "/healthz", NULL, 0, NULL, 0);
  assert_int_equal(g.status, 200);
  assert_int_equal(g.body.len, 0);
  got_free(&g);
  /* An HTML page keeps nosniff but brings its own policy. */
  get(&g, "/page");
  assert_int_equal(g.status, 200);
  assert_string_equal(g.nosniff, "nosniff");
  assert_string_equal(g.csp, "");
  got_free(&g);
}

static void test_readyz(void **state) {
  got_t g;
  get(&g, "/readyz");
  assert_int_equal(g.status, 200);
  got_free(&g);
  store_up = false;
  assert_int_equal(souk_httpd_add_ready_check("gateway", check_gateway, NULL), 0);
  assert_int_equal(souk_httpd_add_ready_check("store", check_store, NULL), 0);
  assert_int_equal(souk_httpd_add_ready_check("store", check_store, NULL), SOUK_EEXIST);
  get(&g, "/readyz");
  assert_int_equal(g.status, 503);
  assert_string_equal(g.body.data, "ok gateway\nfail store: not reachable\n");
  got_free(&g);
  store_up = true;
  get(&g, "/readyz");
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body.data, "ok gateway\nok store\n");
  got_free(&g);
  assert_int_equal(souk_httpd_remove_ready_check("store"), 0);
  assert_int_equal(souk_httpd_remove_ready_check("store"), SOUK_ENOTFOUND);
}

static void test_metrics(void **state) {
  souk__metrics_builtin_init();
  got_t g;
  get(&g, "/healthz");
  got_free(&g);
  get(&g, "/metrics");
  assert_int_equal(g.status, 200);
  assert_string_equal(g.ctype, "text/plain; version=0.0.4; charset=utf-8");
  assert_non_null(strstr(g.body.data, "# TYPE process_resident_memory_bytes gauge\n"));
  assert_non_null(
      strstr(g.body.data, "souk_httpd_requests_total{route=\"/healthz\",status=\"200\"} 1\n"));
  assert_non_null(
      strstr(g.body.data,
             "souk_httpd_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 1\n"));
  /* The strict parser accepts the whole scrape. */
  if (access("/usr/bin/python3", X_OK) == 0 &&
      system("/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1") == 0) {
    char path[] = "/tmp/souk-scrape-XXXXXX";
    int fd = mkstemp(path);
    assert_int_equal(write(fd, g.body.data, g.body.len), (ssize_t)g.body.len);
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/fakes/promparse.py %s >/dev/null",
             SOUK_SOURCE_DIR, path);
    int rc = system(cmd);
    unlink(path);
    assert_int_equal(rc, 0);
  }
  got_free(&g);
}

static void test_admin_gate(void **state) {
  got_t g;
  /* Loopback peers are trusted. */
  get(&g, "/admin/x");
  assert_int_equal(g.status, 200);
  got_free(&g);
  souk__httpd_force_remote = true;
  get(&g, "/metrics");
  assert_int_equal(g.status, 403);
  got_free(&g);
  get(&g, "/admin/x");
  assert_int_equal(g.status, 403);
  got_free(&g);
  const char *wrong[] = {"Authorization: Bearer nope"};
  req(&g, "GET", "/metrics", wrong, 1, NULL, 0);
  assert_int_equal(g.status, 403);
  got_free(&g);
  const char *prefix[] = {"Authorization: Bearer " TOKEN "x"};
  req(&g, "GET", "/metrics", prefix, 1, NULL, 0);
  assert_int_equal(g.status, 403);
  got_free(&g);
  const char *right[] = {"Authorization: bearer " TOKEN};
  req(&g, "GET", "/metrics", right, 1, NULL, 0);
  assert_int_equal(g.status, 200);
  got_free(&g);
  /* Public routes stay public. */
  get(&g, "/healthz");
  assert_int_equal(g.status, 200);
  got_free(&g);
  /* The token never reaches the log. */
  char *log = log_text();
  assert_null(strstr(log, TOKEN));
  souk_free(log);
}

static void test_not_found_and_method(void **state) {
  got_t g;
  get(&g, "/nope");
  assert_int_equal(g.status, 404);
  assert_string_equal(g.nosniff, "nosniff");
  got_free(&g);
  req(&g, "POST", "/healthz", NULL, 0, "x", 1);
  assert_int_equal(g.status, 405);
  assert_string_equal(g.allow, "GET, HEAD");
  got_free(&g);
  get(&g, "/echo");
  assert_int_equal(g.status, 405);
  assert_string_equal(g.allow, "POST");
  got_free(&g);
}

static void test_module_routes(void **state) {
  got_t g;
  const char *h[] = {"X-Test: hi", "Content-Type: text/plain"};
  req(&g, "POST", "/echo?q=a%20b&x=1", h, 2, "hello", 5);
  assert_int_equal(g.status, 201);
  assert_string_equal(g.body.data, "POST /echo q=a b h=hi body=hello ud=mod");
  assert_string_equal(g.ctype, "application/json");
  assert_string_equal(g.custom, "yes");
  got_free(&g);
  get(&g, "/api/v1/things");
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body.data, "api /api/v1/things");
  got_free(&g);
  get(&g, "/api/exact");
  assert_string_equal(g.body.data, "exact\n");
  got_free(&g);
  get(&g, "/api");
  assert_int_equal(g.status, 404);
  got_free(&g);
  /* Mounting the same method and path twice is refused. */
  static const souk_route_t dup[] = {{"GET", "/api/exact", 0, api_route}, {0}};
  assert_int_equal(souk_httpd_mount(dup, NULL), SOUK_EEXIST);
  static const souk_route_t bad[] = {{"GET", "no-slash", 0, api_route}, {0}};
  assert_int_equal(souk_httpd_mount(bad, NULL), SOUK_EINVAL);
}

static void test_body_limit(void **state) {
  got_t g;
  char *big = souk_malloc(64 * 1024);
  memset(big, 'b', 64 * 1024);
  req(&g, "POST", "/echo", NULL, 0, big, 64 * 1024);
  assert_int_equal(g.err, 0);
  assert_int_equal(g.status, 413);
  got_free(&g);
  /* Exactly the limit is fine. */
  req(&g, "POST", "/echo", NULL, 0, big, 1024);
  assert_int_equal(g.status, 201);
  got_free(&g);
  /* A body that is too large even for a route that does not exist is
   * consumed and refused the same way. */
  req(&g, "POST", "/nope", NULL, 0, big, 2000);
  assert_int_equal(g.status, 413);
  got_free(&g);
  souk_free(big);
  get(&g, "/healthz");
  assert_int_equal(g.status, 200);
  got_free(&g);
}

static void test_async(void **state) {
  got_t g;
  get(&g, "/late");
  assert_int_equal(g.status, 202);
  assert_string_equal(g.body.data, "later\n");
  got_free(&g);
  /* A handler that never answers: the server answers 504 after
   * http.timeout; the handler's own answer later only frees the request. */
  stuck_req = NULL;
  get(&g, "/stuck");
  assert_int_equal(g.status, 504);
  got_free(&g);
  assert_non_null(stuck_req);
  assert_int_equal(souk_httpd_respond_text(stuck_req, 200, "too late"), 0);
  stuck_req = NULL;
}

static void test_stop_with_pending(void **state) {
  got_t g;
  memset(&g, 0, sizeof g);
  char u[128];
  snprintf(u, sizeof u, "%s/stuck", base);
  souk_http_opts_t o = {.url = u, .timeout_ms = 5000};
  stuck_req = NULL;
  assert_int_equal(souk_http_request(&o, got_cb, &g, NULL), 0);
  /* Run until the handler holds the request. */
  for (int i = 0; i < 200 && !stuck_req; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_non_null(stuck_req);
  souk__httpd_stop();
  assert_false(souk__httpd_running());
  assert_int_equal(souk__httpd_port(), 0);
  assert_true(run_until(&g.done, 3000));
  /* Either the 503 got out or the connection closed first. */
  assert_true(g.status == 503 || g.err != 0);
  got_free(&g);
  souk_httpd_respond_text(stuck_req, 200, "after stop");
  stuck_req = NULL;
  /* The server starts again, on another free port. */
  souk__httpd_conf_t c = {.enabled = true,
                         .bind = "127.0.0.1",
                         .port = 0,
                         .max_body = 1024,
                         .timeout_ms = 1000,
                         .max_connections = 4};
  assert_int_equal(souk__httpd_start(&c), 0);
  snprintf(base, sizeof base, "http://127.0.0.1:%d", souk__httpd_port());
  get(&g, "/healthz");
  assert_int_equal(g.status, 200);
  got_free(&g);
  /* Without a token, non-loopback peers never reach admin routes. */
  souk__httpd_force_remote = true;
  const char *any[] = {"Authorization: Bearer "};
  req(&g, "GET", "/metrics", any, 1, NULL, 0);
  assert_int_equal(g.status, 403);
  got_free(&g);
}

static void test_access_log(void **state) {
  got_t g;
  get(&g, "/healthz?secret=hunter2hunter2");
  got_free(&g);
  get(&g, "/nope");
  got_free(&g);
  char *log = log_text();
  assert_non_null(strstr(log, "GET /healthz 200 3B "));
  assert_non_null(strstr(log, "peer=127.0.0.1"));
  assert_non_null(strstr(log, "GET /nope 404 "));
  assert_non_null(strstr(log, "listening on 127.0.0.1:"));
  assert_null(strstr(log, "hunter2"));
  souk_free(log);
}

static void test_bad_config(void **state) {
  souk__httpd_stop();
  souk__httpd_conf_t c = {.enabled = true,
                         .bind = "not-an-address",
                         .port = 0,
                         .max_body = 1,
                         .timeout_ms = 1000,
                         .max_connections = 4};
  assert_int_equal(souk__httpd_start(&c), SOUK_ECONFIG);
  assert_false(souk__httpd_running());
  /* A trusted proxy that is not an address or a range. */
  c.bind = "127.0.0.1";
  char *proxies[] = {"127.0.0.1", "nginx"};
  c.trusted_proxies = (souk_conf_strs_t){proxies, 2};
  assert_int_equal(souk__httpd_start(&c), SOUK_ECONFIG);
  assert_false(souk__httpd_running());
  char *log = log_text();
  assert_non_null(strstr(log, "http.trusted_proxies: 'nginx' is not an address or a range"));
  souk_free(log);
  c.trusted_proxies = (souk_conf_strs_t){proxies, 1};
  assert_int_equal(souk__httpd_start(&c), 0);
  souk__httpd_stop();
  c.trusted_proxies = (souk_conf_strs_t){0};
  c.bind = "not-an-address";
  c.enabled = false;
  assert_int_equal(souk__httpd_start(&c), 0);
  assert_false(souk__httpd_running());
  /* IPv6 loopback, where the host has it. */
  c.enabled = true;
  c.bind = "::1";
  if (souk__httpd_start(&c) == 0) {
    snprintf(base, sizeof base, "http://[::1]:%d", souk__httpd_port());
    got_t g;
    get(&g, "/metrics");
    assert_int_equal(g.status, 200); /* ::1 is loopback */
    got_free(&g);
  }
}

/* The `http` config section: defaults, the file, and the token from the
 * environment. */
static void test_config_section(void **state) {
  souk_conf_section_t sec = {"http", souk__httpd_conf_keys, &souk__httpd_conf, NULL};
  unsetenv("SOUK_HTTP_TOKEN");
  assert_int_equal(souk__config_load_mem("t.yaml", "", 0, &sec, 1, NULL), 0);
  assert_true(souk__httpd_conf.enabled);
  assert_string_equal(souk__httpd_conf.bind, "127.0.0.1");
  assert_int_equal(souk__httpd_conf.port, 8377);
  assert_null(souk__httpd_conf.token);
  assert_int_equal(souk__httpd_conf.max_body, 1024 * 1024);
  assert_int_equal(souk__httpd_conf.timeout_ms, 30000);
  assert_int_equal(souk__httpd_conf.max_connections, 64);
  assert_int_equal(souk__httpd_conf.max_per_address, 16);
  assert_int_equal(souk__httpd_conf.header_timeout_ms, 10000);
  assert_int_equal(souk__httpd_conf.trusted_proxies.n, 0);
  setenv("SOUK_HTTP_TOKEN", "from-the-environment-123", 1);
  const char *yaml = "http:\n  port: 0\n  bind: \"::1\"\n  max_body: 64KB\n  timeout: 5s\n"
                     "  header_timeout: 3s\n  max_connections_per_address: 4\n"
                     "  trusted_proxies: [127.0.0.1, \"10.0.0.0/8\"]\n";
  assert_int_equal(souk__config_load_mem("t.yaml", yaml, strlen(yaml), &sec, 1, NULL), 0);
  unsetenv("SOUK_HTTP_TOKEN");
  assert_int_equal(souk__httpd_conf.port, 0);
  assert_string_equal(souk__httpd_conf.bind, "::1");
  assert_string_equal(souk__httpd_conf.token, "from-the-environment-123");
  assert_int_equal(souk__httpd_conf.max_body, 64 * 1024);
  assert_int_equal(souk__httpd_conf.timeout_ms, 5000);
  assert_int_equal(souk__httpd_conf.header_timeout_ms, 3000);
  assert_int_equal(souk__httpd_conf.max_per_address, 4);
  assert_int_equal(souk__httpd_conf.trusted_proxies.n, 2);
  assert_string_equal(souk__httpd_conf.trusted_proxies.v[1], "10.0.0.0/8");
  const char *bad = "http:\n  port: 70000\n";
  souk__conf_report_t rep = {0};
  assert_int_equal(souk__config_load_mem("t.yaml", bad, strlen(bad), &sec, 1, &rep), SOUK_ECONFIG);
  souk__conf_report_free(&rep);
  souk__config_free(&sec, 1);
  souk_log_clear_secrets();
}

int main(void) {
  souk_alloc_init();
  souk_log_set_level(SOUK_LOG_OFF);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_healthz_and_headers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_readyz, setup, teardown),
      cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
      cmocka_unit_test_setup_teardown(test_admin_gate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_not_found_and_method, setup, teardown),
      cmocka_unit_test_setup_teardown(test_module_routes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_async, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_with_pending, setup, teardown),
      cmocka_unit_test_setup_teardown(test_access_log, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
      cmocka_unit_test(test_config_section),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk_loop_close();
  curl_global_cleanup();
  return rc;
}
