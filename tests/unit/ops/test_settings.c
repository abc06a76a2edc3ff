/* The settings registry (src/ops/settings.c).  Backend-independent rules
 * (validation, defaults, the registry's checks) run once; everything that
 * touches the store runs twice: on SQLite in a temp dir and on a throwaway
 * PostgreSQL server (pgserver.h), each test on a fresh database.  "Another
 * process" is played by writing rows straight into the table, as a second
 * souk sharing the store would. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>
/* clang-format on */

#include "../store/pgserver.h"
#include "core/config.h"
#include "core/metrics.h"
#include "ops/settings.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"
#include "souk/loop.h"
#include "souk/metrics.h"
#include "souk/settings.h"
#include "souk/store.h"

/* ---- a module with a setting of every type, and its config section ------------- */

static const char *const modes[] = {"sim", "live", NULL};

/* A module's own rule on top of the type's. */
static bool nick_ok(const char *v, char *why, size_t cap) {
  if (v[0] != '@') return true;
  snprintf(why, cap, "a nickname cannot start with @");
  return false;
}

static const souk_setting_t demo_settings[] = {
    {.key = "demo.alerts",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_CHANNEL,
     .label = "Alerts channel",
     .description = "Where alerts go.",
     .step = "channels"},
    {.key = "demo.role",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_ROLE,
     .label = "Ping role",
     .description = "Who is pinged."},
    {.key = "demo.enabled",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_BOOL,
     .def = "yes",
     .label = "Enabled",
     .description = "Turns it on."},
    {.key = "demo.count",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_INT,
     .def = "5",
     .min = 1,
     .max = 100,
     .label = "Count",
     .description = "How many."},
    {.key = "demo.cash",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_MONEY,
     .def = "$1,000,000",
     .min = 0,
     .decimals = 2,
     .config_key = "demo.start_cash",
     .label = "Start cash",
     .description = "Cash of a new account.",
     .step = "market"},
    {.key = "demo.coins",
     .scope = SOUK_SETTING_USER,
     .type = SOUK_SETTING_MONEY,
     .def = "10",
     .min = 1,
     .max = 1000000,
     .label = "Bet",
     .description = "Default bet."},
    {.key = "demo.mode",
     .scope = SOUK_SETTING_GUILD,
     .type = SOUK_SETTING_ENUM,
     .def = "sim",
     .choices = modes,
     .config_key = "demo.mode",
     .label = "Mode",
     .description = "Price source."},
    {.key = "demo.nick",
     .scope = SOUK_SETTING_USER,
     .type = SOUK_SETTING_STRING,
     .min = 2,
     .max = 10,
     .label = "Nickname",
     .description = "Shown in games.",
     .check = nick_ok},
    {.key = "demo.tz",
     .scope = SOUK_SETTING_USER,
     .type = SOUK_SETTING_TIMEZONE,
     .def = "UTC",
     .label = "Time zone",
     .description = "For daily summaries.",
     .step = "profile"},
    {0},
};

static const souk_module_t demo_module = {
    .abi = SOUK_MODULE_ABI, .name = "demo", .settings = demo_settings};
static const souk_module_t *const mods[] = {&demo_module, NULL};

typedef struct demo_conf {
  char *start_cash;
  int mode;
} demo_conf_t;
static demo_conf_t demo_conf;
static const char *const mode_names[] = {"sim", "live", NULL};
static const souk_conf_key_t demo_keys[] = {
    {"start_cash", SOUK_CONF_STRING, offsetof(demo_conf_t, start_cash), "$500", 0, 40, NULL, 0,
     "start cash"},
    {"mode", SOUK_CONF_ENUM, offsetof(demo_conf_t, mode), "sim", 0, 0, mode_names, 0, "mode"},
    {0},
};
static const souk_conf_section_t secs[] = {{"demo", demo_keys, &demo_conf, NULL}};

#define G1    UINT64_C(111111111111111111)
#define G2    UINT64_C(222222222222222222)
#define U1    UINT64_C(333333333333333333)
#define ADMIN UINT64_C(444444444444444444)

/* ---- fixtures ------------------------------------------------------------------ */

typedef struct backend {
  souk_store_kind_t kind;
  const char *name;
} backend_t;

static backend_t be_sqlite = {SOUK_STORE_SQLITE, "sqlite"};
static backend_t be_pg = {SOUK_STORE_POSTGRES, "postgres"};

