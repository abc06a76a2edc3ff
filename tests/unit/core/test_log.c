/* Unit tests for logging and redaction (src/core/log.c). */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>
/* clang-format on */

#include "core/log.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/json.h"
#include "souk/log.h"

/* A shaped but fake Discord bot token: base64 user id, timestamp, HMAC. */
#define FAKE_TOKEN "MTA1MTE1MjgwMzQxMzM2MDY0Mg.GhJ2kL.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"

static FILE *g_file;

/* Everything logged since the last call, NUL-terminated; the capture file
 * is emptied. */
static char *grab(void) {
  int fd = fileno(g_file);
  off_t end = lseek(fd, 0, SEEK_END);
  assert_true(end >= 0);
  char *s = souk_malloc((size_t)end + 1);
  assert_int_equal(pread(fd, s, (size_t)end, 0), end);
  s[end] = '\0';
  assert_int_equal(ftruncate(fd, 0), 0);
  assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
  return s;
}

static int setup(void **state) {
  g_file = tmpfile();
  if (!g_file) return -1;
  souk_log_set_fd(fileno(g_file));
  return 0;
}

static int teardown(void **state) {
  souk_log_set_fd(2);
  fclose(g_file);
  return 0;
}

/* Each test starts from the defaults, with no secrets and nothing logged. */
static int reset(void **state) {
  souk_log_set_level(SOUK_LOG_INFO);
  souk_log_set_format(SOUK_LOG_LOGFMT);
  souk_log_clear_secrets();
  souk_free(grab());
  return 0;
}

/* souk_log_redact on a copy of s; returns the redacted text (free it). */
static char *redact(const char *s) {
  size_t n = strlen(s);
  char *b = souk_malloc(n + 1);
  memcpy(b, s, n);
  size_t m = souk_log_redact(b, n);
  assert_true(m <= n);
  b[m] = '\0';
  return b;
}

static void expect_same(const char *s) {
  char *r = redact(s);
  if (strcmp(r, s) != 0) fail_msg("mangled: \"%s\" -> \"%s\"", s, r);
  souk_free(r);
}

/* The redacted text of s must not contain secret, and must contain keep. */
static void expect_hidden(const char *s, const char *secret, const char *keep) {
  char *r = redact(s);
  if (strstr(r, secret)) fail_msg("leaked \"%s\" in \"%s\"", secret, r);
  if (keep && !strstr(r, keep)) fail_msg("lost \"%s\": \"%s\" -> \"%s\"", keep, s, r);
  souk_free(r);
}

static void test_registered_secrets(void **state) {
  souk_log_add_secret("hunter2-secret-value");
  expect_hidden("hunter2-secret-value", "hunter2", "[REDACTED]");
  expect_hidden("pw=hunter2-secret-value;", "hunter2", "pw=[REDACTED];");
  expect_hidden("xxhunter2-secret-valueyy", "hunter2", "xx[REDACTED]yy");
  expect_hidden("a hunter2-secret-value b hunter2-secret-value c", "hunter2",
                "a [REDACTED] b [REDACTED] c");
  expect_hidden("end: hunter2-secret-value", "hunter2", "end: [REDACTED]");
  expect_same("hunter2-secret-valu");

  /* Secrets of 6 to 9 bytes become a run of stars of the same length. */
  souk_log_add_secret("s3cr3t");
  expect_hidden("[s3cr3t]", "s3cr3t", "[******]");
  /* Shorter ones are ignored: they would mangle ordinary words. */
  souk_log_add_secret("abc12");
  souk_log_add_secret("");
  souk_log_add_secret(NULL);
  expect_same("abc12 is fine");
  /* Adding the same secret twice is harmless. */
  souk_log_add_secret("hunter2-secret-value");
  expect_hidden("hunter2-secret-value", "hunter2", "[REDACTED]");

  /* Through the logging path. */
  SOUK_INFO("cfg", "token is %s, pw %s", "hunter2-secret-value", "s3cr3t");
  char *line = grab();
  assert_null(strstr(line, "hunter2"));
  assert_null(strstr(line, "s3cr3t"));
  assert_non_null(strstr(line, "token is [REDACTED], pw ******"));
  souk_free(line);

  souk_log_clear_secrets();
  expect_same("hunter2-secret-value");
}

