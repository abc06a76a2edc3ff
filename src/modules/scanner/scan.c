/* The scanner's engine (scan.h says the rules). */
#include "scan.h"

#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/http.h"
#include "souk/log.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define COMP           "scanner"
#define DEFAULT_BASE   "https://api-futures.kucoin.com"
#define ACTIVE_PATH    "/api/v1/contracts/active"
#define RATELIMIT_BASE 30000u /* one public-pool window */
#define MAX_BODY       (16u << 20)

const char *scanner_source_name(scanner_source_t s) {
  return s == SCANNER_SRC_SIM ? "sim" : s == SCANNER_SRC_FILE ? "file" : "kucoin";
}

void scan_conf_defaults(scan_conf_t *c) {
  memset(c, 0, sizeof *c);
  c->source = SCANNER_SRC_KUCOIN;
  c->sim_seed = 1;
  c->period_ms = 60000;
  c->timeout_ms = 60000;
  c->backoff_max_ms = 300000;
  c->filter.quote = "USDT";
  c->filter.max = 1000;
  c->weights = (scanner_weights_t){{0.4, 0.3, 0.15, 0.15}};
  c->breaker = (souk_breaker_opts_t){.failures = 5, .window_ms = 600000, .open_timeout_ms = 120000};
  c->user_agent = "souk-scanner/1";
  c->register_strategies = true;
}

/* ---- the simulated market ------------------------------------------------ */

typedef struct sim_base {
  const char *base;
  int64_t price_micro, turnover;
  int64_t mult_e9;
} sim_base_t;

/* Rough figures of real contracts, so the simulated list ranks like one. */
static const sim_base_t SIM_BASES[] = {
    {"XBT", 86364000000, 1034643198, 1000000}, {"ETH", 3150250000, 641000000, 10000000},
    {"SOL", 142370000, 291000000, 100000000},  {"XRP", 523100, 186000000, 10000000000},
    {"DOGE", 123450, 150000000, 100000000000}, {"ADA", 451200, 60000000, 10000000000},
    {"AVAX", 27815000, 50000000, 100000000},   {"LINK", 14223000, 40000000, 100000000},
    {"DOT", 6123000, 30000000, 1000000000},    {"TRX", 118020, 25000000, 100000000000},
    {"LTC", 71520000, 30000000, 100000000},    {"BCH", 378400000, 25000000, 10000000},
    {"NEAR", 5412000, 20000000, 1000000000},   {"UNI", 7801000, 18000000, 1000000000},
    {"APT", 8901200, 16000000, 1000000000},    {"ARB", 912300, 15000000, 10000000000},
    {"OP", 1823100, 12000000, 1000000000},     {"ATOM", 6903000, 10000000, 1000000000},
    {"FIL", 4512000, 9000000, 1000000000},     {"INJ", 22810000, 8000000, 100000000},
    {"SUI", 1023400, 8000000, 1000000000},     {"WIF", 2345600, 6000000, 1000000000},
    {"SEI", 412300, 5000000, 10000000000},     {"TIA", 9123000, 5000000, 1000000000},
    {"ETC", 23120000, 4000000, 100000000},     {"XLM", 104500, 4000000, 10000000000},
    {"HBAR", 78900, 3000000, 100000000000},    {"AAVE", 92150000, 3000000, 100000000},
    {"MKR", 2512500000, 2000000, 10000000},    {"RUNE", 4567000, 2000000, 1000000000},
    {"GALA", 26710, 1500000, 1000000000000},   {"SAND", 341200, 1200000, 10000000000},
    {"MANA", 380100, 1000000, 10000000000},    {"AXS", 6712000, 900000, 1000000000},
    {"CRV", 312300, 800000, 10000000000},      {"LDO", 1789000, 700000, 1000000000},
    {"ENS", 21340000, 600000, 100000000},      {"COMP", 51230000, 500000, 100000000},
    {"SNX", 2012000, 400000, 1000000000},      {"ZEC", 24510000, 300000, 100000000},
};
#define SIM_N (sizeof SIM_BASES / sizeof *SIM_BASES)

typedef struct sim {
  uint64_t rng;
  scanner_contract_t c[SIM_N];
  int64_t open_micro[SIM_N];
} sim_t;

