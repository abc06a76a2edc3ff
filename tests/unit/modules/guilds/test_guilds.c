/* The guilds module: GUILD_DELETE (the bot removed, not an outage) notes
 * when the bot left, GUILD_CREATE forgets the note, and the purge task
 * deletes the data of every guild left longer than guilds.purge_after,
 * through the store's registry of tables that hold guild data. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
/* clang-format on */

#include "../modtest.h"
#include "souk/log.h"
#include "souk/task.h"

extern const souk_module_t souk_guilds_module;

static const souk_module_t *const mods[] = {&souk_guilds_module, NULL};

/* Rows of a guild-data table the test registers, and the module's notes. */
typedef struct counts {
  int64_t rows_a, rows_b, notes;
} counts_t;

static int count_fn(souk_db_t *db, void *ud) {
  counts_t *c = ud;
  const char *sql[3] = {"SELECT COUNT(*) FROM test_guild_data WHERE guild_id = 111",
                        "SELECT COUNT(*) FROM test_guild_data WHERE guild_id = 222",
                        "SELECT COUNT(*) FROM kv WHERE namespace = 'guild_left'"};
  int64_t *out[3] = {&c->rows_a, &c->rows_b, &c->notes};
  for (int i = 0; i < 3; i++) {
    souk_stmt_t *s;
    int rc = souk_db_prepare(db, sql[i], &s);
    if (rc) return rc;
    rc = souk_stmt_step(s);
    *out[i] = rc == 1 ? souk_stmt_column_int64(s, 0) : -1;
    souk_stmt_finalize(s);
  }
  return 0;
}

static counts_t counts(modtest_t *t) {
  counts_t c = {0};
  assert_int_equal(souk_store_read(t->store, count_fn, &c), 0);
  return c;
}

static int seed_fn(souk_db_t *db, void *ud) {
  return souk_db_exec(db, "CREATE TABLE test_guild_data (guild_id BIGINT, v TEXT);"
                          "INSERT INTO test_guild_data VALUES (111, 'a'), (111, 'b'), (222, 'c')");
}

/* Run the purge task now and wait for its run to end. */
static void run_purge(void) {
  souk_task_stats_t st;
  assert_int_equal(souk_task_stats("guilds.purge", &st), 0);
  uint64_t runs = st.runs;
  assert_int_equal(souk_task_restart("guilds.purge"), 0);
  souk__sched_tick();
  uint64_t until = souk_now_ms() + MODTEST_WAIT_MS;
  do {
    uv_run(souk_loop(), UV_RUN_NOWAIT);
    assert_int_equal(souk_task_stats("guilds.purge", &st), 0);
  } while ((st.runs == runs || st.running) && souk_now_ms() < until);
  assert_false(st.running);
  assert_int_equal(st.last_err, 0);
}

static void test_notes(void **state) {
  modtest_t t;
  modtest_start(&t, mods, NULL);
  assert_int_equal(souk_store_tx(t.store, seed_fn, NULL), 0);
  /* An outage is not a removal. */
  modtest_event("GUILD_DELETE", "{\"id\":\"111\",\"unavailable\":true}");
  modtest_drain();
  assert_int_equal(counts(&t).notes, 0);
  modtest_event("GUILD_DELETE", "{\"id\":\"111\"}");
  modtest_drain();
  assert_int_equal(counts(&t).notes, 1);
  /* Back in the guild: the note goes. */
  modtest_event("GUILD_CREATE", "{\"id\":\"111\",\"name\":\"x\"}");
  modtest_drain();
  assert_int_equal(counts(&t).notes, 0);
  /* The purge task is there, with the configured period (1h). */
  souk_task_stats_t st;
  assert_int_equal(souk_task_stats("guilds.purge", &st), 0);
  assert_int_equal(st.period_ms, 3600000);
  modtest_stop(&t);
  /* Its task leaves with the module. */
  souk__sched_init(NULL);
  assert_int_equal(souk_task_stats("guilds.purge", &st), SOUK_ENOTFOUND);
  souk__sched_shutdown();
}

static void test_purge(void **state) {
  modtest_t t;
  modtest_start(&t, mods, "guilds:\n  purge_after: 1ms\n  check_every: 1m\n");
  assert_int_equal(souk_store_tx(t.store, seed_fn, NULL), 0);
  assert_int_equal(souk_store_register_data("test_guild_data", NULL, "guild_id"), 0);
  modtest_event("GUILD_DELETE", "{\"id\":\"111\"}");
  modtest_drain();
  usleep(5000);
  run_purge();
  counts_t c = counts(&t);
  /* Guild 111's rows and its note are gone; guild 222 (never left) stays. */
  assert_int_equal(c.rows_a, 0);
  assert_int_equal(c.rows_b, 1);
  assert_int_equal(c.notes, 0);
  modtest_stop(&t);
}

static void test_never_purges_with_zero(void **state) {
  modtest_t t;
  modtest_start(&t, mods, "guilds:\n  purge_after: 0\n");
  assert_int_equal(souk_store_tx(t.store, seed_fn, NULL), 0);
  assert_int_equal(souk_store_register_data("test_guild_data", NULL, "guild_id"), 0);
  modtest_event("GUILD_DELETE", "{\"id\":\"111\"}");
  modtest_drain();
  usleep(5000);
  run_purge();
  counts_t c = counts(&t);
  assert_int_equal(c.rows_a, 2);
  assert_int_equal(c.notes, 1);
  modtest_stop(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_notes),
      cmocka_unit_test(test_purge),
      cmocka_unit_test(test_never_purges_with_zero),
  };
  souk_log_set_level(SOUK_LOG_OFF);
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk_loop_close();
  return rc;
}
