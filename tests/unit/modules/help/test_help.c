/* The help module: /help lists, by category, only what the caller may run
 * (owner-only and permission-gated commands left out for others, hidden
 * ones for everyone), pages with buttons and a menu that notice when they
 * are stale, one command in full, and the autocomplete of its option. */
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
#include "souk/log.h"

extern const souk_module_t souk_help_module;

/* A module of this test's own, whose commands /help describes. */
static void noop(souk_cmd_ctx_t *ctx) { souk_cmd_replyf(ctx, "ok"); }

static const souk_cmd_option_t opt_count[] = {
    {.name = "count",
     .description = "How many",
     .type = SOUK_OPT_INTEGER,
     .required = true,
     SOUK_OPT_INT_RANGE(1, 9)},
    {0},
};
static const char *const roll_usage[] = {"/roll count:2", NULL};
static const souk_command_t shop_commands[] = {
    {.name = "roll",
     .description = "Roll some dice",
     .category = "Games",
     .usage = roll_usage,
     .options = opt_count,
     .handler = noop},
    {.name = "reboot",
     .description = "Reboot the shop",
     .category = "Owners",
     .flags = SOUK_CMD_OWNER_ONLY,
     .handler = noop},
    {.name = "kick",
     .description = "Kick someone",
     .category = "Moderation",
     .permissions = SOUK_PERM_KICK_MEMBERS,
     .handler = noop},
    {.name = "secret", .description = "Never listed", .flags = SOUK_CMD_HIDDEN, .handler = noop},
    {0},
};
static const souk_module_t shop = {
    .abi = SOUK_MODULE_ABI, .name = "shop", .commands = shop_commands};

static const souk_module_t *const mods[] = {&souk_help_module, &shop, NULL};
static modtest_t T;

static int setup(void **state) {
  modtest_start(&T, mods, NULL);
  return 0;
}

static int teardown(void **state) {
  modtest_stop(&T);
  return 0;
}

#define has(text, want)   assert_non_null(strstr((text), (want)))
#define hasnt(text, what) assert_null(strstr((text), (what)))

static void test_pages_by_who(void **state) {
  /* A member: General (/help) and Games; no owners' or kickers' page. */
  const char *r = modtest_cmd(&T, "/help", &MODTEST_MEMBER);
  assert_true(T.reply.ephemeral);
  has(r, "souk commands \xE2\x80\x94 General (1/2)");
  has(r, "`/help [command]`");
  hasnt(r, "reboot");
  hasnt(r, "secret");
  /* Prev, next and the category menu. */
  assert_int_equal(T.reply.ncustom, 3);
  assert_string_equal(T.reply.custom_ids[1], "help:p:1:2");
  r = modtest_press(&T, "help:p:1:2", &MODTEST_MEMBER);
  assert_int_equal(T.reply.kind, SOUK__OUT_UPDATE);
  has(r, "Games (2/2)");
  has(r, "`/roll count` \xE2\x80\x94 Roll some dice");
  r = modtest_pick(&T, "help:s:2", "0", &MODTEST_MEMBER);
  has(r, "General (1/2)");
  /* The owner sees all four categories; a page count from before is stale. */
  r = modtest_cmd(&T, "/help", &MODTEST_OWNER_WHO);
  has(r, "General (1/4)");
  r = modtest_press(&T, "help:p:1:2", &MODTEST_OWNER_WHO);
  has(r, "This help message is out of date.");
  r = modtest_pick(&T, "help:s:4", "2", &MODTEST_OWNER_WHO);
  has(r, "Owners (3/4)");
  has(r, "`/reboot` \xE2\x80\x94 Reboot the shop");
  r = modtest_pick(&T, "help:s:4", "3", &MODTEST_OWNER_WHO);
  has(r, "Moderation (4/4)");
}

static void test_one_command(void **state) {
  const char *r = modtest_cmd(&T, "/help command:roll", &MODTEST_MEMBER);
  has(r, "/roll\nRoll some dice\n");
  has(r, "Options: `count` (whole number, required) \xE2\x80\x94 How many (1 to 9)");
  has(r, "Examples: `/roll count:2`");
  r = modtest_cmd(&T, "/help command:/kick", &MODTEST_OWNER_WHO);
  has(r, "Who: Needs server permissions.");
  r = modtest_cmd(&T, "/help command:reboot", &MODTEST_MEMBER);
  has(r, "There is no command `reboot` you can use here.");
  r = modtest_cmd(&T, "/help command:secret", &MODTEST_OWNER_WHO);
  has(r, "There is no command `secret` you can use here.");
  r = modtest_cmd(&T, "/help command:nothing", &MODTEST_MEMBER);
  has(r, "There is no command `nothing` you can use here. Try `/help`.");
}

static void test_complete(void **state) {
  const char *data = "{\"name\":\"help\",\"options\":[{\"name\":\"command\",\"type\":3,"
                     "\"value\":\"r\",\"focused\":true}]}";
  const char *r = modtest_complete(&T, data, &MODTEST_MEMBER);
  assert_string_equal(r, "roll=roll\n");
  r = modtest_complete(&T, data, &MODTEST_OWNER_WHO);
  assert_string_equal(r, "roll=roll\nreboot=reboot\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pages_by_who, setup, teardown),
      cmocka_unit_test_setup_teardown(test_one_command, setup, teardown),
      cmocka_unit_test_setup_teardown(test_complete, setup, teardown),
  };
  souk_log_set_level(SOUK_LOG_OFF);
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  souk_loop_close();
  return rc;
}