static uint64_t sim_next(sim_t *m) {
  /* xorshift64*: seeded, so the same seed gives the same market. */
  uint64_t x = m->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  m->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* A uniform integer in [-r, r]. */
static int64_t sim_pm(sim_t *m, int64_t r) {
  return (int64_t)(sim_next(m) % (uint64_t)(2 * r + 1)) - r;
}

static void sim_init(sim_t *m, uint64_t seed) {
  memset(m, 0, sizeof *m);
  m->rng = seed ? seed : 1;
  for (size_t i = 0; i < SIM_N; i++) {
    scanner_contract_t *c = &m->c[i];
    const sim_base_t *b = &SIM_BASES[i];
    snprintf(c->symbol, sizeof c->symbol, "%sUSDTM", b->base);
    snprintf(c->base, sizeof c->base, "%s", b->base);
    snprintf(c->quote, sizeof c->quote, "USDT");
    c->last_micro = b->price_micro;
    c->multiplier_e9 = b->mult_e9;
    c->turnover = b->turnover / 2 + (int64_t)(sim_next(m) % (uint64_t)b->turnover);
    /* Open interest worth 5-60 % of a day's turnover. */
    double contract_value = (double)b->price_micro / 1e6 * (double)b->mult_e9 / 1e9;
    c->open_interest = (int64_t)((double)c->turnover * (0.05 + (double)(sim_next(m) % 550) / 1000) /
                                 contract_value);
    c->funding_e8 = sim_pm(m, 30000);
    m->open_micro[i] = b->price_micro + sim_pm(m, b->price_micro / 10);
  }
}

/* One step of the random walk: prices up to 1 % either way, funding a
 * little, the day's turnover grows. */
static void sim_step(sim_t *m) {
  for (size_t i = 0; i < SIM_N; i++) {
    scanner_contract_t *c = &m->c[i];
    int64_t step = sim_pm(m, 100); /* in 1/10000 */
    int64_t p = c->last_micro + c->last_micro / 10000 * step;
    /* Five significant digits, like real tick sizes. */
    int64_t tick = 1;
    for (int64_t v = p; v >= 100000; v /= 10)
      tick *= 10;
    p -= p % tick;
    c->last_micro = p > 0 ? p : 1;
    c->mark_micro = c->last_micro;
    c->last_text[0] = '\0';
    c->change_ppm = (c->last_micro - m->open_micro[i]) * 1000000 / m->open_micro[i];
    c->funding_e8 += sim_pm(m, 500);
    c->turnover += c->turnover / 1000 * (int64_t)(sim_next(m) % 3);
    c->funding_in_ms = 28800000 - (int64_t)(sim_next(m) % 28800000);
  }
}

/* ---- the engine ------------------------------------------------------------ */

typedef struct job job_t;

struct scan {
  scan_conf_t c;
  char *base_url, *file, *user_agent, *quote;
  char *file_body;
  size_t file_len;
  scan_done_cb cb;
  void *ud;
  sim_t sim;
  souk_breaker_t *breaker;
  scanner_pool_t pool;
  scanner_health_t health;
  uint32_t consecutive_429;
  uint64_t next_at, backoff_until, started_at;
  souk_http_req_t *req;
  job_t *job; /* parse/rank on the pool */
  bool running;
  scanner_ranked_t *ranked;
  size_t nranked;
  uint64_t ranked_at;
  scan_stats_t st;
  char last_error[160];
  bool strategies;
};

struct job {
  scan_t *s; /* NULL: the engine was freed meanwhile */
  int status;
  char *body;
  size_t len;
  scanner_contract_t *preset; /* the simulated source: contracts already made */
  size_t npreset;
  scanner_filter_t filter;
  scanner_weights_t weights;
  scanner_parsed_t parsed;
  scanner_ranked_t *ranked;
};

static uint64_t now_ms(const scan_t *s) {
  return s->c.clock ? s->c.clock->now_ms(s->c.clock->ud) : souk_sched_now_ms();
}

static uint64_t wall_ms(const scan_t *s) {
  return s->c.clock ? souk_unix_ms() : souk_sched_unix_ms();
}

/* The RESET strategy of "scanner.api": what was learnt about KuCoin may be
 * what is wrong, so forget it and start from a clean slate. */
static void reset_strategy(const souk_error_event_t *ev, void *ud) {
  scan_t *s = ud;
  memset(&s->pool, 0, sizeof s->pool);
  s->consecutive_429 = 0;
  SOUK_WARN(COMP, "reset after %s: forgot the rate-limit pool and the 429 streak", ev->type);
}

static void register_strategies(scan_t *s) {
  souk_recovery_strategy_t bo = {
      .kind = SOUK_RECOVER_BACKOFF, .min_severity = SOUK_SEV_LOW, .backoff_ms = RATELIMIT_BASE};
  souk_recovery_strategy_t rt = {.kind = SOUK_RECOVER_RETRY,
                                 .min_severity = SOUK_SEV_LOW,
                                 .retry = {.base_ms = 2000, .cap_ms = 30000, .max_attempts = 3}};
  souk_recovery_strategy_t rs = {.kind = SOUK_RECOVER_RESET,
                                 .min_severity = SOUK_SEV_HIGH,
                                 .cooldown_ms = 600000,
                                 .fn = reset_strategy,
                                 .ud = s};
  s->strategies = souk_recovery_register("scanner.ratelimit", &bo) == 0 &&
                  souk_recovery_register("scanner.network", &rt) == 0 &&
                  souk_recovery_register("scanner.api", &rs) == 0;
  if (!s->strategies) SOUK_WARN(COMP, "cannot register the scanner's recovery strategies");
}

static void unregister_strategies(scan_t *s) {
  if (!s->strategies) return;
  souk_recovery_unregister("scanner.ratelimit", NULL, NULL);
  souk_recovery_unregister("scanner.network", NULL, NULL);
  souk_recovery_unregister("scanner.api", reset_strategy, s);
  s->strategies = false;
}

static int read_file(const char *path, char **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return SOUK_ENOTFOUND;
  souk_buf_t b;
  souk_buf_init(&b);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < MAX_BODY)
    souk_buf_append(&b, chunk, n);
  bool bad = ferror(f);
  fclose(f);
  if (bad || b.len == 0) {
    souk_buf_free(&b);
    return SOUK_EIO;
  }
  *len = b.len;
  *out = souk_buf_steal(&b);
  return 0;
}

