/* Unit tests for the small foundations: error table, URLs, snowflakes, the
 * worker pool, clocks, the PRNG and the allocation wrappers. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include <cmocka.h>
/* clang-format on */

#include "discord/snowflake.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/loop.h"
#include "souk/url.h"

/* ---- errors ---- */

static void test_errors(void **state) {
#define ERR_ROW(name, msg) {SOUK_##name, #name, msg},
  static const struct {
    int code;
    const char *name, *msg;
  } errs[] = {SOUK_ERRNO_MAP(ERR_ROW)};
#undef ERR_ROW
  size_t n = sizeof errs / sizeof *errs;
  assert_int_equal(n, (size_t)(SOUK__EMAX - SOUK__EBASE - 1));
  for (size_t i = 0; i < n; i++) {
    assert_true(errs[i].code < 0);
    assert_true(errs[i].code > SOUK__EBASE && errs[i].code < SOUK__EMAX);
    assert_string_equal(souk_strerror(errs[i].code), errs[i].msg);
    assert_string_equal(souk_errname(errs[i].code), errs[i].name);
    assert_true(errs[i].name[0] == 'E');
    for (size_t k = 0; k < i; k++) {
      assert_int_not_equal(errs[i].code, errs[k].code);
      assert_string_not_equal(errs[i].msg, errs[k].msg);
    }
  }
  assert_string_equal(souk_strerror(SOUK_ETIMEDOUT), "timed out");
  assert_string_equal(souk_errname(SOUK_ERANGE), "ERANGE");
  assert_string_equal(souk_strerror(0), "success");
  assert_string_equal(souk_errname(0), "OK");
  /* Negative errno values from the OS pass through. */
  assert_string_equal(souk_strerror(-ENOENT), strerror(ENOENT));
  assert_string_equal(souk_strerror(-ECONNREFUSED), strerror(ECONNREFUSED));
  assert_string_equal(souk_errname(-ENOENT), "EUNKNOWN");
  /* Anything else is unknown, never NULL. */
  assert_string_equal(souk_strerror(1), "unknown error");
  assert_string_equal(souk_strerror(-5000), "unknown error");
  assert_string_equal(souk_errname(12345), "EUNKNOWN");
  assert_non_null(souk_strerror(SOUK__EBASE));
  assert_non_null(souk_strerror(SOUK__EMAX));
}

/* ---- URLs ---- */

static void test_url_good(void **state) {
  static const struct {
    const char *url, *scheme, *host;
    int port;
    const char *path;
    bool tls;
  } good[] = {
      {"https://discord.com/api/v10", "https", "discord.com", 443, "/api/v10", true},
      {"wss://gateway.discord.gg/?v=10&encoding=json", "wss", "gateway.discord.gg", 443,
       "/?v=10&encoding=json", true},
      {"wss://gateway.discord.gg?v=10", "wss", "gateway.discord.gg", 443, "/?v=10", true},
      {"http://127.0.0.1:8080", "http", "127.0.0.1", 8080, "/", false},
      {"ws://localhost:9000/ws/x", "ws", "localhost", 9000, "/ws/x", false},
      {"ws://[::1]:9000/ws", "ws", "::1", 9000, "/ws", false},
      {"http://[2001:db8::1]/x?y", "http", "2001:db8::1", 80, "/x?y", false},
      {"https://[fe80::1%25eth0]", "https", "fe80::1%25eth0", 443, "/", true},
      {"HTTPS://Example.COM/A", "https", "Example.COM", 443, "/A", true},
      {"https://api.hypixel.net?key=x", "https", "api.hypixel.net", 443, "/?key=x", true},
      {"https://api.hypixel.net/v2/skyblock/auctions?page=0", "https", "api.hypixel.net", 443,
       "/v2/skyblock/auctions?page=0", true},
      {"postgres://user:pw@db:5432/souk", "postgres", "db", 5432, "/souk", false},
      {"postgresql://db.internal", "postgresql", "db.internal", 5432, "/", false},
      {"redis://localhost", "redis", "localhost", 6379, "/", false},
      {"redis://:p@ss@127.0.0.1:6380/0", "redis", "127.0.0.1", 6380, "/0", false},
      {"ftp://files.example.com/x", "ftp", "files.example.com", 0, "/x", false},
      {"svn+ssh://host/repo", "svn+ssh", "host", 0, "/repo", false},
      {"http://h:65535/", "http", "h", 65535, "/", false},
      {"http://h:00080/", "http", "h", 80, "/", false},
      {"http://h/p#frag", "http", "h", 80, "/p", false},
      {"http://h#frag", "http", "h", 80, "/", false},
      {"http://h?q=1#frag", "http", "h", 80, "/?q=1", false},
      {"http://h/a/b?c=d/e@f:g", "http", "h", 80, "/a/b?c=d/e@f:g", false},
  };
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    souk_url_t u;
    memset(&u, 0, sizeof u);
    int rc = souk_url_parse(good[i].url, &u);
    if (rc != 0) fail_msg("rejected %s (%d)", good[i].url, rc);
    assert_string_equal(u.scheme, good[i].scheme);
    if (strcmp(u.host, good[i].host) != 0)
      fail_msg("%s: host \"%s\", want \"%s\"", good[i].url, u.host, good[i].host);
    assert_int_equal(u.port, good[i].port);
    if (strcmp(u.path, good[i].path) != 0)
      fail_msg("%s: path \"%s\", want \"%s\"", good[i].url, u.path, good[i].path);
    assert_int_equal(u.tls, good[i].tls);
    souk_url_free(&u);
    assert_null(u.host);
    souk_url_free(&u); /* twice is harmless */
  }
}

