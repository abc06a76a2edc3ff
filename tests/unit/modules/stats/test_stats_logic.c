/* The server-stats logic: the 2-per-10-minutes rename window (also as a
 * property over random change times), its persisted form, adaptive
 * polling spread over the period, name templates, the daily summary's
 * schedule across DST edges on an injected clock, and the heartbeat text. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */
#include "modules/stats/stats_logic.c"
#include "souk/tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN 60000ull
#define T0  1700000000000ull
#define WIN STATS_RENAME_WINDOW_MS

/* ---- renames ------------------------------------------------------------- */

static void test_rename_window(void **state) {
  stats_rename_win_t w = {0};
  assert_int_equal(stats_rename_wait(&w, T0, 5000), 0);
  stats_rename_sent(&w, T0);
  assert_int_equal(stats_rename_wait(&w, T0 + 1, 5000), 0);
  stats_rename_sent(&w, T0 + 1000);
  /* The third must wait until the first leaves the window (plus margin). */
  assert_int_equal(stats_rename_wait(&w, T0 + 2000, 5000), WIN + 5000 - 2000);
  assert_int_equal(stats_rename_wait(&w, T0 + WIN + 4999, 5000), 1);
  assert_int_equal(stats_rename_wait(&w, T0 + WIN + 5000, 5000), 0);
  stats_rename_sent(&w, T0 + WIN + 5000);
  /* Now the window holds T0+1000 and T0+WIN+5000. */
  assert_int_equal(stats_rename_wait(&w, T0 + WIN + 5000, 5000), 1000);
  assert_int_equal(stats_rename_wait(&w, T0 + WIN + 6000, 5000), 0);
  /* A 429 blocks beyond the window. */
  stats_rename_blocked(&w, T0 + WIN + 6000, 30000);
  assert_int_equal(stats_rename_wait(&w, T0 + WIN + 6000, 5000), 30000);
  stats_rename_blocked(&w, T0 + WIN + 6000, 10); /* a shorter one does not shorten it */
  assert_int_equal(stats_rename_wait(&w, T0 + WIN + 6000, 5000), 30000);
}

static void test_rename_persisted_form(void **state) {
  stats_rename_win_t w = {{T0, T0 + 1000}, T0 + 5}, back;
  char txt[96];
  int n = stats_rename_encode(&w, txt, sizeof txt);
  assert_true(n > 0);
  assert_int_equal(stats_rename_decode(txt, (size_t)n, &back), 0);
  assert_memory_equal(&w, &back, sizeof w);
  /* What a restart reads back still blocks the third rename. */
  assert_true(stats_rename_wait(&back, T0 + 2000, 0) > 0);
  assert_int_equal(stats_rename_decode("0,0,0", 5, &back), 0);
  assert_int_equal(stats_rename_wait(&back, T0, 0), 0);
  assert_int_equal(stats_rename_decode("junk", 4, &back), SOUK_EINVAL);
  assert_int_equal(stats_rename_decode("1,2", 3, &back), SOUK_EINVAL);
  assert_int_equal(stats_rename_decode("5,2,0", 5, &back), SOUK_EINVAL); /* not oldest first */
  assert_int_equal(stats_rename_decode("1,2,3,4", 7, &back), SOUK_EINVAL);
  assert_int_equal(back.at[0], 0);
}

/* Whatever the change times, a renamer that follows the window never
 * sends more than 2 renames in any 10 minutes, and once changes stop it
 * shows the last value as soon as the window allows. */