static void test_token_shape(void **state) {
  expect_hidden(FAKE_TOKEN, "GhJ2kL", "[REDACTED]");
  expect_hidden("using token " FAKE_TOKEN " now", "abcdefghijklmnop", "using token [REDACTED] now");
  expect_hidden("(" FAKE_TOKEN ")", "MTA1MTE1", "([REDACTED])");
  expect_hidden("t=" FAKE_TOKEN "&x=1", "GhJ2kL", "&x=1");
  /* Real tokens have longer ids and HMACs; the shape still matches. */
  expect_hidden("MTA1MTE1MjgwMzQxMzM2MDY0MjEyMw.G1a2b3.abcdefghijklmnopqrstuvwxyz0123456789_-AB",
                "G1a2b3", NULL);
  /* Dotted things that are not tokens stay. */
  expect_same("file.tar.gz v1.2.3 www.example.com 10.0.0.1");
  expect_same("snowflake 1105838371418411069 uuid a6774985b93e44f7aeed3e513c09240b");
  expect_same("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbb.cccccccccccccccccccccccccccccccccc");
}

/* Text about to be shown to people is checked for secrets without being
 * changed: registered secrets and token shapes count, ordinary text does
 * not. */
static void test_has_secret(void **state) {
  static const char terms[] = "1. Be nice.\n2. Coins are virtual: file.tar.gz v1.2.3.";
  assert_false(souk_log_has_secret(terms, strlen(terms)));
  souk_log_add_secret("hunter2-secret-value");
  static const char leak[] = "SOUK_STORE_PASSWORD=hunter2-secret-value\n";
  assert_true(souk_log_has_secret(leak, strlen(leak)));
  /* Only within the given length. */
  assert_false(souk_log_has_secret(leak, 25));
  static const char tok[] = "SOUK_DISCORD_TOKEN=" FAKE_TOKEN "\n";
  assert_true(souk_log_has_secret(tok, strlen(tok)));
  assert_false(souk_log_has_secret(NULL, 0));
  souk_log_clear_secrets();
  assert_false(souk_log_has_secret(leak, strlen(leak)));
}

