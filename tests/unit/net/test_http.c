/* HTTP client against the in-process test server on 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <zlib.h>

#include "../testsrv.h"
#include "net/trust.h"
#include "pyspawn.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/http.h"
#include "souk/log.h"
#include "souk/loop.h"

static tsrv_t srv;
static char base[64];

/* What a callback saw, copied out of the response. */
typedef struct got {
  int called;
  int err;
  int status;
  char body[256];
  size_t body_len;
  char bucket[64];
  char multi[64];
  uint64_t elapsed;
  int *counter; /* bumped when called */
} got_t;

static int done;

static void got_cb(const souk_http_resp_t *r, void *ud) {
  got_t *g = ud;
  g->called++;
  g->err = r->err;
  g->status = r->status;
  g->body_len = r->body_len;
  snprintf(g->body, sizeof g->body, "%s", r->body);
  const char *b = souk_http_header(r, "X-RateLimit-Bucket");
  snprintf(g->bucket, sizeof g->bucket, "%s", b ? b : "");
  const char *m = souk_http_header(r, "x-multi");
  snprintf(g->multi, sizeof g->multi, "%s", m ? m : "");
  g->elapsed = r->elapsed_ms;
  done++;
}

static void url(char *out, size_t cap, const char *path) {
  snprintf(out, cap, "%s%s", base, path);
}

/* ---- handlers ---------------------------------------------------------- */

static tsrv_req_t last_req;

static void echo_handler(const tsrv_req_t *req, tsrv_resp_t *resp, void *ud) {
  last_req = *req;
  last_req.body = NULL;
  const char *p = req->path;
  if (!strcmp(p, "/hang")) {
    resp->hang = true;
  } else if (!strncmp(p, "/slow", 5)) {
    resp->delay_ms = 100;
    souk_buf_printf(&resp->body, "%s", p);
  } else if (!strcmp(p, "/big")) {
    for (int i = 0; i < 10000; i++) souk_buf_putc(&resp->body, 'x');
  } else if (!strcmp(p, "/bigchunked")) {
    resp->chunked = true;
    for (int i = 0; i < 10000; i++) souk_buf_putc(&resp->body, 'y');
  } else if (!strcmp(p, "/gzip")) {
    const char *text = "compressed hello, compressed hello, compressed hello";
    unsigned char out[256];
    z_stream z = {0};
    deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (unsigned char *)text;
    z.avail_in = (unsigned)strlen(text);
    z.next_out = out;
    z.avail_out = sizeof out;
    deflate(&z, Z_FINISH);
    souk_buf_append(&resp->body, out, sizeof out - z.avail_out);
    deflateEnd(&z);
    souk_buf_puts(&resp->headers, "Content-Encoding: gzip\r\n");
  } else if (!strcmp(p, "/drop")) {
    resp->drop = true;
  } else {
    resp->status = 201;
    souk_buf_puts(&resp->headers, "X-RateLimit-Bucket: abc123\r\nX-Multi:  spaced value \r\n");
    const char *xt = tsrv_header(req, "X-Test");
    souk_buf_printf(&resp->body, "%s %s x-test=%s body=%.*s", req->method, req->path,
                    xt ? xt : "-", (int)req->body_len, req->body);
  }
}

static int setup(void **state) {
  done = 0;
  memset(&last_req, 0, sizeof last_req);
  assert_int_equal(souk_http_init(), 0);
  int port = tsrv_start(&srv, echo_handler, NULL);
  assert_true(port > 0);
  snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
  return 0;
}