static void test_rename_property(void **state) {
  srand(7);
  for (int round = 0; round < 200; round++) {
    stats_rename_win_t w = {0};
    uint64_t sent[64];
    size_t nsent = 0;
    int64_t shown = -1, want = 0;
    uint64_t now = T0, last_change = T0;
    int changes = 1 + rand() % 30;
    for (int c = 0; c < changes; c++) {
      now += (uint64_t)(rand() % 120000); /* within two minutes of the last */
      want++;
      last_change = now;
      if (stats_rename_wait(&w, now, 2000) == 0 && shown != want) {
        stats_rename_sent(&w, now);
        sent[nsent++] = now;
        shown = want;
      }
    }
    /* After the changes: rename to the latest value when the window opens. */
    while (shown != want) {
      uint64_t wait = stats_rename_wait(&w, now, 2000);
      now += wait;
      assert_int_equal(stats_rename_wait(&w, now, 2000), 0);
      stats_rename_sent(&w, now);
      sent[nsent++] = now;
      shown = want;
    }
    assert_true(now - last_change <= WIN + 2000);
    for (size_t i = 0; i + 2 < nsent; i++)
      assert_true(sent[i + 2] - sent[i] >= WIN + 2000);
  }
}

/* ---- polling --------------------------------------------------------------- */

static const stats_poll_conf_t PC = {MIN, 30 * MIN};

static void test_poll_adapts(void **state) {
  stats_poll_t p;
  stats_poll_start(&p, &PC, 123456789012345678ull, T0);
  assert_true(p.next_at >= T0 && p.next_at < T0 + MIN);
  assert_int_equal(p.interval_ms, MIN);
  uint64_t now = p.next_at;
  /* No change: 2, 4, 8, 16, 30, 30 minutes. */
  uint64_t want[] = {2, 4, 8, 16, 30, 30};
  uint64_t saved = 0;
  for (size_t i = 0; i < 6; i++) {
    saved += stats_poll_done(&p, &PC, false, now);
    assert_int_equal(p.interval_ms, want[i] * MIN);
    assert_int_equal(p.next_at, now + want[i] * MIN);
    now = p.next_at;
  }
  /* Polls saved: each poll after an interval of k minutes stands for k
   * one-minute polls: 0 + 1 + 3 + 7 + 15 + 29. */
  assert_int_equal(saved, 0 + 1 + 3 + 7 + 15 + 29);
  /* A change brings it back to the minimum. */
  assert_int_equal(stats_poll_done(&p, &PC, true, now), 29);
  assert_int_equal(p.interval_ms, MIN);
  assert_int_equal(p.next_at, now + MIN);
  /* An event hurries a slow guild. */
  stats_poll_done(&p, &PC, false, now);
  stats_poll_done(&p, &PC, false, now);
  assert_int_equal(p.interval_ms, 4 * MIN);
  stats_poll_hurry(&p, &PC, now + 1000);
  assert_int_equal(p.next_at, now + 1000 + MIN);
  assert_int_equal(p.interval_ms, MIN);
}

static void test_poll_spread(void **state) {
  /* 1,000 guilds arriving at once are spread over the first minute:
   * every tenth of it gets between 5 % and 15 % of them. */
  int buckets[10] = {0};
  for (uint64_t i = 0; i < 1000; i++) {
    stats_poll_t p;
    /* Snowflakes of guilds created close together. */
    uint64_t id = ((1700000000000ull - 1420070400000ull + i * 977) << 22) | (i & 31);
    stats_poll_start(&p, &PC, id, T0);
    assert_true(p.next_at < T0 + MIN);
    buckets[(p.next_at - T0) * 10 / MIN]++;
  }
  for (int b = 0; b < 10; b++)
    assert_true(buckets[b] >= 50 && buckets[b] <= 150);
}

/* ---- templates ------------------------------------------------------------ */