static void test_url_bad(void **state) {
  static const char *const bad[] = {
      "",
      "h",
      "discord.com/api",
      "://h",
      "http:/h",
      "http:h",
      "http://",
      "http:///p",
      "http://?q",
      "http://:80",
      "http://h:",
      "http://h:/p",
      "http://h:abc",
      "http://h:-1",
      "http://h:+80",
      "http://h:65536",
      "http://h:99999999999999999999",
      "http://h:0",
      "http://h:80:90",
      "http://[::1",
      "http://[::1]x",
      "http://[::1]:",
      "http://[]/",
      "http://::1/",
      "ht tp://h",
      "1http://h",
      "-http://h",
      "http://user@/",
      "http://user@",
      "http://exa mple.com/",
      "http://h/pa th",
      "http://h/\r\nX-Injected: 1",
      "http://h\t/",
  };
  souk_url_t u;
  memset(&u, 0x5a, sizeof u);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = souk_url_parse(bad[i], &u);
    if (rc != SOUK_EINVAL) {
      fail_msg("accepted \"%s\" (rc %d)", bad[i], rc);
    }
    /* u is untouched on error. */
    const unsigned char *p = (const unsigned char *)&u;
    for (size_t k = 0; k < sizeof u; k++)
      assert_int_equal(p[k], 0x5a);
  }
  assert_int_equal(souk_url_parse(NULL, &u), SOUK_EINVAL);
}

/* ---- snowflakes ---- */

static void test_snowflake(void **state) {
  uint64_t id = 1;
  /* The example from Discord's reference docs. */
  assert_int_equal(souk__snowflake_parse("175928847299117063", &id), 0);
  assert_true(id == UINT64_C(175928847299117063));
  assert_true(souk__snowflake_unix_ms(id) == UINT64_C(1462015105796));
  assert_true(souk__snowflake_unix_ms(0) == SOUK_DISCORD_EPOCH_MS);
  assert_int_equal(souk__snowflake_parse("10000000000000000", &id), 0); /* 17 digits */
  assert_true(id == UINT64_C(10000000000000000));
  assert_int_equal(souk__snowflake_parse("1105838371418411069", &id), 0);
  assert_true(id == UINT64_C(1105838371418411069));
  assert_int_equal(souk__snowflake_parse("18446744073709551615", &id), 0);
  assert_true(id == UINT64_MAX);

  id = 77;
  static const char *const bad[] = {
      "",
      "0",
      "1234567890123456",      /* 16 digits */
      "123456789012345678901", /* 21 digits */
      "00000000000000000",     /* zero */
      "1234567890123456a",
      " 175928847299117063",
      "175928847299117063 ",
      "-175928847299117063",
      "+175928847299117063",
      "17592884729911706.3",
      "<@175928847299117063>",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    if (souk__snowflake_parse(bad[i], &id) != SOUK_EINVAL) fail_msg("accepted \"%s\"", bad[i]);
    assert_true(id == 77);
  }
  assert_int_equal(souk__snowflake_parse(NULL, &id), SOUK_EINVAL);
  assert_int_equal(souk__snowflake_parse("18446744073709551616", &id), SOUK_ERANGE);
  assert_int_equal(souk__snowflake_parse("99999999999999999999", &id), SOUK_ERANGE);
  assert_true(id == 77);
}

