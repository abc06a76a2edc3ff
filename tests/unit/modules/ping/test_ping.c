/* The ping module: /ping answers "pong" on every surface; with no gateway
 * shard in this process (the console, a test) it has no latency to add.
 * The smallest module test: the guide's worked example (docs/modules.md). */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include "../modtest.h"
#include "souk/log.h"

extern const souk_module_t souk_ping_module;

static void test_pong(void **state) {
  modtest_t t;
  modtest_start(&t, (const souk_module_t *[]){&souk_ping_module, NULL}, NULL);
  const char *r = modtest_cmd(&t, "/ping", &MODTEST_MEMBER);
  assert_int_equal(t.reply.done, 1);
  assert_string_equal(r, "pong\n");
  /* In a DM too: /ping is not guild-only. */
  modtest_who_t dm = MODTEST_MEMBER;
  dm.guild = 0;
  assert_string_equal(modtest_cmd(&t, "/ping", &dm), "pong\n");
  modtest_stop(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_pong)};
  souk_log_set_level(SOUK_LOG_OFF);
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk_loop_close();
  return rc;
}
