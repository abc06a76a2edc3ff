/* The price provider chain (see providers.h for the rules).
 *
 * A lookup is a small state machine: pick the next provider that is
 * enabled, not backing off, within budget and allowed by its breaker;
 * reserve the next global request slot; wait for it on a uv timer; send;
 * parse; either finish or move on.  Budgets and backoff are measured on the
 * injectable clock so tests can move time without sleeping; only the wait
 * for a request slot is a real timer (its length is computed on the
 * injectable clock, so a test clock that never moves makes it at most
 * min_interval_ms). */
#include "providers.h"

#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/http.h"
#include "souk/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define COMP "market"

static const char *const market_prov_names[MARKET_PROV_COUNT] = {"finnhub", "polygon", "alpaca",
                                                                 "yahoo"};
static const char *const market_prov_urls[MARKET_PROV_COUNT] = {
    "https://finnhub.io", "https://api.polygon.io", "https://data.alpaca.markets",
    "https://query1.finance.yahoo.com"};

const char *market_provider_name(market_provider_id_t id) {
  return (unsigned)id < MARKET_PROV_COUNT ? market_prov_names[id] : "?";
}

static const souk_http_client_t process_http = {souk_http_request, souk_http_cancel};

void market_chain_conf_defaults(market_chain_conf_t *c) {
  memset(c, 0, sizeof *c);
  c->http = &process_http;
  for (int i = 0; i < MARKET_PROV_COUNT; i++)
    c->prov[i].enabled = i != MARKET_PROV_YAHOO;
  c->prov[MARKET_PROV_FINNHUB].budget[0] = (market_budget_t){60, 60000};
  c->prov[MARKET_PROV_FINNHUB].budget[1] = (market_budget_t){30, 1000};
  c->prov[MARKET_PROV_POLYGON].budget[0] = (market_budget_t){5, 60000};
  c->prov[MARKET_PROV_ALPACA].budget[0] = (market_budget_t){200, 60000};
  c->prov[MARKET_PROV_YAHOO].budget[0] = (market_budget_t){30, 60000};
  c->alpaca_feed = "iex";
  c->min_interval_ms = 2000;
  c->max_wait_ms = 10000;
  c->timeout_ms = 5000;
  c->backoff_base_ms = 5000;
  c->backoff_cap_ms = 600000;
  c->breaker = (souk_breaker_opts_t){.failures = 5, .window_ms = 60000, .open_timeout_ms = 60000};
  c->user_agent = "souk-market/1";
}

/* ---- state ------------------------------------------------------------- */

/* Send times of the last `limit` requests, oldest at head. */
typedef struct ring {
  market_budget_t b;
  uint64_t *t;
  uint32_t head, count;
} ring_t;

/* One key of a provider, with what the provider counts per key: its
 * request budget and its 429 backoff. */
typedef struct prov_key {
  char *key, *secret; /* NULL for Yahoo's one keyless "key" */
  ring_t budget[2];
  uint64_t backoff_until;
  uint32_t consecutive_429;
} prov_key_t;

typedef struct prov {
  market_provider_id_t id;
  bool enabled;
  char *base;
  prov_key_t keys[MARKET_KEYS_MAX];
  size_t nkeys; /* at least 1 once the chain is made */
  size_t cur;   /* the key in use */
  souk_breaker_t *breaker;
  market_provider_stats_t st;
} prov_t;

typedef struct lookup lookup_t;

struct market_chain {
  prov_t prov[MARKET_PROV_COUNT];
  char *alpaca_feed, *user_agent;
  bool polygon_last_trade;
  uint64_t min_interval_ms, max_wait_ms, backoff_base_ms, backoff_cap_ms, max_age_ms;
  uint32_t timeout_ms;
  const souk_clock_t *clock, *wall;
  const souk_http_client_t *http;
  uint64_t next_slot; /* when the next provider request may be sent */
  lookup_t *lookups;  /* live lookups, for cancellation */
};

