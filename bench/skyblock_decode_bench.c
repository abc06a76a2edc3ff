/* Where the per-auction decode time goes: base64, gunzip (souk's own
 * inflater, libdeflate and zlib), the NBT walk alone, and the walk with
 * the item key, over the 1,000 real item_bytes of tests/fixtures/hypixel's
 * auctions page.
 *
 * The budget is 0.3 s of CPU for a sweep of 66,000 auctions, JSON
 * parse and ladder update included: about 4 µs an auction in all.
 *
 * Usage: skyblock_decode_bench [fixtures-dir] [seconds-per-figure]
 * Each figure is the median of 5 timings of whole passes over the 1,000
 * items, in thread CPU time (a shared machine's other load stays out), as
 * µs per auction.  The figures are also written to
 * bench/out/skyblock_decode.json. */
#include "../src/modules/skyblock/item.h"
#include "../src/modules/skyblock/nbt.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"
#include "souk/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#ifndef SOUK_FIXTURES
#define SOUK_FIXTURES "tests/fixtures"
#endif

#define N_REPEAT 5

static double g_secs = 0.5;
static volatile uint64_t g_sink;

typedef struct blob {
  uint8_t *p;
  size_t n;
} blob_t;

typedef struct items {
  size_t n;
  const char **b64;
  size_t *b64_len;
  blob_t *gz, *nbt;
  size_t b64_bytes, gz_bytes, nbt_bytes;
} items_t;

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
  fprintf(stderr, "skyblock_decode_bench: %s\n", what);
  exit(1);
}

static char *gunzip_file(const char *path, size_t *len) {
  gzFile f = gzopen(path, "rb");
  if (!f) return NULL;
  souk_buf_t b = {0};
  char chunk[1 << 16];
  int n;
  while ((n = gzread(f, chunk, sizeof chunk)) > 0)
    souk_buf_append(&b, chunk, (size_t)n);
  gzclose(f);
  *len = b.len;
  return souk_buf_steal(&b);
}

typedef void (*pass_cb)(sb_decoder_t *d, const items_t *it);

/* The median over N_REPEAT timings of as many passes as fill g_secs, in
 * µs per item. */
static double measure(sb_decoder_t *d, const items_t *it, pass_cb fn) {
  double t[N_REPEAT];
  fn(d, it); /* warm the caches and the decoder's buffers */
  double t0 = cpu_s();
  fn(d, it);
  double one = cpu_s() - t0;
  int passes = one > 0 ? (int)(g_secs / N_REPEAT / one) + 1 : 100;
  for (int r = 0; r < N_REPEAT; r++) {
    t0 = cpu_s();
    for (int p = 0; p < passes; p++)
      fn(d, it);
    t[r] = (cpu_s() - t0) / passes / (double)it->n * 1e6;
  }
  for (int i = 1; i < N_REPEAT; i++)
    for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
      double x = t[j];
      t[j] = t[j - 1];
      t[j - 1] = x;
    }
  return t[N_REPEAT / 2];
}

static void pass_base64(sb_decoder_t *d, const items_t *it) {
  for (size_t i = 0; i < it->n; i++) {
    const uint8_t *gz;
    size_t n;
    if (sb_decode_base64(d, it->b64[i], it->b64_len[i], &gz, &n)) die("base64");
    g_sink += n;
  }
}

static void pass_gunzip(sb_decoder_t *d, const items_t *it) {
  for (size_t i = 0; i < it->n; i++) {
    const uint8_t *nbt;
    size_t n;
    if (sb_decode_gunzip(d, it->gz[i].p, it->gz[i].n, &nbt, &n)) die("gunzip");
    g_sink += n;
  }
}

static void pass_check(sb_decoder_t *d, const items_t *it) {
  (void)d;
  for (size_t i = 0; i < it->n; i++)
    if (sb_nbt_check(it->nbt[i].p, it->nbt[i].n)) die("nbt check");
}

static void pass_item(sb_decoder_t *d, const items_t *it) {
  for (size_t i = 0; i < it->n; i++) {
    sb_item_t item;
    if (sb_item_from_nbt(d, it->nbt[i].p, it->nbt[i].n, &item)) die("item");
    g_sink += item.count;
  }
}

static void pass_all(sb_decoder_t *d, const items_t *it) {
  for (size_t i = 0; i < it->n; i++) {
    sb_item_t item;
    if (sb_item_decode(d, it->b64[i], it->b64_len[i], &item)) die("decode");
    g_sink += item.count;
  }
}

static void pass_json(sb_decoder_t *d, const items_t *it) {
  souk_buf_t out = {0};
  for (size_t i = 0; i < it->n; i++) {
    souk_buf_reset(&out);
    if (sb_nbt_json(it->nbt[i].p, it->nbt[i].n, &out)) die("json");
    g_sink += out.len;
  }
  souk_buf_free(&out);
}

static blob_t copy_blob(const uint8_t *p, size_t n) {
  blob_t b = {souk_malloc(n ? n : 1), n};
  memcpy(b.p, p, n);
  return b;
}

static souk_buf_t g_out;
static souk_jw_t g_jw;

static void figure(const char *key, const char *label, double us) {
  printf("skyblock: %-44s %7.3f µs/auction  %8.1f ms per 66,000\n", label, us, us * 66.0);
  char num[32];
  snprintf(num, sizeof num, "%.4f", us);
  souk_jw_key(&g_jw, key);
  souk_jw_raw(&g_jw, num, strlen(num));
}

