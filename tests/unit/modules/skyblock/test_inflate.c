/* souk's inflater (src/modules/skyblock/inflate.c) against the reference
 * implementations: every real item_bytes of the fixtures and thousands of
 * generated members decode byte for byte as libdeflate and zlib decode
 * them; for corrupt input (every truncation, bit flips, random bytes,
 * hand-made streams that break each rule of RFC 1951 and 1952) it says
 * what zlib says, accepting exactly what zlib accepts, and never reads or
 * writes out of bounds (this runs under ASan and UBSan in the suite).
 * Each input goes through both compilations of the decoding loop (for
 * BMI2 where the CPU has it, and for the baseline). */
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

#include "modules/skyblock/b64.h"
#include "modules/skyblock/inflate.h"
#include "sbtest.h"
#include "souk/err.h"
#include "souk/json.h"

#include <libdeflate.h>
#include <zlib.h>

#define FIX SOUK_TEST_FIXTURES "/hypixel/"

/* A reproducible pseudo-random sequence (splitmix64). */
static uint64_t g_rng = 0x5eed;
static uint64_t rnd(void) {
  uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static unsigned rnd_below(unsigned n) { return (unsigned)(rnd() % n); }

static sb_inflate_t *g_z, *g_zb; /* as built; forced to the baseline code */
static struct libdeflate_decompressor *g_ld;

/* An output buffer with the slack souk's inflater may write into, and a
 * guard after it that must stay untouched. */
#define GUARD 64
static uint8_t *out_new(size_t cap) {
  uint8_t *p = souk_malloc(cap + SB_INFLATE_SLACK + GUARD);
  memset(p + cap + SB_INFLATE_SLACK, 0xA5, GUARD);
  return p;
}
static void out_check_guard(const uint8_t *p, size_t cap) {
  for (size_t i = 0; i < GUARD; i++)
    assert_int_equal(p[cap + SB_INFLATE_SLACK + i], 0xA5);
}

/* souk's inflater, run twice: with the code the CPU picks and with the
 * baseline code (the same source compiled without BMI2), which must agree
 * in everything. */
static int souk_raw(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len,
                    size_t *in_used) {
  uint8_t *b = out_new(cap);
  size_t blen = 0, bused = 0;
  int rc = sb_inflate_raw(g_z, in, n, out, cap, out_len, in_used);
  int rb = sb_inflate_raw(g_zb, in, n, b, cap, &blen, &bused);
  assert_int_equal(rc, rb);
  if (rc == 0) {
    assert_int_equal(*out_len, blen);
    assert_int_equal(*in_used, bused);
    assert_memory_equal(out, b, blen);
  }
  out_check_guard(b, cap);
  souk_free(b);
  return rc;
}
static int souk_gunzip(const uint8_t *in, size_t n, uint8_t *out, size_t len) {
  uint8_t *b = out_new(len);
  int rc = sb_gunzip(g_z, in, n, out, len);
  assert_int_equal(sb_gunzip(g_zb, in, n, b, len), rc);
  if (rc == 0) assert_memory_equal(out, b, len);
  out_check_guard(b, len);
  souk_free(b);
  return rc;
}

/* ---- the references ------------------------------------------------------ */

/* zlib on a raw DEFLATE stream with out_cap bytes of room: 0 and the
 * output and input used when it reaches the final block's end, -1
 * otherwise (a data error, too little room, or too little input). */
static int zlib_raw(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len,
                    size_t *in_used) {
  z_stream s = {0};
  assert_int_equal(inflateInit2(&s, -15), Z_OK);
  s.next_in = (Bytef *)in;
  s.avail_in = (uInt)n;
  s.next_out = out;
  s.avail_out = (uInt)cap;
  int r = inflate(&s, Z_FINISH);
  *out_len = s.total_out;
  *in_used = n - s.avail_in;
  inflateEnd(&s);
  return r == Z_STREAM_END ? 0 : -1;
}

/* zlib on a gzip member, as item.c uses it: one member, the output ISIZE
 * long, nothing after it.  0 with the output in out, or -1. */
static int zlib_gunzip(const uint8_t *in, size_t n, uint8_t *out, size_t isize) {
  z_stream s = {0};
  assert_int_equal(inflateInit2(&s, 16 + MAX_WBITS), Z_OK);
  s.next_in = (Bytef *)in;
  s.avail_in = (uInt)n;
  s.next_out = out;
  s.avail_out = (uInt)(isize + 1);
  int r = inflate(&s, Z_FINISH);
  int ok = r == Z_STREAM_END && s.avail_in == 0 && s.total_out == isize;
  inflateEnd(&s);
  return ok ? 0 : -1;
}

static size_t trailer_isize(const uint8_t *gz, size_t n) {
  const uint8_t *t = gz + n - 4;
  return (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
}

/* ---- the comparisons ----------------------------------------------------- */

/* Both inflaters on a gzip member, each with an output of the trailer's
 * ISIZE: the same verdict and, when both accept, the same bytes.  Returns
 * whether they accepted. */
static bool same_gunzip(const uint8_t *gz, size_t n) {
  size_t isize = n >= 18 ? trailer_isize(gz, n) : 0;
  if (isize > (1u << 22)) isize = 1u << 22; /* a lying trailer: both refuse */
  uint8_t *a = out_new(isize), *b = souk_malloc(isize + 1);
  int ra = souk_gunzip(gz, n, a, isize);
  int rb = n >= 18 ? zlib_gunzip(gz, n, b, isize) : -1;
  if ((ra == 0) != (rb == 0)) fail_msg("souk %d, zlib %d on a %zu-byte member", ra, rb, n);
  if (ra == 0)
    assert_memory_equal(a, b, isize);
  else
    assert_int_equal(ra, SOUK_EPARSE);
  out_check_guard(a, isize);
  souk_free(a);
  souk_free(b);
  return ra == 0;
}

/* Both inflaters on a raw DEFLATE stream with cap bytes of room: the same
 * verdict, output and input used. */
static bool same_raw(const uint8_t *in, size_t n, size_t cap) {
  uint8_t *a = out_new(cap), *b = souk_malloc(cap ? cap : 1);
  size_t alen = 0, aused = 0, blen, bused;
  int ra = souk_raw(in, n, a, cap, &alen, &aused);
  int rb = zlib_raw(in, n, b, cap, &blen, &bused);
  if ((ra == 0) != (rb == 0))
    fail_msg("souk %d, zlib %d on a %zu-byte stream, room for %zu", ra, rb, n, cap);
  if (ra == 0) {
    assert_int_equal(alen, blen);
    assert_int_equal(aused, bused);
    assert_memory_equal(a, b, alen);
  } else {
    assert_int_equal(ra, SOUK_EPARSE);
  }
  out_check_guard(a, cap);
  souk_free(a);
  souk_free(b);
  return ra == 0;
}

/* A well-formed member of data: souk, libdeflate and zlib all give data
 * back, and so does the raw stream inside it. */
static void check_member(const uint8_t *gz, size_t n, const uint8_t *data, size_t len) {
  uint8_t *a = out_new(len), *l = souk_malloc(len + 1);
  if (souk_gunzip(gz, n, a, len) != 0) fail_msg("souk refused a %zu-byte member", n);
  assert_memory_equal(a, data, len);
  out_check_guard(a, len);
  size_t in_used = 0, out_len = 0;
  assert_int_equal(libdeflate_gzip_decompress_ex(g_ld, gz, n, l, len, &in_used, &out_len),
                   LIBDEFLATE_SUCCESS);
  assert_int_equal(out_len, len);
  assert_memory_equal(a, l, len);
  assert_true(same_gunzip(gz, n));
  souk_free(a);
  souk_free(l);
}

/* ---- real items ---------------------------------------------------------- */

/* Every item_bytes of the named JSON: a page ({"auctions": [...]}), an
 * array of auctions, or one auction. */
static size_t each_item(const char *path, void (*fn)(const uint8_t *gz, size_t n)) {
  size_t len;
  char *text = sbt_read_file(path, &len);
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, text, len), 0);
  int arr = souk_json_type(&j, 0) == SOUK_JSON_ARRAY ? 0 : souk_json_get(&j, 0, "auctions");
  size_t count = 0;
  size_t total = arr >= 0 ? souk_json_count(&j, arr) : 1;
  for (size_t i = 0; i < total; i++) {
    int a = arr >= 0 ? souk_json_at(&j, arr, i) : 0;
    int t = souk_json_get(&j, a, "item_bytes");
    if (souk_json_type(&j, t) == SOUK_JSON_OBJECT) t = souk_json_get(&j, t, "data");
    char b64[16384];
    int n = souk_json_str(&j, t, b64, sizeof b64);
    assert_true(n > 0);
    uint8_t gz[sizeof b64];
    size_t gz_len;
    assert_int_equal(sb_b64_decode(b64, (size_t)n, gz, &gz_len), 0);
    fn(gz, gz_len);
    count++;
  }
  souk_json_free(&j);
  souk_free(text);
  return count;
}

