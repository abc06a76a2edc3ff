/* The admin module: /prefix (show, set with its checks and its form,
 * reset), kept in the store and applied at once; and the owners' /admin
 * views of tasks (and restarting one), errors, breakers (and resetting
 * one), health and the cache (clearing by pattern), refused to others. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "../modtest.h"
#include "souk/cache.h"
#include "souk/log.h"
#include "souk/recovery.h"

extern const souk_module_t souk_admin_module;

static const souk_module_t *const mods[] = {&souk_admin_module, NULL};
static modtest_t T;
static souk_cache_t *cache;

static int setup(void **state) {
  souk_cache_conf_t cc = {.memory_max = 1 << 20};
  assert_int_equal(souk_cache_new(&cc, NULL, &cache), 0);
  modtest_start_with(&T, mods, NULL, cache);
  return 0;
}

static int teardown(void **state) {
  modtest_stop(&T);
  souk_cache_close(cache);
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  return 0;
}

#define has(text, want)   assert_non_null(strstr((text), (want)))
#define hasnt(text, what) assert_null(strstr((text), (what)))

/* The prefix the store keeps for the test guild ("" for none): the
 * setting commands.prefix. */
static int kv_fn(souk_db_t *db, void *ud) {
  souk_stmt_t *s;
  int rc = souk_db_preparef(db, &s, "SELECT value FROM settings WHERE scope_id = ? AND key = ?",
                            "is", (int64_t)MODTEST_GUILD, "commands.prefix");
  if (rc) return rc;
  if ((rc = souk_stmt_step(s)) == 1) {
    const char *v = souk_stmt_column_text(s, 0, NULL);
    if (v) souk_buf_append(ud, v, strlen(v));
    rc = 0;
  }
  souk_stmt_finalize(s);
  return rc;
}

static void stored_prefix(char *out, size_t cap) {
  souk_buf_t b = {0};
  assert_int_equal(souk_store_read(T.store, kv_fn, &b), 0);
  snprintf(out, cap, "%.*s", (int)b.len, b.data ? b.data : "");
  souk_buf_free(&b);
}

static void test_prefix(void **state) {
  char kept[16];
  const char *r = modtest_cmd(&T, "/prefix show", &MODTEST_MEMBER);
  has(r, "Message commands start with `!` here");
  /* Setting it needs Manage Server. */
  modtest_cmd(&T, "/prefix set value:?", &MODTEST_MEMBER);
  assert_string_equal(souk_cmd_prefix(MODTEST_GUILD), "!");
  r = modtest_cmd(&T, "/prefix set value:?", &MODTEST_OWNER_WHO);
  has(r, "Message commands now start with `?` here, e.g. `?ping`.");
  assert_string_equal(souk_cmd_prefix(MODTEST_GUILD), "?");
  stored_prefix(kept, sizeof kept);
  assert_string_equal(kept, "?");
  r = modtest_cmd(&T, "/prefix set value:\"a b\"", &MODTEST_OWNER_WHO);
  has(r, "A prefix is 1 to 8 bytes without spaces or backticks");
  assert_string_equal(souk_cmd_prefix(MODTEST_GUILD), "?");
  /* Without a value it opens a form. */
  modtest_cmd(&T, "/prefix set", &MODTEST_OWNER_WHO);
  assert_int_equal(T.reply.kind, SOUK__OUT_MODAL);
  assert_string_equal(T.reply.custom_ids[0], "admin:prefix");
  r = modtest_cmd(&T, "/prefix reset", &MODTEST_OWNER_WHO);
  has(r, "The prefix is back to the default, `!`.");
  assert_string_equal(souk_cmd_prefix(MODTEST_GUILD), "!");
  stored_prefix(kept, sizeof kept);
  assert_string_equal(kept, "");
}

static void tick(souk_task_ctx_t *ctx) { souk_task_done(ctx, 0); }

static void test_owner_views(void **state) {
  static const souk_task_t task = {.name = "test.tick", .period_ms = 60000, .handler = tick};
  assert_int_equal(souk__sched_add(&task), 0);
  /* Owners only. */
  const char *r = modtest_cmd(&T, "/admin tasks", &MODTEST_MEMBER);
  hasnt(r, "test.tick");
  r = modtest_cmd(&T, "/admin tasks", &MODTEST_OWNER_WHO);
  has(r, "**Tasks**");
  has(r, "test.tick");
  r = modtest_cmd(&T, "/admin task-restart task:nope", &MODTEST_OWNER_WHO);
  has(r, "There is no task `nope`.");
  r = modtest_cmd(&T, "/admin task-restart task:test.tick", &MODTEST_OWNER_WHO);
  has(r, "Task `test.tick` will run again now.");

  souk_error_record("test.err", SOUK_SEV_HIGH, SOUK_EIO, NULL, "the disk said %s", "no");
  r = modtest_cmd(&T, "/admin errors", &MODTEST_OWNER_WHO);
  has(r, "total 1 (low 0, medium 0, high 1, critical 0)");
  has(r, "test.err");
  has(r, "the disk said no");

  souk_breaker_t *br = souk_breaker_new(
      "test.breaker",
      &(souk_breaker_opts_t){.failures = 1, .window_ms = 60000, .open_timeout_ms = 60000}, NULL);
  assert_true(souk_breaker_allow(br));
  souk_breaker_failure(br);
  r = modtest_cmd(&T, "/admin breakers", &MODTEST_OWNER_WHO);
  has(r, "test.breaker");
  has(r, "open");
  r = modtest_cmd(&T, "/admin breaker-reset name:test.breaker", &MODTEST_OWNER_WHO);
  has(r, "Breaker `test.breaker` is closed again.");
  assert_int_equal(souk_breaker_state(br), SOUK_BREAKER_CLOSED);
  r = modtest_cmd(&T, "/admin breaker-reset name:nope", &MODTEST_OWNER_WHO);
  has(r, "There is no breaker `nope`.");
  souk_breaker_free(br);

  r = modtest_cmd(&T, "/admin health", &MODTEST_OWNER_WHO);
  has(r, "**Health: HEALTHY**");
}

static int got;
static void got_cb(void *ud, int status, const void *val, size_t len) { got = status; }

static void test_cache_clear(void **state) {
  assert_int_equal(souk_cache_set(cache, 0, "market:AAPL", "1", 1, NULL, NULL), 0);
  assert_int_equal(souk_cache_set(cache, 0, "other", "2", 1, NULL, NULL), 0);
  modtest_drain();
  uv_run(souk_loop(), UV_RUN_NOWAIT);
  const char *r = modtest_cmd(&T, "/admin cache-clear pattern:market:*", &MODTEST_OWNER_WHO);
  has(r, "Cache entries matching `market:*` were cleared.");
  got = 1;
  assert_int_equal(souk_cache_get(cache, 0, "market:AAPL", got_cb, NULL), 0);
  while (got == 1)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(got, SOUK_ENOTFOUND);
  got = 1;
  assert_int_equal(souk_cache_get(cache, 0, "other", got_cb, NULL), 0);
  while (got == 1)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(got, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_prefix, setup, teardown),
      cmocka_unit_test_setup_teardown(test_owner_views, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cache_clear, setup, teardown),
  };
  souk_log_set_level(SOUK_LOG_OFF);
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk_loop_close();
  return rc;
}