struct lookup {
  market_chain_t *ch;
  lookup_t *prev, *next;
  char symbol[MARKET_SYMBOL_MAX + 1];
  market_quote_cb cb;
  void *ud;
  int idx;    /* provider being tried or to try next */
  size_t key; /* the key of prov[idx] being asked */
  souk_http_req_t *req;
  uv_timer_t timer;
  bool sending; /* the timer, when it fires, sends to prov[idx] (else it finishes) */
  bool done;    /* the callback ran */
  int err;
  market_quote_t quote;
  char reasons[MARKET_PROV_COUNT][128];
  bool has_reason[MARKET_PROV_COUNT];
};

static uint64_t now_ms(const market_chain_t *ch) {
  return ch->clock ? ch->clock->now_ms(ch->clock->ud) : souk_now_ms();
}

static uint64_t wall_ms(const market_chain_t *ch) {
  return ch->wall ? ch->wall->now_ms(ch->wall->ud) : souk_unix_ms();
}

static bool ring_allows(const ring_t *r, uint64_t now) {
  if (r->b.limit == 0 || r->count < r->b.limit) return true;
  return r->t[r->head] + r->b.window_ms <= now;
}

static void ring_add(ring_t *r, uint64_t t) {
  if (r->b.limit == 0) return;
  if (r->count < r->b.limit) {
    r->t[(r->head + r->count) % r->b.limit] = t;
    r->count++;
  } else {
    r->t[r->head] = t;
    r->head = (r->head + 1) % r->b.limit;
  }
}

/* ---- chain ------------------------------------------------------------- */

static bool url_ok(const char *u) {
  return !strncmp(u, "http://", 7) || !strncmp(u, "https://", 8);
}

int market_key_list(const char *s, char out[MARKET_KEYS_MAX][256], size_t *n) {
  *n = 0;
  if (!s) return 0;
  while (*s == ' ')
    s++;
  if (!*s) return 0;
  for (;;) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    while (len > 0 && s[len - 1] == ' ')
      len--;
    if (len == 0 || len > 255 || *n == MARKET_KEYS_MAX) return SOUK_EINVAL;
    memcpy(out[*n], s, len);
    out[(*n)++][len] = '\0';
    if (!e) return 0;
    for (s = e + 1; *s == ' '; s++) {
    }
  }
}

