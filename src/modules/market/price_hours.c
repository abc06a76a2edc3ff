/* US market hours computed from rules, with no time zone database: the
 * bot must answer "is the market open?" the same way on a minimal VPS
 * image without tzdata as on a desktop, and the NYSE calendar is a small
 * set of rules (NYSE Rule 7.2, holiday list) plus Easter. */
#include "price.h"

/* Howard Hinnant's days_from_civil / civil_from_days (public domain). */
int64_t market_days_from_civil(int y, int m, int d) {
  int64_t yy = (int64_t)y - (m <= 2);
  int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
  int64_t yoe = yy - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void market_civil_from_days(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* 0 = Sunday ... 6 = Saturday. */
static int weekday(int64_t days) {
  int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
  return (int)(w < 0 ? w + 7 : w);
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Day of month of the n-th (1-based) weekday wd in y-m. */
static int nth_weekday(int y, int m, int wd, int n) {
  int first = weekday(market_days_from_civil(y, m, 1));
  return 1 + (wd - first + 7) % 7 + 7 * (n - 1);
}

/* Day of month of the last weekday wd in y-m. */
static int last_weekday(int y, int m, int wd) {
  int64_t next = market_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1);
  int64_t last = next - 1;
  int back = (weekday(last) - wd + 7) % 7;
  int ly, lm, ld;
  market_civil_from_days(last - back, &ly, &lm, &ld);
  return ld;
}

/* Gregorian Easter Sunday (the anonymous "Meeus/Jones/Butcher" computus). */
static void easter(int y, int *m, int *d) {
  int a = y % 19, b = y / 100, c = y % 100, dd = b / 4, e = b % 4;
  int f = (b + 8) / 25, g = (b - f + 1) / 3;
  int h = (19 * a + b - dd - g + 15) % 30;
  int i = c / 4, k = c % 4;
  int l = (32 + 2 * e + 2 * i - h - k) % 7;
  int mm = (a + 11 * h + 22 * l) / 451;
  *m = (h + l - 7 * mm + 114) / 31;
  *d = (h + l - 7 * mm + 114) % 31 + 1;
}

/* Saturday -> Friday before, Sunday -> Monday after. */
static int64_t observed(int y, int m, int d) {
  int64_t days = market_days_from_civil(y, m, d);
  int w = weekday(days);
  return w == 6 ? days - 1 : w == 0 ? days + 1 : days;
}

bool market_nyse_holiday(int y, int m, int d) {
  int64_t day = market_days_from_civil(y, m, d);
  /* New Year's Day: Sunday -> Monday; Saturday is not moved to the Friday
   * before (that Friday is the last trading day of the year). */
  int64_t ny = market_days_from_civil(y, 1, 1);
  if (weekday(ny) == 0) ny++;
  if (weekday(ny) != 6 && day == ny) return true;
  if (y >= 1998 && m == 1 && d == nth_weekday(y, 1, 1, 3)) return true; /* MLK Day */
  if (m == 2 && d == nth_weekday(y, 2, 1, 3)) return true;              /* Washington's Birthday */
  int em, ed;
  easter(y, &em, &ed);
  if (day == market_days_from_civil(y, em, ed) - 2) return true; /* Good Friday */
  if (m == 5 && d == last_weekday(y, 5, 1)) return true;         /* Memorial Day */
  if (y >= 2022 && day == observed(y, 6, 19)) return true;       /* Juneteenth */
  if (day == observed(y, 7, 4)) return true;                     /* Independence Day */
  if (m == 9 && d == nth_weekday(y, 9, 1, 1)) return true;       /* Labor Day */
  if (m == 11 && d == nth_weekday(y, 11, 4, 4)) return true;     /* Thanksgiving */
  if (day == observed(y, 12, 25)) return true;                   /* Christmas */
  return false;
}

int market_ny_offset_min(int64_t t_ms) {
  int64_t days = floor_div(t_ms, 86400000);
  int y, m, d;
  market_civil_from_days(days, &y, &m, &d);
  int64_t start, end;
  /* The switch happens at 02:00 local: 07:00 UTC in spring (from EST),
   * 06:00 UTC in autumn (from EDT). */
  if (y >= 2007) {
    start = market_days_from_civil(y, 3, nth_weekday(y, 3, 0, 2));
    end = market_days_from_civil(y, 11, nth_weekday(y, 11, 0, 1));
  } else {
    start = market_days_from_civil(y, 4, nth_weekday(y, 4, 0, 1));
    end = market_days_from_civil(y, 10, last_weekday(y, 10, 0));
  }
  int64_t s_ms = start * 86400000 + 7 * 3600000, e_ms = end * 86400000 + 6 * 3600000;
  return (t_ms >= s_ms && t_ms < e_ms) ? -240 : -300;
}

int market_nyse_close_min(int y, int m, int d) {
  int64_t day = market_days_from_civil(y, m, d);
  int w = weekday(day);
  bool trading = w >= 1 && w <= 5 && !market_nyse_holiday(y, m, d);
  if (trading && ((m == 7 && d == 3) || (m == 12 && d == 24))) return 13 * 60;
  if (m == 11 && d == nth_weekday(y, 11, 4, 4) + 1) return 13 * 60;
  return 16 * 60;
}

static bool trading_day(int64_t days) {
  int w = weekday(days);
  if (w == 0 || w == 6) return false;
  int y, m, d;
  market_civil_from_days(days, &y, &m, &d);
  return !market_nyse_holiday(y, m, d);
}

bool market_nyse_open(int64_t t_ms) {
  int64_t local = t_ms + (int64_t)market_ny_offset_min(t_ms) * 60000;
  int64_t days = floor_div(local, 86400000);
  if (!trading_day(days)) return false;
  int64_t min = (local - days * 86400000) / 60000;
  int y, m, d;
  market_civil_from_days(days, &y, &m, &d);
  return min >= 9 * 60 + 30 && min < market_nyse_close_min(y, m, d);
}

int64_t market_nyse_next_open(int64_t t_ms) {
  int64_t local = t_ms + (int64_t)market_ny_offset_min(t_ms) * 60000;
  int64_t days = floor_div(local, 86400000);
  for (int k = 0; k < 15; k++, days++) {
    if (!trading_day(days)) continue;
    /* 09:30 New York: the offset at 14:30 UTC that day is the one in force
     * at 09:30 local (the switch happens at 02:00 local). */
    int64_t guess = days * 86400000 + (9 * 60 + 30) * 60000;
    int64_t open = guess - (int64_t)market_ny_offset_min(guess + 5 * 3600000) * 60000;
    if (open > t_ms) return open;
  }
  return 0; /* not reached: the NYSE is never closed for two weeks by rule */
}
