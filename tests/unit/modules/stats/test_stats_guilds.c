/* What the stats module keeps per guild: a state only for a guild that set
 * a stats feature (a counter, the heartbeat, the summary), dropped once it
 * turns everything off; every guild's member count only while a presence
 * activity shows {members}; and where member and ban counts come from,
 * read off discord.intents. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "../modtest.h"
#include "discord/dconf.h"
#include "modules/stats/stats_int.h"
#include "souk/discord.h"
#include "souk/log.h"

extern const souk_module_t souk_stats_module;

static const souk_module_t *const mods[] = {&souk_stats_module, NULL};
static modtest_t T;

#define GUILDS 1000
#define BASE   UINT64_C(300000000000000000)

static void guild_create(uint64_t id, int64_t members) {
  char d[160];
  snprintf(d, sizeof d, "{\"id\":\"%" PRIu64 "\",\"name\":\"g\",\"member_count\":%" PRId64 "}", id,
           members);
  modtest_event("GUILD_CREATE", d);
}

static void guild_delete(uint64_t id, bool unavailable) {
  char d[96];
  snprintf(d, sizeof d, "{\"id\":\"%" PRIu64 "\",\"unavailable\":%s}", id,
           unavailable ? "true" : "false");
  modtest_event("GUILD_DELETE", d);
}

static void test_only_configured_guilds_have_state(void **state) {
  modtest_start(&T, mods, "stats:\n  presence:\n    activities: [\"{members} members\"]\n");
  int64_t sum = 0;
  for (uint64_t i = 0; i < GUILDS; i++) {
    guild_create(BASE + i, (int64_t)(10 + i));
    sum += (int64_t)(10 + i);
  }
  guild_create(MODTEST_GUILD, 5);
  sum += 5;
  /* A thousand guilds that set nothing: no state at all. */
  assert_int_equal(stats_g.nguilds, 0);
  assert_int_equal(stats_members_total(), sum);
  /* A GUILD_CREATE again (after an outage, a new session) replaces. */
  guild_create(BASE, 20);
  sum += 20 - 10;
  assert_int_equal(stats_members_total(), sum);
  modtest_event("GUILD_MEMBER_ADD", "{\"guild_id\":\"300000000000000001\",\"user\":{\"id\":\"9\"}}");
  sum += 1;
  assert_int_equal(stats_members_total(), sum);
  /* An outage keeps the count; leaving the guild takes it away. */
  guild_delete(BASE + 2, true);
  assert_int_equal(stats_members_total(), sum);
  guild_delete(BASE + 2, false);
  sum -= 12;
  assert_int_equal(stats_members_total(), sum);
  /* The guild that sets the heartbeat gets a state, and only it... */
  const char *r = modtest_cmd(&T, "/stats heartbeat channel:<#400000000000000004>",
                              &MODTEST_OWNER_WHO);
  assert_non_null(strstr(r, "heartbeat message"));
  assert_int_equal(stats_g.nguilds, 1);
  assert_non_null(stats_guild_find(MODTEST_GUILD));
  /* ... and its next GUILD_CREATE fills it in. */
  guild_create(MODTEST_GUILD, 6);
  assert_int_equal(stats_guild_find(MODTEST_GUILD)->members, 6);
  assert_int_equal(stats_g.nguilds, 1);
  /* Turned off: the next tick drops it. */
  r = modtest_cmd(&T, "/stats heartbeat off:true", &MODTEST_OWNER_WHO);
  assert_non_null(strstr(r, "off"));
  assert_int_equal(stats_g.nguilds, 1);
  stats_tick();
  assert_int_equal(stats_g.nguilds, 0);
  modtest_drain();
  modtest_stop(&T);
}

/* Without {members} in an activity, no guild's count is kept. */
static void test_no_member_counts_unless_shown(void **state) {
  modtest_start(&T, mods, "stats:\n  presence:\n    activities: [\"{guilds} servers\"]\n");
  for (uint64_t i = 0; i < 100; i++)
    guild_create(BASE + i, 50);
  assert_int_equal(stats_members_total(), 0);
  assert_int_equal(stats_g.nguilds, 0);
  modtest_stop(&T);
}

/* Member and ban events follow discord.intents, unless forced on or off. */
static void test_events_follow_the_intents(void **state) {
  int64_t saved = souk__discord_conf.intents;
  modtest_start(&T, mods, NULL);
  souk__discord_conf.intents = 33281; /* GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT */
  assert_false(stats_members_events());
  assert_false(stats_ban_events());
  souk__discord_conf.intents = 33281 | 2 | 4;
  assert_int_equal(souk_discord_intents(), 33281 | 2 | 4);
  assert_true(stats_members_events());
  assert_true(stats_ban_events());
  modtest_stop(&T);
  modtest_start(&T, mods, "stats:\n  members_events: off\n  ban_events: on\n");
  assert_false(stats_members_events());
  assert_true(stats_ban_events());
  souk__discord_conf.intents = 33281;
  assert_true(stats_ban_events());
  modtest_stop(&T);
  souk__discord_conf.intents = saved;
}

int main(void) {
  souk_log_set_level(getenv("SOUK_TEST_DEBUG") ? SOUK_LOG_DEBUG : SOUK_LOG_OFF);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_only_configured_guilds_have_state),
      cmocka_unit_test(test_no_member_counts_unless_shown),
      cmocka_unit_test(test_events_follow_the_intents),
  };
  int fails = cmocka_run_group_tests_name("stats/guilds", tests, NULL, NULL);
  souk_loop_close();
  return fails;
}
