/* Quotes shared through the Redis cache (see sharedquote.h). */
#include "sharedquote.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CATEGORY   "market.quote"
#define KEY_PREFIX "market:quote:"

/* One lookup: first Redis, then (on a miss) the fetch function. */
typedef struct sq_job {
  struct sq_job *next; /* in sq->waiting while Redis is asked */
  market_sq_t *sq;     /* NULL once cancelled: the reply is dropped */
  char symbol[MARKET_SYMBOL_MAX + 1];
  market_quote_cb cb;
  void *ud;
} sq_job_t;

struct market_sq {
  market_sq_conf_t c;
  int cat; /* the cache's category, or < 0 without a cache */
  bool cancelled;
  sq_job_t *waiting;
  market_sq_stats_t st;
};

static int64_t sq_now(const market_sq_t *sq) {
  return sq->c.wall ? (int64_t)sq->c.wall->now_ms(sq->c.wall->ud) : (int64_t)souk_unix_ms();
}

static const char *known_source(const char *s, size_t n) {
  static const char *const known[] = {"finnhub", "polygon", "alpaca", "yahoo", "simulated"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strlen(known[i]) == n && memcmp(s, known[i], n) == 0) return known[i];
  return NULL;
}

int market_sq_encode(const market_quote_t *q, int64_t fetched_ms, char *out, size_t cap) {
  int n = snprintf(out, cap, "v1 %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %s",
                   q->price_micro, q->prev_close_micro, q->quote_time_ms, fetched_ms,
                   q->source ? q->source : "");
  return n < 0 || (size_t)n >= cap ? -1 : n;
}

int market_sq_decode(const char *val, size_t len, const char *symbol, market_quote_t *q,
                     int64_t *fetched_ms) {
  char buf[160];
  if (!val || len < 3 || len >= sizeof buf || memcmp(val, "v1 ", 3) != 0) return SOUK_EPARSE;
  memcpy(buf, val, len);
  buf[len] = 0;
  int64_t v[4];
  char *p = buf + 3;
  for (int i = 0; i < 4; i++) {
    char *end;
    v[i] = strtoll(p, &end, 10);
    if (end == p || *end != ' ') return SOUK_EPARSE;
    p = end + 1;
  }
  const char *src = known_source(p, strlen(p));
  if (!src || v[0] <= 0 || v[3] <= 0 || strlen(symbol) > MARKET_SYMBOL_MAX) return SOUK_EPARSE;
  memset(q, 0, sizeof *q);
  snprintf(q->symbol, sizeof q->symbol, "%s", symbol);
  q->price_micro = v[0];
  q->prev_close_micro = v[1];
  q->quote_time_ms = v[2];
  q->source = src;
  *fetched_ms = v[3];
  return 0;
}

market_sq_t *market_sq_new(const market_sq_conf_t *conf) {
  market_sq_t *sq = souk_calloc(1, sizeof *sq);
  sq->c = *conf;
  sq->cat = conf->cache ? souk_cache_category(conf->cache, CATEGORY, conf->ttl_ms) : -1;
  return sq;
}

static void unlink_job(market_sq_t *sq, sq_job_t *j) {
  for (sq_job_t **pp = &sq->waiting; *pp; pp = &(*pp)->next) {
    if (*pp == j) {
      *pp = j->next;
      return;
    }
  }
}

/* The providers' answer: handed on, and kept in Redis for the others. */
static void fetched_cb(const market_chain_result_t *r, void *ud) {
  sq_job_t *j = ud;
  market_sq_t *sq = j->sq;
  if (sq && !sq->cancelled && r->err == 0 && sq->cat >= 0 && souk_cache_redis_up(sq->c.cache)) {
    char key[64], val[160];
    int64_t at = r->fetched_ms ? r->fetched_ms : sq_now(sq);
    int n = market_sq_encode(&r->quote, at, val, sizeof val);
    snprintf(key, sizeof key, KEY_PREFIX "%s", r->quote.symbol);
    /* Best effort: a failed set only means the others ask the providers. */
    if (n > 0 && souk_cache_set_ttl(sq->c.cache, sq->cat, key, val, (size_t)n, sq->c.ttl_ms, NULL,
                                    NULL) == 0)
      sq->st.published++;
  }
  j->cb(r, j->ud);
  souk_free(j);
}