static void real_item(const uint8_t *gz, size_t n) {
  size_t isize = trailer_isize(gz, n);
  uint8_t *ref = souk_malloc(isize + 1);
  assert_int_equal(zlib_gunzip(gz, n, ref, isize), 0);
  check_member(gz, n, ref, isize);
  /* The raw stream alone, with exactly the room it needs and with more;
   * with one byte too few it is refused. */
  const uint8_t *raw = gz + 10;
  size_t raw_len = n - 18;
  assert_true(same_raw(raw, raw_len, isize));
  assert_true(same_raw(raw, raw_len, isize + 100));
  if (isize > 0) assert_false(same_raw(raw, raw_len, isize - 1));
  souk_free(ref);
}

static void test_real_items(void **state) {
  size_t n = each_item(FIX "auctions-page0-2025-06-08.json.gz", real_item);
  assert_int_equal(n, 1000);
  assert_int_equal(each_item(FIX "auctions_ended-2025-08-09.auctions.json", real_item), 120);
  assert_int_equal(each_item(FIX "doc-example-auctions_ended.json", real_item), 1);
  assert_int_equal(each_item(FIX "doc-example-auction-by-uuid.json", real_item), 1);
}

/* ---- generated members ----------------------------------------------------- */

/* Test data of n bytes in one of several shapes. */
static void make_data(uint8_t *p, size_t n, unsigned shape, const uint8_t *nbt, size_t nbt_len) {
  switch (shape) {
  case 0: /* incompressible */
    for (size_t i = 0; i < n; i++)
      p[i] = (uint8_t)rnd();
    break;
  case 1: /* skewed text: short codes for a few letters, long for the rest */
    for (size_t i = 0; i < n; i++) {
      unsigned r = rnd_below(1000);
      p[i] = r < 500 ? (uint8_t)('a' + r % 4) : r < 950 ? (uint8_t)('A' + r % 26) : (uint8_t)rnd();
    }
    break;
  case 2: /* runs: distance 1 and long matches */
    for (size_t i = 0; i < n;) {
      uint8_t c = (uint8_t)rnd_below(4);
      size_t run = 1 + rnd_below(300);
      for (; run && i < n; run--)
        p[i++] = c;
    }
    break;
  case 3: /* a short pattern repeated: distances 2 to 20 */
  {
    size_t period = 2 + rnd_below(19);
    for (size_t i = 0; i < n; i++)
      p[i] = i < period ? (uint8_t)rnd() : p[i - period];
    for (size_t k = rnd_below(8); k > 0 && n; k--)
      p[rnd_below((unsigned)n)] ^= 0x55;
    break;
  }
  default: /* real NBT, spliced and lightly mutated: what items look like */
    for (size_t i = 0; i < n;) {
      size_t from = rnd_below((unsigned)nbt_len), len = 1 + rnd_below(400);
      if (len > nbt_len - from) len = nbt_len - from;
      if (len > n - i) len = n - i;
      memcpy(p + i, nbt + from, len);
      i += len;
    }
    for (size_t k = rnd_below(20); k > 0 && n; k--)
      p[rnd_below((unsigned)n)] = (uint8_t)rnd();
    break;
  }
}

