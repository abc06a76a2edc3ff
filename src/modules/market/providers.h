/* The Market Sim price provider chain: Finnhub -> Polygon -> Alpaca ->
 * Yahoo, asynchronous on souk's loop through souk's HTTP client.
 *
 * A lookup tries each enabled provider in order and answers with the
 * first price it gets.  A provider is passed over (fall through, never
 * queued) while it is backing off after a 429, while its request budget is
 * spent, or while its circuit breaker is open; it falls through after an
 * error, a timeout or its own "no data" answer.  Every request also waits
 * for a global minimum interval after the previous one (2 s by default), up
 * to max_wait_ms.
 *
 * Outcomes and the breaker (souk/recovery.h): a response that shows the
 * provider is up (a price, "no data", a 429) counts as a success; a
 * timeout, connection failure, 5xx, malformed body or 401/403 counts as a
 * failure, so a provider with a bad key stops being asked until the breaker
 * half-opens.  A 429 instead backs the provider off for
 * max(Retry-After, backoff_base_ms * 2^(n-1)) capped at backoff_cap_ms,
 * n being the number of 429s in a row.
 *
 * Several keys per provider: a provider's key (and Alpaca's secret) may
 * list up to MARKET_KEYS_MAX keys separated by commas.  Each key has its
 * own request budget and its own 429 backoff, since providers count them
 * apart; a provider is used with the key in use until that key runs out
 * (its budget is spent, or it got a 429 or the provider's quota answer),
 * then with the next one that may be asked, in turn.  A lookup whose key
 * got a 429 asks the same provider again at once with the next key, and
 * falls through to the next provider only when every key is out.  The
 * breaker stays the provider's: it is about the service, not a key.
 *
 * Threads: everything runs on the loop thread.  Keys are registered with
 * souk_log_add_secret() and sent in headers, never in URLs. */
#ifndef SOUK_MARKET_PROVIDERS_H
#define SOUK_MARKET_PROVIDERS_H

#include "price.h"
#include "souk/loop.h"
#include "souk/module.h"
#include "souk/recovery.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The providers, in chain order. */
typedef enum market_provider_id {
  MARKET_PROV_FINNHUB,
  MARKET_PROV_POLYGON,
  MARKET_PROV_ALPACA,
  MARKET_PROV_YAHOO,
  MARKET_PROV_COUNT
} market_provider_id_t;

/** Keys one provider may have (its key list's length). */
#define MARKET_KEYS_MAX 8

/** "finnhub", "polygon", "alpaca", "yahoo"; "?" otherwise. */
const char *market_provider_name(market_provider_id_t id);

/** At most limit requests in any window_ms (limit 0: no limit). */
typedef struct market_budget {
  uint32_t limit;
  uint64_t window_ms;
} market_budget_t;

/** One provider's settings.  Strings are copied by market_chain_new(). */
typedef struct market_provider_conf {
  bool enabled;         /* default true, except Yahoo (no key: opt in) */
  const char *key;      /* Finnhub token, Polygon key, Alpaca key id; required but for
                           Yahoo; several separated by commas ("k1,k2") */
  const char *secret;   /* Alpaca secret key (required for Alpaca); one per key id, in the
                           same order, separated by commas */
  const char *base_url; /* scheme://host[:port], no trailing slash; NULL: the real API */
  market_budget_t budget[2];
} market_provider_conf_t;

/** The chain's settings.  Fill with market_chain_conf_defaults(), then
 * change what you need. */
typedef struct market_chain_conf {
  market_provider_conf_t prov[MARKET_PROV_COUNT];
  const char *alpaca_feed;     /* "iex" (free plan, default) or "sip" */
  bool polygon_last_trade;     /* ask /v2/last/trade/S (paid plans) instead of the
                                  previous day's bar /v2/aggs/ticker/S/prev */
  uint64_t min_interval_ms;    /* between any two provider requests; default 2000 */
  uint64_t max_wait_ms;        /* a lookup waits at most this for its turn; default 10000 */
  uint32_t timeout_ms;         /* whole request; default 5000 */
  uint64_t backoff_base_ms;    /* first 429 without Retry-After; default 5000 */
  uint64_t backoff_cap_ms;     /* default 600000 */
  souk_breaker_opts_t breaker; /* default: open after 5 failures in 60 s, for 60 s */
  uint64_t max_age_ms;         /* > 0: a quote older than this falls through ("stale") */
  const souk_clock_t *clock;   /* monotonic ms for budgets, backoff, breakers; NULL: real */
  const souk_clock_t *wall;    /* UTC Unix ms for max_age_ms; NULL: souk_unix_ms() */
  const char *user_agent;      /* default "souk-market/1" */
  /** The HTTP client the providers are asked through: the module's init
   * context's (ctx->http); the defaults point at the process's. */
  const souk_http_client_t *http;
} market_chain_conf_t;

