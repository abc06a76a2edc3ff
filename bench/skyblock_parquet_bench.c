/* The size on disk of one hour's SkyBlock summary as Parquet, for 5,000
 * item keys (the target: under 1 MB), and the time to write it.
 * The hour is tests/parquet/summary_gen.h's synthetic one, which the
 * read-back test also checks with hyparquet and DuckDB.
 *
 * Usage: skyblock_parquet_bench [keys]
 * Writes into a temporary directory and removes it.  Figures also go to
 * bench/out/skyblock_parquet.json. */
#include "../tests/parquet/summary_gen.h"
#include "souk/alloc.h"
#include "souk/err.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct variant {
  const char *key, *label;
  sb_pq_opts_t opts;
  bool no_dict;
} variant_t;

/* Write the hour with the given options; its size and CPU time. */
static int write_hour(const char *path, size_t keys, const variant_t *v, off_t *size, double *cpu) {
  sb_pq_col_t cols[SBSUM_NCOLS];
  char names[16][16];
  sbsum_cols(cols, names);
  if (v->no_dict)
    for (int c = 0; c < SBSUM_NCOLS; c++)
      cols[c].dictionary = false;
  double t0 = cpu_s();
  sb_pq_writer_t *w;
  int rc = sb_pq_open(&w, path, cols, SBSUM_NCOLS, &v->opts);
  if (rc) return rc;
  pqv_t row[SBSUM_NCOLS];
  for (size_t r = 0; r < keys && !rc; r++) {
    sbsum_row(42, 1749398400000, r, row);
    for (int c = 0; c < SBSUM_NCOLS && !rc; c++)
      rc = pqv_put(w, (size_t)c, &cols[c], &row[c]);
    if (!rc) rc = sb_pq_row_end(w);
  }
  if (rc) {
    sb_pq_abort(w);
    return rc;
  }
  if ((rc = sb_pq_close(w))) return rc;
  *cpu = cpu_s() - t0;
  struct stat st;
  if (stat(path, &st)) return SOUK_EIO;
  *size = st.st_size;
  return 0;
}

int main(int argc, char **argv) {
  size_t keys = argc > 1 ? (size_t)atol(argv[1]) : 5000;
  char dir[] = "/tmp/souk-pq-bench-XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  const variant_t variants[] = {
      {"zstd3_dict", "zstd level 3, dictionaries (what souk writes)", {0}, false},
      {"zstd3_plain", "zstd level 3, no dictionaries", {0}, true},
      {"zstd9_dict", "zstd level 9, dictionaries", {.zstd_level = 9}, false},
      {"uncompressed_dict", "uncompressed, dictionaries", {.uncompressed = true}, false},
  };
  souk_buf_t out = {0};
  souk_jw_t j;
  souk_jw_init(&j, &out);
  souk_jw_obj(&j);
  souk_jw_key(&j, "keys");
  souk_jw_u64(&j, keys);
  int bad = 0;
  printf("skyblock: one hour's summary, %zu item keys, %d columns\n", keys, SBSUM_NCOLS);
  for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s.parquet", dir, variants[i].key);
    off_t size;
    double cpu;
    int rc = write_hour(path, keys, &variants[i], &size, &cpu);
    if (rc) {
      fprintf(stderr, "skyblock_parquet_bench: %s: %s\n", variants[i].key, souk_strerror(rc));
      bad = 1;
      continue;
    }
    printf("skyblock: %-46s %8.1f KB  %6.1f ms CPU  %s\n", variants[i].label, (double)size / 1024,
           cpu * 1e3,
           i == 0 ? (size < (1 << 20) ? "(target < 1 MB: PASS)" : "(target < 1 MB: FAIL)") : "");
    if (i == 0 && size >= (1 << 20)) bad = 1;
    souk_jw_key(&j, variants[i].key);
    souk_jw_obj(&j);
    souk_jw_key(&j, "bytes");
    souk_jw_i64(&j, (int64_t)size);
    souk_jw_key(&j, "cpu_ms");
    char num[32];
    snprintf(num, sizeof num, "%.2f", cpu * 1e3);
    souk_jw_raw(&j, num, strlen(num));
    souk_jw_end(&j);
    unlink(path);
  }
  souk_jw_end(&j);
  rmdir(dir);
#ifdef SOUK_BENCH_OUT_DIR
  mkdir(SOUK_BENCH_OUT_DIR, 0755);
  FILE *f = fopen(SOUK_BENCH_OUT_DIR "/skyblock_parquet.json", "w");
  if (f) {
    fwrite(out.data, 1, out.len, f);
    fclose(f);
  }
#endif
  souk_buf_free(&out);
  return bad;
}
