/* The guild cache: the permissions prefix commands and Discord actions are
 * checked against, kept from gateway events.  Each test feeds the events a
 * guild goes through and asks what Discord's rules give; a cache that
 * loses a role, a channel or an overwrite answers differently. */
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

#include "discord/gcache.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/cmd.h"
#include "souk/discord.h"
#include "souk/json.h"

#define BOT     "900"
#define OWNER   "901"
#define VIEW    SOUK_PERM_VIEW_CHANNEL
#define SEND    SOUK_PERM_SEND_MESSAGES
#define EMBED   SOUK_PERM_EMBED_LINKS
#define MANAGE  SOUK_PERM_MANAGE_GUILD
#define ALL     (~UINT64_C(0))
#define U(x)    ((uint64_t)(x))

static void feed(const char *name, const char *payload) {
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, payload, strlen(payload)), 0);
  souk_event_t ev = {.name = name, .json = &j, .d = 0};
  souk__gcache_event(&ev);
  souk_json_free(&j);
}

static void ready(void) { feed("READY", "{\"user\":{\"id\":\"" BOT "\"}}"); }

/* Guild 7: @everyone may view and send; role 70 (the bot's) may embed;
 * role 71 may manage the guild; channels 10 (no overwrites), 11 (@everyone
 * may not send, role 70 may), 12 (hidden from @everyone, the bot's own
 * member overwrite shows it), 13 (another member's overwrite, which must
 * not apply to the bot, and role 71's, which the bot does not hold). */
static void guild7(void) {
  char p[2048];
  snprintf(p, sizeof p,
           "{\"id\":\"7\",\"owner_id\":\"" OWNER "\",\"roles\":["
           "{\"id\":\"7\",\"permissions\":\"%" PRIu64 "\"},"
           "{\"id\":\"70\",\"permissions\":\"%" PRIu64 "\"},"
           "{\"id\":\"71\",\"permissions\":\"%" PRIu64 "\"}],"
           "\"channels\":["
           "{\"id\":\"13\",\"permission_overwrites\":[{\"id\":\"555\",\"type\":1,\"allow\":\"0\","
           "\"deny\":\"%" PRIu64 "\"},{\"id\":\"71\",\"type\":0,\"allow\":\"0\",\"deny\":\"%" PRIu64
           "\"}]},"
           "{\"id\":\"10\",\"permission_overwrites\":[]},"
           "{\"id\":\"12\",\"permission_overwrites\":[{\"id\":\"7\",\"type\":0,\"allow\":\"0\","
           "\"deny\":\"%" PRIu64 "\"},{\"id\":\"" BOT "\",\"type\":1,\"allow\":\"%" PRIu64
           "\",\"deny\":\"0\"}]},"
           "{\"id\":\"11\",\"permission_overwrites\":[{\"id\":\"7\",\"type\":0,\"allow\":\"0\","
           "\"deny\":\"%" PRIu64 "\"},{\"id\":\"70\",\"type\":0,\"allow\":\"%" PRIu64
           "\",\"deny\":\"0\"}]}],"
           "\"members\":[{\"user\":{\"id\":\"" OWNER "\"},\"roles\":[]},"
           "{\"user\":{\"id\":\"" BOT "\"},\"roles\":[\"70\"]}]}",
           VIEW | SEND, EMBED, MANAGE, VIEW | SEND, VIEW, VIEW, VIEW, SEND, SEND);
  feed("GUILD_CREATE", p);
}

static uint64_t bot(uint64_t guild, uint64_t channel) {
  uint64_t p = 12345;
  if (!souk__gcache_bot_perms(guild, channel, &p)) {
    assert_true(p == 0);
    return UINT64_MAX - 1; /* "unknown" */
  }
  return p;
}

#define UNKNOWN (UINT64_MAX - 1)

static uint64_t member(uint64_t guild, uint64_t user, const char *member_json) {
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, member_json, strlen(member_json)), 0);
  uint64_t p = souk__gcache_member_perms(guild, user, &j, 0);
  souk_json_free(&j);
  return p;
}

