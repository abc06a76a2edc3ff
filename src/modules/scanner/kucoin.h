/* KuCoin Futures public market data as the scanner reads it: the contracts
 * list (GET /api/v1/contracts/active), what an answer means, and the
 * public rate-limit pool announced by the gw-ratelimit-* headers.
 *
 * Facts from KuCoin's documentation that the parser relies on: every body
 * is an envelope {"code": "200000", "data": ...} and an error may come with
 * HTTP 200 and another code, so the code decides, not only the status;
 * `openInterest` is a string; `nextFundingRateTime` is the milliseconds
 * left until the next funding, not a timestamp; prices, turnover and rates
 * are JSON numbers, some in exponent form (5.2e-05).  Prices are kept as
 * int64 micro-units parsed from the number's text (DESIGN.md: never a
 * float); the other figures as fixed point of their own scale.
 *
 * Pure functions, no I/O and no global state: callable from any thread. */
#ifndef SOUK_SCANNER_KUCOIN_H
#define SOUK_SCANNER_KUCOIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Longest contract symbol kept, without the NUL ("XBTUSDTM"). */
#define SCANNER_SYMBOL_MAX 23
/** Longest currency code kept, without the NUL. */
#define SCANNER_CCY_MAX 11
/** Weight of GET /api/v1/contracts/active in the public pool (KuCoin docs). */
#define SCANNER_ACTIVE_WEIGHT 3

/** One contract of the list, in fixed point. */
typedef struct scanner_contract {
  char symbol[SCANNER_SYMBOL_MAX + 1];
  char base[SCANNER_CCY_MAX + 1];  /* baseCurrency, "XBT" */
  char quote[SCANNER_CCY_MAX + 1]; /* quoteCurrency, "USDT" */
  int64_t last_micro;              /* lastTradePrice, micro-units of quote (> 0) */
  char last_text[24];              /* lastTradePrice as sent, for display of prices
                                      finer than a micro-unit (PEPE); "" if too long */
  int64_t mark_micro;              /* markPrice, micro-units; last_micro when absent */
  int64_t change_ppm;              /* priceChgPct in parts per million (-0.028 -> -28000) */
  int64_t funding_e8;              /* fundingFeeRate in 1e-8 (5.2e-05 -> 5200) */
  int64_t turnover;                /* turnoverOf24h in whole units of quote, rounded */
  int64_t volume_milli;            /* volumeOf24h in thousandths */
  int64_t open_interest;           /* openInterest, contracts (sent as a string) */
  int64_t multiplier_e9;           /* multiplier in 1e-9 (0.001 -> 1000000) */
  int64_t funding_in_ms;           /* nextFundingRateTime: ms until the next funding; -1 unknown */
  /** openInterest x multiplier x markPrice in the quote currency, read as
   * doubles from the numbers' text: a score input, never money, and exact
   * even for prices finer than a micro-unit.  0 when unknown. */
  double oi_value;
} scanner_contract_t;

/** What one answer of the contracts list means. */
typedef enum scanner_outcome {
  SCANNER_OK = 0,       /* contracts parsed */
  SCANNER_RATE_LIMITED, /* HTTP 429, or code 429000 */
  SCANNER_CODE_ERROR,   /* an envelope with a code other than 200000 (any status) */
  SCANNER_HTTP_ERROR,   /* 5xx, or another status without an envelope */
  SCANNER_MALFORMED,    /* 200 but not the documented shape */
} scanner_outcome_t;

/** "ok", "rate limited", "error code", "HTTP error", "malformed"; never NULL. */
const char *scanner_outcome_name(scanner_outcome_t o);

/** Filters applied while parsing. */
typedef struct scanner_filter {
  const char *quote; /* keep only this quoteCurrency ("USDT"); NULL or "": all */
  size_t max;        /* keep at most this many contracts (0: 1000) */
} scanner_filter_t;

/** A parsed answer.  contracts is owned by the caller after a successful
 * parse: free it with scanner_parsed_free(). */
typedef struct scanner_parsed {
  scanner_outcome_t outcome;
  char code[16];    /* the envelope's code, "" when none */
  char reason[160]; /* why, for logs and /scan status: "code 400100: Parameter error" */
  scanner_contract_t *contracts;
  size_t n;
  size_t skipped; /* contracts left out: not Open, other quote, unreadable */
} scanner_parsed_t;

/** Read the answer of GET /api/v1/contracts/active: HTTP status and body.
 * Fills *out (zeroed first).  Contracts whose status is not "Open", whose
 * quote currency is filtered out, or whose price cannot be read are
 * skipped and counted.  Never fails: the outcome says what happened. */
void scanner_parse_contracts(int status, const char *body, size_t len, const scanner_filter_t *f,
                             scanner_parsed_t *out);
/** Free what scanner_parse_contracts() allocated (and zero the count). */
void scanner_parsed_free(scanner_parsed_t *p);

/** What the gw-ratelimit-* headers of the last answer said about the
 * public pool, on the caller's monotonic clock.  Zero-initialise. */
typedef struct scanner_pool {
  bool known;           /* a header set was seen */
  int64_t limit;        /* gw-ratelimit-limit */
  int64_t remaining;    /* gw-ratelimit-remaining */
  uint64_t reset_at_ms; /* now + gw-ratelimit-reset when it was read */
} scanner_pool_t;

/** Update *p from the header values (any may be NULL: then *p is left as
 * it was) read at now_ms.  Returns true when all three were present and
 * readable. */
bool scanner_pool_update(scanner_pool_t *p, const char *limit, const char *remaining,
                         const char *reset_ms, uint64_t now_ms);
/** Milliseconds to wait before a request of weight may be sent without
 * overrunning the pool: 0 when the pool is unknown, has room, or its
 * window has reset. */
uint64_t scanner_pool_wait(const scanner_pool_t *p, int64_t weight, uint64_t now_ms);
/** Count a request of weight sent at now_ms against the known pool, so
 * two requests before the next answer do not both spend the same room. */
void scanner_pool_spend(scanner_pool_t *p, int64_t weight, uint64_t now_ms);

/** Format a contract's last price for people: the text KuCoin sent when
 * it is plain decimal (so 0.000009871 keeps its digits), else the
 * micro-units with two to six fraction digits ("86364.00", "0.12345"). */
void scanner_fmt_price(const scanner_contract_t *c, char *out, size_t cap);
/** Format a whole amount with thousands separators and a short suffix
 * past a million ("1.03B", "641.5M", "12,345"). */
void scanner_fmt_amount(double v, char *out, size_t cap);

#endif
