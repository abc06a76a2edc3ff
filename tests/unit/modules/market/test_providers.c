/* The price provider chain against tests/fakes/fake_prices.py on loopback:
 * each provider's request and auth, fall-through, 429 backoff honouring
 * Retry-After, circuit breakers opening and closing, timeouts, budgets,
 * the global request interval, stale quotes and cancellation.  Budgets,
 * backoff and breakers run on an injected clock, so no test sleeps for
 * them. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */
#include "modules/market/price_hours.c"
#include "modules/market/price_parse.c"
#include "modules/market/providers.c"
#include "../../net/pyspawn.h"
#include "core/log.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "souk/http.h"
#include "souk/json.h"
#include "souk/log.h"
#include "souk/loop.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FH_TOKEN  "fh-test-token-0001"
#define PG_KEY    "pg-test-key-0002"
#define AP_ID     "PKTEST00000000000003"
#define AP_SECRET "alpaca-test-secret-0004"
/* Second keys: the fake accepts both of each. */
#define FH_TOKEN2  "fh-test-token-0009"
#define AP_ID2     "PKTEST00000000000008"
#define AP_SECRET2 "alpaca-test-secret-0008"

static const char FAKE_PY[] =
    "import runpy, sys\n"
    "sys.argv = ['fake_prices.py', '--port', '0', '--print-port', '--log-level', 'WARNING',\n"
    "            '--finnhub-token', 'fh-test-token-0001,fh-test-token-0009',\n"
    "            '--alpaca-key-id', 'PKTEST00000000000003,PKTEST00000000000008',\n"
    "            '--alpaca-secret', 'alpaca-test-secret-0004,alpaca-test-secret-0008']\n"
    "runpy.run_path('" SOUK_SOURCE_DIR "/tests/fakes/fake_prices.py', run_name='__main__')\n";

static pyserver_t srv;
static bool have_fake;
static char base[64];

/* ---- the injected clock ------------------------------------------------ */

static uint64_t fake_now;
static uint64_t fake_now_ms(void *ud) {
  (void)ud;
  return fake_now;
}
static const souk_clock_t fclock = {fake_now_ms, NULL};

/* ---- talking to the fake's control API --------------------------------- */

typedef struct ctl {
  int done, status;
  char *body;
} ctl_t;

static void ctl_cb(const souk_http_resp_t *r, void *ud) {
  ctl_t *c = ud;
  c->status = r->err ? r->err : r->status;
  c->body = strdup(r->body);
  c->done = 1;
}

static char *ctl(const char *path, const char *json) {
  char url[256];
  snprintf(url, sizeof url, "%s%s", base, path);
  const char *h[] = {"Content-Type: application/json"};
  souk_http_opts_t o = {.method = json ? "POST" : "GET",
                        .url = url,
                        .headers = h,
                        .nheaders = 1,
                        .body = json,
                        .body_len = json ? strlen(json) : 0,
                        .timeout_ms = 5000};
  ctl_t c = {0};
  assert_int_equal(souk_http_request(&o, ctl_cb, &c, NULL), 0);
  while (!c.done)
    uv_run(souk_loop(), UV_RUN_ONCE);
  if (c.status != 200) fail_msg("control %s: %d %s", path, c.status, c.body);
  return c.body;
}

static void ctl_post(const char *path, const char *json) { free(ctl(path, json)); }

/* Requests the fake received for provider since the last reset, and how
 * many of them failed its auth check. */
static int fake_count(const char *provider, int *bad_auth) {
  char *b = ctl("/_fake/requests", NULL);
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, b, strlen(b)), 0);
  int arr = souk_json_get(&j, 0, "requests"), n = 0;
  if (bad_auth) *bad_auth = 0;
  for (size_t i = 0; i < souk_json_count(&j, arr); i++) {
    int e = souk_json_at(&j, arr, i);
    if (!souk_json_streq(&j, souk_json_get(&j, e, "provider"), provider)) continue;
    n++;
    if (bad_auth && !souk_json_streq(&j, souk_json_get(&j, e, "auth"), "ok")) (*bad_auth)++;
    /* Keys travel in headers, never in a URL that could end up in a log. */
    char path[256];
    souk_json_str(&j, souk_json_get(&j, e, "path"), path, sizeof path);
    assert_null(strstr(path, "token="));
    assert_null(strstr(path, "apiKey="));
  }
  souk_json_free(&j);
  free(b);
  return n;
}

/* The keys the fake's requests to provider carried, in order, joined
 * with spaces into out. */