static void test_headers(void **state) {
  expect_hidden("GET /api/v10/users/@me\r\nAuthorization: Bot " FAKE_TOKEN
                "\r\nUser-Agent: DiscordBot (https://example.com, 1.0)\r\n",
                "GhJ2kL", "User-Agent: DiscordBot (https://example.com, 1.0)");
  expect_hidden("Authorization: Bot " FAKE_TOKEN, "abcdefghijklmnop", "Authorization: Bot ");
  /* A credential that does not look like a token is still hidden. */
  expect_hidden("authorization: Bot shortsecret123", "shortsecret123", "authorization: Bot ");
  expect_hidden("Authorization: Bearer abc.def", "abc.def", "Bearer ");
  expect_hidden("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "Basic ");
  expect_hidden("AUTHORIZATION: rawcredential", "rawcredential", NULL);
  expect_hidden("authorization=Bot%20xyzzy123", "xyzzy123", NULL);
  expect_hidden("headers {\"Authorization\":\"Bot sekrit-1\",\"X\":\"y\"}", "sekrit-1",
                "\"X\":\"y\"");
  expect_hidden("{\"authorization\": \"Bot sekrit-2\"}", "sekrit-2", NULL);
  /* Hypixel, Finnhub, Alpaca and KuCoin credentials in header dumps. */
  expect_hidden("API-Key: 0d1c2b3a-1111-2222-3333-444455556666\r\n", "0d1c2b3a", "API-Key: ");
  expect_hidden("X-API-Key: hypixelkey123\n", "hypixelkey123", NULL);
  expect_hidden("X-Finnhub-Token: finnhubtok99\n", "finnhubtok99", NULL);
  expect_hidden("APCA-API-KEY-ID: PKAAAA1111\nAPCA-API-SECRET-KEY: sssss2222\n", "PKAAAA1111",
                NULL);
  expect_hidden("APCA-API-SECRET-KEY: sssss2222\n", "sssss2222", NULL);
  expect_hidden("KC-API-PASSPHRASE: mypassphrase\n", "mypassphrase", NULL);
  /* Bare "Bot <token>" / "Bearer <token>" in prose. */
  expect_hidden("sent Bot abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnop", "sent Bot ");
  expect_hidden("bearer abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnop", NULL);
}

static void test_urls(void **state) {
  expect_hidden(
      "GET https://api.example.com/v1/x?token=abcdef123456&apikey=zyx987654321&page=2 200",
      "abcdef123456", "&page=2 200");
  expect_hidden("GET https://api.example.com/v1/x?token=abcdef123456&apikey=zyx987654321&page=2",
                "zyx987654321", "token=");
  expect_hidden("https://api.polygon.io/v2/aggs?apiKey=POLYKEY12345", "POLYKEY12345", "apiKey=");
  expect_hidden("/v1/q?symbol=AAPL&api_key=k-0987654", "k-0987654", "symbol=AAPL");
  expect_hidden("/cb?access_token=at-1234567&state=s", "at-1234567", "&state=s");
  expect_hidden("/x?key=abcdef", "abcdef", "/x?key=");
  /* Passwords in a URL's userinfo. */
  expect_hidden("connecting to postgres://souk:hunter2pw@db.internal:5432/souk", "hunter2pw",
                "postgres://souk:");
  expect_hidden("redis://:redispass@127.0.0.1:6379/0", "redispass", "@127.0.0.1:6379/0");
  expect_same("https://example.com:8443/path?a=b#frag");
  expect_same("https://discord.com/api/v10/gateway/bot");
}

static void test_json_keys(void **state) {
  expect_hidden("{\"op\":2,\"d\":{\"token\":\"abc.def.ghi\",\"intents\":513}}", "abc.def.ghi",
                "\"intents\":513");
  expect_hidden("{\"token\": \"pretty-printed-value\"}", "pretty-printed", "{\"token\": \"");
  expect_hidden("{\n  \"token\" : \"spaced-out-value\"\n}", "spaced-out", NULL);
  expect_hidden("{\"api_key\":\"k1234567\"}", "k1234567", NULL);
  expect_hidden("{\"password\":\"pw\"}", "\"pw\"", "\"password\":\"**\"");
  expect_hidden("{\"client_secret\":\"cs-secret-1\"}", "cs-secret-1", NULL);
  expect_hidden("{\"token\":\"esc\\\"aped-secret\"}", "aped-secret", NULL);
  /* Other keys and other value types stay. */
  expect_same("{\"token_type\":\"Bearer\",\"tokens\":5,\"token\":null,\"token\":\"\"}");
  expect_same("{\"session_id\":\"9f7a1c\",\"seq\":42}");
}

static void test_ordinary_words(void **state) {
  static const char *const keep[] = {
      "monkey=banana",
      "turkey=sandwich hotkey=F5",
      "keyboard=qwerty",
      "Bot started",
      "Bot is ready as souk#1234 in 3 guilds",
      "robot 12345678901234567890123",
      "the bearer of news",
      "key=ab",
      "the token is valid; tokens=3",
      "password reset requested",
      "Authorization failed (401)",
      "ratelimit bucket 80c17d2f203122d936070c88c8d10f33 reset_after=1.234",
      "GET /channels/1105838371418411069/messages 200 12ms",
      "",
  };
  for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
    expect_same(keep[i]);
}

/* True if s[0..n) is valid UTF-8. */
static bool valid_utf8(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    size_t l = c < 0x80                 ? 1
               : c >= 0xc2 && c <= 0xdf ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (l == 0 || i + l > n) return false;
    for (size_t k = 1; k < l; k++)
      if ((p[i + k] & 0xc0) != 0x80) return false;
    if (l == 3 && ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] >= 0xa0))) return false;
    if (l == 4 && ((c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] >= 0x90))) return false;
    i += l;
  }
  return true;
}

