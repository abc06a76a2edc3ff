/* Rate limiter rules, each with an injected clock: nothing here sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "discord/ratelimit.h"
#include "discord/snowflake.h"
#include "souk/err.h"
#include "souk/log.h"

static uint64_t t_now;
static uint64_t fake_now(void *ud) { return t_now; }
static const souk_clock_t fake_clock = {fake_now, NULL};

/* A limiter whose global limit stays out of the way of bucket tests: any
 * number of requests may go at one instant (the global tests below use
 * the real spacing). */
static souk__rl_t *new_rl(uint32_t global, uint32_t invalid, uint64_t idle) {
  souk__rl_conf_t c = {
      .global_per_s = global, .global_burst = 1000000, .invalid_limit = invalid, .idle_ms = idle};
  return souk__rl_new(&c, &fake_clock);
}

static souk__rl_route_t route(const char *method, const char *path) {
  souk__rl_route_t r;
  assert_int_equal(souk__rl_route(method, path, 1700000000000ull, &r), 0);
  return r;
}

/* A response carrying a bucket's headers. */
static souk__rl_resp_t resp(int status, const char *bucket, const char *limit,
                           const char *remaining, const char *reset_after) {
  souk__rl_resp_t r = {.status = status,
                      .bucket = bucket,
                      .limit = limit,
                      .remaining = remaining,
                      .reset_after = reset_after};
  return r;
}

static int acquire(souk__rl_t *rl, const souk__rl_route_t *r, souk__rl_ticket_t *t,
                   uint64_t *wait) {
  uint64_t w = 0;
  int rc = souk__rl_acquire(rl, r, t, &w);
  if (wait) *wait = w;
  return rc;
}

static void record(souk__rl_t *rl, souk__rl_ticket_t *t, souk__rl_resp_t r) {
  souk__rl_record(rl, t, &r, NULL);
}

static int setup(void **state) {
  t_now = 1000000;
  return 0;
}

/* ---- classification ---------------------------------------------------- */

static void test_route_keys(void **state) {
  souk__rl_route_t r = route("post", "/channels/123456789012345678/messages?x=1");
  assert_string_equal(r.key, "POST /channels/{id}/messages");
  assert_string_equal(r.major, "channels/123456789012345678");
  assert_false(r.global_exempt);

  r = route("GET", "/guilds/42/members/777");
  assert_string_equal(r.key, "GET /guilds/{id}/members/{id}");
  assert_string_equal(r.major, "guilds/42");

  r = route("PUT", "/channels/1/messages/2/reactions/%F0%9F%91%8D/@me");
  assert_string_equal(r.key, "PUT /channels/{id}/messages/{id}/reactions/{emoji}/@me");
  r = route("DELETE", "/channels/1/messages/2/reactions/name:123/99");
  assert_string_equal(r.key, "DELETE /channels/{id}/messages/{id}/reactions/{emoji}/{id}");

  /* The webhook token is part of the major parameter, but only as a
   * fingerprint: the secret never lands in a key. */
  r = route("POST", "/webhooks/111/SeCrEtToKeN_abc/messages/222");
  assert_string_equal(r.key, "POST /webhooks/{id}/{token}/messages/{id}");
  assert_true(strncmp(r.major, "webhooks/111/", 13) == 0);
  assert_null(strstr(r.major, "SeCrEt"));
  souk__rl_route_t r2 = route("POST", "/webhooks/111/OtherToken/messages/222");
  assert_string_not_equal(r.major, r2.major);

  r = route("POST", "/interactions/123/aW50ZXJhY3Rpb24/callback");
  assert_string_equal(r.key, "POST /interactions/{id}/{token}/callback");
  assert_true(r.global_exempt);
  r = route("POST", "/webhooks/55/aW50ZXJhY3Rpb24");
  assert_false(r.global_exempt);

  r = route("GET", "/invites/discord-api");
  assert_string_equal(r.key, "GET /invites/{code}");
  r = route("GET", "/users/@me");
  assert_string_equal(r.key, "GET /users/@me");
  assert_string_equal(r.major, "");

  souk__rl_route_t bad;
  assert_int_equal(souk__rl_route("GET", "channels/1", 0, &bad), SOUK_EINVAL);
  assert_int_equal(souk__rl_route("G T", "/x", 0, &bad), SOUK_EINVAL);
  char longp[600];
  memset(longp, 'a', sizeof longp - 1);
  longp[0] = '/';
  longp[sizeof longp - 1] = '\0';
  assert_int_equal(souk__rl_route("GET", longp, 0, &bad), SOUK_ETOOBIG);
}

