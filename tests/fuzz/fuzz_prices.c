/* libFuzzer target for the price providers' answers, the outside bytes of
 * Market Sim: the first byte picks a provider and an HTTP status, the rest
 * is the body, parsed by market_parse_finnhub, _polygon_prev,
 * _polygon_last, _alpaca and _yahoo, and by the decimal parser.
 *
 * Invariants: no crash or sanitizer report; an OK answer carries a
 * positive price and a valid symbol; a decimal that parses is not negative.
 *
 * Run: fuzz_prices -dict=tests/fuzz/json.dict CORPUS tests/fixtures/marketdata/{finnhub,polygon,alpaca,yahoo} */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/modules/market/price_hours.c"
#include "../../src/modules/market/price_parse.c"
#include "souk/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  souk_log_set_level(SOUK_LOG_OFF);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const int statuses[] = {200, 200, 200, 200, 404, 429, 401, 500};
  int status = statuses[(data[0] >> 3) & 7];
  const char *body = (const char *)data + 1;
  size_t len = size - 1;
  market_parsed_t out;
  market_outcome_t o;
  switch (data[0] & 7) {
  case 0: o = market_parse_finnhub("AAPL", status, "3", body, len, &out); break;
  case 1: o = market_parse_polygon_prev("AAPL", status, NULL, body, len, &out); break;
  case 2: o = market_parse_polygon_last("AAPL", status, NULL, body, len, &out); break;
  case 3: o = market_parse_alpaca("AAPL", status, NULL, body, len, &out); break;
  case 4: o = market_parse_yahoo("BRK.B", status, NULL, body, len, &out); break;
  default: {
    int64_t micro;
    if (market_price_parse(body, len, &micro) == 0 && micro < 0) abort();
    return 0;
  }
  }
  if (o == MARKET_OK && (out.quote.price_micro <= 0 || !market_symbol_valid(out.quote.symbol)))
    abort();
  return 0;
}