static void fake_keys(const char *provider, char *out, size_t cap) {
  char *b = ctl("/_fake/requests", NULL);
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, b, strlen(b)), 0);
  int arr = souk_json_get(&j, 0, "requests");
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < souk_json_count(&j, arr); i++) {
    int e = souk_json_at(&j, arr, i);
    if (!souk_json_streq(&j, souk_json_get(&j, e, "provider"), provider)) continue;
    char k[64] = "";
    souk_json_str(&j, souk_json_get(&j, e, "key"), k, sizeof k);
    o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%s", o ? " " : "", k);
  }
  souk_json_free(&j);
  free(b);
}

/* ---- running lookups --------------------------------------------------- */

typedef struct got {
  int calls, err;
  market_quote_t q;
  char source[16];
  char msg[900];
  char reasons[MARKET_PROV_COUNT][128];
} got_t;

static void got_cb(const market_chain_result_t *r, void *ud) {
  got_t *g = ud;
  g->calls++;
  g->err = r->err;
  g->q = r->quote;
  snprintf(g->source, sizeof g->source, "%s", r->err == 0 ? r->quote.source : "");
  snprintf(g->msg, sizeof g->msg, "%s", r->message ? r->message : "");
  for (int i = 0; i < MARKET_PROV_COUNT; i++)
    snprintf(g->reasons[i], sizeof g->reasons[i], "%s", r->reasons[i] ? r->reasons[i] : "");
}

static void start(market_chain_t *ch, const char *sym, got_t *g) {
  memset(g, 0, sizeof *g);
  assert_int_equal(market_chain_quote(ch, sym, got_cb, g), 0);
  assert_int_equal(g->calls, 0); /* never from inside market_chain_quote */
}

static void wait_for(got_t *g) {
  uint64_t until = souk_now_ms() + 20000;
  while (!g->calls && souk_now_ms() < until)
    uv_run(souk_loop(), UV_RUN_ONCE);
  assert_int_equal(g->calls, 1);
}

static void quote(market_chain_t *ch, const char *sym, got_t *g) {
  start(ch, sym, g);
  wait_for(g);
  /* Exactly once: nothing more arrives later. */
  for (int i = 0; i < 3; i++)
    uv_run(souk_loop(), UV_RUN_NOWAIT);
  assert_int_equal(g->calls, 1);
}

static void conf_fake(market_chain_conf_t *c) {
  market_chain_conf_defaults(c);
  for (int i = 0; i < MARKET_PROV_COUNT; i++)
    c->prov[i].base_url = base;
  c->prov[MARKET_PROV_FINNHUB].key = FH_TOKEN;
  c->prov[MARKET_PROV_POLYGON].key = PG_KEY;
  c->prov[MARKET_PROV_ALPACA].key = AP_ID;
  c->prov[MARKET_PROV_ALPACA].secret = AP_SECRET;
  c->prov[MARKET_PROV_YAHOO].enabled = true;
  c->min_interval_ms = 0;
  c->timeout_ms = 3000;
  c->backoff_base_ms = 1000;
  c->clock = &fclock;
}

static market_chain_t *chain(const market_chain_conf_t *c) {
  market_chain_t *ch = NULL;
  assert_int_equal(market_chain_new(c, &ch), 0);
  assert_non_null(ch);
  return ch;
}

static market_provider_stats_t stats(market_chain_t *ch, market_provider_id_t id) {
  market_provider_stats_t s;
  assert_int_equal(market_chain_stats(ch, id, &s), 0);
  return s;
}

static void script(const char *provider, const char *responses) {
  char b[512];
  snprintf(b, sizeof b, "{\"provider\": \"%s\", \"responses\": %s}", provider, responses);
  ctl_post("/_fake/script", b);
}

/* ---- fixtures ---------------------------------------------------------- */

static int group_setup(void **state) {
  (void)state;
  assert_int_equal(souk_http_init(), 0);
  have_fake = access(PYSPAWN_PYTHON, X_OK) == 0 &&
              system(PYSPAWN_PYTHON " -c 'import aiohttp' >/dev/null 2>&1") == 0 &&
              pyserver_start(&srv, FAKE_PY) == 0;
  if (have_fake) snprintf(base, sizeof base, "http://127.0.0.1:%d", srv.port);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  souk_http_shutdown();
  uv_run(souk_loop(), UV_RUN_DEFAULT);
  if (have_fake) pyserver_stop(&srv);
  return 0;
}