/** Defaults: budgets Finnhub 60/min and 30/s, Polygon 5/min, Alpaca
 * 200/min, Yahoo 30/min; Yahoo disabled; no keys; the timings above. */
void market_chain_conf_defaults(market_chain_conf_t *c);

/** A provider chain (opaque). */
typedef struct market_chain market_chain_t;

/** Create a chain from c (copied; c's clocks must outlive the chain).
 * Registers every key and secret with souk_log_add_secret().  Returns 0 or
 * SOUK_EINVAL (a base_url that is not http(s)://, a budget with a zero
 * window, a key list with an empty item or more than MARKET_KEYS_MAX).
 * Alpaca pairs key ids and secrets in order; an id without a secret (or
 * the reverse) is left out.  A chain with no enabled provider is valid:
 * every lookup then answers "no provider". */
int market_chain_new(const market_chain_conf_t *c, market_chain_t **out);

/** Free the chain.  Lookups still in flight are cancelled: their callbacks
 * run before this returns, with err SOUK_ECANCELED.  Run the loop
 * afterwards so their timers close.  NULL is fine. */
void market_chain_free(market_chain_t *ch);

/** Split a comma-separated key list (spaces around items ignored) into
 * out[0..*n) (each at most 255 bytes; copies); 0, or SOUK_EINVAL for an
 * empty item, an item too long, or more than MARKET_KEYS_MAX items.  NULL
 * or "" is an empty list. */
int market_key_list(const char *s, char out[MARKET_KEYS_MAX][256], size_t *n);

/** True if provider id is enabled (configured with what it needs). */
bool market_chain_enabled(const market_chain_t *ch, market_provider_id_t id);

/** What a lookup ended with.  Valid only during the callback. */
typedef struct market_chain_result {
  int err;              /* 0, SOUK_ENOTFOUND (no provider could price it) or SOUK_ECANCELED */
  market_quote_t quote; /* err == 0 */
  const char *symbol;
  /** Why each provider did not answer (NULL: not reached, or it answered):
   * "not configured", "backing off after 429 (1200 ms left)", "request
   * budget spent (5 per 60000 ms)", "circuit open", "no data (all-zero
   * quote)", "timed out", "HTTP 503", ... */
  const char *reasons[MARKET_PROV_COUNT];
  /** err != 0: "no provider could price SYMBOL (finnhub: ...; polygon: ...)". */
  const char *message;
  /** When the quote was fetched from its provider (UTC Unix ms), when that
   * was before now: another process's quote shared through Redis
   * (sharedquote.h).  0: just now. */
  int64_t fetched_ms;
} market_chain_result_t;

/** Lookup callback: runs exactly once per accepted lookup, on the loop
 * thread and never from inside market_chain_quote(). */
typedef void (*market_quote_cb)(const market_chain_result_t *r, void *ud);

/** Look up symbol.  Returns 0 (cb will run exactly once) or SOUK_EINVAL
 * (not a valid symbol, see market_symbol_valid(); cb never runs).  Symbols
 * use the dotted class form ("BRK.B"); Yahoo is asked for "BRK-B", its
 * spelling, and the quote still says "BRK.B".  Concurrent lookups of one
 * symbol are not merged: that is the price cache's job. */
int market_chain_quote(market_chain_t *ch, const char *symbol, market_quote_cb cb, void *ud);

/** Counters of one provider. */
typedef struct market_provider_stats {
  bool enabled;
  uint64_t requests;     /* requests sent */
  uint64_t ok;           /* answered with a price */
  uint64_t nodata;       /* "no data" answers (and stale quotes) */
  uint64_t rate_limited; /* 429s */
  uint64_t errors;       /* timeouts, connection errors, 5xx, malformed, 401/403 */
  uint64_t skipped_backoff, skipped_budget, skipped_breaker, skipped_busy;
  uint64_t rotations;           /* times the key in use changed */
  uint32_t keys;                /* keys configured (1 for Yahoo) */
  uint32_t key_in_use;          /* index of the key asked last, from 0 */
  uint64_t backoff_left_ms;     /* now: until some key may be asked again (0: one may now) */
  uint32_t consecutive_429;     /* of the key in use */
  souk_breaker_state_t breaker; /* now */
} market_provider_stats_t;

/** Counters of provider id.  Returns 0 or SOUK_EINVAL. */
int market_chain_stats(market_chain_t *ch, market_provider_id_t id, market_provider_stats_t *out);

#endif