int scan_new(const scan_conf_t *c, scan_done_cb cb, void *ud, scan_t **out) {
  double wsum = 0;
  for (int f = 0; f < SCANNER_NFACTORS; f++) {
    if (!isfinite(c->weights.w[f]) || c->weights.w[f] < 0) return SOUK_EINVAL;
    wsum += c->weights.w[f];
  }
  if (!(wsum > 0) || c->period_ms == 0) return SOUK_EINVAL;
  const char *base = c->base_url && *c->base_url ? c->base_url : DEFAULT_BASE;
  if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) return SOUK_EINVAL;
  scan_t *s = souk_calloc(1, sizeof *s);
  s->c = *c;
  s->base_url = souk_strdup(base);
  size_t bl = strlen(s->base_url);
  while (bl > 0 && s->base_url[bl - 1] == '/')
    s->base_url[--bl] = '\0';
  s->user_agent = souk_strdup(c->user_agent && *c->user_agent ? c->user_agent : "souk-scanner/1");
  s->quote = c->filter.quote && *c->filter.quote ? souk_strdup(c->filter.quote) : NULL;
  s->c.filter.quote = s->quote;
  s->c.base_url = s->base_url;
  s->c.user_agent = s->user_agent;
  s->c.file = NULL;
  if (c->source == SCANNER_SRC_FILE) {
    int rc = c->file ? read_file(c->file, &s->file_body, &s->file_len) : SOUK_EINVAL;
    if (rc) {
      souk_free(s->base_url);
      souk_free(s->user_agent);
      souk_free(s->quote);
      souk_free(s);
      return rc;
    }
  }
  if (c->source == SCANNER_SRC_SIM) sim_init(&s->sim, c->sim_seed);
  s->breaker =
      souk_breaker_new("scanner.kucoin", &c->breaker, c->clock ? c->clock : &souk_clock_sched);
  if (!s->c.http_request || !s->c.http_cancel) {
    s->c.http_request = souk_http_request;
    s->c.http_cancel = souk_http_cancel;
  }
  s->cb = cb;
  s->ud = ud;
  s->next_at = now_ms(s);
  s->st.pool_remaining = s->st.pool_limit = -1;
  if (c->register_strategies) register_strategies(s);
  *out = s;
  return 0;
}

static void job_free(job_t *j) {
  souk_free(j->body);
  souk_free(j->preset);
  scanner_parsed_free(&j->parsed);
  souk_free(j->ranked);
  souk_free(j);
}

void scan_free(scan_t *s) {
  if (!s) return;
  if (s->req) s->c.http_cancel(s->req);
  if (s->job) s->job->s = NULL; /* its done frees it */
  unregister_strategies(s);
  souk_breaker_free(s->breaker);
  souk_free(s->ranked);
  souk_free(s->file_body);
  souk_free(s->base_url);
  souk_free(s->user_agent);
  souk_free(s->quote);
  souk_free(s);
}

