/* IANA time zones from the zoneinfo files: DST edges both ways and in
 * both hemispheres, local times that happen twice or never, the footer's
 * POSIX rule past the last transition, odd offsets, names that must be
 * refused, and a sweep of fifty years compared with the C library's own
 * localtime_r() (this test is single-threaded, so setting TZ here is
 * safe; souk itself never does). */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */
#include "../../../src/core/tz.c"

#include <time.h>

static souk_tz_t *load(const char *name) {
  souk_tz_t *tz = NULL;
  int rc = souk_tz_load(name, &tz);
  if (rc) fail_msg("cannot load %s: %d", name, rc);
  return tz;
}

/* Expected instants were computed with Python's zoneinfo. */
static void test_berlin_edges(void **state) {
  souk_tz_t *tz = load("Europe/Berlin");
  assert_string_equal(souk_tz_name(tz), "Europe/Berlin");
  /* Spring forward 2024-03-31 at 01:00 UTC (02:00 CET -> 03:00 CEST). */
  assert_int_equal(souk_tz_offset(tz, 1711846800 - 1), 3600);
  assert_int_equal(souk_tz_offset(tz, 1711846800), 7200);
  assert_int_equal(souk_tz_instant(tz, 2024, 3, 31, 1, 30), 1711845000);
  assert_int_equal(souk_tz_instant(tz, 2024, 3, 31, 3, 0), 1711846800);
  /* 02:30 never happens that day: the gap's end, 03:00 CEST. */
  assert_int_equal(souk_tz_instant(tz, 2024, 3, 31, 2, 30), 1711846800);
  assert_int_equal(souk_tz_instant(tz, 2024, 3, 31, 2, 0), 1711846800);
  /* Fall back 2024-10-27: 02:30 happens twice; the first is CEST. */
  assert_int_equal(souk_tz_instant(tz, 2024, 10, 27, 2, 30), 1729989000);
  assert_int_equal(1729992600 - 1729989000, 3600);
  souk_civil_t c;
  souk_tz_local(tz, 1729989000, &c);
  assert_int_equal(c.hour, 2);
  assert_int_equal(c.minute, 30);
  assert_true(c.dst);
  assert_int_equal(c.utc_offset_s, 7200);
  souk_tz_local(tz, 1729992600, &c);
  assert_int_equal(c.hour, 2);
  assert_false(c.dst);
  assert_int_equal(c.weekday, 0); /* a Sunday */
  /* Past the last transition in the file: the footer's rule. */
  assert_int_equal(souk_tz_instant(tz, 2100, 7, 1, 12, 0), 4118119200LL);
  assert_int_equal(souk_tz_instant(tz, 2100, 1, 1, 12, 0), 4102484400LL);
  souk_tz_free(tz);
}

static void test_new_york_and_sydney(void **state) {
  souk_tz_t *ny = load("America/New_York");
  assert_int_equal(souk_tz_instant(ny, 2024, 3, 10, 3, 0), 1710054000);
  assert_int_equal(souk_tz_instant(ny, 2024, 3, 10, 2, 15), 1710054000); /* in the gap */
  assert_int_equal(souk_tz_instant(ny, 2024, 11, 3, 1, 30), 1730611800); /* the first 01:30 */
  assert_int_equal(souk_tz_offset(ny, 1730615400), -5 * 3600);
  souk_tz_free(ny);
  /* Southern hemisphere: DST from October to April, across the new year. */
  souk_tz_t *syd = load("Australia/Sydney");
  assert_int_equal(souk_tz_instant(syd, 2024, 10, 6, 3, 0), 1728144000);
  assert_int_equal(souk_tz_instant(syd, 2024, 10, 6, 2, 30), 1728144000); /* gap */
  assert_int_equal(souk_tz_instant(syd, 2024, 4, 7, 2, 30), 1712417400);  /* twice: first */
  assert_int_equal(souk_tz_offset(syd, 1704067200), 11 * 3600);           /* 2024-01-01: DST */
  assert_int_equal(souk_tz_offset(syd, 1719792000), 10 * 3600);           /* 2024-07-01 */
  souk_tz_free(syd);
  souk_tz_t *in = load("Asia/Kolkata");
  assert_int_equal(souk_tz_instant(in, 2024, 6, 1, 9, 0), 1717212600);
  assert_int_equal(souk_tz_offset(in, 1717212600), 19800);
  souk_tz_free(in);
}