/* Run deflate with the given flush, growing out as it fills. */
static void deflate_out(z_stream *z, souk_buf_t *out, int flush) {
  int r;
  do {
    out->len = z->total_out;
    souk_buf_reserve(out, 65536);
    z->next_out = (Bytef *)out->data + z->total_out;
    z->avail_out = 65536;
    r = deflate(z, flush);
    assert_true(r == Z_OK || r == Z_STREAM_END || r == Z_BUF_ERROR);
  } while (z->avail_out == 0 || (flush == Z_FINISH && r != Z_STREAM_END));
  out->len = z->total_out;
}

/* Compress p[0..n) with zlib: raw DEFLATE (wbits < 0) or gzip (wbits >
 * 15), sometimes fed in pieces with a random flush after each, so that
 * streams mix stored, fixed and dynamic blocks, empty blocks and blocks of
 * every size; sometimes the level and strategy change between pieces. */
static void zcompress(const uint8_t *p, size_t n, int level, int wbits, int mem, int strategy,
                      souk_buf_t *out) {
  static const int flushes[] = {Z_NO_FLUSH,   Z_NO_FLUSH, Z_SYNC_FLUSH,
                                Z_FULL_FLUSH, Z_BLOCK,    Z_PARTIAL_FLUSH};
  static const int strategies[] = {Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED};
  z_stream z = {0};
  assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, wbits, mem, strategy), Z_OK);
  souk_buf_reset(out);
  bool pieces = rnd_below(2);
  for (size_t at = 0; at < n;) {
    size_t len = pieces ? 1 + rnd_below(3000) : n;
    if (len > n - at) len = n - at;
    z.next_in = (Bytef *)p + at;
    z.avail_in = (uInt)len;
    at += len;
    deflate_out(&z, out, pieces ? flushes[rnd_below(6)] : Z_NO_FLUSH);
    assert_int_equal(z.avail_in, 0);
    if (pieces && rnd_below(8) == 0) {
      /* deflateParams flushes what is pending with the old parameters. */
      z.next_out = (Bytef *)out->data + z.total_out;
      souk_buf_reserve(out, 65536);
      z.next_out = (Bytef *)out->data + z.total_out;
      z.avail_out = 65536;
      int r = deflateParams(&z, (int)rnd_below(10), strategies[rnd_below(5)]);
      assert_true(r == Z_OK || r == Z_BUF_ERROR);
      out->len = z.total_out;
    }
  }
  deflate_out(&z, out, Z_FINISH);
  deflateEnd(&z);
}

static void test_generated(void **state) {
  /* Real NBT to splice: the subset's 25 items, gunzipped by zlib. */
  size_t page_len, nbt_len;
  char *page = sbt_read_file(FIX "auctions-page0-2025-06-08.subset25.json", &page_len);
  souk_json_t j = {0};
  assert_int_equal(souk_json_parse(&j, page, page_len), 0);
  souk_buf_t nbt = {0};
  int arr = souk_json_get(&j, 0, "auctions");
  for (size_t i = 0; i < souk_json_count(&j, arr); i++) {
    char b64[16384];
    int n = souk_json_str(&j, souk_json_get(&j, souk_json_at(&j, arr, i), "item_bytes"), b64,
                          sizeof b64);
    uint8_t gz[sizeof b64];
    size_t gz_len;
    assert_int_equal(sb_b64_decode(b64, (size_t)n, gz, &gz_len), 0);
    size_t isize = trailer_isize(gz, gz_len);
    souk_buf_reserve(&nbt, isize + 1);
    assert_int_equal(zlib_gunzip(gz, gz_len, (uint8_t *)nbt.data + nbt.len, isize), 0);
    nbt.len += isize;
  }
  nbt_len = nbt.len;

  static const int strategies[] = {Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED};
  souk_buf_t gz = {0};
  uint8_t *data = souk_malloc(300000);
  for (int i = 0; i < 2500; i++) {
    /* Mostly item-sized, some large enough for many blocks. */
    size_t n = i % 50 == 0 ? rnd_below(300000) : i % 5 == 0 ? rnd_below(20000) : rnd_below(3000);
    make_data(data, n, rnd_below(6), (const uint8_t *)nbt.data, nbt_len);
    int level = (int)rnd_below(10), wbits = 9 + (int)rnd_below(7), mem = 1 + (int)rnd_below(9);
    int strategy = strategies[rnd_below(5)];
    zcompress(data, n, level, 16 + wbits, mem, strategy, &gz);
    check_member((const uint8_t *)gz.data, gz.len, data, n);
    /* The same data as a raw stream, with room to spare and with exactly
     * enough, and followed by other bytes (which it must not take). */
    zcompress(data, n, level, -wbits, mem, strategy, &gz);
    assert_true(same_raw((const uint8_t *)gz.data, gz.len, n + 1 + rnd_below(100)));
    assert_true(same_raw((const uint8_t *)gz.data, gz.len, n));
    souk_buf_append(&gz, "trailing", 8);
    assert_true(same_raw((const uint8_t *)gz.data, gz.len, n));
  }
  souk_free(data);
  souk_buf_free(&gz);
  souk_buf_free(&nbt);
  souk_json_free(&j);
  souk_free(page);
}

