/* The HTTP interactions endpoint: Ed25519 verification against keys and
 * signatures made here with OpenSSL, the replay window on a fake clock,
 * and POST /interactions served by the real HTTP server and driven by
 * souk's own HTTP client on the same loop: PING, 401s, 400, a handler's
 * answer, and the deferred answers a late handler gets. */
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
#include "discord/dconf.h"
#include "discord/interactions.h"
#include "../net/httptest.h"
#include "../ops/opstest.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/http.h"
#include "net/httpd.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/store.h"
#include "core/metrics.h"

#include <curl/curl.h>
#include <openssl/evp.h>

/* The fake wall clock: 2023-11-14 22:13:20 UTC. */
#define NOW_S 1700000000ull

static EVP_PKEY *key, *other_key;
static char pub_hex[65], other_hex[65];
static char base[64];

/* ---- keys and signatures ----------------------------------------------- */

static void to_hex(const unsigned char *p, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = 0;
}

static EVP_PKEY *keygen(char *hex_out) {
  EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
  assert_non_null(pc);
  assert_int_equal(EVP_PKEY_keygen_init(pc), 1);
  EVP_PKEY *k = NULL;
  assert_int_equal(EVP_PKEY_keygen(pc, &k), 1);
  EVP_PKEY_CTX_free(pc);
  unsigned char raw[32];
  size_t len = sizeof raw;
  assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &len), 1);
  assert_int_equal(len, 32);
  to_hex(raw, len, hex_out);
  return k;
}

/* Sign timestamp || body with k, as Discord does; sig_hex gets 129 bytes. */
static void sign(EVP_PKEY *k, const char *ts, const char *body, char *sig_hex) {
  size_t tl = strlen(ts), bl = strlen(body);
  unsigned char *msg = souk_malloc(tl + bl + 1);
  memcpy(msg, ts, tl);
  memcpy(msg + tl, body, bl);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, k), 1);
  unsigned char sig[64];
  size_t sl = sizeof sig;
  assert_int_equal(EVP_DigestSign(ctx, sig, &sl, msg, tl + bl), 1);
  assert_int_equal(sl, 64);
  EVP_MD_CTX_free(ctx);
  souk_free(msg);
  to_hex(sig, sl, sig_hex);
}

static int group_setup(void **state) {
  key = keygen(pub_hex);
  other_key = keygen(other_hex);
  fake_now_ms = NOW_S * 1000;
  souk__ix_set_clock(&fake_clock);
  return 0;
}

static int group_teardown(void **state) {
  EVP_PKEY_free(key);
  EVP_PKEY_free(other_key);
  souk__ix_set_clock(NULL);
  return 0;
}

/* ---- verification ------------------------------------------------------ */

static void test_verify(void **state) {
  const char *body = "{\"type\":1}";
  char sig[129];
  sign(key, "1700000000", body, sig);
  assert_int_equal(souk__ix_verify(pub_hex, sig, "1700000000", body, strlen(body)), 0);
  /* Hex digits in upper case are the same key and signature. */
  char upper[129];
  for (size_t i = 0; i <= 128; i++)
    upper[i] = (char)(sig[i] >= 'a' && sig[i] <= 'f' ? sig[i] - 32 : sig[i]);
  assert_int_equal(souk__ix_verify(pub_hex, upper, "1700000000", body, strlen(body)), 0);

  /* A bad signature: one bit flipped. */
  char bad[129];
  memcpy(bad, sig, sizeof bad);
  bad[10] = bad[10] == '0' ? '1' : '0';
  assert_int_equal(souk__ix_verify(pub_hex, bad, "1700000000", body, strlen(body)), SOUK_EAUTH);
  /* A tampered body, and a tampered (but still fresh) timestamp. */
  const char *tampered = "{\"type\":2}";
  assert_int_equal(souk__ix_verify(pub_hex, sig, "1700000000", tampered, strlen(tampered)),
                   SOUK_EAUTH);
  assert_int_equal(souk__ix_verify(pub_hex, sig, "1700000001", body, strlen(body)), SOUK_EAUTH);
  /* The body is part of the message: a prefix is not the message. */
  assert_int_equal(souk__ix_verify(pub_hex, sig, "1700000000", body, strlen(body) - 1), SOUK_EAUTH);
  /* Another application's key. */
  assert_int_equal(souk__ix_verify(other_hex, sig, "1700000000", body, strlen(body)), SOUK_EAUTH);
  /* NULLs. */
  assert_int_equal(souk__ix_verify(NULL, sig, "1700000000", body, strlen(body)), SOUK_EAUTH);
  assert_int_equal(souk__ix_verify(pub_hex, NULL, "1700000000", body, strlen(body)), SOUK_EAUTH);
  assert_int_equal(souk__ix_verify(pub_hex, sig, NULL, body, strlen(body)), SOUK_EAUTH);
  assert_int_equal(souk__ix_verify(pub_hex, sig, "1700000000", NULL, 3), SOUK_EAUTH);
  /* An empty body signs like any other. */
  sign(key, "1700000000", "", sig);
  assert_int_equal(souk__ix_verify(pub_hex, sig, "1700000000", NULL, 0), 0);
}