static int setup(void **state) {
  (void)state;
  if (!have_fake) return 0; /* the tests skip */
  fake_now = 1000000;
  ctl_post("/_fake/reset", "{}");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int i = 0; i < 5; i++)
    uv_run(souk_loop(), UV_RUN_NOWAIT);
  return 0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_first_provider_answers(void **state) {
  (void)state;
  if (!have_fake) skip();
  market_chain_conf_t c;
  conf_fake(&c);
  market_chain_t *ch = chain(&c);
  got_t g;
  quote(ch, "AAPL", &g);
  assert_int_equal(g.err, 0);
  assert_string_equal(g.source, "finnhub");
  assert_string_equal(g.q.symbol, "AAPL");
  assert_int_equal(g.q.price_micro, 189250000);
  assert_int_equal(g.q.prev_close_micro, 187500000);
  int64_t age = (int64_t)souk_unix_ms() - g.q.quote_time_ms;
  assert_true(age >= -5000 && age < 60000);
  int bad;
  assert_int_equal(fake_count("finnhub", &bad), 1);
  assert_int_equal(bad, 0);
  assert_int_equal(fake_count("polygon", NULL), 0);
  market_provider_stats_t s = stats(ch, MARKET_PROV_FINNHUB);
  assert_true(s.enabled);
  assert_int_equal(s.requests, 1);
  assert_int_equal(s.ok, 1);
  assert_int_equal(s.breaker, SOUK_BREAKER_CLOSED);
  market_chain_free(ch);
}

/* Each provider on its own: its request shape and auth satisfy the fake,
 * and its answer parses to the same exact price. */
static void test_each_provider_alone(void **state) {
  (void)state;
  if (!have_fake) skip();
  static const char *const want[] = {"finnhub", "polygon", "alpaca", "yahoo"};
  for (int only = 0; only < MARKET_PROV_COUNT; only++) {
    market_chain_conf_t c;
    conf_fake(&c);
    for (int i = 0; i < MARKET_PROV_COUNT; i++)
      c.prov[i].enabled = i == only;
    market_chain_t *ch = chain(&c);
    for (int i = 0; i < MARKET_PROV_COUNT; i++)
      assert_int_equal(market_chain_enabled(ch, (market_provider_id_t)i), i == only);
    got_t g;
    quote(ch, "NVDA", &g);
    if (g.err) fail_msg("%s: %s", want[only], g.msg);
    assert_string_equal(g.source, want[only]);
    assert_int_equal(g.q.price_micro, 875123456);
    assert_true(g.q.quote_time_ms > 0);
    int bad;
    assert_int_equal(fake_count(want[only], &bad), 1);
    assert_int_equal(bad, 0);
    market_chain_free(ch);
  }
}

/* Polygon's last-trade endpoint (paid plans) and Yahoo's BRK-B spelling. */
static void test_polygon_last_trade_and_share_classes(void **state) {
  (void)state;
  if (!have_fake) skip();
  market_chain_conf_t c;
  conf_fake(&c);
  c.polygon_last_trade = true;
  c.prov[MARKET_PROV_FINNHUB].enabled = false;
  market_chain_t *ch = chain(&c);
  got_t g;
  quote(ch, "TSLA", &g);
  assert_string_equal(g.source, "polygon");
  assert_int_equal(g.q.price_micro, 175790000);
  market_chain_free(ch);

  conf_fake(&c);
  for (int i = 0; i < MARKET_PROV_YAHOO; i++)
    c.prov[i].enabled = false;
  ch = chain(&c);
  quote(ch, "BRK.B", &g);
  if (g.err) fail_msg("%s", g.msg);
  assert_string_equal(g.source, "yahoo");
  assert_string_equal(g.q.symbol, "BRK.B");
  assert_int_equal(g.q.price_micro, 408010000);
  char *log = ctl("/_fake/requests", NULL);
  assert_non_null(strstr(log, "/v2/last/trade/TSLA"));
  assert_non_null(strstr(log, "/v8/finance/chart/BRK-B?"));
  free(log);
  market_chain_free(ch);
}

static void test_fall_through(void **state) {
  (void)state;
  if (!have_fake) skip();
  script("finnhub", "[{\"nodata\": true}]");
  script("polygon", "[{\"status\": 503, \"body\": \"down\"}]");
  script("alpaca", "[{\"malformed\": true}]");
  market_chain_conf_t c;
  conf_fake(&c);
  market_chain_t *ch = chain(&c);
  got_t g;
  quote(ch, "MSFT", &g);
  assert_int_equal(g.err, 0);
  assert_string_equal(g.source, "yahoo");
  assert_int_equal(g.q.price_micro, 415100000);
  assert_int_equal(g.q.prev_close_micro, 410000000); /* range=1d chartPreviousClose */
  assert_string_equal(g.reasons[MARKET_PROV_FINNHUB], "no data (all-zero quote)");
  assert_string_equal(g.reasons[MARKET_PROV_POLYGON], "HTTP 503");
  assert_string_equal(g.reasons[MARKET_PROV_ALPACA], "malformed JSON body");
  assert_string_equal(g.reasons[MARKET_PROV_YAHOO], "");
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).nodata, 1);
  assert_int_equal(stats(ch, MARKET_PROV_POLYGON).errors, 1);
  assert_int_equal(stats(ch, MARKET_PROV_ALPACA).errors, 1);
  assert_int_equal(stats(ch, MARKET_PROV_YAHOO).ok, 1);
  market_chain_free(ch);
}

