/* The Parquet writer's pieces and its file handling.  Whether the files are
 * correct Parquet is proven by independent readers (tests/parquet); here:
 * the Thrift compact bytes and the RLE / bit-packed hybrid against the
 * specs' own examples and a decoder written from Encodings.md, the
 * atomic write (temporary file, rename, abort), the API's refusals, and
 * the hive-partitioned paths. */
/* cmocka.h needs these headers included before it. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* clang-format on */

#include "modules/skyblock/parquet.h"
#include "modules/skyblock/pqenc.h"
#include "souk/alloc.h"
#include "souk/buf.h"
#include "souk/err.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Thrift compact protocol ------------------------------------------- */

static void test_thrift_compact(void **state) {
  souk_buf_t b = {0};
  pq_tw_t tw;
  pq_tw_init(&tw, &b);
  pq_tw_i32(&tw, 1, 5);                 /* delta 1, type i32 (5): 0x15, zigzag(5) = 10 */
  pq_tw_i64(&tw, 3, -1);                /* delta 2, type i64 (6): 0x26, zigzag(-1) = 1 */
  pq_tw_bool(&tw, 4, true);             /* delta 1, TRUE (1): 0x11 */
  pq_tw_bool(&tw, 5, false);            /* 0x12 */
  pq_tw_bin(&tw, 6, "ab", 2);           /* 0x18, length 2, bytes */
  pq_tw_struct(&tw, 7);                 /* 0x1c */
  pq_tw_i32(&tw, 1, 300);               /* nested ids restart: 0x15, zigzag 600 = d8 04 */
  pq_tw_end(&tw);                       /* 0x00 */
  pq_tw_i32(&tw, 30, 0);                /* delta 23 > 15: long form 0x05, zigzag(30) = 60 */
  pq_tw_list(&tw, 31, PQ_T_I32, 2);     /* 0x19, size 2 type i32: 0x25 */
  pq_tw_elem_i32(&tw, -2);              /* zigzag 3 */
  pq_tw_elem_i32(&tw, 64);              /* zigzag 128: 80 01 */
  pq_tw_list(&tw, 32, PQ_T_BINARY, 15); /* 0x19, 0xf8, then size 15 */
  for (int i = 0; i < 15; i++)
    pq_tw_elem_bin(&tw, "", 0);
  pq_tw_end(&tw);
  static const unsigned char want[] = {
      0x15, 0x0a, 0x26, 0x01, 0x11, 0x12, 0x18, 0x02, 'a',  'b',  0x1c, 0x15, 0xd8, 0x04,
      0x00, 0x05, 0x3c, 0x00, 0x19, 0x25, 0x03, 0x80, 0x01, 0x19, 0xf8, 0x0f, 0,    0,
      0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0x00};
  assert_int_equal(b.len, sizeof want);
  assert_memory_equal(b.data, want, sizeof want);

  /* ULEB128 and zigzag edges. */
  souk_buf_reset(&b);
  pq_uleb(&b, 0);
  pq_uleb(&b, 127);
  pq_uleb(&b, 128);
  pq_uleb(&b, pq_zigzag(INT64_MIN));
  static const unsigned char w2[] = {0x00, 0x7f, 0x80, 0x01, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  assert_int_equal(b.len, sizeof w2);
  assert_memory_equal(b.data, w2, sizeof w2);
  assert_int_equal(pq_zigzag(INT64_MAX), UINT64_MAX - 1);
  souk_buf_free(&b);
}

/* ---- RLE / bit-packed hybrid ------------------------------------------- */

/* A decoder written from Encodings.md, independent of the encoder: reads
 * runs until n values are out; returns how many bytes it consumed, or 0 on
 * malformed input. */
static size_t hybrid_decode(const unsigned char *p, size_t len, unsigned width, uint32_t *out,
                            size_t n) {
  size_t i = 0, got = 0;
  while (got < n) {
    uint64_t h = 0;
    unsigned shift = 0;
    do {
      if (i >= len) return 0;
      h |= (uint64_t)(p[i] & 0x7f) << shift;
      shift += 7;
    } while (p[i++] & 0x80);
    if (h & 1) {
      size_t count = (h >> 1) * 8;
      if (i + (h >> 1) * width > len) return 0;
      for (size_t k = 0; k < count; k++) {
        uint32_t v = 0;
        for (unsigned bit = 0; bit < width; bit++) {
          size_t at = k * width + bit;
          v |= (uint32_t)((p[i + at / 8] >> (at % 8)) & 1) << bit;
        }
        if (got < n) out[got++] = v;
      }
      i += (h >> 1) * width;
    } else {
      size_t count = h >> 1, vb = (width + 7) / 8;
      if (count == 0 || i + vb > len) return 0;
      uint32_t v = 0;
      for (size_t k = 0; k < vb; k++)
        v |= (uint32_t)p[i + k] << (8 * k);
      i += vb;
      for (size_t k = 0; k < count && got < n; k++)
        out[got++] = v;
    }
  }
  return i;
}

static void roundtrip(const uint32_t *v, size_t n, unsigned width) {
  souk_buf_t b = {0};
  pq_rle_hybrid(&b, v, n, width);
  uint32_t *back = souk_calloc(n + 1, sizeof *back);
  size_t used = hybrid_decode((unsigned char *)b.data, b.len, width, back, n);
  assert_int_equal(used, b.len); /* every byte written is needed */
  assert_memory_equal(back, v, n * sizeof *v);
  souk_free(back);
  souk_buf_free(&b);
}

static void test_rle_hybrid(void **state) {
  souk_buf_t b = {0};
  /* Ten zeros at width 1: one RLE run, header 10 << 1, one value byte. */
  uint32_t zeros[10] = {0};
  pq_rle_hybrid(&b, zeros, 10, 1);
  assert_int_equal(b.len, 2);
  assert_memory_equal(b.data, "\x14\x00", 2);
  /* Encodings.md's bit-packing example: 0..7 at width 3 is
   * 10001000 11000110 11111010 (one group: header 1 << 1 | 1). */
  souk_buf_reset(&b);
  uint32_t seq[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  pq_rle_hybrid(&b, seq, 8, 3);
  assert_int_equal(b.len, 4);
  assert_memory_equal(b.data, "\x03\x88\xc6\xfa", 4);
  /* A value wider than a byte repeats in two bytes, little-endian. */
  souk_buf_reset(&b);
  uint32_t wide[9] = {300, 300, 300, 300, 300, 300, 300, 300, 300};
  pq_rle_hybrid(&b, wide, 9, 9);
  assert_memory_equal(b.data, "\x12\x2c\x01", 3);
  souk_buf_free(&b);

  assert_int_equal(pq_bit_width(0), 1);
  assert_int_equal(pq_bit_width(1), 1);
  assert_int_equal(pq_bit_width(2), 2);
  assert_int_equal(pq_bit_width(255), 8);
  assert_int_equal(pq_bit_width(256), 9);
  assert_int_equal(pq_bit_width(UINT32_MAX), 32);

  /* Mixed streams at every width: runs just under and over 8, runs that
   * start inside a literal group, literals longer than 63 groups, and a
   * ragged end. */
  uint32_t v[3000];
  uint64_t x = 99;
  for (unsigned width = 1; width <= 32; width++) {
    uint32_t mask = width == 32 ? UINT32_MAX : (1u << width) - 1;
    size_t n = 0;
    while (n < sizeof v / sizeof *v) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      size_t run = (x >> 33) % 4 == 0 ? 1 + (x >> 40) % 20 : 1;
      uint32_t val = (uint32_t)(x >> 20) & mask;
      for (size_t k = 0; k < run && n < sizeof v / sizeof *v; k++)
        v[n++] = val;
    }
    for (size_t len = 0; len < 40; len++)
      roundtrip(v, len, width);
    roundtrip(v, 1000, width);
    roundtrip(v, sizeof v / sizeof *v, width);
  }
  /* All different for a long stretch: several literal runs of 63 groups. */
  for (size_t i = 0; i < 3000; i++)
    v[i] = i % 2;
  roundtrip(v, 3000, 1);
}

/* ---- files ------------------------------------------------------------- */

static char tmpdir[256];

static int setup(void **state) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/souk-pq-test-XXXXXX");
  if (!mkdtemp(tmpdir)) return -1;
  return 0;
}