static void test_route_old_message_delete(void **state) {
  uint64_t now = 1700000000000ull;
  uint64_t fresh = (now - 3600000ull - SOUK_DISCORD_EPOCH_MS) << 22;
  uint64_t old = (now - 15ull * 86400000ull - SOUK_DISCORD_EPOCH_MS) << 22;
  char p[96];
  souk__rl_route_t a, b;
  snprintf(p, sizeof p, "/channels/1/messages/%llu", (unsigned long long)fresh);
  assert_int_equal(souk__rl_route("DELETE", p, now, &a), 0);
  snprintf(p, sizeof p, "/channels/1/messages/%llu", (unsigned long long)old);
  assert_int_equal(souk__rl_route("DELETE", p, now, &b), 0);
  assert_string_equal(a.key, "DELETE /channels/{id}/messages/{id}");
  assert_string_equal(b.key, "DELETE /channels/{id}/messages/{id} (old)");
  /* Its own bucket: a different key from PATCH on the same message. */
  souk__rl_route_t c;
  assert_int_equal(souk__rl_route("PATCH", p, now, &c), 0);
  assert_string_not_equal(a.key, c.key);
}

static void test_secs_ms(void **state) {
  struct {
    const char *s;
    uint64_t ms;
  } ok[] = {{"0.537", 537}, {"1", 1000},     {"0.5371", 538}, {"64.57", 64570},
            {"0.0001", 1},  {"1.000", 1000}, {"0", 0},        {" 2.5 ", 2500},
            {".25", 250},   {"5.37e-1", 537}, {"1.9999", 2000}};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    uint64_t ms = 99;
    assert_int_equal(souk__rl_secs_ms(ok[i].s, strlen(ok[i].s), &ms), 0);
    assert_int_equal(ms, ok[i].ms);
  }
  const char *bad[] = {"", "abc", "-1", "1.2.3", "1s", ".", "99999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    uint64_t ms;
    assert_int_equal(souk__rl_secs_ms(bad[i], strlen(bad[i]), &ms), SOUK_EINVAL);
  }
}

/* ---- buckets ----------------------------------------------------------- */

static void test_unknown_route_serialises(void **state) {
  souk__rl_t *rl = new_rl(0, 0, 0);
  souk__rl_route_t r = route("POST", "/channels/1/messages");
  souk__rl_ticket_t a, b;
  uint64_t w;
  assert_int_equal(acquire(rl, &r, &a, NULL), 0);
  /* The bucket is unknown: the second waits for the first's response. */
  assert_int_equal(acquire(rl, &r, &b, &w), SOUK_EBUSY);
  assert_true(w == SOUK_RL_WAIT_EVENT);
  assert_int_equal(souk__rl_when(rl, &r, &w), SOUK_EBUSY);
  t_now += 5000;
  assert_int_equal(acquire(rl, &r, &b, &w), SOUK_EBUSY); /* time alone does not help */
  record(rl, &a, resp(200, "abc", "5", "4", "2.0"));
  assert_int_equal(acquire(rl, &r, &b, NULL), 0);
  souk__rl_release(rl, &b);
  souk__rl_free(rl);
}

static void test_discovery_then_parallel(void **state) {
  souk__rl_t *rl = new_rl(0, 0, 0);
  souk__rl_route_t r = route("POST", "/channels/1/messages");
  souk__rl_ticket_t t[8];
  uint64_t w;
  assert_int_equal(acquire(rl, &r, &t[0], NULL), 0);
  record(rl, &t[0], resp(200, "abc", "5", "4", "1.0"));
  /* Known: four may be in flight at once, the fifth waits for the reset. */
  for (int i = 0; i < 4; i++) assert_int_equal(acquire(rl, &r, &t[i], NULL), 0);
  t_now += 100;
  assert_int_equal(acquire(rl, &r, &t[4], &w), SOUK_EBUSY);
  assert_int_equal(w, 900);
  for (int i = 0; i < 4; i++) {
    char rem[4];
    snprintf(rem, sizeof rem, "%d", 3 - i);
    record(rl, &t[i], resp(200, "abc", "5", rem, "0.9"));
  }
  assert_int_equal(acquire(rl, &r, &t[4], &w), SOUK_EBUSY);
  assert_int_equal(w, 900);
  t_now += 900;
  /* The window has reset: the whole limit is available again. */
  for (int i = 0; i < 5; i++) assert_int_equal(acquire(rl, &r, &t[i], NULL), 0);
  assert_int_equal(acquire(rl, &r, &t[5], &w), SOUK_EBUSY);
  assert_true(w == SOUK_RL_WAIT_EVENT);
  for (int i = 0; i < 5; i++) souk__rl_release(rl, &t[i]);
  souk__rl_free(rl);
}