static void test_unknown_symbol(void **state) {
  (void)state;
  if (!have_fake) skip();
  market_chain_conf_t c;
  conf_fake(&c);
  market_chain_t *ch = chain(&c);
  got_t g;
  quote(ch, "ZZZZ", &g);
  assert_int_equal(g.err, SOUK_ENOTFOUND);
  assert_non_null(strstr(g.msg, "no provider could price ZZZZ (finnhub: no data (all-zero quote); "
                                "polygon: no data (resultsCount 0); alpaca: no data (empty trades "
                                "map); yahoo: no data (chart error: No data found"));
  for (int i = 0; i < MARKET_PROV_COUNT; i++) {
    assert_int_equal(fake_count(market_provider_name((market_provider_id_t)i), NULL), 1);
    assert_int_equal(stats(ch, (market_provider_id_t)i).nodata, 1);
    /* "No data" is an answer: breakers stay closed. */
    assert_int_equal(stats(ch, (market_provider_id_t)i).breaker, SOUK_BREAKER_CLOSED);
  }
  /* A malformed symbol never reaches a provider. */
  assert_int_equal(market_chain_quote(ch, "aapl", got_cb, &g), SOUK_EINVAL);
  assert_int_equal(market_chain_quote(ch, "A&token=x", got_cb, &g), SOUK_EINVAL);
  market_chain_free(ch);
}

static void test_no_provider_configured(void **state) {
  (void)state;
  if (!have_fake) skip();
  market_chain_conf_t c;
  market_chain_conf_defaults(&c);
  market_chain_t *ch = chain(&c);
  got_t g;
  quote(ch, "AAPL", &g);
  assert_int_equal(g.err, SOUK_ENOTFOUND);
  assert_string_equal(g.msg, "no provider could price AAPL (finnhub: not configured; polygon: not "
                             "configured; alpaca: not configured; yahoo: not configured)");
  /* Alpaca needs both its key id and its secret. */
  market_chain_conf_defaults(&c);
  c.prov[MARKET_PROV_ALPACA].key = AP_ID;
  market_chain_t *ch2 = chain(&c);
  assert_false(market_chain_enabled(ch2, MARKET_PROV_ALPACA));
  market_chain_free(ch2);
  market_chain_free(ch);
  c.prov[MARKET_PROV_POLYGON].base_url = "ftp://example.com";
  assert_int_equal(market_chain_new(&c, &ch), SOUK_EINVAL);
}

static void test_429_backoff_honours_retry_after(void **state) {
  (void)state;
  if (!have_fake) skip();
  script("finnhub", "[{\"status\": 429, \"retry_after\": 7}]");
  market_chain_conf_t c;
  conf_fake(&c);
  market_chain_t *ch = chain(&c);
  got_t g;
  quote(ch, "AAPL", &g);
  assert_string_equal(g.source, "polygon");
  assert_string_equal(g.reasons[MARKET_PROV_FINNHUB], "rate limited (429, Retry-After)");
  market_provider_stats_t s = stats(ch, MARKET_PROV_FINNHUB);
  assert_int_equal(s.rate_limited, 1);
  assert_int_equal(s.backoff_left_ms, 7000);
  assert_int_equal(s.breaker, SOUK_BREAKER_CLOSED); /* a 429 is not a failure */

  /* While backing off, Finnhub is skipped without a request. */
  fake_now += 6999;
  quote(ch, "AAPL", &g);
  assert_string_equal(g.source, "polygon");
  assert_string_equal(g.reasons[MARKET_PROV_FINNHUB], "backing off after 429 (1 ms left)");
  assert_int_equal(fake_count("finnhub", NULL), 1);
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).skipped_backoff, 1);

  /* Retry-After has passed: asked again. */
  fake_now += 1;
  quote(ch, "AAPL", &g);
  assert_string_equal(g.source, "finnhub");
  assert_int_equal(fake_count("finnhub", NULL), 2);
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).consecutive_429, 0);

  /* Without Retry-After: 1 s, then 2 s, then 4 s. */
  script("finnhub", "[{\"status\": 429, \"repeat\": 3}]");
  uint64_t want[] = {1000, 2000, 4000};
  for (int k = 0; k < 3; k++) {
    quote(ch, "AAPL", &g);
    assert_string_equal(g.source, "polygon");
    s = stats(ch, MARKET_PROV_FINNHUB);
    assert_int_equal(s.backoff_left_ms, want[k]);
    assert_int_equal(s.consecutive_429, k + 1);
    fake_now += want[k];
  }
  quote(ch, "AAPL", &g);
  assert_string_equal(g.source, "finnhub");
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).rate_limited, 4);
  assert_int_equal(stats(ch, MARKET_PROV_POLYGON).ok, 5);
  market_chain_free(ch);
}

