/* Tests of the configuration system (src/core/config.c): every type good
 * and bad, FILE:LINE in messages, every problem reported at once, the
 * environment and .env files, secrets, reload and run-time changes. */
/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
// clang-format off
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
// clang-format on

#include "core/config.h"
#include "discord/dconf.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/url.h"

#define FIX SOUK_TEST_FIXTURES "/config/"

/* A test table with every type. */
typedef struct tconf {
  char *name;
  int64_t count;
  bool flag;
  int color;
  int64_t timeout_ms;
  int64_t cache;
  uint64_t owner;
  souk_conf_ids_t guilds;
  souk_conf_strs_t tags;
  char *url;
  char *token;
  double ratio;
  int64_t deep;
  char *motd;
  char *api_key;
  int64_t workers;
} tconf_t;

typedef struct uconf {
  int level;
  int64_t any;
} uconf_t;

static tconf_t tc;
static uconf_t uc;

static const char *const colors[] = {"red", "green", "blue", NULL};
static const char *const levels[] = {"debug", "info", "warn", NULL};

#define T(f) offsetof(tconf_t, f)
static const souk_conf_key_t t_keys[] = {
    {"name", SOUK_CONF_STRING, T(name), NULL, 0, 10, NULL, 0, "a name"},
    {"count", SOUK_CONF_INT, T(count), "5", 1, 100, NULL, SOUK_CONF_RUNTIME, "a count"},
    {"flag", SOUK_CONF_BOOL, T(flag), "false", 0, 0, NULL, 0, "a flag"},
    {"color", SOUK_CONF_ENUM, T(color), "red", 0, 0, colors, SOUK_CONF_RUNTIME, "a color"},
    {"timeout", SOUK_CONF_DURATION, T(timeout_ms), "30s", 100, 3600000, NULL, SOUK_CONF_RUNTIME,
     "a timeout"},
    {"cache", SOUK_CONF_SIZE, T(cache), "64MB", 1024, (int64_t)1 << 30, NULL, 0, "a size"},
    {"owner", SOUK_CONF_SNOWFLAKE, T(owner), NULL, 0, 0, NULL, 0, "an id"},
    {"guilds", SOUK_CONF_SNOWFLAKE_LIST, T(guilds), NULL, 0, 0, NULL, SOUK_CONF_RUNTIME, "ids"},
    {"tags", SOUK_CONF_STRING_LIST, T(tags), "a, b", 0, 0, NULL, 0, "tags"},
    {"url", SOUK_CONF_URL, T(url), "https://example.com/x", 0, 0, NULL, 0, "a URL"},
    {"token", SOUK_CONF_TOKEN, T(token), NULL, 0, 0, NULL, SOUK_CONF_SECRET, "a token"},
    {"ratio", SOUK_CONF_DOUBLE, T(ratio), "0.5", 0, 1, NULL, 0, "a ratio"},
    {"deep.inner.value", SOUK_CONF_INT, T(deep), "0", -10, 10, NULL, 0, "nested"},
    {"motd", SOUK_CONF_STRING, T(motd), "hi", 0, 0, NULL, SOUK_CONF_RUNTIME, "message"},
    {"api.key", SOUK_CONF_STRING, T(api_key), NULL, 0, 0, NULL,
     SOUK_CONF_SECRET | SOUK_CONF_REQUIRED, "secret"},
    {"workers", SOUK_CONF_INT, T(workers), "2", 0, 0, NULL, 0, "unbounded above"},
    {0},
};

static const souk_conf_key_t u_keys[] = {
    {"level", SOUK_CONF_ENUM, offsetof(uconf_t, level), "info", 0, 0, levels, 0, "a level"},
    {"any", SOUK_CONF_INT, offsetof(uconf_t, any), "0", INT64_MIN, 0, NULL, 0, "any integer"},
    {0},
};

static const souk_conf_section_t secs[] = {
    {"t", t_keys, &tc, NULL},
    {"u", u_keys, &uc, NULL},
};
#define NSECS (sizeof secs / sizeof secs[0])

static const char *const env_vars[] = {"SOUK_T_COUNT",
                                       "SOUK_T_GUILDS",
                                       "SOUK_T_TOKEN",
                                       "SOUK_T_NAME",
                                       "SOUK_T_COUNTT",
                                       "SOUK_T_FLAG",
                                       "SOUK_T_API_KEY",
                                       "SOUK_T_MOTD",
                                       "SOUK_T_TAGS",
                                       "SOUK_T_DEEP_INNER_VALUE",
                                       "SOUK_DOTENV_A",
                                       "SOUK_DOTENV_B",
                                       "SOUK_DOTENV_C",
                                       "SOUK_DOTENV_D",
                                       "SOUK_DOTENV_E",
                                       "SOUK_DOTENV_F",
                                       "SOUK_DOTENV_G",
                                       "SOUK_DOTENV_H",
                                       "SOUK_DOTENV_REAL",
                                       "SOUK_DOTENV_SIDE",
                                       "SOUK_DISCORD_TOKEN",
                                       "SOUK_DISCORD_INTENTS",
                                       "SOUK_DISCORD_PRESENCE_STATUS",
                                       NULL};

static char tmpdir[256];
static char oldcwd[1024];