static int setup(void **state) {
  souk__gcache_clear();
  ready();
  guild7();
  return 0;
}

static int teardown(void **state) {
  souk__gcache_clear();
  return 0;
}

static void test_guild_and_channels(void **state) {
  assert_int_equal(souk__gcache_guilds(), 1);
  assert_int_equal(souk__gcache_bot_user(), 900);
  /* Guild-wide: @everyone's bits and the bot's role's. */
  assert_true(bot(7, 0) == (VIEW | SEND | EMBED));
  assert_true(bot(7, 10) == (VIEW | SEND | EMBED));
  /* @everyone denied sending; the bot's role allows it again. */
  assert_true(bot(7, 11) == (VIEW | SEND | EMBED));
  /* Hidden from @everyone, shown to the bot by its member overwrite. */
  assert_true(bot(7, 12) == (VIEW | SEND | EMBED));
  /* Another member's overwrite and a role the bot lacks change nothing. */
  assert_true(bot(7, 13) == (VIEW | SEND | EMBED));
  /* Unknown guild or channel: not known, and no permissions. */
  assert_true(bot(8, 0) == UNKNOWN);
  assert_true(bot(7, 14) == UNKNOWN);
}

static void test_members(void **state) {
  /* The owner has everything; a member has @everyone's and its roles'. */
  assert_true(member(7, 901, "{\"roles\":[]}") == ALL);
  assert_true(member(7, 555, "{\"roles\":[]}") == (VIEW | SEND));
  assert_true(member(7, 555, "{\"roles\":[\"71\"]}") == (VIEW | SEND | MANAGE));
  assert_true(member(7, 555, "{\"roles\":[\"71\",\"70\",\"99\"]}") == (VIEW | SEND | MANAGE | EMBED));
  assert_true(member(8, 555, "{\"roles\":[]}") == 0);
  /* ADMINISTRATOR is everything. */
  feed("GUILD_ROLE_UPDATE", "{\"guild_id\":\"7\",\"role\":{\"id\":\"71\",\"permissions\":\"8\"}}");
  assert_true(member(7, 555, "{\"roles\":[\"71\"]}") == ALL);
}

static void test_roles_change(void **state) {
  /* A new role given to the bot counts once the bot's member update says so. */
  char p[256];
  snprintf(p, sizeof p, "{\"guild_id\":\"7\",\"role\":{\"id\":\"72\",\"permissions\":\"%" PRIu64
                        "\"}}",
           MANAGE);
  feed("GUILD_ROLE_CREATE", p);
  assert_true(bot(7, 0) == (VIEW | SEND | EMBED));
  feed("GUILD_MEMBER_UPDATE",
       "{\"guild_id\":\"7\",\"user\":{\"id\":\"" BOT "\"},\"roles\":[\"70\",\"72\"]}");
  assert_true(bot(7, 0) == (VIEW | SEND | EMBED | MANAGE));
  /* Another member's update is not the bot's. */
  feed("GUILD_MEMBER_UPDATE", "{\"guild_id\":\"7\",\"user\":{\"id\":\"555\"},\"roles\":[]}");
  assert_true(bot(7, 0) == (VIEW | SEND | EMBED | MANAGE));
  /* A role's permissions change; a deleted role gives nothing. */
  feed("GUILD_ROLE_UPDATE", "{\"guild_id\":\"7\",\"role\":{\"id\":\"70\",\"permissions\":\"0\"}}");
  assert_true(bot(7, 0) == (VIEW | SEND | MANAGE));
  feed("GUILD_ROLE_DELETE", "{\"guild_id\":\"7\",\"role_id\":\"72\"}");
  assert_true(bot(7, 0) == (VIEW | SEND));
  /* Channel 11's overwrite of role 70 still allows sending there. */
  assert_true(bot(7, 11) == (VIEW | SEND));
  /* The bot's role becomes ADMINISTRATOR: everything, overwrites or not. */
  feed("GUILD_ROLE_UPDATE", "{\"guild_id\":\"7\",\"role\":{\"id\":\"70\",\"permissions\":\"8\"}}");
  assert_true(bot(7, 12) == ALL);
  /* Events for an unknown guild change nothing. */
  feed("GUILD_ROLE_CREATE", "{\"guild_id\":\"8\",\"role\":{\"id\":\"80\",\"permissions\":\"8\"}}");
  assert_true(bot(8, 0) == UNKNOWN);
}