static void test_verify_malformed_hex(void **state) {
  const char *body = "{}";
  char sig[129];
  sign(key, "1700000000", body, sig);
  char buf[300];
  /* Signature: one digit short, one too many, a non-hex digit, a 0x
   * prefix, surrounding space. */
  snprintf(buf, sizeof buf, "%.127s", sig);
  assert_int_equal(souk__ix_verify(pub_hex, buf, "1700000000", body, 2), SOUK_EAUTH);
  snprintf(buf, sizeof buf, "%s0", sig);
  assert_int_equal(souk__ix_verify(pub_hex, buf, "1700000000", body, 2), SOUK_EAUTH);
  snprintf(buf, sizeof buf, "%s", sig);
  buf[5] = 'g';
  assert_int_equal(souk__ix_verify(pub_hex, buf, "1700000000", body, 2), SOUK_EAUTH);
  snprintf(buf, sizeof buf, "0x%.126s", sig);
  assert_int_equal(souk__ix_verify(pub_hex, buf, "1700000000", body, 2), SOUK_EAUTH);
  snprintf(buf, sizeof buf, " %.127s", sig);
  assert_int_equal(souk__ix_verify(pub_hex, buf, "1700000000", body, 2), SOUK_EAUTH);
  assert_int_equal(souk__ix_verify(pub_hex, "", "1700000000", body, 2), SOUK_EAUTH);
  /* Key: short, long, non-hex. */
  snprintf(buf, sizeof buf, "%.63s", pub_hex);
  assert_int_equal(souk__ix_verify(buf, sig, "1700000000", body, 2), SOUK_EAUTH);
  snprintf(buf, sizeof buf, "%sff", pub_hex);
  assert_int_equal(souk__ix_verify(buf, sig, "1700000000", body, 2), SOUK_EAUTH);
  snprintf(buf, sizeof buf, "%s", pub_hex);
  buf[63] = 'z';
  assert_int_equal(souk__ix_verify(buf, sig, "1700000000", body, 2), SOUK_EAUTH);
  /* Timestamps that are not plain decimal seconds, even when signed. */
  const char *bad_ts[] = {"",
                          "-1700000000",
                          "+1700000000",
                          "1700000000.5",
                          " 1700000000",
                          "1700000000 ",
                          "0x6553f100",
                          "1700000000000000000"};
  for (size_t i = 0; i < sizeof bad_ts / sizeof *bad_ts; i++) {
    sign(key, bad_ts[i], body, sig);
    assert_int_equal(souk__ix_verify(pub_hex, sig, bad_ts[i], body, 2), SOUK_EAUTH);
  }
  /* The correct spelling still passes: the loop above did not change it. */
  sign(key, "1700000000", body, sig);
  assert_int_equal(souk__ix_verify(pub_hex, sig, "1700000000", body, 2), 0);
}

static void check_ts(uint64_t ts, int want) {
  char t[32], sig[129];
  snprintf(t, sizeof t, "%llu", (unsigned long long)ts);
  sign(key, t, "{}", sig);
  assert_int_equal(souk__ix_verify(pub_hex, sig, t, "{}", 2), want);
}

static void test_verify_replay_window(void **state) {
  /* Up to 5 minutes old and up to 1 minute ahead are accepted. */
  check_ts(NOW_S - 300, 0);
  check_ts(NOW_S - 301, SOUK_EAUTH);
  check_ts(NOW_S - 86400, SOUK_EAUTH);
  check_ts(NOW_S + 60, 0);
  check_ts(NOW_S + 61, SOUK_EAUTH);
  check_ts(0, SOUK_EAUTH);
  /* The same signed request is refused once the clock moves on: a replay. */
  char sig[129];
  sign(key, "1700000000", "{}", sig);
  assert_int_equal(souk__ix_verify(pub_hex, sig, "1700000000", "{}", 2), 0);
  fake_now_ms += 300 * 1000 + 1;
  assert_int_equal(souk__ix_verify(pub_hex, sig, "1700000000", "{}", 2), SOUK_EAUTH);
  fake_now_ms = NOW_S * 1000;
}

