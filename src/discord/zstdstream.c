/* zstd-stream decompression for the gateway; see zstdstream.h. */
#include "discord/zstdstream.h"

#include "discord/zstream.h"
#include "souk/alloc.h"
#include "souk/err.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <zstd.h>
#include <zstd_errors.h>

/* See zstream.c: one big message (a READY) must not pin its buffer. */
#define ZD_KEEP_DEFAULT ((size_t)64 << 10)
/* The size of a zstd block header (ZSTD_blockHeaderSize in zstd's own
 * sources, not in its public header).  ZSTD_decompressStream() returns it
 * as the next input size exactly when it stands between two blocks with
 * everything before flushed: the end of a payload. */
#define ZD_BLOCK_HEADER 3

int souk__zstdstream_init(souk__zstdstream_t *zs, size_t max) {
  memset(zs, 0, sizeof *zs);
  zs->max = max ? max : ((size_t)16 << 20);
  zs->keep = ZD_KEEP_DEFAULT;
  zs->dctx = ZSTD_createDCtx();
  if (!zs->dctx) return SOUK_ENOMEM;
  /* A server asking for a bigger window than this would cost that much
   * memory per shard: refuse it as corrupt rather than allocate it. */
  if (ZSTD_isError(
          ZSTD_DCtx_setParameter(zs->dctx, ZSTD_d_windowLogMax, SOUK_ZSTD_WINDOW_LOG_MAX))) {
    ZSTD_freeDCtx(zs->dctx);
    zs->dctx = NULL;
    return SOUK_ENOMEM;
  }
  return 0;
}

static void zd_scan_reset(souk__zstdstream_t *zs) {
  zs->scan_pos = 0;
  zs->depth = 0;
  zs->in_str = zs->escaped = 0;
  zs->scan_started = zs->scan_opaque = false;
}

void souk__zstdstream_reset(souk__zstdstream_t *zs) {
  if (zs->dctx) ZSTD_DCtx_reset(zs->dctx, ZSTD_reset_session_only);
  zs->broken = false;
  zs->partial = false;
  zd_scan_reset(zs);
  souk_buf_reset(&zs->out);
}

void souk__zstdstream_free(souk__zstdstream_t *zs) {
  if (zs->dctx) ZSTD_freeDCtx(zs->dctx);
  souk_buf_free(&zs->out);
  memset(zs, 0, sizeof *zs);
}

/* ---- where a JSON text ends ------------------------------------------------
 *
 * 64 bytes at a time, as simdjson's first stage finds strings: bit masks of
 * the quotes, backslashes, opening and closing brackets; the escaped
 * characters from the runs of backslashes; the bytes inside strings as the
 * prefix XOR of the unescaped quotes; then the brackets outside strings
 * counted.  The text is whole when they balance.  A few dozen integer
 * operations per 64 bytes instead of a branch per byte: the gateway's
 * payloads are scanned at memory speed. */

/* Bit i set where p[i] is a quote, a backslash, [ or {, ] or }. */
static void zd_masks(const unsigned char *p, uint64_t *quote, uint64_t *bslash, uint64_t *open,
                     uint64_t *close) {
  uint64_t q = 0, b = 0, o = 0, c = 0;
#ifdef __SSE2__
  const __m128i vq = _mm_set1_epi8('"'), vb = _mm_set1_epi8('\\');
  const __m128i vo = _mm_set1_epi8('{'), vc = _mm_set1_epi8('}'), v20 = _mm_set1_epi8(0x20);
  for (int i = 0; i < 4; i++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
    /* [ and ] are { and } without the 0x20 bit; no other byte maps there. */
    __m128i l = _mm_or_si128(v, v20);
    q |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vq)) << (16 * i);
    b |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, vb)) << (16 * i);
    o |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(l, vo)) << (16 * i);
    c |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(l, vc)) << (16 * i);
  }
#else
  for (int i = 0; i < 64; i++) {
    uint64_t bit = (uint64_t)1 << i;
    switch (p[i]) {
    case '"':
      q |= bit;
      break;
    case '\\':
      b |= bit;
      break;
    case '{':
    case '[':
      o |= bit;
      break;
    case '}':
    case ']':
      c |= bit;
      break;
    default:
      break;
    }
  }
#endif
  *quote = q;
  *bslash = b;
  *open = o;
  *close = c;
}

/* Bit i of the result: the XOR of bits 0..i of x. */
static uint64_t zd_prefix_xor(uint64_t x) {
  x ^= x << 1;
  x ^= x << 2;
  x ^= x << 4;
  x ^= x << 8;
  x ^= x << 16;
  x ^= x << 32;
  return x;
}

/* The characters escaped by backslashes in a block, given whether its
 * first byte is escaped (*carry, updated for the next block): a run of
 * backslashes escapes the byte after it when the run is odd. */