/* ---- corrupt input --------------------------------------------------------- */

static souk_buf_t g_members[8];
static size_t g_nmembers;

/* A few members of different kinds: real items, stored, fixed and
 * multi-block streams. */
static void keep_member(const uint8_t *gz, size_t n) {
  if (g_nmembers < 4) souk_buf_append(&g_members[g_nmembers++], gz, n);
}
static void collect_members(void) {
  if (g_nmembers) return;
  each_item(FIX "auctions-page0-2025-06-08.subset25.json", keep_member);
  uint8_t data[5000];
  make_data(data, sizeof data, 1, NULL, 0);
  zcompress(data, 600, 0, 31, 8, Z_DEFAULT_STRATEGY, &g_members[g_nmembers++]);
  zcompress(data, 700, 6, 31, 8, Z_FIXED, &g_members[g_nmembers++]);
  zcompress(data, sizeof data, 9, 31, 1, Z_DEFAULT_STRATEGY, &g_members[g_nmembers++]);
  zcompress(data, 1500, 4, 31, 8, Z_HUFFMAN_ONLY, &g_members[g_nmembers++]);
}

/* Every truncation is refused, as a member and as a raw stream. */
static void test_truncations(void **state) {
  collect_members();
  for (size_t m = 0; m < g_nmembers; m++) {
    const uint8_t *gz = (const uint8_t *)g_members[m].data;
    size_t n = g_members[m].len;
    size_t isize = trailer_isize(gz, n);
    for (size_t cut = 0; cut < n; cut++) {
      uint8_t *cp = souk_malloc(cut ? cut : 1); /* exactly cut bytes: ASan sees over-reads */
      memcpy(cp, gz, cut);
      uint8_t *out = out_new(isize);
      assert_int_equal(souk_gunzip(cp, cut, out, isize), SOUK_EPARSE);
      out_check_guard(out, isize);
      souk_free(out);
      if (cut >= 10 && cut < n - 8) assert_false(same_raw(cp + 10, cut - 10, isize));
      souk_free(cp);
    }
  }
}

/* Bit flips and byte changes: souk says what zlib says. */
static void test_flips(void **state) {
  collect_members();
  size_t accepted = 0, refused = 0;
  for (size_t m = 0; m < g_nmembers; m++) {
    size_t n = g_members[m].len;
    uint8_t *cp = souk_malloc(n);
    /* Every single bit of the first members; random ones after. */
    size_t flips = m < 2 ? n * 8 : 3000;
    for (size_t f = 0; f < flips; f++) {
      memcpy(cp, g_members[m].data, n);
      if (m < 2) {
        cp[f / 8] ^= (uint8_t)(1u << (f % 8));
      } else {
        for (unsigned k = 1 + rnd_below(3); k > 0; k--)
          cp[rnd_below((unsigned)n)] ^= (uint8_t)(1u << rnd_below(8));
      }
      if (same_gunzip(cp, n))
        accepted++;
      else
        refused++;
      size_t isize = trailer_isize((const uint8_t *)g_members[m].data, n);
      same_raw(cp + 10, n - 18, isize);
    }
    souk_free(cp);
  }
  /* A flip in the header's time, XFL or OS bytes changes nothing;
   * everywhere else the CRC or the stream itself catches it. */
  assert_true(accepted > 0);
  assert_true(refused > accepted);
}

/* Random bytes as raw DEFLATE, and random bytes behind valid block
 * headers: whatever zlib decides, souk decides the same. */
static void test_random_streams(void **state) {
  uint8_t buf[600];
  for (int i = 0; i < 20000; i++) {
    size_t n = rnd_below(sizeof buf);
    for (size_t k = 0; k < n; k++)
      buf[k] = (uint8_t)rnd();
    if (n && i % 2) /* a final dynamic block with plausible counts */
      buf[0] = (uint8_t)(0x05 | (rnd_below(30) << 3));
    same_raw(buf, n, rnd_below(4) ? 2000 : rnd_below(64));
  }
}

/* ---- hand-made streams ----------------------------------------------------- */

/* A DEFLATE bit writer: fields are written from their low bit, Huffman
 * codes from their first (high) bit. */