static void test_channels_change(void **state) {
  char p[512];
  /* A new channel hidden from @everyone: known, and nothing is allowed. */
  snprintf(p, sizeof p,
           "{\"guild_id\":\"7\",\"id\":\"5\",\"permission_overwrites\":[{\"id\":\"7\",\"type\":0,"
           "\"allow\":\"0\",\"deny\":\"%" PRIu64 "\"}]}",
           VIEW);
  feed("CHANNEL_CREATE", p);
  assert_true(bot(7, 5) == 0);
  /* Shown to the bot's role. */
  snprintf(p, sizeof p,
           "{\"guild_id\":\"7\",\"id\":\"5\",\"permission_overwrites\":[{\"id\":\"7\",\"type\":0,"
           "\"allow\":\"0\",\"deny\":\"%" PRIu64 "\"},{\"id\":\"70\",\"type\":0,\"allow\":\"%" PRIu64
           "\",\"deny\":\"0\"}]}",
           VIEW, VIEW);
  feed("CHANNEL_UPDATE", p);
  assert_true(bot(7, 5) == (VIEW | SEND | EMBED));
  /* A channel that sorts last, and one in the middle. */
  feed("CHANNEL_CREATE", "{\"guild_id\":\"7\",\"id\":\"99\",\"permission_overwrites\":[]}");
  snprintf(p, sizeof p,
           "{\"guild_id\":\"7\",\"id\":\"12\",\"permission_overwrites\":[{\"id\":\"7\",\"type\":0,"
           "\"allow\":\"0\",\"deny\":\"%" PRIu64 "\"}]}",
           SEND);
  feed("CHANNEL_UPDATE", p); /* the bot's member overwrite is gone */
  assert_true(bot(7, 12) == (VIEW | EMBED));
  assert_true(bot(7, 99) == (VIEW | SEND | EMBED));
  /* Deleting a channel forgets it, and only it. */
  feed("CHANNEL_DELETE", "{\"guild_id\":\"7\",\"id\":\"11\"}");
  assert_true(bot(7, 11) == UNKNOWN);
  assert_true(bot(7, 10) == (VIEW | SEND | EMBED));
  assert_true(bot(7, 12) == (VIEW | EMBED));
  assert_true(bot(7, 13) == (VIEW | SEND | EMBED));
  assert_true(bot(7, 5) == (VIEW | SEND | EMBED));
  feed("CHANNEL_DELETE", "{\"guild_id\":\"7\",\"id\":\"11\"}");
  feed("CHANNEL_DELETE", "{\"guild_id\":\"7\",\"id\":\"5\"}");
  feed("CHANNEL_DELETE", "{\"guild_id\":\"7\",\"id\":\"99\"}");
  assert_true(bot(7, 5) == UNKNOWN);
  assert_true(bot(7, 99) == UNKNOWN);
  assert_true(bot(7, 13) == (VIEW | SEND | EMBED));
  /* A direct message channel (no guild) is not the cache's. */
  feed("CHANNEL_CREATE", "{\"id\":\"77\",\"type\":1}");
  assert_true(bot(7, 77) == UNKNOWN);
}

