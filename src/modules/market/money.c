/* The Market Sim's money arithmetic (see money.h for the rules).
 *
 * Every product is taken in 128 bits, where int64 * int64 cannot overflow,
 * and each result is checked against the int64 range before it is stored.
 * Divisions of non-negative values are explicit floor or ceiling. */
#include "money.h"

#include "souk/err.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

__extension__ typedef __int128 market_i128;

static bool fits64(market_i128 v) { return v >= INT64_MIN && v <= INT64_MAX; }

int market_gross_up(int64_t price_micro, int64_t shares, int64_t *cents) {
  if (price_micro <= 0 || shares < 0 || !cents) return SOUK_EINVAL;
  market_i128 p = (market_i128)price_micro * shares;
  market_i128 c = (p + MARKET_MICRO_PER_CENT - 1) / MARKET_MICRO_PER_CENT;
  if (!fits64(c)) return SOUK_ERANGE;
  *cents = (int64_t)c;
  return 0;
}

int market_gross_down(int64_t price_micro, int64_t shares, int64_t *cents) {
  if (price_micro <= 0 || shares < 0 || !cents) return SOUK_EINVAL;
  market_i128 c = (market_i128)price_micro * shares / MARKET_MICRO_PER_CENT;
  if (!fits64(c)) return SOUK_ERANGE;
  *cents = (int64_t)c;
  return 0;
}

int market_buy_cost(int64_t price_micro, int64_t shares, int64_t commission_cents,
                    int64_t *cost_cents) {
  if (commission_cents < 0 || !cost_cents) return SOUK_EINVAL;
  int64_t gross;
  int rc = market_gross_up(price_micro, shares, &gross);
  if (rc == 0) rc = market_add(gross, commission_cents, cost_cents);
  return rc;
}

int market_sell_proceeds(int64_t price_micro, int64_t shares, int64_t commission_cents,
                         int64_t *proceeds_cents) {
  if (commission_cents < 0 || !proceeds_cents) return SOUK_EINVAL;
  int64_t gross;
  int rc = market_gross_down(price_micro, shares, &gross);
  if (rc == 0) rc = market_sub(gross, commission_cents, proceeds_cents);
  return rc;
}

int market_shares_for_amount(int64_t price_micro, int64_t amount_cents, int64_t commission_cents,
                             int64_t *shares) {
  if (price_micro <= 0 || amount_cents < 0 || commission_cents < 0 || !shares) return SOUK_EINVAL;
  if (amount_cents <= commission_cents) {
    *shares = 0;
    return 0;
  }
  /* ceil(p * n / 10^4) <= A  <=>  p * n <= A * 10^4 (A an integer), so the
   * largest n is floor(A * 10^4 / p) with A the amount left after the
   * commission. */
  market_i128 n =
      (market_i128)(amount_cents - commission_cents) * MARKET_MICRO_PER_CENT / price_micro;
  if (!fits64(n)) return SOUK_ERANGE;
  *shares = (int64_t)n;
  return 0;
}

int market_shares_worth(int64_t price_micro, int64_t amount_cents, int64_t *shares) {
  if (price_micro <= 0 || amount_cents < 0 || !shares) return SOUK_EINVAL;
  market_i128 n = (market_i128)amount_cents * MARKET_MICRO_PER_CENT / price_micro;
  if (!fits64(n)) return SOUK_ERANGE;
  *shares = (int64_t)n;
  return 0;
}

int market_cost_removed(int64_t total_cost_cents, int64_t held, int64_t sold,
                        int64_t *removed_cents) {
  if (total_cost_cents < 0 || held <= 0 || sold <= 0 || sold > held || !removed_cents)
    return SOUK_EINVAL;
  if (sold == held) {
    *removed_cents = total_cost_cents;
    return 0;
  }
  /* sold < held, so the quotient is below total_cost_cents: it always fits. */
  *removed_cents = (int64_t)((market_i128)total_cost_cents * sold / held);
  return 0;
}

int64_t market_avg_cost_micro(int64_t cost_cents, int64_t shares) {
  if (shares <= 0 || cost_cents <= 0) return 0;
  market_i128 v = (market_i128)cost_cents * MARKET_MICRO_PER_CENT / shares;
  return fits64(v) ? (int64_t)v : INT64_MAX;
}

int market_add(int64_t a, int64_t b, int64_t *out) {
  int64_t r;
  if (!out || __builtin_add_overflow(a, b, &r)) return SOUK_ERANGE;
  *out = r;
  return 0;
}

int market_sub(int64_t a, int64_t b, int64_t *out) {
  int64_t r;
  if (!out || __builtin_sub_overflow(a, b, &r)) return SOUK_ERANGE;
  *out = r;
  return 0;
}

int market_roi_bp(int64_t value_cents, int64_t initial_cents, int64_t *bp) {
  if (initial_cents <= 0 || !bp) return SOUK_EINVAL;
  /* Round half away from zero on the magnitude: 8.597% is 860 bp, and
   * -8.595% is -860 bp, so a figure never reads smaller than it is. */
  market_i128 d = ((market_i128)value_cents - initial_cents) * 10000;
  market_i128 m = d < 0 ? -d : d;
  market_i128 q = m / initial_cents;
  if ((m % initial_cents) * 2 >= initial_cents) q++;
  market_i128 v = d < 0 ? -q : q;
  if (!fits64(v)) return SOUK_ERANGE;
  *bp = (int64_t)v;
  return 0;
}

