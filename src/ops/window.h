/* A sliding-window counter in fixed buckets, for error rates and breakers.
 *
 * The window is cut into SOUK__WIN_BUCKETS buckets of window_ms / buckets
 * each; a sum covers the current bucket and the ones before it, so it spans
 * between (buckets - 1) and buckets bucket lengths.  Memory is constant,
 * which a ring of timestamps could not promise under an error storm. */
#ifndef SOUK_OPS_WINDOW_H
#define SOUK_OPS_WINDOW_H

#include <stdint.h>
#include <string.h>

#define SOUK__WIN_BUCKETS 60

/** Zero-initialise, then call souk__win_init(). */
typedef struct souk__win {
  uint64_t bucket_ms;
  uint64_t epoch[SOUK__WIN_BUCKETS]; /* bucket index + 1; 0 = empty */
  uint32_t count[SOUK__WIN_BUCKETS];
} souk__win_t;

static inline void souk__win_init(souk__win_t *w, uint64_t window_ms) {
  memset(w, 0, sizeof *w);
  w->bucket_ms = window_ms / SOUK__WIN_BUCKETS;
  if (w->bucket_ms == 0) w->bucket_ms = 1;
}

static inline void souk__win_add(souk__win_t *w, uint64_t now, uint32_t n) {
  uint64_t idx = now / w->bucket_ms + 1;
  unsigned slot = (unsigned)(idx % SOUK__WIN_BUCKETS);
  if (w->epoch[slot] != idx) {
    w->epoch[slot] = idx;
    w->count[slot] = 0;
  }
  w->count[slot] += n;
}

static inline uint64_t souk__win_sum(const souk__win_t *w, uint64_t now) {
  uint64_t idx = now / w->bucket_ms + 1, sum = 0;
  for (unsigned i = 0; i < SOUK__WIN_BUCKETS; i++)
    if (w->epoch[i] && w->epoch[i] <= idx && idx - w->epoch[i] < SOUK__WIN_BUCKETS)
      sum += w->count[i];
  return sum;
}

static inline void souk__win_clear(souk__win_t *w) {
  memset(w->epoch, 0, sizeof w->epoch);
  memset(w->count, 0, sizeof w->count);
}

#endif