/* ---- finishing a scan ---------------------------------------------------- */

static void deliver(scan_t *s, int err, const char *reason, uint64_t dur) {
  scan_report_t r = {.err = err,
                     .reason = reason ? reason : "",
                     .ranked = err ? NULL : s->ranked,
                     .n = err ? 0 : s->nranked,
                     .duration_ms = dur,
                     .scan_no = s->st.scans_ok};
  if (s->cb) s->cb(&r, s->ud);
}

static void resolve_all(void) {
  souk_error_resolved("scanner.ratelimit");
  souk_error_resolved("scanner.network");
  souk_error_resolved("scanner.api");
}

static void succeed(scan_t *s, job_t *j) {
  uint64_t now = now_ms(s);
  uint64_t dur = now - s->started_at;
  if (s->c.source == SCANNER_SRC_KUCOIN) souk_breaker_success(s->breaker);
  s->consecutive_429 = 0;
  resolve_all();
  scanner_health_scan(&s->health, dur, now);
  souk_free(s->ranked);
  s->ranked = j->ranked;
  s->nranked = j->preset ? j->npreset : j->parsed.n;
  j->ranked = NULL;
  s->ranked_at = wall_ms(s);
  s->st.scans_ok++;
  s->st.last_duration_ms = dur;
  s->last_error[0] = '\0';
  s->next_at = s->started_at + s->c.period_ms;
  SOUK_DEBUG(COMP, "scan %" PRIu64 ": %zu contracts in %" PRIu64 " ms", s->st.scans_ok, s->nranked,
             dur);
  deliver(s, 0, NULL, dur);
}

typedef enum fail_kind { FAIL_RATELIMIT, FAIL_NETWORK, FAIL_API } fail_kind_t;

static void scan_fail(scan_t *s, fail_kind_t kind, int code, const char *reason) {
  uint64_t now = now_ms(s);
  uint64_t dur = now - s->started_at;
  scanner_health_error(&s->health, now);
  s->st.errors++;
  snprintf(s->last_error, sizeof s->last_error, "%s", reason);
  souk_breaker_state_t before = souk_breaker_state(s->breaker);
  souk_recovery_advice_t adv = {0};
  switch (kind) {
  case FAIL_RATELIMIT: {
    s->st.rate_limited++;
    /* KuCoin is up: the breaker hears of a success; the backoff handles it. */
    souk_breaker_success(s->breaker);
    souk_error_record("scanner.ratelimit", SOUK_SEV_MEDIUM, SOUK_ERATELIMIT, &adv, "%s", reason);
    uint32_t n = ++s->consecutive_429;
    uint64_t d = adv.backoff_ms ? adv.backoff_ms : RATELIMIT_BASE;
    for (uint32_t k = 1; k < n && d < s->c.backoff_max_ms; k++)
      d *= 2;
    if (d > s->c.backoff_max_ms) d = s->c.backoff_max_ms;
    /* Never before the pool resets, even past the cap. */
    if (s->pool.reset_at_ms > now && s->pool.reset_at_ms - now > d) d = s->pool.reset_at_ms - now;
    s->backoff_until = now + d;
    s->next_at = s->backoff_until;
    SOUK_INFO(COMP,
              "KuCoin rate limit: no request for %" PRIu64 " ms (429 number %" PRIu32 " in a row)",
              d, n);
    break;
  }
  case FAIL_NETWORK:
    s->st.network++;
    souk_breaker_failure(s->breaker);
    souk_error_record("scanner.network", SOUK_SEV_MEDIUM, code, &adv, "%s", reason);
    s->next_at = adv.retry ? now + adv.retry_in_ms : s->started_at + s->c.period_ms;
    break;
  case FAIL_API:
    s->st.api++;
    souk_breaker_failure(s->breaker);
    souk_error_record("scanner.api", SOUK_SEV_HIGH, code, &adv, "%s", reason);
    s->next_at = s->started_at + s->c.period_ms;
    break;
  }
  if (before != SOUK_BREAKER_OPEN && souk_breaker_state(s->breaker) == SOUK_BREAKER_OPEN)
    souk_error_record("scanner.breaker", SOUK_SEV_HIGH, SOUK_EIO, NULL,
                      "KuCoin circuit breaker opened after repeated failures (last: %s)", reason);
  if (s->next_at < now) s->next_at = now;
  deliver(s, code ? code : SOUK_EIO, reason, dur);
}