/* Parse one JSON log line; returns the decoded msg (free it). */
static char *check_json_line(const char *line, const char *level, const char *comp) {
  size_t n = strlen(line);
  assert_true(n > 0);
  assert_int_equal(line[n - 1], '\n');
  assert_ptr_equal(strchr(line, '\n'), line + n - 1); /* one line only */
  assert_true(valid_utf8(line, n));
  souk_json_t j = {0};
  int rc = souk_json_parse(&j, line, n - 1);
  if (rc) fail_msg("log line is not JSON (rc %d at %u): %s", rc, j.err_pos, line);
  assert_int_equal(souk_json_count(&j, 0), 4);
  char ts[64];
  assert_int_equal(souk_json_str(&j, souk_json_get(&j, 0, "ts"), ts, sizeof ts), 24);
  /* 2025-06-08T17:07:40.812Z */
  assert_true(ts[4] == '-' && ts[7] == '-' && ts[10] == 'T' && ts[13] == ':' && ts[16] == ':' &&
              ts[19] == '.' && ts[23] == 'Z');
  assert_true(souk_json_streq(&j, souk_json_get(&j, 0, "level"), level));
  assert_true(souk_json_streq(&j, souk_json_get(&j, 0, "comp"), comp));
  char *msg = souk_json_strdup(&j, souk_json_get(&j, 0, "msg"));
  assert_non_null(msg);
  souk_json_free(&j);
  return msg;
}

static void test_json_format(void **state) {
  souk_log_set_format(SOUK_LOG_JSON);
  static const char text[] = "line1\nline2 \"q\" back\\slash \t tab \x01 ctl \x7f del \r cr "
                             "caf\xc3\xa9 \xf0\x9f\x98\x80";
  SOUK_INFO("gateway", "%s", text);
  char *line = grab();
  char *msg = check_json_line(line, "info", "gateway");
  assert_string_equal(msg, text);
  souk_free(msg);
  souk_free(line);

  /* Invalid UTF-8 becomes U+FFFD so the line stays valid. */
  SOUK_WARN("net", "bad \xff\xfe ok \xc3\xa9 cut \xe2\x82");
  line = grab();
  msg = check_json_line(line, "warn", "net");
  assert_string_equal(msg, "bad \xef\xbf\xbd\xef\xbf\xbd ok \xc3\xa9 cut \xef\xbf\xbd\xef\xbf\xbd");
  souk_free(msg);
  souk_free(line);

  /* A NULL component is logged as "souk"; a component needing escapes is
   * escaped. */
  souk_log(SOUK_LOG_ERROR, NULL, "x");
  line = grab();
  souk_free(check_json_line(line, "error", "souk"));
  souk_free(line);
  souk_log(SOUK_LOG_ERROR, "a\"b", "x");
  line = grab();
  souk_free(check_json_line(line, "error", "a\"b"));
  souk_free(line);

  /* Over-long messages are cut but the line stays one valid JSON object,
   * even when every byte needs an escape. */
  char *big = souk_malloc(20001);
  memset(big, 'x', 20000);
  big[20000] = '\0';
  SOUK_INFO("big", "%s", big);
  memset(big, '\n', 20000);
  SOUK_INFO("big", "%s", big);
  memset(big, '\x01', 20000);
  SOUK_INFO("big", "%s", big);
  /* A multi-byte character cut at the limit does not break UTF-8. */
  for (int i = 0; i + 2 < 20000; i += 3)
    memcpy(big + i, "\xe2\x82\xac", 3);
  big[19998] = big[19999] = 'y';
  SOUK_INFO("big", "%s", big);
  souk_free(big);
  line = grab();
  char *p = line;
  for (int k = 0; k < 4; k++) {
    char *nl = strchr(p, '\n');
    assert_non_null(nl);
    char save = nl[1];
    nl[1] = '\0';
    msg = check_json_line(p, "info", "big");
    assert_true(strlen(msg) > 500 && strlen(msg) < 4096);
    souk_free(msg);
    nl[1] = save;
    p = nl + 1;
  }
  assert_int_equal(*p, '\0');
  souk_free(line);
}

