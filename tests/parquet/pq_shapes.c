/* Writes Parquet files of many shapes with souk's writer, each with a JSON
 * file of the rows it holds, for tests/parquet/parquet.test.mjs to read
 * back with hyparquet and DuckDB.
 *
 *   pq_shapes OUTDIR
 *
 * For each shape: OUTDIR/<name>.parquet and OUTDIR/<name>.json
 * ({"columns": [...], "options": {...}, "rows": [[...], ...]}).  The JSON
 * says only what was written; everything the test expects (statistics,
 * which chunks are dictionary encoded) it computes from the rows. */
#include "pqv.h"
#include "souk/alloc.h"
#include "souk/err.h"
#include "summary_gen.h"

#include <stdlib.h>

typedef enum { N_NONE, N_PCT, N_ALL, N_BLOCKS, N_RUNS } nulls_t;
typedef enum { G_RAND, G_SET, G_RUNS, G_SEQ, G_LIST } gen_t;

typedef struct colspec {
  sb_pq_col_t col;
  nulls_t nulls;
  int narg; /* N_PCT: percent; N_BLOCKS: block length; N_RUNS: longest run */
  gen_t gen;
  int garg;                /* G_SET: how many values; G_RUNS: longest run */
  const char *const *list; /* G_LIST: values as text, cycled */
} colspec_t;

typedef struct shape {
  const char *name;
  size_t nrows;
  sb_pq_opts_t opts;
  colspec_t cols[12];
  bool summary; /* the hourly summary (summary_gen.h) instead of cols */
  bool faults;  /* before every 3rd row, a row left incomplete and bad puts */
} shape_t;

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static const char *const words[] = {"",
                                    "a",
                                    "apple",
                                    "Zebra",
                                    "z",
                                    "\xc3\xa9t\xc3\xa9",
                                    "\xf0\x9f\x98\x80",
                                    "\xe6\x97\xa5\xe6\x9c\xac",
                                    "PET:ENDER_DRAGON:LEGENDARY:L100",
                                    "a\x01"
                                    "b",
                                    NULL};