static void test_shared_hash_across_routes(void **state) {
  souk__rl_t *rl = new_rl(0, 0, 0);
  souk__rl_route_t r1 = route("GET", "/channels/1/messages");
  souk__rl_route_t r2 = route("GET", "/channels/1/messages/99");
  souk__rl_ticket_t a, b, c;
  uint64_t w;
  assert_int_equal(acquire(rl, &r1, &a, NULL), 0);
  assert_int_equal(acquire(rl, &r2, &b, NULL), 0); /* each route is unknown */
  record(rl, &a, resp(200, "h1", "3", "2", "5"));
  record(rl, &b, resp(200, "h1", "3", "1", "5"));
  /* One counter for both routes: one use left. */
  assert_int_equal(acquire(rl, &r1, &a, NULL), 0);
  assert_int_equal(acquire(rl, &r2, &c, &w), SOUK_EBUSY);
  assert_int_equal(w, 5000);
  assert_int_equal(acquire(rl, &r1, &c, &w), SOUK_EBUSY);
  souk__rl_release(rl, &a);
  assert_int_equal(acquire(rl, &r2, &c, NULL), 0);
  souk__rl_release(rl, &c);
  souk__rl_stats_t st;
  souk__rl_stats(rl, &st);
  assert_int_equal(st.routes, 2);
  souk__rl_free(rl);
}

static void test_major_params_separate(void **state) {
  souk__rl_t *rl = new_rl(0, 0, 0);
  souk__rl_route_t c1 = route("POST", "/channels/1/messages");
  souk__rl_route_t c2 = route("POST", "/channels/2/messages");
  souk__rl_route_t g1 = route("POST", "/guilds/1/channels");
  souk__rl_ticket_t t;
  uint64_t w;
  assert_int_equal(acquire(rl, &c1, &t, NULL), 0);
  record(rl, &t, resp(200, "msg", "1", "0", "3"));
  assert_int_equal(acquire(rl, &c1, &t, &w), SOUK_EBUSY);
  assert_int_equal(w, 3000);
  /* Same route and hash, another channel: its own counter. */
  assert_int_equal(acquire(rl, &c2, &t, NULL), 0);
  record(rl, &t, resp(200, "msg", "1", "0", "3"));
  /* Guild 1 is not channel 1. */
  assert_int_equal(acquire(rl, &g1, &t, NULL), 0);
  souk__rl_release(rl, &t);
  souk__rl_free(rl);
}

static void test_fractional_reset_after(void **state) {
  souk__rl_t *rl = new_rl(0, 0, 0);
  souk__rl_route_t r = route("PATCH", "/channels/7");
  souk__rl_ticket_t t;
  uint64_t w;
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  record(rl, &t, resp(200, "ch", "2", "0", "0.537"));
  /* 0.537 s is 537 ms: neither truncated to 0 nor rounded to 1000. */
  assert_int_equal(souk__rl_when(rl, &r, &w), SOUK_EBUSY);
  assert_int_equal(w, 537);
  t_now += 536;
  assert_int_equal(acquire(rl, &r, &t, &w), SOUK_EBUSY);
  assert_int_equal(w, 1);
  t_now += 1;
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  souk__rl_release(rl, &t);
  souk__rl_free(rl);
}

