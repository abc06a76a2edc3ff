/* The market's times and ages; see fmt.h. */
#include "fmt.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

char *market_fmt_age(int64_t ms, market_age_style_t style, char *buf, size_t n) {
  int64_t s = ms > 0 ? ms / 1000 : 0;
  bool ago = style == MARKET_AGE_AGO;
  if (ago && s < 5)
    snprintf(buf, n, "just now");
  else if (s < 60)
    snprintf(buf, n, "%" PRId64 " s%s", s, ago ? " ago" : "");
  else if (s < 3600)
    snprintf(buf, n, "%" PRId64 " min%s", s / 60, ago ? " ago" : "");
  else if (s < 86400)
    snprintf(buf, n, "%" PRId64 " h %" PRId64 " min%s", s / 3600, s / 60 % 60, ago ? " ago" : "");
  else if (ago)
    snprintf(buf, n, "%" PRId64 " d ago", s / 86400);
  else
    snprintf(buf, n, "%" PRId64 " d %" PRId64 " h", s / 86400, s / 3600 % 24);
  return buf;
}

char *market_fmt_utc(int64_t ms, char *buf, size_t n) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  if (ms <= 0 || !gmtime_r(&t, &tm))
    snprintf(buf, n, "unknown");
  else
    strftime(buf, n, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}