static void test_breaker_opens_and_closes(void **state) {
  (void)state;
  if (!have_fake) skip();
  script("finnhub", "[{\"status\": 500, \"repeat\": -1}]");
  market_chain_conf_t c;
  conf_fake(&c);
  c.breaker = (souk_breaker_opts_t){.failures = 3, .window_ms = 60000, .open_timeout_ms = 30000};
  c.prov[MARKET_PROV_POLYGON].budget[0].limit = 0;
  market_chain_t *ch = chain(&c);
  got_t g;
  for (int k = 0; k < 3; k++) {
    quote(ch, "AAPL", &g);
    assert_string_equal(g.source, "polygon");
    assert_string_equal(g.reasons[MARKET_PROV_FINNHUB], "HTTP 500");
  }
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).breaker, SOUK_BREAKER_OPEN);
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).errors, 3);
  /* Open: Finnhub is not asked at all. */
  quote(ch, "AAPL", &g);
  assert_string_equal(g.source, "polygon");
  assert_string_equal(g.reasons[MARKET_PROV_FINNHUB], "circuit open");
  assert_int_equal(fake_count("finnhub", NULL), 3);
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).skipped_breaker, 1);
  /* After the open timeout one probe goes through; it fails: open again. */
  fake_now += 30000;
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).breaker, SOUK_BREAKER_HALF_OPEN);
  quote(ch, "AAPL", &g);
  assert_string_equal(g.source, "polygon");
  assert_int_equal(fake_count("finnhub", NULL), 4);
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).breaker, SOUK_BREAKER_OPEN);
  /* Finnhub recovers; the next probe closes the breaker. */
  ctl_post("/_fake/script/clear", "{}");
  fake_now += 30000;
  quote(ch, "AAPL", &g);
  assert_string_equal(g.source, "finnhub");
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).breaker, SOUK_BREAKER_CLOSED);
  quote(ch, "AAPL", &g);
  assert_string_equal(g.source, "finnhub");
  market_chain_free(ch);
}

static void test_auth_failure_falls_through(void **state) {
  (void)state;
  if (!have_fake) skip();
  market_chain_conf_t c;
  conf_fake(&c);
  c.prov[MARKET_PROV_FINNHUB].key = "wrong-finnhub-token";
  market_chain_t *ch = chain(&c);
  got_t g;
  int log_pipe[2];
  assert_int_equal(pipe(log_pipe), 0);
  souk_log_set_fd(log_pipe[1]);
  souk__log_set_coalesce(false); /* lines are counted raw */
  quote(ch, "AAPL", &g);
  souk_log_set_fd(2);
  close(log_pipe[1]);
  char logbuf[4096] = "";
  ssize_t n = read(log_pipe[0], logbuf, sizeof logbuf - 1);
  close(log_pipe[0]);
  logbuf[n > 0 ? n : 0] = '\0';
  assert_string_equal(g.source, "polygon");
  assert_string_equal(g.reasons[MARKET_PROV_FINNHUB], "auth failed (401)");
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).errors, 1);
  assert_non_null(strstr(logbuf, "finnhub refused the key"));
  /* Keys are registered as secrets: never written to a log line. */
  assert_null(strstr(logbuf, "wrong-finnhub-token"));
  char line[] = "key " PG_KEY " secret " AP_SECRET " id " AP_ID;
  souk_log_redact(line, strlen(line));
  assert_null(strstr(line, PG_KEY));
  assert_null(strstr(line, AP_SECRET));
  assert_null(strstr(line, AP_ID));
  market_chain_free(ch);
}