static int setup(void **state) {
  (void)state;
  memset(&tc, 0, sizeof tc);
  memset(&uc, 0, sizeof uc);
  for (size_t i = 0; env_vars[i]; i++)
    unsetenv(env_vars[i]);
  /* Every test runs in a fresh empty directory, so no stray .env or
   * souk.yaml is picked up. */
  SOUK_ASSERT(getcwd(oldcwd, sizeof oldcwd));
  snprintf(tmpdir, sizeof tmpdir, "/tmp/souk-test-config-XXXXXX");
  SOUK_ASSERT(mkdtemp(tmpdir));
  SOUK_ASSERT(chdir(tmpdir) == 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  souk__config_free(secs, NSECS);
  for (size_t i = 0; env_vars[i]; i++)
    unsetenv(env_vars[i]);
  souk_log_clear_secrets();
  SOUK_ASSERT(chdir(oldcwd) == 0);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  SOUK_ASSERT(system(cmd) == 0);
  return 0;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int load_text(const char *yaml, souk__conf_report_t *rep) {
  return souk__config_load_mem("test.yaml", yaml, strlen(yaml), secs, NSECS, rep);
}

/* Diagnostic i as printed. */
static char *diag(const souk__conf_report_t *rep, size_t i) {
  assert_true(i < rep->n);
  souk_buf_t b;
  souk_buf_init(&b);
  souk__conf_diag_format(&rep->v[i], &b);
  return souk_buf_steal(&b);
}

static void assert_diag(const souk__conf_report_t *rep, size_t i, const char *want) {
  char *got = diag(rep, i);
  if (strcmp(got, want) != 0) {
    print_error("diagnostic %zu:\n  got:  %s\n  want: %s\n", i, got, want);
    souk_free(got);
    fail();
  }
  souk_free(got);
}

static void print_report(const souk__conf_report_t *rep) {
  for (size_t i = 0; i < rep->n; i++) {
    char *d = diag(rep, i);
    print_message("  %s\n", d);
    souk_free(d);
  }
}

/* Whether any diagnostic's text contains s. */
static bool report_has(const souk__conf_report_t *rep, const char *s) {
  bool found = false;
  for (size_t i = 0; i < rep->n && !found; i++) {
    char *d = diag(rep, i);
    found = strstr(d, s) != NULL;
    souk_free(d);
  }
  return found;
}

/* Load "t:\n  <key>: <value>\n" and expect exactly one error whose text
 * is want (with "test.yaml:2: t.<key>: " in front). */
static void expect_bad(const char *key, const char *value, const char *want) {
  char yaml[512], full[1024];
  snprintf(yaml, sizeof yaml, "t:\n  %s: %s\n", key, value);
  souk__conf_report_t rep = {0};
  int rc = load_text(yaml, &rep);
  if (rc != SOUK_ECONFIG || rep.nerr != 1 || rep.n != 1) {
    print_error("%s: %s gave rc %d and %zu problems:\n", key, value, rc, rep.n);
    print_report(&rep);
    fail();
  }
  snprintf(full, sizeof full, "test.yaml:2: t.%s: %s", key, want);
  assert_diag(&rep, 0, full);
  souk__conf_report_free(&rep);
}

/* Load "t:\n  <key>: <value>\n", expecting no problem at all. */
static void expect_good(const char *key, const char *value) {
  char yaml[512];
  snprintf(yaml, sizeof yaml, "t:\n  %s: %s\n", key, value);
  souk__conf_report_t rep = {0};
  int rc = load_text(yaml, &rep);
  if (rc != 0 || rep.n != 0) {
    print_error("%s: %s gave rc %d:\n", key, value, rc);
    print_report(&rep);
    fail();
  }
  souk__conf_report_free(&rep);
}

/* ------------------------------------------------------------------------ */

static void test_defaults(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  assert_int_equal(load_text("", &rep), 0);
  assert_int_equal(rep.n, 0);
  assert_null(tc.name);
  assert_int_equal(tc.count, 5);
  assert_false(tc.flag);
  assert_int_equal(tc.color, 0);
  assert_int_equal(tc.timeout_ms, 30000);
  assert_int_equal(tc.cache, 64 << 20);
  assert_int_equal(tc.owner, 0);
  assert_int_equal(tc.guilds.n, 0);
  assert_int_equal(tc.tags.n, 2);
  assert_string_equal(tc.tags.v[0], "a");
  assert_string_equal(tc.tags.v[1], "b");
  assert_string_equal(tc.url, "https://example.com/x");
  assert_null(tc.token);
  assert_true(tc.ratio == 0.5);
  assert_string_equal(tc.motd, "hi");
  assert_int_equal(uc.level, 1);
  /* A file of comments only, and a lone "~", are empty configs too. */
  assert_int_equal(load_text("# nothing\n", &rep), 0);
  assert_int_equal(load_text("~\n", &rep), 0);
  assert_int_equal(load_text("t:\nu:\n", &rep), 0);
  assert_int_equal(rep.n, 0);
  souk__conf_report_free(&rep);
}

static void test_good_file(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  int rc = souk__config_load(FIX "good.yaml", true, secs, NSECS, &rep);
  print_report(&rep);
  assert_int_equal(rc, 0);
  assert_int_equal(rep.n, 0);
  assert_string_equal(tc.name, "héllo");
  assert_int_equal(tc.count, 42);
  assert_true(tc.flag);
  assert_int_equal(tc.color, 2);
  assert_int_equal(tc.timeout_ms, 2730000);
  assert_int_equal(tc.cache, 10 << 20);
  assert_true(tc.owner == UINT64_C(175928847299117063));
  assert_int_equal(tc.guilds.n, 2);
  assert_true(tc.guilds.ids[1] == UINT64_C(81384788765712384));
  assert_int_equal(tc.tags.n, 2);
  assert_string_equal(tc.tags.v[1], "beta, gamma"); /* sequence items are not split */
  assert_string_equal(tc.url, "postgres://souk@db.example:5433/souk");
  assert_true(tc.ratio == 0.25);
  assert_int_equal(tc.deep, -7);
  assert_string_equal(tc.motd, "folded text");
  assert_int_equal(uc.level, 2);
  souk__conf_report_free(&rep);
}

static void test_int(void **state) {
  (void)state;
  expect_good("count", "1");
  expect_good("count", "+100");
  expect_good("count", "007");
  expect_bad("count", "300", "expected an integer between 1 and 100, found '300'");
  expect_bad("count", "0", "expected an integer between 1 and 100, found '0'");
  expect_bad("count", "4.5", "expected an integer between 1 and 100, found '4.5'");
  expect_bad("count", "0x10", "expected an integer between 1 and 100, found '0x10'");
  expect_bad("count", "1e2", "expected an integer between 1 and 100, found '1e2'");
  expect_bad("count", "\"\"", "expected an integer between 1 and 100, found ''");
  expect_bad("count", "99999999999999999999",
             "expected an integer between 1 and 100, found '99999999999999999999'");
  expect_good("workers", "9223372036854775807");
  expect_bad("workers", "9223372036854775808",
             "expected an integer of at least 0, found '9223372036854775808'");
  expect_bad("workers", "-1", "expected an integer of at least 0, found '-1'");
  expect_good("deep.inner.value", "-10");
  expect_bad("deep.inner.value", "-11", "expected an integer between -10 and 10, found '-11'");
  /* The full int64 range, with overflow detected at both ends. */
  souk__conf_report_t rep = {0};
  assert_int_equal(load_text("u:\n  any: -9223372036854775808\n", &rep), 0);
  assert_true(uc.any == INT64_MIN);
  assert_int_equal(load_text("u:\n  any: -9223372036854775809\n", &rep), SOUK_ECONFIG);
  assert_diag(&rep, 0,
              "test.yaml:2: u.any: expected an integer, found "
              "'-9223372036854775809'");
  souk__conf_report_free(&rep);
}

static void test_bool(void **state) {
  (void)state;
  const char *yes[] = {"true", "yes", "on", "1", "True", "YES", "On", "\"true\""};
  const char *no[] = {"false", "no", "off", "0", "FALSE", "No", "OFF"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
    expect_good("flag", yes[i]);
    assert_true(tc.flag);
  }
  for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
    expect_good("flag", no[i]);
    assert_false(tc.flag);
  }
  expect_bad("flag", "maybe", "expected true or false (or yes/no, on/off, 1/0), found 'maybe'");
  expect_bad("flag", "2", "expected true or false (or yes/no, on/off, 1/0), found '2'");
}

static void test_enum(void **state) {
  (void)state;
  expect_good("color", "green");
  assert_int_equal(tc.color, 1);
  expect_good("color", "BLUE");
  assert_int_equal(tc.color, 2);
  expect_bad("color", "purple", "expected one of red, green, blue, found 'purple'");
  expect_bad("color", "\"\"", "expected one of red, green, blue, found ''");
}

static void test_duration(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int64_t ms;
  } good[] = {{"250ms", 250},      {"30s", 30000},          {"5m", 300000},     {"1h", 3600000},
              {"30m15s", 1815000}, {"30", 30000},           {"1m500ms", 60500}, {"0h1s", 1000},
              {"3599s", 3599000},  {"59m59s999ms", 3599999}};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    expect_good("timeout", good[i].text);
    assert_int_equal(tc.timeout_ms, good[i].ms);
  }
  expect_bad("timeout", "soon", "expected a duration like 30s, 5m, 2h, found 'soon'");
  expect_bad("timeout", "5 m", "expected a duration like 30s, 5m, 2h, found '5 m'");
  expect_bad("timeout", "1.5h", "expected a duration like 30s, 5m, 2h, found '1.5h'");
  expect_bad("timeout", "-5s", "expected a duration like 30s, 5m, 2h, found '-5s'");
  expect_bad("timeout", "5M", "expected a duration like 30s, 5m, 2h, found '5M'");
  expect_bad("timeout", "99999999999999999999d",
             "expected a duration like 30s, 5m, 2h, found '99999999999999999999d'");
  expect_bad("timeout", "9223372036854775807", /* seconds that overflow as ms */
             "expected a duration like 30s, 5m, 2h, found '9223372036854775807'");
  expect_bad("timeout", "2h", "expected a duration between 100ms and 1h, found '2h'");
  expect_bad("timeout", "99ms", "expected a duration between 100ms and 1h, found '99ms'");
  expect_bad("timeout", "1d", "expected a duration between 100ms and 1h, found '1d'");
}

static void test_size(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int64_t n;
  } good[] = {{"1024", 1024},    {"64K", 65536},   {"64KB", 65536},
              {"64kb", 65536},   {"64KiB", 65536}, {"10MB", 10 << 20},
              {"1 GB", 1 << 30}, {"2048b", 2048},  {"1m", 1 << 20}};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    expect_good("cache", good[i].text);
    assert_int_equal(tc.cache, good[i].n);
  }
  expect_bad("cache", "big", "expected a size like 512, 64KB, 10MB, 2GB, found 'big'");
  expect_bad("cache", "10XB", "expected a size like 512, 64KB, 10MB, 2GB, found '10XB'");
  expect_bad("cache", "1.5GB", "expected a size like 512, 64KB, 10MB, 2GB, found '1.5GB'");
  expect_bad("cache", "2GB", "expected a size between 1KB and 1GB, found '2GB'");
  expect_bad("cache", "512", "expected a size between 1KB and 1GB, found '512'");
  expect_bad("cache", "99999999999TB",
             "expected a size like 512, 64KB, 10MB, 2GB, found '99999999999TB'");
}

static void test_snowflake(void **state) {
  (void)state;
  expect_good("owner", "\"81384788765712384\"");
  assert_true(tc.owner == UINT64_C(81384788765712384));
  expect_good("owner", "18446744073709551615");
  assert_true(tc.owner == UINT64_MAX);
  expect_good("owner", "\"\""); /* explicitly empty: unset */
  assert_true(tc.owner == 0);
  expect_bad("owner", "12345", "expected a Discord snowflake id (17-20 digits), found '12345'");
  expect_bad("owner", "18446744073709551616",
             "expected a Discord snowflake id (17-20 digits), found '18446744073709551616'");
  expect_bad("owner", "00000000000000000",
             "expected a Discord snowflake id (17-20 digits), found '00000000000000000'");
  expect_bad("owner", "-81384788765712384",
             "expected a Discord snowflake id (17-20 digits), found '-81384788765712384'");
  expect_bad("owner", "123456789012345678901",
             "expected a Discord snowflake id (17-20 digits), found '123456789012345678901'");
}