/* ---- parsing and ranking on the pool -------------------------------------- */

static void job_work(void *ud) {
  job_t *j = ud;
  if (j->preset) {
    j->ranked = souk_calloc(j->npreset ? j->npreset : 1, sizeof *j->ranked);
    scanner_rank(j->preset, j->npreset, &j->weights, j->ranked);
    return;
  }
  scanner_parse_contracts(j->status, j->body, j->len, &j->filter, &j->parsed);
  if (j->parsed.outcome != SCANNER_OK) return;
  j->ranked = souk_calloc(j->parsed.n ? j->parsed.n : 1, sizeof *j->ranked);
  scanner_rank(j->parsed.contracts, j->parsed.n, &j->weights, j->ranked);
}

static void job_done(void *ud, int status) {
  job_t *j = ud;
  scan_t *s = j->s;
  if (!s) {
    job_free(j);
    return;
  }
  s->job = NULL;
  s->running = false;
  if (status) {
    scan_fail(s, FAIL_NETWORK, SOUK_ECANCELED, "the worker pool is shutting down");
  } else if (j->preset || j->parsed.outcome == SCANNER_OK) {
    succeed(s, j);
  } else {
    const char *why = j->parsed.reason;
    switch (j->parsed.outcome) {
    case SCANNER_RATE_LIMITED:
      scan_fail(s, FAIL_RATELIMIT, SOUK_ERATELIMIT, why);
      break;
    case SCANNER_HTTP_ERROR:
      if (j->status >= 500)
        scan_fail(s, FAIL_NETWORK, SOUK_EHTTP, why);
      else
        scan_fail(s, FAIL_API, SOUK_EHTTP, why);
      break;
    default:
      scan_fail(s, FAIL_API, SOUK_EPROTO, why);
      break;
    }
  }
  job_free(j);
}

static void submit(scan_t *s, job_t *j) {
  j->s = s;
  j->filter = s->c.filter;
  j->weights = s->c.weights;
  s->job = j;
  int rc = souk_work_submit(job_work, job_done, j);
  if (rc) {
    s->job = NULL;
    s->running = false;
    job_free(j);
    scan_fail(s, FAIL_NETWORK, rc, "cannot queue the parse on the worker pool");
  }
}

/* ---- requests -------------------------------------------------------------- */

static void http_cb(const souk_http_resp_t *resp, void *ud) {
  scan_t *s = ud;
  s->req = NULL;
  uint64_t now = now_ms(s);
  if (resp->err) {
    s->running = false;
    char why[160];
    snprintf(why, sizeof why, "%s%s%s",
             resp->err == SOUK_ETIMEDOUT ? "timed out" : souk_strerror(resp->err),
             resp->detail && resp->detail[0] ? ": " : "", resp->detail ? resp->detail : "");
    scan_fail(s, FAIL_NETWORK, resp->err, why);
    return;
  }
  scanner_pool_update(&s->pool, souk_http_header(resp, "gw-ratelimit-limit"),
                      souk_http_header(resp, "gw-ratelimit-remaining"),
                      souk_http_header(resp, "gw-ratelimit-reset"), now);
  job_t *j = souk_calloc(1, sizeof *j);
  j->status = resp->status;
  j->len = resp->body_len;
  j->body = souk_malloc(resp->body_len + 1);
  memcpy(j->body, resp->body, resp->body_len);
  j->body[resp->body_len] = '\0';
  submit(s, j);
}

/* Why a request may not go now: 0, or SOUK_ERATELIMIT with *wait set. */
static int gate(scan_t *s, uint64_t now, uint64_t *wait) {
  *wait = 0;
  if (s->c.source != SCANNER_SRC_KUCOIN) return 0;
  if (s->backoff_until > now) {
    *wait = s->backoff_until - now;
    return SOUK_ERATELIMIT;
  }
  uint64_t pw = scanner_pool_wait(&s->pool, SCANNER_ACTIVE_WEIGHT, now);
  if (pw) {
    *wait = pw;
    return SOUK_ERATELIMIT;
  }
  if (souk_breaker_state(s->breaker) == SOUK_BREAKER_OPEN) {
    souk_breaker_stats_t bs;
    souk_breaker_stats(s->breaker, &bs);
    uint64_t until = bs.state_since_ms + s->c.breaker.open_timeout_ms;
    *wait = until > now ? until - now : 1000;
    return SOUK_ERATELIMIT;
  }
  return 0;
}