static void test_timeout_falls_through(void **state) {
  (void)state;
  if (!have_fake) skip();
  script("finnhub", "[{\"delay_ms\": 2000}]");
  market_chain_conf_t c;
  conf_fake(&c);
  c.timeout_ms = 300;
  market_chain_t *ch = chain(&c);
  got_t g;
  uint64_t t0 = souk_now_ms();
  quote(ch, "AAPL", &g);
  uint64_t took = souk_now_ms() - t0;
  assert_string_equal(g.source, "polygon");
  assert_string_equal(g.reasons[MARKET_PROV_FINNHUB], "timed out");
  assert_true(took >= 250 && took < 1500);
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).errors, 1);
  market_chain_free(ch);
}

static void test_budgets_skip(void **state) {
  (void)state;
  if (!have_fake) skip();
  market_chain_conf_t c;
  conf_fake(&c);
  c.prov[MARKET_PROV_FINNHUB].budget[1] = (market_budget_t){2, 1000}; /* 2/s for the test */
  c.prov[MARKET_PROV_POLYGON].budget[0] = (market_budget_t){2, 60000};
  market_chain_t *ch = chain(&c);
  got_t g;
  quote(ch, "IBM", &g);
  assert_string_equal(g.source, "finnhub");
  quote(ch, "IBM", &g);
  assert_string_equal(g.source, "finnhub");
  /* Finnhub's per-second budget is spent: skipped, not queued. */
  quote(ch, "IBM", &g);
  assert_string_equal(g.source, "polygon");
  assert_string_equal(g.reasons[MARKET_PROV_FINNHUB], "request budget spent (2 per 1000 ms)");
  quote(ch, "IBM", &g);
  assert_string_equal(g.source, "polygon");
  quote(ch, "IBM", &g);
  assert_string_equal(g.source, "alpaca");
  assert_string_equal(g.reasons[MARKET_PROV_POLYGON], "request budget spent (2 per 60000 ms)");
  assert_int_equal(g.q.price_micro, 142200000);
  assert_int_equal(fake_count("finnhub", NULL), 2);
  assert_int_equal(fake_count("polygon", NULL), 2);
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).skipped_budget, 3);
  assert_int_equal(stats(ch, MARKET_PROV_POLYGON).skipped_budget, 1);
  /* A second later Finnhub may be asked again. */
  fake_now += 1000;
  quote(ch, "IBM", &g);
  assert_string_equal(g.source, "finnhub");
  market_chain_free(ch);
}

static void test_global_min_interval(void **state) {
  (void)state;
  if (!have_fake) skip();
  market_chain_conf_t c;
  conf_fake(&c);
  c.clock = NULL; /* real time: the interval is a real wait */
  c.min_interval_ms = 150;
  market_chain_t *ch = chain(&c);
  got_t g[3];
  uint64_t t0 = souk_now_ms();
  for (int i = 0; i < 3; i++)
    start(ch, "AAPL", &g[i]);
  for (int i = 0; i < 3; i++)
    wait_for(&g[i]);
  uint64_t took = souk_now_ms() - t0;
  for (int i = 0; i < 3; i++)
    assert_string_equal(g[i].source, "finnhub");
  assert_true(took >= 295); /* requests at 0, 150 and 300 ms */
  market_chain_free(ch);

  /* A lookup that would wait longer than max_wait_ms skips instead. */
  conf_fake(&c);
  c.clock = NULL;
  c.min_interval_ms = 5000;
  c.max_wait_ms = 100;
  ch = chain(&c);
  start(ch, "AAPL", &g[0]);
  start(ch, "AAPL", &g[1]);
  wait_for(&g[0]);
  wait_for(&g[1]);
  assert_string_equal(g[0].source, "finnhub");
  assert_int_equal(g[1].err, SOUK_ENOTFOUND);
  assert_non_null(strstr(g[1].reasons[MARKET_PROV_FINNHUB], "busy (next request slot in"));
  assert_int_equal(stats(ch, MARKET_PROV_YAHOO).skipped_busy, 1);
  market_chain_free(ch);
}

static void test_stale_quotes_fall_through(void **state) {
  (void)state;
  if (!have_fake) skip();
  ctl_post("/_fake/prices", "{\"OLD\": {\"price\": \"12.5\", \"time\": 1600000000}}");
  market_chain_conf_t c;
  conf_fake(&c);
  c.max_age_ms = 3600 * 1000;
  market_chain_t *ch = chain(&c);
  got_t g;
  quote(ch, "OLD", &g);
  assert_int_equal(g.err, SOUK_ENOTFOUND);
  assert_non_null(strstr(g.reasons[MARKET_PROV_ALPACA], "no data (stale quote ("));
  assert_non_null(strstr(g.reasons[MARKET_PROV_FINNHUB], "no data (stale quote ("));
  market_chain_free(ch);
  /* Without a max age the old price is returned with its own time. */
  c.max_age_ms = 0;
  ch = chain(&c);
  quote(ch, "OLD", &g);
  assert_int_equal(g.err, 0);
  assert_int_equal(g.q.price_micro, 12500000);
  assert_int_equal(g.q.quote_time_ms, 1600000000000LL);
  market_chain_free(ch);
  ctl_post("/_fake/prices", "{\"OLD\": null}");
}

