/* IANA time zones, read from the system's zoneinfo files (TZif, RFC 8536)
 * without touching the process's TZ: no setenv("TZ")/tzset() races with
 * other threads, and any number of zones at once (one per guild).
 *
 * The directory is $TZDIR when set, else /usr/share/zoneinfo (Debian's
 * tzdata package).  Times past a zone's last transition follow the POSIX TZ
 * rule in the file's footer, so far-future dates are right in "slim" files
 * too.  "UTC" (and "Etc/UTC") always works, even without tzdata.
 *
 * Threads: a loaded zone is immutable; any thread may read it. */
#ifndef SOUK_TZ_H
#define SOUK_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A loaded zone (opaque, immutable). */
typedef struct souk_tz souk_tz_t;

/** Longest zone name accepted ("America/Argentina/ComodRivadavia" is 32). */
#define SOUK_TZ_NAME_MAX 64

/** True when name has the shape of an IANA zone name: 1..64 bytes of
 * letters, digits, '_', '-', '+' and '/', no empty or dot component (so it
 * cannot leave the zoneinfo directory).  Says nothing about existence. */
bool souk_tz_name_ok(const char *name);

/** Load zone name.  Returns 0 with *out owned by the caller (free with
 * souk_tz_free), SOUK_EINVAL for a bad name, SOUK_ENOTFOUND when no such
 * zone file exists, or SOUK_EPARSE for a file that is not TZif. */
int souk_tz_load(const char *name, souk_tz_t **out);
/** Free a zone (NULL is fine). */
void souk_tz_free(souk_tz_t *tz);
/** The name it was loaded with. */
const char *souk_tz_name(const souk_tz_t *tz);

/** A local date and time. */
typedef struct souk_civil {
  int year, month, day;     /* month 1..12, day 1..31 */
  int hour, minute, second; /* 0..23, 0..59, 0..59 */
  int weekday;              /* 0 = Sunday */
  int32_t utc_offset_s;     /* seconds east of UTC in force */
  bool dst;
} souk_civil_t;

/** Seconds east of UTC in force at the instant unix_s. */
int32_t souk_tz_offset(const souk_tz_t *tz, int64_t unix_s);
/** The local date and time of the instant unix_s. */
void souk_tz_local(const souk_tz_t *tz, int64_t unix_s, souk_civil_t *out);
/** The instant of local y-m-d h:mi:00.  A local time that happens twice
 * (clocks set back) resolves to the first; one that never happens (clocks
 * set forward over it) to the instant the gap ends, so a daily job set in
 * the gap runs once, right after it. */
int64_t souk_tz_instant(const souk_tz_t *tz, int year, int month, int day, int hour, int minute);

/** Days since 1970-01-01 of a proleptic Gregorian date (negative before). */
int64_t souk_days_from_civil(int year, int month, int day);
/** The date of a day number from souk_days_from_civil(). */
void souk_civil_from_days(int64_t days, int *year, int *month, int *day);

#endif
