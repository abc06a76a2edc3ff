/* Market Sim prices: fixed-point decimal parsing, the price providers'
 * response parsers, the simulated market and US market hours.
 *
 * Everything here is pure (no I/O, no global state) so it can be unit
 * tested exhaustively and called from any thread.  Prices are int64
 * micro-dollars (1e-6 USD) and are always parsed from the decimal text of
 * the provider's JSON number, never through a double (DESIGN.md: money is
 * never a float).  The provider chain that fetches them is in providers.h. */
#ifndef SOUK_MARKET_PRICE_H
#define SOUK_MARKET_PRICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Micro-units per dollar. */
#define MARKET_MICRO 1000000LL
/** Longest symbol accepted, without the NUL. */
#define MARKET_SYMBOL_MAX 15

/* ---- decimal parsing ---- */

/** Parse the text of a non-negative JSON number (s[0..n), not necessarily
 * NUL-terminated) to micro-units.  The grammar is JSON's, minus the sign:
 * `0|[1-9][0-9]*` then optional `.[0-9]+` then optional `[eE][+-]?[0-9]+`.
 * Exponents are applied exactly on the digits (`1.5e2` is 150000000), never
 * through floating point.  Digits beyond the sixth decimal are rounded
 * once, half up (0.0000005 -> 1, 0.00000049999 -> 0).  Returns 0, or
 * SOUK_EINVAL for anything else (negative numbers, `NaN`, `Infinity`, `.5`,
 * `1.`, `01`, empty, trailing bytes) and SOUK_ERANGE when the result does
 * not fit in int64. */
int market_price_parse(const char *s, size_t n, int64_t *out_micro);

/** Format micro-units as a decimal with at least two and at most six
 * fraction digits ("189.25", "0.000001", "-3.10") into out (cap bytes,
 * NUL-terminated).  Returns the length written or SOUK_ETOOBIG. */
int market_price_format(int64_t micro, char *out, size_t cap);

/** True if s is a symbol this module accepts: 1..MARKET_SYMBOL_MAX bytes
 * of A-Z, 0-9, '.' and '-', starting with a letter.  Such a symbol is safe
 * to put in a URL path or query as is. */
bool market_symbol_valid(const char *s);

/** Parse an RFC 3339 UTC timestamp ("2022-03-18T14:02:09.722539521Z", or
 * with a "+hh:mm"/"-hh:mm" offset) to Unix milliseconds, truncating extra
 * fraction digits.  Returns 0 or SOUK_EINVAL. */
int market_rfc3339_ms(const char *s, size_t n, int64_t *out_ms);

/* ---- provider responses ---- */

/** One price. */
typedef struct market_quote {
  char symbol[MARKET_SYMBOL_MAX + 1];
  int64_t price_micro;      /* > 0 */
  int64_t prev_close_micro; /* previous session's close; 0 if unknown */
  int64_t quote_time_ms;    /* UTC Unix ms from the provider's own timestamp; 0 if none */
  const char *source;       /* static: "finnhub", "polygon", "alpaca", "yahoo", "simulated" */
} market_quote_t;

/** What a provider's answer means for the chain. */
typedef enum market_outcome {
  MARKET_OK = 0,       /* quote is filled in */
  MARKET_NO_DATA,      /* the provider has no price for the symbol: fall through */
  MARKET_RATE_LIMITED, /* 429: back off (retry_after_s when the server said) */
  MARKET_AUTH,         /* 401/403: key missing, wrong or not entitled */
  MARKET_BAD,          /* malformed body, 5xx or any other status */
} market_outcome_t;

/** "ok", "no data", "rate limited", "auth", "bad response"; never NULL. */
const char *market_outcome_name(market_outcome_t o);

/** A parser's result. */
typedef struct market_parsed {
  market_outcome_t outcome;
  market_quote_t quote;  /* valid when outcome is MARKET_OK */
  int64_t retry_after_s; /* MARKET_RATE_LIMITED: Retry-After seconds, -1 if none */
  char reason[128];      /* short human-readable why, for logs and replies */
} market_parsed_t;

/* The parsers: pure functions of the requested symbol, the HTTP status,
 * the value of the Retry-After header (NULL when absent) and the body bytes
 * (body need not be NUL-terminated).  They fill *out and return
 * out->outcome.  Status handling shared by all four: 429 RATE_LIMITED,
 * 401/403 AUTH, 5xx BAD; other non-2xx statuses are BAD except where a
 * provider documents a status as "no data" (Yahoo's 404 chart error,
 * Alpaca's 400 "invalid symbol", a 404 from any of them). */

/** Finnhub GET /api/v1/quote?symbol=S: {"c","d","dp","h","l","o","pc","t"}.
 * c==0 and pc==0 (unknown symbol, or an incident) is NO_DATA; t is Unix
 * seconds. */
market_outcome_t market_parse_finnhub(const char *symbol, int status, const char *retry_after,
                                      const char *body, size_t len, market_parsed_t *out);