static void test_guild_update_and_delete(void **state) {
  /* GUILD_UPDATE carries roles but neither channels nor members: the
   * channels and the bot's roles stay. */
  char p[512];
  snprintf(p, sizeof p,
           "{\"id\":\"7\",\"owner_id\":\"" OWNER "\",\"roles\":[{\"id\":\"7\",\"permissions\":\"%" PRIu64
           "\"},{\"id\":\"70\",\"permissions\":\"%" PRIu64 "\"}]}",
           VIEW, SEND);
  feed("GUILD_UPDATE", p);
  assert_true(bot(7, 0) == (VIEW | SEND));
  assert_true(bot(7, 12) == (VIEW | SEND));
  assert_true(bot(7, 14) == UNKNOWN);
  /* The bot becomes the owner: everything. */
  feed("GUILD_UPDATE", "{\"id\":\"7\",\"owner_id\":\"" BOT "\"}");
  assert_true(bot(7, 11) == ALL);
  /* An outage keeps the guild; leaving forgets it. */
  feed("GUILD_DELETE", "{\"id\":\"7\",\"unavailable\":true}");
  assert_true(bot(7, 0) == ALL);
  assert_int_equal(souk__gcache_guilds(), 1);
  feed("GUILD_DELETE", "{\"id\":\"7\"}");
  assert_true(bot(7, 0) == UNKNOWN);
  assert_int_equal(souk__gcache_guilds(), 0);
}

/* Thousands of guilds, joined and left in any order, stay findable; each
 * keeps its own channels. */
static void test_many_guilds(void **state) {
  enum { N = 3000 };
  char p[512];
  for (int i = 0; i < N; i++) {
    uint64_t id = UINT64_C(1000000000000000000) + (uint64_t)i * 7919;
    snprintf(p, sizeof p,
             "{\"id\":\"%" PRIu64 "\",\"owner_id\":\"" OWNER "\",\"roles\":[{\"id\":\"%" PRIu64
             "\",\"permissions\":\"%d\"}],\"channels\":[{\"id\":\"%" PRIu64
             "\",\"permission_overwrites\":[]}],\"members\":[]}",
             id, id, i + 1, id + 1);
    feed("GUILD_CREATE", p);
  }
  assert_int_equal(souk__gcache_guilds(), N + 1);
  for (int i = 0; i < N; i += 2) {
    uint64_t id = UINT64_C(1000000000000000000) + (uint64_t)i * 7919;
    snprintf(p, sizeof p, "{\"id\":\"%" PRIu64 "\"}", id);
    feed("GUILD_DELETE", p);
  }
  assert_int_equal(souk__gcache_guilds(), N / 2 + 1);
  for (int i = 0; i < N; i++) {
    uint64_t id = UINT64_C(1000000000000000000) + (uint64_t)i * 7919;
    uint64_t everyone = (uint64_t)(i + 1);
    uint64_t guild = (everyone & SOUK_PERM_ADMINISTRATOR) ? ALL : everyone;
    uint64_t chan = guild == ALL ? ALL : (everyone & VIEW) ? everyone : 0;
    assert_true(bot(id, 0) == ((i % 2) ? guild : UNKNOWN));
    assert_true(bot(id, id + 1) == ((i % 2) ? chan : UNKNOWN));
    assert_true(bot(id, id + 2) == UNKNOWN);
  }
  assert_true(bot(7, 10) == (VIEW | SEND | EMBED));
}

static void test_clear(void **state) {
  souk__gcache_clear();
  assert_int_equal(souk__gcache_guilds(), 0);
  assert_int_equal(souk__gcache_bot_user(), 0);
  assert_true(bot(7, 0) == UNKNOWN);
}

/* Guilds an event changed, as the change hook told them. */
static uint64_t changed_ids[16];
static size_t nchanged;
static void on_change(uint64_t id) {
  if (nchanged < 16) changed_ids[nchanged++] = id;
}

/* Every bot permission of guild 7 the tests above look at. */
static void perms_of_7(uint64_t out[6]) {
  out[0] = bot(7, 0);
  for (int c = 10; c <= 14; c++)
    out[c - 9] = bot(7, (uint64_t)c);
}

/* A guild handed to another process as a record comes back exactly as it
 * was (roles, the bot's roles, channels and the overwrites kept, the
 * owner, the bot's id), and events after it apply on top as they would
 * have to the original. */