static void test_templates(void **state) {
  char err[200], out[STATS_NAME_MAX * 4 + 1];
  stats_values_t v = {.members = 1234,
                      .online = 56,
                      .bans = -1,
                      .guilds = 3,
                      .uptime_ms = 3 * 86400000ull + 4 * 3600000ull + 5000};
  assert_int_equal(stats_template_check("Members: {members}", err, sizeof err), 0);
  assert_int_equal(stats_template_render("Members: {members}", &v, out, sizeof out), 0);
  assert_string_equal(out, "Members: 1,234");
  assert_int_equal(stats_template_render("{online} online · {bans} bans", &v, out, sizeof out), 0);
  assert_string_equal(out, "56 online · ? bans");
  assert_int_equal(stats_template_render("up {uptime} in {guilds}", &v, out, sizeof out), 0);
  assert_string_equal(out, "up 3d 4h in 3");
  v.members = 1234567890;
  assert_int_equal(stats_template_render("{members}", &v, out, sizeof out), 0);
  assert_string_equal(out, "1,234,567,890");
  /* Refusals, each with a reason. */
  assert_int_equal(stats_template_check("Members: {member}", err, sizeof err), SOUK_EINVAL);
  assert_non_null(strstr(err, "{member}"));
  assert_int_equal(stats_template_check("Members: {members", err, sizeof err), SOUK_EINVAL);
  assert_int_equal(stats_template_check("Members} {members}", err, sizeof err), SOUK_EINVAL);
  assert_int_equal(stats_template_check("", err, sizeof err), SOUK_EINVAL);
  char longt[120];
  memset(longt, 'x', 101);
  longt[101] = '\0';
  assert_int_equal(stats_template_check(longt, err, sizeof err), SOUK_EINVAL);
  longt[100] = '\0';
  assert_int_equal(stats_template_check(longt, err, sizeof err), 0);
  /* Rendering longer than 100 characters is cut on a character boundary. */
  char wide[400] = "";
  for (int i = 0; i < 95; i++)
    strcat(wide, "\xc3\xa9"); /* é, two bytes */
  strcat(wide, "{members}");
  assert_int_equal(stats_template_render(wide, &v, out, sizeof out), 0);
  assert_int_equal(u8len(out), 100);
  assert_int_equal(strlen(out), 95 * 2 + 5);
  assert_int_equal(stats_template_render("   ", &v, out, sizeof out), SOUK_EINVAL);
  stats_fmt_uptime(5000, out, sizeof out);
  assert_string_equal(out, "5s");
  stats_fmt_uptime(12 * 60000 + 5000, out, sizeof out);
  assert_string_equal(out, "12m");
  stats_fmt_uptime(5 * 3600000 + 12 * 60000, out, sizeof out);
  assert_string_equal(out, "5h 12m");
  stats_fmt_count(-1234, out, sizeof out);
  assert_string_equal(out, "-1,234");
  stats_fmt_count(0, out, sizeof out);
  assert_string_equal(out, "0");
  stats_fmt_count(999, out, sizeof out);
  assert_string_equal(out, "999");
}

/* ---- the daily summary ------------------------------------------------------ */

static souk_tz_t *zone(const char *name) {
  souk_tz_t *tz = NULL;
  if (souk_tz_load(name, &tz)) fail_msg("cannot load %s", name);
  return tz;
}

static uint64_t at(const souk_tz_t *tz, int y, int m, int d, int h, int mi) {
  return (uint64_t)souk_tz_instant(tz, y, m, d, h, mi) * 1000;
}