/* ---- the endpoint ------------------------------------------------------ */

/* POST body to /interactions with the given signature headers (NULL: left
 * out); returns when the answer arrived and how long it took. */
static uint64_t post(got_t *g, const char *sig, const char *ts, const char *body) {
  memset(g, 0, sizeof *g);
  char u[128], hs[200], ht[64];
  snprintf(u, sizeof u, "%s/interactions", base);
  const char *h[3];
  size_t nh = 0;
  h[nh++] = "Content-Type: application/json";
  if (sig) {
    snprintf(hs, sizeof hs, "X-Signature-Ed25519: %s", sig);
    h[nh++] = hs;
  }
  if (ts) {
    snprintf(ht, sizeof ht, "X-Signature-Timestamp: %s", ts);
    h[nh++] = ht;
  }
  souk_http_opts_t o = {.method = "POST",
                        .url = u,
                        .headers = h,
                        .nheaders = nh,
                        .body = body,
                        .body_len = strlen(body),
                        .timeout_ms = 5000};
  uint64_t t0 = souk_now_ms();
  assert_int_equal(souk_http_request(&o, got_cb, g, NULL), 0);
  assert_true(run_until(&g->done, 6000));
  assert_int_equal(g->err, 0);
  return souk_now_ms() - t0;
}

/* A correctly signed POST. */
static uint64_t post_signed(got_t *g, const char *body) {
  char sig[129];
  sign(key, "1700000000", body, sig);
  return post(g, sig, "1700000000", body);
}


/* The test's handler: answers at once, from a timer, never, or wrongly. */
enum { H_SYNC, H_LATER, H_NEVER, H_BAD_THEN_GOOD };
static int handler_mode;
static int handler_calls;
static souk__ix_t *held;
static char held_token[64];
static uv_timer_t later_timer;

static const char reply[] = "{\"type\":4,\"data\":{\"content\":\"pong\"}}";

static void later_cb(uv_timer_t *t) {
  assert_false(souk__ix_deferred(held));
  assert_int_equal(souk__ix_respond(held, reply, strlen(reply)), 0);
  held = NULL;
}

static void handler(souk__ix_t *ix, const souk_json_t *j, void *ud) {
  handler_calls++;
  assert_string_equal((const char *)ud, "ud");
  assert_false(souk__ix_deferred(ix));
  souk_json_str(j, souk_json_get(j, 0, "token"), held_token, sizeof held_token);
  switch (handler_mode) {
  case H_SYNC:
    assert_int_equal(souk__ix_type(ix), SOUK_IX_APPLICATION_COMMAND);
    assert_int_equal(souk__ix_respond(ix, reply, strlen(reply)), 0);
    break;
  case H_LATER:
    held = ix;
    uv_timer_start(&later_timer, later_cb, 30, 0);
    break;
  case H_NEVER:
    held = ix;
    break;
  case H_BAD_THEN_GOOD:
    /* Not a JSON object: refused, and the interaction is still owed. */
    assert_int_equal(souk__ix_respond(ix, "{\"type\":4", 9), SOUK_EINVAL);
    assert_int_equal(souk__ix_respond(ix, "[1]", 3), SOUK_EINVAL);
    assert_int_equal(souk__ix_respond(ix, NULL, 0), SOUK_EINVAL);
    assert_int_equal(souk__ix_respond(ix, reply, strlen(reply)), 0);
    break;
  }
}

static int http_setup(void **state) {
  assert_int_equal(souk_http_init(), 0);
  souk__httpd_conf_t c = {.enabled = true,
                         .bind = "127.0.0.1",
                         .port = 0,
                         .max_body = 4096,
                         .timeout_ms = 5000,
                         .max_connections = 16};
  souk__discord_conf.public_key = pub_hex;
  assert_int_equal(souk__ix_mount(), 0);
  assert_int_equal(souk__ix_mount(), SOUK_EEXIST);
  assert_int_equal(souk__httpd_start(&c), 0);
  snprintf(base, sizeof base, "http://127.0.0.1:%d", souk__httpd_port());
  souk__ix_set_deadline_ms(200);
  souk__ix_set_handler(handler, "ud");
  handler_calls = 0;
  handler_mode = H_SYNC;
  held = NULL;
  uv_timer_init(souk_loop(), &later_timer);
  return 0;
}