static void test_logfmt_format(void **state) {
  SOUK_WARN("rest", "hello \"world\"\nnext\\ \x01");
  char *line = grab();
  assert_memory_equal(line, "ts=", 3);
  const char *want = " level=warn comp=rest msg=\"hello \\\"world\\\"\\nnext\\\\ \\x01\"\n";
  size_t n = strlen(line), wn = strlen(want);
  assert_true(n > wn);
  assert_string_equal(line + n - wn, want);
  assert_int_equal(strlen("ts=2025-06-08T17:07:40.812Z"), n - wn);
  assert_ptr_equal(strchr(line, '\n'), line + n - 1);
  souk_free(line);

  /* A secret straddling the 4 KB cut of an over-long message must not
   * leave its first bytes behind. */
  souk_log_add_secret("hunter2-secret-value");
  char *big = souk_malloc(8001);
  memset(big, 'a', 8000);
  big[8000] = '\0';
  for (int at = 4080; at < 4100; at++) {
    memset(big, 'a', 8000);
    memcpy(big + at, "hunter2-secret-value", 20);
    SOUK_INFO("cut", "%s", big);
    line = grab();
    assert_null(strstr(line, "hunt"));
    souk_free(line);
  }
  /* Nor a Discord token. */
  for (int at = 4030; at < 4100; at += 7) {
    memset(big, ' ', 8000);
    memcpy(big + at, FAKE_TOKEN, sizeof FAKE_TOKEN - 1);
    SOUK_INFO("cut", "%s", big);
    line = grab();
    assert_null(strstr(line, "MTA1MTE1"));
    souk_free(line);
  }
  souk_free(big);
}

static void test_levels(void **state) {
  assert_int_equal(souk_log_get_level(), SOUK_LOG_INFO);
  SOUK_DEBUG("t", "debug line");
  SOUK_INFO("t", "info line");
  char *out = grab();
  assert_null(strstr(out, "debug line"));
  assert_non_null(strstr(out, "level=info"));
  souk_free(out);

  souk_log_set_level(SOUK_LOG_WARN);
  assert_int_equal(souk_log_get_level(), SOUK_LOG_WARN);
  int evaluated = 0;
  SOUK_DEBUG("t", "%d", ++evaluated); /* arguments are not even evaluated */
  assert_int_equal(evaluated, 0);
  SOUK_INFO("t", "info line");
  SOUK_WARN("t", "warn line");
  SOUK_ERROR("t", "error line");
  out = grab();
  assert_null(strstr(out, "info line"));
  assert_non_null(strstr(out, "level=warn comp=t msg=\"warn line\"\n"));
  assert_non_null(strstr(out, "level=error comp=t msg=\"error line\"\n"));
  souk_free(out);

  souk_log_set_level(SOUK_LOG_DEBUG);
  SOUK_DEBUG("t", "%d", ++evaluated);
  assert_int_equal(evaluated, 1);
  out = grab();
  assert_non_null(strstr(out, "level=debug comp=t msg=\"1\"\n"));
  souk_free(out);

  souk_log_set_level(SOUK_LOG_OFF);
  SOUK_ERROR("t", "nothing");
  souk_log(SOUK_LOG_OFF, "t", "nothing");
  out = grab();
  assert_string_equal(out, "");
  souk_free(out);

  assert_int_equal(souk_log_level_parse("debug"), SOUK_LOG_DEBUG);
  assert_int_equal(souk_log_level_parse("INFO"), SOUK_LOG_INFO);
  assert_int_equal(souk_log_level_parse("warn"), SOUK_LOG_WARN);
  assert_int_equal(souk_log_level_parse("Warning"), SOUK_LOG_WARN);
  assert_int_equal(souk_log_level_parse("error"), SOUK_LOG_ERROR);
  assert_int_equal(souk_log_level_parse("off"), SOUK_LOG_OFF);
  assert_int_equal(souk_log_level_parse("verbose"), -1);
  assert_int_equal(souk_log_level_parse(""), -1);
  assert_int_equal(souk_log_level_parse(NULL), -1);
}

