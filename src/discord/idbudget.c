/* The daily IDENTIFY budget; see idbudget.h. */
#include "discord/idbudget.h"

void souk__idbudget_init(souk__idbudget_t *b, uint32_t total, uint32_t share, int64_t remaining,
                         int64_t reset_after, int64_t now_wall) {
  if (!total) total = SOUK_IDBUDGET_TOTAL_DEFAULT;
  if (share < 1) share = 1;
  if (share > 100) share = 100;
  b->total = total;
  b->limit = (uint32_t)((uint64_t)total * share / 100);
  if (!b->limit) b->limit = 1;
  b->since = 0;
  /* A window with time left: Discord counts starts of everyone using the
   * token, this souk's before a restart included. */
  if (remaining >= 0 && reset_after > 0) {
    b->used_before = remaining >= total ? 0 : (int64_t)total - remaining;
    b->reset_at = now_wall + reset_after;
  } else {
    b->used_before = -1;
    b->reset_at = 0;
  }
}

int64_t souk__idbudget_wait(const souk__idbudget_t *b, const uint32_t counts[SOUK_IDL_HOURS],
                            int64_t now_wall, uint32_t *used) {
  uint64_t sum = 0;
  for (int i = 0; i < SOUK_IDL_HOURS; i++)
    sum += counts[i];
  int64_t wait = 0;
  if (sum >= b->limit) {
    /* The oldest hours leave the record one by one, each at the start of
     * an hour: the first hour boundary after which the rest is below the
     * limit.  counts[SOUK_IDL_HOURS - 1] is the oldest. */
    int64_t h = now_wall / SOUK_IDL_HOUR_MS;
    uint64_t left = sum;
    int k = 0;
    while (k < SOUK_IDL_HOURS && left >= b->limit) {
      left -= counts[SOUK_IDL_HOURS - 1 - k];
      k++;
    }
    wait = (h + k) * SOUK_IDL_HOUR_MS - now_wall;
  }
  uint64_t used_n = sum;
  if (b->used_before >= 0 && now_wall < b->reset_at) {
    uint64_t d = (uint64_t)b->used_before + b->since;
    if (d > used_n) used_n = d;
    if (d >= b->limit && b->reset_at - now_wall > wait) wait = b->reset_at - now_wall;
  }
  if (used) *used = used_n > UINT32_MAX ? UINT32_MAX : (uint32_t)used_n;
  return wait;
}

void souk__idbudget_spent(souk__idbudget_t *b) { b->since++; }
