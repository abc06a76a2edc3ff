/* libFuzzer target for KuCoin Futures' answers, the outside bytes of the
 * scanner: the first byte picks an HTTP status and a quote filter, the
 * rest is the body of GET /api/v1/contracts/active, read by
 * scanner_parse_contracts() and then ranked by scanner_rank(); the second
 * input form feeds the gw-ratelimit headers to the pool.
 *
 * Invariants: no crash or sanitizer report; an OK answer holds contracts
 * with a positive price and a valid symbol, ranked 1..n with scores in
 * [0, 100] in order.
 *
 * Run: fuzz_kucoin -dict=tests/fuzz/json.dict CORPUS tests/fixtures/marketdata/kucoin-futures */
#include "../../src/modules/scanner/kucoin.c"
#include "../../src/modules/scanner/score.c"
#include "souk/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  souk_log_set_level(SOUK_LOG_OFF);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const int statuses[] = {200, 200, 200, 200, 429, 500, 503, 404};
  int status = statuses[data[0] & 7];
  scanner_filter_t f = {.quote = (data[0] & 8) ? "USDT" : NULL, .max = (data[0] & 16) ? 5 : 0};
  const char *body = (const char *)data + 1;
  size_t len = size - 1;
  if (data[0] & 32) {
    /* Header values: three NUL-separated strings. */
    char buf[3][24] = {{0}};
    size_t k = 0, at = 0;
    for (size_t i = 0; i < len && k < 3; i++) {
      if (body[i] == '\0' || at == sizeof buf[0] - 1) {
        k++;
        at = 0;
        continue;
      }
      buf[k][at++] = body[i];
    }
    const char *a = buf[0], *b = buf[1], *c = buf[2];
    scanner_pool_t p = {0};
    scanner_pool_update(&p, a, b, c, 1000);
    (void)scanner_pool_wait(&p, SCANNER_ACTIVE_WEIGHT, 2000);
    scanner_pool_spend(&p, SCANNER_ACTIVE_WEIGHT, 2000);
    return 0;
  }
  scanner_parsed_t out;
  scanner_parse_contracts(status, body, len, &f, &out);
  if (out.outcome != SCANNER_OK) {
    if (out.contracts) abort();
    return 0;
  }
  for (size_t i = 0; i < out.n; i++) {
    const scanner_contract_t *c = &out.contracts[i];
    if (c->last_micro <= 0 || c->symbol[0] == '\0' || strlen(c->symbol) > SCANNER_SYMBOL_MAX)
      abort();
    char px[32];
    scanner_fmt_price(c, px, sizeof px);
  }
  scanner_ranked_t *r = calloc(out.n ? out.n : 1, sizeof *r);
  scanner_weights_t w = {{0.4, 0.3, 0.15, 0.15}};
  if (scanner_rank(out.contracts, out.n, &w, r) != 0) abort();
  for (size_t i = 0; i < out.n; i++) {
    if (r[i].rank != i + 1 || r[i].score_e4 < 0 || r[i].score_e4 > 1000000) abort();
    if (i && r[i - 1].score_e4 < r[i].score_e4) abort();
    char why[160];
    scanner_explain(&r[i], why, sizeof why);
  }
  free(r);
  scanner_parsed_free(&out);
  return 0;
}