static void test_reset_header_when_no_reset_after(void **state) {
  souk__rl_t *rl = new_rl(0, 0, 0);
  souk__rl_route_t r = route("GET", "/guilds/9");
  souk__rl_ticket_t t;
  uint64_t w;
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  souk__rl_resp_t x = resp(200, "g", "1", "0", NULL);
  x.reset = "1700000001.250";
  x.unix_now_ms = 1700000000000ull;
  record(rl, &t, x);
  assert_int_equal(souk__rl_when(rl, &r, &w), SOUK_EBUSY);
  assert_int_equal(w, 1250);
  souk__rl_free(rl);
}

static void test_reserve_prevents_overshoot(void **state) {
  souk__rl_t *rl = new_rl(0, 0, 0);
  souk__rl_route_t r = route("GET", "/channels/3/pins");
  souk__rl_ticket_t t[4];
  uint64_t w;
  assert_int_equal(acquire(rl, &r, &t[0], NULL), 0);
  souk__rl_resp_t x = resp(200, "p", "3", "2", "10");
  x.reset = "1700000010";
  record(rl, &t[0], x);
  /* Two may go concurrently; the third sees both reservations. */
  assert_int_equal(acquire(rl, &r, &t[0], NULL), 0);
  assert_int_equal(acquire(rl, &r, &t[1], NULL), 0);
  assert_int_equal(acquire(rl, &r, &t[2], &w), SOUK_EBUSY);
  assert_int_equal(w, 10000);
  /* Responses arrive out of order: the later one (remaining 0) first. */
  x.remaining = "0";
  record(rl, &t[1], x);
  x.remaining = "1";
  record(rl, &t[0], x); /* overtaken: must not give a use back */
  assert_int_equal(acquire(rl, &r, &t[2], &w), SOUK_EBUSY);
  assert_int_equal(w, 10000);
  /* A response from an older window is ignored entirely. */
  assert_int_equal(souk__rl_when(rl, &r, &w), SOUK_EBUSY);
  t_now += 10000;
  assert_int_equal(acquire(rl, &r, &t[0], NULL), 0);
  x.reset = "1700000005"; /* stale window */
  x.remaining = "2";
  record(rl, &t[0], x);
  /* The fresh window (limit 3) stands: three may go. */
  for (int i = 0; i < 3; i++) assert_int_equal(acquire(rl, &r, &t[i], NULL), 0);
  assert_int_equal(acquire(rl, &r, &t[3], &w), SOUK_EBUSY);
  for (int i = 0; i < 3; i++) souk__rl_release(rl, &t[i]);
  souk__rl_free(rl);
}

static void test_no_response_spends_a_use(void **state) {
  souk__rl_t *rl = new_rl(0, 0, 0);
  souk__rl_route_t r = route("POST", "/channels/4/typing");
  souk__rl_ticket_t t;
  uint64_t w;
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  record(rl, &t, resp(204, "ty", "2", "1", "5"));
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  record(rl, &t, resp(0, NULL, NULL, NULL, NULL)); /* timed out */
  assert_int_equal(acquire(rl, &r, &t, &w), SOUK_EBUSY);
  assert_int_equal(w, 5000);
  souk__rl_free(rl);
}

static void test_route_without_limits_is_parallel(void **state) {
  souk__rl_t *rl = new_rl(0, 0, 0);
  souk__rl_route_t r = route("GET", "/gateway");
  souk__rl_ticket_t t[3];
  assert_int_equal(acquire(rl, &r, &t[0], NULL), 0);
  record(rl, &t[0], resp(200, NULL, NULL, NULL, NULL));
  for (int i = 0; i < 3; i++) assert_int_equal(acquire(rl, &r, &t[i], NULL), 0);
  for (int i = 0; i < 3; i++) souk__rl_release(rl, &t[i]);
  souk__rl_free(rl);
}

/* ---- global limit ------------------------------------------------------ */

static souk__rl_route_t guild_route(int i) {
  char p[48];
  snprintf(p, sizeof p, "/guilds/%d/roles", i);
  return route("GET", p);
}

/* Acquire-or-wait on distinct guilds until n requests went; their send
 * times in out. */
static void send_paced(souk__rl_t *rl, int first, int n, uint64_t *out) {
  for (int i = 0; i < n;) {
    souk__rl_route_t r = guild_route(first + i);
    souk__rl_ticket_t t;
    uint64_t w = 0;
    int rc = acquire(rl, &r, &t, &w);
    if (rc == SOUK_EBUSY) {
      assert_true(w > 0 && w <= 1000);
      t_now += w;
      continue;
    }
    assert_int_equal(rc, 0);
    souk__rl_release(rl, &t);
    out[i++] = t_now;
  }
}

