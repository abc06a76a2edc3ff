/* A synthetic hour of SkyBlock summaries, shaped like the module's hourly
 * Parquet files: one row per item key (and attrs key) with the hour, the
 * ladder of the 16 lowest BIN prices per unit, the listing count, and the
 * hour's sales statistics.  bench/skyblock_parquet_bench.c writes 5,000
 * keys to measure the size on disk; tests/parquet/pq_shapes.c writes one
 * for the independent readers.
 *
 * The ladder is 16 OPTIONAL INT64 columns (ladder_01 .. ladder_16, null
 * past the listings there are) rather than a packed string or a LIST:
 * every reader (DuckDB, hyparquet, pandas, Spark) reads plain INT64
 * columns, each rung gets its own min/max statistics for pruning, a
 * missing rung costs one definition-level bit, and the writer stays flat
 * (no repetition levels).  A packed string would hide the prices from
 * every query engine; a LIST needs nested schemas the writer does not
 * write.  Prices are int64 coins per unit. */
#ifndef SOUK_TEST_SUMMARY_GEN_H
#define SOUK_TEST_SUMMARY_GEN_H

#include "pqv.h"

enum {
  SBSUM_HOUR,
  SBSUM_KEY,
  SBSUM_ATTRS,
  SBSUM_LADDER, /* 16 columns */
  SBSUM_LISTINGS = SBSUM_LADDER + 16,
  SBSUM_SALES,
  SBSUM_VOLUME,
  SBSUM_MIN,
  SBSUM_MEDIAN,
  SBSUM_IQM,
  SBSUM_MAX,
  SBSUM_NCOLS
};

/* The schema; names are filled in by sbsum_cols(). */
static inline void sbsum_cols(sb_pq_col_t *cols, char names[16][16]) {
  cols[SBSUM_HOUR] = (sb_pq_col_t){"hour_start", SB_PQ_INT64, false, true, SB_PQ_LT_TIMESTAMP_MS};
  cols[SBSUM_KEY] = (sb_pq_col_t){"item_key", SB_PQ_STRING, false, true, SB_PQ_LT_NONE};
  cols[SBSUM_ATTRS] = (sb_pq_col_t){"attrs", SB_PQ_STRING, false, true, SB_PQ_LT_NONE};
  for (int k = 0; k < 16; k++) {
    snprintf(names[k], 16, "ladder_%02d", k + 1);
    cols[SBSUM_LADDER + k] = (sb_pq_col_t){names[k], SB_PQ_INT64, true, false, SB_PQ_LT_NONE};
  }
  cols[SBSUM_LISTINGS] = (sb_pq_col_t){"listings", SB_PQ_INT32, false, true, SB_PQ_LT_NONE};
  cols[SBSUM_SALES] = (sb_pq_col_t){"sales", SB_PQ_INT32, false, true, SB_PQ_LT_NONE};
  cols[SBSUM_VOLUME] = (sb_pq_col_t){"volume", SB_PQ_INT64, false, false, SB_PQ_LT_NONE};
  cols[SBSUM_MIN] = (sb_pq_col_t){"sale_min", SB_PQ_INT64, true, false, SB_PQ_LT_NONE};
  cols[SBSUM_MEDIAN] = (sb_pq_col_t){"sale_median", SB_PQ_INT64, true, false, SB_PQ_LT_NONE};
  cols[SBSUM_IQM] = (sb_pq_col_t){"sale_iqm", SB_PQ_INT64, true, false, SB_PQ_LT_NONE};
  cols[SBSUM_MAX] = (sb_pq_col_t){"sale_max", SB_PQ_INT64, true, false, SB_PQ_LT_NONE};
}

/* Row `row` of the hour starting at hour_ms, from seed. */
static inline void sbsum_row(uint64_t seed, int64_t hour_ms, size_t row, pqv_t *v) {
  static const char *const kinds[] = {"", "PET:", "ENCHANTED_BOOK:", "RUNE:", "POTION:"};
  static const char *const attrs[] = {"stars=5",
                                      "recomb",
                                      "stars=5,recomb",
                                      "held=DWARF_TURTLE_SHELMET",
                                      "kuudra=mana_pool5",
                                      "ench=ultimate_wise5",
                                      "gems=2"};
  uint64_t x = seed ^ (row * 0x9E3779B97F4A7C15ull);
  memset(v, 0, sizeof *v * SBSUM_NCOLS);
  v[SBSUM_HOUR].i = hour_ms;
  /* Keys as long as real ones (10-40 bytes); about 1 in 4 rows shares its
   * item key with the row before, under another attrs key. */
  size_t item = row - (row % 4 == 3 ? 1 : 0);
  uint64_t k = pqv_rand(&(uint64_t){seed + item});
  v[SBSUM_KEY].slen =
      (size_t)snprintf(v[SBSUM_KEY].s, sizeof v[SBSUM_KEY].s, "%sITEM_%s_%05zu", kinds[k % 5],
                       (k >> 8) % 2 ? "HYPERION_LIKE" : "SWORD", item);
  uint64_t a = pqv_rand(&x);
  const char *at = row % 4 == 3 || a % 10 < 3 ? attrs[a % 7] : "";
  v[SBSUM_ATTRS].slen = strlen(at);
  memcpy(v[SBSUM_ATTRS].s, at, v[SBSUM_ATTRS].slen);

  /* Prices log-uniform from 1,000 to 1e9 coins; a ladder climbs from the
   * floor in steps of up to 3%. */
  double lg = 3 + 6 * (double)(pqv_rand(&x) % 1000000) / 1e6;
  int64_t price = (int64_t)pow(10, lg);
  int listings = (int)(pqv_rand(&x) % 100 < 35 ? 1 + pqv_rand(&x) % 15 : 16 + pqv_rand(&x) % 300);
  for (int r = 0; r < 16; r++) {
    v[SBSUM_LADDER + r].null = r >= listings;
    v[SBSUM_LADDER + r].i = price;
    price += price * (int64_t)(pqv_rand(&x) % 30) / 1000 + 1;
  }
  v[SBSUM_LISTINGS].i = listings;
  int sales = pqv_rand(&x) % 100 < 40 ? 0 : (int)(1 + pqv_rand(&x) % 60);
  v[SBSUM_SALES].i = sales;
  int64_t floor = v[SBSUM_LADDER].i, vol = 0, mn = INT64_MAX, mx = 0;
  for (int s = 0; s < sales; s++) {
    int64_t p = floor - floor / 20 + (int64_t)(pqv_rand(&x) % (uint64_t)(floor / 5 + 1));
    vol += p;
    if (p < mn) mn = p;
    if (p > mx) mx = p;
  }
  v[SBSUM_VOLUME].i = vol;
  for (int c = SBSUM_MIN; c <= SBSUM_MAX; c++)
    v[c].null = sales == 0;
  v[SBSUM_MIN].i = mn;
  v[SBSUM_MAX].i = mx;
  v[SBSUM_MEDIAN].i = sales ? (mn + mx) / 2 : 0;
  v[SBSUM_IQM].i = sales ? vol / sales : 0;
}

#endif