static const shape_t shapes[] = {
    {"basic_plain",
     100,
     {.uncompressed = true},
     {{{"i32", SB_PQ_INT32}, N_NONE, 0, G_RAND},
      {{"i64", SB_PQ_INT64}, N_NONE, 0, G_RAND},
      {{"f64", SB_PQ_DOUBLE}, N_NONE, 0, G_RAND},
      {{"flag", SB_PQ_BOOL}, N_NONE, 0, G_RAND},
      {{"text", SB_PQ_STRING}, N_NONE, 0, G_LIST, 0, words}}},
    {"optional_zstd_dict",
     3000,
     {0},
     {{{"i32", SB_PQ_INT32, true, true}, N_PCT, 30, G_SET, 50},
      {{"i64", SB_PQ_INT64, true, true}, N_PCT, 30, G_SET, 1000},
      {{"f64", SB_PQ_DOUBLE, true, true}, N_PCT, 30, G_SET, 20},
      {{"flag", SB_PQ_BOOL, true, true}, N_PCT, 30, G_RAND},
      {{"text", SB_PQ_STRING, true, true}, N_PCT, 30, G_LIST, 0, words},
      {{"plain_text", SB_PQ_STRING, true, false}, N_PCT, 10, G_RAND}}},
    {"all_null",
     500,
     {.row_group_rows = 200},
     {{{"i64", SB_PQ_INT64, true, true}, N_ALL},
      {{"text", SB_PQ_STRING, true, true}, N_ALL},
      {{"f64", SB_PQ_DOUBLE, true}, N_ALL},
      {{"flag", SB_PQ_BOOL, true}, N_ALL},
      {{"id", SB_PQ_INT32}, N_NONE, 0, G_SEQ}}},
    {"extremes",
     64,
     {.page_rows = 7},
     {{{"i64", SB_PQ_INT64, true},
       N_PCT,
       10,
       G_LIST,
       0,
       L("9223372036854775807", "-9223372036854775808", "0", "-1", "1")},
      {{"i32", SB_PQ_INT32}, N_NONE, 0, G_LIST, 0, L("2147483647", "-2147483648", "0", "-7")},
      {{"f64", SB_PQ_DOUBLE, true},
       N_PCT,
       10,
       G_LIST,
       0,
       L("-0.0", "0.0", "1e308", "-1e308", "5e-324", "0.1", "-2.5")},
      {{"f64_inf_nan", SB_PQ_DOUBLE}, N_NONE, 0, G_LIST, 0, L("nan", "inf", "-inf", "3.25")},
      {{"only_nan", SB_PQ_DOUBLE, true}, N_PCT, 50, G_LIST, 0, L("nan")},
      {{"f64_zero", SB_PQ_DOUBLE}, N_NONE, 0, G_LIST, 0, L("0.0", "-0.0")},
      {{"text", SB_PQ_STRING, true, true}, N_PCT, 10, G_LIST, 0, words}}},
    {"many_pages",
     50000,
     {.page_rows = 1000, .page_bytes = 3000},
     {{{"dict_runs", SB_PQ_INT32, false, true}, N_NONE, 0, G_RUNS, 40},
      {{"plain_rand", SB_PQ_INT64}, N_NONE, 0, G_RAND},
      {{"opt_runs", SB_PQ_INT64, true, true}, N_RUNS, 30, G_SET, 3},
      {{"text", SB_PQ_STRING, true, true}, N_BLOCKS, 1500, G_SET, 300},
      {{"flag", SB_PQ_BOOL, true}, N_RUNS, 12, G_RUNS, 20}}},
    {"many_row_groups",
     5000,
     {.row_group_rows = 777, .page_rows = 300},
     {{{"seq", SB_PQ_INT64}, N_NONE, 0, G_SEQ},
      {{"blocky", SB_PQ_INT32, true, true}, N_BLOCKS, 777, G_SET, 9},
      {{"text", SB_PQ_STRING, true, true}, N_PCT, 50, G_SET, 2},
      {{"one_value", SB_PQ_STRING, false, true}, N_NONE, 0, G_SET, 1}}},
    /* The first row group's dictionary outgrows 4 KB and falls back to
     * PLAIN; the second row group's (50 values) fits. */
    {"dict_fallback",
     2050,
     {.row_group_rows = 2000, .dict_max_bytes = 4096},
     {{{"distinct", SB_PQ_STRING, false, true}, N_NONE, 0, G_RAND},
      {{"distinct_i64", SB_PQ_INT64, false, true}, N_NONE, 0, G_RAND},
      {{"few", SB_PQ_STRING, false, true}, N_NONE, 0, G_SET, 5}}},
    /* Over 256 and 65,536 entries: index bit widths 9 and 17. */
    {"wide_dict",
     70000,
     {.row_group_rows = 70000, .dict_max_bytes = 8u << 20},
     {{{"w9", SB_PQ_INT32, false, true}, N_NONE, 0, G_SET, 300},
      {{"w17", SB_PQ_INT64, false, true}, N_NONE, 0, G_SEQ},
      {{"w2", SB_PQ_STRING, true, true}, N_PCT, 5, G_SET, 2}}},
    {"temporal",
     1000,
     {0},
     {{{"ts", SB_PQ_INT64, false, true, SB_PQ_LT_TIMESTAMP_MS},
       N_NONE,
       0,
       G_LIST,
       0,
       L("1749402460812", "0", "1754778410847", "1749398400000")},
      {{"ts_opt", SB_PQ_INT64, true, false, SB_PQ_LT_TIMESTAMP_MS},
       N_PCT,
       20,
       G_LIST,
       0,
       L("1749402460812", "86400000", "1754778351301")},
      {{"day", SB_PQ_INT32, true, true, SB_PQ_LT_DATE},
       N_PCT,
       20,
       G_LIST,
       0,
       L("20247", "0", "20309", "-1")}}},
    {"empty",
     0,
     {0},
     {{{"i64", SB_PQ_INT64, true, true}, N_NONE}, {{"text", SB_PQ_STRING}, N_NONE}}},
    {"summary_hour", 5000, {0}, {{{0}}}, true},
    /* Rejected puts and incomplete rows leave no trace in the file. */
    {"fault_recovery",
     600,
     {.page_rows = 50},
     {{{"i64", SB_PQ_INT64, true, true}, N_PCT, 20, G_SET, 40},
      {{"text", SB_PQ_STRING, false, true}, N_NONE, 0, G_LIST, 0, words},
      {{"plain_text", SB_PQ_STRING, true}, N_PCT, 20, G_RAND},
      {{"f64", SB_PQ_DOUBLE}, N_NONE, 0, G_RAND},
      {{"flag", SB_PQ_BOOL, true}, N_PCT, 20, G_RAND}},
     false,
     true},
};

static size_t shape_ncols(const shape_t *s) {
  if (s->summary) return SBSUM_NCOLS;
  size_t n = 0;
  while (n < 12 && s->cols[n].col.name)
    n++;
  return n;
}

/* Parse list text into v for column type t. */
static void from_text(pqv_t *v, sb_pq_type_t t, const char *s) {
  switch (t) {
  case SB_PQ_INT32:
  case SB_PQ_INT64:
    v->i = strtoll(s, NULL, 10);
    break;
  case SB_PQ_DOUBLE:
    v->d = strtod(s, NULL);
    break;
  case SB_PQ_BOOL:
    v->b = strcmp(s, "true") == 0;
    break;
  default:
    v->slen = strlen(s);
    memcpy(v->s, s, v->slen);
    break;
  }
}