static void rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char sub[1024];
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      rm_rf(sub);
    }
    if (d) closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

static int teardown(void **state) {
  rm_rf(tmpdir);
  return 0;
}

/* Names in dir, sorted, one string "a b c". */
static void list_dir(const char *dir, char *out, size_t cap) {
  struct dirent **names;
  int n = scandir(dir, &names, NULL, alphasort);
  out[0] = '\0';
  for (int i = 0; i < n; i++) {
    if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0) {
      if (out[0]) strncat(out, " ", cap - strlen(out) - 1);
      strncat(out, names[i]->d_name, cap - strlen(out) - 1);
    }
    free(names[i]);
  }
  free(names);
}

static const sb_pq_col_t cols2[] = {
    {"n", SB_PQ_INT64, false, true, SB_PQ_LT_NONE},
    {"s", SB_PQ_STRING, true, false, SB_PQ_LT_NONE},
};

static void test_atomic(void **state) {
  char path[1024], dir[512], listing[1024];
  snprintf(dir, sizeof dir, "%s/date=2025-06-08/hour=17", tmpdir);
  snprintf(path, sizeof path, "%s/part-1.parquet", dir);
  sb_pq_writer_t *w;
  /* Missing parents are created. */
  assert_int_equal(sb_pq_open(&w, path, cols2, 2, NULL), 0);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(sb_pq_put_i64(w, 0, i), 0);
    assert_int_equal(i % 3 ? sb_pq_put_str(w, 1, "x", 1) : sb_pq_put_null(w, 1), 0);
    assert_int_equal(sb_pq_row_end(w), 0);
  }
  assert_int_equal(sb_pq_rows(w), 100);
  /* While writing, only the hidden temporary file exists. */
  list_dir(dir, listing, sizeof listing);
  assert_non_null(strstr(listing, ".part-1.parquet.tmp-"));
  assert_null(strstr(listing, "part-1.parquet "));
  assert_int_equal(access(path, F_OK), -1);
  assert_int_equal(sb_pq_close(w), 0);
  /* Then only the final one. */
  list_dir(dir, listing, sizeof listing);
  assert_string_equal(listing, "part-1.parquet");
  /* It starts and ends with the magic, and the footer length fits. */
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  unsigned char head[4], tail[8];
  assert_int_equal(fread(head, 1, 4, f), 4);
  fseek(f, -8, SEEK_END);
  long size = ftell(f) + 8;
  assert_int_equal(fread(tail, 1, 8, f), 8);
  fclose(f);
  assert_memory_equal(head, "PAR1", 4);
  assert_memory_equal(tail + 4, "PAR1", 4);
  uint32_t flen = tail[0] | tail[1] << 8 | tail[2] << 16 | (uint32_t)tail[3] << 24;
  assert_true(flen > 0 && flen < (uint32_t)size - 12);

  /* Abort: nothing is left behind, and an older file of that name stays. */
  assert_int_equal(sb_pq_open(&w, path, cols2, 2, NULL), 0);
  assert_int_equal(sb_pq_put_i64(w, 0, 1), 0);
  sb_pq_abort(w);
  list_dir(dir, listing, sizeof listing);
  assert_string_equal(listing, "part-1.parquet");
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_size, size);

  /* A replacement appears whole, in one rename. */
  assert_int_equal(sb_pq_open(&w, path, cols2, 2, &(sb_pq_opts_t){.uncompressed = true}), 0);
  assert_int_equal(sb_pq_close(w), 0);
  assert_int_equal(stat(path, &st), 0);
  assert_true(st.st_size != size);
  list_dir(dir, listing, sizeof listing);
  assert_string_equal(listing, "part-1.parquet");

  /* A directory where the file should go: close fails, nothing remains
   * but the directory. */
  char blocked[600];
  snprintf(blocked, sizeof blocked, "%s/blocked.parquet", dir);
  assert_int_equal(mkdir(blocked, 0755), 0);
  assert_int_equal(sb_pq_open(&w, blocked, cols2, 2, NULL), 0);
  assert_int_equal(sb_pq_close(w), SOUK_EIO);
  list_dir(dir, listing, sizeof listing);
  assert_string_equal(listing, "blocked.parquet part-1.parquet");
  /* A parent that cannot be made. */
  char bad[700];
  snprintf(bad, sizeof bad, "%s/part-1.parquet/sub/x.parquet", dir);
  assert_int_equal(sb_pq_open(&w, bad, cols2, 2, NULL), SOUK_EIO);
  assert_null(w);
}