/* Most sends in any window [a, a + len) of the send times. */
static int max_in_window(const uint64_t *at, int n, uint64_t len) {
  int best = 0;
  for (int i = 0, j = 0; i < n; i++) {
    while (at[i] - at[j] >= len)
      j++;
    if (i - j + 1 > best) best = i - j + 1;
  }
  return best;
}

static void test_global_limit(void **state) {
  /* Discord's 50 a second with 5 held back: one request every 22.2 ms. */
  souk__rl_conf_t c = {.global_per_s = 50, .global_margin = 5};
  souk__rl_t *rl = souk__rl_new(&c, &fake_clock);
  souk__rl_ticket_t t;
  uint64_t w;
  souk__rl_route_t r0 = guild_route(0), r1 = guild_route(1);
  assert_int_equal(acquire(rl, &r0, &t, NULL), 0);
  souk__rl_release(rl, &t);
  /* The next waits for its turn, even on another bucket. */
  assert_int_equal(acquire(rl, &r1, &t, &w), SOUK_EBUSY);
  assert_int_equal(w, 23);
  /* Interaction callbacks are exempt. */
  for (int i = 0; i < 10; i++) {
    char p[64];
    snprintf(p, sizeof p, "/interactions/%d/tok/callback", 100 + i);
    souk__rl_route_t cbr = route("POST", p);
    assert_int_equal(acquire(rl, &cbr, &t, NULL), 0);
    souk__rl_release(rl, &t);
  }
  /* A backlog of 300 goes out evenly: never two within 22 ms, 45 a second,
   * so that a server counting 50 in windows of its own, at any phase,
   * never sees more than 50 even with 85 ms of arrival jitter. */
  static uint64_t at[300];
  send_paced(rl, 10, 300, at);
  for (int i = 1; i < 300; i++)
    assert_true(at[i] - at[i - 1] >= 22);
  assert_true(max_in_window(at, 300, 1000) <= 46);
  assert_true(max_in_window(at, 300, 1085) <= 50);
  uint64_t span = at[299] - at[0];
  assert_true(span >= 299 * 22 && span <= 299 * 23);
  souk__rl_free(rl);

  /* Without a margin, spreading alone keeps 50 in any second. */
  souk__rl_conf_t c0 = {.global_per_s = 50};
  rl = souk__rl_new(&c0, &fake_clock);
  send_paced(rl, 1000, 300, at);
  assert_true(max_in_window(at, 300, 1000) <= 50);
  assert_true(at[299] - at[0] <= 299 * 20 + 1);
  souk__rl_free(rl);

  /* A burst allowance lets a few go at once after a quiet spell. */
  souk__rl_conf_t cb = {.global_per_s = 50, .global_margin = 10, .global_burst = 3};
  rl = souk__rl_new(&cb, &fake_clock);
  t_now += 5000;
  for (int i = 0; i < 3; i++) {
    souk__rl_route_t r = guild_route(2000 + i);
    assert_int_equal(acquire(rl, &r, &t, NULL), 0);
    souk__rl_release(rl, &t);
  }
  souk__rl_route_t r = guild_route(2003);
  assert_int_equal(acquire(rl, &r, &t, &w), SOUK_EBUSY);
  assert_int_equal(w, 25);
  souk__rl_free(rl);
}

/* A backend of the global limit's decision, standing in for a shared
 * counter (issue 15): the limiter asks it, counts sends through it, tells
 * it about global 429s and frees it. */
static struct {
  uint64_t wait;
  int waits, takes, destroyed;
  uint64_t blocked_until, last_take;
} FB;
static uint64_t fb_wait(void *self, uint64_t now) {
  assert_ptr_equal(self, &FB);
  FB.waits++;
  return FB.wait;
}
static void fb_take(void *self, uint64_t now) {
  FB.takes++;
  FB.last_take = now;
}
static void fb_blocked(void *self, uint64_t until) { FB.blocked_until = until; }
static void fb_destroy(void *self) { FB.destroyed++; }
static const souk__rl_global_ops_t fb_ops = {fb_wait, fb_take, fb_blocked, fb_destroy};

