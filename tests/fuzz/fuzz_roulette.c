/* libFuzzer target for the roulette bets users type: the parser must
 * return cleanly on any text, explain every refusal, and accept only
 * bets of 1, 2, 3, 4, 6, 12 or 18 pockets whose canonical name (what the
 * bet row stores and the Spin button carries) reads back to the same
 * pockets.
 *
 * Run: fuzz_roulette tests/fuzz/corpus/roulette */
#include "../../src/modules/economy/roulette.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char text[128];
  size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
  memcpy(text, data, n);
  text[n] = '\0';
  roulette_bet_t b;
  char err[512] = "";
  if (!roulette_parse(text, &b, err, sizeof err)) {
    if (!err[0]) abort();
    return 0;
  }
  if (b.count <= 0 || 36 % b.count != 0 || b.count == 9 || b.count == 36) abort();
  if (b.pockets >> ROULETTE_POCKETS) abort();
  roulette_bet_t again;
  if (!roulette_parse(b.name, &again, NULL, 0) || again.pockets != b.pockets) abort();
  int64_t ret;
  for (int p = 0; p < ROULETTE_POCKETS; p++)
    if (roulette_return(&b, p, 1, &ret) != 0 || (ret != 0 && ret != 36 / b.count)) abort();
  return 0;
}