static int http_teardown(void **state) {
  souk__ix_unmount();
  souk__httpd_stop();
  souk__ix_set_handler(NULL, NULL);
  souk__ix_set_deadline_ms(0);
  souk__discord_conf.public_key = NULL;
  uv_close((uv_handle_t *)&later_timer, NULL);
  souk_http_shutdown();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  souk__metrics_shutdown();
  return 0;
}

static void test_ping(void **state) {
  got_t g;
  post_signed(&g, "{\"id\":\"1\",\"application_id\":\"2\",\"type\":1,\"version\":1}");
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body.data, "{\"type\":1}");
  assert_string_equal(g.ctype, "application/json");
  got_free(&g);
  assert_int_equal(handler_calls, 0);
}

static void test_bad_signatures(void **state) {
  const char *body = "{\"type\":1}";
  char sig[129];
  got_t g;
  /* Discord's probe: a well-formed but wrong signature. */
  sign(other_key, "1700000000", body, sig);
  post(&g, sig, "1700000000", body);
  assert_int_equal(g.status, 401);
  assert_string_equal(g.body.data, "invalid request signature\n");
  got_free(&g);
  /* Missing headers, one or both. */
  sign(key, "1700000000", body, sig);
  post(&g, NULL, NULL, body);
  assert_int_equal(g.status, 401);
  got_free(&g);
  post(&g, sig, NULL, body);
  assert_int_equal(g.status, 401);
  got_free(&g);
  post(&g, NULL, "1700000000", body);
  assert_int_equal(g.status, 401);
  got_free(&g);
  /* Garbage, and a signature over another body. */
  post(&g, "zz", "1700000000", body);
  assert_int_equal(g.status, 401);
  got_free(&g);
  post(&g, sig, "1700000000", "{\"type\":2}");
  assert_int_equal(g.status, 401);
  got_free(&g);
  /* A stale, correctly signed request: a replay. */
  sign(key, "1699999000", body, sig);
  post(&g, sig, "1699999000", body);
  assert_int_equal(g.status, 401);
  got_free(&g);
  assert_int_equal(handler_calls, 0);
  /* Only POST is served. */
  memset(&g, 0, sizeof g);
  char u[128];
  snprintf(u, sizeof u, "%s/interactions", base);
  souk_http_opts_t o = {.url = u, .timeout_ms = 5000};
  assert_int_equal(souk_http_request(&o, got_cb, &g, NULL), 0);
  assert_true(run_until(&g.done, 6000));
  assert_int_equal(g.status, 405);
  got_free(&g);
}

static void test_malformed_json(void **state) {
  got_t g;
  post_signed(&g, "{\"type\":1");
  assert_int_equal(g.status, 400);
  got_free(&g);
  post_signed(&g, "[1]");
  assert_int_equal(g.status, 400);
  got_free(&g);
  post_signed(&g, "");
  assert_int_equal(g.status, 400);
  got_free(&g);
  /* Valid JSON that is not an interaction. */
  post_signed(&g, "{\"type\":\"1\"}");
  assert_int_equal(g.status, 400);
  got_free(&g);
  post_signed(&g, "{\"type\":99}");
  assert_int_equal(g.status, 400);
  got_free(&g);
  assert_int_equal(handler_calls, 0);
}

/* Who acted, as a DM interaction names them. */
#define USER    "\"user\":{\"id\":\"7\"}"
#define COMMAND "{\"id\":\"10\",\"type\":2,\"token\":\"tok-abc\"," USER ",\"data\":{\"name\":\"ping\"}}"

static void test_handler_answers(void **state) {
  got_t g;
  handler_mode = H_SYNC;
  post_signed(&g, COMMAND);
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body.data, reply);
  assert_string_equal(g.ctype, "application/json");
  assert_string_equal(held_token, "tok-abc");
  got_free(&g);
  handler_mode = H_LATER;
  post_signed(&g, COMMAND);
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body.data, reply);
  assert_null(held);
  got_free(&g);
  handler_mode = H_BAD_THEN_GOOD;
  post_signed(&g, COMMAND);
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body.data, reply);
  got_free(&g);
  assert_int_equal(handler_calls, 3);
}