static void test_global_backend(void **state) {
  memset(&FB, 0, sizeof FB);
  souk__rl_global_t g = {&fb_ops, &FB};
  souk__rl_conf_t c = {.global = &g};
  souk__rl_t *rl = souk__rl_new(&c, &fake_clock);
  souk__rl_route_t r = route("POST", "/channels/8/messages");
  souk__rl_ticket_t t;
  uint64_t w;
  FB.wait = 7;
  assert_int_equal(acquire(rl, &r, &t, &w), SOUK_EBUSY);
  assert_int_equal(w, 7);
  assert_int_equal(FB.takes, 0);
  FB.wait = 0;
  assert_int_equal(acquire(rl, &r, &t, &w), 0);
  assert_int_equal(FB.takes, 1);
  assert_int_equal(FB.last_take, t_now);
  /* A global 429 is passed on, and also kept here. */
  souk__rl_resp_t x = {.status = 429, .global = "true", .scope = "global"};
  x.body = "{\"retry_after\":0.5,\"global\":true}";
  x.body_len = strlen(x.body);
  souk__rl_verdict_t v;
  souk__rl_record(rl, &t, &x, &v);
  assert_int_equal(FB.blocked_until, t_now + 500);
  assert_int_equal(acquire(rl, &r, &t, &w), SOUK_EBUSY);
  assert_int_equal(w, 500);
  /* Callbacks never ask it. */
  int waits = FB.waits;
  souk__rl_route_t cb = route("POST", "/interactions/1/tok/callback");
  FB.wait = 1000;
  assert_int_equal(acquire(rl, &cb, &t, NULL), 0);
  souk__rl_release(rl, &t);
  assert_int_equal(FB.waits, waits);
  souk__rl_free(rl);
  assert_int_equal(FB.destroyed, 1);
  /* The in-process backend refuses a margin that leaves nothing. */
  souk__rl_global_t lg;
  assert_int_equal(souk__rl_global_local(50, 50, 1, &lg), SOUK_EINVAL);
  assert_int_equal(souk__rl_global_local(0, 0, 1, &lg), SOUK_EINVAL);
}

/* ---- 429s -------------------------------------------------------------- */

static void test_429_user(void **state) {
  souk__rl_t *rl = new_rl(0, 0, 0);
  souk__rl_route_t r = route("POST", "/channels/8/messages");
  souk__rl_route_t other = route("POST", "/channels/9/messages");
  souk__rl_ticket_t t;
  uint64_t w;
  souk__rl_verdict_t v;
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  souk__rl_resp_t x = resp(429, "m", "5", "0", "0.2");
  x.scope = "user";
  x.retry_after = "1";
  x.body = "{\"message\":\"You are being rate limited.\",\"retry_after\":0.234,\"global\":false}";
  x.body_len = strlen(x.body);
  souk__rl_record(rl, &t, &x, &v);
  assert_true(v.retry);
  assert_true(v.invalid);
  assert_int_equal(v.scope, SOUK_RL_SCOPE_USER);
  assert_int_equal(v.wait_ms, 234); /* the body's float, not Retry-After's 1 s */
  assert_int_equal(acquire(rl, &r, &t, &w), SOUK_EBUSY);
  assert_int_equal(w, 234);
  assert_int_equal(acquire(rl, &other, &t, NULL), 0); /* another bucket is unaffected */
  souk__rl_release(rl, &t);
  t_now += 234;
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  souk__rl_release(rl, &t);
  souk__rl_stats_t st;
  souk__rl_stats(rl, &st);
  assert_int_equal(st.invalid_count, 1);
  assert_int_equal(st.r429[SOUK_RL_SCOPE_USER], 1);
  souk__rl_free(rl);
}

static void test_429_shared_not_invalid(void **state) {
  souk__rl_t *rl = new_rl(0, 0, 0);
  souk__rl_route_t r = route("PUT", "/channels/8/messages/1/reactions/x/@me");
  souk__rl_ticket_t t;
  uint64_t w;
  souk__rl_verdict_t v;
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  souk__rl_resp_t x = {.status = 429, .scope = "shared", .retry_after = "3"};
  souk__rl_record(rl, &t, &x, &v);
  assert_true(v.retry);
  assert_false(v.invalid);
  assert_int_equal(v.scope, SOUK_RL_SCOPE_SHARED);
  assert_int_equal(v.wait_ms, 3000);
  assert_int_equal(acquire(rl, &r, &t, &w), SOUK_EBUSY);
  assert_int_equal(w, 3000);
  souk__rl_stats_t st;
  souk__rl_stats(rl, &st);
  assert_int_equal(st.invalid_count, 0);
  assert_int_equal(st.r429[SOUK_RL_SCOPE_SHARED], 1);
  souk__rl_free(rl);
}