typedef struct fx {
  const backend_t *be;
  bool skip;
  char dir[128];
  char url[256];
  souk_store_conf_t conf;
  souk_store_t *st;
} fx_t;

static void load_config(const char *yaml) {
  souk__conf_report_t rep = {0};
  int rc = souk__config_load_mem("test.yaml", yaml, strlen(yaml), secs, 1, &rep);
  if (rc) fail_msg("config: %s", rep.n ? rep.v[0].msg : "?");
  souk__conf_report_free(&rep);
}

static int fx_setup(void **state) {
  fx_t *fx = souk_calloc(1, sizeof *fx);
  fx->be = *state;
  snprintf(fx->dir, sizeof fx->dir, "/tmp/souk-settings-XXXXXX");
  assert_non_null(mkdtemp(fx->dir));
  souk_store_conf_defaults(&fx->conf);
  fx->conf.retry_base_ms = 5;
  fx->conf.retry_max_ms = 100;
  if (fx->be->kind == SOUK_STORE_POSTGRES) {
    if (pg_state != 1) {
      fx->skip = true;
    } else {
      assert_true(pg_create_db("souk_set", fx->url, sizeof fx->url));
      fx->conf.url = fx->url;
    }
  }
  if (!fx->skip) {
    int rc = souk_store_open(&fx->conf, fx->dir, &fx->st);
    if (rc) fail_msg("souk_store_open: %s", souk_strerror(rc));
  }
  load_config("");
  assert_int_equal(souk__settings_register(mods), 0);
  *state = fx;
  return 0;
}