static void test_api_refusals(void **state) {
  char path[512];
  snprintf(path, sizeof path, "%s/api.parquet", tmpdir);
  sb_pq_writer_t *w = NULL;
  /* Bad schemas. */
  sb_pq_col_t dup[] = {{.name = "a", .type = SB_PQ_INT32}, {.name = "a", .type = SB_PQ_INT64}};
  assert_int_equal(sb_pq_open(&w, path, dup, 2, NULL), SOUK_EINVAL);
  sb_pq_col_t ts32[] = {{"t", SB_PQ_INT32, false, false, SB_PQ_LT_TIMESTAMP_MS}};
  assert_int_equal(sb_pq_open(&w, path, ts32, 1, NULL), SOUK_EINVAL);
  sb_pq_col_t noname[] = {{.name = "", .type = SB_PQ_INT32}};
  assert_int_equal(sb_pq_open(&w, path, noname, 1, NULL), SOUK_EINVAL);
  assert_int_equal(sb_pq_open(&w, path, cols2, 0, NULL), SOUK_EINVAL);
  assert_int_equal(access(path, F_OK), -1);

  assert_int_equal(sb_pq_open(&w, path, cols2, 2, NULL), 0);
  assert_int_equal(sb_pq_put_i32(w, 0, 1), SOUK_EINVAL);         /* INT64 column */
  assert_int_equal(sb_pq_put_null(w, 0), SOUK_EINVAL);           /* required */
  assert_int_equal(sb_pq_put_i64(w, 2, 1), SOUK_EINVAL);         /* no column 2 */
  assert_int_equal(sb_pq_put_str(w, 1, "\xc3", 1), SOUK_EINVAL); /* cut UTF-8 */
  assert_int_equal(sb_pq_put_i64(w, 0, 7), 0);
  assert_int_equal(sb_pq_put_i64(w, 0, 8), SOUK_EINVAL); /* twice */
  /* A row missing a column is refused and dropped... */
  assert_int_equal(sb_pq_row_end(w), SOUK_EINVAL);
  assert_int_equal(sb_pq_rows(w), 0);
  /* ...so the next row starts clean. */
  assert_int_equal(sb_pq_put_i64(w, 0, 9), 0);
  assert_int_equal(sb_pq_put_str(w, 1, "", 0), 0);
  assert_int_equal(sb_pq_row_end(w), 0);
  assert_int_equal(sb_pq_rows(w), 1);
  /* A row begun but not ended at close is dropped. */
  assert_int_equal(sb_pq_put_i64(w, 0, 10), 0);
  assert_int_equal(sb_pq_close(w), 0);
}