static void test_lists(void **state) {
  (void)state;
  expect_good("guilds", "[81384788765712384, \"175928847299117063\"]");
  assert_int_equal(tc.guilds.n, 2);
  expect_good("guilds", "\"81384788765712384 , 175928847299117063,\""); /* comma list */
  assert_int_equal(tc.guilds.n, 2);
  assert_true(tc.guilds.ids[1] == UINT64_C(175928847299117063));
  expect_good("guilds", "[]");
  assert_int_equal(tc.guilds.n, 0);
  expect_good("tags", "[x]");
  assert_int_equal(tc.tags.n, 1);
  expect_good("tags", "one, two ,three");
  assert_int_equal(tc.tags.n, 3);
  assert_string_equal(tc.tags.v[1], "two");
  expect_good("tags", "[]");
  assert_int_equal(tc.tags.n, 0);
  expect_bad("guilds", "\"81384788765712384,42\"",
             "expected a list of Discord snowflake ids (17-20 digits each), found '42'");
  expect_bad("guilds", "{a: 1}",
             "expected a list of Discord snowflake ids (17-20 digits each), found a map");
  expect_bad("tags", "[[a]]", "expected a list of strings, found a nested item");
  /* Every bad item of a sequence is reported, each at its own line. */
  souk__conf_report_t rep = {0};
  assert_int_equal(load_text("t:\n  guilds:\n    - 1\n    - 81384788765712384\n    - x\n", &rep),
                   SOUK_ECONFIG);
  assert_int_equal(rep.n, 2);
  assert_diag(&rep, 0,
              "test.yaml:3: t.guilds: expected a list of Discord snowflake ids "
              "(17-20 digits each), found '1'");
  assert_diag(&rep, 1,
              "test.yaml:5: t.guilds: expected a list of Discord snowflake ids "
              "(17-20 digits each), found 'x'");
  souk__conf_report_free(&rep);
}

static void test_string(void **state) {
  (void)state;
  expect_good("name", "\"0123456789\"");
  assert_string_equal(tc.name, "0123456789");
  expect_good("name", "ééééééééé"); /* characters, not bytes */
  expect_good("name", "yes");       /* a string key takes the text as written */
  assert_string_equal(tc.name, "yes");
  expect_good("name", "\"\"");
  assert_null(tc.name);
  expect_bad("name", "01234567890", "expected text of at most 10 characters, found 11 characters");
  expect_bad("name", "[a]", "expected text of at most 10 characters, found a list");
  expect_bad("name", "\"a\\0b\"", "expected text without NUL characters, found a NUL character");
  expect_bad("motd", "{a: b}", "expected text, found a map");
}

static void test_double(void **state) {
  (void)state;
  expect_good("ratio", "1");
  assert_true(tc.ratio == 1.0);
  expect_good("ratio", "1e-3");
  assert_true(tc.ratio == 1e-3);
  expect_bad("ratio", "1.5", "expected a number between 0 and 1, found '1.5'");
  expect_bad("ratio", "nan", "expected a number between 0 and 1, found 'nan'");
  expect_bad("ratio", "0x1p-2", "expected a number between 0 and 1, found '0x1p-2'");
  expect_bad("ratio", "half", "expected a number between 0 and 1, found 'half'");
}

static void test_url(void **state) {
  (void)state;
  static const char *const good[] = {
      "http://localhost",         "https://discord.com/api/v10", "ws://127.0.0.1:8080/x?y=1",
      "wss://gateway.discord.gg", "postgres://u@db:5432/souk",   "postgresql://db/souk",
      "redis://[::1]:6379/0",     "rediss://cache.example",      "HTTPS://EXAMPLE.COM",
      "http://host?q=1"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    expect_good("url", good[i]);
    /* Whatever the config accepts, the network code can split. */
    souk_url_t u;
    assert_int_equal(souk_url_parse(good[i], &u), 0);
    souk_url_free(&u);
  }
  expect_good("url", "unix:///run/souk.sock");
  const char *want_pre = "expected a URL like https://host[:port]/path (http, https, ws, wss, "
                         "postgres, postgresql, redis, rediss or unix), found ";
  static const char *const bad[] = {
      "ftp://x",         "discord.com",   "https://",    "https://h:0",
      "https://h:70000", "https://h:x",   "https://a b", "http://[zz]",
      "http://u@v@host", "unix://host/x", "://x",        "https://h:123456"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char want[512], quoted[128];
    snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
    snprintf(want, sizeof want, "%s'%s'", want_pre, bad[i]);
    expect_bad("url", quoted, want);
  }
}

static const char *const good_token =
    "MTAwMDAwMDAwMDAwMDAwMDAx.GsoukT.c291a190ZXN0X3Rva2VuX25vdF9hX3JlYWxfb25l";

static void test_token(void **state) {
  (void)state;
  const char *want = "expected a Discord bot token (three dot-separated base64url parts), "
                     "found a malformed value";
  /* Good tokens come from the environment (in the file they warn). */
  static const char *const good[] = {
      good_token,
      /* Padding on the id part is accepted; a 19-digit id. */
      "MTA4NDkyODQ3Mjk5MTE3MDYzNA==.abcd.aaaaaaaaaaaaaaaaaaaa",
      "MTA4NDkyODQ3Mjk5MTE3MDYzNA.ab-_.aaaaaaaa_aaaaaaaaaa-a",
  };
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    souk__conf_report_t rep = {0};
    setenv("SOUK_T_TOKEN", good[i], 1);
    assert_int_equal(load_text("", &rep), 0);
    assert_int_equal(rep.n, 0);
    assert_string_equal(tc.token, good[i]);
  }
  unsetenv("SOUK_T_TOKEN");
  static const char *const bad[] = {
      "MTAwMDAwMDAwMDAwMDAwMDAx.GsoukT",                                 /* two parts */
      "MTAwMDAwMDAwMDAwMDAwMDAx.GsoukT.c291a190ZXN0X3Rva2VuX25v.dA",     /* four parts */
      "aGVsbG8gd29ybGQ.GsoukT.c291a190ZXN0X3Rva2VuX25vdF9hX3JlYWxfb25l", /* not an id */
      "MTIzNDU.GsoukT.c291a190ZXN0X3Rva2VuX25vdF9hX3JlYWxfb25l",         /* too short an id */
      "MTAwMDAwMDAwMDAwMDAwMDAx.Gso.c291a190ZXN0X3Rva2VuX25vdF9hX3JlYWxfb25l",
      "MTAwMDAwMDAwMDAwMDAwMDAx.GsoukT.short",
      "MTAwMDAwMDAwMDAwMDAwMDAx.Gso+kT.c291a190ZXN0X3Rva2VuX25vdF9hX3JlYWxfb25l",
      "MTAwMDAwMDAwMDAwMDAwMDAx..c291a190ZXN0X3Rva2VuX25vdF9hX3JlYWxfb25l",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char yaml[256];
    snprintf(yaml, sizeof yaml, "t:\n  token: %s\n", bad[i]);
    souk__conf_report_t rep = {0};
    assert_int_equal(load_text(yaml, &rep), SOUK_ECONFIG);
    /* A secret warning and the error; neither quotes the value. */
    assert_int_equal(rep.nerr, 1);
    assert_true(report_has(&rep, want));
    for (size_t j = 0; j < rep.n; j++)
      assert_null(strstr(rep.v[j].msg, "GsoukT"));
    souk__conf_report_free(&rep);
  }
  souk__conf_report_t rep = {0};
  assert_int_equal(load_text("t:\n  token: Bot MTAwMDAwMDAwMDAwMDAwMDAx.GsoukT.x\n", &rep),
                   SOUK_ECONFIG);
  assert_true(report_has(&rep, "leave out the 'Bot ' prefix"));
  souk__conf_report_free(&rep);
}

/* Five different mistakes give five diagnostics, each with its line. */
static void test_five_errors(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  assert_int_equal(souk__config_load(FIX "five_errors.yaml", true, secs, NSECS, &rep),
                   SOUK_ECONFIG);
  assert_int_equal(rep.n, 5);
  assert_int_equal(rep.nerr, 5);
  assert_diag(&rep, 0,
              FIX "five_errors.yaml:3: t.count: expected an integer between 1 and 100, found "
                  "'300'");
  assert_diag(&rep, 1,
              FIX "five_errors.yaml:4: t.color: expected one of red, green, blue, found 'purple'");
  assert_diag(&rep, 2,
              FIX "five_errors.yaml:5: t.timeout: expected a duration like 30s, 5m, 2h, found "
                  "'soon'");
  assert_diag(&rep, 3,
              FIX "five_errors.yaml:6: t.owner: expected a Discord snowflake id (17-20 digits), "
                  "found '12345'");
  assert_diag(&rep, 4, FIX "five_errors.yaml:7: t.cout: unknown key; did you mean 't.count'?");
  /* Nothing was applied. */
  assert_int_equal(tc.count, 0);
  souk__conf_report_free(&rep);
}