static int teardown(void **state) {
  souk_http_shutdown();
  tsrv_stop(&srv);
  tsrv_drain_loop();
  return 0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_round_trip(void **state) {
  char u[128];
  url(u, sizeof u, "/echo?q=1");
  const char *hdrs[] = {"X-Test: yes", "Content-Type: text/plain"};
  souk_http_opts_t o = {.method = "POST", .url = u, .headers = hdrs, .nheaders = 2,
                        .body = "hello", .body_len = 5};
  got_t g = {0};
  souk_http_req_t *req = NULL;
  assert_int_equal(souk_http_request(&o, got_cb, &g, &req), 0);
  assert_non_null(req);
  assert_int_equal(g.called, 0); /* never synchronously */
  assert_int_equal(souk_http_inflight(), 1);
  assert_true(tsrv_run_until(&done, 1, 3000));
  assert_int_equal(g.called, 1);
  assert_int_equal(g.err, 0);
  assert_int_equal(g.status, 201);
  assert_string_equal(g.body, "POST /echo?q=1 x-test=yes body=hello");
  assert_int_equal(g.body_len, strlen(g.body));
  assert_string_equal(g.bucket, "abc123");
  assert_string_equal(g.multi, "spaced value");
  assert_string_equal(tsrv_header(&last_req, "Content-Type"), "text/plain");
  assert_string_equal(tsrv_header(&last_req, "Accept-Encoding"), "gzip");
  assert_null(tsrv_header(&last_req, "Expect"));
  assert_int_equal(souk_http_inflight(), 0);
}

static void test_methods_and_empty_bodies(void **state) {
  char u[128];
  url(u, sizeof u, "/m");
  const char *methods[] = {"PUT", "PATCH", "DELETE", "GET"};
  for (int i = 0; i < 4; i++) {
    souk_http_opts_t o = {.method = methods[i], .url = u};
    got_t g = {0};
    assert_int_equal(souk_http_request(&o, got_cb, &g, NULL), 0);
    assert_true(tsrv_run_until(&done, i + 1, 3000));
    assert_int_equal(g.status, 201);
    assert_string_equal(last_req.method, methods[i]);
    const char *cl = tsrv_header(&last_req, "Content-Length");
    if (i < 2) {
      /* PUT/PATCH without a body still say Content-Length: 0, and no
       * invented form content type. */
      assert_non_null(cl);
      assert_string_equal(cl, "0");
      assert_null(tsrv_header(&last_req, "Content-Type"));
    }
  }
  /* All four went over one kept-alive connection. */
  assert_int_equal(srv.nconns_total, 1);
}

static void test_gzip(void **state) {
  char u[128];
  url(u, sizeof u, "/gzip");
  souk_http_opts_t o = {.url = u};
  got_t g = {0};
  assert_int_equal(souk_http_request(&o, got_cb, &g, NULL), 0);
  assert_true(tsrv_run_until(&done, 1, 3000));
  assert_int_equal(g.err, 0);
  assert_string_equal(g.body, "compressed hello, compressed hello, compressed hello");
}

static void test_timeout(void **state) {
  char u[128];
  url(u, sizeof u, "/hang");
  souk_http_opts_t o = {.url = u, .timeout_ms = 150};
  got_t g = {0};
  uint64_t t0 = souk_now_ms();
  assert_int_equal(souk_http_request(&o, got_cb, &g, NULL), 0);
  assert_true(tsrv_run_until(&done, 1, 3000));
  assert_int_equal(g.err, SOUK_ETIMEDOUT);
  assert_int_equal(g.status, 0);
  assert_string_equal(g.body, "");
  uint64_t took = souk_now_ms() - t0;
  assert_true(took >= 140 && took < 2000);
  assert_true(g.elapsed >= 140);
}

static void test_connection_refused(void **state) {
  char u[128];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/x", tsrv_dead_port());
  souk_http_opts_t o = {.url = u};
  got_t g = {0};
  assert_int_equal(souk_http_request(&o, got_cb, &g, NULL), 0);
  assert_true(tsrv_run_until(&done, 1, 3000));
  assert_int_equal(g.err, SOUK_ECONN);
}

static void test_connection_dropped(void **state) {
  char u[128];
  url(u, sizeof u, "/drop");
  souk_http_opts_t o = {.url = u};
  got_t g = {0};
  assert_int_equal(souk_http_request(&o, got_cb, &g, NULL), 0);
  assert_true(tsrv_run_until(&done, 1, 3000));
  assert_int_equal(g.err, SOUK_ECLOSED);
}

static void test_max_response_bytes(void **state) {
  char u[128];
  got_t g1 = {0}, g2 = {0}, g3 = {0};
  url(u, sizeof u, "/big");
  souk_http_opts_t o = {.url = u, .max_response_bytes = 1000};
  assert_int_equal(souk_http_request(&o, got_cb, &g1, NULL), 0);
  url(u, sizeof u, "/bigchunked"); /* no Content-Length: caught while reading */
  o.url = u;
  assert_int_equal(souk_http_request(&o, got_cb, &g2, NULL), 0);
  char u3[128];
  url(u3, sizeof u3, "/big");
  souk_http_opts_t o3 = {.url = u3, .max_response_bytes = 10000}; /* exactly fits */
  assert_int_equal(souk_http_request(&o3, got_cb, &g3, NULL), 0);
  assert_true(tsrv_run_until(&done, 3, 3000));
  assert_int_equal(g1.err, SOUK_ETOOBIG);
  assert_int_equal(g2.err, SOUK_ETOOBIG);
  assert_int_equal(g3.err, 0);
  assert_int_equal(g3.body_len, 10000);
}

static void test_concurrent(void **state) {
  enum { N = 20 };
  got_t g[N];
  memset(g, 0, sizeof g);
  char u[N][128];
  uint64_t t0 = souk_now_ms();
  for (int i = 0; i < N; i++) {
    char p[32];
    snprintf(p, sizeof p, "/slow/%d", i);
    url(u[i], sizeof u[i], p);
    souk_http_opts_t o = {.url = u[i]};
    assert_int_equal(souk_http_request(&o, got_cb, &g[i], NULL), 0);
  }
  assert_int_equal(souk_http_inflight(), N);
  assert_true(tsrv_run_until(&done, N, 5000));
  uint64_t took = souk_now_ms() - t0;
  for (int i = 0; i < N; i++) {
    char p[32];
    snprintf(p, sizeof p, "/slow/%d", i);
    assert_int_equal(g[i].called, 1);
    assert_int_equal(g[i].err, 0);
    assert_string_equal(g[i].body, p);
  }
  /* Twenty 100 ms answers in parallel, not in series. */
  assert_true(took < 1000);
  assert_true(srv.max_inflight > 1);
}

/* Sequential requests, each started from the previous callback. */
static int chain_left;
static void chain_cb(const souk_http_resp_t *r, void *ud) {
  assert_int_equal(r->err, 0);
  done++;
  if (--chain_left > 0) {
    souk_http_opts_t o = {.url = ud};
    assert_int_equal(souk_http_request(&o, chain_cb, ud, NULL), 0);
  }
}

static void test_reuse_from_callback(void **state) {
  static char u[128];
  url(u, sizeof u, "/chain");
  chain_left = 5;
  souk_http_opts_t o = {.url = u};
  assert_int_equal(souk_http_request(&o, chain_cb, u, NULL), 0);
  assert_true(tsrv_run_until(&done, 5, 3000));
  assert_int_equal(srv.nrequests, 5);
  assert_int_equal(srv.nconns_total, 1); /* keep-alive */
}

static void never_cb(const souk_http_resp_t *r, void *ud) { fail_msg("cancelled callback ran"); }

static void test_cancel(void **state) {
  char u[128];
  url(u, sizeof u, "/hang");
  souk_http_opts_t o = {.url = u};
  souk_http_req_t *req = NULL;
  assert_int_equal(souk_http_request(&o, never_cb, NULL, &req), 0);
  tsrv_run_for(50);
  assert_int_equal(srv.nrequests, 1);
  souk_http_cancel(req);
  assert_int_equal(souk_http_inflight(), 0);
  tsrv_run_for(50);
  /* Cancelling before anything was sent works too. */
  assert_int_equal(souk_http_request(&o, never_cb, NULL, &req), 0);
  souk_http_cancel(req);
  tsrv_run_for(30);
}

static void restart_cb(const souk_http_resp_t *r, void *ud) {
  got_cb(r, ud);
  /* Requests made while shutting down are refused. */
  souk_http_opts_t o = {.url = "http://127.0.0.1:1/"};
  assert_int_equal(souk_http_request(&o, got_cb, ud, NULL), SOUK_ESTOPPED);
}

static void test_shutdown_cancels_inflight(void **state) {
  char u[128];
  url(u, sizeof u, "/hang");
  got_t g[3];
  memset(g, 0, sizeof g);
  for (int i = 0; i < 3; i++) {
    souk_http_opts_t o = {.url = u};
    assert_int_equal(souk_http_request(&o, restart_cb, &g[i], NULL), 0);
  }
  tsrv_run_for(50);
  souk_http_shutdown();
  for (int i = 0; i < 3; i++) {
    assert_int_equal(g[i].called, 1);
    assert_int_equal(g[i].err, SOUK_ECANCELED);
  }
  souk_http_opts_t o = {.url = u};
  assert_int_equal(souk_http_request(&o, got_cb, &g[0], NULL), SOUK_ESTOPPED);
  /* And it starts again. */
  assert_int_equal(souk_http_init(), 0);
  url(u, sizeof u, "/again");
  got_t g2 = {0};
  done = 0;
  o.url = u;
  assert_int_equal(souk_http_request(&o, got_cb, &g2, NULL), 0);
  assert_true(tsrv_run_until(&done, 1, 3000));
  assert_int_equal(g2.status, 201);
}

static void test_bad_arguments(void **state) {
  got_t g = {0};
  souk_http_opts_t o = {.url = "ftp://127.0.0.1/x"};
  assert_int_equal(souk_http_request(&o, got_cb, &g, NULL), SOUK_EINVAL);
  o.url = "file:///etc/passwd";
  assert_int_equal(souk_http_request(&o, got_cb, &g, NULL), SOUK_EINVAL);
  o.url = NULL;
  assert_int_equal(souk_http_request(&o, got_cb, &g, NULL), SOUK_EINVAL);
  const char *inj[] = {"X-A: b\r\nX-Evil: 1"};
  souk_http_opts_t o2 = {.url = base, .headers = inj, .nheaders = 1};
  assert_int_equal(souk_http_request(&o2, got_cb, &g, NULL), SOUK_EINVAL);
  souk_http_opts_t o3 = {.url = base, .method = "get"};
  assert_int_equal(souk_http_request(&o3, got_cb, &g, NULL), SOUK_EINVAL);
  assert_int_equal(souk_http_inflight(), 0);
  tsrv_run_for(20);
  assert_int_equal(g.called, 0);
}

/* ---- HTTPS and the trusted CA certificates (net/trust.h) ---------------- */

#define TLS_HTTP_PY                                                                \
  "import http.server, ssl\n"                                                      \
  "class H(http.server.BaseHTTPRequestHandler):\n"                                 \
  "    protocol_version = 'HTTP/1.1'\n"                                            \
  "    def do_GET(self):\n"                                                        \
  "        b = b'over tls'\n"                                                      \
  "        self.send_response(200)\n"                                              \
  "        self.send_header('Content-Length', str(len(b)))\n"                      \
  "        self.end_headers()\n"                                                   \
  "        self.wfile.write(b)\n"                                                  \
  "    def log_message(self, *a):\n"                                               \
  "        pass\n"                                                                 \
  "srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"                   \
  "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"                                \
  "ctx.load_cert_chain('%s/c.pem', '%s/k.pem')\n"                                  \
  "srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n"                   \
  "print(srv.server_address[1], flush=True)\n"                                     \
  "srv.serve_forever()\n"

/* One GET of url with the trust settings of the moment; what it got. */
static got_t https_get(const char *u) {
  got_t g = {0};
  souk_http_opts_t o = {.url = u, .timeout_ms = 5000};
  done = 0;
  assert_int_equal(souk_http_request(&o, got_cb, &g, NULL), 0);
  assert_true(tsrv_run_until(&done, 1, 8000));
  return g;
}

static void sh(const char *fmt, const char *a, const char *b) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, fmt, a, b);
  if (system(cmd) != 0) fail_msg("failed: %s", cmd);
}