typedef struct bw {
  uint8_t buf[4096];
  size_t bits;
} bw_t;
static void bw_put(bw_t *w, uint32_t v, unsigned n) {
  for (unsigned i = 0; i < n; i++, w->bits++) {
    if (w->bits % 8 == 0) w->buf[w->bits / 8] = 0;
    w->buf[w->bits / 8] |= (uint8_t)(((v >> i) & 1) << (w->bits % 8));
  }
}
static void bw_code(bw_t *w, uint32_t code, unsigned len) {
  for (unsigned i = len; i > 0; i--)
    bw_put(w, (code >> (i - 1)) & 1, 1);
}
static void bw_align(bw_t *w) {
  while (w->bits % 8)
    bw_put(w, 0, 1);
}
static size_t bw_len(const bw_t *w) { return (w->bits + 7) / 8; }

/* Canonical codes for lengths[0..n) (RFC 1951 section 3.2.2). */
static void canon(const uint8_t *lens, unsigned n, uint32_t *codes) {
  unsigned count[16] = {0}, next[16];
  for (unsigned s = 0; s < n; s++)
    count[lens[s]]++;
  count[0] = 0;
  unsigned code = 0;
  for (unsigned b = 1; b < 16; b++) {
    code = (code + count[b - 1]) << 1;
    next[b] = code;
  }
  for (unsigned s = 0; s < n; s++)
    if (lens[s]) codes[s] = next[lens[s]]++;
}

/* Fixed-code symbols (RFC 1951 section 3.2.6). */
static void fixed_lit(bw_t *w, unsigned sym) {
  if (sym < 144)
    bw_code(w, 0x30 + sym, 8);
  else if (sym < 256)
    bw_code(w, 0x190 + sym - 144, 9);
  else if (sym < 280)
    bw_code(w, sym - 256, 7);
  else
    bw_code(w, 0xC0 + sym - 280, 8);
}

/* A dynamic block header for the given code lengths, each length sent
 * with its own precode symbol (no repeats). */
static void dyn_header(bw_t *w, bool final, const uint8_t *ll, unsigned hlit, const uint8_t *dl,
                       unsigned hdist) {
  static const uint8_t order[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                    11, 4,  12, 3, 13, 2, 14, 1, 15};
  /* Every length 0-15 gets a 4-bit precode: complete with 16 codes. */
  uint8_t pre[19] = {0};
  for (unsigned s = 0; s < 16; s++)
    pre[s] = 4;
  uint32_t pc[19];
  canon(pre, 19, pc);
  bw_put(w, final, 1);
  bw_put(w, 2, 2);
  bw_put(w, hlit - 257, 5);
  bw_put(w, hdist - 1, 5);
  bw_put(w, 19 - 4, 4);
  for (unsigned i = 0; i < 19; i++)
    bw_put(w, pre[order[i]], 3);
  for (unsigned s = 0; s < hlit; s++)
    bw_code(w, pc[ll[s]], 4);
  for (unsigned s = 0; s < hdist; s++)
    bw_code(w, pc[dl[s]], 4);
}

/* The verdict on w's stream with cap bytes of room must be want (true:
 * accepted), and zlib's the same. */
static void expect(const bw_t *w, size_t cap, bool want, const char *what) {
  bool got = same_raw(w->buf, bw_len(w), cap);
  if (got != want) fail_msg("%s: %s", what, got ? "accepted" : "refused");
}