int main(int argc, char **argv) {
  const char *fixtures = argc > 1 ? argv[1] : SOUK_FIXTURES;
  if (argc > 2) g_secs = atof(argv[2]);
  char path[1024];
  snprintf(path, sizeof path, "%s/hypixel/auctions-page0-2025-06-08.json.gz", fixtures);
  size_t len;
  char *text = gunzip_file(path, &len);
  if (!text) die("cannot read the auctions page fixture");
  souk_json_t j = {0};
  if (souk_json_parse(&j, text, len)) die("page does not parse");
  int arr = souk_json_get(&j, 0, "auctions");
  items_t it = {.n = souk_json_count(&j, arr)};
  it.b64 = souk_calloc(it.n, sizeof *it.b64);
  it.b64_len = souk_calloc(it.n, sizeof *it.b64_len);
  it.gz = souk_calloc(it.n, sizeof *it.gz);
  it.nbt = souk_calloc(it.n, sizeof *it.nbt);
  sb_decoder_t *d = sb_decoder_new();
  for (size_t i = 0; i < it.n; i++) {
    int t = souk_json_get(&j, souk_json_at(&j, arr, i), "item_bytes");
    it.b64[i] = souk_json_raw(&j, t, &it.b64_len[i]);
    const uint8_t *gz, *nbt;
    size_t gzn, nbtn;
    if (sb_decode_base64(d, it.b64[i], it.b64_len[i], &gz, &gzn)) die("base64");
    it.gz[i] = copy_blob(gz, gzn);
    if (sb_decode_gunzip(d, it.gz[i].p, it.gz[i].n, &nbt, &nbtn)) die("gunzip");
    it.nbt[i] = copy_blob(nbt, nbtn);
    it.b64_bytes += it.b64_len[i];
    it.gz_bytes += gzn;
    it.nbt_bytes += nbtn;
  }
  printf("skyblock: %zu item_bytes from the real page: base64 %.0f B, gzip %.0f B, NBT %.0f B "
         "on average\n",
         it.n, (double)it.b64_bytes / it.n, (double)it.gz_bytes / it.n,
         (double)it.nbt_bytes / it.n);

  souk_jw_init(&g_jw, &g_out);
  souk_jw_obj(&g_jw);
  figure("base64_us", "base64", measure(d, &it, pass_base64));
  /* The three inflaters, each measured three times in turn so that a
   * change in the machine's load hits all three alike; the figure is the
   * median of the three medians. */
  static const char *const names[SB_INFLATE_COUNT] = {"souk", "libdeflate", "zlib"};
  double gz[SB_INFLATE_COUNT][3];
  for (int round = 0; round < 3; round++)
    for (int w = 0; w < SB_INFLATE_COUNT; w++) {
      sb_decoder_set_inflater(d, (sb_inflater_t)w);
      gz[w][round] = measure(d, &it, pass_gunzip);
    }
  double med[SB_INFLATE_COUNT];
  for (int w = 0; w < SB_INFLATE_COUNT; w++) {
    double *t = gz[w];
    med[w] = t[0] > t[1] ? (t[1] > t[2]   ? t[1]
                            : t[0] > t[2] ? t[2]
                                          : t[0])
                         : (t[0] > t[2]   ? t[0]
                            : t[1] > t[2] ? t[2]
                                          : t[1]);
    char key[64], label[64];
    snprintf(key, sizeof key, "gunzip_%s_us", names[w]);
    snprintf(label, sizeof label, "gunzip, %s%s", names[w], w == SB_INFLATE_SOUK ? " (used)" : "");
    figure(key, label, med[w]);
  }
  sb_decoder_set_inflater(d, SB_INFLATE_SOUK);
  figure("nbt_check_us", "NBT structure check only", measure(d, &it, pass_check));
  figure("nbt_item_key_us", "NBT walk + item key (stage 3)", measure(d, &it, pass_item));
  for (int w = 0; w < SB_INFLATE_COUNT; w++) {
    char key[64], label[64];
    snprintf(key, sizeof key, "all_%s_us", names[w]);
    snprintf(label, sizeof label, "all: sb_item_decode, %s", names[w]);
    sb_decoder_set_inflater(d, (sb_inflater_t)w);
    figure(key, label, measure(d, &it, pass_all));
  }
  sb_decoder_set_inflater(d, SB_INFLATE_SOUK);
  figure("nbt_json_us", "NBT to JSON (debug path, not per auction)", measure(d, &it, pass_json));
  printf("skyblock: souk inflates in %.0f%% of libdeflate's time, %.0f%% of zlib's; "
         "libdeflate in %.0f%% of zlib's\n",
         100.0 * med[SB_INFLATE_SOUK] / med[SB_INFLATE_LIBDEFLATE],
         100.0 * med[SB_INFLATE_SOUK] / med[SB_INFLATE_ZLIB],
         100.0 * med[SB_INFLATE_LIBDEFLATE] / med[SB_INFLATE_ZLIB]);
  souk_jw_end(&g_jw);

#ifdef SOUK_BENCH_OUT_DIR
  mkdir(SOUK_BENCH_OUT_DIR, 0755);
  FILE *f = fopen(SOUK_BENCH_OUT_DIR "/skyblock_decode.json", "w");
  if (f) {
    fwrite(g_out.data, 1, g_out.len, f);
    fclose(f);
    printf("skyblock: figures written to %s\n", SOUK_BENCH_OUT_DIR "/skyblock_decode.json");
  }
#endif
  souk_buf_free(&g_out);
  for (size_t i = 0; i < it.n; i++) {
    souk_free(it.gz[i].p);
    souk_free(it.nbt[i].p);
  }
  souk_free(it.b64);
  souk_free(it.b64_len);
  souk_free(it.gz);
  souk_free(it.nbt);
  sb_decoder_free(d);
  souk_json_free(&j);
  souk_free(text);
  return 0;
}
