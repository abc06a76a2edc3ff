/* The member cache: off by default; GUILD_CREATE, chunks, member add /
 * update / remove, message authors and GUILD_DELETE keep it; thousands of
 * members with removals in any order stay findable. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "discord/dconf.h"
#include "discord/members.h"
#include "souk/buf.h"
#include "souk/json.h"
#include "souk/log.h"

static void feed(const char *name, const char *payload) {
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, payload, strlen(payload)), 0);
  souk_event_t ev = {.name = name, .json = &j, .d = 0};
  souk__members_event(&ev);
  souk_json_free(&j);
}

static size_t roles_of(uint64_t g, uint64_t u, uint64_t *first) {
  const uint64_t *r;
  size_t n;
  if (!souk__members_get(g, u, &r, &n)) return (size_t)-1;
  if (first) *first = n ? r[0] : 0;
  return n;
}

static void test_off_by_default(void **state) {
  souk__discord_conf.cache_members = false;
  souk__members_start();
  feed("GUILD_CREATE", "{\"id\":\"7\",\"members\":[{\"user\":{\"id\":\"1\"},\"roles\":[]}]}");
  assert_int_equal(souk__members_total(), 0);
  assert_int_equal(roles_of(7, 1, NULL), (size_t)-1);
  souk__members_stop();
}

static void test_events_keep_it(void **state) {
  souk__discord_conf.cache_members = true;
  souk__members_start();
  feed("GUILD_CREATE", "{\"id\":\"7\",\"members\":[{\"user\":{\"id\":\"1\"},\"roles\":[\"70\"]},"
                       "{\"user\":{\"id\":\"2\"},\"roles\":[]}]}");
  assert_int_equal(souk__members_count(7), 2);
  uint64_t r0;
  assert_int_equal(roles_of(7, 1, &r0), 1);
  assert_true(r0 == 70);
  feed("GUILD_MEMBERS_CHUNK", "{\"guild_id\":\"7\",\"members\":[{\"user\":{\"id\":\"3\"},"
                              "\"roles\":[\"71\",\"72\"]}],\"chunk_index\":0,\"chunk_count\":1}");
  assert_int_equal(roles_of(7, 3, &r0), 2);
  feed("GUILD_MEMBER_ADD", "{\"guild_id\":\"7\",\"user\":{\"id\":\"4\"},\"roles\":[]}");
  feed("GUILD_MEMBER_UPDATE",
       "{\"guild_id\":\"7\",\"user\":{\"id\":\"2\"},\"roles\":[\"73\",\"74\",\"75\"]}");
  assert_int_equal(roles_of(7, 2, &r0), 3);
  assert_true(r0 == 73);
  /* A message's member has no "user": the author is the member. */
  feed("MESSAGE_CREATE", "{\"guild_id\":\"8\",\"author\":{\"id\":\"9\"},\"member\":{\"roles\":"
                         "[\"80\"]},\"content\":\"hi\"}");
  assert_int_equal(roles_of(8, 9, &r0), 1);
  assert_true(r0 == 80);
  assert_int_equal(souk__members_total(), 5);
  feed("GUILD_MEMBER_REMOVE", "{\"guild_id\":\"7\",\"user\":{\"id\":\"1\"}}");
  assert_int_equal(roles_of(7, 1, NULL), (size_t)-1);
  assert_int_equal(souk__members_count(7), 3);
  feed("GUILD_DELETE", "{\"id\":\"7\"}");
  assert_int_equal(souk__members_count(7), 0);
  assert_int_equal(souk__members_total(), 1);
  souk__members_stop();
  assert_int_equal(souk__members_total(), 0);
}

static void test_many_with_removals(void **state) {
  souk__discord_conf.cache_members = true;
  souk__members_start();
  souk_buf_t b;
  souk_buf_init(&b);
  souk_buf_puts(&b, "{\"id\":\"1186672118224076810\",\"members\":[");
  /* Snowflake-like ids that share low bits, to crowd the table. */
  for (int i = 0; i < 3000; i++)
    souk_buf_printf(&b, "%s{\"user\":{\"id\":\"%" PRIu64 "\"},\"roles\":[\"%d\"]}", i ? "," : "",
                    (UINT64_C(1186672118224076810) + ((uint64_t)i << 22)), i);
  souk_buf_puts(&b, "]}");
  feed("GUILD_CREATE", b.data);
  uint64_t gid = UINT64_C(1186672118224076810);
  assert_int_equal(souk__members_count(gid), 3000);
  /* Remove every third, in a scattered order. */
  for (int k = 0; k < 3000; k++) {
    int i = (k * 1237) % 3000;
    if (i % 3) continue;
    char p[128];
    snprintf(p, sizeof p, "{\"guild_id\":\"%" PRIu64 "\",\"user\":{\"id\":\"%" PRIu64 "\"}}", gid,
             UINT64_C(1186672118224076810) + ((uint64_t)i << 22));
    feed("GUILD_MEMBER_REMOVE", p);
  }
  assert_int_equal(souk__members_count(gid), 2000);
  for (int i = 0; i < 3000; i++) {
    uint64_t r0 = 0;
    size_t n = roles_of(gid, UINT64_C(1186672118224076810) + ((uint64_t)i << 22), &r0);
    if (i % 3 == 0) {
      assert_int_equal(n, (size_t)-1);
    } else {
      assert_int_equal(n, 1);
      assert_true(r0 == (uint64_t)i);
    }
  }
  souk_buf_free(&b);
  souk__members_stop();
}

int main(void) {
  souk_log_set_level(SOUK_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_off_by_default),
      cmocka_unit_test(test_events_keep_it),
      cmocka_unit_test(test_many_with_removals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