static void log_thread(void *arg) {
  for (int i = 0; i < 300; i++)
    SOUK_INFO("thread", "worker %d line %d with some padding to make it longer %s",
              (int)(intptr_t)arg, i, "hunter2-secret-value");
}

static void test_threads(void **state) {
  /* Lines from several threads never interleave: one write(2) each. */
  souk_log_set_format(SOUK_LOG_JSON);
  souk_log_add_secret("hunter2-secret-value");
  uv_thread_t th[4];
  for (intptr_t i = 0; i < 4; i++)
    assert_int_equal(uv_thread_create(&th[i], log_thread, (void *)i), 0);
  for (int i = 0; i < 4; i++)
    uv_thread_join(&th[i]);
  char *out = grab();
  int lines = 0;
  for (char *p = out; *p;) {
    char *nl = strchr(p, '\n');
    assert_non_null(nl);
    char save = nl[1];
    nl[1] = '\0';
    char *msg = check_json_line(p, "info", "thread");
    assert_non_null(strstr(msg, "[REDACTED]"));
    souk_free(msg);
    nl[1] = save;
    p = nl + 1;
    lines++;
  }
  assert_int_equal(lines, 1200);
  souk_free(out);
}

/* The coalescing's clock, moved by the tests. */
static uint64_t g_now = 1000000;
static uint64_t fake_now(void) { return g_now; }

static int count_of(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
    n++;
  return n;
}

/* 300 identical lines within a second: one written, then one summary when
 * the second is over; a different line in between is written at once. */
static void test_repeats_coalesced(void **state) {
  (void)state;
  souk__log_set_clock(fake_now);
  souk_log_flush();
  souk_free(grab());
  for (int i = 0; i < 300; i++) {
    SOUK_WARN("http", "libmicrohttpd: Failed to receive data: Connection reset by peer");
    g_now += 2; /* 300 lines in 0.6 s */
  }
  SOUK_INFO("core", "something else");
  char *out = grab();
  assert_int_equal(count_of(out, "Connection reset by peer"), 1);
  assert_int_equal(count_of(out, "something else"), 1);
  assert_null(strstr(out, "repeated"));
  souk_free(out);
  /* Before the second is over, a tick writes nothing. */
  g_now += 300;
  souk__log_tick();
  out = grab();
  assert_string_equal(out, "");
  souk_free(out);
  g_now += 200; /* now past 1 s after the first line */
  souk__log_tick();
  out = grab();
  assert_int_equal(count_of(out, "\n"), 1);
  assert_non_null(strstr(out, "level=warn comp=http msg=\"libmicrohttpd: Failed to receive data: "
                              "Connection reset by peer \xE2\x80\xA6 repeated 299 times in 1 s\""));
  souk_free(out);
  /* The flood goes on for three more seconds: one summary per second. */
  for (int sec = 0; sec < 3; sec++) {
    for (int i = 0; i < 100; i++) {
      SOUK_WARN("http", "libmicrohttpd: Failed to receive data: Connection reset by peer");
      g_now += 10;
    }
    souk__log_tick();
  }
  out = grab();
  assert_int_equal(count_of(out, "\n"), 3);
  assert_int_equal(count_of(out, "repeated 100 times in 1 s"), 3);
  souk_free(out);
  /* A quiet second forgets the line: it is written again next time. */
  g_now += 5000;
  souk__log_tick();
  SOUK_WARN("http", "libmicrohttpd: Failed to receive data: Connection reset by peer");
  out = grab();
  assert_int_equal(count_of(out, "\n"), 1);
  assert_null(strstr(out, "repeated"));
  souk_free(out);
  souk_log_flush();
  souk__log_set_clock(NULL);
}

/* Two floods that alternate are both coalesced; level and component are
 * part of what makes a line the same; the exit flush writes what is due. */