static void test_free_cancels_lookups(void **state) {
  (void)state;
  if (!have_fake) skip();
  /* Both lookups start at Finnhub; both answers are held back, so both
   * are still in flight when the chain is freed, however fast the
   * machine. */
  script("finnhub", "[{\"delay_ms\": 1000}, {\"delay_ms\": 1000}]");
  market_chain_conf_t c;
  conf_fake(&c);
  market_chain_t *ch = chain(&c);
  got_t g, g2;
  start(ch, "AAPL", &g);
  start(ch, "ZZZZ", &g2);
  for (int i = 0; i < 5; i++)
    uv_run(souk_loop(), UV_RUN_NOWAIT);
  market_chain_free(ch);
  assert_int_equal(g.calls, 1);
  assert_int_equal(g.err, SOUK_ECANCELED);
  assert_int_equal(g2.calls, 1);
  assert_int_equal(g2.err, SOUK_ECANCELED);
  for (int i = 0; i < 5; i++)
    uv_run(souk_loop(), UV_RUN_NOWAIT);
  assert_int_equal(g.calls, 1);
}

/* ---- several keys per provider ------------------------------------------ */

/* A 429 on the key in use: the same lookup asks the provider again with
 * the next key, which stays in use; when every key is out, the chain falls
 * through, and the first key comes back once its backoff ends. */
static void test_keys_rotate_on_429(void **state) {
  (void)state;
  if (!have_fake) skip();
  market_chain_conf_t c;
  conf_fake(&c);
  c.prov[MARKET_PROV_FINNHUB].key = FH_TOKEN " , " FH_TOKEN2;
  market_chain_t *ch = chain(&c);
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).keys, 2);
  script("finnhub", "[{\"status\": 429, \"key\": \"" FH_TOKEN "\"}]");
  got_t g;
  quote(ch, "AAPL", &g);
  assert_int_equal(g.err, 0);
  assert_string_equal(g.source, "finnhub");
  assert_string_equal(g.reasons[MARKET_PROV_FINNHUB], ""); /* it answered */
  char keys[256];
  fake_keys("finnhub", keys, sizeof keys);
  assert_string_equal(keys, FH_TOKEN " " FH_TOKEN2);
  assert_int_equal(fake_count("polygon", NULL), 0);
  market_provider_stats_t s = stats(ch, MARKET_PROV_FINNHUB);
  assert_int_equal(s.rate_limited, 1);
  assert_int_equal(s.rotations, 1);
  assert_int_equal(s.key_in_use, 1);
  assert_int_equal(s.backoff_left_ms, 0); /* the second key may be asked */
  /* The second key stays in use. */
  quote(ch, "AAPL", &g);
  fake_keys("finnhub", keys, sizeof keys);
  assert_string_equal(keys, FH_TOKEN " " FH_TOKEN2 " " FH_TOKEN2);
  /* It runs out too (for 5 s) while the first backs off: Polygon answers. */
  script("finnhub", "[{\"status\": 429, \"retry_after\": 5, \"key\": \"" FH_TOKEN2 "\"}]");
  quote(ch, "AAPL", &g);
  assert_string_equal(g.source, "polygon");
  assert_string_equal(g.reasons[MARKET_PROV_FINNHUB], "rate limited (429, Retry-After)");
  quote(ch, "AAPL", &g);
  assert_string_equal(g.source, "polygon");
  assert_string_equal(g.reasons[MARKET_PROV_FINNHUB],
                      "all 2 keys: backing off after 429 (1000 ms left)");
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).backoff_left_ms, 1000);
  /* The first key's backoff ends: it is asked again. */
  fake_now += 1000;
  quote(ch, "AAPL", &g);
  assert_string_equal(g.source, "finnhub");
  fake_keys("finnhub", keys, sizeof keys);
  assert_string_equal(keys, FH_TOKEN " " FH_TOKEN2 " " FH_TOKEN2 " " FH_TOKEN2 " " FH_TOKEN);
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).rotations, 2);
  market_chain_free(ch);
}

