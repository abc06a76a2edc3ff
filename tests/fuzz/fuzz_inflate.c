/* libFuzzer target for souk's inflater (src/modules/skyblock/inflate.c),
 * checked against zlib on every input: the same verdict, and when both
 * accept, the same bytes and the same input used.
 *
 * The first byte picks the path (its low two bits) and the room for the
 * output (the rest), the other bytes are the input:
 *   path 0  a raw DEFLATE stream (sb_inflate_raw against zlib's raw
 *           inflate), with room for 64 * (first byte >> 2) bytes of output,
 *           or 256 KB when that is 0: streams that need more are errors
 *           for both;
 *   path 1  a gzip member as it is (sb_gunzip against zlib's gunzip, as
 *           item.c runs it): headers, trailers, lying ISIZEs;
 *   path 2  the raw stream wrapped here into a gzip member whose trailer
 *           is right (the CRC-32 and length of zlib's output) when zlib
 *           accepts the stream, so that mutations of the stream reach the
 *           checks after it; both must accept exactly then;
 *   path 3  the same with a corrupt CRC-32: both must refuse.
 * souk's inflater runs twice, with the decoding loop compiled for BMI2
 * where the CPU has it and for the baseline, which must agree.  Any
 * difference aborts.  Writes past the output's slack are caught by
 * ASan: the output buffer is allocated to the byte.
 *
 * Run: fuzz_inflate tests/fuzz/corpus/inflate
 * The suite replays the saved corpus without libFuzzer (replay.c). */
#include "../../src/modules/skyblock/inflate.h"
#include "souk/err.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CHECK(c)                                                                                   \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      fprintf(stderr, "fuzz_inflate: check failed: %s (line %d)\n", #c, __LINE__);                 \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

#define MAX_OUT (256u << 10)

static sb_inflate_t *g_z, *g_zb; /* as built; forced to the baseline code */
static z_stream g_raw, g_gz;
static uint8_t *g_ref, *g_member;

/* zlib on a raw stream: 0 with *out_len and *in_used, or -1. */
static int zlib_raw(const uint8_t *in, size_t n, size_t cap, size_t *out_len, size_t *in_used) {
  CHECK(inflateReset(&g_raw) == Z_OK);
  g_raw.next_in = (Bytef *)in;
  g_raw.avail_in = (uInt)n;
  g_raw.next_out = g_ref;
  g_raw.avail_out = (uInt)cap;
  int r = inflate(&g_raw, Z_FINISH);
  *out_len = g_raw.total_out;
  *in_used = n - g_raw.avail_in;
  return r == Z_STREAM_END ? 0 : -1;
}

/* zlib on a gzip member, as item.c runs it: one member, ISIZE bytes of
 * output, nothing after it.  0 or -1. */
static int zlib_gunzip(const uint8_t *in, size_t n, size_t isize) {
  CHECK(inflateReset(&g_gz) == Z_OK);
  g_gz.next_in = (Bytef *)in;
  g_gz.avail_in = (uInt)n;
  g_gz.next_out = g_ref;
  g_gz.avail_out = (uInt)(isize + 1);
  int r = inflate(&g_gz, Z_FINISH);
  return r == Z_STREAM_END && g_gz.avail_in == 0 && g_gz.total_out == isize ? 0 : -1;
}

/* An output buffer of exactly cap + SB_INFLATE_SLACK bytes. */
static uint8_t *out_new(size_t cap) {
  uint8_t *p = malloc(cap + SB_INFLATE_SLACK);
  CHECK(p);
  return p;
}

static void raw(const uint8_t *p, size_t n, size_t cap) {
  uint8_t *out = out_new(cap), *out2 = out_new(cap);
  size_t len = 0, used = 0, len2 = 0, used2 = 0, zlen, zused;
  int rc = sb_inflate_raw(g_z, p, n, out, cap, &len, &used);
  CHECK(sb_inflate_raw(g_zb, p, n, out2, cap, &len2, &used2) == rc);
  if (rc == 0) CHECK(len2 == len && used2 == used && memcmp(out, out2, len) == 0);
  free(out2);
  int zrc = zlib_raw(p, n, cap, &zlen, &zused);
  CHECK(rc == 0 || rc == SOUK_EPARSE);
  CHECK((rc == 0) == (zrc == 0));
  if (rc == 0) {
    CHECK(len == zlen && used == zused);
    CHECK(memcmp(out, g_ref, len) == 0);
  }
  free(out);
}

static bool gunzip(const uint8_t *p, size_t n) {
  size_t isize = 0;
  if (n >= 18) {
    const uint8_t *t = p + n - 4;
    isize = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
  }
  if (isize > MAX_OUT) isize = MAX_OUT; /* too big for the ISIZE given: both refuse */
  uint8_t *out = out_new(isize), *out2 = out_new(isize);
  int rc = sb_gunzip(g_z, p, n, out, isize);
  CHECK(sb_gunzip(g_zb, p, n, out2, isize) == rc);
  if (rc == 0) CHECK(memcmp(out, out2, isize) == 0);
  free(out2);
  int zrc = n >= 18 ? zlib_gunzip(p, n, isize) : -1;
  CHECK(rc == 0 || rc == SOUK_EPARSE);
  CHECK((rc == 0) == (zrc == 0));
  if (rc == 0) CHECK(memcmp(out, g_ref, isize) == 0);
  free(out);
  return rc == 0;
}

/* Wrap a raw stream into a gzip member: the trailer right for zlib's
 * output of the stream when good_trailer and zlib accepts it. */
static void wrapped(const uint8_t *p, size_t n, bool good_trailer) {
  size_t zlen, zused;
  int zrc = zlib_raw(p, n, MAX_OUT, &zlen, &zused);
  size_t body = zrc == 0 ? zused : n;
  static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
  memcpy(g_member, head, 10);
  memcpy(g_member + 10, p, body);
  uint32_t crc = zrc == 0 ? (uint32_t)crc32(0, g_ref, (uInt)zlen) : 0;
  uint32_t len = zrc == 0 ? (uint32_t)zlen : 0;
  if (!good_trailer) crc ^= 1u << (n % 32);
  uint8_t *t = g_member + 10 + body;
  for (int i = 0; i < 4; i++) {
    t[i] = (uint8_t)(crc >> (8 * i));
    t[4 + i] = (uint8_t)(len >> (8 * i));
  }
  /* The member to the byte, so that ASan sees any read past it. */
  size_t m = 10 + body + 8;
  uint8_t *exact = malloc(m);
  CHECK(exact);
  memcpy(exact, g_member, m);
  bool ok = gunzip(exact, m);
  CHECK(ok == (zrc == 0 && good_trailer));
  free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_z) {
    g_z = sb_inflate_new();
    g_zb = sb_inflate_new();
    sb_inflate_use_baseline(g_zb);
    CHECK(inflateInit2(&g_raw, -15) == Z_OK);
    CHECK(inflateInit2(&g_gz, 16 + MAX_WBITS) == Z_OK);
    g_ref = malloc(MAX_OUT + 1);
    g_member = malloc((1u << 20) + 64);
    CHECK(g_ref && g_member);
  }
  if (size < 1 || size > (1u << 20)) return 0;
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  unsigned cap = (unsigned)(data[0] >> 2) * 64;
  switch (data[0] & 3) {
  case 0:
    raw(p, n, cap ? cap : MAX_OUT);
    break;
  case 1:
    gunzip(p, n);
    break;
  case 2:
    wrapped(p, n, true);
    break;
  default:
    wrapped(p, n, false);
    break;
  }
  return 0;
}