static void test_syntax_error(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  /* Environment problems are still reported alongside a syntax error. */
  setenv("SOUK_T_COUNT", "many", 1);
  assert_int_equal(souk__config_load(FIX "syntax_error.yaml", true, secs, NSECS, &rep),
                   SOUK_ECONFIG);
  print_report(&rep);
  assert_int_equal(rep.n, 2);
  assert_string_equal(rep.v[0].file, FIX "syntax_error.yaml");
  assert_int_equal(rep.v[0].line, 4);
  assert_non_null(strstr(rep.v[0].msg, "YAML syntax error"));
  assert_diag(&rep, 1,
              "env SOUK_T_COUNT: t.count: expected an integer between 1 and 100, found 'many'");
  souk__conf_report_free(&rep);

  /* An unterminated quote is reported too, with a line. */
  assert_int_equal(load_text("t:\n  name: \"abc\n", &rep), SOUK_ECONFIG);
  assert_int_equal(rep.n, 2);
  assert_true(rep.v[0].line >= 2);
  assert_non_null(strstr(rep.v[0].msg, "YAML syntax error"));
  souk__conf_report_free(&rep);
}

static void test_unknown(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  const char *yaml = "t:\n"             /* 1 */
                     "  cout: 4\n"      /* 2: typo */
                     "  deep:\n"        /* 3 */
                     "    inner:\n"     /* 4 */
                     "      valeu: 3\n" /* 5: typo two levels down */
                     "  shallow: 1\n"   /* 6: nothing close */
                     "  value: 1\n"     /* 7: right name, wrong level */
                     "  level: info\n"  /* 8: belongs in section u */
                     "tt:\n"            /* 9: section typo */
                     "  x: 1\n"         /* 10 */
                     "count: 3\n"       /* 11: key at the top level */
                     "zzzzzz: 1\n";     /* 12 */
  assert_int_equal(load_text(yaml, &rep), SOUK_ECONFIG);
  print_report(&rep);
  assert_int_equal(rep.n, 8);
  assert_diag(&rep, 0, "test.yaml:2: t.cout: unknown key; did you mean 't.count'?");
  assert_diag(&rep, 1,
              "test.yaml:5: t.deep.inner.valeu: unknown key; did you mean 't.deep.inner.value'?");
  assert_diag(&rep, 2, "test.yaml:6: t.shallow: unknown key");
  assert_diag(&rep, 3, "test.yaml:7: t.value: unknown key; did you mean 't.deep.inner.value'?");
  assert_diag(&rep, 4, "test.yaml:8: t.level: unknown key; did you mean 'u.level'?");
  assert_diag(&rep, 5, "test.yaml:9: tt: unknown section; did you mean 't'?");
  assert_diag(&rep, 6, "test.yaml:11: count: unknown section; did you mean 't.count'?");
  assert_diag(&rep, 7, "test.yaml:12: zzzzzz: unknown section (known sections: t, u)");
  souk__conf_report_free(&rep);
}

static void test_nested_and_types(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  /* A flat dotted key is the same key as the nested form. */
  assert_int_equal(load_text("t:\n  deep.inner.value: 4\n", &rep), 0);
  assert_int_equal(tc.deep, 4);
  assert_int_equal(load_text("t:\n  deep:\n    inner.value: 5\n", &rep), 0);
  assert_int_equal(tc.deep, 5);
  assert_int_equal(load_text("t: {deep: {inner: {value: 6}}}\n", &rep), 0);
  assert_int_equal(tc.deep, 6);
  assert_int_equal(rep.n, 0);

  const char *yaml = "t:\n"             /* 1 */
                     "  deep: 3\n"      /* 2: a value where a map belongs */
                     "  count:\n"       /* 3: a map where a value belongs */
                     "    a: 1\n"       /* 4 */
                     "  flag: [true]\n" /* 5: a list where a value belongs */
                     "u: 3\n"           /* 6: a section that is not a map */
                     "? [a]\n"          /* 7: a key that is not text */
                     ": 1\n";
  assert_int_equal(load_text(yaml, &rep), SOUK_ECONFIG);
  print_report(&rep);
  assert_int_equal(rep.n, 5);
  assert_diag(&rep, 0, "test.yaml:2: t.deep: expected a map of settings (inner.value), found '3'");
  assert_diag(&rep, 1, "test.yaml:4: t.count: expected an integer between 1 and 100, found a map");
  assert_diag(&rep, 2,
              "test.yaml:5: t.flag: expected true or false (or yes/no, on/off, 1/0), found a list");
  assert_diag(&rep, 3, "test.yaml:6: u: expected a map of settings (level, any), found '3'");
  assert_diag(&rep, 4, "test.yaml:7: expected a section name, found a list");
  souk__conf_report_free(&rep);

  assert_int_equal(load_text("- t\n- u\n", &rep), SOUK_ECONFIG);
  assert_diag(&rep, 0,
              "test.yaml:1: expected a map of sections (such as 'discord:') at the top level, "
              "found a list");
  souk__conf_report_free(&rep);
}

static void test_duplicates(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  const char *yaml = "t:\n"                    /* 1 */
                     "  count: 4\n"            /* 2 */
                     "  count: 5\n"            /* 3: same key twice */
                     "  deep:\n"               /* 4 */
                     "    inner:\n"            /* 5 */
                     "      value: 1\n"        /* 6 */
                     "  deep.inner.value: 2\n" /* 7: the same key, flat */
                     "u:\n"                    /* 8 */
                     "  level: info\n"         /* 9 */
                     "u:\n"                    /* 10: a section twice */
                     "  level: warn\n";        /* 11 */
  assert_int_equal(load_text(yaml, &rep), SOUK_ECONFIG);
  print_report(&rep);
  assert_int_equal(rep.n, 3);
  assert_diag(&rep, 0, "test.yaml:3: t.count: duplicate key; first set at line 2");
  assert_diag(&rep, 1, "test.yaml:7: t.deep.inner.value: duplicate key; first set at line 6");
  assert_diag(&rep, 2, "test.yaml:10: u: duplicate section; first at line 8");
  souk__conf_report_free(&rep);
}

static void test_yaml_features(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  /* Aliases are refused (and never expanded). */
  assert_int_equal(load_text("t:\n  count: &c 4\n  workers: *c\n", &rep), SOUK_ECONFIG);
  assert_int_equal(rep.n, 1);
  assert_diag(&rep, 0,
              "test.yaml:3: YAML aliases (*c) are not supported in the config file; write the "
              "value out");
  souk__conf_report_free(&rep);
  /* One document only. */
  assert_int_equal(load_text("t:\n  count: 4\n---\nt:\n  count: 5\n", &rep), SOUK_ECONFIG);
  assert_diag(&rep, 0, "test.yaml:3: only one YAML document is allowed in a config file");
  souk__conf_report_free(&rep);
  /* Deep nesting is cut off with a message, not a crash. */
  souk_buf_t b;
  souk_buf_init(&b);
  for (int i = 0; i < 100; i++)
    souk_buf_putc(&b, '[');
  for (int i = 0; i < 100; i++)
    souk_buf_putc(&b, ']');
  assert_int_equal(load_text(b.data, &rep), SOUK_ECONFIG);
  assert_true(report_has(&rep, "nested too deeply"));
  souk_buf_free(&b);
  souk__conf_report_free(&rep);
  /* Null values keep the default; tags and comments are fine. */
  assert_int_equal(load_text("t:\n  count:\n  motd: ~\n  name: !!str 12 # c\n", &rep), 0);
  assert_int_equal(tc.count, 5);
  assert_string_equal(tc.motd, "hi");
  assert_string_equal(tc.name, "12");
  souk__conf_report_free(&rep);
}