/* A key whose own budget is spent gives way to the next without a 429;
 * each key has a budget of its own. */
static void test_keys_rotate_on_budget(void **state) {
  (void)state;
  if (!have_fake) skip();
  market_chain_conf_t c;
  conf_fake(&c);
  c.prov[MARKET_PROV_FINNHUB].key = FH_TOKEN "," FH_TOKEN2;
  c.prov[MARKET_PROV_FINNHUB].budget[1] = (market_budget_t){2, 1000};
  market_chain_t *ch = chain(&c);
  got_t g;
  for (int k = 0; k < 4; k++) {
    quote(ch, "IBM", &g);
    assert_string_equal(g.source, "finnhub");
  }
  char keys[256];
  fake_keys("finnhub", keys, sizeof keys);
  assert_string_equal(keys, FH_TOKEN " " FH_TOKEN " " FH_TOKEN2 " " FH_TOKEN2);
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).rate_limited, 0);
  quote(ch, "IBM", &g);
  assert_string_equal(g.source, "polygon");
  assert_string_equal(g.reasons[MARKET_PROV_FINNHUB],
                      "all 2 keys: request budget spent (2 per 1000 ms)");
  fake_now += 1000;
  quote(ch, "IBM", &g);
  assert_string_equal(g.source, "finnhub");
  market_chain_free(ch);
}

/* The provider's quota answer in a 200 counts as a 429 for that key;
 * Alpaca's key ids and secrets rotate as pairs. */
static void test_keys_quota_answer_and_pairs(void **state) {
  (void)state;
  if (!have_fake) skip();
  market_chain_conf_t c;
  conf_fake(&c);
  c.prov[MARKET_PROV_FINNHUB].key = FH_TOKEN "," FH_TOKEN2;
  market_chain_t *ch = chain(&c);
  script("finnhub", "[{\"quota\": true, \"key\": \"" FH_TOKEN "\"}]");
  got_t g;
  quote(ch, "AAPL", &g);
  assert_string_equal(g.source, "finnhub");
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).rate_limited, 1);
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).key_in_use, 1);
  assert_int_equal(stats(ch, MARKET_PROV_FINNHUB).breaker, SOUK_BREAKER_CLOSED);
  market_chain_free(ch);

  conf_fake(&c);
  for (int i = 0; i < MARKET_PROV_COUNT; i++)
    c.prov[i].enabled = i == MARKET_PROV_ALPACA;
  c.prov[MARKET_PROV_ALPACA].key = AP_ID "," AP_ID2;
  c.prov[MARKET_PROV_ALPACA].secret = AP_SECRET "," AP_SECRET2;
  ch = chain(&c);
  script("alpaca", "[{\"status\": 429, \"key\": \"" AP_ID "\"}]");
  quote(ch, "AAPL", &g);
  if (g.err) fail_msg("%s", g.msg);
  assert_string_equal(g.source, "alpaca");
  int bad = 0;
  assert_int_equal(fake_count("alpaca", &bad), 2);
  assert_int_equal(bad, 0); /* the second id went with the second secret */
  market_chain_free(ch);

  /* Malformed key lists are refused. */
  conf_fake(&c);
  c.prov[MARKET_PROV_POLYGON].key = "a,,b";
  assert_int_equal(market_chain_new(&c, &ch), SOUK_EINVAL);
  c.prov[MARKET_PROV_POLYGON].key = "1,2,3,4,5,6,7,8,9";
  assert_int_equal(market_chain_new(&c, &ch), SOUK_EINVAL);
  c.prov[MARKET_PROV_POLYGON].key = "1,2,3,4,5,6,7,8";
  assert_int_equal(market_chain_new(&c, &ch), 0);
  assert_int_equal(stats(ch, MARKET_PROV_POLYGON).keys, 8);
  market_chain_free(ch);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_first_provider_answers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_each_provider_alone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_polygon_last_trade_and_share_classes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fall_through, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_symbol, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_provider_configured, setup, teardown),
      cmocka_unit_test_setup_teardown(test_429_backoff_honours_retry_after, setup, teardown),
      cmocka_unit_test_setup_teardown(test_breaker_opens_and_closes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_auth_failure_falls_through, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_falls_through, setup, teardown),
      cmocka_unit_test_setup_teardown(test_budgets_skip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_global_min_interval, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_quotes_fall_through, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_cancels_lookups, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keys_rotate_on_429, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keys_rotate_on_budget, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keys_quota_answer_and_pairs, setup, teardown),
  };
  int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
  souk_log_clear_secrets();
  souk_loop_close();
  curl_global_cleanup();
  return rc;
}