/* A value numbered k of type t (for sets and runs). */
static void from_num(pqv_t *v, sb_pq_type_t t, uint64_t k) {
  switch (t) {
  case SB_PQ_INT32:
    v->i = (int32_t)(k * 2654435761u) >> 4;
    break;
  case SB_PQ_INT64:
    v->i = (int64_t)(k * 0x9E3779B97F4A7C15ull) >> 3;
    break;
  case SB_PQ_DOUBLE:
    v->d = (double)(int64_t)(k * 7919) / 16.0 - 1000.0;
    break;
  case SB_PQ_BOOL:
    v->b = k & 1;
    break;
  default:
    v->slen = (size_t)snprintf(v->s, sizeof v->s, "value-%llu", (unsigned long long)k);
    break;
  }
}

/* Column state across rows: its generator and the current runs. */
typedef struct colstate {
  uint64_t rng;
  uint64_t run_val;
  int run_left;
  int null_left;
  bool null_run;
} colstate_t;

static void gen_value(const colspec_t *cs, colstate_t *st, size_t row, pqv_t *v) {
  memset(v, 0, sizeof *v);
  switch (cs->nulls) {
  case N_NONE:
    break;
  case N_PCT:
    v->null = (int)(pqv_rand(&st->rng) % 100) < cs->narg;
    break;
  case N_ALL:
    v->null = true;
    break;
  case N_BLOCKS:
    v->null = (row / (size_t)cs->narg) % 2 == 1;
    break;
  case N_RUNS:
    if (st->null_left == 0) {
      st->null_run = !st->null_run;
      st->null_left = 1 + (int)(pqv_rand(&st->rng) % (uint64_t)cs->narg);
    }
    st->null_left--;
    v->null = st->null_run;
    break;
  }
  sb_pq_type_t t = cs->col.type;
  switch (cs->gen) {
  case G_RAND: {
    uint64_t r = pqv_rand(&st->rng);
    if (t == SB_PQ_INT32)
      v->i = (int32_t)(uint32_t)r;
    else if (t == SB_PQ_INT64)
      v->i = (int64_t)r;
    else if (t == SB_PQ_DOUBLE)
      v->d = ((double)(r >> 11) / 9007199254740992.0 - 0.5) * 1e6;
    else if (t == SB_PQ_BOOL)
      v->b = r & 1;
    else
      v->slen = (size_t)snprintf(v->s, sizeof v->s, "r%016llx", (unsigned long long)r);
    break;
  }
  case G_SET:
    from_num(v, t, pqv_rand(&st->rng) % (uint64_t)cs->garg);
    break;
  case G_RUNS:
    if (st->run_left == 0) {
      st->run_val = pqv_rand(&st->rng) % 7;
      st->run_left = 1 + (int)(pqv_rand(&st->rng) % (uint64_t)cs->garg);
    }
    st->run_left--;
    from_num(v, t, st->run_val);
    break;
  case G_SEQ:
    if (t == SB_PQ_INT64 || t == SB_PQ_INT32)
      v->i = (int64_t)row;
    else
      from_num(v, t, row);
    break;
  case G_LIST: {
    size_t n = 0;
    while (cs->list[n])
      n++;
    from_text(v, t, cs->list[row % n]);
    break;
  }
  }
}

/* Calls that must fail and store nothing: a row with values in some
 * columns (from the previous row's values, or junk) ended early, puts of
 * the wrong type, into a column that already has a value, nulls into a
 * required column, invalid UTF-8.  0, or 1 when a call did not fail. */
static int faults(sb_pq_writer_t *w, const sb_pq_col_t *cols, size_t ncols, pqv_t *junk, size_t r) {
  int bad = 0;
  for (size_t c = 0; c + 1 < ncols; c++) {
    pqv_t v = junk[c];
    v.null = v.null && cols[c].optional;
    if (r == 0) {
      memset(&v, 0, sizeof v);
      v.slen = (size_t)snprintf(v.s, sizeof v.s, "junk that must not appear");
    }
    if (pqv_put(w, c, &cols[c], &v)) bad = 1;
    /* The same column twice in a row. */
    if (pqv_put(w, c, &cols[c], &v) != SOUK_EINVAL) bad = 1;
  }
  if (sb_pq_row_end(w) != SOUK_EINVAL) bad = 1;
  if (sb_pq_put_i32(w, 0, 1) != SOUK_EINVAL) bad = 1;                 /* i64 column */
  if (sb_pq_put_null(w, 1) != SOUK_EINVAL) bad = 1;                   /* required */
  if (sb_pq_put_str(w, 1, "\xff\xfe", 2) != SOUK_EINVAL) bad = 1;     /* not UTF-8 */
  if (sb_pq_put_str(w, 1, "\xed\xa0\x80", 3) != SOUK_EINVAL) bad = 1; /* a surrogate */
  if (sb_pq_put_i64(w, ncols, 1) != SOUK_EINVAL) bad = 1;             /* no such column */
  if (bad) fprintf(stderr, "fault_recovery: a bad call was accepted before row %zu\n", r);
  return bad;
}

