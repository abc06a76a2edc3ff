/* libFuzzer target for the configuration system (src/core/config.c).
 *
 * Every input is used three ways: as a YAML config file for a test table
 * of every setting type plus the real `core` and `discord` tables; as a
 * .env file (parsed only, never put into the environment, which would
 * make runs depend on each other); and as "section.key=value" lines for
 * run-time changes.  After a load that succeeds, every scalar value is
 * formatted and parsed back (the dump must read as what it shows), and a
 * secret must appear in no message and no dump.  Any inconsistency aborts.
 *
 * config.c is included, as the unit tests may do (DESIGN.md), to reach
 * the .env parser and the value formatters; the library's copy of
 * config.o is then not linked, because this file defines its symbols.
 *
 * Run: fuzz_config -dict=tests/fuzz/config.dict tests/fuzz/corpus/config */
#include "../../src/core/config.c"
#include "core/core.h"
#include "discord/dconf.h"

#define CHECK(c)                                                                                   \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      fprintf(stderr, "fuzz_config: check failed: %s (line %d)\n", #c, __LINE__);                  \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

typedef struct fconf {
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
  int64_t any;
  double big;
  int choice;
} fconf_t;

static fconf_t fc;
static const char *const colors[] = {"red", "green", "blue", NULL};

#define F(f) offsetof(fconf_t, f)
static const souk_conf_key_t f_keys[] = {
    {"name", SOUK_CONF_STRING, F(name), NULL, 0, 10, NULL, SOUK_CONF_RUNTIME, "a"},
    {"count", SOUK_CONF_INT, F(count), "5", 1, 100, NULL, SOUK_CONF_RUNTIME, "a"},
    {"flag", SOUK_CONF_BOOL, F(flag), "false", 0, 0, NULL, SOUK_CONF_RUNTIME, "a"},
    {"color", SOUK_CONF_ENUM, F(color), "red", 0, 0, colors, SOUK_CONF_RUNTIME, "a"},
    {"timeout", SOUK_CONF_DURATION, F(timeout_ms), "30s", 0, 0, NULL, SOUK_CONF_RUNTIME, "a"},
    {"cache", SOUK_CONF_SIZE, F(cache), "64MB", 0, 0, NULL, SOUK_CONF_RUNTIME, "a"},
    {"owner", SOUK_CONF_SNOWFLAKE, F(owner), NULL, 0, 0, NULL, SOUK_CONF_RUNTIME, "a"},
    {"guilds", SOUK_CONF_SNOWFLAKE_LIST, F(guilds), NULL, 0, 0, NULL, SOUK_CONF_RUNTIME, "a"},
    {"tags", SOUK_CONF_STRING_LIST, F(tags), "a, b", 0, 0, NULL, SOUK_CONF_RUNTIME, "a"},
    {"url", SOUK_CONF_URL, F(url), NULL, 0, 0, NULL, SOUK_CONF_RUNTIME, "a"},
    {"token", SOUK_CONF_TOKEN, F(token), NULL, 0, 0, NULL, SOUK_CONF_SECRET | SOUK_CONF_RUNTIME,
     "a"},
    {"ratio", SOUK_CONF_DOUBLE, F(ratio), "0.5", -1000, 1000, NULL, SOUK_CONF_RUNTIME, "a"},
    {"deep.inner.value", SOUK_CONF_INT, F(deep), "0", -10, 10, NULL, 0, "a"},
    {"motd", SOUK_CONF_STRING, F(motd), "hi", 0, 0, NULL, SOUK_CONF_RUNTIME, "a"},
    {"any", SOUK_CONF_INT, F(any), "0", INT64_MIN, 0, NULL, SOUK_CONF_RUNTIME, "a"},
    {"big", SOUK_CONF_DOUBLE, F(big), "0", INT64_MIN, INT64_MAX, NULL, SOUK_CONF_RUNTIME, "a"},
    {"choice", SOUK_CONF_ENUM, F(choice), NULL, 0, 0, colors, SOUK_CONF_RUNTIME, "a"},
    {0},
};

static const souk_conf_section_t fsecs[] = {
    {"t", f_keys, &fc, NULL},
    {"core", souk__core_conf_keys, &souk__core_conf, NULL},
    {"discord", souk__discord_conf_keys, &souk__discord_conf, NULL},
};
#define NFSECS (sizeof fsecs / sizeof fsecs[0])

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  souk_log_set_level(SOUK_LOG_OFF);
  /* The environment must not steer the runs. */
  for (char **e = environ; e && *e; e++)
    CHECK(strncmp(*e, "SOUK_", 5) != 0);
  return 0;
}

/* Format every scalar value and parse it back: what the dump shows must
 * be what is in effect. */