static void test_record_and_restore(void **state) {
  uint64_t before[6], after[6];
  perms_of_7(before);
  size_t len = 0;
  void *rec = souk__gcache_record(7, &len);
  assert_non_null(rec);
  assert_true(len > 32);
  size_t none = 1;
  assert_null(souk__gcache_record(8, &none));
  assert_int_equal(none, 0);
  /* Another process: nothing known, not even the bot (no READY). */
  souk__gcache_clear();
  assert_true(bot(7, 0) == UNKNOWN);
  /* The record's length is checked: one byte short is refused. */
  assert_int_equal(souk__gcache_restore(rec, len - 1), SOUK_EPROTO);
  assert_int_equal(souk__gcache_guilds(), 0);
  souk__gcache_on_change(on_change);
  nchanged = 0;
  assert_int_equal(souk__gcache_restore(rec, len), 0);
  assert_int_equal(nchanged, 0); /* restoring is no change to write back */
  assert_int_equal(souk__gcache_guilds(), 1);
  assert_int_equal(souk_cmd_guilds(), 1);
  assert_int_equal(souk__gcache_bot_user(), 900);
  perms_of_7(after);
  assert_memory_equal(before, after, sizeof before);
  assert_true(member(7, 901, "{\"roles\":[]}") == ALL); /* the owner */
  /* A replayed event on top: the bot's role may now manage the guild. */
  feed("GUILD_ROLE_UPDATE", "{\"guild_id\":\"7\",\"role\":{\"id\":\"70\",\"permissions\":\"32\"}}");
  assert_true(bot(7, 0) == (VIEW | SEND | MANAGE));
  /* The bot's own member overwrite is recognised without a READY. */
  feed("CHANNEL_UPDATE",
       "{\"id\":\"12\",\"guild_id\":\"7\",\"permission_overwrites\":[{\"id\":\"7\",\"type\":0,"
       "\"allow\":\"0\",\"deny\":\"1024\"},{\"id\":\"" BOT "\",\"type\":1,\"allow\":\"1024\","
       "\"deny\":\"0\"}]}");
  assert_true(bot(7, 12) == (VIEW | SEND | MANAGE));
  feed("GUILD_DELETE", "{\"id\":\"7\"}");
  assert_int_equal(nchanged, 3);
  assert_true(changed_ids[0] == 7 && changed_ids[1] == 7 && changed_ids[2] == 7);
  souk__gcache_on_change(NULL);
  souk_free(rec);
}

/* A record of another format, machine or bot, or a damaged one, changes
 * nothing. */
static void test_restore_refuses_bad_records(void **state) {
  size_t len = 0;
  unsigned char *rec = souk__gcache_record(7, &len);
  assert_non_null(rec);
  unsigned char *bad = souk_malloc(len);
  souk__gcache_clear();
  ready();
  /* The tag. */
  memcpy(bad, rec, len);
  bad[0] ^= 0xff;
  assert_int_equal(souk__gcache_restore(bad, len), SOUK_EPROTO);
  /* Another bot's (its id after the tag). */
  memcpy(bad, rec, len);
  bad[8] ^= 1;
  assert_int_equal(souk__gcache_restore(bad, len), SOUK_EPROTO);
  /* Counts that do not match the length. */
  memcpy(bad, rec, len);
  bad[16 + 16] += 1; /* nroles */
  assert_int_equal(souk__gcache_restore(bad, len), SOUK_EPROTO);
  assert_int_equal(souk__gcache_restore(rec, len - 8), SOUK_EPROTO);
  assert_int_equal(souk__gcache_restore(NULL, 0), SOUK_EPROTO);
  assert_int_equal(souk__gcache_guilds(), 0);
  assert_int_equal(souk__gcache_restore(rec, len), 0);
  assert_int_equal(souk__gcache_guilds(), 1);
  assert_true(bot(7, 11) == (VIEW | SEND | EMBED));
  souk_free(bad);
  souk_free(rec);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_guild_and_channels, setup, teardown),
      cmocka_unit_test_setup_teardown(test_members, setup, teardown),
      cmocka_unit_test_setup_teardown(test_roles_change, setup, teardown),
      cmocka_unit_test_setup_teardown(test_channels_change, setup, teardown),
      cmocka_unit_test_setup_teardown(test_guild_update_and_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_guilds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_clear, setup, teardown),
      cmocka_unit_test_setup_teardown(test_record_and_restore, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restore_refuses_bad_records, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