/* Ask the fetch function; on refusal answer with what it refused. */
static void to_fetch(market_sq_t *sq, sq_job_t *j) {
  sq->st.fetched++;
  int rc = sq->c.fetch ? sq->c.fetch(sq->c.fetch_ud, j->symbol, fetched_cb, j) : SOUK_ENOTSUP;
  if (rc) {
    market_chain_result_t r = {.err = SOUK_ENOTFOUND,
                               .symbol = j->symbol,
                               .message = "the price providers refused"};
    j->cb(&r, j->ud);
    souk_free(j);
  }
}

static void got_cb(void *ud, int status, const void *val, size_t len) {
  sq_job_t *j = ud;
  market_sq_t *sq = j->sq;
  if (!sq) {
    /* Cancelled: its caller was answered already. */
    souk_free(j);
    return;
  }
  unlink_job(sq, j);
  market_chain_result_t r = {.symbol = j->symbol};
  if (status == SOUK_ECANCELED || sq->cancelled) {
    r.err = SOUK_ECANCELED;
    r.message = "shutting down";
    j->cb(&r, j->ud);
    souk_free(j);
    return;
  }
  int64_t at = 0;
  if (status == 0 && market_sq_decode(val, len, j->symbol, &r.quote, &at) == 0 &&
      sq_now(sq) - at < (int64_t)sq->c.ttl_ms) {
    sq->st.shared_hits++;
    r.fetched_ms = at;
    j->cb(&r, j->ud);
    souk_free(j);
    return;
  }
  to_fetch(sq, j);
}

int market_sq_fetch(void *fud, const char *symbol, market_quote_cb cb, void *ud) {
  market_sq_t *sq = fud;
  if (!sq || !symbol || !cb || strlen(symbol) > MARKET_SYMBOL_MAX) return SOUK_EINVAL;
  if (sq->cancelled) return SOUK_ESTOPPED;
  /* Without Redis the memory backend would only repeat the price cache:
   * straight to the providers, as one process does. */
  if (sq->cat < 0 || !souk_cache_redis_up(sq->c.cache)) {
    sq->st.fetched++;
    return sq->c.fetch ? sq->c.fetch(sq->c.fetch_ud, symbol, cb, ud) : SOUK_ENOTSUP;
  }
  sq_job_t *j = souk_calloc(1, sizeof *j);
  j->sq = sq;
  snprintf(j->symbol, sizeof j->symbol, "%s", symbol);
  j->cb = cb;
  j->ud = ud;
  char key[64];
  snprintf(key, sizeof key, KEY_PREFIX "%s", symbol);
  if (souk_cache_get(sq->c.cache, sq->cat, key, got_cb, j) != 0) {
    souk_free(j);
    sq->st.fetched++;
    return sq->c.fetch ? sq->c.fetch(sq->c.fetch_ud, symbol, cb, ud) : SOUK_ENOTSUP;
  }
  j->next = sq->waiting;
  sq->waiting = j;
  return 0;
}

void market_sq_cancel(market_sq_t *sq) {
  if (!sq) return;
  sq->cancelled = true;
  while (sq->waiting) {
    sq_job_t *j = sq->waiting;
    sq->waiting = j->next;
    /* The cache still owns the job until its reply: orphan it. */
    j->sq = NULL;
    market_chain_result_t r = {.err = SOUK_ECANCELED, .symbol = j->symbol,
                               .message = "shutting down"};
    j->cb(&r, j->ud);
  }
}

void market_sq_free(market_sq_t *sq) {
  if (!sq) return;
  market_sq_cancel(sq);
  souk_free(sq);
}

void market_sq_stats(const market_sq_t *sq, market_sq_stats_t *out) {
  *out = sq ? sq->st : (market_sq_stats_t){0};
}