static void test_utf8(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  /* libyaml refuses invalid UTF-8 in the file; the line is found from the
   * byte offset. */
  const char bad[] = "t:\n  count: 4\n  name: ab\xff\n";
  assert_int_equal(souk__config_load_mem("test.yaml", bad, sizeof bad - 1, secs, NSECS, &rep),
                   SOUK_ECONFIG);
  assert_int_equal(rep.n, 1);
  assert_int_equal(rep.v[0].line, 3);
  assert_non_null(strstr(rep.v[0].msg, "UTF-8"));
  souk__conf_report_free(&rep);
  /* The environment is checked by the config itself. */
  setenv("SOUK_T_NAME", "ab\xc3\x28", 1);
  assert_int_equal(load_text("", &rep), SOUK_ECONFIG);
  assert_int_equal(rep.n, 1);
  assert_diag(&rep, 0, "env SOUK_T_NAME: t.name: expected UTF-8 text, found invalid bytes");
  souk__conf_report_free(&rep);
  /* Overlong encodings and surrogates are invalid too. */
  setenv("SOUK_T_NAME", "\xc0\xaf", 1);
  assert_int_equal(load_text("", &rep), SOUK_ECONFIG);
  setenv("SOUK_T_NAME", "\xed\xa0\x80", 1);
  assert_int_equal(load_text("", &rep), SOUK_ECONFIG);
  setenv("SOUK_T_NAME", "\xf0\x9f\x98\x80", 1);
  assert_int_equal(rep.nerr, 2);
  souk__conf_report_free(&rep);
  assert_int_equal(load_text("", &rep), 0);
  assert_string_equal(tc.name, "\xf0\x9f\x98\x80");
  /* Control characters in a quoted value are escaped in messages. */
  assert_int_equal(load_text("t:\n  color: \"a\\nb\\tc\\x01\"\n", &rep), SOUK_ECONFIG);
  assert_diag(&rep, 0,
              "test.yaml:2: t.color: expected one of red, green, blue, found "
              "'a\\nb\\tc\\x01'");
  souk__conf_report_free(&rep);
  /* Long values are cut short in messages. */
  assert_int_equal(
      load_text("t:\n  color: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
                &rep),
      SOUK_ECONFIG);
  assert_non_null(strstr(rep.v[0].msg, "aaaa...'"));
  souk__conf_report_free(&rep);
}

static void test_env(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  write_file("souk.yaml", "t:\n  count: 10\n  flag: true\n  name: file\n");
  setenv("SOUK_T_COUNT", "20", 1);
  setenv("SOUK_T_GUILDS", "81384788765712384, 175928847299117063", 1);
  setenv("SOUK_T_DEEP_INNER_VALUE", "9", 1);
  setenv("SOUK_T_NAME", "", 1); /* empty counts as unset */
  assert_int_equal(souk__config_load("souk.yaml", false, secs, NSECS, &rep), 0);
  assert_int_equal(rep.n, 0);
  assert_int_equal(tc.count, 20); /* the environment beats the file */
  assert_true(tc.flag);           /* the file beats the default */
  assert_string_equal(tc.name, "file");
  assert_int_equal(tc.guilds.n, 2);
  assert_int_equal(tc.deep, 9);
  souk_buf_t b;
  souk_buf_init(&b);
  souk__config_dump(secs, NSECS, &b);
  assert_non_null(strstr(b.data, "t.count = 20 (env SOUK_T_COUNT)\n"));
  assert_non_null(strstr(b.data, "t.flag = true (souk.yaml:3)\n"));
  assert_non_null(strstr(b.data, "t.timeout = 30s (default)\n"));
  souk_buf_free(&b);

  /* Bad environment values name the variable. */
  setenv("SOUK_T_COUNT", "0", 1);
  setenv("SOUK_T_GUILDS", "81384788765712384,nope", 1);
  assert_int_equal(souk__config_load("souk.yaml", false, secs, NSECS, &rep), SOUK_ECONFIG);
  assert_int_equal(rep.n, 2);
  assert_diag(&rep, 0,
              "env SOUK_T_COUNT: t.count: expected an integer between 1 and 100, found '0'");
  assert_diag(&rep, 1,
              "env SOUK_T_GUILDS: t.guilds: expected a list of Discord snowflake ids "
              "(17-20 digits each), found 'nope'");
  assert_int_equal(tc.count, 20); /* nothing applied */
  souk__conf_report_free(&rep);

  /* A SOUK_T_ variable that is no setting gets a warning with a guess. */
  unsetenv("SOUK_T_COUNT");
  unsetenv("SOUK_T_GUILDS");
  setenv("SOUK_T_COUNTT", "3", 1);
  assert_int_equal(souk__config_load("souk.yaml", false, secs, NSECS, &rep), 0);
  assert_int_equal(rep.n, 1);
  assert_diag(&rep, 0,
              "env SOUK_T_COUNTT: warning: not a setting of section 't'; did you mean "
              "SOUK_T_COUNT?");
  souk__conf_report_free(&rep);
}

static void test_missing_file(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  /* The default ./souk.yaml may be missing: defaults and environment. */
  setenv("SOUK_T_COUNT", "7", 1);
  assert_int_equal(souk__config_load(SOUK_CONFIG_DEFAULT_PATH, false, secs, NSECS, &rep), 0);
  assert_int_equal(rep.n, 0);
  assert_int_equal(tc.count, 7);
  assert_int_equal(souk__config_load(NULL, false, secs, NSECS, NULL), 0);
  /* An explicit -c PATH must exist. */
  assert_int_equal(souk__config_load("nope.yaml", true, secs, NSECS, &rep), SOUK_ECONFIG);
  assert_diag(&rep, 0, "nope.yaml: cannot read the config file: No such file or directory");
  souk__conf_report_free(&rep);
  /* A directory is not a file. */
  assert_int_equal(souk__config_load(".", true, secs, NSECS, &rep), SOUK_ECONFIG);
  assert_diag(&rep, 0, ".: cannot read the config file: Is a directory");
  souk__conf_report_free(&rep);
  /* A NULL report still fails the load. */
  assert_int_equal(souk__config_load("nope.yaml", true, secs, NSECS, NULL), SOUK_ECONFIG);
}

static void test_dotenv(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  setenv("SOUK_DOTENV_REAL", "from-shell", 1);
  write_file(".env", "# a comment\n"                                  /* 1 */
                     "\n"                                             /* 2 */
                     "SOUK_DOTENV_A=plain value # comment\n"          /* 3 */
                     "export SOUK_DOTENV_B='single # kept'\n"         /* 4 */
                     "SOUK_DOTENV_C=\"line\\nnext \\\"q\\\" \\\\\"\n" /* 5 */
                     "SOUK_DOTENV_REAL=from-dotenv\n"                 /* 6 */
                     "this is not a line\n"                           /* 7 */
                     "SOUK_DOTENV_D=\"never closed\n"                 /* 8 */
                     "  SOUK_DOTENV_E = spaced  \r\n"                 /* 9 */
                     "SOUK_DOTENV_F=\"bad \\q escape\"\n"             /* 10 */
                     "SOUK_DOTENV_G=\"x\" trailing\n"                 /* 11 */
                     "SOUK_DOTENV_H=a#b\n"                            /* 12 */
                     "SOUK_T_COUNT=12\n"                              /* 13 */
                     "SOUK_DOTENV_E=second wins\n");                  /* 14 */
  assert_int_equal(souk__config_load(NULL, false, secs, NSECS, &rep), SOUK_ECONFIG);
  print_report(&rep);
  assert_int_equal(rep.n, 4);
  assert_diag(&rep, 0,
              ".env:7: malformed line: expected KEY=VALUE, export KEY=VALUE or a # "
              "comment");
  assert_diag(&rep, 1, ".env:8: malformed line: unterminated double-quoted value");
  assert_diag(&rep, 2,
              ".env:10: malformed line: unknown escape in a double-quoted value (use "
              "\\n, \\\" or \\\\)");
  assert_diag(&rep, 3, ".env:11: malformed line: unexpected text after the closing quote");
  for (size_t i = 0; i < rep.n; i++)
    assert_null(strstr(rep.v[i].msg, "never closed"));
  souk__conf_report_free(&rep);
  assert_string_equal(getenv("SOUK_DOTENV_A"), "plain value");
  assert_string_equal(getenv("SOUK_DOTENV_B"), "single # kept");
  assert_string_equal(getenv("SOUK_DOTENV_C"), "line\nnext \"q\" \\");
  assert_string_equal(getenv("SOUK_DOTENV_REAL"), "from-shell"); /* not overridden */
  assert_string_equal(getenv("SOUK_DOTENV_E"), "second wins");
  assert_string_equal(getenv("SOUK_DOTENV_H"), "a#b");
  assert_null(getenv("SOUK_DOTENV_D"));

  /* With the bad lines gone the load succeeds and the .env value is used. */
  write_file(".env", "SOUK_T_COUNT=12\nSOUK_DOTENV_A=changed\n");
  assert_int_equal(souk__config_load(NULL, false, secs, NSECS, &rep), 0);
  assert_int_equal(tc.count, 12);
  /* A later load may replace what an earlier .env set (it is not "real"
   * environment), and drops variables the file no longer has. */
  assert_string_equal(getenv("SOUK_DOTENV_A"), "changed");
  assert_null(getenv("SOUK_DOTENV_B"));
  assert_string_equal(getenv("SOUK_DOTENV_REAL"), "from-shell");
  souk__conf_report_free(&rep);
}

