/* One value of any column type, for the programs that write test and
 * benchmark Parquet files (pq_shapes.c, bench/skyblock_parquet_bench.c):
 * put into a writer, and written as JSON for the readers' test to compare
 * against. */
#ifndef SOUK_TEST_PQV_H
#define SOUK_TEST_PQV_H

#include "../../src/modules/skyblock/parquet.h"
#include "souk/buf.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct pqv {
  bool null;
  int64_t i; /* INT32, INT64 (and timestamps, dates) */
  double d;
  bool b;
  char s[160];
  size_t slen;
} pqv_t;

/* splitmix64: a small deterministic generator, so a shape's values are the
 * same on every run. */
static inline uint64_t pqv_rand(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Put v into column col of w. */
static inline int pqv_put(sb_pq_writer_t *w, size_t col, const sb_pq_col_t *c, const pqv_t *v) {
  if (v->null) return sb_pq_put_null(w, col);
  switch (c->type) {
  case SB_PQ_INT32:
    return sb_pq_put_i32(w, col, (int32_t)v->i);
  case SB_PQ_INT64:
    return sb_pq_put_i64(w, col, v->i);
  case SB_PQ_DOUBLE:
    return sb_pq_put_f64(w, col, v->d);
  case SB_PQ_BOOL:
    return sb_pq_put_bool(w, col, v->b);
  default:
    return sb_pq_put_str(w, col, v->s, v->slen);
  }
}

/* v as JSON: integers and doubles as strings (no precision lost, and
 * NaN, Infinity and -0 survive), booleans, strings, null. */
static inline void pqv_json(souk_jw_t *j, const sb_pq_col_t *c, const pqv_t *v) {
  char b[40];
  if (v->null) {
    souk_jw_null(j);
    return;
  }
  switch (c->type) {
  case SB_PQ_INT32:
  case SB_PQ_INT64:
    snprintf(b, sizeof b, "%" PRId64, v->i);
    souk_jw_str(j, b);
    break;
  case SB_PQ_DOUBLE:
    if (isnan(v->d))
      snprintf(b, sizeof b, "NaN");
    else if (isinf(v->d))
      snprintf(b, sizeof b, v->d > 0 ? "Infinity" : "-Infinity");
    else
      snprintf(b, sizeof b, "%.17g", v->d);
    souk_jw_str(j, b);
    break;
  case SB_PQ_BOOL:
    souk_jw_bool(j, v->b);
    break;
  default:
    souk_jw_strn(j, v->s, v->slen);
    break;
  }
}

#endif