/* ---- formatting ---- */

/* Append the decimal digits of v with a comma every three digits. */
static size_t fmt_grouped(uint64_t v, char *out) {
  char rev[32];
  size_t n = 0, k = 0;
  do {
    if (k && k % 3 == 0) rev[n++] = ',';
    rev[n++] = (char)('0' + v % 10);
    v /= 10;
    k++;
  } while (v);
  for (size_t i = 0; i < n; i++)
    out[i] = rev[n - 1 - i];
  out[n] = '\0';
  return n;
}

/* Copy s into buf (n > 0 bytes), truncating. */
static char *put(char *buf, size_t n, const char *s) {
  size_t len = strlen(s);
  if (len >= n) len = n - 1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  return buf;
}

/* Magnitude of a signed value without overflowing at INT64_MIN. */
static uint64_t magnitude(int64_t v) { return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v; }

char *market_fmt_cents(int64_t cents, char *buf, size_t n) {
  if (!buf || n == 0) return buf;
  uint64_t m = magnitude(cents);
  char whole[32], tmp[80];
  fmt_grouped(m / 100, whole);
  snprintf(tmp, sizeof tmp, "%s$%s.%02u", cents < 0 ? "-" : "", whole, (unsigned)(m % 100));
  return put(buf, n, tmp);
}

/* A micro-dollar magnitude m as "$1,234.5678": whole dollars grouped, then
 * the six decimals with trailing zeros trimmed down to keep (2..6). */
static char *fmt_micro(bool neg, uint64_t m, size_t keep, char *buf, size_t n) {
  char whole[32], frac[16], tmp[80];
  fmt_grouped(m / 1000000, whole);
  snprintf(frac, sizeof frac, "%06u", (unsigned)(m % 1000000));
  size_t len = 6;
  while (len > keep && frac[len - 1] == '0')
    len--;
  frac[len] = '\0';
  snprintf(tmp, sizeof tmp, "%s$%s.%s", neg ? "-" : "", whole, frac);
  return put(buf, n, tmp);
}

char *market_fmt_price(int64_t micro, char *buf, size_t n) {
  if (!buf || n == 0) return buf;
  uint64_t m = magnitude(micro);
  const uint64_t cent = (uint64_t)MARKET_MICRO_PER_CENT;
  /* From $1 up, to the cent, half away from zero: a display, not money
   * moving, so nobody's favour is at stake.  The sum cannot wrap, as m is
   * at most 2^63.  Below $1 every decimal counts. */
  if (m >= (uint64_t)MARKET_MICRO_PER_DOLLAR) m = (m + cent / 2) / cent * cent;
  return fmt_micro(micro < 0, m, 2, buf, n);
}

char *market_fmt_price_exact(int64_t micro, char *buf, size_t n) {
  if (!buf || n == 0) return buf;
  return fmt_micro(micro < 0, magnitude(micro), 2, buf, n);
}

char *market_fmt_bp(int64_t bp, char *buf, size_t n) {
  if (!buf || n == 0) return buf;
  uint64_t m = magnitude(bp);
  char whole[32], tmp[80];
  fmt_grouped(m / 100, whole);
  /* Zero has no sign: "-0.00%" or "+0.00%" would claim a change that the
   * figure does not show. */
  snprintf(tmp, sizeof tmp, "%s%s.%02u%%",
           bp < 0   ? "-"
           : bp > 0 ? "+"
                    : "",
           whole, (unsigned)(m % 100));
  return put(buf, n, tmp);
}

int market_parse_cents(const char *s, int64_t *cents) {
  if (!s || !cents) return SOUK_EINVAL;
  const char *p = s;
  if (*p == '$') p++;
  int64_t whole = 0;
  int digits = 0, group = 0;
  bool commas = false, overflow = false;
  for (; *p && *p != '.'; p++) {
    if (*p == ',') {
      /* A comma needs 1-3 digits before the first one and exactly three
       * between later ones. */
      if (digits == 0 || group == 0 || group > 3 || (commas && group != 3)) return SOUK_EPARSE;
      commas = true;
      group = 0;
      continue;
    }
    if (*p < '0' || *p > '9') return SOUK_EPARSE;
    if (__builtin_mul_overflow(whole, 10, &whole) ||
        __builtin_add_overflow(whole, *p - '0', &whole))
      overflow = true;
    digits++;
    group++;
  }
  if (commas && group != 3) return SOUK_EPARSE;
  int64_t frac = 0;
  int fdigits = 0;
  if (*p == '.') {
    for (p++; *p; p++) {
      if (*p < '0' || *p > '9' || fdigits == 2) return SOUK_EPARSE;
      frac = frac * 10 + (*p - '0');
      fdigits++;
    }
    if (fdigits == 0 && digits == 0) return SOUK_EPARSE;
  } else if (digits == 0) {
    return SOUK_EPARSE;
  }
  if (fdigits == 1) frac *= 10;
  int64_t v;
  if (overflow || __builtin_mul_overflow(whole, 100, &v) || __builtin_add_overflow(v, frac, &v))
    return SOUK_ERANGE;
  *cents = v;
  return 0;
}