int market_chain_new(const market_chain_conf_t *c, market_chain_t **out) {
  static char keys[MARKET_PROV_COUNT][MARKET_KEYS_MAX][256],
      secrets[MARKET_PROV_COUNT][MARKET_KEYS_MAX][256];
  size_t nkeys[MARKET_PROV_COUNT], nsecrets[MARKET_PROV_COUNT];
  for (int i = 0; i < MARKET_PROV_COUNT; i++) {
    const market_provider_conf_t *pc = &c->prov[i];
    if (pc->base_url && !url_ok(pc->base_url)) return SOUK_EINVAL;
    for (int k = 0; k < 2; k++)
      if (pc->budget[k].limit && !pc->budget[k].window_ms) return SOUK_EINVAL;
    if (market_key_list(pc->key, keys[i], &nkeys[i]) ||
        market_key_list(pc->secret, secrets[i], &nsecrets[i]))
      return SOUK_EINVAL;
  }
  market_chain_t *ch = souk_calloc(1, sizeof *ch);
  ch->alpaca_feed = souk_strdup(c->alpaca_feed && *c->alpaca_feed ? c->alpaca_feed : "iex");
  ch->user_agent = souk_strdup(c->user_agent && *c->user_agent ? c->user_agent : "souk-market/1");
  ch->polygon_last_trade = c->polygon_last_trade;
  ch->min_interval_ms = c->min_interval_ms;
  ch->max_wait_ms = c->max_wait_ms;
  ch->timeout_ms = c->timeout_ms ? c->timeout_ms : 5000;
  ch->backoff_base_ms = c->backoff_base_ms ? c->backoff_base_ms : 1000;
  ch->backoff_cap_ms = c->backoff_cap_ms ? c->backoff_cap_ms : 600000;
  ch->max_age_ms = c->max_age_ms;
  ch->clock = c->clock;
  ch->wall = c->wall;
  ch->http = c->http ? c->http : &process_http;
  for (int i = 0; i < MARKET_PROV_COUNT; i++) {
    const market_provider_conf_t *pc = &c->prov[i];
    prov_t *p = &ch->prov[i];
    p->id = (market_provider_id_t)i;
    p->base = souk_strdup(pc->base_url ? pc->base_url : market_prov_urls[i]);
    size_t bl = strlen(p->base);
    while (bl > 0 && p->base[bl - 1] == '/')
      p->base[--bl] = '\0';
    /* Yahoo has no key: one keyless entry carries its budget and backoff.
     * Alpaca's ids and secrets pair in order. */
    size_t n = p->id == MARKET_PROV_YAHOO                              ? 1
               : p->id == MARKET_PROV_ALPACA && nsecrets[i] < nkeys[i] ? nsecrets[i]
                                                                       : nkeys[i];
    for (size_t k = 0; k < n; k++) {
      prov_key_t *pk = &p->keys[k];
      if (p->id != MARKET_PROV_YAHOO) pk->key = souk_strdup(keys[i][k]);
      if (p->id == MARKET_PROV_ALPACA) pk->secret = souk_strdup(secrets[i][k]);
      if (pk->key) souk_log_add_secret(pk->key);
      if (pk->secret) souk_log_add_secret(pk->secret);
      for (int b = 0; b < 2; b++) {
        pk->budget[b].b = pc->budget[b];
        if (pc->budget[b].limit)
          pk->budget[b].t = souk_calloc(pc->budget[b].limit, sizeof *pk->budget[b].t);
      }
    }
    p->nkeys = n;
    p->enabled = pc->enabled && n > 0;
    char name[32];
    snprintf(name, sizeof name, "market.%s", market_prov_names[i]);
    p->breaker = souk_breaker_new(name, &c->breaker, c->clock);
    p->st.enabled = p->enabled;
    p->st.keys = (uint32_t)n;
  }
  memset(keys, 0, sizeof keys);
  memset(secrets, 0, sizeof secrets);
  *out = ch;
  return 0;
}

bool market_chain_enabled(const market_chain_t *ch, market_provider_id_t id) {
  return (unsigned)id < MARKET_PROV_COUNT && ch->prov[id].enabled;
}

int market_chain_stats(market_chain_t *ch, market_provider_id_t id, market_provider_stats_t *out) {
  if ((unsigned)id >= MARKET_PROV_COUNT) return SOUK_EINVAL;
  prov_t *p = &ch->prov[id];
  *out = p->st;
  uint64_t now = now_ms(ch);
  /* Until some key may be asked again: 0 as soon as one may. */
  out->backoff_left_ms = 0;
  for (size_t k = 0; k < p->nkeys; k++) {
    uint64_t left = p->keys[k].backoff_until > now ? p->keys[k].backoff_until - now : 0;
    if (k == 0 || left < out->backoff_left_ms) out->backoff_left_ms = left;
  }
  out->key_in_use = (uint32_t)p->cur;
  out->consecutive_429 = p->nkeys ? p->keys[p->cur].consecutive_429 : 0;
  out->breaker = souk_breaker_state(p->breaker);
  return 0;
}

/* ---- lookups ----------------------------------------------------------- */

static void lookup_closed_cb(uv_handle_t *h) { souk_free(h->data); }

static void unlink_lookup(lookup_t *l) {
  market_chain_t *ch = l->ch;
  if (!ch) return;
  if (l->prev)
    l->prev->next = l->next;
  else
    ch->lookups = l->next;
  if (l->next) l->next->prev = l->prev;
  l->prev = l->next = NULL;
  l->ch = NULL;
}