/* An interaction that names nobody would run as user 0: refused before
 * the handler, in a guild (member.user.id) and in a DM (user.id). */
static void test_interaction_without_user(void **state) {
  handler_mode = H_SYNC;
  const char *const bodies[] = {
      "{\"id\":\"10\",\"type\":2,\"token\":\"t\",\"data\":{\"name\":\"ping\"}}",
      "{\"id\":\"10\",\"type\":2,\"token\":\"t\",\"member\":{\"nick\":\"a\"}," USER "}",
      "{\"id\":\"10\",\"type\":3,\"token\":\"t\",\"user\":{\"id\":\"0\"}}",
      "{\"id\":\"10\",\"type\":4,\"token\":\"t\",\"user\":{\"id\":\"x7\"}}",
      "{\"id\":\"10\",\"type\":5,\"token\":\"t\",\"user\":{\"name\":\"a\"}}",
  };
  for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
    got_t g;
    post_signed(&g, bodies[i]);
    assert_int_equal(g.status, 400);
    assert_string_equal(g.body.data, "interaction without a user\n");
    got_free(&g);
  }
  assert_int_equal(handler_calls, 0);
  got_t g;
  post_signed(&g, "{\"id\":\"10\",\"type\":2,\"token\":\"t\",\"member\":{\"user\":{\"id\":"
                  "\"7\"}},\"data\":{\"name\":\"ping\"}}");
  assert_int_equal(g.status, 200);
  got_free(&g);
  assert_int_equal(handler_calls, 1);
}

static void test_handler_late(void **state) {
  got_t g;
  handler_mode = H_NEVER;
  uint64_t ms = post_signed(&g, COMMAND);
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body.data, "{\"type\":5}");
  assert_string_equal(g.ctype, "application/json");
  /* After the deadline, well before http.timeout (5 s). */
  assert_true(ms >= 190);
  assert_true(ms < 2000);
  got_free(&g);
  assert_non_null(held);
  assert_true(souk__ix_deferred(held));
  /* The handler's own answer now only releases the interaction. */
  assert_int_equal(souk__ix_respond(held, reply, strlen(reply)), SOUK_ETIMEDOUT);
  held = NULL;

  /* Components are acknowledged, autocomplete gets no suggestions and a
   * modal submit is deferred like a command. */
  post_signed(&g, "{\"type\":3,\"token\":\"t\"," USER ",\"data\":{\"custom_id\":\"x\"}}");
  assert_string_equal(g.body.data, "{\"type\":6}");
  got_free(&g);
  assert_int_equal(souk__ix_respond(held, reply, strlen(reply)), SOUK_ETIMEDOUT);
  post_signed(&g, "{\"type\":4,\"token\":\"t\"," USER "}");
  assert_string_equal(g.body.data, "{\"type\":8,\"data\":{\"choices\":[]}}");
  got_free(&g);
  assert_int_equal(souk__ix_respond(held, reply, strlen(reply)), SOUK_ETIMEDOUT);
  post_signed(&g, "{\"type\":5,\"token\":\"t\"," USER "}");
  assert_string_equal(g.body.data, "{\"type\":5}");
  got_free(&g);
  assert_int_equal(souk__ix_respond(held, reply, strlen(reply)), SOUK_ETIMEDOUT);
  held = NULL;
}

/* An unmount answers what is still pending with the deferred response. */
static void test_unmount_defers_pending(void **state) {
  handler_mode = H_NEVER;
  got_t g;
  memset(&g, 0, sizeof g);
  char u[128], sig[129], hs[200];
  snprintf(u, sizeof u, "%s/interactions", base);
  sign(key, "1700000000", COMMAND, sig);
  snprintf(hs, sizeof hs, "X-Signature-Ed25519: %s", sig);
  const char *h[] = {hs, "X-Signature-Timestamp: 1700000000"};
  souk__ix_set_deadline_ms(60000);
  souk_http_opts_t o = {.method = "POST",
                        .url = u,
                        .headers = h,
                        .nheaders = 2,
                        .body = COMMAND,
                        .body_len = strlen(COMMAND),
                        .timeout_ms = 5000};
  assert_int_equal(souk_http_request(&o, got_cb, &g, NULL), 0);
  for (int i = 0; i < 500 && !held; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_non_null(held);
  souk__ix_unmount();
  assert_true(run_until(&g.done, 3000));
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body.data, "{\"type\":5}");
  got_free(&g);
  assert_int_equal(souk__ix_respond(held, reply, strlen(reply)), SOUK_ETIMEDOUT);
  held = NULL;
  /* The route is gone. */
  post_signed(&g, COMMAND);
  assert_int_equal(g.status, 404);
  got_free(&g);
}