/* Certificates are looked up in the hashed directory, and the bundle file
 * is not loaded when there is one: a server whose CA is only in the bundle
 * is then not trusted.  Without a usable directory the bundle is used, and
 * a CA file set by souk__trust_set_ca_file() is trusted either way. */
static void test_https_trust(void **state) {
  char dir[] = "/tmp/souk-test-https-XXXXXX";
  assert_non_null(mkdtemp(dir));
  if (access(PYSPAWN_PYTHON, X_OK) != 0 ||
      system("command -v openssl >/dev/null 2>&1") != 0) {
    rmdir(dir);
    skip();
  }
  sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
     "-subj /CN=localhost -addext subjectAltName=DNS:localhost -days 2 "
     "-keyout %s/k.pem -out %s/c.pem >/dev/null 2>&1",
     dir, dir);
  /* hashed: the CA alone, as update-ca-certificates lays it out;
   * otherdir: a usable directory without it; plain: the CA without the
   * hash-named link. */
  sh("mkdir %s/hashed %s/otherdir", dir, dir);
  sh("mkdir %s/plain%s", dir, "");
  sh("cp %s/c.pem %s/plain/", dir, dir);
  sh("cp %s/c.pem %s/hashed/", dir, dir);
  /* other.pem: a bundle that does not hold the CA. */
  sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
     "-subj /CN=other -days 2 -keyout %s/ok.pem -out %s/other.pem >/dev/null 2>&1",
     dir, dir);
  sh("openssl rehash %s/hashed >/dev/null 2>&1 && ls %s/hashed | grep -q '\\.0$'", dir, dir);
  sh("cp %s/other.pem %s/otherdir/", dir, dir);
  sh("openssl rehash %s/otherdir >/dev/null 2>&1%s", dir, "");
  char script[2048];
  snprintf(script, sizeof script, TLS_HTTP_PY, dir, dir);
  pyserver_t tls;
  assert_int_equal(pyserver_start(&tls, script), 0);
  char u[128], path[256];
  snprintf(u, sizeof u, "https://localhost:%d/x", tls.port);
  char *old_dir = getenv("SSL_CERT_DIR") ? strdup(getenv("SSL_CERT_DIR")) : NULL;
  char *old_file = getenv("SSL_CERT_FILE") ? strdup(getenv("SSL_CERT_FILE")) : NULL;
  snprintf(path, sizeof path, "%s/c.pem", dir);
  setenv("SSL_CERT_FILE", path, 1);

  /* The directory holds the CA: trusted, over TLS. */
  snprintf(path, sizeof path, "%s/hashed", dir);
  setenv("SSL_CERT_DIR", path, 1);
  got_t g = https_get(u);
  assert_int_equal(g.err, 0);
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body, "over tls");

  /* A usable directory without it: refused, although the bundle file
   * (SSL_CERT_FILE) holds it, because the bundle is not loaded. */
  snprintf(path, sizeof path, "%s/otherdir", dir);
  setenv("SSL_CERT_DIR", path, 1);
  g = https_get(u);
  assert_int_equal(g.err, SOUK_ECONN);
  assert_int_equal(g.status, 0);

  /* ... unless the CA file is set. */
  snprintf(path, sizeof path, "%s/c.pem", dir);
  souk__trust_set_ca_file(path);
  g = https_get(u);
  assert_int_equal(g.status, 200);
  souk__trust_set_ca_file(NULL);

  /* A directory of plain PEM files, without the hash-named links the
   * lookup needs, is not usable: the bundle file is used. */
  snprintf(path, sizeof path, "%s/plain", dir);
  setenv("SSL_CERT_DIR", path, 1);
  g = https_get(u);
  assert_int_equal(g.status, 200);

  /* A ':'-separated list is usable when one of its directories is. */
  snprintf(path, sizeof path, "%s/otherdir:%s/hashed", dir, dir);
  setenv("SSL_CERT_DIR", path, 1);
  snprintf(path, sizeof path, "%s/other.pem", dir);
  setenv("SSL_CERT_FILE", path, 1);
  g = https_get(u);
  assert_int_equal(g.status, 200);

  /* No usable directory and a bundle without the CA: refused, until the
   * extra CA file is set, which is trusted beside the bundle. */
  snprintf(path, sizeof path, "%s/missing", dir);
  setenv("SSL_CERT_DIR", path, 1);
  g = https_get(u);
  assert_int_equal(g.err, SOUK_ECONN);
  snprintf(path, sizeof path, "%s/c.pem", dir);
  souk__trust_set_ca_file(path);
  g = https_get(u);
  assert_int_equal(g.status, 200);

  /* By address the certificate's name does not match: refused, while the
   * server still answers by name. */
  char by_addr[128];
  snprintf(by_addr, sizeof by_addr, "https://127.0.0.1:%d/x", tls.port);
  g = https_get(by_addr);
  assert_int_equal(g.err, SOUK_ECONN);
  g = https_get(u);
  assert_int_equal(g.status, 200);
  souk__trust_set_ca_file(NULL);

  if (old_dir) setenv("SSL_CERT_DIR", old_dir, 1);
  else unsetenv("SSL_CERT_DIR");
  if (old_file) setenv("SSL_CERT_FILE", old_file, 1);
  else unsetenv("SSL_CERT_FILE");
  free(old_dir);
  free(old_file);
  pyserver_stop(&tls);
  sh("rm -rf %s%s", dir, "");
}

int main(void) {
  souk_alloc_init();
  souk_log_set_level(SOUK_LOG_OFF);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_methods_and_empty_bodies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gzip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_response_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reuse_from_callback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_cancels_inflight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_https_trust, setup, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk_loop_close();
  curl_global_cleanup();
  return rc;
}