static void test_429_global(void **state) {
  souk__rl_t *rl = new_rl(0, 0, 0);
  souk__rl_route_t r = route("POST", "/channels/8/messages");
  souk__rl_route_t other = route("GET", "/guilds/3");
  souk__rl_route_t cb = route("POST", "/interactions/1/tok/callback");
  souk__rl_ticket_t t;
  uint64_t w;
  souk__rl_verdict_t v;
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  souk__rl_resp_t x = {.status = 429, .global = "true", .scope = "global", .retry_after = "2"};
  x.body = "{\"message\":\"You are being rate limited.\",\"retry_after\":1.5,\"global\":true}";
  x.body_len = strlen(x.body);
  souk__rl_record(rl, &t, &x, &v);
  assert_int_equal(v.scope, SOUK_RL_SCOPE_GLOBAL);
  assert_int_equal(v.wait_ms, 1500);
  assert_true(v.invalid);
  assert_int_equal(acquire(rl, &other, &t, &w), SOUK_EBUSY);
  assert_int_equal(w, 1500);
  assert_int_equal(acquire(rl, &cb, &t, NULL), 0); /* callbacks still go */
  souk__rl_release(rl, &t);
  t_now += 1500;
  assert_int_equal(acquire(rl, &other, &t, NULL), 0);
  souk__rl_release(rl, &t);

  /* Only the body says global. */
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  souk__rl_resp_t y = {.status = 429};
  y.body = "{\"retry_after\":0.75,\"global\":true}";
  y.body_len = strlen(y.body);
  souk__rl_record(rl, &t, &y, &v);
  assert_int_equal(v.scope, SOUK_RL_SCOPE_GLOBAL);
  assert_int_equal(acquire(rl, &other, &t, &w), SOUK_EBUSY);
  assert_int_equal(w, 750);

  /* Cloudflare's 429 (HTML, no Discord headers) stops everything too. */
  t_now += 750;
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  souk__rl_resp_t z = {.status = 429, .retry_after = "4"};
  z.body = "<html>error code: 1015</html>";
  z.body_len = strlen(z.body);
  souk__rl_record(rl, &t, &z, &v);
  assert_int_equal(v.scope, SOUK_RL_SCOPE_GLOBAL);
  assert_int_equal(acquire(rl, &other, &t, &w), SOUK_EBUSY);
  assert_int_equal(w, 4000);
  souk__rl_free(rl);
}

/* ---- invalid requests -------------------------------------------------- */

static void test_invalid_window(void **state) {
  souk__rl_t *rl = new_rl(1000, 10, 0);
  souk__rl_route_t r = route("GET", "/guilds/1/bans");
  souk__rl_ticket_t t;
  uint64_t w;
  t_now = 600000; /* slot-aligned start */
  for (int i = 0; i < 6; i++) {
    assert_int_equal(acquire(rl, &r, &t, NULL), 0);
    record(rl, &t, resp(403, NULL, NULL, NULL, NULL));
  }
  t_now += 300000;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(acquire(rl, &r, &t, NULL), 0);
    record(rl, &t, resp(401, NULL, NULL, NULL, NULL));
  }
  assert_false(souk__rl_blocked(rl));
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  record(rl, &t, resp(403, NULL, NULL, NULL, NULL));
  /* Ten in the window: refused, with how long until the oldest leave. */
  assert_true(souk__rl_blocked(rl));
  assert_int_equal(acquire(rl, &r, &t, &w), SOUK_ERATELIMIT);
  assert_int_equal(w, 301000);
  souk__rl_stats_t st;
  souk__rl_stats(rl, &st);
  assert_int_equal(st.invalid_count, 10);
  assert_true(st.invalid_tripped);
  /* The window slides: the first six leave 600-601 s after they came. */
  t_now += 300000;
  assert_int_equal(acquire(rl, &r, &t, NULL), SOUK_ERATELIMIT);
  t_now += 999;
  assert_int_equal(acquire(rl, &r, &t, NULL), SOUK_ERATELIMIT);
  t_now += 1;
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  souk__rl_release(rl, &t);
  souk__rl_stats(rl, &st);
  assert_int_equal(st.invalid_count, 4);
  assert_false(st.invalid_tripped);
  /* Much later everything has gone. */
  t_now += 10ull * 3600 * 1000;
  souk__rl_stats(rl, &st);
  assert_int_equal(st.invalid_count, 0);
  souk__rl_free(rl);
}