/** Polygon GET /v2/aggs/ticker/S/prev: the previous day's bar (price = its
 * close c; time = the close of the bar's trading day, 16:00 New York or
 * 13:00 on early-close days, since the bar's t is its start; prev_close
 * unknown); resultsCount 0 or no results is NO_DATA. */
market_outcome_t market_parse_polygon_prev(const char *symbol, int status, const char *retry_after,
                                           const char *body, size_t len, market_parsed_t *out);
/** Polygon GET /v2/last/trade/S (paid plans): results.p at results.t
 * (nanoseconds). */
market_outcome_t market_parse_polygon_last(const char *symbol, int status, const char *retry_after,
                                           const char *body, size_t len, market_parsed_t *out);
/** Alpaca GET /v2/stocks/trades/latest?symbols=S: trades[S].p at trades[S].t
 * (RFC 3339).  An empty map, or one without S, is NO_DATA.  The trade can
 * be months old for thin symbols: the caller checks quote_time_ms. */
market_outcome_t market_parse_alpaca(const char *symbol, int status, const char *retry_after,
                                     const char *body, size_t len, market_parsed_t *out);
/** Yahoo GET /v8/finance/chart/S?interval=1d&range=1d: meta.regularMarketPrice
 * at meta.regularMarketTime (seconds).  prev_close is meta.previousClose
 * when present, else meta.chartPreviousClose only when meta.range is "1d"
 * (chartPreviousClose is the close before the requested range, which is
 * yesterday's close only for a one-day range).  A chart error (404) is
 * NO_DATA. */
market_outcome_t market_parse_yahoo(const char *symbol, int status, const char *retry_after,
                                    const char *body, size_t len, market_parsed_t *out);

/* ---- the simulated market ---- */

/** Simulation parameters.  Zero-initialise and call market_sim_defaults(). */
typedef struct market_sim_conf {
  uint64_t seed;         /* a season's seed: same seed, same prices */
  uint64_t step_ms;      /* the walk moves once per step (default 60 s) */
  uint32_t daily_vol_bp; /* standard deviation of a day's move, basis points (default 130, about 25
                            % a year) */
} market_sim_conf_t;

/** Fill c with the defaults (seed 0, 60 s steps, 1.3 % a day). */
void market_sim_defaults(market_sim_conf_t *c);

/** Number of symbols the simulated market knows. */
size_t market_sim_symbol_count(void);
/** Symbol i (0-based, sorted) or NULL; its start price in *start_micro (may
 * be NULL) and a display name in *name (may be NULL). */
const char *market_sim_symbol(size_t i, int64_t *start_micro, const char **name);
/** True if the simulated market knows symbol (exact, upper case). */
bool market_sim_known(const char *symbol);

/** The simulated price of symbol at UTC Unix ms t: a seeded random walk in
 * log space (one step per step_ms, built by midpoint displacement so any
 * time costs ~36 hash calls), squashed so a price stays within about
 * 1/7..7 times its start price, computed in integers only, so the same
 * (conf, symbol, t) gives the same price on every machine.  quote_time_ms
 * is the start of t's step, prev_close_micro the price at the end of the
 * previous UTC day, source "simulated".  Returns 0, SOUK_ENOTFOUND for an
 * unknown symbol or SOUK_EINVAL (step_ms 0). */
int market_sim_quote(const market_sim_conf_t *c, const char *symbol, int64_t t_ms,
                     market_quote_t *out);

/* ---- US market hours ---- */

/** Offset of America/New_York from UTC at UTC ms t, in minutes (-300 or
 * -240), by the US rules (2007 on: second Sunday of March 02:00 to first
 * Sunday of November 02:00 local; 1987-2006: first Sunday of April to last
 * Sunday of October; earlier years use the 1987 rule). */
int market_ny_offset_min(int64_t t_ms);

/** True if y-m-d is an NYSE full-day holiday (observed date): New Year's
 * Day (Sunday -> Monday; a Saturday New Year is not observed on the Friday
 * before), Martin Luther King Jr. Day (from 1998), Washington's Birthday,
 * Good Friday, Memorial Day, Juneteenth (from 2022), Independence Day,
 * Labor Day, Thanksgiving and Christmas (Saturday -> Friday, Sunday ->
 * Monday).  One-off closures (national mourning, weather) are not
 * modelled. */
bool market_nyse_holiday(int y, int m, int d);

/** Minutes after New York midnight at which the session of y-m-d closes:
 * 960 (16:00), or 780 (13:00) on the early-close days: July 3 (when a
 * trading day), the day after Thanksgiving, and December 24 (when a
 * trading day).  Meaningless on weekends and holidays. */
int market_nyse_close_min(int y, int m, int d);

/** True if the NYSE regular session (09:30 to 16:00, or 13:00 on early-
 * close days, New York time, Monday to Friday, not a holiday) is open at
 * UTC ms t. */
bool market_nyse_open(int64_t t_ms);

/** UTC ms of the next regular session open strictly after t (within the
 * next two weeks, which always holds). */
int64_t market_nyse_next_open(int64_t t_ms);

/** Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t market_days_from_civil(int y, int m, int d);
/** The date of day z since 1970-01-01. */
void market_civil_from_days(int64_t z, int *y, int *m, int *d);

#endif