static void drain(void) {
  /* Writes and reads finish on the pool, then on the loop. */
  for (int i = 0; i < 2000 && (souk__settings_writes_pending() || souk_work_pending()); i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
}

static int fx_teardown(void **state) {
  fx_t *fx = *state;
  drain();
  souk__settings_stop();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  souk_store_close(fx->st);
  souk__settings_clear();
  souk__config_free(secs, 1);
  souk_store_registry_clear();
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
  assert_int_equal(system(cmd), 0);
  souk_free(fx);
  return 0;
}

#define FX()                                                                                       \
  fx_t *fx = *state;                                                                               \
  if (fx->skip) {                                                                                  \
    skip();                                                                                        \
    return;                                                                                        \
  }

static void start(fx_t *fx) { assert_int_equal(souk__settings_start(fx->st, secs, 1), 0); }

/* ---- SQL, as another process would do it --------------------------------------- */

typedef struct sqljob {
  const char *sql;
  uint64_t scope;
  const char *key, *value;
  int64_t at;
  int64_t out;
  char text[128];
} sqljob_t;

static int put_fn(souk_db_t *db, void *ud) {
  sqljob_t *j = ud;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           "INSERT INTO settings (scope_id, key, value, set_by, updated_at) "
                           "VALUES (?, ?, ?, 1, ?) ON CONFLICT (scope_id, key) DO UPDATE SET "
                           "value = excluded.value, updated_at = excluded.updated_at",
                           &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, (int64_t)j->scope);
  souk_stmt_bind_text(s, 2, j->key, SIZE_MAX);
  souk_stmt_bind_text(s, 3, j->value, SIZE_MAX);
  souk_stmt_bind_int64(s, 4, j->at);
  rc = souk_stmt_step(s);
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

static void other_process_sets(fx_t *fx, uint64_t scope, const char *key, const char *value) {
  sqljob_t j = {.scope = scope, .key = key, .value = value, .at = (int64_t)souk_unix_ms()};
  assert_int_equal(souk_store_tx(fx->st, put_fn, &j), 0);
}

static int row_fn(souk_db_t *db, void *ud) {
  sqljob_t *j = ud;
  souk_stmt_t *s;
  int rc =
      souk_db_prepare(db, "SELECT value, set_by FROM settings WHERE scope_id = ? AND key = ?", &s);
  if (rc) return rc;
  souk_stmt_bind_int64(s, 1, (int64_t)j->scope);
  souk_stmt_bind_text(s, 2, j->key, SIZE_MAX);
  j->out = -1;
  j->text[0] = '\0';
  if ((rc = souk_stmt_step(s)) == 1) {
    const char *v = souk_stmt_column_text(s, 0, NULL);
    snprintf(j->text, sizeof j->text, "%s", v ? v : "(null)");
    j->out = souk_stmt_column_int64(s, 1);
  }
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

/* The stored value ("(null)" after a reset, "" when there is no row). */
static const char *stored(fx_t *fx, uint64_t scope, const char *key, int64_t *by) {
  static sqljob_t j;
  memset(&j, 0, sizeof j);
  j.scope = scope;
  j.key = key;
  assert_int_equal(souk_store_read(fx->st, row_fn, &j), 0);
  if (by) *by = j.out;
  return j.text;
}

static int exec_fn(souk_db_t *db, void *ud) { return souk_db_exec(db, ((sqljob_t *)ud)->sql); }

/* ---- watchers ------------------------------------------------------------------ */

static int g_changes;
static uint64_t g_changed_scope;
static void on_change(uint64_t scope, const souk_setting_t *s, void *ud) {
  g_changes++;
  g_changed_scope = scope;
  assert_string_equal(s->key, ud);
}

static int g_flushed;
static void flushed(void *ud, int status) { g_flushed = status; }

static int g_refresh_status = 1;
static void refreshed(void *ud, int status) { g_refresh_status = status; }

static void refresh(void) {
  g_refresh_status = 1;
  assert_int_equal(souk__settings_refresh(refreshed, NULL), 0);
  for (int i = 0; i < 2000 && g_refresh_status == 1; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(g_refresh_status, 0);
}

/* ---- backend-independent ------------------------------------------------------- */

static void test_validation(void **state) {
  FX();
  start(fx);
  char err[256];
  /* The config file's rules and messages. */
  assert_int_equal(souk_setting_set(G1, "demo.count", "500", ADMIN, err, sizeof err), SOUK_EINVAL);
  assert_string_equal(err, "expected an integer between 1 and 100, found '500'");
  assert_int_equal(souk_setting_set(G1, "demo.enabled", "maybe", ADMIN, err, sizeof err),
                   SOUK_EINVAL);
  assert_string_equal(err, "expected true or false (or yes/no, on/off, 1/0), found 'maybe'");
  assert_int_equal(souk_setting_set(G1, "demo.mode", "paper", ADMIN, err, sizeof err), SOUK_EINVAL);
  assert_string_equal(err, "expected one of sim, live, found 'paper'");
  /* Channels and roles by id or mention, not each other's mention. */
  assert_int_equal(
      souk_setting_set(G1, "demo.alerts", "<#123456789012345678>", ADMIN, err, sizeof err), 0);
  assert_int_equal(souk_setting_id(G1, "demo.alerts"), UINT64_C(123456789012345678));
  assert_int_equal(
      souk_setting_set(G1, "demo.role", "<#123456789012345678>", ADMIN, err, sizeof err),
      SOUK_EINVAL);
  assert_non_null(strstr(err, "expected a role"));
  assert_int_equal(
      souk_setting_set(G1, "demo.role", " <@&123456789012345679> ", ADMIN, err, sizeof err), 0);
  assert_int_equal(souk_setting_id(G1, "demo.role"), UINT64_C(123456789012345679));
  /* Money: separators, a currency sign, no more decimals than it has. */
  assert_int_equal(souk_setting_set(G1, "demo.cash", "$2,500,000.50", ADMIN, err, sizeof err), 0);
  assert_int_equal(souk_setting_int(G1, "demo.cash"), INT64_C(250000050));
  char out[64];
  assert_int_equal(souk_setting_get(G1, "demo.cash", out, sizeof out, NULL), 0);
  assert_string_equal(out, "2500000.50");
  assert_int_equal(souk_setting_display(G1, "demo.cash", out, sizeof out), 0);
  assert_string_equal(out, "2,500,000.50");
  assert_int_equal(souk_setting_set(G1, "demo.cash", "1.005", ADMIN, err, sizeof err), SOUK_EINVAL);
  assert_string_equal(err, "expected an amount with at most 2 decimal places of at least 0.00, "
                           "found '1.005'");
  assert_int_equal(souk_setting_set(G1, "demo.cash", "1,00", ADMIN, err, sizeof err), SOUK_EINVAL);
  assert_int_equal(souk_setting_set(G1, "demo.cash", "-5", ADMIN, err, sizeof err), SOUK_EINVAL);
  assert_int_equal(souk_setting_set(U1, "demo.coins", "2.5", ADMIN, err, sizeof err), SOUK_EINVAL);
  assert_string_equal(err, "expected an amount in whole units between 1 and 1,000,000, found "
                           "'2.5'");
  /* Strings: length in characters, no control characters. */
  assert_int_equal(souk_setting_set(U1, "demo.nick", "x", U1, err, sizeof err), SOUK_EINVAL);
  assert_string_equal(err, "expected text of at least 2 characters, found 'x'");
  assert_int_equal(souk_setting_set(U1, "demo.nick", "ŻółćŻółćŻó", U1, err, sizeof err), 0);
  assert_int_equal(souk_setting_set(U1, "demo.nick", "ŻółćŻółćŻół", U1, err, sizeof err),
                   SOUK_EINVAL);
  assert_int_equal(souk_setting_set(U1, "demo.nick", "a\tb", U1, err, sizeof err), SOUK_EINVAL);
  assert_int_equal(souk_setting_set(U1, "demo.nick", "@mod", U1, err, sizeof err), SOUK_EINVAL);
  assert_string_equal(err, "a nickname cannot start with @");
  assert_int_equal(souk_setting_check("demo.nick", "@x", err, sizeof err), SOUK_EINVAL);
  /* Time zones from the tz database. */
  assert_int_equal(souk_setting_set(U1, "demo.tz", "Europe/Paris", U1, err, sizeof err), 0);
  assert_string_equal(souk_setting_str(U1, "demo.tz"), "Europe/Paris");
  assert_int_equal(souk_setting_set(U1, "demo.tz", "Mars/Olympus", U1, err, sizeof err),
                   SOUK_EINVAL);
  assert_int_equal(souk_setting_set(U1, "demo.tz", "../../etc/passwd", U1, err, sizeof err),
                   SOUK_EINVAL);
  assert_int_equal(souk_setting_check("demo.tz", "America/New_York", err, sizeof err), 0);
  /* Unknown keys and a missing scope. */
  assert_int_equal(souk_setting_set(G1, "demo.nope", "1", ADMIN, err, sizeof err), SOUK_ENOTFOUND);
  assert_int_equal(souk_setting_set(0, "demo.count", "3", ADMIN, err, sizeof err), SOUK_EINVAL);
  assert_int_equal(souk_setting_int(G1, "demo.nope"), 0);
}

static void test_defaults_and_config(void **state) {
  FX();
  /* The operator's config value beats the setting's own default. */
  load_config("demo:\n  start_cash: \"$250,000\"\n");
  start(fx);
  souk_setting_source_t src;
  char out[64];
  assert_int_equal(souk_setting_get(G1, "demo.cash", out, sizeof out, &src), 0);
  assert_string_equal(out, "250000.00");
  assert_int_equal(src, SOUK_SETTING_CONFIG);
  /* A config key left at its built-in default counts as a default. */
  assert_int_equal(souk_setting_get(G1, "demo.mode", out, sizeof out, &src), 0);
  assert_string_equal(out, "sim");
  assert_int_equal(src, SOUK_SETTING_DEFAULT);
  assert_int_equal(souk_setting_int(G1, "demo.enabled"), 1);
  assert_int_equal(souk_setting_int(G2, "demo.count"), 5);
  assert_int_equal(souk_setting_id(G1, "demo.alerts"), 0);
  assert_int_equal(souk_setting_display(G1, "demo.alerts", out, sizeof out), 0);
  assert_string_equal(out, "not set");
  /* A DM has no guild: it reads defaults. */
  assert_int_equal(souk_setting_int(0, "demo.count"), 5);
  /* Reading costs no memory. */
  assert_int_equal(souk__settings_held(), 0);
  /* A set value beats both, and goes when reset. */
  char err[128];
  assert_int_equal(souk_setting_set(G1, "demo.cash", "10", ADMIN, err, sizeof err), 0);
  assert_int_equal(souk_setting_get(G1, "demo.cash", out, sizeof out, &src), 0);
  assert_int_equal(src, SOUK_SETTING_SET);
  assert_int_equal(souk_setting_int(G2, "demo.cash"), 25000000);
  assert_int_equal(souk__settings_held(), 1);
  souk_buf_t mb;
  souk_buf_init(&mb);
  souk__metrics_render(&mb);
  assert_non_null(strstr(mb.data, "souk_settings_values 1\n"));
  souk_buf_free(&mb);
  assert_int_equal(souk_setting_reset(G1, "demo.cash", ADMIN), 0);
  assert_int_equal(souk_setting_int(G1, "demo.cash"), 25000000);
  assert_int_equal(souk__settings_held(), 0);
  /* A config reload changes the default in effect. */
  load_config("demo:\n  start_cash: \"$7\"\n  mode: live\n");
  souk__settings_reload();
  assert_int_equal(souk_setting_int(G1, "demo.cash"), 700);
  assert_int_equal(souk_setting_int(G1, "demo.mode"), 1);
  assert_string_equal(souk_setting_str(G1, "demo.mode"), "live");
}

static void test_registry(void **state) {
  FX();
  assert_int_equal(souk_setting_count(), 9);
  const char *module = NULL;
  const souk_setting_t *s = souk_setting_at(4, &module);
  assert_string_equal(s->key, "demo.cash");
  assert_string_equal(module, "demo");
  assert_null(souk_setting_at(9, NULL));
  assert_ptr_equal(souk_setting_find("demo.tz", NULL), &demo_settings[8]);
  /* Tables that break a rule are refused whole. */
  static const souk_setting_t bad_prefix[] = {{.key = "other.x",
                                               .scope = SOUK_SETTING_GUILD,
                                               .type = SOUK_SETTING_BOOL,
                                               .label = "X",
                                               .description = "x"},
                                              {0}};
  static const souk_setting_t bad_default[] = {{.key = "bad.n",
                                                .scope = SOUK_SETTING_GUILD,
                                                .type = SOUK_SETTING_INT,
                                                .def = "0",
                                                .min = 1,
                                                .label = "N",
                                                .description = "n"},
                                               {0}};
  static const souk_setting_t no_label[] = {
      {.key = "bad.n", .scope = SOUK_SETTING_GUILD, .type = SOUK_SETTING_INT}, {0}};
  static const souk_setting_t dup[] = {{.key = "bad.n",
                                        .scope = SOUK_SETTING_USER,
                                        .type = SOUK_SETTING_BOOL,
                                        .label = "N",
                                        .description = "n"},
                                       {.key = "bad.n",
                                        .scope = SOUK_SETTING_USER,
                                        .type = SOUK_SETTING_BOOL,
                                        .label = "N",
                                        .description = "n"},
                                       {0}};
  const souk_setting_t *tables[] = {bad_prefix, bad_default, no_label, dup};
  for (size_t i = 0; i < 4; i++) {
    souk_module_t m = {.abi = SOUK_MODULE_ABI, .name = i ? "bad" : "mine", .settings = tables[i]};
    const souk_module_t *ms[] = {&m, NULL};
    assert_int_equal(souk__settings_register(ms), SOUK_EINVAL);
    /* Nothing changed. */
    assert_int_equal(souk_setting_count(), 9);
  }
  /* A setting whose config key does not exist stops the start. */
  static const souk_setting_t missing_key[] = {{.key = "bad.n",
                                                .scope = SOUK_SETTING_USER,
                                                .type = SOUK_SETTING_BOOL,
                                                .label = "N",
                                                .description = "n",
                                                .config_key = "bad.nope"},
                                               {0}};
  souk_module_t m = {.abi = SOUK_MODULE_ABI, .name = "bad", .settings = missing_key};
  const souk_module_t *ms[] = {&m, NULL};
  assert_int_equal(souk__settings_register(ms), 0);
  assert_int_equal(souk__settings_start(fx->st, secs, 1), SOUK_EINVAL);
  assert_int_equal(souk__settings_register(mods), 0);
}

/* ---- on both backends ---------------------------------------------------------- */

static void test_write_through_and_reload(void **state) {
  FX();
  start(fx);
  assert_int_equal(souk_setting_watch("demo.count", on_change, "demo.count"), 0);
  g_changes = 0;
  char err[128];
  assert_int_equal(souk_setting_set(G1, "demo.count", "42", ADMIN, err, sizeof err), 0);
  /* In effect at once, before the store has it. */
  assert_int_equal(souk_setting_int(G1, "demo.count"), 42);
  assert_int_equal(g_changes, 1);
  assert_int_equal(g_changed_scope, G1);
  /* The same value again changes nothing. */
  assert_int_equal(souk_setting_set(G1, "demo.count", " 42 ", ADMIN, err, sizeof err), 0);
  assert_int_equal(g_changes, 1);
  assert_int_equal(souk_setting_set(U1, "demo.tz", "Asia/Tokyo", U1, err, sizeof err), 0);
  assert_int_equal(souk_setting_set(G2, "demo.enabled", "off", ADMIN, err, sizeof err), 0);
  /* "Saved" is known once the store has it. */
  g_flushed = 1;
  assert_int_equal(souk_setting_flush(G2, "demo.enabled", flushed, NULL), 0);
  assert_int_equal(g_flushed, 1);
  for (int i = 0; i < 2000 && g_flushed == 1; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(g_flushed, 0);
  assert_string_equal(stored(fx, G2, "demo.enabled", NULL), "false");
  /* Nothing being written: answered from the loop, not inside the call. */
  g_flushed = 1;
  assert_int_equal(souk_setting_flush(G1, "demo.role", flushed, NULL), 0);
  assert_int_equal(g_flushed, 1);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  assert_int_equal(g_flushed, 0);
  drain();
  int64_t by;
  assert_string_equal(stored(fx, G1, "demo.count", &by), "42");
  assert_int_equal(by, (int64_t)ADMIN);
  assert_string_equal(stored(fx, U1, "demo.tz", NULL), "Asia/Tokyo");
  assert_string_equal(stored(fx, G2, "demo.enabled", NULL), "false");
  /* A reset keeps the row, empty, for other processes to see. */
  assert_int_equal(souk_setting_reset(G2, "demo.enabled", ADMIN), 0);
  drain();
  assert_string_equal(stored(fx, G2, "demo.enabled", NULL), "(null)");
  /* A restart loads what is set, and only that. */
  souk__settings_stop();
  assert_int_equal(souk__settings_held(), 0);
  assert_int_equal(souk_setting_int(G1, "demo.count"), 5);
  start(fx);
  assert_int_equal(souk__settings_held(), 2);
  assert_int_equal(souk_setting_int(G1, "demo.count"), 42);
  assert_string_equal(souk_setting_str(U1, "demo.tz"), "Asia/Tokyo");
  assert_int_equal(souk_setting_int(G2, "demo.enabled"), 1);
  /* Every scope with a value is known, from the store, none of them seen. */
  uint64_t ids[4] = {0};
  assert_int_equal(souk_setting_scopes("demo.count", ids, 4), 1);
  assert_int_equal(ids[0], G1);
  assert_int_equal(souk_setting_scopes("demo.enabled", ids, 4), 0);
  assert_int_equal(souk_setting_set(G2, "demo.count", "7", ADMIN, err, sizeof err), 0);
  assert_int_equal(souk_setting_scopes("demo.count", ids, 1), 2);
  assert_int_equal(souk_setting_scopes("demo.count", ids, 4), 2);
  assert_true((ids[0] == G1 && ids[1] == G2) || (ids[0] == G2 && ids[1] == G1));
  assert_int_equal(souk_setting_scopes("demo.nothing", ids, 4), SOUK_ENOTFOUND);
  drain();
}

/* Quick changes of one key reach the store in the order they were made. */
static void test_writes_in_order(void **state) {
  FX();
  start(fx);
  char err[64], v[8];
  for (int i = 1; i <= 30; i++) {
    snprintf(v, sizeof v, "%d", i);
    assert_int_equal(souk_setting_set(G1, "demo.count", v, ADMIN, err, sizeof err), 0);
    if (i % 7 == 0) uv_run(souk_loop(), UV_RUN_NOWAIT);
  }
  drain();
  assert_string_equal(stored(fx, G1, "demo.count", NULL), "30");
  /* Stopping writes what is still queued. */
  assert_int_equal(souk_setting_set(G1, "demo.count", "31", ADMIN, err, sizeof err), 0);
  assert_int_equal(souk_setting_set(G1, "demo.count", "32", ADMIN, err, sizeof err), 0);
  souk__settings_stop();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  assert_string_equal(stored(fx, G1, "demo.count", NULL), "32");
}

static void test_other_process_changes(void **state) {
  FX();
  start(fx);
  assert_int_equal(souk_setting_watch("demo.alerts", on_change, "demo.alerts"), 0);
  g_changes = 0;
  other_process_sets(fx, G1, "demo.alerts", "123456789012345678");
  other_process_sets(fx, G2, "demo.nope", "x");     /* no module declares it: ignored */
  other_process_sets(fx, G2, "demo.count", "1000"); /* out of bounds now: ignored */
  /* Not seen until the re-read. */
  assert_int_equal(souk_setting_id(G1, "demo.alerts"), 0);
  refresh();
  assert_int_equal(souk_setting_id(G1, "demo.alerts"), UINT64_C(123456789012345678));
  assert_int_equal(g_changes, 1);
  assert_int_equal(souk_setting_int(G2, "demo.count"), 5);
  /* A reset elsewhere is seen too; a re-read that finds nothing new
   * changes nothing. */
  other_process_sets(fx, G1, "demo.alerts", NULL);
  refresh();
  assert_int_equal(souk_setting_id(G1, "demo.alerts"), 0);
  assert_int_equal(g_changes, 2);
  refresh();
  assert_int_equal(g_changes, 2);
  /* The scale-out hook: one value re-read at once. */
  other_process_sets(fx, G2, "demo.alerts", "123456789012345670");
  assert_int_equal(souk__settings_invalidate(G2, "demo.alerts"), 0);
  for (int i = 0; i < 200 && souk_setting_id(G2, "demo.alerts") == 0; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(souk_setting_id(G2, "demo.alerts"), UINT64_C(123456789012345670));
  assert_int_equal(souk__settings_invalidate(G2, "demo.nope"), SOUK_ENOTFOUND);
}

/* A value set here while a re-read is on its way is newer than what the
 * re-read found, and stays. */
static void test_local_change_wins_over_refresh(void **state) {
  FX();
  start(fx);
  other_process_sets(fx, G1, "demo.count", "7");
  g_refresh_status = 1;
  assert_int_equal(souk__settings_refresh(refreshed, NULL), 0);
  char err[64];
  assert_int_equal(souk_setting_set(G1, "demo.count", "9", ADMIN, err, sizeof err), 0);
  for (int i = 0; i < 2000 && g_refresh_status == 1; i++)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(g_refresh_status, 0);
  assert_int_equal(souk_setting_int(G1, "demo.count"), 9);
  drain();
  assert_string_equal(stored(fx, G1, "demo.count", NULL), "9");
  refresh();
  assert_int_equal(souk_setting_int(G1, "demo.count"), 9);
}

static uint64_t g_pub_scope;
static char g_pub_key[64];
static void on_publish(uint64_t scope, const char *key, void *ud) {
  g_pub_scope = scope;
  snprintf(g_pub_key, sizeof g_pub_key, "%s", key);
}

/* A write the store refuses puts the previous value back; a committed one
 * is announced through the publish hook. */
static void test_failed_write_reverts(void **state) {
  FX();
  start(fx);
  souk__settings_set_publish(on_publish, NULL);
  char err[64];
  assert_int_equal(souk_setting_set(G1, "demo.count", "11", ADMIN, err, sizeof err), 0);
  drain();
  assert_int_equal(g_pub_scope, G1);
  assert_string_equal(g_pub_key, "demo.count");
  sqljob_t j = {.sql = "DROP TABLE settings"};
  assert_int_equal(souk_store_tx(fx->st, exec_fn, &j), 0);
  assert_int_equal(souk_setting_set(G1, "demo.count", "12", ADMIN, err, sizeof err), 0);
  assert_int_equal(souk_setting_set(G2, "demo.count", "13", ADMIN, err, sizeof err), 0);
  assert_int_equal(souk_setting_int(G1, "demo.count"), 12);
  g_flushed = 1;
  assert_int_equal(souk_setting_flush(G2, "demo.count", flushed, NULL), 0);
  drain();
  assert_true(g_flushed < 0);
  assert_int_equal(souk_setting_int(G1, "demo.count"), 11);
  assert_int_equal(souk_setting_int(G2, "demo.count"), 5);
  souk__settings_set_publish(NULL, NULL);
}

static int kv_prefix_fn(souk_db_t *db, void *ud) {
  const char *const *kv = ud;
  return souk_db_kv_put(db, "prefix", kv[0], kv[1], strlen(kv[1]));
}

static int count_fn(souk_db_t *db, void *ud) {
  sqljob_t *j = ud;
  souk_stmt_t *s;
  int rc = souk_db_prepare(db, j->sql, &s);
  if (rc) return rc;
  rc = souk_stmt_step(s);
  j->out = souk_stmt_column_int64(s, 0);
  souk_stmt_finalize(s);
  return rc < 0 ? rc : 0;
}

/* Put the store back to schema version 3: drop every table a later
 * migration created (settings, and whatever modules added after it). */
static int back_to_v3_fn(souk_db_t *db, void *ud) {
  (void)ud;
  static const char *const v3[] = {"kv", "idempotency", "usage", "schema_version", NULL};
  souk_stmt_t *s;
  int rc = souk_db_prepare(db,
                           souk_db_kind(db) == SOUK_STORE_SQLITE
                               ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT "
                                 "LIKE 'sqlite_%'"
                               : "SELECT tablename FROM pg_tables WHERE schemaname = "
                                 "current_schema()",
                           &s);
  if (rc) return rc;
  char drop[64][80];
  size_t n = 0;
  while ((rc = souk_stmt_step(s)) == 1 && n < 64) {
    const char *t = souk_stmt_column_text(s, 0, NULL);
    bool keep = strncmp(t, "market_", 7) == 0;
    for (size_t i = 0; v3[i] && !keep; i++) keep = strcmp(t, v3[i]) == 0;
    if (!keep) snprintf(drop[n++], sizeof drop[0], "DROP TABLE %s", t);
  }
  souk_stmt_finalize(s);
  if (rc < 0) return rc;
  for (size_t i = 0; i < n && rc == 0; i++) rc = souk_db_exec(db, drop[i]);
  return rc ? rc : souk_db_exec(db, "DELETE FROM schema_version WHERE version >= 4");
}

/* Migration 4 turns the per-guild prefixes kept in kv into the setting
 * commands.prefix: a store put back to version 3 with two prefixes, then
 * migrated. */
static void test_prefixes_migrate(void **state) {
  FX();
  assert_int_equal(souk_store_tx(fx->st, back_to_v3_fn, NULL), 0);
  static const char *const kv[][2] = {{"111111111111111111", "~"},
                                      {"222222222222222222", "\xC3\xA9!"}};
  for (size_t i = 0; i < 2; i++)
    assert_int_equal(souk_store_tx(fx->st, kv_prefix_fn, (void *)kv[i]), 0);
  souk_store_close(fx->st);
  fx->st = NULL;
  assert_int_equal(souk_store_open(&fx->conf, fx->dir, &fx->st), 0);
  int v = 0;
  assert_int_equal(souk_store_schema_version(fx->st, &v), 0);
  assert_int_equal(v, souk_store_schema_latest());
  assert_string_equal(stored(fx, G1, "commands.prefix", NULL), "~");
  assert_string_equal(stored(fx, G2, "commands.prefix", NULL), "\xC3\xA9!");
  sqljob_t left = {.sql = "SELECT COUNT(*) FROM kv WHERE namespace = 'prefix'"};
  assert_int_equal(souk_store_read(fx->st, count_fn, &left), 0);
  assert_int_equal(left.out, 0);
}

#define T(fn, be) cmocka_unit_test_prestate_setup_teardown(fn, fx_setup, fx_teardown, &be)
#define STORE(be)                                                                                  \
  T(test_write_through_and_reload, be), T(test_writes_in_order, be),                               \
      T(test_other_process_changes, be), T(test_local_change_wins_over_refresh, be),               \
      T(test_failed_write_reverts, be), T(test_prefixes_migrate, be)

int main(void) {
  souk_log_set_level(getenv("SOUK_TEST_DEBUG") ? SOUK_LOG_DEBUG : SOUK_LOG_OFF);
  const struct CMUnitTest sqlite_tests[] = {T(test_validation, be_sqlite),
                                            T(test_defaults_and_config, be_sqlite),
                                            T(test_registry, be_sqlite), STORE(be_sqlite)};
  const struct CMUnitTest pg_tests[] = {STORE(be_pg)};
  int fails = cmocka_run_group_tests_name("settings/sqlite", sqlite_tests, NULL, NULL);
  fails +=
      cmocka_run_group_tests_name("settings/postgres", pg_tests, pg_group_setup, pg_group_teardown);
  souk_loop_close();
  return fails;
}