/* Behind a load balancer a request may be sent twice, to this process or
 * another sharing the store: the command runs once, and the retry gets
 * the first one's answer (its deferred answer when that is what went). */
static souk_store_t *ix_store;
static char ix_db[64];

static void open_ix_store(void) {
  snprintf(ix_db, sizeof ix_db, "/tmp/souk-ix-%d.db", (int)getpid());
  unlink(ix_db);
  souk_store_conf_t c;
  souk_store_conf_defaults(&c);
  char url[96];
  snprintf(url, sizeof url, "sqlite://%s", ix_db);
  c.url = url;
  assert_int_equal(souk_store_open(&c, NULL, &ix_store), 0);
  souk__ix_set_store(ix_store);
}

static void close_ix_store(void) {
  souk__ix_set_store(NULL);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  while (souk_work_pending())
    uv_run(souk_loop(), UV_RUN_ONCE);
  souk_store_close(ix_store);
  ix_store = NULL;
  char p[80];
  unlink(ix_db);
  snprintf(p, sizeof p, "%s-wal", ix_db);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", ix_db);
  unlink(p);
}

/* Let the recorded answer reach the store. */
static void settle(void) {
  for (int i = 0; i < 200 && souk_work_pending(); i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
}

#define CMD_ID(id) "{\"id\":\"" id "\",\"type\":2,\"token\":\"tok\"," USER ",\"data\":{\"name\":\"ping\"}}"

static void start_post(got_t *g, const char *body, souk_http_opts_t *o, char *u, char (*h)[200],
                       const char **hp) {
  memset(g, 0, sizeof *g);
  char sig[129];
  snprintf(u, 128, "%s/interactions", base);
  sign(key, "1700000000", body, sig);
  snprintf(h[0], 200, "X-Signature-Ed25519: %s", sig);
  snprintf(h[1], 200, "X-Signature-Timestamp: 1700000000");
  hp[0] = h[0];
  hp[1] = h[1];
  *o = (souk_http_opts_t){.method = "POST",
                          .url = u,
                          .headers = hp,
                          .nheaders = 2,
                          .body = body,
                          .body_len = strlen(body),
                          .timeout_ms = 5000};
  assert_int_equal(souk_http_request(o, got_cb, g, NULL), 0);
}

/* Another process claimed interaction 24 and died before answering. */
static int claim_24(souk_db_t *db, void *ud) { return souk_db_once(db, "ix:24"); }

static void test_retry_answers_once(void **state) {
  open_ix_store();
  got_t g;
  /* Sequential: the retry comes after the answer. */
  handler_mode = H_SYNC;
  post_signed(&g, CMD_ID("20"));
  assert_string_equal(g.body.data, reply);
  got_free(&g);
  settle();
  post_signed(&g, CMD_ID("20"));
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body.data, reply);
  got_free(&g);
  assert_int_equal(handler_calls, 1);
  assert_int_equal(souk__ix_retries(), 1);
  /* A different interaction runs. */
  post_signed(&g, CMD_ID("21"));
  got_free(&g);
  assert_int_equal(handler_calls, 2);

  /* Both at once: one runs the handler (which answers 30 ms later), the
   * other waits for that answer and sends the same. */
  handler_mode = H_LATER;
  got_t a, b;
  souk_http_opts_t oa, ob;
  char ua[128], ub[128], ha[2][200], hb[2][200];
  const char *hpa[2], *hpb[2];
  start_post(&a, CMD_ID("22"), &oa, ua, ha, hpa);
  start_post(&b, CMD_ID("22"), &ob, ub, hb, hpb);
  assert_true(run_until(&a.done, 3000));
  assert_true(run_until(&b.done, 3000));
  assert_int_equal(a.status, 200);
  assert_int_equal(b.status, 200);
  assert_string_equal(a.body.data, reply);
  assert_string_equal(b.body.data, reply);
  got_free(&a);
  got_free(&b);
  assert_int_equal(handler_calls, 3);
  assert_int_equal(souk__ix_retries(), 2);

  /* The first one deferred (its handler is slow): the retry gets the
   * deferred answer too, and the handler still finishes through REST. */
  handler_mode = H_NEVER;
  post_signed(&g, CMD_ID("23"));
  assert_string_equal(g.body.data, "{\"type\":5}");
  got_free(&g);
  settle();
  handler_mode = H_SYNC;
  uint64_t ms = post_signed(&g, CMD_ID("23"));
  assert_string_equal(g.body.data, "{\"type\":5}");
  assert_true(ms < 190); /* read from the store, not waited for */
  got_free(&g);
  assert_int_equal(handler_calls, 4);
  assert_int_equal(souk__ix_respond(held, reply, strlen(reply)), SOUK_ETIMEDOUT);
  held = NULL;

  /* A retry whose first answer never comes (the first process died
   * before answering) gets the deferred answer at the deadline. */
  assert_int_equal(souk_store_tx(ix_store, claim_24, NULL), 0);
  ms = post_signed(&g, CMD_ID("24"));
  assert_string_equal(g.body.data, "{\"type\":5}");
  assert_true(ms >= 190 && ms < 2000);
  got_free(&g);
  assert_int_equal(handler_calls, 4);
  close_ix_store();
}