/* ---- worker pool ---- */

typedef struct job {
  uv_thread_t loop_thread;
  int in;
  int out;
  bool work_off_loop;
  bool done_on_loop;
  int status;
  int done_calls;
  unsigned pending_seen;
} job_t;

static void job_work(void *ud) {
  job_t *j = ud;
  uv_thread_t self = uv_thread_self();
  j->work_off_loop = !uv_thread_equal(&self, &j->loop_thread);
  uv_sleep(5);
  j->out = j->in * j->in;
}

static void job_done(void *ud, int status) {
  job_t *j = ud;
  uv_thread_t self = uv_thread_self();
  j->done_on_loop = uv_thread_equal(&self, &j->loop_thread);
  j->status = status;
  j->done_calls++;
  j->pending_seen = souk_work_pending();
}

static int g_plain_runs;
static void plain_work(void *ud) { g_plain_runs++; }

static void test_work(void **state) {
  enum { N = 16 };
  job_t jobs[N];
  memset(jobs, 0, sizeof jobs);
  uv_loop_t *loop = souk_loop();
  assert_non_null(loop);
  assert_ptr_equal(souk_loop(), loop);
  assert_int_equal(souk_work_pending(), 0);
  for (int i = 0; i < N; i++) {
    jobs[i].loop_thread = uv_thread_self();
    jobs[i].in = i;
    assert_int_equal(souk_work_submit(job_work, job_done, &jobs[i]), 0);
    assert_int_equal(souk_work_pending(), (unsigned)i + 1);
  }
  /* Nothing completes until the loop runs. */
  for (int i = 0; i < N; i++)
    assert_int_equal(jobs[i].done_calls, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(souk_work_pending(), 0);
  unsigned seen_sum = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(jobs[i].done_calls, 1);
    assert_int_equal(jobs[i].status, 0);
    assert_true(jobs[i].work_off_loop);
    assert_true(jobs[i].done_on_loop);
    assert_int_equal(jobs[i].out, i * i); /* work's result is visible in done */
    assert_true(jobs[i].pending_seen < N);
    seen_sum += jobs[i].pending_seen;
  }
  /* Each done saw the count without itself: N-1, N-2, ..., 0 in some order. */
  assert_int_equal(seen_sum, N * (N - 1) / 2);

  /* done may be NULL; work may not. */
  assert_int_equal(souk_work_submit(plain_work, NULL, NULL), 0);
  assert_int_equal(souk_work_pending(), 1);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(g_plain_runs, 1);
  assert_int_equal(souk_work_pending(), 0);
  assert_int_equal(souk_work_submit(NULL, job_done, &jobs[0]), SOUK_EINVAL);
  assert_int_equal(souk_work_pending(), 0);
  assert_int_equal(jobs[0].done_calls, 1);

  /* A timer and the loop close cleanly, and the loop can be made again. */
  uv_timer_t *t = souk_malloc(sizeof *t);
  uv_timer_init(loop, t);
  souk_loop_close();
  souk_free(t);
  uv_loop_t *again = souk_loop();
  assert_non_null(again);
  souk_loop_close();
}

/* ---- clocks and randomness ---- */

static uint64_t fake_now(void *ud) { return *(uint64_t *)ud; }

static int ticks;
static void tick_cb(uv_timer_t *t) {
  assert_ptr_equal(t->data, &ticks);
  if (++ticks == 3) uv_stop(souk_loop());
}

/* A timer of its own allocation: periodic with its data, and freed once
 * the loop closes it (LeakSanitizer and valgrind would see it otherwise). */