static uint64_t zd_escaped(uint64_t bslash, uint64_t *carry) {
  const uint64_t even = UINT64_C(0x5555555555555555);
  bslash &= ~*carry; /* an escaped backslash escapes nothing */
  uint64_t follows = bslash << 1 | *carry;
  uint64_t odd_starts = bslash & ~even & ~follows;
  uint64_t seq_even;
  *carry = __builtin_add_overflow(odd_starts, bslash, &seq_even);
  uint64_t invert = seq_even << 1;
  return (even ^ invert) & follows;
}

/* One block of 64 bytes: update depth, in_str and escaped as of its end. */
static void zd_scan_block(const unsigned char *p, int64_t *depth, uint64_t *in_str,
                          uint64_t *escaped) {
  uint64_t q, b, o, c;
  zd_masks(p, &q, &b, &o, &c);
  q &= ~zd_escaped(b, escaped);
  uint64_t inside = zd_prefix_xor(q) ^ *in_str;
  *depth += __builtin_popcountll(o & ~inside) - __builtin_popcountll(c & ~inside);
  *in_str = (uint64_t)((int64_t)inside >> 63);
}

/* Whether the text in out is a whole JSON object (or array): scans the
 * bytes added since the last call.  Text that does not start with one is
 * not JSON the gateway sends; it is never held back (the gateway's parser
 * refuses it). */
static bool zd_json_complete(souk__zstdstream_t *zs) {
  const unsigned char *d = (const unsigned char *)zs->out.data;
  size_t len = zs->out.len;
  if (!zs->scan_started) {
    size_t i = 0;
    while (i < len && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r'))
      i++;
    if (i == len) return false;
    zs->scan_started = true;
    zs->scan_opaque = d[i] != '{' && d[i] != '[';
  }
  if (zs->scan_opaque) return true;
  size_t pos = zs->scan_pos;
  for (; pos + 64 <= len; pos += 64)
    zd_scan_block(d + pos, &zs->depth, &zs->in_str, &zs->escaped);
  zs->scan_pos = pos;
  int64_t depth = zs->depth;
  uint64_t in_str = zs->in_str, escaped = zs->escaped;
  if (pos < len) {
    /* The tail, padded with bytes that mean nothing; scanned again from
     * scan_pos once more text has come. */
    unsigned char tail[64] = {0};
    memcpy(tail, d + pos, len - pos);
    zd_scan_block(tail, &depth, &in_str, &escaped);
  }
  /* Padding inside an open string keeps in_str set: the text is not
   * whole, which the unbalanced brackets also say. */
  return depth == 0 && !in_str;
}

static int zd_fail(souk__zstdstream_t *zs, int rc) {
  zs->broken = true;
  zs->partial = false;
  souk_buf_reset(&zs->out);
  return rc;
}

int souk__zstdstream_feed(souk__zstdstream_t *zs, const void *data, size_t len, const char **out,
                          size_t *outlen) {
  if (!zs->dctx || zs->broken) return SOUK_EPARSE;
  zs->bytes_in += len;
  souk_buf_t *o = &zs->out;
  if (!zs->partial) {
    if (o->cap > zs->keep) souk_buf_free(o);
    o->len = 0;
    zd_scan_reset(zs);
  }
  ZSTD_inBuffer in = {data, len, 0};
  size_t hint = 0;
  for (;;) {
    size_t room = souk__zbuf_room(o, zs->max, len * 8);
    ZSTD_outBuffer ob = {o->data + o->len, room, 0};
    hint = ZSTD_decompressStream(zs->dctx, &ob, &in);
    o->len += ob.pos;
    if (ZSTD_isError(hint)) {
      if (ZSTD_getErrorCode(hint) == ZSTD_error_memory_allocation) souk_oom(0);
      return zd_fail(zs, SOUK_EPARSE);
    }
    if (o->len > zs->max) return zd_fail(zs, SOUK_ETOOBIG);
    /* Everything consumed and the output not full: all is flushed. */
    if (in.pos == in.size && ob.pos < ob.size) break;
  }
  if (hint != 0 && hint != ZD_BLOCK_HEADER) {
    /* In the middle of a block: the rest comes in the next message. */
    zs->partial = true;
    return 0;
  }
  if (o->len == 0) {
    zs->partial = false;
    return 0; /* only a frame header so far */
  }
  if (hint == ZD_BLOCK_HEADER && !zd_json_complete(zs)) {
    /* Between two blocks of one payload (a full block, or one the
     * compressor split): the rest comes in the next message. */
    zs->partial = true;
    return 0;
  }
  zs->partial = false;
  o->data[o->len] = '\0';
  zs->bytes_out += o->len;
  zs->messages++;
  *out = o->data;
  *outlen = o->len;
  return 1;
}
