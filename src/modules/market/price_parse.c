/* Decimal prices and the price providers' response parsers.
 *
 * Prices are read from the text of the JSON number (souk_json_raw), so a
 * price like 161.2958 is exactly 161295800 micro-dollars on every machine;
 * a double would already have lost that before any rounding rule could
 * apply.  The parsers are pure so each fixture, error shape included, is a
 * plain unit test. */
#include "price.h"
#include "souk/err.h"
#include "souk/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- decimals ---------------------------------------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

int market_price_parse(const char *s, size_t n, int64_t *out_micro) {
  /* Check JSON's number grammar (without a sign) here, so strings such as
   * "1." or ".5" or "+1" that a lenient decimal reader would take are
   * refused; the exact arithmetic is souk_decimal_parse's, whose half away
   * from zero is half up for the non-negative numbers that get this far. */
  size_t i = 0;
  if (!s || n == 0) return SOUK_EINVAL;
  if (s[0] == '0') {
    i = 1;
  } else if (s[0] >= '1' && s[0] <= '9') {
    while (i < n && is_digit(s[i]))
      i++;
  } else {
    return SOUK_EINVAL; /* '-', '+', '.', 'N'aN, 'I'nfinity, ... */
  }
  if (i < n && s[i] == '.') {
    i++;
    size_t f = i;
    while (i < n && is_digit(s[i]))
      i++;
    if (i == f) return SOUK_EINVAL;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t e = i;
    while (i < n && is_digit(s[i]))
      i++;
    if (i == e) return SOUK_EINVAL;
  }
  if (i != n) return SOUK_EINVAL;
  int64_t v;
  int rc = souk_decimal_parse(s, n, 6, &v);
  if (rc != 0) return rc == SOUK_ERANGE ? SOUK_ERANGE : SOUK_EINVAL;
  if (v < 0) return SOUK_EINVAL;
  *out_micro = v;
  return 0;
}

int market_price_format(int64_t micro, char *out, size_t cap) {
  char tmp[40];
  uint64_t a = micro < 0 ? (uint64_t)0 - (uint64_t)micro : (uint64_t)micro;
  uint64_t whole = a / 1000000u, frac = a % 1000000u;
  int n = snprintf(tmp, sizeof tmp, "%s%llu.%06llu", micro < 0 ? "-" : "",
                   (unsigned long long)whole, (unsigned long long)frac);
  /* Trim trailing zeros, keeping two decimals as prices are usually shown. */
  while (n > 0 && tmp[n - 1] == '0' && tmp[n - 3] != '.')
    n--;
  tmp[n] = '\0';
  if ((size_t)n + 1 > cap) return SOUK_ETOOBIG;
  memcpy(out, tmp, (size_t)n + 1);
  return n;
}