static void test_repeats_interleaved(void **state) {
  (void)state;
  souk__log_set_clock(fake_now);
  souk_log_flush();
  souk_free(grab());
  for (int i = 0; i < 50; i++) {
    SOUK_INFO("a", "same text");
    SOUK_INFO("b", "same text");
    SOUK_WARN("a", "same text");
  }
  char *out = grab();
  assert_int_equal(count_of(out, "\n"), 3);
  souk_free(out);
  souk_log_flush();
  out = grab();
  assert_int_equal(count_of(out, "repeated 49 times"), 3);
  assert_non_null(strstr(out, "level=info comp=a msg=\"same text \xE2\x80\xA6 repeated 49 times"));
  assert_non_null(strstr(out, "level=warn comp=a msg="));
  souk_free(out);
  /* Coalescing off: every line. */
  souk__log_set_coalesce(false);
  for (int i = 0; i < 5; i++) SOUK_INFO("a", "same text");
  out = grab();
  assert_int_equal(count_of(out, "\n"), 5);
  souk_free(out);
  souk__log_set_coalesce(true);
  souk__log_set_clock(NULL);
}

/* A log file gets every line; stderr (the fd) only warnings and errors;
 * after logrotate renames the file, a reopen writes to a new one. */
static void test_log_file(void **state) {
  (void)state;
  char dir[] = "/tmp/souk-test-log-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128], rotated[128];
  snprintf(path, sizeof path, "%s/souk.log", dir);
  snprintf(rotated, sizeof rotated, "%s/souk.log.1", dir);
  assert_int_equal(souk_log_set_file(path), 0);
  assert_string_equal(souk_log_file(), path);
  SOUK_INFO("core", "to the file only");
  SOUK_WARN("core", "to both");
  char *err = grab();
  assert_null(strstr(err, "to the file only"));
  assert_int_equal(count_of(err, "to both"), 1);
  souk_free(err);
  assert_int_equal(rename(path, rotated), 0);
  SOUK_INFO("core", "still the old file");
  assert_int_equal(souk_log_reopen(), 0);
  SOUK_INFO("core", "the new file");
  assert_int_equal(souk_log_set_file(NULL), 0);
  assert_null(souk_log_file());
  SOUK_INFO("core", "stderr again");
  err = grab();
  assert_non_null(strstr(err, "stderr again"));
  souk_free(err);
  char buf[4096];
  FILE *f = fopen(rotated, "r");
  assert_non_null(f);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  assert_non_null(strstr(buf, "to the file only"));
  assert_non_null(strstr(buf, "to both"));
  assert_non_null(strstr(buf, "still the old file"));
  assert_null(strstr(buf, "the new file"));
  f = fopen(path, "r");
  assert_non_null(f);
  n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  assert_non_null(strstr(buf, "the new file"));
  assert_null(strstr(buf, "stderr again"));
  /* A file that cannot be opened leaves the setting as it was. */
  assert_true(souk_log_set_file("/nonexistent-dir/x.log") < 0);
  assert_null(souk_log_file());
  unlink(path);
  unlink(rotated);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_registered_secrets, reset),
      cmocka_unit_test_setup(test_token_shape, reset),
      cmocka_unit_test_setup(test_has_secret, reset),
      cmocka_unit_test_setup(test_headers, reset),
      cmocka_unit_test_setup(test_urls, reset),
      cmocka_unit_test_setup(test_json_keys, reset),
      cmocka_unit_test_setup(test_ordinary_words, reset),
      cmocka_unit_test_setup(test_json_format, reset),
      cmocka_unit_test_setup(test_logfmt_format, reset),
      cmocka_unit_test_setup(test_levels, reset),
      cmocka_unit_test_setup(test_threads, reset),
      cmocka_unit_test_setup(test_repeats_coalesced, reset),
      cmocka_unit_test_setup(test_repeats_interleaved, reset),
      cmocka_unit_test_setup(test_log_file, reset),
  };
  int rc = cmocka_run_group_tests(tests, setup, teardown);
  souk_log_clear_secrets();
  return rc;
}