/* ---- memory ------------------------------------------------------------ */

static void test_idle_expiry(void **state) {
  souk__rl_t *rl = new_rl(1000, 0, 1000);
  souk__rl_ticket_t t, held, blocked;
  for (int i = 0; i < 100; i++) {
    souk__rl_route_t r = guild_route(i);
    assert_int_equal(acquire(rl, &r, &t, NULL), 0);
    record(rl, &t, resp(200, "gr", "5", "4", "0.5"));
  }
  souk__rl_route_t rh = guild_route(500);
  assert_int_equal(acquire(rl, &rh, &held, NULL), 0); /* stays in flight */
  souk__rl_route_t rb = guild_route(501);
  assert_int_equal(acquire(rl, &rb, &blocked, NULL), 0);
  record(rl, &blocked, resp(200, "gr", "1", "0", "60"));
  souk__rl_stats_t st;
  souk__rl_stats(rl, &st);
  assert_true(st.buckets >= 102);
  t_now += 999;
  assert_int_equal(souk__rl_sweep(rl), 0);
  t_now += 1;
  /* All idle ones go; the in-flight and the exhausted-until-reset stay. */
  souk__rl_sweep(rl);
  souk__rl_stats(rl, &st);
  assert_int_equal(st.buckets, 2);
  assert_int_equal(st.routes, 1); /* routes are kept 12x longer */
  souk__rl_release(rl, &held);
  t_now += 60000;
  souk__rl_sweep(rl);
  souk__rl_stats(rl, &st);
  assert_int_equal(st.buckets, 0);
  assert_int_equal(st.routes, 0);
  /* Sweeping also happens on its own as requests come. */
  for (int i = 0; i < 50; i++) {
    souk__rl_route_t r = guild_route(1000 + i);
    assert_int_equal(acquire(rl, &r, &t, NULL), 0);
    souk__rl_release(rl, &t);
  }
  t_now += 5000;
  souk__rl_route_t r = guild_route(7);
  assert_int_equal(acquire(rl, &r, &t, NULL), 0);
  souk__rl_release(rl, &t);
  souk__rl_stats(rl, &st);
  assert_true(st.buckets <= 1);
  souk__rl_free(rl);
}

int main(void) {
  souk_log_set_level(SOUK_LOG_OFF);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_route_keys, setup),
      cmocka_unit_test_setup(test_route_old_message_delete, setup),
      cmocka_unit_test_setup(test_secs_ms, setup),
      cmocka_unit_test_setup(test_unknown_route_serialises, setup),
      cmocka_unit_test_setup(test_discovery_then_parallel, setup),
      cmocka_unit_test_setup(test_shared_hash_across_routes, setup),
      cmocka_unit_test_setup(test_major_params_separate, setup),
      cmocka_unit_test_setup(test_fractional_reset_after, setup),
      cmocka_unit_test_setup(test_reset_header_when_no_reset_after, setup),
      cmocka_unit_test_setup(test_reserve_prevents_overshoot, setup),
      cmocka_unit_test_setup(test_no_response_spends_a_use, setup),
      cmocka_unit_test_setup(test_route_without_limits_is_parallel, setup),
      cmocka_unit_test_setup(test_global_limit, setup),
      cmocka_unit_test_setup(test_global_backend, setup),
      cmocka_unit_test_setup(test_429_user, setup),
      cmocka_unit_test_setup(test_429_shared_not_invalid, setup),
      cmocka_unit_test_setup(test_429_global, setup),
      cmocka_unit_test_setup(test_invalid_window, setup),
      cmocka_unit_test_setup(test_idle_expiry, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