static void check_round_trip(void) {
  souk_buf_t b, msg;
  souk_buf_init(&b);
  souk_buf_init(&msg);
  for (size_t i = 0; i < NFSECS; i++) {
    const souk_conf_section_t *sec = &fsecs[i];
    for (size_t x = 0; x < nkeys(sec); x++) {
      const souk_conf_key_t *k = &sec->keys[x];
      if (type_is_str(k->type) || type_is_list(k->type)) continue;
      cval_t cur, back;
      val_read(sec, k, &cur);
      if (!val_isset(k, &cur)) continue;
      souk_buf_reset(&b);
      souk_buf_reset(&msg);
      val_format(k, &cur, &b);
      CHECK(parse_text(sec, k, b.data, b.len, &back, &msg));
      CHECK(val_eq(k, &cur, &back));
      val_free(k, &back);
    }
  }
  souk_buf_free(&b);
  souk_buf_free(&msg);
}

static void check_no_secret(const souk__conf_report_t *rep) {
  if (!fc.token) return;
  for (size_t i = 0; i < rep->n; i++)
    CHECK(!strstr(rep->v[i].msg, fc.token));
  souk_buf_t b;
  souk_buf_init(&b);
  souk__config_dump(fsecs, NFSECS, &b);
  CHECK(!strstr(b.data, fc.token));
  souk_buf_reset(&b);
  CHECK(souk__config_get_text(fsecs, NFSECS, "t.token", &b) == 0);
  CHECK(!strcmp(b.data, "set"));
  souk_buf_free(&b);
}

static void fuzz_yaml(const char *s, size_t size) {
  souk__conf_report_t rep = {0};
  int rc = souk__config_load_mem("fuzz.yaml", s, size, fsecs, NFSECS, &rep);
  CHECK((rc == 0) == (rep.nerr == 0));
  CHECK(rc == 0 || rc == SOUK_ECONFIG);
  for (size_t i = 0; i < rep.n; i++) {
    CHECK(rep.v[i].msg && !strchr(rep.v[i].msg, '\n'));
    CHECK(!rep.v[i].key || !strchr(rep.v[i].key, '\n'));
  }
  if (rc == 0) {
    check_round_trip();
    check_no_secret(&rep);
  }
  souk__conf_report_free(&rep);
}

static void fuzz_dotenv(const char *s, size_t size) {
  souk__conf_report_t rep = {0};
  kvs_t kv = {0};
  dotenv_parse(".env", s, size, &kv, &rep);
  for (size_t i = 0; i < kv.n; i++) {
    const char *k = kv.k[i];
    CHECK(isalpha((unsigned char)k[0]) || k[0] == '_');
    for (const char *p = k; *p; p++)
      CHECK(isalnum((unsigned char)*p) || *p == '_');
  }
  for (size_t i = 0; i < rep.n; i++)
    CHECK(rep.v[i].line >= 1 && !rep.v[i].warning);
  kvs_free(&kv);
  souk__conf_report_free(&rep);
}

static void fuzz_set(const char *s, size_t size) {
  /* Defaults first, so set() works on a loaded config. */
  CHECK(souk__config_load_mem("fuzz", "", 0, fsecs, NFSECS, NULL) == 0);
  size_t pos = 0;
  for (int lines = 0; pos < size && lines < 64; lines++) {
    const char *p = s + pos, *nl = memchr(p, '\n', size - pos);
    size_t n = nl ? (size_t)(nl - p) : size - pos;
    pos += n + 1;
    const char *eq = memchr(p, '=', n);
    if (!eq) continue;
    char *key = souk_strndup(p, (size_t)(eq - p));
    char *val = souk_memdup0(eq + 1, n - (size_t)(eq - p) - 1);
    char err[256];
    int rc = souk__config_set(fsecs, NFSECS, key, val, err, sizeof err);
    CHECK(rc == 0 || rc == SOUK_ENOTFOUND || rc == SOUK_EFORBIDDEN || rc == SOUK_EINVAL);
    CHECK((rc == 0) == (err[0] == '\0'));
    if (rc == 0) {
      souk_buf_t b;
      souk_buf_init(&b);
      CHECK(souk__config_get_text(fsecs, NFSECS, key, &b) == 0);
      souk_buf_free(&b);
    }
    if (rc == SOUK_EINVAL && !strcmp(key, "t.token") && strlen(val) >= 4) CHECK(!strstr(err, val));
    souk_free(key);
    souk_free(val);
  }
  check_round_trip();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* libFuzzer's data is not NUL-terminated; the parsers get a copy that
   * is, as they do from libyaml and getenv. */
  char *s = souk_memdup0(data, size);
  fuzz_yaml(s, size);
  fuzz_dotenv(s, size);
  fuzz_set(s, size);
  souk__config_free(fsecs, NFSECS);
  souk_log_clear_secrets();
  souk_free(s);
  return 0;
}
