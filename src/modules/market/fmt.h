/* The market's times and ages as people read them, in replies and on the
 * dashboard alike. */
#ifndef MARKET_FMT_H
#define MARKET_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** How an age reads. */
typedef enum market_age_style {
  /** "42 s", "5 min", "3 h 20 min", "2 d 3 h": how old a price is. */
  MARKET_AGE_PLAIN,
  /** "just now" (under 5 s), "42 s ago", "5 min ago", "3 h 20 min ago",
   * "2 d ago": when something happened, on the dashboard. */
  MARKET_AGE_AGO,
} market_age_style_t;

/** Write the age ms (a negative one reads as 0) into buf (n bytes) in
 * style; returns buf. */
char *market_fmt_age(int64_t ms, market_age_style_t style, char *buf, size_t n);

/** Write a Unix ms time as "2026-11-22 17:45 UTC" into buf (n bytes), or
 * "unknown" for ms <= 0; returns buf. */
char *market_fmt_utc(int64_t ms, char *buf, size_t n);

#endif