static void test_no_handler(void **state) {
  souk__ix_set_handler(NULL, NULL);
  got_t g;
  uint64_t ms = post_signed(&g, COMMAND);
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body.data, "{\"type\":5}");
  assert_true(ms < 190); /* at once: nothing would ever answer */
  got_free(&g);
  post_signed(&g, "{\"type\":1}");
  assert_string_equal(g.body.data, "{\"type\":1}");
  got_free(&g);
}

/* discord.public_key: unset mounts nothing, a malformed one is refused
 * with a message naming the key. */
static void test_mount_config(void **state) {
  log_capture_start();
  souk__discord_conf.public_key = NULL;
  assert_int_equal(souk__ix_mount(), 0);
  char bad[80];
  snprintf(bad, sizeof bad, "%.63sg", pub_hex);
  souk__discord_conf.public_key = bad;
  assert_int_equal(souk__ix_mount(), SOUK_ECONFIG);
  assert_true(log_contains("discord.public_key must be"));
  souk__discord_conf.public_key = (char *)"abcd";
  assert_int_equal(souk__ix_mount(), SOUK_ECONFIG);
  souk__discord_conf.public_key = NULL;
  log_capture_stop();
  souk_log_set_level(SOUK_LOG_OFF);
  /* Nothing was mounted: the server has no such route. */
  assert_int_equal(souk_http_init(), 0);
  souk__httpd_conf_t c = {.enabled = true,
                         .bind = "127.0.0.1",
                         .port = 0,
                         .max_body = 4096,
                         .timeout_ms = 5000,
                         .max_connections = 4};
  assert_int_equal(souk__httpd_start(&c), 0);
  snprintf(base, sizeof base, "http://127.0.0.1:%d", souk__httpd_port());
  got_t g;
  post_signed(&g, "{\"type\":1}");
  assert_int_equal(g.status, 404);
  got_free(&g);
  souk__httpd_stop();
  souk_http_shutdown();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  souk__metrics_shutdown();
}

int main(void) {
  souk_alloc_init();
  souk_log_set_level(SOUK_LOG_OFF);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_verify),
      cmocka_unit_test(test_verify_malformed_hex),
      cmocka_unit_test(test_verify_replay_window),
      cmocka_unit_test_setup_teardown(test_ping, http_setup, http_teardown),
      cmocka_unit_test_setup_teardown(test_bad_signatures, http_setup, http_teardown),
      cmocka_unit_test_setup_teardown(test_malformed_json, http_setup, http_teardown),
      cmocka_unit_test_setup_teardown(test_handler_answers, http_setup, http_teardown),
      cmocka_unit_test_setup_teardown(test_interaction_without_user, http_setup, http_teardown),
      cmocka_unit_test_setup_teardown(test_handler_late, http_setup, http_teardown),
      cmocka_unit_test_setup_teardown(test_unmount_defers_pending, http_setup, http_teardown),
      cmocka_unit_test_setup_teardown(test_no_handler, http_setup, http_teardown),
      cmocka_unit_test_setup_teardown(test_retry_answers_once, http_setup, http_teardown),
      cmocka_unit_test(test_mount_config),
  };
  int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
  souk_loop_close();
  curl_global_cleanup();
  return rc;
}