static void test_hive_path(void **state) {
  char p[128];
  /* 2025-06-08 17:07:40.812 UTC (the fixture page's lastUpdated). */
  int n = sb_pq_hive_path(p, sizeof p, "/data/sb", 1749402460812, "123-4");
  assert_string_equal(p, "/data/sb/date=2025-06-08/hour=17/part-123-4.parquet");
  assert_int_equal(n, strlen(p));
  n = sb_pq_hive_path(p, sizeof p, "r", 0, "x");
  assert_string_equal(p, "r/date=1970-01-01/hour=00/part-x.parquet");
  assert_int_equal(n, strlen(p));
  /* One millisecond before 16:00 is still hour 15. */
  assert_true(sb_pq_hive_path(p, sizeof p, "r", 1749398400000 - 1, "x") > 0);
  assert_string_equal(p, "r/date=2025-06-08/hour=15/part-x.parquet");
  assert_int_equal(sb_pq_hive_path(p, 20, "r", 0, "x"), SOUK_ETOOBIG);
  assert_string_equal(p, "");
  assert_int_equal(sb_pq_hive_path(p, sizeof p, "r", -1, "x"), SOUK_EINVAL);
  assert_int_equal(sb_pq_hive_path(p, sizeof p, "r", 0, "../x"), SOUK_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_thrift_compact),
      cmocka_unit_test(test_rle_hybrid),
      cmocka_unit_test_setup_teardown(test_atomic, setup, teardown),
      cmocka_unit_test_setup_teardown(test_api_refusals, setup, teardown),
      cmocka_unit_test(test_hive_path),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