static void test_posix_rules(void **state) {
  posix_rule_t r;
  assert_true(parse_rule("CET-1CEST,M3.5.0,M10.5.0/3", &r));
  assert_int_equal(r.std_off, 3600);
  assert_int_equal(r.dst_off, 7200);
  assert_int_equal(r.end.time, 3 * 3600);
  assert_true(parse_rule("<+0330>-3:30", &r));
  assert_false(r.has_dst);
  assert_int_equal(r.std_off, 12600);
  assert_true(parse_rule("<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", &r)); /* negative times */
  assert_int_equal(r.start.time, -7200);
  assert_int_equal(r.std_off, -10800);
  assert_int_equal(r.dst_off, -7200);
  assert_true(parse_rule("EST5EDT,M3.2.0,M11.1.0", &r));
  assert_int_equal(r.start.time, 7200);
  assert_true(parse_rule("XXX3YYY,J60/2,J300/2", &r));
  /* J60 is March 1 in every year, February 29 is never counted. */
  assert_int_equal(rule_day(&r.start, 2024), souk_days_from_civil(2024, 3, 1));
  assert_int_equal(rule_day(&r.start, 2023), souk_days_from_civil(2023, 3, 1));
  assert_true(parse_rule("XXX3YYY,59,300", &r)); /* zero-based: day 59 of a leap year */
  assert_int_equal(rule_day(&r.start, 2024), souk_days_from_civil(2024, 2, 29));
  /* M10.5.0 is the last Sunday even in a month with four. */
  assert_true(parse_rule("CET-1CEST,M3.5.0,M10.5.0/3", &r));
  assert_int_equal(rule_day(&r.end, 2024), souk_days_from_civil(2024, 10, 27));
  assert_int_equal(rule_day(&r.start, 2024), souk_days_from_civil(2024, 3, 31));
  assert_false(parse_rule("", &r));
  assert_false(parse_rule("AB-1", &r)); /* names have 3+ letters */
  assert_false(parse_rule("CET-1CEST,M13.5.0,M10.5.0", &r));
  assert_false(parse_rule("CET-1CEST,M3.5.0", &r));
  assert_false(parse_rule("CET-1CEST,M3.5.0,M10.5.0junk", &r));
}

static void test_names(void **state) {
  assert_true(souk_tz_name_ok("Europe/Berlin"));
  assert_true(souk_tz_name_ok("America/Argentina/Buenos_Aires"));
  assert_true(souk_tz_name_ok("Etc/GMT+5"));
  assert_true(souk_tz_name_ok("UTC"));
  assert_false(souk_tz_name_ok(""));
  assert_false(souk_tz_name_ok(NULL));
  assert_false(souk_tz_name_ok("/etc/passwd"));
  assert_false(souk_tz_name_ok("../etc/passwd"));
  assert_false(souk_tz_name_ok("Europe/../../etc/passwd"));
  assert_false(souk_tz_name_ok("Europe//Berlin"));
  assert_false(souk_tz_name_ok("Europe/"));
  assert_false(souk_tz_name_ok("Europe/.hidden"));
  assert_false(souk_tz_name_ok("Europe/Ber lin"));
  souk_tz_t *tz = NULL;
  assert_int_equal(souk_tz_load("../etc/passwd", &tz), SOUK_EINVAL);
  assert_int_equal(souk_tz_load("Mars/Olympus_Mons", &tz), SOUK_ENOTFOUND);
  assert_null(tz);
  /* A file that is not TZif. */
  setenv("TZDIR", SOUK_SOURCE_DIR, 1);
  assert_int_equal(souk_tz_load("README.md", &tz), SOUK_EPARSE);
  /* UTC works without tzdata. */
  setenv("TZDIR", "/nonexistent-zoneinfo", 1);
  assert_int_equal(souk_tz_load("UTC", &tz), 0);
  assert_int_equal(souk_tz_offset(tz, 1700000000), 0);
  assert_int_equal(souk_tz_instant(tz, 2024, 2, 29, 23, 59), 1709251140);
  souk_tz_free(tz);
  assert_int_equal(souk_tz_load("Europe/Berlin", &tz), SOUK_ENOTFOUND);
  unsetenv("TZDIR");
}