static void test_dotenv_beside_config(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  assert_int_equal(mkdir("etc", 0700), 0);
  write_file("etc/souk.yaml", "t:\n  count: 3\n");
  write_file("etc/.env", "SOUK_DOTENV_SIDE=side\nSOUK_DOTENV_A=side\nSOUK_T_MOTD=from side\n");
  write_file(".env", "SOUK_DOTENV_A=cwd\n");
  assert_int_equal(souk__config_load("etc/souk.yaml", true, secs, NSECS, &rep), 0);
  assert_string_equal(getenv("SOUK_DOTENV_SIDE"), "side");
  assert_string_equal(getenv("SOUK_DOTENV_A"), "cwd"); /* the current directory's comes first */
  assert_string_equal(tc.motd, "from side");
  assert_int_equal(tc.count, 3);
  /* The same file reached by two paths is read once (no duplicate
   * problems). */
  write_file(".env", "broken line\n");
  assert_int_equal(souk__config_load("./souk.yaml", false, secs, NSECS, &rep), SOUK_ECONFIG);
  assert_int_equal(rep.n, 1);
  souk__conf_report_free(&rep);
}

static void test_secret_in_file(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  assert_int_equal(souk__config_load(FIX "secret.yaml", true, secs, NSECS, &rep), 0);
  assert_int_equal(rep.n, 1);
  assert_int_equal(rep.nerr, 0);
  assert_true(rep.v[0].warning);
  assert_diag(&rep, 0,
              FIX "secret.yaml:4: warning: t.token: a secret in the config file; set SOUK_T_TOKEN "
                  "in the environment (or .env) instead");
  assert_string_equal(tc.token, good_token); /* loaded anyway */
  souk_buf_t b;
  souk_buf_init(&b);
  souk__config_dump(secs, NSECS, &b);
  assert_null(strstr(b.data, "GsoukT"));
  assert_non_null(strstr(b.data, "t.token = set (from " FIX "secret.yaml:4)\n"));
  assert_non_null(strstr(b.data, "t.api.key = unset (default)\n"));
  souk_buf_reset(&b);
  assert_int_equal(souk__config_get_text(secs, NSECS, "t.token", &b), 0);
  assert_string_equal(b.data, "set");
  souk_buf_free(&b);
  souk__conf_report_free(&rep);

  /* From the environment: the dump names the variable; the log redacts
   * the value. */
  setenv("SOUK_T_API_KEY", "hunter2-but-longer", 1);
  assert_int_equal(load_text("", &rep), 0);
  souk_buf_init(&b);
  souk__config_dump(secs, NSECS, &b);
  assert_non_null(strstr(b.data, "t.api.key = set (from SOUK_T_API_KEY)\n"));
  assert_null(strstr(b.data, "hunter2"));
  souk_buf_free(&b);
  char line[] = "connecting with hunter2-but-longer";
  souk_log_redact(line, strlen(line));
  assert_null(strstr(line, "hunter2"));
  souk__conf_report_free(&rep);

  /* A malformed secret from the environment is never quoted either. */
  setenv("SOUK_T_TOKEN", "not-a-token-hunter3", 1);
  assert_int_equal(load_text("", &rep), SOUK_ECONFIG);
  assert_diag(&rep, 0,
              "env SOUK_T_TOKEN: t.token: expected a Discord bot token (three dot-separated "
              "base64url parts), found a malformed value");
  souk__conf_report_free(&rep);
}

static void test_require(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  assert_int_equal(load_text("", &rep), 0);
  assert_int_equal(souk__config_require(secs, NSECS, &rep), SOUK_ECONFIG);
  assert_int_equal(rep.n, 1);
  assert_diag(&rep, 0,
              "t.api.key: required but not set; set SOUK_T_API_KEY in the environment or .env");
  souk__conf_report_free(&rep);
  setenv("SOUK_T_API_KEY", "k", 1);
  assert_int_equal(load_text("", &rep), 0);
  assert_int_equal(souk__config_require(secs, NSECS, &rep), 0);
  assert_int_equal(rep.n, 0);
}

static void test_reload(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  souk_buf_t ch;
  souk_buf_init(&ch);
  write_file("souk.yaml", "t:\n  count: 10\n  cache: 1MB\n  motd: one\n  tags: [a]\n");
  assert_int_equal(souk__config_load("souk.yaml", true, secs, NSECS, &rep), 0);
  assert_string_equal(tc.motd, "one");

  /* Runtime keys change; others are reported as needing a restart. */
  write_file("souk.yaml",
             "t:\n  count: 11\n  cache: 2MB\n  motd: two\n  tags: [a, b]\n  color: green\n"
             "  guilds: [81384788765712384]\n  token: "
             "MTAwMDAwMDAwMDAwMDAwMDAx.GsoukT."
             "c291a190ZXN0X3Rva2VuX25vdF9hX3JlYWxfb25l\n");
  assert_int_equal(souk__config_reload("souk.yaml", true, secs, NSECS, &rep, &ch), 0);
  assert_int_equal(rep.nerr, 0);
  assert_string_equal(ch.data,
                      "t.count: 10 -> 11; t.color: red -> green; t.cache: 1MB -> 2MB (needs a "
                      "restart); t.guilds: [] -> [81384788765712384]; t.tags: [\"a\"] -> [\"a\", "
                      "\"b\"] (needs a restart); t.token: changed (needs a restart); t.motd: "
                      "\"one\" -> \"two\"");
  assert_int_equal(tc.count, 11);
  assert_int_equal(tc.color, 1);
  assert_int_equal(tc.cache, 1 << 20);
  assert_string_equal(tc.motd, "two");
  assert_int_equal(tc.tags.n, 1);
  assert_null(tc.token);
  assert_int_equal(tc.guilds.n, 1);
  souk__conf_report_free(&rep);

  /* An invalid file changes nothing, even its valid runtime keys. */
  souk_buf_reset(&ch);
  write_file("souk.yaml", "t:\n  count: 12\n  motd: three\n  color: mauve\n");
  assert_int_equal(souk__config_reload("souk.yaml", true, secs, NSECS, &rep, &ch), SOUK_ECONFIG);
  assert_int_equal(rep.nerr, 1);
  assert_int_equal(ch.len, 0);
  assert_int_equal(tc.count, 11);
  assert_string_equal(tc.motd, "two");
  souk__conf_report_free(&rep);

  /* An admin's change survives a reload; the env beats the file. */
  char err[256];
  souk_log_set_level(SOUK_LOG_OFF);
  assert_int_equal(souk__config_set(secs, NSECS, "t.motd", "admin says", err, sizeof err), 0);
  souk_log_set_level(SOUK_LOG_INFO);
  setenv("SOUK_T_COUNT", "50", 1);
  write_file("souk.yaml", "t:\n  count: 13\n  motd: four\n  cache: 1MB\n  tags: [a]\n");
  assert_int_equal(souk__config_reload("souk.yaml", true, secs, NSECS, &rep, &ch), 0);
  assert_string_equal(ch.data, "t.count: 11 -> 50; t.color: green -> red; t.guilds: "
                               "[81384788765712384] -> []");
  assert_string_equal(tc.motd, "admin says");
  assert_int_equal(tc.count, 50);
  souk_buf_t b;
  souk_buf_init(&b);
  souk__config_dump(secs, NSECS, &b);
  assert_non_null(strstr(b.data, "t.motd = \"admin says\" (admin)\n"));
  assert_non_null(strstr(b.data, "t.count = 50 (env SOUK_T_COUNT)\n"));
  assert_non_null(strstr(b.data, "t.cache = 1MB (souk.yaml:4)\n"));
  souk_buf_free(&b);

  /* No change: an empty list. */
  souk_buf_reset(&ch);
  assert_int_equal(souk__config_reload("souk.yaml", true, secs, NSECS, &rep, &ch), 0);
  assert_int_equal(ch.len, 0);
  assert_int_equal(souk__config_reload("souk.yaml", true, secs, NSECS, &rep, NULL), 0);
  souk_buf_free(&ch);
  souk__conf_report_free(&rep);
}

