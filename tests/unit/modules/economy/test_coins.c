/* The economy's coin commands through the module registry (modtest.h), on
 * a throwaway SQLite store: what a handler reads on the loop thread and
 * what its transaction does on the pool. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "../modtest.h"
#include "modules/economy/economy_int.h"
#include "souk/log.h"

#include <pthread.h>

extern const souk_module_t souk_economy_module;

static const souk_module_t *const mods[] = {&souk_economy_module, NULL};
static modtest_t T;

#define has(text, want) assert_non_null(strstr((text), (want)))

static int setup(void **state) {
  modtest_start(&T, mods, "economy:\n  daily:\n    amount: 100\n");
  return 0;
}

static int teardown(void **state) {
  modtest_stop(&T);
  return 0;
}

/* Accept the Terms of Service as w (the first coin command asks). */
static void accept_terms(const modtest_who_t *w) {
  has(modtest_cmd(&T, "/balance", w), "Terms of Service");
  char accept[SOUK_CMD_CUSTOM_ID_MAX + 1] = "";
  for (size_t i = 0; i < T.reply.ncustom; i++)
    if (strncmp(T.reply.custom_ids[i], "eco:tos:a:", 10) == 0)
      snprintf(accept, sizeof accept, "%s", T.reply.custom_ids[i]);
  assert_true(accept[0]);
  has(modtest_press(&T, accept, w), "coins");
}

/* Worker-pool threads held until released, so a transaction queued now
 * runs only after the test has done something on the loop. */
#define POOL 2 /* UV_THREADPOOL_SIZE, set in main */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static int pool_held;
static bool pool_release;

static void hold_work(void *ud) {
  pthread_mutex_lock(&pool_mu);
  pool_held++;
  pthread_cond_broadcast(&pool_cv);
  while (!pool_release)
    pthread_cond_wait(&pool_cv, &pool_mu);
  pthread_mutex_unlock(&pool_mu);
}

static void hold_done(void *ud, int status) {}

/* On the loop, while /daily's transaction waits for a pool thread: an
 * operator changes the reward at run time, then the pool goes on. */
static void change_then_release(uv_timer_t *t) {
  economy_conf.daily_amount = 999;
  economy_conf.daily_cooldown_ms = 60000;
  pthread_mutex_lock(&pool_mu);
  pool_release = true;
  pthread_cond_broadcast(&pool_cv);
  pthread_mutex_unlock(&pool_mu);
  uv_close((uv_handle_t *)t, NULL);
}

/* economy.daily.amount and .cooldown change at run time on the loop
 * thread; /daily's transaction on a pool thread uses the values copied
 * when the command came, never reads the config itself. */
static void test_daily_uses_the_values_of_its_command(void **state) {
  accept_terms(&MODTEST_MEMBER);
  pool_held = 0;
  pool_release = false;
  for (int i = 0; i < POOL; i++)
    assert_int_equal(souk_work_submit(hold_work, hold_done, NULL), 0);
  pthread_mutex_lock(&pool_mu);
  while (pool_held < POOL)
    pthread_cond_wait(&pool_cv, &pool_mu);
  pthread_mutex_unlock(&pool_mu);
  uv_timer_t t;
  uv_timer_init(souk_loop(), &t);
  uv_timer_start(&t, change_then_release, 50, 0);
  const char *r = modtest_cmd(&T, "/daily", &MODTEST_MEMBER);
  has(r, "You claimed **100** coins.");
  has(r, "Your balance: **1,100**.");
  modtest_drain();
  economy_conf.daily_amount = 100;
  economy_conf.daily_cooldown_ms = 86400000;
}

/* Names and poll text are what users typed: they show as typed, never as
 * markdown that bolds, hides or mentions. */
static void test_user_text_is_escaped(void **state) {
  const modtest_who_t bob = {UINT64_C(300000000000000009), MODTEST_GUILD, 0, "**Bob** ||x||"};
  accept_terms(&bob);
  const char *r = modtest_cmd(&T, "/coins leaderboard", &bob);
  has(r, "**\\*\\*Bob\\*\\* \\|\\|x\\|\\|**");
  assert_null(strstr(r, "**Bob**"));
  r = modtest_cmd(&T, "/poll question:*Lunch*? options:\"_Pizza_ | <@1> | Salad\"",
                  &MODTEST_MEMBER);
  has(r, "Poll: \\*Lunch\\*?");
  has(r, "**\\_Pizza\\_**");
  has(r, "**\\<@1\\>**");
  has(r, "**Salad**");
}

int main(void) {
  /* Before libuv starts its pool: the test holds every thread of it. */
  setenv("UV_THREADPOOL_SIZE", "2", 1);
  souk_log_set_level(getenv("SOUK_TEST_DEBUG") ? SOUK_LOG_DEBUG : SOUK_LOG_OFF);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_daily_uses_the_values_of_its_command, setup, teardown),
      cmocka_unit_test_setup_teardown(test_user_text_is_escaped, setup, teardown),
  };
  int fails = cmocka_run_group_tests_name("economy/coins", tests, NULL, NULL);
  souk_loop_close();
  return fails;
}