static void test_handmade(void **state) {
  bw_t w;
  /* Empty blocks of each kind. */
  w = (bw_t){0};
  bw_put(&w, 1, 1), bw_put(&w, 1, 2), fixed_lit(&w, 256);
  expect(&w, 0, true, "empty fixed block");
  w = (bw_t){0};
  bw_put(&w, 1, 1), bw_put(&w, 0, 2), bw_align(&w), bw_put(&w, 0, 16), bw_put(&w, 0xFFFF, 16);
  expect(&w, 0, true, "empty stored block");
  w = (bw_t){0};
  bw_put(&w, 1, 1), bw_put(&w, 0, 2), bw_align(&w), bw_put(&w, 0, 16), bw_put(&w, 0xFFFE, 16);
  expect(&w, 0, false, "stored block, NLEN not LEN's complement");
  w = (bw_t){0};
  bw_put(&w, 1, 1), bw_put(&w, 0, 2), bw_align(&w), bw_put(&w, 5, 16), bw_put(&w, 0xFFFA, 16);
  bw_put(&w, 0x64636261, 32);
  expect(&w, 5, false, "stored block, LEN past the input");
  bw_put(&w, 0x65, 8);
  expect(&w, 5, true, "stored block of 5 bytes");
  expect(&w, 4, false, "stored block, one byte too many for the output");
  w = (bw_t){0};
  bw_put(&w, 1, 1), bw_put(&w, 3, 2), bw_put(&w, 0, 16);
  expect(&w, 10, false, "block type 3");

  /* Fixed blocks: matches, distances too far back, invalid symbols. */
  w = (bw_t){0};
  bw_put(&w, 1, 1), bw_put(&w, 1, 2), fixed_lit(&w, 'a'), fixed_lit(&w, 257);
  bw_code(&w, 0, 5); /* distance 1 */
  fixed_lit(&w, 256);
  expect(&w, 4, true, "'a' then a match of 3 at distance 1");
  expect(&w, 3, false, "the same with room for 3");
  w = (bw_t){0};
  bw_put(&w, 1, 1), bw_put(&w, 1, 2), fixed_lit(&w, 'a'), fixed_lit(&w, 257);
  bw_code(&w, 1, 5); /* distance 2 */
  fixed_lit(&w, 256);
  expect(&w, 100, false, "a distance past the start of the output");
  for (unsigned sym = 286; sym <= 287; sym++) {
    w = (bw_t){0};
    bw_put(&w, 1, 1), bw_put(&w, 1, 2), fixed_lit(&w, sym), fixed_lit(&w, 256);
    expect(&w, 100, false, "literal/length symbol 286 or 287");
  }
  for (unsigned d = 30; d <= 31; d++) {
    w = (bw_t){0};
    bw_put(&w, 1, 1), bw_put(&w, 1, 2);
    for (int i = 0; i < 40; i++)
      fixed_lit(&w, 'x');
    fixed_lit(&w, 257), bw_code(&w, d, 5), fixed_lit(&w, 256);
    expect(&w, 100, false, "distance symbol 30 or 31");
  }
  /* Every length symbol with every distance symbol, their extra bits all
   * zeros and all ones, once the output is longer than any distance: a
   * stored block of 1000 bytes, then 128 matches of 258 at distance 1. */
  static const uint8_t lext[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                   2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
  static const uint8_t dext[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                   6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
  for (int top = 0; top < 2; top++) {
    uint8_t *s = souk_malloc(6000);
    size_t n = 0;
    s[n++] = 0x00;                                              /* not final, stored */
    s[n++] = 0xE8, s[n++] = 0x03, s[n++] = 0x17, s[n++] = 0xFC; /* LEN 1000, NLEN */
    for (int i = 0; i < 1000; i++)
      s[n++] = (uint8_t)(i * 7 + i / 256);
    w = (bw_t){0};
    bw_put(&w, 1, 1), bw_put(&w, 1, 2);
    for (int i = 0; i < 128; i++)
      fixed_lit(&w, 285), bw_code(&w, 0, 5);
    for (unsigned l = 0; l < 29; l++)
      for (unsigned d = 0; d < 30; d++) {
        fixed_lit(&w, 257 + l);
        bw_put(&w, top ? (1u << lext[l]) - 1 : 0, lext[l]);
        bw_code(&w, d, 5);
        bw_put(&w, top ? (1u << dext[d]) - 1 : 0, dext[d]);
      }
    fixed_lit(&w, 256);
    assert_true(n + bw_len(&w) <= 6000);
    memcpy(s + n, w.buf, bw_len(&w));
    n += bw_len(&w);
    assert_true(same_raw(s, n, 1000000));
    souk_free(s);
  }

  /* Dynamic blocks. */
  uint8_t ll[288], dl[32];
  uint32_t lc[288], dc[32];
  /* 286 codes of 9 bits leave codespace unused: an incomplete code. */
  memset(ll, 0, sizeof ll);
  memset(dl, 0, sizeof dl);
  memset(ll, 9, 286);
  dl[0] = 1, dl[1] = 1;
  w = (bw_t){0};
  dyn_header(&w, true, ll, 286, dl, 2);
  expect(&w, 100, false, "an incomplete literal/length code");
  /* 226 codes of 8 bits and 60 of 9 fill it exactly. */
  memset(ll, 8, 226);
  canon(ll, 286, lc);
  canon(dl, 2, dc);
  w = (bw_t){0};
  dyn_header(&w, true, ll, 286, dl, 2);
  bw_code(&w, lc['Q'], ll['Q']), bw_code(&w, lc[257], ll[257]), bw_code(&w, dc[0], 1);
  bw_code(&w, lc[256], ll[256]);
  expect(&w, 4, true, "a dynamic block: a literal and a match");
  /* Codes no symbol of the data uses make a code wrong all the same: a
   * block of 'Q' and the end of block, with an over-subscribed distance
   * code, with 287 or 31 codes, then with one more literal/length code of
   * 8 bits, which over-subscribes that. */
  {
    uint8_t d3[3] = {1, 1, 1};
    w = (bw_t){0};
    dyn_header(&w, true, ll, 286, d3, 3);
    bw_code(&w, lc['Q'], ll['Q']), bw_code(&w, lc[256], ll[256]);
    expect(&w, 100, false, "an over-subscribed distance code");
    uint8_t d31[31];
    memset(d31, 5, 30);
    d31[30] = 4;
    w = (bw_t){0};
    dyn_header(&w, true, ll, 286, d31, 31);
    bw_code(&w, lc['Q'], ll['Q']), bw_code(&w, lc[256], ll[256]);
    expect(&w, 100, false, "31 distance codes");
    uint8_t l287[288];
    memset(l287, 8, 225);
    memset(l287 + 225, 9, 62);
    uint32_t c287[288];
    canon(l287, 287, c287);
    w = (bw_t){0};
    dyn_header(&w, true, l287, 287, dl, 2);
    bw_code(&w, c287['Q'], 8), bw_code(&w, c287[256], 9);
    expect(&w, 100, false, "287 literal/length codes");
  }
  ll[226] = 8;
  canon(ll, 286, lc);
  w = (bw_t){0};
  dyn_header(&w, true, ll, 286, dl, 2);
  bw_code(&w, lc['Q'], ll['Q']), bw_code(&w, lc[256], ll[256]);
  expect(&w, 100, false, "an over-subscribed literal/length code");
  /* No code for the end of block. */
  {
    uint8_t l2[288] = {0};
    for (int s = 0; s < 256; s++)
      l2[s] = 8;
    w = (bw_t){0};
    dyn_header(&w, true, l2, 257, dl, 2);
    expect(&w, 100, false, "no end-of-block code");
    /* Only the end of block, one bit long: an incomplete code zlib takes. */
    memset(l2, 0, sizeof l2);
    l2[256] = 1;
    w = (bw_t){0};
    dyn_header(&w, true, l2, 257, dl, 2);
    bw_code(&w, 0, 1);
    expect(&w, 0, true, "only an end-of-block code, of one bit");
    /* No distance code at all, and a block of literals. */
    for (int s = 0; s < 256; s++)
      l2[s] = 9;
    l2[256] = 1;
    uint32_t c2[288];
    canon(l2, 257, c2);
    uint8_t d0[1] = {0};
    w = (bw_t){0};
    dyn_header(&w, true, l2, 257, d0, 1);
    bw_code(&w, c2['z'], 9), bw_code(&w, c2[256], 1);
    expect(&w, 1, true, "literals only, no distance code");
    /* The same with a length code there to use one: refused. */
    l2[257] = 9;
    l2['z'] = 0;
    canon(l2, 258, c2);
    w = (bw_t){0};
    dyn_header(&w, true, l2, 258, d0, 1);
    bw_code(&w, c2['y'], 9), bw_code(&w, c2[257], 9), bw_code(&w, 0, 1);
    expect(&w, 100, false, "a match with no distance code");
    /* One distance code of one bit: "0" works, "1" is invalid. */
    uint8_t d1[2] = {1, 0};
    for (int bit = 0; bit < 2; bit++) {
      w = (bw_t){0};
      dyn_header(&w, true, l2, 258, d1, 2);
      bw_code(&w, c2['y'], 9), bw_code(&w, c2[257], 9), bw_code(&w, (uint32_t)bit, 1);
      bw_code(&w, c2[256], 1);
      expect(&w, 4, bit == 0, "one distance code of one bit");
    }
  }
  /* Codes of every length up to 15, so subtables of every depth: 'a' to
   * 'm' of 1 to 13 bits, then 'n', 'o', the end of block and length 4
   * (symbol 258) of 15 bits; distances 0-13 of 1 to 14 bits, 14 and 15 of
   * 15.  200 'a's first put every distance in reach. */
  {
    uint8_t l3[288] = {0}, d3[30] = {0};
    for (int s = 0; s < 13; s++)
      l3['a' + s] = (uint8_t)(s + 1);
    l3['n'] = l3['o'] = l3[256] = l3[258] = 15;
    for (int s = 0; s < 14; s++)
      d3[s] = (uint8_t)(s + 1);
    d3[14] = d3[15] = 15;
    uint32_t c3[288], dc3[30];
    canon(l3, 259, c3);
    canon(d3, 16, dc3);
    w = (bw_t){0};
    dyn_header(&w, true, l3, 259, d3, 16);
    size_t n = 0;
    for (int i = 0; i < 200; i++, n++)
      bw_code(&w, c3['a'], 1);
    for (int s = 0; s < 15; s++, n++)
      bw_code(&w, c3['a' + s], l3['a' + s]);
    for (int d = 0; d < 16; d++, n += 4) {
      bw_code(&w, c3[258], 15);
      bw_code(&w, dc3[d], d3[d]);
      bw_put(&w, 0, d < 4 ? 0 : (unsigned)(d / 2 - 1));
    }
    bw_code(&w, c3[256], 15);
    expect(&w, n, true, "codes of 1 to 15 bits, literal/length and distance");
    expect(&w, n - 1, false, "the same with a byte less of room");
  }
  /* Code length repeats. */
  {
    static const uint8_t order[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                      11, 4,  12, 3, 13, 2, 14, 1, 15};
    uint8_t pre[19] = {0};
    for (int s = 0; s < 19; s++)
      pre[s] = 5; /* 19 codes of 5 bits: incomplete */
    for (int s = 0; s < 13; s++)
      pre[s] = 4; /* 13 * 2 + 6 = 32 units of 2^-5: complete */
    uint32_t pc[19];
    canon(pre, 19, pc);
    /* A repeat of the previous length as the first symbol, in a block
     * that would be right if it repeated zeros: refused.  The lengths
     * after it: 7 bits for symbols 3 and 4, 8 for 5 to 256, no distance
     * code; the data: the end of block. */
    uint8_t lens[258] = {0};
    lens[3] = lens[4] = 7;
    memset(lens + 5, 8, 252);
    uint32_t lcodes[258];
    canon(lens, 257, lcodes);
    for (int first = 0; first < 2; first++) {
      w = (bw_t){0};
      bw_put(&w, 1, 1), bw_put(&w, 2, 2), bw_put(&w, 0, 5), bw_put(&w, 0, 5), bw_put(&w, 15, 4);
      for (int i = 0; i < 19; i++)
        bw_put(&w, pre[order[i]], 3);
      if (first)
        bw_code(&w, pc[16], pre[16]), bw_put(&w, 0, 2);
      else
        bw_code(&w, pc[17], pre[17]), bw_put(&w, 0, 3);
      for (int i = 3; i < 258; i++)
        bw_code(&w, pc[lens[i]], pre[lens[i]]);
      bw_code(&w, lcodes[256], 8);
      expect(&w, 100, !first, first ? "a repeat with no length before it" : "3 zeros first");
    }
    /* Zeros running past the last length: refused. */
    w = (bw_t){0};
    bw_put(&w, 1, 1), bw_put(&w, 2, 2), bw_put(&w, 0, 5), bw_put(&w, 0, 5), bw_put(&w, 15, 4);
    for (int i = 0; i < 19; i++)
      bw_put(&w, pre[order[i]], 3);
    bw_code(&w, pc[18], 5), bw_put(&w, 127, 7); /* 138 zeros */
    bw_code(&w, pc[18], 5), bw_put(&w, 127, 7); /* 276, past 258 */
    expect(&w, 100, false, "a run of zeros past the last length");
    /* An over-subscribed precode, an incomplete one, and an empty one. */
    for (int k = 0; k < 3; k++) {
      uint8_t p2[19];
      memcpy(p2, pre, sizeof p2);
      if (k == 0) p2[13] = 4;
      if (k == 1) p2[13] = 0;
      if (k == 2) memset(p2, 0, sizeof p2);
      w = (bw_t){0};
      bw_put(&w, 1, 1), bw_put(&w, 2, 2), bw_put(&w, 0, 5), bw_put(&w, 0, 5), bw_put(&w, 15, 4);
      for (int i = 0; i < 19; i++)
        bw_put(&w, p2[order[i]], 3);
      for (int i = 0; i < 40; i++)
        bw_put(&w, 0, 8);
      expect(&w, 100, false, "a precode that is not complete");
    }
  }
  /* Two blocks, the first not final, and nothing read past the second. */
  w = (bw_t){0};
  bw_put(&w, 0, 1), bw_put(&w, 1, 2), fixed_lit(&w, 'h'), fixed_lit(&w, 256);
  bw_put(&w, 0, 1), bw_put(&w, 0, 2), bw_align(&w), bw_put(&w, 1, 16), bw_put(&w, 0xFFFE, 16);
  bw_put(&w, 'i', 8);
  bw_put(&w, 1, 1), bw_put(&w, 1, 2), fixed_lit(&w, '!'), fixed_lit(&w, 256);
  expect(&w, 3, true, "fixed, stored and fixed blocks");
  bw_align(&w);
  bw_put(&w, 0xFFFFFFFF, 32);
  expect(&w, 3, true, "the same with bytes after it");
}

/* gzip headers: each optional field, the header's CRC-16, reserved flags,
 * another method, and bytes after the member. */
static void test_gzip_headers(void **state) {
  static const char text[] = "souk inflates small gzip members";
  souk_buf_t raw = {0};
  zcompress((const uint8_t *)text, sizeof text - 1, 6, -15, 8, Z_DEFAULT_STRATEGY, &raw);
  for (unsigned flags = 0; flags < 256; flags++) {
    for (int corrupt = 0; corrupt < 2; corrupt++) {
      if (corrupt && !(flags & 2)) continue; /* a header CRC-16 to corrupt */
      souk_buf_t m = {0};
      uint8_t head[10] = {0x1f, 0x8b, 8, (uint8_t)flags, 1, 2, 3, 4, 0, 3};
      souk_buf_append(&m, head, 10);
      if (flags & 4) souk_buf_append(&m, "\x05\x00xtra!", 7);
      if (flags & 8) souk_buf_append(&m, "name.nbt", 9);
      if (flags & 16) souk_buf_append(&m, "a comment", 10);
      if (flags & 2) {
        uint32_t crc = (uint32_t)crc32(0, (const Bytef *)m.data, (uInt)m.len);
        uint8_t hc[2] = {(uint8_t)crc, (uint8_t)(crc >> 8)};
        if (corrupt) hc[1] ^= 1;
        souk_buf_append(&m, hc, 2);
      }
      souk_buf_append(&m, raw.data, raw.len);
      uint32_t crc = (uint32_t)crc32(0, (const Bytef *)text, sizeof text - 1);
      uint8_t tr[8] = {(uint8_t)crc,
                       (uint8_t)(crc >> 8),
                       (uint8_t)(crc >> 16),
                       (uint8_t)(crc >> 24),
                       sizeof text - 1,
                       0,
                       0,
                       0};
      souk_buf_append(&m, tr, 8);
      bool ok = same_gunzip((const uint8_t *)m.data, m.len);
      assert_int_equal(ok, (flags & 0xE0) == 0 && !corrupt);
      /* Each byte of the header cut off is refused. */
      if (flags == 0x1E && !corrupt)
        for (size_t cut = 1; cut < m.len; cut++)
          assert_false(same_gunzip((const uint8_t *)m.data, cut));
      souk_buf_free(&m);
    }
  }
  /* Another compression method; bytes after the member; two members. */
  souk_buf_t m = {0};
  sbt_gzip(text, sizeof text - 1, &m);
  assert_true(same_gunzip((const uint8_t *)m.data, m.len));
  m.data[2] = 7;
  assert_false(same_gunzip((const uint8_t *)m.data, m.len));
  m.data[2] = 8;
  size_t one = m.len;
  souk_buf_append(&m, m.data, one);
  assert_false(same_gunzip((const uint8_t *)m.data, m.len));
  m.len = one;
  souk_buf_putc(&m, 0);
  assert_false(same_gunzip((const uint8_t *)m.data, m.len));
  souk_buf_free(&m);
  souk_buf_free(&raw);
}

static int setup(void **state) {
  g_z = sb_inflate_new();
  g_zb = sb_inflate_new();
  sb_inflate_use_baseline(g_zb);
  g_ld = libdeflate_alloc_decompressor();
  return 0;
}
static int teardown(void **state) {
  sb_inflate_free(g_z);
  sb_inflate_free(g_zb);
  libdeflate_free_decompressor(g_ld);
  for (size_t i = 0; i < g_nmembers; i++)
    souk_buf_free(&g_members[i]);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_real_items),     cmocka_unit_test(test_generated),
      cmocka_unit_test(test_truncations),    cmocka_unit_test(test_flips),
      cmocka_unit_test(test_random_streams), cmocka_unit_test(test_handmade),
      cmocka_unit_test(test_gzip_headers),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