static void test_set_get(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  char err[256];
  souk_log_set_level(SOUK_LOG_OFF);
  assert_int_equal(load_text("", &rep), 0);
  assert_int_equal(souk__config_set(secs, NSECS, "t.count", "77", err, sizeof err), 0);
  assert_string_equal(err, "");
  assert_int_equal(tc.count, 77);
  assert_int_equal(souk__config_set(secs, NSECS, "t.motd", "x", err, sizeof err), 0);
  assert_int_equal(souk__config_set(secs, NSECS, "t.motd", "y", err, sizeof err), 0);
  assert_string_equal(tc.motd, "y");
  assert_int_equal(souk__config_set(secs, NSECS, "t.motd", "", err, sizeof err), 0);
  assert_null(tc.motd);
  assert_int_equal(souk__config_set(secs, NSECS, "t.guilds", "81384788765712384", err, sizeof err),
                   0);
  assert_int_equal(tc.guilds.n, 1);
  assert_int_equal(souk__config_set(secs, NSECS, "t.timeout", "2m", err, sizeof err), 0);

  assert_int_equal(souk__config_set(secs, NSECS, "t.cache", "1MB", err, sizeof err),
                   SOUK_EFORBIDDEN);
  assert_string_equal(err, "t.cache cannot be changed at run time; change it in the config file "
                           "or the environment and restart");
  assert_int_equal(souk__config_set(secs, NSECS, "t.count", "1000", err, sizeof err), SOUK_EINVAL);
  assert_string_equal(err, "t.count: expected an integer between 1 and 100, found '1000'");
  assert_int_equal(tc.count, 77);
  assert_int_equal(souk__config_set(secs, NSECS, "t.cuont", "1", err, sizeof err), SOUK_ENOTFOUND);
  assert_string_equal(err, "unknown setting 't.cuont'; did you mean 't.count'?");
  assert_int_equal(souk__config_set(secs, NSECS, "x.count", "1", err, sizeof err), SOUK_ENOTFOUND);
  assert_string_equal(err, "unknown setting 'x.count'; did you mean 't'?");
  assert_int_equal(souk__config_set(secs, NSECS, "count", "1", err, sizeof err), SOUK_ENOTFOUND);
  assert_int_equal(souk__config_set(secs, NSECS, "t.count", "1", NULL, 0), 0);
  /* A short buffer is cut, still NUL-terminated. */
  assert_int_equal(souk__config_set(secs, NSECS, "t.cache", "1", err, 8), SOUK_EFORBIDDEN);
  assert_string_equal(err, "t.cache");

  souk_buf_t b;
  souk_buf_init(&b);
  static const struct {
    const char *key, *text;
  } want[] = {{"t.count", "1"},
              {"t.timeout", "2m"},
              {"t.cache", "64MB"},
              {"t.name", "unset"},
              {"t.tags", "[\"a\", \"b\"]"},
              {"t.guilds", "[81384788765712384]"},
              {"t.ratio", "0.5"},
              {"t.flag", "false"},
              {"t.color", "red"},
              {"t.token", "unset"},
              {"t.url", "\"https://example.com/x\""},
              {"u.level", "info"},
              {"t.owner", "unset"}};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    souk_buf_reset(&b);
    assert_int_equal(souk__config_get_text(secs, NSECS, want[i].key, &b), 0);
    assert_string_equal(b.data, want[i].text);
  }
  assert_int_equal(souk__config_get_text(secs, NSECS, "t.nope", &b), SOUK_ENOTFOUND);
  assert_int_equal(souk__config_get_text(secs, NSECS, "nope", &b), SOUK_ENOTFOUND);
  souk_buf_free(&b);
  souk_log_set_level(SOUK_LOG_INFO);
}

static void test_dump(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  assert_int_equal(load_text("u:\n  level: warn\n  any: -3\n", &rep), 0);
  souk_buf_t b;
  souk_buf_init(&b);
  const souk_conf_section_t one[] = {{"u", u_keys, &uc, NULL}};
  souk__config_dump(one, 1, &b);
  assert_string_equal(b.data, "u.level = warn (test.yaml:2)\n"
                              "u.any = -3 (test.yaml:3)\n");
  souk_buf_free(&b);
}

/* The real `discord` table: the shipped defaults parse, a valid section
 * loads, and the classic mistakes read well. */
static void test_discord_table(void **state) {
  (void)state;
  const souk_conf_section_t ds[] = {
      {"discord", souk__discord_conf_keys, &souk__discord_conf, NULL}};
  souk__conf_report_t rep = {0};
  setenv("SOUK_DISCORD_TOKEN", good_token, 1);
  assert_int_equal(souk__config_load(FIX "discord.yaml", true, ds, 1, &rep), 0);
  print_report(&rep);
  assert_int_equal(rep.n, 0);
  assert_string_equal(souk__discord_conf.token, good_token);
  assert_true(souk__discord_conf.application_id == UINT64_C(123456789012345678));
  assert_string_equal(souk__discord_conf.api_base, "https://discord.com/api/v10");
  assert_string_equal(souk__discord_conf.gateway_url, "wss://gateway.discord.gg");
  assert_int_equal(souk__discord_conf.shard_count, 4);
  assert_int_equal(souk__discord_conf.shard_last, 1);
  assert_int_equal(souk__discord_compress(), 0); /* "compress: false": none */
  assert_int_equal(souk__discord_conf.presence_status, 2);
  assert_int_equal(souk__discord_conf.rest_timeout_ms, 20000);
  souk_buf_t b;
  souk_buf_init(&b);
  souk__config_dump(ds, 1, &b);
  assert_non_null(strstr(b.data, "discord.token = set (from SOUK_DISCORD_TOKEN)\n"));
  assert_non_null(strstr(b.data, "discord.shards.count = 4 (" FIX "discord.yaml:11)\n"));
  assert_null(strstr(b.data, "GsoukT"));
  souk_buf_free(&b);

  setenv("SOUK_DISCORD_INTENTS", "lots", 1);
  setenv("SOUK_DISCORD_TOKEN", "Bot abc", 1);
  assert_int_equal(souk__config_load(FIX "discord_errors.yaml", true, ds, 1, &rep), SOUK_ECONFIG);
  print_report(&rep);
  const char *f = FIX "discord_errors.yaml";
  char want[512];
  static const char *const msgs[] = {
      "%s:3: discord.large_threshold: expected an integer between 50 and 250, found '300'",
      "%s:5: discord.presence.status: expected one of online, idle, dnd, invisible, found 'busy'",
      "%s:7: discord.rest.timeout: expected a duration like 30s, 5m, 2h, found 'soon'",
      "%s:8: discord.application_id: expected a Discord snowflake id (17-20 digits), found "
      "'12345'",
      "%s:9: discord.shard: unknown key; did you mean 'discord.shards'?",
      "%s:11: discord.api_base: expected a URL like https://host[:port]/path (http, https, ws, "
      "wss, postgres, postgresql, redis, rediss or unix), found 'ftp://discord.com/api'",
      "env SOUK_DISCORD_TOKEN: discord.token: expected a Discord bot token (three dot-separated "
      "base64url parts), found a malformed value (leave out the 'Bot ' prefix)",
      "env SOUK_DISCORD_INTENTS: discord.intents: expected an integer between 0 and 67108863, "
      "found 'lots'",
  };
  assert_int_equal(rep.n, sizeof msgs / sizeof *msgs);
  for (size_t i = 0; i < rep.n; i++) {
    snprintf(want, sizeof want, msgs[i], f);
    assert_diag(&rep, i, want);
  }
  souk__conf_report_free(&rep);
  /* Nothing of the bad load was applied. */
  assert_int_equal(souk__discord_conf.large_threshold, 250);

  /* The live presence can change at run time; the shard count cannot. */
  char err[256];
  souk_log_set_level(SOUK_LOG_OFF);
  assert_int_equal(souk__config_set(ds, 1, "discord.presence.status", "idle", err, sizeof err), 0);
  assert_int_equal(souk__discord_conf.presence_status, 1);
  assert_int_equal(souk__config_set(ds, 1, "discord.shards.count", "8", err, sizeof err),
                   SOUK_EFORBIDDEN);
  souk_log_set_level(SOUK_LOG_INFO);
  souk__config_free(ds, 1);
  assert_null(souk__discord_conf.token);
  assert_null(souk__discord_conf.api_base);
}

static void test_load_replaces(void **state) {
  (void)state;
  /* Loading again frees what the first load owned (valgrind checks). */
  souk__conf_report_t rep = {0};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(
        load_text(
            "t:\n  name: a\n  tags: [x, y]\n  guilds: [81384788765712384]\n"
            "  token: MTAwMDAwMDAwMDAwMDAwMDAx.GsoukT.c291a190ZXN0X3Rva2VuX25vdF9hX3JlYWxfb25l\n",
            &rep),
        0);
  }
  assert_string_equal(tc.name, "a");
  souk__conf_report_free(&rep);
  souk__config_free(secs, NSECS);
  assert_null(tc.name);
  assert_null(tc.url);
  assert_int_equal(tc.tags.n, 0);
  assert_null(tc.tags.v);
  assert_int_equal(tc.guilds.n, 0);
}