bool market_symbol_valid(const char *s) {
  if (!s || !(s[0] >= 'A' && s[0] <= 'Z')) return false;
  size_t n = 0;
  for (; s[n]; n++) {
    char c = s[n];
    if (!((c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' || c == '-')) return false;
    if (n >= MARKET_SYMBOL_MAX) return false;
  }
  return true;
}

static int num(const char *s, size_t n, size_t *i, size_t width, int *out) {
  int v = 0;
  for (size_t k = 0; k < width; k++, (*i)++) {
    if (*i >= n || !is_digit(s[*i])) return -1;
    v = v * 10 + (s[*i] - '0');
  }
  *out = v;
  return 0;
}

static bool expect(const char *s, size_t n, size_t *i, char c) {
  if (*i < n && (s[*i] == c || (c == 'T' && s[*i] == 't'))) {
    (*i)++;
    return true;
  }
  return false;
}

int market_rfc3339_ms(const char *s, size_t n, int64_t *out_ms) {
  size_t i = 0;
  int y, mo, d, h, mi, sec, ms = 0;
  if (num(s, n, &i, 4, &y) || !expect(s, n, &i, '-') || num(s, n, &i, 2, &mo) ||
      !expect(s, n, &i, '-') || num(s, n, &i, 2, &d) || !expect(s, n, &i, 'T') ||
      num(s, n, &i, 2, &h) || !expect(s, n, &i, ':') || num(s, n, &i, 2, &mi) ||
      !expect(s, n, &i, ':') || num(s, n, &i, 2, &sec))
    return SOUK_EINVAL;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return SOUK_EINVAL;
  if (i < n && s[i] == '.') {
    i++;
    size_t f = i;
    int digits = 0;
    for (; i < n && is_digit(s[i]); i++, digits++)
      if (digits < 3) ms = ms * 10 + (s[i] - '0');
    if (i == f) return SOUK_EINVAL;
    for (; digits < 3; digits++)
      ms *= 10;
  }
  int off_min = 0;
  if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i < n && (s[i] == '+' || s[i] == '-')) {
    int sign = s[i] == '-' ? -1 : 1, oh, om;
    i++;
    if (num(s, n, &i, 2, &oh) || !expect(s, n, &i, ':') || num(s, n, &i, 2, &om) || oh > 23 ||
        om > 59)
      return SOUK_EINVAL;
    off_min = sign * (oh * 60 + om);
  } else {
    return SOUK_EINVAL;
  }
  if (i != n) return SOUK_EINVAL;
  /* A day past the month's end ("2021-02-30") does not round-trip. */
  int64_t days = market_days_from_civil(y, mo, d);
  int cy, cm, cd;
  market_civil_from_days(days, &cy, &cm, &cd);
  if (cy != y || cm != mo || cd != d) return SOUK_EINVAL;
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + (sec > 59 ? 59 : sec) - off_min * 60;
  *out_ms = secs * 1000 + ms;
  return 0;
}

/* ---- shared parser plumbing -------------------------------------------- */

const char *market_outcome_name(market_outcome_t o) {
  switch (o) {
  case MARKET_OK:
    return "ok";
  case MARKET_NO_DATA:
    return "no data";
  case MARKET_RATE_LIMITED:
    return "rate limited";
  case MARKET_AUTH:
    return "auth";
  case MARKET_BAD:
    return "bad response";
  }
  return "bad response";
}

static market_outcome_t set(market_parsed_t *out, market_outcome_t o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static market_outcome_t set(market_parsed_t *out, market_outcome_t o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out->reason, sizeof out->reason, fmt, ap);
  va_end(ap);
  out->outcome = o;
  return o;
}

static void begin(market_parsed_t *out, const char *symbol, const char *source) {
  memset(out, 0, sizeof *out);
  out->retry_after_s = -1;
  snprintf(out->quote.symbol, sizeof out->quote.symbol, "%s", symbol ? symbol : "");
  out->quote.source = source;
}

/* Retry-After is delta-seconds (an HTTP-date is not used by these APIs and
 * is treated as absent).  Fractions are rounded up. */
static int64_t retry_after_secs(const char *v) {
  if (!v) return -1;
  while (*v == ' ')
    v++;
  if (!is_digit(*v)) return -1;
  int64_t s = 0;
  for (; is_digit(*v); v++)
    if (s < 86400 * 7) s = s * 10 + (*v - '0');
  if (*v == '.') {
    v++;
    bool frac = false;
    for (; is_digit(*v); v++)
      if (*v != '0') frac = true;
    if (frac) s++;
  }
  while (*v == ' ')
    v++;
  return *v ? -1 : s;
}

/* Whether body is a provider's "this key is out of quota" answer, which
 * some send with another status than 429 (Finnhub's "API limit reached"
 * as a 200 or 403 JSON error, Polygon's "exceeded the maximum requests"):
 * the key is out of budget, like a 429, not wrong. */
static bool quota_answer(const char *body, size_t len) {
  static const char *const phrases[] = {"API limit reached", "exceeded the maximum requests"};
  for (size_t i = 0; body && i < sizeof phrases / sizeof *phrases; i++) {
    size_t pl = strlen(phrases[i]);
    for (size_t k = 0; k + pl <= len; k++)
      if (!memcmp(body + k, phrases[i], pl)) return true;
  }
  return false;
}

/* Status codes every provider treats alike.  Returns true (and fills out)
 * when the status decided the outcome. */
static bool common_status(int status, const char *retry_after, const char *body, size_t len,
                          market_parsed_t *out) {
  if (status == 429 || (status != 200 && status < 500 && quota_answer(body, len))) {
    out->retry_after_s = retry_after_secs(retry_after);
    set(out, MARKET_RATE_LIMITED, "429 rate limited%s",
        out->retry_after_s >= 0 ? " (Retry-After)" : "");
    return true;
  }
  if (status == 401 || status == 403) {
    /* At most 80 bytes of the body, which need not end in a NUL, with
     * control characters blanked: the reason is logged and shown. */
    char snip[81];
    size_t n = len < 80 ? len : 80;
    for (size_t i = 0; i < n; i++) {
      unsigned char c = (unsigned char)body[i];
      snip[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    snip[n] = '\0';
    set(out, MARKET_AUTH, "%d: %s", status, n ? snip : "no body");
    return true;
  }
  if (status >= 500 || status < 200) {
    set(out, MARKET_BAD, "HTTP %d", status);
    return true;
  }
  return false;
}

static int parse_body(souk_json_t *j, const char *body, size_t len, market_parsed_t *out) {
  if (souk_json_parse(j, body, len) != 0 || souk_json_type(j, 0) != SOUK_JSON_OBJECT) {
    set(out, MARKET_BAD, "malformed JSON body");
    return -1;
  }
  return 0;
}

/* Price at token t: a JSON number (or numeric string) parsed exactly. */
static int price_at(const souk_json_t *j, int t, int64_t *out) {
  souk_json_type_t ty = souk_json_type(j, t);
  if (ty != SOUK_JSON_NUMBER && ty != SOUK_JSON_STRING) return SOUK_EINVAL;
  size_t n;
  const char *s = souk_json_raw(j, t, &n);
  return market_price_parse(s, n, out);
}

/* Integer at token t (a number without fraction), or fallback when absent
 * or null. */
static int int_at(const souk_json_t *j, int t, int64_t *out) {
  if (t < 0 || souk_json_type(j, t) == SOUK_JSON_NULL) return SOUK_ENOTFOUND;
  return souk_json_i64(j, t, out);
}

/* Seconds (possibly with a fraction, as some APIs send) to ms. */
static int secs_at(const souk_json_t *j, int t, int64_t *out_ms) {
  int64_t micro;
  if (t < 0 || souk_json_type(j, t) != SOUK_JSON_NUMBER) return SOUK_ENOTFOUND;
  size_t n;
  const char *s = souk_json_raw(j, t, &n);
  if (market_price_parse(s, n, &micro) != 0) return SOUK_EINVAL;
  if (micro > INT64_MAX / 1000) return SOUK_ERANGE;
  *out_ms = micro / 1000;
  return 0;
}

/* ---- Finnhub ----------------------------------------------------------- */

market_outcome_t market_parse_finnhub(const char *symbol, int status, const char *retry_after,
                                      const char *body, size_t len, market_parsed_t *out) {
  begin(out, symbol, "finnhub");
  if (common_status(status, retry_after, body, len, out)) return out->outcome;
  if (status == 404) return set(out, MARKET_NO_DATA, "HTTP 404");
  if (status != 200) return set(out, MARKET_BAD, "HTTP %d", status);
  souk_json_t j = {0};
  if (parse_body(&j, body, len, out) != 0) goto done;
  int tc = souk_json_get(&j, 0, "c"), tpc = souk_json_get(&j, 0, "pc");
  if (tc < 0) {
    int te = souk_json_get(&j, 0, "error");
    if (te >= 0) {
      char msg[80] = "";
      souk_json_str(&j, te, msg, sizeof msg);
      if (quota_answer(msg, strlen(msg))) {
        /* The quota answer in a 200: out of budget, like a 429. */
        out->retry_after_s = retry_after_secs(retry_after);
        set(out, MARKET_RATE_LIMITED, "quota answer: %s", msg);
      } else {
        set(out, MARKET_BAD, "error: %s", msg);
      }
    } else {
      set(out, MARKET_BAD, "no \"c\" in quote");
    }
    goto done;
  }
  int64_t c = 0, pc = 0;
  if (price_at(&j, tc, &c) != 0) {
    set(out, MARKET_BAD, "bad price \"c\"");
    goto done;
  }
  if (tpc >= 0 && souk_json_type(&j, tpc) != SOUK_JSON_NULL && price_at(&j, tpc, &pc) != 0) {
    set(out, MARKET_BAD, "bad price \"pc\"");
    goto done;
  }
  /* Finnhub answers unknown symbols, and real ones during incidents, with
   * an all-zero quote: no data, not an error and not a price of 0. */
  if (c == 0) {
    set(out, MARKET_NO_DATA, pc == 0 ? "all-zero quote" : "zero price");
    goto done;
  }
  int64_t t = 0;
  if (int_at(&j, souk_json_get(&j, 0, "t"), &t) == 0 && t > 0 && t < INT64_MAX / 1000)
    out->quote.quote_time_ms = t * 1000;
  out->quote.price_micro = c;
  out->quote.prev_close_micro = pc;
  set(out, MARKET_OK, "ok");
done:
  souk_json_free(&j);
  return out->outcome;
}

/* ---- Polygon ----------------------------------------------------------- */

static bool polygon_error(souk_json_t *j, market_parsed_t *out) {
  int ts = souk_json_get(j, 0, "status");
  if (ts >= 0 && (souk_json_streq(j, ts, "OK") || souk_json_streq(j, ts, "DELAYED"))) return false;
  char msg[90] = "";
  int te = souk_json_get(j, 0, "error");
  if (te < 0) te = souk_json_get(j, 0, "message");
  if (te >= 0) souk_json_str(j, te, msg, sizeof msg);
  if (ts >= 0 && souk_json_streq(j, ts, "NOT_AUTHORIZED"))
    set(out, MARKET_AUTH, "not authorized: %s", msg);
  else
    set(out, MARKET_BAD, "status not OK: %s", msg);
  return true;
}

/* The close of the session a daily bar stands for: 16:00 New York (13:00
 * on early-close days) of the New York date the bar's time t falls on.
 * The bar's t is the start of its window, so taking it as the quote's time
 * would make the close look hours older than it is: always stale while
 * the market is open, and "a session opened since" while it is closed. */
static int64_t polygon_session_close(int64_t t) {
  int64_t local = t + (int64_t)market_ny_offset_min(t) * 60000;
  int64_t days = local >= 0 ? local / 86400000 : (local - 86399999) / 86400000;
  int y, m, d;
  market_civil_from_days(days, &y, &m, &d);
  int64_t close_local = days * 86400000 + (int64_t)market_nyse_close_min(y, m, d) * 60000;
  /* The offset in force a few hours after 16:00 UTC that day is the one at
   * the close (the switch happens at 02:00 local). */
  return close_local - (int64_t)market_ny_offset_min(days * 86400000 + 20 * 3600000) * 60000;
}

market_outcome_t market_parse_polygon_prev(const char *symbol, int status, const char *retry_after,
                                           const char *body, size_t len, market_parsed_t *out) {
  begin(out, symbol, "polygon");
  if (common_status(status, retry_after, body, len, out)) return out->outcome;
  if (status == 404) return set(out, MARKET_NO_DATA, "HTTP 404");
  if (status != 200) return set(out, MARKET_BAD, "HTTP %d", status);
  souk_json_t j = {0};
  if (parse_body(&j, body, len, out) != 0) goto done;
  if (polygon_error(&j, out)) goto done;
  int64_t count = 0;
  int tr = souk_json_get(&j, 0, "results");
  if (int_at(&j, souk_json_get(&j, 0, "resultsCount"), &count) == 0 && count == 0) {
    set(out, MARKET_NO_DATA, "resultsCount 0");
    goto done;
  }
  if (tr < 0 || souk_json_type(&j, tr) != SOUK_JSON_ARRAY || souk_json_count(&j, tr) == 0) {
    set(out, MARKET_NO_DATA, "no results");
    goto done;
  }
  int bar = souk_json_at(&j, tr, 0);
  int tT = souk_json_get(&j, bar, "T");
  if (tT >= 0 && symbol && !souk_json_streq(&j, tT, symbol)) {
    set(out, MARKET_BAD, "answer is for another ticker");
    goto done;
  }
  int64_t c;
  if (price_at(&j, souk_json_get(&j, bar, "c"), &c) != 0 || c == 0) {
    set(out, MARKET_BAD, "bad close \"c\"");
    goto done;
  }
  int64_t t = 0;
  if (int_at(&j, souk_json_get(&j, bar, "t"), &t) == 0 && t > 0 && t < INT64_MAX / 2)
    out->quote.quote_time_ms = polygon_session_close(t);
  out->quote.price_micro = c;
  set(out, MARKET_OK, "ok");
done:
  souk_json_free(&j);
  return out->outcome;
}

market_outcome_t market_parse_polygon_last(const char *symbol, int status, const char *retry_after,
                                           const char *body, size_t len, market_parsed_t *out) {
  begin(out, symbol, "polygon");
  if (common_status(status, retry_after, body, len, out)) return out->outcome;
  if (status == 404) return set(out, MARKET_NO_DATA, "HTTP 404");
  if (status != 200) return set(out, MARKET_BAD, "HTTP %d", status);
  souk_json_t j = {0};
  if (parse_body(&j, body, len, out) != 0) goto done;
  if (polygon_error(&j, out)) goto done;
  int tr = souk_json_get(&j, 0, "results");
  if (tr < 0 || souk_json_type(&j, tr) != SOUK_JSON_OBJECT) {
    set(out, MARKET_NO_DATA, "no results");
    goto done;
  }
  int tT = souk_json_get(&j, tr, "T");
  if (tT >= 0 && symbol && !souk_json_streq(&j, tT, symbol)) {
    set(out, MARKET_BAD, "answer is for another ticker");
    goto done;
  }
  int64_t p;
  if (price_at(&j, souk_json_get(&j, tr, "p"), &p) != 0 || p == 0) {
    set(out, MARKET_BAD, "bad price \"p\"");
    goto done;
  }
  int64_t t = 0;
  if (int_at(&j, souk_json_get(&j, tr, "t"), &t) == 0 && t > 0)
    out->quote.quote_time_ms = t / 1000000; /* SIP timestamp in ns */
  out->quote.price_micro = p;
  set(out, MARKET_OK, "ok");
done:
  souk_json_free(&j);
  return out->outcome;
}

/* ---- Alpaca ------------------------------------------------------------ */

market_outcome_t market_parse_alpaca(const char *symbol, int status, const char *retry_after,
                                     const char *body, size_t len, market_parsed_t *out) {
  begin(out, symbol, "alpaca");
  if (common_status(status, retry_after, body, len, out)) return out->outcome;
  souk_json_t j = {0};
  if (status == 400 || status == 404 || status == 422) {
    /* {"message":"invalid symbol: ..."}: this provider cannot price it. */
    set(out, MARKET_NO_DATA, "HTTP %d", status);
    if (souk_json_parse(&j, body, len) == 0) {
      char msg[90] = "";
      int tm = souk_json_get(&j, 0, "message");
      if (tm >= 0 && souk_json_str(&j, tm, msg, sizeof msg) >= 0)
        set(out, MARKET_NO_DATA, "HTTP %d: %s", status, msg);
    }
    goto done;
  }
  if (status != 200) {
    set(out, MARKET_BAD, "HTTP %d", status);
    goto done;
  }
  if (parse_body(&j, body, len, out) != 0) goto done;
  int tt = souk_json_get(&j, 0, "trades");
  if (tt < 0 || souk_json_type(&j, tt) != SOUK_JSON_OBJECT) {
    set(out, MARKET_BAD, "no \"trades\" map");
    goto done;
  }
  int tr = symbol ? souk_json_get(&j, tt, symbol) : -1;
  if (tr < 0) {
    set(out, MARKET_NO_DATA, souk_json_count(&j, tt) ? "symbol not in trades" : "empty trades map");
    goto done;
  }
  int64_t p;
  if (souk_json_type(&j, tr) != SOUK_JSON_OBJECT ||
      price_at(&j, souk_json_get(&j, tr, "p"), &p) != 0 || p == 0) {
    set(out, MARKET_BAD, "bad trade price \"p\"");
    goto done;
  }
  int tts = souk_json_get(&j, tr, "t");
  if (souk_json_type(&j, tts) == SOUK_JSON_STRING) {
    size_t n;
    const char *s = souk_json_raw(&j, tts, &n);
    int64_t ms;
    if (market_rfc3339_ms(s, n, &ms) != 0) {
      set(out, MARKET_BAD, "bad trade time \"t\"");
      goto done;
    }
    out->quote.quote_time_ms = ms;
  }
  out->quote.price_micro = p;
  set(out, MARKET_OK, "ok");
done:
  souk_json_free(&j);
  return out->outcome;
}

/* ---- Yahoo ------------------------------------------------------------- */

market_outcome_t market_parse_yahoo(const char *symbol, int status, const char *retry_after,
                                    const char *body, size_t len, market_parsed_t *out) {
  begin(out, symbol, "yahoo");
  if (common_status(status, retry_after, body, len, out)) return out->outcome;
  if (status != 200 && status != 404) return set(out, MARKET_BAD, "HTTP %d", status);
  souk_json_t j = {0};
  if (parse_body(&j, body, len, out) != 0) {
    if (status == 404) set(out, MARKET_NO_DATA, "HTTP 404");
    goto done;
  }
  int tchart = souk_json_get(&j, 0, "chart");
  int terr = souk_json_get(&j, tchart, "error");
  int tres = souk_json_get(&j, tchart, "result");
  if (status == 404 || (terr >= 0 && souk_json_type(&j, terr) != SOUK_JSON_NULL)) {
    char msg[90] = "";
    int td = souk_json_get(&j, terr, "description");
    if (td >= 0) souk_json_str(&j, td, msg, sizeof msg);
    set(out, MARKET_NO_DATA, "chart error: %s", msg[0] ? msg : "HTTP 404");
    goto done;
  }
  int t0 = souk_json_at(&j, tres, 0);
  int meta = souk_json_get(&j, t0, "meta");
  if (souk_json_type(&j, meta) != SOUK_JSON_OBJECT) {
    set(out, tchart < 0 ? MARKET_BAD : MARKET_NO_DATA, "no chart result");
    goto done;
  }
  int tsym = souk_json_get(&j, meta, "symbol");
  if (tsym >= 0 && symbol && !souk_json_streq(&j, tsym, symbol)) {
    set(out, MARKET_BAD, "answer is for another symbol");
    goto done;
  }
  int tp = souk_json_get(&j, meta, "regularMarketPrice");
  if (tp < 0 || souk_json_type(&j, tp) == SOUK_JSON_NULL) {
    set(out, MARKET_NO_DATA, "no regularMarketPrice");
    goto done;
  }
  int64_t p;
  if (price_at(&j, tp, &p) != 0) {
    set(out, MARKET_BAD, "bad regularMarketPrice");
    goto done;
  }
  if (p == 0) {
    set(out, MARKET_NO_DATA, "zero price");
    goto done;
  }
  int64_t pc = 0;
  int tpc = souk_json_get(&j, meta, "previousClose");
  int trange = souk_json_get(&j, meta, "range");
  if (tpc < 0 && trange >= 0 && souk_json_streq(&j, trange, "1d"))
    tpc = souk_json_get(&j, meta, "chartPreviousClose");
  if (tpc >= 0 && souk_json_type(&j, tpc) == SOUK_JSON_NUMBER && price_at(&j, tpc, &pc) != 0)
    pc = 0;
  int64_t tms = 0;
  if (secs_at(&j, souk_json_get(&j, meta, "regularMarketTime"), &tms) == 0)
    out->quote.quote_time_ms = tms;
  out->quote.price_micro = p;
  out->quote.prev_close_micro = pc;
  set(out, MARKET_OK, "ok");
done:
  souk_json_free(&j);
  return out->outcome;
}