static void test_timer(void **state) {
  ticks = 0;
  uv_timer_t *t = souk_timer_every(5, tick_cb, &ticks, 0);
  assert_non_null(t);
  uint64_t start = souk_now_ms();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  assert_int_equal(ticks, 3);
  assert_true(souk_now_ms() - start >= 10);
  souk_timer_free(&t);
  assert_null(t);
  souk_timer_free(&t); /* NULL again: nothing */
  souk_timer_free(NULL);
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  assert_int_equal(ticks, 3);
  /* Unref'd, it does not keep the loop alive: the run returns at once. */
  t = souk_timer_every(60000, tick_cb, &ticks, 1);
  assert_int_equal(uv_run(souk_loop(), UV_RUN_DEFAULT), 0);
  souk_timer_free(&t);
  uv_run(souk_loop(), UV_RUN_DEFAULT);
}

static void test_clocks(void **state) {
  uint64_t a = souk_now_ms();
  uv_sleep(20);
  uint64_t b = souk_now_ms();
  assert_true(b >= a + 15 && b < a + 5000);
  assert_true(souk_clock_mono.now_ms(souk_clock_mono.ud) >= b);
  uint64_t unix_ms = souk_unix_ms();
  uint64_t t = (uint64_t)time(NULL) * 1000;
  assert_true(unix_ms + 2000 > t && unix_ms < t + 2000);
  assert_true(unix_ms > UINT64_C(1700000000000)); /* after 2023 */
  uint64_t fake = 1234;
  souk_clock_t c = {fake_now, &fake};
  assert_true(c.now_ms(c.ud) == 1234);
}

static void test_rand(void **state) {
  enum { N = 200000 };
  double sum = 0, lo = 1, hi = 0;
  unsigned buckets[10] = {0};
  for (int i = 0; i < N; i++) {
    double r = souk_rand01();
    assert_true(r >= 0.0 && r < 1.0);
    sum += r;
    if (r < lo) lo = r;
    if (r > hi) hi = r;
    buckets[(int)(r * 10)]++;
  }
  assert_true(sum / N > 0.49 && sum / N < 0.51);
  assert_true(lo < 0.001 && hi > 0.999);
  for (int k = 0; k < 10; k++)
    assert_true(buckets[k] > N / 10 * 9 / 10 && buckets[k] < N / 10 * 11 / 10);
  uint64_t x = souk_rand64(), y = souk_rand64(), z = souk_rand64();
  assert_true(x != y && y != z && x != z);
  /* All 64 bits move. */
  uint64_t ones = 0, zeros = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t r = souk_rand64();
    ones |= r;
    zeros |= ~r;
  }
  assert_true(ones == UINT64_MAX && zeros == UINT64_MAX);
}

/* ---- allocation wrappers ---- */

static void test_alloc(void **state) {
  void *a = souk_malloc(0), *b = souk_malloc(0);
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_not_equal(a, b);
  souk_free(a);
  souk_free(b);
  unsigned char *z = souk_calloc(100, 3);
  for (int i = 0; i < 300; i++)
    assert_int_equal(z[i], 0);
  z = souk_reallocarray(z, 1000, 4);
  z[3999] = 1;
  souk_free(z);
  void *c0 = souk_calloc(0, 8);
  assert_non_null(c0);
  souk_free(c0);
  souk_free(souk_realloc(NULL, 0));
  assert_null(souk_strdup(NULL));
  char *s = souk_strdup("abc");
  assert_string_equal(s, "abc");
  souk_free(s);
  s = souk_strndup("abcdef", 3);
  assert_string_equal(s, "abc");
  souk_free(s);
  s = souk_strndup("ab", 10);
  assert_string_equal(s, "ab");
  souk_free(s);
  s = souk_memdup0("a\0b", 3);
  assert_memory_equal(s, "a\0b", 4);
  souk_free(s);
  s = souk_memdup0(NULL, 0);
  assert_string_equal(s, "");
  souk_free(s);
  souk_free(NULL);
  /* Initialising twice is fine. */
  assert_int_equal(souk_alloc_init(), 0);
}

int main(void) {
  /* Route libuv through souk's allocator before it allocates anything, as
   * main() does. */
  if (souk_alloc_init() != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errors),  cmocka_unit_test(test_url_good),
      cmocka_unit_test(test_url_bad), cmocka_unit_test(test_snowflake),
      cmocka_unit_test(test_work),    cmocka_unit_test(test_timer), cmocka_unit_test(test_clocks),
      cmocka_unit_test(test_rand),    cmocka_unit_test(test_alloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