static void test_civil_days(void **state) {
  assert_int_equal(souk_days_from_civil(1970, 1, 1), 0);
  assert_int_equal(souk_days_from_civil(2000, 3, 1), 11017);
  assert_int_equal(souk_days_from_civil(1969, 12, 31), -1);
  for (int64_t d = -800000; d < 800000; d += 997) {
    int y, m, dd;
    souk_civil_from_days(d, &y, &m, &dd);
    assert_int_equal(souk_days_from_civil(y, m, dd), d);
  }
}

/* Every zone, every 7 h 13 min from 1975 to 2045, against glibc. */
static void test_sweep_against_libc(void **state) {
  static const char *const zones[] = {
      "Europe/Berlin",     "America/New_York",  "Australia/Sydney", "Australia/Lord_Howe",
      "Pacific/Chatham",   "America/Sao_Paulo", "Asia/Tehran",      "America/Nuuk",
      "Africa/Casablanca", "Europe/Dublin",     "Pacific/Apia",     "America/St_Johns"};
  for (size_t z = 0; z < sizeof zones / sizeof *zones; z++) {
    souk_tz_t *tz = load(zones[z]);
    setenv("TZ", zones[z], 1);
    tzset();
    size_t checked = 0;
    for (int64_t t = 157766400; t < 2397081600LL; t += 7 * 3600 + 13 * 60) {
      time_t tt = (time_t)t;
      struct tm tm;
      localtime_r(&tt, &tm);
      souk_civil_t c;
      souk_tz_local(tz, t, &c);
      if (c.utc_offset_s != tm.tm_gmtoff || c.hour != tm.tm_hour || c.day != tm.tm_mday ||
          c.dst != (tm.tm_isdst > 0))
        fail_msg("%s at %lld: souk %d (dst %d) %02d:%02d, libc %ld (dst %d) %02d:%02d", zones[z],
                 (long long)t, c.utc_offset_s, c.dst, c.hour, c.minute, tm.tm_gmtoff, tm.tm_isdst,
                 tm.tm_hour, tm.tm_min);
      /* And back: a local time that exists once maps to this instant. */
      if (c.minute == tm.tm_min && t % 5 == 0) {
        int64_t back = souk_tz_instant(tz, c.year, c.month, c.day, c.hour, c.minute);
        int64_t want = t - c.second;
        if (back != want) {
          /* Allowed only where that local time happens twice: back is
           * then the earlier one. */
          souk_civil_t b;
          souk_tz_local(tz, back, &b);
          assert_true(back < want);
          assert_int_equal(b.hour, c.hour);
          assert_int_equal(b.minute, c.minute);
        }
      }
      checked++;
    }
    assert_true(checked > 80000);
    souk_tz_free(tz);
  }
  unsetenv("TZ");
  tzset();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_berlin_edges), cmocka_unit_test(test_new_york_and_sydney),
      cmocka_unit_test(test_posix_rules),  cmocka_unit_test(test_names),
      cmocka_unit_test(test_civil_days),   cmocka_unit_test(test_sweep_against_libc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