static void test_daily_schedule(void **state) {
  souk_tz_t *tz = zone("Europe/Berlin");
  int64_t mar30 = souk_days_from_civil(2024, 3, 30), mar31 = mar30 + 1;
  /* Before 09:00 local: not yet; from 09:00: today's. */
  assert_int_equal(stats_daily_due(tz, 9, mar30, at(tz, 2024, 3, 31, 8, 59)), -1);
  assert_int_equal(stats_daily_next(tz, 9, mar30, at(tz, 2024, 3, 31, 8, 59)),
                   at(tz, 2024, 3, 31, 9, 0));
  assert_int_equal(stats_daily_due(tz, 9, mar30, at(tz, 2024, 3, 31, 9, 0)), mar31);
  assert_int_equal(stats_daily_next(tz, 9, mar30, at(tz, 2024, 3, 31, 9, 0)),
                   at(tz, 2024, 3, 31, 9, 0));
  /* Sent: not again that day (a restart reads last_day back), and the
   * next is 09:00 tomorrow, now CEST: 23 hours later in UTC terms. */
  assert_int_equal(stats_daily_due(tz, 9, mar31, at(tz, 2024, 3, 31, 23, 59)), -1);
  uint64_t next = stats_daily_next(tz, 9, mar31, at(tz, 2024, 3, 31, 9, 1));
  assert_int_equal(next, at(tz, 2024, 4, 1, 9, 0));
  /* A restart after the hour, same day, summary not yet sent: due now. */
  assert_int_equal(stats_daily_due(tz, 9, mar30, at(tz, 2024, 3, 31, 17, 0)), mar31);
  /* Down all of March 31: on April 1 before 09:00 March 31 is not sent late. */
  assert_int_equal(stats_daily_due(tz, 9, mar30, at(tz, 2024, 4, 1, 8, 0)), -1);
  assert_int_equal(stats_daily_next(tz, 9, mar30, at(tz, 2024, 4, 1, 8, 0)),
                   at(tz, 2024, 4, 1, 9, 0));
  /* Hour 2 on the spring-forward day never happens: it runs at 03:00
   * CEST (01:00 UTC), once. */
  assert_int_equal(stats_daily_due(tz, 2, mar30, 1711846800000ull - 1), -1);
  assert_int_equal(stats_daily_due(tz, 2, mar30, 1711846800000ull), mar31);
  assert_int_equal(stats_daily_next(tz, 2, mar30, 1711846800000ull - 60000), 1711846800000ull);
  /* Hour 2 on the fall-back day happens twice: the first one, once. */
  int64_t oct26 = souk_days_from_civil(2024, 10, 26), oct27 = oct26 + 1;
  assert_int_equal(stats_daily_due(tz, 2, oct26, 1729987200000ull - 1), -1); /* 01:59:59 CEST */
  assert_int_equal(stats_daily_due(tz, 2, oct26, 1729987200000ull), oct27);
  assert_int_equal(stats_daily_due(tz, 2, oct27, 1729987200000ull + 3600000), -1);
  assert_int_equal(stats_daily_next(tz, 2, oct27, 1729987200000ull + 3600000),
                   at(tz, 2024, 10, 28, 2, 0));
  souk_tz_free(tz);
  /* Across the date line, and midnight. */
  tz = zone("Pacific/Auckland");
  int64_t d = souk_days_from_civil(2024, 6, 30);
  uint64_t midnight = at(tz, 2024, 7, 1, 0, 0);
  assert_int_equal(stats_daily_due(tz, 0, d, midnight - 1), -1);
  assert_int_equal(stats_daily_due(tz, 0, d, midnight), d + 1);
  assert_int_equal(midnight, 1719748800000ull); /* 2024-06-30 12:00 UTC */
  souk_tz_free(tz);
}

/* ---- the heartbeat ---------------------------------------------------------- */

static void test_heartbeat_text(void **state) {
  char out[2100];
  stats_heartbeat_t h = {.uptime_ms = 3600000 * 5 + 60000 * 12,
                         .latency_ms = 42,
                         .rss_bytes = 40 * 1024 * 1024,
                         .health = "WARNING",
                         .errors = "",
                         .now_unix_ms = 1700000000123ull,
                         .guilds = 3,
                         .commands = 77};
  stats_heartbeat_text(&h, out, sizeof out);
  assert_non_null(strstr(out, "status: **WARNING**"));
  assert_non_null(strstr(out, "uptime: 5h 12m"));
  assert_non_null(strstr(out, "gateway latency: 42 ms"));
  assert_non_null(strstr(out, "memory (RSS): 40 MB"));
  assert_non_null(strstr(out, "<t:1700000000:R>"));
  assert_non_null(strstr(out, "last errors: none"));
  h.latency_ms = -1;
  char big[3000];
  memset(big, 'e', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  h.errors = big;
  stats_heartbeat_text(&h, out, sizeof out);
  assert_non_null(strstr(out, "not measured yet"));
  assert_true(strlen(out) < 2000);
  assert_non_null(strstr(out, "last errors: \neee"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rename_window),   cmocka_unit_test(test_rename_persisted_form),
      cmocka_unit_test(test_rename_property), cmocka_unit_test(test_poll_adapts),
      cmocka_unit_test(test_poll_spread),     cmocka_unit_test(test_templates),
      cmocka_unit_test(test_daily_schedule),  cmocka_unit_test(test_heartbeat_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