/* Run the user's callback once, then release the lookup. */
static void deliver(lookup_t *l) {
  if (l->done) return;
  l->done = true;
  market_chain_result_t r;
  memset(&r, 0, sizeof r);
  r.err = l->err;
  r.symbol = l->symbol;
  if (l->err == 0) r.quote = l->quote;
  char msg[700];
  size_t off = 0;
  msg[0] = '\0';
  for (int i = 0; i < MARKET_PROV_COUNT; i++) {
    if (!l->has_reason[i]) continue;
    r.reasons[i] = l->reasons[i];
    if (l->err != 0 && off < sizeof msg) {
      int n = snprintf(msg + off, sizeof msg - off, "%s%s: %s", off ? "; " : "",
                       market_prov_names[i], l->reasons[i]);
      if (n > 0) off += (size_t)n;
    }
  }
  char full[800];
  if (l->err == SOUK_ECANCELED)
    snprintf(full, sizeof full, "lookup of %s cancelled", l->symbol);
  else if (l->err != 0)
    snprintf(full, sizeof full, "no provider could price %s (%s)", l->symbol,
             off ? msg : "no provider configured");
  else
    full[0] = '\0';
  r.message = l->err ? full : NULL;
  unlink_lookup(l);
  l->cb(&r, l->ud);
  uv_close((uv_handle_t *)&l->timer, lookup_closed_cb);
}