static const char *type_name(sb_pq_type_t t) {
  static const char *const n[] = {"INT32", "INT64", "DOUBLE", "BOOLEAN", "STRING"};
  return n[t];
}

static int write_shape(const char *dir, const shape_t *s) {
  size_t ncols = shape_ncols(s);
  sb_pq_col_t cols[SBSUM_NCOLS];
  char ladder_names[16][16];
  if (s->summary)
    sbsum_cols(cols, ladder_names);
  else
    for (size_t c = 0; c < ncols; c++)
      cols[c] = s->cols[c].col;
  char path[512];
  snprintf(path, sizeof path, "%s/%s.parquet", dir, s->name);
  sb_pq_writer_t *w;
  int rc = sb_pq_open(&w, path, cols, ncols, &s->opts);
  if (rc) {
    fprintf(stderr, "%s: open: %s\n", path, souk_strerror(rc));
    return 1;
  }
  souk_buf_t json = {0};
  souk_jw_t j;
  souk_jw_init(&j, &json);
  souk_jw_obj(&j);
  souk_jw_key(&j, "columns");
  souk_jw_arr(&j);
  for (size_t c = 0; c < ncols; c++) {
    souk_jw_obj(&j);
    souk_jw_key(&j, "name");
    souk_jw_str(&j, cols[c].name);
    souk_jw_key(&j, "type");
    souk_jw_str(&j, type_name(cols[c].type));
    souk_jw_key(&j, "optional");
    souk_jw_bool(&j, cols[c].optional);
    souk_jw_key(&j, "dictionary");
    souk_jw_bool(&j, cols[c].dictionary);
    souk_jw_key(&j, "logical");
    souk_jw_str(&j, cols[c].logical == SB_PQ_LT_TIMESTAMP_MS ? "TIMESTAMP_MILLIS"
                    : cols[c].logical == SB_PQ_LT_DATE       ? "DATE"
                                                             : "");
    souk_jw_end(&j);
  }
  souk_jw_end(&j);
  souk_jw_key(&j, "options");
  souk_jw_obj(&j);
  souk_jw_key(&j, "row_group_rows");
  souk_jw_u64(&j, s->opts.row_group_rows ? s->opts.row_group_rows : 1000000);
  souk_jw_key(&j, "dict_max_bytes");
  souk_jw_u64(&j, s->opts.dict_max_bytes ? s->opts.dict_max_bytes : 1u << 20);
  souk_jw_key(&j, "compressed");
  souk_jw_bool(&j, !s->opts.uncompressed);
  souk_jw_end(&j);
  souk_jw_key(&j, "rows");
  souk_jw_arr(&j);
  colstate_t st[12] = {0};
  for (size_t c = 0; c < ncols && !s->summary; c++)
    st[c].rng = 0x1234567ull * (c + 1) + strlen(s->name);
  pqv_t v[SBSUM_NCOLS];
  for (size_t r = 0; r < s->nrows && !rc; r++) {
    if (s->summary)
      sbsum_row(42, 1749398400000, r, v);
    else
      for (size_t c = 0; c < ncols; c++)
        gen_value(&s->cols[c], &st[c], r, &v[c]);
    if (s->faults && r % 3 == 0 && (rc = faults(w, cols, ncols, v, r))) break;
    souk_jw_arr(&j);
    for (size_t c = 0; c < ncols && !rc; c++) {
      rc = pqv_put(w, c, &cols[c], &v[c]);
      pqv_json(&j, &cols[c], &v[c]);
    }
    souk_jw_end(&j);
    if (!rc) rc = sb_pq_row_end(w);
  }
  souk_jw_end(&j);
  souk_jw_end(&j);
  if (rc) {
    fprintf(stderr, "%s: put: %s\n", path, souk_strerror(rc));
    sb_pq_abort(w);
    souk_buf_free(&json);
    return 1;
  }
  if ((rc = sb_pq_close(w))) {
    fprintf(stderr, "%s: close: %s\n", path, souk_strerror(rc));
    souk_buf_free(&json);
    return 1;
  }
  snprintf(path, sizeof path, "%s/%s.json", dir, s->name);
  FILE *f = fopen(path, "w");
  if (!f || fwrite(json.data, 1, json.len, f) != json.len || fclose(f) != 0) {
    fprintf(stderr, "%s: cannot write\n", path);
    souk_buf_free(&json);
    return 1;
  }
  souk_buf_free(&json);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  int bad = 0;
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
    bad |= write_shape(argv[1], &shapes[i]);
  return bad;
}