static void test_many_problems(void **state) {
  (void)state;
  /* Thousands of problems are counted, but only a bounded number kept. */
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_puts(&b, "t:\n");
  for (int i = 0; i < 5000; i++)
    souk_buf_printf(&b, "  k%d: 1\n", i);
  souk__conf_report_t rep = {0};
  assert_int_equal(load_text(b.data, &rep), SOUK_ECONFIG);
  assert_int_equal(rep.nerr, 5000);
  assert_true(rep.n <= 1001);
  assert_string_equal(rep.v[rep.n - 1].msg, "too many problems; the rest are not shown");
  souk__conf_report_free(&rep);
  souk_buf_free(&b);
}

/* A broken default is a programming error: the process aborts, naming it. */
static void test_bad_default_asserts(void **state) {
  (void)state;
  static const souk_conf_key_t bad_keys[] = {
      {"n", SOUK_CONF_INT, 0, "ten", 0, 0, NULL, 0, "x"},
      {0},
  };
  static int64_t n;
  const souk_conf_section_t bs[] = {{"b", bad_keys, &n, NULL}};
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open("/dev/null", 1);
    if (fd >= 0) dup2(fd, 2);
    souk__config_load_mem("x", "", 0, bs, 1, NULL);
    _exit(0);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
}

/* Every output of a value hides a URL's password: the dump, errors that
 * quote the value, change notes; a password written in the file warns like
 * a secret, one from the environment does not. */
static void test_url_password_hidden(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  assert_int_equal(load_text("t:\n  url: \"postgres://bob:hunter2pw@db:5432/souk\"\n", &rep), 0);
  assert_int_equal(rep.n, 1);
  assert_diag(&rep, 0,
              "test.yaml:2: warning: t.url: a password in the config file; set SOUK_T_URL in the "
              "environment (or .env) instead");
  souk__conf_report_free(&rep);
  assert_string_equal(tc.url, "postgres://bob:hunter2pw@db:5432/souk"); /* still used */
  souk_buf_t b;
  souk_buf_init(&b);
  souk__config_dump(secs, NSECS, &b);
  assert_non_null(strstr(b.data, "t.url = \"postgres://bob:***@db:5432/souk\" (test.yaml:2)"));
  assert_null(strstr(b.data, "hunter2pw"));
  souk_buf_reset(&b);
  assert_int_equal(souk__config_get_text(secs, NSECS, "t.url", &b), 0);
  assert_string_equal(b.data, "\"postgres://bob:***@db:5432/souk\"");
  /* The password is a log secret from now on, in any shape. */
  char line[] = "connect failed: password hunter2pw refused";
  size_t n = souk_log_redact(line, strlen(line));
  line[n] = 0;
  assert_null(strstr(line, "hunter2pw"));
  /* A string key (not a URL type) holding a URL, and an error quoting it. */
  setenv("SOUK_T_MOTD", "see redis://:s3cretpass@cache:6379/0 and more", 1);
  assert_int_equal(load_text("", &rep), 0);
  assert_int_equal(rep.n, 0); /* the environment is where it belongs */
  souk_buf_reset(&b);
  souk__config_dump(secs, NSECS, &b);
  assert_non_null(strstr(b.data, "t.motd = \"see redis://:***@cache:6379/0 and more\""));
  assert_null(strstr(b.data, "s3cretpass"));
  setenv("SOUK_T_COUNT", "https://u:zz9secretzz@h/", 1);
  assert_int_equal(load_text("", &rep), SOUK_ECONFIG);
  assert_true(report_has(&rep, "found 'https://u:***@h/'"));
  assert_false(report_has(&rep, "zz9secretzz"));
  souk__conf_report_free(&rep);
  souk_buf_free(&b);
}

/* Checks of single keys run with everything else: from the file (with its
 * line), the environment, list items, admin changes; never for unset. */
static bool check_even(const char *v, souk_buf_t *expected) {
  if (strlen(v) % 2 == 0) return true;
  souk_buf_puts(expected, "an even number of characters");
  return false;
}

static bool check_short(const char *v, souk_buf_t *expected) {
  if (strlen(v) <= 2) return true;
  souk_buf_puts(expected, "at most two characters");
  return false;
}

static void test_key_checks(void **state) {
  (void)state;
  static const souk_conf_check_t checks[] = {{"name", check_even}, {"tags", check_short}, {0}};
  const souk_conf_section_t cs[] = {{"t", t_keys, &tc, checks}, {"u", u_keys, &uc, NULL}};
  souk__conf_report_t rep = {0};
  const char *yaml = "t:\n  name: abc\n  tags: [ab, cde, fg]\n  count: 500\n";
  assert_int_equal(souk__config_load_mem("test.yaml", yaml, strlen(yaml), cs, 2, &rep),
                   SOUK_ECONFIG);
  print_report(&rep);
  assert_int_equal(rep.nerr, 3);
  assert_diag(&rep, 0, "test.yaml:2: t.name: expected an even number of characters, found 'abc'");
  assert_diag(&rep, 1, "test.yaml:3: t.tags: expected at most two characters, found 'cde'");
  assert_true(report_has(&rep, "test.yaml:4: t.count:"));
  souk__conf_report_free(&rep);
  setenv("SOUK_T_NAME", "xyz", 1);
  setenv("SOUK_T_TAGS", "ab, cde", 1);
  assert_int_equal(souk__config_load_mem("test.yaml", "", 0, cs, 2, &rep), SOUK_ECONFIG);
  assert_true(report_has(&rep, "env SOUK_T_NAME: t.name: expected an even number of characters, "
                               "found 'xyz'"));
  assert_true(report_has(&rep, "env SOUK_T_TAGS: t.tags: expected at most two characters, "
                               "found 'cde'"));
  souk__conf_report_free(&rep);
  unsetenv("SOUK_T_NAME");
  unsetenv("SOUK_T_TAGS");
  /* Good values pass; an empty value unsets and is not checked. */
  yaml = "t:\n  name: abcd\n  tags: [ab]\n  motd: x\n";
  assert_int_equal(souk__config_load_mem("test.yaml", yaml, strlen(yaml), cs, 2, &rep), 0);
  assert_string_equal(tc.name, "abcd");
  yaml = "t:\n  name: \"\"\n";
  assert_int_equal(souk__config_load_mem("test.yaml", yaml, strlen(yaml), cs, 2, &rep), 0);
  assert_null(tc.name);
  souk__conf_report_free(&rep);
  souk__config_free(cs, 2);
}

static void test_report_print(void **state) {
  (void)state;
  souk__conf_report_t rep = {0};
  assert_int_equal(load_text("t:\n  count: 0\n  token: x\n", &rep), SOUK_ECONFIG);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  souk__conf_report_print(&rep, f);
  fclose(f);
  assert_string_equal(buf,
                      "test.yaml:2: t.count: expected an integer between 1 and 100, found '0'\n"
                      "test.yaml:3: warning: t.token: a secret in the config file; set "
                      "SOUK_T_TOKEN in the environment (or .env) instead\n"
                      "test.yaml:3: t.token: expected a Discord bot token (three dot-separated "
                      "base64url parts), found a malformed value\n");
  free(buf);
  souk_log_set_level(SOUK_LOG_OFF);
  souk__conf_report_log(&rep); /* must not crash; output is off */
  souk_log_set_level(SOUK_LOG_INFO);
  souk__conf_report_free(&rep);
  souk__conf_report_free(&rep); /* twice is fine */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
      cmocka_unit_test_setup_teardown(test_good_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_int, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bool, setup, teardown),
      cmocka_unit_test_setup_teardown(test_enum, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duration, setup, teardown),
      cmocka_unit_test_setup_teardown(test_size, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snowflake, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
      cmocka_unit_test_setup_teardown(test_string, setup, teardown),
      cmocka_unit_test_setup_teardown(test_double, setup, teardown),
      cmocka_unit_test_setup_teardown(test_url, setup, teardown),
      cmocka_unit_test_setup_teardown(test_token, setup, teardown),
      cmocka_unit_test_setup_teardown(test_five_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nested_and_types, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_features, setup, teardown),
      cmocka_unit_test_setup_teardown(test_utf8, setup, teardown),
      cmocka_unit_test_setup_teardown(test_env, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dotenv, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dotenv_beside_config, setup, teardown),
      cmocka_unit_test_setup_teardown(test_secret_in_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_require, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
      cmocka_unit_test_setup_teardown(test_set_get, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dump, setup, teardown),
      cmocka_unit_test_setup_teardown(test_discord_table, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_replaces, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_problems, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_default_asserts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_report_print, setup, teardown),
      cmocka_unit_test_setup_teardown(test_url_password_hidden, setup, teardown),
      cmocka_unit_test_setup_teardown(test_key_checks, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