static void reason(lookup_t *l, int i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void reason(lookup_t *l, int i, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(l->reasons[i], sizeof l->reasons[i], fmt, ap);
  va_end(ap);
  l->has_reason[i] = true;
}

static void timer_cb(uv_timer_t *t);
static void advance(lookup_t *l);

/* Finish on the next loop turn, so the callback never runs inside
 * market_chain_quote() and the stack stays shallow. */
static void finish(lookup_t *l, int err) {
  l->err = err;
  l->sending = false;
  uv_timer_start(&l->timer, timer_cb, 0, 0);
}

static void backoff_after_429(market_chain_t *ch, prov_t *p, size_t key, int64_t retry_after_s) {
  prov_key_t *pk = &p->keys[key];
  uint32_t n = ++pk->consecutive_429;
  uint64_t d = ch->backoff_base_ms;
  for (uint32_t k = 1; k < n && d < ch->backoff_cap_ms; k++)
    d *= 2;
  if (d > ch->backoff_cap_ms) d = ch->backoff_cap_ms;
  /* Never earlier than the server asked, even past the cap. */
  if (retry_after_s >= 0 && (uint64_t)retry_after_s * 1000 > d) d = (uint64_t)retry_after_s * 1000;
  pk->backoff_until = now_ms(ch) + d;
  if (p->nkeys > 1)
    SOUK_WARN(COMP, "%s answered 429 to key %zu of %zu: that key backs off for %llu ms",
              market_prov_names[p->id], key + 1, p->nkeys, (unsigned long long)d);
  else
    SOUK_WARN(COMP, "%s answered 429: backing off for %llu ms", market_prov_names[p->id],
              (unsigned long long)d);
}

/* What keeps a key from being asked now. */
typedef enum key_state { KEY_OK, KEY_BACKOFF, KEY_BUDGET } key_state_t;

static key_state_t key_state(const prov_key_t *pk, uint64_t now, int *spent) {
  if (pk->backoff_until > now) return KEY_BACKOFF;
  for (int b = 0; b < 2; b++)
    if (!ring_allows(&pk->budget[b], now)) {
      *spent = b;
      return KEY_BUDGET;
    }
  return KEY_OK;
}

/* The key of p to ask now: the one in use while it may be asked, else the
 * next one that may, in turn; -1 when none may, with the reason in l. */
static int pick_key(prov_t *p, lookup_t *l, int i, uint64_t now) {
  int spent = 0, spent_key = -1;
  uint64_t least = UINT64_MAX;
  for (size_t t = 0; t < p->nkeys; t++) {
    size_t k = (p->cur + t) % p->nkeys;
    int b = 0;
    key_state_t s = key_state(&p->keys[k], now, &b);
    if (s == KEY_OK) return (int)k;
    if (s == KEY_BUDGET && spent_key < 0) {
      spent_key = (int)k;
      spent = b;
    }
    if (s == KEY_BACKOFF && p->keys[k].backoff_until - now < least)
      least = p->keys[k].backoff_until - now;
  }
  char all[32] = "";
  if (p->nkeys > 1) snprintf(all, sizeof all, "all %zu keys: ", p->nkeys);
  if (spent_key >= 0) {
    p->st.skipped_budget++;
    const ring_t *r = &p->keys[spent_key].budget[spent];
    reason(l, i, "%srequest budget spent (%u per %llu ms)", all, r->b.limit,
           (unsigned long long)r->b.window_ms);
  } else {
    p->st.skipped_backoff++;
    reason(l, i, "%sbacking off after 429 (%llu ms left)", all, (unsigned long long)least);
  }
  return -1;
}

/* Yahoo spells share classes with a dash: BRK.B is BRK-B there. */
static void yahoo_symbol(const char *sym, char out[MARKET_SYMBOL_MAX + 1]) {
  size_t i = 0;
  for (; sym[i] && i < MARKET_SYMBOL_MAX; i++)
    out[i] = sym[i] == '.' ? '-' : sym[i];
  out[i] = '\0';
}

static void http_cb(const souk_http_resp_t *resp, void *ud) {
  lookup_t *l = ud;
  market_chain_t *ch = l->ch;
  prov_t *p = &ch->prov[l->idx];
  l->req = NULL;
  if (resp->err) {
    p->st.errors++;
    souk_breaker_failure(p->breaker);
    reason(l, l->idx, "%s", resp->err == SOUK_ETIMEDOUT ? "timed out" : souk_strerror(resp->err));
    SOUK_DEBUG(COMP, "%s %s: %s", market_prov_names[p->id], l->symbol, souk_strerror(resp->err));
    l->idx++;
    advance(l);
    return;
  }
  market_parsed_t r;
  const char *ra = souk_http_header(resp, "retry-after");
  switch (p->id) {
  case MARKET_PROV_FINNHUB:
    market_parse_finnhub(l->symbol, resp->status, ra, resp->body, resp->body_len, &r);
    break;
  case MARKET_PROV_POLYGON:
    if (ch->polygon_last_trade)
      market_parse_polygon_last(l->symbol, resp->status, ra, resp->body, resp->body_len, &r);
    else
      market_parse_polygon_prev(l->symbol, resp->status, ra, resp->body, resp->body_len, &r);
    break;
  case MARKET_PROV_ALPACA:
    market_parse_alpaca(l->symbol, resp->status, ra, resp->body, resp->body_len, &r);
    break;
  default: {
    char ysym[MARKET_SYMBOL_MAX + 1];
    yahoo_symbol(l->symbol, ysym);
    market_parse_yahoo(ysym, resp->status, ra, resp->body, resp->body_len, &r);
    snprintf(r.quote.symbol, sizeof r.quote.symbol, "%s", l->symbol);
    break;
  }
  }
  if (r.outcome == MARKET_OK && ch->max_age_ms && r.quote.quote_time_ms > 0) {
    uint64_t w = wall_ms(ch);
    if (w > (uint64_t)r.quote.quote_time_ms &&
        w - (uint64_t)r.quote.quote_time_ms > ch->max_age_ms) {
      r.outcome = MARKET_NO_DATA;
      snprintf(r.reason, sizeof r.reason, "stale quote (%llu s old)",
               (unsigned long long)((w - (uint64_t)r.quote.quote_time_ms) / 1000));
    }
  }
  switch (r.outcome) {
  case MARKET_OK:
    p->st.ok++;
    p->keys[l->key].consecutive_429 = 0;
    l->has_reason[l->idx] = false; /* an earlier key's 429 is not why */
    souk_breaker_success(p->breaker);
    l->quote = r.quote;
    finish(l, 0);
    return;
  case MARKET_NO_DATA:
    p->st.nodata++;
    p->keys[l->key].consecutive_429 = 0;
    souk_breaker_success(p->breaker);
    reason(l, l->idx, "no data (%s)", r.reason);
    break;
  case MARKET_RATE_LIMITED: {
    p->st.rate_limited++;
    souk_breaker_success(p->breaker); /* it is up; the backoff handles the 429 */
    backoff_after_429(ch, p, l->key, r.retry_after_s);
    if (resp->status == 429)
      reason(l, l->idx, "rate limited (429%s)", r.retry_after_s >= 0 ? ", Retry-After" : "");
    else
      reason(l, l->idx, "rate limited (quota answer, HTTP %d)", resp->status);
    /* That key is spent: the provider again with its next key, if one may
     * be asked now (the backoff just set makes every retry use another). */
    int b = 0;
    for (size_t t = 1; t < p->nkeys; t++)
      if (key_state(&p->keys[(l->key + t) % p->nkeys], now_ms(ch), &b) == KEY_OK) {
        advance(l);
        return;
      }
    break;
  }
  case MARKET_AUTH:
    p->st.errors++;
    souk_breaker_failure(p->breaker);
    SOUK_WARN(COMP, "%s refused the key: %s", market_prov_names[p->id], r.reason);
    reason(l, l->idx, "auth failed (%d)", resp->status);
    break;
  default:
    p->st.errors++;
    souk_breaker_failure(p->breaker);
    reason(l, l->idx, "%s", r.reason);
    break;
  }
  l->idx++;
  advance(l);
}

static void send_request(lookup_t *l) {
  market_chain_t *ch = l->ch;
  prov_t *p = &ch->prov[l->idx];
  const prov_key_t *pk = &p->keys[l->key];
  char url[512], h1[300], h2[300], ua[160];
  const char *hdrs[3];
  size_t nh = 0;
  snprintf(ua, sizeof ua, "User-Agent: %s", ch->user_agent);
  hdrs[nh++] = ua;
  switch (p->id) {
  case MARKET_PROV_FINNHUB:
    snprintf(url, sizeof url, "%s/api/v1/quote?symbol=%s", p->base, l->symbol);
    snprintf(h1, sizeof h1, "X-Finnhub-Token: %s", pk->key);
    hdrs[nh++] = h1;
    break;
  case MARKET_PROV_POLYGON:
    if (ch->polygon_last_trade)
      snprintf(url, sizeof url, "%s/v2/last/trade/%s", p->base, l->symbol);
    else
      snprintf(url, sizeof url, "%s/v2/aggs/ticker/%s/prev?adjusted=true", p->base, l->symbol);
    snprintf(h1, sizeof h1, "Authorization: Bearer %s", pk->key);
    hdrs[nh++] = h1;
    break;
  case MARKET_PROV_ALPACA:
    snprintf(url, sizeof url, "%s/v2/stocks/trades/latest?symbols=%s&feed=%s", p->base, l->symbol,
             ch->alpaca_feed);
    snprintf(h1, sizeof h1, "APCA-API-KEY-ID: %s", pk->key);
    snprintf(h2, sizeof h2, "APCA-API-SECRET-KEY: %s", pk->secret);
    hdrs[nh++] = h1;
    hdrs[nh++] = h2;
    break;
  default: {
    char ysym[MARKET_SYMBOL_MAX + 1];
    yahoo_symbol(l->symbol, ysym);
    snprintf(url, sizeof url, "%s/v8/finance/chart/%s?interval=1d&range=1d", p->base, ysym);
    break;
  }
  }
  souk_http_opts_t o = {.url = url,
                        .headers = hdrs,
                        .nheaders = nh,
                        .timeout_ms = ch->timeout_ms,
                        .max_response_bytes = 1 << 20};
  p->st.requests++;
  int rc = ch->http->request(&o, http_cb, l, &l->req);
  if (rc != 0) {
    p->st.errors++;
    souk_breaker_failure(p->breaker);
    reason(l, l->idx, "request failed: %s", souk_strerror(rc));
    l->idx++;
    advance(l);
  }
}

static void timer_cb(uv_timer_t *t) {
  lookup_t *l = t->data;
  if (l->sending) {
    l->sending = false;
    send_request(l);
  } else {
    deliver(l);
  }
}

/* Pick the next provider that may be asked now and send to it (after the
 * global interval), or finish when none is left. */
static void advance(lookup_t *l) {
  market_chain_t *ch = l->ch;
  for (; l->idx < MARKET_PROV_COUNT; l->idx++) {
    int i = l->idx;
    prov_t *p = &ch->prov[i];
    if (!p->enabled) continue;
    uint64_t now = now_ms(ch);
    int key = pick_key(p, l, i, now);
    if (key < 0) continue;
    uint64_t slot = ch->next_slot > now ? ch->next_slot : now;
    uint64_t wait = slot - now;
    if (wait > ch->max_wait_ms) {
      p->st.skipped_busy++;
      reason(l, i, "busy (next request slot in %llu ms)", (unsigned long long)wait);
      continue;
    }
    if (!souk_breaker_allow(p->breaker)) {
      p->st.skipped_breaker++;
      reason(l, i, "circuit open");
      continue;
    }
    ch->next_slot = slot + ch->min_interval_ms;
    prov_key_t *pk = &p->keys[key];
    for (int k = 0; k < 2; k++)
      ring_add(&pk->budget[k], slot);
    if ((size_t)key != p->cur) {
      p->st.rotations++;
      SOUK_INFO(COMP, "%s: key %zu of %zu is out for now; using key %d", market_prov_names[p->id],
                p->cur + 1, p->nkeys, key + 1);
      p->cur = (size_t)key;
    }
    l->key = (size_t)key;
    if (wait == 0) {
      send_request(l);
    } else {
      l->sending = true;
      uv_timer_start(&l->timer, timer_cb, wait, 0);
    }
    return;
  }
  finish(l, SOUK_ENOTFOUND);
}

int market_chain_quote(market_chain_t *ch, const char *symbol, market_quote_cb cb, void *ud) {
  if (!ch || !cb || !market_symbol_valid(symbol)) return SOUK_EINVAL;
  lookup_t *l = souk_calloc(1, sizeof *l);
  l->ch = ch;
  snprintf(l->symbol, sizeof l->symbol, "%s", symbol);
  l->cb = cb;
  l->ud = ud;
  uv_timer_init(souk_loop(), &l->timer);
  l->timer.data = l;
  l->next = ch->lookups;
  if (ch->lookups) ch->lookups->prev = l;
  ch->lookups = l;
  for (int i = 0; i < MARKET_PROV_COUNT; i++)
    if (!ch->prov[i].enabled) reason(l, i, "not configured");
  /* advance() may send at once (the answer comes later anyway) and
   * finishes through a zero timer, so cb never runs from here. */
  advance(l);
  return 0;
}

void market_chain_free(market_chain_t *ch) {
  if (!ch) return;
  while (ch->lookups) {
    lookup_t *l = ch->lookups;
    if (l->req) {
      ch->http->cancel(l->req);
      l->req = NULL;
    }
    uv_timer_stop(&l->timer);
    l->err = SOUK_ECANCELED;
    deliver(l); /* unlinks l */
  }
  for (int i = 0; i < MARKET_PROV_COUNT; i++) {
    prov_t *p = &ch->prov[i];
    for (size_t k = 0; k < p->nkeys; k++) {
      souk_free(p->keys[k].key);
      souk_free(p->keys[k].secret);
      for (int b = 0; b < 2; b++)
        souk_free(p->keys[k].budget[b].t);
    }
    souk_free(p->base);
    souk_breaker_free(p->breaker);
  }
  souk_free(ch->alpaca_feed);
  souk_free(ch->user_agent);
  souk_free(ch);
}