static void start(scan_t *s) {
  uint64_t now = now_ms(s);
  s->started_at = now;
  s->running = true;
  if (s->c.source == SCANNER_SRC_SIM) {
    sim_step(&s->sim);
    job_t *j = souk_calloc(1, sizeof *j);
    j->npreset = SIM_N;
    j->preset = souk_calloc(SIM_N, sizeof *j->preset);
    memcpy(j->preset, s->sim.c, sizeof s->sim.c);
    submit(s, j);
    return;
  }
  if (s->c.source == SCANNER_SRC_FILE) {
    job_t *j = souk_calloc(1, sizeof *j);
    j->status = 200;
    j->len = s->file_len;
    j->body = souk_malloc(s->file_len + 1);
    memcpy(j->body, s->file_body, s->file_len);
    j->body[s->file_len] = '\0';
    submit(s, j);
    return;
  }
  char url[600], ua[200];
  snprintf(url, sizeof url, "%s%s", s->base_url, ACTIVE_PATH);
  snprintf(ua, sizeof ua, "User-Agent: %s", s->user_agent);
  const char *hdrs[] = {ua, "Accept: application/json"};
  souk_http_opts_t o = {.url = url,
                        .headers = hdrs,
                        .nheaders = 2,
                        .timeout_ms = s->c.timeout_ms,
                        .max_response_bytes = MAX_BODY};
  scanner_pool_spend(&s->pool, SCANNER_ACTIVE_WEIGHT, now);
  s->st.requests++;
  SOUK_DEBUG(COMP, "request %" PRIu64 " sent to KuCoin", s->st.requests);
  int rc = s->c.http_request(&o, http_cb, s, &s->req);
  if (rc) {
    s->running = false;
    scan_fail(s, FAIL_NETWORK, rc, "cannot start the request");
  }
}

/* May a scan start now?  Counts why not. */
static bool may_start(scan_t *s, uint64_t now, uint64_t *wait) {
  int rc = gate(s, now, wait);
  if (rc) {
    if (s->backoff_until > now)
      s->st.skipped_backoff++;
    else if (souk_breaker_state(s->breaker) == SOUK_BREAKER_OPEN)
      s->st.skipped_breaker++;
    else
      s->st.pool_waits++;
    s->next_at = now + *wait;
    return false;
  }
  /* Last, because a half-open breaker lets exactly one probe through and
   * expects to hear how it went. */
  if (s->c.source == SCANNER_SRC_KUCOIN && !souk_breaker_allow(s->breaker)) {
    s->st.skipped_breaker++;
    *wait = 1000;
    s->next_at = now + *wait;
    return false;
  }
  return true;
}

bool scan_tick(scan_t *s) {
  if (s->running) return false;
  uint64_t now = now_ms(s), wait;
  if (now < s->next_at) return false;
  if (!may_start(s, now, &wait)) return false;
  start(s);
  return true;
}

int scan_now(scan_t *s, uint64_t *wait_ms) {
  if (s->running) return SOUK_EBUSY;
  uint64_t now = now_ms(s), wait = 0;
  if (!may_start(s, now, &wait)) {
    if (wait_ms) *wait_ms = wait;
    return SOUK_ERATELIMIT;
  }
  start(s);
  return 0;
}

const scanner_ranked_t *scan_ranked(const scan_t *s, size_t *n, uint64_t *at_unix_ms) {
  *n = s->nranked;
  if (at_unix_ms) *at_unix_ms = s->ranked_at;
  return s->ranked;
}

void scan_health(scan_t *s, souk_health_result_t *out) {
  scanner_health_eval(&s->health, now_ms(s), souk_breaker_state(s->breaker) == SOUK_BREAKER_OPEN,
                      out);
}

void scan_get_stats(scan_t *s, scan_stats_t *out) {
  uint64_t now = now_ms(s);
  *out = s->st;
  out->avg_duration_ms = scanner_health_avg_ms(&s->health);
  out->errors_15m = scanner_health_errors(&s->health, now);
  out->pool_remaining = s->pool.known ? s->pool.remaining : -1;
  out->pool_limit = s->pool.known ? s->pool.limit : -1;
  out->backoff_left_ms = s->backoff_until > now ? s->backoff_until - now : 0;
  out->next_in_ms = s->next_at > now ? s->next_at - now : 0;
  out->running = s->running;
  out->breaker = souk_breaker_state(s->breaker);
  out->last_error = s->last_error;
  out->source = s->c.source;
}

scanner_source_t scan_source(const scan_t *s) { return s->c.source; }
